//! The discovery document (and its RFC 8414 twin) and the JWKS: every value is what is served.

use serde_json::Value;

use crate::setup;

#[tokio::test]
async fn discovery_lists_exactly_what_is_served() {
    let s = setup(|_| {}).await;
    let d: Value = reqwest::get(format!("{}/.well-known/openid-configuration", s.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let oauth: Value = reqwest::get(format!("{}/.well-known/oauth-authorization-server", s.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d, oauth, "RFC 8414 metadata is the same document");
    assert_eq!(d["issuer"], s.base);
    for (key, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks"),
    ] {
        assert_eq!(d[key], format!("{}{path}", s.base), "{key}");
    }
    let list = |k: &str| {
        d[k].as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(list("response_types_supported"), ["code"]);
    assert_eq!(
        list("response_modes_supported"),
        ["query", "fragment", "form_post"]
    );
    assert_eq!(
        list("grant_types_supported"),
        [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code",
            "urn:ietf:params:oauth:grant-type:token-exchange"
        ]
    );
    assert_eq!(
        d["device_authorization_endpoint"],
        format!("{}/device_authorization", s.base),
        "RFC 8628 §4"
    );
    assert_eq!(
        d["introspection_endpoint"],
        format!("{}/introspect", s.base)
    );
    assert_eq!(d["revocation_endpoint"], format!("{}/revoke", s.base));
    assert_eq!(d["end_session_endpoint"], format!("{}/logout", s.base));
    assert_eq!(d["backchannel_logout_supported"], true);
    assert_eq!(d["backchannel_logout_session_supported"], true);
    assert_eq!(d["frontchannel_logout_supported"], true);
    assert_eq!(d["frontchannel_logout_session_supported"], true);
    assert_eq!(
        list("introspection_endpoint_auth_methods_supported"),
        [
            "client_secret_basic",
            "client_secret_post",
            "client_secret_jwt",
            "private_key_jwt"
        ]
    );
    assert_eq!(
        list("revocation_endpoint_auth_methods_supported"),
        [
            "client_secret_basic",
            "client_secret_post",
            "client_secret_jwt",
            "private_key_jwt",
            "none"
        ]
    );
    assert_eq!(list("subject_types_supported"), ["pairwise"]);
    assert_eq!(
        list("id_token_signing_alg_values_supported"),
        ["RS256", "ES256", "EdDSA"]
    );
    assert_eq!(
        list("token_endpoint_auth_methods_supported"),
        [
            "client_secret_basic",
            "client_secret_post",
            "client_secret_jwt",
            "private_key_jwt",
            "none"
        ]
    );
    for endpoint in ["token", "introspection", "revocation"] {
        assert_eq!(
            list(&format!(
                "{endpoint}_endpoint_auth_signing_alg_values_supported"
            )),
            [
                "RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA", "HS256", "HS384",
                "HS512"
            ]
        );
    }
    assert_eq!(list("code_challenge_methods_supported"), ["S256"]);
    assert_eq!(
        list("scopes_supported"),
        [
            "openid",
            "profile",
            "phone",
            "email",
            "idcard",
            "org",
            "offline_access"
        ]
    );
    assert_eq!(
        list("prompt_values_supported"),
        ["none", "login", "consent", "select_account"]
    );
    assert_eq!(list("ui_locales_supported"), ["zh-CN", "en"]);
    // Only what this deployment reaches: 3 with TOTP and face verification; no method reaches 4
    // (tests/oidc/second_factor.rs: without face verification, 1 and 2).
    assert_eq!(
        list("acr_values_supported"),
        ["urn:yihao:loa:1", "urn:yihao:loa:2", "urn:yihao:loa:3"]
    );
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    assert_eq!(d["claims_parameter_supported"], true);
    assert_eq!(d["request_parameter_supported"], false);
    assert_eq!(d["request_uri_parameter_supported"], false);
    let jwks: Value = reqwest::get(format!("{}/jwks", s.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let algs: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["alg"].as_str().unwrap())
        .collect();
    for alg in ["RS256", "ES256", "EdDSA"] {
        assert!(algs.contains(&alg), "{alg} missing from JWKS");
    }
    for k in jwks["keys"].as_array().unwrap() {
        assert_eq!(k["use"], "sig");
        assert!(k["kid"].is_string() && k.get("d").is_none(), "{k}");
    }
}
