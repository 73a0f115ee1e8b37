//! The core's conformance suite: queue, labels, steps, leases, retries,
//! cancellation, pagination and bad input, run against every storage backend
//! available on the target: memory everywhere; natively a file through
//! SQLite's own VFS and a file through the host VFS on `std::fs`; on wasm a
//! file through the host VFS on `node:fs` (the `HostFs` route the Node
//! entry takes), and in a browser worker a file through the OPFS pool. The
//! same file runs natively (`cargo test --test core`), as wasm in Node
//! (`cargo test --target wasm32-unknown-unknown --test core`) and in
//! headless Chromium (`tests/browser.rs`).

mod common;

#[cfg(all(target_family = "wasm", target_os = "unknown"))]
use durq_test_macros::test;

use durq::{query, RunFilter, Store};
use serde_json::{json, Value};

use common::suite::*;

#[test]
fn enqueue_and_read_back() {
    for (name, mut s) in backends() {
        let id = enqueue(
            &mut s,
            "a",
            json!({"labels": {"tenant": "acme", "kind": "x"}, "priority": 2}),
        );
        let run = serde_json::to_value(s.get_run(&id).unwrap()).unwrap();
        assert_eq!(run["job"], "a", "{name}");
        assert_eq!(run["status"], "pending");
        assert_eq!(run["input"], json!({"n": 1}));
        assert_eq!(run["labels"], json!({"kind": "x", "tenant": "acme"}));
        assert_eq!(run["priority"], 2);
        let n: i64 = s
            .connection()
            .query_row(
                "SELECT count(*) FROM run_labels WHERE run_id = ?1 AND key IN ('tenant', 'kind')",
                [&id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(s.integrity_check().unwrap(), vec!["ok".to_string()]);
    }
}

#[test]
fn idempotency_key_returns_the_existing_run() {
    for (_, mut s) in backends() {
        let a = ok(
            &mut s,
            json!({"op": "enqueue", "now": T0, "job": "a", "input": 1, "idempotencyKey": "k"}),
        );
        let b = ok(
            &mut s,
            json!({"op": "enqueue", "now": T0 + 5, "job": "a", "input": 2, "idempotencyKey": "k"}),
        );
        assert_eq!(a["created"], true);
        assert_eq!(b["created"], false);
        assert_eq!(a["id"], b["id"]);
        // Same key, other job: a different run.
        let c = ok(
            &mut s,
            json!({"op": "enqueue", "now": T0, "job": "b", "input": 1, "idempotencyKey": "k"}),
        );
        assert_ne!(c["id"], a["id"]);
        assert_eq!(s.stats().unwrap().pending, 2);
    }
}

#[test]
fn claims_in_priority_then_run_at_then_creation_order() {
    for (_, mut s) in backends() {
        let low = enqueue(&mut s, "a", json!({}));
        let high = enqueue(&mut s, "a", json!({"priority": 5}));
        let later = enqueue(&mut s, "a", json!({"runAt": T0 + 10_000}));
        let low2 = enqueue(&mut s, "b", json!({}));
        let early = enqueue(&mut s, "a", json!({"runAt": T0 - 1}));
        let c = claim(&mut s, T0, 10);
        let got: Vec<&str> = c["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            got,
            vec![high.as_str(), early.as_str(), low.as_str(), low2.as_str()]
        );
        assert_eq!(status(&s, &later), "pending");
        assert_eq!(
            s.next_wake_at("default").unwrap(),
            Some(T0 + 1000),
            "earliest lease expiry"
        );
        // The delayed run is claimed once due, never before.
        assert_eq!(
            claim(&mut s, T0 + 999, 10)["runs"]
                .as_array()
                .unwrap()
                .len(),
            0
        );
        let c2 = ok(
            &mut s,
            json!({"op": "claim", "now": T0 + 10_000, "jobs": ["a"], "workerId": "w", "leaseMs": 60_000, "limit": 10}),
        );
        // Expired leases (T0+1000) come back first as pending; then all due runs are claimable again.
        assert_eq!(c2["expired"].as_array().unwrap().len(), 4);
        assert!(c2["runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == later.as_str()));
    }
}

#[test]
fn jobs_not_listed_are_left_for_other_workers() {
    for (_, mut s) in backends() {
        let other = enqueue(&mut s, "zzz", json!({}));
        assert_eq!(claim(&mut s, T0, 10)["runs"].as_array().unwrap().len(), 0);
        assert_eq!(status(&s, &other), "pending");
    }
}

#[test]
fn at_most_one_leased_run_per_concurrency_key() {
    for (_, mut s) in backends() {
        let r1 = enqueue(&mut s, "a", json!({"concurrencyKey": "user-1"}));
        let r2 = enqueue(&mut s, "a", json!({"concurrencyKey": "user-1"}));
        let r3 = enqueue(&mut s, "a", json!({"concurrencyKey": "user-2"}));
        let c = claim(&mut s, T0, 10);
        let got: Vec<&str> = c["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(got, vec![r1.as_str(), r3.as_str()]);
        assert_eq!(
            claim(&mut s, T0, 10)["runs"].as_array().unwrap().len(),
            0,
            "user-1 is busy"
        );
        let tok = c["runs"][0]["token"].clone();
        ok(
            &mut s,
            json!({"op": "complete", "now": T0 + 1, "id": r1, "token": tok, "output": null}),
        );
        let c = claim(&mut s, T0 + 2, 10);
        assert_eq!(c["runs"][0]["id"], r2.as_str());
    }
}

#[test]
fn expired_lease_is_recovered_and_the_old_holder_is_fenced_out() {
    for (_, mut s) in backends() {
        let id = enqueue(&mut s, "a", json!({"maxAttempts": 2}));
        let c1 = claim(&mut s, T0, 1);
        let t1 = c1["runs"][0]["token"].as_i64().unwrap();
        // Heartbeat renews the lease.
        let hb = ok(
            &mut s,
            json!({"op": "heartbeat", "now": T0 + 900, "id": id, "token": t1, "leaseMs": 1000}),
        );
        assert_eq!(hb["leaseExpiresAt"], T0 + 1900);
        assert_eq!(
            claim(&mut s, T0 + 1500, 1)["runs"]
                .as_array()
                .unwrap()
                .len(),
            0,
            "still leased"
        );
        // Lease expires; another worker claims it with a newer token.
        let c2 = claim(&mut s, T0 + 1900, 1);
        assert_eq!(c2["expired"][0]["id"], id.as_str());
        let t2 = c2["runs"][0]["token"].as_i64().unwrap();
        assert!(t2 > t1);
        assert_eq!(c2["runs"][0]["attempt"], 2);
        // Late writes by the old holder are refused and change nothing.
        for op in [
            json!({"op": "complete", "now": T0 + 2000, "id": id, "token": t1, "output": "late"}),
            json!({"op": "saveStep", "now": T0 + 2000, "id": id, "token": t1, "name": "s", "output": 1}),
            json!({"op": "heartbeat", "now": T0 + 2000, "id": id, "token": t1, "leaseMs": 1000}),
            json!({"op": "fail", "now": T0 + 2000, "id": id, "token": t1, "error": {"message": "x"}}),
        ] {
            assert_eq!(err(&mut s, op), "DURQ_LEASE_LOST");
        }
        assert_eq!(status(&s, &id), "leased");
        assert!(s.steps(&id).unwrap().is_empty());
        // Attempts used up: the next expiry fails the run.
        let c3 = claim(&mut s, T0 + 5000, 1);
        assert_eq!(c3["expired"][0]["status"], "failed");
        let run = serde_json::to_value(s.get_run(&id).unwrap()).unwrap();
        assert_eq!(run["status"], "failed");
        assert_eq!(run["error"]["name"], "LeaseExpired");
    }
}

#[test]
fn steps_are_replayed_on_the_next_attempt() {
    for (_, mut s) in backends() {
        let id = enqueue(&mut s, "a", json!({}));
        let t = claim(&mut s, T0, 1)["runs"][0]["token"].clone();
        ok(
            &mut s,
            json!({"op": "saveStep", "now": T0, "id": id, "token": t, "name": "fetch", "output": {"bytes": 3}}),
        );
        ok(
            &mut s,
            json!({"op": "progress", "now": T0, "id": id, "token": t, "progress": {"done": 1, "of": 2}}),
        );
        ok(
            &mut s,
            json!({"op": "log", "now": T0, "id": id, "token": t, "message": "hello"}),
        );
        // Crash: the lease expires, the run is claimed again with its steps.
        let c = claim(&mut s, T0 + 5000, 1);
        assert_eq!(c["runs"][0]["steps"], json!({"fetch": {"bytes": 3}}));
        let run = serde_json::to_value(s.get_run(&id).unwrap()).unwrap();
        assert_eq!(run["progress"], json!({"done": 1, "of": 2}));
        let logs = s.logs(&id).unwrap();
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].message, "hello");
    }
}

#[test]
fn failures_retry_with_backoff_then_fail_for_good() {
    for (_, mut s) in backends() {
        let id = enqueue(
            &mut s,
            "a",
            json!({"maxAttempts": 3, "backoff": {"initialMs": 1000, "factor": 2, "maxMs": 3000, "jitter": 0.5}}),
        );
        let mut now = T0;
        let mut delays = vec![];
        for attempt in 1..=3 {
            let c = claim(&mut s, now, 1);
            assert_eq!(c["runs"][0]["attempt"], attempt);
            let t = c["runs"][0]["token"].clone();
            let f = ok(
                &mut s,
                json!({"op": "fail", "now": now, "id": id, "token": t, "random": 0.0,
                "error": {"name": "Error", "message": format!("boom {attempt}"), "stack": "Error: boom\n    at x"}}),
            );
            if attempt < 3 {
                assert_eq!(f["status"], "pending");
                let at = f["runAt"].as_i64().unwrap();
                delays.push(at - now);
                assert_eq!(
                    claim(&mut s, at - 1, 1)["runs"].as_array().unwrap().len(),
                    0,
                    "never early"
                );
                now = at;
            } else {
                assert_eq!(f["status"], "failed");
            }
        }
        assert_eq!(delays, vec![1000, 2000]);
        let run = serde_json::to_value(s.get_run(&id).unwrap()).unwrap();
        assert_eq!(run["status"], "failed");
        assert_eq!(run["error"]["message"], "boom 3");
        assert_eq!(run["error"]["stack"], "Error: boom\n    at x");
        assert!(run["finishedAt"].is_i64());
    }
}

#[test]
fn backoff_is_capped_and_jitter_only_shortens() {
    let b = durq::Backoff {
        initial_ms: 1000.0,
        factor: 2.0,
        max_ms: 5000.0,
        jitter: 0.25,
    };
    assert_eq!(b.delay_ms(1, 0.0), 1000);
    assert_eq!(b.delay_ms(3, 0.0), 4000);
    assert_eq!(b.delay_ms(10, 0.0), 5000);
    assert_eq!(b.delay_ms(10, 1.0), 3750);
    assert_eq!(b.delay_ms(2, f64::NAN), 2000);
}

#[test]
fn non_retryable_failure_fails_at_once() {
    for (_, mut s) in backends() {
        let id = enqueue(&mut s, "a", json!({"maxAttempts": 5}));
        let t = claim(&mut s, T0, 1)["runs"][0]["token"].clone();
        let f = ok(
            &mut s,
            json!({"op": "fail", "now": T0, "id": id, "token": t, "retryable": false, "error": {"message": "bad"}}),
        );
        assert_eq!(f["status"], "failed");
    }
}

#[test]
fn cancel_pending_and_leased_runs() {
    for (_, mut s) in backends() {
        let p = enqueue(&mut s, "a", json!({"priority": -1}));
        let l = enqueue(&mut s, "a", json!({}));
        let t = claim(&mut s, T0, 1)["runs"][0]["token"].clone();
        assert_eq!(
            ok(&mut s, json!({"op": "cancel", "now": T0, "id": p}))["previous"],
            "pending"
        );
        assert_eq!(
            ok(&mut s, json!({"op": "cancel", "now": T0, "id": l}))["previous"],
            "leased"
        );
        // The holder learns of it at its next heartbeat; its writes are refused.
        let hb = ok(
            &mut s,
            json!({"op": "heartbeat", "now": T0 + 1, "id": l, "token": t, "leaseMs": 1000}),
        );
        assert_eq!(hb["cancelRequested"], true);
        assert_eq!(
            err(
                &mut s,
                json!({"op": "saveStep", "now": T0, "id": l, "token": t, "name": "x", "output": 1})
            ),
            "DURQ_LEASE_LOST"
        );
        assert_eq!(
            err(&mut s, json!({"op": "deleteRun", "now": T0, "id": l})),
            "DURQ_INVALID_STATE",
            "handler still running"
        );
        // Its completion only releases the lease: the run stays cancelled.
        assert_eq!(
            ok(
                &mut s,
                json!({"op": "complete", "now": T0, "id": l, "token": t, "output": 1})
            )["status"],
            "cancelled"
        );
        assert_eq!(
            err(
                &mut s,
                json!({"op": "complete", "now": T0, "id": l, "token": t, "output": 1})
            ),
            "DURQ_LEASE_LOST"
        );
        assert_eq!(status(&s, &l), "cancelled");
        assert_eq!(
            err(&mut s, json!({"op": "cancel", "now": T0, "id": l})),
            "DURQ_INVALID_STATE"
        );
        ok(&mut s, json!({"op": "deleteRun", "now": T0, "id": l}));
        assert_eq!(
            err(&mut s, json!({"op": "cancel", "now": T0, "id": "nope"})),
            "DURQ_NOT_FOUND"
        );
    }
}

#[test]
fn delete_retrigger_and_purge() {
    for (_, mut s) in backends() {
        let a = enqueue(&mut s, "a", json!({"labels": {"t": "1"}}));
        let t = claim(&mut s, T0, 1)["runs"][0]["token"].clone();
        assert_eq!(
            err(&mut s, json!({"op": "deleteRun", "now": T0, "id": a})),
            "DURQ_INVALID_STATE"
        );
        assert_eq!(
            err(&mut s, json!({"op": "retrigger", "now": T0, "id": a})),
            "DURQ_INVALID_STATE"
        );
        ok(
            &mut s,
            json!({"op": "saveStep", "now": T0, "id": a, "token": t, "name": "x", "output": 1}),
        );
        ok(
            &mut s,
            json!({"op": "complete", "now": T0 + 10, "id": a, "token": t, "output": {"r": 1}}),
        );
        let b = ok(&mut s, json!({"op": "retrigger", "now": T0 + 20, "id": a}))["id"]
            .as_str()
            .unwrap()
            .to_string();
        let rb = serde_json::to_value(s.get_run(&b).unwrap()).unwrap();
        assert_eq!(rb["retriedFrom"], a.as_str());
        assert_eq!(rb["labels"], json!({"t": "1"}));
        assert_eq!(rb["status"], "pending");
        // Purge: only terminal runs finished before the cut-off.
        assert_eq!(
            ok(
                &mut s,
                json!({"op": "purgeRuns", "now": T0, "olderThan": T0 + 10})
            )["deleted"],
            0
        );
        assert_eq!(
            ok(
                &mut s,
                json!({"op": "purgeRuns", "now": T0, "olderThan": T0 + 11})
            )["deleted"],
            1
        );
        assert_eq!(s.get_run(&a).unwrap_err().code(), "DURQ_NOT_FOUND");
        assert!(s.steps(&a).unwrap().is_empty());
        ok(&mut s, json!({"op": "deleteRun", "now": T0, "id": b}));
        let n: i64 = s
            .connection()
            .query_row("SELECT count(*) FROM run_labels", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
        assert_eq!(
            err(&mut s, json!({"op": "deleteRun", "now": T0, "id": b})),
            "DURQ_NOT_FOUND"
        );
    }
}

#[test]
fn a_bad_operation_fails_alone_and_its_neighbours_commit() {
    for (_, mut s) in backends() {
        let out = apply(
            &mut s,
            json!([
                {"op": "enqueue", "now": T0, "job": "a", "input": 1},
                {"op": "enqueue", "now": T0, "job": "a", "input": 2, "labels": {"bad key!": "x"}},
                {"op": "nonsense"},
                {"op": "enqueue", "now": -5, "job": "a", "input": 3},
                {"op": "enqueue", "now": T0, "job": "a", "input": 4},
            ]),
        );
        let codes: Vec<String> = out
            .iter()
            .map(|o| o["err"]["code"].as_str().unwrap_or("ok").to_string())
            .collect();
        assert_eq!(
            codes,
            vec![
                "ok",
                "DURQ_INVALID_INPUT",
                "DURQ_INVALID_INPUT",
                "DURQ_INVALID_INPUT",
                "ok"
            ]
        );
        assert_eq!(s.stats().unwrap().pending, 2);
        let n: i64 = s
            .connection()
            .query_row("SELECT count(*) FROM run_labels", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0, "the failed op's label rows were rolled back with it");
    }
}

#[test]
fn enqueue_many_is_all_or_nothing() {
    for (_, mut s) in backends() {
        let code = err(
            &mut s,
            json!({"op": "enqueueMany", "now": T0, "runs": [
            {"job": "a", "input": 1}, {"job": "", "input": 2}]}),
        );
        assert_eq!(code, "DURQ_INVALID_INPUT");
        assert_eq!(s.stats().unwrap().pending, 0);
        let r = ok(
            &mut s,
            json!({"op": "enqueueMany", "now": T0, "runs": [{"job": "a", "input": 1}, {"job": "b", "input": 2}]}),
        );
        assert_eq!(r.as_array().unwrap().len(), 2);
    }
}

#[test]
fn bad_input_is_refused_with_a_code_and_nothing_is_lost() {
    for (_, mut s) in backends() {
        let keep = enqueue(&mut s, "a", json!({"labels": {"k": "v"}}));
        for (extra, why) in [
            (json!({"labels": {"": "x"}}), "empty label key"),
            (json!({"labels": {"k": "a\u{0}b"}}), "NUL in label value"),
            (json!({"labels": {"k\u{0}": "x"}}), "NUL in label key"),
            (
                json!({"labels": {"k": "x".repeat(300)}}),
                "long label value",
            ),
            (json!({"job": "a\u{0}"}), "NUL in job"),
            (json!({"job": ""}), "empty job"),
            (json!({"runAt": -1}), "negative runAt"),
            (json!({"runAt": 1.5}), "fractional runAt"),
            (json!({"runAt": "soon"}), "string runAt"),
            (json!({"priority": 1_i64 << 40}), "huge priority"),
            (json!({"maxAttempts": 0}), "zero attempts"),
            (
                json!({"backoff": {"initialMs": 1, "factor": 0.5}}),
                "shrinking backoff",
            ),
            (
                json!({"idempotencyKey": "x\u{0}"}),
                "NUL in idempotency key",
            ),
        ] {
            let mut op = json!({"op": "enqueue", "now": T0, "job": "a", "input": 1});
            op.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            assert_eq!(err(&mut s, op), "DURQ_INVALID_INPUT", "{why}");
        }
        assert!(s.apply_json(T0, "{not json").is_err());
        assert_eq!(
            s.apply_json(T0, "{\"op\":1}").unwrap_err().code(),
            "DURQ_INVALID_INPUT"
        );
        assert_eq!(
            err(
                &mut s,
                json!({"op": "claim", "now": T0, "jobs": ["a"], "workerId": "w", "leaseMs": 0, "limit": 1})
            ),
            "DURQ_INVALID_INPUT"
        );
        assert_eq!(
            err(
                &mut s,
                json!({"op": "claim", "now": T0, "jobs": ["a"], "workerId": "w", "leaseMs": 10, "limit": 0})
            ),
            "DURQ_INVALID_INPUT"
        );
        assert_eq!(
            s.list_runs(&RunFilter {
                limit: Some(0),
                ..Default::default()
            })
            .unwrap_err()
            .code(),
            "DURQ_INVALID_INPUT"
        );
        assert_eq!(
            s.list_runs(&RunFilter {
                cursor: Some("x".into()),
                ..Default::default()
            })
            .unwrap_err()
            .code(),
            "DURQ_INVALID_INPUT"
        );
        // What was stored before is intact.
        assert_eq!(s.stats().unwrap().pending, 1);
        assert_eq!(status(&s, &keep), "pending");
        assert_eq!(s.integrity_check().unwrap(), vec!["ok".to_string()]);
    }
}

#[test]
fn list_runs_filters_by_labels_status_job_and_pages_by_cursor() {
    for (_, mut s) in backends() {
        let mut acme = vec![];
        for i in 0..25 {
            let tenant = if i % 2 == 0 { "acme" } else { "other" };
            let id = enqueue(
                &mut s,
                if i % 3 == 0 { "b" } else { "a" },
                json!({"labels": {"tenant": tenant, "tier": if i % 4 == 0 { "gold" } else { "free" }}}),
            );
            if tenant == "acme" {
                acme.push(id);
            }
        }
        acme.reverse(); // newest first
        let labels = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        let mut seen = vec![];
        let mut cursor = None;
        loop {
            let page = s
                .list_runs(&RunFilter {
                    labels: labels(&[("tenant", "acme")]),
                    limit: Some(5),
                    cursor: cursor.clone(),
                    ..Default::default()
                })
                .unwrap();
            seen.extend(page.runs.iter().map(|r| r.id.clone()));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, acme);
        let gold = s
            .list_runs(&RunFilter {
                labels: labels(&[("tenant", "acme"), ("tier", "gold")]),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(gold.runs.len(), 7); // i % 4 == 0 for i in 0..25
        let b_gold = s
            .list_runs(&RunFilter {
                labels: labels(&[("tier", "gold")]),
                job: Some("b".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(b_gold.runs.len(), 3); // i in {0, 12, 24}
        let pending = s
            .list_runs(&RunFilter {
                status: Some(durq::Status::Pending),
                limit: Some(1000),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(pending.runs.len(), 25);
        let none = s
            .list_runs(&RunFilter {
                labels: labels(&[("tenant", "nobody")]),
                ..Default::default()
            })
            .unwrap();
        assert!(none.runs.is_empty() && none.next_cursor.is_none());
    }
}

/// The query plan of each hot query, read from `EXPLAIN QUERY PLAN`.
fn plan(s: &Store, sql: &str, params: &[rusqlite::types::Value]) -> String {
    common::plan(s.connection(), sql, params)
}

#[test]
fn label_filters_use_the_label_index_never_a_scan() {
    let s = Store::open_in_memory(1).unwrap();
    let mut labels = std::collections::BTreeMap::new();
    labels.insert("tenant".to_string(), "acme".to_string());
    labels.insert("tier".to_string(), "gold".to_string());
    let (sql, params, _) = query::list_runs_sql(
        &RunFilter {
            labels: Some(labels.clone()),
            status: Some(durq::Status::Failed),
            cursor: Some("0192f000-0000-7000-8000-000000000000".into()),
            ..Default::default()
        },
        false,
    )
    .unwrap();
    let p = plan(&s, &sql, &params);
    assert!(
        p.contains("SEARCH l0 USING PRIMARY KEY (key=? AND value=? AND run_id<?)"),
        "{p}"
    );
    assert!(
        p.lines()
            .any(|l| l.starts_with("SEARCH r USING") && l.contains("id=?)")),
        "runs by key: {p}"
    );
    assert!(
        p.contains("USING PRIMARY KEY (key=? AND value=? AND run_id=?)"),
        "{p}"
    );
    assert!(!p.contains("SCAN"), "no full scan: {p}");
    assert!(!p.contains("TEMP B-TREE"), "no sort: {p}");
    // Driven by a rare status instead, each label is a primary-key probe.
    let (sql, params, _) = query::list_runs_sql(
        &RunFilter {
            labels: Some(labels),
            status: Some(durq::Status::Failed),
            ..Default::default()
        },
        true,
    )
    .unwrap();
    let p = plan(&s, &sql, &params);
    assert!(
        p.contains("SEARCH r USING INDEX runs_status (status=?)"),
        "{p}"
    );
    assert!(
        p.contains("USING PRIMARY KEY (key=? AND value=? AND run_id=?)"),
        "{p}"
    );
    assert!(!p.contains("SCAN") && !p.contains("TEMP B-TREE"), "{p}");
}

#[test]
fn status_filter_and_claim_use_their_indexes() {
    let s = Store::open_in_memory(1).unwrap();
    let (sql, params, _) = query::list_runs_sql(
        &RunFilter {
            status: Some(durq::Status::Failed),
            ..Default::default()
        },
        false,
    )
    .unwrap();
    let p = plan(&s, &sql, &params);
    assert!(
        p.contains("SEARCH r USING INDEX runs_status (status=?)"),
        "{p}"
    );
    assert!(!p.contains("TEMP B-TREE"), "{p}");
    let claim = durq::lease::CLAIM_AT_LEVEL_SQL;
    let v = |x: &str| rusqlite::types::Value::Text(x.into());
    let i = rusqlite::types::Value::Integer;
    let p = plan(&s, claim, &[v("default"), i(0), i(T0), v("[\"a\"]")]);
    assert!(
        p.contains("SEARCH runs USING INDEX runs_claim (queue=? AND priority=? AND run_at<?)"),
        "delayed runs are never scanned: {p}"
    );
    assert!(
        p.contains("USING INDEX runs_concurrency (concurrency_key=?)"),
        "{p}"
    );
    assert!(!p.contains("TEMP B-TREE FOR ORDER BY"), "{p}");
}

#[test]
fn a_file_database_survives_reopen_and_ids_keep_increasing() {
    for (name, options) in file_routes() {
        let dir = common::TempDir::new("reopen");
        let path = dir.path("r.db");
        let first = {
            let mut s = Store::open(&path, &options).unwrap();
            enqueue(&mut s, "a", json!({"labels": {"x": "y"}}))
        };
        let mut s = Store::open(&path, &options).unwrap();
        assert_eq!(status(&s, &first), "pending", "{name}");
        let by_label = s
            .list_runs(&RunFilter {
                labels: Some([("x".to_string(), "y".to_string())].into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(by_label.runs.len(), 1, "{name}");
        // Clock went back: ids still increase.
        let second = ok(
            &mut s,
            json!({"op": "enqueue", "now": T0 - 100_000, "job": "a", "input": 1}),
        )["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(second > first, "{name}");
        assert_eq!(
            s.integrity_check().unwrap(),
            vec!["ok".to_string()],
            "{name}"
        );
        let mode: String = s
            .connection()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal", "{name}");
    }
}

#[test]
fn expire_leases_at_open_makes_a_dead_owners_runs_claimable_at_once() {
    for (_, mut s) in backends() {
        let id = enqueue(&mut s, "a", json!({}));
        let t1 = claim(&mut s, T0, 1)["runs"][0]["token"].as_i64().unwrap();
        assert_eq!(
            ok(&mut s, json!({"op": "expireLeases", "now": T0 + 1}))["expired"],
            1
        );
        let c = claim(&mut s, T0 + 1, 1);
        assert_eq!(c["expired"][0]["id"], id.as_str());
        assert!(c["runs"][0]["token"].as_i64().unwrap() > t1);
    }
}

#[test]
fn expire_leases_of_expires_only_the_named_process_leases() {
    for (_, mut s) in backends() {
        let dead = enqueue(&mut s, "a", json!({}));
        let live = enqueue(&mut s, "a", json!({}));
        let c1 = ok(
            &mut s,
            json!({"op": "claim", "now": T0, "queue": "default", "jobs": ["a"], "workerId": "h:1:w1", "leaseMs": 30_000, "limit": 1}),
        );
        assert_eq!(c1["runs"][0]["id"], dead.as_str());
        ok(
            &mut s,
            json!({"op": "claim", "now": T0, "queue": "default", "jobs": ["a"], "workerId": "h:12:w1", "leaseMs": 30_000, "limit": 1}),
        );
        // "h:1:" is not a prefix of "h:12:w1": only the dead process's lease expires.
        let r = ok(
            &mut s,
            json!({"op": "expireLeasesOf", "now": T0 + 1, "ownerPrefix": "h:1:"}),
        );
        assert_eq!(r["expired"], 1);
        let c = claim(&mut s, T0 + 1, 5);
        assert_eq!(c["expired"].as_array().unwrap().len(), 1);
        assert_eq!(c["expired"][0]["id"], dead.as_str());
        assert_eq!(c["runs"][0]["id"], dead.as_str());
        let _ = live;
        let bad = err(
            &mut s,
            json!({"op": "expireLeasesOf", "now": T0 + 2, "ownerPrefix": ""}),
        );
        assert_eq!(bad, "DURQ_INVALID_INPUT");
    }
}

#[test]
fn next_wake_at_is_the_earliest_due_time_across_priorities() {
    for (_, mut s) in backends() {
        assert_eq!(s.next_wake_at("default").unwrap(), None);
        enqueue(&mut s, "a", json!({"priority": 9, "runAt": T0 + 500}));
        enqueue(&mut s, "a", json!({"priority": 1, "runAt": T0 + 300}));
        enqueue(&mut s, "a", json!({"priority": -4, "runAt": T0 + 200}));
        enqueue(
            &mut s,
            "a",
            json!({"priority": 1, "runAt": T0 + 100, "queue": "other"}),
        );
        assert_eq!(s.next_wake_at("default").unwrap(), Some(T0 + 200));
        assert_eq!(s.next_wake_at("other").unwrap(), Some(T0 + 100));
    }
}

#[test]
fn a_cancelled_run_keeps_its_concurrency_key_until_its_handler_stops() {
    for (_, mut s) in backends() {
        let r1 = enqueue(&mut s, "a", json!({"concurrencyKey": "k"}));
        let r2 = enqueue(&mut s, "a", json!({"concurrencyKey": "k"}));
        let t1 = claim(&mut s, T0, 10)["runs"][0]["token"].clone();
        ok(&mut s, json!({"op": "cancel", "now": T0, "id": r1}));
        assert_eq!(status(&s, &r1), "cancelled");
        assert_eq!(
            claim(&mut s, T0 + 1, 10)["runs"].as_array().unwrap().len(),
            0,
            "r1's handler may still run"
        );
        ok(
            &mut s,
            json!({"op": "fail", "now": T0 + 2, "id": r1, "token": t1, "error": {"message": "aborted"}}),
        );
        assert_eq!(status(&s, &r1), "cancelled");
        assert_eq!(claim(&mut s, T0 + 3, 10)["runs"][0]["id"], r2.as_str());
        // A holder that never reports back: the key is freed when its lease runs out.
        let r3 = enqueue(&mut s, "a", json!({"concurrencyKey": "j"}));
        let r4 = enqueue(&mut s, "a", json!({"concurrencyKey": "j"}));
        let c = claim(&mut s, T0 + 4, 10);
        assert_eq!(c["runs"][0]["id"], r3.as_str());
        ok(&mut s, json!({"op": "cancel", "now": T0 + 5, "id": r3}));
        let c = claim(&mut s, T0 + 5000, 10);
        assert!(c["runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == r4.as_str()));
        assert_eq!(status(&s, &r3), "cancelled");
    }
}

#[test]
fn a_claim_fills_its_limit_past_runs_sharing_a_key_and_across_priorities() {
    for (_, mut s) in backends() {
        for _ in 0..4 {
            enqueue(&mut s, "a", json!({"concurrencyKey": "k", "priority": 3}));
        }
        let other = enqueue(&mut s, "a", json!({"concurrencyKey": "l", "priority": 3}));
        let low = enqueue(&mut s, "a", json!({"priority": -2}));
        enqueue(&mut s, "a", json!({"priority": 7, "runAt": T0 + 60_000}));
        let c = claim(&mut s, T0, 3);
        let got: Vec<&str> = c["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[1], other.as_str());
        assert_eq!(got[2], low.as_str());
    }
}

#[test]
fn times_past_the_uuid_v7_range_and_runaway_backoff_are_refused() {
    for (_, mut s) in backends() {
        let max = durq::validate::MAX_TIME_MS;
        assert_eq!(
            err(
                &mut s,
                json!({"op": "enqueue", "now": max + 1, "job": "a", "input": 1})
            ),
            "DURQ_INVALID_INPUT"
        );
        assert_eq!(
            err(
                &mut s,
                json!({"op": "enqueue", "now": T0, "job": "a", "input": 1, "runAt": max + 1})
            ),
            "DURQ_INVALID_INPUT"
        );
        assert_eq!(
            err(
                &mut s,
                json!({"op": "enqueue", "now": T0, "job": "a", "input": 1, "backoff": {"initialMs": 1e300, "maxMs": 1e300}})
            ),
            "DURQ_INVALID_INPUT"
        );
        let id = enqueue(
            &mut s,
            "a",
            json!({"backoff": {"initialMs": 0, "factor": 1000, "maxMs": 5000}}),
        );
        let t = claim(&mut s, T0, 1)["runs"][0]["token"].clone();
        let f = ok(
            &mut s,
            json!({"op": "fail", "now": T0, "id": id, "token": t, "error": {"message": "x"}}),
        );
        assert_eq!(f["runAt"], T0, "initialMs 0 retries at once");
    }
}

#[test]
fn a_transaction_aborted_by_sqlite_fails_the_whole_batch_and_commits_nothing() {
    // SQLITE_FULL from max_page_count can roll back the whole transaction
    // (https://www.sqlite.org/lang_transaction.html, "Response To Errors
    // Within A Transaction"); then no operation of the batch may commit.
    for (_, mut s) in backends() {
        let keep = enqueue(&mut s, "a", json!({}));
        let pages: i64 = s
            .connection()
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        s.connection()
            .pragma_update(None, "max_page_count", pages + 2)
            .unwrap();
        let big = "x".repeat(200_000);
        let ops = json!([
            {"op": "enqueue", "now": T0, "job": "a", "input": 1},
            {"op": "enqueue", "now": T0, "job": "a", "input": big},
            {"op": "enqueue", "now": T0, "job": "a", "input": 3},
        ]);
        let before = s.stats().unwrap().pending;
        let ops = json!(ops.as_array().unwrap().iter().map(wire).collect::<Vec<_>>());
        match s.apply_json(T0, &ops.to_string()) {
            Err(e) => {
                assert_eq!(e.code(), "SQLITE_FULL", "{e}");
                assert_eq!(
                    s.stats().unwrap().pending,
                    before,
                    "nothing of a failed batch commits"
                );
            }
            Ok(out) => {
                // SQLite kept the transaction: exactly the ok ops committed.
                let out: Vec<Value> = serde_json::from_str(&out).unwrap();
                let oks = out.iter().filter(|o| o.get("ok").is_some()).count() as i64;
                assert_eq!(out[1]["err"]["code"], "SQLITE_FULL");
                assert_eq!(s.stats().unwrap().pending, before + oks);
            }
        }
        assert_eq!(status(&s, &keep), "pending");
        assert_eq!(s.integrity_check().unwrap(), vec!["ok".to_string()]);
    }
}

#[test]
fn stored_json_that_does_not_parse_is_reported_as_corrupt() {
    for (_, mut s) in backends() {
        let id = enqueue(&mut s, "a", json!({}));
        s.connection()
            .execute("UPDATE runs SET input = '{broken' WHERE id = ?1", [&id])
            .unwrap();
        let e = s.get_run(&id).unwrap_err();
        assert_eq!(e.code(), "DURQ_CORRUPT", "{e}");
        // Other runs stay readable.
        let other = enqueue(&mut s, "a", json!({}));
        assert_eq!(status(&s, &other), "pending");
        // The damaged run can still be cancelled and deleted (the search
        // index triggers do not choke on its JSON).
        ok(&mut s, json!({"op": "cancel", "now": T0, "id": id}));
        ok(&mut s, json!({"op": "deleteRun", "now": T0, "id": id}));
        assert_eq!(s.get_run(&id).unwrap_err().code(), "DURQ_NOT_FOUND");
    }
}

#[test]
fn a_rare_status_among_a_labels_many_runs_is_found_through_the_status_index() {
    for (_, mut s) in backends() {
        let ops: Vec<Value> = (0..3000)
            .map(|i| json!({"job": "a", "input": i, "labels": {"tenant": "acme"}}))
            .collect();
        ok(&mut s, json!({"op": "enqueueMany", "now": T0, "runs": ops}));
        let rare = enqueue(
            &mut s,
            "a",
            json!({"labels": {"tenant": "acme"}, "priority": 9}),
        );
        let other = enqueue(
            &mut s,
            "a",
            json!({"labels": {"tenant": "other"}, "priority": 8}),
        );
        let c = claim(&mut s, T0, 2);
        for r in c["runs"].as_array().unwrap() {
            ok(
                &mut s,
                json!({"op": "fail", "now": T0, "id": r["id"], "token": r["token"], "retryable": false, "error": {"message": "x"}}),
            );
        }
        let labels = Some(
            [("tenant".to_string(), "acme".to_string())]
                .into_iter()
                .collect(),
        );
        let page = s
            .list_runs(&RunFilter {
                labels,
                status: Some(durq::Status::Failed),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            page.runs.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            vec![rare.as_str()]
        );
        assert!(page.runs.iter().all(|r| r.id != other));
    }
}

#[test]
fn operations_cross_as_op_and_args_at_one_clock_per_commit() {
    for (name, mut s) in backends() {
        // A bad clock fails the whole group commit before anything is written.
        for now in [-1, 1 << 48] {
            let ops = json!([wire(&json!({"op": "enqueue", "job": "a", "input": 1}))]);
            assert_eq!(
                s.apply_json(now, &ops.to_string()).unwrap_err().code(),
                "DURQ_INVALID_INPUT"
            );
        }
        // An operation is `{"op", "args"}` (either order); unknown names,
        // missing args and args of the wrong shape fail that operation alone.
        let out: Vec<Value> = serde_json::from_str(
            &s.apply_json(
                T0,
                r#"[{"op":"nope","args":{}},{"op":"claim"},{"op":"cancel","args":{"id":7}},{"args":{"job":"a","input":1},"op":"enqueue"},{"op":"enqueue","args":{"job":"a","input":1}},7]"#,
            )
            .unwrap(),
        )
        .unwrap();
        let codes: Vec<&str> = out
            .iter()
            .map(|o| o["err"]["code"].as_str().unwrap_or("ok"))
            .collect();
        assert_eq!(
            codes,
            [
                "DURQ_INVALID_INPUT",
                "DURQ_INVALID_INPUT",
                "DURQ_INVALID_INPUT",
                "ok",
                "ok",
                "DURQ_INVALID_INPUT"
            ]
        );
        assert_eq!(s.stats().unwrap().pending, 2, "{name}");
        // Every operation of a commit runs at its `now`.
        let out: Vec<Value> = serde_json::from_str(
            &s.apply_json(
                T0 + 7,
                &json!([wire(&json!({"op": "enqueue", "job": "b", "input": 1}))]).to_string(),
            )
            .unwrap(),
        )
        .unwrap();
        let id = out[0]["ok"]["id"].as_str().unwrap();
        let run = serde_json::to_value(s.get_run(id).unwrap()).unwrap();
        assert_eq!(
            (run["createdAt"].as_i64(), run["runAt"].as_i64()),
            (Some(T0 + 7), Some(T0 + 7))
        );
    }
}
