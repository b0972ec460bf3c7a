//! Embeds `pipelines/*.sql` in the binary, in file-name order, so an installed `hedui`
//! runs the same rules as the repository holds.

use std::fmt::Write as _;

fn main() {
    println!("cargo:rerun-if-changed=pipelines");
    // Read at run time: a build script reused through a shared CARGO_TARGET_DIR must look
    // in the checkout that is building now, not in the one it was compiled in.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = std::path::Path::new(&manifest).join("pipelines");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("pipelines/ exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    let mut out = String::from("/// The rule pipelines: (file name, SQL), in order.\npub const PIPELINES: &[(&str, &str)] = &[\n");
    for f in files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 file name");
        writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            f.display().to_string()
        )
        .expect("write to string");
    }
    out.push_str("];\n");
    let dest =
        std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("pipelines.rs");
    std::fs::write(dest, out).expect("write pipelines.rs");
}
