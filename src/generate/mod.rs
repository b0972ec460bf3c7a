//! `hedui generate`: a deterministic synthetic city — residents with valid IDs in real
//! regions, families with wages, pensions, homes (co-owned ones too), cars, deposits and
//! fund accounts, some deceased members and malformed records — plus a GBK applicant
//! batch with Chinese headers and a few bad rows, and a matching policy.
//!
//! - [`names`]: names, regions, institutions. [`rng`]: the seeded generator.
//! - [`writer`]: streaming CSV / JSON Lines / Parquet writers.

pub mod names;
pub mod rng;
pub mod writer;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use chrono::{Datelike, Months, NaiveDate};
use hedui_connectors::idnum::check_char;
use hedui_connectors::schema;

use crate::cli::SourceFormat;
use crate::engine::inputs::income_window;
use names::{BANKS, EMPLOYERS, GIVEN, REGIONS, REGION_WITHOUT_POLICY, STREETS, SURNAMES};
use rng::Rng;
use writer::{TableWriter, Val};

/// What to generate.
#[derive(Debug, Clone)]
pub struct CitySpec {
    /// People in the city.
    pub people: u64,
    /// Applicant households in the batch.
    pub households: u64,
    /// Source table format.
    pub format: SourceFormat,
    /// Seed.
    pub seed: u64,
    /// The check date the data is made for.
    pub as_of: NaiveDate,
}

/// What was generated.
#[derive(Debug, Clone)]
pub struct City {
    /// The source folder.
    pub sources: PathBuf,
    /// The applicant batch (GBK CSV, Chinese headers).
    pub applicants: PathBuf,
    /// The policy file.
    pub policy: PathBuf,
    /// People generated.
    pub people: u64,
    /// Applicant households written (bad ones included).
    pub households: u64,
    /// Rows per table.
    pub rows: Vec<(String, u64)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Wealth {
    Poor,
    Near,
    Rich,
}

struct Person {
    id: String,
    name: String,
    birth: NaiveDate,
    relation: &'static str,
}

/// Makes the city described by `spec` in `out`.
pub fn generate(spec: &CitySpec, out: &Path) -> std::io::Result<City> {
    let sources = out.join("sources");
    std::fs::create_dir_all(&sources)?;
    let mut writers: Vec<TableWriter> = schema::tables()
        .iter()
        .map(|t| TableWriter::create(&sources, t, spec.format))
        .collect::<std::io::Result<_>>()?;
    let idx = |name: &str| {
        schema::tables()
            .iter()
            .position(|t| t.table == name)
            .unwrap_or(0)
    };
    let (hr, prop, res, veh, tax, fin, fund) = (
        idx("hr_income"),
        idx("property"),
        idx("residents"),
        idx("vehicles"),
        idx("tax_income"),
        idx("financial"),
        idx("housing_fund"),
    );

    // Family sizes first, so exactly `households` families can be chosen as applicants.
    let mut sizes = Vec::new();
    let mut total = 0u64;
    let mut srng = Rng::new(spec.seed, u64::MAX);
    while total < spec.people.max(1) {
        let s = match srng.range(0, 99) {
            0..=14 => 1,
            15..=39 => 2,
            40..=69 => 3,
            70..=89 => 4,
            _ => 5,
        };
        let s = s.min(spec.people.max(1) - total);
        sizes.push(s);
        total += s;
    }
    let families = sizes.len() as u64;
    let wanted = spec.households.min(families);
    let (win_start, win_end) = income_window(spec.as_of, 12);
    let d = spec.as_of;
    let mut used_ids: HashSet<String> = HashSet::with_capacity(total as usize);
    let mut applicant_rows: Vec<[String; 8]> = Vec::new();
    let mut applicant_no = 0u64;
    let mut prev_applicant: Option<(String, String)> = None;

    for (fi, size) in sizes.iter().enumerate() {
        let fi = fi as u64;
        let mut rng = Rng::new(spec.seed, fi);
        let is_applicant = (fi + 1) * wanted / families > fi * wanted / families;
        let (region, _) = *rng.pick(REGIONS);
        let urban = rng.chance(600);
        let wealth = match (is_applicant, rng.range(0, 99)) {
            (true, 0..=64) | (false, 0..=19) => Wealth::Poor,
            (true, 65..=84) | (false, 20..=59) => Wealth::Near,
            _ => Wealth::Rich,
        };
        let surname = *rng.pick(SURNAMES);
        let mut people: Vec<Person> = Vec::new();
        for k in 0..*size {
            let (relation, lo, hi) = match k {
                0 => ("本人", 1950, 1998),
                1 if *size >= 3 || rng.chance(700) => ("配偶", 1950, 1998),
                4 => ("父母", 1935, 1960),
                _ => ("子女", 2000, 2022),
            };
            let birth = loop {
                let y = rng.range(lo, hi) as i32;
                let m = rng.range(1, 12) as u32;
                let day = rng.range(1, 28) as u32;
                if let Some(b) = NaiveDate::from_ymd_opt(y, m, day).filter(|b| *b < d) {
                    break b;
                }
            };
            let id = loop {
                let mut s = format!("{region}{}{:03}", birth.format("%Y%m%d"), rng.range(0, 999));
                s.push(check_char(s.as_bytes()));
                if used_ids.insert(s.clone()) {
                    break s;
                }
            };
            let family_name = if relation == "配偶" {
                *rng.pick(SURNAMES)
            } else {
                surname
            };
            let given: String = (0..rng.range(1, 2))
                .map(|_| *rng.pick(GIVEN))
                .collect::<Vec<_>>()
                .concat();
            people.push(Person {
                id,
                name: format!("{family_name}{given}"),
                birth,
                relation,
            });
        }

        // 公安 residents: everyone, with the occasional deceased, cancelled, renamed or
        // unregistered person.
        for p in &people {
            let age = d.year() - p.birth.year();
            if is_applicant && rng.chance(3) {
                continue; // not in the registry
            }
            let status = if age > 70 && rng.chance(40) {
                "deceased"
            } else if rng.chance(2) {
                "cancelled"
            } else {
                "normal"
            };
            let name = if is_applicant && rng.chance(3) {
                format!("{}{}", p.name, rng.pick(GIVEN))
            } else {
                p.name.clone()
            };
            writers[res].row(&[
                Val::Text(p.id.clone()),
                Val::Text(name),
                Val::Text(status.into()),
                Val::Text(format!("{region}{:06}", fi % 1_000_000)),
            ])?;
        }

        // Income, fund accounts, deposits and cars per adult.
        for p in &people {
            let age = d.year() - p.birth.year();
            if age < 18 {
                continue;
            }
            let working = age < 60
                && match wealth {
                    Wealth::Poor => rng.chance(350),
                    Wealth::Near => rng.chance(750),
                    Wealth::Rich => rng.chance(900),
                };
            let monthly = match wealth {
                Wealth::Poor => rng.range(400, 1_300),
                Wealth::Near => rng.range(1_300, 3_000),
                Wealth::Rich => rng.range(4_000, 15_000),
            } as i128
                * 100;
            let employer = rng.pick(EMPLOYERS).to_string();
            // 15 months back from D's month: three outside the 12-month window, and
            // one in D's own month, which the rules must ignore.
            let months: Vec<NaiveDate> = (0..=15)
                .filter_map(|k| win_end.checked_sub_months(Months::new(15 - k)))
                .collect();
            if working {
                let taxed = monthly >= 500_000 || rng.chance(300);
                let tax_differs = rng.chance(200);
                for m in &months {
                    let amount = monthly + rng.range(-200, 200) as i128 * 100;
                    writers[hr].row(&[
                        Val::Text(p.id.clone()),
                        Val::Month(*m),
                        Val::Text("wage".into()),
                        Val::Money(amount),
                        Val::Text(employer.clone()),
                    ])?;
                    if taxed {
                        let t = if tax_differs { amount + 30_000 } else { amount };
                        writers[tax].row(&[
                            Val::Text(p.id.clone()),
                            Val::Month(*m),
                            Val::Text("wage".into()),
                            Val::Money(t),
                        ])?;
                    }
                }
            } else if age >= 60 && rng.chance(750) {
                let pension = match wealth {
                    Wealth::Poor => rng.range(500, 1_300),
                    Wealth::Near => rng.range(1_200, 2_500),
                    Wealth::Rich => rng.range(2_500, 5_000),
                } as i128
                    * 100;
                for m in &months {
                    writers[hr].row(&[
                        Val::Text(p.id.clone()),
                        Val::Month(*m),
                        Val::Text("pension".into()),
                        Val::Money(pension),
                        Val::Text("社会保险事业管理局".into()),
                    ])?;
                }
            } else if rng.chance(80) {
                for m in months.iter().skip(10) {
                    writers[hr].row(&[
                        Val::Text(p.id.clone()),
                        Val::Month(*m),
                        Val::Text("unemployment".into()),
                        Val::Money(150_000),
                        Val::Null,
                    ])?;
                }
            }
            if wealth == Wealth::Rich && rng.chance(150) {
                for m in months.iter().step_by(3) {
                    let cat = if rng.chance(500) { "rental" } else { "labor" };
                    writers[tax].row(&[
                        Val::Text(p.id.clone()),
                        Val::Month(*m),
                        Val::Text(cat.into()),
                        Val::Money(rng.range(1_000, 8_000) as i128 * 100),
                    ])?;
                }
            }
            // 公积金: workers mostly have an active account; a few poor adults have one
            // being paid into without any wage record (undeclared employment).
            let undeclared = !working && age < 60 && wealth == Wealth::Poor && rng.chance(25);
            if (working && rng.chance(600)) || undeclared {
                let acct = format!("GJJ{}{:08}", region, rng.range(0, 99_999_999));
                let deposit = if undeclared {
                    rng.range(200, 600)
                } else {
                    rng.range(150, 2_400)
                } as i128
                    * 100;
                let balance = rng.range(2_000, 120_000) as i128 * 100;
                let closed_now = !undeclared && rng.chance(60);
                for (k, back) in [75u64, 20].iter().enumerate() {
                    let as_of = d.checked_sub_days(chrono::Days::new(*back)).unwrap_or(d);
                    let status = if closed_now && k == 1 {
                        "closed"
                    } else {
                        "active"
                    };
                    writers[fund].row(&[
                        Val::Text(p.id.clone()),
                        Val::Text(acct.clone()),
                        Val::Money(balance + k as i128 * deposit * 2),
                        Val::Money(if status == "closed" { 0 } else { deposit }),
                        Val::Text(status.into()),
                        Val::Date(as_of),
                    ])?;
                }
            }
            // 金融: one or two accounts, each with snapshots 3 months and 1 month before
            // D, and sometimes one after D (ignored by the rules).
            for a in 0..rng.range(1, 2) {
                let bank = rng.pick(BANKS).to_string();
                let acct = format!("62{:016}", rng.next_u64() % 10_000_000_000_000_000);
                let product = if a == 1 && wealth == Wealth::Rich {
                    "wealth"
                } else {
                    "deposit"
                };
                let base = match wealth {
                    Wealth::Poor => rng.range(0, 15_000),
                    Wealth::Near => rng.range(5_000, 40_000),
                    Wealth::Rich => rng.range(60_000, 900_000),
                } as i128
                    * 100
                    + rng.range(0, 99) as i128;
                let snaps: &[i64] = if rng.chance(100) {
                    &[90, 30, -5]
                } else {
                    &[90, 30]
                };
                for (k, back) in snaps.iter().enumerate() {
                    let as_of = if *back >= 0 {
                        d.checked_sub_days(chrono::Days::new(*back as u64))
                    } else {
                        d.checked_add_days(chrono::Days::new((-back) as u64))
                    }
                    .unwrap_or(d);
                    let bal = if *back < 0 {
                        base * 20
                    } else {
                        base + k as i128 * 5_000
                    };
                    writers[fin].row(&[
                        Val::Text(p.id.clone()),
                        Val::Text(bank.clone()),
                        Val::Text(acct.clone()),
                        Val::Text(product.into()),
                        Val::Money(bal),
                        Val::Date(as_of),
                    ])?;
                }
            }
            // 车辆.
            let car = match wealth {
                Wealth::Rich => rng.chance(500),
                Wealth::Near => rng.chance(80),
                Wealth::Poor => rng.chance(25),
            };
            if car || rng.chance(8) {
                let kind = if !car {
                    "disability_aid"
                } else if rng.chance(150) {
                    "motorcycle"
                } else {
                    "car"
                };
                let value = match (kind, wealth) {
                    ("disability_aid", _) => rng.range(3_000, 9_000),
                    ("motorcycle", _) => rng.range(2_000, 8_000),
                    (_, Wealth::Rich) => rng.range(60_000, 400_000),
                    _ => rng.range(8_000, 30_000),
                } as i128
                    * 100;
                let reg = d
                    .checked_sub_days(chrono::Days::new(rng.range(60, 3_000) as u64))
                    .unwrap_or(d);
                let scrapped = rng
                    .chance(120)
                    .then(|| d.checked_sub_days(chrono::Days::new(rng.range(1, 50) as u64)))
                    .flatten();
                writers[veh].row(&[
                    Val::Text(p.id.clone()),
                    Val::Text(format!("豫A{:05}", rng.range(0, 99_999))),
                    Val::Text(kind.into()),
                    Val::Money(value),
                    Val::Date(reg),
                    scrapped.map_or(Val::Null, Val::Date),
                ])?;
            }
        }

        // 不动产: a home co-owned by the couple, sometimes a second home, a shop, a sold
        // flat (cancelled before D) or one registered after D.
        let adults: Vec<&Person> = people
            .iter()
            .filter(|p| d.year() - p.birth.year() >= 18)
            .collect();
        let homes = match wealth {
            Wealth::Poor => i64::from(rng.chance(450)),
            Wealth::Near => 1,
            Wealth::Rich => rng.range(1, 3),
        };
        for h in 0..homes + i64::from(rng.chance(40)) {
            let Some(owner) = adults.first() else { break };
            let cert = format!("{}不动产权第{:07}号", &region[..4], fi * 8 + h as u64);
            let area = if wealth == Wealth::Poor {
                rng.range(3_000, 7_000)
            } else {
                rng.range(6_000, 16_000)
            } as i128;
            let reg = d
                .checked_sub_days(chrono::Days::new(rng.range(100, 6_000) as u64))
                .unwrap_or(d);
            let sold = h == homes; // the extra one was sold before D
            let cancelled = if sold {
                d.checked_sub_days(chrono::Days::new(rng.range(1, 90) as u64))
            } else {
                None
            };
            let usage = if wealth == Wealth::Rich && h == 2 {
                "commercial"
            } else {
                "residential"
            };
            let addr = format!(
                "{}{}{}号",
                REGIONS.iter().find(|r| r.0 == region).map_or("", |r| r.1),
                rng.pick(STREETS),
                rng.range(1, 300)
            );
            let co_owner = adults.get(1).filter(|_| rng.chance(600));
            let share = if co_owner.is_some() {
                Val::Money(50)
            } else {
                Val::Null
            };
            for o in std::iter::once(owner).chain(co_owner) {
                writers[prop].row(&[
                    Val::Text(o.id.clone()),
                    Val::Text(cert.clone()),
                    Val::Text(usage.into()),
                    Val::Money(area),
                    share.clone(),
                    Val::Date(reg),
                    cancelled.map_or(Val::Null, Val::Date),
                    Val::Text(addr.clone()),
                ])?;
            }
        }

        // A few malformed records per table, early in the city and then rarely.
        if fi < 2 || rng.chance(1) {
            let id = people[0].id.clone();
            let typed = spec.format == SourceFormat::Parquet;
            let bad_money = |s: &str| if typed { Val::Null } else { Val::Bad(s.into()) };
            let bad_date = |s: &str| if typed { Val::Null } else { Val::Bad(s.into()) };
            writers[hr].row(&[
                Val::Text(id.clone()),
                Val::Bad("2026-13".into()),
                Val::Text("wage".into()),
                Val::Money(100_000),
                Val::Null,
            ])?;
            writers[hr].row(&[
                Val::Text(id.clone()),
                Val::Month(win_start),
                Val::Text("wage".into()),
                bad_money("N/A"),
                Val::Null,
            ])?;
            writers[tax].row(&[
                Val::Text(id.clone()),
                Val::Month(win_start),
                Val::Text("salary".into()),
                Val::Money(100),
            ])?;
            writers[tax].row(&[
                Val::Text(id.clone()),
                Val::Month(win_start),
                Val::Text("labor".into()),
                bad_money("1.2万"),
            ])?;
            writers[prop].row(&[
                Val::Text(id.clone()),
                Val::Text("BAD-1".into()),
                Val::Text("residential".into()),
                Val::Money(8_000),
                Val::Null,
                bad_date("2026-02-30"),
                Val::Null,
                Val::Null,
            ])?;
            writers[veh].row(&[
                Val::Text(id.clone()),
                Val::Text("豫A00000".into()),
                Val::Text("tractor".into()),
                Val::Money(100),
                Val::Date(d),
                Val::Null,
            ])?;
            writers[fin].row(&[
                Val::Text(format!("{}0", &id[..17])),
                Val::Text("中国银行".into()),
                Val::Text("1".into()),
                Val::Text("deposit".into()),
                Val::Money(100),
                bad_date("2019/05/04"),
            ])?;
            writers[fund].row(&[
                Val::Text(id.clone()),
                Val::Text("GJJ0".into()),
                Val::Money(100),
                Val::Money(100),
                Val::Text("frozen".into()),
                Val::Date(d),
            ])?;
            writers[res].row(&[
                Val::Text(format!("{}1", &id[..16])),
                Val::Text("某".into()),
                Val::Text("normal".into()),
                Val::Null,
            ])?;
        }

        if is_applicant {
            applicant_no += 1;
            let hid = format!("SQ{}{:07}", d.year(), applicant_no);
            let aid = match rng.range(0, 9) {
                0 => "特困",
                1 | 2 => "低收入",
                _ => "低保",
            };
            let mut rows: Vec<[String; 8]> = people
                .iter()
                .map(|p| {
                    let mut id = p.id.clone();
                    if rng.chance(10) && p.birth.year() < 2000 {
                        id = format!("{}{}", &id[..6], &id[8..17]); // legacy 15-digit form
                    } else if rng.chance(10) {
                        id = id
                            .chars()
                            .map(|c| char::from_u32(c as u32 - 0x30 + 0xFF10).unwrap_or(c))
                            .collect();
                    } else if id.ends_with('X') && rng.chance(500) {
                        id = id.to_lowercase();
                    }
                    [
                        hid.clone(),
                        region.to_owned(),
                        if urban { "城市" } else { "农村" }.to_owned(),
                        aid.to_owned(),
                        format!("SQ-AUTH-{applicant_no:07}"),
                        id,
                        p.name.clone(),
                        p.relation.to_owned(),
                    ]
                })
                .collect();
            // Every 300th household also declares the previous applicant (a person in two
            // households of one batch).
            if applicant_no % 300 == 0 {
                if let Some((pid, pname)) = &prev_applicant {
                    let mut r = rows[0].clone();
                    r[5] = pid.clone();
                    r[6] = pname.clone();
                    r[7] = "其他".into();
                    rows.push(r);
                }
            }
            prev_applicant = Some((people[0].id.clone(), people[0].name.clone()));
            // A few households with a bad row, each kind of §3 rejection.
            match applicant_no % 499 {
                7 => {
                    rows[0][5] = format!(
                        "{}{}",
                        &people[0].id[..17],
                        if people[0].id.ends_with('0') {
                            '1'
                        } else {
                            '0'
                        }
                    )
                }
                13 => {
                    let last = rows.len() - 1;
                    rows[last][6] = String::new();
                }
                19 if rows.len() > 1 => {
                    rows[1][3] = if aid == "低保" {
                        "特困".into()
                    } else {
                        "低保".into()
                    }
                }
                29 => {
                    let r = rows[0].clone();
                    rows.push(r);
                }
                31 => rows[0][4] = String::new(),
                37 => rows[0][7] = "邻居".into(),
                41 => rows
                    .iter_mut()
                    .for_each(|r| r[1] = REGION_WITHOUT_POLICY.into()),
                43 => rows[0][2] = "城镇".into(),
                _ => {}
            }
            applicant_rows.extend(rows);
        }
    }

    let mut counts = Vec::new();
    for (w, t) in writers.into_iter().zip(schema::tables()) {
        counts.push((t.table.clone(), w.finish()?));
    }
    // Rows of a household need not be contiguous: move every 50th row to the end.
    let mut moved = Vec::new();
    let mut kept = Vec::new();
    for (i, r) in applicant_rows.into_iter().enumerate() {
        if i % 50 == 49 {
            moved.push(r);
        } else {
            kept.push(r);
        }
    }
    kept.extend(moved);
    let applicants = out.join("applicants.csv");
    write_gbk_csv(&applicants, &kept)?;
    let policy = out.join("policy.toml");
    std::fs::write(&policy, POLICY)?;
    Ok(City {
        sources,
        applicants,
        policy,
        people: total,
        households: applicant_no,
        rows: counts,
    })
}

fn write_gbk_csv(path: &Path, rows: &[[String; 8]]) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(crate::applicants::Column::ALL.map(crate::applicants::Column::chinese))?;
    for r in rows {
        w.write_record(r)?;
    }
    let utf8 = String::from_utf8(
        w.into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()))?,
    )
    .map_err(std::io::Error::other)?;
    let (gbk, _, _) = encoding_rs::GBK.encode(&utf8);
    std::fs::write(path, gbk)
}

/// The generated city's policy: real-looking standards, 资阳 2014 among them.
pub const POLICY: &str = concat!(
    "# Policy of the generated city (hedui generate). Money is in yuan per month.\n",
    crate::spec_defaults_toml!(),
    r#"
[[standard]]
region = "410100"
name = "郑州市"
effective_from = 2025-01-01
urban_monthly = "720"
rural_monthly = "560"

[[standard]]
region = "410184"
name = "新郑市"
effective_from = 2024-01-01
urban_monthly = "700"
rural_monthly = "540"

[[standard]]
region = "410184"
name = "新郑市"
effective_from = 2026-01-01
urban_monthly = "760"
rural_monthly = "580"
vehicle_value_limit = "10000"

[[standard]]
region = "512000"
name = "资阳市"
effective_from = 2014-01-01
urban_monthly = "330"
rural_monthly = "165"

[[standard]]
region = "512000"
name = "资阳市"
effective_from = 2025-07-01
urban_monthly = "680"
rural_monthly = "520"
count_housing_fund_as_asset = true

[[standard]]
region = "110000"
name = "北京市"
effective_from = 2025-01-01
urban_monthly = "1450"
rural_monthly = "1450"
max_residential_area_per_capita_m2 = 30
asset_months = { low_income = 48 }
"#
);
