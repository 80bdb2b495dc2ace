//! API tokens: stored as the SHA-256 of their secret, one service each. Using a token is one
//! statement that checks it (known, not revoked, not expired), counts the request in its
//! rate-limit window and records when it was last used.

use crate::error::StorageError;
use crate::time::Timestamp;
use guichet_domain::api_token::TokenScope;
use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenRow {
    pub id: i64,
    pub service_id: i64,
    pub service_code: String,
    pub service_name: String,
    pub scope: TokenScope,
    pub label: String,
    pub created_at: Timestamp,
    pub created_by: String,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}

pub struct NewApiToken<'a> {
    pub token_hash: &'a str,
    pub service_id: i64,
    pub scope: TokenScope,
    pub label: &'a str,
    pub created_at: &'a str,
    pub created_by: &'a str,
    pub expires_at: Option<&'a str>,
}

/// A token accepted for one request: whose it is, and its count in the current window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUse {
    pub id: i64,
    pub service_id: i64,
    pub scope: TokenScope,
    pub window_start: Timestamp,
    pub window_count: i64,
}

fn scope(r: &AnyRow) -> Result<TokenScope, sqlx::Error> {
    let s: String = r.try_get("scope")?;
    TokenScope::parse(&s).map_err(|e| sqlx::Error::ColumnDecode {
        index: "api_tokens.scope".into(),
        source: Box::new(e),
    })
}

pub async fn insert<'c>(
    e: impl Executor<'c, Database = Any>,
    t: &NewApiToken<'_>,
) -> Result<i64, StorageError> {
    let row = sqlx::query(
        "INSERT INTO api_tokens (token_hash, service_id, scope, label, created_at, created_by, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(t.token_hash)
    .bind(t.service_id)
    .bind(t.scope.slug())
    .bind(t.label)
    .bind(t.created_at)
    .bind(t.created_by)
    .bind(t.expires_at)
    .fetch_one(e)
    .await?;
    Ok(row.try_get("id")?)
}

const LIST: &str = "SELECT t.id, t.service_id, s.code AS service_code, s.name AS service_name, \
     t.scope, t.label, t.created_at, t.created_by, t.expires_at, t.revoked_at, t.last_used_at \
     FROM api_tokens t JOIN services s ON s.id = t.service_id";

fn row(r: &AnyRow) -> Result<ApiTokenRow, sqlx::Error> {
    Ok(ApiTokenRow {
        id: r.try_get("id")?,
        service_id: r.try_get("service_id")?,
        service_code: r.try_get("service_code")?,
        service_name: r.try_get("service_name")?,
        scope: scope(r)?,
        label: r.try_get("label")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
        last_used_at: r.try_get("last_used_at")?,
    })
}

/// Every token, newest first.
pub async fn list<'c>(
    e: impl Executor<'c, Database = Any>,
) -> Result<Vec<ApiTokenRow>, StorageError> {
    let rows = sqlx::query(&format!("{LIST} ORDER BY t.id DESC"))
        .fetch_all(e)
        .await?;
    Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
}

pub async fn find<'c>(
    e: impl Executor<'c, Database = Any>,
    id: i64,
) -> Result<Option<ApiTokenRow>, StorageError> {
    let r = sqlx::query(&format!("{LIST} WHERE t.id = $1"))
        .bind(id)
        .fetch_optional(e)
        .await?;
    Ok(r.as_ref().map(row).transpose()?)
}

/// Revokes a token; false if it was already revoked (or does not exist).
pub async fn revoke<'c>(
    e: impl Executor<'c, Database = Any>,
    id: i64,
    now: &str,
) -> Result<bool, StorageError> {
    let n =
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(e)
            .await?
            .rows_affected();
    Ok(n > 0)
}

/// Uses a token for one request, in one statement: `None` when no live token has this hash
/// (unknown, revoked or expired at `now`); otherwise the request is counted in the token's
/// window (a window older than `window_from` starts again at `now` with this request) and the
/// count returned, so parallel requests are each counted.
pub async fn use_token<'c>(
    e: impl Executor<'c, Database = Any>,
    token_hash: &str,
    now: &str,
    window_from: &str,
) -> Result<Option<TokenUse>, StorageError> {
    let r = sqlx::query(
        "UPDATE api_tokens SET \
           window_count = CASE WHEN window_start IS NULL OR window_start < $3 THEN 1 ELSE window_count + 1 END, \
           window_start = CASE WHEN window_start IS NULL OR window_start < $3 THEN $2 ELSE window_start END, \
           last_used_at = $2 \
         WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2) \
         RETURNING id, service_id, scope, window_start, window_count",
    )
    .bind(token_hash)
    .bind(now)
    .bind(window_from)
    .fetch_optional(e)
    .await?;
    let Some(r) = r else { return Ok(None) };
    Ok(Some(TokenUse {
        id: r.try_get("id")?,
        service_id: r.try_get("service_id")?,
        scope: scope(&r)?,
        window_start: r.try_get("window_start")?,
        window_count: r.try_get("window_count")?,
    }))
}
