//! The rules' codes, named once: each rule of `pipelines/` (its `rule` column), its
//! severity, and its Chinese texts for reports and pages. A test holds the pipelines and
//! the README's rule table to this list.

use serde::Serialize;

/// What a finding does to the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The household is ineligible.
    Disqualifying,
    /// A person must look at the household.
    Review,
    /// Disqualifying or review, as the region's policy says
    /// (`commercial_property_disqualifies`).
    PerPolicy,
}

/// A rule of the pipelines, by its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// A member is not in the police registry.
    IdentityNotFound,
    /// The registry says the member is deceased.
    MemberDeceased,
    /// The registered name differs from the declared one.
    NameMismatch,
    /// Per-capita monthly income over the limit.
    IncomeOverLimit,
    /// Financial assets over the limit.
    FinancialAssetsOverLimit,
    /// More residential properties than allowed.
    ResidentialPropertiesOverLimit,
    /// A member holds a commercial property.
    CommercialProperty,
    /// Residential area over the limit.
    ResidentialAreaOverLimit,
    /// A held vehicle worth more than the limit.
    VehicleOwned,
    /// Housing-fund deposits but no wage record.
    UndeclaredEmployment,
    /// The same person in two households of the batch.
    MemberInMultipleHouseholds,
}

impl Rule {
    /// Every rule, in the order of the pipelines.
    pub const ALL: [Rule; 11] = [
        Rule::IdentityNotFound,
        Rule::MemberDeceased,
        Rule::NameMismatch,
        Rule::IncomeOverLimit,
        Rule::FinancialAssetsOverLimit,
        Rule::ResidentialPropertiesOverLimit,
        Rule::CommercialProperty,
        Rule::ResidentialAreaOverLimit,
        Rule::VehicleOwned,
        Rule::UndeclaredEmployment,
        Rule::MemberInMultipleHouseholds,
    ];

    /// The code flags carry (`results.jsonl`'s `rule`).
    pub fn code(self) -> &'static str {
        match self {
            Rule::IdentityNotFound => "identity_not_found",
            Rule::MemberDeceased => "member_deceased",
            Rule::NameMismatch => "name_mismatch",
            Rule::IncomeOverLimit => "income_over_limit",
            Rule::FinancialAssetsOverLimit => "financial_assets_over_limit",
            Rule::ResidentialPropertiesOverLimit => "residential_properties_over_limit",
            Rule::CommercialProperty => "commercial_property",
            Rule::ResidentialAreaOverLimit => "residential_area_over_limit",
            Rule::VehicleOwned => "vehicle_owned",
            Rule::UndeclaredEmployment => "undeclared_employment",
            Rule::MemberInMultipleHouseholds => "member_in_multiple_households",
        }
    }

    /// The rule of a code, if it is one.
    pub fn from_code(code: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.code() == code)
    }

    /// What a finding of this rule does to the verdict.
    pub fn severity(self) -> Severity {
        match self {
            Rule::IncomeOverLimit
            | Rule::FinancialAssetsOverLimit
            | Rule::ResidentialPropertiesOverLimit
            | Rule::VehicleOwned => Severity::Disqualifying,
            Rule::CommercialProperty => Severity::PerPolicy,
            Rule::IdentityNotFound
            | Rule::MemberDeceased
            | Rule::NameMismatch
            | Rule::ResidentialAreaOverLimit
            | Rule::UndeclaredEmployment
            | Rule::MemberInMultipleHouseholds => Severity::Review,
        }
    }

    /// The rule in a few words (a finding no longer raised, a list of rules).
    pub fn name_zh(self) -> &'static str {
        match self {
            Rule::IdentityNotFound => "户籍查无此人",
            Rule::MemberDeceased => "成员户籍状态为已死亡",
            Rule::NameMismatch => "姓名与户籍登记不一致",
            Rule::IncomeOverLimit => "收入超过上限",
            Rule::FinancialAssetsOverLimit => "金融资产超过上限",
            Rule::ResidentialPropertiesOverLimit => "住房套数超过上限",
            Rule::CommercialProperty => "名下有商业用房",
            Rule::ResidentialAreaOverLimit => "住房面积超过上限",
            Rule::VehicleOwned => "名下有机动车",
            Rule::UndeclaredEmployment => "有公积金缴存但无工资收入记录",
            Rule::MemberInMultipleHouseholds => "成员同时出现在多个申请中",
        }
    }

    /// A finding of this rule in words: `value` and `limit` as the flag shows them,
    /// `who` the member it is about (empty for household rules).
    pub fn finding_zh(self, value: &str, limit: &str, who: &str) -> String {
        let (v, l) = (value, limit);
        match self {
            Rule::IdentityNotFound => format!("成员{who}在公安户籍中查无此人"),
            Rule::MemberDeceased => format!("成员{who}户籍状态为已死亡"),
            Rule::NameMismatch => format!("成员{who}的申报姓名与户籍登记姓名“{v}”不一致"),
            Rule::IncomeOverLimit => format!("家庭月人均收入 {v} 元，超过上限 {l} 元"),
            Rule::FinancialAssetsOverLimit => format!("家庭金融资产 {v} 元，超过上限 {l} 元"),
            Rule::ResidentialPropertiesOverLimit => {
                format!("名下住房 {v} 套，超过上限 {l} 套")
            }
            Rule::CommercialProperty => format!("名下有商业用房 {v} 处"),
            Rule::ResidentialAreaOverLimit => {
                format!("住房面积合计 {v} 平方米，超过上限 {l} 平方米")
            }
            Rule::VehicleOwned => format!("名下有机动车，价值 {v} 元，超过上限 {l} 元"),
            Rule::UndeclaredEmployment => {
                format!("成员{who}公积金在正常缴存（月缴存 {v} 元），但核对期内无任何工资收入记录")
            }
            Rule::MemberInMultipleHouseholds => format!("成员{who}同时出现在本批 {v} 个申请中"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code the pipelines raise is a rule of this list, with the severity the
    /// pipeline gives it, and every rule of this list is raised by a pipeline.
    #[test]
    fn the_pipelines_raise_exactly_these_rules() {
        let mut raised = Vec::new();
        for (file, sql) in crate::engine::views::PIPELINES {
            if !file.contains("_rule_") {
                continue;
            }
            // `'code' AS rule` / `'code',` followed by the severity.
            let lines: Vec<&str> = sql.lines().map(str::trim).collect();
            for (i, l) in lines.iter().enumerate() {
                let Some(code) = l
                    .strip_prefix('\'')
                    .and_then(|r| r.split('\'').next())
                    .filter(|c| c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'))
                else {
                    continue;
                };
                let Some(rule) = Rule::from_code(code) else {
                    continue;
                };
                let next = lines.get(i + 1).copied().unwrap_or_default();
                let severity = if next.contains("CASE WHEN") {
                    Severity::PerPolicy
                } else if next.starts_with("'disqualifying'") {
                    Severity::Disqualifying
                } else {
                    Severity::Review
                };
                assert_eq!(rule.severity(), severity, "{file}: {code}");
                raised.push(rule);
            }
        }
        raised.sort();
        raised.dedup();
        assert_eq!(
            raised,
            Rule::ALL.to_vec(),
            "every rule raised by a pipeline"
        );
    }

    /// The README's rule table lists every rule with its severity, in this order.
    #[test]
    fn the_readme_lists_every_rule() {
        let readme = include_str!("../../README.md");
        let rows: Vec<(String, String)> = readme
            .lines()
            .filter_map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                let code = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
                Rule::from_code(code)?;
                Some((code.to_owned(), cells.get(2)?.to_string()))
            })
            .collect();
        let expected: Vec<(String, String)> = Rule::ALL
            .iter()
            .map(|r| {
                let sev = match r.severity() {
                    Severity::Disqualifying => "disqualifying",
                    Severity::Review => "review",
                    Severity::PerPolicy => "disqualifying or review",
                };
                (r.code().to_owned(), sev.to_owned())
            })
            .collect();
        assert_eq!(rows, expected);
    }
}
