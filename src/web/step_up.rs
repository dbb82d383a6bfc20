//! The step-up pages of an interaction (docs/assurance.md): `POST /login/second-factor` (a TOTP
//! code, a recovery code, or enrolling an authenticator app when the account must use two factors
//! and has none) and `POST /login/proofing` (continue after a face check in the app, or go on
//! without it when the level was only wished for). Each form belongs to its interaction, carries
//! its CSRF token and must come from the browser the page was shown in, with that browser's
//! session of the interaction's account.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::AppState;
use super::authorize::{Page, continue_signed_in, proceed};
use super::cookies::{self, cookie};
use super::error::{expired, server_error_page};
use super::interaction::{InteractionForm, interaction_form, retry_after};
use super::pages::{self, EnrolView, ProofingPage, SecondFactorPage, allow_form_target, render};
use super::request::{self, field};
use crate::app::App;
use crate::domain::account::AccountId;
use crate::protocol::assurance::has_second_factor;
use crate::protocol::audit::RequestContext;
use crate::protocol::factors::FactorError;
use crate::protocol::passkeys::PasskeyError;
use crate::protocol::session::{self, Interaction, Session, Step};
use crate::store::StoreError;

/// Starts an authenticator-app enrolment for the account and draws its QR code. The app shows the
/// account by its masked mobile number (never a full number).
pub(super) async fn enrolment(
    app: &App,
    context: &RequestContext,
    account_id: &str,
) -> Result<EnrolView, StoreError> {
    let label = account_label(app, account_id).await?;
    let enrolment = app
        .second_factors(context)
        .start_totp(account_id, &label)
        .await?;
    Ok(view(&enrolment))
}

/// The enrolment in progress, drawn again (after a wrong code); `None` once it expired.
pub(super) async fn pending_enrolment(
    app: &App,
    context: &RequestContext,
    account_id: &str,
) -> Result<Option<EnrolView>, StoreError> {
    let label = account_label(app, account_id).await?;
    let pending = app
        .second_factors(context)
        .pending_totp(account_id, &label)
        .await?;
    Ok(pending.as_ref().map(view))
}

/// How authenticator apps show the account: its masked mobile number.
async fn account_label(app: &App, account_id: &str) -> Result<String, StoreError> {
    let Ok(id) = AccountId::parse(account_id) else {
        return Ok(String::new());
    };
    Ok(app
        .identities
        .account(&id)
        .await
        .map_err(|e| StoreError::backend("account", e))?
        .and_then(|a| a.phone.map(|p| p.masked()))
        .unwrap_or_default())
}

fn view(enrolment: &crate::protocol::factors::Enrolment) -> EnrolView {
    EnrolView {
        qr_svg: pages::qr_svg(&enrolment.uri),
        secret: enrolment.secret.base32(),
    }
}

/// The options of a passkey ceremony for interaction `id` (JSON for the page's form): a sign-in
/// with a passkey alone when `account` is `None`, else a second factor of that account (`None`
/// when it has no passkey). `None` too when passkeys are not offered, or on a failure (logged):
/// the page then offers the other ways.
pub(super) async fn passkey_options(
    app: &App,
    context: &RequestContext,
    id: &str,
    account: Option<&str>,
) -> Option<String> {
    let passkeys = app.passkeys(context)?;
    match passkeys.start_authentication(id, account).await {
        Ok(options) => options.map(|o| o.to_string()),
        Err(e) => {
            tracing::warn!(error = %e, "no passkey ceremony");
            None
        }
    }
}

/// What a step of a lost-factor reset led to.
enum Lost {
    /// The code went to this masked number.
    Sent(String),
    /// The old factors are gone; a new authenticator app to enrol.
    Reset(EnrolView),
}

/// A refused step of a lost-factor reset: the status, the message, the masked number when the code
/// form should stay, and `Retry-After`.
type LostPage = (StatusCode, &'static str, Option<String>, Option<u64>);

/// The two steps of a lost-factor reset (`lost_send`, `lost_confirm`); a refusal is the status, the
/// message and, when the code form should stay, the masked number.
#[allow(clippy::too_many_arguments)]
async fn lost_factor(
    app: &App,
    context: &RequestContext,
    t: &'static pages::Texts,
    form: &[(String, String)],
    (account, sid): (&str, &str),
    method: &str,
    now: i64,
) -> Result<Lost, LostPage> {
    use crate::protocol::lost_factor::LostRefused;
    use crate::protocol::sms_code::{CodeRefused, SendRefused};
    let lost = app.lost_factor(context);
    let refusal = |e: LostRefused, keep: Option<String>| -> LostPage {
        let (status, message, keep) = match e {
            LostRefused::Send(SendRefused::TooSoon { retry_after })
            | LostRefused::Send(SendRefused::DailyCap { retry_after, .. }) => {
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    t.too_many,
                    None,
                    Some(retry_after),
                );
            }
            LostRefused::NoPhone => (StatusCode::BAD_REQUEST, t.no_old_number, None),
            LostRefused::Send(_) | LostRefused::Unavailable(_) | LostRefused::Server(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, t.unavailable, keep)
            }
            LostRefused::Code(CodeRefused::Wrong { .. } | CodeRefused::Malformed) => {
                (StatusCode::UNAUTHORIZED, t.code_wrong, keep)
            }
            LostRefused::Code(CodeRefused::Used) => (StatusCode::UNAUTHORIZED, t.code_used, None),
            LostRefused::Code(_) => (StatusCode::UNAUTHORIZED, t.code_expired, None),
            LostRefused::NotConfirmed => (StatusCode::UNAUTHORIZED, t.lost_refused, keep),
        };
        (status, message, keep, None)
    };
    if method == "lost_send" {
        let text = pages::sms_text(&app.config.sms, t);
        return lost
            .send(account, text, now)
            .await
            .map(Lost::Sent)
            .map_err(|e| refusal(e, None));
    }
    let keep = Some(field(form, "phone_shown").to_owned()).filter(|p| !p.is_empty());
    lost.confirm(
        account,
        sid,
        field(form, "code"),
        field(form, "number"),
        field(form, "name"),
        now,
    )
    .await
    .map_err(|e| refusal(e, keep))?;
    enrolment(app, context, account)
        .await
        .map(Lost::Reset)
        .map_err(|_| (StatusCode::SERVICE_UNAVAILABLE, t.unavailable, None, None))
}

/// The browser's session, when it is the interaction's account's.
async fn session_of(
    app: &App,
    headers: &HeaderMap,
    interaction: &Interaction,
) -> Result<Option<(String, Session)>, StoreError> {
    let secret = cookie(app, headers, cookies::SESSION);
    let ring = app.keys.ring();
    let current = app
        .interactions(&ring)
        .session(secret.as_deref(), app.now())
        .await?;
    Ok(current.filter(|(_, s)| interaction.account_id.as_deref() == Some(&s.account_id)))
}

/// `POST /login/second-factor`.
pub async fn second_factor(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let InteractionForm {
        form,
        id,
        interaction,
        t,
        client,
    } = match interaction_form(&app, &headers, &body, Step::SecondFactor).await {
        Ok(f) => f,
        Err(page) => return page,
    };
    let (sid, session) = match session_of(&app, &headers, &interaction).await {
        Ok(Some(current)) => current,
        Ok(None) => return expired(t),
        Err(e) => return server_error_page(t, &e),
    };
    let context = request::context(&headers, &extensions);
    let factors = app.second_factors(&context);
    let account = session.account_id.clone();
    let code = field(&form, "code");
    let now = app.now();
    let method = field(&form, "method");
    let checked = match method {
        "totp" => factors.check_totp(&account, code, now).await.map(|()| None),
        "recovery" => factors
            .check_recovery_code(&account, code, now)
            .await
            .map(|()| None),
        "enrol" => {
            factors
                .confirm_totp(&account, code, t.factor_default_name, now)
                .await
        }
        "passkey" => {
            let Some(passkeys) = app.passkeys(&context) else {
                return expired(t);
            };
            match passkeys
                .finish_authentication(&id, field(&form, "credential"), now)
                .await
            {
                Ok(signer) if signer == account => Ok(None),
                Ok(_) => Err(FactorError::WrongCode),
                Err(PasskeyError::Server(e)) => return server_error_page(t, &e),
                Err(PasskeyError::Cloned) => Err(FactorError::Replayed),
                Err(_) => Err(FactorError::WrongCode),
            }
        }
        // After the recovery codes of an enrolment: the session has its second factor already.
        "continue" if has_second_factor(&session.amr) => {
            return finish(
                &app,
                &headers,
                &context,
                &client,
                &id,
                interaction,
                sid,
                session,
            )
            .await;
        }
        "lost_send" | "lost_confirm" => Ok(None),
        _ => return expired(t),
    };
    let page = |error: Option<&'static str>,
                enrol: Option<EnrolView>,
                codes: Option<Vec<String>>,
                passkey: Option<String>| SecondFactorPage {
        t,
        client_name: client.name(),
        interaction: &id,
        csrf: &interaction.csrf,
        error,
        enrol,
        recovery_codes: codes,
        passkey,
        lost_offered: app.registration_enabled(),
        lost: None,
    };
    if method == "lost_send" || method == "lost_confirm" {
        let lost = lost_factor(&app, &context, t, &form, (&account, &sid), method, now).await;
        let (status, error, sent, enrol, after) = match lost {
            Ok(Lost::Sent(phone)) => (StatusCode::OK, None, Some(phone), None, None),
            Ok(Lost::Reset(view)) => (StatusCode::OK, Some(t.lost_done), None, Some(view), None),
            Err((status, message, sent, after)) => (status, Some(message), sent, None, after),
        };
        let passkey = if enrol.is_none() {
            passkey_options(&app, &context, &id, Some(&account)).await
        } else {
            None
        };
        let mut shown = page(error, enrol, None, passkey);
        shown.lost = sent;
        let mut response = render(status, &shown);
        allow_form_target(&mut response, &interaction.request.redirect_uri);
        retry_after(&mut response, after);
        return response;
    }
    let codes = match checked {
        Ok(codes) => codes,
        Err(FactorError::Server(e)) => return server_error_page(t, &e),
        Err(refused) => {
            let (status, message, after) = match refused {
                FactorError::RateLimited { retry_after } => {
                    (StatusCode::TOO_MANY_REQUESTS, t.too_many, Some(retry_after))
                }
                FactorError::Replayed if method == "totp" => {
                    (StatusCode::UNAUTHORIZED, t.sf_replayed, None)
                }
                FactorError::Replayed if method == "passkey" => {
                    (StatusCode::UNAUTHORIZED, t.passkey_cloned, None)
                }
                _ if method == "passkey" => (StatusCode::UNAUTHORIZED, t.passkey_refused, None),
                FactorError::Expired => (StatusCode::BAD_REQUEST, t.enrol_expired, None),
                _ if method == "recovery" => (StatusCode::UNAUTHORIZED, t.recovery_wrong, None),
                _ => (StatusCode::UNAUTHORIZED, t.sf_wrong, None),
            };
            // An enrolment shows its QR code again (a new one once the old expired).
            let enrol = if method == "enrol" {
                let pending = match pending_enrolment(&app, &context, &account).await {
                    Ok(p) => p,
                    Err(e) => return server_error_page(t, &e),
                };
                match pending {
                    Some(v) => Some(v),
                    None => match enrolment(&app, &context, &account).await {
                        Ok(v) => Some(v),
                        Err(e) => return server_error_page(t, &e),
                    },
                }
            } else {
                None
            };
            // A new passkey ceremony for the page shown again (the last one is spent).
            let passkey = if enrol.is_none() {
                passkey_options(&app, &context, &id, Some(&account)).await
            } else {
                None
            };
            let mut response = render(status, &page(Some(message), enrol, None, passkey));
            allow_form_target(&mut response, &interaction.request.redirect_uri);
            retry_after(&mut response, after);
            return response;
        }
    };
    // RFC 8176: "hwk" for proof of possession of a hardware-secured key, "otp" for a one-time code.
    let method = if method == "passkey" { "hwk" } else { "otp" };
    let ring = app.keys.ring();
    let raised = app
        .interactions(&ring)
        .raise(&app.audit(&context), &sid, session, method, now)
        .await;
    let session = match raised {
        Ok(s) => s,
        Err(e) => return server_error_page(t, &e),
    };
    if let Some(codes) = codes {
        // Shown once; the form's "continue" goes on with the request.
        let mut response = render(StatusCode::OK, &page(None, None, Some(codes), None));
        allow_form_target(&mut response, &interaction.request.redirect_uri);
        return response;
    }
    finish(
        &app,
        &headers,
        &context,
        &client,
        &id,
        interaction,
        sid,
        session,
    )
    .await
}

/// Ends the interaction and goes on with its request in the raised session.
#[allow(clippy::too_many_arguments)]
async fn finish(
    app: &App,
    headers: &HeaderMap,
    context: &RequestContext,
    client: &crate::domain::client::Client,
    id: &str,
    interaction: Interaction,
    sid: String,
    session: Session,
) -> Response {
    let _ = session::end_interaction(app.ephemeral.as_ref(), id).await;
    let t = pages::texts(&interaction.request.ui_locales, headers);
    let page = Page {
        t,
        headers,
        context,
    };
    proceed(
        app,
        &page,
        client,
        interaction.request,
        Some((sid, session)),
        true,
    )
    .await
}

/// `POST /login/proofing`: `continue` looks again (the face check is done in the app or at a
/// kiosk); `skip` goes on at the level reached, which ends in `unmet_authentication_requirements`
/// when the level was essential.
pub async fn proofing(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let InteractionForm {
        form,
        id,
        mut interaction,
        t,
        client,
    } = match interaction_form(&app, &headers, &body, Step::Proofing).await {
        Ok(f) => f,
        Err(page) => return page,
    };
    let (sid, session) = match session_of(&app, &headers, &interaction).await {
        Ok(Some(current)) => current,
        Ok(None) => return expired(t),
        Err(e) => return server_error_page(t, &e),
    };
    let context = request::context(&headers, &extensions);
    match field(&form, "decision") {
        "skip" => interaction.request.step_up_declined = true,
        "continue" => {
            let ring = app.keys.ring();
            let next = app
                .interactions(&ring)
                .next(
                    &client,
                    &interaction.request,
                    Some((sid.clone(), session.clone())),
                    true,
                    app.now(),
                )
                .await;
            if matches!(
                next,
                Ok(crate::protocol::interaction::Next::Proofing { .. })
            ) {
                let mut response = render(
                    StatusCode::OK,
                    &ProofingPage {
                        t,
                        client_name: client.name(),
                        interaction: &id,
                        csrf: &interaction.csrf,
                        error: Some(t.proofing_pending),
                    },
                );
                allow_form_target(&mut response, &interaction.request.redirect_uri);
                return response;
            }
        }
        _ => return expired(t),
    }
    finish(
        &app,
        &headers,
        &context,
        &client,
        &id,
        interaction,
        sid,
        session,
    )
    .await
}

/// `POST /login/passkey`: signs in with a passkey alone (a discoverable credential, user
/// verification required): `amr` `hwk` and `mfa`, at min(the account's level, 3).
pub async fn login(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let InteractionForm {
        form,
        id,
        interaction,
        t,
        client,
    } = match interaction_form(&app, &headers, &body, Step::Login).await {
        Ok(f) => f,
        Err(page) => return page,
    };
    let context = request::context(&headers, &extensions);
    let Some(passkeys) = app.passkeys(&context) else {
        return expired(t);
    };
    let now = app.now();
    let signed = passkeys
        .finish_authentication(&id, field(&form, "credential"), now)
        .await;
    let refused = |message: &'static str, passkey: Option<String>| {
        let page = pages::LoginPage {
            t,
            client_name: client.name(),
            interaction: &id,
            csrf: &interaction.csrf,
            identifier: "",
            error: Some(message),
            sms: app.sms_enabled(),
            register: app.registration_enabled(),
            passkey,
        };
        let mut response = render(StatusCode::UNAUTHORIZED, &page);
        allow_form_target(&mut response, &interaction.request.redirect_uri);
        response
    };
    let account_id = match signed {
        Ok(account_id) => account_id,
        Err(PasskeyError::Server(e)) => return server_error_page(t, &e),
        Err(e) => {
            let message = match e {
                PasskeyError::Cloned => t.passkey_cloned,
                _ => t.passkey_refused,
            };
            let passkey = passkey_options(&app, &context, &id, None).await;
            return refused(message, passkey);
        }
    };
    let account = match AccountId::parse(&account_id) {
        Ok(aid) => match app.identities.account(&aid).await {
            Ok(Some(a)) => a,
            Ok(None) => return expired(t),
            Err(e) => return server_error_page(t, &e),
        },
        Err(_) => return expired(t),
    };
    if account.status != crate::domain::account::AccountStatus::Active {
        let passkey = passkey_options(&app, &context, &id, None).await;
        return refused(t.unavailable, passkey);
    }
    let previous = cookie(&app, &headers, cookies::SESSION);
    let opened = app
        .password_login(&context)
        .open_session(
            &account,
            &client,
            previous.as_deref(),
            vec!["hwk".into(), "mfa".into()],
            crate::protocol::assurance::TWO_FACTOR_CEILING,
            now,
        )
        .await;
    let signed_in = match opened {
        Ok(s) => s,
        Err(crate::protocol::login::Refused::Server(e)) => return server_error_page(t, &e),
        Err(_) => return expired(t),
    };
    let page = Page {
        t,
        headers: &headers,
        context: &context,
    };
    continue_signed_in(&app, &page, &client, &id, interaction.request, signed_in).await
}
