//! Evaluation of one measure for one applicant at one date: eligibility with every reason,
//! the eligible expense base, the rates, the amounts, the facts still missing, and a trace of
//! every step (rule, inputs, value, parameter version and source).

use crate::expr::{BinOp, Bound, Rounding};
use crate::rules::{
    cmp_values, Builtin, Dependence, ExpenseRule, MeasureRules, Node, Piece, RuleSet, Rules,
};
use crate::value::{french_money, french_rate, Type, Value};
use chrono::NaiveDate;
use guichet_domain::dossier::ProposalBounds;
use guichet_domain::{Cents, Rate};
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
    /// The value for machines (integer cents, decimal strings, booleans, dates): serialised
    /// by [`Value::to_json`], only when the explanation is sent (the simulator's page shows
    /// the sentences alone).
    #[serde(rename = "valeur_brute", serialize_with = "raw_json")]
    pub raw: Value,
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

fn raw_json<S: serde::Serializer>(v: &Value, s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&v.to_json(), s)
}

impl Step {
    /// The line in plain French.
    pub fn sentence(&self) -> String {
        let mut s = String::new();
        self.write_sentence(&mut s);
        s
    }

    /// Appends [`Step::sentence`] to `out`, without a buffer of its own (the simulator writes
    /// hundreds of them per page).
    pub fn write_sentence(&self, out: &mut String) {
        let extra = self.formula.as_ref().map_or(0, |f| f.len() + 13)
            + self.detail.as_ref().map_or(0, |d| d.len() + 3)
            + self.source.as_ref().map_or(0, |s| s.len() + 48);
        out.reserve(self.title.len() + self.display.len() + 3 + extra);
        out.push_str(&self.title);
        out.push_str(" : ");
        out.push_str(&self.display);
        if let Some(f) = &self.formula {
            out.push_str(" (formule : ");
            out.push_str(f);
            out.push(')');
        }
        if let Some(d) = &self.detail {
            out.push_str(" ; ");
            out.push_str(d);
        }
        if let Some(src) = &self.source {
            if let Some(since) = self.since {
                out.push_str(" — valeur en vigueur depuis le ");
                crate::value::push_french_date(out, since);
                out.push(',');
            } else {
                out.push_str(" —");
            }
            out.push_str(" source ");
            out.push_str(src);
        }
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

impl Evaluation {
    /// The bounds an instructor's proposal is checked against (`guichet_domain::dossier`),
    /// from an eligible evaluation with a base, a rate and an amount; the maximum rate and
    /// amount default to the normal ones. `None` where only an unfavourable proposal can be
    /// made: a request not (or not yet) eligible, or a measure reporting no amount (Axe 1,
    /// the regional CSIRT support), or a rate that is not a whole number of basis points.
    pub fn proposal_bounds(&self) -> Option<ProposalBounds> {
        if !self.eligible {
            return None;
        }
        let (base, amount) = (self.base?, self.amount?);
        let rate = rate_of(self.rate?)?;
        let max_rate = match self.rate_max {
            Some(r) => rate_of(r)?,
            None => rate,
        };
        let max_amount = self.amount_max.unwrap_or(amount);
        ProposalBounds::new(base, amount, max_amount, rate, max_rate).ok()
    }
}

/// An engine rate (a decimal fraction: `0.8`) as the domain's [`Rate`] (basis points), when it
/// is exactly one between 0 % and 100 %.
pub fn rate_of(fraction: Decimal) -> Option<Rate> {
    let bp = fraction.checked_mul(Decimal::from(10_000))?;
    if !bp.fract().is_zero() {
        return None;
    }
    Rate::from_basis_points(bp.to_u32()?).ok()
}

/// Whether an evaluation records its explanation: every step (fact, parameter with its
/// version and source, rule, condition, expense line) in [`Evaluation::trace`]. `true` and
/// `false` convert to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trace {
    /// No explanation: the sweep path, where rule values are kept from one measure to the next.
    Without,
    /// Every step shown; nothing is carried over from another measure.
    With,
}

impl From<bool> for Trace {
    fn from(with: bool) -> Trace {
        if with {
            Trace::With
        } else {
            Trace::Without
        }
    }
}

/// Which answer an evaluation gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// An [`Evaluation`], in French.
    Worded,
    /// An [`Outcome`], not worded.
    Outcome,
}

/// The name under which missing expenses are reported (they are not a fact of their own).
pub const EXPENSES_FACT: &str = "depenses";

/// Code of the reason given when facts are missing.
pub const MISSING_REASON: &str = "donnees_manquantes";

/// Code of the reason given when the filing date precedes the first value of a parameter the
/// measure needs: its rules are not in force yet at that date.
pub const NOT_IN_FORCE_REASON: &str = "regles_non_en_vigueur";

struct Ev<'a> {
    rules: &'a Rules,
    set: &'a RuleSet,
    sit: &'a Prepared,
    s: &'a mut Scratch,
    trace: Option<Vec<Step>>,
    answer: Answer,
    base: Option<Value>,
    rate: Option<Value>,
    rate_max: Option<Value>,
}

/// Errors are rare: boxed, they keep the result of every step small.
type R = Result<Value, Box<EvalError>>;

static ABSENT: Value = Value::Absent;
static NON_APPLICABLE: Value = Value::NonApplicable;

mod answer;
mod decide;
mod evaluator;
mod interpret;
mod memo;
mod numeric;
mod prepare;
#[cfg(test)]
mod tests;
mod wording;

use answer::*;
pub use answer::{evaluation_summary, outcome_summary, Outcome};
use decide::*;
pub use evaluator::{Evaluator, Verification};
use memo::*;
use numeric::*;
use wording::*;
