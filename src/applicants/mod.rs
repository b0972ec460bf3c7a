//! Applicant batches (SPEC §3): a file of household members → accepted households, or
//! rejections naming household, row, field, reason and a message a clerk understands.
//! A household with any bad row is rejected as a whole; the rest go on.

mod read;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use chrono::NaiveDate;
use hedui_connectors::idnum::{mask_ids_in, normalize_id, IdError};
use hedui_connectors::text::fold_trim;
use serde::Serialize;

pub use read::{read_batch, read_batch_within, BatchFormat, Limits, RawBatch, RawRow};

use crate::policy::{AidType, AreaType, NoPolicy, Policy};

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

/// Reason codes of a rejection (SPEC §3) — the one list of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
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
}

/// One problem that rejects a household (`rejected.jsonl`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Rejection {
    /// The household rejected.
    pub household_id: String,
    /// 1-based data row (XLSX: sheet row; JSONL: line).
    pub row: u64,
    /// Canonical field name.
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
    /// Rejected household ids.
    pub rejected_households: Vec<String>,
}

/// Canonical household-level values of one row (None where the row's value is bad).
#[derive(Clone, PartialEq, Eq)]
struct HouseholdValues {
    region: Option<String>,
    area: Option<AreaType>,
    aid: Option<AidType>,
    auth: Option<String>,
}

struct RowOut {
    row: u64,
    hv: HouseholdValues,
    member: Option<Member>,
}

/// Reads and validates a batch file against the policy on check date `as_of`.
pub fn load(path: &Path, policy: &Policy, as_of: NaiveDate) -> Result<Batch, ApplicantsError> {
    let bytes = std::fs::read(path).map_err(|source| ApplicantsError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let raw = read_batch(path, &bytes)?;
    Ok(validate(&path.display().to_string(), raw, policy, as_of))
}

fn id_message(e: &IdError) -> String {
    let zh = match e {
        IdError::Length(_) => "身份证号位数不对",
        IdError::NotDigits => "身份证号含有非数字字符",
        IdError::BadDate(_) => "身份证号中的出生日期不存在",
        IdError::FutureDate(_) => "身份证号中的出生日期晚于核对日期",
        IdError::CheckChar { .. } => "身份证号校验位错误",
    };
    format!("{zh}（ID number {e}）")
}

/// The message for an ID number that a spreadsheet stored as a number in scientific
/// notation (`4.10184198001010E17`): its last digits are lost and cannot be recovered.
fn excel_number_message(v: &str) -> Option<String> {
    let (mantissa, exp) = v.split_once(['E', 'e'])?;
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let numeric = match mantissa.split_once('.') {
        Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
        None => digits(mantissa),
    } && digits(exp.trim_start_matches('+'));
    numeric.then(|| {
        format!(
            "身份证号被表格存成了数字（科学计数法），后几位已丢失；请把该列设为文本格式后重新录入（the ID number was stored as a number in scientific notation and lost its last digits; format the column as text and enter it again）"
        )
    })
}

/// Validates rows into households and rejections.
pub fn validate(file: &str, raw: RawBatch, policy: &Policy, as_of: NaiveDate) -> Batch {
    let mut groups: BTreeMap<String, Vec<RowOut>> = BTreeMap::new();
    let mut rejections: Vec<Rejection> = Vec::new();
    let rows_read = raw.rows.len() as u64;
    for r in &raw.rows {
        let val = |c: Column| -> Option<String> {
            r.values[c as usize]
                .as_deref()
                .map(|v| fold_trim(v).into_owned())
                .filter(|v| !v.is_empty())
        };
        let hid = val(Column::HouseholdId).unwrap_or_default();
        let mut reject = |field: Column, reason: Reason, message: String| {
            rejections.push(Rejection {
                household_id: hid.clone(),
                row: r.row,
                field: field.name(),
                reason,
                message,
            });
        };
        let missing = |c: Column| format!("{}为空（{} is missing）", c.chinese(), c.name());
        if hid.is_empty() {
            reject(
                Column::HouseholdId,
                Reason::MissingField,
                missing(Column::HouseholdId),
            );
        }
        let region = match val(Column::RegionCode) {
            None => {
                reject(
                    Column::RegionCode,
                    Reason::MissingField,
                    missing(Column::RegionCode),
                );
                None
            }
            Some(v) if v.len() == 6 && v.bytes().all(|b| b.is_ascii_digit()) => Some(v),
            Some(v) => {
                reject(
                    Column::RegionCode,
                    Reason::InvalidValue,
                    format!("行政区划代码“{v}”不是6位数字（region_code must be 6 digits）"),
                );
                None
            }
        };
        let area = match val(Column::AreaType) {
            None => {
                reject(
                    Column::AreaType,
                    Reason::MissingField,
                    missing(Column::AreaType),
                );
                None
            }
            Some(v) => AreaType::parse(&v).or_else(|| {
                reject(
                    Column::AreaType,
                    Reason::InvalidValue,
                    format!("城乡类别“{v}”应为“城市”或“农村”（area_type must be urban or rural）"),
                );
                None
            }),
        };
        let aid = match val(Column::AidType) {
            None => {
                reject(Column::AidType, Reason::MissingField, missing(Column::AidType));
                None
            }
            Some(v) => AidType::parse(&v).or_else(|| {
                reject(
                    Column::AidType,
                    Reason::InvalidValue,
                    format!("救助类型“{v}”应为低保、特困或低收入（aid_type must be dibao, tekun or low_income）"),
                );
                None
            }),
        };
        let auth = val(Column::AuthorizationId);
        if auth.is_none() {
            reject(
                Column::AuthorizationId,
                Reason::MissingAuthorization,
                "缺少授权书编号，未经授权不能核对（authorization_id is missing: no check without the applicant's signed authorization）"
                    .into(),
            );
        }
        let id = match val(Column::IdNumber) {
            None => {
                reject(
                    Column::IdNumber,
                    Reason::MissingField,
                    missing(Column::IdNumber),
                );
                None
            }
            Some(v) => match normalize_id(&v, as_of) {
                Ok(id) => Some(id),
                Err(e) => {
                    let message = excel_number_message(&v).unwrap_or_else(|| id_message(&e));
                    reject(Column::IdNumber, Reason::InvalidIdNumber, message);
                    None
                }
            },
        };
        let name = val(Column::Name);
        if name.is_none() {
            reject(Column::Name, Reason::MissingField, missing(Column::Name));
        }
        let relation = match val(Column::Relation) {
            None => {
                reject(Column::Relation, Reason::MissingField, missing(Column::Relation));
                None
            }
            Some(v) => Relation::parse(&v).or_else(|| {
                reject(
                    Column::Relation,
                    Reason::InvalidValue,
                    format!("与申请人关系“{v}”无法识别（relation must be applicant, spouse, child, parent, sibling, grandparent, grandchild or other）"),
                );
                None
            }),
        };
        let member = match (id, name, relation) {
            (Some(id_number), Some(name), Some(relation)) => Some(Member {
                id_number,
                name,
                relation,
                row: r.row,
            }),
            _ => None,
        };
        groups.entry(hid).or_default().push(RowOut {
            row: r.row,
            hv: HouseholdValues {
                region,
                area,
                aid,
                auth,
            },
            member,
        });
    }

    let row_rejected: std::collections::HashSet<String> =
        rejections.iter().map(|r| r.household_id.clone()).collect();
    let mut households = Vec::new();
    for (hid, rows) in groups {
        let before = rejections.len();
        let mut reject = |row: u64, field: Column, reason: Reason, message: String| {
            rejections.push(Rejection {
                household_id: hid.clone(),
                row,
                field: field.name(),
                reason,
                message,
            });
        };
        // Household-level values must agree across all rows: each valid value is
        // compared with the first valid value of its column (a row whose own value is
        // bad is already rejected for it, and does not hide later disagreements).
        let agreed = HouseholdValues {
            region: rows.iter().find_map(|r| r.hv.region.clone()),
            area: rows.iter().find_map(|r| r.hv.area),
            aid: rows.iter().find_map(|r| r.hv.aid),
            auth: rows.iter().find_map(|r| r.hv.auth.clone()),
        };
        let first_row = |has: &dyn Fn(&HouseholdValues) -> bool| {
            rows.iter().find(|r| has(&r.hv)).map_or(0, |r| r.row)
        };
        let reference: [(Column, u64); 4] = [
            (Column::RegionCode, first_row(&|h| h.region.is_some())),
            (Column::AreaType, first_row(&|h| h.area.is_some())),
            (Column::AidType, first_row(&|h| h.aid.is_some())),
            (Column::AuthorizationId, first_row(&|h| h.auth.is_some())),
        ];
        for r in &rows {
            let differs: [bool; 4] = [
                r.hv.region.is_some() && r.hv.region != agreed.region,
                r.hv.area.is_some() && r.hv.area != agreed.area,
                r.hv.aid.is_some() && r.hv.aid != agreed.aid,
                r.hv.auth.is_some() && r.hv.auth != agreed.auth,
            ];
            for ((col, at), differs) in reference.iter().zip(differs) {
                if differs {
                    reject(
                        r.row,
                        *col,
                        Reason::InconsistentHousehold,
                        format!(
                            "同一申请的{}与第{}行不一致（{} differs from row {} of the same household）",
                            col.chinese(),
                            at,
                            col.name(),
                            at
                        ),
                    );
                }
            }
        }
        let mut seen: HashMap<&str, u64> = HashMap::new();
        for r in &rows {
            if let Some(m) = &r.member {
                if let Some(prev) = seen.get(m.id_number.as_str()) {
                    reject(
                        r.row,
                        Column::IdNumber,
                        Reason::DuplicateMember,
                        format!(
                            "同一成员在本申请中重复出现（与第{prev}行相同）（the same person is listed twice; see row {prev}）"
                        ),
                    );
                } else {
                    seen.insert(&m.id_number, r.row);
                }
            }
        }
        let mut standard = None;
        if let (Some(region), Some(_)) = (&agreed.region, &agreed.area) {
            match policy.lookup(region, as_of) {
                Ok(s) => standard = policy.standards.iter().position(|x| std::ptr::eq(x, s)),
                Err(e) => {
                    let why = match e {
                        NoPolicy::NoEntry => format!("政策文件中没有行政区划{region}及其上级的低保标准（the policy has no standard for region {region} or its prefecture or province）"),
                        NoPolicy::NotInForce { level } => format!("行政区划{level}的低保标准在核对日期{as_of}尚未生效（the standards of {level} are not yet in force on {as_of}）"),
                    };
                    reject(
                        reference[0].1,
                        Column::RegionCode,
                        Reason::NoPolicyForRegion,
                        why,
                    );
                }
            }
        }
        let ok = rejections.len() == before && !row_rejected.contains(&hid);
        if let (true, Some(standard)) = (ok, standard) {
            households.push(Household {
                household_id: hid.clone(),
                region_code: agreed.region.clone().unwrap_or_default(),
                area_type: agreed.area.unwrap_or(AreaType::Urban),
                aid_type: agreed.aid.unwrap_or(AidType::Dibao),
                authorization_id: agreed.auth.clone().unwrap_or_default(),
                members: rows.into_iter().filter_map(|r| r.member).collect(),
                standard,
            });
        }
    }
    rejections.sort_by(|a, b| (&a.household_id, a.row).cmp(&(&b.household_id, b.row)));
    // Messages quote what the clerk typed; an ID number typed into another column (or a
    // household id that is one) is masked like every ID a person reads.
    for r in &mut rejections {
        if let std::borrow::Cow::Owned(m) = mask_ids_in(&r.message) {
            r.message = m;
        }
    }
    let mut rejected_households: Vec<String> =
        rejections.iter().map(|r| r.household_id.clone()).collect();
    rejected_households.dedup();
    Batch {
        file: file.to_owned(),
        format: raw.format,
        encoding: raw.encoding,
        rows_read,
        ignored_columns: raw.ignored_columns,
        households,
        rejections,
        rejected_households,
    }
}
