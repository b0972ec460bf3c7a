//! Memory sizes as people write them in the config and on the command line (`4GiB`,
//! `512MiB`): `[engine] memory_limit` and `--memory-limit`.

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
}
