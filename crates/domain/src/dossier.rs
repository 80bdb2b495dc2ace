//! Dossiers: their states, the events that move them, and the one function that decides
//! whether an event may happen (issue 9, "States").
//!
//! ```text
//! brouillon ─dépôt─▶ déposé ─prise en instruction─▶ en_instruction ⇄ en_correction
//!                      │  ╰─(guichet automatique) acceptation ─▶ accepté
//!                      ╰─(guichet automatique) orientation ─▶ en_instruction
//! en_instruction ─proposition─▶ instruit ─décision─▶ accepté | refusé | sans_suite
//! instruit ─reprise─▶ en_instruction            accepté | refusé | sans_suite ─réouverture─▶ en_instruction
//! déposé | en_instruction | en_correction ─transmission─▶ déposé (at another service)
//! déposé | en_instruction | en_correction | instruit ─classement sans suite─▶ sans_suite
//! ```
//!
//! [`transition`] is pure: the application layer loads the dossier's state, builds the
//! [`Event`] from what was typed (the texts already parsed into their newtypes) and from the
//! engine's bounds frozen at filing, builds the [`Actor`] from the principal and the dossier's
//! parties ([`Actor::of`]), and stores what the returned [`Transition`] says, with a version
//! check, its audit entry and its history line. Storage persists; it never decides.

use crate::access::{Principal, Role, ServiceTarget};
use crate::codes::{DepartementCode, RegionCode};
use crate::money::{Cents, Rate};
use crate::territory::CollectiviteRef;
use serde::{Deserialize, Serialize};
use std::fmt;

// ---------------------------------------------------------------------------------------------
// States

/// Where a dossier stands. Slugs are the French words stored and shown in URLs (`en_instruction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum State {
    /// Being written by the applicant; not yet seen by any instructor.
    Brouillon,
    /// Submitted: numbered, its submission frozen, waiting for its instructing service.
    Depose,
    /// Being instructed.
    EnInstruction,
    /// Sent back to the applicant for a correction.
    EnCorrection,
    /// The instructor has made a proposal (favourable with an amount, or unfavourable).
    Instruit,
    /// Decided: granted.
    Accepte,
    /// Decided: refused.
    Refuse,
    /// Closed without a decision on the merits (classé sans suite).
    SansSuite,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("état de dossier inconnu : « {0} » (brouillon, depose, en_instruction, en_correction, instruit, accepte, refuse, sans_suite)")]
pub struct UnknownState(pub String);

impl State {
    pub const ALL: [State; 8] = [
        State::Brouillon,
        State::Depose,
        State::EnInstruction,
        State::EnCorrection,
        State::Instruit,
        State::Accepte,
        State::Refuse,
        State::SansSuite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Brouillon => "brouillon",
            State::Depose => "depose",
            State::EnInstruction => "en_instruction",
            State::EnCorrection => "en_correction",
            State::Instruit => "instruit",
            State::Accepte => "accepte",
            State::Refuse => "refuse",
            State::SansSuite => "sans_suite",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            State::Brouillon => "Brouillon",
            State::Depose => "Déposé",
            State::EnInstruction => "En instruction",
            State::EnCorrection => "En correction",
            State::Instruit => "Instruit",
            State::Accepte => "Accepté",
            State::Refuse => "Refusé",
            State::SansSuite => "Classé sans suite",
        }
    }

    pub fn parse(input: &str) -> Result<State, UnknownState> {
        let s = input.trim();
        State::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_string()))
    }

    /// Accepted, refused or closed: only an administrator's reopening moves it again.
    pub fn is_decided(self) -> bool {
        matches!(self, State::Accepte | State::Refuse | State::SansSuite)
    }

    /// Submitted at least once (it has a number and a frozen submission).
    pub fn is_submitted(self) -> bool {
        self != State::Brouillon
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for State {
    type Error = UnknownState;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        State::parse(&value)
    }
}

impl From<State> for &'static str {
    fn from(state: State) -> &'static str {
        state.as_str()
    }
}

// ---------------------------------------------------------------------------------------------
// Texts

/// The longest text an instructor, an applicant or an administrator may write in one field of
/// an event (a motivation, a correction request…): about five pages.
pub const MAX_TEXT_CHARS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("{0} est obligatoire : écrivez-le")]
    Blank(&'static str),
    #[error("{what} est trop long ({chars} caractères ; {max} au plus)", max = MAX_TEXT_CHARS)]
    TooLong { what: &'static str, chars: usize },
}

macro_rules! text_newtype {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// What the field is called in messages.
            pub const WHAT: &'static str = $what;

            /// Trims the text and refuses it blank or longer than [`MAX_TEXT_CHARS`].
            pub fn parse(input: &str) -> Result<Self, TextError> {
                let text = input.trim();
                if text.is_empty() {
                    return Err(TextError::Blank($what));
                }
                let chars = text.chars().count();
                if chars > MAX_TEXT_CHARS {
                    return Err(TextError::TooLong { what: $what, chars });
                }
                Ok(Self(text.to_string()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = TextError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
    };
}

text_newtype!(
    /// What an instructor asks the applicant to correct.
    CorrectionMessage,
    "le message de la demande de correction"
);
text_newtype!(
    /// Why an instructor proposes the exceptional rate or an amount other than the engine's.
    Justification,
    "la justification"
);
text_newtype!(
    /// Why a dossier is refused, closed without follow-up, or proposed unfavourably.
    Motivation,
    "la motivation"
);
text_newtype!(
    /// Why a dossier is reopened, handed over, sent back to instruction, or not decided by
    /// an automatic desk.
    Reason,
    "le motif"
);

// ---------------------------------------------------------------------------------------------
// Events

/// What a correction request is about (issue 9: « incomplet » or « incorrect »).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CorrectionKind {
    /// Something is missing (a document, a field).
    Incomplet,
    /// Something is wrong.
    Incorrect,
}

impl CorrectionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CorrectionKind::Incomplet => "incomplet",
            CorrectionKind::Incorrect => "incorrect",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            CorrectionKind::Incomplet => "Dossier incomplet",
            CorrectionKind::Incorrect => "Dossier incorrect",
        }
    }

    pub fn parse(input: &str) -> Result<CorrectionKind, String> {
        match input.trim() {
            "incomplet" => Ok(CorrectionKind::Incomplet),
            "incorrect" => Ok(CorrectionKind::Incorrect),
            other => Err(format!(
                "type de correction inconnu : « {other} » (incomplet ou incorrect)"
            )),
        }
    }
}

/// A correction request: its kind and what to correct.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorrectionRequest {
    pub kind: CorrectionKind,
    pub message: CorrectionMessage,
}

/// An amount and the rate it was computed at: what a favourable proposal proposes and what an
/// acceptance grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub amount: Cents,
    pub rate: Rate,
}

/// What the rules engine allowed for the dossier as filed: the data a proposal is checked
/// against. The application takes it from the evaluation frozen at submission (the programme
/// crate builds it: `Evaluation::proposal_bounds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalBounds {
    /// The eligible expense base (`assiette`).
    pub base: Cents,
    /// The amount the engine proposes (at the normal rate, within every cap).
    pub proposed_amount: Cents,
    /// The most an instructor may propose (at the maximum rate, within every cap).
    pub max_amount: Cents,
    /// The normal rate (`taux`).
    pub rate: Rate,
    /// The maximum, exceptional rate (`taux max`); the normal rate where there is none.
    pub max_rate: Rate,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoundsError {
    #[error(
        "bornes incohérentes : le montant proposé ({proposed}) dépasse le montant maximal ({max})"
    )]
    Amounts { proposed: Cents, max: Cents },
    #[error("bornes incohérentes : le taux ({rate}) dépasse le taux maximal ({max})")]
    Rates { rate: Rate, max: Rate },
    #[error("bornes incohérentes : montant négatif")]
    Negative,
}

impl ProposalBounds {
    /// Checks that the bounds hold together (the engine's own invariants, checked again here so
    /// that a corrupt record cannot widen them).
    pub fn new(
        base: Cents,
        proposed_amount: Cents,
        max_amount: Cents,
        rate: Rate,
        max_rate: Rate,
    ) -> Result<ProposalBounds, BoundsError> {
        if base < Cents::ZERO || proposed_amount < Cents::ZERO || max_amount < Cents::ZERO {
            return Err(BoundsError::Negative);
        }
        if proposed_amount > max_amount {
            return Err(BoundsError::Amounts {
                proposed: proposed_amount,
                max: max_amount,
            });
        }
        if rate > max_rate {
            return Err(BoundsError::Rates {
                rate,
                max: max_rate,
            });
        }
        Ok(ProposalBounds {
            base,
            proposed_amount,
            max_amount,
            rate,
            max_rate,
        })
    }
}

/// The instructor's proposal, which moves a dossier to `instruit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Proposal {
    /// A favourable opinion with an amount and a rate, checked against the engine's bounds.
    Favourable {
        grant: Grant,
        /// Required for the exceptional rate (above the normal one) or for any amount other
        /// than the engine's proposed amount.
        justification: Option<Justification>,
        bounds: ProposalBounds,
    },
    /// An unfavourable opinion, motivated.
    Unfavourable { motivation: Motivation },
}

/// The proposal recorded when the dossier became `instruit`, as the application reads it back
/// to have it decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordedProposal {
    Favourable(Grant),
    Unfavourable,
}

/// A decision on an instructed dossier (or, for `SansSuite`, on any dossier under instruction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// Grants what the instructor proposed; refused when the proposal was unfavourable (the
    /// instruction is then resumed to propose an amount).
    Accept { proposal: RecordedProposal },
    /// Refuses, with the motivation French administrative law requires.
    Refuse { motivation: Motivation },
    /// Closes the dossier without a decision on its merits (withdrawn, never corrected…).
    SansSuite { motivation: Motivation },
}

/// The automatic desk's decision (FranceConnect / API): the engine's bounds and what remains
/// of the desk's envelope (a remaining-amount check until the ledger replaces it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutomaticAcceptance {
    pub bounds: ProposalBounds,
    pub remaining_envelope: Cents,
}

/// Something that happens to a dossier. Texts are already parsed: a blank motivation cannot
/// be built, so it never reaches [`transition`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// The applicant submits the draft.
    Submit,
    /// An instructor of the instructing service takes it into instruction.
    TakeIntoInstruction,
    /// An instructor sends it back for a correction.
    RequestCorrection(CorrectionRequest),
    /// The applicant resubmits it after a correction.
    Resubmit,
    /// An instructor proposes (favourable with an amount, or unfavourable).
    Propose(Proposal),
    /// An instructor takes an instructed dossier back into instruction (to revise the
    /// proposal, say after the committee asked for another amount).
    ResumeInstruction(Reason),
    /// An instructor records the decision.
    Decide(Decision),
    /// An administrator reopens a decided dossier.
    Reopen(Reason),
    /// An instructor hands the dossier to another service (the application names which); it
    /// waits there to be taken into instruction.
    HandOver(Reason),
    /// Guichet accepts a submitted dossier by itself (a desk that decides automatically).
    AcceptAutomatically(AutomaticAcceptance),
    /// Guichet leaves a submitted dossier of an automatic desk to manual instruction, saying
    /// why.
    ReferToInstruction(Reason),
}

/// Every state but the draft: the filed dossiers (instruction's « Tous », exports). An
/// administrator's scope reaches drafts, which are their collectivités' business.
pub const FILED: &[State] = &[
    State::Depose,
    State::EnInstruction,
    State::EnCorrection,
    State::Instruit,
    State::Accepte,
    State::Refuse,
    State::SansSuite,
];

/// An event's kind without its content: for history lines, audit actions, tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    Submit,
    TakeIntoInstruction,
    RequestCorrection,
    Resubmit,
    Propose,
    ResumeInstruction,
    Accept,
    Refuse,
    SansSuite,
    Reopen,
    HandOver,
    AcceptAutomatically,
    ReferToInstruction,
}

impl EventKind {
    pub const ALL: [EventKind; 13] = [
        EventKind::Submit,
        EventKind::TakeIntoInstruction,
        EventKind::RequestCorrection,
        EventKind::Resubmit,
        EventKind::Propose,
        EventKind::ResumeInstruction,
        EventKind::Accept,
        EventKind::Refuse,
        EventKind::SansSuite,
        EventKind::Reopen,
        EventKind::HandOver,
        EventKind::AcceptAutomatically,
        EventKind::ReferToInstruction,
    ];

    /// A stable French slug, for the dossier's history and audit actions (`dossier.depot`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Submit => "depot",
            EventKind::TakeIntoInstruction => "prise_en_instruction",
            EventKind::RequestCorrection => "demande_de_correction",
            EventKind::Resubmit => "redepot",
            EventKind::Propose => "proposition",
            EventKind::ResumeInstruction => "reprise_instruction",
            EventKind::Accept => "acceptation",
            EventKind::Refuse => "refus",
            EventKind::SansSuite => "classement_sans_suite",
            EventKind::Reopen => "reouverture",
            EventKind::HandOver => "transmission",
            EventKind::AcceptAutomatically => "acceptation_automatique",
            EventKind::ReferToInstruction => "orientation_instruction",
        }
    }

    /// What the event is, in a French sentence's words (« le dépôt »).
    pub fn label(self) -> &'static str {
        match self {
            EventKind::Submit => "le dépôt",
            EventKind::TakeIntoInstruction => "la prise en instruction",
            EventKind::RequestCorrection => "la demande de correction",
            EventKind::Resubmit => "le nouveau dépôt après correction",
            EventKind::Propose => "la proposition",
            EventKind::ResumeInstruction => "la reprise de l’instruction",
            EventKind::Accept => "l’acceptation",
            EventKind::Refuse => "le refus",
            EventKind::SansSuite => "le classement sans suite",
            EventKind::Reopen => "la réouverture",
            EventKind::HandOver => "la transmission à un autre service",
            EventKind::AcceptAutomatically => "l’acceptation automatique",
            EventKind::ReferToInstruction => "l’orientation vers l’instruction",
        }
    }

    /// Who may cause it.
    pub fn actor(self) -> Actor {
        match self {
            EventKind::Submit | EventKind::Resubmit => Actor::Applicant,
            EventKind::TakeIntoInstruction
            | EventKind::RequestCorrection
            | EventKind::Propose
            | EventKind::ResumeInstruction
            | EventKind::Accept
            | EventKind::Refuse
            | EventKind::SansSuite
            | EventKind::HandOver => Actor::Instructor,
            EventKind::Reopen => Actor::Administrator,
            EventKind::AcceptAutomatically | EventKind::ReferToInstruction => Actor::System,
        }
    }

    /// The states it may happen in.
    pub fn from_states(self) -> &'static [State] {
        use State::*;
        match self {
            EventKind::Submit => &[Brouillon],
            EventKind::TakeIntoInstruction => &[Depose],
            EventKind::RequestCorrection => &[EnInstruction],
            EventKind::Resubmit => &[EnCorrection],
            EventKind::Propose => &[EnInstruction],
            EventKind::ResumeInstruction => &[Instruit],
            EventKind::Accept | EventKind::Refuse => &[Instruit],
            EventKind::SansSuite => &[Depose, EnInstruction, EnCorrection, Instruit],
            EventKind::Reopen => &[Accepte, Refuse, SansSuite],
            EventKind::HandOver => &[Depose, EnInstruction, EnCorrection],
            EventKind::AcceptAutomatically | EventKind::ReferToInstruction => &[Depose],
        }
    }

    /// The state it leads to.
    pub fn to_state(self) -> State {
        match self {
            EventKind::Submit => State::Depose,
            EventKind::TakeIntoInstruction
            | EventKind::Resubmit
            | EventKind::ResumeInstruction
            | EventKind::Reopen
            | EventKind::ReferToInstruction => State::EnInstruction,
            EventKind::RequestCorrection => State::EnCorrection,
            EventKind::Propose => State::Instruit,
            EventKind::Accept | EventKind::AcceptAutomatically => State::Accepte,
            EventKind::Refuse => State::Refuse,
            EventKind::SansSuite => State::SansSuite,
            EventKind::HandOver => State::Depose,
        }
    }
}

impl Event {
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Submit => EventKind::Submit,
            Event::TakeIntoInstruction => EventKind::TakeIntoInstruction,
            Event::RequestCorrection(_) => EventKind::RequestCorrection,
            Event::Resubmit => EventKind::Resubmit,
            Event::Propose(_) => EventKind::Propose,
            Event::ResumeInstruction(_) => EventKind::ResumeInstruction,
            Event::Decide(Decision::Accept { .. }) => EventKind::Accept,
            Event::Decide(Decision::Refuse { .. }) => EventKind::Refuse,
            Event::Decide(Decision::SansSuite { .. }) => EventKind::SansSuite,
            Event::Reopen(_) => EventKind::Reopen,
            Event::HandOver(_) => EventKind::HandOver,
            Event::AcceptAutomatically(_) => EventKind::AcceptAutomatically,
            Event::ReferToInstruction(_) => EventKind::ReferToInstruction,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Actors

/// How the one acting stands towards the dossier. Not `app::audit::Actor`, which says who an
/// audit entry names: this one says what part they play in this dossier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Actor {
    /// An agent of a collectivité the dossier belongs to.
    Applicant,
    /// An instructor of the service instructing the dossier.
    Instructor,
    /// A national administrator.
    Administrator,
    /// Guichet itself, for the decisions of an automatic desk.
    System,
    /// Anyone else (an instructor of another service, an expert, a coordinator…): no part in
    /// the dossier's transitions.
    Outsider,
}

/// Who a dossier belongs to and who instructs it: what [`Actor::of`] needs from its
/// footprint.
#[derive(Debug, Clone, Copy)]
pub struct Parties<'a> {
    /// The collectivité filing it, or every partner of a joint project.
    pub applicants: &'a [CollectiviteRef],
    /// The instructing service's id (none before routing).
    pub instructing_service: Option<i64>,
}

impl Actor {
    /// How a logged-in principal stands towards a dossier. The system actor is never built
    /// from a principal: only Guichet's own automatic decisions use it.
    pub fn of(principal: &Principal, parties: Parties<'_>) -> Actor {
        match principal.role {
            Role::Administrateur => Actor::Administrator,
            Role::Demandeur
                if principal
                    .collectivites
                    .iter()
                    .any(|c| parties.applicants.contains(c)) =>
            {
                Actor::Applicant
            }
            Role::Instructeur
                if parties.instructing_service.is_some()
                    && principal.service.as_ref().map(|s| s.id) == parties.instructing_service =>
            {
                Actor::Instructor
            }
            _ => Actor::Outsider,
        }
    }

    /// Who this is, in a French sentence's words (« un instructeur du service instructeur »).
    pub fn label(self) -> &'static str {
        match self {
            Actor::Applicant => "un agent de la collectivité qui dépose le dossier",
            Actor::Instructor => "un instructeur du service qui instruit le dossier",
            Actor::Administrator => "un administrateur national",
            Actor::System => "le guichet automatique",
            Actor::Outsider => "une personne sans rôle sur ce dossier",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Transitions

/// What an accepted event does: the application stores the new state (with a version check),
/// the history line and the audit entry named by `event`, and the grant if there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub from: State,
    pub to: State,
    pub event: EventKind,
    /// The amount and rate proposed (favourable proposal) or granted (acceptance).
    pub grant: Option<Grant>,
}

/// Why an event may not happen, in French for the one who tried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{} est impossible pour un dossier à l’état « {} »", capitalise(.event.label()), .state.label())]
    WrongState { event: EventKind, state: State },
    #[error("{} revient à {} ; vous êtes {}", capitalise(.event.label()), .expected.label(), .actor.label())]
    WrongRole {
        event: EventKind,
        expected: Actor,
        actor: Actor,
    },
    #[error(
        "un avis favorable propose un montant positif (sinon, proposez un avis défavorable motivé)"
    )]
    AmountNotPositive,
    #[error("le montant ({amount}) dépasse le montant maximal permis par le programme ({max})")]
    AmountAboveMaximum { amount: Cents, max: Cents },
    #[error("le montant ({amount}) dépasse l’assiette éligible ({base}) au taux de {rate}, soit {limit}")]
    AmountAboveRate {
        amount: Cents,
        base: Cents,
        rate: Rate,
        limit: Cents,
    },
    #[error("le taux ({rate}) dépasse le taux maximal permis par le programme ({max})")]
    RateAboveMaximum { rate: Rate, max: Rate },
    #[error("une justification écrite est exigée pour le taux exceptionnel ({rate}, au-delà du taux normal de {normal})")]
    JustificationForRate { rate: Rate, normal: Rate },
    #[error("une justification écrite est exigée pour un montant ({amount}) autre que le montant proposé par le programme ({proposed})")]
    JustificationForAmount { amount: Cents, proposed: Cents },
    #[error("la proposition de l’instructeur est défavorable : reprenez l’instruction pour proposer un montant avant d’accepter le dossier")]
    UnfavourableProposal,
    #[error("le guichet automatique ne peut accepter ce dossier : le programme ne lui accorde aucun montant")]
    NothingToGrant,
    #[error("le guichet automatique ne peut accepter ce dossier : l’enveloppe restante ({remaining}) ne couvre pas le montant ({amount})")]
    EnvelopeExhausted { amount: Cents, remaining: Cents },
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The one transition function: may `actor` cause `event` on a dossier in `state`, and where
/// does it lead? Checks, in order: the role, the state, then what the event carries (amounts,
/// rates, justifications).
pub fn transition(state: State, event: &Event, actor: &Actor) -> Result<Transition, Refusal> {
    let kind = event.kind();
    let expected = kind.actor();
    if *actor != expected {
        return Err(Refusal::WrongRole {
            event: kind,
            expected,
            actor: *actor,
        });
    }
    if !kind.from_states().contains(&state) {
        return Err(Refusal::WrongState { event: kind, state });
    }
    let grant = match event {
        Event::Propose(proposal) => check_proposal(proposal)?,
        Event::Decide(Decision::Accept { proposal }) => match proposal {
            RecordedProposal::Favourable(grant) => Some(*grant),
            RecordedProposal::Unfavourable => return Err(Refusal::UnfavourableProposal),
        },
        Event::AcceptAutomatically(auto) => Some(check_automatic(auto)?),
        _ => None,
    };
    Ok(Transition {
        from: state,
        to: kind.to_state(),
        event: kind,
        grant,
    })
}

fn check_proposal(proposal: &Proposal) -> Result<Option<Grant>, Refusal> {
    let Proposal::Favourable {
        grant,
        justification,
        bounds,
    } = proposal
    else {
        return Ok(None);
    };
    let Grant { amount, rate } = *grant;
    if amount <= Cents::ZERO {
        return Err(Refusal::AmountNotPositive);
    }
    if rate > bounds.max_rate {
        return Err(Refusal::RateAboveMaximum {
            rate,
            max: bounds.max_rate,
        });
    }
    if amount > bounds.max_amount {
        return Err(Refusal::AmountAboveMaximum {
            amount,
            max: bounds.max_amount,
        });
    }
    let limit = rate.apply(bounds.base);
    if amount > limit {
        return Err(Refusal::AmountAboveRate {
            amount,
            base: bounds.base,
            rate,
            limit,
        });
    }
    if justification.is_none() {
        if rate > bounds.rate {
            return Err(Refusal::JustificationForRate {
                rate,
                normal: bounds.rate,
            });
        }
        if amount != bounds.proposed_amount {
            return Err(Refusal::JustificationForAmount {
                amount,
                proposed: bounds.proposed_amount,
            });
        }
    }
    Ok(Some(*grant))
}

fn check_automatic(auto: &AutomaticAcceptance) -> Result<Grant, Refusal> {
    let amount = auto.bounds.proposed_amount;
    if amount <= Cents::ZERO {
        return Err(Refusal::NothingToGrant);
    }
    if amount > auto.remaining_envelope {
        return Err(Refusal::EnvelopeExhausted {
            amount,
            remaining: auto.remaining_envelope,
        });
    }
    Ok(Grant {
        amount,
        rate: auto.bounds.rate,
    })
}

// ---------------------------------------------------------------------------------------------
// Numbers

/// The territorial part of a dossier number: the département of a departmental prefecture,
/// `REG` and the code of a regional one (`REG11`: a bare `11` would read as the Aude), `NAT`
/// for a national directorate. It says the instructing level, not the directorate, so that a
/// hand-over between national directorates keeps the number meaningful.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NumberTerritory {
    Departement(DepartementCode),
    Region(RegionCode),
    National,
}

impl fmt::Display for NumberTerritory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NumberTerritory::Departement(d) => f.write_str(d.as_str()),
            NumberTerritory::Region(r) => write!(f, "REG{r}"),
            NumberTerritory::National => f.write_str("NAT"),
        }
    }
}

impl NumberTerritory {
    /// The territorial part of the numbers of the dossiers a service instructs.
    pub fn of(service: &ServiceTarget) -> NumberTerritory {
        match service {
            ServiceTarget::Departement(d) => NumberTerritory::Departement(d.clone()),
            ServiceTarget::Region(r) => NumberTerritory::Region(r.clone()),
            ServiceTarget::Direction(_) => NumberTerritory::National,
        }
    }

    fn parse(s: &str) -> Option<NumberTerritory> {
        if s == "NAT" {
            return Some(NumberTerritory::National);
        }
        if let Some(code) = s.strip_prefix("REG") {
            return RegionCode::parse(code).ok().map(NumberTerritory::Region);
        }
        // Upper case only: `2a` is not how a number is written.
        if s.chars().any(|c| c.is_ascii_lowercase()) {
            return None;
        }
        DepartementCode::parse(s)
            .ok()
            .map(NumberTerritory::Departement)
    }
}

/// A programme's dossier-number prefix (`ITN7`): upper-case ASCII letters and digits, 1 to 12
/// of them, from the programme file (`numero_prefixe`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NumberPrefix(String);

impl NumberPrefix {
    pub fn parse(input: &str) -> Result<NumberPrefix, NumberError> {
        let s = input.trim();
        let ok = (1..=12).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            && s.chars().any(|c| c.is_ascii_uppercase());
        if ok {
            Ok(NumberPrefix(s.to_string()))
        } else {
            Err(NumberError::Prefix(s.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NumberPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for NumberPrefix {
    type Error = NumberError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        NumberPrefix::parse(&value)
    }
}

impl From<NumberPrefix> for String {
    fn from(value: NumberPrefix) -> String {
        value.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("numéro de dossier invalide : « {0} » (forme attendue ITN7-95-2021-00042, ITN7-REG11-2021-00042 ou ITN7-NAT-2021-00042)")]
    Invalid(String),
    #[error("préfixe de numéro invalide : « {0} » (1 à 12 lettres majuscules ou chiffres, par exemple ITN7)")]
    Prefix(String),
    #[error("numéro de dossier impossible : séquence {0} (à partir de 1)")]
    Sequence(u64),
    #[error("numéro de dossier impossible : année {0} (quatre chiffres)")]
    Year(u16),
}

/// How many digits a sequence is padded to: `00042`. Beyond 99,999 it simply grows.
pub const SEQUENCE_DIGITS: usize = 5;

/// A dossier's number, `<prefix>-<territory>-<year>-<sequence>`: `ITN7-95-2021-00042`. The
/// sequence counts from 1 per prefix, territory and year of filing; storage hands it out
/// without gaps or duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DossierNumber {
    prefix: NumberPrefix,
    territory: NumberTerritory,
    year: u16,
    sequence: u64,
}

impl DossierNumber {
    pub fn new(
        prefix: NumberPrefix,
        territory: NumberTerritory,
        year: u16,
        sequence: u64,
    ) -> Result<DossierNumber, NumberError> {
        if !(1000..=9999).contains(&year) {
            return Err(NumberError::Year(year));
        }
        if sequence == 0 {
            return Err(NumberError::Sequence(sequence));
        }
        Ok(DossierNumber {
            prefix,
            territory,
            year,
            sequence,
        })
    }

    /// Parses a number as displayed. Exactly one spelling is accepted for each number (upper
    /// case, the sequence padded to five digits, no extra leading zero), so that a number
    /// typed, stored and shown compares equal as text too.
    pub fn parse(input: &str) -> Result<DossierNumber, NumberError> {
        let s = input.trim();
        let invalid = || NumberError::Invalid(s.to_string());
        let mut parts = s.split('-');
        let (Some(prefix), Some(territory), Some(year), Some(sequence), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(invalid());
        };
        let prefix = NumberPrefix::parse(prefix).map_err(|_| invalid())?;
        let territory = NumberTerritory::parse(territory).ok_or_else(invalid)?;
        if year.len() != 4 || !year.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid());
        }
        let year: u16 = year.parse().map_err(|_| invalid())?;
        let canonical_width = sequence.len() == SEQUENCE_DIGITS
            || (sequence.len() > SEQUENCE_DIGITS && !sequence.starts_with('0'));
        if !canonical_width || !sequence.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid());
        }
        let sequence: u64 = sequence.parse().map_err(|_| invalid())?;
        DossierNumber::new(prefix, territory, year, sequence).map_err(|_| invalid())
    }

    pub fn prefix(&self) -> &NumberPrefix {
        &self.prefix
    }

    pub fn territory(&self) -> &NumberTerritory {
        &self.territory
    }

    pub fn year(&self) -> u16 {
        self.year
    }

    pub fn sequence(&self) -> u64 {
        self.sequence
    }
}

impl fmt::Display for DossierNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}-{}-{:0width$}",
            self.prefix,
            self.territory,
            self.year,
            self.sequence,
            width = SEQUENCE_DIGITS
        )
    }
}

impl TryFrom<String> for DossierNumber {
    type Error = NumberError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        DossierNumber::parse(&value)
    }
}

impl From<DossierNumber> for String {
    fn from(value: DossierNumber) -> String {
        value.to_string()
    }
}

#[cfg(test)]
mod tests;
