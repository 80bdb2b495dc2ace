//! Attached documents (`app.pieces()`): a quote, a council deliberation, invoices… Each is
//! checked (size, type read from the content, never from the name), named safely, stored once
//! under its SHA-256 in the blob store, and recorded with the dossier. Only the dossier's
//! agents attach or remove, while it is editable; whoever may see the dossier downloads.
//!
//! The blob store is `object_store`'s interface: a local folder by default, or an
//! S3-compatible bucket (`GUICHET_PIECES=s3://…`). Several instances share it as they share
//! the database.

use crate::audit::{self, Actor as AuditActor};
use crate::error::{AppError, AppResult};
use crate::App;
use bytes::Bytes;
use guichet_domain::dossier::State;
use guichet_domain::Principal;
pub use guichet_storage::pieces::PieceRow;
use guichet_storage::pieces::{self as store, NewPiece};
use object_store::{path::Path as BlobPath, ObjectStore, PutPayload};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// At most this many documents on one dossier.
pub const MAX_PIECES: usize = 50;
/// Longest kept file name, in characters (extension included).
const MAX_NAME_CHARS: usize = 120;

/// A type of document accepted, read from the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub media_type: &'static str,
    pub extension: &'static str,
    pub label: &'static str,
}

/// What an attached document may be.
pub const ACCEPTED: [Accepted; 7] = [
    Accepted {
        media_type: "application/pdf",
        extension: "pdf",
        label: "PDF",
    },
    Accepted {
        media_type: "image/png",
        extension: "png",
        label: "PNG",
    },
    Accepted {
        media_type: "image/jpeg",
        extension: "jpg",
        label: "JPEG",
    },
    Accepted {
        media_type: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        extension: "docx",
        label: "Word (DOCX)",
    },
    Accepted {
        media_type: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        extension: "xlsx",
        label: "Excel (XLSX)",
    },
    Accepted {
        media_type: "application/vnd.oasis.opendocument.text",
        extension: "odt",
        label: "OpenDocument texte (ODT)",
    },
    Accepted {
        media_type: "application/vnd.oasis.opendocument.spreadsheet",
        extension: "ods",
        label: "OpenDocument tableur (ODS)",
    },
];

/// The accepted types in words, for messages and hints.
pub fn accepted_labels() -> String {
    ACCEPTED
        .iter()
        .map(|a| a.label)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The type of `bytes`, read from their content (magic numbers; for office files, the zip's
/// content), if it is one Guichet accepts.
pub fn sniff(bytes: &[u8]) -> Option<Accepted> {
    let kind = infer::get(bytes)?;
    ACCEPTED
        .iter()
        .copied()
        .find(|a| a.media_type == kind.mime_type())
}

/// A file name safe to store and to offer back: its last path component, letters, digits and
/// a few separators only (others become `_`), no leading dot, at most [`MAX_NAME_CHARS`], and
/// the extension of the type read from the content.
pub fn sanitise_filename(raw: &str, extension: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let stem = match base.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => base,
    };
    let mut cleaned = String::new();
    for c in stem.chars() {
        let keep = c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '(' | ')' | '.' | ',');
        let c = if keep && !c.is_control() { c } else { '_' };
        // One separator for a run of replaced characters.
        if c == '_' && cleaned.ends_with('_') {
            continue;
        }
        cleaned.push(c);
    }
    let cleaned = cleaned.trim_matches(|c: char| c == '.' || c == ' ' || c == '_');
    let room = MAX_NAME_CHARS.saturating_sub(extension.len() + 1);
    let stem: String = cleaned.chars().take(room).collect();
    let stem = stem.trim_end();
    let stem = if stem.is_empty() { "piece" } else { stem };
    format!("{stem}.{extension}")
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// The blob store: content under `sha256/<2 first digits>/<digest>`.
#[derive(Clone)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
}

fn blob_error(e: object_store::Error) -> AppError {
    AppError::Internal(anyhow::anyhow!("stockage des pièces : {e}"))
}

impl Blobs {
    /// From `GUICHET_PIECES`: a folder (created if absent), or `s3://bucket[/prefix]`.
    pub fn from_config(config: &crate::config::Config) -> AppResult<Blobs> {
        let target = config
            .pieces
            .clone()
            .unwrap_or_else(|| config.data_dir.join("pieces").display().to_string());
        let store: Arc<dyn ObjectStore> = if target.starts_with("s3://") {
            Arc::new(
                object_store::aws::AmazonS3Builder::from_env()
                    .with_url(&target)
                    .build()
                    .map_err(|e| {
                        AppError::Invalid(format!(
                            "GUICHET_PIECES : stockage S3 « {target} » inutilisable : {e}"
                        ))
                    })?,
            )
        } else {
            let dir = std::path::PathBuf::from(target.strip_prefix("file://").unwrap_or(&target));
            std::fs::create_dir_all(&dir).map_err(|e| {
                AppError::Invalid(format!(
                    "GUICHET_PIECES : dossier « {} » impossible à créer : {e}",
                    dir.display()
                ))
            })?;
            Arc::new(
                object_store::local::LocalFileSystem::new_with_prefix(&dir).map_err(|e| {
                    AppError::Invalid(format!(
                        "GUICHET_PIECES : dossier « {} » inutilisable : {e}",
                        dir.display()
                    ))
                })?,
            )
        };
        Ok(Blobs { store })
    }

    /// Any store (tests give an in-memory one).
    pub fn with_store(store: Arc<dyn ObjectStore>) -> Blobs {
        Blobs { store }
    }

    fn path(sha256: &str) -> BlobPath {
        BlobPath::from(format!("sha256/{}/{sha256}", &sha256[..2]))
    }

    /// Stores `bytes` under their digest, once: the same content uploaded twice is one blob.
    pub async fn put(&self, bytes: Bytes) -> AppResult<String> {
        let sha256 = hex(&Sha256::digest(&bytes));
        let path = Self::path(&sha256);
        match self.store.head(&path).await {
            Ok(_) => return Ok(sha256),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(blob_error(e)),
        }
        self.store
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(blob_error)?;
        Ok(sha256)
    }

    /// The content stored under `sha256`, checked against it.
    pub async fn get(&self, sha256: &str) -> AppResult<Bytes> {
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AppError::Inconsistent(format!(
                "empreinte de pièce invalide : « {sha256} »"
            )));
        }
        let bytes = self
            .store
            .get(&Self::path(sha256))
            .await
            .map_err(blob_error)?
            .bytes()
            .await
            .map_err(blob_error)?;
        if hex(&Sha256::digest(&bytes)) != sha256 {
            return Err(AppError::Inconsistent(format!(
                "la pièce {sha256} stockée ne correspond plus à son empreinte"
            )));
        }
        Ok(bytes)
    }
}

/// A document to attach, as received.
pub struct Upload<'a> {
    /// The form's document kind (`devis`…).
    pub kind: &'a str,
    pub filename: &'a str,
    pub bytes: Bytes,
}

/// Attached documents' use cases (`app.pieces()`).
#[derive(Clone, Copy)]
pub struct Pieces<'a> {
    pub(crate) app: &'a App,
}

impl Pieces<'_> {
    /// The dossier's current documents (for whoever may see the dossier).
    pub async fn list(&self, p: &Principal, dossier_id: i64) -> AppResult<Vec<PieceRow>> {
        self.app.dossiers().get(p, dossier_id).await?;
        Ok(store::current(&self.app.db, dossier_id).await?)
    }

    /// Attaches a document to an editable dossier, by one of its agents.
    pub async fn attach(
        &self,
        p: &Principal,
        dossier_id: i64,
        upload: Upload<'_>,
    ) -> AppResult<PieceRow> {
        let d = self.app.dossiers().get(p, dossier_id).await?;
        self.app.dossiers().require_applicant_of(p, &d.row)?;
        if !matches!(d.row.state, State::Brouillon | State::EnCorrection) {
            return Err(AppError::Invalid(format!(
                "un dossier à l’état « {} » ne reçoit plus de pièces",
                d.row.state.label()
            )));
        }
        let form = &self.app.programme.form;
        let asked = form
            .measure(&d.row.measure)
            .is_some_and(|m| m.documents.iter().any(|r| r.document == upload.kind));
        let Some(kind) = form
            .document(upload.kind)
            .filter(|k| asked || k.id == "autre")
        else {
            return Err(AppError::Invalid(format!(
                "type de pièce inconnu pour cette mesure : « {} »",
                upload.kind.chars().take(40).collect::<String>()
            )));
        };
        let size = upload.bytes.len();
        if size == 0 {
            return Err(AppError::Invalid(
                "le fichier est vide : choisissez le document à joindre".into(),
            ));
        }
        let max = self.app.config.upload_max_bytes;
        if size > max {
            return Err(AppError::Invalid(format!(
                "le fichier pèse {} Mo ; une pièce pèse {} Mo au plus",
                size.div_ceil(1024 * 1024),
                max / (1024 * 1024)
            )));
        }
        let Some(accepted) = sniff(&upload.bytes) else {
            return Err(AppError::Invalid(format!(
                "le contenu du fichier « {} » n’est pas d’un type accepté ({}), quel que soit son nom",
                sanitise_filename(upload.filename, "…").trim_end_matches(".…"),
                accepted_labels()
            )));
        };
        let current = store::current(&self.app.db, dossier_id).await?;
        if current.len() >= MAX_PIECES {
            return Err(AppError::Invalid(format!(
                "un dossier compte {MAX_PIECES} pièces au plus : retirez-en une d’abord"
            )));
        }
        let filename = sanitise_filename(upload.filename, accepted.extension);
        let sha256 = self.app.blobs.put(upload.bytes).await?;
        let now = self.app.now_ts();
        let mut tx = self.app.db.begin_write().await?;
        let id = store::insert(
            &mut *tx,
            &NewPiece {
                dossier_id,
                kind: &kind.id,
                filename: &filename,
                media_type: accepted.media_type,
                size: i64::try_from(size).unwrap_or(i64::MAX),
                sha256: &sha256,
                uploaded_by: p.user_id,
                at: &now,
            },
        )
        .await?;
        audit::record(
            &mut tx,
            &self.app.clock,
            AuditActor::User(p.user_id),
            "dossier.piece.ajout",
            "dossier",
            &dossier_id.to_string(),
            None,
            Some(&json!({
                "piece": id,
                "type": kind.id,
                "nom": filename,
                "taille": size,
                "sha256": sha256,
            })),
        )
        .await?;
        let row = store::find(&mut *tx, dossier_id, id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("pièce {id} introuvable")))?;
        tx.commit().await?;
        Ok(row)
    }

    /// Removes a document from an editable dossier (its record stays, marked; a frozen
    /// submission that listed it still reaches it).
    pub async fn remove(&self, p: &Principal, dossier_id: i64, piece_id: i64) -> AppResult<()> {
        let d = self.app.dossiers().get(p, dossier_id).await?;
        self.app.dossiers().require_applicant_of(p, &d.row)?;
        if !matches!(d.row.state, State::Brouillon | State::EnCorrection) {
            return Err(AppError::Invalid(format!(
                "un dossier à l’état « {} » ne se modifie plus",
                d.row.state.label()
            )));
        }
        let now = self.app.now_ts();
        let mut tx = self.app.db.begin_write().await?;
        if !store::remove(&mut *tx, dossier_id, piece_id, &now).await? {
            return Err(AppError::NotFound(format!(
                "pièce {piece_id} introuvable dans ce dossier"
            )));
        }
        audit::record(
            &mut tx,
            &self.app.clock,
            AuditActor::User(p.user_id),
            "dossier.piece.retrait",
            "dossier",
            &dossier_id.to_string(),
            Some(&json!({"piece": piece_id})),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A document and its content, for whoever may see the dossier.
    pub async fn download(
        &self,
        p: &Principal,
        dossier_id: i64,
        piece_id: i64,
    ) -> AppResult<(PieceRow, Bytes)> {
        self.app.dossiers().get(p, dossier_id).await?;
        let row = store::find(&self.app.db, dossier_id, piece_id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("pièce {piece_id} introuvable")))?;
        let bytes = self.app.blobs.get(&row.sha256).await?;
        Ok((row, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::{sanitise_filename, sniff};

    #[test]
    fn names_are_sanitised_and_take_the_contents_extension() {
        assert_eq!(sanitise_filename("devis.pdf", "pdf"), "devis.pdf");
        assert_eq!(sanitise_filename("../../etc/passwd", "pdf"), "passwd.pdf");
        assert_eq!(
            sanitise_filename("C:\\Users\\x\\Délibération n°12.PDF", "pdf"),
            "Délibération n_12.pdf"
        );
        assert_eq!(sanitise_filename("rapport.exe", "pdf"), "rapport.pdf");
        assert_eq!(sanitise_filename(".htaccess", "png"), "htaccess.png");
        assert_eq!(sanitise_filename("<script>.pdf", "pdf"), "script.pdf");
        assert_eq!(sanitise_filename("", "pdf"), "piece.pdf");
        let long = "a".repeat(500);
        assert_eq!(sanitise_filename(&long, "pdf").chars().count(), 120);
    }

    #[test]
    fn the_type_is_read_from_the_content() {
        assert_eq!(
            sniff(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj").map(|a| a.extension),
            Some("pdf")
        );
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").map(|a| a.extension),
            Some("png")
        );
        assert_eq!(sniff(b"<html><script>alert(1)</script>"), None);
        assert_eq!(sniff(b"MZ\x90\0\x03\0\0\0\x04\0\0\0"), None, "exécutable");
        assert_eq!(sniff(b"plain text"), None);
    }
}
