//! The lake's tests: commits sequenced and exclusive on stores with and without
//! conditional puts, time travel, failures recorded with IDs masked, orphans removed.

use std::sync::Arc;

use chrono::Utc;
use datafusion::object_store::local::LocalFileSystem;
use datafusion::object_store::path::Path as StorePath;
use datafusion::object_store::{ObjectStore, PutMode, PutOptions, PutPayload};

use crate::config::{LakeConfig, LakeLocation};

use super::manifest::manifest_name;

use super::*;
use datafusion::object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta,
    PutMultipartOptions, PutResult,
};
use futures::stream::BoxStream;

/// A store that ignores put-if-absent and overwrites, as Garage 2.5 does with
/// `If-None-Match: *`.
#[derive(Debug)]
struct IgnoresConditions(LocalFileSystem);

impl std::fmt::Display for IgnoresConditions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IgnoresConditions({})", self.0)
    }
}

#[async_trait::async_trait]
impl ObjectStore for IgnoresConditions {
    async fn put_opts(
        &self,
        location: &StorePath,
        payload: PutPayload,
        mut opts: PutOptions,
    ) -> datafusion::object_store::Result<PutResult> {
        opts.mode = PutMode::Overwrite;
        self.0.put_opts(location, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        location: &StorePath,
        opts: PutMultipartOptions,
    ) -> datafusion::object_store::Result<Box<dyn MultipartUpload>> {
        self.0.put_multipart_opts(location, opts).await
    }
    async fn get_opts(
        &self,
        location: &StorePath,
        options: GetOptions,
    ) -> datafusion::object_store::Result<GetResult> {
        self.0.get_opts(location, options).await
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, datafusion::object_store::Result<StorePath>>,
    ) -> BoxStream<'static, datafusion::object_store::Result<StorePath>> {
        self.0.delete_stream(locations)
    }
    fn list(
        &self,
        prefix: Option<&StorePath>,
    ) -> BoxStream<'static, datafusion::object_store::Result<ObjectMeta>> {
        self.0.list(prefix)
    }
    async fn list_with_delimiter(
        &self,
        prefix: Option<&StorePath>,
    ) -> datafusion::object_store::Result<ListResult> {
        self.0.list_with_delimiter(prefix).await
    }
    async fn copy_opts(
        &self,
        from: &StorePath,
        to: &StorePath,
        options: CopyOptions,
    ) -> datafusion::object_store::Result<()> {
        self.0.copy_opts(from, to, options).await
    }
}

/// Writers of one lake on a store without conditional puts, each its own process
/// (no shared lock, no shared [state] folder).
fn unconditional(dir: &std::path::Path) -> Lake {
    Lake {
        url: "s3://unconditional".into(),
        store: Arc::new(IgnoresConditions(
            LocalFileSystem::new_with_prefix(dir).unwrap(),
        )),
        root: StorePath::default(),
        table_base: dir.display().to_string(),
        store_url: None,
        put_if_absent: false,
    }
}

/// On a store that overwrites instead of refusing, writers started from one state
/// never both commit, round after round, and the manifest that stands is the one its
/// writer was told was committed.
#[tokio::test]
async fn commits_hold_on_a_store_without_conditional_puts() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (unconditional(dir.path()), unconditional(dir.path()));
    for round in 0..12u64 {
        let (x, y) = tokio::join!(
            a.commit(manifest("hr", &format!("a{round}")), round),
            b.commit(manifest("hr", &format!("b{round}")), round)
        );
        assert!(
            x.is_ok() != y.is_ok(),
            "round {round}: exactly one commits ({:?} / {:?})",
            x.as_ref().map(|m| m.seq),
            y.as_ref().map(|m| m.seq)
        );
        let won = x.or(y).unwrap();
        let current = a.snapshot_at("hr", None).await.unwrap().unwrap();
        assert_eq!(
            (current.seq, &current.snapshot_id),
            (round + 1, &won.snapshot_id)
        );
    }
    // No claim is left behind.
    let claims = dir.path().join("sources/hr/claims");
    let left: usize = std::fs::read_dir(&claims)
        .unwrap()
        .map(|d| std::fs::read_dir(d.unwrap().path()).unwrap().count())
        .sum();
    assert_eq!(left, 0);
}

/// Commit times grow with the sequence whatever the clocks did: a previous commit
/// stamped a day ahead makes the next one's committed_at follow it, and says so.
#[tokio::test]
async fn commit_times_grow_with_the_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake(dir.path());
    let first = lake.commit(manifest("hr", "a"), 0).await.unwrap();
    assert!(first.clock_note.is_none());
    // A manifest written by a host whose clock ran a day ahead.
    let mut skewed = first.clone();
    skewed.committed_at = first.committed_at + chrono::Duration::days(1);
    std::fs::write(
        dir.path()
            .join(format!("sources/hr/manifests/{}", manifest_name(1))),
        serde_json::to_vec(&skewed).unwrap(),
    )
    .unwrap();
    let second = lake.commit(manifest("hr", "b"), 1).await.unwrap();
    assert_eq!(
        second.committed_at,
        skewed.committed_at + chrono::Duration::microseconds(1)
    );
    assert!(second
        .clock_note
        .as_deref()
        .unwrap()
        .contains("so that commit times grow"));
    let back = lake.snapshot_at("hr", None).await.unwrap().unwrap();
    assert_eq!(
        (back.seq, back.committed_at, back.clock_note),
        (2, second.committed_at, second.clock_note)
    );
}

/// A department's or a store's error text is kept with every ID number masked.
#[tokio::test]
async fn recorded_failures_mask_id_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake(dir.path());
    lake.record_failure(
        "hr",
        "cannot pull hr_income: HTTP 500: no record for 11010519491231002X after cursor 110105194912310021",
    )
    .await
    .unwrap();
    let f = lake.last_failure("hr").await.unwrap().unwrap();
    assert_eq!(
        f.error,
        "cannot pull hr_income: HTTP 500: no record for 110105********002X after cursor 110105********0021"
    );
    let on_disk = std::fs::read_dir(dir.path().join("sources/hr/failures"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<String>();
    assert!(!on_disk.contains("19491231"), "{on_disk}");
}

/// Reading never creates a lake: a mistyped folder, or one nothing was ingested
/// into, is NotFound; the folder is not made.
#[tokio::test]
async fn reading_never_creates_a_lake() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("lak");
    let cfg = |p: &std::path::Path| LakeConfig {
        url: p.display().to_string(),
        location: LakeLocation::Local(p.to_owned()),
        s3: Default::default(),
    };
    let e = Lake::open_existing(&cfg(&typo)).await.unwrap_err();
    assert!(matches!(e, LakeError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("does not exist"), "{e}");
    assert!(!typo.exists());
    let e = Lake::open_existing(&cfg(dir.path())).await.unwrap_err();
    assert!(e.to_string().contains("nothing has been ingested"), "{e}");
    lake(dir.path())
        .commit(manifest("hr", "a"), 0)
        .await
        .unwrap();
    assert!(Lake::open_existing(&cfg(dir.path())).await.is_ok());
}

fn lake(dir: &std::path::Path) -> Lake {
    let cfg = LakeConfig {
        url: dir.display().to_string(),
        location: LakeLocation::Local(dir.to_owned()),
        s3: Default::default(),
    };
    Lake::open(&cfg).unwrap()
}

pub(super) fn manifest(source: &str, id: &str) -> Manifest {
    Manifest {
        format: super::manifest::FORMAT,
        source: source.into(),
        seq: 0,
        snapshot_id: id.into(),
        pulled_at: Utc::now(),
        committed_at: Utc::now(),
        tables: vec![TableEntry {
            table: "hr_income".into(),
            files: vec![format!(
                "sources/{source}/snapshots/{id}/hr_income/part-0.parquet"
            )],
            rows: 10,
            problems: 1,
            problems_file: None,
        }],
        freshness_days: 35,
        mode: SnapshotMode::Snapshot,
        queried_file: None,
        clock_note: None,
    }
}

#[tokio::test]
async fn commits_are_sequenced_and_exclusive() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake(dir.path());
    assert_eq!(lake.current_seq("hr").await.unwrap(), 0);
    assert!(lake.snapshot_at("hr", None).await.unwrap().is_none());
    let first = lake.commit(manifest("hr", "a"), 0).await.unwrap();
    assert_eq!(first.seq, 1);
    // Two ingests that both started from commit 1: only one commits.
    let (x, y) = tokio::join!(
        lake.commit(manifest("hr", "b"), 1),
        lake.commit(manifest("hr", "c"), 1)
    );
    assert!(x.is_ok() != y.is_ok(), "exactly one must commit");
    let err = x.err().or(y.err()).unwrap();
    assert!(matches!(err, LakeError::Conflict { seq: 2, .. }), "{err}");
    assert!(err.to_string().contains("nothing was committed"));
    let current = lake.snapshot_at("hr", None).await.unwrap().unwrap();
    assert_eq!(current.seq, 2);
    assert!(current.snapshot_id == "b" || current.snapshot_id == "c");
    // Other sources are independent.
    assert_eq!(lake.current_seq("tax").await.unwrap(), 0);
}

/// Folders no manifest names are removed once old enough; named, recent and
/// unfinished-pull folders stay.
#[tokio::test]
async fn orphaned_snapshot_folders_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake(dir.path());
    let old = Utc::now() - chrono::Duration::days(3);
    let (named, orphan, recent) = (
        snapshot_id(old, ""),
        snapshot_id(old - chrono::Duration::seconds(1), "-lookup"),
        snapshot_id(Utc::now(), ""),
    );
    for id in [&named, &orphan, &recent] {
        let f = dir.path().join(format!(
            "sources/hr/snapshots/{id}/hr_income/part-00000.parquet"
        ));
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, b"x").unwrap();
    }
    lake.commit(manifest("hr", &named), 0).await.unwrap();
    let removed = lake
        .remove_orphans("hr", chrono::Duration::hours(24))
        .await
        .unwrap();
    assert_eq!(removed, 1);
    let left = |id: &str| {
        dir.path()
            .join(format!(
                "sources/hr/snapshots/{id}/hr_income/part-00000.parquet"
            ))
            .exists()
    };
    assert!(left(&named) && left(&recent) && !left(&orphan));
}

#[tokio::test]
async fn time_travel_reads_the_snapshot_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake(dir.path());
    let first = lake.commit(manifest("hr", "a"), 0).await.unwrap();
    // The commit time comes from the store's clock (file times, coarser than ours).
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let between = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let second = lake.commit(manifest("hr", "b"), 1).await.unwrap();
    assert_eq!(
        lake.snapshot_at("hr", Some(between))
            .await
            .unwrap()
            .unwrap()
            .snapshot_id,
        "a"
    );
    assert_eq!(
        lake.snapshot_at("hr", Some(second.committed_at))
            .await
            .unwrap()
            .unwrap()
            .snapshot_id,
        "b"
    );
    let before = first.committed_at - chrono::Duration::seconds(1);
    assert!(lake
        .snapshot_at("hr", Some(before))
        .await
        .unwrap()
        .is_none());
}

/// A manifest naming a file outside its source's folder, or of format 0, is refused
/// when read (a backup would otherwise write, and a check read, outside the lake).
#[test]
fn manifests_name_files_inside_their_source_only() {
    let ok = manifest("hr", "s1");
    let text = serde_json::to_vec(&ok).unwrap();
    assert!(Manifest::parse(&text, "lake", "m.json").is_ok());
    for bad in [
        "../../../pwned.txt",
        "sources/hr/../../etc/passwd",
        "/etc/passwd",
        "sources/tax/snapshots/x/part.parquet",
        "sources/hr//part.parquet",
    ] {
        let mut m = ok.clone();
        m.tables[0].files = vec![bad.into()];
        let e = Manifest::parse(&serde_json::to_vec(&m).unwrap(), "lake", "m.json").unwrap_err();
        assert!(
            e.to_string().contains("not inside its source's folder"),
            "{bad}: {e}"
        );
    }
    let mut zero = serde_json::to_value(&ok).unwrap();
    zero["format"] = serde_json::json!(0);
    let e = Manifest::parse(&serde_json::to_vec(&zero).unwrap(), "lake", "m.json").unwrap_err();
    assert!(e.to_string().contains("format 0"), "{e}");
}
