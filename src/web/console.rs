//! The administration console (`/admin`, docs/administration.md "The console"): server-rendered
//! pages over the same operations as the admin API (`protocol::admin::Administration`), in zh-CN and
//! English, with the sign-in pages' CSP (no inline script) and CSRF rules (a token bound to the
//! browser on every form). An administrator signs in afresh through yihao as the console's own client
//! (`protocol::admin::console`), at level 3, and is signed out of the console after
//! `admin.console_idle_secs` without a request.

use askama::Template;
use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::AppState;
use super::account::session_of;
use super::cookies::{browser_hash, checked_browser, form_token};
use super::error::server_error_page;
use super::pages::{self, render};
use super::request::{self, field, pairs};
use crate::app::App;
use crate::domain::admin::{Action, AdminRole};
use crate::protocol::admin::accounts::{AccountView, RoleView};
use crate::protocol::admin::clients::{ClientChange, ClientView};
use crate::protocol::admin::console::{CONSOLE_CLIENT, ConsoleError};
use crate::protocol::admin::orgs::{NewMember, NewOrg, OrgView};
use crate::protocol::admin::system::{AuditQuery, AuditView, ClientStats, KeyView, ReportView};
use crate::protocol::admin::{Actor, AdminError, Page};
use crate::protocol::audit::RequestContext;

/// The console's words, one table per language (a missing one fails the build).
pub struct ConsoleTexts {
    pub lang: &'static str,
    pub product: &'static str,
    pub console: &'static str,
    pub home: &'static str,
    pub clients: &'static str,
    pub accounts: &'static str,
    pub audit: &'static str,
    pub sign_out: &'static str,
    pub signed_in_as: &'static str,
    pub roles: [&'static str; 4],
    pub idle_hint: &'static str,
    pub search: &'static str,
    pub more: &'static str,
    pub search_clients: &'static str,
    pub col_name: &'static str,
    pub col_method: &'static str,
    pub col_department: &'static str,
    pub register_client: &'static str,
    pub redirect_uri: &'static str,
    pub confidential: &'static str,
    pub public_client: &'static str,
    pub scopes: &'static str,
    pub client_registered: &'static str,
    pub secret_once: &'static str,
    pub search_accounts: &'static str,
    pub search_accounts_hint: &'static str,
    pub search_by_name: &'static str,
    pub nobody: &'static str,
    pub col_document: &'static str,
    pub col_phone: &'static str,
    pub col_level: &'static str,
    pub col_status: &'static str,
    pub lock: &'static str,
    pub unlock: &'static str,
    pub disable: &'static str,
    pub status_changed: &'static str,
    pub reveal: &'static str,
    pub reveal_reason: &'static str,
    pub revealed: &'static str,
    pub verify: &'static str,
    pub intact: &'static str,
    pub broken: &'static str,
    pub col_time: &'static str,
    pub col_event: &'static str,
    pub col_result: &'static str,
    pub col_actor: &'static str,
    pub col_target: &'static str,
    pub col_details: &'static str,
    pub refused: &'static str,
    pub expired: &'static str,
    pub sign_in_failed: &'static str,
    pub not_admin: &'static str,
    pub too_weak: &'static str,
    pub roles_title: &'static str,
    pub keys_title: &'static str,
    pub reports_title: &'static str,
    pub col_action: &'static str,
    pub col_account: &'static str,
    pub col_role: &'static str,
    pub col_granted_by: &'static str,
    pub col_day: &'static str,
    pub col_channel: &'static str,
    pub col_count: &'static str,
    pub retire: &'static str,
    pub rotate: &'static str,
    pub rotate_hint: &'static str,
    pub key_changed: &'static str,
    pub grant: &'static str,
    pub grant_hint: &'static str,
    pub revoke: &'static str,
    pub role_changed: &'static str,
    pub sign_ins: &'static str,
    pub active_sessions: &'static str,
    pub tokens_issued: &'static str,
    pub orgs_title: &'static str,
    pub col_credit_code: &'static str,
    pub register_org: &'static str,
    pub members: &'static str,
    pub col_scope: &'static str,
    pub col_expires: &'static str,
    pub appoint: &'static str,
    pub suspend: &'static str,
    pub suspend_hint: &'static str,
    pub org_changed: &'static str,
    pub settings_title: &'static str,
    pub settings_hint: &'static str,
    pub client_use: &'static str,
    pub self_check: &'static str,
    pub self_check_hint: &'static str,
    pub run_check: &'static str,
    pub col_check: &'static str,
    pub check_ok: &'static str,
    pub check_failed: &'static str,
    pub recent_errors: &'static str,
    pub no_recent_errors: &'static str,
    pub col_reason: &'static str,
    pub pending: &'static str,
    pub approve: &'static str,
    pub approved: &'static str,
    pub auth_failures: &'static str,
    pub recovery_code: &'static str,
    pub recovery_sent: &'static str,
}

pub const ZH: ConsoleTexts = ConsoleTexts {
    lang: "zh-CN",
    product: "统一身份认证",
    console: "管理控制台",
    home: "首页",
    clients: "接入系统",
    accounts: "用户账号",
    audit: "审计日志",
    sign_out: "退出控制台",
    signed_in_as: "当前身份：",
    roles: ["系统管理员", "安全管理员", "审计管理员", "部门管理员"],
    idle_hint: "闲置超过规定时间后需要重新登录（密码加第二因素）。您的每一次操作都会记入审计日志。",
    search: "查询",
    more: "下一页",
    search_clients: "按编号或名称查找接入系统",
    col_name: "名称",
    col_method: "认证方式",
    col_department: "所属部门",
    register_client: "登记接入系统",
    redirect_uri: "回调地址",
    confidential: "有密钥的服务端系统",
    public_client: "无密钥的应用",
    scopes: "权限范围（以空格分隔）",
    client_registered: "已登记",
    secret_once: "密钥只显示这一次，请立即交给该系统的负责人妥善保存。",
    search_accounts: "按身份证件号码或手机号码查找",
    search_accounts_hint: "须输入完整号码；结果中的个人信息已脱敏。",
    search_by_name: "按姓名开头查找（分页显示）",
    nobody: "没有找到这个号码对应的账号。",
    col_document: "证件号码",
    col_phone: "手机号码",
    col_level: "实名等级",
    col_status: "状态",
    lock: "锁定",
    unlock: "解除锁定",
    disable: "停用",
    status_changed: "账号状态已更改；锁定或停用时，该用户的所有会话已经结束。",
    reveal: "查看完整信息",
    reveal_reason: "查看完整号码的理由（会记入审计日志，并告知本人）",
    revealed: "已显示完整信息。本次查看已记入审计日志和该用户的信息提供记录。",
    verify: "校验日志完整性",
    intact: "审计日志完整：记录链和签名检查点全部校验通过。",
    broken: "审计日志已被破坏：",
    col_time: "时间",
    col_event: "事件",
    col_result: "结果",
    col_actor: "操作者",
    col_target: "对象",
    col_details: "详情",
    refused: "无权操作",
    expired: "页面已过期，请返回后重试。",
    sign_in_failed: "登录没有完成，请重新打开管理控制台。",
    not_admin: "此账号不是管理员。",
    too_weak: "管理员须以实名等级 3 登录，即完成实名核验并使用两重身份验证（密码加身份验证器）。",
    roles_title: "管理员",
    keys_title: "签名密钥",
    reports_title: "统计报表",
    col_action: "操作",
    col_account: "账号编号",
    col_role: "角色",
    col_granted_by: "授权人",
    col_day: "日期",
    col_channel: "渠道",
    col_count: "数量",
    retire: "停用",
    rotate: "生成新密钥",
    rotate_hint: "新密钥立即公布，过一段时间后开始签名，旧密钥随之停止签名。",
    key_changed: "签名密钥已更改，各节点会随即重新加载。",
    grant: "授予管理员角色",
    grant_hint: "一个账号只能担任一种管理员角色；部门管理员须填写部门的统一社会信用代码。获授角色的账号今后须使用两重身份验证登录。",
    revoke: "撤销",
    role_changed: "管理员角色已更改。",
    sign_ins: "每日登录次数（按渠道）",
    active_sessions: "当前在线会话（按渠道）",
    tokens_issued: "各接入系统获发的访问令牌",
    orgs_title: "单位",
    col_credit_code: "统一社会信用代码",
    register_org: "登记单位",
    members: "代表单位办事的人员",
    col_scope: "授权事项",
    col_expires: "授权截止",
    appoint: "授予单位角色",
    suspend: "暂停该单位",
    suspend_hint: "暂停后，任何人不能再代表该单位办事；代表该单位的令牌全部作废，其人员的会话随即结束。",
    org_changed: "单位信息已更改。",
    settings_title: "运行配置",
    settings_hint: "当前生效的配置（只读）；密钥等机密已隐去。",
    client_use: "近 7 天的使用情况",
    self_check: "自检",
    self_check_hint: "从本平台所在网络访问该系统登记的地址（须为 TLS）所见的结果，以及本平台最近拒绝该系统的请求和原因。",
    run_check: "运行自检",
    col_check: "检查项",
    check_ok: "正常",
    check_failed: "有问题",
    recent_errors: "最近的拒绝",
    no_recent_errors: "没有记录。",
    col_reason: "原因",
    pending: "该系统通过自助注册登记，尚待批准：在批准前不能为任何人登录。",
    approve: "批准",
    approved: "已批准：该系统现在可以为用户登录。",
    auth_failures: "认证失败次数",
    recovery_code: "发送找回密码验证码",
    recovery_sent: "验证码已发送到该用户登记的手机；请告知其在“找回密码”页面输入证件号码、姓名和验证码。",
};

pub const EN: ConsoleTexts = ConsoleTexts {
    lang: "en",
    product: "Unified identity authentication",
    console: "Administration console",
    home: "Home",
    clients: "Connected systems",
    accounts: "Accounts",
    audit: "Audit log",
    sign_out: "Leave the console",
    signed_in_as: "Signed in as: ",
    roles: [
        "system administrator",
        "security administrator",
        "audit administrator",
        "department administrator",
    ],
    idle_hint: "After a while without activity you sign in again (password and second factor). Everything you do is recorded in the audit log.",
    search: "Search",
    more: "Next page",
    search_clients: "Find a connected system by id or name",
    col_name: "Name",
    col_method: "Authentication",
    col_department: "Department",
    register_client: "Register a system",
    redirect_uri: "Redirect URI",
    confidential: "a server with a secret",
    public_client: "an app without a secret",
    scopes: "Scopes (separated by spaces)",
    client_registered: "Registered",
    secret_once: "The secret is shown only this once: hand it to the system's owner now.",
    search_accounts: "Find by identity document number or mobile number",
    search_accounts_hint: "Type the whole number; personal data in the results is masked.",
    search_by_name: "Find by the beginning of a name (page by page)",
    nobody: "No account has this number.",
    col_document: "Document number",
    col_phone: "Mobile number",
    col_level: "Real-name level",
    col_status: "Status",
    lock: "Lock",
    unlock: "Unlock",
    disable: "Disable",
    status_changed: "The account's status changed; on a lock or a disable every session of the person ended.",
    reveal: "Show in full",
    reveal_reason: "Why the full numbers are needed (recorded in the audit log and shown to the person)",
    revealed: "Shown in full. This is recorded in the audit log and in the person's disclosure record.",
    verify: "Verify the log",
    intact: "The audit log is intact: every record and signed checkpoint verified.",
    broken: "The audit log is broken: ",
    col_time: "Time",
    col_event: "Event",
    col_result: "Result",
    col_actor: "Actor",
    col_target: "Target",
    col_details: "Details",
    refused: "Not allowed",
    expired: "This page has expired; go back and try again.",
    sign_in_failed: "The sign-in was not completed; open the console again.",
    not_admin: "This account is not an administrator.",
    too_weak: "Administrators sign in at real-name level 3: identity verified and two-factor sign-in (password and an authenticator app).",
    roles_title: "Administrators",
    keys_title: "Signing keys",
    reports_title: "Reports",
    col_action: "Action",
    col_account: "Account id",
    col_role: "Role",
    col_granted_by: "Granted by",
    col_day: "Day",
    col_channel: "Channel",
    col_count: "Count",
    retire: "Retire",
    rotate: "Make a new key",
    rotate_hint: "The new key is published at once and signs after a while; the key it replaces stops signing then.",
    key_changed: "The signing keys changed; every node reloads them at once.",
    grant: "Grant an administrator role",
    grant_hint: "An account holds one administrator role at most; a department administrator needs the department's unified social credit code. The account signs in with two factors from now on.",
    revoke: "Revoke",
    role_changed: "The administrator roles changed.",
    sign_ins: "Sign-ins per day and channel",
    active_sessions: "Open sessions per channel",
    tokens_issued: "Access tokens issued per connected system",
    orgs_title: "Organisations",
    col_credit_code: "Unified social credit code",
    register_org: "Register an organisation",
    members: "People acting for it",
    col_scope: "Service items",
    col_expires: "Until",
    appoint: "Give a role in it",
    suspend: "Suspend the organisation",
    suspend_hint: "Once suspended nobody acts for it: every token acting for it is revoked and its members' sessions end.",
    org_changed: "The organisation changed.",
    settings_title: "Settings",
    settings_hint: "The configuration in effect (read only); secrets are redacted.",
    client_use: "Use over the last 7 days",
    self_check: "Self-check",
    self_check_hint: "What yihao sees of the addresses this system registered, from where yihao runs (TLS required), and the requests yihao refused it lately, with their reasons.",
    run_check: "Run the self-check",
    col_check: "Check",
    check_ok: "OK",
    check_failed: "Problem",
    recent_errors: "Recent refusals",
    no_recent_errors: "None recorded.",
    col_reason: "Reason",
    pending: "This system registered itself and waits for approval: until then it signs nobody in.",
    approve: "Approve",
    approved: "Approved: this system signs people in from now on.",
    auth_failures: "Refused authentications",
    recovery_code: "Send a recovery code",
    recovery_sent: "A code went to the person's mobile number on file; tell them to enter their document number, name and the code on the password recovery page.",
};

fn texts(headers: &HeaderMap) -> &'static ConsoleTexts {
    if pages::texts(&[], headers).chinese {
        &ZH
    } else {
        &EN
    }
}

/// Which sections the role may open.
pub struct Nav {
    pub clients: bool,
    pub accounts: bool,
    pub orgs: bool,
    pub settings: bool,
    pub roles: bool,
    pub keys: bool,
    pub reports: bool,
    pub audit: bool,
}

/// What every console page shows around its content (`templates/console/layout.html`).
struct Chrome<'a> {
    t: &'a ConsoleTexts,
    who: &'a str,
    nav: &'a Nav,
    csrf: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
}

/// What every console page carries: the administrator, the page's frame, and the request's context
/// for the audit log. As an extractor it is every console route's gate (`frame`).
pub struct Frame {
    context: RequestContext,
    /// The sign-in pages' texts, for the server-error page.
    page_t: &'static pages::Texts,
    t: &'static ConsoleTexts,
    actor: Actor,
    csrf: String,
    who: String,
    nav: Nav,
    sid: String,
}

#[derive(Template)]
#[template(path = "console/home.html")]
struct HomePage<'a> {
    c: Chrome<'a>,
    role_line: String,
}

#[derive(Template)]
#[template(path = "console/refused.html")]
struct RefusedPage<'a> {
    c: Chrome<'a>,
    message: &'a str,
}

#[derive(Template)]
#[template(path = "console/clients.html")]
struct ClientsPage<'a> {
    c: Chrome<'a>,
    q: &'a str,
    clients: Vec<ClientView>,
    next: Option<String>,
    may_write: bool,
    created: Option<ClientView>,
}

#[derive(Template)]
#[template(path = "console/accounts.html")]
struct AccountsPage<'a> {
    c: Chrome<'a>,
    q: &'a str,
    name: &'a str,
    searched: bool,
    accounts: Vec<AccountView>,
    next: Option<String>,
}

/// An audit record as the table shows it.
struct AuditRow {
    seq: i64,
    time: String,
    event: String,
    result: String,
    actor: String,
    target: String,
    details: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage<'a> {
    c: Chrome<'a>,
    event: &'a str,
    actor: &'a str,
    target: &'a str,
    records: Vec<AuditRow>,
    next: Option<String>,
}

impl Frame {
    /// The administrative operations for this administrator and request.
    fn ops<'a>(&'a self, app: &'a App) -> crate::protocol::admin::Administration<'a> {
        app.administration(&self.actor, &self.context)
    }

    fn chrome<'a>(&'a self, notice: Option<&'a str>) -> Chrome<'a> {
        Chrome {
            t: self.t,
            who: &self.who,
            nav: &self.nav,
            csrf: &self.csrf,
            error: None,
            notice,
        }
    }
}

fn role_name(t: &ConsoleTexts, role: Option<AdminRole>) -> &'static str {
    match role {
        Some(AdminRole::System) | None => t.roles[0],
        Some(AdminRole::Security) => t.roles[1],
        Some(AdminRole::Audit) => t.roles[2],
        Some(AdminRole::Department) => t.roles[3],
    }
}

/// The console's administrator, or the redirect that signs one in.
async fn frame(app: &App, headers: &HeaderMap) -> Result<Frame, Response> {
    let t = texts(headers);
    let Some((account, sid)) = session_of(app, headers).await else {
        return Err(sign_in(app, t).await);
    };
    let actor = match app.console().actor(&sid, account.as_str(), app.now()).await {
        Ok(Some(actor)) => actor,
        Ok(None) => return Err(sign_in(app, t).await),
        Err(e) => return Err(server_error_page(pages::texts(&[], headers), &e)),
    };
    let role = actor.role();
    let who = format!(
        "{}{}{}",
        t.signed_in_as,
        role_name(t, role),
        actor
            .department()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default()
    );
    let nav = Nav {
        clients: actor.require(Action::ClientsRead).is_ok(),
        accounts: actor.require(Action::AccountsSearch).is_ok(),
        orgs: actor.require(Action::OrgsRead).is_ok(),
        settings: actor.require(Action::ConfigRead).is_ok(),
        roles: actor.require(Action::RolesRead).is_ok(),
        keys: actor.require(Action::KeysRead).is_ok(),
        reports: actor.require(Action::Reports).is_ok(),
        audit: actor.require(Action::AuditRead).is_ok(),
    };
    Ok(Frame {
        context: RequestContext::default(),
        page_t: pages::texts(&[], headers),
        t,
        csrf: form_token(app, &browser_hash(app, headers)),
        actor,
        who,
        nav,
        sid,
    })
}

impl axum::extract::FromRequestParts<AppState> for Frame {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        app: &AppState,
    ) -> Result<Self, Response> {
        let mut f = frame(app, &parts.headers).await?;
        f.context = request::context(&parts.headers, &parts.extensions);
        Ok(f)
    }
}

/// `/authorize` as the console's client: a fresh sign-in (`prompt=login`) at level 3 (the client's
/// minimum), PKCE S256, coming back to `/admin/callback`.
async fn sign_in(app: &App, t: &ConsoleTexts) -> Response {
    let (state, challenge) = match app.console().begin(app.now()).await {
        Ok(started) => started,
        Err(e) => {
            let page_t = if t.lang == "en" {
                &pages::EN
            } else {
                &pages::ZH
            };
            return server_error_page(page_t, &e);
        }
    };
    let issuer = app.config.server.issuer.trim_end_matches('/');
    let mut url = match url::Url::parse(&format!("{issuer}/authorize")) {
        Ok(url) => url,
        Err(_) => return Redirect::to("/authorize").into_response(),
    };
    url.query_pairs_mut()
        .append_pair("client_id", CONSOLE_CLIENT)
        .append_pair("redirect_uri", &format!("{issuer}/admin/callback"))
        .append_pair("response_type", "code")
        .append_pair("scope", "openid")
        .append_pair("prompt", "login")
        .append_pair("ui_locales", t.lang)
        .append_pair("state", &state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    Redirect::to(url.as_str()).into_response()
}

fn refused(f: &Frame, status: StatusCode, message: &str) -> Response {
    render(
        status,
        &RefusedPage {
            c: f.chrome(None),
            message,
        },
    )
}

/// An operation's refusal as a page: 403 for a role that may not, 400/404/409 for the rest.
fn failed(f: &Frame, e: AdminError) -> Response {
    let status = match &e {
        AdminError::Denied(_) => StatusCode::FORBIDDEN,
        AdminError::Invalid { .. } => StatusCode::BAD_REQUEST,
        AdminError::NotFound(_) => StatusCode::NOT_FOUND,
        AdminError::Conflict(_) => StatusCode::CONFLICT,
        AdminError::Busy => StatusCode::SERVICE_UNAVAILABLE,
        AdminError::Server(..) => return server_error_page(f.page_t, &e),
    };
    refused(f, status, &e.to_string())
}

/// A posted console form's fields, when it carries this browser's CSRF token (the console session
/// was checked by the `Frame` extractor); else [`expired`] answers.
fn posted(app: &App, headers: &HeaderMap, body: &Bytes) -> Option<Vec<(String, String)>> {
    let form = pairs(body);
    checked_browser(app, headers, field(&form, "csrf")).map(|_| form)
}

/// The answer to a form without its CSRF token: the page expired.
fn expired(f: &Frame) -> Response {
    refused(f, StatusCode::BAD_REQUEST, f.t.expired)
}

/// `GET /admin`.
pub async fn home(f: Frame) -> Response {
    render(
        StatusCode::OK,
        &HomePage {
            c: f.chrome(None),
            role_line: f.who.clone(),
        },
    )
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    /// RFC 6749 §4.1.2.1: the sign-in ended without a code.
    error: Option<String>,
}

/// `GET /admin/callback`: the console's sign-in comes back; its code is redeemed here once.
pub async fn callback(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(back): Query<Callback>,
) -> Response {
    let t = texts(&headers);
    let page_t = pages::texts(&[], &headers);
    if back.error.as_deref() == Some("unmet_authentication_requirements") {
        return super::error::error_page(page_t, StatusCode::FORBIDDEN, t.too_weak);
    }
    let (Some(code), Some(state)) = (back.code, back.state) else {
        return super::error::error_page(page_t, StatusCode::BAD_REQUEST, t.sign_in_failed);
    };
    let sid = session_of(&app, &headers).await.map(|(_, sid)| sid);
    match app
        .console()
        .finish(&state, &code, sid.as_deref(), app.now())
        .await
    {
        Ok(_) => Redirect::to("/admin").into_response(),
        Err(ConsoleError::NotAdministrator) => {
            super::error::error_page(page_t, StatusCode::FORBIDDEN, t.not_admin)
        }
        Err(ConsoleError::TooWeak) => {
            super::error::error_page(page_t, StatusCode::FORBIDDEN, t.too_weak)
        }
        Err(ConsoleError::Store(e)) => server_error_page(page_t, &e),
        Err(e) => {
            tracing::info!(reason = %e, "console sign-in refused");
            super::error::error_page(page_t, StatusCode::BAD_REQUEST, t.sign_in_failed)
        }
    }
}

/// `POST /admin/logout`: closes the console (the SSO session stays until its own logout).
pub async fn logout(
    State(app): State<AppState>,
    f: Frame,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(_form) = posted(&app, &headers, &body) else {
        return expired(&f);
    };
    match app.console().end(&f.sid).await {
        Ok(()) => Redirect::to("/account").into_response(),
        Err(e) => server_error_page(pages::texts(&[], &headers), &e),
    }
}

#[derive(Deserialize)]
pub struct ClientsQuery {
    #[serde(default)]
    q: String,
    after: Option<String>,
}

/// `GET /admin/clients`: the list (searchable, paginated) and the registration form.
pub async fn clients(
    State(app): State<AppState>,
    f: Frame,
    Query(query): Query<ClientsQuery>,
) -> Response {
    clients_page(&app, &f, &query.q, query.after.as_deref(), None).await
}

async fn clients_page(
    app: &App,
    f: &Frame,
    q: &str,
    after: Option<&str>,
    created: Option<ClientView>,
) -> Response {
    let ops = f.ops(app);
    let page = match ops.list_clients(Some(q), after, 50).await {
        Ok(page) => page,
        Err(e) => return failed(f, e),
    };
    let status = if created.is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    render(
        status,
        &ClientsPage {
            c: f.chrome(None),
            q,
            clients: page.items,
            next: page.next,
            may_write: f.actor.require(Action::ClientsWrite).is_ok(),
            created,
        },
    )
}

/// `POST /admin/clients`: registers a client from the form.
pub async fn create_client(
    State(app): State<AppState>,
    f: Frame,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = posted(&app, &headers, &body) else {
        return expired(&f);
    };
    let change = ClientChange {
        client_name: Some(field(&form, "name").trim().to_owned()),
        redirect_uris: Some(vec![field(&form, "redirect_uri").trim().to_owned()]),
        token_endpoint_auth_method: Some(field(&form, "method").to_owned()),
        scope: Some(field(&form, "scope").to_owned()),
        ..ClientChange::default()
    };
    let ops = f.ops(&app);
    match ops.create_client(&change, app.now()).await {
        Ok(client) => clients_page(&app, &f, "", None, Some(client)).await,
        Err(e) => failed(&f, e),
    }
}

#[derive(Deserialize)]
pub struct AccountsQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    name: String,
    after: Option<String>,
}

/// `GET /admin/accounts?q=`: the search by ID number or mobile number, masked.
pub async fn accounts(
    State(app): State<AppState>,
    f: Frame,
    Query(query): Query<AccountsQuery>,
) -> Response {
    let ops = f.ops(&app);
    let found = if !query.q.trim().is_empty() {
        ops.search_accounts(&query.q, app.now())
            .await
            .map(|items| Page { items, next: None })
    } else if !query.name.trim().is_empty() {
        ops.search_accounts_by_name(&query.name, query.after.as_deref(), 20)
            .await
    } else {
        // The page itself: allowed only to those who may search.
        f.actor.require(Action::AccountsSearch).map(|()| Page {
            items: Vec::new(),
            next: None,
        })
    };
    let searched = !query.q.trim().is_empty() || !query.name.trim().is_empty();
    match found {
        Ok(page) => accounts_page(&f, (&query.q, &query.name), searched, page, None),
        Err(e) => failed(&f, e),
    }
}

fn accounts_page(
    f: &Frame,
    (q, name): (&str, &str),
    searched: bool,
    page: Page<AccountView>,
    notice: Option<&str>,
) -> Response {
    render(
        StatusCode::OK,
        &AccountsPage {
            c: f.chrome(notice),
            q,
            name,
            searched,
            accounts: page.items,
            next: page.next,
        },
    )
}

/// One account as a page of results.
fn one(account: AccountView) -> Page<AccountView> {
    Page {
        items: vec![account],
        next: None,
    }
}

/// `POST /admin/accounts/status`: lock, unlock or disable.
pub async fn account_status(
    State(app): State<AppState>,
    f: Frame,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = posted(&app, &headers, &body) else {
        return expired(&f);
    };
    let ops = f.ops(&app);
    match ops
        .set_account_status(field(&form, "account"), field(&form, "status"), app.now())
        .await
    {
        Ok(account) => accounts_page(
            &f,
            (field(&form, "q"), ""),
            true,
            one(account),
            Some(f.t.status_changed),
        ),
        Err(e) => failed(&f, e),
    }
}

/// `POST /admin/accounts/reveal`: the full numbers, for a stated reason.
pub async fn account_reveal(
    State(app): State<AppState>,
    f: Frame,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = posted(&app, &headers, &body) else {
        return expired(&f);
    };
    let ops = f.ops(&app);
    match ops
        .reveal_account(field(&form, "account"), field(&form, "reason"))
        .await
    {
        Ok(account) => accounts_page(
            &f,
            (field(&form, "q"), ""),
            true,
            one(account),
            Some(f.t.revealed),
        ),
        Err(e) => failed(&f, e),
    }
}

#[derive(Deserialize)]
pub struct AuditFilterQuery {
    #[serde(default)]
    event: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    target: String,
    before: Option<i64>,
}

/// `GET /admin/audit`: the log, newest first, filtered and paginated.
pub async fn audit(
    State(app): State<AppState>,
    f: Frame,
    Query(query): Query<AuditFilterQuery>,
) -> Response {
    audit_page(&app, &f, &query, None).await
}

async fn audit_page(
    app: &App,
    f: &Frame,
    query: &AuditFilterQuery,
    notice: Option<&str>,
) -> Response {
    let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let search = AuditQuery {
        event: text(&query.event),
        actor: text(&query.actor),
        target: text(&query.target),
        before: query.before,
        ..AuditQuery::default()
    };
    let ops = f.ops(app);
    let page = match ops.search_audit(&search, app.now()).await {
        Ok(page) => page,
        Err(e) => return failed(f, e),
    };
    let records = page.items.into_iter().map(audit_row).collect();
    render(
        StatusCode::OK,
        &AuditPage {
            c: f.chrome(notice),
            event: &query.event,
            actor: &query.actor,
            target: &query.target,
            records,
            next: page.next,
        },
    )
}

fn audit_row(r: AuditView) -> AuditRow {
    AuditRow {
        seq: r.seq,
        time: crate::domain::date::rfc3339(r.at_ms / 1000),
        event: r.event,
        result: r
            .reason
            .map_or(r.result.clone(), |why| format!("{} ({why})", r.result)),
        actor: r.actor.unwrap_or_default(),
        target: r.target.unwrap_or_default(),
        details: r.details.map(|d| d.to_string()).unwrap_or_default(),
    }
}

/// `POST /admin/audit/verify`: walks the chain and checks the signed checkpoints.
pub async fn audit_verify(
    State(app): State<AppState>,
    f: Frame,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(_form) = posted(&app, &headers, &body) else {
        return expired(&f);
    };
    let ring = app.keys.ring();
    let verified = f.ops(&app).verify_audit(&ring, 1).await;
    let notice = match verified {
        Ok(v) if v.intact => f.t.intact.to_owned(),
        Ok(v) => format!("{}{}", f.t.broken, v.problem.unwrap_or_default()),
        Err(e) => return failed(&f, e),
    };
    let query = AuditFilterQuery {
        event: String::new(),
        actor: String::new(),
        target: String::new(),
        before: None,
    };
    audit_page(&app, &f, &query, Some(&notice)).await
}

#[derive(Template)]
#[template(path = "console/keys.html")]
struct KeysPage<'a> {
    c: Chrome<'a>,
    keys: Vec<KeyView>,
}

/// `GET /admin/keys`: the signing keys and the rotation form.
pub async fn keys(State(app): State<AppState>, f: Frame) -> Response {
    keys_page(&app, &f, None).await
}

async fn keys_page(app: &App, f: &Frame, notice: Option<&str>) -> Response {
    let ring = app.keys.ring();
    match f.ops(app).list_keys(&ring, app.now()).await {
        Ok(keys) => render(
            StatusCode::OK,
            &KeysPage {
                c: f.chrome(notice),
                keys,
            },
        ),
        Err(e) => failed(f, e),
    }
}

/// `POST /admin/keys` (a new key for `alg`) and `POST /admin/keys/retire` (`kid`).
pub async fn rotate_key(
    State(app): State<AppState>,
    f: Frame,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = posted(&app, &headers, &body) else {
        return expired(&f);
    };
    let ops = f.ops(&app);
    match ops.rotate_key(field(&form, "alg"), app.now()).await {
        Ok(_) => keys_page(&app, &f, Some(f.t.key_changed)).await,
        Err(e) => failed(&f, e),
    }
}

pub async fn retire_key(
    State(app): State<AppState>,
    f: Frame,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = posted(&app, &headers, &body) else {
        return expired(&f);
    };
    let ops = f.ops(&app);
    match ops.end_key(field(&form, "kid"), false, app.now()).await {
        Ok(()) => keys_page(&app, &f, Some(f.t.key_changed)).await,
        Err(e) => failed(&f, e),
    }
}

#[derive(Template)]
#[template(path = "console/roles.html")]
struct RolesPage<'a> {
    c: Chrome<'a>,
    roles: Vec<RoleView>,
}

/// `GET /admin/roles`: the administrators, the grant form and a revoke button per row.
pub async fn roles(State(app): State<AppState>, f: Frame) -> Response {
    roles_page(&app, &f, None).await
}

async fn roles_page(app: &App, f: &Frame, notice: Option<&str>) -> Response {
    match f.ops(app).list_roles().await {
        Ok(roles) => render(
            StatusCode::OK,
            &RolesPage {
                c: f.chrome(notice),
                roles,
            },
        ),
        Err(e) => failed(f, e),
    }
}

/// `POST /admin/roles`: grants `role` (and `department`) to `account`.
pub async fn grant_role(
    State(app): State<AppState>,
    f: Frame,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = posted(&app, &headers, &body) else {
        return expired(&f);
    };
    let ops = f.ops(&app);
    let department = Some(field(&form, "department")).filter(|d| !d.trim().is_empty());
    match ops
        .grant_role(
            field(&form, "account").trim(),
            field(&form, "role"),
            department,
            app.now(),
        )
        .await
    {
        Ok(_) => roles_page(&app, &f, Some(f.t.role_changed)).await,
        Err(e) => failed(&f, e),
    }
}

/// `POST /admin/roles/revoke`: takes `account`'s role away.
pub async fn revoke_role(
    State(app): State<AppState>,
    f: Frame,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = posted(&app, &headers, &body) else {
        return expired(&f);
    };
    let ops = f.ops(&app);
    match ops.revoke_role(field(&form, "account"), app.now()).await {
        Ok(()) => roles_page(&app, &f, Some(f.t.role_changed)).await,
        Err(e) => failed(&f, e),
    }
}

#[derive(Template)]
#[template(path = "console/reports.html")]
struct ReportsPage<'a> {
    c: Chrome<'a>,
    report: ReportView,
}

/// `GET /admin/reports`: the last seven days.
pub async fn reports(State(app): State<AppState>, f: Frame) -> Response {
    match f.ops(&app).report(None, app.now()).await {
        Ok(report) => render(
            StatusCode::OK,
            &ReportsPage {
                c: f.chrome(None),
                report,
            },
        ),
        Err(e) => failed(&f, e),
    }
}

/// `POST /admin/accounts/recovery-code`: the service desk's recovery code.
pub async fn account_recovery_code(
    State(app): State<AppState>,
    f: Frame,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = posted(&app, &headers, &body) else {
        return expired(&f);
    };
    let ops = f.ops(&app);
    let account = field(&form, "account");
    if let Err(e) = ops.send_recovery_code(account, app.now()).await {
        return failed(&f, e);
    }
    match ops.show_account(account).await {
        Ok(view) => accounts_page(
            &f,
            (field(&form, "q"), ""),
            true,
            one(view),
            Some(f.t.recovery_sent),
        ),
        Err(e) => failed(&f, e),
    }
}

#[derive(Template)]
#[template(path = "console/orgs.html")]
struct OrgsPage<'a> {
    c: Chrome<'a>,
    orgs: Vec<OrgView>,
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "console/org.html")]
struct OrgPage<'a> {
    c: Chrome<'a>,
    org: OrgView,
}

#[derive(Deserialize)]
pub struct After {
    after: Option<String>,
}

/// `GET /admin/orgs`: organisations, page by page, and the registration form.
pub async fn orgs(State(app): State<AppState>, f: Frame, Query(query): Query<After>) -> Response {
    match f.ops(&app).list_orgs(query.after.as_deref(), 50).await {
        Ok(page) => render(
            StatusCode::OK,
            &OrgsPage {
                c: f.chrome(None),
                orgs: page.items,
                next: page.next,
            },
        ),
        Err(e) => failed(&f, e),
    }
}

/// `POST /admin/orgs`: registers an organisation; its page follows.
pub async fn create_org(
    State(app): State<AppState>,
    f: Frame,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = posted(&app, &headers, &body) else {
        return expired(&f);
    };
    let new = NewOrg {
        credit_code: field(&form, "credit_code").to_owned(),
        name: field(&form, "name").to_owned(),
    };
    let ops = f.ops(&app);
    match ops.create_org(&new, app.now()).await {
        Ok(org) => org_page(&f, org, Some(f.t.org_changed)),
        Err(e) => failed(&f, e),
    }
}

fn org_page(f: &Frame, org: OrgView, notice: Option<&str>) -> Response {
    render(
        StatusCode::OK,
        &OrgPage {
            c: f.chrome(notice),
            org,
        },
    )
}

/// `GET /admin/orgs/{org}`: one organisation with its members and the forms that change them.
pub async fn org(
    State(app): State<AppState>,
    f: Frame,
    axum::extract::Path(key): axum::extract::Path<String>,
) -> Response {
    match f.ops(&app).show_org(&key).await {
        Ok(org) => org_page(&f, org, None),
        Err(e) => failed(&f, e),
    }
}

/// `POST /admin/orgs/{org}/members`, `/revoke` and `/suspend`.
pub async fn org_change(
    State(app): State<AppState>,
    f: Frame,
    headers: HeaderMap,
    axum::extract::Path((key, change)): axum::extract::Path<(String, String)>,
    body: Bytes,
) -> Response {
    let Some(form) = posted(&app, &headers, &body) else {
        return expired(&f);
    };
    let ops = f.ops(&app);
    let now = app.now();
    let done = match change.as_str() {
        "members" => {
            let scope: Vec<String> = field(&form, "scope")
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            let new = NewMember {
                account_id: field(&form, "account").trim().to_owned(),
                role: field(&form, "role").to_owned(),
                scope: Some(scope),
                expires_at: None,
                expires_on: Some(field(&form, "expires_on").to_owned()),
                granted_by: None,
            };
            ops.add_member(&key, &new, now).await.map(|_| ())
        }
        "revoke" => ops
            .revoke_member(&key, field(&form, "account"), field(&form, "role"), now)
            .await
            .map(|_| ()),
        "suspend" => ops.suspend_org(&key, now).await.map(|_| ()),
        _ => Err(AdminError::NotFound(format!("/admin/orgs/{key}/{change}"))),
    };
    if let Err(e) = done {
        return failed(&f, e);
    }
    match ops.show_org(&key).await {
        Ok(org) => org_page(&f, org, Some(f.t.org_changed)),
        Err(e) => failed(&f, e),
    }
}

#[derive(Template)]
#[template(path = "console/settings.html")]
struct SettingsPage<'a> {
    c: Chrome<'a>,
    settings: String,
}

/// `GET /admin/settings`: the effective configuration, secrets redacted.
pub async fn settings(State(app): State<AppState>, f: Frame) -> Response {
    let redacted = app.settings.clone();
    match f.ops(&app).show_settings(redacted).await {
        Ok(value) => render(
            StatusCode::OK,
            &SettingsPage {
                c: f.chrome(None),
                settings: serde_json::to_string_pretty(&value).unwrap_or_default(),
            },
        ),
        Err(e) => failed(&f, e),
    }
}

#[derive(Template)]
#[template(path = "console/client.html")]
struct ClientPage<'a> {
    c: Chrome<'a>,
    client: ClientView,
    stats: ClientStats,
    /// Run on request only (`?check=1`): it calls the client's addresses.
    check: Option<crate::app::client_check::SelfCheck>,
    /// The system administrator (or the operator) may approve a pending client.
    may_approve: bool,
}

/// `GET /admin/clients/{id}`: a client and its use over the last seven days.
pub async fn client(
    State(app): State<AppState>,
    f: Frame,
    axum::extract::Path(id): axum::extract::Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let run_check = query.as_deref() == Some("check=1");
    client_page(&app, &f, &id, None, run_check).await
}

/// The client page, with a notice after an action, and the self-check when asked for.
async fn client_page(
    app: &App,
    f: &Frame,
    id: &str,
    notice: Option<&'static str>,
    run_check: bool,
) -> Response {
    let ops = f.ops(app);
    let shown = match ops.show_client(id).await {
        Ok(client) => client,
        Err(e) => return failed(f, e),
    };
    let stats = match ops.client_stats(id, None, app.now()).await {
        Ok(stats) => stats,
        Err(e) => return failed(f, e),
    };
    let check = if run_check {
        match app.check_client(&f.actor, &f.context, id).await {
            Ok(check) => Some(check),
            Err(e) => return failed(f, e),
        }
    } else {
        None
    };
    render(
        StatusCode::OK,
        &ClientPage {
            c: f.chrome(notice),
            may_approve: shown.pending
                && f.actor.role() != Some(crate::domain::admin::AdminRole::Department),
            client: shown,
            stats,
            check,
        },
    )
}

/// `POST /admin/clients/{id}/approve`: a pending client registered at the registration endpoint.
pub async fn approve_client(
    State(app): State<AppState>,
    f: Frame,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if posted(&app, &headers, &body).is_none() {
        return expired(&f);
    }
    match f.ops(&app).approve_client(&id, app.now()).await {
        Ok(_) => client_page(&app, &f, &id, Some(f.t.approved), false).await,
        Err(e) => failed(&f, e),
    }
}
