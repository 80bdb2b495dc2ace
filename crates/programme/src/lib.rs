//! Programme definitions as data, and the rules engine that reads them.
//!
//! A programme is a folder of YAML files (`programmes/itn7/`):
//! - `programme.yaml`: the catalogue: identity, pinned referential vintage, funds tree,
//!   territorial envelopes and drawing rights, axes and measures with their instructing level;
//! - `parametres.yaml`: every threshold, rate, flat amount, cap and date, each value dated and
//!   sourced, with territorial values where a territory differs;
//! - `regles.yaml`: the facts the engine reads, named rules, eligibility conditions (stable
//!   reason code + French message), expense regimes and, per measure, its conditions, expense
//!   regime, rates and amount formulas;
//! - `variantes.yaml`: what each territory (région) overrides; anything not overridden is
//!   inherited from the national default;
//! - `criteres.yaml`: the selection criteria (scoring grids) and their bonuses;
//! - `tests/*.yaml`: test cases, run by `cargo test` and `guichet programme test`.
//!
//! Nothing here does I/O: callers hand the files' text in ([`SourceFile`]), so the web, the CLI
//! and the tests share one loader, and a broken file is a list of [`Diagnostic`]s, never a crash.

pub mod cases;
pub mod criteria;
pub mod diag;
pub mod eval;
pub mod expr;
pub mod form;
pub mod routing;
pub mod rules;
pub mod value;
pub mod yaml;

pub use diag::{Diagnostic, Diagnostics, SourceFile};
pub use eval::{
    EvalError, Evaluation, Evaluator, Outcome, Prepared, Situation, Step, Verification,
};
pub use form::{Block, DocumentKind, DocumentRequirement, Field, FieldKind, Form, MeasureForm};
pub use routing::{Direction, Instruction, ProjectPlace, Routing, RoutingError};
pub use value::{Type, Value};

use chrono::NaiveDate;
use guichet_domain::dossier::NumberPrefix;
use guichet_domain::{Cents, Vintage};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// A measure identifier such as `axe3.v1.expert`: dot-separated lower-case segments.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MeasureId(String);

impl MeasureId {
    pub fn parse(input: &str) -> Result<Self, String> {
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
            Err(format!("identifiant de mesure invalide : « {input} »"))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for MeasureId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
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
    /// The first part of dossier numbers (`ITN7`); default: the identifier in upper case.
    #[serde(default)]
    numero_prefixe: Option<String>,
    #[serde(default)]
    directions_nationales: Vec<routing::RawDirection>,
    #[serde(default)]
    routage: Vec<routing::RawRoute>,
    #[serde(default)]
    formulaire: Option<form::RawForm>,
    #[serde(default)]
    arbre_des_fonds: Vec<RawFund>,
    #[serde(default)]
    enveloppes_territoriales: Vec<RawEnvelope>,
    axes: Vec<RawAxe>,
    #[serde(default)]
    plausibilite: Option<RawPlausibility>,
    #[serde(default)]
    sources: Vec<RawSource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    id: String,
    titre: String,
}

/// A document the programme's rules come from, as cited in the files (`[000]`) and named for
/// readers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub id: String,
    pub title: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlausibility {
    montant_max_euros: i64,
    date_min: NaiveDate,
    date_max: NaiveDate,
    #[serde(default)]
    nombre_max: Option<u64>,
}

/// The largest count (a number fact: population, communes…) an applicant may type, unless the
/// programme says otherwise: more than France's population by an order of magnitude.
pub const DEFAULT_MAX_COUNT: u64 = 1_000_000_000;

/// What an applicant's input may plausibly be: an amount above `max_amount` (the programme's
/// own total unless it says otherwise), a date outside `first_date..=last_date` (2000–2100
/// unless it says otherwise) or a number fact above `max_count` ([`DEFAULT_MAX_COUNT`] unless
/// it says otherwise) is a typing error, refused before any evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plausibility {
    pub max_amount: Cents,
    pub first_date: NaiveDate,
    pub last_date: NaiveDate,
    pub max_count: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFund {
    nom: String,
    montant_euros: i64,
    #[serde(default)]
    pilote: Option<String>,
    #[serde(default)]
    note: Option<String>,
    sources: Vec<String>,
    #[serde(default)]
    sous_fonds: Vec<RawFund>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvelope {
    id: String,
    nom: String,
    region: String,
    mesures: Vec<String>,
    montant_euros: i64,
    #[serde(default)]
    centre_financier: Option<String>,
    #[serde(default)]
    gestion: Option<String>,
    #[serde(default)]
    droits_de_tirage: Vec<RawDrawingRight>,
    sources: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDrawingRight {
    departement: String,
    montant_euros: i64,
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
    id: serde_saphyr::Spanned<String>,
    nom: String,
    resume: String,
    beneficiaires: String,
    #[serde(default)]
    ouverture: Option<NaiveDate>,
    #[serde(default)]
    cloture: Option<NaiveDate>,
    sources: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Fund {
    pub name: String,
    pub amount: Cents,
    pub pilot: Option<String>,
    pub note: Option<String>,
    pub sources: Vec<String>,
    pub children: Vec<Fund>,
}

#[derive(Debug, Clone)]
pub struct Envelope {
    pub id: String,
    pub name: String,
    pub region: String,
    pub measures: Vec<String>,
    pub amount: Cents,
    pub budget_centre: Option<String>,
    pub management: Option<String>,
    pub drawing_rights: Vec<(String, Cents)>,
    pub sources: Vec<String>,
}

impl Envelope {
    /// What the drawing rights leave at the level of the envelope (208 € in Île-de-France).
    pub fn unallocated(&self) -> Cents {
        let drawn: i64 = self.drawing_rights.iter().map(|(_, c)| c.get()).sum();
        Cents::new(self.amount.get() - drawn)
    }
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
    /// For a national measure, the directorate (DINUM, ANCT, ANSSI…).
    pub instructing_service: Option<String>,
    pub beneficiaries: String,
    pub opens: Option<NaiveDate>,
    pub closes: Option<NaiveDate>,
    pub sources: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Programme {
    pub id: String,
    pub name: String,
    pub fund: String,
    pub vintage: Vintage,
    pub envelope: Cents,
    pub pilots: Vec<String>,
    /// The national directorates (`directions_nationales`): the services a national route or
    /// an account's `--territoire DINUM` may name.
    pub directions: Vec<Direction>,
    /// Which service instructs each measure (`routage`).
    pub routing: Routing,
    /// The first part of dossier numbers (`numero_prefixe`).
    pub number_prefix: NumberPrefix,
    /// The dossier form (`formulaire`): common blocks, each measure's own, documents.
    pub form: Form,
    pub funds: Vec<Fund>,
    pub envelopes: Vec<Envelope>,
    pub axes: Vec<Axis>,
    pub rules: rules::Rules,
    pub criteria: criteria::Criteria,
    pub plausibility: Plausibility,
    /// The documents cited, in the order the file lists them (empty when it lists none).
    pub sources: Vec<Source>,
    /// `itn7@` and the first 12 hex digits of the SHA-256 of the files: what a decision records
    /// as the rule-set version.
    pub version: String,
}

/// The file names a programme folder holds besides its tests.
pub const PROGRAMME_FILES: [&str; 5] = [
    "programme.yaml",
    "parametres.yaml",
    "regles.yaml",
    "variantes.yaml",
    "criteres.yaml",
];

fn euros(v: i64, what: &str) -> Result<Cents, String> {
    if v < 0 {
        return Err(format!("montant négatif : {what}"));
    }
    v.checked_mul(100)
        .map(Cents::new)
        .ok_or_else(|| format!("montant trop grand : {what}"))
}

impl Programme {
    /// Loads a programme from its files (names as in [`PROGRAMME_FILES`]); reports every
    /// problem found, each with its file, line and column.
    pub fn load(files: &[SourceFile]) -> Result<Programme, Diagnostics> {
        let mut diags = Vec::new();
        let get = |name: &str| files.iter().find(|f| f.name.ends_with(name));
        let mut missing = false;
        for name in PROGRAMME_FILES {
            if get(name).is_none() {
                diags.push(Diagnostic {
                    file: name.to_string(),
                    line: 1,
                    column: 1,
                    message: format!("fichier absent du dossier du programme : {name}"),
                });
                missing = true;
            }
        }
        if missing {
            return Err(Diagnostics(diags));
        }
        let (pf, paf, rf, vf, cf) = match (
            get("programme.yaml"),
            get("parametres.yaml"),
            get("regles.yaml"),
            get("variantes.yaml"),
            get("criteres.yaml"),
        ) {
            (Some(a), Some(b), Some(c), Some(d), Some(e)) => (a, b, c, d, e),
            _ => return Err(Diagnostics(diags)),
        };
        fn parse<T: serde::de::DeserializeOwned>(
            f: &SourceFile,
            diags: &mut Vec<Diagnostic>,
        ) -> Option<T> {
            match yaml::from_str(&f.text) {
                Ok(v) => Some(v),
                Err(e) => {
                    diags.push(f.yaml_error(&e));
                    None
                }
            }
        }
        let raw: Option<RawProgramme> = parse(pf, &mut diags);
        let raw_params: Option<rules::RawParamsFile> = parse(paf, &mut diags);
        let raw_rules: Option<rules::RawRulesFile> = parse(rf, &mut diags);
        let raw_variants: Option<rules::RawVariantsFile> = parse(vf, &mut diags);
        let raw_criteria: Option<criteria::RawCriteriaFile> = parse(cf, &mut diags);
        let (Some(raw), Some(raw_params), Some(raw_rules), Some(raw_variants), Some(raw_criteria)) =
            (raw, raw_params, raw_rules, raw_variants, raw_criteria)
        else {
            return Err(Diagnostics(diags));
        };

        let vintage = match Vintage::from_year(raw.millesime_referentiel) {
            Ok(v) => v,
            Err(e) => {
                diags.push(pf.at(&["millesime_referentiel"], None, e.to_string()));
                Vintage::Y2021
            }
        };
        let directions = routing::directions(raw.directions_nationales, pf, &mut diags);
        for pilot in &raw.pilotes {
            if !directions.iter().any(|d| &d.code == pilot) {
                diags.push(pf.at(
                    &["pilotes"],
                    Some(pilot),
                    format!(
                        "pilote « {pilot} » : ce n’est pas une direction de directions_nationales"
                    ),
                ));
            }
        }
        let number_prefix = {
            let text = raw
                .numero_prefixe
                .clone()
                .unwrap_or_else(|| raw.id.to_ascii_uppercase());
            match NumberPrefix::parse(&text) {
                Ok(prefix) => Some(prefix),
                Err(e) => {
                    diags.push(pf.at(&["numero_prefixe"], None, e.to_string()));
                    None
                }
            }
        };
        let mut seen = std::collections::BTreeSet::new();
        let mut axes = Vec::new();
        // Each measure with the place of its identifier, for routing's diagnostics.
        let mut measure_places: Vec<(String, Diagnostic)> = Vec::new();
        for a in raw.axes {
            let mut measures = Vec::new();
            for m in a.mesures {
                let place = pf.at_span(&m.id, String::new());
                let m_id = m.id.value;
                let id = match MeasureId::parse(&m_id) {
                    Ok(id) => id,
                    Err(e) => {
                        diags.push(Diagnostic {
                            message: e,
                            ..place
                        });
                        continue;
                    }
                };
                if !seen.insert(id.clone()) {
                    diags.push(Diagnostic {
                        message: format!("mesure en double : {m_id}"),
                        ..place.clone()
                    });
                }
                measure_places.push((m_id.clone(), place));
                if let (Some(o), Some(c)) = (m.ouverture, m.cloture) {
                    if c < o {
                        diags.push(pf.at(
                            &[&m_id, "cloture"],
                            None,
                            format!("mesure {m_id} : clôture avant ouverture"),
                        ));
                    }
                }
                measures.push(Measure {
                    id,
                    name: m.nom,
                    summary: m.resume,
                    // Set from the routing below.
                    instruction: String::new(),
                    instructing_service: None,
                    beneficiaries: m.beneficiaires,
                    opens: m.ouverture,
                    closes: m.cloture,
                    sources: m.sources,
                });
            }
            let envelope = match a.enveloppe_euros.map(|v| euros(v, &a.id)).transpose() {
                Ok(e) => e,
                Err(e) => {
                    diags.push(pf.at(&[&a.id], None, e));
                    None
                }
            };
            axes.push(Axis {
                envelope,
                id: a.id,
                name: a.nom,
                pilot: a.pilote,
                measures,
            });
        }
        fn funds(list: Vec<RawFund>, pf: &SourceFile, diags: &mut Vec<Diagnostic>) -> Vec<Fund> {
            list.into_iter()
                .map(|f| Fund {
                    amount: euros(f.montant_euros, &f.nom).unwrap_or_else(|e| {
                        diags.push(pf.at(&["arbre_des_fonds"], Some(&f.nom), e));
                        Cents::ZERO
                    }),
                    children: funds(f.sous_fonds, pf, diags),
                    name: f.nom,
                    pilot: f.pilote,
                    note: f.note,
                    sources: f.sources,
                })
                .collect()
        }
        let fund_tree = funds(raw.arbre_des_fonds, pf, &mut diags);
        let routing = routing::compile(raw.routage, &measure_places, &directions, pf, &mut diags);
        for m in axes.iter_mut().flat_map(|a| a.measures.iter_mut()) {
            if let Some(routes) = routing.routes(m.id.as_str()) {
                m.instruction = routes.national.level().to_string();
                if let Instruction::Direction(code) = &routes.national {
                    m.instructing_service = Some(code.clone());
                }
            }
        }
        let all_measures: Vec<String> = axes
            .iter()
            .flat_map(|a| a.measures.iter().map(|m| m.id.as_str().to_string()))
            .collect();
        let mut envelopes = Vec::new();
        for e in raw.enveloppes_territoriales {
            for m in &e.mesures {
                if !all_measures.contains(m) {
                    diags.push(pf.at(
                        &["enveloppes_territoriales", &e.id],
                        Some(m),
                        format!("enveloppe {} : mesure inconnue « {m} »", e.id),
                    ));
                }
            }
            let amount = euros(e.montant_euros, &e.id).unwrap_or_else(|m| {
                diags.push(pf.at(&["enveloppes_territoriales", &e.id], None, m));
                Cents::ZERO
            });
            let rights: Vec<(String, Cents)> = e
                .droits_de_tirage
                .iter()
                .map(|d| {
                    (
                        d.departement.clone(),
                        euros(d.montant_euros, &d.departement).unwrap_or(Cents::ZERO),
                    )
                })
                .collect();
            let drawn: i64 = rights.iter().map(|(_, c)| c.get()).sum();
            if drawn > amount.get() {
                diags.push(pf.at(
                    &["enveloppes_territoriales", &e.id, "droits_de_tirage"],
                    None,
                    format!(
                        "enveloppe {} : les droits de tirage ({}) dépassent l’enveloppe ({})",
                        e.id,
                        Cents::new(drawn),
                        amount
                    ),
                ));
            }
            envelopes.push(Envelope {
                id: e.id,
                name: e.nom,
                region: e.region,
                measures: e.mesures,
                amount,
                budget_centre: e.centre_financier,
                management: e.gestion,
                drawing_rights: rights,
                sources: e.sources,
            });
        }
        let programme_envelope = euros(raw.enveloppe_euros, &raw.id).unwrap_or_else(|e| {
            diags.push(pf.at(&["enveloppe_euros"], None, e));
            Cents::ZERO
        });

        let plausibility = match &raw.plausibilite {
            None => Plausibility {
                max_amount: programme_envelope,
                first_date: NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default(),
                last_date: NaiveDate::from_ymd_opt(2100, 12, 31).unwrap_or_default(),
                max_count: DEFAULT_MAX_COUNT,
            },
            Some(p) => {
                let max_amount = match euros(p.montant_max_euros, "plausibilite") {
                    Ok(c) if c.get() > 0 => c,
                    _ => {
                        diags.push(pf.at(
                            &["plausibilite", "montant_max_euros"],
                            None,
                            "plausibilite : montant_max_euros est un nombre d’euros positif",
                        ));
                        Cents::ZERO
                    }
                };
                if p.date_max < p.date_min {
                    diags.push(pf.at(
                        &["plausibilite", "date_max"],
                        None,
                        "plausibilite : date_max précède date_min",
                    ));
                }
                Plausibility {
                    max_amount,
                    first_date: p.date_min,
                    last_date: p.date_max,
                    max_count: p.nombre_max.unwrap_or(DEFAULT_MAX_COUNT),
                }
            }
        };

        let sources: Vec<Source> = raw
            .sources
            .into_iter()
            .map(|s| Source {
                id: s.id,
                title: s.titre,
            })
            .collect();
        if !sources.is_empty() {
            // Once the file names its sources, every citation of the catalogue names one of them.
            let cited = axes
                .iter()
                .flat_map(|a| a.measures.iter().map(|m| (m.id.as_str(), &m.sources)));
            for (owner, list) in cited {
                for c in list {
                    if !sources.iter().any(|s| &s.id == c) {
                        diags.push(pf.at(
                            &[owner, "sources"],
                            Some(c),
                            format!("mesure {owner} : source « {c} » absente de la liste sources"),
                        ));
                    }
                }
            }
        }

        let measure_flags: Vec<(String, bool)> = axes
            .iter()
            .flat_map(|a| {
                a.measures
                    .iter()
                    .map(|m| (m.id.as_str().to_string(), m.instruction != "national"))
            })
            .collect();
        let compiled = rules::compile(rules::Inputs {
            rules_file: rf,
            params_file: paf,
            variants_file: vf,
            rules: raw_rules,
            params: raw_params,
            variants: raw_variants,
            measures: measure_flags,
        });
        let compiled = match compiled {
            Ok(r) => Some(r),
            Err(d) => {
                diags.extend(d);
                None
            }
        };
        let form = match (&compiled, raw.formulaire) {
            (Some(rules), Some(raw_form)) => {
                form::compile(raw_form, &all_measures, rules, pf, &mut diags)
            }
            _ => Form::default(),
        };
        let criteria = compiled
            .as_ref()
            .map(|r| criteria::Criteria::build(raw_criteria, cf, r, &all_measures, &mut diags));
        if !diags.is_empty() {
            return Err(Diagnostics(diags));
        }
        let (Some(rules), Some(criteria), Some(number_prefix)) =
            (compiled, criteria, number_prefix)
        else {
            return Err(Diagnostics(diags));
        };
        let mut hasher = Sha256::new();
        for name in PROGRAMME_FILES {
            if let Some(f) = get(name) {
                hasher.update(name.as_bytes());
                hasher.update([0]);
                hasher.update(f.text.as_bytes());
                hasher.update([0]);
            }
        }
        let digest = hex::encode(hasher.finalize());
        Ok(Programme {
            version: format!("{}@{}", raw.id, &digest[..12]),
            envelope: programme_envelope,
            id: raw.id,
            name: raw.nom,
            fund: raw.fonds,
            vintage,
            pilots: raw.pilotes,
            directions,
            routing,
            number_prefix,
            form,
            funds: fund_tree,
            envelopes,
            axes,
            rules,
            criteria,
            plausibility,
            sources,
        })
    }

    /// The title of a cited source (`[000]`), when the programme names it.
    pub fn source_title(&self, id: &str) -> Option<&str> {
        self.sources
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.title.as_str())
    }

    pub fn measure(&self, id: &str) -> Option<&Measure> {
        self.measures().find(|m| m.id.as_str() == id)
    }

    /// A national directorate by code.
    pub fn direction(&self, code: &str) -> Option<&Direction> {
        self.directions.iter().find(|d| d.code == code)
    }

    pub fn measures(&self) -> impl Iterator<Item = &Measure> {
        self.axes.iter().flat_map(|a| a.measures.iter())
    }

    /// Evaluates one measure for one situation, with its trace.
    pub fn evaluate(&self, measure: &str, situation: &Situation) -> Result<Evaluation, EvalError> {
        let prepared = self.rules.prepare(situation)?;
        self.rules.evaluate(measure, &prepared, true)
    }
}

/// The ITN7 programme files, read from the repository: for this crate's tests (the binary
/// compiles them in: `guichet_app::programme::itn7`).
#[cfg(test)]
pub(crate) fn itn7_files() -> Vec<SourceFile> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../programmes/itn7");
    PROGRAMME_FILES
        .iter()
        .map(|name| {
            let text =
                std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            SourceFile::new(*name, text)
        })
        .collect()
}

/// The ITN7 programme, for this crate's tests.
#[cfg(test)]
pub(crate) fn itn7() -> Result<Programme, Diagnostics> {
    Programme::load(&itn7_files())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn itn7_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../programmes/itn7")
    }

    #[test]
    fn the_itn7_programme_loads_and_sums_up() {
        let p = match itn7() {
            Ok(p) => p,
            Err(d) => panic!("{d}"),
        };
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
        let idf = p
            .envelopes
            .iter()
            .find(|e| e.id == "idf-axe3-volet1")
            .unwrap();
        assert_eq!(idf.unallocated(), Cents::from_euros(208));
        assert_eq!(idf.budget_centre.as_deref(), Some("UO 0363-DITP-DR75"));
        assert!(p.version.starts_with("itn7@"));
    }

    #[test]
    fn a_measure_names_the_parameters_it_reads_in_each_territory() {
        let p = itn7().unwrap_or_else(|d| panic!("{d}"));
        let names = |code: Option<&str>, m: &str| {
            let set = p.rules.rule_set(code);
            let read = set.measure_parameters(m).unwrap();
            let name = |i: &usize| p.rules.params[*i].name.as_str();
            (
                read.amounts.iter().map(name).collect::<Vec<_>>(),
                read.conditions.iter().map(name).collect::<Vec<_>>(),
            )
        };
        let (amounts, conditions) = names(None, "axe3.v1.relation-usager");
        assert!(amounts.contains(&"taux_axe3"), "{amounts:?}");
        assert!(
            amounts.contains(&"part_max_logiciel_hors_ue"),
            "{amounts:?}"
        );
        assert!(!amounts.contains(&"taux_reduit_idf"), "{amounts:?}");
        for d in ["ouverture_axe3", "cloture_axe3", "date_fin_max_projet"] {
            assert!(conditions.contains(&d), "{conditions:?}");
        }
        let (idf, _) = names(Some("11"), "axe3.v1.relation-usager");
        for r in [
            "seuil_taux_plein_idf",
            "taux_reduit_idf",
            "taux_exceptionnel_relation_usager_idf",
        ] {
            assert!(idf.contains(&r), "{idf:?}");
        }
        let (paca, _) = names(Some("93"), "axe3.v1.formation");
        assert!(paca.contains(&"plafond_commune_seule"), "{paca:?}");
        let (flat, _) = names(None, "axe2.franceconnect");
        assert_eq!(flat, ["taux_fc_api", "forfait_fc_api"]);
        assert!(p.rules.national.measure_parameters("axe9").is_none());
        // In force on a date: Île-de-France opens a day later than the national desk.
        let i = p
            .rules
            .params
            .iter()
            .position(|d| d.name == "ouverture_axe3")
            .unwrap();
        let day = NaiveDate::from_ymd_opt(2021, 6, 1).unwrap();
        let idf = p.rules.rule_set(Some("11")).param_at(i, day).unwrap();
        assert_eq!(
            idf.value,
            Value::Date(NaiveDate::from_ymd_opt(2021, 1, 26).unwrap())
        );
        let before = NaiveDate::from_ymd_opt(2020, 6, 1).unwrap();
        assert!(p.rules.national.param_at(i, before).is_none());
    }

    #[test]
    fn sources_are_named_and_citations_checked() {
        let p = itn7().unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(p.sources.len(), 5);
        assert!(p
            .source_title("[004]")
            .unwrap()
            .contains("Provence-Alpes-Côte d’Azur"));
        assert!(p.source_title("[009]").is_none());
        let files: Vec<SourceFile> = itn7_files()
            .into_iter()
            .map(|f| {
                if f.name == "programme.yaml" {
                    let text = f.text.replacen(
                        "sources: [\"[000]\", \"[001]\"]",
                        "sources: [\"[000]\", \"[009]\"]",
                        1,
                    );
                    SourceFile::new(f.name, text)
                } else {
                    f
                }
            })
            .collect();
        let d = Programme::load(&files)
            .err()
            .map(|d| d.to_string())
            .unwrap_or_default();
        assert!(d.contains("source « [009] » absente"), "{d}");
    }

    #[test]
    fn bad_identifiers_are_refused() {
        assert!(MeasureId::parse("Axe3 v1").is_err());
        assert!(MeasureId::parse("axe3..v1").is_err());
        assert!(MeasureId::parse("axe3.v1.relation-usager").is_ok());
    }

    /// The programme's own test cases (`programmes/itn7/tests/*.yaml`).
    #[test]
    fn the_itn7_test_cases_pass() {
        let p = itn7().unwrap_or_else(|d| panic!("{d}"));
        let mut files = Vec::new();
        let mut paths: Vec<_> = std::fs::read_dir(itn7_dir().join("tests"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        paths.sort();
        for path in paths {
            let name = format!("tests/{}", path.file_name().unwrap().to_string_lossy());
            files.push(SourceFile::new(
                name,
                std::fs::read_to_string(&path).unwrap(),
            ));
        }
        assert!(!files.is_empty());
        let report = cases::run(&p, &files);
        let mut out = String::new();
        for e in &report.errors {
            out.push_str(&format!("{e}\n"));
        }
        for f in &report.failures {
            out.push_str(&format!(
                "{}:{} {} :\n  {}\n",
                f.file,
                f.line,
                f.name,
                f.problems.join("\n  ")
            ));
        }
        println!("{}", report.summary());
        assert!(report.failed() == 0, "{out}{}", report.summary());
        assert!(report.passed >= 60, "{}", report.summary());
    }
}
