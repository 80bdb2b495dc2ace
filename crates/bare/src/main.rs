//! `guichet-bare`: the floor the load benchmarks compare Guichet with.
//!
//! A bare axum + sqlx server on the same database and with the same pool as Guichet
//! (`guichet_storage::Db::connect`: sqlx `Any`, SQLite in WAL with `busy_timeout=5000` and
//! `synchronous=NORMAL`, `GUICHET_DB_MAX_CONNECTIONS` connections, 8 by default), answering
//! `GET /page?after=ID` (20 rows as JSON, keyset pagination) and `POST /insert` (one row). No
//! session, no template, no middleware: what it reaches is what axum + sqlx + the database cost.

use anyhow::Context;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use guichet_storage::{Backend, Db};
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// Rows per multi-row INSERT when seeding (4 parameters each; see docs/architecture.md on
/// binding cost).
const SEED_BATCH: usize = 50;
/// Rows a page answers.
const PAGE: i64 = 20;

#[derive(Parser, Debug)]
#[command(
    name = "guichet-bare",
    about = "Serveur nu axum + base de données, plancher des mesures de charge (DATABASE_URL)"
)]
struct Cli {
    /// Address to listen on (port 0: any free port; the address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:8090")]
    bind: String,
    /// Fill `bare_rows` up to N rows (without it: 100,000 when the table is empty).
    #[arg(long)]
    seed: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RowOut {
    id: i64,
    title: String,
    amount: i64,
    created_at: String,
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    after: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct NewRow {
    title: String,
    amount: i64,
}

struct Failure(anyhow::Error);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, format!("{:#}", self.0)).into_response()
    }
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.into())
    }
}

async fn page(
    State(db): State<Db>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Vec<RowOut>>, Failure> {
    let rows = sqlx::query(
        "SELECT id, title, amount, created_at FROM bare_rows WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(q.after.unwrap_or(0))
    .bind(PAGE)
    .fetch_all(db.pool())
    .await?;
    let out = rows
        .iter()
        .map(|r| {
            Ok(RowOut {
                id: r.try_get(0)?,
                title: r.try_get(1)?,
                amount: r.try_get(2)?,
                created_at: r.try_get(3)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Json(out))
}

async fn insert(
    State(db): State<Db>,
    Json(row): Json<NewRow>,
) -> Result<Json<serde_json::Value>, Failure> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO bare_rows (title, amount, created_at) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(row.title)
    .bind(row.amount)
    .bind(now_text())
    .fetch_one(db.pool())
    .await?;
    Ok(Json(serde_json::json!({ "id": id })))
}

/// The current time as Guichet stores it: fixed-width RFC 3339 UTC text.
fn now_text() -> String {
    guichet_storage::format_ts(chrono::Utc::now())
}

async fn create_table(db: &Db) -> anyhow::Result<()> {
    let id = match db.backend() {
        Backend::Sqlite => "id INTEGER PRIMARY KEY AUTOINCREMENT",
        Backend::Postgres => "id BIGSERIAL PRIMARY KEY",
    };
    let ddl = format!(
        "CREATE TABLE IF NOT EXISTS bare_rows ({id}, title TEXT NOT NULL, \
         amount BIGINT NOT NULL, created_at TEXT NOT NULL)"
    );
    sqlx::query(&ddl)
        .execute(db.pool())
        .await
        .context("création de la table bare_rows")?;
    Ok(())
}

/// Fills `bare_rows` up to `target` rows, `SEED_BATCH` rows per INSERT, in one transaction.
async fn seed(db: &Db, target: i64) -> anyhow::Result<i64> {
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bare_rows")
        .fetch_one(db.pool())
        .await?;
    if count >= target {
        return Ok(0);
    }
    let missing = target - count;
    let created_at = now_text();
    let mut tx = db.pool().begin().await?;
    let mut done = 0i64;
    while done < missing {
        let n = usize::try_from((missing - done).min(SEED_BATCH as i64))?;
        let mut sql = String::from("INSERT INTO bare_rows (title, amount, created_at) VALUES ");
        for i in 0..n {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3));
        }
        let mut q = sqlx::query(&sql);
        for i in 0..n as i64 {
            let k = count + done + i + 1;
            q = q
                .bind(format!("Ligne n° {k}"))
                .bind(k * 137 % 1_000_000)
                .bind(created_at.clone());
        }
        q.execute(&mut *tx).await?;
        done += n as i64;
    }
    tx.commit().await?;
    Ok(missing)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let url = std::env::var("DATABASE_URL")
        .context("DATABASE_URL manquante (sqlite://… ou postgres://…)")?;
    let pool_size = match std::env::var("GUICHET_DB_MAX_CONNECTIONS") {
        Ok(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .with_context(|| format!("GUICHET_DB_MAX_CONNECTIONS invalide : « {v} »"))?,
        Err(_) => 8,
    };
    let db = Db::connect(&url, pool_size).await?;
    create_table(&db).await?;
    let empty: bool = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM bare_rows")
        .fetch_one(db.pool())
        .await?
        == 0;
    if let Some(target) = cli.seed.or(empty.then_some(100_000)) {
        let added = seed(&db, target).await?;
        eprintln!("bare_rows : {added} lignes ajoutées (cible {target})");
    }
    let app = Router::new()
        .route("/page", get(page))
        .route("/insert", post(insert))
        .with_state(db);
    let listener = tokio::net::TcpListener::bind(&cli.bind)
        .await
        .with_context(|| format!("écoute sur {}", cli.bind))?;
    // The one line on stdout: the address, for scripts and tests that bind port 0.
    println!("{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
