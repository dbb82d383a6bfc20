//! The admin API (docs/administration.md): JSON under `/admin/api/v1`, described by the OpenAPI 3.1
//! document served at `/admin/api/openapi.json`, which utoipa generates from these handlers and the
//! types they speak (nothing written by hand). Each handler is extract -> one
//! `protocol::admin::Administration` call -> respond.
//!
//! Who may call (docs/administration.md, "Who may call"): a bearer access token of this server
//! (RFC 6750 §2.1, RFC 9068) carrying one administrator scope (`admin:system`, `admin:security`,
//! `admin:audit` or `admin:department`):
//! - issued to a person: the person must hold that role now, and the token must come from a
//!   sign-in at level 3 (two factors), else 401 `insufficient_user_authentication` (RFC 9470 §3);
//! - issued to a client itself (client credentials): the client acts in its scope's role, a
//!   department's client for the department that owns it.
//!
//! Then the role decides each action (`domain::admin::AdminRole::may`).

use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, IntoResponses, Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{admin_error, api_error, bearer_error, insufficient_user_authentication};
use crate::crypto::subject::sector_of;
use crate::domain::account::AccountId;
use crate::domain::admin::{Action, AdminRole};
use crate::domain::audit::{AuditEvent, EventType};
use crate::protocol::admin::accounts::{
    AccountView, LevelChange, RecoveryCodeSent, RoleView, SessionView,
};
use crate::protocol::admin::clients::{ClientChange, ClientView, machine_actor};
use crate::protocol::admin::orgs::{NewMember, NewOrg, OrgView, WithdrawnView};
use crate::protocol::admin::system::{
    AuditQuery, AuditView, ClientStats, KeyView, ReportView, VerifyView,
};
use crate::protocol::admin::{Actor, AdminError, Page, page_size};
use crate::protocol::audit::RequestContext;
use crate::protocol::authorize::level_of_acr;

/// Where the API lives.
pub const PREFIX: &str = "/admin/api/v1";
/// Where its OpenAPI document is served.
pub const OPENAPI: &str = "/admin/api/openapi.json";
/// The level an administrator's sign-in must reach (two factors; docs/assurance.md).
pub const ADMIN_LEVEL: u8 = 3;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "yihao admin API",
        version = "1",
        description = "Administration of a yihao identity server with separation of duties: \
                       system, security, audit and department administrators. Every call is \
                       audited with its actor. Errors: {\"error\", \"error_description\"}."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "clients", description = "The client registry (system and department administrators)"),
        (name = "accounts", description = "Person accounts and administrator roles (security administrator)"),
        (name = "orgs", description = "Organisations and the people acting for them (security administrator)"),
        (name = "keys", description = "Signing keys (system administrator)"),
        (name = "audit", description = "The tamper-evident audit log (audit administrator)"),
        (name = "settings", description = "The effective configuration and the reports (system administrator)"),
        (name = "me", description = "The caller")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token of this server (RFC 9068) with one administrator scope; \
                         a person's from a sign-in at level 3",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiError {
    /// `invalid_request` (400; 401 when no token was sent), `invalid_token`,
    /// `insufficient_user_authentication`, `insufficient_scope`, `access_denied`, `not_found`,
    /// `conflict`, `temporarily_unavailable`, `server_error`.
    pub error: String,
    pub error_description: String,
}

/// The refusals every route can give.
#[derive(IntoResponses)]
#[allow(dead_code)]
enum Refusals {
    /// A parameter or the body is wrong (`invalid_request`).
    #[response(status = 400)]
    BadRequest(#[to_schema] ApiError),
    /// No token, an invalid or expired one (`invalid_token`), or a person's token from a sign-in
    /// below level 3 (`insufficient_user_authentication`, RFC 9470).
    #[response(status = 401)]
    Unauthorized(ApiError),
    /// No administrator scope (`insufficient_scope`), or the role may not do this
    /// (`access_denied`).
    #[response(status = 403)]
    Forbidden(ApiError),
}

/// The routes and the OpenAPI document that describes them.
pub fn routes() -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(me))
        .routes(routes!(list_clients, create_client))
        .routes(routes!(show_client, update_client, delete_client))
        .routes(routes!(rotate_secret))
        .routes(routes!(approve_client))
        .routes(routes!(registration_token))
        .routes(routes!(self_check))
        .routes(routes!(client_stats))
        .routes(routes!(reports))
        .routes(routes!(search_accounts))
        .routes(routes!(show_account))
        .routes(routes!(reveal_account))
        .routes(routes!(set_status))
        .routes(routes!(set_level))
        .routes(routes!(recovery_code))
        .routes(routes!(sessions, end_sessions))
        .routes(routes!(end_session))
        .routes(routes!(list_orgs, create_org))
        .routes(routes!(show_org))
        .routes(routes!(add_member))
        .routes(routes!(suspend_org))
        .routes(routes!(revoke_member))
        .routes(routes!(list_roles))
        .routes(routes!(grant_role, revoke_role))
        .routes(routes!(list_keys, rotate_key))
        .routes(routes!(retire_key))
        .routes(routes!(revoke_key))
        .routes(routes!(search_audit))
        .routes(routes!(export_audit))
        .routes(routes!(verify_audit))
        .routes(routes!(settings))
        .split_for_parts()
}

/// The caller of an admin route: who, in which role, and the request's context for the audit log.
pub struct Caller {
    pub actor: Actor,
    pub context: RequestContext,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Response> {
        let context = super::request::context(&parts.headers, &parts.extensions);
        let authorization = parts
            .headers
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        let ring = app.keys.ring();
        let token = app
            .bearer(&ring)
            .validate(authorization, None, app.now())
            .await
            .map_err(bearer_error)?;
        let roles: Vec<AdminRole> = token
            .scopes
            .iter()
            .filter_map(|s| AdminRole::of_scope(s))
            .collect();
        let role = match roles[..] {
            [role] => role,
            [] => {
                return Err(api_error(
                    StatusCode::FORBIDDEN,
                    "insufficient_scope",
                    "the access token carries no administrator scope",
                ));
            }
            _ => {
                return Err(api_error(
                    StatusCode::FORBIDDEN,
                    "insufficient_scope",
                    "the access token carries several administrator scopes: ask for the one of \
                     your role",
                ));
            }
        };
        let Some(acr) = token.claims["acr"].as_str() else {
            // A client's own token (client credentials): the client acts in its scope's role.
            return match machine_actor(&token.client, role) {
                Some(actor) => Ok(Self { actor, context }),
                None => Err(api_error(
                    StatusCode::FORBIDDEN,
                    "access_denied",
                    "a client acting for a department needs its department set",
                )),
            };
        };
        // A person's administrator token only from a first-party client (registered by the operator
        // or the system administrator; never a department's), so no client collects the tokens of
        // the administrators who sign in there.
        if !token.client.first_party() {
            return Err(api_error(
                StatusCode::FORBIDDEN,
                "access_denied",
                "administrators' tokens come from a first-party client",
            ));
        }
        if level_of_acr(acr).unwrap_or(0) < ADMIN_LEVEL {
            return Err(insufficient_user_authentication(
                "urn:yihao:loa:3",
                "administrators sign in at level 3, with two factors",
            ));
        }
        let account = app
            .subjects
            .decode(&sector_of(&token.client), &token.sub)
            .and_then(|id| AccountId::parse(&id).ok())
            .ok_or_else(|| {
                bearer_error(crate::protocol::OAuthError::new(
                    crate::protocol::ErrorCode::InvalidToken,
                    "the token names nobody",
                ))
            })?;
        // The role and the account are read now: a revoked role, a locked or disabled account,
        // stops an access token that is still valid.
        let held = app
            .store
            .role_of(account.as_str())
            .await
            .map_err(|e| admin_error(e.into()))?;
        let active = app
            .store
            .account(account.as_str())
            .await
            .map_err(|e| admin_error(e.into()))?
            .is_some_and(|a| a.status == "active");
        let actor = held
            .as_ref()
            .and_then(crate::protocol::admin::accounts::person_actor)
            .filter(|a| active && a.role() == Some(role));
        match actor {
            Some(actor) => Ok(Self { actor, context }),
            None => {
                // A person trying an administrator's door is recorded.
                let event = AuditEvent::failure(EventType::AdminRead, "not_administrator")
                    .actor(account.as_str())
                    .details(serde_json::json!({ "scope": role.scope(), "active": active }));
                if let Err(e) = app.audit(&context).record(event).await {
                    return Err(e.into_response());
                }
                Err(api_error(
                    StatusCode::FORBIDDEN,
                    "access_denied",
                    &format!("the person is not an active {role} administrator"),
                ))
            }
        }
    }
}

/// A JSON body, refused with the API's error shape when it is not the expected JSON.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        serde_json::from_slice(&bytes).map(Body).map_err(|e| {
            admin_error(AdminError::invalid(
                "body",
                format!("not the expected JSON: {e}"),
            ))
        })
    }
}

/// A query string, refused with the API's error shape when it does not fit.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let raw = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(raw)
            .map(Query)
            .map_err(|e| admin_error(AdminError::invalid("query", e.to_string())))
    }
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    super::no_store_json(status, serde_json::to_value(value).unwrap_or_default())
}

fn answer<T: Serialize>(result: Result<T, AdminError>) -> Response {
    match result {
        Ok(value) => json(StatusCode::OK, &value),
        Err(e) => admin_error(e),
    }
}

fn no_content(result: Result<(), AdminError>) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => admin_error(e),
    }
}

/// The caller and what its role allows.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// As the audit log names it: an account id, or `client:<id>`.
    pub actor: String,
    pub role: String,
    pub department: Option<String>,
    /// The actions the role allows (`clients.read`, `accounts.search`, ...).
    pub allowed: Vec<String>,
}

#[utoipa::path(get, path = "/admin/api/v1/me", tag = "me",
    responses((status = 200, body = Me), Refusals))]
async fn me(caller: Caller) -> Response {
    let role = caller.actor.role();
    let allowed = Action::ALL
        .iter()
        .filter(|a| caller.actor.require(**a).is_ok())
        .map(|a| a.as_str().to_owned())
        .collect();
    json(
        StatusCode::OK,
        &Me {
            actor: caller.actor.audit_name(),
            role: role.map_or("operator", AdminRole::as_str).to_owned(),
            department: caller.actor.department().map(|d| d.as_str().to_owned()),
            allowed,
        },
    )
}

/// A client listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ClientQuery {
    /// Only clients whose id or name contains this (case-insensitive).
    pub q: Option<String>,
    /// The `next` of the previous page.
    pub after: Option<String>,
    /// 1 to 200 (default 50).
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/admin/api/v1/clients", tag = "clients", params(ClientQuery),
    responses((status = 200, body = Page<ClientView>), Refusals))]
async fn list_clients(
    State(app): State<AppState>,
    caller: Caller,
    Query(q): Query<ClientQuery>,
) -> Response {
    let ops = app.administration(&caller.actor, &caller.context);
    answer(
        ops.list_clients(q.q.as_deref(), q.after.as_deref(), page_size(q.limit))
            .await,
    )
}

#[utoipa::path(post, path = "/admin/api/v1/clients", tag = "clients", request_body = ClientChange,
    responses((status = 201, body = ClientView, description = "The client; its secret shown once"),
        (status = 409, body = ApiError), Refusals))]
async fn create_client(
    State(app): State<AppState>,
    caller: Caller,
    Body(change): Body<ClientChange>,
) -> Response {
    let ops = app.administration(&caller.actor, &caller.context);
    match ops.create_client(&change, app.now()).await {
        Ok(client) => json(StatusCode::CREATED, &client),
        Err(e) => admin_error(e),
    }
}

#[utoipa::path(get, path = "/admin/api/v1/clients/{id}", tag = "clients",
    params(("id" = String, Path, description = "The client_id")),
    responses((status = 200, body = ClientView), (status = 404, body = ApiError), Refusals))]
async fn show_client(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    answer(
        app.administration(&caller.actor, &caller.context)
            .show_client(&id)
            .await,
    )
}

#[utoipa::path(patch, path = "/admin/api/v1/clients/{id}", tag = "clients",
    params(("id" = String, Path, description = "The client_id")), request_body = ClientChange,
    responses((status = 200, body = ClientView), (status = 404, body = ApiError), Refusals))]
async fn update_client(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(change): Body<ClientChange>,
) -> Response {
    let ops = app.administration(&caller.actor, &caller.context);
    answer(ops.update_client(&id, &change, app.now()).await)
}

#[utoipa::path(delete, path = "/admin/api/v1/clients/{id}", tag = "clients",
    params(("id" = String, Path, description = "The client_id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ApiError), Refusals))]
async fn delete_client(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    no_content(
        app.administration(&caller.actor, &caller.context)
            .delete_client(&id)
            .await,
    )
}

/// How long the previous secret keeps working.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretRotation {
    /// Seconds (default 86400, at most 30 days).
    pub previous_valid_secs: Option<u32>,
}

#[utoipa::path(post, path = "/admin/api/v1/clients/{id}/secret", tag = "clients",
    params(("id" = String, Path, description = "The client_id")), request_body = SecretRotation,
    responses((status = 200, body = ClientView, description = "The new secret, shown once"),
        (status = 404, body = ApiError), (status = 409, body = ApiError), Refusals))]
async fn rotate_secret(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<SecretRotation>,
) -> Response {
    let secs = body.previous_valid_secs.unwrap_or(86_400);
    let ops = app.administration(&caller.actor, &caller.context);
    answer(ops.rotate_client_secret(&id, secs, app.now()).await)
}

#[utoipa::path(post, path = "/admin/api/v1/clients/{id}/approve", tag = "clients",
    params(("id" = String, Path, description = "The client_id")),
    responses((status = 200, body = ClientView, description = "Approved: it signs people in from now on"),
        (status = 404, body = ApiError), (status = 409, body = ApiError, description = "Not pending"),
        Refusals))]
async fn approve_client(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    let ops = app.administration(&caller.actor, &caller.context);
    answer(ops.approve_client(&id, app.now()).await)
}

#[utoipa::path(get, path = "/admin/api/v1/clients/{id}/check", tag = "clients",
    params(("id" = String, Path, description = "The client_id")),
    responses((status = 200, body = crate::app::client_check::SelfCheck,
        description = "What yihao sees of the client's endpoints, and its last refusals"),
        (status = 404, body = ApiError), Refusals))]
async fn self_check(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    answer(app.check_client(&caller.actor, &caller.context, &id).await)
}

/// An initial access token to issue (RFC 7591 §3).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The department the registered client will belong to (a unified social credit code); a
    /// department administrator's own, whatever is given.
    pub department: Option<String>,
    /// Seconds the token stays usable: 60 to 2592000 (default 7 days).
    pub expires_in: Option<i64>,
}

#[utoipa::path(post, path = "/admin/api/v1/registration-tokens", tag = "clients",
    request_body = TokenRequest,
    responses((status = 200, body = crate::protocol::admin::registration::IssuedToken,
        description = "The token, shown once: it registers one client at /connect/register"), Refusals))]
async fn registration_token(
    State(app): State<AppState>,
    caller: Caller,
    Body(body): Body<TokenRequest>,
) -> Response {
    let ops = app.administration(&caller.actor, &caller.context);
    answer(
        ops.issue_registration_token(body.department.as_deref(), body.expires_in, app.now())
            .await,
    )
}

/// The days a report covers.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Days {
    /// 1 to 30 (default 7): today and the days before it, China Standard Time.
    pub days: Option<u32>,
}

#[utoipa::path(get, path = "/admin/api/v1/clients/{id}/stats", tag = "clients",
    params(("id" = String, Path, description = "The client_id"), Days),
    responses((status = 200, body = ClientStats), (status = 404, body = ApiError), Refusals))]
async fn client_stats(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<Days>,
) -> Response {
    let ops = app.administration(&caller.actor, &caller.context);
    answer(ops.client_stats(&id, q.days, app.now()).await)
}

#[utoipa::path(get, path = "/admin/api/v1/reports", tag = "settings", params(Days),
    responses((status = 200, body = ReportView, description = "Sign-ins per day and channel, open sessions per channel, tokens issued per client"), Refusals))]
async fn reports(State(app): State<AppState>, caller: Caller, Query(q): Query<Days>) -> Response {
    let ops = app.administration(&caller.actor, &caller.context);
    answer(ops.report(q.days, app.now()).await)
}

/// An account search: by `q` or by `name`, not both.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AccountQuery {
    /// An ID number or a mainland mobile number (matched exactly, through the blind index).
    pub q: Option<String>,
    /// The beginning of a name (1 to 20 characters): a page of accounts by name.
    pub name: Option<String>,
    /// With `name`: the `next` of the previous page.
    pub after: Option<String>,
    /// With `name`: 1 to 200 (default 50).
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/admin/api/v1/accounts", tag = "accounts", params(AccountQuery),
    responses((status = 200, body = Page<AccountView>, description = "Masked: at most one account by number; a page by name"), Refusals))]
async fn search_accounts(
    State(app): State<AppState>,
    caller: Caller,
    Query(q): Query<AccountQuery>,
) -> Response {
    let ops = app.administration(&caller.actor, &caller.context);
    match (q.q, q.name) {
        (Some(number), None) => answer(
            ops.search_accounts(&number, app.now())
                .await
                .map(|items| Page { items, next: None }),
        ),
        (None, Some(name)) => answer(
            ops.search_accounts_by_name(&name, q.after.as_deref(), page_size(q.limit))
                .await,
        ),
        _ => admin_error(AdminError::invalid(
            "q",
            "search by q (an ID or mobile number) or by name (its beginning), one of them",
        )),
    }
}

#[utoipa::path(get, path = "/admin/api/v1/accounts/{id}", tag = "accounts",
    params(("id" = String, Path, description = "The account id")),
    responses((status = 200, body = AccountView), (status = 404, body = ApiError), Refusals))]
async fn show_account(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    answer(
        app.administration(&caller.actor, &caller.context)
            .show_account(&id)
            .await,
    )
}

/// Why the full numbers are needed (recorded, and shown to the person in their disclosure ledger).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reveal {
    /// 4 to 500 characters.
    pub reason: String,
}

#[utoipa::path(post, path = "/admin/api/v1/accounts/{id}/reveal", tag = "accounts",
    params(("id" = String, Path, description = "The account id")), request_body = Reveal,
    responses((status = 200, body = AccountView, description = "Unmasked"), (status = 404, body = ApiError), Refusals))]
async fn reveal_account(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<Reveal>,
) -> Response {
    let ops = app.administration(&caller.actor, &caller.context);
    answer(ops.reveal_account(&id, &body.reason).await)
}

/// A new status.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    /// `active` (unlock), `locked` or `disabled`. Locking or disabling ends every session.
    pub status: String,
}

#[utoipa::path(post, path = "/admin/api/v1/accounts/{id}/status", tag = "accounts",
    params(("id" = String, Path, description = "The account id")), request_body = StatusChange,
    responses((status = 200, body = AccountView), (status = 404, body = ApiError), (status = 409, body = ApiError), Refusals))]
async fn set_status(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<StatusChange>,
) -> Response {
    let ops = app.administration(&caller.actor, &caller.context);
    answer(ops.set_account_status(&id, &body.status, app.now()).await)
}

#[utoipa::path(post, path = "/admin/api/v1/accounts/{id}/level", tag = "accounts",
    params(("id" = String, Path, description = "The account id")), request_body = LevelChange,
    responses((status = 200, body = AccountView), (status = 404, body = ApiError), Refusals))]
async fn set_level(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<LevelChange>,
) -> Response {
    let ops = app.administration(&caller.actor, &caller.context);
    answer(ops.set_account_level(&id, &body, app.now()).await)
}

#[utoipa::path(post, path = "/admin/api/v1/accounts/{id}/recovery-code", tag = "accounts",
    params(("id" = String, Path, description = "The account id")),
    responses((status = 200, body = RecoveryCodeSent, description = "A recovery code sent to the phone on file; the person goes on at /recover"),
        (status = 404, body = ApiError),
        (status = 409, body = ApiError, description = "No phone, an account that cannot recover, a code sent too recently, the daily cap, or no SMS here"),
        (status = 503, body = ApiError, description = "The SMS gateway did not take it"), Refusals))]
async fn recovery_code(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    let ops = app.administration(&caller.actor, &caller.context);
    answer(ops.send_recovery_code(&id, app.now()).await)
}

/// Which sessions.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SessionFilter {
    /// Ended sessions too.
    pub include_ended: Option<bool>,
}

#[utoipa::path(get, path = "/admin/api/v1/accounts/{id}/sessions", tag = "accounts",
    params(("id" = String, Path, description = "The account id"), SessionFilter),
    responses((status = 200, body = Page<SessionView>), (status = 404, body = ApiError), Refusals))]
async fn sessions(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<SessionFilter>,
) -> Response {
    let ops = app.administration(&caller.actor, &caller.context);
    answer(
        ops.account_sessions(&id, q.include_ended.unwrap_or(false))
            .await
            .map(|items| Page { items, next: None }),
    )
}

/// How many sessions ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ended {
    pub ended: usize,
}

#[utoipa::path(delete, path = "/admin/api/v1/accounts/{id}/sessions", tag = "accounts",
    params(("id" = String, Path, description = "The account id")),
    responses((status = 200, body = Ended, description = "Every open session ended, with back-channel logout"),
        (status = 404, body = ApiError), Refusals))]
async fn end_sessions(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    let ops = app.administration(&caller.actor, &caller.context);
    answer(
        ops.end_account_sessions(&id, None, app.now())
            .await
            .map(|ended| Ended { ended }),
    )
}

#[utoipa::path(delete, path = "/admin/api/v1/accounts/{id}/sessions/{sid}", tag = "accounts",
    params(("id" = String, Path, description = "The account id"), ("sid" = String, Path, description = "The session id")),
    responses((status = 200, body = Ended), (status = 404, body = ApiError), Refusals))]
async fn end_session(
    State(app): State<AppState>,
    caller: Caller,
    Path((id, sid)): Path<(String, String)>,
) -> Response {
    let ops = app.administration(&caller.actor, &caller.context);
    answer(
        ops.end_account_sessions(&id, Some(&sid), app.now())
            .await
            .map(|ended| Ended { ended }),
    )
}

/// Cursor pagination.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    /// The `next` of the previous page.
    pub after: Option<String>,
    /// 1 to 200 (default 50).
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/admin/api/v1/orgs", tag = "orgs", params(Cursor),
    responses((status = 200, body = Page<OrgView>), Refusals))]
async fn list_orgs(
    State(app): State<AppState>,
    caller: Caller,
    Query(q): Query<Cursor>,
) -> Response {
    let ops = app.administration(&caller.actor, &caller.context);
    answer(ops.list_orgs(q.after.as_deref(), page_size(q.limit)).await)
}

#[utoipa::path(post, path = "/admin/api/v1/orgs", tag = "orgs", request_body = NewOrg,
    responses((status = 201, body = OrgView), (status = 409, body = ApiError, description = "The credit code is registered already"), Refusals))]
async fn create_org(
    State(app): State<AppState>,
    caller: Caller,
    Body(new): Body<NewOrg>,
) -> Response {
    let ops = app.administration(&caller.actor, &caller.context);
    match ops.create_org(&new, app.now()).await {
        Ok(org) => json(StatusCode::CREATED, &org),
        Err(e) => admin_error(e),
    }
}

#[utoipa::path(post, path = "/admin/api/v1/orgs/{org}/members", tag = "orgs",
    params(("org" = String, Path, description = "The unified social credit code, or the organisation id")),
    request_body = NewMember,
    responses((status = 200, body = OrgView, description = "The organisation with its members"),
        (status = 404, body = ApiError), (status = 409, body = ApiError, description = "A second legal representative"), Refusals))]
async fn add_member(
    State(app): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    Body(new): Body<NewMember>,
) -> Response {
    let ops = app.administration(&caller.actor, &caller.context);
    answer(ops.add_member(&org, &new, app.now()).await)
}

#[utoipa::path(get, path = "/admin/api/v1/orgs/{org}", tag = "orgs",
    params(("org" = String, Path, description = "The unified social credit code, or the organisation id")),
    responses((status = 200, body = OrgView, description = "With its members"), (status = 404, body = ApiError), Refusals))]
async fn show_org(
    State(app): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
) -> Response {
    answer(
        app.administration(&caller.actor, &caller.context)
            .show_org(&org)
            .await,
    )
}

#[utoipa::path(post, path = "/admin/api/v1/orgs/{org}/suspend", tag = "orgs",
    params(("org" = String, Path, description = "The unified social credit code, or the organisation id")),
    responses((status = 200, body = WithdrawnView, description = "Every role stops; tokens acting for it revoked, members' sessions ended"),
        (status = 404, body = ApiError), Refusals))]
async fn suspend_org(
    State(app): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
) -> Response {
    let ops = app.administration(&caller.actor, &caller.context);
    answer(ops.suspend_org(&org, app.now()).await)
}

/// The role to revoke.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MemberRole {
    /// `legal_representative`, `administrator` or `agent`.
    pub role: String,
}

#[utoipa::path(delete, path = "/admin/api/v1/orgs/{org}/members/{account_id}", tag = "orgs",
    params(("org" = String, Path, description = "The unified social credit code, or the organisation id"),
        ("account_id" = String, Path, description = "The member's account id"), MemberRole),
    responses((status = 200, body = WithdrawnView), (status = 404, body = ApiError), Refusals))]
async fn revoke_member(
    State(app): State<AppState>,
    caller: Caller,
    Path((org, account)): Path<(String, String)>,
    Query(q): Query<MemberRole>,
) -> Response {
    let ops = app.administration(&caller.actor, &caller.context);
    answer(ops.revoke_member(&org, &account, &q.role, app.now()).await)
}

#[utoipa::path(get, path = "/admin/api/v1/roles", tag = "accounts",
    responses((status = 200, body = Page<RoleView>), Refusals))]
async fn list_roles(State(app): State<AppState>, caller: Caller) -> Response {
    let ops = app.administration(&caller.actor, &caller.context);
    answer(
        ops.list_roles()
            .await
            .map(|items| Page { items, next: None }),
    )
}

/// A role to grant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleGrant {
    /// `system`, `security`, `audit` or `department`.
    pub role: String,
    /// A department administrator's department (unified social credit code).
    pub department: Option<String>,
}

#[utoipa::path(put, path = "/admin/api/v1/roles/{account_id}", tag = "accounts",
    params(("account_id" = String, Path, description = "The account id")), request_body = RoleGrant,
    responses((status = 200, body = RoleView), (status = 404, body = ApiError),
        (status = 409, body = ApiError, description = "The account holds a role already"), Refusals))]
async fn grant_role(
    State(app): State<AppState>,
    caller: Caller,
    Path(account): Path<String>,
    Body(body): Body<RoleGrant>,
) -> Response {
    let ops = app.administration(&caller.actor, &caller.context);
    answer(
        ops.grant_role(&account, &body.role, body.department.as_deref(), app.now())
            .await,
    )
}

#[utoipa::path(delete, path = "/admin/api/v1/roles/{account_id}", tag = "accounts",
    params(("account_id" = String, Path, description = "The account id")),
    responses((status = 204, description = "Revoked; the account's sessions ended"), (status = 404, body = ApiError), Refusals))]
async fn revoke_role(
    State(app): State<AppState>,
    caller: Caller,
    Path(account): Path<String>,
) -> Response {
    let ops = app.administration(&caller.actor, &caller.context);
    no_content(ops.revoke_role(&account, app.now()).await)
}

#[utoipa::path(get, path = "/admin/api/v1/keys", tag = "keys",
    responses((status = 200, body = Page<KeyView>), Refusals))]
async fn list_keys(State(app): State<AppState>, caller: Caller) -> Response {
    let ring = app.keys.ring();
    let ops = app.administration(&caller.actor, &caller.context);
    answer(
        ops.list_keys(&ring, app.now())
            .await
            .map(|items| Page { items, next: None }),
    )
}

/// A new key's algorithm.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// `RS256`, `ES256` or `EdDSA`.
    pub alg: String,
}

#[utoipa::path(post, path = "/admin/api/v1/keys", tag = "keys", request_body = Rotation,
    responses((status = 201, body = KeyView, description = "Published now; signs after keys.publish_before_use_secs"), Refusals))]
async fn rotate_key(
    State(app): State<AppState>,
    caller: Caller,
    Body(body): Body<Rotation>,
) -> Response {
    let ops = app.administration(&caller.actor, &caller.context);
    match ops.rotate_key(&body.alg, app.now()).await {
        Ok(key) => json(StatusCode::CREATED, &key),
        Err(e) => admin_error(e),
    }
}

#[utoipa::path(post, path = "/admin/api/v1/keys/{kid}/retire", tag = "keys",
    params(("kid" = String, Path, description = "The key id")),
    responses((status = 204, description = "It no longer signs; published until its tokens expire"),
        (status = 404, body = ApiError), (status = 409, body = ApiError, description = "The last key of its algorithm"), Refusals))]
async fn retire_key(
    State(app): State<AppState>,
    caller: Caller,
    Path(kid): Path<String>,
) -> Response {
    let ops = app.administration(&caller.actor, &caller.context);
    no_content(ops.end_key(&kid, false, app.now()).await)
}

#[utoipa::path(post, path = "/admin/api/v1/keys/{kid}/revoke", tag = "keys",
    params(("kid" = String, Path, description = "The key id")),
    responses((status = 204, description = "Withdrawn at once: not published, verifies nothing"),
        (status = 404, body = ApiError), (status = 409, body = ApiError, description = "No other key signs for its algorithm"), Refusals))]
async fn revoke_key(
    State(app): State<AppState>,
    caller: Caller,
    Path(kid): Path<String>,
) -> Response {
    let ops = app.administration(&caller.actor, &caller.context);
    no_content(ops.end_key(&kid, true, app.now()).await)
}

#[utoipa::path(get, path = "/admin/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Page<AuditView>, description = "Newest first; `next` is the `before` of the next page"), Refusals))]
async fn search_audit(
    State(app): State<AppState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> Response {
    let ops = app.administration(&caller.actor, &caller.context);
    answer(ops.search_audit(&q, app.now()).await)
}

/// An export's range.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportRange {
    /// From this time on (epoch seconds).
    pub since: i64,
    /// After this sequence number (the `next` of the previous page; default 0).
    pub after: Option<i64>,
    /// 1 to 1000 (default 1000).
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/admin/api/v1/audit/export", tag = "audit", params(ExportRange),
    responses((status = 200, body = Page<AuditView>, description = "Oldest first, with the hashes that chain them"), Refusals))]
async fn export_audit(
    State(app): State<AppState>,
    caller: Caller,
    Query(q): Query<ExportRange>,
) -> Response {
    let limit = q.limit.map_or(1000, |l| l as usize);
    let ops = app.administration(&caller.actor, &caller.context);
    answer(
        ops.export_audit(q.since, q.after.unwrap_or(0), limit)
            .await
            .map(|rows| {
                let full = rows.len() >= limit.clamp(1, 1000);
                let next = rows.last().filter(|_| full).map(|r| r.seq.to_string());
                Page {
                    items: rows.into_iter().map(AuditView::from).collect::<Vec<_>>(),
                    next,
                }
            }),
    )
}

/// Where verification starts.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyFrom {
    /// 1 (default): the whole chain; later: trust the record before it.
    pub from: Option<i64>,
}

#[utoipa::path(post, path = "/admin/api/v1/audit/verify", tag = "audit", request_body = VerifyFrom,
    responses((status = 200, body = VerifyView), Refusals))]
async fn verify_audit(
    State(app): State<AppState>,
    caller: Caller,
    Body(body): Body<VerifyFrom>,
) -> Response {
    let ring = app.keys.ring();
    let ops = app.administration(&caller.actor, &caller.context);
    answer(ops.verify_audit(&ring, body.from.unwrap_or(1)).await)
}

#[utoipa::path(get, path = "/admin/api/v1/settings", tag = "settings",
    responses((status = 200, body = Object, description = "The effective configuration, secrets redacted"), Refusals))]
async fn settings(State(app): State<AppState>, caller: Caller) -> Response {
    let settings = app.settings.clone();
    let ops = app.administration(&caller.actor, &caller.context);
    answer(ops.show_settings(settings).await)
}
