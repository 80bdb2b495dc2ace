//! The instructor's workspace over HTTP: the queue of one's services by tab and filters (a
//! view is a URL), and the dossier page. Who may open which is in the matrix table.

use crate::common::{admin, spawn_app, TestApp};
use guichet_app::dossiers::DraftData;
use guichet_domain::{Cents, CollectiviteRef, Principal, Role};

const MEASURE: &str = "axe3.v1.relation-usager";

/// A small PDF: the quote a relation-usager dossier requires.
pub const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

/// Everything the relation-usager form and the engine ask for.
fn complete(title: &str) -> DraftData {
    let mut d = DraftData::default();
    for (k, v) in [
        ("titre", title),
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

/// A relation-usager dossier of the commune `code`, filed by `agent`: its number.
pub async fn filed_dossier(t: &TestApp, agent: &Principal, code: &str, title: &str) -> String {
    let collectivite = CollectiviteRef::parse(&format!("commune:{code}")).unwrap();
    let d = t
        .app
        .dossiers()
        .create_draft(agent, MEASURE, &collectivite, title)
        .await
        .expect("brouillon");
    let v = t
        .app
        .dossiers()
        .update_draft(agent, d.row.id, d.row.version, complete(title))
        .await
        .expect("mise à jour");
    t.app
        .pieces()
        .attach(
            agent,
            d.row.id,
            guichet_app::pieces::Upload {
                kind: "devis",
                filename: "devis.pdf",
                bytes: bytes::Bytes::from_static(PDF),
            },
        )
        .await
        .expect("devis");
    t.app
        .dossiers()
        .submit(agent, d.row.id, v)
        .await
        .expect("dépôt")
        .number
        .to_string()
}

async fn principal(t: &TestApp, email: &str) -> Principal {
    let (u, _) = t
        .app
        .accounts()
        .list(&admin())
        .await
        .unwrap()
        .into_iter()
        .find(|(u, _)| u.email == email)
        .expect("compte");
    t.app.accounts().user_view(u.id).await.unwrap().principal
}

async fn body(t: &TestApp, c: &reqwest::Client, path: &str) -> (u16, String) {
    let r = t.get_with(c, path).await;
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn instruction_queue_holds_the_services_dossiers_only() {
    let t = spawn_app().await;
    let cergy = t.applicant().await;
    let cergy = principal(&t, &cergy).await;
    let versailles = t
        .user(
            "agent@versailles.test",
            Role::Demandeur,
            None,
            &["commune:78646"],
        )
        .await;
    let versailles = principal(&t, &versailles).await;
    let n95 = filed_dossier(&t, &cergy, "95127", "Portail citoyen de Cergy").await;
    let n78 = filed_dossier(&t, &versailles, "78646", "Portail de Versailles").await;
    let i95 = t
        .user(
            "instructeur@pref95.test",
            Role::Instructeur,
            Some("95"),
            &[],
        )
        .await;
    let i95 = t.login_as(&i95).await;
    let i78 = t
        .user(
            "instructeur@pref78.test",
            Role::Instructeur,
            Some("78"),
            &[],
        )
        .await;
    let i78 = t.login_as(&i78).await;

    // The Val-d'Oise instructor: Cergy's dossier in "À instruire", counted, not Versailles'.
    let (status, html) = body(&t, &i95, "/instruction").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(&n95), "{html}");
    assert!(html.contains("Portail citoyen de Cergy"));
    assert!(html.contains("Cergy"));
    assert!(!html.contains(&n78), "rien des Yvelines : {html}");
    assert!(
        html.contains("À instruire (1<span class=\"fr-sr-only\"> dossier</span>)"),
        "{html}"
    );
    assert!(html.contains("Tous (1<"), "{html}");
    assert!(html.contains("Traités (0<"), "{html}");
    assert!(html.contains("<table tabindex=\"0\">"));
    assert!(html.contains(&format!("href=\"/instruction/dossiers/{n95}\"")));
    assert!(html.contains("href=\"/instruction\""), "menu entry: {html}");

    // The Yvelines instructor sees theirs only; another tab is empty and says so.
    let (_, html) = body(&t, &i78, "/instruction?onglet=a-instruire").await;
    assert!(html.contains(&n78));
    assert!(!html.contains(&n95), "rien du Val-d’Oise : {html}");
    let (_, html) = body(&t, &i78, "/instruction?onglet=traites").await;
    assert!(html.contains("Aucun dossier dans cet onglet"), "{html}");

    // Filters are query parameters: a view is a URL, and it narrows the list.
    let (_, html) = body(&t, &i95, "/instruction?onglet=tous&departement=95").await;
    assert!(html.contains(&n95));
    let (_, html) = body(&t, &i95, "/instruction?onglet=tous&departement=78").await;
    assert!(!html.contains(&n95), "{html}");
    assert!(
        html.contains("Aucun dossier ne correspond à ces filtres"),
        "{html}"
    );
    let (_, html) = body(&t, &i95, "/instruction?onglet=tous&etat=accepte").await;
    assert!(!html.contains(&n95));
    let (_, html) = body(
        &t,
        &i95,
        &format!("/instruction?onglet=tous&etat=depose&mesure={MEASURE}"),
    )
    .await;
    assert!(html.contains(&n95));
    let (_, html) = body(&t, &i95, "/instruction?onglet=tous&mesure=axe2.api").await;
    assert!(!html.contains(&n95));
    // An unknown filter value is a 400, not a silent "everything".
    let (status, _) = body(&t, &i95, "/instruction?etat=nimporte").await;
    assert_eq!(status, 400);
    let (status, _) = body(&t, &i95, "/instruction?departement=999").await;
    assert_eq!(status, 400);

    // The Île-de-France coordinator sees both départements' dossiers.
    let c11 = t
        .user(
            "coordinateur@idf.test",
            Role::Coordinateur,
            Some("region:11"),
            &[],
        )
        .await;
    let c11 = t.login_as(&c11).await;
    let (_, html) = body(&t, &c11, "/instruction").await;
    assert!(html.contains(&n95) && html.contains(&n78), "{html}");
    assert!(html.contains("À instruire (2<"), "{html}");
}

#[tokio::test]
async fn instruction_dossier_page_shows_the_filing_and_its_history() {
    let t = spawn_app().await;
    let cergy = t.applicant().await;
    let cergy = principal(&t, &cergy).await;
    let n95 = filed_dossier(&t, &cergy, "95127", "Portail citoyen de Cergy").await;
    let i95 = t
        .user(
            "instructeur@pref95.test",
            Role::Instructeur,
            Some("95"),
            &[],
        )
        .await;
    let i95 = t.login_as(&i95).await;
    let (status, html) = body(&t, &i95, &format!("/instruction/dossiers/{n95}")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(&n95));
    assert!(html.contains("Portail citoyen de Cergy"));
    assert!(html.contains("Déposé"), "{html}");
    // The frozen fields under their labels, the budget in euros, the history's filing line
    // naming the applicant's agent.
    assert!(html.contains("Tout se fait au guichet."), "{html}");
    assert!(html.contains("01/07/2021"), "{html}");
    assert!(html.contains("40\u{202f}000,00\u{a0}€"), "{html}");
    assert!(html.contains("Historique"));
    assert!(html.contains("Le dépôt"), "{html}");
    assert!(html.contains("Personne agent@cergy.test"), "{html}");
    assert!(html.contains("<table tabindex=\"0\">"));

    // Unknown and malformed numbers are 404; outside the scope, 403.
    let (status, _) = body(&t, &i95, "/instruction/dossiers/ITN7-95-2021-09999").await;
    assert_eq!(status, 404);
    let (status, _) = body(&t, &i95, "/instruction/dossiers/pas-un-numero").await;
    assert_eq!(status, 404);
    let i78 = t
        .user(
            "instructeur@pref78.test",
            Role::Instructeur,
            Some("78"),
            &[],
        )
        .await;
    let i78 = t.login_as(&i78).await;
    let (status, _) = body(&t, &i78, &format!("/instruction/dossiers/{n95}")).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn instruction_queue_pages_by_keyset() {
    let t = spawn_app().await;
    let cergy = t.applicant().await;
    let cergy = principal(&t, &cergy).await;
    let mut numbers = Vec::new();
    for i in 0..51 {
        numbers.push(filed_dossier(&t, &cergy, "95127", &format!("Projet {i}")).await);
    }
    let i95 = t
        .user(
            "instructeur@pref95.test",
            Role::Instructeur,
            Some("95"),
            &[],
        )
        .await;
    let i95 = t.login_as(&i95).await;
    let (_, html) = body(&t, &i95, "/instruction?onglet=a-instruire").await;
    assert!(html.contains("À instruire (51<"), "{html}");
    assert!(html.contains(&numbers[49]) && !html.contains(&numbers[50]));
    assert!(!html.contains("Première page"));
    let start = html
        .find("href=\"/instruction?onglet=a-instruire&#38;apres=")
        .unwrap_or_else(|| {
            panic!(
                "page suivante : {}",
                &html[html.find("fr-pagination").unwrap_or(0)..]
            )
        })
        + 6;
    let end = start + html[start..].find('"').unwrap();
    let next = html[start..end].replace("&#38;", "&");
    let (_, html) = body(&t, &i95, &next).await;
    assert!(
        html.contains(&numbers[50]) && !html.contains(&numbers[49]),
        "{html}"
    );
    assert!(html.contains("Première page"));
    assert!(!html.contains("Page suivante"));
}

/// Following and assignment from the dossier page: the « Suivis » tab holds what one follows
/// (counted), a dossier is assigned to an instructor of its service only (the « attribués à
/// moi » filter finds it), and neither an applicant nor another prefecture can do either.
#[tokio::test]
async fn instructors_follow_and_assign_dossiers_of_their_service() {
    let t = spawn_app().await;
    let cergy = t.applicant().await;
    let cergy_p = principal(&t, &cergy).await;
    let number = filed_dossier(&t, &cergy_p, "95127", "Portail citoyen de Cergy").await;
    let dossier = format!("/instruction/dossiers/{number}");
    let a = t
        .user("a@pref95.test", Role::Instructeur, Some("95"), &[])
        .await;
    let b = t
        .user("b@pref95.test", Role::Instructeur, Some("95"), &[])
        .await;
    let other = t
        .user("c@pref78.test", Role::Instructeur, Some("78"), &[])
        .await;
    let a = t.login_as(&a).await;
    let b = t.login_as(&b).await;
    let other_p = principal(&t, "c@pref78.test").await;
    let other = t.login_as(&other).await;

    // Nothing followed yet.
    let (_, html) = body(&t, &a, "/instruction?onglet=suivis").await;
    assert!(html.contains("Suivis (0<"), "{html}");
    let csrf = t.csrf(&a, &dossier).await;
    let r = t
        .post_form(
            &a,
            &format!("{dossier}/suivre"),
            &[("csrf", &csrf), ("suivre", "oui")],
        )
        .await;
    assert_eq!(r.status(), 303);
    let (_, html) = body(&t, &a, "/instruction?onglet=suivis").await;
    assert!(html.contains("Suivis (1<"), "{html}");
    assert!(html.contains(&number), "{html}");
    // B's tab stays empty: following is personal.
    let (_, html) = body(&t, &b, "/instruction?onglet=suivis").await;
    assert!(html.contains("Suivis (0<"), "{html}");
    assert!(!html.contains(&number));
    let (_, html) = body(&t, &a, &dossier).await;
    assert!(html.contains("Ne plus suivre"), "{html}");

    // A assigns it to B; B finds it with « attribués à moi », A does not.
    let b_id = principal(&t, "b@pref95.test").await.user_id;
    let r = t
        .post_form(
            &a,
            &format!("{dossier}/attribuer"),
            &[("csrf", &csrf), ("instructeur", &b_id.to_string())],
        )
        .await;
    assert_eq!(r.status(), 303);
    let (_, html) = body(&t, &b, "/instruction?onglet=a-instruire&assigne=moi").await;
    assert!(html.contains(&number), "{html}");
    let (_, html) = body(&t, &a, "/instruction?onglet=a-instruire&assigne=moi").await;
    assert!(!html.contains(&number), "{html}");
    let (_, html) = body(&t, &a, &dossier).await;
    assert!(
        html.contains("Attribué à <strong>Personne b@pref95.test</strong>"),
        "{html}"
    );

    // Not to an instructor of another service; not by another service, nor by the applicant.
    let r = t
        .post_form(
            &a,
            &format!("{dossier}/attribuer"),
            &[
                ("csrf", &csrf),
                ("instructeur", &other_p.user_id.to_string()),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Un dossier s’attribue à un instructeur de son service"));
    let csrf78 = t.csrf(&other, "/instruction").await;
    for (path, field, value) in [
        (format!("{dossier}/suivre"), "suivre", "oui".to_string()),
        (format!("{dossier}/attribuer"), "instructeur", String::new()),
    ] {
        let r = t
            .post_form(&other, &path, &[("csrf", &csrf78), (field, &value)])
            .await;
        assert_eq!(r.status(), 403, "{path}");
    }
    let c = t.login_as(&cergy).await;
    let csrf_c = t.csrf(&c, "/espace").await;
    let r = t
        .post_form(
            &c,
            &format!("{dossier}/suivre"),
            &[("csrf", &csrf_c), ("suivre", "oui")],
        )
        .await;
    assert_eq!(r.status(), 403);
    // An unknown filter value is a clear error.
    let (status, html) = body(&t, &a, "/instruction?assigne=tout-le-monde").await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("Filtre d’attribution inconnu"), "{html}");
}

/// Private annotations: written by the service, read by those who instruct the dossier, never
/// by its collectivité (neither its page nor the API), refused to another prefecture.
#[tokio::test]
async fn annotations_stay_with_those_who_instruct() {
    let t = spawn_app().await;
    let cergy = t.applicant().await;
    let cergy_p = principal(&t, &cergy).await;
    let number = filed_dossier(&t, &cergy_p, "95127", "Portail citoyen de Cergy").await;
    let dossier = format!("/instruction/dossiers/{number}");
    let i95 = t
        .user("a@pref95.test", Role::Instructeur, Some("95"), &[])
        .await;
    let i95 = t.login_as(&i95).await;
    let coord = t
        .user("coord@idf.test", Role::Coordinateur, Some("region:11"), &[])
        .await;
    let coord = t.login_as(&coord).await;
    let i78 = t
        .user("c@pref78.test", Role::Instructeur, Some("78"), &[])
        .await;
    let i78 = t.login_as(&i78).await;
    let csrf = t.csrf(&i95, &dossier).await;
    let r = t
        .post_form(
            &i95,
            &format!("{dossier}/annotations"),
            &[("csrf", &csrf), ("annotation", "  ")],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("L’annotation est vide"));
    let secret = "Devis à comparer avec celui de la commune voisine.";
    let r = t
        .post_form(
            &i95,
            &format!("{dossier}/annotations"),
            &[("csrf", &csrf), ("annotation", secret)],
        )
        .await;
    assert_eq!(r.status(), 303);
    let (_, html) = body(&t, &i95, &dossier).await;
    assert!(html.contains(secret), "{html}");
    // The regional coordinator reads it, and may not write.
    let (_, html) = body(&t, &coord, &dossier).await;
    assert!(html.contains(secret), "{html}");
    assert!(!html.contains("Enregistrer l’annotation"), "{html}");
    // Another prefecture: refused.
    let csrf78 = t.csrf(&i78, "/instruction").await;
    let r = t
        .post_form(
            &i78,
            &format!("{dossier}/annotations"),
            &[("csrf", &csrf78), ("annotation", "x")],
        )
        .await;
    assert_eq!(r.status(), 403);
    // The collectivité sees it nowhere: its dossier page, its list, the API.
    let c = t.login_as(&cergy).await;
    let id = t
        .app
        .dossiers()
        .by_number(&admin(), &number)
        .await
        .unwrap()
        .row
        .id;
    for path in [
        format!("/espace/dossiers/{id}"),
        "/espace/dossiers".to_string(),
        format!("/api/v1/dossiers/{number}"),
    ] {
        let (status, text) = body(&t, &c, &path).await;
        assert_eq!(status, 200, "{path}");
        assert!(!text.contains(secret), "{path} : {text}");
    }
}

/// Labels: put on and taken off by the service, filtered on in the queue (a view is a URL),
/// refused when too long or by another prefecture.
#[tokio::test]
async fn labels_mark_dossiers_and_filter_the_queue() {
    let t = spawn_app().await;
    let cergy = t.applicant().await;
    let cergy_p = principal(&t, &cergy).await;
    let number = filed_dossier(&t, &cergy_p, "95127", "Portail citoyen de Cergy").await;
    let dossier = format!("/instruction/dossiers/{number}");
    let i95 = t
        .user("a@pref95.test", Role::Instructeur, Some("95"), &[])
        .await;
    let i95 = t.login_as(&i95).await;
    let csrf = t.csrf(&i95, &dossier).await;
    let r = t
        .post_form(
            &i95,
            &format!("{dossier}/etiquettes"),
            &[("csrf", &csrf), ("etiquette", "  à   relancer ")],
        )
        .await;
    assert_eq!(r.status(), 303);
    let (_, html) = body(&t, &i95, &dossier).await;
    assert!(
        html.contains("<span class=\"fr-tag\">à relancer</span>"),
        "{html}"
    );
    let (_, html) = body(
        &t,
        &i95,
        "/instruction?onglet=tous&etiquette=%C3%A0+relancer",
    )
    .await;
    assert!(html.contains(&number), "{html}");
    assert!(
        html.contains("value=\"à relancer\""),
        "le filtre reste affiché : {html}"
    );
    let (_, html) = body(&t, &i95, "/instruction?onglet=tous&etiquette=autre").await;
    assert!(!html.contains(&number), "{html}");
    let long = "x".repeat(41);
    let r = t
        .post_form(
            &i95,
            &format!("{dossier}/etiquettes"),
            &[("csrf", &csrf), ("etiquette", &long)],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("L’étiquette est trop longue"));
    let r = t
        .post_form(
            &i95,
            &format!("{dossier}/etiquettes"),
            &[
                ("csrf", &csrf),
                ("etiquette", "à relancer"),
                ("geste", "retirer"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let (_, html) = body(
        &t,
        &i95,
        "/instruction?onglet=tous&etiquette=%C3%A0+relancer",
    )
    .await;
    assert!(!html.contains(&number), "{html}");
    let i78 = t
        .user("c@pref78.test", Role::Instructeur, Some("78"), &[])
        .await;
    let i78 = t.login_as(&i78).await;
    let csrf78 = t.csrf(&i78, "/instruction").await;
    let r = t
        .post_form(
            &i78,
            &format!("{dossier}/etiquettes"),
            &[("csrf", &csrf78), ("etiquette", "intrus")],
        )
        .await;
    assert_eq!(r.status(), 403);
}
