//! The territorial referential, one copy per vintage ("millésime"), side by side.

use crate::error::StorageError;
use crate::sql::{bind, render};
use sea_query::{Alias, Expr, Query, SimpleExpr, Value};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Executor, Row};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionRow {
    pub code: String,
    pub name: String,
    /// INSEE "type de nom en clair" (TNCC): which article the name takes (0–8).
    pub liaison: i64,
    pub population: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepartementRow {
    pub code: String,
    pub name: String,
    /// INSEE "type de nom en clair" (TNCC): which article the name takes (0–8).
    pub liaison: i64,
    pub region_code: String,
    pub population: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommuneRow {
    pub insee: String,
    pub name: String,
    /// Département code, or the overseas collectivité's code (975, 977, 978, 986–989).
    pub departement_code: String,
    /// None for the overseas collectivités (COM), which belong to no région.
    pub region_code: Option<String>,
    pub postcodes: Vec<String>,
    pub population: i64,
    pub siren: Option<String>,
    pub epci_siren: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpciRow {
    pub siren: String,
    pub name: String,
    pub epci_type: String,
    /// Sum of the member communes' populations of the same vintage (the figure rules use).
    pub population: i64,
    /// The figure printed in the source file (another census year), kept for information.
    pub population_source: Option<i64>,
}

/// A whole vintage, ready to be written.
#[derive(Debug, Default)]
pub struct VintageData {
    pub regions: Vec<RegionRow>,
    pub departements: Vec<DepartementRow>,
    pub communes: Vec<CommuneRow>,
    pub epci: Vec<EpciRow>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportInfo {
    pub vintage: i64,
    pub source: String,
    pub imported_at: String,
    pub communes: i64,
    pub epci: i64,
}

/// Rows per INSERT. Measured on the 2021 vintage (SQLite, release): 500 rows per statement took
/// 2.4 s to write, 100 took 0.6 s, 50 and 25 took 0.42 s (binding cost grows faster than
/// linearly with the parameter count), so 50 it is.
const ROWS_PER_STATEMENT: usize = 50;

/// Inserts rows in multi-row statements built with sea-query, reporting progress after each
/// chunk.
async fn insert_rows(
    conn: &mut AnyConnection,
    table: &'static str,
    cols: &[&'static str],
    rows: impl Iterator<Item = Vec<Value>>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(), StorageError> {
    let rows: Vec<Vec<Value>> = rows.collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        // sea-query's statements are not `Send`: built and rendered before any await.
        let (sql, values) = {
            let mut insert = Query::insert();
            insert
                .into_table(Alias::new(table))
                .columns(cols.iter().map(|c| Alias::new(*c)));
            for row in chunk {
                insert
                    .values(row.iter().cloned().map(SimpleExpr::from))
                    .map_err(|e| StorageError::Query(sqlx::Error::Protocol(e.to_string())))?;
            }
            render(&insert)
        };
        bind(sqlx::query(&sql), values)?.execute(&mut *conn).await?;
        progress(chunk.len() as u64);
    }
    Ok(())
}

fn int(i: i64) -> Value {
    Value::BigInt(Some(i))
}

fn text(t: &str) -> Value {
    Value::String(Some(Box::new(t.to_string())))
}

fn text_null(t: Option<&str>) -> Value {
    Value::String(t.map(|t| Box::new(t.to_string())))
}

/// Replaces a whole vintage within the caller's transaction (which records the import in the
/// audit log too): readers see the old one or the new one, never a mix, and running the same
/// import twice leaves the same rows.
pub async fn replace_vintage(
    conn: &mut AnyConnection,
    vintage: i64,
    source: &str,
    imported_at: &str,
    data: &VintageData,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(), StorageError> {
    for delete in [
        "DELETE FROM ref_communes WHERE vintage = $1",
        "DELETE FROM ref_epci WHERE vintage = $1",
        "DELETE FROM ref_departements WHERE vintage = $1",
        "DELETE FROM ref_regions WHERE vintage = $1",
    ] {
        sqlx::query(delete)
            .bind(vintage)
            .execute(&mut *conn)
            .await?;
    }
    insert_rows(
        &mut *conn,
        "ref_regions",
        &["vintage", "code", "name", "liaison", "population"],
        data.regions.iter().map(|r| {
            vec![
                int(vintage),
                text(&r.code),
                text(&r.name),
                int(r.liaison),
                int(r.population),
            ]
        }),
        progress,
    )
    .await?;
    insert_rows(
        &mut *conn,
        "ref_departements",
        &[
            "vintage",
            "code",
            "name",
            "liaison",
            "region_code",
            "population",
        ],
        data.departements.iter().map(|d| {
            vec![
                int(vintage),
                text(&d.code),
                text(&d.name),
                int(d.liaison),
                text(&d.region_code),
                int(d.population),
            ]
        }),
        progress,
    )
    .await?;
    insert_rows(
        &mut *conn,
        "ref_epci",
        &[
            "vintage",
            "siren",
            "name",
            "epci_type",
            "population",
            "population_source",
        ],
        data.epci.iter().map(|e| {
            vec![
                int(vintage),
                text(&e.siren),
                text(&e.name),
                text(&e.epci_type),
                int(e.population),
                match e.population_source {
                    Some(p) => int(p),
                    None => Value::BigInt(None),
                },
            ]
        }),
        progress,
    )
    .await?;
    insert_rows(
        &mut *conn,
        "ref_communes",
        &[
            "vintage",
            "insee",
            "name",
            "departement_code",
            "region_code",
            "postcodes",
            "population",
            "siren",
            "epci_siren",
        ],
        data.communes.iter().map(|c| {
            vec![
                int(vintage),
                text(&c.insee),
                text(&c.name),
                text(&c.departement_code),
                text_null(c.region_code.as_deref()),
                text(&c.postcodes.join(" ")),
                int(c.population),
                text_null(c.siren.as_deref()),
                text_null(c.epci_siren.as_deref()),
            ]
        }),
        progress,
    )
    .await?;
    sqlx::query(
        "INSERT INTO ref_imports (vintage, source, imported_at, communes, epci) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (vintage) DO UPDATE SET source = excluded.source, imported_at = excluded.imported_at, \
         communes = excluded.communes, epci = excluded.epci",
    )
    .bind(vintage)
    .bind(source)
    .bind(imported_at)
    .bind(data.communes.len() as i64)
    .bind(data.epci.len() as i64)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn imports<'c>(
    e: impl Executor<'c, Database = Any>,
) -> Result<Vec<ImportInfo>, StorageError> {
    let rows = sqlx::query(
        "SELECT vintage, source, imported_at, communes, epci FROM ref_imports ORDER BY vintage",
    )
    .fetch_all(e)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ImportInfo {
                vintage: r.try_get("vintage")?,
                source: r.try_get("source")?,
                imported_at: r.try_get("imported_at")?,
                communes: r.try_get("communes")?,
                epci: r.try_get("epci")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// The columns of a commune row, as constant text for `concat!`.
macro_rules! commune_cols {
    () => {
        "insee, name, departement_code, region_code, postcodes, population, siren, epci_siren"
    };
}

fn commune(r: &AnyRow) -> Result<CommuneRow, sqlx::Error> {
    let postcodes: String = r.try_get("postcodes")?;
    Ok(CommuneRow {
        insee: r.try_get("insee")?,
        name: r.try_get("name")?,
        departement_code: r.try_get("departement_code")?,
        region_code: r.try_get("region_code")?,
        postcodes: postcodes.split_whitespace().map(str::to_string).collect(),
        population: r.try_get("population")?,
        siren: r.try_get("siren")?,
        epci_siren: r.try_get("epci_siren")?,
    })
}

fn epci(r: &AnyRow) -> Result<EpciRow, sqlx::Error> {
    Ok(EpciRow {
        siren: r.try_get("siren")?,
        name: r.try_get("name")?,
        epci_type: r.try_get("epci_type")?,
        population: r.try_get("population")?,
        population_source: r.try_get("population_source")?,
    })
}

fn departement(r: &AnyRow) -> Result<DepartementRow, sqlx::Error> {
    Ok(DepartementRow {
        code: r.try_get("code")?,
        name: r.try_get("name")?,
        liaison: r.try_get("liaison")?,
        region_code: r.try_get("region_code")?,
        population: r.try_get("population")?,
    })
}

fn region(r: &AnyRow) -> Result<RegionRow, sqlx::Error> {
    Ok(RegionRow {
        code: r.try_get("code")?,
        name: r.try_get("name")?,
        liaison: r.try_get("liaison")?,
        population: r.try_get("population")?,
    })
}

fn all<T>(
    rows: Vec<AnyRow>,
    f: fn(&AnyRow) -> Result<T, sqlx::Error>,
) -> Result<Vec<T>, StorageError> {
    rows.iter()
        .map(f)
        .collect::<Result<_, _>>()
        .map_err(Into::into)
}

/// Loads a whole vintage (for the in-memory search index).
pub async fn load_vintage(
    conn: &mut AnyConnection,
    vintage: i64,
) -> Result<VintageData, StorageError> {
    let regions = sqlx::query(
        "SELECT code, name, liaison, population FROM ref_regions WHERE vintage = $1 ORDER BY code",
    )
    .bind(vintage)
    .fetch_all(&mut *conn)
    .await?;
    let deps = sqlx::query(
        "SELECT code, name, liaison, region_code, population FROM ref_departements WHERE vintage = $1 ORDER BY code",
    )
    .bind(vintage)
    .fetch_all(&mut *conn)
    .await?;
    let communes = sqlx::query(concat!(
        "SELECT ",
        commune_cols!(),
        " FROM ref_communes WHERE vintage = $1 ORDER BY insee"
    ))
    .bind(vintage)
    .fetch_all(&mut *conn)
    .await?;
    let epcis = sqlx::query(
        "SELECT siren, name, epci_type, population, population_source FROM ref_epci WHERE vintage = $1 ORDER BY siren",
    )
    .bind(vintage)
    .fetch_all(&mut *conn)
    .await?;
    Ok(VintageData {
        regions: all(regions, region)?,
        departements: all(deps, departement)?,
        communes: all(communes, commune)?,
        epci: all(epcis, epci)?,
    })
}

pub async fn find_commune<'c>(
    e: impl Executor<'c, Database = Any>,
    vintage: i64,
    insee: &str,
) -> Result<Option<CommuneRow>, StorageError> {
    let row = sqlx::query(concat!(
        "SELECT ",
        commune_cols!(),
        " FROM ref_communes WHERE vintage = $1 AND insee = $2"
    ))
    .bind(vintage)
    .bind(insee)
    .fetch_optional(e)
    .await?;
    row.as_ref().map(commune).transpose().map_err(Into::into)
}

pub async fn find_epci<'c>(
    e: impl Executor<'c, Database = Any>,
    vintage: i64,
    siren: &str,
) -> Result<Option<EpciRow>, StorageError> {
    let row = sqlx::query(
        "SELECT siren, name, epci_type, population, population_source FROM ref_epci WHERE vintage = $1 AND siren = $2",
    )
    .bind(vintage)
    .bind(siren)
    .fetch_optional(e)
    .await?;
    row.as_ref().map(epci).transpose().map_err(Into::into)
}

pub async fn find_departement<'c>(
    e: impl Executor<'c, Database = Any>,
    vintage: i64,
    code: &str,
) -> Result<Option<DepartementRow>, StorageError> {
    let row = sqlx::query(
        "SELECT code, name, liaison, region_code, population FROM ref_departements WHERE vintage = $1 AND code = $2",
    )
    .bind(vintage)
    .bind(code)
    .fetch_optional(e)
    .await?;
    row.as_ref()
        .map(departement)
        .transpose()
        .map_err(Into::into)
}

pub async fn find_region<'c>(
    e: impl Executor<'c, Database = Any>,
    vintage: i64,
    code: &str,
) -> Result<Option<RegionRow>, StorageError> {
    let row = sqlx::query(
        "SELECT code, name, liaison, population FROM ref_regions WHERE vintage = $1 AND code = $2",
    )
    .bind(vintage)
    .bind(code)
    .fetch_optional(e)
    .await?;
    row.as_ref().map(region).transpose().map_err(Into::into)
}

pub async fn epci_members<'c>(
    e: impl Executor<'c, Database = Any>,
    vintage: i64,
    siren: &str,
) -> Result<Vec<CommuneRow>, StorageError> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        commune_cols!(),
        " FROM ref_communes WHERE vintage = $1 AND epci_siren = $2 ORDER BY name"
    ))
    .bind(vintage)
    .bind(siren)
    .fetch_all(e)
    .await?;
    all(rows, commune)
}

pub async fn departements_of_region<'c>(
    e: impl Executor<'c, Database = Any>,
    vintage: i64,
    region: &str,
) -> Result<Vec<DepartementRow>, StorageError> {
    let rows = sqlx::query(
        "SELECT code, name, liaison, region_code, population FROM ref_departements WHERE vintage = $1 AND region_code = $2 ORDER BY code",
    )
    .bind(vintage)
    .bind(region)
    .fetch_all(e)
    .await?;
    all(rows, departement)
}

/// The names of collectivités of a vintage, in one statement: `refs` are (kind slug, code)
/// pairs (`commune`, `epci`, `departement`, `region`); the answer holds (kind, code, name) for
/// those that exist. Takes the database (its backend decides how the UNION is written: SQLite
/// refuses the parenthesised form PostgreSQL's builder writes); read-only, outside transactions.
pub async fn names_of(
    db: &crate::Db,
    vintage: i64,
    refs: &[(&str, &str)],
) -> Result<Vec<(String, String, String)>, StorageError> {
    let tables = [
        ("commune", "ref_communes", "insee"),
        ("epci", "ref_epci", "siren"),
        ("departement", "ref_departements", "code"),
        ("region", "ref_regions", "code"),
    ];
    // sea-query's statements are not `Send`: built and rendered before any await.
    let (sql, values) = {
        let mut query: Option<sea_query::SelectStatement> = None;
        for (kind, table, key) in tables {
            let codes: Vec<&str> = refs
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, c)| *c)
                .collect();
            if codes.is_empty() {
                continue;
            }
            let mut select = Query::select();
            select
                .expr_as(Expr::val(kind), Alias::new("kind"))
                .expr_as(Expr::col(Alias::new(key)), Alias::new("code"))
                .column(Alias::new("name"))
                .from(Alias::new(table))
                .and_where(Expr::col(Alias::new("vintage")).eq(vintage))
                .and_where(Expr::col(Alias::new(key)).is_in(codes));
            query = Some(match query {
                None => select,
                Some(mut q) => {
                    q.union(sea_query::UnionType::All, select);
                    q
                }
            });
        }
        let Some(query) = query else {
            return Ok(Vec::new());
        };
        match db.backend() {
            crate::Backend::Sqlite => query.build(sea_query::SqliteQueryBuilder),
            crate::Backend::Postgres => render(&query),
        }
    };
    let rows = bind(sqlx::query(&sql), values)?.fetch_all(db).await?;
    rows.iter()
        .map(|r| Ok((r.try_get("kind")?, r.try_get("code")?, r.try_get("name")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// The départements and régions an EPCI's member communes lie in, in one statement (without
/// loading the members).
pub async fn epci_footprint<'c>(
    e: impl Executor<'c, Database = Any>,
    vintage: i64,
    siren: &str,
) -> Result<Vec<(String, Option<String>)>, StorageError> {
    let rows = sqlx::query(
        "SELECT DISTINCT departement_code, region_code FROM ref_communes WHERE vintage = $1 AND epci_siren = $2",
    )
    .bind(vintage)
    .bind(siren)
    .fetch_all(e)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("departement_code")?, r.try_get("region_code")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// A collectivité's population in every imported vintage, in one statement: (vintage,
/// population), oldest first. `kind` is a slug (`commune`, `epci`, `departement`, `region`).
pub async fn populations<'c>(
    e: impl Executor<'c, Database = Any>,
    kind: &str,
    code: &str,
) -> Result<Vec<(i64, i64)>, StorageError> {
    let sql = match kind {
        "commune" => {
            "SELECT vintage, population FROM ref_communes WHERE insee = $1 ORDER BY vintage"
        }
        "epci" => "SELECT vintage, population FROM ref_epci WHERE siren = $1 ORDER BY vintage",
        "departement" => {
            "SELECT vintage, population FROM ref_departements WHERE code = $1 ORDER BY vintage"
        }
        "region" => "SELECT vintage, population FROM ref_regions WHERE code = $1 ORDER BY vintage",
        _ => return Ok(Vec::new()),
    };
    let rows = sqlx::query(sql).bind(code).fetch_all(e).await?;
    rows.iter()
        .map(|r| Ok((r.try_get("vintage")?, r.try_get("population")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// A département with the size of what it holds, for the spaces of its prefectures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepartementSummary {
    pub code: String,
    pub name: String,
    pub population: i64,
    pub communes: i64,
    pub epci: i64,
}

/// The départements of a région (or one département), with their commune and EPCI counts.
pub async fn departement_summaries<'c>(
    e: impl Executor<'c, Database = Any>,
    vintage: i64,
    region: Option<&str>,
    departement: Option<&str>,
) -> Result<Vec<DepartementSummary>, StorageError> {
    let rows = sqlx::query(
        "SELECT d.code, d.name, d.population, \
         (SELECT COUNT(*) FROM ref_communes c WHERE c.vintage = d.vintage AND c.departement_code = d.code) AS communes, \
         (SELECT COUNT(DISTINCT c.epci_siren) FROM ref_communes c \
            WHERE c.vintage = d.vintage AND c.departement_code = d.code AND c.epci_siren IS NOT NULL) AS epci \
         FROM ref_departements d WHERE d.vintage = $1 AND (d.region_code = $2 OR d.code = $3) ORDER BY d.code",
    )
    .bind(vintage)
    .bind(region.unwrap_or_default())
    .bind(departement.unwrap_or_default())
    .fetch_all(e)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(DepartementSummary {
                code: r.try_get("code")?,
                name: r.try_get("name")?,
                population: r.try_get("population")?,
                communes: r.try_get("communes")?,
                epci: r.try_get("epci")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// The communes of a département or of a région (for the facts rules read about an applicant).
pub async fn communes_in<'c>(
    e: impl Executor<'c, Database = Any>,
    vintage: i64,
    departement: Option<&str>,
    region: Option<&str>,
) -> Result<Vec<CommuneRow>, StorageError> {
    let (sql, value) = match (departement, region) {
        (Some(d), _) => (
            concat!(
                "SELECT ",
                commune_cols!(),
                " FROM ref_communes WHERE vintage = $1 AND departement_code = $2 ORDER BY insee"
            ),
            d,
        ),
        (None, Some(r)) => (
            concat!(
                "SELECT ",
                commune_cols!(),
                " FROM ref_communes WHERE vintage = $1 AND region_code = $2 ORDER BY insee"
            ),
            r,
        ),
        (None, None) => return Ok(Vec::new()),
    };
    let rows = sqlx::query(sql)
        .bind(vintage)
        .bind(value)
        .fetch_all(e)
        .await?;
    all(rows, commune)
}
