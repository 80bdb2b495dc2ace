//! Collectivités and their place in the territory.

use crate::codes::{CodeError, DepartementCode, InseeCode, RegionCode, Siren};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// The kinds of collectivité Guichet knows from the referential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CollectiviteKind {
    Commune,
    Epci,
    Departement,
    Region,
}

impl CollectiviteKind {
    pub fn slug(self) -> &'static str {
        match self {
            CollectiviteKind::Commune => "commune",
            CollectiviteKind::Epci => "epci",
            CollectiviteKind::Departement => "departement",
            CollectiviteKind::Region => "region",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            CollectiviteKind::Commune => "Commune",
            CollectiviteKind::Epci => "Intercommunalité (EPCI)",
            CollectiviteKind::Departement => "Département",
            CollectiviteKind::Region => "Région",
        }
    }

    pub fn parse(input: &str) -> Result<Self, TerritoryError> {
        match input.trim().to_ascii_lowercase().as_str() {
            "commune" => Ok(CollectiviteKind::Commune),
            "epci" => Ok(CollectiviteKind::Epci),
            "departement" | "département" => Ok(CollectiviteKind::Departement),
            "region" | "région" => Ok(CollectiviteKind::Region),
            other => Err(TerritoryError::UnknownKind(other.to_string())),
        }
    }
}

impl fmt::Display for CollectiviteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.slug())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TerritoryError {
    #[error("type de collectivité inconnu : « {0} » (commune, epci, departement ou region)")]
    UnknownKind(String),
    #[error("référence de collectivité invalide : « {0} » (forme attendue TYPE:CODE, par exemple commune:95127)")]
    BadReference(String),
    #[error(transparent)]
    Code(#[from] CodeError),
}

/// A reference to a collectivité: its kind and its official code (INSEE for communes,
/// SIREN for EPCI, département or région code otherwise). Validated on construction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CollectiviteRef {
    pub kind: CollectiviteKind,
    pub code: String,
}

impl CollectiviteRef {
    pub fn new(kind: CollectiviteKind, code: &str) -> Result<Self, TerritoryError> {
        let code = match kind {
            CollectiviteKind::Commune => InseeCode::parse(code)?.to_string(),
            CollectiviteKind::Epci => Siren::parse(code)?.to_string(),
            CollectiviteKind::Departement => DepartementCode::parse(code)?.to_string(),
            CollectiviteKind::Region => RegionCode::parse(code)?.to_string(),
        };
        Ok(Self { kind, code })
    }

    /// Parses `TYPE:CODE`, as in `commune:95127` or `epci:200056380`.
    pub fn parse(input: &str) -> Result<Self, TerritoryError> {
        let (kind, code) = input
            .split_once(':')
            .ok_or_else(|| TerritoryError::BadReference(input.trim().to_string()))?;
        Self::from_parts(kind, code)
    }

    /// From a kind and a code given apart (URL segments, database columns).
    pub fn from_parts(kind: &str, code: &str) -> Result<Self, TerritoryError> {
        Self::new(CollectiviteKind::parse(kind)?, code)
    }
}

impl fmt::Display for CollectiviteRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.code)
    }
}

/// Where a collectivité lies: the départements and régions it touches. An EPCI may straddle
/// several départements; a région covers all of its départements.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerritoryFootprint {
    pub departements: BTreeSet<String>,
    pub regions: BTreeSet<String>,
}

impl TerritoryFootprint {
    pub fn touches_departement(&self, code: &str) -> bool {
        self.departements.contains(code)
    }
    pub fn touches_region(&self, code: &str) -> bool {
        self.regions.contains(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        let r = CollectiviteRef::parse("commune:95127");
        assert_eq!(r.map(|r| r.to_string()), Ok("commune:95127".to_string()));
        assert!(CollectiviteRef::parse("commune:9512").is_err());
        assert!(CollectiviteRef::parse("ville:95127").is_err());
        assert!(CollectiviteRef::parse("95127").is_err());
        assert!(CollectiviteRef::parse("departement:95").is_ok());
    }
}

/// Joins "de" to a place name following INSEE's TNCC code ("type de nom en clair"), as in
/// "Préfecture du Val-d'Oise", "de l'Essonne", "des Hauts-de-Seine".
pub fn de_name(liaison: i64, name: &str) -> String {
    match liaison {
        1 => format!("d’{name}"),
        5 => format!("de l’{name}"),
        2 => format!("du {name}"),
        3 => format!("de la {name}"),
        4 | 6 => format!("des {name}"),
        7 => format!("de las {name}"),
        8 => format!("de los {name}"),
        _ => format!("de {name}"),
    }
}

#[cfg(test)]
mod liaison_tests {
    use super::de_name;

    #[test]
    fn articles() {
        assert_eq!(de_name(2, "Val-d'Oise"), "du Val-d'Oise");
        assert_eq!(de_name(5, "Essonne"), "de l’Essonne");
        assert_eq!(de_name(1, "Île-de-France"), "d’Île-de-France");
        assert_eq!(de_name(4, "Hauts-de-Seine"), "des Hauts-de-Seine");
        assert_eq!(de_name(0, "Paris"), "de Paris");
    }
}
