//! Reading the first sheet of an XLSX applicant batch within [`Limits`]: the workbook
//! decompressed into nothing first (a zip bomb refused before any part is held), then
//! read cell by cell (a sheet whose used area is the whole grid costs its cells), each
//! cell as the text a clerk typed.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use calamine::{DataRef, Reader, Xlsx};

use super::limits::{too_many_rows, Limits, Rows, MAX_CELL_CHARS, NO_ROWS};

/// Decompresses every part of the workbook into nothing, counting bytes, so a zip bomb
/// is refused before any part of it is held in memory (the declared sizes in a zip
/// directory can lie; the decompressed stream cannot).
fn check_zip(bytes: &[u8], limits: &Limits) -> Result<(), String> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| format!("不是可读的XLSX工作簿（not a readable XLSX workbook: {e}）"))?;
    if zip.len() > limits.max_xlsx_parts {
        return Err(format!(
            "工作簿内部文件过多（the workbook holds {} parts, more than {}）",
            zip.len(),
            limits.max_xlsx_parts
        ));
    }
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let part = zip
            .by_index(i)
            .map_err(|e| format!("不是可读的XLSX工作簿（not a readable XLSX workbook: {e}）"))?;
        let room = limits.max_xlsx_uncompressed_bytes - total;
        let n = std::io::copy(&mut part.take(room + 1), &mut std::io::sink())
            .map_err(|e| format!("工作簿已损坏（the workbook is damaged: {e}）"))?;
        total += n;
        if total > limits.max_xlsx_uncompressed_bytes {
            return Err(format!(
                "工作簿解压后超过{} MB，可能是压缩炸弹或过大的表格，请拆分后分批提交（the workbook decompresses to more than {} MB: split the batch）",
                limits.max_xlsx_uncompressed_bytes >> 20,
                limits.max_xlsx_uncompressed_bytes >> 20
            ));
        }
    }
    Ok(())
}

/// A column's letters as Excel shows them (`XFD`) from its 0-based index.
fn column_letters(col: u32) -> String {
    let mut letters = Vec::new();
    let mut c = u64::from(col) + 1;
    while c > 0 {
        let rem = (c - 1) % 26;
        letters.push(b'A' + rem as u8);
        c = (c - 1) / 26;
    }
    letters.reverse();
    String::from_utf8_lossy(&letters).into_owned()
}

/// A cell reference as Excel shows it (`XFD1048576`) from 0-based row and column.
pub(super) fn cell_ref(row: u32, col: u32) -> String {
    format!("{}{}", column_letters(col), u64::from(row) + 1)
}

/// Reads the first sheet cell by cell, never as a dense range: a sheet whose used area
/// runs from A1 to XFD1048576 costs what its non-empty cells cost.
pub(super) fn read_xlsx(bytes: &[u8], limits: &Limits) -> Result<(Vec<String>, Rows), String> {
    check_zip(bytes, limits)?;
    let mut wb: Xlsx<_> = Xlsx::new(Cursor::new(bytes))
        .map_err(|e| format!("不是可读的XLSX工作簿（not a readable XLSX workbook: {e}）"))?;
    let first = wb
        .sheet_names()
        .first()
        .cloned()
        .ok_or_else(|| "工作簿中没有工作表（the workbook has no sheet）".to_owned())?;
    let mut cells = wb
        .worksheet_cells_reader(&first)
        .map_err(|e| format!("无法读取第一个工作表（cannot read the first sheet: {e}）"))?;
    let mut sheet: BTreeMap<u32, Vec<(u32, String)>> = BTreeMap::new();
    let mut count = 0usize;
    while let Some(cell) = cells
        .next_cell()
        .map_err(|e| format!("无法读取第一个工作表（cannot read the first sheet: {e}）"))?
    {
        let (r, c) = cell.get_position();
        let text = data_text(cell.get_value());
        if text.trim().is_empty() {
            continue;
        }
        if text.len() > MAX_CELL_CHARS && text.chars().count() > MAX_CELL_CHARS {
            return Err(format!(
                "单元格{}的内容超过{MAX_CELL_CHARS}个字符（Excel单元格的上限），这不是一份申请人名单（cell {} holds more than {MAX_CELL_CHARS} characters, more than Excel allows）",
                cell_ref(r, c),
                cell_ref(r, c)
            ));
        }
        if c as usize >= limits.max_columns {
            return Err(format!(
                "单元格{}超出前{}列，请删除表格右侧多余的内容（cell {} is beyond the first {} columns: remove what lies to the right of the table）",
                cell_ref(r, c),
                limits.max_columns,
                cell_ref(r, c),
                limits.max_columns
            ));
        }
        count += 1;
        if count > limits.max_cells {
            return Err(format!(
                "非空单元格超过{}个（more than {} non-empty cells）",
                limits.max_cells, limits.max_cells
            ));
        }
        if !sheet.contains_key(&r) && sheet.len() > limits.max_rows {
            return Err(too_many_rows(limits));
        }
        sheet.entry(r).or_default().push((c, text));
    }
    let mut it = sheet.into_iter();
    let Some((_, header_cells)) = it.next() else {
        return Err(NO_ROWS.into());
    };
    // Rows are as wide as the header, never the sheet: a cell far to the right would
    // otherwise widen every one of a million rows.
    let width = header_cells
        .iter()
        .map(|(c, _)| *c as usize + 1)
        .max()
        .unwrap_or(0);
    let dense = |cells: Vec<(u32, String)>| {
        let mut v = vec![String::new(); width];
        for (c, t) in cells {
            v[c as usize] = t;
        }
        v
    };
    let header = dense(header_cells);
    let mut rows = Vec::new();
    for (r, cells) in it {
        if let Some((c, _)) = cells.iter().find(|(c, _)| *c as usize >= width) {
            let last = column_letters(width.saturating_sub(1) as u32);
            return Err(format!(
                "单元格{}在表头之外（表头只到{last}列），请删除表格右侧多余的内容，或为该列加上表头（cell {} lies right of the header, which ends at column {last}: remove it or give its column a header）",
                cell_ref(r, *c),
                cell_ref(r, *c)
            ));
        }
        // Sheet rows are 1-based as the clerk sees them.
        rows.push((u64::from(r) + 1, dense(cells)));
    }
    Ok((header, rows))
}

fn data_text(d: &DataRef<'_>) -> String {
    match d {
        DataRef::Empty => String::new(),
        DataRef::String(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_owned(),
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => {
            if f.fract() == 0.0 && f.abs() < 1e15 {
                format!("{}", *f as i64)
            } else if f.abs() >= 1e15 {
                // Excel keeps 15 significant digits: an 18-digit ID typed as a number
                // has lost its last digits. Keep Excel's own notation so the clerk is
                // told so (see `applicants::excel_number_message`).
                format!("{f:E}")
            } else {
                format!("{f}")
            }
        }
        DataRef::Bool(b) => b.to_string(),
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::DateTime(dt) => dt.to_string(),
        DataRef::Error(e) => format!("#{e:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Excel column letters as Excel writes them.
    #[test]
    fn cell_references() {
        assert_eq!(cell_ref(0, 0), "A1");
        assert_eq!(cell_ref(9, 25), "Z10");
        assert_eq!(cell_ref(0, 26), "AA1");
        assert_eq!(cell_ref(1_048_575, 16_383), "XFD1048576");
    }

    const HEADER: &str =
        "申请编号,行政区划代码,城乡类别,救助类型,授权书编号,身份证号,姓名,与申请人关系";

    /// A workbook of `HEADER` and one row, with `from` replaced by `to` in its part
    /// `part` (a cell made longer, a reference made invalid, than any tool would write).
    fn doctored_xlsx(part: &str, from: &str, to: &str) -> Vec<u8> {
        use std::io::{Read as _, Write as _};
        let row = "H1,410184,城市,低保,A1,11010519491231002X,PLACEHOLDER,本人";
        let mut wb = rust_xlsxwriter::Workbook::new();
        let ws = wb.add_worksheet();
        for (r, line) in [HEADER, row].iter().enumerate() {
            for (c, v) in line.split(',').enumerate() {
                ws.write_string(r as u32, c as u16, v).unwrap();
            }
        }
        let bytes = wb.save_to_buffer().unwrap();
        let mut zin = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for i in 0..zin.len() {
            let mut f = zin.by_index(i).unwrap();
            let name = f.name().to_owned();
            let mut text = String::new();
            f.read_to_string(&mut text).unwrap();
            if name == part {
                assert!(text.contains(from), "{name}: {text}");
                text = text.replace(from, to);
            }
            out.start_file(name, zip::write::SimpleFileOptions::default())
                .unwrap();
            out.write_all(text.as_bytes()).unwrap();
        }
        out.finish().unwrap().into_inner()
    }

    /// A cell longer than Excel allows refuses the file, naming the cell; a cell
    /// reference that overflows the reader is a damaged workbook, never a crash.
    #[test]
    fn cells_beyond_what_excel_writes_are_refused() {
        let long = "a".repeat(MAX_CELL_CHARS + 1);
        let bytes = doctored_xlsx("xl/sharedStrings.xml", "PLACEHOLDER", &long);
        let e = crate::applicants::read_batch_within(
            std::path::Path::new("b.xlsx"),
            &bytes,
            &Limits::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("单元格G2的内容超过32767个字符"), "{e}");
        let bytes = doctored_xlsx("xl/worksheets/sheet1.xml", "r=\"G2\"", "r=\"G4294967296\"");
        let e = crate::applicants::read_batch_within(
            std::path::Path::new("b.xlsx"),
            &bytes,
            &Limits::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("工作簿已损坏"), "{e}");
    }
}
