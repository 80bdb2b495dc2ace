//! The applicant's dossiers (`/espace/dossiers`): the list of their collectivités' dossiers, a
//! new draft, the form in steps (the programme's blocks, the budget, the documents, the
//! summary), submission and the printable receipt.
//!
//! Every step is a plain form that works without JavaScript: "Enregistrer" saves the step and
//! shows the verdict again. With JavaScript, `brouillon.js` saves as the agent types (the same
//! POST, answered with the new version and the verdict panel). Access, validation and the
//! version check are the use cases' (`app.dossiers()`); nothing is decided here.

use super::{euros_input, render, require_user, PageResult};
use crate::ctx::{paris_datetime, Ctx};
use crate::error::extract::{PageForm, PagePath, PageQuery};
use crate::error::PageError;
use crate::layout::{Crumb, Layout};
use askama::Template;
use axum::extract::State as AxumState;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Json, Redirect, Response};
use guichet_app::accounts::UserView;
use guichet_app::dossiers::{Check, CoFinancing, Dossier, DraftData, ListFilter};
use guichet_app::{App, Error as AppError};
use guichet_domain::access::Action;
use guichet_domain::dossier::State;
use guichet_domain::{Cents, CollectiviteRef};
use guichet_programme::eval::{EXPENSES_FACT, MISSING_REASON};
use guichet_programme::value::french_rate;
use guichet_programme::{Block, FieldKind};
use serde::Deserialize;
use serde_json::json;

/// Co-financing lines offered empty below those already entered.
const SPARE_COFINANCING: usize = 2;

/// The header `brouillon.js` sends: answer with JSON (version and verdict panel), not a page.
const AUTOSAVE_HEADER: &str = "x-guichet-brouillon";

fn measure_name(app: &App, id: &str) -> String {
    app.programme
        .measure(id)
        .map(|m| m.name.clone())
        .unwrap_or_else(|| id.to_string())
}

pub(crate) fn dossier_href(id: i64) -> String {
    format!("/espace/dossiers/{id}")
}

pub(crate) fn require_filer<'a>(ctx: &'a Ctx, path: &str) -> Result<&'a UserView, PageError> {
    let u = require_user(ctx, path)?;
    if u.scope.can(Action::FileDossiers) {
        Ok(u)
    } else {
        Err(AppError::Forbidden.into())
    }
}

// ---------------------------------------------------------------------------------------------
// The list

pub struct DossierLine {
    /// Messages of the service not read yet.
    pub unread: usize,
    pub href: String,
    pub number: String,
    pub title: String,
    pub measure: String,
    pub applicant: String,
    pub state: &'static str,
    pub state_class: &'static str,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "pages/depot_liste.html")]
struct ListTemplate {
    layout: Layout,
    lines: Vec<DossierLine>,
    /// What the services ask now: the dossiers sent back for a correction (title, link).
    asked: Vec<(String, String)>,
}

/// A DSFR badge modifier for a state, as applicants read it.
fn state_class(s: State) -> &'static str {
    match s {
        State::Brouillon => "fr-badge--new",
        State::EnCorrection => "fr-badge--warning",
        State::Accepte => "fr-badge--success",
        State::Refuse | State::SansSuite => "fr-badge--error",
        _ => "fr-badge--info",
    }
}

pub async fn list(AxumState(app): AxumState<App>, ctx: Ctx) -> PageResult {
    let u = require_filer(&ctx, "/espace/dossiers")?;
    let rows = app
        .dossiers()
        .list(
            &u.principal,
            &ListFilter {
                state: None,
                states: &[],
                measure: None,
                departement: None,
                after_id: None,
                limit: guichet_app::dossiers::MAX_PAGE,
                followed_by: None,
                assigned_to: None,
                label: None,
            },
        )
        .await?;
    let refs: Vec<CollectiviteRef> = rows.iter().map(|r| r.applicant.clone()).collect();
    let names = app.accounts().named_collectivites(&refs).await?;
    let mut lines: Vec<DossierLine> = rows
        .iter()
        .zip(names)
        .map(|(r, (_, name))| DossierLine {
            unread: 0,
            href: dossier_href(r.id),
            number: r
                .number
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_else(|| "—".into()),
            title: r.title.clone(),
            measure: measure_name(&app, &r.measure),
            applicant: name,
            state: r.state.label(),
            state_class: state_class(r.state),
            updated: paris_datetime(r.updated_at.instant()),
        })
        .collect();
    for (line, r) in lines.iter_mut().zip(&rows) {
        if r.number.is_some() {
            line.unread = app.messages().unread(&u.principal, r.id).await?;
        }
    }
    let asked = rows
        .iter()
        .filter(|r| r.state == State::EnCorrection)
        .map(|r| {
            (
                r.title.clone(),
                format!("{}?etape=depot", dossier_href(r.id)),
            )
        })
        .rev()
        .collect();
    lines.reverse();
    render(&ListTemplate {
        layout: Layout::new(
            &ctx,
            &app,
            "/espace/dossiers",
            vec![
                Crumb::link("Accueil", "/"),
                Crumb::link("Mon espace", "/espace"),
                Crumb::here("Mes dossiers"),
            ],
        ),
        lines,
        asked,
    })
}

// ---------------------------------------------------------------------------------------------
// A new draft

pub struct Option_ {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

pub struct MeasureGroup {
    pub label: String,
    pub options: Vec<Option_>,
}

/// The new-draft form: the measure, the collectivité, the title, and what a simulation
/// carried (`cout`, `date_fin`, `depense_*`, `fait_*`, kept as hidden fields).
#[derive(Default)]
pub struct NewForm {
    mesure: String,
    collectivite: String,
    titre: String,
    carried: Vec<(String, String)>,
}

impl NewForm {
    fn of(pairs: Vec<(String, String)>) -> NewForm {
        let mut f = NewForm::default();
        for (k, v) in pairs {
            match k.as_str() {
                "mesure" => f.mesure = v,
                "collectivite" | "demandeur" => f.collectivite = v,
                "titre" => f.titre = v,
                "cout" | "date_fin" => f.carried.push((k, v)),
                _ if k.starts_with("depense_") || k.starts_with("fait_") => f.carried.push((k, v)),
                _ => {}
            }
        }
        // A simulation's values only (a page cannot carry more than its form had).
        f.carried.truncate(100);
        f
    }
}

/// A draft's content from what a simulation carried: expenses (or the cost as one
/// `prestation` line, as the simulator counts it), the end date, and each fact into the
/// form's field that feeds it. Values that do not parse are left out (the agent types them).
fn prefill(app: &App, measure: &str, carried: &[(String, String)]) -> DraftData {
    let mut d = DraftData::default();
    let rules = &app.programme.rules;
    let fields: Vec<&guichet_programme::Field> = app
        .programme
        .form
        .blocks_for(measure)
        .flat_map(|b| b.fields.iter())
        .collect();
    let mut cost = None;
    for (k, v) in carried {
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        if let Some(cat) = k.strip_prefix("depense_") {
            if let (Some(_), Ok(amount)) = (rules.category(cat), Cents::parse_euros(v)) {
                d.depenses.insert(cat.to_string(), amount);
            }
        } else if k == "cout" {
            cost = Cents::parse_euros(v).ok();
        } else {
            let fact = k.strip_prefix("fait_").unwrap_or(k);
            for f in fields.iter().filter(|f| f.fact.as_deref() == Some(fact)) {
                d.champs.insert(f.id.clone(), v.to_string());
            }
        }
    }
    if let (true, Some(c)) = (d.depenses.is_empty(), cost) {
        if rules.category("prestation").is_some() {
            d.depenses.insert("prestation".into(), c);
        }
    }
    d
}

#[derive(Template)]
#[template(path = "pages/depot_nouveau.html")]
struct NewTemplate {
    layout: Layout,
    groups: Vec<MeasureGroup>,
    collectivites: Vec<Option_>,
    title: String,
    carried: Vec<(String, String)>,
    error: Option<String>,
}

/// The axis a measure id belongs to (`axe3.v1.expert` → `axe3`), in words.
fn axis_label(id: &str) -> String {
    let axis = id.split('.').next().unwrap_or(id);
    match axis.strip_prefix("axe") {
        Some(n) => format!("Axe {n}"),
        None => axis.to_string(),
    }
}

async fn new_page(
    app: &App,
    ctx: &Ctx,
    u: &UserView,
    form: &NewForm,
    error: Option<String>,
) -> PageResult {
    let mut groups: Vec<MeasureGroup> = Vec::new();
    for m in app.programme.measures() {
        let label = axis_label(m.id.as_str());
        let option = Option_ {
            value: m.id.to_string(),
            label: m.name.clone(),
            selected: form.mesure.trim() == m.id.as_str(),
        };
        match groups.last_mut() {
            Some(g) if g.label == label => g.options.push(option),
            _ => groups.push(MeasureGroup {
                label,
                options: vec![option],
            }),
        }
    }
    let collectivites = app
        .accounts()
        .named_collectivites(&u.principal.collectivites)
        .await?
        .into_iter()
        .map(|(r, name)| Option_ {
            selected: form.collectivite.trim() == r.to_string(),
            value: r.to_string(),
            label: name,
        })
        .collect();
    render(&NewTemplate {
        layout: Layout::new(
            ctx,
            app,
            "/espace/dossiers/nouveau",
            vec![
                Crumb::link("Accueil", "/"),
                Crumb::link("Mes dossiers", "/espace/dossiers"),
                Crumb::here("Nouveau dossier"),
            ],
        ),
        groups,
        collectivites,
        title: form.titre.clone(),
        carried: form.carried.clone(),
        error,
    })
}

pub async fn new_form(
    AxumState(app): AxumState<App>,
    ctx: Ctx,
    PageQuery(pairs): PageQuery<Vec<(String, String)>>,
) -> PageResult {
    // Back here after logging in, with the same query.
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter())
        .finish();
    let path = if query.is_empty() {
        "/espace/dossiers/nouveau".to_string()
    } else {
        format!("/espace/dossiers/nouveau?{query}")
    };
    let u = require_filer(&ctx, &path)?;
    let form = NewForm::of(pairs);
    new_page(&app, &ctx, u, &form, None).await
}

pub async fn create(
    AxumState(app): AxumState<App>,
    ctx: Ctx,
    PageForm(pairs): PageForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let form = NewForm::of(pairs);
    let u = require_filer(&ctx, "/espace/dossiers/nouveau")?;
    let collectivite = if form.collectivite.trim().is_empty() {
        match u.principal.collectivites.as_slice() {
            [only] => Ok(only.clone()),
            _ => Err(AppError::Invalid(
                "choisissez la collectivité qui dépose le dossier".into(),
            )),
        }
    } else {
        CollectiviteRef::parse(form.collectivite.trim()).map_err(|_| {
            AppError::Invalid("choisissez la collectivité qui dépose le dossier".into())
        })
    };
    let result = match (collectivite, form.mesure.trim()) {
        (_, "") => Err(AppError::Invalid(
            "choisissez la mesure dont relève le projet".into(),
        )),
        (Ok(c), m) => {
            app.dossiers()
                .create_draft(&u.principal, m, &c, &form.titre)
                .await
        }
        (Err(e), _) => Err(e),
    };
    match result {
        Ok(d) => {
            // What the simulation carried: saved at once, or left for the agent to type.
            let mut data = prefill(&app, &d.row.measure, &form.carried);
            if data != DraftData::default() {
                data.champs.insert("titre".into(), d.row.title.clone());
                match app
                    .dossiers()
                    .update_draft(&u.principal, d.row.id, d.row.version, data)
                    .await
                {
                    Ok(_) | Err(AppError::Invalid(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(Redirect::to(&dossier_href(d.row.id)).into_response())
        }
        Err(e @ (AppError::Invalid(_) | AppError::NotFound(_))) => {
            Ok(
                new_page(&app, &ctx, u, &form, Some(capitalise(&e.to_string())))
                    .await?
                    .into_response(),
            )
        }
        Err(e) => Err(e.into()),
    }
}

fn capitalise(s: &str) -> String {
    crate::security::capitalise(s)
}

// ---------------------------------------------------------------------------------------------
// The steps

#[derive(Clone, Copy, PartialEq, Eq)]
enum StepKind {
    Block(usize),
    Budget,
    Documents,
    Summary,
}

struct StepDef<'a> {
    slug: String,
    title: String,
    kind: StepKind,
    block: Option<&'a Block>,
}

fn steps<'a>(app: &'a App, measure: &str) -> Vec<StepDef<'a>> {
    let mut out: Vec<StepDef<'a>> = app
        .programme
        .form
        .blocks_for(measure)
        .enumerate()
        .map(|(i, b)| StepDef {
            slug: b.id.clone(),
            title: b.title.clone(),
            kind: StepKind::Block(i),
            block: Some(b),
        })
        .collect();
    for (slug, title, kind) in [
        ("budget", "Budget et cofinancements", StepKind::Budget),
        ("pieces", "Pièces justificatives", StepKind::Documents),
        ("depot", "Récapitulatif et dépôt", StepKind::Summary),
    ] {
        out.push(StepDef {
            slug: slug.into(),
            title: title.into(),
            kind,
            block: None,
        });
    }
    out
}

pub struct StepLink {
    pub href: String,
    pub title: String,
    pub current: bool,
}

pub struct FieldView {
    pub id: String,
    pub name: String,
    pub label: String,
    pub hint: String,
    /// texte, texte_long, nombre, montant, date, booleen, choix, communes, courriel,
    /// telephone, liste
    pub kind: &'static str,
    pub value: String,
    pub options: Vec<Option_>,
    pub required: bool,
    pub max_chars: String,
}

pub struct ExpenseInput {
    pub id: String,
    pub name: String,
    pub label: String,
    pub value: String,
}

pub struct CoFinancingInput {
    pub index: usize,
    pub source: String,
    pub amount: String,
}

pub struct MissingLink {
    pub text: String,
    pub href: Option<String>,
}

/// What the engine says of the draft, in words an applicant reads: no identifiers.
pub struct Panel {
    pub status: &'static str,
    pub status_class: &'static str,
    pub amount: Option<String>,
    pub amount_max: Option<String>,
    pub rate: Option<String>,
    pub base: Option<String>,
    pub reasons: Vec<String>,
    pub missing: Vec<MissingLink>,
    pub assumptions: Vec<String>,
    pub excluded: Vec<String>,
    pub error: Option<String>,
    pub complete: bool,
}

#[derive(Template)]
#[template(path = "components/panneau_depot.html")]
struct PanelTemplate<'a> {
    panel: &'a Panel,
}

pub struct SummaryBlock {
    pub title: String,
    pub href: String,
    pub fields: Vec<(String, String)>,
}

pub struct DocumentLine {
    pub label: String,
    pub description: String,
    pub required: bool,
    /// Whether a document of this kind is attached.
    pub attached: bool,
}

/// An attached document as the pages list it.
pub struct PieceView {
    pub id: i64,
    pub kind: String,
    pub name: String,
    pub size: String,
    pub href: String,
}

/// A piece's size in words: « 245 Ko », « 3,2 Mo ».
fn size_words(bytes: i64) -> String {
    if bytes < 1024 * 1024 {
        format!("{} Ko", (bytes + 1023) / 1024)
    } else {
        let tenths = (bytes * 10 + 512 * 1024) / (1024 * 1024);
        format!("{},{} Mo", tenths / 10, tenths % 10)
    }
}

pub(crate) fn piece_views(
    app: &App,
    dossier_id: i64,
    pieces: &[guichet_app::pieces::PieceRow],
) -> Vec<PieceView> {
    pieces
        .iter()
        .map(|p| PieceView {
            id: p.id,
            kind: app
                .programme
                .form
                .document(&p.kind)
                .map(|k| k.label.clone())
                .unwrap_or_else(|| p.kind.clone()),
            name: p.filename.clone(),
            size: size_words(p.size),
            href: format!("/dossiers/{dossier_id}/pieces/{}", p.id),
        })
        .collect()
}

pub struct HistoryLine {
    pub at: String,
    pub to: &'static str,
    pub message: Option<String>,
}

#[derive(Template)]
#[template(path = "pages/depot_dossier.html")]
struct DossierTemplate {
    layout: Layout,
    id: i64,
    title: String,
    measure: String,
    applicant: String,
    state: &'static str,
    state_class: &'static str,
    number: Option<String>,
    editable: bool,
    resubmission: bool,
    correction: Option<String>,
    version: i64,
    step_slug: String,
    step_title: String,
    step_index: usize,
    step_count: usize,
    next_title: Option<String>,
    next_slug: Option<String>,
    previous_slug: Option<String>,
    steps: Vec<StepLink>,
    is_block: bool,
    is_budget: bool,
    is_documents: bool,
    is_summary: bool,
    fields: Vec<FieldView>,
    departement: Option<Vec<Option_>>,
    expenses: Vec<ExpenseInput>,
    cofinancing: Vec<CoFinancingInput>,
    documents: Vec<DocumentLine>,
    summary: Vec<SummaryBlock>,
    expenses_total: String,
    panel_html: String,
    error: Option<String>,
    saved: bool,
    history: Vec<HistoryLine>,
    pieces: Vec<PieceView>,
    thread: Vec<super::messages::ThreadLine>,
    thread_action: String,
    piece_kinds: Vec<Option_>,
    accepted: String,
    max_mb: usize,
}

#[derive(Default, Deserialize)]
pub struct StepQuery {
    etape: Option<String>,
    enregistre: Option<String>,
}

fn field_kind(k: &FieldKind) -> &'static str {
    match k {
        FieldKind::Text => "texte",
        FieldKind::LongText => "texte_long",
        FieldKind::Number => "nombre",
        FieldKind::Amount => "montant",
        FieldKind::Date => "date",
        FieldKind::Boolean => "booleen",
        FieldKind::Choice(_) => "choix",
        FieldKind::Communes => "communes",
        FieldKind::Email => "courriel",
        FieldKind::Phone => "telephone",
        FieldKind::Checklist(_) => "liste",
    }
}

/// A field's value in words for the summary.
fn value_words(kind: &FieldKind, v: &str) -> String {
    match kind {
        FieldKind::Boolean => match v {
            "oui" => "Oui".into(),
            "non" => "Non".into(),
            other => other.to_string(),
        },
        FieldKind::Date => chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map(|d| d.format("%d/%m/%Y").to_string())
            .unwrap_or_else(|_| v.to_string()),
        FieldKind::Checklist(_) => v.lines().collect::<Vec<_>>().join(" ; "),
        _ => v.to_string(),
    }
}

/// The step (slug) whose form answers an engine fact, if any.
fn step_of_fact(app: &App, measure: &str, fact: &str) -> Option<String> {
    if fact == EXPENSES_FACT {
        return Some("budget".into());
    }
    app.programme
        .form
        .blocks_for(measure)
        .find(|b| b.fields.iter().any(|f| f.fact.as_deref() == Some(fact)))
        .map(|b| b.id.clone())
}

fn panel(app: &App, d: &Dossier, check: &Check) -> Panel {
    let id = d.row.id;
    let measure = d.row.measure.as_str();
    let mut missing: Vec<MissingLink> = check
        .missing_fields
        .iter()
        .map(|f| MissingLink {
            text: format!("{} ({})", f.libelle, f.bloc),
            href: app
                .programme
                .form
                .blocks_for(measure)
                .find(|b| b.fields.iter().any(|x| x.id == f.champ))
                .map(|b| format!("{}?etape={}#champ-{}", dossier_href(id), b.id, f.champ)),
        })
        .collect();
    let mut p = Panel {
        status: "À compléter",
        status_class: "fr-badge--warning",
        amount: None,
        amount_max: None,
        rate: None,
        base: None,
        reasons: vec![],
        missing: vec![],
        assumptions: vec![],
        excluded: vec![],
        error: None,
        complete: check.is_complete(),
    };
    match &check.evaluation {
        Err(e) => {
            p.status = "Non évaluable";
            p.status_class = "fr-badge--info";
            p.error = Some(capitalise(e));
        }
        Ok(ev) => {
            for m in &ev.missing {
                if check
                    .missing_fields
                    .iter()
                    .any(|f| f.fait.as_deref() == Some(m.nom.as_str()))
                {
                    continue;
                }
                missing.push(MissingLink {
                    text: m.question.clone().unwrap_or_else(|| m.titre.clone()),
                    href: step_of_fact(app, measure, &m.nom)
                        .map(|s| format!("{}?etape={s}", dossier_href(id))),
                });
            }
            p.reasons = ev
                .reasons
                .iter()
                .filter(|r| r.code != MISSING_REASON)
                .map(|r| r.message.clone())
                .collect();
            let only_missing = ev.reasons.iter().all(|r| r.code == MISSING_REASON);
            (p.status, p.status_class) = if ev.eligible && missing.is_empty() {
                ("Éligible", "fr-badge--success")
            } else if ev.eligible || only_missing {
                ("À compléter", "fr-badge--warning")
            } else {
                ("Non éligible", "fr-badge--error")
            };
            if ev.eligible || only_missing {
                p.amount = ev.amount.map(|c| c.to_string());
                p.amount_max = ev
                    .amount_max
                    .filter(|m| Some(*m) != ev.amount)
                    .map(|c| c.to_string());
                p.base = ev.base.map(|c| c.to_string());
                p.rate = match (ev.rate, ev.rate_max) {
                    (Some(r), Some(max)) if r != max => Some(format!(
                        "{} (jusqu’à {} à titre exceptionnel)",
                        french_rate(r),
                        french_rate(max)
                    )),
                    (Some(r), _) => Some(french_rate(r)),
                    (None, Some(max)) => Some(format!("jusqu’à {}", french_rate(max))),
                    (None, None) => None,
                };
            }
            p.assumptions = ev
                .assumptions
                .iter()
                .map(|a| format!("{} : {}", a.titre, a.valeur))
                .collect();
            p.excluded = ev
                .expenses
                .iter()
                .filter(|e| e.retenu_centimes < e.montant_centimes)
                .map(|e| {
                    let kept = Cents::new(e.retenu_centimes);
                    let why = e.motif.clone().unwrap_or_default();
                    if e.retenu_centimes == 0 {
                        format!("{} : non retenue{}", e.libelle, with_reason(&why))
                    } else {
                        format!("{} : {kept} retenus{}", e.libelle, with_reason(&why))
                    }
                })
                .collect();
        }
    }
    for doc in &check.missing_documents {
        missing.push(MissingLink {
            text: format!("Pièce à joindre : {doc}"),
            href: Some(format!("{}?etape=pieces", dossier_href(id))),
        });
    }
    p.missing = missing;
    p
}

fn with_reason(why: &str) -> String {
    if why.is_empty() {
        String::new()
    } else {
        format!(" ({why})")
    }
}

fn panel_html(p: &Panel) -> Result<String, PageError> {
    Ok(PanelTemplate { panel: p }.render()?)
}

/// The page of one dossier at one step, with `data` as the form shows it (the saved content,
/// or what was just typed when it could not be saved) and the error to say.
#[allow(clippy::too_many_arguments)]
async fn dossier_page(
    app: &App,
    ctx: &Ctx,
    u: &UserView,
    d: &Dossier,
    data: &DraftData,
    step: Option<&str>,
    error: Option<String>,
    saved: bool,
) -> PageResult {
    let id = d.row.id;
    let measure = d.row.measure.as_str();
    let all = steps(app, measure);
    let index = match step {
        None => 0,
        Some(slug) => all.iter().position(|s| s.slug == slug).ok_or_else(|| {
            AppError::Invalid(format!(
                "étape inconnue : « {} »",
                slug.chars().take(40).collect::<String>()
            ))
        })?,
    };
    let current = &all[index];
    let check = app.dossiers().check(&u.principal, id).await?;
    let editable = matches!(d.row.state, State::Brouillon | State::EnCorrection);
    let fields = match current.block {
        Some(b) => b
            .fields
            .iter()
            .map(|f| {
                let value = data.champs.get(&f.id).cloned().unwrap_or_else(|| {
                    if f.id == "titre" {
                        d.row.title.clone()
                    } else {
                        String::new()
                    }
                });
                let options = match &f.kind {
                    FieldKind::Choice(values) => values
                        .iter()
                        .map(|v| Option_ {
                            value: v.clone(),
                            label: v.clone(),
                            selected: *v == value,
                        })
                        .collect(),
                    FieldKind::Checklist(values) => values
                        .iter()
                        .map(|v| Option_ {
                            value: v.clone(),
                            label: v.clone(),
                            selected: value.lines().any(|l| l.trim() == v),
                        })
                        .collect(),
                    _ => vec![],
                };
                let mut hint = f.help.clone().unwrap_or_default();
                let extra = match f.kind {
                    FieldKind::Date => "Format : AAAA-MM-JJ, par exemple 2021-09-01.",
                    FieldKind::Amount => "En euros, par exemple 12 000 ou 12 000,50.",
                    FieldKind::Communes => {
                        "Les codes INSEE des communes, séparés par des virgules (par exemple 95127, 95500)."
                    }
                    FieldKind::Email => "Par exemple nom@commune.fr.",
                    _ => "",
                };
                if !extra.is_empty() {
                    if !hint.is_empty() {
                        hint.push(' ');
                    }
                    hint.push_str(extra);
                }
                FieldView {
                    id: format!("champ-{}", f.id),
                    name: format!("champ.{}", f.id),
                    label: f.label.clone(),
                    hint,
                    kind: field_kind(&f.kind),
                    value,
                    options,
                    required: f.required,
                    max_chars: f.max_chars.map(|m| m.to_string()).unwrap_or_default(),
                }
            })
            .collect(),
        None => vec![],
    };
    // Where the project takes place, asked on the first step of an applicant spanning several
    // départements (routing needs it).
    let departement = (index == 0 && check.applicant.departements.len() > 1).then(|| {
        check
            .applicant
            .departements
            .iter()
            .map(|code| Option_ {
                value: code.clone(),
                label: code.clone(),
                selected: data.departement.as_deref() == Some(code.as_str()),
            })
            .collect()
    });
    let categories = &app.programme.rules.categories;
    let expenses = categories
        .iter()
        .map(|c| ExpenseInput {
            id: format!("depense-{}", c.id),
            name: format!("depense.{}", c.id),
            label: c.label.clone(),
            value: data
                .depenses
                .get(&c.id)
                .map(|a| euros_input(*a))
                .unwrap_or_default(),
        })
        .collect();
    let mut cofinancing: Vec<CoFinancingInput> = data
        .cofinancements
        .iter()
        .enumerate()
        .map(|(i, c)| CoFinancingInput {
            index: i,
            source: c.source.clone(),
            amount: euros_input(c.montant),
        })
        .collect();
    let n = cofinancing.len();
    for i in n..n + SPARE_COFINANCING {
        cofinancing.push(CoFinancingInput {
            index: i,
            source: String::new(),
            amount: String::new(),
        });
    }
    let form = &app.programme.form;
    let documents = form
        .documents_for(measure, check.applicant.region.as_deref())
        .map(|r| {
            let kind = form.document(&r.document);
            DocumentLine {
                label: kind
                    .map(|k| k.label.clone())
                    .unwrap_or_else(|| r.document.clone()),
                description: kind.and_then(|k| k.description.clone()).unwrap_or_default(),
                required: r.required,
                attached: check.pieces.iter().any(|p| p.kind == r.document),
            }
        })
        .collect();
    // What may be attached: the measure's documents in the applicant's région, then « autre ».
    let mut piece_kinds: Vec<Option_> = form
        .documents_for(measure, check.applicant.region.as_deref())
        .filter_map(|r| form.document(&r.document))
        .map(|k| Option_ {
            value: k.id.clone(),
            label: k.label.clone(),
            selected: false,
        })
        .collect();
    if let Some(other) = form.document("autre") {
        if !piece_kinds.iter().any(|o| o.value == other.id) {
            piece_kinds.push(Option_ {
                value: other.id.clone(),
                label: other.label.clone(),
                selected: false,
            });
        }
    }
    let summary = app
        .programme
        .form
        .blocks_for(measure)
        .map(|b| SummaryBlock {
            title: b.title.clone(),
            href: format!("{}?etape={}", dossier_href(id), b.id),
            fields: b
                .fields
                .iter()
                .map(|f| {
                    let v = data
                        .champs
                        .get(&f.id)
                        .map(|v| v.trim())
                        .filter(|v| !v.is_empty())
                        .map(|v| value_words(&f.kind, v))
                        .unwrap_or_else(|| "Non renseigné".into());
                    (f.label.clone(), v)
                })
                .collect(),
        })
        .collect();
    let total: i64 = data.depenses.values().map(|c| c.get()).sum();
    let history_rows = app.dossiers().history(&u.principal, id).await?;
    let correction = if d.row.state == State::EnCorrection {
        history_rows
            .iter()
            .rev()
            .find(|h| h.to == State::EnCorrection)
            .and_then(|h| h.message.clone())
    } else {
        None
    };
    let history = history_rows
        .iter()
        .map(|h| HistoryLine {
            at: paris_datetime(h.at.instant()),
            to: h.to.label(),
            // Applicants read what was said to them: correction requests and decisions.
            message: match h.to {
                State::EnCorrection | State::Refuse | State::SansSuite => h.message.clone(),
                _ => None,
            },
        })
        .collect();
    let applicant = app.accounts().name_or_reference(&d.row.applicant).await?;
    let panel = panel(app, d, &check);
    let path = dossier_href(id);
    render(&DossierTemplate {
        layout: Layout::new(
            ctx,
            app,
            &path,
            vec![
                Crumb::link("Accueil", "/"),
                Crumb::link("Mes dossiers", "/espace/dossiers"),
                Crumb::here(d.row.title.clone()),
            ],
        ),
        id,
        title: d.row.title.clone(),
        measure: measure_name(app, measure),
        applicant,
        state: d.row.state.label(),
        state_class: state_class(d.row.state),
        number: d.row.number.as_ref().map(ToString::to_string),
        editable,
        resubmission: d.row.state == State::EnCorrection,
        correction,
        version: d.row.version,
        step_slug: current.slug.clone(),
        step_title: current.title.clone(),
        step_index: index + 1,
        step_count: all.len(),
        next_title: all.get(index + 1).map(|s| s.title.clone()),
        next_slug: all.get(index + 1).map(|s| s.slug.clone()),
        previous_slug: index.checked_sub(1).map(|i| all[i].slug.clone()),
        steps: all
            .iter()
            .enumerate()
            .map(|(i, s)| StepLink {
                href: format!("{path}?etape={}", s.slug),
                title: s.title.clone(),
                current: i == index,
            })
            .collect(),
        is_block: matches!(current.kind, StepKind::Block(_)),
        is_budget: current.kind == StepKind::Budget,
        is_documents: current.kind == StepKind::Documents,
        is_summary: current.kind == StepKind::Summary,
        fields,
        departement,
        expenses,
        cofinancing,
        documents,
        summary,
        expenses_total: Cents::new(total).to_string(),
        panel_html: panel_html(&panel)?,
        error,
        saved,
        history,
        pieces: piece_views(app, id, &check.pieces),
        thread: super::messages::lines(app, u, id).await?,
        thread_action: if d.row.number.is_some() {
            format!("/espace/dossiers/{id}/messages")
        } else {
            String::new()
        },
        piece_kinds,
        accepted: guichet_app::pieces::accepted_labels(),
        max_mb: app.config.upload_max_bytes / (1024 * 1024),
    })
}

/// A step of the dossier shown with an error (an upload or a removal refused).
pub(crate) async fn show_step(
    app: &App,
    ctx: &Ctx,
    u: &UserView,
    id: i64,
    step: &str,
    error: String,
) -> PageResult {
    let d = app.dossiers().get(&u.principal, id).await?;
    dossier_page(
        app,
        ctx,
        u,
        &d,
        &d.data,
        Some(step),
        Some(capitalise(&error)),
        false,
    )
    .await
}

pub async fn dossier(
    AxumState(app): AxumState<App>,
    ctx: Ctx,
    PagePath(id): PagePath<i64>,
    PageQuery(q): PageQuery<StepQuery>,
) -> PageResult {
    let u = require_filer(&ctx, &dossier_href(id))?;
    let d = app.dossiers().get(&u.principal, id).await?;
    dossier_page(
        &app,
        &ctx,
        u,
        &d,
        &d.data,
        q.etape.as_deref().filter(|s| !s.is_empty()),
        None,
        q.enregistre.is_some(),
    )
    .await
}

/// Applies one step's inputs to the draft's content: the step's fields (an absent one is
/// emptied: a radio left unset, a checklist with nothing ticked), or the budget.
fn apply_step(
    app: &App,
    step: &StepDef<'_>,
    form: &[(String, String)],
    mut data: DraftData,
) -> Result<DraftData, AppError> {
    let get = |name: &str| -> Vec<&str> {
        form.iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    match step.kind {
        StepKind::Block(_) => {
            let Some(block) = step.block else {
                return Ok(data);
            };
            for f in &block.fields {
                let values = get(&format!("champ.{}", f.id));
                let value = match f.kind {
                    FieldKind::Checklist(_) => values.join("\n"),
                    _ => values
                        .first()
                        .map(|v| v.trim().to_string())
                        .unwrap_or_default(),
                };
                if value.is_empty() {
                    data.champs.remove(&f.id);
                } else {
                    data.champs.insert(f.id.clone(), value);
                }
            }
            if let Some(dep) = get("departement").first() {
                data.departement = Some(dep.trim().to_string()).filter(|d| !d.is_empty());
            }
        }
        StepKind::Budget => {
            for c in &app.programme.rules.categories {
                let raw = get(&format!("depense.{}", c.id))
                    .first()
                    .map(|v| v.trim().to_string())
                    .unwrap_or_default();
                if raw.is_empty() {
                    data.depenses.remove(&c.id);
                    continue;
                }
                let cents = Cents::parse_euros(&raw)
                    .map_err(|e| AppError::Invalid(format!("dépense « {} » : {e}", c.label)))?;
                data.depenses.insert(c.id.clone(), cents);
            }
            let mut lines = Vec::new();
            for i in 0.. {
                let source = get(&format!("cofinancement.{i}.source"));
                let amount = get(&format!("cofinancement.{i}.montant"));
                if source.is_empty() && amount.is_empty() {
                    break;
                }
                let source = source.first().map(|s| s.trim()).unwrap_or_default();
                let amount = amount.first().map(|s| s.trim()).unwrap_or_default();
                match (source.is_empty(), amount.is_empty()) {
                    (true, true) => continue,
                    (false, false) => {
                        let montant = Cents::parse_euros(amount).map_err(|e| {
                            AppError::Invalid(format!("cofinancement « {source} » : {e}"))
                        })?;
                        lines.push(CoFinancing {
                            source: source.to_string(),
                            montant,
                        });
                    }
                    (true, false) => {
                        return Err(AppError::Invalid(format!(
                            "cofinancement de {amount} € : indiquez qui le finance"
                        )))
                    }
                    (false, true) => {
                        return Err(AppError::Invalid(format!(
                            "cofinancement « {source} » : indiquez son montant"
                        )))
                    }
                }
            }
            data.cofinancements = lines;
        }
        StepKind::Documents | StepKind::Summary => {}
    }
    Ok(data)
}

/// Saves a step. The form's `aller` says where to go next (the button pressed); `brouillon.js`
/// sends the header `X-Guichet-Brouillon` and gets JSON back.
pub async fn save(
    AxumState(app): AxumState<App>,
    ctx: Ctx,
    headers: HeaderMap,
    PagePath(id): PagePath<i64>,
    PageForm(form): PageForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let u = require_filer(&ctx, &dossier_href(id))?;
    let autosave = headers.contains_key(AUTOSAVE_HEADER);
    let field = |name: &str| -> Option<&str> {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    };
    let d = app.dossiers().get(&u.principal, id).await?;
    let all = steps(&app, &d.row.measure);
    let slug = field("etape").unwrap_or_default().to_string();
    let step = all
        .iter()
        .find(|s| s.slug == slug)
        .ok_or_else(|| AppError::Invalid("étape du formulaire manquante ou inconnue".into()))?;
    let version: i64 = field("version")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| AppError::Invalid("version du dossier manquante".into()))?;
    let typed = apply_step(&app, step, &form, d.data.clone());
    let result = match &typed {
        Ok(data) => {
            app.dossiers()
                .update_draft(&u.principal, id, version, data.clone())
                .await
        }
        Err(e) => Err(AppError::Invalid(e.to_string())),
    };
    match result {
        Ok(new_version) => {
            if autosave {
                let d = app.dossiers().get(&u.principal, id).await?;
                let check = app.dossiers().check(&u.principal, id).await?;
                let html = panel_html(&panel(&app, &d, &check))?;
                return Ok(Json(json!({"version": new_version, "panneau": html})).into_response());
            }
            let to = field("aller")
                .filter(|a| all.iter().any(|s| s.slug == *a))
                .unwrap_or(&slug);
            Ok(
                Redirect::to(&format!("{}?etape={to}&enregistre=1", dossier_href(id)))
                    .into_response(),
            )
        }
        Err(e @ (AppError::Invalid(_) | AppError::Conflict(_))) => {
            let message = match &e {
                AppError::Conflict(_) => "Le dossier a été modifié entre-temps, peut-être par un collègue : vos saisies sont affichées ci-dessous mais ne sont pas enregistrées. Vérifiez-les, puis enregistrez à nouveau.".to_string(),
                other => capitalise(&other.to_string()),
            };
            if autosave {
                let status = match e {
                    AppError::Conflict(_) => axum::http::StatusCode::CONFLICT,
                    _ => axum::http::StatusCode::BAD_REQUEST,
                };
                return Ok((status, Json(json!({"detail": message}))).into_response());
            }
            // Show what was typed, against the current version: nothing typed is lost.
            let current = app.dossiers().get(&u.principal, id).await?;
            let shown = match typed {
                Ok(data) => data,
                Err(_) => apply_lenient(step, &form, current.data.clone()),
            };
            Ok(dossier_page(
                &app,
                &ctx,
                u,
                &current,
                &shown,
                Some(&slug),
                Some(message),
                false,
            )
            .await?
            .into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// The step's inputs as typed, for showing them back after a refusal (amounts that do not
/// parse stay out: the field shows empty, and the error names it).
fn apply_lenient(step: &StepDef<'_>, form: &[(String, String)], mut data: DraftData) -> DraftData {
    if let Some(block) = step.block {
        for f in &block.fields {
            let values: Vec<&str> = form
                .iter()
                .filter(|(k, _)| *k == format!("champ.{}", f.id))
                .map(|(_, v)| v.as_str())
                .collect();
            data.champs.insert(f.id.clone(), values.join("\n"));
        }
    }
    data
}

#[derive(Deserialize)]
pub struct SubmitForm {
    #[serde(default)]
    version: String,
}

/// Submits (or resubmits after a correction), then the receipt.
pub async fn submit(
    AxumState(app): AxumState<App>,
    ctx: Ctx,
    PagePath(id): PagePath<i64>,
    PageForm(form): PageForm<SubmitForm>,
) -> Result<Response, PageError> {
    let u = require_filer(&ctx, &dossier_href(id))?;
    let version: i64 = form
        .version
        .trim()
        .parse()
        .map_err(|_| AppError::Invalid("version du dossier manquante".into()))?;
    match app.dossiers().submit(&u.principal, id, version).await {
        Ok(_) => Ok(Redirect::to(&format!("{}/recepisse", dossier_href(id))).into_response()),
        Err(e @ (AppError::Invalid(_) | AppError::Conflict(_) | AppError::NotFound(_))) => {
            let d = app.dossiers().get(&u.principal, id).await?;
            let message = match &e {
                AppError::Conflict(_) => "Le dossier a été modifié entre-temps, peut-être par un collègue : relisez le récapitulatif ci-dessous, puis déposez à nouveau.".to_string(),
                other => capitalise(&other.to_string()),
            };
            Ok(dossier_page(
                &app,
                &ctx,
                u,
                &d,
                &d.data,
                Some("depot"),
                Some(message),
                false,
            )
            .await?
            .into_response())
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------------
// The receipt

#[derive(Template)]
#[template(path = "pages/depot_recepisse.html")]
struct ReceiptTemplate {
    layout: Layout,
    id: i64,
    number: String,
    title: String,
    measure: String,
    applicant: String,
    service: String,
    submitted: String,
    state: &'static str,
    amount: Option<String>,
    base: Option<String>,
    documents: Vec<DocumentLine>,
    depositor: String,
}

pub async fn receipt(
    AxumState(app): AxumState<App>,
    ctx: Ctx,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    let path = format!("{}/recepisse", dossier_href(id));
    let u = require_filer(&ctx, &path)?;
    let d = app.dossiers().get(&u.principal, id).await?;
    let Some(number) = d.row.number.as_ref().map(ToString::to_string) else {
        return Err(AppError::NotFound(
            "ce dossier n’est pas encore déposé : il n’a pas de récépissé".into(),
        )
        .into());
    };
    let history = app.dossiers().history(&u.principal, id).await?;
    // The last filing (a resubmission after a correction gives a new receipt).
    let filing = history
        .iter()
        .rev()
        .find(|h| h.event == "depot" || h.event == "redepot");
    let depositor = match filing {
        Some(h) => h
            .actor
            .strip_prefix("user:")
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|n| *n == u.user.id)
            .map(|_| u.user.display_name.clone())
            .unwrap_or_default(),
        None => String::new(),
    };
    let submitted = filing
        .map(|h| paris_datetime(h.at.instant()))
        .or_else(|| {
            d.row
                .submitted_at
                .as_ref()
                .map(|t| paris_datetime(t.instant()))
        })
        .unwrap_or_default();
    let service = match d.row.service_id {
        Some(sid) => app
            .accounts()
            .service_name(sid)
            .await?
            .unwrap_or_else(|| "—".into()),
        None => "—".into(),
    };
    let applicant = app.accounts().name_or_reference(&d.row.applicant).await?;
    let check = app.dossiers().check(&u.principal, id).await?;
    let documents = app
        .programme
        .form
        .documents_for(&d.row.measure, check.applicant.region.as_deref())
        .map(|r| {
            let kind = app.programme.form.document(&r.document);
            DocumentLine {
                label: kind
                    .map(|k| k.label.clone())
                    .unwrap_or_else(|| r.document.clone()),
                description: String::new(),
                required: r.required,
                attached: check.pieces.iter().any(|p| p.kind == r.document),
            }
        })
        .collect();
    let euros = |c: Option<i64>| c.map(|c| Cents::new(c).to_string());
    render(&ReceiptTemplate {
        layout: Layout::new(
            &ctx,
            &app,
            &path,
            vec![
                Crumb::link("Accueil", "/"),
                Crumb::link("Mes dossiers", "/espace/dossiers"),
                Crumb::link(d.row.title.clone(), dossier_href(id)),
                Crumb::here("Récépissé"),
            ],
        ),
        id,
        number,
        title: d.row.title.clone(),
        measure: measure_name(&app, &d.row.measure),
        applicant,
        service,
        submitted,
        state: d.row.state.label(),
        amount: euros(d.verdict.as_ref().and_then(|v| v.montant_centimes)),
        base: euros(d.verdict.as_ref().and_then(|v| v.assiette_centimes)),
        documents,
        depositor,
    })
}
