//! Dossiers (`app.dossiers()`): drafts, what they still lack, submission (routing, numbering,
//! the frozen version, the acknowledgement, the automatic desk) and every later transition.
//!
//! Every use case takes the principal and enforces access itself: scope decides what a
//! principal sees (`visibility`), `guichet_domain::dossier::Actor` what they may do to a
//! dossier they see, and `guichet_domain::dossier::transition` whether an event may happen.
//! A change runs in one write transaction with its history line, its audit entry and its
//! follow-up jobs, and goes through the `version` column (`sql::versioned_update`).

use crate::accounts::parse_email;
use crate::audit::{self, Actor as AuditActor};
use crate::error::{AppError, AppResult};
use crate::jobs::{Job, Registry};
use crate::simulation::{iso_date, Applicant, ApplicantRef};
use crate::App;
use chrono::{Datelike, NaiveDate};
use guichet_domain::access::{Action, CollectiviteSet, ServiceSet, ServiceTarget};
use guichet_domain::dossier::{
    transition, Actor, AutomaticAcceptance, Decision, Event, EventKind, Grant, NumberTerritory,
    Parties, Proposal, ProposalBounds, Reason, RecordedProposal, Refusal, State, Transition,
};
use guichet_domain::{Cents, CollectiviteRef, DepartementCode, DossierNumber, Principal, Role};
use guichet_programme::eval::MISSING_REASON;
use guichet_programme::{Evaluation, FieldKind, ProjectPlace, Situation, Type, Value};
use guichet_storage::accounts as accounts_store;
use guichet_storage::dossiers::{self as store, NewDraft, NewHistory, Visibility};
pub use guichet_storage::dossiers::{DossierRow, HistoryRow, ListFilter, VersionRow};
use guichet_storage::sql::{self, Value as SqlValue};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

/// What a stale write says (« le dossier a été modifié entre-temps … »).
const WHAT: &str = "le dossier";

/// Facts the engine reads from Guichet's own records (`origine: base`), and the measure whose
/// accepted dossiers of the same collectivité they count (ITN7: the FranceConnect / API desk's
/// caps). A programme that declares none of these facts is not affected.
const OWN_RECORDS: [(&str, &str); 2] = [
    ("financements_franceconnect", "axe2.franceconnect"),
    ("financements_api", "axe2.api"),
];

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest text field without its own limit, in characters.
const MAX_FIELD_CHARS: usize = 10_000;
/// At most this many labels on one dossier.
const MAX_LABELS: usize = 10;

/// A label as stored: trimmed, inner spaces collapsed, 1 to 40 characters.
pub fn parse_label(input: &str) -> AppResult<String> {
    let label = input.split_whitespace().collect::<Vec<_>>().join(" ");
    let n = label.chars().count();
    if n == 0 {
        return Err(AppError::Invalid("l’étiquette est vide".into()));
    }
    if n > 40 {
        return Err(AppError::Invalid(format!(
            "l’étiquette est trop longue ({n} caractères ; 40 au plus)"
        )));
    }
    if label.chars().any(char::is_control) {
        return Err(AppError::Invalid(
            "l’étiquette contient un caractère invisible".into(),
        ));
    }
    Ok(label)
}

/// At most this many dossiers per page of a list.
pub const MAX_PAGE: i64 = 200;

/// A draft's content, stored as JSON: the form's values by field id (as typed), the budget by
/// expense category (cents), the co-financing lines, and for an applicant spanning several
/// départements the one where the project takes place.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DraftData {
    #[serde(default)]
    pub champs: BTreeMap<String, String>,
    #[serde(default)]
    pub depenses: BTreeMap<String, Cents>,
    #[serde(default)]
    pub cofinancements: Vec<CoFinancing>,
    #[serde(default)]
    pub departement: Option<String>,
}

/// A co-financing line: who else pays, and how much.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoFinancing {
    pub source: String,
    pub montant: Cents,
}

/// The engine's answer when the dossier was filed, kept with it (`dossiers.verdict`): what the
/// instructors judge against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiledVerdict {
    pub eligible: bool,
    pub motifs: Vec<String>,
    pub assiette_centimes: Option<i64>,
    pub montant_centimes: Option<i64>,
    pub montant_max_centimes: Option<i64>,
    pub bornes: Option<ProposalBounds>,
    pub date: NaiveDate,
}

impl FiledVerdict {
    pub(crate) fn of(ev: &Evaluation) -> FiledVerdict {
        FiledVerdict {
            eligible: ev.eligible,
            motifs: ev.reasons.iter().map(|r| r.code.clone()).collect(),
            assiette_centimes: ev.base.map(Cents::get),
            montant_centimes: ev.amount.map(Cents::get),
            montant_max_centimes: ev.amount_max.map(Cents::get),
            bornes: ev.proposal_bounds(),
            date: ev.date,
        }
    }
}

/// A dossier as its reader sees it.
#[derive(Debug, Clone)]
pub struct Dossier {
    pub row: DossierRow,
    pub data: DraftData,
    pub verdict: Option<FiledVerdict>,
}

impl Dossier {
    fn of(row: DossierRow) -> AppResult<Dossier> {
        let data = parse_json::<DraftData>(&row.data, "data")?;
        let verdict = match &row.verdict {
            Some(v) => Some(parse_json::<FiledVerdict>(v, "verdict")?),
            None => None,
        };
        Ok(Dossier { row, data, verdict })
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(text: &str, column: &str) -> AppResult<T> {
    serde_json::from_str(text).map_err(|e| {
        AppError::Storage(guichet_storage::StorageError::Corrupt(format!(
            "dossiers.{column} : {e}"
        )))
    })
}

/// One line of the instruction queue.
#[derive(Debug, Clone)]
pub struct QueueLine {
    pub dossier: Dossier,
    pub applicant_name: String,
}

/// The instruction queue: a page of dossiers and the counts per state.
#[derive(Debug, Clone)]
pub struct Queue {
    pub lines: Vec<QueueLine>,
    pub counts: Vec<(State, i64)>,
}

/// A frozen submission as written by `submit` (the fields read back here).
#[derive(Debug, Deserialize)]
struct FrozenSubmission {
    donnees: DraftData,
}

/// A dossier as its instructor reads it.
#[derive(Debug, Clone)]
pub struct InstructionFile {
    pub dossier: Dossier,
    pub applicant_name: String,
    pub service_name: Option<String>,
    /// The last frozen submission's content (what the instructors judge).
    pub frozen: Option<DraftData>,
    /// The history, oldest first, each line with its actor in words.
    pub history: Vec<(HistoryRow, String)>,
}

/// A required field left empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissingField {
    pub bloc: String,
    pub champ: String,
    pub libelle: String,
    /// The engine's fact the field feeds, if any.
    pub fait: Option<String>,
}

/// What a dossier still lacks, and what the engine says of it today.
#[derive(Debug, Clone)]
pub struct Check {
    /// Required fields of the common blocks and the measure's blocks left empty.
    pub missing_fields: Vec<MissingField>,
    /// Required documents, by name.
    pub documents: Vec<String>,
    /// Required documents not attached yet, by name: submission waits for them.
    pub missing_documents: Vec<String>,
    /// The documents attached now.
    pub pieces: Vec<crate::pieces::PieceRow>,
    /// The engine's evaluation with the dossier's own facts and expenses, at today's date
    /// (an error when the measure cannot be evaluated for this applicant).
    pub evaluation: Result<Evaluation, String>,
    pub applicant: Applicant,
    /// The facts read from Guichet's own records ([`OWN_RECORDS`]) and their values.
    pub own_records: BTreeMap<String, i64>,
}

impl Check {
    /// Whether nothing the engine or the form asks for is missing.
    pub fn is_complete(&self) -> bool {
        self.missing_fields.is_empty()
            && self.missing_documents.is_empty()
            && self
                .evaluation
                .as_ref()
                .is_ok_and(|ev| ev.missing.is_empty())
    }

    pub fn is_eligible(&self) -> bool {
        self.evaluation.as_ref().is_ok_and(|ev| ev.eligible)
    }

    /// The indicative amount the engine proposes.
    pub fn indicative_amount(&self) -> Option<Cents> {
        self.evaluation.as_ref().ok().and_then(|ev| ev.amount)
    }
}

/// What a submission did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub number: DossierNumber,
    pub state: State,
    pub version: i64,
    pub service_id: i64,
    pub service_name: String,
}

/// The acknowledgement sent to the agent who submitted a dossier.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AcknowledgementMail {
    pub to: String,
    pub numero: String,
    pub titre: String,
    pub mesure: String,
    pub service: String,
    pub depose_le: String,
}

impl Job for AcknowledgementMail {
    const KIND: &'static str = "courriel.accuse-depot";
}

impl AcknowledgementMail {
    pub fn subject(&self) -> String {
        format!("Accusé de dépôt du dossier {}", self.numero)
    }

    pub fn text(&self) -> String {
        format!(
            "Bonjour,\n\n\
             Votre dossier « {} » a bien été déposé le {}.\n\n\
             Numéro du dossier : {}\n\
             Mesure : {}\n\
             Service instructeur : {}\n\n\
             Rappelez ce numéro dans vos échanges sur ce dossier. Le service instructeur vous \
             écrira s’il lui manque une information.\n",
            self.titre, self.depose_le, self.numero, self.mesure, self.service
        )
    }
}

pub(crate) fn register_jobs(r: &mut Registry) {
    r.register(|app: App, j: AcknowledgementMail| async move {
        app.mailer.deliver(&j.to, &j.subject(), &j.text()).await
    });
}

/// Who sees which dossiers: administrators all; applicants those of their collectivités;
/// instructors and coordinators those their services instruct (a draft has no service: only
/// its collectivité's agents see it); experts and committee members none yet (they will see
/// the dossiers put before them).
fn visibility(p: &Principal) -> (ServiceSet, CollectiviteSet) {
    let scope = p.scope();
    match p.role {
        Role::Administrateur => (ServiceSet::All, CollectiviteSet::All),
        Role::Demandeur => (ServiceSet::Nothing, scope.collectivites),
        Role::Instructeur | Role::Coordinateur => (scope.services, CollectiviteSet::Nothing),
        Role::Expert | Role::MembreComite => (ServiceSet::Nothing, CollectiviteSet::Nothing),
    }
}

/// What `p` is to a dossier (`Actor::of` with the dossier's parties).
fn actor_on(p: &Principal, row: &DossierRow) -> Actor {
    Actor::of(
        p,
        Parties {
            applicants: std::slice::from_ref(&row.applicant),
            instructing_service: row.service_id,
        },
    )
}

fn refusal(r: Refusal) -> AppError {
    match r {
        Refusal::WrongRole { .. } => AppError::Forbidden,
        other => AppError::Invalid(capitalise(&other.to_string())),
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn not_found(id: i64) -> AppError {
    AppError::NotFound(format!("dossier {id} introuvable"))
}

/// The text an event carries, for its history line.
fn event_message(event: &Event) -> Option<String> {
    match event {
        Event::RequestCorrection(c) => Some(format!("{} : {}", c.kind.label(), c.message)),
        Event::Propose(Proposal::Favourable { justification, .. }) => {
            justification.as_ref().map(|j| j.to_string())
        }
        Event::Propose(Proposal::Unfavourable { motivation }) => Some(motivation.to_string()),
        Event::ResumeInstruction(r)
        | Event::Reopen(r)
        | Event::HandOver(r)
        | Event::ReferToInstruction(r) => Some(r.to_string()),
        Event::Decide(Decision::Refuse { motivation })
        | Event::Decide(Decision::SansSuite { motivation }) => Some(motivation.to_string()),
        _ => None,
    }
}

fn bp(rate: guichet_domain::Rate) -> i64 {
    i64::from(rate.basis_points())
}

/// Dossiers' use cases (`app.dossiers()`).
#[derive(Clone, Copy)]
pub struct Dossiers<'a> {
    pub(crate) app: &'a App,
}

impl Dossiers<'_> {
    /// Starts a draft for `collectivite`, which the principal must act for.
    pub async fn create_draft(
        &self,
        p: &Principal,
        measure: &str,
        collectivite: &CollectiviteRef,
        title: &str,
    ) -> AppResult<Dossier> {
        let programme = &self.app.programme;
        if programme.measure(measure).is_none() {
            return Err(AppError::NotFound(format!(
                "mesure inconnue : « {} » (mesures : {})",
                measure.trim(),
                programme
                    .measures()
                    .map(|m| m.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let actor = Actor::of(
            p,
            Parties {
                applicants: std::slice::from_ref(collectivite),
                instructing_service: None,
            },
        );
        if actor != Actor::Applicant {
            return Err(AppError::Forbidden);
        }
        let title = parse_title(title)?;
        let mut data = DraftData::default();
        data.champs.insert("titre".into(), title.clone());
        let text = serde_json::to_string(&data)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("brouillon : {e}")))?;
        let now = self.app.now_ts();
        let mut tx = self.app.db.begin_write().await?;
        let id = store::insert_draft(
            &mut *tx,
            &NewDraft {
                measure,
                applicant: collectivite,
                created_by: p.user_id,
                title: &title,
                data: &text,
                now: &now,
            },
        )
        .await?;
        audit::record(
            &mut tx,
            &self.app.clock,
            AuditActor::User(p.user_id),
            "dossier.creation",
            "dossier",
            &id.to_string(),
            None,
            Some(
                &json!({"mesure": measure, "demandeur": collectivite.to_string(), "titre": title}),
            ),
        )
        .await?;
        let row = store::find(&mut *tx, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        tx.commit().await?;
        Dossier::of(row)
    }

    /// Saves a draft's content (in `brouillon` or `en_correction`), if it is still at
    /// `seen_version`; returns the new version.
    pub async fn update_draft(
        &self,
        p: &Principal,
        id: i64,
        seen_version: i64,
        data: DraftData,
    ) -> AppResult<i64> {
        let row = self.visible_row(p, id).await?;
        self.require_applicant(p, &row)?;
        if !matches!(row.state, State::Brouillon | State::EnCorrection) {
            return Err(AppError::Invalid(format!(
                "un dossier à l’état « {} » ne se modifie plus",
                row.state.label()
            )));
        }
        let data = self.validate(&row.measure, data)?;
        let title = match data.champs.get("titre").map(|t| t.trim()) {
            Some(t) if !t.is_empty() => parse_title(t)?,
            _ => row.title.clone(),
        };
        let text = serde_json::to_string(&data)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("brouillon : {e}")))?;
        let now = self.app.now_ts();
        let mut tx = self.app.db.begin_write().await?;
        let version = sql::versioned_update(
            &mut *tx,
            "dossiers",
            id,
            seen_version,
            vec![
                ("title", SqlValue::from(title)),
                ("data", SqlValue::from(text)),
                ("updated_at", SqlValue::from(now)),
            ],
            WHAT,
        )
        .await?;
        tx.commit().await?;
        Ok(version)
    }

    /// A dossier the principal may see: `NotFound` when there is none, `Forbidden` outside
    /// the principal's scope.
    pub async fn get(&self, p: &Principal, id: i64) -> AppResult<Dossier> {
        Dossier::of(self.visible_row(p, id).await?)
    }

    /// A dossier by its number, as [`Dossiers::get`].
    pub async fn by_number(&self, p: &Principal, number: &str) -> AppResult<Dossier> {
        let number = DossierNumber::parse(number).map_err(|e| AppError::Invalid(e.to_string()))?;
        let row = store::find_by_number(&self.app.db, &number)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("dossier {number} introuvable")))?;
        self.ensure_visible(p, row.id).await?;
        Dossier::of(row)
    }

    /// The dossiers the principal sees, by id (the scope is the query's `WHERE`).
    pub async fn list(&self, p: &Principal, filter: &ListFilter<'_>) -> AppResult<Vec<DossierRow>> {
        self.list_batch(
            p,
            &ListFilter {
                limit: filter.limit.clamp(1, MAX_PAGE),
                ..filter.clone()
            },
        )
        .await
    }

    /// As [`Dossiers::list`], without the page limit: for exports, which read in batches.
    pub(crate) async fn list_batch(
        &self,
        p: &Principal,
        filter: &ListFilter<'_>,
    ) -> AppResult<Vec<DossierRow>> {
        let (services, collectivites) = visibility(p);
        let mut conn = self.app.db.acquire().await?;
        Ok(store::list_in(
            &mut conn,
            &Visibility {
                services: &services,
                collectivites: &collectivites,
                vintage: i64::from(self.app.programme.vintage.year()),
            },
            filter,
        )
        .await?)
    }

    /// How many dossiers the principal sees in each state, with `filter`'s measure and
    /// département (its states and pagination ignored): the counts of the queue's tabs.
    pub async fn count_by_state(
        &self,
        p: &Principal,
        filter: &ListFilter<'_>,
    ) -> AppResult<Vec<(State, i64)>> {
        let (services, collectivites) = visibility(p);
        let mut conn = self.app.db.acquire().await?;
        Ok(store::count_by_state(
            &mut conn,
            &Visibility {
                services: &services,
                collectivites: &collectivites,
                vintage: i64::from(self.app.programme.vintage.year()),
            },
            filter,
        )
        .await?)
    }

    /// The instruction queue: the dossiers of the principal's services matching `filter`,
    /// with their collectivités' names, and the counts per state. Only for those who instruct
    /// (`Action::InstructDossiers`); the scope is the queries' `WHERE`.
    pub async fn queue(&self, p: &Principal, filter: &ListFilter<'_>) -> AppResult<Queue> {
        if !p.scope().can(Action::InstructDossiers) {
            return Err(AppError::Forbidden);
        }
        let rows = self.list(p, filter).await?;
        let counts = self.count_by_state(p, filter).await?;
        let refs: Vec<CollectiviteRef> = rows.iter().map(|r| r.applicant.clone()).collect();
        let names = self.app.accounts().named_collectivites(&refs).await?;
        let lines = rows
            .into_iter()
            .zip(names)
            .map(|(row, (_, name))| {
                Ok(QueueLine {
                    dossier: Dossier::of(row)?,
                    applicant_name: name,
                })
            })
            .collect::<AppResult<_>>()?;
        Ok(Queue { lines, counts })
    }

    /// A dossier as its instructor reads it, by number: the dossier, its collectivité's name,
    /// the last frozen submission, and the history with the actors named. Only for those who
    /// instruct; `NotFound` for an unknown (or malformed) number, `Forbidden` outside the
    /// scope, as [`Dossiers::by_number`].
    pub async fn instruction_file(
        &self,
        p: &Principal,
        number: &str,
    ) -> AppResult<InstructionFile> {
        if !p.scope().can(Action::InstructDossiers) {
            return Err(AppError::Forbidden);
        }
        if DossierNumber::parse(number).is_err() {
            return Err(AppError::NotFound(format!(
                "dossier {} introuvable",
                number.chars().take(40).collect::<String>()
            )));
        }
        let dossier = self.by_number(p, number).await?;
        let id = dossier.row.id;
        let frozen = self.frozen_of(id).await?;
        let mut history = Vec::new();
        for h in store::history(&self.app.db, id).await? {
            let actor = self.actor_name(&h.actor).await?;
            history.push((h, actor));
        }
        let applicant_name = self
            .app
            .accounts()
            .name_or_reference(&dossier.row.applicant)
            .await?;
        let service_name = match dossier.row.service_id {
            Some(sid) => accounts_store::find_service(&self.app.db, sid)
                .await?
                .map(|s| s.name),
            None => None,
        };
        Ok(InstructionFile {
            dossier,
            applicant_name,
            service_name,
            frozen,
            history,
        })
    }

    /// Who a history line names, in words.
    async fn actor_name(&self, actor: &str) -> AppResult<String> {
        Ok(match actor {
            "system" => "Guichet (décision automatique)".into(),
            "cli" => "Administration (ligne de commande)".into(),
            "demo" => "Données de démonstration".into(),
            other => match other
                .strip_prefix("user:")
                .and_then(|n| n.parse::<i64>().ok())
            {
                Some(uid) => accounts_store::find_user(&self.app.db, uid)
                    .await?
                    .map(|u| u.display_name)
                    .unwrap_or_else(|| format!("compte n° {uid}")),
                None => other.to_string(),
            },
        })
    }

    /// Follows or stops following a dossier (those who instruct and see it): its « Suivis »
    /// tab.
    pub async fn follow(&self, p: &Principal, id: i64, follow: bool) -> AppResult<()> {
        if !p.scope().can(Action::InstructDossiers) {
            return Err(AppError::Forbidden);
        }
        self.visible_row(p, id).await?;
        let now = self.app.now_ts();
        let mut tx = self.app.db.begin_write().await?;
        store::set_follow(&mut tx, id, p.user_id, follow, &now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether the principal follows the dossier.
    pub async fn follows(&self, p: &Principal, id: i64) -> AppResult<bool> {
        Ok(store::follows(&self.app.db, id, p.user_id).await?)
    }

    /// The instructors a dossier may be assigned to: the active instructors of its service.
    pub async fn assignable(&self, p: &Principal, id: i64) -> AppResult<Vec<(i64, String)>> {
        let row = self.visible_row(p, id).await?;
        let Some(service_id) = row.service_id else {
            return Ok(Vec::new());
        };
        let mut conn = self.app.db.acquire().await?;
        Ok(accounts_store::users_of_service_in(
            &mut conn,
            service_id,
            &guichet_domain::access::ServiceSet::All,
        )
        .await?
        .into_iter()
        .filter(|u| u.role == Role::Instructeur && u.disabled_at.is_none())
        .map(|u| (u.id, u.display_name))
        .collect())
    }

    /// Who the dossier is assigned to (id and name).
    pub async fn assignee(&self, p: &Principal, id: i64) -> AppResult<Option<(i64, String)>> {
        self.visible_row(p, id).await?;
        match store::assignee(&self.app.db, id).await? {
            Some(uid) => Ok(Some((
                uid,
                accounts_store::find_user(&self.app.db, uid)
                    .await?
                    .map(|u| u.display_name)
                    .unwrap_or_else(|| format!("compte n° {uid}")),
            ))),
            None => Ok(None),
        }
    }

    /// Assigns the dossier to one of its service's instructors (`None`: to no one), by an
    /// instructor of that service or an administrator; audited.
    pub async fn assign(&self, p: &Principal, id: i64, to: Option<i64>) -> AppResult<()> {
        let row = self.visible_row(p, id).await?;
        let actor = actor_on(p, &row);
        if !matches!(actor, Actor::Instructor | Actor::Administrator) {
            return Err(AppError::Forbidden);
        }
        if let Some(uid) = to {
            if !self.assignable(p, id).await?.iter().any(|(u, _)| *u == uid) {
                return Err(AppError::Invalid(
                    "un dossier s’attribue à un instructeur de son service".into(),
                ));
            }
        }
        let before = store::assignee(&self.app.db, id).await?;
        let now = self.app.now_ts();
        let mut tx = self.app.db.begin_write().await?;
        store::set_assignee(&mut tx, id, to, p.user_id, &now).await?;
        audit::record(
            &mut tx,
            &self.app.clock,
            AuditActor::User(p.user_id),
            "dossier.attribution",
            "dossier",
            &id.to_string(),
            Some(&json!({"instructeur": before})),
            Some(&json!({"instructeur": to})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The dossier's private annotations (those who instruct and see it): author's name,
    /// text and when, oldest first. Never shown to the collectivité.
    pub async fn annotations(
        &self,
        p: &Principal,
        id: i64,
    ) -> AppResult<Vec<(String, String, guichet_storage::Timestamp)>> {
        if !p.scope().can(Action::InstructDossiers) {
            return Err(AppError::Forbidden);
        }
        self.visible_row(p, id).await?;
        let mut out = Vec::new();
        for (_, author, body, at) in store::annotations(&self.app.db, id).await? {
            let name = accounts_store::find_user(&self.app.db, author)
                .await?
                .map(|u| u.display_name)
                .unwrap_or_else(|| format!("compte n° {author}"));
            out.push((name, body, at));
        }
        Ok(out)
    }

    /// Adds a private annotation, by an instructor of the dossier's service or an
    /// administrator; audited (its length, not its text).
    pub async fn annotate(&self, p: &Principal, id: i64, body: &str) -> AppResult<i64> {
        let row = self.visible_row(p, id).await?;
        let actor = actor_on(p, &row);
        if !matches!(actor, Actor::Instructor | Actor::Administrator) {
            return Err(AppError::Forbidden);
        }
        let body = body.trim();
        if body.is_empty() {
            return Err(AppError::Invalid(
                "l’annotation est vide : écrivez-la avant de l’enregistrer".into(),
            ));
        }
        let n = body.chars().count();
        if n > MAX_FIELD_CHARS {
            return Err(AppError::Invalid(format!(
                "l’annotation est trop longue ({n} caractères ; {MAX_FIELD_CHARS} au plus)"
            )));
        }
        let now = self.app.now_ts();
        let mut tx = self.app.db.begin_write().await?;
        let a = store::insert_annotation(&mut *tx, id, p.user_id, body, &now).await?;
        audit::record(
            &mut tx,
            &self.app.clock,
            AuditActor::User(p.user_id),
            "dossier.annotation",
            "dossier",
            &id.to_string(),
            None,
            Some(&json!({"annotation": a, "caracteres": n})),
        )
        .await?;
        tx.commit().await?;
        Ok(a)
    }

    /// The dossier's labels (those who instruct and see it).
    pub async fn labels(&self, p: &Principal, id: i64) -> AppResult<Vec<String>> {
        if !p.scope().can(Action::InstructDossiers) {
            return Err(AppError::Forbidden);
        }
        self.visible_row(p, id).await?;
        Ok(store::labels(&self.app.db, id).await?)
    }

    /// Puts a label on the dossier or takes it off, by an instructor of its service or an
    /// administrator: a word or a few, at most 40 characters, 10 labels a dossier.
    pub async fn set_label(&self, p: &Principal, id: i64, label: &str, on: bool) -> AppResult<()> {
        let row = self.visible_row(p, id).await?;
        let actor = actor_on(p, &row);
        if !matches!(actor, Actor::Instructor | Actor::Administrator) {
            return Err(AppError::Forbidden);
        }
        let label = parse_label(label)?;
        let current = store::labels(&self.app.db, id).await?;
        if on && !current.contains(&label) && current.len() >= MAX_LABELS {
            return Err(AppError::Invalid(format!(
                "un dossier porte {MAX_LABELS} étiquettes au plus : retirez-en une d’abord"
            )));
        }
        let now = self.app.now_ts();
        let mut tx = self.app.db.begin_write().await?;
        store::set_label(&mut tx, id, &label, on, p.user_id, &now).await?;
        audit::record(
            &mut tx,
            &self.app.clock,
            AuditActor::User(p.user_id),
            if on {
                "dossier.etiquette.ajout"
            } else {
                "dossier.etiquette.retrait"
            },
            "dossier",
            &id.to_string(),
            None,
            Some(&json!({"etiquette": label})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A listed row as a dossier (its JSON columns read).
    pub fn of_row(&self, row: DossierRow) -> AppResult<Dossier> {
        Dossier::of(row)
    }

    /// The last frozen submission's content (what the instructors judge), if it was filed.
    pub async fn frozen(&self, p: &Principal, id: i64) -> AppResult<Option<DraftData>> {
        self.visible_row(p, id).await?;
        self.frozen_of(id).await
    }

    async fn frozen_of(&self, id: i64) -> AppResult<Option<DraftData>> {
        match store::versions(&self.app.db, id).await?.pop() {
            Some(v) => Ok(Some(
                parse_json::<FrozenSubmission>(&v.snapshot, "snapshot")?.donnees,
            )),
            None => Ok(None),
        }
    }

    /// A dossier's history, oldest first.
    pub async fn history(&self, p: &Principal, id: i64) -> AppResult<Vec<HistoryRow>> {
        self.visible_row(p, id).await?;
        Ok(store::history(&self.app.db, id).await?)
    }

    /// A dossier's frozen submissions, oldest first.
    pub async fn versions(&self, p: &Principal, id: i64) -> AppResult<Vec<VersionRow>> {
        self.visible_row(p, id).await?;
        Ok(store::versions(&self.app.db, id).await?)
    }

    /// What the dossier still lacks, and the engine's verdict and indicative amount with its
    /// own facts and expenses.
    pub async fn check(&self, p: &Principal, id: i64) -> AppResult<Check> {
        let d = self.get(p, id).await?;
        self.check_dossier(&d).await
    }

    /// Submits a draft (or resubmits a dossier after a correction) if it is still at
    /// `seen_version`, complete, eligible and within its measure's filing window. The version
    /// is checked by the write itself, after the number is taken: a stale submission rolls
    /// its number back with it.
    pub async fn submit(&self, p: &Principal, id: i64, seen_version: i64) -> AppResult<Submitted> {
        let d = self.get(p, id).await?;
        self.require_applicant(p, &d.row)?;
        let event = if d.row.state == State::EnCorrection {
            Event::Resubmit
        } else {
            Event::Submit
        };
        transition(d.row.state, &event, &Actor::Applicant).map_err(refusal)?;
        // The window first, so that a late dossier is told so rather than found ineligible
        // (a resubmission after a correction is not a new filing: the window does not apply).
        if event == Event::Submit {
            self.check_window(&d.row.measure)?;
        }
        let check = self.check_dossier(&d).await?;
        let ev = ready_to_submit(&check)?;
        if event == Event::Resubmit {
            return self.resubmit(p, &d, seen_version, &check).await;
        }
        self.first_submission(p, &d, seen_version, &check, ev).await
    }

    /// Every other transition, by the principal (`Actor::of`): taking into instruction, a
    /// correction request, a proposal, a decision, a reopening… The proposal is checked
    /// against the bounds frozen at filing, an acceptance grants the recorded proposal,
    /// whatever the event carried. A dossier changed since `seen_version` is a conflict.
    pub async fn apply(
        &self,
        p: &Principal,
        id: i64,
        seen_version: i64,
        event: Event,
    ) -> AppResult<i64> {
        let d = self.get(p, id).await?;
        let row = &d.row;
        // Decided on a version that is no longer current: the same conflict as a write that
        // loses the race (the state may have moved on, so the transition would be judged on
        // a state the caller never saw).
        if row.version != seen_version {
            return Err(guichet_storage::StorageError::Stale(WHAT).into());
        }
        let event = match event {
            Event::Submit | Event::Resubmit => {
                return Err(AppError::Invalid(
                    "le dépôt d’un dossier se fait par son envoi, qui en vérifie la complétude"
                        .into(),
                ))
            }
            // The target service comes with it: `Dossiers::hand_over`.
            Event::HandOver(_) => {
                return Err(AppError::Invalid(
                    "la transmission nomme le service qui reçoit le dossier".into(),
                ))
            }
            Event::Propose(Proposal::Favourable {
                grant,
                justification,
                ..
            }) => {
                let bounds = d.verdict.as_ref().and_then(|v| v.bornes).ok_or_else(|| {
                    AppError::Invalid(
                        "le programme n’a proposé aucun montant pour ce dossier à son dépôt : seul un avis défavorable motivé est possible"
                            .into(),
                    )
                })?;
                Event::Propose(Proposal::Favourable {
                    grant,
                    justification,
                    bounds,
                })
            }
            Event::Decide(Decision::Accept { .. }) => {
                let proposal = match &row.proposal {
                    Some(text) => parse_json::<RecordedProposal>(text, "proposal")?,
                    None => {
                        return Err(AppError::Invalid(
                            "aucune proposition n’est enregistrée pour ce dossier".into(),
                        ))
                    }
                };
                Event::Decide(Decision::Accept { proposal })
            }
            other => other,
        };
        let actor = actor_on(p, row);
        let t = transition(row.state, &event, &actor).map_err(refusal)?;
        let now = self.app.now_ts();
        let mut changes = vec![
            ("state", SqlValue::from(t.to.as_str())),
            ("updated_at", SqlValue::from(now.clone())),
        ];
        match (&event, t.grant) {
            (Event::Propose(_), grant) => {
                let recorded = match grant {
                    Some(g) => RecordedProposal::Favourable(g),
                    None => RecordedProposal::Unfavourable,
                };
                let text = serde_json::to_string(&recorded)
                    .map_err(|e| AppError::Internal(anyhow::anyhow!("proposition : {e}")))?;
                changes.push(("proposal", SqlValue::from(text)));
            }
            (Event::Decide(Decision::Accept { .. }), Some(g)) => {
                changes.push(("granted_cents", SqlValue::BigInt(Some(g.amount.get()))));
                changes.push(("granted_rate_bp", SqlValue::BigInt(Some(bp(g.rate)))));
            }
            (Event::Reopen(_), _) => {
                changes.push(("granted_cents", SqlValue::BigInt(None)));
                changes.push(("granted_rate_bp", SqlValue::BigInt(None)));
                changes.push(("proposal", SqlValue::String(None)));
            }
            _ => {}
        }
        let message = event_message(&event);
        let mut tx = self.app.db.begin_write().await?;
        let version =
            sql::versioned_update(&mut *tx, "dossiers", id, seen_version, changes, WHAT).await?;
        // A correction request is written to the applicant in the thread, and by email.
        if let (Event::RequestCorrection(_), Some(text), Some(number)) =
            (&event, message.as_deref(), row.number.as_ref())
        {
            self.app
                .messages()
                .system_entry(
                    &mut tx,
                    id,
                    Some(p.user_id),
                    crate::messages::Side::Instruction,
                    &format!("Demande de correction — {text}"),
                    &now,
                )
                .await?;
            let base = self.app.config.base_url.trim_end_matches('/').to_string();
            for to in self.app.messages().agents(&mut tx, &row.applicant).await? {
                self.app
                    .enqueue(
                        &mut tx,
                        &crate::messages::MessageMail {
                            to,
                            numero: number.to_string(),
                            titre: row.title.clone(),
                            de: "Le service instructeur".into(),
                            lien: format!("{base}/espace/dossiers/{id}"),
                        },
                    )
                    .await?;
            }
        }
        let actor_text = AuditActor::User(p.user_id).to_string();
        self.record_transition(
            &mut tx,
            &NewHistory {
                dossier_id: id,
                from: Some(t.from),
                to: t.to,
                event: t.event.as_str(),
                actor: &actor_text,
                message: message.as_deref(),
                amount_cents: t.grant.map(|g| g.amount.get()),
                rate_bp: t.grant.map(|g| bp(g.rate)),
                at: &now,
            },
        )
        .await?;
        audit::record(
            &mut tx,
            &self.app.clock,
            AuditActor::User(p.user_id),
            &format!("dossier.{}", t.event.as_str()),
            "dossier",
            &id.to_string(),
            Some(&json!({"etat": t.from.as_str(), "version": seen_version})),
            Some(&json!({
                "etat": t.to.as_str(),
                "version": version,
                "numero": row.number.as_ref().map(|n| n.to_string()),
                "montant_centimes": t.grant.map(|g| g.amount.get()),
                "taux_points_de_base": t.grant.map(|g| bp(g.rate)),
                "message": message,
            })),
        )
        .await?;
        tx.commit().await?;
        Ok(version)
    }

    /// Hands a dossier to another service (an instructor of the instructing service, with a
    /// reason): it waits there, `depose`, to be taken into instruction. Its number stays.
    pub async fn hand_over(
        &self,
        p: &Principal,
        id: i64,
        seen_version: i64,
        to: &ServiceTarget,
        why: Reason,
    ) -> AppResult<i64> {
        let d = self.get(p, id).await?;
        let row = &d.row;
        if row.version != seen_version {
            return Err(guichet_storage::StorageError::Stale(WHAT).into());
        }
        let actor = actor_on(p, row);
        let event = Event::HandOver(why);
        let t = transition(row.state, &event, &actor).map_err(refusal)?;
        let identity = self.app.accounts().service_identity(to).await?;
        let now = self.app.now_ts();
        let mut tx = self.app.db.begin_write().await?;
        let service = self
            .app
            .accounts()
            .ensure_service_in(&mut tx, &identity, AuditActor::User(p.user_id))
            .await?;
        if Some(service.id) == row.service_id {
            return Err(AppError::Invalid(
                "le dossier est déjà instruit par ce service".into(),
            ));
        }
        let version = sql::versioned_update(
            &mut *tx,
            "dossiers",
            id,
            seen_version,
            vec![
                ("state", SqlValue::from(t.to.as_str())),
                ("service_id", SqlValue::BigInt(Some(service.id))),
                ("updated_at", SqlValue::from(now.clone())),
            ],
            WHAT,
        )
        .await?;
        let message = event_message(&event).map(|m| format!("{m} (vers : {})", service.name));
        let actor_text = AuditActor::User(p.user_id).to_string();
        self.record_transition(
            &mut tx,
            &NewHistory {
                dossier_id: id,
                from: Some(t.from),
                to: t.to,
                event: t.event.as_str(),
                actor: &actor_text,
                message: message.as_deref(),
                amount_cents: None,
                rate_bp: None,
                at: &now,
            },
        )
        .await?;
        audit::record(
            &mut tx,
            &self.app.clock,
            AuditActor::User(p.user_id),
            &format!("dossier.{}", t.event.as_str()),
            "dossier",
            &id.to_string(),
            Some(&json!({"etat": t.from.as_str(), "service_id": row.service_id, "version": seen_version})),
            Some(&json!({"etat": t.to.as_str(), "service_id": service.id, "service": service.code, "version": version, "message": message})),
        )
        .await?;
        tx.commit().await?;
        Ok(version)
    }

    // -----------------------------------------------------------------------------------------

    /// Freezes a submission (a new version: what the instructors judge) and records the
    /// transition that submitted it, in the caller's transaction; answers the version's number.
    async fn freeze_submission(
        &self,
        tx: &mut sqlx::AnyConnection,
        p: &Principal,
        id: i64,
        t: &Transition,
        snapshot: &serde_json::Value,
        now: &str,
    ) -> AppResult<i64> {
        let frozen = store::insert_version(&mut *tx, id, &snapshot.to_string(), now).await?;
        // The acknowledgement's entry in the dossier's thread.
        let number = snapshot["numero"].as_str().unwrap_or_default();
        let entry = if t.event == EventKind::Resubmit {
            format!(
                "Dossier {number} corrigé et déposé à nouveau (version déposée n° {frozen}). Le service instructeur reprend son examen."
            )
        } else {
            format!(
                "Dossier déposé : numéro {number}. Le service instructeur l’examine et vous écrira ici s’il lui manque une information. Le récépissé de dépôt est sur la page du dossier."
            )
        };
        self.app
            .messages()
            .system_entry(tx, id, None, crate::messages::Side::Guichet, &entry, now)
            .await?;
        let actor_text = AuditActor::User(p.user_id).to_string();
        self.record_transition(
            tx,
            &NewHistory {
                dossier_id: id,
                from: Some(t.from),
                to: t.to,
                event: t.event.as_str(),
                actor: &actor_text,
                message: None,
                amount_cents: None,
                rate_bp: None,
                at: now,
            },
        )
        .await?;
        Ok(frozen)
    }

    /// Writes a transition's history line and tells the instructing service's webhooks
    /// (`dossier.etat`), both in the caller's transaction: a change that does not commit is
    /// neither recorded nor announced.
    async fn record_transition(
        &self,
        tx: &mut sqlx::AnyConnection,
        h: &NewHistory<'_>,
    ) -> AppResult<()> {
        store::insert_history(&mut *tx, h).await?;
        let Some(row) = store::find(&mut *tx, h.dossier_id).await? else {
            return Ok(());
        };
        if let Some(service_id) = row.service_id {
            self.app
                .webhooks()
                .publish(
                    tx,
                    service_id,
                    "dossier.etat",
                    &json!({
                        "numero": row.number.as_ref().map(|n| n.to_string()),
                        "mesure": row.measure,
                        "etat_precedent": h.from.map(State::as_str),
                        "etat": h.to.as_str(),
                        "evenement": h.event,
                        "montant_centimes": h.amount_cents,
                        "taux_points_de_base": h.rate_bp,
                        "message": h.message,
                        "date": h.at,
                    }),
                )
                .await?;
        }
        Ok(())
    }

    async fn visible_row(&self, p: &Principal, id: i64) -> AppResult<DossierRow> {
        let row = store::find(&self.app.db, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        self.ensure_visible(p, id).await?;
        Ok(row)
    }

    async fn ensure_visible(&self, p: &Principal, id: i64) -> AppResult<()> {
        let (services, collectivites) = visibility(p);
        let mut conn = self.app.db.acquire().await?;
        let seen = store::visible(
            &mut conn,
            id,
            &Visibility {
                services: &services,
                collectivites: &collectivites,
                vintage: i64::from(self.app.programme.vintage.year()),
            },
        )
        .await?;
        if seen {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }

    /// Refuses anyone but an agent of the dossier's collectivité (for `pieces`).
    pub(crate) fn require_applicant_of(&self, p: &Principal, row: &DossierRow) -> AppResult<()> {
        self.require_applicant(p, row)
    }

    fn require_applicant(&self, p: &Principal, row: &DossierRow) -> AppResult<()> {
        let actor = actor_on(p, row);
        if actor == Actor::Applicant {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }

    /// Checks a draft's content against the form and the programme's plausibility bounds.
    fn validate(&self, measure: &str, mut data: DraftData) -> AppResult<DraftData> {
        let programme = &self.app.programme;
        let bounds = &programme.plausibility;
        let fields: BTreeMap<&str, &guichet_programme::Field> = programme
            .form
            .blocks_for(measure)
            .flat_map(|b| b.fields.iter())
            .map(|f| (f.id.as_str(), f))
            .collect();
        let amount = |label: &str, c: Cents| -> AppResult<Cents> {
            if c < Cents::ZERO {
                return Err(AppError::Invalid(format!(
                    "{label} : un montant ne peut être négatif ({c})"
                )));
            }
            if c > bounds.max_amount {
                return Err(AppError::Invalid(format!(
                    "{label} : montant invraisemblable, {c} (au plus {}, le total du programme ; vérifiez la saisie)",
                    bounds.max_amount
                )));
            }
            Ok(c)
        };
        let date = |label: &str, raw: &str| -> AppResult<NaiveDate> {
            let d = iso_date(raw).ok_or_else(|| {
                AppError::Invalid(format!(
                    "{label} : date invalide, « {} » (format AAAA-MM-JJ, par exemple 2021-06-01)",
                    raw.trim()
                ))
            })?;
            if d < bounds.first_date || d > bounds.last_date {
                return Err(AppError::Invalid(format!(
                    "{label} : date invraisemblable, {} (le programme attend une date du {} au {})",
                    d.format("%d/%m/%Y"),
                    bounds.first_date.format("%d/%m/%Y"),
                    bounds.last_date.format("%d/%m/%Y")
                )));
            }
            Ok(d)
        };
        let mut dates: BTreeMap<&str, NaiveDate> = BTreeMap::new();
        for (id, value) in data.champs.iter_mut() {
            let Some(field) = fields.get(id.as_str()) else {
                return Err(AppError::Invalid(format!(
                    "champ inconnu pour cette mesure : « {id} »"
                )));
            };
            *value = value.trim().to_string();
            if value.is_empty() {
                continue;
            }
            let label = format!("« {} »", field.label);
            let max = field.max_chars.unwrap_or(MAX_FIELD_CHARS);
            if value.chars().count() > max {
                return Err(AppError::Invalid(format!(
                    "{label} : texte trop long ({} caractères ; {max} au plus)",
                    value.chars().count()
                )));
            }
            match &field.kind {
                FieldKind::Text | FieldKind::LongText => {}
                FieldKind::Number => {
                    let n: u64 = value
                        .replace([' ', '\u{a0}', '\u{202f}'], "")
                        .parse()
                        .map_err(|_| {
                            AppError::Invalid(format!(
                                "{label} : un nombre entier positif est attendu, « {value} » reçu"
                            ))
                        })?;
                    if n > bounds.max_count {
                        return Err(AppError::Invalid(format!(
                            "{label} : nombre invraisemblable, « {value} » (vérifiez la saisie)"
                        )));
                    }
                }
                FieldKind::Amount => {
                    let c = Cents::parse_euros(value)
                        .map_err(|e| AppError::Invalid(format!("{label} : {e}")))?;
                    amount(&label, c)?;
                }
                FieldKind::Date => {
                    dates.insert(field.id.as_str(), date(&label, value)?);
                }
                FieldKind::Boolean => {
                    if !matches!(value.as_str(), "oui" | "non") {
                        return Err(AppError::Invalid(format!(
                            "{label} : « oui » ou « non » est attendu, « {value} » reçu"
                        )));
                    }
                }
                FieldKind::Choice(values) => {
                    if !values.iter().any(|v| v == value) {
                        return Err(AppError::Invalid(format!(
                            "{label} : « {value} » n’est pas une valeur possible ({})",
                            values.join(", ")
                        )));
                    }
                }
                FieldKind::Checklist(values) => {
                    for item in value.lines().map(str::trim).filter(|l| !l.is_empty()) {
                        if !values.iter().any(|v| v == item) {
                            return Err(AppError::Invalid(format!(
                                "{label} : « {item} » n’est pas un élément de la liste"
                            )));
                        }
                    }
                }
                FieldKind::Communes => {
                    for code in value.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                        guichet_domain::InseeCode::parse(code)
                            .map_err(|e| AppError::Invalid(format!("{label} : {e}")))?;
                    }
                }
                FieldKind::Email => {
                    *value = parse_email(value)?;
                }
                FieldKind::Phone => {
                    let ok = value.len() <= 30
                        && value
                            .chars()
                            .all(|c| c.is_ascii_digit() || " +.-()".contains(c));
                    if !ok {
                        return Err(AppError::Invalid(format!(
                            "{label} : numéro de téléphone invalide, « {value} »"
                        )));
                    }
                }
            }
        }
        if let (Some(start), Some(end)) = (dates.get("date_debut"), dates.get("date_fin")) {
            if end < start {
                return Err(AppError::Invalid(format!(
                    "la date de fin prévue ({}) précède la date de début ({})",
                    end.format("%d/%m/%Y"),
                    start.format("%d/%m/%Y")
                )));
            }
        }
        let rules = &programme.rules;
        let mut total = Cents::ZERO;
        for (category, c) in &data.depenses {
            if rules.category(category).is_none() {
                return Err(AppError::Invalid(format!(
                    "catégorie de dépense inconnue : « {category} » (catégories : {})",
                    rules
                        .categories
                        .iter()
                        .map(|c| c.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            let c = amount(&format!("dépense « {category} »"), *c)?;
            total = total
                .checked_add(c)
                .ok()
                .filter(|t| *t <= bounds.max_amount)
                .ok_or_else(|| {
                    AppError::Invalid(format!(
                        "somme des dépenses : montant invraisemblable (au plus {})",
                        bounds.max_amount
                    ))
                })?;
        }
        for line in data.cofinancements.iter_mut() {
            line.source = line.source.trim().to_string();
            if line.source.is_empty() || line.source.chars().count() > MAX_TITLE_CHARS {
                return Err(AppError::Invalid(format!(
                    "cofinancement : la source est obligatoire ({MAX_TITLE_CHARS} caractères au plus)"
                )));
            }
            amount(&format!("cofinancement « {} »", line.source), line.montant)?;
        }
        if let Some(dep) = &data.departement {
            let code = DepartementCode::parse(dep.trim())
                .map_err(|e| AppError::Invalid(format!("département du projet : {e}")))?;
            data.departement = Some(code.as_str().to_string());
        }
        Ok(data)
    }

    async fn check_dossier(&self, d: &Dossier) -> AppResult<Check> {
        let programme = &self.app.programme;
        let measure = d.row.measure.as_str();
        let applicant = self
            .app
            .simulation()
            .resolve_applicant(&ApplicantRef::One(d.row.applicant.clone()))
            .await?;
        let value = |id: &str| -> Option<String> {
            let v = d.data.champs.get(id).map(|v| v.trim().to_string());
            match (id, v) {
                (_, Some(v)) if !v.is_empty() => Some(v),
                ("titre", _) => Some(d.row.title.clone()).filter(|t| !t.trim().is_empty()),
                _ => None,
            }
        };
        let mut missing_fields = Vec::new();
        let mut facts = applicant.facts();
        let rules = &programme.rules;
        for block in programme.form.blocks_for(measure) {
            for field in &block.fields {
                let v = value(&field.id);
                if field.required && v.is_none() {
                    missing_fields.push(MissingField {
                        bloc: block.title.clone(),
                        champ: field.id.clone(),
                        libelle: field.label.clone(),
                        fait: field.fact.clone(),
                    });
                }
                let (Some(fact), Some(v)) = (&field.fact, v) else {
                    continue;
                };
                let Some(i) = rules.fact(fact) else { continue };
                let parsed = match field.kind {
                    FieldKind::Communes => {
                        let n = v.split(',').filter(|c| !c.trim().is_empty()).count();
                        Ok(Value::Nombre(rust_decimal::Decimal::from(n)))
                    }
                    FieldKind::Amount if rules.facts[i].ty == Type::Montant => {
                        Value::parse_literal(&v, Type::Montant)
                    }
                    _ => Value::parse_literal(&v, rules.facts[i].ty),
                };
                if let Ok(parsed) = parsed {
                    facts.insert(fact.clone(), parsed);
                }
            }
        }
        let mut own_records = BTreeMap::new();
        for (fact, counted) in OWN_RECORDS {
            if rules.fact(fact).is_none() {
                continue;
            }
            let n =
                store::accepted_count(&self.app.db, &d.row.applicant, counted, d.row.id).await?;
            facts.insert(
                fact.to_string(),
                Value::Nombre(rust_decimal::Decimal::from(n)),
            );
            own_records.insert(fact.to_string(), n);
        }
        let pieces = guichet_storage::pieces::current(&self.app.db, d.row.id).await?;
        let mut documents = Vec::new();
        let mut missing_documents = Vec::new();
        for r in programme
            .form
            .documents_for(measure, applicant.region.as_deref())
            .filter(|r| r.required)
        {
            let label = programme
                .form
                .document(&r.document)
                .map(|k| k.label.clone())
                .unwrap_or_else(|| r.document.clone());
            if !pieces.iter().any(|p| p.kind == r.document) {
                missing_documents.push(label.clone());
            }
            documents.push(label);
        }
        let situation = Situation {
            date: Some(self.app.today()),
            facts,
            expenses: d
                .data
                .depenses
                .iter()
                .map(|(c, a)| (c.clone(), *a))
                .collect(),
        };
        let evaluation = rules
            .prepare(&situation)
            .map_err(|e| e.to_string())
            .and_then(|prepared| {
                rules
                    .evaluate(measure, &prepared, false)
                    .map_err(|e| e.to_string())
            });
        Ok(Check {
            missing_fields,
            documents,
            missing_documents,
            pieces,
            evaluation,
            applicant,
            own_records,
        })
    }

    fn check_window(&self, measure: &str) -> AppResult<()> {
        let today = self.app.today();
        let Some(m) = self.app.programme.measure(measure) else {
            return Err(AppError::NotFound(format!(
                "mesure inconnue : « {measure} »"
            )));
        };
        if let Some(opens) = m.opens.filter(|o| today < *o) {
            return Err(AppError::Invalid(format!(
                "le dépôt des dossiers de la mesure « {} » ouvre le {}",
                m.name,
                opens.format("%d/%m/%Y")
            )));
        }
        if let Some(closes) = m.closes.filter(|c| today > *c) {
            return Err(AppError::Invalid(format!(
                "le dépôt des dossiers de la mesure « {} » est clos depuis le {}",
                m.name,
                closes.format("%d/%m/%Y")
            )));
        }
        Ok(())
    }

    async fn first_submission(
        &self,
        p: &Principal,
        d: &Dossier,
        seen_version: i64,
        check: &Check,
        ev: &Evaluation,
    ) -> AppResult<Submitted> {
        let programme = &self.app.programme;
        let row = &d.row;
        let id = row.id;
        let measure = row.measure.as_str();
        // Routing: the project's département is the applicant's own when it has one; an
        // applicant spanning several says where the project takes place.
        let footprint = guichet_domain::TerritoryFootprint {
            departements: check.applicant.departements.clone(),
            regions: check.applicant.regions.clone(),
        };
        let departement = match &d.data.departement {
            Some(code) => Some(
                DepartementCode::parse(code)
                    .map_err(|e| AppError::Invalid(format!("département du projet : {e}")))?,
            ),
            None => None,
        };
        let target = programme
            .routing
            .instructing_service(
                measure,
                ProjectPlace {
                    footprint: &footprint,
                    departement: departement.as_ref(),
                },
            )
            .map_err(|e| {
                AppError::Invalid(format!(
                    "le dossier ne peut être orienté vers son service instructeur : {e}"
                ))
            })?;
        let identity = self.app.accounts().service_identity(&target).await?;
        let agent = accounts_store::find_user(&self.app.db, p.user_id)
            .await?
            .ok_or(AppError::Forbidden)?;
        let verdict = FiledVerdict::of(ev);
        let verdict_text = serde_json::to_string(&verdict)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("verdict : {e}")))?;
        let year = self.app.today().year();
        let territory = NumberTerritory::of(&target);
        let now = self.app.now_ts();
        let measure_name = programme
            .measure(measure)
            .map(|m| m.name.clone())
            .unwrap_or_else(|| measure.to_string());

        let mut tx = self.app.db.begin_write().await?;
        let service = self
            .app
            .accounts()
            .ensure_service_in(&mut tx, &identity, AuditActor::User(p.user_id))
            .await?;
        // The number first: a submission that fails later (a stale version, say) rolls the
        // sequence back with it, so numbers have no gaps.
        let sequence = store::next_sequence(
            &mut *tx,
            programme.number_prefix.as_str(),
            &territory.to_string(),
            i64::from(year),
        )
        .await?;
        let number = DossierNumber::new(
            programme.number_prefix.clone(),
            territory,
            u16::try_from(year).unwrap_or(0),
            u64::try_from(sequence).unwrap_or(0),
        )
        .map_err(|e| AppError::Internal(anyhow::anyhow!("numéro de dossier : {e}")))?;
        let t = transition(row.state, &Event::Submit, &Actor::Applicant).map_err(refusal)?;
        let mut version = sql::versioned_update(
            &mut *tx,
            "dossiers",
            id,
            seen_version,
            vec![
                ("state", SqlValue::from(t.to.as_str())),
                ("number", SqlValue::from(number.to_string())),
                ("submitted_at", SqlValue::from(now.clone())),
                ("service_id", SqlValue::BigInt(Some(service.id))),
                ("verdict", SqlValue::from(verdict_text)),
                (
                    "programme_version",
                    SqlValue::from(programme.version.clone()),
                ),
                ("updated_at", SqlValue::from(now.clone())),
            ],
            WHAT,
        )
        .await?;
        let departements: Vec<String> = footprint.departements.iter().cloned().collect();
        let regions: Vec<String> = footprint.regions.iter().cloned().collect();
        store::set_territories(&mut tx, id, &departements, &regions).await?;
        let snapshot = json!({
            "numero": number.to_string(),
            "mesure": measure,
            "titre": row.title,
            "demandeur": row.applicant.to_string(),
            "donnees": d.data,
            "pieces": frozen_pieces(&check.pieces),
            "verdict": verdict,
            "version_programme": programme.version,
            "depose_le": now,
        });
        let frozen = self
            .freeze_submission(&mut tx, p, id, &t, &snapshot, &now)
            .await?;
        audit::record(
            &mut tx,
            &self.app.clock,
            AuditActor::User(p.user_id),
            "dossier.depot",
            "dossier",
            &id.to_string(),
            Some(&json!({"etat": t.from.as_str(), "version": seen_version})),
            Some(&json!({
                "etat": t.to.as_str(),
                "numero": number.to_string(),
                "service": service.code,
                "version_deposee": frozen,
                "version_programme": programme.version,
            })),
        )
        .await?;
        let paris = self
            .app
            .clock
            .now()
            .with_timezone(&chrono_tz::Europe::Paris)
            .format("%d/%m/%Y à %H:%M")
            .to_string();
        self.app
            .enqueue(
                &mut tx,
                &AcknowledgementMail {
                    to: agent.email.clone(),
                    numero: number.to_string(),
                    titre: row.title.clone(),
                    mesure: measure_name,
                    service: service.name.clone(),
                    depose_le: paris,
                },
            )
            .await?;
        let mut state = t.to;
        if programme.routing.decides_automatically(measure) {
            let (to, v) = self
                .decide_automatically(
                    &mut tx,
                    d,
                    version,
                    verdict.bornes,
                    &check.own_records,
                    &now,
                )
                .await?;
            state = to;
            version = v;
        }
        tx.commit().await?;
        self.app.wake_workers();
        Ok(Submitted {
            number,
            state,
            version,
            service_id: service.id,
            service_name: service.name,
        })
    }

    /// The automatic desk (FranceConnect / API): accepts a dossier the engine grants an amount
    /// within what remains of the envelope, or leaves it to manual instruction saying why.
    async fn decide_automatically(
        &self,
        tx: &mut sqlx::AnyConnection,
        d: &Dossier,
        seen_version: i64,
        bounds: Option<ProposalBounds>,
        own_records: &BTreeMap<String, i64>,
        now: &str,
    ) -> AppResult<(State, i64)> {
        let id = d.row.id;
        let measure = d.row.measure.as_str();
        // The caps on the collectivité's own grants were judged before this transaction;
        // another of its dossiers may have been accepted since (desk submissions are
        // serialised from here on, by their shared sequence row).
        let mut changed = false;
        for (fact, counted) in OWN_RECORDS {
            if let Some(seen) = own_records.get(fact) {
                let now_count =
                    store::accepted_count(&mut *tx, &d.row.applicant, counted, id).await?;
                changed |= now_count != *seen;
            }
        }
        let event = match bounds {
            None => Event::ReferToInstruction(reason(
                "le programme ne propose aucun montant pour ce dossier : il est instruit par le service",
            )?),
            Some(_) if changed => Event::ReferToInstruction(reason(
                "un autre dossier de la collectivité a été accepté par le guichet pendant ce dépôt : le service instructeur vérifie les plafonds de financements",
            )?),
            Some(bounds) => {
                let remaining = self.remaining_envelope(&mut *tx, measure).await?;
                Event::AcceptAutomatically(AutomaticAcceptance {
                    bounds,
                    remaining_envelope: remaining,
                })
            }
        };
        let (event, t) = match transition(State::Depose, &event, &Actor::System) {
            Ok(t) => (event, t),
            Err(refused) => {
                let event = Event::ReferToInstruction(reason(&capitalise(&refused.to_string()))?);
                let t = transition(State::Depose, &event, &Actor::System).map_err(refusal)?;
                (event, t)
            }
        };
        let mut changes = vec![
            ("state", SqlValue::from(t.to.as_str())),
            ("updated_at", SqlValue::from(now.to_string())),
        ];
        if let Some(Grant { amount, rate }) = t.grant {
            changes.push(("granted_cents", SqlValue::BigInt(Some(amount.get()))));
            changes.push(("granted_rate_bp", SqlValue::BigInt(Some(bp(rate)))));
        }
        let version =
            sql::versioned_update(&mut *tx, "dossiers", id, seen_version, changes, WHAT).await?;
        let message = event_message(&event);
        let system = AuditActor::System.to_string();
        self.record_transition(
            &mut *tx,
            &NewHistory {
                dossier_id: id,
                from: Some(t.from),
                to: t.to,
                event: t.event.as_str(),
                actor: &system,
                message: message.as_deref(),
                amount_cents: t.grant.map(|g| g.amount.get()),
                rate_bp: t.grant.map(|g| bp(g.rate)),
                at: now,
            },
        )
        .await?;
        audit::record(
            &mut *tx,
            &self.app.clock,
            AuditActor::System,
            &format!("dossier.{}", t.event.as_str()),
            "dossier",
            &id.to_string(),
            Some(&json!({"etat": t.from.as_str()})),
            Some(&json!({
                "etat": t.to.as_str(),
                "montant_centimes": t.grant.map(|g| g.amount.get()),
                "motif": message,
            })),
        )
        .await?;
        Ok((t.to, version))
    }

    /// What remains of the envelope the automatic desk draws on. The programme data gives no
    /// envelope per measure: the desk's measures draw on their axis's envelope (Axe 2, 24 M€),
    /// less every amount granted to the axis's measures. Without an axis envelope, the check
    /// is skipped (the whole programme's envelope stands in). Concurrent submissions to the
    /// desk are serialised by the numbering sequence's row (one per territory and year; the
    /// desk's measures are all national), which each takes before reading this sum.
    async fn remaining_envelope(
        &self,
        conn: &mut sqlx::AnyConnection,
        measure: &str,
    ) -> AppResult<Cents> {
        let programme = &self.app.programme;
        let axis = programme
            .axes
            .iter()
            .find(|a| a.measures.iter().any(|m| m.id.as_str() == measure));
        let (envelope, measures): (Cents, Vec<&str>) = match axis.and_then(|a| a.envelope) {
            Some(e) => (
                e,
                axis.map(|a| a.measures.iter().map(|m| m.id.as_str()).collect())
                    .unwrap_or_default(),
            ),
            None => (programme.envelope, vec![measure]),
        };
        let mut granted = 0i64;
        for m in measures {
            granted = granted.saturating_add(store::granted_sum(&mut *conn, m).await?);
        }
        Ok(Cents::new(envelope.get().saturating_sub(granted).max(0)))
    }

    async fn resubmit(
        &self,
        p: &Principal,
        d: &Dossier,
        seen_version: i64,
        check: &Check,
    ) -> AppResult<Submitted> {
        let row = &d.row;
        let id = row.id;
        let t = transition(row.state, &Event::Resubmit, &Actor::Applicant).map_err(refusal)?;
        let (Some(number), Some(service_id)) = (row.number.clone(), row.service_id) else {
            return Err(AppError::Internal(anyhow::anyhow!(
                "dossier {id} en correction sans numéro ni service"
            )));
        };
        let service = accounts_store::find_service(&self.app.db, service_id)
            .await?
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("service {service_id} absent")))?;
        let now = self.app.now_ts();
        let mut tx = self.app.db.begin_write().await?;
        let version = sql::versioned_update(
            &mut *tx,
            "dossiers",
            id,
            seen_version,
            vec![
                ("state", SqlValue::from(t.to.as_str())),
                ("updated_at", SqlValue::from(now.clone())),
            ],
            WHAT,
        )
        .await?;
        let snapshot = json!({
            "numero": number.to_string(),
            "mesure": row.measure,
            "titre": row.title,
            "demandeur": row.applicant.to_string(),
            "donnees": d.data,
            "pieces": frozen_pieces(&check.pieces),
            "verdict": d.verdict,
            "version_programme": row.programme_version,
            "depose_le": now,
        });
        let frozen = self
            .freeze_submission(&mut tx, p, id, &t, &snapshot, &now)
            .await?;
        audit::record(
            &mut tx,
            &self.app.clock,
            AuditActor::User(p.user_id),
            &format!("dossier.{}", EventKind::Resubmit.as_str()),
            "dossier",
            &id.to_string(),
            Some(&json!({"etat": t.from.as_str(), "version": seen_version})),
            Some(&json!({"etat": t.to.as_str(), "numero": number.to_string(), "version_deposee": frozen})),
        )
        .await?;
        tx.commit().await?;
        Ok(Submitted {
            number,
            state: t.to,
            version,
            service_id,
            service_name: service.name,
        })
    }
}

fn reason(text: &str) -> AppResult<Reason> {
    Reason::parse(text).map_err(|e| AppError::Internal(anyhow::anyhow!("motif : {e}")))
}

fn parse_title(title: &str) -> AppResult<String> {
    let title = title.trim();
    if title.is_empty() {
        return Err(AppError::Invalid(
            "le titre du projet est obligatoire".into(),
        ));
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(AppError::Invalid(format!(
            "le titre du projet est trop long ({} caractères ; {MAX_TITLE_CHARS} au plus)",
            title.chars().count()
        )));
    }
    Ok(title.to_string())
}

/// The evaluation of a dossier that may be submitted, or why it may not.
/// The documents a frozen submission holds: what the instructors judge (their content stays in
/// the blob store under the digest).
fn frozen_pieces(pieces: &[crate::pieces::PieceRow]) -> serde_json::Value {
    serde_json::Value::Array(
        pieces
            .iter()
            .map(|p| {
                json!({
                    "id": p.id,
                    "type": p.kind,
                    "nom": p.filename,
                    "type_media": p.media_type,
                    "taille": p.size,
                    "sha256": p.sha256,
                })
            })
            .collect(),
    )
}

fn ready_to_submit(check: &Check) -> AppResult<&Evaluation> {
    let ev = check
        .evaluation
        .as_ref()
        .map_err(|e| AppError::Invalid(format!("le dossier ne peut être évalué : {e}")))?;
    let mut missing: Vec<String> = check
        .missing_fields
        .iter()
        .map(|f| format!("« {} » ({})", f.libelle, f.bloc))
        .collect();
    for m in &ev.missing {
        // A fact whose field is listed already.
        if check
            .missing_fields
            .iter()
            .any(|f| f.fait.as_deref() == Some(m.nom.as_str()))
        {
            continue;
        }
        let label = format!("« {} »", m.question.as_deref().unwrap_or(&m.titre));
        if !missing.contains(&label) {
            missing.push(label);
        }
    }
    for doc in &check.missing_documents {
        missing.push(format!("la pièce « {doc} »"));
    }
    if !missing.is_empty() {
        return Err(AppError::Invalid(format!(
            "le dossier est incomplet : il manque {}",
            missing.join(", ")
        )));
    }
    if !ev.eligible {
        let reasons: Vec<&str> = ev
            .reasons
            .iter()
            .filter(|r| r.code != MISSING_REASON)
            .map(|r| r.message.as_str())
            .collect();
        return Err(AppError::Invalid(format!(
            "le dossier n’est pas éligible : {}",
            reasons.join(" ; ")
        )));
    }
    Ok(ev)
}
