//! Department field and code mappings (SPEC §9): a department names its fields and codes
//! its values its own way; a mapping turns them into canonical columns and values before
//! validation. A column not listed under `fields` is expected under its canonical name;
//! a value not listed under `codes` is taken as it is (so an unknown department code
//! becomes a malformed record, never a guess).

use std::collections::{BTreeMap, HashMap};

use crate::schema::{self, ColumnType, TableSchema};
use crate::text::fold_trim;

/// The mappings of one source, as written in the deployment config:
/// `fields[table][canonical column] = department field` and
/// `codes[table][canonical column][department code] = canonical value`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceMapping {
    /// Field names per table.
    #[serde(default)]
    pub fields: BTreeMap<String, BTreeMap<String, String>>,
    /// Value codes per table and column.
    #[serde(default)]
    pub codes: BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>,
}

/// A mapping that does not fit the canonical tables; `key` is its path in the config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {why}")]
pub struct MappingError {
    /// e.g. `fields.hr_income.amout`.
    pub key: String,
    /// Why it is refused.
    pub why: String,
}

/// One table's mapping, resolved against its schema: per canonical column (in schema
/// order) the department field name and the code table.
#[derive(Debug, Clone)]
pub struct TableMapping {
    fields: Vec<String>,
    codes: Vec<HashMap<String, String>>,
}

impl TableMapping {
    /// The identity mapping: canonical names, no codes.
    pub fn identity(table: &TableSchema) -> Self {
        TableMapping {
            fields: table.columns.iter().map(|c| c.name.clone()).collect(),
            codes: vec![HashMap::new(); table.columns.len()],
        }
    }

    /// The department field that carries canonical column `i`.
    pub fn field(&self, i: usize) -> &str {
        &self.fields[i]
    }

    /// The canonical value of department value `raw` in column `i`, when the mapping
    /// lists it (compared after trimming and full-width folding).
    pub fn code(&self, i: usize, raw: &str) -> Option<&str> {
        let codes = &self.codes[i];
        if codes.is_empty() {
            return None;
        }
        codes.get(fold_trim(raw).as_ref()).map(String::as_str)
    }

    /// Whether any column has codes.
    pub fn has_codes(&self) -> bool {
        self.codes.iter().any(|c| !c.is_empty())
    }
}

impl SourceMapping {
    /// Checks every table, column and value against the canonical schemas; `tables` are
    /// the tables the source delivers (a mapping for another table is an error).
    pub fn validate(&self, tables: &[String]) -> Result<(), MappingError> {
        let known = |section: &str, t: &str| -> Result<&'static TableSchema, MappingError> {
            let schema = schema::table(t).ok_or_else(|| MappingError {
                key: format!("{section}.{t}"),
                why: "not a canonical table".into(),
            })?;
            if !tables.iter().any(|x| x == t) {
                return Err(MappingError {
                    key: format!("{section}.{t}"),
                    why: "this source does not deliver that table (see its `tables`)".into(),
                });
            }
            Ok(schema)
        };
        for (t, fields) in &self.fields {
            let schema = known("fields", t)?;
            let mut seen: HashMap<String, &str> = HashMap::new();
            for (col, field) in fields {
                if schema.column(col).is_none() {
                    return Err(MappingError {
                        key: format!("fields.{t}.{col}"),
                        why: format!("{t} has no column {col}"),
                    });
                }
                if field.trim().is_empty() {
                    return Err(MappingError {
                        key: format!("fields.{t}.{col}"),
                        why: "the department field name is empty".into(),
                    });
                }
                if let Some(other) = seen.insert(field.to_lowercase(), col) {
                    return Err(MappingError {
                        key: format!("fields.{t}.{col}"),
                        why: format!("department field \"{field}\" is already mapped to {other}"),
                    });
                }
            }
        }
        for (t, columns) in &self.codes {
            let schema = known("codes", t)?;
            for (col, codes) in columns {
                let Some(spec) = schema.column(col) else {
                    return Err(MappingError {
                        key: format!("codes.{t}.{col}"),
                        why: format!("{t} has no column {col}"),
                    });
                };
                for (code, value) in codes {
                    if spec.ty == ColumnType::Enum && !spec.values.iter().any(|v| v == value) {
                        return Err(MappingError {
                            key: format!("codes.{t}.{col}.\"{code}\""),
                            why: format!(
                                "\"{value}\" is not a value of {t}.{col} (expected one of {})",
                                spec.values.join(", ")
                            ),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// The resolved mapping of one table.
    pub fn table(&self, table: &TableSchema) -> TableMapping {
        let fields = self.fields.get(&table.table);
        let codes = self.codes.get(&table.table);
        TableMapping {
            fields: table
                .columns
                .iter()
                .map(|c| {
                    fields
                        .and_then(|f| f.get(&c.name))
                        .cloned()
                        .unwrap_or_else(|| c.name.clone())
                })
                .collect(),
            codes: table
                .columns
                .iter()
                .map(|c| {
                    codes
                        .and_then(|m| m.get(&c.name))
                        .map(|m| {
                            m.iter()
                                .map(|(k, v)| (fold_trim(k).into_owned(), v.clone()))
                                .collect()
                        })
                        .unwrap_or_default()
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping() -> SourceMapping {
        let mut m = SourceMapping::default();
        m.fields.insert(
            "hr_income".into(),
            [("id_number", "SFZH"), ("amount", "FFJE")]
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .into(),
        );
        m.codes.insert(
            "hr_income".into(),
            [(
                "kind".to_owned(),
                [("01", "wage"), ("02", "pension")]
                    .map(|(a, b)| (a.to_owned(), b.to_owned()))
                    .into(),
            )]
            .into(),
        );
        m
    }

    #[test]
    fn resolves_fields_and_codes() {
        let t = schema::table("hr_income").unwrap();
        let r = mapping().table(t);
        let i = |n: &str| t.columns.iter().position(|c| c.name == n).unwrap();
        assert_eq!(r.field(i("id_number")), "SFZH");
        assert_eq!(r.field(i("period")), "period");
        assert_eq!(r.code(i("kind"), " 01 "), Some("wage"));
        assert_eq!(r.code(i("kind"), "99"), None);
        assert_eq!(r.code(i("period"), "01"), None);
        assert!(mapping().validate(&["hr_income".into()]).is_ok());
    }

    #[test]
    fn refuses_what_does_not_fit() {
        let tables = ["hr_income".to_owned()];
        let mut m = mapping();
        m.fields
            .get_mut("hr_income")
            .unwrap()
            .insert("amout".into(), "X".into());
        assert_eq!(
            m.validate(&tables).unwrap_err().to_string(),
            "fields.hr_income.amout: hr_income has no column amout"
        );
        let mut m = mapping();
        m.codes
            .get_mut("hr_income")
            .unwrap()
            .get_mut("kind")
            .unwrap()
            .insert("03".into(), "salary".into());
        assert!(m.validate(&tables).unwrap_err().to_string().starts_with(
            "codes.hr_income.kind.\"03\": \"salary\" is not a value of hr_income.kind"
        ));
        let mut m = mapping();
        m.fields
            .get_mut("hr_income")
            .unwrap()
            .insert("payer".into(), "sfzh".into());
        assert!(m
            .validate(&tables)
            .unwrap_err()
            .why
            .contains("already mapped"));
        let err = mapping().validate(&["tax_income".into()]).unwrap_err();
        assert_eq!(err.key, "fields.hr_income");
    }
}
