//! "Mon espace" and the scoped pages behind it: a service and its members, a collectivité's
//! private space. Access is decided by the application's use cases (the principal's scope,
//! applied in SQL), never here: a page only shows what a use case returned, or its refusal.

use super::{render, require_user, thousands, PageResult};
use crate::ctx::Ctx;
use crate::error::extract::PagePath;
use crate::error::PageError;
use crate::layout::{Crumb, Layout};
use askama::Template;
use axum::extract::State;
use guichet_app::accounts::{ServiceRow, UserRow};
use guichet_app::referentiel::ServiceTerritory;
use guichet_app::App;
use guichet_domain::access::{Action, ServiceSet};
use guichet_domain::{CollectiviteRef, Role};

pub struct ServiceLine {
    pub id: i64,
    pub name: String,
    pub kind: &'static str,
    pub territory: String,
}

pub struct CollectiviteLine {
    pub name: String,
    pub kind: &'static str,
    pub space_href: String,
    pub public_href: String,
}

pub struct MemberLine {
    pub name: String,
    pub email: String,
    pub role: &'static str,
    pub active: bool,
}

fn service_line(s: &ServiceRow) -> ServiceLine {
    ServiceLine {
        id: s.id,
        name: s.name.clone(),
        kind: s.kind.label(),
        territory: s.territory_code.clone(),
    }
}

fn member_line(u: &UserRow) -> MemberLine {
    MemberLine {
        name: u.display_name.clone(),
        email: u.email.clone(),
        role: u.role.label(),
        active: u.password_hash.is_some() && u.disabled_at.is_none(),
    }
}

pub struct TerritoryLine {
    pub code: String,
    pub name: String,
    pub communes: String,
    pub epci: String,
    pub population: String,
}

/// The départements a service covers, with what they hold (empty for national services).
async fn territory_lines(
    app: &App,
    s: &ServiceRow,
) -> Result<(u16, Vec<TerritoryLine>), PageError> {
    let (vintage, rows) = app.referentiel().service_departements(s).await?;
    Ok((
        vintage.year(),
        rows.into_iter()
            .map(|d| TerritoryLine {
                code: d.code,
                name: d.name,
                communes: thousands(d.communes),
                epci: thousands(d.epci),
                population: thousands(d.population),
            })
            .collect(),
    ))
}

#[derive(Template)]
#[template(path = "pages/espace.html")]
struct EspaceTemplate {
    layout: Layout,
    name: String,
    email: String,
    role_label: &'static str,
    is_admin: bool,
    is_demandeur: bool,
    service: Option<ServiceLine>,
    territory: Option<String>,
    collectivites: Vec<CollectiviteLine>,
    services: Vec<ServiceLine>,
    departements: Vec<TerritoryLine>,
    vintage: u16,
    can_manage_accounts: bool,
    can_read_audit_log: bool,
    can_manage_jobs: bool,
    territory_collectivites: Vec<AgentsLine>,
}

/// A collectivité of the territory that has agents on Guichet.
pub struct AgentsLine {
    pub name: String,
    pub kind: &'static str,
    pub space_href: String,
    pub agents: String,
}

/// Describes what a service covers, from the referential.
async fn territory_of(app: &App, s: &ServiceRow) -> Result<String, PageError> {
    Ok(match app.referentiel().service_territory(s).await? {
        ServiceTerritory::Departement { code, name, region } => format!(
            "Département : {} ({code}){}",
            name.unwrap_or_default(),
            region.map(|g| format!(", région {g}")).unwrap_or_default()
        ),
        ServiceTerritory::Region {
            code,
            name,
            departements,
        } => format!(
            "Région : {} ({code}) – départements : {}",
            name.unwrap_or_default(),
            departements
                .iter()
                .map(|(code, name)| format!("{name} ({code})"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        ServiceTerritory::National => "Compétence nationale".to_string(),
    })
}

pub async fn page(State(app): State<App>, ctx: Ctx) -> PageResult {
    let u = require_user(&ctx, "/espace")?;
    let (service, territory) = match &u.service {
        Some(s) => (Some(service_line(s)), Some(territory_of(&app, s).await?)),
        None => (None, None),
    };
    let (vintage, departements) = match &u.service {
        Some(s) => territory_lines(&app, s).await?,
        None => (app.referentiel().vintage_in_force().await?.year(), vec![]),
    };
    // A list of services only when the scope holds more than one's own.
    let services = if matches!(
        u.scope.services,
        ServiceSet::All | ServiceSet::Region { .. }
    ) {
        app.accounts()
            .visible_services(&u.principal)
            .await?
            .iter()
            .map(service_line)
            .collect()
    } else {
        vec![]
    };
    let territory_collectivites = if u.role == Role::Demandeur {
        vec![]
    } else {
        app.accounts()
            .collectivites_with_agents(&u.principal)
            .await?
            .into_iter()
            .map(|c| AgentsLine {
                name: c.name,
                kind: c.reference.kind.label(),
                space_href: format!(
                    "/espace/collectivites/{}/{}",
                    c.reference.kind, c.reference.code
                ),
                agents: thousands(c.agents),
            })
            .collect()
    };
    let collectivites = app
        .accounts()
        .named_collectivites(&u.principal.collectivites)
        .await?
        .into_iter()
        .map(|(r, name)| CollectiviteLine {
            name,
            kind: r.kind.label(),
            space_href: format!("/espace/collectivites/{}/{}", r.kind, r.code),
            public_href: format!("/collectivites/{}/{}", r.kind, r.code),
        })
        .collect();
    render(&EspaceTemplate {
        layout: Layout::new(
            &ctx,
            &app,
            "/espace",
            vec![Crumb::link("Accueil", "/"), Crumb::here("Mon espace")],
        ),
        name: u.user.display_name.clone(),
        email: u.user.email.clone(),
        role_label: u.role.label(),
        is_admin: u.scope.services == ServiceSet::All,
        is_demandeur: u.role == Role::Demandeur,
        can_manage_accounts: u.scope.can(Action::ManageAccounts),
        can_read_audit_log: u.scope.can(Action::ReadAuditLog),
        can_manage_jobs: u.scope.can(Action::ManageJobs),
        territory_collectivites,
        service,
        territory,
        collectivites,
        services,
        departements,
        vintage,
    })
}

#[derive(Template)]
#[template(path = "pages/services.html")]
struct ServicesTemplate {
    layout: Layout,
    services: Vec<ServiceLine>,
}

pub async fn services(State(app): State<App>, ctx: Ctx) -> PageResult {
    let u = require_user(&ctx, "/espace/services")?;
    let services = app
        .accounts()
        .service_directory(&u.principal)
        .await?
        .iter()
        .map(service_line)
        .collect();
    render(&ServicesTemplate {
        layout: Layout::new(
            &ctx,
            &app,
            "/espace/services",
            vec![
                Crumb::link("Accueil", "/"),
                Crumb::link("Mon espace", "/espace"),
                Crumb::here("Services"),
            ],
        ),
        services,
    })
}

#[derive(Template)]
#[template(path = "pages/service.html")]
struct ServiceTemplate {
    layout: Layout,
    service: ServiceLine,
    territory: String,
    members: Vec<MemberLine>,
}

pub async fn service(State(app): State<App>, ctx: Ctx, PagePath(id): PagePath<i64>) -> PageResult {
    let path = format!("/espace/services/{id}");
    let u = require_user(&ctx, &path)?;
    let details = app.accounts().service_details(&u.principal, id).await?;
    let s = details.service;
    let members = details.members.iter().map(member_line).collect();
    let territory = territory_of(&app, &s).await?;
    render(&ServiceTemplate {
        layout: Layout::new(
            &ctx,
            &app,
            &path,
            vec![
                Crumb::link("Accueil", "/"),
                Crumb::link("Mon espace", "/espace"),
                Crumb::here(s.name.clone()),
            ],
        ),
        service: service_line(&s),
        territory,
        members,
    })
}

#[derive(Template)]
#[template(path = "pages/espace_collectivite.html")]
struct CollectiviteSpaceTemplate {
    layout: Layout,
    name: String,
    kind: &'static str,
    public_href: String,
    members: Vec<MemberLine>,
}

pub async fn collectivite(
    State(app): State<App>,
    ctx: Ctx,
    PagePath((kind, code)): PagePath<(String, String)>,
) -> PageResult {
    let path = format!("/espace/collectivites/{kind}/{code}");
    let u = require_user(&ctx, &path)?;
    let r = CollectiviteRef::from_parts(&kind, &code).map_err(|_| PageError::not_found())?;
    let space = app.accounts().collectivite_space(&u.principal, &r).await?;
    let name = space.name;
    let members = space.members.iter().map(member_line).collect();
    render(&CollectiviteSpaceTemplate {
        layout: Layout::new(
            &ctx,
            &app,
            &path,
            vec![
                Crumb::link("Accueil", "/"),
                Crumb::link("Mon espace", "/espace"),
                Crumb::here(name.clone()),
            ],
        ),
        kind: r.kind.label(),
        public_href: format!("/collectivites/{}/{}", r.kind, r.code),
        name,
        members,
    })
}
