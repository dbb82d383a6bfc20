//! Scan to sign in (扫码登录, docs/assurance.md): the login page of a browser shows a QR code
//! holding a ticket; the person's mobile app, signed in, scans it, sees what is asking (the service,
//! its channel, the browser's address, the time) and confirms or refuses; the waiting browser then
//! signs in at the app session's level (`amr` `qr`).
//!
//! A ticket is random (256 bits), lives [`TICKET_SECS`], is answered once and redeemed once, and
//! only by the browser that showed it: a photographed code confirmed for another browser signs
//! nobody in. It lives in the ephemeral store only, under a hash of the ticket.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::crypto::random_token;
use crate::store::{Ephemeral, StoreError};

/// How long a ticket waits for the app: about two minutes.
pub const TICKET_SECS: u64 = 120;

/// Where a ticket stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TicketState {
    Waiting,
    /// Confirmed in the app by this account, whose app session is at this level.
    Confirmed {
        account_id: String,
        level: u8,
    },
    Refused,
}

/// A ticket as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// The pending authorization request of the browser's login page.
    pub interaction: String,
    /// The binding hash of the browser that showed the code.
    pub browser: String,
    /// The service asking, for the app to show.
    pub client_id: String,
    /// The browser's address, for the app to show.
    pub ip: Option<String>,
    pub created_at: i64,
    pub state: TicketState,
}

/// What redeeming a ticket found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// Not answered yet: keep waiting.
    Waiting,
    /// Confirmed: sign in this account at this level (the ticket is spent).
    SignIn { account_id: String, level: u8 },
    /// Refused in the app.
    Refused,
    /// Expired, spent, or not this browser's.
    Gone,
}

fn key(ticket: &str) -> String {
    format!(
        "qr:{}",
        URL_SAFE_NO_PAD.encode(Sha256::digest(ticket.as_bytes()))
    )
}

fn ttl() -> Duration {
    Duration::from_secs(TICKET_SECS)
}

fn encode(t: &Ticket) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(t).map_err(|e| StoreError::backend("qr ticket", e))
}

async fn load(ephemeral: &dyn Ephemeral, ticket: &str) -> Result<Option<Ticket>, StoreError> {
    if ticket.len() > 128 {
        return Ok(None);
    }
    Ok(ephemeral
        .get(&key(ticket))
        .await?
        .and_then(|raw| serde_json::from_slice(&raw).ok()))
}

/// A new ticket for the login page of `interaction`, shown in the browser `browser`.
pub async fn open(
    ephemeral: &dyn Ephemeral,
    interaction: &str,
    browser: &str,
    client_id: &str,
    ip: Option<String>,
    now: i64,
) -> Result<String, StoreError> {
    let ticket = random_token();
    let stored = Ticket {
        interaction: interaction.to_owned(),
        browser: browser.to_owned(),
        client_id: client_id.to_owned(),
        ip,
        created_at: now,
        state: TicketState::Waiting,
    };
    ephemeral
        .put(&key(&ticket), &encode(&stored)?, ttl())
        .await?;
    Ok(ticket)
}

/// The ticket the app scanned, while it waits for an answer.
pub async fn waiting(
    ephemeral: &dyn Ephemeral,
    ticket: &str,
    now: i64,
) -> Result<Option<Ticket>, StoreError> {
    Ok(load(ephemeral, ticket)
        .await?
        .filter(|t| t.state == TicketState::Waiting && now < t.created_at + TICKET_SECS as i64))
}

/// The app's answer: confirmed by `account_id` at `level`, or refused. `false` when the ticket is
/// not waiting (expired, answered already).
pub async fn answer(
    ephemeral: &dyn Ephemeral,
    ticket: &str,
    confirmed: Option<(&str, u8)>,
    now: i64,
) -> Result<bool, StoreError> {
    let Some(mut stored) = waiting(ephemeral, ticket, now).await? else {
        return Ok(false);
    };
    stored.state = match confirmed {
        Some((account_id, level)) => TicketState::Confirmed {
            account_id: account_id.to_owned(),
            level,
        },
        None => TicketState::Refused,
    };
    // What is left of its two minutes.
    let left = u64::try_from(stored.created_at + TICKET_SECS as i64 - now).unwrap_or(0);
    if left == 0 {
        return Ok(false);
    }
    ephemeral
        .put(&key(ticket), &encode(&stored)?, Duration::from_secs(left))
        .await?;
    Ok(true)
}

/// The waiting browser asks: only the browser that showed the ticket gets an answer; a confirmed
/// ticket is taken (atomically: once).
pub async fn redeem(
    ephemeral: &dyn Ephemeral,
    ticket: &str,
    browser: &str,
    now: i64,
) -> Result<Redeemed, StoreError> {
    let Some(stored) = load(ephemeral, ticket).await? else {
        return Ok(Redeemed::Gone);
    };
    let same_browser: bool = stored.browser.as_bytes().ct_eq(browser.as_bytes()).into();
    if !same_browser || now >= stored.created_at + TICKET_SECS as i64 {
        return Ok(Redeemed::Gone);
    }
    match stored.state {
        TicketState::Waiting => Ok(Redeemed::Waiting),
        TicketState::Refused => Ok(Redeemed::Refused),
        TicketState::Confirmed { .. } => {
            let Some(raw) = ephemeral.take(&key(ticket)).await? else {
                return Ok(Redeemed::Gone);
            };
            match serde_json::from_slice::<Ticket>(&raw).map(|t| t.state) {
                Ok(TicketState::Confirmed { account_id, level }) => {
                    Ok(Redeemed::SignIn { account_id, level })
                }
                _ => Ok(Redeemed::Gone),
            }
        }
    }
}
