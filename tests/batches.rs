//! Batches and their active membership, against every storage backend of
//! the target (natively and as wasm in Node, like `tests/core.rs`): counts
//! that move with every run transition, terminal states, cancellation,
//! idempotency, bad input, and the four membership invariants of
//! docs/architecture.md capability 4, including injected faults.
//!
//! Faults are injected with TEMP triggers that `RAISE(ABORT)` on the
//! statement to break (<https://www.sqlite.org/lang_createtrigger.html#the_raise_function>):
//! SQLite then fails exactly that write, as an I/O or constraint error would.

mod common;

#[cfg(all(target_family = "wasm", target_os = "unknown"))]
use durq_test_macros::test;

use common::suite::*;
use durq::{batch, BatchFilter, BatchState, RunFilter, Store};
use serde_json::{json, Value};

/// Enqueues a batch of `jobs` (one run each) in queue `q`; returns its result.
fn batch_of(s: &mut Store, q: &str, jobs: &[&str], extra: Value) -> Value {
    let runs: Vec<Value> = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| json!({"job": j, "input": {"i": i}}))
        .collect();
    let mut op = json!({"op": "enqueueBatch", "now": T0, "queue": q, "runs": runs});
    op.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    ok(s, op)
}

fn claim_in(s: &mut Store, q: &str, now: i64, limit: i64) -> Value {
    ok(
        s,
        json!({"op": "claim", "now": now, "queue": q, "jobs": ["a", "b"], "workerId": "w1", "leaseMs": 1000, "limit": limit}),
    )
}

fn get(s: &Store, id: &str) -> Value {
    serde_json::to_value(s.get_batch(id).unwrap()).unwrap()
}

fn active_ids(s: &Store, q: &str) -> Vec<String> {
    s.list_active_batches(q)
        .unwrap()
        .into_iter()
        .map(|b| b.id)
        .collect()
}

fn members(s: &Store) -> Vec<(String, String)> {
    let c = s.connection();
    let mut st = c
        .prepare("SELECT queue, batch_id FROM active_batches ORDER BY queue, batch_id")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn count(s: &Store, table: &str) -> i64 {
    s.connection()
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

fn counts(s: &Store, id: &str) -> [i64; 6] {
    let c = &get(s, id)["counts"];
    [
        "total",
        "pending",
        "leased",
        "completed",
        "failed",
        "cancelled",
    ]
    .map(|k| c[k].as_i64().unwrap())
}

fn token_of(claimed: &Value, id: &str) -> i64 {
    claimed["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("{id} not claimed in {claimed}"))["token"]
        .as_i64()
        .unwrap()
}

fn run_ids(b: &Value) -> Vec<String> {
    b["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn counts_and_state_move_with_every_run_transition() {
    for (name, mut s) in backends() {
        let b = batch_of(
            &mut s,
            "q",
            &["a", "a", "b"],
            json!({"labels": {"tenant": "acme"}}),
        );
        let id = b["id"].as_str().unwrap().to_string();
        assert_eq!(b["created"], true, "{name}");
        let runs = run_ids(&b);
        assert_eq!(runs.len(), 3);
        let g = get(&s, &id);
        assert_eq!(g["state"], "active", "{name}");
        assert_eq!(g["queue"], "q");
        assert_eq!(g["labels"], json!({"tenant": "acme"}));
        assert_eq!(g["createdAt"], T0);
        assert_eq!(g["finishedAt"], Value::Null);
        assert_eq!(counts(&s, &id), [3, 3, 0, 0, 0, 0], "{name}");
        assert_eq!(active_ids(&s, "q"), vec![id.clone()], "{name}");
        assert!(active_ids(&s, "default").is_empty());
        let run = serde_json::to_value(s.get_run(&runs[0]).unwrap()).unwrap();
        assert_eq!(run["batchId"], id.as_str());
        assert_eq!(run["queue"], "q");

        let c = claim_in(&mut s, "q", T0, 2);
        assert_eq!(counts(&s, &id), [3, 1, 2, 0, 0, 0], "{name}");
        let r0 = committed(
            &mut s,
            json!({"op": "complete", "now": T0 + 1, "id": runs[0], "token": token_of(&c, &runs[0]), "output": 1}),
        );
        assert!(r0.get("finishedBatches").is_none(), "{name}: {r0}");
        // A retryable failure puts the run back to pending.
        ok(
            &mut s,
            json!({"op": "fail", "now": T0 + 2, "id": runs[1], "token": token_of(&c, &runs[1]), "error": {"message": "x"}, "random": 0.0}),
        );
        assert_eq!(counts(&s, &id), [3, 2, 0, 1, 0, 0], "{name}");

        let c = claim_in(&mut s, "q", T0 + 1_000_000, 2);
        ok(
            &mut s,
            json!({"op": "complete", "now": T0 + 1_000_001, "id": runs[2], "token": token_of(&c, &runs[2]), "output": 2}),
        );
        assert_eq!(get(&s, &id)["state"], "active", "{name}");
        // The last live run fails for good: the batch ends `failed` in the same transaction.
        let last = committed(
            &mut s,
            json!({"op": "fail", "now": T0 + 1_000_002, "id": runs[1], "token": token_of(&c, &runs[1]), "error": {"message": "boom"}, "retryable": false}),
        );
        assert_eq!(last["ok"]["status"], "failed");
        assert_eq!(
            last["finishedBatches"],
            json!([{"id": id, "queue": "q", "state": "failed",
                    "counts": {"total": 3, "pending": 0, "leased": 0, "completed": 2, "failed": 1, "cancelled": 0}}]),
            "{name}"
        );
        let g = get(&s, &id);
        assert_eq!(g["state"], "failed", "{name}");
        assert_eq!(g["finishedAt"], T0 + 1_000_002);
        assert_eq!(counts(&s, &id), [3, 0, 0, 2, 1, 0], "{name}");
        assert!(
            members(&s).is_empty(),
            "{name}: membership removed with the terminal transition"
        );
        assert!(active_ids(&s, "q").is_empty());
    }
}

#[test]
fn a_batch_whose_runs_all_complete_ends_completed_once() {
    for (name, mut s) in backends() {
        let b = batch_of(&mut s, "q", &["a", "b"], json!({}));
        let id = b["id"].as_str().unwrap().to_string();
        let runs = run_ids(&b);
        let c = claim_in(&mut s, "q", T0, 10);
        // Both outcomes in one transaction: only the second finishes the batch.
        let out = apply(
            &mut s,
            json!([
                {"op": "complete", "now": T0 + 5, "id": runs[0], "token": token_of(&c, &runs[0]), "output": null},
                {"op": "complete", "now": T0 + 5, "id": runs[1], "token": token_of(&c, &runs[1]), "output": null},
            ]),
        );
        assert!(out[0].get("finishedBatches").is_none(), "{name}");
        assert_eq!(out[1]["finishedBatches"][0]["state"], "completed", "{name}");
        assert_eq!(get(&s, &id)["state"], "completed");
        assert_eq!(counts(&s, &id), [2, 0, 0, 2, 0, 0]);
    }
}

#[test]
fn an_expired_last_attempt_fails_the_batch_from_the_claim() {
    for (name, mut s) in backends() {
        let runs = vec![json!({"job": "a", "input": 1, "maxAttempts": 1})];
        let b = ok(
            &mut s,
            json!({"op": "enqueueBatch", "now": T0, "queue": "q", "runs": runs}),
        );
        let id = b["id"].as_str().unwrap().to_string();
        claim_in(&mut s, "q", T0, 1);
        let c = committed(
            &mut s,
            json!({"op": "claim", "now": T0 + 5_000, "queue": "q", "jobs": ["a", "b"], "workerId": "w1", "leaseMs": 1000, "limit": 1}),
        );
        assert_eq!(c["ok"]["expired"][0]["status"], "failed", "{name}");
        assert_eq!(
            c["finishedBatches"],
            json!([{"id": id, "queue": "q", "state": "failed",
                    "counts": {"total": 1, "pending": 0, "leased": 0, "completed": 0, "failed": 1, "cancelled": 0}}]),
            "{name}"
        );
        assert_eq!(counts(&s, &id), [1, 0, 0, 0, 1, 0]);
    }
}

#[test]
fn cancel_batch_cancels_pending_runs_and_signals_running_ones() {
    for (name, mut s) in backends() {
        let b = batch_of(&mut s, "q", &["a", "a", "a"], json!({}));
        let id = b["id"].as_str().unwrap().to_string();
        let runs = run_ids(&b);
        let c = claim_in(&mut s, "q", T0, 1);
        let out = committed(
            &mut s,
            json!({"op": "cancelBatch", "now": T0 + 1, "id": id}),
        );
        assert_eq!(out["ok"]["state"], "cancelled", "{name}");
        assert_eq!(
            out["ok"]["runs"],
            json!([{"id": runs[0], "previous": "leased"}, {"id": runs[1], "previous": "pending"}, {"id": runs[2], "previous": "pending"}]),
            "{name}"
        );
        assert_eq!(out["finishedBatches"][0]["state"], "cancelled");
        assert_eq!(counts(&s, &id), [3, 0, 0, 0, 0, 3], "{name}");
        // The running handler learns at its heartbeat and reports back.
        let t = token_of(&c, &runs[0]);
        let hb = ok(
            &mut s,
            json!({"op": "heartbeat", "now": T0 + 2, "id": runs[0], "token": t, "leaseMs": 1000}),
        );
        assert_eq!(hb["cancelRequested"], true);
        let done = ok(
            &mut s,
            json!({"op": "complete", "now": T0 + 3, "id": runs[0], "token": t, "output": 1}),
        );
        assert_eq!(done["status"], "cancelled", "{name}");
        assert_eq!(
            counts(&s, &id),
            [3, 0, 0, 0, 0, 3],
            "{name}: the late report moves nothing"
        );
        assert_eq!(
            err(
                &mut s,
                json!({"op": "cancelBatch", "now": T0 + 4, "id": id})
            ),
            "DURQ_INVALID_STATE"
        );
        assert_eq!(
            err(
                &mut s,
                json!({"op": "cancelBatch", "now": T0 + 4, "id": "0190b6a4-0000-7000-8000-000000000000"})
            ),
            "DURQ_NOT_FOUND"
        );
    }
}

#[test]
fn single_run_cancel_and_delete_keep_the_batch_consistent() {
    for (name, mut s) in backends() {
        let b = batch_of(&mut s, "q", &["a", "a", "a"], json!({}));
        let id = b["id"].as_str().unwrap().to_string();
        let runs = run_ids(&b);
        ok(
            &mut s,
            json!({"op": "cancel", "now": T0 + 1, "id": runs[0]}),
        );
        assert_eq!(counts(&s, &id), [3, 2, 0, 0, 0, 1], "{name}");
        // A finished run deleted stays counted: the counts are the batch's history.
        ok(
            &mut s,
            json!({"op": "deleteRun", "now": T0 + 2, "id": runs[0]}),
        );
        assert_eq!(counts(&s, &id), [3, 2, 0, 0, 0, 1], "{name}");
        // A pending run deleted leaves the batch.
        ok(
            &mut s,
            json!({"op": "deleteRun", "now": T0 + 3, "id": runs[1]}),
        );
        assert_eq!(counts(&s, &id), [2, 1, 0, 0, 0, 1], "{name}");
        let c = claim_in(&mut s, "q", T0 + 4, 1);
        let out = committed(
            &mut s,
            json!({"op": "complete", "now": T0 + 5, "id": runs[2], "token": token_of(&c, &runs[2]), "output": 0}),
        );
        // One completed, one cancelled: not every run completed.
        assert_eq!(out["finishedBatches"][0]["state"], "cancelled", "{name}");
        // A retriggered run does not join the (terminal) batch.
        let again = ok(
            &mut s,
            json!({"op": "retrigger", "now": T0 + 6, "id": runs[2]}),
        );
        let r = serde_json::to_value(s.get_run(again["id"].as_str().unwrap()).unwrap()).unwrap();
        assert_eq!(r["batchId"], Value::Null, "{name}");
        assert_eq!(get(&s, &id)["state"], "cancelled");
    }
}

#[test]
fn a_batch_idempotency_key_returns_the_existing_batch_and_writes_nothing() {
    for (name, mut s) in backends() {
        let first = batch_of(
            &mut s,
            "q",
            &["a", "b"],
            json!({"idempotencyKey": "dir:lib"}),
        );
        let (runs, batches) = (count(&s, "runs"), count(&s, "batches"));
        let again = batch_of(
            &mut s,
            "q",
            &["a", "b", "b"],
            json!({"idempotencyKey": "dir:lib"}),
        );
        assert_eq!(again["id"], first["id"], "{name}");
        assert_eq!(again["created"], false);
        assert_eq!(
            run_ids(&again),
            run_ids(&first),
            "{name}: the existing batch's runs"
        );
        assert!(again["runs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["created"] == false));
        assert_eq!(
            (count(&s, "runs"), count(&s, "batches")),
            (runs, batches),
            "{name}"
        );
        assert_eq!(
            get(&s, first["id"].as_str().unwrap())["idempotencyKey"],
            "dir:lib"
        );
    }
}

#[test]
fn bad_batches_are_refused_whole_and_nothing_is_half_written() {
    for (name, mut s) in backends() {
        batch_of(&mut s, "q", &["a"], json!({}));
        enqueue(&mut s, "a", json!({"idempotencyKey": "taken"}));
        let before = [
            count(&s, "runs"),
            count(&s, "batches"),
            count(&s, "active_batches"),
            count(&s, "run_labels"),
        ];
        let bad = [
            json!({"op": "enqueueBatch", "now": T0, "queue": "q", "runs": []}),
            json!({"op": "enqueueBatch", "now": T0, "queue": "q"}),
            json!({"op": "enqueueBatch", "now": T0, "queue": "", "runs": [{"job": "a", "input": 1}]}),
            json!({"op": "enqueueBatch", "now": T0, "queue": "q", "labels": {"bad key": "x"}, "runs": [{"job": "a", "input": 1}]}),
            // A later run is bad: the earlier ones must not stay.
            json!({"op": "enqueueBatch", "now": T0, "queue": "q", "runs": [{"job": "a", "input": 1, "labels": {"k": "v"}}, {"job": "", "input": 1}]}),
            json!({"op": "enqueueBatch", "now": T0, "queue": "q", "runs": [{"job": "a", "input": 1}, {"job": "a", "input": 1, "queue": "other"}]}),
            json!({"op": "enqueueBatch", "now": T0, "queue": "q", "runs": [{"job": "a", "input": 1, "labels": {"k": "v"}}, {"job": "a", "input": 2, "idempotencyKey": "taken"}]}),
            json!({"op": "enqueueBatch", "now": T0, "queue": "q", "runs": [{"job": "a", "input": 1, "maxAttempts": 0}]}),
            json!({"op": "enqueueBatch", "now": -1, "queue": "q", "runs": [{"job": "a", "input": 1}]}),
            json!({"op": "enqueueBatch", "now": T0, "queue": "q", "runs": [
                {"job": "a", "input": 1, "idempotencyKey": "k"}, {"job": "a", "input": 2, "idempotencyKey": "k"}]}),
        ];
        let codes: Vec<String> = bad.iter().map(|op| err(&mut s, op.clone())).collect();
        assert_eq!(
            codes,
            [
                "DURQ_INVALID_INPUT",
                "DURQ_INVALID_INPUT",
                "DURQ_INVALID_INPUT",
                "DURQ_INVALID_INPUT",
                "DURQ_INVALID_INPUT",
                "DURQ_INVALID_INPUT",
                "DURQ_INVALID_STATE",
                "DURQ_INVALID_INPUT",
                "DURQ_INVALID_INPUT",
                "DURQ_INVALID_INPUT",
            ],
            "{name}"
        );
        let after = [
            count(&s, "runs"),
            count(&s, "batches"),
            count(&s, "active_batches"),
            count(&s, "run_labels"),
        ];
        assert_eq!(
            after, before,
            "{name}: nothing of a refused batch was written"
        );
        assert_eq!(s.get_batch("nope").unwrap_err().code(), "DURQ_NOT_FOUND");
        assert_eq!(
            s.list_active_batches("").unwrap_err().code(),
            "DURQ_INVALID_INPUT"
        );
        assert_eq!(
            err(
                &mut s,
                json!({"op": "reconcileBatches", "now": T0, "graceMs": -1})
            ),
            "DURQ_INVALID_INPUT"
        );
        let f = BatchFilter {
            cursor: Some("x".into()),
            ..Default::default()
        };
        assert_eq!(s.list_batches(&f).unwrap_err().code(), "DURQ_INVALID_INPUT");
    }
}

#[test]
fn a_batch_insert_that_fails_after_its_membership_leaves_nothing_behind() {
    for (name, mut s) in backends() {
        s.connection()
            .execute_batch(
                "CREATE TEMP TRIGGER fail_batch_insert BEFORE INSERT ON main.batches
                 BEGIN SELECT RAISE(ABORT, 'injected: batch insert failed'); END;",
            )
            .unwrap();
        let out = apply(
            &mut s,
            json!([
                {"op": "enqueue", "now": T0, "job": "a", "input": "before"},
                {"op": "enqueueBatch", "now": T0, "queue": "q", "runs": [{"job": "a", "input": 1}]},
                {"op": "enqueue", "now": T0, "job": "a", "input": "after"},
            ]),
        );
        assert_eq!(
            out[1]["err"]["code"], "SQLITE_CONSTRAINT",
            "{name}: {}",
            out[1]
        );
        assert!(
            out[0].get("ok").is_some() && out[2].get("ok").is_some(),
            "{name}: neighbours commit"
        );
        assert!(
            members(&s).is_empty(),
            "{name}: the membership row written first was rolled back"
        );
        assert_eq!(count(&s, "batches"), 0);
        assert_eq!(count(&s, "runs"), 2, "{name}: only the neighbours' runs");
        assert!(active_ids(&s, "q").is_empty());
        s.connection()
            .execute_batch("DROP TRIGGER temp.fail_batch_insert")
            .unwrap();
        batch_of(&mut s, "q", &["a"], json!({}));
        assert_eq!(active_ids(&s, "q").len(), 1, "{name}");
    }
}

#[test]
fn a_terminal_batchs_leftover_membership_is_dropped_on_read_best_effort() {
    for (name, mut s) in backends() {
        let keep = batch_of(&mut s, "q", &["a"], json!({}))["id"]
            .as_str()
            .unwrap()
            .to_string();
        let done = batch_of(&mut s, "q", &["a"], json!({}))["id"]
            .as_str()
            .unwrap()
            .to_string();
        ok(
            &mut s,
            json!({"op": "cancelBatch", "now": T0 + 1, "id": done}),
        );
        // Leave the terminal batch's membership behind (as a crash between
        // two non-atomic writes, or an older build, would).
        s.connection()
            .execute(
                "INSERT INTO active_batches (queue, batch_id, added_at) VALUES ('q', ?1, 0)",
                [&done],
            )
            .unwrap();
        // A failing removal must not fail the read.
        s.connection()
            .execute_batch(
                "CREATE TEMP TRIGGER fail_member_delete BEFORE DELETE ON main.active_batches
                 BEGIN SELECT RAISE(ABORT, 'injected: delete failed'); END;",
            )
            .unwrap();
        assert_eq!(
            active_ids(&s, "q"),
            vec![keep.clone()],
            "{name}: the terminal member is skipped"
        );
        assert_eq!(members(&s).len(), 2, "{name}: the failed removal left it");
        s.connection()
            .execute_batch("DROP TRIGGER temp.fail_member_delete")
            .unwrap();
        assert_eq!(active_ids(&s, "q"), vec![keep.clone()], "{name}");
        assert_eq!(
            members(&s),
            vec![("q".to_string(), keep.clone())],
            "{name}: removed on read"
        );
        // The same leftover is also swept by the reconcile.
        s.connection()
            .execute(
                "INSERT INTO active_batches (queue, batch_id, added_at) VALUES ('q', ?1, 0)",
                [&done],
            )
            .unwrap();
        let r = ok(&mut s, json!({"op": "reconcileBatches", "now": T0 + 2}));
        assert_eq!(
            r["droppedTerminal"],
            json!([{"queue": "q", "batchId": done}]),
            "{name}"
        );
        assert_eq!(r["added"], json!([]));
        assert_eq!(members(&s), vec![("q".to_string(), keep)], "{name}");
    }
}

#[test]
fn a_member_whose_batch_row_is_missing_is_skipped_on_read_and_dropped_after_the_grace() {
    for (name, mut s) in backends() {
        let live = batch_of(&mut s, "q", &["a"], json!({}))["id"]
            .as_str()
            .unwrap()
            .to_string();
        let ghost = "0190b6a4-0000-7000-8000-00000000beef";
        s.connection()
            .execute(
                "INSERT INTO active_batches (queue, batch_id, added_at) VALUES ('q', ?1, ?2)",
                rusqlite::params![ghost, T0],
            )
            .unwrap();
        assert_eq!(active_ids(&s, "q"), vec![live.clone()], "{name}: skipped");
        assert_eq!(members(&s).len(), 2, "{name}: and not removed by the read");
        let r = ok(
            &mut s,
            json!({"op": "reconcileBatches", "now": T0 + 59_999, "graceMs": 60_000}),
        );
        assert_eq!(
            r["droppedMissing"],
            json!([]),
            "{name}: younger than the grace"
        );
        assert_eq!(r["keptMissing"], 1);
        let r = ok(
            &mut s,
            json!({"op": "reconcileBatches", "now": T0 + 60_000, "graceMs": 60_000}),
        );
        assert_eq!(
            r["droppedMissing"],
            json!([{"queue": "q", "batchId": ghost}]),
            "{name}"
        );
        assert_eq!(r["keptMissing"], 0);
        assert_eq!(members(&s), vec![("q".to_string(), live)], "{name}");
    }
}

#[test]
fn reconcile_re_adds_missing_membership_and_is_idempotent() {
    for (name, mut s) in backends() {
        let id = batch_of(&mut s, "q", &["a"], json!({}))["id"]
            .as_str()
            .unwrap()
            .to_string();
        s.connection()
            .execute("DELETE FROM active_batches", [])
            .unwrap();
        assert!(
            active_ids(&s, "q").is_empty(),
            "{name}: membership is advisory: lost, the batch is not listed"
        );
        assert_eq!(
            get(&s, &id)["state"],
            "active",
            "{name}: the batch row is authoritative"
        );
        let r = ok(
            &mut s,
            json!({"op": "reconcileBatches", "now": T0 + 1, "graceMs": 0}),
        );
        assert_eq!(r["added"], json!([{"queue": "q", "batchId": id}]), "{name}");
        assert_eq!(active_ids(&s, "q"), vec![id.clone()]);
        let again = ok(
            &mut s,
            json!({"op": "reconcileBatches", "now": T0 + 2, "graceMs": 0}),
        );
        assert_eq!(
            again,
            json!({"added": [], "droppedTerminal": [], "droppedMissing": [], "keptMissing": 0}),
            "{name}: a second sweep changes nothing"
        );
        // Membership writes are idempotent: a duplicate member insert is a no-op.
        s.connection()
            .execute(
                "INSERT INTO active_batches (queue, batch_id, added_at) VALUES ('q', ?1, 5) ON CONFLICT DO NOTHING",
                [&id],
            )
            .unwrap();
        assert_eq!(members(&s).len(), 1);
    }
}

#[test]
fn list_active_batches_is_a_primary_key_prefix_scan_resolved_by_primary_key() {
    let s = Store::open_in_memory(1).unwrap();
    let mut st = s
        .connection()
        .prepare(&format!(
            "EXPLAIN QUERY PLAN {}",
            batch::LIST_ACTIVE_BATCHES_SQL
        ))
        .unwrap();
    let lines: Vec<String> = st
        .query_map(["q"], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        lines,
        [
            "SEARCH a USING PRIMARY KEY (queue=?)",
            "SEARCH b USING PRIMARY KEY (id=?) LEFT-JOIN",
        ],
        "the plan must seek the membership by queue and each batch by id, never scan or sort"
    );
}

#[test]
fn list_batches_pages_history_by_queue_and_state() {
    for (name, mut s) in backends() {
        let mut ids = Vec::new();
        for i in 0..5 {
            let q = if i % 2 == 0 { "even" } else { "odd" };
            ids.push(
                batch_of(&mut s, q, &["a"], json!({}))["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        ok(
            &mut s,
            json!({"op": "cancelBatch", "now": T0 + 1, "id": ids[2]}),
        );
        let page = |s: &Store, f: BatchFilter| -> (Vec<String>, Option<String>) {
            let p = s.list_batches(&f).unwrap();
            (p.batches.into_iter().map(|b| b.id).collect(), p.next_cursor)
        };
        let (all, _) = page(&s, BatchFilter::default());
        assert_eq!(
            all,
            ids.iter().rev().cloned().collect::<Vec<_>>(),
            "{name}: newest first"
        );
        let (even, cur) = page(
            &s,
            BatchFilter {
                queue: Some("even".into()),
                limit: Some(2),
                ..Default::default()
            },
        );
        assert_eq!(even, vec![ids[4].clone(), ids[2].clone()], "{name}");
        let (rest, cur) = page(
            &s,
            BatchFilter {
                queue: Some("even".into()),
                limit: Some(2),
                cursor: cur,
                ..Default::default()
            },
        );
        assert_eq!((rest, cur), (vec![ids[0].clone()], None), "{name}");
        let (active_even, _) = page(
            &s,
            BatchFilter {
                queue: Some("even".into()),
                state: Some(BatchState::Active),
                ..Default::default()
            },
        );
        assert_eq!(active_even, vec![ids[4].clone(), ids[0].clone()], "{name}");
        let (cancelled, _) = page(
            &s,
            BatchFilter {
                state: Some(BatchState::Cancelled),
                ..Default::default()
            },
        );
        assert_eq!(cancelled, vec![ids[2].clone()], "{name}");
        let (active_all, _) = page(
            &s,
            BatchFilter {
                state: Some(BatchState::Active),
                ..Default::default()
            },
        );
        assert_eq!(active_all.len(), 4, "{name}");
        assert_eq!(
            s.list_batches(&BatchFilter {
                limit: Some(0),
                ..Default::default()
            })
            .unwrap_err()
            .code(),
            "DURQ_INVALID_INPUT"
        );
    }
}

#[test]
fn list_runs_by_batch_and_purge_of_finished_batches() {
    for (name, mut s) in backends() {
        let b = batch_of(&mut s, "q", &["a", "b", "a"], json!({}));
        let id = b["id"].as_str().unwrap().to_string();
        enqueue(&mut s, "a", json!({"queue": "q"}));
        let f = RunFilter {
            batch_id: Some(id.clone()),
            limit: Some(2),
            ..Default::default()
        };
        let p = s.list_runs(&f).unwrap();
        let mut want = run_ids(&b);
        want.reverse();
        assert_eq!(
            p.runs.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
            want[..2],
            "{name}"
        );
        assert!(p.next_cursor.is_some());
        let f = RunFilter {
            batch_id: Some(id.clone()),
            job: Some("b".into()),
            ..Default::default()
        };
        assert_eq!(s.list_runs(&f).unwrap().runs.len(), 1, "{name}");

        ok(
            &mut s,
            json!({"op": "cancelBatch", "now": T0 + 10, "id": id}),
        );
        let kept = batch_of(&mut s, "q", &["a"], json!({}))["id"]
            .as_str()
            .unwrap()
            .to_string();
        let out = ok(
            &mut s,
            json!({"op": "purgeRuns", "now": T0 + 20, "olderThan": T0 + 11}),
        );
        assert_eq!(out, json!({"deleted": 3}), "{name}");
        let out = ok(
            &mut s,
            json!({"op": "purgeBatches", "now": T0 + 20, "olderThan": T0 + 11}),
        );
        assert_eq!(out, json!({"deleted": 1}), "{name}");
        assert_eq!(
            err(
                &mut s,
                json!({"op": "purgeBatches", "now": T0, "olderThan": T0, "limit": 0})
            ),
            "DURQ_INVALID_INPUT"
        );
        assert_eq!(s.get_batch(&id).unwrap_err().code(), "DURQ_NOT_FOUND");
        assert_eq!(
            get(&s, &kept)["state"],
            "active",
            "{name}: live batches are never purged"
        );
    }
}

#[test]
fn batch_ids_keep_increasing_across_reopen() {
    for (name, options) in file_routes() {
        let dir = common::TempDir::new("batch-reopen");
        let path = dir.path("b.db");
        let first = {
            let mut s = Store::open(&path, &options).unwrap();
            let b = batch_of(&mut s, "q", &["a"], json!({}));
            // No run is left: ids must resume after the batch's id alone.
            ok(
                &mut s,
                json!({"op": "deleteRun", "now": T0, "id": run_ids(&b)[0]}),
            );
            assert_eq!(count(&s, "runs"), 0);
            b["id"].as_str().unwrap().to_string()
        };
        let mut s = Store::open(&path, &options).unwrap();
        // The clock went back an hour: ids must still grow.
        let op = json!({"op": "enqueueBatch", "now": T0 - 3_600_000, "queue": "q", "runs": [{"job": "a", "input": 1}]});
        let second = ok(&mut s, op)["id"].as_str().unwrap().to_string();
        assert!(second > first, "{name}: {second} > {first}");
        assert_eq!(
            get(&s, &first)["state"],
            "cancelled",
            "{name}: its only run was deleted"
        );
        assert_eq!(active_ids(&s, "q"), vec![second.clone()], "{name}");
        let newest = &s.list_batches(&BatchFilter::default()).unwrap().batches[0];
        assert_eq!(newest.id, second, "{name}: newest first");
    }
}

#[cfg(not(target_family = "wasm"))]
#[test]
fn a_version_1_database_migrates_and_its_runs_stay_outside_any_batch() {
    let dir = common::TempDir::new("migrate");
    let path = dir.path("v1.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(durq::schema::MIGRATIONS[0]).unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
        c.execute(
            "INSERT INTO runs (id, queue, job, status, run_at, created_at, updated_at, input, max_attempts, backoff)
             VALUES ('0190b6a4-0000-7000-8000-000000000001', 'q', 'a', 'pending', 0, 0, 0, '1', 3, '{}')",
            [],
        )
        .unwrap();
    }
    let mut s = Store::open(&path, &Default::default()).unwrap();
    let v: i64 = s
        .connection()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, durq::schema::latest_version());
    let run =
        serde_json::to_value(s.get_run("0190b6a4-0000-7000-8000-000000000001").unwrap()).unwrap();
    assert_eq!(run["batchId"], Value::Null);
    let id = batch_of(&mut s, "q", &["a"], json!({}))["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(active_ids(&s, "q"), vec![id]);
}
