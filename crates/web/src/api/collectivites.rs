//! Referential endpoints: search, public details, and (scoped) the agents of a collectivité.

use crate::ctx::Ctx;
use crate::error::extract::{ApiPath, ApiQuery};
use crate::error::{ApiError, Problem};
use axum::extract::State;
use axum::Json;
use guichet_app::referentiel::search::Hit;
use guichet_app::App;
use guichet_domain::codes::CodeError;
use guichet_domain::territory::TerritoryError;
use guichet_domain::{CollectiviteKind, CollectiviteRef};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

const MAX_LIMIT: usize = 50;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Nom (sans accents ni majuscules requis), code INSEE, SIREN ou code postal.
    #[param(example = "cergy", max_length = 100)]
    q: Option<String>,
    /// commune, epci, departement ou region (vide : tous les types).
    #[serde(rename = "type")]
    #[param(rename = "type", pattern = "^(|commune|epci|departement|region)$")]
    kind: Option<String>,
    /// Millésime du référentiel (2021 ou 2026) ; par défaut celui en vigueur à la date du jour.
    #[param(pattern = "^(|2021|2026)$")]
    millesime: Option<String>,
    /// Nombre de résultats (1 à 50 ; vide : 10).
    #[param(pattern = "^(|[1-9]|[1-4][0-9]|50)$")]
    limite: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CollectiviteHit {
    /// commune, epci, departement ou region
    #[serde(rename = "type")]
    #[schema(example = "commune")]
    pub kind: String,
    /// Code INSEE (commune), SIREN (EPCI), code du département ou de la région
    #[schema(example = "95127")]
    pub code: String,
    #[schema(example = "Cergy")]
    pub nom: String,
    pub siren: Option<String>,
    pub codes_postaux: Vec<String>,
    #[schema(example = 65911)]
    pub population: i64,
    pub departement: Option<String>,
    pub departement_nom: Option<String>,
    pub millesime: u16,
    /// Page publique de la collectivité
    pub url: String,
}

impl From<Hit> for CollectiviteHit {
    fn from(h: Hit) -> Self {
        CollectiviteHit {
            url: format!(
                "/collectivites/{}/{}?millesime={}",
                h.kind, h.code, h.vintage
            ),
            kind: h.kind.slug().into(),
            code: h.code,
            nom: h.name,
            siren: h.siren,
            codes_postaux: h.postcodes,
            population: h.population,
            departement_nom: h.departement.as_ref().map(|d| d.1.clone()),
            departement: h.departement.map(|d| d.0),
            millesime: h.vintage.year(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SearchResponse {
    pub millesime: u16,
    pub resultats: Vec<CollectiviteHit>,
}

/// Recherche de collectivités
#[utoipa::path(
    get,
    path = "/api/v1/collectivites",
    tag = "referentiel",
    params(SearchParams),
    responses(
        (status = 200, description = "Résultats, correspondances exactes et préfixes d’abord", body = SearchResponse),
        (status = 400, description = "Paramètre invalide", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn search(
    State(app): State<App>,
    ApiQuery(p): ApiQuery<SearchParams>,
) -> Result<Json<SearchResponse>, ApiError> {
    let q = p.q.unwrap_or_default();
    if q.chars().count() > 100 {
        return Err(ApiError::bad_request(
            "la recherche est limitée à 100 caractères",
        ));
    }
    // The spellings the document gives, and only those (the parsers alone would also take
    // `Commune`, `+5` or `05`).
    let kind = p
        .kind
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            CollectiviteKind::parse(s)
                .ok()
                .filter(|k| k.slug() == s)
                .ok_or_else(|| TerritoryError::UnknownKind(s.to_string()))
        })
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let limit = match p.limite.as_deref().filter(|s| !s.is_empty()) {
        None => 10,
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|_| s.bytes().all(|c| c.is_ascii_digit()) && !s.starts_with('0'))
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "limite invalide : « {s} » (entier de 1 à {MAX_LIMIT})"
                ))
            })?,
    };
    let v = app
        .referentiel()
        .requested_vintage(vintage_param(&p.millesime)?)
        .await?;
    let hits = app
        .referentiel()
        .search_collectivites(v, &q, kind, limit)
        .await?;
    Ok(Json(SearchResponse {
        millesime: v.year(),
        resultats: hits.into_iter().map(Into::into).collect(),
    }))
}

/// A vintage as the document spells it, four digits (`Vintage::parse` alone would also take
/// ` 2021` or `+2021`); empty is the vintage in force.
fn vintage_param(raw: &Option<String>) -> Result<Option<&str>, ApiError> {
    match raw.as_deref().filter(|s| !s.is_empty()) {
        Some(s) if !(s.len() == 4 && s.bytes().all(|c| c.is_ascii_digit())) => Err(
            ApiError::bad_request(CodeError::Vintage(s.to_string()).to_string()),
        ),
        other => Ok(other),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VintageParam {
    /// Millésime du référentiel (2021 ou 2026)
    #[param(pattern = "^(|2021|2026)$")]
    millesime: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Named {
    pub code: String,
    pub nom: String,
}

#[derive(Serialize, ToSchema)]
pub struct PopulationByVintage {
    pub millesime: u16,
    pub population: i64,
}

#[derive(Serialize, ToSchema)]
pub struct CommuneMembre {
    pub code: String,
    pub nom: String,
    pub population: i64,
}

#[derive(Serialize, ToSchema)]
pub struct CollectiviteDetails {
    #[serde(rename = "type")]
    pub kind: String,
    pub code: String,
    pub nom: String,
    pub siren: Option<String>,
    pub codes_postaux: Vec<String>,
    pub departement: Option<Named>,
    pub region: Option<Named>,
    pub epci: Option<Named>,
    /// Population de chaque millésime importé (EPCI, départements, régions : somme des communes membres)
    pub populations: Vec<PopulationByVintage>,
    pub membres: Vec<CommuneMembre>,
    pub millesime: u16,
}

fn parse_ref(kind: &str, code: &str) -> Result<CollectiviteRef, ApiError> {
    CollectiviteRef::from_parts(kind, code).map_err(|e| ApiError::not_found(e.to_string()))
}

/// Fiche publique d’une collectivité
#[utoipa::path(
    get,
    path = "/api/v1/collectivites/{type}/{code}",
    tag = "referentiel",
    params(
        ("type" = String, Path, description = "commune, epci, departement ou region"),
        ("code" = String, Path, description = "Code INSEE, SIREN, code du département ou de la région"),
        VintageParam
    ),
    responses(
        (status = 200, description = "Fiche de la collectivité", body = CollectiviteDetails),
        (status = 400, description = "Paramètre invalide", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Introuvable", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn details(
    State(app): State<App>,
    ApiPath((kind, code)): ApiPath<(String, String)>,
    ApiQuery(p): ApiQuery<VintageParam>,
) -> Result<Json<CollectiviteDetails>, ApiError> {
    let r = parse_ref(&kind, &code)?;
    let v = app
        .referentiel()
        .requested_vintage(vintage_param(&p.millesime)?)
        .await?;
    let d = app.referentiel().collectivite_details(v, &r).await?;
    let named = |o: Option<(String, String)>| o.map(|(code, nom)| Named { code, nom });
    Ok(Json(CollectiviteDetails {
        kind: r.kind.slug().into(),
        code: r.code.clone(),
        nom: d.name,
        siren: d.siren,
        codes_postaux: d.postcodes,
        departement: named(d.departement),
        region: named(d.region),
        epci: named(d.epci),
        populations: d
            .populations
            .into_iter()
            .map(|(millesime, population)| PopulationByVintage {
                millesime,
                population,
            })
            .collect(),
        membres: d
            .members
            .into_iter()
            .map(|(code, nom, population)| CommuneMembre {
                code,
                nom,
                population,
            })
            .collect(),
        millesime: d.vintage,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct Agent {
    pub id: i64,
    pub nom: String,
    pub courriel: String,
    pub actif: bool,
}

/// Agents habilités d’une collectivité (accès restreint à son territoire)
#[utoipa::path(
    get,
    path = "/api/v1/collectivites/{type}/{code}/agents",
    tag = "comptes",
    security(("jeton" = []), ("session" = [])),
    params(
        ("type" = String, Path, description = "commune, epci, departement ou region"),
        ("code" = String, Path, description = "Code INSEE, SIREN, code du département ou de la région")
    ),
    responses(
        (status = 200, description = "Agents habilités", body = [Agent]),
        (status = 401, description = "Authentification requise", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Hors du territoire du compte", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Introuvable", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Trop de requêtes pour ce jeton d’API (en-tête Retry-After)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn agents(
    State(app): State<App>,
    ctx: Ctx,
    ApiPath((kind, code)): ApiPath<(String, String)>,
) -> Result<Json<Vec<Agent>>, ApiError> {
    let principal = ctx.api_principal()?;
    let r = parse_ref(&kind, &code)?;
    Ok(Json(
        app.accounts()
            .collectivite_space(principal, &r)
            .await?
            .members
            .into_iter()
            .map(|m| Agent {
                id: m.id,
                actif: m.password_hash.is_some() && m.disabled_at.is_none(),
                nom: m.display_name,
                courriel: m.email,
            })
            .collect(),
    ))
}
