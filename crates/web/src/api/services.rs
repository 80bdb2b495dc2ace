//! Services (prefectures, national directorates), as far as the caller may see them.

use crate::ctx::Ctx;
use crate::error::extract::ApiPath;
use crate::error::{ApiError, Problem};
use axum::extract::State;
use axum::Json;
use guichet_app::accounts::ServiceRow;
use guichet_app::App;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct Service {
    pub id: i64,
    pub code: String,
    pub nom: String,
    /// prefecture-departementale, prefecture-regionale ou direction-nationale
    #[serde(rename = "type")]
    pub kind: String,
    /// Code du département, de la région ou de la direction
    pub territoire: String,
    pub region: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MembreService {
    pub id: i64,
    pub nom: String,
    pub courriel: String,
    pub role: String,
}

#[derive(Serialize, ToSchema)]
pub struct ServiceDetails {
    #[serde(flatten)]
    pub service: Service,
    pub membres: Vec<MembreService>,
}

fn view(s: ServiceRow) -> Service {
    Service {
        id: s.id,
        code: s.code,
        nom: s.name,
        kind: s.kind.slug().to_string(),
        territoire: s.territory_code,
        region: s.region_code,
    }
}

/// Services visibles par le compte connecté
#[utoipa::path(
    get,
    path = "/api/v1/services",
    tag = "comptes",
    security(("jeton" = []), ("session" = [])),
    responses(
        (status = 200, description = "Services visibles, filtrés selon le rôle et le territoire", body = [Service]),
        (status = 401, description = "Authentification requise", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Trop de requêtes pour ce jeton d’API (en-tête Retry-After)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list(State(app): State<App>, ctx: Ctx) -> Result<Json<Vec<Service>>, ApiError> {
    let principal = ctx.api_principal()?;
    Ok(Json(
        app.accounts()
            .visible_services(principal)
            .await?
            .into_iter()
            .map(view)
            .collect(),
    ))
}

/// Un service et ses membres
#[utoipa::path(
    get,
    path = "/api/v1/services/{id}",
    tag = "comptes",
    security(("jeton" = []), ("session" = [])),
    params(("id" = i64, Path, description = "Identifiant du service")),
    responses(
        (status = 200, description = "Le service et ses membres", body = ServiceDetails),
        (status = 400, description = "Identifiant invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Authentification requise", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Hors du territoire du compte", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Introuvable", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Trop de requêtes pour ce jeton d’API (en-tête Retry-After)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn details(
    State(app): State<App>,
    ctx: Ctx,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<ServiceDetails>, ApiError> {
    let principal = ctx.api_principal()?;
    let details = app.accounts().service_details(principal, id).await?;
    let s = details.service;
    let membres = details
        .members
        .into_iter()
        .map(|m| MembreService {
            id: m.id,
            nom: m.display_name,
            courriel: m.email,
            role: m.role.slug().to_string(),
        })
        .collect();
    Ok(Json(ServiceDetails {
        service: view(s),
        membres,
    }))
}
