//! Impact of a programme change, for administrators and regional coordinators: a draft
//! programme folder, picked among those of the drafts directory (`GUICHET_BROUILLONS_DIR`),
//! against the programme in force, over every applicant of the referential that the person
//! may see (a coordinator: their région's).
//!
//! A GET form, like the simulator: nothing changes, a report is a bookmarkable URL, and no
//! upload (no multipart body, no archive to unpack on the server) is needed. The drafts are
//! folders that whoever runs the server puts there (a checkout of the programme's repository,
//! say); the page offers their names and loads only a name it listed.

use super::simulateur::TextField;
use super::{render, require_user, thousands, PageResult};
use crate::ctx::Ctx;
use crate::error::extract::PageQuery;
use crate::error::PageError;
use crate::layout::{Crumb, Layout};
use askama::Template;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use guichet_app::error::AppError;
use guichet_app::impact::{
    changes_csv, describe, french_gain, DraftError, ImpactInput, ImpactReport, ImpactScope, Tally,
    DOSSIERS_NOTE, ELIGIBLE_NOTE,
};
use guichet_app::App;
use guichet_domain::Cents;
use serde::Deserialize;
use std::sync::Arc;

const PATH: &str = "/admin/impact";

/// Changed applicants shown per page (the CSV export has them all).
const PER_PAGE: usize = 100;

#[derive(Debug, Default, Deserialize)]
pub struct Params {
    brouillon: Option<String>,
    mesure: Option<String>,
    cout: Option<String>,
    date_depot: Option<String>,
    page: Option<String>,
}

impl Params {
    fn sent(&self) -> bool {
        self.brouillon.is_some()
    }

    fn input(&self) -> ImpactInput {
        ImpactInput {
            mesures: self.mesure.iter().cloned().collect(),
            cout: self.cout.clone(),
            date_depot: self.date_depot.clone(),
        }
    }

    /// The query string of this report (for the pages and the export), without `page`.
    fn query(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("brouillon", &self.brouillon),
            ("mesure", &self.mesure),
            ("cout", &self.cout),
            ("date_depot", &self.date_depot),
        ] {
            if let Some(v) = v {
                q.append_pair(k, v);
            }
        }
        q.finish()
    }
}

pub struct SelectOption {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

pub struct TallyView {
    pub code: String,
    pub name: String,
    pub evaluated: String,
    pub eligible_before: String,
    pub eligible_after: String,
    pub gained: String,
    pub lost: String,
    pub modified: String,
    pub total_before: String,
    pub total_after: String,
}

impl TallyView {
    fn new(code: String, name: String, t: &Tally) -> Self {
        let n = |v: u64| thousands(i64::try_from(v).unwrap_or(i64::MAX));
        TallyView {
            code,
            name,
            evaluated: n(t.evalues),
            eligible_before: n(t.eligibles_avant),
            eligible_after: n(t.eligibles_apres),
            gained: n(t.devenus_eligibles),
            lost: n(t.devenus_ineligibles),
            modified: n(t.modifies),
            total_before: Cents::new(t.montant_avant_centimes).to_string(),
            total_after: Cents::new(t.montant_apres_centimes).to_string(),
        }
    }
}

pub struct MeasureView {
    pub id: String,
    pub anchor: String,
    pub regions: Vec<TallyView>,
    pub departements: Vec<TallyView>,
}

pub struct ChangeView {
    pub measure: String,
    pub reference: String,
    pub name: String,
    pub population: String,
    pub before: String,
    pub after: String,
    pub gain: String,
}

pub struct ReportView {
    pub title: String,
    pub versions: String,
    pub scope: String,
    pub applicants: String,
    pub project: String,
    pub measures: Vec<TallyView>,
    pub territories: Vec<MeasureView>,
    pub changes: Vec<ChangeView>,
    pub changes_total: String,
    pub first: usize,
    pub last: usize,
    pub previous: Option<String>,
    pub next: Option<String>,
    pub export: String,
}

#[derive(Template)]
#[template(path = "pages/impact.html")]
struct ImpactTemplate {
    layout: Layout,
    /// Why no draft can be picked (no drafts directory, or an empty one).
    unavailable: Option<String>,
    drafts: Vec<SelectOption>,
    draft_error: Option<String>,
    measures: Vec<SelectOption>,
    cout: TextField,
    date_depot: TextField,
    /// The draft's diagnostics when it does not load.
    diagnostics: Vec<String>,
    eligible_note: &'static str,
    dossiers_note: &'static str,
    report: Option<ReportView>,
}

fn scope_of(ctx: &Ctx) -> Result<ImpactScope, PageError> {
    let u = require_user(ctx, PATH)?;
    Ok(ImpactScope::for_principal(&u.principal)?)
}

/// The report a request asks for: `Ok(None)` when the form was not sent.
enum Outcome {
    Report(Box<ImpactReport>),
    /// A field to correct: (field, message).
    Field(&'static str, String),
    Diagnostics(Vec<String>),
}

async fn compute(app: &App, p: &Params, scope: ImpactScope) -> Result<Outcome, PageError> {
    let name = p.brouillon.as_deref().unwrap_or_default().trim();
    if name.is_empty() {
        return Ok(Outcome::Field(
            "brouillon",
            "choisissez le brouillon à comparer".into(),
        ));
    }
    let draft = match app.impact().load_draft(name) {
        Ok(d) => d,
        Err(DraftError::Invalid(d)) => return Ok(Outcome::Diagnostics(d)),
        Err(DraftError::App(AppError::Invalid(m))) => return Ok(Outcome::Field("brouillon", m)),
        Err(DraftError::App(e)) => return Err(e.into()),
    };
    match app
        .impact()
        .programme_impact(app.programme.clone(), Arc::new(draft), &p.input(), scope)
        .await
    {
        Ok(r) => Ok(Outcome::Report(Box::new(r))),
        Err(AppError::Invalid(m)) => {
            let field = if m.contains("coût") {
                "cout"
            } else if m.contains("date") {
                "date_depot"
            } else if m.contains("mesure") {
                "mesure"
            } else {
                "brouillon"
            };
            Ok(Outcome::Field(field, m))
        }
        Err(e) => Err(e.into()),
    }
}

fn report_view(r: &ImpactReport, p: &Params) -> ReportView {
    let query = p.query();
    let total = r.changements.len();
    let pages = total.div_ceil(PER_PAGE).max(1);
    let page = p
        .page
        .as_deref()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(1)
        .min(pages);
    let start = (page - 1) * PER_PAGE;
    let end = (start + PER_PAGE).min(total);
    let link = |n: usize| format!("{PATH}?{query}&page={n}#demandeurs");
    ReportView {
        title: format!(
            "Impact du brouillon « {} »",
            p.brouillon.as_deref().unwrap_or_default()
        ),
        versions: format!(
            "{} (en vigueur) → {} (brouillon)",
            r.version_avant, r.version_apres
        ),
        scope: r.perimetre_nom.clone(),
        applicants: thousands(i64::try_from(r.demandeurs).unwrap_or(i64::MAX)),
        project: format!(
            "dépôt le {} ; {}",
            r.date_depot.format("%d/%m/%Y"),
            match r.cout_centimes {
                Some(c) => format!("projet de {} (une ligne « prestation »)", Cents::new(c)),
                None => "sans coût de projet : aucun montant n’est calculé".into(),
            }
        ),
        measures: r
            .mesures
            .iter()
            .map(|m| TallyView::new(m.mesure.clone(), m.nom.clone(), &m.total))
            .collect(),
        territories: r
            .mesures
            .iter()
            .filter(|m| m.total.changes() > 0)
            .map(|m| {
                let rows = |v: &[guichet_app::impact::TerritoryTally]| {
                    v.iter()
                        .filter(|t| t.tally.changes() > 0)
                        .map(|t| {
                            TallyView::new(
                                t.code.clone().unwrap_or_else(|| "—".into()),
                                t.nom.clone(),
                                &t.tally,
                            )
                        })
                        .collect()
                };
                MeasureView {
                    anchor: format!("territoires-{}", m.mesure.replace('.', "-")),
                    id: m.mesure.clone(),
                    regions: rows(&m.regions),
                    departements: rows(&m.departements),
                }
            })
            .collect(),
        changes: r.changements[start..end]
            .iter()
            .map(|c| ChangeView {
                measure: c.mesure.clone(),
                reference: c.reference.clone(),
                name: c.nom.clone(),
                population: thousands(c.population),
                before: describe(&c.avant),
                after: describe(&c.apres),
                gain: french_gain(c.ecart_centimes),
            })
            .collect(),
        changes_total: thousands(i64::try_from(total).unwrap_or(i64::MAX)),
        first: if total == 0 { 0 } else { start + 1 },
        last: end,
        previous: (page > 1).then(|| link(page - 1)),
        next: (page < pages).then(|| link(page + 1)),
        export: format!("{PATH}/export.csv?{query}"),
    }
}

fn field(id: &str, label: &str, hint: &str, value: Option<&String>) -> TextField {
    TextField {
        id: id.into(),
        label: label.into(),
        hint: hint.into(),
        value: value.cloned().unwrap_or_default(),
        error: None,
    }
}

pub async fn page(State(app): State<App>, ctx: Ctx, PageQuery(p): PageQuery<Params>) -> PageResult {
    let scope = scope_of(&ctx)?;
    let (drafts, unavailable) = match app.impact().drafts() {
        Ok(d) if d.is_empty() => (
            d,
            Some("Le dossier des brouillons ne contient aucun dossier de programme.".to_string()),
        ),
        Ok(d) => (d, None),
        Err(AppError::Unavailable(m)) => (Vec::new(), Some(capital(&m))),
        Err(e) => return Err(e.into()),
    };
    let mut cout = field(
        "cout",
        "Coût du projet de chaque demandeur, en euros (facultatif)",
        "Une ligne « prestation » ; sans coût, seuls l’éligibilité et les taux sont comparés.",
        p.cout.as_ref(),
    );
    let mut date_depot = field(
        "date_depot",
        "Date de dépôt (facultatif)",
        "Par défaut, aujourd’hui.",
        p.date_depot.as_ref(),
    );
    let mut draft_error = None;
    let mut measure_error = None;
    let mut diagnostics = Vec::new();
    let mut report = None;
    if p.sent() && unavailable.is_none() {
        match compute(&app, &p, scope).await? {
            Outcome::Report(r) => report = Some(report_view(&r, &p)),
            Outcome::Diagnostics(d) => diagnostics = d,
            Outcome::Field("cout", m) => cout.error = Some(m),
            Outcome::Field("date_depot", m) => date_depot.error = Some(m),
            Outcome::Field("mesure", m) => measure_error = Some(m),
            Outcome::Field(_, m) => draft_error = Some(m),
        }
    }
    let chosen = p.brouillon.as_deref().unwrap_or_default();
    let wanted = p.mesure.as_deref().unwrap_or_default();
    let mut measures = vec![SelectOption {
        value: String::new(),
        label: "Toutes les mesures".into(),
        selected: wanted.is_empty(),
    }];
    measures.extend(app.programme.measures().map(|m| SelectOption {
        value: m.id.to_string(),
        label: format!("{} : {}", m.id, m.name),
        selected: m.id.as_str() == wanted,
    }));
    if let Some(m) = measure_error {
        draft_error = Some(m);
    }
    render(&ImpactTemplate {
        layout: Layout::new(
            &ctx,
            &app,
            PATH,
            vec![
                Crumb::link("Accueil", "/"),
                Crumb::link("Mon espace", "/espace"),
                Crumb::here("Impact d’une modification du programme"),
            ],
        ),
        unavailable,
        drafts: drafts
            .into_iter()
            .map(|d| SelectOption {
                selected: d == chosen,
                label: d.clone(),
                value: d,
            })
            .collect(),
        draft_error,
        measures,
        cout,
        date_depot,
        diagnostics,
        eligible_note: ELIGIBLE_NOTE,
        dossiers_note: DOSSIERS_NOTE,
        report,
    })
}

/// A message as a sentence: capital first letter, final full stop.
fn capital(s: &str) -> String {
    format!("{}.", crate::security::capitalise(s))
}

/// Every changed applicant as CSV, for a spreadsheet.
pub async fn export(
    State(app): State<App>,
    ctx: Ctx,
    PageQuery(p): PageQuery<Params>,
) -> Result<Response, PageError> {
    let scope = scope_of(&ctx)?;
    match compute(&app, &p, scope).await? {
        Outcome::Report(r) => {
            let name = p.brouillon.as_deref().unwrap_or("brouillon");
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        // The name is one the page listed: letters, digits, '.', '-', '_'.
                        format!("attachment; filename=\"impact-{name}.csv\""),
                    ),
                ],
                // With a byte-order mark, so that spreadsheets read UTF-8.
                changes_csv(&r)?,
            )
                .into_response())
        }
        Outcome::Field(_, m) => Err(PageError::new(axum::http::StatusCode::BAD_REQUEST, m)),
        Outcome::Diagnostics(_) => Err(PageError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "le brouillon ne se charge pas : ouvrez la page d’impact pour voir ses erreurs",
        )),
    }
}
