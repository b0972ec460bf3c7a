//! `POST /api/v1/checks`: one household as JSON, checked by the same engine and
//! pipelines as a batch, on the lake's current snapshots → the `results.jsonl` object, or
//! 422 with the SPEC §3 reason codes.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::Value;

use crate::applicants::{validate_within, Column, RawBatch};
use crate::progress::Progress;
use crate::publish::{publish, Record, Tail};
use crate::server::app::AppState;
use crate::server::caller::{Caller, MayCheck};
use crate::server::checker::Refused;
use crate::server::error::ApiError;
use crate::server::schema::{CheckAnswer, CheckRequest};

/// A JSON value as the text a batch cell would hold.
fn text(v: &Option<Value>) -> Option<String> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    }
}

/// Masks the ID and account numbers of one flag (its member and its evidence records).
pub fn mask_flag(f: &mut Value) {
    use hedui_connectors::idnum::{mask_account, mask_id};
    if let Some(Value::String(m)) = f.get_mut("member") {
        *m = mask_id(m);
    }
    if let Some(ev) = f.get_mut("evidence").and_then(Value::as_array_mut) {
        for e in ev {
            let Some(record) = e.get_mut("record") else {
                continue;
            };
            if let Some(Value::String(id)) = record.get_mut("id_number") {
                *id = mask_id(id);
            }
            if let Some(Value::String(acc)) = record.get_mut("account_no") {
                *acc = mask_account(acc);
            }
        }
    }
}

/// Masks the ID numbers of a result for roles without full view.
pub fn mask_result(v: &mut Value) {
    mask_household_id(v);
    if let Some(flags) = v.get_mut("flags").and_then(Value::as_array_mut) {
        flags.iter_mut().for_each(mask_flag);
    }
}

/// A line's `household_id` masked where a clerk typed an ID number into it.
pub fn mask_household_id(v: &mut Value) {
    if let Some(Value::String(h)) = v.get_mut("household_id") {
        if let std::borrow::Cow::Owned(m) = hedui_connectors::idnum::mask_ids_in(h) {
            *h = m;
        }
    }
}

/// Which snapshot of each source the answer rests on: `{source: {seq, snapshot_id,
/// committed_at, pulled_at}}`, or `null` for a source that is missing.
fn snapshots(tables: &[crate::sources::TableStatus]) -> Value {
    let mut out = serde_json::Map::new();
    for t in tables {
        let entry = match (&t.snapshot_id, t.snapshot) {
            (Some(id), Some(seq)) => serde_json::json!({
                "seq": seq,
                "snapshot_id": id,
                "committed_at": t.committed_at,
                "pulled_at": t.pulled_at,
            }),
            _ => Value::Null,
        };
        // A source's tables come from one snapshot; a missing table leaves it null.
        match out.get(&t.source) {
            Some(Value::Null) => {}
            Some(_) if entry.is_null() => {
                out.insert(t.source.clone(), Value::Null);
            }
            Some(_) => {}
            None => {
                out.insert(t.source.clone(), entry);
            }
        }
    }
    Value::Object(out)
}

/// Checks one household.
#[utoipa::path(
    post,
    path = "/api/v1/checks",
    operation_id = "check_household",
    description = "One household as JSON (household_id, region_code, area_type, aid_type, authorization_id, members [{id_number, name, relation}], optional as_of; values as an applicant batch accepts them, English or Chinese) → the results.jsonl object of that household.",
    request_body = CheckRequest,
    responses(
        (status = 200, description = "The household's result (the object of a results.jsonl line), plus `snapshots`: the lake snapshot of each source it rests on", body = CheckAnswer),
        (status = 400, description = "Not a check request"),
        (status = 413, description = "Body larger than max_body_mb"),
        (status = 422, description = "The household is rejected: the rejection reason codes in `rejections`"),
        (status = 403, description = "The token's role or regions do not allow it"),
        Caller<MayCheck>,
    ),
    security(("bearer" = []))
)]
pub async fn check(
    State(app): State<Arc<AppState>>,
    Caller(ref token, _): Caller<MayCheck>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = super::body(&app, body)?;
    let req: CheckRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("请求不是有效的核对 JSON（not a check request: {e}）"),
        )
    })?;
    // The household's region decides whether this token may look at all.
    let region = text(&req.region_code)
        .map(|r| hedui_connectors::text::fold_trim(&r).into_owned())
        .unwrap_or_default();
    if region.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_field",
            "缺少行政区划代码 region_code（region_code is missing）",
        ));
    }
    if !token.covers(&region) {
        return Err(ApiError::forbidden(format!(
            "该令牌无权核对行政区划 {region} 的家庭（this token may not check households of region {region}）"
        )));
    }
    let as_of = super::as_of(
        &app,
        req.as_of.as_deref(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_value",
    )?;
    if req.members.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_field",
            "家庭成员为空（members is empty）",
        ));
    }
    // One row per member, the household's fields on every row, as in a batch file.
    let records = req
        .members
        .iter()
        .map(|m| {
            vec![
                (Column::HouseholdId, text(&req.household_id)),
                (Column::RegionCode, text(&req.region_code)),
                (Column::AreaType, text(&req.area_type)),
                (Column::AidType, text(&req.aid_type)),
                (Column::AuthorizationId, text(&req.authorization_id)),
                (Column::IdNumber, text(&m.id_number)),
                (Column::Name, text(&m.name)),
                (Column::Relation, text(&m.relation)),
            ]
        })
        .collect();
    let raw = RawBatch::of_records(records);
    let batch = validate_within(
        "api",
        raw,
        &app.policy,
        as_of,
        app.config.batch_limits.max_members,
    );
    if !batch.rejections.is_empty() {
        let reasons = serde_json::to_value(&batch.rejections).unwrap_or(Value::Null);
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            batch.rejections[0].reason.code(),
            batch.rejections[0].message.clone(),
        );
        e.rejections = Some(reasons);
        return Err(e);
    }
    // Checked by the check workers, with other waiting households when they can share
    // a run (see `server::checker`).
    let Some(household) = batch.households.into_iter().next() else {
        return Err(ApiError::internal(&crate::error::Error::Internal(
            "an accepted request without a household".into(),
        )));
    };
    let hid = household.household_id.clone();
    // The people whose records this check draws count against the token's day.
    super::admit_people(
        &app,
        token,
        household
            .members
            .iter()
            .map(|m| m.id_number.clone())
            .collect(),
        vec![household.region_code.clone()],
    )
    .await?;
    let run = match app.checks.check(household, as_of).await {
        Ok(Ok(run)) => run,
        Ok(Err(e)) => return Err(ApiError::internal(&e)),
        Err(Refused::Busy) => return Err(ApiError::busy()),
        Err(Refused::Stopped) => return Err(ApiError::stopping()),
    };
    let found = run
        .answer
        .find(&hid)
        .map_err(|e| ApiError::internal(&crate::error::Error::from(e)))?;
    let Some(result) = found else {
        return Err(ApiError::internal(&crate::error::Error::Internal(
            "no result for the household".into(),
        )));
    };
    {
        let actor = token.actor.clone();
        let (hid, run) = (hid.clone(), run.clone());
        app.db(move |state| {
            let tail = Tail {
                household: Some(&hid),
                ..Tail::new(None, &actor, "api")
            };
            publish(&run, &tail, Record::In(state), &Progress::silent())
                .map(|_| ())
                .map_err(|e| ApiError::internal(&e))
        })
        .await?;
    }
    app.wrote();
    app.metrics.verdict(&result.verdict);
    tracing::info!(
        household = %hedui_connectors::idnum::mask_ids_in(&result.household_id),
        verdict = %result.verdict,
        token = %token.label,
        "check"
    );
    let mut v = serde_json::to_value(result)
        .map_err(|e| ApiError::internal(&crate::error::Error::Internal(e.to_string())))?;
    if !token.role.sees_full_ids() {
        mask_result(&mut v);
    }
    v["snapshots"] = snapshots(&run.tables);
    Ok(Json(v))
}
