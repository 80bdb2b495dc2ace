//! A fresh database for each test, on the backend the suite runs against.
//!
//! `GUICHET_TEST_DATABASE=postgres` runs the suite on PostgreSQL (server from
//! `GUICHET_TEST_PG_URL`, default `postgres://postgres@127.0.0.1:5432/test`): each test gets its
//! own database, named `guichet_t_<uuid>` (the test script drops leftovers before a run).
//! Otherwise each test gets its own SQLite file. A PostgreSQL run with an unreachable server
//! fails loudly: it never turns into a silent pass.

use std::path::{Path, PathBuf};

pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub fn backend() -> &'static str {
    match std::env::var("GUICHET_TEST_DATABASE").as_deref() {
        Ok("postgres") => "postgres",
        _ => "sqlite",
    }
}

/// A temporary directory unique to this test (kept after the run for inspection under target/).
pub fn temp_dir() -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("guichet-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("temporary directory {}: {e}", dir.display()));
    dir
}

/// Creates an empty database and returns its URL.
pub async fn fresh_database_url(dir: &Path) -> String {
    if backend() != "postgres" {
        return format!("sqlite://{}/guichet.sqlite", dir.display());
    }
    use sqlx::{Connection, Executor};
    let base = std::env::var("GUICHET_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_string());
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| {
            panic!("GUICHET_TEST_DATABASE=postgres but PostgreSQL at {base} is unreachable: {e}")
        });
    let name = format!("guichet_t_{}", uuid::Uuid::new_v4().simple());
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
    let (prefix, _) = base.rsplit_once('/').unwrap_or((base.as_str(), ""));
    format!("{prefix}/{name}")
}
