//! Native side of the alarm benchmark (`bench/alarms.mjs` runs it in the
//! same session as the JS side and puts both in BENCHMARKS.md).
//!
//! Sets alarms in one namespace of a file store (synchronous=FULL, 1000
//! `setAlarm` operations per group commit) and, at 1k and at `max` alarms,
//! times the next-due lookup the scheduler uses (`AlarmDb::next_after`:
//! one seek of `alarms_due`) against `AlarmDb::get` (one primary-key
//! read). Prints one JSON object: `{"setPerSec", "points": [{"alarms",
//! "nextNs", "getNs"}]}`.
//!
//! Usage: `cargo bench --bench alarms -- <dir> <max alarms>`

use durq::{Store, StoreOptions};
use std::time::Instant;

const T0: i64 = 1_700_000_000_000;
const CALLS: usize = 20_000;

fn median_ns(mut f: impl FnMut()) -> f64 {
    for _ in 0..1000 {
        f();
    }
    let mut lat: Vec<f64> = (0..CALLS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_nanos() as f64
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    lat[lat.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    let dir = std::path::PathBuf::from(args.get(1).cloned().unwrap_or_else(|| "bench/out".into()));
    let max: i64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("native-alarms.db");
    let _ = std::fs::remove_dir_all(format!("{}.alarms", path.display()));
    for suffix in ["", "-wal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let mut store = Store::open(path.to_str().unwrap(), &StoreOptions::default()).unwrap();
    let mut points = Vec::new();
    let mut set_secs = 0.0;
    let mut done = 0;
    for size in [1000, max] {
        let t = Instant::now();
        while done < size {
            let ops: Vec<String> = (done..(done + 1000).min(size))
                .map(|i| {
                    let time = T0 + 86_400_000 + ((i * 7919) % max) * 10;
                    format!(r#"{{"op":"setAlarm","args":{{"namespace":"bench","actorId":"actor-{i}","time":{time}}}}}"#)
                })
                .collect();
            let out = store
                .apply_json(T0, &format!("[{}]", ops.join(",")))
                .unwrap();
            assert!(!out.contains("\"err\""), "{out}");
            done = (done + 1000).min(size);
        }
        set_secs += t.elapsed().as_secs_f64();
        let db = store.alarm_db("bench").unwrap();
        assert!(db.next_after(T0).unwrap().is_some());
        let next_ns = median_ns(|| {
            std::hint::black_box(db.next_after(T0).unwrap());
        });
        let get_ns = median_ns(|| {
            std::hint::black_box(db.get("actor-7").unwrap());
        });
        points.push(format!(
            r#"{{"alarms":{size},"nextNs":{next_ns},"getNs":{get_ns}}}"#
        ));
    }
    println!(
        r#"{{"setPerSec":{},"points":[{}]}}"#,
        max as f64 / set_secs,
        points.join(",")
    );
}
