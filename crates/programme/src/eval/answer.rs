//! The answers: an `Outcome` (not worded, for sweeps) and what both kinds of answer say
//! alike, in one line (the verification compares them).

use super::*;

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
    pub(super) rules: &'e Rules,
    pub(super) set: &'e RuleSet,
    pub(super) measure: &'e MeasureRules,
    pub(super) reasons: &'e [ReasonRef],
    pub(super) missing_expenses: bool,
    pub(super) missing: &'e [usize],
    pub(super) assumed: &'e [usize],
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
pub(super) enum ReasonRef {
    /// The filing date precedes the rules (the first date a parameter read takes effect).
    NotInForce(NaiveDate),
    /// The measure is not open in the territory.
    Exclusion,
    /// A condition, by index in the rule set.
    Condition(usize),
    /// Facts are missing.
    Missing,
}
