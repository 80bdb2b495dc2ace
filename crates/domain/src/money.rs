//! Money as integer cents. No floating point ever touches an amount.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An amount in euro cents. Arithmetic is checked: an overflow is an error, never a wrap.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct Cents(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("montant invalide : « {0} » (exemple attendu : 1 234,56)")]
    Invalid(String),
    #[error("montant trop grand")]
    Overflow,
}

impl Cents {
    pub const ZERO: Cents = Cents(0);

    pub const fn new(cents: i64) -> Self {
        Cents(cents)
    }

    pub const fn from_euros(euros: i64) -> Self {
        Cents(euros * 100)
    }

    pub const fn get(self) -> i64 {
        self.0
    }

    /// Whole amounts without cents (`88 000 000 €`), others as `Display`.
    pub fn to_short_string(self) -> String {
        if self.0 % 100 == 0 {
            let sign = if self.0 < 0 { "-" } else { "" };
            format!(
                "{sign}{}\u{a0}€",
                crate::text::group_thousands((self.0 / 100).unsigned_abs())
            )
        } else {
            self.to_string()
        }
    }

    pub fn checked_add(self, other: Cents) -> Result<Cents, MoneyError> {
        self.0
            .checked_add(other.0)
            .map(Cents)
            .ok_or(MoneyError::Overflow)
    }

    pub fn checked_sub(self, other: Cents) -> Result<Cents, MoneyError> {
        self.0
            .checked_sub(other.0)
            .map(Cents)
            .ok_or(MoneyError::Overflow)
    }

    pub fn checked_mul(self, factor: i64) -> Result<Cents, MoneyError> {
        self.0
            .checked_mul(factor)
            .map(Cents)
            .ok_or(MoneyError::Overflow)
    }

    /// Parses a French-written amount in euros: `1234`, `1 234,5`, `1234.56`, `1 234,56 €`.
    /// At most two decimals; negative amounts are refused.
    pub fn parse_euros(input: &str) -> Result<Cents, MoneyError> {
        let invalid = || MoneyError::Invalid(input.trim().to_string());
        let cleaned: String = input
            .trim()
            .trim_end_matches('€')
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '\u{202f}' && *c != '\u{a0}')
            .collect();
        if cleaned.is_empty() {
            return Err(invalid());
        }
        let cleaned = cleaned.replace(',', ".");
        let (whole, frac) = match cleaned.split_once('.') {
            Some((w, f)) => (w, f),
            None => (cleaned.as_str(), ""),
        };
        if whole.is_empty()
            || !whole.chars().all(|c| c.is_ascii_digit())
            || frac.len() > 2
            || !frac.chars().all(|c| c.is_ascii_digit())
        {
            return Err(invalid());
        }
        let euros: i64 = whole.parse().map_err(|_| MoneyError::Overflow)?;
        let mut cents: i64 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| invalid())?
        };
        if frac.len() == 1 {
            cents *= 10;
        }
        euros
            .checked_mul(100)
            .and_then(|v| v.checked_add(cents))
            .map(Cents)
            .ok_or(MoneyError::Overflow)
    }
}

/// French display: `1 234,56 €` with a narrow no-break space as thousands separator.
impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let negative = self.0 < 0;
        let abs = self.0.unsigned_abs();
        let euros = abs / 100;
        let cents = abs % 100;
        let grouped = crate::text::group_thousands(euros);
        if negative {
            write!(f, "-")?;
        }
        write!(f, "{grouped},{cents:02}\u{a0}€")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_french_amounts() {
        assert_eq!(Cents::parse_euros("1 234,56 €"), Ok(Cents::new(123_456)));
        assert_eq!(Cents::parse_euros("297000"), Ok(Cents::from_euros(297_000)));
        assert_eq!(Cents::parse_euros("12,5"), Ok(Cents::new(1250)));
        assert!(Cents::parse_euros("12,555").is_err());
        assert!(Cents::parse_euros("-3").is_err());
        assert!(Cents::parse_euros("abc").is_err());
        assert!(Cents::parse_euros("").is_err());
        assert_eq!(
            Cents::parse_euros("99999999999999999999"),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn displays_in_french() {
        assert_eq!(
            Cents::new(207_920_800).to_string(),
            "2\u{202f}079\u{202f}208,00\u{a0}€"
        );
        assert_eq!(Cents::new(5).to_string(), "0,05\u{a0}€");
    }

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(
            Cents::new(i64::MAX).checked_add(Cents::new(1)),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Cents::from_euros(297_000).checked_mul(7),
            Ok(Cents::from_euros(2_079_000))
        );
    }
}
