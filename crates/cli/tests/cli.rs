//! The `guichet` binary, run as an operator would: exit codes and messages.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web/tests/fixtures/node_modules")
}

/// `guichet ARGS` with a clean environment on the given data directory and database.
fn command(dir: &Path, db: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_guichet"));
    c.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", db)
        .env("GUICHET_DATA_DIR", dir)
        .env("GUICHET_NPM_DIR", fixtures());
    c
}

fn guichet(dir: &Path, db: &str, args: &[&str]) -> Output {
    command(dir, db, args)
        .env("GUICHET_LOG", "warn")
        .output()
        .expect("lancement de guichet")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

async fn fresh() -> (PathBuf, String) {
    let dir = guichet_testkit::temp_dir();
    let url = guichet_testkit::fresh_database_url(&dir).await;
    (dir, url)
}

#[tokio::test]
async fn help_lists_the_subcommands_and_settings() {
    let (dir, db) = fresh().await;
    let o = guichet(&dir, &db, &["--help"]);
    assert!(o.status.success());
    let (out, _) = text(&o);
    for word in [
        "serve",
        "migrate",
        "referentiel",
        "admin",
        "audit",
        "DATABASE_URL",
        "GUICHET_HORLOGE",
    ] {
        assert!(out.contains(word), "{word} absent de l’aide :\n{out}");
    }
    let o = guichet(&dir, &db, &["admin", "create-user", "--help"]);
    assert!(text(&o).0.contains("--collectivite"));
}

#[tokio::test]
async fn a_malformed_database_url_is_explained() {
    let dir = guichet_testkit::temp_dir();
    for (url, expected) in [
        ("n’importe quoi", "DATABASE_URL invalide"),
        ("mysql://x/y", "non pris en charge"),
    ] {
        let o = guichet(&dir, url, &["migrate"]);
        assert!(!o.status.success());
        let (_, err) = text(&o);
        assert!(err.contains(expected), "{err}");
    }
}

#[tokio::test]
async fn an_unreachable_postgresql_is_explained() {
    let dir = guichet_testkit::temp_dir();
    let o = guichet(
        &dir,
        "postgres://postgres@127.0.0.1:9/guichet",
        &["migrate"],
    );
    assert!(!o.status.success());
    let (_, err) = text(&o);
    assert!(
        err.contains("impossible de se connecter à la base de données"),
        "{err}"
    );
    assert!(err.contains("127.0.0.1:9"), "{err}");
}

#[tokio::test]
async fn migrations_run_once() {
    let (dir, db) = fresh().await;
    let first = guichet(&dir, &db, &["migrate"]);
    assert!(first.status.success(), "{:?}", text(&first));
    assert!(text(&first).0.contains("migrations appliquées"));
    let second = guichet(&dir, &db, &["migrate"]);
    assert!(text(&second).0.contains("aucune migration"));
}

#[tokio::test]
async fn a_migration_that_differs_from_what_the_database_ran_is_refused_at_start() {
    let (dir, db) = fresh().await;
    assert!(guichet(&dir, &db, &["migrate"]).status.success());
    // The database ran another text for migration 2 than this binary holds (as if it had been
    // edited after being applied).
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db).await.unwrap();
    sqlx::query("UPDATE schema_migrations SET checksum = 'd3adb33f' WHERE version = 2")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    for args in [&["migrate"][..], &["serve", "--bind", "127.0.0.1:0"][..]] {
        let o = guichet(&dir, &db, args);
        assert!(!o.status.success(), "{args:?}");
        let (_, err) = text(&o);
        assert!(
            err.contains("la migration 2 (comptes) a été modifiée après avoir été appliquée"),
            "{args:?}: {err}"
        );
        assert!(err.contains("nouvelle migration"), "{err}");
    }
}

#[tokio::test]
async fn importing_without_the_npm_package_says_what_to_do() {
    let (dir, db) = fresh().await;
    let o = Command::new(env!("CARGO_BIN_EXE_guichet"))
        .args(["referentiel", "import", "--millesime", "2021"])
        .env("DATABASE_URL", &db)
        .env("GUICHET_DATA_DIR", &dir)
        .env("GUICHET_NPM_DIR", dir.join("absent"))
        .env("GUICHET_LOG", "warn")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let (_, err) = text(&o);
    assert!(
        err.contains("npm ci") && err.contains("decoupage-administratif-2021"),
        "{err}"
    );
    let o = guichet(&dir, &db, &["referentiel", "import", "--millesime", "2022"]);
    assert!(!o.status.success());
    assert!(text(&o).1.contains("millésime inconnu"));
}

#[tokio::test]
async fn the_import_is_idempotent() {
    let (dir, db) = fresh().await;
    for _ in 0..2 {
        let o = guichet(&dir, &db, &["referentiel", "import"]);
        assert!(o.status.success(), "{:?}", text(&o));
        let (out, _) = text(&o);
        assert!(
            out.contains("millésime 2021 importé") && out.contains("35 communes"),
            "{out}"
        );
        assert!(out.contains("millésime 2026 importé"), "{out}");
    }
}

#[tokio::test]
async fn an_administrator_creates_accounts_with_a_one_time_link() {
    let (dir, db) = fresh().await;
    assert!(guichet(&dir, &db, &["referentiel", "import"])
        .status
        .success());
    let o = guichet(
        &dir,
        &db,
        &[
            "admin",
            "create-user",
            "--email",
            "agent@val-doise.test",
            "--role",
            "instructeur",
            "--territoire",
            "95",
        ],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let (out, _) = text(&o);
    assert!(out.contains("/mot-de-passe/definir?jeton="), "{out}");
    // A directorate of the programme's list, in any case.
    let o = guichet(
        &dir,
        &db,
        &[
            "admin",
            "create-user",
            "--email",
            "agent@dinum.test",
            "--role",
            "instructeur",
            "--territoire",
            "national:dinum",
        ],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let o = guichet(
        &dir,
        &db,
        &[
            "admin",
            "create-user",
            "--email",
            "maire@cergy.test",
            "--role",
            "demandeur",
            "--collectivite",
            "commune:95127",
            "--collectivite",
            "epci:249500109",
        ],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    for (args, expected) in [
        (
            vec![
                "--email",
                "agent@val-doise.test",
                "--role",
                "instructeur",
                "--territoire",
                "95",
            ],
            "existe déjà",
        ),
        (
            vec!["--email", "x@y.test", "--role", "instructeur"],
            "exige un service",
        ),
        (
            vec!["--email", "x@y.test", "--role", "chef"],
            "rôle inconnu",
        ),
        (
            vec![
                "--email",
                "x@y.test",
                "--role",
                "instructeur",
                "--territoire",
                "99",
            ],
            "territoire inconnu",
        ),
        (
            vec![
                "--email",
                "x@y.test",
                "--role",
                "instructeur",
                "--territoire",
                "MARS",
            ],
            "direction nationale MARS inconnue du programme (directions : DINUM, DITP, ANCT, ANSSI)",
        ),
        (
            vec!["--email", "pas-une-adresse", "--role", "administrateur"],
            "adresse électronique invalide",
        ),
        (
            vec![
                "--email",
                "x@y.test",
                "--role",
                "demandeur",
                "--collectivite",
                "commune:99999",
            ],
            "inconnue du référentiel",
        ),
        (
            vec![
                "--email",
                "x@y.test",
                "--role",
                "coordinateur",
                "--territoire",
                "95",
            ],
            "préfecture de région",
        ),
    ] {
        let mut all = vec!["admin", "create-user"];
        all.extend(args);
        let o = guichet(&dir, &db, &all);
        assert!(!o.status.success(), "{all:?}");
        let (_, err) = text(&o);
        assert!(err.contains(expected), "{all:?}: {err}");
    }
}

#[tokio::test]
async fn audit_verify_proves_the_chain_and_catches_tampering() {
    let (dir, db) = fresh().await;
    assert!(guichet(&dir, &db, &["referentiel", "import"])
        .status
        .success());
    assert!(guichet(
        &dir,
        &db,
        &[
            "admin",
            "create-user",
            "--email",
            "a@b.test",
            "--role",
            "administrateur"
        ]
    )
    .status
    .success());
    let o = guichet(&dir, &db, &["audit", "verify"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(
        text(&o)
            .0
            .contains("journal d'audit intègre : 3 entrées vérifiées"),
        "{:?}",
        text(&o)
    );
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db).await.unwrap();
    sqlx::query("UPDATE audit_log SET after_json = '{\"role\":\"administrateur\",\"courriel\":\"pirate@b.test\"}' WHERE seq = 3")
        .execute(&pool)
        .await
        .unwrap();
    let o = guichet(&dir, &db, &["audit", "verify"]);
    assert!(!o.status.success());
    assert!(
        text(&o).1.contains("entrée 3 : contenu modifié"),
        "{:?}",
        text(&o)
    );
    // Deleting the last entry is caught by the head.
    sqlx::query("DELETE FROM audit_log WHERE seq = 3")
        .execute(&pool)
        .await
        .unwrap();
    let o = guichet(&dir, &db, &["audit", "verify"]);
    assert!(!o.status.success());
    assert!(text(&o).1.contains("rompue"), "{:?}", text(&o));
}

// ---------------------------------------------------------------------------------------------
// guichet programme check | test, guichet simulate
// ---------------------------------------------------------------------------------------------

fn itn7_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../programmes/itn7")
}

/// Runs `guichet` with no database configured at all: the programme commands need none.
fn guichet_offline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_guichet"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", "postgres://personne@127.0.0.1:9/absente")
        .output()
        .expect("lancement de guichet")
}

/// A copy of the ITN7 programme files (without its tests) in a fresh directory.
fn itn7_copy() -> PathBuf {
    let dir = guichet_testkit::temp_dir().join("programme");
    std::fs::create_dir_all(dir.join("tests")).unwrap();
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

/// Replaces the first `anchor` of a file with `replacement`; the anchor must be there.
fn edit(path: &Path, anchor: &str, replacement: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.contains(anchor),
        "« {anchor} » absent de {}",
        path.display()
    );
    std::fs::write(path, text.replacen(anchor, replacement, 1)).unwrap();
}

/// Line (1-based) of the first occurrence of `needle` in a file.
fn line_of(path: &Path, needle: &str) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("« {needle} » absent"));
    text[..at].matches('\n').count() + 1
}

/// The diagnostic lines (`file:line:col : message`) of a file whose message contains `words`.
fn diagnostic_line(stderr: &str, file: &str, words: &str) -> usize {
    let line = stderr
        .lines()
        .find(|l| l.contains(&format!("{file}:")) && l.contains(words))
        .unwrap_or_else(|| panic!("aucun diagnostic « {words} » dans {file} :\n{stderr}"));
    let (_, after) = line.split_once(&format!("{file}:")).unwrap();
    let (line_no, rest) = after.split_once(':').unwrap();
    let (col, _message) = rest
        .split_once(" : ")
        .unwrap_or_else(|| panic!("format file:line:col : message attendu : {line}"));
    let line_no: usize = line_no.parse().unwrap();
    assert!(col.parse::<usize>().is_ok_and(|c| c >= 1), "{line}");
    line_no
}

#[test]
fn programme_check_accepts_the_itn7_folder_or_its_programme_file() {
    let dir = itn7_dir();
    for target in [dir.clone(), dir.join("programme.yaml")] {
        let o = guichet_offline(&["programme", "check", target.to_str().unwrap()]);
        let (out, err) = text(&o);
        assert!(o.status.success(), "{out}\n{err}");
        let summary = out.lines().next().unwrap_or_default();
        assert!(
            summary.starts_with("programme itn7 valide : 14 mesures, ")
                && summary.contains(" paramètres, ")
                && summary.contains(" variantes (itn7@"),
            "{out}"
        );
        // The load time is printed for operators; the 50 ms target is measured by the
        // benchmark (`cargo bench -p guichet-app --bench simulation`), not asserted here.
        assert!(
            out.lines()
                .any(|l| l.starts_with("chargé en ") && l.ends_with(" ms")),
            "durée absente :\n{out}"
        );
    }
}

#[tokio::test]
async fn the_server_refuses_to_start_on_a_broken_programme_and_says_where() {
    let (dir, db) = fresh().await;
    let programme = itn7_copy();
    edit(
        &programme.join("regles.yaml"),
        "si: labo = oui",
        "si: labo = oui et laboratoir = oui",
    );
    let o = command(&dir, &db, &["serve", "--bind", "127.0.0.1:0"])
        .env("GUICHET_PROGRAMME", &programme)
        .env("GUICHET_LOG", "warn")
        .output()
        .expect("lancement de guichet");
    let (_, err) = text(&o);
    assert!(!o.status.success(), "{err}");
    let expected = line_of(&programme.join("regles.yaml"), "laboratoir =");
    assert_eq!(
        diagnostic_line(&err, "regles.yaml", "laboratoir"),
        expected,
        "{err}"
    );
}

#[test]
fn programme_check_reports_every_problem_of_a_broken_programme_with_its_place() {
    let dir = itn7_copy();
    let regles = dir.join("regles.yaml");
    let variantes = dir.join("variantes.yaml");
    edit(
        &regles,
        "\nregles:\n",
        "\nregles:
  regle_parametre_inconnu:
    titre: Formule citant un paramètre absent
    valeur: parametre_absent * 2

  comparaison_date_nombre:
    titre: Une date comparée à un nombre
    valeur: date_depot >= 15000

  boucle_a:
    titre: Première règle de la boucle
    valeur: boucle_b + 1

  boucle_b:
    titre: Seconde règle de la boucle
    valeur: boucle_a + 1

  taux_par_tranche:
    titre: Tranches qui se chevauchent
    grille:
      assiette: population
      tranches:
        - { jusqu'à: 15000, valeur: 100 % }
        - { à partir de: 15000, valeur: 50 % }

",
    );
    edit(
        &variantes,
        "    regles:\n",
        "    regles:\n      regle_fantome:\n        titre: Absente du programme national\n        valeur: 1\n",
    );
    let o = guichet_offline(&["programme", "check", dir.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    // Each problem at the line of the offending entry, or a few lines below its key.
    let near = |line: usize, key: &str, file: &Path| {
        let at = line_of(file, key);
        assert!(
            (at..=at + 4).contains(&line),
            "{key} : ligne {line}, attendue entre {at} et {}\n{err}",
            at + 4
        );
    };
    let l = diagnostic_line(&err, "regles.yaml", "« parametre_absent »");
    assert_eq!(l, line_of(&regles, "valeur: parametre_absent"), "{err}");
    let l = diagnostic_line(&err, "regles.yaml", "type incompatible");
    near(l, "  comparaison_date_nombre:", &regles);
    let l = diagnostic_line(&err, "regles.yaml", "cycle");
    assert!(
        l == line_of(&regles, "  boucle_a:") || l == line_of(&regles, "  boucle_b:"),
        "{err}"
    );
    let l = diagnostic_line(&err, "regles.yaml", "chevauchent");
    near(l, "  taux_par_tranche:", &regles);
    let l = diagnostic_line(&err, "variantes.yaml", "« regle_fantome » n’existe pas");
    assert_eq!(l, line_of(&variantes, "regle_fantome:"), "{err}");
    assert!(out.is_empty(), "{out}");
}

/// Routing: a measure no entry of `routage` names, and a route to a directorate the
/// programme does not declare, are refused at their line.
#[test]
fn programme_check_names_the_line_of_an_unrouted_measure_and_of_an_unknown_directorate() {
    let dir = itn7_copy();
    let programme = dir.join("programme.yaml");
    edit(
        &programme,
        "mesures: [axe2.franceconnect, axe2.api]\n    service: DINUM",
        "mesures: [axe2.franceconnect]\n    service: DINUM",
    );
    edit(&programme, "service: ANSSI", "service: ANSI");
    edit(&programme, "numero_prefixe: ITN7", "numero_prefixe: itn-7");
    let o = guichet_offline(&["programme", "check", dir.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    let l = diagnostic_line(&err, "programme.yaml", "service « ANSI » inconnu");
    assert_eq!(l, line_of(&programme, "service: ANSI"), "{err}");
    let l = diagnostic_line(
        &err,
        "programme.yaml",
        "mesure axe2.api : aucun service instructeur",
    );
    assert_eq!(l, line_of(&programme, "- id: axe2.api"), "{err}");
    let l = diagnostic_line(&err, "programme.yaml", "préfixe de numéro invalide");
    assert_eq!(l, line_of(&programme, "numero_prefixe:"), "{err}");
}

/// A programme nested thousands deep (parentheses, minus signs, operators, mechanisms, rules
/// reading rules) once overflowed the stack: `programme check` and `serve` aborted (SIGABRT).
/// Each is now refused with the place of the offending formula.
#[test]
fn programme_check_refuses_formulas_nested_too_deep_and_says_where() {
    let deep_mechanism = {
        let mut y = String::from("1");
        for _ in 0..5_000 {
            y = format!("{{ somme: [{y}] }}");
        }
        y
    };
    let chain: String = (0..3_000)
        .map(|i| format!("  chaine_{i}: chaine_{} + 1\n", i + 1))
        .chain(std::iter::once("  chaine_3000: 1\n".to_string()))
        .collect();
    for (what, rules) in [
        (
            "parentheses",
            format!(
                "  trop_profonde:\n    titre: Parenthèses\n    valeur: \"{}1{}\"\n",
                "(".repeat(5_000),
                ")".repeat(5_000)
            ),
        ),
        (
            "minus signs",
            format!("  trop_profonde: \"{}1\"\n", "- ".repeat(5_000)),
        ),
        (
            "operators",
            format!("  trop_profonde: \"1{}\"\n", " + 1".repeat(20_000)),
        ),
        ("mechanisms", format!("  trop_profonde: {deep_mechanism}\n")),
        ("rules", chain),
    ] {
        let dir = itn7_copy();
        let regles = dir.join("regles.yaml");
        edit(&regles, "\nregles:\n", &format!("\nregles:\n{rules}\n"));
        let o = guichet_offline(&["programme", "check", dir.to_str().unwrap()]);
        let (out, err) = text(&o);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{what}: {:?}\n{out}\n{err}",
            o.status
        );
        assert!(!err.contains("panicked"), "{what}: {err}");
        let expected = if what == "rules" {
            line_of(&regles, "  chaine_0:")
        } else {
            line_of(&regles, "  trop_profonde:")
        };
        let l = diagnostic_line(&err, "regles.yaml", "imbriqu");
        assert!(
            (expected..=expected + 2).contains(&l),
            "{what}: ligne {l}, attendue {expected}\n{err}"
        );
        assert!(err.lines().count() < 10, "{what}: {err}");
    }
}

#[test]
fn programme_check_never_panics_on_garbage_yaml() {
    for garbage in [
        "",
        "\u{0}\u{1}\u{2}",
        ": : : [[[{",
        "\tclé: valeur",
        "- 1\n- 2\n",
        "regles: 3\nmesures: [1]\n",
        "\"guillemet non fermé",
        "a: &x [*x]",
        "x: 1\nx: 2\n",
        "---\n---\n",
    ] {
        for file in ["programme.yaml", "regles.yaml", "variantes.yaml"] {
            let dir = itn7_copy();
            std::fs::write(dir.join(file), garbage).unwrap();
            let o = guichet_offline(&["programme", "check", dir.to_str().unwrap()]);
            let (out, err) = text(&o);
            assert_eq!(
                o.status.code(),
                Some(1),
                "{file} ← {garbage:?}\n{out}\n{err}"
            );
            assert!(!err.contains("panicked"), "{file} ← {garbage:?}\n{err}");
            assert!(
                err.lines().all(|l| l.contains(".yaml:")),
                "{file} ← {garbage:?}\n{err}"
            );
        }
    }
    let o = guichet_offline(&["programme", "check", "/dossier/absent"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("dossier de programme introuvable"));
}

#[test]
fn programme_test_passes_every_itn7_case() {
    let o = guichet_offline(&["programme", "test", itn7_dir().to_str().unwrap()]);
    let (out, err) = text(&o);
    let last = out.lines().last().unwrap_or_default();
    let (passed, failed) = last.split_once(" passed, ").unwrap_or_default();
    assert!(
        passed.parse::<u32>().is_ok_and(|n| n > 0) && failed == "0 failed",
        "{out}\n{err}"
    );
    assert!(o.status.success(), "{out}\n{err}");
}

#[test]
fn programme_test_names_the_case_whose_expectation_is_wrong() {
    let dir = itn7_copy();
    let cases = dir.join("tests/dematads.yaml");
    std::fs::write(
        &cases,
        "- nom: Démat.ADS, EPCI avec 31 communes rattachées, 16 000 €
  mesure: axe3.v1.dematads
  date_depot: 2021-06-01
  situation: { type_demandeur: epci, population: 42000, region: \"84\", communes_rattachees: 31 }
  depenses: { prestation: 20000 }
  attendu: { eligible: true, montant: 16000 €, montant_max: 16000 € }

- nom: Démat.ADS, attente volontairement fausse
  mesure: axe3.v1.dematads
  date_depot: 2021-06-01
  situation: { type_demandeur: epci, population: 42000, region: \"84\", communes_rattachees: 31 }
  depenses: { prestation: 20000 }
  attendu: { eligible: true, montant: 17000 €, montant_max: 16000 € }
",
    )
    .unwrap();
    let o = guichet_offline(&["programme", "test", dir.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert_eq!(out.lines().last(), Some("1 passed, 1 failed"), "{out}");
    let header = format!(
        "{}:{} Démat.ADS, attente volontairement fausse",
        cases.display(),
        line_of(&cases, "- nom: Démat.ADS, attente")
    );
    assert!(out.lines().any(|l| l == header), "{header}\n{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("    ") && l.contains("montant")),
        "{out}"
    );
    // A programme that does not load runs no case: exit code 2, its diagnostics on stderr.
    edit(
        &dir.join("regles.yaml"),
        "arrondi: centime inférieur",
        "arrondi: au hasard",
    );
    let o = guichet_offline(&["programme", "test", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    assert!(text(&o).1.contains("regles.yaml:"), "{:?}", text(&o));
}

/// Runs `guichet` with the clock set at `horloge` (RFC 3339).
fn guichet_at(dir: &Path, db: &str, horloge: &str, args: &[&str]) -> Output {
    command(dir, db, args)
        .env("GUICHET_HORLOGE", horloge)
        .output()
        .expect("lancement de guichet")
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{:?}", text(o));
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("JSON invalide ({e}) :\n{}", text(o).0))
}

const DEMATADS: [&str; 12] = [
    "simulate",
    "--mesure",
    "axe3.v1.dematads",
    "--demandeur",
    "epci:249500109",
    "--depense",
    "prestation=20000",
    "--fait",
    "communes_rattachees=31",
    "--date-depot",
    "2021-06-01",
    "--json",
];

#[tokio::test]
async fn simulate_prints_the_dematads_aid_as_json_or_explained_in_french() {
    let (dir, db) = fresh().await;
    assert!(guichet(&dir, &db, &["referentiel", "import"])
        .status
        .success());
    let v = json(&guichet(&dir, &db, &DEMATADS));
    assert_eq!(v["mesure"], "axe3.v1.dematads");
    assert_eq!(v["eligible"], true);
    assert_eq!(v["montant_centimes"], 1_600_000);
    assert_eq!(v["taux"], "1");
    assert_eq!(v["demandeur"]["reference"], "epci:249500109");
    assert!(v["trace"].as_array().is_some_and(|t| !t.is_empty()));
    let o = guichet(&dir, &db, &DEMATADS[..11]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("Éligible"), "{out}");
    assert!(out.contains("16\u{202f}000,00\u{a0}€"), "{out}");
    assert!(err.is_empty(), "{err}");
    // French amounts are read too.
    let o = guichet(
        &dir,
        &db,
        &[
            "simulate",
            "--mesure",
            "axe3.v1.dematads",
            "--demandeur",
            "epci:249500109",
            "--depense",
            "prestation=12 345,67",
            "--fait",
            "communes_rattachees=31",
            "--date-depot",
            "2021-06-01",
            "--json",
        ],
    );
    assert_eq!(json(&o)["assiette_centimes"], 1_234_567);
}

#[tokio::test]
async fn simulate_applies_the_ile_de_france_tiers_to_cergy() {
    let (dir, db) = fresh().await;
    assert!(guichet(&dir, &db, &["referentiel", "import"])
        .status
        .success());
    let o = guichet_at(
        &dir,
        &db,
        "2021-06-01T09:00:00+02:00",
        &[
            "simulate",
            "--mesure",
            "axe3.v1.relation-usager",
            "--demandeur",
            "commune:95127",
            "--cout",
            "100000",
            "--date-fin",
            "2022-06-30",
            "--json",
        ],
    );
    let v = json(&o);
    assert_eq!(v["eligible"], true, "{v}");
    assert_eq!(v["taux"], "0.5");
    assert_eq!(v["taux_max"], "0.8");
    assert_eq!(v["montant_centimes"], 5_000_000);
    assert_eq!(v["variante"], "11");
    assert_eq!(
        v["date_depot"], "2021-06-01",
        "the clock gives the filing date"
    );
}

#[tokio::test]
async fn simulate_refuses_bad_input_with_exit_code_2_and_one_line() {
    let (dir, db) = fresh().await;
    assert!(guichet(&dir, &db, &["referentiel", "import"])
        .status
        .success());

    for (args, expected) in [
        (vec!["--mesure", "axe9.inconnue"], "mesure inconnue"),
        (
            vec!["--mesure", "axe1", "--demandeur", "commune:95999"],
            "collectivité inconnue",
        ),
        (
            vec!["--mesure", "axe3.v1.formation", "--cout", "12,345"],
            "montant invalide",
        ),
        (
            vec!["--mesure", "axe1", "--date-depot", "2021-13-01"],
            "date de dépôt invalide",
        ),
        (
            vec!["--mesure", "axe1", "--date-fin", "30/06/2022"],
            "date de fin invalide",
        ),
        (
            vec!["--mesure", "axe1", "--fait", "age_du_maire=50"],
            "fait inconnu",
        ),
        (vec!["--mesure", "axe1", "--fait", "labo"], "NOM=VALEUR"),
        (
            vec!["--mesure", "axe3.v1.formation", "--depense", "voyages=100"],
            "catégorie de dépense inconnue",
        ),
        (
            vec!["--mesure", "axe3.v1.formation", "--depense", "prestation"],
            "CATEGORIE=EUROS",
        ),
        (
            vec![
                "--mesure",
                "axe3.v1.formation",
                "--demandeur",
                "groupement:commune:95127+commune:13055",
            ],
            "région",
        ),
        // Absurd input: above the programme's plausibility ceiling (ITN7: its total, 88 M€),
        // alone or together, beyond 64 bits, or dated outside 2000–2100.
        (
            vec![
                "--mesure",
                "axe3.v1.formation",
                "--depense",
                "prestation=92233720368547758",
                "--depense",
                "formation=92233720368547758",
            ],
            "montant invraisemblable",
        ),
        (
            vec![
                "--mesure",
                "axe3.v1.formation",
                "--depense",
                "prestation=50000000",
                "--depense",
                "formation=50000000",
            ],
            "somme des lignes de dépenses : montant invraisemblable",
        ),
        (
            vec!["--mesure", "axe3.v1.formation", "--cout", "88 000 000,01"],
            "montant invraisemblable",
        ),
        (
            vec!["--mesure", "axe3.v1.formation", "--cout", "1e30"],
            "montant invalide",
        ),
        (
            vec![
                "--mesure",
                "axe3.v1.formation",
                "--cout",
                "99999999999999999999999",
            ],
            "montant invraisemblable",
        ),
        (
            vec!["--mesure", "axe1", "--date-depot", "0000-01-01"],
            "date de dépôt invraisemblable",
        ),
        (
            vec!["--mesure", "axe1", "--date-fin", "9999-12-31"],
            "date de fin invraisemblable",
        ),
    ] {
        let mut all = vec!["simulate"];
        for (option, default) in [
            ("--demandeur", "commune:95127"),
            ("--date-depot", "2021-06-01"),
        ] {
            if !args.contains(&option) {
                all.extend([option, default]);
            }
        }
        all.extend(args);
        let o = guichet(&dir, &db, &all);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{all:?}: {err}");
        assert!(out.is_empty(), "{all:?}: {out}");
        assert_eq!(err.lines().count(), 1, "{all:?}: {err}");
        assert!(err.starts_with("erreur : "), "{all:?}: {err}");
        assert!(err.contains(expected), "{all:?}: {err}");
    }
}

#[tokio::test]
async fn simulate_without_the_referential_says_to_import_it() {
    let (dir, db) = fresh().await;
    let o = guichet(&dir, &db, &DEMATADS);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("guichet referentiel import"), "{err}");
}

#[tokio::test]
async fn simulate_and_programme_explain_their_options_in_french() {
    let (dir, db) = fresh().await;
    let (out, _) = text(&guichet(&dir, &db, &["--help"]));
    assert!(
        out.contains("simulate") && out.contains("programme"),
        "{out}"
    );
    let (out, _) = text(&guichet(&dir, &db, &["simulate", "--help"]));
    for word in [
        "--mesure",
        "--demandeur",
        "--cout",
        "--depense",
        "--date-depot",
        "--date-fin",
        "--fait",
        "--json",
        "Codes de sortie",
    ] {
        assert!(out.contains(word), "{word} absent de l’aide :\n{out}");
    }
    let (out, _) = text(&guichet(&dir, &db, &["programme", "test", "--help"]));
    assert!(
        out.contains("DOSSIER") && out.contains("Codes de sortie"),
        "{out}"
    );
}

#[tokio::test]
async fn a_database_password_is_never_printed() {
    let dir = guichet_testkit::temp_dir();
    for url in [
        // Does not parse (port), then cannot be reached, then a password in the query.
        "postgres://guichet:Tr3sS3cret@db.exemple.fr:port/guichet",
        "postgres://guichet:Tr3s/S3cret@db.exemple.fr/guichet",
        "postgres://guichet:Tr3sS3cret@127.0.0.1:9/guichet",
        "postgres://guichet@127.0.0.1:9/guichet?password=Tr3sS3cret",
    ] {
        let o = command(&dir, url, &["migrate"])
            .env("GUICHET_LOG", "debug")
            .output()
            .expect("lancement de guichet");
        assert!(!o.status.success(), "{url}");
        let (out, err) = text(&o);
        assert!(
            !out.contains("Tr3s") && !err.contains("Tr3s"),
            "{url} :\n{out}\n{err}"
        );
        assert!(err.contains("***"), "{url} :\n{err}");
    }
}

#[tokio::test]
async fn trust_proxy_accepts_the_usual_spellings_and_refuses_others() {
    let (dir, db) = fresh().await;
    for v in ["yes", "oui", "on", "true", "1", "2", "non", "off"] {
        let o = command(&dir, &db, &["migrate"])
            .env("GUICHET_TRUST_PROXY", v)
            .output()
            .unwrap();
        assert!(o.status.success(), "{v} : {:?}", text(&o));
    }
    let o = command(&dir, &db, &["migrate"])
        .env("GUICHET_TRUST_PROXY", "peut-être")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let (_, err) = text(&o);
    assert!(
        err.contains("GUICHET_TRUST_PROXY") && err.contains("peut-être"),
        "{err}"
    );
}

#[tokio::test]
async fn an_api_token_is_printed_once_as_the_last_line_listed_without_its_secret_and_revoked() {
    let (dir, db) = fresh().await;
    assert!(
        guichet(&dir, &db, &["referentiel", "import", "--millesime", "2021"])
            .status
            .success()
    );
    let o = guichet(
        &dir,
        &db,
        &[
            "admin",
            "create-user",
            "--email",
            "agent@val-doise.test",
            "--role",
            "instructeur",
            "--territoire",
            "95",
        ],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let create = |extra: &[&str]| {
        let mut args = vec!["admin", "token", "create", "--service", "pref-95"];
        args.extend_from_slice(extra);
        guichet(&dir, &db, &args)
    };
    let o = create(&[
        "--portee",
        "lecture",
        "--expire",
        "2030-12-31",
        "--nom",
        "tableau de bord",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let (out, _) = text(&o);
    let secret = out.lines().last().unwrap_or_default().to_string();
    assert!(secret.starts_with("guichet_") && secret.len() > 40, "{out}");
    // Wrong reach, wrong date, unknown service: French messages, nothing created.
    for (extra, expected) in [
        (vec!["--portee", "tout"], "portée de jeton inconnue"),
        (
            vec!["--portee", "lecture", "--expire", "31/12/2030"],
            "AAAA-MM-JJ",
        ),
    ] {
        let o = create(&extra);
        assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
        assert!(text(&o).1.contains(expected), "{:?}", text(&o));
    }
    let o = guichet(
        &dir,
        &db,
        &[
            "admin",
            "token",
            "create",
            "--service",
            "pref-999",
            "--portee",
            "lecture",
        ],
    );
    assert!(!o.status.success());
    assert!(
        text(&o).1.contains("service « pref-999 » inconnu"),
        "{:?}",
        text(&o)
    );
    let o = guichet(&dir, &db, &["admin", "token", "list"]);
    let (out, _) = text(&o);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("pref-95") && out.contains("lecture") && out.contains("tableau de bord"));
    assert!(!out.contains(&secret));
    let id = out
        .trim_start_matches("n° ")
        .split('\t')
        .next()
        .unwrap_or_default()
        .to_string();
    let o = guichet(&dir, &db, &["admin", "token", "revoke", &id]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = guichet(&dir, &db, &["admin", "token", "revoke", &id]);
    assert!(!o.status.success());
    assert!(text(&o).1.contains("déjà révoqué"), "{:?}", text(&o));
    let (out, _) = text(&guichet(&dir, &db, &["admin", "token", "list"]));
    assert!(out.contains("révoqué le"), "{out}");
}

#[tokio::test]
async fn a_webhook_secret_is_printed_once_as_the_last_line_listed_without_it_and_disabled() {
    let (dir, db) = fresh().await;
    assert!(
        guichet(&dir, &db, &["referentiel", "import", "--millesime", "2021"])
            .status
            .success()
    );
    let o = guichet(
        &dir,
        &db,
        &[
            "admin",
            "create-user",
            "--email",
            "agent@val-doise.test",
            "--role",
            "instructeur",
            "--territoire",
            "95",
        ],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let create = |url: &str| {
        guichet(
            &dir,
            &db,
            &[
                "admin",
                "webhook",
                "create",
                "--service",
                "pref-95",
                "--url",
                url,
            ],
        )
    };
    let o = create("https://instruction.exemple.fr/guichet");
    assert!(o.status.success(), "{:?}", text(&o));
    let (out, _) = text(&o);
    let secret = out.lines().last().unwrap_or_default().to_string();
    assert_eq!(secret.len(), 64, "{out}");
    assert!(secret.chars().all(|c| c.is_ascii_hexdigit()), "{out}");
    // Plain http elsewhere than this machine: refused, input to correct.
    let o = create("http://instruction.exemple.fr/guichet");
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    assert!(
        text(&o)
            .1
            .contains("http:// n’est accepté que vers 127.0.0.1 ou localhost"),
        "{:?}",
        text(&o)
    );
    let (out, _) = text(&guichet(&dir, &db, &["admin", "webhook", "list"]));
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("pref-95") && out.contains("https://instruction.exemple.fr/guichet"));
    assert!(out.contains("actif") && !out.contains(&secret), "{out}");
    let id = out
        .trim_start_matches("n° ")
        .split('\t')
        .next()
        .unwrap_or_default()
        .to_string();
    let o = guichet(&dir, &db, &["admin", "webhook", "disable", &id]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = guichet(&dir, &db, &["admin", "webhook", "disable", &id]);
    assert!(!o.status.success());
    assert!(text(&o).1.contains("déjà désactivé"), "{:?}", text(&o));
    let (out, _) = text(&guichet(&dir, &db, &["admin", "webhook", "list"]));
    assert!(out.contains("désactivé le"), "{out}");
}
