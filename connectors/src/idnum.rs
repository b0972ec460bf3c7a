//! Resident ID numbers (SPEC §4): validation, check character, 15→18-digit conversion,
//! and masking for anything a person reads.

use std::borrow::Cow;

use chrono::NaiveDate;

use crate::text::fold_trim;

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK: [u8; 11] = *b"10X98765432";

/// Why a text is not a valid resident ID number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Neither 18 nor 15 characters.
    #[error("has {0} characters; a resident ID has 18 (or 15 for a legacy ID)")]
    Length(usize),
    /// A non-digit where a digit must be.
    #[error("contains a character that is not a digit")]
    NotDigits,
    /// The 8 birth-date digits are not a calendar date (the digits are kept for the
    /// program, never shown: masks hide them).
    #[error("the birth date (characters 7 to 14) is not a calendar date")]
    BadDate(String),
    /// The birth date is after the reference date.
    #[error("the birth date (characters 7 to 14) is after the check date")]
    FutureDate(String),
    /// The 18th character does not match the computed check character.
    #[error("check character is {found}, expected {expected}")]
    CheckChar {
        /// the character in the ID
        found: char,
        /// the character the first 17 digits give
        expected: char,
    },
}

/// The check character for the first 17 digits (which must be ASCII digits).
pub fn check_char(first17: &[u8]) -> char {
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    CHECK[(sum % 11) as usize] as char
}

/// Normalises an ID as SPEC §3/§4 say: full-width folding, trimming, `x`→`X`, 15-digit
/// legacy IDs converted; then validates digits, birth date (a real date, not after
/// `today`) and check character. Returns the canonical 18-character ID.
pub fn normalize_id(raw: &str, today: NaiveDate) -> Result<String, IdError> {
    normalized_id(raw, today).map(Cow::into_owned)
}

/// [`normalize_id`], borrowing `raw` when it already is the canonical ID (most are).
pub fn normalized_id(raw: &str, today: NaiveDate) -> Result<Cow<'_, str>, IdError> {
    let folded = fold_trim(raw);
    let s = folded.as_bytes();
    let mut id = [0u8; 18];
    match s.len() {
        18 => {
            if !s[..17].iter().all(u8::is_ascii_digit) {
                return Err(IdError::NotDigits);
            }
            let last = s[17].to_ascii_uppercase();
            if !(last.is_ascii_digit() || last == b'X') {
                return Err(IdError::NotDigits);
            }
            id.copy_from_slice(s);
            id[17] = last;
        }
        15 => {
            if !s.iter().all(u8::is_ascii_digit) {
                return Err(IdError::NotDigits);
            }
            id[..6].copy_from_slice(&s[..6]);
            id[6..8].copy_from_slice(b"19");
            id[8..17].copy_from_slice(&s[6..]);
            id[17] = check_char(&id[..17]) as u8;
        }
        _ => return Err(IdError::Length(folded.chars().count())),
    }
    // Characters 7 to 14 are ASCII digits here.
    let number =
        |r: std::ops::Range<usize>| id[r].iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    let birth = || String::from_utf8_lossy(&id[6..14]).into_owned();
    let date = NaiveDate::from_ymd_opt(number(6..10) as i32, number(10..12), number(12..14))
        .ok_or_else(|| IdError::BadDate(birth()))?;
    if date > today {
        return Err(IdError::FutureDate(birth()));
    }
    let expected = check_char(&id[..17]);
    let found = id[17] as char;
    if found != expected {
        return Err(IdError::CheckChar { found, expected });
    }
    if id[..] == *s {
        return Ok(folded);
    }
    // All bytes are ASCII digits or X.
    Ok(Cow::Owned(String::from_utf8_lossy(&id).into_owned()))
}

/// Masks an ID for people to read: the first 6 and last 4 characters stay
/// (`410184********123X`). Anything that is not 18 characters is masked but for its
/// first 2 characters.
pub fn mask_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() == 18 {
        let mut out: String = chars[..6].iter().collect();
        out.push_str("********");
        out.extend(&chars[14..]);
        out
    } else {
        let keep = chars.len().min(2);
        let mut out: String = chars[..keep].iter().collect();
        out.extend(std::iter::repeat_n('*', chars.len() - keep));
        out
    }
}

/// Masks an account number (bank card, provident-fund account) for staff views: its
/// first six and last four characters stay, as on a bank's own statements
/// (`621700******1234`); one of ten characters or fewer keeps only its last four, and
/// one of four or fewer nothing.
pub fn mask_account(account: &str) -> String {
    let chars: Vec<char> = account.chars().collect();
    let n = chars.len();
    if n > 10 {
        let mut out: String = chars[..6].iter().collect();
        out.extend(std::iter::repeat_n('*', n - 10));
        out.extend(&chars[n - 4..]);
        out
    } else {
        // Four or fewer: nothing of it shows.
        let hidden = if n > 4 { n - 4 } else { n };
        let mut out: String = std::iter::repeat_n('*', hidden).collect();
        out.extend(&chars[hidden..]);
        out
    }
}

/// Masks every ID-like run in free text (a raw record, a parser's or a department's
/// message): 18 characters (17 digits and a digit or X) keep their first 6 and last 4,
/// 15 digits (a legacy ID) their first 6 and last 3. Longer or shorter digit runs (an
/// account number, a phone number) are left as they are.
pub fn mask_ids_in(text: &str) -> std::borrow::Cow<'_, str> {
    replace_ids_in(text, |run| {
        let keep_end = if run.len() == 18 { 4 } else { 3 };
        let mut out = String::with_capacity(run.len());
        out.push_str(&run[..6]);
        out.extend(std::iter::repeat_n('*', run.len() - 6 - keep_end));
        out.push_str(&run[run.len() - keep_end..]);
        out
    })
}

/// `text` with every ID-shaped run (as [`mask_ids_in`] finds them) replaced by
/// `with(run)` — its mask, or its keyed hash where a log must still tell people apart.
pub fn replace_ids_in(text: &str, with: impl Fn(&str) -> String) -> std::borrow::Cow<'_, str> {
    let b = text.as_bytes();
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let mut end = i;
        if end - start == 17 && end < b.len() && matches!(b[end], b'X' | b'x') {
            end += 1;
        }
        // A run glued to letters on either side (`ab123…`) is still masked: only the
        // digits' count decides, so no spelling slips an ID through.
        if matches!(end - start, 15 | 18) {
            runs.push((start, end));
        }
        i = end;
    }
    if runs.is_empty() {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (start, end) in runs {
        out.push_str(&text[last..start]);
        out.push_str(&with(&text[start..end]));
        last = end;
    }
    out.push_str(&text[last..]);
    std::borrow::Cow::Owned(out)
}

/// Masks every long number in text a person wrote (a note): a run of 12 or more digits —
/// full-width digits counted as digits, single spaces or dashes inside it allowed, as
/// people group an ID or a card number (`410122 19700101 6835`, `6222-0212-3456-7890`),
/// an ID's final X included — keeps its first 6 and last 4 digits, the rest starred and
/// the grouping dropped. Shorter numbers (dates, amounts, phone numbers) stay.
pub fn mask_numbers_in(text: &str) -> std::borrow::Cow<'_, str> {
    let chars: Vec<char> = text.chars().collect();
    let digit = |c: char| -> Option<char> {
        match c {
            '0'..='9' => Some(c),
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32),
            _ => None,
        }
    };
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut i = 0;
    while i < chars.len() {
        if digit(chars[i]).is_none() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // The longest run of digits with single separators between them.
        let start = i;
        let mut digits = String::new();
        let mut end = i;
        while i < chars.len() {
            if let Some(d) = digit(chars[i]) {
                digits.push(d);
                i += 1;
                end = i;
            } else if matches!(chars[i], ' ' | '-' | '\u{3000}')
                && i + 1 < chars.len()
                && digit(chars[i + 1]).is_some()
            {
                i += 1;
            } else {
                break;
            }
        }
        if end < chars.len() && matches!(chars[end], 'X' | 'x' | 'Ｘ' | 'ｘ') && digits.len() == 17
        {
            digits.push('X');
            end += 1;
        }
        i = end;
        if digits.chars().count() >= 12 {
            changed = true;
            out.push_str(&mask_account(&digits));
        } else {
            out.extend(&chars[start..end]);
        }
    }
    if changed {
        std::borrow::Cow::Owned(out)
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Numbers typed into a note are masked however they are grouped or written.
    #[test]
    fn long_numbers_in_notes_are_masked() {
        for (typed, shown) in [
            ("身份证 410122197001016835", "身份证 410122********6835"),
            ("账号 6222021234567890123", "账号 622202*********0123"),
            ("410122 19700101 6835 核实", "410122********6835 核实"),
            ("410122-1970-0101-6835", "410122********6835"),
            ("４１０１２２１９７００１０１６８３５", "410122********6835"),
            ("41012219700101683x", "410122********683X"),
            ("卡号 6222 0212 3456 7890", "卡号 622202******7890"),
        ] {
            assert_eq!(mask_numbers_in(typed), shown, "{typed}");
        }
        for kept in [
            "2026-12-03 上门，金额 12,345.60 元",
            "电话 13800138000",
            "第 3 次",
        ] {
            assert_eq!(mask_numbers_in(kept), kept);
        }
    }

    /// Account numbers of every length keep only what a statement shows.
    #[test]
    fn accounts_are_masked_like_statements() {
        assert_eq!(mask_account("6217001234567891234"), "621700*********1234");
        assert_eq!(mask_account("627161846226884541"), "627161********4541");
        assert_eq!(mask_account("1234567890"), "******7890");
        assert_eq!(mask_account("1234"), "****");
        assert_eq!(mask_account(""), "");
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
    }

    /// The SPEC's weights and table give the known check character of a published example.
    #[test]
    fn computes_check_characters() {
        // GB 11643 example: 11010519491231002X.
        assert_eq!(check_char(b"11010519491231002"), 'X');
        assert_eq!(
            normalize_id("11010519491231002X", today()).unwrap(),
            "11010519491231002X"
        );
        assert_eq!(
            normalize_id("11010519491231002x", today()).unwrap(),
            "11010519491231002X"
        );
        assert_eq!(
            normalize_id("110105194912310021", today()),
            Err(IdError::CheckChar {
                found: '1',
                expected: 'X'
            })
        );
    }

    /// A 15-digit legacy ID gains "19" and a computed check character.
    #[test]
    fn converts_legacy_ids() {
        assert_eq!(
            normalize_id("110105491231002", today()).unwrap(),
            "11010519491231002X"
        );
        assert_eq!(
            normalize_id(" １１０１０５４９１２３１００２ ", today()).unwrap(),
            "11010519491231002X"
        );
    }

    /// Impossible and future birth dates are refused, as are wrong lengths and letters.
    #[test]
    fn refuses_bad_dates_and_shapes() {
        let mut bad = b"41018420260230123".to_vec();
        let c = check_char(&bad);
        bad.push(c as u8);
        let bad = String::from_utf8(bad).unwrap();
        assert_eq!(
            normalize_id(&bad, today()),
            Err(IdError::BadDate("20260230".into()))
        );
        let mut fut = b"41018420261123123".to_vec();
        let c = check_char(&fut);
        fut.push(c as u8);
        let fut = String::from_utf8(fut).unwrap();
        assert_eq!(
            normalize_id(&fut, today()),
            Err(IdError::FutureDate("20261123".into()))
        );
        // Born on the reference date itself is not in the future.
        let mut on = b"41018420261122123".to_vec();
        let c = check_char(&on);
        on.push(c as u8);
        assert!(normalize_id(std::str::from_utf8(&on).unwrap(), today()).is_ok());
        assert_eq!(
            normalize_id("4101842026", today()),
            Err(IdError::Length(10))
        );
        assert_eq!(
            normalize_id("41018A194912310021", today()),
            Err(IdError::NotDigits)
        );
        assert_eq!(normalize_id("", today()), Err(IdError::Length(0)));
    }

    /// Masks keep region and the last four characters only.
    #[test]
    fn masks_ids() {
        assert_eq!(mask_id("41018419900101123X"), "410184********123X");
        assert_eq!(mask_id("abc"), "ab*");
    }

    /// ID-like runs are masked wherever they sit in a text; other digit runs are not.
    #[test]
    fn masks_ids_in_text() {
        assert_eq!(
            mask_ids_in("41018419900101123X,张三,2026-01,wage,1"),
            "410184********123X,张三,2026-01,wage,1"
        );
        assert_eq!(
            mask_ids_in("invalid type: integer `410184199001011234`, expected a string"),
            "invalid type: integer `410184********1234`, expected a string"
        );
        assert_eq!(
            mask_ids_in("cursor=11010519491231002x"),
            "cursor=110105********002x"
        );
        assert_eq!(
            mask_ids_in("legacy 110105491231002 id"),
            "legacy 110105******002 id"
        );
        // Account and phone numbers, and the check date, are kept.
        let other = "account 6222021234567890123 phone 13800138000 on 2026-11-22";
        assert_eq!(mask_ids_in(other), other);
        assert!(matches!(mask_ids_in(other), std::borrow::Cow::Borrowed(_)));
    }
}
