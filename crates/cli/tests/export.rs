//! `guichet export dossiers`, run as a programme team runs it: every filed dossier, or one
//! service's, as CSV (French spreadsheet conventions) or XLSX; bad options are refused with
//! exit code 2 and a French line.

use chrono::TimeZone;
use guichet_app::accounts::NewUser;
use guichet_app::audit::Actor;
use guichet_app::clock::Clock;
use guichet_app::config::Config;
use guichet_app::dossiers::DraftData;
use guichet_app::App;
use guichet_domain::access::ServiceTarget;
use guichet_domain::{Cents, CollectiviteRef, Role, Vintage};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web/tests/fixtures/node_modules")
}

fn guichet(dir: &Path, db: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_guichet"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", db)
        .env("GUICHET_DATA_DIR", dir)
        .env("GUICHET_NPM_DIR", fixtures())
        .env("GUICHET_LOG", "warn")
        .output()
        .expect("lancement de guichet")
}

fn complete(title: &str) -> DraftData {
    let mut d = DraftData::default();
    for (k, v) in [
        ("titre", title),
        ("description", "Un portail ; avec « guillemets »"),
        ("portage_decisionnel", "oui"),
        ("en_zrr", "non"),
        ("situation_actuelle", "Tout au guichet."),
        ("besoins", "500 demandes par mois."),
        ("objectifs", "Moitié en ligne."),
        ("impact_attendu", "Moins d’attente."),
        ("indicateurs", "Part en ligne."),
        ("date_debut", "2021-07-01"),
        ("date_fin", "2022-06-30"),
        ("deja_commence", "non"),
        ("contact_nom", "Camille Martin"),
        ("contact_courriel", "camille.martin@example.org"),
        ("usagers_cibles", "20000"),
    ] {
        d.champs.insert(k.into(), v.into());
    }
    d.depenses
        .insert("prestation".into(), Cents::from_euros(40_000));
    d
}

/// Files one relation-usager dossier per (commune, title); returns the app's data directory
/// and database.
async fn with_dossiers(filings: &[(&str, &str)]) -> (PathBuf, String) {
    let dir = guichet_testkit::temp_dir();
    let mut config = Config::defaults(&dir);
    config.database_url = guichet_testkit::fresh_database_url(&dir).await;
    config.npm_dir = fixtures();
    let db = config.database_url.clone();
    let clock = Clock::starting_at(chrono::Utc.with_ymd_and_hms(2021, 6, 1, 7, 0, 0).unwrap());
    let app = App::start(config, clock).await.expect("démarrage");
    for v in Vintage::ALL {
        app.referentiel()
            .import_vintage(v, Actor::Cli, &|_, _| {})
            .await
            .expect("référentiel");
    }
    for (i, (code, title)) in filings.iter().enumerate() {
        let c = CollectiviteRef::parse(&format!("commune:{code}")).unwrap();
        let (uid, _) = app
            .accounts()
            .create_user(
                NewUser {
                    email: format!("agent{i}@exemple.fr"),
                    display_name: format!("Agent {i}"),
                    role: Role::Demandeur,
                    service: None::<ServiceTarget>,
                    collectivites: vec![c.clone()],
                },
                Actor::Cli,
            )
            .await
            .unwrap();
        let p = app.accounts().user_view(uid).await.unwrap().principal;
        let d = app
            .dossiers()
            .create_draft(&p, "axe3.v1.relation-usager", &c, title)
            .await
            .unwrap();
        let v = app
            .dossiers()
            .update_draft(&p, d.row.id, d.row.version, complete(title))
            .await
            .unwrap();
        app.pieces()
            .attach(
                &p,
                d.row.id,
                guichet_app::pieces::Upload {
                    kind: "devis",
                    filename: "devis.pdf",
                    bytes: bytes::Bytes::from_static(b"%PDF-1.4\n%%EOF\n"),
                },
            )
            .await
            .unwrap();
        app.dossiers().submit(&p, d.row.id, v).await.unwrap();
    }
    (dir, db)
}

#[tokio::test]
async fn dossiers_export_as_csv_and_xlsx_for_all_or_one_service() {
    let (dir, db) = with_dossiers(&[
        ("95127", "Portail de Cergy"),
        ("78646", "Portail de Versailles"),
    ])
    .await;
    let csv = dir.join("dossiers.csv");
    let o = guichet(
        &dir,
        &db,
        &["export", "dossiers", "--sortie", csv.to_str().unwrap()],
    );
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("2 dossiers exportés"));
    let bytes = std::fs::read(&csv).unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "BOM UTF-8");
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("Numéro;Titre;Collectivité;"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with(
            "ITN7-95-2021-00001;Portail de Cergy;Cergy;commune:95127;Relation à l’usager;Déposé;"
        ),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].contains(";40000,00;"),
        "dépenses en euros : {}",
        lines[1]
    );
    assert!(
        lines[2].starts_with("ITN7-78-2021-00001;Portail de Versailles;Versailles;"),
        "{}",
        lines[2]
    );

    // One service's dossiers only.
    let o = guichet(
        &dir,
        &db,
        &[
            "export",
            "dossiers",
            "--service",
            "pref-78",
            "--sortie",
            csv.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{o:?}");
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.contains("Portail de Versailles"));
    assert!(!text.contains("Portail de Cergy"), "{text}");

    // XLSX: a workbook (a zip holding the sheet).
    let xlsx = dir.join("dossiers.xlsx");
    let o = guichet(
        &dir,
        &db,
        &[
            "export",
            "dossiers",
            "--format",
            "xlsx",
            "--etat",
            "depose",
            "--sortie",
            xlsx.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{o:?}");
    let bytes = std::fs::read(&xlsx).unwrap();
    assert!(
        bytes.starts_with(b"PK"),
        "un classeur XLSX est une archive zip"
    );

    // Bad options: exit code 2, one French line, no file written.
    let none = dir.join("jamais.csv");
    for (args, expected) in [
        (vec!["--format", "pdf"], "format inconnu"),
        (vec!["--etat", "brouillon"], "non exportable"),
        (vec!["--mesure", "axe9"], "mesure inconnue"),
        (vec!["--service", "pref-00"], "inconnu"),
    ] {
        let mut all = vec!["export", "dossiers", "--sortie", none.to_str().unwrap()];
        all.extend(args);
        let o = guichet(&dir, &db, &all);
        assert_eq!(o.status.code(), Some(2), "{all:?} : {o:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(expected), "{all:?} : {err}");
        assert!(!none.exists(), "{all:?} a écrit un fichier");
    }
}

/// `guichet demo seed`: N filed dossiers spread over the states, numbered without gap or
/// duplicate after those already there; the same seed draws the same dossiers.
#[tokio::test]
async fn demo_seed_files_numbered_dossiers_that_the_export_reads() {
    let dir = guichet_testkit::temp_dir();
    let db = guichet_testkit::fresh_database_url(&dir).await;
    let o = guichet(
        &dir,
        &db,
        &["demo", "seed", "--dossiers", "300", "--graine", "7"],
    );
    assert!(o.status.success(), "{o:?}");
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        out.contains("300 dossiers de démonstration déposés"),
        "{out}"
    );
    assert!(out.contains("déposé "), "{out}");
    // Again: the numbers follow.
    let o = guichet(
        &dir,
        &db,
        &["demo", "seed", "--dossiers", "20", "--graine", "8"],
    );
    assert!(o.status.success(), "{o:?}");
    let csv = dir.join("tout.csv");
    let o = guichet(
        &dir,
        &db,
        &["export", "dossiers", "--sortie", csv.to_str().unwrap()],
    );
    assert!(o.status.success(), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("320 dossiers exportés"),
        "{o:?}"
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut per_territory: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for line in text.lines().skip(1) {
        let number = line
            .split(';')
            .next()
            .unwrap()
            .trim_start_matches('\u{feff}');
        let mut parts = number.split('-');
        let (_, territory, _, seq) = (
            parts.next().unwrap(),
            parts.next().unwrap().to_string(),
            parts.next().unwrap(),
            parts.next().unwrap().parse::<u64>().unwrap(),
        );
        per_territory.entry(territory).or_default().push(seq);
    }
    assert!(!per_territory.is_empty());
    for (territory, mut seqs) in per_territory {
        seqs.sort();
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(
            seqs, expected,
            "numéros de {territory} : sans trou ni doublon"
        );
    }
    // Bad input: exit code 2.
    let o = guichet(&dir, &db, &["demo", "seed", "--dossiers", "0"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("de 1 à 1 000 000"));
}
