//! Department records in words for people — the one place pages, the printed reports
//! and the workbook take column names, enum values and number formats from: the labels
//! of `schemas/*.toml`, amounts with thousands separators, ID and account numbers masked
//! where the reader may not see them whole.

use hedui_connectors::idnum::{mask_account, mask_id};
use hedui_connectors::schema::{table, ColumnType};
use serde_json::Value;

/// A cited table's name for people: its schema's label, the applicant batch's for batch
/// rules.
pub fn table_zh(t: &str) -> &'static str {
    if t == crate::engine::queries::APPLICANTS_TABLE {
        return "申请名单";
    }
    table(t).map_or("其他", |s| s.label.as_str())
}

/// Money (or any decimal) as a clerk reads it: thousands separated (`12,345.60`);
/// anything that is not a plain decimal is left as it is.
pub fn money(text: &str) -> String {
    let (sign, digits) = match text.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return text.to_owned();
    }
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if frac.is_empty() {
        format!("{sign}{out}")
    } else {
        format!("{sign}{out}.{frac}")
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// One field of a record of table `t` in words: its column's label and its value —
/// an enum's value in words, money with separators, ID and account numbers masked
/// unless `full`.
pub fn field(t: &str, column: &str, value: &Value, full: bool) -> (String, String) {
    let shown = text(value);
    let masked = |s: String| match column {
        "id_number" if !full => mask_id(&s),
        "account_no" if !full => mask_account(&s),
        _ => s,
    };
    let Some(spec) = table(t).and_then(|s| s.columns.iter().find(|c| c.name == column)) else {
        let label = crate::applicants::Column::ALL
            .iter()
            .find(|c| c.name() == column)
            .map_or(column.to_owned(), |c| c.chinese().to_owned());
        return (label, masked(shown));
    };
    let shown = match spec.ty {
        ColumnType::Enum => spec.value_label(&shown).to_owned(),
        ColumnType::Money => money(&shown),
        _ => shown,
    };
    (spec.label.clone(), masked(shown))
}

/// A whole record in words, its empty fields left out: `面积（平方米）158.16，用途 商业`.
pub fn record_zh(t: &str, record: &serde_json::Map<String, Value>, full: bool) -> String {
    record
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            let (label, value) = field(t, k, v, full);
            format!("{label} {value}")
        })
        .collect::<Vec<_>>()
        .join("，")
}

/// A time of the state database (RFC 3339, UTC) as a clerk reads it: local, to the
/// minute.
pub fn local_time(t: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| {
            d.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_else(|_| t.to_owned())
}

/// Who did something, as staff read it: an account's or a system token's name, the
/// user of a command run on the server, the schedule.
pub fn submitter(actor: &str) -> String {
    if let Some(n) = actor.strip_prefix("user:").or(actor.strip_prefix("token:")) {
        return n.to_owned();
    }
    if let Some(n) = actor.strip_prefix("os:") {
        return format!("{n}（命令行）");
    }
    match actor {
        "schedule" => "定时复核".to_owned(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Labels, enum words, separators and masks, as a clerk reads a record.
    #[test]
    fn records_read_as_words() {
        assert_eq!(money("1570420.57"), "1,570,420.57");
        assert_eq!(money("-1000"), "-1,000");
        assert_eq!(money("12.5"), "12.5");
        assert_eq!(money("n/a"), "n/a");
        let rec: serde_json::Map<String, Value> = [
            ("usage".to_owned(), Value::from("commercial")),
            ("area_m2".to_owned(), Value::from("158.16")),
            ("cancelled_on".to_owned(), Value::Null),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            record_zh("property", &rec, false),
            "用途 商业，面积（平方米） 158.16"
        );
        let (l, v) = field(
            "financial",
            "account_no",
            &Value::from("6217001234567891234"),
            false,
        );
        assert_eq!((l.as_str(), v.as_str()), ("账号", "621700*********1234"));
        let (_, v) = field("financial", "balance", &Value::from("250000.00"), false);
        assert_eq!(v, "250,000.00");
        let (l, v) = field(
            "financial",
            "id_number",
            &Value::from("410184195203011028"),
            false,
        );
        assert_eq!((l.as_str(), v.as_str()), ("身份证号", "410184********1028"));
    }
}
