//! Scan to sign in: the login page's QR tab shows a ticket; the app (the reference client in
//! `examples/qr_app.rs`, with the person's access token from an `app` client) sees what is asking and
//! confirms; the waiting browser signs in at the app session's level with `amr` `qr`. A ticket
//! waited on from another browser, a replayed one and an expired one sign nobody in.

use std::sync::Arc;

use serde_json::json;
use yihao::clock::ManualClock;
use yihao::domain::client::{AuthMethod, Channel};

use crate::{
    Browser, SECRET, Setup, authorize_url, client_spec, code_exchange, jwt_part, redirect_params,
    register, setup_on,
};

#[allow(dead_code)]
#[path = "../../examples/qr_app.rs"]
mod qr_app;

fn ticket_of(page: &str) -> String {
    let marker = "data-ticket=\"";
    let start = page
        .find(marker)
        .unwrap_or_else(|| panic!("no ticket in {page}"))
        + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

/// The login page's QR tab in `browser` for a "tax" request: the interaction and the ticket.
async fn qr_tab(s: &Setup, browser: &Browser) -> (String, String) {
    let login = browser
        .page(&authorize_url(
            &s.base,
            "tax",
            "http://127.0.0.1:9/tax",
            &[("nonce", "n")],
        ))
        .await;
    let interaction = crate::hidden(&login, "interaction");
    assert!(login.contains(&format!("/login/qr?interaction={interaction}")));
    let tab = browser
        .page(&format!("{}/login/qr?interaction={interaction}", s.base))
        .await;
    assert!(tab.contains("<svg"), "the QR code");
    assert!(
        tab.contains("http-equiv=\"refresh\""),
        "the page waits without script"
    );
    (interaction, ticket_of(&tab))
}

async fn wait(s: &Setup, browser: &Browser, interaction: &str, ticket: &str) -> reqwest::Response {
    browser
        .get(&format!(
            "{}/login/qr/wait?interaction={interaction}&ticket={ticket}",
            s.base
        ))
        .await
}

#[tokio::test]
async fn the_app_confirms_a_sign_in_shown_in_a_browser() {
    let clock = Arc::new(ManualClock::starting_now());
    let s = setup_on(|_| {}, Some(clock.clone())).await;
    let app = &s._server.test_app.app;
    let mut mobile = client_spec(
        "mobile",
        "http://127.0.0.1:9/mobile",
        AuthMethod::ClientSecretBasic,
        true,
    );
    mobile.settings.channel = Channel::App;
    register(app, mobile, SECRET).await;
    app.clients.reload().await.unwrap();
    // The app's own session and its access token (level 2).
    let phone = Browser::new();
    let code = phone
        .authorize(
            &s.base,
            &authorize_url(&s.base, "mobile", "http://127.0.0.1:9/mobile", &[]),
        )
        .await["code"]
        .clone();
    let (_, tokens) = code_exchange(&s, "mobile", "http://127.0.0.1:9/mobile", &code).await;
    let token = tokens["access_token"].as_str().unwrap().to_owned();

    let browser = Browser::new();
    let (interaction, ticket) = qr_tab(&s, &browser).await;
    let (status, asking) = qr_app::view(&s.base, &token, &ticket).await.unwrap();
    assert_eq!(status, 200, "{asking}");
    assert_eq!(asking["service"], "服务 tax");
    assert_eq!(asking["channel"], "web");
    assert_eq!(asking["address"], "127.0.0.1");
    let waiting = wait(&s, &browser, &interaction, &ticket).await;
    assert_eq!(waiting.status(), 200, "still waiting");
    assert_eq!(ticket_of(&waiting.text().await.unwrap()), ticket);
    let (status, _) = qr_app::answer(&s.base, &token, &ticket, true)
        .await
        .unwrap();
    assert_eq!(status, 200);
    // Answered once.
    let (status, _) = qr_app::answer(&s.base, &token, &ticket, true)
        .await
        .unwrap();
    assert_eq!(status, 404);
    // Another browser waiting on this ticket gets nothing (not its interaction, not its ticket).
    let other = Browser::new();
    let (other_interaction, _) = qr_tab(&s, &other).await;
    let stolen = wait(&s, &other, &other_interaction, &ticket).await;
    let stolen = stolen.text().await.unwrap();
    assert!(stolen.contains("二维码已过期"), "{stolen}");
    // The browser that showed it signs in.
    let signed = wait(&s, &browser, &interaction, &ticket).await;
    let code = redirect_params(&signed)["code"].clone();
    let tokens = crate::tax_exchange(&s, &code).await;
    let claims = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["amr"], json!(["qr"]));
    assert_eq!(claims["acr"], "urn:yihao:loa:2", "the app session's level");
    // Replayed: the ticket is spent.
    let browser2 = Browser::new();
    let (interaction2, ticket2) = qr_tab(&s, &browser2).await;
    let (status, _) = qr_app::answer(&s.base, &token, &ticket2, true)
        .await
        .unwrap();
    assert_eq!(status, 200);
    let first = wait(&s, &browser2, &interaction2, &ticket2).await;
    assert!(first.status().is_redirection());
    let again = browser2
        .page(&format!(
            "{}/login/qr/wait?interaction={interaction2}&ticket={ticket2}",
            s.base
        ))
        .await;
    assert!(!again.contains("code="), "a spent ticket signs nobody in");

    // Expired after two minutes; refused in the app.
    let browser3 = Browser::new();
    let (interaction3, ticket3) = qr_tab(&s, &browser3).await;
    clock.advance(121);
    let (status, _) = qr_app::view(&s.base, &token, &ticket3).await.unwrap();
    assert_eq!(status, 404);
    let late = wait(&s, &browser3, &interaction3, &ticket3)
        .await
        .text()
        .await
        .unwrap();
    assert!(late.contains("二维码已过期"));
    let fresh = ticket_of(&late);
    let (status, _) = qr_app::answer(&s.base, &token, &fresh, false)
        .await
        .unwrap();
    assert_eq!(status, 200);
    let refused = wait(&s, &browser3, &interaction3, &fresh)
        .await
        .text()
        .await
        .unwrap();
    assert!(refused.contains("已在 App 中拒绝登录"), "{refused}");
    // A web client's token cannot confirm.
    let code = crate::code_for(&s, &phone, "tax", "http://127.0.0.1:9/tax", &[]).await;
    let web_token = crate::tax_exchange(&s, &code).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = qr_app::view(&s.base, &web_token, &ticket_of(&refused))
        .await
        .unwrap();
    assert_eq!(status, 403);
    let records = app.store.audit_records(1, 10_000).await.unwrap();
    assert!(
        records
            .iter()
            .any(|r| r.event == "qr_login" && r.result == "success")
    );
}
