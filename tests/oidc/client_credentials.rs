//! The client_credentials grant: machine tokens limited to the client's scopes and resources.

use openidconnect::{OAuth2TokenResponse, Scope};
use yihao::domain::client::{AuthMethod, ClientSpec};

use crate::common::clients::machine;
use crate::{SECRET, jwt_part, post_form, register, rp_client, setup};

#[tokio::test]
async fn client_credentials_give_machine_tokens_limited_to_the_clients_scopes_and_resources() {
    let s = setup(|_| {}).await;
    let app = &s._server.test_app.app;
    let spec = ClientSpec {
        name: "部门系统".into(),
        settings: yihao::domain::client::ClientSettings {
            resources: vec!["https://records.example.gov.cn/".into()],
            ..Default::default()
        },
        ..machine(
            "dept",
            AuthMethod::ClientSecretBasic,
            &["records.read", "records.write"],
        )
    };
    register(app, spec, SECRET).await;
    let (dept, http) = rp_client(&s.base, "dept", Some(SECRET)).await;
    let tokens = dept
        .exchange_client_credentials()
        .unwrap()
        .add_scope(Scope::new("records.read".into()))
        .request_async(&http)
        .await
        .unwrap();
    let access = tokens.access_token().secret().clone();
    let claims = jwt_part(&access, 1);
    assert_eq!(claims["sub"], "dept");
    assert_eq!(claims["client_id"], "dept");
    assert_eq!(claims["scope"], "records.read");
    let (_, r) = post_form(
        &s.base,
        "/token",
        ("dept", SECRET),
        &[
            ("grant_type", "client_credentials"),
            ("resource", "https://records.example.gov.cn/"),
        ],
    )
    .await;
    let claims = jwt_part(r["access_token"].as_str().unwrap(), 1);
    assert_eq!(claims["aud"], "https://records.example.gov.cn/");
    assert_eq!(
        claims["scope"], "records.read records.write",
        "all allowed scopes when none asked"
    );
    let (_, bad) = post_form(
        &s.base,
        "/token",
        ("dept", SECRET),
        &[
            ("grant_type", "client_credentials"),
            ("resource", "https://other.example/"),
        ],
    )
    .await;
    assert_eq!(bad["error"], "invalid_target");
    let (_, bad) = post_form(
        &s.base,
        "/token",
        ("dept", SECRET),
        &[("grant_type", "client_credentials"), ("scope", "openid")],
    )
    .await;
    assert_eq!(bad["error"], "invalid_scope");
    let (_, bad) = post_form(
        &s.base,
        "/token",
        ("hall", SECRET),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(bad["error"], "unauthorized_client");
    // The resource server (here: the same client) introspects the token.
    let (_, active) = post_form(
        &s.base,
        "/introspect",
        ("dept", SECRET),
        &[("token", &access)],
    )
    .await;
    assert_eq!(active["active"], true);
    assert_eq!(active["client_id"], "dept");
}
