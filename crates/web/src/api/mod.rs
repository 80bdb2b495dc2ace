//! The JSON API under `/api/v1`, described by the OpenAPI 3.1 document generated from these
//! handlers (`/api/v1/openapi.json`). Errors are `application/problem+json`.

pub mod collectivites;
pub mod dossiers;
pub mod mesures;
pub mod moi;
pub mod patterns;
pub mod services;
pub mod simulations;

use crate::error::Problem;
use axum::response::IntoResponse;
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
        dossiers::list,
        dossiers::details,
        mesures::list,
        mesures::details,
        moi::moi,
        services::list,
        services::details,
        simulations::simulate,
        crate::healthz,
        crate::readyz,
    ),
    components(schemas(Problem)),
    modifiers(&Security),
    tags(
        (name = "referentiel", description = "Référentiel territorial : communes, EPCI, départements, régions"),
        (name = "comptes", description = "Compte connecté, services et habilitations"),
        (name = "programme", description = "Les mesures du programme : bénéficiaires, taux, plafonds et dates selon le territoire, sources"),
        (name = "dossiers", description = "Dossiers déposés : la liste visible par l’appelant (un jeton voit ceux de son service), un dossier avec son contenu déposé, le calcul au dépôt et son historique"),
        (name = "simulation", description = "Simulateur : éligibilité et montant indicatif d’une mesure pour une collectivité, avec l’explication du calcul"),
        (name = "exploitation", description = "Sondes de santé")
    )
)]
pub struct ApiDoc;

/// The two ways to authenticate: an API token (`Authorization: Bearer`, created by `guichet
/// admin token create` or on `/admin/jetons`), or the session cookie of a browser logged in on
/// the pages.
struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "jeton",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "Jeton d’API d’un service (guichet admin token create --service CODE --portee lecture|ecriture), dans l’en-tête Authorization: Bearer <jeton>. Il voit ce que voient les instructeurs de son service ; 600 requêtes par minute par défaut (429 et Retry-After au-delà).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "guichet_session",
                "Cookie de session d’un compte connecté aux pages (__Host-guichet_session derrière HTTPS)",
            ))),
        );
    }
}

/// The document, with the running programme's names (measures, expense categories, facts)
/// written into the simulation request's schema. Built once per router: the programme does not
/// change while the server runs.
pub fn openapi_document(app: &guichet_app::App) -> axum::body::Bytes {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    simulations::document_programme(&mut doc, &app.programme);
    dossiers::document_programme(&mut doc, &app.programme);
    serde_json::to_vec(&doc).unwrap_or_default().into()
}

/// Serves the document built by [`openapi_document`].
pub async fn openapi(
    axum::extract::State(doc): axum::extract::State<axum::body::Bytes>,
) -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        doc,
    )
}
