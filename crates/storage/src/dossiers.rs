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
/// Written on the dossier's own columns (`service_id`, the applicant's), so that the indexes
/// on them serve; a side that can see nothing is left out of the `OR` rather than written as a
/// false term (which keeps the planners from using the other side's index).
fn visibility_condition(f: &mut Filter, v: &Visibility<'_>) -> String {
    let services = f.service_ids(v.services, "d.service_id");
    let collectivites = f.collectivites(
        v.collectivites,
        "d.applicant_kind",
        "d.applicant_code",
        v.vintage,
    );
    match (services.as_str(), collectivites.as_str()) {
        (_, "1 = 1") => "1 = 1".into(),
        ("1 = 0", c) => format!("({c})"),
        (s, "1 = 0") => format!("({s})"),
        (s, c) => format!("(({s}) OR {c})"),
    }
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
        "SELECT COUNT(*) FROM dossiers d \
         WHERE d.id = $1 AND {cond}"
    );
    let n: i64 = f
        .bind_scalar(sqlx::query_scalar(&sql).bind(id))
        .fetch_one(&mut *conn)
        .await?;
    Ok(n > 0)
}

/// Filters of a dossier list (the instruction queue's tabs and filters).
#[derive(Debug, Clone, Default)]
pub struct ListFilter<'a> {
    pub state: Option<State>,
    /// Only dossiers in one of these states (any state when empty), beside `state`.
    pub states: &'a [State],
    pub measure: Option<&'a str>,
    /// Only dossiers whose footprint touches this département.
    pub departement: Option<&'a str>,
    /// Pagination: dossiers with a greater id only.
    pub after_id: Option<i64>,
    pub limit: i64,
    /// Only the dossiers this account follows (the « Suivis » tab).
    pub followed_by: Option<i64>,
    /// Only the dossiers assigned to this account.
    pub assigned_to: Option<i64>,
    /// Only the dossiers with this label.
    pub label: Option<&'a str>,
}

impl ListFilter<'_> {
    /// The follow, label and assignment conditions, with their parameters from `f`: written
    /// `d.id IN (…)` so that the few followed (labelled, assigned) dossiers drive the query
    /// through their own index, rather than every dossier being probed (an `EXISTS` made
    /// SQLite count a national administrator's followed dossiers by scanning all 100,000).
    fn personal(&self, f: &mut Filter) -> String {
        let mut out = String::new();
        if let Some(u) = self.followed_by {
            let p = f.int(u);
            out.push_str(&format!(
                " AND d.id IN (SELECT w.dossier_id FROM dossier_follows w WHERE w.user_id = {p})"
            ));
        }
        if let Some(l) = self.label {
            let p = f.text_param(l);
            out.push_str(&format!(
                " AND d.id IN (SELECT y.dossier_id FROM dossier_labels y WHERE y.label = {p})"
            ));
        }
        if let Some(u) = self.assigned_to {
            let p = f.int(u);
            out.push_str(&format!(
                " AND d.id IN (SELECT x.dossier_id FROM dossier_assignments x WHERE x.user_id = {p})"
            ));
        }
        out
    }
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
    let slugs: Vec<&str> = filter.states.iter().map(|s| s.as_str()).collect();
    // `d.state || ''`: the states filter rows, they do not pick the index. Through the
    // (state, service) index both planners would gather every dossier of a tab's states and
    // sort them by id for a page of 50 (1 s at 100,000 dossiers on SQLite); walking the ids
    // (or the service's index) stops after the page.
    let states = f.text_in("(d.state || '')", &slugs);
    let cond = visibility_condition(&mut f, v);
    let personal = filter.personal(&mut f);
    let sql = format!(
        concat!(
            "SELECT ",
            dossier_cols!(),
            " FROM dossiers d \
             WHERE ($1 IS NULL OR d.state = $1) AND ($2 IS NULL OR d.measure = $2) \
             AND ($3 IS NULL OR EXISTS (SELECT 1 FROM dossier_territories t \
                  WHERE t.dossier_id = d.id AND t.kind = 'departement' AND t.code = $3)) \
             AND d.id > COALESCE($4, 0) AND {} AND {}{} ORDER BY d.id LIMIT $5"
        ),
        states, cond, personal
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

/// How many visible dossiers match `filter` in each state (its states and pagination
/// ignored: the counts of a queue's tabs), states without dossiers left out.
pub async fn count_by_state(
    conn: &mut AnyConnection,
    v: &Visibility<'_>,
    filter: &ListFilter<'_>,
) -> Result<Vec<(State, i64)>, StorageError> {
    // $1 measure, $2 département (NULL meaning "any").
    let mut f = Filter::starting_at(3);
    let cond = visibility_condition(&mut f, v);
    let personal = filter.personal(&mut f);
    let sql = format!(
        "SELECT d.state, COUNT(*) AS n FROM dossiers d \
         WHERE ($1 IS NULL OR d.measure = $1) \
         AND ($2 IS NULL OR EXISTS (SELECT 1 FROM dossier_territories t \
              WHERE t.dossier_id = d.id AND t.kind = 'departement' AND t.code = $2)) \
         AND {cond}{personal} GROUP BY d.state"
    );
    let q = sqlx::query(&sql)
        .bind(filter.measure)
        .bind(filter.departement);
    let rows = f.bind(q).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|r| Ok((slug(r, "state", |s| State::parse(s).ok())?, r.try_get("n")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
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

/// A history line after the filing: (from, to, event, message, amount, rate).
pub type SeededStep = (
    State,
    State,
    &'static str,
    Option<String>,
    Option<i64>,
    Option<i64>,
);

/// A dossier written whole by the demo seed (`guichet demo seed`): a filed dossier with its
/// footprint, its frozen submission and its history, as the use cases would have left it.
#[derive(Debug, Clone)]
pub struct SeededDossier {
    pub measure: String,
    pub state: State,
    pub applicant: CollectiviteRef,
    pub created_by: i64,
    pub title: String,
    pub data: String,
    pub number: String,
    pub submitted_at: String,
    pub updated_at: String,
    pub service_id: i64,
    pub verdict: String,
    pub programme_version: String,
    pub proposal: Option<String>,
    pub granted_cents: Option<i64>,
    pub granted_rate_bp: Option<i64>,
    pub departements: Vec<String>,
    pub regions: Vec<String>,
    pub snapshot: String,
    /// History lines after the filing: (from, to, event, message, amount, rate).
    pub history: Vec<SeededStep>,
}

/// Dossiers per multi-row `INSERT`. Small on purpose: sqlx's SQLite driver finds each `$n` by
/// its name among the statement's parameters, so binding costs grow with the square of their
/// number (at 400 dossiers a statement, 72 % of the seed's time went to
/// `sqlite3_bind_parameter_name`; see docs/architecture.md on binding cost).
const SEED_BATCH: usize = 32;

/// Writes seeded dossiers in the caller's write transaction, with explicit ids following the
/// greatest one (the transaction holds the write lock: SQLite's single writer, PostgreSQL's
/// advisory lock taken here), then moves PostgreSQL's id sequence past them.
pub async fn insert_seeded(
    conn: &mut AnyConnection,
    backend: crate::Backend,
    dossiers: &[SeededDossier],
) -> Result<(), StorageError> {
    if backend == crate::Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(7205001)")
            .execute(&mut *conn)
            .await?;
    }
    let max: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM dossiers")
        .fetch_one(&mut *conn)
        .await?;
    let first = max.unwrap_or(0) + 1;
    for (b, chunk) in dossiers.chunks(SEED_BATCH).enumerate() {
        let base = first + (b * SEED_BATCH) as i64;
        let mut sql = String::from(
            "INSERT INTO dossiers (id, measure, state, version, applicant_kind, applicant_code, created_by, title, data, created_at, updated_at, number, submitted_at, service_id, verdict, programme_version, proposal, granted_cents, granted_rate_bp) VALUES ",
        );
        for i in 0..chunk.len() {
            let p = i * 18;
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, 2, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                p + 1, p + 2, p + 3, p + 4, p + 5, p + 6, p + 7, p + 8, p + 9, p + 10, p + 11,
                p + 12, p + 13, p + 14, p + 15, p + 16, p + 17, p + 18
            ));
        }
        let mut q = sqlx::query(&sql);
        for (i, d) in chunk.iter().enumerate() {
            q = q
                .bind(base + i as i64)
                .bind(d.measure.as_str())
                .bind(d.state.as_str())
                .bind(d.applicant.kind.slug())
                .bind(d.applicant.code.as_str())
                .bind(d.created_by)
                .bind(d.title.as_str())
                .bind(d.data.as_str())
                .bind(d.submitted_at.as_str())
                .bind(d.updated_at.as_str())
                .bind(d.number.as_str())
                .bind(d.submitted_at.as_str())
                .bind(d.service_id)
                .bind(d.verdict.as_str())
                .bind(d.programme_version.as_str())
                .bind(d.proposal.as_deref())
                .bind(d.granted_cents)
                .bind(d.granted_rate_bp);
        }
        q.execute(&mut *conn).await?;
        // Footprints, frozen submissions, history: one statement each per batch.
        let mut terr =
            String::from("INSERT INTO dossier_territories (dossier_id, kind, code) VALUES ");
        let mut binds: Vec<(i64, &str, &str)> = Vec::new();
        for (i, d) in chunk.iter().enumerate() {
            for dep in &d.departements {
                binds.push((base + i as i64, "departement", dep.as_str()));
            }
            for reg in &d.regions {
                binds.push((base + i as i64, "region", reg.as_str()));
            }
        }
        if !binds.is_empty() {
            for i in 0..binds.len() {
                if i > 0 {
                    terr.push(',');
                }
                terr.push_str(&format!("(${}, ${}, ${})", i * 3 + 1, i * 3 + 2, i * 3 + 3));
            }
            let mut q = sqlx::query(&terr);
            for (id, kind, code) in &binds {
                q = q.bind(*id).bind(*kind).bind(*code);
            }
            q.execute(&mut *conn).await?;
        }
        let mut ver = String::from(
            "INSERT INTO dossier_versions (dossier_id, version, snapshot, submitted_at) VALUES ",
        );
        for i in 0..chunk.len() {
            if i > 0 {
                ver.push(',');
            }
            ver.push_str(&format!(
                "(${}, 1, ${}, ${})",
                i * 3 + 1,
                i * 3 + 2,
                i * 3 + 3
            ));
        }
        let mut q = sqlx::query(&ver);
        for (i, d) in chunk.iter().enumerate() {
            q = q
                .bind(base + i as i64)
                .bind(d.snapshot.as_str())
                .bind(d.submitted_at.as_str());
        }
        q.execute(&mut *conn).await?;
        let mut hist = String::from(
            "INSERT INTO dossier_history (dossier_id, from_state, to_state, event, actor, message, amount_cents, rate_bp, at) VALUES ",
        );
        let mut n = 0;
        for d in chunk {
            for _ in 0..=d.history.len() {
                if n > 0 {
                    hist.push(',');
                }
                let p = n * 9;
                hist.push_str(&format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5,
                    p + 6,
                    p + 7,
                    p + 8,
                    p + 9
                ));
                n += 1;
            }
        }
        let mut q = sqlx::query(&hist);
        for (i, d) in chunk.iter().enumerate() {
            let id = base + i as i64;
            q = q
                .bind(id)
                .bind(State::Brouillon.as_str())
                .bind(State::Depose.as_str())
                .bind("depot")
                .bind("demo")
                .bind(None::<String>)
                .bind(None::<i64>)
                .bind(None::<i64>)
                .bind(d.submitted_at.as_str());
            for (from, to, event, message, amount, rate) in &d.history {
                q = q
                    .bind(id)
                    .bind(from.as_str())
                    .bind(to.as_str())
                    .bind(*event)
                    .bind("demo")
                    .bind(message.clone())
                    .bind(*amount)
                    .bind(*rate)
                    .bind(d.updated_at.as_str());
            }
        }
        q.execute(&mut *conn).await?;
    }
    if backend == crate::Backend::Postgres {
        sqlx::query(
            "SELECT setval(pg_get_serial_sequence('dossiers', 'id'), (SELECT MAX(id) FROM dossiers))",
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Moves a numbering sequence to `last` (the seed hands out numbers in memory, then records
/// the last one so that the next real submission follows it).
pub async fn set_sequence(
    conn: &mut AnyConnection,
    prefix: &str,
    territory: &str,
    year: i64,
    last: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO dossier_sequences (prefix, territory, year, last) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (prefix, territory, year) DO UPDATE SET last = $4",
    )
    .bind(prefix)
    .bind(territory)
    .bind(year)
    .bind(last)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The last number handed out for (prefix, territory, year), 0 when none.
pub async fn sequence_last(
    conn: &mut AnyConnection,
    prefix: &str,
    territory: &str,
    year: i64,
) -> Result<i64, StorageError> {
    let last: Option<i64> = sqlx::query_scalar(
        "SELECT last FROM dossier_sequences WHERE prefix = $1 AND territory = $2 AND year = $3",
    )
    .bind(prefix)
    .bind(territory)
    .bind(year)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(last.unwrap_or(0))
}

/// After a bulk load (the demo seed): fresh statistics for the planners. Outside a transaction.
pub async fn analyze_after_bulk(db: &crate::Db) -> Result<(), StorageError> {
    let statements: &[&str] = match db.backend() {
        crate::Backend::Sqlite => &["ANALYZE"],
        // Statistics only. `VACUUM (ANALYZE) dossiers` would give the national counts their
        // index-only scans at once (51 → 176 req/s measured) but made a 100,000-dossier seed
        // 12 s → 67–70 s, over its one-minute target; autovacuum sets the map later.
        crate::Backend::Postgres => &[
            "ANALYZE dossiers",
            "ANALYZE dossier_territories",
            "ANALYZE dossier_history",
            "ANALYZE dossier_versions",
        ],
    };
    let mut conn = db.acquire().await?;
    for s in statements {
        sqlx::query(s).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Follows (or stops following) a dossier.
pub async fn set_follow(
    conn: &mut AnyConnection,
    dossier_id: i64,
    user_id: i64,
    follow: bool,
    at: &str,
) -> Result<(), StorageError> {
    if follow {
        sqlx::query(
            "INSERT INTO dossier_follows (dossier_id, user_id, since) VALUES ($1, $2, $3) \
             ON CONFLICT (dossier_id, user_id) DO NOTHING",
        )
        .bind(dossier_id)
        .bind(user_id)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    } else {
        sqlx::query("DELETE FROM dossier_follows WHERE dossier_id = $1 AND user_id = $2")
            .bind(dossier_id)
            .bind(user_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub async fn follows<'c>(
    e: impl Executor<'c, Database = Any>,
    dossier_id: i64,
    user_id: i64,
) -> Result<bool, StorageError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM dossier_follows WHERE dossier_id = $1 AND user_id = $2",
    )
    .bind(dossier_id)
    .bind(user_id)
    .fetch_one(e)
    .await?;
    Ok(n > 0)
}

/// Assigns a dossier to an instructor (`None`: to no one).
pub async fn set_assignee(
    conn: &mut AnyConnection,
    dossier_id: i64,
    user_id: Option<i64>,
    by: i64,
    at: &str,
) -> Result<(), StorageError> {
    sqlx::query("DELETE FROM dossier_assignments WHERE dossier_id = $1")
        .bind(dossier_id)
        .execute(&mut *conn)
        .await?;
    if let Some(u) = user_id {
        sqlx::query(
            "INSERT INTO dossier_assignments (dossier_id, user_id, assigned_by, assigned_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(dossier_id)
        .bind(u)
        .bind(by)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn assignee<'c>(
    e: impl Executor<'c, Database = Any>,
    dossier_id: i64,
) -> Result<Option<i64>, StorageError> {
    Ok(
        sqlx::query_scalar("SELECT user_id FROM dossier_assignments WHERE dossier_id = $1")
            .bind(dossier_id)
            .fetch_optional(e)
            .await?,
    )
}

/// A private annotation: (id, author id, text, when).
pub type AnnotationRow = (i64, i64, String, Timestamp);

pub async fn insert_annotation<'c>(
    e: impl Executor<'c, Database = Any>,
    dossier_id: i64,
    author_id: i64,
    body: &str,
    at: &str,
) -> Result<i64, StorageError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO dossier_annotations (dossier_id, author_id, body, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(dossier_id)
    .bind(author_id)
    .bind(body)
    .bind(at)
    .fetch_one(e)
    .await?)
}

/// A dossier's annotations, oldest first.
pub async fn annotations<'c>(
    e: impl Executor<'c, Database = Any>,
    dossier_id: i64,
) -> Result<Vec<AnnotationRow>, StorageError> {
    let rows = sqlx::query(
        "SELECT id, author_id, body, created_at FROM dossier_annotations WHERE dossier_id = $1 ORDER BY id",
    )
    .bind(dossier_id)
    .fetch_all(e)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("id")?,
                r.try_get("author_id")?,
                r.try_get("body")?,
                r.try_get("created_at")?,
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Puts a label on a dossier (once), or takes it off.
pub async fn set_label(
    conn: &mut AnyConnection,
    dossier_id: i64,
    label: &str,
    on: bool,
    by: i64,
    at: &str,
) -> Result<(), StorageError> {
    if on {
        sqlx::query(
            "INSERT INTO dossier_labels (dossier_id, label, added_by, added_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (dossier_id, label) DO NOTHING",
        )
        .bind(dossier_id)
        .bind(label)
        .bind(by)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    } else {
        sqlx::query("DELETE FROM dossier_labels WHERE dossier_id = $1 AND label = $2")
            .bind(dossier_id)
            .bind(label)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// A dossier's labels, in alphabetical order.
pub async fn labels<'c>(
    e: impl Executor<'c, Database = Any>,
    dossier_id: i64,
) -> Result<Vec<String>, StorageError> {
    Ok(
        sqlx::query_scalar("SELECT label FROM dossier_labels WHERE dossier_id = $1 ORDER BY label")
            .bind(dossier_id)
            .fetch_all(e)
            .await?,
    )
}
