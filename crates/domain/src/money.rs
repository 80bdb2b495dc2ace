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

/// A funding rate, in basis points (hundredths of a percent): `8000` is 80 %. Rates of a
/// grant lie between 0 % and 100 %; the engine's decimal rates convert exactly or not at all.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(try_from = "u32", into = "u32")]
pub struct Rate(u32);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    #[error("taux invalide : « {0} » (exemple attendu : 80 % ou 12,5 %)")]
    Invalid(String),
    #[error("taux hors bornes : {0} (entre 0 % et 100 %)")]
    OutOfRange(String),
}

impl Rate {
    pub const ZERO: Rate = Rate(0);
    pub const FULL: Rate = Rate(10_000);

    /// From basis points (`5000` is 50 %); above 100 % is refused.
    pub fn from_basis_points(bp: u32) -> Result<Rate, RateError> {
        if bp > Rate::FULL.0 {
            return Err(RateError::OutOfRange(format!("{bp} points de base")));
        }
        Ok(Rate(bp))
    }

    pub const fn basis_points(self) -> u32 {
        self.0
    }

    /// Parses a French-written percentage: `80`, `80 %`, `12,5 %`, `12.5%` (at most two
    /// decimals).
    pub fn parse_percent(input: &str) -> Result<Rate, RateError> {
        let invalid = || RateError::Invalid(input.trim().to_string());
        let cleaned: String = input
            .trim()
            .trim_end_matches('%')
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '\u{202f}' && *c != '\u{a0}')
            .collect::<String>()
            .replace(',', ".");
        let (whole, frac) = cleaned.split_once('.').unwrap_or((cleaned.as_str(), ""));
        if whole.is_empty()
            || whole.len() > 3
            || !whole.chars().all(|c| c.is_ascii_digit())
            || frac.len() > 2
            || !frac.chars().all(|c| c.is_ascii_digit())
        {
            return Err(invalid());
        }
        let whole: u32 = whole.parse().map_err(|_| invalid())?;
        let frac: u32 = match frac.len() {
            0 => 0,
            1 => frac.parse::<u32>().map_err(|_| invalid())? * 10,
            _ => frac.parse().map_err(|_| invalid())?,
        };
        Rate::from_basis_points(whole * 100 + frac)
    }

    /// `amount × rate`, rounded down to the cent (the programme's rounding, `centime
    /// inférieur`), computed exactly.
    pub fn apply(self, amount: Cents) -> Cents {
        let product = i128::from(amount.get()) * i128::from(self.0) / 10_000;
        // |product| ≤ |amount| because the rate is at most 100 %: it fits in an i64.
        Cents::new(i64::try_from(product).unwrap_or(amount.get()))
    }
}

impl TryFrom<u32> for Rate {
    type Error = RateError;
    fn try_from(bp: u32) -> Result<Self, Self::Error> {
        Rate::from_basis_points(bp)
    }
}

impl From<Rate> for u32 {
    fn from(rate: Rate) -> u32 {
        rate.0
    }
}

/// French display: `80 %`, `12,5 %` (no-break space before the sign).
impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.0 / 100, self.0 % 100);
        match frac {
            0 => write!(f, "{whole}\u{a0}%"),
            f10 if f10 % 10 == 0 => write!(f, "{whole},{}\u{a0}%", f10 / 10),
            _ => write!(f, "{whole},{frac:02}\u{a0}%"),
        }
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
    #[test]
    fn rates_parse_display_and_apply() {
        assert_eq!(Rate::parse_percent("80 %"), Ok(Rate(8000)));
        assert_eq!(Rate::parse_percent("12,5%"), Ok(Rate(1250)));
        assert_eq!(Rate::parse_percent("100"), Ok(Rate::FULL));
        assert_eq!(Rate::parse_percent("0,05 %"), Ok(Rate(5)));
        assert!(Rate::parse_percent("101 %").is_err());
        assert!(Rate::parse_percent("-5 %").is_err());
        assert!(Rate::parse_percent("12,555").is_err());
        assert!(Rate::parse_percent("").is_err());
        assert!(Rate::from_basis_points(10_001).is_err());
        assert_eq!(Rate(8000).to_string(), "80\u{a0}%");
        assert_eq!(Rate(1250).to_string(), "12,5\u{a0}%");
        assert_eq!(Rate(1234).to_string(), "12,34\u{a0}%");
        assert_eq!(Rate(5).to_string(), "0,05\u{a0}%");
        // 33,33 % of 100,01 € is 33,333333 €: rounded down to the cent.
        assert_eq!(Rate(3333).apply(Cents::new(10_001)), Cents::new(3333));
        assert_eq!(Rate::FULL.apply(Cents::new(i64::MAX)), Cents::new(i64::MAX));
        assert_eq!(
            Rate(5000).apply(Cents::from_euros(30_000)),
            Cents::from_euros(15_000)
        );
    }
}
