//! Cross-cutting protections: security headers, the CSRF guard and body size limit on forms
//! (the API's public JSON computations pass it when declared JSON), and the rendering of DSFR
//! error pages.

use crate::ctx::Ctx;
use crate::error::{ApiError, ErrorPage, PageError};
use crate::layout::Layout;
use crate::multipart::FirstPart;
use askama::Template;
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use guichet_app::App;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// API routes that take a POST without changing any state (computations): they are let
/// through the guard when the body is JSON.
const PUBLIC_JSON_POSTS: &[&str] = &["/api/v1/simulations"];

/// Largest form body accepted (uploads will have their own routes and limits).
pub const FORM_LIMIT: usize = 256 * 1024;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; \
connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

pub async fn headers(State(app): State<App>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    // A response with its own, stricter policy keeps it (an attached document: `sandbox`).
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert("content-security-policy", HeaderValue::from_static(CSP));
    }
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "referrer-policy",
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    );
    if app.config.secure_cookies() {
        h.insert(
            "strict-transport-security",
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        );
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

pub(crate) fn is_api(path: &str) -> bool {
    path.starts_with("/api/")
}

fn state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn too_large(api: bool, limit: usize) -> Response {
    let msg = if limit >= 1024 * 1024 {
        format!(
            "le contenu envoyé dépasse la taille autorisée ({} Mo)",
            limit / (1024 * 1024)
        )
    } else {
        format!(
            "le contenu envoyé dépasse la taille autorisée ({} Ko)",
            limit / 1024
        )
    };
    if api {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, msg).into_response()
    } else {
        PageError::new(StatusCode::PAYLOAD_TOO_LARGE, msg).into_response()
    }
}

/// Where a state-changing request comes from, by the headers browsers add themselves and a page
/// cannot forge: `Sec-Fetch-Site` (only `same-origin`, or `none` for a request the user made
/// directly, pass) and `Origin` (this site's public origin, or the origin of the `Host` the
/// request was sent to). Absent headers (older browsers, scripts) leave the decision to the CSRF
/// token; present ones that name another site refuse the request whatever its token.
pub(crate) fn cross_site(headers: &HeaderMap, base_url: &str) -> Option<&'static str> {
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or("").trim().to_ascii_lowercase();
        if !matches!(site.as_str(), "same-origin" | "none") {
            return Some("sec-fetch-site");
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("").trim();
        let Ok(sent) = url::Url::parse(origin) else {
            // `null` (sandboxed frame, cross-site redirect) and anything unreadable.
            return Some("origin");
        };
        let ours = url::Url::parse(base_url)
            .map(|u| u.origin() == sent.origin())
            .unwrap_or(false);
        // The origin of the address the request was sent to (a local test, a second name):
        // the scheme is the browser's, the host and port must be the `Host` header's.
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| url::Url::parse(&format!("{}://{h}", sent.scheme())).ok())
            .is_some_and(|u| u.origin() == sent.origin());
        if !ours && !host {
            return Some("origin");
        }
    }
    None
}

fn refused_cross_site(api: bool, path: &str, which: &str) -> Response {
    tracing::warn!(chemin = %path, en_tete = which, "requête d’un autre site refusée");
    let msg = "cette demande provient d’un autre site : elle est refusée. Recommencez depuis les pages de Guichet";
    if api {
        ApiError::new(StatusCode::FORBIDDEN, msg).into_response()
    } else {
        PageError::new(StatusCode::FORBIDDEN, msg).into_response()
    }
}

/// What the CSRF guard knows: the application and the routes that take uploads.
#[derive(Clone)]
pub struct Guard {
    pub app: App,
    /// Route paths (as declared, `/dossiers/{id}/pieces`) whose multipart bodies may reach
    /// the upload limit; other page routes keep the form limit.
    pub uploads: Arc<[String]>,
}

fn refused_token(path: &str) -> Response {
    tracing::warn!(chemin = %path, "jeton CSRF absent ou invalide");
    PageError::new(
        StatusCode::FORBIDDEN,
        "le formulaire a expiré ou ne provient pas de ce site : rechargez la page et recommencez",
    )
    .into_response()
}

fn token_matches(sent: Option<&str>, ctx: &Ctx) -> bool {
    sent.is_some_and(|s| {
        !ctx.csrf.is_empty() && bool::from(s.as_bytes().ct_eq(ctx.csrf.as_bytes()))
    })
}

/// Every state-changing request to a page must carry the CSRF token of the session (or, before
/// login, of the anonymous cookie), and must not come from another site by its `Origin` /
/// `Sec-Fetch-Site`. Two bodies are accepted:
/// - `application/x-www-form-urlencoded`: read here within [`FORM_LIMIT`], handed on unchanged;
/// - `multipart/form-data`: its **first part must be the `csrf` field**; only that part is read
///   here, and the body is handed on whole and still streaming, under the upload limit
///   (`GUICHET_UPLOAD_MAX_OCTETS`) on upload routes and [`FORM_LIMIT`] elsewhere.
pub async fn csrf_guard(State(guard): State<Guard>, req: Request, next: Next) -> Response {
    let app = &guard.app;
    let path = req.uri().path().to_string();
    let api = is_api(&path);
    if !state_changing(req.method()) {
        return next.run(req).await;
    }
    // A public computation changes nothing: another site's page may well call it.
    let public_json =
        api && *req.method() == Method::POST && PUBLIC_JSON_POSTS.contains(&path.as_str());
    if !public_json {
        if let Some(which) = cross_site(req.headers(), &app.config.base_url) {
            return refused_cross_site(api, &path, which);
        }
    }
    let upload = req
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|m| guard.uploads.iter().any(|u| u == m.as_str()));
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let boundary = crate::multipart::boundary(&content_type);
    let limit = if upload && boundary.is_some() {
        app.config.upload_max_bytes
    } else {
        FORM_LIMIT
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return too_large(api, limit);
    }
    if api {
        // A public computation posted as JSON changes nothing and reads no cookie; a cross-site
        // form cannot send `application/json` without a CORS preflight, which is refused.
        if public_json {
            if !crate::error::extract::is_json(req.headers()) {
                return crate::error::extract::not_json().into_response();
            }
            return next.run(req).await;
        }
        // Other state-changing API routes authenticate with a token, never a cookie. The route
        // answers (405 where it writes nothing); a token of reach `lecture` is refused by
        // `Ctx::api_principal` before any use case runs.
        if req
            .extensions()
            .get::<Arc<Ctx>>()
            .is_some_and(|c| c.api_caller.is_some())
        {
            return next.run(req).await;
        }
        return ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "méthode non autorisée sur cette ressource",
        )
        .into_response();
    }
    let Some(ctx) = req.extensions().get::<Arc<Ctx>>().cloned() else {
        return PageError::status(StatusCode::INTERNAL_SERVER_ERROR).into_response();
    };
    if let Some(boundary) = boundary {
        let (parts, body) = req.into_parts();
        let body = http_body_util::Limited::new(body, limit);
        let (read, first, rest) = match crate::multipart::read_first_part(body, &boundary).await {
            Ok(r) => r,
            Err(e) if e.is::<http_body_util::LengthLimitError>() => return too_large(false, limit),
            Err(e) => {
                tracing::debug!(erreur = %e, "corps multipart interrompu");
                return PageError::new(StatusCode::BAD_REQUEST, "envoi interrompu : recommencez")
                    .into_response();
            }
        };
        return match first {
            FirstPart::Field { name, value } if name == "csrf" => {
                if !token_matches(Some(&value), &ctx) {
                    return refused_token(&path);
                }
                next.run(Request::from_parts(
                    parts,
                    crate::multipart::Prefixed::into_body(read, rest),
                ))
                .await
            }
            FirstPart::Field { .. } | FirstPart::Incomplete => PageError::new(
                StatusCode::BAD_REQUEST,
                "formulaire mal formé : le jeton du formulaire (champ « csrf ») doit être envoyé en premier, avant les fichiers ; rechargez la page et recommencez",
            )
            .into_response(),
            FirstPart::Refused(why) => PageError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "formulaire mal formé ({why}) : le jeton du formulaire (champ « csrf ») doit être envoyé en premier, avant les fichiers ; rechargez la page et recommencez"
                ),
            )
            .into_response(),
        };
    }
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return PageError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "ce formulaire doit être envoyé depuis la page du site",
        )
        .into_response();
    }
    let (parts, body) = req.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, FORM_LIMIT).await {
        Ok(b) => b,
        Err(_) => return too_large(false, FORM_LIMIT),
    };
    let sent = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned());
    if !token_matches(sent.as_deref(), &ctx) {
        return refused_token(&path);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[derive(Template)]
#[template(path = "pages/erreur.html")]
struct ErrorTemplate {
    layout: Layout,
    status: u16,
    title: &'static str,
    lead: &'static str,
    message: Option<String>,
}

fn error_texts(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => ("Requête invalide", "La demande envoyée n’a pas pu être comprise."),
        401 => ("Connexion nécessaire", "Connectez-vous pour accéder à cette page."),
        403 => ("Accès refusé", "Vous n’avez pas accès à cette page avec votre compte."),
        404 => (
            "Page non trouvée",
            "La page que vous cherchez est introuvable. Excusez-nous pour la gêne occasionnée.",
        ),
        405 => ("Méthode non autorisée", "Cette adresse ne s’utilise pas de cette façon."),
        409 | 410 => ("Action impossible", "Cette action ne peut pas être menée à son terme."),
        413 => ("Envoi trop volumineux", "Le contenu envoyé dépasse la taille autorisée."),
        415 => ("Envoi non reconnu", "Le contenu envoyé n’a pas le format attendu."),
        429 => ("Trop de tentatives", "Trop de demandes ont été faites en peu de temps."),
        503 => ("Service indisponible", "Le service est momentanément indisponible."),
        _ => (
            "Erreur inattendue",
            "Désolé, le service rencontre un problème, nous travaillons pour le résoudre le plus rapidement possible.",
        ),
    }
}

/// Turns error markers (and bare 404/405 from routing) into DSFR error pages for HTML routes,
/// and into problems for the API. It sits outside `ctx::load`, so that a failure to read the
/// session (database down) still gets a page.
pub async fn render_errors(State(app): State<App>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let response = next.run(req).await;
    let status = response.status();
    let marker = response.extensions().get::<ErrorPage>().cloned();
    let bare_error = (status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED)
        && !response.headers().contains_key(header::CONTENT_TYPE);
    if marker.is_none() && !bare_error {
        return response;
    }
    if is_api(&path) {
        let detail = marker
            .and_then(|m| m.message)
            .unwrap_or_else(|| problem_default(status));
        return ApiError::new(status, detail).into_response();
    }
    let ctx = response
        .extensions()
        .get::<Arc<Ctx>>()
        .cloned()
        .unwrap_or_else(|| Arc::new(Ctx::anonymous(&app)));
    let (title, lead) = error_texts(status);
    let message = marker.and_then(|m| m.message).map(|m| capitalise(&m));
    let page = ErrorTemplate {
        layout: Layout::new(&ctx, &app, &path, vec![]),
        status: status.as_u16(),
        title,
        lead,
        message,
    };
    let mut out = match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(erreur = %e, "rendu de la page d’erreur");
            (status, "Erreur").into_response()
        }
    };
    for (k, v) in response.headers() {
        if k == header::SET_COOKIE || k == header::RETRY_AFTER || k == header::LOCATION {
            out.headers_mut().append(k, v.clone());
        }
    }
    out
}

fn problem_default(status: StatusCode) -> String {
    match status.as_u16() {
        404 => "aucune ressource à cette adresse".into(),
        405 => "méthode non autorisée sur cette ressource".into(),
        _ => crate::error::problem_slug(status).1.to_lowercase(),
    }
}

pub fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}
