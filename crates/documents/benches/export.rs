//! Exports of 100,000 rows of 20 columns (a dossier list's shape), CSV then XLSX, each timed,
//! with the process's peak resident memory after each (VmHWM). Run:
//!
//!     cargo bench -p guichet-documents --bench export
//!
//! `GUICHET_BENCH_ROWS` changes the row count. Figures go to docs/performance.md.

use chrono::NaiveDate;
use guichet_documents::csv::CsvWriter;
use guichet_documents::xlsx::XlsxWriter;
use guichet_documents::{Cell, Column};
use std::time::Instant;

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() {
    let rows: usize = std::env::var("GUICHET_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let columns: Vec<Column> = (0..20)
        .map(|i| Column::new(format!("colonne {i}"), 14.0))
        .collect();
    let titles: Vec<String> = (0..rows)
        .map(|i| {
            format!(
                "Dématérialisation des démarches, lot {i} ; commune n° {}",
                i % 35_000
            )
        })
        .collect();
    let day = NaiveDate::from_ymd_opt(2021, 6, 1).unwrap_or_default();
    let cells = |i: usize| -> Vec<Cell<'_>> {
        let mut c = vec![
            Cell::Text("ITN7-95-2021-00001"),
            Cell::Text(&titles[i]),
            Cell::Text("Préfecture du Val-d’Oise"),
            Cell::Text("en_instruction"),
            Cell::Euros((i as i64 * 7_919) % 10_000_000),
            Cell::Euros((i as i64 * 3_911) % 5_000_000),
            Cell::Date(day),
            Cell::Integer(i as i64),
        ];
        c.resize(20, Cell::Text("valeur"));
        c
    };
    let dir = std::env::temp_dir().join(format!("guichet-bench-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dossier temporaire");

    let started = Instant::now();
    let file = std::io::BufWriter::new(std::fs::File::create(dir.join("a.csv")).expect("csv"));
    let mut w = CsvWriter::new(file, &columns).expect("en-tête");
    for i in 0..rows {
        w.row(&cells(i)).expect("ligne");
    }
    w.finish().expect("fin");
    let csv = started.elapsed();
    let csv_rss = peak_rss_mb();
    let csv_size = std::fs::metadata(dir.join("a.csv"))
        .map(|m| m.len())
        .unwrap_or(0);

    let started = Instant::now();
    let mut w = XlsxWriter::new("Dossiers", &columns).expect("classeur");
    for i in 0..rows {
        w.row(&cells(i)).expect("ligne");
    }
    w.save(&dir.join("a.xlsx")).expect("enregistrement");
    let xlsx = started.elapsed();
    let xlsx_rss = peak_rss_mb();
    let xlsx_size = std::fs::metadata(dir.join("a.xlsx"))
        .map(|m| m.len())
        .unwrap_or(0);
    std::fs::remove_dir_all(&dir).ok();

    println!("{rows} lignes × 20 colonnes");
    println!(
        "CSV  : {:>7.0} ms, {:>6.1} Mo écrits, pic de mémoire du processus {:.0} Mo",
        csv.as_secs_f64() * 1000.0,
        csv_size as f64 / 1e6,
        csv_rss
    );
    println!(
        "XLSX : {:>7.0} ms, {:>6.1} Mo écrits, pic de mémoire du processus {:.0} Mo",
        xlsx.as_secs_f64() * 1000.0,
        xlsx_size as f64 / 1e6,
        xlsx_rss
    );
}
