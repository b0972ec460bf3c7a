//! The memory DataFusion may use for one process's checks (`--memory-limit`, `[engine]
//! memory_limit`): a pool shared fairly by the operators that can spill (sorts,
//! aggregations, joins' probe sides), with spill files in the OS temporary folder.
//! Without a limit, half of this machine's memory: a check on a 24 GiB machine never
//! takes the machine down with it.
//!
//! The pool governs DataFusion's operators; the batch, the results and the output
//! writers are outside it (see docs/PERFORMANCE.md for what a run's peak is made of).

use std::sync::Arc;

use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};

/// Half of this machine's memory (`MemTotal` of /proc/meminfo), if it can be read.
pub fn default_limit() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some((kib << 10) / 2)
}

/// A DataFusion runtime whose operators share `limit` bytes (the default when `None`),
/// spilling to the OS temporary folder beyond it.
pub fn runtime(limit: Option<u64>) -> Arc<RuntimeEnv> {
    let mut builder = RuntimeEnvBuilder::new().with_disk_manager_builder(
        DiskManagerBuilder::default().with_mode(DiskManagerMode::OsTmpDirectory),
    );
    if let Some(bytes) = limit.or_else(default_limit) {
        let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
        builder = builder.with_memory_pool(Arc::new(FairSpillPool::new(bytes)));
    }
    // Building a runtime from these settings cannot fail (no custom object store or
    // cache); if it ever did, the default runtime is still sound.
    builder.build_arc().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_half_the_machine() {
        let half = default_limit().expect("MemTotal on Linux");
        assert!(half >= crate::config::size::MIN_LIMIT);
        let pool = runtime(None).memory_pool.clone();
        assert!(
            matches!(pool.memory_limit(), datafusion::execution::memory_pool::MemoryLimit::Finite(n) if n as u64 == half)
        );
        let pool = runtime(Some(1 << 30)).memory_pool.clone();
        assert!(
            matches!(pool.memory_limit(), datafusion::execution::memory_pool::MemoryLimit::Finite(n) if n == 1 << 30)
        );
    }
}
