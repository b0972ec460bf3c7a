//! The code reads one way: the modules of `src/` import only modules before them in the
//! order the data flows (the `# Layout` of `src/lib.rs` lists them in that order), no
//! file imports another that imports it back (in `src/` and `connectors/src`), and only
//! the orchestration layers convert to the crate-wide `Error`.
//!
//! Imports are read from the source text: every `crate::`, `super::` and `self::` path
//! (in `use` trees and inline), test modules left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level modules of `src/`, in the order the data flows: each may import only
/// the modules before it.
const LAYERS: &[&str] = &[
    "progress",
    "fault",
    "config",
    "policy",
    "applicants",
    "lake",
    "ingest",
    "sources",
    "engine",
    "verdict",
    "changes",
    "state",
    "output",
    "error",
    "check",
    "publish",
    "reconcile",
    "server",
    "cli",
    "generate",
    "cmd",
];

/// The layers that turn their lower modules' errors into the crate's `Error` (and may
/// therefore import `crate::error`).
const ORCHESTRATION: &[&str] = &["check", "publish", "reconcile", "server", "cmd"];

/// A Rust source file's text without comments, string literals and `#[cfg(test)]`
/// modules.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read a source file");
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if text[i..].starts_with("//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if text[i..].starts_with("/*") {
            i += text[i..].find("*/").map_or(b.len() - i, |e| e + 2);
        } else if text[i..].starts_with("r#\"") {
            i += text[i..].find("\"#").map_or(b.len() - i, |e| e + 2);
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && i + 2 < b.len() && (b[i + 2] == b'\'' || b[i + 1] == b'\\') {
            // a char literal ('{', '\n'): skipped, so braces in it do not count
            let close = text[i + 1..].find('\'').map_or(b.len(), |e| i + 1 + e);
            i = close + 1;
            out.push_str("' '");
        } else {
            let c = text[i..].chars().next().expect("a char");
            out.push(c);
            i += c.len_utf8();
        }
    }
    cut_test_modules(out)
}

/// `out` without its `#[cfg(test)] mod NAME { … }` blocks.
fn cut_test_modules(mut out: String) -> String {
    while let Some(start) = out.find("#[cfg(test)]") {
        let rest = &out[start..];
        let Some(open) = rest.find('{') else { break };
        let is_mod = rest[..open].contains("mod ");
        if !is_mod {
            // a test-only item: drop the attribute only
            out.replace_range(start..start + "#[cfg(test)]".len(), "");
            continue;
        }
        let mut depth = 0;
        let mut end = start + open;
        for (k, c) in out[start + open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = start + open + k + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        out.replace_range(start..end, "");
    }
    out
}

/// The module path of a file under `src` (`engine/mod.rs` → `["engine"]`).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file
        .strip_prefix(src)
        .expect("under src")
        .with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read a source folder") {
        let p = e.expect("a folder entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The modules a file declares (`mod NAME;`, `pub mod NAME;`).
fn child_modules(code: &str) -> Vec<String> {
    code.split(';')
        .filter_map(|stmt| {
            let words: Vec<&str> = stmt.split_whitespace().collect();
            match words.as_slice() {
                [.., "mod", name] => Some((*name).to_owned()),
                _ => None,
            }
        })
        .collect()
}

/// Every path a file's code names: `use` trees expanded, inline `crate::…` paths and
/// paths into the file's own child modules (`children`).
fn paths_in(code: &str, children: &[String]) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(k) = rest.find("use ") {
        let before_ok = k == 0 || !rest.as_bytes()[k - 1].is_ascii_alphanumeric();
        let tail = &rest[k + 4..];
        let Some(end) = tail.find(';') else { break };
        if before_ok {
            expand(tail[..end].trim(), "", &mut paths);
        }
        rest = &tail[end..];
    }
    let heads: Vec<String> = ["crate", "super", "self"]
        .iter()
        .map(|h| h.to_string())
        .chain(children.iter().cloned())
        .map(|h| format!("{h}::"))
        .collect();
    for head in &heads {
        let head = head.as_str();
        let mut from = 0;
        while let Some(k) = code[from..].find(head) {
            let at = from + k;
            let before_ok = at == 0 || {
                let c = code.as_bytes()[at - 1];
                !(c.is_ascii_alphanumeric() || c == b'_' || c == b':')
            };
            let end = code[at..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |e| at + e);
            if before_ok {
                paths.push(code[at..end].trim_end_matches(':').to_owned());
            }
            from = end.max(at + 1);
        }
    }
    paths
}

/// `a::{b, c::{d}}` → `a::b`, `a::c::d`.
fn expand(tree: &str, prefix: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    match tree.find('{') {
        None => {
            let t = tree.split(" as ").next().unwrap_or(tree).trim();
            if !t.is_empty() {
                out.push(format!("{prefix}{t}"));
            }
        }
        Some(open) => {
            let head = format!("{prefix}{}", &tree[..open]);
            let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
            let (mut depth, mut cur) = (0, String::new());
            for c in inner.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if c == ',' && depth == 0 {
                    expand(&cur, &head, out);
                    cur.clear();
                } else {
                    cur.push(c);
                }
            }
            expand(&cur, &head, out);
        }
    }
}

/// The file-level import graph of a crate: file → files it imports.
fn graph(src: &Path) -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let by_module: BTreeMap<Vec<String>, PathBuf> = files
        .iter()
        .map(|f| (module_of(src, f), f.clone()))
        .collect();
    let mut edges = BTreeMap::new();
    for f in &files {
        let here = module_of(src, f);
        let code = code_of(f);
        let children = child_modules(&code);
        let mut to = BTreeSet::new();
        for path in paths_in(&code, &children) {
            let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
            let target: Vec<String> = match segs.first() {
                // a child module declared here (`mod report;` … `report::write`)
                Some(first) if children.iter().any(|c| c == first) => {
                    let mut base = here.clone();
                    base.extend(segs.iter().map(|s| s.to_string()));
                    base
                }
                Some(&"crate") => segs[1..].iter().map(|s| s.to_string()).collect(),
                Some(&"super") => {
                    let mut base = here.clone();
                    let mut k = 0;
                    while segs.get(k) == Some(&"super") {
                        base.pop();
                        k += 1;
                    }
                    base.extend(segs[k..].iter().map(|s| s.to_string()));
                    base
                }
                Some(&"self") => {
                    let mut base = here.clone();
                    base.extend(segs[1..].iter().map(|s| s.to_string()));
                    base
                }
                _ => continue,
            };
            let target: Vec<String> = target
                .into_iter()
                .filter(|s| s != "*" && s != "self")
                .collect();
            // the longest module prefix that is a file
            let hit = (0..=target.len())
                .rev()
                .find_map(|k| by_module.get(&target[..k]));
            if let Some(t) = hit {
                let root = t
                    .file_name()
                    .is_some_and(|n| n == "lib.rs" || n == "main.rs");
                if t != f && !root {
                    to.insert(t.clone());
                }
            }
        }
        edges.insert(f.clone(), to);
    }
    edges
}

/// The files of `edges` that reach themselves again, as circles.
fn circles(edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Vec<Vec<PathBuf>> {
    // every file that can reach `f` and be reached from it
    let reach = |from: &PathBuf| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(x) = todo.pop() {
            for y in edges.get(&x).into_iter().flatten() {
                if seen.insert(y.clone()) {
                    todo.push(y.clone());
                }
            }
        }
        seen
    };
    let reached: BTreeMap<&PathBuf, BTreeSet<PathBuf>> =
        edges.keys().map(|f| (f, reach(f))).collect();
    let mut out: Vec<Vec<PathBuf>> = Vec::new();
    for f in edges.keys() {
        if !reached[f].contains(f) || out.iter().any(|c| c.contains(f)) {
            continue;
        }
        let circle: Vec<PathBuf> = edges
            .keys()
            .filter(|g| reached[f].contains(*g) && reached[*g].contains(f))
            .cloned()
            .collect();
        out.push(circle);
    }
    out
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Circles allowed (none: a folder's `mod.rs` that both holds what its files use and
/// uses them is one too).
const KNOWN_CIRCLES: &[&[&str]] = &[];

/// No file of `src/` or `connectors/src` imports a file that imports it back (but the
/// [`KNOWN_CIRCLES`] being taken apart).
#[test]
fn no_import_circles() {
    for dir in ["src", "connectors/src"] {
        let src = root().join(dir);
        let found = circles(&graph(&src));
        let named: Vec<Vec<String>> = found
            .iter()
            .map(|c| {
                c.iter()
                    .map(|f| f.strip_prefix(&src).unwrap_or(f).display().to_string())
                    .collect()
            })
            .collect();
        let known: Vec<Vec<String>> = if dir == "src" {
            KNOWN_CIRCLES
                .iter()
                .map(|c| c.iter().map(|f| f.to_string()).collect())
                .collect()
        } else {
            Vec::new()
        };
        assert_eq!(named, known, "import circles in {dir}");
    }
}

/// The circle finder finds a circle: two files importing each other, and a folder's
/// `mod.rs` using a child module that imports it back.
#[test]
fn circles_are_found() {
    let dir = std::env::temp_dir().join(format!("hedui-layout-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("a")).expect("a temporary crate");
    std::fs::write(dir.join("lib.rs"), "pub mod a;\npub mod b;\npub mod c;\n").expect("lib");
    std::fs::write(dir.join("b.rs"), "use crate::c::X;\npub struct Y;\n").expect("b");
    std::fs::write(dir.join("c.rs"), "pub struct X;\nfn f(_: crate::b::Y) {}\n").expect("c");
    std::fs::write(
        dir.join("a/mod.rs"),
        "pub mod child;\npub struct Shared;\nfn g() { child::h(); }\n",
    )
    .expect("a/mod.rs");
    std::fs::write(
        dir.join("a/child.rs"),
        "use super::Shared;\npub fn h() {}\n#[cfg(test)]\nmod tests { use crate::b::Y; }\n",
    )
    .expect("a/child.rs");
    let found: Vec<Vec<String>> = circles(&graph(&dir))
        .iter()
        .map(|c| {
            c.iter()
                .map(|f| f.strip_prefix(&dir).unwrap_or(f).display().to_string())
                .collect()
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        found,
        vec![
            vec!["a/child.rs".to_owned(), "a/mod.rs".to_owned()],
            vec!["b.rs".to_owned(), "c.rs".to_owned()],
        ]
    );
}

/// Each top-level module of `src/` imports only modules before it in [`LAYERS`], and
/// every module is in [`LAYERS`].
#[test]
fn modules_import_only_earlier_layers() {
    let src = root().join("src");
    let layer_of = |f: &Path| -> Option<usize> {
        let m = module_of(&src, f);
        let top = m.first()?;
        Some(
            LAYERS
                .iter()
                .position(|l| l == top)
                .unwrap_or_else(|| panic!("{top} is not in LAYERS: add it where the data flows")),
        )
    };
    let mut wrong = Vec::new();
    for (f, to) in graph(&src) {
        let Some(mine) = layer_of(&f) else { continue };
        for t in to {
            let Some(theirs) = layer_of(&t) else { continue };
            if theirs > mine {
                wrong.push(format!(
                    "{} imports {}",
                    f.strip_prefix(&src).unwrap_or(&f).display(),
                    t.strip_prefix(&src).unwrap_or(&t).display()
                ));
            }
            if LAYERS[theirs] == "error" && !ORCHESTRATION.contains(&LAYERS[mine]) {
                wrong.push(format!(
                    "{} returns the crate Error: give it its own error type",
                    f.strip_prefix(&src).unwrap_or(&f).display()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// `src/lib.rs`'s `# Layout` names every top-level module, in the order of [`LAYERS`].
#[test]
fn the_crate_layout_lists_every_module_in_order() {
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).expect("src/lib.rs");
    let layout: Vec<String> = lib
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .skip_while(|l| !l.contains("# Layout"))
        .flat_map(|l| {
            l.split("[`")
                .skip(1)
                .filter_map(|s| s.split("`]").next().map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .filter(|m| LAYERS.contains(&m.as_str()))
        .collect();
    assert_eq!(layout, LAYERS, "the # Layout of src/lib.rs");
}

/// The shipped binary carries no debug info (with line tables it was 856 MB); profiling
/// builds have a profile of their own.
#[test]
fn the_release_build_ships_without_debug_info() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let manifest: toml::Value = toml::from_str(&text).unwrap();
    let release = &manifest["profile"]["release"];
    assert_eq!(release.get("debug").and_then(|v| v.as_bool()), Some(false));
    assert_eq!(
        release.get("strip").and_then(|v| v.as_str()),
        Some("debuginfo")
    );
    assert_eq!(
        manifest["profile"]["profiling"]["inherits"].as_str(),
        Some("release")
    );
}

/// Messages for people never cite the contract's sections (users do not have it): the
/// OpenAPI document and every command's `--help`.
#[test]
fn no_message_cites_the_contract() {
    let doc = serde_json::to_string(&<hedui::server::routes::ApiDoc as utoipa::OpenApi>::openapi())
        .unwrap();
    assert!(
        !doc.contains("SPEC"),
        "the OpenAPI document cites the contract"
    );
    let commands: [&[&str]; 10] = [
        &[],
        &["check"],
        &["reconcile"],
        &["serve"],
        &["ingest"],
        &["sources"],
        &["audit"],
        &["audit", "verify"],
        &["generate"],
        &["demo"],
    ];
    for args in commands {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hedui"))
            .args(args)
            .arg("--help")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(!help.is_empty(), "{args:?}");
        assert!(!help.contains("SPEC"), "hedui {args:?} --help: {help}");
    }
}
