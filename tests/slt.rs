//! sqllogictest runner: every `tests/slt/*.slt` file runs against a fresh session with
//! all canonical and input tables registered empty and every pipeline view created; the
//! file inserts its own rows and pins the views' answers.

use std::path::PathBuf;

use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::SessionContext;
use sqllogictest::{DBOutput, DefaultColumnType};

struct Db {
    ctx: SessionContext,
}

#[derive(Debug)]
struct DbError(String);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DbError {}

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for Db {
    type Error = DbError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DbError> {
        let frame = self
            .ctx
            .sql(sql)
            .await
            .map_err(|e| DbError(e.to_string()))?;
        let is_query = sql
            .trim_start()
            .get(..6)
            .is_some_and(|s| s.eq_ignore_ascii_case("select"))
            || sql
                .trim_start()
                .get(..4)
                .is_some_and(|s| s.eq_ignore_ascii_case("with"));
        let batches = frame.collect().await.map_err(|e| DbError(e.to_string()))?;
        if !is_query {
            return Ok(DBOutput::StatementComplete(0));
        }
        let options = FormatOptions::default().with_null("NULL");
        let mut rows = Vec::new();
        let mut width = 0;
        for b in &batches {
            width = b.num_columns();
            let fmts: Vec<ArrayFormatter<'_>> = b
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<_, _>>()
                .map_err(|e| DbError(e.to_string()))?;
            for r in 0..b.num_rows() {
                rows.push(fmts.iter().map(|f| f.value(r).to_string()).collect());
            }
        }
        Ok(DBOutput::Rows {
            types: vec![DefaultColumnType::Any; width],
            rows,
        })
    }

    async fn shutdown(&mut self) {}
}

#[tokio::main]
async fn main() {
    // Read at run time (cargo sets it for test runs too): a binary reused through a
    // shared target folder looks in the checkout that runs it.
    let root = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned());
    let dir = PathBuf::from(root).join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/slt exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    let filter = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let mut failed = 0;
    let mut ran = 0;
    for f in &files {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if filter.as_deref().is_some_and(|flt| !name.contains(flt)) {
            continue;
        }
        ran += 1;
        let mut runner = sqllogictest::Runner::new(|| async {
            let ctx = hedui::engine::empty_session()
                .await
                .map_err(|e| DbError(e.to_string()))?;
            Ok(Db { ctx })
        });
        match runner.run_file_async(f).await {
            Ok(()) => println!("slt {name} ... ok"),
            Err(e) => {
                failed += 1;
                println!("slt {name} ... FAILED\n{e}");
            }
        }
    }
    println!(
        "slt: {ran} files run, {failed} failed, {} filtered out",
        files.len() - ran
    );
    // Success means something was tested: no file at all, or a filter that matches
    // none, is a failure, never a silent pass (run one Rust test with
    // `cargo test --test NAME FILTER` so the filter does not reach this runner).
    if ran == 0 {
        match &filter {
            Some(f) => println!("slt: no .slt file name contains {f:?}: nothing was run"),
            None => println!("slt: no .slt file in {}", dir.display()),
        }
        std::process::exit(1);
    }
    if failed > 0 {
        std::process::exit(1);
    }
}
