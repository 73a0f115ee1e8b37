//! Every hot query's `EXPLAIN QUERY PLAN`, read on a database holding tens
//! of thousands of runs (with labels, batches, history and alarms) after
//! `ANALYZE`, so the planner chooses with real statistics: claim next run,
//! label filter, list by status, next alarm, next and due schedules,
//! active batches, run history, search. Each must seek an index: a full scan of a large table or a
//! temporary sort where an index should serve fails the test. (The exact
//! plans are also pinned on empty databases in `tests/core.rs`,
//! `tests/batches.rs`, `tests/alarms.rs` and `tests/search.rs`.)

mod common;

#[cfg(all(target_family = "wasm", target_os = "unknown"))]
use durq_test_macros::test;

use common::suite::*;
use durq::search::RunOrder;
use durq::{query, RunFilter, Status, Store};
use rusqlite::types::Value;
use serde_json::json;

const RUNS: usize = 20_000;

/// A store with RUNS runs in every status, labels, batches, history and
/// alarms, then `ANALYZE`d.
fn populated() -> Store {
    let mut s = Store::open_in_memory(3).unwrap();
    for chunk in 0..(RUNS / 1000) {
        let runs: Vec<_> = (0..1000)
            .map(|i| {
                let n = chunk * 1000 + i;
                let job = ["a", "b", "c"][n % 3];
                let tier = ["gold", "free"][n % 2];
                json!({"job": job, "input": {"note": format!("word{} disk", n % 500)},
                       "labels": {"tenant": format!("t{}", n % 50), "tier": tier},
                       "priority": (n % 4) as i64, "runAt": T0 + (n % 7) as i64 * 1000})
            })
            .collect();
        ok(
            &mut s,
            json!({"op": "enqueueMany", "now": T0, "runs": runs}),
        );
    }
    for b in 0..200 {
        let runs: Vec<_> = (0..5).map(|i| json!({"job": "a", "input": i})).collect();
        ok(
            &mut s,
            json!({"op": "enqueueBatch", "now": T0, "queue": format!("q{}", b % 4), "runs": runs}),
        );
    }
    // Move a share of the runs through their lifecycle (history rows too).
    for _ in 0..10 {
        let c = ok(
            &mut s,
            json!({"op": "claim", "now": T0 + 10_000, "jobs": ["a", "b", "c"], "workerId": "w", "leaseMs": 60_000, "limit": 500}),
        );
        let ops: Vec<_> = c["runs"].as_array().unwrap().iter().enumerate().map(|(i, r)| {
            if i % 5 == 0 {
                json!({"op": "fail", "now": T0 + 10_001, "id": r["id"], "token": r["token"], "error": {"message": "upstream timeout"}, "retryable": false})
            } else {
                json!({"op": "complete", "now": T0 + 10_001, "id": r["id"], "token": r["token"], "output": {"ok": true}})
            }
        }).collect();
        apply(&mut s, serde_json::Value::Array(ops));
    }
    for i in 0..5000 {
        ok(
            &mut s,
            json!({"op": "setAlarm", "namespace": "n", "actorId": format!("actor{i}"), "time": T0 + i as i64, "now": T0}),
        );
    }
    for i in 0..2000 {
        ok(
            &mut s,
            json!({"op": "schedule", "now": T0, "id": format!("s{i}"), "cron": format!("{} * * * *", i % 60),
                   "run": {"job": "a", "input": {}}}),
        );
    }
    s.connection().execute_batch("ANALYZE").unwrap();
    s.alarm_db("n")
        .unwrap()
        .connection()
        .execute_batch("ANALYZE")
        .unwrap();
    s
}

/// Fails on a full scan of a real table (FTS5's virtual-table "SCAN f
/// VIRTUAL TABLE INDEX" is its own index lookup) or a temporary sort.
fn assert_indexed(what: &str, plan: &str) {
    for line in plan.lines() {
        let scan = line.starts_with("SCAN ") && !line.contains("VIRTUAL TABLE INDEX");
        assert!(!scan, "{what}: full scan in\n{plan}");
        assert!(
            !line.contains("TEMP B-TREE"),
            "{what}: temporary sort in\n{plan}"
        );
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

#[test]
fn every_hot_query_seeks_an_index_at_scale() {
    let mut s = populated();
    let c = s.connection();
    let p = common::plan(
        c,
        durq::lease::CLAIM_AT_LEVEL_SQL,
        &[
            text("default"),
            Value::Integer(1),
            Value::Integer(T0),
            text("[\"a\"]"),
        ],
    );
    assert_indexed("claim next run", &p);
    assert!(p.contains("runs_claim"), "{p}");
    let filters = [
        (
            "label filter",
            RunFilter {
                labels: Some(
                    [
                        ("tenant".into(), "t9".into()),
                        ("tier".into(), "free".into()),
                    ]
                    .into(),
                ),
                ..Default::default()
            },
            false,
        ),
        (
            "label filter, next page",
            RunFilter {
                labels: Some([("tenant".into(), "t9".into())].into()),
                cursor: Some("0192f000-0000-7000-8000-000000000000".into()),
                ..Default::default()
            },
            false,
        ),
        (
            "list by status",
            RunFilter {
                status: Some(Status::Failed),
                ..Default::default()
            },
            false,
        ),
        (
            "label and status, driven by the status",
            RunFilter {
                status: Some(Status::Failed),
                labels: Some([("tenant".into(), "t9".into())].into()),
                ..Default::default()
            },
            true,
        ),
        (
            "list by job",
            RunFilter {
                job: Some("b".into()),
                ..Default::default()
            },
            false,
        ),
        (
            "search, newest first",
            RunFilter {
                search: Some("word7".into()),
                ..Default::default()
            },
            false,
        ),
        (
            "search by relevance",
            RunFilter {
                search: Some("disk timeout".into()),
                order: Some(RunOrder::Relevance),
                ..Default::default()
            },
            false,
        ),
        (
            "label plus search",
            RunFilter {
                search: Some("timeout".into()),
                labels: Some([("tenant".into(), "t9".into())].into()),
                status: Some(Status::Failed),
                cursor: Some("s100".into()),
                ..Default::default()
            },
            false,
        ),
    ];
    for (what, f, by_status) in filters {
        let (sql, params, _) = query::list_runs_sql(&f, by_status).unwrap();
        assert_indexed(what, &common::plan(c, &sql, &params));
        if f.cursor.is_none() {
            assert!(
                !s.list_runs(&f).unwrap().runs.is_empty(),
                "{what}: the data has matches"
            );
        }
    }
    assert_indexed(
        "run history",
        &common::plan(c, durq::history::RUN_EVENTS_SQL, &[text("x")]),
    );
    assert_indexed(
        "active batches",
        &common::plan(c, durq::batch::LIST_ACTIVE_BATCHES_SQL, &[text("q1")]),
    );
    assert_eq!(s.list_active_batches("q1").unwrap().len(), 50);
    assert_indexed(
        "next schedule slot",
        &common::plan(c, durq::schedule::read::NEXT_SCHEDULE_SQL, &[]),
    );
    let due = common::plan(
        c,
        durq::schedule::DUE_SCHEDULES_SQL,
        &[Value::Integer(T0 + 60_000), Value::Integer(101)],
    );
    assert_indexed("due schedules", &due);
    assert!(due.contains("schedules_due"), "{due}");
    let n = s.alarm_db("n").unwrap();
    assert_indexed(
        "next alarm",
        &common::plan(
            n.connection(),
            durq::alarm::NEXT_ALARM_SQL,
            &[Value::Integer(T0)],
        ),
    );
}
