//! Reading an applicant batch file (CSV in UTF-8/GBK, XLSX first sheet, JSON Lines)
//! into rows of raw text keyed by canonical column, with their file row numbers. Every
//! format is read within [`Limits`]: a hostile or broken file is refused with a worded
//! error, never allowed to exhaust memory.

use std::collections::BTreeMap;
use std::path::Path;

use hedui_connectors::text::{decode_text, fold_trim};
use serde_json::value::RawValue;

pub use super::limits::Limits;
use super::limits::{too_many_rows, Rows, NO_ROWS};
use super::model::{ApplicantsError, BatchFormat, Column};
use super::xlsx::read_xlsx;

/// One row: its number as the clerk sees it (CSV and XLSX: the spreadsheet row, the
/// header being row 1; JSONL: the line) and raw
/// values per canonical column (`None` = cell empty or key absent).
#[derive(Debug, Clone)]
pub struct RawRow {
    /// Row number as the clerk sees it.
    pub row: u64,
    /// Values in [`Column::ALL`] order.
    pub values: Vec<Option<String>>,
}

/// A batch file's rows.
#[derive(Debug, Clone)]
pub struct RawBatch {
    /// Format detected.
    pub format: BatchFormat,
    /// Text encoding for CSV/JSONL (e.g. GBK).
    pub encoding: Option<String>,
    /// Headers that name no column of SPEC §3: ignored, and named in a warning.
    pub ignored_columns: Vec<String>,
    /// Data rows.
    pub rows: Vec<RawRow>,
}

impl RawBatch {
    /// Rows given column by column (a household sent as JSON to the API), numbered
    /// from 1 in order; a column a row does not give is empty.
    pub fn of_records(records: Vec<Vec<(Column, Option<String>)>>) -> RawBatch {
        let rows = records
            .into_iter()
            .enumerate()
            .map(|(i, record)| {
                let mut values = vec![None; Column::ALL.len()];
                for (column, value) in record {
                    values[column as usize] = value;
                }
                RawRow {
                    row: i as u64 + 1,
                    values,
                }
            })
            .collect();
        RawBatch {
            format: BatchFormat::Jsonl,
            encoding: None,
            ignored_columns: vec![],
            rows,
        }
    }
}

/// The compound-file signature of old `.xls` workbooks (and other OLE documents).
const OLE_MAGIC: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";

const SAVE_AS_XLSX: &str = "这是旧版Excel（.xls）文件，请在Excel中“另存为”Excel工作簿（.xlsx）后重新提交（this is an old Excel .xls workbook: save it as .xlsx and submit it again）";

fn detect(path: &Path, bytes: &[u8]) -> Result<BatchFormat, String> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    if bytes.starts_with(OLE_MAGIC) || matches!(ext.as_deref(), Some("xls" | "xlsb" | "et")) {
        return Err(SAVE_AS_XLSX.into());
    }
    match ext.as_deref() {
        Some("xlsx") | Some("xlsm") => return Ok(BatchFormat::Xlsx),
        Some("csv") | Some("txt") => return Ok(BatchFormat::Csv),
        Some("jsonl") | Some("ndjson") | Some("json") => return Ok(BatchFormat::Jsonl),
        _ => {}
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return Ok(BatchFormat::Xlsx);
    }
    let start = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match start.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(BatchFormat::Jsonl),
        Some(_) => Ok(BatchFormat::Csv),
        None => Err(NO_ROWS.into()),
    }
}

/// Maps a header cell (English or Chinese or a clerk's variant, any case, full-width
/// folded) to its column.
fn header_column(h: &str) -> Option<Column> {
    let h = fold_trim(h);
    let lower = h.to_ascii_lowercase();
    Column::ALL
        .into_iter()
        .find(|c| lower == c.name() || h == c.chinese() || c.aliases().contains(&h.as_ref()))
}

/// The headers SPEC §3 expects, for messages: `申请编号/household_id, …`.
fn expected_headers() -> String {
    Column::ALL
        .iter()
        .map(|c| format!("{}/{}", c.chinese(), c.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads a batch from `bytes` within the default [`Limits`]; `path` names it in errors
/// and hints at the format.
pub fn read_batch(path: &Path, bytes: &[u8]) -> Result<RawBatch, ApplicantsError> {
    read_batch_within(path, bytes, &Limits::default())
}

/// Reads a batch from `bytes`, refusing anything beyond `limits`.
pub fn read_batch_within(
    path: &Path,
    bytes: &[u8],
    limits: &Limits,
) -> Result<RawBatch, ApplicantsError> {
    let unreadable = |why: String| ApplicantsError::Unreadable {
        path: path.display().to_string(),
        why,
    };
    let format = detect(path, bytes).map_err(unreadable)?;
    let (headers, rows, encoding) = match format {
        BatchFormat::Csv => {
            let (h, r, e) = read_csv(bytes, limits).map_err(unreadable)?;
            (h, r, Some(e))
        }
        BatchFormat::Xlsx => {
            // calamine panics on some malformed cell references (an overflow of a row
            // number beyond 2^32): a damaged workbook, said as one.
            let read = std::panic::catch_unwind(|| read_xlsx(bytes, limits)).unwrap_or_else(|_| {
                Err("工作簿已损坏：其中有无效的单元格位置，请在Excel中打开后另存为新的XLSX文件（the workbook is damaged: a cell reference is invalid）".to_owned())
            });
            let (h, r) = read.map_err(unreadable)?;
            (h, r, None)
        }
        BatchFormat::Jsonl => {
            let (h, r, e) = read_jsonl(bytes, limits).map_err(unreadable)?;
            (h, r, Some(e))
        }
    };
    if let Some((row, col)) = super::limits::too_long_cell(&headers, &rows) {
        return Err(unreadable(format!(
            "第{row}行第{col}列的内容超过{max}个字符（Excel单元格的上限），这不是一份申请人名单（row {row}, field {col} holds more than {max} characters, more than any spreadsheet cell）",
            max = super::limits::MAX_CELL_CHARS
        )));
    }
    if headers.len() > limits.max_columns {
        return Err(unreadable(format!(
            "表头有{}列，超过上限{}列（the header has {} columns, more than the {} allowed）",
            headers.len(),
            limits.max_columns,
            headers.len(),
            limits.max_columns
        )));
    }
    let mapped: Vec<Option<Column>> = headers.iter().map(|h| header_column(h)).collect();
    let found = || {
        headers
            .iter()
            .filter(|h| !h.trim().is_empty())
            .map(|h| format!("“{}”", h.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for c in Column::ALL {
        let named: Vec<String> = headers
            .iter()
            .zip(&mapped)
            .filter(|(_, m)| **m == Some(c))
            .map(|(h, _)| format!("“{}”", h.trim()))
            .collect();
        if named.len() > 1 {
            return Err(unreadable(format!(
                "{}列都表示{}，请只保留一列（columns {} all give {}; keep one）。表头：{}（headers found）；应有：{}（expected）",
                named.join("、"),
                c.chinese(),
                named.join(", "),
                c.name(),
                found(),
                expected_headers()
            )));
        }
    }
    let missing: Vec<Column> = Column::ALL
        .into_iter()
        .filter(|c| !mapped.contains(&Some(*c)))
        .collect();
    if !missing.is_empty() {
        let zh: Vec<&str> = missing.iter().map(|c| c.chinese()).collect();
        let en: Vec<&str> = missing.iter().map(|c| c.name()).collect();
        return Err(unreadable(format!(
            "缺少{}列（missing column {}）。表头：{}（headers found）；应有：{}（expected）",
            zh.join("、"),
            en.join(", "),
            found(),
            expected_headers()
        )));
    }
    if rows.is_empty() {
        return Err(unreadable(NO_ROWS.into()));
    }
    let ignored_columns: Vec<String> = headers
        .iter()
        .enumerate()
        .filter(|(i, _)| mapped[*i].is_none())
        .filter_map(|(i, h)| {
            let h = h.trim();
            if !h.is_empty() {
                Some(h.to_owned())
            } else if rows
                .iter()
                .any(|(_, cells)| cells.get(i).is_some_and(|c| !c.trim().is_empty()))
            {
                Some(format!(
                    "第{}列（无表头）/column {} (no header)",
                    i + 1,
                    i + 1
                ))
            } else {
                None
            }
        })
        .collect();
    let rows = rows
        .into_iter()
        .map(|(row, cells)| {
            let mut values = vec![None; Column::ALL.len()];
            for (cell, col) in cells.into_iter().zip(&mapped) {
                if let Some(col) = col {
                    values[*col as usize] = Some(cell);
                }
            }
            RawRow { row, values }
        })
        .collect();
    Ok(RawBatch {
        format,
        encoding,
        ignored_columns,
        rows,
    })
}

/// The message for mostly-text bytes with a line in another encoding: which line, and
/// what to do.
fn foreign_line(bytes: &[u8]) -> Option<String> {
    let (line, enc) = hedui_connectors::text::first_foreign_line(bytes)?;
    Some(format!(
        "第{line}行的文字不是{enc}编码，和文件其余各行不同（常见于从另一个文件复制粘贴的行）：整个文件须用同一种编码。请在表格软件中重新输入该行，或把文件另存为“CSV UTF-8”后重新提交（line {line} is not {enc} text like the rest of the file）"
    ))
}

fn read_csv(bytes: &[u8], limits: &Limits) -> Result<(Vec<String>, Rows, String), String> {
    let (text, enc) = decode_text(bytes).ok_or_else(|| {
        foreign_line(bytes).unwrap_or_else(|| "它不是CSV、XLSX或JSON Lines文件（文本既不是UTF-8也不是GBK）（it is not a CSV, XLSX or JSON Lines file: the text is neither UTF-8 nor GBK）".to_owned())
    })?;
    if let Some(row) = first_too_wide(&text, limits.max_columns) {
        return Err(format!(
            "第{row}行的字段超过{max}个，请确认文件是申请人名单并删除多余的分隔符（row {row} has more than {max} fields）",
            max = limits.max_columns
        ));
    }
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut it = rdr.records();
    let header = match it.next() {
        Some(Ok(h)) => h.iter().map(str::to_owned).collect::<Vec<_>>(),
        Some(Err(e)) => return Err(format!("表头行无法读取（cannot read the header row: {e}）")),
        None => return Err(NO_ROWS.into()),
    };
    let mut rows = Vec::new();
    let mut lines = hedui_connectors::text::Lines::new(&text);
    for (i, rec) in it.enumerate() {
        // As a spreadsheet shows the file: the header is row 1, the first data row 2,
        // an empty line a row too (the reader skips it, its position keeps it).
        let at = match &rec {
            Ok(r) => r.position().map(|p| p.byte()),
            Err(e) => e.position().map(|p| p.byte()),
        };
        let row = at.map_or(i as u64 + 2, |b| lines.line_of(b));
        if rows.len() >= limits.max_rows {
            return Err(too_many_rows(limits));
        }
        match rec {
            // A row of empty cells (a spreadsheet's export often ends with some) holds
            // no member.
            Ok(r) if r.iter().all(|f| f.trim().is_empty()) => continue,
            Ok(r) => {
                // Trailing empty fields (a spreadsheet's export) are nothing; a value
                // beyond the header has no column to go to and is not dropped unsaid.
                if let Some(extra) = r
                    .iter()
                    .skip(header.len())
                    .position(|f| !f.trim().is_empty())
                {
                    let col = header.len() + extra + 1;
                    return Err(format!(
                        "第{row}行第{col}列有内容，但表头只有{}列：请删除多余的内容或为该列加上表头（row {row} has a value in field {col}, beyond the header's {} columns: remove it or give it a header）",
                        header.len(),
                        header.len()
                    ));
                }
                rows.push((
                    row,
                    r.iter().take(header.len()).map(str::to_owned).collect(),
                ));
            }
            Err(e) => {
                return Err(format!(
                    "第{row}行不是有效的CSV（row {row} is not valid CSV: {e}）"
                ))
            }
        }
    }
    Ok((header, rows, enc.to_string()))
}

/// The spreadsheet row of the first CSV record with more than `max` fields, counted on
/// the text before it is parsed (a row of millions of empty fields is refused without
/// building them).
fn first_too_wide(text: &str, max: usize) -> Option<u64> {
    let (mut record, mut fields, mut quoted) = (1u64, 1usize, false);
    for b in text.bytes() {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                fields += 1;
                if fields > max {
                    return Some(record);
                }
            }
            b'\n' if !quoted => {
                record += 1;
                fields = 1;
            }
            _ => {}
        }
    }
    None
}

fn read_jsonl(bytes: &[u8], limits: &Limits) -> Result<(Vec<String>, Rows, String), String> {
    let (text, enc) = decode_text(bytes).ok_or_else(|| {
        foreign_line(bytes).unwrap_or_else(|| "它不是JSON Lines文件（既不是UTF-8也不是GBK文本）（it is not a JSON Lines file: neither UTF-8 nor GBK text）".to_owned())
    })?;
    let mut keys: Vec<String> = Vec::new();
    let mut objs: Vec<(u64, BTreeMap<String, Box<RawValue>>)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if objs.len() >= limits.max_rows {
            return Err(too_many_rows(limits));
        }
        let obj: BTreeMap<String, Box<RawValue>> = serde_json::from_str(line).map_err(|e| {
            format!(
                "第{}行不是JSON对象（line {} is not a JSON object: {e}）",
                i + 1,
                i + 1
            )
        })?;
        for k in obj.keys() {
            if !keys.contains(k) {
                if keys.len() >= limits.max_columns {
                    return Err(format!(
                        "记录的键超过上限{}个（the records have more than {} distinct keys）",
                        limits.max_columns, limits.max_columns
                    ));
                }
                keys.push(k.clone());
            }
        }
        objs.push((i as u64 + 1, obj));
    }
    if objs.is_empty() {
        return Err(NO_ROWS.into());
    }
    let rows = objs
        .into_iter()
        .map(|(row, obj)| {
            let vals = keys
                .iter()
                .map(|k| obj.get(k).map(|r| json_text(r.get())).unwrap_or_default())
                .collect();
            (row, vals)
        })
        .collect();
    Ok((keys, rows, enc.to_string()))
}

fn json_text(raw: &str) -> String {
    if raw.starts_with('"') {
        serde_json::from_str::<String>(raw).unwrap_or_default()
    } else if raw == "null" {
        String::new()
    } else {
        raw.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "申请编号,行政区划代码,城乡类别,救助类型,授权书编号,身份证号,姓名,与申请人关系";

    fn csv(text: &str) -> Result<RawBatch, String> {
        read_batch(Path::new("b.csv"), text.as_bytes()).map_err(|e| e.to_string())
    }

    /// Clerks' header variants are read as the canonical columns.
    #[test]
    fn header_variants() {
        let b = csv("家庭编号,区划代码,城乡类别,救助类型,授权书编号,身份证号码,姓名,与户主关系,联系电话\nH1,410184,城镇,最低生活保障,A1,11010519491231002X,张三,申请人,138\n").unwrap();
        assert_eq!(b.ignored_columns, ["联系电话"]);
        let v = &b.rows[0].values;
        assert_eq!(
            v[Column::IdNumber as usize].as_deref(),
            Some("11010519491231002X")
        );
        assert_eq!(v[Column::Relation as usize].as_deref(), Some("申请人"));
        assert_eq!(v[Column::HouseholdId as usize].as_deref(), Some("H1"));
    }

    /// Two columns for one field, or a missing column, fail the file naming the
    /// headers found and the ones expected.
    #[test]
    fn duplicate_and_missing_columns() {
        let e = csv("申请编号,行政区划代码,城乡类别,救助类型,授权书编号,身份证号,身份证号码,姓名,与申请人关系\nH1\n").unwrap_err();
        assert!(
            e.contains("“身份证号”、“身份证号码”列都表示身份证号"),
            "{e}"
        );
        assert!(
            e.contains("columns “身份证号”, “身份证号码” all give id_number"),
            "{e}"
        );
        let e = csv(
            "申请编号,行政区划代码,城乡类别,救助类型,授权书编号,身份证,姓名,与申请人关系\nH1\n",
        )
        .unwrap_err();
        assert!(
            e.contains("缺少身份证号列（missing column id_number）"),
            "{e}"
        );
        assert!(e.contains("“身份证”"), "{e}");
        assert!(e.contains("身份证号/id_number"), "{e}");
    }

    /// A header-only CSV and an empty JSON Lines file are both refused the same way.
    #[test]
    fn no_rows_is_the_same_for_every_format() {
        let e = csv(&format!("{HEADER}\n")).unwrap_err();
        assert!(e.ends_with(NO_ROWS), "{e}");
        let e = read_batch(Path::new("b.jsonl"), b"\n\n")
            .unwrap_err()
            .to_string();
        assert!(e.ends_with(NO_ROWS), "{e}");
        let e = read_batch(Path::new("b.csv"), b"").unwrap_err().to_string();
        assert!(e.ends_with(NO_ROWS), "{e}");
    }

    /// An old .xls workbook is told to be saved as .xlsx, by extension or by content.
    #[test]
    fn xls_is_told_to_become_xlsx() {
        let e = read_batch(Path::new("名单.xls"), b"whatever")
            .unwrap_err()
            .to_string();
        assert!(e.contains("save it as .xlsx"), "{e}");
        let mut ole = OLE_MAGIC.to_vec();
        ole.extend_from_slice(&[0; 64]);
        let e = read_batch(Path::new("upload"), &ole)
            .unwrap_err()
            .to_string();
        assert!(e.contains("save it as .xlsx"), "{e}");
    }

    /// A row is numbered as a spreadsheet shows it, in CSV as in XLSX: the header is
    /// row 1, the first data row is 2.
    #[test]
    fn rows_are_numbered_as_a_spreadsheet_shows_them() {
        let row = "H1,410184,城市,低保,A1,11010519491231002X,张三,本人\n";
        let b = csv(&format!("{HEADER}\n{row}{row}")).unwrap();
        assert_eq!(b.rows.iter().map(|r| r.row).collect::<Vec<_>>(), [2, 3]);
        let mut wb = rust_xlsxwriter::Workbook::new();
        let ws = wb.add_worksheet();
        for (r, line) in [HEADER, row.trim(), row.trim()].iter().enumerate() {
            for (c, v) in line.split(',').enumerate() {
                ws.write_string(r as u32, c as u16, v).unwrap();
            }
        }
        let bytes = wb.save_to_buffer().unwrap();
        let b = read_batch(Path::new("b.xlsx"), &bytes).unwrap();
        assert_eq!(b.rows.iter().map(|r| r.row).collect::<Vec<_>>(), [2, 3]);
    }

    /// An empty line is a row as a spreadsheet shows it (later rows keep their number),
    /// and a row of empty cells (an export's tail) holds nobody.
    #[test]
    fn empty_lines_and_rows_of_empty_cells() {
        let row = "H1,410184,城市,低保,A1,11010519491231002X,张三,本人";
        let b = csv(&format!("{HEADER}\n\n{row}\n,,,,,,,\n{row}\n,,,,,,,\n")).unwrap();
        assert_eq!(b.rows.iter().map(|r| r.row).collect::<Vec<_>>(), [3, 5]);
    }

    /// A value beyond the header is refused in words (trailing empty fields are not); a
    /// record of millions of fields is refused before it is built; a workbook cell right
    /// of the header is refused, and rows are never widened to it.
    #[test]
    fn values_beyond_the_header_are_refused() {
        let row = "H1,410184,城市,低保,A1,11010519491231002X,张三,本人";
        assert_eq!(csv(&format!("{HEADER}\n{row},,,\n")).unwrap().rows.len(), 1);
        let e = csv(&format!("{HEADER}\n{row}\n{row},,备注\n")).unwrap_err();
        assert!(e.contains("第3行第10列有内容，但表头只有8列"), "{e}");
        let wide = format!("{HEADER}\n{row}{}\n", ",".repeat(5_000_000));
        let e = csv(&wide).unwrap_err();
        assert!(e.contains("第2行的字段超过100个"), "{e}");
        let mut wb = rust_xlsxwriter::Workbook::new();
        let ws = wb.add_worksheet();
        for (c, v) in HEADER.split(',').enumerate() {
            ws.write_string(0, c as u16, v).unwrap();
        }
        for r in 1..20_000u32 {
            ws.write_string(r, 0, "H1").unwrap();
        }
        ws.write_string(7, 98, "x").unwrap();
        let e = read_batch(Path::new("b.xlsx"), &wb.save_to_buffer().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("单元格CU8在表头之外（表头只到H列）"), "{e}");
    }

    /// Rows beyond the cap are refused, not read on.
    #[test]
    fn row_cap() {
        let limits = Limits {
            max_rows: 2,
            ..Limits::default()
        };
        let row = "H1,410184,城市,低保,A1,11010519491231002X,张三,本人\n";
        let text = format!("{HEADER}\n{row}{row}{row}");
        let e = read_batch_within(Path::new("b.csv"), text.as_bytes(), &limits)
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than 2 data rows"), "{e}");
    }
}
