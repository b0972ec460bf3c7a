//! Writing one table of a snapshot: canonical Parquet sorted by id_number, with page
//! statistics and a bloom filter on id_number (so a one-household lookup can skip row
//! groups and pages), and the malformed records beside it as JSON Lines.

use datafusion::arrow::compute::{concat_batches, sort_to_indices, take_record_batch};
use datafusion::object_store::buffered::BufWriter;
use datafusion::parquet::arrow::async_writer::AsyncArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::metadata::SortingColumn;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::schema::types::ColumnPath;
use hedui_connectors::LoadedTable;

use super::{Lake, LakeError, TableEntry};
use datafusion::object_store::{ObjectStoreExt, PutPayload};

/// The one Parquet file of a snapshot table.
const PART_FILE: &str = "part-00000.parquet";

/// Rows per Parquet row group in the lake.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_column_bloom_filter_enabled(ColumnPath::from("id_number"), true)
        .set_sorting_columns(Some(vec![SortingColumn {
            column_idx: 0,
            descending: false,
            nulls_first: false,
        }]))
        .build()
}

/// Writes `table` into snapshot `snapshot_id` of `source`; returns its manifest entry.
/// Nothing written here is visible until the manifest is committed.
pub async fn write_table(
    lake: &Lake,
    source: &str,
    snapshot_id: &str,
    table: &LoadedTable,
) -> Result<TableEntry, LakeError> {
    let name = &table.schema.table;
    let dir = format!("sources/{source}/snapshots/{snapshot_id}/{name}");
    let schema = table.schema.arrow_schema();
    let io = |what: &str, e: String| LakeError::Write {
        url: lake.url.clone(),
        what: format!("{dir}/{what}"),
        why: e,
    };
    let part_err = |e: String| io(PART_FILE, e);
    let all = concat_batches(&schema, &table.batches).map_err(|e| part_err(e.to_string()))?;
    // id_number is column 0 of every canonical table (schemas are checked for it).
    let order = sort_to_indices(all.column(0), None, None).map_err(|e| part_err(e.to_string()))?;
    let sorted = take_record_batch(&all, &order).map_err(|e| part_err(e.to_string()))?;
    drop(all);

    let file = format!("{dir}/{PART_FILE}");
    let writer = BufWriter::new(lake.store.clone(), lake.path(&file));
    let mut w = AsyncArrowWriter::try_new(writer, schema, Some(writer_properties()))
        .map_err(|e| part_err(e.to_string()))?;
    let mut offset = 0;
    while offset < sorted.num_rows() {
        let len = ROW_GROUP_ROWS.min(sorted.num_rows() - offset);
        w.write(&sorted.slice(offset, len))
            .await
            .map_err(|e| part_err(e.to_string()))?;
        offset += len;
    }
    w.close().await.map_err(|e| part_err(e.to_string()))?;

    let problems_file = if table.problems.is_empty() {
        None
    } else {
        let mut body = Vec::new();
        for p in &table.problems {
            serde_json::to_writer(&mut body, p).map_err(|e| io("problems.jsonl", e.to_string()))?;
            body.push(b'\n');
        }
        let rel = format!("{dir}/problems.jsonl");
        lake.store
            .put(&lake.path(&rel), PutPayload::from(body))
            .await
            .map_err(lake.store_err(format!("write {rel}")))?;
        Some(rel)
    };
    Ok(TableEntry {
        table: name.clone(),
        files: vec![file],
        rows: sorted.num_rows() as u64,
        problems: table.problems.len() as u64,
        problems_file,
    })
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use datafusion::arrow::array::AsArray;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use hedui_connectors::{schema, Connector, FilesConnector, LoadOptions};

    use super::*;
    use crate::config::{LakeConfig, LakeLocation};

    fn id(first17: &str) -> String {
        format!(
            "{first17}{}",
            hedui_connectors::idnum::check_char(first17.as_bytes())
        )
    }

    #[tokio::test]
    async fn snapshot_tables_are_sorted_with_bloom_filters() {
        let src = tempfile::tempdir().unwrap();
        let (a, b) = (id("41018419800101011"), id("11010519491231002"));
        std::fs::write(
            src.path().join("residents.csv"),
            format!("id_number,name,status\n{a},张伟,normal\n{b},李娜,deceased\n110105194912310021,王五,normal\n"),
        )
        .unwrap();
        let opts = LoadOptions {
            reference_date: NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
        };
        let t = FilesConnector::new(src.path())
            .unwrap()
            .load(schema::table("residents").unwrap(), opts)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((t.rows(), t.problems.len()), (2, 1));

        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(&LakeConfig {
            url: dir.path().display().to_string(),
            location: LakeLocation::Local(dir.path().to_owned()),
            s3: Default::default(),
        })
        .unwrap();
        let entry = write_table(&lake, "police", "s1", &t).await.unwrap();
        assert_eq!((entry.rows, entry.problems), (2, 1));

        let file = std::fs::File::open(dir.path().join(&entry.files[0])).unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let meta = builder.metadata().clone();
        let rg = meta.row_group(0);
        assert!(
            rg.column(0).bloom_filter_offset().is_some(),
            "bloom filter on id_number"
        );
        assert!(rg.column(0).statistics().is_some());
        let batches: Vec<_> = builder.build().unwrap().map(Result::unwrap).collect();
        let ids: Vec<&str> = batches[0]
            .column(0)
            .as_string::<i32>()
            .iter()
            .map(Option::unwrap)
            .collect();
        assert_eq!(ids, [b.as_str(), a.as_str()]);
        let problems =
            std::fs::read_to_string(dir.path().join(entry.problems_file.unwrap())).unwrap();
        assert!(problems.contains("\"reason\":\"invalid_id_number\""));
        assert!(
            !problems.contains("110105194912310021"),
            "ID numbers are masked"
        );
    }
}
