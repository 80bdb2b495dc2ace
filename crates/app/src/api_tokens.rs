//! API tokens: created for one service (`guichet admin token create`, or by an administrator on
//! `/admin/jetons`), shown once, stored as the SHA-256 of their secret, revocable, and counted
//! per minute in the database so the limit holds across instances.
//!
//! A token is not an account: it reads what its service's instructors may read (the same
//! `Scope`, computed by the domain from an instructor principal of that service), and writes
//! only when its reach is `ecriture`.

use crate::accounts::{service_scope, ServiceRow, UserView};
use crate::audit::{self, Actor};
use crate::auth::{random_token, token_hash};
use crate::error::{AppError, AppResult};
use crate::App;
use chrono::{Duration, NaiveDate, NaiveTime, TimeZone};
use guichet_domain::api_token::TokenScope;
use guichet_domain::{Action, Principal, Role};
use guichet_storage::accounts as accounts_store;
use guichet_storage::api_tokens::{self as store, NewApiToken};
use guichet_storage::format_ts;

pub use guichet_storage::api_tokens::ApiTokenRow;

/// Every token starts with this, so a leaked one is recognisable (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "guichet_";

/// The caller of one API request made with a token.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    pub token_id: i64,
    pub scope: TokenScope,
    pub service: ServiceRow,
    /// An instructor of the token's service: what the token may read.
    pub principal: Principal,
}

/// What to create: the service's code, the reach, an optional last day of validity.
pub struct NewToken<'a> {
    pub service_code: &'a str,
    pub scope: TokenScope,
    pub expires_on: Option<NaiveDate>,
    pub label: &'a str,
}

/// Parses `AAAA-MM-JJ` (the CLI's and the form's `--expire`).
pub fn parse_expiry(input: &str) -> AppResult<Option<NaiveDate>> {
    let s = input.trim();
    if s.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| {
            AppError::Invalid(format!(
                "date d’expiration invalide : « {s} » (format AAAA-MM-JJ, par exemple 2022-12-31)"
            ))
        })
}

/// API tokens (`app.api_tokens()`).
#[derive(Clone, Copy)]
pub struct ApiTokens<'a> {
    pub(crate) app: &'a App,
}

impl ApiTokens<'_> {
    /// Creates a token and returns its number and its secret, which is never shown again.
    /// A token expires at the end of its last day (Paris time).
    pub async fn create(&self, new: NewToken<'_>, actor: Actor) -> AppResult<(i64, String)> {
        let label = new.label.trim();
        if label.chars().count() > 200 {
            return Err(AppError::Invalid(
                "le libellé du jeton dépasse 200 caractères".into(),
            ));
        }
        let expires_at = match new.expires_on {
            None => None,
            Some(day) => {
                if day < self.app.today() {
                    return Err(AppError::Invalid(format!(
                        "la date d’expiration {} est déjà passée",
                        day.format("%d/%m/%Y")
                    )));
                }
                let end = day
                    .succ_opt()
                    .ok_or_else(|| AppError::Invalid("date d’expiration invraisemblable".into()))?
                    .and_time(NaiveTime::MIN);
                let at = chrono_tz::Europe::Paris
                    .from_local_datetime(&end)
                    .earliest()
                    .ok_or_else(|| AppError::Invalid("date d’expiration invraisemblable".into()))?;
                Some(format_ts(at.with_timezone(&chrono::Utc)))
            }
        };
        let service = self
            .app
            .accounts()
            .service_by_code(new.service_code)
            .await?;
        let secret = format!("{TOKEN_PREFIX}{}", random_token());
        let now = self.app.now_ts();
        let actor_text = actor.to_string();
        let mut tx = self.app.db.begin_write().await?;
        let id = store::insert(
            &mut *tx,
            &NewApiToken {
                token_hash: &token_hash(&secret),
                service_id: service.id,
                scope: new.scope,
                label,
                created_at: &now,
                created_by: &actor_text,
                expires_at: expires_at.as_deref(),
            },
        )
        .await?;
        audit::record(
            &mut tx,
            &self.app.clock,
            actor,
            "jeton.creation",
            "jeton",
            &id.to_string(),
            None,
            Some(&serde_json::json!({
                "service": service.code,
                "portee": new.scope.slug(),
                "libelle": label,
                "expire": expires_at,
            })),
        )
        .await?;
        tx.commit().await?;
        Ok((id, secret))
    }

    /// [`ApiTokens::create`] for an administrator, from the pages.
    pub async fn create_by(&self, by: &UserView, new: NewToken<'_>) -> AppResult<(i64, String)> {
        if !by.scope.can(Action::ManageApiTokens) {
            return Err(AppError::Forbidden);
        }
        self.create(new, Actor::User(by.user.id)).await
    }

    /// Every token (administrators).
    pub async fn list(&self, p: &Principal) -> AppResult<Vec<ApiTokenRow>> {
        if !p.scope().can(Action::ManageApiTokens) {
            return Err(AppError::Forbidden);
        }
        Ok(store::list(&self.app.db).await?)
    }

    /// Every token, for the CLI (whoever runs it holds the database).
    pub async fn list_all(&self) -> AppResult<Vec<ApiTokenRow>> {
        Ok(store::list(&self.app.db).await?)
    }

    /// Revokes a token at once, audited. Revoking a revoked token is a conflict.
    pub async fn revoke(&self, id: i64, actor: Actor) -> AppResult<()> {
        let mut tx = self.app.db.begin_write().await?;
        let token = store::find(&mut *tx, id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("jeton n° {id} introuvable")))?;
        if !store::revoke(&mut *tx, id, &self.app.now_ts()).await? {
            return Err(AppError::Conflict(format!(
                "le jeton n° {id} est déjà révoqué"
            )));
        }
        audit::record(
            &mut tx,
            &self.app.clock,
            actor,
            "jeton.revocation",
            "jeton",
            &id.to_string(),
            Some(&serde_json::json!({
                "service": token.service_code,
                "portee": token.scope.slug(),
                "libelle": token.label,
            })),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// [`ApiTokens::revoke`] for an administrator, from the pages.
    pub async fn revoke_by(&self, by: &UserView, id: i64) -> AppResult<()> {
        if !by.scope.can(Action::ManageApiTokens) {
            return Err(AppError::Forbidden);
        }
        self.revoke(id, Actor::User(by.user.id)).await
    }

    /// Checks a bearer token for one request and counts it: unknown, revoked and expired tokens
    /// get the same answer; beyond the per-minute limit, a "too many requests" error saying
    /// when the window ends.
    pub async fn authenticate(&self, secret: &str) -> AppResult<ApiCaller> {
        let refused = || AppError::Unauthorized("jeton d’API inconnu, expiré ou révoqué".into());
        if !secret.starts_with(TOKEN_PREFIX) || secret.len() > 200 {
            return Err(refused());
        }
        let now = self.app.clock.now();
        let window = Duration::minutes(1);
        let used = store::use_token(
            &self.app.db,
            &token_hash(secret),
            &format_ts(now),
            &format_ts(now - window),
        )
        .await?
        .ok_or_else(refused)?;
        if used.window_count > self.app.config.api_requests_per_minute {
            let until = used.window_start.instant() + window;
            return Err(AppError::TooManyAttempts {
                until: until
                    .with_timezone(&chrono_tz::Europe::Paris)
                    .format("%H:%M:%S")
                    .to_string(),
                retry_after_secs: (until - now).num_seconds().max(1),
            });
        }
        let service = accounts_store::find_service(&self.app.db, used.service_id)
            .await?
            .ok_or_else(refused)?;
        // A token is no account: `user_id` 0 names none (the scope reads role and service only).
        let principal = Principal {
            user_id: 0,
            role: Role::Instructeur,
            service: Some(service_scope(&service)?),
            collectivites: Vec::new(),
        };
        Ok(ApiCaller {
            token_id: used.id,
            scope: used.scope,
            service,
            principal,
        })
    }
}
