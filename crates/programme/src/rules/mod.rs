//! The rules files of a programme (`faits`, `parametres`, `regles`, `conditions`, `depenses`,
//! `mesures`, `variantes`) and their compilation: names resolved, territorial variants applied,
//! types checked, cycles refused. One compiled rule set per variant (the national default
//! first), so evaluation never looks a name up.

use crate::diag::{Diagnostic, SourceFile};
use crate::expr::{BinOp, Bound, Expr, ParseError, Rounding};
use crate::value::{Type, Value};
use crate::yaml::Yaml;
use chrono::NaiveDate;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

mod analysis;
mod compile;
mod grid;
mod messages;
mod raw;
mod types;

use analysis::*;
pub(crate) use analysis::{dependence, readers, Dependence, MAX_DEPTH};
pub(crate) use compile::{compile, Inputs};
use compile::{Pending, Shared};
pub(crate) use grid::cmp_values;
use grid::*;
pub(crate) use messages::{message_pieces, Piece};
pub(crate) use raw::*;
use types::*;

// ---------------------------------------------------------------------------------------------
// Compiled form
// ---------------------------------------------------------------------------------------------

/// A value of the situation the engine reads (`faits`).
#[derive(Debug, Clone)]
pub struct FactDef {
    pub name: String,
    pub title: String,
    pub ty: Type,
    pub question: Option<String>,
    pub default: Option<Value>,
    /// referentiel, base, demande or demandeur: who supplies it.
    pub origin: String,
    pub allowed: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct ParamVersion {
    pub since: NaiveDate,
    pub value: Value,
    pub source: String,
}

#[derive(Debug, Clone)]
pub struct ParamDef {
    pub name: String,
    pub title: String,
    /// As written in the file (`%`, `€`, `habitants`…), for display.
    pub unit: String,
    pub ty: Type,
    pub national: Vec<ParamVersion>,
    pub variants: BTreeMap<String, Vec<ParamVersion>>,
}

#[derive(Debug, Clone)]
pub struct Category {
    pub id: String,
    pub label: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builtin {
    CoutTotal,
    Depense(usize),
    Assiette,
    Taux,
    TauxMax,
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Const(Value),
    Rule(usize),
    Param(usize),
    Fact(usize),
    Builtin(Builtin),
    Bin(BinOp, Box<Node>, Box<Node>),
    Neg(Box<Node>),
    In(Box<Node>, Vec<Value>),
    All(Vec<Node>),
    Any(Vec<Node>),
    Min(Vec<Node>),
    Max(Vec<Node>),
    Sum(Vec<Node>),
    Product(Vec<Node>),
    Variations(Vec<(Node, Node)>, Option<Box<Node>>),
    Grid(Box<Node>, Vec<(Option<Bound>, Option<Bound>, Node)>),
    Modified {
        value: Box<Node>,
        applicable: Option<Box<Node>>,
        not_applicable: Option<Box<Node>>,
        cap: Option<Box<Node>>,
        floor: Option<Box<Node>>,
        rounding: Option<Rounding>,
    },
}

impl Node {
    /// Calls `f` on each node this one is made of (none for a leaf).
    pub(crate) fn for_each_child<'n>(&'n self, f: &mut dyn FnMut(&'n Node)) {
        match self {
            Node::Const(_) | Node::Rule(_) | Node::Param(_) | Node::Fact(_) | Node::Builtin(_) => {}
            Node::Bin(_, a, b) => {
                f(a);
                f(b);
            }
            Node::Neg(a) | Node::In(a, _) => f(a),
            Node::All(l)
            | Node::Any(l)
            | Node::Min(l)
            | Node::Max(l)
            | Node::Sum(l)
            | Node::Product(l) => l.iter().for_each(&mut *f),
            Node::Variations(branches, otherwise) => {
                for (c, v) in branches {
                    f(c);
                    f(v);
                }
                if let Some(o) = otherwise {
                    f(o);
                }
            }
            Node::Grid(base, tranches) => {
                f(base);
                for (_, _, v) in tranches {
                    f(v);
                }
            }
            Node::Modified {
                value,
                applicable,
                not_applicable,
                cap,
                floor,
                rounding: _,
            } => {
                f(value);
                for x in [applicable, not_applicable, cap, floor]
                    .into_iter()
                    .flatten()
                {
                    f(x);
                }
            }
        }
    }
}

impl Node {
    /// Calls `f` with each rule this node reads directly (not through those rules).
    pub(crate) fn for_each_rule(&self, f: &mut dyn FnMut(usize)) {
        match self {
            Node::Rule(j) => f(*j),
            _ => self.for_each_child(&mut |c| c.for_each_rule(f)),
        }
    }
}

/// A formula's structure, exactly: two formulas with the same structure (and type) compute the
/// same value, same decimal scale included, so they may share one. Each node is written as a
/// tag and its contents (decimals as their 16 bytes: `1.0` is not `1.00`, which a product would
/// show), lists with their length: equal keys are equal trees.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Structure(Vec<u8>);

impl Structure {
    pub(crate) fn of(ty: Type, node: &Node) -> Structure {
        let mut out = vec![ty as u8];
        node.write_structure(&mut out);
        Structure(out)
    }
}

fn write_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u64).to_le_bytes());
}

fn write_value(out: &mut Vec<u8>, v: &Value) {
    use chrono::Datelike;
    match v {
        Value::Nombre(d) => {
            out.push(0);
            out.extend_from_slice(&d.serialize());
        }
        Value::Montant(d) => {
            out.push(1);
            out.extend_from_slice(&d.serialize());
        }
        Value::Date(d) => {
            out.push(2);
            out.extend_from_slice(&d.num_days_from_ce().to_le_bytes());
        }
        Value::Booleen(b) => out.extend_from_slice(&[3, u8::from(*b)]),
        Value::Texte(t) => {
            out.push(4);
            write_len(out, t.len());
            out.extend_from_slice(t.as_bytes());
        }
        Value::NonApplicable => out.push(5),
        Value::Absent => out.push(6),
    }
}

fn write_bound(out: &mut Vec<u8>, b: &Option<Bound>) {
    match b {
        None => out.push(0),
        Some(b) => {
            out.push(if b.inclusive { 1 } else { 2 });
            write_value(out, &b.value);
        }
    }
}

impl Node {
    /// Writes the node's [`Structure`]: its kind, its own contents, then its children.
    fn write_structure(&self, out: &mut Vec<u8>) {
        let tag: u8 = match self {
            Node::Const(_) => 0,
            Node::Rule(_) => 1,
            Node::Param(_) => 2,
            Node::Fact(_) => 3,
            Node::Builtin(_) => 4,
            Node::Bin(..) => 5,
            Node::Neg(_) => 6,
            Node::In(..) => 7,
            Node::All(_) => 8,
            Node::Any(_) => 9,
            Node::Min(_) => 10,
            Node::Max(_) => 11,
            Node::Sum(_) => 12,
            Node::Product(_) => 13,
            Node::Variations(..) => 14,
            Node::Grid(..) => 15,
            Node::Modified { .. } => 16,
        };
        out.push(tag);
        match self {
            Node::Const(v) => write_value(out, v),
            Node::Rule(i) | Node::Param(i) | Node::Fact(i) => write_len(out, *i),
            Node::Builtin(b) => match b {
                Builtin::CoutTotal => out.push(0),
                Builtin::Depense(c) => {
                    out.push(1);
                    write_len(out, *c);
                }
                Builtin::Assiette => out.push(2),
                Builtin::Taux => out.push(3),
                Builtin::TauxMax => out.push(4),
            },
            Node::Bin(op, ..) => out.push(*op as u8),
            Node::In(_, items) => {
                write_len(out, items.len());
                items.iter().for_each(|v| write_value(out, v));
            }
            Node::All(l)
            | Node::Any(l)
            | Node::Min(l)
            | Node::Max(l)
            | Node::Sum(l)
            | Node::Product(l) => write_len(out, l.len()),
            Node::Variations(branches, otherwise) => {
                write_len(out, branches.len());
                out.push(u8::from(otherwise.is_some()));
            }
            Node::Grid(_, tranches) => {
                write_len(out, tranches.len());
                for (lo, hi, _) in tranches {
                    write_bound(out, lo);
                    write_bound(out, hi);
                }
            }
            Node::Modified {
                applicable,
                not_applicable,
                cap,
                floor,
                rounding,
                ..
            } => {
                for part in [applicable, not_applicable, cap, floor] {
                    out.push(u8::from(part.is_some()));
                }
                out.push(rounding.map_or(0, |r| r as u8 + 1));
            }
            Node::Neg(_) => {}
        }
        self.for_each_child(&mut |c| c.write_structure(out));
    }
}

/// A named formula: a rule of the file, or a formula the engine names itself (a condition's
/// test, a measure's rate, an expense category's eligibility).
#[derive(Debug, Clone)]
pub struct RuleDef {
    pub name: String,
    pub title: String,
    /// The formula as written, for the trace.
    pub formula: String,
    pub source: Option<String>,
    pub ty: Type,
    pub(crate) node: Node,
}

#[derive(Debug, Clone)]
pub struct ConditionDef {
    pub name: String,
    pub code: String,
    pub message: String,
    pub source: Option<String>,
    pub rule: usize,
}

#[derive(Debug, Clone)]
pub struct ExpenseRule {
    pub category: usize,
    /// None: never eligible for this measure.
    pub eligible_if: Option<usize>,
    pub always: bool,
    pub excluded_message: String,
    pub cap: Option<usize>,
    pub cap_message: Option<String>,
}

#[derive(Debug, Clone)]
pub struct MeasureRules {
    pub id: String,
    pub territorial: bool,
    pub conditions: Vec<usize>,
    pub expenses: Option<(String, Vec<ExpenseRule>)>,
    /// The regime retains every category in full, without rule nor cap: the base is the
    /// project's total cost.
    pub whole_cost: bool,
    pub rate: Option<usize>,
    pub rate_max: Option<usize>,
    pub amount: Option<usize>,
    pub amount_max: Option<usize>,
    pub exclusion: Option<(String, String)>,
}

/// One territory's complete rule set (the national default has no code).
#[derive(Debug, Clone)]
pub struct RuleSet {
    pub code: Option<String>,
    pub name: String,
    pub source: Option<String>,
    pub rules: Vec<RuleDef>,
    pub conditions: Vec<ConditionDef>,
    pub measures: Vec<MeasureRules>,
    /// Parameter versions in force in this territory, by parameter index.
    pub params: Vec<Vec<ParamVersion>>,
    /// Each condition's message, its `{nom}` resolved once (by condition index).
    pub(crate) messages: Vec<Vec<Piece>>,
    /// Each rule's title whose `{nom}` show values (a condition's title is its message),
    /// resolved once, as [`RuleSet::messages`]; empty for a title without any (by rule index).
    pub(crate) titles: Vec<Vec<Piece>>,
    /// What each rule's value depends on (see [`dependence`]), by rule index.
    pub(crate) dependence: Vec<Dependence>,
    /// For each rule, the first rule of the set with the same formula (itself if none): the
    /// evaluation keeps one value for both, except in an explanation, where each shows.
    pub(crate) same_as: Vec<usize>,
    /// The rules that read each fact (by fact index), and those that read the expenses (see
    /// [`readers`]).
    pub(crate) fact_readers: Vec<Vec<usize>>,
    pub(crate) expense_readers: Vec<usize>,
}

/// The parameters a measure reads in one territory, each once, in the order first met: what
/// its rates and amounts read (rates, flat amounts, caps and the thresholds choosing between
/// them, expense caps included), and what its conditions read (dates, thresholds).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeasureParameters {
    pub amounts: Vec<usize>,
    pub conditions: Vec<usize>,
}

impl RuleSet {
    /// What a measure reads of the parameters, through its rules (`None`: no such measure).
    pub fn measure_parameters(&self, measure: &str) -> Option<MeasureParameters> {
        let m = self.measures.iter().find(|m| m.id == measure)?;
        let mut amounts = Vec::new();
        let mut seen = vec![false; self.rules.len()];
        let mut roots: Vec<usize> = [m.rate, m.rate_max, m.amount, m.amount_max]
            .into_iter()
            .flatten()
            .collect();
        if let Some((_, regime)) = &m.expenses {
            roots.extend(
                regime
                    .iter()
                    .flat_map(|e| e.cap.into_iter().chain(e.eligible_if)),
            );
        }
        self.params_read(&roots, &mut seen, &mut amounts);
        let mut conditions = Vec::new();
        let mut seen = vec![false; self.rules.len()];
        let roots: Vec<usize> = m
            .conditions
            .iter()
            .filter_map(|&c| self.conditions.get(c).map(|c| c.rule))
            .collect();
        self.params_read(&roots, &mut seen, &mut conditions);
        Some(MeasureParameters {
            amounts,
            conditions,
        })
    }

    /// The value of parameter `i` in force on `date` in this territory, as the evaluation reads
    /// it (the last version whose `depuis` is on or before the date).
    pub fn param_at(&self, i: usize, date: NaiveDate) -> Option<&ParamVersion> {
        self.params.get(i)?.iter().rev().find(|v| v.since <= date)
    }

    /// Walks rules from `roots` (with a stack of its own: rule chains may be deep), adding each
    /// parameter read to `out` once.
    fn params_read(&self, roots: &[usize], seen: &mut [bool], out: &mut Vec<usize>) {
        let mut stack: Vec<usize> = roots.iter().rev().copied().collect();
        while let Some(r) = stack.pop() {
            if seen.get(r).copied().unwrap_or(true) {
                continue;
            }
            seen[r] = true;
            let mut nodes = vec![&self.rules[r].node];
            let mut read = Vec::new();
            while let Some(n) = nodes.pop() {
                match n {
                    Node::Param(i) if !out.contains(i) => out.push(*i),
                    Node::Rule(j) => read.push(*j),
                    _ => {}
                }
                let mut children = Vec::new();
                n.for_each_child(&mut |c| children.push(c));
                nodes.extend(children.into_iter().rev());
            }
            stack.extend(read.into_iter().rev());
        }
    }
}

/// The compiled rules of a programme: shared declarations and one rule set per territory.
#[derive(Debug, Clone)]
pub struct Rules {
    pub rounding: Rounding,
    pub selector: usize,
    pub categories: Vec<Category>,
    pub facts: Vec<FactDef>,
    pub params: Vec<ParamDef>,
    pub national: RuleSet,
    pub variants: Vec<RuleSet>,
    pub(crate) fact_index: HashMap<String, usize>,
    /// Fact names in order, with their index: a situation's facts, in the same order, are
    /// matched in one pass.
    pub(crate) facts_by_name: Vec<(String, usize)>,
    /// The filing date's fact (named by `fait_date_de_depot`): the engine sets it.
    pub(crate) date_fact: Option<usize>,
}

impl Rules {
    /// The fact the engine sets to the filing date ([`crate::Situation::date`]): a situation
    /// does not give it.
    pub fn date_fact(&self) -> Option<usize> {
        self.date_fact
    }

    pub fn fact(&self, name: &str) -> Option<usize> {
        self.fact_index.get(name).copied()
    }

    /// The rule set of a territory code, the national default when it has none.
    pub fn rule_set(&self, code: Option<&str>) -> &RuleSet {
        code.and_then(|c| self.variants.iter().find(|v| v.code.as_deref() == Some(c)))
            .unwrap_or(&self.national)
    }

    pub fn category(&self, id: &str) -> Option<usize> {
        self.categories.iter().position(|c| c.id == id)
    }
}

/// The fact name an expense category is read under in formulas: `depense_logiciel_hors_ue`.
pub fn expense_name(category: &str) -> String {
    format!("depense_{}", category.replace('-', "_"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    #[test]
    fn formulas_share_a_value_only_when_written_exactly_alike() {
        let times = |d: Decimal| {
            Node::Bin(
                BinOp::Mul,
                Box::new(Node::Fact(0)),
                Box::new(Node::Const(Value::Nombre(d))),
            )
        };
        let key = |ty, n: &Node| Structure::of(ty, n);
        let one = times(Decimal::new(10, 1));
        assert_eq!(key(Type::Nombre, &one), key(Type::Nombre, &one.clone()));
        // 1.0 and 1.00: the same number, products of another scale.
        assert_ne!(
            key(Type::Nombre, &one),
            key(Type::Nombre, &times(Decimal::new(100, 2)))
        );
        assert_ne!(key(Type::Nombre, &one), key(Type::Montant, &one));
        let other_fact = Node::Bin(
            BinOp::Mul,
            Box::new(Node::Fact(1)),
            Box::new(Node::Const(Value::Nombre(Decimal::new(10, 1)))),
        );
        assert_ne!(key(Type::Nombre, &one), key(Type::Nombre, &other_fact));
        let sum = |l: Vec<Node>| Node::Sum(l);
        assert_ne!(
            key(Type::Nombre, &sum(vec![Node::Fact(0), Node::Fact(1)])),
            key(Type::Nombre, &sum(vec![Node::Fact(0)]))
        );
    }
}
