//! Referential benchmark: import time per vintage, and collectivité search latency, in process
//! and end to end over HTTP, on the real packages installed by `npm ci`.
//!
//!     cargo bench -p guichet --bench referentiel
//!
//! Uses a fresh SQLite database in a temporary directory (or DATABASE_URL if set).

use guichet_app::audit::Actor;
use guichet_app::clock::Clock;
use guichet_app::config::Config;
use guichet_app::App;
use guichet_domain::Vintage;
use std::time::{Duration, Instant};

const QUERIES: &[&str] = &[
    "cergy",
    "Cergy",
    "cer",
    "pontoise",
    "saint",
    "saint-ouen",
    "saint ouen l aumone",
    "paris",
    "marseille",
    "lyon",
    "toulouse",
    "nice",
    "nantes",
    "strasbourg",
    "montpellier",
    "bordeaux",
    "lille",
    "rennes",
    "reims",
    "le havre",
    "évry",
    "evry courcouronnes",
    "ile de france",
    "val d oise",
    "yvelines",
    "communaute",
    "ca de",
    "metropole",
    "95127",
    "75056",
    "2a004",
    "219501277",
    "249500109",
    "95000",
    "13001",
    "31000",
    "78",
    "950",
    "a",
    "zzzz",
];

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn report(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{label}: n={} p50={:.3} ms p95={:.3} ms p99={:.3} ms max={:.3} ms",
        samples.len(),
        percentile(&samples, 0.50).as_secs_f64() * 1e3,
        percentile(&samples, 0.95).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.last().map(|d| d.as_secs_f64() * 1e3).unwrap_or(0.0),
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("guichet-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut config = Config::defaults(&dir);
    if let Ok(url) = std::env::var("DATABASE_URL") {
        config.database_url = url;
    }
    config.npm_dir =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../node_modules");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    config.bind = addr.to_string();
    config.base_url = format!("http://{addr}");
    let app = App::start(config, Clock::system()).await?;

    for v in Vintage::ALL {
        let mut runs = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            let r = app
                .referentiel()
                .import_vintage(v, Actor::Cli, &|_, _| {})
                .await?;
            runs.push(t.elapsed());
            assert!(r.communes > 30_000);
        }
        runs.sort();
        println!(
            "import {v}: median {:.2} s (runs: {})",
            runs[1].as_secs_f64(),
            runs.iter()
                .map(|d| format!("{:.2}", d.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    app.referentiel().refresh_search().await?;

    let rounds = 50;
    let idx = app
        .search
        .vintage_index(Vintage::Y2021)
        .ok_or_else(|| anyhow::anyhow!("index 2021 absent"))?;
    let mut samples = Vec::new();
    for _ in 0..rounds {
        for q in QUERIES {
            let t = Instant::now();
            let hits = idx.search(q, None, 10, Vintage::Y2021);
            samples.push(t.elapsed());
            std::hint::black_box(hits);
        }
    }
    report("search, in process (2021, 10 results)", samples);

    let server = app.clone();
    tokio::spawn(async move { guichet_web::serve_on(listener, server).await });
    let client = reqwest::Client::new();
    let base = format!("http://{addr}/api/v1/collectivites?limite=10&q=");
    // Warm-up: connection, index freshness check.
    for q in QUERIES {
        client
            .get(format!("{base}{q}"))
            .send()
            .await?
            .bytes()
            .await?;
    }
    let mut samples = Vec::new();
    for _ in 0..rounds {
        for q in QUERIES {
            let t = Instant::now();
            let r = client.get(format!("{base}{q}")).send().await?;
            assert!(r.status().is_success());
            r.bytes().await?;
            samples.push(t.elapsed());
        }
    }
    report(
        "search, HTTP GET /api/v1/collectivites (2021, 10 results)",
        samples,
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
