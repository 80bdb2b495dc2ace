//! Services, users and their scopes, sessions, one-time tokens and login throttling.

use crate::error::StorageError;
use crate::scope::Filter;
use guichet_domain::access::{CollectiviteSet, ServiceSet};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

type Conn = AnyConnection;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRow {
    pub id: i64,
    pub code: String,
    pub kind: String,
    pub name: String,
    pub territory_code: String,
    pub region_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewService<'a> {
    pub code: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
    pub territory_code: &'a str,
    pub region_code: Option<&'a str>,
}

const SERVICE_COLS: &str = "id, code, kind, name, territory_code, region_code";

fn service(r: &AnyRow) -> Result<ServiceRow, sqlx::Error> {
    Ok(ServiceRow {
        id: r.try_get("id")?,
        code: r.try_get("code")?,
        kind: r.try_get("kind")?,
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
    .bind(new.kind)
    .bind(new.name)
    .bind(new.territory_code)
    .bind(new.region_code)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        > 0;
    let row = find_service_by_code(conn, new.code)
        .await?
        .ok_or_else(|| StorageError::Conflict(format!("service {}", new.code)))?;
    Ok((row, inserted))
}

pub async fn find_service_by_code(
    conn: &mut Conn,
    code: &str,
) -> Result<Option<ServiceRow>, StorageError> {
    let row = sqlx::query(&format!(
        "SELECT {SERVICE_COLS} FROM services WHERE code = $1"
    ))
    .bind(code)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.as_ref().map(service).transpose()?)
}

pub async fn find_service(conn: &mut Conn, id: i64) -> Result<Option<ServiceRow>, StorageError> {
    let row = sqlx::query(&format!(
        "SELECT {SERVICE_COLS} FROM services WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.as_ref().map(service).transpose()?)
}

pub async fn list_services(conn: &mut Conn) -> Result<Vec<ServiceRow>, StorageError> {
    let rows = sqlx::query(&format!(
        "SELECT {SERVICE_COLS} FROM services ORDER BY kind, territory_code"
    ))
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.iter().map(service).collect::<Result<_, _>>()?)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    pub role: String,
    pub service_id: Option<i64>,
    pub password_hash: Option<String>,
    pub created_at: String,
    pub disabled_at: Option<String>,
}

const USER_COLS: &str =
    "id, email, display_name, role, service_id, password_hash, created_at, disabled_at";

fn user(r: &AnyRow) -> Result<UserRow, sqlx::Error> {
    Ok(UserRow {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        display_name: r.try_get("display_name")?,
        role: r.try_get("role")?,
        service_id: r.try_get("service_id")?,
        password_hash: r.try_get("password_hash")?,
        created_at: r.try_get("created_at")?,
        disabled_at: r.try_get("disabled_at")?,
    })
}

pub async fn insert_user(
    conn: &mut Conn,
    email: &str,
    display_name: &str,
    role: &str,
    service_id: Option<i64>,
    now: &str,
) -> Result<i64, StorageError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO users (email, display_name, role, service_id, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(email)
    .bind(display_name)
    .bind(role)
    .bind(service_id)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

pub async fn add_user_collectivite(
    conn: &mut Conn,
    user_id: i64,
    kind: &str,
    code: &str,
) -> Result<(), StorageError> {
    sqlx::query("INSERT INTO user_collectivites (user_id, kind, code) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
        .bind(user_id)
        .bind(kind)
        .bind(code)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn user_collectivites(
    conn: &mut Conn,
    user_id: i64,
) -> Result<Vec<(String, String)>, StorageError> {
    let rows = sqlx::query(
        "SELECT kind, code FROM user_collectivites WHERE user_id = $1 ORDER BY kind, code",
    )
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| Ok((r.try_get("kind")?, r.try_get("code")?)))
        .collect::<Result<_, sqlx::Error>>()?)
}

pub async fn find_user_by_email(
    conn: &mut Conn,
    email: &str,
) -> Result<Option<UserRow>, StorageError> {
    let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE email = $1"))
        .bind(email)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.as_ref().map(user).transpose()?)
}

pub async fn find_user(conn: &mut Conn, id: i64) -> Result<Option<UserRow>, StorageError> {
    let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.as_ref().map(user).transpose()?)
}

pub async fn list_users(conn: &mut Conn) -> Result<Vec<UserRow>, StorageError> {
    let rows = sqlx::query(&format!("SELECT {USER_COLS} FROM users ORDER BY email"))
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.iter().map(user).collect::<Result<_, _>>()?)
}

pub async fn set_password_hash(
    conn: &mut Conn,
    user_id: i64,
    hash: &str,
    now: &str,
) -> Result<(), StorageError> {
    sqlx::query("UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE id = $3")
        .bind(hash)
        .bind(now)
        .bind(user_id)
        .execute(&mut *conn)
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
    pub created_at: String,
    pub last_seen_at: String,
    pub expires_at: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

pub async fn insert_session(conn: &mut Conn, s: &SessionRow) -> Result<(), StorageError> {
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
    .bind(&s.created_at)
    .bind(&s.last_seen_at)
    .bind(&s.expires_at)
    .bind(s.ip.as_deref())
    .bind(s.user_agent.as_deref())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Finds a session that has not expired at `now`.
pub async fn find_live_session(
    conn: &mut Conn,
    id_hash: &str,
    now: &str,
) -> Result<Option<SessionRow>, StorageError> {
    let row = sqlx::query(
        "SELECT id_hash, user_id, csrf_token, auth_method, idp_issuer, idp_session, created_at, last_seen_at, \
         expires_at, ip, user_agent FROM sessions WHERE id_hash = $1 AND expires_at > $2",
    )
    .bind(id_hash)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(SessionRow {
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
    }))
}

pub async fn touch_session(
    conn: &mut Conn,
    id_hash: &str,
    now: &str,
    expires_at: &str,
) -> Result<(), StorageError> {
    sqlx::query("UPDATE sessions SET last_seen_at = $1, expires_at = $2 WHERE id_hash = $3")
        .bind(now)
        .bind(expires_at)
        .bind(id_hash)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn delete_session(conn: &mut Conn, id_hash: &str) -> Result<bool, StorageError> {
    let n = sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(n > 0)
}

pub async fn delete_user_sessions(conn: &mut Conn, user_id: i64) -> Result<u64, StorageError> {
    Ok(sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?
        .rows_affected())
}

pub async fn delete_expired_sessions(conn: &mut Conn, now: &str) -> Result<u64, StorageError> {
    Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub user_id: i64,
    pub purpose: String,
    pub expires_at: String,
    pub used_at: Option<String>,
}

pub async fn insert_token(
    conn: &mut Conn,
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
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn find_token(
    conn: &mut Conn,
    token_hash: &str,
) -> Result<Option<TokenRow>, StorageError> {
    let row = sqlx::query(
        "SELECT user_id, purpose, expires_at, used_at FROM auth_tokens WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(&mut *conn)
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
pub async fn consume_token(
    conn: &mut Conn,
    token_hash: &str,
    now: &str,
) -> Result<bool, StorageError> {
    let n = sqlx::query(
        "UPDATE auth_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
    )
    .bind(now)
    .bind(token_hash)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// Invalidates a user's other unused tokens of a purpose (a new link replaces the old ones).
pub async fn revoke_tokens(
    conn: &mut Conn,
    user_id: i64,
    purpose: &str,
    now: &str,
) -> Result<(), StorageError> {
    sqlx::query("UPDATE auth_tokens SET used_at = $1 WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL")
        .bind(now)
        .bind(user_id)
        .bind(purpose)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleRow {
    pub window_start: String,
    pub failures: i64,
    pub locked_until: Option<String>,
}

pub async fn get_throttle(conn: &mut Conn, key: &str) -> Result<Option<ThrottleRow>, StorageError> {
    let row = sqlx::query(
        "SELECT window_start, failures, locked_until FROM login_throttle WHERE key = $1",
    )
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(ThrottleRow {
        window_start: r.try_get("window_start")?,
        failures: r.try_get("failures")?,
        locked_until: r.try_get("locked_until")?,
    }))
}

pub async fn put_throttle(
    conn: &mut Conn,
    key: &str,
    row: &ThrottleRow,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO login_throttle (key, window_start, failures, locked_until) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (key) DO UPDATE SET window_start = excluded.window_start, failures = excluded.failures, \
         locked_until = excluded.locked_until",
    )
    .bind(key)
    .bind(&row.window_start)
    .bind(row.failures)
    .bind(row.locked_until.as_deref())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn clear_throttle(conn: &mut Conn, key: &str) -> Result<(), StorageError> {
    sqlx::query("DELETE FROM login_throttle WHERE key = $1")
        .bind(key)
        .execute(&mut *conn)
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
