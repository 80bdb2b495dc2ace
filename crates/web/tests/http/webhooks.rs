//! Webhooks: a local receiver (an axum server on 127.0.0.1:0) gets signed POSTs that verify
//! with the secret and the timestamp; failures are retried with the queue's backoff and a
//! success is delivered once; a receiver that never answers makes the delivery die after 24 h,
//! visible on /admin/webhooks; a disabled webhook gets nothing; a rolled-back publication
//! enqueues nothing; a redirect is not followed.

use crate::common::{spawn_with, TestApp};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use guichet_app::audit::Actor;
use guichet_app::webhooks::DeliveryRow;
use guichet_app::Error as AppError;
use guichet_domain::Role;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the receiver does with the next request (then 200 once the list is empty).
#[derive(Clone)]
enum Answer {
    Status(u16),
    Sleep(Duration),
    Redirect(String),
}

#[derive(Clone, Default)]
struct Receiver {
    answers: Arc<Mutex<VecDeque<Answer>>>,
    got: Arc<Mutex<Vec<(String, HeaderMap, String)>>>,
}

impl Receiver {
    fn got(&self) -> Vec<(String, HeaderMap, String)> {
        self.got.lock().unwrap().clone()
    }
}

async fn receive(
    State(r): State<Receiver>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    r.got
        .lock()
        .unwrap()
        .push((uri.path().to_string(), headers, body));
    let answer = r.answers.lock().unwrap().pop_front();
    match answer {
        None => StatusCode::OK.into_response(),
        Some(Answer::Status(s)) => StatusCode::from_u16(s).unwrap().into_response(),
        Some(Answer::Sleep(d)) => {
            tokio::time::sleep(d).await;
            StatusCode::OK.into_response()
        }
        Some(Answer::Redirect(to)) => {
            (StatusCode::FOUND, [(axum::http::header::LOCATION, to)]).into_response()
        }
    }
}

/// A receiver on a free local port; its base URL.
async fn receiver(answers: &[Answer]) -> (Receiver, String) {
    let r = Receiver::default();
    r.answers.lock().unwrap().extend(answers.iter().cloned());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .fallback(axum::routing::post(receive))
        .with_state(r.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (r, format!("http://{addr}"))
}

/// HMAC-SHA256 written out from SHA-256 (RFC 2104), so the test does not trust the code it checks.
fn hmac_sha256(key: &[u8], message: &[u8]) -> String {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(message)
        .finalize();
    hex::encode(
        Sha256::new()
            .chain_update(&opad)
            .chain_update(inner)
            .finalize(),
    )
}

async fn app() -> TestApp {
    let t = spawn_with(|c| c.webhook_timeout = Duration::from_millis(300)).await;
    // A user of the Val-d'Oise prefecture makes its service exist.
    t.user(
        "instruction.95@exemple.fr",
        Role::Instructeur,
        Some("95"),
        &[],
    )
    .await;
    t
}

async fn service_id(t: &TestApp, webhook: i64) -> i64 {
    t.app
        .webhooks()
        .list_all()
        .await
        .unwrap()
        .into_iter()
        .find(|w| w.id == webhook)
        .unwrap()
        .service_id
}

/// Publishes one event in its own committed transaction; the deliveries' numbers.
async fn publish(t: &TestApp, service: i64, event: &str) -> Vec<i64> {
    let mut tx = guichet_app::testing::db(&t.app)
        .begin_write()
        .await
        .unwrap();
    let ids = t
        .app
        .webhooks()
        .publish(
            &mut tx,
            service,
            event,
            &serde_json::json!({"dossier": "ITN7-95-2021-00042", "etat": "depose"}),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    t.app.wake_workers();
    ids
}

async fn delivery(t: &TestApp, id: i64) -> DeliveryRow {
    t.app.webhooks().delivery(id).await.unwrap().unwrap()
}

#[tokio::test]
async fn a_delivery_is_signed_over_the_timestamp_and_the_body() {
    let t = app().await;
    let (r, base) = receiver(&[]).await;
    let (id, secret) = t
        .app
        .webhooks()
        .create("pref-95", &format!("{base}/guichet?x=1"), Actor::Cli)
        .await
        .unwrap();
    assert_eq!(secret.len(), 64, "256 bits in hex");
    let service = service_id(&t, id).await;
    let ids = publish(&t, service, "dossier.depose").await;
    assert_eq!(ids.len(), 1);
    t.settle().await;

    let got = r.got();
    assert_eq!(got.len(), 1);
    let (path, headers, body) = &got[0];
    assert_eq!(path, "/guichet");
    let h = |n: &str| headers.get(n).unwrap().to_str().unwrap().to_string();
    assert_eq!(h("content-type"), "application/json");
    assert_eq!(h("x-guichet-evenement"), "dossier.depose");
    assert_eq!(h("x-guichet-livraison"), ids[0].to_string());
    let ts = h("x-guichet-horodatage");
    // The application clock: 1 June 2021, 07:00 UTC, and a little.
    let secs: i64 = ts.parse().unwrap();
    assert!((1_622_530_800..1_622_530_800 + 600).contains(&secs), "{ts}");
    let expected = format!(
        "sha256={}",
        hmac_sha256(secret.as_bytes(), format!("{ts}.{body}").as_bytes())
    );
    assert_eq!(h("x-guichet-signature"), expected);
    // A wrong key or another timestamp does not verify.
    assert_ne!(
        format!(
            "sha256={}",
            hmac_sha256(b"autre", format!("{ts}.{body}").as_bytes())
        ),
        expected
    );
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["type"], "dossier.depose");
    assert_eq!(json["donnees"]["dossier"], "ITN7-95-2021-00042");
    let d = delivery(&t, ids[0]).await;
    assert_eq!(
        (d.state.as_str(), d.attempts, d.last_status),
        ("livree", 1, Some(200))
    );
    assert!(d.delivered_at.is_some());
}

#[tokio::test]
async fn urls_must_be_https_or_local_http() {
    let t = app().await;
    for bad in [
        "http://exemple.fr/crochet",
        "ftp://exemple.fr/crochet",
        "pas une adresse",
        "https://moi:secret@exemple.fr/",
        "",
    ] {
        let e = t
            .app
            .webhooks()
            .create("pref-95", bad, Actor::Cli)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, AppError::Invalid(m) if m.contains("https://") && m.contains("127.0.0.1 ou localhost")),
            "{bad}: {e:?}"
        );
    }
    for good in [
        "https://exemple.fr/crochet",
        "http://localhost:9000/crochet",
        "http://127.0.0.1:9000/",
    ] {
        t.app
            .webhooks()
            .create("pref-95", good, Actor::Cli)
            .await
            .unwrap();
    }
    let e = t
        .app
        .webhooks()
        .create("pref-00", "https://exemple.fr/", Actor::Cli)
        .await
        .unwrap_err();
    assert!(matches!(e, AppError::NotFound(_)), "{e:?}");
}

#[tokio::test]
async fn a_failure_is_retried_and_the_success_delivered_once() {
    let t = app().await;
    let (r, base) = receiver(&[Answer::Status(500)]).await;
    let (id, _) = t
        .app
        .webhooks()
        .create("pref-95", &base, Actor::Cli)
        .await
        .unwrap();
    let service = service_id(&t, id).await;
    let ids = publish(&t, service, "dossier.instruit").await;
    t.settle().await;
    let d = delivery(&t, ids[0]).await;
    assert_eq!(
        (d.state.as_str(), d.attempts, d.last_status),
        ("en-attente", 1, Some(500))
    );
    assert_eq!(d.last_error.as_deref(), Some("réponse HTTP 500"));
    assert_eq!(r.got().len(), 1);
    // Not before its backoff (30 s).
    t.app.clock.advance(chrono::Duration::seconds(10));
    t.app.wake_workers();
    t.settle().await;
    assert_eq!(r.got().len(), 1);
    t.app.clock.advance(chrono::Duration::seconds(21));
    t.app.wake_workers();
    t.settle().await;
    let d = delivery(&t, ids[0]).await;
    assert_eq!(
        (d.state.as_str(), d.attempts, d.last_status),
        ("livree", 2, Some(200))
    );
    // Delivered once: nothing more later.
    t.app.clock.advance(chrono::Duration::hours(2));
    t.app.wake_workers();
    t.settle().await;
    let got = r.got();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].1.get("x-guichet-livraison"),
        got[1].1.get("x-guichet-livraison")
    );
    assert_eq!(got[0].2, got[1].2, "the same body at every attempt");
    let jobs = t.app.jobs().of_kind("webhook.livraison").await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].state, "fait");
}

#[tokio::test]
async fn a_receiver_that_never_answers_is_given_up_after_24_hours() {
    let t = app().await;
    let (r, base) = receiver(&vec![Answer::Sleep(Duration::from_secs(2)); 60]).await;
    let (id, _) = t
        .app
        .webhooks()
        .create("pref-95", &base, Actor::Cli)
        .await
        .unwrap();
    let service = service_id(&t, id).await;
    let ids = publish(&t, service, "dossier.depose").await;
    let start = t.app.clock.now();
    let mut rounds = 0;
    loop {
        t.settle().await;
        let d = delivery(&t, ids[0]).await;
        if d.state != "en-attente" {
            break;
        }
        assert_eq!(d.last_status, None);
        assert_eq!(
            d.last_error.as_deref(),
            Some("pas de réponse dans le délai de 0.3 s")
        );
        rounds += 1;
        assert!(rounds < 40, "never given up");
        // Every backoff is at most an hour.
        t.app.clock.advance(chrono::Duration::seconds(3601));
        t.app.wake_workers();
    }
    let d = delivery(&t, ids[0]).await;
    assert_eq!(d.state, "morte");
    let first = d.first_attempt_at.unwrap().instant();
    let last = d.last_attempt_at.unwrap().instant();
    assert!(
        last - first >= chrono::Duration::hours(24),
        "{first} → {last}"
    );
    assert!(
        last - start < chrono::Duration::hours(26),
        "{start} → {last}"
    );
    assert!(d.attempts >= 24, "{}", d.attempts);
    assert_eq!(r.got().len() as i64, d.attempts);
    let error = d.last_error.clone().unwrap();
    assert!(error.contains("abandon après 24 h"), "{error}");
    let jobs = t.app.jobs().of_kind("webhook.livraison").await.unwrap();
    assert_eq!(jobs[0].state, "mort");

    // Visible to the administrator, refused to others.
    let admin = t
        .user("admin@exemple.fr", Role::Administrateur, None, &[])
        .await;
    let c = t.login_as(&admin).await;
    let html = t
        .get_with(&c, "/admin/webhooks")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Abandonnée"), "{html}");
    assert!(
        html.contains("pas de réponse dans le délai de 0.3 s"),
        "{html}"
    );
    assert!(html.contains(&base), "{html}");
    let i = t.login_as("instruction.95@exemple.fr").await;
    assert_eq!(t.get_with(&i, "/admin/webhooks").await.status(), 403);
}

#[tokio::test]
async fn a_disabled_webhook_gets_nothing() {
    let t = app().await;
    let (kept, kept_url) = receiver(&[]).await;
    let (gone, gone_url) = receiver(&[]).await;
    let (kept_id, _) = t
        .app
        .webhooks()
        .create("pref-95", &kept_url, Actor::Cli)
        .await
        .unwrap();
    let (gone_id, _) = t
        .app
        .webhooks()
        .create("pref-95", &gone_url, Actor::Cli)
        .await
        .unwrap();
    let service = service_id(&t, kept_id).await;
    // A delivery pending when its webhook is disabled is not sent either.
    t.restart_workers(guichet_app::jobs::Registry::standard(&t.app), 0)
        .await;
    let pending = publish(&t, service, "dossier.depose").await;
    assert_eq!(pending.len(), 2);
    t.app.webhooks().disable(gone_id, Actor::Cli).await.unwrap();
    let e = t
        .app
        .webhooks()
        .disable(gone_id, Actor::Cli)
        .await
        .unwrap_err();
    assert!(matches!(e, AppError::Conflict(_)), "{e:?}");
    let later = publish(&t, service, "dossier.instruit").await;
    assert_eq!(later.len(), 1, "only the active webhook");
    t.restart_workers(guichet_app::jobs::Registry::standard(&t.app), 2)
        .await;
    t.settle().await;
    assert_eq!(kept.got().len(), 2);
    assert!(gone.got().is_empty());
    let gone_log = t.app.webhooks().deliveries_all(gone_id).await.unwrap();
    assert_eq!(gone_log.len(), 1);
    assert_eq!(gone_log[0].state, "morte");
    assert_eq!(
        gone_log[0].last_error.as_deref(),
        Some("webhook désactivé : livraison abandonnée")
    );
}

#[tokio::test]
async fn a_rolled_back_publication_enqueues_nothing() {
    let t = app().await;
    let (r, base) = receiver(&[]).await;
    let (id, _) = t
        .app
        .webhooks()
        .create("pref-95", &base, Actor::Cli)
        .await
        .unwrap();
    let service = service_id(&t, id).await;
    let mut tx = guichet_app::testing::db(&t.app)
        .begin_write()
        .await
        .unwrap();
    let ids = t
        .app
        .webhooks()
        .publish(&mut tx, service, "dossier.depose", &serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(ids.len(), 1);
    tx.rollback().await.unwrap();
    t.app.wake_workers();
    t.settle().await;
    assert!(t
        .app
        .jobs()
        .of_kind("webhook.livraison")
        .await
        .unwrap()
        .is_empty());
    assert!(t
        .app
        .webhooks()
        .deliveries_all(id)
        .await
        .unwrap()
        .is_empty());
    assert!(r.got().is_empty());
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let t = app().await;
    let (r, base) = receiver(&[]).await;
    r.answers
        .lock()
        .unwrap()
        .push_back(Answer::Redirect(format!("{base}/ailleurs")));
    let (id, _) = t
        .app
        .webhooks()
        .create("pref-95", &format!("{base}/crochet"), Actor::Cli)
        .await
        .unwrap();
    let service = service_id(&t, id).await;
    let ids = publish(&t, service, "dossier.depose").await;
    t.settle().await;
    let got = r.got();
    assert_eq!(got.len(), 1, "the redirect was not followed");
    assert_eq!(got[0].0, "/crochet");
    let d = delivery(&t, ids[0]).await;
    assert_eq!((d.state.as_str(), d.last_status), ("en-attente", Some(302)));
    let error = d.last_error.unwrap();
    assert!(
        error.contains("redirection") && error.contains("/ailleurs"),
        "{error}"
    );
}
