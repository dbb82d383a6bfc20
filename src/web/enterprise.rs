//! The enterprise page: `POST /account/org` (register an enterprise from the personal page),
//! `GET /account/org/{credit code}`, `POST /account/org/{credit code}/appoint` (an administrator or
//! an agent's mandate) and `POST /account/org/{credit code}/revoke`. Signed in and CSRF-checked as
//! the personal page; `protocol::enterprise` decides who may do what.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::AppState;
use super::account::{Posted, posted, role_label, show, signed_in, when};
use super::cookies::{BrowserBinding, form_token};
use super::error::server_error_page;
use super::pages::{self, EnterprisePage, Row, Texts, render};
use super::request::{self, field};
use crate::app::App;
use crate::domain::account::AccountId;
use crate::domain::date::Date;
use crate::domain::organisation::Role;
use crate::protocol::OAuthError;
use crate::protocol::enterprise::{Appointee, OrgRefused, parse_scope};

/// The message of a refusal, or the error page.
fn message(t: &'static Texts, refused: OrgRefused) -> Result<(StatusCode, String), OAuthError> {
    let plain = |status, text: &str| Ok((status, text.to_owned()));
    match refused {
        OrgRefused::BadCode(e) => plain(
            StatusCode::BAD_REQUEST,
            &format!("{}{}", t.bad_credit_code, e.0),
        ),
        OrgRefused::Invalid(e) => plain(StatusCode::BAD_REQUEST, &e.0),
        OrgRefused::AlreadyRegistered => plain(StatusCode::CONFLICT, t.org_already),
        OrgRefused::NameMismatch => plain(StatusCode::UNPROCESSABLE_ENTITY, t.org_name_mismatch),
        OrgRefused::NotRepresentative => {
            plain(StatusCode::UNPROCESSABLE_ENTITY, t.org_not_representative)
        }
        OrgRefused::NotFound => plain(StatusCode::UNPROCESSABLE_ENTITY, t.org_not_found),
        OrgRefused::RegisterUnavailable(_) => {
            plain(StatusCode::SERVICE_UNAVAILABLE, t.org_register_down)
        }
        OrgRefused::NotAllowed => plain(StatusCode::FORBIDDEN, t.org_not_allowed),
        OrgRefused::NoSuchPerson => plain(StatusCode::UNPROCESSABLE_ENTITY, t.no_such_person),
        OrgRefused::RateLimited { .. } => plain(StatusCode::TOO_MANY_REQUESTS, t.too_many),
        OrgRefused::Server(e) => Err(e),
    }
}

/// `POST /account/org`: registers an enterprise with the signed-in person as legal representative.
pub async fn register(
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
    if !app.enterprise_register_enabled() {
        return super::error::expired(t);
    }
    let context = request::context(&headers, &extensions);
    let person = match app.identities.account(&id).await {
        Ok(Some(a)) => a,
        Ok(None) => return Redirect::to("/account").into_response(),
        Err(e) => return server_error_page(t, &e),
    };
    let done = app
        .enterprises(&context)
        .register(
            &person,
            field(&form, "credit_code"),
            field(&form, "org_name"),
            app.now(),
        )
        .await;
    match done {
        Ok(org) => {
            let to = format!("/account/org/{}", org.credit_code.as_str());
            Redirect::to(&to).into_response()
        }
        Err(refused) => match message(t, refused) {
            Ok((status, text)) => show(&app, &headers, &id, &sid, None, Some(&text), status).await,
            Err(e) => server_error_page(t, &e),
        },
    }
}

/// `GET /account/org/{code}`.
pub async fn page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Response {
    let (id, _) = match signed_in(&app, &headers).await {
        Ok(found) => found,
        Err(redirect) => return redirect,
    };
    render_org(&app, &headers, &id, &code, None, None, StatusCode::OK).await
}

async fn render_org(
    app: &App,
    headers: &HeaderMap,
    id: &AccountId,
    code: &str,
    notice: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let t = pages::texts(&[], headers);
    let context = crate::protocol::audit::RequestContext::default();
    let view = match app.enterprises(&context).view(id, code, app.now()).await {
        Ok(v) => v,
        Err(refused) => {
            return match message(t, refused) {
                Ok((status, text)) => render(
                    status,
                    &pages::NoticePage {
                        t,
                        title: t.error_title,
                        message: &text,
                        link: Some(("/account", t.account_title)),
                    },
                ),
                Err(e) => server_error_page(t, &e),
            };
        }
    };
    let code = view.org.credit_code.as_str().to_owned();
    let representative = view.is_representative();
    let members = view
        .members
        .iter()
        .map(|(m, name)| {
            let revocable = match m.role {
                Role::Administrator => representative,
                Role::Agent => true,
                Role::LegalRepresentative => false,
            };
            Row {
                cells: vec![
                    name.clone(),
                    role_label(t, m.role),
                    m.scope.to_list().join(" "),
                    m.expires_at.map_or(t.no_expiry.to_owned(), |e| when(t, e)),
                ],
                action: revocable.then(|| {
                    (
                        format!("/account/org/{code}/revoke"),
                        "member",
                        format!("{}:{}", m.account_id, m.role.as_str()),
                        t.revoke,
                    )
                }),
                link: None,
            }
        })
        .collect();
    let history = view
        .history
        .iter()
        .map(|r| {
            let details: serde_json::Value = r
                .details
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok())
                .unwrap_or_default();
            Row {
                cells: vec![
                    when(t, r.at_ms / 1000),
                    r.event.clone(),
                    details["role"].as_str().unwrap_or("").to_owned(),
                    if r.result == "success" {
                        t.success
                    } else {
                        t.failure
                    }
                    .to_owned(),
                ],
                action: None,
                link: None,
            }
        })
        .collect();
    let my_roles = view
        .mine
        .iter()
        .map(|r| role_label(t, *r))
        .collect::<Vec<_>>()
        .join(", ");
    let binding = BrowserBinding::of(app, headers);
    let csrf = form_token(app, &binding.hash);
    let mut response = render(
        status,
        &EnterprisePage {
            t,
            csrf: &csrf,
            notice,
            error,
            name: &view.org.name,
            code: &code,
            status: view.org.status.as_str(),
            my_roles: &my_roles,
            manages: view.manages(),
            representative,
            members,
            history,
        },
    );
    binding.apply(&mut response);
    response
}

/// `POST /account/org/{code}/appoint`: an administrator, or an agent with service items and an
/// expiry date (the mandate ends at the end of that day, China Standard Time).
pub async fn appoint(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Path(code): Path<String>,
    body: Bytes,
) -> Response {
    let Posted { id, form, .. } = match posted(&app, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = pages::texts(&[], &headers);
    let now = app.now();
    let bad = |text: &str| (StatusCode::BAD_REQUEST, text.to_owned());
    let role = match field(&form, "role") {
        "administrator" => Role::Administrator,
        "agent" => Role::Agent,
        _ => {
            return render_org(
                &app,
                &headers,
                &id,
                &code,
                None,
                Some(t.org_not_allowed),
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
    };
    let (scope, expires) = if role == Role::Agent {
        let scope = match parse_scope(field(&form, "scope")) {
            Ok(s) => s,
            Err(e) => {
                let (status, text) = bad(&e.0);
                return render_org(&app, &headers, &id, &code, None, Some(&text), status).await;
            }
        };
        let expires = match Date::parse_iso(field(&form, "expires").trim()) {
            Ok(d) => d.cst_midnight_epoch() + 86_400,
            Err(_) => {
                let (status, text) = bad(t.bad_date);
                return render_org(&app, &headers, &id, &code, None, Some(&text), status).await;
            }
        };
        (scope, Some(expires))
    } else {
        (crate::domain::organisation::Scope::All, None)
    };
    let context = request::context(&headers, &extensions);
    let who = Appointee {
        number: field(&form, "number"),
        name: field(&form, "name"),
    };
    let done = app
        .enterprises(&context)
        .appoint(&id, &code, &who, role, scope, expires, now)
        .await;
    match done {
        Ok(_) => {
            render_org(
                &app,
                &headers,
                &id,
                &code,
                Some(t.granted),
                None,
                StatusCode::OK,
            )
            .await
        }
        Err(refused) => match message(t, refused) {
            Ok((status, text)) => {
                render_org(&app, &headers, &id, &code, None, Some(&text), status).await
            }
            Err(e) => server_error_page(t, &e),
        },
    }
}

/// `POST /account/org/{code}/revoke`: `member` = `<account id>:<role>`.
pub async fn revoke(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Path(code): Path<String>,
    body: Bytes,
) -> Response {
    let Posted { id, form, .. } = match posted(&app, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = pages::texts(&[], &headers);
    let parsed = field(&form, "member")
        .split_once(':')
        .and_then(|(a, r)| Some((AccountId::parse(a).ok()?, Role::parse(r).ok()?)));
    let Some((member, role)) = parsed else {
        return render_org(
            &app,
            &headers,
            &id,
            &code,
            None,
            Some(t.org_not_allowed),
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    let context = request::context(&headers, &extensions);
    let done = app
        .enterprises(&context)
        .revoke(&id, &code, &member, role, app.now())
        .await;
    match done {
        Ok(_) => {
            render_org(
                &app,
                &headers,
                &id,
                &code,
                Some(t.revoked),
                None,
                StatusCode::OK,
            )
            .await
        }
        Err(refused) => match message(t, refused) {
            Ok((status, text)) => {
                render_org(&app, &headers, &id, &code, None, Some(&text), status).await
            }
            Err(e) => server_error_page(t, &e),
        },
    }
}
