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
    /// The filing date's fact (`date_depot`).
    pub(crate) date_fact: Option<usize>,
}

impl Rules {
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
