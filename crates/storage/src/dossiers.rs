//! Dossiers: the dossier row (its draft, and once submitted its number, instructing service and
//! the engine's verdict at filing), its territorial footprint, its frozen submissions, its
//! history and the numbering sequences.
//!
//! Storage persists what the application decided (`guichet_domain::dossier::transition`); it
//! never decides. State changes go through `sql::versioned_update` on the `version` column.

use crate::accounts::slug;
use crate::error::StorageError;
use crate::scope::Filter;
use crate::time::Timestamp;
use guichet_domain::access::{CollectiviteSet, ServiceSet};
use guichet_domain::dossier::State;
use guichet_domain::{CollectiviteKind, CollectiviteRef, DossierNumber};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Executor, Row};

/// A dossier as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DossierRow {
    pub id: i64,
    pub measure: String,
    pub state: State,
    pub version: i64,
    pub applicant: CollectiviteRef,
    pub created_by: i64,
    pub title: String,
    /// The draft's data as JSON text (the application's `DraftData`).
    pub data: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub number: Option<DossierNumber>,
    pub submitted_at: Option<Timestamp>,
    pub service_id: Option<i64>,
    /// The engine's verdict and bounds at filing, as JSON text.
    pub verdict: Option<String>,
    pub programme_version: Option<String>,
    /// The instructor's recorded proposal, as JSON text (`RecordedProposal`).
    pub proposal: Option<String>,
    pub granted_cents: Option<i64>,
    pub granted_rate_bp: Option<i64>,
}

/// The columns of a dossier row (alias `d`), as constant text for `concat!`.
macro_rules! dossier_cols {
    () => {
        "d.id, d.measure, d.state, d.version, d.applicant_kind, d.applicant_code, d.created_by, \
         d.title, d.data, d.created_at, d.updated_at, d.number, d.submitted_at, d.service_id, \
         d.verdict, d.programme_version, d.proposal, d.granted_cents, d.granted_rate_bp"
    };
}

fn dossier(r: &AnyRow) -> Result<DossierRow, sqlx::Error> {
    let number: Option<String> = r.try_get("number")?;
    let number = match number {
        None => None,
        Some(n) => Some(
            DossierNumber::parse(&n).map_err(|e| sqlx::Error::ColumnDecode {
                index: "number".into(),
                source: e.to_string().into(),
            })?,
        ),
    };
    Ok(DossierRow {
        id: r.try_get("id")?,
        measure: r.try_get("measure")?,
        state: slug(r, "state", |s| State::parse(s).ok())?,
        version: r.try_get("version")?,
        applicant: CollectiviteRef {
            kind: slug(r, "applicant_kind", |s| CollectiviteKind::parse(s).ok())?,
            code: r.try_get("applicant_code")?,
        },
        created_by: r.try_get("created_by")?,
        title: r.try_get("title")?,
        data: r.try_get("data")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        number,
        submitted_at: r.try_get("submitted_at")?,
        service_id: r.try_get("service_id")?,
        verdict: r.try_get("verdict")?,
        programme_version: r.try_get("programme_version")?,
        proposal: r.try_get("proposal")?,
        granted_cents: r.try_get("granted_cents")?,
        granted_rate_bp: r.try_get("granted_rate_bp")?,
    })
}

/// A new draft.
#[derive(Debug, Clone)]
pub struct NewDraft<'a> {
    pub measure: &'a str,
    pub applicant: &'a CollectiviteRef,
    pub created_by: i64,
    pub title: &'a str,
    pub data: &'a str,
    pub now: &'a str,
}

pub async fn insert_draft<'c>(
    e: impl Executor<'c, Database = Any>,
    d: &NewDraft<'_>,
) -> Result<i64, StorageError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO dossiers (measure, state, version, applicant_kind, applicant_code, created_by, \
         title, data, created_at, updated_at) VALUES ($1, $2, 0, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
    )
    .bind(d.measure)
    .bind(State::Brouillon.as_str())
    .bind(d.applicant.kind.slug())
    .bind(&d.applicant.code)
    .bind(d.created_by)
    .bind(d.title)
    .bind(d.data)
    .bind(d.now)
    .fetch_one(e)
    .await?;
    Ok(id)
}

/// A dossier by id, whoever asks (the application checks the scope with [`visible`]).
pub async fn find<'c>(
    e: impl Executor<'c, Database = Any>,
    id: i64,
) -> Result<Option<DossierRow>, StorageError> {
    let row = sqlx::query(concat!(
        "SELECT ",
        dossier_cols!(),
        " FROM dossiers d WHERE d.id = $1"
    ))
    .bind(id)
    .fetch_optional(e)
    .await?;
    Ok(row.as_ref().map(dossier).transpose()?)
}

/// A dossier by number.
pub async fn find_by_number<'c>(
    e: impl Executor<'c, Database = Any>,
    number: &DossierNumber,
) -> Result<Option<DossierRow>, StorageError> {
    let row = sqlx::query(concat!(
        "SELECT ",
        dossier_cols!(),
        " FROM dossiers d WHERE d.number = $1"
    ))
    .bind(number.to_string())
    .fetch_optional(e)
    .await?;
    Ok(row.as_ref().map(dossier).transpose()?)
}

/// Who may see which dossiers, as the application decided from the principal's scope: the
/// dossiers instructed by a service of `services`, or filed by a collectivité of
/// `collectivites` (placed with the referential of `vintage`).
#[derive(Debug, Clone)]
pub struct Visibility<'a> {
    pub services: &'a ServiceSet,
    pub collectivites: &'a CollectiviteSet,
    pub vintage: i64,
}

/// The `WHERE` condition of a visibility, on the dossier `d` (joined to its service `s`).
fn visibility_condition(f: &mut Filter, v: &Visibility<'_>) -> String {
    let services = f.services(v.services, "s");
    let collectivites = f.collectivites(
        v.collectivites,
        "d.applicant_kind",
        "d.applicant_code",
        v.vintage,
    );
    format!("((d.service_id IS NOT NULL AND {services}) OR {collectivites})")
}

/// Whether the dossier `id` is visible.
pub async fn visible(
    conn: &mut AnyConnection,
    id: i64,
    v: &Visibility<'_>,
) -> Result<bool, StorageError> {
    let mut f = Filter::starting_at(2);
    let cond = visibility_condition(&mut f, v);
    let sql = format!(
        "SELECT COUNT(*) FROM dossiers d LEFT JOIN services s ON s.id = d.service_id \
         WHERE d.id = $1 AND {cond}"
    );
    let n: i64 = f
        .bind_scalar(sqlx::query_scalar(&sql).bind(id))
        .fetch_one(&mut *conn)
        .await?;
    Ok(n > 0)
}

/// Simple filters of a dossier list (the full queue comes later).
#[derive(Debug, Clone, Default)]
pub struct ListFilter<'a> {
    pub state: Option<State>,
    pub measure: Option<&'a str>,
    /// Only dossiers whose footprint touches this département.
    pub departement: Option<&'a str>,
    /// Pagination: dossiers with a greater id only.
    pub after_id: Option<i64>,
    pub limit: i64,
}

/// The visible dossiers matching `filter`, by id, at most `filter.limit`.
pub async fn list_in(
    conn: &mut AnyConnection,
    v: &Visibility<'_>,
    filter: &ListFilter<'_>,
) -> Result<Vec<DossierRow>, StorageError> {
    // The list's own parameters first: $1 state, $2 measure, $3 département, $4 after, $5 limit
    // (NULL meaning "any").
    let mut f = Filter::starting_at(6);
    let cond = visibility_condition(&mut f, v);
    let sql = format!(
        concat!(
            "SELECT ",
            dossier_cols!(),
            " FROM dossiers d LEFT JOIN services s ON s.id = d.service_id \
             WHERE ($1 IS NULL OR d.state = $1) AND ($2 IS NULL OR d.measure = $2) \
             AND ($3 IS NULL OR EXISTS (SELECT 1 FROM dossier_territories t \
                  WHERE t.dossier_id = d.id AND t.kind = 'departement' AND t.code = $3)) \
             AND d.id > COALESCE($4, 0) AND {} ORDER BY d.id LIMIT $5"
        ),
        cond
    );
    let q = sqlx::query(&sql)
        .bind(filter.state.map(State::as_str))
        .bind(filter.measure)
        .bind(filter.departement)
        .bind(filter.after_id)
        .bind(filter.limit);
    let rows = f.bind(q).fetch_all(&mut *conn).await?;
    Ok(rows.iter().map(dossier).collect::<Result<_, _>>()?)
}

/// The next sequence number for (prefix, territory, year): one atomic upsert, in the
/// submitting transaction. Concurrent submitters of the same key queue on its row (PostgreSQL)
/// or on the write lock (SQLite); a submission that rolls back gives its number back.
pub async fn next_sequence<'c>(
    e: impl Executor<'c, Database = Any>,
    prefix: &str,
    territory: &str,
    year: i64,
) -> Result<i64, StorageError> {
    let last: i64 = sqlx::query_scalar(
        "INSERT INTO dossier_sequences (prefix, territory, year, last) VALUES ($1, $2, $3, 1) \
         ON CONFLICT (prefix, territory, year) DO UPDATE SET last = dossier_sequences.last + 1 \
         RETURNING last",
    )
    .bind(prefix)
    .bind(territory)
    .bind(year)
    .fetch_one(e)
    .await?;
    Ok(last)
}

/// Records a dossier's footprint (replacing any earlier one).
pub async fn set_territories(
    conn: &mut AnyConnection,
    dossier_id: i64,
    departements: &[String],
    regions: &[String],
) -> Result<(), StorageError> {
    sqlx::query("DELETE FROM dossier_territories WHERE dossier_id = $1")
        .bind(dossier_id)
        .execute(&mut *conn)
        .await?;
    for (kind, codes) in [("departement", departements), ("region", regions)] {
        for code in codes {
            sqlx::query(
                "INSERT INTO dossier_territories (dossier_id, kind, code) VALUES ($1, $2, $3)",
            )
            .bind(dossier_id)
            .bind(kind)
            .bind(code)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// A dossier's footprint: (départements, régions).
pub async fn territories<'c>(
    e: impl Executor<'c, Database = Any>,
    dossier_id: i64,
) -> Result<(Vec<String>, Vec<String>), StorageError> {
    let rows = sqlx::query(
        "SELECT kind, code FROM dossier_territories WHERE dossier_id = $1 ORDER BY kind, code",
    )
    .bind(dossier_id)
    .fetch_all(e)
    .await?;
    let (mut deps, mut regs) = (Vec::new(), Vec::new());
    for r in rows {
        let kind: String = r.try_get("kind")?;
        let code: String = r.try_get("code")?;
        if kind == "region" {
            regs.push(code);
        } else {
            deps.push(code);
        }
    }
    Ok((deps, regs))
}

/// Freezes a submission as the dossier's next version; returns its number (1 for the first).
pub async fn insert_version<'c>(
    e: impl Executor<'c, Database = Any>,
    dossier_id: i64,
    snapshot: &str,
    at: &str,
) -> Result<i64, StorageError> {
    let v: i64 = sqlx::query_scalar(
        "INSERT INTO dossier_versions (dossier_id, version, snapshot, submitted_at) \
         SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3 FROM dossier_versions WHERE dossier_id = $1 \
         RETURNING version",
    )
    .bind(dossier_id)
    .bind(snapshot)
    .bind(at)
    .fetch_one(e)
    .await?;
    Ok(v)
}

/// A frozen submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRow {
    pub version: i64,
    pub snapshot: String,
    pub submitted_at: Timestamp,
}

pub async fn versions<'c>(
    e: impl Executor<'c, Database = Any>,
    dossier_id: i64,
) -> Result<Vec<VersionRow>, StorageError> {
    let rows = sqlx::query(
        "SELECT version, snapshot, submitted_at FROM dossier_versions WHERE dossier_id = $1 ORDER BY version",
    )
    .bind(dossier_id)
    .fetch_all(e)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(VersionRow {
                version: r.try_get("version")?,
                snapshot: r.try_get("snapshot")?,
                submitted_at: r.try_get("submitted_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// A history line to write.
#[derive(Debug, Clone)]
pub struct NewHistory<'a> {
    pub dossier_id: i64,
    pub from: Option<State>,
    pub to: State,
    pub event: &'a str,
    pub actor: &'a str,
    pub message: Option<&'a str>,
    pub amount_cents: Option<i64>,
    pub rate_bp: Option<i64>,
    pub at: &'a str,
}

pub async fn insert_history<'c>(
    e: impl Executor<'c, Database = Any>,
    h: &NewHistory<'_>,
) -> Result<i64, StorageError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO dossier_history (dossier_id, from_state, to_state, event, actor, message, \
         amount_cents, rate_bp, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(h.dossier_id)
    .bind(h.from.map(State::as_str))
    .bind(h.to.as_str())
    .bind(h.event)
    .bind(h.actor)
    .bind(h.message)
    .bind(h.amount_cents)
    .bind(h.rate_bp)
    .bind(h.at)
    .fetch_one(e)
    .await?;
    Ok(id)
}

/// A history line as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub id: i64,
    pub from: Option<State>,
    pub to: State,
    pub event: String,
    pub actor: String,
    pub message: Option<String>,
    pub amount_cents: Option<i64>,
    pub rate_bp: Option<i64>,
    pub at: Timestamp,
}

pub async fn history<'c>(
    e: impl Executor<'c, Database = Any>,
    dossier_id: i64,
) -> Result<Vec<HistoryRow>, StorageError> {
    let rows = sqlx::query(
        "SELECT id, from_state, to_state, event, actor, message, amount_cents, rate_bp, at \
         FROM dossier_history WHERE dossier_id = $1 ORDER BY id",
    )
    .bind(dossier_id)
    .fetch_all(e)
    .await?;
    rows.iter()
        .map(|r| {
            let from: Option<String> = r.try_get("from_state")?;
            let from = match from {
                None => None,
                Some(_) => Some(slug(r, "from_state", |s| State::parse(s).ok())?),
            };
            Ok(HistoryRow {
                id: r.try_get("id")?,
                from,
                to: slug(r, "to_state", |s| State::parse(s).ok())?,
                event: r.try_get("event")?,
                actor: r.try_get("actor")?,
                message: r.try_get("message")?,
                amount_cents: r.try_get("amount_cents")?,
                rate_bp: r.try_get("rate_bp")?,
                at: r.try_get("at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// The sum granted to accepted dossiers of a measure, in cents.
pub async fn granted_sum<'c>(
    e: impl Executor<'c, Database = Any>,
    measure: &str,
) -> Result<i64, StorageError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(granted_cents), 0) AS BIGINT) FROM dossiers \
         WHERE measure = $1 AND state = 'accepte'",
    )
    .bind(measure)
    .fetch_one(e)
    .await?;
    Ok(n)
}

/// How many dossiers of a collectivité for a measure were accepted, leaving one out (the
/// dossier being judged).
pub async fn accepted_count<'c>(
    e: impl Executor<'c, Database = Any>,
    applicant: &CollectiviteRef,
    measure: &str,
    except_id: i64,
) -> Result<i64, StorageError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM dossiers WHERE applicant_kind = $1 AND applicant_code = $2 \
         AND measure = $3 AND state = 'accepte' AND id <> $4",
    )
    .bind(applicant.kind.slug())
    .bind(&applicant.code)
    .bind(measure)
    .bind(except_id)
    .fetch_one(e)
    .await?;
    Ok(n)
}
