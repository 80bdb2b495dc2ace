//! Webhooks and their deliveries. A delivery is one event for one webhook: `en-attente` until
//! it is `livree` or `morte`, with its attempts, the last HTTP status and error.

use crate::error::StorageError;
use crate::time::Timestamp;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Executor, Row};

/// Waiting for its first or next attempt.
pub const PENDING: &str = "en-attente";
/// A 2xx answer was received.
pub const DELIVERED: &str = "livree";
/// Given up (24 h of failures, or a failure that cannot succeed).
pub const DEAD: &str = "morte";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRow {
    pub id: i64,
    pub service_id: i64,
    pub service_code: String,
    pub service_name: String,
    pub url: String,
    pub created_at: Timestamp,
    pub created_by: String,
    pub disabled_at: Option<Timestamp>,
}

/// What a delivery job needs: where to send, with which key.
#[derive(Debug, Clone)]
pub struct Target {
    pub webhook_id: i64,
    pub url: String,
    pub secret: String,
    pub disabled_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    pub id: i64,
    pub webhook_id: i64,
    pub event_id: String,
    pub event_type: String,
    pub payload: String,
    pub state: String,
    pub attempts: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub first_attempt_at: Option<Timestamp>,
    pub last_attempt_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
}

pub async fn insert<'c>(
    e: impl Executor<'c, Database = Any>,
    service_id: i64,
    url: &str,
    secret: &str,
    created_at: &str,
    created_by: &str,
) -> Result<i64, StorageError> {
    let row = sqlx::query(
        "INSERT INTO webhooks (service_id, url, secret, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(service_id)
    .bind(url)
    .bind(secret)
    .bind(created_at)
    .bind(created_by)
    .fetch_one(e)
    .await?;
    Ok(row.try_get("id")?)
}

const LIST: &str = "SELECT w.id, w.service_id, s.code AS service_code, s.name AS service_name, \
     w.url, w.created_at, w.created_by, w.disabled_at \
     FROM webhooks w JOIN services s ON s.id = w.service_id";

fn row(r: &AnyRow) -> Result<WebhookRow, sqlx::Error> {
    Ok(WebhookRow {
        id: r.try_get("id")?,
        service_id: r.try_get("service_id")?,
        service_code: r.try_get("service_code")?,
        service_name: r.try_get("service_name")?,
        url: r.try_get("url")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        disabled_at: r.try_get("disabled_at")?,
    })
}

/// Every webhook, newest first.
pub async fn list<'c>(
    e: impl Executor<'c, Database = Any>,
) -> Result<Vec<WebhookRow>, StorageError> {
    let rows = sqlx::query(&format!("{LIST} ORDER BY w.id DESC"))
        .fetch_all(e)
        .await?;
    Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
}

pub async fn find<'c>(
    e: impl Executor<'c, Database = Any>,
    id: i64,
) -> Result<Option<WebhookRow>, StorageError> {
    let r = sqlx::query(&format!("{LIST} WHERE w.id = $1"))
        .bind(id)
        .fetch_optional(e)
        .await?;
    Ok(r.as_ref().map(row).transpose()?)
}

/// Disables a webhook; false if it was already disabled (or does not exist).
pub async fn disable<'c>(
    e: impl Executor<'c, Database = Any>,
    id: i64,
    now: &str,
) -> Result<bool, StorageError> {
    let done =
        sqlx::query("UPDATE webhooks SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(e)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// The active webhooks of a service: their ids.
pub async fn active_of_service<'c>(
    e: impl Executor<'c, Database = Any>,
    service_id: i64,
) -> Result<Vec<i64>, StorageError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM webhooks WHERE service_id = $1 AND disabled_at IS NULL ORDER BY id",
    )
    .bind(service_id)
    .fetch_all(e)
    .await?)
}

/// Records a pending delivery; its id.
pub async fn insert_delivery(
    conn: &mut AnyConnection,
    webhook_id: i64,
    event_id: &str,
    event_type: &str,
    payload: &str,
    created_at: &str,
) -> Result<i64, StorageError> {
    let row = sqlx::query(
        "INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, payload, state, attempts, created_at) \
         VALUES ($1, $2, $3, $4, 'en-attente', 0, $5) RETURNING id",
    )
    .bind(webhook_id)
    .bind(event_id)
    .bind(event_type)
    .bind(payload)
    .bind(created_at)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get("id")?)
}

const DELIVERY: &str = "SELECT id, webhook_id, event_id, event_type, payload, state, attempts, \
     last_status, last_error, created_at, first_attempt_at, last_attempt_at, delivered_at \
     FROM webhook_deliveries";

fn delivery(r: &AnyRow) -> Result<DeliveryRow, sqlx::Error> {
    Ok(DeliveryRow {
        id: r.try_get("id")?,
        webhook_id: r.try_get("webhook_id")?,
        event_id: r.try_get("event_id")?,
        event_type: r.try_get("event_type")?,
        payload: r.try_get("payload")?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        last_status: r.try_get("last_status")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        first_attempt_at: r.try_get("first_attempt_at")?,
        last_attempt_at: r.try_get("last_attempt_at")?,
        delivered_at: r.try_get("delivered_at")?,
    })
}

/// The last `limit` deliveries of a webhook, newest first.
pub async fn deliveries<'c>(
    e: impl Executor<'c, Database = Any>,
    webhook_id: i64,
    limit: i64,
) -> Result<Vec<DeliveryRow>, StorageError> {
    let rows = sqlx::query(&format!(
        "{DELIVERY} WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2"
    ))
    .bind(webhook_id)
    .bind(limit)
    .fetch_all(e)
    .await?;
    Ok(rows.iter().map(delivery).collect::<Result<_, _>>()?)
}

pub async fn find_delivery<'c>(
    e: impl Executor<'c, Database = Any>,
    id: i64,
) -> Result<Option<DeliveryRow>, StorageError> {
    let r = sqlx::query(&format!("{DELIVERY} WHERE id = $1"))
        .bind(id)
        .fetch_optional(e)
        .await?;
    Ok(r.as_ref().map(delivery).transpose()?)
}

/// Where a delivery goes, with the key (the delivery job's read).
pub async fn target<'c>(
    e: impl Executor<'c, Database = Any>,
    delivery_id: i64,
) -> Result<Option<(DeliveryRow, Target)>, StorageError> {
    let r = sqlx::query(
        "SELECT d.id, d.webhook_id, d.event_id, d.event_type, d.payload, d.state, d.attempts, \
         d.last_status, d.last_error, d.created_at, d.first_attempt_at, d.last_attempt_at, \
         d.delivered_at, w.url, w.secret, w.disabled_at \
         FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = $1",
    )
    .bind(delivery_id)
    .fetch_optional(e)
    .await?;
    let Some(r) = r else { return Ok(None) };
    let d = delivery(&r)?;
    let t = Target {
        webhook_id: d.webhook_id,
        url: r.try_get("url")?,
        secret: r.try_get("secret")?,
        disabled_at: r.try_get("disabled_at")?,
    };
    Ok(Some((d, t)))
}

/// Records one attempt's outcome: the new state, the status (if an answer came) and the error.
/// `first_attempt_at` is kept once set.
pub async fn record_attempt<'c>(
    e: impl Executor<'c, Database = Any>,
    id: i64,
    state: &str,
    status: Option<i64>,
    error: Option<&str>,
    now: &str,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE webhook_deliveries SET state = $1, attempts = attempts + 1, last_status = $2, \
         last_error = $3, first_attempt_at = COALESCE(first_attempt_at, $4), last_attempt_at = $4, \
         delivered_at = CASE WHEN $1 = 'livree' THEN $4 ELSE delivered_at END WHERE id = $5",
    )
    .bind(state)
    .bind(status)
    .bind(error)
    .bind(now)
    .bind(id)
    .execute(e)
    .await?;
    Ok(())
}
