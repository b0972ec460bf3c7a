//! The department simulator as a program, for benchmarks: serves every table of a
//! generated city's `sources/` folder over HTTPS on 127.0.0.1 in the SPEC §9 protocol
//! (hr_income under the 人社 department's own field names and codes, the others under
//! their canonical names), and writes the CA to trust.
//!
//! ```sh
//! cargo run --release --example deptsim -- city/sources bench/
//! # prints the base URL; writes bench/ca.pem; serves until killed
//! ```

#[path = "../tests/support/deptsim.rs"]
mod deptsim;

use std::sync::Arc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(sources), Some(out)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: deptsim SOURCES_DIR OUT_DIR");
        std::process::exit(2);
    };
    let sources = std::path::Path::new(sources);
    let mut dept = deptsim::Department::new(None);
    for entry in std::fs::read_dir(sources).expect("cannot read the sources folder") {
        let path = entry.expect("cannot list the sources folder").path();
        if path.extension().and_then(|e| e.to_str()) != Some("csv") {
            continue;
        }
        let table = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        let text = std::fs::read_to_string(&path).expect("sources must be UTF-8 CSV");
        let (records, id_field) = if table == "hr_income" {
            (deptsim::hr_records_from_csv(&text), "SFZH")
        } else {
            (deptsim::canonical_records_from_csv(&text), "id_number")
        };
        eprintln!("{table}: {} records", records.len());
        dept = dept.table_raw(&table, id_field, records);
    }
    let pki = deptsim::Pki::new();
    std::fs::create_dir_all(out).expect("cannot create the output folder");
    std::fs::write(std::path::Path::new(out).join("ca.pem"), &pki.ca_pem)
        .expect("cannot write ca.pem");
    let running = deptsim::start(Arc::new(dept), pki.server_config(false, false));
    println!("{}", running.url());
    loop {
        std::thread::park();
    }
}
