//! Server-side pages (askama templates compiled into the binary): login, consent, error and the
//! form-post response. zh-CN by default, English by `ui_locales` or `Accept-Language`. No script on
//! the login and consent pages, no external assets.

use askama::Template;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// The words of one language.
pub struct Texts {
    pub lang: &'static str,
    pub chinese: bool,
    pub product: &'static str,
    pub login_title: &'static str,
    pub login_intro: &'static str,
    pub identifier_label: &'static str,
    pub identifier_hint: &'static str,
    pub password_label: &'static str,
    pub login_button: &'static str,
    pub invalid_credentials: &'static str,
    pub locked_out: &'static str,
    pub unavailable: &'static str,
    pub busy: &'static str,
    pub too_many: &'static str,
    pub consent_title: &'static str,
    pub consent_intro: &'static str,
    pub allow: &'static str,
    pub deny: &'static str,
    pub error_title: &'static str,
    pub error_advice: &'static str,
    pub expired: &'static str,
    pub continue_title: &'static str,
    pub continue_button: &'static str,
    pub logout_title: &'static str,
    pub logout_question: &'static str,
    pub logout_button: &'static str,
    pub stay_button: &'static str,
    pub logged_out: &'static str,
    pub org_title: &'static str,
    pub org_intro: &'static str,
    pub org_none: &'static str,
    pub roles: [&'static str; 3],
    pub login_methods: &'static str,
    pub tab_password: &'static str,
    pub tab_sms: &'static str,
    pub enterprise_entry: &'static str,
    pub register_link: &'static str,
    pub recover_link: &'static str,
    pub phone_label: &'static str,
    pub phone_hint: &'static str,
    pub send_code: &'static str,
    pub resend_code: &'static str,
    pub code_label: &'static str,
    pub code_hint: &'static str,
    pub code_sent: &'static str,
    pub code_sent_plain: &'static str,
    pub bad_phone: &'static str,
    pub sms_too_soon: &'static str,
    pub sms_daily_cap: &'static str,
    pub sms_down: &'static str,
    pub code_wrong: &'static str,
    pub code_expired: &'static str,
    pub code_used: &'static str,
    pub code_too_many: &'static str,
    pub code_malformed: &'static str,
    pub register_title: &'static str,
    pub register_intro: &'static str,
    pub document_kind_label: &'static str,
    pub document_number_label: &'static str,
    pub document_number_hint: &'static str,
    pub country_label: &'static str,
    pub country_hint: &'static str,
    pub name_label: &'static str,
    pub back_to_login: &'static str,
    pub new_password_label: &'static str,
    pub repeat_password_label: &'static str,
    pub password_rules: &'static str,
    pub agreements_legend: &'static str,
    pub terms_title: &'static str,
    pub terms_text: &'static str,
    pub privacy_title: &'static str,
    pub privacy_text: &'static str,
    pub agree_terms: &'static str,
    pub agree_privacy: &'static str,
    pub agree_sensitive: &'static str,
    pub register_button: &'static str,
    pub registered_title: &'static str,
    pub registered_text: &'static str,
    pub already_registered_title: &'static str,
    pub already_registered: &'static str,
    pub already_registered_phone: &'static str,
    pub phone_taken: &'static str,
    pub consent_missing: &'static str,
    pub passwords_differ: &'static str,
    pub register_mismatch: &'static str,
    pub register_not_found: &'static str,
    pub register_down: &'static str,
    pub draft_expired: &'static str,
    pub bad_document: &'static str,
    pub bad_name: &'static str,
    pub pw_too_short: &'static str,
    pub pw_too_long: &'static str,
    pub pw_classes: &'static str,
    pub pw_personal: &'static str,
    pub pw_control: &'static str,
    pub pw_reused: &'static str,
    pub recover_title: &'static str,
    pub recover_intro: &'static str,
    pub recover_sent: &'static str,
    pub recover_button: &'static str,
    pub recovered_title: &'static str,
    pub recovered_text: &'static str,
    pub continue_login: &'static str,
    pub recover_expired: &'static str,
    pub account_title: &'static str,
    pub profile_title: &'static str,
    pub document_label: &'static str,
    pub level_label: &'static str,
    pub level_how: &'static str,
    pub verified_on: &'static str,
    pub sessions_title: &'static str,
    pub col_time: &'static str,
    pub col_service: &'static str,
    pub col_channel: &'static str,
    pub col_address: &'static str,
    pub col_action: &'static str,
    pub col_data: &'static str,
    pub col_consent: &'static str,
    pub col_event: &'static str,
    pub col_result: &'static str,
    pub end_session: &'static str,
    pub end_all_sessions: &'static str,
    pub this_session: &'static str,
    pub services_title: &'static str,
    pub no_services: &'static str,
    pub withdraw: &'static str,
    pub withdrawn: &'static str,
    pub orgs_title: &'static str,
    pub no_orgs: &'static str,
    pub expires: &'static str,
    pub no_expiry: &'static str,
    pub history_title: &'static str,
    pub ledger_title: &'static str,
    pub ledger_intro: &'static str,
    pub export_csv: &'static str,
    pub export_json: &'static str,
    pub password_title: &'static str,
    pub current_password_label: &'static str,
    pub change_password_button: &'static str,
    pub password_changed: &'static str,
    pub wrong_password: &'static str,
    pub sessions_ended: &'static str,
    pub success: &'static str,
    pub failure: &'static str,
    pub logout_link: &'static str,
    /// Real-name proofing methods by `ProofMethod::as_str`.
    pub methods: [(&'static str, &'static str); 9],
    pub org_register_title: &'static str,
    pub org_register_intro: &'static str,
    pub credit_code_label: &'static str,
    pub org_name_label: &'static str,
    pub org_register_button: &'static str,
    pub org_registered: &'static str,
    pub org_already: &'static str,
    pub org_name_mismatch: &'static str,
    pub org_not_representative: &'static str,
    pub org_not_found: &'static str,
    pub org_register_down: &'static str,
    pub org_not_allowed: &'static str,
    pub no_such_person: &'static str,
    pub bad_credit_code: &'static str,
    pub members_title: &'static str,
    pub col_role: &'static str,
    pub col_scope: &'static str,
    pub col_expiry: &'static str,
    pub revoke: &'static str,
    pub appoint_admin_title: &'static str,
    pub grant_agent_title: &'static str,
    pub member_number_label: &'static str,
    pub member_name_label: &'static str,
    pub scope_label: &'static str,
    pub expiry_label: &'static str,
    pub appoint_button: &'static str,
    pub grant_button: &'static str,
    pub granted: &'static str,
    pub revoked: &'static str,
    pub org_history_title: &'static str,
    pub bad_date: &'static str,
    pub manage: &'static str,
    pub phone_title: &'static str,
    pub new_phone_label: &'static str,
    pub proof_legend: &'static str,
    pub proof_old: &'static str,
    pub proof_real: &'static str,
    pub old_code_label: &'static str,
    pub new_code_label: &'static str,
    pub change_button: &'static str,
    pub confirm_change_button: &'static str,
    pub phone_changed: &'static str,
    pub phone_same: &'static str,
    pub no_old_number: &'static str,
    pub real_name_refused: &'static str,
    pub phone_expired: &'static str,
    pub codes_sent: &'static str,
    pub close_title: &'static str,
    pub close_intro: &'static str,
    pub close_confirm: &'static str,
    pub close_button: &'static str,
    pub closed_title: &'static str,
    pub closed_text: &'static str,
    pub close_confirm_missing: &'static str,
    pub sf_title: &'static str,
    pub sf_intro: &'static str,
    pub totp_label: &'static str,
    pub verify_button: &'static str,
    pub use_recovery: &'static str,
    pub recovery_label: &'static str,
    pub sf_wrong: &'static str,
    pub sf_replayed: &'static str,
    pub recovery_wrong: &'static str,
    pub enrol_title: &'static str,
    pub enrol_intro: &'static str,
    pub qr_label: &'static str,
    pub secret_label: &'static str,
    pub factor_default_name: &'static str,
    pub codes_title: &'static str,
    pub codes_intro: &'static str,
    pub proofing_title: &'static str,
    pub proofing_intro: &'static str,
    pub proofing_pending: &'static str,
    pub skip_button: &'static str,
    pub factors_title: &'static str,
    pub factors_intro: &'static str,
    pub factors_none: &'static str,
    pub add_totp_button: &'static str,
    pub add_totp_intro: &'static str,
    pub factor_name_label: &'static str,
    pub remove_button: &'static str,
    pub codes_left: &'static str,
    pub new_codes_button: &'static str,
    pub factor_added: &'static str,
    pub factor_removed: &'static str,
    pub enrol_expired: &'static str,
    pub bad_factor_name: &'static str,
    pub col_kind: &'static str,
    pub col_last_used: &'static str,
    pub factor_to_remove: &'static str,
    pub kind_totp: &'static str,
    pub kind_passkey: &'static str,
    pub never: &'static str,
    pub passkey_login: &'static str,
    pub passkey_failed: &'static str,
    pub passkey_second: &'static str,
    pub add_passkey_button: &'static str,
    pub add_passkey_intro: &'static str,
    pub create_passkey_button: &'static str,
    pub passkey_added: &'static str,
    pub passkey_refused: &'static str,
    pub passkey_cloned: &'static str,
    pub passkey_default_name: &'static str,
    pub lost_link: &'static str,
    pub lost_intro: &'static str,
    pub lost_send_button: &'static str,
    pub lost_sent: &'static str,
    pub lost_confirm_button: &'static str,
    pub lost_refused: &'static str,
    pub lost_done: &'static str,
    pub device_title: &'static str,
    pub device_intro: &'static str,
    pub device_code_label: &'static str,
    pub device_code_unknown: &'static str,
    pub device_approved_title: &'static str,
    pub device_approved: &'static str,
    pub device_denied_title: &'static str,
    pub device_denied: &'static str,
    pub device_check: &'static str,
    pub device_location: &'static str,
    pub tab_qr: &'static str,
    pub qr_intro: &'static str,
    pub qr_login_label: &'static str,
    pub qr_refused: &'static str,
    pub qr_expired: &'static str,
    pub qr_app_only: &'static str,
    /// Document kinds offered at registration: (`DocumentKind::as_str`, label).
    pub document_kinds: [(&'static str, &'static str); 7],
}

pub const ZH: Texts = Texts {
    lang: "zh-CN",
    chinese: true,
    product: "统一身份认证",
    login_title: "登录",
    login_intro: "登录后继续访问",
    identifier_label: "身份证件号码或手机号码",
    identifier_hint: "18 位身份证号码，或 11 位手机号码",
    password_label: "密码",
    login_button: "登录",
    invalid_credentials: "证件号码（或手机号码）或密码不正确。",
    locked_out: "尝试次数过多，请 15 分钟后再试。",
    unavailable: "该账户目前无法登录，请联系服务窗口。",
    busy: "登录人数较多，请稍后再试。",
    too_many: "尝试次数过多，请稍后再试。",
    consent_title: "授权确认",
    consent_intro: "请求获取您的以下信息：",
    allow: "同意",
    deny: "拒绝",
    error_title: "无法继续",
    error_advice: "请返回您刚才使用的服务，重新开始。",
    expired: "登录页面已过期。",
    continue_title: "正在返回",
    continue_button: "继续",
    logout_title: "退出登录",
    logout_question: "是否退出统一身份认证？退出后，各服务都需要重新登录。",
    logout_button: "退出",
    stay_button: "保持登录",
    logged_out: "您已退出登录。",
    org_title: "选择办事身份",
    org_intro: "请选择您这次代表哪个单位办事：",
    org_none: "以个人身份办事",
    roles: ["法定代表人", "管理员", "经办人"],
    login_methods: "登录方式",
    tab_password: "密码登录",
    tab_sms: "短信验证码登录",
    enterprise_entry: "企业用户：请以经办人本人身份登录，登录后选择要代表的企业。",
    register_link: "注册账号",
    recover_link: "忘记密码",
    phone_label: "手机号码",
    phone_hint: "11 位中国大陆手机号码",
    send_code: "获取验证码",
    resend_code: "重新发送验证码",
    code_label: "短信验证码",
    code_hint: "6 位数字，5 分钟内有效",
    code_sent: "如果该号码已注册，验证码已发送至 {phone}。{s} 秒后可重新获取。",
    code_sent_plain: "验证码已发送至 {phone}。{s} 秒后可重新获取。",
    bad_phone: "请输入正确的 11 位手机号码。",
    sms_too_soon: "验证码发送过于频繁，请 {s} 秒后再试。",
    sms_daily_cap: "今天获取验证码的次数已达上限，请明天再试。",
    sms_down: "短信服务暂时不可用，请稍后再试。",
    code_wrong: "验证码不正确，还可尝试 {n} 次。",
    code_expired: "验证码已过期或未发送，请重新获取。",
    code_used: "验证码已使用，请重新获取。",
    code_too_many: "错误次数过多，验证码已失效，请重新获取。",
    code_malformed: "验证码为 6 位数字。",
    register_title: "注册账号",
    register_intro: "请填写您的证件信息和手机号码。证件号码和姓名将与公安部门的人口信息核对。",
    document_kind_label: "证件类型",
    document_number_label: "证件号码",
    document_number_hint: "居民身份证为 18 位，最后一位可能是 X",
    country_label: "签发国家（仅护照）",
    country_hint: "三位字母代码，例如 FRA",
    name_label: "姓名",
    back_to_login: "返回登录",
    new_password_label: "设置密码",
    repeat_password_label: "再次输入密码",
    password_rules: "至少 8 位，包含大写字母、小写字母、数字、符号中的至少三类，不得包含证件号码或手机号码。",
    agreements_legend: "协议与授权",
    terms_title: "用户服务协议",
    terms_text: "本平台为政务服务统一身份认证平台，为您提供一次登录、全网通办的服务。您应使用本人真实身份注册，妥善保管密码，不得冒用他人身份。",
    privacy_title: "隐私政策",
    privacy_text: "我们收集您的证件号码、姓名和手机号码，用于实名核验和登录。证件号码加密保存，仅在您授权的服务中使用；各服务默认只获得一个不可关联的标识。您可以在个人中心查看信息的使用记录、撤回授权或注销账号。",
    agree_terms: "我已阅读并同意《用户服务协议》",
    agree_privacy: "我已阅读并同意《隐私政策》",
    agree_sensitive: "我单独同意处理我的身份证件号码（敏感个人信息），用于实名核验",
    register_button: "注册",
    registered_title: "注册成功",
    registered_text: "您的账号已创建。现在可以在各政务服务中登录。",
    already_registered_title: "该证件已注册",
    already_registered: "该证件号码已注册账号，请通过“忘记密码”找回。",
    already_registered_phone: "该证件号码已注册账号，预留手机号码为 {phone}。请通过“忘记密码”找回。",
    phone_taken: "该手机号码已被其他账号使用。如是您本人的账号，请通过“忘记密码”找回。",
    consent_missing: "请阅读并同意全部协议与授权。",
    passwords_differ: "两次输入的密码不一致。",
    register_mismatch: "证件号码与姓名不一致，请核对后重试。",
    register_not_found: "未能核验该证件号码，请核对后重试，或到服务窗口办理。",
    register_down: "实名核验服务暂时不可用，请稍后再试。已验证的手机号码无需再次验证。",
    draft_expired: "注册已超时，请重新开始。",
    bad_document: "证件号码不正确：",
    bad_name: "请填写姓名（1 至 100 个字）。",
    pw_too_short: "密码至少需要 {n} 位。",
    pw_too_long: "密码最多 {n} 位。",
    pw_classes: "密码需包含大写字母、小写字母、数字、符号中的至少 {n} 类。",
    pw_personal: "密码不得包含证件号码或手机号码。",
    pw_control: "密码不得包含控制字符。",
    pw_reused: "新密码不得与最近 {n} 次使用的密码相同。",
    recover_title: "找回密码",
    recover_intro: "请填写注册时使用的证件号码和姓名。验证码将发送到账号预留的手机号码。",
    recover_sent: "如果证件号码和姓名与某个账号一致，验证码已发送至该账号预留的手机号码。{s} 秒后可重新获取。如手机号码已停用，请到服务窗口办理。",
    recover_button: "重设密码",
    recovered_title: "密码已重设",
    recovered_text: "您的密码已重设，所有设备上的登录均已退出。请使用新密码登录。",
    continue_login: "继续登录",
    recover_expired: "找回密码已超时，请重新开始。",
    account_title: "个人中心",
    profile_title: "个人信息",
    document_label: "证件",
    level_label: "实名等级",
    level_how: "核验方式",
    verified_on: "核验时间",
    sessions_title: "登录设备与会话",
    col_time: "时间",
    col_service: "服务",
    col_channel: "渠道",
    col_address: "地址",
    col_action: "操作",
    col_data: "信息",
    col_consent: "授权",
    col_event: "事件",
    col_result: "结果",
    end_session: "退出此会话",
    end_all_sessions: "退出其他所有会话",
    this_session: "（当前）",
    services_title: "已授权的服务",
    no_services: "暂无。",
    withdraw: "撤回授权",
    withdrawn: "已撤回授权，该服务已收到退出通知。",
    orgs_title: "我代表的单位",
    no_orgs: "暂无。",
    expires: "有效期至",
    no_expiry: "长期",
    history_title: "登录记录",
    ledger_title: "信息使用记录",
    ledger_intro: "哪些服务在何时获得了您的哪些信息。",
    export_csv: "导出 CSV",
    export_json: "导出 JSON",
    password_title: "修改密码",
    current_password_label: "当前密码",
    change_password_button: "修改密码",
    password_changed: "密码已修改，其他会话已退出。",
    wrong_password: "当前密码不正确。",
    sessions_ended: "已退出 {n} 个会话。",
    success: "成功",
    failure: "失败",
    logout_link: "退出登录",
    methods: [
        ("self_declared", "本人声明"),
        ("sms_code", "手机短信验证"),
        ("register_check", "公安人口信息核验"),
        ("face_check", "人脸识别核验"),
        ("card_chip_face", "身份证读卡与人脸核验"),
        ("certificate", "数字证书"),
        ("electronic_licence", "电子营业执照"),
        ("in_person", "窗口现场核验"),
        ("legacy_import", "原业务系统迁移"),
    ],
    org_register_title: "登记企业",
    org_register_intro: "以法定代表人身份登记企业：统一社会信用代码和企业名称将与市场监管部门登记信息核对。",
    credit_code_label: "统一社会信用代码",
    org_name_label: "企业名称",
    org_register_button: "登记",
    org_registered: "企业已登记，您是其法定代表人。",
    org_already: "该企业已登记。如需办理，请联系其法定代表人。",
    org_name_mismatch: "企业名称与登记信息不一致。",
    org_not_representative: "登记信息中的法定代表人不是您。",
    org_not_found: "未查询到该统一社会信用代码。",
    org_register_down: "企业信息核验服务暂时不可用，请稍后再试。",
    org_not_allowed: "您无权进行此操作。",
    no_such_person: "没有与该证件号码和姓名一致的账号。对方需先注册。",
    bad_credit_code: "统一社会信用代码不正确：",
    members_title: "成员",
    col_role: "身份",
    col_scope: "授权事项",
    col_expiry: "有效期",
    revoke: "撤销",
    appoint_admin_title: "设立管理员",
    grant_agent_title: "授权经办人",
    member_number_label: "对方身份证件号码",
    member_name_label: "对方姓名",
    scope_label: "授权事项（all 表示全部，或以逗号分隔的事项编码）",
    expiry_label: "有效期至（年-月-日）",
    appoint_button: "设立",
    grant_button: "授权",
    granted: "已授权，立即生效。",
    revoked: "已撤销，立即生效。",
    org_history_title: "变更记录",
    bad_date: "日期格式为 年-月-日，例如 2027-06-30。",
    manage: "管理",
    phone_title: "更换手机号码",
    new_phone_label: "新手机号码",
    proof_legend: "验证身份",
    proof_old: "原手机号码可以接收短信",
    proof_real: "原手机号码已停用：重新进行实名核验",
    old_code_label: "原手机号码收到的验证码",
    new_code_label: "新手机号码收到的验证码",
    change_button: "获取验证码",
    confirm_change_button: "确认更换",
    phone_changed: "手机号码已更换。",
    phone_same: "新号码与原号码相同。",
    no_old_number: "账号没有预留手机号码，请选择重新实名核验。",
    real_name_refused: "证件号码或姓名与本账号或登记信息不一致。",
    phone_expired: "更换已超时，请重新开始。",
    codes_sent: "验证码已发送。",
    close_title: "注销账号",
    close_intro: "注销后，您将无法再登录任何服务，所有授权随之撤回；您的个人信息将在 {n} 天后删除，审计记录只保留账号编号。",
    close_confirm: "我确认注销本账号",
    close_button: "注销账号",
    closed_title: "账号已注销",
    closed_text: "账号已注销，所有服务均已退出登录。您的个人信息将在 {n} 天后删除。",
    close_confirm_missing: "请勾选确认后再注销。",
    sf_title: "验证第二重身份",
    sf_intro: "需要更高的安全等级：请输入身份验证器应用中显示的 6 位动态码。",
    totp_label: "6 位动态码",
    verify_button: "验证",
    use_recovery: "无法使用身份验证器？使用恢复码",
    recovery_label: "恢复码",
    sf_wrong: "动态码不正确或已过期，请重新输入。",
    sf_replayed: "这个动态码已经用过了，请等待应用显示下一个动态码。",
    recovery_wrong: "恢复码不正确或已经用过。",
    enrol_title: "设置身份验证器",
    enrol_intro: "您的账号必须使用两重身份验证登录。请用身份验证器应用扫描下面的二维码（或手动输入密钥），再输入应用显示的 6 位动态码。",
    qr_label: "身份验证器二维码",
    secret_label: "密钥",
    factor_default_name: "身份验证器",
    codes_title: "请保存恢复码",
    codes_intro: "请把下面的恢复码抄下或打印，妥善保存。无法使用身份验证器时，每个恢复码可代替动态码使用一次。恢复码只显示这一次。",
    proofing_title: "需要人脸核验",
    proofing_intro: "需要三级实名（人脸核验）。请在 yihao 手机应用“我的 → 人脸核验”中或在自助终端上完成核验，然后点击“继续”。人脸信息只用于这一次比对，yihao 不保存。",
    proofing_pending: "还没有完成人脸核验。",
    skip_button: "暂不核验",
    factors_title: "两重身份验证",
    factors_intro: "登录时除密码或短信验证码外，再用身份验证器应用确认身份，可达到更高的安全等级。",
    factors_none: "尚未设置第二重验证。",
    add_totp_button: "添加身份验证器",
    add_totp_intro: "用身份验证器应用扫描二维码（或手动输入密钥），为它起个名字，再输入应用显示的 6 位动态码。",
    factor_name_label: "名称",
    remove_button: "删除",
    codes_left: "剩余恢复码（个）",
    new_codes_button: "重新生成恢复码",
    factor_added: "已添加身份验证器。",
    factor_removed: "已删除。",
    enrol_expired: "设置已过期，请重新开始。",
    bad_factor_name: "名称为 1 到 40 个字符。",
    col_kind: "类型",
    col_last_used: "最近使用",
    factor_to_remove: "要删除的验证方式",
    kind_totp: "身份验证器应用",
    kind_passkey: "通行密钥",
    never: "从未",
    passkey_login: "使用通行密钥登录",
    passkey_failed: "未能使用通行密钥。请重试，或改用其他方式。",
    passkey_second: "使用通行密钥验证",
    add_passkey_button: "添加通行密钥",
    add_passkey_intro: "通行密钥保存在您的手机或电脑里，用指纹、面容或锁屏密码解锁，可以代替密码登录。请为它起个名字，再按提示创建。",
    create_passkey_button: "创建通行密钥",
    passkey_added: "已添加通行密钥。",
    passkey_refused: "通行密钥未通过验证。",
    passkey_cloned: "这个通行密钥可能已被复制，已拒绝使用。请改用其他方式，并联系客服。",
    passkey_default_name: "通行密钥",
    lost_link: "身份验证器和恢复码都丢失了？",
    lost_intro: "我们会向您预留的手机号码发送验证码，并请您填写证件号码和姓名，重新进行实名核验。通过后，原有的验证方式全部删除，请立即设置新的身份验证器。",
    lost_send_button: "发送验证码",
    lost_sent: "验证码已发送至",
    lost_confirm_button: "核验并重置",
    lost_refused: "信息与账号不符，或实名核验未通过。",
    lost_done: "原有的验证方式已全部删除。请设置新的身份验证器。",
    device_title: "在设备上登录",
    device_intro: "请输入设备屏幕上显示的 8 位代码，然后按提示登录并确认。",
    device_code_label: "设备代码",
    device_code_unknown: "代码不正确或已过期。请核对设备上显示的代码。",
    device_approved_title: "设备已登录",
    device_approved: "请回到设备上继续办理。使用完毕请在设备上退出。",
    device_denied_title: "设备未登录",
    device_denied: "您没有允许这台设备登录。",
    device_check: "请确认这是您面前的设备：",
    device_location: "位置",
    tab_qr: "扫码登录",
    qr_intro: "请用 yihao 手机 App 扫描二维码，并在 App 中确认登录。二维码两分钟内有效。",
    qr_login_label: "登录二维码",
    qr_refused: "已在 App 中拒绝登录。",
    qr_expired: "二维码已过期，已换成新的二维码。",
    qr_app_only: "请在 yihao 手机 App 中扫描此二维码登录。",
    document_kinds: [
        ("resident_id", "居民身份证"),
        ("hk_macao_residence_permit", "港澳居民居住证"),
        ("taiwan_residence_permit", "台湾居民居住证"),
        ("foreign_permanent_residence", "外国人永久居留身份证"),
        ("hk_macao_travel_permit", "港澳居民来往内地通行证"),
        ("taiwan_travel_permit", "台湾居民来往大陆通行证"),
        ("passport", "护照"),
    ],
};

pub const EN: Texts = Texts {
    lang: "en",
    chinese: false,
    product: "Unified Identity Authentication",
    login_title: "Log in",
    login_intro: "Log in to continue to",
    identifier_label: "ID number or mobile number",
    identifier_hint: "An 18-character ID number, or an 11-digit mobile number",
    password_label: "Password",
    login_button: "Log in",
    invalid_credentials: "The ID number (or mobile number) or the password is wrong.",
    locked_out: "Too many attempts. Try again in 15 minutes.",
    unavailable: "This account cannot log in at the moment. Please contact a service window.",
    busy: "Many people are logging in. Please try again shortly.",
    too_many: "Too many attempts. Please wait a moment and try again.",
    consent_title: "Allow access",
    consent_intro: "asks for the following:",
    allow: "Allow",
    deny: "Deny",
    error_title: "Cannot continue",
    error_advice: "Go back to the service you were using and start again.",
    expired: "This login page has expired.",
    continue_title: "Returning",
    continue_button: "Continue",
    logout_title: "Log out",
    logout_question: "Log out of unified identity authentication? Every service will ask you to log in again.",
    logout_button: "Log out",
    stay_button: "Stay logged in",
    logged_out: "You are logged out.",
    org_title: "Act for an organisation",
    org_intro: "asks whom you act for this time:",
    org_none: "Act for myself",
    roles: ["legal representative", "administrator", "agent"],
    login_methods: "Ways to log in",
    tab_password: "Password",
    tab_sms: "SMS code",
    enterprise_entry: "Enterprises: log in as the person who acts for the enterprise, then choose it.",
    register_link: "Register",
    recover_link: "Forgot password",
    phone_label: "Mobile number",
    phone_hint: "An 11-digit mainland China mobile number",
    send_code: "Send code",
    resend_code: "Send a new code",
    code_label: "SMS code",
    code_hint: "6 digits, valid for 5 minutes",
    code_sent: "If this number is registered, a code was sent to {phone}. You can ask for a new one in {s} seconds.",
    code_sent_plain: "A code was sent to {phone}. You can ask for a new one in {s} seconds.",
    bad_phone: "Enter a valid 11-digit mobile number.",
    sms_too_soon: "A code was sent very recently. Try again in {s} seconds.",
    sms_daily_cap: "Too many codes today. Please try again tomorrow.",
    sms_down: "The SMS service is not available at the moment. Please try again later.",
    code_wrong: "The code is wrong. {n} tries left.",
    code_expired: "The code has expired, or none was sent. Ask for a new one.",
    code_used: "This code was already used. Ask for a new one.",
    code_too_many: "Too many wrong tries: the code is void. Ask for a new one.",
    code_malformed: "The code is 6 digits.",
    register_title: "Register",
    register_intro: "Enter your identity document and mobile number. The number and name are checked against the population register.",
    document_kind_label: "Document",
    document_number_label: "Document number",
    document_number_hint: "An ID card number has 18 characters; the last may be X",
    country_label: "Issuing country (passports only)",
    country_hint: "A three-letter code, e.g. FRA",
    name_label: "Name",
    back_to_login: "Back to log in",
    new_password_label: "Choose a password",
    repeat_password_label: "Repeat the password",
    password_rules: "At least 8 characters with three of: upper-case, lower-case, digits, symbols; not your document or mobile number.",
    agreements_legend: "Agreements",
    terms_title: "Terms of service",
    terms_text: "This platform is the unified sign-in of government services: log in once, and every connected service accepts you. Register only with your own identity, keep your password safe, and never use another person's identity.",
    privacy_title: "Privacy notice",
    privacy_text: "We collect your document number, name and mobile number for real-name verification and sign-in. The number is stored encrypted and released only to services you authorise; by default each service receives an identifier that cannot be linked across services. On your personal page you can see every release, withdraw consent, or close your account.",
    agree_terms: "I have read and agree to the terms of service",
    agree_privacy: "I have read and agree to the privacy notice",
    agree_sensitive: "I separately agree to the processing of my identity document number (sensitive personal information) for real-name verification",
    register_button: "Register",
    registered_title: "Registered",
    registered_text: "Your account is ready. You can now log in at every government service.",
    already_registered_title: "Already registered",
    already_registered: "This document already has an account. Use “Forgot password” to get back in.",
    already_registered_phone: "This document already has an account, with the mobile number {phone}. Use “Forgot password” to get back in.",
    phone_taken: "This mobile number belongs to another account. If it is yours, use “Forgot password”.",
    consent_missing: "Please read and agree to every agreement.",
    passwords_differ: "The two passwords are not the same.",
    register_mismatch: "The document number and the name do not match the register. Check them and try again.",
    register_not_found: "The register does not know this document number. Check it, or register at a service window.",
    register_down: "The real-name check is not available at the moment. Please try again later; your mobile number stays verified.",
    draft_expired: "This registration has expired. Please start again.",
    bad_document: "The document number is not valid: ",
    bad_name: "Enter your name (1 to 100 characters).",
    pw_too_short: "The password needs at least {n} characters.",
    pw_too_long: "The password has at most {n} characters.",
    pw_classes: "The password needs {n} of: upper-case, lower-case, digits, symbols.",
    pw_personal: "The password must not contain your document or mobile number.",
    pw_control: "The password must not contain control characters.",
    pw_reused: "The new password must differ from your last {n} passwords.",
    recover_title: "Recover your password",
    recover_intro: "Enter the document number and name you registered with. A code goes to the mobile number on file.",
    recover_sent: "If the document number and name match an account, a code was sent to its mobile number on file. You can ask for a new one in {s} seconds. If that number is no longer yours, please visit a service window.",
    recover_button: "Set the new password",
    recovered_title: "Password changed",
    recovered_text: "Your password is changed and you are signed out on every device. Log in with the new password.",
    continue_login: "Continue to log in",
    recover_expired: "This recovery has expired. Please start again.",
    account_title: "My account",
    profile_title: "Profile",
    document_label: "Document",
    level_label: "Real-name level",
    level_how: "Verified by",
    verified_on: "Verified on",
    sessions_title: "Sessions",
    col_time: "Time",
    col_service: "Service",
    col_channel: "Channel",
    col_address: "Address",
    col_action: "Action",
    col_data: "Data",
    col_consent: "Consent",
    col_event: "Event",
    col_result: "Result",
    end_session: "End",
    end_all_sessions: "End every other session",
    this_session: "(this one)",
    services_title: "Authorised services",
    no_services: "None.",
    withdraw: "Withdraw consent",
    withdrawn: "Consent withdrawn; the service was told to sign you out.",
    orgs_title: "Organisations I act for",
    no_orgs: "None.",
    expires: "valid until",
    no_expiry: "no expiry",
    history_title: "Sign-in history",
    ledger_title: "Disclosure ledger",
    ledger_intro: "Which service received which of your data, and when.",
    export_csv: "Export CSV",
    export_json: "Export JSON",
    password_title: "Change password",
    current_password_label: "Current password",
    change_password_button: "Change password",
    password_changed: "Password changed; your other sessions were ended.",
    wrong_password: "The current password is wrong.",
    sessions_ended: "{n} session(s) ended.",
    success: "success",
    failure: "failed",
    logout_link: "Log out",
    methods: [
        ("self_declared", "self-declared"),
        ("sms_code", "mobile number by SMS"),
        ("register_check", "population register check"),
        ("face_check", "live face check"),
        ("card_chip_face", "ID card chip and face"),
        ("certificate", "digital certificate"),
        ("electronic_licence", "electronic business licence"),
        ("in_person", "in person at a service window"),
        ("legacy_import", "carried over from a department system"),
    ],
    org_register_title: "Register an enterprise",
    org_register_intro: "Register an enterprise you are the legal representative of: the credit code and name are checked against the market-regulation register.",
    credit_code_label: "Unified social credit code",
    org_name_label: "Enterprise name",
    org_register_button: "Register",
    org_registered: "The enterprise is registered, with you as its legal representative.",
    org_already: "This enterprise is already registered. Ask its legal representative.",
    org_name_mismatch: "The name does not match the register.",
    org_not_representative: "The register names someone else as its legal representative.",
    org_not_found: "The register does not know this credit code.",
    org_register_down: "The enterprise register is not available at the moment. Please try again later.",
    org_not_allowed: "You may not do this.",
    no_such_person: "No account matches this ID number and name; the person must register first.",
    bad_credit_code: "The credit code is not valid: ",
    members_title: "Members",
    col_role: "Role",
    col_scope: "Service items",
    col_expiry: "Valid until",
    revoke: "Revoke",
    appoint_admin_title: "Appoint an administrator",
    grant_agent_title: "Authorise an agent",
    member_number_label: "Their ID number",
    member_name_label: "Their name",
    scope_label: "Service items (all, or item codes separated by commas)",
    expiry_label: "Valid until (YYYY-MM-DD)",
    appoint_button: "Appoint",
    grant_button: "Authorise",
    granted: "Granted; effective at once.",
    revoked: "Revoked; effective at once.",
    org_history_title: "History of changes",
    bad_date: "Dates are YYYY-MM-DD, e.g. 2027-06-30.",
    manage: "Manage",
    phone_title: "Change mobile number",
    new_phone_label: "New mobile number",
    proof_legend: "Prove it is you",
    proof_old: "My current number can receive messages",
    proof_real: "My current number is gone: check my identity again",
    old_code_label: "Code sent to your current number",
    new_code_label: "Code sent to your new number",
    change_button: "Send codes",
    confirm_change_button: "Confirm the change",
    phone_changed: "Your mobile number is changed.",
    phone_same: "The new number is the one on file.",
    no_old_number: "There is no number on file: choose the identity check.",
    real_name_refused: "The document number or name does not match this account or the register.",
    phone_expired: "The change has expired. Please start again.",
    codes_sent: "Codes sent.",
    close_title: "Close my account",
    close_intro: "Once closed, you can no longer sign in anywhere and every consent is withdrawn; your personal data is erased {n} days later, and the audit log keeps only the account number.",
    close_confirm: "I want to close this account",
    close_button: "Close my account",
    closed_title: "Account closed",
    closed_text: "Your account is closed and you are signed out everywhere. Your personal data will be erased in {n} days.",
    close_confirm_missing: "Tick the confirmation to close the account.",
    sf_title: "Confirm it is you: second factor",
    sf_intro: "needs a higher level of assurance: enter the 6-digit code your authenticator app shows.",
    totp_label: "6-digit code",
    verify_button: "Verify",
    use_recovery: "Cannot use your authenticator app? Use a recovery code",
    recovery_label: "Recovery code",
    sf_wrong: "The code is wrong or has expired. Try again.",
    sf_replayed: "This code was used already. Wait for the next code in your app.",
    recovery_wrong: "The recovery code is wrong or was used already.",
    enrol_title: "Set up an authenticator app",
    enrol_intro: "your account must sign in with two factors. Scan the QR code below with an authenticator app (or type the key), then enter the 6-digit code it shows.",
    qr_label: "QR code for the authenticator app",
    secret_label: "Key",
    factor_default_name: "Authenticator app",
    codes_title: "Save your recovery codes",
    codes_intro: "Write down or print these recovery codes and keep them safe. When you cannot use your authenticator app, each code works once in place of a 6-digit code. They are shown only now.",
    proofing_title: "Face verification needed",
    proofing_intro: "needs real-name level 3 (face verification). Verify your face in the yihao app (Me → Face verification) or at a self-service kiosk, then press Continue. Your face is used only for this one comparison; yihao does not keep it.",
    proofing_pending: "The face verification is not done yet.",
    skip_button: "Not now",
    factors_title: "Two-factor sign-in",
    factors_intro: "Confirming sign-in with an authenticator app as well as a password or SMS code reaches a higher level of assurance.",
    factors_none: "No second factor yet.",
    add_totp_button: "Add an authenticator app",
    add_totp_intro: "Scan the QR code with an authenticator app (or type the key), give it a name, then enter the 6-digit code it shows.",
    factor_name_label: "Name",
    remove_button: "Remove",
    codes_left: "Recovery codes left",
    new_codes_button: "New recovery codes",
    factor_added: "Authenticator app added.",
    factor_removed: "Removed.",
    enrol_expired: "The setup expired. Start again.",
    bad_factor_name: "A name has 1 to 40 characters.",
    col_kind: "Kind",
    col_last_used: "Last used",
    factor_to_remove: "Factor to remove",
    kind_totp: "Authenticator app",
    kind_passkey: "Passkey",
    never: "never",
    passkey_login: "Sign in with a passkey",
    passkey_failed: "The passkey could not be used. Try again, or use another way.",
    passkey_second: "Use a passkey",
    add_passkey_button: "Add a passkey",
    add_passkey_intro: "A passkey lives on your phone or computer and is unlocked with your fingerprint, face or screen lock; it signs you in without a password. Give it a name, then follow the prompts.",
    create_passkey_button: "Create the passkey",
    passkey_added: "Passkey added.",
    passkey_refused: "The passkey was not accepted.",
    passkey_cloned: "This passkey may have been copied and was refused. Use another way, and contact the service desk.",
    passkey_default_name: "Passkey",
    lost_link: "Lost your authenticator and your recovery codes?",
    lost_intro: "We send a code to the mobile number on file and ask for your document number and name for a new real-name check. Once both pass, every old factor is removed, and you set up a new authenticator app at once.",
    lost_send_button: "Send a code",
    lost_sent: "A code was sent to",
    lost_confirm_button: "Check and reset",
    lost_refused: "The details do not match the account, or the real-name check did not pass.",
    lost_done: "Every old factor was removed. Set up a new authenticator app now.",
    device_title: "Sign in on a device",
    device_intro: "Enter the 8-character code the device shows, then sign in and confirm.",
    device_code_label: "Device code",
    device_code_unknown: "The code is wrong or has expired. Check the code the device shows.",
    device_approved_title: "The device is signed in",
    device_approved: "Go back to the device to continue. Sign out on the device when you are done.",
    device_denied_title: "The device is not signed in",
    device_denied: "You did not allow this device to sign in.",
    device_check: "Check that this is the device in front of you:",
    device_location: "Location",
    tab_qr: "Scan with the app",
    qr_intro: "Scan the code with the yihao mobile app and confirm in the app. The code is valid for two minutes.",
    qr_login_label: "Sign-in QR code",
    qr_refused: "The sign-in was refused in the app.",
    qr_expired: "The code expired; here is a new one.",
    qr_app_only: "Scan this code with the yihao mobile app to sign in.",
    document_kinds: [
        ("resident_id", "Resident identity card"),
        (
            "hk_macao_residence_permit",
            "Residence permit (Hong Kong, Macao)",
        ),
        ("taiwan_residence_permit", "Residence permit (Taiwan)"),
        (
            "foreign_permanent_residence",
            "Foreign permanent residence ID card",
        ),
        (
            "hk_macao_travel_permit",
            "Mainland travel permit (Hong Kong, Macao)",
        ),
        ("taiwan_travel_permit", "Mainland travel permit (Taiwan)"),
        ("passport", "Passport"),
    ],
};

/// The configured SMS text in the page's language.
pub fn sms_text<'a>(config: &'a crate::config::SmsConfig, t: &Texts) -> &'a str {
    if t.chinese {
        &config.text_zh
    } else {
        &config.text_en
    }
}

/// `ui_locales` first (OIDC Core §3.1.2.1), then `Accept-Language`, then zh-CN.
pub fn texts(ui_locales: &[String], headers: &HeaderMap) -> &'static Texts {
    let pick = |tag: &str| {
        let tag = tag.trim().to_ascii_lowercase();
        if tag.starts_with("zh") {
            Some(&ZH)
        } else if tag.starts_with("en") {
            Some(&EN)
        } else {
            None
        }
    };
    if let Some(t) = ui_locales.iter().find_map(|l| pick(l)) {
        return t;
    }
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept
        .split(',')
        .find_map(|part| pick(part.split(';').next().unwrap_or("")))
        .unwrap_or(&ZH)
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub t: &'a Texts,
    pub client_name: &'a str,
    pub interaction: &'a str,
    pub csrf: &'a str,
    pub identifier: &'a str,
    pub error: Option<&'a str>,
    /// Sign-in by SMS code and recovery are offered.
    pub sms: bool,
    /// Registration is offered.
    pub register: bool,
    /// The options of a passkey sign-in (JSON), when passkeys are offered.
    pub passkey: Option<String>,
}

/// A TOTP enrolment as a page shows it.
pub struct EnrolView {
    /// The QR code of the `otpauth://` URI, as SVG.
    pub qr_svg: String,
    /// The key in base32, for typing.
    pub secret: String,
}

#[derive(Template)]
#[template(path = "second_factor.html")]
pub struct SecondFactorPage<'a> {
    pub t: &'a Texts,
    pub client_name: &'a str,
    pub interaction: &'a str,
    pub csrf: &'a str,
    pub error: Option<&'a str>,
    /// Enrolment at sign-in (two-factor accounts without a factor).
    pub enrol: Option<EnrolView>,
    /// New recovery codes to show once, then continue.
    pub recovery_codes: Option<Vec<String>>,
    /// The options of a passkey assertion (JSON), when the account has passkeys.
    pub passkey: Option<String>,
    /// Resetting lost factors is offered (SMS codes and the population register).
    pub lost_offered: bool,
    /// The reset's code was sent to this (masked) number: its form is shown.
    pub lost: Option<String>,
}

#[derive(Template)]
#[template(path = "proofing.html")]
pub struct ProofingPage<'a> {
    pub t: &'a Texts,
    pub client_name: &'a str,
    pub interaction: &'a str,
    pub csrf: &'a str,
    pub error: Option<&'a str>,
}

/// The QR code of `text` as an SVG element (black on white, with its quiet zone), or an empty
/// string when `text` is too long for a QR code.
pub fn qr_svg(text: &str) -> String {
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .dark_color(qrcode::render::svg::Color("#000000"))
            .light_color(qrcode::render::svg::Color("#ffffff"))
            .build()
            // Without the XML declaration: the SVG sits inside an HTML page.
            .split_once("<svg")
            .map(|(_, rest)| format!("<svg{rest}"))
            .unwrap_or_default(),
        Err(_) => String::new(),
    }
}

#[derive(Template)]
#[template(path = "sms_login.html")]
pub struct SmsLoginPage<'a> {
    pub t: &'a Texts,
    pub client_name: &'a str,
    pub interaction: &'a str,
    pub csrf: &'a str,
    pub phone: &'a str,
    pub code_sent: bool,
    pub error: Option<&'a str>,
    pub notice: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "register.html")]
pub struct RegisterPage<'a> {
    pub t: &'a Texts,
    pub interaction: &'a str,
    pub csrf: &'a str,
    pub kind: &'a str,
    pub country: &'a str,
    pub number: &'a str,
    pub name: &'a str,
    pub phone: &'a str,
    pub error: Option<&'a str>,
    /// The field at fault (`document`, `name`, `phone`), or empty.
    pub field: &'a str,
}

#[derive(Template)]
#[template(path = "register_confirm.html")]
pub struct RegisterConfirmPage<'a> {
    pub t: &'a Texts,
    pub draft: &'a str,
    pub csrf: &'a str,
    pub terms_version: &'a str,
    pub privacy_version: &'a str,
    pub error: Option<&'a str>,
    pub notice: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "recover.html")]
pub struct RecoverPage<'a> {
    pub t: &'a Texts,
    pub interaction: &'a str,
    pub csrf: &'a str,
    pub kind: &'a str,
    pub country: &'a str,
    pub number: &'a str,
    pub name: &'a str,
    pub error: Option<&'a str>,
    pub field: &'a str,
}

#[derive(Template)]
#[template(path = "recover_confirm.html")]
pub struct RecoverConfirmPage<'a> {
    pub t: &'a Texts,
    pub draft: &'a str,
    pub csrf: &'a str,
    pub error: Option<&'a str>,
    pub notice: Option<&'a str>,
}

/// One row of a table on the personal page, already formatted.
pub struct Row {
    pub cells: Vec<String>,
    /// A form button: (action, hidden field name, value, label).
    pub action: Option<(String, &'static str, String, &'static str)>,
    /// A link: (href, label).
    pub link: Option<(String, &'static str)>,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage<'a> {
    pub t: &'a Texts,
    pub csrf: &'a str,
    pub notice: Option<&'a str>,
    pub error: Option<&'a str>,
    pub name: &'a str,
    pub document: &'a str,
    pub phone: &'a str,
    pub level: &'a str,
    pub method: &'a str,
    pub verified_on: &'a str,
    pub sessions: Vec<Row>,
    pub services: Vec<Row>,
    pub orgs: Vec<Row>,
    pub history: Vec<Row>,
    pub ledger: Vec<Row>,
    /// Registering an enterprise is offered (the enterprise register is configured).
    pub enterprise_register: bool,
    /// `close_intro` with the erasure delay filled in.
    pub close_intro: String,
    /// Second factors are offered (`second_factor.totp`).
    pub totp_offered: bool,
    /// The account's second factors.
    pub factors: Vec<Row>,
    /// (id, label) of each factor, for the removal form.
    pub factor_choices: Vec<(String, String)>,
    pub codes_left: i64,
    /// An authenticator-app enrolment in progress.
    pub enrol: Option<EnrolView>,
    /// New recovery codes, shown once.
    pub new_codes: Option<Vec<String>>,
    /// Passkeys are offered.
    pub passkeys_offered: bool,
    /// A passkey registration in progress: the options (JSON) for the browser.
    pub passkey_options: Option<String>,
}

#[derive(Template)]
#[template(path = "enterprise.html")]
pub struct EnterprisePage<'a> {
    pub t: &'a Texts,
    pub csrf: &'a str,
    pub notice: Option<&'a str>,
    pub error: Option<&'a str>,
    pub name: &'a str,
    pub code: &'a str,
    pub status: &'a str,
    pub my_roles: &'a str,
    pub manages: bool,
    pub representative: bool,
    pub members: Vec<Row>,
    pub history: Vec<Row>,
}

#[derive(Template)]
#[template(path = "phone_confirm.html")]
pub struct PhoneConfirmPage<'a> {
    pub t: &'a Texts,
    pub csrf: &'a str,
    pub draft: &'a str,
    pub old_code: bool,
    pub error: Option<&'a str>,
    pub notice: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "notice.html")]
pub struct NoticePage<'a> {
    pub t: &'a Texts,
    pub title: &'a str,
    pub message: &'a str,
    pub link: Option<(&'a str, &'a str)>,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub t: &'a Texts,
    pub client_name: &'a str,
    pub interaction: &'a str,
    pub csrf: &'a str,
    pub items: Vec<&'a str>,
    /// A device being approved (RFC 8628 §5.4): where it stands, when its client says so.
    pub device: Option<Option<&'a str>>,
}

#[derive(Template)]
#[template(path = "qr_login.html")]
pub struct QrLoginPage<'a> {
    pub t: &'a Texts,
    pub client_name: &'a str,
    pub interaction: &'a str,
    pub ticket: &'a str,
    pub qr_svg: String,
    pub error: Option<&'a str>,
    pub sms: bool,
}

#[derive(Template)]
#[template(path = "device.html")]
pub struct DevicePage<'a> {
    pub t: &'a Texts,
    pub user_code: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "org_select.html")]
pub struct OrgPage<'a> {
    pub t: &'a Texts,
    pub client_name: &'a str,
    pub interaction: &'a str,
    pub csrf: &'a str,
    pub choices: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage<'a> {
    pub t: &'a Texts,
    pub interaction: &'a str,
    pub csrf: &'a str,
}

#[derive(Template)]
#[template(path = "logged_out.html")]
pub struct LoggedOutPage<'a> {
    pub t: &'a Texts,
    /// Front-Channel Logout iframes.
    pub frames: Vec<String>,
    /// Where to continue (the client's post-logout redirect, with state).
    pub next: Option<String>,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub t: &'a Texts,
    pub title: &'a str,
    pub message: &'a str,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub t: &'a Texts,
    pub message: &'a str,
}

#[derive(Template)]
#[template(path = "form_post.html")]
pub struct FormPostPage<'a> {
    pub t: &'a Texts,
    pub action: &'a str,
    pub fields: Vec<(&'a str, &'a str)>,
}

/// Renders a page with `Cache-Control: no-store`.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => {
            let mut response = (status, Html(html)).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => super::error::render_failed(&e),
    }
}

/// The CSP of a login or consent page: its form posts to this server, whose answer redirects to the
/// client; browsers apply `form-action` to that redirect too, so the client's origin must be allowed.
pub fn allow_form_target(response: &mut Response, redirect_uri: &str) {
    let target = match url::Url::parse(redirect_uri) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u.origin().ascii_serialization(),
        Ok(u) => format!("{}:", u.scheme()),
        Err(_) => return,
    };
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         form-action 'self' {target}; frame-ancestors 'none'; base-uri 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, v);
    }
}

pub async fn stylesheet() -> Response {
    static_asset(
        include_str!("../../static/yihao.css"),
        "text/css; charset=utf-8",
    )
}

pub async fn form_post_script() -> Response {
    static_asset(
        include_str!("../../static/form_post.js"),
        "text/javascript; charset=utf-8",
    )
}

/// `GET /static/passkey.js`: the WebAuthn calls of the passkey forms.
pub async fn passkey_script() -> Response {
    static_asset(
        include_str!("../../static/passkey.js"),
        "text/javascript; charset=utf-8",
    )
}

fn static_asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}
