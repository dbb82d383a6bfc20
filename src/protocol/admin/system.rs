//! Signing keys (the system administrator), the audit log (the audit administrator: search, export,
//! verify; nothing else) and the effective settings (read-only, secrets redacted).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AdminError, Administration, Page};
use crate::crypto::signing::{Alg, KeyRing, SigningKey};
use crate::domain::admin::Action;
use crate::domain::audit::{AuditRecord, EventType};
use crate::protocol::keys::KEYS_CHANNEL;
use crate::store::AuditFilter;

/// A signing key and where it is in its life.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyView {
    pub kid: String,
    pub alg: String,
    /// `signing`, `published` (not yet or no longer signing) or `retired`.
    pub state: String,
    pub created_at: i64,
    pub not_before: i64,
    pub retired_at: Option<i64>,
    /// The public key (RFC 7517).
    #[schema(value_type = Object)]
    pub jwk: serde_json::Value,
}

impl KeyView {
    pub fn of(k: &SigningKey, now: i64) -> Self {
        let state = match (k.signs_at(now), k.retired_at) {
            (true, _) => "signing",
            (false, Some(r)) if r <= now => "retired",
            _ => "published",
        };
        Self {
            kid: k.kid.clone(),
            alg: k.alg.as_str().to_owned(),
            state: state.to_owned(),
            created_at: k.created_at,
            not_before: k.not_before,
            retired_at: k.retired_at,
            jwk: k.jwk().clone(),
        }
    }
}

/// An audit search: every field given narrows it; newest first.
#[derive(Debug, Clone, Default, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// From this time on (epoch seconds).
    pub since: Option<i64>,
    /// Before this time (epoch seconds).
    pub until: Option<i64>,
    /// An event type (`login_success`, `admin_client`, ...).
    pub event: Option<String>,
    /// The actor (an account id, `client:<id>`, `admin`, `system`).
    pub actor: Option<String>,
    /// The target (an account id, a client id, a key id).
    pub target: Option<String>,
    /// The cursor: records before this sequence number (`next` of the previous page).
    pub before: Option<i64>,
    /// 1 to 200 (default 50).
    pub limit: Option<u32>,
}

/// A record of the audit chain.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditView {
    pub seq: i64,
    pub at_ms: i64,
    pub node: String,
    pub event: String,
    /// `success` or `failure`.
    pub result: String,
    pub actor: Option<String>,
    pub target: Option<String>,
    pub client_id: Option<String>,
    pub channel: Option<String>,
    pub ip: Option<String>,
    pub acr: Option<String>,
    pub request_id: Option<String>,
    pub reason: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
    /// Hex SHA-256 of the previous record and this one (the chain).
    pub prev_hash: String,
    pub hash: String,
}

impl From<AuditRecord> for AuditView {
    fn from(r: AuditRecord) -> Self {
        let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
        Self {
            seq: r.seq,
            at_ms: r.at_ms,
            node: r.node,
            event: r.event,
            result: r.result,
            actor: r.actor,
            target: r.target,
            client_id: r.client_id,
            channel: r.channel,
            ip: r.ip,
            acr: r.acr,
            request_id: r.request_id,
            reason: r.reason,
            details: r
                .details
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok()),
            prev_hash: hex(&r.prev_hash),
            hash: hex(&r.hash),
        }
    }
}

/// A count of one kind of thing.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Count {
    /// The channel (`web`, `app`, `kiosk`, `window`, `system`) or the client id.
    pub key: String,
    pub count: i64,
}

/// Sign-ins of one day (China Standard Time) on one channel.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DayCount {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub channel: String,
    pub count: i64,
}

/// The reports: what the platform is used for, without anyone's personal data.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportView {
    /// The first day counted (epoch seconds, midnight China Standard Time).
    pub since: i64,
    /// New single sign-on sessions per day and channel.
    pub sign_ins: Vec<DayCount>,
    /// Open sessions now, per channel.
    pub active_sessions: Vec<Count>,
    /// Access tokens issued per client since `since`.
    pub tokens_issued: Vec<Count>,
}

/// One client's use.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClientStats {
    pub client_id: String,
    /// The first day counted (epoch seconds, midnight China Standard Time).
    pub since: i64,
    pub tokens_issued: i64,
    /// Successful sign-ins at the client (password, SMS, passkey and other logins).
    pub sign_ins: i64,
    /// Refused client authentications (a wrong secret or assertion).
    pub client_auth_failures: i64,
}

/// Days a report covers: 1 to 30 (sessions are kept `session.keep_ended_secs`, 30 days by default).
pub const MAX_REPORT_DAYS: u32 = 30;

/// Midnight (China Standard Time) `days - 1` days before `now`: the start of a report of `days`.
fn report_start(days: Option<u32>, now: i64) -> Result<i64, AdminError> {
    let days = days.unwrap_or(7);
    if !(1..=MAX_REPORT_DAYS).contains(&days) {
        return Err(AdminError::invalid("days", "1 to 30"));
    }
    let today = crate::domain::date::Date::cst_from_epoch(now).cst_midnight_epoch();
    Ok(today - i64::from(days - 1) * 86_400)
}

/// What verifying the chain found.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VerifyView {
    /// True when every record links and every checkpoint's signature holds.
    pub intact: bool,
    pub first: Option<i64>,
    pub last: Option<i64>,
    pub checkpoints: usize,
    /// What broke, naming the first bad record.
    pub problem: Option<String>,
}

impl Administration<'_> {
    pub async fn list_keys(&self, ring: &KeyRing, now: i64) -> Result<Vec<KeyView>, AdminError> {
        self.allow(Action::KeysRead, None).await?;
        self.read(Action::KeysRead, None, serde_json::json!({}))
            .await?;
        Ok(ring.keys().iter().map(|k| KeyView::of(k, now)).collect())
    }

    /// A new key for `alg`: published now, signing after `keys.publish_before_use_secs`.
    pub async fn rotate_key(&self, alg: &str, now: i64) -> Result<KeyView, AdminError> {
        self.allow(Action::KeysWrite, None).await?;
        let alg = Alg::parse(alg).map_err(|e| AdminError::invalid("alg", e.to_string()))?;
        let record = self.keys.rotate(alg, now).await?;
        self.keys_changed(&record.kid, "rotate").await?;
        let ring = self.keys.ring();
        ring.by_kid(&record.kid)
            .map(|k| KeyView::of(k, now))
            .ok_or_else(|| AdminError::NotFound(format!("signing key {}", record.kid)))
    }

    /// Stops a key signing now (`retire`), or withdraws it at once (`revoke`: no longer published,
    /// verifies nothing). Refused for the last key of its algorithm.
    pub async fn end_key(&self, kid: &str, revoke: bool, now: i64) -> Result<(), AdminError> {
        self.allow(Action::KeysWrite, Some(kid)).await?;
        let done = if revoke {
            self.keys.revoke(kid, now).await
        } else {
            self.keys.retire(kid, now).await
        }
        .map_err(|e| match e {
            crate::store::StoreError::Backend { context, .. } => AdminError::Conflict(context),
            e => e.into(),
        })?;
        if !done {
            return Err(AdminError::NotFound(format!("signing key {kid}")));
        }
        self.keys_changed(kid, if revoke { "revoke" } else { "retire" })
            .await
    }

    async fn keys_changed(&self, kid: &str, change: &str) -> Result<(), AdminError> {
        self.record(
            EventType::AdminKeys,
            Some(kid),
            serde_json::json!({ "change": change }),
        )
        .await?;
        // Nodes also reload on a timer (`keys.reload_secs`).
        if let Err(e) = self.ephemeral.publish(KEYS_CHANNEL, b"changed").await {
            tracing::warn!(error = %crate::telemetry::ErrorChain(&e), "key change not announced");
        }
        Ok(())
    }

    /// Audit records matching `query`, newest first.
    pub async fn search_audit(
        &self,
        query: &AuditQuery,
        now: i64,
    ) -> Result<Page<AuditView>, AdminError> {
        self.allow(Action::AuditRead, None).await?;
        let filter = audit_filter(query, now)?;
        let limit = super::page_size(query.limit);
        let before = query.before.unwrap_or(i64::MAX);
        let rows = self
            .audit_log
            .search_audit(&filter, before, limit as i64 + 1)
            .await?;
        // The read is recorded after the search, so the search does not find itself.
        self.read(
            Action::AuditRead,
            None,
            serde_json::json!({
                "event": query.event, "actor": query.actor, "target": query.target,
                "since": query.since, "until": query.until, "found": rows.len().min(limit),
            }),
        )
        .await?;
        let more = rows.len() > limit;
        let items: Vec<AuditView> = rows.into_iter().take(limit).map(AuditView::from).collect();
        let next = more
            .then(|| items.last().map(|r| r.seq.to_string()))
            .flatten();
        Ok(Page { items, next })
    }

    /// Records from `since` (epoch seconds) on, oldest first, after the sequence number `after`: an
    /// export is read page by page (at most 1000 records each).
    pub async fn export_audit(
        &self,
        since: i64,
        after: i64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, AdminError> {
        self.allow(Action::AuditExport, None).await?;
        let limit = limit.clamp(1, 1000);
        let rows = self
            .audit_log
            .audit_records_since(since.saturating_mul(1000), after, limit as i64)
            .await?;
        self.read(
            Action::AuditExport,
            None,
            serde_json::json!({ "since": since, "after": after, "records": rows.len() }),
        )
        .await?;
        Ok(rows)
    }

    /// Walks the hash chain from record `from` and checks every signed checkpoint.
    pub async fn verify_audit(&self, ring: &KeyRing, from: i64) -> Result<VerifyView, AdminError> {
        self.allow(Action::AuditVerify, None).await?;
        let view = match crate::protocol::audit::verify(self.audit_log, ring, from.max(1)).await {
            Ok(v) => VerifyView {
                intact: true,
                first: Some(v.first),
                last: Some(v.last),
                checkpoints: v.checkpoints,
                problem: None,
            },
            Err(crate::protocol::audit::VerifyError::Broken(e)) => VerifyView {
                intact: false,
                first: None,
                last: None,
                checkpoints: 0,
                problem: Some(e.to_string()),
            },
            Err(crate::protocol::audit::VerifyError::Store(e)) => return Err(e.into()),
        };
        self.read(
            Action::AuditVerify,
            None,
            serde_json::json!({ "from": from, "intact": view.intact, "last": view.last }),
        )
        .await?;
        Ok(view)
    }

    /// Sign-ins per day and channel, open sessions per channel, and tokens issued per client, over
    /// the last `days` (1 to 30, default 7) days.
    pub async fn report(&self, days: Option<u32>, now: i64) -> Result<ReportView, AdminError> {
        self.allow(Action::Reports, None).await?;
        let since = report_start(days, now)?;
        let sign_ins = self
            .sessions
            .rows
            .sign_ins_by_day(since)
            .await?
            .into_iter()
            .map(|(day, channel, count)| {
                let d = crate::domain::date::Date::cst_from_epoch(day * 86_400);
                DayCount {
                    day: format!("{:04}-{:02}-{:02}", d.year, d.month, d.day),
                    channel,
                    count,
                }
            })
            .collect();
        let counts = |rows: Vec<(String, i64)>| {
            rows.into_iter()
                .map(|(key, count)| Count { key, count })
                .collect::<Vec<_>>()
        };
        let active_sessions = counts(self.sessions.rows.open_sessions_by_channel(now).await?);
        let tokens_issued = counts(
            self.audit_log
                .count_by_client(EventType::TokenIssued.as_str(), since.saturating_mul(1000))
                .await?,
        );
        self.read(Action::Reports, None, serde_json::json!({ "since": since }))
            .await?;
        Ok(ReportView {
            since,
            sign_ins,
            active_sessions,
            tokens_issued,
        })
    }

    /// One client's tokens issued, sign-ins and refused authentications over the last `days`.
    pub async fn client_stats(
        &self,
        id: &str,
        days: Option<u32>,
        now: i64,
    ) -> Result<ClientStats, AdminError> {
        self.allow(Action::ClientsRead, Some(id)).await?;
        let since = report_start(days, now)?;
        let client = self.find_client(id).await?;
        let since_ms = since.saturating_mul(1000);
        let mut stats = ClientStats {
            client_id: client.id().as_str().to_owned(),
            since,
            tokens_issued: 0,
            sign_ins: 0,
            client_auth_failures: 0,
        };
        for (event, slot) in [
            (EventType::TokenIssued, &mut stats.tokens_issued),
            (EventType::LoginSuccess, &mut stats.sign_ins),
            (
                EventType::ClientAuthFailure,
                &mut stats.client_auth_failures,
            ),
        ] {
            *slot = self
                .audit_log
                .count_by_client(event.as_str(), since_ms)
                .await?
                .into_iter()
                .find(|(c, _)| c == client.id().as_str())
                .map_or(0, |(_, n)| n);
        }
        self.read(
            Action::ClientsRead,
            Some(id),
            serde_json::json!({ "stats": since }),
        )
        .await?;
        Ok(stats)
    }

    /// The effective settings (`settings`: the configuration with every secret redacted).
    pub async fn show_settings(
        &self,
        settings: serde_json::Value,
    ) -> Result<serde_json::Value, AdminError> {
        self.allow(Action::ConfigRead, None).await?;
        self.read(Action::ConfigRead, None, serde_json::json!({}))
            .await?;
        Ok(settings)
    }
}

fn audit_filter(q: &AuditQuery, now: i64) -> Result<AuditFilter, AdminError> {
    let since = q.since.unwrap_or(0);
    let until = q.until.unwrap_or(now + 1);
    if since < 0 || until <= since {
        return Err(AdminError::invalid(
            "until",
            "must be after since (epoch seconds)",
        ));
    }
    let text = |name: &str, v: &Option<String>| match v.as_deref().map(str::trim) {
        Some("") | None => Ok(None),
        Some(s) if s.len() <= 128 => Ok(Some(s.to_owned())),
        Some(_) => Err(AdminError::invalid(name, "at most 128 characters")),
    };
    if q.before.is_some_and(|b| b < 1) {
        return Err(AdminError::invalid(
            "before",
            "a sequence number, 1 or more",
        ));
    }
    Ok(AuditFilter {
        since_ms: since.saturating_mul(1000),
        until_ms: until.saturating_mul(1000),
        event: text("event", &q.event)?,
        actor: text("actor", &q.actor)?,
        target: text("target", &q.target)?,
        ..AuditFilter::default()
    })
}
