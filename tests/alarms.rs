//! Alarms per namespace, against every storage backend of the target
//! (natively and as wasm in Node, like `tests/core.rs`): upsert, delivery
//! outcomes by version (set or delete while a handler runs), retries with
//! backoff persisted across a reopen, abandonment, paging, the next-due
//! seek, the combined next wake-up, bad names and mixed group commits.

mod common;

#[cfg(all(target_family = "wasm", target_os = "unknown"))]
use durq_test_macros::test;

use common::suite::*;
use common::{path_exists, prepare_alarm_dir, TempDir};
use durq::alarm::{self, MAX_RETRIES, NEXT_ALARM_SQL};
use durq::{AlarmFilter, Store};
use serde_json::{json, Value};

fn set(s: &mut Store, ns: &str, actor: &str, time: i64) -> Value {
    ok(
        s,
        json!({"op": "setAlarm", "namespace": ns, "actorId": actor, "time": time, "now": T0}),
    )
}

/// The alarms due at `now`, as the dispatcher reads them (`before: now + 1`).
fn due(s: &mut Store, ns: &str, now: i64) -> Vec<(String, i64, i64, i64)> {
    let filter = AlarmFilter {
        before: Some(now + 1),
        limit: Some(100),
        cursor: None,
    };
    s.list_alarms(ns, &filter)
        .unwrap()
        .alarms
        .into_iter()
        .map(|a| (a.actor_id, a.deliver_at, a.retry_count, a.version))
        .collect()
}

fn failed(s: &mut Store, ns: &str, actor: &str, version: i64, now: i64, random: f64) -> Value {
    ok(
        s,
        json!({"op": "alarmFailed", "namespace": ns, "actorId": actor, "version": version, "now": now, "random": random}),
    )
}

fn done(s: &mut Store, ns: &str, actor: &str, version: i64) -> Value {
    ok(
        s,
        json!({"op": "alarmDone", "namespace": ns, "actorId": actor, "version": version}),
    )
}

fn backends_ready() -> Vec<(&'static str, Backend)> {
    let v = backends();
    for (_, b) in &v {
        prepare_alarm_dir(b);
    }
    v
}

#[test]
fn set_is_an_upsert_get_and_delete() {
    for (name, mut s) in backends_ready() {
        set(&mut s, "rooms", "a", T0 + 5000);
        set(&mut s, "rooms", "a", T0 + 7000);
        let a = s.get_alarm("rooms", "a").unwrap().expect(name);
        assert_eq!(a.scheduled_time, T0 + 7000, "{name}: the second set wins");
        assert_eq!(
            s.list_alarms("rooms", &AlarmFilter::default())
                .unwrap()
                .alarms
                .len(),
            1,
            "{name}: one alarm per actor"
        );
        assert_eq!(s.get_alarm("rooms", "b").unwrap(), None, "{name}");
        assert_eq!(
            s.get_alarm("other", "a").unwrap(),
            None,
            "{name}: namespaces are separate"
        );
        let d = ok(
            &mut s,
            json!({"op": "deleteAlarm", "namespace": "rooms", "actorId": "a"}),
        );
        assert_eq!(d["deleted"], true, "{name}");
        let d = ok(
            &mut s,
            json!({"op": "deleteAlarm", "namespace": "rooms", "actorId": "a"}),
        );
        assert_eq!(d["deleted"], false, "{name}: deleting nothing is fine");
        assert_eq!(s.get_alarm("rooms", "a").unwrap(), None, "{name}");
    }
}

#[test]
fn due_is_never_early_and_ordered_by_time() {
    for (name, mut s) in backends_ready() {
        set(&mut s, "n", "late", T0 + 3000);
        set(&mut s, "n", "early", T0 + 1000);
        set(&mut s, "n", "past", T0 - 1000);
        assert_eq!(
            due(&mut s, "n", T0)
                .iter()
                .map(|d| d.0.as_str())
                .collect::<Vec<_>>(),
            ["past"],
            "{name}"
        );
        assert_eq!(
            due(&mut s, "n", T0 + 999).len(),
            1,
            "{name}: 1 ms early is early"
        );
        assert_eq!(
            due(&mut s, "n", T0 + 1000)
                .iter()
                .map(|d| d.0.as_str())
                .collect::<Vec<_>>(),
            ["past", "early"],
            "{name}: due exactly at its time"
        );
        assert_eq!(
            s.alarm_db("n").unwrap().next_after(T0).unwrap(),
            Some(T0 + 1000),
            "{name}"
        );
        assert_eq!(
            s.alarm_db("n").unwrap().next_after(T0 + 3000).unwrap(),
            None,
            "{name}"
        );
    }
}

#[test]
fn done_removes_only_the_alarm_that_fired() {
    for (name, mut s) in backends_ready() {
        set(&mut s, "n", "a", T0);
        let (_, _, _, v1) = due(&mut s, "n", T0)[0].clone();
        // set while the handler runs: a new alarm that survives completion
        set(&mut s, "n", "a", T0 + 60_000);
        assert_eq!(done(&mut s, "n", "a", v1)["deleted"], false, "{name}");
        let a = s.get_alarm("n", "a").unwrap().expect(name);
        assert_eq!(
            a.scheduled_time,
            T0 + 60_000,
            "{name}: the new alarm stands"
        );
        // the new alarm fires and completes: gone
        assert_eq!(done(&mut s, "n", "a", a.version)["deleted"], true, "{name}");
        assert_eq!(s.get_alarm("n", "a").unwrap(), None, "{name}");
        // delete during the run, then set again: the old version's outcome
        // must not touch the new alarm
        set(&mut s, "n", "b", T0);
        let vb = due(&mut s, "n", T0)[0].3;
        ok(
            &mut s,
            json!({"op": "deleteAlarm", "namespace": "n", "actorId": "b"}),
        );
        assert_eq!(
            failed(&mut s, "n", "b", vb, T0, 0.0)["outcome"],
            "superseded",
            "{name}: a deleted alarm is not retried"
        );
        assert_eq!(s.get_alarm("n", "b").unwrap(), None, "{name}");
        set(&mut s, "n", "b", T0 + 5);
        assert_eq!(done(&mut s, "n", "b", vb)["deleted"], false, "{name}");
        assert!(s.get_alarm("n", "b").unwrap().is_some(), "{name}");
    }
}

#[test]
fn failures_back_off_from_two_seconds_then_abandon() {
    for (name, mut s) in backends_ready() {
        set(&mut s, "n", "a", T0);
        let v = due(&mut s, "n", T0)[0].3;
        let mut now = T0;
        let mut delays = Vec::new();
        for i in 1..=MAX_RETRIES {
            let r = failed(&mut s, "n", "a", v, now, 0.0);
            assert_eq!(r["outcome"], "retry", "{name}");
            assert_eq!(r["retryCount"], i, "{name}");
            let at = r["retryAt"].as_i64().unwrap();
            delays.push(at - now);
            assert!(
                due(&mut s, "n", at - 1).is_empty(),
                "{name}: not before the retry time"
            );
            let d = due(&mut s, "n", at);
            assert_eq!(
                (d[0].1, d[0].2),
                (at, i),
                "{name}: due with its retry count"
            );
            now = at;
        }
        assert_eq!(
            delays,
            [2000, 4000, 8000, 16_000, 32_000, 64_000],
            "{name}: 2 s doubling, as workerd"
        );
        assert!(
            s.get_alarm("n", "a")
                .unwrap()
                .is_some_and(|a| a.scheduled_time == T0),
            "{name}: retries keep the time the alarm was set for"
        );
        let r = failed(&mut s, "n", "a", v, now, 0.0);
        assert_eq!(r["outcome"], "abandoned", "{name}");
        assert_eq!(r["retryCount"], MAX_RETRIES + 1, "{name}");
        assert_eq!(
            s.get_alarm("n", "a").unwrap(),
            None,
            "{name}: abandoned = gone"
        );
        // jitter adds up to 25%, as workerd's
        set(&mut s, "n", "j", T0);
        let v = due(&mut s, "n", T0)[0].3;
        let r = failed(&mut s, "n", "j", v, T0, 0.999);
        let delay = r["retryAt"].as_i64().unwrap() - T0;
        assert!((2498..=2500).contains(&delay), "{name}: {delay}");
        let a = s.get_alarm("n", "j").unwrap().unwrap();
        assert_eq!(
            (a.scheduled_time, a.deliver_at),
            (T0, T0 + delay),
            "{name}: set time kept, delivery moved"
        );
        // a new set resets the retry count
        set(&mut s, "n", "j", T0 + 10);
        assert_eq!(
            s.get_alarm("n", "j").unwrap().unwrap().retry_count,
            0,
            "{name}"
        );
    }
}

#[test]
fn retry_count_and_versions_survive_a_reopen() {
    for (name, options) in file_routes() {
        let dir = TempDir::new("alarms");
        let path = dir.path("main.db");
        let v;
        {
            let mut s = Store::open(&path, &options).unwrap();
            prepare_alarm_dir(&s);
            set(&mut s, "n", "a", T0);
            v = due(&mut s, "n", T0)[0].3;
            failed(&mut s, "n", "a", v, T0, 0.0);
            failed(&mut s, "n", "a", v, T0 + 2000, 0.0);
        }
        assert!(
            path_exists(&format!("{path}.alarms/n.db")),
            "{name}: one file per namespace in <path>.alarms/"
        );
        let mut s = Store::open(&path, &options).unwrap();
        let a = s.get_alarm("n", "a").unwrap().expect(name);
        assert_eq!((a.retry_count, a.version), (2, v), "{name}: kept on disk");
        assert_eq!(a.deliver_at, T0 + 2000 + 4000, "{name}");
        assert_eq!(
            a.scheduled_time, T0,
            "{name}: the set time, kept on disk too"
        );
        // versions handed out after the reopen are new ones
        set(&mut s, "n", "b", T0);
        let vb = s.get_alarm("n", "b").unwrap().unwrap().version;
        assert!(vb > v, "{name}: {vb} > {v}");
    }
}

#[test]
fn bad_namespaces_are_refused_and_create_nothing() {
    let long = "x".repeat(alarm::MAX_NAMESPACE_BYTES + 1);
    let bad = [
        "", "a/b", "a\\b", "..", "a..b", ".hidden", "nul\0", "tab\t", &long,
    ];
    for (name, mut s) in backends_ready() {
        let dir_before = s.alarm_dir().map(path_exists);
        for ns in bad {
            let e = s.alarm_db(ns).err().expect(name);
            assert_eq!(e.code(), "DURQ_INVALID_INPUT", "{name}: {ns:?}");
            let code = err(
                &mut s,
                json!({"op": "setAlarm", "namespace": ns, "actorId": "a", "time": T0, "now": T0}),
            );
            assert_eq!(code, "DURQ_INVALID_INPUT", "{name}: {ns:?}");
            if let Some(dir) = s.alarm_dir() {
                assert!(!path_exists(&format!("{dir}/{ns}.db")), "{name}: {ns:?}");
            }
        }
        assert_eq!(s.alarm_dir().map(path_exists), dir_before, "{name}");
        assert!(s.alarm_db(&"x".repeat(alarm::MAX_NAMESPACE_BYTES)).is_ok());
        assert!(s.alarm_db("tenant-1:rooms.v2").is_ok(), "{name}");
    }
}

#[test]
fn bad_alarm_input_fails_alone_in_a_group_commit() {
    for (name, mut s) in backends_ready() {
        set(&mut s, "n", "keep", T0 + 1);
        let out = apply(
            &mut s,
            json!([
                {"op": "enqueue", "now": T0, "job": "a", "input": 1},
                {"op": "setAlarm", "namespace": "n", "actorId": "", "time": T0, "now": T0},
                {"op": "setAlarm", "namespace": "n", "actorId": "x", "time": -1, "now": T0},
                {"op": "setAlarm", "namespace": "n", "actorId": "y", "time": "soon", "now": T0},
                {"op": "setAlarm", "namespace": "n", "actorId": "ok", "time": T0 + 2, "now": T0},
                {"op": "setAlarm", "namespace": "m", "actorId": "ok", "time": T0 + 3, "now": T0},
            ]),
        );
        let codes: Vec<&str> = out
            .iter()
            .map(|o| o["err"]["code"].as_str().unwrap_or("ok"))
            .collect();
        assert_eq!(
            codes,
            [
                "ok",
                "DURQ_INVALID_INPUT",
                "DURQ_INVALID_INPUT",
                "DURQ_INVALID_INPUT",
                "ok",
                "ok"
            ],
            "{name}"
        );
        let page = s.list_alarms("n", &AlarmFilter::default()).unwrap();
        let actors: Vec<&str> = page.alarms.iter().map(|a| a.actor_id.as_str()).collect();
        assert_eq!(actors, ["keep", "ok"], "{name}: nothing stored was lost");
        assert_eq!(s.stats().unwrap().pending, 1, "{name}: the run committed");
        assert!(s.get_alarm("m", "ok").unwrap().is_some(), "{name}");
        for bad in [
            json!({"before": -5}),
            json!({"limit": 0}),
            json!({"cursor": "nope"}),
            json!({"cursor": "12:"}),
            json!({"other": 1}),
        ] {
            let r = serde_json::from_value::<AlarmFilter>(bad.clone())
                .map_err(|_| "DURQ_INVALID_INPUT".to_string())
                .and_then(|f| {
                    s.list_alarms("n", &f)
                        .map(|_| "ok".to_string())
                        .map_err(|e| e.code().to_string())
                });
            assert_eq!(r, Err("DURQ_INVALID_INPUT".into()), "{name}: {bad}");
        }
    }
}

#[test]
fn list_pages_in_time_order_with_before() {
    for (name, mut s) in backends_ready() {
        for i in 0..7 {
            // two actors share each time, so the cursor must carry the actor id
            set(&mut s, "n", &format!("a{i}"), T0 + (i / 2) * 10);
        }
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = s
                .list_alarms(
                    "n",
                    &AlarmFilter {
                        before: Some(T0 + 30),
                        limit: Some(2),
                        cursor: cursor.clone(),
                    },
                )
                .unwrap();
            seen.extend(page.alarms.into_iter().map(|a| a.actor_id));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(
            seen,
            ["a0", "a1", "a2", "a3", "a4", "a5"],
            "{name}: a6 is at T0+30"
        );
    }
}

#[test]
fn next_due_is_one_index_seek() {
    let mut s = Store::open_in_memory(1).unwrap();
    let db = s.alarm_db("n").unwrap();
    let plan: Vec<String> = db
        .connection()
        .prepare(&format!("EXPLAIN QUERY PLAN {NEXT_ALARM_SQL}"))
        .unwrap()
        .query_map([T0], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        plan,
        ["SEARCH alarms USING COVERING INDEX alarms_due (scheduled_time>?)"]
    );
}

/// The earliest wake-up the façade's one timer arms for, from the core's
/// seeks: each queue's `next_wake_at` and each namespace's `next_alarm_after`.
fn next_wake(
    s: &mut Store,
    queues: &[String],
    namespaces: &[String],
    after: i64,
) -> durq::Result<Option<i64>> {
    let mut times = Vec::new();
    for q in queues {
        times.push(s.next_wake_at(q)?);
    }
    for ns in namespaces {
        times.push(s.next_alarm_after(ns, after)?);
    }
    Ok(times.into_iter().flatten().min())
}

#[test]
fn next_wake_is_the_earliest_of_queues_and_namespaces() {
    for (name, mut s) in backends_ready() {
        let none: Vec<String> = Vec::new();
        let q = vec!["default".to_string()];
        let ns = vec!["a".to_string(), "b".to_string()];
        assert_eq!(next_wake(&mut s, &q, &ns, T0).unwrap(), None, "{name}");
        enqueue(&mut s, "a", json!({"runAt": T0 + 9000}));
        set(&mut s, "a", "x", T0 + 7000);
        set(&mut s, "b", "y", T0 + 5000);
        set(&mut s, "b", "past", T0 - 5);
        assert_eq!(
            next_wake(&mut s, &q, &ns, T0).unwrap(),
            Some(T0 + 5000),
            "{name}"
        );
        assert_eq!(
            next_wake(&mut s, &q, &ns[..1], T0).unwrap(),
            Some(T0 + 7000),
            "{name}"
        );
        assert_eq!(
            next_wake(&mut s, &q, &none, T0).unwrap(),
            Some(T0 + 9000),
            "{name}"
        );
        assert_eq!(
            next_wake(&mut s, &q, &["../x".to_string()], T0)
                .unwrap_err()
                .code(),
            "DURQ_INVALID_INPUT",
            "{name}"
        );
    }
}

#[test]
fn past_times_are_raised_to_now_and_times_up_to_zero_refused() {
    for (name, mut s) in backends_ready() {
        // workerd: setAlarm(t) with t in the past stores now; t <= 0 throws.
        let r = ok(
            &mut s,
            json!({"op": "setAlarm", "namespace": "n", "actorId": "p", "time": T0 - 60_000, "now": T0}),
        );
        assert_eq!(r["scheduledTime"], T0, "{name}: raised to now");
        let a = s.get_alarm("n", "p").unwrap().expect(name);
        assert_eq!((a.scheduled_time, a.deliver_at), (T0, T0), "{name}");
        for bad in [0, -5] {
            let out = apply(
                &mut s,
                json!([{"op": "setAlarm", "namespace": "n", "actorId": "z", "time": bad, "now": T0}]),
            );
            assert_eq!(
                out[0]["err"]["code"], "DURQ_INVALID_INPUT",
                "{name}: time {bad} refused"
            );
        }
        assert_eq!(
            s.get_alarm("n", "z").unwrap(),
            None,
            "{name}: nothing stored"
        );
        assert!(
            s.get_alarm("n", "p").unwrap().is_some(),
            "{name}: the earlier alarm stays"
        );
    }
}
