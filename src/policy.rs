//! The policy file (SPEC §6): defaults, dated `[[standard]]` entries per region with
//! overrides, and the region lookup that turns a household into its rule parameters.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;
use hedui_connectors::decimal::parse_decimal;
use hedui_connectors::schema;
use serde::Deserialize;

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

/// The `[defaults]` keys, every one of them required (SPEC §6: all rule parameters come
/// from the policy file; a missing key is never replaced by a built-in value).
pub const PARAM_KEYS: [&str; 11] = [
    "income_months",
    "income_multiplier",
    "asset_months",
    "max_residential_properties",
    "max_residential_area_per_capita_m2",
    "commercial_property_disqualifies",
    "vehicle_value_limit",
    "exempt_vehicle_types",
    "count_housing_fund_as_asset",
    "excluded_hr_kinds",
    "excluded_tax_categories",
];

impl Params {
    /// Parameters before `[defaults]` is applied: every one of them is then set from the
    /// file (the keys are checked to be complete first), so no value here is ever used.
    fn unset() -> Self {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    defaults: Option<toml::Table>,
    #[serde(default)]
    standard: Vec<toml::Table>,
}

struct Ctx<'a> {
    file: &'a str,
}

impl Ctx<'_> {
    fn err(&self, key: impl Into<String>, message: impl Into<String>) -> PolicyError {
        PolicyError::Value {
            file: self.file.to_owned(),
            key: key.into(),
            message: message.into(),
        }
    }

    fn money(&self, key: &str, v: &toml::Value) -> Result<i128, PolicyError> {
        match v {
            toml::Value::String(s) => {
                parse_decimal(s.trim(), 2).map_err(|e| self.err(key, format!("\"{s}\" {e}")))
            }
            toml::Value::Integer(i) => Ok(i128::from(*i) * 100),
            toml::Value::Float(f) => Err(self.err(
                key,
                format!("{f} is a float; write money as a string, e.g. \"{f}\""),
            )),
            other => Err(self.err(
                key,
                format!("expected an amount in yuan, found {}", other.type_str()),
            )),
        }
    }

    fn factor(&self, key: &str, v: &toml::Value, scale: u8) -> Result<i128, PolicyError> {
        let text = match v {
            toml::Value::String(s) => s.trim().to_owned(),
            toml::Value::Integer(i) => i.to_string(),
            // Display prints the shortest text that reads back as the same float.
            toml::Value::Float(f) if f.is_finite() => format!("{f}"),
            other => {
                return Err(self.err(
                    key,
                    format!("expected a number, found {}", other.type_str()),
                ))
            }
        };
        let v = parse_decimal(&text, scale).map_err(|e| self.err(key, format!("{text} {e}")))?;
        if v < 0 {
            return Err(self.err(key, format!("{text} is negative")));
        }
        Ok(v)
    }

    fn bool(&self, key: &str, v: &toml::Value) -> Result<bool, PolicyError> {
        v.as_bool().ok_or_else(|| {
            self.err(
                key,
                format!("expected true or false, found {}", v.type_str()),
            )
        })
    }

    fn list(
        &self,
        key: &str,
        v: &toml::Value,
        table: &str,
        column: &str,
    ) -> Result<Vec<String>, PolicyError> {
        let allowed = &schema::table(table)
            .and_then(|t| t.column(column))
            .map(|c| c.values.clone())
            .unwrap_or_default();
        let arr = v
            .as_array()
            .ok_or_else(|| self.err(key, "expected a list of strings"))?;
        arr.iter()
            .map(|x| {
                let s = x
                    .as_str()
                    .ok_or_else(|| self.err(key, "expected a list of strings"))?;
                if allowed.iter().any(|a| a == s) {
                    Ok(s.to_owned())
                } else {
                    Err(self.err(key, format!("\"{s}\" is not one of {}", allowed.join(", "))))
                }
            })
            .collect()
    }

    fn aid_map(
        &self,
        key: &str,
        v: &toml::Value,
        into: &mut BTreeMap<AidType, i128>,
    ) -> Result<(), PolicyError> {
        let t = v.as_table().ok_or_else(|| {
            self.err(
                key,
                "expected a table such as { dibao = 1.0, tekun = 1.0, low_income = 1.5 }",
            )
        })?;
        for (k, x) in t {
            let aid = match k.as_str() {
                "dibao" => AidType::Dibao,
                "tekun" => AidType::Tekun,
                "low_income" => AidType::LowIncome,
                _ => {
                    return Err(self.err(
                        format!("{key}.{k}"),
                        "unknown aid type (expected dibao, tekun or low_income)",
                    ))
                }
            };
            into.insert(aid, self.factor(&format!("{key}.{k}"), x, FACTOR_SCALE)?);
        }
        Ok(())
    }

    /// Applies the parameter keys of `t` (a `[defaults]` table or a standard's overrides).
    fn apply(&self, prefix: &str, t: &toml::Table, p: &mut Params) -> Result<(), PolicyError> {
        for (k, v) in t {
            let key = format!("{prefix}{k}");
            match k.as_str() {
                "income_months" => {
                    let m = v.as_integer().filter(|m| (1..=120).contains(m));
                    p.income_months = m.ok_or_else(|| {
                        self.err(&key, "expected a whole number of months from 1 to 120")
                    })? as u32;
                }
                "income_multiplier" => self.aid_map(&key, v, &mut p.income_multiplier)?,
                "asset_months" => self.aid_map(&key, v, &mut p.asset_months)?,
                "max_residential_properties" => {
                    p.max_residential_properties = v
                        .as_integer()
                        .filter(|n| *n >= 0)
                        .ok_or_else(|| self.err(&key, "expected a whole number ≥ 0"))?;
                }
                "max_residential_area_per_capita_m2" => {
                    p.max_residential_area_per_capita_m2 = self.factor(&key, v, 2)?
                }
                "commercial_property_disqualifies" => {
                    p.commercial_property_disqualifies = self.bool(&key, v)?
                }
                "vehicle_value_limit" => {
                    p.vehicle_value_limit = self.money(&key, v)?;
                    if p.vehicle_value_limit < 0 {
                        return Err(self.err(&key, "is negative"));
                    }
                }
                "exempt_vehicle_types" => {
                    p.exempt_vehicle_types = self.list(&key, v, "vehicles", "vehicle_type")?
                }
                "count_housing_fund_as_asset" => {
                    p.count_housing_fund_as_asset = self.bool(&key, v)?
                }
                "excluded_hr_kinds" => {
                    p.excluded_hr_kinds =
                        self.not_wage(&key, self.list(&key, v, "hr_income", "kind")?)?
                }
                "excluded_tax_categories" => {
                    p.excluded_tax_categories =
                        self.not_wage(&key, self.list(&key, v, "tax_income", "category")?)?
                }
                _ => return Err(self.err(&key, "unknown key")),
            }
        }
        Ok(())
    }

    /// Wages are always counted (SPEC §5.2: exclusions apply to the other kinds), so a
    /// policy that lists `wage` as excluded is refused rather than silently ignored.
    fn not_wage(&self, key: &str, list: Vec<String>) -> Result<Vec<String>, PolicyError> {
        if list.iter().any(|k| k == "wage") {
            return Err(self.err(
                key,
                "\"wage\" cannot be excluded: wages are always counted (SPEC §5.2)",
            ));
        }
        Ok(list)
    }

    fn date(&self, key: &str, v: &toml::Value) -> Result<NaiveDate, PolicyError> {
        let text = match v {
            toml::Value::Datetime(d) if d.time.is_none() && d.offset.is_none() => d.to_string(),
            toml::Value::String(s) => s.clone(),
            other => {
                return Err(self.err(
                    key,
                    format!("expected a date such as 2026-01-01, found {other}"),
                ))
            }
        };
        hedui_connectors::validate::parse_date(&text)
            .ok_or_else(|| self.err(key, format!("{text} is not a calendar date (YYYY-MM-DD)")))
    }
}

impl Policy {
    /// Reads and validates a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
            file: file.clone(),
            source,
        })?;
        Policy::parse(&text, &file)
    }

    /// Parses policy TOML; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Policy, PolicyError> {
        let raw: RawPolicy = toml::from_str(text).map_err(|e| PolicyError::Syntax {
            file: file.to_owned(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        let cx = Ctx { file };
        let empty = toml::Table::new();
        let d = raw.defaults.as_ref().unwrap_or(&empty);
        // Unknown keys and bad values first (a misspelt key is named as such), then
        // the keys that are missing.
        let mut defaults = Params::unset();
        cx.apply("defaults.", d, &mut defaults)?;
        let missing: Vec<&str> = PARAM_KEYS
            .into_iter()
            .filter(|k| !d.contains_key(*k))
            .collect();
        if !missing.is_empty() {
            return Err(cx.err(
                "defaults",
                format!(
                    "missing {}: every rule parameter comes from the policy file, none has a built-in value (SPEC §6); add {} under [defaults]",
                    missing.join(", "),
                    if missing.len() == 1 { "it" } else { "them" }
                ),
            ));
        }
        for (key, map) in [
            ("income_multiplier", &defaults.income_multiplier),
            ("asset_months", &defaults.asset_months),
        ] {
            let absent: Vec<&str> = AidType::ALL
                .iter()
                .filter(|a| !map.contains_key(a))
                .map(|a| a.code())
                .collect();
            if !absent.is_empty() {
                return Err(cx.err(
                    format!("defaults.{key}"),
                    format!(
                        "has no value for {} (every aid type needs one)",
                        absent.join(", ")
                    ),
                ));
            }
        }
        let mut standards = Vec::new();
        for (i, t) in raw.standard.iter().enumerate() {
            let at = |k: &str| format!("standard[{}].{k}", i + 1);
            let mut rest = t.clone();
            let region = match rest.remove("region") {
                Some(toml::Value::String(s)) => s,
                Some(toml::Value::Integer(n)) => n.to_string(),
                Some(other) => {
                    return Err(cx.err(
                        at("region"),
                        format!("expected a 6-digit code, found {other}"),
                    ))
                }
                None => return Err(cx.err(at("region"), "is required")),
            };
            if region.len() != 6 || !region.bytes().all(|b| b.is_ascii_digit()) {
                return Err(cx.err(
                    at("region"),
                    format!("\"{region}\" is not a 6-digit region code"),
                ));
            }
            let name = match rest.remove("name") {
                Some(toml::Value::String(s)) => s,
                None => String::new(),
                Some(other) => {
                    return Err(cx.err(at("name"), format!("expected text, found {other}")))
                }
            };
            let effective_from = match rest.remove("effective_from") {
                Some(v) => cx.date(&at("effective_from"), &v)?,
                None => return Err(cx.err(at("effective_from"), "is required")),
            };
            let mut monthly = |k: &str| -> Result<i128, PolicyError> {
                let v = rest.remove(k).ok_or_else(|| cx.err(at(k), "is required"))?;
                let m = cx.money(&at(k), &v)?;
                if m <= 0 {
                    return Err(cx.err(at(k), "must be greater than 0"));
                }
                Ok(m)
            };
            let urban_monthly = monthly("urban_monthly")?;
            let rural_monthly = monthly("rural_monthly")?;
            let mut params = defaults.clone();
            cx.apply(&format!("standard[{}].", i + 1), &rest, &mut params)?;
            if let Some(prev) = standards
                .iter()
                .find(|s: &&Standard| s.region == region && s.effective_from == effective_from)
            {
                return Err(cx.err(
                    at("effective_from"),
                    format!(
                        "a second entry for region {} effective {} (also {})",
                        region, effective_from, prev.name
                    ),
                ));
            }
            standards.push(Standard {
                region,
                name,
                effective_from,
                urban_monthly,
                rural_monthly,
                params,
            });
        }
        Ok(Policy {
            file: file.to_owned(),
            standards,
        })
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    /// The `[defaults]` of SPEC §6, complete.
    const DEFAULTS: &str = SPEC_DEFAULTS;

    fn policy() -> String {
        format!("{DEFAULTS}{POLICY}")
    }

    const POLICY: &str = r#"

[[standard]]
region = "410184"
name = "新郑市"
effective_from = 2026-01-01
urban_monthly = "720"
rural_monthly = 560
income_months = 6

[[standard]]
region = "410184"
name = "新郑市"
effective_from = 2025-01-01
urban_monthly = "700.5"
rural_monthly = "540"

[[standard]]
region = "410100"
name = "郑州市"
effective_from = 2025-07-01
urban_monthly = "800"
rural_monthly = "600"
income_multiplier = { low_income = "2" }

[[standard]]
region = "410000"
name = "河南省"
effective_from = 2020-01-01
urban_monthly = "500"
rural_monthly = "400"

[[standard]]
region = "512000"
name = "资阳市"
effective_from = 2014-01-01
urban_monthly = "330"
rural_monthly = "165"
"#;

    /// Exact code wins; the latest entry in force on D is taken; one effective on D is in force.
    #[test]
    fn exact_code_and_effective_dates() {
        let p = Policy::parse(&policy(), "p.toml").unwrap();
        let s = p.lookup("410184", d("2026-11-22")).unwrap();
        assert_eq!((s.urban_monthly, s.params.income_months), (72_000, 6));
        let s = p.lookup("410184", d("2025-12-31")).unwrap();
        assert_eq!(
            (s.urban_monthly, s.rural_monthly, s.params.income_months),
            (70_050, 54_000, 12)
        );
        assert_eq!(
            p.lookup("410184", d("2026-01-01")).unwrap().urban_monthly,
            72_000
        );
    }

    /// A county without entries falls back to its prefecture, then its province.
    #[test]
    fn falls_back_to_prefecture_then_province() {
        let p = Policy::parse(&policy(), "p.toml").unwrap();
        let s = p.lookup("410102", d("2026-11-22")).unwrap();
        assert_eq!(s.name, "郑州市");
        assert_eq!(s.params.income_multiplier[&AidType::LowIncome], 20_000);
        assert_eq!(s.params.income_multiplier[&AidType::Dibao], 10_000);
        assert_eq!(p.lookup("410322", d("2026-11-22")).unwrap().name, "河南省");
        assert_eq!(
            p.lookup("512002", d("2014-01-01")).unwrap().urban_monthly,
            33_000
        );
        assert_eq!(
            p.lookup("110105", d("2026-11-22")).unwrap_err(),
            NoPolicy::NoEntry
        );
    }

    /// A level with entries but none in force does not fall through to a wider level.
    #[test]
    fn no_fall_through_when_level_not_in_force() {
        let p = Policy::parse(&policy(), "p.toml").unwrap();
        // 410184 has entries from 2025 only; 河南省 would be in force, but is not used.
        assert_eq!(
            p.lookup("410184", d("2024-06-01")).unwrap_err(),
            NoPolicy::NotInForce {
                level: "410184".into()
            }
        );
        assert_eq!(
            p.lookup("410102", d("2025-06-30")).unwrap_err(),
            NoPolicy::NotInForce {
                level: "410100".into()
            }
        );
    }

    /// Unknown keys and bad values are refused with the file, the key and why.
    #[test]
    fn bad_policies_name_file_and_key() {
        let e = Policy::parse("[defaults]\nincome_month = 12\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "invalid policy file p.toml: defaults.income_month: unknown key"
        );
        let e = Policy::parse("[default]\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("cannot read policy file p.toml:")
                && e.contains("unknown field `default`"),
            "{e}"
        );
        let e = Policy::parse(
            &format!("{DEFAULTS}[[standard]]\nregion=\"410184\"\neffective_from=2026-01-01\nurban_monthly=720.5\nrural_monthly=\"1\"\n"),
            "p.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("standard[1].urban_monthly: 720.5 is a float"),
            "{e}"
        );
        let e = Policy::parse(
            &format!("{DEFAULTS}[[standard]]\nregion=\"4101\"\neffective_from=2026-01-01\nurban_monthly=\"1\"\nrural_monthly=\"1\"\n"),
            "p.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("standard[1].region: \"4101\" is not a 6-digit region code"),
            "{e}"
        );
        let e = Policy::parse("[defaults]\nexempt_vehicle_types = [\"bike\"]\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("defaults.exempt_vehicle_types: \"bike\" is not one of car, truck"),
            "{e}"
        );
        let e = Policy::parse(
            "[defaults]\nincome_multiplier = { dibao = \"1.2.3\" }\n",
            "p.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("defaults.income_multiplier.dibao"), "{e}");
    }

    /// A policy that leaves a parameter out is refused, naming it: a missing
    /// `vehicle_value_limit` must never become 0 (every car disqualifying).
    #[test]
    fn every_parameter_comes_from_the_file() {
        let without = DEFAULTS.replace("vehicle_value_limit = 0\n", "");
        let e = Policy::parse(&without, "p.toml").unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid policy file p.toml: defaults: missing vehicle_value_limit: every rule parameter comes from the policy file, none has a built-in value (SPEC §6); add it under [defaults]"
        );
        let e = Policy::parse("", "p.toml").unwrap_err().to_string();
        assert!(
            e.contains("missing income_months, income_multiplier,"),
            "{e}"
        );
        let partial = DEFAULTS.replace("tekun = 24, ", "");
        let e = Policy::parse(&partial, "p.toml").unwrap_err().to_string();
        assert!(
            e.ends_with("defaults.asset_months: has no value for tekun (every aid type needs one)"),
            "{e}"
        );
    }

    /// Float multipliers become exact decimals; strings too.
    #[test]
    fn multipliers_are_exact() {
        let p = Policy::parse(
            &format!(
                "{}[[standard]]\nregion=\"410184\"\neffective_from=\"2026-01-01\"\nurban_monthly=\"1\"\nrural_monthly=\"1\"\n",
                DEFAULTS
                    .replace("low_income = 1.5", "low_income = 1.1")
                    .replace("dibao = 24,", "dibao = \"24.5\",")
            ),
            "p.toml",
        )
        .unwrap();
        let s = &p.standards[0].params;
        assert_eq!(s.income_multiplier[&AidType::LowIncome], 11_000);
        assert_eq!(s.asset_months[&AidType::Dibao], 245_000);
    }
}
