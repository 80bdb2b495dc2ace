//! Documents Guichet writes. Today: tabular exports, one row at a time, in two formats that
//! read the same table description:
//!
//! - [`csv::CsvWriter`]: UTF-8 with a byte-order mark and `;` separators (what a spreadsheet set
//!   to French reads without an import dialog), CRLF line ends, fields quoted when needed, a
//!   leading formula character neutralised (CSV injection), amounts in euros with a decimal
//!   comma;
//! - [`xlsx::XlsxWriter`]: an Excel workbook in rust_xlsxwriter's constant-memory mode (each row
//!   goes to a temporary file as it is written, so memory does not grow with the row count),
//!   amounts as numbers formatted in euros, dates as dates.
//!
//! Both take [`Cell`]s: money is integer cents until the writer formats it.

pub mod csv;
pub mod xlsx;

use chrono::NaiveDate;

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Empty,
    Text(&'a str),
    Integer(i64),
    /// An amount in cents, written in euros.
    Euros(i64),
    Date(NaiveDate),
}

/// A column: its title, and its width in characters for the XLSX sheet.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub title: String,
    pub width: f64,
}

impl Column {
    pub fn new(title: impl Into<String>, width: f64) -> Column {
        Column {
            title: title.into(),
            width,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("écriture du document impossible : {0}")]
    Io(#[from] std::io::Error),
    #[error("écriture du classeur XLSX impossible : {0}")]
    Xlsx(String),
    #[error("ligne de {got} cellules pour {expected} colonnes")]
    Width { expected: usize, got: usize },
    #[error("le classeur XLSX est limité à 1 048 575 lignes de données")]
    TooManyRows,
}

/// Euros with a decimal comma and two decimals: `-1234,50` (no thousands separator, so that a
/// spreadsheet reads it as a number).
pub fn euros_text(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{},{:02}", abs / 100, abs % 100)
}

#[cfg(test)]
mod tests {
    use super::euros_text;

    #[test]
    fn euros_are_written_with_a_decimal_comma() {
        assert_eq!(euros_text(0), "0,00");
        assert_eq!(euros_text(5), "0,05");
        assert_eq!(euros_text(123_456), "1234,56");
        assert_eq!(euros_text(-150), "-1,50");
        assert_eq!(euros_text(i64::MIN), "-92233720368547758,08");
    }
}
