//! The public side: measure pages, footer pages, compression and the DSFR's caching.

use crate::common::spawn_app;

async fn page(t: &crate::common::TestApp, path: &str) -> String {
    let r = t.get(path).await;
    assert_eq!(r.status(), 200, "{path}");
    r.text().await.unwrap()
}

/// The visible text of a page: its markup without tags and attributes (URLs may hold
/// identifiers, the text may not).
fn visible(html: &str) -> String {
    let main = html
        .split_once("<main")
        .map(|(_, m)| m)
        .unwrap_or(html)
        .split_once("</main>")
        .map(|(m, _)| m)
        .unwrap_or(html);
    let mut out = String::new();
    let mut in_tag = false;
    for c in main.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[tokio::test]
async fn the_measures_are_listed_by_axis_in_plain_words_with_links() {
    let t = spawn_app().await;
    let html = page(&t, "/mesures").await;
    for expected in [
        "Axe 1 : co-construction de services numériques",
        "Axe 3 : guichets territoriaux",
        "href=\"/mesures/axe3.v1.relation-usager\"",
        "Relation à l’usager",
        // The window said from the clock (1 June 2021).
        "Ouvert jusqu’au 30/09/2022",
    ] {
        assert!(html.contains(expected), "absent : {expected}");
    }
    let text = visible(&html);
    assert!(!text.contains("axe3.v1"), "identifiant technique visible");
    assert!(!text.contains("[00"), "source numérotée visible");
    // In a territory: its windows, and its links keep it.
    let paca = page(&t, "/mesures?territoire=93").await;
    assert!(paca.contains("Non proposée : Provence-Alpes-Côte d’Azur"));
    assert!(paca.contains("Ouvert jusqu’au 15/10/2021"));
    assert!(paca.contains("href=\"/mesures/axe3.v1.formation?territoire=93\""));
}

#[tokio::test]
async fn a_measure_page_says_what_it_funds_its_terms_dates_and_sources() {
    let t = spawn_app().await;
    let html = page(&t, "/mesures/axe3.v1.relation-usager").await;
    for expected in [
        "<h1>Relation à l’usager</h1>",
        "Qui peut demander cette aide\u{a0}?",
        "Collectivités, groupements et personnes morales financées par les collectivités",
        "La préfecture du département où le projet se déroule",
        // National terms by default, the variants beside them.
        "<h3 class=\"fr-callout__title\">Règles nationales</h3>",
        "<th scope=\"col\">Île-de-France</th>",
        "<th scope=\"col\">Occitanie</th>",
        "<th scope=\"col\">Provence-Alpes-Côte d’Azur</th>",
        "Taux exceptionnel au-delà de 15 000 habitants",
        "80\u{a0}%",
        "Plafond de financement d’un projet porté par une seule commune",
        // Dates from the clock.
        "Ouverture du guichet territorial (axe 3) : 25/01/2021 (il y a 4\u{a0}mois)",
        "Prochaine échéance : <strong>Date limite d’achèvement du projet (axe 3)</strong>, le 31/12/2022",
        // Sources by title.
        "Fiche nationale « Axe 3 : guichet départemental",
        // The ways on: the simulator, and filing a dossier for this measure.
        "href=\"/simulateur\"",
        "href=\"/espace/dossiers/nouveau?mesure=axe3.v1.relation-usager\"",
        "Déposer un dossier</a>",
        // The documents of the form, by name.
        "<strong>Devis</strong> (obligatoire) : Le devis du ou des prestataires retenus.",
        "<strong>Délibération ou décision de l’exécutif</strong> (facultative)",
    ] {
        assert!(html.contains(expected), "absent : {expected}");
    }
    assert!(
        !html.contains("Annexe 1 de l’appel à projets"),
        "pièce propre à PACA sans territoire"
    );
    let text = visible(&html);
    assert!(!text.contains("axe3.v1"), "identifiant technique visible");
    assert!(!text.contains("[00"), "source numérotée visible");
}

#[tokio::test]
async fn a_collectivite_gets_its_regions_terms_and_a_simulator_for_itself() {
    let t = spawn_app().await;
    let html = page(
        &t,
        "/mesures/axe3.v1.relation-usager?collectivite=commune:95127",
    )
    .await;
    assert!(html.contains("Règles appliquées à <strong>Cergy</strong> : Île-de-France."));
    assert!(html.contains("<h3 class=\"fr-callout__title\">Île-de-France</h3>"));
    assert!(html.contains("<option value=\"11\" selected>Île-de-France</option>"));
    // Île-de-France's own end of projects.
    assert!(html.contains("le 31/10/2022"));
    assert!(html.contains(
        "href=\"/simulateur?collectivite=Cergy&#38;demandeur=commune%3A95127\">Simuler une aide pour Cergy</a>"
    ));
    // The breadcrumb keeps the territory.
    assert!(html.contains("href=\"/mesures?collectivite=commune%3A95127\""));
    // A territory chosen by its code.
    let paca = page(&t, "/mesures/axe3.v1.formation?territoire=93").await;
    assert!(paca.contains("<h3 class=\"fr-callout__title\">Provence-Alpes-Côte d’Azur</h3>"));
    assert!(paca.contains("30\u{202f}000\u{a0}€"));
    // A measure a territory does not offer says so.
    let dematads = page(&t, "/mesures/axe3.v1.dematads?territoire=93").await;
    assert!(dematads.contains("ne prend pas en compte les projets de dématérialisation"));
    assert!(dematads.contains("Mesure non proposée"));
    assert!(dematads.contains("Non proposée : Provence-Alpes-Côte d’Azur"));
    assert!(!dematads.contains("Prochaine échéance"));
    // Unknown collectivité or territory: the national rules, said plainly.
    let unknown = page(&t, "/mesures/axe3.v1.formation?collectivite=commune:00000").await;
    assert!(unknown.contains("La collectivité indiquée est introuvable"));
    assert!(unknown.contains("<h3 class=\"fr-callout__title\">Règles nationales</h3>"));
    let nowhere = page(&t, "/mesures/axe3.v1.formation?territoire=zz").await;
    assert!(nowhere.contains("<h3 class=\"fr-callout__title\">Règles nationales</h3>"));
}

#[tokio::test]
async fn an_unknown_measure_is_a_dsfr_404() {
    let t = spawn_app().await;
    let r = t.get("/mesures/axe9.inconnue").await;
    assert_eq!(r.status(), 404);
    let html = r.text().await.unwrap();
    assert!(html.contains("Erreur 404"));
    assert!(html.contains("fr-footer"));
}

#[tokio::test]
async fn the_home_page_links_the_measures_and_promises_only_what_runs() {
    let t = spawn_app().await;
    let html = page(&t, "/").await;
    assert!(html.contains("href=\"/mesures/axe2.franceconnect\""));
    assert!(html.contains("href=\"/mesures\""));
    let text = visible(&html);
    assert!(!text.contains("consulter les lauréats"), "{text}");
    assert!(!text.contains("de déposer leur dossier"), "{text}");
    assert!(!text.contains("axe3.v1"), "identifiant technique visible");
    assert!(text.contains("déposent ensuite leurs dossiers et en suivent l’instruction"));
}

#[tokio::test]
async fn a_collectivite_page_offers_its_simulation_and_its_measures() {
    let t = spawn_app().await;
    let html = page(&t, "/collectivites/commune/95127").await;
    assert!(html.contains(
        "href=\"/simulateur?collectivite=Cergy&#38;demandeur=commune%3A95127\">Simuler une aide pour Cergy</a>"
    ));
    assert!(html.contains("href=\"/mesures?collectivite=commune%3A95127\""));
    // The link leads to a simulation for Cergy.
    let sim = page(
        &t,
        "/simulateur?collectivite=Cergy&demandeur=commune%3A95127",
    )
    .await;
    assert!(sim.contains("Résultats pour Cergy"));
}

#[tokio::test]
async fn the_footer_pages_exist_and_every_page_links_them() {
    let t = spawn_app().await;
    let home = page(&t, "/").await;
    for href in [
        "/mentions-legales",
        "/donnees-personnelles",
        "/gestion-des-cookies",
        "/plan-du-site",
        "/accessibilite",
    ] {
        assert!(
            home.contains(&format!("class=\"fr-footer__bottom-link\" href=\"{href}\"")),
            "pied de page sans {href}"
        );
        let html = page(&t, href).await;
        assert!(html.contains("<h1>"), "{href}");
    }
    let cookies = page(&t, "/gestion-des-cookies").await;
    // Over plain HTTP the cookies have no __Host- prefix.
    assert!(cookies.contains("<td>guichet_session</td>"));
    assert!(cookies.contains("<td>guichet_csrf</td>"));
    assert!(cookies.contains("strictement nécessaires"));
    let donnees = page(&t, "/donnees-personnelles").await;
    for expected in [
        "journal d’audit",
        "argon2id",
        "2 heures",
        "12 heures",
        "CNIL",
    ] {
        assert!(donnees.contains(expected), "absent : {expected}");
    }
    // The site map lists real pages only: each of its links answers.
    let plan = page(&t, "/plan-du-site").await;
    let links: Vec<&str> = plan
        .split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|h| h.starts_with('/') && !h.starts_with("/dsfr/") && !h.starts_with("/static/"))
        .collect();
    assert!(links.contains(&"/mesures/axe3.v2.labo"));
    for href in links {
        let status = t.get(href).await.status();
        assert_eq!(status, 200, "{href}");
    }
}

#[tokio::test]
async fn pages_and_the_dsfr_are_compressed_and_the_dsfr_is_kept_a_year() {
    let t = spawn_app().await;
    let home = page(&t, "/").await;
    // Pages link the DSFR under its version.
    let prefix = home
        .split("href=\"/dsfr/")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap()
        .to_string();
    assert_eq!(prefix.len(), 12, "{prefix}");
    let css = format!("/dsfr/{prefix}/dsfr.min.css");
    assert!(home.contains(&format!("href=\"{css}\"")));
    for path in ["/", "/mesures", css.as_str()] {
        let r = t
            .client
            .get(t.url(path))
            .header("accept-encoding", "br")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-encoding"], "br", "{path}");
        let r = t
            .client
            .get(t.url(path))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["content-encoding"], "gzip", "{path}");
    }
    // Fonts are compressed already: sent as they are.
    let font = t
        .client
        .get(t.url(&format!("/dsfr/{prefix}/fonts/Marianne-Regular.woff2")))
        .header("accept-encoding", "br")
        .send()
        .await
        .unwrap();
    assert_eq!(font.status(), 200);
    assert!(font.headers().get("content-encoding").is_none());
    // Without Accept-Encoding, as sent.
    let plain = t.get(&css).await;
    assert!(plain.headers().get("content-encoding").is_none());
    let cache = plain.headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cache.contains("max-age=31536000") && cache.contains("immutable"),
        "{cache}"
    );
    assert!(plain.headers().contains_key("etag"));
    // The bare URL still answers, revalidated weekly; another version's prefix too.
    let bare = t.get("/dsfr/dsfr.min.css").await;
    assert_eq!(bare.status(), 200);
    let cache = bare.headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(!cache.contains("immutable"), "{cache}");
    let old = t.get("/dsfr/0123456789ab/dsfr.min.css").await;
    assert_eq!(old.status(), 200);
    assert!(!old.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert_eq!(
        t.get(&format!("/dsfr/{prefix}/../Cargo.toml"))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn the_measures_have_a_json_twin_described_by_the_openapi_document() {
    use serde_json::Value;
    let t = spawn_app().await;
    let list: Value = t.get("/api/v1/mesures").await.json().await.unwrap();
    let axes = list.as_array().unwrap();
    assert_eq!(axes[2]["id"], "axe3");
    assert_eq!(axes[2]["mesures"][2]["id"], "axe3.v1.relation-usager");
    assert_eq!(
        axes[2]["mesures"][2]["instruction"],
        "La préfecture du département où le projet se déroule"
    );
    let r = t.get("/api/v1/mesures/axe3.v1.relation-usager").await;
    assert_eq!(r.status(), 200);
    let m: Value = r.json().await.unwrap();
    assert_eq!(m["nom"], "Relation à l’usager");
    let territoires = m["territoires"].as_array().unwrap();
    assert_eq!(territoires.len(), 4);
    assert!(territoires[0]["code"].is_null());
    assert_eq!(territoires[1]["code"], "11");
    assert!(
        territoires[1]["taux_et_plafonds"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["nom"] == "taux_exceptionnel_relation_usager_idf"
                && v["valeur"] == "80\u{a0}%")
    );
    assert_eq!(territoires[1]["dates"][0]["date"], "2021-01-26");
    assert_eq!(m["sources"][1]["id"], "[001]");
    let missing = t.get("/api/v1/mesures/axe9").await;
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
    // Documented, with every property the answers carry.
    let doc: Value = t.get("/api/v1/openapi.json").await.json().await.unwrap();
    assert!(doc["paths"].get("/api/v1/mesures").is_some());
    assert!(doc["paths"].get("/api/v1/mesures/{mesure}").is_some());
    let schemas = &doc["components"]["schemas"];
    let declared = |schema: &str, value: &Value| {
        let props = schemas[schema]["properties"].as_object().unwrap();
        for key in value.as_object().unwrap().keys() {
            assert!(props.contains_key(key), "{schema}.{key} non déclaré");
        }
    };
    declared("Axe", &axes[0]);
    declared("MesureResume", &axes[0]["mesures"][0]);
    declared("Territoire", &territoires[1]);
    declared("Valeur", &territoires[1]["taux_et_plafonds"][0]);
    declared("DateMesure", &territoires[1]["dates"][0]);
    declared("Source", &m["sources"][0]);
}
