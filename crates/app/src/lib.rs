//! Application services: what Guichet does, independent of how it is asked (HTTP, CLI, tests).
//! The `App` value holds what every area shares (the database, the clock, the mailer, the
//! programme, the search index); each area's use cases are methods of its own service value,
//! declared in that area's module and reached through one accessor: `app.accounts()`,
//! `app.sessions()`, `app.referentiel()`, `app.simulation()`, `app.audit()`, `app.jobs()`,
//! `app.impact()`, `app.dossiers()`, `app.demo()`.

pub mod accounts;
pub mod api_tokens;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod config;
pub mod demo;
pub mod dossiers;
pub mod error;
pub mod exports;
pub mod impact;
pub mod jobs;
pub mod mail;
pub mod messages;
pub mod mesures;
pub mod pieces;
pub mod programme;
pub mod referentiel;
pub mod request;
pub mod simulation;
pub mod webhooks;

use crate::clock::Clock;
use crate::config::Config;
use crate::error::{AppError, AppResult};
use crate::mail::Mailer;
use crate::referentiel::search::SearchIndex;
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
    pub wakeup: jobs::Wakeup,
    /// The key signing the audit chain's checkpoints, when configured (`GUICHET_AUDIT_CLE`).
    pub audit_key: Option<Arc<audit::AnchorKey>>,
    /// Where attached documents' content lives (`GUICHET_PIECES`).
    pub blobs: pieces::Blobs,
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
        let blobs = pieces::Blobs::from_config(&config)?;
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
            wakeup: jobs::Wakeup::default(),
            audit_key,
            blobs,
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

    /// Accounts and services (`accounts`).
    pub fn accounts(&self) -> accounts::Accounts<'_> {
        accounts::Accounts { app: self }
    }

    /// Sessions, sign-in, one-time links and passwords (`auth`).
    pub fn sessions(&self) -> auth::Sessions<'_> {
        auth::Sessions { app: self }
    }

    /// API tokens (`api_tokens`).
    pub fn api_tokens(&self) -> api_tokens::ApiTokens<'_> {
        api_tokens::ApiTokens { app: self }
    }

    /// The territorial referential (`referentiel`).
    pub fn referentiel(&self) -> referentiel::Referentiel<'_> {
        referentiel::Referentiel { app: self }
    }

    /// The simulator (`simulation`).
    pub fn simulation(&self) -> simulation::Simulator<'_> {
        simulation::Simulator { app: self }
    }

    /// The audit log's readers (`audit`).
    pub fn audit(&self) -> audit::Audit<'_> {
        audit::Audit { app: self }
    }

    /// The job queue's administration (`jobs`); enqueueing is [`App::enqueue`].
    pub fn webhooks(&self) -> webhooks::Webhooks<'_> {
        webhooks::Webhooks { app: self }
    }

    pub fn jobs(&self) -> jobs::JobQueue<'_> {
        jobs::JobQueue { app: self }
    }

    /// The impact of a programme change (`impact`).
    pub fn impact(&self) -> impact::Impact<'_> {
        impact::Impact { app: self }
    }

    /// Dossiers (`dossiers`).
    pub fn dossiers(&self) -> dossiers::Dossiers<'_> {
        dossiers::Dossiers { app: self }
    }

    /// A dossier's thread (`messages`).
    pub fn messages(&self) -> messages::Messages<'_> {
        messages::Messages { app: self }
    }

    /// Attached documents (`pieces`).
    pub fn pieces(&self) -> pieces::Pieces<'_> {
        pieces::Pieces { app: self }
    }

    pub fn exports(&self) -> exports::Exports<'_> {
        exports::Exports { app: self }
    }

    /// Demo data (`demo`).
    pub fn demo(&self) -> demo::Demo<'_> {
        demo::Demo { app: self }
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
