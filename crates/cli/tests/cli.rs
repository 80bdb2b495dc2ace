//! The `guichet` binary, run as an operator would: exit codes and messages.

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
