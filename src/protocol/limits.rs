//! Rate limits: fixed windows counted in the ephemeral store, so a limit holds across every node
//! sharing Redis. The window is chosen from `now` (the caller's clock), which keeps the rule
//! testable without sleeping; the counter's TTL only cleans up. A limit of 0 is off.
//!
//! RFC 6585 §4: "The 429 status code indicates that the user has sent too many requests in a given
//! amount of time" and "MAY include a Retry-After header indicating how long to wait".

use std::time::Duration;

use crate::store::{Ephemeral, StoreError};

/// A limit: at most `limit` hits per `window_secs` for one subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Names the counter (`login_ip`, `login_account`, `token_client`, `login_global`).
    pub name: &'static str,
    pub limit: u32,
    pub window_secs: u64,
}

/// Over the limit: try again after this many seconds (the rest of the window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: u64,
    /// The rule that refused (`Rule::name`).
    pub rule: &'static str,
    /// The first refusal of this subject in this window: the one worth an audit record (later ones
    /// in the same window would only let a flood write the log).
    pub first: bool,
}

/// The rate-limit subject of a client address: an IPv4 address itself, an IPv6 address by its /64
/// (RFC 6177: a /64 is what one subscriber or site gets, so counting per /128 lets one client use
/// 2^64 addresses). Anything else is counted as given.
pub fn address_subject(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        _ => ip.to_owned(),
    }
}

/// The answer of a rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Limited(Limited),
}

/// Counts one hit for `subject` at `now`; `Limited` once the window's count passes the limit.
/// `subject` must not carry personal data in the clear (it becomes a key in Redis): pass an address,
/// a client id or a keyed hash.
pub async fn hit(
    ephemeral: &dyn Ephemeral,
    rule: Rule,
    subject: &str,
    now: i64,
) -> Result<Verdict, StoreError> {
    Ok(hit_counted(ephemeral, rule, subject, now).await?.1)
}

/// [`hit`], with the count of the window so far (0 when the rule is off).
pub async fn hit_counted(
    ephemeral: &dyn Ephemeral,
    rule: Rule,
    subject: &str,
    now: i64,
) -> Result<(i64, Verdict), StoreError> {
    if rule.limit == 0 {
        return Ok((0, Verdict::Allowed));
    }
    let (key, ttl) = window_key(rule, subject, now);
    let count = ephemeral.increment(&key, ttl).await?;
    Ok((count, verdict(rule, count, now)))
}

/// Whether `subject` is over the limit in this window, without counting a hit.
pub async fn peek(
    ephemeral: &dyn Ephemeral,
    rule: Rule,
    subject: &str,
    now: i64,
) -> Result<Verdict, StoreError> {
    if rule.limit == 0 {
        return Ok(Verdict::Allowed);
    }
    let (key, _) = window_key(rule, subject, now);
    let count = ephemeral
        .get(&key)
        .await?
        .and_then(|v| std::str::from_utf8(&v).ok()?.parse::<i64>().ok())
        .unwrap_or(0);
    // The next hit would be count + 1; it is refused when that passes the limit.
    Ok(match verdict(rule, count + 1, now) {
        Verdict::Limited(limited) => Verdict::Limited(Limited {
            first: false,
            ..limited
        }),
        allowed => allowed,
    })
}

fn window_key(rule: Rule, subject: &str, now: i64) -> (String, Duration) {
    let window = i64::try_from(rule.window_secs.max(1)).unwrap_or(i64::MAX);
    let bucket = now.div_euclid(window);
    (
        format!("rl:{}:{subject}:{bucket}", rule.name),
        Duration::from_secs(rule.window_secs.max(1) + 5),
    )
}

fn verdict(rule: Rule, count: i64, now: i64) -> Verdict {
    if count <= i64::from(rule.limit) {
        return Verdict::Allowed;
    }
    let window = i64::try_from(rule.window_secs.max(1)).unwrap_or(i64::MAX);
    let bucket = now.div_euclid(window);
    let retry_after = u64::try_from((bucket + 1) * window - now)
        .unwrap_or(1)
        .max(1);
    Verdict::Limited(Limited {
        retry_after,
        rule: rule.name,
        first: count == i64::from(rule.limit) + 1,
    })
}

/// Checks several rules for one request; the first that is over wins (all are counted).
pub async fn hit_all(
    ephemeral: &dyn Ephemeral,
    checks: &[(Rule, &str)],
    now: i64,
) -> Result<Verdict, StoreError> {
    let mut outcome = Verdict::Allowed;
    for (rule, subject) in checks {
        if let Verdict::Limited(limited) = hit(ephemeral, *rule, subject, now).await?
            && outcome == Verdict::Allowed
        {
            outcome = Verdict::Limited(limited);
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Security review 2 (issue 14): IPv6 sources were counted per /128.
    #[test]
    fn ipv6_sources_are_counted_per_64() {
        assert_eq!(
            address_subject("2001:db8:1:2:aaaa::1"),
            address_subject("2001:db8:1:2:bbbb::9")
        );
        assert_eq!(address_subject("2001:db8:1:2::5"), "2001:db8:1:2::/64");
        assert_ne!(
            address_subject("2001:db8:1:2::1"),
            address_subject("2001:db8:1:3::1")
        );
        assert_eq!(address_subject("203.0.113.5"), "203.0.113.5");
    }
}
