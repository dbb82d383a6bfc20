//! The one clock the server reads. [`App`](crate::app::App) owns a [`Clock`]: the system time in
//! production ([`SystemClock`]), a [`ManualClock`] that tests set and advance. Handlers and
//! background tasks ask the app's clock and hand the rules `now` as a parameter; `protocol` and
//! `domain` never read a clock, so expiry, lockout and rate windows are tested without sleeping.
//!
//! Token expiry is decided on `now` too: jsonwebtoken's own `exp` check (which would read the
//! system clock) is turned off wherever a token is verified, and `protocol::expired` decides.
//! What lives in the ephemeral store (live sessions' idle time, codes, interactions, revoked token
//! ids) expires by the store's own TTL, a real timer; the rules that depend on time (absolute
//! session limits, lockouts, rate windows, refresh families) read `now`.

use std::sync::atomic::{AtomicI64, Ordering};

/// Wall-clock time as epoch seconds and milliseconds.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// Seconds since the Unix epoch.
    fn now(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        system_ms()
    }
}

/// Milliseconds since the epoch by the system clock (0 before 1970, saturating far ahead).
pub fn system_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A clock that stands still until told to move: tests set it and advance it instead of sleeping.
#[derive(Debug)]
pub struct ManualClock {
    ms: AtomicI64,
}

impl ManualClock {
    /// A clock reading `ms` milliseconds since the epoch.
    pub fn at_ms(ms: i64) -> Self {
        Self {
            ms: AtomicI64::new(ms),
        }
    }

    /// A clock that starts at the system's current time, on a whole second.
    pub fn starting_now() -> Self {
        Self::at_ms(system_ms().div_euclid(1000) * 1000)
    }

    /// Moves the clock forward (or back, with a negative amount) by `secs` seconds.
    pub fn advance(&self, secs: i64) {
        self.ms
            .fetch_add(secs.saturating_mul(1000), Ordering::SeqCst);
    }

    /// Sets the clock to `secs` since the epoch.
    pub fn set(&self, secs: i64) {
        self.ms.store(secs.saturating_mul(1000), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.ms.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = ManualClock::at_ms(1_700_000_000_500);
        assert_eq!(clock.now(), 1_700_000_000);
        clock.advance(61);
        assert_eq!(clock.now(), 1_700_000_061);
        assert_eq!(clock.now_ms(), 1_700_000_061_500);
        clock.set(5);
        assert_eq!(clock.now(), 5);
    }

    #[test]
    fn the_system_clock_is_after_2020() {
        assert!(SystemClock.now() > 1_577_836_800);
    }
}
