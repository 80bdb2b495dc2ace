//! Passwords, sessions, one-time links and login throttling.
//!
//! Sessions live in the database (any instance can serve any request). The cookie carries a
//! random token; the database keeps only its SHA-256, so a leaked table does not leak sessions.
//! `auth_method` records how the session was opened (`password` today, `oidc` for ProConnect
//! later, with the identity provider's session kept in `idp_*` for single logout).

use crate::accounts::parse_email;
use crate::audit::{self, Actor};
use crate::error::{AppError, AppResult};
use crate::App;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use guichet_domain::password;
use guichet_storage::accounts::{self as store, SessionRow, ThrottleRow};
use guichet_storage::{format_ts, parse_ts};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// Idle lifetime of a session; each request moves it on, up to the absolute limit.
pub const SESSION_IDLE: Duration = Duration::hours(2);
pub const SESSION_ABSOLUTE: Duration = Duration::hours(12);
const THROTTLE_WINDOW: Duration = Duration::minutes(15);
const ACCOUNT_MAX_FAILURES: i64 = 5;
const IP_MAX_FAILURES: i64 = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    FirstPassword,
    Reset,
}

impl TokenPurpose {
    pub(crate) fn slug(self) -> &'static str {
        match self {
            TokenPurpose::FirstPassword => "premier-mot-de-passe",
            TokenPurpose::Reset => "reinitialisation",
        }
    }
    pub(crate) fn lifetime(self) -> Duration {
        match self {
            TokenPurpose::FirstPassword => Duration::days(7),
            TokenPurpose::Reset => Duration::hours(1),
        }
    }
}

/// A random URL-safe token (256 bits).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn hash_password(pw: &str) -> AppResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::Internal(anyhow::anyhow!("argon2 : {e}")))
}

fn verify_password(pw: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| Argon2::default().verify_password(pw.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

static DUMMY: OnceLock<String> = OnceLock::new();

/// Computes, once per process, the hash verified against when an account does not exist (so
/// that timing does not reveal it). Called by `App::start`, which fails if it cannot be made: a
/// missing dummy would make unknown accounts answer faster.
pub fn prepare_dummy_hash() -> AppResult<()> {
    if DUMMY.get().is_none() {
        let hash = hash_password(&random_token())?;
        // A valid PHC string, checked now rather than at the first unknown login.
        PasswordHash::new(&hash)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("empreinte factice invalide : {e}")))?;
        let _ = DUMMY.set(hash);
    }
    Ok(())
}

/// The dummy hash (made at start-up; made here if an `App` was built some other way).
fn dummy_hash() -> AppResult<&'static str> {
    prepare_dummy_hash()?;
    DUMMY
        .get()
        .map(String::as_str)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("empreinte factice absente")))
}

/// Whether the dummy hash is ready (tests).
pub fn dummy_hash_ready() -> bool {
    DUMMY.get().is_some_and(|h| PasswordHash::new(h).is_ok())
}

/// A session just opened: the cookie value to set.
#[derive(Debug, Clone)]
pub struct IssuedSession {
    pub token: String,
    pub user_id: i64,
    pub expires_at: DateTime<Utc>,
}

/// A live session, as the web layer needs it.
#[derive(Debug, Clone)]
pub struct SessionContext {
    pub user_id: i64,
    pub csrf_token: String,
    pub id_hash: String,
}

/// A one-time link that may be used: whose it is and what for.
#[derive(Debug, Clone)]
pub struct TokenCheck {
    pub user_id: i64,
    pub purpose: TokenPurpose,
    pub email: String,
}

fn throttle_locked(row: &Option<ThrottleRow>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    row.as_ref()
        .and_then(|r| r.locked_until.as_deref())
        .and_then(parse_ts)
        .filter(|until| *until > now)
}

fn paris(at: DateTime<Utc>) -> String {
    at.with_timezone(&chrono_tz::Europe::Paris)
        .format("%H:%M")
        .to_string()
}

impl App {
    async fn register_failure(&self, key: &str, max: i64, now: DateTime<Utc>) -> AppResult<()> {
        let mut conn = self.db.pool().acquire().await?;
        let current = store::get_throttle(&mut conn, key).await?;
        let window_open = current
            .as_ref()
            .and_then(|r| parse_ts(&r.window_start))
            .is_some_and(|start| now - start < THROTTLE_WINDOW);
        let (window_start, failures) = match (&current, window_open) {
            (Some(r), true) => (r.window_start.clone(), r.failures + 1),
            _ => (format_ts(now), 1),
        };
        let locked_until = (failures >= max).then(|| format_ts(now + THROTTLE_WINDOW));
        store::put_throttle(
            &mut conn,
            key,
            &ThrottleRow {
                window_start,
                failures,
                locked_until,
            },
        )
        .await?;
        Ok(())
    }

    /// Checks a password and opens a session. `previous` is the session the browser had, if
    /// any: it is closed, so that the session identifier changes at login.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        ip: Option<&str>,
        user_agent: Option<&str>,
        previous: Option<&str>,
    ) -> AppResult<IssuedSession> {
        let invalid =
            || AppError::Unauthorized("adresse électronique ou mot de passe incorrect".into());
        let email = parse_email(email).map_err(|_| invalid())?;
        let now = self.clock.now();
        let account_key = format!("compte:{email}");
        let ip_key = ip.map(|ip| format!("ip:{ip}"));
        {
            let mut conn = self.db.pool().acquire().await?;
            let mut locked =
                throttle_locked(&store::get_throttle(&mut conn, &account_key).await?, now);
            if let Some(k) = &ip_key {
                locked = locked.max(throttle_locked(
                    &store::get_throttle(&mut conn, k).await?,
                    now,
                ));
            }
            if let Some(until) = locked {
                return Err(AppError::TooManyAttempts {
                    until: paris(until),
                    retry_after_secs: (until - now).num_seconds().max(1),
                });
            }
        }
        let user = {
            let mut conn = self.db.pool().acquire().await?;
            store::find_user_by_email(&mut conn, &email).await?
        };
        let phc = user
            .as_ref()
            .filter(|u| u.disabled_at.is_none())
            .and_then(|u| u.password_hash.clone())
            .map_or_else(|| dummy_hash().map(str::to_string), Ok)?;
        let pw = password.to_string();
        let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &phc))
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!(e)))?;
        let user = match (ok, user) {
            (true, Some(u)) if u.disabled_at.is_none() && u.password_hash.is_some() => u,
            _ => {
                self.register_failure(&account_key, ACCOUNT_MAX_FAILURES, now)
                    .await?;
                if let Some(k) = &ip_key {
                    self.register_failure(k, IP_MAX_FAILURES, now).await?;
                }
                return Err(invalid());
            }
        };
        let token = random_token();
        let expires_at = now + SESSION_IDLE;
        let mut tx = self.db.pool().begin().await?;
        store::clear_throttle(&mut tx, &account_key).await?;
        if let Some(prev) = previous {
            store::delete_session(&mut tx, &token_hash(prev)).await?;
        }
        store::insert_session(
            &mut tx,
            &SessionRow {
                id_hash: token_hash(&token),
                user_id: user.id,
                csrf_token: random_token(),
                auth_method: "password".into(),
                idp_issuer: None,
                idp_session: None,
                created_at: format_ts(now),
                last_seen_at: format_ts(now),
                expires_at: format_ts(expires_at),
                ip: ip.map(str::to_string),
                user_agent: user_agent.map(|u| u.chars().take(300).collect()),
            },
        )
        .await?;
        audit::record(
            &mut tx,
            &self.clock,
            Actor::User(user.id),
            "session.connexion",
            "utilisateur",
            &user.id.to_string(),
            None,
            Some(&serde_json::json!({"methode": "password", "ip": ip})),
        )
        .await?;
        tx.commit().await?;
        Ok(IssuedSession {
            token,
            user_id: user.id,
            expires_at,
        })
    }

    /// The live session behind a cookie token, sliding its expiry forward.
    pub async fn session(&self, token: &str) -> AppResult<Option<SessionContext>> {
        let now = self.clock.now();
        let id_hash = token_hash(token);
        let mut conn = self.db.pool().acquire().await?;
        let Some(s) = store::find_live_session(&mut conn, &id_hash, &format_ts(now)).await? else {
            return Ok(None);
        };
        let user = store::find_user(&mut conn, s.user_id).await?;
        if user.as_ref().is_none_or(|u| u.disabled_at.is_some()) {
            store::delete_session(&mut conn, &id_hash).await?;
            return Ok(None);
        }
        // Slide the expiry at most once a minute, to spare the database a write per request.
        let seen = parse_ts(&s.last_seen_at).unwrap_or(now);
        if now - seen > Duration::minutes(1) {
            let created = parse_ts(&s.created_at).unwrap_or(now);
            let expires = (now + SESSION_IDLE).min(created + SESSION_ABSOLUTE);
            store::touch_session(&mut conn, &id_hash, &format_ts(now), &format_ts(expires)).await?;
        }
        Ok(Some(SessionContext {
            user_id: s.user_id,
            csrf_token: s.csrf_token,
            id_hash,
        }))
    }

    pub async fn logout(&self, token: &str) -> AppResult<()> {
        let mut tx = self.db.pool().begin().await?;
        let id_hash = token_hash(token);
        let now = format_ts(self.clock.now());
        if let Some(s) = store::find_live_session(&mut tx, &id_hash, &now).await? {
            store::delete_session(&mut tx, &id_hash).await?;
            audit::record(
                &mut tx,
                &self.clock,
                Actor::User(s.user_id),
                "session.deconnexion",
                "utilisateur",
                &s.user_id.to_string(),
                None,
                None,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Creates a one-time link (first password or reset), replacing earlier unused ones.
    pub async fn issue_token_link(&self, user_id: i64, purpose: TokenPurpose) -> AppResult<String> {
        let token = random_token();
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        store::revoke_tokens(&mut tx, user_id, purpose.slug(), &format_ts(now)).await?;
        store::insert_token(
            &mut tx,
            &token_hash(&token),
            user_id,
            purpose.slug(),
            &format_ts(now),
            &format_ts(now + purpose.lifetime()),
        )
        .await?;
        tx.commit().await?;
        Ok(format!(
            "{}/mot-de-passe/definir?jeton={token}",
            self.config.base_url
        ))
    }

    /// Queues a reset link for the account of this address, if any. Says nothing either way, so
    /// that the form does not reveal which addresses have accounts.
    pub async fn request_password_reset(&self, email: &str) -> AppResult<()> {
        let email = parse_email(email)?;
        // The same single insert whether or not the address has an account: the answer takes the
        // same time either way; the worker looks the account up and sends the link.
        let mut conn = self.db.pool().acquire().await?;
        self.enqueue(&mut conn, &crate::mail::ResetLinkMail { email })
            .await?;
        self.wake_workers();
        Ok(())
    }

    /// Checks a one-time link without using it.
    pub async fn check_token(&self, token: &str) -> AppResult<TokenCheck> {
        let mut conn = self.db.pool().acquire().await?;
        let row = store::find_token(&mut conn, &token_hash(token))
            .await?
            .ok_or_else(|| {
                AppError::NotFound(
                    "ce lien n’est pas valide : vérifiez qu’il a été copié en entier".into(),
                )
            })?;
        if row.used_at.is_some() {
            return Err(AppError::Conflict(
                "ce lien a déjà été utilisé ; demandez-en un nouveau".into(),
            ));
        }
        if parse_ts(&row.expires_at).is_none_or(|e| e <= self.clock.now()) {
            return Err(AppError::Conflict(
                "ce lien a expiré ; demandez-en un nouveau".into(),
            ));
        }
        let purpose = if row.purpose == TokenPurpose::Reset.slug() {
            TokenPurpose::Reset
        } else {
            TokenPurpose::FirstPassword
        };
        let user = store::find_user(&mut conn, row.user_id)
            .await?
            .ok_or_else(|| AppError::NotFound("compte introuvable".into()))?;
        Ok(TokenCheck {
            user_id: row.user_id,
            purpose,
            email: user.email,
        })
    }

    /// Sets a password through a one-time link; closes the account's other sessions.
    pub async fn set_password_with_token(&self, token: &str, new_password: &str) -> AppResult<i64> {
        password::check(new_password).map_err(|e| AppError::Invalid(e.to_string()))?;
        let check = self.check_token(token).await?;
        let pw = new_password.to_string();
        let hash = tokio::task::spawn_blocking(move || hash_password(&pw))
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!(e)))??;
        let now = format_ts(self.clock.now());
        let mut tx = self.db.pool().begin().await?;
        if !store::consume_token(&mut tx, &token_hash(token), &now).await? {
            return Err(AppError::Conflict(
                "ce lien a déjà été utilisé ; demandez-en un nouveau".into(),
            ));
        }
        store::set_password_hash(&mut tx, check.user_id, &hash, &now).await?;
        store::delete_user_sessions(&mut tx, check.user_id).await?;
        store::clear_throttle(&mut tx, &format!("compte:{}", check.email)).await?;
        audit::record(
            &mut tx,
            &self.clock,
            Actor::User(check.user_id),
            match check.purpose {
                TokenPurpose::FirstPassword => "utilisateur.premier-mot-de-passe",
                TokenPurpose::Reset => "utilisateur.reinitialisation-mot-de-passe",
            },
            "utilisateur",
            &check.user_id.to_string(),
            None,
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(check.user_id)
    }

    /// Sets a password directly (demo accounts, administration).
    pub async fn set_password(
        &self,
        user_id: i64,
        new_password: &str,
        actor: Actor,
    ) -> AppResult<()> {
        password::check(new_password).map_err(|e| AppError::Invalid(e.to_string()))?;
        let pw = new_password.to_string();
        let hash = tokio::task::spawn_blocking(move || hash_password(&pw))
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!(e)))??;
        let mut tx = self.db.pool().begin().await?;
        store::set_password_hash(&mut tx, user_id, &hash, &format_ts(self.clock.now())).await?;
        audit::record(
            &mut tx,
            &self.clock,
            actor,
            "utilisateur.mot-de-passe",
            "utilisateur",
            &user_id.to_string(),
            None,
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

impl App {
    pub async fn purge_expired_sessions(&self) -> AppResult<u64> {
        let mut conn = self.db.pool().acquire().await?;
        Ok(store::delete_expired_sessions(&mut conn, &format_ts(self.clock.now())).await?)
    }
}
