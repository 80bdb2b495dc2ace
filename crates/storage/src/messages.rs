//! A dossier's thread (`dossier_messages`) and who read it how far (`dossier_message_reads`).

use crate::error::StorageError;
use crate::time::Timestamp;
use sqlx::{Any, AnyConnection, Executor, Row};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow {
    pub id: i64,
    pub dossier_id: i64,
    pub author_id: Option<i64>,
    /// `demandeur`, `instruction` or `guichet`.
    pub side: String,
    pub body: String,
    pub piece_id: Option<i64>,
    pub created_at: Timestamp,
}

pub async fn insert<'c>(
    e: impl Executor<'c, Database = Any>,
    dossier_id: i64,
    author_id: Option<i64>,
    side: &str,
    body: &str,
    piece_id: Option<i64>,
    at: &str,
) -> Result<i64, StorageError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO dossier_messages (dossier_id, author_id, side, body, piece_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(dossier_id)
    .bind(author_id)
    .bind(side)
    .bind(body)
    .bind(piece_id)
    .bind(at)
    .fetch_one(e)
    .await?;
    Ok(id)
}

/// The thread, oldest first.
pub async fn thread<'c>(
    e: impl Executor<'c, Database = Any>,
    dossier_id: i64,
) -> Result<Vec<MessageRow>, StorageError> {
    let rows = sqlx::query(
        "SELECT id, dossier_id, author_id, side, body, piece_id, created_at FROM dossier_messages \
         WHERE dossier_id = $1 ORDER BY id",
    )
    .bind(dossier_id)
    .fetch_all(e)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(MessageRow {
                id: r.try_get("id")?,
                dossier_id: r.try_get("dossier_id")?,
                author_id: r.try_get("author_id")?,
                side: r.try_get("side")?,
                body: r.try_get("body")?,
                piece_id: r.try_get("piece_id")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// The last message `user_id` read on the dossier (0: none).
pub async fn last_read<'c>(
    e: impl Executor<'c, Database = Any>,
    dossier_id: i64,
    user_id: i64,
) -> Result<i64, StorageError> {
    let v: Option<i64> = sqlx::query_scalar(
        "SELECT last_read FROM dossier_message_reads WHERE dossier_id = $1 AND user_id = $2",
    )
    .bind(dossier_id)
    .bind(user_id)
    .fetch_optional(e)
    .await?;
    Ok(v.unwrap_or(0))
}

/// Records that `user_id` read up to `last` (never moves back).
pub async fn mark_read(
    conn: &mut AnyConnection,
    dossier_id: i64,
    user_id: i64,
    last: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO dossier_message_reads (dossier_id, user_id, last_read) VALUES ($1, $2, $3) \
         ON CONFLICT (dossier_id, user_id) DO UPDATE SET last_read = \
         CASE WHEN dossier_message_reads.last_read > $3 THEN dossier_message_reads.last_read ELSE $3 END",
    )
    .bind(dossier_id)
    .bind(user_id)
    .bind(last)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
