//! The background work of a serving node, one task each, all started by [`spawn_background`]:
//! the key reloader, the client reloader, the logout deliverer, the session sweeper and the audit
//! checkpointer (the audit writer is started with the [`Auditor`](super::Auditor) itself). Each
//! reads the time from the app's clock and hands it to the rules as `now`.

use std::sync::Arc;
use std::time::Duration;

use super::App;
use crate::telemetry::ErrorChain;

/// Starts the background work of a serving node: the key reloader, the client reloader, the logout
/// deliverer, the session sweeper and the audit checkpointer. Returns their handles (tests stop a
/// "node" by aborting them).
pub fn spawn_background(app: Arc<App>) -> Vec<tokio::task::AbortHandle> {
    vec![
        spawn_key_reloader(app.clone()),
        spawn_client_reloader(app.clone()),
        spawn_logout_deliverer(app.clone()),
        spawn_session_sweeper(app.clone()),
        spawn_audit_checkpointer(app),
    ]
}

/// Every `audit.checkpoint_secs`, signs the audit chain's head when it moved since the last
/// checkpoint (any node's: two nodes signing the same head store one).
pub fn spawn_audit_checkpointer(app: Arc<App>) -> tokio::task::AbortHandle {
    tokio::spawn(async move {
        let alg = crate::crypto::signing::Alg::parse(&app.config.tokens.id_token_alg)
            .unwrap_or(crate::crypto::signing::Alg::RS256);
        let mut tick = tokio::time::interval(Duration::from_secs(app.config.audit.checkpoint_secs));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut signed = 0;
        loop {
            tick.tick().await;
            if let Err(e) = checkpoint_once(&app, alg, &mut signed).await {
                tracing::warn!(error = %ErrorChain(&e), "audit checkpoint not written; retrying");
            }
        }
    })
    .abort_handle()
}

/// Signs the head if it moved past `signed`.
async fn checkpoint_once(
    app: &App,
    alg: crate::crypto::signing::Alg,
    signed: &mut i64,
) -> Result<(), crate::protocol::audit::CheckpointError> {
    let ring = app.keys.ring();
    let issuer = &app.config.server.issuer;
    let store = app.store.as_ref();
    if let Some(seq) = crate::protocol::audit::checkpoint_head(
        store,
        &ring,
        alg,
        issuer,
        *signed,
        app.clock.now_ms(),
    )
    .await?
    {
        *signed = seq;
    }
    Ok(())
}

/// Every `session.sweep_ms`: drops sessions ended elsewhere from this node's live store and ends
/// expired ones (fanning out back-channel logout); hourly, prunes rows ended more than
/// `session.keep_ended_secs` ago and revocations of tokens that have expired.
pub fn spawn_session_sweeper(app: Arc<App>) -> tokio::task::AbortHandle {
    // Sessions ended by another node or the CLI within this margin are dropped again on each pass,
    // which absorbs clock differences between machines.
    const MARGIN_SECS: i64 = 30;
    const PRUNE_EVERY_SECS: i64 = 3600;
    tokio::spawn(async move {
        // Rows not seen for the shortest idle limit of any channel are looked at (a kiosk's session
        // goes idle in minutes); one whose live entry is still there is only marked seen.
        let policy = crate::protocol::session::SessionPolicy {
            idle_secs: app.config.session.shortest_idle_secs(),
            ..app.session_policy()
        };
        let mut tick = tokio::time::interval(Duration::from_millis(app.config.session.sweep_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut since = app.now() - MARGIN_SECS;
        let mut pruned_at = 0;
        loop {
            tick.tick().await;
            let now = app.now();
            match app.sessions().sweep(policy, since, now).await {
                Ok(0) => since = now - MARGIN_SECS,
                Ok(expired) => {
                    since = now - MARGIN_SECS;
                    tracing::info!(expired, "sessions expired");
                }
                Err(e) => tracing::warn!(error = %ErrorChain(&e), "session sweep failed; retrying"),
            }
            if now - pruned_at >= PRUNE_EVERY_SECS {
                pruned_at = now;
                let before = now.saturating_sub(app.config.session.keep_ended_secs as i64);
                if let Err(e) = app.store.prune_sessions(before).await {
                    tracing::warn!(error = %ErrorChain(&e), "cannot prune ended sessions");
                }
                // Revocations of access tokens past their expiry protect nothing any more.
                if let Err(e) = app.store.prune_revoked(now).await {
                    tracing::warn!(error = %ErrorChain(&e), "cannot prune revoked tokens");
                }
                // Accounts their owners closed, past the grace period: personal data erased.
                let days = i64::from(app.config.registration.closed_erase_after_days);
                let context = crate::protocol::audit::RequestContext::default();
                let audit = app.audit(&context);
                match crate::protocol::my_account::erase_closed(
                    app.store.as_ref(),
                    &audit,
                    now.saturating_sub(days * 86_400),
                )
                .await
                {
                    Ok(0) => {}
                    Ok(erased) => tracing::info!(erased, "closed accounts erased"),
                    Err(e) => {
                        tracing::warn!(error = %ErrorChain(&e), "cannot erase closed accounts")
                    }
                }
            }
        }
    })
    .abort_handle()
}

/// Delivers due back-channel logouts from the shared outbox, forever.
pub fn spawn_logout_deliverer(app: Arc<App>) -> tokio::task::AbortHandle {
    use crate::protocol::backchannel::{self, DeliveryError, Retry};
    tokio::spawn(async move {
        let cfg = app.config.logout.clone();
        let http = app.client_keys.client();
        let timeout = Duration::from_secs(cfg.timeout_secs);
        let retry = Retry {
            base_secs: cfg.retry_base_secs as i64,
            max_secs: cfg.retry_max_secs as i64,
            max_attempts: i64::from(cfg.max_attempts),
        };
        let default_alg = crate::crypto::signing::Alg::parse(&app.config.tokens.id_token_alg).unwrap_or(crate::crypto::signing::Alg::RS256);
        let mut tick = tokio::time::interval(Duration::from_millis(cfg.poll_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = app.now();
            let due = match app.store.claim_logouts(now, cfg.timeout_secs as i64 * 2 + 5, 20).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %ErrorChain(&e), "cannot read the logout outbox");
                    continue;
                }
            };
            for record in due {
                let client = match crate::domain::client::ClientId::parse(&record.client_id) {
                    Ok(id) => app.store.client(&id).await.ok().flatten(),
                    Err(_) => None,
                };
                let outcome = match &client {
                    None => Err(DeliveryError::ClientGone),
                    Some(client) => deliver(&http, timeout, &app, default_alg, client, &record, now).await,
                };
                let failed = outcome.is_err();
                let settled = backchannel::settle(record, outcome, retry, app.now());
                if failed {
                    tracing::info!(client = %settled.client_id, attempts = settled.attempts, status = %settled.status, error = ?settled.last_error, "back-channel logout not delivered yet");
                }
                if let Err(e) = app.store.settle_logout(&settled).await {
                    tracing::warn!(error = %ErrorChain(&e), "cannot record a logout delivery");
                }
            }
        }
    })
    .abort_handle()
}

/// One back-channel logout attempt (OIDC Back-Channel Logout 1.0 §2.5: the token POSTed as
/// `logout_token`; §2.8: "If the logout succeeded, the RP MUST respond with HTTP 200 OK").
async fn deliver(
    http: &reqwest::Client,
    timeout: Duration,
    app: &App,
    default_alg: crate::crypto::signing::Alg,
    client: &crate::domain::client::Client,
    record: &crate::store::OutboxRecord,
    now: i64,
) -> Result<(), crate::protocol::backchannel::DeliveryError> {
    use crate::protocol::backchannel::{DeliveryError, logout_token};
    app.client_keys
        .destinations
        .check_url(&record.uri)
        .map_err(|e| DeliveryError::Transport(Box::new(e)))?;
    if record.kind == "cas" {
        // CAS 3.0 §2.3.3: the LogoutRequest POSTed to the service as `logoutRequest`, "fire and
        // forget": any answer counts (mod_auth_cas answers 302); only an unreachable service is
        // tried again.
        // The ticket is kept sealed under the session it was issued in (`web::cas::issue_ticket`).
        let ticket = record
            .session_index
            .as_deref()
            .and_then(|sealed| {
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, sealed).ok()
            })
            .and_then(|sealed| {
                app.cas_sealer
                    .open(record.sid.as_deref().unwrap_or_default(), &sealed)
                    .ok()
            })
            .and_then(|plain| String::from_utf8(plain).ok())
            .ok_or_else(|| DeliveryError::Status("the ticket does not open".into()))?;
        let message = crate::protocol::cas::logout_request(&ticket, now);
        http.post(&record.uri)
            .timeout(timeout)
            .form(&[("logoutRequest", message.as_str())])
            .send()
            .await
            .map_err(|e| DeliveryError::Transport(Box::new(e.without_url())))?;
        return Ok(());
    }
    let token = logout_token(
        &app.config.server.issuer,
        &app.keys.ring(),
        default_alg,
        client,
        record,
        now,
    )?;
    let sent = http
        .post(&record.uri)
        .timeout(timeout)
        .form(&[("logout_token", token.as_str())])
        .send()
        .await
        .map_err(|e| DeliveryError::Transport(Box::new(e.without_url())))?;
    if sent.status().is_success() {
        Ok(())
    } else {
        Err(DeliveryError::Status(sent.status().to_string()))
    }
}

/// What a reloader wakes up for: its period, or a notice on its channel. A lost subscription (the
/// store shut down) leaves the timer alone, and is reported once as `Resync`.
struct Watch {
    subscription: Option<crate::store::Subscription>,
    tick: tokio::time::Interval,
}

impl Watch {
    async fn start(app: &App, channel: &str, what: &str, period: Duration) -> Self {
        let subscription = match app.ephemeral.subscribe(channel).await {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %ErrorChain(&e), "cannot subscribe to {what} changes; reloading on the timer only");
                None
            }
        };
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        Self { subscription, tick }
    }

    /// The next reason to look again: `None` for the timer, else the notice heard.
    async fn next(&mut self) -> Option<crate::store::Notice> {
        let heard = async {
            match self.subscription.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.tick.tick() => None,
            notice = heard => Some(notice.unwrap_or_else(|| {
                self.subscription = None;
                crate::store::Notice::Resync
            })),
        }
    }
}

/// Keeps the key ring fresh: reloads every `keys.reload_secs`, and at once when another node (or
/// the CLI) says the keys changed. Runs until the process ends.
pub fn spawn_key_reloader(app: Arc<App>) -> tokio::task::AbortHandle {
    tokio::spawn(async move {
        let period = Duration::from_secs(app.config.keys.reload_secs);
        let mut watch = Watch::start(&app, crate::protocol::keys::KEYS_CHANNEL, "key", period).await;
        loop {
            watch.next().await;
            if let Err(e) = app.keys.reload().await {
                tracing::warn!(error = %ErrorChain(&e), "could not reload signing keys; keeping the current ones");
            }
        }
    })
    .abort_handle()
}

/// Keeps the clients held in memory fresh: reloads them every `cache.clients_reload_ms`, drops one
/// at once when the clients channel names it, and reloads all after messages may have been missed.
pub fn spawn_client_reloader(app: Arc<App>) -> tokio::task::AbortHandle {
    use crate::store::client_cache::CLIENTS_CHANNEL;
    tokio::spawn(async move {
        let period = Duration::from_millis(app.config.cache.clients_reload_ms);
        let mut watch = Watch::start(&app, CLIENTS_CHANNEL, "client", period).await;
        loop {
            if let Some(crate::store::Notice::Message(id)) = watch.next().await {
                app.clients.forget(&String::from_utf8_lossy(&id));
            } else if let Err(e) = app.clients.reload().await {
                tracing::warn!(error = %ErrorChain(&e), "could not reload clients; keeping the ones held");
            }
        }
    })
    .abort_handle()
}
