//! Import of one vintage of `@etalab/decoupage-administratif`.
//!
//! Each vintage comes from a pinned package version installed by `npm ci` under an alias
//! (`decoupage-administratif-2021` → 1.1.1, `decoupage-administratif-2026` → 6.0.0). Populations
//! follow the programme rule: a commune's own `population` figure; an EPCI, a département or a
//! région counts the sum of its member communes of the same vintage. The EPCI file's own figure,
//! from another census year, is kept aside as `population_source`.

use crate::error::{AppError, AppResult};
use guichet_domain::Vintage;
use guichet_storage::referentiel::{CommuneRow, DepartementRow, EpciRow, RegionRow, VintageData};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The npm package (alias) and exact version each vintage is read from.
pub fn package_for(vintage: Vintage) -> (&'static str, &'static str) {
    match vintage {
        Vintage::Y2021 => ("decoupage-administratif-2021", "1.1.1"),
        Vintage::Y2026 => ("decoupage-administratif-2026", "6.0.0"),
    }
}

#[derive(Deserialize)]
struct RawCommune {
    code: String,
    nom: String,
    #[serde(rename = "type")]
    kind: String,
    departement: Option<String>,
    region: Option<String>,
    #[serde(rename = "collectiviteOutremer")]
    collectivite_outremer: Option<RawCom>,
    #[serde(rename = "codesPostaux", default)]
    postcodes: Vec<String>,
    population: Option<i64>,
    siren: Option<String>,
}

/// An overseas collectivité (COM): its communes have no département nor région.
#[derive(Deserialize)]
struct RawCom {
    code: String,
}

#[derive(Deserialize)]
struct RawEpci {
    code: String,
    nom: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(rename = "populationMunicipale")]
    population_municipale: Option<NumOrText>,
    #[serde(default)]
    membres: Vec<RawMembre>,
}

#[derive(Deserialize)]
struct RawMembre {
    code: String,
    siren: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrText {
    Num(i64),
    Text(String),
}

impl NumOrText {
    fn value(&self) -> Option<i64> {
        match self {
            NumOrText::Num(n) => Some(*n),
            NumOrText::Text(t) => t.trim().parse().ok(),
        }
    }
}

#[derive(Deserialize)]
struct RawDepartement {
    code: String,
    nom: String,
    region: String,
    #[serde(rename = "typeLiaison", default)]
    liaison: i64,
}

#[derive(Deserialize)]
struct RawRegion {
    code: String,
    nom: String,
    #[serde(rename = "typeLiaison", default)]
    liaison: i64,
}

#[derive(Deserialize)]
struct PackageJson {
    version: String,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> AppResult<T> {
    let bytes = std::fs::read(path).map_err(|e| {
        AppError::Unavailable(format!(
            "fichier {} illisible ({e}) ; lancez « npm ci » à la racine du projet",
            path.display()
        ))
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| AppError::Invalid(format!("fichier {} mal formé : {e}", path.display())))
}

/// Locates the package of a vintage and checks its version.
pub fn locate(npm_dir: &Path, vintage: Vintage) -> AppResult<(PathBuf, String)> {
    let (alias, version) = package_for(vintage);
    let dir = npm_dir.join(alias);
    let manifest = dir.join("package.json");
    if !manifest.exists() {
        return Err(AppError::Unavailable(format!(
            "paquet npm {alias} (@etalab/decoupage-administratif@{version}) absent de {} ; lancez « npm ci » à la racine du projet",
            npm_dir.display()
        )));
    }
    let found: PackageJson = read_json(&manifest)?;
    if found.version != version {
        return Err(AppError::Invalid(format!(
            "le millésime {vintage} attend @etalab/decoupage-administratif@{version}, mais {} contient la version {} ; lancez « npm ci »",
            dir.display(),
            found.version
        )));
    }
    Ok((
        dir.join("data"),
        format!("@etalab/decoupage-administratif@{version}"),
    ))
}

/// Reads and derives a whole vintage from the package's data folder.
pub fn read_vintage(data_dir: &Path) -> AppResult<VintageData> {
    let raw_communes: Vec<RawCommune> = read_json(&data_dir.join("communes.json"))?;
    let raw_epci: Vec<RawEpci> = read_json(&data_dir.join("epci.json"))?;
    let raw_deps: Vec<RawDepartement> = read_json(&data_dir.join("departements.json"))?;
    let raw_regions: Vec<RawRegion> = read_json(&data_dir.join("regions.json"))?;
    Ok(derive(raw_communes, raw_epci, raw_deps, raw_regions))
}

fn derive(
    raw_communes: Vec<RawCommune>,
    raw_epci: Vec<RawEpci>,
    raw_deps: Vec<RawDepartement>,
    raw_regions: Vec<RawRegion>,
) -> VintageData {
    let mut communes: Vec<CommuneRow> = raw_communes
        .into_iter()
        .filter(|c| c.kind == "commune-actuelle")
        .filter_map(|c| {
            Some(CommuneRow {
                departement_code: c
                    .departement
                    .or(c.collectivite_outremer.map(|com| com.code))?,
                region_code: c.region,
                insee: c.code,
                name: c.nom,
                postcodes: c.postcodes,
                population: c.population.unwrap_or(0),
                siren: c.siren,
                epci_siren: None,
            })
        })
        .collect();
    let index: HashMap<String, usize> = communes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.insee.clone(), i))
        .collect();
    let mut epci = Vec::with_capacity(raw_epci.len());
    for e in raw_epci {
        let mut population = 0i64;
        for m in &e.membres {
            if let Some(&i) = index.get(&m.code) {
                let c = &mut communes[i];
                population += c.population;
                c.epci_siren = Some(e.code.clone());
                // Older vintages carry the commune's SIREN only in the EPCI membership list.
                if c.siren.is_none() {
                    c.siren.clone_from(&m.siren);
                }
            }
        }
        epci.push(EpciRow {
            siren: e.code,
            name: e.nom,
            epci_type: e.kind,
            population,
            population_source: e.population_municipale.as_ref().and_then(NumOrText::value),
        });
    }
    let mut dep_pop: HashMap<&str, i64> = HashMap::new();
    let mut reg_pop: HashMap<&str, i64> = HashMap::new();
    for c in &communes {
        *dep_pop.entry(c.departement_code.as_str()).or_default() += c.population;
        if let Some(r) = &c.region_code {
            *reg_pop.entry(r.as_str()).or_default() += c.population;
        }
    }
    let departements = raw_deps
        .into_iter()
        .map(|d| DepartementRow {
            population: dep_pop.get(d.code.as_str()).copied().unwrap_or(0),
            code: d.code,
            name: d.nom,
            liaison: d.liaison,
            region_code: d.region,
        })
        .collect();
    let regions = raw_regions
        .into_iter()
        .map(|r| RegionRow {
            population: reg_pop.get(r.code.as_str()).copied().unwrap_or(0),
            code: r.code,
            name: r.nom,
            liaison: r.liaison,
        })
        .collect();
    VintageData {
        regions,
        departements,
        communes,
        epci,
    }
}

/// What an import did.
#[derive(Debug, Clone)]
pub struct ImportReport {
    pub vintage: Vintage,
    pub source: String,
    pub regions: usize,
    pub departements: usize,
    pub communes: usize,
    pub epci: usize,
}

impl ImportReport {
    pub fn total_rows(&self) -> usize {
        self.regions + self.departements + self.communes + self.epci
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn populations_of_groupings_are_sums_of_their_communes() {
        let communes: Vec<RawCommune> = serde_json::from_str(
            r#"[
            {"code":"95127","nom":"Cergy","type":"commune-actuelle","departement":"95","region":"11","codesPostaux":["95000"],"population":100},
            {"code":"95500","nom":"Pontoise","type":"commune-actuelle","departement":"95","region":"11","population":50},
            {"code":"95999","nom":"Ancienne","type":"commune-deleguee","departement":"95","region":"11","population":7}
        ]"#,
        )
        .unwrap();
        let epci: Vec<RawEpci> = serde_json::from_str(
            r#"[{"code":"200035970","nom":"CA de Cergy-Pontoise","type":"CA","populationMunicipale":"999",
                "membres":[{"code":"95127","siren":"219501277"},{"code":"95500","siren":"219505005"}]}]"#,
        )
        .unwrap();
        let deps: Vec<RawDepartement> = serde_json::from_str(
            r#"[{"code":"95","nom":"Val-d'Oise","region":"11","typeLiaison":2}]"#,
        )
        .unwrap();
        let regions: Vec<RawRegion> =
            serde_json::from_str(r#"[{"code":"11","nom":"Île-de-France","typeLiaison":1}]"#)
                .unwrap();
        let data = derive(communes, epci, deps, regions);
        assert_eq!(data.communes.len(), 2);
        assert_eq!(data.epci[0].population, 150);
        assert_eq!(data.epci[0].population_source, Some(999));
        assert_eq!(data.departements[0].population, 150);
        assert_eq!(data.regions[0].population, 150);
        assert_eq!(data.communes[0].siren.as_deref(), Some("219501277"));
        assert_eq!(data.communes[0].epci_siren.as_deref(), Some("200035970"));
    }
}
