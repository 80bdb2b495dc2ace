//! A dossier's attached documents (`dossier_pieces`): their records; the content lives in the
//! blob store under its SHA-256.

use crate::error::StorageError;
use crate::time::Timestamp;
use sqlx::{Any, Executor, Row};

/// An attached document's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceRow {
    pub id: i64,
    pub dossier_id: i64,
    /// The document kind of the form (`devis`, `deliberation`…).
    pub kind: String,
    pub filename: String,
    pub media_type: String,
    pub size: i64,
    pub sha256: String,
    pub uploaded_by: i64,
    pub uploaded_at: Timestamp,
    pub removed_at: Option<Timestamp>,
}

pub struct NewPiece<'a> {
    pub dossier_id: i64,
    pub kind: &'a str,
    pub filename: &'a str,
    pub media_type: &'a str,
    pub size: i64,
    pub sha256: &'a str,
    pub uploaded_by: i64,
    pub at: &'a str,
}

const COLS: &str = "id, dossier_id, kind, filename, media_type, size, sha256, uploaded_by, uploaded_at, removed_at";

fn row(r: &sqlx::any::AnyRow) -> Result<PieceRow, sqlx::Error> {
    Ok(PieceRow {
        id: r.try_get("id")?,
        dossier_id: r.try_get("dossier_id")?,
        kind: r.try_get("kind")?,
        filename: r.try_get("filename")?,
        media_type: r.try_get("media_type")?,
        size: r.try_get("size")?,
        sha256: r.try_get("sha256")?,
        uploaded_by: r.try_get("uploaded_by")?,
        uploaded_at: r.try_get("uploaded_at")?,
        removed_at: r.try_get("removed_at")?,
    })
}

pub async fn insert<'c>(
    e: impl Executor<'c, Database = Any>,
    p: &NewPiece<'_>,
) -> Result<i64, StorageError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO dossier_pieces (dossier_id, kind, filename, media_type, size, sha256, uploaded_by, uploaded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(p.dossier_id)
    .bind(p.kind)
    .bind(p.filename)
    .bind(p.media_type)
    .bind(p.size)
    .bind(p.sha256)
    .bind(p.uploaded_by)
    .bind(p.at)
    .fetch_one(e)
    .await?;
    Ok(id)
}

/// The dossier's documents not removed, oldest first.
pub async fn current<'c>(
    e: impl Executor<'c, Database = Any>,
    dossier_id: i64,
) -> Result<Vec<PieceRow>, StorageError> {
    let sql = format!(
        "SELECT {COLS} FROM dossier_pieces WHERE dossier_id = $1 AND removed_at IS NULL ORDER BY id"
    );
    let rows = sqlx::query(&sql).bind(dossier_id).fetch_all(e).await?;
    rows.iter()
        .map(row)
        .collect::<Result<_, _>>()
        .map_err(Into::into)
}

/// One document of one dossier (removed or not).
pub async fn find<'c>(
    e: impl Executor<'c, Database = Any>,
    dossier_id: i64,
    id: i64,
) -> Result<Option<PieceRow>, StorageError> {
    let sql = format!("SELECT {COLS} FROM dossier_pieces WHERE dossier_id = $1 AND id = $2");
    let r = sqlx::query(&sql)
        .bind(dossier_id)
        .bind(id)
        .fetch_optional(e)
        .await?;
    r.as_ref().map(row).transpose().map_err(Into::into)
}

/// Marks a document removed; false when it was not there (or removed already).
pub async fn remove<'c>(
    e: impl Executor<'c, Database = Any>,
    dossier_id: i64,
    id: i64,
    at: &str,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE dossier_pieces SET removed_at = $3 WHERE dossier_id = $1 AND id = $2 AND removed_at IS NULL",
    )
    .bind(dossier_id)
    .bind(id)
    .bind(at)
    .execute(e)
    .await?;
    Ok(done.rows_affected() == 1)
}
