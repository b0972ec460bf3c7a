//! Writing one table of a snapshot: canonical Parquet parts, each sorted by id_number,
//! with page statistics and a bloom filter on id_number (so a one-household lookup can
//! skip row groups and pages), and the malformed records beside them as JSON Lines.
//! Tables stream in: memory is bounded by one part, never the whole table.

use datafusion::arrow::compute::{concat_batches, sort_to_indices, take_record_batch};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::object_store::buffered::BufWriter;
use datafusion::parquet::arrow::async_writer::AsyncArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::metadata::SortingColumn;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::schema::types::ColumnPath;
use hedui_connectors::{LoadedTable, Problem, TableSchema};

use super::error::LakeError;
use super::manifest::TableEntry;
use super::store::{writer_token, Lake};
use datafusion::object_store::{ObjectStoreExt, PutPayload};

/// Rows per Parquet row group in the lake.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Rows per data page: the page index then tells a one-household read which 1,024 rows
/// of a column to decode.
pub const PAGE_ROWS: usize = 1024;

/// Rows held in memory before they are sorted and written as one part file: a table of
/// any size is written in parts of at most this many rows, each sorted by id_number.
pub const PART_ROWS: usize = 2 * 1024 * 1024;

fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        // No dictionary pages: one household's rows are read page by page (see
        // `rows`), and a column chunk's dictionary (up to 1 MiB of ID numbers, names,
        // amounts) would have to be decompressed and decoded for every such read — it
        // was two thirds of the time of a one-household check.
        .set_dictionary_enabled(false)
        // Small pages, so a few people's rows cost a few small pages.
        .set_data_page_row_count_limit(PAGE_ROWS)
        .set_write_batch_size(PAGE_ROWS)
        // LZ4: a one-household read decompresses a few small pages of every column of
        // every part, where ZSTD's cost per page (a compression and a decompression
        // context made for each column chunk read, then the decoding) was the largest
        // part of the API's CPU; LZ4 pages decode several times faster, for files about
        // twice as large (1 M city: 277 MB a snapshot of all sources instead of 140).
        .set_compression(Compression::LZ4_RAW)
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

/// The rows per part file: [`PART_ROWS`], or `HEDUI_LAKE_PART_ROWS` when set (smaller
/// parts hold less in memory and let an interrupted pull resume from nearer its end).
pub fn part_rows() -> usize {
    crate::fault::positive("HEDUI_LAKE_PART_ROWS", PART_ROWS)
}

/// What of a table is durably written: its parts and the malformed records beside them.
/// A pull that is interrupted keeps this in its checkpoint and goes on from it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Written {
    /// Part files, relative to the lake root.
    pub parts: Vec<String>,
    /// Valid records in the parts.
    pub rows: u64,
    /// Files of malformed records written with the parts.
    pub problem_files: Vec<String>,
    /// Malformed records in them.
    pub problems: u64,
}

/// Writes one table of a snapshot as it arrives: records are buffered up to
/// [`part_rows`], then sorted by id_number and written as the next part file (with the
/// malformed records found so far beside it), so memory stays bounded whatever the
/// table's size. Nothing written is visible until the snapshot's manifest is committed.
pub struct TableWriter<'a> {
    lake: &'a Lake,
    table: &'static TableSchema,
    dir: String,
    part_rows: usize,
    buffered: Vec<RecordBatch>,
    buffered_rows: usize,
    pending_problems: Vec<Problem>,
    written: Written,
    /// This writer's own mark in every file name it writes: two writers of one snapshot
    /// (a pull resumed twice, concurrently or after a commit) never write the same name,
    /// so no file of a committed snapshot is ever rewritten.
    token: String,
}

impl<'a> TableWriter<'a> {
    /// A writer for `table` in snapshot `snapshot_id` of `source`.
    pub fn new(
        lake: &'a Lake,
        source: &str,
        snapshot_id: &str,
        table: &'static TableSchema,
    ) -> Self {
        Self::resume(lake, source, snapshot_id, table, Written::default())
    }

    /// A writer that goes on after what an interrupted pull had `written`.
    pub fn resume(
        lake: &'a Lake,
        source: &str,
        snapshot_id: &str,
        table: &'static TableSchema,
        written: Written,
    ) -> Self {
        TableWriter {
            lake,
            table,
            dir: format!("sources/{source}/snapshots/{snapshot_id}/{}", table.table),
            part_rows: part_rows(),
            buffered: Vec::new(),
            buffered_rows: 0,
            pending_problems: Vec::new(),
            written,
            token: writer_token(),
        }
    }

    fn err(&self, what: &str, why: impl ToString) -> LakeError {
        LakeError::Write {
            url: self.lake.url.clone(),
            what: format!("{}/{what}", self.dir),
            why: why.to_string(),
        }
    }

    /// Valid records taken so far (written or buffered).
    pub fn rows(&self) -> u64 {
        self.written.rows + self.buffered_rows as u64
    }

    /// What is durably written; `None` while records are still buffered.
    pub fn written(&self) -> Option<&Written> {
        (self.buffered_rows == 0 && self.pending_problems.is_empty()).then_some(&self.written)
    }

    /// Takes malformed records; they are written beside the next part.
    pub fn push_problems(&mut self, mut problems: Vec<Problem>) {
        self.pending_problems.append(&mut problems);
    }

    /// Takes canonical batches; writes a part file whenever [`part_rows`] are buffered.
    /// Returns whether a part was written.
    pub async fn push(&mut self, batches: Vec<RecordBatch>) -> Result<bool, LakeError> {
        let mut wrote = false;
        for b in batches {
            if b.num_rows() == 0 {
                continue;
            }
            self.buffered_rows += b.num_rows();
            self.buffered.push(b);
            if self.buffered_rows >= self.part_rows {
                self.write_part().await?;
                wrote = true;
            }
        }
        Ok(wrote)
    }

    /// Writes what is buffered (records and malformed records) as the next part.
    pub async fn write_part(&mut self) -> Result<(), LakeError> {
        let n = self.written.parts.len();
        if !self.pending_problems.is_empty() {
            let rel = format!("{}/part-{n:05}-{}.problems.jsonl", self.dir, self.token);
            let mut body = Vec::new();
            for p in &self.pending_problems {
                serde_json::to_writer(&mut body, p).map_err(|e| self.err(&rel, e))?;
                body.push(b'\n');
            }
            self.lake
                .store
                .put(&self.lake.path(&rel), PutPayload::from(body))
                .await
                .map_err(self.lake.store_err(format!("write {rel}")))?;
            self.written.problems += self.pending_problems.len() as u64;
            self.written.problem_files.push(rel);
            self.pending_problems.clear();
        }
        if self.buffered_rows == 0 && n > 0 {
            return Ok(());
        }
        let name = format!("part-{n:05}-{}.parquet", self.token);
        let schema = self.table.arrow_schema();
        let all = concat_batches(&schema, &self.buffered).map_err(|e| self.err(&name, e))?;
        self.buffered.clear();
        self.buffered_rows = 0;
        // id_number is column 0 of every canonical table (schemas are checked for it).
        let order = sort_to_indices(all.column(0), None, None).map_err(|e| self.err(&name, e))?;
        let sorted = take_record_batch(&all, &order).map_err(|e| self.err(&name, e))?;
        drop(all);
        let file = format!("{}/{name}", self.dir);
        let writer = BufWriter::new(self.lake.store.clone(), self.lake.path(&file));
        let mut w = AsyncArrowWriter::try_new(writer, schema, Some(writer_properties()))
            .map_err(|e| self.err(&name, e))?;
        let mut offset = 0;
        while offset < sorted.num_rows() {
            let len = ROW_GROUP_ROWS.min(sorted.num_rows() - offset);
            w.write(&sorted.slice(offset, len))
                .await
                .map_err(|e| self.err(&name, e))?;
            offset += len;
        }
        w.close().await.map_err(|e| self.err(&name, e))?;
        self.written.rows += sorted.num_rows() as u64;
        self.written.parts.push(file);
        Ok(())
    }

    /// Writes what is buffered, gathers the malformed records into one
    /// `problems.jsonl`, and returns the table's manifest entry. A table without valid
    /// records still gets one (empty) part, so readers see its schema.
    pub async fn finish(mut self) -> Result<TableEntry, LakeError> {
        if self.buffered_rows > 0
            || !self.pending_problems.is_empty()
            || self.written.parts.is_empty()
        {
            self.write_part().await?;
        }
        let problems_file = match self.written.problem_files.as_slice() {
            [] => None,
            files => {
                let mut body = Vec::new();
                for f in files {
                    let bytes = self
                        .lake
                        .store
                        .get(&self.lake.path(f))
                        .await
                        .map_err(self.lake.store_err(format!("read {f}")))?
                        .bytes()
                        .await
                        .map_err(self.lake.store_err(format!("read {f}")))?;
                    body.extend_from_slice(&bytes);
                }
                let rel = format!("{}/problems-{}.jsonl", self.dir, self.token);
                self.lake
                    .store
                    .put(&self.lake.path(&rel), PutPayload::from(body))
                    .await
                    .map_err(self.lake.store_err(format!("write {rel}")))?;
                Some(rel)
            }
        };
        Ok(TableEntry {
            table: self.table.table.clone(),
            files: self.written.parts,
            rows: self.written.rows,
            problems: self.written.problems,
            problems_file,
        })
    }
}

/// Writes a table loaded whole into snapshot `snapshot_id` of `source`; returns its
/// manifest entry.
pub async fn write_table(
    lake: &Lake,
    source: &str,
    snapshot_id: &str,
    table: &LoadedTable,
) -> Result<TableEntry, LakeError> {
    let mut w = TableWriter::new(lake, source, snapshot_id, table.schema);
    w.push(table.batches.clone()).await?;
    w.push_problems(table.problems.clone());
    w.finish().await
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

    /// Two writers that go on from the same interrupted pull (two resumes, one after the
    /// other committed) write parts of their own: the first one's files, committed, are
    /// never rewritten by the second.
    #[tokio::test]
    async fn resumed_writers_never_share_a_file() {
        let src = tempfile::tempdir().unwrap();
        let a = id("41018419800101011");
        std::fs::write(
            src.path().join("residents.csv"),
            format!("id_number,name,status\n{a},张伟,normal\n"),
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
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(&LakeConfig {
            url: dir.path().display().to_string(),
            location: LakeLocation::Local(dir.path().to_owned()),
            s3: Default::default(),
        })
        .unwrap();
        let table = schema::table("residents").unwrap();
        let resume = || TableWriter::resume(&lake, "police", "s1", table, Written::default());
        let (mut first, mut second) = (resume(), resume());
        first.push(t.batches.clone()).await.unwrap();
        let one = first.finish().await.unwrap();
        let before = std::fs::read(dir.path().join(&one.files[0])).unwrap();
        second.push(t.batches.clone()).await.unwrap();
        let two = second.finish().await.unwrap();
        assert_ne!(one.files, two.files);
        assert_eq!(
            std::fs::read(dir.path().join(&one.files[0])).unwrap(),
            before
        );
    }
}
