//! The evaluator: measure after measure, situation after situation, it keeps what it may of
//! the previous evaluations; and the switch that checks it against independent evaluations.

use super::*;

/// Evaluates measures one after another, with the same answers as [`Rules::evaluate_index`],
/// faster: its working buffers are kept from one evaluation to the next and, without trace,
/// a rule is computed once for all the measures of a situation when it does not depend on the
/// measure, and once for all the situations of a territory at a date when it depends on
/// nothing else (its value, with the facts it found missing or presumed and the parameters not
/// yet in force it read, is replayed wherever it is used).
pub struct Evaluator<'r> {
    pub(super) rules: &'r Rules,
    pub(super) scratch: Scratch,
    /// The situation ([`Prepared`]) whose rule values the memo holds.
    pub(super) memo_for: Option<u64>,
    /// Its territory and date.
    pub(super) date_for: Option<DateKey>,
    pub(super) verification: Verification,
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
pub(super) fn set_for<'r>(rules: &'r Rules, situation: &Prepared) -> &'r RuleSet {
    // `prepare` found the variant of the territory, if it has one.
    match situation.variant.and_then(|i| rules.variants.get(i)) {
        Some(set) => set,
        None => &rules.national,
    }
}

impl<'r> Evaluator<'r> {
    pub fn evaluate(
        &mut self,
        measure: &str,
        situation: &Prepared,
        trace: impl Into<Trace>,
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
        trace: impl Into<Trace>,
    ) -> Result<Evaluation, EvalError> {
        let trace = trace.into();
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

    pub(super) fn evaluate_incrementally(
        &mut self,
        idx: usize,
        situation: &Prepared,
        trace: Trace,
    ) -> Result<Evaluation, EvalError> {
        let (mut ev, m) = self.begin(idx, situation, trace, Answer::Worded)?;
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
        // The sweep's path: the outcome built where the caller gets it, not copied out.
        if self.verification == Verification::Off {
            return self.outcome_incrementally(idx, situation);
        }
        self.outcome_verified(idx, situation)
    }

    #[inline(never)]
    fn outcome_verified(
        &mut self,
        idx: usize,
        situation: &Prepared,
    ) -> Result<Outcome<'_>, EvalError> {
        let want = self
            .rules
            .evaluate_index(idx, situation, false)
            .map(|e| evaluation_summary(&e));
        let outcome = self.outcome_incrementally(idx, situation);
        let got = outcome.as_ref().map(outcome_summary).map_err(Clone::clone);
        assert!(
            got == want,
            "incremental outcome differs from an independent evaluation (measure {idx}):\n  incremental: {got:?}\n  independent: {want:?}"
        );
        outcome
    }

    #[inline(always)]
    pub(super) fn outcome_incrementally(
        &mut self,
        idx: usize,
        situation: &Prepared,
    ) -> Result<Outcome<'_>, EvalError> {
        let rules = self.rules;
        let (mut ev, m) = self.begin(idx, situation, Trace::Without, Answer::Outcome)?;
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
    pub(super) fn begin<'e>(
        &'e mut self,
        idx: usize,
        situation: &'e Prepared,
        trace: Trace,
        answer: Answer,
    ) -> Result<(Ev<'e>, &'e MeasureRules), EvalError> {
        let explained = trace == Trace::With;
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
        if explained || self.date_for != Some(date) || s.memo.len() != set.rules.len() {
            s.new_date(set.rules.len());
            s.record_situation(situation);
        } else if self.memo_for != Some(situation.id) {
            s.next_situation(set, situation);
        }
        s.renew(Dependence::Measure);
        (self.memo_for, self.date_for) = if explained {
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
            trace: explained.then(Vec::new),
            // An explanation is worded.
            answer: if explained { Answer::Worded } else { answer },
            base: None,
            rate: None,
            rate_max: None,
        };
        Ok((ev, &set.measures[idx]))
    }
}
