//! Property tests: the ID parser and the source loaders never panic on arbitrary input,
//! and every source record is either loaded or reported.

use chrono::NaiveDate;
use hedui_connectors::files::load_csv_text;
use hedui_connectors::idnum::{check_char, normalize_id};
use hedui_connectors::schema;
use hedui_connectors::validate::TableBuilder;
use proptest::prelude::*;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
}

proptest! {
    /// Arbitrary text never panics the ID parser.
    #[test]
    fn id_parser_never_panics(s in ".{0,40}") {
        let _ = normalize_id(&s, today());
    }

    /// Any valid ID is accepted unchanged, and its legacy 15-digit form converts back to it.
    #[test]
    fn valid_ids_round_trip(region in 110000u32..659999, days in 0i64..36_000, seq in 0u32..999) {
        let birth = NaiveDate::from_ymd_opt(1920, 1, 1).unwrap() + chrono::Days::new(days as u64);
        prop_assume!(birth <= today());
        let mut id = format!("{region}{}{seq:03}", birth.format("%Y%m%d"));
        id.push(check_char(id.as_bytes()));
        prop_assert_eq!(normalize_id(&id, today()), Ok(id.clone()));
        if (1900..2000).contains(&birth.format("%Y").to_string().parse::<i32>().unwrap()) {
            let legacy = format!("{}{}", &id[..6], &id[8..17]);
            prop_assert_eq!(normalize_id(&legacy, today()), Ok(id.clone()));
        }
    }

    /// Every line of a CSV body is one record (no quotes, no line breaks inside a
    /// field), so the test counts the records itself: each one is loaded or reported,
    /// none lost, none invented — counted from the input, not from the loader's counter.
    #[test]
    fn csv_loader_accounts_for_every_row(body in proptest::collection::vec(
        proptest::collection::vec(prop::sample::select(vec![
            "11010519491231002X", "110105194912310021", "2026-01", "2026-13", "wage", "salary",
            "3000.50", "-1", "N/A", "1.2万", "", " ", "C1", "residential", "80", "1.5",
            "2019-05-04", "2026-02-30", "工商银行", "001", "deposit", "x",
        ]), 0..9),
        0..20,
    )) {
        let lines: Vec<String> = body.iter().map(|cells| cells.join(",")).collect();
        // The CSV reader skips empty lines; every other line is one record.
        let records = lines.iter().filter(|l| !l.is_empty()).count();
        for name in ["hr_income", "property", "financial"] {
            let t = schema::table(name).unwrap();
            let header: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
            let text = format!("{}\n{}", header.join(","), lines.join("\n"));
            let mut b = TableBuilder::new(t, today());
            let _ = load_csv_text(&mut b, &text, "f.csv");
            let (batches, problems, _) = b.finish().unwrap();
            let ok: usize = batches.iter().map(|b| b.num_rows()).sum();
            prop_assert_eq!(ok + problems.len(), records, "{}", name);
            // A reported record names a row that exists in the input, as a spreadsheet
            // numbers it (the header is row 1).
            for p in &problems {
                prop_assert!(p.row >= 2 && p.row as usize <= lines.len() + 1, "row {}", p.row);
            }
        }
    }

    /// Arbitrary bytes as a CSV file never panic the loader.
    #[test]
    fn csv_loader_survives_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Some((text, _)) = hedui_connectors::text::decode_text(&bytes) {
            let t = schema::table("vehicles").unwrap();
            let mut b = TableBuilder::new(t, today());
            let _ = load_csv_text(&mut b, &text, "f.csv");
            let (batches, problems, read) = b.finish().unwrap();
            let ok: usize = batches.iter().map(|b| b.num_rows()).sum();
            prop_assert_eq!(ok as u64 + problems.len() as u64, read);
        }
    }
}
