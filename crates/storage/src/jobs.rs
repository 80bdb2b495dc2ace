//! The job queue's table: work to do later, durable, shared by every instance.
//!
//! A job is `en-attente` until it is `fait` or `mort`. A worker claims one due job by writing
//! its name and a lease expiry on it (and counting the attempt); while the lease runs no other
//! worker takes it, and when it expires (the worker died) the job is claimable again. Every
//! later write of the worker names the claim (`lease_owner` and `attempts`), so a worker that
//! lost its lease can no longer finish, fail or extend the job.
//!
//! Claiming is one statement: on PostgreSQL an `UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP
//! LOCKED)`, so concurrent workers skip each other's rows instead of queueing on them; on SQLite
//! the same `UPDATE … RETURNING` inside `BEGIN IMMEDIATE`, which takes the write lock first, so
//! the choice and the claim happen under one lock and never fail with a stale snapshot.

use crate::db::{Backend, Db};
use crate::error::StorageError;
use sqlx::{AnyConnection, Row};

/// Waiting to run (now or later), or running under a lease.
pub const PENDING: &str = "en-attente";
/// Finished successfully.
pub const DONE: &str = "fait";
/// Failed for good: listed for the administrator, who may retry it.
pub const DEAD: &str = "mort";

#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    pub kind: &'a str,
    pub payload: &'a str,
    pub run_after: &'a str,
    pub max_attempts: i64,
    /// At most one job per key (periodic jobs: one per period); `None` for ordinary jobs.
    pub unique_key: Option<&'a str>,
    pub created_at: &'a str,
}

/// Adds a job; `None` when a job with the same unique key already exists.
pub async fn insert(conn: &mut AnyConnection, j: &NewJob<'_>) -> Result<Option<i64>, StorageError> {
    let row = sqlx::query(
        "INSERT INTO jobs (kind, payload, state, run_after, attempts, max_attempts, unique_key, created_at) \
         VALUES ($1, $2, 'en-attente', $3, 0, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(j.kind)
    .bind(j.payload)
    .bind(j.run_after)
    .bind(j.max_attempts)
    .bind(j.unique_key)
    .bind(j.created_at)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| r.try_get("id")).transpose().map_err(Into::into)
}

/// A job a worker has just claimed. `attempts` counts this attempt and, with the owner,
/// identifies the claim.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub kind: String,
    pub payload: String,
    pub attempts: i64,
    pub max_attempts: i64,
}

const CLAIM_PG: &str =
    "UPDATE jobs SET lease_owner = $1, lease_until = $2, attempts = attempts + 1 \
     WHERE id = (SELECT id FROM jobs WHERE state = 'en-attente' AND run_after <= $3 \
                 AND (lease_until IS NULL OR lease_until <= $3) \
                 ORDER BY run_after, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
     RETURNING id, kind, payload, attempts, max_attempts";

const CLAIM_SQLITE: &str =
    "UPDATE jobs SET lease_owner = $1, lease_until = $2, attempts = attempts + 1 \
     WHERE id = (SELECT id FROM jobs WHERE state = 'en-attente' AND run_after <= $3 \
                 AND (lease_until IS NULL OR lease_until <= $3) \
                 ORDER BY run_after, id LIMIT 1) \
     RETURNING id, kind, payload, attempts, max_attempts";

/// Claims the oldest due job that nobody holds, leasing it to `owner` until `lease_until`.
pub async fn claim(
    db: &Db,
    owner: &str,
    now: &str,
    lease_until: &str,
) -> Result<Option<Claimed>, StorageError> {
    let row = match db.backend() {
        Backend::Postgres => {
            sqlx::query(CLAIM_PG)
                .bind(owner)
                .bind(lease_until)
                .bind(now)
                .fetch_optional(db.pool())
                .await?
        }
        Backend::Sqlite => {
            let mut tx = db.begin_write().await?;
            let row = sqlx::query(CLAIM_SQLITE)
                .bind(owner)
                .bind(lease_until)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
            tx.commit().await?;
            row
        }
    };
    let Some(r) = row else { return Ok(None) };
    Ok(Some(Claimed {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        payload: r.try_get("payload")?,
        attempts: r.try_get("attempts")?,
        max_attempts: r.try_get("max_attempts")?,
    }))
}

/// The claim a worker holds: only its holder may write the job's outcome.
#[derive(Debug, Clone, Copy)]
pub struct Lease<'a> {
    pub id: i64,
    pub owner: &'a str,
    pub attempts: i64,
}

/// The condition "this claim still holds the job", with the lease as parameters $1–$3.
macro_rules! held {
    () => {
        "id = $1 AND lease_owner = $2 AND attempts = $3 AND state = 'en-attente'"
    };
}

/// Moves the lease's expiry on while the job runs; false when the lease was lost.
pub async fn extend_lease(db: &Db, l: Lease<'_>, lease_until: &str) -> Result<bool, StorageError> {
    let r = sqlx::query(concat!("UPDATE jobs SET lease_until = $4 WHERE ", held!()))
        .bind(l.id)
        .bind(l.owner)
        .bind(l.attempts)
        .bind(lease_until)
        .execute(db.pool())
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Marks the job done; false when the lease was lost (another worker has it now).
pub async fn complete(db: &Db, l: Lease<'_>, now: &str) -> Result<bool, StorageError> {
    let r = sqlx::query(concat!(
        "UPDATE jobs SET state = 'fait', finished_at = $4, lease_owner = NULL, lease_until = NULL WHERE ",
        held!()
    ))
    .bind(l.id)
    .bind(l.owner)
    .bind(l.attempts)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Records a failure and puts the job back in the queue, due at `run_after`.
pub async fn retry_later(
    db: &Db,
    l: Lease<'_>,
    error: &str,
    run_after: &str,
) -> Result<bool, StorageError> {
    let r = sqlx::query(concat!(
        "UPDATE jobs SET last_error = $4, run_after = $5, lease_owner = NULL, lease_until = NULL WHERE ",
        held!()
    ))
    .bind(l.id)
    .bind(l.owner)
    .bind(l.attempts)
    .bind(error)
    .bind(run_after)
    .execute(db.pool())
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Records a failure for good: the job is dead.
pub async fn bury(db: &Db, l: Lease<'_>, error: &str, now: &str) -> Result<bool, StorageError> {
    let r = sqlx::query(concat!(
        "UPDATE jobs SET state = 'mort', last_error = $4, finished_at = $5, lease_owner = NULL, lease_until = NULL WHERE ",
        held!()
    ))
    .bind(l.id)
    .bind(l.owner)
    .bind(l.attempts)
    .bind(error)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Puts a dead job back in the queue with its attempts reset (its last error is kept until it
/// runs again). False when the job is not dead (unknown, or already retried).
pub async fn revive(conn: &mut AnyConnection, id: i64, now: &str) -> Result<bool, StorageError> {
    let r = sqlx::query(
        "UPDATE jobs SET state = 'en-attente', attempts = 0, run_after = $2, finished_at = NULL, \
         lease_owner = NULL, lease_until = NULL WHERE id = $1 AND state = 'mort'",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// A job as stored.
#[derive(Debug, Clone)]
pub struct JobRow {
    pub id: i64,
    pub kind: String,
    pub payload: String,
    pub state: String,
    pub run_after: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub last_error: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
}

macro_rules! job_cols {
    () => {
        "id, kind, payload, state, run_after, attempts, max_attempts, last_error, \
         lease_owner, lease_until, created_at, finished_at"
    };
}

fn job_row(r: &sqlx::any::AnyRow) -> Result<JobRow, sqlx::Error> {
    Ok(JobRow {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        payload: r.try_get("payload")?,
        state: r.try_get("state")?,
        run_after: r.try_get("run_after")?,
        attempts: r.try_get("attempts")?,
        max_attempts: r.try_get("max_attempts")?,
        last_error: r.try_get("last_error")?,
        lease_owner: r.try_get("lease_owner")?,
        lease_until: r.try_get("lease_until")?,
        created_at: r.try_get("created_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

pub async fn find(conn: &mut AnyConnection, id: i64) -> Result<Option<JobRow>, StorageError> {
    let row = sqlx::query(concat!("SELECT ", job_cols!(), " FROM jobs WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(job_row).transpose().map_err(Into::into)
}

/// Jobs in one state, most recently finished (or created) first.
pub async fn list_in_state(
    conn: &mut AnyConnection,
    state: &str,
    limit: i64,
) -> Result<Vec<JobRow>, StorageError> {
    let rows = sqlx::query(concat!("SELECT ", job_cols!(), " FROM jobs WHERE state = $1 ORDER BY COALESCE(finished_at, created_at) DESC, id DESC LIMIT $2"))
    .bind(state)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(job_row)
        .collect::<Result<_, _>>()
        .map_err(Into::into)
}

/// Jobs of one kind, oldest first (tests and diagnostics).
pub async fn list_of_kind(
    conn: &mut AnyConnection,
    kind: &str,
) -> Result<Vec<JobRow>, StorageError> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        job_cols!(),
        " FROM jobs WHERE kind = $1 ORDER BY id"
    ))
    .bind(kind)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(job_row)
        .collect::<Result<_, _>>()
        .map_err(Into::into)
}

/// How many jobs are in each situation at `now`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Due and not held by a worker.
    pub due: i64,
    /// Held by a worker whose lease runs.
    pub running: i64,
    /// Waiting for a later time (new, or backing off after a failure).
    pub later: i64,
    pub done: i64,
    pub dead: i64,
}

pub async fn counts(conn: &mut AnyConnection, now: &str) -> Result<Counts, StorageError> {
    let r = sqlx::query(
        "SELECT \
           COALESCE(SUM(CASE WHEN state = 'en-attente' AND lease_until > $1 THEN 1 ELSE 0 END), 0) AS running, \
           COALESCE(SUM(CASE WHEN state = 'en-attente' AND (lease_until IS NULL OR lease_until <= $1) AND run_after <= $1 THEN 1 ELSE 0 END), 0) AS due, \
           COALESCE(SUM(CASE WHEN state = 'en-attente' AND (lease_until IS NULL OR lease_until <= $1) AND run_after > $1 THEN 1 ELSE 0 END), 0) AS later, \
           COALESCE(SUM(CASE WHEN state = 'fait' THEN 1 ELSE 0 END), 0) AS done, \
           COALESCE(SUM(CASE WHEN state = 'mort' THEN 1 ELSE 0 END), 0) AS dead \
         FROM jobs",
    )
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Counts {
        due: r.try_get("due")?,
        running: r.try_get("running")?,
        later: r.try_get("later")?,
        done: r.try_get("done")?,
        dead: r.try_get("dead")?,
    })
}

/// Deletes the jobs done before `before`; returns how many.
pub async fn purge_done(conn: &mut AnyConnection, before: &str) -> Result<u64, StorageError> {
    let r = sqlx::query("DELETE FROM jobs WHERE state = 'fait' AND finished_at < $1")
        .bind(before)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected())
}
