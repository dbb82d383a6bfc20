//! Password login with lockout, counted in the ephemeral store so it holds across nodes.

use super::*;

impl Identities {
    /// Password login with lockout (docs/security.md), with no source address known: after
    /// `lockout_threshold` consecutive failures the account (or, for an unknown identifier, the
    /// identifier) is locked for `lockout_secs`. See [`Identities::login_from`].
    pub async fn login(
        &self,
        identifier: &str,
        password: &Password,
        now: i64,
    ) -> Result<Account, LoginError> {
        self.login_from(identifier, password, None, now).await
    }

    /// Password login from `source` (an address, as rate limits count it). Failures are counted
    /// per account and source: `lockout_threshold` of them lock the account for that source only,
    /// for `lockout_secs`, doubled for each further lock of that source within a day (up to a
    /// day); and per account over all sources, where `lockout_account_threshold` of them lock it
    /// for everyone. So a stranger who knows an ID number slows down and stops at their own lock,
    /// and only a spread attack reaches the account-wide one (security review 4). Without a source
    /// the account-wide count uses `lockout_threshold`.
    ///
    /// Each attempt is counted before the password is checked (one atomic increment per count), so
    /// of many concurrent guesses at most the threshold are checked at all; a success resets the
    /// counts. Unknown identifiers cost one full hash and answer exactly as a wrong password does.
    /// A legacy or outdated hash is replaced by argon2id on success.
    pub async fn login_from(
        &self,
        identifier: &str,
        password: &Password,
        source: Option<&str>,
        now: i64,
    ) -> Result<Account, LoginError> {
        let store_err = LoginError::Store;
        let found = self.lookup_id(identifier, now).await.map_err(store_err)?;
        let subject = self.subject(found.as_ref(), identifier, now);
        let per_source = i64::from(self.passwords.lockout_threshold);
        let counts: Vec<(String, i64, bool)> = match source {
            Some(source) => vec![
                (format!("{subject}@{source}"), per_source, true),
                (
                    subject.clone(),
                    i64::from(self.passwords.lockout_account_threshold),
                    false,
                ),
            ],
            None => vec![(subject.clone(), per_source, false)],
        };
        for (key, _, _) in &counts {
            if let Some(until) = self.locked_until(key, now).await? {
                return Err(LoginError::LockedOut {
                    until,
                    started: false,
                });
            }
        }
        let mut attempts = Vec::with_capacity(counts.len());
        for (key, _, _) in &counts {
            attempts.push(
                self.ephemeral
                    .increment(&failures_key(key), self.lockout_window())
                    .await
                    .map_err(|e| LoginError::Store(e.into()))?,
            );
        }
        for ((key, threshold, progressive), attempt) in counts.iter().zip(&attempts) {
            if attempt > threshold {
                // Guesses beyond the threshold, concurrent with the one that locks: no password work.
                return Err(self.lock(key, *progressive, now).await);
            }
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
            for ((key, threshold, progressive), attempt) in counts.iter().zip(&attempts) {
                if attempt >= threshold {
                    return Err(self.lock(key, *progressive, now).await);
                }
            }
            return Err(LoginError::InvalidCredentials);
        };
        for (key, _, _) in &counts {
            let _ = self.ephemeral.delete(&failures_key(key)).await;
        }
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

    /// Whether `password` is the account's current one (on the hashing pool; no lockout counting:
    /// callers that face the public rate-limit first).
    pub async fn check_password(
        &self,
        id: &AccountId,
        password: &Password,
    ) -> Result<bool, AccountError> {
        let stored = self.accounts.password_hash(id.as_str()).await?;
        Ok(self
            .hasher
            .verify(password, stored.as_deref())
            .await?
            .matches
            && stored.is_some())
    }

    /// The owner's unlock (docs/security.md): after the owner proved possession of the phone on
    /// file, the password lockout of the account ends, account-wide and for the owner's own address.
    /// `true` when a lock was in force.
    pub async fn clear_lockout(
        &self,
        id: &AccountId,
        source: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let subject = format!("a:{id}");
        let mut subjects = vec![subject.clone()];
        subjects.extend(source.map(|s| format!("{subject}@{s}")));
        let mut was_locked = false;
        for subject in &subjects {
            was_locked |= self
                .locked_until(subject, now)
                .await
                .map_err(|e| match e {
                    LoginError::Store(AccountError::Store(e)) => e,
                    other => StoreError::failed(other.to_string()),
                })?
                .is_some();
            self.ephemeral.delete(&lock_key(subject)).await?;
            self.ephemeral.delete(&failures_key(subject)).await?;
        }
        Ok(was_locked)
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

    fn lockout_window(&self) -> Duration {
        Duration::from_secs(self.passwords.lockout_secs)
    }

    /// Locks `subject` for `lockout_secs` from `now` (`progressive`: doubled for each earlier lock
    /// of the same subject within a day, up to a day), unless a concurrent attempt locked it first;
    /// `started` tells the attempt that set the lock (it is audited as the lockout).
    async fn lock(&self, subject: &str, progressive: bool, now: i64) -> LoginError {
        const DAY: u64 = 86_400;
        let mut secs = self.passwords.lockout_secs;
        if progressive {
            let earlier = match self
                .ephemeral
                .get(&locks_key(subject))
                .await
                .map(|v| v.and_then(|v| std::str::from_utf8(&v).ok()?.parse::<u32>().ok()))
            {
                Ok(n) => n.unwrap_or(0),
                Err(e) => return LoginError::Store(e.into()),
            };
            secs = secs
                .saturating_mul(2_u64.saturating_pow(earlier.min(16)))
                .min(DAY.max(self.passwords.lockout_secs));
        }
        let until = now + secs as i64;
        // The record outlives its own deadline a little; `now` decides, the TTL only cleans up.
        let ttl = Duration::from_secs(secs + 60);
        let started = match self
            .ephemeral
            .put_if_absent(&lock_key(subject), until.to_string().as_bytes(), ttl)
            .await
        {
            Ok(started) => started,
            Err(e) => return LoginError::Store(e.into()),
        };
        if !started {
            match self.locked_until(subject, now).await {
                Ok(Some(until)) => {
                    return LoginError::LockedOut {
                        until,
                        started: false,
                    };
                }
                // What is there is an earlier lock, past its deadline: this one replaces it.
                Ok(None) => {
                    let replaced = self
                        .ephemeral
                        .put(&lock_key(subject), until.to_string().as_bytes(), ttl)
                        .await;
                    if let Err(e) = replaced {
                        return LoginError::Store(e.into());
                    }
                }
                Err(e) => return e,
            }
        }
        let _ = self.ephemeral.delete(&failures_key(subject)).await;
        if progressive {
            // How many times this subject was locked within the last day.
            let _ = self
                .ephemeral
                .increment(&locks_key(subject), Duration::from_secs(DAY))
                .await;
        }
        tracing::info!(subject = %subject, until, "login locked after repeated failures");
        LoginError::LockedOut {
            until,
            started: true,
        }
    }
}

fn failures_key(subject: &str) -> String {
    format!("login:failures:{subject}")
}

fn lock_key(subject: &str) -> String {
    format!("login:lock:{subject}")
}

fn locks_key(subject: &str) -> String {
    format!("login:locks:{subject}")
}
