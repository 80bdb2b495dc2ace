//! The simulator: what a collectivité may get from each measure, with the explanation.
//!
//! The three doors (CLI `guichet simulate`, API `POST /api/v1/simulations`, web page
//! `/simulateur`) hand the same raw inputs ([`SimulationInput`]) to [`App::simulate`], and the
//! CLI and the API print the same [`SimulationOutput`]: they agree by construction.
//!
//! Facts about the applicant come from the referential of the programme's vintage (2021 for
//! ITN7): every applicant is resolved to its member communes, whose populations are summed (a
//! commune is its own only member), whose régions give the territorial variant, and whose
//! départements tell whether it covers one whole.

use crate::error::{AppError, AppResult};
use crate::App;
use chrono::NaiveDate;
use guichet_domain::money::MoneyError;
use guichet_domain::{Cents, CollectiviteRef};
use guichet_programme::eval::{Assumption, ExpenseLine, Missing, Reason};
use guichet_programme::{Evaluation, Plausibility, Programme, Situation, Step, Type, Value};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Who applies: one collectivité, or several together (`groupement:epci:…+commune:…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplicantRef {
    One(CollectiviteRef),
    Group(Vec<CollectiviteRef>),
}

impl ApplicantRef {
    /// `commune:95127`, `epci:249500109`, `departement:95`, `region:11`, or
    /// `groupement:epci:200054781+epci:200058519`.
    pub fn parse(input: &str) -> Result<Self, String> {
        let input = input.trim();
        if let Some(rest) = input.strip_prefix("groupement:") {
            let mut members = Vec::new();
            for part in rest.split('+') {
                let r = CollectiviteRef::parse(part.trim())
                    .map_err(|e| format!("membre du groupement « {} » : {e}", part.trim()))?;
                if members.contains(&r) {
                    return Err(format!("membre du groupement en double : {r}"));
                }
                members.push(r);
            }
            if members.len() < 2 {
                return Err(
                    "un groupement réunit au moins deux membres, joints par « + » (groupement:epci:200054781+epci:200058519)"
                        .into(),
                );
            }
            return Ok(ApplicantRef::Group(members));
        }
        CollectiviteRef::parse(input)
            .map(ApplicantRef::One)
            .map_err(|e| {
                format!(
                    "{e} ; types : commune (code INSEE), epci (SIREN), departement, region, groupement (membres joints par « + »)"
                )
            })
    }
}

impl std::fmt::Display for ApplicantRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApplicantRef::One(r) => write!(f, "{r}"),
            ApplicantRef::Group(m) => write!(
                f,
                "groupement:{}",
                m.iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()
                    .join("+")
            ),
        }
    }
}

/// A member commune, as far as the rules care.
#[derive(Debug, Clone)]
pub struct Member {
    pub insee: String,
    pub population: i64,
    pub departement: String,
    pub region: Option<String>,
}

/// The applicant as the rules see it.
#[derive(Debug, Clone, Serialize)]
pub struct Applicant {
    /// `commune:95127`, `groupement:…`
    pub reference: String,
    pub nom: String,
    /// commune, epci, departement, region or groupement
    #[serde(rename = "type")]
    pub kind: String,
    pub population: i64,
    /// Which figure the population is, for the trace.
    pub population_source: String,
    pub communes: usize,
    /// Région whose variant applies; `None` when the members span several.
    pub region: Option<String>,
    pub regions: BTreeSet<String>,
    pub departements: BTreeSet<String>,
    pub couvre_departement: bool,
    pub nature_epci: Option<String>,
    pub millesime: u16,
}

impl Applicant {
    /// Derives the facts from the member communes. `dep_counts`: communes per département in
    /// the same vintage.
    #[allow(clippy::too_many_arguments)]
    pub fn from_members(
        reference: String,
        name: String,
        kind: &str,
        members: &[Member],
        dep_counts: &HashMap<String, usize>,
        nature_epci: Option<String>,
        vintage: u16,
    ) -> Applicant {
        let mut seen = BTreeSet::new();
        let mut population = 0i64;
        let mut per_dep: HashMap<&str, usize> = HashMap::new();
        let mut regions = BTreeSet::new();
        let mut departements = BTreeSet::new();
        for m in members {
            if !seen.insert(m.insee.as_str()) {
                continue; // a commune counted once, even if two members share it
            }
            population += m.population;
            *per_dep.entry(m.departement.as_str()).or_default() += 1;
            departements.insert(m.departement.clone());
            if let Some(r) = &m.region {
                regions.insert(r.clone());
            }
        }
        let covers = per_dep
            .iter()
            .any(|(d, n)| dep_counts.get(*d).is_some_and(|total| total == n));
        let population_source = if kind == "commune" {
            format!("population municipale de la commune, millésime {vintage}")
        } else {
            format!(
                "somme des populations de {} commune{} membre{}, millésime {vintage}",
                seen.len(),
                if seen.len() > 1 { "s" } else { "" },
                if seen.len() > 1 { "s" } else { "" }
            )
        };
        Applicant {
            reference,
            nom: name,
            kind: kind.to_string(),
            population,
            population_source,
            communes: seen.len(),
            region: if regions.len() == 1 {
                regions.iter().next().cloned()
            } else {
                None
            },
            regions,
            departements,
            couvre_departement: covers,
            nature_epci,
            millesime: vintage,
        }
    }

    /// The facts the programme reads about the applicant.
    pub fn facts(&self) -> BTreeMap<String, Value> {
        let mut f = BTreeMap::new();
        f.insert("type_demandeur".into(), Value::text(&self.kind));
        f.insert(
            "population".into(),
            Value::Nombre(rust_decimal::Decimal::from(self.population)),
        );
        if let Some(r) = &self.region {
            f.insert("region".into(), Value::text(r));
        }
        f.insert(
            "couvre_departement".into(),
            Value::Booleen(self.couvre_departement),
        );
        f.insert(
            "nature_epci".into(),
            Value::text(self.nature_epci.as_deref().unwrap_or("aucune")),
        );
        f
    }
}

/// What a person typed, before parsing: the three doors fill this.
#[derive(Debug, Clone, Default)]
pub struct SimulationInput {
    /// A measure identifier; `None` asks for every measure (web page).
    pub mesure: Option<String>,
    pub demandeur: String,
    /// Euros (`12345.67`, `12 345,67`): one `prestation` line when no expense line is given.
    pub cout: Option<String>,
    /// (category, euros)
    pub depenses: Vec<(String, String)>,
    /// AAAA-MM-JJ; default: today by the platform's clock.
    pub date_depot: Option<String>,
    pub date_fin: Option<String>,
    /// (fact, value) overrides.
    pub faits: Vec<(String, String)>,
}

/// A parsed simulation request.
#[derive(Debug, Clone)]
pub struct SimulationRequest {
    pub measures: Vec<String>,
    pub applicant: ApplicantRef,
    pub expenses: Vec<(String, Cents)>,
    pub filing_date: NaiveDate,
    pub facts: BTreeMap<String, Value>,
}

/// `AAAA-MM-JJ` exactly, around spaces: chrono alone would also read `2021-6-1` or
/// `+2021-06-01`, which the API's document (a pattern of ten characters) does not describe.
pub fn iso_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    let shape = s.len() == 10
        && s.bytes().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !shape {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

fn parse_date(label: &str, s: &str, bounds: &Plausibility) -> Result<NaiveDate, AppError> {
    let d = iso_date(s).ok_or_else(|| {
        AppError::Invalid(format!(
            "{label} invalide : « {} » (format AAAA-MM-JJ, par exemple 2021-06-01)",
            s.trim()
        ))
    })?;
    plausible_date(label, d, bounds)
}

/// A date outside the programme's plausible range is a typing error.
fn plausible_date(label: &str, d: NaiveDate, bounds: &Plausibility) -> Result<NaiveDate, AppError> {
    if d < bounds.first_date || d > bounds.last_date {
        return Err(AppError::Invalid(format!(
            "{label} invraisemblable : {} (le programme attend une date du {} au {})",
            d.format("%Y-%m-%d"),
            bounds.first_date.format("%d/%m/%Y"),
            bounds.last_date.format("%d/%m/%Y")
        )));
    }
    Ok(d)
}

/// An amount above the programme's plausibility ceiling (ITN7: its own total) is a typing
/// error; so is a sum that would not even fit in 64 bits.
fn plausible_amount(label: &str, amount: Option<Cents>, bounds: &Plausibility) -> AppResult<Cents> {
    match amount {
        Some(a) if a.get() <= bounds.max_amount.get() => Ok(a),
        _ => Err(AppError::Invalid(format!(
            "{label} : montant invraisemblable{} (au plus {}, le total du programme ; vérifiez la saisie)",
            amount.map(|a| format!(", {a}")).unwrap_or_default(),
            bounds.max_amount
        ))),
    }
}

/// Whether a member of the reference is `epci:` and nine digits that fail the SIREN's check
/// digit (and that alone makes the reference invalid: every other member parses).
fn bad_siren_check_digit(reference: &str) -> bool {
    let reference = reference.trim();
    let members: Vec<&str> = match reference.strip_prefix("groupement:") {
        Some(rest) => rest.split('+').map(str::trim).collect(),
        None => vec![reference],
    };
    if reference.starts_with("groupement:") && members.len() < 2 {
        return false;
    }
    let mut bad = false;
    for m in members {
        let nine_digits = m
            .strip_prefix("epci:")
            .is_some_and(|code| code.len() == 9 && code.bytes().all(|c| c.is_ascii_digit()));
        match CollectiviteRef::parse(m) {
            Ok(_) => {}
            Err(_) if nine_digits => bad = true,
            Err(_) => return false,
        }
    }
    bad
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl SimulationInput {
    /// Parses and checks every input against the programme; the first problem is reported in
    /// French.
    pub fn parse(&self, programme: &Programme, today: NaiveDate) -> AppResult<SimulationRequest> {
        let measures = match non_empty(&self.mesure) {
            Some(m) => {
                if programme.measure(m).is_none() {
                    return Err(AppError::Invalid(format!(
                        "mesure inconnue : « {m} » (mesures : {})",
                        programme
                            .measures()
                            .map(|m| m.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                vec![m.to_string()]
            }
            None => programme
                .measures()
                .map(|m| m.id.as_str().to_string())
                .collect(),
        };
        if self.demandeur.trim().is_empty() {
            return Err(AppError::Invalid(
                "demandeur manquant : indiquez TYPE:CODE, par exemple commune:95127".into(),
            ));
        }
        let applicant = ApplicantRef::parse(&self.demandeur).map_err(|e| {
            // A SIREN of nine digits whose check digit is wrong names no EPCI: it is unknown
            // (404) as any other absent code, not malformed (the API's document cannot spell
            // a check digit).
            if bad_siren_check_digit(&self.demandeur) {
                AppError::NotFound(format!(
                    "collectivité inconnue dans le référentiel {} : {e}",
                    programme.vintage.year()
                ))
            } else {
                AppError::Invalid(e)
            }
        })?;
        let rules = &programme.rules;
        let bounds = &programme.plausibility;
        let mut expenses = Vec::new();
        for (cat, euros) in &self.depenses {
            let cat = cat.trim();
            if rules.category(cat).is_none() {
                return Err(AppError::Invalid(format!(
                    "catégorie de dépense inconnue : « {cat} » (catégories : {})",
                    rules
                        .categories
                        .iter()
                        .map(|c| c.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            let label = format!("dépense « {cat} »");
            let amount = match Cents::parse_euros(euros) {
                Ok(a) => Some(a),
                Err(MoneyError::Overflow) => None,
                Err(e) => return Err(AppError::Invalid(format!("{label} : {e}"))),
            };
            let amount = plausible_amount(&label, amount, bounds)?;
            expenses.push((cat.to_string(), amount));
        }
        // The lines together: each may be plausible and their sum not.
        let total = expenses
            .iter()
            .try_fold(0i64, |sum, (_, c)| sum.checked_add(c.get()))
            .map(Cents::new);
        if expenses.len() > 1 {
            plausible_amount("somme des lignes de dépenses", total, bounds).map_err(
                |e| match e {
                    AppError::Invalid(m) => AppError::Inconsistent(m),
                    other => other,
                },
            )?;
        }
        if let Some(c) = non_empty(&self.cout) {
            let label = "coût du projet";
            let amount = match Cents::parse_euros(c) {
                Ok(a) => Some(a),
                Err(MoneyError::Overflow) => None,
                Err(e) => return Err(AppError::Invalid(format!("{label} : {e}"))),
            };
            let amount = plausible_amount(label, amount, bounds)?;
            if expenses.is_empty() {
                expenses.push(("prestation".to_string(), amount));
            } else if total != Some(amount) {
                return Err(AppError::Inconsistent(format!(
                    "le coût du projet ({amount}) diffère de la somme des lignes de dépenses ({}) : indiquez l’un ou l’autre, ou des montants cohérents",
                    total.map(|t| t.to_string()).unwrap_or_default()
                )));
            }
        }
        // A date given empty is not a date (the API's schema says `format: date`); the page
        // sends no date for an empty field.
        let filing_date = match self.date_depot.as_deref() {
            Some(s) => parse_date("date de dépôt", s, bounds)?,
            None => today,
        };
        let mut facts = BTreeMap::new();
        if let Some(s) = self.date_fin.as_deref() {
            facts.insert(
                "date_fin".to_string(),
                Value::Date(parse_date("date de fin", s, bounds)?),
            );
        }
        for (name, raw) in &self.faits {
            let name = name.trim();
            let Some(i) = rules.fact(name) else {
                return Err(AppError::Invalid(format!(
                    "fait inconnu : « {name} » (faits : {})",
                    rules
                        .facts
                        .iter()
                        .map(|f| f.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            };
            let def = &rules.facts[i];
            if Some(i) == rules.date_fact() {
                return Err(AppError::Invalid(
                    "la date de dépôt se donne par --date-depot (date_depot dans l’API)".into(),
                ));
            }
            if def.ty == Type::Date && iso_date(raw).is_none() {
                return Err(AppError::Invalid(format!(
                    "fait « {name} » : date invalide : « {} » (AAAA-MM-JJ attendu)",
                    raw.trim()
                )));
            }
            let v = Value::parse_literal(raw, def.ty)
                .map_err(|e| AppError::Invalid(format!("fait « {name} » : {e}")))?;
            if def.ty == Type::Nombre {
                if let Value::Nombre(d) = &v {
                    if d.is_sign_negative() || !d.fract().is_zero() {
                        return Err(AppError::Invalid(format!(
                            "fait « {name} » : un nombre entier positif est attendu, « {} » reçu",
                            raw.trim()
                        )));
                    }
                    if *d > rust_decimal::Decimal::from(bounds.max_count) {
                        return Err(AppError::Invalid(format!(
                            "fait « {name} » : nombre invraisemblable, « {} » (au plus {} ; vérifiez la saisie)",
                            raw.trim(),
                            guichet_programme::value::french_decimal(rust_decimal::Decimal::from(
                                bounds.max_count
                            ))
                        )));
                    }
                }
            }
            match &v {
                Value::Date(d) => {
                    plausible_date(&format!("fait « {name} »"), *d, bounds)?;
                }
                Value::Montant(c) if *c > rust_decimal::Decimal::from(bounds.max_amount.get()) => {
                    plausible_amount(&format!("fait « {name} »"), None, bounds)?;
                }
                _ => {}
            }
            if let (Some(allowed), Value::Texte(t)) = (&def.allowed, &v) {
                if !allowed.iter().any(|a| a.as_str() == &**t) {
                    return Err(AppError::Invalid(format!(
                        "fait « {name} » : « {t} » n’est pas une valeur possible ({})",
                        allowed.join(", ")
                    )));
                }
            }
            facts.insert(name.to_string(), v);
        }
        Ok(SimulationRequest {
            measures,
            applicant,
            expenses,
            filing_date,
            facts,
        })
    }
}

/// One measure's answer, or why it could not be evaluated (a groupement spanning several
/// régions asking for a territorial measure).
#[derive(Debug, Clone)]
pub struct MeasureOutcome {
    pub measure: String,
    pub result: Result<Evaluation, String>,
}

#[derive(Debug, Clone)]
pub struct Simulation {
    pub applicant: Applicant,
    pub filing_date: NaiveDate,
    pub programme_version: String,
    pub outcomes: Vec<MeasureOutcome>,
}

/// The JSON answer of the CLI (`--json`) and of the API: one measure.
#[derive(Debug, Clone, Serialize)]
pub struct SimulationOutput {
    pub mesure: String,
    pub mesure_nom: String,
    pub eligible: bool,
    /// Reason codes; empty when eligible.
    pub motifs: Vec<String>,
    pub motifs_detail: Vec<Reason>,
    pub donnees_manquantes: Vec<Missing>,
    pub hypotheses: Vec<Assumption>,
    pub depenses: Vec<ExpenseLine>,
    pub assiette_centimes: Option<i64>,
    /// Decimal string (`"0.5"`).
    pub taux: Option<String>,
    pub taux_max: Option<String>,
    pub montant_centimes: Option<i64>,
    pub montant_max_centimes: Option<i64>,
    /// `national` or the région code whose variant applied.
    pub variante: String,
    pub variante_nom: String,
    pub date_depot: NaiveDate,
    pub demandeur: Applicant,
    pub version_programme: String,
    pub trace: Vec<Step>,
}

impl SimulationOutput {
    pub fn new(programme: &Programme, sim: &Simulation, ev: &Evaluation) -> Self {
        SimulationOutput {
            mesure: ev.measure.clone(),
            mesure_nom: programme
                .measure(&ev.measure)
                .map(|m| m.name.clone())
                .unwrap_or_default(),
            eligible: ev.eligible,
            motifs: ev.reasons.iter().map(|r| r.code.clone()).collect(),
            motifs_detail: ev.reasons.clone(),
            donnees_manquantes: ev.missing.clone(),
            hypotheses: ev.assumptions.clone(),
            depenses: ev.expenses.clone(),
            assiette_centimes: ev.base.map(|c| c.get()),
            taux: ev.rate.map(|d| d.normalize().to_string()),
            taux_max: ev.rate_max.map(|d| d.normalize().to_string()),
            montant_centimes: ev.amount.map(|c| c.get()),
            montant_max_centimes: ev.amount_max.map(|c| c.get()),
            variante: ev.territory.clone().unwrap_or_else(|| "national".into()),
            variante_nom: ev.territory_name.clone(),
            date_depot: ev.date,
            demandeur: sim.applicant.clone(),
            version_programme: sim.programme_version.clone(),
            trace: ev.trace.clone(),
        }
    }
}

/// The explanation in plain French, as the CLI prints it.
pub fn explain(programme: &Programme, sim: &Simulation, ev: &Evaluation) -> String {
    use guichet_programme::value::french_rate;
    let mut out = String::new();
    let name = programme
        .measure(&ev.measure)
        .map(|m| m.name.as_str())
        .unwrap_or_default();
    out.push_str(&format!("Mesure {} : {name}\n", ev.measure));
    out.push_str(&format!(
        "Demandeur : {} ({}), {} habitants ({})\n",
        sim.applicant.nom,
        sim.applicant.reference,
        guichet_programme::value::french_decimal(rust_decimal::Decimal::from(
            sim.applicant.population
        )),
        sim.applicant.population_source
    ));
    out.push_str(&format!(
        "Règles : {} ; dépôt le {} ; programme {}\n\n",
        ev.territory_name,
        ev.date.format("%d/%m/%Y"),
        sim.programme_version
    ));
    if ev.eligible {
        out.push_str("Éligible.\n");
    } else if ev
        .reasons
        .iter()
        .all(|r| r.code == guichet_programme::eval::MISSING_REASON)
    {
        out.push_str("Éligibilité à confirmer : des informations manquent.\n");
    } else {
        out.push_str("Non éligible :\n");
    }
    for r in &ev.reasons {
        out.push_str(&format!("  - {} [{}]\n", r.message, r.code));
    }
    for m in &ev.missing {
        out.push_str(&format!(
            "  ? {} ({})\n",
            m.question.as_deref().unwrap_or(&m.titre),
            m.nom
        ));
    }
    let money = |c: Option<Cents>| {
        c.map(|c| c.to_string())
            .unwrap_or_else(|| "non déterminé".into())
    };
    let rate = |d: Option<rust_decimal::Decimal>| {
        d.map(french_rate).unwrap_or_else(|| "non déterminé".into())
    };
    out.push('\n');
    out.push_str(&format!("Assiette éligible : {}\n", money(ev.base)));
    out.push_str(&format!(
        "Taux : {} (maximum {})\n",
        rate(ev.rate),
        rate(ev.rate_max)
    ));
    out.push_str(&format!("Montant proposé : {}\n", money(ev.amount)));
    out.push_str(&format!("Montant maximal : {}\n", money(ev.amount_max)));
    for a in &ev.assumptions {
        out.push_str(&format!("Hypothèse : {} = {}\n", a.titre, a.valeur));
    }
    out.push_str("\nExplication :\n");
    for s in &ev.trace {
        out.push_str(&format!("  • {}\n", s.sentence()));
    }
    out
}

impl App {
    /// Today in Paris, by the platform's clock.
    pub fn today(&self) -> NaiveDate {
        self.clock
            .now()
            .with_timezone(&chrono_tz::Europe::Paris)
            .date_naive()
    }
}

/// The simulator's use cases: an applicant resolved from the referential, a request evaluated
/// by the rules engine (`app.simulation()`).
#[derive(Clone, Copy)]
pub struct Simulator<'a> {
    pub(crate) app: &'a App,
}

impl Simulator<'_> {
    /// Resolves an applicant in the programme's vintage of the referential, from the in-memory
    /// index of that vintage (no query: the members, their départements and régions and the
    /// communes per département are computed once per import).
    pub async fn resolve_applicant(&self, r: &ApplicantRef) -> AppResult<Applicant> {
        let vintage = self.app.programme.vintage;
        let Some(index) = self.app.search.vintage(&self.app.db, vintage).await? else {
            return Err(AppError::Unavailable(format!(
                "le référentiel {vintage} (millésime du programme) n’est pas importé : guichet referentiel import --millesime {vintage}"
            )));
        };
        let not_found = |r: &CollectiviteRef| {
            AppError::NotFound(format!(
                "collectivité inconnue dans le référentiel {vintage} : {r}"
            ))
        };
        let refs: Vec<&CollectiviteRef> = match r {
            ApplicantRef::One(one) => vec![one],
            ApplicantRef::Group(m) => m.iter().collect(),
        };
        let mut names = Vec::new();
        let mut members = Vec::new();
        let mut nature = None;
        for one in refs {
            let place = index
                .find(one.kind, &one.code)
                .ok_or_else(|| not_found(one))?;
            let communes = index
                .member_communes(one.kind, &one.code)
                .ok_or_else(|| not_found(one))?;
            names.push(place.name);
            nature = place.nature.map(str::to_string);
            members.extend(communes.into_iter().map(|c| Member {
                insee: c.code.to_string(),
                population: c.population,
                departement: c.departement.unwrap_or_default().to_string(),
                region: c.region.map(str::to_string),
            }));
        }
        let counts = index.communes_per_departement();
        Ok(match r {
            ApplicantRef::One(one) => Applicant::from_members(
                one.to_string(),
                names.concat(),
                one.kind.slug(),
                &members,
                counts,
                nature,
                vintage.year(),
            ),
            ApplicantRef::Group(_) => Applicant::from_members(
                r.to_string(),
                format!("Groupement : {}", names.join(", ")),
                "groupement",
                &members,
                counts,
                None,
                vintage.year(),
            ),
        })
    }

    /// Runs a simulation: parses the input, resolves the applicant, evaluates the measures.
    pub async fn simulate(&self, input: &SimulationInput) -> AppResult<Simulation> {
        let req = input.parse(&self.app.programme, self.app.today())?;
        let applicant = self.resolve_applicant(&req.applicant).await?;
        Ok(self.evaluate_request(&req, applicant))
    }

    /// Evaluates a parsed request for a resolved applicant (no I/O).
    pub fn evaluate_request(&self, req: &SimulationRequest, applicant: Applicant) -> Simulation {
        let mut facts = applicant.facts();
        // Overrides win over the referential's facts.
        for (k, v) in &req.facts {
            facts.insert(k.clone(), v.clone());
        }
        let situation = Situation {
            date: Some(req.filing_date),
            facts,
            expenses: req.expenses.clone(),
        };
        let outcomes = match self.app.programme.rules.prepare(&situation) {
            Err(e) => req
                .measures
                .iter()
                .map(|m| MeasureOutcome {
                    measure: m.clone(),
                    result: Err(e.to_string()),
                })
                .collect(),
            Ok(prepared) => req
                .measures
                .iter()
                .map(|m| MeasureOutcome {
                    measure: m.clone(),
                    result: self
                        .app
                        .programme
                        .rules
                        .evaluate(m, &prepared, true)
                        .map_err(|e| e.to_string()),
                })
                .collect(),
        };
        Simulation {
            applicant,
            filing_date: req.filing_date,
            programme_version: self.app.programme.version.clone(),
            outcomes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applicant_references() {
        assert!(matches!(
            ApplicantRef::parse("commune:95127"),
            Ok(ApplicantRef::One(_))
        ));
        let g = ApplicantRef::parse("groupement:epci:200054781+epci:200058519").unwrap();
        assert_eq!(g.to_string(), "groupement:epci:200054781+epci:200058519");
        assert!(ApplicantRef::parse("groupement:epci:200054781").is_err());
        assert!(ApplicantRef::parse("groupement:epci:200054781+epci:200054781").is_err());
        assert!(ApplicantRef::parse("ville:95127").is_err());
    }

    fn m(insee: &str, pop: i64, dep: &str, reg: &str) -> Member {
        Member {
            insee: insee.into(),
            population: pop,
            departement: dep.into(),
            region: Some(reg.into()),
        }
    }

    #[test]
    fn a_grouping_counts_each_commune_once_and_sees_whole_departements() {
        let counts: HashMap<String, usize> = [("75".to_string(), 1), ("95".to_string(), 3)]
            .into_iter()
            .collect();
        let members = vec![
            m("95001", 100, "95", "11"),
            m("95002", 200, "95", "11"),
            m("95001", 100, "95", "11"),
        ];
        let a = Applicant::from_members(
            "g".into(),
            "G".into(),
            "groupement",
            &members,
            &counts,
            None,
            2021,
        );
        assert_eq!(a.population, 300);
        assert_eq!(a.communes, 2);
        assert!(!a.couvre_departement);
        assert_eq!(a.region.as_deref(), Some("11"));
        let paris = Applicant::from_members(
            "commune:75056".into(),
            "Paris".into(),
            "commune",
            &[m("75056", 2_000_000, "75", "11")],
            &counts,
            None,
            2021,
        );
        assert!(
            paris.couvre_departement,
            "Paris is the only commune of its département"
        );
        let split = Applicant::from_members(
            "g".into(),
            "G".into(),
            "groupement",
            &[m("95001", 1, "95", "11"), m("60001", 1, "60", "32")],
            &counts,
            None,
            2021,
        );
        assert_eq!(split.region, None);
    }
}
