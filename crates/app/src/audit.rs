//! Writing and verifying the audit log.

use crate::clock::Clock;
use crate::error::{AppError, AppResult};
use guichet_domain::audit::ChainVerifier;
use guichet_storage::{audit as store, format_ts, parse_ts, Db};
use sqlx::AnyConnection;
use std::fmt;

/// Who did it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    User(i64),
    Cli,
    System,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::User(id) => write!(f, "user:{id}"),
            Actor::Cli => f.write_str("cli"),
            Actor::System => f.write_str("system"),
        }
    }
}

/// The key under which an entry made while serving a request records the request's identifier,
/// inside its `after` JSON (hashed with the rest of the entry, so the chain covers it; no
/// column needed).
pub const REQUEST_ID_KEY: &str = "requete";

/// `after`, with the identifier of the request being served (if any) added.
fn with_request_id(after: Option<&serde_json::Value>) -> Option<serde_json::Value> {
    let Some(id) = crate::request::current_id() else {
        return after.cloned();
    };
    let mut details = match after {
        Some(serde_json::Value::Object(map)) => map.clone(),
        Some(other) => {
            let mut map = serde_json::Map::new();
            map.insert("valeur".into(), other.clone());
            map
        }
        None => serde_json::Map::new(),
    };
    details.insert(REQUEST_ID_KEY.into(), serde_json::Value::String(id));
    Some(serde_json::Value::Object(details))
}

/// Appends an entry within the caller's transaction. Made while serving a request, the entry
/// carries the request's identifier (see [`REQUEST_ID_KEY`]).
#[allow(clippy::too_many_arguments)]
pub async fn record(
    conn: &mut AnyConnection,
    clock: &Clock,
    actor: Actor,
    action: &str,
    object_type: &str,
    object_id: &str,
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
) -> AppResult<i64> {
    let at = format_ts(clock.now());
    let actor = actor.to_string();
    let before = before.map(serde_json::Value::to_string);
    let after = with_request_id(after).map(|v| v.to_string());
    Ok(store::append(
        conn,
        &store::NewEntry {
            at: &at,
            actor: &actor,
            action,
            object_type,
            object_id,
            before: before.as_deref(),
            after: after.as_deref(),
        },
    )
    .await?)
}

/// The latest entries, newest first.
pub async fn latest(db: &Db, limit: i64) -> AppResult<Vec<guichet_domain::audit::AuditRecord>> {
    let mut conn = db.pool().acquire().await?;
    Ok(store::latest(&mut conn, limit).await?)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub checked: u64,
    pub head_seq: i64,
    pub head_hash: String,
}

/// Walks the whole chain page by page; any break is an error naming the entry.
pub async fn verify(db: &Db) -> AppResult<VerifyReport> {
    let walk = walk_chain(db, |_| {}).await?;
    if let Some(problem) = walk.problem {
        return Err(AppError::Conflict(problem));
    }
    Ok(VerifyReport {
        checked: walk.verifier.checked,
        head_seq: walk.head_seq,
        head_hash: walk.head_hash,
    })
}

/// What a walk over the whole chain found: the verifier at the last entry it accepted, the
/// head row, and the first problem (a broken link, or a head that is not the last entry).
struct ChainWalk {
    verifier: ChainVerifier,
    head_seq: i64,
    head_hash: String,
    problem: Option<String>,
}

/// Reads the chain page by page, checking each link and showing each entry read to `seen`;
/// stops at the first broken link.
async fn walk_chain(
    db: &Db,
    mut seen: impl FnMut(&guichet_domain::audit::AuditRecord),
) -> AppResult<ChainWalk> {
    let mut conn = db.pool().acquire().await?;
    let (head_seq, head_hash) = store::head(&mut *conn).await?;
    let mut verifier = ChainVerifier::default();
    let mut problem = None;
    let mut after = 0;
    'pages: loop {
        let page = store::page(&mut *conn, after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for r in &page {
            if let Err(b) = verifier.push(r) {
                problem = Some(format!("chaîne du journal rompue : {b}"));
                break 'pages;
            }
            seen(r);
        }
    }
    if problem.is_none() && (verifier.last_seq() != head_seq || verifier.last_hash() != head_hash) {
        problem = Some(format!(
            "chaîne du journal rompue : la tête enregistrée (entrée {head_seq}) ne correspond pas à la dernière entrée lue ({})",
            verifier.last_seq()
        ));
    }
    Ok(ChainWalk {
        verifier,
        head_seq,
        head_hash,
        problem,
    })
}

// ---------------------------------------------------------------------------------------------
// Anchoring: whoever can write the database can rewrite the chain (delete the last entries and
// move the head back, or recompute every hash after an edit). A checkpoint of the head (its
// sequence number, hash and time), signed with an ed25519 key the database does not hold and
// kept outside it, pins the chain as it was: `guichet audit verify --ancres DIR` then reports any
// truncation or rewrite of what a checkpoint saw. Entries written after the last checkpoint are
// only as safe as the database until the next one.

/// The first line of every signed text, naming the format.
const ANCHOR_FORMAT: &str = "guichet-ancre-v1";

/// The private key signing checkpoints (PKCS#8, PEM "PRIVATE KEY", as `openssl genpkey
/// -algorithm ed25519` or `guichet audit cle` write it).
pub struct AnchorKey {
    pair: ring::signature::Ed25519KeyPair,
}

impl std::fmt::Debug for AnchorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AnchorKey({})", self.public_hex())
    }
}

fn pem_body(text: &str, label: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let b64: String = text[start..stop].split_whitespace().collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

impl AnchorKey {
    /// Reads the key file named by `GUICHET_AUDIT_CLE`; start-up fails with a French message if
    /// it cannot.
    pub fn read(path: &std::path::Path) -> AppResult<AnchorKey> {
        let bad = |why: String| {
            AppError::Invalid(format!(
                "clé d’ancrage du journal {} (GUICHET_AUDIT_CLE) : {why}",
                path.display()
            ))
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let der = pem_body(&text, "PRIVATE KEY").ok_or_else(|| {
            bad("pas de bloc « PRIVATE KEY » PEM (créez-la avec « guichet audit cle »)".into())
        })?;
        AnchorKey::from_pkcs8(&der).map_err(bad)
    }

    fn from_pkcs8(der: &[u8]) -> Result<AnchorKey, String> {
        ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map(|pair| AnchorKey { pair })
            .map_err(|e| format!("clé ed25519 PKCS#8 illisible ({e})"))
    }

    /// A new key: its PEM text, to be written to a file only its owner reads.
    pub fn generate() -> AppResult<(AnchorKey, String)> {
        let rng = ring::rand::SystemRandom::new();
        let der = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("génération de clé : {e}")))?;
        let key = AnchorKey::from_pkcs8(der.as_ref())
            .map_err(|e| AppError::Internal(anyhow::anyhow!(e)))?;
        Ok((key, pem("PRIVATE KEY", der.as_ref())))
    }

    /// The public key, hex (what verifiers are given).
    pub fn public_hex(&self) -> String {
        use ring::signature::KeyPair;
        hex::encode(self.pair.public_key().as_ref())
    }

    fn sign(&self, text: &str) -> String {
        hex::encode(self.pair.sign(text.as_bytes()).as_ref())
    }
}

/// One checkpoint, as written to its file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Anchor {
    pub format: String,
    /// The head's sequence number and hash when the checkpoint was made.
    pub seq: i64,
    pub hash: String,
    /// When (stored timestamp form, UTC).
    pub at: String,
    /// The signer's public key, hex.
    pub cle: String,
    /// ed25519 signature of [`Anchor::signed_text`], hex.
    pub signature: String,
}

impl Anchor {
    fn signed_text(seq: i64, hash: &str, at: &str) -> String {
        format!("{ANCHOR_FORMAT}\n{seq}\n{hash}\n{at}\n")
    }

    /// Whether `public_key` (raw 32 bytes) signed this checkpoint.
    pub fn signed_by(&self, public_key: &[u8]) -> bool {
        let Ok(sig) = hex::decode(&self.signature) else {
            return false;
        };
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public_key)
            .verify(
                Anchor::signed_text(self.seq, &self.hash, &self.at).as_bytes(),
                &sig,
            )
            .is_ok()
    }

    fn file_name(&self) -> String {
        let stamp: String = self
            .at
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        format!("ancre-{:012}-{stamp}.json", self.seq)
    }
}

/// Parses a public key given as 64 hex digits, or a file holding them (`*.pub` beside the key).
pub fn parse_public_key(value: &str) -> AppResult<Vec<u8>> {
    let text = match std::fs::read_to_string(value) {
        Ok(t) => t,
        Err(_) => value.to_string(),
    };
    hex::decode(text.trim())
        .ok()
        .filter(|k| k.len() == 32)
        .ok_or_else(|| {
            AppError::Invalid(format!(
                "clé publique « {} » invalide : 64 chiffres hexadécimaux attendus (ou un fichier qui les contient)",
                value.trim()
            ))
        })
}

/// The checkpoints of a folder, oldest first; a file that does not parse is an error naming it.
pub fn read_anchors(dir: &std::path::Path) -> AppResult<Vec<(String, Anchor)>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        AppError::Invalid(format!(
            "dossier d’ancres {} illisible : {e}",
            dir.display()
        ))
    })?;
    let mut anchors = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| AppError::Invalid(format!("dossier d’ancres {} : {e}", dir.display())))?
            .path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !(name.starts_with("ancre-") && name.ends_with(".json")) {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| AppError::Invalid(format!("ancre {name} illisible : {e}")))?;
        let anchor: Anchor = serde_json::from_str(&text)
            .map_err(|e| AppError::Invalid(format!("ancre {name} mal formée : {e}")))?;
        anchors.push((name, anchor));
    }
    anchors.sort_by(|a, b| (a.1.seq, &a.1.at).cmp(&(b.1.seq, &b.1.at)));
    Ok(anchors)
}

/// The latest checkpoint of a folder (file names sort by sequence number, then time).
fn latest_anchor(dir: &std::path::Path) -> AppResult<Option<Anchor>> {
    let latest = std::fs::read_dir(dir)
        .map_err(|e| {
            AppError::Internal(anyhow::anyhow!("dossier d’ancres {} : {e}", dir.display()))
        })?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("ancre-") && n.ends_with(".json"))
        .max();
    let Some(name) = latest else { return Ok(None) };
    let text = std::fs::read_to_string(dir.join(&name))
        .map_err(|e| AppError::Internal(anyhow::anyhow!("ancre {name} : {e}")))?;
    Ok(serde_json::from_str(&text).ok())
}

/// Signs the chain's current head and writes it to the checkpoint folder (unless the latest
/// checkpoint there already holds this head); returns the checkpoint written, if any.
pub async fn write_anchor(app: &crate::App) -> AppResult<Option<Anchor>> {
    let key = app.audit_key.as_ref().ok_or_else(|| {
        AppError::Invalid(
            "aucune clé d’ancrage configurée (GUICHET_AUDIT_CLE) : créez-en une avec « guichet audit cle »".into(),
        )
    })?;
    let (seq, hash) = {
        let mut conn = app.db.pool().acquire().await?;
        store::head(&mut *conn).await?
    };
    let dir = &app.config.audit_anchor.dir;
    std::fs::create_dir_all(dir).map_err(|e| {
        AppError::Internal(anyhow::anyhow!("dossier d’ancres {} : {e}", dir.display()))
    })?;
    if let Some(last) = latest_anchor(dir)? {
        if last.seq == seq && last.hash == hash && last.cle == key.public_hex() {
            return Ok(None);
        }
    }
    let at = format_ts(app.clock.now());
    let anchor = Anchor {
        format: ANCHOR_FORMAT.into(),
        seq,
        signature: key.sign(&Anchor::signed_text(seq, &hash, &at)),
        hash,
        at,
        cle: key.public_hex(),
    };
    let text = serde_json::to_string_pretty(&anchor)
        .map_err(|e| AppError::Internal(anyhow::anyhow!(e)))?;
    // Written aside then renamed: a reader never sees half a file.
    let path = dir.join(anchor.file_name());
    let tmp = dir.join(format!(".{}.tmp", anchor.file_name()));
    std::fs::write(&tmp, &text)
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| AppError::Internal(anyhow::anyhow!("écriture de {} : {e}", path.display())))?;
    tracing::info!(entree = seq, fichier = %path.display(), "ancre du journal d’audit écrite");
    if let Some(to) = &app.config.audit_anchor.mail_to {
        let mut conn = app.db.pool().acquire().await?;
        app.enqueue(
            &mut conn,
            &crate::mail::PlainMail {
                to: to.clone(),
                subject: format!("Guichet : ancre du journal d’audit (entrée n° {seq})"),
                body: format!(
                    "Ancre signée du journal d’audit de Guichet, à conserver hors de la plateforme.\n\
                     Vérification : guichet audit verify --ancres DOSSIER (fichier {}).\n\n{text}\n",
                    anchor.file_name()
                ),
            },
        )
        .await?;
        app.wake_workers();
    }
    Ok(Some(anchor))
}

/// The periodic checkpoint job.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AnchorJob {}

impl crate::jobs::Job for AnchorJob {
    const KIND: &'static str = "audit.ancrage";
    const MAX_ATTEMPTS: i64 = 5;
}

pub(crate) fn register_jobs(r: &mut crate::jobs::Registry, app: &crate::App) {
    r.register(|app: crate::App, _: AnchorJob| async move {
        write_anchor(&app).await?;
        Ok(())
    });
    if app.audit_key.is_some() {
        r.every(
            chrono::Duration::minutes(i64::from(app.config.audit_anchor.every_minutes)),
            AnchorJob {},
        );
    }
}

/// What the checkpoints proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorReport {
    pub chain: VerifyReport,
    pub anchors: usize,
    /// The latest checkpoint: its sequence number and time.
    pub latest: Option<(i64, String)>,
}

/// Verifies the chain, then each checkpoint against it: signed by `public_key`, and the entry it
/// names still there with the hash it saw. Every problem is listed (`Err`).
pub async fn verify_with_anchors(
    db: &Db,
    anchors: &[(String, Anchor)],
    public_key: &[u8],
) -> AppResult<Result<AnchorReport, Vec<String>>> {
    let mut problems = Vec::new();
    let mut wanted: std::collections::HashMap<i64, Option<String>> =
        anchors.iter().map(|(_, a)| (a.seq, None)).collect();
    if let Some(h) = wanted.get_mut(&0) {
        *h = Some(guichet_domain::audit::GENESIS_HASH.to_string());
    }
    let walk = walk_chain(db, |r| {
        if let Some(h) = wanted.get_mut(&r.seq) {
            *h = Some(r.hash.clone());
        }
    })
    .await?;
    problems.extend(walk.problem);
    let (verifier, head_seq, head_hash) = (walk.verifier, walk.head_seq, walk.head_hash);
    let last_seq = verifier.last_seq();
    for (name, a) in anchors {
        let when = parse_ts(&a.at)
            .map(|t| {
                t.with_timezone(&chrono_tz::Europe::Paris)
                    .format("%d/%m/%Y %H:%M")
                    .to_string()
            })
            .unwrap_or_else(|| a.at.clone());
        if a.format != ANCHOR_FORMAT || !a.signed_by(public_key) {
            problems.push(format!(
                "ancre {name} : signature invalide pour la clé publique donnée (ancre falsifiée ou autre clé)"
            ));
            continue;
        }
        match wanted.get(&a.seq).cloned().flatten() {
            None if a.seq > last_seq => problems.push(format!(
                "troncature : l’ancre du {when} ({name}) atteste l’entrée n° {} ; le journal s’arrête à l’entrée n° {last_seq}",
                a.seq
            )),
            None => problems.push(format!(
                "entrée n° {} attestée par l’ancre du {when} ({name}) introuvable",
                a.seq
            )),
            Some(h) if h != a.hash => problems.push(format!(
                "réécriture : l’entrée n° {} n’a plus l’empreinte attestée par l’ancre du {when} ({name}) : {} au lieu de {}",
                a.seq,
                &h[..12.min(h.len())],
                &a.hash[..12.min(a.hash.len())]
            )),
            Some(_) => {}
        }
    }
    if !problems.is_empty() {
        return Ok(Err(problems));
    }
    Ok(Ok(AnchorReport {
        chain: VerifyReport {
            checked: verifier.checked,
            head_seq,
            head_hash,
        },
        anchors: anchors.len(),
        latest: anchors.last().map(|(_, a)| (a.seq, a.at.clone())),
    }))
}

/// The audit log as its readers see it (`app.audit()`); writing goes through [`record`] in the
/// writer's transaction.
#[derive(Clone, Copy)]
pub struct Audit<'a> {
    pub(crate) app: &'a crate::App,
}

impl Audit<'_> {
    /// The latest entries of the audit log, newest first, for those who may read it.
    pub async fn log(
        &self,
        p: &guichet_domain::Principal,
        limit: i64,
    ) -> AppResult<Vec<guichet_domain::audit::AuditRecord>> {
        if !p.scope().can(guichet_domain::Action::ReadAuditLog) {
            return Err(crate::error::AppError::Forbidden);
        }
        latest(&self.app.db, limit).await
    }
}
