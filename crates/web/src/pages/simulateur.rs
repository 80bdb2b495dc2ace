//! The public simulator: a GET form that works without JavaScript (the collectivité field is
//! improved by the autocomplete) and, once sent, every measure of the programme grouped by
//! outcome, each with its amounts, expense lines and plain-French explanation.
//!
//! The values are checked by the simulator's own parser (`SimulationInput::parse`), one field
//! at a time, so that every wrong field gets its message beside it at once, in the words the
//! CLI and the API use.

use super::collectivites::hit_line;
use super::{push_escaped, thousands, PageResult};
use crate::ctx::Ctx;
use crate::error::extract::PageQuery;
use crate::error::PageError;
use crate::layout::{Crumb, Layout};
use crate::security::capitalise;
use askama::Template;
use axum::extract::State;
use guichet_app::error::AppError;
use guichet_app::simulation::{Applicant, ApplicantRef, Simulation, SimulationInput};
use guichet_app::App;
use guichet_domain::text::fold;
use guichet_programme::eval::{EXPENSES_FACT, MISSING_REASON};
use guichet_programme::rules::Rules;
use guichet_programme::value::french_rate;
use guichet_programme::{Evaluation, Step, Type};
use std::collections::BTreeMap;

/// Any well-formed applicant: `parse` checks its syntax only, so a field can be checked alone.
const WELL_FORMED_APPLICANT: &str = "region:11";

/// Most choices offered when a typed name matches several collectivités.
const MAX_CHOICES: usize = 10;

/// What the person sent, as typed.
#[derive(Default)]
struct Sent {
    collectivite: String,
    /// `TYPE:CODE` set by the autocomplete or by an earlier answer (hidden field).
    demandeur: String,
    /// `TYPE:CODE` picked in the choice list shown without JavaScript.
    choix: String,
    cout: String,
    date_depot: Option<String>,
    date_fin: String,
    depenses: BTreeMap<String, String>,
    faits: BTreeMap<String, String>,
}

impl Sent {
    /// `None` when the form has not been sent (first visit). Only the categories and the
    /// applicant's facts the form offers are read: the referential's facts are not the
    /// visitor's to change.
    fn from_query(pairs: Vec<(String, String)>, rules: &Rules) -> Option<Sent> {
        let mut s = Sent::default();
        let mut sent = false;
        for (k, v) in pairs {
            sent |= matches!(
                k.as_str(),
                "collectivite" | "demandeur" | "choix" | "cout" | "date_depot" | "date_fin"
            ) || k.starts_with("depense_")
                || k.starts_with("fait_");
            match k.as_str() {
                "collectivite" => s.collectivite = v,
                "demandeur" => s.demandeur = v,
                "choix" => s.choix = v,
                "cout" => s.cout = v,
                "date_depot" => s.date_depot = Some(v),
                "date_fin" => s.date_fin = v,
                _ => {
                    if let Some(cat) = k.strip_prefix("depense_") {
                        if rules.category(cat).is_some() {
                            s.depenses.insert(cat.to_string(), v);
                        }
                    } else if let Some(fact) = k.strip_prefix("fait_") {
                        if asked(rules, fact) {
                            s.faits.insert(fact.to_string(), v);
                        }
                    }
                }
            }
        }
        sent.then_some(s)
    }

    fn input(&self, demandeur: &str) -> SimulationInput {
        let given = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        SimulationInput {
            mesure: None,
            demandeur: demandeur.to_string(),
            cout: given(&self.cout),
            depenses: self
                .depenses
                .iter()
                .filter(|(_, v)| !v.trim().is_empty())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            date_depot: self.date_depot.as_deref().and_then(given),
            date_fin: given(&self.date_fin),
            faits: self
                .faits
                .iter()
                .filter(|(_, v)| !v.trim().is_empty())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

/// Facts the form asks: those the applicant supplies.
fn asked(rules: &Rules, fact: &str) -> bool {
    rules
        .fact(fact)
        .is_some_and(|i| rules.facts[i].origin == "demandeur")
}

/// Field messages, by field name, as the simulator writes them (lower case first: the summary
/// puts the field's name before them, the field capitalises them).
type Errors = BTreeMap<String, String>;

/// The message beside a field: its label already names it, so the simulator's prefix
/// (`coût du projet : `, `fait « labo » : `) goes.
fn beside_field(message: &str) -> String {
    let m = message.strip_prefix("coût du projet : ").unwrap_or(message);
    let m = ["fait « ", "dépense « "]
        .iter()
        .find_map(|p| {
            m.strip_prefix(p)
                .and_then(|rest| rest.split_once(" » : ").map(|(_, msg)| msg))
        })
        .unwrap_or(m);
    m.to_string()
}

/// Checks each field alone with the simulator's parser.
fn check_fields(app: &App, sent: &Sent) -> Errors {
    let today = app.today();
    let alone = SimulationInput {
        demandeur: WELL_FORMED_APPLICANT.into(),
        ..SimulationInput::default()
    };
    let full = sent.input(WELL_FORMED_APPLICANT);
    let mut checks: Vec<(String, SimulationInput)> = vec![
        (
            "cout".into(),
            SimulationInput {
                cout: full.cout.clone(),
                ..alone.clone()
            },
        ),
        (
            "date_depot".into(),
            SimulationInput {
                date_depot: full.date_depot.clone(),
                ..alone.clone()
            },
        ),
        (
            "date_fin".into(),
            SimulationInput {
                date_fin: full.date_fin.clone(),
                ..alone.clone()
            },
        ),
    ];
    checks.extend(full.depenses.iter().map(|line| {
        let input = SimulationInput {
            depenses: vec![line.clone()],
            ..alone.clone()
        };
        (format!("depense_{}", line.0), input)
    }));
    checks.extend(full.faits.iter().map(|fact| {
        let input = SimulationInput {
            faits: vec![fact.clone()],
            ..alone.clone()
        };
        (format!("fait_{}", fact.0), input)
    }));
    let mut errors = Errors::new();
    for (field, input) in checks {
        if let Err(AppError::Invalid(m) | AppError::Inconsistent(m)) =
            input.parse(&app.programme, today)
        {
            errors.insert(field, beside_field(&m));
        }
    }
    errors
}

/// How the collectivité field was understood.
enum Who {
    Found(Box<Applicant>),
    /// Several collectivités match the typed name: the person picks one.
    Choose(Vec<Choice>),
    /// A French message for the field.
    Wrong(String),
}

/// `commune:95127`, `groupement:…`: typed as a reference rather than a name.
fn looks_like_reference(s: &str) -> bool {
    s.split_once(':').is_some_and(|(kind, _)| {
        matches!(
            kind.trim().to_ascii_lowercase().as_str(),
            "commune" | "epci" | "departement" | "region" | "groupement"
        )
    })
}

async fn resolve(app: &App, reference: &str) -> Result<Who, PageError> {
    let r = match ApplicantRef::parse(reference) {
        Ok(r) => r,
        Err(m) => return Ok(Who::Wrong(m)),
    };
    match app.simulation().resolve_applicant(&r).await {
        Ok(a) => Ok(Who::Found(Box::new(a))),
        Err(AppError::NotFound(m) | AppError::Invalid(m)) => Ok(Who::Wrong(m)),
        Err(e) => Err(e.into()),
    }
}

async fn understand(app: &App, sent: &Sent) -> Result<Who, PageError> {
    let typed = sent.collectivite.trim();
    if !sent.choix.trim().is_empty() {
        return resolve(app, sent.choix.trim()).await;
    }
    // The hidden reference holds while the visible name is the one it was given for.
    if !sent.demandeur.trim().is_empty() {
        if let Who::Found(a) = resolve(app, sent.demandeur.trim()).await? {
            if typed.is_empty() || fold(typed) == fold(&a.nom) {
                return Ok(Who::Found(a));
            }
        }
    }
    if typed.is_empty() {
        return Ok(Who::Wrong(
            "indiquez la collectivité qui demande l’aide : son nom, son code INSEE ou son SIREN"
                .into(),
        ));
    }
    if looks_like_reference(typed) {
        return resolve(app, typed).await;
    }
    let hits = app
        .referentiel()
        .search_collectivites(
            app.programme.vintage,
            &typed.chars().take(100).collect::<String>(),
            None,
            MAX_CHOICES,
        )
        .await?;
    let exact: Vec<_> = hits
        .iter()
        .filter(|h| fold(&h.name) == fold(typed))
        .collect();
    let only = match (hits.as_slice(), exact.as_slice()) {
        ([one], _) => Some(one),
        (_, [one]) => Some(*one),
        _ => None,
    };
    if let Some(h) = only {
        return resolve(app, &format!("{}:{}", h.kind.slug(), h.code)).await;
    }
    if hits.is_empty() {
        return Ok(Who::Wrong(format!(
            "aucune collectivité ne correspond à « {typed} » dans le référentiel {} : vérifiez l’orthographe, ou indiquez son code INSEE ou son SIREN",
            app.programme.vintage
        )));
    }
    Ok(Who::Choose(
        hits.iter()
            .map(|h| {
                let line = hit_line(h);
                Choice {
                    reference: format!("{}:{}", h.kind.slug(), h.code),
                    name: line.name,
                    kind: line.kind,
                    code: line.code,
                    detail: line.detail,
                }
            })
            .collect(),
    ))
}

/// A collectivité offered in the choice list.
pub struct Choice {
    pub reference: String,
    pub name: String,
    pub kind: &'static str,
    pub code: String,
    pub detail: String,
}

pub struct TextField {
    pub id: String,
    pub label: String,
    pub hint: String,
    pub value: String,
    pub error: Option<String>,
}

pub enum FactInput {
    YesNo,
    Number,
    Date,
    Choice(Vec<String>),
    Text,
}

pub struct FactField {
    pub id: String,
    /// The fact's short title, for the error summary.
    pub title: String,
    pub question: String,
    pub hint: String,
    pub input: FactInput,
    pub value: String,
    pub error: Option<String>,
}

impl FactField {
    pub fn is_yes_no(&self) -> bool {
        matches!(self.input, FactInput::YesNo)
    }
    pub fn html_type(&self) -> &'static str {
        match self.input {
            FactInput::Date => "date",
            _ => "text",
        }
    }
    pub fn numeric(&self) -> bool {
        matches!(self.input, FactInput::Number)
    }
    pub fn choices(&self) -> &[String] {
        match &self.input {
            FactInput::Choice(c) => c,
            _ => &[],
        }
    }
}

/// A line of the error summary: a link to the field, its name and what is wrong.
pub struct SummaryLine {
    pub id: String,
    pub label: String,
    pub message: String,
}

pub struct ExpenseView {
    pub label: String,
    pub amount: String,
    pub retained: String,
    pub reason: Option<String>,
}

pub struct MissingView {
    pub text: String,
    /// The form field that answers it.
    pub href: Option<String>,
}

pub struct ResultView {
    pub id: String,
    pub status: &'static str,
    /// DSFR badge modifier.
    pub status_class: &'static str,
    /// Amounts mean something: eligible, or eligible once the missing facts are given.
    pub show_amounts: bool,
    pub name: String,
    pub summary: String,
    pub amount: Option<String>,
    pub amount_max: Option<String>,
    pub rate: Option<String>,
    pub base: Option<String>,
    pub reasons: Vec<String>,
    pub missing: Vec<MissingView>,
    pub assumptions: Vec<String>,
    pub expenses: Vec<ExpenseView>,
    pub territory: String,
    pub version: String,
    /// The explanation's steps as `<li>` items, escaped here (see [`explanation_html`]).
    pub explanation: String,
    /// Why the measure could not be evaluated.
    pub error: Option<String>,
    /// "Déposer ce projet": a new draft of this measure with what was entered.
    pub file_href: Option<String>,
}

pub struct ApplicantView {
    pub name: String,
    pub reference: String,
    pub population: String,
    pub population_source: String,
    pub filing_date: String,
    pub version: String,
}

pub struct Results {
    pub applicant: ApplicantView,
    pub eligible: Vec<ResultView>,
    pub to_specify: Vec<ResultView>,
    pub not_eligible: Vec<ResultView>,
    pub not_evaluable: Vec<ResultView>,
}

#[derive(Template)]
#[template(path = "pages/simulateur.html")]
struct SimulateurTemplate {
    layout: Layout,
    title: String,
    vintage: u16,
    collectivite: TextField,
    demandeur: String,
    choices: Vec<Choice>,
    cout: TextField,
    date_depot: TextField,
    date_fin: TextField,
    expenses: Vec<TextField>,
    facts: Vec<FactField>,
    errors: Vec<SummaryLine>,
    results: Option<Results>,
}

fn money(c: Option<guichet_domain::Cents>) -> Option<String> {
    c.map(|c| c.to_short_string())
}

/// The four groups of results, in the order of the page.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Group {
    Eligible,
    ToSpecify,
    NotEligible,
    NotEvaluable,
}

impl Group {
    fn of(result: &Result<Evaluation, String>) -> Group {
        match result {
            Err(_) => Group::NotEvaluable,
            Ok(ev) if ev.eligible => Group::Eligible,
            Ok(ev) if ev.reasons.iter().all(|r| r.code == MISSING_REASON) => Group::ToSpecify,
            Ok(_) => Group::NotEligible,
        }
    }

    fn badge(self) -> (&'static str, &'static str) {
        match self {
            Group::Eligible => ("Éligible", "fr-badge--success"),
            Group::ToSpecify => ("À préciser", "fr-badge--warning"),
            Group::NotEligible => ("Non éligible", "fr-badge--error"),
            Group::NotEvaluable => ("Non évaluable", "fr-badge--info"),
        }
    }
}

fn view(
    app: &App,
    sim: &Simulation,
    measure: &str,
    result: &Result<Evaluation, String>,
) -> ResultView {
    let p = &app.programme;
    let m = p.measure(measure);
    let group = Group::of(result);
    let (status, status_class) = group.badge();
    let mut v = ResultView {
        status,
        status_class,
        show_amounts: matches!(group, Group::Eligible | Group::ToSpecify),
        id: format!("mesure-{}", measure.replace('.', "-")),
        name: m.map(|m| m.name.clone()).unwrap_or_default(),
        summary: m.map(|m| m.summary.clone()).unwrap_or_default(),
        amount: None,
        amount_max: None,
        rate: None,
        base: None,
        reasons: vec![],
        missing: vec![],
        assumptions: vec![],
        expenses: vec![],
        territory: String::new(),
        version: sim.programme_version.clone(),
        explanation: String::new(),
        error: None,
        file_href: None,
    };
    let ev = match result {
        Ok(ev) => ev,
        Err(e) => {
            v.error = Some(capitalise(e));
            return v;
        }
    };
    let rates = match (ev.rate, ev.rate_max) {
        (Some(r), Some(max)) if r != max => {
            Some(format!("{} à {}", french_rate(r), french_rate(max)))
        }
        (Some(r), _) => Some(french_rate(r)),
        (None, Some(max)) => Some(format!("jusqu’à {}", french_rate(max))),
        (None, None) => None,
    };
    v.amount = money(ev.amount);
    v.amount_max = money(ev.amount_max);
    v.rate = rates;
    v.base = money(ev.base);
    v.reasons = ev
        .reasons
        .iter()
        .filter(|r| r.code != MISSING_REASON)
        .map(|r| r.message.clone())
        .collect();
    let rules = &p.rules;
    v.missing = ev
        .missing
        .iter()
        .map(|m| MissingView {
            text: m.question.clone().unwrap_or_else(|| m.titre.clone()),
            href: if m.nom == EXPENSES_FACT {
                Some("#cout".into())
            } else if m.nom == "date_fin" {
                Some("#date_fin".into())
            } else {
                asked(rules, &m.nom).then(|| format!("#fait_{}", m.nom))
            },
        })
        .collect();
    v.assumptions = ev
        .assumptions
        .iter()
        .map(|a| format!("{} : {}", a.titre, a.valeur))
        .collect();
    v.expenses = ev
        .expenses
        .iter()
        .map(|e| ExpenseView {
            label: e.libelle.clone(),
            amount: guichet_domain::Cents::new(e.montant_centimes).to_string(),
            retained: guichet_domain::Cents::new(e.retenu_centimes).to_string(),
            reason: e.motif.clone(),
        })
        .collect();
    v.territory = match &ev.territory {
        Some(code) => format!(
            "{} (variante territoriale, région {code})",
            ev.territory_name
        ),
        None => ev.territory_name.clone(),
    };
    v.explanation = explanation_html(&ev.trace);
    v
}

/// The explanation's steps as `<li>` items, each sentence written once into a scratch buffer
/// and escaped as askama would: the page writes about 250 of them, and one `String` per
/// sentence, then askama's escaping byte by byte, were a fifth of its cost (perf under wrk).
fn explanation_html(steps: &[Step]) -> String {
    let mut html = String::with_capacity(steps.len() * 180);
    let mut sentence = String::with_capacity(256);
    for step in steps {
        sentence.clear();
        step.write_sentence(&mut sentence);
        html.push_str("<li>");
        push_escaped(&mut html, &sentence);
        html.push_str("</li>");
    }
    html
}

/// The query that carries a simulation into a new draft (`/espace/dossiers/nouveau`): the
/// applicant, the cost or expenses, the end date and the facts, as the simulator named them.
fn filing_query(sim: &Simulation, sent: Option<&Sent>) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("demandeur", &sim.applicant.reference);
    if let Some(s) = sent {
        let non_blank = |v: &str| !v.trim().is_empty();
        if non_blank(&s.cout) {
            q.append_pair("cout", s.cout.trim());
        }
        if non_blank(&s.date_fin) {
            q.append_pair("date_fin", s.date_fin.trim());
        }
        for (k, v) in s.depenses.iter().filter(|(_, v)| non_blank(v)) {
            q.append_pair(&format!("depense_{k}"), v.trim());
        }
        for (k, v) in s.faits.iter().filter(|(_, v)| non_blank(v)) {
            q.append_pair(&format!("fait_{k}"), v.trim());
        }
    }
    q.finish()
}

fn results(app: &App, sim: &Simulation, sent: Option<&Sent>) -> Results {
    let filing = filing_query(sim, sent);
    let a = &sim.applicant;
    let mut r = Results {
        applicant: ApplicantView {
            name: a.nom.clone(),
            reference: a.reference.clone(),
            population: thousands(a.population),
            population_source: a.population_source.clone(),
            filing_date: sim.filing_date.format("%d/%m/%Y").to_string(),
            version: sim.programme_version.clone(),
        },
        eligible: vec![],
        to_specify: vec![],
        not_eligible: vec![],
        not_evaluable: vec![],
    };
    for o in &sim.outcomes {
        let mut v = view(app, sim, &o.measure, &o.result);
        if matches!(Group::of(&o.result), Group::Eligible | Group::ToSpecify) {
            v.file_href = Some(format!(
                "/espace/dossiers/nouveau?mesure={}&{filing}",
                url::form_urlencoded::byte_serialize(o.measure.as_bytes()).collect::<String>()
            ));
        }
        match Group::of(&o.result) {
            Group::Eligible => r.eligible.push(v),
            Group::ToSpecify => r.to_specify.push(v),
            Group::NotEligible => r.not_eligible.push(v),
            Group::NotEvaluable => r.not_evaluable.push(v),
        }
    }
    r
}

fn fact_fields(app: &App, sent: Option<&Sent>, errors: &Errors) -> Vec<FactField> {
    app.programme
        .rules
        .facts
        .iter()
        .filter(|f| asked(&app.programme.rules, &f.name))
        .map(|f| {
            let input = match (f.ty, &f.allowed) {
                (_, Some(allowed)) => FactInput::Choice(allowed.clone()),
                (Type::Booleen, _) => FactInput::YesNo,
                (Type::Nombre, _) => FactInput::Number,
                (Type::Date, _) => FactInput::Date,
                _ => FactInput::Text,
            };
            let mut hint = Vec::new();
            if matches!(input, FactInput::Number) {
                hint.push("Nombre entier".to_string());
            }
            if let Some(d) = &f.default {
                hint.push(format!("Sans réponse, la simulation retient « {d} »"));
            }
            let id = format!("fait_{}", f.name);
            FactField {
                question: f.question.clone().unwrap_or_else(|| f.title.clone()),
                hint: hint.join(". "),
                input,
                value: sent
                    .and_then(|s| s.faits.get(&f.name).cloned())
                    .unwrap_or_default(),
                error: errors.get(&id).map(|m| capitalise(m)),
                title: f.title.clone(),
                id,
            }
        })
        .collect()
}

pub async fn page(
    State(app): State<App>,
    ctx: Ctx,
    PageQuery(pairs): PageQuery<Vec<(String, String)>>,
) -> PageResult {
    let sent = Sent::from_query(pairs, &app.programme.rules);
    let mut errors = Errors::new();
    let mut choices = Vec::new();
    let mut sim = None;
    let mut collectivite = sent
        .as_ref()
        .map(|s| s.collectivite.clone())
        .unwrap_or_default();
    let mut demandeur = String::new();
    if let Some(sent) = &sent {
        errors = check_fields(&app, sent);
        match understand(&app, sent).await? {
            Who::Found(a) => {
                collectivite = a.nom.clone();
                demandeur = a.reference.clone();
                if errors.is_empty() {
                    match sent.input(&a.reference).parse(&app.programme, app.today()) {
                        Ok(req) => sim = Some(app.simulation().evaluate_request(&req, *a)),
                        // Each field passed alone: what remains ties the cost to the lines.
                        Err(AppError::Invalid(m) | AppError::Inconsistent(m)) => {
                            errors.insert("cout".into(), m);
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            Who::Choose(hits) => {
                choices = hits;
                errors.insert(
                    "collectivite".into(),
                    format!(
                        "plusieurs collectivités correspondent à « {} » : choisissez la vôtre dans la liste",
                        sent.collectivite.trim()
                    ),
                );
            }
            Who::Wrong(m) => {
                errors.insert("collectivite".into(), m);
            }
        }
    }
    let value = |f: fn(&Sent) -> &str| sent.as_ref().map(|s| f(s).to_string()).unwrap_or_default();
    let field = |id: &str, label: &str, hint: &str, value: String| TextField {
        id: id.into(),
        label: label.into(),
        hint: hint.into(),
        value,
        error: errors.get(id).map(|m| capitalise(m)),
    };
    let expenses: Vec<TextField> = app
        .programme
        .rules
        .categories
        .iter()
        .map(|c| {
            field(
                &format!("depense_{}", c.id),
                &c.label,
                "En euros",
                sent.as_ref()
                    .and_then(|s| s.depenses.get(&c.id).cloned())
                    .unwrap_or_default(),
            )
        })
        .collect();
    let facts = fact_fields(&app, sent.as_ref(), &errors);
    let today = app.today().format("%Y-%m-%d").to_string();
    let date_depot = sent
        .as_ref()
        .and_then(|s| s.date_depot.clone())
        .unwrap_or(today);
    let collectivite = field(
        "collectivite",
        "Collectivité qui demande l’aide",
        "Nom, code INSEE ou SIREN ; un groupement s’écrit groupement:epci:200054781+epci:200058519",
        collectivite,
    );
    let cout = field(
        "cout",
        "Coût total du projet",
        "En euros hors taxes, par exemple 20 000 ou 12 345,67",
        value(|s| &s.cout),
    );
    let date_depot = field(
        "date_depot",
        "Date de dépôt de la demande",
        "Par défaut, la date du jour",
        date_depot,
    );
    let date_fin = field(
        "date_fin",
        "Date de fin prévue du projet",
        "Certaines mesures exigent un projet achevé avant une date limite",
        value(|s| &s.date_fin),
    );
    // The summary lists errors in the order of the form, each after its field's name.
    let mut named: Vec<(&str, &str)> = [&collectivite, &cout, &date_depot, &date_fin]
        .into_iter()
        .chain(&expenses)
        .map(|f| (f.id.as_str(), f.label.as_str()))
        .collect();
    named.extend(facts.iter().map(|f| (f.id.as_str(), f.title.as_str())));
    let errors_list: Vec<SummaryLine> = named
        .into_iter()
        .filter_map(|(id, label)| {
            errors.get(id).map(|m| SummaryLine {
                id: id.to_string(),
                label: label.to_string(),
                message: m.clone(),
            })
        })
        .collect();
    let results = sim.as_ref().map(|s| results(&app, s, sent.as_ref()));
    let title = match (&results, errors_list.is_empty()) {
        (_, false) => "Erreur dans le formulaire – Simulateur".to_string(),
        (Some(r), _) => format!("Résultats pour {} – Simulateur", r.applicant.name),
        (None, true) => "Simulateur".to_string(),
    };
    let page = SimulateurTemplate {
        layout: Layout::new(
            &ctx,
            &app,
            "/simulateur",
            vec![Crumb::link("Accueil", "/"), Crumb::here("Simulateur")],
        ),
        title,
        vintage: app.programme.vintage.year(),
        collectivite,
        demandeur,
        choices,
        cout,
        date_depot,
        date_fin,
        expenses,
        facts,
        errors: errors_list,
        results,
    };
    // Results with every explanation weigh about 100 KB: one allocation instead of a dozen
    // reallocations and copies of a growing buffer (measured with perf under wrk).
    let mut html = String::with_capacity(if page.results.is_some() {
        160 * 1024
    } else {
        48 * 1024
    });
    page.render_into(&mut html)?;
    Ok(axum::response::Html(html))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_beside_a_field_drop_the_field_name() {
        assert_eq!(
            beside_field("fait « communes_rattachees » : un nombre entier positif est attendu"),
            "un nombre entier positif est attendu"
        );
        assert_eq!(
            beside_field("coût du projet : montant invalide : « abc »"),
            "montant invalide : « abc »"
        );
        assert_eq!(
            beside_field("date de fin invalide : « x »"),
            "date de fin invalide : « x »"
        );
    }

    #[test]
    fn references_are_told_from_names() {
        assert!(looks_like_reference("commune:95127"));
        assert!(looks_like_reference("groupement:epci:1+epci:2"));
        assert!(!looks_like_reference("Cergy"));
        assert!(!looks_like_reference("Saint-Denis : la ville"));
    }
}
