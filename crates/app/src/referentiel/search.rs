//! In-memory search over the referential: name (accent- and case-insensitive), INSEE code,
//! SIREN or postcode, exact and prefix matches first, then larger populations.
//!
//! The referential is read-only between imports, so each instance keeps its own index and
//! reloads it when `ref_imports` says another import happened (checked at most once a second),
//! which keeps app servers stateless and in agreement.

use crate::error::AppResult;
use guichet_domain::text::fold;
use guichet_domain::{CollectiviteKind, Vintage};
use guichet_storage::referentiel::{self as store, ImportInfo, VintageData};
use guichet_storage::Db;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// One search result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub kind: CollectiviteKind,
    /// INSEE code (commune), SIREN (EPCI), département or région code.
    pub code: String,
    pub name: String,
    pub siren: Option<String>,
    pub postcodes: Vec<String>,
    pub population: i64,
    pub departement: Option<(String, String)>,
    pub vintage: Vintage,
}

/// A slice of the index's text buffer.
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    start: u32,
    len: u32,
}

/// One searchable collectivité. Its strings live in the index's single text buffer: both
/// vintages' ~73,000 entries then take a few large allocations instead of hundreds of thousands
/// of small ones, which keeps the idle server small and its heap unfragmented.
#[derive(Debug)]
struct Entry {
    kind: CollectiviteKind,
    departement: Option<u16>,
    population: i64,
    code: Span,
    name: Span,
    folded: Span,
    /// Empty when unknown.
    siren: Span,
    /// Space-separated.
    postcodes: Span,
}

/// The index of one vintage.
#[derive(Debug, Default)]
pub struct VintageIndex {
    text: String,
    entries: Vec<Entry>,
    departements: Vec<(String, String)>,
}

struct Builder {
    text: String,
    entries: Vec<Entry>,
}

impl Builder {
    fn span(&mut self, s: &str) -> Span {
        let start = self.text.len() as u32;
        self.text.push_str(s);
        Span {
            start,
            len: s.len() as u32,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        kind: CollectiviteKind,
        code: &str,
        name: &str,
        siren: Option<&str>,
        postcodes: &[String],
        population: i64,
        departement: Option<u16>,
    ) {
        let code = self.span(code);
        let folded = fold(name);
        let folded = self.span(&folded);
        let name = self.span(name);
        let siren = self.span(siren.unwrap_or_default());
        let postcodes = self.span(&postcodes.join(" "));
        self.entries.push(Entry {
            kind,
            departement,
            population,
            code,
            name,
            folded,
            siren,
            postcodes,
        });
    }
}

impl VintageIndex {
    pub fn build(data: VintageData) -> Self {
        let departements: Vec<(String, String)> = data
            .departements
            .iter()
            .map(|d| (d.code.clone(), d.name.clone()))
            .collect();
        let dep_index: HashMap<&str, u16> = departements
            .iter()
            .enumerate()
            .map(|(i, (c, _))| (c.as_str(), i as u16))
            .collect();
        let count =
            data.communes.len() + data.epci.len() + data.departements.len() + data.regions.len();
        let mut b = Builder {
            text: String::with_capacity(count * 64),
            entries: Vec::with_capacity(count),
        };
        // EPCI: their main département is the one of most of their members.
        let mut epci_deps: HashMap<&str, HashMap<u16, usize>> = HashMap::new();
        for c in &data.communes {
            if let (Some(e), Some(d)) = (
                c.epci_siren.as_deref(),
                dep_index.get(c.departement_code.as_str()),
            ) {
                *epci_deps.entry(e).or_default().entry(*d).or_default() += 1;
            }
        }
        let epci_main: HashMap<&str, u16> = epci_deps
            .into_iter()
            .filter_map(|(e, m)| m.into_iter().max_by_key(|(_, n)| *n).map(|(d, _)| (e, d)))
            .collect();
        for e in &data.epci {
            let dep = epci_main.get(e.siren.as_str()).copied();
            b.push(
                CollectiviteKind::Epci,
                &e.siren,
                &e.name,
                Some(&e.siren),
                &[],
                e.population,
                dep,
            );
        }
        for c in &data.communes {
            let dep = dep_index.get(c.departement_code.as_str()).copied();
            b.push(
                CollectiviteKind::Commune,
                &c.insee,
                &c.name,
                c.siren.as_deref(),
                &c.postcodes,
                c.population,
                dep,
            );
        }
        for d in &data.departements {
            let dep = dep_index.get(d.code.as_str()).copied();
            b.push(
                CollectiviteKind::Departement,
                &d.code,
                &d.name,
                None,
                &[],
                d.population,
                dep,
            );
        }
        for r in &data.regions {
            b.push(
                CollectiviteKind::Region,
                &r.code,
                &r.name,
                None,
                &[],
                r.population,
                None,
            );
        }
        drop(epci_main);
        drop(data);
        b.text.shrink_to_fit();
        b.entries.shrink_to_fit();
        VintageIndex {
            text: b.text,
            entries: b.entries,
            departements,
        }
    }

    fn s(&self, span: Span) -> &str {
        let start = span.start as usize;
        self.text
            .get(start..start + span.len as usize)
            .unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Ranks: 0 code/SIREN/postcode exact, 1 name exact, 2 name prefix, 3 word prefix,
    /// 4 code prefix, 5 substring. Ties: larger population first, then name.
    fn rank(&self, e: &Entry, q: &str, q_upper: &str, digits: bool) -> Option<u8> {
        let code = self.s(e.code);
        let folded = self.s(e.folded);
        let mut postcodes = self.s(e.postcodes).split(' ').filter(|p| !p.is_empty());
        if code == q_upper || self.s(e.siren) == q || postcodes.clone().any(|p| p == q) {
            return Some(0);
        }
        if folded == q {
            return Some(1);
        }
        if folded.starts_with(q) {
            return Some(2);
        }
        if digits {
            if q.len() >= 2
                && e.kind == CollectiviteKind::Commune
                && (code.starts_with(q) || postcodes.any(|p| p.starts_with(q)))
            {
                return Some(4);
            }
            return None;
        }
        if let Some(pos) = memchr::memmem::find(folded.as_bytes(), q.as_bytes()) {
            let word_start = pos == 0 || folded.as_bytes()[pos - 1] == b' ';
            return Some(if word_start { 3 } else { 5 });
        }
        None
    }

    pub fn search(
        &self,
        query: &str,
        kind: Option<CollectiviteKind>,
        limit: usize,
        vintage: Vintage,
    ) -> Vec<Hit> {
        let q = fold(query);
        if q.is_empty() || limit == 0 {
            return vec![];
        }
        let q_upper = q.to_ascii_uppercase();
        let digits = q.chars().all(|c| c.is_ascii_digit());
        let mut found: Vec<(u8, i64, usize)> = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| kind.is_none_or(|k| k == e.kind))
            .filter_map(|(i, e)| {
                self.rank(e, &q, &q_upper, digits)
                    .map(|r| (r, -e.population, i))
            })
            .collect();
        let cmp = |a: &(u8, i64, usize), b: &(u8, i64, usize)| {
            (a.0, a.1).cmp(&(b.0, b.1)).then_with(|| {
                self.s(self.entries[a.2].name)
                    .cmp(self.s(self.entries[b.2].name))
            })
        };
        if found.len() > limit {
            found.select_nth_unstable_by(limit - 1, cmp);
            found.truncate(limit);
        }
        found.sort_by(cmp);
        found
            .into_iter()
            .map(|(_, _, i)| {
                let e = &self.entries[i];
                Hit {
                    kind: e.kind,
                    code: self.s(e.code).to_string(),
                    name: self.s(e.name).to_string(),
                    siren: Some(self.s(e.siren))
                        .filter(|s| !s.is_empty())
                        .map(str::to_string),
                    postcodes: self
                        .s(e.postcodes)
                        .split_whitespace()
                        .map(str::to_string)
                        .collect(),
                    population: e.population,
                    departement: e
                        .departement
                        .and_then(|d| self.departements.get(usize::from(d)).cloned()),
                    vintage,
                }
            })
            .collect()
    }
}

#[derive(Default)]
struct Loaded {
    marker: Vec<(i64, String)>,
    vintages: HashMap<Vintage, Arc<VintageIndex>>,
}

/// The shared search service: one index per imported vintage, reloaded after imports.
#[derive(Clone)]
pub struct SearchIndex {
    loaded: Arc<RwLock<Loaded>>,
    last_check: Arc<Mutex<Option<Instant>>>,
    reload: Arc<tokio::sync::Mutex<()>>,
}

impl Default for SearchIndex {
    fn default() -> Self {
        Self::new()
    }
}

fn marker(imports: &[ImportInfo]) -> Vec<(i64, String)> {
    imports
        .iter()
        .map(|i| (i.vintage, i.imported_at.clone()))
        .collect()
}

impl SearchIndex {
    pub fn new() -> Self {
        SearchIndex {
            loaded: Arc::new(RwLock::new(Loaded::default())),
            last_check: Arc::new(Mutex::new(None)),
            reload: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Reloads if the database holds other imports than the ones indexed.
    pub async fn refresh(&self, db: &Db) -> AppResult<()> {
        let _guard = self.reload.lock().await;
        let imports = store::imports(db).await?;
        let current = marker(&imports);
        let same = self
            .loaded
            .read()
            .map(|l| l.marker == current)
            .unwrap_or(false);
        if same {
            return Ok(());
        }
        let mut vintages = HashMap::new();
        for i in &imports {
            let Some(v) = u16::try_from(i.vintage)
                .ok()
                .and_then(|y| Vintage::from_year(y).ok())
            else {
                continue;
            };
            let data = store::load_vintage(&mut *db.acquire().await?, i.vintage).await?;
            vintages.insert(v, Arc::new(VintageIndex::build(data)));
        }
        let count: usize = vintages.values().map(|v| v.len()).sum();
        if let Ok(mut l) = self.loaded.write() {
            *l = Loaded {
                marker: current,
                vintages,
            };
        }
        release_free_memory();
        tracing::info!(
            entrees = count,
            "index de recherche des collectivités chargé"
        );
        Ok(())
    }

    async fn refresh_if_stale(&self, db: &Db) -> AppResult<()> {
        let due = {
            let mut last = self
                .last_check
                .lock()
                .map_err(|_| anyhow::anyhow!("verrou empoisonné"))?;
            let due = last.is_none_or(|t| t.elapsed() > Duration::from_secs(1));
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if due {
            self.refresh(db).await?;
        }
        Ok(())
    }

    pub fn vintage_index(&self, vintage: Vintage) -> Option<Arc<VintageIndex>> {
        self.loaded
            .read()
            .ok()
            .and_then(|l| l.vintages.get(&vintage).cloned())
    }

    pub async fn search(
        &self,
        db: &Db,
        vintage: Vintage,
        query: &str,
        kind: Option<CollectiviteKind>,
        limit: usize,
    ) -> AppResult<Vec<Hit>> {
        self.refresh_if_stale(db).await?;
        Ok(self
            .vintage_index(vintage)
            .map(|idx| idx.search(query, kind, limit, vintage))
            .unwrap_or_default())
    }
}

/// Hands the memory freed after building an index (the rows read from the database, the old
/// index) back to the system, so that the resident size reflects what the server keeps.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the system; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use guichet_storage::referentiel::{CommuneRow, DepartementRow, EpciRow};

    fn commune(insee: &str, name: &str, pop: i64, cp: &str) -> CommuneRow {
        CommuneRow {
            insee: insee.into(),
            name: name.into(),
            departement_code: insee[..2].into(),
            region_code: Some("11".into()),
            postcodes: vec![cp.into()],
            population: pop,
            siren: None,
            epci_siren: None,
        }
    }

    fn index() -> VintageIndex {
        VintageIndex::build(VintageData {
            regions: vec![],
            departements: vec![DepartementRow {
                code: "95".into(),
                name: "Val-d'Oise".into(),
                liaison: 2,
                region_code: "11".into(),
                population: 0,
            }],
            communes: vec![
                commune("95127", "Cergy", 65911, "95000"),
                commune("95500", "Pontoise", 30000, "95000"),
                commune("95572", "Saint-Ouen-l'Aumône", 24000, "95310"),
                commune("95999", "Vauréal-lès-Cergy", 100, "95490"),
            ],
            epci: vec![EpciRow {
                siren: "200035970".into(),
                name: "CA de Cergy-Pontoise".into(),
                epci_type: "CA".into(),
                population: 200000,
                population_source: None,
            }],
        })
    }

    #[test]
    fn cergy_comes_first() {
        let hits = index().search("cergy", None, 10, Vintage::Y2021);
        let names: Vec<&str> = hits.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            names,
            ["Cergy", "CA de Cergy-Pontoise", "Vauréal-lès-Cergy"]
        );
        assert_eq!(
            hits[0].departement,
            Some(("95".into(), "Val-d'Oise".into()))
        );
    }

    #[test]
    fn accents_case_codes_and_postcodes() {
        let idx = index();
        assert_eq!(
            idx.search("SAINT OUEN L AUMONE", None, 5, Vintage::Y2021)[0].code,
            "95572"
        );
        assert_eq!(
            idx.search("95127", None, 5, Vintage::Y2021)[0].name,
            "Cergy"
        );
        assert_eq!(
            idx.search("200035970", None, 5, Vintage::Y2021)[0].name,
            "CA de Cergy-Pontoise"
        );
        let by_cp = idx.search("95000", None, 5, Vintage::Y2021);
        assert_eq!(
            by_cp.iter().map(|h| h.code.as_str()).collect::<Vec<_>>(),
            ["95127", "95500"]
        );
        assert!(idx.search("   ", None, 5, Vintage::Y2021).is_empty());
        assert_eq!(
            idx.search("cergy", Some(CollectiviteKind::Epci), 5, Vintage::Y2021)
                .len(),
            1
        );
        assert_eq!(idx.search("cergy", None, 1, Vintage::Y2021).len(), 1);
    }
}
