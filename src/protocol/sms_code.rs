//! One-time codes sent by SMS (docs/security.md, "SMS codes"): 6 digits, valid `sms.code_secs`
//! (5 minutes), used once, void after `sms.max_tries` (5) wrong tries, a new one after
//! `sms.resend_secs` (60 s), at most `sms.per_number_per_day` to one number and
//! `sms.per_source_per_day` asked from one address per day (China Standard Time).
//!
//! Codes are stored only as keyed hashes (HMAC-SHA256 under a key derived from the key root, over the
//! purpose, the number and the code), under a key that names the number only by a keyed hash: a copy
//! of Redis yields neither codes nor numbers. A code sent for one purpose opens nothing else.
//!
//! The answer to "send me a code" is the same whether or not the number belongs to an account: for an
//! unknown number ([`Delivery::Decoy`]) every limit counts the same and a code that no one knows is
//! stored, so a later try is "wrong code" as for anyone who mistyped; only the message is not sent.

use std::time::Duration;

use hmac::{Hmac, Mac};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::limits::{self, Rule, Verdict};
use super::outside::{OutsideError, SmsGateway, SmsMessage, SmsPurpose};
use crate::config::SmsConfig;
use crate::crypto::hex;
use crate::domain::identifiers::Phone;
use crate::store::{Ephemeral, StoreError};

/// China Standard Time is UTC+8: the daily caps start at midnight there.
const CST_OFFSET: i64 = 8 * 3600;
const DAY: u64 = 86_400;

/// The key codes and numbers are hashed with (derived from the key root for "sms-code").
pub struct CodeKey(pub Zeroizing<[u8; 32]>);

impl CodeKey {
    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_slice())
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// The number as it appears in store keys: a keyed hash, never the digits.
    pub fn number_key(&self, phone: &Phone) -> String {
        hex(&self.mac(&[b"number", phone.as_str().as_bytes()])[..16])
    }

    fn code_hash(&self, purpose: SmsPurpose, phone: &Phone, code: &str) -> [u8; 32] {
        self.mac(&[
            b"code",
            purpose.as_str().as_bytes(),
            phone.as_str().as_bytes(),
            code.as_bytes(),
        ])
    }
}

/// Whether a code goes out: to a number that may receive it, or to nobody (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Send,
    Decoy,
}

/// Sent (or, for a decoy, as good as sent): the person may ask again after `resend_after` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub resend_after: u64,
}

/// Why no code was sent.
#[derive(Debug, thiserror::Error)]
pub enum SendRefused {
    #[error("a code was sent less than a minute ago; ask again in {retry_after} s")]
    TooSoon { retry_after: u64 },
    #[error("too many codes today; try again tomorrow")]
    DailyCap {
        retry_after: u64,
        rule: &'static str,
    },
    #[error(transparent)]
    Gateway(OutsideError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a code was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum CodeRefused {
    #[error("the code is wrong")]
    Wrong { tries_left: u32 },
    #[error("the code has expired, or none was sent; ask for a new one")]
    Expired,
    #[error("the code was used already; ask for a new one")]
    Used,
    #[error("too many wrong tries; ask for a new code")]
    TooManyTries,
    #[error("the code is not 6 digits")]
    Malformed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CodeRefused {
    /// A stable reason for the audit log.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Wrong { .. } => "wrong_code",
            Self::Expired => "expired_code",
            Self::Used => "used_code",
            Self::TooManyTries => "too_many_tries",
            Self::Malformed => "malformed_code",
            Self::Store(_) => "server_error",
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Stored {
    /// hex of the code's keyed hash.
    hash: String,
    sent_at: i64,
    /// Names this code's count of tries (two codes sent within one second have their own).
    #[serde(default)]
    nonce: String,
}

/// SMS codes over the ephemeral store and the gateway.
#[derive(Clone, Copy)]
pub struct SmsCodes<'a> {
    pub ephemeral: &'a dyn Ephemeral,
    pub gateway: &'a dyn SmsGateway,
    pub key: &'a CodeKey,
    pub config: &'a SmsConfig,
}

impl SmsCodes<'_> {
    fn keys(&self, purpose: SmsPurpose, phone: &Phone) -> (String, String, String) {
        let n = self.key.number_key(phone);
        let p = purpose.as_str();
        (
            format!("sms:code:{p}:{n}"),
            format!("sms:resend:{p}:{n}"),
            format!("sms:used:{p}:{n}"),
        )
    }

    /// Sends a new code for `purpose` to `phone` (replacing an earlier one), within the limits.
    /// `source` is the requester's address as a rate-limit subject; `text` the message template in
    /// the person's language (`{code}`, `{minutes}`).
    pub async fn send(
        &self,
        purpose: SmsPurpose,
        phone: &Phone,
        delivery: Delivery,
        source: Option<&str>,
        text: &str,
        now: i64,
    ) -> Result<Sent, SendRefused> {
        let c = self.config;
        let (code_key, resend_key, _) = self.keys(purpose, phone);
        // The resend gate first: a refused resend spends none of the day's allowance. It is decided
        // on `now` (the TTL only cleans up).
        let gate = now.to_string();
        if !self
            .ephemeral
            .put_if_absent(&resend_key, gate.as_bytes(), secs(c.resend_secs))
            .await?
        {
            let since = self
                .ephemeral
                .get(&resend_key)
                .await?
                .and_then(|v| String::from_utf8(v).ok()?.parse::<i64>().ok())
                .unwrap_or(i64::MIN);
            let waited = u64::try_from(now.saturating_sub(since)).unwrap_or(0);
            if waited < c.resend_secs {
                return Err(SendRefused::TooSoon {
                    retry_after: (c.resend_secs - waited).max(1),
                });
            }
            self.ephemeral
                .put(&resend_key, gate.as_bytes(), secs(c.resend_secs))
                .await?;
        }
        let day = now + CST_OFFSET;
        let number = self.key.number_key(phone);
        let mut checks = vec![(
            Rule {
                name: "sms_number",
                limit: c.per_number_per_day,
                window_secs: DAY,
            },
            number.as_str(),
        )];
        if let Some(source) = source {
            checks.push((
                Rule {
                    name: "sms_source",
                    limit: c.per_source_per_day,
                    window_secs: DAY,
                },
                source,
            ));
        }
        if let Verdict::Limited(limited) = limits::hit_all(self.ephemeral, &checks, day).await? {
            let _ = self.ephemeral.delete(&resend_key).await;
            return Err(SendRefused::DailyCap {
                retry_after: limited.retry_after,
                rule: limited.rule,
            });
        }
        let code = Zeroizing::new(format!("{:06}", rand::rng().random_range(0..1_000_000u32)));
        let hash = match delivery {
            Delivery::Send => self.key.code_hash(purpose, phone, &code),
            // A hash no code has: every try is a wrong code.
            Delivery::Decoy => rand::rng().random(),
        };
        let nonce: [u8; 8] = rand::rng().random();
        let stored = serde_json::to_vec(&Stored {
            hash: hex(&hash),
            sent_at: now,
            nonce: hex(&nonce),
        })
        .map_err(|e| StoreError::backend("sms code", e))?;
        if delivery == Delivery::Send {
            let minutes = c.code_secs.div_ceil(60);
            let message = SmsMessage {
                phone: phone.clone(),
                purpose,
                text: Zeroizing::new(
                    text.replace("{code}", &code)
                        .replace("{minutes}", &minutes.to_string()),
                ),
                code,
                minutes,
            };
            if let Err(e) = self.gateway.send(&message).await {
                // Not sent: the person may ask again at once.
                let _ = self.ephemeral.delete(&resend_key).await;
                return Err(SendRefused::Gateway(e));
            }
        }
        self.ephemeral
            .put(&code_key, &stored, secs(c.code_secs))
            .await?;
        Ok(Sent {
            resend_after: c.resend_secs,
        })
    }

    /// Checks `code` for `purpose` and `phone`; on success the code is spent (a second use is
    /// `Used`). Each wrong try counts; after `sms.max_tries` the code is void.
    pub async fn verify(
        &self,
        purpose: SmsPurpose,
        phone: &Phone,
        code: &str,
        now: i64,
    ) -> Result<(), CodeRefused> {
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CodeRefused::Malformed);
        }
        let (code_key, _, used_key) = self.keys(purpose, phone);
        let offered = self.key.code_hash(purpose, phone, code);
        let Some(raw) = self.ephemeral.get(&code_key).await? else {
            let used = self.ephemeral.get(&used_key).await?;
            return Err(match used {
                Some(h) if bool::from(h.ct_eq(&offered)) => CodeRefused::Used,
                _ => CodeRefused::Expired,
            });
        };
        let stored: Stored = serde_json::from_slice(&raw)
            .map_err(|e| StoreError::Corrupt(format!("sms code: {e}")))?;
        let age = now.saturating_sub(stored.sent_at);
        if age < 0 || age >= i64::try_from(self.config.code_secs).unwrap_or(i64::MAX) {
            return Err(CodeRefused::Expired);
        }
        // Tries are counted per code.
        let tries_key = format!("{code_key}:tries:{}:{}", stored.sent_at, stored.nonce);
        let tries = self
            .ephemeral
            .increment(&tries_key, secs(self.config.code_secs))
            .await?;
        let max = i64::from(self.config.max_tries);
        if tries > max {
            let _ = self.ephemeral.delete(&code_key).await;
            return Err(CodeRefused::TooManyTries);
        }
        if !bool::from(hex(&offered).as_bytes().ct_eq(stored.hash.as_bytes())) {
            if tries == max {
                let _ = self.ephemeral.delete(&code_key).await;
                return Err(CodeRefused::TooManyTries);
            }
            return Err(CodeRefused::Wrong {
                tries_left: u32::try_from(max - tries).unwrap_or(0),
            });
        }
        // Spend it: of two concurrent uses, one takes it.
        match self.ephemeral.take(&code_key).await? {
            Some(taken) if taken == raw => {}
            _ => return Err(CodeRefused::Used),
        }
        self.ephemeral
            .put(&used_key, &offered, secs(self.config.code_secs))
            .await?;
        Ok(())
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s.max(1))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::config::Config;
    use crate::store::memory::MemoryEphemeral;

    /// A gateway that remembers the codes it was given, or fails.
    #[derive(Default)]
    struct Recorder {
        sent: Mutex<Vec<String>>,
        down: bool,
    }

    #[async_trait]
    impl SmsGateway for Recorder {
        async fn send(&self, m: &SmsMessage) -> Result<(), OutsideError> {
            if self.down {
                return Err(OutsideError::Unavailable {
                    service: "sms_gateway",
                    reason: "HTTP 503".into(),
                });
            }
            self.sent.lock().unwrap().push(m.code.to_string());
            Ok(())
        }
    }

    struct Fixture {
        ephemeral: std::sync::Arc<MemoryEphemeral>,
        gateway: Recorder,
        key: CodeKey,
        config: SmsConfig,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                ephemeral: MemoryEphemeral::new(Duration::from_secs(60)),
                gateway: Recorder::default(),
                key: CodeKey(Zeroizing::new([7; 32])),
                config: Config::load_with_env(None, []).unwrap().sms,
            }
        }
        fn codes(&self) -> SmsCodes<'_> {
            SmsCodes {
                ephemeral: self.ephemeral.as_ref(),
                gateway: &self.gateway,
                key: &self.key,
                config: &self.config,
            }
        }
        fn last(&self) -> String {
            self.gateway.sent.lock().unwrap().last().cloned().unwrap()
        }
    }

    fn phone() -> Phone {
        Phone::parse("13812341234").unwrap()
    }

    const T: i64 = 1_800_000_000;
    const LOGIN: SmsPurpose = SmsPurpose::Login;

    async fn send(f: &Fixture, now: i64) -> Result<Sent, SendRefused> {
        f.codes()
            .send(
                LOGIN,
                &phone(),
                Delivery::Send,
                Some("10.0.0.1"),
                "{code}",
                now,
            )
            .await
    }

    #[tokio::test]
    async fn a_code_is_six_digits_and_opens_once() {
        let f = Fixture::new();
        assert_eq!(send(&f, T).await.unwrap().resend_after, 60);
        let code = f.last();
        assert!(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()));
        f.codes()
            .verify(LOGIN, &phone(), &code, T + 10)
            .await
            .unwrap();
        assert!(matches!(
            f.codes().verify(LOGIN, &phone(), &code, T + 11).await,
            Err(CodeRefused::Used)
        ));
    }

    #[tokio::test]
    async fn a_code_for_one_purpose_opens_nothing_else() {
        let f = Fixture::new();
        send(&f, T).await.unwrap();
        let code = f.last();
        assert!(matches!(
            f.codes()
                .verify(SmsPurpose::Recover, &phone(), &code, T)
                .await,
            Err(CodeRefused::Expired)
        ));
        let other = Phone::parse("13912341234").unwrap();
        assert!(matches!(
            f.codes().verify(LOGIN, &other, &code, T).await,
            Err(CodeRefused::Expired)
        ));
    }

    #[tokio::test]
    async fn five_wrong_tries_void_the_code() {
        let f = Fixture::new();
        send(&f, T).await.unwrap();
        let code = f.last();
        let wrong = if code == "000000" { "000001" } else { "000000" };
        for left in (1..=4).rev() {
            match f.codes().verify(LOGIN, &phone(), wrong, T).await {
                Err(CodeRefused::Wrong { tries_left }) => assert_eq!(tries_left, left),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            f.codes().verify(LOGIN, &phone(), wrong, T).await,
            Err(CodeRefused::TooManyTries)
        ));
        // The right code is no use now.
        assert!(matches!(
            f.codes().verify(LOGIN, &phone(), &code, T).await,
            Err(CodeRefused::Expired)
        ));
    }

    #[tokio::test]
    async fn a_resend_waits_a_minute_and_replaces_the_code() {
        let f = Fixture::new();
        send(&f, T).await.unwrap();
        let first = f.last();
        match send(&f, T + 20).await {
            Err(SendRefused::TooSoon { retry_after }) => assert_eq!(retry_after, 40),
            other => panic!("{other:?}"),
        }
        assert_eq!(f.gateway.sent.lock().unwrap().len(), 1);
        send(&f, T + 60).await.unwrap();
        let second = f.last();
        if first != second {
            assert!(
                f.codes()
                    .verify(LOGIN, &phone(), &first, T + 62)
                    .await
                    .is_err()
            );
        }
        f.codes()
            .verify(LOGIN, &phone(), &second, T + 62)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn the_daily_cap_per_number_holds_until_midnight_in_china() {
        let mut f = Fixture::new();
        f.config.per_number_per_day = 2;
        f.config.resend_secs = 1;
        // 2027-01-15 10:00 CST.
        let morning = 1_800_000_000 - (1_800_000_000 + CST_OFFSET) % 86_400 + 10 * 3600;
        for i in 0..2 {
            send(&f, morning + i * 10).await.unwrap();
        }
        match send(&f, morning + 100).await {
            Err(SendRefused::DailyCap { retry_after, rule }) => {
                assert_eq!(rule, "sms_number");
                assert_eq!(retry_after, 14 * 3600 - 100);
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn an_unknown_number_gets_the_same_answer_and_nothing_is_sent() {
        let f = Fixture::new();
        let sent = f
            .codes()
            .send(LOGIN, &phone(), Delivery::Decoy, None, "{code}", T)
            .await
            .unwrap();
        assert_eq!(sent.resend_after, 60);
        assert!(f.gateway.sent.lock().unwrap().is_empty());
        assert!(matches!(
            f.codes().verify(LOGIN, &phone(), "123456", T).await,
            Err(CodeRefused::Wrong { tries_left: 4 })
        ));
    }

    #[tokio::test]
    async fn each_code_has_its_own_count_of_tries() {
        // Regression: codes sent within one second shared one count, so a number that got five
        // codes in a second could not use the sixth (found by the load benchmark).
        let mut f = Fixture::new();
        f.config.resend_secs = 0;
        for _ in 0..7 {
            send(&f, T).await.unwrap();
            f.codes()
                .verify(LOGIN, &phone(), &f.last(), T)
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn a_code_expires_after_five_minutes() {
        let f = Fixture::new();
        send(&f, T).await.unwrap();
        assert!(matches!(
            f.codes().verify(LOGIN, &phone(), &f.last(), T + 300).await,
            Err(CodeRefused::Expired)
        ));
        f.codes()
            .verify(LOGIN, &phone(), &f.last(), T + 299)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_gateway_failure_is_reported_and_allows_an_immediate_retry() {
        let mut f = Fixture::new();
        f.gateway.down = true;
        assert!(matches!(send(&f, T).await, Err(SendRefused::Gateway(_))));
        f.gateway.down = false;
        send(&f, T + 1).await.unwrap();
    }

    #[tokio::test]
    async fn nothing_stored_names_the_number_or_the_code() {
        let f = Fixture::new();
        send(&f, T).await.unwrap();
        let (code_key, _, _) = f.codes().keys(LOGIN, &phone());
        assert!(!code_key.contains("13812341234"));
        let stored = f.ephemeral.get(&code_key).await.unwrap().unwrap();
        let text = String::from_utf8(stored).unwrap();
        assert!(!text.contains(&f.last()), "{text}");
    }

    #[tokio::test]
    async fn a_malformed_code_is_refused_without_counting() {
        let f = Fixture::new();
        send(&f, T).await.unwrap();
        for bad in ["", "12345", "1234567", "12a456", "１２３４５６"] {
            assert!(matches!(
                f.codes().verify(LOGIN, &phone(), bad, T).await,
                Err(CodeRefused::Malformed)
            ));
        }
        f.codes()
            .verify(LOGIN, &phone(), &f.last(), T)
            .await
            .unwrap();
    }
}
