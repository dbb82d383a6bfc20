//! The level a session has and the level a request needs, and what is missing between them
//! (docs/assurance.md). Pure: the interaction gathers the facts ([`Reach`]) and shows the page
//! [`step_up`] names.
//!
//! "The level of a session = min(the account's proofing level, the ceiling of the methods used in
//! it)." Method ceilings: a password or an SMS code alone 2; either with a second factor (TOTP,
//! passkey) 3; a passkey with user verification alone 3. Level 4 needs a certificate, which this
//! server does not take yet: no session reaches it.

use super::authorize::AuthorizeRequest;
use crate::domain::client::Client;

/// The most a password or an SMS code establishes: one factor.
pub const ONE_FACTOR_CEILING: u8 = 2;
/// The most two factors (or a passkey verifying its user) establish.
pub const TWO_FACTOR_CEILING: u8 = 3;
/// The level a face check against the register photo establishes for the account.
pub const FACE_LEVEL: u8 = 3;

/// amr of the first factors (RFC 8176: `pwd` password, `sms` confirmation by SMS). A QR sign-in
/// (`qr`, confirmed in the signed-in app) is worth the app session's level, which the session
/// carries as its `ceiling` ([`session_level_with`]).
const FIRST: [&str; 2] = ["pwd", "sms"];
/// amr of the second factors (RFC 8176: `otp` one-time password, `hwk` proof of possession of a
/// hardware-secured key).
const SECOND: [&str; 2] = ["otp", "hwk"];

fn has_any(amr: &[String], set: &[&str]) -> bool {
    amr.iter().any(|m| set.contains(&m.as_str()))
}

/// Whether the methods include a second factor.
pub fn has_second_factor(amr: &[String]) -> bool {
    has_any(amr, &SECOND)
}

/// The ceiling of the methods used in a session.
pub fn method_ceiling(amr: &[String]) -> u8 {
    let first = has_any(amr, &FIRST);
    let second = has_second_factor(amr);
    // A passkey with user verification is two factors in one: `hwk` with `mfa`.
    let passkey_alone = amr.iter().any(|m| m == "hwk") && amr.iter().any(|m| m == "mfa");
    if (first && second) || passkey_alone {
        TWO_FACTOR_CEILING
    } else if first {
        ONE_FACTOR_CEILING
    } else {
        1
    }
}

/// min(proofing level, method ceiling).
pub fn session_level(proofed: u8, amr: &[String]) -> u8 {
    proofed.min(method_ceiling(amr))
}

/// [`session_level`] of a session that carries a ceiling of its own (a QR sign-in: the app
/// session's level, at most [`TWO_FACTOR_CEILING`]); 0: none. A QR sign-in stepped up with a
/// second factor reaches [`TWO_FACTOR_CEILING`] like a password would.
pub fn session_level_with(proofed: u8, amr: &[String], ceiling: u8) -> u8 {
    let qr = amr.iter().any(|m| m == "qr");
    let stepped = if qr && has_second_factor(amr) {
        TWO_FACTOR_CEILING
    } else {
        0
    };
    proofed.min(
        method_ceiling(amr)
            .max(ceiling.min(TWO_FACTOR_CEILING))
            .max(stepped),
    )
}

/// The methods after adding `method` as a second factor: RFC 8176 "mfa: Multiple-factor
/// authentication. When this is present, specific authentication methods used may also be
/// included."
pub fn with_second_factor(amr: &[String], method: &str) -> Vec<String> {
    let mut out: Vec<String> = amr
        .iter()
        .filter(|m| *m != method && *m != "mfa")
        .cloned()
        .collect();
    out.push(method.to_owned());
    out.push("mfa".to_owned());
    out
}

/// What a request needs: `must` may not be missed (an essential `acr` claim, the client's
/// registered minimum), `wish` is asked for when it can be reached (`acr_values`, OIDC Core
/// §3.1.2.1: "Voluntary Claim"), and `two_factors` says the account must always use two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Requirement {
    pub must: u8,
    pub wish: u8,
    pub two_factors: bool,
}

impl Requirement {
    pub fn of(request: &AuthorizeRequest, client: &Client, two_factors: bool) -> Self {
        let must = request
            .acr_essential
            .unwrap_or(0)
            .max(client.settings().min_level.unwrap_or(0));
        let wish = if request.step_up_declined {
            must
        } else {
            request.min_level().unwrap_or(0).max(must)
        };
        Self {
            must,
            wish,
            two_factors,
        }
    }
}

/// What this person can still do in this session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reach {
    /// The account's proofing level now.
    pub proofed: u8,
    /// A face check can raise the proofing level (the service is configured and the account is
    /// proofed against the register, so there is a photo to match).
    pub face: bool,
    /// The account has a second factor enrolled.
    pub has_factor: bool,
}

/// What the session lacks for the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepUp {
    /// Nothing: the request gets the session's level.
    Enough,
    /// A second factor (which the person has).
    SecondFactor,
    /// The account must enrol a second factor first (two-factor accounts without one).
    Enrol,
    /// A face check, to raise the account's proofing level.
    Proofing,
    /// The essential level cannot be reached in any way.
    Unmet,
}

/// Whether a session at `session_level` with methods `amr` may fall short of `req`: when not,
/// [`step_up`] is [`StepUp::Enough`] whatever the account can still do, and nothing more need be
/// read.
pub fn may_fall_short(req: Requirement, session_level: u8, amr: &[String]) -> bool {
    let two_missing =
        req.two_factors && !has_second_factor(amr) && method_ceiling(amr) < TWO_FACTOR_CEILING;
    two_missing || session_level < req.must.max(req.wish)
}

/// Decides the step-up of `session_level` (already min(`reach.proofed`, method ceiling)) with
/// methods `amr`. Asks only for what is missing, and only for what can be reached: a voluntary
/// level out of reach gives the level reached; an essential one gives [`StepUp::Unmet`].
pub fn step_up(req: Requirement, session_level: u8, amr: &[String], reach: &Reach) -> StepUp {
    let second = has_second_factor(amr);
    if req.two_factors && !second && method_ceiling(amr) < TWO_FACTOR_CEILING {
        return if reach.has_factor {
            StepUp::SecondFactor
        } else {
            StepUp::Enrol
        };
    }
    let target = req.must.max(req.wish);
    if session_level >= target {
        return StepUp::Enough;
    }
    let proof_max = if reach.face {
        reach.proofed.max(FACE_LEVEL)
    } else {
        reach.proofed
    };
    let method_max = if reach.has_factor {
        TWO_FACTOR_CEILING.max(method_ceiling(amr))
    } else {
        method_ceiling(amr)
    };
    let goal = target.min(proof_max).min(method_max);
    if goal < req.must {
        return StepUp::Unmet;
    }
    if session_level >= goal {
        StepUp::Enough
    } else if reach.proofed < goal {
        StepUp::Proofing
    } else {
        StepUp::SecondFactor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amr(m: &[&str]) -> Vec<String> {
        m.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn ceilings_follow_the_methods() {
        assert_eq!(method_ceiling(&amr(&["pwd"])), 2);
        assert_eq!(method_ceiling(&amr(&["sms"])), 2);
        assert_eq!(method_ceiling(&amr(&["pwd", "otp", "mfa"])), 3);
        assert_eq!(method_ceiling(&amr(&["sms", "hwk", "mfa"])), 3);
        assert_eq!(method_ceiling(&amr(&["hwk", "mfa"])), 3);
        assert_eq!(method_ceiling(&amr(&["otp"])), 1, "a second factor alone");
        assert_eq!(session_level(2, &amr(&["pwd", "otp", "mfa"])), 2);
        assert_eq!(session_level(3, &amr(&["pwd"])), 2);
        assert_eq!(
            with_second_factor(&amr(&["pwd"]), "otp"),
            amr(&["pwd", "otp", "mfa"])
        );
    }

    #[test]
    fn a_session_that_cannot_fall_short_needs_nothing_read() {
        let pwd = amr(&["pwd"]);
        for (req, level, amr) in [
            (req(0, 2), 2, pwd.clone()),
            (req(3, 3), 3, amr(&["pwd", "otp", "mfa"])),
            (req(0, 0), 1, amr(&["sms"])),
        ] {
            assert!(!may_fall_short(req, level, &amr));
            for has_factor in [true, false] {
                let reach = Reach {
                    has_factor,
                    ..PROOFED_3_WITH_TOTP
                };
                assert_eq!(step_up(req, level, &amr, &reach), StepUp::Enough);
            }
        }
        assert!(may_fall_short(req(0, 3), 2, &pwd));
    }

    #[test]
    fn a_qr_sign_in_is_worth_the_app_sessions_level() {
        let qr = amr(&["qr"]);
        assert_eq!(
            session_level_with(3, &qr, 1),
            1,
            "never more than the app session"
        );
        assert_eq!(session_level_with(3, &qr, 2), 2);
        assert_eq!(session_level_with(3, &qr, 4), 3, "at most 3");
        assert_eq!(
            session_level_with(2, &qr, 3),
            2,
            "never more than the proofing"
        );
        assert_eq!(session_level_with(3, &amr(&["qr", "otp", "mfa"]), 2), 3);
        assert_eq!(session_level_with(3, &amr(&["pwd"]), 0), 2);
    }

    const PROOFED_3_WITH_TOTP: Reach = Reach {
        proofed: 3,
        face: false,
        has_factor: true,
    };

    fn req(must: u8, wish: u8) -> Requirement {
        Requirement {
            must,
            wish,
            two_factors: false,
        }
    }

    #[test]
    fn asks_only_for_what_is_missing() {
        let pwd = amr(&["pwd"]);
        assert_eq!(
            step_up(req(0, 2), 2, &pwd, &PROOFED_3_WITH_TOTP),
            StepUp::Enough
        );
        assert_eq!(
            step_up(req(3, 3), 2, &pwd, &PROOFED_3_WITH_TOTP),
            StepUp::SecondFactor
        );
        assert_eq!(
            step_up(req(0, 3), 2, &pwd, &PROOFED_3_WITH_TOTP),
            StepUp::SecondFactor,
            "a voluntary level is asked for when it can be reached"
        );
        let proofed_2 = Reach {
            proofed: 2,
            face: true,
            has_factor: true,
        };
        assert_eq!(step_up(req(3, 3), 2, &pwd, &proofed_2), StepUp::Proofing);
        let two = amr(&["pwd", "otp", "mfa"]);
        assert_eq!(
            step_up(req(3, 3), 2, &two, &proofed_2),
            StepUp::Proofing,
            "two factors already: only the proofing is missing"
        );
    }

    #[test]
    fn out_of_reach_is_unmet_when_essential_and_the_level_reached_when_not() {
        let pwd = amr(&["pwd"]);
        let proofed_2 = Reach {
            proofed: 2,
            face: false,
            has_factor: true,
        };
        assert_eq!(step_up(req(3, 3), 2, &pwd, &proofed_2), StepUp::Unmet);
        assert_eq!(step_up(req(0, 3), 2, &pwd, &proofed_2), StepUp::Enough);
        let no_factor = Reach {
            proofed: 3,
            face: false,
            has_factor: false,
        };
        assert_eq!(step_up(req(3, 3), 2, &pwd, &no_factor), StepUp::Unmet);
        assert_eq!(
            step_up(
                req(4, 4),
                3,
                &amr(&["pwd", "otp", "mfa"]),
                &PROOFED_3_WITH_TOTP
            ),
            StepUp::Unmet,
            "no method reaches 4"
        );
        assert_eq!(
            step_up(req(2, 4), 2, &pwd, &PROOFED_3_WITH_TOTP),
            StepUp::SecondFactor,
            "a wish of 4 is met as far as it can be: 3"
        );
    }

    #[test]
    fn two_factor_accounts_always_use_two() {
        let rule = Requirement {
            must: 0,
            wish: 0,
            two_factors: true,
        };
        let pwd = amr(&["pwd"]);
        assert_eq!(
            step_up(rule, 2, &pwd, &PROOFED_3_WITH_TOTP),
            StepUp::SecondFactor
        );
        let none = Reach {
            has_factor: false,
            ..PROOFED_3_WITH_TOTP
        };
        assert_eq!(step_up(rule, 2, &pwd, &none), StepUp::Enrol);
        assert_eq!(
            step_up(rule, 3, &amr(&["pwd", "otp", "mfa"]), &PROOFED_3_WITH_TOTP),
            StepUp::Enough
        );
    }
}
