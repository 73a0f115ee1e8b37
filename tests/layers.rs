//! The core's modules form layers, and each imports only from its own layer
//! or the layers below it (`src/lib.rs` has the table). This test reads the
//! `crate::` paths of every module under `src/` (comments left out) and
//! fails on a module missing from [`LAYERS`], on an import that goes up a
//! layer, and on any import cycle (which same-layer imports could form).
//! Run with `--nocapture` to print the module graph.
#![cfg(not(target_family = "wasm"))]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers, lowest first (`src/lib.rs`).
const LAYERS: &[&[&str]] = &[
    &["error", "ids", "json", "rows", "validate"],
    &["model", "page", "schema", "vfs"],
    &["history", "write"],
    &["run"],
    &[
        "batch", "lease", "queue", "queues", "schedule", "search", "effect", "alarm", "transfer",
        "query",
    ],
    &["op"],
    &["commit"],
    &["store"],
    &["lib", "wasm"],
];

fn layer_of(m: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&m))
}

/// Source text without comments (line comments and doc comments; the core
/// has no block comments), so a doc link to a higher module is no import.
fn code_of(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            // `//` inside a string literal (a URL) keeps the line whole.
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The modules named by `crate::<name>` paths and `use crate::{a, b::c}`
/// groups in `code`.
fn imports_of(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of the group: split at depth-0 commas.
            let mut depth = 0;
            let mut start = 0;
            for (j, ch) in group.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        out.insert(ident(group[start..j].trim()));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(ident(group[start..j].trim()));
                        start = j + 1;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident(rest));
        }
    }
    out.retain(|m| !m.is_empty() && m.chars().next().unwrap().is_ascii_lowercase());
    out
}

/// Module name → the modules it imports. A folder (`src/vfs/`) is one module.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut add = |module: String, path: &Path| {
        let code = code_of(&std::fs::read_to_string(path).unwrap());
        let deps = g.entry(module.clone()).or_default();
        deps.extend(imports_of(&code).into_iter().filter(|d| *d != module));
    };
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        if path.is_dir() {
            for f in std::fs::read_dir(&path).unwrap() {
                add(name.clone(), &f.unwrap().path());
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            add(name, &path);
        }
    }
    g
}

/// A cycle of `g`, if it has one (depth-first search, three colours).
fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        m: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(m.to_owned(), 1);
        stack.push(m.to_owned());
        for d in g.get(m).into_iter().flatten() {
            match state.get(d.as_str()).copied().unwrap_or(0) {
                1 => {
                    let from = stack.iter().position(|s| s == d).unwrap();
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(d.clone());
                    return Some(cycle);
                }
                0 if g.contains_key(d) => {
                    if let Some(c) = visit(d, g, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(m.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in g.keys() {
        if state.get(m.as_str()).copied().unwrap_or(0) == 0 {
            let mut stack = Vec::new();
            if let Some(c) = visit(m, g, &mut state, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn core_modules_import_downward_only_and_form_no_cycle() {
    let g = graph();
    let mut problems = Vec::new();
    for (m, deps) in &g {
        let Some(layer) = layer_of(m) else {
            problems.push(format!("src/{m} is in no layer: add it to LAYERS (tests/layers.rs) and to the table in src/lib.rs"));
            continue;
        };
        println!(
            "{layer} {m:<9} -> {}",
            deps.iter().cloned().collect::<Vec<_>>().join(", ")
        );
        for d in deps {
            match layer_of(d) {
                Some(l) if l > layer => problems.push(format!(
                    "{m} (layer {layer}) imports {d} (layer {l}): imports go down the layers only"
                )),
                None if g.contains_key(d) => {}
                _ => {}
            }
        }
    }
    if let Some(cycle) = find_cycle(&g) {
        problems.push(format!("import cycle: {}", cycle.join(" -> ")));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checker_sees_groups_upward_imports_and_cycles() {
    let deps = imports_of(&code_of(
        "use crate::{a::X, b::{c, d}, e};\nfn f() { crate::g::h() } // crate::z::w\n",
    ));
    assert_eq!(deps.into_iter().collect::<Vec<_>>(), ["a", "b", "e", "g"]);
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    g.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(find_cycle(&g).unwrap(), ["a", "b", "c", "a"]);
    g.get_mut("c").unwrap().clear();
    assert!(find_cycle(&g).is_none());
}
