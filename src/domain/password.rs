//! The password policy of classified protection level 3 (docs/security.md): at least `min_length`
//! characters from at least `min_classes` of lower case, upper case, digits and other characters; not
//! containing the holder's ID number or phone number. Reuse of recent passwords needs the stored
//! hashes and is checked by the caller.

use std::fmt;

/// A password as typed. `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

#[derive(Debug, Clone, Copy)]
pub struct PasswordPolicy {
    pub min_length: usize,
    pub max_length: usize,
    pub min_classes: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: 8,
            max_length: 128,
            min_classes: 3,
        }
    }
}

/// Why a new password was refused, in words a citizen understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the password must have at least {0} characters")]
    TooShort(usize),
    #[error("the password must have at most {0} characters")]
    TooLong(usize),
    #[error(
        "the password must mix at least {0} of: lower-case letters, upper-case letters, digits, other characters"
    )]
    TooFewClasses(usize),
    #[error("the password must not contain your ID number or phone number")]
    ContainsPersonalNumber,
    #[error("the password must not contain control characters")]
    ControlCharacter,
    #[error("the password must differ from your last {0} passwords")]
    Reused(usize),
}

impl PasswordPolicy {
    /// `personal`: the holder's document numbers (and legacy aliases) and phone number.
    pub fn check(&self, password: &Password, personal: &[&str]) -> Result<(), PolicyError> {
        let p = password.expose();
        let length = p.chars().count();
        if length < self.min_length {
            return Err(PolicyError::TooShort(self.min_length));
        }
        if length > self.max_length {
            return Err(PolicyError::TooLong(self.max_length));
        }
        if p.chars().any(char::is_control) {
            return Err(PolicyError::ControlCharacter);
        }
        let classes = [
            p.chars().any(|c| c.is_lowercase()),
            p.chars().any(|c| c.is_uppercase()),
            p.chars().any(|c| c.is_ascii_digit()),
            p.chars().any(|c| !c.is_alphanumeric()),
        ];
        if classes.iter().filter(|&&c| c).count() < self.min_classes {
            return Err(PolicyError::TooFewClasses(self.min_classes));
        }
        let lowered = p.to_lowercase();
        // The number, or its distinctive tail: "Abc138001380001!" and "Xx1234567890123X" both leak it.
        for number in personal.iter().filter(|n| n.len() >= 6) {
            let n = number.to_lowercase();
            let tail = &n[n.len().saturating_sub(8)..];
            if lowered.contains(&n) || lowered.contains(tail) {
                return Err(PolicyError::ContainsPersonalNumber);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_3_password_rules() {
        let policy = PasswordPolicy::default();
        let check =
            |p: &str| policy.check(&Password::new(p), &["11010519491231002X", "13812341234"]);
        check("Correct-Horse9").unwrap();
        check("密码Abc123!").unwrap();
        assert_eq!(check("Ab1!"), Err(PolicyError::TooShort(8)));
        assert_eq!(check("alllowercase1"), Err(PolicyError::TooFewClasses(3)));
        assert_eq!(
            check("Aa11010519491231002x"),
            Err(PolicyError::ContainsPersonalNumber)
        );
        assert_eq!(
            check("Pw!13812341234"),
            Err(PolicyError::ContainsPersonalNumber)
        );
        assert_eq!(
            check("Pw!x12341234"),
            Err(PolicyError::ContainsPersonalNumber),
            "phone tail"
        );
        assert_eq!(check("Abc\u{7}defg1"), Err(PolicyError::ControlCharacter));
        assert_eq!(check(&"Aa1!".repeat(40)), Err(PolicyError::TooLong(128)));
        assert!(!format!("{:?}", Password::new("Correct-Horse9")).contains("Horse"));
    }
}
