//! The logged-in account.

use crate::ctx::Ctx;
use crate::error::{ApiError, Problem};
use axum::extract::State;
use axum::Json;
use guichet_app::App;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct ServiceRef {
    pub id: i64,
    pub code: String,
    pub nom: String,
}

#[derive(Serialize, ToSchema)]
pub struct CollectiviteRepresentee {
    #[serde(rename = "type")]
    pub kind: String,
    pub code: String,
    pub nom: String,
}

#[derive(Serialize, ToSchema)]
pub struct Moi {
    pub id: i64,
    pub courriel: String,
    pub nom: String,
    /// demandeur, instructeur, coordinateur, administrateur, expert ou membre-comite
    pub role: String,
    pub service: Option<ServiceRef>,
    pub collectivites: Vec<CollectiviteRepresentee>,
}

/// Compte connecté
#[utoipa::path(
    get,
    path = "/api/v1/moi",
    tag = "comptes",
    security(("session" = [])),
    responses(
        (status = 200, description = "Le compte connecté, son service et ses collectivités", body = Moi),
        (status = 401, description = "Authentification requise", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Un jeton d’API n’est pas un compte : cette ressource demande une session", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn moi(State(app): State<App>, ctx: Ctx) -> Result<Json<Moi>, ApiError> {
    let u = ctx.api_user()?;
    Ok(Json(Moi {
        id: u.user.id,
        courriel: u.user.email.clone(),
        nom: u.user.display_name.clone(),
        role: u.role.slug().into(),
        service: u.service.as_ref().map(|s| ServiceRef {
            id: s.id,
            code: s.code.clone(),
            nom: s.name.clone(),
        }),
        collectivites: app
            .accounts()
            .named_collectivites(&u.principal.collectivites)
            .await?
            .into_iter()
            .map(|(r, nom)| CollectiviteRepresentee {
                kind: r.kind.slug().into(),
                code: r.code,
                nom,
            })
            .collect(),
    }))
}
