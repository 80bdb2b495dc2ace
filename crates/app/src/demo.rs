//! Demo data: the referential, ITN7's services and one fictional account per role. Idempotent:
//! running it again creates only what is missing. Every name here is invented.

use crate::accounts::NewUser;
use crate::audit::Actor;
use crate::error::{AppError, AppResult};
use crate::App;
use guichet_domain::access::ServiceTarget;
use guichet_domain::{CollectiviteRef, Role, Vintage};
use guichet_storage::accounts as store;

/// Password of every demo account (listed in the README).
pub const DEMO_PASSWORD: &str = "demonstration-itn7";

/// ITN7's instructing services: the 7 Île-de-France departmental prefectures of volet 1, the
/// regional prefectures of Île-de-France, PACA and Occitanie, and the national directorates.
pub const DEMO_SERVICES: &[&str] = &[
    "77",
    "78",
    "91",
    "92",
    "93",
    "94",
    "95",
    "region:11",
    "region:93",
    "region:76",
    "DINUM",
    "DITP",
    "ANCT",
    "ANSSI",
];

pub struct DemoAccount {
    pub email: &'static str,
    pub name: &'static str,
    pub role: Role,
    pub service: Option<&'static str>,
    pub collectivites: &'static [&'static str],
}

pub const DEMO_ACCOUNTS: &[DemoAccount] = &[
    DemoAccount {
        email: "admin@demo.guichet.test",
        name: "Alix Exemple",
        role: Role::Administrateur,
        service: None,
        collectivites: &[],
    },
    DemoAccount {
        email: "coordination.idf@demo.guichet.test",
        name: "Sacha Exemple",
        role: Role::Coordinateur,
        service: Some("region:11"),
        collectivites: &[],
    },
    DemoAccount {
        email: "instruction.95@demo.guichet.test",
        name: "Dominique Exemple",
        role: Role::Instructeur,
        service: Some("95"),
        collectivites: &[],
    },
    DemoAccount {
        email: "instruction.78@demo.guichet.test",
        name: "Claude Exemple",
        role: Role::Instructeur,
        service: Some("78"),
        collectivites: &[],
    },
    DemoAccount {
        email: "instruction.dinum@demo.guichet.test",
        name: "Maxime Exemple",
        role: Role::Instructeur,
        service: Some("DINUM"),
        collectivites: &[],
    },
    DemoAccount {
        email: "expert.95@demo.guichet.test",
        name: "Morgan Exemple",
        role: Role::Expert,
        service: Some("95"),
        collectivites: &[],
    },
    DemoAccount {
        email: "comite.95@demo.guichet.test",
        name: "Noa Exemple",
        role: Role::MembreComite,
        service: Some("95"),
        collectivites: &[],
    },
    DemoAccount {
        email: "mairie.cergy@demo.guichet.test",
        name: "Camille Exemple",
        role: Role::Demandeur,
        service: None,
        collectivites: &["commune:95127", "epci:249500109"],
    },
    DemoAccount {
        email: "mairie.versailles@demo.guichet.test",
        name: "Lou Exemple",
        role: Role::Demandeur,
        service: None,
        collectivites: &["commune:78646"],
    },
];

/// Demo data (`app.demo()`).
#[derive(Clone, Copy)]
pub struct Demo<'a> {
    pub(crate) app: &'a App,
}

impl Demo<'_> {
    /// Loads the demo data; returns how many accounts were created.
    pub async fn load(&self) -> AppResult<usize> {
        let imported = crate::referentiel::available_vintages(&self.app.db).await?;
        for v in Vintage::ALL {
            if !imported.contains(&v) {
                let report = self
                    .app
                    .referentiel()
                    .import_vintage(v, Actor::System, &|_, _| {})
                    .await?;
                tracing::info!(millesime = %v, communes = report.communes, "référentiel importé pour la démonstration");
            }
        }
        for s in DEMO_SERVICES {
            let target = ServiceTarget::parse(s).map_err(|e| AppError::Invalid(e.to_string()))?;
            self.app
                .accounts()
                .ensure_service(&target, Actor::System)
                .await?;
        }
        let mut created = 0;
        for a in DEMO_ACCOUNTS {
            let exists = {
                let mut conn = self.app.db.pool().acquire().await?;
                store::find_user_by_email(&mut *conn, a.email)
                    .await?
                    .is_some()
            };
            if exists {
                continue;
            }
            let service = a
                .service
                .map(ServiceTarget::parse)
                .transpose()
                .map_err(|e| AppError::Invalid(e.to_string()))?;
            let collectivites = a
                .collectivites
                .iter()
                .map(|c| CollectiviteRef::parse(c))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| AppError::Invalid(e.to_string()))?;
            let (id, _link) = self
                .app
                .accounts()
                .create_user(
                    NewUser {
                        email: a.email.into(),
                        display_name: a.name.into(),
                        role: a.role,
                        service,
                        collectivites,
                    },
                    Actor::System,
                )
                .await?;
            self.app
                .sessions()
                .set_password(id, DEMO_PASSWORD, Actor::System)
                .await?;
            created += 1;
        }
        Ok(created)
    }
}

/// What `guichet demo seed` wrote.
#[derive(Debug, Clone, Default)]
pub struct SeedReport {
    pub dossiers: usize,
    /// Dossiers per state, in the states' order.
    pub by_state: Vec<(guichet_domain::dossier::State, usize)>,
}

/// A small deterministic generator (SplitMix64): the same seed gives the same dossiers on
/// every machine and version.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The measures seeded: Axe 3 volet 1, instructed by the departmental prefectures.
const SEED_MEASURES: [&str; 3] = [
    "axe3.v1.expert",
    "axe3.v1.formation",
    "axe3.v1.relation-usager",
];

/// Project titles, completed with the commune's name.
const SEED_TITLES: [&str; 8] = [
    "Prise de rendez-vous en ligne",
    "Portail citoyen",
    "Dématérialisation de l’état civil",
    "Formation des agents aux outils collaboratifs",
    "Schéma directeur du numérique",
    "Accueil numérique des usagers",
    "Inscriptions scolaires en ligne",
    "Gestion de la relation usager",
];

/// Dossiers per state out of 100: received, under instruction, sent back, proposed, then
/// decided (the rest of an ineligible draw is refused).
const SEED_STATES: [(guichet_domain::dossier::State, u64); 7] = [
    (guichet_domain::dossier::State::Depose, 30),
    (guichet_domain::dossier::State::EnInstruction, 25),
    (guichet_domain::dossier::State::EnCorrection, 8),
    (guichet_domain::dossier::State::Instruit, 15),
    (guichet_domain::dossier::State::Accepte, 15),
    (guichet_domain::dossier::State::Refuse, 5),
    (guichet_domain::dossier::State::SansSuite, 2),
];

/// Dossiers built in memory, then written, per transaction.
const SEED_CHUNK: usize = 5_000;

impl Demo<'_> {
    /// Seeds `count` filed dossiers of Axe 3 volet 1 for communes drawn from the referential
    /// (`graine` fixes the draw), spread over the states, numbered after the existing ones,
    /// with their footprint, frozen submission, verdict computed by the rules engine at their
    /// filing date, and history; then fresh planner statistics. For load tests and
    /// demonstrations: no mail, no webhook.
    pub async fn seed(&self, count: usize, graine: u64) -> AppResult<SeedReport> {
        use crate::dossiers::{DraftData, FiledVerdict};
        use crate::simulation::{Applicant, Member};
        use guichet_domain::dossier::{Grant, NumberTerritory, RecordedProposal, State};
        use guichet_domain::{Cents, CollectiviteKind, DossierNumber};
        use guichet_programme::{ProjectPlace, Situation, Value};
        use guichet_storage::dossiers::{self as dstore, SeededDossier};
        use std::collections::{BTreeMap, HashMap};

        self.load().await?;
        let app = self.app;
        let programme = &app.programme;
        let vintage = programme.vintage;
        let index = app.search.vintage(&app.db, vintage).await?.ok_or_else(|| {
            AppError::Unavailable(format!("le référentiel {vintage} n’est pas importé"))
        })?;
        let counts = index.communes_per_departement().clone();
        let mut deps: Vec<&String> = counts.keys().collect();
        deps.sort();
        // Every commune of a région's département: (insee, name, population, dép, région).
        let mut communes: Vec<(String, String, i64, String, String)> = Vec::new();
        for dep in deps {
            for c in index
                .member_communes(CollectiviteKind::Departement, dep)
                .unwrap_or_default()
            {
                if let (Some(d), Some(r)) = (c.departement, c.region) {
                    communes.push((
                        c.code.to_string(),
                        c.name.to_string(),
                        c.population,
                        d.to_string(),
                        r.to_string(),
                    ));
                }
            }
        }
        if communes.is_empty() {
            return Err(AppError::Unavailable(
                "aucune commune dans le référentiel : importez-le d’abord".into(),
            ));
        }
        let measures: Vec<&str> = SEED_MEASURES
            .iter()
            .copied()
            .filter(|m| programme.measure(m).is_some())
            .collect();
        if measures.is_empty() {
            return Err(AppError::Invalid(
                "le programme n’a aucune des mesures de l’axe 3 volet 1 que la démonstration remplit"
                    .into(),
            ));
        }
        // Who the records name as their author: the demo administrator (the history says
        // « démonstration »).
        let author = {
            let mut conn = app.db.pool().acquire().await?;
            store::find_user_by_email(&mut *conn, DEMO_ACCOUNTS[0].email)
                .await?
                .map(|u| u.id)
                .ok_or_else(|| {
                    AppError::Internal(anyhow::anyhow!("compte de démonstration absent"))
                })?
        };
        let mut rng = SplitMix(graine ^ 0x4755_4943_4845_5431);
        let mut services: HashMap<String, (i64, NumberTerritory)> = HashMap::new();
        let mut sequences: BTreeMap<String, i64> = BTreeMap::new();
        let mut by_state: BTreeMap<State, usize> = BTreeMap::new();
        let year: i64 = 2021;
        let prefix = programme.number_prefix.as_str().to_string();
        let start = chrono::NaiveDate::from_ymd_opt(2021, 2, 1)
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("date de départ")))?;
        let mut written = 0;
        while written < count {
            let n = SEED_CHUNK.min(count - written);
            let mut chunk = Vec::with_capacity(n);
            for _ in 0..n {
                let (insee, name, population, dep, region) =
                    &communes[rng.below(communes.len() as u64) as usize];
                let measure = measures[rng.below(measures.len() as u64) as usize];
                let applicant_ref = CollectiviteRef::new(CollectiviteKind::Commune, insee)
                    .map_err(|e| AppError::Internal(anyhow::anyhow!(e)))?;
                let applicant = Applicant::from_members(
                    applicant_ref.to_string(),
                    name.clone(),
                    "commune",
                    &[Member {
                        insee: insee.clone(),
                        population: *population,
                        departement: dep.clone(),
                        region: Some(region.clone()),
                    }],
                    &counts,
                    None,
                    vintage.year(),
                );
                let footprint = guichet_domain::TerritoryFootprint {
                    departements: applicant.departements.clone(),
                    regions: applicant.regions.clone(),
                };
                let target = programme
                    .routing
                    .instructing_service(
                        measure,
                        ProjectPlace {
                            footprint: &footprint,
                            departement: None,
                        },
                    )
                    .map_err(|e| AppError::Invalid(e.to_string()))?;
                let key = target.territory_code().to_string();
                let (service_id, territory) = match services.get(&key) {
                    Some(s) => s.clone(),
                    None => {
                        let row = app
                            .accounts()
                            .ensure_service(&target, Actor::System)
                            .await?;
                        let s = (row.id, NumberTerritory::of(&target));
                        services.insert(key.clone(), s.clone());
                        s
                    }
                };
                let territory_text = territory.to_string();
                let last = match sequences.get(&territory_text) {
                    Some(l) => *l,
                    None => {
                        let mut conn = app.db.acquire().await?;
                        dstore::sequence_last(&mut conn, &prefix, &territory_text, year).await?
                    }
                };
                let sequence = last + 1;
                sequences.insert(territory_text, sequence);
                let number = DossierNumber::new(
                    programme.number_prefix.clone(),
                    territory,
                    2021,
                    u64::try_from(sequence).unwrap_or(1),
                )
                .map_err(|e| AppError::Internal(anyhow::anyhow!(e)))?;
                let filed_on = start + chrono::Duration::days(rng.below(120) as i64);
                let filed_at = chrono::NaiveDateTime::new(
                    filed_on,
                    chrono::NaiveTime::from_hms_opt(
                        8 + rng.below(9) as u32,
                        rng.below(60) as u32,
                        0,
                    )
                    .unwrap_or_default(),
                )
                .and_utc();
                let later = filed_at + chrono::Duration::days(1 + rng.below(30) as i64);
                let cost = Cents::from_euros(5_000 + 100 * rng.below(1_450) as i64);
                let title = format!(
                    "{} – {name}",
                    SEED_TITLES[rng.below(SEED_TITLES.len() as u64) as usize]
                );
                let mut data = DraftData::default();
                for (k, v) in [
                    ("titre", title.as_str()),
                    (
                        "description",
                        "Projet de démonstration, généré par guichet demo seed.",
                    ),
                    ("portage_decisionnel", "oui"),
                    ("en_zrr", "non"),
                    ("situation_actuelle", "Démarches au guichet, sur papier."),
                    (
                        "besoins",
                        "Des usagers qui demandent à faire leurs démarches en ligne.",
                    ),
                    ("objectifs", "La moitié des démarches en ligne en un an."),
                    ("impact_attendu", "Moins d’attente et de déplacements."),
                    ("indicateurs", "Part des démarches faites en ligne."),
                    ("date_debut", "2021-07-01"),
                    ("date_fin", "2022-06-30"),
                    ("deja_commence", "non"),
                    ("contact_nom", "Contact de démonstration"),
                    ("contact_courriel", "contact@demo.guichet.test"),
                    ("nature_prestation", "accompagnement de projet"),
                    ("agents_concernes", "12"),
                    (
                        "themes_formation",
                        "Outils collaboratifs et relation usager.",
                    ),
                    ("usagers_cibles", "5000"),
                ] {
                    let known = programme
                        .form
                        .blocks_for(measure)
                        .any(|b| b.fields.iter().any(|f| f.id == k));
                    if known {
                        data.champs.insert(k.into(), v.into());
                    }
                }
                data.depenses.insert("prestation".into(), cost);
                let mut facts = applicant.facts();
                for (k, v) in [
                    ("portage_decisionnel", Value::Booleen(true)),
                    ("deja_commence", Value::Booleen(false)),
                    ("en_zrr", Value::Booleen(false)),
                ] {
                    facts.insert(k.to_string(), v);
                }
                if let Ok(end) = Value::parse_literal("2022-06-30", guichet_programme::Type::Date) {
                    facts.insert("date_fin".into(), end);
                }
                let situation = Situation {
                    date: Some(filed_on),
                    facts,
                    expenses: vec![("prestation".to_string(), cost)],
                };
                let ev = programme
                    .rules
                    .prepare(&situation)
                    .and_then(|p| programme.rules.evaluate(measure, &p, false))
                    .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
                let verdict = FiledVerdict::of(&ev);
                let bounds = verdict.bornes;
                let mut state = {
                    let mut roll = rng.below(100);
                    let mut chosen = State::Depose;
                    for (s, weight) in SEED_STATES {
                        if roll < weight {
                            chosen = s;
                            break;
                        }
                        roll -= weight;
                    }
                    chosen
                };
                if bounds.is_none() && matches!(state, State::Instruit | State::Accepte) {
                    state = State::Refuse;
                }
                let grant = bounds.map(|b| Grant {
                    amount: b.proposed_amount,
                    rate: b.rate,
                });
                let (proposal, granted) = match (state, grant) {
                    (State::Instruit, Some(g)) => (Some(RecordedProposal::Favourable(g)), None),
                    (State::Accepte, Some(g)) => (Some(RecordedProposal::Favourable(g)), Some(g)),
                    _ => (None, None),
                };
                let mut history = Vec::new();
                if state != State::Depose {
                    history.push((
                        State::Depose,
                        State::EnInstruction,
                        "prise_en_instruction",
                        None,
                        None,
                        None,
                    ));
                }
                match state {
                    State::EnCorrection => history.push((
                        State::EnInstruction,
                        State::EnCorrection,
                        "demande_de_correction",
                        Some("Dossier incomplet : joignez le devis signé.".to_string()),
                        None,
                        None,
                    )),
                    State::Instruit | State::Accepte => {
                        history.push((
                            State::EnInstruction,
                            State::Instruit,
                            "proposition",
                            None,
                            grant.map(|g| g.amount.get()),
                            grant.map(|g| i64::from(g.rate.basis_points())),
                        ));
                        if state == State::Accepte {
                            history.push((
                                State::Instruit,
                                State::Accepte,
                                "acceptation",
                                None,
                                grant.map(|g| g.amount.get()),
                                grant.map(|g| i64::from(g.rate.basis_points())),
                            ));
                        }
                    }
                    State::Refuse => history.push((
                        State::EnInstruction,
                        State::Refuse,
                        "refus",
                        Some("Le projet ne remplit pas les conditions de la mesure.".to_string()),
                        None,
                        None,
                    )),
                    State::SansSuite => history.push((
                        State::EnInstruction,
                        State::SansSuite,
                        "classement_sans_suite",
                        Some("La collectivité a retiré sa demande.".to_string()),
                        None,
                        None,
                    )),
                    _ => {}
                }
                *by_state.entry(state).or_default() += 1;
                let submitted_at = guichet_storage::format_ts(filed_at);
                let updated_at = if state == State::Depose {
                    submitted_at.clone()
                } else {
                    guichet_storage::format_ts(later)
                };
                let json = |v: &serde_json::Value| v.to_string();
                let verdict_text = serde_json::to_string(&verdict)
                    .map_err(|e| AppError::Internal(anyhow::anyhow!(e)))?;
                let snapshot = serde_json::json!({
                    "numero": number.to_string(),
                    "mesure": measure,
                    "titre": title,
                    "demandeur": applicant_ref.to_string(),
                    "donnees": data,
                    "pieces": [],
                    "verdict": verdict,
                    "version_programme": programme.version,
                    "depose_le": submitted_at,
                });
                chunk.push(SeededDossier {
                    measure: measure.to_string(),
                    state,
                    applicant: applicant_ref,
                    created_by: author,
                    title,
                    data: serde_json::to_string(&data)
                        .map_err(|e| AppError::Internal(anyhow::anyhow!(e)))?,
                    number: number.to_string(),
                    submitted_at,
                    updated_at,
                    service_id,
                    verdict: verdict_text,
                    programme_version: programme.version.clone(),
                    proposal: proposal
                        .map(|p| serde_json::to_value(p).map(|v| json(&v)))
                        .transpose()
                        .map_err(|e| AppError::Internal(anyhow::anyhow!(e)))?,
                    granted_cents: granted.map(|g| g.amount.get()),
                    granted_rate_bp: granted.map(|g| i64::from(g.rate.basis_points())),
                    departements: footprint.departements.iter().cloned().collect(),
                    regions: footprint.regions.iter().cloned().collect(),
                    snapshot: json(&snapshot),
                    history,
                });
            }
            let mut tx = app.db.begin_write().await?;
            dstore::insert_seeded(&mut tx, app.db.backend(), &chunk).await?;
            for (territory, last) in &sequences {
                dstore::set_sequence(&mut tx, &prefix, territory, year, *last).await?;
            }
            tx.commit().await?;
            written += n;
        }
        dstore::analyze_after_bulk(&app.db).await?;
        let mut tx = app.db.begin_write().await?;
        crate::audit::record(
            &mut tx,
            &app.clock,
            Actor::System,
            "demo.seed",
            "dossiers",
            "",
            None,
            Some(&serde_json::json!({"dossiers": count, "graine": graine})),
        )
        .await?;
        tx.commit().await?;
        Ok(SeedReport {
            dossiers: count,
            by_state: by_state.into_iter().collect(),
        })
    }
}
