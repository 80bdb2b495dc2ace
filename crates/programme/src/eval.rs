//! Evaluation of one measure for one applicant at one date: eligibility with every reason,
//! the eligible expense base, the rates, the amounts, the facts still missing, and a trace of
//! every step (rule, inputs, value, parameter version and source).

use crate::expr::{BinOp, Bound, Rounding};
use crate::rules::{cmp_values, Builtin, MeasureRules, Node, RuleSet, Rules};
use crate::value::{french_money, french_rate, Type, Value};
use chrono::NaiveDate;
use guichet_domain::Cents;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::Serialize;
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
    date: NaiveDate,
    facts: Vec<Option<Value>>,
    by_category: Vec<Decimal>,
    total: Decimal,
    lines: Vec<(usize, Cents)>,
    territory: Option<String>,
}

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
    /// The value for machines (integer cents, decimal strings, booleans, dates).
    #[serde(rename = "valeur_brute")]
    pub raw: serde_json::Value,
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

impl Step {
    /// The line in plain French.
    pub fn sentence(&self) -> String {
        let mut s = format!("{} : {}", self.title, self.display);
        if let Some(f) = &self.formula {
            s.push_str(&format!(" (formule : {f})"));
        }
        if let Some(d) = &self.detail {
            s.push_str(&format!(" ; {d}"));
        }
        match (&self.source, self.since) {
            (Some(src), Some(since)) => s.push_str(&format!(
                " — valeur en vigueur depuis le {}, source {src}",
                since.format("%d/%m/%Y")
            )),
            (Some(src), None) => s.push_str(&format!(" — source {src}")),
            _ => {}
        }
        s
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

/// The name under which missing expenses are reported (they are not a fact of their own).
pub const EXPENSES_FACT: &str = "depenses";

/// Code of the reason given when facts are missing.
pub const MISSING_REASON: &str = "donnees_manquantes";

/// Code of the reason given when the filing date precedes the first value of a parameter the
/// measure needs: its rules are not in force yet at that date.
pub const NOT_IN_FORCE_REASON: &str = "regles_non_en_vigueur";

impl Rules {
    /// Checks a situation against the declared facts and categories, and indexes it.
    pub fn prepare(&self, s: &Situation) -> Result<Prepared, EvalError> {
        let date = s.date.ok_or(EvalError::NoDate)?;
        let mut facts: Vec<Option<Value>> = vec![None; self.facts.len()];
        for (name, v) in &s.facts {
            let Some(i) = self.fact(name) else {
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
        if let Some(i) = self.fact("date_depot") {
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
            Some(Value::Texte(t)) => Some(t.to_string()),
            _ => None,
        };
        Ok(Prepared {
            date,
            facts,
            by_category,
            total,
            lines,
            territory,
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
        trace: bool,
    ) -> Result<Evaluation, EvalError> {
        let idx = self
            .measure_index(measure)
            .ok_or_else(|| EvalError::UnknownMeasure(measure.to_string()))?;
        self.evaluate_index(idx, situation, trace)
    }

    pub fn evaluate_index(
        &self,
        idx: usize,
        situation: &Prepared,
        trace: bool,
    ) -> Result<Evaluation, EvalError> {
        let national = &self.national.measures[idx];
        let set = self.rule_set(situation.territory.as_deref());
        if national.territorial && situation.territory.is_none() {
            return Err(EvalError::NoTerritory(national.id.clone()));
        }
        let measure = &set.measures[idx];
        let mut ev = Ev {
            rules: self,
            set,
            sit: situation,
            memo: vec![None; set.rules.len()],
            fact_seen: vec![false; self.facts.len()],
            param_seen: vec![false; self.params.len()],
            not_in_force: Vec::new(),
            missing: Vec::new(),
            assumed: Vec::new(),
            trace: if trace { Some(Vec::new()) } else { None },
            notes: Vec::new(),
            base: None,
            rate: None,
            rate_max: None,
        };
        ev.measure(measure)
    }
}

struct Ev<'a> {
    rules: &'a Rules,
    set: &'a RuleSet,
    sit: &'a Prepared,
    /// A rule's value, with the facts found missing while computing it (they count again
    /// wherever the rule is used).
    memo: Vec<Option<(Value, Vec<usize>)>>,
    fact_seen: Vec<bool>,
    param_seen: Vec<bool>,
    /// Parameters read at a date before their first value.
    not_in_force: Vec<usize>,
    /// Missing facts, once per reading (deduplicated at the end); a branch that did not decide a
    /// `ou` / `et` / `une de ces conditions` / `toutes ces conditions` takes its own back out.
    missing: Vec<usize>,
    assumed: Vec<usize>,
    trace: Option<Vec<Step>>,
    notes: Vec<String>,
    base: Option<Value>,
    rate: Option<Value>,
    rate_max: Option<Value>,
}

type R = Result<Value, EvalError>;

fn overflow() -> EvalError {
    EvalError::Arithmetic("dépassement de capacité".into())
}

fn to_cents(v: &Value) -> Option<Cents> {
    match v {
        Value::Montant(d) => d.trunc().to_i64().map(Cents::new),
        _ => None,
    }
}

fn round(d: Decimal, r: Rounding) -> Decimal {
    let hundred = Decimal::ONE_HUNDRED;
    match r {
        Rounding::CentDown => d.floor(),
        Rounding::EuroDown => (d / hundred).floor() * hundred,
        Rounding::EuroNearest => {
            (d / hundred)
                .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
                * hundred
        }
    }
}

impl Ev<'_> {
    fn step(&mut self, step: Step) {
        if let Some(t) = &mut self.trace {
            t.push(step);
        }
    }

    fn note(&mut self, n: String) {
        if self.trace.is_some() {
            self.notes.push(n);
        }
    }

    fn measure(&mut self, m: &MeasureRules) -> Result<Evaluation, EvalError> {
        let mut reasons = Vec::new();
        if let Some((code, message)) = &m.exclusion {
            reasons.push(Reason {
                code: code.clone(),
                message: message.clone(),
                source: self.set.source.clone(),
            });
            self.step(Step {
                kind: StepKind::Condition,
                name: "exclusion".into(),
                title: format!("Mesure ouverte en {}", self.set.name),
                display: "non".into(),
                raw: serde_json::Value::Bool(false),
                formula: None,
                detail: Some(message.clone()),
                source: self.set.source.clone(),
                since: None,
            });
        }
        for &ci in &m.conditions {
            let c = &self.set.conditions[ci];
            let v = self.rule(c.rule)?;
            match v {
                Value::Booleen(false) => reasons.push(Reason {
                    code: c.code.clone(),
                    message: self.interpolate(&c.message)?,
                    source: c.source.clone(),
                }),
                Value::Booleen(true) | Value::NonApplicable | Value::Absent => {}
                other => {
                    return Err(EvalError::Arithmetic(format!(
                        "la condition {} donne « {other} »",
                        c.name
                    )))
                }
            }
        }

        // Expense base.
        let mut expenses = Vec::new();
        let mut base = None;
        if let Some((_, regime)) = &m.expenses {
            let mut retained_by_cat = vec![Decimal::ZERO; self.rules.categories.len()];
            let mut excluded_msg: Vec<Option<String>> = vec![None; self.rules.categories.len()];
            let mut any_missing = false;
            for rule in regime {
                let amount = self.sit.by_category[rule.category];
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
                                    excluded_msg[rule.category] = Some(
                                        rule.cap_message
                                            .clone()
                                            .unwrap_or_else(|| "dépense plafonnée".into()),
                                    );
                                }
                            }
                        }
                        retained_by_cat[rule.category] = kept;
                    }
                    Value::Absent => any_missing = true,
                    _ => excluded_msg[rule.category] = Some(rule.excluded_message.clone()),
                }
            }
            let mut total = Decimal::ZERO;
            let mut remaining = retained_by_cat.clone();
            for (ci, amount) in &self.sit.lines {
                let a = Decimal::from(amount.get());
                let kept = a.min(remaining[*ci]);
                remaining[*ci] -= kept;
                total += kept;
                let cat = &self.rules.categories[*ci];
                let line = ExpenseLine {
                    categorie: cat.id.clone(),
                    libelle: cat.label.clone(),
                    montant_centimes: amount.get(),
                    retenu_centimes: kept.to_i64().ok_or_else(overflow)?,
                    motif: if kept < a {
                        excluded_msg[*ci].clone()
                    } else {
                        None
                    },
                };
                if self.trace.is_some() {
                    let detail = match &line.motif {
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
                        raw: Value::Montant(kept).to_json(),
                        formula: None,
                        detail: Some(detail),
                        source: None,
                        since: None,
                    });
                }
                expenses.push(line);
            }
            let v = if self.sit.lines.is_empty() {
                self.missing_expenses();
                Value::Absent
            } else if any_missing {
                Value::Absent
            } else {
                Value::Montant(total)
            };
            self.step(Step {
                kind: StepKind::Resultat,
                name: "assiette".into(),
                title: "Assiette éligible (dépenses retenues)".into(),
                display: v.to_string(),
                raw: v.to_json(),
                formula: None,
                detail: if self.sit.lines.is_empty() {
                    Some("aucune dépense déclarée".into())
                } else {
                    None
                },
                source: None,
                since: None,
            });
            base = Some(v);
        }
        self.base = base.clone();
        let rate = m.rate.map(|r| self.rule(r)).transpose()?;
        self.rate = rate.clone();
        let rate_max = m.rate_max.map(|r| self.rule(r)).transpose()?;
        self.rate_max = rate_max.clone();
        let mut amount = m.amount.map(|r| self.rule(r)).transpose()?;
        let mut amount_max = m.amount_max.map(|r| self.rule(r)).transpose()?;

        let rounding = self.rules.rounding;
        for (slot, label) in [
            (&mut amount, "Montant proposé"),
            (&mut amount_max, "Montant maximal"),
        ] {
            if let Some(Value::Montant(d)) = slot {
                if d.is_sign_negative() && !d.is_zero() {
                    return Err(EvalError::Arithmetic(format!("{label} négatif")));
                }
                let r = round(*d, rounding);
                if r != *d {
                    if let Some(t) = &mut self.trace {
                        t.push(Step {
                            kind: StepKind::Resultat,
                            name: "arrondi".into(),
                            title: label.into(),
                            display: french_money(r),
                            raw: Value::Montant(r).to_json(),
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
                self.step(Step {
                    kind: StepKind::Resultat,
                    name: "montant".into(),
                    title: "Montant proposé ramené au montant maximal".into(),
                    display: french_money(mx),
                    raw: Value::Montant(mx).to_json(),
                    formula: None,
                    detail: Some(format!("{} dépassait le maximum", french_money(a_old))),
                    source: None,
                    since: None,
                });
            }
        }

        self.missing.sort_unstable();
        self.missing.dedup();
        let mut missing: Vec<_> = self
            .missing
            .iter()
            .map(|&i| {
                let f = &self.rules.facts[i];
                crate::eval::Missing {
                    nom: f.name.clone(),
                    titre: f.title.clone(),
                    question: f.question.clone(),
                }
            })
            .collect();
        if m.expenses.is_some() && self.sit.lines.is_empty() {
            missing.insert(
                0,
                crate::eval::Missing {
                    nom: EXPENSES_FACT.into(),
                    titre: "Coût du projet".into(),
                    question: Some(
                        "Quel est le coût du projet, ou le détail de ses dépenses ?".into(),
                    ),
                },
            );
        }
        if let Some(since) = self
            .not_in_force
            .iter()
            .filter_map(|&i| self.set.params[i].first().map(|v| v.since))
            .min()
        {
            reasons.insert(
                0,
                Reason {
                    code: NOT_IN_FORCE_REASON.into(),
                    message: format!(
                        "Les règles de cette mesure ne sont pas en vigueur à la date de dépôt ({}) : elles s’appliquent à compter du {}.",
                        crate::value::french_date(self.sit.date),
                        crate::value::french_date(since)
                    ),
                    source: None,
                },
            );
        }
        let eligible = reasons.is_empty() && missing.is_empty();
        if !reasons.is_empty() {
            for slot in [&mut amount, &mut amount_max] {
                if slot.is_some() {
                    *slot = Some(Value::Montant(Decimal::ZERO));
                }
            }
            self.step(Step {
                kind: StepKind::Resultat,
                name: "non_eligible".into(),
                title: "Montant".into(),
                display: french_money(Decimal::ZERO),
                raw: serde_json::json!(0),
                formula: None,
                detail: Some(format!(
                    "demande non éligible ({} motif{})",
                    reasons.len(),
                    if reasons.len() > 1 { "s" } else { "" }
                )),
                source: None,
                since: None,
            });
        } else if !missing.is_empty() {
            reasons.push(Reason {
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
            });
        }
        let as_rate = |v: &Option<Value>| match v {
            Some(Value::Nombre(d)) => Some(d.normalize()),
            _ => None,
        };
        let assumptions = self
            .assumed
            .iter()
            .map(|&i| {
                let f = &self.rules.facts[i];
                Assumption {
                    nom: f.name.clone(),
                    titre: f.title.clone(),
                    valeur: f
                        .default
                        .as_ref()
                        .map(|v| v.to_string())
                        .unwrap_or_default(),
                }
            })
            .collect();
        Ok(Evaluation {
            measure: m.id.clone(),
            territory: self.set.code.clone(),
            territory_name: self.set.name.clone(),
            date: self.sit.date,
            eligible,
            reasons,
            missing,
            assumptions,
            expenses,
            base: base.as_ref().and_then(to_cents),
            rate: as_rate(&rate),
            rate_max: as_rate(&rate_max),
            amount: amount.as_ref().and_then(to_cents),
            amount_max: amount_max.as_ref().and_then(to_cents),
            trace: self.trace.take().unwrap_or_default(),
        })
    }

    fn missing_expenses(&mut self) {
        // Expenses are not a fact of their own: report them under a synthetic name the
        // doors know (`depenses`).
        if let Some(t) = &mut self.trace {
            t.push(Step {
                kind: StepKind::Fait,
                name: "depenses".into(),
                title: "Dépenses du projet".into(),
                display: "non renseignées".into(),
                raw: serde_json::Value::Null,
                formula: None,
                detail: Some("indiquez le coût du projet ou ses lignes de dépenses".into()),
                source: None,
                since: None,
            });
        }
    }

    /// `{nom}` in a message becomes the value of that parameter, rule or fact.
    fn interpolate(&mut self, msg: &str) -> Result<String, EvalError> {
        if !msg.contains('{') {
            return Ok(msg.to_string());
        }
        let mut out = String::new();
        let mut rest = msg;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[start..]);
                return Ok(out);
            };
            let name = &after[..end];
            let value = if let Some(i) = self.rules.params.iter().position(|p| p.name == name) {
                Some(self.param(i))
            } else if let Some(i) = self.set.rules.iter().position(|r| r.name == name) {
                Some(self.rule(i)?)
            } else {
                self.rules.fact(name).map(|i| self.fact(i))
            };
            match value {
                Some(v) => out.push_str(&v.to_string()),
                None => out.push_str(&rest[start..start + end + 2]),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn rule(&mut self, i: usize) -> R {
        if let Some((v, missing)) = &self.memo[i] {
            let v = v.clone();
            self.missing.extend_from_slice(missing);
            return Ok(v);
        }
        let set = self.set;
        let def = &set.rules[i];
        let notes_from = self.notes.len();
        let missing_from = self.missing.len();
        let v = self.eval(&def.node)?;
        let missing = self
            .missing
            .get(missing_from..)
            .unwrap_or_default()
            .to_vec();
        self.memo[i] = Some((v.clone(), missing));
        if self.trace.is_some() {
            let notes: Vec<String> = self.notes.drain(notes_from..).collect();
            let kind = if def.name.starts_with("condition ") {
                StepKind::Condition
            } else {
                StepKind::Regle
            };
            let display = match (&v, def.ty) {
                (Value::Nombre(d), _) if def.title.to_lowercase().starts_with("taux") => {
                    french_rate(*d)
                }
                (Value::Booleen(b), _) if kind == StepKind::Condition => {
                    if *b { "respectée" } else { "non respectée" }.to_string()
                }
                (Value::Absent, _) => "à préciser".to_string(),
                _ => v.to_string(),
            };
            // A condition's title is its message, whose `{nom}` show values.
            let title = if def.title.contains('{') {
                self.interpolate(&def.title)?
            } else {
                def.title.clone()
            };
            self.step(Step {
                kind,
                name: def.name.clone(),
                title,
                display,
                raw: v.to_json(),
                formula: Some(def.formula.clone()),
                detail: if notes.is_empty() {
                    None
                } else {
                    Some(notes.join(" ; "))
                },
                source: def.source.clone(),
                since: None,
            });
        }
        Ok(v)
    }

    fn param(&mut self, i: usize) -> Value {
        let versions = &self.set.params[i];
        let date = self.sit.date;
        let found = versions.iter().rev().find(|v| v.since <= date);
        let v = found
            .map(|f| f.value.clone())
            .unwrap_or(Value::NonApplicable);
        if found.is_none() && !versions.is_empty() && !self.not_in_force.contains(&i) {
            self.not_in_force.push(i);
        }
        if self.trace.is_some() && !self.param_seen[i] {
            self.param_seen[i] = true;
            let def = &self.rules.params[i];
            let display = match (&v, def.ty) {
                (Value::Nombre(d), Type::Nombre) if def.unit == "%" => french_rate(*d),
                _ => v.to_string(),
            };
            let step = Step {
                kind: StepKind::Parametre,
                name: def.name.clone(),
                title: def.title.clone(),
                display,
                raw: v.to_json(),
                formula: None,
                detail: if found.is_none() {
                    Some(if versions.is_empty() {
                        format!("sans valeur en {}", self.set.name)
                    } else {
                        "pas encore en vigueur à cette date".to_string()
                    })
                } else {
                    None
                },
                source: found.map(|f| f.source.clone()),
                since: found.map(|f| f.since),
            };
            self.step(step);
        }
        v
    }

    fn fact(&mut self, i: usize) -> Value {
        let def = &self.rules.facts[i];
        let (v, assumed) = match &self.sit.facts[i] {
            Some(v) => (v.clone(), false),
            None => match &def.default {
                Some(d) => (d.clone(), true),
                None => (Value::Absent, false),
            },
        };
        if matches!(v, Value::Absent) {
            self.missing.push(i);
        }
        if !self.fact_seen[i] {
            self.fact_seen[i] = true;
            if assumed {
                self.assumed.push(i);
            }
            if self.trace.is_some() {
                let step = Step {
                    kind: StepKind::Fait,
                    name: def.name.clone(),
                    title: def.title.clone(),
                    display: v.to_string(),
                    raw: v.to_json(),
                    formula: None,
                    detail: if assumed {
                        Some("valeur présumée, faute de réponse".into())
                    } else {
                        None
                    },
                    source: Some(
                        match def.origin.as_str() {
                            "referentiel" => "référentiel territorial du programme",
                            "base" => "dossiers enregistrés dans Guichet",
                            "demande" => "demande",
                            _ => "déclaration du demandeur",
                        }
                        .to_string(),
                    ),
                    since: None,
                };
                self.step(step);
            }
        }
        v
    }

    fn builtin(&mut self, b: Builtin) -> Value {
        match b {
            Builtin::CoutTotal => Value::Montant(self.sit.total),
            Builtin::Depense(c) => Value::Montant(self.sit.by_category[c]),
            Builtin::Assiette => self.base.clone().unwrap_or(Value::NonApplicable),
            Builtin::Taux => self.rate.clone().unwrap_or(Value::NonApplicable),
            Builtin::TauxMax => self.rate_max.clone().unwrap_or(Value::NonApplicable),
        }
    }

    fn eval(&mut self, n: &Node) -> R {
        Ok(match n {
            Node::Const(v) => v.clone(),
            Node::Rule(i) => self.rule(*i)?,
            Node::Param(i) => self.param(*i),
            Node::Fact(i) => self.fact(*i),
            Node::Builtin(b) => self.builtin(*b),
            Node::Neg(a) => match self.eval(a)? {
                Value::Nombre(d) => Value::Nombre(-d),
                Value::Montant(d) => Value::Montant(-d),
                other => other,
            },
            Node::In(a, items) => match self.eval(a)? {
                v @ (Value::Absent | Value::NonApplicable) => v,
                v => Value::Booleen(items.contains(&v)),
            },
            Node::Bin(op, a, b) => self.binary(*op, a, b)?,
            Node::All(list) => {
                let mut absent = false;
                let from = self.missing.len();
                for x in list {
                    let start = self.missing.len();
                    match self.eval(x)? {
                        Value::Booleen(false) => {
                            // Settled by this one: what the others lack does not matter.
                            self.missing.drain(from..start);
                            return Ok(Value::Booleen(false));
                        }
                        Value::Absent => absent = true,
                        _ => {}
                    }
                }
                if absent {
                    Value::Absent
                } else {
                    Value::Booleen(true)
                }
            }
            Node::Any(list) => {
                let mut absent = false;
                let mut any_applicable = false;
                let from = self.missing.len();
                for x in list {
                    let start = self.missing.len();
                    match self.eval(x)? {
                        Value::Booleen(true) => {
                            // Settled by this one: what the others lack does not matter.
                            self.missing.drain(from..start);
                            return Ok(Value::Booleen(true));
                        }
                        Value::Booleen(false) => any_applicable = true,
                        Value::Absent => absent = true,
                        _ => {}
                    }
                }
                if absent {
                    Value::Absent
                } else if any_applicable {
                    Value::Booleen(false)
                } else {
                    Value::NonApplicable
                }
            }
            Node::Min(list) | Node::Max(list) => {
                let is_min = matches!(n, Node::Min(_));
                let mut best: Option<Value> = None;
                let mut absent = false;
                for x in list {
                    let v = self.eval(x)?;
                    match v {
                        Value::Absent => absent = true,
                        Value::NonApplicable => {}
                        v => {
                            best = Some(match best {
                                None => v,
                                Some(b) => {
                                    let ord =
                                        cmp_values(&v, &b).unwrap_or(std::cmp::Ordering::Equal);
                                    if (is_min && ord.is_lt()) || (!is_min && ord.is_gt()) {
                                        v
                                    } else {
                                        b
                                    }
                                }
                            })
                        }
                    }
                }
                if absent {
                    Value::Absent
                } else {
                    best.unwrap_or(Value::NonApplicable)
                }
            }
            Node::Sum(list) => {
                let mut acc: Option<Value> = None;
                for x in list {
                    let v = self.eval(x)?;
                    match v {
                        Value::Absent => return Ok(Value::Absent),
                        Value::NonApplicable => {}
                        v => {
                            acc = Some(match acc {
                                None => v,
                                Some(a) => arith(BinOp::Add, a, v)?,
                            })
                        }
                    }
                }
                acc.unwrap_or(Value::NonApplicable)
            }
            Node::Product(list) => {
                let mut acc = Value::Nombre(Decimal::ONE);
                for x in list {
                    let v = self.eval(x)?;
                    match v {
                        Value::Absent | Value::NonApplicable => return Ok(v),
                        v => acc = arith(BinOp::Mul, acc, v)?,
                    }
                }
                acc
            }
            Node::Variations(branches, otherwise) => {
                for (c, v) in branches {
                    match self.eval(c)? {
                        Value::Booleen(true) => return self.eval(v),
                        Value::Absent => return Ok(Value::Absent),
                        _ => {}
                    }
                }
                match otherwise {
                    Some(o) => self.eval(o)?,
                    None => Value::NonApplicable,
                }
            }
            Node::Grid(base, tranches) => {
                let b = self.eval(base)?;
                if matches!(b, Value::Absent | Value::NonApplicable) {
                    return Ok(b);
                }
                let inside = |bound: &Option<Bound>, lower: bool| match bound {
                    None => true,
                    Some(bd) => match cmp_values(&b, &bd.value) {
                        Some(o) => {
                            if lower {
                                o.is_gt() || (bd.inclusive && o.is_eq())
                            } else {
                                o.is_lt() || (bd.inclusive && o.is_eq())
                            }
                        }
                        None => false,
                    },
                };
                for (lo, hi, v) in tranches {
                    if inside(lo, true) && inside(hi, false) {
                        return self.eval(v);
                    }
                }
                Value::NonApplicable
            }
            Node::Modified {
                value,
                applicable,
                not_applicable,
                cap,
                floor,
                rounding,
            } => {
                if let Some(c) = applicable {
                    match self.eval(c)? {
                        Value::Booleen(false) => return Ok(Value::NonApplicable),
                        Value::Absent => return Ok(Value::Absent),
                        _ => {}
                    }
                }
                if let Some(c) = not_applicable {
                    match self.eval(c)? {
                        Value::Booleen(true) => return Ok(Value::NonApplicable),
                        Value::Absent => return Ok(Value::Absent),
                        _ => {}
                    }
                }
                let mut v = self.eval(value)?;
                if matches!(v, Value::Absent | Value::NonApplicable) {
                    return Ok(v);
                }
                if let Some(c) = cap {
                    let c = self.eval(c)?;
                    if let Some(std::cmp::Ordering::Greater) = cmp_values(&v, &c) {
                        self.note(format!("plafonné : {v} ramené à {c}"));
                        v = c;
                    }
                }
                if let Some(f) = floor {
                    let f = self.eval(f)?;
                    if let Some(std::cmp::Ordering::Less) = cmp_values(&v, &f) {
                        self.note(format!("plancher : {v} porté à {f}"));
                        v = f;
                    }
                }
                if let (Some(r), Value::Montant(d)) = (rounding, &v) {
                    let rd = round(*d, *r);
                    if rd != *d {
                        self.note(r.label().to_string());
                    }
                    v = Value::Montant(rd);
                }
                v
            }
        })
    }

    fn binary(&mut self, op: BinOp, a: &Node, b: &Node) -> R {
        let from = self.missing.len();
        let va = self.eval(a)?;
        // Short-circuits: a false condition settles `et`, a true one settles `ou`.
        match (op, &va) {
            (BinOp::And, Value::Booleen(false)) => return Ok(Value::Booleen(false)),
            (BinOp::Or, Value::Booleen(true)) => return Ok(Value::Booleen(true)),
            _ => {}
        }
        let mid = self.missing.len();
        let vb = self.eval(b)?;
        let settles = |y: bool| (op == BinOp::And && !y) || (op == BinOp::Or && y);
        match op {
            BinOp::And | BinOp::Or => Ok(match (va, vb) {
                (Value::Booleen(x), Value::Booleen(y)) => {
                    Value::Booleen(if op == BinOp::And { x && y } else { x || y })
                }
                // The known side settles it: the unknown side's missing facts do not matter.
                (Value::Absent, Value::Booleen(y)) if settles(y) => {
                    self.missing.drain(from..mid);
                    Value::Booleen(y)
                }
                (Value::Booleen(y), Value::Absent) if settles(y) => {
                    self.missing.truncate(mid);
                    Value::Booleen(y)
                }
                (Value::Absent, _) | (_, Value::Absent) => Value::Absent,
                (Value::NonApplicable, v) | (v, Value::NonApplicable) => v,
                _ => Value::NonApplicable,
            }),
            _ => {
                if matches!(va, Value::Absent) || matches!(vb, Value::Absent) {
                    return Ok(Value::Absent);
                }
                if matches!(va, Value::NonApplicable) || matches!(vb, Value::NonApplicable) {
                    return Ok(Value::NonApplicable);
                }
                match op {
                    BinOp::Eq => Ok(Value::Booleen(va == vb)),
                    BinOp::Ne => Ok(Value::Booleen(va != vb)),
                    BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                        let o = cmp_values(&va, &vb).ok_or_else(|| {
                            EvalError::Arithmetic(format!("comparaison impossible : {va} et {vb}"))
                        })?;
                        Ok(Value::Booleen(match op {
                            BinOp::Lt => o.is_lt(),
                            BinOp::Le => o.is_le(),
                            BinOp::Gt => o.is_gt(),
                            _ => o.is_ge(),
                        }))
                    }
                    _ => arith(op, va, vb),
                }
            }
        }
    }
}

fn arith(op: BinOp, a: Value, b: Value) -> R {
    use Value::*;
    let f = |x: Decimal, y: Decimal| -> Result<Decimal, EvalError> {
        match op {
            BinOp::Add => x.checked_add(y),
            BinOp::Sub => x.checked_sub(y),
            BinOp::Mul => x.checked_mul(y),
            BinOp::Div => {
                if y.is_zero() {
                    return Err(EvalError::Arithmetic("division par zéro".into()));
                }
                x.checked_div(y)
            }
            _ => None,
        }
        .ok_or_else(overflow)
    };
    Ok(match (op, a, b) {
        (BinOp::Add | BinOp::Sub, Nombre(x), Nombre(y)) => Nombre(f(x, y)?),
        (BinOp::Add | BinOp::Sub, Montant(x), Montant(y)) => Montant(f(x, y)?),
        (BinOp::Mul, Nombre(x), Nombre(y)) => Nombre(f(x, y)?),
        (BinOp::Mul, Montant(x), Nombre(y)) | (BinOp::Mul, Nombre(y), Montant(x)) => {
            Montant(f(x, y)?)
        }
        (BinOp::Div, Nombre(x), Nombre(y)) | (BinOp::Div, Montant(x), Montant(y)) => {
            Nombre(f(x, y)?)
        }
        (BinOp::Div, Montant(x), Nombre(y)) => Montant(f(x, y)?),
        (op, a, b) => {
            return Err(EvalError::Arithmetic(format!(
                "opération impossible : {a} {} {b}",
                op.symbol()
            )))
        }
    })
}

#[cfg(test)]
mod missing_and_in_force_tests {
    use super::*;
    use crate::{itn7_files, Programme};

    fn situation(p: &Programme, date: &str, facts: &[(&str, &str)], cost: i64) -> Situation {
        let mut s = Situation {
            date: Some(NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap()),
            ..Default::default()
        };
        for (name, v) in facts {
            let i = p.rules.fact(name).unwrap();
            let value = Value::parse_literal(v, p.rules.facts[i].ty).unwrap();
            s.facts.insert(name.to_string(), value);
        }
        s.expenses
            .push(("prestation".into(), Cents::from_euros(cost)));
        s
    }

    fn missing(ev: &Evaluation) -> Vec<&str> {
        ev.missing.iter().map(|m| m.nom.as_str()).collect()
    }

    fn codes(ev: &Evaluation) -> Vec<&str> {
        ev.reasons.iter().map(|r| r.code.as_str()).collect()
    }

    #[test]
    fn a_missing_fact_that_settles_nothing_is_not_asked() {
        let p = crate::itn7().unwrap();
        // 600,000 inhabitants meet the Axe 2 threshold: whole-département coverage is moot.
        let s = situation(
            &p,
            "2021-03-01",
            &[("type_demandeur", "epci"), ("population", "600000")],
            10_000,
        );
        let ev = p.evaluate("axe2.demat", &s).unwrap();
        assert!(ev.eligible, "{:?}", ev.reasons);
        assert!(ev.missing.is_empty());
        assert_eq!(ev.amount, Some(Cents::from_euros(5_000)));
        // Below it, the answer decides.
        let s = situation(
            &p,
            "2021-03-01",
            &[("type_demandeur", "epci"), ("population", "300000")],
            10_000,
        );
        let ev = p.evaluate("axe2.demat", &s).unwrap();
        assert!(!ev.eligible);
        assert_eq!(missing(&ev), ["couvre_departement"]);
        assert_eq!(codes(&ev), [MISSING_REASON]);
    }

    #[test]
    fn a_rule_left_unknown_in_a_settled_branch_still_asks_where_it_decides() {
        // `couvre_entier` is first read inside a disjunction the population settles, then
        // alone in a condition of its own: its missing fact must come back there.
        let mut files = itn7_files();
        let edit = |files: &mut Vec<crate::SourceFile>, from: &str, to: &str| {
            let f = files.iter_mut().find(|f| f.name == "regles.yaml").unwrap();
            assert!(f.text.contains(from), "{from}");
            f.text = f.text.replacen(from, to, 1);
        };
        edit(
            &mut files,
            "regles:\n  collectivite_ou_groupement:",
            "regles:\n  couvre_entier: couvre_departement = oui\n  collectivite_ou_groupement:",
        );
        edit(
            &mut files,
            "        - couvre_departement = oui\n",
            "        - couvre_entier\n",
        );
        edit(
            &mut files,
            "\nconditions:\n",
            "\nconditions:\n  essai_couverture:\n    motif: essai\n    message: essai\n    si: couvre_entier\n\n",
        );
        edit(
            &mut files,
            "  axe2.demat:\n    conditions: [demandeur_axe2, couverture_axe2, periode_axe2]",
            "  axe2.demat:\n    conditions: [demandeur_axe2, couverture_axe2, periode_axe2, essai_couverture]",
        );
        let p = Programme::load(&files).unwrap_or_else(|d| panic!("{d}"));
        let s = situation(
            &p,
            "2021-03-01",
            &[("type_demandeur", "epci"), ("population", "600000")],
            10_000,
        );
        let ev = p.evaluate("axe2.demat", &s).unwrap();
        assert!(!ev.eligible);
        assert_eq!(missing(&ev), ["couvre_departement"]);
    }

    #[test]
    fn no_filing_is_eligible_before_the_rules_take_effect() {
        let p = crate::itn7().unwrap();
        let facts = [
            ("type_demandeur", "commune"),
            ("population", "3000"),
            ("region", "84"),
            ("date_fin", "2022-06-30"),
        ];
        let ev = p
            .evaluate(
                "axe3.v1.formation",
                &situation(&p, "2021-01-24", &facts, 10_000),
            )
            .unwrap();
        assert!(!ev.eligible);
        assert_eq!(codes(&ev), [NOT_IN_FORCE_REASON]);
        assert!(ev.reasons[0].message.contains("25/01/2021"));
        assert_eq!(ev.amount, Some(Cents::ZERO));
        let ev = p
            .evaluate(
                "axe3.v1.formation",
                &situation(&p, "2021-01-25", &facts, 10_000),
            )
            .unwrap();
        assert!(ev.eligible, "{:?}", ev.reasons);
        // A later value does not make the earlier one "not in force".
        let ev = p
            .evaluate(
                "axe1",
                &situation(&p, "2021-06-27", &[("type_demandeur", "commune")], 1),
            )
            .unwrap();
        assert_eq!(codes(&ev), ["hors_periode_depot"]);
    }
}
