//! A token, introspection or revocation request as it arrives: the first line is the
//! `Authorization` header's value (empty: none), the rest the form body. Read by the strict decoder,
//! then the client's credentials (RFC 6749 §2.3, §3.2), the `token` parameter (RFC 7662, RFC 7009),
//! a client_credentials request's scopes and resources (RFC 6749 §4.4, RFC 8707), and PKCE (RFC 7636
//! §4.6) against a fixed challenge. Nothing may panic.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use yihao::domain::client::{
    AuthMethod, Client, ClientId, ClientSecrets, ClientSettings, ClientSpec, GrantType, Scope,
    SecretHash,
};
use yihao::protocol::form::{self, Limits};
use yihao::protocol::client_auth::{self, Presented};
use yihao::protocol::grants::client_credentials::read_client_credentials;
use yihao::protocol::pkce::check_pkce;
use yihao::protocol::param;
use yihao::protocol::token_lookup::token_param;

/// RFC 7636 Appendix B.
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

static CLIENT: LazyLock<Client> = LazyLock::new(|| {
    let spec = ClientSpec {
        id: ClientId::parse("hall").expect("id"),
        name: "Hall".into(),
        auth_method: AuthMethod::ClientSecretBasic,
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::ClientCredentials],
        scopes: ["read", "write"]
            .map(|s| Scope::parse(s).expect("scope"))
            .to_vec(),
        first_party: false,
        settings: ClientSettings {
            resources: vec!["https://api.example.gov.cn/".to_owned()],
            ..ClientSettings::default()
        },
    };
    let secrets = ClientSecrets::hashed(SecretHash([1; 32]), None);
    Client::register(spec, Some(secrets), 0).expect("client")
});

fuzz_target!(|data: &[u8]| {
    let (authorization, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    let limits = Limits {
        bytes: 8192,
        count: 64,
    };
    let Ok(params) = form::decode(body, limits) else {
        return;
    };
    let authorization = (!authorization.is_empty()).then_some(authorization);
    if let Ok(presented) = Presented::read(&params, authorization)
        && let Some(assertion) = presented.assertion
    {
        let _ = client_auth::read_assertion(&assertion);
    }
    let _ = token_param(&params);
    if let Ok((scopes, audience)) = read_client_credentials(&CLIENT, &params) {
        assert!(scopes.iter().all(|s| s == "read" || s == "write"));
        assert!(audience.is_string() || audience.is_array());
    }
    let verifier = param(&params, "code_verifier");
    let matched = check_pkce(Some(CHALLENGE), verifier).is_ok();
    assert_eq!(matched, verifier == Some(VERIFIER));
    let _ = check_pkce(None, verifier);
});
