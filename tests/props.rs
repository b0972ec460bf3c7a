//! Property tests: the applicant loader never panics on arbitrary bytes, and every data
//! row ends up in an accepted household or its household is rejected with a reason.

use std::collections::HashSet;
use std::path::Path;

use chrono::NaiveDate;
use hedui::applicants::{read_batch, validate};
use hedui::policy::Policy;
use proptest::prelude::*;

fn policy() -> Policy {
    // The generated city's policy (complete [defaults]) plus a province-wide standard.
    Policy::parse(
        &format!("{}\n[[standard]]\nregion = \"410000\"\neffective_from = 2020-01-01\nurban_monthly = \"700\"\nrural_monthly = \"500\"\n", hedui::generate::POLICY),
        "p.toml",
    )
    .unwrap()
}

fn d() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
}

proptest! {
    /// Arbitrary bytes under any batch extension never panic the reader.
    #[test]
    fn batch_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600), ext in prop::sample::select(vec!["csv", "xlsx", "jsonl", "bin"])) {
        let name = format!("batch.{ext}");
        if let Ok(raw) = read_batch(Path::new(&name), &bytes) {
            let _ = validate(&name, raw, &policy(), d());
        }
    }

    /// Every row of a CSV batch with random cells is accounted for: its household is
    /// accepted with the row's member, or rejected with at least one reason.
    #[test]
    fn every_row_is_accepted_or_rejected(cells in proptest::collection::vec(proptest::collection::vec(
        prop::sample::select(vec!["H1", "H2", "", "410101", "410184x", "城市", "rural", "低保", "tekun", "A", "11010519491231002X", "110105491231002", "11010519491231002", "张三", " ", "本人", "spouse", "x"]), 8), 0..12)) {
        let mut text = String::from("household_id,region_code,area_type,aid_type,authorization_id,id_number,name,relation\n");
        for row in &cells {
            text.push_str(&row.join(","));
            text.push('\n');
        }
        let Ok(raw) = read_batch(Path::new("b.csv"), text.as_bytes()) else {
            // Only a batch without data rows is refused as a whole.
            prop_assert!(cells.is_empty());
            return Ok(());
        };
        let batch = validate("b.csv", raw, &policy(), d());
        let accepted_rows: HashSet<u64> = batch.households.iter().flat_map(|h| h.members.iter().map(|m| m.row)).collect();
        let rejected: HashSet<&str> = batch.rejected_households.iter().map(|h| h.household_id.as_str()).collect();
        for (i, row) in cells.iter().enumerate() {
            let hid = row[0].trim();
            // Rows as a spreadsheet shows them: the header is row 1.
            prop_assert!(accepted_rows.contains(&(i as u64 + 2)) || rejected.contains(hid), "row {} lost", i + 2);
        }
        for h in &batch.households {
            prop_assert!(!rejected.contains(h.household_id.as_str()));
        }
    }
}
