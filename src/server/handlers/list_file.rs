//! A recipients file as the hub reads it, on a blocking thread: validated as a batch,
//! its households as the hub keeps them, its hash, and what it would replace (the
//! regions and, before the hub holds a list, the households of the config's list).

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::applicants::batch_of;
use crate::server::error::ApiError;
use crate::state::recipients::ListedHousehold;

/// A list as read on a blocking thread: validated, its households as the hub keeps
/// them, its hash, and the regions of the list it would replace.
pub(super) struct ReadList {
    pub(super) batch: crate::applicants::Batch,
    pub(super) households: Vec<ListedHousehold>,
    pub(super) people: usize,
    pub(super) sha256: String,
    pub(super) ext: &'static str,
    pub(super) current_regions: Vec<String>,
    /// Before the hub holds a list: the households of the config's, which a first
    /// upload replaces for the night.
    pub(super) configured_households: Vec<String>,
}

pub(super) fn read_list(
    name: &str,
    path: &std::path::Path,
    limits: &crate::applicants::Limits,
    policy: &crate::policy::Policy,
    as_of: chrono::NaiveDate,
    configured: Option<&std::path::Path>,
    hub_regions: Option<Vec<String>>,
) -> Result<ReadList, ApiError> {
    let internal = |e: String| ApiError::internal(&crate::error::Error::Internal(e));
    let bytes = std::fs::read(path).map_err(|e| internal(e.to_string()))?;
    let batch = batch_of(name, &bytes, limits, policy, as_of).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unreadable_list",
            format!("无法读取在保名单“{name}”，名单未更换：{e}（the recipients list cannot be read; nothing changed）"),
        )
    })?;
    // Before the hub holds a list, the night reads the config's: its regions and its
    // households count.
    let (current_regions, configured_households) = match (hub_regions, configured) {
        (Some(r), _) => (r, Vec::new()),
        (None, Some(file)) => {
            let bytes =
                std::fs::read(file).map_err(|e| internal(format!("{}: {e}", file.display())))?;
            let raw = crate::applicants::read_batch_within(
                file,
                &bytes,
                &crate::applicants::Limits::default(),
            );
            let column = |c: crate::applicants::Column| -> Vec<String> {
                raw.as_ref()
                    .map(|raw| {
                        raw.rows
                            .iter()
                            .filter_map(|r| r.values[c as usize].as_deref())
                            .map(|v| hedui_connectors::text::fold_trim(v).into_owned())
                            .collect::<std::collections::BTreeSet<_>>()
                            .into_iter()
                            .collect()
                    })
                    .unwrap_or_default()
            };
            (
                column(crate::applicants::Column::RegionCode),
                column(crate::applicants::Column::HouseholdId),
            )
        }
        (None, None) => (Vec::new(), Vec::new()),
    };
    let households: Vec<ListedHousehold> = batch
        .households
        .iter()
        .map(|h| ListedHousehold {
            household_id: h.household_id.clone(),
            region_code: h.region_code.clone(),
            members: Value::Array(
                h.members
                    .iter()
                    .map(|m| {
                        json!({
                            "id_number": m.id_number,
                            "name": m.name,
                            "relation": m.relation.code(),
                        })
                    })
                    .collect(),
            )
            .to_string(),
        })
        .collect();
    let people = batch.households.iter().map(|h| h.members.len()).sum();
    let sha256 = hex(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref());
    let ext = match batch.format {
        crate::applicants::BatchFormat::Csv => "csv",
        crate::applicants::BatchFormat::Xlsx => "xlsx",
        _ => "jsonl",
    };
    Ok(ReadList {
        batch,
        households,
        people,
        sha256,
        ext,
        current_regions,
        configured_households,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
