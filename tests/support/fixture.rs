//! A small hand-made city for the CLI tests: five people with known records in every
//! source format, a GBK applicant batch with Chinese headers, a policy, and helpers to
//! run `hedui check` on it and read its outputs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::NaiveDate;
use hedui::cli::SourceFormat;
use hedui::generate::writer::{TableWriter, Val};
use hedui_connectors::idnum::check_char;
use hedui_connectors::schema;
use serde_json::Value;

pub const AS_OF: &str = "2026-11-22";

pub fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

pub fn m(s: &str) -> Val {
    Val::Month(d(&format!("{s}-01")))
}

pub fn t(s: &str) -> Val {
    Val::Text(s.into())
}

pub fn money(s: &str) -> Val {
    Val::Money(hedui_connectors::decimal::parse_decimal(s, 2).unwrap())
}

/// A valid 18-digit ID for a region, birth date and sequence.
pub fn id(region: &str, birth: &str, seq: u32) -> String {
    let mut s = format!("{region}{birth}{seq:03}");
    s.push(check_char(s.as_bytes()));
    s
}

pub struct People {
    pub a: String,
    pub b: String,
    pub c: String,
    pub dd: String,
    pub e: String,
}

pub fn people() -> People {
    People {
        a: id("410184", "19800101", 11),
        b: id("410184", "19820202", 22),
        c: id("410184", "19700303", 33),
        dd: id("410184", "19400404", 44),
        e: id("410184", "19900505", 55),
    }
}

pub const POLICY: &str = concat!(
    hedui::spec_defaults_toml!(),
    r#"
[[standard]]
region = "410184"
name = "新郑市"
effective_from = 2026-01-01
urban_monthly = "720"
rural_monthly = "560"
"#
);

/// Writes the source tables in `format` into `dir` (all seven, minus `skip`).
pub fn write_sources(dir: &Path, format: SourceFormat, skip: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    let p = people();
    let mut rows: Vec<(&str, Vec<Vec<Val>>)> = Vec::new();
    let months: Vec<String> = (0..12)
        .map(|i| {
            format!(
                "{}-{:02}",
                if i < 2 { 2025 } else { 2026 },
                (i + 10) % 12 + 1
            )
        })
        .collect();
    let mut hr = Vec::new();
    let mut tax = Vec::new();
    for mo in &months {
        hr.push(vec![
            t(&p.a),
            m(mo),
            t("wage"),
            money("1000"),
            t("宇通客车"),
        ]);
        tax.push(vec![t(&p.a), m(mo), t("wage"), money("1000")]);
    }
    // Malformed: an amount that is not a number (row 13 of hr_income).
    hr.push(vec![
        t(&p.b),
        m("2026-01"),
        t("wage"),
        if format == SourceFormat::Parquet {
            Val::Null
        } else {
            Val::Bad("N/A".into())
        },
        Val::Null,
    ]);
    rows.push(("hr_income", hr));
    rows.push(("tax_income", tax));
    rows.push((
        "residents",
        vec![
            vec![t(&p.a), t("张伟"), t("normal"), Val::Null],
            vec![t(&p.b), t("李娜"), t("normal"), Val::Null],
            vec![t(&p.c), t("王强"), t("normal"), Val::Null],
            vec![t(&p.dd), t("赵秀英"), t("deceased"), Val::Null],
            vec![t(&p.e), t("刘洋"), t("normal"), Val::Null],
        ],
    ));
    rows.push((
        "property",
        vec![
            vec![
                t(&p.a),
                t("C-1"),
                t("residential"),
                money("60"),
                Val::Money(50),
                Val::Date(d("2015-01-01")),
                Val::Null,
                Val::Null,
            ],
            vec![
                t(&p.b),
                t("C-1"),
                t("residential"),
                money("60"),
                Val::Money(50),
                Val::Date(d("2015-01-01")),
                Val::Null,
                Val::Null,
            ],
            vec![
                t(&p.c),
                t("C-2"),
                t("residential"),
                money("50"),
                Val::Null,
                Val::Date(d("2010-01-01")),
                Val::Null,
                t("新郑市人民路1号"),
            ],
            vec![
                t(&p.c),
                t("C-3"),
                t("residential"),
                money("30"),
                Val::Null,
                Val::Date(d("2019-05-04")),
                Val::Null,
                Val::Null,
            ],
        ],
    ));
    rows.push((
        "vehicles",
        vec![vec![
            t(&p.e),
            t("豫A12345"),
            t("car"),
            money("50000"),
            Val::Date(d("2022-01-01")),
            Val::Null,
        ]],
    ));
    rows.push((
        "financial",
        vec![vec![
            t(&p.a),
            t("中国银行"),
            t("6217001"),
            t("deposit"),
            money("5000.5"),
            Val::Date(d("2026-10-31")),
        ]],
    ));
    rows.push((
        "housing_fund",
        vec![vec![
            t(&p.a),
            t("GJJ1"),
            money("8000"),
            money("300"),
            t("active"),
            Val::Date(d("2026-10-31")),
        ]],
    ));
    for (name, rs) in rows {
        if skip.contains(&name) {
            continue;
        }
        let mut w = TableWriter::create(dir, schema::table(name).unwrap(), format).unwrap();
        for r in rs {
            w.row(&r).unwrap();
        }
        w.finish().unwrap();
    }
}

/// Applicant rows with Chinese values: (household, region, area, aid, auth, id, name, relation).
pub fn applicant_rows() -> Vec<[String; 8]> {
    let p = people();
    let row = |h: &str, region: &str, auth: &str, id: &str, name: &str, rel: &str| {
        [h, region, "城市", "低保", auth, id, name, rel].map(str::to_owned)
    };
    // The ID of A in full-width digits; D's as a 15-digit legacy ID.
    let a_wide: String =
        p.a.chars()
            .map(|c| char::from_u32(c as u32 - 0x30 + 0xFF10).unwrap())
            .collect();
    let d_legacy = format!("{}{}", &p.dd[..6], &p.dd[8..17]);
    let bad = format!(
        "{}{}",
        &p.e[..17],
        if p.e.ends_with('0') { '1' } else { '0' }
    );
    vec![
        row("H001", "410184", "AUTH-1", &a_wide, " 张伟 ", "本人"),
        row("H002", "410184", "AUTH-2", &p.c, "王强", "本人"),
        row("H001", "410184", "AUTH-1", &p.b, "李娜", "配偶"),
        row("H003", "410184", "AUTH-3", &d_legacy, "赵秀英", "本人"),
        row("H004", "410184", "AUTH-4", &p.e, "刘洋", "本人"),
        row("H005", "410184", "AUTH-5", &bad, "孙七", "本人"),
        row(
            "H006",
            "410184",
            "",
            &id("410184", "19880808", 66),
            "周八",
            "本人",
        ),
        row(
            "H007",
            "990101",
            "AUTH-7",
            &id("990101", "19880808", 77),
            "吴九",
            "本人",
        ),
    ]
}

pub const HEADERS_ZH: [&str; 8] = [
    "申请编号",
    "行政区划代码",
    "城乡类别",
    "救助类型",
    "授权书编号",
    "身份证号",
    "姓名",
    "与申请人关系",
];

pub fn write_gbk_applicants(path: &Path) {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(HEADERS_ZH).unwrap();
    for r in applicant_rows() {
        w.write_record(&r).unwrap();
    }
    let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
    let (gbk, _, unmappable) = encoding_rs::GBK.encode(&text);
    assert!(!unmappable);
    std::fs::write(path, gbk).unwrap();
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new(format: SourceFormat, skip: &[&str]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        write_sources(&dir.path().join("sources"), format, skip);
        write_gbk_applicants(&dir.path().join("applicants.csv"));
        std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
        Fixture { dir }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn check_with(&self, applicants: &str) -> Output {
        self.check_command(applicants).output().unwrap()
    }

    /// `hedui check` of `applicants` on the fixture's sources, to add to and run.
    pub fn check_command(&self, applicants: &str) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hedui"));
        c.args([
            "check",
            "--applicants",
            self.path(applicants).to_str().unwrap(),
            "--sources",
            self.path("sources").to_str().unwrap(),
            "--policy",
            self.path("policy.toml").to_str().unwrap(),
            "--as-of",
            AS_OF,
            "--out",
            self.path("out").to_str().unwrap(),
        ]);
        c
    }

    pub fn check(&self) -> Output {
        self.check_with("applicants.csv")
    }

    pub fn jsonl(&self, name: &str) -> Vec<Value> {
        std::fs::read_to_string(self.path("out").join(name))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub fn results(&self) -> Vec<Value> {
        self.jsonl("results.jsonl")
    }
}

pub fn hedui(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hedui"))
        .args(args)
        .output()
        .unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn verdicts(results: &[Value]) -> Vec<(String, String)> {
    results
        .iter()
        .map(|r| {
            (
                r["household_id"].as_str().unwrap().to_owned(),
                r["verdict"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

pub fn flags(r: &Value) -> Vec<String> {
    r["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_owned())
        .collect()
}
