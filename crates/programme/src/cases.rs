//! Test cases written as data beside the programme, in the manner of OpenFisca's YAML tests:
//! a situation (facts, expenses, filing date), a measure, and what must come out (eligibility,
//! reason codes, base, rates, amounts, missing facts). `cargo test` and
//! `guichet programme test DIR` run them and print `N passed, N failed`.

use crate::diag::{Diagnostic, SourceFile};
use crate::eval::Situation;
use crate::value::{Type, Value};
use crate::yaml::Yaml;
use crate::Programme;
use chrono::NaiveDate;
use guichet_domain::Cents;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    nom: String,
    mesure: String,
    date_depot: NaiveDate,
    #[serde(default)]
    situation: BTreeMap<String, Yaml>,
    #[serde(default)]
    depenses: BTreeMap<String, Yaml>,
    attendu: RawExpected,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpected {
    eligible: bool,
    #[serde(default)]
    motifs: Option<Vec<String>>,
    #[serde(default)]
    donnees_manquantes: Option<Vec<String>>,
    #[serde(default)]
    assiette: Option<Yaml>,
    #[serde(default)]
    taux: Option<Yaml>,
    #[serde(default)]
    taux_max: Option<Yaml>,
    #[serde(default)]
    montant: Option<Yaml>,
    #[serde(default)]
    montant_max: Option<Yaml>,
    #[serde(default)]
    variante: Option<String>,
}

/// One case that did not give what it expected.
#[derive(Debug, Clone)]
pub struct Failure {
    pub file: String,
    pub line: usize,
    pub name: String,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub passed: usize,
    pub failures: Vec<Failure>,
    /// Files or cases that could not even be read.
    pub errors: Vec<Diagnostic>,
}

impl Report {
    pub fn failed(&self) -> usize {
        self.failures.len() + self.errors.len()
    }

    /// The closing line test runners print.
    pub fn summary(&self) -> String {
        format!("{} passed, {} failed", self.passed, self.failed())
    }
}

fn yaml_str(y: &Yaml) -> String {
    match y {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Bool(true) => "oui".into(),
        Yaml::Bool(false) => "non".into(),
        other => other.to_text(),
    }
}

fn expect_cents(y: &Yaml) -> Result<Option<i64>, String> {
    if let Yaml::Null = y {
        return Ok(None);
    }
    let s = yaml_str(y);
    if s == "aucun" {
        return Ok(None);
    }
    match Value::parse_literal(&s, Type::Montant)? {
        Value::Montant(d) => Ok(Some(
            rust_decimal::prelude::ToPrimitive::to_i64(&d).unwrap_or(i64::MAX),
        )),
        _ => Err(format!("montant attendu : « {s} »")),
    }
}

fn expect_rate(y: &Yaml) -> Result<Option<Decimal>, String> {
    if let Yaml::Null = y {
        return Ok(None);
    }
    let s = yaml_str(y);
    if s == "aucun" {
        return Ok(None);
    }
    crate::value::parse_number(&s).map(|d| Some(d.normalize()))
}

fn show_cents(c: Option<i64>) -> String {
    c.map(|c| crate::value::french_money(Decimal::from(c)))
        .unwrap_or_else(|| "aucun".into())
}

/// Runs every case of the given files against the programme.
pub fn run(programme: &Programme, files: &[SourceFile]) -> Report {
    let mut report = Report::default();
    for file in files {
        let cases: Vec<RawCase> = match crate::yaml::from_str(&file.text) {
            Ok(c) => c,
            Err(e) => {
                report.errors.push(file.yaml_error(&e));
                continue;
            }
        };
        for case in cases {
            let line = file
                .text
                .find(&format!("nom: {}", case.nom))
                .or_else(|| file.text.find(&case.nom))
                .map(|o| file.text[..o].matches('\n').count() + 1)
                .unwrap_or(1);
            let problems = run_case(programme, &case);
            if problems.is_empty() {
                report.passed += 1;
            } else {
                report.failures.push(Failure {
                    file: file.name.clone(),
                    line,
                    name: case.nom,
                    problems,
                });
            }
        }
    }
    report
}

fn run_case(programme: &Programme, case: &RawCase) -> Vec<String> {
    let rules = &programme.rules;
    let mut problems = Vec::new();
    let mut situation = Situation {
        date: Some(case.date_depot),
        ..Default::default()
    };
    for (name, y) in &case.situation {
        let Some(i) = rules.fact(name) else {
            problems.push(format!("fait inconnu dans la situation : « {name} »"));
            continue;
        };
        match Value::parse_literal(&yaml_str(y), rules.facts[i].ty) {
            Ok(v) => {
                situation.facts.insert(name.clone(), v);
            }
            Err(e) => problems.push(format!("fait « {name} » : {e}")),
        }
    }
    for (cat, y) in &case.depenses {
        match Cents::parse_euros(&yaml_str(y)) {
            Ok(c) => situation.expenses.push((cat.clone(), c)),
            Err(e) => problems.push(format!("dépense « {cat} » : {e}")),
        }
    }
    if !problems.is_empty() {
        return problems;
    }
    let ev = match programme.evaluate(&case.mesure, &situation) {
        Ok(ev) => ev,
        Err(e) => return vec![format!("évaluation impossible : {e}")],
    };
    let exp = &case.attendu;
    if ev.eligible != exp.eligible {
        problems.push(format!(
            "éligible : attendu {}, obtenu {} (motifs : {})",
            if exp.eligible { "oui" } else { "non" },
            if ev.eligible { "oui" } else { "non" },
            ev.reasons
                .iter()
                .map(|r| r.code.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let got_reasons: Vec<&str> = ev.reasons.iter().map(|r| r.code.as_str()).collect();
    let expected_reasons: Vec<&str> = match &exp.motifs {
        Some(m) => m.iter().map(String::as_str).collect(),
        None if exp.eligible => vec![],
        None => got_reasons.clone(),
    };
    let mut a = got_reasons.clone();
    let mut b = expected_reasons.clone();
    a.sort_unstable();
    b.sort_unstable();
    if a != b {
        problems.push(format!(
            "motifs : attendu [{}], obtenu [{}]",
            expected_reasons.join(", "),
            got_reasons.join(", ")
        ));
    }
    if let Some(m) = &exp.donnees_manquantes {
        let mut got: Vec<&str> = ev.missing.iter().map(|m| m.nom.as_str()).collect();
        let mut want: Vec<&str> = m.iter().map(String::as_str).collect();
        got.sort_unstable();
        want.sort_unstable();
        if got != want {
            problems.push(format!(
                "données manquantes : attendu [{}], obtenu [{}]",
                want.join(", "),
                got.join(", ")
            ));
        }
    }
    let cents =
        |label: &str, want: &Option<Yaml>, got: Option<Cents>, problems: &mut Vec<String>| {
            if let Some(w) = want {
                match expect_cents(w) {
                    Ok(w) => {
                        let g = got.map(|c| c.get());
                        if w != g {
                            problems.push(format!(
                                "{label} : attendu {}, obtenu {}",
                                show_cents(w),
                                show_cents(g)
                            ));
                        }
                    }
                    Err(e) => problems.push(format!("{label} attendu illisible : {e}")),
                }
            }
        };
    cents("assiette", &exp.assiette, ev.base, &mut problems);
    cents("montant", &exp.montant, ev.amount, &mut problems);
    cents(
        "montant max",
        &exp.montant_max,
        ev.amount_max,
        &mut problems,
    );
    let rate =
        |label: &str, want: &Option<Yaml>, got: Option<Decimal>, problems: &mut Vec<String>| {
            if let Some(w) = want {
                match expect_rate(w) {
                    Ok(w) => {
                        if w != got.map(|d| d.normalize()) {
                            problems.push(format!(
                                "{label} : attendu {}, obtenu {}",
                                w.map(crate::value::french_rate)
                                    .unwrap_or_else(|| "aucun".into()),
                                got.map(crate::value::french_rate)
                                    .unwrap_or_else(|| "aucun".into())
                            ));
                        }
                    }
                    Err(e) => problems.push(format!("{label} attendu illisible : {e}")),
                }
            }
        };
    rate("taux", &exp.taux, ev.rate, &mut problems);
    rate("taux max", &exp.taux_max, ev.rate_max, &mut problems);
    if let Some(v) = &exp.variante {
        let got = ev.territory.clone().unwrap_or_else(|| "national".into());
        if &got != v {
            problems.push(format!("variante : attendu {v}, obtenue {got}"));
        }
    }
    problems
}
