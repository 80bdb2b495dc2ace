//! XLSX in constant memory: rows go to a temporary file as they are written; the workbook is
//! assembled when saved.

use crate::{Cell, Column, DocumentError};
use rust_xlsxwriter::{Format, FormatAlign, Workbook, Worksheet, XlsxError};
use std::path::Path;

/// The last row index Excel accepts (the header takes row 0).
const MAX_ROW: u32 = 1_048_575;

fn xlsx(e: XlsxError) -> DocumentError {
    DocumentError::Xlsx(e.to_string())
}

/// Writes one sheet row by row, then saves the workbook to a file.
pub struct XlsxWriter {
    workbook: Workbook,
    columns: usize,
    next_row: u32,
    euros: Format,
    date: Format,
}

impl XlsxWriter {
    /// A workbook with one sheet named `sheet`, its header in bold and frozen, its columns sized.
    pub fn new(sheet: &str, columns: &[Column]) -> Result<XlsxWriter, DocumentError> {
        let mut workbook = Workbook::new();
        let header = Format::new().set_bold().set_align(FormatAlign::Top);
        let ws: &mut Worksheet = workbook
            .add_worksheet_with_constant_memory()
            .map_err(xlsx)?;
        ws.set_name(sheet).map_err(xlsx)?;
        for (i, c) in columns.iter().enumerate() {
            let col = u16::try_from(i).map_err(|_| DocumentError::Width {
                expected: usize::from(u16::MAX),
                got: columns.len(),
            })?;
            ws.set_column_width(col, c.width).map_err(xlsx)?;
            ws.write_string_with_format(0, col, &c.title, &header)
                .map_err(xlsx)?;
        }
        ws.set_freeze_panes(1, 0).map_err(xlsx)?;
        Ok(XlsxWriter {
            workbook,
            columns: columns.len(),
            next_row: 1,
            euros: Format::new().set_num_format("#,##0.00\\ \"€\""),
            date: Format::new().set_num_format("dd/mm/yyyy"),
        })
    }

    pub fn row(&mut self, cells: &[Cell<'_>]) -> Result<(), DocumentError> {
        if cells.len() != self.columns {
            return Err(DocumentError::Width {
                expected: self.columns,
                got: cells.len(),
            });
        }
        if self.next_row > MAX_ROW {
            return Err(DocumentError::TooManyRows);
        }
        let row = self.next_row;
        let ws = self.workbook.worksheet_from_index(0).map_err(xlsx)?;
        for (i, c) in cells.iter().enumerate() {
            // `columns` fitted in u16 when the header was written.
            let col = i as u16;
            match c {
                Cell::Empty => {}
                Cell::Text(s) => {
                    ws.write_string(row, col, *s).map_err(xlsx)?;
                }
                Cell::Integer(n) => {
                    ws.write_number(row, col, *n as f64).map_err(xlsx)?;
                }
                Cell::Euros(cents) => {
                    ws.write_number_with_format(row, col, *cents as f64 / 100.0, &self.euros)
                        .map_err(xlsx)?;
                }
                Cell::Date(d) => {
                    let dt = rust_xlsxwriter::ExcelDateTime::parse_from_str(
                        &d.format("%Y-%m-%d").to_string(),
                    )
                    .map_err(xlsx)?;
                    ws.write_datetime_with_format(row, col, &dt, &self.date)
                        .map_err(xlsx)?;
                }
            }
        }
        self.next_row += 1;
        Ok(())
    }

    /// Assembles and writes the workbook.
    pub fn save(mut self, path: &Path) -> Result<(), DocumentError> {
        self.workbook.save(path).map_err(xlsx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use std::io::Read;

    #[test]
    fn a_sheet_holds_its_header_numbers_in_euros_and_dates() {
        let dir = std::env::temp_dir().join(format!("guichet-xlsx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dossiers.xlsx");
        let mut w = XlsxWriter::new(
            "Dossiers",
            &[
                Column::new("Numéro", 20.0),
                Column::new("Montant", 12.0),
                Column::new("Déposé le", 12.0),
            ],
        )
        .unwrap();
        w.row(&[
            Cell::Text("ITN7-95-2021-00001"),
            Cell::Euros(4_000_050),
            Cell::Date(NaiveDate::from_ymd_opt(2021, 6, 1).unwrap()),
        ])
        .unwrap();
        assert!(w.row(&[Cell::Empty]).is_err());
        w.save(&path).unwrap();
        let mut zip = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
        let mut sheet = String::new();
        zip.by_name("xl/worksheets/sheet1.xml")
            .unwrap()
            .read_to_string(&mut sheet)
            .unwrap();
        assert!(sheet.contains("ITN7-95-2021-00001"), "{sheet}");
        assert!(sheet.contains("<v>40000.5</v>"), "{sheet}");
        // 2021-06-01 as an Excel serial date.
        assert!(sheet.contains("<v>44348</v>"), "{sheet}");
        let mut workbook = String::new();
        zip.by_name("xl/workbook.xml")
            .unwrap()
            .read_to_string(&mut workbook)
            .unwrap();
        assert!(workbook.contains("name=\"Dossiers\""), "{workbook}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
