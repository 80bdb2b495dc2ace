//! Static assets. The DSFR comes from npm (`@gouvfr/dsfr`, pinned by package-lock.json) and is
//! embedded in release binaries; debug builds read it from node_modules at run time. Guichet's
//! own CSS and JavaScript live in `crates/web/assets`. Responses carry an ETag and cache headers.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../../node_modules/@gouvfr/dsfr/dist/"]
#[include = "dsfr.min.css"]
#[include = "dsfr.module.min.js"]
#[include = "dsfr.nomodule.min.js"]
#[include = "fonts/*.woff2"]
#[include = "fonts/*.woff"]
#[include = "favicon/*"]
#[include = "icons/**/*.svg"]
#[include = "utility/icons/icons.min.css"]
#[include = "artwork/**/*.svg"]
#[allow_missing = true]
struct Dsfr;

#[derive(RustEmbed)]
#[folder = "assets/"]
struct Own;

/// Fails with a clear message when the DSFR files are missing (npm packages not installed).
pub fn check() -> anyhow::Result<()> {
    if Dsfr::get("dsfr.min.css").is_none() || Dsfr::get("dsfr.module.min.js").is_none() {
        anyhow::bail!(
            "le système de design de l’État (paquet npm @gouvfr/dsfr) est introuvable : lancez « npm ci » à la racine du projet, puis recompilez"
        );
    }
    Ok(())
}

fn respond(
    file: Option<rust_embed::EmbeddedFile>,
    path: &str,
    headers: &HeaderMap,
    max_age: u32,
) -> Response {
    let Some(file) = file else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..12]));
    let cache = format!("public, max-age={max_age}");
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag), (header::CACHE_CONTROL, cache)],
        )
            .into_response();
    }
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let mut response = file.data.into_owned().into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(mime.as_ref()) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&cache) {
        h.insert(header::CACHE_CONTROL, v);
    }
    response
}

/// `/dsfr/*`: the design system, versioned by the lockfile; cached for a week.
pub async fn dsfr(Path(path): Path<String>, headers: HeaderMap) -> Response {
    respond(Dsfr::get(&path), &path, &headers, 7 * 24 * 3600)
}

/// `/static/*`: Guichet's own assets; cached for an hour, revalidated by ETag.
pub async fn own(Path(path): Path<String>, headers: HeaderMap) -> Response {
    respond(Own::get(&path), &path, &headers, 3600)
}
