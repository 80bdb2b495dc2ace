//! The pages a French public service must have, linked from every footer: legal notice, personal
//! data, cookies, site map (the accessibility statement has its own module). Their text says what
//! Guichet really does (see docs/architecture.md: sessions, audit log, mail); the operator is
//! named by the programme's pilots, no setting names it more precisely yet.

use super::{render, PageResult};
use crate::ctx::{cookie_name, Ctx, CSRF_COOKIE, SESSION_COOKIE};
use crate::layout::{Crumb, Layout};
use askama::Template;
use axum::extract::State;
use guichet_app::mesures;
use guichet_app::App;

fn layout(ctx: &Ctx, app: &App, path: &str, title: &str) -> Layout {
    Layout::new(
        ctx,
        app,
        path,
        vec![Crumb::link("Accueil", "/"), Crumb::here(title)],
    )
}

#[derive(Template)]
#[template(path = "pages/mentions_legales.html")]
struct MentionsTemplate {
    layout: Layout,
    fund: String,
    pilots: String,
}

pub async fn mentions(State(app): State<App>, ctx: Ctx) -> PageResult {
    render(&MentionsTemplate {
        layout: layout(&ctx, &app, "/mentions-legales", "Mentions légales"),
        fund: app.programme.fund.clone(),
        pilots: app.programme.pilots.join(", "),
    })
}

#[derive(Template)]
#[template(path = "pages/donnees_personnelles.html")]
struct DonneesTemplate {
    layout: Layout,
    mail_from: String,
}

pub async fn donnees(State(app): State<App>, ctx: Ctx) -> PageResult {
    render(&DonneesTemplate {
        layout: layout(&ctx, &app, "/donnees-personnelles", "Données personnelles"),
        mail_from: app.config.mail_from.clone(),
    })
}

#[derive(Template)]
#[template(path = "pages/cookies.html")]
struct CookiesTemplate {
    layout: Layout,
    session_cookie: String,
    csrf_cookie: String,
}

pub async fn cookies(State(app): State<App>, ctx: Ctx) -> PageResult {
    render(&CookiesTemplate {
        layout: layout(&ctx, &app, "/gestion-des-cookies", "Gestion des cookies"),
        session_cookie: cookie_name(&app, SESSION_COOKIE),
        csrf_cookie: cookie_name(&app, CSRF_COOKIE),
    })
}

pub struct PlanLink {
    pub label: String,
    pub href: String,
}

#[derive(Template)]
#[template(path = "pages/plan_du_site.html")]
struct PlanTemplate {
    layout: Layout,
    measures: Vec<(String, Vec<PlanLink>)>,
    logged_in: bool,
}

pub async fn plan(State(app): State<App>, ctx: Ctx) -> PageResult {
    let today = app
        .clock
        .now()
        .with_timezone(&chrono_tz::Europe::Paris)
        .date_naive();
    let measures = mesures::catalogue(&app.programme, today, None)
        .into_iter()
        .map(|a| {
            (
                a.name,
                a.measures
                    .into_iter()
                    .map(|m| PlanLink {
                        href: format!("/mesures/{}", m.id),
                        label: m.name,
                    })
                    .collect(),
            )
        })
        .collect();
    render(&PlanTemplate {
        layout: layout(&ctx, &app, "/plan-du-site", "Plan du site"),
        measures,
        logged_in: ctx.user().is_some(),
    })
}
