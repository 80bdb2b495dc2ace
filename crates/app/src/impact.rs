//! Impact of a programme change (what OpenFisca calls a reform): every applicant of the
//! programme's referential evaluated under two versions of the programme, and what changes,
//! per measure and per territory.
//!
//! The sweep runs the incremental [`Evaluator`](guichet_programme::Evaluator) of each version
//! (`outcome_index`, no trace), one applicant after the other, and keeps only the applicants
//! whose answer changed: the cost is two whole-referential sweeps and the reading of the
//! referential, well under 2 s for ITN7 and the 2021 vintage (see the README).
//!
//! What is evaluated is a list of [`Subject`]s: today every collectivité of the referential
//! (communes, EPCI, départements, régions), each filing the same project (the `--cout` of the
//! request, one `prestation` line). Filed dossiers will be subjects too, each with its own
//! expenses and answers; the report already says that none were evaluated.

use crate::error::{AppError, AppResult};
use crate::simulation::{Applicant, Member};
use crate::App;
use chrono::NaiveDate;
use guichet_domain::access::{Principal, ServiceSet};
use guichet_domain::{Cents, Vintage};
use guichet_programme::eval::MISSING_REASON;
use guichet_programme::{Programme, Situation, Value};
use guichet_storage::referentiel as store;
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

/// What a person typed, before parsing (the CLI and the page fill this).
#[derive(Debug, Clone, Default)]
pub struct ImpactInput {
    /// Measure identifiers; none: every measure of either version.
    pub mesures: Vec<String>,
    /// Euros (`12345.67`, `12 345,67`): the project every applicant files, one `prestation`
    /// line. Without it no amount is computed (eligibility and rates are still compared).
    pub cout: Option<String>,
    /// AAAA-MM-JJ; default: today by the platform's clock.
    pub date_depot: Option<String>,
}

/// A parsed impact request.
#[derive(Debug, Clone)]
pub struct ImpactRequest {
    pub measures: Vec<String>,
    pub cost: Option<Cents>,
    pub filing_date: NaiveDate,
}

impl ImpactInput {
    /// Checks the input against both versions; the first problem is reported in French.
    pub fn parse(
        &self,
        before: &Programme,
        after: &Programme,
        today: NaiveDate,
    ) -> AppResult<ImpactRequest> {
        if before.vintage != after.vintage {
            return Err(AppError::Invalid(format!(
                "les deux versions portent sur des millésimes différents du référentiel ({} avant, {} après) : l’impact compare des règles sur les mêmes demandeurs",
                before.vintage, after.vintage
            )));
        }
        let all = all_measures(before, after);
        let mut measures = Vec::new();
        for m in &self.mesures {
            let m = m.trim();
            if m.is_empty() {
                continue;
            }
            if !all.iter().any(|a| a == m) {
                return Err(AppError::Invalid(format!(
                    "mesure inconnue : « {m} » (mesures : {})",
                    all.join(", ")
                )));
            }
            if !measures.iter().any(|x: &String| x == m) {
                measures.push(m.to_string());
            }
        }
        if measures.is_empty() {
            measures = all;
        }
        let cost = match self
            .cout
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(c) => Some(
                Cents::parse_euros(c)
                    .map_err(|e| AppError::Invalid(format!("coût du projet : {e}")))?,
            ),
            None => None,
        };
        let filing_date = match self
            .date_depot
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
                AppError::Invalid(format!(
                    "date de dépôt invalide : « {s} » (format AAAA-MM-JJ, par exemple 2021-06-01)"
                ))
            })?,
            None => today,
        };
        Ok(ImpactRequest {
            measures,
            cost,
            filing_date,
        })
    }
}

/// The measures of either version: the new version's order, then those it removed.
pub fn all_measures(before: &Programme, after: &Programme) -> Vec<String> {
    let mut all: Vec<String> = after.measures().map(|m| m.id.to_string()).collect();
    for m in before.measures() {
        if !all.iter().any(|a| a == m.id.as_str()) {
            all.push(m.id.to_string());
        }
    }
    all
}

/// Whose applicants a report covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImpactScope {
    /// Every applicant (administrators, the command line).
    National,
    /// The applicants whose territory touches this région (a regional coordinator).
    Region(String),
}

impl ImpactScope {
    /// What a user may see: an administrator everything, a coordinator their région; no one
    /// else sees impact reports.
    pub fn for_principal(p: &Principal) -> AppResult<ImpactScope> {
        // The report covers the services the principal sees: all of them, or a région's.
        let scope = p.scope();
        if !scope.can(guichet_domain::Action::ReadImpact) {
            return Err(AppError::Forbidden);
        }
        match scope.services {
            ServiceSet::All => Ok(ImpactScope::National),
            ServiceSet::Region { region, .. } => Ok(ImpactScope::Region(region)),
            ServiceSet::Own(_) | ServiceSet::Nothing => Err(AppError::Forbidden),
        }
    }

    fn admits(&self, a: &Applicant) -> bool {
        match self {
            ImpactScope::National => true,
            ImpactScope::Region(r) => a.regions.contains(r),
        }
    }
}

/// One thing evaluated: today a collectivité of the referential filing the request's project.
/// A filed dossier will be one too, with its own expenses and answers.
#[derive(Debug, Clone)]
pub struct Subject {
    pub applicant: Applicant,
    /// Its expense lines; `None`: the request's project (`--cout`).
    pub expenses: Option<Vec<(String, Cents)>>,
}

/// Every applicant of a vintage, with the names of its régions and départements.
#[derive(Debug, Clone, Default)]
pub struct Applicants {
    pub subjects: Vec<Subject>,
    pub region_names: HashMap<String, String>,
    pub departement_names: HashMap<String, String>,
}

/// Builds every applicant of a vintage as the simulator resolves it: each commune, each EPCI
/// with its member communes, each département, each région (the same facts as
/// [`App::resolve_applicant`]).
pub fn applicants_of(data: &store::VintageData, vintage: Vintage) -> Vec<Applicant> {
    let year = vintage.year();
    let mut dep_counts: HashMap<String, usize> = HashMap::new();
    let mut by_dep: HashMap<&str, Vec<Member>> = HashMap::new();
    let mut by_region: HashMap<&str, Vec<Member>> = HashMap::new();
    let mut by_epci: HashMap<&str, Vec<Member>> = HashMap::new();
    let member = |c: &store::CommuneRow| Member {
        insee: c.insee.clone(),
        population: c.population,
        departement: c.departement_code.clone(),
        region: c.region_code.clone(),
    };
    for c in &data.communes {
        *dep_counts.entry(c.departement_code.clone()).or_default() += 1;
        by_dep
            .entry(c.departement_code.as_str())
            .or_default()
            .push(member(c));
        if let Some(r) = &c.region_code {
            by_region.entry(r.as_str()).or_default().push(member(c));
        }
        if let Some(e) = &c.epci_siren {
            by_epci.entry(e.as_str()).or_default().push(member(c));
        }
    }
    let mut out = Vec::with_capacity(
        data.communes.len() + data.epci.len() + data.departements.len() + data.regions.len(),
    );
    for c in &data.communes {
        out.push(Applicant::from_members(
            format!("commune:{}", c.insee),
            c.name.clone(),
            "commune",
            &[member(c)],
            &dep_counts,
            None,
            year,
        ));
    }
    for e in &data.epci {
        let members = by_epci.remove(e.siren.as_str()).unwrap_or_default();
        out.push(Applicant::from_members(
            format!("epci:{}", e.siren),
            e.name.clone(),
            "epci",
            &members,
            &dep_counts,
            Some(e.epci_type.clone()),
            year,
        ));
    }
    for d in &data.departements {
        let members = by_dep.remove(d.code.as_str()).unwrap_or_default();
        out.push(Applicant::from_members(
            format!("departement:{}", d.code),
            d.name.clone(),
            "departement",
            &members,
            &dep_counts,
            None,
            year,
        ));
    }
    for r in &data.regions {
        let members = by_region.remove(r.code.as_str()).unwrap_or_default();
        out.push(Applicant::from_members(
            format!("region:{}", r.code),
            r.name.clone(),
            "region",
            &members,
            &dep_counts,
            None,
            year,
        ));
    }
    out
}

/// An applicant's answer for one measure, as the report shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every condition holds.
    Eligible,
    /// No condition excludes it, but facts of the project are missing (an end date, say):
    /// the amount is what it would get.
    AConfirmer,
    /// A condition excludes it.
    NonEligible,
    /// The measure cannot be evaluated for it (a territorial measure for a commune of an
    /// overseas collectivité, which has no région).
    NonEvaluable,
    /// The measure does not exist in this version.
    MesureAbsente,
}

impl Status {
    /// Eligible, or eligible subject to the project's own answers: what the counts call
    /// « éligible ».
    pub fn potentially_eligible(self) -> bool {
        matches!(self, Status::Eligible | Status::AConfirmer)
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::Eligible => "éligible",
            Status::AConfirmer => "éligible sous réserve",
            Status::NonEligible => "non éligible",
            Status::NonEvaluable => "non évaluable",
            Status::MesureAbsente => "mesure absente",
        }
    }
}

/// What the sweep keeps of one answer, without allocating.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Brief {
    status: Status,
    amount: Option<Cents>,
    amount_max: Option<Cents>,
    rate: Option<Decimal>,
    rate_max: Option<Decimal>,
}

impl Brief {
    fn bare(status: Status) -> Brief {
        Brief {
            status,
            amount: None,
            amount_max: None,
            rate: None,
            rate_max: None,
        }
    }
}

/// One side of a changed applicant's answer.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    pub statut: Status,
    /// Reason codes (or, when not evaluable, why).
    pub motifs: Vec<String>,
    pub montant_centimes: Option<i64>,
    pub montant_max_centimes: Option<i64>,
    /// Decimal string (`"0.5"`).
    pub taux: Option<String>,
    pub taux_max: Option<String>,
}

impl Answer {
    fn new(b: &Brief, reasons: &[String]) -> Answer {
        Answer {
            statut: b.status,
            motifs: reasons.to_vec(),
            montant_centimes: b.amount.map(Cents::get),
            montant_max_centimes: b.amount_max.map(Cents::get),
            taux: b.rate.map(|d| d.normalize().to_string()),
            taux_max: b.rate_max.map(|d| d.normalize().to_string()),
        }
    }
}

/// An applicant whose answer to a measure changes.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub mesure: String,
    /// `commune:78073`…
    pub reference: String,
    pub nom: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub population: i64,
    /// Its région, when it lies in one only.
    pub region: Option<String>,
    /// Its département, when it lies in one only.
    pub departement: Option<String>,
    pub avant: Answer,
    pub apres: Answer,
    /// Proposed amount after minus before (missing amounts count 0).
    pub ecart_centimes: i64,
}

/// Counts for one measure over a set of applicants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub evalues: u64,
    pub eligibles_avant: u64,
    pub eligibles_apres: u64,
    pub devenus_eligibles: u64,
    pub devenus_ineligibles: u64,
    /// Amount, rate or status changed, eligible on both sides or neither.
    pub modifies: u64,
    pub montant_avant_centimes: i64,
    pub montant_apres_centimes: i64,
}

impl Tally {
    /// Applicants whose answer changes.
    pub fn changes(&self) -> u64 {
        self.devenus_eligibles + self.devenus_ineligibles + self.modifies
    }

    fn merge(&mut self, o: &Tally) -> AppResult<()> {
        let overflow = || AppError::Invalid("montant total trop grand pour être compté".into());
        self.evalues += o.evalues;
        self.eligibles_avant += o.eligibles_avant;
        self.eligibles_apres += o.eligibles_apres;
        self.devenus_eligibles += o.devenus_eligibles;
        self.devenus_ineligibles += o.devenus_ineligibles;
        self.modifies += o.modifies;
        self.montant_avant_centimes = self
            .montant_avant_centimes
            .checked_add(o.montant_avant_centimes)
            .ok_or_else(overflow)?;
        self.montant_apres_centimes = self
            .montant_apres_centimes
            .checked_add(o.montant_apres_centimes)
            .ok_or_else(overflow)?;
        Ok(())
    }

    fn add(&mut self, before: &Brief, after: &Brief, changed: bool) -> AppResult<()> {
        let (b, a) = (
            before.status.potentially_eligible(),
            after.status.potentially_eligible(),
        );
        self.evalues += 1;
        self.eligibles_avant += u64::from(b);
        self.eligibles_apres += u64::from(a);
        match (b, a) {
            (false, true) => self.devenus_eligibles += 1,
            (true, false) => self.devenus_ineligibles += 1,
            _ if changed => self.modifies += 1,
            _ => {}
        }
        let overflow = || AppError::Invalid("montant total trop grand pour être compté".into());
        self.montant_avant_centimes = self
            .montant_avant_centimes
            .checked_add(before.amount.map_or(0, Cents::get))
            .ok_or_else(overflow)?;
        self.montant_apres_centimes = self
            .montant_apres_centimes
            .checked_add(after.amount.map_or(0, Cents::get))
            .ok_or_else(overflow)?;
        Ok(())
    }
}

/// A territory's counts for one measure. `code: None` gathers the applicants that lie in
/// several (an EPCI across two départements, a région for the départements table).
#[derive(Debug, Clone, Serialize)]
pub struct TerritoryTally {
    pub code: Option<String>,
    pub nom: String,
    #[serde(flatten)]
    pub tally: Tally,
}

/// One measure's impact.
#[derive(Debug, Clone, Serialize)]
pub struct MeasureImpact {
    pub mesure: String,
    pub nom: String,
    pub total: Tally,
    pub regions: Vec<TerritoryTally>,
    pub departements: Vec<TerritoryTally>,
}

/// The whole report, as `--json` prints it and the page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ImpactReport {
    pub programme: String,
    pub version_avant: String,
    pub version_apres: String,
    pub millesime: u16,
    pub date_depot: NaiveDate,
    /// The project every applicant files (one `prestation` line); none: no amount computed.
    pub cout_centimes: Option<i64>,
    /// `national`, or the région code of a coordinator's report.
    pub perimetre: String,
    pub perimetre_nom: String,
    /// Collectivités of the referential evaluated (each for every measure).
    pub demandeurs: u64,
    /// Filed dossiers evaluated with their own expenses: none until the platform receives
    /// dossiers.
    pub dossiers: u64,
    pub mesures: Vec<MeasureImpact>,
    /// Every applicant whose answer to a measure changes, measure by measure, then by
    /// reference.
    pub changements: Vec<Change>,
}

/// What « éligible » means in the counts, said once for every door.
pub const ELIGIBLE_NOTE: &str = "« éligible » : aucune condition n’exclut le demandeur ; les informations propres au projet qui ne sont pas fournies (date de fin, réponses du demandeur) restent à confirmer et le montant est celui qu’il obtiendrait.";

/// Said where the dossiers will be counted.
pub const DOSSIERS_NOTE: &str = "Dossiers déposés : aucun évalué (la plateforme ne reçoit pas encore de dossiers ; ils le seront avec leurs propres dépenses).";

struct Side<'p> {
    programme: &'p Programme,
    evaluator: guichet_programme::Evaluator<'p>,
    /// Measure indices in this version, in the request's order (`None`: absent).
    index: Vec<Option<usize>>,
    briefs: Vec<Brief>,
    /// Each measure's reason codes, joined by '\n' (kept without allocating once warm).
    reasons: Vec<String>,
}

impl<'p> Side<'p> {
    fn new(programme: &'p Programme, measures: &[String]) -> Side<'p> {
        Side {
            programme,
            evaluator: programme.rules.evaluator(),
            index: measures
                .iter()
                .map(|m| programme.rules.measure_index(m))
                .collect(),
            briefs: vec![Brief::bare(Status::MesureAbsente); measures.len()],
            reasons: vec![String::new(); measures.len()],
        }
    }

    /// Evaluates every requested measure for one situation.
    fn run(&mut self, situation: &Situation) {
        let programme = self.programme;
        let prepared = programme.rules.prepare(situation);
        for (k, idx) in self.index.iter().enumerate() {
            let reasons = &mut self.reasons[k];
            reasons.clear();
            let Some(idx) = *idx else {
                self.briefs[k] = Brief::bare(Status::MesureAbsente);
                continue;
            };
            let p = match &prepared {
                Ok(p) => p,
                Err(e) => {
                    reasons.push_str(&e.to_string());
                    self.briefs[k] = Brief::bare(Status::NonEvaluable);
                    continue;
                }
            };
            self.briefs[k] = match self.evaluator.outcome_index(idx, p) {
                Ok(o) => {
                    let mut only_missing = true;
                    for (i, r) in o.reasons().enumerate() {
                        if i > 0 {
                            reasons.push('\n');
                        }
                        reasons.push_str(r);
                        only_missing &= r == MISSING_REASON;
                    }
                    Brief {
                        status: if o.eligible {
                            Status::Eligible
                        } else if only_missing {
                            Status::AConfirmer
                        } else {
                            Status::NonEligible
                        },
                        amount: o.amount,
                        amount_max: o.amount_max,
                        rate: o.rate,
                        rate_max: o.rate_max,
                    }
                }
                Err(e) => {
                    reasons.push_str(&e.to_string());
                    Brief::bare(Status::NonEvaluable)
                }
            };
        }
    }

    fn reasons(&self, k: usize) -> Vec<String> {
        self.reasons[k]
            .split('\n')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// The situation a subject files under one version: the referential's facts this version
/// declares, the filing date, and its expenses.
fn situation(
    programme: &Programme,
    facts: &BTreeMap<String, Value>,
    date: NaiveDate,
    expenses: &[(String, Cents)],
) -> Situation {
    let rules = &programme.rules;
    Situation {
        date: Some(date),
        facts: facts
            .iter()
            .filter(|(name, _)| rules.fact(name).is_some())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        expenses: expenses.to_vec(),
    }
}

/// What one thread found over its share of the subjects.
struct Part<'a> {
    evaluated: u64,
    totals: Vec<Tally>,
    /// Per measure, per région code (`None`: several or none).
    by_region: Vec<HashMap<Option<&'a str>, Tally>>,
    /// Per measure, per département code (`None`: several).
    by_dep: Vec<HashMap<Option<&'a str>, Tally>>,
    changes: Vec<Change>,
}

impl<'a> Part<'a> {
    fn merge(&mut self, other: Part<'a>) -> AppResult<()> {
        self.evaluated += other.evaluated;
        for (t, o) in self.totals.iter_mut().zip(&other.totals) {
            t.merge(o)?;
        }
        for (mine, theirs) in [
            (&mut self.by_region, other.by_region),
            (&mut self.by_dep, other.by_dep),
        ] {
            for (m, o) in mine.iter_mut().zip(theirs) {
                for (code, t) in o {
                    m.entry(code).or_default().merge(&t)?;
                }
            }
        }
        self.changes.extend(other.changes);
        Ok(())
    }
}

/// Sweeps a contiguous share of the subjects under both versions, with an evaluator of its own
/// per version.
fn sweep_part<'a>(
    before: &Programme,
    after: &Programme,
    req: &ImpactRequest,
    subjects: &[&'a Subject],
) -> AppResult<Part<'a>> {
    let measures = &req.measures;
    let mut sides = [Side::new(before, measures), Side::new(after, measures)];
    let n = measures.len();
    let mut part = Part {
        evaluated: 0,
        totals: vec![Tally::default(); n],
        by_region: vec![HashMap::new(); n],
        by_dep: vec![HashMap::new(); n],
        changes: Vec::new(),
    };
    let project: Vec<(String, Cents)> = req
        .cost
        .map(|c| vec![("prestation".to_string(), c)])
        .unwrap_or_default();
    for subject in subjects {
        part.evaluated += 1;
        let a = &subject.applicant;
        let facts = a.facts();
        let expenses = subject.expenses.as_deref().unwrap_or(&project);
        for side in &mut sides {
            let s = situation(side.programme, &facts, req.filing_date, expenses);
            side.run(&s);
        }
        let region = a.region.as_deref();
        let departement = if a.departements.len() == 1 {
            a.departements.iter().next().map(String::as_str)
        } else {
            None
        };
        for (k, measure) in measures.iter().enumerate() {
            let (b, f) = (&sides[0].briefs[k], &sides[1].briefs[k]);
            let changed = b != f;
            part.totals[k].add(b, f, changed)?;
            part.by_region[k]
                .entry(region)
                .or_default()
                .add(b, f, changed)?;
            part.by_dep[k]
                .entry(departement)
                .or_default()
                .add(b, f, changed)?;
            if changed {
                let amount = |x: &Brief| x.amount.map_or(0, Cents::get);
                part.changes.push(Change {
                    mesure: measure.clone(),
                    reference: a.reference.clone(),
                    nom: a.nom.clone(),
                    kind: a.kind.clone(),
                    population: a.population,
                    region: region.map(str::to_string),
                    departement: departement.map(str::to_string),
                    avant: Answer::new(b, &sides[0].reasons(k)),
                    apres: Answer::new(f, &sides[1].reasons(k)),
                    ecart_centimes: amount(f).saturating_sub(amount(b)),
                });
            }
        }
    }
    Ok(part)
}

/// Subjects per thread below which one thread does it all.
const SUBJECTS_PER_THREAD: usize = 2_000;

/// Most threads a report uses.
const MAX_THREADS: usize = 4;

/// Sweeps every subject under both versions and counts what changes (no I/O: the benchmark
/// and the tests call it directly). The subjects are shared between a few threads (as many
/// as the machine has cores, at most [`MAX_THREADS`]), each taking a contiguous run of them.
pub fn compare(
    before: &Programme,
    after: &Programme,
    req: &ImpactRequest,
    applicants: &Applicants,
    scope: &ImpactScope,
) -> AppResult<ImpactReport> {
    let admitted = applicants
        .subjects
        .iter()
        .filter(|s| scope.admits(&s.applicant))
        .count();
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(MAX_THREADS)
        .min(admitted / SUBJECTS_PER_THREAD + 1);
    compare_on(before, after, req, applicants, scope, threads)
}

/// [`compare`] on `threads` threads.
fn compare_on(
    before: &Programme,
    after: &Programme,
    req: &ImpactRequest,
    applicants: &Applicants,
    scope: &ImpactScope,
    threads: usize,
) -> AppResult<ImpactReport> {
    let measures = &req.measures;
    let n = measures.len();
    let subjects: Vec<&Subject> = applicants
        .subjects
        .iter()
        .filter(|s| scope.admits(&s.applicant))
        .collect();
    let threads = threads.max(1);
    let chunk = subjects.len().div_ceil(threads).max(1);
    let parts: Vec<AppResult<Part>> = std::thread::scope(|s| {
        let handles: Vec<_> = subjects
            .chunks(chunk)
            .map(|share| s.spawn(move || sweep_part(before, after, req, share)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(AppError::Internal(anyhow::anyhow!(
                        "un fil du calcul d’impact s’est arrêté"
                    )))
                })
            })
            .collect()
    });
    let mut whole = Part {
        evaluated: 0,
        totals: vec![Tally::default(); n],
        by_region: vec![HashMap::new(); n],
        by_dep: vec![HashMap::new(); n],
        changes: Vec::new(),
    };
    for part in parts {
        whole.merge(part?)?;
    }
    let evaluated = whole.evaluated;
    let totals = whole.totals;
    let changes = whole.changes;
    let by_region = whole.by_region;
    let by_dep = whole.by_dep;
    let name_of = |names: &HashMap<String, String>, code: Option<&str>, several: &str| match code {
        Some(c) => names.get(c).cloned().unwrap_or_else(|| c.to_string()),
        None => several.to_string(),
    };
    let territories =
        |map: HashMap<Option<&str>, Tally>, names: &HashMap<String, String>, several: &str| {
            // Territories in code order, those spanning several last.
            let mut rows: Vec<TerritoryTally> = map
                .into_iter()
                .map(|(code, tally)| TerritoryTally {
                    nom: name_of(names, code, several),
                    code: code.map(str::to_string),
                    tally,
                })
                .collect();
            rows.sort_by(|x, y| (x.code.is_none(), &x.code).cmp(&(y.code.is_none(), &y.code)));
            rows
        };
    let mut mesures = Vec::with_capacity(n);
    for (k, (r, d)) in by_region.into_iter().zip(by_dep).enumerate() {
        let id = &measures[k];
        let nom = after
            .measure(id)
            .or_else(|| before.measure(id))
            .map(|m| m.name.clone())
            .unwrap_or_default();
        mesures.push(MeasureImpact {
            mesure: id.clone(),
            nom,
            total: totals[k],
            regions: territories(r, &applicants.region_names, "plusieurs régions ou aucune"),
            departements: territories(
                d,
                &applicants.departement_names,
                "plusieurs départements ou niveau régional",
            ),
        });
    }
    let (perimetre, perimetre_nom) = match scope {
        ImpactScope::National => ("national".to_string(), "France entière".to_string()),
        ImpactScope::Region(r) => (
            r.clone(),
            applicants
                .region_names
                .get(r)
                .cloned()
                .unwrap_or_else(|| format!("région {r}")),
        ),
    };
    let mut changements = changes;
    // Measure by measure (the request's order), then by reference.
    let order: HashMap<&str, usize> = measures
        .iter()
        .enumerate()
        .map(|(i, m)| (m.as_str(), i))
        .collect();
    changements.sort_by(|x, y| {
        order
            .get(x.mesure.as_str())
            .cmp(&order.get(y.mesure.as_str()))
            .then_with(|| x.reference.cmp(&y.reference))
    });
    Ok(ImpactReport {
        programme: after.id.clone(),
        version_avant: before.version.clone(),
        version_apres: after.version.clone(),
        millesime: after.vintage.year(),
        date_depot: req.filing_date,
        cout_centimes: req.cost.map(Cents::get),
        perimetre,
        perimetre_nom,
        demandeurs: evaluated,
        dossiers: 0,
        mesures,
        changements,
    })
}

/// The impact of a programme change over the referential's applicants, and the drafts it
/// compares (`app.impact()`).
#[derive(Clone, Copy)]
pub struct Impact<'a> {
    pub(crate) app: &'a App,
}

impl Impact<'_> {
    /// Every applicant of a vintage of the referential, from the database.
    pub async fn referential_applicants(&self, vintage: Vintage) -> AppResult<Applicants> {
        if crate::referentiel::available_vintages(&self.app.db)
            .await?
            .iter()
            .all(|a| *a != vintage)
        {
            return Err(AppError::Unavailable(format!(
                "le référentiel {vintage} (millésime du programme) n’est pas importé : guichet referentiel import --millesime {vintage}"
            )));
        }
        let data = store::load_vintage(
            &mut *self.app.db.acquire().await?,
            i64::from(vintage.year()),
        )
        .await?;
        let region_names = data
            .regions
            .iter()
            .map(|r| (r.code.clone(), r.name.clone()))
            .collect();
        let departement_names = data
            .departements
            .iter()
            .map(|d| (d.code.clone(), d.name.clone()))
            .collect();
        let subjects = tokio::task::spawn_blocking(move || {
            applicants_of(&data, vintage)
                .into_iter()
                .map(|applicant| Subject {
                    applicant,
                    expenses: None,
                })
                .collect::<Vec<Subject>>()
        })
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!(e)))?;
        Ok(Applicants {
            subjects,
            region_names,
            departement_names,
        })
    }

    /// The impact of replacing `before` by `after`, for the applicants `scope` covers. The
    /// sweep runs on the blocking pool.
    pub async fn programme_impact(
        &self,
        before: Arc<Programme>,
        after: Arc<Programme>,
        input: &ImpactInput,
        scope: ImpactScope,
    ) -> AppResult<ImpactReport> {
        let req = input.parse(&before, &after, self.app.today())?;
        let applicants = self.referential_applicants(after.vintage).await?;
        tokio::task::spawn_blocking(move || compare(&before, &after, &req, &applicants, &scope))
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!(e)))?
    }
}

/// A draft folder's name as offered by the page: letters, digits, `.`, `-` and `_`, not
/// starting with a dot. Anything else is never listed, so never loaded.
fn draft_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// Whether a folder holds the programme files as plain files (no symbolic link leads the
/// loader elsewhere).
fn plain_programme_folder(dir: &Path) -> bool {
    guichet_programme::PROGRAMME_FILES.iter().all(|name| {
        std::fs::symlink_metadata(dir.join(name)).is_ok_and(|m| m.file_type().is_file())
    })
}

/// The drafts of a drafts directory: its subfolders (not symbolic links) with a well-formed
/// name that hold the programme files, in name order.
pub fn draft_names(dir: &Path) -> AppResult<Vec<String>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        AppError::Unavailable(format!(
            "dossier des brouillons illisible ({}) : {e}",
            dir.display()
        ))
    })?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| draft_name_ok(n) && plain_programme_folder(&dir.join(n)))
        .collect();
    names.sort();
    Ok(names)
}

const NO_DRAFTS_DIR: &str = "aucun dossier de brouillons n’est configuré (GUICHET_BROUILLONS_DIR)";

/// Why a draft cannot be compared.
#[derive(Debug)]
pub enum DraftError {
    /// The page's own refusal (no drafts directory, unknown draft…).
    App(AppError),
    /// The draft does not load: its diagnostics, with paths relative to the drafts directory.
    Invalid(Vec<String>),
}

impl From<AppError> for DraftError {
    fn from(e: AppError) -> Self {
        DraftError::App(e)
    }
}

impl Impact<'_> {
    /// The drafts offered by the impact page (`GUICHET_BROUILLONS_DIR`).
    pub fn drafts(&self) -> AppResult<Vec<String>> {
        match &self.app.config.brouillons_dir {
            Some(dir) => draft_names(dir),
            None => Err(AppError::Unavailable(NO_DRAFTS_DIR.into())),
        }
    }

    /// Loads a draft by its name, which must be one [`App::drafts`] lists: a name is never
    /// joined to a path before it is found among the listed ones.
    pub fn load_draft(&self, name: &str) -> Result<Programme, DraftError> {
        let Some(dir) = &self.app.config.brouillons_dir else {
            return Err(AppError::Unavailable(NO_DRAFTS_DIR.into()).into());
        };
        let listed = draft_names(dir)?;
        let Some(found) = listed.iter().find(|n| n.as_str() == name) else {
            return Err(AppError::Invalid(format!("brouillon inconnu : « {name} »")).into());
        };
        crate::programme::load(&dir.join(found)).map_err(|d| {
            let prefix = format!("{}/", dir.display());
            DraftError::Invalid(
                d.0.iter()
                    .map(|x| {
                        let line = x.to_string();
                        line.strip_prefix(&prefix)
                            .map(str::to_string)
                            .unwrap_or(line)
                    })
                    .collect(),
            )
        })
    }
}

fn french_count(n: u64) -> String {
    guichet_programme::value::french_decimal(Decimal::from(n))
}

fn french_rate(r: &Option<String>) -> String {
    r.as_deref()
        .and_then(|s| s.parse::<Decimal>().ok())
        .map(guichet_programme::value::french_rate)
        .unwrap_or_else(|| "—".into())
}

fn french_amount(c: Option<i64>) -> String {
    c.map(|c| Cents::new(c).to_string())
        .unwrap_or_else(|| "—".into())
}

/// A signed difference in euros (`+50 000,00 €`).
pub fn french_gain(cents: i64) -> String {
    if cents > 0 {
        format!("+{}", Cents::new(cents))
    } else {
        Cents::new(cents).to_string()
    }
}

/// One side of a change in a few words: status, rate, amount.
pub fn describe(a: &Answer) -> String {
    let mut s = a.statut.label().to_string();
    if a.taux.is_some() {
        s.push_str(&format!(", taux {}", french_rate(&a.taux)));
    }
    if a.montant_centimes.is_some() {
        s.push_str(&format!(", {}", french_amount(a.montant_centimes)));
    }
    s
}

fn tally_line(t: &Tally) -> String {
    format!(
        "évalués {} ; éligibles {} → {} ; devenus éligibles {} ; devenus inéligibles {} ; montant, taux ou statut modifié {} ; montant total {} → {}",
        french_count(t.evalues),
        french_count(t.eligibles_avant),
        french_count(t.eligibles_apres),
        french_count(t.devenus_eligibles),
        french_count(t.devenus_ineligibles),
        french_count(t.modifies),
        Cents::new(t.montant_avant_centimes),
        Cents::new(t.montant_apres_centimes),
    )
}

/// The report in plain French, as the CLI prints it; `listed`: how many changed applicants to
/// list (the JSON lists them all).
pub fn text_report(r: &ImpactReport, listed: usize) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Impact d’une modification du programme {}\n",
        r.programme
    ));
    out.push_str(&format!(
        "Avant : {} ; après : {} ; référentiel {} ; dépôt le {} ; {}\n",
        r.version_avant,
        r.version_apres,
        r.millesime,
        r.date_depot.format("%d/%m/%Y"),
        match r.cout_centimes {
            Some(c) => format!("projet de {} (une ligne « prestation »)", Cents::new(c)),
            None => "sans coût de projet : aucun montant calculé (--cout)".into(),
        }
    ));
    out.push_str(&format!(
        "Périmètre : {} ; demandeurs évalués : {} (communes, EPCI, départements, régions)\n",
        r.perimetre_nom,
        french_count(r.demandeurs)
    ));
    out.push_str(DOSSIERS_NOTE);
    out.push('\n');
    out.push_str(ELIGIBLE_NOTE);
    out.push_str("\n\n");
    for m in &r.mesures {
        out.push_str(&format!("Mesure {} : {}\n", m.mesure, m.nom));
        out.push_str(&format!("  {}\n", tally_line(&m.total)));
        if m.total.changes() == 0 {
            out.push_str("  aucun changement\n");
            continue;
        }
        for (label, rows) in [
            ("Par région", &m.regions),
            ("Par département", &m.departements),
        ] {
            out.push_str(&format!(
                "  {label} (territoires où un demandeur change) :\n"
            ));
            for t in rows.iter().filter(|t| t.tally.changes() > 0) {
                out.push_str(&format!(
                    "    {} {} : {}\n",
                    t.code.as_deref().unwrap_or("—"),
                    t.nom,
                    tally_line(&t.tally)
                ));
            }
        }
    }
    out.push_str(&format!(
        "\nDemandeurs dont la réponse change : {}\n",
        french_count(r.changements.len() as u64)
    ));
    for c in r.changements.iter().take(listed) {
        out.push_str(&format!(
            "  {} {} {} ({} hab.) : {} → {} ({})\n",
            c.mesure,
            c.reference,
            c.nom,
            french_count(u64::try_from(c.population).unwrap_or(0)),
            describe(&c.avant),
            describe(&c.apres),
            french_gain(c.ecart_centimes)
        ));
    }
    if r.changements.len() > listed {
        out.push_str(&format!(
            "  … et {} autres : --json les liste tous\n",
            french_count((r.changements.len() - listed) as u64)
        ));
    }
    out
}

/// The changed applicants as CSV (`;`-separated, as French spreadsheets expect; amounts in
/// cents, rates as decimals), for the page's export.
pub fn changes_csv(r: &ImpactReport) -> AppResult<Vec<u8>> {
    use guichet_documents::csv::CsvWriter;
    use guichet_documents::{Cell, Column};
    const COLUMNS: [&str; 18] = [
        "mesure",
        "reference",
        "nom",
        "type",
        "population",
        "region",
        "departement",
        "statut_avant",
        "statut_apres",
        "taux_avant",
        "taux_apres",
        "taux_max_avant",
        "taux_max_apres",
        "montant_avant_centimes",
        "montant_apres_centimes",
        "ecart_centimes",
        "motifs_avant",
        "motifs_apres",
    ];
    let failed = |e: guichet_documents::DocumentError| AppError::Internal(anyhow::anyhow!(e));
    let columns: Vec<Column> = COLUMNS.iter().map(|c| Column::new(*c, 12.0)).collect();
    let mut w = CsvWriter::new(Vec::new(), &columns).map_err(failed)?;
    let status = |s: Status| {
        serde_json::to_value(s)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    fn text(s: &Option<String>) -> Cell<'_> {
        s.as_deref().map_or(Cell::Empty, Cell::Text)
    }
    let cents = |v: &Option<i64>| v.map_or(Cell::Empty, Cell::Integer);
    for c in &r.changements {
        let (before, after) = (status(c.avant.statut), status(c.apres.statut));
        let (reasons_before, reasons_after) = (c.avant.motifs.join(" "), c.apres.motifs.join(" "));
        w.row(&[
            Cell::Text(&c.mesure),
            Cell::Text(&c.reference),
            Cell::Text(&c.nom),
            Cell::Text(&c.kind),
            Cell::Integer(c.population),
            text(&c.region),
            text(&c.departement),
            Cell::Text(&before),
            Cell::Text(&after),
            text(&c.avant.taux),
            text(&c.apres.taux),
            text(&c.avant.taux_max),
            text(&c.apres.taux_max),
            cents(&c.avant.montant_centimes),
            cents(&c.apres.montant_centimes),
            Cell::Integer(c.ecart_centimes),
            Cell::Text(&reasons_before),
            Cell::Text(&reasons_after),
        ])
        .map_err(failed)?;
    }
    w.finish().map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn itn7_folder() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../programmes/itn7")
    }

    /// ITN7 with Île-de-France's full rate up to 20,000 inhabitants.
    fn threshold_20000() -> Programme {
        let mut files = crate::programme::read_files(&itn7_folder()).unwrap();
        let params = files
            .iter_mut()
            .find(|f| f.name.ends_with("parametres.yaml"))
            .unwrap();
        assert_eq!(params.text.matches("          valeur: 15000\n").count(), 1);
        params.text =
            params
                .text
                .replacen("          valeur: 15000\n", "          valeur: 20000\n", 1);
        Programme::load(&files).unwrap()
    }

    /// Communes of every size in three régions (and one of an overseas collectivité), with the
    /// départements and régions they make.
    fn synthetic(n: usize) -> Applicants {
        let counts: HashMap<String, usize> = HashMap::new();
        let mut subjects = Vec::new();
        for i in 0..n {
            let (dep, region) = match i % 4 {
                0 => ("95", Some("11")),
                1 => ("78", Some("11")),
                2 => ("13", Some("93")),
                _ => ("975", None),
            };
            let m = Member {
                insee: format!("{dep}{i:05}"),
                population: (i as i64 * 7_919) % 40_000,
                departement: dep.into(),
                region: region.map(str::to_string),
            };
            subjects.push(Subject {
                applicant: Applicant::from_members(
                    format!("commune:{}", m.insee),
                    format!("Commune {i}"),
                    "commune",
                    &[m],
                    &counts,
                    None,
                    2021,
                ),
                expenses: (i % 5 == 0)
                    .then(|| vec![("prestation".to_string(), Cents::new(1_000_000 + i as i64))]),
            });
        }
        Applicants {
            subjects,
            ..Applicants::default()
        }
    }

    #[test]
    fn the_report_does_not_depend_on_how_many_threads_share_the_work() {
        let before = crate::programme::load(&itn7_folder()).unwrap();
        let after = threshold_20000();
        let req = ImpactInput {
            mesures: vec![],
            cout: Some("100000".into()),
            date_depot: Some("2021-06-01".into()),
        }
        .parse(
            &before,
            &after,
            NaiveDate::from_ymd_opt(2021, 6, 1).unwrap(),
        )
        .unwrap();
        let applicants = synthetic(1_203);
        for scope in [ImpactScope::National, ImpactScope::Region("11".into())] {
            let one = compare_on(&before, &after, &req, &applicants, &scope, 1).unwrap();
            let json = |r: &ImpactReport| serde_json::to_value(r).unwrap();
            assert!(!one.changements.is_empty());
            for threads in [2, 3, 7] {
                let many = compare_on(&before, &after, &req, &applicants, &scope, threads).unwrap();
                assert_eq!(json(&one), json(&many), "{threads} threads, {scope:?}");
            }
            // Exactly the communes of Île-de-France between the two thresholds change.
            for s in &applicants.subjects {
                let a = &s.applicant;
                let between = a.region.as_deref() == Some("11")
                    && a.population > 15_000
                    && a.population <= 20_000;
                let changed = one.changements.iter().any(|c| c.reference == a.reference);
                assert_eq!(between, changed, "{}", a.reference);
            }
        }
    }

    #[test]
    fn csv_fields_are_quoted_and_formulas_neutralised() {
        let r = ImpactReport {
            programme: "p".into(),
            version_avant: "a".into(),
            version_apres: "b".into(),
            millesime: 2021,
            date_depot: NaiveDate::from_ymd_opt(2021, 6, 1).unwrap(),
            cout_centimes: None,
            perimetre: "national".into(),
            perimetre_nom: "France entière".into(),
            demandeurs: 1,
            dossiers: 0,
            mesures: vec![],
            changements: vec![Change {
                mesure: "m".into(),
                reference: "commune:1".into(),
                nom: "=HYPERLINK(\"x\";\"y\")".into(),
                kind: "commune".into(),
                population: 1,
                region: None,
                departement: None,
                avant: Answer::new(&Brief::bare(Status::NonEligible), &[]),
                apres: Answer::new(&Brief::bare(Status::Eligible), &[]),
                ecart_centimes: 0,
            }],
        };
        let csv = String::from_utf8(changes_csv(&r).unwrap()).unwrap();
        assert!(csv.starts_with('\u{feff}'), "byte-order mark");
        let line = csv.lines().nth(1).unwrap();
        assert!(
            line.contains("\"'=HYPERLINK(\"\"x\"\";\"\"y\"\")\""),
            "{line}"
        );
        assert!(line.contains(";non_eligible;eligible;"), "{line}");
    }
}
