//! The territorial referential: import from `@etalab/decoupage-administratif` (one npm package
//! version per vintage), lookups, footprints for access rules, and the in-memory search index.

pub mod import;
pub mod search;

use crate::error::{AppError, AppResult};
use guichet_domain::{CollectiviteKind, CollectiviteRef, TerritoryFootprint, Vintage};
use guichet_storage::{referentiel as store, Db};

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
