//! The instructor's workspace (`/instruction`): the queue of the dossiers their services
//! instruct, by tab and filters given in the URL (so a view is a link), and the dossier page.
//! What a principal sees is decided by the use cases (`app.dossiers().queue`,
//! `instruction_file`): the scope is in their SQL, never filtered here.

use super::{render, require_user, PageResult};
use crate::ctx::{paris_datetime, Ctx};
use crate::error::extract::{PagePath, PageQuery};
use crate::layout::{Crumb, Layout};
use askama::Template;
use axum::extract::State as AxumState;
use guichet_app::dossiers::{Dossier, ListFilter};
use guichet_app::{App, Error as AppError};
use guichet_domain::dossier::{EventKind, State, FILED};
use guichet_domain::{Cents, DepartementCode};
use guichet_programme::FieldKind;
use serde::Deserialize;

/// Dossiers per page.
const PAGE: i64 = 50;

/// A tab of the queue: its slug in the URL, its label, and the states it holds.
struct TabDef {
    slug: &'static str,
    label: &'static str,
    states: &'static [State],
    /// Only the dossiers the reader follows.
    followed: bool,
}

const TABS: [TabDef; 6] = [
    TabDef {
        slug: "a-instruire",
        label: "À instruire",
        // Waiting for the instructor's work: received, or taken into instruction.
        states: &[State::Depose, State::EnInstruction],
        followed: false,
    },
    TabDef {
        slug: "suivis",
        label: "Suivis",
        states: FILED,
        followed: true,
    },
    TabDef {
        slug: "en-correction",
        label: "En correction",
        states: &[State::EnCorrection],
        followed: false,
    },
    TabDef {
        slug: "instruits",
        label: "Instruits",
        states: &[State::Instruit],
        followed: false,
    },
    TabDef {
        slug: "traites",
        label: "Traités",
        states: &[State::Accepte, State::Refuse, State::SansSuite],
        followed: false,
    },
    TabDef {
        slug: "tous",
        label: "Tous",
        states: FILED,
        followed: false,
    },
];

#[derive(Debug, Default, Deserialize)]
pub struct QueueQuery {
    onglet: Option<String>,
    etat: Option<String>,
    mesure: Option<String>,
    departement: Option<String>,
    /// `moi`: the dossiers assigned to the reader.
    assigne: Option<String>,
    /// Only the dossiers with this label.
    etiquette: Option<String>,
    apres: Option<i64>,
}

/// A parameter given and not blank.
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

pub struct Tab {
    pub label: &'static str,
    pub href: String,
    pub count: i64,
    pub current: bool,
}

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

pub struct Line {
    pub number: String,
    pub title: String,
    pub applicant: String,
    pub measure: String,
    pub state: &'static str,
    pub amount: String,
    pub submitted: String,
}

#[derive(Template)]
#[template(path = "pages/instruction.html")]
struct QueueTemplate {
    layout: Layout,
    tabs: Vec<Tab>,
    tab_label: &'static str,
    tab_slug: &'static str,
    states: Vec<Choice>,
    measures: Vec<Choice>,
    departement: String,
    filtered: bool,
    /// The « assigned to me » filter is on.
    mine: bool,
    /// The label filter's value.
    label: String,
    lines: Vec<Line>,
    first_page: Option<String>,
    next_page: Option<String>,
}

/// The queue's URL for a tab and filters.
fn queue_href(
    tab: &str,
    etat: Option<&str>,
    mesure: Option<&str>,
    dep: Option<&str>,
    assigne: Option<&str>,
    etiquette: Option<&str>,
) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("onglet", tab);
    for (k, v) in [
        ("etat", etat),
        ("mesure", mesure),
        ("departement", dep),
        ("assigne", assigne),
        ("etiquette", etiquette),
    ] {
        if let Some(v) = v {
            q.append_pair(k, v);
        }
    }
    format!("/instruction?{}", q.finish())
}

fn measure_name(app: &App, id: &str) -> String {
    app.programme
        .measure(id)
        .map(|m| m.name.clone())
        .unwrap_or_else(|| id.to_string())
}

/// The amount to show: the one granted, else the engine's at filing.
fn amount(d: &Dossier) -> String {
    d.row
        .granted_cents
        .or_else(|| d.verdict.as_ref().and_then(|v| v.montant_centimes))
        .map(|c| Cents::new(c).to_string())
        .unwrap_or_else(|| "—".into())
}

pub async fn queue(
    AxumState(app): AxumState<App>,
    ctx: Ctx,
    PageQuery(q): PageQuery<QueueQuery>,
) -> PageResult {
    let u = require_user(&ctx, "/instruction")?;
    let tab = match given(&q.onglet) {
        None => &TABS[0],
        Some(slug) => TABS.iter().find(|t| t.slug == slug).ok_or_else(|| {
            AppError::Invalid(format!(
                "onglet inconnu : « {} »",
                slug.chars().take(40).collect::<String>()
            ))
        })?,
    };
    let state = match given(&q.etat) {
        None => None,
        Some(s) => Some(
            State::parse(s)
                .ok()
                .filter(|s| *s != State::Brouillon)
                .ok_or_else(|| {
                    AppError::Invalid(format!(
                        "état inconnu : « {} »",
                        s.chars().take(40).collect::<String>()
                    ))
                })?,
        ),
    };
    let mesure = given(&q.mesure);
    if let Some(m) = mesure {
        if app.programme.measure(m).is_none() {
            return Err(AppError::Invalid(format!(
                "mesure inconnue : « {} »",
                m.chars().take(80).collect::<String>()
            ))
            .into());
        }
    }
    let departement = match given(&q.departement) {
        None => None,
        Some(d) => Some(
            DepartementCode::parse(d)
                .map_err(|_| {
                    AppError::Invalid(format!(
                        "département inconnu : « {} » (un code comme 95 ou 2A)",
                        d.chars().take(10).collect::<String>()
                    ))
                })?
                .to_string(),
        ),
    };
    let assigne = match given(&q.assigne) {
        None => None,
        Some("moi") => Some("moi"),
        Some(other) => {
            return Err(AppError::Invalid(format!(
                "filtre d’attribution inconnu : « {} » (moi)",
                other.chars().take(20).collect::<String>()
            ))
            .into())
        }
    };
    let etiquette = match given(&q.etiquette) {
        None => None,
        Some(l) => Some(guichet_app::dossiers::parse_label(l)?),
    };
    let filter = ListFilter {
        state,
        states: tab.states,
        measure: mesure,
        departement: departement.as_deref(),
        after_id: q.apres,
        limit: PAGE + 1,
        followed_by: tab.followed.then_some(u.user.id),
        assigned_to: assigne.map(|_| u.user.id),
        label: etiquette.as_deref(),
    };
    let queue = app.dossiers().queue(&u.principal, &filter).await?;
    // The « Suivis » tab's count: the reader's followed dossiers, whichever tab is open.
    let followed_count: i64 = app
        .dossiers()
        .count_by_state(
            &u.principal,
            &ListFilter {
                followed_by: Some(u.user.id),
                ..filter.clone()
            },
        )
        .await?
        .iter()
        .filter(|(s, _)| FILED.contains(s) && state.is_none_or(|f| f == *s))
        .map(|(_, n)| n)
        .sum();
    // Counts of the other tabs: without the « Suivis » condition when that tab is open.
    let counts = if tab.followed {
        app.dossiers()
            .count_by_state(
                &u.principal,
                &ListFilter {
                    followed_by: None,
                    ..filter.clone()
                },
            )
            .await?
    } else {
        queue.counts.clone()
    };
    let count_of = |states: &[State]| -> i64 {
        counts
            .iter()
            .filter(|(s, _)| states.contains(s))
            .filter(|(s, _)| state.is_none_or(|f| f == *s))
            .map(|(_, n)| n)
            .sum()
    };
    let etat = state.map(State::as_str);
    let tabs = TABS
        .iter()
        .map(|t| Tab {
            label: t.label,
            href: queue_href(
                t.slug,
                etat,
                mesure,
                departement.as_deref(),
                assigne,
                etiquette.as_deref(),
            ),
            count: if t.followed {
                followed_count
            } else {
                count_of(t.states)
            },
            current: t.slug == tab.slug,
        })
        .collect();
    let mut lines: Vec<Line> = Vec::new();
    let mut last_id = None;
    for l in queue.lines.iter().take(PAGE as usize) {
        let d = &l.dossier;
        last_id = Some(d.row.id);
        lines.push(Line {
            number: d
                .row
                .number
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            title: d.row.title.clone(),
            applicant: l.applicant_name.clone(),
            measure: measure_name(&app, &d.row.measure),
            state: d.row.state.label(),
            amount: amount(d),
            submitted: d
                .row
                .submitted_at
                .as_ref()
                .map(|t| paris_datetime(t.instant()))
                .unwrap_or_else(|| "—".into()),
        });
    }
    let here = queue_href(
        tab.slug,
        etat,
        mesure,
        departement.as_deref(),
        assigne,
        etiquette.as_deref(),
    );
    let next_page = match last_id {
        Some(id) if queue.lines.len() > PAGE as usize => Some(format!("{here}&apres={id}")),
        _ => None,
    };
    let first_page = q.apres.map(|_| here.clone());
    let states = FILED
        .iter()
        .map(|s| Choice {
            value: s.as_str().into(),
            label: s.label().into(),
            selected: state == Some(*s),
        })
        .collect();
    let measures = app
        .programme
        .measures()
        .map(|m| Choice {
            value: m.id.to_string(),
            label: m.name.clone(),
            selected: mesure == Some(m.id.as_str()),
        })
        .collect();
    render(&QueueTemplate {
        layout: Layout::new(
            &ctx,
            &app,
            "/instruction",
            vec![Crumb::link("Accueil", "/"), Crumb::here("Instruction")],
        ),
        tabs,
        tab_label: tab.label,
        tab_slug: tab.slug,
        states,
        measures,
        departement: departement.unwrap_or_default(),
        filtered: state.is_some()
            || mesure.is_some()
            || given(&q.departement).is_some()
            || assigne.is_some()
            || etiquette.is_some(),
        mine: assigne.is_some(),
        label: etiquette.clone().unwrap_or_default(),
        lines,
        first_page,
        next_page,
    })
}

pub struct Field {
    pub label: String,
    pub value: String,
}

pub struct BlockView {
    pub title: String,
    pub fields: Vec<Field>,
}

pub struct Money {
    pub label: String,
    pub amount: String,
}

pub struct Step {
    pub at: String,
    pub what: String,
    pub from: String,
    pub to: &'static str,
    pub actor: String,
    pub message: Option<String>,
    pub amount: Option<String>,
}

pub struct Verdict {
    pub eligible: bool,
    pub reasons: Vec<String>,
    pub base: Option<String>,
    pub amount: Option<String>,
    pub amount_max: Option<String>,
    pub date: String,
}

#[derive(Template)]
#[template(path = "pages/instruction_dossier.html")]
struct DossierTemplate {
    layout: Layout,
    number: String,
    title: String,
    state: &'static str,
    measure: String,
    applicant: String,
    service: String,
    submitted: String,
    programme_version: String,
    blocks: Vec<BlockView>,
    expenses: Vec<Money>,
    expenses_total: String,
    cofinancing: Vec<Money>,
    verdict: Option<Verdict>,
    granted: Option<String>,
    history: Vec<Step>,
    actions: super::decisions::Actions,
    pieces: Vec<super::depot::PieceView>,
    thread: Vec<super::messages::ThreadLine>,
    thread_action: String,
    following: bool,
    /// Private annotations: (author, when, text).
    annotations: Vec<(String, String, String)>,
    labels: Vec<String>,
    assignee: Option<String>,
    /// The instructors it may be assigned to (empty: the reader may not assign).
    assignable: Vec<(i64, String, bool)>,
    version: i64,
    done: Option<&'static str>,
    error: Option<String>,
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A field's value as typed, in words where the kind says how (yes/no, French dates).
fn field_value(kind: &FieldKind, v: &str) -> String {
    match kind {
        FieldKind::Boolean => match v {
            "oui" | "true" => "Oui".into(),
            "non" | "false" => "Non".into(),
            other => other.to_string(),
        },
        FieldKind::Date => chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map(|d| d.format("%d/%m/%Y").to_string())
            .unwrap_or_else(|_| v.to_string()),
        _ => v.to_string(),
    }
}

fn event_label(slug: &str) -> String {
    EventKind::ALL
        .iter()
        .find(|e| e.as_str() == slug)
        .map(|e| capitalised(e.label()))
        .unwrap_or_else(|| slug.to_string())
}

/// What the dossier page says above everything: an action done, or refused.
pub enum Notice {
    Done(&'static str),
    Error(String),
}

#[derive(Default, Deserialize)]
pub struct DossierQuery {
    fait: Option<String>,
}

pub async fn dossier(
    AxumState(app): AxumState<App>,
    ctx: Ctx,
    PagePath(numero): PagePath<String>,
    PageQuery(q): PageQuery<DossierQuery>,
) -> PageResult {
    let path = format!("/instruction/dossiers/{numero}");
    let u = require_user(&ctx, &path)?;
    let notice = q
        .fait
        .as_deref()
        .map(|a| Notice::Done(super::decisions::done_message(a)));
    dossier_page(&app, &ctx, u, &numero, notice).await
}

/// The dossier page again with a refused action's French sentence, nothing recorded.
pub async fn refused(
    app: &App,
    ctx: &Ctx,
    u: &guichet_app::accounts::UserView,
    numero: &str,
    e: AppError,
) -> Result<axum::response::Response, crate::error::PageError> {
    use axum::response::IntoResponse;
    let notice = Notice::Error(crate::security::capitalise(&e.to_string()));
    Ok(dossier_page(app, ctx, u, numero, Some(notice))
        .await?
        .into_response())
}

/// The dossier page, with a notice (the outcome of an action).
pub async fn dossier_page(
    app: &App,
    ctx: &Ctx,
    u: &guichet_app::accounts::UserView,
    numero: &str,
    notice: Option<Notice>,
) -> PageResult {
    let path = format!("/instruction/dossiers/{numero}");
    let file = app
        .dossiers()
        .instruction_file(&u.principal, numero)
        .await?;
    let d = &file.dossier;
    let number = d
        .row
        .number
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let data = file.frozen.as_ref().unwrap_or(&d.data);
    let blocks = app
        .programme
        .form
        .blocks_for(&d.row.measure)
        .map(|b| BlockView {
            title: b.title.clone(),
            fields: b
                .fields
                .iter()
                .map(|f| Field {
                    label: f.label.clone(),
                    value: data
                        .champs
                        .get(&f.id)
                        .map(|v| v.trim())
                        .filter(|v| !v.is_empty())
                        .map(|v| field_value(&f.kind, v))
                        .unwrap_or_else(|| "Non renseigné".into()),
                })
                .collect(),
        })
        .collect();
    let categories = &app.programme.rules.categories;
    let expenses = data
        .depenses
        .iter()
        .map(|(id, c)| Money {
            label: categories
                .iter()
                .find(|k| &k.id == id)
                .map(|k| k.label.clone())
                .unwrap_or_else(|| id.clone()),
            amount: c.to_string(),
        })
        .collect();
    let total: i64 = data.depenses.values().map(|c| c.get()).sum();
    let cofinancing = data
        .cofinancements
        .iter()
        .map(|c| Money {
            label: c.source.clone(),
            amount: c.montant.to_string(),
        })
        .collect();
    let euros = |c: Option<i64>| c.map(|c| Cents::new(c).to_string());
    let verdict = d.verdict.as_ref().map(|v| Verdict {
        eligible: v.eligible,
        reasons: v.motifs.clone(),
        base: euros(v.assiette_centimes),
        amount: euros(v.montant_centimes),
        amount_max: euros(v.montant_max_centimes),
        date: v.date.format("%d/%m/%Y").to_string(),
    });
    let history = file
        .history
        .iter()
        .map(|(h, actor)| Step {
            at: paris_datetime(h.at.instant()),
            what: event_label(&h.event),
            from: h.from.map(|s| s.label().to_string()).unwrap_or_default(),
            to: h.to.label(),
            actor: actor.clone(),
            message: h.message.clone(),
            amount: euros(h.amount_cents),
        })
        .collect();
    render(&DossierTemplate {
        layout: Layout::new(
            ctx,
            app,
            &path,
            vec![
                Crumb::link("Accueil", "/"),
                Crumb::link("Instruction", "/instruction"),
                Crumb::here(format!("Dossier {number}")),
            ],
        ),
        title: d.row.title.clone(),
        state: d.row.state.label(),
        measure: measure_name(app, &d.row.measure),
        applicant: file.applicant_name.clone(),
        service: file.service_name.clone().unwrap_or_else(|| "—".into()),
        submitted: d
            .row
            .submitted_at
            .as_ref()
            .map(|t| paris_datetime(t.instant()))
            .unwrap_or_else(|| "—".into()),
        programme_version: d.row.programme_version.clone().unwrap_or_default(),
        number,
        blocks,
        expenses,
        expenses_total: Cents::new(total).to_string(),
        cofinancing,
        verdict,
        granted: euros(d.row.granted_cents),
        history,
        actions: super::decisions::actions(&u.principal, d),
        thread: super::messages::lines(app, u, d.row.id).await?,
        following: app.dossiers().follows(&u.principal, d.row.id).await?,
        labels: app.dossiers().labels(&u.principal, d.row.id).await?,
        annotations: app
            .dossiers()
            .annotations(&u.principal, d.row.id)
            .await?
            .into_iter()
            .map(|(who, body, at)| (who, paris_datetime(at.instant()), body))
            .collect(),
        assignee: app
            .dossiers()
            .assignee(&u.principal, d.row.id)
            .await?
            .map(|(_, n)| n),
        assignable: if super::decisions::writes_as_service(&u.principal, d) {
            let current = app.dossiers().assignee(&u.principal, d.row.id).await?;
            app.dossiers()
                .assignable(&u.principal, d.row.id)
                .await?
                .into_iter()
                .map(|(id, name)| (id, name, current.as_ref().is_some_and(|(c, _)| *c == id)))
                .collect()
        } else {
            Vec::new()
        },
        thread_action: if super::decisions::writes_as_service(&u.principal, d) {
            format!("/instruction/dossiers/{numero}/messages")
        } else {
            String::new()
        },
        pieces: super::depot::piece_views(
            app,
            d.row.id,
            &app.pieces().list(&u.principal, d.row.id).await?,
        ),
        version: d.row.version,
        done: match &notice {
            Some(Notice::Done(m)) => Some(*m),
            _ => None,
        },
        error: match notice {
            Some(Notice::Error(m)) => Some(m),
            _ => None,
        },
    })
}

#[derive(Default, Deserialize)]
pub struct FollowForm {
    #[serde(default)]
    suivre: String,
}

/// `POST /instruction/dossiers/{numero}/suivre`: follow (`suivre=oui`) or stop (`non`).
pub async fn follow(
    AxumState(app): AxumState<App>,
    ctx: Ctx,
    PagePath(numero): PagePath<String>,
    crate::error::extract::PageForm(form): crate::error::extract::PageForm<FollowForm>,
) -> Result<axum::response::Response, crate::error::PageError> {
    use axum::response::IntoResponse;
    let path = format!("/instruction/dossiers/{numero}");
    let u = require_user(&ctx, &path)?;
    let file = app
        .dossiers()
        .instruction_file(&u.principal, &numero)
        .await?;
    let on = match form.suivre.as_str() {
        "oui" => true,
        "non" => false,
        _ => return Err(AppError::Invalid("suivre : oui ou non".into()).into()),
    };
    app.dossiers()
        .follow(&u.principal, file.dossier.row.id, on)
        .await?;
    let done = if on { "suivre" } else { "ne_plus_suivre" };
    Ok(axum::response::Redirect::to(&format!("{path}?fait={done}")).into_response())
}

#[derive(Default, Deserialize)]
pub struct AssignForm {
    #[serde(default)]
    instructeur: String,
}

/// `POST /instruction/dossiers/{numero}/attribuer`: to an instructor of the service (their
/// id), or to no one (empty).
pub async fn assign(
    AxumState(app): AxumState<App>,
    ctx: Ctx,
    PagePath(numero): PagePath<String>,
    crate::error::extract::PageForm(form): crate::error::extract::PageForm<AssignForm>,
) -> Result<axum::response::Response, crate::error::PageError> {
    use axum::response::IntoResponse;
    let path = format!("/instruction/dossiers/{numero}");
    let u = require_user(&ctx, &path)?;
    let file = app
        .dossiers()
        .instruction_file(&u.principal, &numero)
        .await?;
    let to = match form.instructeur.trim() {
        "" => None,
        id => Some(
            id.parse::<i64>()
                .map_err(|_| AppError::Invalid("choisissez l’instructeur dans la liste".into()))?,
        ),
    };
    match app
        .dossiers()
        .assign(&u.principal, file.dossier.row.id, to)
        .await
    {
        Ok(()) => {
            Ok(axum::response::Redirect::to(&format!("{path}?fait=attribuer")).into_response())
        }
        Err(e @ AppError::Invalid(_)) => refused(&app, &ctx, u, &numero, e).await,
        Err(e) => Err(e.into()),
    }
}

#[derive(Default, Deserialize)]
pub struct AnnotationForm {
    #[serde(default)]
    annotation: String,
}

/// `POST /instruction/dossiers/{numero}/annotations`: a private note of the service.
pub async fn annotate(
    AxumState(app): AxumState<App>,
    ctx: Ctx,
    PagePath(numero): PagePath<String>,
    crate::error::extract::PageForm(form): crate::error::extract::PageForm<AnnotationForm>,
) -> Result<axum::response::Response, crate::error::PageError> {
    use axum::response::IntoResponse;
    let path = format!("/instruction/dossiers/{numero}");
    let u = require_user(&ctx, &path)?;
    let file = app
        .dossiers()
        .instruction_file(&u.principal, &numero)
        .await?;
    match app
        .dossiers()
        .annotate(&u.principal, file.dossier.row.id, &form.annotation)
        .await
    {
        Ok(_) => Ok(
            axum::response::Redirect::to(&format!("{path}?fait=annoter#annotations"))
                .into_response(),
        ),
        Err(e @ AppError::Invalid(_)) => refused(&app, &ctx, u, &numero, e).await,
        Err(e) => Err(e.into()),
    }
}

#[derive(Default, Deserialize)]
pub struct LabelForm {
    #[serde(default)]
    etiquette: String,
    /// `retirer` takes it off; anything else puts it on.
    #[serde(default)]
    geste: String,
}

/// `POST /instruction/dossiers/{numero}/etiquettes`.
pub async fn label(
    AxumState(app): AxumState<App>,
    ctx: Ctx,
    PagePath(numero): PagePath<String>,
    crate::error::extract::PageForm(form): crate::error::extract::PageForm<LabelForm>,
) -> Result<axum::response::Response, crate::error::PageError> {
    use axum::response::IntoResponse;
    let path = format!("/instruction/dossiers/{numero}");
    let u = require_user(&ctx, &path)?;
    let file = app
        .dossiers()
        .instruction_file(&u.principal, &numero)
        .await?;
    let on = form.geste != "retirer";
    match app
        .dossiers()
        .set_label(&u.principal, file.dossier.row.id, &form.etiquette, on)
        .await
    {
        Ok(()) => {
            Ok(axum::response::Redirect::to(&format!("{path}?fait=etiquette")).into_response())
        }
        Err(e @ AppError::Invalid(_)) => refused(&app, &ctx, u, &numero, e).await,
        Err(e) => Err(e.into()),
    }
}
