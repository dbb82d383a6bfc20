//! Password login with lockout, counted in the ephemeral store so it holds across nodes.

use super::*;

impl Identities {
    /// Password login with lockout (docs/security.md): after `lockout_threshold` consecutive failures
    /// the account (or, for an unknown identifier, the identifier) is locked for `lockout_secs`.
    /// Unknown identifiers cost one full hash and answer exactly as a wrong password does. A legacy
    /// or outdated hash is replaced by argon2id on success.
    pub async fn login(
        &self,
        identifier: &str,
        password: &Password,
        now: i64,
    ) -> Result<Account, LoginError> {
        let store_err = LoginError::Store;
        let found = self.lookup_id(identifier, now).await.map_err(store_err)?;
        let subject = self.subject(found.as_ref(), identifier, now);
        if let Some(until) = self.locked_until(&subject, now).await? {
            return Err(LoginError::LockedOut {
                until,
                started: false,
            });
        }
        let stored = match &found {
            Some(id) => self
                .accounts
                .password_hash(id.as_str())
                .await
                .map_err(|e| LoginError::Store(e.into()))?,
            None => None,
        };
        let verdict = self
            .hasher
            .verify(password, stored.as_deref())
            .await
            .map_err(LoginError::Busy)?;
        let (Some(id), Some(stored), true) = (found, stored, verdict.matches) else {
            return Err(self.record_failure(&subject, now).await);
        };
        let _ = self.ephemeral.delete(&failures_key(&subject)).await;
        let account = self
            .account(&id)
            .await
            .map_err(store_err)?
            .ok_or(LoginError::InvalidCredentials)?;
        match account.status {
            AccountStatus::Active => {}
            other => return Err(LoginError::Unavailable(other.as_str())),
        }
        if verdict.needs_rehash {
            match self.hasher.hash(password).await {
                Ok(fresh) => {
                    if let Err(e) = self
                        .accounts
                        .replace_password_hash(id.as_str(), &stored, &fresh)
                        .await
                    {
                        tracing::warn!(account = %id, error = %crate::telemetry::ErrorChain(&e), "could not upgrade the password hash");
                    }
                }
                Err(e) => {
                    tracing::warn!(account = %id, error = %crate::telemetry::ErrorChain(&e), "could not upgrade the password hash")
                }
            }
        }
        Ok(account)
    }

    /// Whom a login attempt counts against: `a:<account id>`, or for an unknown identifier
    /// `i:<keyed hash>` (never the number itself: this goes to logs and the audit log).
    fn subject(&self, found: Option<&AccountId>, identifier: &str, now: i64) -> String {
        match (found, Lookup::parse(identifier, now)) {
            (Some(id), _) => format!("a:{id}"),
            (None, Some(lookup)) => format!("i:{}", lookup.index(self).hex()),
            (None, None) => format!(
                "i:{}",
                self.pii
                    .blind_index("login-identifier", identifier.trim())
                    .hex()
            ),
        }
    }

    /// The subject a login with `identifier` counts against (for the audit record of a failure).
    pub async fn login_subject(&self, identifier: &str, now: i64) -> Result<String, AccountError> {
        let found = self.lookup_id(identifier, now).await?;
        Ok(self.subject(found.as_ref(), identifier, now))
    }

    async fn locked_until(&self, subject: &str, now: i64) -> Result<Option<i64>, LoginError> {
        let lock = self
            .ephemeral
            .get(&lock_key(subject))
            .await
            .map_err(|e| LoginError::Store(e.into()))?;
        let until = lock.and_then(|v| std::str::from_utf8(&v).ok()?.parse::<i64>().ok());
        Ok(until.filter(|&until| now < until))
    }

    async fn record_failure(&self, subject: &str, now: i64) -> LoginError {
        let window = Duration::from_secs(self.passwords.lockout_secs);
        let failures = match self
            .ephemeral
            .increment(&failures_key(subject), window)
            .await
        {
            Ok(n) => n,
            Err(e) => return LoginError::Store(e.into()),
        };
        if failures >= i64::from(self.passwords.lockout_threshold) {
            let until = now + self.passwords.lockout_secs as i64;
            // The record outlives its own deadline a little; `now` decides, the TTL only cleans up.
            let ttl = window + Duration::from_secs(60);
            if let Err(e) = self
                .ephemeral
                .put(&lock_key(subject), until.to_string().as_bytes(), ttl)
                .await
            {
                return LoginError::Store(e.into());
            }
            let _ = self.ephemeral.delete(&failures_key(subject)).await;
            tracing::info!(subject = %subject, until, "login locked after repeated failures");
            return LoginError::LockedOut {
                until,
                started: true,
            };
        }
        LoginError::InvalidCredentials
    }
}

fn failures_key(subject: &str) -> String {
    format!("login:failures:{subject}")
}

fn lock_key(subject: &str) -> String {
    format!("login:lock:{subject}")
}
