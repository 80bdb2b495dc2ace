//! Routing: which service instructs each measure's dossiers (`routage` in `programme.yaml`),
//! and the national directorates a programme knows (`directions_nationales`).
//!
//! A route is `departement` (the prefecture of the département where the project takes
//! place), `region` (the regional prefecture of the project's région) or the code of a
//! national directorate. Each measure has exactly one national route; a région may route a
//! territorial measure otherwise (the national brochure [002] lets regional prefects keep the
//! Axe 3 envelope at regional level instead of delegating it to départements), so routes, like
//! rates, are a national default with territorial overrides. A national measure stays national
//! everywhere: the engine evaluates territorial measures by territory, and a route cannot turn
//! one kind into the other behind its back.

use crate::diag::{Diagnostic, SourceFile};
use guichet_domain::access::ServiceTarget;
use guichet_domain::{DepartementCode, RegionCode, TerritoryFootprint};
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;

/// A national directorate (DINUM, ANCT…): its code, as services and routes name it, and its
/// name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Direction {
    pub code: String,
    pub name: String,
}

/// Who instructs a measure's dossiers, before the project's place is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// The prefecture of the département where the project takes place.
    Departement,
    /// The prefecture of the project's région.
    Region,
    /// A national directorate, by code.
    Direction(String),
}

impl Instruction {
    /// The level as the catalogue says it: `departement`, `region` or `national`.
    pub fn level(&self) -> &'static str {
        match self {
            Instruction::Departement => "departement",
            Instruction::Region => "region",
            Instruction::Direction(_) => "national",
        }
    }

    /// Whether the instructing service depends on the project's territory.
    pub fn is_territorial(&self) -> bool {
        !matches!(self, Instruction::Direction(_))
    }
}

/// One measure's routes: the national one, and the régions' own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasureRoutes {
    pub national: Instruction,
    /// A desk that decides by itself (`decision_automatique`, FranceConnect / API): a
    /// complete dossier within the limits is accepted on submission
    /// (`guichet_domain::dossier::Event::AcceptAutomatically`), otherwise instructed.
    pub automatic: bool,
    /// By région code.
    pub regions: BTreeMap<String, Instruction>,
    pub sources: Vec<String>,
}

/// Where a project takes place, as routing needs it: the applicant's footprint (every
/// département and région its territory touches) and, when it touches several départements,
/// the one the applicant said the project takes place in.
#[derive(Debug, Clone, Copy)]
pub struct ProjectPlace<'a> {
    pub footprint: &'a TerritoryFootprint,
    pub departement: Option<&'a DepartementCode>,
}

/// Why a dossier cannot be routed yet; in French, for the applicant or the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    #[error("mesure inconnue du programme : « {0} »")]
    UnknownMeasure(String),
    #[error("le projet touche plusieurs départements ({}) : indiquez celui où il se réalise", .0.join(", "))]
    DepartementToChoose(Vec<String>),
    #[error("le département {0} n’est pas sur le territoire du demandeur")]
    DepartementOutsideFootprint(String),
    #[error("le territoire du demandeur ne relève d’aucun département : cette mesure est instruite par une préfecture de département")]
    NoDepartement,
    #[error("le territoire du demandeur ne relève d’aucune région : cette mesure est instruite par une préfecture")]
    NoRegion,
    #[error("le territoire du demandeur s’étend sur plusieurs régions ({}) : cette mesure est instruite par la préfecture d’une seule", .0.join(", "))]
    SeveralRegions(Vec<String>),
    #[error("code de territoire invalide dans l’empreinte du demandeur : « {0} »")]
    BadCode(String),
}

/// The routes of every measure of a programme, compiled from `routage`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Routing {
    measures: BTreeMap<String, MeasureRoutes>,
}

impl Routing {
    /// The routes of one measure.
    pub fn routes(&self, measure: &str) -> Option<&MeasureRoutes> {
        self.measures.get(measure)
    }

    /// Whether a measure's dossiers are decided automatically on submission.
    pub fn decides_automatically(&self, measure: &str) -> bool {
        self.measures.get(measure).is_some_and(|r| r.automatic)
    }

    /// Who instructs a measure in a région (`None`: the national route).
    pub fn instruction(&self, measure: &str, region: Option<&str>) -> Option<&Instruction> {
        let routes = self.measures.get(measure)?;
        Some(
            region
                .and_then(|r| routes.regions.get(r))
                .unwrap_or(&routes.national),
        )
    }

    /// The service that instructs a dossier of `measure` for a project at `place`.
    pub fn instructing_service(
        &self,
        measure: &str,
        place: ProjectPlace<'_>,
    ) -> Result<ServiceTarget, RoutingError> {
        let routes = self
            .measures
            .get(measure)
            .ok_or_else(|| RoutingError::UnknownMeasure(measure.to_string()))?;
        if let Instruction::Direction(code) = &routes.national {
            return Ok(ServiceTarget::Direction(code.clone()));
        }
        // A territorial measure is the business of one région, as for the engine.
        let regions = &place.footprint.regions;
        let region = match regions.iter().collect::<Vec<_>>().as_slice() {
            [one] => (*one).clone(),
            [] => return Err(RoutingError::NoRegion),
            _ => {
                return Err(RoutingError::SeveralRegions(
                    regions.iter().cloned().collect(),
                ))
            }
        };
        let instruction = routes.regions.get(&region).unwrap_or(&routes.national);
        match instruction {
            Instruction::Direction(code) => Ok(ServiceTarget::Direction(code.clone())),
            Instruction::Region => RegionCode::parse(&region)
                .map(ServiceTarget::Region)
                .map_err(|_| RoutingError::BadCode(region)),
            Instruction::Departement => {
                let departements = &place.footprint.departements;
                let chosen = match (place.departement, departements.len()) {
                    (Some(d), _) => {
                        if !departements.contains(d.as_str()) {
                            return Err(RoutingError::DepartementOutsideFootprint(
                                d.as_str().to_string(),
                            ));
                        }
                        d.clone()
                    }
                    (None, 0) => return Err(RoutingError::NoDepartement),
                    (None, 1) => {
                        let only = departements.iter().next().cloned().unwrap_or_default();
                        DepartementCode::parse(&only).map_err(|_| RoutingError::BadCode(only))?
                    }
                    (None, _) => {
                        return Err(RoutingError::DepartementToChoose(
                            departements.iter().cloned().collect(),
                        ))
                    }
                };
                Ok(ServiceTarget::Departement(chosen))
            }
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDirection {
    code: Spanned<String>,
    nom: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    mesures: Vec<Spanned<String>>,
    /// `departement`, `region` or a directorate's code.
    service: Spanned<String>,
    /// Régions this entry applies to; none: the national route.
    #[serde(default)]
    regions: Vec<Spanned<String>>,
    /// The measures' dossiers are decided automatically on submission (national entries
    /// only).
    #[serde(default)]
    decision_automatique: Option<Spanned<bool>>,
    #[serde(default)]
    sources: Vec<String>,
    #[serde(default)]
    #[allow(dead_code)] // read for the programme officer, not by Guichet
    note: Option<String>,
}

/// Compiles `directions_nationales`: codes of upper-case letters and digits, each once.
pub(crate) fn directions(
    raw: Vec<RawDirection>,
    file: &SourceFile,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Direction> {
    let mut out: Vec<Direction> = Vec::new();
    for d in raw {
        let code = d.code.value.trim().to_string();
        // At least one letter: a code such as `95` would read as a département in
        // `--territoire`.
        let valid = (2..=12).contains(&code.len())
            && code
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            && code.chars().any(|c| c.is_ascii_uppercase());
        if !valid {
            diags.push(file.at_span(&d.code,
                format!("direction nationale : code « {code} » invalide (2 à 12 lettres majuscules ou chiffres, par exemple DINUM)"),
            ));
            continue;
        }
        if out.iter().any(|o| o.code == code) {
            diags.push(file.at_span(&d.code, format!("direction nationale en double : {code}")));
            continue;
        }
        out.push(Direction {
            code,
            name: d.nom.trim().to_string(),
        });
    }
    out
}

/// Compiles `routage` against the programme's measures (in catalogue order, each with the
/// place of its `id` for the diagnostic of a measure left unrouted) and directorates.
pub(crate) fn compile(
    raw: Vec<RawRoute>,
    measures: &[(String, Diagnostic)],
    directions: &[Direction],
    file: &SourceFile,
    diags: &mut Vec<Diagnostic>,
) -> Routing {
    let known_codes = || {
        directions
            .iter()
            .map(|d| d.code.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut routing = Routing::default();
    let mut regional: Vec<(String, String, Instruction, Diagnostic)> = Vec::new();
    for entry in raw {
        let service = entry.service.value.trim();
        let instruction = match service {
            "departement" | "département" => Instruction::Departement,
            "region" | "région" => Instruction::Region,
            code => match directions.iter().find(|d| d.code == code) {
                Some(d) => Instruction::Direction(d.code.clone()),
                None => {
                    diags.push(file.at_span(&entry.service,
                        format!(
                            "routage : service « {code} » inconnu (departement, region ou une direction nationale déclarée dans directions_nationales : {})",
                            known_codes()
                        ),
                    ));
                    continue;
                }
            },
        };
        let automatic = entry.decision_automatique.as_ref().is_some_and(|a| a.value);
        if let (Some(flag), false) = (&entry.decision_automatique, entry.regions.is_empty()) {
            diags.push(file.at_span(
                flag,
                "routage : decision_automatique se dit dans l’entrée nationale de la mesure, pas pour des régions".to_string(),
            ));
        }
        let mut regions = Vec::new();
        for r in &entry.regions {
            match RegionCode::parse(&r.value) {
                Ok(code) => regions.push(code.as_str().to_string()),
                Err(e) => diags.push(file.at_span(r, format!("routage : {e}"))),
            }
        }
        if entry.mesures.is_empty() {
            diags.push(file.at_span(
                &entry.service,
                "routage : l’entrée ne nomme aucune mesure (mesures: [...])".to_string(),
            ));
        }
        for m in &entry.mesures {
            let id = m.value.trim();
            if !measures.iter().any(|(known, _)| known == id) {
                diags.push(file.at_span(m, format!("routage : mesure inconnue « {id} »")));
                continue;
            }
            if entry.regions.is_empty() {
                if routing.measures.contains_key(id) {
                    diags.push(file.at_span(
                        m,
                        format!("routage : la mesure {id} est routée deux fois au niveau national"),
                    ));
                    continue;
                }
                routing.measures.insert(
                    id.to_string(),
                    MeasureRoutes {
                        national: instruction.clone(),
                        automatic,
                        regions: BTreeMap::new(),
                        sources: entry.sources.clone(),
                    },
                );
            } else {
                for region in &regions {
                    regional.push((
                        id.to_string(),
                        region.clone(),
                        instruction.clone(),
                        file.at_span(m, String::new()),
                    ));
                }
            }
        }
    }
    for (id, region, instruction, place) in regional {
        let Some(routes) = routing.measures.get_mut(&id) else {
            // Its national route is missing: reported below, once.
            continue;
        };
        let located = |message: String| Diagnostic {
            message,
            ..place.clone()
        };
        if !routes.national.is_territorial() || !instruction.is_territorial() {
            diags.push(located(format!(
                "routage : la mesure {id} ne peut changer de service pour la région {region} que entre departement et region (une mesure nationale le reste partout)"
            )));
            continue;
        }
        if routes.regions.contains_key(&region) {
            diags.push(located(format!(
                "routage : la mesure {id} est routée deux fois pour la région {region}"
            )));
            continue;
        }
        routes.regions.insert(region, instruction);
    }
    for (id, place) in measures {
        if !routing.measures.contains_key(id) {
            diags.push(Diagnostic {
                message: format!(
                    "mesure {id} : aucun service instructeur (ajoutez-la à une entrée de routage sans regions)"
                ),
                ..place.clone()
            });
        }
    }
    routing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{itn7, itn7_files, Programme};

    fn footprint(deps: &[&str], regions: &[&str]) -> TerritoryFootprint {
        TerritoryFootprint {
            departements: deps.iter().map(|s| s.to_string()).collect(),
            regions: regions.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn route(
        p: &Programme,
        measure: &str,
        fp: &TerritoryFootprint,
        dep: Option<&str>,
    ) -> Result<String, RoutingError> {
        let dep = dep.map(|d| DepartementCode::parse(d).unwrap());
        p.routing
            .instructing_service(
                measure,
                ProjectPlace {
                    footprint: fp,
                    departement: dep.as_ref(),
                },
            )
            .map(|t| format!("{}:{}", t.kind().slug(), t.territory_code()))
    }

    #[test]
    fn itn7_routes_every_measure_as_the_rule_book_says() {
        let p = itn7().unwrap_or_else(|d| panic!("{d}"));
        let cergy = footprint(&["95"], &["11"]);
        for m in [
            "axe3.v1.expert",
            "axe3.v1.formation",
            "axe3.v1.relation-usager",
            "axe3.v1.dematads",
        ] {
            assert_eq!(
                route(&p, m, &cergy, None).as_deref(),
                Ok("prefecture-departementale:95"),
                "{m}"
            );
        }
        assert_eq!(
            route(&p, "axe3.v2.labo", &cergy, None).as_deref(),
            Ok("prefecture-regionale:11")
        );
        for (m, code) in [
            ("axe1", "ANCT"),
            ("axe2.demat", "DINUM"),
            ("axe2.donnees", "DINUM"),
            ("axe2.cooperation", "DINUM"),
            ("axe2.franceconnect", "DINUM"),
            ("axe2.api", "DINUM"),
            ("axe4.parcours", "ANSSI"),
            ("axe4.aap", "ANSSI"),
            ("axe4.csirt", "ANSSI"),
        ] {
            assert_eq!(
                route(&p, m, &cergy, None),
                Ok(format!("direction-nationale:{code}")),
                "{m}"
            );
        }
        // Only the FranceConnect / API desk decides by itself.
        let automatic: Vec<_> = p
            .measures()
            .filter(|m| p.routing.decides_automatically(m.id.as_str()))
            .map(|m| m.id.as_str())
            .collect();
        assert_eq!(automatic, ["axe2.franceconnect", "axe2.api"]);
        // Every measure of the catalogue is routed, and the catalogue's level follows.
        for m in p.measures() {
            let routes = p.routing.routes(m.id.as_str()).unwrap();
            assert_eq!(routes.national.level(), m.instruction);
        }
        assert_eq!(
            p.directions
                .iter()
                .map(|d| d.code.as_str())
                .collect::<Vec<_>>(),
            ["DINUM", "DITP", "ANCT", "ANSSI"]
        );
    }

    #[test]
    fn the_place_of_the_project_decides_the_prefecture() {
        let p = itn7().unwrap_or_else(|d| panic!("{d}"));
        // An EPCI straddling Val-d'Oise and Yvelines: the applicant says where.
        let straddling = footprint(&["78", "95"], &["11"]);
        let m = "axe3.v1.relation-usager";
        assert_eq!(
            route(&p, m, &straddling, None),
            Err(RoutingError::DepartementToChoose(vec![
                "78".into(),
                "95".into()
            ]))
        );
        assert_eq!(
            route(&p, m, &straddling, Some("78")).as_deref(),
            Ok("prefecture-departementale:78")
        );
        assert_eq!(
            route(&p, m, &straddling, Some("91")),
            Err(RoutingError::DepartementOutsideFootprint("91".into()))
        );
        // Volet 2 needs the région only.
        assert_eq!(
            route(&p, "axe3.v2.labo", &straddling, None).as_deref(),
            Ok("prefecture-regionale:11")
        );
        // Two régions, or none (a COM commune): no prefecture can be chosen.
        let two = footprint(&["77", "89"], &["11", "27"]);
        assert_eq!(
            route(&p, m, &two, None),
            Err(RoutingError::SeveralRegions(vec!["11".into(), "27".into()]))
        );
        let com = footprint(&[], &[]);
        assert_eq!(
            route(&p, "axe3.v2.labo", &com, None),
            Err(RoutingError::NoRegion)
        );
        // National measures do not care.
        assert_eq!(
            route(&p, "axe1", &com, None).as_deref(),
            Ok("direction-nationale:ANCT")
        );
        assert_eq!(
            route(&p, "axe9", &com, None),
            Err(RoutingError::UnknownMeasure("axe9".into()))
        );
        let message = RoutingError::DepartementToChoose(vec!["78".into(), "95".into()]);
        assert_eq!(
            message.to_string(),
            "le projet touche plusieurs départements (78, 95) : indiquez celui où il se réalise"
        );
    }

    /// `programme.yaml` with its `routage` section changed by `edit`.
    fn with_programme(edit: impl Fn(&str) -> String) -> Result<Programme, crate::Diagnostics> {
        let files: Vec<_> = itn7_files()
            .into_iter()
            .map(|f| {
                if f.name == "programme.yaml" {
                    SourceFile::new(f.name.clone(), edit(&f.text))
                } else {
                    f
                }
            })
            .collect();
        Programme::load(&files)
    }

    #[test]
    fn a_region_may_route_a_territorial_measure_otherwise() {
        let p = with_programme(|t| {
            t.replace(
                "routage:\n",
                "routage:\n  - mesures: [axe3.v1.expert]\n    service: region\n    regions: [\"93\"]\n",
            )
        })
        .unwrap_or_else(|d| panic!("{d}"));
        let marseille = footprint(&["13"], &["93"]);
        assert_eq!(
            route(&p, "axe3.v1.expert", &marseille, None).as_deref(),
            Ok("prefecture-regionale:93")
        );
        assert_eq!(
            route(&p, "axe3.v1.formation", &marseille, None).as_deref(),
            Ok("prefecture-departementale:13")
        );
        let cergy = footprint(&["95"], &["11"]);
        assert_eq!(
            route(&p, "axe3.v1.expert", &cergy, None).as_deref(),
            Ok("prefecture-departementale:95")
        );
        assert_eq!(
            p.routing.instruction("axe3.v1.expert", Some("93")),
            Some(&Instruction::Region)
        );
    }

    fn messages(d: &crate::Diagnostics) -> Vec<String> {
        d.0.iter().map(|d| d.to_string()).collect()
    }

    fn line_of(text: &str, needle: &str) -> usize {
        text.lines().position(|l| l.contains(needle)).unwrap() + 1
    }

    #[test]
    fn check_refuses_an_unrouted_measure_and_an_unknown_directorate_at_their_line() {
        let original = itn7_files()
            .into_iter()
            .find(|f| f.name == "programme.yaml")
            .unwrap()
            .text;
        let edit = |t: &str| {
            t.replace("service: ANSSI", "service: ANSI").replace(
                "mesures: [axe2.franceconnect, axe2.api]",
                "mesures: [axe2.franceconnect]",
            )
        };
        let edited = edit(&original);
        let err = with_programme(edit).unwrap_err();
        let msgs = messages(&err);
        let anssi_line = line_of(&edited, "service: ANSI");
        assert!(
            msgs.iter()
                .any(|m| m.starts_with(&format!("programme.yaml:{anssi_line}:"))
                    && m.contains("service « ANSI » inconnu")
                    && m.contains("DINUM, DITP, ANCT, ANSSI")),
            "{msgs:#?}"
        );
        let api_line = line_of(&edited, "- id: axe2.api");
        assert!(
            msgs.iter()
                .any(|m| m.starts_with(&format!("programme.yaml:{api_line}:"))
                    && m.contains("mesure axe2.api : aucun service instructeur")),
            "{msgs:#?}"
        );
        // The three ANSSI measures are unrouted too, each at its own line.
        for m in ["axe4.parcours", "axe4.aap", "axe4.csirt"] {
            assert!(
                msgs.iter()
                    .any(|d| d.contains(&format!("mesure {m} : aucun service"))),
                "{msgs:#?}"
            );
        }
    }

    #[test]
    fn check_refuses_unknown_measures_duplicates_and_national_overrides() {
        let err = with_programme(|t| {
            t.replace(
                "routage:\n",
                "routage:\n  - mesures: [axe9, axe1]\n    service: DINUM\n  - mesures: [axe1]\n    service: region\n    regions: [\"11\", \"1\"]\n",
            )
        })
        .unwrap_err();
        let msgs = messages(&err);
        let has = |needle: &str| msgs.iter().any(|m| m.contains(needle));
        assert!(has("routage : mesure inconnue « axe9 »"), "{msgs:#?}");
        assert!(
            has("la mesure axe1 est routée deux fois au niveau national"),
            "{msgs:#?}"
        );
        assert!(has("code de région invalide : « 1 »"), "{msgs:#?}");
        assert!(
            has("la mesure axe1 ne peut changer de service pour la région 11"),
            "{msgs:#?}"
        );
        let err = with_programme(|t| {
            t.replace(
                "  - { code: DITP,",
                "  - { code: dinum, nom: x }\n  - { code: DINUM, nom: y }\n  - { code: DITP,",
            )
        })
        .unwrap_err();
        let msgs = messages(&err);
        assert!(
            msgs.iter().any(|m| m.contains("code « dinum » invalide")),
            "{msgs:#?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.contains("direction nationale en double : DINUM")),
            "{msgs:#?}"
        );
    }
}
