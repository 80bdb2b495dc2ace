//! Public collectivité search (works without JavaScript; the autocomplete improves it) and the
//! public page of each collectivité.

use super::{render, thousands, PageResult};
use crate::ctx::Ctx;
use crate::error::extract::{PagePath, PageQuery};
use crate::error::PageError;
use crate::layout::{Crumb, Layout};
use askama::Template;
use axum::extract::State;
use guichet_app::referentiel::search::Hit;
use guichet_app::App;
use guichet_domain::{CollectiviteKind, CollectiviteRef};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    millesime: Option<String>,
}

pub struct HitLine {
    pub name: String,
    pub kind: &'static str,
    pub code: String,
    pub detail: String,
    pub href: String,
}

pub fn hit_line(h: &Hit) -> HitLine {
    let mut detail = Vec::new();
    if let Some((code, name)) = &h.departement {
        detail.push(format!("{name} ({code})"));
    }
    if !h.postcodes.is_empty() {
        detail.push(h.postcodes.join(", "));
    }
    detail.push(format!("{} habitants", thousands(h.population)));
    HitLine {
        name: h.name.clone(),
        kind: h.kind.label(),
        code: h.code.clone(),
        detail: detail.join(" · "),
        href: format!(
            "/collectivites/{}/{}?millesime={}",
            h.kind, h.code, h.vintage
        ),
    }
}

#[derive(Template)]
#[template(path = "pages/collectivites.html")]
struct SearchTemplate {
    layout: Layout,
    q: String,
    vintage: u16,
    vintages: Vec<u16>,
    hits: Vec<HitLine>,
    searched: bool,
    empty_referential: bool,
}

pub async fn search(
    State(app): State<App>,
    ctx: Ctx,
    PageQuery(q): PageQuery<SearchQuery>,
) -> PageResult {
    let vintage = app
        .referentiel()
        .requested_vintage(q.millesime.as_deref())
        .await?;
    let query = q.q.chars().take(100).collect::<String>();
    let hits = if query.trim().is_empty() {
        vec![]
    } else {
        app.referentiel()
            .search_collectivites(vintage, &query, None, 20)
            .await?
    };
    let vintages: Vec<u16> = app
        .referentiel()
        .available_vintages()
        .await?
        .iter()
        .map(|v| v.year())
        .collect();
    render(&SearchTemplate {
        layout: Layout::new(
            &ctx,
            &app,
            "/collectivites",
            vec![Crumb::link("Accueil", "/"), Crumb::here("Collectivités")],
        ),
        searched: !query.trim().is_empty(),
        q: query,
        vintage: vintage.year(),
        empty_referential: vintages.is_empty(),
        vintages,
        hits: hits.iter().map(hit_line).collect(),
    })
}

pub struct PopulationLine {
    pub vintage: u16,
    pub population: String,
}

pub struct MemberLine {
    pub name: String,
    pub href: String,
    pub population: String,
}

#[derive(Template)]
#[template(path = "pages/collectivite.html")]
struct CollectiviteTemplate {
    layout: Layout,
    name: String,
    kind: &'static str,
    code_label: &'static str,
    code: String,
    siren: Option<String>,
    postcodes: String,
    departement: Option<(String, String)>,
    region: Option<(String, String)>,
    epci: Option<(String, String)>,
    populations: Vec<PopulationLine>,
    population_note: &'static str,
    members: Vec<MemberLine>,
    vintage: u16,
    space_href: Option<String>,
    /// The simulator with this collectivité chosen, and the measures with its territory's terms.
    simulate_href: String,
    measures_href: String,
}

#[derive(Deserialize)]
pub struct PageVintage {
    #[serde(default)]
    millesime: Option<String>,
}

pub async fn page(
    State(app): State<App>,
    ctx: Ctx,
    PagePath((kind, code)): PagePath<(String, String)>,
    PageQuery(q): PageQuery<PageVintage>,
) -> PageResult {
    let r = CollectiviteRef::from_parts(&kind, &code).map_err(|_| PageError::not_found())?;
    let vintage = app
        .referentiel()
        .requested_vintage(q.millesime.as_deref())
        .await?;
    let d = app.referentiel().collectivite_details(vintage, &r).await?;
    let space_href = match ctx.user() {
        // The link follows the scope's rule on the footprint just read (the same rule the
        // private space's query applies), without another query.
        Some(u) if u.scope.sees_collectivite(&r, &d.footprint) => {
            Some(format!("/espace/collectivites/{}/{}", r.kind, r.code))
        }
        _ => None,
    };
    let path = format!("/collectivites/{}/{}", r.kind, r.code);
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let reference = format!("{}:{}", r.kind, r.code);
    let simulate_href = format!(
        "/simulateur?collectivite={}&demandeur={}",
        enc(&d.name),
        enc(&reference)
    );
    let measures_href = format!("/mesures?collectivite={}", enc(&reference));
    render(&CollectiviteTemplate {
        layout: Layout::new(
            &ctx,
            &app,
            &path,
            vec![
                Crumb::link("Accueil", "/"),
                Crumb::link("Collectivités", "/collectivites"),
                Crumb::here(d.name.clone()),
            ],
        ),
        kind: r.kind.label(),
        code_label: match r.kind {
            CollectiviteKind::Commune => "Code INSEE",
            CollectiviteKind::Epci => "SIREN",
            CollectiviteKind::Departement => "Code du département",
            CollectiviteKind::Region => "Code de la région",
        },
        code: r.code.clone(),
        siren: d.siren.clone().filter(|_| r.kind != CollectiviteKind::Epci),
        postcodes: d.postcodes.join(", "),
        departement: d.departement.clone(),
        region: d.region.clone(),
        epci: d.epci.clone(),
        populations: d
            .populations
            .iter()
            .map(|(v, p)| PopulationLine {
                vintage: *v,
                population: thousands(*p),
            })
            .collect(),
        population_note: if r.kind == CollectiviteKind::Commune {
            "Population municipale publiée pour chaque millésime du référentiel."
        } else {
            "Somme des populations des communes membres, pour chaque millésime du référentiel."
        },
        members: d
            .members
            .iter()
            .map(|(insee, name, pop)| MemberLine {
                name: name.clone(),
                href: format!("/collectivites/commune/{insee}?millesime={}", d.vintage),
                population: thousands(*pop),
            })
            .collect(),
        vintage: d.vintage,
        name: d.name,
        space_href,
        simulate_href,
        measures_href,
    })
}
