//! The in-memory referential of each imported vintage: the search index (name, accent- and
//! case-insensitive, INSEE code, SIREN or postcode; exact and prefix matches first, then larger
//! populations) and the aggregates the simulator reads on every request (communes per
//! département, the member communes of an EPCI, a département or a région, vintages imported).
//!
//! The referential is read-only between imports, so each instance keeps its own copy and
//! reloads it when `ref_imports` says another import happened (checked at most once a second),
//! which keeps app servers stateless and in agreement.
//!
//! Search answers from index structures, never by comparing the query with every entry.
//! Entries are numbered in ranking order (larger population first, then name), so that within
//! one rank the best answers are the lowest numbers:
//! - exact code, SIREN and postcode: sorted keys, binary search;
//! - exact name and name prefix: entries sorted by folded name, binary search of the range;
//! - word prefix: every word start after the first, sorted by the text that follows it;
//! - code or postcode prefix (digits): the same sorted codes and postcodes;
//! - substring: posting lists of the 1-, 2- and 3-byte grams of the folded names, in entry
//!   order; the rarest gram of the query gives the candidates, checked in order until enough.

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

/// A collectivité as the simulator reads it, borrowed from the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place<'a> {
    pub kind: CollectiviteKind,
    /// INSEE code, SIREN, département or région code.
    pub code: &'a str,
    pub name: &'a str,
    pub population: i64,
    /// A commune's département (or overseas collectivité) code; a département's own code.
    pub departement: Option<&'a str>,
    /// A commune's or a département's région; `None` for the overseas collectivités.
    pub region: Option<&'a str>,
    /// An EPCI's legal form (CA, CC, CU, METRO…).
    pub nature: Option<&'a str>,
}

/// A slice of the index's text buffer.
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    start: u32,
    len: u32,
}

/// One collectivité. Its strings live in the index's single text buffer: both vintages'
/// ~73,000 entries then take a few large allocations instead of hundreds of thousands of small
/// ones, which keeps the idle server small and its heap unfragmented.
#[derive(Debug)]
struct Entry {
    kind: CollectiviteKind,
    /// Index in `departements`, for display.
    departement: Option<u16>,
    population: i64,
    code: Span,
    name: Span,
    folded: Span,
    /// Empty when unknown.
    siren: Span,
    /// Space-separated.
    postcodes: Span,
    /// Commune: its département (or overseas collectivité) code; département: its own.
    dep_code: Span,
    /// Commune, département: région code (empty for the overseas collectivités).
    region_code: Span,
    /// Commune: its EPCI's SIREN; EPCI: its legal form.
    epci: Span,
}

/// Posting lists of grams (1 to 3 bytes of a folded name), compressed row storage: the entries
/// holding `keys[k]` are `postings[starts[k]..starts[k + 1]]`, in entry order.
#[derive(Debug, Default)]
struct Grams {
    keys: Vec<u32>,
    starts: Vec<u32>,
    postings: Vec<u32>,
}

const MAX_GRAM: usize = 3;

fn gram_key(bytes: &[u8]) -> u32 {
    let mut k = (bytes.len() as u32) << 24;
    for (i, b) in bytes.iter().enumerate() {
        k |= u32::from(*b) << (16 - 8 * i);
    }
    k
}

impl Grams {
    fn build<'a>(names: impl Iterator<Item = (u32, &'a [u8])>) -> Grams {
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        let mut own: Vec<u32> = Vec::new();
        for (i, name) in names {
            own.clear();
            for n in 1..=MAX_GRAM {
                own.extend(name.windows(n).map(gram_key));
            }
            own.sort_unstable();
            own.dedup();
            pairs.extend(own.iter().map(|k| (*k, i)));
        }
        pairs.sort_unstable();
        let mut g = Grams {
            keys: Vec::new(),
            starts: Vec::new(),
            postings: Vec::with_capacity(pairs.len()),
        };
        for (k, i) in pairs {
            if g.keys.last() != Some(&k) {
                g.keys.push(k);
                g.starts.push(g.postings.len() as u32);
            }
            g.postings.push(i);
        }
        g.starts.push(g.postings.len() as u32);
        g.keys.shrink_to_fit();
        g.starts.shrink_to_fit();
        g
    }

    fn list(&self, gram: &[u8]) -> &[u32] {
        match self.keys.binary_search(&gram_key(gram)) {
            Ok(k) => {
                let (a, b) = (self.starts[k] as usize, self.starts[k + 1] as usize);
                self.postings.get(a..b).unwrap_or_default()
            }
            Err(_) => &[],
        }
    }

    /// The shortest posting list among the query's longest grams: every entry holding the
    /// query is in it.
    fn candidates(&self, q: &[u8]) -> &[u32] {
        let n = q.len().min(MAX_GRAM);
        q.windows(n)
            .map(|w| self.list(w))
            .min_by_key(|l| l.len())
            .unwrap_or_default()
    }
}

/// The index of one vintage: search structures and the simulator's aggregates.
#[derive(Debug, Default)]
pub struct VintageIndex {
    text: String,
    /// In ranking order: larger population first, then name, then code.
    entries: Vec<Entry>,
    departements: Vec<(String, String)>,
    /// Entries by code (INSEE, SIREN of EPCI, département, région).
    codes: Vec<u32>,
    /// Entries that have a SIREN, by SIREN.
    sirens: Vec<u32>,
    /// (postcode, commune), by postcode.
    postcodes: Vec<(Span, u32)>,
    /// Entries by folded name, then entry order.
    names: Vec<u32>,
    /// (offset in `text` of a word start other than the first, entry), by the text that follows.
    words: Vec<(u32, u32)>,
    grams: Grams,
    /// (EPCI, member commune), sorted.
    members: Vec<(u32, u32)>,
    /// Communes by département code, then entry order.
    by_departement: Vec<u32>,
    /// Communes that have a région, by région code, then entry order.
    by_region: Vec<u32>,
    communes_per_departement: HashMap<String, usize>,
}

struct Builder {
    text: String,
    entries: Vec<Entry>,
}

struct Row<'a> {
    kind: CollectiviteKind,
    code: &'a str,
    name: &'a str,
    siren: Option<&'a str>,
    postcodes: &'a [String],
    population: i64,
    departement: Option<u16>,
    dep_code: &'a str,
    region_code: Option<&'a str>,
    epci: Option<&'a str>,
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

    fn push(&mut self, r: Row<'_>) {
        let code = self.span(r.code);
        let folded = fold(r.name);
        let folded = self.span(&folded);
        let name = self.span(r.name);
        let siren = self.span(r.siren.unwrap_or_default());
        let postcodes = self.span(&r.postcodes.join(" "));
        let dep_code = self.span(r.dep_code);
        let region_code = self.span(r.region_code.unwrap_or_default());
        let epci = self.span(r.epci.unwrap_or_default());
        self.entries.push(Entry {
            kind: r.kind,
            departement: r.departement,
            population: r.population,
            code,
            name,
            folded,
            siren,
            postcodes,
            dep_code,
            region_code,
            epci,
        });
    }
}

/// The slice of a sorted list whose keys start with `q`.
fn prefix_range<'l, 'k, T>(list: &'l [T], key: impl Fn(&T) -> &'k str, q: &str) -> &'l [T] {
    let start = list.partition_point(|x| key(x) < q);
    let rest = list.get(start..).unwrap_or_default();
    let len = rest.partition_point(|x| key(x).starts_with(q));
    rest.get(..len).unwrap_or_default()
}

/// The slice of a sorted list whose keys equal `q`.
fn exact_range<'l, 'k, T>(list: &'l [T], key: impl Fn(&T) -> &'k str, q: &str) -> &'l [T] {
    let start = list.partition_point(|x| key(x) < q);
    let rest = list.get(start..).unwrap_or_default();
    let len = rest.partition_point(|x| key(x) == q);
    rest.get(..len).unwrap_or_default()
}

/// The answer being built: ranks are filled in order, each with its lowest entry numbers.
struct Found<'a> {
    index: &'a VintageIndex,
    kind: Option<CollectiviteKind>,
    limit: usize,
    list: Vec<u32>,
}

impl Found<'_> {
    fn full(&self) -> bool {
        self.list.len() >= self.limit
    }

    fn eligible(&self, i: u32) -> bool {
        self.kind
            .is_none_or(|k| self.index.entry(i).is_some_and(|e| e.kind == k))
            && !self.list.contains(&i)
    }

    /// Adds the best entries of one rank (candidates in any order, possibly repeated, possibly
    /// of a better rank already taken).
    fn rank(&mut self, candidates: impl Iterator<Item = u32>) {
        let room = self.limit.saturating_sub(self.list.len());
        if room == 0 {
            return;
        }
        let mut best: Vec<u32> = Vec::with_capacity(room + 1);
        for i in candidates {
            if best.len() == room && best.last().is_some_and(|l| i >= *l) {
                continue;
            }
            if !self.eligible(i) {
                continue;
            }
            if let Err(pos) = best.binary_search(&i) {
                best.insert(pos, i);
                best.truncate(room);
            }
        }
        self.list.extend(best);
    }

    /// Adds entries of one rank given in entry order, checked by `accept`, until full.
    fn rank_in_order(&mut self, candidates: &[u32], accept: impl Fn(u32) -> bool) {
        for &i in candidates {
            if self.full() {
                return;
            }
            if self.eligible(i) && accept(i) {
                self.list.push(i);
            }
        }
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
            text: String::with_capacity(count * 96),
            entries: Vec::with_capacity(count),
        };
        // EPCI: their main département is the one of most of their members.
        let mut epci_deps: HashMap<&str, HashMap<u16, usize>> = HashMap::new();
        let mut communes_per_departement: HashMap<String, usize> = HashMap::new();
        for c in &data.communes {
            *communes_per_departement
                .entry(c.departement_code.clone())
                .or_default() += 1;
            if let (Some(e), Some(d)) = (
                c.epci_siren.as_deref(),
                dep_index.get(c.departement_code.as_str()),
            ) {
                *epci_deps.entry(e).or_default().entry(*d).or_default() += 1;
            }
        }
        let epci_main: HashMap<&str, u16> = epci_deps
            .into_iter()
            .filter_map(|(e, m)| {
                m.into_iter()
                    .max_by_key(|(d, n)| (*n, std::cmp::Reverse(*d)))
                    .map(|(d, _)| (e, d))
            })
            .collect();
        for e in &data.epci {
            b.push(Row {
                kind: CollectiviteKind::Epci,
                code: &e.siren,
                name: &e.name,
                siren: Some(&e.siren),
                postcodes: &[],
                population: e.population,
                departement: epci_main.get(e.siren.as_str()).copied(),
                dep_code: "",
                region_code: None,
                epci: Some(&e.epci_type),
            });
        }
        for c in &data.communes {
            b.push(Row {
                kind: CollectiviteKind::Commune,
                code: &c.insee,
                name: &c.name,
                siren: c.siren.as_deref(),
                postcodes: &c.postcodes,
                population: c.population,
                departement: dep_index.get(c.departement_code.as_str()).copied(),
                dep_code: &c.departement_code,
                region_code: c.region_code.as_deref(),
                epci: c.epci_siren.as_deref(),
            });
        }
        for d in &data.departements {
            b.push(Row {
                kind: CollectiviteKind::Departement,
                code: &d.code,
                name: &d.name,
                siren: None,
                postcodes: &[],
                population: d.population,
                departement: dep_index.get(d.code.as_str()).copied(),
                dep_code: &d.code,
                region_code: Some(&d.region_code),
                epci: None,
            });
        }
        for r in &data.regions {
            b.push(Row {
                kind: CollectiviteKind::Region,
                code: &r.code,
                name: &r.name,
                siren: None,
                postcodes: &[],
                population: r.population,
                departement: None,
                dep_code: "",
                region_code: None,
                epci: None,
            });
        }
        drop(epci_main);
        drop(data);
        b.text.shrink_to_fit();
        let text = b.text;
        let s = |span: Span| {
            let start = span.start as usize;
            text.get(start..start + span.len as usize)
                .unwrap_or_default()
        };
        // Ranking order: larger population first, then name, then code.
        let mut entries = b.entries;
        entries.sort_by(|a, b| {
            b.population
                .cmp(&a.population)
                .then_with(|| s(a.name).cmp(s(b.name)))
                .then_with(|| s(a.code).cmp(s(b.code)))
        });
        entries.shrink_to_fit();
        let n = entries.len() as u32;
        let sorted_by = |keep: &dyn Fn(&Entry) -> bool, key: &dyn Fn(&Entry) -> Span| {
            let mut v: Vec<u32> = (0..n).filter(|i| keep(&entries[*i as usize])).collect();
            v.sort_by(|a, b| {
                s(key(&entries[*a as usize]))
                    .cmp(s(key(&entries[*b as usize])))
                    .then(a.cmp(b))
            });
            v.shrink_to_fit();
            v
        };
        let codes = sorted_by(&|_| true, &|e| e.code);
        let sirens = sorted_by(&|e| e.siren.len > 0, &|e| e.siren);
        let names = sorted_by(&|_| true, &|e| e.folded);
        let is_commune = |e: &Entry| e.kind == CollectiviteKind::Commune;
        let by_departement = sorted_by(&is_commune, &|e| e.dep_code);
        let by_region = sorted_by(&|e| is_commune(e) && e.region_code.len > 0, &|e| {
            e.region_code
        });
        let mut postcodes: Vec<(Span, u32)> = Vec::new();
        let mut words: Vec<(u32, u32)> = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let i = i as u32;
            let mut at = e.postcodes.start;
            for p in s(e.postcodes).split(' ') {
                if !p.is_empty() {
                    postcodes.push((
                        Span {
                            start: at,
                            len: p.len() as u32,
                        },
                        i,
                    ));
                }
                at += p.len() as u32 + 1;
            }
            let folded = s(e.folded).as_bytes();
            for (pos, _) in folded.iter().enumerate().filter(|(_, c)| **c == b' ') {
                if pos + 1 < folded.len() {
                    words.push((e.folded.start + pos as u32 + 1, i));
                }
            }
        }
        postcodes.sort_by(|a, b| s(a.0).cmp(s(b.0)).then(a.1.cmp(&b.1)));
        postcodes.shrink_to_fit();
        let word_text = |w: &(u32, u32)| {
            let f = entries[w.1 as usize].folded;
            let end = (f.start + f.len) as usize;
            text.get(w.0 as usize..end).unwrap_or_default()
        };
        words.sort_by(|a, b| word_text(a).cmp(word_text(b)).then(a.1.cmp(&b.1)));
        words.shrink_to_fit();
        let grams = Grams::build(
            entries
                .iter()
                .enumerate()
                .map(|(i, e)| (i as u32, s(e.folded).as_bytes())),
        );
        // EPCI memberships, from the communes' EPCI SIREN.
        let mut members: Vec<(u32, u32)> = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            if e.kind != CollectiviteKind::Commune || e.epci.len == 0 {
                continue;
            }
            let siren = s(e.epci);
            let epci = exact_range(&codes, |c| s(entries[*c as usize].code), siren)
                .iter()
                .find(|c| entries[**c as usize].kind == CollectiviteKind::Epci);
            if let Some(epci) = epci {
                members.push((*epci, i as u32));
            }
        }
        members.sort_unstable();
        members.shrink_to_fit();
        VintageIndex {
            departements,
            codes,
            sirens,
            postcodes,
            names,
            words,
            grams,
            members,
            by_departement,
            by_region,
            communes_per_departement,
            entries,
            text,
        }
    }

    fn s(&self, span: Span) -> &str {
        let start = span.start as usize;
        self.text
            .get(start..start + span.len as usize)
            .unwrap_or_default()
    }

    fn entry(&self, i: u32) -> Option<&Entry> {
        self.entries.get(i as usize)
    }

    fn code_of(&self, i: u32) -> &str {
        self.entry(i).map(|e| self.s(e.code)).unwrap_or_default()
    }

    fn folded_of(&self, i: u32) -> &str {
        self.entry(i).map(|e| self.s(e.folded)).unwrap_or_default()
    }

    fn word_text(&self, w: &(u32, u32)) -> &str {
        let Some(e) = self.entry(w.1) else {
            return "";
        };
        let end = (e.folded.start + e.folded.len) as usize;
        self.text.get(w.0 as usize..end).unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Ranks: 0 code/SIREN/postcode exact, 1 name exact, 2 name prefix, 3 word prefix,
    /// 4 code or postcode prefix (a commune, two digits at least), 5 substring. A query of
    /// digits only is matched against codes, postcodes and name prefixes, not inside names.
    /// Ties: larger population first, then name.
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
        let digits = q.bytes().all(|c| c.is_ascii_digit());
        let mut found = Found {
            index: self,
            kind,
            limit,
            list: Vec::with_capacity(limit.min(64)),
        };
        // 0: exact code, SIREN or postcode.
        let codes = exact_range(&self.codes, |i| self.code_of(*i), &q_upper);
        let sirens = exact_range(
            &self.sirens,
            |i| self.entry(*i).map(|e| self.s(e.siren)).unwrap_or_default(),
            &q,
        );
        let postcodes = exact_range(&self.postcodes, |p| self.s(p.0), &q);
        found.rank(
            codes
                .iter()
                .chain(sirens)
                .copied()
                .chain(postcodes.iter().map(|p| p.1)),
        );
        // 1 and 2: name exact, then name prefix.
        let names = prefix_range(&self.names, |i| self.folded_of(*i), &q);
        let exact = names.partition_point(|i| self.folded_of(*i) == q);
        if !found.full() {
            found.rank(names.iter().take(exact).copied());
        }
        if !found.full() {
            found.rank(names.iter().skip(exact).copied());
        }
        if digits {
            // 4: code or postcode prefix, communes only.
            if q.len() >= 2 && !found.full() && kind.is_none_or(|k| k == CollectiviteKind::Commune)
            {
                let codes = prefix_range(&self.codes, |i| self.code_of(*i), &q);
                let postcodes = prefix_range(&self.postcodes, |p| self.s(p.0), &q);
                found.rank(
                    codes
                        .iter()
                        .copied()
                        .filter(|i| {
                            self.entry(*i)
                                .is_some_and(|e| e.kind == CollectiviteKind::Commune)
                        })
                        .chain(postcodes.iter().map(|p| p.1)),
                );
            }
        } else {
            // 3: a word of the name starts with the query.
            if !found.full() {
                let words = prefix_range(&self.words, |w| self.word_text(w), &q);
                found.rank(words.iter().map(|w| w.1));
            }
            // 5: anywhere in the name.
            if !found.full() {
                let finder = memchr::memmem::Finder::new(q.as_bytes());
                let candidates = self.grams.candidates(q.as_bytes());
                found.rank_in_order(candidates, |i| {
                    finder.find(self.folded_of(i).as_bytes()).is_some()
                });
            }
        }
        found
            .list
            .into_iter()
            .filter_map(|i| self.entry(i))
            .map(|e| Hit {
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
            })
            .collect()
    }

    fn place(&self, i: u32) -> Option<Place<'_>> {
        let e = self.entry(i)?;
        let some = |span: Span| Some(self.s(span)).filter(|s| !s.is_empty());
        Some(Place {
            kind: e.kind,
            code: self.s(e.code),
            name: self.s(e.name),
            population: e.population,
            departement: some(e.dep_code),
            region: match e.kind {
                CollectiviteKind::Commune | CollectiviteKind::Departement => some(e.region_code),
                _ => None,
            },
            nature: match e.kind {
                CollectiviteKind::Epci => some(e.epci),
                _ => None,
            },
        })
    }

    fn find_index(&self, kind: CollectiviteKind, code: &str) -> Option<u32> {
        exact_range(&self.codes, |i| self.code_of(*i), code)
            .iter()
            .copied()
            .find(|i| self.entry(*i).is_some_and(|e| e.kind == kind))
    }

    /// A collectivité of this vintage, by kind and code.
    pub fn find(&self, kind: CollectiviteKind, code: &str) -> Option<Place<'_>> {
        self.find_index(kind, code).and_then(|i| self.place(i))
    }

    /// The communes a collectivité is made of (a commune is its own), in no particular order;
    /// `None` when it does not exist in this vintage.
    pub fn member_communes(&self, kind: CollectiviteKind, code: &str) -> Option<Vec<Place<'_>>> {
        let i = self.find_index(kind, code)?;
        let list: Vec<u32> = match kind {
            CollectiviteKind::Commune => vec![i],
            CollectiviteKind::Epci => {
                let start = self.members.partition_point(|m| m.0 < i);
                let rest = self.members.get(start..).unwrap_or_default();
                let len = rest.partition_point(|m| m.0 == i);
                rest.iter().take(len).map(|m| m.1).collect()
            }
            CollectiviteKind::Departement => exact_range(
                &self.by_departement,
                |c| {
                    self.entry(*c)
                        .map(|e| self.s(e.dep_code))
                        .unwrap_or_default()
                },
                code,
            )
            .to_vec(),
            CollectiviteKind::Region => exact_range(
                &self.by_region,
                |c| {
                    self.entry(*c)
                        .map(|e| self.s(e.region_code))
                        .unwrap_or_default()
                },
                code,
            )
            .to_vec(),
        };
        Some(list.into_iter().filter_map(|c| self.place(c)).collect())
    }

    /// How many communes each département (or overseas collectivité) holds.
    pub fn communes_per_departement(&self) -> &HashMap<String, usize> {
        &self.communes_per_departement
    }
}

#[derive(Default)]
struct Loaded {
    /// `None` until the first load, and after an import made by this instance.
    marker: Option<Vec<(i64, String)>>,
    vintages: HashMap<Vintage, Arc<VintageIndex>>,
}

/// The shared service: one index per imported vintage, reloaded after imports.
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

    fn is_loaded(&self) -> bool {
        self.loaded
            .read()
            .map(|l| l.marker.is_some())
            .unwrap_or(false)
    }

    /// Reloads if the database holds other imports than the ones indexed.
    pub async fn refresh(&self, db: &Db) -> AppResult<()> {
        let _guard = self.reload.lock().await;
        let imports = store::imports(db).await?;
        let current = marker(&imports);
        let same = self
            .loaded
            .read()
            .map(|l| l.marker.as_ref() == Some(&current))
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
            let built = tokio::task::spawn_blocking(move || VintageIndex::build(data))
                .await
                .map_err(|e| anyhow::anyhow!(e))?;
            vintages.insert(v, Arc::new(built));
        }
        let count: usize = vintages.values().map(|v| v.len()).sum();
        if let Ok(mut l) = self.loaded.write() {
            *l = Loaded {
                marker: Some(current),
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

    /// Forgets what is loaded: the next use reloads (called after an import made here).
    pub fn invalidate(&self) {
        if let Ok(mut l) = self.loaded.write() {
            l.marker = None;
        }
        if let Ok(mut last) = self.last_check.lock() {
            *last = None;
        }
    }

    /// Checks `ref_imports` at most once a second; waits for the first load.
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
        if due || !self.is_loaded() {
            self.refresh(db).await?;
        }
        Ok(())
    }

    /// The index of a vintage as loaded, without checking for a newer import.
    pub fn vintage_index(&self, vintage: Vintage) -> Option<Arc<VintageIndex>> {
        self.loaded
            .read()
            .ok()
            .and_then(|l| l.vintages.get(&vintage).cloned())
    }

    /// The index of a vintage, up to date within a second; `None` when it is not imported.
    pub async fn vintage(&self, db: &Db, vintage: Vintage) -> AppResult<Option<Arc<VintageIndex>>> {
        self.refresh_if_stale(db).await?;
        Ok(self.vintage_index(vintage))
    }

    /// The imported vintages, oldest first, up to date within a second.
    pub async fn vintages(&self, db: &Db) -> AppResult<Vec<Vintage>> {
        self.refresh_if_stale(db).await?;
        let mut v: Vec<Vintage> = self
            .loaded
            .read()
            .map(|l| l.vintages.keys().copied().collect())
            .unwrap_or_default();
        v.sort_by_key(|v| v.year());
        Ok(v)
    }

    pub async fn search(
        &self,
        db: &Db,
        vintage: Vintage,
        query: &str,
        kind: Option<CollectiviteKind>,
        limit: usize,
    ) -> AppResult<Vec<Hit>> {
        Ok(self
            .vintage(db, vintage)
            .await?
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
    use guichet_storage::referentiel::{CommuneRow, DepartementRow, EpciRow, RegionRow};

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
        let mut communes = vec![
            commune("95127", "Cergy", 65911, "95000"),
            commune("95500", "Pontoise", 30000, "95000"),
            commune("95572", "Saint-Ouen-l'Aumône", 24000, "95310"),
            commune("95999", "Vauréal-lès-Cergy", 100, "95490"),
        ];
        communes[0].epci_siren = Some("200035970".into());
        communes[1].epci_siren = Some("200035970".into());
        VintageIndex::build(VintageData {
            regions: vec![RegionRow {
                code: "11".into(),
                name: "Île-de-France".into(),
                liaison: 0,
                population: 96011,
            }],
            departements: vec![DepartementRow {
                code: "95".into(),
                name: "Val-d'Oise".into(),
                liaison: 2,
                region_code: "11".into(),
                population: 0,
            }],
            communes,
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

    #[test]
    fn the_aggregates_answer_what_the_simulator_reads() {
        let idx = index();
        let cergy = idx.find(CollectiviteKind::Commune, "95127").unwrap();
        assert_eq!(cergy.name, "Cergy");
        assert_eq!(cergy.departement, Some("95"));
        assert_eq!(cergy.region, Some("11"));
        let ca = idx.find(CollectiviteKind::Epci, "200035970").unwrap();
        assert_eq!(ca.nature, Some("CA"));
        let mut members: Vec<&str> = idx
            .member_communes(CollectiviteKind::Epci, "200035970")
            .unwrap()
            .iter()
            .map(|p| p.code)
            .collect();
        members.sort();
        assert_eq!(members, ["95127", "95500"]);
        assert_eq!(
            idx.member_communes(CollectiviteKind::Departement, "95")
                .unwrap()
                .len(),
            4
        );
        assert_eq!(
            idx.member_communes(CollectiviteKind::Region, "11")
                .unwrap()
                .len(),
            4
        );
        assert!(idx
            .member_communes(CollectiviteKind::Region, "95")
            .is_none());
        assert!(idx.find(CollectiviteKind::Departement, "11").is_none());
        assert_eq!(idx.communes_per_departement().get("95"), Some(&4));
    }

    /// The ranking rules, written as a scan over every entry: what the index must answer.
    fn reference(
        idx: &VintageIndex,
        query: &str,
        kind: Option<CollectiviteKind>,
        limit: usize,
    ) -> Vec<(CollectiviteKind, String)> {
        let q = fold(query);
        if q.is_empty() {
            return vec![];
        }
        let q_upper = q.to_ascii_uppercase();
        let digits = q.chars().all(|c| c.is_ascii_digit());
        let word = format!(" {q}");
        let rank = |e: &Entry| -> Option<u8> {
            let code = idx.s(e.code);
            let folded = idx.s(e.folded);
            let mut postcodes = idx.s(e.postcodes).split(' ');
            if code == q_upper || idx.s(e.siren) == q || postcodes.clone().any(|p| p == q) {
                return Some(0);
            }
            if folded == q {
                return Some(1);
            }
            if folded.starts_with(&q) {
                return Some(2);
            }
            if digits {
                let prefix = code.starts_with(&q) || postcodes.any(|p| p.starts_with(&q));
                return (q.len() >= 2 && e.kind == CollectiviteKind::Commune && prefix)
                    .then_some(4);
            }
            if folded.contains(&word) {
                return Some(3);
            }
            folded.contains(&q).then_some(5)
        };
        let mut found: Vec<(u8, i64, &str, &str, CollectiviteKind)> = idx
            .entries
            .iter()
            .filter(|e| kind.is_none_or(|k| k == e.kind))
            .filter_map(|e| {
                rank(e).map(|r| (r, -e.population, idx.s(e.name), idx.s(e.code), e.kind))
            })
            .collect();
        found.sort();
        found
            .into_iter()
            .take(limit)
            .map(|f| (f.4, f.3.to_string()))
            .collect()
    }

    /// Every ranking rule, on the whole real 2021 referential: the index answers exactly what a
    /// scan of every entry answers, for names, words, pieces of words, codes and postcodes.
    #[test]
    fn the_index_answers_what_a_scan_of_every_entry_answers() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../node_modules/decoupage-administratif-2021/data");
        let data = crate::referentiel::import::read_vintage(&dir)
            .expect("the 2021 package (npm ci) is installed");
        let idx = VintageIndex::build(data);
        let mut queries: Vec<String> = [
            "cergy",
            "Cergy",
            "cer",
            "saint",
            "saint ouen",
            "sur",
            "st",
            "e",
            "y",
            "ll",
            "zz",
            "zzzz",
            "le havre",
            "ca de",
            "metropole",
            "val d oise",
            "ile de france",
            "2a",
            "2a004",
            "95",
            "950",
            "95000",
            "13001",
            "75056",
            "249500109",
            "219501277",
            "7",
            "00",
            "a",
            "de",
            "les",
            "eaux",
            "ville",
            "-",
            "x y",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for (n, e) in idx.entries.iter().enumerate().step_by(1201) {
            let folded = idx.s(e.folded);
            let chars: Vec<char> = folded.chars().collect();
            for len in [1, 2, 3, 5] {
                queries.push(chars.iter().take(len).collect());
                queries.push(chars.iter().skip(chars.len() / 2).take(len).collect());
            }
            queries.push(folded.split(' ').next_back().unwrap_or_default().into());
            queries.push(idx.s(e.code).chars().take(2 + n % 3).collect());
            queries.push(idx.s(e.postcodes).chars().take(3).collect());
        }
        let kinds = [
            None,
            Some(CollectiviteKind::Commune),
            Some(CollectiviteKind::Epci),
            Some(CollectiviteKind::Departement),
            Some(CollectiviteKind::Region),
        ];
        for (n, q) in queries.iter().enumerate() {
            let kind = kinds[n % kinds.len()];
            let expected = reference(&idx, q, kind, 50);
            for limit in [1, 10, 50] {
                let got: Vec<(CollectiviteKind, String)> = idx
                    .search(q, kind, limit, Vintage::Y2021)
                    .into_iter()
                    .map(|h| (h.kind, h.code))
                    .collect();
                assert_eq!(
                    got,
                    expected[..expected.len().min(limit)],
                    "« {q} », {kind:?}, {limit}"
                );
            }
        }
    }
}
