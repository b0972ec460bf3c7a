//! What a policy is (SPEC §6): aid and area types, the rule parameters of a standard,
//! the dated standards per region, and why a region may have none in force.

use std::collections::BTreeMap;

use chrono::NaiveDate;

/// Scale of policy multipliers and month counts (`1.5`, `24`): 4 fraction digits.
pub const FACTOR_SCALE: u8 = 4;

/// A policy file that cannot be used; names the file, the key and why.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file cannot be read.
    #[error("cannot read policy file {file}: {source}")]
    Io {
        /// the file
        file: String,
        /// the cause
        source: std::io::Error,
    },
    /// TOML syntax or an unknown key.
    #[error("cannot read policy file {file}: {message}")]
    Syntax {
        /// the file
        file: String,
        /// the parser's message
        message: String,
    },
    /// A key with a bad value.
    #[error("invalid policy file {file}: {key}: {message}")]
    Value {
        /// the file
        file: String,
        /// the key, e.g. `standard[2].urban_monthly`
        key: String,
        /// what is wrong
        message: String,
    },
}

/// The aid types of SPEC §3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AidType {
    /// 低保, minimum livelihood guarantee.
    Dibao,
    /// 特困, extreme poverty support.
    Tekun,
    /// 低收入, low-income household.
    LowIncome,
}

impl AidType {
    /// All aid types.
    pub const ALL: [AidType; 3] = [AidType::Dibao, AidType::Tekun, AidType::LowIncome];

    /// Canonical English code.
    pub fn code(self) -> &'static str {
        match self {
            AidType::Dibao => "dibao",
            AidType::Tekun => "tekun",
            AidType::LowIncome => "low_income",
        }
    }

    /// Chinese name.
    pub fn chinese(self) -> &'static str {
        match self {
            AidType::Dibao => "低保",
            AidType::Tekun => "特困",
            AidType::LowIncome => "低收入",
        }
    }

    /// The full Chinese names clerks also write (SPEC §3).
    pub fn variant(self) -> &'static str {
        match self {
            AidType::Dibao => "最低生活保障",
            AidType::Tekun => "特困供养",
            AidType::LowIncome => "低收入家庭",
        }
    }

    /// Parses the English code, the Chinese name or its full form (`最低生活保障`).
    pub fn parse(s: &str) -> Option<AidType> {
        AidType::ALL
            .into_iter()
            .find(|a| s.eq_ignore_ascii_case(a.code()) || s == a.chinese() || s == a.variant())
    }
}

/// Urban or rural (城市 / 农村).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AreaType {
    /// 城市.
    Urban,
    /// 农村.
    Rural,
}

impl AreaType {
    /// Canonical English code.
    pub fn code(self) -> &'static str {
        match self {
            AreaType::Urban => "urban",
            AreaType::Rural => "rural",
        }
    }

    /// Chinese name.
    pub fn chinese(self) -> &'static str {
        match self {
            AreaType::Urban => "城市",
            AreaType::Rural => "农村",
        }
    }

    /// The other Chinese word clerks write (`城镇`, `乡村`; SPEC §3).
    pub fn variant(self) -> &'static str {
        match self {
            AreaType::Urban => "城镇",
            AreaType::Rural => "乡村",
        }
    }

    /// Parses the English code, the Chinese name or its variant.
    pub fn parse(s: &str) -> Option<AreaType> {
        [AreaType::Urban, AreaType::Rural]
            .into_iter()
            .find(|a| s.eq_ignore_ascii_case(a.code()) || s == a.chinese() || s == a.variant())
    }
}

/// Rule parameters in force for one region (SPEC §6 `[defaults]` keys), exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// Full calendar months in the income window.
    pub income_months: u32,
    /// Income limit factor on S per aid type, scaled by 10^4.
    pub income_multiplier: BTreeMap<AidType, i128>,
    /// Asset limit in months of S per aid type, scaled by 10^4.
    pub asset_months: BTreeMap<AidType, i128>,
    /// Distinct residential certificates allowed.
    pub max_residential_properties: i64,
    /// Residential m² per member allowed, scaled by 100.
    pub max_residential_area_per_capita_m2: i128,
    /// Whether a commercial property disqualifies (else it is for review).
    pub commercial_property_disqualifies: bool,
    /// Vehicle value (yuan, scaled by 100) above which a held vehicle disqualifies.
    pub vehicle_value_limit: i128,
    /// Vehicle types never counted.
    pub exempt_vehicle_types: Vec<String>,
    /// Whether active housing-fund balances count as financial assets.
    pub count_housing_fund_as_asset: bool,
    /// hr_income kinds left out of income.
    pub excluded_hr_kinds: Vec<String>,
    /// tax_income categories left out of income.
    pub excluded_tax_categories: Vec<String>,
}

/// The `[defaults]` table of SPEC §6 as TOML text (every key, the SPEC's values), for
/// generated policies, examples and tests; a string literal, so `concat!` can use it.
#[macro_export]
macro_rules! spec_defaults_toml {
    () => {
        r#"[defaults]
income_months = 12
income_multiplier = { dibao = 1.0, tekun = 1.0, low_income = 1.5 }
asset_months = { dibao = 24, tekun = 24, low_income = 36 }
max_residential_properties = 1
max_residential_area_per_capita_m2 = 40
commercial_property_disqualifies = true
vehicle_value_limit = 0
exempt_vehicle_types = ["disability_aid"]
count_housing_fund_as_asset = false
excluded_hr_kinds = []
excluded_tax_categories = []
"#
    };
}

/// [`spec_defaults_toml!`] as a constant.
pub const SPEC_DEFAULTS: &str = spec_defaults_toml!();

/// How the pipelines are given one column of the household's parameters (the
/// standard in force for it, its area and aid types decide the value).
#[derive(Clone, Copy)]
pub enum Given {
    /// A whole number: an `Int64` column of the `params` table.
    Count(fn(&Params) -> i64),
    /// An exact figure: a `Decimal128` column of `params` with this scale.
    Figure(u8, fn(&Standard, AreaType, AidType) -> i128),
    /// A yes/no: a `Boolean` column of `params`.
    Yes(fn(&Params) -> bool),
    /// A list: the table (`param_KEY`) of (household_id, this column), a row per value.
    List(&'static str, &'static str, fn(&Params) -> &[String]),
}

/// One column the pipelines read of a household's parameters.
#[derive(Clone, Copy)]
pub struct ParamColumn {
    /// Its name: the column of `params` (or the list table's `param_` suffix), and —
    /// when `in_file` — the key of `[defaults]` and of a standard's overrides.
    pub key: &'static str,
    /// Whether the policy file gives it (all do but the standard S itself).
    pub in_file: bool,
    /// How the pipelines get it.
    pub given: Given,
}

impl std::fmt::Debug for ParamColumn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key)
    }
}

/// The household's parameters as the pipelines read them, in the order of the `params`
/// table's columns (after its household_id, as_of, window_start, window_end), then the
/// list tables: the one list of them. The policy file's keys are those `in_file`, every
/// one of them required (all rule parameters come from the policy file; a missing key is
/// never replaced by a built-in value).
pub const PARAM_COLUMNS: [ParamColumn; 12] = [
    ParamColumn {
        key: "income_months",
        in_file: true,
        given: Given::Count(|p| i64::from(p.income_months)),
    },
    ParamColumn {
        key: "standard_monthly",
        in_file: false,
        given: Given::Figure(2, |s, area, _| s.monthly(area)),
    },
    ParamColumn {
        key: "income_multiplier",
        in_file: true,
        given: Given::Figure(FACTOR_SCALE, |s, _, aid| {
            s.params
                .income_multiplier
                .get(&aid)
                .copied()
                .unwrap_or_default()
        }),
    },
    ParamColumn {
        key: "asset_months",
        in_file: true,
        given: Given::Figure(FACTOR_SCALE, |s, _, aid| {
            s.params.asset_months.get(&aid).copied().unwrap_or_default()
        }),
    },
    ParamColumn {
        key: "max_residential_properties",
        in_file: true,
        given: Given::Count(|p| p.max_residential_properties),
    },
    ParamColumn {
        key: "max_residential_area_per_capita_m2",
        in_file: true,
        given: Given::Figure(2, |s, _, _| s.params.max_residential_area_per_capita_m2),
    },
    ParamColumn {
        key: "commercial_property_disqualifies",
        in_file: true,
        given: Given::Yes(|p| p.commercial_property_disqualifies),
    },
    ParamColumn {
        key: "vehicle_value_limit",
        in_file: true,
        given: Given::Figure(2, |s, _, _| s.params.vehicle_value_limit),
    },
    ParamColumn {
        key: "exempt_vehicle_types",
        in_file: true,
        given: Given::List("param_exempt_vehicle_types", "vehicle_type", |p| {
            &p.exempt_vehicle_types
        }),
    },
    ParamColumn {
        key: "count_housing_fund_as_asset",
        in_file: true,
        given: Given::Yes(|p| p.count_housing_fund_as_asset),
    },
    ParamColumn {
        key: "excluded_hr_kinds",
        in_file: true,
        given: Given::List("param_excluded_hr_kinds", "kind", |p| &p.excluded_hr_kinds),
    },
    ParamColumn {
        key: "excluded_tax_categories",
        in_file: true,
        given: Given::List("param_excluded_tax_categories", "category", |p| {
            &p.excluded_tax_categories
        }),
    },
];

/// The keys of `[defaults]`, every one required, in [`PARAM_COLUMNS`] order.
pub fn param_keys() -> impl Iterator<Item = &'static str> {
    PARAM_COLUMNS.iter().filter(|c| c.in_file).map(|c| c.key)
}

impl Params {
    /// Parameters before `[defaults]` is applied: every one of them is then set from the
    /// file (the keys are checked to be complete first), so no value here is ever used.
    pub(super) fn unset() -> Self {
        Params {
            income_months: 0,
            income_multiplier: BTreeMap::new(),
            asset_months: BTreeMap::new(),
            max_residential_properties: 0,
            max_residential_area_per_capita_m2: 0,
            commercial_property_disqualifies: false,
            vehicle_value_limit: 0,
            exempt_vehicle_types: Vec::new(),
            count_housing_fund_as_asset: false,
            excluded_hr_kinds: Vec::new(),
            excluded_tax_categories: Vec::new(),
        }
    }
}

/// One `[[standard]]` entry with its parameters resolved.
#[derive(Debug, Clone)]
pub struct Standard {
    /// 6-digit region code the entry is for.
    pub region: String,
    /// Region name (e.g. 新郑市).
    pub name: String,
    /// First day the entry is in force.
    pub effective_from: NaiveDate,
    /// Urban monthly 低保 standard, yuan scaled by 100.
    pub urban_monthly: i128,
    /// Rural monthly 低保 standard, yuan scaled by 100.
    pub rural_monthly: i128,
    /// Parameters: defaults with this entry's overrides.
    pub params: Params,
}

impl Standard {
    /// S for an area type, yuan scaled by 100.
    pub fn monthly(&self, area: AreaType) -> i128 {
        match area {
            AreaType::Urban => self.urban_monthly,
            AreaType::Rural => self.rural_monthly,
        }
    }
}

/// A parsed, validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The file it came from.
    pub file: String,
    /// All standards.
    pub standards: Vec<Standard>,
}

/// Why no standard applies to a region on a date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoPolicy {
    /// No entry at any level.
    NoEntry,
    /// The first level with entries (the code given) has none in force on the date.
    NotInForce {
        /// the level's region code
        level: String,
    },
}

impl Policy {
    /// The standard in force for `region` on `date` (SPEC §6): exact code, then
    /// prefecture `code[0..4]00`, then province `code[0..2]0000`; within the first level
    /// that has any entry, the latest effective on or before `date` — never a wider level.
    pub fn lookup(&self, region: &str, date: NaiveDate) -> Result<&Standard, NoPolicy> {
        if region.len() != 6 || !region.is_ascii() {
            return Err(NoPolicy::NoEntry);
        }
        let levels = [
            region.to_owned(),
            format!("{}00", &region[..4]),
            format!("{}0000", &region[..2]),
        ];
        for level in levels {
            let mut entries = self
                .standards
                .iter()
                .filter(|s| s.region == level)
                .peekable();
            if entries.peek().is_none() {
                continue;
            }
            return entries
                .filter(|s| s.effective_from <= date)
                .max_by_key(|s| s.effective_from)
                .ok_or(NoPolicy::NotInForce { level });
        }
        Err(NoPolicy::NoEntry)
    }
}
