//! The migration tree: one list, each migration described once with sea-query's schema builder
//! and rendered for the backend at hand. Applied in order, each in its own transaction, and
//! recorded in `schema_migrations`. On PostgreSQL an advisory lock keeps concurrent instances
//! from migrating at the same time; SQLite serialises writers itself.

use crate::db::{Backend, Db};
use crate::error::StorageError;
use guichet_domain::audit::GENESIS_HASH;
use sea_query::{
    Alias, ColumnDef, ForeignKey, ForeignKeyAction, Index, IndexCreateStatement,
    PostgresQueryBuilder, SchemaBuilder, SqliteQueryBuilder, Table, TableCreateStatement,
};

struct Migration {
    version: i64,
    name: &'static str,
    statements: fn() -> Vec<Ddl>,
}

enum Ddl {
    Table(TableCreateStatement),
    Index(IndexCreateStatement),
    /// Portable data statement with one text parameter.
    SqlWith(&'static str, &'static str),
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "referentiel",
        statements: m0001_referentiel,
    },
    Migration {
        version: 2,
        name: "comptes",
        statements: m0002_comptes,
    },
    Migration {
        version: 3,
        name: "journal",
        statements: m0003_journal,
    },
    Migration {
        version: 6,
        name: "travaux",
        statements: m0006_travaux,
    },
];

fn a(name: &str) -> Alias {
    Alias::new(name)
}

fn text(name: &str) -> ColumnDef {
    ColumnDef::new(a(name)).text().not_null().to_owned()
}

fn text_null(name: &str) -> ColumnDef {
    ColumnDef::new(a(name)).text().null().to_owned()
}

fn int(name: &str) -> ColumnDef {
    ColumnDef::new(a(name)).big_integer().not_null().to_owned()
}

fn int_null(name: &str) -> ColumnDef {
    ColumnDef::new(a(name)).big_integer().null().to_owned()
}

fn id(name: &str) -> ColumnDef {
    ColumnDef::new(a(name))
        .big_integer()
        .not_null()
        .auto_increment()
        .primary_key()
        .to_owned()
}

fn index(name: &str, table: &str, cols: &[&str]) -> Ddl {
    let mut i = Index::create()
        .name(name)
        .table(a(table))
        .if_not_exists()
        .to_owned();
    for c in cols {
        i.col(a(c));
    }
    Ddl::Index(i)
}

fn pk(cols: &[&str]) -> sea_query::IndexCreateStatement {
    let mut i = Index::create();
    for c in cols {
        i.col(a(c));
    }
    i.to_owned()
}

fn m0001_referentiel() -> Vec<Ddl> {
    vec![
        Ddl::Table(
            Table::create()
                .table(a("ref_imports"))
                .col(int("vintage").primary_key())
                .col(text("source"))
                .col(text("imported_at"))
                .col(int("communes"))
                .col(int("epci"))
                .to_owned(),
        ),
        Ddl::Table(
            Table::create()
                .table(a("ref_regions"))
                .col(int("vintage"))
                .col(text("code"))
                .col(text("name"))
                .col(int("liaison"))
                .col(int("population"))
                .primary_key(&mut pk(&["vintage", "code"]))
                .to_owned(),
        ),
        Ddl::Table(
            Table::create()
                .table(a("ref_departements"))
                .col(int("vintage"))
                .col(text("code"))
                .col(text("name"))
                .col(int("liaison"))
                .col(text("region_code"))
                .col(int("population"))
                .primary_key(&mut pk(&["vintage", "code"]))
                .to_owned(),
        ),
        Ddl::Table(
            Table::create()
                .table(a("ref_communes"))
                .col(int("vintage"))
                .col(text("insee"))
                .col(text("name"))
                .col(text("departement_code"))
                .col(text_null("region_code"))
                .col(text("postcodes"))
                .col(int("population"))
                .col(text_null("siren"))
                .col(text_null("epci_siren"))
                .primary_key(&mut pk(&["vintage", "insee"]))
                .to_owned(),
        ),
        index(
            "ref_communes_epci",
            "ref_communes",
            &["vintage", "epci_siren"],
        ),
        index(
            "ref_communes_dep",
            "ref_communes",
            &["vintage", "departement_code"],
        ),
        Ddl::Table(
            Table::create()
                .table(a("ref_epci"))
                .col(int("vintage"))
                .col(text("siren"))
                .col(text("name"))
                .col(text("epci_type"))
                .col(int("population"))
                .col(int_null("population_source"))
                .primary_key(&mut pk(&["vintage", "siren"]))
                .to_owned(),
        ),
    ]
}

fn m0002_comptes() -> Vec<Ddl> {
    vec![
        Ddl::Table(
            Table::create()
                .table(a("services"))
                .col(id("id"))
                .col(text("code").unique_key())
                .col(text("kind"))
                .col(text("name"))
                .col(text("territory_code"))
                .col(text_null("region_code"))
                .col(text("created_at"))
                .to_owned(),
        ),
        Ddl::Table(
            Table::create()
                .table(a("users"))
                .col(id("id"))
                .col(text("email").unique_key())
                .col(text("display_name"))
                .col(text("role"))
                .col(int_null("service_id"))
                .col(text_null("password_hash"))
                .col(text("created_at"))
                .col(text_null("password_changed_at"))
                .col(text_null("disabled_at"))
                .foreign_key(
                    ForeignKey::create()
                        .from(a("users"), a("service_id"))
                        .to(a("services"), a("id"))
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .to_owned(),
        ),
        index("users_service", "users", &["service_id"]),
        Ddl::Table(
            Table::create()
                .table(a("user_collectivites"))
                .col(int("user_id"))
                .col(text("kind"))
                .col(text("code"))
                .primary_key(&mut pk(&["user_id", "kind", "code"]))
                .foreign_key(
                    ForeignKey::create()
                        .from(a("user_collectivites"), a("user_id"))
                        .to(a("users"), a("id"))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        ),
        index(
            "user_collectivites_ref",
            "user_collectivites",
            &["kind", "code"],
        ),
        // Sessions are keyed by the hash of the cookie token; `auth_method` and `idp_*` leave room
        // for OpenID Connect (ProConnect) sessions next to password ones.
        Ddl::Table(
            Table::create()
                .table(a("sessions"))
                .col(text("id_hash").primary_key())
                .col(int("user_id"))
                .col(text("csrf_token"))
                .col(text("auth_method"))
                .col(text_null("idp_issuer"))
                .col(text_null("idp_session"))
                .col(text("created_at"))
                .col(text("last_seen_at"))
                .col(text("expires_at"))
                .col(text_null("ip"))
                .col(text_null("user_agent"))
                .foreign_key(
                    ForeignKey::create()
                        .from(a("sessions"), a("user_id"))
                        .to(a("users"), a("id"))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        ),
        index("sessions_user", "sessions", &["user_id"]),
        index("sessions_expiry", "sessions", &["expires_at"]),
        Ddl::Table(
            Table::create()
                .table(a("auth_tokens"))
                .col(text("token_hash").primary_key())
                .col(int("user_id"))
                .col(text("purpose"))
                .col(text("created_at"))
                .col(text("expires_at"))
                .col(text_null("used_at"))
                .foreign_key(
                    ForeignKey::create()
                        .from(a("auth_tokens"), a("user_id"))
                        .to(a("users"), a("id"))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        ),
        index("auth_tokens_user", "auth_tokens", &["user_id"]),
        Ddl::Table(
            Table::create()
                .table(a("login_throttle"))
                .col(text("key").primary_key())
                .col(text("window_start"))
                .col(int("failures"))
                .col(text_null("locked_until"))
                .to_owned(),
        ),
    ]
}

fn m0003_journal() -> Vec<Ddl> {
    vec![
        Ddl::Table(
            Table::create()
                .table(a("audit_log"))
                .col(int("seq").primary_key())
                .col(text("at"))
                .col(text("actor"))
                .col(text("action"))
                .col(text("object_type"))
                .col(text("object_id"))
                .col(text_null("before_json"))
                .col(text_null("after_json"))
                .col(text("prev_hash"))
                .col(text("hash"))
                .to_owned(),
        ),
        index(
            "audit_log_object",
            "audit_log",
            &["object_type", "object_id"],
        ),
        // One row holding the chain's head: updating it serialises writers on both engines.
        Ddl::Table(
            Table::create()
                .table(a("audit_head"))
                .col(int("id").primary_key())
                .col(int("seq"))
                .col(text("hash"))
                .to_owned(),
        ),
        Ddl::SqlWith(
            "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, $1)",
            GENESIS_HASH,
        ),
    ]
}

/// The job queue (`storage::jobs`).
fn m0006_travaux() -> Vec<Ddl> {
    vec![
        Ddl::Table(
            Table::create()
                .table(a("jobs"))
                .col(id("id"))
                .col(text("kind"))
                .col(text("payload"))
                .col(text("state"))
                .col(text("run_after"))
                .col(int("attempts"))
                .col(int("max_attempts"))
                .col(text_null("last_error"))
                .col(text_null("lease_owner"))
                .col(text_null("lease_until"))
                .col(text_null("unique_key"))
                .col(text("created_at"))
                .col(text_null("finished_at"))
                .to_owned(),
        ),
        // Claiming scans due pending jobs in order.
        index("jobs_due", "jobs", &["state", "run_after"]),
        // One job per key (a periodic job's period), whichever instance enqueues it.
        Ddl::Index(
            Index::create()
                .name("jobs_unique_key")
                .table(a("jobs"))
                .col(a("unique_key"))
                .unique()
                .if_not_exists()
                .to_owned(),
        ),
    ]
}

fn render(backend: Backend, ddl: &Ddl) -> String {
    fn build(backend: Backend, f: impl Fn(&dyn SchemaBuilder) -> String) -> String {
        match backend {
            Backend::Sqlite => f(&SqliteQueryBuilder),
            Backend::Postgres => f(&PostgresQueryBuilder),
        }
    }
    match ddl {
        Ddl::Table(t) => build(backend, |b| t.build_any(b)),
        Ddl::Index(i) => build(backend, |b| i.build_any(b)),
        Ddl::SqlWith(s, _) => (*s).to_string(),
    }
}

pub(crate) async fn run(db: &Db) -> Result<Vec<i64>, StorageError> {
    let pool = db.pool();
    let mut conn = pool.acquire().await?;
    if db.backend() == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_lock(7428190)")
            .execute(&mut *conn)
            .await?;
    }
    let result = apply(db.backend(), &mut conn).await;
    if db.backend() == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_unlock(7428190)")
            .execute(&mut *conn)
            .await?;
    }
    result
}

async fn apply(backend: Backend, conn: &mut sqlx::AnyConnection) -> Result<Vec<i64>, StorageError> {
    let create = Table::create()
        .table(a("schema_migrations"))
        .if_not_exists()
        .col(int("version").primary_key())
        .col(text("name"))
        .col(text("applied_at"))
        .to_owned();
    sqlx::query(&render(backend, &Ddl::Table(create)))
        .execute(&mut *conn)
        .await?;
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
            .fetch_all(&mut *conn)
            .await?;
    let known_max = MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0);
    if let Some(v) = applied.iter().copied().find(|v| *v > known_max) {
        return Err(StorageError::FutureSchema(v));
    }
    let mut done = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        let err = |source| StorageError::Migration {
            version: m.version,
            name: m.name,
            source,
        };
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(err)?;
        for ddl in (m.statements)() {
            let sql = render(backend, &ddl);
            let q = sqlx::query(&sql);
            let q = match &ddl {
                Ddl::SqlWith(_, p) => q.bind(*p),
                _ => q,
            };
            q.execute(&mut *tx).await.map_err(err)?;
        }
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.name)
        // Operational metadata: the real time of the migration, not the business clock.
        .bind(crate::time::format_ts(chrono::Utc::now()))
        .execute(&mut *tx)
        .await
        .map_err(err)?;
        tx.commit().await.map_err(err)?;
        tracing::info!(version = m.version, name = m.name, "migration appliquée");
        done.push(m.version);
    }
    Ok(done)
}
