//! The append-only audit log. Appending happens inside the caller's transaction, so the state
//! change and its audit entry commit (or roll back) together.

use crate::error::StorageError;
use guichet_domain::audit::{entry_hash, AuditRecord};
use sqlx::{Any, AnyConnection, Executor, Row};

#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    pub at: &'a str,
    pub actor: &'a str,
    pub action: &'a str,
    pub object_type: &'a str,
    pub object_id: &'a str,
    pub before: Option<&'a str>,
    pub after: Option<&'a str>,
}

/// Appends an entry and returns its sequence number. The UPDATE on the single head row takes a
/// row lock (PostgreSQL) or the write lock (SQLite), so concurrent writers queue up and the
/// chain stays linear across instances.
pub async fn append(conn: &mut AnyConnection, e: &NewEntry<'_>) -> Result<i64, StorageError> {
    let head = sqlx::query("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
        .fetch_one(&mut *conn)
        .await?;
    let seq: i64 = head.try_get("seq")?;
    let prev: String = head.try_get("hash")?;
    let hash = entry_hash(
        seq,
        e.at,
        e.actor,
        e.action,
        e.object_type,
        e.object_id,
        e.before,
        e.after,
        &prev,
    );
    sqlx::query(
        "INSERT INTO audit_log (seq, at, actor, action, object_type, object_id, before_json, after_json, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(seq)
    .bind(e.at)
    .bind(e.actor)
    .bind(e.action)
    .bind(e.object_type)
    .bind(e.object_id)
    .bind(e.before)
    .bind(e.after)
    .bind(&prev)
    .bind(&hash)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&hash)
        .execute(&mut *conn)
        .await?;
    Ok(seq)
}

/// The stored head: last sequence number and hash.
pub async fn head<'c>(e: impl Executor<'c, Database = Any>) -> Result<(i64, String), StorageError> {
    let r = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(e)
        .await?;
    Ok((r.try_get("seq")?, r.try_get("hash")?))
}

/// A page of entries after `after_seq`, in order.
pub async fn page<'c>(
    e: impl Executor<'c, Database = Any>,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<AuditRecord>, StorageError> {
    let rows = sqlx::query(
        "SELECT seq, at, actor, action, object_type, object_id, before_json, after_json, prev_hash, hash \
         FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(after_seq)
    .bind(limit)
    .fetch_all(e)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AuditRecord {
                seq: r.try_get("seq")?,
                at: r.try_get("at")?,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                object_type: r.try_get("object_type")?,
                object_id: r.try_get("object_id")?,
                before: r.try_get("before_json")?,
                after: r.try_get("after_json")?,
                prev_hash: r.try_get("prev_hash")?,
                hash: r.try_get("hash")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// The latest entries, newest first (for the administration page).
pub async fn latest(
    conn: &mut AnyConnection,
    limit: i64,
) -> Result<Vec<AuditRecord>, StorageError> {
    let (seq, _) = head(&mut *conn).await?;
    let mut v = page(&mut *conn, (seq - limit).max(0), limit).await?;
    v.reverse();
    Ok(v)
}
