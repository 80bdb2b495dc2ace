//! National administration: all accounts, the audit log. Who may see them is decided by the
//! use cases (`App::accounts`, `App::audit_log`), which refuse everyone else.

use super::{render, require_user, PageResult};
use crate::ctx::{paris_datetime, Ctx};
use crate::layout::{Crumb, Layout};
use askama::Template;
use axum::extract::State;
use guichet_app::{parse_ts, App};
use guichet_domain::Role;

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
        .accounts(&u.principal)
        .await?
        .into_iter()
        .map(|(u, service)| UserLine {
            role: Role::parse(&u.role).map(Role::label).unwrap_or("inconnu"),
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
        .audit_log(&u.principal, 200)
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
