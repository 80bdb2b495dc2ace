//! Errors, two ways. Pages get a DSFR error page (rendered by the `render_errors` middleware,
//! which knows who is logged in); the JSON API gets `application/problem+json` (RFC 9457) with
//! a French `detail`. Internal causes are logged with a reference that the user sees, and never
//! shown themselves.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use guichet_app::error::AppError;
use serde::Serialize;
use utoipa::ToSchema;

/// The reference of an internal error: the request's identifier (in the `X-Request-Id` header
/// and on every log line of the request), or a fresh one outside a request.
fn reference() -> String {
    guichet_app::request::current_id()
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()[..16].to_string())
}

/// Status and French message of an application error; logs internal ones.
fn classify(e: &AppError) -> (StatusCode, String) {
    match e {
        AppError::Invalid(m) => (StatusCode::BAD_REQUEST, m.clone()),
        AppError::NotFound(m) => (StatusCode::NOT_FOUND, m.clone()),
        AppError::Inconsistent(m) => (StatusCode::UNPROCESSABLE_ENTITY, m.clone()),
        AppError::Forbidden => (
            StatusCode::FORBIDDEN,
            "vous n’avez pas accès à cette ressource avec votre compte".into(),
        ),
        AppError::Conflict(m) => (StatusCode::CONFLICT, m.clone()),
        AppError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m.clone()),
        AppError::TooManyAttempts { .. } => (StatusCode::TOO_MANY_REQUESTS, e.to_string()),
        AppError::Unavailable(m) => {
            tracing::warn!(erreur = %m, "service indisponible");
            (StatusCode::SERVICE_UNAVAILABLE, m.clone())
        }
        AppError::Storage(_) | AppError::Internal(_) => {
            let r = reference();
            tracing::error!(reference = %r, erreur = ?e, "erreur interne");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("une erreur est survenue (réf. {r})"),
            )
        }
    }
}

/// Marker left on a response for the error-page renderer.
#[derive(Clone, Debug)]
pub struct ErrorPage {
    pub message: Option<String>,
}

/// An error on an HTML page.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub message: Option<String>,
    /// Not an error page but a detour: the login page, to come back here afterwards.
    pub redirect: Option<String>,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        PageError {
            status,
            message: Some(message.into()),
            redirect: None,
        }
    }
    pub fn status(status: StatusCode) -> Self {
        PageError {
            status,
            message: None,
            redirect: None,
        }
    }
    /// Sends an anonymous visitor to the login page, then back to `path`.
    pub fn login(path: &str) -> Self {
        let suite: String = url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
        PageError {
            status: StatusCode::SEE_OTHER,
            message: None,
            redirect: Some(format!("/connexion?suite={suite}")),
        }
    }
    pub fn not_found() -> Self {
        Self::status(StatusCode::NOT_FOUND)
    }
    pub fn forbidden() -> Self {
        Self::status(StatusCode::FORBIDDEN)
    }
}

impl From<AppError> for PageError {
    fn from(e: AppError) -> Self {
        let (status, message) = classify(&e);
        PageError {
            status,
            message: Some(message),
            redirect: None,
        }
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> Self {
        AppError::Internal(anyhow::anyhow!("gabarit : {e}")).into()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        if let Some(to) = self.redirect {
            return axum::response::Redirect::to(&to).into_response();
        }
        let mut r = self.status.into_response();
        r.extensions_mut().insert(ErrorPage {
            message: self.message,
        });
        r
    }
}

/// RFC 9457 problem details.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    #[schema(example = "urn:guichet:probleme:requete-invalide")]
    pub kind: String,
    #[schema(example = "Requête invalide")]
    pub title: String,
    #[schema(example = 400)]
    pub status: u16,
    /// What went wrong, in French, for the person reading it.
    #[schema(example = "millésime inconnu : « 2022 » (millésimes disponibles : 2021, 2026)")]
    pub detail: String,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: detail.into(),
        }
    }
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentification requise : connectez-vous",
        )
    }
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "vous n’avez pas accès à cette ressource avec votre compte",
        )
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }
}

pub fn problem_slug(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => ("requete-invalide", "Requête invalide"),
        401 => ("authentification-requise", "Authentification requise"),
        403 => ("acces-refuse", "Accès refusé"),
        404 => ("introuvable", "Ressource introuvable"),
        405 => ("methode-non-autorisee", "Méthode non autorisée"),
        409 => ("conflit", "Conflit"),
        413 => ("contenu-trop-volumineux", "Contenu trop volumineux"),
        415 => (
            "type-de-contenu-non-pris-en-charge",
            "Type de contenu non pris en charge",
        ),
        422 => ("donnees-invalides", "Données invalides"),
        429 => ("trop-de-requetes", "Trop de requêtes"),
        503 => ("service-indisponible", "Service indisponible"),
        _ => ("erreur-interne", "Erreur interne"),
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        let (status, detail) = classify(&e);
        ApiError { status, detail }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (slug, title) = problem_slug(self.status);
        let body = Problem {
            kind: format!("urn:guichet:probleme:{slug}"),
            title: title.into(),
            status: self.status.as_u16(),
            detail: self.detail,
        };
        let mut r = (self.status, axum::Json(body)).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        r
    }
}

// axum's rejection texts are English and technical: they go to the logs, the caller gets French.
impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        tracing::debug!(rejet = %e.body_text(), "paramètres de requête refusés");
        ApiError::bad_request("paramètres de requête invalides : vérifiez leur nom et leur format")
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(e: axum::extract::rejection::PathRejection) -> Self {
        tracing::debug!(rejet = %e.body_text(), "chemin refusé");
        ApiError::bad_request(
            "chemin invalide : un identifiant n’a pas le format attendu (nombre entier)",
        )
    }
}

impl From<axum::extract::rejection::FormRejection> for PageError {
    fn from(e: axum::extract::rejection::FormRejection) -> Self {
        tracing::debug!(rejet = %e.body_text(), "formulaire refusé");
        PageError::new(
            StatusCode::BAD_REQUEST,
            "formulaire mal formé : rechargez la page et recommencez",
        )
    }
}

impl From<axum::extract::rejection::QueryRejection> for PageError {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        tracing::debug!(rejet = %e.body_text(), "adresse refusée");
        PageError::new(
            StatusCode::BAD_REQUEST,
            "adresse mal formée : vérifiez le lien suivi",
        )
    }
}

impl From<axum::extract::rejection::PathRejection> for PageError {
    fn from(_: axum::extract::rejection::PathRejection) -> Self {
        PageError::not_found()
    }
}

/// Extractors whose failures become French error pages or problems.
pub mod extract {
    use super::{ApiError, PageError};
    use axum::extract::{FromRequest, FromRequestParts};

    #[derive(FromRequest)]
    #[from_request(via(axum::Form), rejection(PageError))]
    pub struct PageForm<T>(pub T);

    #[derive(FromRequestParts)]
    #[from_request(via(axum::extract::Query), rejection(PageError))]
    pub struct PageQuery<T>(pub T);

    #[derive(FromRequestParts)]
    #[from_request(via(axum::extract::Path), rejection(PageError))]
    pub struct PagePath<T>(pub T);

    #[derive(FromRequestParts)]
    #[from_request(via(axum::extract::Query), rejection(ApiError))]
    pub struct ApiQuery<T>(pub T);

    #[derive(FromRequestParts)]
    #[from_request(via(axum::extract::Path), rejection(ApiError))]
    pub struct ApiPath<T>(pub T);

    /// A JSON body, read within the size limit. Unlike axum's `Json`, every refusal is a
    /// French problem: 415 when the body is not declared JSON, 413 above the limit, 400 with
    /// the line and column when the JSON is malformed. Mapping the value onto a request is the
    /// handler's job, so that its messages are French too.
    pub struct JsonBody(pub serde_json::Value);

    impl<S: Send + Sync> FromRequest<S> for JsonBody {
        type Rejection = ApiError;

        async fn from_request(
            req: axum::extract::Request,
            _state: &S,
        ) -> Result<Self, Self::Rejection> {
            use axum::http::StatusCode;
            if !is_json(req.headers()) {
                return Err(not_json());
            }
            let limit = crate::security::FORM_LIMIT;
            let bytes = axum::body::to_bytes(req.into_body(), limit)
                .await
                .map_err(|_| {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!(
                            "le contenu envoyé dépasse la taille autorisée ({} Ko)",
                            limit / 1024
                        ),
                    )
                })?;
            serde_json::from_slice(&bytes)
                .map(JsonBody)
                .map_err(|e| ApiError::bad_request(json_error(&e)))
        }
    }

    pub fn not_json() -> ApiError {
        ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "le corps de la requête doit être du JSON, avec l’en-tête Content-Type: application/json",
        )
    }

    /// `Content-Type: application/json`, with or without parameters (`; charset=utf-8`).
    pub fn is_json(headers: &axum::http::HeaderMap) -> bool {
        headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
    }

    fn json_error(e: &serde_json::Error) -> String {
        use serde_json::error::Category;
        tracing::debug!(rejet = %e, "JSON refusé");
        match e.classify() {
            Category::Eof if e.line() <= 1 && e.column() == 0 => {
                "le corps de la requête est vide : un objet JSON est attendu".into()
            }
            Category::Eof => format!(
                "JSON incomplet : le corps s’arrête avant la fin de l’objet (ligne {}, colonne {})",
                e.line(),
                e.column()
            ),
            _ => format!(
                "JSON mal formé à la ligne {}, colonne {} : vérifiez les guillemets, les virgules et les accolades",
                e.line(),
                e.column()
            ),
        }
    }
}
