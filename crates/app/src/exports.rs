//! Exports (`app.exports()`): the dossiers a principal sees, as CSV or XLSX, written row by
//! row while the dossiers are read page by page (keyset on the id), so that memory stays flat
//! whatever the count. The scope is the listing's (`Dossiers::list`'s `WHERE`); the writers are
//! the documents crate's.

use crate::dossiers::{Dossier, ListFilter};
use crate::error::{AppError, AppResult};
use crate::App;
use guichet_documents::csv::CsvWriter;
use guichet_documents::xlsx::XlsxWriter;
use guichet_documents::{Cell, Column, DocumentError};
use guichet_domain::{CollectiviteRef, Principal};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

/// Dossiers read per query.
const BATCH: i64 = 1000;

/// The export's formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
}

impl Format {
    pub fn parse(s: &str) -> AppResult<Format> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "xlsx" => Ok(Format::Xlsx),
            other => Err(AppError::Invalid(format!(
                "format inconnu : « {other} » (csv ou xlsx)"
            ))),
        }
    }
}

/// The columns, in order: (title, width in characters).
const COLUMNS: [(&str, f64); 13] = [
    ("Numéro", 20.0),
    ("Titre", 40.0),
    ("Collectivité", 28.0),
    ("Référence de la collectivité", 20.0),
    ("Mesure", 32.0),
    ("État", 16.0),
    ("Service instructeur", 32.0),
    ("Déposé le", 12.0),
    ("Dépenses déclarées (HT)", 16.0),
    ("Aide indicative au dépôt", 16.0),
    ("Montant attribué", 16.0),
    ("Taux attribué (%)", 10.0),
    ("Dernière modification", 12.0),
];

enum Sink<W: Write> {
    Csv(CsvWriter<W>),
    Xlsx(Box<XlsxWriter>),
}

impl<W: Write> Sink<W> {
    fn row(&mut self, cells: &[Cell<'_>]) -> Result<(), DocumentError> {
        match self {
            Sink::Csv(w) => w.row(cells),
            Sink::Xlsx(w) => w.row(cells),
        }
    }
}

fn opt(s: Option<&str>) -> Cell<'_> {
    s.map_or(Cell::Empty, Cell::Text)
}

fn failed(e: DocumentError) -> AppError {
    AppError::Internal(anyhow::anyhow!(e))
}

/// Exports' use cases (`app.exports()`).
#[derive(Clone, Copy)]
pub struct Exports<'a> {
    pub(crate) app: &'a App,
}

impl Exports<'_> {
    /// Writes the dossiers `p` sees matching `filter` (its `after_id` and `limit` ignored) to
    /// `path` in `format`; returns how many. A CSV goes to the file as it is written; an XLSX
    /// is assembled from the writer's temporary rows when it is saved.
    pub async fn dossiers(
        &self,
        p: &Principal,
        filter: &ListFilter<'_>,
        format: Format,
        path: &Path,
    ) -> AppResult<u64> {
        let columns: Vec<Column> = COLUMNS.iter().map(|(t, w)| Column::new(*t, *w)).collect();
        let mut sink: Sink<std::io::BufWriter<std::fs::File>> = match format {
            Format::Csv => {
                let file = std::fs::File::create(path).map_err(|e| {
                    AppError::Invalid(format!("impossible d’écrire « {} » : {e}", path.display()))
                })?;
                Sink::Csv(CsvWriter::new(std::io::BufWriter::new(file), &columns).map_err(failed)?)
            }
            Format::Xlsx => Sink::Xlsx(Box::new(
                XlsxWriter::new("Dossiers", &columns).map_err(failed)?,
            )),
        };
        let mut services: HashMap<i64, String> = HashMap::new();
        let mut after = None;
        let mut count = 0u64;
        loop {
            let rows = self
                .app
                .dossiers()
                .list_batch(
                    p,
                    &ListFilter {
                        after_id: after,
                        limit: BATCH,
                        ..filter.clone()
                    },
                )
                .await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.id);
            let full = rows.len() as i64 == BATCH;
            let refs: Vec<CollectiviteRef> = rows.iter().map(|r| r.applicant.clone()).collect();
            let names = self.app.accounts().named_collectivites(&refs).await?;
            for (row, (_, name)) in rows.into_iter().zip(names) {
                if let Some(sid) = row.service_id {
                    if let std::collections::hash_map::Entry::Vacant(e) = services.entry(sid) {
                        let n = self.app.accounts().service_name(sid).await?;
                        e.insert(n.unwrap_or_default());
                    }
                }
                let d = self.app.dossiers().of_row(row)?;
                self.write(&mut sink, &d, &name, &services)?;
                count += 1;
            }
            if !full {
                break;
            }
        }
        match sink {
            Sink::Csv(w) => {
                w.finish()
                    .map_err(failed)?
                    .flush()
                    .map_err(|e| failed(e.into()))?;
            }
            Sink::Xlsx(w) => w.save(path).map_err(failed)?,
        }
        Ok(count)
    }

    fn write<W: Write>(
        &self,
        sink: &mut Sink<W>,
        d: &Dossier,
        name: &str,
        services: &HashMap<i64, String>,
    ) -> AppResult<()> {
        let r = &d.row;
        let number = r.number.as_ref().map(ToString::to_string);
        let applicant = r.applicant.to_string();
        let measure = self
            .app
            .programme
            .measure(&r.measure)
            .map(|m| m.name.as_str())
            .unwrap_or(r.measure.as_str());
        let paris = |t: &guichet_storage::Timestamp| {
            t.instant()
                .with_timezone(&chrono_tz::Europe::Paris)
                .date_naive()
        };
        let service = r
            .service_id
            .and_then(|s| services.get(&s))
            .map(String::as_str);
        let total: i64 = d.data.depenses.values().map(|c| c.get()).sum();
        let rate = r
            .granted_rate_bp
            .map(|bp| guichet_documents::euros_text(bp).replace(",00", ""));
        sink.row(&[
            opt(number.as_deref()),
            Cell::Text(&r.title),
            Cell::Text(name),
            Cell::Text(&applicant),
            Cell::Text(measure),
            Cell::Text(r.state.label()),
            opt(service),
            r.submitted_at
                .as_ref()
                .map_or(Cell::Empty, |t| Cell::Date(paris(t))),
            Cell::Euros(total),
            d.verdict
                .as_ref()
                .and_then(|v| v.montant_centimes)
                .map_or(Cell::Empty, Cell::Euros),
            r.granted_cents.map_or(Cell::Empty, Cell::Euros),
            opt(rate.as_deref()),
            Cell::Date(paris(&r.updated_at)),
        ])
        .map_err(failed)
    }
}
