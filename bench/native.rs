//! Native baselines for BENCHMARKS.md, run by `bench/run.mjs` in the same
//! session as the JS benchmarks (the machine is shared and noisy, so only
//! ratios measured side by side mean anything).
//!
//! Prints one JSON object: rows/s for raw rusqlite inserts of the same rows
//! durq writes for an enqueue (one `runs` row + 2 `run_labels` rows, same
//! schema and indexes but no search index, WAL, synchronous=FULL, 1000 rows
//! per transaction),
//! and for durq's own core called natively (`Store::apply`, same batches),
//! with its full-text index and without (maintenance deferred), to price
//! the index.
//!
//! Usage: `cargo bench --bench native -- <dir> <rows>`

use durq::{Store, StoreOptions};
use rusqlite::{params, Connection};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    let dir = std::path::PathBuf::from(args.get(1).cloned().unwrap_or_else(|| "bench/out".into()));
    let rows: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    std::fs::create_dir_all(&dir).unwrap();
    let batch = 1000;
    let input = r#"{"path":"/some/where/package.json","size":1234}"#;

    // Raw rusqlite: the durq schema, plain INSERTs.
    let raw_path = dir.join("native-raw.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", raw_path.display()));
    }
    // The durq schema without the search index triggers: the baseline is
    // the rows themselves (the index is priced by `core` below).
    let mut schema = Store::open(raw_path.to_str().unwrap(), &StoreOptions::default()).unwrap();
    schema
        .apply_json(1700000000000, r#"[{"op":"deferSearchIndex"}]"#)
        .unwrap();
    drop(schema);
    let conn = Connection::open(&raw_path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA locking_mode=EXCLUSIVE;",
    )
    .unwrap();
    let t = Instant::now();
    let base = 1_700_000_000_000i64;
    let mut n = 0;
    while n < rows {
        conn.execute_batch("BEGIN").unwrap();
        {
            let mut run = conn.prepare_cached("INSERT INTO runs (id, queue, job, status, priority, run_at, created_at, updated_at, input, labels, max_attempts, backoff) VALUES (?1, 'default', 'scan', 'pending', 0, ?2, ?2, ?2, ?3, ?4, 3, '{}')").unwrap();
            let mut lab = conn
                .prepare_cached("INSERT INTO run_labels (run_id, key, value) VALUES (?1, ?2, ?3)")
                .unwrap();
            for i in n..(n + batch).min(rows) {
                let id = format!("{:012x}-0000-7000-8000-{:012x}", base + i as i64, i);
                let tenant = format!("t{}", i % 100);
                run.execute(params![
                    id,
                    base,
                    input,
                    format!(r#"{{"tenant":"{tenant}","kind":"a"}}"#)
                ])
                .unwrap();
                lab.execute(params![id, "tenant", tenant]).unwrap();
                lab.execute(params![id, "kind", "a"]).unwrap();
            }
        }
        conn.execute_batch("COMMIT").unwrap();
        n += batch;
    }
    let raw_rate = rows as f64 / t.elapsed().as_secs_f64();
    drop(conn);

    // With and without the search index, alternated three times; the best
    // of each (the machine is shared: the best run is the least disturbed).
    let (mut core_rate, mut process_rate, mut bare_rate, mut bare_process_rate) =
        (0f64, 0f64, 0f64, 0f64);
    for _ in 0..3 {
        let (e, p) = core(&dir, "native-core.db", rows, false);
        core_rate = core_rate.max(e);
        process_rate = process_rate.max(p);
        let (e, p) = core(&dir, "native-core-noindex.db", rows, true);
        bare_rate = bare_rate.max(e);
        bare_process_rate = bare_process_rate.max(p);
    }
    println!(
        r#"{{"rows":{rows},"rawRusqliteRowsPerSec":{raw_rate:.0},"nativeCoreEnqueuePerSec":{core_rate:.0},"nativeCoreProcessPerSec":{process_rate:.0},"noIndexEnqueuePerSec":{bare_rate:.0},"noIndexProcessPerSec":{bare_process_rate:.0}}}"#
    );
}

/// durq's core, natively: enqueue `rows` runs in batches of 1000 through
/// `Store::apply`, then process up to 20k of them as the JS worker does with
/// concurrency 100 (claim 100; then each run's step and completion in the
/// next group commit). `no_index`: with the full-text index maintenance
/// deferred first (its triggers dropped), to price the index. Returns
/// (enqueued/s, processed/s).
fn core(dir: &std::path::Path, name: &str, rows: usize, no_index: bool) -> (f64, f64) {
    let batch = 1000;
    let base = 1_700_000_000_000i64;
    let input = r#"{"path":"/some/where/package.json","size":1234}"#;
    let core_path = dir.join(name);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", core_path.display()));
    }
    let mut store = Store::open(core_path.to_str().unwrap(), &StoreOptions::default()).unwrap();
    if no_index {
        store
            .apply_json(base, r#"[{"op":"deferSearchIndex"}]"#)
            .unwrap();
    }
    let t = Instant::now();
    let mut n = 0;
    while n < rows {
        let ops: Vec<String> = (n..(n + batch).min(rows))
            .map(|i| format!(r#"{{"op":"enqueue","args":{{"job":"scan","input":{input},"labels":{{"tenant":"t{}","kind":"a"}}}}}}"#, i % 100))
            .collect();
        store
            .apply_json(base, &format!("[{}]", ops.join(",")))
            .unwrap();
        n += batch;
    }
    let core_rate = rows as f64 / t.elapsed().as_secs_f64();
    let process = rows.min(20_000);
    let t = Instant::now();
    let mut done = 0;
    while done < process {
        let claimed = store
            .apply_json(base, r#"[{"op":"claim","args":{"jobs":["scan"],"workerId":"w","leaseMs":30000,"limit":100}}]"#)
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&claimed).unwrap();
        let runs = v[0]["ok"]["runs"].as_array().unwrap();
        let mut ops = Vec::with_capacity(runs.len() * 2);
        for r in runs {
            let (id, token) = (r["id"].as_str().unwrap(), r["token"].as_i64().unwrap());
            ops.push(format!(r#"{{"op":"saveStep","args":{{"id":"{id}","token":{token},"name":"only","output":1}}}}"#));
            ops.push(format!(
                r#"{{"op":"complete","args":{{"id":"{id}","token":{token},"output":1}}}}"#
            ));
        }
        store
            .apply_json(base, &format!("[{}]", ops.join(",")))
            .unwrap();
        done += runs.len();
    }
    (core_rate, process as f64 / t.elapsed().as_secs_f64())
}
