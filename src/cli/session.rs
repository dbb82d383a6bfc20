//! `yihao session ...`: single sign-on sessions, from their durable rows. Ending one marks it ended
//! (once, however many nodes or administrators try), queues back-channel logout for every service
//! that received tokens in it, and removes the live session: at once with Redis, and within
//! `session.sweep_ms` on a node with the in-process store.

use anyhow::bail;
use clap::Subcommand;
use serde_json::{Value, json};

use super::{Admin, Output, audit_admin, now};
use crate::protocol::audit::EventType;
use crate::protocol::session::EndReason;
use crate::store::SessionRecord;

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// List a person's sessions, newest first: channel, services, address, times.
    List {
        /// Account id, ID number or mainland mobile number.
        #[arg(long)]
        account: String,
        /// Include ended sessions (kept for session.keep_ended_secs).
        #[arg(long)]
        all: bool,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// End sessions: one by its id, or every open session of an account. Every service that received
    /// tokens in them gets a back-channel logout.
    Revoke {
        /// The session id (`sid`, as listed and as in ID tokens; base64url, so it may begin with `-`).
        #[arg(
            conflicts_with = "account",
            required_unless_present = "account",
            allow_hyphen_values = true
        )]
        sid: Option<String>,
        /// End every open session of this account (id, ID number or mobile number).
        #[arg(long)]
        account: Option<String>,
        /// Also revoke the account's refresh tokens (apps stay signed in through them otherwise).
        #[arg(long, requires = "account")]
        refresh_tokens: bool,
    },
}

pub(super) async fn run(admin: &Admin, command: SessionCommand) -> anyhow::Result<()> {
    let now = now();
    let sessions = admin.sessions();
    match command {
        SessionCommand::List {
            account,
            all,
            output,
        } => {
            let account = super::account::resolve(admin, &account, now).await?;
            let rows = admin.store.sessions_of(account.id.as_str(), all).await?;
            match output {
                Output::Json => {
                    let list: Vec<Value> = rows.iter().map(|r| session_json(r, now)).collect();
                    println!("{}", Value::Array(list));
                }
                Output::Text => {
                    if rows.is_empty() {
                        eprintln!("no sessions for account {}", account.id);
                    }
                    for r in &rows {
                        println!(
                            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                            r.sid,
                            state(r, now),
                            r.channel,
                            r.clients.join(","),
                            r.ip.as_deref().unwrap_or("-"),
                            time(r.created_at),
                            time(r.last_seen_at),
                        );
                    }
                }
            }
            Ok(())
        }
        SessionCommand::Revoke {
            sid: Some(sid),
            account: None,
            ..
        } => {
            if admin.store.session(&sid).await?.is_none() {
                bail!("session {sid} not found");
            }
            audit_admin(admin, EventType::AdminSession, &sid, "revoke").await?;
            if sessions.end(&sid, EndReason::Admin, now).await? {
                eprintln!("ended session {sid}");
            } else {
                eprintln!("session {sid} had already ended");
            }
            Ok(())
        }
        SessionCommand::Revoke {
            account: Some(account),
            refresh_tokens,
            ..
        } => {
            let account = super::account::resolve(admin, &account, now).await?;
            let change = if refresh_tokens {
                "revoke_all_and_refresh_tokens"
            } else {
                "revoke_all"
            };
            audit_admin(admin, EventType::AdminSession, account.id.as_str(), change).await?;
            let ended = sessions
                .end_all(account.id.as_str(), EndReason::Admin, now)
                .await?;
            eprintln!("ended {ended} session(s) of account {}", account.id);
            if refresh_tokens {
                let revoked = admin
                    .store
                    .revoke_account_refresh(account.id.as_str(), now)
                    .await?;
                eprintln!("revoked {revoked} refresh token(s)");
            }
            Ok(())
        }
        SessionCommand::Revoke { .. } => bail!("name a session id or --account"),
    }
}

/// `active`, `ended (reason)`, or `expired` for an open row past its absolute limit.
fn state(r: &SessionRecord, now: i64) -> String {
    match (&r.end_reason, r.ended_at) {
        (Some(reason), Some(_)) => format!("ended:{reason}"),
        _ if now >= r.expires_at => "expired".into(),
        _ => "active".into(),
    }
}

/// RFC 3339 in UTC.
fn time(epoch: i64) -> String {
    crate::domain::date::rfc3339(epoch)
}

fn session_json(r: &SessionRecord, now: i64) -> Value {
    json!({
        "sid": r.sid,
        "account_id": r.account_id,
        "state": state(r, now),
        "channel": r.channel,
        "signed_in_at_client": r.client_id,
        "clients": r.clients,
        "ip": r.ip,
        "user_agent": r.user_agent,
        "acr_level": r.level,
        "amr": r.amr.split_whitespace().collect::<Vec<_>>(),
        "created_at": time(r.created_at),
        "last_seen_at": time(r.last_seen_at),
        "expires_at": time(r.expires_at),
        "ended_at": r.ended_at.map(time),
        "end_reason": r.end_reason,
    })
}
