//! The job queue on the database under test (SQLite, or PostgreSQL with
//! GUICHET_TEST_DATABASE=postgres): several instances on one database, workers dying mid-job,
//! failures backing off, periodic jobs enqueued once per period.

use chrono::TimeZone;
use guichet_app::clock::Clock;
use guichet_app::config::Config;
use guichet_app::jobs::{self, Job, JobError, Registry, WorkerOptions, Workers};
use guichet_app::App;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn start_clock() -> Clock {
    Clock::starting_at(chrono::Utc.with_ymd_and_hms(2021, 6, 1, 7, 0, 0).unwrap())
}

/// A fresh database and its data directory.
async fn fresh() -> (PathBuf, String) {
    let dir = guichet_testkit::temp_dir();
    let url = guichet_testkit::fresh_database_url(&dir).await;
    (dir, url)
}

/// One instance (its own pool) on `url`.
async fn instance(dir: &std::path::Path, url: &str, clock: &Clock) -> App {
    instance_with(dir, url, clock, |_| {}).await
}

async fn instance_with(
    dir: &std::path::Path,
    url: &str,
    clock: &Clock,
    tweak: impl FnOnce(&mut Config),
) -> App {
    let mut config = Config::defaults(dir);
    config.database_url = url.to_string();
    config.db_max_connections = 6;
    tweak(&mut config);
    App::start(config, clock.clone()).await.expect("démarrage")
}

fn options(workers: usize) -> WorkerOptions {
    WorkerOptions {
        poll: Duration::from_millis(10),
        schedule_every: Duration::from_millis(50),
        ..WorkerOptions::new(workers)
    }
}

/// Polls `check` until it holds, for at most 30 s.
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "délai dépassé : {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Count {
    n: i64,
}

impl Job for Count {
    const KIND: &'static str = "test.compte";
}

type Runs = Arc<Mutex<HashMap<i64, Vec<&'static str>>>>;

fn counting(runs: &Runs, instance: &'static str) -> Registry {
    let mut r = Registry::empty();
    let runs = runs.clone();
    r.register(move |_app: App, j: Count| {
        let runs = runs.clone();
        async move {
            runs.lock().unwrap().entry(j.n).or_default().push(instance);
            // Long enough for the other workers to try the same rows meanwhile.
            tokio::time::sleep(Duration::from_millis(2 + (j.n % 3) as u64)).await;
            Ok(())
        }
    });
    r
}

/// Enqueues one job on its own connection; its id.
async fn enqueue_one<J: Job>(app: &App, job: &J) -> i64 {
    let mut conn = guichet_app::testing::db(app)
        .pool()
        .acquire()
        .await
        .unwrap();
    app.enqueue(&mut conn, job).await.unwrap()
}

#[tokio::test]
async fn two_instances_never_run_one_job_twice() {
    let (dir, url) = fresh().await;
    let clock = start_clock();
    let one = instance(&dir, &url, &clock).await;
    let two = instance(&dir, &url, &clock).await;
    const JOBS: i64 = 150;
    {
        let mut tx = guichet_app::testing::db(&one).pool().begin().await.unwrap();
        for n in 0..JOBS {
            one.enqueue(&mut tx, &Count { n }).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    let runs: Runs = Arc::default();
    let a = Workers::start(&one, counting(&runs, "une"), options(4));
    let b = Workers::start(&two, counting(&runs, "deux"), options(4));
    until("tous les travaux faits", || async {
        one.jobs().counts().await.unwrap().done == JOBS
    })
    .await;
    a.stop().await;
    b.stop().await;
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len() as i64, JOBS);
    let twice: Vec<_> = runs.iter().filter(|(_, v)| v.len() != 1).collect();
    assert!(
        twice.is_empty(),
        "travaux exécutés plusieurs fois : {twice:?}"
    );
    let by_one = runs.values().filter(|v| v[0] == "une").count();
    assert!(
        by_one > 0 && by_one < JOBS as usize,
        "les deux instances travaillent : {by_one} sur {JOBS} par la première"
    );
    let counts = one.jobs().counts().await.unwrap();
    assert_eq!((counts.due, counts.running, counts.dead), (0, 0, 0));
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stall {}

impl Job for Stall {
    const KIND: &'static str = "test.bloque";
}

#[tokio::test]
async fn a_killed_worker_is_replaced_when_its_lease_expires_and_the_job_is_done_once() {
    let (dir, url) = fresh().await;
    let clock = start_clock();
    let one = instance(&dir, &url, &clock).await;
    let two = instance(&dir, &url, &clock).await;
    let started = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let registry = || {
        let (started, finished) = (started.clone(), finished.clone());
        let mut r = Registry::empty();
        r.register(move |_app: App, _: Stall| {
            let (started, finished) = (started.clone(), finished.clone());
            async move {
                if started.fetch_add(1, Ordering::SeqCst) == 0 {
                    // The first run hangs until its worker is killed.
                    std::future::pending::<()>().await;
                }
                finished.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        });
        r
    };
    let id = enqueue_one(&one, &Stall {}).await;
    let a = Workers::start(&one, registry(), options(1));
    until("premier essai commencé", || async {
        started.load(Ordering::SeqCst) == 1
    })
    .await;
    let held = one.jobs().get(id).await.unwrap().unwrap();
    let owner = held.lease_owner.clone().expect("bail posé");
    a.abort();

    // Another instance's workers leave the job alone while the dead worker's lease runs.
    let b = Workers::start(&two, registry(), options(2));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(started.load(Ordering::SeqCst), 1, "bail encore valable");
    let still = two.jobs().get(id).await.unwrap().unwrap();
    assert_eq!(still.state, jobs::PENDING);
    assert_eq!(still.lease_owner.as_deref(), Some(owner.as_str()));

    // The lease (2 minutes) expires: the job is taken over and done, once.
    clock.advance(chrono::Duration::minutes(3));
    until("travail repris et fait", || async {
        two.jobs().get(id).await.unwrap().unwrap().state == jobs::DONE
    })
    .await;
    b.stop().await;
    assert_eq!(started.load(Ordering::SeqCst), 2);
    assert_eq!(finished.load(Ordering::SeqCst), 1);
    let done = two.jobs().get(id).await.unwrap().unwrap();
    assert_eq!(done.attempts, 2);
    assert!(done.lease_owner.is_none());
    // The dead worker's claim can no longer write anything on the job.
    let stale = guichet_storage::jobs::Lease {
        id,
        owner: &owner,
        attempts: 1,
    };
    let now = two.now_ts();
    assert!(
        !guichet_storage::jobs::complete(guichet_app::testing::db(&two), stale, &now)
            .await
            .unwrap()
    );
    assert!(
        !guichet_storage::jobs::bury(guichet_app::testing::db(&two), stale, "x", &now)
            .await
            .unwrap()
    );
    assert_eq!(two.jobs().get(id).await.unwrap().unwrap().state, jobs::DONE);
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Flaky {}

impl Job for Flaky {
    const KIND: &'static str = "test.capricieux";
    const MAX_ATTEMPTS: i64 = 3;
}

#[tokio::test]
async fn a_failing_job_backs_off_exponentially_then_dies() {
    let (dir, url) = fresh().await;
    let clock = start_clock();
    let app = instance(&dir, &url, &clock).await;
    let mut r = Registry::empty();
    r.register(|_app: App, _: Flaky| async {
        Err::<(), _>(JobError::Retry("relais indisponible".into()))
    });
    let id = enqueue_one(&app, &Flaky {}).await;
    let w = Workers::start(&app, r, options(2));
    for (attempt, delay) in [(1, 30), (2, 60)] {
        until("essai fait", || async {
            app.jobs().get(id).await.unwrap().unwrap().attempts == attempt
                && app
                    .jobs()
                    .get(id)
                    .await
                    .unwrap()
                    .unwrap()
                    .lease_owner
                    .is_none()
        })
        .await;
        let j = app.jobs().get(id).await.unwrap().unwrap();
        assert_eq!(j.state, jobs::PENDING);
        assert_eq!(j.last_error.as_deref(), Some("relais indisponible"));
        let due = guichet_storage::parse_ts(&j.run_after).unwrap();
        let wait = (due - clock.now()).num_seconds();
        assert!(
            (delay - 2..=delay).contains(&wait),
            "essai {attempt} : nouvel essai dans {wait} s, {delay} s attendus"
        );
        // Not retried before its time.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(app.jobs().get(id).await.unwrap().unwrap().attempts, attempt);
        clock.advance(chrono::Duration::seconds(delay + 1));
    }
    until("travail mort", || async {
        app.jobs().get(id).await.unwrap().unwrap().state == jobs::DEAD
    })
    .await;
    w.stop().await;
    let j = app.jobs().get(id).await.unwrap().unwrap();
    assert_eq!(j.attempts, 3);
    let error = j.last_error.unwrap();
    assert!(error.contains("relais indisponible"), "{error}");
    assert!(error.contains("abandon après 3 tentatives"), "{error}");
    assert_eq!(app.jobs().dead(10).await.unwrap().len(), 1);
    assert_eq!(jobs::backoff(5), chrono::Duration::minutes(8));
    assert_eq!(jobs::backoff(12), chrono::Duration::hours(1));
}

#[tokio::test]
async fn an_unreadable_payload_or_an_unknown_kind_is_dead_at_once_with_a_clear_error() {
    let (dir, url) = fresh().await;
    let clock = start_clock();
    let app = instance(&dir, &url, &clock).await;
    let now = app.now_ts();
    let mut conn = guichet_app::testing::db(&app)
        .pool()
        .acquire()
        .await
        .unwrap();
    let mut ids = Vec::new();
    for (kind, payload) in [
        ("courriel.reinitialisation", "{\"adresse\": 3}"),
        ("inconnu.du.tout", "{}"),
    ] {
        ids.push(
            guichet_storage::jobs::insert(
                &mut conn,
                &guichet_storage::jobs::NewJob {
                    kind,
                    payload,
                    run_after: &now,
                    max_attempts: 8,
                    unique_key: None,
                    created_at: &now,
                },
            )
            .await
            .unwrap()
            .unwrap(),
        );
    }
    let (bad, unknown) = (ids[0], ids[1]);
    drop(conn);
    let w = Workers::start(&app, Registry::standard(&app), options(1));
    until("deux travaux morts", || async {
        app.jobs().counts().await.unwrap().dead == 2
    })
    .await;
    w.stop().await;
    let bad = app.jobs().get(bad).await.unwrap().unwrap();
    assert_eq!(bad.attempts, 1, "pas de nouvel essai");
    let e = bad.last_error.unwrap();
    assert!(
        e.contains("contenu illisible pour un travail « courriel.reinitialisation »")
            && e.contains("email"),
        "{e}"
    );
    let e = app
        .jobs()
        .get(unknown)
        .await
        .unwrap()
        .unwrap()
        .last_error
        .unwrap();
    assert!(e.contains("« inconnu.du.tout » inconnu"), "{e}");
}

#[tokio::test]
async fn periodic_jobs_are_enqueued_once_per_period_across_instances_and_purge_sessions() {
    let (dir, url) = fresh().await;
    let clock = start_clock();
    let one = instance(&dir, &url, &clock).await;
    let two = instance(&dir, &url, &clock).await;
    let reg_one = Registry::standard(&one);
    let reg_two = Registry::standard(&two);
    // Sessions each hour, finished jobs each day (no audit key: no checkpoints).
    assert_eq!(jobs::schedule(&one, &reg_one).await.unwrap(), 2);
    assert_eq!(jobs::schedule(&two, &reg_two).await.unwrap(), 0);
    assert_eq!(jobs::schedule(&one, &reg_one).await.unwrap(), 0);
    clock.advance(chrono::Duration::hours(1));
    assert_eq!(jobs::schedule(&two, &reg_two).await.unwrap(), 1);
    assert_eq!(jobs::schedule(&one, &reg_one).await.unwrap(), 0);
    assert_eq!(one.jobs().of_kind("sessions.purge").await.unwrap().len(), 2);
    assert_eq!(one.jobs().of_kind("travaux.purge").await.unwrap().len(), 1);

    // An expired session is purged by the next period's job, run by a worker.
    let (id, _) = one
        .accounts()
        .create_user(
            guichet_app::accounts::NewUser {
                email: "admin@exemple.fr".into(),
                display_name: "Admin".into(),
                role: guichet_domain::Role::Administrateur,
                service: None,
                collectivites: vec![],
            },
            guichet_app::audit::Actor::Cli,
        )
        .await
        .unwrap();
    one.sessions()
        .set_password(
            id,
            "une phrase de passe correcte",
            guichet_app::audit::Actor::Cli,
        )
        .await
        .unwrap();
    one.sessions()
        .login(
            "admin@exemple.fr",
            "une phrase de passe correcte",
            None,
            None,
            None,
        )
        .await
        .unwrap();
    let sessions = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM sessions")
            .fetch_one(guichet_app::testing::db(&one).pool())
            .await
            .unwrap()
    };
    assert_eq!(sessions().await, 1);
    let a = Workers::start(&one, reg_one, options(1));
    let b = Workers::start(&two, reg_two, options(1));
    until("file vide", || async {
        let c = one.jobs().counts().await.unwrap();
        c.due == 0 && c.running == 0
    })
    .await;
    assert_eq!(sessions().await, 1, "session encore valable");
    clock.advance(chrono::Duration::hours(13));
    until("session expirée supprimée", || async {
        sessions().await == 0
    })
    .await;
    a.stop().await;
    b.stop().await;
    let purges = one.jobs().of_kind("sessions.purge").await.unwrap();
    assert_eq!(
        purges.len(),
        3,
        "une purge par heure, quelle que soit l’instance"
    );
    assert!(purges.iter().all(|j| j.state == jobs::DONE));
}

#[tokio::test]
async fn a_job_enqueued_in_a_rolled_back_transaction_does_not_exist_and_mail_jobs_hold_no_secret() {
    let (dir, url) = fresh().await;
    let clock = start_clock();
    let app = instance(&dir, &url, &clock).await;
    {
        let mut tx = guichet_app::testing::db(&app).pool().begin().await.unwrap();
        app.enqueue(&mut tx, &Count { n: 1 }).await.unwrap();
        tx.rollback().await.unwrap();
    }
    assert!(app.jobs().of_kind(Count::KIND).await.unwrap().is_empty());
    // A reset request queues the same single job whether or not the address has an account
    // (the request does nothing else, so it answers in the same time); the worker finds no
    // account for the unknown one and sends nothing.
    let (id, _) = app
        .accounts()
        .create_user(
            guichet_app::accounts::NewUser {
                email: "agent@exemple.fr".into(),
                display_name: "Agent".into(),
                role: guichet_domain::Role::Administrateur,
                service: None,
                collectivites: vec![],
            },
            guichet_app::audit::Actor::Cli,
        )
        .await
        .unwrap();
    let welcome = app
        .jobs()
        .of_kind("courriel.premier-mot-de-passe")
        .await
        .unwrap();
    assert_eq!(welcome.len(), 1);
    assert_eq!(welcome[0].payload, format!("{{\"user_id\":{id}}}"));
    app.sessions()
        .request_password_reset("Agent@Exemple.fr", None)
        .await
        .unwrap();
    app.sessions()
        .request_password_reset("personne@exemple.fr", None)
        .await
        .unwrap();
    let resets = app
        .jobs()
        .of_kind("courriel.reinitialisation")
        .await
        .unwrap();
    let payloads: Vec<_> = resets.iter().map(|j| j.payload.as_str()).collect();
    // The queue holds no link: the worker makes it when it sends it.
    assert_eq!(
        payloads,
        [
            "{\"email\":\"agent@exemple.fr\"}",
            "{\"email\":\"personne@exemple.fr\"}"
        ]
    );
    let w = Workers::start(&app, Registry::standard(&app), options(1));
    until("demande traitée", || async {
        app.jobs()
            .of_kind("courriel.reinitialisation")
            .await
            .unwrap()
            .iter()
            .all(|j| j.state == jobs::DONE)
    })
    .await;
    w.stop().await;
    let mails: Vec<String> = std::fs::read_dir(dir.join("courriels"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert_eq!(
        mails.len(),
        2,
        "bienvenue et réinitialisation de l’agent, rien d’autre"
    );
    assert!(mails.iter().all(|m| m.contains("agent@exemple.fr")));
    assert!(mails.iter().all(|m| !m.contains("personne@exemple.fr")));
}

#[tokio::test]
async fn the_audit_chain_is_anchored_through_the_queue() {
    let (dir, url) = fresh().await;
    let clock = start_clock();
    let (_, pem) = guichet_app::audit::AnchorKey::generate().unwrap();
    let key_file = dir.join("audit.pem");
    std::fs::write(&key_file, pem).unwrap();
    let anchors = dir.join("ancres");
    let app = instance_with(&dir, &url, &clock, |c| {
        c.audit_anchor.key_file = Some(key_file.clone());
        c.audit_anchor.every_minutes = 30;
        c.audit_anchor.mail_to = Some("archives@exemple.fr".into());
    })
    .await;
    app.accounts()
        .create_user(
            guichet_app::accounts::NewUser {
                email: "admin@exemple.fr".into(),
                display_name: "Admin".into(),
                role: guichet_domain::Role::Administrateur,
                service: None,
                collectivites: vec![],
            },
            guichet_app::audit::Actor::Cli,
        )
        .await
        .unwrap();
    let w = Workers::start(&app, Registry::standard(&app), options(1));
    until("ancre écrite", || async {
        guichet_app::audit::read_anchors(&anchors)
            .map(|a| a.len() == 1)
            .unwrap_or(false)
    })
    .await;
    until("copie envoyée", || async {
        std::fs::read_dir(dir.join("courriels"))
            .map(|d| {
                d.filter_map(Result::ok).any(|e| {
                    std::fs::read_to_string(e.path())
                        .unwrap_or_default()
                        .contains("archives@exemple.fr")
                })
            })
            .unwrap_or(false)
    })
    .await;
    // Next period, nothing new in the chain: no second checkpoint.
    clock.advance(chrono::Duration::minutes(30));
    until("travail de la période suivante fait", || async {
        app.jobs()
            .of_kind("audit.ancrage")
            .await
            .unwrap()
            .iter()
            .filter(|j| j.state == jobs::DONE)
            .count()
            == 2
    })
    .await;
    w.stop().await;
    let all = guichet_app::audit::read_anchors(&anchors).unwrap();
    assert_eq!(all.len(), 1);
    let key = app.audit_key.as_ref().unwrap();
    let public = guichet_app::audit::parse_public_key(&key.public_hex()).unwrap();
    let report =
        guichet_app::audit::verify_with_anchors(guichet_app::testing::db(&app), &all, &public)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(report.anchors, 1);
    assert_eq!(
        report.latest.map(|(seq, _)| seq),
        Some(report.chain.head_seq)
    );
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Hang {}

impl Job for Hang {
    const KIND: &'static str = "test.sans-fin";
    const MAX_ATTEMPTS: i64 = 2;
}

#[tokio::test]
async fn a_job_whose_workers_keep_dying_is_dead_after_its_attempts() {
    let (dir, url) = fresh().await;
    let clock = start_clock();
    let app = instance(&dir, &url, &clock).await;
    let started = Arc::new(AtomicUsize::new(0));
    let registry = || {
        let started = started.clone();
        let mut r = Registry::empty();
        r.register(move |_app: App, _: Hang| {
            let started = started.clone();
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                std::future::pending::<()>().await;
                Ok(())
            }
        });
        r
    };
    let id = enqueue_one(&app, &Hang {}).await;
    for attempt in 1..=2 {
        let w = Workers::start(&app, registry(), options(1));
        until("essai commencé", || async {
            started.load(Ordering::SeqCst) == attempt
        })
        .await;
        w.abort();
        clock.advance(chrono::Duration::minutes(3));
    }
    let w = Workers::start(&app, registry(), options(1));
    until("travail mort", || async {
        app.jobs().get(id).await.unwrap().unwrap().state == jobs::DEAD
    })
    .await;
    w.stop().await;
    assert_eq!(started.load(Ordering::SeqCst), 2, "pas de troisième essai");
    let e = app
        .jobs()
        .get(id)
        .await
        .unwrap()
        .unwrap()
        .last_error
        .unwrap();
    assert!(
        e.contains("abandon après 2 tentatives : la dernière s’est interrompue sans résultat"),
        "{e}"
    );
}
