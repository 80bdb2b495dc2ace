//! `guichet programme impact`, run as a programme officer would: a draft of ITN7 against the
//! programme in force, over the referential, checked against `guichet simulate` under each
//! version.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web/tests/fixtures/node_modules")
}

fn itn7_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../programmes/itn7")
}

/// `guichet ARGS` with a clean environment on the given data directory and database.
fn command(dir: &Path, db: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_guichet"));
    c.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", db)
        .env("GUICHET_DATA_DIR", dir)
        .env("GUICHET_NPM_DIR", fixtures())
        .env("GUICHET_LOG", "warn");
    c
}

fn guichet(dir: &Path, db: &str, args: &[&str]) -> Output {
    command(dir, db, args)
        .output()
        .expect("lancement de guichet")
}

/// `guichet programme impact --avant AVANT --apres APRES` followed by `rest`.
fn impact(dir: &Path, db: &str, avant: &Path, apres: &Path, rest: &[&str]) -> Output {
    let mut args = vec![
        "programme",
        "impact",
        "--avant",
        avant.to_str().unwrap(),
        "--apres",
        apres.to_str().unwrap(),
    ];
    args.extend_from_slice(rest);
    guichet(dir, db, &args)
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn json(o: &Output) -> Value {
    assert!(o.status.success(), "{:?}", text(o));
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("JSON invalide ({e}) :\n{}", text(o).0))
}

async fn fresh_with_referential() -> (PathBuf, String) {
    let dir = guichet_testkit::temp_dir();
    let db = guichet_testkit::fresh_database_url(&dir).await;
    let o = guichet(&dir, &db, &["referentiel", "import"]);
    assert!(o.status.success(), "{:?}", text(&o));
    (dir, db)
}

/// A copy of the ITN7 programme files in a fresh directory.
fn itn7_copy() -> PathBuf {
    let dir = guichet_testkit::temp_dir().join("programme");
    std::fs::create_dir_all(&dir).unwrap();
    for name in [
        "programme.yaml",
        "parametres.yaml",
        "regles.yaml",
        "variantes.yaml",
        "criteres.yaml",
    ] {
        std::fs::copy(itn7_dir().join(name), dir.join(name)).unwrap();
    }
    dir
}

/// Replaces the one occurrence of `anchor` in a file.
fn edit(path: &Path, anchor: &str, replacement: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert_eq!(
        text.matches(anchor).count(),
        1,
        "« {anchor} » doit figurer une fois dans {}",
        path.display()
    );
    std::fs::write(path, text.replacen(anchor, replacement, 1)).unwrap();
}

/// The draft of the example: Île-de-France's full rate up to 20,000 inhabitants, not 15,000.
fn draft_threshold_20000() -> PathBuf {
    let draft = itn7_copy();
    edit(
        &draft.join("parametres.yaml"),
        "          valeur: 15000\n",
        "          valeur: 20000\n",
    );
    draft
}

/// `guichet simulate` under the programme folder `programme` (GUICHET_PROGRAMME).
fn simulate(dir: &Path, db: &str, programme: &Path, mesure: &str, demandeur: &str) -> Value {
    let o = command(
        dir,
        db,
        &[
            "simulate",
            "--mesure",
            mesure,
            "--demandeur",
            demandeur,
            "--cout",
            "100000",
            "--date-depot",
            "2021-06-01",
            "--json",
        ],
    )
    .env("GUICHET_PROGRAMME", programme)
    .output()
    .expect("lancement de guichet");
    json(&o)
}

/// What the report says of one side (`avant`/`apres`) must be what `simulate` answers.
fn same_answer(side: &Value, sim: &Value, what: &str) {
    assert_eq!(side["montant_centimes"], sim["montant_centimes"], "{what}");
    assert_eq!(side["taux"], sim["taux"], "{what}");
    assert_eq!(side["taux_max"], sim["taux_max"], "{what}");
    let eligible = side["statut"] == "eligible";
    assert_eq!(Value::Bool(eligible), sim["eligible"], "{what}");
    assert_eq!(side["motifs"], sim["motifs"], "{what}");
}

/// The communes of Île-de-France in the imported 2021 referential, with their population.
async fn idf_communes(db: &str) -> Vec<(String, String, i64)> {
    let store = guichet_storage::Db::connect(db, 1).await.unwrap();
    guichet_storage::referentiel::communes_in(&store, 2021, None, Some("11"))
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.insee, c.name, c.population))
        .collect()
}

const FORMATION: &str = "axe3.v1.formation";

#[tokio::test]
async fn raising_the_ile_de_france_threshold_to_20000_changes_exactly_the_communes_between() {
    let (dir, db) = fresh_with_referential().await;
    let draft = draft_threshold_20000();
    let itn7 = itn7_dir();
    let report = json(&impact(
        &dir,
        &db,
        &itn7,
        &draft,
        &["--cout", "100000", "--date-depot", "2021-06-01", "--json"],
    ));
    assert_eq!(report["millesime"], 2021);
    assert_eq!(report["cout_centimes"], 10_000_000);
    assert_ne!(report["version_avant"], report["version_apres"]);
    assert_eq!(report["dossiers"], 0);

    let communes = idf_communes(&db).await;
    let between: BTreeSet<String> = communes
        .iter()
        .filter(|(_, _, p)| *p > 15_000 && *p <= 20_000)
        .map(|(code, _, _)| format!("commune:{code}"))
        .collect();
    assert!(
        between.len() >= 5,
        "the fixture must hold communes between the thresholds: {between:?}"
    );
    let changes = report["changements"].as_array().unwrap();
    let changed_communes: BTreeSet<String> = changes
        .iter()
        .filter(|c| c["type"] == "commune")
        .map(|c| c["reference"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(changed_communes, between, "exactly the communes between");
    // Whoever changes (EPCI included) lies in Île-de-France between the two thresholds, and
    // gains: the rate goes up, never down.
    for c in changes {
        assert_eq!(c["region"], "11", "{c}");
        let p = c["population"].as_i64().unwrap();
        assert!(p > 15_000 && p <= 20_000, "{c}");
        assert!(c["ecart_centimes"].as_i64().unwrap() >= 0, "{c}");
        assert_eq!(c["avant"]["taux"], "0.5", "{c}");
        assert_eq!(c["apres"]["taux"], "1", "{c}");
    }
    // What each commune would gain on a 100,000 € training project: 50 % → 100 %.
    let formation: Vec<&Value> = changes
        .iter()
        .filter(|c| c["mesure"] == FORMATION)
        .collect();
    let formation_communes: BTreeSet<String> = formation
        .iter()
        .filter(|c| c["type"] == "commune")
        .map(|c| c["reference"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(formation_communes, between);
    for c in &formation {
        assert_eq!(c["avant"]["montant_centimes"], 5_000_000, "{c}");
        assert_eq!(c["apres"]["montant_centimes"], 10_000_000, "{c}");
        assert_eq!(c["ecart_centimes"], 5_000_000, "{c}");
    }
    // The measure's counts agree with the list; the total moves by the sum of the gains.
    let m = report["mesures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mesure"] == FORMATION)
        .unwrap();
    let total = &m["total"];
    assert_eq!(total["modifies"].as_u64().unwrap(), formation.len() as u64);
    assert_eq!(total["devenus_eligibles"], 0);
    assert_eq!(total["devenus_ineligibles"], 0);
    let gains: i64 = formation
        .iter()
        .map(|c| c["ecart_centimes"].as_i64().unwrap())
        .sum();
    assert_eq!(
        total["montant_apres_centimes"].as_i64().unwrap()
            - total["montant_avant_centimes"].as_i64().unwrap(),
        gains
    );
    let idf = m["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["code"] == "11")
        .unwrap();
    assert_eq!(idf["nom"], "Île-de-France");
    assert_eq!(idf["modifies"], total["modifies"]);
    // Measures the threshold does not reach do not change.
    for other in ["axe3.v1.dematads", "axe2.demat", "axe1"] {
        let m = report["mesures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["mesure"] == other)
            .unwrap();
        assert_eq!(m["total"]["modifies"], 0, "{other}");
        assert!(m["total"]["evalues"].as_u64().unwrap() > 0);
    }

    // A sample of changed communes, checked against `guichet simulate` under each version.
    for c in formation.iter().filter(|c| c["type"] == "commune").take(3) {
        let who = c["reference"].as_str().unwrap();
        for (side, programme) in [("avant", &itn7), ("apres", &draft)] {
            let sim = simulate(&dir, &db, programme, FORMATION, who);
            same_answer(&c[side], &sim, &format!("{who} {side}"));
        }
    }
    // And unchanged ones: just below and above the band, and outside Île-de-France.
    let below = communes
        .iter()
        .filter(|(_, _, p)| *p <= 15_000)
        .max_by_key(|(_, _, p)| *p)
        .unwrap();
    let above = communes
        .iter()
        .filter(|(_, _, p)| *p > 20_000)
        .min_by_key(|(_, _, p)| *p)
        .unwrap();
    let all_changed: BTreeSet<&str> = changes
        .iter()
        .map(|c| c["reference"].as_str().unwrap())
        .collect();
    for who in [
        format!("commune:{}", below.0),
        format!("commune:{}", above.0),
        "epci:249500109".to_string(),
    ] {
        assert!(!all_changed.contains(who.as_str()), "{who} ne change pas");
        let before = simulate(&dir, &db, &itn7, FORMATION, &who);
        let after = simulate(&dir, &db, &draft, FORMATION, &who);
        assert_eq!(
            before["montant_centimes"], after["montant_centimes"],
            "{who}"
        );
        assert_eq!(before["taux"], after["taux"], "{who}");
        assert!(before["montant_centimes"].as_i64().unwrap() > 0, "{who}");
    }

    // The French report names the changed communes and what each gains.
    let o = impact(
        &dir,
        &db,
        &itn7,
        &draft,
        &[
            "--mesure",
            FORMATION,
            "--cout",
            "100 000",
            "--date-depot",
            "2021-06-01",
        ],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.is_empty(), "{err}");
    assert!(out.contains("Mesure axe3.v1.formation"), "{out}");
    assert!(out.contains("11 Île-de-France"), "{out}");
    assert!(out.contains("Dossiers déposés : aucun"), "{out}");
    assert!(
        !out.contains("Mesure axe2.demat"),
        "one measure asked: {out}"
    );
    let (code, name, _) = communes
        .iter()
        .find(|(code, _, _)| between.contains(&format!("commune:{code}")))
        .unwrap();
    let line = out
        .lines()
        .find(|l| l.contains(&format!("commune:{code}")))
        .unwrap_or_else(|| panic!("{code} absent :\n{out}"));
    assert!(line.contains(name.as_str()), "{line}");
    assert!(line.contains("+50\u{202f}000,00\u{a0}€"), "{line}");
}

#[tokio::test]
async fn the_same_programme_twice_changes_nothing() {
    let (dir, db) = fresh_with_referential().await;
    let itn7 = itn7_dir();
    let copy = itn7_copy();
    let report = json(&impact(
        &dir,
        &db,
        &itn7,
        &copy,
        &["--cout", "40000", "--date-depot", "2021-06-01", "--json"],
    ));
    assert_eq!(report["changements"].as_array().unwrap().len(), 0);
    let mesures = report["mesures"].as_array().unwrap();
    assert_eq!(mesures.len(), 14);
    let n = report["demandeurs"].as_u64().unwrap();
    assert!(n > 35, "communes, EPCI, départements and régions: {n}");
    for m in mesures {
        let t = &m["total"];
        assert_eq!(t["evalues"].as_u64().unwrap(), n, "{m}");
        assert_eq!(t["eligibles_avant"], t["eligibles_apres"], "{m}");
        assert_eq!(
            t["montant_avant_centimes"], t["montant_apres_centimes"],
            "{m}"
        );
    }
    // Some measures have eligible applicants and money.
    assert!(mesures
        .iter()
        .any(|m| m["total"]["montant_avant_centimes"].as_i64().unwrap() > 0));
}

#[tokio::test]
async fn a_call_closed_earlier_by_the_draft_shows_who_becomes_ineligible() {
    let (dir, db) = fresh_with_referential().await;
    let itn7 = itn7_dir();
    // The draft closes PACA's call after its first wave (30 May 2021), before the filing date.
    let draft = itn7_copy();
    edit(
        &draft.join("parametres.yaml"),
        "          valeur: 2021-10-15\n",
        "          valeur: 2021-05-30\n",
    );
    let report = json(&impact(
        &dir,
        &db,
        &itn7,
        &draft,
        &[
            "--mesure",
            FORMATION,
            "--cout",
            "100000",
            "--date-depot",
            "2021-06-01",
            "--json",
        ],
    ));
    let changes = report["changements"].as_array().unwrap();
    let who: BTreeSet<&str> = changes
        .iter()
        .map(|c| c["reference"].as_str().unwrap())
        .collect();
    // Every applicant of PACA in the fixture referential: Marseille, its département, the
    // région.
    assert_eq!(
        who,
        BTreeSet::from(["commune:13055", "departement:13", "region:93"])
    );
    for c in changes {
        assert_eq!(c["avant"]["statut"], "a_confirmer", "{c}");
        assert_eq!(c["apres"]["statut"], "non_eligible", "{c}");
        assert!(
            c["apres"]["motifs"]
                .as_array()
                .unwrap()
                .contains(&Value::from("hors_periode_depot")),
            "{c}"
        );
        assert_eq!(c["apres"]["montant_centimes"], 0, "{c}");
        assert_eq!(
            c["ecart_centimes"].as_i64().unwrap(),
            -c["avant"]["montant_centimes"].as_i64().unwrap(),
            "{c}"
        );
    }
    let m = &report["mesures"][0];
    assert_eq!(m["mesure"], FORMATION);
    assert_eq!(m["total"]["devenus_ineligibles"], 3);
    assert_eq!(m["total"]["devenus_eligibles"], 0);
    assert_eq!(m["total"]["modifies"], 0);
    let eligible_before = m["total"]["eligibles_avant"].as_u64().unwrap();
    assert_eq!(
        m["total"]["eligibles_apres"].as_u64().unwrap(),
        eligible_before - 3
    );
    let paca = m["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["code"] == "93")
        .unwrap();
    assert_eq!(paca["devenus_ineligibles"], 3);
    assert_eq!(paca["montant_apres_centimes"], 0);
    // An applicant counts in its département when all its communes lie in one: in the fixture
    // referential, the région's only commune is Marseille.
    let deps = m["departements"].as_array().unwrap();
    let d13 = deps.iter().find(|d| d["code"] == "13").unwrap();
    assert_eq!(d13["nom"], "Bouches-du-Rhône");
    assert_eq!(d13["devenus_ineligibles"], 3);
    assert!(deps
        .iter()
        .filter(|d| d["code"] != "13")
        .all(|d| d["devenus_ineligibles"] == 0));
}

#[tokio::test]
async fn impact_refuses_bad_input_and_says_what_to_do() {
    let dir = guichet_testkit::temp_dir();
    let db = guichet_testkit::fresh_database_url(&dir).await;
    let itn7 = itn7_dir();
    let itn7 = itn7.to_str().unwrap();
    // Without the referential: exit 1, with the command that imports it.
    let o = guichet(
        &dir,
        &db,
        &["programme", "impact", "--avant", itn7, "--apres", itn7],
    );
    assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
    assert!(
        text(&o)
            .1
            .contains("guichet referentiel import --millesime 2021"),
        "{:?}",
        text(&o)
    );
    let o = guichet(&dir, &db, &["referentiel", "import", "--millesime", "2021"]);
    assert!(o.status.success(), "{:?}", text(&o));
    // A broken draft: its diagnostics, exit 2.
    let broken = itn7_copy();
    edit(
        &broken.join("parametres.yaml"),
        "          valeur: 15000\n",
        "          valeur: quinze mille\n",
    );
    let o = guichet(
        &dir,
        &db,
        &[
            "programme",
            "impact",
            "--avant",
            itn7,
            "--apres",
            broken.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    let (_, err) = text(&o);
    assert!(err.contains("parametres.yaml:"), "{err}");
    assert!(err.contains("le programme --apres"), "{err}");
    for (extra, expected) in [
        (vec!["--mesure", "axe9.inconnue"], "mesure inconnue"),
        (vec!["--cout", "beaucoup"], "coût du projet"),
        (vec!["--date-depot", "01/06/2021"], "date de dépôt invalide"),
    ] {
        let mut args = vec!["programme", "impact", "--avant", itn7, "--apres", itn7];
        args.extend(extra);
        let o = guichet(&dir, &db, &args);
        assert_eq!(o.status.code(), Some(2), "{args:?} {:?}", text(&o));
        let (out, err) = text(&o);
        assert!(out.is_empty(), "{out}");
        assert!(err.starts_with("erreur : "), "{err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    let o = guichet(&dir, &db, &["programme", "impact", "--help"]);
    let (out, _) = text(&o);
    for word in [
        "--avant",
        "--apres",
        "--mesure",
        "--cout",
        "--date-depot",
        "--json",
        "Dossiers",
    ] {
        assert!(
            out.contains(word) || out.contains(&word.to_lowercase()),
            "{word}: {out}"
        );
    }
}
