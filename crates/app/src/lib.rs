//! Application services: what Guichet does, independent of how it is asked (HTTP, CLI, tests).
//! The `App` value holds the database, the clock, the mailer, the programme and the search index;
//! each module adds its use cases as methods on it.

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod config;
pub mod demo;
pub mod error;
pub mod impact;
pub mod jobs;
pub mod mail;
pub mod mesures;
pub mod programme;
pub mod referentiel;
pub mod request;
pub mod simulation;

use crate::clock::Clock;
use crate::config::Config;
use crate::error::{AppError, AppResult};
use crate::mail::Mailer;
use crate::referentiel::import::{self, ImportReport};
use crate::referentiel::search::SearchIndex;
use chrono::Datelike;
use guichet_domain::Vintage;
use guichet_programme::Programme;
use guichet_storage::{format_ts, Db};
use std::sync::Arc;

pub use error::AppError as Error;
/// Timestamps as stored (fixed-width RFC 3339 UTC text), for display.
pub use guichet_storage::parse_ts;

#[derive(Clone)]
pub struct App {
    /// Private to the application layer: pages, the API and the CLI go through use cases,
    /// which enforce access themselves (`accounts`, `referentiel`, `audit`…).
    pub(crate) db: Db,
    pub clock: Clock,
    pub config: Arc<Config>,
    pub mailer: Arc<Mailer>,
    pub programme: Arc<Programme>,
    pub search: SearchIndex,
    /// Wakes this process's workers when a job is enqueued (`jobs`).
    pub jobs: jobs::Wakeup,
    /// The key signing the audit chain's checkpoints, when configured (`GUICHET_AUDIT_CLE`).
    pub audit_key: Option<Arc<audit::AnchorKey>>,
}

/// Import phases reported to a progress display: (rows written so far, rows in all).
pub type Progress<'a> = dyn Fn(u64, u64) + Sync + 'a;

impl App {
    /// Connects to the database, applies migrations and loads the programme.
    pub async fn start(config: Config, clock: Clock) -> AppResult<App> {
        // The dummy password hash (timing of unknown accounts), before anything is served.
        tokio::task::spawn_blocking(auth::prepare_dummy_hash)
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!(e)))??;
        let db = Db::connect(&config.database_url, config.db_max_connections).await?;
        db.migrate().await?;
        let programme = programme::configured(config.programme_file.as_deref())?;
        let mailer = Mailer::from_config(&config)?;
        let audit_key = match &config.audit_anchor.key_file {
            Some(path) => Some(Arc::new(audit::AnchorKey::read(path)?)),
            None => None,
        };
        Ok(App {
            db,
            clock,
            config: Arc::new(config),
            mailer: Arc::new(mailer),
            programme: Arc::new(programme),
            search: SearchIndex::new(),
            jobs: jobs::Wakeup::default(),
            audit_key,
        })
    }

    /// Whether the database answers (`/readyz`).
    pub async fn ping(&self) -> AppResult<()> {
        Ok(self.db.ping().await?)
    }

    /// Closes the database pool (shutdown; tests use it to simulate an unreachable database).
    pub async fn close(&self) {
        self.db.close().await
    }

    pub fn now_ts(&self) -> String {
        format_ts(self.clock.now())
    }

    /// The vintage to use at the clock's date: the latest imported one not after this year,
    /// else the programme's pinned vintage.
    pub async fn vintage_in_force(&self) -> AppResult<Vintage> {
        let available = self.search.vintages(&self.db).await?;
        Ok(
            Vintage::in_force(self.clock.now().year(), &available)
                .unwrap_or(self.programme.vintage),
        )
    }

    /// The vintage a request asks for (`millesime=`), or the one in force when it asks none.
    pub async fn requested_vintage(&self, requested: Option<&str>) -> AppResult<Vintage> {
        match requested.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => Vintage::parse(s).map_err(|e| AppError::Invalid(e.to_string())),
            None => self.vintage_in_force().await,
        }
    }

    /// Imports one vintage from the npm package directory (idempotent).
    pub async fn import_vintage(
        &self,
        vintage: Vintage,
        actor: audit::Actor,
        progress: &Progress<'_>,
    ) -> AppResult<ImportReport> {
        let (data_dir, source) = import::locate(&self.config.npm_dir, vintage)?;
        let started = std::time::Instant::now();
        let data = tokio::task::spawn_blocking(move || import::read_vintage(&data_dir))
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!(e)))??;
        let report = ImportReport {
            vintage,
            source: source.clone(),
            regions: data.regions.len(),
            departements: data.departements.len(),
            communes: data.communes.len(),
            epci: data.epci.len(),
        };
        let read = started.elapsed();
        let total = report.total_rows() as u64;
        let done = std::sync::atomic::AtomicU64::new(0);
        let tick = |n: u64| {
            let so_far = done.fetch_add(n, std::sync::atomic::Ordering::Relaxed) + n;
            progress(so_far, total);
        };
        // The vintage and its audit entry commit together: an import that cannot be recorded
        // leaves nothing imported.
        let mut tx = self.db.begin_write().await?;
        guichet_storage::referentiel::replace_vintage(
            &mut tx,
            i64::from(vintage.year()),
            &source,
            &self.now_ts(),
            &data,
            &tick,
        )
        .await?;
        drop(data);
        audit::record(
            &mut tx,
            &self.clock,
            actor,
            "referentiel.import",
            "referentiel",
            &vintage.to_string(),
            None,
            Some(&serde_json::json!({
                "source": source,
                "communes": report.communes,
                "epci": report.epci,
                "departements": report.departements,
                "regions": report.regions,
            })),
        )
        .await?;
        tx.commit().await?;
        // The index and its aggregates (vintages included) reload at once on this instance;
        // other instances see the import within a second (`ref_imports`).
        self.search.invalidate();
        tracing::info!(
            millesime = %vintage,
            lecture_ms = read.as_millis() as u64,
            ecriture_ms = (started.elapsed() - read).as_millis() as u64,
            "référentiel importé"
        );
        Ok(report)
    }
}

/// Test support: the raw database handle and the storage crate, for tests that must inspect or
/// corrupt rows directly (attacks, corrupt values, concurrency). Application code and the web
/// crate's sources never use it: they go through the use cases.
#[doc(hidden)]
pub mod testing {
    pub use guichet_storage as storage;
    pub use guichet_storage::Db;

    /// The application's database handle.
    pub fn db(app: &crate::App) -> &Db {
        &app.db
    }
}
