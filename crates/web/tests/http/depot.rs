//! Filing a dossier through its pages, as a town-hall agent does without JavaScript (one step
//! at a time, each saved by its button), the autosave the pages' script uses, submission and
//! the receipt; then the instructor's actions from the dossier page.

use crate::common::{client, spawn_app, TestApp};
use guichet_domain::Role;

const MEASURE: &str = "axe3.v1.relation-usager";

fn version_in(html: &str) -> String {
    let marker = "name=\"version\" value=\"";
    let start = html.find(marker).expect("version dans la page") + marker.len();
    let end = html[start..].find('"').expect("fin de la version");
    html[start..start + end].to_string()
}

async fn page(t: &TestApp, c: &reqwest::Client, path: &str) -> (u16, String) {
    let r = t.get_with(c, path).await;
    (r.status().as_u16(), r.text().await.expect("corps"))
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Saves one step of the dossier at `path` with `fields`, from the page's own version and
/// token; returns the response.
async fn save_step(
    t: &TestApp,
    c: &reqwest::Client,
    path: &str,
    step: &str,
    go: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let (_, html) = page(t, c, &format!("{path}?etape={step}")).await;
    let csrf = crate::common::csrf_in(&html).expect("jeton");
    let version = version_in(&html);
    let mut form: Vec<(&str, &str)> = vec![
        ("csrf", &csrf),
        ("version", &version),
        ("etape", step),
        ("aller", go),
    ];
    form.extend_from_slice(fields);
    t.post_form(c, path, &form).await
}

/// Creates a draft through the "Nouveau dossier" form; returns its page's path.
async fn new_draft(t: &TestApp, c: &reqwest::Client, title: &str) -> String {
    let csrf = t
        .csrf(c, &format!("/espace/dossiers/nouveau?mesure={MEASURE}"))
        .await;
    let r = t
        .post_form(
            c,
            "/espace/dossiers",
            &[("csrf", &csrf), ("mesure", MEASURE), ("titre", title)],
        )
        .await;
    assert_eq!(r.status(), 303, "création du brouillon");
    location(&r)
}

const BOUNDARY: &str = "----guichet-essai-7c1f";

/// Attaches a document through the step's upload form (multipart, the token first).
async fn upload(
    t: &TestApp,
    c: &reqwest::Client,
    path: &str,
    kind: &str,
    filename: &str,
    content: &[u8],
) -> reqwest::Response {
    let (_, html) = page(t, c, &format!("{path}?etape=pieces")).await;
    let csrf = crate::common::csrf_in(&html).expect("jeton");
    let mut body = Vec::new();
    for (name, value) in [("csrf", csrf.as_str()), ("piece", kind)] {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"fichier\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    c.post(t.url(&format!("{path}/pieces")))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .send()
        .await
        .expect("POST")
}

/// A step's slug, the next step, and the fields typed.
type StepInput = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
);

/// Fills every step of a relation-usager draft, as the agent does.
async fn fill(t: &TestApp, c: &reqwest::Client, path: &str) {
    let steps: [StepInput; 8] = [
        (
            "projet",
            "situation",
            vec![
                ("champ.titre", "Prise de rendez-vous en ligne"),
                ("champ.description", "Un portail pour l’état civil."),
                ("champ.portage_decisionnel", "oui"),
                ("champ.en_zrr", "non"),
            ],
        ),
        (
            "situation",
            "objectifs",
            vec![
                ("champ.situation_actuelle", "Tout se fait au guichet."),
                ("champ.besoins", "500 demandes par mois."),
            ],
        ),
        (
            "objectifs",
            "impact",
            vec![("champ.objectifs", "Moitié des démarches en ligne.")],
        ),
        (
            "impact",
            "calendrier",
            vec![
                ("champ.impact_attendu", "Moins d’attente."),
                ("champ.indicateurs", "Part des démarches en ligne."),
            ],
        ),
        (
            "calendrier",
            "contact",
            vec![
                ("champ.date_debut", "2021-07-01"),
                ("champ.date_fin", "2022-06-30"),
                ("champ.deja_commence", "non"),
            ],
        ),
        (
            "contact",
            "relation_usager",
            vec![
                ("champ.contact_nom", "Camille Martin"),
                ("champ.contact_courriel", "camille.martin@example.org"),
            ],
        ),
        (
            "relation_usager",
            "budget",
            vec![("champ.usagers_cibles", "20 000")],
        ),
        (
            "budget",
            "pieces",
            vec![
                ("depense.prestation", "40 000"),
                ("cofinancement.0.source", "Conseil départemental"),
                ("cofinancement.0.montant", "5 000"),
                ("cofinancement.1.source", ""),
                ("cofinancement.1.montant", ""),
            ],
        ),
    ];
    for (step, next, fields) in steps {
        let r = save_step(t, c, path, step, next, &fields).await;
        assert_eq!(
            r.status(),
            303,
            "étape {step} : {}",
            r.text().await.unwrap()
        );
        assert_eq!(
            location(&r),
            format!("{path}?etape={next}&enregistre=1"),
            "étape {step}"
        );
    }
    let r = upload(
        t,
        c,
        path,
        "devis",
        "Devis prestataire.pdf",
        crate::instruction::PDF,
    )
    .await;
    assert_eq!(r.status(), 303, "devis : {}", r.text().await.unwrap());
}

#[tokio::test]
async fn an_agent_files_a_dossier_step_by_step_and_prints_the_receipt() {
    let t = spawn_app().await;
    let agent = t.applicant().await;
    let c = t.login_as(&agent).await;

    // The menu leads to the agent's dossiers; the measure page's button to a new draft.
    let (status, html) = page(&t, &c, "/espace/dossiers").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("href=\"/espace/dossiers\""), "menu : {html}");
    assert!(html.contains("Aucun dossier pour l’instant"));
    let (_, html) = page(
        &t,
        &c,
        &format!("/espace/dossiers/nouveau?mesure={MEASURE}"),
    )
    .await;
    assert!(
        html.contains(&format!("<option value=\"{MEASURE}\" selected>")),
        "{html}"
    );
    assert!(html.contains("<optgroup label=\"Axe 3\">"), "{html}");
    assert!(html.contains("Collectivité qui dépose : <strong>Cergy</strong>"));

    // A title is required.
    let csrf = t.csrf(&c, "/espace/dossiers/nouveau").await;
    let r = t
        .post_form(
            &c,
            "/espace/dossiers",
            &[("csrf", &csrf), ("mesure", MEASURE), ("titre", "  ")],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Le dossier n’a pas été créé"));

    let path = new_draft(&t, &c, "Prise de rendez-vous en ligne").await;
    assert!(path.starts_with("/espace/dossiers/"), "{path}");

    // The first step: the project's block, the verdict beside it, what is missing linked.
    let (status, html) = page(&t, &c, &path).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Étape 1 sur 10"), "{html}");
    assert!(html.contains("Le projet"));
    assert!(html.contains("Votre dossier à ce stade"));
    assert!(html.contains("À compléter"));
    assert!(
        html.contains(&format!("{path}?etape=situation#champ-besoins")),
        "lien vers le champ manquant : {html}"
    );
    assert!(!html.contains("axe3.v1"), "identifiant technique visible");

    // A bad amount: a French message, what was typed shown again, nothing saved.
    let r = save_step(
        &t,
        &c,
        &path,
        "budget",
        "pieces",
        &[("depense.prestation", "quarante mille")],
    )
    .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("L’étape n’a pas été enregistrée"), "{html}");
    assert!(html.contains("Dépense « "), "{html}");

    fill(&t, &c, &path).await;

    // The verdict now: eligible, with the indicative amount and the rate, in words.
    let (_, html) = page(&t, &c, &format!("{path}?etape=depot")).await;
    assert!(html.contains("Éligible"), "{html}");
    assert!(html.contains("Aide indicative"), "{html}");
    assert!(html.contains("Rien ne manque"), "{html}");
    assert!(html.contains("Camille Martin"), "récapitulatif : {html}");
    assert!(html.contains("Déposer le dossier"));

    // A stale page (a colleague saved meanwhile): refused, the typed text shown back.
    let csrf = crate::common::csrf_in(&html).unwrap();
    let r = t
        .post_form(
            &c,
            &path,
            &[
                ("csrf", &csrf),
                ("version", "1"),
                ("etape", "objectifs"),
                ("aller", "objectifs"),
                ("champ.objectifs", "Texte tapé dans une page périmée"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let stale = r.text().await.unwrap();
    assert!(stale.contains("modifié entre-temps"), "{stale}");
    assert!(
        stale.contains("Texte tapé dans une page périmée"),
        "{stale}"
    );

    // Autosave (the page's script): JSON with the new version and the verdict panel.
    let (_, html) = page(&t, &c, &format!("{path}?etape=objectifs")).await;
    let version = version_in(&html);
    let r = c
        .post(t.url(&path))
        .header("X-Guichet-Brouillon", "1")
        .form(&[
            ("csrf", csrf.as_str()),
            ("version", version.as_str()),
            ("etape", "objectifs"),
            ("champ.objectifs", "Moitié des démarches en ligne en un an."),
            ("champ.solution_retenue", "Un logiciel libre."),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let j: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        j["version"].as_i64().unwrap(),
        version.parse::<i64>().unwrap() + 1
    );
    assert!(j["panneau"].as_str().unwrap().contains("Aide indicative"));
    // An autosave refused says why, in JSON.
    let r = c
        .post(t.url(&path))
        .header("X-Guichet-Brouillon", "1")
        .form(&[
            ("csrf", csrf.as_str()),
            ("version", version.as_str()),
            ("etape", "objectifs"),
            ("champ.objectifs", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let j: serde_json::Value = r.json().await.unwrap();
    assert!(j["detail"]
        .as_str()
        .unwrap()
        .contains("modifié entre-temps"));

    // Another commune's agent and an instructor cannot open it.
    let other = t
        .user(
            "agent@versailles.test",
            Role::Demandeur,
            None,
            &["commune:78646"],
        )
        .await;
    let other = t.login_as(&other).await;
    assert_eq!(page(&t, &other, &path).await.0, 403);
    let instructor = t
        .user("i@pref95.test", Role::Instructeur, Some("95"), &[])
        .await;
    let instructor = t.login_as(&instructor).await;
    assert_eq!(page(&t, &instructor, &path).await.0, 403);
    assert_eq!(page(&t, &instructor, "/espace/dossiers").await.0, 403);

    // Submitting: the number, the receipt, the acknowledgement by email.
    let (_, html) = page(&t, &c, &format!("{path}?etape=depot")).await;
    let r = t
        .post_form(
            &c,
            &format!("{path}/depot"),
            &[("csrf", &csrf), ("version", &version_in(&html))],
        )
        .await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    assert_eq!(location(&r), format!("{path}/recepisse"));
    let (status, html) = page(&t, &c, &format!("{path}/recepisse")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Récépissé de dépôt"));
    assert!(html.contains("ITN7-95-2021-00001"), "{html}");
    assert!(html.contains("Cergy"));
    assert!(html.contains("Val-d"), "service instructeur : {html}");
    assert!(html.contains("Aide indicative au dépôt"));
    assert!(html.contains("data-imprimer"));
    assert!(!html.contains("axe3.v1"), "identifiant technique visible");
    t.settle().await;
    assert!(
        t.emails().iter().any(|m| m.contains("agent@cergy.test")
            && m.contains("Num=C3=A9ro du dossier : ITN7-95-2021-00001")
            || m.contains("agent@cergy.test")
                && m.contains("Numéro du dossier : ITN7-95-2021-00001")),
        "accusé de dépôt"
    );

    // Filed: read-only, listed with its number and state.
    let (_, html) = page(&t, &c, &path).await;
    assert!(html.contains("Le dossier déposé"), "{html}");
    assert!(!html.contains("data-brouillon"), "plus de formulaire");
    let (_, html) = page(&t, &c, "/espace/dossiers").await;
    assert!(html.contains("ITN7-95-2021-00001"));
    assert!(html.contains("Déposé"));
    // Submitting again is refused in French, nothing changes.
    let r = t
        .post_form(
            &c,
            &format!("{path}/depot"),
            &[("csrf", &csrf), ("version", "99")],
        )
        .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("Le dossier n’a pas été déposé"), "{html}");
    assert!(
        html.contains("Le dépôt est impossible pour un dossier à l’état « Déposé »"),
        "{html}"
    );
}

#[tokio::test]
async fn an_incomplete_draft_is_refused_with_what_it_lacks() {
    let t = spawn_app().await;
    let agent = t.applicant().await;
    let c = t.login_as(&agent).await;
    let path = new_draft(&t, &c, "Projet à peine commencé").await;
    let (_, html) = page(&t, &c, &format!("{path}?etape=depot")).await;
    let csrf = crate::common::csrf_in(&html).unwrap();
    let r = t
        .post_form(
            &c,
            &format!("{path}/depot"),
            &[("csrf", &csrf), ("version", &version_in(&html))],
        )
        .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("Le dossier n’a pas été déposé"), "{html}");
    assert!(
        html.contains("Le dossier est incomplet : il manque"),
        "{html}"
    );
    assert!(html.contains("Description du projet"), "{html}");
    // An unknown step is a clear error, not a crash.
    let (status, html) = page(&t, &c, &format!("{path}?etape=nulle-part")).await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("Étape inconnue"), "{html}");
    // Anonymous visitors are sent to the login page, then back.
    let anon = client();
    let r = t.get_with(&anon, &path).await;
    assert_eq!(r.status(), 303);
    assert!(location(&r).starts_with("/connexion"), "{}", location(&r));
}

/// The instructor's path on a filed dossier, from its page: take it, ask for a correction,
/// get it back, propose the exceptional rate (refused without a justification), accept.
#[tokio::test]
async fn an_instructor_instructs_and_decides_from_the_dossier_page() {
    let t = spawn_app().await;
    let agent = t.applicant().await;
    let c = t.login_as(&agent).await;
    let path = new_draft(&t, &c, "Prise de rendez-vous en ligne").await;
    fill(&t, &c, &path).await;
    let (_, html) = page(&t, &c, &format!("{path}?etape=depot")).await;
    let csrf = crate::common::csrf_in(&html).unwrap();
    let r = t
        .post_form(
            &c,
            &format!("{path}/depot"),
            &[("csrf", &csrf), ("version", &version_in(&html))],
        )
        .await;
    assert_eq!(r.status(), 303);
    let number = "ITN7-95-2021-00001";
    let dossier = format!("/instruction/dossiers/{number}");
    let actions = format!("{dossier}/actions");

    let i95 = t
        .user("i@pref95.test", Role::Instructeur, Some("95"), &[])
        .await;
    let i95 = t.login_as(&i95).await;
    let i78 = t
        .user("i@pref78.test", Role::Instructeur, Some("78"), &[])
        .await;
    let i78 = t.login_as(&i78).await;

    let act = |fields: Vec<(&'static str, String)>| {
        let t = &t;
        let i95 = &i95;
        let dossier = dossier.clone();
        let actions = actions.clone();
        async move {
            let (_, html) = page(t, i95, &dossier).await;
            let mut form = vec![
                ("csrf", crate::common::csrf_in(&html).unwrap()),
                ("version", version_in(&html)),
            ];
            form.extend(fields);
            i95.post(t.url(&actions)).form(&form).send().await.unwrap()
        }
    };

    // Received: the instructor may take it; the Yvelines instructor may not even see it.
    let (status, html) = page(&t, &i95, &dossier).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Prendre en instruction"), "{html}");
    assert!(!html.contains("Enregistrer la proposition"));
    let (status, _) = page(&t, &i78, &dossier).await;
    assert_eq!(status, 403);
    let csrf78 = t.csrf(&i78, "/instruction").await;
    let r = t
        .post_form(
            &i78,
            &actions,
            &[("csrf", &csrf78), ("version", "2"), ("action", "prendre")],
        )
        .await;
    assert_eq!(r.status(), 403);

    let r = act(vec![("action", "prendre".into())]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), format!("{dossier}?fait=prendre"));
    let (_, html) = page(&t, &i95, &format!("{dossier}?fait=prendre")).await;
    assert!(html.contains("Le dossier est pris en instruction."));
    assert!(html.contains("Enregistrer la proposition"), "{html}");
    assert!(html.contains("Demander la correction"));

    // A stale page: refused, nothing recorded.
    let r = i95
        .post(t.url(&actions))
        .form(&[
            ("csrf", crate::common::csrf_in(&html).unwrap()),
            ("version", "1".into()),
            ("action", "prendre".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Le dossier a changé depuis"));

    // A correction request without a message is refused; with one, the applicant reads it.
    let r = act(vec![
        ("action", "corriger".into()),
        ("type_correction", "incomplet".into()),
        ("message", " ".into()),
    ])
    .await;
    assert_eq!(r.status(), 200);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Le message de la demande de correction est obligatoire"));
    let r = act(vec![
        ("action", "corriger".into()),
        ("type_correction", "incomplet".into()),
        (
            "message",
            "Précisez le nombre d’usagers visés par quartier.".into(),
        ),
    ])
    .await;
    assert_eq!(r.status(), 303);
    let (_, list) = page(&t, &c, "/espace/dossiers").await;
    assert!(
        list.contains("Le service instructeur attend une correction"),
        "{list}"
    );
    let (_, html) = page(&t, &c, &path).await;
    assert!(
        html.contains("Le service instructeur vous demande une correction"),
        "{html}"
    );
    assert!(html.contains("Précisez le nombre d’usagers visés par quartier."));
    assert!(html.contains("data-brouillon"), "de nouveau modifiable");
    let r = save_step(
        &t,
        &c,
        &path,
        "relation_usager",
        "depot",
        &[("champ.usagers_cibles", "25000")],
    )
    .await;
    assert_eq!(r.status(), 303);
    let (_, html) = page(&t, &c, &format!("{path}?etape=depot")).await;
    assert!(html.contains("Déposer à nouveau le dossier corrigé"));
    let r = t
        .post_form(
            &c,
            &format!("{path}/depot"),
            &[("csrf", &csrf), ("version", &version_in(&html))],
        )
        .await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());

    // The exceptional rate needs a written justification.
    let r = act(vec![
        ("action", "proposer".into()),
        ("avis", "favorable".into()),
        ("montant", "32 000".into()),
        ("taux", "80".into()),
    ])
    .await;
    let status = r.status();
    let html = r.text().await.unwrap();
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Rien n’a été enregistré"), "{html}");
    assert!(html.contains("justification écrite est exigée"), "{html}");
    let r = act(vec![
        ("action", "proposer".into()),
        ("avis", "favorable".into()),
        ("montant", "32 000".into()),
        ("taux", "80".into()),
        (
            "justification",
            "Commune de plus de 15 000 habitants, projet structurant.".into(),
        ),
    ])
    .await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let (_, html) = page(&t, &i95, &dossier).await;
    assert!(html.contains("Instruit"), "{html}");
    assert!(html.contains("Accepter selon la proposition"));
    let r = act(vec![("action", "accepter".into())]).await;
    assert_eq!(r.status(), 303);
    let (_, html) = page(&t, &i95, &dossier).await;
    assert!(html.contains("Accepté"));
    assert!(html.contains("32\u{202f}000,00\u{a0}€"), "{html}");
    // Decided: an instructor has no action left (reopening is an administrator's).
    assert!(!html.contains("actions-titre"), "{html}");
    let (_, html) = page(&t, &c, "/espace/dossiers").await;
    assert!(html.contains("Accepté"), "{html}");
}

/// The API: a service's token lists its dossiers page by page with the cursor, reads one with
/// its frozen content and history; another service's token sees neither; bad parameters are
/// French problems.
#[tokio::test]
async fn a_services_token_reads_its_dossiers_through_the_api() {
    use guichet_app::api_tokens::NewToken;
    use guichet_domain::api_token::TokenScope;
    let t = spawn_app().await;
    let agent = t.applicant().await;
    let p = t
        .app
        .accounts()
        .list(&crate::common::admin())
        .await
        .unwrap()
        .into_iter()
        .find(|(u, _)| u.email == agent)
        .unwrap()
        .0;
    let p = t.app.accounts().user_view(p.id).await.unwrap().principal;
    let mut numbers = Vec::new();
    for title in ["Premier portail", "Deuxième portail", "Troisième portail"] {
        numbers.push(crate::instruction::filed_dossier(&t, &p, "95127", title).await);
    }
    let token = |service: &'static str| {
        let t = &t;
        async move {
            t.app
                .api_tokens()
                .create(
                    NewToken {
                        service_code: service,
                        scope: TokenScope::Lecture,
                        expires_on: None,
                        label: "essai",
                    },
                    guichet_app::audit::Actor::Cli,
                )
                .await
                .unwrap()
                .1
        }
    };
    // The Yvelines service exists once someone belongs to it.
    t.user("i@pref78.test", Role::Instructeur, Some("78"), &[])
        .await;
    let t95 = token("pref-95").await;
    let t78 = token("pref-78").await;
    let get = |path: String, secret: String| {
        let t = &t;
        async move {
            let r = client()
                .get(t.url(&path))
                .header("Authorization", format!("Bearer {secret}"))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, page1) = get("/api/v1/dossiers?limite=2".into(), t95.clone()).await;
    assert_eq!(status, 200, "{page1}");
    let listed: Vec<&str> = page1["dossiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["numero"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [numbers[0].as_str(), numbers[1].as_str()]);
    assert_eq!(page1["dossiers"][0]["etat"], "depose");
    assert_eq!(page1["dossiers"][0]["demandeur_nom"], "Cergy");
    let cursor = page1["suivant"].as_str().unwrap().to_string();
    let (_, page2) = get(
        format!("/api/v1/dossiers?limite=2&apres={cursor}"),
        t95.clone(),
    )
    .await;
    assert_eq!(page2["dossiers"][0]["numero"], numbers[2].as_str());
    assert!(page2["suivant"].is_null(), "{page2}");
    let (_, filtered) = get("/api/v1/dossiers?etat=accepte".into(), t95.clone()).await;
    assert_eq!(filtered["dossiers"].as_array().unwrap().len(), 0);

    let (status, one) = get(format!("/api/v1/dossiers/{}", numbers[0]), t95.clone()).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["champs"]["titre"], "Premier portail");
    assert_eq!(one["depenses"][0]["categorie"], "prestation");
    assert_eq!(one["depenses"][0]["montant_centimes"], 4_000_000);
    assert_eq!(one["verdict"]["eligible"], true);
    assert_eq!(one["historique"][0]["evenement"], "depot");

    // The Yvelines service: nothing listed, the dossier refused.
    let (_, none) = get("/api/v1/dossiers".into(), t78.clone()).await;
    assert_eq!(none["dossiers"].as_array().unwrap().len(), 0, "{none}");
    let (status, _) = get(format!("/api/v1/dossiers/{}", numbers[0]), t78.clone()).await;
    assert_eq!(status, 403);

    // Bad input: French problems.
    for (path, expected) in [
        ("/api/v1/dossiers?etat=perdu", "état inconnu"),
        ("/api/v1/dossiers?limite=500", "limite invalide"),
        ("/api/v1/dossiers?apres=-3", "curseur invalide"),
        ("/api/v1/dossiers?mesure=axe9", "mesure inconnue"),
    ] {
        let (status, problem) = get(path.into(), t95.clone()).await;
        assert_eq!(status, 400, "{path} : {problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains(expected),
            "{path} : {problem}"
        );
    }
    let (status, _) = get(
        format!("/api/v1/dossiers/{}", "ITN7-95-2021-09999"),
        t95.clone(),
    )
    .await;
    assert_eq!(status, 404);
    let (status, problem) = get("/api/v1/dossiers/pas-un-numero".into(), t95).await;
    assert_eq!(status, 404, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("introuvable"));
}

/// Attached documents: the type is read from the content, names are sanitised, the content
/// is stored once under its digest, and only those who may see the dossier download it.
#[tokio::test]
async fn documents_are_checked_stored_and_served_only_to_the_dossiers_readers() {
    let t = spawn_app().await;
    let agent = t.applicant().await;
    let c = t.login_as(&agent).await;
    let path = new_draft(&t, &c, "Prise de rendez-vous en ligne").await;
    let id: i64 = path.rsplit('/').next().unwrap().parse().unwrap();

    // Before: the quote is « à joindre ».
    let (_, html) = page(&t, &c, &format!("{path}?etape=pieces")).await;
    assert!(html.contains("à joindre"), "{html}");
    assert!(html.contains("enctype=\"multipart/form-data\""));

    // HTML named .pdf: refused for its content, whatever its name.
    let html_file = b"<html><script>alert(1)</script></html>";
    let r = upload(&t, &c, &path, "devis", "devis.pdf", html_file).await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("n’est pas d’un type accepté"), "{html}");
    // An empty file, an unknown kind.
    let r = upload(&t, &c, &path, "devis", "vide.pdf", b"").await;
    assert!(r.text().await.unwrap().contains("Le fichier est vide"));
    let pdf = crate::instruction::PDF;
    let r = upload(&t, &c, &path, "passeport", "x.pdf", pdf).await;
    assert!(r.text().await.unwrap().contains("Type de pièce inconnu"));

    // A PDF with a hostile name: kept under a safe one, served back as an attachment.
    let r = upload(&t, &c, &path, "devis", "..\\..\\<Devis> n°1.exe", pdf).await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let (_, html) = page(&t, &c, &format!("{path}?etape=pieces")).await;
    assert!(html.contains("jointe"), "{html}");
    assert!(html.contains("Devis_ n_1.pdf"), "{html}");
    let marker = format!("href=\"/dossiers/{id}/pieces/");
    let start = html.find(&marker).expect("lien de téléchargement") + 6;
    let href = html[start..start + html[start..].find('"').unwrap()].to_string();
    let r = t.get_with(&c, &href).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert!(
        disposition.contains("filename*=UTF-8''Devis_%20n_1.pdf"),
        "{disposition}"
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("sandbox"));
    assert_eq!(r.bytes().await.unwrap().as_ref(), pdf);
    // Stored once, under its SHA-256.
    let stored = walk(&t.data_dir.join("pieces"));
    assert_eq!(stored.len(), 1, "{stored:?}");
    let name = stored[0].file_name().unwrap().to_str().unwrap().to_string();
    assert_eq!(name.len(), 64, "{name}");

    // Another commune's agent: refused; a visitor: to the login page.
    let other = t
        .user(
            "agent@versailles.test",
            Role::Demandeur,
            None,
            &["commune:78646"],
        )
        .await;
    let other = t.login_as(&other).await;
    assert_eq!(t.get_with(&other, &href).await.status(), 403);
    assert_eq!(t.get_with(&client(), &href).await.status(), 303);

    // Removed: gone from the list, and a second removal is a clear error.
    let (_, html) = page(&t, &c, &format!("{path}?etape=pieces")).await;
    let csrf = crate::common::csrf_in(&html).unwrap();
    let piece = href.rsplit('/').next().unwrap().to_string();
    let remove = format!("{path}/pieces/{piece}/retirer");
    let r = t.post_form(&c, &remove, &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), 303);
    let (_, html) = page(&t, &c, &format!("{path}?etape=pieces")).await;
    assert!(
        html.contains("Aucune pièce jointe pour l’instant"),
        "{html}"
    );
    let r = t.post_form(&c, &remove, &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("introuvable"));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// From a simulation to a draft: "Déposer ce projet" carries the applicant, the cost and the
/// answers into the new draft, which starts with them.
#[tokio::test]
async fn a_simulation_becomes_a_draft_with_what_was_entered() {
    let t = spawn_app().await;
    let agent = t.applicant().await;
    let c = t.login_as(&agent).await;
    let (status, html) = page(
        &t,
        &c,
        "/simulateur?collectivite=Cergy&demandeur=commune%3A95127&cout=40+000&date_fin=2022-06-30&fait_deja_commence=non",
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(
        !html.contains("fr-tag--sm\">axe3"),
        "identifiant technique visible"
    );
    let marker = "href=\"/espace/dossiers/nouveau?mesure=axe3.v1.relation-usager&#38;";
    let start = html.find(marker).unwrap_or_else(|| {
        panic!(
            "Déposer ce projet : {}",
            &html[html.find("<main").unwrap_or(0)..]
        )
    }) + 6;
    let href = html[start..start + html[start..].find('"').unwrap()].replace("&#38;", "&");
    assert!(href.contains("demandeur=commune%3A95127"), "{href}");
    assert!(href.contains("cout=40+000"), "{href}");
    let (status, form) = page(&t, &c, &href).await;
    assert_eq!(status, 200, "{form}");
    assert!(form.contains("sera repris dans le brouillon"), "{form}");
    assert!(form.contains("<option value=\"axe3.v1.relation-usager\" selected>"));
    // Submit the form as the page has it: its hidden fields, a title.
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut rest = form.as_str();
    while let Some(i) = rest.find("<input type=\"hidden\" name=\"") {
        rest = &rest[i + 27..];
        let name = rest[..rest.find('"').unwrap()].to_string();
        let v = rest.find("value=\"").unwrap() + 7;
        let value = rest[v..v + rest[v..].find('"').unwrap()].to_string();
        fields.push((name, value.replace("&#32;", " ")));
    }
    fields.push(("mesure".into(), "axe3.v1.relation-usager".into()));
    fields.push(("titre".into(), "Projet simulé".into()));
    let r = c
        .post(t.url("/espace/dossiers"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{fields:?}");
    let path = location(&r);
    let (_, budget) = page(&t, &c, &format!("{path}?etape=budget")).await;
    assert!(
        budget.contains("value=\"40000\""),
        "le coût devient la prestation : {budget}"
    );
    let (_, calendar) = page(&t, &c, &format!("{path}?etape=calendrier")).await;
    assert!(calendar.contains("value=\"2022-06-30\""), "{calendar}");
    assert!(
        calendar.contains("value=\"non\" checked"),
        "la réponse « déjà commencé » reprise : {calendar}"
    );
}

/// The thread: Guichet's acknowledgement is its first entry; the collectivité and the service
/// write to each other, each told by email with a link; unread messages are marked; an empty
/// message is refused; a service that does not instruct the dossier cannot write.
#[tokio::test]
async fn the_collectivite_and_the_service_write_to_each_other_on_the_dossier() {
    let t = spawn_app().await;
    let agent_email = t.applicant().await;
    let c = t.login_as(&agent_email).await;
    let i95_email = t
        .user("i@pref95.test", Role::Instructeur, Some("95"), &[])
        .await;
    let i95 = t.login_as(&i95_email).await;
    let path = new_draft(&t, &c, "Prise de rendez-vous en ligne").await;
    fill(&t, &c, &path).await;
    let (_, html) = page(&t, &c, &format!("{path}?etape=depot")).await;
    let csrf = crate::common::csrf_in(&html).unwrap();
    let r = t
        .post_form(
            &c,
            &format!("{path}/depot"),
            &[("csrf", &csrf), ("version", &version_in(&html))],
        )
        .await;
    assert_eq!(r.status(), 303);
    let number = "ITN7-95-2021-00001";
    let dossier = format!("/instruction/dossiers/{number}");

    // The acknowledgement, in the thread.
    let (_, html) = page(&t, &c, &path).await;
    assert!(html.contains("id=\"messagerie\""), "{html}");
    assert!(
        html.contains(&format!("Dossier déposé : numéro {number}")),
        "{html}"
    );

    // The collectivité writes; an empty message is refused.
    let r = t
        .post_form(
            &c,
            &format!("{path}/messages"),
            &[("csrf", &csrf), ("message", "  ")],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Le message est vide"));
    let r = t
        .post_form(
            &c,
            &format!("{path}/messages"),
            &[
                ("csrf", &csrf),
                ("message", "Le devis définitif arrive lundi."),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    t.settle().await;
    let base = t.url("");
    assert!(
        t.emails().iter().any(|m| {
            let m = m
                .replace("=\r\n", "")
                .replace("=\n", "")
                .replace("=3D", "=");
            m.contains("i@pref95.test")
                && m.contains(&format!("{base}/instruction/dossiers/{number}"))
        }),
        "courriel au service"
    );

    // The service reads it, marked new once, and answers.
    let (_, html) = page(&t, &i95, &dossier).await;
    assert!(html.contains("Le devis définitif arrive lundi."), "{html}");
    assert!(html.contains("Nouveau</span>"), "{html}");
    let (_, html) = page(&t, &i95, &dossier).await;
    assert!(!html.contains("Nouveau</span>"), "lu : {html}");
    let csrf95 = crate::common::csrf_in(&html).unwrap();
    let r = t
        .post_form(
            &i95,
            &format!("{dossier}/messages"),
            &[("csrf", &csrf95), ("message", "Bien reçu, merci.")],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), format!("{dossier}?fait=message#messagerie"));
    // The collectivité's list says so before the dossier is opened.
    let (_, list) = page(&t, &c, "/espace/dossiers").await;
    assert!(list.contains("1 message non lu"), "{list}");
    let (_, html) = page(&t, &c, &path).await;
    assert!(html.contains("Bien reçu, merci."), "{html}");
    assert!(html.contains("(service instructeur)"), "{html}");

    // Another prefecture can neither read nor write.
    let i78 = t
        .user("i@pref78.test", Role::Instructeur, Some("78"), &[])
        .await;
    let i78 = t.login_as(&i78).await;
    let csrf78 = t.csrf(&i78, "/instruction").await;
    let r = t
        .post_form(
            &i78,
            &format!("{dossier}/messages"),
            &[("csrf", &csrf78), ("message", "Intrusion")],
        )
        .await;
    assert_eq!(r.status(), 403);
    let (_, html) = page(&t, &c, &path).await;
    assert!(!html.contains("Intrusion"));
}
