use super::*;
use crate::access::{ServiceKind, ServiceScope, ServiceTarget};
use crate::territory::CollectiviteKind;
use proptest::prelude::*;
use State::*;

fn euros(e: i64) -> Cents {
    Cents::from_euros(e)
}

fn pct(p: u32) -> Rate {
    Rate::from_basis_points(p * 100).unwrap()
}

/// Île-de-France, relation-usager, above 15,000 inhabitants: 50 %, exceptionally 80 %, on a
/// 30,000 € base.
fn bounds() -> ProposalBounds {
    ProposalBounds::new(
        euros(30_000),
        euros(15_000),
        euros(24_000),
        pct(50),
        pct(80),
    )
    .unwrap()
}

fn favourable(amount: Cents, rate: Rate, justification: Option<&str>) -> Event {
    Event::Propose(Proposal::Favourable {
        grant: Grant { amount, rate },
        justification: justification.map(|j| Justification::parse(j).unwrap()),
        bounds: bounds(),
    })
}

fn reason() -> Reason {
    Reason::parse("le service compétent est la préfecture des Yvelines").unwrap()
}

fn motivation() -> Motivation {
    Motivation::parse("le projet a déjà commencé").unwrap()
}

/// One valid event of each kind (valid content: only state and role can refuse it).
fn sample(kind: EventKind) -> Event {
    match kind {
        EventKind::Submit => Event::Submit,
        EventKind::TakeIntoInstruction => Event::TakeIntoInstruction,
        EventKind::RequestCorrection => Event::RequestCorrection(CorrectionRequest {
            kind: CorrectionKind::Incomplet,
            message: CorrectionMessage::parse("joignez le devis").unwrap(),
        }),
        EventKind::Resubmit => Event::Resubmit,
        EventKind::Propose => favourable(euros(15_000), pct(50), None),
        EventKind::ResumeInstruction => Event::ResumeInstruction(reason()),
        EventKind::Accept => Event::Decide(Decision::Accept {
            proposal: RecordedProposal::Favourable(Grant {
                amount: euros(15_000),
                rate: pct(50),
            }),
        }),
        EventKind::Refuse => Event::Decide(Decision::Refuse {
            motivation: motivation(),
        }),
        EventKind::SansSuite => Event::Decide(Decision::SansSuite {
            motivation: motivation(),
        }),
        EventKind::Reopen => Event::Reopen(reason()),
        EventKind::HandOver => Event::HandOver(reason()),
        EventKind::AcceptAutomatically => Event::AcceptAutomatically(AutomaticAcceptance {
            bounds: ProposalBounds::new(
                euros(5_000),
                euros(5_000),
                euros(5_000),
                pct(100),
                pct(100),
            )
            .unwrap(),
            remaining_envelope: euros(1_000_000),
        }),
        EventKind::ReferToInstruction => Event::ReferToInstruction(reason()),
    }
}

/// The state diagram of issue 9, written out: for each event, in each state (brouillon,
/// déposé, en instruction, en correction, instruit, accepté, refusé, sans suite), the state it
/// leads to, or `__` where it is refused. Written independently of `EventKind::from_states`
/// and `to_state`, which it checks.
#[test]
fn every_state_and_event_pair_follows_the_diagram() {
    const __: Option<State> = None;
    const DE: Option<State> = Some(Depose);
    const EI: Option<State> = Some(EnInstruction);
    const EC: Option<State> = Some(EnCorrection);
    const IN: Option<State> = Some(Instruit);
    const AC: Option<State> = Some(Accepte);
    const RE: Option<State> = Some(Refuse);
    const SS: Option<State> = Some(SansSuite);
    #[rustfmt::skip]
    let table: [(EventKind, [Option<State>; 8]); 13] = [
        //                                  BR  DE  EI  EC  IN  AC  RE  SS
        (EventKind::Submit,              [DE, __, __, __, __, __, __, __]),
        (EventKind::TakeIntoInstruction, [__, EI, __, __, __, __, __, __]),
        (EventKind::RequestCorrection,   [__, __, EC, __, __, __, __, __]),
        (EventKind::Resubmit,            [__, __, __, EI, __, __, __, __]),
        (EventKind::Propose,             [__, __, IN, __, __, __, __, __]),
        (EventKind::ResumeInstruction,   [__, __, __, __, EI, __, __, __]),
        (EventKind::Accept,              [__, __, __, __, AC, __, __, __]),
        (EventKind::Refuse,              [__, __, __, __, RE, __, __, __]),
        (EventKind::SansSuite,           [__, SS, SS, SS, SS, __, __, __]),
        (EventKind::Reopen,              [__, __, __, __, __, EI, EI, EI]),
        (EventKind::HandOver,            [__, DE, DE, DE, __, __, __, __]),
        (EventKind::AcceptAutomatically, [__, AC, __, __, __, __, __, __]),
        (EventKind::ReferToInstruction,  [__, EI, __, __, __, __, __, __]),
    ];
    assert_eq!(
        table.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        EventKind::ALL.to_vec(),
        "one row per event kind"
    );
    for (kind, row) in table {
        let event = sample(kind);
        assert_eq!(event.kind(), kind);
        let actor = kind.actor();
        for (state, expected) in State::ALL.into_iter().zip(row) {
            let got = transition(state, &event, &actor);
            match expected {
                Some(to) => {
                    let t = got.unwrap_or_else(|r| panic!("{kind:?} from {state}: {r}"));
                    assert_eq!((t.from, t.to, t.event), (state, to, kind));
                }
                None => assert_eq!(
                    got,
                    Err(Refusal::WrongState { event: kind, state }),
                    "{kind:?} from {state}"
                ),
            }
        }
    }
}

#[test]
fn only_the_right_actor_may_cause_each_event() {
    let actors = [
        Actor::Applicant,
        Actor::Instructor,
        Actor::Administrator,
        Actor::System,
        Actor::Outsider,
    ];
    for kind in EventKind::ALL {
        let event = sample(kind);
        let state = kind.from_states()[0];
        for actor in actors {
            let got = transition(state, &event, &actor);
            if actor == kind.actor() {
                assert!(got.is_ok(), "{kind:?} by {actor:?}: {got:?}");
            } else {
                assert_eq!(
                    got,
                    Err(Refusal::WrongRole {
                        event: kind,
                        expected: kind.actor(),
                        actor
                    }),
                    "{kind:?} by {actor:?}"
                );
            }
        }
    }
    // The issue's own words: a decision is reopened by an administrator only.
    let err = transition(Accepte, &Event::Reopen(reason()), &Actor::Instructor).unwrap_err();
    assert_eq!(
        err.to_string(),
        "La réouverture revient à un administrateur national ; vous êtes un instructeur du service qui instruit le dossier"
    );
}

#[test]
fn refusals_say_why_in_french() {
    let err = transition(Brouillon, &sample(EventKind::Propose), &Actor::Instructor).unwrap_err();
    assert_eq!(
        err.to_string(),
        "La proposition est impossible pour un dossier à l’état « Brouillon »"
    );
}

#[test]
fn the_proposed_amount_at_the_normal_rate_needs_no_justification() {
    let t = transition(
        EnInstruction,
        &favourable(euros(15_000), pct(50), None),
        &Actor::Instructor,
    )
    .unwrap();
    assert_eq!(
        t.grant,
        Some(Grant {
            amount: euros(15_000),
            rate: pct(50)
        })
    );
}

#[test]
fn the_exceptional_rate_needs_a_written_justification() {
    let event = favourable(euros(24_000), pct(80), None);
    assert_eq!(
        transition(EnInstruction, &event, &Actor::Instructor),
        Err(Refusal::JustificationForRate {
            rate: pct(80),
            normal: pct(50)
        })
    );
    let justified = favourable(
        euros(24_000),
        pct(80),
        Some("projet de relation à l’usager structurant pour le territoire"),
    );
    let t = transition(EnInstruction, &justified, &Actor::Instructor).unwrap();
    assert_eq!(t.to, Instruit);
    assert_eq!(t.grant.map(|g| g.amount), Some(euros(24_000)));
}

#[test]
fn another_amount_than_the_proposed_one_needs_a_written_justification() {
    let event = favourable(euros(12_000), pct(50), None);
    assert_eq!(
        transition(EnInstruction, &event, &Actor::Instructor),
        Err(Refusal::JustificationForAmount {
            amount: euros(12_000),
            proposed: euros(15_000)
        })
    );
    let justified = favourable(
        euros(12_000),
        pct(40),
        Some("une partie du devis est hors champ"),
    );
    assert!(transition(EnInstruction, &justified, &Actor::Instructor).is_ok());
}

#[test]
fn amounts_and_rates_stay_within_the_engine_bounds() {
    let why = Some("justifié");
    let cases = [
        (
            favourable(euros(24_001), pct(80), why),
            Refusal::AmountAboveMaximum {
                amount: euros(24_001),
                max: euros(24_000),
            },
        ),
        (
            favourable(euros(20_000), pct(90), why),
            Refusal::RateAboveMaximum {
                rate: pct(90),
                max: pct(80),
            },
        ),
        (
            // 60 % of 30,000 € is 18,000 €: 20,000 € is more than the rate allows.
            favourable(euros(20_000), pct(60), why),
            Refusal::AmountAboveRate {
                amount: euros(20_000),
                base: euros(30_000),
                rate: pct(60),
                limit: euros(18_000),
            },
        ),
        (
            favourable(Cents::ZERO, pct(50), why),
            Refusal::AmountNotPositive,
        ),
        (
            favourable(Cents::new(-1), pct(50), why),
            Refusal::AmountNotPositive,
        ),
    ];
    for (event, refusal) in cases {
        assert_eq!(
            transition(EnInstruction, &event, &Actor::Instructor),
            Err(refusal)
        );
    }
    // Bounds that do not hold together are refused when they are built.
    assert!(ProposalBounds::new(euros(1), euros(2), euros(1), pct(1), pct(1)).is_err());
    assert!(ProposalBounds::new(euros(1), euros(1), euros(1), pct(2), pct(1)).is_err());
    assert!(ProposalBounds::new(euros(-1), euros(0), euros(0), pct(1), pct(1)).is_err());
}

#[test]
fn an_unfavourable_proposal_is_motivated_and_cannot_be_accepted() {
    let t = transition(
        EnInstruction,
        &Event::Propose(Proposal::Unfavourable {
            motivation: motivation(),
        }),
        &Actor::Instructor,
    )
    .unwrap();
    assert_eq!((t.to, t.grant), (Instruit, None));
    let accept = Event::Decide(Decision::Accept {
        proposal: RecordedProposal::Unfavourable,
    });
    assert_eq!(
        transition(Instruit, &accept, &Actor::Instructor),
        Err(Refusal::UnfavourableProposal)
    );
    // Refusing follows it; a motivation cannot be blank, so it is never missing.
    assert!(Motivation::parse("   ").is_err());
}

#[test]
fn an_acceptance_grants_the_recorded_proposal() {
    let t = transition(Instruit, &sample(EventKind::Accept), &Actor::Instructor).unwrap();
    assert_eq!(
        t.grant,
        Some(Grant {
            amount: euros(15_000),
            rate: pct(50)
        })
    );
    let refused = transition(Instruit, &sample(EventKind::Refuse), &Actor::Instructor).unwrap();
    assert_eq!(refused.grant, None);
}

#[test]
fn the_automatic_desk_accepts_within_its_remaining_envelope_only() {
    let five_thousand =
        ProposalBounds::new(euros(6_000), euros(5_000), euros(5_000), pct(100), pct(100)).unwrap();
    let auto = |remaining| {
        Event::AcceptAutomatically(AutomaticAcceptance {
            bounds: five_thousand,
            remaining_envelope: remaining,
        })
    };
    let t = transition(Depose, &auto(euros(5_000)), &Actor::System).unwrap();
    assert_eq!(
        (t.to, t.grant),
        (
            Accepte,
            Some(Grant {
                amount: euros(5_000),
                rate: pct(100)
            })
        )
    );
    let err = transition(Depose, &auto(euros(4_999)), &Actor::System).unwrap_err();
    assert_eq!(
        err,
        Refusal::EnvelopeExhausted {
            amount: euros(5_000),
            remaining: euros(4_999)
        }
    );
    // The refusal's sentence is the reason the dossier then goes to manual instruction with.
    let reason = Reason::parse(&err.to_string()).unwrap();
    let t = transition(Depose, &Event::ReferToInstruction(reason), &Actor::System).unwrap();
    assert_eq!(t.to, EnInstruction);
    let nothing = ProposalBounds::new(euros(0), euros(0), euros(0), pct(100), pct(100)).unwrap();
    assert_eq!(
        transition(
            Depose,
            &Event::AcceptAutomatically(AutomaticAcceptance {
                bounds: nothing,
                remaining_envelope: euros(1_000)
            }),
            &Actor::System
        ),
        Err(Refusal::NothingToGrant)
    );
}

#[test]
fn texts_refuse_blank_and_oversized_input() {
    assert_eq!(
        Motivation::parse(" \n\t "),
        Err(TextError::Blank("la motivation"))
    );
    assert_eq!(
        Motivation::parse(" \n\t ").unwrap_err().to_string(),
        "la motivation est obligatoire : écrivez-le"
    );
    assert!(CorrectionMessage::parse("").is_err());
    assert!(Justification::parse("").is_err());
    assert!(Reason::parse("").is_err());
    assert_eq!(
        Reason::parse("  un motif  ").map(|r| r.to_string()),
        Ok("un motif".into())
    );
    let long = "é".repeat(MAX_TEXT_CHARS + 1);
    assert!(matches!(
        Motivation::parse(&long),
        Err(TextError::TooLong { chars, .. }) if chars == MAX_TEXT_CHARS + 1
    ));
    assert!(Motivation::parse(&"é".repeat(MAX_TEXT_CHARS)).is_ok());
    // Deserialising goes through the same check.
    assert!(serde_json::from_str::<Motivation>("\"  \"").is_err());
}

#[test]
fn states_parse_and_display_as_their_slugs() {
    for s in State::ALL {
        assert_eq!(State::parse(s.as_str()), Ok(s));
        assert_eq!(s.to_string(), s.as_str());
        assert!(!s.label().is_empty());
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            format!("\"{}\"", s.as_str())
        );
    }
    assert_eq!(State::parse("en_instruction"), Ok(EnInstruction));
    assert!(State::parse("En instruction").is_err());
    assert!(State::parse("deposé").is_err());
    assert!(serde_json::from_str::<State>("\"clos\"").is_err());
    assert!(SansSuite.is_decided() && !Instruit.is_decided());
    assert!(!Brouillon.is_submitted() && Depose.is_submitted());
    assert_eq!(
        CorrectionKind::parse("incorrect"),
        Ok(CorrectionKind::Incorrect)
    );
    assert!(CorrectionKind::parse("faux").is_err());
}

#[test]
fn event_slugs_are_distinct() {
    let mut slugs: Vec<_> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
    slugs.sort();
    slugs.dedup();
    assert_eq!(slugs.len(), EventKind::ALL.len());
}

fn principal(role: Role, service: Option<i64>, collectivites: &[&str]) -> Principal {
    Principal {
        user_id: 1,
        role,
        service: service.map(|id| ServiceScope {
            id,
            kind: ServiceKind::PrefectureDepartementale,
            territory_code: "95".into(),
            region_code: Some("11".into()),
        }),
        collectivites: collectivites
            .iter()
            .map(|c| CollectiviteRef::parse(c).unwrap())
            .collect(),
    }
}

#[test]
fn the_actor_comes_from_the_principal_and_the_dossier_parties() {
    let applicants = [CollectiviteRef::new(CollectiviteKind::Commune, "95127").unwrap()];
    let parties = Parties {
        applicants: &applicants,
        instructing_service: Some(95),
    };
    let of = |p: Principal| Actor::of(&p, parties);
    assert_eq!(
        of(principal(Role::Demandeur, None, &["commune:95127"])),
        Actor::Applicant
    );
    assert_eq!(
        of(principal(
            Role::Demandeur,
            None,
            &["commune:78646", "commune:95127"]
        )),
        Actor::Applicant
    );
    assert_eq!(
        of(principal(Role::Demandeur, None, &["commune:78646"])),
        Actor::Outsider
    );
    assert_eq!(
        of(principal(Role::Instructeur, Some(95), &[])),
        Actor::Instructor
    );
    // An instructor of Yvelines has no part in a Val-d'Oise dossier.
    assert_eq!(
        of(principal(Role::Instructeur, Some(78), &[])),
        Actor::Outsider
    );
    // Same service, other roles: no part in the transitions.
    assert_eq!(of(principal(Role::Expert, Some(95), &[])), Actor::Outsider);
    assert_eq!(
        of(principal(Role::Coordinateur, Some(95), &[])),
        Actor::Outsider
    );
    assert_eq!(
        of(principal(Role::Administrateur, None, &[])),
        Actor::Administrator
    );
    // Before routing nobody instructs it.
    let unrouted = Parties {
        applicants: &applicants,
        instructing_service: None,
    };
    assert_eq!(
        Actor::of(&principal(Role::Instructeur, Some(95), &[]), unrouted),
        Actor::Outsider
    );
}

fn prefix() -> NumberPrefix {
    NumberPrefix::parse("ITN7").unwrap()
}

#[test]
fn dossier_numbers_parse_and_display() {
    let dep = |c: &str| NumberTerritory::Departement(DepartementCode::parse(c).unwrap());
    let cases = [
        (dep("95"), 2021, 42, "ITN7-95-2021-00042"),
        (dep("2A"), 2021, 1, "ITN7-2A-2021-00001"),
        (dep("974"), 2022, 99_999, "ITN7-974-2022-99999"),
        (
            NumberTerritory::Region(RegionCode::parse("11").unwrap()),
            2021,
            7,
            "ITN7-REG11-2021-00007",
        ),
        (
            NumberTerritory::National,
            2022,
            123_456,
            "ITN7-NAT-2022-123456",
        ),
    ];
    for (territory, year, seq, text) in cases {
        let n = DossierNumber::new(prefix(), territory.clone(), year, seq).unwrap();
        assert_eq!(n.to_string(), text);
        assert_eq!(DossierNumber::parse(text), Ok(n.clone()));
        assert_eq!(n.territory(), &territory);
        assert_eq!(
            (n.year(), n.sequence(), n.prefix().as_str()),
            (year, seq, "ITN7")
        );
        assert_eq!(
            serde_json::from_str::<DossierNumber>(&format!("\"{text}\"")).unwrap(),
            n
        );
    }
    for bad in [
        "",
        "ITN7-95-2021",
        "ITN7-95-2021-00042-1",
        "itn7-95-2021-00042",
        "ITN7-2a-2021-00042",
        "ITN7-96-2021-00042",
        "ITN7-11-21-00042",
        "ITN7-REG1-2021-00042",
        "ITN7-REG-2021-00042",
        "ITN7-nat-2021-00042",
        "ITN7-95-2021-42",
        "ITN7-95-2021-000042",
        "ITN7-95-2021-00000",
        "ITN7-95-2021-0004a",
        "ITN7-95-2021-+0042",
        "-95-2021-00042",
        "ITN 7-95-2021-00042",
    ] {
        assert!(DossierNumber::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(
        DossierNumber::parse(" ITN7-95-2021-00042 ").map(|n| n.to_string()),
        Ok("ITN7-95-2021-00042".into())
    );
    assert!(DossierNumber::new(prefix(), NumberTerritory::National, 2021, 0).is_err());
    assert!(DossierNumber::new(prefix(), NumberTerritory::National, 999, 1).is_err());
    assert!(NumberPrefix::parse("itn7").is_err());
    assert!(NumberPrefix::parse("ITN-7").is_err());
    assert!(NumberPrefix::parse("1234").is_err());
    assert!(NumberPrefix::parse("ABCDEFGHIJKLM").is_err());
    assert!(NumberPrefix::parse("FR2030").is_ok());
    let of = |t: &str| NumberTerritory::of(&ServiceTarget::parse(t).unwrap()).to_string();
    assert_eq!(of("95"), "95");
    assert_eq!(of("region:11"), "REG11");
    assert_eq!(of("DINUM"), "NAT");
}

fn any_territory() -> impl Strategy<Value = NumberTerritory> {
    prop_oneof![
        (1u32..=95)
            .prop_filter("no 20 nor 96", |d| *d != 20)
            .prop_map(|d| NumberTerritory::Departement(
                DepartementCode::parse(&format!("{d:02}")).unwrap()
            )),
        prop_oneof![Just("2A"), Just("2B"), Just("971"), Just("976")]
            .prop_map(|d| NumberTerritory::Departement(DepartementCode::parse(d).unwrap())),
        (1u32..=99)
            .prop_map(|r| NumberTerritory::Region(RegionCode::parse(&format!("{r:02}")).unwrap())),
        Just(NumberTerritory::National),
    ]
}

fn any_event() -> impl Strategy<Value = Event> {
    (0..EventKind::ALL.len()).prop_map(|i| sample(EventKind::ALL[i]))
}

fn any_actor() -> impl Strategy<Value = Actor> {
    prop_oneof![
        Just(Actor::Applicant),
        Just(Actor::Instructor),
        Just(Actor::Administrator),
        Just(Actor::System),
        Just(Actor::Outsider),
    ]
}

proptest! {
    #[test]
    fn numbers_round_trip(
        territory in any_territory(),
        year in 1000u16..=9999,
        sequence in 1u64..=10_000_000,
    ) {
        let n = DossierNumber::new(prefix(), territory, year, sequence).unwrap();
        prop_assert_eq!(DossierNumber::parse(&n.to_string()), Ok(n));
    }

    /// Along any sequence of attempts: a dossier never goes back to draft, leaves a decision
    /// only when an administrator reopens it, and a grant only comes with a favourable
    /// proposal or an acceptance.
    #[test]
    fn random_walks_keep_the_invariants(
        steps in proptest::collection::vec((any_event(), any_actor()), 0..60)
    ) {
        let mut state = Brouillon;
        for (event, actor) in steps {
            if let Ok(t) = transition(state, &event, &actor) {
                prop_assert_eq!(t.from, state);
                prop_assert_ne!(t.to, Brouillon);
                prop_assert_eq!(actor, event.kind().actor());
                if state.is_decided() {
                    prop_assert_eq!(t.event, EventKind::Reopen);
                }
                let grants = matches!(
                    t.event,
                    EventKind::Propose | EventKind::Accept | EventKind::AcceptAutomatically
                );
                prop_assert_eq!(t.grant.is_some(), grants);
                state = t.to;
            }
        }
    }
}
