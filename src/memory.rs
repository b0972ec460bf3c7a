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

/// The smallest limit accepted: below, no rule can run.
pub const MIN_LIMIT: u64 = 64 << 20;

/// A memory size that cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("内存上限 {given:?} 无法识别：{why}（memory limit {given:?}: {why}; e.g. 4GiB, 512MiB）")]
pub struct BadSize {
    /// What was given.
    pub given: String,
    /// Why it is refused.
    pub why: String,
}

/// Reads a size: a whole number with an optional unit — `KiB`/`MiB`/`GiB`/`TiB` (or
/// `K`/`M`/`G`/`T`, the same, powers of 1,024), `KB`/`MB`/`GB`/`TB` (powers of 1,000),
/// `B` or none for bytes; case-insensitive, spaces allowed. At least [`MIN_LIMIT`].
pub fn parse_size(given: &str) -> Result<u64, BadSize> {
    let bad = |why: &str| BadSize {
        given: given.to_owned(),
        why: why.to_owned(),
    };
    let s = given.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return Err(bad("应以数字开头（must start with a number）"));
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| bad("数字过大（the number is too large）"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => {
            return Err(bad(
                "单位应为 KiB、MiB、GiB、TiB（unit must be KiB, MiB, GiB or TiB）",
            ))
        }
    };
    let bytes = n
        .checked_mul(scale)
        .ok_or_else(|| bad("数字过大（the number is too large）"))?;
    if bytes < MIN_LIMIT {
        return Err(bad("至少 64MiB（at least 64MiB）"));
    }
    Ok(bytes)
}

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
    fn sizes_are_read_as_people_write_them() {
        assert_eq!(parse_size("4GiB"), Ok(4 << 30));
        assert_eq!(parse_size(" 4 gib "), Ok(4 << 30));
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("4GB"), Ok(4_000_000_000));
        assert_eq!(parse_size("1TiB"), Ok(1 << 40));
        assert_eq!(parse_size("268435456"), Ok(256 << 20));
        for bad in [
            "",
            "GiB",
            "4 GiBs",
            "-4GiB",
            "4.5GiB",
            "1MiB",
            "0",
            "99999999999999999999",
        ] {
            let e = parse_size(bad).unwrap_err();
            assert_eq!(e.given, bad);
            assert!(e.to_string().contains("memory limit"), "{e}");
        }
        assert!(parse_size("1MiB").unwrap_err().why.contains("64MiB"));
        assert!(parse_size("99999999999TiB")
            .unwrap_err()
            .why
            .contains("too large"));
    }

    #[test]
    fn the_default_is_half_the_machine() {
        let half = default_limit().expect("MemTotal on Linux");
        assert!(half >= MIN_LIMIT);
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
