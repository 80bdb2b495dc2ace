//! The territorial referential, one copy per vintage ("millésime"), side by side.

use crate::db::Db;
use crate::error::StorageError;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

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

enum V<'a> {
    I(i64),
    T(&'a str),
    N(Option<&'a str>),
    Owned(String),
}

/// Rows per INSERT. Measured on the 2021 vintage (SQLite, release): 500 rows per statement took
/// 2.4 s to write, 100 took 0.6 s, 50 and 25 took 0.42 s (binding cost grows faster than
/// linearly with the parameter count), so 50 it is.
const ROWS_PER_STATEMENT: usize = 50;

/// Inserts rows in multi-row statements, reporting progress after each chunk.
async fn insert_rows<'a>(
    tx: &mut Transaction<'static, Any>,
    table: &str,
    cols: &[&str],
    rows: impl Iterator<Item = Vec<V<'a>>>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(), StorageError> {
    let rows: Vec<Vec<V<'a>>> = rows.collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut sql = format!("INSERT INTO {table} ({}) VALUES ", cols.join(", "));
        let mut n = 0;
        for (i, _) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for j in 0..cols.len() {
                if j > 0 {
                    sql.push_str(", ");
                }
                n += 1;
                sql.push('$');
                sql.push_str(&n.to_string());
            }
            sql.push(')');
        }
        let mut q = sqlx::query(&sql);
        for row in chunk {
            for v in row {
                q = match v {
                    V::I(i) => q.bind(*i),
                    V::T(t) => q.bind(*t),
                    V::N(o) => q.bind(*o),
                    V::Owned(s) => q.bind(s.as_str()),
                };
            }
        }
        q.execute(&mut **tx).await?;
        progress(chunk.len() as u64);
    }
    Ok(())
}

/// Replaces a whole vintage in one transaction: readers see the old one or the new one, never a
/// mix, and running the same import twice leaves the same rows.
pub async fn replace_vintage(
    db: &Db,
    vintage: i64,
    source: &str,
    imported_at: &str,
    data: &VintageData,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(), StorageError> {
    let mut tx = db.pool().begin().await?;
    for table in [
        "ref_communes",
        "ref_epci",
        "ref_departements",
        "ref_regions",
    ] {
        sqlx::query(&format!("DELETE FROM {table} WHERE vintage = $1"))
            .bind(vintage)
            .execute(&mut *tx)
            .await?;
    }
    insert_rows(
        &mut tx,
        "ref_regions",
        &["vintage", "code", "name", "liaison", "population"],
        data.regions.iter().map(|r| {
            vec![
                V::I(vintage),
                V::T(&r.code),
                V::T(&r.name),
                V::I(r.liaison),
                V::I(r.population),
            ]
        }),
        progress,
    )
    .await?;
    insert_rows(
        &mut tx,
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
                V::I(vintage),
                V::T(&d.code),
                V::T(&d.name),
                V::I(d.liaison),
                V::T(&d.region_code),
                V::I(d.population),
            ]
        }),
        progress,
    )
    .await?;
    insert_rows(
        &mut tx,
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
                V::I(vintage),
                V::T(&e.siren),
                V::T(&e.name),
                V::T(&e.epci_type),
                V::I(e.population),
                match e.population_source {
                    Some(p) => V::I(p),
                    None => V::N(None),
                },
            ]
        }),
        progress,
    )
    .await?;
    insert_rows(
        &mut tx,
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
                V::I(vintage),
                V::T(&c.insee),
                V::T(&c.name),
                V::T(&c.departement_code),
                V::N(c.region_code.as_deref()),
                V::Owned(c.postcodes.join(" ")),
                V::I(c.population),
                V::N(c.siren.as_deref()),
                V::N(c.epci_siren.as_deref()),
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
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn imports(db: &Db) -> Result<Vec<ImportInfo>, StorageError> {
    let rows = sqlx::query(
        "SELECT vintage, source, imported_at, communes, epci FROM ref_imports ORDER BY vintage",
    )
    .fetch_all(db.pool())
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

const COMMUNE_COLS: &str =
    "insee, name, departement_code, region_code, postcodes, population, siren, epci_siren";

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
pub async fn load_vintage(db: &Db, vintage: i64) -> Result<VintageData, StorageError> {
    let pool = db.pool();
    let regions = sqlx::query(
        "SELECT code, name, liaison, population FROM ref_regions WHERE vintage = $1 ORDER BY code",
    )
    .bind(vintage)
    .fetch_all(pool)
    .await?;
    let deps = sqlx::query(
        "SELECT code, name, liaison, region_code, population FROM ref_departements WHERE vintage = $1 ORDER BY code",
    )
    .bind(vintage)
    .fetch_all(pool)
    .await?;
    let communes = sqlx::query(&format!(
        "SELECT {COMMUNE_COLS} FROM ref_communes WHERE vintage = $1 ORDER BY insee"
    ))
    .bind(vintage)
    .fetch_all(pool)
    .await?;
    let epcis = sqlx::query(
        "SELECT siren, name, epci_type, population, population_source FROM ref_epci WHERE vintage = $1 ORDER BY siren",
    )
    .bind(vintage)
    .fetch_all(pool)
    .await?;
    Ok(VintageData {
        regions: all(regions, region)?,
        departements: all(deps, departement)?,
        communes: all(communes, commune)?,
        epci: all(epcis, epci)?,
    })
}

pub async fn find_commune(
    db: &Db,
    vintage: i64,
    insee: &str,
) -> Result<Option<CommuneRow>, StorageError> {
    let row = sqlx::query(&format!(
        "SELECT {COMMUNE_COLS} FROM ref_communes WHERE vintage = $1 AND insee = $2"
    ))
    .bind(vintage)
    .bind(insee)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(commune).transpose().map_err(Into::into)
}

pub async fn find_epci(
    db: &Db,
    vintage: i64,
    siren: &str,
) -> Result<Option<EpciRow>, StorageError> {
    let row = sqlx::query(
        "SELECT siren, name, epci_type, population, population_source FROM ref_epci WHERE vintage = $1 AND siren = $2",
    )
    .bind(vintage)
    .bind(siren)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(epci).transpose().map_err(Into::into)
}

pub async fn find_departement(
    db: &Db,
    vintage: i64,
    code: &str,
) -> Result<Option<DepartementRow>, StorageError> {
    let row = sqlx::query(
        "SELECT code, name, liaison, region_code, population FROM ref_departements WHERE vintage = $1 AND code = $2",
    )
    .bind(vintage)
    .bind(code)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref()
        .map(departement)
        .transpose()
        .map_err(Into::into)
}

pub async fn find_region(
    db: &Db,
    vintage: i64,
    code: &str,
) -> Result<Option<RegionRow>, StorageError> {
    let row = sqlx::query(
        "SELECT code, name, liaison, population FROM ref_regions WHERE vintage = $1 AND code = $2",
    )
    .bind(vintage)
    .bind(code)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(region).transpose().map_err(Into::into)
}

pub async fn epci_members(
    db: &Db,
    vintage: i64,
    siren: &str,
) -> Result<Vec<CommuneRow>, StorageError> {
    let rows = sqlx::query(&format!(
        "SELECT {COMMUNE_COLS} FROM ref_communes WHERE vintage = $1 AND epci_siren = $2 ORDER BY name"
    ))
    .bind(vintage)
    .bind(siren)
    .fetch_all(db.pool())
    .await?;
    all(rows, commune)
}

pub async fn departements_of_region(
    db: &Db,
    vintage: i64,
    region: &str,
) -> Result<Vec<DepartementRow>, StorageError> {
    let rows = sqlx::query(
        "SELECT code, name, liaison, region_code, population FROM ref_departements WHERE vintage = $1 AND region_code = $2 ORDER BY code",
    )
    .bind(vintage)
    .bind(region)
    .fetch_all(db.pool())
    .await?;
    all(rows, departement)
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
pub async fn departement_summaries(
    db: &Db,
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
    .fetch_all(db.pool())
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
pub async fn communes_in(
    db: &Db,
    vintage: i64,
    departement: Option<&str>,
    region: Option<&str>,
) -> Result<Vec<CommuneRow>, StorageError> {
    let (column, value) = match (departement, region) {
        (Some(d), _) => ("departement_code", d),
        (None, Some(r)) => ("region_code", r),
        (None, None) => return Ok(Vec::new()),
    };
    let rows = sqlx::query(&format!(
        "SELECT {COMMUNE_COLS} FROM ref_communes WHERE vintage = $1 AND {column} = $2 ORDER BY insee"
    ))
    .bind(vintage)
    .bind(value)
    .fetch_all(db.pool())
    .await?;
    all(rows, commune)
}

/// How many communes each département holds, to tell whether an applicant covers one whole.
pub async fn commune_counts_by_departement(
    db: &Db,
    vintage: i64,
) -> Result<Vec<(String, i64)>, StorageError> {
    let rows = sqlx::query(
        "SELECT departement_code, COUNT(*) AS n FROM ref_communes WHERE vintage = $1 GROUP BY departement_code",
    )
    .bind(vintage)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("departement_code")?, r.try_get("n")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}
