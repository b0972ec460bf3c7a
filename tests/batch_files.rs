//! Applicant batch files as clerks really make them, and as an attacker would: header and
//! value variants, two columns for one field, a missing column, unknown columns, `.xls`,
//! a sheet whose used range spans the whole grid, a zip bomb, batches without rows, and
//! households whose rows disagree after a bad first row.

mod support;

use std::path::Path;

use hedui::applicants::{read_batch_within, Limits};
use hedui::cli::SourceFormat;
use serde_json::Value;
use support::fixture::*;

/// Writes `rows` under `headers` as a UTF-8 CSV batch.
fn write_batch(path: &Path, headers: &[&str], rows: &[Vec<String>]) {
    let mut w = csv::Writer::from_path(path).unwrap();
    w.write_record(headers).unwrap();
    for r in rows {
        w.write_record(r).unwrap();
    }
    w.flush().unwrap();
}

fn summary(fx: &Fixture) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fx.path("out/summary.json")).unwrap()).unwrap()
}

fn run(fx: &Fixture, batch: &str, quiet: bool) -> std::process::Output {
    let path = |p: &str| fx.path(p).to_str().unwrap().to_owned();
    let mut args: Vec<String> = [
        "check".into(),
        "--applicants".into(),
        path(batch),
        "--sources".into(),
        path("sources"),
        "--policy".into(),
        path("policy.toml"),
        "--as-of".into(),
        AS_OF.into(),
        "--out".into(),
        path("out"),
    ]
    .into();
    if quiet {
        args.push("--quiet".into());
    }
    hedui(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// A clerk's spreadsheet with 身份证号码 / 与户主关系 / 家庭编号 / 区划代码 headers and
/// 城镇 / 最低生活保障 / 申请人 / 妻子 values checks exactly like the standard batch; an
/// extra 联系电话 column is ignored, warned about even under --quiet, and summarised.
#[test]
fn clerks_variants_check_like_the_standard_batch() {
    let fx = Fixture::new(SourceFormat::Csv, &[]);
    assert_eq!(fx.check().status.code(), Some(0));
    let standard = std::fs::read(fx.path("out/results.jsonl")).unwrap();
    std::fs::remove_dir_all(fx.path("out")).unwrap();

    let variant = |v: &str| -> String {
        match v {
            "城市" => "城镇",
            "低保" => "最低生活保障",
            "本人" => "申请人",
            "配偶" => "妻子",
            other => other,
        }
        .to_owned()
    };
    let rows: Vec<Vec<String>> = applicant_rows()
        .iter()
        .map(|r| {
            let mut v: Vec<String> = r.iter().map(|c| variant(c)).collect();
            v.push("13800138000".into());
            v
        })
        .collect();
    write_batch(
        &fx.path("clerk.csv"),
        &[
            "家庭编号",
            "区划代码",
            "城乡类别",
            "救助类型",
            "授权书编号",
            "身份证号码",
            "姓名",
            "与户主关系",
            "联系电话",
        ],
        &rows,
    );
    let out = run(&fx, "clerk.csv", true);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8(std::fs::read(fx.path("out/results.jsonl")).unwrap()).unwrap(),
        String::from_utf8(standard).unwrap()
    );
    let err = stderr(&out);
    assert!(
        err.contains("hedui: warning: 申请名单中以下列无法识别，已忽略：联系电话"),
        "--quiet never silences warnings: {err}"
    );
    assert_eq!(
        summary(&fx)["applicants"]["ignored_columns"],
        serde_json::json!(["联系电话"])
    );
}

/// Two columns naming one field, or a required column missing, fail the file with exit
/// 2, naming the headers found and the ones expected; nothing is written.
#[test]
fn duplicate_or_missing_columns_fail_the_file() {
    let fx = Fixture::new(SourceFormat::Csv, &[]);
    let rows = vec![applicant_rows()[0].to_vec()];
    let mut with_both: Vec<&str> = HEADERS_ZH.to_vec();
    with_both[0] = "家庭编号";
    let mut row = rows[0].clone();
    row.push(row[0].clone());
    with_both.push("申请编号");
    write_batch(&fx.path("both.csv"), &with_both, &[row]);
    let out = run(&fx, "both.csv", false);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("columns “家庭编号”, “申请编号” all give household_id; keep one"),
        "{err}"
    );
    assert!(err.contains("headers found"), "{err}");
    assert!(!fx.path("out").exists());

    let mut without: Vec<&str> = HEADERS_ZH.to_vec();
    without[5] = "身份证";
    write_batch(&fx.path("without.csv"), &without, &rows);
    let out = run(&fx, "without.csv", false);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("缺少身份证号列（missing column id_number）"),
        "{err}"
    );
    assert!(err.contains("“身份证”"), "{err}");
    assert!(err.contains("身份证号/id_number"), "{err}");
}

/// An old `.xls` workbook is told to be saved as `.xlsx`; a 2 KB workbook with cells at A1
/// and XFD1048576 (a dense read would allocate hundreds of GB) is refused with exit 2
/// naming the far cell, without exhausting memory.
#[test]
fn xls_and_grid_spanning_xlsx_are_refused_in_words() {
    let fx = Fixture::new(SourceFormat::Csv, &[]);
    std::fs::write(fx.path("名单.xls"), b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1rest").unwrap();
    let out = run(&fx, "名单.xls", false);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("save it as .xlsx"),
        "{}",
        stderr(&out)
    );

    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (c, h) in HEADERS_ZH.iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    ws.write_string(1_048_575, 16_383, "x").unwrap();
    wb.save(fx.path("hostile.xlsx")).unwrap();
    assert!(std::fs::metadata(fx.path("hostile.xlsx")).unwrap().len() < 10_000);
    let out = run(&fx, "hostile.xlsx", false);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cell XFD1048576 is beyond the first 100 columns"),
        "{}",
        stderr(&out)
    );
}

/// A workbook that decompresses beyond the cap is refused before any part of it is
/// expanded in memory (here a 4 MB cell, compressed to a few KB, against a 1 MiB cap).
#[test]
fn zip_bomb_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.xlsx");
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (c, h) in HEADERS_ZH.iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    // Excel's own cell limit is 32,767 characters: many large cells, one per row.
    // Distinct texts, or the shared-string table would keep one copy.
    for r in 1..130 {
        ws.write_string(r, 0, format!("{r:05}{}", "0".repeat(32_000)))
            .unwrap();
    }
    wb.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() < 200_000, "{}", bytes.len());
    let limits = Limits {
        max_xlsx_uncompressed_bytes: 1024 * 1024,
        ..Limits::default()
    };
    let e = match read_batch_within(&path, &bytes, &limits) {
        Ok(_) => panic!("the workbook was read beyond the cap"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("decompresses to more than 1 MB"), "{e}");
    // Within the default caps the same file is read (and then judged row by row).
    assert!(read_batch_within(&path, &bytes, &Limits::default()).is_ok());
}

/// A header-only CSV and an empty JSON Lines file are refused alike, exit 2.
#[test]
fn batches_without_rows_are_refused_alike() {
    let fx = Fixture::new(SourceFormat::Csv, &[]);
    write_batch(&fx.path("header.csv"), &HEADERS_ZH, &[]);
    std::fs::write(fx.path("empty.jsonl"), "\n").unwrap();
    let a = run(&fx, "header.csv", false);
    let b = run(&fx, "empty.jsonl", false);
    assert_eq!((a.status.code(), b.status.code()), (Some(2), Some(2)));
    let tail = |o: &std::process::Output| {
        let e = stderr(o);
        e.rsplit(": ").next().unwrap().trim().to_owned()
    };
    assert_eq!(tail(&a), tail(&b));
    assert!(
        tail(&a).contains("the file has no applicant rows"),
        "{}",
        tail(&a)
    );
}

/// A GBK file with one row in bytes no encoding of the file reads (a row pasted from
/// elsewhere, a damaged one) is refused naming that row and what to do; a binary file
/// is told it is no batch file.
#[test]
fn a_row_in_another_encoding_is_named() {
    let fx = Fixture::new(SourceFormat::Csv, &[]);
    write_batch(&fx.path("good.csv"), &HEADERS_ZH, &[]);
    let mut bytes = encoding_rs::GBK
        .encode(&std::fs::read_to_string(fx.path("good.csv")).unwrap())
        .0
        .into_owned();
    for (i, name) in ["张三", "李四", "王五"].iter().enumerate() {
        let row = format!("H{i},410102,城市,低保,SQ-{i},11010519491231002X,{name},本人\n");
        bytes.extend_from_slice(&encoding_rs::GBK.encode(&row).0);
        if i == 1 {
            bytes.extend_from_slice(b"H9,410102,\xFF\xFE\x80,SQ-9,11010519491231002X,x,y\n");
        }
    }
    std::fs::write(fx.path("mixed.csv"), &bytes).unwrap();
    let out = run(&fx, "mixed.csv", false);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("第4行的文字不是GBK编码") && stderr(&out).contains("同一种编码"),
        "{}",
        stderr(&out)
    );
    std::fs::write(
        fx.path("binary.csv"),
        [0x80u8, 0xFF, 0xFF, 0x00, 0x81, 0xFE],
    )
    .unwrap();
    let out = run(&fx, "binary.csv", false);
    assert!(
        stderr(&out).contains("文本既不是UTF-8也不是GBK"),
        "{}",
        stderr(&out)
    );
}

/// When a household's first row has an invalid aid type, its later rows are still
/// compared with each other: the disagreement of row 3 with row 2 is reported.
#[test]
fn household_agreement_is_judged_on_every_row() {
    let fx = Fixture::new(SourceFormat::Csv, &[]);
    let p = people();
    let row = |aid: &str, id: &str, name: &str, rel: &str| -> Vec<String> {
        ["H9", "410184", "城市", aid, "AUTH-9", id, name, rel]
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    };
    write_batch(
        &fx.path("h9.csv"),
        &HEADERS_ZH,
        &[
            row("救济", &p.a, "张伟", "本人"),
            row("低保", &p.b, "李娜", "配偶"),
            row("特困", &p.c, "王强", "子女"),
        ],
    );
    let out = run(&fx, "h9.csv", false);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rej: Vec<(u64, String, String)> = fx
        .jsonl("rejected.jsonl")
        .iter()
        .map(|r| {
            (
                r["row"].as_u64().unwrap(),
                r["field"].as_str().unwrap().to_owned(),
                r["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rej,
        [
            (2, "aid_type".into(), "invalid_value".into()),
            (4, "aid_type".into(), "inconsistent_household".into()),
        ]
    );
    assert!(fx.jsonl("rejected.jsonl")[1]["message"]
        .as_str()
        .unwrap()
        .contains("differs from row 3"));
}

/// A household declaring more members than the cap (the server's
/// `max_household_members`) is rejected as a whole, `invalid_value` on its first row
/// with the count in words; the other households of the batch go on.
#[test]
fn households_beyond_the_member_cap_are_rejected() {
    let fx = Fixture::new(SourceFormat::Csv, &[]);
    let policy = hedui::policy::Policy::load(&fx.path("policy.toml")).unwrap();
    let mut rows: Vec<Vec<String>> = applicant_rows().into_iter().map(Vec::from).collect();
    // H001 has two members; three more make five.
    for seq in 1..=3 {
        let mut r = rows[0].clone();
        r[5] = id("410184", "20100101", 500 + seq);
        r[6] = format!("子女{seq}");
        r[7] = "子女".into();
        rows.push(r);
    }
    write_batch(&fx.path("big.csv"), &HEADERS_ZH, &rows);
    let bytes = std::fs::read(fx.path("big.csv")).unwrap();
    let capped = Limits {
        max_members: 4,
        ..Limits::default()
    };
    let as_of = chrono::NaiveDate::parse_from_str(AS_OF, "%Y-%m-%d").unwrap();
    let batch = hedui::applicants::batch_of("big.csv", &bytes, &capped, &policy, as_of).unwrap();
    let h001: Vec<_> = batch
        .rejections
        .iter()
        .filter(|r| r.household_id == "H001")
        .collect();
    assert_eq!(h001.len(), 1, "{h001:?}");
    assert_eq!((h001[0].row, h001[0].field), (2, "household_id"));
    assert_eq!(h001[0].reason.code(), "invalid_value");
    assert!(
        h001[0].message.contains("该户申报5名成员，超过上限4名"),
        "{}",
        h001[0].message
    );
    assert!(batch.households.iter().any(|h| h.household_id == "H002"));
    assert!(!batch.households.iter().any(|h| h.household_id == "H001"));
    // Without a cap (the command line) the same household is checked.
    let free =
        hedui::applicants::batch_of("big.csv", &bytes, &Limits::default(), &policy, as_of).unwrap();
    assert!(free
        .households
        .iter()
        .any(|h| h.household_id == "H001" && h.members.len() == 5));
}
