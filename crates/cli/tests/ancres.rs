//! The audit chain anchored outside the database (`guichet audit cle`, `audit ancrer`,
//! `audit verify --ancres`), and `guichet worker` running the job queue, as an operator would.

use sqlx::Row;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `guichet ARGS` with a clean environment on the given data directory and database.
fn command(dir: &Path, db: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_guichet"));
    c.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", db)
        .env("GUICHET_DATA_DIR", dir)
        .env("GUICHET_LOG", "warn");
    c
}

fn guichet(dir: &Path, db: &str, args: &[&str]) -> Output {
    command(dir, db, args)
        .output()
        .expect("lancement de guichet")
}

/// With the anchoring key configured.
fn guichet_signed(dir: &Path, db: &str, args: &[&str]) -> Output {
    command(dir, db, args)
        .env("GUICHET_AUDIT_CLE", dir.join("audit.pem"))
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

fn create_admin(dir: &Path, db: &str, email: &str) {
    let o = guichet(
        dir,
        db,
        &[
            "admin",
            "create-user",
            "--email",
            email,
            "--role",
            "administrateur",
        ],
    );
    assert!(o.status.success(), "{:?}", text(&o));
}

/// A database with four audit entries, a key, and a checkpoint of the head (entry 4).
async fn anchored() -> (PathBuf, String, sqlx::AnyPool) {
    let (dir, db) = fresh().await;
    for who in ["a", "b", "c", "d"] {
        create_admin(&dir, &db, &format!("{who}@exemple.fr"));
    }
    let key = dir.join("audit.pem");
    let o = guichet(
        &dir,
        &db,
        &["audit", "cle", "--sortie", key.to_str().unwrap()],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let public = std::fs::read_to_string(dir.join("audit.pub")).unwrap();
    assert!(text(&o).0.contains(public.trim()), "{:?}", text(&o));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "clé privée lisible par son seul propriétaire"
        );
    }
    // Never overwrites a key.
    let o = guichet(
        &dir,
        &db,
        &["audit", "cle", "--sortie", key.to_str().unwrap()],
    );
    assert!(!o.status.success());
    assert!(
        text(&o).1.contains("il ne doit pas exister"),
        "{:?}",
        text(&o)
    );

    let o = guichet_signed(&dir, &db, &["audit", "ancrer"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(text(&o).0.contains("entrée n° 4"), "{:?}", text(&o));
    // The same head twice makes one checkpoint.
    let o = guichet_signed(&dir, &db, &["audit", "ancrer"]);
    assert!(text(&o).0.contains("atteste déjà"), "{:?}", text(&o));
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db).await.unwrap();
    (dir, db, pool)
}

fn verify_anchored(dir: &Path, db: &str) -> Output {
    let anchors = dir.join("ancres");
    let public = dir.join("audit.pub");
    guichet(
        dir,
        db,
        &[
            "audit",
            "verify",
            "--ancres",
            anchors.to_str().unwrap(),
            "--cle-publique",
            public.to_str().unwrap(),
        ],
    )
}

#[tokio::test]
async fn an_intact_chain_passes_its_checkpoints() {
    let (dir, db, _pool) = anchored().await;
    // Entries written after the checkpoint are fine.
    create_admin(&dir, &db, "e@exemple.fr");
    let o = verify_anchored(&dir, &db);
    assert!(o.status.success(), "{:?}", text(&o));
    let (out, _) = text(&o);
    assert!(out.contains("5 entrées vérifiées"), "{out}");
    assert!(
        out.contains("1 ancre(s) vérifiée(s) ; la plus récente atteste l'entrée n° 4"),
        "{out}"
    );
    // Without --cle-publique, the configured key's public half is used.
    let o = guichet_signed(
        &dir,
        &db,
        &[
            "audit",
            "verify",
            "--ancres",
            dir.join("ancres").to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    // Another key does not vouch for these checkpoints.
    let other = dir.join("autre.pem");
    assert!(guichet(
        &dir,
        &db,
        &["audit", "cle", "--sortie", other.to_str().unwrap()]
    )
    .status
    .success());
    let o = guichet(
        &dir,
        &db,
        &[
            "audit",
            "verify",
            "--ancres",
            dir.join("ancres").to_str().unwrap(),
            "--cle-publique",
            dir.join("autre.pub").to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    assert!(text(&o).1.contains("signature invalide"), "{:?}", text(&o));
}

#[tokio::test]
async fn a_truncated_chain_with_its_head_moved_back_is_caught_by_the_checkpoint() {
    let (dir, db, pool) = anchored().await;
    // Whoever writes the database deletes the last two entries and moves the head back: the
    // chain alone still looks whole.
    let row = sqlx::query("SELECT seq, hash FROM audit_log WHERE seq = 2")
        .fetch_one(&pool)
        .await
        .unwrap();
    let (seq, hash): (i64, String) = (row.get("seq"), row.get("hash"));
    sqlx::query("DELETE FROM audit_log WHERE seq > 2")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(seq)
        .bind(&hash)
        .execute(&pool)
        .await
        .unwrap();
    let o = guichet(&dir, &db, &["audit", "verify"]);
    assert!(
        o.status.success(),
        "sans ancre, rien ne se voit : {:?}",
        text(&o)
    );

    let o = verify_anchored(&dir, &db);
    assert!(!o.status.success());
    let (_, err) = text(&o);
    assert!(
        err.contains("troncature : l’ancre du")
            && err.contains("atteste l’entrée n° 4 ; le journal s’arrête à l’entrée n° 2"),
        "{err}"
    );
    assert!(err.contains("non conforme à ses ancres"), "{err}");
}

#[tokio::test]
async fn a_rewritten_chain_with_every_hash_recomputed_is_caught_by_the_checkpoint() {
    let (dir, db, pool) = anchored().await;
    // Entry 2 is edited, then every hash from it on is recomputed and the head updated.
    sqlx::query("UPDATE audit_log SET after_json = '{\"courriel\":\"pirate@exemple.fr\",\"role\":\"administrateur\"}' WHERE seq = 2")
        .execute(&pool)
        .await
        .unwrap();
    let rows = sqlx::query(
        "SELECT seq, at, actor, action, object_type, object_id, before_json, after_json FROM audit_log ORDER BY seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut prev = guichet_domain::audit::GENESIS_HASH.to_string();
    let mut last = 0;
    for r in &rows {
        let seq: i64 = r.get("seq");
        let hash = guichet_domain::audit::entry_hash(
            seq,
            &r.get::<String, _>("at"),
            &r.get::<String, _>("actor"),
            &r.get::<String, _>("action"),
            &r.get::<String, _>("object_type"),
            &r.get::<String, _>("object_id"),
            r.get::<Option<String>, _>("before_json").as_deref(),
            r.get::<Option<String>, _>("after_json").as_deref(),
            &prev,
        );
        sqlx::query("UPDATE audit_log SET prev_hash = $1, hash = $2 WHERE seq = $3")
            .bind(&prev)
            .bind(&hash)
            .bind(seq)
            .execute(&pool)
            .await
            .unwrap();
        prev = hash;
        last = seq;
    }
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(last)
        .bind(&prev)
        .execute(&pool)
        .await
        .unwrap();
    let o = guichet(&dir, &db, &["audit", "verify"]);
    assert!(
        o.status.success(),
        "sans ancre, rien ne se voit : {:?}",
        text(&o)
    );

    let o = verify_anchored(&dir, &db);
    assert!(!o.status.success());
    let (_, err) = text(&o);
    assert!(
        err.contains("réécriture : l’entrée n° 4 n’a plus l’empreinte attestée par l’ancre du"),
        "{err}"
    );
}

#[tokio::test]
async fn an_edited_checkpoint_file_is_refused() {
    let (dir, db, _pool) = anchored().await;
    let anchors = dir.join("ancres");
    let file = std::fs::read_dir(&anchors)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let text_before = std::fs::read_to_string(&file).unwrap();
    let edited = text_before.replace("\"seq\": 4", "\"seq\": 3");
    assert_ne!(edited, text_before);
    std::fs::write(&file, edited).unwrap();
    let o = verify_anchored(&dir, &db);
    assert!(!o.status.success());
    assert!(text(&o).1.contains("signature invalide"), "{:?}", text(&o));
    // An empty folder proves nothing: said, not passed.
    let empty = dir.join("vide");
    std::fs::create_dir_all(&empty).unwrap();
    let o = guichet(
        &dir,
        &db,
        &[
            "audit",
            "verify",
            "--ancres",
            empty.to_str().unwrap(),
            "--cle-publique",
            dir.join("audit.pub").to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    assert!(text(&o).1.contains("aucune ancre"), "{:?}", text(&o));
}

#[tokio::test]
async fn guichet_worker_sends_the_mail_that_create_user_queued_and_stops_on_sigterm() {
    let (dir, db) = fresh().await;
    create_admin(&dir, &db, "nouvel.admin@exemple.fr");
    let mails = || {
        std::fs::read_dir(dir.join("courriels"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    assert_eq!(mails(), 0, "le courriel attend un travailleur");
    let worker = command(&dir, &db, &["worker", "--nombre", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("guichet worker");
    let deadline = Instant::now() + Duration::from_secs(30);
    while mails() == 0 {
        assert!(
            Instant::now() < deadline,
            "aucun courriel envoyé par le travailleur"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mail = std::fs::read_dir(dir.join("courriels"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .next()
        .unwrap();
    assert!(mail.contains("nouvel.admin@exemple.fr"), "{mail}");
    assert!(mail.contains("mot-de-passe/definir?jeton="), "{mail}");
    // SIGTERM: the worker finishes what it holds and exits cleanly.
    let pid = i32::try_from(worker.id()).unwrap();
    // SAFETY: sending a signal to the child process this test started.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let out = worker.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("travailleurs arrêtés"), "{stdout}");
}
