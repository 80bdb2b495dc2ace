//! The JSON API under `/api/v1`, described by the OpenAPI 3.1 document generated from these
//! handlers (`/api/v1/openapi.json`). Errors are `application/problem+json`.

pub mod collectivites;
pub mod moi;
pub mod services;

use crate::error::Problem;
use axum::response::IntoResponse;
use axum::Json;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "API Guichet",
        version = "1",
        description = "API de Guichet, plateforme des subventions « Transformation numérique des collectivités territoriales » (ITN7). Les erreurs suivent la RFC 9457 (application/problem+json) avec un champ detail en français."
    ),
    paths(
        collectivites::search,
        collectivites::details,
        collectivites::agents,
        moi::moi,
        services::list,
        services::details,
        crate::healthz,
        crate::readyz,
    ),
    components(schemas(Problem)),
    tags(
        (name = "referentiel", description = "Référentiel territorial : communes, EPCI, départements, régions"),
        (name = "comptes", description = "Compte connecté, services et habilitations"),
        (name = "exploitation", description = "Sondes de santé")
    )
)]
pub struct ApiDoc;

pub async fn openapi() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}
