//! Reading a policy file: TOML → [`Policy`], every key checked (unknown, missing and bad
//! values stop the run before any data is read, naming the key).

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;
use hedui_connectors::decimal::parse_decimal;
use hedui_connectors::schema;
use serde::Deserialize;

use super::model::{param_keys, AidType, Params, Policy, PolicyError, Standard, FACTOR_SCALE};

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
                "\"wage\" cannot be excluded: wages are always counted; remove it from the list",
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
        let missing: Vec<&str> = param_keys().filter(|k| !d.contains_key(*k)).collect();
        if !missing.is_empty() {
            return Err(cx.err(
                "defaults",
                format!(
                    "missing {}: every rule parameter comes from the policy file, none has a built-in value; add {} under [defaults]",
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
}
