//! `results.xlsx` for clerks: a batch's households, its findings with their evidence,
//! and its rejected rows, as three sheets with Chinese column names — made from
//! `results.jsonl` and `rejected.jsonl` as they are read (the caller masks the lines
//! for roles without full view), each sheet written row by row in constant memory.
//!
//! Amounts are the exact decimals of `results.jsonl` as text with thousands separators
//! (`1,570,420.57`): an Excel number is a double, and money never passes through one.

use std::collections::HashMap;
use std::io::BufRead as _;
use std::path::Path;

use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};
use serde_json::Value;

use super::labels::{record_zh, table_zh};

/// A line of a JSON Lines file, edited (masked) by the caller.
pub type Edit<'a> = &'a dyn Fn(&mut Value);

fn fail(e: XlsxError) -> String {
    format!("无法生成 results.xlsx（cannot write the workbook）: {e}")
}

fn each_line(
    path: &Path,
    edit: Edit<'_>,
    mut f: impl FnMut(Value) -> Result<(), String>,
) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        if let Ok(mut v) = serde_json::from_str::<Value>(&line) {
            edit(&mut v);
            f(v)?;
        }
    }
    Ok(())
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn list(v: &Value, k: &str) -> String {
    v.get(k)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("、")
        })
        .unwrap_or_default()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A header row in bold, the panes frozen below it, a filter on it.
/// Column widths are in characters.
fn header(ws: &mut Worksheet, names: &[&str], widths: &[u16]) -> Result<(), XlsxError> {
    let bold = Format::new().set_bold();
    for (c, (name, w)) in names.iter().zip(widths).enumerate() {
        ws.write_string_with_format(0, c as u16, *name, &bold)?;
        ws.set_column_width(c as u16, *w)?;
    }
    ws.set_freeze_panes(1, 0)?;
    Ok(())
}

/// An amount as the exact decimal text the results hold, thousands separated (no
/// float ever holds money, in a workbook cell either).
fn amount(ws: &mut Worksheet, r: u32, c: u16, t: &str) -> Result<(), XlsxError> {
    ws.write_string(r, c, super::labels::money(t)).map(|_| ())
}

fn area_zh(a: &str) -> &str {
    match a {
        "urban" => "城镇",
        "rural" => "农村",
        other => other,
    }
}

fn aid_zh(a: &str) -> &str {
    match a {
        "dibao" => "最低生活保障",
        "tekun" => "特困人员供养",
        "low_income" => "低收入家庭",
        other => other,
    }
}

/// The sheet of households, a row each.
fn households_sheet(wb: &mut Workbook, results: &Path, edit: Edit<'_>) -> Result<(), String> {
    let mut ws = wb.new_worksheet_with_constant_memory();
    ws.set_name("家庭").map_err(fail)?;
    header(
        &mut ws,
        &[
            "申请编号",
            "行政区划代码",
            "城乡类别",
            "救助类型",
            "核对结论",
            "家庭人数",
            "月人均收入（元）",
            "金融资产（元）",
            "保障标准（元/月）",
            "缺少的数据源",
            "过期的数据源",
            "发现",
        ],
        &[20, 12, 8, 14, 12, 8, 16, 16, 16, 14, 14, 60],
    )
    .map_err(fail)?;
    let mut r = 0u32;
    each_line(results, edit, |v| {
        r += 1;
        let w = |ws: &mut Worksheet, c: u16, t: &str| {
            ws.write_string(r, c, t).map(|_| ()).map_err(fail)
        };
        w(&mut ws, 0, s(&v, "household_id"))?;
        w(&mut ws, 1, s(&v, "region_code"))?;
        w(&mut ws, 2, area_zh(s(&v, "area_type")))?;
        w(&mut ws, 3, aid_zh(s(&v, "aid_type")))?;
        w(&mut ws, 4, super::report::verdict_zh(s(&v, "verdict")))?;
        ws.write_number(
            r,
            5,
            v.get("members").and_then(Value::as_f64).unwrap_or(0.0),
        )
        .map_err(fail)?;
        amount(&mut ws, r, 6, s(&v, "per_capita_monthly_income")).map_err(fail)?;
        amount(&mut ws, r, 7, s(&v, "financial_assets")).map_err(fail)?;
        amount(&mut ws, r, 8, s(&v, "standard_monthly")).map_err(fail)?;
        w(&mut ws, 9, &list(&v, "missing_sources"))?;
        w(&mut ws, 10, &list(&v, "stale_sources"))?;
        let findings: Vec<&str> = v
            .get("flags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|f| f.get("rule").and_then(Value::as_str))
            .map(|code| crate::verdict::Rule::from_code(code).map_or(code, |r| r.name_zh()))
            .collect();
        w(&mut ws, 11, &findings.join("、"))
    })?;
    wb.push_worksheet(ws);
    Ok(())
}

fn findings_sheet(
    wb: &mut Workbook,
    results: &Path,
    edit: Edit<'_>,
    full: bool,
) -> Result<(), String> {
    let mut ws = wb.new_worksheet_with_constant_memory();
    ws.set_name("发现与依据").map_err(fail)?;
    header(
        &mut ws,
        &[
            "申请编号",
            "发现",
            "性质",
            "成员身份证号",
            "数值",
            "限额",
            "依据",
            "文件",
            "行",
            "记录内容",
        ],
        &[20, 22, 8, 22, 14, 14, 14, 24, 8, 80],
    )
    .map_err(fail)?;
    let mut r = 0u32;
    each_line(results, edit, |v| {
        let hid = s(&v, "household_id").to_owned();
        for f in v
            .get("flags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let rule = s(f, "rule");
            let name = crate::verdict::Rule::from_code(rule).map_or(rule, |r| r.name_zh());
            let severity = if s(f, "severity") == "disqualifying" {
                "否决项"
            } else {
                "需复核"
            };
            let evidence: Vec<&Value> = f
                .get("evidence")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .collect();
            // A finding without evidence records still has its row.
            let rows: Vec<Option<&Value>> = if evidence.is_empty() {
                vec![None]
            } else {
                evidence.into_iter().map(Some).collect()
            };
            for e in rows {
                r += 1;
                let w = |ws: &mut Worksheet, c: u16, t: &str| {
                    ws.write_string(r, c, t).map(|_| ()).map_err(fail)
                };
                w(&mut ws, 0, &hid)?;
                w(&mut ws, 1, name)?;
                w(&mut ws, 2, severity)?;
                w(&mut ws, 3, s(f, "member"))?;
                w(&mut ws, 4, &text(f.get("value").unwrap_or(&Value::Null)))?;
                w(&mut ws, 5, &text(f.get("limit").unwrap_or(&Value::Null)))?;
                if let Some(e) = e {
                    let table = s(e, "table");
                    w(&mut ws, 6, table_zh(table))?;
                    w(&mut ws, 7, s(e, "file"))?;
                    ws.write_number(r, 8, e.get("row").and_then(Value::as_f64).unwrap_or(0.0))
                        .map_err(fail)?;
                    let record = e
                        .get("record")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    w(&mut ws, 9, &record_zh(table, &record, full))?;
                }
            }
        }
        Ok(())
    })?;
    wb.push_worksheet(ws);
    Ok(())
}

fn rejected_sheet(
    wb: &mut Workbook,
    rejected: &Path,
    edit: Edit<'_>,
    names: &HashMap<u64, String>,
) -> Result<(), String> {
    let mut ws = wb.new_worksheet_with_constant_memory();
    ws.set_name("名单错误行").map_err(fail)?;
    header(
        &mut ws,
        &["行", "申请编号", "姓名", "字段", "问题", "说明"],
        &[8, 20, 12, 16, 28, 80],
    )
    .map_err(fail)?;
    let mut r = 0u32;
    each_line(rejected, edit, |v| {
        r += 1;
        let w = |ws: &mut Worksheet, c: u16, t: &str| {
            ws.write_string(r, c, t).map(|_| ()).map_err(fail)
        };
        let row = v.get("row").and_then(Value::as_u64).unwrap_or(0);
        ws.write_number(r, 0, row as u32).map_err(fail)?;
        w(&mut ws, 1, s(&v, "household_id"))?;
        w(&mut ws, 2, names.get(&row).map_or("", String::as_str))?;
        let field = s(&v, "field");
        let field_zh = crate::applicants::Column::ALL
            .iter()
            .find(|c| c.name() == field)
            .map_or(field, |c| c.chinese());
        w(&mut ws, 3, field_zh)?;
        w(&mut ws, 4, crate::applicants::Reason::zh(s(&v, "reason")))?;
        w(&mut ws, 5, s(&v, "message"))
    })?;
    wb.push_worksheet(ws);
    Ok(())
}

/// The workbook of a batch: its households, findings with evidence and rejected rows
/// (with the names `names` gives by row), each line edited by `edit` (masking) first and
/// evidence shown masked unless `full`.
pub fn results_xlsx(
    results: &Path,
    rejected: &Path,
    edit: Edit<'_>,
    full: bool,
    names: &HashMap<u64, String>,
) -> Result<Vec<u8>, String> {
    let mut wb = Workbook::new();

    households_sheet(&mut wb, results, edit)?;
    findings_sheet(&mut wb, results, edit, full)?;
    rejected_sheet(&mut wb, rejected, edit, names)?;
    wb.save_to_buffer().map_err(fail)
}
