//! Full-text search over runs, run history, bulk import and export, and
//! the deferred index maintenance of large imports (defer, restore, repair
//! at open), against every storage backend of the target (natively and as
//! wasm in Node, like `tests/core.rs`).

mod common;

#[cfg(all(target_family = "wasm", target_os = "unknown"))]
use durq_test_macros::test;

use common::suite::*;
use common::TempDir;
use durq::search::{RunOrder, SearchSyntax};
use durq::{RunFilter, Store};
use serde_json::{json, Value};

fn search(s: &Store, text: &str) -> Vec<String> {
    find(
        s,
        RunFilter {
            search: Some(text.into()),
            limit: Some(100),
            ..Default::default()
        },
    )
}

fn find(s: &Store, f: RunFilter) -> Vec<String> {
    s.list_runs(&f)
        .unwrap()
        .runs
        .into_iter()
        .map(|r| r.id)
        .collect()
}

fn search_err(s: &Store, f: RunFilter) -> &'static str {
    s.list_runs(&f).unwrap_err().code()
}

fn fts5(text: &str) -> RunFilter {
    RunFilter {
        search: Some(text.into()),
        search_syntax: Some(SearchSyntax::Fts5),
        ..Default::default()
    }
}

/// The index triggers installed on `runs`: (name, sql), by name.
fn triggers(s: &Store) -> Vec<(String, String)> {
    let mut st = s
        .connection()
        .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// Checks that the search index holds exactly what a rebuild from the runs
/// would: every (term, run, column, offset) of `runs_fts`, read through
/// `fts5vocab` (<https://www.sqlite.org/fts5.html#the_fts5vocab_virtual_table_module>),
/// against a fresh FTS5 table filled from the view `runs_search_text`. (The
/// index is contentless, so FTS5's own `integrity-check` cannot compare it
/// with the runs.)
fn fts_integrity(s: &Store) {
    assert_eq!(fts_diff(s), 0, "the search index differs from the runs");
}

/// Term instances in the search index or in a rebuild, not in both.
fn fts_diff(s: &Store) -> i64 {
    s.flush_search_index().unwrap();
    let c = s.connection();
    c.execute_batch(
        "DROP TABLE IF EXISTS temp.fts_check; DROP TABLE IF EXISTS temp.vocab_real; DROP TABLE IF EXISTS temp.vocab_check;
         CREATE VIRTUAL TABLE temp.fts_check USING fts5 (job, input, output, error, labels, tokenize = 'unicode61 remove_diacritics 2');
         INSERT INTO temp.fts_check (rowid, job, input, output, error, labels) SELECT rid, job, input, output, error, labels FROM runs_search_text;
         CREATE VIRTUAL TABLE temp.vocab_real USING fts5vocab (main, runs_fts, instance);
         CREATE VIRTUAL TABLE temp.vocab_check USING fts5vocab (temp, fts_check, instance);",
    )
    .unwrap();
    // Both ways, and the counts: EXCEPT would hide an entry indexed twice.
    let diff: i64 = c
        .query_row(
            "SELECT (SELECT count(*) FROM (SELECT * FROM temp.vocab_real EXCEPT SELECT * FROM temp.vocab_check))
                  + (SELECT count(*) FROM (SELECT * FROM temp.vocab_check EXCEPT SELECT * FROM temp.vocab_real))
                  + abs((SELECT count(*) FROM temp.vocab_real) - (SELECT count(*) FROM temp.vocab_check))",
            [],
            |r| r.get(0),
        )
        .unwrap();
    diff
}

#[test]
fn search_covers_job_string_values_error_and_labels_but_not_keys() {
    for (name, mut s) in backends() {
        let s = &mut *s;
        let email = enqueue(
            s,
            "send-email",
            json!({"input": {"to": "bob@example.com", "subject": "Invoice tenant-42", "n": 7321}, "labels": {"region": "acme"}}),
        );
        let resize = enqueue(s, "resize", json!({"input": "hello world"}));
        assert_eq!(
            search(s, "send-email"),
            std::slice::from_ref(&email),
            "{name}: job name"
        );
        assert_eq!(
            search(s, "bob"),
            std::slice::from_ref(&email),
            "{name}: a string value of input"
        );
        assert_eq!(
            search(s, "tenant-42"),
            std::slice::from_ref(&email),
            "{name}: punctuation splits a word into a phrase"
        );
        assert_eq!(
            search(s, "acme"),
            std::slice::from_ref(&email),
            "{name}: label value"
        );
        assert!(
            search(s, "to").is_empty(),
            "{name}: input keys are not indexed"
        );
        assert!(
            search(s, "region").is_empty(),
            "{name}: label keys are not indexed"
        );
        assert!(search(s, "7321").is_empty(), "{name}: numbers are not text");
        assert_eq!(
            search(s, "HELLO"),
            std::slice::from_ref(&resize),
            "{name}: a bare string input, any case"
        );
        assert!(
            search(s, "hello bob").is_empty(),
            "{name}: every word must match"
        );
        // Output and error join the index when they are written.
        let c = ok(
            s,
            json!({"op": "claim", "now": T0, "jobs": ["send-email", "resize"], "workerId": "w", "leaseMs": 1000, "limit": 10}),
        );
        let runs = c["runs"].as_array().unwrap().clone();
        let token = |id: &str| runs.iter().find(|r| r["id"] == id).unwrap()["token"].clone();
        assert!(search(s, "delivered").is_empty());
        ok(
            s,
            json!({"op": "complete", "now": T0 + 1, "id": email, "token": token(&email), "output": {"status": "delivered"}}),
        );
        assert_eq!(
            search(s, "delivered"),
            std::slice::from_ref(&email),
            "{name}: output"
        );
        ok(
            s,
            json!({"op": "fail", "now": T0 + 1, "id": resize, "token": token(&resize), "error": {"name": "Error", "message": "upstream timeout", "stack": "at frobnicate (x.js:1)"}}),
        );
        assert_eq!(
            search(s, "timeout"),
            std::slice::from_ref(&resize),
            "{name}: error message"
        );
        assert!(search(s, "frobnicate").is_empty(), "{name}: not the stack");
        // A deleted run leaves the index.
        ok(s, json!({"op": "deleteRun", "now": T0 + 2, "id": email}));
        assert!(search(s, "delivered").is_empty(), "{name}: deleted");
        assert_eq!(search(s, "hello"), [resize], "{name}");
        fts_integrity(s);
    }
}

#[test]
fn plain_words_cannot_inject_fts5_syntax_and_raw_queries_are_checked() {
    let mut s = Store::open_in_memory(1).unwrap();
    let a = enqueue(&mut s, "a", json!({"input": {"t": "alpha OR"}}));
    let b = enqueue(&mut s, "b", json!({"input": {"t": "beta"}}));
    // As words, OR, NOT, quotes, stars, colons and parentheses are text.
    assert!(
        search(&s, "alpha OR beta").is_empty(),
        "OR is a word here: no run has all three"
    );
    assert_eq!(search(&s, "alpha OR"), std::slice::from_ref(&a));
    for text in [
        "\"",
        "beta*",
        "job:b",
        "NOT",
        "(beta",
        "NEAR(beta)",
        "^beta",
    ] {
        assert!(
            s.list_runs(&RunFilter {
                search: Some(text.into()),
                ..Default::default()
            })
            .is_ok(),
            "{text}"
        );
    }
    // FTS5 syntax on request.
    let mut both = find(&s, fts5("alpha OR beta"));
    both.sort();
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(both, want);
    assert_eq!(find(&s, fts5("job: b")), std::slice::from_ref(&b));
    assert_eq!(find(&s, fts5("bet*")), [b]);
    for bad in [
        "AND",
        "(",
        "\"unterminated",
        "nosuch: x",
        "alpha NEAR(",
        "*",
    ] {
        assert_eq!(search_err(&s, fts5(bad)), "DURQ_INVALID_SEARCH", "{bad}");
    }
    // Bad filters are input errors, whatever the syntax.
    for f in [
        RunFilter {
            search: Some("   ".into()),
            ..Default::default()
        },
        RunFilter {
            search: Some("a\0b".into()),
            ..Default::default()
        },
        RunFilter {
            search: Some("x".repeat(5000)),
            ..Default::default()
        },
        RunFilter {
            order: Some(RunOrder::Relevance),
            ..Default::default()
        },
        RunFilter {
            search_syntax: Some(SearchSyntax::Fts5),
            ..Default::default()
        },
        RunFilter {
            search: Some("alpha".into()),
            cursor: Some("0192f000-0000-7000-8000-000000000000".into()),
            ..Default::default()
        },
        RunFilter {
            search: Some("alpha".into()),
            cursor: Some("s-1".into()),
            ..Default::default()
        },
        RunFilter {
            cursor: Some("s5".into()),
            ..Default::default()
        },
    ] {
        assert_eq!(search_err(&s, f), "DURQ_INVALID_INPUT");
    }
    let f: Result<RunFilter, _> =
        serde_json::from_value(json!({"search": "a", "searchSyntax": "regex"}));
    assert!(f.is_err(), "unknown syntax");
}

#[test]
fn search_combines_with_filters_and_pages_newest_first_or_by_relevance() {
    let mut s = Store::open_in_memory(1).unwrap();
    let mut ids = Vec::new();
    for i in 0..30 {
        let tenant = if i % 3 == 0 { "acme" } else { "globex" };
        let words = if i % 2 == 0 { "disk full" } else { "disk" };
        ids.push(enqueue(
            &mut s,
            if i % 5 == 0 { "b" } else { "a" },
            json!({"input": {"msg": words}, "labels": {"tenant": tenant}}),
        ));
    }
    // Newest first, paged by the cursor, combined with a label and a job.
    let filter = |cursor: Option<String>| RunFilter {
        search: Some("full".into()),
        labels: Some([("tenant".to_string(), "acme".to_string())].into()),
        limit: Some(2),
        cursor,
        ..Default::default()
    };
    let mut got = Vec::new();
    let mut cursor = None;
    loop {
        let page = s.list_runs(&filter(cursor)).unwrap();
        got.extend(page.runs.into_iter().map(|r| r.id));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
        assert!(cursor.as_ref().unwrap().starts_with('s'));
    }
    let want: Vec<String> = (0..30)
        .rev()
        .filter(|i| i % 6 == 0)
        .map(|i| ids[i].clone())
        .collect();
    assert_eq!(
        got, want,
        "acme runs with 'full', newest first, across pages"
    );
    let with_job = find(
        &s,
        RunFilter {
            search: Some("disk".into()),
            job: Some("b".into()),
            status: Some(durq::Status::Pending),
            ..Default::default()
        },
    );
    let want: Vec<String> = (0..30)
        .rev()
        .filter(|i| i % 5 == 0)
        .map(|i| ids[i].clone())
        .collect();
    assert_eq!(with_job, want);
    // Relevance: a run that says "disk" twice ranks above the others.
    let loud = enqueue(
        &mut s,
        "a",
        json!({"input": {"msg": "disk disk disk", "more": "disk"}}),
    );
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = s
            .list_runs(&RunFilter {
                search: Some("disk".into()),
                order: Some(RunOrder::Relevance),
                limit: Some(7),
                cursor,
                ..Default::default()
            })
            .unwrap();
        all.extend(page.runs.into_iter().map(|r| r.id));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
        assert!(cursor.as_ref().unwrap().starts_with('o'));
    }
    assert_eq!(all.len(), 31);
    assert_eq!(all[0], loud, "best match first");
    let distinct: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), 31, "no run on two pages");
}

fn events(s: &Store, id: &str) -> Vec<(String, i64, i64, Value)> {
    s.run_events(id)
        .unwrap()
        .into_iter()
        .map(|e| {
            let data = e
                .data
                .map(|d| serde_json::from_str(d.get()).unwrap())
                .unwrap_or(Value::Null);
            (e.kind, e.attempt, e.generation, data)
        })
        .collect()
}

#[test]
fn run_history_has_each_lifecycle_event_with_its_commit_generation() {
    for (name, mut s) in backends() {
        let s = &mut *s;
        let g0 = s.generation();
        let id = enqueue(
            s,
            "a",
            json!({"maxAttempts": 2, "backoff": {"initialMs": 0}}),
        );
        let c = claim(s, T0, 1);
        let token = c["runs"][0]["token"].clone();
        ok(
            s,
            json!({"op": "saveStep", "now": T0, "id": id, "token": token, "name": "fetch", "output": 1}),
        );
        // Saving the same step again stores nothing and adds no event.
        ok(
            s,
            json!({"op": "saveStep", "now": T0, "id": id, "token": token, "name": "fetch", "output": 1}),
        );
        ok(
            s,
            json!({"op": "fail", "now": T0 + 1, "id": id, "token": token, "error": {"message": "boom"}}),
        );
        let c = claim(s, T0 + 2, 1);
        let token = c["runs"][0]["token"].clone();
        // An operation that recorded an event and then failed writes none:
        // enqueueMany stores its first run, then fails on the second.
        let out = apply(
            s,
            json!([{"op": "enqueueMany", "now": T0 + 2, "runs": [{"job": "a", "input": 1}, {"job": "", "input": 2}]}]),
        );
        assert!(out[0].get("err").is_some(), "{name}: {out:?}");
        let all: i64 = s
            .connection()
            .query_row("SELECT count(*) FROM run_events", [], |r| r.get(0))
            .unwrap();
        // Only the events above, less the enqueued one: that is the run's
        // own row (schema 6), and the failed enqueue left no run.
        assert_eq!(all, 4, "{name}: only the events above");
        assert_eq!(
            s.stats().unwrap().pending + s.stats().unwrap().leased,
            1,
            "{name}"
        );
        // A failed operation in the same commit writes no event.
        let out = apply(
            s,
            json!([
                {"op": "complete", "now": T0 + 3, "id": id, "token": token, "output": 2},
                {"op": "complete", "now": T0 + 3, "id": id, "token": token, "output": 2},
            ]),
        );
        assert!(
            out[0].get("ok").is_some() && out[1].get("err").is_some(),
            "{name}: {out:?}"
        );
        let ev = events(s, &id);
        let kinds: Vec<&str> = ev.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "enqueued",
                "leased",
                "stepCompleted",
                "retried",
                "leased",
                "completed"
            ],
            "{name}"
        );
        assert_eq!(
            ev.iter().map(|e| e.1).collect::<Vec<_>>(),
            [0, 1, 1, 1, 2, 2],
            "{name}: attempts"
        );
        assert_eq!(ev[2].3, json!({"name": "fetch"}));
        assert_eq!(ev[3].3["error"], "boom");
        let gens: Vec<i64> = ev.iter().map(|e| e.2).collect();
        assert!(
            gens.windows(2).all(|w| w[0] < w[1]),
            "{name}: one commit each here: {gens:?}"
        );
        assert_eq!(gens[0], g0 + 1, "{name}");
        assert_eq!(*gens.last().unwrap(), s.generation(), "{name}");
        // A commit with no write is no new generation.
        let g = s.generation();
        claim(s, T0 + 4, 1);
        assert_eq!(s.generation(), g, "{name}: an empty claim wrote nothing");
        // Events of one commit share its generation; cancel and retrigger.
        let out = apply(
            s,
            json!([
                {"op": "enqueue", "now": T0 + 5, "job": "a", "input": 1},
                {"op": "enqueue", "now": T0 + 5, "job": "a", "input": 2},
            ]),
        );
        let (x, y) = (
            out[0]["ok"]["id"].as_str().unwrap().to_string(),
            out[1]["ok"]["id"].as_str().unwrap().to_string(),
        );
        assert_eq!(events(s, &x)[0].2, events(s, &y)[0].2, "{name}");
        ok(s, json!({"op": "cancel", "now": T0 + 6, "id": x}));
        assert_eq!(events(s, &x)[1].0, "cancelled");
        assert_eq!(events(s, &x)[1].3, json!({"previous": "pending"}));
        let again = ok(s, json!({"op": "retrigger", "now": T0 + 7, "id": x}))["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(events(s, &again)[0].3, json!({"retriedFrom": x}));
        // Deleting a run deletes its history, also the events of the
        // commit that deletes it.
        let out = apply(
            s,
            json!([
                {"op": "cancel", "now": T0 + 8, "id": y},
                {"op": "deleteRun", "now": T0 + 8, "id": y},
                {"op": "deleteRun", "now": T0 + 8, "id": x},
            ]),
        );
        assert!(out.iter().all(|o| o.get("ok").is_some()), "{name}: {out:?}");
        assert!(s.run_events(&x).unwrap().is_empty(), "{name}");
        assert!(
            s.run_events(&y).unwrap().is_empty(),
            "{name}: no orphan event"
        );
        let orphans: i64 = s
            .connection()
            .query_row(
                "SELECT count(*) FROM run_events WHERE run_id NOT IN (SELECT id FROM runs)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(orphans, 0, "{name}");
        assert!(s.run_events("nope").unwrap().is_empty());
    }
}

#[test]
fn generation_survives_a_reopen() {
    let dir = TempDir::new("gen");
    let path = dir.path("g.db");
    let opts = file_routes().remove(0).1;
    let g = {
        let mut s = Store::open(&path, &opts).unwrap();
        enqueue(&mut s, "a", json!({}));
        enqueue(&mut s, "a", json!({}));
        s.generation()
    };
    assert_eq!(g, 2);
    let mut s = Store::open(&path, &opts).unwrap();
    assert_eq!(s.generation(), 2);
    let id = enqueue(&mut s, "a", json!({}));
    assert_eq!(s.run_events(&id).unwrap()[0].generation, 3);
}

fn import(s: &mut Store, runs: Value, extra: Value) -> Value {
    let mut op = json!({"op": "importRuns", "now": T0 + 100, "runs": runs});
    op.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    apply(s, json!([op])).remove(0)
}

#[test]
fn import_keeps_ids_states_and_times_and_export_round_trips() {
    for (name, mut src) in backends() {
        let src = &mut *src;
        // Runs in every state, with labels, steps' worth of attempts, errors.
        let a = enqueue(
            src,
            "a",
            json!({"input": {"w": "pending one"}, "labels": {"tenant": "acme"}, "priority": 5}),
        );
        let b = enqueue(
            src,
            "a",
            json!({"input": {"w": "done one"}, "idempotencyKey": "k1"}),
        );
        enqueue(
            src,
            "b",
            json!({"input": {"w": "leased one"}, "concurrencyKey": "ck"}),
        );
        let c = claim(src, T0 + 1, 3);
        let tok_b = c["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == b)
            .unwrap()["token"]
            .clone();
        ok(
            src,
            json!({"op": "complete", "now": T0 + 2, "id": b, "token": tok_b, "output": {"r": "ok"}}),
        );
        ok(src, json!({"op": "cancel", "now": T0 + 3, "id": a}));
        let mut exported = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = src.export_runs(after.as_deref(), 2).unwrap();
            exported.extend(page.runs.iter().map(|r| serde_json::to_value(r).unwrap()));
            after = page.next_cursor;
            if after.is_none() {
                break;
            }
        }
        assert_eq!(exported.len(), 3, "{name}");
        let mut dst = Store::open_in_memory(9).unwrap();
        let out = import(&mut dst, Value::Array(exported.clone()), json!({}));
        assert_eq!(
            out["ok"],
            json!({"imported": 3, "skipped": 0}),
            "{name}: {out}"
        );
        for run in &exported {
            let id = run["id"].as_str().unwrap();
            let back = serde_json::to_value(dst.get_run(id).unwrap()).unwrap();
            assert_eq!(&back, run, "{name}: {id}");
        }
        // Labels, search and history work for imported runs.
        assert_eq!(
            find(
                &dst,
                RunFilter {
                    labels: Some([("tenant".into(), "acme".into())].into()),
                    ..Default::default()
                }
            ),
            std::slice::from_ref(&a)
        );
        assert_eq!(search(&dst, "done"), std::slice::from_ref(&b));
        let ev = events(&dst, &b);
        assert_eq!(ev.len(), 1);
        assert_eq!(
            (ev[0].0.as_str(), ev[0].3.clone()),
            ("imported", json!({"status": "completed"}))
        );
        // The leased run is recovered by the next claim (a fresh token).
        // (and the cancelled one's concurrency-free lease is released).
        let c = ok(
            &mut dst,
            json!({"op": "claim", "now": T0 + 5000, "jobs": ["b"], "workerId": "w", "leaseMs": 1000, "limit": 1}),
        );
        assert_eq!(c["expired"].as_array().unwrap().len(), 1, "{name}: {c}");
        assert_eq!(
            c["runs"].as_array().unwrap().len(),
            1,
            "{name}: retried at once: {c}"
        );
        // Without a lease expiry, an imported leased run is due for recovery now.
        let out = import(
            &mut dst,
            json!([{"job": "z", "input": 0, "status": "leased", "attempt": 1}]),
            json!({}),
        );
        assert_eq!(out["ok"]["imported"], 1);
        assert_eq!(
            dst.list_runs(&RunFilter {
                job: Some("z".into()),
                ..Default::default()
            })
            .unwrap()
            .runs[0]
                .lease_expires_at,
            Some(T0 + 100)
        );
        // New ids sort after imported ones.
        let fresh = enqueue(&mut dst, "a", json!({}));
        assert!(exported
            .iter()
            .all(|r| r["id"].as_str().unwrap() < fresh.as_str()));
        // Importing again: conflicts fail the chunk, or are skipped.
        let out = import(&mut dst, Value::Array(exported.clone()), json!({}));
        assert_eq!(out["err"]["code"], "DURQ_INVALID_INPUT", "{name}");
        assert!(
            out["err"]["message"]
                .as_str()
                .unwrap()
                .contains("run 0 of the import"),
            "{out}"
        );
        let out = import(
            &mut dst,
            Value::Array(exported.clone()),
            json!({"onConflict": "skip"}),
        );
        assert_eq!(out["ok"], json!({"imported": 0, "skipped": 3}));
        assert_eq!(events(&dst, &b).len(), 1, "skipped runs add no event");
    }
}

#[test]
fn import_rejects_bad_runs_before_writing_anything() {
    let mut s = Store::open_in_memory(1).unwrap();
    let kept = enqueue(&mut s, "a", json!({"idempotencyKey": "k"}));
    let g = s.generation();
    let good = json!({"job": "a", "input": 1});
    let bad = [
        json!({"input": 1}),
        json!({"job": "a"}),
        json!({"job": "", "input": 1}),
        json!({"job": "a", "input": 1, "id": "not-a-uuid"}),
        json!({"job": "a", "input": 1, "id": "0192F000-0000-7000-8000-00000000000g"}),
        json!({"job": "a", "input": 1, "status": "running"}),
        json!({"job": "a", "input": 1, "status": "pending", "finishedAt": T0}),
        json!({"job": "a", "input": 1, "attempt": 4, "maxAttempts": 3}),
        json!({"job": "a", "input": 1, "attempt": -1}),
        json!({"job": "a", "input": 1, "createdAt": -5}),
        json!({"job": "a", "input": 1, "runAt": 1e300}),
        json!({"job": "a", "input": 1, "labels": {"": "x"}}),
        json!({"job": "a", "input": 1, "priority": 1i64 << 40}),
        json!({"job": "a", "input": 1, "surprise": true}),
        json!({"job": "a", "input": 1, "idempotencyKey": "k"}),
        json!({"job": "a", "input": 1, "id": kept}),
        // A UUID of another version: ids must sort by creation time.
        json!({"job": "a", "input": 1, "id": "0192f000-0000-4000-8000-000000000001"}),
        // Attempts the queue could not have produced.
        json!({"job": "a", "input": 1, "attempt": 3, "maxAttempts": 3}),
        json!({"job": "a", "input": 1, "status": "leased", "attempt": 0}),
    ];
    for b in &bad {
        let out = import(&mut s, json!([good, good, b]), json!({"offset": 1000}));
        assert_eq!(out["err"]["code"], "DURQ_INVALID_INPUT", "{b}: {out}");
        let msg = out["err"]["message"].as_str().unwrap();
        assert!(
            msg.contains("1002")
                || msg.starts_with("invalid")
                || msg.contains("unknown field")
                || msg.contains("missing field"),
            "{b}: names the run: {msg}"
        );
        assert_eq!(s.stats().unwrap().pending, 1, "{b}: nothing written");
        assert_eq!(s.generation(), g, "{b}: no commit wrote anything");
    }
    let dup = json!({"job": "a", "input": 1, "id": "0192f000-0000-7000-8000-000000000001", "labels": {"k": "v"}});
    // Skipping keeps the first of two runs with one id, and only its labels
    // and event.
    let out = import(&mut s, json!([dup, dup]), json!({"onConflict": "skip"}));
    assert_eq!(out["ok"], json!({"imported": 1, "skipped": 1}), "{out}");
    let dup_id = "0192f000-0000-7000-8000-000000000001";
    assert_eq!(s.run_events(dup_id).unwrap().len(), 1);
    ok(&mut s, json!({"op": "deleteRun", "now": T0, "id": dup_id}));
    let labels: i64 = s
        .connection()
        .query_row("SELECT count(*) FROM run_labels WHERE key = 'k'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(labels, 0, "no label row outlives the run");
    // A clash that is not "stored already" is an error even when skipping:
    // two leased runs holding one concurrency key.
    let leased = |id: &str| json!({"job": "a", "input": 1, "id": id, "status": "leased", "attempt": 1, "concurrencyKey": "ck"});
    let out = import(
        &mut s,
        json!([
            leased("0192f000-0000-7000-8000-000000000002"),
            leased("0192f000-0000-7000-8000-000000000003")
        ]),
        json!({"onConflict": "skip"}),
    );
    assert_eq!(out["err"]["code"], "DURQ_INVALID_INPUT", "{out}");
    assert!(
        out["err"]["message"]
            .as_str()
            .unwrap()
            .contains("concurrency key"),
        "{out}"
    );
    assert_eq!(
        import(&mut s, json!([dup, dup]), json!({}))["err"]["code"],
        "DURQ_INVALID_INPUT"
    );
    assert_eq!(
        import(&mut s, json!([]), json!({}))["err"]["code"],
        "DURQ_INVALID_INPUT"
    );
    assert_eq!(
        import(&mut s, json!([good]), json!({"onConflict": "merge"}))["err"]["code"],
        "DURQ_INVALID_INPUT"
    );
    assert_eq!(s.stats().unwrap().pending, 1);
    // Runs without ids get UUIDv7s of their creation time.
    let out = import(
        &mut s,
        json!([{"job": "a", "input": 1, "createdAt": 1_000_000_000_000i64}]),
        json!({}),
    );
    assert_eq!(out["ok"]["imported"], 1);
    let page = s.export_runs(None, 10).unwrap();
    assert!(
        page.runs[0].id.starts_with("00e8d4a5-1000-7"),
        "{}",
        page.runs[0].id
    );
    assert_eq!(
        s.export_runs(None, 0).unwrap_err().code(),
        "DURQ_INVALID_INPUT"
    );
    assert_eq!(
        s.export_runs(Some("x"), 10).unwrap_err().code(),
        "DURQ_INVALID_INPUT"
    );
}

#[test]
fn deferred_maintenance_snapshots_drops_restores_and_rebuilds() {
    for (name, mut s) in backends() {
        let s = &mut *s;
        let before = triggers(s);
        assert_eq!(before.len(), 2, "{name}: {before:?}");
        // A trigger of someone else's that names the index is snapshotted
        // too (what is installed, not a hard-coded list).
        s.connection()
            .execute_batch("CREATE TRIGGER runs_fts_extra AFTER UPDATE OF priority ON runs BEGIN SELECT count(*) FROM runs_fts; END;")
            .unwrap();
        let before = triggers(s);
        let old = enqueue(s, "a", json!({"input": "ancient"}));
        assert_eq!(
            ok(s, json!({"op": "deferSearchIndex", "now": T0})),
            json!({"changed": true, "triggers": 3})
        );
        assert!(triggers(s).is_empty(), "{name}");
        assert!(s.search_status().unwrap().deferred);
        // Idempotent: the second defer keeps the first snapshot.
        assert_eq!(
            ok(s, json!({"op": "deferSearchIndex", "now": T0})),
            json!({"changed": false, "triggers": 0})
        );
        let out = import(s, json!([{"job": "a", "input": "fresh words"}]), json!({}));
        assert_eq!(out["ok"]["imported"], 1);
        assert_eq!(
            search_err(
                s,
                RunFilter {
                    search: Some("fresh".into()),
                    ..Default::default()
                }
            ),
            "DURQ_SEARCH_STALE"
        );
        assert!(
            fts_diff(s) > 0,
            "{name}: the imported run is not indexed yet"
        );
        // Everything else works while deferred.
        let live = enqueue(s, "a", json!({"input": "during"}));
        ok(s, json!({"op": "deleteRun", "now": T0, "id": old}));
        assert_eq!(
            ok(s, json!({"op": "restoreSearchIndex", "now": T0})),
            json!({"changed": true, "triggers": 3})
        );
        assert_eq!(triggers(s), before, "{name}: the same SQL");
        assert!(!s.search_status().unwrap().deferred);
        assert_eq!(search(s, "fresh").len(), 1, "{name}");
        assert_eq!(search(s, "during"), [live], "{name}");
        assert!(search(s, "ancient").is_empty(), "{name}");
        assert_eq!(
            ok(s, json!({"op": "restoreSearchIndex", "now": T0})),
            json!({"changed": false, "triggers": 0})
        );
        fts_integrity(s);
    }
}

#[test]
fn an_import_that_died_is_repaired_at_open_before_any_search() {
    for (name, opts) in file_routes() {
        let dir = TempDir::new("defer");
        let path = dir.path("d.db");
        {
            let mut s = Store::open(&path, &opts).unwrap();
            ok(&mut s, json!({"op": "deferSearchIndex", "now": T0}));
            import(
                &mut s,
                json!([{"job": "a", "input": "survivor"}]),
                json!({}),
            );
            // Dropped without restoring: the process died mid-import.
        }
        let s = Store::open(&path, &opts).unwrap();
        assert!(!s.search_status().unwrap().deferred, "{name}");
        assert_eq!(triggers(&s).len(), 2, "{name}");
        assert_eq!(search(&s, "survivor").len(), 1, "{name}");
    }
}

#[test]
fn a_failed_repair_at_open_leaves_the_database_usable_and_search_stale() {
    let dir = TempDir::new("defer-bad");
    let path = dir.path("d.db");
    let opts = file_routes().remove(0).1;
    {
        let mut s = Store::open(&path, &opts).unwrap();
        enqueue(&mut s, "a", json!({"input": "kept"}));
        ok(&mut s, json!({"op": "deferSearchIndex", "now": T0}));
        // Someone damaged the snapshot.
        s.connection()
            .execute("UPDATE meta SET value = '[{\"name\":\"x\",\"sql\":\"CREATE TRIGGER oops\"}]' WHERE key = 'fts_triggers'", [])
            .unwrap();
    }
    let mut s = Store::open(&path, &opts).unwrap();
    let st = s.search_status().unwrap();
    assert!(st.deferred && st.open_error.is_some(), "{st:?}");
    assert_eq!(
        search_err(
            &s,
            RunFilter {
                search: Some("kept".into()),
                ..Default::default()
            }
        ),
        "DURQ_SEARCH_STALE"
    );
    // The rest works, and nothing stored is lost.
    let id = enqueue(&mut s, "a", json!({}));
    assert_eq!(status(&s, &id), "pending");
    assert_eq!(s.stats().unwrap().pending, 2);
    let out = apply(&mut s, json!([{"op": "restoreSearchIndex", "now": T0}]));
    assert_eq!(out[0]["err"]["code"], "SQLITE_ERROR", "{out:?}");
    assert!(
        s.search_status().unwrap().deferred,
        "still stale after a failed retry"
    );
    // Nothing but one CREATE TRIGGER statement is run from the snapshot.
    let set_snapshot = |s: &Store, snapshot: Value| {
        s.connection()
            .execute(
                "UPDATE meta SET value = ?1 WHERE key = 'fts_triggers'",
                [snapshot.to_string()],
            )
            .unwrap();
    };
    for (sql, code) in [
        ("DROP TABLE runs", "DURQ_CORRUPT"),
        (
            "CREATE TRIGGER t AFTER INSERT ON runs BEGIN SELECT 1; END; DROP TABLE runs",
            "SQLITE_ERROR",
        ),
    ] {
        set_snapshot(&s, json!([{"name": "t", "sql": sql}]));
        let out = apply(&mut s, json!([{"op": "restoreSearchIndex", "now": T0}]));
        assert_eq!(out[0]["err"]["code"], code, "{sql}: {out:?}");
        assert_eq!(s.stats().unwrap().pending, 2, "{sql}: runs intact");
        assert!(
            triggers(&s).is_empty(),
            "{sql}: the failed restore left nothing behind"
        );
    }
    // Repaired by hand, the restore succeeds and the open error is gone.
    let good: Vec<Value> = triggers(&Store::open_in_memory(1).unwrap())
        .into_iter()
        .map(|(name, sql)| json!({"name": name, "sql": sql}))
        .collect();
    set_snapshot(&s, Value::Array(good));
    let out = apply(&mut s, json!([{"op": "restoreSearchIndex", "now": T0}]));
    assert_eq!(out[0]["ok"]["triggers"], 2, "{out:?}");
    let st = s.search_status().unwrap();
    assert!(!st.deferred && st.open_error.is_none(), "{st:?}");
    assert_eq!(search(&s, "kept").len(), 1);
}

#[test]
fn hot_reads_of_this_issue_use_their_indexes() {
    let s = Store::open_in_memory(1).unwrap();
    let plan =
        |sql: &str, params: &[rusqlite::types::Value]| common::plan(s.connection(), sql, params);
    let p = plan(
        durq::history::RUN_EVENTS_SQL,
        &[rusqlite::types::Value::Text("x".into())],
    );
    assert!(
        p.contains("SEARCH run_events USING PRIMARY KEY (run_id=?)"),
        "{p}"
    );
    assert!(!p.contains("TEMP B-TREE"), "{p}");
    for order in [RunOrder::Newest, RunOrder::Relevance] {
        let f = RunFilter {
            search: Some("disk".into()),
            order: Some(order),
            labels: Some([("tenant".into(), "acme".into())].into()),
            status: Some(durq::Status::Failed),
            cursor: Some(if order == RunOrder::Newest {
                "s9".into()
            } else {
                "o50".into()
            }),
            ..Default::default()
        };
        let (sql, params, _) = durq::query::list_runs_sql(&f, false).unwrap();
        let p = plan(&sql, &params);
        assert!(p.contains("SCAN f VIRTUAL TABLE INDEX"), "FTS5 drives: {p}");
        assert!(
            p.contains("SEARCH r USING INTEGER PRIMARY KEY (rowid=?)"),
            "{p}"
        );
        assert!(
            p.contains("USING PRIMARY KEY (key=? AND value=? AND run_id=?)"),
            "{p}"
        );
        assert!(
            !p.contains("SCAN r") && !p.contains("TEMP B-TREE"),
            "no scan of runs, no sort: {p}"
        );
    }
    let p = plan(
        "SELECT id FROM runs AS r WHERE r.id > ?1 ORDER BY r.id LIMIT ?2",
        &[
            rusqlite::types::Value::Text(String::new()),
            rusqlite::types::Value::Integer(10),
        ],
    );
    assert!(
        p.contains("sqlite_autoindex_runs_1 (id>?)") && !p.contains("TEMP"),
        "export: {p}"
    );
}

#[test]
fn the_index_queue_is_flushed_by_a_search_or_by_a_commit_that_fills_it() {
    for (name, mut s) in backends() {
        let s = &mut *s;
        let pending = |s: &Store| durq::search::pending(s.connection()).unwrap();
        let runs = |n: usize, word: &str| -> Vec<Value> {
            (0..n)
                .map(|i| json!({"job": "a", "input": {"w": format!("{word} {i}")}}))
                .collect()
        };
        ok(
            s,
            json!({"op": "enqueueMany", "now": T0, "runs": runs(10, "early")}),
        );
        assert_eq!(
            pending(s),
            10,
            "{name}: a small commit leaves its runs queued"
        );
        // A search indexes the queue first: it never misses a committed run.
        assert_eq!(search(s, "early").len(), 10, "{name}");
        assert_eq!(pending(s), 0, "{name}");
        // Enqueued, then completed before any flush: indexed once, with its
        // output (counted twice while waiting: new, and changed).
        let id = enqueue(s, "z", json!({"input": {"w": "short lived"}}));
        let c = ok(
            s,
            json!({"op": "claim", "now": T0, "jobs": ["z"], "workerId": "w", "leaseMs": 1000, "limit": 1}),
        );
        ok(
            s,
            json!({"op": "complete", "now": T0, "id": id, "token": c["runs"][0]["token"], "output": {"r": "finished quickly"}}),
        );
        assert_eq!(pending(s), 2, "{name}");
        assert_eq!(
            search(s, "finished"),
            std::slice::from_ref(&id),
            "{name}: indexed with its output"
        );
        // A commit that brings the queue to FLUSH_AT indexes it itself.
        let big = durq::search::FLUSH_AT as usize;
        ok(
            s,
            json!({"op": "enqueueMany", "now": T0, "runs": runs(big, "bulk")}),
        );
        assert_eq!(pending(s), 0, "{name}: flushed by the commit");
        // Queued runs deleted before their flush never reach the index.
        let gone = enqueue(s, "a", json!({"input": {"w": "ephemeral"}}));
        ok(s, json!({"op": "deleteRun", "now": T0, "id": gone}));
        assert!(search(s, "ephemeral").is_empty(), "{name}");
        fts_integrity(s);
    }
}

#[test]
fn a_completion_requeues_a_run_only_when_its_indexed_text_can_change() {
    for (name, mut s) in backends() {
        let s = &mut *s;
        let pending = |s: &Store| durq::search::pending(s.connection()).unwrap();
        let ids: Vec<String> = (0..4)
            .map(|i| enqueue(s, "z", json!({"input": {"w": format!("run{i}")}})))
            .collect();
        assert_eq!(search(s, "run0").len(), 1, "{name}");
        assert_eq!(pending(s), 0, "{name}: indexed");
        let c = ok(
            s,
            json!({"op": "claim", "now": T0, "jobs": ["z"], "workerId": "w", "leaseMs": 1000, "limit": 4}),
        );
        let token = |id: &str| {
            c["runs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["id"] == id)
                .unwrap()["token"]
                .clone()
        };
        // Outputs with no string in them index as nothing, as NULL did.
        for (id, output) in ids.iter().zip([json!(null), json!(42), json!([1, true])]) {
            ok(
                s,
                json!({"op": "complete", "now": T0, "id": id, "token": token(id), "output": output}),
            );
        }
        assert_eq!(
            pending(s),
            0,
            "{name}: no string in the outputs, nothing to re-index"
        );
        // An output with a string (a key counts) re-indexes the run.
        ok(
            s,
            json!({"op": "complete", "now": T0, "id": ids[3], "token": token(&ids[3]), "output": {"note": "wrapped up"}}),
        );
        assert_eq!(pending(s), 1, "{name}");
        assert_eq!(
            search(s, "wrapped"),
            std::slice::from_ref(&ids[3]),
            "{name}"
        );
        assert_eq!(
            search(s, "run1"),
            std::slice::from_ref(&ids[1]),
            "{name}: still found by input"
        );
        fts_integrity(s);
    }
}

#[test]
fn queued_runs_survive_a_reopen_and_are_found() {
    let dir = TempDir::new("queue");
    let path = dir.path("q.db");
    let opts = file_routes().remove(0).1;
    {
        let mut s = Store::open(&path, &opts).unwrap();
        enqueue(&mut s, "a", json!({"input": {"w": "persistent"}}));
        assert_eq!(durq::search::pending(s.connection()).unwrap(), 1);
    }
    let s = Store::open(&path, &opts).unwrap();
    assert_eq!(search(&s, "persistent").len(), 1);
}

#[test]
fn reused_rowids_updates_and_deferral_with_a_full_queue_keep_the_index_exact() {
    for (name, mut s) in backends() {
        let s = &mut *s;
        // The newest run's rowid is reused once it is deleted: across
        // several commits, with and without a flush in between.
        for flush_between in [false, true] {
            let a = enqueue(s, "a", json!({"input": {"w": "alpha"}}));
            search(s, "alpha");
            ok(s, json!({"op": "deleteRun", "now": T0, "id": a}));
            if flush_between {
                search(s, "alpha");
            }
            let b = enqueue(s, "a", json!({"input": {"w": "bravo"}}));
            assert!(search(s, "alpha").is_empty(), "{name} {flush_between}");
            assert_eq!(search(s, "bravo"), std::slice::from_ref(&b), "{name}");
            fts_integrity(s);
            ok(s, json!({"op": "deleteRun", "now": T0, "id": b}));
        }
        // Insert, delete and reuse within one flush window.
        let c = enqueue(s, "a", json!({"input": {"w": "charlie"}}));
        ok(s, json!({"op": "deleteRun", "now": T0, "id": c}));
        let d = enqueue(s, "a", json!({"input": {"w": "delta"}}));
        assert!(search(s, "charlie").is_empty(), "{name}");
        assert_eq!(search(s, "delta"), std::slice::from_ref(&d), "{name}");
        // An update after a flush replaces the entry.
        let c = ok(
            s,
            json!({"op": "claim", "now": T0, "jobs": ["a"], "workerId": "w", "leaseMs": 1000, "limit": 1}),
        );
        ok(
            s,
            json!({"op": "complete", "now": T0, "id": d, "token": c["runs"][0]["token"], "output": "echo"}),
        );
        assert_eq!(search(s, "echo delta"), std::slice::from_ref(&d), "{name}");
        fts_integrity(s);
        // A deferral that starts with runs still queued.
        let e = enqueue(s, "a", json!({"input": {"w": "foxtrot"}}));
        assert!(durq::search::pending(s.connection()).unwrap() > 0);
        ok(s, json!({"op": "deferSearchIndex", "now": T0}));
        ok(s, json!({"op": "deleteRun", "now": T0, "id": d}));
        ok(s, json!({"op": "restoreSearchIndex", "now": T0}));
        assert_eq!(durq::search::pending(s.connection()).unwrap(), 0, "{name}");
        assert_eq!(search(s, "foxtrot"), std::slice::from_ref(&e), "{name}");
        assert!(search(s, "delta").is_empty(), "{name}");
        fts_integrity(s);
    }
}

/// A version 4 file (the insert trigger queued every new run) with runs
/// indexed, runs queued and a queued change migrates to the watermark: every
/// run is found by its current text, and runs added later are found too.
#[cfg(not(target_family = "wasm"))]
#[test]
fn a_version_4_database_with_queued_runs_migrates_to_the_watermark() {
    let dir = TempDir::new("migrate-v4");
    let path = dir.path("v4.db");
    let insert = |c: &rusqlite::Connection, n: u32, word: &str| {
        c.execute(
            "INSERT INTO runs (id, queue, job, status, run_at, created_at, updated_at, input, max_attempts, backoff)
             VALUES (?1, 'default', 'a', 'pending', 0, 0, 0, json_object('w', ?2), 3, '{}')",
            rusqlite::params![format!("0190b6a4-0000-7000-8000-{n:012}"), word],
        )
        .unwrap();
    };
    {
        let mut c = rusqlite::Connection::open(&path).unwrap();
        durq::schema::migrate_with(&mut c, &durq::schema::MIGRATIONS[..4]).unwrap();
        insert(&c, 1, "indexed");
        // What `search::flush_pending` did at version 4: runs 1 is indexed.
        c.execute_batch(
            "INSERT INTO runs_fts (rowid, job, input, output, error, labels)
                 SELECT v.rid, v.job, v.input, v.output, v.error, v.labels
                 FROM runs_fts_pending AS p CROSS JOIN runs_search_text AS v ON v.rid = p.rid;
             DELETE FROM runs_fts_pending;",
        )
        .unwrap();
        insert(&c, 2, "queued");
        // A change to the indexed run, queued.
        c.execute(
            "UPDATE runs SET input = json_object('w', 'changed') WHERE id = '0190b6a4-0000-7000-8000-000000000001'",
            [],
        )
        .unwrap();
        let queued: i64 = c
            .query_row("SELECT count(*) FROM runs_fts_pending", [], |r| r.get(0))
            .unwrap();
        assert_eq!(queued, 2);
    }
    let mut s = Store::open(&path, &Default::default()).unwrap();
    let v: i64 = s
        .connection()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, durq::schema::latest_version());
    assert_eq!(durq::search::pending(s.connection()).unwrap(), 0);
    assert!(search(&s, "indexed").is_empty(), "the old text is gone");
    assert_eq!(
        search(&s, "changed"),
        ["0190b6a4-0000-7000-8000-000000000001"]
    );
    assert_eq!(
        search(&s, "queued"),
        ["0190b6a4-0000-7000-8000-000000000002"]
    );
    let later = enqueue(&mut s, "a", json!({"input": {"w": "later"}}));
    assert_eq!(durq::search::pending(s.connection()).unwrap(), 1);
    assert_eq!(search(&s, "later"), [later]);
    fts_integrity(&s);
}

/// A run stored before schema 6 keeps its stored `enqueued` event (and
/// gets no second one from its row); a run created after has it from its
/// row, first, with the generation of its commit; a retrigger's names the
/// run it came from.
#[cfg(not(target_family = "wasm"))]
#[test]
fn enqueued_events_before_and_after_schema_6() {
    let dir = TempDir::new("migrate-v5");
    let path = dir.path("v5.db");
    let old = "0190b6a4-0000-7000-8000-000000000001";
    {
        let mut c = rusqlite::Connection::open(&path).unwrap();
        durq::schema::migrate_with(&mut c, &durq::schema::MIGRATIONS[..5]).unwrap();
        c.execute(
            "INSERT INTO runs (id, queue, job, status, run_at, created_at, updated_at, input, max_attempts, backoff)
             VALUES (?1, 'default', 'a', 'pending', 0, 5, 5, '1', 3, '{}')",
            [old],
        )
        .unwrap();
        c.execute(
            "INSERT INTO run_events (run_id, generation, seq, at, kind, attempt, data) VALUES (?1, 1, 0, 5, 'enqueued', 0, NULL)",
            [old],
        )
        .unwrap();
    }
    let mut s = Store::open(&path, &Default::default()).unwrap();
    let before = events(&s, old);
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!((before[0].0.as_str(), before[0].2), ("enqueued", 1));
    let g = s.generation();
    let id = enqueue(&mut s, "z", json!({"input": 1}));
    let c = ok(
        &mut s,
        json!({"op": "claim", "now": T0, "jobs": ["z"], "workerId": "w", "leaseMs": 1000, "limit": 1}),
    );
    ok(
        &mut s,
        json!({"op": "complete", "now": T0, "id": id, "token": c["runs"][0]["token"], "output": 2}),
    );
    let ev = events(&s, &id);
    let kinds: Vec<&str> = ev.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(kinds, ["enqueued", "leased", "completed"]);
    assert_eq!(
        ev[0].2,
        g + 1,
        "the generation of the commit that created it"
    );
    let again = ok(&mut s, json!({"op": "retrigger", "now": T0 + 1, "id": id}));
    let again = again["id"].as_str().unwrap();
    let ev = events(&s, again);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].3, json!({"retriedFrom": id}));
    let stored: i64 = s
        .connection()
        .query_row(
            "SELECT count(*) FROM run_events WHERE kind = 'enqueued'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, 1, "only the one from before schema 6 is stored");
}
