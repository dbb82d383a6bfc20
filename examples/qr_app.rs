//! The mobile app's side of scan-to-sign-in (扫码登录), as a reference for the teams building the
//! app: after scanning a sign-in QR code (it holds `{issuer}/qr?ticket=...`), the app shows the
//! person what is asking and sends their decision, with the access token of its own signed-in
//! session (a client registered on the `app` channel). The tests use these functions.
//!
//! ```sh
//! cargo run --example qr_app -- https://id.example.gov.cn ACCESS_TOKEN TICKET confirm
//! ```

use serde_json::{Value, json};

/// `GET /api/v1/qr/{ticket}`: the service asking, its channel, the browser's address, the time and
/// the seconds left. The app shows them before the person decides.
pub async fn view(base: &str, access_token: &str, ticket: &str) -> Result<(u16, Value), String> {
    let r = reqwest::Client::new()
        .get(format!("{base}/api/v1/qr/{ticket}"))
        .bearer_auth(access_token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

/// `POST /api/v1/qr/{ticket}`: the person's decision (`true`: confirm, `false`: refuse).
pub async fn answer(
    base: &str,
    access_token: &str,
    ticket: &str,
    confirm: bool,
) -> Result<(u16, Value), String> {
    let decision = if confirm { "confirm" } else { "refuse" };
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/qr/{ticket}"))
        .bearer_auth(access_token)
        .json(&json!({ "decision": decision }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, token, ticket, decision] = args.as_slice() else {
        return Err("usage: qr_app BASE ACCESS_TOKEN TICKET confirm|refuse".into());
    };
    let (status, asking) = view(base, token, ticket).await?;
    println!("{status} {asking}");
    if status != 200 {
        return Err("the code is not waiting".into());
    }
    let (status, answered) = answer(base, token, ticket, decision == "confirm").await?;
    println!("{status} {answered}");
    Ok(())
}
