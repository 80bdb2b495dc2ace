//! What an evaluator keeps between evaluations: rule values with their epochs, what computing
//! them did besides (arenas), the situation they were computed for.

use super::*;

/// The same fact, exactly (a decimal written with another scale is another value).
pub(super) fn same_fact(a: &Option<Value>, b: &Option<Value>) -> bool {
    match (a, b) {
        (Some(Value::Montant(x)), Some(Value::Montant(y)))
        | (Some(Value::Nombre(x)), Some(Value::Nombre(y))) => exactly(x, y),
        (a, b) => a == b,
    }
}

/// The same decimal, written with the same scale too (`2.50` is not `2.5` here).
pub(super) fn exactly(a: &Decimal, b: &Decimal) -> bool {
    a.serialize() == b.serialize()
}

/// A measure's base, rate and maximum rate (`assiette`, `taux`, `taux_max`), exactly: the
/// kind of each value and its decimal's bytes.
pub(super) type MeasureInputs = [InputKey; 3];

/// One of a measure's base and rates, exactly: its kind and, for a decimal, its bytes (the same
/// number written with another scale is another key). Laid out as a tag byte and 16 bytes,
/// compared as such.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct InputKey {
    kind: InputKind,
    bytes: [u8; 16],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum InputKind {
    None,
    Montant,
    Nombre,
    NonApplicable,
    Absent,
}

impl InputKey {
    const fn of(kind: InputKind) -> InputKey {
        InputKey {
            kind,
            bytes: [0; 16],
        }
    }
}

/// A territory (index of its variant; `None`: national) and a date: what the rules that read
/// only parameters and the filing date depend on.
pub(super) type DateKey = (Option<usize>, NaiveDate);

/// The working buffers of an evaluation, kept by an [`Evaluator`] between evaluations. Rule
/// values and marks are valid while their stamp equals the current one: starting afresh is a
/// counter to increment, not buffers to clear.
#[derive(Default)]
pub(super) struct Scratch {
    /// Rule values (see [`Memo`]). A rule's value is valid while its stamp is the current
    /// epoch of what the rule depends on ([`Dependence`]): a new measure renews the epoch of
    /// the rules that depend on the measure, a new situation that of the situation's too, a
    /// new territory or date every epoch. Epochs are drawn from one counter (64 bits: it
    /// never wraps), so a stamp is never mistaken for a later epoch.
    pub(super) memo: Vec<Memo>,
    pub(super) memo_epochs: [u64; 3],
    pub(super) last_epoch: u64,
    /// The bases and rates the rules that depend on the measure were computed with since the
    /// expenses last changed, with the epoch of each.
    pub(super) measure_keys: Vec<(MeasureInputs, u64)>,
    /// The facts and expenses of the situation the rule values were computed for.
    pub(super) last_facts: Vec<Option<Value>>,
    pub(super) last_by_category: Vec<Decimal>,
    pub(super) last_total: Decimal,
    /// What computing the rules did besides, for those of the situation and for those of the
    /// date (indexed by [`ArenaKind`]).
    pub(super) arenas: [Arena; 2],
    /// Facts and parameters already read (and shown) in this measure: stamped `seen_epoch`.
    pub(super) fact_seen: Vec<u32>,
    pub(super) param_seen: Vec<u32>,
    pub(super) seen_epoch: u32,
    /// Parameters read at a date before their first value.
    pub(super) not_in_force: Vec<usize>,
    /// Missing facts, once per reading (deduplicated at the end); a branch that did not decide
    /// a `ou` / `et` / `une de ces conditions` / `toutes ces conditions` takes its own back out.
    pub(super) missing: Vec<usize>,
    pub(super) assumed: Vec<usize>,
    /// Every presumed fact and parameter not in force read, in order (for [`Memo`]).
    pub(super) effects: Vec<Effect>,
    pub(super) notes: Vec<String>,
    /// Expense base, by category: amount retained and left to match lines against, and why a
    /// category is excluded or capped.
    pub(super) remaining: Vec<Decimal>,
    pub(super) motif: Vec<Option<Motif>>,
    /// Condition messages made of text and parameters, by condition: the same for every
    /// situation of one territory (variant index) at one date.
    pub(super) messages: Vec<Option<(DateKey, String)>>,
    /// By condition: the territory and date at which reading its message marks nothing.
    pub(super) quiet: Vec<Option<DateKey>>,
    /// Default values of facts as shown in the answer.
    pub(super) shown_defaults: Vec<Option<String>>,
    /// The answer being decided: its reasons in order, the wording of those that are
    /// conditions (only when the answer is worded), and each expense line's amount retained
    /// with why it is not retained in full.
    pub(super) reasons: Vec<ReasonRef>,
    pub(super) wording: Vec<String>,
    pub(super) kept: Vec<(Decimal, Option<Motif>)>,
}

thread_local! {
    pub(super) static SCRATCH: Cell<Scratch> = Cell::new(Scratch::default());
}

impl Scratch {
    /// Forgets what belongs to one programme's rules (the buffers stay allocated).
    pub(super) fn forget(&mut self) {
        self.messages.clear();
        self.quiet.clear();
        self.shown_defaults.clear();
    }

    pub(super) fn default_shown(&mut self, facts: &[crate::rules::FactDef], i: usize) -> String {
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
    pub(super) fn new_date(&mut self, rules: usize) {
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
    pub(super) fn measure_inputs(&mut self, inputs: [&Option<Value>; 3]) {
        let mut key: MeasureInputs = [InputKey::of(InputKind::None); 3];
        for (k, v) in key.iter_mut().zip(inputs) {
            *k = match v {
                None => InputKey::of(InputKind::None),
                Some(Value::Montant(d)) => InputKey {
                    kind: InputKind::Montant,
                    bytes: d.serialize(),
                },
                Some(Value::Nombre(d)) => InputKey {
                    kind: InputKind::Nombre,
                    bytes: d.serialize(),
                },
                Some(Value::NonApplicable) => InputKey::of(InputKind::NonApplicable),
                Some(Value::Absent) => InputKey::of(InputKind::Absent),
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
    pub(super) fn next_situation(&mut self, set: &RuleSet, sit: &Prepared) {
        const ARENA_BOUND: usize = 1 << 14;
        let arena = &self.arenas[ArenaKind::Situation as usize];
        if self.last_facts.len() != sit.facts.len()
            || arena.missing.len() + arena.effects.len() > ARENA_BOUND
        {
            self.renew(Dependence::Situation);
            self.arenas[ArenaKind::Situation as usize].clear();
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
    pub(super) fn record_situation(&mut self, sit: &Prepared) {
        self.last_facts.clone_from(&sit.facts);
        self.last_by_category.clone_from(&sit.by_category);
        self.last_total = sit.total;
    }

    /// Forgets the values of the rules that depend on `d`.
    pub(super) fn renew(&mut self, d: Dependence) {
        self.last_epoch += 1;
        self.memo_epochs[d as usize] = self.last_epoch;
    }

    #[inline]
    pub(super) fn new_measure(&mut self, facts: usize, params: usize) {
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
pub(super) enum Motif {
    Excluded(usize),
    Capped(usize),
}

/// A rule's value, with what computing it did besides (ranges of one of the [`Arena`]s): the
/// facts it found missing, and the presumed facts and parameters not in force it read. They
/// count again wherever the rule is used.
#[derive(Debug, Clone)]
pub(super) struct Memo {
    /// The epoch the value was computed in (see [`Scratch::memo`]); 0: none.
    pub(super) stamp: u64,
    pub(super) value: Value,
    pub(super) arena: ArenaKind,
    pub(super) missing: (usize, usize),
    pub(super) effects: (usize, usize),
}

impl Default for Memo {
    fn default() -> Self {
        Memo {
            stamp: 0,
            value: Value::Absent,
            arena: ArenaKind::Situation,
            missing: (0, 0),
            effects: (0, 0),
        }
    }
}

/// Which arena keeps what computing a rule did besides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ArenaKind {
    /// The rules that depend on the situation (or the measure), kept for one situation.
    Situation = 0,
    /// The rules that depend on the date and the territory only, kept while they stay.
    Date = 1,
}

#[derive(Debug, Default)]
pub(super) struct Arena {
    pub(super) missing: Vec<usize>,
    pub(super) effects: Vec<Effect>,
}

impl Arena {
    pub(super) fn clear(&mut self) {
        self.missing.clear();
        self.effects.clear();
    }
}

/// A reading that shows in the answer.
#[derive(Debug, Clone, Copy)]
pub(super) enum Effect {
    /// A fact the situation does not give, taken at its default value.
    Presumed(usize),
    /// A parameter read at a date before its first value.
    NotInForce(usize),
}
