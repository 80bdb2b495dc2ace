//! Evaluation of one measure for one applicant at one date: eligibility with every reason,
//! the eligible expense base, the rates, the amounts, the facts still missing, and a trace of
//! every step (rule, inputs, value, parameter version and source).

use crate::expr::{BinOp, Bound, Rounding};
use crate::rules::{
    cmp_values, Builtin, Dependence, ExpenseRule, MeasureRules, Node, Piece, RuleSet, Rules,
};
use crate::value::{french_money, french_rate, Type, Value};
use chrono::NaiveDate;
use guichet_domain::Cents;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::Serialize;
use std::borrow::Cow;
use std::cell::Cell;
use std::collections::BTreeMap;

/// What the application knows of an applicant and a project, by fact name.
#[derive(Debug, Clone, Default)]
pub struct Situation {
    /// The filing date: parameters are taken as in force on this day.
    pub date: Option<NaiveDate>,
    pub facts: BTreeMap<String, Value>,
    /// Expense lines: category id and amount.
    pub expenses: Vec<(String, Cents)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("mesure inconnue : « {0} »")]
    UnknownMeasure(String),
    #[error("fait inconnu : « {0} » (faits du programme : {1})")]
    UnknownFact(String, String),
    #[error("fait « {name} » : {expected} attendu, « {got} » reçu")]
    FactType {
        name: String,
        expected: &'static str,
        got: String,
    },
    #[error("fait « {name} » : « {value} » n’est pas une valeur possible ({allowed})")]
    FactValue {
        name: String,
        value: String,
        allowed: String,
    },
    #[error("catégorie de dépense inconnue : « {0} » ({1})")]
    UnknownCategory(String, String),
    #[error("la date de dépôt est obligatoire")]
    NoDate,
    #[error("la mesure {0} est instruite par un service territorial : le demandeur doit relever d’une seule région (ce n’est le cas ni d’un groupement réparti sur plusieurs régions, ni d’une commune d’une collectivité d’outre-mer)")]
    NoTerritory(String),
    #[error("calcul impossible : {0}")]
    Arithmetic(String),
}

/// A prepared situation: facts by index, expenses by category.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Tells situations apart for an [`Evaluator`]'s memo (a clone, identical, keeps it).
    id: u64,
    date: NaiveDate,
    facts: Vec<Option<Value>>,
    by_category: Vec<Decimal>,
    total: Decimal,
    lines: Vec<(usize, Cents)>,
    territory: Option<std::sync::Arc<str>>,
    /// Index of the territory's rule set among the variants; `None`: the national one.
    variant: Option<usize>,
}

static NEXT_PREPARED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Prepared {
    pub fn date(&self) -> NaiveDate {
        self.date
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepKind {
    Fait,
    Parametre,
    Regle,
    Condition,
    Depense,
    Resultat,
}

/// One line of the explanation.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    #[serde(rename = "type")]
    pub kind: StepKind,
    #[serde(rename = "nom")]
    pub name: String,
    #[serde(rename = "titre")]
    pub title: String,
    /// The value in French (`50 %`, `16 000 €`, `oui`).
    #[serde(rename = "valeur")]
    pub display: String,
    /// The value for machines (integer cents, decimal strings, booleans, dates).
    #[serde(rename = "valeur_brute")]
    pub raw: serde_json::Value,
    #[serde(rename = "formule", skip_serializing_if = "Option::is_none")]
    pub formula: Option<String>,
    #[serde(rename = "detail", skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(rename = "source", skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// For a parameter: the date its value took effect.
    #[serde(rename = "depuis", skip_serializing_if = "Option::is_none")]
    pub since: Option<NaiveDate>,
}

impl Step {
    /// The line in plain French.
    pub fn sentence(&self) -> String {
        let mut s = format!("{} : {}", self.title, self.display);
        if let Some(f) = &self.formula {
            s.push_str(&format!(" (formule : {f})"));
        }
        if let Some(d) = &self.detail {
            s.push_str(&format!(" ; {d}"));
        }
        match (&self.source, self.since) {
            (Some(src), Some(since)) => s.push_str(&format!(
                " — valeur en vigueur depuis le {}, source {src}",
                since.format("%d/%m/%Y")
            )),
            (Some(src), None) => s.push_str(&format!(" — source {src}")),
            _ => {}
        }
        s
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Reason {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Missing {
    pub nom: String,
    pub titre: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Assumption {
    pub nom: String,
    pub titre: String,
    pub valeur: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ExpenseLine {
    pub categorie: String,
    pub libelle: String,
    pub montant_centimes: i64,
    pub retenu_centimes: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub motif: Option<String>,
}

/// The answer for one measure.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub measure: String,
    pub territory: Option<String>,
    pub territory_name: String,
    pub date: NaiveDate,
    pub eligible: bool,
    pub reasons: Vec<Reason>,
    pub missing: Vec<Missing>,
    pub assumptions: Vec<Assumption>,
    pub expenses: Vec<ExpenseLine>,
    pub base: Option<Cents>,
    pub rate: Option<Decimal>,
    pub rate_max: Option<Decimal>,
    pub amount: Option<Cents>,
    pub amount_max: Option<Cents>,
    pub trace: Vec<Step>,
}

/// A measure's answer without its wording, for sweeps: eligibility, reason codes, missing and
/// presumed facts by name, amounts ([`Evaluator::outcome_index`]). The same answer as the
/// [`Evaluation`] of the same measure and situation without trace: a test checks it.
#[derive(Debug, Clone, Copy)]
pub struct Outcome<'e> {
    pub eligible: bool,
    pub base: Option<Cents>,
    pub rate: Option<Decimal>,
    pub rate_max: Option<Decimal>,
    pub amount: Option<Cents>,
    pub amount_max: Option<Cents>,
    rules: &'e Rules,
    set: &'e RuleSet,
    measure: &'e MeasureRules,
    reasons: &'e [ReasonRef],
    missing_expenses: bool,
    missing: &'e [usize],
    assumed: &'e [usize],
}

impl<'e> Outcome<'e> {
    /// The measure's identifier.
    pub fn measure(&self) -> &'e str {
        &self.measure.id
    }

    /// The territory whose rules applied (`None`: the national ones).
    pub fn territory(&self) -> Option<&'e str> {
        self.set.code.as_deref()
    }

    /// The reason codes, in the order of [`Evaluation::reasons`].
    pub fn reasons(&self) -> impl Iterator<Item = &'e str> + 'e {
        let (set, measure) = (self.set, self.measure);
        self.reasons.iter().map(move |r| match *r {
            ReasonRef::NotInForce(_) => NOT_IN_FORCE_REASON,
            ReasonRef::Exclusion => measure.exclusion.as_ref().map_or("", |(c, _)| c.as_str()),
            ReasonRef::Condition(ci) => set.conditions[ci].code.as_str(),
            ReasonRef::Missing => MISSING_REASON,
        })
    }

    /// The names of the missing facts, in the order of [`Evaluation::missing`].
    pub fn missing(&self) -> impl Iterator<Item = &'e str> + 'e {
        let facts = &self.rules.facts;
        let expenses = self.missing_expenses.then_some(EXPENSES_FACT);
        expenses
            .into_iter()
            .chain(self.missing.iter().map(move |&i| facts[i].name.as_str()))
    }

    /// The names of the facts presumed at their default value, in the order of
    /// [`Evaluation::assumptions`].
    pub fn assumptions(&self) -> impl Iterator<Item = &'e str> + 'e {
        let facts = &self.rules.facts;
        self.assumed.iter().map(move |&i| facts[i].name.as_str())
    }
}

/// What an [`Outcome`] and an [`Evaluation`] must say alike, in one line: measure,
/// territory, eligibility, reason codes, missing and presumed facts, amounts and rates.
pub fn outcome_summary(o: &Outcome<'_>) -> String {
    format!(
        "{} {:?} eligible={} reasons={:?} missing={:?} assumed={:?} base={:?} rate={:?} rate_max={:?} amount={:?} amount_max={:?}",
        o.measure(),
        o.territory(),
        o.eligible,
        o.reasons().collect::<Vec<_>>(),
        o.missing().collect::<Vec<_>>(),
        o.assumptions().collect::<Vec<_>>(),
        o.base,
        o.rate,
        o.rate_max,
        o.amount,
        o.amount_max
    )
}

/// An [`Evaluation`] in the terms of [`outcome_summary`].
pub fn evaluation_summary(e: &Evaluation) -> String {
    format!(
        "{} {:?} eligible={} reasons={:?} missing={:?} assumed={:?} base={:?} rate={:?} rate_max={:?} amount={:?} amount_max={:?}",
        e.measure,
        e.territory.as_deref(),
        e.eligible,
        e.reasons.iter().map(|r| r.code.as_str()).collect::<Vec<_>>(),
        e.missing.iter().map(|m| m.nom.as_str()).collect::<Vec<_>>(),
        e.assumptions.iter().map(|a| a.nom.as_str()).collect::<Vec<_>>(),
        e.base,
        e.rate,
        e.rate_max,
        e.amount,
        e.amount_max
    )
}

/// A reason of an answer before it is worded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReasonRef {
    /// The filing date precedes the rules (the first date a parameter read takes effect).
    NotInForce(NaiveDate),
    /// The measure is not open in the territory.
    Exclusion,
    /// A condition, by index in the rule set.
    Condition(usize),
    /// Facts are missing.
    Missing,
}

/// What [`Ev::decide`] decided; the rest (reasons, missing facts, expense lines) is in the
/// scratch.
struct Decided {
    eligible: bool,
    missing_expenses: bool,
    base: Option<Cents>,
    rate: Option<Decimal>,
    rate_max: Option<Decimal>,
    amount: Option<Cents>,
    amount_max: Option<Cents>,
}

fn as_rate(v: &Option<Value>) -> Option<Decimal> {
    match v {
        // Already without trailing zeros (most rates, written so): as is.
        Some(Value::Nombre(d)) if !d.is_zero() && (d.scale() == 0 || d.mantissa() % 10 != 0) => {
            Some(*d)
        }
        Some(Value::Nombre(d)) => Some(d.normalize()),
        _ => None,
    }
}

/// Why an expense line is not retained in full, worded.
fn motif_message(regime: &[ExpenseRule], why: Option<Motif>) -> Option<String> {
    match why? {
        Motif::Excluded(k) => regime.get(k).map(|r| r.excluded_message.clone()),
        Motif::Capped(k) => Some(
            regime
                .get(k)
                .and_then(|r| r.cap_message.clone())
                .unwrap_or_else(|| "dépense plafonnée".into()),
        ),
    }
}

/// The name under which missing expenses are reported (they are not a fact of their own).
pub const EXPENSES_FACT: &str = "depenses";

/// Code of the reason given when facts are missing.
pub const MISSING_REASON: &str = "donnees_manquantes";

/// Code of the reason given when the filing date precedes the first value of a parameter the
/// measure needs: its rules are not in force yet at that date.
pub const NOT_IN_FORCE_REASON: &str = "regles_non_en_vigueur";

impl Rules {
    /// Checks a situation against the declared facts and categories, and indexes it.
    pub fn prepare(&self, s: &Situation) -> Result<Prepared, EvalError> {
        let date = s.date.ok_or(EvalError::NoDate)?;
        let mut facts: Vec<Option<Value>> = vec![None; self.facts.len()];
        // Both in name order: one pass finds every fact.
        let mut by_name = self.facts_by_name.iter().peekable();
        for (name, v) in &s.facts {
            while by_name.next_if(|(n, _)| n < name).is_some() {}
            let found = by_name.peek().filter(|(n, _)| n == name).map(|&(_, i)| *i);
            let Some(i) = found else {
                return Err(EvalError::UnknownFact(
                    name.clone(),
                    self.facts
                        .iter()
                        .map(|f| f.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                ));
            };
            let def = &self.facts[i];
            if matches!(v, Value::Absent) {
                continue;
            }
            if v.type_of() != def.ty {
                return Err(EvalError::FactType {
                    name: name.clone(),
                    expected: def.ty.label(),
                    got: v.to_string(),
                });
            }
            if let (Some(allowed), Value::Texte(t)) = (&def.allowed, v) {
                if !allowed.iter().any(|a| a.as_str() == &**t) {
                    return Err(EvalError::FactValue {
                        name: name.clone(),
                        value: t.to_string(),
                        allowed: allowed.join(", "),
                    });
                }
            }
            facts[i] = Some(v.clone());
        }
        if let Some(i) = self.date_fact {
            facts[i] = Some(Value::Date(date));
        }
        let mut by_category = vec![Decimal::ZERO; self.categories.len()];
        let mut lines = Vec::new();
        let mut total = Decimal::ZERO;
        for (cat, amount) in &s.expenses {
            let Some(ci) = self.category(cat) else {
                return Err(EvalError::UnknownCategory(
                    cat.clone(),
                    self.categories
                        .iter()
                        .map(|c| c.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                ));
            };
            if amount.get() < 0 {
                return Err(EvalError::Arithmetic(format!(
                    "dépense négative ({})",
                    amount
                )));
            }
            let d = Decimal::from(amount.get());
            by_category[ci] += d;
            total = total
                .checked_add(d)
                .ok_or_else(|| EvalError::Arithmetic("total des dépenses trop grand".into()))?;
            lines.push((ci, *amount));
        }
        let territory = match &facts[self.selector] {
            Some(Value::Texte(t)) => Some(t.clone()),
            _ => None,
        };
        let variant = territory.as_deref().and_then(|c| {
            self.variants
                .iter()
                .position(|v| v.code.as_deref() == Some(c))
        });
        Ok(Prepared {
            id: NEXT_PREPARED.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            date,
            facts,
            by_category,
            total,
            lines,
            territory,
            variant,
        })
    }

    pub fn measure_index(&self, id: &str) -> Option<usize> {
        self.national.measures.iter().position(|m| m.id == id)
    }

    /// Evaluates one measure. `trace: false` skips the explanation (for sweeps).
    pub fn evaluate(
        &self,
        measure: &str,
        situation: &Prepared,
        trace: bool,
    ) -> Result<Evaluation, EvalError> {
        let idx = self
            .measure_index(measure)
            .ok_or_else(|| EvalError::UnknownMeasure(measure.to_string()))?;
        self.evaluate_index(idx, situation, trace)
    }

    /// Evaluates one measure. To evaluate several for the same situation, an [`Evaluator`]
    /// does the shared work once.
    pub fn evaluate_index(
        &self,
        idx: usize,
        situation: &Prepared,
        trace: bool,
    ) -> Result<Evaluation, EvalError> {
        // The buffers of the thread's previous evaluation, emptied: nothing carries over
        // (the previous evaluation may have been of other rules).
        let mut scratch = SCRATCH.with(Cell::take);
        scratch.forget();
        let mut evaluator = Evaluator {
            rules: self,
            scratch,
            memo_for: None,
            date_for: None,
            // From nothing already: the reference the verification compares with.
            verification: Verification::Off,
        };
        let result = evaluator.evaluate_index(idx, situation, trace);
        SCRATCH.with(|s| s.set(evaluator.scratch));
        result
    }

    /// An evaluator of these rules, for measure after measure. It checks every answer against
    /// an independent evaluation in debug builds, or when `GUICHET_EVAL_VERIFIE=1` (see
    /// [`Verification`]).
    pub fn evaluator(&self) -> Evaluator<'_> {
        Evaluator {
            rules: self,
            scratch: Scratch::default(),
            memo_for: None,
            date_for: None,
            verification: Verification::for_this_build(),
        }
    }
}

/// Evaluates measures one after another, with the same answers as [`Rules::evaluate_index`],
/// faster: its working buffers are kept from one evaluation to the next and, without trace,
/// a rule is computed once for all the measures of a situation when it does not depend on the
/// measure, and once for all the situations of a territory at a date when it depends on
/// nothing else (its value, with the facts it found missing or presumed and the parameters not
/// yet in force it read, is replayed wherever it is used).
pub struct Evaluator<'r> {
    rules: &'r Rules,
    scratch: Scratch,
    /// The situation ([`Prepared`]) whose rule values the memo holds.
    memo_for: Option<u64>,
    /// Its territory and date.
    date_for: Option<DateKey>,
    verification: Verification,
}

/// Whether an [`Evaluator`] checks its answers: a debugging switch for the values it keeps
/// from one evaluation to the next, which must never change an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Answers as computed (release builds).
    Off,
    /// Each answer is computed again from nothing ([`Rules::evaluate_index`]) and compared;
    /// a difference panics, naming the measure and both answers. About twice the work.
    AgainstScratch,
}

impl Verification {
    /// `AgainstScratch` in debug builds (every test), or when the environment variable
    /// `GUICHET_EVAL_VERIFIE` is `1` (a release binary under investigation); `Off` otherwise.
    pub fn for_this_build() -> Verification {
        static FROM_ENV: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let asked = *FROM_ENV
            .get_or_init(|| std::env::var_os("GUICHET_EVAL_VERIFIE").is_some_and(|v| v == "1"));
        if cfg!(debug_assertions) || asked {
            Verification::AgainstScratch
        } else {
            Verification::Off
        }
    }
}

/// The rule set of a situation's territory.
fn set_for<'r>(rules: &'r Rules, situation: &Prepared) -> &'r RuleSet {
    // `prepare` found the variant of the territory, if it has one.
    match situation.variant.and_then(|i| rules.variants.get(i)) {
        Some(set) => set,
        None => &rules.national,
    }
}

/// The same fact, exactly (a decimal written with another scale is another value).
fn same_fact(a: &Option<Value>, b: &Option<Value>) -> bool {
    match (a, b) {
        (Some(Value::Montant(x)), Some(Value::Montant(y)))
        | (Some(Value::Nombre(x)), Some(Value::Nombre(y))) => exactly(x, y),
        (a, b) => a == b,
    }
}

/// The same decimal, written with the same scale too (`2.50` is not `2.5` here).
fn exactly(a: &Decimal, b: &Decimal) -> bool {
    a.serialize() == b.serialize()
}

/// A measure's base, rate and maximum rate (`assiette`, `taux`, `taux_max`), exactly: the
/// kind of each value and its decimal's bytes.
type MeasureInputs = [(u8, [u8; 16]); 3];

/// A territory (index of its variant; `None`: national) and a date: what the rules that read
/// only parameters and the filing date depend on.
type DateKey = (Option<usize>, NaiveDate);

impl<'r> Evaluator<'r> {
    pub fn evaluate(
        &mut self,
        measure: &str,
        situation: &Prepared,
        trace: bool,
    ) -> Result<Evaluation, EvalError> {
        let idx = self
            .rules
            .measure_index(measure)
            .ok_or_else(|| EvalError::UnknownMeasure(measure.to_string()))?;
        self.evaluate_index(idx, situation, trace)
    }

    pub fn evaluate_index(
        &mut self,
        idx: usize,
        situation: &Prepared,
        trace: bool,
    ) -> Result<Evaluation, EvalError> {
        let result = self.evaluate_incrementally(idx, situation, trace);
        if self.verification == Verification::AgainstScratch {
            let alone = self.rules.evaluate_index(idx, situation, trace);
            let (got, want) = (format!("{result:?}"), format!("{alone:?}"));
            assert!(
                got == want,
                "incremental evaluation differs from an independent one (measure {idx}):\n  incremental: {got}\n  independent: {want}"
            );
        }
        result
    }

    /// Switches the checking of answers on or off (see [`Verification`]).
    pub fn with_verification(mut self, verification: Verification) -> Self {
        self.verification = verification;
        self
    }

    fn evaluate_incrementally(
        &mut self,
        idx: usize,
        situation: &Prepared,
        trace: bool,
    ) -> Result<Evaluation, EvalError> {
        let (mut ev, m) = self.begin(idx, situation, trace, true)?;
        let decided = ev.decide(m).map_err(|e| *e)?;
        Ok(ev.evaluation(m, decided))
    }

    /// Evaluates one measure, as [`Evaluator::evaluate_index`] without trace would, and
    /// answers without wording it: eligibility, reason codes, missing and presumed facts by
    /// name, amounts. Nothing is allocated: for sweeps over many applicants.
    pub fn outcome_index(
        &mut self,
        idx: usize,
        situation: &Prepared,
    ) -> Result<Outcome<'_>, EvalError> {
        let rules = self.rules;
        let alone = (self.verification == Verification::AgainstScratch).then(|| {
            rules
                .evaluate_index(idx, situation, false)
                .map(|e| evaluation_summary(&e))
        });
        let outcome = self.outcome_incrementally(idx, situation);
        if let Some(want) = alone {
            let got = outcome.as_ref().map(outcome_summary).map_err(Clone::clone);
            assert!(
                got == want,
                "incremental outcome differs from an independent evaluation (measure {idx}):\n  incremental: {got:?}\n  independent: {want:?}"
            );
        }
        outcome
    }

    fn outcome_incrementally(
        &mut self,
        idx: usize,
        situation: &Prepared,
    ) -> Result<Outcome<'_>, EvalError> {
        let rules = self.rules;
        let (mut ev, m) = self.begin(idx, situation, false, false)?;
        let d = ev.decide(m).map_err(|e| *e)?;
        let set = set_for(rules, situation);
        let m = &set.measures[idx];
        let s = &self.scratch;
        Ok(Outcome {
            rules,
            set,
            measure: m,
            eligible: d.eligible,
            base: d.base,
            rate: d.rate,
            rate_max: d.rate_max,
            amount: d.amount,
            amount_max: d.amount_max,
            reasons: &s.reasons,
            missing_expenses: d.missing_expenses,
            missing: &s.missing,
            assumed: &s.assumed,
        })
    }

    /// Gets the buffers ready for one measure of a situation: what the memo may keep of the
    /// previous evaluation, and the measure's rules for the situation's territory.
    #[inline]
    fn begin<'e>(
        &'e mut self,
        idx: usize,
        situation: &'e Prepared,
        trace: bool,
        worded: bool,
    ) -> Result<(Ev<'e>, &'e MeasureRules), EvalError> {
        let rules = self.rules;
        let Some(national) = rules.national.measures.get(idx) else {
            return Err(EvalError::UnknownMeasure(format!("n° {idx}")));
        };
        let set = set_for(rules, situation);
        if national.territorial && situation.territory.is_none() {
            return Err(EvalError::NoTerritory(national.id.clone()));
        }
        let s = &mut self.scratch;
        let date = (situation.variant, situation.date);
        // With a trace, every step is shown: nothing is carried over from another measure.
        if trace || self.date_for != Some(date) || s.memo.len() != set.rules.len() {
            s.new_date(set.rules.len());
            s.record_situation(situation);
        } else if self.memo_for != Some(situation.id) {
            s.next_situation(set, situation);
        }
        s.renew(Dependence::Measure);
        (self.memo_for, self.date_for) = if trace {
            (None, None)
        } else {
            (Some(situation.id), Some(date))
        };
        s.new_measure(rules.facts.len(), rules.params.len());
        let ev = Ev {
            rules,
            set,
            sit: situation,
            s,
            trace: if trace { Some(Vec::new()) } else { None },
            worded: worded || trace,
            base: None,
            rate: None,
            rate_max: None,
        };
        Ok((ev, &set.measures[idx]))
    }
}

/// The working buffers of an evaluation, kept by an [`Evaluator`] between evaluations. Rule
/// values and marks are valid while their stamp equals the current one: starting afresh is a
/// counter to increment, not buffers to clear.
#[derive(Default)]
struct Scratch {
    /// Rule values (see [`Memo`]). A rule's value is valid while its stamp is the current
    /// epoch of what the rule depends on ([`Dependence`]): a new measure renews the epoch of
    /// the rules that depend on the measure, a new situation that of the situation's too, a
    /// new territory or date every epoch. Epochs are drawn from one counter (64 bits: it
    /// never wraps), so a stamp is never mistaken for a later epoch.
    memo: Vec<Memo>,
    memo_epochs: [u64; 3],
    last_epoch: u64,
    /// The bases and rates the rules that depend on the measure were computed with since the
    /// expenses last changed, with the epoch of each.
    measure_keys: Vec<(MeasureInputs, u64)>,
    /// The facts and expenses of the situation the rule values were computed for.
    last_facts: Vec<Option<Value>>,
    last_by_category: Vec<Decimal>,
    last_total: Decimal,
    /// What computing the rules did besides, for those of the situation ([`SITUATION`]) and for
    /// those of the date ([`DATE`]).
    arenas: [Arena; 2],
    /// Facts and parameters already read (and shown) in this measure: stamped `seen_epoch`.
    fact_seen: Vec<u32>,
    param_seen: Vec<u32>,
    seen_epoch: u32,
    /// Parameters read at a date before their first value.
    not_in_force: Vec<usize>,
    /// Missing facts, once per reading (deduplicated at the end); a branch that did not decide
    /// a `ou` / `et` / `une de ces conditions` / `toutes ces conditions` takes its own back out.
    missing: Vec<usize>,
    assumed: Vec<usize>,
    /// Every presumed fact and parameter not in force read, in order (for [`Memo`]).
    effects: Vec<Effect>,
    notes: Vec<String>,
    /// Expense base, by category: amount retained and left to match lines against, and why a
    /// category is excluded or capped.
    remaining: Vec<Decimal>,
    motif: Vec<Option<Motif>>,
    /// Condition messages made of text and parameters, by condition: the same for every
    /// situation of one territory (variant index) at one date.
    messages: Vec<Option<(DateKey, String)>>,
    /// By condition: the territory and date at which reading its message marks nothing.
    quiet: Vec<Option<DateKey>>,
    /// Default values of facts as shown in the answer.
    shown_defaults: Vec<Option<String>>,
    /// The answer being decided: its reasons in order, the wording of those that are
    /// conditions (only when the answer is worded), and each expense line's amount retained
    /// with why it is not retained in full.
    reasons: Vec<ReasonRef>,
    wording: Vec<String>,
    kept: Vec<(Decimal, Option<Motif>)>,
}

thread_local! {
    static SCRATCH: Cell<Scratch> = Cell::new(Scratch::default());
}

impl Scratch {
    /// Forgets what belongs to one programme's rules (the buffers stay allocated).
    fn forget(&mut self) {
        self.messages.clear();
        self.quiet.clear();
        self.shown_defaults.clear();
    }

    fn default_shown(&mut self, facts: &[crate::rules::FactDef], i: usize) -> String {
        if self.shown_defaults.len() < facts.len() {
            self.shown_defaults.resize(facts.len(), None);
        }
        if let Some(Some(shown)) = self.shown_defaults.get(i) {
            return shown.clone();
        }
        let shown = facts
            .get(i)
            .and_then(|f| f.default.as_ref())
            .map(|v| v.to_string())
            .unwrap_or_default();
        self.shown_defaults[i] = Some(shown.clone());
        shown
    }

    /// Forgets every rule value.
    fn new_date(&mut self, rules: usize) {
        for d in [Dependence::Date, Dependence::Situation, Dependence::Measure] {
            self.renew(d);
        }
        self.measure_keys.clear();
        self.memo.resize(rules, Memo::default());
        for a in &mut self.arenas {
            a.clear();
        }
    }

    /// The rules that depend on the measure read its base and rates (`assiette`, `taux`,
    /// `taux_max`), whose values are often the same from one measure to another, and from one
    /// situation to the next with the same expenses: once they are known, the values computed
    /// with the same ones are valid again (unless a fact they read changed: see
    /// [`Scratch::next_situation`]).
    fn measure_inputs(&mut self, inputs: [&Option<Value>; 3]) {
        let mut key: MeasureInputs = [(0, [0; 16]); 3];
        for (k, v) in key.iter_mut().zip(inputs) {
            *k = match v {
                None => (0, [0; 16]),
                // Exact decimals: the same number written with another scale is another key.
                Some(Value::Montant(d)) => (1, d.serialize()),
                Some(Value::Nombre(d)) => (2, d.serialize()),
                Some(Value::NonApplicable) => (3, [0; 16]),
                Some(Value::Absent) => (4, [0; 16]),
                // Not a base nor a rate: computed afresh.
                Some(_) => return,
            };
        }
        let known = self.measure_keys.iter().find(|(k, _)| *k == key);
        match known {
            Some(&(_, epoch)) => self.memo_epochs[Dependence::Measure as usize] = epoch,
            None => {
                self.renew(Dependence::Measure);
                let epoch = self.memo_epochs[Dependence::Measure as usize];
                if self.measure_keys.len() >= 64 {
                    // Bounded: past it, the oldest values are computed again when needed.
                    self.measure_keys.clear();
                }
                self.measure_keys.push((key, epoch));
            }
        }
    }

    /// Another situation follows: the rules that read a fact (or the expenses) that changed
    /// are computed again, the others keep their values. The arena of what they did besides
    /// grows with each situation: past a bound, every rule is computed again.
    fn next_situation(&mut self, set: &RuleSet, sit: &Prepared) {
        const ARENA_BOUND: usize = 1 << 14;
        let arena = &self.arenas[SITUATION];
        if self.last_facts.len() != sit.facts.len()
            || arena.missing.len() + arena.effects.len() > ARENA_BOUND
        {
            self.renew(Dependence::Situation);
            self.arenas[SITUATION].clear();
            self.measure_keys.clear();
        } else {
            let forget = |memo: &mut Vec<Memo>, rules: &[usize]| {
                for &r in rules {
                    if let Some(m) = set.same_as.get(r).and_then(|&slot| memo.get_mut(slot)) {
                        m.stamp = 0;
                    }
                }
            };
            for (f, (old, new)) in self.last_facts.iter().zip(&sit.facts).enumerate() {
                if !same_fact(old, new) {
                    forget(&mut self.memo, set.fact_readers.get(f).map_or(&[], |r| r));
                }
            }
            let same_expenses = exactly(&self.last_total, &sit.total)
                && self.last_by_category.len() == sit.by_category.len()
                && self
                    .last_by_category
                    .iter()
                    .zip(&sit.by_category)
                    .all(|(a, b)| exactly(a, b));
            if !same_expenses {
                forget(&mut self.memo, &set.expense_readers);
                // Other expenses, other bases: the measures' rules are computed again.
                self.measure_keys.clear();
            }
        }
        self.record_situation(sit);
    }

    /// Keeps what the rules of a situation read, to tell what the next one changes.
    fn record_situation(&mut self, sit: &Prepared) {
        self.last_facts.clone_from(&sit.facts);
        self.last_by_category.clone_from(&sit.by_category);
        self.last_total = sit.total;
    }

    /// Forgets the values of the rules that depend on `d`.
    fn renew(&mut self, d: Dependence) {
        self.last_epoch += 1;
        self.memo_epochs[d as usize] = self.last_epoch;
    }

    fn new_measure(&mut self, facts: usize, params: usize) {
        self.seen_epoch = self.seen_epoch.wrapping_add(1);
        if self.seen_epoch == 0 {
            self.fact_seen.fill(0);
            self.param_seen.fill(0);
            self.seen_epoch = 1;
        }
        if self.fact_seen.len() != facts {
            self.fact_seen.resize(facts, 0);
        }
        if self.param_seen.len() != params {
            self.param_seen.resize(params, 0);
        }
        self.not_in_force.clear();
        self.missing.clear();
        self.assumed.clear();
        self.effects.clear();
        self.notes.clear();
        self.reasons.clear();
        self.wording.clear();
        self.kept.clear();
    }
}

/// Why an expense category is not retained in full: the index of its rule in the regime.
#[derive(Debug, Clone, Copy)]
enum Motif {
    Excluded(usize),
    Capped(usize),
}

/// A rule's value, with what computing it did besides (ranges of one of the [`Arena`]s): the
/// facts it found missing, and the presumed facts and parameters not in force it read. They
/// count again wherever the rule is used.
#[derive(Debug, Clone)]
struct Memo {
    /// The epoch the value was computed in (see [`Scratch::memo`]); 0: none.
    stamp: u64,
    value: Value,
    arena: usize,
    missing: (usize, usize),
    effects: (usize, usize),
}

impl Default for Memo {
    fn default() -> Self {
        Memo {
            stamp: 0,
            value: Value::Absent,
            arena: SITUATION,
            missing: (0, 0),
            effects: (0, 0),
        }
    }
}

/// The arena of the rules that depend on the situation (or the measure), kept for one situation.
const SITUATION: usize = 0;
/// The arena of the rules that depend on the date and the territory only, kept while they stay.
const DATE: usize = 1;

#[derive(Debug, Default)]
struct Arena {
    missing: Vec<usize>,
    effects: Vec<Effect>,
}

impl Arena {
    fn clear(&mut self) {
        self.missing.clear();
        self.effects.clear();
    }
}

/// A reading that shows in the answer.
#[derive(Debug, Clone, Copy)]
enum Effect {
    /// A fact the situation does not give, taken at its default value.
    Presumed(usize),
    /// A parameter read at a date before its first value.
    NotInForce(usize),
}

struct Ev<'a> {
    rules: &'a Rules,
    set: &'a RuleSet,
    sit: &'a Prepared,
    s: &'a mut Scratch,
    trace: Option<Vec<Step>>,
    /// Whether the answer is worded ([`Evaluation`]) or not ([`Outcome`]).
    worded: bool,
    base: Option<Value>,
    rate: Option<Value>,
    rate_max: Option<Value>,
}

/// Errors are rare: boxed, they keep the result of every step small.
type R = Result<Value, Box<EvalError>>;

static ABSENT: Value = Value::Absent;
static NON_APPLICABLE: Value = Value::NonApplicable;

fn overflow() -> EvalError {
    EvalError::Arithmetic("dépassement de capacité".into())
}

fn to_cents(v: &Value) -> Option<Cents> {
    match v {
        // Whole cents: no fraction to drop.
        Value::Montant(d) if d.scale() == 0 => i64::try_from(d.mantissa()).ok().map(Cents::new),
        Value::Montant(d) => d.trunc().to_i64().map(Cents::new),
        _ => None,
    }
}

/// Appends a value as `Display` writes it; a date without going through a format string.
fn push_value(out: &mut String, v: &Value) {
    use chrono::Datelike;
    use std::fmt::Write;
    // `french_date` writes `%d/%m/%Y`: for years 0 to 9999, these zero-padded numbers.
    let _ = match v {
        Value::Date(d) if (0..=9999).contains(&d.year()) => {
            write!(out, "{:02}/{:02}/{:04}", d.day(), d.month(), d.year())
        }
        _ => write!(out, "{v}"),
    };
}

fn round(d: Decimal, r: Rounding) -> Decimal {
    // A positive amount whose hundredth is exact (at most 26 decimals): the same result in
    // integers, without dividing decimals.
    if !d.is_sign_negative() && d.scale() <= 17 {
        // Most amounts: whole cents already, or a mantissa of 64 bits (divided in hardware,
        // not by the 128-bit routine).
        if d.scale() == 0 && matches!(r, Rounding::CentDown) {
            return d;
        }
        if let Ok(m) = u64::try_from(d.mantissa()) {
            let unit = 10u64.pow(d.scale());
            let q = match r {
                Rounding::CentDown => Some(m / unit),
                Rounding::EuroDown => (m / (unit * 100)).checked_mul(100),
                Rounding::EuroNearest => {
                    let euro = unit * 100;
                    (m / euro + u64::from(m % euro >= euro - m % euro)).checked_mul(100)
                }
            };
            if let Some(q) = q {
                return Decimal::from(q);
            }
        }
    }
    if !d.is_sign_negative() && d.scale() <= 26 {
        let (m, unit) = (d.mantissa(), 10i128.pow(d.scale()));
        let q = match r {
            Rounding::CentDown => m / unit,
            Rounding::EuroDown => m / (unit * 100) * 100,
            Rounding::EuroNearest => {
                let euro = unit * 100;
                (m / euro + i128::from(m % euro * 2 >= euro)) * 100
            }
        };
        if let Ok(v) = Decimal::try_from_i128_with_scale(q, 0) {
            return v;
        }
    }
    let hundred = Decimal::ONE_HUNDRED;
    match r {
        Rounding::CentDown => d.floor(),
        Rounding::EuroDown => (d / hundred).floor() * hundred,
        Rounding::EuroNearest => {
            (d / hundred)
                .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
                * hundred
        }
    }
}

impl<'a> Ev<'a> {
    fn step(&mut self, step: Step) {
        if let Some(t) = &mut self.trace {
            t.push(step);
        }
    }

    fn note(&mut self, n: String) {
        if self.trace.is_some() {
            self.s.notes.push(n);
        }
    }

    /// Decides one measure: eligibility, reasons, expense base, rates and amounts. Its
    /// reasons, missing and presumed facts and expense lines are left in the scratch, for
    /// [`Ev::evaluation`] to word or for an [`Outcome`] to show as they are.
    fn decide(&mut self, m: &MeasureRules) -> Result<Decided, Box<EvalError>> {
        if let Some((_, message)) = &m.exclusion {
            self.s.reasons.push(ReasonRef::Exclusion);
            if self.trace.is_some() {
                self.step(Step {
                    kind: StepKind::Condition,
                    name: "exclusion".into(),
                    title: format!("Mesure ouverte en {}", self.set.name),
                    display: "non".into(),
                    raw: serde_json::Value::Bool(false),
                    formula: None,
                    detail: Some(message.clone()),
                    source: self.set.source.clone(),
                    since: None,
                });
            }
        }
        for &ci in &m.conditions {
            let c = &self.set.conditions[ci];
            let v = self.rule(c.rule)?;
            match v {
                Value::Booleen(false) => {
                    // The message is read even when not worded: what it reads counts.
                    let message = self.condition_message(ci)?;
                    self.s.reasons.push(ReasonRef::Condition(ci));
                    if let Some(message) = message {
                        self.s.wording.push(message);
                    }
                }
                Value::Booleen(true) | Value::NonApplicable | Value::Absent => {}
                other => {
                    return Err(EvalError::Arithmetic(format!(
                        "la condition {} donne « {other} »",
                        c.name
                    ))
                    .into())
                }
            }
        }

        // Expense base.
        let mut base = None;
        if m.whole_cost && !self.worded {
            // Every line retained in full: no rule to read, no line to word.
            base = Some(if self.sit.lines.is_empty() {
                Value::Absent
            } else {
                Value::Montant(self.sit.total)
            });
        } else if let Some((_, regime)) = &m.expenses {
            // By category: what is retained, left to match the lines against; why not in full.
            let categories = self.rules.categories.len();
            let mut remaining = std::mem::take(&mut self.s.remaining);
            remaining.clear();
            remaining.resize(categories, Decimal::ZERO);
            let mut motif = std::mem::take(&mut self.s.motif);
            motif.clear();
            motif.resize(categories, None);
            let mut any_missing = false;
            for (k, rule) in regime.iter().enumerate() {
                let amount = self.sit.by_category[rule.category];
                if amount.is_zero() {
                    // Nothing to retain, and no line of it loses anything: no rule to read.
                    continue;
                }
                let eligible = if rule.always {
                    Value::Booleen(true)
                } else if let Some(r) = rule.eligible_if {
                    if amount.is_zero() {
                        Value::Booleen(true)
                    } else {
                        self.rule(r)?
                    }
                } else {
                    Value::Booleen(false)
                };
                match eligible {
                    Value::Booleen(true) | Value::NonApplicable => {
                        let mut kept = amount;
                        if let (Some(cap), false) = (rule.cap, amount.is_zero()) {
                            if let Value::Montant(c) = self.rule(cap)? {
                                if c < kept {
                                    kept = c.max(Decimal::ZERO);
                                    motif[rule.category] = Some(Motif::Capped(k));
                                }
                            }
                        }
                        remaining[rule.category] = kept;
                    }
                    Value::Absent => any_missing = true,
                    _ => motif[rule.category] = Some(Motif::Excluded(k)),
                }
            }
            // Whole cents added as integers, the rest (a cap may fall between two cents) as
            // decimals: the same sum, without decimal additions for most lines.
            let (mut whole, mut fraction) = (0i128, Decimal::ZERO);
            for (ci, amount) in &self.sit.lines {
                let a = Decimal::from(amount.get());
                let left = remaining[*ci];
                let kept = if left.scale() == 0 {
                    let k = i128::from(amount.get()).min(left.mantissa());
                    remaining[*ci] = Decimal::from_i128_with_scale(left.mantissa() - k, 0);
                    whole += k;
                    Decimal::from_i128_with_scale(k, 0)
                } else {
                    let kept = a.min(left);
                    remaining[*ci] -= kept;
                    fraction += kept;
                    kept
                };
                // 0 <= kept <= a, an i64: it fits in i64 cents.
                let why = motif[*ci].filter(|_| kept < a);
                if self.trace.is_some() {
                    let cat = &self.rules.categories[*ci];
                    let detail = match motif_message(regime, why) {
                        Some(m) => format!(
                            "{} déclarés, {} retenus : {m}",
                            french_money(a),
                            french_money(kept)
                        ),
                        None => format!("{} déclarés, retenus en entier", french_money(a)),
                    };
                    self.step(Step {
                        kind: StepKind::Depense,
                        name: cat.id.clone(),
                        title: format!("Dépense « {} »", cat.label),
                        display: french_money(kept),
                        raw: Value::Montant(kept).to_json(),
                        formula: None,
                        detail: Some(detail),
                        source: None,
                        since: None,
                    });
                }
                if self.worded {
                    // For the expense lines of an `Evaluation` (an `Outcome` has none).
                    self.s.kept.push((kept, why));
                }
            }
            self.s.remaining = remaining;
            self.s.motif = motif;
            let total = Decimal::from_i128_with_scale(whole, 0) + fraction;
            let v = if self.sit.lines.is_empty() {
                self.missing_expenses();
                Value::Absent
            } else if any_missing {
                Value::Absent
            } else {
                Value::Montant(total)
            };
            if self.trace.is_some() {
                self.step(Step {
                    kind: StepKind::Resultat,
                    name: "assiette".into(),
                    title: "Assiette éligible (dépenses retenues)".into(),
                    display: v.to_string(),
                    raw: v.to_json(),
                    formula: None,
                    detail: if self.sit.lines.is_empty() {
                        Some("aucune dépense déclarée".into())
                    } else {
                        None
                    },
                    source: None,
                    since: None,
                });
            }
            base = Some(v);
        }
        self.base = base.clone();
        let rate = m.rate.map(|r| self.rule(r)).transpose()?;
        self.rate = rate.clone();
        let rate_max = m.rate_max.map(|r| self.rule(r)).transpose()?;
        self.rate_max = rate_max.clone();
        if self.trace.is_none() {
            self.s
                .measure_inputs([&self.base, &self.rate, &self.rate_max]);
        }
        let mut amount = m.amount.map(|r| self.rule(r)).transpose()?;
        let mut amount_max = m.amount_max.map(|r| self.rule(r)).transpose()?;

        let rounding = self.rules.rounding;
        for (slot, label) in [
            (&mut amount, "Montant proposé"),
            (&mut amount_max, "Montant maximal"),
        ] {
            if let Some(Value::Montant(d)) = slot {
                if d.is_sign_negative() && !d.is_zero() {
                    return Err(EvalError::Arithmetic(format!("{label} négatif")).into());
                }
                let r = round(*d, rounding);
                if r != *d {
                    if let Some(t) = &mut self.trace {
                        t.push(Step {
                            kind: StepKind::Resultat,
                            name: "arrondi".into(),
                            title: label.into(),
                            display: french_money(r),
                            raw: Value::Montant(r).to_json(),
                            formula: None,
                            detail: Some(format!(
                                "{} {} ({})",
                                french_money(*d),
                                rounding.label(),
                                "règle d’arrondi du programme"
                            )),
                            source: None,
                            since: None,
                        });
                    }
                    *d = r;
                }
            }
        }
        if let (Some(Value::Montant(a)), Some(Value::Montant(mx))) = (&amount, &amount_max) {
            if a > mx {
                let (a_old, mx) = (*a, *mx);
                amount = Some(Value::Montant(mx));
                if self.trace.is_some() {
                    self.step(Step {
                        kind: StepKind::Resultat,
                        name: "montant".into(),
                        title: "Montant proposé ramené au montant maximal".into(),
                        display: french_money(mx),
                        raw: Value::Montant(mx).to_json(),
                        formula: None,
                        detail: Some(format!("{} dépassait le maximum", french_money(a_old))),
                        source: None,
                        since: None,
                    });
                }
            }
        }

        self.s.missing.sort_unstable();
        self.s.missing.dedup();
        let missing_expenses = m.expenses.is_some() && self.sit.lines.is_empty();
        if let Some(since) = self
            .s
            .not_in_force
            .iter()
            .filter_map(|&i| self.set.params[i].first().map(|v| v.since))
            .min()
        {
            self.s.reasons.insert(0, ReasonRef::NotInForce(since));
        }
        let any_missing = missing_expenses || !self.s.missing.is_empty();
        let eligible = self.s.reasons.is_empty() && !any_missing;
        if !self.s.reasons.is_empty() {
            for slot in [&mut amount, &mut amount_max] {
                if slot.is_some() {
                    *slot = Some(Value::Montant(Decimal::ZERO));
                }
            }
            if self.trace.is_some() {
                let n = self.s.reasons.len();
                self.step(Step {
                    kind: StepKind::Resultat,
                    name: "non_eligible".into(),
                    title: "Montant".into(),
                    display: french_money(Decimal::ZERO),
                    raw: serde_json::json!(0),
                    formula: None,
                    detail: Some(format!(
                        "demande non éligible ({} motif{})",
                        n,
                        if n > 1 { "s" } else { "" }
                    )),
                    source: None,
                    since: None,
                });
            }
        } else if any_missing {
            self.s.reasons.push(ReasonRef::Missing);
        }
        Ok(Decided {
            eligible,
            missing_expenses,
            base: base.as_ref().and_then(to_cents),
            rate: as_rate(&rate),
            rate_max: as_rate(&rate_max),
            amount: amount.as_ref().and_then(to_cents),
            amount_max: amount_max.as_ref().and_then(to_cents),
        })
    }

    /// Words what [`Ev::decide`] decided.
    fn evaluation(mut self, m: &MeasureRules, d: Decided) -> Evaluation {
        let (rules, set) = (self.rules, self.set);
        let mut missing = Vec::with_capacity(self.s.missing.len() + 1);
        if d.missing_expenses {
            missing.push(crate::eval::Missing {
                nom: EXPENSES_FACT.into(),
                titre: "Coût du projet".into(),
                question: Some("Quel est le coût du projet, ou le détail de ses dépenses ?".into()),
            });
        }
        missing.extend(self.s.missing.iter().map(|&i| {
            let f = &rules.facts[i];
            crate::eval::Missing {
                nom: f.name.clone(),
                titre: f.title.clone(),
                question: f.question.clone(),
            }
        }));
        let mut wording = self.s.wording.drain(..);
        let reasons = self
            .s
            .reasons
            .iter()
            .map(|r| match *r {
                ReasonRef::NotInForce(since) => Reason {
                    code: NOT_IN_FORCE_REASON.into(),
                    message: format!(
                        "Les règles de cette mesure ne sont pas en vigueur à la date de dépôt ({}) : elles s’appliquent à compter du {}.",
                        crate::value::french_date(self.sit.date),
                        crate::value::french_date(since)
                    ),
                    source: None,
                },
                ReasonRef::Exclusion => {
                    let (code, message) = m.exclusion.clone().unwrap_or_default();
                    Reason {
                        code,
                        message,
                        source: set.source.clone(),
                    }
                }
                ReasonRef::Condition(ci) => {
                    let c = &set.conditions[ci];
                    Reason {
                        code: c.code.clone(),
                        message: wording.next().unwrap_or_else(|| c.message.clone()),
                        source: c.source.clone(),
                    }
                }
                ReasonRef::Missing => Reason {
                    code: crate::eval::MISSING_REASON.into(),
                    message: format!(
                        "Informations à compléter : {}.",
                        missing
                            .iter()
                            .map(|m| m.titre.to_lowercase())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    source: None,
                },
            })
            .collect();
        drop(wording);
        let regime = m
            .expenses
            .as_ref()
            .map(|(_, r)| r.as_slice())
            .unwrap_or_default();
        let expenses = self
            .sit
            .lines
            .iter()
            .zip(&self.s.kept)
            .map(|((ci, amount), (kept, why))| {
                let cat = &rules.categories[*ci];
                ExpenseLine {
                    categorie: cat.id.clone(),
                    libelle: cat.label.clone(),
                    montant_centimes: amount.get(),
                    retenu_centimes: kept.to_i64().unwrap_or_default(),
                    motif: motif_message(regime, *why),
                }
            })
            .collect();
        let mut assumptions = Vec::with_capacity(self.s.assumed.len());
        for k in 0..self.s.assumed.len() {
            let i = self.s.assumed[k];
            let f = &rules.facts[i];
            assumptions.push(Assumption {
                nom: f.name.clone(),
                titre: f.title.clone(),
                valeur: self.s.default_shown(&rules.facts, i),
            });
        }
        Evaluation {
            measure: m.id.clone(),
            territory: set.code.clone(),
            territory_name: set.name.clone(),
            date: self.sit.date,
            eligible: d.eligible,
            reasons,
            missing,
            assumptions,
            expenses,
            base: d.base,
            rate: d.rate,
            rate_max: d.rate_max,
            amount: d.amount,
            amount_max: d.amount_max,
            trace: self.trace.take().unwrap_or_default(),
        }
    }

    fn missing_expenses(&mut self) {
        // Expenses are not a fact of their own: report them under a synthetic name the
        // doors know (`depenses`).
        if let Some(t) = &mut self.trace {
            t.push(Step {
                kind: StepKind::Fait,
                name: "depenses".into(),
                title: "Dépenses du projet".into(),
                display: "non renseignées".into(),
                raw: serde_json::Value::Null,
                formula: None,
                detail: Some("indiquez le coût du projet ou ses lignes de dépenses".into()),
                source: None,
                since: None,
            });
        }
    }

    /// A condition's message, its `{nom}` (resolved at load time) replaced by their values, as
    /// [`Ev::interpolate`] would.
    fn condition_message(&mut self, ci: usize) -> Result<Option<String>, Box<EvalError>> {
        let set = self.set;
        let Some(pieces) = set.messages.get(ci) else {
            let message = self.interpolate(&set.conditions[ci].message)?;
            return Ok(Some(message).filter(|_| self.worded));
        };
        if !self.worded {
            // Not worded, the message is still read: what reading it marks counts (a fact
            // missing, a parameter not in force), in the same order. Made of text and
            // parameters in force, reading it marks nothing: known once per territory and date.
            let key = (self.sit.variant, self.sit.date);
            if self.s.quiet.get(ci) == Some(&Some(key)) {
                return Ok(None);
            }
            let marks = (self.s.effects.len(), self.s.missing.len());
            let constant = pieces
                .iter()
                .all(|p| matches!(p, Piece::Text(_) | Piece::Param(_)));
            self.read_pieces(pieces, None)?;
            if constant && marks == (self.s.effects.len(), self.s.missing.len()) {
                if self.s.quiet.len() <= ci {
                    self.s.quiet.resize(ci + 1, None);
                }
                self.s.quiet[ci] = Some(key);
            }
            return Ok(None);
        }
        if let [Piece::Text(t)] = pieces.as_slice() {
            return Ok(Some(t.clone()));
        }
        // Text and parameters only: the same message for every situation of the territory at
        // that date. The parameters are still read, for what reading them marks.
        let constant = pieces
            .iter()
            .all(|p| matches!(p, Piece::Text(_) | Piece::Param(_)));
        let key = (self.sit.variant, self.sit.date);
        if constant {
            let cached = match self.s.messages.get(ci) {
                Some(Some((k, m))) if *k == key => Some(m.clone()),
                _ => None,
            };
            if let Some(m) = cached {
                self.read_pieces(pieces, None)?;
                return Ok(Some(m));
            }
        }
        let mut out = String::with_capacity(set.conditions[ci].message.len() + 16);
        self.read_pieces(pieces, Some(&mut out))?;
        if constant {
            if self.s.messages.len() <= ci {
                self.s.messages.resize(ci + 1, None);
            }
            self.s.messages[ci] = Some((key, out.clone()));
        }
        Ok(Some(out))
    }

    /// Reads what a message's pieces show, in order (reading counts: a fact missing, a
    /// parameter not in force), and writes the message into `out` when given.
    fn read_pieces(
        &mut self,
        pieces: &[Piece],
        mut out: Option<&mut String>,
    ) -> Result<(), Box<EvalError>> {
        for p in pieces {
            let v = match p {
                Piece::Text(t) => {
                    if let Some(out) = out.as_deref_mut() {
                        out.push_str(t);
                    }
                    continue;
                }
                Piece::Param(i) => Cow::Borrowed(self.param_ref(*i)),
                Piece::Rule(i) => Cow::Owned(self.rule(*i)?),
                Piece::Fact(i) => Cow::Borrowed(self.fact_ref(*i)),
            };
            if let Some(out) = out.as_deref_mut() {
                push_value(out, &v);
            }
        }
        Ok(())
    }

    /// `{nom}` in a message becomes the value of that parameter, rule or fact, resolved as
    /// at load (see [`crate::rules::message_pieces`]).
    fn interpolate(&mut self, msg: &str) -> Result<String, Box<EvalError>> {
        let pieces = crate::rules::message_pieces(
            msg,
            &self.rules.params,
            &self.set.rules,
            &self.rules.fact_index,
        );
        let mut out = String::with_capacity(msg.len() + 16);
        self.read_pieces(&pieces, Some(&mut out))?;
        Ok(out)
    }

    fn rule(&mut self, i: usize) -> R {
        let set = self.set;
        let class = set
            .dependence
            .get(i)
            .map_or(Dependence::Measure as usize, |&d| d as usize);
        // With an explanation, each rule shows under its own name.
        let slot = match (&self.trace, set.same_as.get(i)) {
            (None, Some(&same)) => same,
            _ => i,
        };
        let m = &self.s.memo[slot];
        if m.stamp == self.s.memo_epochs[class] {
            let v = m.value.clone();
            let (a, (ms, me), (es, ee)) = (m.arena, m.missing, m.effects);
            if ms == me && es == ee {
                return Ok(v);
            }
            let arena = &self.s.arenas[a];
            self.s
                .missing
                .extend_from_slice(arena.missing.get(ms..me).unwrap_or_default());
            for k in es..ee {
                if let Some(&e) = self.s.arenas[a].effects.get(k) {
                    self.effect(e);
                }
            }
            return Ok(v);
        }
        self.compute_rule(i, slot, class)
    }

    /// A rule's value, computed (and kept for as long as what it depends on stays).
    #[inline(never)]
    fn compute_rule(&mut self, i: usize, slot: usize, class: usize) -> R {
        let set = self.set;
        let def = &set.rules[i];
        let notes_from = self.s.notes.len();
        let missing_from = self.s.missing.len();
        let effects_from = self.s.effects.len();
        let v = self.eval(&def.node)?;
        let a = match set.dependence.get(i) {
            Some(Dependence::Date) => DATE,
            _ => SITUATION,
        };
        let arena = &mut self.s.arenas[a];
        let ms = arena.missing.len();
        arena
            .missing
            .extend_from_slice(self.s.missing.get(missing_from..).unwrap_or_default());
        let es = arena.effects.len();
        arena
            .effects
            .extend_from_slice(self.s.effects.get(effects_from..).unwrap_or_default());
        // Field by field, in place: no temporary `Memo` to copy.
        let (me, ee) = (arena.missing.len(), arena.effects.len());
        let m = &mut self.s.memo[slot];
        m.value.clone_from(&v);
        m.arena = a;
        m.missing = (ms, me);
        m.effects = (es, ee);
        m.stamp = self.s.memo_epochs[class];
        if self.trace.is_some() {
            let notes: Vec<String> = self.s.notes.drain(notes_from..).collect();
            let kind = if def.name.starts_with("condition ") {
                StepKind::Condition
            } else {
                StepKind::Regle
            };
            let display = match (&v, def.ty) {
                (Value::Nombre(d), _) if def.title.to_lowercase().starts_with("taux") => {
                    french_rate(*d)
                }
                (Value::Booleen(b), _) if kind == StepKind::Condition => {
                    if *b { "respectée" } else { "non respectée" }.to_string()
                }
                (Value::Absent, _) => "à préciser".to_string(),
                _ => v.to_string(),
            };
            // A condition's title is its message, whose `{nom}` show values.
            let title = if def.title.contains('{') {
                self.interpolate(&def.title)?
            } else {
                def.title.clone()
            };
            self.step(Step {
                kind,
                name: def.name.clone(),
                title,
                display,
                raw: v.to_json(),
                formula: Some(def.formula.clone()),
                detail: if notes.is_empty() {
                    None
                } else {
                    Some(notes.join(" ; "))
                },
                source: def.source.clone(),
                since: None,
            });
        }
        Ok(v)
    }

    /// A node's value, borrowed when it is a constant, a fact or a parameter: comparing it
    /// then copies nothing (nor counts references to its text).
    fn operand(&mut self, n: &'a Node) -> Result<Cow<'a, Value>, Box<EvalError>> {
        Ok(match n {
            Node::Const(v) => Cow::Borrowed(v),
            Node::Fact(i) => Cow::Borrowed(self.fact_ref(*i)),
            Node::Param(i) => Cow::Borrowed(self.param_ref(*i)),
            Node::Builtin(b) => Cow::Owned(self.builtin(*b)),
            Node::Rule(i) => Cow::Owned(self.rule(*i)?),
            _ => Cow::Owned(self.eval(n)?),
        })
    }

    fn param(&mut self, i: usize) -> Value {
        self.param_ref(i).clone()
    }

    fn param_ref(&mut self, i: usize) -> &'a Value {
        let set: &'a RuleSet = self.set;
        let versions = &set.params[i];
        let date = self.sit.date;
        let found = versions.iter().rev().find(|v| v.since <= date);
        let v = found.map(|f| &f.value).unwrap_or(&NON_APPLICABLE);
        if found.is_none() && !versions.is_empty() {
            self.effect(Effect::NotInForce(i));
        }
        if self.trace.is_some() && self.s.param_seen[i] != self.s.seen_epoch {
            self.s.param_seen[i] = self.s.seen_epoch;
            let def = &self.rules.params[i];
            let display = match (&v, def.ty) {
                (Value::Nombre(d), Type::Nombre) if def.unit == "%" => french_rate(*d),
                _ => v.to_string(),
            };
            let step = Step {
                kind: StepKind::Parametre,
                name: def.name.clone(),
                title: def.title.clone(),
                display,
                raw: v.to_json(),
                formula: None,
                detail: if found.is_none() {
                    Some(if versions.is_empty() {
                        format!("sans valeur en {}", self.set.name)
                    } else {
                        "pas encore en vigueur à cette date".to_string()
                    })
                } else {
                    None
                },
                source: found.map(|f| f.source.clone()),
                since: found.map(|f| f.since),
            };
            self.step(step);
        }
        v
    }

    /// A presumed fact or a parameter not in force read again through a rule's [`Memo`] (or
    /// a parameter read now): it counts as a fresh reading would.
    fn effect(&mut self, e: Effect) {
        self.s.effects.push(e);
        match e {
            Effect::Presumed(i) => {
                // Read before in this measure, as any fact of a rule computed in it: the trace
                // already shows it.
                if self.s.fact_seen[i] != self.s.seen_epoch {
                    self.s.fact_seen[i] = self.s.seen_epoch;
                    self.s.assumed.push(i);
                }
            }
            Effect::NotInForce(i) => {
                if !self.s.not_in_force.contains(&i) {
                    self.s.not_in_force.push(i);
                }
            }
        }
    }

    fn fact(&mut self, i: usize) -> Value {
        self.fact_ref(i).clone()
    }

    fn fact_ref(&mut self, i: usize) -> &'a Value {
        let (rules, sit): (&'a Rules, &'a Prepared) = (self.rules, self.sit);
        let def = &rules.facts[i];
        let (v, assumed) = match &sit.facts[i] {
            Some(v) => (v, false),
            None => match &def.default {
                Some(d) => (d, true),
                None => (&ABSENT, false),
            },
        };
        if matches!(v, Value::Absent) {
            self.s.missing.push(i);
        }
        if assumed {
            self.s.effects.push(Effect::Presumed(i));
        }
        if self.s.fact_seen[i] != self.s.seen_epoch {
            self.s.fact_seen[i] = self.s.seen_epoch;
            if assumed {
                self.s.assumed.push(i);
            }
            if self.trace.is_some() {
                let step = Step {
                    kind: StepKind::Fait,
                    name: def.name.clone(),
                    title: def.title.clone(),
                    display: v.to_string(),
                    raw: v.to_json(),
                    formula: None,
                    detail: if assumed {
                        Some("valeur présumée, faute de réponse".into())
                    } else {
                        None
                    },
                    source: Some(
                        match def.origin.as_str() {
                            "referentiel" => "référentiel territorial du programme",
                            "base" => "dossiers enregistrés dans Guichet",
                            "demande" => "demande",
                            _ => "déclaration du demandeur",
                        }
                        .to_string(),
                    ),
                    since: None,
                };
                self.step(step);
            }
        }
        v
    }

    fn builtin(&mut self, b: Builtin) -> Value {
        match b {
            Builtin::CoutTotal => Value::Montant(self.sit.total),
            Builtin::Depense(c) => Value::Montant(self.sit.by_category[c]),
            Builtin::Assiette => self.base.clone().unwrap_or(Value::NonApplicable),
            Builtin::Taux => self.rate.clone().unwrap_or(Value::NonApplicable),
            Builtin::TauxMax => self.rate_max.clone().unwrap_or(Value::NonApplicable),
        }
    }

    /// A node's value. The common nodes are here, the mechanisms in [`Ev::mechanism`]: a
    /// small function whose calls are cheap, most nodes being leaves and operators.
    fn eval(&mut self, n: &'a Node) -> R {
        match n {
            Node::Const(v) => Ok(v.clone()),
            Node::Rule(i) => self.rule(*i),
            Node::Param(i) => Ok(self.param(*i)),
            Node::Fact(i) => Ok(self.fact(*i)),
            Node::Builtin(b) => Ok(self.builtin(*b)),
            Node::Bin(op, a, b) => self.binary(*op, a, b),
            _ => self.mechanism(n),
        }
    }

    #[inline(never)]
    fn mechanism(&mut self, n: &'a Node) -> R {
        Ok(match n {
            Node::Const(_)
            | Node::Rule(_)
            | Node::Param(_)
            | Node::Fact(_)
            | Node::Builtin(_)
            | Node::Bin(..) => return self.eval(n),
            Node::Neg(a) => match self.eval(a)? {
                Value::Nombre(d) => Value::Nombre(-d),
                Value::Montant(d) => Value::Montant(-d),
                other => other,
            },
            Node::In(a, items) => {
                let v = self.operand(a)?;
                match &*v {
                    Value::Absent | Value::NonApplicable => v.into_owned(),
                    v => Value::Booleen(items.contains(v)),
                }
            }
            Node::All(list) => {
                let mut absent = false;
                let from = self.s.missing.len();
                for x in list {
                    let start = self.s.missing.len();
                    match self.eval(x)? {
                        Value::Booleen(false) => {
                            // Settled by this one: what the others lack does not matter.
                            self.s.missing.drain(from..start);
                            return Ok(Value::Booleen(false));
                        }
                        Value::Absent => absent = true,
                        _ => {}
                    }
                }
                if absent {
                    Value::Absent
                } else {
                    Value::Booleen(true)
                }
            }
            Node::Any(list) => {
                let mut absent = false;
                let mut any_applicable = false;
                let from = self.s.missing.len();
                for x in list {
                    let start = self.s.missing.len();
                    match self.eval(x)? {
                        Value::Booleen(true) => {
                            // Settled by this one: what the others lack does not matter.
                            self.s.missing.drain(from..start);
                            return Ok(Value::Booleen(true));
                        }
                        Value::Booleen(false) => any_applicable = true,
                        Value::Absent => absent = true,
                        _ => {}
                    }
                }
                if absent {
                    Value::Absent
                } else if any_applicable {
                    Value::Booleen(false)
                } else {
                    Value::NonApplicable
                }
            }
            Node::Min(list) | Node::Max(list) => {
                let is_min = matches!(n, Node::Min(_));
                let mut best: Option<Value> = None;
                let mut absent = false;
                for x in list {
                    let v = self.eval(x)?;
                    match v {
                        Value::Absent => absent = true,
                        Value::NonApplicable => {}
                        v => {
                            best = Some(match best {
                                None => v,
                                Some(b) => {
                                    let ord =
                                        cmp_values(&v, &b).unwrap_or(std::cmp::Ordering::Equal);
                                    if (is_min && ord.is_lt()) || (!is_min && ord.is_gt()) {
                                        v
                                    } else {
                                        b
                                    }
                                }
                            })
                        }
                    }
                }
                if absent {
                    Value::Absent
                } else {
                    best.unwrap_or(Value::NonApplicable)
                }
            }
            Node::Sum(list) => {
                let mut acc: Option<Value> = None;
                for x in list {
                    let v = self.eval(x)?;
                    match v {
                        Value::Absent => return Ok(Value::Absent),
                        Value::NonApplicable => {}
                        v => {
                            acc = Some(match acc {
                                None => v,
                                Some(a) => arith(BinOp::Add, &a, &v)?,
                            })
                        }
                    }
                }
                acc.unwrap_or(Value::NonApplicable)
            }
            Node::Product(list) => {
                let mut acc = Value::Nombre(Decimal::ONE);
                for x in list {
                    let v = self.eval(x)?;
                    match v {
                        Value::Absent | Value::NonApplicable => return Ok(v),
                        v => acc = arith(BinOp::Mul, &acc, &v)?,
                    }
                }
                acc
            }
            Node::Variations(branches, otherwise) => {
                for (c, v) in branches {
                    match self.eval(c)? {
                        Value::Booleen(true) => return self.eval(v),
                        Value::Absent => return Ok(Value::Absent),
                        _ => {}
                    }
                }
                match otherwise {
                    Some(o) => self.eval(o)?,
                    None => Value::NonApplicable,
                }
            }
            Node::Grid(base, tranches) => {
                let b = self.eval(base)?;
                if matches!(b, Value::Absent | Value::NonApplicable) {
                    return Ok(b);
                }
                let inside = |bound: &Option<Bound>, lower: bool| match bound {
                    None => true,
                    Some(bd) => match cmp_values(&b, &bd.value) {
                        Some(o) => {
                            if lower {
                                o.is_gt() || (bd.inclusive && o.is_eq())
                            } else {
                                o.is_lt() || (bd.inclusive && o.is_eq())
                            }
                        }
                        None => false,
                    },
                };
                for (lo, hi, v) in tranches {
                    if inside(lo, true) && inside(hi, false) {
                        return self.eval(v);
                    }
                }
                Value::NonApplicable
            }
            Node::Modified {
                value,
                applicable,
                not_applicable,
                cap,
                floor,
                rounding,
            } => {
                if let Some(c) = applicable {
                    match self.eval(c)? {
                        Value::Booleen(false) => return Ok(Value::NonApplicable),
                        Value::Absent => return Ok(Value::Absent),
                        _ => {}
                    }
                }
                if let Some(c) = not_applicable {
                    match self.eval(c)? {
                        Value::Booleen(true) => return Ok(Value::NonApplicable),
                        Value::Absent => return Ok(Value::Absent),
                        _ => {}
                    }
                }
                let mut v = self.eval(value)?;
                if matches!(v, Value::Absent | Value::NonApplicable) {
                    return Ok(v);
                }
                if let Some(c) = cap {
                    let c = self.eval(c)?;
                    if let Some(std::cmp::Ordering::Greater) = cmp_values(&v, &c) {
                        if self.trace.is_some() {
                            self.note(format!("plafonné : {v} ramené à {c}"));
                        }
                        v = c;
                    }
                }
                if let Some(f) = floor {
                    let f = self.eval(f)?;
                    if let Some(std::cmp::Ordering::Less) = cmp_values(&v, &f) {
                        if self.trace.is_some() {
                            self.note(format!("plancher : {v} porté à {f}"));
                        }
                        v = f;
                    }
                }
                if let (Some(r), Value::Montant(d)) = (rounding, &v) {
                    let rd = round(*d, *r);
                    if rd != *d && self.trace.is_some() {
                        self.note(r.label().to_string());
                    }
                    v = Value::Montant(rd);
                }
                v
            }
        })
    }

    fn binary(&mut self, op: BinOp, a: &'a Node, b: &'a Node) -> R {
        let from = self.s.missing.len();
        let va = self.operand(a)?;
        // Short-circuits: a false condition settles `et`, a true one settles `ou`.
        match (op, &*va) {
            (BinOp::And, Value::Booleen(false)) => return Ok(Value::Booleen(false)),
            (BinOp::Or, Value::Booleen(true)) => return Ok(Value::Booleen(true)),
            _ => {}
        }
        let mid = self.s.missing.len();
        let vb = self.operand(b)?;
        let settles = |y: bool| (op == BinOp::And && !y) || (op == BinOp::Or && y);
        match op {
            BinOp::And | BinOp::Or => Ok(match (va.into_owned(), vb.into_owned()) {
                (Value::Booleen(x), Value::Booleen(y)) => {
                    Value::Booleen(if op == BinOp::And { x && y } else { x || y })
                }
                // The known side settles it: the unknown side's missing facts do not matter.
                (Value::Absent, Value::Booleen(y)) if settles(y) => {
                    self.s.missing.drain(from..mid);
                    Value::Booleen(y)
                }
                (Value::Booleen(y), Value::Absent) if settles(y) => {
                    self.s.missing.truncate(mid);
                    Value::Booleen(y)
                }
                (Value::Absent, _) | (_, Value::Absent) => Value::Absent,
                (Value::NonApplicable, v) | (v, Value::NonApplicable) => v,
                _ => Value::NonApplicable,
            }),
            _ => {
                if matches!(*va, Value::Absent) || matches!(*vb, Value::Absent) {
                    return Ok(Value::Absent);
                }
                if matches!(*va, Value::NonApplicable) || matches!(*vb, Value::NonApplicable) {
                    return Ok(Value::NonApplicable);
                }
                match op {
                    BinOp::Eq => Ok(Value::Booleen(*va == *vb)),
                    BinOp::Ne => Ok(Value::Booleen(*va != *vb)),
                    BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                        let o = cmp_values(&va, &vb).ok_or_else(|| {
                            EvalError::Arithmetic(format!("comparaison impossible : {va} et {vb}"))
                        })?;
                        Ok(Value::Booleen(match op {
                            BinOp::Lt => o.is_lt(),
                            BinOp::Le => o.is_le(),
                            BinOp::Gt => o.is_gt(),
                            _ => o.is_ge(),
                        }))
                    }
                    _ => arith(op, &va, &vb),
                }
            }
        }
    }
}

/// Sums, differences and products of non-negative decimals whose mantissas fit in 62 bits,
/// computed in integers: the decimal `rust_decimal` gives, same scale included (a test
/// compares them), without its general algorithm. `None`: not such a case.
fn small_decimal(op: BinOp, x: Decimal, y: Decimal) -> Option<Decimal> {
    const LIMIT: i128 = 1 << 62;
    let (mx, my) = (x.mantissa(), y.mantissa());
    if !(0..LIMIT).contains(&mx) || !(0..LIMIT).contains(&my) {
        return None;
    }
    let (sx, sy) = (x.scale(), y.scale());
    match op {
        BinOp::Add if sx == sy => Decimal::try_from_i128_with_scale(mx + my, sx).ok(),
        BinOp::Sub if sx == sy && mx >= my => Decimal::try_from_i128_with_scale(mx - my, sx).ok(),
        BinOp::Mul if mx != 0 && my != 0 && sx + sy <= 28 => {
            Decimal::try_from_i128_with_scale(mx * my, sx + sy).ok()
        }
        _ => None,
    }
}

fn arith(op: BinOp, a: &Value, b: &Value) -> R {
    use Value::*;
    let f = |x: Decimal, y: Decimal| -> Result<Decimal, EvalError> {
        if let Some(d) = small_decimal(op, x, y) {
            return Ok(d);
        }
        match op {
            BinOp::Add => x.checked_add(y),
            BinOp::Sub => x.checked_sub(y),
            BinOp::Mul => x.checked_mul(y),
            BinOp::Div => {
                if y.is_zero() {
                    return Err(EvalError::Arithmetic("division par zéro".into()));
                }
                x.checked_div(y)
            }
            _ => None,
        }
        .ok_or_else(overflow)
    };
    Ok(match (op, a, b) {
        (BinOp::Add | BinOp::Sub, Nombre(x), Nombre(y)) => Nombre(f(*x, *y)?),
        (BinOp::Add | BinOp::Sub, Montant(x), Montant(y)) => Montant(f(*x, *y)?),
        (BinOp::Mul, Nombre(x), Nombre(y)) => Nombre(f(*x, *y)?),
        (BinOp::Mul, Montant(x), Nombre(y)) | (BinOp::Mul, Nombre(y), Montant(x)) => {
            Montant(f(*x, *y)?)
        }
        (BinOp::Div, Nombre(x), Nombre(y)) | (BinOp::Div, Montant(x), Montant(y)) => {
            Nombre(f(*x, *y)?)
        }
        (BinOp::Div, Montant(x), Nombre(y)) => Montant(f(*x, *y)?),
        (op, a, b) => {
            return Err(EvalError::Arithmetic(format!(
                "opération impossible : {a} {} {b}",
                op.symbol()
            ))
            .into())
        }
    })
}

#[cfg(test)]
mod missing_and_in_force_tests {
    use super::*;
    use crate::{itn7_files, Programme};

    fn situation(p: &Programme, date: &str, facts: &[(&str, &str)], cost: i64) -> Situation {
        let mut s = Situation {
            date: Some(NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap()),
            ..Default::default()
        };
        for (name, v) in facts {
            let i = p.rules.fact(name).unwrap();
            let value = Value::parse_literal(v, p.rules.facts[i].ty).unwrap();
            s.facts.insert(name.to_string(), value);
        }
        s.expenses
            .push(("prestation".into(), Cents::from_euros(cost)));
        s
    }

    fn missing(ev: &Evaluation) -> Vec<&str> {
        ev.missing.iter().map(|m| m.nom.as_str()).collect()
    }

    fn codes(ev: &Evaluation) -> Vec<&str> {
        ev.reasons.iter().map(|r| r.code.as_str()).collect()
    }

    #[test]
    fn a_missing_fact_that_settles_nothing_is_not_asked() {
        let p = crate::itn7().unwrap();
        // 600,000 inhabitants meet the Axe 2 threshold: whole-département coverage is moot.
        let s = situation(
            &p,
            "2021-03-01",
            &[("type_demandeur", "epci"), ("population", "600000")],
            10_000,
        );
        let ev = p.evaluate("axe2.demat", &s).unwrap();
        assert!(ev.eligible, "{:?}", ev.reasons);
        assert!(ev.missing.is_empty());
        assert_eq!(ev.amount, Some(Cents::from_euros(5_000)));
        // Below it, the answer decides.
        let s = situation(
            &p,
            "2021-03-01",
            &[("type_demandeur", "epci"), ("population", "300000")],
            10_000,
        );
        let ev = p.evaluate("axe2.demat", &s).unwrap();
        assert!(!ev.eligible);
        assert_eq!(missing(&ev), ["couvre_departement"]);
        assert_eq!(codes(&ev), [MISSING_REASON]);
    }

    #[test]
    fn a_rule_left_unknown_in_a_settled_branch_still_asks_where_it_decides() {
        // `couvre_entier` is first read inside a disjunction the population settles, then
        // alone in a condition of its own: its missing fact must come back there.
        let mut files = itn7_files();
        let edit = |files: &mut Vec<crate::SourceFile>, from: &str, to: &str| {
            let f = files.iter_mut().find(|f| f.name == "regles.yaml").unwrap();
            assert!(f.text.contains(from), "{from}");
            f.text = f.text.replacen(from, to, 1);
        };
        edit(
            &mut files,
            "regles:\n  collectivite_ou_groupement:",
            "regles:\n  couvre_entier: couvre_departement = oui\n  collectivite_ou_groupement:",
        );
        edit(
            &mut files,
            "        - couvre_departement = oui\n",
            "        - couvre_entier\n",
        );
        edit(
            &mut files,
            "\nconditions:\n",
            "\nconditions:\n  essai_couverture:\n    motif: essai\n    message: essai\n    si: couvre_entier\n\n",
        );
        edit(
            &mut files,
            "  axe2.demat:\n    conditions: [demandeur_axe2, couverture_axe2, periode_axe2]",
            "  axe2.demat:\n    conditions: [demandeur_axe2, couverture_axe2, periode_axe2, essai_couverture]",
        );
        let p = Programme::load(&files).unwrap_or_else(|d| panic!("{d}"));
        let s = situation(
            &p,
            "2021-03-01",
            &[("type_demandeur", "epci"), ("population", "600000")],
            10_000,
        );
        let ev = p.evaluate("axe2.demat", &s).unwrap();
        assert!(!ev.eligible);
        assert_eq!(missing(&ev), ["couvre_departement"]);
    }

    #[test]
    fn no_filing_is_eligible_before_the_rules_take_effect() {
        let p = crate::itn7().unwrap();
        let facts = [
            ("type_demandeur", "commune"),
            ("population", "3000"),
            ("region", "84"),
            ("date_fin", "2022-06-30"),
        ];
        let ev = p
            .evaluate(
                "axe3.v1.formation",
                &situation(&p, "2021-01-24", &facts, 10_000),
            )
            .unwrap();
        assert!(!ev.eligible);
        assert_eq!(codes(&ev), [NOT_IN_FORCE_REASON]);
        assert!(ev.reasons[0].message.contains("25/01/2021"));
        assert_eq!(ev.amount, Some(Cents::ZERO));
        let ev = p
            .evaluate(
                "axe3.v1.formation",
                &situation(&p, "2021-01-25", &facts, 10_000),
            )
            .unwrap();
        assert!(ev.eligible, "{:?}", ev.reasons);
        // A later value does not make the earlier one "not in force".
        let ev = p
            .evaluate(
                "axe1",
                &situation(&p, "2021-06-27", &[("type_demandeur", "commune")], 1),
            )
            .unwrap();
        assert_eq!(codes(&ev), ["hors_periode_depot"]);
    }
}

#[cfg(test)]
mod evaluator_tests {
    use super::*;

    /// Situations of every kind, drawn in a fixed pseudo-random order; runs of several share a
    /// territory and a date, as in a sweep.
    fn situations() -> Vec<Situation> {
        let kinds = [
            "commune",
            "epci",
            "departement",
            "region",
            "groupement",
            "autre",
        ];
        let natures = ["CC", "CA", "METRO", "aucune"];
        let regions = [
            None,
            Some("11"),
            Some("76"),
            Some("93"),
            Some("84"),
            Some("01"),
        ];
        let dates = ["2021-01-10", "2021-03-15", "2021-06-01", "2022-09-01"];
        let mut seed = 7u64;
        let mut pick = |n: usize| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            usize::try_from(seed >> 33).unwrap() % n
        };
        let mut out = Vec::new();
        for run in 0..120 {
            let date = NaiveDate::parse_from_str(dates[run % dates.len()], "%Y-%m-%d").unwrap();
            let region = regions[pick(regions.len())];
            for _ in 0..4 {
                let mut s = Situation {
                    date: Some(date),
                    ..Default::default()
                };
                let mut fact = |name: &str, v: Value| {
                    s.facts.insert(name.to_string(), v);
                };
                if pick(6) > 0 {
                    fact("type_demandeur", Value::text(kinds[pick(kinds.len())]));
                }
                if pick(5) > 0 {
                    let population = [300, 3_000, 60_000, 600_000][pick(4)];
                    fact("population", Value::Nombre(population.into()));
                }
                if let Some(r) = region {
                    fact("region", Value::text(r));
                }
                if pick(3) > 0 {
                    fact("couvre_departement", Value::Booleen(pick(2) == 0));
                }
                fact("nature_epci", Value::text(natures[pick(natures.len())]));
                if pick(2) == 0 {
                    fact("date_fin", Value::Date(date + chrono::Days::new(400)));
                }
                for name in [
                    "labo",
                    "maturite_avancee",
                    "deja_commence",
                    "portage_decisionnel",
                ] {
                    if pick(3) == 0 {
                        fact(name, Value::Booleen(pick(2) == 0));
                    }
                }
                if pick(3) == 0 {
                    fact("communes_rattachees", Value::Nombre(12.into()));
                }
                if pick(4) == 0 {
                    fact("financements_franceconnect", Value::Nombre(1.into()));
                }
                s.expenses = match pick(4) {
                    0 => Vec::new(),
                    1 => vec![("prestation".into(), Cents::from_euros(40_000))],
                    2 => vec![("formation".into(), Cents::new(1_234_567))],
                    _ => vec![
                        ("materiel".into(), Cents::from_euros(10_000)),
                        ("logiciel-hors-ue".into(), Cents::from_euros(30_000)),
                        ("prestation".into(), Cents::from_euros(5_000)),
                    ],
                };
                out.push(s);
            }
        }
        out
    }

    #[test]
    fn an_evaluator_answers_as_independent_evaluations() {
        let p = crate::itn7().unwrap();
        let rules = &p.rules;
        let n = rules.national.measures.len();
        let prepared: Vec<Prepared> = situations()
            .iter()
            .map(|s| rules.prepare(s).unwrap())
            .collect();
        // Without trace, with trace, and both mixed within a situation.
        for pattern in 0..3 {
            let trace = |i: usize| match pattern {
                0 => false,
                1 => true,
                _ => i.is_multiple_of(3),
            };
            let alone: Vec<Vec<String>> = prepared
                .iter()
                .map(|s| {
                    (0..n)
                        .map(|i| format!("{:?}", rules.evaluate_index(i, s, trace(i))))
                        .collect()
                })
                .collect();
            let mut forward = rules.evaluator();
            let mut backward = rules.evaluator();
            for (s, expected) in prepared.iter().zip(&alone) {
                for (i, e) in expected.iter().enumerate() {
                    let got = format!("{:?}", forward.evaluate_index(i, s, trace(i)));
                    assert_eq!(&got, e, "measure {i}, pattern {pattern}");
                }
                for (i, e) in expected.iter().enumerate().rev() {
                    let got = format!("{:?}", backward.evaluate_index(i, s, trace(i)));
                    assert_eq!(&got, e, "measure {i} (backwards), pattern {pattern}");
                }
            }
        }
    }

    #[test]
    fn an_evaluator_follows_situations_that_change_little_by_little() {
        // Rule values are kept from one situation to the next unless a fact they read, or the
        // expenses, changed: situations that change one thing at a time, and come back, must
        // get the answers of independent evaluations.
        let p = crate::itn7().unwrap();
        let rules = &p.rules;
        let n = rules.national.measures.len();
        let changes: Vec<fn(&mut Situation)> = vec![
            |s| {
                s.facts
                    .insert("population".into(), Value::Nombre(14_999.into()));
            },
            |s| {
                s.facts
                    .insert("population".into(), Value::Nombre(Decimal::new(149_990, 1)));
            },
            |s| {
                s.facts.remove("population");
            },
            |s| {
                s.facts.insert("type_demandeur".into(), Value::text("epci"));
            },
            |s| {
                s.facts.insert("labo".into(), Value::Booleen(false));
            },
            |s| {
                s.facts.remove("date_fin");
            },
            |s| {
                s.facts
                    .insert("communes_rattachees".into(), Value::Nombre(31.into()));
            },
            |s| {
                s.facts.insert("deja_commence".into(), Value::Booleen(true));
            },
            |s| {
                s.expenses = vec![("prestation".into(), Cents::from_euros(333_334))];
            },
            |s| {
                // More cost: a cap on the other lines (non-EU licences) moves.
                s.expenses
                    .push(("prestation".into(), Cents::from_euros(50_000)));
            },
            |s| {
                s.expenses.clear();
            },
        ];
        let mut evaluator = rules.evaluator();
        let mut compared = 0;
        for (k, base) in situations().into_iter().enumerate().step_by(5) {
            // The situation, each change and the situation again after it, then every change
            // piled up.
            let mut chain = vec![base.clone()];
            for change in &changes {
                let mut s = base.clone();
                change(&mut s);
                chain.push(s);
                chain.push(base.clone());
            }
            let mut piled = base.clone();
            for change in &changes {
                change(&mut piled);
                chain.push(piled.clone());
            }
            for (j, s) in chain.iter().enumerate() {
                let s = rules.prepare(s).unwrap();
                for i in 0..n {
                    let alone = rules.evaluate_index(i, &s, false);
                    let expected = alone.as_ref().map(evaluation_summary).map_err(Clone::clone);
                    let got = if (i + j + k) % 3 == 0 {
                        // Worded: every sentence alike too.
                        let got = evaluator.evaluate_index(i, &s, false);
                        assert_eq!(
                            format!("{got:?}"),
                            format!("{alone:?}"),
                            "situation {k}, step {j}, measure {i}"
                        );
                        got.map(|e| evaluation_summary(&e))
                    } else {
                        evaluator.outcome_index(i, &s).map(|o| outcome_summary(&o))
                    };
                    assert_eq!(got, expected, "situation {k}, step {j}, measure {i}");
                    compared += 1;
                }
            }
        }
        assert!(compared > 10_000, "{compared}");
    }

    #[test]
    fn the_verification_switch_panics_when_a_kept_value_is_wrong() {
        let p = crate::itn7().unwrap();
        let rules = &p.rules;
        let mut s = Situation {
            date: NaiveDate::from_ymd_opt(2021, 6, 1),
            ..Default::default()
        };
        s.facts
            .insert("type_demandeur".into(), Value::text("commune"));
        s.facts
            .insert("population".into(), Value::Nombre(3_000.into()));
        s.facts.insert("region".into(), Value::text("84"));
        let s = rules.prepare(&s).unwrap();
        let i = rules.measure_index("axe1").unwrap();
        // Every condition value kept by the evaluator turned over: the next answer for the same
        // situation reads them again.
        let flip = |ev: &mut Evaluator<'_>| {
            for m in &mut ev.scratch.memo {
                if let Value::Booleen(b) = m.value {
                    m.value = Value::Booleen(!b);
                }
            }
        };
        let mut unchecked = rules.evaluator().with_verification(Verification::Off);
        let right = unchecked.outcome_index(i, &s).map(|o| outcome_summary(&o));
        flip(&mut unchecked);
        let wrong = unchecked.outcome_index(i, &s).map(|o| outcome_summary(&o));
        assert_ne!(
            wrong, right,
            "the values turned over must change the answer"
        );

        let mut checked = rules
            .evaluator()
            .with_verification(Verification::AgainstScratch);
        assert_eq!(
            checked.outcome_index(i, &s).map(|o| outcome_summary(&o)),
            right
        );
        flip(&mut checked);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            checked.outcome_index(i, &s).map(|o| outcome_summary(&o))
        }));
        let said = |r: std::thread::Result<Result<String, EvalError>>| match r {
            Err(p) => p.downcast::<String>().map(|m| *m).unwrap_or_default(),
            Ok(answer) => format!("no panic: {answer:?}"),
        };
        let m = said(outcome);
        assert!(m.starts_with("incremental outcome differs"), "{m}");
        flip(&mut checked);
        let worded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            flip(&mut checked);
            checked
                .evaluate_index(i, &s, false)
                .map(|e| evaluation_summary(&e))
        }));
        let m = said(worded);
        assert!(m.starts_with("incremental evaluation differs"), "{m}");
    }

    #[test]
    fn an_outcome_says_what_the_evaluation_says() {
        let p = crate::itn7().unwrap();
        let rules = &p.rules;
        let n = rules.national.measures.len();
        let mut outcomes = rules.evaluator();
        let mut mixed = rules.evaluator();
        let (mut eligible, mut ineligible, mut errors) = (0, 0, 0);
        for s in situations() {
            let s = rules.prepare(&s).unwrap();
            for i in 0..n {
                let expected = rules
                    .evaluate_index(i, &s, false)
                    .map(|e| evaluation_summary(&e));
                match &expected {
                    Ok(e) if e.contains("eligible=true") => eligible += 1,
                    Ok(_) => ineligible += 1,
                    Err(_) => errors += 1,
                }
                let got = outcomes.outcome_index(i, &s).map(|o| outcome_summary(&o));
                assert_eq!(got, expected, "measure {i}");
                // Outcomes and evaluations through one evaluator do not disturb each other.
                let got = if i % 2 == 0 {
                    mixed.outcome_index(i, &s).map(|o| outcome_summary(&o))
                } else {
                    mixed
                        .evaluate_index(i, &s, i % 3 == 0)
                        .map(|e| evaluation_summary(&e))
                };
                assert_eq!(got, expected, "measure {i}, mixed");
            }
        }
        // The situations reach every kind of answer.
        assert!(
            eligible > 100 && ineligible > 100 && errors > 0,
            "{eligible} {ineligible} {errors}"
        );
    }

    #[test]
    fn small_decimals_are_computed_as_rust_decimal_does() {
        let mut values = Vec::new();
        for m in [
            0i64,
            1,
            5,
            9,
            10,
            50,
            99,
            100,
            12_345,
            4_000_000,
            1 << 40,
            (1 << 62) - 1,
        ] {
            for scale in [0, 1, 2, 3, 7, 14, 20, 28] {
                values.push(Decimal::new(m, scale));
                values.push(Decimal::new(-m, scale));
            }
        }
        let (mut fast, mut all) = (0, 0);
        for &x in &values {
            for &y in &values {
                for op in [BinOp::Add, BinOp::Sub, BinOp::Mul] {
                    all += 1;
                    let Some(got) = small_decimal(op, x, y) else {
                        continue;
                    };
                    fast += 1;
                    let want = match op {
                        BinOp::Add => x.checked_add(y),
                        BinOp::Sub => x.checked_sub(y),
                        _ => x.checked_mul(y),
                    }
                    .unwrap();
                    assert_eq!(
                        got.serialize(),
                        want.serialize(),
                        "{x} {op:?} {y}: {got} / {want}"
                    );
                }
            }
        }
        assert!(fast > 5_000, "{fast} of {all}");
    }

    #[test]
    fn rounding_in_integers_matches_decimal_rounding() {
        let reference = |d: Decimal, r: Rounding| {
            let hundred = Decimal::ONE_HUNDRED;
            match r {
                Rounding::CentDown => d.floor(),
                Rounding::EuroDown => (d / hundred).floor() * hundred,
                Rounding::EuroNearest => {
                    (d / hundred).round_dp_with_strategy(
                        0,
                        rust_decimal::RoundingStrategy::MidpointAwayFromZero,
                    ) * hundred
                }
            }
        };
        let mut values = Vec::new();
        for m in [
            0i64,
            1,
            49,
            50,
            51,
            99,
            100,
            149,
            150,
            1_999_950,
            2_000_000,
            123_456_789,
        ] {
            for scale in [0, 1, 2, 3, 7, 26, 27, 28] {
                values.push(Decimal::new(m, scale));
                values.push(Decimal::new(-m, scale));
            }
        }
        values.push(Decimal::MAX);
        values.push(Decimal::new(4_000_000, 0) * Decimal::new(5, 1));
        values.push(Decimal::new(3_333_333, 0) * Decimal::new(8, 1));
        for d in values {
            for r in [
                Rounding::CentDown,
                Rounding::EuroDown,
                Rounding::EuroNearest,
            ] {
                let (got, want) = (round(d, r), reference(d, r));
                assert_eq!(got, want, "{d} {r:?}");
                assert_eq!(got.scale(), want.scale(), "{d} {r:?}");
                assert_eq!(got.to_string(), want.to_string(), "{d} {r:?}");
            }
        }
    }

    #[test]
    fn an_unknown_fact_is_still_refused() {
        let p = crate::itn7().unwrap();
        let mut s = Situation {
            date: NaiveDate::from_ymd_opt(2021, 6, 1),
            ..Default::default()
        };
        s.facts.insert("aaa".into(), Value::Booleen(true));
        s.facts
            .insert("population".into(), Value::Nombre(10.into()));
        s.facts.insert("zzz".into(), Value::Booleen(true));
        assert!(matches!(
            p.rules.prepare(&s),
            Err(EvalError::UnknownFact(name, _)) if name == "aaa"
        ));
        s.facts.remove("aaa");
        assert!(matches!(
            p.rules.prepare(&s),
            Err(EvalError::UnknownFact(name, _)) if name == "zzz"
        ));
        s.facts.remove("zzz");
        assert!(p.rules.prepare(&s).is_ok());
    }
}
