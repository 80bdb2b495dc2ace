//! Rules-engine sweep benchmark: every measure of ITN7 for every applicant of the 2021
//! referential (each commune, each EPCI with its member communes, each département, each
//! région), on one thread, without a database; and the time to load and check the programme.
//!
//!     cargo bench -p guichet-app --bench simulation
//!
//! Targets (product owner): the whole sweep under 300 ms on one core; loading and checking the
//! ITN7 files under 50 ms. See docs/performance.md for the figures.
//!
//! Reads `decoupage-administratif-2021` from `node_modules` (installed by `npm ci`), or from the
//! folder named by `GUICHET_NPM_DIR`. Building the applicants and their situations is not
//! timed; the sweep is: for each applicant, `prepare` once, then every measure without trace.

use chrono::NaiveDate;
use guichet_app::referentiel::import::{locate, read_vintage};
use guichet_app::simulation::{Applicant, Member};
use guichet_domain::{Cents, Vintage};
use guichet_programme::{Programme, Situation, Value};
use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Timed sweeps, unless `GUICHET_BENCH_SWEEPS` says how many (one, under a profiler).
const SWEEPS: usize = 10;
const LOADS: usize = 20;
const SWEEP_TARGET_MS: f64 = 300.0;
const LOAD_TARGET_MS: f64 = 50.0;

fn verdict(ms: f64, target: f64) -> &'static str {
    if ms < target {
        "met"
    } else {
        "NOT met"
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// What one sweep counted: enough to keep the work observable.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    evaluations: u64,
    errors: u64,
    /// Situations `prepare` refused (each counts its measures as errors).
    refused: u64,
    eligible: u64,
    /// Reason codes given (an ineligible answer has at least one).
    reasons: u64,
    amount_cents: i64,
}

fn npm_dir() -> PathBuf {
    match std::env::var_os("GUICHET_NPM_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../node_modules"),
    }
}

/// The project every applicant files: the same one (`Projects::Same`), or one of its own
/// (`Projects::Varied`: its cost, its expense lines, its answers and its filing date change
/// from one applicant to the next, so that no rule reading them keeps its value).
#[derive(Clone, Copy, PartialEq)]
enum Projects {
    Same,
    Varied,
}

fn situation(applicant: &Applicant, k: usize, projects: Projects) -> Situation {
    let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("valid date");
    let mut facts: BTreeMap<String, Value> = applicant.facts();
    facts.insert("date_fin".into(), Value::Date(date(2022, 6, 30)));
    let number = |n: usize| Value::Nombre(rust_decimal::Decimal::from(n));
    if projects == Projects::Same {
        facts.insert("communes_rattachees".into(), number(12));
        facts.insert("labo".into(), Value::Booleen(true));
        facts.insert("maturite_avancee".into(), Value::Booleen(true));
        return Situation {
            date: Some(date(2021, 6, 1)),
            facts,
            expenses: vec![("prestation".into(), Cents::from_euros(40_000))],
        };
    }
    facts.insert("communes_rattachees".into(), number(k % 41));
    facts.insert("labo".into(), Value::Booleen(!k.is_multiple_of(3)));
    facts.insert(
        "maturite_avancee".into(),
        Value::Booleen(!k.is_multiple_of(5)),
    );
    facts.insert("deja_commence".into(), Value::Booleen(k.is_multiple_of(7)));
    facts.insert("financements_franceconnect".into(), number(k % 2));
    // A cost between 1,000.01 € and about 250,000 €, cents included.
    let cost = 100_001 + (k as i64 * 7_919_993) % 25_000_000;
    let mut expenses = vec![("prestation".into(), Cents::new(cost))];
    if k % 4 == 1 {
        expenses.push(("logiciel-hors-ue".into(), Cents::new(cost / 3)));
    }
    if k % 6 == 2 {
        expenses.push(("materiel".into(), Cents::new(cost / 5)));
    }
    Situation {
        // Two filing dates, alternating in runs of 1,000 applicants.
        date: Some(if (k / 1000).is_multiple_of(2) {
            date(2021, 6, 1)
        } else {
            date(2021, 6, 2)
        }),
        facts,
        expenses,
    }
}

/// Every applicant of the vintage, as the simulator would resolve it.
fn applicants(npm: &std::path::Path) -> Vec<Applicant> {
    let (data_dir, source) = match locate(npm, Vintage::Y2021) {
        Ok(found) => found,
        Err(e) => {
            eprintln!("{e}");
            eprintln!("référentiel 2021 introuvable : lancez « npm ci » à la racine du projet (ou GUICHET_NPM_DIR=…/node_modules)");
            std::process::exit(2);
        }
    };
    let data = match read_vintage(&data_dir) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{source} illisible : {e} ; lancez « npm ci » à la racine du projet");
            std::process::exit(2);
        }
    };
    let year = Vintage::Y2021.year();
    let mut dep_counts: HashMap<String, usize> = HashMap::new();
    let mut by_dep: HashMap<&str, Vec<Member>> = HashMap::new();
    let mut by_region: HashMap<&str, Vec<Member>> = HashMap::new();
    let mut by_epci: HashMap<&str, Vec<Member>> = HashMap::new();
    let mut out = Vec::new();
    for c in &data.communes {
        let m = Member {
            insee: c.insee.clone(),
            population: c.population,
            departement: c.departement_code.clone(),
            region: c.region_code.clone(),
        };
        *dep_counts.entry(c.departement_code.clone()).or_default() += 1;
        by_dep
            .entry(c.departement_code.as_str())
            .or_default()
            .push(m.clone());
        if let Some(r) = &c.region_code {
            by_region.entry(r.as_str()).or_default().push(m.clone());
        }
        if let Some(e) = &c.epci_siren {
            by_epci.entry(e.as_str()).or_default().push(m.clone());
        }
        out.push((
            format!("commune:{}", c.insee),
            c.name.clone(),
            "commune",
            vec![m],
            None,
        ));
    }
    for e in &data.epci {
        let members = by_epci.remove(e.siren.as_str()).unwrap_or_default();
        out.push((
            format!("epci:{}", e.siren),
            e.name.clone(),
            "epci",
            members,
            Some(e.epci_type.clone()),
        ));
    }
    for d in &data.departements {
        let members = by_dep.remove(d.code.as_str()).unwrap_or_default();
        out.push((
            format!("departement:{}", d.code),
            d.name.clone(),
            "departement",
            members,
            None,
        ));
    }
    for r in &data.regions {
        let members = by_region.remove(r.code.as_str()).unwrap_or_default();
        out.push((
            format!("region:{}", r.code),
            r.name.clone(),
            "region",
            members,
            None,
        ));
    }
    println!(
        "referential 2021 ({source}): {} communes, {} EPCI, {} départements, {} régions",
        data.communes.len(),
        data.epci.len(),
        data.departements.len(),
        data.regions.len()
    );
    out.into_iter()
        .map(|(reference, name, kind, members, nature)| {
            Applicant::from_members(reference, name, kind, &members, &dep_counts, nature, year)
        })
        .collect()
}

/// How measures are evaluated.
#[derive(Clone, Copy)]
enum Api {
    /// One [`Evaluator`](guichet_programme::eval::Evaluator), answering with an
    /// [`Outcome`](guichet_programme::Outcome): the same answer as an `Evaluation` without
    /// its wording (reason codes, not sentences), as a sweep needs.
    Outcome,
    /// One [`Evaluator`](guichet_programme::eval::Evaluator) for the whole sweep, as a sweep
    /// should: buffers kept, the rules that do not depend on the measure computed once per
    /// applicant, and those that depend on the date and the territory alone once per run of
    /// applicants sharing them.
    Evaluator,
    /// `Rules::evaluate_index`, one independent call per measure.
    PerCall,
}

/// One sweep: for each applicant, prepare its situation once and evaluate every measure, on
/// this thread.
fn sweep(programme: &Programme, situations: &[Situation], api: Api, trace: bool) -> Tally {
    let rules = &programme.rules;
    let mut evaluator = rules.evaluator();
    let n = rules.national.measures.len();
    let mut t = Tally::default();
    for s in situations {
        let p = match rules.prepare(s) {
            Ok(p) => p,
            Err(e) => {
                black_box(&e);
                t.refused += 1;
                t.evaluations += n as u64;
                t.errors += n as u64;
                continue;
            }
        };
        for i in 0..n {
            t.evaluations += 1;
            if let Api::Outcome = api {
                match evaluator.outcome_index(i, &p) {
                    Ok(o) => {
                        if o.eligible {
                            t.eligible += 1;
                        }
                        t.reasons += o.reasons().count() as u64;
                        t.amount_cents += o.amount.map(|c| c.get()).unwrap_or(0);
                        black_box(&o);
                    }
                    Err(e) => {
                        t.errors += 1;
                        black_box(&e);
                    }
                }
                continue;
            }
            let result = match api {
                Api::Evaluator | Api::Outcome => evaluator.evaluate_index(i, &p, trace),
                Api::PerCall => rules.evaluate_index(i, &p, trace),
            };
            match result {
                Ok(ev) => {
                    if ev.eligible {
                        t.eligible += 1;
                    }
                    t.reasons += ev.reasons.len() as u64;
                    t.amount_cents += ev.amount.map(|c| c.get()).unwrap_or(0);
                    black_box(&ev);
                }
                Err(e) => {
                    t.errors += 1;
                    black_box(&e);
                }
            }
        }
    }
    t
}

fn main() {
    // Load and check the built-in programme.
    let mut loads = Vec::with_capacity(LOADS);
    let mut programme = None;
    for _ in 0..LOADS {
        let t = Instant::now();
        let p = guichet_app::programme::itn7();
        loads.push(t.elapsed());
        programme = Some(black_box(p));
    }
    let programme = match programme {
        Some(Ok(p)) => p,
        Some(Err(d)) => panic!("ITN7 ne se charge pas :\n{d}"),
        None => unreachable!(),
    };
    loads.sort();
    let load_median = ms(loads[LOADS / 2]);
    println!(
        "load + check itn7 ({} runs): min {:.2} ms, median {:.2} ms, max {:.2} ms (target < {LOAD_TARGET_MS} ms: {})",
        LOADS,
        ms(loads[0]),
        load_median,
        ms(loads[LOADS - 1]),
        verdict(load_median, LOAD_TARGET_MS)
    );

    // Setup, not timed: the applicants and their situations.
    let applicants = applicants(&npm_dir());
    let situations: Vec<Situation> = applicants
        .iter()
        .enumerate()
        .map(|(k, a)| situation(a, k, Projects::Same))
        .collect();
    let varied: Vec<Situation> = applicants
        .iter()
        .enumerate()
        .map(|(k, a)| situation(a, k, Projects::Varied))
        .collect();
    let n_measures = programme.rules.national.measures.len();
    println!(
        "{} applicants × {} measures = {} evaluations per sweep",
        applicants.len(),
        n_measures,
        applicants.len() * n_measures
    );

    // The timed sweeps; one warm-up sweep first (page faults, caches).
    let sweeps = std::env::var("GUICHET_BENCH_SWEEPS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(SWEEPS);
    let timed = |situations: &[Situation], label: &str| -> Tally {
        let run = || {
            let t = Instant::now();
            let tally = sweep(&programme, situations, Api::Outcome, false);
            (t.elapsed(), tally)
        };
        let (_, reference) = run();
        let mut times = Vec::with_capacity(sweeps);
        for _ in 0..sweeps {
            let (d, tally) = run();
            assert_eq!(
                tally, reference,
                "a sweep must give the same answer every time"
            );
            times.push(d);
        }
        times.sort();
        let median = times[sweeps / 2];
        println!(
            "sweep, {label}, no trace ({sweeps} runs, one thread, one Evaluator, Outcome): min {:.1} ms, median {:.1} ms, max {:.1} ms; {:.0} ns per evaluation (median) (target < {SWEEP_TARGET_MS} ms: {})",
            ms(times[0]),
            ms(median),
            ms(times[sweeps - 1]),
            median.as_nanos() as f64 / reference.evaluations as f64,
            verdict(ms(median), SWEEP_TARGET_MS)
        );
        println!(
            "  {} evaluations, {} errors (territorial measure without région), {} situations refused by prepare; checksum: {} eligible, {} reasons, {} proposed in total",
            reference.evaluations,
            reference.errors,
            reference.refused,
            reference.eligible,
            reference.reasons,
            Cents::new(reference.amount_cents)
        );
        reference
    };
    let reference = timed(&situations, "same project for all");
    timed(&varied, "a project of its own for each");
    let run = |api: Api, trace: bool| {
        let t = Instant::now();
        let tally = sweep(&programme, &situations, api, trace);
        (t.elapsed(), tally)
    };

    // For information: the same sweep through independent calls, and with the explanation.
    // `GUICHET_BENCH_SWEEP_ONLY=1` skips them (when comparing two builds).
    if std::env::var_os("GUICHET_BENCH_SWEEP_ONLY").is_some() {
        return;
    }
    for (label, api, trace) in [
        (
            "no trace, one Evaluator, worded Evaluation",
            Api::Evaluator,
            false,
        ),
        (
            "no trace, Rules::evaluate_index per measure",
            Api::PerCall,
            false,
        ),
        ("with trace, one Evaluator", Api::Evaluator, true),
    ] {
        let (d, tally) = run(api, trace);
        assert_eq!(
            (
                tally.eligible,
                tally.reasons,
                tally.amount_cents,
                tally.errors
            ),
            (
                reference.eligible,
                reference.reasons,
                reference.amount_cents,
                reference.errors
            ),
            "the way of calling must not change the answer"
        );
        println!(
            "sweep, {label} (1 run, for information): {:.1} ms; {:.0} ns per evaluation",
            ms(d),
            d.as_nanos() as f64 / tally.evaluations as f64
        );
    }
}
