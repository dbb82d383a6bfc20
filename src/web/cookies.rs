//! Cookies: the SSO session (`yihao_session`, its secret) and the browser binding (`yihao_browser`,
//! which ties a form to the browser it was shown in). Over TLS they get `Secure` and the `__Host-`
//! prefix; on a plain-http (loopback) issuer neither, or browsers would drop them (docs/design.md).
//! All are `HttpOnly; SameSite=Lax; Path=/`.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::crypto::random_token;
use crate::protocol::session;

/// The SSO session cookie.
pub const SESSION: &str = "yihao_session";
/// The browser-binding cookie.
pub const BROWSER: &str = "yihao_browser";

fn secure(app: &App) -> bool {
    app.config.server.issuer.starts_with("https://")
}

fn cookie_name(app: &App, base: &str) -> String {
    if secure(app) {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

/// A `Set-Cookie` value; `max_age` 0 deletes it.
pub fn set_cookie(app: &App, base: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let mut c = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax",
        cookie_name(app, base)
    );
    if secure(app) {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The value of cookie `base` in the request.
pub fn cookie(app: &App, headers: &HeaderMap, base: &str) -> Option<String> {
    let name = cookie_name(app, base);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

/// The browser a form is bound to: the hash of its `yihao_browser` cookie, and the cookie to set
/// when the browser had none yet.
pub struct BrowserBinding {
    pub hash: String,
    set: Option<HeaderValue>,
}

impl BrowserBinding {
    pub fn of(app: &App, headers: &HeaderMap) -> Self {
        match cookie(app, headers, BROWSER).filter(|b| b.len() == 43) {
            Some(known) => Self {
                hash: session::sid_of(&known),
                set: None,
            },
            None => {
                let fresh = random_token();
                Self {
                    hash: session::sid_of(&fresh),
                    set: Some(set_cookie(app, BROWSER, &fresh, None)),
                }
            }
        }
    }

    pub fn apply(self, response: &mut Response) {
        if let Some(c) = self.set {
            response.headers_mut().append(header::SET_COOKIE, c);
        }
    }
}

/// The binding hash of the browser a request comes from (of its browser cookie; that of no cookie
/// when it has none).
pub fn browser_hash(app: &App, headers: &HeaderMap) -> String {
    session::sid_of(&cookie(app, headers, BROWSER).unwrap_or_default())
}

/// A posted form is genuine when it carries the expected CSRF token and comes from the browser the
/// page was made for (both compared in constant time).
pub fn genuine_form(
    app: &App,
    headers: &HeaderMap,
    csrf: &str,
    expected_csrf: &str,
    expected_browser: &str,
) -> bool {
    let browser = browser_hash(app, headers);
    let form_ok: bool = csrf.as_bytes().ct_eq(expected_csrf.as_bytes()).into();
    let browser_ok: bool = browser.as_bytes().ct_eq(expected_browser.as_bytes()).into();
    form_ok && browser_ok
}

/// The CSRF token of a form that belongs to no interaction (registration, recovery, the personal
/// page): HMAC-SHA256 of the browser's binding under the app's form key, so it is bound to the
/// browser and needs no storage.
pub fn form_token(app: &App, browser_hash: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(app.form_key.as_slice())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(browser_hash.as_bytes());
    crate::crypto::hex(&mac.finalize().into_bytes())
}

/// The browser's binding hash when the form's CSRF token is the one [`form_token`] made for it.
pub fn checked_browser(app: &App, headers: &HeaderMap, csrf: &str) -> Option<String> {
    let raw = cookie(app, headers, BROWSER).filter(|b| b.len() == 43)?;
    let hash = session::sid_of(&raw);
    let expected = form_token(app, &hash);
    bool::from(csrf.as_bytes().ct_eq(expected.as_bytes())).then_some(hash)
}
