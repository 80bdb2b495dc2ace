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

// ---------------------------------------------------------------------------------------------
// Raw files
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRulesFile {
    pub arrondi: String,
    pub variantes_selon: String,
    pub categories_depenses: Vec<RawCategory>,
    pub faits: BTreeMap<String, RawFact>,
    #[serde(default)]
    pub regles: BTreeMap<String, Yaml>,
    #[serde(default)]
    pub conditions: BTreeMap<String, RawCondition>,
    #[serde(default)]
    pub depenses: BTreeMap<String, BTreeMap<String, Yaml>>,
    pub mesures: BTreeMap<String, RawMeasureRules>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCategory {
    pub id: String,
    pub libelle: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFact {
    pub titre: String,
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default)]
    pub question: Option<String>,
    #[serde(default)]
    pub defaut: Option<Yaml>,
    pub origine: String,
    #[serde(default)]
    pub valeurs: Option<Vec<String>>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawParamsFile {
    pub parametres: BTreeMap<String, RawParam>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawParam {
    pub titre: String,
    pub unite: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub valeurs: Vec<RawParamValue>,
    #[serde(default)]
    pub variantes: BTreeMap<String, Vec<RawParamValue>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawParamValue {
    pub depuis: NaiveDate,
    pub valeur: Yaml,
    pub source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCondition {
    pub motif: String,
    pub message: String,
    pub si: Yaml,
    #[serde(default)]
    pub source: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConditionOverride {
    #[serde(default)]
    pub motif: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub si: Option<Yaml>,
    #[serde(default)]
    pub source: Option<String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExclusion {
    pub motif: String,
    pub message: String,
}

/// A measure's rules, and also what a variant overrides of them: every slot is optional, but
/// the national file must give `conditions` (the loader says so).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMeasureRules {
    #[serde(default)]
    pub conditions: Option<Vec<String>>,
    #[serde(default)]
    pub depenses: Option<String>,
    #[serde(default)]
    pub taux: Option<Yaml>,
    #[serde(default, rename = "taux max")]
    pub taux_max: Option<Yaml>,
    #[serde(default)]
    pub montant: Option<Yaml>,
    #[serde(default, rename = "montant max")]
    pub montant_max: Option<Yaml>,
    #[serde(default)]
    pub exclue: Option<RawExclusion>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVariantsFile {
    pub variantes: BTreeMap<String, RawVariant>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVariant {
    pub nom: String,
    pub source: String,
    #[serde(default)]
    pub regles: BTreeMap<String, Yaml>,
    #[serde(default)]
    pub conditions: BTreeMap<String, RawConditionOverride>,
    #[serde(default)]
    pub depenses: BTreeMap<String, BTreeMap<String, Yaml>>,
    #[serde(default)]
    pub mesures: BTreeMap<String, RawMeasureRules>,
}

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

/// Where a walk over the rules (which read one another) stands for one rule.
#[derive(Debug, Clone)]
enum Visit<T> {
    NotYet,
    /// Being walked: reaching it again is a cycle.
    InProgress,
    Done(T),
}

/// How deep the evaluation of a rule may go: the levels of its formula and, through each rule
/// it reads, of theirs, down to the leaves. Checking, analysing and evaluating rules walk them
/// recursively: deeper, a programme could overflow the stack and abort the server; it is
/// refused at load. ITN7's deepest rule goes a dozen levels down.
pub const MAX_DEPTH: usize = 256;

/// The evaluation depth of each rule (see [`MAX_DEPTH`]); a rule without a node (refused
/// earlier) counts as a leaf, a rule read within a cycle (refused elsewhere) as nothing. Rules
/// are visited with a stack of their own, not by recursion: a chain of any length is measured.
pub(crate) fn evaluation_depths(nodes: &[Option<Node>]) -> Vec<usize> {
    fn depth(n: &Node, rules: &[usize]) -> usize {
        match n {
            Node::Rule(j) => 1 + rules.get(*j).copied().unwrap_or(0),
            _ => {
                let mut d = 0;
                n.for_each_child(&mut |c| d = d.max(depth(c, rules)));
                d + 1
            }
        }
    }
    let reads: Vec<Vec<usize>> = nodes
        .iter()
        .map(|n| {
            let mut out = Vec::new();
            if let Some(n) = n {
                n.for_each_rule(&mut |j| out.push(j));
            }
            out
        })
        .collect();
    let mut depths = vec![0; nodes.len()];
    let mut visit = vec![Visit::NotYet; nodes.len()];
    for root in 0..nodes.len() {
        if !matches!(visit[root], Visit::NotYet) {
            continue;
        }
        visit[root] = Visit::InProgress;
        let mut stack = vec![(root, 0usize)];
        while let Some((r, next)) = stack.last_mut() {
            let r = *r;
            if let Some(&j) = reads[r].get(*next) {
                *next += 1;
                if matches!(visit.get(j), Some(Visit::NotYet)) {
                    visit[j] = Visit::InProgress;
                    stack.push((j, 0));
                }
                continue;
            }
            depths[r] = nodes[r].as_ref().map_or(1, |n| depth(n, &depths));
            visit[r] = Visit::Done(());
            stack.pop();
        }
    }
    depths
}

/// What a rule's value depends on, from the least to the most: the date and the territory
/// alone (parameters, the filing date), the situation (other facts, expenses), or the measure
/// being evaluated (`assiette`, `taux`, `taux_max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Dependence {
    Date,
    Situation,
    Measure,
}

/// The rules that read each fact, directly or through other rules (by fact index), and those
/// that read the expenses (`cout_total`, a category's amount): when a situation follows
/// another, only they are computed again for the facts that changed. A rule in a cycle (a
/// programme refused at load) counts as reading everything.
pub(crate) fn readers(rules: &[RuleDef], facts: usize) -> (Vec<Vec<usize>>, Vec<usize>) {
    #[derive(Clone, Default)]
    struct Reads {
        facts: Vec<usize>,
        expenses: bool,
    }
    fn node(n: &Node, out: &mut Reads, rule: &mut dyn FnMut(usize, &mut Reads)) {
        match n {
            Node::Fact(i) => out.facts.push(*i),
            Node::Builtin(Builtin::CoutTotal | Builtin::Depense(_)) => out.expenses = true,
            Node::Rule(i) => rule(*i, out),
            _ => n.for_each_child(&mut |c| node(c, out, rule)),
        }
    }
    fn visit(i: usize, rules: &[RuleDef], facts: usize, state: &mut Vec<Visit<Reads>>) -> Reads {
        match state.get(i) {
            Some(Visit::Done(r)) => return r.clone(),
            Some(Visit::NotYet) => {}
            // In a cycle.
            _ => {
                return Reads {
                    facts: (0..facts).collect(),
                    expenses: true,
                }
            }
        }
        state[i] = Visit::InProgress;
        let mut out = Reads::default();
        if let Some(def) = rules.get(i) {
            node(&def.node, &mut out, &mut |j, out: &mut Reads| {
                let r = visit(j, rules, facts, state);
                out.facts.extend(r.facts);
                out.expenses |= r.expenses;
            });
        }
        out.facts.sort_unstable();
        out.facts.dedup();
        state[i] = Visit::Done(out.clone());
        out
    }
    let mut state = vec![Visit::NotYet; rules.len()];
    let mut by_fact = vec![Vec::new(); facts];
    let mut expenses = Vec::new();
    for i in 0..rules.len() {
        let r = visit(i, rules, facts, &mut state);
        for f in r.facts {
            if let Some(list) = by_fact.get_mut(f) {
                list.push(i);
            }
        }
        if r.expenses {
            expenses.push(i);
        }
    }
    (by_fact, expenses)
}

/// The [`Dependence`] of every rule; `date_fact`: the filing date's fact, which the date sets.
pub(crate) fn dependence(rules: &[RuleDef], date_fact: Option<usize>) -> Vec<Dependence> {
    use Dependence::*;
    struct Cx<'r> {
        rules: &'r [RuleDef],
        date_fact: Option<usize>,
        // A rule reached while in progress is in a cycle (reported elsewhere): counted as
        // depending on the measure.
        state: Vec<Visit<Dependence>>,
    }
    impl Cx<'_> {
        fn rule(&mut self, i: usize) -> Dependence {
            match self.state.get(i) {
                Some(Visit::NotYet) => {
                    self.state[i] = Visit::InProgress;
                    let rules = self.rules;
                    let d = rules.get(i).map_or(Measure, |r| self.node(&r.node));
                    self.state[i] = Visit::Done(d);
                    d
                }
                Some(Visit::Done(d)) => *d,
                _ => Measure,
            }
        }
        fn node(&mut self, n: &Node) -> Dependence {
            match n {
                Node::Const(_) | Node::Param(_) => Date,
                Node::Fact(i) if Some(*i) == self.date_fact => Date,
                Node::Fact(_) => Situation,
                Node::Builtin(b) => match b {
                    Builtin::Assiette | Builtin::Taux | Builtin::TauxMax => Measure,
                    Builtin::CoutTotal | Builtin::Depense(_) => Situation,
                },
                Node::Rule(i) => self.rule(*i),
                _ => {
                    let mut d = Date;
                    n.for_each_child(&mut |c| d = d.max(self.node(c)));
                    d
                }
            }
        }
    }
    let mut cx = Cx {
        rules,
        date_fact,
        state: vec![Visit::NotYet; rules.len()],
    };
    (0..rules.len()).map(|i| cx.rule(i)).collect()
}

/// A piece of a message whose `{nom}` show values: text as written, or what to read.
#[derive(Debug, Clone)]
pub(crate) enum Piece {
    Text(String),
    Param(usize),
    Rule(usize),
    Fact(usize),
}

/// Splits a message at its `{nom}`, each name resolved as the evaluation reads it: a parameter,
/// else a rule of the set, else a fact; an unknown name, or a `{` left open, stays as written.
pub(crate) fn message_pieces(
    msg: &str,
    params: &[ParamDef],
    rules: &[RuleDef],
    facts: &HashMap<String, usize>,
) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = msg;
    while let Some(start) = rest.find('{') {
        text.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            text.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let name = &after[..end];
        let piece = if let Some(i) = params.iter().position(|p| p.name == name) {
            Some(Piece::Param(i))
        } else if let Some(i) = rules.iter().position(|r| r.name == name) {
            Some(Piece::Rule(i))
        } else {
            facts.get(name).map(|&i| Piece::Fact(i))
        };
        match piece {
            Some(p) => {
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(p);
            }
            None => text.push_str(&rest[start..start + end + 2]),
        }
        rest = &after[end + 1..];
    }
    text.push_str(rest);
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    pieces
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

// ---------------------------------------------------------------------------------------------
// Compilation
// ---------------------------------------------------------------------------------------------

pub(crate) struct Inputs<'a> {
    pub rules_file: &'a SourceFile,
    pub params_file: &'a SourceFile,
    pub variants_file: &'a SourceFile,
    pub rules: RawRulesFile,
    pub params: RawParamsFile,
    pub variants: RawVariantsFile,
    /// Measures of the catalogue: id and whether a territory instructs it.
    pub measures: Vec<(String, bool)>,
}

/// Where a formula comes from, to locate its errors.
#[derive(Clone)]
struct Origin<'a> {
    file: &'a SourceFile,
    path: Vec<String>,
}

impl Origin<'_> {
    fn diag(&self, near: Option<&str>, msg: impl Into<String>) -> Diagnostic {
        let path: Vec<&str> = self.path.iter().map(String::as_str).collect();
        self.file.at(&path, near, msg)
    }
}

/// Where an entry comes from: the variant's file when the variant overrides it (its path under
/// `variantes: CODE:`), the national rules file otherwise.
fn origin_of<'a>(
    overridden: bool,
    rf: &'a SourceFile,
    vf: &'a SourceFile,
    code: Option<&String>,
    path: &[&str],
) -> Origin<'a> {
    let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
    if overridden {
        let mut full = vec!["variantes".to_string(), code.cloned().unwrap_or_default()];
        full.extend(path);
        Origin {
            file: vf,
            path: full,
        }
    } else {
        Origin { file: rf, path }
    }
}

#[derive(Clone)]
struct Pending<'a> {
    name: String,
    title: String,
    expr: Result<Expr, ParseError>,
    formula: String,
    source: Option<String>,
    origin: Origin<'a>,
    /// Which measure-only names (assiette, taux, taux_max) the formula may use.
    context: Context,
    expected: Option<Type>,
}

/// Which of a measure's own results a formula may read: each slot of a measure is computed
/// after the one before (the base, then the rate, then the maximum rate, then the amounts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Context {
    /// A rule, a condition, an expense rule: none.
    Outside,
    /// The rate (`taux`): the base.
    Rate,
    /// The maximum rate: the base and the rate.
    RateMax,
    /// The amounts: the base and both rates.
    Amount,
}

/// A formula as a line of French for the trace (its YAML text if it does not parse: the
/// parse error is reported elsewhere).
fn formula_text(y: &Yaml) -> String {
    Expr::from_yaml(y)
        .map(|e| e.render())
        .unwrap_or_else(|_| yaml_text(y))
}

fn yaml_text(y: &Yaml) -> String {
    match y {
        Yaml::String(s) => s.clone(),
        other => other.to_text(),
    }
}

/// A rule entry: a formula, or a table with `titre` (and `source`, `description`) around one.
fn rule_entry(y: &Yaml) -> (Option<String>, Option<String>, Yaml) {
    if let Yaml::Mapping(m) = y {
        let has_meta = m.contains_key("titre");
        if has_meta {
            let mut rest = m.clone();
            let title = rest
                .remove("titre")
                .and_then(|v| v.as_str().map(str::to_string));
            let source = rest
                .remove("source")
                .and_then(|v| v.as_str().map(str::to_string));
            rest.remove("description");
            rest.remove("note");
            let formula = if rest.len() == 1 {
                rest.get("valeur").cloned().unwrap_or(Yaml::Mapping(rest))
            } else {
                Yaml::Mapping(rest)
            };
            return (title, source, formula);
        }
    }
    (None, None, y.clone())
}

fn literal_of(y: &Yaml, ty: Type) -> Result<Value, String> {
    match y {
        Yaml::String(s) => Value::parse_literal(s, ty),
        Yaml::Number(n) => Value::parse_literal(&n.to_string(), ty),
        Yaml::Bool(b) if ty == Type::Booleen => Ok(Value::Booleen(*b)),
        other => Err(format!(
            "valeur invalide : « {} » ({} attendu)",
            yaml_text(other),
            ty.label()
        )),
    }
}

pub(crate) fn compile(inputs: Inputs<'_>) -> Result<Rules, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let rf = inputs.rules_file;
    let pf = inputs.params_file;
    let vf = inputs.variants_file;
    let rounding = Rounding::parse(&inputs.rules.arrondi).unwrap_or_else(|| {
        diags.push(rf.at(
            &["arrondi"],
            None,
            format!(
                "arrondi inconnu : « {} » (centime inférieur, euro inférieur, euro le plus proche)",
                inputs.rules.arrondi
            ),
        ));
        Rounding::CentDown
    });

    // Categories.
    let categories: Vec<Category> = inputs
        .rules
        .categories_depenses
        .iter()
        .map(|c| Category {
            id: c.id.clone(),
            label: c.libelle.clone(),
        })
        .collect();

    // Facts.
    let mut facts = Vec::new();
    for (name, f) in &inputs.rules.faits {
        let Some(ty) = Type::parse(&f.ty) else {
            diags.push(rf.at(
                &["faits", name, "type"],
                Some(&f.ty),
                format!(
                    "fait « {name} » : type inconnu « {} » (nombre, montant, date, booleen, texte)",
                    f.ty
                ),
            ));
            continue;
        };
        if !["referentiel", "base", "demande", "demandeur"].contains(&f.origine.as_str()) {
            diags.push(rf.at(
                &["faits", name, "origine"],
                Some(&f.origine),
                format!(
                    "fait « {name} » : origine inconnue « {} » (referentiel, base, demande ou demandeur)",
                    f.origine
                ),
            ));
        }
        let default = match &f.defaut {
            None => None,
            Some(y) => match literal_of(y, ty) {
                Ok(v) => Some(v),
                Err(e) => {
                    diags.push(rf.at(
                        &["faits", name, "defaut"],
                        None,
                        format!("fait « {name} » : valeur par défaut {e}"),
                    ));
                    None
                }
            },
        };
        let _ = &f.description;
        facts.push(FactDef {
            name: name.clone(),
            title: f.titre.clone(),
            ty,
            question: f.question.clone(),
            default,
            origin: f.origine.clone(),
            allowed: f.valeurs.clone(),
        });
    }
    let fact_index: HashMap<String, usize> = facts
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name.clone(), i))
        .collect();
    let selector = match fact_index.get(&inputs.rules.variantes_selon) {
        Some(&i) => i,
        None => {
            diags.push(rf.at(
                &["variantes_selon"],
                None,
                format!(
                    "« variantes_selon » désigne un fait inconnu : « {} »",
                    inputs.rules.variantes_selon
                ),
            ));
            0
        }
    };
    if !fact_index.contains_key("date_depot") {
        diags.push(rf.at(
            &["faits"],
            None,
            "le fait « date_depot » (date de dépôt, type date) est obligatoire",
        ));
    }

    // Parameters.
    let variant_codes: Vec<&String> = inputs.variants.variantes.keys().collect();
    let mut params = Vec::new();
    for (name, p) in &inputs.params.parametres {
        let Some(ty) = Type::parse(&p.unite) else {
            diags.push(pf.at(
                &["parametres", name, "unite"],
                Some(&p.unite),
                format!(
                    "paramètre « {name} » : unité inconnue « {} » (nombre, habitants, communes, %, €, date, booleen, texte)",
                    p.unite
                ),
            ));
            continue;
        };
        let _ = &p.description;
        let versions = |list: &[RawParamValue],
                        path: &[&str],
                        diags: &mut Vec<Diagnostic>|
         -> Vec<ParamVersion> {
            let mut out: Vec<ParamVersion> = Vec::new();
            for v in list {
                match literal_of(&v.valeur, ty) {
                    Ok(value) => {
                        if out.iter().any(|o| o.since == v.depuis) {
                            diags.push(pf.at(
                                path,
                                Some(&v.depuis.to_string()),
                                format!(
                                    "paramètre « {name} » : deux valeurs à la même date ({})",
                                    v.depuis
                                ),
                            ));
                        }
                        if v.source.trim().is_empty() {
                            diags.push(pf.at(
                                path,
                                None,
                                format!("paramètre « {name} » : chaque valeur cite sa source"),
                            ));
                        }
                        out.push(ParamVersion {
                            since: v.depuis,
                            value,
                            source: v.source.clone(),
                        })
                    }
                    Err(e) => diags.push(pf.at(
                        path,
                        Some(&yaml_text(&v.valeur)),
                        format!("paramètre « {name} » : {e}"),
                    )),
                }
            }
            out.sort_by_key(|v| v.since);
            out
        };
        let national = versions(&p.valeurs, &["parametres", name], &mut diags);
        let mut variants = BTreeMap::new();
        for (code, list) in &p.variantes {
            if !variant_codes.contains(&code) {
                diags.push(pf.at(
                    &["parametres", name, "variantes", code],
                    None,
                    format!(
                        "paramètre « {name} » : variante « {code} » inconnue (variantes déclarées : {})",
                        variant_codes
                            .iter()
                            .map(|c| c.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
                continue;
            }
            variants.insert(
                code.clone(),
                versions(list, &["parametres", name, "variantes", code], &mut diags),
            );
        }
        params.push(ParamDef {
            name: name.clone(),
            title: p.titre.clone(),
            unit: p.unite.clone(),
            ty,
            national,
            variants,
        });
    }

    // Names must be unique across facts, parameters, rules and the engine's own names.
    let mut builtins: Vec<(String, Builtin)> = vec![
        ("cout_total".into(), Builtin::CoutTotal),
        ("assiette".into(), Builtin::Assiette),
        ("taux".into(), Builtin::Taux),
        ("taux_max".into(), Builtin::TauxMax),
    ];
    for (i, c) in categories.iter().enumerate() {
        builtins.push((expense_name(&c.id), Builtin::Depense(i)));
    }
    for p in &params {
        if fact_index.contains_key(&p.name) || builtins.iter().any(|b| b.0 == p.name) {
            diags.push(pf.at(
                &["parametres", &p.name],
                None,
                format!(
                    "nom déjà utilisé par un fait ou par le moteur : « {} »",
                    p.name
                ),
            ));
        }
    }
    for name in inputs.rules.regles.keys() {
        if fact_index.contains_key(name)
            || builtins.iter().any(|b| &b.0 == name)
            || params.iter().any(|p| &p.name == name)
        {
            diags.push(rf.at(
                &["regles", name],
                None,
                format!("nom déjà utilisé par un fait, un paramètre ou le moteur : « {name} »"),
            ));
        }
    }

    // Variants must only override what exists.
    for (code, v) in &inputs.variants.variantes {
        let mut overrides_nothing = |section: &str, what: &str, name: &str| {
            diags.push(vf.at(
                &["variantes", code, section, name],
                None,
                format!(
                    "variante {code} : {what} « {name} » n’existe pas dans le programme national"
                ),
            ))
        };
        for name in v
            .regles
            .keys()
            .filter(|n| !inputs.rules.regles.contains_key(*n))
        {
            overrides_nothing("regles", "la règle", name);
        }
        for name in v
            .conditions
            .keys()
            .filter(|n| !inputs.rules.conditions.contains_key(*n))
        {
            overrides_nothing("conditions", "la condition", name);
        }
        for id in v
            .mesures
            .keys()
            .filter(|n| !inputs.rules.mesures.contains_key(*n))
        {
            overrides_nothing("mesures", "la mesure", id);
        }
        for (regime, cats) in &v.depenses {
            match inputs.rules.depenses.get(regime) {
                None => diags.push(vf.at(
                    &["variantes", code, "depenses", regime],
                    None,
                    format!("variante {code} : le régime de dépenses « {regime} » n’existe pas dans le programme national"),
                )),
                Some(_) => {
                    for cat in cats.keys() {
                        if !categories.iter().any(|c| &c.id == cat) {
                            diags.push(vf.at(
                                &["variantes", code, "depenses", regime, cat],
                                None,
                                format!("variante {code} : catégorie de dépense inconnue « {cat} »"),
                            ));
                        }
                    }
                }
            }
        }
    }

    for (id, m) in &inputs.rules.mesures {
        if m.conditions.is_none() {
            diags.push(rf.at(
                &["mesures", id],
                None,
                format!("mesure {id} : « conditions » manquant (une liste, vide si la mesure n’en pose aucune)"),
            ));
        }
    }

    // Catalogue and rules name the same measures.
    for (id, _) in &inputs.measures {
        if !inputs.rules.mesures.contains_key(id) {
            diags.push(rf.at(
                &["mesures"],
                None,
                format!("la mesure « {id} » du catalogue (programme.yaml) n’a pas de règles"),
            ));
        }
    }
    for id in inputs.rules.mesures.keys() {
        if !inputs.measures.iter().any(|(m, _)| m == id) {
            diags.push(rf.at(
                &["mesures", id],
                None,
                format!("mesure « {id} » absente du catalogue (programme.yaml)"),
            ));
        }
    }

    // Problems so far leave the rest checkable (an override of a missing name is ignored):
    // go on, so that one run reports everything.
    let shared = Shared {
        facts: &facts,
        fact_index: &fact_index,
        params: &params,
        builtins: &builtins,
        categories: &categories,
    };
    let national = build_rule_set(&shared, &inputs, None, &mut diags);
    let mut variants = Vec::new();
    for code in inputs.variants.variantes.keys() {
        variants.push(build_rule_set(&shared, &inputs, Some(code), &mut diags));
    }
    if !diags.is_empty() {
        // The same mistake in a national rule shows once per territory: keep one.
        let mut seen = std::collections::HashSet::new();
        diags.retain(|d| seen.insert(d.clone()));
        return Err(diags);
    }
    let mut facts_by_name: Vec<(String, usize)> =
        fact_index.iter().map(|(n, &i)| (n.clone(), i)).collect();
    facts_by_name.sort();
    Ok(Rules {
        rounding,
        selector,
        categories,
        facts,
        params,
        national,
        variants,
        date_fact: fact_index.get("date_depot").copied(),
        fact_index,
        facts_by_name,
    })
}

struct Shared<'a> {
    facts: &'a [FactDef],
    fact_index: &'a HashMap<String, usize>,
    params: &'a [ParamDef],
    builtins: &'a [(String, Builtin)],
    categories: &'a [Category],
}

fn build_rule_set<'a>(
    shared: &Shared<'_>,
    inputs: &Inputs<'a>,
    code: Option<&String>,
    diags: &mut Vec<Diagnostic>,
) -> RuleSet {
    let rf = inputs.rules_file;
    let vf = inputs.variants_file;
    let variant = code.and_then(|c| inputs.variants.variantes.get(c));
    let mut pending: Vec<Pending<'a>> = Vec::new();
    let mut push = |p: Pending<'a>| -> usize {
        pending.push(p);
        pending.len() - 1
    };

    // Named rules, with the variant's overrides.
    let mut rule_ids: HashMap<String, usize> = HashMap::new();
    for (name, y) in &inputs.rules.regles {
        let over = variant.and_then(|v| v.regles.get(name));
        let origin = origin_of(over.is_some(), rf, vf, code, &["regles", name]);
        let y = over.unwrap_or(y);
        let (title, source, formula) = rule_entry(y);
        let id = push(Pending {
            name: name.clone(),
            title: title.unwrap_or_else(|| name.replace('_', " ")),
            expr: Expr::from_yaml(&formula),
            formula: formula_text(&formula),
            source,
            origin,
            context: Context::Outside,
            expected: None,
        });
        rule_ids.insert(name.clone(), id);
    }

    // Conditions.
    let mut conditions = Vec::new();
    let mut condition_ids: HashMap<String, usize> = HashMap::new();
    for (name, c) in &inputs.rules.conditions {
        let over = variant.and_then(|v| v.conditions.get(name));
        let over_si = over.and_then(|o| o.si.as_ref());
        let origin = origin_of(over_si.is_some(), rf, vf, code, &["conditions", name]);
        let si = over_si.unwrap_or(&c.si);
        let message = over
            .and_then(|o| o.message.clone())
            .unwrap_or_else(|| c.message.clone());
        let source = over
            .and_then(|o| o.source.clone())
            .or_else(|| c.source.clone());
        let rule = push(Pending {
            name: format!("condition {name}"),
            title: message.clone(),
            expr: Expr::from_yaml(si),
            formula: formula_text(si),
            source: source.clone(),
            origin,
            context: Context::Outside,
            expected: Some(Type::Booleen),
        });
        condition_ids.insert(name.clone(), conditions.len());
        conditions.push(ConditionDef {
            name: name.clone(),
            code: over
                .and_then(|o| o.motif.clone())
                .unwrap_or_else(|| c.motif.clone()),
            message,
            source,
            rule,
        });
    }

    // Expense regimes.
    let mut regimes: HashMap<String, Vec<ExpenseRule>> = HashMap::new();
    for (regime, cats) in &inputs.rules.depenses {
        let mut list = Vec::new();
        for (ci, cat) in shared.categories.iter().enumerate() {
            let over = variant
                .and_then(|v| v.depenses.get(regime))
                .and_then(|m| m.get(&cat.id));
            let origin = origin_of(over.is_some(), rf, vf, code, &["depenses", regime, &cat.id]);
            let entry = match over.or_else(|| cats.get(&cat.id)) {
                Some(e) => e,
                None => {
                    diags.push(rf.at(
                        &["depenses", regime],
                        None,
                        format!(
                            "régime de dépenses « {regime} » : la catégorie « {} » n’est pas traitée (eligible, {{ exclue: … }} ou {{ eligible si: … }})",
                            cat.id
                        ),
                    ));
                    continue;
                }
            };
            for key in cats.keys() {
                if !shared.categories.iter().any(|c| &c.id == key) {
                    diags.push(rf.at(
                        &["depenses", regime, key],
                        None,
                        format!("régime « {regime} » : catégorie de dépense inconnue « {key} »"),
                    ));
                }
            }
            let mut rule = ExpenseRule {
                category: ci,
                eligible_if: None,
                always: false,
                excluded_message: String::new(),
                cap: None,
                cap_message: None,
            };
            match entry {
                Yaml::String(s) if s == "eligible" => rule.always = true,
                Yaml::Mapping(m) => {
                    for (k, v) in m.iter() {
                        let k = k.as_str().unwrap_or_default();
                        match k {
                            "exclue" => {
                                rule.excluded_message = v.as_str().unwrap_or_default().to_string()
                            }
                            "sinon" => {
                                rule.excluded_message = v.as_str().unwrap_or_default().to_string()
                            }
                            "message plafond" => {
                                rule.cap_message = v.as_str().map(str::to_string)
                            }
                            "eligible si" => {
                                rule.eligible_if = Some(push(Pending {
                                    name: format!("{regime}.{}.eligible", cat.id),
                                    title: format!("{} éligible", cat.label),
                                    expr: Expr::from_yaml(v),
                                    formula: formula_text(v),
                                    source: None,
                                    origin: origin.clone(),
                                    context: Context::Outside,
                                    expected: Some(Type::Booleen),
                                }))
                            }
                            "plafond" => {
                                rule.cap = Some(push(Pending {
                                    name: format!("{regime}.{}.plafond", cat.id),
                                    title: format!("Plafond des dépenses « {} »", cat.label),
                                    expr: Expr::from_yaml(v),
                                    formula: formula_text(v),
                                    source: None,
                                    origin: origin.clone(),
                                    context: Context::Outside,
                                    expected: Some(Type::Montant),
                                }))
                            }
                            other => diags.push(origin.diag(
                                Some(other),
                                format!(
                                    "régime « {regime} », « {} » : clé inconnue « {other} » (exclue, eligible si, sinon, plafond, message plafond)",
                                    cat.id
                                ),
                            )),
                        }
                    }
                    if rule.eligible_if.is_some() && rule.excluded_message.is_empty() {
                        diags.push(origin.diag(
                            None,
                            format!("régime « {regime} », « {} » : « eligible si » demande un message « sinon »", cat.id),
                        ));
                    }
                    if rule.eligible_if.is_none() && rule.cap.is_none() && rule.excluded_message.is_empty() {
                        diags.push(origin.diag(
                            None,
                            format!("régime « {regime} », « {} » : indiquez eligible, exclue, eligible si ou plafond", cat.id),
                        ));
                    }
                    rule.always = rule.eligible_if.is_none() && rule.excluded_message.is_empty();
                }
                other => diags.push(origin.diag(
                    None,
                    format!(
                        "régime « {regime} », « {} » : « {} » n’est pas une règle de dépense (eligible, {{ exclue: … }}, {{ eligible si: …, sinon: … }}, {{ plafond: … }})",
                        cat.id,
                        yaml_text(other)
                    ),
                )),
            }
            list.push(rule);
        }
        regimes.insert(regime.clone(), list);
    }

    // Measures.
    let mut measures = Vec::new();
    for (id, territorial) in &inputs.measures {
        let Some(m) = inputs.rules.mesures.get(id) else {
            continue;
        };
        let over = variant.and_then(|v| v.mesures.get(id));
        let origin_for = |overridden: bool, slot: &str| {
            origin_of(overridden, rf, vf, code, &["mesures", id, slot])
        };
        let cond_names = over
            .and_then(|o| o.conditions.clone())
            .or_else(|| m.conditions.clone())
            .unwrap_or_default();
        let overridden_conditions = over.is_some_and(|o| o.conditions.is_some());
        let mut conds = Vec::new();
        for c in &cond_names {
            match condition_ids.get(c) {
                Some(&ci) => conds.push(ci),
                None => diags.push(
                    origin_for(overridden_conditions, "conditions")
                        .diag(Some(c), format!("mesure {id} : condition inconnue « {c} »")),
                ),
            }
        }
        let regime_name = over
            .and_then(|o| o.depenses.clone())
            .or_else(|| m.depenses.clone());
        let expenses = match regime_name {
            None => None,
            Some(r) => match regimes.get(&r) {
                Some(list) => Some((r.clone(), list.clone())),
                None => {
                    diags.push(
                        origin_for(over.is_some_and(|o| o.depenses.is_some()), "depenses").diag(
                            Some(&r),
                            format!("mesure {id} : régime de dépenses inconnu « {r} »"),
                        ),
                    );
                    None
                }
            },
        };
        let mut slot = |name: &str,
                        label: &str,
                        base: Option<&Yaml>,
                        overridden: Option<&Yaml>,
                        ctx: Context,
                        ty: Type|
         -> Option<usize> {
            let (y, origin) = match (overridden, base) {
                (Some(o), _) => (o, origin_for(true, name)),
                (None, Some(b)) => (b, origin_for(false, name)),
                (None, None) => return None,
            };
            Some(push(Pending {
                name: format!("{id} : {name}"),
                title: label.to_string(),
                expr: Expr::from_yaml(y),
                formula: formula_text(y),
                source: None,
                origin,
                context: ctx,
                expected: Some(ty),
            }))
        };
        let rate = slot(
            "taux",
            "Taux de financement proposé",
            m.taux.as_ref(),
            over.and_then(|o| o.taux.as_ref()),
            Context::Rate,
            Type::Nombre,
        );
        let rate_max = slot(
            "taux max",
            "Taux maximal que l’instructeur peut accorder",
            m.taux_max.as_ref(),
            over.and_then(|o| o.taux_max.as_ref()),
            Context::RateMax,
            Type::Nombre,
        );
        let default_amount = Yaml::String("assiette * taux".into());
        let default_max = Yaml::String("assiette * taux_max".into());
        let has_base = expenses.is_some() && rate.is_some();
        let amount = slot(
            "montant",
            "Montant proposé",
            m.montant.as_ref().or(if has_base {
                Some(&default_amount)
            } else {
                None
            }),
            over.and_then(|o| o.montant.as_ref()),
            Context::Amount,
            Type::Montant,
        );
        let amount_max = slot(
            "montant max",
            "Montant maximal",
            m.montant_max
                .as_ref()
                .or(if has_base && rate_max.is_some() {
                    Some(&default_max)
                } else {
                    None
                }),
            over.and_then(|o| o.montant_max.as_ref()),
            Context::Amount,
            Type::Montant,
        );
        let exclusion = over
            .and_then(|o| o.exclue.clone())
            .or_else(|| m.exclue.clone())
            .map(|e| (e.motif, e.message));
        // Every category retained in full (`cout_total`): the base is the total cost.
        let whole_cost = expenses.as_ref().is_some_and(|(_, regime)| {
            (0..shared.categories.len()).all(|c| {
                regime
                    .iter()
                    .any(|r| r.category == c && r.always && r.cap.is_none())
                    && regime.iter().filter(|r| r.category == c).count() == 1
            })
        });
        measures.push(MeasureRules {
            id: id.clone(),
            territorial: *territorial,
            conditions: conds,
            expenses,
            whole_cost,
            rate,
            rate_max,
            amount,
            amount_max,
            exclusion,
        });
    }

    // Resolve names, then check types and cycles.
    let mut resolved: Vec<Option<Node>> = Vec::with_capacity(pending.len());
    for p in &pending {
        match &p.expr {
            Err(e) => {
                diags.push(
                    p.origin
                        .diag(Some(&e.near), format!("{} : {}", p.name, e.message)),
                );
                resolved.push(None);
            }
            Ok(expr) => match resolve(expr, shared, &rule_ids, p) {
                Ok(n) => resolved.push(Some(n)),
                Err(d) => {
                    diags.push(d);
                    resolved.push(None);
                }
            },
        }
    }
    // Rules reading rules reading rules… thousands deep would overflow the stack wherever they
    // are walked (types, dependences, evaluation): refused, and cut off before those walks.
    let depths = evaluation_depths(&resolved);
    let too_deep = |i: usize| depths.get(i).is_some_and(|&d| d > MAX_DEPTH);
    let mut read_by_too_deep = vec![false; pending.len()];
    for (i, node) in resolved.iter().enumerate() {
        if let (true, Some(node)) = (too_deep(i), node) {
            node.for_each_rule(&mut |j| {
                if let Some(r) = read_by_too_deep.get_mut(j) {
                    *r = true;
                }
            });
        }
    }
    for i in 0..pending.len() {
        if too_deep(i) && !read_by_too_deep[i] {
            diags.push(pending[i].origin.diag(
                None,
                format!(
                    "{} : règles trop imbriquées : son calcul passe par {} niveaux de formules et de règles (au plus {MAX_DEPTH})",
                    pending[i].name, depths[i]
                ),
            ));
        }
    }
    for (i, node) in resolved.iter_mut().enumerate() {
        if too_deep(i) {
            *node = None;
        }
    }
    let mut types: Vec<Option<Type>> = vec![None; pending.len()];
    let mut state = vec![Inference::NotYet; pending.len()];
    for i in 0..pending.len() {
        let _ = infer_rule(
            i, &pending, &resolved, shared, &mut types, &mut state, diags,
        );
    }
    let params = shared
        .params
        .iter()
        .map(|p| {
            code.and_then(|c| p.variants.get(c))
                .cloned()
                .unwrap_or_else(|| p.national.clone())
        })
        .collect();
    let rules: Vec<RuleDef> = pending
        .into_iter()
        .zip(resolved)
        .zip(types)
        .map(|((p, node), ty)| RuleDef {
            name: p.name,
            title: p.title,
            formula: p.formula,
            source: p.source,
            ty: ty.unwrap_or(Type::Any),
            node: node.unwrap_or(Node::Const(Value::NonApplicable)),
        })
        .collect();
    let messages = conditions
        .iter()
        .map(|c| message_pieces(&c.message, shared.params, &rules, shared.fact_index))
        .collect();
    let dependence = dependence(&rules, shared.fact_index.get("date_depot").copied());
    let (fact_readers, expense_readers) = readers(&rules, shared.facts.len());
    // Rules written alike (the default amount `assiette * taux` of several measures, say) are
    // one: the first of them.
    let mut first: HashMap<String, usize> = HashMap::new();
    let same_as = rules
        .iter()
        .enumerate()
        .map(|(i, r)| *first.entry(format!("{:?} {:?}", r.ty, r.node)).or_insert(i))
        .collect();
    RuleSet {
        code: code.cloned(),
        name: variant
            .map(|v| v.nom.clone())
            .unwrap_or_else(|| "National".to_string()),
        source: variant.map(|v| v.source.clone()),
        rules,
        conditions,
        measures,
        params,
        messages,
        dependence,
        same_as,
        fact_readers,
        expense_readers,
    }
}

fn resolve(
    e: &Expr,
    shared: &Shared<'_>,
    rules: &HashMap<String, usize>,
    p: &Pending<'_>,
) -> Result<Node, Diagnostic> {
    let r = |x: &Expr| resolve(x, shared, rules, p);
    let all = |v: &[Expr]| v.iter().map(r).collect::<Result<Vec<_>, _>>();
    let bx = |x: &Expr| r(x).map(Box::new);
    let opt = |x: &Option<Box<Expr>>| x.as_deref().map(bx).transpose();
    Ok(match e {
        Expr::Const(v) => Node::Const(v.clone()),
        Expr::Ref(name) => {
            if let Some(&i) = rules.get(name) {
                Node::Rule(i)
            } else if let Some(i) = shared.params.iter().position(|q| &q.name == name) {
                Node::Param(i)
            } else if let Some(&i) = shared.fact_index.get(name) {
                Node::Fact(i)
            } else if let Some((_, b)) = shared.builtins.iter().find(|(n, _)| n == name) {
                let needed = match b {
                    Builtin::Assiette => Context::Rate,
                    Builtin::Taux => Context::RateMax,
                    Builtin::TauxMax => Context::Amount,
                    _ => Context::Outside,
                };
                if p.context < needed {
                    return Err(p.origin.diag(
                        Some(name),
                        format!(
                            "{} : « {name} » n’est utilisable que dans les formules d’une mesure (taux, taux max, montant, montant max), après son calcul",
                            p.name
                        ),
                    ));
                }
                Node::Builtin(*b)
            } else {
                return Err(p.origin.diag(
                    Some(name),
                    format!(
                        "{} : nom inconnu « {name} » (ni règle, ni paramètre, ni fait)",
                        p.name
                    ),
                ));
            }
        }
        Expr::Bin(op, a, b) => Node::Bin(*op, bx(a)?, bx(b)?),
        Expr::Neg(a) => Node::Neg(bx(a)?),
        Expr::In(a, items) => Node::In(bx(a)?, items.clone()),
        Expr::All(v) => Node::All(all(v)?),
        Expr::Any(v) => Node::Any(all(v)?),
        Expr::Min(v) => Node::Min(all(v)?),
        Expr::Max(v) => Node::Max(all(v)?),
        Expr::Sum(v) => Node::Sum(all(v)?),
        Expr::Product(v) => Node::Product(all(v)?),
        Expr::Variations(b, o) => Node::Variations(
            b.iter()
                .map(|(c, v)| Ok((r(c)?, r(v)?)))
                .collect::<Result<Vec<_>, Diagnostic>>()?,
            opt(o)?,
        ),
        Expr::Grid(base, tranches) => {
            check_grid(tranches.iter().map(|t| (&t.lower, &t.upper)).collect(), p)?;
            Node::Grid(
                bx(base)?,
                tranches
                    .iter()
                    .map(|t| Ok((t.lower.clone(), t.upper.clone(), r(&t.value)?)))
                    .collect::<Result<Vec<_>, Diagnostic>>()?,
            )
        }
        Expr::Modified {
            value,
            applicable,
            not_applicable,
            cap,
            floor,
            rounding,
        } => Node::Modified {
            value: bx(value)?,
            applicable: opt(applicable)?,
            not_applicable: opt(not_applicable)?,
            cap: opt(cap)?,
            floor: opt(floor)?,
            rounding: *rounding,
        },
    })
}

/// Compares two constants of one type (numbers, amounts or dates).
pub(crate) fn cmp_values(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Nombre(x), Value::Nombre(y)) | (Value::Montant(x), Value::Montant(y)) => {
            // The same scale (most comparisons: whole numbers, cents): the mantissas say it.
            Some(if x.scale() == y.scale() {
                x.mantissa().cmp(&y.mantissa())
            } else {
                x.cmp(y)
            })
        }
        (Value::Date(x), Value::Date(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// The tranches of a grid must not overlap, nor leave a gap between them.
fn check_grid(
    tranches: Vec<(&Option<Bound>, &Option<Bound>)>,
    p: &Pending<'_>,
) -> Result<(), Diagnostic> {
    use std::cmp::Ordering::*;
    let fail = |m: String| Err(p.origin.diag(Some("tranches"), format!("{} : {m}", p.name)));
    for (i, (lo, hi)) in tranches.iter().enumerate() {
        if let (Some(l), Some(h)) = (lo, hi) {
            match cmp_values(&l.value, &h.value) {
                None => return fail(format!("tranche {} : bornes de types différents", i + 1)),
                Some(Greater) => {
                    return fail(format!(
                        "tranche {} : borne basse au-dessus de la borne haute",
                        i + 1
                    ))
                }
                Some(Equal) if !(l.inclusive && h.inclusive) => {
                    return fail(format!("tranche {} : vide", i + 1))
                }
                _ => {}
            }
        }
        if i == 0 {
            continue;
        }
        let (_, prev_hi) = tranches[i - 1];
        let Some(ph) = prev_hi else {
            return fail(format!(
                "la tranche {} n’a pas de borne haute : les tranches suivantes la chevauchent",
                i
            ));
        };
        let Some(l) = lo else {
            return fail(format!(
                "la tranche {} n’a pas de borne basse : elle chevauche la tranche {}",
                i + 1,
                i
            ));
        };
        match cmp_values(&ph.value, &l.value) {
            None => return fail(format!("tranches {} et {} : bornes de types différents", i, i + 1)),
            Some(Equal) => {
                if ph.inclusive && l.inclusive {
                    return fail(format!(
                        "les tranches {} et {} se chevauchent : la valeur {} est dans les deux (utilisez « au-delà de » pour l’une)",
                        i,
                        i + 1,
                        l.value
                    ));
                }
                if !ph.inclusive && !l.inclusive {
                    return fail(format!(
                        "trou entre les tranches {} et {} : la valeur {} n’est dans aucune",
                        i,
                        i + 1,
                        l.value
                    ));
                }
            }
            Some(Greater) => {
                return fail(format!(
                    "les tranches {} et {} se chevauchent (la tranche {} commence à {}, avant la fin de la tranche {})",
                    i,
                    i + 1,
                    i + 1,
                    l.value,
                    i
                ))
            }
            Some(Less) => {
                // Adjacent integers (jusqu'à 15000 / à partir de 15001) leave no gap for counts.
                let adjacent_counts = matches!(
                    (&ph.value, &l.value),
                    (Value::Nombre(a), Value::Nombre(b))
                        if ph.inclusive && l.inclusive && a.fract().is_zero() && b.fract().is_zero()
                            && *b - *a == rust_decimal::Decimal::ONE
                );
                if !adjacent_counts {
                    return fail(format!(
                        "trou entre les tranches {} et {} (de {} à {})",
                        i,
                        i + 1,
                        ph.value,
                        l.value
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Where the type inference of a rule stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inference {
    NotYet,
    /// Being inferred: reaching it again is a cycle.
    InProgress,
    Done,
}

fn infer_rule(
    i: usize,
    pending: &[Pending<'_>],
    nodes: &[Option<Node>],
    shared: &Shared<'_>,
    types: &mut Vec<Option<Type>>,
    state: &mut Vec<Inference>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Type> {
    if let Some(t) = types[i] {
        return Some(t);
    }
    if state[i] == Inference::InProgress {
        diags.push(pending[i].origin.diag(
            None,
            format!(
                "cycle : la règle « {} » dépend d’elle-même",
                pending[i].name
            ),
        ));
        return None;
    }
    if state[i] == Inference::Done {
        return None;
    }
    let Some(node) = nodes[i].as_ref() else {
        // Refused earlier (a name unknown, a formula that does not parse): no type, and no
        // cycle either for the rules that read it.
        state[i] = Inference::Done;
        return None;
    };
    state[i] = Inference::InProgress;
    let mut cx = TypeCx {
        pending,
        nodes,
        shared,
        types,
        state,
        diags,
        at: i,
    };
    let t = cx.infer(node);
    state[i] = Inference::Done;
    if let (Some(t), Some(expected)) = (t, pending[i].expected) {
        if t.unify(expected).is_none() {
            diags.push(pending[i].origin.diag(
                None,
                format!(
                    "{} : type incompatible, {} attendu mais la formule donne un {}",
                    pending[i].name,
                    expected.label(),
                    t.label()
                ),
            ));
        }
    }
    types[i] = t;
    t
}

struct TypeCx<'a, 'b> {
    pending: &'a [Pending<'b>],
    nodes: &'a [Option<Node>],
    shared: &'a Shared<'a>,
    types: &'a mut Vec<Option<Type>>,
    state: &'a mut Vec<Inference>,
    diags: &'a mut Vec<Diagnostic>,
    at: usize,
}

impl TypeCx<'_, '_> {
    fn fail(&mut self, msg: String) -> Option<Type> {
        let p = &self.pending[self.at];
        self.diags
            .push(p.origin.diag(None, format!("{} : {msg}", p.name)));
        None
    }

    fn infer(&mut self, n: &Node) -> Option<Type> {
        use Type::*;
        match n {
            Node::Const(v) => Some(v.type_of()),
            Node::Rule(r) => {
                let r = *r;
                let at = self.at;
                let t = infer_rule(
                    r,
                    self.pending,
                    self.nodes,
                    self.shared,
                    self.types,
                    self.state,
                    self.diags,
                );
                self.at = at;
                if t.is_none() && self.state[r] == Inference::InProgress {
                    return self.fail(format!(
                        "cycle entre « {} » et « {} »",
                        self.pending[at].name, self.pending[r].name
                    ));
                }
                t
            }
            Node::Param(p) => Some(self.shared.params[*p].ty),
            Node::Fact(f) => Some(self.shared.facts[*f].ty),
            Node::Builtin(b) => Some(match b {
                Builtin::CoutTotal | Builtin::Depense(_) | Builtin::Assiette => Montant,
                Builtin::Taux | Builtin::TauxMax => Nombre,
            }),
            Node::Neg(a) => {
                let t = self.infer(a)?;
                if matches!(t, Nombre | Montant | Any) {
                    Some(t)
                } else {
                    self.fail(format!("« - » devant un {}", t.label()))
                }
            }
            Node::In(a, items) => {
                let t = self.infer(a)?;
                for it in items {
                    if t.unify(it.type_of()).is_none() {
                        return self.fail(format!(
                            "« dans » compare un {} à « {} » ({})",
                            t.label(),
                            it,
                            it.type_of().label()
                        ));
                    }
                }
                Some(Booleen)
            }
            Node::Bin(op, a, b) => {
                let (ta, tb) = (self.infer(a)?, self.infer(b)?);
                let bad = |s: &mut Self| {
                    s.fail(format!(
                        "type incompatible : {} {} {}",
                        ta.label(),
                        op.symbol(),
                        tb.label()
                    ))
                };
                match op {
                    BinOp::And | BinOp::Or => {
                        if ta.unify(Booleen).is_some() && tb.unify(Booleen).is_some() {
                            Some(Booleen)
                        } else {
                            bad(self)
                        }
                    }
                    BinOp::Eq | BinOp::Ne => {
                        if ta.unify(tb).is_some() {
                            Some(Booleen)
                        } else {
                            bad(self)
                        }
                    }
                    BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => match ta.unify(tb) {
                        Some(Nombre | Montant | Date | Any) => Some(Booleen),
                        _ => bad(self),
                    },
                    BinOp::Add | BinOp::Sub => match ta.unify(tb) {
                        Some(t @ (Nombre | Montant | Any)) => Some(t),
                        _ => bad(self),
                    },
                    BinOp::Mul => match (ta, tb) {
                        (Nombre, Nombre) => Some(Nombre),
                        (Montant, Nombre) | (Nombre, Montant) => Some(Montant),
                        (Any, t) | (t, Any) if t != Date && t != Booleen && t != Texte => Some(t),
                        _ => bad(self),
                    },
                    BinOp::Div => match (ta, tb) {
                        (Nombre, Nombre) | (Montant, Montant) => Some(Nombre),
                        (Montant, Nombre) => Some(Montant),
                        (Any, t) | (t, Any) if t != Date && t != Booleen && t != Texte => Some(t),
                        _ => bad(self),
                    },
                }
            }
            Node::All(v) | Node::Any(v) => {
                for x in v {
                    let t = self.infer(x)?;
                    if t.unify(Booleen).is_none() {
                        return self.fail(format!(
                            "une condition de la liste donne un {} au lieu d’un booléen",
                            t.label()
                        ));
                    }
                }
                Some(Booleen)
            }
            Node::Min(v) | Node::Max(v) | Node::Sum(v) => {
                let mut t = Any;
                for x in v {
                    let tx = self.infer(x)?;
                    t = match t.unify(tx) {
                        Some(u @ (Nombre | Montant | Date | Any)) => u,
                        _ => {
                            return self.fail(format!(
                                "valeurs de types différents dans une liste : {} et {}",
                                t.label(),
                                tx.label()
                            ))
                        }
                    };
                }
                if matches!(n, Node::Sum(_)) && t == Date {
                    return self.fail("on ne fait pas la somme de dates".into());
                }
                Some(t)
            }
            Node::Product(v) => {
                let mut montants = 0;
                for x in v {
                    match self.infer(x)? {
                        Nombre | Any => {}
                        Montant => montants += 1,
                        other => return self.fail(format!("« produit » d’un {}", other.label())),
                    }
                }
                match montants {
                    0 => Some(Nombre),
                    1 => Some(Montant),
                    _ => self.fail("« produit » de deux montants".into()),
                }
            }
            Node::Variations(branches, otherwise) => {
                let mut t = Any;
                for (c, v) in branches {
                    let tc = self.infer(c)?;
                    if tc.unify(Booleen).is_none() {
                        return self.fail(format!(
                            "« si » d’une variation donne un {} au lieu d’un booléen",
                            tc.label()
                        ));
                    }
                    let tv = self.infer(v)?;
                    t = match t.unify(tv) {
                        Some(u) => u,
                        None => {
                            return self.fail(format!(
                                "les branches d’une variation n’ont pas le même type : {} et {}",
                                t.label(),
                                tv.label()
                            ))
                        }
                    };
                }
                if let Some(o) = otherwise {
                    let to = self.infer(o)?;
                    t = match t.unify(to) {
                        Some(u) => u,
                        None => {
                            return self.fail(format!(
                                "« sinon » n’a pas le type des autres branches : {} et {}",
                                t.label(),
                                to.label()
                            ))
                        }
                    };
                }
                Some(t)
            }
            Node::Grid(base, tranches) => {
                let tb = self.infer(base)?;
                let mut t = Any;
                for (lo, hi, v) in tranches {
                    for b in [lo, hi].into_iter().flatten() {
                        if tb.unify(b.value.type_of()).is_none() {
                            return self.fail(format!(
                                "borne « {} » ({}) comparée à une assiette de type {}",
                                b.value,
                                b.value.type_of().label(),
                                tb.label()
                            ));
                        }
                    }
                    let tv = self.infer(v)?;
                    t = match t.unify(tv) {
                        Some(u) => u,
                        None => {
                            return self.fail(format!(
                                "les tranches n’ont pas le même type : {} et {}",
                                t.label(),
                                tv.label()
                            ))
                        }
                    };
                }
                Some(t)
            }
            Node::Modified {
                value,
                applicable,
                not_applicable,
                cap,
                floor,
                rounding,
            } => {
                let t = self.infer(value)?;
                for c in [applicable, not_applicable].into_iter().flatten() {
                    let tc = self.infer(c)?;
                    if tc.unify(Booleen).is_none() {
                        return self.fail(format!(
                            "« applicable si » donne un {} au lieu d’un booléen",
                            tc.label()
                        ));
                    }
                }
                for c in [cap, floor].into_iter().flatten() {
                    let tc = self.infer(c)?;
                    if tc.unify(t).is_none() {
                        return self.fail(format!(
                            "plafond ou plancher de type {} sur une valeur de type {}",
                            tc.label(),
                            t.label()
                        ));
                    }
                }
                if rounding.is_some() && t.unify(Montant).is_none() {
                    return self.fail(format!(
                        "« arrondi » sur un {} (montant attendu)",
                        t.label()
                    ));
                }
                Some(t)
            }
        }
    }
}
