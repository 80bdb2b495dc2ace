//! What an instructor does to a dossier from its page (`/instruction/dossiers/{numero}`):
//! take it into instruction, ask for a correction, propose, decide, hand it over; an
//! administrator reopens a decision. The forms offered are those the domain's transition
//! function allows the principal in the dossier's state; the use cases decide again on POST
//! (`app.dossiers().apply`, `hand_over`), with the version the page was read at.

use super::euros_input;
use super::instruction::{dossier_page, Notice};
use crate::ctx::Ctx;
use crate::error::extract::{PageForm, PagePath};
use crate::error::PageError;
use axum::extract::State as AxumState;
use axum::response::{IntoResponse, Redirect, Response};
use guichet_app::dossiers::Dossier;
use guichet_app::{App, Error as AppError};
use guichet_domain::access::ServiceTarget;
use guichet_domain::dossier::{
    Actor, CorrectionKind, CorrectionMessage, CorrectionRequest, Decision, Event, EventKind, Grant,
    Justification, Motivation, Parties, Proposal, Reason, RecordedProposal,
};
use guichet_domain::{Cents, Principal, Rate};
use serde::Deserialize;

/// The forms a dossier's page offers its reader.
#[derive(Default)]
pub struct Actions {
    pub take: bool,
    pub correct: bool,
    pub propose: bool,
    pub resume: bool,
    pub accept: bool,
    pub refuse: bool,
    pub close: bool,
    pub hand_over: bool,
    pub reopen: bool,
    /// Prefilled proposal: the engine's amount and normal rate at filing.
    pub proposed_amount: String,
    pub proposed_rate: String,
    /// The bounds in words (« 80 % au plus, 45 000 € au plus »).
    pub bounds: Option<String>,
    /// What the instructor proposed, in words (for the decision).
    pub proposal: Option<String>,
}

impl Actions {
    pub fn any(&self) -> bool {
        self.take
            || self.correct
            || self.propose
            || self.resume
            || self.accept
            || self.refuse
            || self.close
            || self.hand_over
            || self.reopen
    }
}

fn rate_input(r: Rate) -> String {
    let bp = r.basis_points();
    if bp.is_multiple_of(100) {
        (bp / 100).to_string()
    } else {
        format!("{},{:02}", bp / 100, bp % 100)
            .trim_end_matches('0')
            .to_string()
    }
}

/// Whether `p` writes in the dossier's thread as its service (an instructor of the instructing
/// service, or an administrator).
pub fn writes_as_service(p: &Principal, d: &Dossier) -> bool {
    matches!(
        Actor::of(
            p,
            Parties {
                applicants: std::slice::from_ref(&d.row.applicant),
                instructing_service: d.row.service_id,
            },
        ),
        Actor::Instructor | Actor::Administrator
    )
}

/// The actions `p` may take on `d`, by the domain's rules.
pub fn actions(p: &Principal, d: &Dossier) -> Actions {
    let actor = Actor::of(
        p,
        Parties {
            applicants: std::slice::from_ref(&d.row.applicant),
            instructing_service: d.row.service_id,
        },
    );
    let may = |k: EventKind| k.actor() == actor && k.from_states().contains(&d.row.state);
    let bounds = d.verdict.as_ref().and_then(|v| v.bornes);
    let proposal = d
        .row
        .proposal
        .as_deref()
        .and_then(|t| serde_json::from_str::<RecordedProposal>(t).ok());
    Actions {
        take: may(EventKind::TakeIntoInstruction),
        correct: may(EventKind::RequestCorrection),
        propose: may(EventKind::Propose),
        resume: may(EventKind::ResumeInstruction),
        accept: may(EventKind::Accept)
            && matches!(proposal, Some(RecordedProposal::Favourable(_))),
        refuse: may(EventKind::Refuse),
        close: may(EventKind::SansSuite),
        hand_over: may(EventKind::HandOver),
        reopen: may(EventKind::Reopen),
        proposed_amount: bounds
            .map(|b| euros_input(b.proposed_amount))
            .unwrap_or_default(),
        proposed_rate: bounds.map(|b| rate_input(b.rate)).unwrap_or_default(),
        bounds: bounds.map(|b| {
            let rate = if b.max_rate > b.rate {
                format!(
                    "taux normal {}, taux exceptionnel jusqu’à {} (justification écrite exigée)",
                    b.rate, b.max_rate
                )
            } else {
                format!("taux {}", b.rate)
            };
            format!(
                "Assiette éligible {} ; {rate} ; montant proposé par le programme {}, au plus {}. Tout autre montant exige une justification écrite.",
                b.base, b.proposed_amount, b.max_amount
            )
        }),
        proposal: proposal.map(|r| match r {
            RecordedProposal::Favourable(g) => {
                format!("avis favorable : {} au taux de {}", g.amount, g.rate)
            }
            RecordedProposal::Unfavourable => "avis défavorable".to_string(),
        }),
    }
}

#[derive(Default, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    type_correction: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    avis: String,
    #[serde(default)]
    montant: String,
    #[serde(default)]
    taux: String,
    #[serde(default)]
    justification: String,
    #[serde(default)]
    motivation: String,
    #[serde(default)]
    motif: String,
    #[serde(default)]
    service: String,
}

fn invalid(e: impl std::fmt::Display) -> AppError {
    AppError::Invalid(e.to_string())
}

/// The event a form asks for (the hand-over apart: it names a service).
fn event_of(form: &ActionForm, d: &Dossier) -> Result<Event, AppError> {
    Ok(match form.action.as_str() {
        "prendre" => Event::TakeIntoInstruction,
        "corriger" => Event::RequestCorrection(CorrectionRequest {
            kind: CorrectionKind::parse(&form.type_correction).map_err(|_| {
                invalid("choisissez le type de correction : dossier incomplet ou incorrect")
            })?,
            message: CorrectionMessage::parse(&form.message).map_err(invalid)?,
        }),
        "proposer" => match form.avis.as_str() {
            "favorable" => {
                let amount = Cents::parse_euros(&form.montant)
                    .map_err(|e| invalid(format!("montant proposé : {e}")))?;
                let rate = Rate::parse_percent(&form.taux)
                    .map_err(|e| invalid(format!("taux proposé : {e}")))?;
                let justification = if form.justification.trim().is_empty() {
                    None
                } else {
                    Some(Justification::parse(&form.justification).map_err(invalid)?)
                };
                let bounds = d.verdict.as_ref().and_then(|v| v.bornes).ok_or_else(|| {
                    invalid("le programme n’a proposé aucun montant pour ce dossier à son dépôt : seul un avis défavorable motivé est possible")
                })?;
                Event::Propose(Proposal::Favourable {
                    grant: Grant { amount, rate },
                    justification,
                    bounds,
                })
            }
            "defavorable" => Event::Propose(Proposal::Unfavourable {
                motivation: Motivation::parse(&form.motivation).map_err(invalid)?,
            }),
            _ => return Err(invalid("choisissez l’avis : favorable ou défavorable")),
        },
        "reprendre" => Event::ResumeInstruction(Reason::parse(&form.motif).map_err(invalid)?),
        "accepter" => Event::Decide(Decision::Accept {
            // Replaced by the recorded proposal: an acceptance grants what was proposed.
            proposal: RecordedProposal::Unfavourable,
        }),
        "refuser" => Event::Decide(Decision::Refuse {
            motivation: Motivation::parse(&form.motivation).map_err(invalid)?,
        }),
        "sans_suite" => Event::Decide(Decision::SansSuite {
            motivation: Motivation::parse(&form.motivation).map_err(invalid)?,
        }),
        "rouvrir" => Event::Reopen(Reason::parse(&form.motif).map_err(invalid)?),
        other => {
            return Err(invalid(format!(
                "action inconnue : « {} »",
                other.chars().take(40).collect::<String>()
            )))
        }
    })
}

/// What the page says after an action succeeded.
fn done(action: &str) -> &'static str {
    match action {
        "prendre" => "Le dossier est pris en instruction.",
        "corriger" => "La demande de correction est envoyée : le dossier attend la collectivité.",
        "proposer" => "La proposition est enregistrée : le dossier est instruit.",
        "reprendre" => "L’instruction est reprise.",
        "accepter" => "Le dossier est accepté.",
        "refuser" => "Le dossier est refusé.",
        "sans_suite" => "Le dossier est classé sans suite.",
        "rouvrir" => "La décision est rouverte : le dossier est de nouveau en instruction.",
        "transmettre" => "Le dossier est transmis au service choisi.",
        "message" => "Le message est envoyé ; la collectivité est prévenue par courriel.",
        "suivre" => "Vous suivez ce dossier : il figure dans l’onglet « Suivis ».",
        "ne_plus_suivre" => "Vous ne suivez plus ce dossier.",
        "attribuer" => "L’attribution du dossier est enregistrée.",
        "etiquette" => "Les étiquettes du dossier sont enregistrées.",
        "annoter" => {
            "L’annotation est enregistrée ; seuls ceux qui instruisent le dossier la lisent."
        }
        _ => "C’est fait.",
    }
}

pub async fn act(
    AxumState(app): AxumState<App>,
    ctx: Ctx,
    PagePath(numero): PagePath<String>,
    PageForm(form): PageForm<ActionForm>,
) -> Result<Response, PageError> {
    let path = format!("/instruction/dossiers/{numero}");
    let u = super::require_user(&ctx, &path)?;
    let file = app
        .dossiers()
        .instruction_file(&u.principal, &numero)
        .await?;
    let d = &file.dossier;
    let result = async {
        let version: i64 = form
            .version
            .trim()
            .parse()
            .map_err(|_| invalid("version du dossier manquante"))?;
        if form.action == "transmettre" {
            let to = ServiceTarget::parse(&form.service).map_err(|_| {
                invalid("service destinataire inconnu : un code de département (78), de région (region:11) ou de direction nationale (DINUM)")
            })?;
            let why = Reason::parse(&form.motif).map_err(invalid)?;
            return app
                .dossiers()
                .hand_over(&u.principal, d.row.id, version, &to, why)
                .await;
        }
        let event = event_of(&form, d)?;
        app.dossiers()
            .apply(&u.principal, d.row.id, version, event)
            .await
    }
    .await;
    match result {
        Ok(_) => {
            let action = match form.action.as_str() {
                a @ ("prendre" | "corriger" | "proposer" | "reprendre" | "accepter" | "refuser"
                | "sans_suite" | "rouvrir" | "transmettre") => a,
                _ => "fait",
            };
            // A dossier handed over leaves the instructor's scope: back to the queue.
            if action == "transmettre" {
                return Ok(Redirect::to("/instruction?transmis=1").into_response());
            }
            Ok(Redirect::to(&format!("{path}?fait={action}")).into_response())
        }
        Err(e @ (AppError::Invalid(_) | AppError::Conflict(_) | AppError::NotFound(_))) => {
            let message = match &e {
                AppError::Conflict(_) => "Le dossier a changé depuis que vous avez ouvert la page (un collègue vient peut-être d’agir) : rien n’a été enregistré. Relisez son état ci-dessous, puis recommencez si besoin.".to_string(),
                other => crate::security::capitalise(&other.to_string()),
            };
            Ok(
                dossier_page(&app, &ctx, u, &numero, Some(Notice::Error(message)))
                    .await?
                    .into_response(),
            )
        }
        Err(e) => Err(e.into()),
    }
}

pub fn done_message(action: &str) -> &'static str {
    done(action)
}
