//! Native side of the batch benchmark (`bench/batches.mjs` runs it in the
//! same session as the JS side and puts both in BENCHMARKS.md).
//!
//! Ten active batches sit in queue `q` while terminal batch history of the
//! same queue grows from 1k to `max` batches (each made by real operations:
//! `enqueueBatch` of one run, then `cancelBatch`). At each size it times
//! `Store::list_active_batches("q")` (the `active_batches` primary-key
//! prefix, each member resolved by primary key) against the query a table
//! without membership would need: the queue's batches filtered on `state`
//! (`batches_queue (queue, id)`, then a check of every row), which grows
//! with history. Copies the database at each size to
//! `<dir>/batches-<size>.db` for the JS side. Prints one JSON object.
//!
//! Usage: `cargo bench --bench batches -- <dir> <max history>`

use durq::{Store, StoreOptions, Synchronous};
use std::time::Instant;

const T0: i64 = 1_700_000_000_000;

fn main() {
    let args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    let dir = std::path::PathBuf::from(args.get(1).cloned().unwrap_or_else(|| "bench/out".into()));
    let max: usize = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("native-batches.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let options = StoreOptions {
        synchronous: Synchronous::Normal,
        ..Default::default()
    };
    let mut store = Store::open(path.to_str().unwrap(), &options).unwrap();
    let one_run = r#"[{"job":"scan","input":{"n":1}}]"#;
    let enqueue = |n: usize| -> String {
        let op = format!(r#"{{"op":"enqueueBatch","args":{{"queue":"q","runs":{one_run}}}}}"#);
        format!("[{}]", vec![op; n].join(","))
    };
    store.apply_json(T0, &enqueue(10)).unwrap();

    let mut sizes = Vec::new();
    let mut s = 1000;
    while s <= max {
        sizes.push(s);
        s *= 10;
    }
    let mut history = 0;
    let mut points = Vec::new();
    for size in sizes {
        while history < size {
            let n = (size - history).min(5000);
            let out: Vec<serde_json::Value> =
                serde_json::from_str(&store.apply_json(T0, &enqueue(n)).unwrap()).unwrap();
            let cancels: Vec<String> = out
                .iter()
                .map(|o| {
                    format!(
                        r#"{{"op":"cancelBatch","args":{{"id":{}}}}}"#,
                        o["ok"]["id"]
                    )
                })
                .collect();
            store
                .apply_json(T0, &format!("[{}]", cancels.join(",")))
                .unwrap();
            history += n;
        }
        let time = |f: &mut dyn FnMut() -> usize| -> (f64, usize) {
            let mut lat = Vec::new();
            let mut found = 0;
            for _ in 0..200 {
                let t = Instant::now();
                found = f();
                lat.push(t.elapsed().as_secs_f64() * 1e6);
            }
            lat.sort_by(f64::total_cmp);
            (lat[lat.len() / 2], found)
        };
        let (membership_us, n1) = time(&mut || store.list_active_batches("q").unwrap().len());
        let conn = store.connection();
        let mut naive = conn
            .prepare("SELECT id FROM batches INDEXED BY batches_queue WHERE queue = 'q' AND state = 'active'")
            .unwrap();
        let (scan_us, n2) = time(&mut || naive.query_map([], |_| Ok(())).unwrap().count());
        assert_eq!((n1, n2), (10, 10));
        // A snapshot of this size for the JS side (bench/batches.mjs): after
        // a checkpoint the main file alone is the whole database.
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        std::fs::copy(&path, dir.join(format!("batches-{size}.db"))).unwrap();
        points.push(format!(
            r#"{{"history":{size},"membershipP50Us":{membership_us:.1},"stateScanP50Us":{scan_us:.1}}}"#
        ));
    }
    println!(r#"{{"points":[{}]}}"#, points.join(","));
}
