//! A source folder in the SPEC §2 layout, read through the `files` connector: every
//! record validated and counted, the batch's members' records kept in memory.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::NaiveDate;
use hedui_connectors::schema;
use hedui_connectors::{FilesConnector, LoadOptions};

use crate::progress::Progress;

use super::tables::{
    latest_text, SourceRows, SourceTable, Sources, SourcesError, TableStatus, NO_USABLE_RECORD,
};

/// Reads every canonical table of the folder: each record validated and counted, the
/// records of `members` kept (the rules reach no other).
pub(super) async fn read(
    connector: &FilesConnector,
    as_of: NaiveDate,
    members: Arc<HashSet<String>>,
    progress: &Progress,
) -> Result<Sources, SourcesError> {
    let options = LoadOptions {
        reference_date: as_of,
    };
    let mut s = Sources {
        members_only: true,
        ..Sources::default()
    };
    for t in schema::tables() {
        // Every record validated (and counted); only the members' records kept.
        match connector
            .load_keeping(t, options, Some(members.clone()))
            .await?
        {
            // Delivered, but not one usable record: counted as absent (SPEC §2), its
            // malformed records still listed.
            Some(lt) if lt.usable == 0 => {
                progress.warn(&format!(
                    "{}: {} 中没有可用记录，按未提供处理，{} 数据缺失（{} holds no usable record ({} read, all malformed or none): counted as absent, source {} missing）",
                    t.table,
                    lt.files.join(", "),
                    t.source,
                    lt.files.join(", "),
                    lt.rows_read,
                    t.source
                ));
                s.missing.push(t.source.clone());
                s.tables.push(TableStatus {
                    absent_because: Some(NO_USABLE_RECORD),
                    files: lt.files.clone(),
                    rows_read: lt.rows_read,
                    problems: lt.problems.len(),
                    ..TableStatus::absent(t)
                });
                s.problems.extend(lt.problems);
            }
            Some(lt) => {
                progress.step(&format!(
                    "{}: {} records, {} malformed",
                    t.table,
                    lt.rows_read,
                    lt.problems.len()
                ));
                s.tables.push(TableStatus {
                    present: true,
                    absent_because: None,
                    files: lt.files.clone(),
                    rows_read: lt.rows_read,
                    rows: usize::try_from(lt.usable).unwrap_or(usize::MAX),
                    problems: lt.problems.len(),
                    latest_as_of: latest_text(t, lt.latest),
                    earliest: lt.earliest,
                    ..TableStatus::absent(t)
                });
                s.problems.extend(lt.problems);
                s.data.push(SourceTable {
                    table: t.table.clone(),
                    schema: t.arrow_schema(),
                    rows: SourceRows::Memory(lt.batches),
                });
            }
            None => {
                progress.step(&format!(
                    "{}: absent — source {} missing",
                    t.table, t.source
                ));
                s.missing.push(t.source.clone());
                s.tables.push(TableStatus::absent(t));
            }
        }
    }
    if s.tables.iter().all(|t| !t.present && t.files.is_empty()) {
        let names: Vec<String> = schema::tables()
            .iter()
            .map(|t| format!("{}.csv", t.table))
            .collect();
        return Err(SourcesError::NoTables {
            path: connector.root().display().to_string(),
            expected: format!(
                "{} …，或 .parquet / .jsonl，或同名文件夹 (or .parquet / .jsonl files, or folders of that name)",
                names.iter().take(4).cloned().collect::<Vec<_>>().join("、")
            ),
        });
    }
    Ok(s)
}
