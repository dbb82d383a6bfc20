//! The personal page (`/account`), signed in through yihao's own SSO: without a session the browser
//! goes through `/authorize` as the built-in client `yihao-account` (`app::ACCOUNT_CLIENT`) and comes
//! back to `/account/callback`. Forms carry a CSRF token bound to the browser; each calls one
//! operation of `protocol::my_account`. Exports of the disclosure ledger as CSV and JSON.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::AppState;
use super::cookies::{self, BrowserBinding, checked_browser, cookie, form_token};
use super::error::{expired, server_error_page};
use super::pages::{self, AccountPage, Row, Texts, render};
use super::register::policy_message;
use super::request::{self, field, pairs};
use crate::app::{ACCOUNT_CLIENT, App};
use crate::domain::account::{Account, AccountId};
use crate::domain::date::rfc3339;
use crate::domain::password::Password;
use crate::protocol::OAuthError;
use crate::protocol::my_account::ChangeRefused;
use crate::protocol::pkce;

/// The signed-in person and their session id, or the redirect that signs them in.
pub(super) async fn signed_in(
    app: &App,
    headers: &HeaderMap,
) -> Result<(AccountId, String), Response> {
    session_of(app, headers)
        .await
        .ok_or_else(|| sign_in_redirect(app))
}

/// The person of the browser's SSO session and the session's id, if it has a live one.
pub(super) async fn session_of(app: &App, headers: &HeaderMap) -> Option<(AccountId, String)> {
    let ring = app.keys.ring();
    let secret = cookie(app, headers, cookies::SESSION);
    let (sid, session) = app
        .interactions(&ring)
        .session(secret.as_deref(), app.now())
        .await
        .ok()
        .flatten()?;
    AccountId::parse(&session.account_id)
        .ok()
        .map(|id| (id, sid))
}

/// `/authorize` for the personal page's own client (public, PKCE S256; the code is not exchanged:
/// the session cookie set by the login is what the page reads).
fn sign_in_redirect(app: &App) -> Response {
    let issuer = app.config.server.issuer.trim_end_matches('/');
    let verifier = crate::crypto::random_token();
    let challenge = pkce::s256(&verifier);
    let mut url = match url::Url::parse(&format!("{issuer}/authorize")) {
        Ok(url) => url,
        Err(_) => return Redirect::to("/authorize").into_response(),
    };
    url.query_pairs_mut()
        .append_pair("client_id", ACCOUNT_CLIENT)
        .append_pair("redirect_uri", &format!("{issuer}/account/callback"))
        .append_pair("response_type", "code")
        .append_pair("scope", "openid")
        .append_pair("state", &crate::crypto::random_token())
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    Redirect::to(url.as_str()).into_response()
}

/// `GET /account/callback`: back from the login; the page itself.
pub async fn callback() -> Response {
    Redirect::to("/account").into_response()
}

pub(super) fn when(t: &Texts, epoch: i64) -> String {
    let s = rfc3339(epoch);
    // `2026-11-28T09:13:45+08:00` -> `2026-11-28 09:13` (China Standard Time).
    let short = s.get(..16).unwrap_or(&s).replace('T', " ");
    if t.chinese {
        short
    } else {
        format!("{short} CST")
    }
}

pub(super) fn role_label(t: &Texts, role: crate::domain::organisation::Role) -> String {
    use crate::domain::organisation::Role;
    let i = match role {
        Role::LegalRepresentative => 0,
        Role::Administrator => 1,
        Role::Agent => 2,
    };
    t.roles[i].to_owned()
}

fn method_label(t: &Texts, method: &str) -> String {
    t.methods
        .iter()
        .find(|(m, _)| *m == method)
        .map_or(method, |(_, label)| label)
        .to_owned()
}

/// `GET /account`.
pub async fn page(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let (id, sid) = match signed_in(&app, &headers).await {
        Ok(found) => found,
        Err(redirect) => return redirect,
    };
    show(&app, &headers, &id, &sid, None, None, StatusCode::OK).await
}

/// What the second-factor section shows beyond the list: an enrolment, new recovery codes.
#[derive(Default)]
pub(super) struct Extras {
    pub enrol: Option<pages::EnrolView>,
    pub new_codes: Option<Vec<String>>,
    /// A passkey registration's options (JSON).
    pub passkey_options: Option<String>,
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn show(
    app: &App,
    headers: &HeaderMap,
    id: &AccountId,
    sid: &str,
    notice: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let extras = Extras::default();
    show_with(app, headers, id, sid, notice, error, status, extras).await
}

/// [`show`], with an enrolment or new recovery codes.
#[allow(clippy::too_many_arguments)]
pub(super) async fn show_with(
    app: &App,
    headers: &HeaderMap,
    id: &AccountId,
    sid: &str,
    notice: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
    extras: Extras,
) -> Response {
    let t = pages::texts(&[], headers);
    let context = crate::protocol::audit::RequestContext::default();
    let my = app.my_account(&context);
    let account: Account = match my.account(id).await {
        Ok(Some(a)) => a,
        Ok(None) => return sign_in_redirect(app),
        Err(e) => return server_error_page(t, &e),
    };
    let loaded = async {
        Ok::<_, crate::store::StoreError>((
            my.sessions(id).await?,
            my.services(id).await?,
            my.organisations(id, app.now()).await?,
            my.history(id, 50).await?,
            my.ledger(id, 100).await?,
            app.second_factors(&context).list(id.as_str()).await?,
            app.second_factors(&context)
                .recovery_codes_left(id.as_str())
                .await?,
        ))
    }
    .await;
    let (sessions, services, orgs, history, ledger, factors, codes_left) = match loaded {
        Ok(all) => all,
        Err(e) => return server_error_page(t, &e),
    };
    let binding = BrowserBinding::of(app, headers);
    let csrf = form_token(app, &binding.hash);
    let sessions = sessions
        .into_iter()
        .map(|s| {
            let mine = s.sid == sid;
            Row {
                cells: vec![
                    when(t, s.created_at),
                    format!("{}{}", s.client_id, if mine { t.this_session } else { "" }),
                    s.channel,
                    s.ip.unwrap_or_default(),
                ],
                action: Some(("/account/sessions/end".into(), "sid", s.sid, t.end_session)),
                link: None,
            }
        })
        .collect();
    let services = services
        .into_iter()
        .map(|s| Row {
            cells: vec![s.name, s.scopes.join(" "), when(t, s.granted_at)],
            action: Some((
                "/account/services/withdraw".into(),
                "client_id",
                s.client_id,
                t.withdraw,
            )),
            link: None,
        })
        .collect();
    let orgs = orgs
        .into_iter()
        .map(|(org, m)| Row {
            link: Some((
                format!("/account/org/{}", org.credit_code.as_str()),
                t.manage,
            )),
            cells: vec![
                org.name,
                org.credit_code.as_str().to_owned(),
                role_label(t, m.role),
                m.expires_at.map_or(t.no_expiry.to_owned(), |e| {
                    format!("{} {}", t.expires, when(t, e))
                }),
            ],
            action: None,
        })
        .collect();
    let history = history
        .into_iter()
        .map(|e| Row {
            cells: vec![
                when(t, e.at_ms / 1000),
                e.event,
                if e.success { t.success } else { t.failure }.to_owned(),
                e.client_id.unwrap_or_default(),
                e.ip.unwrap_or_default(),
            ],
            action: None,
            link: None,
        })
        .collect();
    let ledger = ledger
        .into_iter()
        .map(|r| Row {
            cells: vec![
                when(t, r.at_ms / 1000),
                r.client_name,
                r.claims.join(", "),
                r.consent.join(" "),
            ],
            action: None,
            link: None,
        })
        .collect();
    let factor_choices = factors
        .iter()
        .map(|f| (f.id.clone(), f.label.clone()))
        .collect();
    let factors = factors
        .into_iter()
        .map(|f| Row {
            cells: vec![
                f.label,
                if f.kind == crate::protocol::factors::PASSKEY {
                    t.kind_passkey
                } else {
                    t.kind_totp
                }
                .to_owned(),
                when(t, f.created_at),
                f.last_used_at.map_or(t.never.to_owned(), |at| when(t, at)),
            ],
            action: None,
            link: None,
        })
        .collect();
    let e = &account.evidence;
    let document = account
        .documents
        .first()
        .map(|d| d.masked())
        .unwrap_or_default();
    let phone = account
        .phone
        .as_ref()
        .map(|p| p.masked())
        .unwrap_or_default();
    let level = e.level().acr();
    let method = method_label(t, e.method().as_str());
    let verified_on = when(t, e.verified_at());
    let mut response = render(
        status,
        &AccountPage {
            t,
            csrf: &csrf,
            notice,
            error,
            name: &account.name.masked(),
            document: &document,
            phone: &phone,
            level: &level,
            method: &method,
            verified_on: &verified_on,
            sessions,
            services,
            orgs,
            history,
            ledger,
            enterprise_register: app.enterprise_register_enabled(),
            close_intro: t.close_intro.replace(
                "{n}",
                &app.config.registration.closed_erase_after_days.to_string(),
            ),
            totp_offered: app.config.second_factor.totp,
            factors,
            factor_choices,
            codes_left,
            enrol: extras.enrol,
            new_codes: extras.new_codes,
            passkeys_offered: app.webauthn.is_some(),
            passkey_options: extras.passkey_options,
        },
    );
    binding.apply(&mut response);
    response
}

/// A form posted on the personal page, checked: the person, their session, the browser it came
/// from (its binding hash, which the form's CSRF token matched), the form's fields.
pub(super) struct Posted {
    pub id: AccountId,
    pub sid: String,
    pub browser: String,
    pub form: Vec<(String, String)>,
}

pub(super) async fn posted(
    app: &App,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Posted, Response> {
    let form = pairs(body);
    let t = pages::texts(&[], headers);
    let (id, sid) = signed_in(app, headers).await?;
    let Some(browser) = checked_browser(app, headers, field(&form, "csrf")) else {
        return Err(expired(t));
    };
    Ok(Posted {
        id,
        sid,
        browser,
        form,
    })
}

/// `POST /account/sessions/end`: one session (`sid`), or every other one (`others`).
pub async fn end_session(
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
    let my = app.my_account(&context);
    let target = field(&form, "sid");
    let now = app.now();
    let ended = if target == "others" {
        my.end_other_sessions(&id, Some(&sid), now).await
    } else {
        my.end_session(&id, target, now).await.map(usize::from)
    };
    match ended {
        // The person ended the session showing the page: sign in again.
        Ok(_) if target == sid => sign_in_redirect(&app),
        Ok(n) => {
            let notice = t.sessions_ended.replace("{n}", &n.to_string());
            show(
                &app,
                &headers,
                &id,
                &sid,
                Some(&notice),
                None,
                StatusCode::OK,
            )
            .await
        }
        Err(e) => server_error_page(t, &e),
    }
}

/// `POST /account/services/withdraw`.
pub async fn withdraw(
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
    let done = app
        .my_account(&context)
        .withdraw(&id, field(&form, "client_id"), app.now())
        .await;
    // `None`: nothing was consented to that service (withdrawn already, in another tab).
    let notice = match done {
        Ok(withdrawn) => withdrawn.map(|_| t.withdrawn),
        Err(e) => return server_error_page(t, &e),
    };
    show(&app, &headers, &id, &sid, notice, None, StatusCode::OK).await
}

/// `POST /account/password`.
pub async fn change_password(
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
    if field(&form, "password") != field(&form, "password2") {
        let error = Some(t.passwords_differ);
        return show(
            &app,
            &headers,
            &id,
            &sid,
            None,
            error,
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    let context = request::context(&headers, &extensions);
    let current = Password::new(field(&form, "current"));
    let new = Password::new(field(&form, "password"));
    let changed = app
        .my_account(&context)
        .change_password(&id, &current, &new, &sid, app.now())
        .await;
    let (status, error) = match changed {
        Ok(()) => {
            let notice = Some(t.password_changed);
            return show(&app, &headers, &id, &sid, notice, None, StatusCode::OK).await;
        }
        Err(ChangeRefused::WrongPassword) => {
            (StatusCode::UNAUTHORIZED, t.wrong_password.to_owned())
        }
        Err(ChangeRefused::RateLimited { .. }) => {
            (StatusCode::TOO_MANY_REQUESTS, t.too_many.to_owned())
        }
        Err(ChangeRefused::Policy(e)) => (StatusCode::BAD_REQUEST, policy_message(t, &e)),
        Err(ChangeRefused::Account(e)) => return server_error_page(t, &OAuthError::server(e)),
    };
    show(&app, &headers, &id, &sid, None, Some(&error), status).await
}

/// `GET /account/ledger.csv` and `/account/ledger.json`: the whole disclosure ledger (the last
/// 10 000 releases) as a download.
pub async fn ledger_export(
    State(app): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let (id, _) = match signed_in(&app, &headers).await {
        Ok(found) => found,
        Err(redirect) => return redirect,
    };
    let t = pages::texts(&[], &headers);
    let context = crate::protocol::audit::RequestContext::default();
    let ledger = match app.my_account(&context).ledger(&id, 10_000).await {
        Ok(l) => l,
        Err(e) => return server_error_page(t, &e),
    };
    let json = uri.path().ends_with(".json");
    let (body, content_type, name) = if json {
        let body = serde_json::to_string_pretty(&ledger).unwrap_or_default();
        (body, "application/json", "ledger.json")
    } else {
        let mut csv = String::from("time,client_id,service,claims,via,consent\r\n");
        for r in &ledger {
            let fields = [
                rfc3339(r.at_ms / 1000),
                r.client_id.clone(),
                r.client_name.clone(),
                r.claims.join(" "),
                r.via.clone(),
                r.consent.join(" "),
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            csv.push_str(&line.join(","));
            csv.push_str("\r\n");
        }
        (csv, "text/csv; charset=utf-8", "ledger.csv")
    };
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

/// RFC 4180: quoted when it holds a comma, a quote or a line break; a leading `=`, `+`, `-` or `@`
/// is prefixed with `'` so a spreadsheet does not run it as a formula (a service name is chosen by
/// whoever registered the client).
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// The message of a refused phone change, or the server error.
fn phone_message(
    t: &'static Texts,
    refused: crate::protocol::phone_change::PhoneRefused,
) -> Result<(StatusCode, String), OAuthError> {
    use crate::protocol::phone_change::PhoneRefused as R;
    let plain = |status, text: &str| Ok((status, text.to_owned()));
    match refused {
        R::BadPhone(_) => plain(StatusCode::BAD_REQUEST, t.bad_phone),
        R::SameNumber => plain(StatusCode::BAD_REQUEST, t.phone_same),
        R::NoOldNumber => plain(StatusCode::BAD_REQUEST, t.no_old_number),
        R::RealNameRefused => plain(StatusCode::UNPROCESSABLE_ENTITY, t.real_name_refused),
        R::RegisterUnavailable(_) => plain(StatusCode::SERVICE_UNAVAILABLE, t.register_down),
        R::Taken => plain(StatusCode::CONFLICT, t.phone_taken),
        R::Expired => plain(StatusCode::BAD_REQUEST, t.phone_expired),
        R::RateLimited { .. } => plain(StatusCode::TOO_MANY_REQUESTS, t.too_many),
        R::Send(e) => super::sms_login::send_refusal(t, e).map(|(s, text, _)| (s, text)),
        R::Code { old, error } => super::sms_login::code_refusal(t, error).map(|(s, text, _)| {
            let which = if old {
                t.old_code_label
            } else {
                t.new_code_label
            };
            (s, format!("{which}: {text}"))
        }),
        R::Server(e) => Err(e),
    }
}

fn phone_confirm(
    t: &Texts,
    csrf: &str,
    draft: &str,
    old_code: bool,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    render(
        status,
        &pages::PhoneConfirmPage {
            t,
            csrf,
            draft,
            old_code,
            error,
            notice: error.is_none().then_some(t.codes_sent),
        },
    )
}

/// `POST /account/phone`: the new number, and how the person proves it is them.
pub async fn phone_start(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    use crate::protocol::phone_change::Proof;
    let Posted {
        id,
        sid,
        browser,
        form,
    } = match posted(&app, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = pages::texts(&[], &headers);
    if !app.sms_enabled() {
        return expired(t);
    }
    let proof = if field(&form, "proof") == "real_name" {
        Proof::RealName
    } else {
        Proof::OldNumber
    };
    let real_name =
        (proof == Proof::RealName).then(|| (field(&form, "number"), field(&form, "name")));
    let text = pages::sms_text(&app.config.sms, t);
    let context = request::context(&headers, &extensions);
    let started = app
        .phone_change(&context)
        .start(
            &id,
            &browser,
            field(&form, "phone"),
            proof,
            real_name,
            text,
            app.now(),
        )
        .await;
    let csrf = form_token(&app, &browser);
    match started {
        Ok(s) => phone_confirm(t, &csrf, &s.draft, s.old_code, None, StatusCode::OK),
        Err(refused) => match phone_message(t, refused) {
            Ok((status, text)) => show(&app, &headers, &id, &sid, None, Some(&text), status).await,
            Err(e) => server_error_page(t, &e),
        },
    }
}

/// `POST /account/phone/confirm`: the codes.
pub async fn phone_confirm_post(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let Posted {
        id,
        sid,
        browser,
        form,
    } = match posted(&app, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = pages::texts(&[], &headers);
    let context = request::context(&headers, &extensions);
    let draft = field(&form, "draft");
    let done = app
        .phone_change(&context)
        .confirm(
            &id,
            &browser,
            draft,
            field(&form, "old_code"),
            field(&form, "new_code"),
            app.now(),
        )
        .await;
    let csrf = form_token(&app, &browser);
    match done {
        Ok(_) => {
            show(
                &app,
                &headers,
                &id,
                &sid,
                Some(t.phone_changed),
                None,
                StatusCode::OK,
            )
            .await
        }
        Err(refused) => {
            let expired_draft = matches!(
                refused,
                crate::protocol::phone_change::PhoneRefused::Expired
            );
            match phone_message(t, refused) {
                Ok((status, text)) if expired_draft => {
                    show(&app, &headers, &id, &sid, None, Some(&text), status).await
                }
                Ok((status, text)) => {
                    let old = !field(&form, "old_code").is_empty();
                    phone_confirm(t, &csrf, draft, old, Some(&text), status)
                }
                Err(e) => server_error_page(t, &e),
            }
        }
    }
}

/// `POST /account/close`: closes the account (current password and a confirmation), signs the
/// browser out and says when the data goes.
pub async fn close(
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
    if field(&form, "confirm") != "yes" {
        let error = Some(t.close_confirm_missing);
        return show(
            &app,
            &headers,
            &id,
            &sid,
            None,
            error,
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    let context = request::context(&headers, &extensions);
    let current = Password::new(field(&form, "current"));
    let closed = app
        .my_account(&context)
        .close(&id, &current, app.now())
        .await;
    let (status, error) = match closed {
        Ok(()) => {
            let days = app.config.registration.closed_erase_after_days.to_string();
            let text = t.closed_text.replace("{n}", &days);
            let mut response = render(
                StatusCode::OK,
                &pages::NoticePage {
                    t,
                    title: t.closed_title,
                    message: &text,
                    link: None,
                },
            );
            response.headers_mut().append(
                header::SET_COOKIE,
                cookies::set_cookie(&app, cookies::SESSION, "", Some(0)),
            );
            return response;
        }
        Err(ChangeRefused::WrongPassword) => {
            (StatusCode::UNAUTHORIZED, t.wrong_password.to_owned())
        }
        Err(ChangeRefused::RateLimited { .. }) => {
            (StatusCode::TOO_MANY_REQUESTS, t.too_many.to_owned())
        }
        Err(ChangeRefused::Policy(e)) => (StatusCode::BAD_REQUEST, policy_message(t, &e)),
        Err(ChangeRefused::Account(e)) => return server_error_page(t, &OAuthError::server(e)),
    };
    show(&app, &headers, &id, &sid, None, Some(&error), status).await
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
    }
}
