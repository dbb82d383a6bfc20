//! The second factors on the personal page (docs/assurance.md): `POST /account/factors` (with the
//! current password: start an authenticator-app enrolment, new recovery codes, or remove a
//! factor) and `POST /account/factors/totp/confirm` (the app's first code finishes the
//! enrolment). A stolen session alone can neither add a factor nor remove one.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::AppState;
use super::account::{Extras, Posted, posted, show, show_with};
use super::error::server_error_page;
use super::request::{self, field};
use super::step_up::enrolment;
use super::{pages, step_up};
use crate::domain::audit::EventType;
use crate::domain::password::Password;
use crate::protocol::OAuthError;
use crate::protocol::factors::FactorError;
use crate::protocol::my_account::ChangeRefused;
use crate::protocol::passkeys::PasskeyError;

/// `POST /account/factors`.
pub async fn manage(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let Posted { id, sid, form, .. } = match posted(&app, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = pages::texts(&[], &headers);
    let context = request::context(&headers, &extensions);
    let action = field(&form, "action");
    let event = match action {
        "remove" => EventType::FactorRemoved,
        _ => EventType::FactorEnrolled,
    };
    let now = app.now();
    let current = Password::new(field(&form, "current"));
    let confirmed = app
        .my_account(&context)
        .confirm_password(&id, &current, event, now)
        .await;
    let refused = match confirmed {
        Ok(()) => None,
        Err(ChangeRefused::WrongPassword) => Some((StatusCode::UNAUTHORIZED, t.wrong_password)),
        Err(ChangeRefused::RateLimited { .. }) => Some((StatusCode::TOO_MANY_REQUESTS, t.too_many)),
        Err(ChangeRefused::Policy(_)) => Some((StatusCode::BAD_REQUEST, t.wrong_password)),
        Err(ChangeRefused::Account(e)) => return server_error_page(t, &OAuthError::server(e)),
    };
    if let Some((status, error)) = refused {
        return show(&app, &headers, &id, &sid, None, Some(error), status).await;
    }
    let factors = app.second_factors(&context);
    let mut extras = Extras::default();
    let notice = match action {
        "add_totp" if !app.config.second_factor.totp => None,
        "add_totp" => match enrolment(&app, &context, id.as_str()).await {
            Ok(view) => {
                extras.enrol = Some(view);
                None
            }
            Err(e) => return server_error_page(t, &e),
        },
        "add_passkey" => {
            let Some(passkeys) = app.passkeys(&context) else {
                return show(&app, &headers, &id, &sid, None, None, StatusCode::OK).await;
            };
            let account = match app.identities.account(&id).await {
                Ok(Some(a)) => a,
                Ok(None) => return super::error::expired(t),
                Err(e) => return server_error_page(t, &e),
            };
            // What the authenticator shows: the masked phone and name, never a full number.
            let user = account
                .phone
                .as_ref()
                .map_or_else(|| account.name.masked(), |p| p.masked());
            match passkeys
                .start_registration(id.as_str(), &user, &account.name.masked())
                .await
            {
                Ok(options) => {
                    extras.passkey_options = Some(options.to_string());
                    None
                }
                Err(e) => return server_error_page(t, &e),
            }
        }
        "new_codes" => match factors.new_recovery_codes(id.as_str(), now).await {
            Ok(codes) => {
                extras.new_codes = Some(codes);
                None
            }
            Err(e) => return server_error_page(t, &e),
        },
        "remove" => match factors
            .remove(id.as_str(), field(&form, "factor"), id.as_str())
            .await
        {
            Ok(true) => Some(t.factor_removed),
            Ok(false) => None,
            Err(e) => return server_error_page(t, &e),
        },
        _ => None,
    };
    show_with(
        &app,
        &headers,
        &id,
        &sid,
        notice,
        None,
        StatusCode::OK,
        extras,
    )
    .await
}

/// The personal page after an enrolment: `notice`, and the recovery codes of a first factor.
async fn enrolled(
    app: &crate::app::App,
    headers: &HeaderMap,
    (id, sid): (&crate::domain::account::AccountId, &str),
    notice: &str,
    codes: Option<Vec<String>>,
) -> Response {
    let extras = Extras {
        new_codes: codes,
        ..Extras::default()
    };
    show_with(
        app,
        headers,
        id,
        sid,
        Some(notice),
        None,
        StatusCode::OK,
        extras,
    )
    .await
}

/// `POST /account/factors/totp/confirm`.
pub async fn confirm_totp(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let Posted { id, sid, form, .. } = match posted(&app, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = pages::texts(&[], &headers);
    let context = request::context(&headers, &extensions);
    let factors = app.second_factors(&context);
    let confirmed = factors
        .confirm_totp(
            id.as_str(),
            field(&form, "code"),
            field(&form, "name"),
            app.now(),
        )
        .await;
    let (status, error) = match confirmed {
        Ok(codes) => return enrolled(&app, &headers, (&id, &sid), t.factor_added, codes).await,
        Err(FactorError::Server(e)) => return server_error_page(t, &e),
        Err(FactorError::RateLimited { .. }) => (StatusCode::TOO_MANY_REQUESTS, t.too_many),
        Err(FactorError::Expired) => (StatusCode::BAD_REQUEST, t.enrol_expired),
        Err(FactorError::BadLabel) => (StatusCode::BAD_REQUEST, t.bad_factor_name),
        Err(_) => (StatusCode::UNAUTHORIZED, t.sf_wrong),
    };
    // The same enrolment again, unless it expired.
    let enrol = match step_up::pending_enrolment(&app, &context, id.as_str()).await {
        Ok(pending) => pending,
        Err(e) => return server_error_page(t, &e),
    };
    let extras = Extras {
        enrol,
        ..Extras::default()
    };
    show_with(&app, &headers, &id, &sid, None, Some(error), status, extras).await
}

/// `POST /account/factors/passkey/confirm`: the authenticator's new credential finishes the
/// registration started by `add_passkey`.
pub async fn confirm_passkey(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let Posted { id, sid, form, .. } = match posted(&app, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = pages::texts(&[], &headers);
    let context = request::context(&headers, &extensions);
    let Some(passkeys) = app.passkeys(&context) else {
        return show(&app, &headers, &id, &sid, None, None, StatusCode::OK).await;
    };
    let finished = passkeys
        .finish_registration(
            &app.second_factors(&context),
            id.as_str(),
            field(&form, "credential"),
            field(&form, "name"),
            app.now(),
        )
        .await;
    let (status, error) = match finished {
        Ok(codes) => return enrolled(&app, &headers, (&id, &sid), t.passkey_added, codes).await,
        Err(PasskeyError::Server(e)) => return server_error_page(t, &e),
        Err(PasskeyError::BadLabel) => (StatusCode::BAD_REQUEST, t.bad_factor_name),
        Err(PasskeyError::Expired) => (StatusCode::BAD_REQUEST, t.enrol_expired),
        Err(_) => (StatusCode::BAD_REQUEST, t.passkey_refused),
    };
    show(&app, &headers, &id, &sid, None, Some(error), status).await
}
