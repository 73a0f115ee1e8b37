//! Cron schedules and paused queues in the core, against every storage
//! backend of the target: a slot fires exactly once (twice asked, one run),
//! the catch-up policies after an 8-hour downtime, replacing a schedule
//! keeps or recomputes its next slot, bad input stores nothing, a paused
//! queue leases nothing and reports no wake-up, and both survive a reopen.

mod common;

#[cfg(all(target_family = "wasm", target_os = "unknown"))]
use durq_test_macros::test;

use common::suite::*;
use common::TempDir;
use durq::schedule::read::ScheduleFilter;
use durq::schedule::{MAX_CATCH_UP, MISSED_AFTER_MS};
use durq::{Store, StoreOptions};
use serde_json::{json, Value};

const MINUTE: i64 = 60_000;
/// The first whole minute after `T0`.
const M0: i64 = (T0 / MINUTE + 1) * MINUTE;

fn schedule(s: &mut Store, now: i64, id: &str, cron: &str, extra: Value) -> Value {
    let mut op = json!({"op": "schedule", "now": now, "id": id, "cron": cron,
        "run": {"job": "a", "input": {"from": id}, "labels": {"kind": "cron"}}});
    op.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    ok(s, op)
}

fn fire(s: &mut Store, now: i64) -> Vec<(String, i64, bool)> {
    let r = ok(s, json!({"op": "fireSchedules", "now": now}));
    assert_eq!(r["more"], false);
    r["fired"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["scheduleId"].as_str().unwrap().to_owned(),
                f["slotAt"].as_i64().unwrap(),
                f["created"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn next_at(s: &Store, id: &str) -> Option<i64> {
    s.get_schedule(id)
        .unwrap()
        .expect("the schedule exists")
        .next_at
}

#[test]
fn every_minute_fires_once_per_slot_over_a_day() {
    for (name, mut s) in backends() {
        let set = schedule(&mut s, T0, "tick", "* * * * *", json!({}));
        assert_eq!(set["created"], true, "{name}");
        assert_eq!(set["nextAt"], M0, "{name}: the first slot after now");
        assert_eq!(s.next_schedule_at().unwrap(), Some(M0), "{name}");
        assert!(fire(&mut s, M0 - 1).is_empty(), "{name}: never early");
        // A day in memory; an hour on each file route (a commit is an fsync).
        let minutes = if name == "memory" { 1440 } else { 60 };
        let mut runs = 0;
        for m in 0..minutes {
            let slot = M0 + m * MINUTE;
            // The timer fires a little late, and twice for some slots.
            let fired = fire(&mut s, slot + 250);
            assert_eq!(
                fired,
                vec![("tick".to_owned(), slot, true)],
                "{name}: minute {m}"
            );
            assert!(
                fire(&mut s, slot + 300).is_empty(),
                "{name}: minute {m} again"
            );
            runs += 1;
            assert_eq!(s.next_schedule_at().unwrap(), Some(slot + MINUTE), "{name}");
        }
        assert_eq!(s.stats().unwrap().pending, runs, "{name}");
        // The run carries its slot: runAt and the idempotency key.
        let r = serde_json::to_value(s.get_schedule("tick").unwrap().unwrap()).unwrap();
        let run =
            serde_json::to_value(s.get_run(r["lastRunId"].as_str().unwrap()).unwrap()).unwrap();
        let last = M0 + (minutes - 1) * MINUTE;
        assert_eq!(run["runAt"], last, "{name}");
        assert_eq!(
            run["idempotencyKey"],
            format!("schedule:tick:{last}"),
            "{name}"
        );
        assert_eq!(run["labels"], json!({"kind": "cron"}), "{name}");
        assert_eq!(run["input"], json!({"from": "tick"}), "{name}");
        assert_eq!(r["lastSlotAt"], last, "{name}");
    }
}

#[test]
fn every_five_seconds_with_a_seconds_field() {
    for (name, mut s) in backends() {
        schedule(&mut s, M0, "fast", "*/5 * * * * *", json!({}));
        let mut n = 0;
        for i in 1..=720 {
            let fired = fire(&mut s, M0 + i * 5000);
            assert_eq!(fired.len(), 1, "{name}: slot {i}");
            n += 1;
        }
        assert_eq!(n, 720, "{name}: an hour");
        assert_eq!(s.stats().unwrap().pending, 720, "{name}");
    }
}

#[test]
fn catch_up_after_eight_hours_down() {
    let down = 8 * 60 * MINUTE;
    for (name, mut s) in backends() {
        for (id, policy) in [("latest", "latest"), ("all", "all"), ("none", "none")] {
            schedule(&mut s, T0, id, "*/10 * * * *", json!({"catchUp": policy}));
        }
        let first = next_at(&s, "all").unwrap();
        // Down from just before the first slot until 5 minutes after the last.
        let now = first + down + 5 * MINUTE;
        let fired = fire(&mut s, now);
        let of = |id: &str| {
            fired
                .iter()
                .filter(|f| f.0 == id)
                .map(|f| f.1)
                .collect::<Vec<_>>()
        };
        let latest = first + down;
        assert_eq!(
            of("latest"),
            vec![latest],
            "{name}: latest: one run, the most recent slot"
        );
        let all = of("all");
        assert_eq!(
            all.len(),
            49,
            "{name}: all: every slot of 8 hours, both ends"
        );
        assert_eq!((all[0], all[48]), (first, latest), "{name}: oldest first");
        assert!(
            of("none").is_empty(),
            "{name}: none: the missed slots are skipped"
        );
        for id in ["latest", "all", "none"] {
            assert_eq!(
                next_at(&s, id),
                Some(latest + 10 * MINUTE),
                "{name}: {id} moves past now"
            );
        }
        // "none" runs a slot reached late within MISSED_AFTER_MS.
        let fired = fire(&mut s, latest + 10 * MINUTE + MISSED_AFTER_MS);
        assert_eq!(fired.len(), 3, "{name}: {fired:?}");
    }
}

#[test]
fn catch_up_all_is_bounded() {
    let (name, mut s) = backends().remove(0);
    schedule(
        &mut s,
        T0,
        "every-second",
        "* * * * * *",
        json!({"catchUp": "all"}),
    );
    let first = next_at(&s, "every-second").unwrap();
    let fired = fire(&mut s, first + 3_600_000);
    assert_eq!(fired.len(), MAX_CATCH_UP, "{name}");
    assert_eq!(
        fired.last().unwrap().1,
        first + 3_600_000,
        "{name}: the latest slots are kept"
    );
}

#[test]
fn replacing_keeps_the_next_slot_unless_the_calendar_changes() {
    for (name, mut s) in backends() {
        schedule(&mut s, T0, "r", "0 * * * *", json!({}));
        let next = next_at(&s, "r").unwrap();
        // Called again at a start after downtime: the missed slot still fires.
        let again = schedule(
            &mut s,
            next + 5 * MINUTE,
            "r",
            "0 * * * *",
            json!({"run": {"job": "a", "input": {}, "priority": 5}}),
        );
        assert_eq!(
            (again["created"].clone(), again["nextAt"].as_i64()),
            (json!(false), Some(next)),
            "{name}"
        );
        assert_eq!(s.get_schedule("r").unwrap().unwrap().priority, 5, "{name}");
        let fired = fire(&mut s, next + 5 * MINUTE);
        assert_eq!(fired.len(), 1, "{name}");
        // A new expression: the first slot after now.
        let now = next + 7 * MINUTE;
        let moved = schedule(&mut s, now, "r", "*/15 * * * *", json!({}));
        assert_eq!(moved["nextAt"], next + 15 * MINUTE, "{name}");
        assert_eq!(
            ok(&mut s, json!({"op": "deleteSchedule", "id": "r"}))["deleted"],
            true,
            "{name}"
        );
        assert_eq!(
            ok(&mut s, json!({"op": "deleteSchedule", "id": "r"}))["deleted"],
            false,
            "{name}"
        );
        assert!(s.get_schedule("r").unwrap().is_none(), "{name}");
        assert_eq!(s.stats().unwrap().pending, 1, "{name}: its runs stay");
    }
}

#[test]
fn bad_schedules_are_refused_and_store_nothing() {
    let (name, mut s) = backends().remove(0);
    let run = json!({"job": "a", "input": {}});
    let bad = [
        json!({"id": "x", "cron": "61 * * * *", "run": run}),
        json!({"id": "x", "cron": "* * * *", "run": run}),
        json!({"id": "x", "cron": "@often", "run": run}),
        json!({"id": "x", "cron": "0 0 30 2 *", "run": run}),
        json!({"id": "x", "cron": "* * * * *", "timezone": "Mars/Olympus", "run": run}),
        json!({"id": "x", "cron": "* * * * *", "timezone": "", "run": run}),
        json!({"id": "", "cron": "* * * * *", "run": run}),
        json!({"id": "x".repeat(201), "cron": "* * * * *", "run": run}),
        json!({"id": "x", "cron": "* * * * *", "run": {"job": "a", "input": {}, "queue": ""}}),
        json!({"id": "x", "cron": "* * * * *", "run": {"job": "a", "input": {}, "queue": "q\u{0}"}}),
        json!({"id": "x", "cron": "* * * * *", "run": {"job": "a", "input": {}, "runAt": T0}}),
        json!({"id": "x", "cron": "* * * * *", "run": {"job": "a", "input": {}, "idempotencyKey": "k"}}),
        json!({"id": "x", "cron": "* * * * *", "catchUp": "some", "run": run}),
        json!({"id": "x", "cron": "* * * * *", "run": {"job": "", "input": {}}}),
    ];
    for b in bad {
        let mut op = json!({"op": "schedule"});
        op.as_object_mut()
            .unwrap()
            .extend(b.as_object().unwrap().clone());
        assert_eq!(err(&mut s, op), "DURQ_INVALID_INPUT", "{name}: {b}");
    }
    let page = s.list_schedules(&ScheduleFilter::default()).unwrap();
    assert!(page.schedules.is_empty(), "{name}: nothing stored");
    assert_eq!(s.next_schedule_at().unwrap(), None, "{name}");
    assert_eq!(
        err(&mut s, json!({"op": "fireSchedules", "limit": 0})),
        "DURQ_INVALID_INPUT"
    );
    let bad_cursor = ScheduleFilter {
        cursor: Some("0190a0f0-0000-7000-8000-000000000000".into()),
        limit: None,
    };
    assert_eq!(
        s.list_schedules(&bad_cursor).unwrap_err().code(),
        "DURQ_INVALID_INPUT",
        "{name}: a run cursor"
    );
}

#[test]
fn schedules_page_in_id_order() {
    let (name, mut s) = backends().remove(0);
    for i in 0..5 {
        schedule(&mut s, T0, &format!("s{i}"), "@daily", json!({}));
    }
    let mut ids = Vec::new();
    let mut cursor = None;
    loop {
        let page = s
            .list_schedules(&ScheduleFilter {
                cursor,
                limit: Some(2),
            })
            .unwrap();
        ids.extend(page.schedules.into_iter().map(|s| s.id));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(ids, ["s0", "s1", "s2", "s3", "s4"], "{name}");
}

#[test]
fn a_paused_queue_leases_nothing_and_enqueues_still_succeed() {
    for (name, mut s) in backends() {
        enqueue(&mut s, "a", json!({}));
        let p = ok(&mut s, json!({"op": "pauseQueue", "queue": "default"}));
        assert_eq!(
            (p["paused"].clone(), p["changed"].clone()),
            (json!(true), json!(true)),
            "{name}"
        );
        assert_eq!(
            ok(&mut s, json!({"op": "pauseQueue"}))["changed"],
            false,
            "{name}: default queue, already paused"
        );
        enqueue(&mut s, "a", json!({}));
        assert!(
            claim(&mut s, T0 + 1, 10)["runs"]
                .as_array()
                .unwrap()
                .is_empty(),
            "{name}"
        );
        assert_eq!(
            s.next_wake_at("default").unwrap(),
            None,
            "{name}: nothing to wake for"
        );
        let queues = serde_json::to_value(s.list_queues().unwrap()).unwrap();
        assert_eq!(queues[0]["name"], "default", "{name}");
        assert_eq!(queues[0]["paused"], true, "{name}");
        assert_eq!(queues[0]["counts"]["pending"], 2, "{name}");
        // Another queue is not affected.
        enqueue(&mut s, "a", json!({"queue": "other"}));
        let other = ok(
            &mut s,
            json!({"op": "claim", "now": T0 + 1, "queue": "other", "jobs": ["a"], "workerId": "w", "leaseMs": 1000, "limit": 10}),
        );
        assert_eq!(other["runs"].as_array().unwrap().len(), 1, "{name}");
        let r = ok(&mut s, json!({"op": "resumeQueue", "queue": "default"}));
        assert_eq!(
            (r["paused"].clone(), r["changed"].clone()),
            (json!(false), json!(true)),
            "{name}"
        );
        assert_eq!(s.next_wake_at("default").unwrap(), Some(T0), "{name}");
        assert_eq!(
            claim(&mut s, T0 + 2, 10)["runs"].as_array().unwrap().len(),
            2,
            "{name}"
        );
        assert_eq!(
            err(&mut s, json!({"op": "pauseQueue", "queue": ""})),
            "DURQ_INVALID_INPUT",
            "{name}"
        );
    }
}

#[test]
fn schedules_and_pauses_survive_a_reopen() {
    let dir = TempDir::new("schedules");
    let path = dir.path("s.db");
    {
        let mut s = Store::open(&path, &StoreOptions::default()).unwrap();
        schedule(
            &mut s,
            T0,
            "keep",
            "*/5 * * * *",
            json!({"timezone": "Europe/Berlin", "catchUp": "all"}),
        );
        ok(&mut s, json!({"op": "pauseQueue", "queue": "default"}));
    }
    let mut s = Store::open(&path, &StoreOptions::default()).unwrap();
    let k = s.get_schedule("keep").unwrap().unwrap();
    assert_eq!(
        (k.timezone.as_str(), k.catch_up.as_str()),
        ("Europe/Berlin", "all")
    );
    assert!(s.list_queues().unwrap()[0].paused);
    let first = k.next_at.unwrap();
    assert_eq!(fire(&mut s, first + 10 * MINUTE).len(), 3);
}
