//! Sessions on a shared device (`session.kiosk`): every person signs in, never silently into the
//! session the previous person left; the session has the kiosk's short limits; the kiosk's sign-out
//! ends it.

use yihao::domain::client::{AuthMethod, Channel};

use crate::common::people::Person;
use crate::{
    Browser, ID_NUMBER, PASSWORD, SECRET, authorize_url, client_spec, code_exchange, jwt_part,
    redirect_params, register, setup,
};

#[tokio::test]
async fn the_next_person_at_a_kiosk_is_never_signed_in_as_the_previous_one() {
    let s = setup(|_| {}).await;
    let app = &s._server.test_app.app;
    let mut kiosk = client_spec(
        "kiosk-web",
        "http://127.0.0.1:9/k",
        AuthMethod::ClientSecretBasic,
        true,
    );
    kiosk.settings.channel = Channel::Kiosk;
    register(app, kiosk, SECRET).await;
    app.clients.reload().await.unwrap();
    const OTHER: &str = "110101199003070011";
    Person::new(OTHER, "测试李四")
        .create(app, Some(PASSWORD))
        .await;
    let url = authorize_url(
        &s.base,
        "kiosk-web",
        "http://127.0.0.1:9/k",
        &[("nonce", "n")],
    );
    let browser = Browser::new();
    let sign_in = |id: &'static str| {
        let (browser, url, base) = (&browser, url.clone(), s.base.clone());
        async move {
            let page = browser.page(&url).await;
            assert!(
                page.contains("action=\"/login\""),
                "a kiosk always asks who is there"
            );
            let done = browser.login(&base, &page, id, PASSWORD).await;
            redirect_params(&done)["code"].clone()
        }
    };
    let first = sign_in(ID_NUMBER).await;
    let (_, first) = code_exchange(&s, "kiosk-web", "http://127.0.0.1:9/k", &first).await;
    let first_sub = jwt_part(first["id_token"].as_str().unwrap(), 1)["sub"].clone();
    // The next person walks up to the same kiosk: a login page, not the first person's session.
    let second = sign_in(OTHER).await;
    let (_, second) = code_exchange(&s, "kiosk-web", "http://127.0.0.1:9/k", &second).await;
    let second_claims = jwt_part(second["id_token"].as_str().unwrap(), 1);
    assert_ne!(second_claims["sub"], first_sub);
    // prompt=none at a kiosk cannot sign anyone in silently.
    let silent = browser
        .get(&authorize_url(
            &s.base,
            "kiosk-web",
            "http://127.0.0.1:9/k",
            &[("prompt", "none")],
        ))
        .await;
    assert_eq!(redirect_params(&silent)["error"], "login_required");

    // The first person's session ended when the second signed in; the second has the kiosk's limits.
    let a = app.identities.find(ID_NUMBER, 1).await.unwrap().unwrap();
    assert!(
        app.store
            .sessions_of(a.id.as_str(), false)
            .await
            .unwrap()
            .is_empty()
    );
    let b = app
        .identities
        .find(OTHER, yihao::clock::system_ms() / 1000)
        .await
        .unwrap()
        .unwrap();
    let open = app.store.sessions_of(b.id.as_str(), false).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(
        open[0].expires_at - open[0].created_at,
        900,
        "session.kiosk.absolute_secs"
    );
    assert_eq!(open[0].channel, "kiosk");

    // The kiosk's sign-out (RP-initiated logout with its ID token) ends the session at once.
    let logout = browser
        .get(&format!(
            "{}/logout?id_token_hint={}",
            s.base,
            second["id_token"].as_str().unwrap()
        ))
        .await;
    assert!(logout.status().is_success() || logout.status().is_redirection());
    assert!(
        app.store
            .sessions_of(b.id.as_str(), false)
            .await
            .unwrap()
            .is_empty()
    );
    // A web client in the same browser finds nobody signed in.
    let web = browser
        .page(&authorize_url(
            &s.base,
            "tax",
            "http://127.0.0.1:9/tax",
            &[],
        ))
        .await;
    assert!(web.contains("action=\"/login\""));
}
