//! What an account may be called and protected by: names, roles, region prefixes and
//! passwords checked once for the command line and the admin page alike, and passwords
//! hashed with Argon2id (RustCrypto `argon2`, its default parameters: 19 MiB, two
//! passes — about 30 ms here, run off the async threads by the server).

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;

/// Characters a password has at least.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Roles an account may have (systems use tokens).
pub const ROLES: [&str; 3] = ["staff", "auditor", "admin"];

/// Account `name` as typed, trimmed, or what is wrong with it (Chinese first): 1–64
/// letters, digits, `.`, `_`, `-` (Chinese names too), nothing else — no spaces, no `:`
/// (the audit actor is `user:NAME`).
pub fn account_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    let fits = |c: char| c.is_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.chars().count() > 64 || !name.chars().all(fits) {
        return Err(format!(
            "账户名“{name}”无效：应为 1–64 个字母、数字、汉字或 . _ -（an account name is 1–64 letters, digits, . _ -）"
        ));
    }
    Ok(name.to_owned())
}

/// `role` if an account may have it.
pub fn account_role(role: &str) -> Result<String, String> {
    let role = role.trim();
    if ROLES.contains(&role) {
        Ok(role.to_owned())
    } else {
        Err(format!(
            "角色“{role}”无效：应为 staff（工作人员）、auditor（审计员）或 admin（管理员）（role must be staff, auditor or admin）"
        ))
    }
}

/// Region-code prefixes from a comma- or space-separated list: each a province (2
/// digits), a prefecture (4) or a county (6), at least one.
pub fn account_regions(text: &str) -> Result<Vec<String>, String> {
    let mut regions: Vec<String> = Vec::new();
    for r in text
        .split([',', ' ', '，', '、'])
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        if !matches!(r.len(), 2 | 4 | 6) || !r.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "地区“{r}”无效：应为省（2 位，如 41）、市（4 位，如 4101）或县区（6 位，如 410102）的行政区划代码（a region is a 2-, 4- or 6-digit region code, e.g. 41, 4101, 410102）"
            ));
        }
        if !regions.iter().any(|x| x == r) {
            regions.push(r.to_owned());
        }
    }
    if regions.is_empty() {
        return Err("请至少填写一个地区，例如 4101（give at least one region, e.g. 4101）".into());
    }
    Ok(regions)
}

/// The Argon2id hash (a PHC string) of `password`, or what is wrong with it.
pub fn hash_password(password: &str) -> Result<String, String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "密码太短：至少 {MIN_PASSWORD_CHARS} 个字符（a password has at least {MIN_PASSWORD_CHARS} characters）"
        ));
    }
    if password.trim() != password {
        return Err("密码首尾不能有空格（a password does not begin or end with a space）".into());
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| format!("无法生成密码散列（cannot hash the password）: {e}"))
}

/// Whether `password` is the one `phc` is the hash of (a malformed hash matches none).
pub fn password_matches(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash to verify against when there is no account, so that a wrong name takes as
/// long as a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy-password-never-used").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashes are Argon2id and salted; only the right password matches.
    #[test]
    fn passwords_are_argon2id_and_checked() {
        let a = hash_password("correct horse").expect("hash");
        let b = hash_password("correct horse").expect("hash");
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "salted");
        assert!(password_matches("correct horse", &a));
        assert!(!password_matches("correct hors", &a));
        assert!(!password_matches("correct horse", "not a hash"));
        assert!(hash_password("short").unwrap_err().contains("密码太短"));
    }

    /// Names, roles and regions as a tired admin types them.
    #[test]
    fn names_roles_and_regions() {
        assert_eq!(account_name(" 王丽 ").as_deref(), Ok("王丽"));
        assert!(account_name("wang li").is_err());
        assert!(account_name("user:x").is_err());
        assert!(account_name("").is_err());
        assert!(account_role("system").is_err());
        assert_eq!(
            account_regions("4101，4102 4101").unwrap(),
            vec!["4101", "4102"]
        );
        assert!(account_regions("41a")
            .unwrap_err()
            .contains("地区“41a”无效"));
        assert!(account_regions(" , ").is_err());
    }
}
