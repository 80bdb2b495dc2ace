//! The territorial referential: import from `@etalab/decoupage-administratif` (one npm package
//! version per vintage), lookups, footprints for access rules, and the in-memory search index.

pub mod import;
pub mod search;

use crate::audit;
use crate::error::{AppError, AppResult};
use crate::Progress;
use chrono::Datelike;
use guichet_domain::{CollectiviteKind, CollectiviteRef, TerritoryFootprint, Vintage};
use guichet_storage::{referentiel as store, Db};
use import::ImportReport;

pub use guichet_storage::referentiel::{DepartementSummary, ImportInfo};

/// A collectivité as shown on its public page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CollectiviteDetails {
    pub reference: CollectiviteRef,
    pub name: String,
    pub siren: Option<String>,
    pub postcodes: Vec<String>,
    pub departement: Option<(String, String)>,
    pub region: Option<(String, String)>,
    pub epci: Option<(String, String)>,
    /// Population per imported vintage (communes: INSEE figure; others: sum of member communes).
    pub populations: Vec<(u16, i64)>,
    pub members: Vec<(String, String, i64)>,
    pub footprint: TerritoryFootprint,
    pub vintage: u16,
}

/// Which vintages are imported.
pub async fn available_vintages(db: &Db) -> AppResult<Vec<Vintage>> {
    Ok(store::imports(db)
        .await?
        .iter()
        .filter_map(|i| {
            u16::try_from(i.vintage)
                .ok()
                .and_then(|y| Vintage::from_year(y).ok())
        })
        .collect())
}

/// Where a collectivité lies, in a given vintage; `None` if it does not exist there.
pub async fn footprint(
    db: &Db,
    vintage: Vintage,
    r: &CollectiviteRef,
) -> AppResult<Option<TerritoryFootprint>> {
    let v = i64::from(vintage.year());
    let mut f = TerritoryFootprint::default();
    match r.kind {
        CollectiviteKind::Commune => {
            let Some(c) = store::find_commune(db, v, &r.code).await? else {
                return Ok(None);
            };
            f.departements.insert(c.departement_code);
            f.regions.extend(c.region_code);
        }
        CollectiviteKind::Epci => {
            if store::find_epci(db, v, &r.code).await?.is_none() {
                return Ok(None);
            }
            for (departement, region) in store::epci_footprint(db, v, &r.code).await? {
                f.departements.insert(departement);
                f.regions.extend(region);
            }
        }
        CollectiviteKind::Departement => {
            let Some(d) = store::find_departement(db, v, &r.code).await? else {
                return Ok(None);
            };
            f.departements.insert(d.code);
            f.regions.insert(d.region_code);
        }
        CollectiviteKind::Region => {
            let Some(reg) = store::find_region(db, v, &r.code).await? else {
                return Ok(None);
            };
            for d in store::departements_of_region(db, v, &reg.code).await? {
                f.departements.insert(d.code);
            }
            f.regions.insert(reg.code);
        }
    }
    Ok(Some(f))
}

/// Everything the public page of a collectivité shows, in the vintage given.
pub async fn details(
    db: &Db,
    vintage: Vintage,
    r: &CollectiviteRef,
) -> AppResult<CollectiviteDetails> {
    let v = i64::from(vintage.year());
    let not_found = || {
        AppError::NotFound(format!(
            "aucune collectivité {} dans le référentiel {}",
            r, vintage
        ))
    };
    let (name, siren, postcodes, dep, reg, epci, members) = match r.kind {
        CollectiviteKind::Commune => {
            let c = store::find_commune(db, v, &r.code)
                .await?
                .ok_or_else(not_found)?;
            let epci = match &c.epci_siren {
                Some(s) => store::find_epci(db, v, s).await?.map(|e| (e.siren, e.name)),
                None => None,
            };
            (
                c.name,
                c.siren,
                c.postcodes,
                Some(c.departement_code),
                c.region_code,
                epci,
                vec![],
            )
        }
        CollectiviteKind::Epci => {
            let e = store::find_epci(db, v, &r.code)
                .await?
                .ok_or_else(not_found)?;
            let members = store::epci_members(db, v, &r.code).await?;
            // An EPCI's département is the one most of its members belong to.
            let mut counts = std::collections::BTreeMap::<(String, Option<String>), usize>::new();
            for m in &members {
                *counts
                    .entry((m.departement_code.clone(), m.region_code.clone()))
                    .or_default() += 1;
            }
            let main = counts.into_iter().max_by_key(|(_, n)| *n).map(|(k, _)| k);
            (
                e.name,
                Some(e.siren),
                vec![],
                main.as_ref().map(|m| m.0.clone()),
                main.and_then(|m| m.1),
                None,
                members
                    .into_iter()
                    .map(|m| (m.insee, m.name, m.population))
                    .collect(),
            )
        }
        CollectiviteKind::Departement => {
            let d = store::find_departement(db, v, &r.code)
                .await?
                .ok_or_else(not_found)?;
            (
                d.name,
                None,
                vec![],
                Some(d.code),
                Some(d.region_code),
                None,
                vec![],
            )
        }
        CollectiviteKind::Region => {
            let g = store::find_region(db, v, &r.code)
                .await?
                .ok_or_else(not_found)?;
            (g.name, None, vec![], None, Some(g.code), None, vec![])
        }
    };
    let departement = match dep {
        Some(code) => store::find_departement(db, v, &code)
            .await?
            .map(|d| (d.code, d.name)),
        None => None,
    };
    let region = match reg {
        Some(code) => store::find_region(db, v, &code)
            .await?
            .map(|g| (g.code, g.name)),
        None => None,
    };
    // Every vintage's figure in one statement (the vintages imported are the ones present).
    let populations: Vec<(u16, i64)> = store::populations(db, r.kind.slug(), &r.code)
        .await?
        .into_iter()
        .filter_map(|(v, p)| u16::try_from(v).ok().map(|v| (v, p)))
        .collect();
    let footprint = footprint(db, vintage, r).await?.unwrap_or_default();
    Ok(CollectiviteDetails {
        reference: r.clone(),
        name,
        siren,
        postcodes,
        departement,
        region,
        epci,
        populations,
        members,
        footprint,
        vintage: vintage.year(),
    })
}

/// Where a service acts, named from the referential in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceTerritory {
    Departement {
        code: String,
        name: Option<String>,
        region: Option<String>,
    },
    Region {
        code: String,
        name: Option<String>,
        /// Its départements: (code, name).
        departements: Vec<(String, String)>,
    },
    National,
}

/// The territorial referential: vintages and their import, collectivités, search, a service's
/// territory (`app.referentiel()`).
#[derive(Clone, Copy)]
pub struct Referentiel<'a> {
    pub(crate) app: &'a crate::App,
}

impl Referentiel<'_> {
    /// The vintage to use at the clock's date: the latest imported one not after this year,
    /// else the programme's pinned vintage.
    pub async fn vintage_in_force(&self) -> AppResult<Vintage> {
        let available = self.app.search.vintages(&self.app.db).await?;
        Ok(Vintage::in_force(self.app.clock.now().year(), &available)
            .unwrap_or(self.app.programme.vintage))
    }

    /// The vintage a request asks for (`millesime=`), or the one in force when it asks none.
    pub async fn requested_vintage(&self, requested: Option<&str>) -> AppResult<Vintage> {
        match requested.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => Vintage::parse(s).map_err(|e| AppError::Invalid(e.to_string())),
            None => self.vintage_in_force().await,
        }
    }

    /// Imports one vintage from the npm package directory (idempotent).
    pub async fn import_vintage(
        &self,
        vintage: Vintage,
        actor: audit::Actor,
        progress: &Progress<'_>,
    ) -> AppResult<ImportReport> {
        let (data_dir, source) = import::locate(&self.app.config.npm_dir, vintage)?;
        let started = std::time::Instant::now();
        let data = tokio::task::spawn_blocking(move || import::read_vintage(&data_dir))
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!(e)))??;
        let report = ImportReport {
            vintage,
            source: source.clone(),
            regions: data.regions.len(),
            departements: data.departements.len(),
            communes: data.communes.len(),
            epci: data.epci.len(),
        };
        let read = started.elapsed();
        let total = report.total_rows() as u64;
        let done = std::sync::atomic::AtomicU64::new(0);
        let tick = |n: u64| {
            let so_far = done.fetch_add(n, std::sync::atomic::Ordering::Relaxed) + n;
            progress(so_far, total);
        };
        // The vintage and its audit entry commit together: an import that cannot be recorded
        // leaves nothing imported.
        let mut tx = self.app.db.begin_write().await?;
        guichet_storage::referentiel::replace_vintage(
            &mut tx,
            i64::from(vintage.year()),
            &source,
            &self.app.now_ts(),
            &data,
            &tick,
        )
        .await?;
        drop(data);
        audit::record(
            &mut tx,
            &self.app.clock,
            actor,
            "referentiel.import",
            "referentiel",
            &vintage.to_string(),
            None,
            Some(&serde_json::json!({
                "source": source,
                "communes": report.communes,
                "epci": report.epci,
                "departements": report.departements,
                "regions": report.regions,
            })),
        )
        .await?;
        tx.commit().await?;
        // The index and its aggregates (vintages included) reload at once on this instance;
        // other instances see the import within a second (`ref_imports`).
        self.app.search.invalidate();
        tracing::info!(
            millesime = %vintage,
            lecture_ms = read.as_millis() as u64,
            ecriture_ms = (started.elapsed() - read).as_millis() as u64,
            "référentiel importé"
        );
        Ok(report)
    }

    /// Which vintages are imported.
    pub async fn available_vintages(&self) -> AppResult<Vec<Vintage>> {
        available_vintages(&self.app.db).await
    }

    /// The imports recorded, oldest vintage first.
    pub async fn imports(&self) -> AppResult<Vec<ImportInfo>> {
        Ok(store::imports(&self.app.db).await?)
    }

    /// Everything the public page of a collectivité shows, in the vintage given.
    pub async fn collectivite_details(
        &self,
        vintage: Vintage,
        r: &CollectiviteRef,
    ) -> AppResult<CollectiviteDetails> {
        details(&self.app.db, vintage, r).await
    }

    /// Searches collectivités by name, code, SIREN or postcode.
    pub async fn search_collectivites(
        &self,
        vintage: Vintage,
        query: &str,
        kind: Option<CollectiviteKind>,
        limit: usize,
    ) -> AppResult<Vec<search::Hit>> {
        self.app
            .search
            .search(&self.app.db, vintage, query, kind, limit)
            .await
    }

    /// Reloads the search index from the database (at start, in the background).
    pub async fn refresh_search(&self) -> AppResult<()> {
        self.app.search.refresh(&self.app.db).await
    }

    /// Where a service acts (public referential data: no scope needed).
    pub async fn service_territory(
        &self,
        s: &guichet_storage::accounts::ServiceRow,
    ) -> AppResult<ServiceTerritory> {
        let v = i64::from(self.vintage_in_force().await?.year());
        Ok(match s.kind {
            guichet_domain::ServiceKind::PrefectureDepartementale => {
                let name = store::find_departement(&self.app.db, v, &s.territory_code)
                    .await?
                    .map(|d| d.name);
                let region = match &s.region_code {
                    Some(code) => store::find_region(&self.app.db, v, code)
                        .await?
                        .map(|g| g.name),
                    None => None,
                };
                ServiceTerritory::Departement {
                    code: s.territory_code.clone(),
                    name,
                    region,
                }
            }
            guichet_domain::ServiceKind::PrefectureRegionale => {
                let name = store::find_region(&self.app.db, v, &s.territory_code)
                    .await?
                    .map(|g| g.name);
                let departements =
                    store::departements_of_region(&self.app.db, v, &s.territory_code)
                        .await?
                        .into_iter()
                        .map(|d| (d.code, d.name))
                        .collect();
                ServiceTerritory::Region {
                    code: s.territory_code.clone(),
                    name,
                    departements,
                }
            }
            _ => ServiceTerritory::National,
        })
    }

    /// The départements a service covers, with what they hold, in the vintage in force
    /// (none for national services).
    pub async fn service_departements(
        &self,
        s: &guichet_storage::accounts::ServiceRow,
    ) -> AppResult<(Vintage, Vec<DepartementSummary>)> {
        let vintage = self.vintage_in_force().await?;
        let (region, dep) = match s.kind {
            guichet_domain::ServiceKind::PrefectureDepartementale => {
                (None, Some(s.territory_code.as_str()))
            }
            guichet_domain::ServiceKind::PrefectureRegionale => {
                (Some(s.territory_code.as_str()), None)
            }
            _ => return Ok((vintage, vec![])),
        };
        let rows =
            store::departement_summaries(&self.app.db, i64::from(vintage.year()), region, dep)
                .await?;
        Ok((vintage, rows))
    }
}
