//! Attached documents from the pages: the applicant attaches (a multipart form whose first
//! part is the CSRF token, checked by the guard) and removes while the dossier is editable;
//! whoever may see the dossier downloads (`app.pieces()` decides).

use super::depot::{dossier_href, show_step};
use crate::ctx::Ctx;
use crate::error::extract::PagePath;
use crate::error::PageError;
use axum::body::Body;
use axum::extract::{Multipart, State as AxumState};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use guichet_app::pieces::Upload;
use guichet_app::{App, Error as AppError};

fn unreadable(e: impl std::fmt::Display) -> PageError {
    tracing::debug!(erreur = %e, "envoi de pièce illisible");
    PageError::new(
        StatusCode::BAD_REQUEST,
        "envoi illisible ou interrompu : choisissez le fichier et recommencez",
    )
}

/// `POST /espace/dossiers/{id}/pieces`: the token, the document kind (`piece`), the file
/// (`fichier`).
pub async fn upload(
    AxumState(app): AxumState<App>,
    ctx: Ctx,
    PagePath(id): PagePath<i64>,
    mut multipart: Multipart,
) -> Result<Response, PageError> {
    let u = super::depot::require_filer(&ctx, &dossier_href(id))?;
    let mut kind = String::new();
    let mut file: Option<(String, bytes::Bytes)> = None;
    while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
        match field.name() {
            Some("piece") => kind = field.text().await.map_err(unreadable)?,
            Some("fichier") => {
                let name = field.file_name().unwrap_or_default().to_string();
                let bytes = field.bytes().await.map_err(unreadable)?;
                file = Some((name, bytes));
            }
            _ => {}
        }
    }
    let result = match file {
        Some((name, bytes)) if !(name.is_empty() && bytes.is_empty()) => {
            app.pieces()
                .attach(
                    &u.principal,
                    id,
                    Upload {
                        kind: kind.trim(),
                        filename: &name,
                        bytes,
                    },
                )
                .await
        }
        _ => Err(AppError::Invalid("choisissez le fichier à joindre".into())),
    };
    match result {
        Ok(_) => Ok(
            Redirect::to(&format!("{}?etape=pieces&enregistre=1", dossier_href(id)))
                .into_response(),
        ),
        Err(e @ (AppError::Invalid(_) | AppError::NotFound(_))) => {
            Ok(show_step(&app, &ctx, u, id, "pieces", e.to_string())
                .await?
                .into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /espace/dossiers/{id}/pieces/{piece}/retirer`.
pub async fn remove(
    AxumState(app): AxumState<App>,
    ctx: Ctx,
    PagePath((id, piece)): PagePath<(i64, i64)>,
) -> Result<Response, PageError> {
    let u = super::depot::require_filer(&ctx, &dossier_href(id))?;
    match app.pieces().remove(&u.principal, id, piece).await {
        Ok(()) => Ok(
            Redirect::to(&format!("{}?etape=pieces&enregistre=1", dossier_href(id)))
                .into_response(),
        ),
        Err(e @ (AppError::Invalid(_) | AppError::NotFound(_))) => {
            Ok(show_step(&app, &ctx, u, id, "pieces", e.to_string())
                .await?
                .into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// `filename*` of RFC 6266: UTF-8, percent-encoded.
fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// `GET /dossiers/{id}/pieces/{piece}`: the document, as an attachment, for whoever may see
/// the dossier.
pub async fn download(
    AxumState(app): AxumState<App>,
    ctx: Ctx,
    PagePath((id, piece)): PagePath<(i64, i64)>,
) -> Result<Response, PageError> {
    let u = super::require_user(&ctx, &format!("/dossiers/{id}/pieces/{piece}"))?;
    let (row, bytes) = app.pieces().download(&u.principal, id, piece).await?;
    let mut r = Response::new(Body::from(bytes));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&row.media_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(v) = HeaderValue::from_str(&content_disposition(&row.filename)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(r)
}
