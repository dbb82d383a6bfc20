//! An authorization request as it arrives: a query string (or form body) of arbitrary bytes, read by
//! the strict decoder every request goes through, then checked against a public and a confidential
//! client (RFC 6749 §4.1.1, OIDC Core §3.1.2.1). Nothing may panic, and an error is only ever sent
//! back to the client's redirect URI when that URI is registered.
#![no_main]

use libfuzzer_sys::fuzz_target;
use yihao::domain::client::{
    AuthMethod, Client, ClientId, ClientSecrets, ClientSettings, ClientSpec, GrantType,
    RedirectUri, Scope, SecretHash,
};
use yihao::protocol::authorize::{self, AuthorizeError, AuthorizePolicy};
use yihao::protocol::form::{self, Limits};

fn client(public: bool) -> Client {
    let spec = ClientSpec {
        id: ClientId::parse("hall").expect("id"),
        name: "Hall".into(),
        auth_method: if public {
            AuthMethod::None
        } else {
            AuthMethod::ClientSecretBasic
        },
        redirect_uris: ["https://hall.example.gov.cn/cb", "http://127.0.0.1/cb"]
            .map(|u| RedirectUri::parse(u).expect("uri"))
            .to_vec(),
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: ["openid", "profile", "phone", "offline_access"]
            .map(|s| Scope::parse(s).expect("scope"))
            .to_vec(),
        first_party: false,
        settings: ClientSettings::default(),
    };
    let secrets = (!public).then_some(ClientSecrets::hashed(SecretHash([1; 32]), None));
    Client::register(spec, secrets, 0).expect("client")
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        bytes: 8192,
        count: 64,
    };
    let Ok(params) = form::decode(data, limits) else {
        return;
    };
    for public in [true, false] {
        let client = client(public);
        for require_pkce in [true, false] {
            match authorize::check(&params, Some(&client), AuthorizePolicy { require_pkce }) {
                Err(AuthorizeError::RedirectToClient { redirect_uri, .. }) => {
                    assert!(
                        authorize::redirect_matches(&client, &redirect_uri),
                        "an error redirected to an unregistered URI: {redirect_uri}"
                    );
                }
                Ok(_) | Err(_) => {}
            }
        }
    }
    let _ = authorize::check(
        &params,
        None,
        AuthorizePolicy {
            require_pkce: false,
        },
    );
});
