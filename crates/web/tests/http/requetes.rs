//! How many SQL statements a logged-in page costs: every statement sqlx runs is counted (its
//! statement log, at trace level, feeds a counting layer), request by request.

use crate::common::{spawn_app, TestApp};
use guichet_domain::Role;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

struct CountStatements(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> Layer<S> for CountStatements {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() == "sqlx::query" {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// The process-wide statement counter (each test runs in its own process under nextest).
fn counter() -> Arc<AtomicUsize> {
    static COUNTER: OnceLock<Arc<AtomicUsize>> = OnceLock::new();
    COUNTER
        .get_or_init(|| {
            let c = Arc::new(AtomicUsize::new(0));
            let subscriber = tracing_subscriber::registry().with(
                CountStatements(c.clone()).with_filter(
                    tracing_subscriber::filter::Targets::new()
                        .with_target("sqlx::query", tracing::Level::TRACE),
                ),
            );
            let _ = tracing::subscriber::set_global_default(subscriber);
            c
        })
        .clone()
}

/// Statements run while answering `GET path` (after one warm-up request).
async fn statements_for(t: &TestApp, c: &reqwest::Client, path: &str) -> usize {
    assert_eq!(t.get_with(c, path).await.status(), 200);
    let n = counter();
    let before = n.load(Ordering::SeqCst);
    assert_eq!(t.get_with(c, path).await.status(), 200);
    n.load(Ordering::SeqCst) - before
}

#[tokio::test]
async fn mon_espace_costs_few_statements() {
    let _ = counter();
    let t = spawn_app().await;
    let instructeur = t
        .user("instruction@exemple.fr", Role::Instructeur, Some("95"), &[])
        .await;
    let coordinateur = t
        .user(
            "coordination@exemple.fr",
            Role::Coordinateur,
            Some("region:11"),
            &[],
        )
        .await;
    let demandeur = t
        .user(
            "mairie@exemple.fr",
            Role::Demandeur,
            None,
            &["commune:95127", "epci:249500109", "departement:95"],
        )
        .await;
    let mut clients = Vec::new();
    for email in [&instructeur, &coordinateur, &demandeur] {
        clients.push((email, t.login_as(email).await));
    }
    // The job workers poll the queue in the background: stopped, so that only the page's own
    // statements are counted.
    t.settle().await;
    if let Some(w) = t.workers.lock().await.take() {
        w.stop().await;
    }
    let mut seen = Vec::new();
    for (email, c) in clients {
        let n = statements_for(&t, &c, "/espace").await;
        println!("GET /espace ({email}) : {n} requêtes SQL");
        seen.push(n);
    }
    assert!(seen.iter().all(|n| *n > 0), "the counter counts: {seen:?}");
    assert!(
        seen.iter().all(|n| *n <= LIMIT),
        "at most {LIMIT} statements per /espace: {seen:?}"
    );
}

/// The most statements one `/espace` may run (measured: 11, 12 and 9 before the session, user
/// and service were read in one statement, the vintages cached and the names read at once; 5,
/// 6 and 3 after).
/// Session and user, vintages, service, territory, members, and the territory's collectivités
/// with agents (one scoped query).
const LIMIT: usize = 7;
