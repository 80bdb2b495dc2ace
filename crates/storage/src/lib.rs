//! Storage: one migration tree and one query layer over SQLite and PostgreSQL.
//!
//! Queries are written once, in the SQL subset both engines share (numbered `$n` parameters,
//! `ON CONFLICT`, `RETURNING`), and run through sqlx's `Any` driver. The schema is described
//! with sea-query's builder, which renders each backend's DDL from one definition. Timestamps are
//! stored as fixed-width RFC 3339 UTC text (sortable, comparable, readable in both engines) and
//! money as BIGINT cents.

pub mod accounts;
pub mod api_tokens;
pub mod audit;
mod db;
pub mod dossiers;
mod error;
pub mod jobs;
pub mod messages;
mod migrations;
pub mod pieces;
pub mod referentiel;
pub mod scope;
pub mod sql;
mod time;
pub mod webhooks;

pub use db::{redact_url, Backend, Db, Tx};
pub use error::StorageError;
pub use time::{format_ts, parse_ts, CorruptTimestamp, Timestamp};
