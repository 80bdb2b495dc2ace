//! Webhooks per service: an HTTPS endpoint that receives a signed JSON POST for each event of
//! its service (dossier state changes will publish them). Created by an administrator (page
//! `/admin/webhooks`, or `guichet admin webhook create`), with a random 256-bit key shown once.
//!
//! - [`Webhooks::publish`] runs inside the caller's transaction: one delivery row per active
//!   webhook of the service, and one `webhook.livraison` job per delivery, so deliveries exist
//!   if and only if the change committed.
//! - The job POSTs the body (the same bytes at every attempt) with `X-Guichet-Signature:
//!   sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` and `X-Guichet-Horodatage: <timestamp>`
//!   (unix seconds of the application clock), waits at most 10 s, follows no redirect. A 2xx
//!   delivers; anything else is retried with the queue's backoff (30 s doubled, at most 1 h)
//!   until 24 h after the first attempt, then the delivery is dead (`morte`), visible with its
//!   last status and error on `/admin/webhooks`. See docs/webhooks.md.

use crate::accounts::UserView;
use crate::audit::{self, Actor};
use crate::error::{AppError, AppResult};
use crate::jobs::{Job, JobError, JobResult, Registry};
use crate::App;
use chrono::Duration;
use guichet_domain::{Action, Principal};
use guichet_storage::format_ts;
use guichet_storage::webhooks::{self as store, DEAD, DELIVERED, PENDING};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use std::sync::OnceLock;

pub use guichet_storage::webhooks::{DeliveryRow, WebhookRow};

/// How long a delivery is retried, from its first attempt.
pub const RETRY_FOR: Duration = Duration::hours(24);

/// Deliveries shown per webhook.
pub const LOG_LENGTH: i64 = 50;

/// Header names, documented in docs/webhooks.md.
pub const HEADER_EVENT: &str = "X-Guichet-Evenement";
pub const HEADER_DELIVERY: &str = "X-Guichet-Livraison";
pub const HEADER_TIMESTAMP: &str = "X-Guichet-Horodatage";
pub const HEADER_SIGNATURE: &str = "X-Guichet-Signature";

/// One delivery to attempt (the job's payload).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deliver {
    pub livraison: i64,
}

impl Job for Deliver {
    const KIND: &'static str = "webhook.livraison";
    /// A safety net only: the delivery gives up 24 h after its first attempt (the backoff
    /// reaches an hour after 7 attempts, so about 31 attempts fit in 24 h).
    const MAX_ATTEMPTS: i64 = 40;
}

pub(crate) fn register_jobs(r: &mut Registry) {
    r.register(|app: App, job: Deliver| async move { deliver(&app, job.livraison).await });
}

/// `sha256=<hex>`: the HMAC-SHA256, keyed by the webhook's secret (its text, as bytes), of
/// `"<timestamp>.<body>"`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body.as_bytes());
    format!("sha256={}", hex::encode(ctx.sign().as_ref()))
}

/// Checks a webhook URL: `https://` anywhere, `http://` only to this machine (development).
pub fn check_url(input: &str) -> AppResult<String> {
    let raw = input.trim();
    let refuse = |why: &str| {
        AppError::Invalid(format!(
            "adresse de webhook refusée : {why} ; elle doit commencer par https:// (http:// n’est accepté que vers 127.0.0.1 ou localhost, pour le développement)"
        ))
    };
    if raw.is_empty() {
        return Err(refuse("adresse vide"));
    }
    if raw.len() > 2000 {
        return Err(refuse("plus de 2 000 caractères"));
    }
    let url =
        url::Url::parse(raw).map_err(|e| refuse(&format!("« {raw} » n’est pas une URL ({e})")))?;
    let host = url.host_str().unwrap_or_default();
    if host.is_empty() {
        return Err(refuse("hôte manquant"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("identifiants dans l’adresse"));
    }
    match url.scheme() {
        "https" => {}
        "http" if matches!(host, "127.0.0.1" | "localhost" | "[::1]") => {}
        "http" => return Err(refuse(&format!("http:// vers « {host} »"))),
        other => return Err(refuse(&format!("schéma « {other} »"))),
    }
    Ok(url.to_string())
}

/// A random 256-bit key, in hex (64 characters).
fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Webhooks (`app.webhooks()`).
#[derive(Clone, Copy)]
pub struct Webhooks<'a> {
    pub(crate) app: &'a App,
}

impl Webhooks<'_> {
    /// Creates a webhook for a service; returns its number and its secret, never shown again.
    pub async fn create(
        &self,
        service_code: &str,
        url: &str,
        actor: Actor,
    ) -> AppResult<(i64, String)> {
        let url = check_url(url)?;
        let service = self.app.accounts().service_by_code(service_code).await?;
        let secret = new_secret();
        let now = self.app.now_ts();
        let actor_text = actor.to_string();
        let mut tx = self.app.db.begin_write().await?;
        let id = store::insert(&mut *tx, service.id, &url, &secret, &now, &actor_text).await?;
        audit::record(
            &mut tx,
            &self.app.clock,
            actor,
            "webhook.creation",
            "webhook",
            &id.to_string(),
            None,
            Some(&serde_json::json!({ "service": service.code, "url": url })),
        )
        .await?;
        tx.commit().await?;
        Ok((id, secret))
    }

    /// [`Webhooks::create`] for an administrator, from the pages.
    pub async fn create_by(
        &self,
        by: &UserView,
        service_code: &str,
        url: &str,
    ) -> AppResult<(i64, String)> {
        if !by.scope.can(Action::ManageWebhooks) {
            return Err(AppError::Forbidden);
        }
        self.create(service_code, url, Actor::User(by.user.id))
            .await
    }

    /// Every webhook, newest first (administrators).
    pub async fn list(&self, p: &Principal) -> AppResult<Vec<WebhookRow>> {
        if !p.scope().can(Action::ManageWebhooks) {
            return Err(AppError::Forbidden);
        }
        self.list_all().await
    }

    /// Every webhook, for the CLI (whoever runs it holds the database).
    pub async fn list_all(&self) -> AppResult<Vec<WebhookRow>> {
        Ok(store::list(&self.app.db).await?)
    }

    /// Disables a webhook at once, audited: it receives nothing more, pending deliveries
    /// included. Disabling a disabled webhook is a conflict.
    pub async fn disable(&self, id: i64, actor: Actor) -> AppResult<()> {
        let mut tx = self.app.db.begin_write().await?;
        let hook = store::find(&mut *tx, id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("webhook n° {id} introuvable")))?;
        if !store::disable(&mut *tx, id, &self.app.now_ts()).await? {
            return Err(AppError::Conflict(format!(
                "le webhook n° {id} est déjà désactivé"
            )));
        }
        audit::record(
            &mut tx,
            &self.app.clock,
            actor,
            "webhook.desactivation",
            "webhook",
            &id.to_string(),
            Some(&serde_json::json!({ "service": hook.service_code, "url": hook.url })),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// [`Webhooks::disable`] for an administrator, from the pages.
    pub async fn disable_by(&self, by: &UserView, id: i64) -> AppResult<()> {
        if !by.scope.can(Action::ManageWebhooks) {
            return Err(AppError::Forbidden);
        }
        self.disable(id, Actor::User(by.user.id)).await
    }

    /// The last [`LOG_LENGTH`] deliveries of a webhook, newest first.
    pub async fn deliveries(&self, p: &Principal, webhook_id: i64) -> AppResult<Vec<DeliveryRow>> {
        if !p.scope().can(Action::ManageWebhooks) {
            return Err(AppError::Forbidden);
        }
        self.deliveries_all(webhook_id).await
    }

    /// [`Webhooks::deliveries`] without a principal (CLI, tests).
    pub async fn deliveries_all(&self, webhook_id: i64) -> AppResult<Vec<DeliveryRow>> {
        Ok(store::deliveries(&self.app.db, webhook_id, LOG_LENGTH).await?)
    }

    /// One delivery by its number.
    pub async fn delivery(&self, id: i64) -> AppResult<Option<DeliveryRow>> {
        Ok(store::find_delivery(&self.app.db, id).await?)
    }

    /// Publishes an event of a service inside the caller's transaction: one delivery and one
    /// job per active webhook of the service. Returns the deliveries' numbers; call
    /// [`App::wake_workers`] after the commit.
    pub async fn publish(
        &self,
        conn: &mut AnyConnection,
        service_id: i64,
        event_type: &str,
        payload: &serde_json::Value,
    ) -> AppResult<Vec<i64>> {
        let hooks = store::active_of_service(&mut *conn, service_id).await?;
        if hooks.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.app.now_ts();
        let event_id = uuid::Uuid::new_v4().to_string();
        // The body, fixed once: every attempt sends the same bytes.
        let body = serde_json::json!({
            "evenement": event_id,
            "type": event_type,
            "date": now,
            "donnees": payload,
        })
        .to_string();
        let mut ids = Vec::with_capacity(hooks.len());
        for hook in hooks {
            let id = store::insert_delivery(conn, hook, &event_id, event_type, &body, &now).await?;
            self.app.enqueue(conn, &Deliver { livraison: id }).await?;
            ids.push(id);
        }
        Ok(ids)
    }
}

/// The outbound client: rustls, no redirect followed, no cookie, no proxy from the environment.
fn client() -> Result<&'static reqwest::Client, JobError> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .user_agent(concat!("Guichet-webhooks/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| format!("client HTTP des webhooks : {e}"))
        })
        .as_ref()
        .map_err(|e| JobError::Retry(e.clone()))
}

/// One attempt of one delivery (the `webhook.livraison` handler).
async fn deliver(app: &App, delivery_id: i64) -> JobResult {
    let Some((d, target)) = store::target(&app.db, delivery_id).await? else {
        return Err(JobError::Fatal(format!(
            "livraison de webhook n° {delivery_id} introuvable"
        )));
    };
    if d.state != PENDING {
        // Already delivered or given up (a rerun of the job).
        return Ok(());
    }
    let now = app.clock.now();
    let now_text = format_ts(now);
    if target.disabled_at.is_some() {
        store::record_attempt(
            &app.db,
            d.id,
            DEAD,
            None,
            Some("webhook désactivé : livraison abandonnée"),
            &now_text,
        )
        .await?;
        return Ok(());
    }
    let timestamp = now.timestamp();
    let timeout = app.config.webhook_timeout;
    let sent = client()?
        .post(&target.url)
        .timeout(timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(HEADER_EVENT, &d.event_type)
        .header(HEADER_DELIVERY, d.id.to_string())
        .header(HEADER_TIMESTAMP, timestamp.to_string())
        .header(
            HEADER_SIGNATURE,
            signature(&target.secret, timestamp, &d.payload),
        )
        .body(d.payload.clone())
        .send()
        .await;
    let (status, error) = match sent {
        Ok(r) if r.status().is_success() => {
            store::record_attempt(
                &app.db,
                d.id,
                DELIVERED,
                Some(i64::from(r.status().as_u16())),
                None,
                &now_text,
            )
            .await?;
            return Ok(());
        }
        Ok(r) => {
            let code = r.status().as_u16();
            let why = if r.status().is_redirection() {
                let to = r
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("?");
                format!("réponse HTTP {code} : redirection vers « {to} » non suivie")
            } else {
                format!("réponse HTTP {code}")
            };
            (Some(i64::from(code)), why)
        }
        Err(e) if e.is_timeout() => (
            None,
            format!(
                "pas de réponse dans le délai de {} s",
                timeout.as_secs_f64()
            ),
        ),
        Err(e) if e.is_connect() => (None, format!("connexion impossible : {}", describe(e))),
        Err(e) => (None, format!("envoi impossible : {}", describe(e))),
    };
    let first = d.first_attempt_at.map_or(now, |t| t.instant());
    if now - first >= RETRY_FOR {
        let message = format!(
            "{error} (abandon après 24 h et {} tentatives)",
            d.attempts + 1
        );
        store::record_attempt(&app.db, d.id, DEAD, status, Some(&message), &now_text).await?;
        return Err(JobError::Fatal(format!(
            "webhook n° {}, livraison n° {} : {message}",
            target.webhook_id, d.id
        )));
    }
    store::record_attempt(&app.db, d.id, PENDING, status, Some(&error), &now_text).await?;
    Err(JobError::Retry(format!(
        "webhook n° {}, livraison n° {} : {error}",
        target.webhook_id, d.id
    )))
}

/// An error with its causes, without the URL's query (which may carry a receiver's token).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(" : ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector of docs/webhooks.md's shell and Python examples (computed with both).
    #[test]
    fn signature_matches_openssl_and_python() {
        let secret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(
            signature(secret, 1_622_530_800, r#"{"type":"dossier.depose"}"#),
            "sha256=fea36f0a1d0490c742949bbdcaf803e186f39020f01f31f233da8ba31c1e1ae3"
        );
    }

    #[test]
    fn urls() {
        assert!(check_url("https://exemple.fr/crochet").is_ok());
        assert!(check_url("http://[::1]:8000/").is_ok());
        assert!(check_url("http://localhost.exemple.fr/").is_err());
        assert!(check_url("http://127.0.0.2/").is_err());
    }
}
