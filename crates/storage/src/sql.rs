//! Statements built with sea-query rather than by hand, and the optimistic `version` pattern.
//!
//! Queries whose shape never changes are constant text next to their function. The ones whose
//! shape depends on data (how many rows an INSERT carries, which columns an UPDATE sets) are
//! built with sea-query's query builder, rendered with the PostgreSQL builder (numbered `$n`
//! placeholders, double-quoted identifiers, `RETURNING`: text that SQLite reads the same), and
//! their values bound through [`bind`].

use crate::error::StorageError;
/// The values `versioned_update` sets (re-exported so callers need not depend on sea-query).
pub use sea_query::Value;
use sea_query::{Alias, Expr, PostgresQueryBuilder, Query, QueryStatementWriter, Values};
use sqlx::any::AnyArguments;
use sqlx::query::Query as SqlxQuery;
use sqlx::{Any, Executor, Row};

/// Renders a sea-query statement as text both engines read, with its values.
pub(crate) fn render(statement: &impl QueryStatementWriter) -> (String, Values) {
    statement.build_any(&PostgresQueryBuilder)
}

/// Binds sea-query values to an sqlx query, in order. Only the types the schema uses are
/// accepted (integers, text, booleans as integers); anything else is a programming error
/// reported as such.
pub(crate) fn bind<'q>(
    mut q: SqlxQuery<'q, Any, AnyArguments<'q>>,
    values: Values,
) -> Result<SqlxQuery<'q, Any, AnyArguments<'q>>, StorageError> {
    for v in values.0 {
        q = match v {
            Value::BigInt(i) => q.bind(i),
            Value::Int(i) => q.bind(i.map(i64::from)),
            Value::SmallInt(i) => q.bind(i.map(i64::from)),
            Value::Bool(b) => q.bind(b.map(i64::from)),
            Value::String(s) => q.bind(s.map(|s| *s)),
            other => {
                return Err(StorageError::Query(sqlx::Error::Protocol(format!(
                    "type de valeur non pris en charge : {other:?}"
                ))))
            }
        };
    }
    Ok(q)
}

/// Optimistic concurrency for state transitions: updates the row `id` of `table` only if its
/// `version` is still `seen_version` (the one the caller read and decided upon), sets
/// `changes` and moves the version on by one; returns the new version. If another writer got
/// there first, nothing is written and the answer is [`StorageError::Stale`] naming `what`
/// (the application turns it into a conflict asking to reload).
pub async fn versioned_update<'c>(
    e: impl Executor<'c, Database = Any>,
    table: &'static str,
    id: i64,
    seen_version: i64,
    changes: Vec<(&'static str, Value)>,
    what: &'static str,
) -> Result<i64, StorageError> {
    // sea-query's statements are not `Send`: built and rendered before any await.
    let (sql, values) = {
        let mut update = Query::update();
        update.table(Alias::new(table));
        for (column, value) in changes {
            update.value(Alias::new(column), value);
        }
        update
            .value(
                Alias::new("version"),
                Expr::col(Alias::new("version")).add(1),
            )
            .and_where(Expr::col(Alias::new("id")).eq(id))
            .and_where(Expr::col(Alias::new("version")).eq(seen_version))
            .returning_col(Alias::new("version"));
        render(&update)
    };
    let row = bind(sqlx::query(&sql), values)?.fetch_optional(e).await?;
    match row {
        Some(r) => Ok(r.try_get("version")?),
        None => Err(StorageError::Stale(what)),
    }
}

/// A row's current version (to read before deciding a transition).
pub async fn current_version<'c>(
    e: impl Executor<'c, Database = Any>,
    table: &'static str,
    id: i64,
) -> Result<Option<i64>, StorageError> {
    let (sql, values) = {
        let mut select = Query::select();
        select
            .column(Alias::new("version"))
            .from(Alias::new(table))
            .and_where(Expr::col(Alias::new("id")).eq(id));
        render(&select)
    };
    let row = bind(sqlx::query(&sql), values)?.fetch_optional(e).await?;
    Ok(row.map(|r| r.try_get("version")).transpose()?)
}
