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
use guichet_storage::accounts::{self as store, AttemptRule, SessionRow};
use guichet_storage::{format_ts, parse_ts, Timestamp};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// Idle lifetime of a session; each request moves it on, up to the absolute limit.
pub const SESSION_IDLE: Duration = Duration::hours(2);
pub const SESSION_ABSOLUTE: Duration = Duration::hours(12);

/// How attempts are counted against one kind of key: at most `limit` within `window`, then
/// locked for growing delays (one per attempt past the limit, the last one repeated).
#[derive(Debug, Clone, Copy)]
pub struct ThrottleRule {
    pub limit: i64,
    pub window: Duration,
    pub delays: [Duration; 5],
}

const GROWING: [Duration; 5] = [
    Duration::minutes(1),
    Duration::minutes(2),
    Duration::minutes(4),
    Duration::minutes(8),
    Duration::minutes(15),
];

/// One account from one address: five tries, then one minute, two, four, eight, then fifteen
/// between tries. Someone who guesses from their own address locks no one but themselves.
pub const PAIR_RULE: ThrottleRule = ThrottleRule {
    limit: 5,
    window: Duration::hours(1),
    delays: GROWING,
};
/// One account from every address: a ceiling far above the pair's, for guesses spread over many
/// addresses. Reaching it locks the account for an hour and tells its holder by email.
pub const ACCOUNT_CEILING: ThrottleRule = ThrottleRule {
    limit: 100,
    window: Duration::hours(1),
    delays: [Duration::hours(1); 5],
};
/// One address over every account (guesses sprayed over many accounts).
pub const IP_RULE: ThrottleRule = ThrottleRule {
    limit: 50,
    window: Duration::minutes(15),
    delays: GROWING,
};
/// Password-reset requests for one address: three an hour.
pub const RESET_ADDRESS_RULE: ThrottleRule = ThrottleRule {
    limit: 3,
    window: Duration::hours(1),
    delays: [Duration::hours(1); 5],
};
/// Password-reset requests from one IP address: twenty an hour.
pub const RESET_IP_RULE: ThrottleRule = ThrottleRule {
    limit: 20,
    window: Duration::hours(1),
    delays: [Duration::hours(1); 5],
};

fn pair_prefix(email: &str) -> String {
    format!("paire:{email}|")
}

/// The throttle keys of a login attempt, in the order they are counted (always the same order,
/// so that two transactions never wait for each other's rows in a cycle).
fn login_keys(email: &str, ip: Option<&str>) -> Vec<(String, ThrottleRule)> {
    let mut keys = vec![
        (
            format!("{}{}", pair_prefix(email), ip.unwrap_or("-")),
            PAIR_RULE,
        ),
        (format!("compte:{email}"), ACCOUNT_CEILING),
    ];
    if let Some(ip) = ip {
        keys.push((format!("ip:{ip}"), IP_RULE));
    }
    keys
}

/// What counting an attempt decided.
enum Gate {
    /// Go on; `ceiling_reached` when this attempt brought the account to its ceiling.
    Open {
        ceiling_reached: bool,
    },
    Closed {
        until: DateTime<Utc>,
    },
}

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
    fn from_slug(slug: &str) -> Option<TokenPurpose> {
        [TokenPurpose::FirstPassword, TokenPurpose::Reset]
            .into_iter()
            .find(|p| p.slug() == slug)
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

fn paris(at: DateTime<Utc>) -> String {
    at.with_timezone(&chrono_tz::Europe::Paris)
        .format("%H:%M")
        .to_string()
}

/// Signing in and out, sessions, one-time links and passwords, and the login throttle
/// (`app.sessions()`).
#[derive(Clone, Copy)]
pub struct Sessions<'a> {
    pub(crate) app: &'a App,
}

impl Sessions<'_> {
    /// Counts an attempt on each key, in one transaction, before anything is checked: each
    /// count is one atomic upsert, so a burst of parallel attempts is counted attempt by attempt
    /// and none gets past a limit. When a key refuses, nothing is counted (the transaction is
    /// rolled back): a refused attempt costs the keys nothing.
    async fn count_attempts(
        &self,
        keys: &[(String, ThrottleRule)],
        now: DateTime<Utc>,
    ) -> AppResult<Gate> {
        let now_ts = format_ts(now);
        let mut tx = self.app.db.begin_write().await?;
        let mut ceiling_reached = false;
        for (key, rule) in keys {
            let cutoff = format_ts(now - rule.window);
            let locks = rule.delays.map(|d| format_ts(now + d));
            let attempt = store::count_attempt(
                &mut *tx,
                key,
                &now_ts,
                &AttemptRule {
                    limit: rule.limit,
                    window_cutoff: &cutoff,
                    locks: [&locks[0], &locks[1], &locks[2], &locks[3], &locks[4]],
                },
            )
            .await?;
            if !attempt.allowed {
                tx.rollback().await?;
                let until = attempt
                    .locked_until
                    .as_deref()
                    .and_then(parse_ts)
                    .unwrap_or(now + rule.window);
                return Ok(Gate::Closed { until });
            }
            if key.starts_with("compte:") && attempt.count == rule.limit {
                ceiling_reached = true;
            }
        }
        tx.commit().await?;
        Ok(Gate::Open { ceiling_reached })
    }

    /// Tells an account's holder that its login ceiling was reached. The one place where this
    /// mail is sent.
    async fn notify_ceiling_reached(&self, email: &str, display_name: &str, until: DateTime<Utc>) {
        let mail = crate::mail::PlainMail {
            to: email.to_string(),
            subject: "Tentatives de connexion à votre compte Guichet".into(),
            body: format!(
                "Bonjour {display_name},\n\nDe nombreuses tentatives de connexion avec un mot de passe erroné ont visé votre compte Guichet \
                 ({} en moins d’une heure, depuis plusieurs adresses). Par précaution, les connexions à votre compte sont suspendues jusqu’à {} (heure de Paris).\n\n\
                 Si ce n’était pas vous, personne n’a pu se connecter avec ces essais ; vous pouvez choisir un nouveau mot de passe depuis la page « Mot de passe oublié », \
                 ce qui lève aussi la suspension.\n",
                ACCOUNT_CEILING.limit,
                paris(until)
            ),
        };
        // Through the job queue, like every mail: retried while the relay is down.
        let queued = match self.app.db.pool().acquire().await {
            Ok(mut conn) => self.app.enqueue(&mut conn, &mail).await,
            Err(e) => Err(e.into()),
        };
        match queued {
            Ok(_) => self.app.wake_workers(),
            Err(e) => {
                tracing::warn!(erreur = %e, "courriel d’alerte de tentatives de connexion non mis en file")
            }
        }
    }

    /// Checks a password and opens a session. `previous` is the session the browser had, if
    /// any: it is closed, so that the session identifier changes at login.
    ///
    /// The attempt is counted before the password is checked (per account and address, per
    /// account, per address), and refused beyond the limits; a successful attempt is then taken
    /// back from the counts.
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
        let now = self.app.clock.now();
        let keys = login_keys(&email, ip);
        let ceiling_reached = match self.count_attempts(&keys, now).await? {
            Gate::Closed { until } => {
                return Err(AppError::TooManyAttempts {
                    until: paris(until),
                    retry_after_secs: (until - now).num_seconds().max(1),
                })
            }
            Gate::Open { ceiling_reached } => ceiling_reached,
        };
        let user = store::find_user_by_email(&self.app.db, &email).await?;
        if ceiling_reached {
            if let Some(u) = &user {
                self.notify_ceiling_reached(
                    &u.email,
                    &u.display_name,
                    now + ACCOUNT_CEILING.delays[0],
                )
                .await;
            }
        }
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
            _ => return Err(invalid()),
        };
        let token = random_token();
        let expires_at = now + SESSION_IDLE;
        let mut tx = self.app.db.begin_write().await?;
        // A success is no failure: the pair starts afresh, the other counts take it back.
        for (key, rule) in &keys {
            if key.starts_with("paire:") {
                store::clear_throttle(&mut *tx, key).await?;
            } else {
                store::uncount_attempt(&mut *tx, key, rule.limit).await?;
            }
        }
        if let Some(prev) = previous {
            store::delete_session(&mut *tx, &token_hash(prev)).await?;
        }
        store::insert_session(
            &mut *tx,
            &SessionRow {
                id_hash: token_hash(&token),
                user_id: user.id,
                csrf_token: random_token(),
                auth_method: "password".into(),
                idp_issuer: None,
                idp_session: None,
                created_at: Timestamp::new(now),
                last_seen_at: Timestamp::new(now),
                expires_at: Timestamp::new(expires_at),
                ip: ip.map(str::to_string),
                user_agent: user_agent.map(|u| u.chars().take(300).collect()),
            },
        )
        .await?;
        audit::record(
            &mut tx,
            &self.app.clock,
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

    /// The live session behind a cookie token and its user's access view, sliding the session's
    /// expiry forward: two statements (the session with its user and service, then the user's
    /// collectivités), a third at most once a minute to slide the expiry.
    pub async fn session_view(
        &self,
        token: &str,
    ) -> AppResult<Option<(SessionContext, crate::accounts::UserView)>> {
        let now = self.app.clock.now();
        let id_hash = token_hash(token);
        let Some((s, user, service)) =
            store::find_live_session_with_user(&self.app.db, &id_hash, &format_ts(now)).await?
        else {
            return Ok(None);
        };
        if user.disabled_at.is_some() {
            store::delete_session(&self.app.db, &id_hash).await?;
            return Ok(None);
        }
        self.slide_session(&id_hash, &s, now).await?;
        let view = self.app.accounts().view_of(user, service).await?;
        Ok(Some((
            SessionContext {
                user_id: s.user_id,
                csrf_token: s.csrf_token,
                id_hash,
            },
            view,
        )))
    }

    /// Moves a session's expiry on, at most once a minute, to spare the database a write per
    /// request; never past the absolute limit counted from its creation.
    async fn slide_session(
        &self,
        id_hash: &str,
        s: &SessionRow,
        now: DateTime<Utc>,
    ) -> AppResult<()> {
        if now - s.last_seen_at.instant() > Duration::minutes(1) {
            let expires = (now + SESSION_IDLE).min(s.created_at.instant() + SESSION_ABSOLUTE);
            store::touch_session(&self.app.db, id_hash, &format_ts(now), &format_ts(expires))
                .await?;
        }
        Ok(())
    }

    /// Closes a session. The session row is deleted and the logout recorded in one write
    /// transaction, retried when the database is momentarily busy: a logout that answers success
    /// has ended the session, and one that fails leaves nothing half done.
    pub async fn logout(&self, token: &str) -> AppResult<()> {
        let id_hash = token_hash(token);
        let mut attempt = 0u32;
        loop {
            match self.logout_once(&id_hash).await {
                Ok(()) => return Ok(()),
                Err(AppError::Storage(e)) if e.is_transient() && attempt < 4 => {
                    attempt += 1;
                    tracing::warn!(essai = attempt, erreur = %e, "déconnexion : base occupée, nouvel essai");
                    tokio::time::sleep(std::time::Duration::from_millis(25 << attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn logout_once(&self, id_hash: &str) -> AppResult<()> {
        let mut tx = self.app.db.begin_write().await?;
        if let Some(user_id) = store::end_session(&mut *tx, id_hash).await? {
            audit::record(
                &mut tx,
                &self.app.clock,
                Actor::User(user_id),
                "session.deconnexion",
                "utilisateur",
                &user_id.to_string(),
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
        let mut tx = self.app.db.begin_write().await?;
        let link = self.issue_token_link_in(&mut tx, user_id, purpose).await?;
        tx.commit().await?;
        Ok(link)
    }

    /// Issues a one-time link inside the caller's transaction, revoking the account's earlier
    /// unused links of the same purpose.
    pub(crate) async fn issue_token_link_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        user_id: i64,
        purpose: TokenPurpose,
    ) -> AppResult<String> {
        let now = self.app.clock.now();
        store::revoke_tokens(&mut *conn, user_id, purpose.slug(), &format_ts(now)).await?;
        self.add_token_link(conn, user_id, purpose).await
    }

    /// Adds a one-time link beside the account's others (they stay valid until one is used).
    pub(crate) async fn add_token_link(
        &self,
        conn: &mut sqlx::AnyConnection,
        user_id: i64,
        purpose: TokenPurpose,
    ) -> AppResult<String> {
        let token = random_token();
        let now = self.app.clock.now();
        store::insert_token(
            &mut *conn,
            &token_hash(&token),
            user_id,
            purpose.slug(),
            &format_ts(now),
            &format_ts(now + purpose.lifetime()),
        )
        .await?;
        Ok(format!(
            "{}/mot-de-passe/definir?jeton={token}",
            self.app.config.base_url
        ))
    }

    /// Queues a reset link for the account of this address, if any. Says nothing either way, so that the form does
    /// not reveal which addresses have accounts. Requests are counted per address asked for and
    /// per requesting IP address, whether the account exists or not, and refused beyond the
    /// limits (no mailbox gets flooded with links).
    pub async fn request_password_reset(&self, email: &str, ip: Option<&str>) -> AppResult<()> {
        let email = parse_email(email)?;
        let now = self.app.clock.now();
        let mut keys = vec![(format!("reinit:compte:{email}"), RESET_ADDRESS_RULE)];
        if let Some(ip) = ip {
            keys.push((format!("reinit:ip:{ip}"), RESET_IP_RULE));
        }
        if let Gate::Closed { until } = self.count_attempts(&keys, now).await? {
            return Err(AppError::TooManyAttempts {
                until: paris(until),
                retry_after_secs: (until - now).num_seconds().max(1),
            });
        }
        // The same single insert whether or not the address has an account: the answer takes the
        // same time either way; the worker looks the account up and sends the link.
        let mut conn = self.app.db.pool().acquire().await?;
        self.app
            .enqueue(&mut conn, &crate::mail::ResetLinkMail { email })
            .await?;
        self.app.wake_workers();
        Ok(())
    }

    /// Checks a one-time link without using it.
    pub async fn check_token(&self, token: &str) -> AppResult<TokenCheck> {
        let mut conn = self.app.db.pool().acquire().await?;
        let row = store::find_token(&mut *conn, &token_hash(token))
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
        if row.expires_at.instant() <= self.app.clock.now() {
            return Err(AppError::Conflict(
                "ce lien a expiré ; demandez-en un nouveau".into(),
            ));
        }
        let purpose = TokenPurpose::from_slug(&row.purpose).ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!(
                "lien à usage unique d’un type inconnu en base : {}",
                row.purpose
            ))
        })?;
        let user = store::find_user(&mut *conn, row.user_id)
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
        let now = format_ts(self.app.clock.now());
        let mut tx = self.app.db.begin_write().await?;
        if !store::consume_token(&mut *tx, &token_hash(token), &now).await? {
            return Err(AppError::Conflict(
                "ce lien a déjà été utilisé ; demandez-en un nouveau".into(),
            ));
        }
        store::set_password_hash(&mut *tx, check.user_id, &hash, &now).await?;
        // Every other link of the account, of every kind, dies with the old password.
        store::revoke_all_tokens(&mut *tx, check.user_id, &now).await?;
        store::delete_user_sessions(&mut *tx, check.user_id).await?;
        // The holder proved they own the mailbox: the account's login counts start afresh.
        store::clear_throttle(&mut *tx, &format!("compte:{}", check.email)).await?;
        store::clear_throttle_prefix(&mut *tx, &pair_prefix(&check.email)).await?;
        audit::record(
            &mut tx,
            &self.app.clock,
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
        let mut tx = self.app.db.begin_write().await?;
        let now = format_ts(self.app.clock.now());
        store::set_password_hash(&mut *tx, user_id, &hash, &now).await?;
        store::revoke_all_tokens(&mut *tx, user_id, &now).await?;
        audit::record(
            &mut tx,
            &self.app.clock,
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

impl Sessions<'_> {
    pub async fn purge_expired_sessions(&self) -> AppResult<u64> {
        let mut conn = self.app.db.pool().acquire().await?;
        Ok(store::delete_expired_sessions(&mut *conn, &format_ts(self.app.clock.now())).await?)
    }
}
