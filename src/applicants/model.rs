//! What an applicant batch is made of: its columns, the households and members it
//! declares, the rejections with their reason codes, and the batch validated.

use serde::Serialize;

use crate::policy::{AidType, AreaType};

/// The format a batch file was read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// Excel workbook, first sheet.
    Xlsx,
    /// One JSON object per line.
    Jsonl,
}

/// A batch file that cannot be used at all (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum ApplicantsError {
    /// The file cannot be opened.
    #[error("cannot read applicants file {path}: {source}")]
    Io {
        /// the file
        path: String,
        /// the cause
        source: std::io::Error,
    },
    /// Not CSV/XLSX/JSONL, no header, no household_id column.
    #[error("cannot read applicants file {path}: {why}")]
    Unreadable {
        /// the file
        path: String,
        /// what is wrong
        why: String,
    },
}

/// The columns of an applicant batch, in canonical order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// 申请编号.
    HouseholdId = 0,
    /// 行政区划代码.
    RegionCode,
    /// 城乡类别.
    AreaType,
    /// 救助类型.
    AidType,
    /// 授权书编号.
    AuthorizationId,
    /// 身份证号.
    IdNumber,
    /// 姓名.
    Name,
    /// 与申请人关系.
    Relation,
}

impl Column {
    /// All columns.
    pub const ALL: [Column; 8] = [
        Column::HouseholdId,
        Column::RegionCode,
        Column::AreaType,
        Column::AidType,
        Column::AuthorizationId,
        Column::IdNumber,
        Column::Name,
        Column::Relation,
    ];

    /// English header.
    pub fn name(self) -> &'static str {
        [
            "household_id",
            "region_code",
            "area_type",
            "aid_type",
            "authorization_id",
            "id_number",
            "name",
            "relation",
        ][self as usize]
    }

    /// Chinese header.
    pub fn chinese(self) -> &'static str {
        [
            "申请编号",
            "行政区划代码",
            "城乡类别",
            "救助类型",
            "授权书编号",
            "身份证号",
            "姓名",
            "与申请人关系",
        ][self as usize]
    }

    /// Other headers clerks' spreadsheets use for this column (SPEC §3).
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Column::HouseholdId => &["家庭编号"],
            Column::RegionCode => &["区划代码"],
            Column::IdNumber => &["身份证号码", "公民身份号码", "证件号码"],
            Column::Relation => &["与户主关系", "关系"],
            _ => &[],
        }
    }
}

/// Reason codes of a rejection — the one list of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The ID number is malformed.
    InvalidIdNumber,
    /// A required value is empty.
    MissingField,
    /// A value is not one of those allowed.
    InvalidValue,
    /// Household-level values disagree between rows.
    InconsistentHousehold,
    /// The same person twice in one household.
    DuplicateMember,
    /// No authorization id.
    MissingAuthorization,
    /// No policy standard for the region on D.
    NoPolicyForRegion,
}

impl Reason {
    /// The code written in `rejected.jsonl`.
    pub fn code(self) -> &'static str {
        match self {
            Reason::InvalidIdNumber => "invalid_id_number",
            Reason::MissingField => "missing_field",
            Reason::InvalidValue => "invalid_value",
            Reason::InconsistentHousehold => "inconsistent_household",
            Reason::DuplicateMember => "duplicate_member",
            Reason::MissingAuthorization => "missing_authorization",
            Reason::NoPolicyForRegion => "no_policy_for_region",
        }
    }

    /// What the code means, for a clerk.
    pub fn zh(code: &str) -> &'static str {
        match code {
            "invalid_id_number" => "身份证号有误",
            "missing_field" => "必填项为空",
            "invalid_value" => "填写的值不在允许范围内",
            "inconsistent_household" => "同一家庭各行的家庭信息不一致",
            "duplicate_member" => "同一家庭重复列出同一人",
            "missing_authorization" => "缺少授权书编号",
            "no_policy_for_region" => "该行政区划在核对日期没有保障标准",
            _ => "名单行有误",
        }
    }
}

/// One problem that rejects a household (`rejected.jsonl`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Rejection {
    /// The household rejected.
    pub household_id: String,
    /// The row as a spreadsheet shows it (header = row 1, first data row = 2); JSONL: line.
    pub row: u64,
    /// Canonical field name.
    #[schema(value_type = String)]
    pub field: &'static str,
    /// Reason code.
    pub reason: Reason,
    /// Message for the clerk, Chinese then English.
    pub message: String,
}

/// Relation of a member to the applicant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// 本人.
    Applicant,
    /// 配偶.
    Spouse,
    /// 子女.
    Child,
    /// 父母.
    Parent,
    /// 兄弟姐妹.
    Sibling,
    /// 祖父母.
    Grandparent,
    /// 孙子女.
    Grandchild,
    /// 其他.
    Other,
}

impl Relation {
    /// Other words clerks write for a relation (SPEC §3).
    const VARIANTS: [(Relation, &'static str); 17] = [
        (Relation::Applicant, "申请人"),
        (Relation::Spouse, "妻子"),
        (Relation::Spouse, "丈夫"),
        (Relation::Child, "儿子"),
        (Relation::Child, "女儿"),
        (Relation::Parent, "父亲"),
        (Relation::Parent, "母亲"),
        (Relation::Sibling, "兄弟"),
        (Relation::Sibling, "姐妹"),
        (Relation::Grandparent, "祖父"),
        (Relation::Grandparent, "祖母"),
        (Relation::Grandparent, "外祖父"),
        (Relation::Grandparent, "外祖母"),
        (Relation::Grandchild, "孙子"),
        (Relation::Grandchild, "孙女"),
        (Relation::Grandchild, "外孙"),
        (Relation::Grandchild, "外孙女"),
    ];

    const ALL: [(Relation, &'static str, &'static str); 8] = [
        (Relation::Applicant, "applicant", "本人"),
        (Relation::Spouse, "spouse", "配偶"),
        (Relation::Child, "child", "子女"),
        (Relation::Parent, "parent", "父母"),
        (Relation::Sibling, "sibling", "兄弟姐妹"),
        (Relation::Grandparent, "grandparent", "祖父母"),
        (Relation::Grandchild, "grandchild", "孙子女"),
        (Relation::Other, "other", "其他"),
    ];

    /// Parses the English code, the Chinese name or one of its variants (`女儿`).
    pub fn parse(s: &str) -> Option<Relation> {
        Relation::ALL
            .iter()
            .find(|(_, e, c)| s.eq_ignore_ascii_case(e) || s == *c)
            .map(|(r, _, _)| *r)
            .or_else(|| {
                Relation::VARIANTS
                    .iter()
                    .find(|(_, v)| s == *v)
                    .map(|(r, _)| *r)
            })
    }

    /// Canonical English code.
    pub fn code(self) -> &'static str {
        Relation::ALL[self as usize].1
    }

    /// Chinese name.
    pub fn chinese(self) -> &'static str {
        Relation::ALL[self as usize].2
    }
}

/// A declared household member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Normalised 18-digit ID.
    pub id_number: String,
    /// Declared name (folded, trimmed).
    pub name: String,
    /// Relation to the applicant.
    pub relation: Relation,
    /// Row in the batch file.
    pub row: u64,
}

/// An accepted household with its standard.
#[derive(Debug, Clone)]
pub struct Household {
    /// Application id.
    pub household_id: String,
    /// 6-digit region code.
    pub region_code: String,
    /// Urban or rural.
    pub area_type: AreaType,
    /// Aid applied for.
    pub aid_type: AidType,
    /// Signed authorization for this check.
    pub authorization_id: String,
    /// Members in file order.
    pub members: Vec<Member>,
    /// Index of the policy standard in force for this household.
    pub standard: usize,
}

/// A validated batch.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The file, as given.
    pub file: String,
    /// Its format.
    pub format: BatchFormat,
    /// Its text encoding, for CSV and JSONL.
    pub encoding: Option<String>,
    /// Data rows read.
    pub rows_read: u64,
    /// Headers that name no column of SPEC §3, ignored (a warning and `summary.json`).
    pub ignored_columns: Vec<String>,
    /// Accepted households, sorted by household_id.
    pub households: Vec<Household>,
    /// Problems of rejected households, by household then row.
    pub rejections: Vec<Rejection>,
    /// Rejected households, sorted by household_id.
    pub rejected_households: Vec<RejectedHousehold>,
    /// The names the rejected rows give (by row), for the report to say whose row it is.
    pub rejected_names: std::collections::BTreeMap<u64, String>,
}

/// A household rejected as a whole: who, where, and why (each reason code once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedHousehold {
    /// Its household_id as written (may be empty when the rows had none).
    pub household_id: String,
    /// Its region as its rows give it (empty when none was valid).
    pub region_code: String,
    /// The reason codes of its rejections, sorted.
    pub reasons: Vec<Reason>,
}

impl Batch {
    /// A batch of households already validated (the API's requests checked together in
    /// one run), named `file`.
    pub fn of_households(file: &str, households: Vec<Household>) -> Batch {
        Batch {
            file: file.to_owned(),
            format: BatchFormat::Jsonl,
            encoding: None,
            rows_read: households.iter().map(|h| h.members.len() as u64).sum(),
            ignored_columns: Vec::new(),
            households,
            rejections: Vec::new(),
            rejected_households: Vec::new(),
            rejected_names: Default::default(),
        }
    }
}
