//! Official identifiers, parsed at the edge into newtypes that cannot hold an invalid value.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("code INSEE invalide : « {0} » (5 caractères, par exemple 95127 ou 2A004)")]
    Insee(String),
    #[error("numéro SIREN invalide : « {0} » (9 chiffres)")]
    Siren(String),
    #[error("numéro SIRET invalide : « {0} » (14 chiffres)")]
    Siret(String),
    #[error("code de département invalide : « {0} » (par exemple 95, 2A ou 974)")]
    Departement(String),
    #[error("code de région invalide : « {0} » (2 chiffres, par exemple 11)")]
    Region(String),
    #[error("code postal invalide : « {0} » (5 chiffres)")]
    Postal(String),
    #[error("millésime inconnu : « {0} » (millésimes disponibles : {list})", list = Vintage::ALL_LABEL)]
    Vintage(String),
}

fn luhn_ok(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, ch) in digits.chars().rev().enumerate() {
        let Some(mut d) = ch.to_digit(10) else {
            return false;
        };
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// A commune's INSEE code (code officiel géographique): 5 characters, Corsica uses 2A/2B.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InseeCode(String);
string_newtype!(InseeCode);

impl InseeCode {
    pub fn parse(input: &str) -> Result<Self, CodeError> {
        let s = input.trim().to_ascii_uppercase();
        let ok = s.len() == 5
            && (s[..2].chars().all(|c| c.is_ascii_digit()) || &s[..2] == "2A" || &s[..2] == "2B")
            && s[2..].chars().all(|c| c.is_ascii_digit());
        if ok {
            Ok(Self(s))
        } else {
            Err(CodeError::Insee(input.trim().to_string()))
        }
    }

    /// The département this commune belongs to (3 characters overseas).
    pub fn departement(&self) -> DepartementCode {
        let len = if self.0.starts_with("97") || self.0.starts_with("98") {
            3
        } else {
            2
        };
        DepartementCode(self.0[..len].to_string())
    }
}

impl TryFrom<String> for InseeCode {
    type Error = CodeError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<InseeCode> for String {
    fn from(value: InseeCode) -> Self {
        value.0
    }
}

/// A SIREN number (9 digits, Luhn checksum).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Siren(String);
string_newtype!(Siren);

impl Siren {
    pub fn parse(input: &str) -> Result<Self, CodeError> {
        let s: String = input.chars().filter(|c| !c.is_whitespace()).collect();
        if s.len() == 9 && s.chars().all(|c| c.is_ascii_digit()) && luhn_ok(&s) {
            Ok(Self(s))
        } else {
            Err(CodeError::Siren(input.trim().to_string()))
        }
    }
}
impl TryFrom<String> for Siren {
    type Error = CodeError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<Siren> for String {
    fn from(value: Siren) -> Self {
        value.0
    }
}

/// A SIRET number (14 digits, Luhn checksum; La Poste's establishments use a digit sum rule).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Siret(String);
string_newtype!(Siret);

impl Siret {
    pub fn parse(input: &str) -> Result<Self, CodeError> {
        let s: String = input.chars().filter(|c| !c.is_whitespace()).collect();
        let digits_ok = s.len() == 14 && s.chars().all(|c| c.is_ascii_digit());
        let checksum_ok = digits_ok
            && (luhn_ok(&s)
                || (s.starts_with("356000000")
                    && s.chars()
                        .filter_map(|c| c.to_digit(10))
                        .sum::<u32>()
                        .is_multiple_of(5)));
        if checksum_ok {
            Ok(Self(s))
        } else {
            Err(CodeError::Siret(input.trim().to_string()))
        }
    }

    pub fn siren(&self) -> Siren {
        Siren(self.0[..9].to_string())
    }
}
impl TryFrom<String> for Siret {
    type Error = CodeError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<Siret> for String {
    fn from(value: Siret) -> Self {
        value.0
    }
}

/// A département code: 01–95 (no 20), 2A, 2B, or an overseas 97x code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DepartementCode(String);
string_newtype!(DepartementCode);

impl DepartementCode {
    pub fn parse(input: &str) -> Result<Self, CodeError> {
        let s = input.trim().to_ascii_uppercase();
        let ok = match s.len() {
            2 => {
                s == "2A"
                    || s == "2B"
                    || (s.chars().all(|c| c.is_ascii_digit())
                        && s != "00"
                        && s != "20"
                        && s != "96")
                        && s.as_str() <= "95"
            }
            3 => s.starts_with("97") && s.chars().all(|c| c.is_ascii_digit()),
            _ => false,
        };
        if ok {
            Ok(Self(s))
        } else {
            Err(CodeError::Departement(input.trim().to_string()))
        }
    }
}
impl TryFrom<String> for DepartementCode {
    type Error = CodeError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<DepartementCode> for String {
    fn from(value: DepartementCode) -> Self {
        value.0
    }
}

/// A région code (2 digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RegionCode(String);
string_newtype!(RegionCode);

impl RegionCode {
    pub fn parse(input: &str) -> Result<Self, CodeError> {
        let s = input.trim();
        if s.len() == 2 && s.chars().all(|c| c.is_ascii_digit()) {
            Ok(Self(s.to_string()))
        } else {
            Err(CodeError::Region(s.to_string()))
        }
    }
}
impl TryFrom<String> for RegionCode {
    type Error = CodeError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<RegionCode> for String {
    fn from(value: RegionCode) -> Self {
        value.0
    }
}

/// A French postcode (5 digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PostalCode(String);
string_newtype!(PostalCode);

impl PostalCode {
    pub fn parse(input: &str) -> Result<Self, CodeError> {
        let s = input.trim();
        if s.len() == 5 && s.chars().all(|c| c.is_ascii_digit()) {
            Ok(Self(s.to_string()))
        } else {
            Err(CodeError::Postal(s.to_string()))
        }
    }
}

/// A vintage ("millésime") of the territorial referential. A programme pins one; ITN7 pins 2021.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub enum Vintage {
    Y2021,
    Y2026,
}

impl Vintage {
    pub const ALL: [Vintage; 2] = [Vintage::Y2021, Vintage::Y2026];
    const ALL_LABEL: &'static str = "2021, 2026";

    pub fn year(self) -> u16 {
        match self {
            Vintage::Y2021 => 2021,
            Vintage::Y2026 => 2026,
        }
    }

    pub fn from_year(year: u16) -> Result<Self, CodeError> {
        match year {
            2021 => Ok(Vintage::Y2021),
            2026 => Ok(Vintage::Y2026),
            other => Err(CodeError::Vintage(other.to_string())),
        }
    }

    pub fn parse(input: &str) -> Result<Self, CodeError> {
        input
            .trim()
            .parse::<u16>()
            .map_err(|_| CodeError::Vintage(input.trim().to_string()))
            .and_then(Self::from_year)
    }

    /// The vintage in force at a given year: the latest one not after it, else the oldest.
    pub fn in_force(year: i32, available: &[Vintage]) -> Option<Vintage> {
        let mut sorted: Vec<Vintage> = available.to_vec();
        sorted.sort();
        sorted
            .iter()
            .rev()
            .find(|v| i32::from(v.year()) <= year)
            .or_else(|| sorted.first())
            .copied()
    }
}

impl fmt::Display for Vintage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.year())
    }
}
impl TryFrom<u16> for Vintage {
    type Error = CodeError;
    fn try_from(value: u16) -> Result<Self, Self::Error> {
        Self::from_year(value)
    }
}
impl From<Vintage> for u16 {
    fn from(value: Vintage) -> Self {
        value.year()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insee_codes() {
        assert_eq!(
            InseeCode::parse("95127").map(|c| c.departement().to_string()),
            Ok("95".into())
        );
        assert_eq!(
            InseeCode::parse("2a004").map(|c| c.to_string()),
            Ok("2A004".into())
        );
        assert_eq!(
            InseeCode::parse("97411").map(|c| c.departement().to_string()),
            Ok("974".into())
        );
        assert!(InseeCode::parse("9512").is_err());
        assert!(InseeCode::parse("9X127").is_err());
    }

    #[test]
    fn siren_and_siret_checksums() {
        assert!(Siren::parse("219501277").is_ok());
        assert!(Siren::parse("219501278").is_err());
        assert!(Siren::parse("21950127").is_err());
        assert!(Siret::parse("21950127700004").is_ok());
        assert!(Siret::parse("21950127700005").is_err());
    }

    #[test]
    fn departements() {
        for ok in ["01", "2A", "2B", "95", "974"] {
            assert!(DepartementCode::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["20", "00", "96", "9", "2C", "100"] {
            assert!(DepartementCode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn vintage_in_force() {
        let all = Vintage::ALL;
        assert_eq!(Vintage::in_force(2021, &all), Some(Vintage::Y2021));
        assert_eq!(Vintage::in_force(2024, &all), Some(Vintage::Y2021));
        assert_eq!(Vintage::in_force(2027, &all), Some(Vintage::Y2026));
        assert_eq!(Vintage::in_force(2019, &all), Some(Vintage::Y2021));
        assert_eq!(
            Vintage::in_force(2021, &[Vintage::Y2026]),
            Some(Vintage::Y2026)
        );
        assert_eq!(Vintage::in_force(2021, &[]), None);
        assert!(Vintage::parse("2022").is_err());
    }
}
