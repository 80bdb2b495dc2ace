//! Preparation: a situation checked against the declared facts and categories, and indexed;
//! the entry points of one evaluation.

use super::*;

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
        trace: impl Into<Trace>,
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
        trace: impl Into<Trace>,
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
