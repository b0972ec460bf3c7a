//! What an applicant batch file may hold at most, and the words for a file beyond it or
//! without rows: shared by every format's reader ([`super::read`], [`super::xlsx`]).

/// What a batch file may hold at most; beyond it the file is refused (exit 2).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Data rows (Excel's own sheet limit is 1,048,576 rows).
    pub max_rows: usize,
    /// Columns of the header and of any non-empty cell.
    pub max_columns: usize,
    /// Non-empty cells of an XLSX sheet.
    pub max_cells: usize,
    /// Bytes of an XLSX workbook once decompressed, all its parts together.
    pub max_xlsx_uncompressed_bytes: u64,
    /// Parts (files) inside an XLSX workbook.
    pub max_xlsx_parts: usize,
    /// Members of one household; a household declaring more is rejected as a whole
    /// (`invalid_value`). No cap from the command line; the server's is
    /// `[server] max_household_members`.
    pub max_members: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_rows: 1_048_576,
            max_columns: 100,
            max_cells: 16_777_216,
            max_xlsx_uncompressed_bytes: 512 * 1024 * 1024,
            max_xlsx_parts: 1_000,
            max_members: usize::MAX,
        }
    }
}

/// Rows read: each row's number and its cells' text, by column.
pub(super) type Rows = Vec<(u64, Vec<String>)>;

/// Said of a file with more data rows than `limits` allow.
pub(super) fn too_many_rows(limits: &Limits) -> String {
    format!(
        "数据行超过上限{}行，请拆分后分批提交（more than {} data rows: split the batch）",
        limits.max_rows, limits.max_rows
    )
}

/// Characters a cell holds at most: Excel's own limit, so no spreadsheet a clerk made
/// holds more; a file that does was not made by one.
pub const MAX_CELL_CHARS: usize = 32_767;

/// The first cell of `rows` (or the header) holding more than [`MAX_CELL_CHARS`]:
/// its row and 1-based column.
pub(super) fn too_long_cell(header: &[String], rows: &Rows) -> Option<(u64, usize)> {
    let long = |t: &String| t.len() > MAX_CELL_CHARS && t.chars().count() > MAX_CELL_CHARS;
    if let Some(c) = header.iter().position(long) {
        return Some((1, c + 1));
    }
    rows.iter()
        .find_map(|(r, cells)| cells.iter().position(long).map(|c| (*r, c + 1)))
}

/// Said of a file without a data row.
pub(super) const NO_ROWS: &str = "文件中没有申请人数据行（the file has no applicant rows）";
