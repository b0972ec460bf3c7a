//! One family of the generated city at a time: who is in it, and each department's
//! records of them (公安 residents, 人社 and 税务 income, 公积金, 金融, 车辆, 不动产), then
//! the malformed records every delivery has and the family's rows of the applicant batch.
//! Every step draws from the family's own random numbers in the same order, so the same
//! seed makes the same city.

use std::collections::HashSet;
use std::path::Path;

use chrono::{Datelike, Months, NaiveDate};
use hedui_connectors::idnum::check_char;
use hedui_connectors::schema;

use super::names::{BANKS, EMPLOYERS, GIVEN, REGIONS, REGION_WITHOUT_POLICY, STREETS, SURNAMES};
use super::rng::Rng;
use super::writer::{TableWriter, Val};
use crate::cli::SourceFormat;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Wealth {
    Poor,
    Near,
    Rich,
}

pub(super) struct Person {
    id: String,
    name: String,
    birth: NaiveDate,
    relation: &'static str,
}

/// The tables being written, and where each canonical table is among them.
pub(super) struct Tables {
    pub(super) w: Vec<TableWriter>,
    pub(super) hr: usize,
    pub(super) prop: usize,
    pub(super) res: usize,
    pub(super) veh: usize,
    pub(super) tax: usize,
    pub(super) fin: usize,
    pub(super) fund: usize,
}

impl Tables {
    pub(super) fn create(sources: &Path, format: SourceFormat) -> std::io::Result<Tables> {
        let w = schema::tables()
            .iter()
            .map(|t| TableWriter::create(sources, t, format))
            .collect::<std::io::Result<_>>()?;
        let idx = |name: &str| {
            schema::tables()
                .iter()
                .position(|t| t.table == name)
                .unwrap_or(0)
        };
        Ok(Tables {
            w,
            hr: idx("hr_income"),
            prop: idx("property"),
            res: idx("residents"),
            veh: idx("vehicles"),
            tax: idx("tax_income"),
            fin: idx("financial"),
            fund: idx("housing_fund"),
        })
    }

    pub(super) fn row(&mut self, table: usize, values: &[Val]) -> std::io::Result<()> {
        self.w[table].row(values)
    }

    /// Closes every table; the rows written to each.
    pub(super) fn finish(self) -> std::io::Result<Vec<(String, u64)>> {
        let mut counts = Vec::new();
        for (w, t) in self.w.into_iter().zip(schema::tables()) {
            counts.push((t.table.clone(), w.finish()?));
        }
        Ok(counts)
    }
}

/// The city-wide facts every family is made against: the date D, the income window,
/// whether the tables are typed (Parquet: a malformed value can only be empty).
pub(super) struct Cx {
    pub(super) d: NaiveDate,
    pub(super) win_start: NaiveDate,
    pub(super) win_end: NaiveDate,
    pub(super) typed: bool,
}

/// One family being made: its own random draws (from the seed and its number, so the
/// same seed makes the same city), where it lives, how well off it is, who is in it.
pub(super) struct Family {
    pub(super) fi: u64,
    pub(super) rng: Rng,
    pub(super) region: &'static str,
    pub(super) urban: bool,
    pub(super) wealth: Wealth,
    pub(super) is_applicant: bool,
    pub(super) people: Vec<Person>,
}

/// The family sizes, until there are `people` people; and that total.
pub(super) fn family_sizes(seed: u64, people: u64) -> (Vec<u64>, u64) {
    let mut sizes = Vec::new();
    let mut total = 0u64;
    let mut srng = Rng::new(seed, u64::MAX);
    while total < people.max(1) {
        let s = match srng.range(0, 99) {
            0..=14 => 1,
            15..=39 => 2,
            40..=69 => 3,
            70..=89 => 4,
            _ => 5,
        };
        let s = s.min(people.max(1) - total);
        sizes.push(s);
        total += s;
    }
    (sizes, total)
}

/// Family number `fi` of `size` people (the `wanted` applicants spread evenly over the
/// `families`), each with a new ID number.
pub(super) fn family(
    seed: u64,
    fi: u64,
    size: u64,
    wanted: u64,
    families: u64,
    used_ids: &mut HashSet<String>,
    d: NaiveDate,
) -> Family {
    let size = &size;
    let mut rng = Rng::new(seed, fi);
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
    Family {
        fi,
        rng,
        region,
        urban,
        wealth,
        is_applicant,
        people,
    }
}

/// 公安 residents: everyone, with the occasional deceased, cancelled, renamed or
/// unregistered person.
pub(super) fn residents(f: &mut Family, t: &mut Tables, d: NaiveDate) -> std::io::Result<()> {
    let (fi, region, is_applicant) = (f.fi, f.region, f.is_applicant);
    let (rng, people) = (&mut f.rng, &f.people);
    // 公安 residents: everyone, with the occasional deceased, cancelled, renamed or
    // unregistered person.
    for p in people.iter() {
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
        t.row(
            t.res,
            &[
                Val::Text(p.id.clone()),
                Val::Text(name),
                Val::Text(status.into()),
                Val::Text(format!("{region}{:06}", fi % 1_000_000)),
            ],
        )?;
    }
    Ok(())
}

/// Income, fund accounts, deposits and cars per adult.
pub(super) fn adult_records(f: &mut Family, t: &mut Tables, cx: &Cx) -> std::io::Result<()> {
    let (region, wealth) = (f.region, f.wealth);
    let (rng, people) = (&mut f.rng, &f.people);
    let d = cx.d;
    for p in people.iter() {
        let age = d.year() - p.birth.year();
        if age < 18 {
            continue;
        }
        let working = income(rng, p, age, wealth, t, cx)?;
        fund_account(rng, p, age, working, wealth, region, t, d)?;
        bank_accounts(rng, p, wealth, t, d)?;
        vehicle(rng, p, wealth, t, d)?;
    }
    Ok(())
}

/// One adult's income records (人社 wages, pensions, unemployment; 税务 taxed wages
/// and other income); whether the adult works.
pub(super) fn income(
    rng: &mut Rng,
    p: &Person,
    age: i32,
    wealth: Wealth,
    t: &mut Tables,
    cx: &Cx,
) -> std::io::Result<bool> {
    let win_end = cx.win_end;
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
            t.row(
                t.hr,
                &[
                    Val::Text(p.id.clone()),
                    Val::Month(*m),
                    Val::Text("wage".into()),
                    Val::Money(amount),
                    Val::Text(employer.clone()),
                ],
            )?;
            if taxed {
                let taxed_amount = if tax_differs { amount + 30_000 } else { amount };
                t.row(
                    t.tax,
                    &[
                        Val::Text(p.id.clone()),
                        Val::Month(*m),
                        Val::Text("wage".into()),
                        Val::Money(taxed_amount),
                    ],
                )?;
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
            t.row(
                t.hr,
                &[
                    Val::Text(p.id.clone()),
                    Val::Month(*m),
                    Val::Text("pension".into()),
                    Val::Money(pension),
                    Val::Text("社会保险事业管理局".into()),
                ],
            )?;
        }
    } else if rng.chance(80) {
        for m in months.iter().skip(10) {
            t.row(
                t.hr,
                &[
                    Val::Text(p.id.clone()),
                    Val::Month(*m),
                    Val::Text("unemployment".into()),
                    Val::Money(150_000),
                    Val::Null,
                ],
            )?;
        }
    }
    if wealth == Wealth::Rich && rng.chance(150) {
        for m in months.iter().step_by(3) {
            let cat = if rng.chance(500) { "rental" } else { "labor" };
            t.row(
                t.tax,
                &[
                    Val::Text(p.id.clone()),
                    Val::Month(*m),
                    Val::Text(cat.into()),
                    Val::Money(rng.range(1_000, 8_000) as i128 * 100),
                ],
            )?;
        }
    }
    Ok(working)
}

/// 公积金: workers mostly have an active account; a few poor adults have one being paid
/// into without any wage record (undeclared employment).
#[allow(clippy::too_many_arguments)]
pub(super) fn fund_account(
    rng: &mut Rng,
    p: &Person,
    age: i32,
    working: bool,
    wealth: Wealth,
    region: &str,
    t: &mut Tables,
    d: NaiveDate,
) -> std::io::Result<()> {
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
            t.row(
                t.fund,
                &[
                    Val::Text(p.id.clone()),
                    Val::Text(acct.clone()),
                    Val::Money(balance + k as i128 * deposit * 2),
                    Val::Money(if status == "closed" { 0 } else { deposit }),
                    Val::Text(status.into()),
                    Val::Date(as_of),
                ],
            )?;
        }
    }
    Ok(())
}

/// 金融: one or two accounts, each with snapshots 3 months and 1 month before D, and
/// sometimes one after D (ignored by the rules).
pub(super) fn bank_accounts(
    rng: &mut Rng,
    p: &Person,
    wealth: Wealth,
    t: &mut Tables,
    d: NaiveDate,
) -> std::io::Result<()> {
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
            t.row(
                t.fin,
                &[
                    Val::Text(p.id.clone()),
                    Val::Text(bank.clone()),
                    Val::Text(acct.clone()),
                    Val::Text(product.into()),
                    Val::Money(bal),
                    Val::Date(as_of),
                ],
            )?;
        }
    }
    Ok(())
}

/// 车辆: a car the better off mostly have; a disability aid now and then.
pub(super) fn vehicle(
    rng: &mut Rng,
    p: &Person,
    wealth: Wealth,
    t: &mut Tables,
    d: NaiveDate,
) -> std::io::Result<()> {
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
        t.row(
            t.veh,
            &[
                Val::Text(p.id.clone()),
                Val::Text(format!("豫A{:05}", rng.range(0, 99_999))),
                Val::Text(kind.into()),
                Val::Money(value),
                Val::Date(reg),
                scrapped.map_or(Val::Null, Val::Date),
            ],
        )?;
    }
    Ok(())
}

/// 不动产: a home co-owned by the couple, sometimes a second home, a shop, a sold flat
/// (cancelled before D) or one registered after D.
pub(super) fn properties(f: &mut Family, t: &mut Tables, d: NaiveDate) -> std::io::Result<()> {
    let (fi, region, wealth) = (f.fi, f.region, f.wealth);
    let (rng, people) = (&mut f.rng, &f.people);
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
            t.row(
                t.prop,
                &[
                    Val::Text(o.id.clone()),
                    Val::Text(cert.clone()),
                    Val::Text(usage.into()),
                    Val::Money(area),
                    share.clone(),
                    Val::Date(reg),
                    cancelled.map_or(Val::Null, Val::Date),
                    Val::Text(addr.clone()),
                ],
            )?;
        }
    }
    Ok(())
}

/// A few malformed records per table, early in the city and then rarely.
pub(super) fn malformed(f: &mut Family, t: &mut Tables, cx: &Cx) -> std::io::Result<()> {
    let (fi, rng, people) = (f.fi, &mut f.rng, &f.people);
    let (d, win_start) = (cx.d, cx.win_start);
    // A few malformed records per table, early in the city and then rarely.
    if fi < 2 || rng.chance(1) {
        let id = people[0].id.clone();
        let typed = cx.typed;
        let bad_money = |s: &str| if typed { Val::Null } else { Val::Bad(s.into()) };
        let bad_date = |s: &str| if typed { Val::Null } else { Val::Bad(s.into()) };
        t.row(
            t.hr,
            &[
                Val::Text(id.clone()),
                Val::Bad("2026-13".into()),
                Val::Text("wage".into()),
                Val::Money(100_000),
                Val::Null,
            ],
        )?;
        t.row(
            t.hr,
            &[
                Val::Text(id.clone()),
                Val::Month(win_start),
                Val::Text("wage".into()),
                bad_money("N/A"),
                Val::Null,
            ],
        )?;
        t.row(
            t.tax,
            &[
                Val::Text(id.clone()),
                Val::Month(win_start),
                Val::Text("salary".into()),
                Val::Money(100),
            ],
        )?;
        t.row(
            t.tax,
            &[
                Val::Text(id.clone()),
                Val::Month(win_start),
                Val::Text("labor".into()),
                bad_money("1.2万"),
            ],
        )?;
        t.row(
            t.prop,
            &[
                Val::Text(id.clone()),
                Val::Text("BAD-1".into()),
                Val::Text("residential".into()),
                Val::Money(8_000),
                Val::Null,
                bad_date("2026-02-30"),
                Val::Null,
                Val::Null,
            ],
        )?;
        t.row(
            t.veh,
            &[
                Val::Text(id.clone()),
                Val::Text("豫A00000".into()),
                Val::Text("tractor".into()),
                Val::Money(100),
                Val::Date(d),
                Val::Null,
            ],
        )?;
        t.row(
            t.fin,
            &[
                Val::Text(format!("{}0", &id[..17])),
                Val::Text("中国银行".into()),
                Val::Text("1".into()),
                Val::Text("deposit".into()),
                Val::Money(100),
                bad_date("2019/05/04"),
            ],
        )?;
        t.row(
            t.fund,
            &[
                Val::Text(id.clone()),
                Val::Text("GJJ0".into()),
                Val::Money(100),
                Val::Money(100),
                Val::Text("frozen".into()),
                Val::Date(d),
            ],
        )?;
        t.row(
            t.res,
            &[
                Val::Text(format!("{}1", &id[..16])),
                Val::Text("某".into()),
                Val::Text("normal".into()),
                Val::Null,
            ],
        )?;
    }
    Ok(())
}

/// The batch rows of applicant household number `applicant_no` (`SQ{year}{no}`): its
/// members with ID numbers in the forms clerks type, now and then a person declared in
/// the previous household too, and every kind of row a batch rejects.
pub(super) fn applicant_rows_of(
    f: &mut Family,
    applicant_no: u64,
    prev_applicant: &mut Option<(String, String)>,
    d: NaiveDate,
) -> Vec<[String; 8]> {
    let (region, urban) = (f.region, f.urban);
    let (rng, people) = (&mut f.rng, &f.people);
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
    *prev_applicant = Some((people[0].id.clone(), people[0].name.clone()));
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
    rows
}
