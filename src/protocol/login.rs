//! Password login as one operation: rate limits, the password check with lockout, the level the
//! login reaches, the new session (live and durable) replacing the browser's previous one, and the
//! audit records of every outcome. The login page's handler extracts the form, calls
//! [`PasswordLogin::login`] and renders what it returns.

use serde_json::json;

use super::OAuthError;
use super::accounts::{Identities, LoginError};
use super::audit::{Audit, AuditEvent, EventType};
use super::limits::{self, Verdict};
use super::session::{self, EndReason, Session, SessionPolicy, Sessions};
use crate::config::LimitsConfig;
use crate::domain::account::Account;
use crate::domain::client::Client;
use crate::domain::password::Password;
use crate::store::{Ephemeral, SessionRecord};

/// The highest level a password login establishes (docs/assurance.md): a password alone is one
/// factor, so a session signed in with it is at most level 2 whatever the account's proofing.
pub const PASSWORD_CEILING: u8 = 2;

/// A login attempt as the form posted it.
pub struct Attempt<'a> {
    /// The client whose authorization request the login serves.
    pub client: &'a Client,
    /// An ID number or a mobile number, as typed.
    pub identifier: &'a str,
    pub password: &'a Password,
    /// The browser's current session cookie secret: a successful login ends that session.
    pub previous: Option<&'a str>,
}

/// A successful login: the cookie secret to set and the session it opened.
#[derive(Debug)]
pub struct SignedIn {
    pub secret: String,
    pub sid: String,
    pub session: Session,
}

/// Why a login did not sign the person in. Each is shown on the login page in the person's
/// language; none says whether the identifier exists.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("too many login attempts; retry after {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error(transparent)]
    Credentials(LoginError),
    #[error(transparent)]
    Server(#[from] OAuthError),
}

/// The ports and settings of a password login.
pub struct PasswordLogin<'a> {
    pub identities: &'a Identities,
    pub ephemeral: &'a dyn Ephemeral,
    pub sessions: Sessions<'a>,
    /// With the request's context (address, user agent, request id).
    pub audit: Audit<'a>,
    pub limits: &'a LimitsConfig,
    pub policy: SessionPolicy,
    pub absolute_secs: i64,
    /// The session policy of each channel (`[session]`).
    pub channels: &'a crate::config::SessionConfig,
}

impl PasswordLogin<'_> {
    /// Rate limits first (per source address, per identifier as a keyed hash, and over all logins),
    /// before any password work; then the password with lockout; then the session. The level of the
    /// login is min(the account's proofing level, [`PASSWORD_CEILING`]) (docs/assurance.md). A new
    /// cookie secret at every login: a session id planted before login is worth nothing after it.
    pub async fn login(&self, attempt: &Attempt<'_>, now: i64) -> Result<SignedIn, Refused> {
        self.within_limits(attempt, now).await?;
        let source = self.audit.context.source();
        let account = match self
            .identities
            .login_from(attempt.identifier, attempt.password, source.as_deref(), now)
            .await
        {
            Ok(account) => account,
            Err(e) => {
                self.audit_failure(attempt, &e, now).await?;
                return Err(match e {
                    LoginError::Store(cause) => Refused::Server(OAuthError::server(cause)),
                    other => Refused::Credentials(other),
                });
            }
        };
        self.open_session(
            &account,
            attempt.client,
            attempt.previous,
            vec!["pwd".into()],
            PASSWORD_CEILING,
            now,
        )
        .await
    }

    /// Opens the session of a person who just proved who they are with the methods `amr`, whose
    /// ceiling is `ceiling`: the level is min(the account's proofing level, `ceiling`)
    /// (docs/assurance.md). The browser's previous session ends; the new one is live, durable and
    /// audited, or not opened at all.
    pub async fn open_session(
        &self,
        account: &Account,
        client: &Client,
        previous: Option<&str>,
        amr: Vec<String>,
        ceiling: u8,
        now: i64,
    ) -> Result<SignedIn, Refused> {
        let level = account.evidence.level().get().min(ceiling);
        // A method whose level its amr does not show (a QR sign-in) brings its own.
        let own_ceiling = if amr.iter().any(|m| m == "qr") {
            ceiling
        } else {
            0
        };
        // The channel's limits (a kiosk's are short).
        let limits = self.channels.channel(client.settings().channel);
        let fresh = Session {
            account_id: account.id.as_str().to_owned(),
            auth_time: now,
            level,
            amr,
            created_at: now,
            clients: Vec::new(),
            idle_secs: limits.idle_secs,
            absolute_secs: limits.absolute_secs,
            ceiling: own_ceiling,
        };
        // The browser's previous session ends (its services get a back-channel logout).
        if let Some(old) = previous {
            self.sessions
                .end(&session::sid_of(old), EndReason::Replaced, now)
                .await
                .map_err(OAuthError::server)?;
        }
        let (secret, sid) = session::create(self.ephemeral, &fresh, self.policy)
            .await
            .map_err(OAuthError::server)?;
        let context = self.audit.context;
        let record = SessionRecord {
            sid: sid.clone(),
            account_id: fresh.account_id.clone(),
            channel: client.settings().channel.as_str().to_owned(),
            client_id: client.id().as_str().to_owned(),
            clients: Vec::new(),
            ip: context.ip.clone(),
            user_agent: context.user_agent.clone(),
            level: i64::from(level),
            amr: fresh.amr.join(" "),
            created_at: now,
            last_seen_at: now,
            expires_at: now + i64::try_from(limits.absolute_secs).unwrap_or(self.absolute_secs),
            ended_at: None,
            end_reason: None,
        };
        let success = AuditEvent {
            channel: Some(record.channel.clone()),
            acr: Some(format!("urn:yihao:loa:{level}")),
            ..AuditEvent::success(EventType::LoginSuccess)
                .actor(account.id.as_str())
                .client(client.id().as_str())
                .target(sid.as_str())
                .details(json!({ "amr": fresh.amr }))
        };
        let recorded = match self.sessions.record(&record).await {
            Ok(()) => self.audit.record(success).await,
            Err(e) => Err(OAuthError::server(e)),
        };
        if let Err(e) = recorded {
            // Not recorded, not signed in: the live session goes too.
            let _ = session::end(self.ephemeral, &sid).await;
            return Err(e.into());
        }
        tracing::info!(account = %account.id, client = %client.id(), acr = level, "login succeeded");
        Ok(SignedIn {
            secret,
            sid,
            session: fresh,
        })
    }

    async fn within_limits(&self, attempt: &Attempt<'_>, now: i64) -> Result<(), Refused> {
        self.check_limits(attempt.client, attempt.identifier, now)
            .await
    }

    /// The login rate limits for `identifier` (per source address, per account, over all logins),
    /// counted before any credential is checked; the first refusal per window is audited.
    pub async fn check_limits(
        &self,
        client: &Client,
        identifier: &str,
        now: i64,
    ) -> Result<(), Refused> {
        // The account the identifier resolves to (or a keyed hash of an unknown one), so that every
        // spelling of one number ("+86 138-1234-1234") counts against the same limit.
        let account = self
            .identities
            .login_subject(identifier, now)
            .await
            .map_err(OAuthError::server)?;
        let per_min = |name, limit| limits::Rule {
            name,
            limit,
            window_secs: 60,
        };
        let l = self.limits;
        let mut checks = vec![
            (
                per_min("login_account", l.login_per_account_per_min),
                account.as_str(),
            ),
            (
                limits::Rule {
                    name: "login_global",
                    limit: l.login_global_per_sec,
                    window_secs: 1,
                },
                "all",
            ),
        ];
        let source = self.audit.context.source();
        if let Some(source) = &source {
            checks.push((per_min("login_ip", l.login_per_ip_per_min), source.as_str()));
        }
        let verdict = limits::hit_all(self.ephemeral, &checks, now)
            .await
            .map_err(OAuthError::server)?;
        let Verdict::Limited(limited) = verdict else {
            return Ok(());
        };
        tracing::info!(
            retry_after = limited.retry_after,
            rule = limited.rule,
            "login rate-limited"
        );
        if limited.first {
            let event = AuditEvent::failure(EventType::RateLimited, limited.rule)
                .details(json!({ "retry_after": limited.retry_after }));
            self.audit_events(client, identifier, vec![event], now)
                .await?;
        }
        Err(Refused::RateLimited {
            retry_after: limited.retry_after,
        })
    }

    /// Audits a refused login: whom it counted against, why, and a lockout when this attempt
    /// started one.
    async fn audit_failure(
        &self,
        attempt: &Attempt<'_>,
        error: &LoginError,
        now: i64,
    ) -> Result<(), OAuthError> {
        let (reason, started) = match error {
            LoginError::InvalidCredentials => ("invalid_credentials", false),
            LoginError::LockedOut { started, .. } => ("locked_out", *started),
            LoginError::Unavailable(_) => ("account_unavailable", false),
            LoginError::Busy(_) => ("busy", false),
            LoginError::Store(_) => ("server_error", false),
        };
        let mut events = vec![AuditEvent::failure(EventType::LoginFailure, reason)];
        if started {
            events.push(AuditEvent::failure(EventType::Lockout, "too_many_failures"));
        }
        self.audit_events(attempt.client, attempt.identifier, events, now)
            .await
    }

    /// Audits `events` about a login attempt: the target is the person as
    /// `Identities::login_subject` names them (an account id or a keyed hash, never the number),
    /// with the client and its channel.
    pub async fn audit_events(
        &self,
        client: &Client,
        identifier: &str,
        events: Vec<AuditEvent>,
        now: i64,
    ) -> Result<(), OAuthError> {
        let subject = self
            .identities
            .login_subject(identifier, now)
            .await
            .unwrap_or_else(|_| "unknown".into());
        for event in events {
            self.audit
                .record(AuditEvent {
                    channel: Some(client.settings().channel.as_str().to_owned()),
                    ..event.target(subject.as_str()).client(client.id().as_str())
                })
                .await?;
        }
        Ok(())
    }
}
