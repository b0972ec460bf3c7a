//! The bodies of the API as types: the handlers serialize these, and the OpenAPI
//! document describes them from the same definitions (`components.schemas`). The result
//! objects themselves (`HouseholdResult`, `Flag`, `Evidence`, `Rejection`, `Change`) are
//! the engine's own types, described where they are defined. `tests/api.rs` checks real
//! answers of every route against the document.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::applicants::Rejection;
use crate::changes::Change;
use crate::verdict::HouseholdResult;

/// Every error answer: a code for programs, words for people (Chinese first).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Machine-readable code, e.g. `invalid_value`, `not_found`, `queue_full`.
    pub error: String,
    /// What is wrong and what to do.
    pub message: String,
    /// A refused check (422): every problem found in the household.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Rejection>>)]
    pub rejections: Option<Value>,
}

/// `POST /api/v1/checks`: one household, its values as an applicant batch accepts them
/// (English codes or the Chinese words of a batch; numbers are read as their text).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// 申请编号, the application id.
    #[schema(value_type = String)]
    pub household_id: Option<Value>,
    /// 行政区划代码, six digits.
    #[schema(value_type = String)]
    pub region_code: Option<Value>,
    /// 城乡类型: `urban`/`rural` (城市/农村).
    #[schema(value_type = String)]
    pub area_type: Option<Value>,
    /// 救助类型: `dibao`/`tekun`/`low_income` (低保/特困/低收入).
    #[schema(value_type = String)]
    pub aid_type: Option<Value>,
    /// 授权书编号: the applicant's signed authorization for this check.
    #[schema(value_type = String)]
    pub authorization_id: Option<Value>,
    /// 家庭成员, at least one.
    #[serde(default)]
    pub members: Vec<MemberRequest>,
    /// The check date D (YYYY-MM-DD); today when absent.
    #[schema(value_type = Option<String>, format = Date)]
    pub as_of: Option<String>,
}

/// One member of a [`CheckRequest`].
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberRequest {
    /// 身份证号, 18 characters.
    #[schema(value_type = String)]
    pub id_number: Option<Value>,
    /// 姓名.
    #[schema(value_type = String)]
    pub name: Option<Value>,
    /// 与申请人关系: `applicant`, `spouse`, `child`… or 本人, 配偶, 子女….
    #[schema(value_type = String)]
    pub relation: Option<Value>,
}

/// The answer of a check: the household's `results.jsonl` object and the lake
/// snapshot of each source it rests on.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckAnswer {
    /// The result.
    #[serde(flatten)]
    pub result: HouseholdResult,
    /// Per source, the snapshot read, or null when the source has none.
    #[schema(schema_with = snapshots_schema)]
    pub snapshots: BTreeMap<String, Option<SnapshotRef>>,
}

/// `{source: SnapshotRef or null}`.
fn snapshots_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{
        AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, Type,
    };
    use utoipa::openapi::{Ref, RefOr};
    let entry = OneOfBuilder::new()
        .item(Ref::from_schema_name("SnapshotRef"))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .build();
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .additional_properties(Some(AdditionalProperties::RefOr(RefOr::T(Schema::OneOf(
                entry,
            )))))
            .build(),
    )
}

/// One source's snapshot a check read.
#[derive(Debug, Serialize, ToSchema)]
pub struct SnapshotRef {
    /// Its sequence number in the lake.
    pub seq: i64,
    /// Its id.
    pub snapshot_id: String,
    /// When it was committed (RFC 3339).
    pub committed_at: Option<String>,
    /// When its pull began (RFC 3339).
    pub pulled_at: Option<String>,
}

/// `POST /api/v1/batches` as a form (`multipart/form-data`), as a page's upload sends it.
#[derive(Debug, ToSchema)]
pub struct BatchForm {
    /// The batch file (CSV, XLSX or JSON Lines); its `filename` names the batch and, by
    /// its extension, the format when the part's Content-Type does not.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    /// The check date D, YYYY-MM-DD (default: today).
    pub as_of: Option<String>,
    /// The batch's name, instead of the file's.
    pub file_name: Option<String>,
}

/// `202` of `POST /api/v1/batches` (`Location` names the batch).
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchAccepted {
    /// The batch's id.
    pub batch_id: String,
    /// `queued`.
    pub status: String,
}

/// One batch of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchItem {
    /// Its id.
    pub batch_id: String,
    /// `queued`, `running`, `done` or `failed`.
    pub status: String,
    /// The name it was submitted under.
    pub file_name: String,
    /// The check date D.
    #[schema(format = Date)]
    pub as_of: String,
    /// When it was submitted (RFC 3339).
    pub submitted_at: String,
    /// When it ended.
    pub finished_at: Option<String>,
}

/// A page of the batches the token may see, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchPage {
    /// The page.
    pub batches: Vec<BatchItem>,
    /// The cursor of the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// How far a running batch is.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchProgress {
    /// The stage it reached (`read`, `check`, `write`…, `done`).
    pub stage: Option<String>,
    /// Stages finished.
    pub steps_done: i64,
}

/// `GET /api/v1/batches/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchStatus {
    /// Its id.
    pub batch_id: String,
    /// `queued`, `running`, `done` or `failed`.
    pub status: String,
    /// The name it was submitted under.
    pub file_name: String,
    /// The check date D.
    #[schema(format = Date)]
    pub as_of: String,
    /// When it was submitted (RFC 3339).
    pub submitted_at: String,
    /// When its last attempt began.
    pub started_at: Option<String>,
    /// When it ended.
    pub finished_at: Option<String>,
    /// Attempts begun (more than one after a restart).
    pub attempts: i64,
    /// How far the running attempt is.
    pub progress: BatchProgress,
    /// When done: counts per verdict and rule, rows read, households accepted and
    /// rejected (the batch's `summary.json`).
    #[schema(value_type = Option<Object>)]
    pub summary: Option<Value>,
    /// Why it failed.
    pub error: Option<String>,
}

/// One reconciliation run of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunItem {
    /// Its number.
    pub id: i64,
    /// `running`, `done` or `failed`.
    pub status: String,
    /// When it began (RFC 3339).
    pub started_at: String,
    /// Its check date D.
    #[schema(format = Date)]
    pub as_of: String,
}

/// A page of the runs the token may see, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunPage {
    /// The page.
    pub reconciliations: Vec<RunItem>,
    /// The cursor of the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// A page of one run's changes (those of the token's regions), by household id.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangesPage {
    /// The run.
    pub id: i64,
    /// Its status.
    pub status: String,
    /// `changes.jsonl` lines.
    #[schema(value_type = Vec<Change>)]
    pub changes: Vec<Value>,
    /// The cursor of the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// One household of an audit entry: a check's (with its authorization, hashed members
/// and verdict) or a read's (id and region).
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditHousehold {
    /// The application id (an ID-shaped one as `#` and its keyed hash).
    pub household_id: String,
    /// Its region code.
    pub region_code: String,
    /// Checks: the authorization the check was made under.
    #[schema(required = false)]
    pub authorization_id: Option<String>,
    /// Checks: the members' ID numbers as keyed hashes (hex).
    #[schema(required = false)]
    pub members: Option<Vec<String>>,
    /// Checks: the verdict, or `rejected`.
    #[schema(required = false)]
    pub verdict: Option<String>,
}

/// One entry of the audit log as the token is shown it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryView {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When (RFC 3339).
    pub at: String,
    /// Who: `token:NAME`, `os:USER`, `schedule`.
    pub actor: String,
    /// `check`, `reconcile`, `api`, `batch`, `schedule` or `read`.
    pub kind: String,
    /// Checks: the check date D.
    #[schema(value_type = Option<String>)]
    pub as_of: Value,
    /// Its households of the token's regions.
    #[schema(value_type = Vec<AuditHousehold>)]
    pub households: Vec<Value>,
    /// Checks: per source, the data read (a folder, a lake snapshot, `missing`).
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub sources: Value,
    /// Reads: what was read (`batch_results`, `reconciliation_changes`…).
    #[schema(value_type = Option<String>)]
    pub read: Value,
    /// Reads: of what (`batch:ID`, `run:N`).
    #[schema(value_type = Option<String>)]
    pub of: Value,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// A page of the audit log, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// The page.
    pub entries: Vec<AuditEntryView>,
    /// The cursor of the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// `GET /healthz`, `/readyz` when ready; `GET /livez` when alive.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// `ready` (or `alive`).
    pub status: String,
}
