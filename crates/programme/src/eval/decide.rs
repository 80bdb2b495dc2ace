//! The decision on one measure: conditions, expense base, rates, amounts and the money
//! invariants, one path for both kinds of answer.

use super::*;

/// What [`Ev::decide`] decided; the rest (reasons, missing facts, expense lines) is in the
/// scratch.
pub(super) struct Decided {
    pub(super) eligible: bool,
    pub(super) missing_expenses: bool,
    pub(super) base: Option<Cents>,
    pub(super) rate: Option<Decimal>,
    pub(super) rate_max: Option<Decimal>,
    pub(super) amount: Option<Cents>,
    pub(super) amount_max: Option<Cents>,
}

impl<'a> Ev<'a> {
    pub(super) fn step(&mut self, step: Step) {
        if let Some(t) = &mut self.trace {
            t.push(step);
        }
    }

    pub(super) fn note(&mut self, n: String) {
        if self.trace.is_some() {
            self.s.notes.push(n);
        }
    }

    /// Decides one measure: eligibility, reasons, expense base, rates and amounts. Its
    /// reasons, missing and presumed facts and expense lines are left in the scratch, for
    /// [`Ev::evaluation`] to word or for an [`Outcome`] to show as they are.
    pub(super) fn decide(&mut self, m: &MeasureRules) -> Result<Decided, Box<EvalError>> {
        if let Some((_, message)) = &m.exclusion {
            self.s.reasons.push(ReasonRef::Exclusion);
            if self.trace.is_some() {
                self.step(Step {
                    kind: StepKind::Condition,
                    name: "exclusion".into(),
                    title: format!("Mesure ouverte en {}", self.set.name),
                    display: "non".into(),
                    raw: Value::Booleen(false),
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
        if m.whole_cost && self.answer == Answer::Outcome {
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
                        raw: Value::Montant(kept),
                        formula: None,
                        detail: Some(detail),
                        source: None,
                        since: None,
                    });
                }
                if self.answer == Answer::Worded {
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
                    raw: v.clone(),
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
                            raw: Value::Montant(r),
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
                        raw: Value::Montant(mx),
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
                    raw: Value::Montant(Decimal::ZERO),
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

    pub(super) fn missing_expenses(&mut self) {
        // Expenses are not a fact of their own: report them under a synthetic name the
        // doors know (`depenses`).
        if let Some(t) = &mut self.trace {
            t.push(Step {
                kind: StepKind::Fait,
                name: "depenses".into(),
                title: "Dépenses du projet".into(),
                display: "non renseignées".into(),
                raw: Value::Absent,
                formula: None,
                detail: Some("indiquez le coût du projet ou ses lignes de dépenses".into()),
                source: None,
                since: None,
            });
        }
    }
}
