//! Randomised equivalence: an [`Evaluator`] keeps rule values from one measure and one
//! situation to the next; whatever the situations and their order, its answers must be those
//! of independent evaluations (`Rules::evaluate_index`, which starts from nothing), on every
//! ITN7 measure, worded or not, with or without the explanation.

use chrono::NaiveDate;
use guichet_domain::Cents;
use guichet_programme::eval::{evaluation_summary, outcome_summary};
use guichet_programme::rules::Rules;
use guichet_programme::{
    Evaluator, Programme, Situation, SourceFile, Type, Value, Verification, PROGRAMME_FILES,
};
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::sync::OnceLock;

fn itn7() -> &'static Programme {
    static P: OnceLock<Programme> = OnceLock::new();
    P.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../programmes/itn7");
        let files: Vec<SourceFile> = PROGRAMME_FILES
            .iter()
            .map(|name| {
                let text = std::fs::read_to_string(dir.join(name)).expect("ITN7 file");
                SourceFile::new(*name, text)
            })
            .collect();
        Programme::load(&files).unwrap_or_else(|d| panic!("{d}"))
    })
}

fn date(days: u32) -> NaiveDate {
    // From 2020-12-01 to early 2023: before the rules, each parameter's dates, after them.
    NaiveDate::from_ymd_opt(2020, 12, 1).expect("valid date") + chrono::Days::new(u64::from(days))
}

/// The dates parameters change on, and the days around them.
fn a_date() -> impl Strategy<Value = NaiveDate> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "2021-01-24", "2021-01-25", "2021-03-15", "2021-06-01", "2021-06-27", "2021-06-28",
            "2021-12-31", "2022-06-30", "2022-10-31", "2022-11-01",
        ])
        .prop_map(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("valid date")),
        1 => (0u32..800).prop_map(date),
    ]
}

/// A count near the programme's thresholds, sometimes written with decimals (`15000.0` is the
/// same number written otherwise: the evaluator must not take one for the other's key).
fn a_number() -> impl Strategy<Value = Value> {
    let near = prop::sample::select(vec![
        0i64, 1, 2, 3, 12, 30, 31, 299, 300, 3_499, 3_500, 3_501, 14_999, 15_000, 15_001, 20_000,
        35_000, 60_000, 100_000, 300_000, 600_000, 2_000_000,
    ]);
    prop_oneof![
        4 => near.clone().prop_map(|n| Value::Nombre(Decimal::from(n))),
        1 => (near, 1u32..3).prop_map(|(n, scale)| {
            Value::Nombre(Decimal::new(n * 10i64.pow(scale), scale))
        }),
        1 => (0i64..3_000_000).prop_map(|n| Value::Nombre(Decimal::from(n))),
    ]
}

/// A value of the fact's type; `None`: the situation does not give it.
fn a_fact(rules: &Rules, i: usize) -> BoxedStrategy<Option<Value>> {
    let def = &rules.facts[i];
    let value: BoxedStrategy<Value> = match def.ty {
        Type::Nombre => a_number().boxed(),
        Type::Montant => (0i64..100_000_000)
            .prop_map(|c| Value::Montant(Decimal::from(c)))
            .boxed(),
        Type::Date => a_date().prop_map(Value::Date).boxed(),
        Type::Booleen => any::<bool>().prop_map(Value::Booleen).boxed(),
        Type::Texte => {
            let choices: Vec<String> = match (&def.allowed, def.name.as_str()) {
                (Some(allowed), _) => allowed.clone(),
                // Régions with a variant, without one, and codes of nowhere.
                (None, "region") => ["11", "93", "76", "84", "01", "94", "XX"]
                    .map(String::from)
                    .to_vec(),
                (None, _) => vec!["a".into(), "b".into()],
            };
            prop::sample::select(choices)
                .prop_map(|t| Value::text(&t))
                .boxed()
        }
        Type::Any => Just(Value::Absent).boxed(),
    };
    prop_oneof![1 => Just(None), 3 => value.prop_map(Some)].boxed()
}

fn expenses(rules: &Rules) -> BoxedStrategy<Vec<(String, Cents)>> {
    let categories: Vec<String> = rules.categories.iter().map(|c| c.id.clone()).collect();
    let amount = prop_oneof![
        3 => prop::sample::select(vec![0i64, 1, 100_000, 1_000_001, 4_000_000, 33_333_333]),
        2 => 0i64..60_000_000,
    ];
    prop::collection::vec(
        (prop::sample::select(categories), amount).prop_map(|(c, a)| (c, Cents::new(a))),
        0..4,
    )
    .boxed()
}

/// A situation drawn over every declared fact (the filing date is the situation's date).
fn a_situation() -> BoxedStrategy<Situation> {
    let rules = &itn7().rules;
    let facts: Vec<(String, BoxedStrategy<Option<Value>>)> = (0..rules.facts.len())
        .filter(|&i| rules.facts[i].name != "date_depot")
        .map(|i| (rules.facts[i].name.clone(), a_fact(rules, i)))
        .collect();
    let names: Vec<String> = facts.iter().map(|(n, _)| n.clone()).collect();
    let values: Vec<BoxedStrategy<Option<Value>>> = facts.into_iter().map(|(_, s)| s).collect();
    (a_date(), values, expenses(rules))
        .prop_map(move |(date, values, expenses)| Situation {
            date: Some(date),
            facts: names
                .iter()
                .zip(values)
                .filter_map(|(n, v)| v.map(|v| (n.clone(), v)))
                .collect(),
            expenses,
        })
        .boxed()
}

/// One thing changed in a situation.
#[derive(Debug, Clone)]
enum Change {
    Fact(String, Option<Value>),
    Expenses(Vec<(String, Cents)>),
    Date(NaiveDate),
    /// Back to the situation the sequence started from.
    Back,
}

fn a_change() -> BoxedStrategy<Change> {
    let rules = &itn7().rules;
    let facts: Vec<BoxedStrategy<Change>> = (0..rules.facts.len())
        .filter(|&i| rules.facts[i].name != "date_depot")
        .map(|i| {
            let name = rules.facts[i].name.clone();
            a_fact(rules, i)
                .prop_map(move |v| Change::Fact(name.clone(), v))
                .boxed()
        })
        .collect();
    prop_oneof![
        6 => prop::strategy::Union::new(facts),
        2 => expenses(rules).prop_map(Change::Expenses),
        1 => a_date().prop_map(Change::Date),
        1 => Just(Change::Back),
    ]
    .boxed()
}

/// How a measure is asked for.
#[derive(Debug, Clone, Copy)]
enum Ask {
    Outcome,
    Worded,
    Explained,
}

fn an_ask() -> impl Strategy<Value = Ask> {
    prop_oneof![4 => Just(Ask::Outcome), 2 => Just(Ask::Worded), 1 => Just(Ask::Explained)]
}

/// Asks every measure of a situation, in the given order and manner, of one evaluator, and
/// compares each answer with an independent evaluation.
fn check(
    evaluator: &mut Evaluator<'_>,
    situation: &Situation,
    order: &[(usize, Ask)],
) -> Result<(), TestCaseError> {
    let rules = &itn7().rules;
    let n = rules.national.measures.len();
    let Ok(prepared) = rules.prepare(situation) else {
        return Ok(());
    };
    for &(k, ask) in order {
        let i = k % n;
        match ask {
            Ask::Outcome => {
                let alone = rules
                    .evaluate_index(i, &prepared, false)
                    .map(|e| evaluation_summary(&e));
                let got = evaluator
                    .outcome_index(i, &prepared)
                    .map(|o| outcome_summary(&o));
                prop_assert_eq!(got, alone, "measure {}", i);
            }
            Ask::Worded | Ask::Explained => {
                let trace = matches!(ask, Ask::Explained);
                let alone = rules.evaluate_index(i, &prepared, trace);
                let got = evaluator.evaluate_index(i, &prepared, trace);
                // Every sentence alike, the explanation's steps too.
                prop_assert_eq!(format!("{got:?}"), format!("{alone:?}"), "measure {}", i);
            }
        }
    }
    Ok(())
}

fn an_order() -> impl Strategy<Value = Vec<(usize, Ask)>> {
    prop::collection::vec((0usize..64, an_ask()), 1..20)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 96,
        ..ProptestConfig::default()
    })]

    /// Unrelated situations one after another, each measure asked in a random order and
    /// manner.
    #[test]
    fn an_evaluator_answers_as_independent_evaluations_for_random_situations(
        situations in prop::collection::vec((a_situation(), an_order()), 1..8)
    ) {
        // Compared here, not inside: a difference shrinks to a small case.
        let mut evaluator = itn7().rules.evaluator().with_verification(Verification::Off);
        for (s, order) in &situations {
            check(&mut evaluator, s, order)?;
        }
    }

    /// A situation changed one thing at a time (a fact, the expenses, the date), sometimes
    /// back to where it started: the case the evaluator keeps the most for.
    #[test]
    fn an_evaluator_follows_random_changes_as_independent_evaluations_do(
        base in a_situation(),
        changes in prop::collection::vec((a_change(), an_order()), 1..16),
        first in an_order(),
    ) {
        let mut evaluator = itn7().rules.evaluator().with_verification(Verification::Off);
        check(&mut evaluator, &base, &first)?;
        let mut s = base.clone();
        for (change, order) in &changes {
            match change {
                Change::Fact(name, Some(v)) => {
                    s.facts.insert(name.clone(), v.clone());
                }
                Change::Fact(name, None) => {
                    s.facts.remove(name);
                }
                Change::Expenses(e) => s.expenses.clone_from(e),
                Change::Date(d) => s.date = Some(*d),
                Change::Back => s = base.clone(),
            }
            check(&mut evaluator, &s, order)?;
        }
    }

    /// Many applicants of one territory at one date, as a sweep sees them: each measure in
    /// order, through `Outcome`s.
    #[test]
    fn a_sweep_answers_as_independent_evaluations(
        situations in prop::collection::vec(a_situation(), 2..24),
        day in a_date(),
        region in prop::sample::select(vec!["11", "93", "76", "84"]),
    ) {
        let rules = &itn7().rules;
        let n = rules.national.measures.len();
        let order: Vec<(usize, Ask)> = (0..n).map(|i| (i, Ask::Outcome)).collect();
        let mut evaluator = rules.evaluator().with_verification(Verification::Off);
        for mut s in situations {
            s.date = Some(day);
            s.facts.insert("region".into(), Value::text(region));
            check(&mut evaluator, &s, &order)?;
        }
    }
}
