//! CSV for spreadsheets set to French: UTF-8 with a byte-order mark, `;`, CRLF.

use crate::{euros_text, Cell, Column, DocumentError};
use std::io::Write;

/// Writes a table row by row into any `Write` (a file, a buffer, a streamed body).
pub struct CsvWriter<W: Write> {
    out: W,
    columns: usize,
    line: String,
}

/// A text field as written: quoted when it holds a separator, a quote or a line break; a
/// leading `=`, `+`, `-`, `@`, tab or CR prefixed with `'` so no spreadsheet runs it as a
/// formula.
pub fn field(s: &str, out: &mut String) {
    let neutralise = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = s.contains([';', '"', '\n', '\r']);
    if quote {
        out.push('"');
    }
    if neutralise {
        out.push('\'');
    }
    if quote {
        for ch in s.chars() {
            if ch == '"' {
                out.push('"');
            }
            out.push(ch);
        }
        out.push('"');
    } else {
        out.push_str(s);
    }
}

impl<W: Write> CsvWriter<W> {
    /// Writes the byte-order mark and the header line.
    pub fn new(mut out: W, columns: &[Column]) -> Result<CsvWriter<W>, DocumentError> {
        out.write_all("\u{feff}".as_bytes())?;
        let mut w = CsvWriter {
            out,
            columns: columns.len(),
            line: String::with_capacity(256),
        };
        for (i, c) in columns.iter().enumerate() {
            if i > 0 {
                w.line.push(';');
            }
            field(&c.title, &mut w.line);
        }
        w.end_line()?;
        Ok(w)
    }

    fn end_line(&mut self) -> Result<(), DocumentError> {
        self.line.push_str("\r\n");
        self.out.write_all(self.line.as_bytes())?;
        self.line.clear();
        Ok(())
    }

    pub fn row(&mut self, cells: &[Cell<'_>]) -> Result<(), DocumentError> {
        if cells.len() != self.columns {
            return Err(DocumentError::Width {
                expected: self.columns,
                got: cells.len(),
            });
        }
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                self.line.push(';');
            }
            match c {
                Cell::Empty => {}
                Cell::Text(s) => field(s, &mut self.line),
                Cell::Integer(n) => self.line.push_str(&n.to_string()),
                Cell::Euros(cents) => self.line.push_str(&euros_text(*cents)),
                Cell::Date(d) => self.line.push_str(&d.format("%Y-%m-%d").to_string()),
            }
        }
        self.end_line()
    }

    /// Flushes and gives the output back.
    pub fn finish(mut self) -> Result<W, DocumentError> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn a_table_is_written_with_bom_separators_quotes_and_neutralised_formulas() {
        let cols = [
            Column::new("numéro", 10.0),
            Column::new("titre", 30.0),
            Column::new("montant (€)", 12.0),
            Column::new("déposé le", 12.0),
            Column::new("communes", 8.0),
        ];
        let mut w = CsvWriter::new(Vec::new(), &cols).unwrap();
        w.row(&[
            Cell::Text("ITN7-95-2021-00001"),
            Cell::Text("Guichet « unique » ; phase 2"),
            Cell::Euros(4_000_050),
            Cell::Date(NaiveDate::from_ymd_opt(2021, 6, 1).unwrap()),
            Cell::Integer(31),
        ])
        .unwrap();
        w.row(&[
            Cell::Text("=HYPERLINK(\"http://x\")"),
            Cell::Text("ligne\nsuivante"),
            Cell::Empty,
            Cell::Empty,
            Cell::Text("-3"),
        ])
        .unwrap();
        let text = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(
            text,
            "\u{feff}numéro;titre;montant (€);déposé le;communes\r\n\
             ITN7-95-2021-00001;\"Guichet « unique » ; phase 2\";40000,50;2021-06-01;31\r\n\
             \"'=HYPERLINK(\"\"http://x\"\")\";\"ligne\nsuivante\";;;'-3\r\n"
        );
    }

    #[test]
    fn a_row_of_the_wrong_width_is_refused() {
        let mut w = CsvWriter::new(Vec::new(), &[Column::new("a", 1.0)]).unwrap();
        assert!(matches!(
            w.row(&[Cell::Empty, Cell::Empty]),
            Err(DocumentError::Width {
                expected: 1,
                got: 2
            })
        ));
    }
}
