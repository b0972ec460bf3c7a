//! Validating a batch's rows (SPEC §3): each row's values checked and made canonical,
//! then each household's rows checked together (the same household values on every
//! row, no person twice, a standard in force for its region). A household with any bad
//! row is rejected as a whole, with one rejection per problem; the rest go on.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDate;
use hedui_connectors::idnum::{mask_ids_in, normalize_id, IdError};
use hedui_connectors::text::fold_trim;

use crate::policy::{AidType, AreaType, NoPolicy, Policy};

use super::model::{
    Batch, Column, Household, Member, Reason, RejectedHousehold, Rejection, Relation,
};
use super::read::{RawBatch, RawRow};

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

/// Validates rows into households and rejections, with no cap on a household's members.
pub fn validate(file: &str, raw: RawBatch, policy: &Policy, as_of: NaiveDate) -> Batch {
    validate_within(file, raw, policy, as_of, usize::MAX)
}

/// Validates rows into households and rejections; a household of more than
/// `max_members` rows is rejected as a whole.
pub fn validate_within(
    file: &str,
    raw: RawBatch,
    policy: &Policy,
    as_of: NaiveDate,
    max_members: usize,
) -> Batch {
    let mut groups: BTreeMap<String, Vec<RowOut>> = BTreeMap::new();
    let mut rejections: Vec<Rejection> = Vec::new();
    let rows_read = raw.rows.len() as u64;
    for r in &raw.rows {
        let (hid, out) = check_row(r, as_of, &mut rejections);
        groups.entry(hid).or_default().push(out);
    }
    let row_rejected: HashSet<String> = rejections.iter().map(|r| r.household_id.clone()).collect();
    let mut households = Vec::new();
    // Each household's region as its rows give it (the first valid one), so that a
    // rejected household is still shown to those who may see its region.
    let mut regions: HashMap<String, String> = HashMap::new();
    for (hid, rows) in groups {
        if let Some(region) = rows.iter().find_map(|r| r.hv.region.clone()) {
            regions.insert(hid.clone(), region);
        }
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
        if rows.len() > max_members {
            reject(
                rows[0].row,
                Column::HouseholdId,
                Reason::InvalidValue,
                format!(
                    "该户申报{}名成员，超过上限{max_members}名：请核对申请编号是否填错（the household declares {} members, more than the {max_members} allowed: check its household_id）",
                    rows.len(),
                    rows.len()
                ),
            );
        }
        let (agreed, region_row) = check_agreement(&rows, &mut reject);
        check_duplicates(&rows, &mut reject);
        let standard = find_standard(&agreed, region_row, policy, as_of, &mut reject);
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
    let mut rejected_households: Vec<RejectedHousehold> = Vec::new();
    for r in &rejections {
        match rejected_households.last_mut() {
            Some(h) if h.household_id == r.household_id => {
                if !h.reasons.contains(&r.reason) {
                    h.reasons.push(r.reason);
                }
            }
            _ => rejected_households.push(RejectedHousehold {
                household_id: r.household_id.clone(),
                region_code: regions.get(&r.household_id).cloned().unwrap_or_default(),
                reasons: vec![r.reason],
            }),
        }
    }
    for h in &mut rejected_households {
        h.reasons.sort_by_key(|r| r.code());
    }
    let wanted: HashSet<u64> = rejections.iter().map(|r| r.row).collect();
    let rejected_names = raw
        .rows
        .iter()
        .filter(|r| wanted.contains(&r.row))
        .filter_map(|r| {
            let name = r.values[Column::Name as usize].as_deref()?.trim();
            let name = cut(name).unwrap_or_else(|| name.to_owned());
            (!name.is_empty()).then_some((r.row, name))
        })
        .collect();
    Batch {
        rejected_names,
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

/// One row's values checked and made canonical: its household id and what it declares;
/// each problem added to `rejections`.
/// Characters a field of an applicant row holds at most: IDs, names, codes and
/// authorizations are short; a longer value is a paste gone wrong (or an attack), and
/// is neither stored, logged nor quoted whole.
pub const MAX_FIELD_CHARS: usize = 200;

/// `v` cut to [`MAX_FIELD_CHARS`], or `None` when it fits.
fn cut(v: &str) -> Option<String> {
    v.char_indices()
        .nth(MAX_FIELD_CHARS)
        .map(|(at, _)| format!("{}…", &v[..at]))
}

/// Rejects each value of `r` longer than [`MAX_FIELD_CHARS`], saying its length only.
fn reject_over_long(r: &RawRow, reject: &mut impl FnMut(Column, Reason, String)) {
    for &c in &Column::ALL {
        let Some(v) = r.values[c as usize].as_deref() else {
            continue;
        };
        if cut(v).is_some() {
            let n = v.chars().count();
            reject(
                c,
                Reason::InvalidValue,
                format!(
                    "{}有{n}个字符，超过上限{MAX_FIELD_CHARS}个：请检查是否粘贴错了内容（{} holds {n} characters, more than {MAX_FIELD_CHARS}）",
                    c.chinese(),
                    c.name()
                ),
            );
        }
    }
}

fn check_row(r: &RawRow, as_of: NaiveDate, rejections: &mut Vec<Rejection>) -> (String, RowOut) {
    let val = |c: Column| -> Option<String> {
        r.values[c as usize]
            .as_deref()
            .map(|v| cut(v).map_or_else(|| fold_trim(v).into_owned(), |t| t))
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
    // Over-long values are cut (by `val`) before anything keeps them, and rejected.
    reject_over_long(r, &mut reject);
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
    (
        hid,
        RowOut {
            row: r.row,
            hv: HouseholdValues {
                region,
                area,
                aid,
                auth,
            },
            member,
        },
    )
}

/// A household's values as its rows agree on them (the first valid value of each
/// column), and the row of its first valid region code; each row whose valid value
/// differs is rejected.
fn check_agreement(
    rows: &[RowOut],
    reject: &mut impl FnMut(u64, Column, Reason, String),
) -> (HouseholdValues, u64) {
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
    for r in rows {
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
    (agreed, reference[0].1)
}

/// Rejects a person listed twice in one household.
fn check_duplicates(rows: &[RowOut], reject: &mut impl FnMut(u64, Column, Reason, String)) {
    let mut seen: HashMap<&str, u64> = HashMap::new();
    for r in rows {
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
}

/// The standard in force for the household's region on `as_of` (its index in the
/// policy), or a rejection at `region_row` saying why there is none.
fn find_standard(
    agreed: &HouseholdValues,
    region_row: u64,
    policy: &Policy,
    as_of: NaiveDate,
    reject: &mut impl FnMut(u64, Column, Reason, String),
) -> Option<usize> {
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
                    region_row,
                    Column::RegionCode,
                    Reason::NoPolicyForRegion,
                    why,
                );
            }
        }
    }
    standard
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
