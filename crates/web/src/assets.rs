//! Static assets. The DSFR comes from npm (`@gouvfr/dsfr`, pinned by package-lock.json) and is
//! embedded in release binaries; debug builds read it from node_modules at run time. Guichet's
//! own CSS and JavaScript live in `crates/web/assets`. Responses carry an ETag and cache headers.
//!
//! Pages link the DSFR under a versioned prefix, `/dsfr/<version>/…` ([`dsfr_prefix`]), where the
//! version is a digest of the bundle's main files: those URLs never change content, so browsers
//! keep them a year without asking again (`immutable`), and a new DSFR gets new URLs. The bare
//! `/dsfr/…` URLs still answer, cached a week and revalidated by ETag.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

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

/// The files whose digests make the DSFR's version: the CSS references the fonts and icons, so
/// a new release changes at least one of them.
const DSFR_VERSIONED: [&str; 4] = [
    "dsfr.min.css",
    "dsfr.module.min.js",
    "dsfr.nomodule.min.js",
    "utility/icons/icons.min.css",
];

/// A year: what `immutable` URLs are kept for.
const IMMUTABLE_MAX_AGE: u32 = 365 * 24 * 3600;

/// 12 hex digits of the DSFR bundle's digest, computed once.
pub fn dsfr_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut h = Sha256::new();
        for name in DSFR_VERSIONED {
            if let Some(f) = Dsfr::get(name) {
                h.update(name.as_bytes());
                h.update(f.metadata.sha256_hash());
            }
        }
        hex::encode(h.finalize())[..12].to_string()
    })
}

/// Where pages link the DSFR: `/dsfr/<version>`.
pub fn dsfr_prefix() -> &'static str {
    static PREFIX: OnceLock<String> = OnceLock::new();
    PREFIX.get_or_init(|| format!("/dsfr/{}", dsfr_version()))
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
    let cache = if max_age >= IMMUTABLE_MAX_AGE {
        format!("public, max-age={max_age}, immutable")
    } else {
        format!("public, max-age={max_age}")
    };
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

/// `/dsfr/<version>/*`: the design system under its current version, kept a year; `/dsfr/*`
/// (and an older version's prefix, from a page cached before an upgrade): the current files,
/// cached a week and revalidated by ETag.
pub async fn dsfr(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let (file, max_age) = match path.split_once('/') {
        Some((v, rest)) if v == dsfr_version() => (rest, IMMUTABLE_MAX_AGE),
        Some((v, rest)) if v.len() == 12 && v.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (rest, 7 * 24 * 3600)
        }
        _ => (path.as_str(), 7 * 24 * 3600),
    };
    respond(Dsfr::get(file), file, &headers, max_age)
}

/// `/static/*`: Guichet's own assets; cached for an hour, revalidated by ETag.
pub async fn own(Path(path): Path<String>, headers: HeaderMap) -> Response {
    respond(Own::get(&path), &path, &headers, 3600)
}
