//! Relying parties and department systems: their registrations, and their form posts to the
//! token, introspection and revocation endpoints.

use serde_json::Value;
use yihao::app::App;
use yihao::crypto::hash_secret;
use yihao::domain::client::{
    AuthMethod, Client, ClientId, ClientSecrets, ClientSettings, ClientSpec, GrantType,
    RedirectUri, Scope,
};

fn scopes(names: &[&str]) -> Vec<Scope> {
    names.iter().map(|s| Scope::parse(s).unwrap()).collect()
}

/// A service people sign in to through their browser: the code and refresh grants, one redirect URI,
/// no post-logout URI, default settings; named "服务 `id`".
pub fn web(
    id: &str,
    redirect: &str,
    auth_method: AuthMethod,
    scope_names: &[&str],
    first_party: bool,
) -> ClientSpec {
    ClientSpec {
        id: ClientId::parse(id).unwrap(),
        name: format!("服务 {id}"),
        auth_method,
        redirect_uris: vec![RedirectUri::parse(redirect).unwrap()],
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: scopes(scope_names),
        first_party,
        // The server requires PKCE from confidential clients too; the tests' flows leave it out
        // unless they are about PKCE (those register clients without this opt-out, or public ones).
        settings: ClientSettings {
            pkce_optional: true,
            ..ClientSettings::default()
        },
    }
}

/// A department system: client_credentials only, no redirect URIs, default settings; named by its id.
pub fn machine(id: &str, auth_method: AuthMethod, scope_names: &[&str]) -> ClientSpec {
    ClientSpec {
        id: ClientId::parse(id).unwrap(),
        name: id.into(),
        auth_method,
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::ClientCredentials],
        scopes: scopes(scope_names),
        first_party: false,
        settings: ClientSettings::default(),
    }
}

/// The client of `spec`, registered at time 0 with (the hash of) `secret` when its method uses one.
pub fn client(spec: ClientSpec, secret: &str) -> Client {
    let secrets = spec
        .auth_method
        .uses_secret()
        .then(|| ClientSecrets::hashed(hash_secret(secret), None));
    Client::register(spec, secrets, 0).unwrap()
}

/// Registers the [`client`] of `spec` in the app's store.
pub async fn register(app: &App, spec: ClientSpec, secret: &str) {
    app.store
        .insert_client(&client(spec, secret))
        .await
        .unwrap();
}

/// Posts a form to an endpoint with Basic authentication and returns status and JSON.
pub async fn post_form(
    base: &str,
    path: &str,
    client: (&str, &str),
    form: &[(&str, &str)],
) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .basic_auth(client.0, Some(client.1))
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}
