//! `POST /api/v1/simulations`: what a collectivité may get from one measure, with the
//! explanation. Public and stateless: it reads the programme and the referential, writes nothing
//! and reads no cookie, which is why `csrf_guard` lets it through (JSON only).
//!
//! The body is read as plain JSON and mapped field by field onto the simulator's raw
//! [`SimulationInput`], so that every refusal is explained in French (serde's own messages are
//! English). The answer is the [`SimulationOutput`] the CLI's `--json` prints.
//!
//! The app crate does not depend on utoipa: the types below named in French mirror the JSON for
//! the OpenAPI document only, and their doc comments are the published documentation, hence in
//! French. HTTP tests (`tests/http/simulation.rs`) check that every property of real answers is
//! declared here, and that the parser accepts exactly the documented request properties, so the
//! document cannot drift.

use crate::error::extract::JsonBody;
use crate::error::{ApiError, Problem};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use guichet_app::simulation::{SimulationInput, SimulationOutput};
use guichet_app::App;
use serde_json::{Map, Value};

use super::patterns;
use utoipa::ToSchema;

/// Request fields, in the order the error message lists them.
pub const REQUEST_FIELDS: [&str; 7] = [
    "mesure",
    "demandeur",
    "cout",
    "depenses",
    "date_depot",
    "date_fin",
    "faits",
];

/// Montant en euros : chaîne écrite à la française (`"12 345,67"`, `"12345.67"`) ou nombre
/// JSON (`12345.67`).
#[derive(ToSchema)]
#[serde(untagged)]
pub enum MontantEuros {
    Texte(String),
    Nombre(f64),
}

/// Valeur d’un fait : chaîne telle que l’écrit le programme (`"oui"`, `"31"`, `"2022-06-30"`),
/// nombre, ou booléen (`true` vaut `"oui"`, `false` vaut `"non"`).
#[derive(ToSchema)]
#[serde(untagged)]
pub enum ValeurFait {
    Texte(String),
    Nombre(f64),
    Booleen(bool),
}

/// Une ligne de dépense du projet.
#[derive(ToSchema)]
pub struct DepenseSaisie {
    /// Catégorie de dépense du programme : prestation, formation, logiciel-ue,
    /// logiciel-hors-ue, materiel, materiel-accessibilite, masse-salariale, autre.
    #[schema(example = "prestation")]
    pub categorie: String,
    pub montant: MontantEuros,
}

/// Demande de simulation : une mesure, un demandeur, le coût du projet et les réponses du
/// demandeur.
#[derive(ToSchema)]
#[schema(example = json!({
    "mesure": "axe3.v1.dematads",
    "demandeur": "epci:249500109",
    "cout": "20000",
    "date_depot": "2021-06-01",
    "faits": {"communes_rattachees": 31}
}))]
pub struct SimulationDemande {
    /// Identifiant de la mesure (obligatoire), par exemple axe3.v1.dematads, axe3.v1.expert,
    /// axe3.v1.relation-usager.
    #[schema(example = "axe3.v1.dematads", min_length = 1, pattern = "\\S")]
    pub mesure: String,
    /// `TYPE:CODE` (commune:95127, epci:249500109, departement:95, region:11), ou
    /// `groupement:` suivi d’au moins deux membres différents joints par `+`
    /// (groupement:epci:200054781+epci:200058519). Obligatoire. Une collectivité absente du
    /// référentiel, comme un SIREN dont la clé de contrôle est fausse, répond 404.
    #[schema(example = "epci:249500109", min_length = 1, pattern = "\\S")]
    pub demandeur: String,
    /// Coût total du projet en euros. Seul, il compte comme une ligne `prestation` ; avec
    /// `depenses`, il doit en être la somme (sinon 422). Un montant au-delà du plafond de
    /// vraisemblance du programme (ITN7 : son total, 88 M€) est refusé (400), comme des lignes
    /// dont la somme le dépasse (422 : chaque ligne est valide, leur somme ne l’est pas).
    pub cout: Option<MontantEuros>,
    /// Lignes de dépenses par catégorie.
    pub depenses: Option<Vec<DepenseSaisie>>,
    /// Date de dépôt (AAAA-MM-JJ) ; par défaut (champ absent ou null), la date du jour de la
    /// plateforme. Une date vide est refusée, comme une date hors des bornes de vraisemblance
    /// du programme.
    #[schema(format = Date, example = "2021-06-01")]
    pub date_depot: Option<String>,
    /// Date de fin prévue du projet (AAAA-MM-JJ), dans les bornes du programme.
    #[schema(format = Date, example = "2022-06-30")]
    pub date_fin: Option<String>,
    /// Réponses du demandeur, par nom de fait (`communes_rattachees`, `deja_commence`,
    /// `portage_decisionnel`, `labo`, `en_zrr`…) ; elles priment sur les faits du référentiel.
    #[schema(example = json!({"communes_rattachees": 31, "deja_commence": false}))]
    pub faits: Option<std::collections::BTreeMap<String, ValeurFait>>,
}

/// Une condition d’éligibilité non remplie.
#[derive(ToSchema)]
pub struct Motif {
    /// Code stable du motif.
    #[schema(example = "hors_periode_depot")]
    pub code: String,
    /// Le motif, en français.
    pub message: String,
    /// Le document qui fonde la condition.
    pub source: Option<String>,
}

/// Une information nécessaire au résultat que la demande ne donne pas.
#[derive(ToSchema)]
pub struct DonneeManquante {
    #[schema(example = "communes_rattachees")]
    pub nom: String,
    pub titre: String,
    /// La question à poser au demandeur.
    pub question: Option<String>,
}

/// Une information non donnée, présumée à sa valeur par défaut.
#[derive(ToSchema)]
pub struct Hypothese {
    #[schema(example = "deja_commence")]
    pub nom: String,
    pub titre: String,
    #[schema(example = "non")]
    pub valeur: String,
}

/// Une ligne de dépense, telle que le régime de dépenses de la mesure la retient.
#[derive(ToSchema)]
pub struct LigneDepense {
    #[schema(example = "prestation")]
    pub categorie: String,
    pub libelle: String,
    #[schema(example = 2000000)]
    pub montant_centimes: i64,
    /// Part de la ligne retenue dans l’assiette éligible.
    pub retenu_centimes: i64,
    /// Pourquoi la ligne est exclue ou plafonnée.
    pub motif: Option<String>,
}

/// Une étape de l’explication : fait, paramètre, règle, condition, dépense ou résultat.
#[derive(ToSchema)]
pub struct EtapeExplication {
    /// fait, parametre, regle, condition, depense ou resultat.
    #[serde(rename = "type")]
    #[schema(example = "parametre")]
    pub kind: String,
    #[schema(example = "forfait_dematads_centre")]
    pub nom: String,
    pub titre: String,
    /// La valeur en français (`50 %`, `16 000 €`, `oui`).
    #[schema(example = "4 000 €")]
    pub valeur: String,
    /// La valeur pour les machines : centimes entiers, nombre décimal en chaîne, booléen, date
    /// ou null.
    pub valeur_brute: serde_json::Value,
    pub formule: Option<String>,
    pub detail: Option<String>,
    pub source: Option<String>,
    /// Pour un paramètre : la date d’entrée en vigueur de sa valeur.
    #[schema(format = Date)]
    pub depuis: Option<String>,
}

/// Le demandeur tel que les règles le voient, d’après le millésime du référentiel du programme.
#[derive(ToSchema)]
pub struct DemandeurSimule {
    #[schema(example = "epci:249500109")]
    pub reference: String,
    #[schema(example = "CA de Cergy-Pontoise")]
    pub nom: String,
    /// commune, epci, departement, region ou groupement.
    #[serde(rename = "type")]
    #[schema(example = "epci")]
    pub kind: String,
    /// Population municipale, somme des communes membres.
    pub population: i64,
    /// D’où vient le chiffre de population.
    pub population_source: String,
    /// Nombre de communes membres.
    pub communes: i64,
    /// Région dont la variante s’applique ; null si les membres relèvent de plusieurs régions.
    #[schema(example = "11")]
    pub region: Option<String>,
    pub regions: Vec<String>,
    pub departements: Vec<String>,
    /// Les membres comprennent toutes les communes d’au moins un département.
    pub couvre_departement: bool,
    /// CC, CA, CU, METRO… pour un EPCI.
    pub nature_epci: Option<String>,
    #[schema(example = 2021)]
    pub millesime: u16,
}

/// Résultat de la simulation d’une mesure (le même objet que `guichet simulate --json`).
#[derive(ToSchema)]
pub struct SimulationResultat {
    #[schema(example = "axe3.v1.dematads")]
    pub mesure: String,
    pub mesure_nom: String,
    /// Toutes les conditions sont remplies et aucune information ne manque.
    pub eligible: bool,
    /// Codes des motifs ; vide si éligible.
    pub motifs: Vec<String>,
    pub motifs_detail: Vec<Motif>,
    pub donnees_manquantes: Vec<DonneeManquante>,
    pub hypotheses: Vec<Hypothese>,
    pub depenses: Vec<LigneDepense>,
    /// Assiette éligible, en centimes.
    pub assiette_centimes: Option<i64>,
    /// Taux, nombre décimal en chaîne (0.5 pour 50 %).
    #[schema(example = "0.5")]
    pub taux: Option<String>,
    #[schema(example = "0.8")]
    pub taux_max: Option<String>,
    /// Montant proposé, en centimes.
    #[schema(example = 1600000)]
    pub montant_centimes: Option<i64>,
    /// Montant maximal, en centimes.
    pub montant_max_centimes: Option<i64>,
    /// `national` ou le code de la région dont la variante s’applique.
    #[schema(example = "11")]
    pub variante: String,
    #[schema(example = "Île-de-France")]
    pub variante_nom: String,
    #[schema(format = Date, example = "2021-06-01")]
    pub date_depot: String,
    pub demandeur: DemandeurSimule,
    /// Version des règles du programme (à conserver avec une décision).
    #[schema(example = "itn7@0123456789ab")]
    pub version_programme: String,
    /// L’explication, dépendances d’abord.
    pub trace: Vec<EtapeExplication>,
}

/// Writes the running programme into the request's schema, so that the document accepts
/// exactly what the simulator accepts (schemathesis's "valid data accepted" and "invalid data
/// refused" checks both hold): the measures, the expense categories, the facts it declares
/// (every one but `date_depot`, which has its own field) typed by their declaration, and the
/// plausibility bounds (`plausibilite`) of amounts, counts and dates as patterns and bounds.
/// What JSON Schema cannot say (the sum of the lines, the cost against that sum) is answered
/// 422, not 400.
pub fn document_programme(doc: &mut Value, programme: &guichet_programme::Programme) {
    use guichet_programme::Type;
    use serde_json::json;
    let bounds = &programme.plausibility;
    let max_cents = bounds.max_amount.get();
    let max_euros = if max_cents % 100 == 0 {
        json!(max_cents / 100)
    } else {
        serde_json::from_str(&format!("{}.{:02}", max_cents / 100, max_cents % 100))
            .unwrap_or(json!(max_cents / 100))
    };
    let (first, last) = (bounds.first_date, bounds.last_date);
    let date_pattern = patterns::dates(first, last);
    let span = format!(
        "du {} au {}",
        first.format("%Y-%m-%d"),
        last.format("%Y-%m-%d")
    );
    let Some(schemas) = doc.pointer_mut("/components/schemas") else {
        return;
    };
    schemas["MontantEuros"] = json!({
        "description": format!(
            "Montant en euros, de 0 à {} (plafond de vraisemblance du programme) : nombre JSON \
             d’au plus deux décimales (`12345.67`), ou chaîne écrite à la française : chiffres, \
             virgule ou point décimal et au plus deux décimales, espaces libres (séparateurs de \
             milliers), `€` final facultatif (`\"12 345,67 €\"`, `\"12345.67\"`).",
            bounds.max_amount
        ),
        "type": ["string", "number"],
        "pattern": patterns::amount(max_cents),
        "minimum": 0,
        "maximum": max_euros,
        "multipleOf": 0.01,
        "examples": ["12 345,67", 12345.67]
    });
    let demande = &mut schemas["SimulationDemande"];
    demande["additionalProperties"] = json!(false);
    let props = &mut demande["properties"];
    let measures: Vec<&str> = programme.measures().map(|m| m.id.as_str()).collect();
    props["mesure"]["enum"] = json!(measures);
    props["demandeur"]["pattern"] = json!(patterns::applicant());
    // A blank cost is no cost (the page's empty field), unlike a blank expense line.
    let cout = &mut props["cout"];
    if let Some(o) = cout.as_object_mut() {
        o.remove("oneOf");
        o.remove("anyOf");
        o.remove("$ref");
        o.remove("type");
    }
    cout["anyOf"] = json!([
        {"$ref": "#/components/schemas/MontantEuros"},
        {"type": "null"},
        {"type": "string", "pattern": format!("^{}*$", patterns::WS), "description": "vide : comme absent"}
    ]);
    for field in ["date_depot", "date_fin"] {
        props[field]["pattern"] = json!(date_pattern);
        if let Some(d) = props[field]["description"].as_str() {
            props[field]["description"] = json!(format!("{d} Bornes : {span}."));
        }
    }
    let mut facts = Map::new();
    for f in &programme.rules.facts {
        if f.name == "date_depot" {
            continue;
        }
        let mut schema = match (f.ty, &f.allowed) {
            (Type::Booleen, _) => json!({
                "type": ["boolean", "string", "null"],
                "pattern": patterns::one_of(&["oui", "non", "true", "false"]),
            }),
            (Type::Texte, Some(allowed)) => {
                let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
                json!({
                    "type": ["string", "null"],
                    "pattern": patterns::one_of(&allowed),
                    "examples": allowed,
                })
            }
            (Type::Texte | Type::Any, None) => json!({
                "type": ["string", "number", "boolean", "null"],
            }),
            (Type::Nombre, _) => json!({
                "type": ["integer", "string", "null"],
                "minimum": 0,
                "maximum": bounds.max_count,
                "pattern": patterns::count(bounds.max_count),
            }),
            (Type::Date, _) => json!({
                "type": ["string", "null"],
                "format": "date",
                "pattern": date_pattern,
            }),
            (Type::Montant, _) => json!({
                "anyOf": [{"$ref": "#/components/schemas/MontantEuros"}, {"type": "null"}],
            }),
            (Type::Any, Some(_)) => json!({}),
        };
        schema["description"] = json!(f.title);
        facts.insert(f.name.clone(), schema);
    }
    let faits = &mut props["faits"];
    if let Some(o) = faits.as_object_mut() {
        o.remove("propertyNames");
        o.remove("additionalProperties");
        o.remove("oneOf");
        o.remove("anyOf");
    }
    faits["type"] = json!(["object", "null"]);
    faits["properties"] = Value::Object(facts);
    faits["additionalProperties"] = json!(false);
    let categories: Vec<&str> = programme
        .rules
        .categories
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    let depense = &mut schemas["DepenseSaisie"];
    depense["additionalProperties"] = json!(false);
    depense["properties"]["categorie"]["enum"] = json!(categories);
}

fn scalar(field: &str, v: &Value, booleans: bool) -> Result<Option<String>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        // -0.0 is zero, as the document's `minimum: 0` says (its text would read as negative).
        Value::Number(n) if n.to_string() == "-0.0" => Ok(Some("0".to_string())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) if booleans => Ok(Some(if *b { "oui" } else { "non" }.to_string())),
        _ => Err(ApiError::bad_request(format!(
            "« {field} » : {} attendu",
            if booleans {
                "une chaîne, un nombre ou un booléen"
            } else {
                "une chaîne ou un nombre"
            }
        ))),
    }
}

fn text(field: &str, v: &Value) -> Result<Option<String>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(ApiError::bad_request(format!(
            "« {field} » : une chaîne de caractères est attendue"
        ))),
    }
}

/// Maps the JSON body onto the simulator's raw input; the simulator checks the values.
pub fn input_from_json(body: &Value) -> Result<SimulationInput, ApiError> {
    let Value::Object(fields) = body else {
        return Err(ApiError::bad_request(
            "le corps de la requête doit être un objet JSON ({\"mesure\": …, \"demandeur\": …})",
        ));
    };
    if let Some(unknown) = fields
        .keys()
        .find(|k| !REQUEST_FIELDS.contains(&k.as_str()))
    {
        return Err(ApiError::bad_request(format!(
            "champ inconnu : « {unknown} » (champs acceptés : {})",
            REQUEST_FIELDS.join(", ")
        )));
    }
    let get = |k: &str| fields.get(k).unwrap_or(&Value::Null);
    let mesure = text("mesure", get("mesure"))?
        .filter(|m| !m.trim().is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                "« mesure » est obligatoire : identifiant d’une mesure, par exemple axe3.v1.dematads",
            )
        })?;
    let mut input = SimulationInput {
        mesure: Some(mesure),
        demandeur: text("demandeur", get("demandeur"))?.unwrap_or_default(),
        cout: scalar("cout", get("cout"), false)?,
        date_depot: text("date_depot", get("date_depot"))?,
        date_fin: text("date_fin", get("date_fin"))?,
        ..SimulationInput::default()
    };
    match get("depenses") {
        Value::Null => {}
        Value::Array(lines) => {
            for (i, line) in lines.iter().enumerate() {
                let n = i + 1;
                let Value::Object(line) = line else {
                    return Err(ApiError::bad_request(format!(
                        "« depenses » : la ligne {n} doit être un objet {{\"categorie\": …, \"montant\": …}}"
                    )));
                };
                let field = |k: &str| line.get(k).unwrap_or(&Value::Null);
                if let Some(k) = line
                    .keys()
                    .find(|k| !matches!(k.as_str(), "categorie" | "montant"))
                {
                    return Err(ApiError::bad_request(format!(
                        "« depenses » : champ inconnu « {k} » à la ligne {n} (champs : categorie, montant)"
                    )));
                }
                let category = text("depenses.categorie", field("categorie"))?;
                let amount = scalar("depenses.montant", field("montant"), false)?;
                let (Some(category), Some(amount)) = (category, amount) else {
                    return Err(ApiError::bad_request(format!(
                        "« depenses » : la ligne {n} doit donner « categorie » et « montant »"
                    )));
                };
                input.depenses.push((category, amount));
            }
        }
        _ => return Err(ApiError::bad_request(
            "« depenses » : une liste de lignes {\"categorie\": …, \"montant\": …} est attendue",
        )),
    }
    match get("faits") {
        Value::Null => {}
        Value::Object(facts) => input.faits = facts_from_json(facts)?,
        _ => {
            return Err(ApiError::bad_request(
                "« faits » : un objet {\"nom du fait\": valeur} est attendu",
            ))
        }
    }
    Ok(input)
}

fn facts_from_json(facts: &Map<String, Value>) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    for (name, v) in facts {
        if let Some(v) = scalar(&format!("faits.{name}"), v, true)? {
            out.push((name.clone(), v));
        }
    }
    Ok(out)
}

/// Simulation d’une mesure pour une collectivité
///
/// Calcule l’éligibilité, l’assiette, les taux et les montants d’une mesure du programme pour
/// un demandeur, avec l’explication pas à pas. Public, sans authentification ; rien n’est
/// enregistré. Le résultat est celui de `guichet simulate --json`.
#[utoipa::path(
    post,
    path = "/api/v1/simulations",
    tag = "simulation",
    request_body(
        content = SimulationDemande,
        content_type = "application/json",
        description = "La mesure, le demandeur, le coût du projet et les réponses du demandeur"
    ),
    responses(
        (status = 200, description = "Résultat de la simulation, avec l’explication", body = SimulationResultat),
        (status = 400, description = "Demande invalide (champ manquant ou mal formé, mesure, catégorie ou fait inconnus, montant ou date invraisemblables, JSON mal formé)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Collectivité inconnue dans le référentiel du programme", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Corps de requête trop volumineux", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Le corps doit être envoyé en application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Champs valides un à un, incompatibles ensemble : coût différent de la somme des lignes de dépenses, somme des lignes au-delà du plafond de vraisemblance, ou mesure qui ne peut pas être évaluée pour ce demandeur (groupement réparti sur plusieurs régions pour une mesure territoriale…)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Référentiel du programme non importé", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn simulate(
    State(app): State<App>,
    JsonBody(body): JsonBody,
) -> Result<Json<SimulationOutput>, ApiError> {
    let input = input_from_json(&body)?;
    let sim = app.simulation().simulate(&input).await?;
    let Some(outcome) = sim.outcomes.first() else {
        return Err(ApiError::bad_request("aucune mesure à simuler"));
    };
    match &outcome.result {
        Ok(ev) => Ok(Json(SimulationOutput::new(&app.programme, &sim, ev))),
        Err(e) => Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_and_booleans_become_french_literals() {
        let i = input_from_json(&json!({
            "mesure": "axe3.v1.dematads",
            "demandeur": "epci:249500109",
            "cout": 12345.67,
            "depenses": [{"categorie": "prestation", "montant": "12 345,67"}],
            "faits": {"communes_rattachees": 31, "labo": true, "en_zrr": false, "deja_commence": null}
        }))
        .unwrap();
        assert_eq!(i.cout.as_deref(), Some("12345.67"));
        let zero = input_from_json(&json!({"mesure": "axe1", "cout": -0.0})).unwrap();
        assert_eq!(zero.cout.as_deref(), Some("0"), "-0.0 is zero");
        assert_eq!(
            i.depenses,
            vec![("prestation".to_string(), "12 345,67".to_string())]
        );
        let mut facts = i.faits.clone();
        facts.sort();
        assert_eq!(
            facts,
            vec![
                ("communes_rattachees".to_string(), "31".to_string()),
                ("en_zrr".to_string(), "non".to_string()),
                ("labo".to_string(), "oui".to_string()),
            ]
        );
    }

    #[test]
    fn refusals_are_in_french() {
        for (body, expected) in [
            (json!([]), "objet JSON"),
            (
                json!({"demandeur": "commune:95127"}),
                "« mesure » est obligatoire",
            ),
            (
                json!({"mesure": "", "demandeur": "commune:95127"}),
                "obligatoire",
            ),
            (json!({"mesure": "axe1", "x": 1}), "champ inconnu : « x »"),
            (json!({"mesure": "axe1", "cout": true}), "« cout »"),
            (json!({"mesure": "axe1", "depenses": {}}), "« depenses »"),
            (
                json!({"mesure": "axe1", "depenses": [{"categorie": "autre"}]}),
                "ligne 1",
            ),
            (
                json!({"mesure": "axe1", "faits": {"labo": [1]}}),
                "« faits.labo »",
            ),
        ] {
            let e = input_from_json(&body).expect_err("refus");
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert!(e.detail.contains(expected), "{body} : {}", e.detail);
        }
    }
}
