package cn.gov.example.dept;

import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.security.config.Customizer;
import org.springframework.security.config.annotation.web.builders.HttpSecurity;
import org.springframework.security.oauth2.client.oidc.web.logout.OidcClientInitiatedLogoutSuccessHandler;
import org.springframework.security.oauth2.client.registration.ClientRegistrationRepository;
import org.springframework.security.oauth2.client.web.DefaultOAuth2AuthorizationRequestResolver;
import org.springframework.security.oauth2.client.web.OAuth2AuthorizationRequestCustomizers;
import org.springframework.security.oauth2.client.web.OAuth2AuthorizationRequestRedirectFilter;
import org.springframework.security.web.SecurityFilterChain;

/**
 * Sign-in through yihao: the authorization code flow with PKCE (yihao requires it from confidential
 * clients too; Spring Security 6 sends it only for public clients unless told), RP-initiated logout
 * with id_token_hint, and back-channel logout at /logout/connect/back-channel/yihao.
 * Not run by this project's CI: see README.md.
 */
@Configuration
public class SecurityConfig {

    @Bean
    SecurityFilterChain security(HttpSecurity http, ClientRegistrationRepository clients) throws Exception {
        DefaultOAuth2AuthorizationRequestResolver resolver = new DefaultOAuth2AuthorizationRequestResolver(
                clients, OAuth2AuthorizationRequestRedirectFilter.DEFAULT_AUTHORIZATION_REQUEST_BASE_URI);
        resolver.setAuthorizationRequestCustomizer(OAuth2AuthorizationRequestCustomizers.withPkce());

        // After the local logout, yihao's end_session_endpoint with id_token_hint; then back to "/".
        // Registered as --post-logout-redirect-uri https://dept.example.gov.cn/
        OidcClientInitiatedLogoutSuccessHandler logout = new OidcClientInitiatedLogoutSuccessHandler(clients);
        logout.setPostLogoutRedirectUri("{baseUrl}/");

        http
            .authorizeHttpRequests(auth -> auth
                .requestMatchers("/", "/error").permitAll()
                .anyRequest().authenticated())
            .oauth2Login(login -> login
                .authorizationEndpoint(endpoint -> endpoint.authorizationRequestResolver(resolver)))
            .logout(l -> l.logoutSuccessHandler(logout))
            // Back-Channel Logout 1.0: verifies the logout token (signature, iss, aud, events, sid)
            // and ends the local session of that sid. Registered as
            // --backchannel-logout-uri https://dept.example.gov.cn/logout/connect/back-channel/yihao
            .oidcLogout(l -> l.backChannel(Customizer.withDefaults()));
        return http.build();
    }
}
