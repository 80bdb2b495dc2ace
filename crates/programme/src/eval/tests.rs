mod missing_and_in_force_tests {
    use crate::eval::*;
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

mod evaluator_tests {
    use crate::eval::*;

    /// Situations of every kind, drawn in a fixed pseudo-random order; runs of several share a
    /// territory and a date, as in a sweep.
    fn situations() -> Vec<Situation> {
        let kinds = [
            "commune",
            "epci",
            "departement",
            "region",
            "groupement",
            "autre",
        ];
        let natures = ["CC", "CA", "METRO", "aucune"];
        let regions = [
            None,
            Some("11"),
            Some("76"),
            Some("93"),
            Some("84"),
            Some("01"),
        ];
        let dates = ["2021-01-10", "2021-03-15", "2021-06-01", "2022-09-01"];
        let mut seed = 7u64;
        let mut pick = |n: usize| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            usize::try_from(seed >> 33).unwrap() % n
        };
        let mut out = Vec::new();
        for run in 0..120 {
            let date = NaiveDate::parse_from_str(dates[run % dates.len()], "%Y-%m-%d").unwrap();
            let region = regions[pick(regions.len())];
            for _ in 0..4 {
                let mut s = Situation {
                    date: Some(date),
                    ..Default::default()
                };
                let mut fact = |name: &str, v: Value| {
                    s.facts.insert(name.to_string(), v);
                };
                if pick(6) > 0 {
                    fact("type_demandeur", Value::text(kinds[pick(kinds.len())]));
                }
                if pick(5) > 0 {
                    let population = [300, 3_000, 60_000, 600_000][pick(4)];
                    fact("population", Value::Nombre(population.into()));
                }
                if let Some(r) = region {
                    fact("region", Value::text(r));
                }
                if pick(3) > 0 {
                    fact("couvre_departement", Value::Booleen(pick(2) == 0));
                }
                fact("nature_epci", Value::text(natures[pick(natures.len())]));
                if pick(2) == 0 {
                    fact("date_fin", Value::Date(date + chrono::Days::new(400)));
                }
                for name in [
                    "labo",
                    "maturite_avancee",
                    "deja_commence",
                    "portage_decisionnel",
                ] {
                    if pick(3) == 0 {
                        fact(name, Value::Booleen(pick(2) == 0));
                    }
                }
                if pick(3) == 0 {
                    fact("communes_rattachees", Value::Nombre(12.into()));
                }
                if pick(4) == 0 {
                    fact("financements_franceconnect", Value::Nombre(1.into()));
                }
                s.expenses = match pick(4) {
                    0 => Vec::new(),
                    1 => vec![("prestation".into(), Cents::from_euros(40_000))],
                    2 => vec![("formation".into(), Cents::new(1_234_567))],
                    _ => vec![
                        ("materiel".into(), Cents::from_euros(10_000)),
                        ("logiciel-hors-ue".into(), Cents::from_euros(30_000)),
                        ("prestation".into(), Cents::from_euros(5_000)),
                    ],
                };
                out.push(s);
            }
        }
        out
    }

    /// The sentence as it was written with `format!` and chrono's `strftime`.
    fn sentence_by_format(s: &Step) -> String {
        let mut out = format!("{} : {}", s.title, s.display);
        if let Some(f) = &s.formula {
            out.push_str(&format!(" (formule : {f})"));
        }
        if let Some(d) = &s.detail {
            out.push_str(&format!(" ; {d}"));
        }
        match (&s.source, s.since) {
            (Some(src), Some(since)) => out.push_str(&format!(
                " — valeur en vigueur depuis le {}, source {src}",
                since.format("%d/%m/%Y")
            )),
            (Some(src), None) => out.push_str(&format!(" — source {src}")),
            _ => {}
        }
        out
    }

    #[test]
    fn sentences_are_written_as_before() {
        let p = crate::itn7().unwrap();
        let rules = &p.rules;
        let mut steps = 0;
        for s in situations() {
            let prepared = rules.prepare(&s).unwrap();
            for i in 0..rules.national.measures.len() {
                let Ok(ev) = rules.evaluate_index(i, &prepared, true) else {
                    continue;
                };
                for step in &ev.trace {
                    assert_eq!(step.sentence(), sentence_by_format(step));
                    let mut appended = String::from("déjà là ; ");
                    step.write_sentence(&mut appended);
                    assert_eq!(appended, format!("déjà là ; {}", sentence_by_format(step)));
                    steps += 1;
                }
            }
        }
        assert!(steps > 100, "{steps} steps");
        // A parameter's date without its source is not shown, as before.
        let bare = Step {
            kind: StepKind::Parametre,
            name: "p".into(),
            title: "P".into(),
            display: "1".into(),
            raw: Value::Absent,
            formula: None,
            detail: None,
            source: None,
            since: NaiveDate::from_ymd_opt(2021, 1, 25),
        };
        assert_eq!(bare.sentence(), sentence_by_format(&bare));
    }

    #[test]
    fn an_evaluator_answers_as_independent_evaluations() {
        let p = crate::itn7().unwrap();
        let rules = &p.rules;
        let n = rules.national.measures.len();
        let prepared: Vec<Prepared> = situations()
            .iter()
            .map(|s| rules.prepare(s).unwrap())
            .collect();
        // Without trace, with trace, and both mixed within a situation.
        for pattern in 0..3 {
            let trace = |i: usize| match pattern {
                0 => false,
                1 => true,
                _ => i.is_multiple_of(3),
            };
            let alone: Vec<Vec<String>> = prepared
                .iter()
                .map(|s| {
                    (0..n)
                        .map(|i| format!("{:?}", rules.evaluate_index(i, s, trace(i))))
                        .collect()
                })
                .collect();
            let mut forward = rules.evaluator();
            let mut backward = rules.evaluator();
            for (s, expected) in prepared.iter().zip(&alone) {
                for (i, e) in expected.iter().enumerate() {
                    let got = format!("{:?}", forward.evaluate_index(i, s, trace(i)));
                    assert_eq!(&got, e, "measure {i}, pattern {pattern}");
                }
                for (i, e) in expected.iter().enumerate().rev() {
                    let got = format!("{:?}", backward.evaluate_index(i, s, trace(i)));
                    assert_eq!(&got, e, "measure {i} (backwards), pattern {pattern}");
                }
            }
        }
    }

    #[test]
    fn an_evaluator_follows_situations_that_change_little_by_little() {
        // Rule values are kept from one situation to the next unless a fact they read, or the
        // expenses, changed: situations that change one thing at a time, and come back, must
        // get the answers of independent evaluations.
        let p = crate::itn7().unwrap();
        let rules = &p.rules;
        let n = rules.national.measures.len();
        let changes: Vec<fn(&mut Situation)> = vec![
            |s| {
                s.facts
                    .insert("population".into(), Value::Nombre(14_999.into()));
            },
            |s| {
                s.facts
                    .insert("population".into(), Value::Nombre(Decimal::new(149_990, 1)));
            },
            |s| {
                s.facts.remove("population");
            },
            |s| {
                s.facts.insert("type_demandeur".into(), Value::text("epci"));
            },
            |s| {
                s.facts.insert("labo".into(), Value::Booleen(false));
            },
            |s| {
                s.facts.remove("date_fin");
            },
            |s| {
                s.facts
                    .insert("communes_rattachees".into(), Value::Nombre(31.into()));
            },
            |s| {
                s.facts.insert("deja_commence".into(), Value::Booleen(true));
            },
            |s| {
                s.expenses = vec![("prestation".into(), Cents::from_euros(333_334))];
            },
            |s| {
                // More cost: a cap on the other lines (non-EU licences) moves.
                s.expenses
                    .push(("prestation".into(), Cents::from_euros(50_000)));
            },
            |s| {
                s.expenses.clear();
            },
        ];
        let mut evaluator = rules.evaluator();
        let mut compared = 0;
        for (k, base) in situations().into_iter().enumerate().step_by(5) {
            // The situation, each change and the situation again after it, then every change
            // piled up.
            let mut chain = vec![base.clone()];
            for change in &changes {
                let mut s = base.clone();
                change(&mut s);
                chain.push(s);
                chain.push(base.clone());
            }
            let mut piled = base.clone();
            for change in &changes {
                change(&mut piled);
                chain.push(piled.clone());
            }
            for (j, s) in chain.iter().enumerate() {
                let s = rules.prepare(s).unwrap();
                for i in 0..n {
                    let alone = rules.evaluate_index(i, &s, false);
                    let expected = alone.as_ref().map(evaluation_summary).map_err(Clone::clone);
                    let got = if (i + j + k) % 3 == 0 {
                        // Worded: every sentence alike too.
                        let got = evaluator.evaluate_index(i, &s, false);
                        assert_eq!(
                            format!("{got:?}"),
                            format!("{alone:?}"),
                            "situation {k}, step {j}, measure {i}"
                        );
                        got.map(|e| evaluation_summary(&e))
                    } else {
                        evaluator.outcome_index(i, &s).map(|o| outcome_summary(&o))
                    };
                    assert_eq!(got, expected, "situation {k}, step {j}, measure {i}");
                    compared += 1;
                }
            }
        }
        assert!(compared > 10_000, "{compared}");
    }

    #[test]
    fn the_verification_switch_panics_when_a_kept_value_is_wrong() {
        let p = crate::itn7().unwrap();
        let rules = &p.rules;
        let mut s = Situation {
            date: NaiveDate::from_ymd_opt(2021, 6, 1),
            ..Default::default()
        };
        s.facts
            .insert("type_demandeur".into(), Value::text("commune"));
        s.facts
            .insert("population".into(), Value::Nombre(3_000.into()));
        s.facts.insert("region".into(), Value::text("84"));
        let s = rules.prepare(&s).unwrap();
        let i = rules.measure_index("axe1").unwrap();
        // Every condition value kept by the evaluator turned over: the next answer for the same
        // situation reads them again.
        let flip = |ev: &mut Evaluator<'_>| {
            for m in &mut ev.scratch.memo {
                if let Value::Booleen(b) = m.value {
                    m.value = Value::Booleen(!b);
                }
            }
        };
        let mut unchecked = rules.evaluator().with_verification(Verification::Off);
        let right = unchecked.outcome_index(i, &s).map(|o| outcome_summary(&o));
        flip(&mut unchecked);
        let wrong = unchecked.outcome_index(i, &s).map(|o| outcome_summary(&o));
        assert_ne!(
            wrong, right,
            "the values turned over must change the answer"
        );

        let mut checked = rules
            .evaluator()
            .with_verification(Verification::AgainstScratch);
        assert_eq!(
            checked.outcome_index(i, &s).map(|o| outcome_summary(&o)),
            right
        );
        flip(&mut checked);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            checked.outcome_index(i, &s).map(|o| outcome_summary(&o))
        }));
        let said = |r: std::thread::Result<Result<String, EvalError>>| match r {
            Err(p) => p.downcast::<String>().map(|m| *m).unwrap_or_default(),
            Ok(answer) => format!("no panic: {answer:?}"),
        };
        let m = said(outcome);
        assert!(m.starts_with("incremental outcome differs"), "{m}");
        flip(&mut checked);
        let worded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            flip(&mut checked);
            checked
                .evaluate_index(i, &s, false)
                .map(|e| evaluation_summary(&e))
        }));
        let m = said(worded);
        assert!(m.starts_with("incremental evaluation differs"), "{m}");
    }

    #[test]
    fn an_outcome_says_what_the_evaluation_says() {
        let p = crate::itn7().unwrap();
        let rules = &p.rules;
        let n = rules.national.measures.len();
        let mut outcomes = rules.evaluator();
        let mut mixed = rules.evaluator();
        let (mut eligible, mut ineligible, mut errors) = (0, 0, 0);
        for s in situations() {
            let s = rules.prepare(&s).unwrap();
            for i in 0..n {
                let expected = rules
                    .evaluate_index(i, &s, false)
                    .map(|e| evaluation_summary(&e));
                match &expected {
                    Ok(e) if e.contains("eligible=true") => eligible += 1,
                    Ok(_) => ineligible += 1,
                    Err(_) => errors += 1,
                }
                let got = outcomes.outcome_index(i, &s).map(|o| outcome_summary(&o));
                assert_eq!(got, expected, "measure {i}");
                // Outcomes and evaluations through one evaluator do not disturb each other.
                let got = if i % 2 == 0 {
                    mixed.outcome_index(i, &s).map(|o| outcome_summary(&o))
                } else {
                    mixed
                        .evaluate_index(i, &s, i % 3 == 0)
                        .map(|e| evaluation_summary(&e))
                };
                assert_eq!(got, expected, "measure {i}, mixed");
            }
        }
        // The situations reach every kind of answer.
        assert!(
            eligible > 100 && ineligible > 100 && errors > 0,
            "{eligible} {ineligible} {errors}"
        );
    }

    #[test]
    fn small_decimals_are_computed_as_rust_decimal_does() {
        let mut values = Vec::new();
        for m in [
            0i64,
            1,
            5,
            9,
            10,
            50,
            99,
            100,
            12_345,
            4_000_000,
            1 << 40,
            (1 << 62) - 1,
        ] {
            for scale in [0, 1, 2, 3, 7, 14, 20, 28] {
                values.push(Decimal::new(m, scale));
                values.push(Decimal::new(-m, scale));
            }
        }
        let (mut fast, mut all) = (0, 0);
        for &x in &values {
            for &y in &values {
                for op in [BinOp::Add, BinOp::Sub, BinOp::Mul] {
                    all += 1;
                    let Some(got) = small_decimal(op, x, y) else {
                        continue;
                    };
                    fast += 1;
                    let want = match op {
                        BinOp::Add => x.checked_add(y),
                        BinOp::Sub => x.checked_sub(y),
                        _ => x.checked_mul(y),
                    }
                    .unwrap();
                    assert_eq!(
                        got.serialize(),
                        want.serialize(),
                        "{x} {op:?} {y}: {got} / {want}"
                    );
                }
            }
        }
        assert!(fast > 5_000, "{fast} of {all}");
    }

    #[test]
    fn rounding_in_integers_matches_decimal_rounding() {
        let reference = |d: Decimal, r: Rounding| {
            let hundred = Decimal::ONE_HUNDRED;
            match r {
                Rounding::CentDown => d.floor(),
                Rounding::EuroDown => (d / hundred).floor() * hundred,
                Rounding::EuroNearest => {
                    (d / hundred).round_dp_with_strategy(
                        0,
                        rust_decimal::RoundingStrategy::MidpointAwayFromZero,
                    ) * hundred
                }
            }
        };
        let mut values = Vec::new();
        for m in [
            0i64,
            1,
            49,
            50,
            51,
            99,
            100,
            149,
            150,
            1_999_950,
            2_000_000,
            123_456_789,
        ] {
            for scale in [0, 1, 2, 3, 7, 26, 27, 28] {
                values.push(Decimal::new(m, scale));
                values.push(Decimal::new(-m, scale));
            }
        }
        values.push(Decimal::MAX);
        values.push(Decimal::new(4_000_000, 0) * Decimal::new(5, 1));
        values.push(Decimal::new(3_333_333, 0) * Decimal::new(8, 1));
        for d in values {
            for r in [
                Rounding::CentDown,
                Rounding::EuroDown,
                Rounding::EuroNearest,
            ] {
                let (got, want) = (round(d, r), reference(d, r));
                assert_eq!(got, want, "{d} {r:?}");
                assert_eq!(got.scale(), want.scale(), "{d} {r:?}");
                assert_eq!(got.to_string(), want.to_string(), "{d} {r:?}");
            }
        }
    }

    #[test]
    fn an_unknown_fact_is_still_refused() {
        let p = crate::itn7().unwrap();
        let mut s = Situation {
            date: NaiveDate::from_ymd_opt(2021, 6, 1),
            ..Default::default()
        };
        s.facts.insert("aaa".into(), Value::Booleen(true));
        s.facts
            .insert("population".into(), Value::Nombre(10.into()));
        s.facts.insert("zzz".into(), Value::Booleen(true));
        assert!(matches!(
            p.rules.prepare(&s),
            Err(EvalError::UnknownFact(name, _)) if name == "aaa"
        ));
        s.facts.remove("aaa");
        assert!(matches!(
            p.rules.prepare(&s),
            Err(EvalError::UnknownFact(name, _)) if name == "zzz"
        ));
        s.facts.remove("zzz");
        assert!(p.rules.prepare(&s).is_ok());
    }
}

mod proposal_bounds_tests {
    use crate::eval::*;
    use guichet_domain::dossier::{
        transition, Actor, Event, Grant, Justification, Proposal, Refusal, State,
    };

    fn situation(p: &crate::Programme, facts: &[(&str, &str)], cost: i64) -> Situation {
        let mut s = Situation {
            date: NaiveDate::from_ymd_opt(2021, 6, 1),
            ..Default::default()
        };
        for (name, v) in facts {
            let i = p.rules.fact(name).unwrap();
            s.facts.insert(
                name.to_string(),
                Value::parse_literal(v, p.rules.facts[i].ty).unwrap(),
            );
        }
        s.expenses
            .push(("prestation".into(), Cents::from_euros(cost)));
        s
    }

    fn pct(p: u32) -> Rate {
        Rate::from_basis_points(p * 100).unwrap()
    }

    #[test]
    fn an_evaluation_gives_the_bounds_of_a_proposal() {
        let p = crate::itn7().unwrap();
        // Île-de-France, over 15,000 inhabitants: 50 %, exceptionally 80 % (the case of
        // programmes/itn7/tests/variantes-idf.yaml).
        let s = situation(
            &p,
            &[
                ("type_demandeur", "commune"),
                ("population", "15001"),
                ("region", "11"),
                ("date_fin", "2022-06-30"),
            ],
            10_000,
        );
        let ev = p.evaluate("axe3.v1.relation-usager", &s).unwrap();
        let b = ev.proposal_bounds().unwrap();
        assert_eq!(
            (b.base, b.proposed_amount, b.max_amount, b.rate, b.max_rate),
            (
                Cents::from_euros(10_000),
                Cents::from_euros(5_000),
                Cents::from_euros(8_000),
                pct(50),
                pct(80)
            )
        );
        // The browser scenario of issue 9: the exceptional rate, with a justification.
        let propose = |justification: Option<&str>| {
            Event::Propose(Proposal::Favourable {
                grant: Grant {
                    amount: Cents::from_euros(8_000),
                    rate: pct(80),
                },
                justification: justification.map(|j| Justification::parse(j).unwrap()),
                bounds: b,
            })
        };
        assert!(matches!(
            transition(State::EnInstruction, &propose(None), &Actor::Instructor),
            Err(Refusal::JustificationForRate { .. })
        ));
        assert!(transition(
            State::EnInstruction,
            &propose(Some("projet structurant")),
            &Actor::Instructor
        )
        .is_ok());
        // Too late in Île-de-France: not eligible, no favourable proposal possible.
        let late = situation(
            &p,
            &[
                ("type_demandeur", "commune"),
                ("population", "3000"),
                ("region", "11"),
                ("date_fin", "2022-11-01"),
            ],
            10_000,
        );
        let ev = p.evaluate("axe3.v1.relation-usager", &late).unwrap();
        assert!(ev.proposal_bounds().is_none());
    }

    #[test]
    fn the_franceconnect_desk_accepts_its_flat_amount_by_itself() {
        use guichet_domain::dossier::AutomaticAcceptance;
        let p = crate::itn7().unwrap();
        assert!(p.routing.decides_automatically("axe2.franceconnect"));
        let s = situation(
            &p,
            &[
                ("type_demandeur", "commune"),
                ("population", "80"),
                ("region", "84"),
            ],
            8_000,
        );
        let ev = p.evaluate("axe2.franceconnect", &s).unwrap();
        let bounds = ev.proposal_bounds().unwrap();
        let t = transition(
            State::Depose,
            &Event::AcceptAutomatically(AutomaticAcceptance {
                bounds,
                remaining_envelope: Cents::from_euros(1_000_000),
            }),
            &Actor::System,
        )
        .unwrap();
        assert_eq!(t.to, State::Accepte);
        assert_eq!(
            t.grant,
            Some(Grant {
                amount: Cents::from_euros(5_000),
                rate: Rate::FULL
            })
        );
    }

    #[test]
    fn engine_rates_convert_exactly_or_not_at_all() {
        use std::str::FromStr;
        let d = |s: &str| Decimal::from_str(s).unwrap();
        assert_eq!(rate_of(d("0.8")), Some(pct(80)));
        assert_eq!(rate_of(d("1")), Some(Rate::FULL));
        assert_eq!(rate_of(d("0.125")), Rate::from_basis_points(1250).ok());
        assert_eq!(rate_of(d("0.33333")), None);
        assert_eq!(rate_of(d("1.01")), None);
        assert_eq!(rate_of(d("-0.5")), None);
    }
}
