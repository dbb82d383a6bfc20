//! Password recovery end to end: document and name, a code to the phone on file, a new password
//! under the history rule; every session ends (the relying party receives a back-channel logout),
//! refresh tokens are revoked, a lockout is lifted; and the same answer for details that match no
//! account.

use std::time::Duration;

use yihao::domain::client::AuthMethod;

use crate::common::people::{last_sms_code, sms_codes};
use crate::{
    Browser, ID_NUMBER, NAME, PASSWORD, PHONE, SECRET, backchannel_receiver, client_spec, hidden,
    register, setup_on,
};

const NEW_PASSWORD: &str = "Moonrise-2027?";

pub(crate) async fn recover_form(s: &crate::Setup, browser: &Browser) -> String {
    browser.page(&format!("{}/recover", s.base)).await
}

pub(crate) async fn ask(
    s: &crate::Setup,
    browser: &Browser,
    form: &str,
    number: &str,
    name: &str,
) -> reqwest::Response {
    browser
        .post(
            &format!("{}/recover", s.base),
            &[
                ("interaction", ""),
                ("csrf", &hidden(form, "csrf")),
                ("kind", "resident_id"),
                ("country", ""),
                ("number", number),
                ("name", name),
            ],
        )
        .await
}

pub(crate) async fn reset(
    s: &crate::Setup,
    browser: &Browser,
    page: &str,
    code: &str,
    password: &str,
) -> reqwest::Response {
    browser
        .post(
            &format!("{}/recover/complete", s.base),
            &[
                ("draft", hidden(page, "draft").as_str()),
                ("csrf", hidden(page, "csrf").as_str()),
                ("code", code),
                ("password", password),
                ("password2", password),
            ],
        )
        .await
}

#[tokio::test]
async fn recovery_sets_the_password_and_signs_out_everywhere_with_back_channel_logout() {
    let s = setup_on(
        |c| {
            c.logout.poll_ms = 50;
        },
        None,
    )
    .await;
    let app = s._server.test_app.app.clone();
    let rp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = rp.local_addr().unwrap().port();
    let mut rx = backchannel_receiver(rp);
    let mut spec = client_spec(
        "bc",
        "http://127.0.0.1:9/bc",
        AuthMethod::ClientSecretBasic,
        true,
    );
    spec.settings.backchannel_logout_uri = Some(format!("http://127.0.0.1:{port}/backchannel"));
    register(&app, spec, SECRET).await;
    // Signed in at "bc" in one browser.
    let signed_in = Browser::new();
    crate::code_for(&s, &signed_in, "bc", "http://127.0.0.1:9/bc", &[]).await;

    let browser = Browser::new();
    let form = recover_form(&s, &browser).await;
    let page = ask(&s, &browser, &form, ID_NUMBER, NAME).await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("如果证件号码和姓名与某个账号一致"), "{page}");
    let code = last_sms_code(&app, PHONE);
    // The history rule: the current password is refused (the code stays proven).
    let r = reset(&s, &browser, &page, &code, PASSWORD).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("最近 5 次"));
    let r = reset(&s, &browser, &page, "", NEW_PASSWORD).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("密码已重设"));

    let token = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no back-channel logout")
        .unwrap();
    assert!(!token.is_empty());
    // The old session no longer signs anyone in; the new password does, the old one not.
    let again = signed_in
        .get(&crate::authorize_url(
            &s.base,
            "bc",
            "http://127.0.0.1:9/bc",
            &[],
        ))
        .await;
    let again = again.text().await.unwrap();
    assert!(again.contains("action=\"/login\""), "the session ended");
    let old = signed_in.login(&s.base, &again, ID_NUMBER, PASSWORD).await;
    assert_eq!(old.status(), 401);
    let new = signed_in
        .login(&s.base, &again, ID_NUMBER, NEW_PASSWORD)
        .await;
    assert!(new.status().is_redirection(), "{}", new.status());
    let records = app.store.audit_records(1, 1000).await.unwrap();
    assert!(
        records
            .iter()
            .any(|r| r.event == "password_reset" && r.result == "success")
    );
}

#[tokio::test]
async fn details_that_match_no_account_get_the_same_answer_and_no_code() {
    let s = setup_on(|_| {}, None).await;
    let app = s._server.test_app.app.clone();
    let browser = Browser::new();
    let form = recover_form(&s, &browser).await;
    let known = ask(&s, &browser, &form, ID_NUMBER, NAME).await;
    // Asking again at once answers the same (the first code is still good; no second is sent).
    let again = ask(&s, &browser, &form, ID_NUMBER, NAME).await;
    assert_eq!(again.status(), 200);
    let wrong_name = ask(&s, &browser, &form, ID_NUMBER, "李四").await;
    let unknown = ask(&s, &browser, &form, "440305200002290029", "某人").await;
    assert_eq!(known.status(), 200);
    assert_eq!(wrong_name.status(), 200);
    assert_eq!(unknown.status(), 200);
    let notice = |page: &str| {
        page.split("class=\"notice\"")
            .nth(1)
            .unwrap()
            .split("</p>")
            .next()
            .unwrap()
            .to_owned()
    };
    let known = known.text().await.unwrap();
    let unknown = unknown.text().await.unwrap();
    assert_eq!(notice(&known), notice(&unknown));
    assert_eq!(
        sms_codes(&app, PHONE).len(),
        1,
        "one code, for the match only"
    );
    // Every code is wrong for a draft that matched nobody, with the same count of tries.
    for left in (1..=4).rev() {
        let r = reset(&s, &browser, &unknown, "123456", NEW_PASSWORD).await;
        assert_eq!(r.status(), 401);
        assert!(
            r.text()
                .await
                .unwrap()
                .contains(&format!("还可尝试 {left} 次"))
        );
    }
    let r = reset(&s, &browser, &unknown, "123456", NEW_PASSWORD).await;
    assert!(r.text().await.unwrap().contains("错误次数过多"));
    // Then, as for a voided real code: expired.
    let r = reset(&s, &browser, &unknown, "123456", NEW_PASSWORD).await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("已过期"));
}

#[tokio::test]
async fn recovery_lifts_a_password_lockout() {
    let s = setup_on(|_| {}, None).await;
    let app = s._server.test_app.app.clone();
    let browser = Browser::new();
    let page = browser
        .page(&crate::authorize_url(
            &s.base,
            "tax",
            "http://127.0.0.1:9/tax",
            &[],
        ))
        .await;
    for _ in 0..5 {
        browser
            .login(&s.base, &page, ID_NUMBER, "Wrong-pass-1")
            .await;
    }
    let locked = browser
        .login_page(&s.base, &page, ID_NUMBER, PASSWORD)
        .await;
    assert!(locked.contains("15 分钟"));
    let form = recover_form(&s, &browser).await;
    let confirm = ask(&s, &browser, &form, ID_NUMBER, NAME)
        .await
        .text()
        .await
        .unwrap();
    let code = last_sms_code(&app, PHONE);
    assert_eq!(
        reset(&s, &browser, &confirm, &code, NEW_PASSWORD)
            .await
            .status(),
        200
    );
    let page = browser
        .page(&crate::authorize_url(
            &s.base,
            "tax",
            "http://127.0.0.1:9/tax",
            &[],
        ))
        .await;
    let r = browser.login(&s.base, &page, ID_NUMBER, NEW_PASSWORD).await;
    assert!(r.status().is_redirection(), "{}", r.status());
}
