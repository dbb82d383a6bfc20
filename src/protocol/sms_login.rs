//! Sign-in by SMS code (the login page's second tab): the mobile number on file and a code sent to
//! it. The level reached is min(the account's proofing level, [`SMS_CEILING`]) with `amr` `sms`
//! (docs/assurance.md). Asking for a code answers the same for a known and an unknown number
//! (`sms_code::Delivery::Decoy`). A successful sign-in is also the owner's unlock: it ends a password
//! lockout of the account (docs/security.md), audited as `account_unlock`.

use serde_json::json;

use super::OAuthError;
use super::audit::{AuditEvent, EventType};
use super::login::{PasswordLogin, Refused, SignedIn};
use super::outside::SmsPurpose;
use super::sms_code::{CodeRefused, Delivery, SendRefused, Sent, SmsCodes};
use crate::domain::account::AccountStatus;
use crate::domain::client::Client;
use crate::domain::identifiers::{IdentifierError, Phone};

/// The highest level an SMS code establishes: possession of the phone, one factor.
pub const SMS_CEILING: u8 = 2;

/// Why an SMS sign-in step did not succeed; each has its own message on the page.
#[derive(Debug, thiserror::Error)]
pub enum SmsRefused {
    #[error(transparent)]
    BadPhone(IdentifierError),
    #[error(transparent)]
    Send(SendRefused),
    #[error(transparent)]
    Code(CodeRefused),
    #[error("this account cannot sign in: {0}")]
    Unavailable(&'static str),
    #[error(transparent)]
    Login(Refused),
}

impl From<Refused> for SmsRefused {
    fn from(e: Refused) -> Self {
        Self::Login(e)
    }
}

impl From<OAuthError> for SmsRefused {
    fn from(e: OAuthError) -> Self {
        Self::Login(Refused::Server(e))
    }
}

/// Sign-in by SMS code: the login operation's limits, sessions and audit, and the codes.
pub struct SmsLogin<'a> {
    pub login: PasswordLogin<'a>,
    pub codes: SmsCodes<'a>,
}

impl SmsLogin<'_> {
    /// Sends a sign-in code to `phone` if it belongs to an active account (the same answer either
    /// way). `text` is the message template in the person's language.
    pub async fn send(
        &self,
        client: &Client,
        phone: &str,
        text: &str,
        now: i64,
    ) -> Result<Sent, SmsRefused> {
        let phone = Phone::parse(phone).map_err(SmsRefused::BadPhone)?;
        let account = self
            .login
            .identities
            .find(phone.as_str(), now)
            .await
            .map_err(OAuthError::server)?;
        let delivery = match &account {
            Some(a) if a.status == AccountStatus::Active => Delivery::Send,
            _ => Delivery::Decoy,
        };
        let source = self.login.audit.context.source();
        let sent = self
            .codes
            .send(
                SmsPurpose::Login,
                &phone,
                delivery,
                source.as_deref(),
                text,
                now,
            )
            .await;
        let event = match &sent {
            Ok(_) => AuditEvent::success(EventType::SmsCodeSent),
            Err(e) => AuditEvent::failure(EventType::SmsCodeSent, send_reason(e)),
        }
        .details(json!({ "purpose": "login" }));
        self.login
            .audit_events(client, phone.as_str(), vec![event], now)
            .await?;
        sent.map_err(SmsRefused::Send)
    }

    /// Signs in with `phone` and `code`: the login rate limits first, then the code (spent on
    /// success), then the session.
    pub async fn login(
        &self,
        client: &Client,
        phone: &str,
        code: &str,
        previous: Option<&str>,
        now: i64,
    ) -> Result<SignedIn, SmsRefused> {
        let phone = Phone::parse(phone).map_err(SmsRefused::BadPhone)?;
        self.login.check_limits(client, phone.as_str(), now).await?;
        if let Err(e) = self
            .codes
            .verify(SmsPurpose::Login, &phone, code, now)
            .await
        {
            if let CodeRefused::Store(cause) = e {
                return Err(OAuthError::server(cause).into());
            }
            let event = AuditEvent::failure(EventType::LoginFailure, e.reason())
                .details(json!({ "amr": ["sms"] }));
            self.login
                .audit_events(client, phone.as_str(), vec![event], now)
                .await?;
            return Err(SmsRefused::Code(e));
        }
        // A code is only ever sent to the number of an active account; it may have changed since.
        let account = self
            .login
            .identities
            .find(phone.as_str(), now)
            .await
            .map_err(OAuthError::server)?;
        let Some(account) = account.filter(|a| a.status == AccountStatus::Active) else {
            let event = AuditEvent::failure(EventType::LoginFailure, "account_unavailable");
            self.login
                .audit_events(client, phone.as_str(), vec![event], now)
                .await?;
            return Err(SmsRefused::Unavailable("not active"));
        };
        let source = self.login.audit.context.source();
        let unlocked = self
            .login
            .identities
            .clear_lockout(&account.id, source.as_deref(), now)
            .await
            .map_err(OAuthError::server)?;
        if unlocked {
            let event = AuditEvent::success(EventType::AccountUnlock)
                .actor(account.id.as_str())
                .details(json!({ "by": "owner", "amr": ["sms"] }));
            self.login
                .audit_events(client, phone.as_str(), vec![event], now)
                .await?;
        }
        Ok(self
            .login
            .open_session(
                &account,
                client,
                previous,
                vec!["sms".into()],
                SMS_CEILING,
                now,
            )
            .await?)
    }
}

/// A stable reason for the audit record of a refused send.
pub fn send_reason(e: &SendRefused) -> &'static str {
    match e {
        SendRefused::TooSoon { .. } => "too_soon",
        SendRefused::DailyCap { .. } => "daily_cap",
        SendRefused::Gateway(_) => "gateway_unavailable",
        SendRefused::Store(_) => "server_error",
    }
}
