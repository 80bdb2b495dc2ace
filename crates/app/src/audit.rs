//! Writing and verifying the audit log.

use crate::clock::Clock;
use crate::error::{AppError, AppResult};
use guichet_domain::audit::ChainVerifier;
use guichet_storage::{audit as store, format_ts, Db};
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

/// Appends an entry within the caller's transaction.
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
    let after = after.map(serde_json::Value::to_string);
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
    let mut conn = db.pool().acquire().await?;
    let (head_seq, head_hash) = store::head(&mut conn).await?;
    let mut verifier = ChainVerifier::default();
    let mut after = 0;
    loop {
        let page = store::page(&mut conn, after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for r in &page {
            verifier
                .push(r)
                .map_err(|b| AppError::Conflict(format!("chaîne du journal rompue : {b}")))?;
        }
    }
    if verifier.last_seq() != head_seq || verifier.last_hash() != head_hash {
        return Err(AppError::Conflict(format!(
            "chaîne du journal rompue : la tête enregistrée (entrée {head_seq}) ne correspond pas à la dernière entrée lue ({})",
            verifier.last_seq()
        )));
    }
    Ok(VerifyReport {
        checked: verifier.checked,
        head_seq,
        head_hash,
    })
}

impl crate::App {
    /// The latest entries of the audit log, newest first, for those who may read it.
    pub async fn audit_log(
        &self,
        p: &guichet_domain::Principal,
        limit: i64,
    ) -> AppResult<Vec<guichet_domain::audit::AuditRecord>> {
        if !p.scope().can(guichet_domain::Action::ReadAuditLog) {
            return Err(crate::error::AppError::Forbidden);
        }
        latest(&self.db, limit).await
    }
}
