//! Impact benchmark: `guichet programme impact` on the whole 2021 referential (35,059 communes,
//! 1,254 EPCI, 101 départements, 18 régions), every ITN7 measure, ITN7 against a draft that
//! raises Île-de-France's full-rate threshold from 15,000 to 20,000 inhabitants.
//!
//!     cargo bench -p guichet --bench impact
//!
//! Target (product owner): under 2 s, reading the referential from the database included.
//! Uses a fresh SQLite database in a temporary directory (or DATABASE_URL if set) and the real
//! npm packages (`npm ci`; or GUICHET_NPM_DIR). The import is not timed; each run is what the
//! command does after loading the two programme folders: read the referential, build every
//! applicant, sweep both versions, compare.

use guichet_app::audit::Actor;
use guichet_app::clock::Clock;
use guichet_app::config::Config;
use guichet_app::impact::{compare, ImpactInput, ImpactScope};
use guichet_app::App;
use guichet_domain::Vintage;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RUNS: usize = 7;
const TARGET_S: f64 = 2.0;

fn median(mut d: Vec<Duration>) -> (f64, f64, f64) {
    d.sort();
    let s = |x: Duration| x.as_secs_f64();
    (s(d[0]), s(d[d.len() / 2]), s(d[d.len() - 1]))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// ITN7 with Île-de-France's full rate up to 20,000 inhabitants.
fn draft(dir: &Path) -> anyhow::Result<PathBuf> {
    let to = dir.join("itn7-seuil-20000");
    std::fs::create_dir_all(&to)?;
    for name in guichet_programme::PROGRAMME_FILES {
        std::fs::copy(root().join("programmes/itn7").join(name), to.join(name))?;
    }
    let params = to.join("parametres.yaml");
    let text = std::fs::read_to_string(&params)?;
    anyhow::ensure!(text.matches("          valeur: 15000\n").count() == 1);
    std::fs::write(
        &params,
        text.replacen("          valeur: 15000\n", "          valeur: 20000\n", 1),
    )?;
    Ok(to)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("guichet-bench-impact-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut config = Config::defaults(&dir);
    if let Ok(url) = std::env::var("DATABASE_URL") {
        config.database_url = url;
    }
    config.npm_dir = match std::env::var_os("GUICHET_NPM_DIR") {
        Some(d) => PathBuf::from(d),
        None => root().join("node_modules"),
    };
    let app = App::start(config, Clock::system()).await?;
    let r = app
        .referentiel()
        .import_vintage(Vintage::Y2021, Actor::Cli, &|_, _| {})
        .await?;
    anyhow::ensure!(r.communes > 30_000, "référentiel 2021 incomplet");

    let before = Arc::new(guichet_app::programme::load(
        &root().join("programmes/itn7"),
    )?);
    let after = Arc::new(guichet_app::programme::load(&draft(&dir)?)?);
    let input = ImpactInput {
        mesures: Vec::new(),
        cout: Some("100000".into()),
        date_depot: Some("2021-06-01".into()),
    };

    // Warm-up, and the answer every run must give.
    let reference = app
        .impact()
        .programme_impact(before.clone(), after.clone(), &input, ImpactScope::National)
        .await?;
    // On the real referential too: the communes that change are exactly those of
    // Île-de-France between 15,000 (excluded) and 20,000 inhabitants.
    let data = guichet_storage::referentiel::load_vintage(
        &mut *guichet_app::testing::db(&app).acquire().await?,
        2021,
    )
    .await?;
    let between: BTreeSet<String> = data
        .communes
        .iter()
        .filter(|c| c.region_code.as_deref() == Some("11"))
        .filter(|c| c.population > 15_000 && c.population <= 20_000)
        .map(|c| format!("commune:{}", c.insee))
        .collect();
    let changed: BTreeSet<String> = reference
        .changements
        .iter()
        .filter(|c| c.kind == "commune")
        .map(|c| c.reference.clone())
        .collect();
    anyhow::ensure!(
        changed == between,
        "communes changées inattendues : {:?}",
        changed.symmetric_difference(&between).collect::<Vec<_>>()
    );
    println!(
        "{} communes of Île-de-France between 15,000 and 20,000 inhabitants change, as expected",
        between.len()
    );
    let evaluations = reference.demandeurs * reference.mesures.len() as u64;
    println!(
        "{} applicants × {} measures = {} evaluations per version; {} changed answers",
        reference.demandeurs,
        reference.mesures.len(),
        evaluations,
        reference.changements.len()
    );

    let mut whole = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let r = app
            .impact()
            .programme_impact(before.clone(), after.clone(), &input, ImpactScope::National)
            .await?;
        whole.push(t.elapsed());
        assert_eq!(r.changements.len(), reference.changements.len());
    }
    let (min, med, max) = median(whole);
    println!(
        "programme impact, whole 2021 referential, every measure, both versions ({RUNS} runs): min {min:.3} s, median {med:.3} s, max {max:.3} s (target < {TARGET_S} s: {})",
        if med < TARGET_S { "met" } else { "NOT met" }
    );

    // Where the time goes: reading the referential, then the two sweeps.
    let mut reads = Vec::new();
    let mut sweeps = Vec::new();
    let req = input.parse(&before, &after, app.today())?;
    for _ in 0..RUNS {
        let t = Instant::now();
        let applicants = app.impact().referential_applicants(Vintage::Y2021).await?;
        reads.push(t.elapsed());
        let t = Instant::now();
        let r = compare(&before, &after, &req, &applicants, &ImpactScope::National)?;
        sweeps.push(t.elapsed());
        std::hint::black_box(r);
    }
    let (_, read, _) = median(reads);
    let (_, sweep, _) = median(sweeps);
    println!(
        "  of which: reading the referential and building the applicants {read:.3} s; both sweeps and the comparison {sweep:.3} s ({:.0} ns per evaluation)",
        sweep * 1e9 / (2 * evaluations) as f64
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
