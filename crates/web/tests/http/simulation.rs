//! The simulator's two web doors: `POST /api/v1/simulations` and the `/simulateur` page.
//! Amounts are checked against programmes/itn7 (regles.yaml, parametres.yaml, variantes.yaml).

use crate::common::{spawn_app, TestApp};
use guichet_app::simulation::{SimulationInput, SimulationOutput};
use serde_json::{json, Value};

async fn simulate(t: &TestApp, body: &Value) -> reqwest::Response {
    t.client
        .post(t.url("/api/v1/simulations"))
        .json(body)
        .send()
        .await
        .expect("POST")
}

async fn answer(t: &TestApp, body: Value) -> Value {
    let r = simulate(t, &body).await;
    assert_eq!(r.status(), 200, "{body}");
    r.json().await.expect("JSON")
}

/// Sends raw bytes and checks the French problem that comes back.
async fn refused(t: &TestApp, content_type: &str, body: Vec<u8>, status: u16, detail: &str) {
    let r = t
        .client
        .post(t.url("/api/v1/simulations"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), status, "{detail}");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let p: Value = r.json().await.expect("problème");
    assert_eq!(p["status"], status);
    let d = p["detail"].as_str().unwrap_or_default();
    assert!(d.contains(detail), "attendu « {detail} », reçu « {d} »");
}

async fn refused_json(t: &TestApp, body: Value, status: u16, detail: &str) {
    refused(
        t,
        "application/json",
        body.to_string().into_bytes(),
        status,
        detail,
    )
    .await;
}

#[tokio::test]
async fn dematads_for_the_cergy_pontoise_epci_is_the_flat_amount_for_thirty_communes() {
    let t = spawn_app().await;
    let out = answer(
        &t,
        json!({
            "mesure": "axe3.v1.dematads",
            "demandeur": "epci:249500109",
            "cout": "20000",
            "faits": {"communes_rattachees": "31"}
        }),
    )
    .await;
    assert_eq!(out["eligible"], true);
    // 4 000 € per centre + 400 € per attached commune, 30 at most: 16 000 €, under 20 000 €.
    assert_eq!(out["montant_centimes"], 1_600_000);
    assert_eq!(out["montant_max_centimes"], 1_600_000);
    assert_eq!(out["assiette_centimes"], 2_000_000);
    assert_eq!(out["variante"], "11");
    assert_eq!(out["date_depot"], "2021-06-01", "the platform's clock");
    assert_eq!(out["demandeur"]["nom"], "CA de Cergy-Pontoise");
    assert_eq!(out["depenses"][0]["categorie"], "prestation");
    assert!(out["version_programme"]
        .as_str()
        .unwrap()
        .starts_with("itn7@"));
    assert!(out["trace"].as_array().unwrap().len() > 5);
    // A number does as well as a string.
    let same = answer(
        &t,
        json!({
            "mesure": "axe3.v1.dematads",
            "demandeur": "epci:249500109",
            "cout": 20000,
            "faits": {"communes_rattachees": 31}
        }),
    )
    .await;
    assert_eq!(same, out);
}

#[tokio::test]
async fn relation_usager_for_cergy_is_half_and_up_to_eighty_percent_in_ile_de_france() {
    let t = spawn_app().await;
    let out = answer(
        &t,
        json!({
            "mesure": "axe3.v1.relation-usager",
            "demandeur": "commune:95127",
            "cout": 100000,
            "date_fin": "2022-06-30"
        }),
    )
    .await;
    assert_eq!(out["eligible"], true);
    assert_eq!(out["taux"], "0.5");
    assert_eq!(out["taux_max"], "0.8");
    assert_eq!(out["montant_centimes"], 5_000_000);
    assert_eq!(out["montant_max_centimes"], 8_000_000);
    assert_eq!(out["variante"], "11");
    assert_eq!(out["demandeur"]["population"], 65911);
    // Facts not given are presumed, and said to be.
    let presumed: Vec<&str> = out["hypotheses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["nom"].as_str().unwrap())
        .collect();
    assert!(presumed.contains(&"deja_commence"), "{presumed:?}");
}

#[tokio::test]
async fn an_expert_for_marseille_gets_the_flat_amount_and_the_paca_single_commune_cap() {
    let t = spawn_app().await;
    let out = answer(
        &t,
        json!({
            "mesure": "axe3.v1.expert",
            "demandeur": "commune:13055",
            "cout": "50 000",
            "date_fin": "2022-06-30"
        }),
    )
    .await;
    assert_eq!(out["eligible"], true);
    assert_eq!(out["variante"], "93");
    // Proposed: the lesser of 100 % × 50 000 € and the 10 000 € recommended flat amount for a
    // commune of 5 000 inhabitants or more; maximum: 50 000 € capped at PACA's 30 000 € for a
    // project carried by one commune.
    assert_eq!(out["montant_centimes"], 1_000_000);
    assert_eq!(out["montant_max_centimes"], 3_000_000);
    let text = out["trace"].to_string();
    assert!(text.contains("plafond_commune_seule"), "{text}");
}

#[tokio::test]
async fn expense_lines_and_boolean_facts_are_read_as_the_cli_reads_them() {
    let t = spawn_app().await;
    let out = answer(
        &t,
        json!({
            "mesure": "axe3.v2.labo",
            "demandeur": "commune:31555",
            "cout": "12 345,67",
            "depenses": [
                {"categorie": "prestation", "montant": "10 000"},
                {"categorie": "materiel", "montant": 2345.67}
            ],
            "date_depot": "2021-06-01",
            "date_fin": "2022-06-30",
            "faits": {"labo": true, "deja_commence": false}
        }),
    )
    .await;
    assert_eq!(out["eligible"], true, "{out}");
    assert_eq!(out["variante"], "76");
    let lines = out["depenses"].as_array().unwrap();
    let equipment = lines.iter().find(|l| l["categorie"] == "materiel").unwrap();
    assert_eq!(equipment["montant_centimes"], 234_567);
    assert_eq!(equipment["retenu_centimes"], 0);
    assert!(equipment["motif"].as_str().unwrap().contains("exclus"));
    assert_eq!(out["assiette_centimes"], 1_000_000);
    let refused = answer(
        &t,
        json!({
            "mesure": "axe3.v2.labo",
            "demandeur": "commune:31555",
            "cout": 10000,
            "date_fin": "2022-06-30",
            "faits": {"labo": false}
        }),
    )
    .await;
    assert_eq!(refused["eligible"], false);
    assert_eq!(refused["motifs"], json!(["laboratoire_requis"]));
}

#[tokio::test]
async fn the_api_answers_exactly_what_the_cli_prints() {
    let t = spawn_app().await;
    let input = SimulationInput {
        mesure: Some("axe3.v1.relation-usager".into()),
        demandeur: "commune:95127".into(),
        cout: Some("100000".into()),
        date_fin: Some("2022-06-30".into()),
        faits: vec![("portage_decisionnel".into(), "oui".into())],
        ..SimulationInput::default()
    };
    let sim = t.app.simulation().simulate(&input).await.unwrap();
    let ev = sim.outcomes[0].result.as_ref().unwrap();
    let cli = serde_json::to_value(SimulationOutput::new(&t.app.programme, &sim, ev)).unwrap();
    let api = answer(
        &t,
        json!({
            "mesure": "axe3.v1.relation-usager",
            "demandeur": "commune:95127",
            "cout": "100000",
            "date_fin": "2022-06-30",
            "faits": {"portage_decisionnel": true}
        }),
    )
    .await;
    assert_eq!(api, cli);
}

#[tokio::test]
async fn every_refusal_is_a_french_problem_with_its_status() {
    let t = spawn_app().await;
    let ok = |extra: Value| {
        let mut b =
            json!({"mesure": "axe3.v1.expert", "demandeur": "commune:95127", "cout": "1000"});
        if let (Some(b), Value::Object(extra)) = (b.as_object_mut(), extra) {
            b.extend(extra);
        }
        b
    };
    // The simulator's own checks (AppError::Invalid): 400.
    refused_json(
        &t,
        ok(json!({"mesure": "axe9.rien"})),
        400,
        "mesure inconnue",
    )
    .await;
    refused_json(&t, ok(json!({"demandeur": "ville:95127"})), 400, "type").await;
    refused_json(&t, ok(json!({"demandeur": ""})), 400, "demandeur manquant").await;
    refused_json(
        &t,
        ok(json!({"cout": "12,555"})),
        400,
        "coût du projet : montant invalide",
    )
    .await;
    refused_json(&t, ok(json!({"cout": -3})), 400, "montant invalide").await;
    refused_json(
        &t,
        ok(json!({"date_fin": "30/06/2022"})),
        400,
        "date de fin invalide",
    )
    .await;
    refused_json(
        &t,
        ok(json!({"faits": {"labo": "peut-être"}})),
        400,
        "oui ou non attendu",
    )
    .await;
    refused_json(
        &t,
        ok(json!({"faits": {"inconnu": 1}})),
        400,
        "fait inconnu",
    )
    .await;
    refused_json(
        &t,
        ok(json!({"depenses": [{"categorie": "voyage", "montant": 1}]})),
        400,
        "catégorie de dépense inconnue",
    )
    .await;
    refused_json(
        &t,
        ok(json!({"depenses": [{"categorie": "prestation", "montant": 10}]})),
        422,
        "diffère de la somme",
    )
    .await;
    // The shape of the body.
    refused_json(
        &t,
        json!({"demandeur": "commune:95127"}),
        400,
        "« mesure » est obligatoire",
    )
    .await;
    refused_json(
        &t,
        ok(json!({"montant": 3})),
        400,
        "champ inconnu : « montant »",
    )
    .await;
    refused_json(&t, ok(json!({"cout": true})), 400, "« cout »").await;
    refused_json(&t, json!(["axe1"]), 400, "objet JSON").await;
    refused(
        &t,
        "application/json",
        b"{\"mesure\": \"axe1\",".to_vec(),
        400,
        "JSON incomplet",
    )
    .await;
    refused(
        &t,
        "application/json",
        b"{mesure: axe1}".to_vec(),
        400,
        "JSON mal formé à la ligne 1",
    )
    .await;
    refused(
        &t,
        "application/json",
        vec![],
        400,
        "corps de la requête est vide",
    )
    .await;
    // An unknown collectivité: 404.
    refused_json(
        &t,
        ok(json!({"demandeur": "commune:95999"})),
        404,
        "collectivité inconnue",
    )
    .await;
    // A territorial measure for a groupement spanning two régions cannot be evaluated: 422.
    refused_json(
        &t,
        ok(json!({"demandeur": "groupement:commune:95127+commune:13055"})),
        422,
        "une seule région",
    )
    .await;
    // Not JSON: 415, before anything is read (a cross-site form cannot send JSON).
    refused(
        &t,
        "application/x-www-form-urlencoded",
        b"mesure=axe1".to_vec(),
        415,
        "application/json",
    )
    .await;
    refused(&t, "text/plain", b"{}".to_vec(), 415, "application/json").await;
    // Above the limit: 413, declared or not.
    let big = format!(
        "{{\"mesure\": \"axe1\", \"demandeur\": \"{}\"}}",
        "x".repeat(300 * 1024)
    );
    refused(
        &t,
        "application/json",
        big.clone().into_bytes(),
        413,
        "taille autorisée",
    )
    .await;
    assert_eq!(chunked_post(&t, big.as_bytes()).await, 413);
    // The route only takes POST; other state-changing API calls are still refused.
    assert_eq!(t.get("/api/v1/simulations").await.status(), 405);
    let r = t
        .client
        .post(t.url("/api/v1/collectivites"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
}

/// Posts JSON in chunks, without Content-Length, as a raw HTTP/1.1 client would; returns the
/// status code.
async fn chunked_post(t: &TestApp, body: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = t.base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connexion");
    let head = format!(
        "POST /api/v1/simulations HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let _ = s.write_all(head.as_bytes()).await;
    for chunk in body.chunks(16 * 1024) {
        let mut c = format!("{:x}\r\n", chunk.len()).into_bytes();
        c.extend_from_slice(chunk);
        c.extend_from_slice(b"\r\n");
        // The server may answer and close before the end: what matters is its answer.
        if s.write_all(&c).await.is_err() {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("réponse HTTP illisible : {text}"))
}

// ---------------------------------------------------------------------------------------------
// The OpenAPI document cannot drift from the JSON
// ---------------------------------------------------------------------------------------------

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            let target = &doc["components"]["schemas"][name];
            assert!(!target.is_null(), "référence non résolue : {r}");
            resolve(doc, target)
        }
        None => schema,
    }
}

/// Checks that every property of `value` is declared by `schema`, recursively, and that every
/// property the schema requires is present. `path` names the place for the failure message.
fn conforms(doc: &Value, schema: &Value, value: &Value, path: &str) {
    let schema = resolve(doc, schema);
    // `Option<T>` is `oneOf: [null, T]`; an untagged enum is `oneOf` too: one branch must fit.
    if let Some(branches) = schema["oneOf"].as_array().or(schema["anyOf"].as_array()) {
        if value.is_null() {
            assert!(
                branches.iter().any(|b| b["type"] == "null"),
                "{path} : null non documenté"
            );
            return;
        }
        let objects: Vec<&Value> = branches
            .iter()
            .map(|b| resolve(doc, b))
            .filter(|b| b["type"] != "null")
            .collect();
        assert!(!objects.is_empty(), "{path} : aucune branche");
        for b in objects {
            conforms(doc, b, value, path);
        }
        return;
    }
    match value {
        Value::Object(fields) => {
            let props = schema["properties"]
                .as_object()
                .unwrap_or_else(|| panic!("{path} : objet sans propriétés documentées : {schema}"));
            for (k, v) in fields {
                let sub = props
                    .get(k)
                    .unwrap_or_else(|| panic!("{path}.{k} : propriété absente du schéma OpenAPI"));
                conforms(doc, sub, v, &format!("{path}.{k}"));
            }
            for r in schema["required"].as_array().into_iter().flatten() {
                let r = r.as_str().unwrap();
                assert!(fields.contains_key(r), "{path}.{r} : requis mais absent");
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                conforms(doc, &schema["items"], v, &format!("{path}[{i}]"));
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn every_property_of_a_real_answer_is_declared_in_the_openapi_schema() {
    let t = spawn_app().await;
    let doc: Value = t.get("/api/v1/openapi.json").await.json().await.unwrap();
    let op = &doc["paths"]["/api/v1/simulations"]["post"];
    let schema = &op["responses"]["200"]["content"]["application/json"]["schema"];
    assert!(!schema.is_null(), "réponse 200 non documentée");
    // Answers that between them fill every optional part: reasons with sources, missing facts
    // with questions, assumptions, excluded expense lines with motives, parameters with dates.
    for body in [
        json!({"mesure": "axe3.v1.relation-usager", "demandeur": "commune:95127", "cout": 100000,
               "depenses": null, "date_fin": "2022-06-30"}),
        json!({"mesure": "axe3.v1.dematads", "demandeur": "commune:13055", "cout": 1000}),
        json!({"mesure": "axe3.v2.labo", "demandeur": "groupement:commune:95127+commune:78646",
               "depenses": [{"categorie": "prestation", "montant": 100}, {"categorie": "materiel", "montant": 50}]}),
        json!({"mesure": "axe2.franceconnect", "demandeur": "epci:249500109", "cout": 9000}),
        json!({"mesure": "axe1", "demandeur": "region:11", "date_depot": "2021-03-01"}),
    ] {
        let out = answer(&t, body.clone()).await;
        conforms(&doc, schema, &out, &body["mesure"].to_string());
    }
    // Optional parts really were exercised.
    let all = [
        answer(
            &t,
            json!({"mesure": "axe3.v1.dematads", "demandeur": "commune:13055", "cout": 1000}),
        )
        .await,
        answer(
            &t,
            json!({"mesure": "axe3.v2.labo", "demandeur": "commune:95127"}),
        )
        .await,
    ];
    assert!(all[0]["motifs_detail"][0]["source"].is_string());
    assert!(all[1]["donnees_manquantes"][0]["question"].is_string());
}

#[tokio::test]
async fn the_documented_request_is_the_request_the_api_accepts() {
    let t = spawn_app().await;
    let doc: Value = t.get("/api/v1/openapi.json").await.json().await.unwrap();
    let op = &doc["paths"]["/api/v1/simulations"]["post"];
    let request = resolve(
        &doc,
        &op["requestBody"]["content"]["application/json"]["schema"],
    );
    let mut documented: Vec<String> = request["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    documented.sort();
    // The parser names the fields it accepts when it meets another.
    let r = simulate(&t, &json!({"mesure": "axe1", "inconnu": 1})).await;
    let p: Value = r.json().await.unwrap();
    let detail = p["detail"].as_str().unwrap();
    let listed = detail
        .split("champs acceptés : ")
        .nth(1)
        .unwrap()
        .trim_end_matches(')');
    let mut accepted: Vec<String> = listed.split(", ").map(String::from).collect();
    accepted.sort();
    assert_eq!(accepted, documented);
    assert_eq!(request["required"], json!(["mesure", "demandeur"]));
    // The documented example works, with the documented amount.
    let example = request["example"].clone();
    assert!(example.is_object(), "exemple de requête documenté");
    let out = answer(&t, example).await;
    assert_eq!(out["montant_centimes"], 1_600_000);
    assert_eq!(
        resolve(
            &doc,
            &op["responses"]["200"]["content"]["application/json"]["schema"]
        )["properties"]["montant_centimes"]["example"],
        1_600_000
    );
    for status in ["400", "404", "413", "415", "422"] {
        assert_eq!(
            op["responses"][status]["content"]["application/problem+json"]["schema"]["$ref"],
            "#/components/schemas/Problem",
            "{status}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The page
// ---------------------------------------------------------------------------------------------

async fn page(t: &TestApp, query: &str) -> String {
    let r = t.get(&format!("/simulateur?{query}")).await;
    assert_eq!(r.status(), 200, "{query}");
    r.text().await.unwrap()
}

/// The HTML of the result block of one measure.
fn block<'a>(html: &'a str, measure: &str) -> &'a str {
    let id = format!("id=\"mesure-{}\"", measure.replace('.', "-"));
    let start = html
        .find(&id)
        .unwrap_or_else(|| panic!("pas de résultat pour {measure}"));
    let end = html[start..].find("</article>").unwrap() + start;
    &html[start..end]
}

/// A group of results: from its heading to the next group's.
fn group<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<h3 id=\"{id}\""))
        .unwrap_or_else(|| panic!("pas de groupe {id}"));
    let end = html[start + 1..]
        .find("<h3 id=")
        .map_or(html.len(), |e| e + start + 1);
    &html[start..end]
}

#[tokio::test]
async fn the_simulator_is_public_linked_everywhere_and_works_without_javascript() {
    let t = spawn_app().await;
    let html = page(&t, "").await;
    assert!(html.contains("<title>Simulateur – Guichet</title>"));
    assert!(html.contains("<h1>Simulateur</h1>"));
    assert!(html.contains("aria-current=\"page\">Simulateur"));
    assert!(html.contains(r#"<form method="get" action="/simulateur#resultats""#));
    assert!(html.contains(r#"id="collectivite" name="collectivite""#));
    assert!(html.contains("data-autocomplete"));
    assert!(html.contains(r#"src="/static/autocomplete.js""#));
    // Today by the platform's clock, one field per expense category, the applicant's questions.
    assert!(html.contains(r#"type="date" id="date_depot" name="date_depot" value="2021-06-01""#));
    assert!(html.contains(r#"name="depense_logiciel-hors-ue""#));
    assert!(html.contains("Licences logicielles d’éditeurs hors Union européenne"));
    assert!(html.contains("Combien de communes sont rattachées à votre centre instructeur"));
    assert!(html.contains(r#"name="fait_labo" value="oui""#));
    assert!(
        !html.contains("name=\"fait_population\""),
        "facts of the referential are not asked"
    );
    assert!(!html.contains("id=\"resultats\""));
    // Linked from the home page and every page's navigation.
    let home = t.get("/").await.text().await.unwrap();
    assert!(home.contains(r#"<a class="fr-btn" href="/simulateur">Simuler une aide</a>"#));
    let other = t.get("/collectivites").await.text().await.unwrap();
    assert!(other.contains(r#"href="/simulateur">Simulateur</a>"#));
}

#[tokio::test]
async fn the_results_group_every_measure_with_amounts_and_explanation() {
    let t = spawn_app().await;
    let html = page(
        &t,
        "collectivite=Cergy&demandeur=&cout=100+000&date_fin=2022-06-30",
    )
    .await;
    assert!(html.contains("<title>Résultats pour Cergy – Simulateur – Guichet</title>"));
    assert!(html.contains("Résultats pour Cergy"));
    // The name was understood, and the reference kept for the next submission.
    assert!(html.contains(r#"name="demandeur" value="commune:95127""#));
    let eligible = group(&html, "eligibles");
    let relation = block(eligible, "axe3.v1.relation-usager");
    assert!(relation.contains("50\u{202f}000\u{a0}€"), "{relation}");
    assert!(relation.contains("50\u{a0}% à 80\u{a0}%"));
    assert!(relation.contains("80\u{202f}000\u{a0}€"));
    assert!(relation.contains("Île-de-France (variante territoriale, région 11)"));
    assert!(relation.contains("itn7@"));
    assert!(relation.contains("Comprendre le résultat"));
    assert!(relation.contains("Taux de financement proposé : 50\u{a0}%"));
    assert!(relation.contains("Prestations intellectuelles"));
    // Démat.ADS needs the number of attached communes: asked by its question, linked to it.
    let to_specify = group(&html, "a-preciser");
    let dematads = block(to_specify, "axe3.v1.dematads");
    assert!(dematads.contains(r##"<a href="#fait_communes_rattachees">Combien de communes"##));
    assert!(dematads.contains("À déterminer"));
    let not_eligible = group(&html, "non-eligibles");
    assert!(block(not_eligible, "axe1").contains(
        "Les collectivités participent à la co-construction du 25/01/2021 au 31/05/2021."
    ));
    assert!(!html.contains("id=\"non-evaluables\""));
    // Every measure of the programme is somewhere.
    for m in t.app.programme.measures() {
        block(&html, m.id.as_str());
    }
}

#[tokio::test]
async fn expense_lines_and_answers_change_the_result_and_stay_in_the_form() {
    let t = spawn_app().await;
    let html = page(
        &t,
        "collectivite=Marseille&demandeur=&cout=&depense_prestation=40000&depense_materiel=10000\
         &date_depot=2021-06-01&date_fin=2022-06-30&fait_communes_rattachees=3&fait_labo=oui\
         &fait_population=12&depense_voyage=5",
    )
    .await;
    // The form offers no referential fact nor unknown category: such parameters are ignored.
    assert!(!html.contains("id=\"erreurs\""));
    assert!(html.contains("Résultats pour Marseille"));
    assert!(!html.contains("12 habitants"));
    let expert = block(group(&html, "eligibles"), "axe3.v1.expert");
    assert!(
        expert.contains("10\u{202f}000\u{a0}€"),
        "flat amount: {expert}"
    );
    assert!(
        expert.contains("30\u{202f}000\u{a0}€"),
        "PACA cap: {expert}"
    );
    assert!(expert.contains("Provence-Alpes-Côte d’Azur (variante territoriale, région 93)"));
    assert!(expert.contains("Les achats d’équipements informatiques pour les agents sont exclus."));
    // PACA's call leaves Démat.ADS out: a reason in French.
    assert!(block(group(&html, "non-eligibles"), "axe3.v1.dematads")
        .contains("ne prend pas en compte les projets de dématérialisation"));
    assert!(html.contains(r#"name="depense_materiel" value="10000""#));
    assert!(html.contains(r#"name="fait_communes_rattachees" value="3""#));
    assert!(html.contains(r#"name="fait_labo" value="oui" checked"#));
}

#[tokio::test]
async fn wrong_fields_get_french_messages_beside_them_and_nothing_typed_is_lost() {
    let t = spawn_app().await;
    let html = page(
        &t,
        "collectivite=Cergy&demandeur=&cout=abc&date_fin=2022-06-30&depense_formation=12%2C555\
         &fait_communes_rattachees=-3&fait_deja_commence=non",
    )
    .await;
    assert!(html.contains("<title>Erreur dans le formulaire – Simulateur – Guichet</title>"));
    assert!(html.contains("3 champs sont à corriger"));
    assert!(
        html.contains(r##"<a href="#cout">Coût total du projet</a> : montant invalide : « abc »"##)
    );
    assert!(html.contains(
        r#"<p class="fr-error-text" id="cout-erreur">Montant invalide : « abc » (exemple attendu : 1 234,56)</p>"#
    ));
    assert!(html.contains(r#"name="cout" value="abc""#));
    assert!(html.contains(r#"aria-invalid="true" aria-describedby="cout-aide cout-erreur""#));
    assert!(html.contains(r#"id="depense_formation-erreur">Montant invalide : « 12,555 »"#));
    assert!(html.contains(
        r#"id="fait_communes_rattachees-erreur">Un nombre entier positif est attendu, « -3 » reçu"#
    ));
    assert!(html.contains(
        r##"<a href="#fait_communes_rattachees">Communes rattachées au centre instructeur</a>"##
    ));
    // What was right stays too, and no result is drawn from a wrong form.
    assert!(html.contains(r#"name="collectivite" value="Cergy""#));
    assert!(html.contains(r#"name="date_fin" value="2022-06-30""#));
    assert!(html.contains(r#"name="fait_deja_commence" value="non" checked"#));
    assert!(!html.contains("id=\"resultats\""));
    // The cost must be the sum of the lines.
    let html = page(&t, "collectivite=Cergy&cout=100&depense_prestation=50").await;
    assert!(
        html.contains(r#"id="cout-erreur">Le coût du projet (100,00"#),
        "{html}"
    );
}

#[tokio::test]
async fn the_collectivite_is_found_by_name_code_or_reference_or_chosen_from_a_list() {
    let t = spawn_app().await;
    // Several matches and none exact: a list to choose from, the rest of the form kept.
    let html = page(&t, "collectivite=jouy&cout=5000").await;
    assert!(
        html.contains("plusieurs collectivités correspondent à « jouy »"),
        "{html}"
    );
    assert!(html.contains(r#"name="choix" value="commune:78322""#));
    assert!(html.contains(r#"name="choix" value="commune:95323""#));
    assert!(html.contains(r#"name="cout" value="5000""#));
    let html = page(&t, "collectivite=jouy&choix=commune%3A95323&cout=5000").await;
    assert!(html.contains("Résultats pour Jouy-le-Moutier"));
    // One exact name among prefixes; a code; a reference, groupements included.
    assert!(page(&t, "collectivite=pontoise")
        .await
        .contains("Résultats pour Pontoise"));
    assert!(page(&t, "collectivite=78646")
        .await
        .contains("Résultats pour Versailles"));
    assert!(page(&t, "collectivite=epci%3A249500109")
        .await
        .contains("Résultats pour CA de Cergy-Pontoise"));
    let html = page(
        &t,
        "collectivite=groupement%3Acommune%3A95127%2Bcommune%3A13055",
    )
    .await;
    assert!(html.contains("Résultats pour Groupement : Cergy, Marseille"));
    assert!(block(group(&html, "non-evaluables"), "axe3.v1.expert").contains("une seule région"));
    // The hidden reference yields to a name typed since.
    let html = page(&t, "collectivite=Versailles&demandeur=commune%3A95127").await;
    assert!(html.contains("Résultats pour Versailles"));
    // Errors, in French, beside the field.
    for (query, message) in [
        (
            "collectivite=",
            "Indiquez la collectivité qui demande l’aide",
        ),
        (
            "collectivite=zzzz",
            "Aucune collectivité ne correspond à « zzzz » dans le référentiel 2021",
        ),
        (
            "collectivite=commune%3A95999",
            "Collectivité inconnue dans le référentiel 2021 : commune:95999",
        ),
        ("collectivite=commune%3A9", "Code INSEE invalide"),
    ] {
        let html = page(&t, query).await;
        let start = html
            .find(r#"id="collectivite-erreur">"#)
            .unwrap_or_else(|| panic!("{query} : pas d’erreur"));
        assert!(
            html[start..].contains(message),
            "{query} : {}",
            &html[start..start + 200]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Absurd input: amounts above the programme's plausibility ceiling (ITN7: its own total,
// 88 M€), sums beyond 64 bits, dates outside 2000–2100.

#[tokio::test]
async fn absurd_amounts_and_dates_are_refused_by_the_api_in_french() {
    let t = spawn_app().await;
    let with = |extra: Value| {
        let mut b = json!({"mesure": "axe3.v1.relation-usager", "demandeur": "commune:95127",
                           "date_fin": "2022-06-30"});
        if let (Some(b), Value::Object(extra)) = (b.as_object_mut(), extra) {
            b.extend(extra);
        }
        b
    };
    // The case found under attack: two lines of 92 233 720 368 547 758 € (their sum does not
    // fit in 64 bits), answered with a null base and a saturated amount.
    let huge = "92233720368547758";
    refused_json(
        &t,
        with(
            json!({"depenses": [{"categorie": "prestation", "montant": huge},
                                  {"categorie": "formation", "montant": huge}]}),
        ),
        400,
        "montant invraisemblable",
    )
    .await;
    refused_json(
        &t,
        with(
            json!({"depenses": [{"categorie": "prestation", "montant": 50_000_000},
                                  {"categorie": "formation", "montant": 50_000_000}]}),
        ),
        422,
        "somme des lignes de dépenses : montant invraisemblable",
    )
    .await;
    refused_json(
        &t,
        with(json!({"cout": "88000000.01"})),
        400,
        "coût du projet : montant invraisemblable, 88\u{202f}000\u{202f}000,01\u{a0}€ (au plus 88\u{202f}000\u{202f}000,00\u{a0}€",
    )
    .await;
    refused_json(
        &t,
        with(json!({"cout": "99999999999999999999999"})),
        400,
        "coût du projet : montant invraisemblable",
    )
    .await;
    refused_json(
        &t,
        with(json!({"date_depot": "0000-01-01"})),
        400,
        "date de dépôt invraisemblable : 0000-01-01 (le programme attend une date du 01/01/2000 au 31/12/2100)",
    )
    .await;
    refused_json(
        &t,
        with(json!({"date_fin": "9999-12-31"})),
        400,
        "date de fin invraisemblable",
    )
    .await;
    // An empty date is not a date (the schema says `format: date`).
    refused_json(
        &t,
        with(json!({"date_fin": ""})),
        400,
        "date de fin invalide",
    )
    .await;
    refused_json(
        &t,
        with(json!({"date_depot": " "})),
        400,
        "date de dépôt invalide",
    )
    .await;
    // At the ceiling and at the bounds: answered, and the answer and its trace agree.
    let out = answer(
        &t,
        with(json!({"cout": "88000000", "date_depot": "2021-06-01"})),
    )
    .await;
    assert_eq!(out["assiette_centimes"], 8_800_000_000i64);
    let trace = out["trace"].as_array().expect("trace");
    let base = trace
        .iter()
        .find(|s| s["nom"] == "assiette")
        .unwrap_or_else(|| panic!("no base in the trace: {trace:?}"));
    assert_eq!(base["valeur_brute"], out["assiette_centimes"], "{base}");
    // The trace's amounts are the answer's, in cents (they were divided by 100 when the
    // engine computed them with two decimals).
    for (step, field) in [
        ("axe3.v1.relation-usager : montant", "montant_centimes"),
        (
            "axe3.v1.relation-usager : montant max",
            "montant_max_centimes",
        ),
    ] {
        let s = trace
            .iter()
            .find(|s| s["nom"] == step)
            .unwrap_or_else(|| panic!("no {step} in the trace: {trace:?}"));
        assert_eq!(s["valeur_brute"], out[field], "{s}");
    }
    assert_eq!(out["montant_centimes"], 4_400_000_000i64);
    assert_eq!(out["montant_max_centimes"], 7_040_000_000i64);
}

#[tokio::test]
async fn absurd_amounts_and_dates_get_a_message_beside_their_field_on_the_page() {
    let t = spawn_app().await;
    let html = page(
        &t,
        "collectivite=Cergy&cout=&depense_prestation=92233720368547758\
         &depense_formation=92233720368547758&date_depot=0000-01-01&date_fin=9999-12-31",
    )
    .await;
    assert!(
        !html.contains("id=\"resultats\""),
        "no result from absurd input"
    );
    assert!(
        html.contains(r#"id="depense_prestation-erreur">Montant invraisemblable"#),
        "{html}"
    );
    assert!(html.contains(r#"id="depense_formation-erreur">Montant invraisemblable"#));
    assert!(html.contains(r#"id="date_depot-erreur">Date de dépôt invraisemblable : 0000-01-01"#));
    assert!(html.contains(r#"id="date_fin-erreur">Date de fin invraisemblable : 9999-12-31"#));
    // Lines plausible alone but not together: said beside the cost, which ties them.
    let html = page(
        &t,
        "collectivite=Cergy&depense_prestation=50000000&depense_formation=50000000",
    )
    .await;
    assert!(
        html.contains(r#"id="cout-erreur">Somme des lignes de dépenses : montant invraisemblable"#),
        "{html}"
    );
    assert!(!html.contains("id=\"resultats\""));
}

// ---------------------------------------------------------------------------------------------
// The document says exactly what the simulator accepts (schemathesis's "valid data accepted"
// and "invalid data refused"): bounds taken from the running programme's `plausibilite`.

async fn request_schema(t: &TestApp) -> (Value, Value) {
    let doc: Value = t.get("/api/v1/openapi.json").await.json().await.unwrap();
    let op = &doc["paths"]["/api/v1/simulations"]["post"];
    let request = resolve(
        &doc,
        &op["requestBody"]["content"]["application/json"]["schema"],
    )
    .clone();
    (doc, request)
}

fn pattern(schema: &Value) -> regex::Regex {
    regex::Regex::new(schema["pattern"].as_str().expect("pattern")).expect("regex")
}

fn relation_usager(extra: Value) -> Value {
    let mut b = json!({"mesure": "axe3.v1.relation-usager", "demandeur": "commune:95127",
                       "date_depot": "2021-06-01", "date_fin": "2022-06-30"});
    if let (Some(b), Value::Object(extra)) = (b.as_object_mut(), extra) {
        b.extend(extra);
    }
    b
}

#[tokio::test]
async fn the_documented_amount_is_bounded_by_the_programme_ceiling_which_the_api_accepts() {
    let t = spawn_app().await;
    let (doc, request) = request_schema(&t).await;
    let amount = &doc["components"]["schemas"]["MontantEuros"];
    let ceiling = t.app.programme.plausibility.max_amount.get();
    assert_eq!(ceiling, 8_800_000_000, "ITN7: 88 M€");
    assert_eq!(amount["maximum"], json!(ceiling / 100));
    assert_eq!(amount["minimum"], 0);
    assert_eq!(amount["multipleOf"], 0.01);
    assert_eq!(amount["type"], json!(["string", "number"]));
    let text = pattern(amount);
    for (s, ok) in [
        ("88 000 000,00 €", true),
        ("88000000.0", true),
        ("12 345,67", true),
        ("87999999,99", true),
        ("88 000 000,01", false),
        ("88000001", false),
        ("12,345", false),
        ("-1", false),
        ("", false),
    ] {
        assert_eq!(text.is_match(s), ok, "« {s} »");
    }
    // At the bound, as a number and as French text: accepted, on a line and as the cost.
    for at in [json!(88_000_000), json!("88 000 000,00 €")] {
        answer(&t, relation_usager(json!({"cout": at.clone()}))).await;
        answer(
            &t,
            relation_usager(json!({"depenses": [{"categorie": "prestation", "montant": at}]})),
        )
        .await;
    }
    // The bottom bound, -0.0 included (JSON Schema reads it as 0).
    for zero in [json!(0), json!(-0.0), json!("0,00")] {
        answer(&t, relation_usager(json!({"cout": zero}))).await;
    }
    // A cent above: refused in French, as the document says.
    for above in [json!(88_000_000.01), json!("88 000 000,01")] {
        refused_json(
            &t,
            relation_usager(json!({"cout": above})),
            400,
            "coût du projet : montant invraisemblable",
        )
        .await;
    }
    // A blank cost is documented as no cost, which it is.
    let cout = &request["properties"]["cout"];
    assert!(cout["anyOf"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["pattern"]
            .as_str()
            .is_some_and(|p| regex::Regex::new(p).unwrap().is_match(" "))));
    answer(&t, relation_usager(json!({"cout": " "}))).await;
}

#[tokio::test]
async fn what_json_schema_cannot_say_is_answered_422_not_400() {
    let t = spawn_app().await;
    // Each line valid, at the ceiling; their sum is not.
    refused_json(
        &t,
        relation_usager(json!({"depenses": [
            {"categorie": "prestation", "montant": 88_000_000},
            {"categorie": "formation", "montant": 0.01}
        ]})),
        422,
        "somme des lignes de dépenses : montant invraisemblable",
    )
    .await;
    refused_json(
        &t,
        relation_usager(
            json!({"cout": 2, "depenses": [{"categorie": "prestation", "montant": 1}]}),
        ),
        422,
        "le coût du projet (2,00\u{a0}€) diffère de la somme des lignes de dépenses",
    )
    .await;
    let (doc, _) = request_schema(&t).await;
    let d = doc["paths"]["/api/v1/simulations"]["post"]["responses"]["422"]["description"]
        .as_str()
        .unwrap();
    assert!(d.contains("somme des lignes"), "{d}");
}

#[tokio::test]
async fn documented_dates_are_the_programme_bounds_in_the_iso_form_only() {
    let t = spawn_app().await;
    let (_, request) = request_schema(&t).await;
    let bounds = &t.app.programme.plausibility;
    assert_eq!(bounds.first_date.to_string(), "2000-01-01");
    assert_eq!(bounds.last_date.to_string(), "2100-12-31");
    for field in ["date_depot", "date_fin"] {
        let d = &request["properties"][field];
        assert_eq!(d["format"], "date");
        assert!(d["description"]
            .as_str()
            .unwrap()
            .contains("du 2000-01-01 au 2100-12-31"));
        let p = pattern(d);
        for (s, ok) in [
            ("2000-01-01", true),
            ("2100-12-31", true),
            ("2096-02-29", true),
            ("1999-12-31", false),
            ("2101-01-01", false),
            ("2100-02-29", false),
            ("2021-04-31", false),
            ("2021-6-1", false),
        ] {
            assert_eq!(p.is_match(s), ok, "{field} « {s} »");
        }
    }
    // The bounds are accepted; chrono's looser spellings are not (the pattern would not match).
    answer(
        &t,
        relation_usager(json!({"date_depot": "2000-01-01", "date_fin": "2100-12-31"})),
    )
    .await;
    for (field, label) in [("date_depot", "date de dépôt"), ("date_fin", "date de fin")] {
        for loose in ["2021-6-1", "+2021-06-01", "21-06-01"] {
            refused_json(
                &t,
                relation_usager(json!({field: loose})),
                400,
                &format!("{label} invalide : « {loose} »"),
            )
            .await;
        }
    }
    refused_json(
        &t,
        relation_usager(json!({"faits": {"date_fin": "2022-6-30"}})),
        400,
        "fait « date_fin » : date invalide",
    )
    .await;
}

#[tokio::test]
async fn facts_are_typed_by_their_declaration_and_counts_bounded_by_the_programme() {
    let t = spawn_app().await;
    let (_, request) = request_schema(&t).await;
    let faits = &request["properties"]["faits"];
    assert_eq!(faits["additionalProperties"], false);
    assert_eq!(request["additionalProperties"], false);
    let facts = faits["properties"].as_object().unwrap();
    assert!(!facts.contains_key("date_depot"), "its own field");
    let declared: Vec<&str> = t
        .app
        .programme
        .rules
        .facts
        .iter()
        .map(|f| f.name.as_str())
        .filter(|n| *n != "date_depot")
        .collect();
    let mut documented: Vec<&str> = facts.keys().map(String::as_str).collect();
    let mut declared_sorted = declared.clone();
    documented.sort();
    declared_sorted.sort();
    assert_eq!(documented, declared_sorted);
    // A boolean: true, false, oui, non.
    let boolean = &facts["deja_commence"];
    assert_eq!(boolean["type"], json!(["boolean", "string", "null"]));
    let p = pattern(boolean);
    assert!(p.is_match("oui") && p.is_match(" non ") && !p.is_match("peut-être"));
    // A text with declared values: those values.
    let p = pattern(&facts["nature_epci"]);
    assert!(p.is_match("CA") && p.is_match("MET69") && !p.is_match("CAA"));
    // A count: a whole number up to the programme's `nombre_max`.
    let max = t.app.programme.plausibility.max_count;
    assert_eq!(max, 1_000_000_000);
    let count = &facts["communes_rattachees"];
    assert_eq!(count["maximum"], json!(max));
    assert_eq!(count["minimum"], 0);
    let p = pattern(count);
    assert!(p.is_match("1000000000") && p.is_match("1 000") && !p.is_match("1000000001"));
    let dematads = |n: Value| {
        json!({"mesure": "axe3.v1.dematads", "demandeur": "epci:249500109", "cout": 20000,
               "date_depot": "2021-06-01", "faits": {"communes_rattachees": n}})
    };
    for at in [json!(max), json!(max.to_string())] {
        answer(&t, dematads(at)).await;
    }
    for above in [json!(max + 1), json!((max + 1).to_string())] {
        refused_json(
            &t,
            dematads(above),
            400,
            "fait « communes_rattachees » : nombre invraisemblable, « 1000000001 » (au plus 1\u{202f}000\u{202f}000\u{202f}000",
        )
        .await;
    }
}

#[tokio::test]
async fn a_siren_with_a_wrong_check_digit_is_an_unknown_collectivite() {
    let t = spawn_app().await;
    let (_, request) = request_schema(&t).await;
    let p = request["properties"]["demandeur"]["pattern"]
        .as_str()
        .unwrap();
    assert!(p.contains("epci:[0-9]{9}"), "{p}");
    // Nine digits the document accepts; no EPCI has them: 404, not 400.
    refused_json(
        &t,
        json!({"mesure": "axe3.v1.expert", "demandeur": "epci:123456789"}),
        404,
        "collectivité inconnue dans le référentiel 2021 : numéro SIREN invalide",
    )
    .await;
    refused_json(
        &t,
        json!({"mesure": "axe3.v1.expert", "demandeur": "groupement:commune:95127+epci:123456789"}),
        404,
        "collectivité inconnue",
    )
    .await;
    // Still malformed: eight digits, a member given twice, a groupement of one.
    for (demandeur, detail) in [
        ("epci:12345678", "numéro SIREN invalide"),
        ("groupement:commune:95127+commune:95127", "en double"),
        ("groupement:epci:249500109", "au moins deux membres"),
        ("groupement:epci:123456789", "numéro SIREN invalide"),
    ] {
        refused_json(
            &t,
            json!({"mesure": "axe3.v1.expert", "demandeur": demandeur}),
            400,
            detail,
        )
        .await;
    }
}
