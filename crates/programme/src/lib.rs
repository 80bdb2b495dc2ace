//! Programme definitions as data. A programme file (YAML, under `programmes/`) names the
//! programme, the referential vintage it pins, its envelopes and its measures with their
//! canonical identifiers. Parsing validates identifiers and amounts; nothing here does I/O
//! beyond turning text into types, so the same definitions serve the web, the CLI and tests.

use chrono::NaiveDate;
use guichet_domain::{Cents, Vintage};
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ProgrammeError {
    #[error("fichier de programme illisible : {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("programme invalide : {0}")]
    Invalid(String),
}

/// A measure identifier such as `axe3.v1.expert`: dot-separated lower-case segments.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MeasureId(String);

impl MeasureId {
    pub fn parse(input: &str) -> Result<Self, ProgrammeError> {
        let ok = !input.is_empty()
            && input.split('.').all(|seg| {
                !seg.is_empty()
                    && seg
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            });
        if ok {
            Ok(Self(input.to_string()))
        } else {
            Err(ProgrammeError::Invalid(format!(
                "identifiant de mesure invalide : « {input} »"
            )))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProgramme {
    id: String,
    nom: String,
    fonds: String,
    millesime_referentiel: u16,
    enveloppe_euros: i64,
    pilotes: Vec<String>,
    axes: Vec<RawAxe>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAxe {
    id: String,
    nom: String,
    enveloppe_euros: Option<i64>,
    pilote: String,
    mesures: Vec<RawMesure>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMesure {
    id: String,
    nom: String,
    resume: String,
    instruction: String,
    beneficiaires: String,
    #[serde(default)]
    ouverture: Option<NaiveDate>,
    #[serde(default)]
    cloture: Option<NaiveDate>,
    sources: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Programme {
    pub id: String,
    pub name: String,
    pub fund: String,
    pub vintage: Vintage,
    pub envelope: Cents,
    pub pilots: Vec<String>,
    pub axes: Vec<Axis>,
}

#[derive(Debug, Clone)]
pub struct Axis {
    pub id: String,
    pub name: String,
    pub envelope: Option<Cents>,
    pub pilot: String,
    pub measures: Vec<Measure>,
}

#[derive(Debug, Clone)]
pub struct Measure {
    pub id: MeasureId,
    pub name: String,
    pub summary: String,
    /// Who instructs: `departement`, `region` or `national`.
    pub instruction: String,
    pub beneficiaries: String,
    pub opens: Option<NaiveDate>,
    pub closes: Option<NaiveDate>,
    pub sources: Vec<String>,
}

impl Programme {
    pub fn from_yaml(text: &str) -> Result<Self, ProgrammeError> {
        let raw: RawProgramme = serde_yaml::from_str(text)?;
        let vintage = Vintage::from_year(raw.millesime_referentiel)
            .map_err(|e| ProgrammeError::Invalid(e.to_string()))?;
        let euros = |v: i64, what: &str| {
            if v < 0 {
                return Err(ProgrammeError::Invalid(format!(
                    "enveloppe négative : {what}"
                )));
            }
            v.checked_mul(100)
                .map(Cents::new)
                .ok_or_else(|| ProgrammeError::Invalid(format!("enveloppe trop grande : {what}")))
        };
        let mut seen = std::collections::BTreeSet::new();
        let mut axes = Vec::new();
        for a in raw.axes {
            let mut measures = Vec::new();
            for m in a.mesures {
                let id = MeasureId::parse(&m.id)?;
                if !seen.insert(id.clone()) {
                    return Err(ProgrammeError::Invalid(format!(
                        "mesure en double : {}",
                        m.id
                    )));
                }
                if !["departement", "region", "national"].contains(&m.instruction.as_str()) {
                    return Err(ProgrammeError::Invalid(format!(
                        "mesure {} : instruction « {} » inconnue (departement, region ou national)",
                        m.id, m.instruction
                    )));
                }
                if let (Some(o), Some(c)) = (m.ouverture, m.cloture) {
                    if c < o {
                        return Err(ProgrammeError::Invalid(format!(
                            "mesure {} : clôture avant ouverture",
                            m.id
                        )));
                    }
                }
                measures.push(Measure {
                    id,
                    name: m.nom,
                    summary: m.resume,
                    instruction: m.instruction,
                    beneficiaries: m.beneficiaires,
                    opens: m.ouverture,
                    closes: m.cloture,
                    sources: m.sources,
                });
            }
            axes.push(Axis {
                envelope: a.enveloppe_euros.map(|v| euros(v, &a.id)).transpose()?,
                id: a.id,
                name: a.nom,
                pilot: a.pilote,
                measures,
            });
        }
        Ok(Programme {
            envelope: euros(raw.enveloppe_euros, &raw.id)?,
            id: raw.id,
            name: raw.nom,
            fund: raw.fonds,
            vintage,
            pilots: raw.pilotes,
            axes,
        })
    }

    pub fn measure(&self, id: &str) -> Option<&Measure> {
        self.axes
            .iter()
            .flat_map(|a| a.measures.iter())
            .find(|m| m.id.as_str() == id)
    }
}

/// The ITN7 programme file shipped with Guichet, compiled in so the binary is self-sufficient;
/// a deployment may point `GUICHET_PROGRAMME` at another file.
pub const ITN7_YAML: &str = include_str!("../../../programmes/itn7/programme.yaml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_itn7_file_parses_and_sums_up() {
        let p = Programme::from_yaml(ITN7_YAML).unwrap();
        assert_eq!(p.vintage, Vintage::Y2021);
        assert_eq!(p.envelope, Cents::from_euros(88_000_000));
        let axes_total: i64 = p
            .axes
            .iter()
            .filter_map(|a| a.envelope)
            .map(|c| c.get())
            .sum();
        assert_eq!(Cents::new(axes_total), p.envelope);
        assert!(p.measure("axe3.v1.dematads").is_some());
        assert!(p.measure("axe9").is_none());
    }

    #[test]
    fn bad_identifiers_are_refused() {
        assert!(MeasureId::parse("Axe3 v1").is_err());
        assert!(MeasureId::parse("axe3..v1").is_err());
        assert!(MeasureId::parse("axe3.v1.relation-usager").is_ok());
    }
}
