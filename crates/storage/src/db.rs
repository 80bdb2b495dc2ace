//! Connecting to SQLite or PostgreSQL behind one pool type, with each engine's settings.

use crate::error::StorageError;
use crate::migrations;
use either::Either;
use futures_core::future::BoxFuture;
use futures_core::stream::BoxStream;
use sqlx::any::{
    AnyConnectOptions, AnyPoolOptions, AnyQueryResult, AnyRow, AnyStatement, AnyTypeInfo,
};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, ConnectOptions, Execute, Executor, Transaction};
use std::str::FromStr;
use std::time::Duration;

/// An open transaction (or one taken from [`Db::begin_write`]).
pub type Tx = Transaction<'static, Any>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The statement opening a transaction that may read then write (see `Db::begin_write`).
    pub(crate) fn begin_write(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }
}

/// A handle on the database: a connection pool and the backend it talks to.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

/// A database URL as it may be shown (messages, logs): any password replaced by `***`, whether
/// or not the URL parses. The user-information part is everything between `://` and the last
/// `@` (a password that breaks the URL may hold `/`, `?`, `#` or `@`); `password=` parameters
/// of the query are masked too.
pub fn redact_url(raw: &str) -> String {
    let (scheme, rest) = match raw.find("://") {
        Some(i) => raw.split_at(i + 3),
        None => ("", raw),
    };
    let mut out = String::from(scheme);
    let rest = match rest.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            match userinfo.find(':') {
                Some(colon) if !scheme.is_empty() => {
                    out.push_str(&userinfo[..colon]);
                    out.push_str(":***");
                }
                Some(_) | None if scheme.is_empty() => out.push_str("***"),
                _ => out.push_str(userinfo),
            }
            &rest[at..]
        }
        None => rest,
    };
    // `password=…` (and `sslpassword=…`) in the query, up to the next `&` or `#`.
    let mut tail = rest;
    while let Some(i) = tail.to_ascii_lowercase().find("password=") {
        let value_start = i + "password=".len();
        out.push_str(&tail[..value_start]);
        out.push_str("***");
        let after = &tail[value_start..];
        tail = &after[after.find(['&', '#']).unwrap_or(after.len())..];
    }
    out.push_str(tail);
    out
}

/// `text` with every secret of `raw` (its password, its `password=` values) masked: for error
/// messages from libraries that may quote the URL.
fn scrub(text: &str, raw: &str) -> String {
    let mut secrets = Vec::new();
    if let Some(rest) = raw.split_once("://").map(|(_, r)| r) {
        if let Some(at) = rest.rfind('@') {
            if let Some((_, pw)) = rest[..at].split_once(':') {
                secrets.push(pw.to_string());
            }
        }
    }
    let lower = raw.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("password=") {
        let start = from + i + "password=".len();
        let end = raw[start..]
            .find(['&', '#'])
            .map_or(raw.len(), |e| start + e);
        secrets.push(raw[start..end].to_string());
        from = end;
    }
    let mut out = text.replace(raw, &redact_url(raw));
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(s.as_str(), "***");
        // Percent-decoded forms may be quoted too.
        if let Ok(decoded) = url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .ok_or(())
        {
            if !decoded.is_empty() {
                out = out.replace(decoded.as_str(), "***");
            }
        }
    }
    out
}

impl Db {
    /// Connects to `sqlite:` (file created if missing, WAL, foreign keys, busy timeout) or
    /// `postgres://` URLs. Fails with a French message naming what is wrong.
    pub async fn connect(database_url: &str, max_connections: u32) -> Result<Db, StorageError> {
        sqlx::any::install_default_drivers();
        let parsed = url::Url::parse(database_url)
            .map_err(|e| StorageError::BadUrl(format!("« {} » n’est pas une URL ({}) ; exemples : sqlite://data/guichet.sqlite ou postgres://utilisateur@hote:5432/base", redact_url(database_url), scrub(&e.to_string(), database_url))))?;
        let backend = match parsed.scheme() {
            "sqlite" => Backend::Sqlite,
            "postgres" | "postgresql" => Backend::Postgres,
            other => {
                return Err(StorageError::BadUrl(format!(
                    "schéma « {other} » non pris en charge (sqlite:// ou postgres://)"
                )))
            }
        };
        let target = redact_url(database_url);
        let mut url = database_url.to_string();
        if backend == Backend::Sqlite {
            // sqlite://relative/path and sqlite:///absolute/path; create the parent folder and the file.
            let path = database_url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:")
                .split('?')
                .next()
                .unwrap_or_default()
                .to_string();
            if path.is_empty() {
                return Err(StorageError::BadUrl(
                    "chemin du fichier SQLite manquant".into(),
                ));
            }
            if path != ":memory:" {
                if let Some(parent) = std::path::Path::new(&path).parent() {
                    if !parent.as_os_str().is_empty() {
                        std::fs::create_dir_all(parent).map_err(|e| StorageError::Unreachable {
                            target: target.clone(),
                            reason: format!(
                                "impossible de créer le dossier {} : {e}",
                                parent.display()
                            ),
                        })?;
                    }
                }
            }
            if !url.contains("mode=") {
                url.push_str(if url.contains('?') {
                    "&mode=rwc"
                } else {
                    "?mode=rwc"
                });
            }
        } else if parsed.host_str().is_none_or(|h| h.is_empty()) {
            return Err(StorageError::BadUrl("hôte PostgreSQL manquant".into()));
        }
        let options = AnyConnectOptions::from_str(&url)
            .map_err(|e| StorageError::BadUrl(scrub(&e.to_string(), &url)))?
            .log_statements(tracing::log::LevelFilter::Trace);
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(5))
            .idle_timeout(Duration::from_secs(300))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; \
                             PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| StorageError::Unreachable {
                target,
                reason: scrub(&describe_connect_error(&e), database_url),
            })?;
        Ok(Db { pool, backend })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A connection from the pool, to run several statements outside a transaction.
    pub async fn acquire(&self) -> Result<PoolConnection<Any>, StorageError> {
        Ok(self.pool.acquire().await?)
    }

    /// Opens a transaction that may read then write. On SQLite it starts with `BEGIN IMMEDIATE`,
    /// which takes the write lock at once (waiting up to the busy timeout): a deferred transaction
    /// that read first fails with `SQLITE_BUSY` instead of waiting when another connection wrote
    /// meanwhile. On PostgreSQL it is a plain `BEGIN` (row locks do the rest). Every transaction
    /// that writes starts here.
    pub async fn begin_write(&self) -> Result<Tx, StorageError> {
        Ok(self.pool.begin_with(self.backend.begin_write()).await?)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies pending migrations. Safe to run from several instances at once.
    pub async fn migrate(&self) -> Result<Vec<i64>, StorageError> {
        migrations::run(self).await
    }

    /// Whether the database answers (used by `/readyz`).
    pub async fn ping(&self) -> Result<(), StorageError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn describe_connect_error(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) => format!("serveur injoignable ({io})"),
        sqlx::Error::PoolTimedOut => "délai de connexion dépassé (serveur injoignable ?)".into(),
        sqlx::Error::Database(db) => format!("refus du serveur : {}", db.message()),
        sqlx::Error::Tls(t) => format!("erreur TLS : {t}"),
        other => other.to_string(),
    }
}

/// `&Db` is an executor: a storage function that runs one statement takes
/// `impl Executor<'_, Database = Any>` and may be given `&db` (a pooled connection for that
/// statement), `&mut *conn` or `&mut *tx` (inside the caller's transaction).
impl<'p> Executor<'p> for &'_ Db {
    type Database = Any;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<AnyQueryResult, AnyRow>, sqlx::Error>>
    where
        E: 'q + Execute<'q, Any>,
    {
        self.pool.fetch_many(query)
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<AnyRow>, sqlx::Error>>
    where
        E: 'q + Execute<'q, Any>,
    {
        self.pool.fetch_optional(query)
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [AnyTypeInfo],
    ) -> BoxFuture<'e, Result<AnyStatement<'q>, sqlx::Error>> {
        self.pool.prepare_with(sql, parameters)
    }

    #[doc(hidden)]
    fn describe<'e, 'q: 'e>(
        self,
        sql: &'q str,
    ) -> BoxFuture<'e, Result<sqlx::Describe<Any>, sqlx::Error>> {
        self.pool.describe(sql)
    }
}

#[cfg(test)]
mod tests {
    use super::{redact_url, scrub};

    #[test]
    fn passwords_never_show_even_when_the_url_does_not_parse() {
        for (raw, shown) in [
            (
                "postgres://guichet:s3cret@db:5432/guichet",
                "postgres://guichet:***@db:5432/guichet",
            ),
            (
                "postgres://guichet:s3cret@db:notaport/guichet",
                "postgres://guichet:***@db:notaport/guichet",
            ),
            (
                "postgres://guichet:s3/c?r#e@t@db/guichet",
                "postgres://guichet:***@db/guichet",
            ),
            (
                "postgres://guichet@db/guichet?sslmode=require&password=s3cret&x=1",
                "postgres://guichet@db/guichet?sslmode=require&password=***&x=1",
            ),
            (
                "postgres://guichet@db/guichet",
                "postgres://guichet@db/guichet",
            ),
            (
                "sqlite://data/guichet.sqlite",
                "sqlite://data/guichet.sqlite",
            ),
            ("guichet:s3cret@db", "***@db"),
            ("n’importe quoi", "n’importe quoi"),
        ] {
            assert_eq!(redact_url(raw), shown, "{raw}");
        }
        let raw = "postgres://u:p%40ss@h:x/d";
        let msg = scrub("bad url postgres://u:p%40ss@h:x/d, password p@ss", raw);
        assert!(!msg.contains("p%40ss") && !msg.contains("p@ss"), "{msg}");
    }

    #[tokio::test]
    async fn a_url_that_does_not_parse_is_refused_without_its_password() {
        for raw in [
            "postgres://guichet:Tr3sS3cret@db:notaport/guichet",
            "postgres://guichet:Tr3s S3cret@db/guichet",
            "postgres://guichet:Tr3sS3cret@[::1/guichet",
            "postgres://guichet@127.0.0.1:9/guichet?password=Tr3sS3cret",
            "postgres://guichet:Tr3sS3cret@127.0.0.1:9/guichet",
        ] {
            let e = super::Db::connect(raw, 1).await.expect_err(raw).to_string();
            assert!(!e.contains("Tr3s"), "{e}");
        }
    }
}
