//! National administration: all accounts, the audit log, the job queue's dead jobs. Who may see
//! them is decided by the use cases (`App::accounts`, `App::audit_log`, the job queue's), which
//! refuse everyone else.

use super::{render, require_user, PageResult};
use crate::ctx::{paris_datetime, Ctx};
use crate::error::extract::{PagePath, PageQuery};
use crate::error::PageError;
use crate::layout::{Crumb, Layout};
use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use guichet_app::{parse_ts, App};
use serde::Deserialize;

pub struct UserLine {
    pub name: String,
    pub email: String,
    pub role: &'static str,
    pub service: String,
    pub active: bool,
}

#[derive(Template)]
#[template(path = "pages/admin_utilisateurs.html")]
struct UsersTemplate {
    layout: Layout,
    users: Vec<UserLine>,
}

pub async fn users(State(app): State<App>, ctx: Ctx) -> PageResult {
    let u = require_user(&ctx, "/admin/utilisateurs")?;
    let users = app
        .accounts()
        .list(&u.principal)
        .await?
        .into_iter()
        .map(|(u, service)| UserLine {
            role: u.role.label(),
            service: service.unwrap_or_else(|| "—".into()),
            active: u.password_hash.is_some() && u.disabled_at.is_none(),
            name: u.display_name,
            email: u.email,
        })
        .collect();
    render(&UsersTemplate {
        layout: Layout::new(
            &ctx,
            &app,
            "/admin/utilisateurs",
            vec![
                Crumb::link("Accueil", "/"),
                Crumb::link("Mon espace", "/espace"),
                Crumb::here("Comptes"),
            ],
        ),
        users,
    })
}

pub struct EntryLine {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub object: String,
    pub hash: String,
}

#[derive(Template)]
#[template(path = "pages/admin_journal.html")]
struct JournalTemplate {
    layout: Layout,
    entries: Vec<EntryLine>,
}

pub async fn journal(State(app): State<App>, ctx: Ctx) -> PageResult {
    let u = require_user(&ctx, "/admin/journal")?;
    let entries = app
        .audit()
        .log(&u.principal, 200)
        .await?
        .into_iter()
        .map(|e| EntryLine {
            seq: e.seq,
            at: parse_ts(&e.at).map(paris_datetime).unwrap_or(e.at),
            actor: e.actor,
            action: e.action,
            object: format!("{} {}", e.object_type, e.object_id),
            hash: e.hash[..12].to_string(),
        })
        .collect();
    render(&JournalTemplate {
        layout: Layout::new(
            &ctx,
            &app,
            "/admin/journal",
            vec![
                Crumb::link("Accueil", "/"),
                Crumb::link("Mon espace", "/espace"),
                Crumb::here("Journal d’audit"),
            ],
        ),
        entries,
    })
}

/// A dead job as the administrator sees it.
pub struct DeadJobLine {
    pub id: i64,
    pub kind: String,
    pub label: &'static str,
    pub attempts: i64,
    pub error: String,
    pub created: String,
    pub died: String,
}

#[derive(Template)]
#[template(path = "pages/admin_travaux.html")]
struct JobsTemplate {
    layout: Layout,
    counts: guichet_app::jobs::Counts,
    dead: Vec<DeadJobLine>,
    retried: Option<i64>,
}

#[derive(Deserialize)]
pub struct JobsQuery {
    relance: Option<i64>,
}

/// What a kind of job does, in French.
fn job_label(kind: &str) -> &'static str {
    match kind {
        "courriel.reinitialisation" => "Courriel : lien de réinitialisation du mot de passe",
        "courriel.premier-mot-de-passe" => "Courriel : bienvenue et premier mot de passe",
        "courriel.envoi" => "Courriel",
        "courriel.accuse-depot" => "Courriel : accusé de dépôt d’un dossier",
        "sessions.purge" => "Purge des sessions expirées",
        "travaux.purge" => "Purge des travaux terminés",
        "audit.ancrage" => "Ancre signée du journal d’audit",
        "webhook.livraison" => "Livraison d’un webhook",
        _ => "Autre travail",
    }
}

fn paris_ts(ts: &str) -> String {
    parse_ts(ts)
        .map(paris_datetime)
        .unwrap_or_else(|| ts.to_string())
}

pub async fn jobs(
    State(app): State<App>,
    ctx: Ctx,
    PageQuery(q): PageQuery<JobsQuery>,
) -> PageResult {
    let u = require_user(&ctx, "/admin/travaux")?;
    let (counts, dead) = app.jobs().queue(&u.principal, 200).await?;
    let dead = dead
        .into_iter()
        .map(|j| DeadJobLine {
            id: j.id,
            label: job_label(&j.kind),
            kind: j.kind,
            attempts: j.attempts,
            error: j.last_error.unwrap_or_else(|| "—".into()),
            created: paris_ts(&j.created_at),
            died: j.finished_at.as_deref().map(paris_ts).unwrap_or_default(),
        })
        .collect();
    render(&JobsTemplate {
        layout: Layout::new(
            &ctx,
            &app,
            "/admin/travaux",
            vec![
                Crumb::link("Accueil", "/"),
                Crumb::link("Mon espace", "/espace"),
                Crumb::here("File de travaux"),
            ],
        ),
        counts,
        dead,
        retried: q.relance,
    })
}

/// Puts a dead job back in the queue (CSRF-checked form, audited), then back to the list.
pub async fn retry_job(
    State(app): State<App>,
    ctx: Ctx,
    PagePath(id): PagePath<i64>,
) -> Result<Response, PageError> {
    let u = require_user(&ctx, "/admin/travaux")?;
    app.jobs().retry_dead(id, u).await?;
    Ok(Redirect::to(&format!("/admin/travaux?relance={id}")).into_response())
}
