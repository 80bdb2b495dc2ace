//! Public pages, error pages, assets and demo data.

use crate::common::{admin, spawn_app};

#[tokio::test]
async fn the_home_page_presents_the_programme_in_french_with_the_dsfr() {
    let t = spawn_app().await;
    let r = t.get("/").await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    for expected in [
        "<html lang=\"fr\"",
        "République<br>Française",
        "Transformation numérique des collectivités territoriales",
        "axe3.v1.dematads",
        "Axe 2 : appels à projets nationaux",
        "href=\"#contenu\"",
        "/dsfr.min.css",
        "Horloge simulée : nous sommes le 1 juin 2021 à 09:",
    ] {
        assert!(html.contains(expected), "absent : {expected}");
    }
    assert!(!html.contains("<script>"), "aucun script en ligne");
    assert!(!html.contains("style=\""), "aucun style en ligne");
}

#[tokio::test]
async fn pages_carry_security_headers() {
    let t = spawn_app().await;
    let r = t.get("/").await;
    let h = r.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "strict-origin-when-cross-origin");
    assert!(
        h.get("strict-transport-security").is_none(),
        "pas de HSTS sans TLS"
    );
}

#[tokio::test]
async fn an_unknown_page_gets_the_dsfr_404_in_french() {
    let t = spawn_app().await;
    let r = t.get("/nulle-part").await;
    assert_eq!(r.status(), 404);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Page non trouvée") && html.contains("fr-header"),
        "{html}"
    );
    let r = t.get("/collectivites/commune/00000").await;
    assert_eq!(r.status(), 404);
    let r = t.get("/espace/services/pas-un-nombre").await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn the_public_page_of_a_commune_shows_both_vintages() {
    let t = spawn_app().await;
    let html = t
        .get("/collectivites/commune/95127")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("<h1>Cergy</h1>"));
    assert!(html.contains("65\u{202f}911"), "population 2021");
    assert!(html.contains("70\u{202f}906"), "population 2026");
    assert!(
        html.contains("Val-d&#x27;Oise") || html.contains("Val-d&#39;Oise"),
        "département"
    );
    assert!(html.contains("CA de Cergy-Pontoise"), "EPCI");
    assert!(html.contains("Île-de-France"), "région");
    let epci = t
        .get("/collectivites/epci/249500109")
        .await
        .text()
        .await
        .unwrap();
    assert!(epci.contains("Communes membres (13)"), "{epci}");
    let bad = t.get("/collectivites/commune/95127?millesime=1999").await;
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("Millésime inconnu"));
}

#[tokio::test]
async fn the_search_page_works_without_javascript() {
    let t = spawn_app().await;
    let html = t.get("/collectivites?q=CERGY").await.text().await.unwrap();
    let cergy = html.find(">Cergy</a>").expect("Cergy trouvée");
    let ca = html
        .find(">CA de Cergy-Pontoise</a>")
        .expect("l’agglomération aussi");
    assert!(cergy < ca, "la commune d’abord");
    let none = t.get("/collectivites?q=zzzzzz").await.text().await.unwrap();
    assert!(none.contains("Aucune collectivité ne correspond"));
}

#[tokio::test]
async fn dsfr_assets_are_served_with_cache_validation() {
    let t = spawn_app().await;
    let r = t.get("/dsfr/dsfr.min.css").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/css");
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age="));
    let again = t
        .client
        .get(t.url("/dsfr/dsfr.min.css"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(t.get("/static/autocomplete.js").await.status(), 200);
    assert_eq!(t.get("/dsfr/../Cargo.toml").await.status(), 404);
}

#[tokio::test]
async fn mon_espace_sends_anonymous_visitors_to_login_and_back() {
    let t = spawn_app().await;
    let r = t.get("/espace/services").await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "/connexion?suite=%2Fespace%2Fservices"
    );
}

#[tokio::test]
async fn the_demo_data_loads_once_and_its_accounts_log_in() {
    let t = spawn_app().await;
    let created = t.app.demo().load().await.unwrap();
    assert_eq!(created, guichet_app::demo::DEMO_ACCOUNTS.len());
    assert_eq!(t.app.demo().load().await.unwrap(), 0, "idempotent");
    let services = t.app.accounts().visible_services(&admin()).await.unwrap();
    assert_eq!(services.len(), guichet_app::demo::DEMO_SERVICES.len());
    let c = crate::common::client();
    let r = t
        .login_with(
            &c,
            "instruction.95@demo.guichet.test",
            guichet_app::demo::DEMO_PASSWORD,
        )
        .await;
    assert_eq!(r.status(), 303);
    let html = t.get_with(&c, "/espace").await.text().await.unwrap();
    assert!(html.contains("Dominique Exemple"));
}

#[tokio::test]
async fn an_internal_error_shows_a_reference_and_no_internals() {
    let t = spawn_app().await;
    let email = t.applicant().await;
    let logged_in = t.login_as(&email).await;
    t.app.close().await;
    // Even the session cannot be read: still a French page with the DSFR frame.
    let r = t.get_with(&logged_in, "/espace").await;
    assert_eq!(r.status(), 500);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("fr-header") && html.contains("Une erreur est survenue (réf. "),
        "{html}"
    );
    let r = t.get("/collectivites/commune/95127").await;
    assert_eq!(r.status(), 500);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Erreur inattendue") && html.contains("Une erreur est survenue (réf. "),
        "{html}"
    );
    for leak in ["sqlx", "pool", "PoolClosed", "database"] {
        assert!(!html.contains(leak), "fuite : {leak}");
    }
    let r = t.get("/api/v1/collectivites/commune/95127").await;
    assert_eq!(r.status(), 500);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .starts_with("une erreur est survenue (réf. "));
}

#[tokio::test]
async fn a_prefecture_space_summarises_its_territory() {
    let t = spawn_app().await;
    // Counted from the fixture package itself, not through the code under test.
    let communes: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(
            crate::common::fixtures_npm_dir()
                .join("decoupage-administratif-2021/data/communes.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let in_95 = communes
        .iter()
        .filter(|c| c["type"] == "commune-actuelle" && c["departement"] == "95")
        .count();
    let instr = t
        .user(
            "i95@exemple.fr",
            guichet_domain::Role::Instructeur,
            Some("95"),
            &[],
        )
        .await;
    let c = t.login_as(&instr).await;
    let html = t.get_with(&c, "/espace").await.text().await.unwrap();
    assert!(html.contains("Votre territoire"), "{html}");
    assert!(
        html.contains(&format!("</a></td><td>{in_95}</td>")),
        "{in_95} communes du Val-d'Oise"
    );
    assert!(!html.contains("Yvelines (78)"));
    let coord = t
        .user(
            "c11@exemple.fr",
            guichet_domain::Role::Coordinateur,
            Some("region:11"),
            &[],
        )
        .await;
    let c = t.login_as(&coord).await;
    let html = t.get_with(&c, "/espace").await.text().await.unwrap();
    for d in ["Yvelines (78)", "(95)", "Paris (75)"] {
        assert!(html.contains(d), "{d}");
    }
    assert!(!html.contains("Bouches-du-Rhône"));
}
