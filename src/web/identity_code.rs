//! The app's calls for the service window (`protocol::identity_code`): `POST /api/v1/identity-code`
//! (a new code to show, for the scopes the person chose; `{"scope": "openid profile"}` by default)
//! and `GET /api/v1/releases` (what was released lately, from the disclosure ledger, so the app
//! shows the person what the window received). Both take the access token of an `app` client.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::api::token_person;
use super::error::api_error;
use super::error::bearer_error;
use super::{AppState, no_store_json};
use crate::domain::client::Channel;
use crate::domain::date::rfc3339;
use crate::protocol::OAuthError;
use crate::protocol::identity_code;

/// `POST /api/v1/identity-code`.
pub async fn issue(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (account, level) = match token_person(
        &app,
        &headers,
        &[Channel::App],
        "identity codes are shown only by the app",
    )
    .await
    {
        Ok(p) => p,
        Err(r) => return r,
    };
    #[derive(serde::Deserialize, Default)]
    struct Body {
        #[serde(default)]
        scope: Option<String>,
    }
    let asked = if body.is_empty() {
        Body::default()
    } else {
        match serde_json::from_slice::<Body>(&body) {
            Ok(b) => b,
            Err(_) => {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "the body is {\"scope\": \"openid ...\"} or empty",
                );
            }
        }
    };
    let mut scopes: Vec<String> = asked
        .scope
        .as_deref()
        .unwrap_or("openid profile")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".into());
    }
    let issued = identity_code::issue(
        app.ephemeral.as_ref(),
        account.as_str(),
        level,
        scopes,
        app.now(),
    )
    .await;
    match issued {
        Ok(code) => no_store_json(
            StatusCode::OK,
            json!({ "code": code, "expires_in": identity_code::CODE_SECS }),
        ),
        Err(e) => bearer_error(OAuthError::server(e)),
    }
}

/// `GET /api/v1/releases`: the last 20 releases of the person's data.
pub async fn releases(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let (account, _) = match token_person(
        &app,
        &headers,
        &[Channel::App],
        "identity codes are shown only by the app",
    )
    .await
    {
        Ok(p) => p,
        Err(r) => return r,
    };
    let context = crate::protocol::audit::RequestContext::default();
    match app.my_account(&context).ledger(&account, 20).await {
        Ok(ledger) => no_store_json(
            StatusCode::OK,
            json!({
                "releases": ledger
                    .iter()
                    .map(|r| json!({
                        "time": rfc3339(r.at_ms / 1000),
                        "service": r.client_name,
                        "claims": r.claims,
                        "via": r.via,
                    }))
                    .collect::<Vec<_>>(),
            }),
        ),
        Err(e) => bearer_error(OAuthError::server(e)),
    }
}
