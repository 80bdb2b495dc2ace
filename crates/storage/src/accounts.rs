//! Services, users and their scopes, sessions, one-time tokens and login throttling.

use crate::error::StorageError;
use crate::scope::Filter;
use crate::time::Timestamp;
use guichet_domain::access::{CollectiviteSet, ServiceSet};
use guichet_domain::{Role, ServiceKind};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Executor, Row};

type Conn = AnyConnection;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRow {
    pub id: i64,
    pub code: String,
    pub kind: ServiceKind,
    pub name: String,
    pub territory_code: String,
    pub region_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewService<'a> {
    pub code: &'a str,
    pub kind: ServiceKind,
    pub name: &'a str,
    pub territory_code: &'a str,
    pub region_code: Option<&'a str>,
}

/// The columns of a service row, as constant text for `concat!`.
macro_rules! service_cols {
    () => {
        "id, code, kind, name, territory_code, region_code"
    };
}

/// A column that holds a domain value's slug, decoded into that value: an unknown slug is a
/// decoding error naming the column and the value, never a default.
pub(crate) fn slug<T>(
    r: &AnyRow,
    column: &'static str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T, sqlx::Error> {
    let text: String = r.try_get(column)?;
    parse(&text).ok_or_else(|| sqlx::Error::ColumnDecode {
        index: column.into(),
        source: format!(
            "valeur inconnue : « {} »",
            text.chars().take(64).collect::<String>()
        )
        .into(),
    })
}

fn service(r: &AnyRow) -> Result<ServiceRow, sqlx::Error> {
    Ok(ServiceRow {
        id: r.try_get("id")?,
        code: r.try_get("code")?,
        kind: slug(r, "kind", ServiceKind::from_slug)?,
        name: r.try_get("name")?,
        territory_code: r.try_get("territory_code")?,
        region_code: r.try_get("region_code")?,
    })
}

/// Creates the service if no service has this code; returns it and whether it was created.
pub async fn ensure_service(
    conn: &mut Conn,
    new: &NewService<'_>,
    now: &str,
) -> Result<(ServiceRow, bool), StorageError> {
    let inserted = sqlx::query(
        "INSERT INTO services (code, kind, name, territory_code, region_code, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (code) DO NOTHING",
    )
    .bind(new.code)
    .bind(new.kind.slug())
    .bind(new.name)
    .bind(new.territory_code)
    .bind(new.region_code)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        > 0;
    let row = find_service_by_code(&mut *conn, new.code)
        .await?
        .ok_or(StorageError::Query(sqlx::Error::RowNotFound))?;
    Ok((row, inserted))
}

pub async fn find_service_by_code<'c>(
    e: impl Executor<'c, Database = Any>,
    code: &str,
) -> Result<Option<ServiceRow>, StorageError> {
    let row = sqlx::query(concat!(
        "SELECT ",
        service_cols!(),
        " FROM services WHERE code = $1"
    ))
    .bind(code)
    .fetch_optional(e)
    .await?;
    Ok(row.as_ref().map(service).transpose()?)
}

pub async fn find_service<'c>(
    e: impl Executor<'c, Database = Any>,
    id: i64,
) -> Result<Option<ServiceRow>, StorageError> {
    let row = sqlx::query(concat!(
        "SELECT ",
        service_cols!(),
        " FROM services WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(e)
    .await?;
    Ok(row.as_ref().map(service).transpose()?)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub service_id: Option<i64>,
    pub password_hash: Option<String>,
    pub created_at: Timestamp,
    pub disabled_at: Option<Timestamp>,
}

/// The columns of a user row, as constant text for `concat!`.
macro_rules! user_cols {
    () => {
        "id, email, display_name, role, service_id, password_hash, created_at, disabled_at"
    };
}

fn user(r: &AnyRow) -> Result<UserRow, sqlx::Error> {
    Ok(UserRow {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        display_name: r.try_get("display_name")?,
        role: slug(r, "role", |s| Role::parse(s).ok())?,
        service_id: r.try_get("service_id")?,
        password_hash: r.try_get("password_hash")?,
        created_at: r.try_get("created_at")?,
        disabled_at: r.try_get("disabled_at")?,
    })
}

pub async fn insert_user<'c>(
    e: impl Executor<'c, Database = Any>,
    email: &str,
    display_name: &str,
    role: Role,
    service_id: Option<i64>,
    now: &str,
) -> Result<i64, StorageError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO users (email, display_name, role, service_id, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(email)
    .bind(display_name)
    .bind(role.slug())
    .bind(service_id)
    .bind(now)
    .fetch_one(e)
    .await?;
    Ok(id)
}

pub async fn add_user_collectivite<'c>(
    e: impl Executor<'c, Database = Any>,
    user_id: i64,
    kind: &str,
    code: &str,
) -> Result<(), StorageError> {
    sqlx::query("INSERT INTO user_collectivites (user_id, kind, code) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
        .bind(user_id)
        .bind(kind)
        .bind(code)
        .execute(e)
        .await?;
    Ok(())
}

pub async fn user_collectivites<'c>(
    e: impl Executor<'c, Database = Any>,
    user_id: i64,
) -> Result<Vec<(String, String)>, StorageError> {
    let rows = sqlx::query(
        "SELECT kind, code FROM user_collectivites WHERE user_id = $1 ORDER BY kind, code",
    )
    .bind(user_id)
    .fetch_all(e)
    .await?;
    Ok(rows
        .iter()
        .map(|r| Ok((r.try_get("kind")?, r.try_get("code")?)))
        .collect::<Result<_, sqlx::Error>>()?)
}

pub async fn find_user_by_email<'c>(
    e: impl Executor<'c, Database = Any>,
    email: &str,
) -> Result<Option<UserRow>, StorageError> {
    let row = sqlx::query(concat!(
        "SELECT ",
        user_cols!(),
        " FROM users WHERE email = $1"
    ))
    .bind(email)
    .fetch_optional(e)
    .await?;
    Ok(row.as_ref().map(user).transpose()?)
}

pub async fn find_user<'c>(
    e: impl Executor<'c, Database = Any>,
    id: i64,
) -> Result<Option<UserRow>, StorageError> {
    let row = sqlx::query(concat!(
        "SELECT ",
        user_cols!(),
        " FROM users WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(e)
    .await?;
    Ok(row.as_ref().map(user).transpose()?)
}

pub async fn list_users<'c>(
    e: impl Executor<'c, Database = Any>,
) -> Result<Vec<UserRow>, StorageError> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        user_cols!(),
        " FROM users ORDER BY email"
    ))
    .fetch_all(e)
    .await?;
    Ok(rows.iter().map(user).collect::<Result<_, _>>()?)
}

pub async fn set_password_hash<'c>(
    e: impl Executor<'c, Database = Any>,
    user_id: i64,
    hash: &str,
    now: &str,
) -> Result<(), StorageError> {
    sqlx::query("UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE id = $3")
        .bind(hash)
        .bind(now)
        .bind(user_id)
        .execute(e)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id_hash: String,
    pub user_id: i64,
    pub csrf_token: String,
    pub auth_method: String,
    pub idp_issuer: Option<String>,
    pub idp_session: Option<String>,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub expires_at: Timestamp,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

pub async fn insert_session<'c>(
    e: impl Executor<'c, Database = Any>,
    s: &SessionRow,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO sessions (id_hash, user_id, csrf_token, auth_method, idp_issuer, idp_session, created_at, \
         last_seen_at, expires_at, ip, user_agent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&s.id_hash)
    .bind(s.user_id)
    .bind(&s.csrf_token)
    .bind(&s.auth_method)
    .bind(s.idp_issuer.as_deref())
    .bind(s.idp_session.as_deref())
    .bind(s.created_at)
    .bind(s.last_seen_at)
    .bind(s.expires_at)
    .bind(s.ip.as_deref())
    .bind(s.user_agent.as_deref())
    .execute(e)
    .await?;
    Ok(())
}

/// A live session with its user and the user's service, in one statement (the request path of
/// every logged-in page).
pub async fn find_live_session_with_user<'c>(
    e: impl Executor<'c, Database = Any>,
    id_hash: &str,
    now: &str,
) -> Result<Option<(SessionRow, UserRow, Option<ServiceRow>)>, StorageError> {
    let row = sqlx::query(
        "SELECT s.id_hash, s.user_id, s.csrf_token, s.auth_method, s.idp_issuer, s.idp_session, \
         s.created_at, s.last_seen_at, s.expires_at, s.ip, s.user_agent, \
         u.email AS u_email, u.display_name AS u_display_name, u.role AS u_role, \
         u.service_id AS u_service_id, u.password_hash AS u_password_hash, \
         u.created_at AS u_created_at, u.disabled_at AS u_disabled_at, \
         v.code AS v_code, v.kind AS v_kind, v.name AS v_name, \
         v.territory_code AS v_territory_code, v.region_code AS v_region_code \
         FROM sessions s JOIN users u ON u.id = s.user_id LEFT JOIN services v ON v.id = u.service_id \
         WHERE s.id_hash = $1 AND s.expires_at > $2",
    )
    .bind(id_hash)
    .bind(now)
    .fetch_optional(e)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let session = session(&r)?;
    let user = UserRow {
        id: session.user_id,
        email: r.try_get("u_email")?,
        display_name: r.try_get("u_display_name")?,
        role: slug(&r, "u_role", |s| Role::parse(s).ok())?,
        service_id: r.try_get("u_service_id")?,
        password_hash: r.try_get("u_password_hash")?,
        created_at: r.try_get("u_created_at")?,
        disabled_at: r.try_get("u_disabled_at")?,
    };
    let service = match user.service_id {
        Some(id) => Some(ServiceRow {
            id,
            code: r.try_get("v_code")?,
            kind: slug(&r, "v_kind", ServiceKind::from_slug)?,
            name: r.try_get("v_name")?,
            territory_code: r.try_get("v_territory_code")?,
            region_code: r.try_get("v_region_code")?,
        }),
        None => None,
    };
    Ok(Some((session, user, service)))
}

fn session(r: &AnyRow) -> Result<SessionRow, sqlx::Error> {
    Ok(SessionRow {
        id_hash: r.try_get("id_hash")?,
        user_id: r.try_get("user_id")?,
        csrf_token: r.try_get("csrf_token")?,
        auth_method: r.try_get("auth_method")?,
        idp_issuer: r.try_get("idp_issuer")?,
        idp_session: r.try_get("idp_session")?,
        created_at: r.try_get("created_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
        expires_at: r.try_get("expires_at")?,
        ip: r.try_get("ip")?,
        user_agent: r.try_get("user_agent")?,
    })
}

pub async fn touch_session<'c>(
    e: impl Executor<'c, Database = Any>,
    id_hash: &str,
    now: &str,
    expires_at: &str,
) -> Result<(), StorageError> {
    sqlx::query("UPDATE sessions SET last_seen_at = $1, expires_at = $2 WHERE id_hash = $3")
        .bind(now)
        .bind(expires_at)
        .bind(id_hash)
        .execute(e)
        .await?;
    Ok(())
}

pub async fn delete_session<'c>(
    e: impl Executor<'c, Database = Any>,
    id_hash: &str,
) -> Result<bool, StorageError> {
    let n = sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(e)
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// Deletes a session and says whose it was (`None` if there was none): one statement, so that
/// a retried logout is harmless.
pub async fn end_session<'c>(
    e: impl Executor<'c, Database = Any>,
    id_hash: &str,
) -> Result<Option<i64>, StorageError> {
    Ok(
        sqlx::query_scalar("DELETE FROM sessions WHERE id_hash = $1 RETURNING user_id")
            .bind(id_hash)
            .fetch_optional(e)
            .await?,
    )
}

pub async fn delete_user_sessions<'c>(
    e: impl Executor<'c, Database = Any>,
    user_id: i64,
) -> Result<u64, StorageError> {
    Ok(sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(e)
        .await?
        .rows_affected())
}

pub async fn delete_expired_sessions<'c>(
    e: impl Executor<'c, Database = Any>,
    now: &str,
) -> Result<u64, StorageError> {
    Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(e)
        .await?
        .rows_affected())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub user_id: i64,
    pub purpose: String,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
}

pub async fn insert_token<'c>(
    e: impl Executor<'c, Database = Any>,
    token_hash: &str,
    user_id: i64,
    purpose: &str,
    now: &str,
    expires_at: &str,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO auth_tokens (token_hash, user_id, purpose, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(purpose)
    .bind(now)
    .bind(expires_at)
    .execute(e)
    .await?;
    Ok(())
}

pub async fn find_token<'c>(
    e: impl Executor<'c, Database = Any>,
    token_hash: &str,
) -> Result<Option<TokenRow>, StorageError> {
    let row = sqlx::query(
        "SELECT user_id, purpose, expires_at, used_at FROM auth_tokens WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(e)
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(TokenRow {
        user_id: r.try_get("user_id")?,
        purpose: r.try_get("purpose")?,
        expires_at: r.try_get("expires_at")?,
        used_at: r.try_get("used_at")?,
    }))
}

/// Marks a token used; false if it was already used (so a link works once, even under a race).
pub async fn consume_token<'c>(
    e: impl Executor<'c, Database = Any>,
    token_hash: &str,
    now: &str,
) -> Result<bool, StorageError> {
    let n = sqlx::query(
        "UPDATE auth_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
    )
    .bind(now)
    .bind(token_hash)
    .execute(e)
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// Invalidates a user's other unused tokens of a purpose (a new link replaces the old ones).
pub async fn revoke_tokens<'c>(
    e: impl Executor<'c, Database = Any>,
    user_id: i64,
    purpose: &str,
    now: &str,
) -> Result<(), StorageError> {
    sqlx::query("UPDATE auth_tokens SET used_at = $1 WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL")
        .bind(now)
        .bind(user_id)
        .bind(purpose)
        .execute(e)
        .await?;
    Ok(())
}

/// Invalidates every unused one-time link of a user, of every purpose (a password was just set:
/// no older link may set another one).
pub async fn revoke_all_tokens<'c>(
    e: impl Executor<'c, Database = Any>,
    user_id: i64,
    now: &str,
) -> Result<u64, StorageError> {
    Ok(
        sqlx::query("UPDATE auth_tokens SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL")
            .bind(now)
            .bind(user_id)
            .execute(e)
            .await?
            .rows_affected(),
    )
}

/// How an attempt counter behaves: `limit` attempts within `window` are let through; the
/// attempt that reaches the limit and each one after it (once the previous lock has passed) lock
/// the key for a growing delay (`locks[0]` at the limit, `locks[1]` at the next one, …, the last
/// one for every attempt after).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRule<'a> {
    pub limit: i64,
    /// Start of the current window: a window that began before it is over (the count restarts).
    pub window_cutoff: &'a str,
    /// The lock end for the attempt at `limit`, `limit + 1`, …, `limit + 3`, then any later one.
    pub locks: [&'a str; 5],
}

/// What the counter said about one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// False when the key was locked: the attempt was not counted and must be refused.
    pub allowed: bool,
    /// Attempts counted in the current window, this one included when allowed.
    pub count: i64,
    pub locked_until: Option<String>,
}

/// Counts one attempt on `key`, atomically, and says whether it may go on: one upsert that
/// reads the previous state and writes the new one under the row's lock, so parallel attempts
/// are each counted once and see each other's counts (no read-then-write race).
pub async fn count_attempt<'c>(
    e: impl Executor<'c, Database = Any>,
    key: &str,
    now: &str,
    rule: &AttemptRule<'_>,
) -> Result<Attempt, StorageError> {
    let first_lock = (rule.limit <= 1).then_some(rule.locks[0]);
    let r = sqlx::query(
        "INSERT INTO login_throttle (key, window_start, failures, locked_until, allowed) \
         VALUES ($1, $2, 1, $10, 1) \
         ON CONFLICT (key) DO UPDATE SET \
           allowed = CASE WHEN login_throttle.locked_until > $2 THEN 0 ELSE 1 END, \
           failures = CASE WHEN login_throttle.locked_until > $2 THEN login_throttle.failures \
             WHEN login_throttle.window_start < $3 THEN 1 \
             ELSE login_throttle.failures + 1 END, \
           window_start = CASE WHEN login_throttle.locked_until > $2 THEN login_throttle.window_start \
             WHEN login_throttle.window_start < $3 THEN $2 \
             ELSE login_throttle.window_start END, \
           locked_until = CASE WHEN login_throttle.locked_until > $2 THEN login_throttle.locked_until \
             WHEN login_throttle.window_start < $3 THEN $10 \
             WHEN login_throttle.failures + 1 < $4 THEN NULL \
             WHEN login_throttle.failures + 1 = $4 THEN $5 \
             WHEN login_throttle.failures + 1 = $4 + 1 THEN $6 \
             WHEN login_throttle.failures + 1 = $4 + 2 THEN $7 \
             WHEN login_throttle.failures + 1 = $4 + 3 THEN $8 \
             ELSE $9 END \
         RETURNING allowed, failures, locked_until",
    )
    .bind(key)
    .bind(now)
    .bind(rule.window_cutoff)
    .bind(rule.limit)
    .bind(rule.locks[0])
    .bind(rule.locks[1])
    .bind(rule.locks[2])
    .bind(rule.locks[3])
    .bind(rule.locks[4])
    .bind(first_lock)
    .fetch_one(e)
    .await?;
    Ok(Attempt {
        allowed: r.try_get::<i64, _>("allowed")? != 0,
        count: r.try_get("failures")?,
        locked_until: r.try_get("locked_until")?,
    })
}

/// Takes back one counted attempt (it succeeded: it was no failure), lifting the lock it may
/// have set when the count falls below `limit`.
pub async fn uncount_attempt<'c>(
    e: impl Executor<'c, Database = Any>,
    key: &str,
    limit: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE login_throttle SET failures = failures - 1, \
         locked_until = CASE WHEN failures - 1 < $2 THEN NULL ELSE locked_until END \
         WHERE key = $1 AND failures > 0",
    )
    .bind(key)
    .bind(limit)
    .execute(e)
    .await?;
    Ok(())
}

/// The current count of a key, for tests and diagnostics.
pub async fn attempt_count<'c>(
    e: impl Executor<'c, Database = Any>,
    key: &str,
) -> Result<i64, StorageError> {
    Ok(
        sqlx::query_scalar("SELECT failures FROM login_throttle WHERE key = $1")
            .bind(key)
            .fetch_optional(e)
            .await?
            .unwrap_or(0),
    )
}

pub async fn clear_throttle<'c>(
    e: impl Executor<'c, Database = Any>,
    key: &str,
) -> Result<(), StorageError> {
    sqlx::query("DELETE FROM login_throttle WHERE key = $1")
        .bind(key)
        .execute(e)
        .await?;
    Ok(())
}

/// Clears every key that starts with `prefix` (an account's per-address counters).
pub async fn clear_throttle_prefix<'c>(
    e: impl Executor<'c, Database = Any>,
    prefix: &str,
) -> Result<(), StorageError> {
    sqlx::query("DELETE FROM login_throttle WHERE substr(key, 1, CAST($2 AS INTEGER)) = $1")
        .bind(prefix)
        .bind(prefix.chars().count() as i64)
        .execute(e)
        .await?;
    Ok(())
}

// Reads within a principal's scope: the domain's sets become `WHERE` conditions
// (`crate::scope`), so a list holds only what its reader may see.

/// The services of `set`.
pub async fn services_in(
    conn: &mut Conn,
    set: &ServiceSet,
) -> Result<Vec<ServiceRow>, StorageError> {
    let mut f = Filter::starting_at(1);
    let cond = f.services(set, "s");
    let sql = format!(
        "SELECT s.id, s.code, s.kind, s.name, s.territory_code, s.region_code FROM services s \
         WHERE {cond} ORDER BY s.kind, s.territory_code"
    );
    let rows = f.bind(sqlx::query(&sql)).fetch_all(&mut *conn).await?;
    Ok(rows.iter().map(service).collect::<Result<_, _>>()?)
}

/// One service, if it is in `set`.
pub async fn service_in(
    conn: &mut Conn,
    id: i64,
    set: &ServiceSet,
) -> Result<Option<ServiceRow>, StorageError> {
    let mut f = Filter::starting_at(2);
    let cond = f.services(set, "s");
    let sql = format!(
        "SELECT s.id, s.code, s.kind, s.name, s.territory_code, s.region_code FROM services s \
         WHERE s.id = $1 AND {cond}"
    );
    let row = f
        .bind(sqlx::query(&sql).bind(id))
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.as_ref().map(service).transpose()?)
}

/// The members of a service, if the service is in `set` (none otherwise).
pub async fn users_of_service_in(
    conn: &mut Conn,
    service_id: i64,
    set: &ServiceSet,
) -> Result<Vec<UserRow>, StorageError> {
    let mut f = Filter::starting_at(2);
    let cond = f.services(set, "s");
    let sql = format!(
        "SELECT u.id, u.email, u.display_name, u.role, u.service_id, u.password_hash, u.created_at, u.disabled_at \
         FROM users u JOIN services s ON s.id = u.service_id WHERE u.service_id = $1 AND {cond} ORDER BY u.display_name"
    );
    let rows = f
        .bind(sqlx::query(&sql).bind(service_id))
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.iter().map(user).collect::<Result<_, _>>()?)
}

/// Whether a collectivité (`kind` slug, `code`) is in `set`, placed with the referential of
/// `vintage`.
pub async fn collectivite_in(
    conn: &mut Conn,
    vintage: i64,
    kind: &str,
    code: &str,
    set: &CollectiviteSet,
) -> Result<bool, StorageError> {
    let mut f = Filter::starting_at(3);
    let cond = f.collectivites(set, "t.kind", "t.code", vintage);
    let sql = format!("SELECT COUNT(*) FROM (SELECT CAST($1 AS TEXT) AS kind, CAST($2 AS TEXT) AS code) t WHERE {cond}");
    let n: i64 = f
        .bind_scalar(sqlx::query_scalar(&sql).bind(kind).bind(code))
        .fetch_one(&mut *conn)
        .await?;
    Ok(n > 0)
}

/// The agents of a collectivité, if it is in `set` (none otherwise).
pub async fn users_of_collectivite_in(
    conn: &mut Conn,
    vintage: i64,
    kind: &str,
    code: &str,
    set: &CollectiviteSet,
) -> Result<Vec<UserRow>, StorageError> {
    let mut f = Filter::starting_at(3);
    let cond = f.collectivites(set, "c.kind", "c.code", vintage);
    let sql = format!(
        "SELECT u.id, u.email, u.display_name, u.role, u.service_id, u.password_hash, u.created_at, u.disabled_at \
         FROM users u JOIN user_collectivites c ON c.user_id = u.id \
         WHERE c.kind = $1 AND c.code = $2 AND {cond} ORDER BY u.display_name"
    );
    let rows = f
        .bind(sqlx::query(&sql).bind(kind).bind(code))
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.iter().map(user).collect::<Result<_, _>>()?)
}

/// A collectivité that has agents on Guichet, and how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectiviteWithAgents {
    pub kind: String,
    pub code: String,
    /// Its name in the referential of the vintage asked for, if it is there.
    pub name: Option<String>,
    pub agents: i64,
}

/// The collectivités of `set` that have agents (at most `limit`), with their names, placed with
/// the referential of `vintage`. One query, whatever the number of rows.
pub async fn collectivites_with_agents_in(
    conn: &mut Conn,
    vintage: i64,
    set: &CollectiviteSet,
    limit: i64,
) -> Result<Vec<CollectiviteWithAgents>, StorageError> {
    let mut f = Filter::starting_at(3);
    let cond = f.collectivites(set, "c.kind", "c.code", vintage);
    let sql = format!(
        "SELECT c.kind, c.code, COUNT(*) AS agents, \
           COALESCE(MAX(rc.name), MAX(re.name), MAX(rd.name), MAX(rr.name)) AS name \
         FROM user_collectivites c \
         LEFT JOIN ref_communes rc ON c.kind = 'commune' AND rc.vintage = $1 AND rc.insee = c.code \
         LEFT JOIN ref_epci re ON c.kind = 'epci' AND re.vintage = $1 AND re.siren = c.code \
         LEFT JOIN ref_departements rd ON c.kind = 'departement' AND rd.vintage = $1 AND rd.code = c.code \
         LEFT JOIN ref_regions rr ON c.kind = 'region' AND rr.vintage = $1 AND rr.code = c.code \
         WHERE {cond} GROUP BY c.kind, c.code ORDER BY c.kind, c.code LIMIT $2"
    );
    let rows = f
        .bind(sqlx::query(&sql).bind(vintage).bind(limit))
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(CollectiviteWithAgents {
                kind: r.try_get("kind")?,
                code: r.try_get("code")?,
                name: r.try_get("name")?,
                agents: r.try_get("agents")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}
