//! `/ui/audit` (auditors, admins): the audit log filtered by date, region, actor and
//! person — an ID number typed in is hashed as the log hashes members, so the entries
//! that checked or read that person's households are found ("who looked at my
//! records?") without the log holding the number — and, on request, the chain's
//! verification.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::server::app::AppState;
use crate::server::error::ApiError;
use crate::server::handlers::audit::{bound, shown};

use super::batches::{local_time, role_zh, submitter};
use super::session::Signed;
use super::{render, PageError};

/// Entries a page shows at most; entries one page reads at most to find them.
const PER_PAGE: usize = 100;
const SCAN: usize = 20_000;

/// The filters.
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    actor: String,
    /// An ID number typed in (the form is posted: the number never goes in an address).
    #[serde(default)]
    person: String,
    /// The person's keyed hash (a posted search's later pages).
    #[serde(default)]
    member: String,
    /// The last entry of the page before.
    after: Option<i64>,
    /// `1`: verify the chain.
    #[serde(default)]
    verify: String,
    /// The session's CSRF token (a posted search).
    csrf: Option<String>,
}

/// One entry as the page shows it.
#[derive(Debug, Serialize)]
struct Row {
    seq: i64,
    at: String,
    actor: String,
    kind: &'static str,
    what: String,
    households: Vec<String>,
    more: usize,
}

/// An entry's kind in words.
fn kind_zh(kind: &str) -> &'static str {
    match kind {
        "check" => "核对（命令行）",
        "reconcile" => "复核（命令行）",
        "api" => "单户核对（接口）",
        "batch" => "批量核对",
        "schedule" => "每晚复核",
        "read" => "查看",
        "account" => "账户变更",
        "acknowledge" => "标记已处理",
        _ => "其他",
    }
}

/// What a read read, in words.
fn read_zh(read: &str) -> &'static str {
    match read {
        "batch_results" | "batch_results_xlsx" => "下载批次结果",
        "batch_rejected" => "下载名单错误行",
        "batch_report" => "查看批次报告",
        "page_batch" => "查看批次页面",
        "page_household" => "查看家庭核对报告",
        "page_reconciliation" => "查看复核工作清单",
        "reconciliation_changes" => "读取复核变化（接口）",
        "reconciliation_report" => "查看复核报告",
        "handled" => "标记已处理",
        _ => "读取",
    }
}

/// The page's answer from the database.
struct Found {
    rows: Vec<Row>,
    next: Option<i64>,
    verified: Option<String>,
    person_households: Option<usize>,
    /// The person's hash, for the next page's address.
    member: Option<String>,
}

/// `GET /ui/audit`.
pub async fn show(
    State(app): State<Arc<AppState>>,
    user: Signed,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let mut q = query.map(|Query(q)| q).unwrap_or_default();
    // An ID number in the address is refused: it would stay in histories and logs.
    q.person.clear();
    answer(&app, &user, q).await
}

/// `POST /ui/audit`: the search by person (the ID number in the form's body).
pub async fn search_person(
    State(app): State<Arc<AppState>>,
    user: Signed,
    form: Result<axum::Form<AuditQuery>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let axum::Form(q) = form.map_err(|_| {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "查询表单无法读取，请回到审计日志页面重试（the search form could not be read）",
        )
    })?;
    // A search changes nothing, but every form posted carries the session's token.
    user.require_csrf(q.csrf.as_deref())?;
    answer(&app, &user, q).await
}

/// Who is searched for.
enum Person {
    /// An ID number typed in, normalized.
    Id(String),
    /// Its keyed hash.
    Hash(String),
}

/// The page for the filters `q`.
async fn answer(app: &Arc<AppState>, user: &Signed, q: AuditQuery) -> Result<Response, PageError> {
    user.permit::<crate::server::caller::MayAudit>()?;
    let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
    let from = bound(&opt(&q.from), "from").map_err(PageError::from)?;
    let to = bound(&opt(&q.to), "to").map_err(PageError::from)?;
    let person = if let Some(raw) = opt(&q.person) {
        Some(Person::Id(
            hedui_connectors::idnum::normalize_id(&raw, chrono::Local::now().date_naive())
                .map_err(|_| {
                    PageError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "输入的身份证号格式有误，请核对后重新输入（18 位，末位可为 X）（the ID number typed is not a valid one）",
                    )
                })?,
        ))
    } else if let Some(h) = opt(&q.member) {
        if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(PageError::new(
                StatusCode::BAD_REQUEST,
                "查询链接已损坏，请重新输入身份证号查询（the search link is damaged）",
            ));
        }
        Some(Person::Hash(h.to_ascii_lowercase()))
    } else {
        None
    };
    let searched = person.is_some();
    let (who, region, actor, after) = (
        user.who.clone(),
        q.region.trim().to_owned(),
        q.actor.trim().to_owned(),
        q.after.unwrap_or(0),
    );
    let verify = q.verify == "1";
    let found = app
        .db(move |state| {
            search(
                state, &who, from, to, &region, &actor, person, after, verify,
            )
        })
        .await?;
    Ok(render(
        StatusCode::OK,
        "audit.html",
        minijinja::context! {
            nav => "audit",
            user => user.name,
            role => role_zh(user.who.role),
            csrf => user.csrf,
            rows => found.rows,
            next => found.next,
            verified => found.verified,
            person_households => found.person_households,
            member => found.member,
            f => minijinja::context! {
                from => q.from, to => q.to, region => q.region, actor => q.actor,
                searched => searched,
            },
        },
    ))
}

/// Reads a page of matching entries, and verifies the chain when asked.
#[allow(clippy::too_many_arguments)]
fn search(
    state: &mut crate::state::State,
    who: &crate::server::who::Who,
    from: Option<String>,
    to: Option<String>,
    region: &str,
    actor: &str,
    person: Option<Person>,
    after: i64,
    verify: bool,
) -> Result<Found, ApiError> {
    let internal = |e: crate::state::StateError| ApiError::internal(&e.into());
    let mut needles = Vec::new();
    let mut person_households = None;
    let mut theirs: Vec<(String, String)> = Vec::new();
    let mut member_hash = None;
    if let Some(p) = &person {
        let hash = match p {
            Person::Id(id) => state.id_hasher().map_err(internal)?(id),
            Person::Hash(h) => h.clone(),
        };
        theirs = state.households_of_member(&hash).map_err(internal)?;
        person_households = Some(theirs.len());
        needles.push(hash.clone());
        for (hid, _) in &theirs {
            let quoted = serde_json::to_string(hid).unwrap_or_default();
            needles.push(format!("\"household_id\":{quoted}"));
        }
        member_hash = Some(hash);
    }
    let region = (!region.is_empty()).then_some(region);
    let (mut rows, mut cursor, mut scanned) = (Vec::new(), after, 0usize);
    let mut next = None;
    loop {
        let page = state
            .audit_matching(cursor, from.as_deref(), to.as_deref(), &needles, 500)
            .map_err(internal)?;
        let Some(last) = page.last().map(|e| e.seq) else {
            break;
        };
        let exhausted = page.len() < 500;
        for e in page {
            cursor = e.seq;
            scanned += 1;
            if !actor.is_empty() && !e.actor.contains(actor) {
                continue;
            }
            if let Some(row) = row_of(e, who, region, person.is_some(), &theirs, &member_hash) {
                rows.push(row);
                if rows.len() == PER_PAGE {
                    break;
                }
            }
        }
        if rows.len() == PER_PAGE || scanned >= SCAN {
            next = (cursor < last || !exhausted).then_some(cursor);
            break;
        }
        if exhausted {
            break;
        }
    }
    let verified = if verify {
        Some(match state.verify_audit().map_err(internal)? {
            Ok(n) => format!("审计链完整：共 {n} 条记录，逐条核验无误，末尾与锚点一致。"),
            Err((seq, why)) => format!(
                "审计链已被破坏：从第 {seq} 条起无法核验（{}）。请立即报告管理员，从备份恢复。",
                hedui_connectors::idnum::mask_ids_in(&why)
            ),
        })
    } else {
        None
    };
    Ok(Found {
        rows,
        next,
        verified,
        person_households,
        member: member_hash,
    })
}

/// What was done to account `name`, in words.
fn account_zh(action: &str, name: &str) -> String {
    match action {
        "add" => format!("开设账户 {name}"),
        "disable" => format!("停用账户 {name}"),
        "enable" => format!("启用账户 {name}"),
        "passwd" => format!("重置账户 {name} 的密码"),
        "access" => format!("修改账户 {name} 的角色和地区"),
        "locked" => format!("账户 {name} 连续输错密码，已锁定"),
        "sign_in" => format!("账户 {name} 登录"),
        other => format!("{other} 账户 {name}"),
    }
}

/// An entry as the page lists it, or `None` when the user may not see it or it is not
/// the person's.
fn row_of(
    e: crate::state::audit::AuditEntry,
    who: &crate::server::who::Who,
    region: Option<&str>,
    by_person: bool,
    theirs: &[(String, String)],
    member_hash: &Option<String>,
) -> Option<Row> {
    let (seq, at, actor, kind) = (e.seq, e.at.clone(), e.actor.clone(), e.kind.clone());
    // Account changes name no household: shown unless a region or person is asked.
    if kind == "account" {
        if by_person || region.is_some() {
            return None;
        }
        let d: Value = serde_json::from_str(&e.detail).unwrap_or(Value::Null);
        return Some(Row {
            seq,
            at: local_time(&at),
            actor: submitter(&actor),
            kind: kind_zh(&kind),
            what: account_zh(
                d["action"].as_str().unwrap_or(""),
                d["name"].as_str().unwrap_or(""),
            ),
            households: vec![],
            more: 0,
        });
    }
    let detail: Value = serde_json::from_str(&e.detail).unwrap_or(Value::Null);
    let view = shown(e, who, region)?;
    let mut households: Vec<&Value> = view.households.iter().collect();
    if by_person {
        households.retain(|h| {
            let key = (
                h["household_id"].as_str().unwrap_or("").to_owned(),
                h["region_code"].as_str().unwrap_or("").to_owned(),
            );
            theirs.contains(&key)
                || member_hash.as_ref().is_some_and(|m| {
                    h["members"]
                        .as_array()
                        .is_some_and(|ms| ms.iter().any(|x| x.as_str() == Some(m)))
                })
        });
        if households.is_empty() {
            return None;
        }
    }
    let what = match view.read.as_str() {
        Some(r) => format!("{}（{}）", read_zh(r), view.of.as_str().unwrap_or("")),
        None => format!(
            "核对日期 {}，{} 户",
            detail["as_of"].as_str().unwrap_or(""),
            detail["households"].as_array().map_or(0, Vec::len)
        ),
    };
    let ids: Vec<String> = households
        .iter()
        .take(5)
        .map(|h| {
            let id = h["household_id"].as_str().unwrap_or("");
            // A hashed ID-shaped household id is shown short.
            if id.starts_with('#') && id.len() > 13 {
                format!("{}…", &id[..13])
            } else {
                id.to_owned()
            }
        })
        .collect();
    Some(Row {
        seq,
        at: local_time(&at),
        actor: submitter(&actor),
        kind: kind_zh(&kind),
        what,
        more: households.len().saturating_sub(ids.len()),
        households: ids,
    })
}
