//! Native side of the search benchmark (`bench/search.mjs` runs it in the
//! same session and puts both in BENCHMARKS.md): where an import's time
//! goes, without the JS/wasm boundary.
//!
//! Imports `n` runs (the shape of `bench/search.mjs`, 1000 per
//! `importRuns` operation, synchronous=NORMAL) three ways into fresh files:
//! with the search index triggers live; deferred (triggers dropped, one
//! rebuild at the end); and deferred without the rebuild (the floor: the
//! import with no search index work at all). Prints one JSON object:
//! `{"n", "liveS", "deferredS", "floorS", "rebuildS"}`.
//!
//! Usage: `cargo bench --bench search -- <dir> <n>`

use durq::{Store, StoreOptions, Synchronous};
use std::time::Instant;

const T0: i64 = 1_767_225_600_000;

fn run_json(i: usize) -> String {
    let w = |k: usize| format!("w{}x", (k * 7919) % 5000);
    let failed = i % 10 == 0;
    let tail = if failed {
        format!(
            r#""status":"failed","output":null,"error":{{"name":"Error","message":"upstream {} after 30 s"}}"#,
            if i % 20 == 0 { "timeout" } else { "refused" }
        )
    } else {
        format!(
            r#""status":"completed","output":{{"message":"sent to customer {}"}},"error":null"#,
            i % 5000
        )
    };
    format!(
        r#"{{"job":"job-{}","input":{{"customer":"customer {}","note":"{} {} {}","amount":{i}}},"labels":{{"tenant":"t{}"}},"attempt":1,"createdAt":{},{tail}}}"#,
        i % 20,
        i % 5000,
        w(i % 5000),
        w((i * 31) % 5000),
        if i % 4 == 0 { "invoice" } else { "receipt" },
        i % 100,
        T0 + i as i64
    )
}

fn apply(store: &mut Store, op: &str) {
    let out = store.apply_json(T0, &format!("[{op}]")).unwrap();
    assert!(!out.contains("\"err\""), "{}", &out[..out.len().min(500)]);
}

/// Seconds to import `n` runs; `defer`: drop the triggers first; `rebuild`:
/// restore them (and rebuild) at the end. Returns (total, rebuild part).
fn import(dir: &std::path::Path, name: &str, n: usize, defer: bool, rebuild: bool) -> (f64, f64) {
    let path = dir.join(name);
    for suffix in ["", "-wal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let opts = StoreOptions {
        synchronous: Synchronous::Normal,
        ..Default::default()
    };
    let mut store = Store::open(path.to_str().unwrap(), &opts).unwrap();
    let t = Instant::now();
    if defer {
        apply(&mut store, r#"{"op":"deferSearchIndex"}"#);
    }
    for chunk in (0..n).step_by(1000) {
        let runs: Vec<String> = (chunk..(chunk + 1000).min(n)).map(run_json).collect();
        apply(
            &mut store,
            &format!(
                r#"{{"op":"importRuns","args":{{"runs":[{}]}}}}"#,
                runs.join(",")
            ),
        );
    }
    let before_rebuild = t.elapsed().as_secs_f64();
    if defer && rebuild {
        apply(&mut store, r#"{"op":"restoreSearchIndex"}"#);
    }
    let total = t.elapsed().as_secs_f64();
    drop(store);
    for suffix in ["", "-wal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    (total, total - before_rebuild)
}

fn main() {
    let args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    let dir = std::path::PathBuf::from(args.get(1).cloned().unwrap_or_else(|| "bench/out".into()));
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    std::fs::create_dir_all(&dir).unwrap();
    let (live, _) = import(&dir, "native-search-live.db", n, false, false);
    let (deferred, rebuild) = import(&dir, "native-search-deferred.db", n, true, true);
    let (floor, _) = import(&dir, "native-search-floor.db", n, true, false);
    println!(
        r#"{{"n":{n},"liveS":{live},"deferredS":{deferred},"floorS":{floor},"rebuildS":{rebuild}}}"#
    );
}
