//! The job queue: work done after the request that asked for it (mail, purges, the audit
//! chain's checkpoints; documents, exports, webhooks and reminders next), by workers that run
//! inside `guichet serve` (`GUICHET_WORKERS`, 0 allowed) or alone as `guichet worker`.
//!
//! - A job kind is a payload type implementing [`Job`] (its name, its attempts); a [`Registry`]
//!   maps each kind to its handler. A payload that does not parse is a dead job whose error says
//!   so; a kind this instance does not know likewise (retry it once every worker knows it).
//! - [`enqueue`] takes the caller's connection or transaction, so a use case enqueues in the same
//!   transaction as its change: the job exists if and only if the change committed.
//! - A worker claims a due job with a lease (storage: `FOR UPDATE SKIP LOCKED`, or `BEGIN
//!   IMMEDIATE` on SQLite), extends the lease while the handler runs, and records the outcome
//!   under that lease. A worker that dies leaves its lease to expire; another worker then takes
//!   the job (which therefore runs at least once, and is marked done once).
//! - A failure is retried with exponential backoff (30 s, 1 min, 2 min… at most 1 h); after its
//!   kind's number of attempts the job is dead, listed on `/admin/travaux` with its error, and
//!   can be retried there.
//! - Periodic jobs (session purge, old jobs purge, audit checkpoints) are enqueued by every
//!   instance's scheduler with a unique key per period, so that exactly one job exists per period
//!   whatever the number of instances.
//!
//! Times (due dates, leases, backoff) come from the application clock, like every other "now".

use crate::clock::Clock;
use crate::error::{AppError, AppResult};
use crate::App;
use chrono::{DateTime, Duration, DurationRound, Utc};
use guichet_storage::format_ts;
use guichet_storage::jobs::{self as store, Claimed, Lease};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::AnyConnection;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

pub use guichet_storage::jobs::{Counts, JobRow, DEAD, DONE, PENDING};

/// A kind of job: its payload, serialised as JSON in the queue.
pub trait Job: Serialize + DeserializeOwned + Send + 'static {
    /// The kind's name, stored with each job (never rename one that may be in a queue).
    const KIND: &'static str;
    /// Attempts before the job is dead.
    const MAX_ATTEMPTS: i64 = 8;
}

/// How a handler failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    /// Worth trying again later (a relay down, a database hiccup).
    Retry(String),
    /// Will never succeed as it is (bad payload, invalid address): dead at once.
    Fatal(String),
}

impl JobError {
    fn message(&self) -> &str {
        match self {
            JobError::Retry(m) | JobError::Fatal(m) => m,
        }
    }
}

impl From<AppError> for JobError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Invalid(m) | AppError::NotFound(m) | AppError::Inconsistent(m) => {
                JobError::Fatal(m)
            }
            AppError::Internal(e) => JobError::Retry(format!("{e:#}")),
            other => JobError::Retry(other.to_string()),
        }
    }
}

impl From<guichet_storage::StorageError> for JobError {
    fn from(e: guichet_storage::StorageError) -> Self {
        JobError::Retry(e.to_string())
    }
}

pub type JobResult = Result<(), JobError>;
type BoxFuture = Pin<Box<dyn Future<Output = JobResult> + Send>>;
type Handler = Arc<dyn Fn(App, String) -> BoxFuture + Send + Sync>;

/// Wakes this process's idle workers when a job was just enqueued (they also poll).
#[derive(Clone, Default, Debug)]
pub struct Wakeup(Arc<Notify>);

impl Wakeup {
    pub fn wake(&self) {
        self.0.notify_waiters();
    }
}

/// Adds a job, due now, within the caller's connection or transaction. Call
/// [`App::wake_workers`] after the commit to have it run at once rather than at the next poll.
pub async fn enqueue<J: Job>(conn: &mut AnyConnection, clock: &Clock, job: &J) -> AppResult<i64> {
    let now = clock.now();
    enqueue_at(conn, now, job, now, None)
        .await?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("travail {} non ajouté", J::KIND)))
}

/// Adds a job due at `run_after`; with a `unique_key`, only if no job has that key yet.
pub async fn enqueue_at<J: Job>(
    conn: &mut AnyConnection,
    now: DateTime<Utc>,
    job: &J,
    run_after: DateTime<Utc>,
    unique_key: Option<&str>,
) -> AppResult<Option<i64>> {
    let payload = serde_json::to_string(job)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("travail {} : {e}", J::KIND)))?;
    Ok(store::insert(
        conn,
        &store::NewJob {
            kind: J::KIND,
            payload: &payload,
            run_after: &format_ts(run_after),
            max_attempts: J::MAX_ATTEMPTS,
            unique_key,
            created_at: &format_ts(now),
        },
    )
    .await?)
}

/// A job enqueued once per period by every instance's scheduler (one per period in all).
struct Periodic {
    kind: &'static str,
    every: Duration,
    payload: String,
    max_attempts: i64,
}

/// The handlers a set of workers knows, and the periodic jobs its scheduler enqueues.
#[derive(Default)]
pub struct Registry {
    handlers: HashMap<&'static str, Handler>,
    periodic: Vec<Periodic>,
}

impl Registry {
    pub fn empty() -> Registry {
        Registry::default()
    }

    /// Every kind Guichet enqueues, with the periodic jobs this configuration asks for.
    pub fn standard(app: &App) -> Registry {
        let mut r = Registry::empty();
        crate::mail::register_jobs(&mut r);
        crate::dossiers::register_jobs(&mut r);
        crate::messages::register_jobs(&mut r);
        r.register(|app: App, _: PurgeSessions| async move {
            let n = app.sessions().purge_expired_sessions().await?;
            tracing::info!(sessions = n, "sessions expirées supprimées");
            Ok(())
        });
        r.register(|app: App, _: PurgeJobs| async move {
            let mut conn = app.db.pool().acquire().await.map_err(AppError::from)?;
            let before = format_ts(app.clock.now() - KEEP_DONE);
            let n = store::purge_done(&mut conn, &before).await?;
            tracing::info!(travaux = n, "travaux terminés supprimés");
            Ok(())
        });
        r.every(Duration::hours(1), PurgeSessions {});
        r.every(Duration::days(1), PurgeJobs {});
        crate::audit::register_jobs(&mut r, app);
        crate::webhooks::register_jobs(&mut r);
        r
    }

    /// Adds (or replaces) the handler of `J`'s kind.
    pub fn register<J, F, Fut>(&mut self, handler: F) -> &mut Registry
    where
        J: Job,
        F: Fn(App, J) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = JobResult> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.handlers.insert(
            J::KIND,
            Arc::new(move |app: App, payload: String| -> BoxFuture {
                match serde_json::from_str::<J>(&payload) {
                    Ok(job) => Box::pin(handler(app, job)),
                    Err(e) => Box::pin(std::future::ready(Err(JobError::Fatal(format!(
                        "contenu illisible pour un travail « {} » : {e}",
                        J::KIND
                    ))))),
                }
            }),
        );
        self
    }

    /// Has the scheduler enqueue `job` once per `every` (periods aligned on the epoch).
    pub fn every<J: Job>(&mut self, every: Duration, job: J) -> &mut Registry {
        match serde_json::to_string(&job) {
            Ok(payload) => self.periodic.push(Periodic {
                kind: J::KIND,
                every,
                payload,
                max_attempts: J::MAX_ATTEMPTS,
            }),
            Err(e) => {
                tracing::error!(type = J::KIND, erreur = %e, "travail périodique non sérialisable")
            }
        }
        self
    }

    pub fn knows(&self, kind: &str) -> bool {
        self.handlers.contains_key(kind)
    }
}

/// Session purge (periodic).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct PurgeSessions {}

impl Job for PurgeSessions {
    const KIND: &'static str = "sessions.purge";
    const MAX_ATTEMPTS: i64 = 3;
}

/// Deletes jobs done more than [`KEEP_DONE`] ago (periodic); dead ones stay for the
/// administrator.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct PurgeJobs {}

impl Job for PurgeJobs {
    const KIND: &'static str = "travaux.purge";
    const MAX_ATTEMPTS: i64 = 3;
}

const KEEP_DONE: Duration = Duration::days(7);

/// How workers wait and hold jobs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub workers: usize,
    /// How often an idle worker looks for due jobs (it is also woken by local enqueues).
    pub poll: std::time::Duration,
    /// How long a claimed job is held; the running worker extends it every third of it.
    pub lease: Duration,
    /// How often the scheduler enqueues the periodic jobs of the current period.
    pub schedule_every: std::time::Duration,
}

impl WorkerOptions {
    pub fn new(workers: usize) -> WorkerOptions {
        WorkerOptions {
            workers,
            poll: std::time::Duration::from_secs(1),
            lease: Duration::minutes(2),
            schedule_every: std::time::Duration::from_secs(60),
        }
    }
}

/// Delay before attempt `attempts + 1` after `attempts` failed ones: 30 s doubled each time,
/// at most an hour.
pub fn backoff(attempts: i64) -> Duration {
    let exp = attempts.clamp(1, 8) - 1;
    (Duration::seconds(30) * (1 << exp)).min(Duration::hours(1))
}

/// A running set of workers (and its scheduler).
pub struct Workers {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Starts `options.workers` workers and, if there are any, the periodic scheduler.
    pub fn start(app: &App, registry: Registry, options: WorkerOptions) -> Workers {
        let (stop, stopped) = watch::channel(false);
        let registry = Arc::new(registry);
        let instance = uuid::Uuid::new_v4().simple().to_string();
        let mut tasks = Vec::new();
        for n in 0..options.workers {
            let owner = format!("{}:{}/{n}", std::process::id(), &instance[..8]);
            tasks.push(tokio::spawn(worker_loop(
                app.clone(),
                registry.clone(),
                owner,
                options.clone(),
                stopped.clone(),
            )));
        }
        if options.workers > 0 && !registry.periodic.is_empty() {
            tasks.push(tokio::spawn(scheduler_loop(
                app.clone(),
                registry.clone(),
                options.clone(),
                stopped.clone(),
            )));
        }
        if options.workers > 0 {
            tracing::info!(
                travailleurs = options.workers,
                "file de travaux : travailleurs démarrés"
            );
        }
        Workers { stop, tasks }
    }

    /// Asks every worker to stop after its current job, and waits for them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }

    /// Stops at once, as a crash would: running jobs are abandoned with their leases.
    pub fn abort(self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Aborts the task it holds when dropped (a worker aborted takes its running job with it).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn worker_loop(
    app: App,
    registry: Arc<Registry>,
    owner: String,
    options: WorkerOptions,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        if *stopped.borrow() {
            break;
        }
        // Registered before looking, so that a wake-up during the look is not lost.
        let woken = app.wakeup.0.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        match run_one(&app, &registry, &owner, &options).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => tracing::warn!(travailleur = %owner, erreur = %e, "file de travaux"),
        }
        tokio::select! {
            _ = woken => {}
            _ = tokio::time::sleep(options.poll) => {}
            _ = stopped.changed() => {}
        }
    }
}

/// Claims and runs one due job; false when there was none.
pub async fn run_one(
    app: &App,
    registry: &Registry,
    owner: &str,
    options: &WorkerOptions,
) -> AppResult<bool> {
    let now = app.clock.now();
    let Some(job) = store::claim(
        &app.db,
        owner,
        &format_ts(now),
        &format_ts(now + options.lease),
    )
    .await?
    else {
        return Ok(false);
    };
    let lease = Lease {
        id: job.id,
        owner,
        attempts: job.attempts,
    };
    let outcome = if job.attempts > job.max_attempts {
        Err(JobError::Fatal(format!(
            "abandon après {} tentatives : la dernière s’est interrompue sans résultat (travailleur arrêté avant la fin, bail expiré)",
            job.max_attempts
        )))
    } else {
        match registry.handlers.get(job.kind.as_str()) {
            None => Err(JobError::Fatal(format!(
                "type de travail « {} » inconnu de ce travailleur (version de Guichet plus ancienne ?)",
                job.kind
            ))),
            Some(handler) => run_leased(app, handler, &job, lease, options).await,
        }
    };
    record(app, &job, lease, outcome).await?;
    Ok(true)
}

/// Runs the handler in its own task (a panic is a failure, not a dead worker), extending the
/// lease while it runs.
async fn run_leased(
    app: &App,
    handler: &Handler,
    job: &Claimed,
    lease: Lease<'_>,
    options: &WorkerOptions,
) -> JobResult {
    let task = AbortOnDrop(tokio::spawn(handler(app.clone(), job.payload.clone())));
    let beat = (options.lease / 3)
        .to_std()
        .unwrap_or(std::time::Duration::from_secs(10))
        .max(std::time::Duration::from_millis(10));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + beat, beat);
    let mut task = task;
    loop {
        tokio::select! {
            joined = &mut task.0 => {
                return joined.unwrap_or_else(|e| {
                    Err(JobError::Retry(if e.is_panic() {
                        "le travail s’est interrompu sur une erreur interne (panique)".to_string()
                    } else {
                        "le travail a été annulé".to_string()
                    }))
                });
            }
            _ = ticks.tick() => {
                let until = format_ts(app.clock.now() + options.lease);
                match store::extend_lease(&app.db, lease, &until).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(travail = job.id, "bail perdu : un autre travailleur a repris ce travail"),
                    Err(e) => tracing::warn!(travail = job.id, erreur = %e, "prolongation du bail"),
                }
            }
        }
    }
}

async fn record(app: &App, job: &Claimed, lease: Lease<'_>, outcome: JobResult) -> AppResult<()> {
    let now = app.clock.now();
    let kept = match &outcome {
        Ok(()) => store::complete(&app.db, lease, &format_ts(now)).await?,
        Err(JobError::Retry(m)) if job.attempts < job.max_attempts => {
            let at = now + backoff(job.attempts);
            tracing::warn!(travail = job.id, type = %job.kind, tentative = job.attempts, erreur = %m, nouvel_essai = %format_ts(at), "travail en échec, nouvel essai prévu");
            store::retry_later(&app.db, lease, m, &format_ts(at)).await?
        }
        Err(e) => {
            let message = match e {
                JobError::Retry(m) => format!("{m} (abandon après {} tentatives)", job.attempts),
                JobError::Fatal(m) => m.clone(),
            };
            tracing::error!(travail = job.id, type = %job.kind, erreur = %message, "travail mort : à relancer depuis /admin/travaux");
            store::bury(&app.db, lease, &message, &format_ts(now)).await?
        }
    };
    if !kept {
        tracing::warn!(travail = job.id, resultat = ?outcome.as_ref().map_err(JobError::message), "bail perdu avant la fin : résultat ignoré");
    }
    Ok(())
}

async fn scheduler_loop(
    app: App,
    registry: Arc<Registry>,
    options: WorkerOptions,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        if *stopped.borrow() {
            break;
        }
        match schedule(&app, &registry).await {
            Ok(0) => {}
            Ok(_) => app.wake_workers(),
            Err(e) => tracing::warn!(erreur = %e, "planification des travaux périodiques"),
        }
        tokio::select! {
            _ = tokio::time::sleep(options.schedule_every) => {}
            _ = stopped.changed() => {}
        }
    }
}

/// Enqueues each periodic job of the current period unless some instance already did; returns
/// how many this call added.
pub async fn schedule(app: &App, registry: &Registry) -> AppResult<usize> {
    let now = app.clock.now();
    let mut added = 0;
    let mut conn = app.db.pool().acquire().await?;
    for p in &registry.periodic {
        let start = now.duration_trunc(p.every).unwrap_or(now);
        let key = format!("{}@{}", p.kind, format_ts(start));
        let inserted = store::insert(
            &mut conn,
            &store::NewJob {
                kind: p.kind,
                payload: &p.payload,
                run_after: &format_ts(now),
                max_attempts: p.max_attempts,
                unique_key: Some(&key),
                created_at: &format_ts(now),
            },
        )
        .await?;
        if inserted.is_some() {
            added += 1;
        }
    }
    Ok(added)
}

impl App {
    /// Adds a job in the caller's transaction (see [`enqueue`]): every area's use cases enqueue
    /// their follow-ups (mail, documents, webhooks) this way.
    pub async fn enqueue<J: Job>(&self, conn: &mut AnyConnection, job: &J) -> AppResult<i64> {
        enqueue(conn, &self.clock, job).await
    }

    /// Wakes this process's idle workers (after committing an enqueue).
    pub fn wake_workers(&self) {
        self.wakeup.wake();
    }
}

/// The job queue as an administrator sees it: counts, dead jobs, retries (`app.jobs()`).
#[derive(Clone, Copy)]
pub struct JobQueue<'a> {
    pub(crate) app: &'a App,
}

impl JobQueue<'_> {
    /// How many jobs are due, running, waiting, done and dead.
    pub async fn counts(&self) -> AppResult<Counts> {
        let mut conn = self.app.db.pool().acquire().await?;
        Ok(store::counts(&mut conn, &self.app.now_ts()).await?)
    }

    /// The queue's counts and its dead jobs, for those who may manage the queue
    /// (`/admin/travaux`).
    pub async fn queue(
        &self,
        p: &guichet_domain::Principal,
        limit: i64,
    ) -> AppResult<(Counts, Vec<JobRow>)> {
        if !p.scope().can(guichet_domain::Action::ManageJobs) {
            return Err(AppError::Forbidden);
        }
        Ok((self.counts().await?, self.dead(limit).await?))
    }

    /// Dead jobs, most recent first.
    pub async fn dead(&self, limit: i64) -> AppResult<Vec<JobRow>> {
        let mut conn = self.app.db.pool().acquire().await?;
        Ok(store::list_in_state(&mut conn, DEAD, limit).await?)
    }

    /// Every job of one kind, oldest first (diagnostics and tests).
    pub async fn of_kind(&self, kind: &str) -> AppResult<Vec<JobRow>> {
        let mut conn = self.app.db.pool().acquire().await?;
        Ok(store::list_of_kind(&mut conn, kind).await?)
    }

    /// One job by its number.
    pub async fn get(&self, id: i64) -> AppResult<Option<JobRow>> {
        let mut conn = self.app.db.pool().acquire().await?;
        Ok(store::find(&mut conn, id).await?)
    }

    /// Puts a dead job back in the queue (attempts reset), audited; administrators only.
    pub async fn retry_dead(&self, id: i64, by: &crate::accounts::UserView) -> AppResult<()> {
        if !by.scope.can(guichet_domain::Action::ManageJobs) {
            return Err(AppError::Forbidden);
        }
        let actor = crate::audit::Actor::User(by.user.id);
        // Reads then writes: on SQLite, take the write lock first (no SQLITE_BUSY midway).
        let mut tx = self.app.db.begin_write().await?;
        let job = store::find(&mut tx, id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("travail n° {id} introuvable")))?;
        if !store::revive(&mut tx, id, &self.app.now_ts()).await? {
            return Err(AppError::Conflict(format!(
                "le travail n° {id} n’est pas (ou plus) en échec définitif"
            )));
        }
        crate::audit::record(
            &mut tx,
            &self.app.clock,
            actor,
            "travail.relance",
            "travail",
            &id.to_string(),
            Some(&serde_json::json!({"type": job.kind, "tentatives": job.attempts, "erreur": job.last_error})),
            None,
        )
        .await?;
        tx.commit().await?;
        self.app.wake_workers();
        Ok(())
    }
}
