//! The policy's tests: the SPEC's defaults, overrides, the region lookup, refusals.

use chrono::NaiveDate;

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
        e.starts_with("cannot read policy file p.toml:") && e.contains("unknown field `default`"),
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
        "invalid policy file p.toml: defaults: missing vehicle_value_limit: every rule parameter comes from the policy file, none has a built-in value; add it under [defaults]"
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

/// The one list of parameters: every key of the file is one the parser reads (a key it
/// did not know would be refused as unknown), and the SPEC's `[defaults]` gives each;
/// every list table is named `param_KEY`.
#[test]
fn every_parameter_column_is_read_from_the_file() {
    let p = Policy::parse(&policy(), "t.toml");
    assert!(p.is_ok(), "{p:?}");
    let keys: Vec<&str> = crate::policy::param_keys().collect();
    assert_eq!(keys.len(), 11);
    let defaults: toml::Table = toml::from_str(crate::policy::SPEC_DEFAULTS).unwrap();
    let given: Vec<&str> = defaults["defaults"]
        .as_table()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    let mut given_sorted = given.clone();
    given_sorted.sort_unstable();
    assert_eq!(sorted, given_sorted, "the SPEC's defaults give every key");
    for c in crate::policy::PARAM_COLUMNS {
        if let crate::policy::Given::List(table, _, _) = c.given {
            assert_eq!(table, format!("param_{}", c.key));
        }
    }
}
