package cn.gov.example.dept;

import java.util.Map;
import org.springframework.security.core.annotation.AuthenticationPrincipal;
import org.springframework.security.oauth2.core.oidc.user.OidcUser;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RestController;

/** The claims a signed-in person brings: the ID token's, merged with userinfo's (name, ...). */
@RestController
public class WhoAmIController {

    @GetMapping("/me")
    Map<String, Object> me(@AuthenticationPrincipal OidcUser user) {
        return Map.of(
                "sub", user.getSubject(),                       // pairwise: differs per department
                "acr", String.valueOf(user.getClaimAsString("acr")),  // urn:yihao:loa:N, the level reached
                "amr", String.valueOf(user.getClaimAsStringList("amr")),
                "name", String.valueOf(user.getFullName()));   // from userinfo (scope profile)
    }
}
