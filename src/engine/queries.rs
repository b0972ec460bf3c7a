//! The queries a run asks of the pipelines, named once: the flags, the household
//! figures, the table of the flags found, and the evidence joins (one per source table,
//! of the flags' references with the table). The planned pipelines plan exactly these.

use hedui_connectors::schema::{self, ColumnType, SRC_FILE, SRC_ROW};

/// The query of every flag, with its evidence references.
pub const FLAG_ROWS: &str = "SELECT * FROM flag_rows";

/// The query of each household's figures and verdict.
pub const HOUSEHOLD_RESULTS: &str = "SELECT * FROM household_results";

/// The table of the flags found by a run, which the evidence queries join with.
pub const FLAGS_FOUND: &str = "flags_found";

/// The pseudo-table of applicant rows used as evidence of batch rules.
pub const APPLICANTS_TABLE: &str = "applicants";

/// The evidence queries: per table (its label in flags, the table, its canonical
/// columns), the join of the flags' references with the table — each cited record's
/// canonical columns, `src_file`, `src_row`, then the household citing it (a record
/// cited by two households comes twice, once for each). The references come first: with
/// no statistics to go by (the flags read back from a large run's files), the engine
/// builds its hash table on the left side — the references, not the table.
pub fn evidence_queries() -> Vec<(String, String, Vec<(String, ColumnType)>)> {
    let mut tables: Vec<(String, String, Vec<(String, ColumnType)>)> = schema::tables()
        .iter()
        .map(|t| {
            (
                t.table.clone(),
                t.table.clone(),
                t.columns.iter().map(|c| (c.name.clone(), c.ty)).collect(),
            )
        })
        .collect();
    tables.push((
        APPLICANTS_TABLE.into(),
        "members".into(),
        ["household_id", "id_number", "name", "relation"]
            .iter()
            .map(|c| (c.to_string(), ColumnType::Text))
            .collect(),
    ));
    tables
        .into_iter()
        .map(|(label, table, columns)| {
            let cols: Vec<String> = columns.iter().map(|(c, _)| format!("t.{c}")).collect();
            let sql = format!(
                "SELECT {}, t.{SRC_FILE}, t.{SRC_ROW}, e.household_id AS cited_by \
                 FROM (SELECT DISTINCT household_id, ev_file, ev_row FROM {FLAGS_FOUND} WHERE ev_table = '{label}') e \
                 JOIN {table} t ON t.{SRC_FILE} = e.ev_file AND t.{SRC_ROW} = e.ev_row",
                cols.join(", ")
            );
            (label, sql, columns)
        })
        .collect()
}

/// The tables the evidence queries read: every source table, the members and
/// [`FLAGS_FOUND`].
pub fn tables_read() -> Vec<String> {
    schema::tables()
        .iter()
        .map(|t| t.table.clone())
        .chain(["members".to_owned(), FLAGS_FOUND.to_owned()])
        .collect()
}
