//! `hedui generate`: a deterministic synthetic city — residents with valid IDs in real
//! regions, families with wages, pensions, homes (co-owned ones too), cars, deposits and
//! fund accounts, some deceased members and malformed records — plus a GBK applicant
//! batch with Chinese headers and a few bad rows, and a matching policy.
//!
//! - [`names`]: names, regions, institutions. [`rng`]: the seeded generator.
//! - [`writer`]: streaming CSV / JSON Lines / Parquet writers.

mod family;
pub mod names;
pub mod rng;
pub mod writer;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::cli::SourceFormat;
use crate::engine::inputs::income_window;
use family::{
    adult_records, applicant_rows_of, family, family_sizes, malformed, properties, residents, Cx,
    Tables,
};

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

/// Makes the city described by `spec` in `out`.
pub fn generate(spec: &CitySpec, out: &Path) -> std::io::Result<City> {
    let sources = out.join("sources");
    std::fs::create_dir_all(&sources)?;
    let mut t = Tables::create(&sources, spec.format)?;

    // Family sizes first, so exactly `households` families can be chosen as applicants.
    let (sizes, total) = family_sizes(spec.seed, spec.people);
    let families = sizes.len() as u64;
    let wanted = spec.households.min(families);
    let (win_start, win_end) = income_window(spec.as_of, 12);
    let d = spec.as_of;
    let cx = Cx {
        d,
        win_start,
        win_end,
        typed: spec.format == SourceFormat::Parquet,
    };
    let mut used_ids: HashSet<String> = HashSet::with_capacity(total as usize);
    let mut applicant_rows: Vec<[String; 8]> = Vec::new();
    let mut applicant_no = 0u64;
    let mut prev_applicant: Option<(String, String)> = None;

    for (fi, size) in sizes.iter().enumerate() {
        let mut f = family(
            spec.seed,
            fi as u64,
            *size,
            wanted,
            families,
            &mut used_ids,
            d,
        );
        residents(&mut f, &mut t, d)?;
        adult_records(&mut f, &mut t, &cx)?;
        properties(&mut f, &mut t, d)?;
        malformed(&mut f, &mut t, &cx)?;
        if f.is_applicant {
            applicant_no += 1;
            let rows = applicant_rows_of(&mut f, applicant_no, &mut prev_applicant, d);
            applicant_rows.extend(rows);
        }
    }

    let counts = t.finish()?;
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
