//! JSON API: search, details, problems, OpenAPI, probes.

use crate::common::spawn_app;
use guichet_domain::Role;
use serde_json::Value;

#[tokio::test]
async fn the_search_finds_cergy_first_by_name_code_siren_or_postcode() {
    let t = spawn_app().await;
    for q in ["cergy", "CERGY", "95127", "219501277", "95000"] {
        let r = t.get(&format!("/api/v1/collectivites?q={q}")).await;
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["millesime"], 2021);
        assert_eq!(body["resultats"][0]["nom"], "Cergy", "recherche {q}");
        assert_eq!(body["resultats"][0]["population"], 65911);
    }
    let body: Value = t
        .get("/api/v1/collectivites?q=cergy&millesime=2026")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["resultats"][0]["population"], 70906);
    let body: Value = t
        .get("/api/v1/collectivites?q=cergy&type=epci")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["resultats"][0]["code"], "249500109");
    let body: Value = t
        .get("/api/v1/collectivites?q=saint%20ouen%20l%20aumone")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["resultats"][0]["nom"], "Saint-Ouen-l'Aumône");
}

async fn problem(t: &crate::common::TestApp, path: &str, status: u16, detail: &str) {
    let r = t.get(path).await;
    assert_eq!(r.status(), status, "{path}");
    assert_eq!(
        r.headers()["content-type"],
        "application/problem+json",
        "{path}"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], status);
    let d = body["detail"].as_str().unwrap();
    assert!(d.contains(detail), "{path}: {d}");
    assert!(body["type"]
        .as_str()
        .unwrap()
        .starts_with("urn:guichet:probleme:"));
}

#[tokio::test]
async fn bad_input_gets_a_json_problem_in_french() {
    let t = spawn_app().await;
    problem(
        &t,
        "/api/v1/collectivites?q=cergy&millesime=2022",
        400,
        "millésime inconnu",
    )
    .await;
    problem(
        &t,
        "/api/v1/collectivites?q=cergy&limite=500",
        400,
        "limite invalide",
    )
    .await;
    problem(
        &t,
        "/api/v1/collectivites?q=cergy&type=ville",
        400,
        "type de collectivité inconnu",
    )
    .await;
    // Only the spellings the document's patterns give: what a parser would also have read
    // (a sign, a leading zero, spaces, capitals) is refused, as the document says.
    for (query, detail) in [
        ("limite=%2B5", "limite invalide : « +5 »"),
        ("limite=05", "limite invalide : « 05 »"),
        ("millesime=%2B2021", "millésime inconnu : « +2021 »"),
        ("millesime=%202021", "millésime inconnu : «  2021 »"),
        ("millesime=02021", "millésime inconnu : « 02021 »"),
        ("type=Commune", "type de collectivité inconnu"),
        ("type=d%C3%A9partement", "type de collectivité inconnu"),
    ] {
        problem(
            &t,
            &format!("/api/v1/collectivites?q=cergy&{query}"),
            400,
            detail,
        )
        .await;
    }
    problem(
        &t,
        "/api/v1/collectivites/commune/95127?millesime=%2B2021",
        400,
        "millésime inconnu",
    )
    .await;
    let doc: serde_json::Value = t.get("/api/v1/openapi.json").await.json().await.unwrap();
    let params = doc["paths"]["/api/v1/collectivites"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let pattern = |name: &str| {
        params.iter().find(|p| p["name"] == name).unwrap()["schema"]["pattern"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(pattern("limite"), "^(|[1-9]|[1-4][0-9]|50)$");
    assert_eq!(pattern("millesime"), "^(|2021|2026)$");
    assert_eq!(pattern("type"), "^(|commune|epci|departement|region)$");
    // The same five answers through the documented spellings.
    for query in [
        "limite=5",
        "limite=50",
        "millesime=2021",
        "millesime=2026",
        "type=departement",
    ] {
        let r = t
            .get(&format!("/api/v1/collectivites?q=cergy&{query}"))
            .await;
        assert_eq!(r.status(), 200, "{query}");
    }
    problem(
        &t,
        "/api/v1/collectivites/commune/99999",
        404,
        "aucune collectivité",
    )
    .await;
    problem(
        &t,
        "/api/v1/collectivites/commune/abc",
        404,
        "code INSEE invalide",
    )
    .await;
    problem(&t, "/api/v1/nulle-part", 404, "aucune ressource").await;
    problem(&t, "/api/v1/moi", 401, "authentification requise").await;
    problem(&t, "/api/v1/services/abc", 400, "chemin invalide").await;
    let r = t
        .client
        .post(t.url("/api/v1/collectivites"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn the_details_of_an_epci_sum_its_communes() {
    let t = spawn_app().await;
    let body: Value = t
        .get("/api/v1/collectivites/epci/249500109")
        .await
        .json()
        .await
        .unwrap();
    let members = body["membres"].as_array().unwrap();
    let sum: i64 = members
        .iter()
        .map(|m| m["population"].as_i64().unwrap())
        .sum();
    assert_eq!(body["populations"][0]["millesime"], 2021);
    assert_eq!(body["populations"][0]["population"], sum);
    assert_eq!(body["departement"]["code"], "95");
}

#[tokio::test]
async fn the_openapi_document_describes_the_api() {
    let t = spawn_app().await;
    let doc: Value = t.get("/api/v1/openapi.json").await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/api/v1/collectivites",
        "/api/v1/collectivites/{type}/{code}",
        "/api/v1/moi",
        "/api/v1/services/{id}",
        "/api/v1/simulations",
        "/readyz",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path}");
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "Problem",
        "MembreService",
        "CommuneMembre",
        "CollectiviteRepresentee",
    ] {
        assert!(schemas.contains_key(name), "{name}");
    }
    // Every reference resolves, and every response says what it is.
    let text = doc.to_string();
    for part in text.split("\"#/components/schemas/").skip(1) {
        let name = &part[..part.find('"').unwrap()];
        assert!(schemas.contains_key(name), "référence non résolue : {name}");
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                let description = response["description"].as_str().unwrap_or_default();
                assert!(
                    !description.is_empty(),
                    "{method} {path} {status} sans description"
                );
            }
        }
    }
}

#[tokio::test]
async fn health_probes_answer() {
    let t = spawn_app().await;
    assert_eq!(t.get("/healthz").await.status(), 200);
    assert_eq!(t.get("/readyz").await.status(), 200);
    t.app.close().await;
    let r = t.get("/readyz").await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn moi_describes_the_logged_in_account() {
    let t = spawn_app().await;
    let email = t
        .user(
            "instruction@val-doise.test",
            Role::Instructeur,
            Some("95"),
            &[],
        )
        .await;
    let c = t.login_as(&email).await;
    let me: Value = t.get_with(&c, "/api/v1/moi").await.json().await.unwrap();
    assert_eq!(me["role"], "instructeur");
    assert_eq!(me["service"]["code"], "pref-95");
    assert_eq!(me["service"]["nom"], "Préfecture du Val-d'Oise");
}
