//! HTTP integration tests: each test starts the real application on a random port with a fresh
//! database (SQLite, or PostgreSQL with GUICHET_TEST_DATABASE=postgres) and talks to it as a
//! browser or an API client would.

mod api;
mod auth;
mod common;
mod comptes_attaques;
mod courriel_smtp;
mod depot;
mod impact;
mod instances;
mod instruction;
mod jetons;
mod matrix;
mod pages;
mod public;
mod referentiel_reel;
mod requetes;
mod securite;
mod simulation;
mod travaux;
mod webhooks;
