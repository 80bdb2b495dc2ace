//! Selection criteria: the scoring grids committees will fill, per measure and, where a
//! territory has its own call, per territory, with their weights and bonuses.

use crate::diag::{Diagnostic, SourceFile};
use crate::rules::Rules;
use crate::value::Type;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCriteriaFile {
    grilles: Vec<RawGrid>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrid {
    id: String,
    nom: String,
    mesures: Vec<String>,
    #[serde(default)]
    territoire: Option<String>,
    sources: Vec<String>,
    criteres: Vec<RawCriterion>,
    #[serde(default)]
    bonus: Vec<RawBonus>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCriterion {
    id: String,
    nom: String,
    description: String,
    poids: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBonus {
    id: String,
    nom: String,
    si: String,
    points: u32,
    source: String,
}

#[derive(Debug, Clone)]
pub struct Criterion {
    pub id: String,
    pub name: String,
    pub description: String,
    pub weight: u32,
}

#[derive(Debug, Clone)]
pub struct Bonus {
    pub id: String,
    pub name: String,
    /// A boolean fact (`en_zrr`).
    pub fact: String,
    pub points: u32,
    pub source: String,
}

#[derive(Debug, Clone)]
pub struct Grid {
    pub id: String,
    pub name: String,
    pub measures: Vec<String>,
    pub territory: Option<String>,
    pub sources: Vec<String>,
    pub criteria: Vec<Criterion>,
    pub bonuses: Vec<Bonus>,
}

#[derive(Debug, Clone, Default)]
pub struct Criteria {
    pub grids: Vec<Grid>,
}

impl Criteria {
    pub(crate) fn build(
        raw: RawCriteriaFile,
        file: &SourceFile,
        rules: &Rules,
        measures: &[String],
        diags: &mut Vec<Diagnostic>,
    ) -> Criteria {
        let mut grids = Vec::new();
        for g in raw.grilles {
            let anchor = format!("id: {}", g.id);
            for m in &g.mesures {
                if !measures.contains(m) {
                    diags.push(file.after(
                        &anchor,
                        Some(m),
                        format!("grille {} : mesure inconnue « {m} »", g.id),
                    ));
                }
            }
            if let Some(t) = &g.territoire {
                if !rules.variants.iter().any(|v| v.code.as_deref() == Some(t)) {
                    diags.push(file.after(
                        &anchor,
                        Some(t),
                        format!(
                            "grille {} : territoire « {t} » sans variante déclarée",
                            g.id
                        ),
                    ));
                }
            }
            if g.criteres.is_empty() {
                diags.push(file.after(&anchor, None, format!("grille {} : aucun critère", g.id)));
            }
            let mut bonuses = Vec::new();
            for b in g.bonus {
                match rules.fact(&b.si).map(|i| rules.facts[i].ty) {
                    Some(Type::Booleen) => {}
                    Some(t) => diags.push(file.after(&anchor, Some(&b.si), format!("grille {} : bonus « {} » : le fait « {} » est un {}, un booléen est attendu", g.id, b.id, b.si, t.label()))),
                    None => diags.push(file.after(&anchor, Some(&b.si), format!("grille {} : bonus « {} » : fait inconnu « {} »", g.id, b.id, b.si))),
                }
                bonuses.push(Bonus {
                    id: b.id,
                    name: b.nom,
                    fact: b.si,
                    points: b.points,
                    source: b.source,
                });
            }
            grids.push(Grid {
                criteria: g
                    .criteres
                    .into_iter()
                    .map(|c| Criterion {
                        id: c.id,
                        name: c.nom,
                        description: c.description,
                        weight: c.poids,
                    })
                    .collect(),
                id: g.id,
                name: g.nom,
                measures: g.mesures,
                territory: g.territoire,
                sources: g.sources,
                bonuses,
            });
        }
        Criteria { grids }
    }

    /// The grid that applies to a measure in a territory: the territory's own, else the
    /// national one.
    pub fn grid_for(&self, measure: &str, territory: Option<&str>) -> Option<&Grid> {
        let of_measure = |g: &&Grid| g.measures.iter().any(|m| m == measure);
        self.grids
            .iter()
            .filter(of_measure)
            .find(|g| territory.is_some() && g.territory.as_deref() == territory)
            .or_else(|| {
                self.grids
                    .iter()
                    .filter(of_measure)
                    .find(|g| g.territory.is_none())
            })
    }
}
