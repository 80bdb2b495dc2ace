//! Wording: an answer in French (reasons, missing facts, presumed facts, expense lines) and
//! the `{nom}` of condition messages.

use super::*;

/// Why an expense line is not retained in full, worded.
pub(super) fn motif_message(regime: &[ExpenseRule], why: Option<Motif>) -> Option<String> {
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

/// Appends a value as `Display` writes it; a date without going through a format string.
pub(super) fn push_value(out: &mut String, v: &Value) {
    use std::fmt::Write;
    match v {
        Value::Date(d) => crate::value::push_french_date(out, *d),
        _ => {
            let _ = write!(out, "{v}");
        }
    }
}

impl<'a> Ev<'a> {
    /// Words what [`Ev::decide`] decided.
    pub(super) fn evaluation(mut self, m: &MeasureRules, d: Decided) -> Evaluation {
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

    /// A condition's message, its `{nom}` (resolved at load time) replaced by their values, as
    /// [`Ev::interpolate`] would.
    pub(super) fn condition_message(
        &mut self,
        ci: usize,
    ) -> Result<Option<String>, Box<EvalError>> {
        let set = self.set;
        let Some(pieces) = set.messages.get(ci) else {
            let message = self.interpolate(&set.conditions[ci].message)?;
            return Ok(Some(message).filter(|_| self.answer == Answer::Worded));
        };
        if self.answer == Answer::Outcome {
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
    pub(super) fn read_pieces(
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
    pub(super) fn interpolate(&mut self, msg: &str) -> Result<String, Box<EvalError>> {
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
}
