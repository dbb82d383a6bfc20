//! The citizen's own flows under load: sign-in by SMS code (a new browser each time: authorize, the
//! SMS tab, a code to the phone, the code, then the token exchange) and self-service registration
//! (form, code, password and agreements, account created). The codes are read from the development
//! gateway's outbox file, as a person reads their phone.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use hyper::{Method, StatusCode, header};

use crate::http::{Conn, Error, Jar, local_target, query_param};
use crate::target::{CALLBACK, Target};

/// The value of the hidden field `name` on `page`.
fn hidden(page: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker)? + marker.len();
    Some(page[start..].split('"').next()?.to_owned())
}

/// The last code the development gateway "sent" to `phone` (read from the file's tail).
pub fn last_code(outbox: &Path, phone: &str) -> Result<String, Error> {
    let mut file = std::fs::File::open(outbox).map_err(|e| format!("{}: {e}", outbox.display()))?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let from = len.saturating_sub(64 * 1024);
    file.seek(SeekFrom::Start(from))
        .map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    // The tail may start inside a character of a Chinese message: only whole lines are read.
    let tail = String::from_utf8_lossy(&bytes);
    let needle = format!("\"phone\":\"{phone}\"");
    let line = tail
        .lines()
        .rev()
        .find(|l| l.contains(&needle))
        .ok_or_else(|| format!("no code for {phone} in the outbox"))?;
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    v["code"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "outbox line without a code".into())
}

async fn send(
    conn: &mut Conn,
    jar: &mut Jar,
    method: Method,
    path: &str,
    body: Option<&str>,
) -> Result<crate::http::Answer, Error> {
    let cookie = jar.header();
    let headers = [(header::COOKIE, cookie.as_str())];
    let answer = conn
        .send(
            method,
            path,
            if cookie.is_empty() { &[] } else { &headers },
            body,
        )
        .await?;
    jar.take(&answer);
    Ok(answer)
}

fn encode(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// One sign-in by SMS code as `phone`, from a new browser, to the code at the callback; the
/// requests it took.
pub async fn sms_login(
    target: &Target,
    conn: &mut Conn,
    outbox: &Path,
    phone: &str,
) -> Result<(String, u64), Error> {
    let mut jar = Jar::default();
    let login = send(conn, &mut jar, Method::GET, &target.authorize_url(), None).await?;
    let page = String::from_utf8_lossy(&login.body).into_owned();
    let (interaction, csrf) = hidden(&page, "interaction")
        .zip(hidden(&page, "csrf"))
        .ok_or_else(|| login.unexpected("login page"))?;
    let tab = send(
        conn,
        &mut jar,
        Method::GET,
        &format!("/login/sms?interaction={interaction}"),
        None,
    )
    .await?;
    if tab.status != StatusCode::OK {
        return Err(tab.unexpected("SMS tab"));
    }
    let fields = [
        ("interaction", interaction.as_str()),
        ("csrf", csrf.as_str()),
        ("phone", phone),
    ];
    let sent = send(
        conn,
        &mut jar,
        Method::POST,
        "/login/sms/send",
        Some(&encode(&fields)),
    )
    .await?;
    if sent.status != StatusCode::OK {
        return Err(sent.unexpected("send code"));
    }
    let code = last_code(outbox, phone)?;
    let fields = [
        ("interaction", interaction.as_str()),
        ("csrf", csrf.as_str()),
        ("phone", phone),
        ("code", code.as_str()),
    ];
    let mut answer = send(
        conn,
        &mut jar,
        Method::POST,
        "/login/sms",
        Some(&encode(&fields)),
    )
    .await?;
    let mut requests = 4;
    // The consent page the first time this person meets the client.
    if answer.status == StatusCode::OK {
        let page = String::from_utf8_lossy(&answer.body).into_owned();
        let (action, body) = crate::http::form(&page, "", "")
            .ok_or_else(|| answer.unexpected("page without a form"))?;
        let path = local_target(&target.base, &action).ok_or("form posts away")?;
        answer = send(conn, &mut jar, Method::POST, &path, Some(&body)).await?;
        requests += 1;
    }
    let location = answer
        .location()
        .ok_or_else(|| answer.unexpected("no redirect after the code"))?;
    if !location.starts_with(CALLBACK) {
        return Err(format!("redirected to {location}"));
    }
    let code = query_param(location, "code").ok_or("callback without a code")?;
    Ok((code, requests))
}

/// A valid, unused GB 11643 number for the `n`th benchmark person (address 110101, born
/// 1980-01-01 + n days within the year, sequence from n).
pub fn id_number(n: u64) -> String {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let day = 1 + (n % 28);
    let month = 1 + (n / 28) % 12;
    let seq = 100 + (n / 336) % 900;
    let first17 = format!(
        "110101{}{month:02}{day:02}{seq:03}",
        1980 + (n / 302_400) % 40
    );
    let sum: u32 = first17
        .bytes()
        .zip(W)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{first17}{check}")
}

/// One self-service registration: a passport holder (the register answers `unsupported`, so no
/// register lookup is part of the cost), a new mobile number, the code, a password, the agreements.
pub async fn register(
    conn: &mut Conn,
    outbox: &Path,
    password: &str,
    n: u64,
) -> Result<u64, Error> {
    let mut jar = Jar::default();
    let form = send(conn, &mut jar, Method::GET, "/register", None).await?;
    let page = String::from_utf8_lossy(&form.body).into_owned();
    let csrf = hidden(&page, "csrf").ok_or_else(|| form.unexpected("registration form"))?;
    let phone = format!("1{}", 3_000_000_000 + n);
    let passport = format!("EB{n:08}");
    let fields = [
        ("interaction", ""),
        ("csrf", csrf.as_str()),
        ("kind", "passport"),
        ("country", "FRA"),
        ("number", passport.as_str()),
        ("name", "Bench Person"),
        ("phone", phone.as_str()),
    ];
    let confirm = send(
        conn,
        &mut jar,
        Method::POST,
        "/register",
        Some(&encode(&fields)),
    )
    .await?;
    if confirm.status != StatusCode::OK {
        return Err(confirm.unexpected("registration start"));
    }
    let page = String::from_utf8_lossy(&confirm.body).into_owned();
    let draft = hidden(&page, "draft").ok_or_else(|| confirm.unexpected("no draft"))?;
    let code = last_code(outbox, &phone)?;
    let fields = [
        ("draft", draft.as_str()),
        ("csrf", csrf.as_str()),
        ("code", code.as_str()),
        ("password", password),
        ("password2", password),
        ("terms", "yes"),
        ("privacy", "yes"),
        ("sensitive", "yes"),
    ];
    let done = send(
        conn,
        &mut jar,
        Method::POST,
        "/register/complete",
        Some(&encode(&fields)),
    )
    .await?;
    if done.status != StatusCode::OK || !String::from_utf8_lossy(&done.body).contains("注册成功")
    {
        return Err(done.unexpected("registration"));
    }
    Ok(3)
}
