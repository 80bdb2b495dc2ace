//! Dossiers through the application layer, on the database under test (SQLite, or PostgreSQL
//! with GUICHET_TEST_DATABASE=postgres): drafts, the check, submission and its numbering under
//! concurrency, the acknowledgement enqueued with it, scoping, transitions raced by two
//! instructors, and the automatic desk.

use chrono::TimeZone;
use guichet_app::accounts::NewUser;
use guichet_app::audit::Actor as AuditActor;
use guichet_app::clock::Clock;
use guichet_app::config::Config;
use guichet_app::dossiers::{AcknowledgementMail, DraftData, ListFilter};
use guichet_app::jobs::Job;
use guichet_app::{App, Error};
use guichet_domain::access::ServiceTarget;
use guichet_domain::dossier::{Event, State};
use guichet_domain::{Cents, CollectiviteRef, DepartementCode, Principal, Role, Vintage};
use std::path::PathBuf;

const MEASURE: &str = "axe3.v1.relation-usager";

fn fixtures_npm_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web/tests/fixtures/node_modules")
}

/// An application on a fresh database with the fixture referential (2021), the clock at
/// 1 June 2021, 09:00 in Paris.
async fn start() -> App {
    start_with(|_| {}).await
}

async fn start_with(tweak: impl FnOnce(&mut Config)) -> App {
    let dir = guichet_testkit::temp_dir();
    let mut config = Config::defaults(&dir);
    tweak(&mut config);
    config.database_url = guichet_testkit::fresh_database_url(&dir).await;
    config.npm_dir = fixtures_npm_dir();
    config.db_max_connections = 8;
    let clock = Clock::starting_at(chrono::Utc.with_ymd_and_hms(2021, 6, 1, 7, 0, 0).unwrap());
    let app = App::start(config, clock).await.expect("démarrage");
    app.referentiel()
        .import_vintage(Vintage::Y2021, AuditActor::Cli, &|_, _| {})
        .await
        .expect("import du référentiel");
    app
}

fn commune(code: &str) -> CollectiviteRef {
    CollectiviteRef::parse(&format!("commune:{code}")).unwrap()
}

async fn user(
    app: &App,
    email: &str,
    role: Role,
    service: Option<ServiceTarget>,
    collectivites: Vec<CollectiviteRef>,
) -> Principal {
    let (id, _) = app
        .accounts()
        .create_user(
            NewUser {
                email: email.into(),
                display_name: email.into(),
                role,
                service,
                collectivites,
            },
            AuditActor::Cli,
        )
        .await
        .expect("compte");
    app.accounts().user_view(id).await.unwrap().principal
}

async fn agent(app: &App, email: &str, code: &str) -> Principal {
    user(app, email, Role::Demandeur, None, vec![commune(code)]).await
}

async fn instructor(app: &App, email: &str, dep: &str) -> Principal {
    user(
        app,
        email,
        Role::Instructeur,
        Some(ServiceTarget::Departement(
            DepartementCode::parse(dep).unwrap(),
        )),
        vec![],
    )
    .await
}

/// Everything the relation-usager form and the engine ask for.
fn complete() -> DraftData {
    let mut d = DraftData::default();
    for (k, v) in [
        ("titre", "Portail citoyen"),
        ("description", "Un portail pour les démarches en ligne."),
        ("portage_decisionnel", "oui"),
        ("en_zrr", "non"),
        ("situation_actuelle", "Tout se fait au guichet."),
        ("besoins", "500 demandes par mois."),
        ("objectifs", "Moitié des démarches en ligne."),
        ("impact_attendu", "Moins d’attente."),
        ("indicateurs", "Part des démarches en ligne."),
        ("date_debut", "2021-07-01"),
        ("date_fin", "2022-06-30"),
        ("deja_commence", "non"),
        ("contact_nom", "Camille Martin"),
        ("contact_courriel", "camille.martin@example.org"),
        ("usagers_cibles", "20000"),
    ] {
        d.champs.insert(k.into(), v.into());
    }
    d.depenses
        .insert("prestation".into(), Cents::from_euros(40_000));
    d
}

/// A complete FranceConnect dossier.
fn franceconnect() -> DraftData {
    let mut data = complete();
    data.champs.remove("usagers_cibles");
    data.champs.insert(
        "engagements_fc".into(),
        "Mise en production dans les 12 mois suivant l’attribution\nUne personne porte le projet à temps plein ou partiel\nLa démarche raccordée à FranceConnect est identifiée".into(),
    );
    data
}

/// A small PDF: what an agent attaches as the measure's required document.
const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

async fn attach(app: &App, p: &Principal, id: i64, kind: &str) {
    app.pieces()
        .attach(
            p,
            id,
            guichet_app::pieces::Upload {
                kind,
                filename: "piece.pdf",
                bytes: bytes::Bytes::from_static(PDF),
            },
        )
        .await
        .expect("pièce jointe");
}

async fn draft(app: &App, p: &Principal, code: &str) -> (i64, i64) {
    let d = app
        .dossiers()
        .create_draft(p, MEASURE, &commune(code), "Portail citoyen")
        .await
        .expect("brouillon");
    let v = app
        .dossiers()
        .update_draft(p, d.row.id, d.row.version, complete())
        .await
        .expect("mise à jour");
    attach(app, p, d.row.id, "devis").await;
    (d.row.id, v)
}

fn all() -> ListFilter<'static> {
    ListFilter {
        limit: 50,
        ..ListFilter::default()
    }
}

async fn jobs_of_kind(app: &App, kind: &str) -> i64 {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM jobs WHERE kind = $1")
        .bind(kind)
        .fetch_one(guichet_app::testing::db(app).pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn dossier_draft_update_check_submit_gets_its_number() {
    let app = start().await;
    let p = agent(&app, "agent@cergy.fr", "95127").await;
    let d = app
        .dossiers()
        .create_draft(&p, MEASURE, &commune("95127"), "Portail citoyen")
        .await
        .unwrap();
    assert_eq!(d.row.state, State::Brouillon);
    // Incomplete: the check lists what is missing, and submitting is refused.
    let check = app.dossiers().check(&p, d.row.id).await.unwrap();
    assert!(!check.is_complete());
    assert!(check
        .missing_fields
        .iter()
        .any(|f| f.champ == "description"));
    assert!(
        check.documents.iter().any(|doc| doc == "Devis"),
        "{:?}",
        check.documents
    );
    let e = app
        .dossiers()
        .submit(&p, d.row.id, d.row.version)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Invalid(m) if m.contains("incomplet")),
        "{e:?}"
    );
    // Bad input refused.
    let mut bad = complete();
    bad.depenses.insert("prestation".into(), Cents::new(-100));
    let e = app
        .dossiers()
        .update_draft(&p, d.row.id, d.row.version, bad)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Invalid(m) if m.contains("négatif")),
        "{e:?}"
    );
    let mut absurd = complete();
    absurd
        .depenses
        .insert("prestation".into(), Cents::from_euros(1_000_000_000));
    let e = app
        .dossiers()
        .update_draft(&p, d.row.id, d.row.version, absurd)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Invalid(m) if m.contains("invraisemblable")),
        "{e:?}"
    );
    let mut backwards = complete();
    backwards
        .champs
        .insert("date_fin".into(), "2021-06-15".into());
    let e = app
        .dossiers()
        .update_draft(&p, d.row.id, d.row.version, backwards)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Invalid(m) if m.contains("précède")),
        "{e:?}"
    );
    // Complete.
    let v = app
        .dossiers()
        .update_draft(&p, d.row.id, d.row.version, complete())
        .await
        .unwrap();
    // A stale version is a conflict.
    let e = app
        .dossiers()
        .update_draft(&p, d.row.id, d.row.version, complete())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Conflict(m) if m.contains("modifié entre-temps")),
        "{e:?}"
    );
    // The quote is still missing: it is required, and submission waits for it.
    let check = app.dossiers().check(&p, d.row.id).await.unwrap();
    assert_eq!(check.missing_documents, ["Devis"]);
    assert!(!check.is_complete());
    let e = app.dossiers().submit(&p, d.row.id, v).await.unwrap_err();
    assert!(
        matches!(&e, Error::Invalid(m) if m.contains("la pièce « Devis »")),
        "{e:?}"
    );
    attach(&app, &p, d.row.id, "devis").await;
    let check = app.dossiers().check(&p, d.row.id).await.unwrap();
    assert!(
        check.is_complete(),
        "{:?} {:?}",
        check.missing_fields,
        check.evaluation.as_ref().map(|e| &e.missing)
    );
    assert!(
        check.is_eligible(),
        "{:?}",
        check.evaluation.as_ref().map(|e| &e.reasons)
    );
    assert!(check.indicative_amount().is_some_and(|a| a > Cents::ZERO));
    let s = app.dossiers().submit(&p, d.row.id, v).await.unwrap();
    assert_eq!(s.number.to_string(), "ITN7-95-2021-00001");
    assert_eq!(s.state, State::Depose);
    let got = app
        .dossiers()
        .by_number(&p, "ITN7-95-2021-00001")
        .await
        .unwrap();
    assert_eq!(got.row.id, d.row.id);
    assert_eq!(got.row.state, State::Depose);
    assert!(got
        .verdict
        .as_ref()
        .is_some_and(|v| v.eligible && v.bornes.is_some()));
    let versions = app.dossiers().versions(&p, d.row.id).await.unwrap();
    assert_eq!(versions.len(), 1);
    let history = app.dossiers().history(&p, d.row.id).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].event, "depot");
    // The acknowledgement names the number, the measure and the service.
    let payload: String = sqlx::query_scalar("SELECT payload FROM jobs WHERE kind = $1")
        .bind(AcknowledgementMail::KIND)
        .fetch_one(guichet_app::testing::db(&app).pool())
        .await
        .unwrap();
    let mail: AcknowledgementMail = serde_json::from_str(&payload).unwrap();
    let text = mail.text();
    assert!(text.contains("ITN7-95-2021-00001"), "{text}");
    assert!(text.contains("Relation"), "{text}");
    assert_eq!(mail.service, s.service_name);
    assert_eq!(s.service_name, "Préfecture du Val-d'Oise");
    assert!(text.contains(&s.service_name), "{text}");
    assert_eq!(mail.to, "agent@cergy.fr");
    // Once submitted, the draft no longer changes.
    assert!(app
        .dossiers()
        .update_draft(&p, d.row.id, s.version, complete())
        .await
        .is_err());
}

#[tokio::test]
async fn dossier_parallel_submissions_get_consecutive_numbers() {
    let app = start().await;
    let p = agent(&app, "agent@cergy.fr", "95127").await;
    let mut drafts = Vec::new();
    for _ in 0..20 {
        drafts.push(draft(&app, &p, "95127").await);
    }
    let mut tasks = Vec::new();
    for (id, v) in drafts {
        let app = app.clone();
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            app.dossiers().submit(&p, id, v).await
        }));
    }
    let mut numbers = Vec::new();
    for t in tasks {
        numbers.push(t.await.unwrap().expect("dépôt").number.sequence());
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=20).collect::<Vec<u64>>());
    assert_eq!(jobs_of_kind(&app, AcknowledgementMail::KIND).await, 20);
}

#[tokio::test]
async fn dossier_failed_submission_leaves_no_gap_and_enqueues_nothing() {
    let app = start().await;
    let p = agent(&app, "agent@cergy.fr", "95127").await;
    let (a, va) = draft(&app, &p, "95127").await;
    let (b, vb) = draft(&app, &p, "95127").await;
    // A stale version is found only once the number is taken: the submission rolls back.
    let e = app.dossiers().submit(&p, a, va - 1).await.unwrap_err();
    assert!(
        matches!(&e, Error::Conflict(m) if m.contains("modifié entre-temps")),
        "{e:?}"
    );
    assert_eq!(jobs_of_kind(&app, AcknowledgementMail::KIND).await, 0);
    let got = app.dossiers().get(&p, a).await.unwrap();
    assert_eq!(got.row.state, State::Brouillon);
    assert!(got.row.number.is_none());
    let sb = app.dossiers().submit(&p, b, vb).await.unwrap();
    assert_eq!(sb.number.to_string(), "ITN7-95-2021-00001");
    let sa = app.dossiers().submit(&p, a, va).await.unwrap();
    assert_eq!(sa.number.to_string(), "ITN7-95-2021-00002");
    assert_eq!(jobs_of_kind(&app, AcknowledgementMail::KIND).await, 2);
}

#[tokio::test]
async fn dossier_submitted_twice_at_once_succeeds_once() {
    let app = start().await;
    let p = agent(&app, "agent@cergy.fr", "95127").await;
    let (id, v) = draft(&app, &p, "95127").await;
    let spawn = |app: App, p: Principal| {
        tokio::spawn(async move { app.dossiers().submit(&p, id, v).await })
    };
    let one = spawn(app.clone(), p.clone());
    let two = spawn(app.clone(), p.clone());
    let results = [one.await.unwrap(), two.await.unwrap()];
    let ok: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(ok.len(), 1, "{results:?}");
    assert_eq!(ok[0].number.to_string(), "ITN7-95-2021-00001");
    let err = results.iter().find_map(|r| r.as_ref().err()).unwrap();
    assert!(
        matches!(err, Error::Conflict(_) | Error::Invalid(_)),
        "{err:?}"
    );
    assert_eq!(jobs_of_kind(&app, AcknowledgementMail::KIND).await, 1);
    // The next dossier follows without a gap.
    let (id2, v2) = draft(&app, &p, "95127").await;
    let s = app.dossiers().submit(&p, id2, v2).await.unwrap();
    assert_eq!(s.number.to_string(), "ITN7-95-2021-00002");
}

#[tokio::test]
async fn dossier_two_instructors_racing_one_succeeds_one_conflicts() {
    let app = start().await;
    let p = agent(&app, "agent@cergy.fr", "95127").await;
    let i1 = instructor(&app, "i1@val-doise.gouv.fr", "95").await;
    let i2 = instructor(&app, "i2@val-doise.gouv.fr", "95").await;
    let (id, v) = draft(&app, &p, "95127").await;
    let s = app.dossiers().submit(&p, id, v).await.unwrap();
    let version = s.version;
    let spawn = |app: App, i: Principal| {
        tokio::spawn(async move {
            app.dossiers()
                .apply(&i, id, version, Event::TakeIntoInstruction)
                .await
        })
    };
    let one = spawn(app.clone(), i1.clone());
    let two = spawn(app.clone(), i2.clone());
    let results = [one.await.unwrap(), two.await.unwrap()];
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    let err = results.iter().find_map(|r| r.as_ref().err()).unwrap();
    assert!(
        matches!(err, Error::Conflict(m) if m.contains("a été modifié entre-temps")),
        "{err:?}"
    );
    let d = app.dossiers().get(&i1, id).await.unwrap();
    assert_eq!(d.row.state, State::EnInstruction);
    let history = app.dossiers().history(&i1, id).await.unwrap();
    assert_eq!(
        history.iter().map(|h| h.event.as_str()).collect::<Vec<_>>(),
        ["depot", "prise_en_instruction"]
    );
    // The applicant may not take it into instruction.
    let e = app
        .dossiers()
        .apply(
            &p,
            id,
            d.row.version,
            Event::ResumeInstruction(guichet_domain::dossier::Reason::parse("x").unwrap()),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Forbidden | Error::Invalid(_)), "{e:?}");
}

#[tokio::test]
async fn dossier_outside_scope_is_neither_seen_nor_listed() {
    let app = start().await;
    let p = agent(&app, "agent@cergy.fr", "95127").await;
    let other_agent = agent(&app, "agent@argenteuil.fr", "95018").await;
    let own = instructor(&app, "i@val-doise.gouv.fr", "95").await;
    let yvelines = instructor(&app, "i@yvelines.gouv.fr", "78").await;
    let (id, v) = draft(&app, &p, "95127").await;
    // A draft: its collectivité's agents only, not even the instructing service.
    assert!(matches!(
        app.dossiers().get(&own, id).await,
        Err(Error::Forbidden)
    ));
    assert!(app.dossiers().list(&own, &all()).await.unwrap().is_empty());
    let s = app.dossiers().submit(&p, id, v).await.unwrap();
    assert_eq!(app.dossiers().get(&own, id).await.unwrap().row.id, id);
    assert_eq!(
        app.dossiers()
            .list(
                &own,
                &ListFilter {
                    state: Some(State::Depose),
                    measure: Some(MEASURE),
                    departement: Some("95"),
                    ..all()
                },
            )
            .await
            .unwrap()
            .len(),
        1
    );
    for outsider in [&yvelines, &other_agent] {
        assert!(matches!(
            app.dossiers().get(outsider, id).await,
            Err(Error::Forbidden | Error::NotFound(_))
        ));
        assert!(matches!(
            app.dossiers()
                .by_number(outsider, &s.number.to_string())
                .await,
            Err(Error::Forbidden | Error::NotFound(_))
        ));
        assert!(app
            .dossiers()
            .list(outsider, &all())
            .await
            .unwrap()
            .is_empty());
        assert!(app.dossiers().check(outsider, id).await.is_err());
    }
    // Another commune's agent cannot write it either.
    assert!(matches!(
        app.dossiers()
            .create_draft(&other_agent, MEASURE, &commune("95127"), "x")
            .await,
        Err(Error::Forbidden)
    ));
    let e = app
        .dossiers()
        .apply(&yvelines, id, s.version, Event::TakeIntoInstruction)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Forbidden | Error::NotFound(_)), "{e:?}");
    assert!(matches!(
        app.dossiers().get(&own, 999_999).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn dossier_franceconnect_desk_accepts_a_complete_dossier() {
    let app = start().await;
    let p = agent(&app, "agent@cergy.fr", "95127").await;
    let d = app
        .dossiers()
        .create_draft(&p, "axe2.franceconnect", &commune("95127"), "FranceConnect")
        .await
        .unwrap();
    let v = app
        .dossiers()
        .update_draft(&p, d.row.id, d.row.version, franceconnect())
        .await
        .unwrap();
    attach(&app, &p, d.row.id, "cahier_des_charges").await;
    let check = app.dossiers().check(&p, d.row.id).await.unwrap();
    assert!(
        check.is_complete() && check.is_eligible(),
        "{:?} {:?}",
        check.missing_fields,
        check.evaluation.as_ref().map(|e| (&e.missing, &e.reasons))
    );
    let s = app.dossiers().submit(&p, d.row.id, v).await.unwrap();
    assert_eq!(s.state, State::Accepte, "{s:?}");
    assert!(s.number.to_string().starts_with("ITN7-NAT-2021-"));
    let got = app.dossiers().get(&p, d.row.id).await.unwrap();
    assert_eq!(got.row.granted_cents, Some(500_000));
    let history = app.dossiers().history(&p, d.row.id).await.unwrap();
    assert_eq!(
        history
            .iter()
            .map(|h| (h.event.as_str(), h.actor.as_str()))
            .collect::<Vec<_>>(),
        [
            ("depot", format!("user:{}", p.user_id).as_str()),
            ("acceptation_automatique", "system")
        ]
    );
    // A second FranceConnect grant for the same commune: the engine now counts the first.
    let d2 = app
        .dossiers()
        .create_draft(
            &p,
            "axe2.franceconnect",
            &commune("95127"),
            "FranceConnect bis",
        )
        .await
        .unwrap();
    let v2 = app
        .dossiers()
        .update_draft(&p, d2.row.id, d2.row.version, franceconnect())
        .await
        .unwrap();
    attach(&app, &p, d2.row.id, "cahier_des_charges").await;
    let check = app.dossiers().check(&p, d2.row.id).await.unwrap();
    assert_eq!(
        check.own_records.get("financements_franceconnect"),
        Some(&1)
    );
    let e = app.dossiers().submit(&p, d2.row.id, v2).await.unwrap_err();
    assert!(
        matches!(&e, Error::Invalid(m) if m.contains("n’est pas éligible") && m.contains("FranceConnect")),
        "{e:?}"
    );
}

#[tokio::test]
async fn dossier_of_an_epci_on_two_departements_says_where_the_project_is() {
    let app = start().await;
    let epci = CollectiviteRef::parse("epci:249500109").unwrap();
    let p = user(
        &app,
        "agent@cergypontoise.fr",
        Role::Demandeur,
        None,
        vec![epci.clone()],
    )
    .await;
    let yvelines = instructor(&app, "i@yvelines.gouv.fr", "78").await;
    let d = app
        .dossiers()
        .create_draft(&p, MEASURE, &epci, "Portail intercommunal")
        .await
        .unwrap();
    let v = app
        .dossiers()
        .update_draft(&p, d.row.id, d.row.version, complete())
        .await
        .unwrap();
    attach(&app, &p, d.row.id, "devis").await;
    let e = app.dossiers().submit(&p, d.row.id, v).await.unwrap_err();
    assert!(
        matches!(&e, Error::Invalid(m) if m.contains("plusieurs départements (78, 95)") && m.contains("indiquez celui où il se réalise")),
        "{e:?}"
    );
    let mut data = complete();
    data.departement = Some("95".into());
    let v = app
        .dossiers()
        .update_draft(&p, d.row.id, v, data)
        .await
        .unwrap();
    let s = app.dossiers().submit(&p, d.row.id, v).await.unwrap();
    assert_eq!(s.number.to_string(), "ITN7-95-2021-00001");
    // The Yvelines prefecture does not instruct it, although the EPCI touches the Yvelines.
    assert!(app.dossiers().get(&yvelines, d.row.id).await.is_err());
    assert!(app
        .dossiers()
        .list(&yvelines, &all())
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn dossier_outside_its_filing_window_is_refused() {
    let app = start().await;
    let p = agent(&app, "agent@cergy.fr", "95127").await;
    let d = app
        .dossiers()
        .create_draft(&p, "axe2.franceconnect", &commune("95127"), "FranceConnect")
        .await
        .unwrap();
    let mut data = complete();
    data.champs.remove("usagers_cibles");
    data.champs.insert(
        "engagements_fc".into(),
        "Mise en production dans les 12 mois suivant l’attribution".into(),
    );
    data.champs.insert("date_debut".into(), "2022-11-01".into());
    data.champs.insert("date_fin".into(), "2023-06-30".into());
    let v = app
        .dossiers()
        .update_draft(&p, d.row.id, d.row.version, data)
        .await
        .unwrap();
    // After 30 September 2022 the desk is closed.
    app.clock.advance(chrono::Duration::days(500));
    let e = app.dossiers().submit(&p, d.row.id, v).await.unwrap_err();
    assert!(
        matches!(&e, Error::Invalid(m) if m.contains("clos depuis le 30/09/2022")),
        "{e:?}"
    );
    assert!(app
        .dossiers()
        .get(&p, d.row.id)
        .await
        .unwrap()
        .row
        .number
        .is_none());
}

#[tokio::test]
async fn dossier_correction_resubmission_proposal_and_decision() {
    use guichet_domain::dossier::{
        CorrectionKind, CorrectionMessage, CorrectionRequest, Decision, Grant, Proposal,
        RecordedProposal,
    };
    let app = start().await;
    let p = agent(&app, "agent@cergy.fr", "95127").await;
    let i = instructor(&app, "i@val-doise.gouv.fr", "95").await;
    let (id, v) = draft(&app, &p, "95127").await;
    let s = app.dossiers().submit(&p, id, v).await.unwrap();
    let v = app
        .dossiers()
        .apply(&i, id, s.version, Event::TakeIntoInstruction)
        .await
        .unwrap();
    let v = app
        .dossiers()
        .apply(
            &i,
            id,
            v,
            Event::RequestCorrection(CorrectionRequest {
                kind: CorrectionKind::Incomplet,
                message: CorrectionMessage::parse("Précisez les indicateurs.").unwrap(),
            }),
        )
        .await
        .unwrap();
    let mut data = complete();
    data.champs.insert(
        "indicateurs".into(),
        "Part des démarches en ligne : 50 %.".into(),
    );
    let v = app.dossiers().update_draft(&p, id, v, data).await.unwrap();
    let r = app.dossiers().submit(&p, id, v).await.unwrap();
    assert_eq!(r.state, State::EnInstruction);
    assert_eq!(r.number, s.number, "a resubmission keeps its number");
    assert_eq!(app.dossiers().versions(&i, id).await.unwrap().len(), 2);
    let d = app.dossiers().get(&i, id).await.unwrap();
    let bounds = d.verdict.as_ref().and_then(|v| v.bornes).unwrap();
    // A proposal above the bounds is refused whatever bounds the caller sends.
    let mut wide = bounds;
    wide.max_amount = Cents::new(bounds.max_amount.get() * 10);
    let e = app
        .dossiers()
        .apply(
            &i,
            id,
            r.version,
            Event::Propose(Proposal::Favourable {
                grant: Grant {
                    amount: wide.max_amount,
                    rate: bounds.max_rate,
                },
                justification: Some(guichet_domain::dossier::Justification::parse("x").unwrap()),
                bounds: wide,
            }),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
    let v = app
        .dossiers()
        .apply(
            &i,
            id,
            r.version,
            Event::Propose(Proposal::Favourable {
                grant: Grant {
                    amount: bounds.proposed_amount,
                    rate: bounds.rate,
                },
                justification: None,
                bounds,
            }),
        )
        .await
        .unwrap();
    let v = app
        .dossiers()
        .apply(
            &i,
            id,
            v,
            Event::Decide(Decision::Accept {
                proposal: RecordedProposal::Unfavourable,
            }),
        )
        .await
        .unwrap();
    let d = app.dossiers().get(&p, id).await.unwrap();
    assert_eq!(d.row.state, State::Accepte);
    assert_eq!(d.row.version, v);
    assert_eq!(d.row.granted_cents, Some(bounds.proposed_amount.get()));
    let events: Vec<String> = app
        .dossiers()
        .history(&p, id)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.event)
        .collect();
    assert_eq!(
        events,
        [
            "depot",
            "prise_en_instruction",
            "demande_de_correction",
            "redepot",
            "proposition",
            "acceptation"
        ]
    );
}

#[tokio::test]
async fn dossier_acknowledgement_is_sent_by_the_standard_workers() {
    use guichet_app::jobs::{Registry, WorkerOptions, Workers};
    let app = start().await;
    let p = agent(&app, "agent@cergy.fr", "95127").await;
    let own = instructor(&app, "i@val-doise.gouv.fr", "95").await;
    let (id, v) = draft(&app, &p, "95127").await;
    app.dossiers().submit(&p, id, v).await.unwrap();
    // The footprint filters by département.
    let in_78 = ListFilter {
        departement: Some("78"),
        ..all()
    };
    assert!(app.dossiers().list(&own, &in_78).await.unwrap().is_empty());
    let workers = Workers::start(
        &app,
        Registry::standard(&app),
        WorkerOptions {
            poll: std::time::Duration::from_millis(10),
            ..WorkerOptions::new(1)
        },
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let state: String = sqlx::query_scalar("SELECT state FROM jobs WHERE kind = $1")
            .bind(AcknowledgementMail::KIND)
            .fetch_one(guichet_app::testing::db(&app).pool())
            .await
            .unwrap();
        if state == "fait" {
            break;
        }
        assert_ne!(state, "mort");
        assert!(std::time::Instant::now() < deadline, "accusé non envoyé");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    workers.stop().await;
    let dir = app.config.data_dir.join("courriels");
    let mut found = false;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        found |= text.contains("ITN7-95-2021-00001");
    }
    assert!(
        found,
        "aucun courriel ne nomme le dossier dans {}",
        dir.display()
    );
}

#[tokio::test]
async fn dossier_with_a_corrupt_state_is_an_error_not_a_default() {
    let app = start().await;
    let p = agent(&app, "agent@cergy.fr", "95127").await;
    let (id, _) = draft(&app, &p, "95127").await;
    sqlx::query("UPDATE dossiers SET state = 'perdu' WHERE id = $1")
        .bind(id)
        .execute(guichet_app::testing::db(&app).pool())
        .await
        .unwrap();
    let e = app.dossiers().get(&p, id).await.unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Storage(guichet_app::testing::storage::StorageError::Corrupt(m)) if m.contains("state")
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn dossier_franceconnect_desk_refers_to_instruction_when_the_envelope_is_spent() {
    // The ITN7 programme with an Axe 2 envelope smaller than one FranceConnect grant.
    let folder = guichet_testkit::temp_dir().join("itn7-petite-enveloppe");
    std::fs::create_dir_all(&folder).unwrap();
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../programmes/itn7");
    for f in guichet_programme::PROGRAMME_FILES {
        let mut text = std::fs::read_to_string(source.join(f)).unwrap();
        if f == "programme.yaml" {
            let axe2 = "guichet FranceConnect / API\"\n    enveloppe_euros: 24000000";
            assert!(text.contains(axe2), "axe 2 introuvable");
            text = text.replace(
                axe2,
                "guichet FranceConnect / API\"\n    enveloppe_euros: 4000",
            );
        }
        std::fs::write(folder.join(f), text).unwrap();
    }
    let app = start_with(|c| c.programme_file = Some(folder.clone())).await;
    let p = agent(&app, "agent@cergy.fr", "95127").await;
    let d = app
        .dossiers()
        .create_draft(&p, "axe2.franceconnect", &commune("95127"), "FranceConnect")
        .await
        .unwrap();
    let v = app
        .dossiers()
        .update_draft(&p, d.row.id, d.row.version, franceconnect())
        .await
        .unwrap();
    attach(&app, &p, d.row.id, "cahier_des_charges").await;
    let s = app.dossiers().submit(&p, d.row.id, v).await.unwrap();
    assert_eq!(s.state, State::EnInstruction, "{s:?}");
    let history = app.dossiers().history(&p, d.row.id).await.unwrap();
    let last = history.last().unwrap();
    assert_eq!(last.event, "orientation_instruction");
    assert_eq!(last.actor, "system");
    let message = last.message.as_deref().unwrap_or_default();
    assert!(message.contains("enveloppe restante"), "{message}");
    assert_eq!(
        app.dossiers()
            .get(&p, d.row.id)
            .await
            .unwrap()
            .row
            .granted_cents,
        None
    );
}

#[tokio::test]
async fn dossier_handed_over_to_another_service_moves_with_its_scope() {
    use guichet_domain::dossier::Reason;
    let app = start().await;
    let p = agent(&app, "agent@cergy.fr", "95127").await;
    let val_doise = instructor(&app, "i@val-doise.gouv.fr", "95").await;
    let yvelines = instructor(&app, "i@yvelines.gouv.fr", "78").await;
    let (id, v) = draft(&app, &p, "95127").await;
    let s = app.dossiers().submit(&p, id, v).await.unwrap();
    let v = app
        .dossiers()
        .apply(&val_doise, id, s.version, Event::TakeIntoInstruction)
        .await
        .unwrap();
    let to = ServiceTarget::Departement(DepartementCode::parse("78").unwrap());
    // Not by the other service, nor by the applicant.
    assert!(app
        .dossiers()
        .hand_over(&yvelines, id, v, &to, Reason::parse("x").unwrap())
        .await
        .is_err());
    assert!(app
        .dossiers()
        .hand_over(&p, id, v, &to, Reason::parse("x").unwrap())
        .await
        .is_err());
    let v = app
        .dossiers()
        .hand_over(
            &val_doise,
            id,
            v,
            &to,
            Reason::parse("Projet réalisé à Versailles").unwrap(),
        )
        .await
        .unwrap();
    let d = app.dossiers().get(&yvelines, id).await.unwrap();
    assert_eq!(d.row.state, State::Depose);
    assert_eq!(d.row.version, v);
    assert_eq!(d.row.number, Some(s.number));
    assert!(app.dossiers().get(&val_doise, id).await.is_err());
    let last = app
        .dossiers()
        .history(&yvelines, id)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(last.event, "transmission");
    assert!(last
        .message
        .is_some_and(|m| m.contains("Versailles") && m.contains("Yvelines")));
}

/// The instruction queue: for those who instruct only, scoped in SQL, counted per state with
/// the same filters; the instructor's dossier page answers as `by_number` does.
#[tokio::test]
async fn instruction_queue_is_scoped_and_counted() {
    let app = start().await;
    let cergy = agent(&app, "agent@cergy.fr", "95127").await;
    let versailles = agent(&app, "agent@versailles.fr", "78646").await;
    let (id95, v95) = draft(&app, &cergy, "95127").await;
    let (id78, v78) = draft(&app, &versailles, "78646").await;
    let n95 = app
        .dossiers()
        .submit(&cergy, id95, v95)
        .await
        .unwrap()
        .number;
    app.dossiers().submit(&versailles, id78, v78).await.unwrap();
    // A draft stays out of every instructor's queue.
    draft(&app, &cergy, "95127").await;
    let i95 = instructor(&app, "i95@pref.fr", "95").await;
    let i78 = instructor(&app, "i78@pref.fr", "78").await;

    let filed = [State::Depose];
    let to_instruct = ListFilter {
        states: &filed,
        limit: 50,
        ..ListFilter::default()
    };
    let q = app.dossiers().queue(&i95, &to_instruct).await.unwrap();
    assert_eq!(q.lines.len(), 1);
    assert_eq!(q.lines[0].dossier.row.number.as_ref(), Some(&n95));
    assert_eq!(q.lines[0].applicant_name, "Cergy");
    assert_eq!(q.counts, [(State::Depose, 1)]);
    let in_78 = ListFilter {
        departement: Some("78"),
        ..to_instruct.clone()
    };
    let q = app.dossiers().queue(&i95, &in_78).await.unwrap();
    assert!(q.lines.is_empty());
    assert!(q.counts.is_empty());
    let q = app.dossiers().queue(&i78, &to_instruct).await.unwrap();
    assert_eq!(q.lines.len(), 1);
    assert_ne!(q.lines[0].dossier.row.number.as_ref(), Some(&n95));

    // Applicants and experts do not instruct: refused, whatever they could otherwise read.
    assert!(matches!(
        app.dossiers().queue(&cergy, &to_instruct).await,
        Err(Error::Forbidden)
    ));
    assert!(matches!(
        app.dossiers()
            .instruction_file(&cergy, &n95.to_string())
            .await,
        Err(Error::Forbidden)
    ));
    let file = app
        .dossiers()
        .instruction_file(&i95, &n95.to_string())
        .await
        .unwrap();
    assert_eq!(file.history.len(), 1);
    assert_eq!(file.history[0].1, "agent@cergy.fr");
    assert!(file.frozen.is_some());
    assert!(matches!(
        app.dossiers()
            .instruction_file(&i78, &n95.to_string())
            .await,
        Err(Error::Forbidden)
    ));
    assert!(matches!(
        app.dossiers()
            .instruction_file(&i95, "ITN7-95-2021-09999")
            .await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn dossier_state_changes_are_announced_to_the_instructing_services_webhooks() {
    let app = start().await;
    let p = agent(&app, "agent@cergy.fr", "95127").await;
    let i95 = instructor(&app, "i@val-doise.gouv.fr", "95").await;
    instructor(&app, "i@yvelines.gouv.fr", "78").await;
    let (hook95, _) = app
        .webhooks()
        .create("pref-95", "http://127.0.0.1:9/recepteur", AuditActor::Cli)
        .await
        .unwrap();
    let (hook78, _) = app
        .webhooks()
        .create("pref-78", "http://127.0.0.1:9/recepteur", AuditActor::Cli)
        .await
        .unwrap();
    let (id, v) = draft(&app, &p, "95127").await;
    // A draft belongs to no service yet: nothing is announced.
    assert!(app
        .webhooks()
        .deliveries_all(hook95)
        .await
        .unwrap()
        .is_empty());
    let s = app.dossiers().submit(&p, id, v).await.unwrap();
    app.dossiers()
        .apply(&i95, id, s.version, Event::TakeIntoInstruction)
        .await
        .unwrap();
    let mut delivered = app.webhooks().deliveries_all(hook95).await.unwrap();
    delivered.sort_by_key(|d| d.id);
    let states: Vec<(String, serde_json::Value)> = delivered
        .iter()
        .map(|d| {
            let v: serde_json::Value = serde_json::from_str(&d.payload).unwrap();
            assert_eq!(v["type"], "dossier.etat");
            (d.event_type.clone(), v["donnees"].clone())
        })
        .collect();
    assert_eq!(states.len(), 2, "{states:?}");
    assert!(states.iter().all(|(t, _)| t == "dossier.etat"));
    assert_eq!(states[0].1["etat"], "depose");
    assert_eq!(states[0].1["numero"], "ITN7-95-2021-00001");
    assert_eq!(states[1].1["etat_precedent"], "depose");
    assert_eq!(states[1].1["etat"], "en_instruction");
    // Another prefecture's webhook hears nothing of it.
    assert!(app
        .webhooks()
        .deliveries_all(hook78)
        .await
        .unwrap()
        .is_empty());
}

/// After the demo seed, a real draft gets a fresh id (PostgreSQL's sequence moved past the
/// seeded ids) and its submission the next number (the seed recorded its last one).
#[tokio::test]
async fn dossier_filed_after_the_demo_seed_follows_its_ids_and_numbers() {
    let app = start().await;
    let report = app.demo().seed(60, 3).await.unwrap();
    assert_eq!(report.dossiers, 60);
    assert_eq!(report.by_state.iter().map(|(_, n)| n).sum::<usize>(), 60);
    let p = agent(&app, "agent@cergy.fr", "95127").await;
    let admin = Principal {
        user_id: 0,
        role: Role::Administrateur,
        service: None,
        collectivites: vec![],
    };
    let before = app
        .dossiers()
        .list(
            &admin,
            &ListFilter {
                limit: 200,
                ..ListFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(before.len(), 60);
    let seeded_95 = before
        .iter()
        .filter(|r| {
            r.number
                .as_ref()
                .is_some_and(|n| n.to_string().starts_with("ITN7-95-"))
        })
        .count();
    let (id, v) = draft(&app, &p, "95127").await;
    assert!(before.iter().all(|r| r.id != id));
    let s = app.dossiers().submit(&p, id, v).await.unwrap();
    assert_eq!(
        s.number.to_string(),
        format!("ITN7-95-2021-{:05}", seeded_95 + 1)
    );
}
