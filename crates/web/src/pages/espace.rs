//! "Mon espace" and the scoped pages behind it: a service and its members, a collectivité's
//! private space. Access is decided by the domain's rules on every read, not by menus.

use super::{render, require_user, thousands, PageResult};
use crate::ctx::Ctx;
use crate::error::extract::PagePath;
use crate::error::PageError;
use crate::layout::{Crumb, Layout};
use askama::Template;
use axum::extract::State;
use guichet_app::accounts::service_scope;
use guichet_app::{referentiel, App};
use guichet_domain::{CollectiviteRef, Role, ServiceKind};
use guichet_storage::accounts::{ServiceRow, UserRow};

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
    let vintage = app.vintage_in_force().await?.year();
    let (region, dep) = match s.kind {
        ServiceKind::PrefectureDepartementale => (None, Some(s.territory_code.as_str())),
        ServiceKind::PrefectureRegionale => (Some(s.territory_code.as_str()), None),
        _ => return Ok((vintage, vec![])),
    };
    let rows = guichet_storage::referentiel::departement_summaries(
        &app.db,
        i64::from(vintage),
        region,
        dep,
    )
    .await?;
    Ok((
        vintage,
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
}

/// Describes what a service covers, from the referential.
async fn territory_of(app: &App, s: &ServiceRow) -> Result<String, PageError> {
    let v = i64::from(app.vintage_in_force().await?.year());
    use guichet_storage::referentiel as r;
    Ok(match s.kind {
        ServiceKind::PrefectureDepartementale => {
            let dep = r::find_departement(&app.db, v, &s.territory_code).await?;
            let reg = match &s.region_code {
                Some(code) => r::find_region(&app.db, v, code).await?,
                None => None,
            };
            format!(
                "Département : {} ({}){}",
                dep.map(|d| d.name).unwrap_or_default(),
                s.territory_code,
                reg.map(|g| format!(", région {}", g.name))
                    .unwrap_or_default()
            )
        }
        ServiceKind::PrefectureRegionale => {
            let reg = r::find_region(&app.db, v, &s.territory_code).await?;
            let deps = r::departements_of_region(&app.db, v, &s.territory_code).await?;
            format!(
                "Région : {} ({}) – départements : {}",
                reg.map(|g| g.name).unwrap_or_default(),
                s.territory_code,
                deps.iter()
                    .map(|d| format!("{} ({})", d.name, d.code))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        _ => "Compétence nationale".to_string(),
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
        None => (app.vintage_in_force().await?.year(), vec![]),
    };
    let services = if matches!(u.role, Role::Coordinateur | Role::Administrateur) {
        app.visible_services(&u.principal)
            .await?
            .iter()
            .map(service_line)
            .collect()
    } else {
        vec![]
    };
    let collectivites = app
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
        is_admin: u.role == Role::Administrateur,
        is_demandeur: u.role == Role::Demandeur,
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
    if u.role == Role::Demandeur {
        return Err(PageError::forbidden());
    }
    let services = app
        .visible_services(&u.principal)
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
    let s = app.service(id).await?.ok_or_else(PageError::not_found)?;
    if !u.principal.can_view_service(&service_scope(&s)?) {
        return Err(PageError::forbidden());
    }
    let members = app
        .service_members(id)
        .await?
        .iter()
        .map(member_line)
        .collect();
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
    let vintage = app.vintage_in_force().await?;
    let footprint = referentiel::footprint(&app.db, vintage, &r)
        .await?
        .ok_or_else(PageError::not_found)?;
    if !u.principal.can_view_collectivite(&r, &footprint) {
        return Err(PageError::forbidden());
    }
    let name = app
        .collectivite_name(vintage, &r)
        .await?
        .unwrap_or_else(|| r.to_string());
    let members = app
        .collectivite_members(&r)
        .await?
        .iter()
        .map(member_line)
        .collect();
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
