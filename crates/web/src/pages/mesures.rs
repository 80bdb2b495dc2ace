//! Public measure pages: the list grouped by axis (`/mesures`) and each measure's sheet
//! (`/mesures/{id}`): what it funds, who may apply, rates and caps for the visitor's territory
//! beside the other territories', dates said from today, the instructing service, the sources
//! by title, and the ways on (the simulator; filing, which opens later).
//!
//! The territory comes from `?collectivite=commune:95127` (its région's rules) or
//! `?territoire=11` (a région code), the national rules otherwise. Nothing here reads the
//! database but the referential index, through `App::resolve_applicant`.

use super::{render, PageResult};
use crate::ctx::Ctx;
use crate::error::extract::{PagePath, PageQuery};
use crate::error::PageError;
use crate::layout::{Crumb, Layout};
use askama::Template;
use axum::extract::State;
use guichet_app::error::AppError;
use guichet_app::mesures::{self, AxisBrief, MeasureSheet, Territory, TerritoryTerms};
use guichet_app::simulation::ApplicantRef;
use guichet_app::App;
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub struct TerritoryQuery {
    #[serde(default)]
    collectivite: Option<String>,
    #[serde(default)]
    territoire: Option<String>,
}

/// The visitor's territory as understood.
pub struct Visitor {
    /// The collectivité named, when one was (its name and reference).
    pub collectivite: Option<(String, String)>,
    /// Région code of the rules that apply (`None`: national).
    pub code: Option<String>,
    /// Whose rules: « Île-de-France », « Règles nationales ».
    pub rules_name: String,
    /// Why the national rules apply although a collectivité or territory was given.
    pub note: Option<String>,
    /// The query string that keeps this territory on the next page (`?collectivite=…`), or empty.
    pub query: String,
}

/// Today in Paris by the platform's clock (simulated in demonstrations).
fn today(app: &App) -> chrono::NaiveDate {
    app.clock
        .now()
        .with_timezone(&chrono_tz::Europe::Paris)
        .date_naive()
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn visitor(app: &App, q: &TerritoryQuery) -> Result<Visitor, PageError> {
    let territories = mesures::territories(&app.programme);
    let variant = |code: &str| {
        territories
            .iter()
            .find(|t| t.code.as_deref() == Some(code))
            .cloned()
    };
    let national = |note: Option<String>, collectivite, query| Visitor {
        collectivite,
        code: None,
        rules_name: "Règles nationales".into(),
        note,
        query,
    };
    if let Some(reference) = q
        .collectivite
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let a = match ApplicantRef::parse(reference) {
            Ok(r) => match app.simulation().resolve_applicant(&r).await {
                Ok(a) => a,
                Err(AppError::NotFound(_) | AppError::Invalid(_)) => {
                    return Ok(national(
                        Some("La collectivité indiquée est introuvable : les règles nationales sont affichées.".into()),
                        None,
                        String::new(),
                    ))
                }
                Err(e) => return Err(e.into()),
            },
            Err(_) => {
                return Ok(national(
                    Some("La collectivité indiquée est introuvable : les règles nationales sont affichées.".into()),
                    None,
                    String::new(),
                ))
            }
        };
        let query = format!("?collectivite={}", encode(&a.reference));
        let named = Some((a.nom.clone(), a.reference.clone()));
        return Ok(match a.region.as_deref().and_then(variant) {
            Some(t) => Visitor {
                collectivite: named,
                code: t.code,
                rules_name: t.name,
                note: None,
                query,
            },
            None => national(
                Some(match a.region {
                    Some(_) => format!("{} relève des règles nationales : sa région n’a pas de règles propres.", a.nom),
                    None => format!("{} s’étend sur plusieurs régions ou n’en a pas : les règles nationales s’appliquent.", a.nom),
                }),
                named,
                query,
            ),
        });
    }
    match q
        .territoire
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(code) => Ok(match variant(code) {
            Some(t) => Visitor {
                query: format!("?territoire={}", encode(code)),
                collectivite: None,
                code: t.code,
                rules_name: t.name,
                note: None,
            },
            None => national(None, None, String::new()),
        }),
        None => Ok(national(None, None, String::new())),
    }
}

/// A territory offered in the choice list.
pub struct TerritoryOption {
    pub code: String,
    pub name: String,
    pub selected: bool,
}

fn options(territories: &[Territory], code: Option<&str>) -> Vec<TerritoryOption> {
    territories
        .iter()
        .map(|t| TerritoryOption {
            code: t.code.clone().unwrap_or_default(),
            name: t.name.clone(),
            selected: t.code.as_deref() == code,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "pages/mesures.html")]
struct ListTemplate {
    layout: Layout,
    axes: Vec<AxisBrief>,
    visitor: Visitor,
    options: Vec<TerritoryOption>,
}

pub async fn list(
    State(app): State<App>,
    ctx: Ctx,
    PageQuery(q): PageQuery<TerritoryQuery>,
) -> PageResult {
    let visitor = visitor(&app, &q).await?;
    render(&ListTemplate {
        layout: Layout::new(
            &ctx,
            &app,
            "/mesures",
            vec![Crumb::link("Accueil", "/"), Crumb::here("Mesures")],
        ),
        axes: mesures::catalogue(&app.programme, today(&app), visitor.code.as_deref()),
        options: options(
            &mesures::territories(&app.programme),
            visitor.code.as_deref(),
        ),
        visitor,
    })
}

/// A row of the comparison table: one value per territory, in the table's column order.
pub struct CompareRow {
    pub title: String,
    pub values: Vec<String>,
}

#[derive(Template)]
#[template(path = "pages/mesure.html")]
struct SheetTemplate {
    layout: Layout,
    sheet: MeasureSheet,
    visitor: Visitor,
    /// The terms of the visitor's territory.
    own: TerritoryTerms,
    options: Vec<TerritoryOption>,
    columns: Vec<String>,
    rows: Vec<CompareRow>,
    date_rows: Vec<CompareRow>,
    simulate_href: String,
    simulate_label: String,
    file_href: String,
    /// The documents asked for (label, required, description), in the visitor's région.
    documents: Vec<(String, bool, String)>,
}

/// Rows of a comparison: every title met in any territory, in the order first met.
fn compare<'a, F>(territories: &'a [TerritoryTerms], lines: F) -> Vec<CompareRow>
where
    F: Fn(&'a TerritoryTerms) -> Vec<(&'a str, String)>,
{
    let per: Vec<Vec<(&str, String)>> = territories.iter().map(&lines).collect();
    let mut titles: Vec<&str> = Vec::new();
    for l in &per {
        for (t, _) in l {
            if !titles.contains(t) {
                titles.push(t);
            }
        }
    }
    titles
        .into_iter()
        .map(|title| CompareRow {
            title: title.to_string(),
            values: territories
                .iter()
                .zip(&per)
                .map(
                    |(t, l)| match (&t.excluded, l.iter().find(|(x, _)| *x == title)) {
                        (Some(_), _) => "Mesure non proposée".to_string(),
                        (None, Some((_, v))) => v.clone(),
                        (None, None) => "—".to_string(),
                    },
                )
                .collect(),
        })
        .collect()
}

pub async fn sheet(
    State(app): State<App>,
    ctx: Ctx,
    PagePath(id): PagePath<String>,
    PageQuery(q): PageQuery<TerritoryQuery>,
) -> PageResult {
    let visitor = visitor(&app, &q).await?;
    let sheet = mesures::sheet(&app.programme, &id, today(&app), visitor.code.as_deref())
        .ok_or_else(PageError::not_found)?;
    let own = sheet
        .territories
        .iter()
        .find(|t| t.territory.code == visitor.code)
        .or_else(|| sheet.territories.first())
        .cloned()
        .ok_or_else(PageError::not_found)?;
    let columns = sheet
        .territories
        .iter()
        .map(|t| t.territory.name.clone())
        .collect();
    let rows = compare(&sheet.territories, |t| {
        t.amounts
            .iter()
            .map(|a| (a.title.as_str(), a.value.clone()))
            .collect()
    });
    let date_rows = compare(&sheet.territories, |t| {
        t.dates
            .iter()
            .map(|d| (d.title.as_str(), d.display.clone()))
            .collect()
    });
    // The simulator takes no measure yet: it evaluates every measure for the collectivité.
    let (simulate_href, simulate_label) = match &visitor.collectivite {
        Some((name, reference)) => (
            format!(
                "/simulateur?collectivite={}&demandeur={}",
                encode(name),
                encode(reference)
            ),
            format!("Simuler une aide pour {name}"),
        ),
        None => ("/simulateur".to_string(), "Simuler".to_string()),
    };
    let path = format!("/mesures/{id}");
    let form = &app.programme.form;
    let documents = form
        .documents_for(&id, visitor.code.as_deref())
        .map(|r| {
            let kind = form.document(&r.document);
            (
                kind.map(|k| k.label.clone())
                    .unwrap_or_else(|| r.document.clone()),
                r.required,
                kind.and_then(|k| k.description.clone()).unwrap_or_default(),
            )
        })
        .collect();
    let file_href = format!(
        "/espace/dossiers/nouveau?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("mesure", &id)
            .finish()
    );
    render(&SheetTemplate {
        layout: Layout::new(
            &ctx,
            &app,
            &path,
            vec![
                Crumb::link("Accueil", "/"),
                Crumb::link("Mesures", format!("/mesures{}", visitor.query)),
                Crumb::here(sheet.brief.name.clone()),
            ],
        ),
        options: options(
            &mesures::territories(&app.programme),
            visitor.code.as_deref(),
        ),
        own,
        columns,
        rows,
        date_rows,
        simulate_href,
        simulate_label,
        file_href,
        documents,
        sheet,
        visitor,
    })
}
