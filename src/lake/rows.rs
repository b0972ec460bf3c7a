//! Reading some people's rows of a snapshot table straight from its Parquet files: the
//! parts are sorted by id_number with statistics per row group and per page, so the row
//! groups and pages whose id_number range admits one of the people are all that is
//! decoded, and the rows are then kept by exact id_number. No query is planned: this is
//! what answers one household in milliseconds (the API), where a SQL scan per table
//! costs more to plan and start than to run.
//!
//! Every file's footer and page index are read once per process ([`FooterCache`]):
//! committed snapshot files never change (a new snapshot has new names).

use std::collections::HashMap;
use std::ops::{Range, RangeInclusive};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use datafusion::arrow::array::{ArrayRef, AsArray, BooleanArray};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::object_store::path::Path as StorePath;
use datafusion::object_store::{ObjectStore, ObjectStoreExt};
use datafusion::parquet::arrow::arrow_reader::{
    ArrowPredicateFn, ArrowReaderMetadata, ArrowReaderOptions, RowFilter, RowSelection, RowSelector,
};
use datafusion::parquet::arrow::async_reader::AsyncFileReader;
use datafusion::parquet::arrow::{ParquetRecordBatchStreamBuilder, ProjectionMask};
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::metadata::{
    PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader,
};
use datafusion::parquet::file::page_index::column_index::ColumnIndexMetaData;
use futures::future::BoxFuture;
use futures::{FutureExt, TryStreamExt};

use super::error::LakeError;
use super::store::Lake;

/// Files whose footers a [`FooterCache`] keeps before it starts afresh.
const CACHED_FOOTERS: usize = 4096;

/// The id_number column every canonical table starts with.
const ID: &str = "id_number";

/// Footers (with page indexes) of snapshot files, by path relative to the lake root.
#[derive(Debug, Default)]
pub struct FooterCache {
    footers: Mutex<HashMap<String, ArrowReaderMetadata>>,
}

impl FooterCache {
    fn get(&self, rel: &str) -> Option<ArrowReaderMetadata> {
        self.footers.lock().ok()?.get(rel).cloned()
    }

    fn put(&self, rel: &str, m: ArrowReaderMetadata) {
        if let Ok(mut f) = self.footers.lock() {
            if f.len() >= CACHED_FOOTERS {
                f.clear();
            }
            f.insert(rel.to_owned(), m);
        }
    }
}

/// The rows of the snapshot table stored in `files` whose id_number is one of `ids`
/// (sorted, distinct), as batches of `schema` (the canonical table's).
pub async fn rows_of(
    lake: &Lake,
    footers: &FooterCache,
    files: &[String],
    schema: &SchemaRef,
    ids: &[&str],
) -> Result<Vec<RecordBatch>, LakeError> {
    let ids: Arc<Vec<String>> = Arc::new(ids.iter().map(|id| (*id).to_owned()).collect());
    let parts = futures::future::try_join_all(
        files
            .iter()
            .map(|f| file_rows(lake, footers, f, schema, ids.clone())),
    )
    .await?;
    Ok(parts.into_iter().flatten().collect())
}

async fn file_rows(
    lake: &Lake,
    footers: &FooterCache,
    rel: &str,
    schema: &SchemaRef,
    ids: Arc<Vec<String>>,
) -> Result<Vec<RecordBatch>, LakeError> {
    let bad = |why: String| LakeError::BadFile {
        url: lake.url().to_owned(),
        path: rel.to_owned(),
        why,
    };
    let mut reader = LakeFile {
        store: lake.store().clone(),
        path: lake.path(rel),
    };
    let meta = match footers.get(rel) {
        Some(m) => m,
        None => {
            let options =
                ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
            let m = ArrowReaderMetadata::load_async(&mut reader, options)
                .await
                .map_err(|e| bad(e.to_string()))?;
            footers.put(rel, m.clone());
            m
        }
    };
    // A part without id_number is not a canonical table: an error, never "no rows".
    let col = meta
        .metadata()
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.name() == ID)
        .ok_or_else(|| bad("no id_number column".into()))?;
    let Some((row_groups, selection)) = plan(&meta, col, &ids) else {
        return Ok(Vec::new());
    };
    // The id_number pages admitted are decoded first and the rows kept by exact ID;
    // the other columns are decoded for those rows only. (The parts of a table are
    // sorted each on its own, so every part's pages admit most people: this is what
    // keeps a part that does not hold them from costing more than its ID pages.)
    let only_ids = ProjectionMask::leaves(meta.metadata().file_metadata().schema_descr(), [col]);
    let keep = ArrowPredicateFn::new(only_ids, move |b: RecordBatch| id_mask(b.column(0), &ids));
    let stream = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, meta)
        .with_row_groups(row_groups)
        .with_row_selection(selection)
        .with_row_filter(RowFilter::new(vec![Box::new(keep)]))
        .build()
        .map_err(|e| bad(e.to_string()))?;
    let batches: Vec<RecordBatch> = stream.try_collect().await.map_err(|e| bad(e.to_string()))?;
    let mut out = Vec::new();
    for b in batches {
        if b.num_rows() == 0 {
            continue;
        }
        // The file's columns under the canonical schema (same types; the field
        // metadata may differ).
        let b = RecordBatch::try_new(schema.clone(), b.columns().to_vec())
            .map_err(|e| bad(format!("not the canonical table's columns: {e}")))?;
        out.push(b);
    }
    Ok(out)
}

/// A Parquet file of the lake, read by ranges through the lake's object store.
struct LakeFile {
    store: Arc<dyn ObjectStore>,
    path: StorePath,
}

fn parquet_err(e: datafusion::object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl AsyncFileReader for LakeFile {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, Result<Bytes, ParquetError>> {
        async move {
            self.store
                .get_range(&self.path, range)
                .await
                .map_err(parquet_err)
        }
        .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, Result<Vec<Bytes>, ParquetError>> {
        async move {
            self.store
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(parquet_err)
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, Result<Arc<ParquetMetaData>, ParquetError>> {
        async move {
            let size = self.store.head(&self.path).await.map_err(parquet_err)?.size;
            let m = ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                .with_prefetch_hint(Some(64 * 1024))
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(m))
        }
        .boxed()
    }
}

/// The row groups, and the rows within them, that may hold one of `ids`: by each row
/// group's id_number (leaf column `col`) statistics, then by its pages' (the page index)
/// when present. `None` when no row group may.
fn plan<S: AsRef<str>>(
    meta: &ArrowReaderMetadata,
    col: usize,
    ids: &[S],
) -> Option<(Vec<usize>, RowSelection)> {
    let md = meta.metadata();
    let admits = |min: Option<&[u8]>, max: Option<&[u8]>| match (min, max) {
        (Some(lo), Some(hi)) => any_within(ids, lo..=hi),
        // No statistics: the rows must be read.
        _ => true,
    };
    let mut groups = Vec::new();
    let mut selectors = Vec::new();
    for (g, rg) in md.row_groups().iter().enumerate() {
        let rows = usize::try_from(rg.num_rows()).unwrap_or(0);
        let stats = rg.column(col).statistics();
        if !admits(
            stats.and_then(|s| s.min_bytes_opt()),
            stats.and_then(|s| s.max_bytes_opt()),
        ) {
            continue;
        }
        groups.push(g);
        let pages = md
            .column_index()
            .and_then(|ci| ci.get(g))
            .and_then(|c| c.get(col))
            .zip(
                md.offset_index()
                    .and_then(|oi| oi.get(g))
                    .and_then(|c| c.get(col)),
            );
        let Some((ColumnIndexMetaData::BYTE_ARRAY(index), offsets)) = pages else {
            selectors.push(RowSelector::select(rows));
            continue;
        };
        let locations = offsets.page_locations();
        let mut pages = Vec::with_capacity(locations.len());
        for (p, loc) in locations.iter().enumerate() {
            let first = usize::try_from(loc.first_row_index).unwrap_or(0);
            let end = locations
                .get(p + 1)
                .map(|n| usize::try_from(n.first_row_index).unwrap_or(rows))
                .unwrap_or(rows);
            let n = end.saturating_sub(first);
            if admits(index.min_value(p), index.max_value(p)) {
                pages.push(RowSelector::select(n));
            } else {
                pages.push(RowSelector::skip(n));
            }
        }
        // Pages that do not tile the row group (an index this reader does not expect):
        // the whole row group is read rather than rows missed.
        if pages.iter().map(|s| s.row_count).sum::<usize>() == rows {
            selectors.extend(pages);
        } else {
            selectors.push(RowSelector::select(rows));
        }
    }
    if groups.is_empty() {
        return None;
    }
    Some((groups, RowSelection::from(selectors)))
}

/// Whether one of the sorted `ids` lies within `range` (bytes compare as the UTF-8 ID
/// numbers do).
fn any_within<S: AsRef<str>>(ids: &[S], range: RangeInclusive<&[u8]>) -> bool {
    let first = ids.partition_point(|id| id.as_ref().as_bytes() < *range.start());
    ids.get(first)
        .is_some_and(|id| id.as_ref().as_bytes() <= *range.end())
}

/// Which values of the id_number column `c` are one of the sorted `ids`.
fn id_mask(
    c: &ArrayRef,
    ids: &[String],
) -> Result<BooleanArray, datafusion::arrow::error::ArrowError> {
    let mut asked = Asked::new(ids);
    let mut keep = |v: Option<&str>| Some(v.is_some_and(|v| asked.contains(v)));
    Ok(match c.data_type() {
        DataType::Utf8 => c.as_string::<i32>().iter().map(&mut keep).collect(),
        DataType::LargeUtf8 => c.as_string::<i64>().iter().map(&mut keep).collect(),
        DataType::Utf8View => c.as_string_view().iter().map(&mut keep).collect(),
        other => {
            return Err(datafusion::arrow::error::ArrowError::SchemaError(format!(
                "id_number is {other}, not text"
            )))
        }
    })
}

/// Membership in sorted `ids` for values that mostly come in ascending order (the
/// lake's parts are sorted by id_number): a merge, about one comparison per value; a
/// value lower than the one before is searched for afresh.
struct Asked<'a> {
    ids: &'a [String],
    /// Every id before `at` is lower than the last value asked about.
    at: usize,
}

impl<'a> Asked<'a> {
    fn new(ids: &'a [String]) -> Self {
        Asked { ids, at: 0 }
    }

    fn contains(&mut self, v: &str) -> bool {
        if self.at > 0 && self.ids.get(self.at - 1).is_some_and(|id| id.as_str() >= v) {
            self.at = self.ids.partition_point(|id| id.as_str() < v);
        }
        while self.ids.get(self.at).is_some_and(|id| id.as_str() < v) {
            self.at += 1;
        }
        self.ids.get(self.at).is_some_and(|id| id == v)
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use hedui_connectors::{schema, Connector, FilesConnector, LoadOptions};

    use super::*;
    use crate::config::{LakeConfig, LakeLocation};

    fn id(n: u32) -> String {
        // Born on the (1 + n / 1000)th of January 1980: ID order is n's order.
        let first17 = format!("4101051980010{}{:03}", 1 + n / 1000, n % 1000);
        format!(
            "{first17}{}",
            hedui_connectors::idnum::check_char(first17.as_bytes())
        )
    }

    /// A residents table of `people` (three rows each for every third person, so ranges
    /// of rows share an ID), written to `lake` as one snapshot.
    async fn written(lake: &Lake, snapshot: &str, people: std::ops::Range<u32>) -> Vec<String> {
        let src = tempfile::tempdir().unwrap();
        let mut csv = String::from("id_number,name,status\n");
        for n in people {
            let times = if n % 3 == 0 { 3 } else { 1 };
            for _ in 0..times {
                csv.push_str(&format!("{},张伟,normal\n", id(n)));
            }
        }
        std::fs::write(src.path().join("residents.csv"), csv).unwrap();
        let opts = LoadOptions {
            reference_date: NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
        };
        let t = FilesConnector::new(src.path())
            .unwrap()
            .load(schema::table("residents").unwrap(), opts)
            .await
            .unwrap()
            .unwrap();
        super::super::write::write_table(lake, "police", snapshot, &t)
            .await
            .unwrap()
            .files
    }

    /// Over several pages and two files: exactly the asked people's rows, however they
    /// fall on pages (first, last, a page boundary, absent, several in one page), the
    /// same on a second read from the cached footers.
    #[tokio::test]
    async fn reads_exactly_the_asked_peoples_rows() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(&LakeConfig {
            url: dir.path().display().to_string(),
            location: LakeLocation::Local(dir.path().to_owned()),
            s3: Default::default(),
        })
        .unwrap();
        let mut files = written(&lake, "s1", 0..900).await;
        files.extend(written(&lake, "s2", 900..1000).await);
        let table = schema::table("residents").unwrap();
        let schema = table.arrow_schema();
        let footers = FooterCache::default();
        // 0 and 999: first and last; 900: first of the second file; 614/615 on either
        // side of the first page boundary (row 1,024); 1000+: in no file; every third
        // person has three rows.
        let asked: Vec<String> = [0, 3, 6, 511, 512, 614, 615, 899, 900, 999, 1000, 1500]
            .into_iter()
            .map(id)
            .collect();
        let mut ids: Vec<&str> = asked.iter().map(String::as_str).collect();
        ids.sort_unstable();
        for _ in 0..2 {
            let rows = rows_of(&lake, &footers, &files, &schema, &ids)
                .await
                .unwrap();
            assert!(rows.iter().all(|b| b.schema() == schema));
            let mut got: Vec<String> = rows
                .iter()
                .flat_map(|b| {
                    b.column(0)
                        .as_string::<i32>()
                        .iter()
                        .map(|v| v.unwrap().to_owned())
                        .collect::<Vec<_>>()
                })
                .collect();
            got.sort();
            let mut want: Vec<String> = [
                0, 0, 0, 3, 3, 3, 6, 6, 6, 511, 512, 614, 615, 615, 615, 899, 900, 900, 900, 999,
                999, 999,
            ]
            .into_iter()
            .map(id)
            .collect();
            want.sort();
            assert_eq!(got, want);
        }
        // Only the page holding one person is decoded, not the whole file.
        let meta = footers.get(&files[0]).unwrap();
        let one = id(100);
        let (_, selection) = plan(&meta, 0, &[one.as_str()]).unwrap();
        let selected: usize = selection
            .iter()
            .filter(|s| !s.skip)
            .map(|s| s.row_count)
            .sum();
        assert!(meta.metadata().file_metadata().num_rows() > 1024);
        assert_eq!(selected, super::super::write::PAGE_ROWS);
        assert!(rows_of(&lake, &footers, &files, &schema, &[])
            .await
            .unwrap()
            .is_empty());
        let nobody = id(2000);
        assert!(
            rows_of(&lake, &footers, &files, &schema, &[nobody.as_str()])
                .await
                .unwrap()
                .is_empty()
        );
    }

    /// The merge answers as a binary search would, in any order of values.
    #[test]
    fn asked_ids_are_found_in_any_order() {
        let ids: Vec<String> = ["B", "D", "F"].map(String::from).to_vec();
        let values = ["A", "B", "B", "C", "F", "G", "D", "A", "F", "B", "E", "D"];
        let mut asked = Asked::new(&ids);
        let got: Vec<bool> = values.iter().map(|v| asked.contains(v)).collect();
        let want: Vec<bool> = values
            .iter()
            .map(|v| ids.binary_search_by(|id| id.as_str().cmp(v)).is_ok())
            .collect();
        assert_eq!(got, want);
        assert!(!Asked::new(&[]).contains("A"));
    }

    #[test]
    fn a_range_admits_only_ids_within_it() {
        let ids = [
            "110101199001011234",
            "410105198305265270",
            "41010520100719996X",
        ];
        let r = |a: &'static str, b: &'static str| a.as_bytes()..=b.as_bytes();
        assert!(any_within(&ids, r("4101", "4102")));
        assert!(any_within(
            &ids,
            r("410105198305265270", "410105198305265270")
        ));
        assert!(!any_within(&ids, r("2", "3")));
        assert!(!any_within(&ids, r("5", "6")));
        assert!(!any_within(
            &ids,
            r("410105198305265271", "410105201007199960")
        ));
        assert!(!any_within::<&str>(&[], r("0", "9")));
    }
}
