//! Text at the edge: full-width folding and trimming (SPEC §3), and decoding of
//! text files that may be UTF-8 (with or without BOM) or GBK.

use std::borrow::Cow;

/// Folds full-width forms (U+FF01–U+FF5E) and the ideographic space (U+3000) to
/// their ASCII forms, then trims surrounding whitespace.
pub fn fold_trim(s: &str) -> Cow<'_, str> {
    if s.chars()
        .all(|c| c.is_ascii() || !(is_fullwidth(c) || c == '\u{3000}'))
    {
        let t = s.trim();
        return if t.len() == s.len() {
            Cow::Borrowed(s)
        } else {
            Cow::Owned(t.to_owned())
        };
    }
    let folded: String = s
        .chars()
        .map(|c| {
            if c == '\u{3000}' {
                ' '
            } else if is_fullwidth(c) {
                // U+FF01..=U+FF5E map to U+0021..=U+007E.
                char::from_u32(c as u32 - 0xFF01 + 0x21).unwrap_or(c)
            } else {
                c
            }
        })
        .collect();
    Cow::Owned(folded.trim().to_owned())
}

fn is_fullwidth(c: char) -> bool {
    ('\u{FF01}'..='\u{FF5E}').contains(&c)
}

/// The encoding a text file was found to be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    /// UTF-8 without a byte-order mark.
    Utf8,
    /// UTF-8 starting with the EF BB BF byte-order mark.
    Utf8Bom,
    /// GBK (decoded as GB18030, its superset).
    Gbk,
}

impl std::fmt::Display for TextEncoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TextEncoding::Utf8 => "UTF-8",
            TextEncoding::Utf8Bom => "UTF-8 with BOM",
            TextEncoding::Gbk => "GBK",
        })
    }
}

/// Decodes a text file: UTF-8 with BOM, valid UTF-8, else GBK. Returns `None` when the
/// bytes are neither (a binary file, or another encoding) — the caller reports it.
pub fn decode_text(bytes: &[u8]) -> Option<(Cow<'_, str>, TextEncoding)> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return std::str::from_utf8(rest)
            .ok()
            .map(|s| (Cow::Borrowed(s), TextEncoding::Utf8Bom));
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Some((Cow::Borrowed(s), TextEncoding::Utf8));
    }
    encoding_rs::GBK
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(|s| (Cow::Owned(s.into_owned()), TextEncoding::Gbk))
}

/// For text that is neither UTF-8 nor GBK as a whole, though most of its lines are one of
/// them (a row pasted from a file of the other encoding, one corrupted row): the first
/// line, from 1, not in the encoding most lines are in, and that encoding. `None` when
/// the bytes are not mostly text of one encoding (a binary file).
pub fn first_foreign_line(bytes: &[u8]) -> Option<(usize, TextEncoding)> {
    let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    let utf8 = |l: &[u8]| std::str::from_utf8(l).is_ok();
    let gbk = |l: &[u8]| {
        encoding_rs::GBK
            .decode_without_bom_handling_and_without_replacement(l)
            .is_some()
    };
    let (u, g) = lines.iter().fold((0, 0), |(u, g), l| {
        (u + usize::from(utf8(l)), g + usize::from(gbk(l)))
    });
    let (enc, good): (TextEncoding, &dyn Fn(&[u8]) -> bool) = if g >= u {
        (TextEncoding::Gbk, &gbk)
    } else {
        (TextEncoding::Utf8, &utf8)
    };
    let bad = lines.iter().filter(|l| !good(l)).count();
    if lines.len() < 2 || bad * 2 >= lines.len() {
        return None;
    }
    lines.iter().position(|l| !good(l)).map(|i| (i + 1, enc))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GBK file with one row that is not GBK names that row; binary names none.
    #[test]
    fn names_the_line_in_another_encoding() {
        let mut bytes = encoding_rs::GBK
            .encode("申请编号,姓名\nSQ1,张三\n")
            .0
            .into_owned();
        bytes.extend_from_slice(b"SQ2,\xFF\xFE\x80\n");
        bytes.extend_from_slice(&encoding_rs::GBK.encode("SQ3,王五\nSQ4,赵六\n").0);
        assert!(decode_text(&bytes).is_none());
        assert_eq!(first_foreign_line(&bytes), Some((3, TextEncoding::Gbk)));
        assert_eq!(
            first_foreign_line(&[0x80, 0xFF, 0xFF, 0x00, 0x81, 0xFE]),
            None
        );
    }

    /// Full-width letters, digits and the ideographic space fold to ASCII before trimming.
    #[test]
    fn folds_fullwidth_then_trims() {
        assert_eq!(fold_trim("\u{3000}４１０１８４ｘ "), "410184x");
        assert_eq!(fold_trim("  张三 "), "张三");
        assert_eq!(fold_trim("ａｂｃ！～"), "abc!~");
        assert_eq!(fold_trim("plain"), "plain");
    }

    /// UTF-8, UTF-8 with BOM and GBK bytes are told apart and decoded; binary is refused.
    #[test]
    fn detects_encodings() {
        let (s, e) = decode_text("姓名,身份证号".as_bytes()).unwrap();
        assert_eq!((s.as_ref(), e), ("姓名,身份证号", TextEncoding::Utf8));
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice("申请编号".as_bytes());
        let (s, e) = decode_text(&bom).unwrap();
        assert_eq!((s.as_ref(), e), ("申请编号", TextEncoding::Utf8Bom));
        let (gbk, _, _) = encoding_rs::GBK.encode("姓名,张三");
        let (s, e) = decode_text(&gbk).unwrap();
        assert_eq!((s.as_ref(), e), ("姓名,张三", TextEncoding::Gbk));
        assert!(decode_text(&[0x80, 0xFF, 0xFF, 0x00, 0x81]).is_none());
    }
}

/// Line numbers of byte offsets into one text, asked for in increasing order (each
/// record of a CSV file in turn): the line a text editor or a spreadsheet shows.
pub struct Lines<'a> {
    text: &'a [u8],
    at: usize,
    line: u64,
}

impl<'a> Lines<'a> {
    /// Counts over `text`, from line 1.
    pub fn new(text: &'a str) -> Lines<'a> {
        Lines {
            text: text.as_bytes(),
            at: 0,
            line: 1,
        }
    }

    /// The line of the first character at or after byte `offset` that does not end a
    /// line (a reader's record position can stand before the empty lines it skipped).
    pub fn line_of(&mut self, offset: u64) -> u64 {
        let mut to = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        while to < self.text.len() && matches!(self.text[to], b'\n' | b'\r') {
            to += 1;
        }
        if to > self.at {
            self.line += self.text[self.at..to]
                .iter()
                .filter(|b| **b == b'\n')
                .count() as u64;
            self.at = to;
        }
        self.line
    }
}
