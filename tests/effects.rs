//! The persisted effect cache (`durq::effect`): outputs keyed by effect name
//! and the SHA-256 of the input's canonical JSON, with a version; step
//! outputs read one at a time. Against every storage backend of the target
//! (natively and as wasm in Node, like `tests/core.rs`).

mod common;

#[cfg(all(target_family = "wasm", target_os = "unknown"))]
use durq_test_macros::test;

use common::suite::*;
use common::TempDir;
use durq::Store;
use serde_json::{json, Value};

fn put(s: &mut Store, name: &str, version: i64, input: &str, output: Value) -> Value {
    ok(
        s,
        json!({"op": "putEffect", "now": T0, "name": name, "version": version, "input": input, "output": output}),
    )
}

fn get(s: &Store, name: &str, input: &str) -> Option<(i64, Value)> {
    s.effect(name, input)
        .unwrap()
        .map(|e| (e.version, serde_json::from_str(e.output.get()).unwrap()))
}

#[test]
fn an_effect_output_is_stored_under_name_and_input_and_replaced_in_place() {
    for (name, mut s) in backends() {
        let s = &mut *s;
        assert_eq!(get(s, "fetch", r#"{"a":1}"#), None, "{name}: nothing yet");
        put(s, "fetch", 1, r#"{"a":1}"#, json!({"body": "x", "n": 1.5}));
        put(s, "fetch", 1, r#"{"a":2}"#, json!("two"));
        put(s, "other", 1, r#"{"a":1}"#, json!(null));
        assert_eq!(
            get(s, "fetch", r#"{"a":1}"#),
            Some((1, json!({"body": "x", "n": 1.5}))),
            "{name}"
        );
        assert_eq!(
            get(s, "fetch", r#"{"a":2}"#),
            Some((1, json!("two"))),
            "{name}"
        );
        assert_eq!(
            get(s, "other", r#"{"a":1}"#),
            Some((1, json!(null))),
            "{name}: per effect"
        );
        // The key is the exact text: canonicalizing is the caller's job.
        assert_eq!(get(s, "fetch", r#"{ "a": 1 }"#), None, "{name}");
        // A new version replaces the row (no stale rows pile up).
        put(s, "fetch", 2, r#"{"a":1}"#, json!([2]));
        assert_eq!(
            get(s, "fetch", r#"{"a":1}"#),
            Some((2, json!([2]))),
            "{name}"
        );
        let rows: i64 = s
            .connection()
            .query_row("SELECT count(*) FROM effects", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 3, "{name}");
        let key_len: i64 = s
            .connection()
            .query_row("SELECT max(length(key)) FROM effects", [], |r| r.get(0))
            .unwrap();
        assert_eq!(key_len, 32, "{name}: a SHA-256, not the input");
    }
}

#[test]
fn a_stored_effect_serializes_version_first_and_its_output_verbatim() {
    let (_, mut s) = backends().remove(0);
    let s = &mut *s;
    // Odd spacing and key order: the output's text must come back byte for byte.
    s.apply_json(1700000000000, r#"[{"op":"putEffect","args":{"name":"f","version":7,"input":"k","output":{"b" : 1,"a":[1.50]}}}]"#)
        .unwrap();
    let text = serde_json::to_string(&s.effect("f", "k").unwrap().unwrap()).unwrap();
    assert_eq!(
        text,
        r#"{"version":7,"createdAt":1700000000000,"output":{"b" : 1,"a":[1.50]}}"#
    );
    // `at` (when the output was computed) is stored rather than the commit's `now`.
    s.apply_json(1700000000000, r#"[{"op":"putEffect","args":{"at":1699999999000,"name":"f","version":7,"input":"k","output":1}}]"#)
        .unwrap();
    assert_eq!(
        s.effect("f", "k").unwrap().unwrap().created_at,
        1_699_999_999_000
    );
}

#[test]
fn delete_effects_drops_one_effect_or_all() {
    for (name, mut s) in backends() {
        let s = &mut *s;
        put(s, "a", 0, "1", json!(1));
        put(s, "a", 0, "2", json!(2));
        put(s, "b", 0, "1", json!(3));
        let d = ok(s, json!({"op": "deleteEffects", "now": T0, "name": "a"}));
        assert_eq!(d, json!({"deleted": 2}), "{name}");
        assert_eq!(get(s, "a", "1"), None, "{name}");
        assert_eq!(get(s, "b", "1"), Some((0, json!(3))), "{name}");
        let d = ok(s, json!({"op": "deleteEffects", "now": T0}));
        assert_eq!(d, json!({"deleted": 1}), "{name}");
        assert_eq!(get(s, "b", "1"), None, "{name}");
    }
}

#[test]
fn bad_effect_operations_fail_alone_and_keep_what_is_stored() {
    for (name, mut s) in backends() {
        let s = &mut *s;
        put(s, "keep", 3, "k", json!("kept"));
        let bad = [
            json!({"op": "putEffect", "now": T0, "name": "", "version": 0, "input": "k", "output": 1}),
            json!({"op": "putEffect", "now": T0, "name": "a\u{0}b", "version": 0, "input": "k", "output": 1}),
            json!({"op": "putEffect", "now": T0, "name": "x".repeat(257), "version": 0, "input": "k", "output": 1}),
            json!({"op": "putEffect", "now": T0, "name": "keep", "version": -1, "input": "k", "output": 1}),
            json!({"op": "putEffect", "now": T0, "name": "keep", "version": 1_i64 << 31, "input": "k", "output": 1}),
            json!({"op": "putEffect", "now": T0, "name": "keep", "version": 1.5, "input": "k", "output": 1}),
            json!({"op": "putEffect", "now": T0, "name": "keep", "version": 1, "input": "k"}),
            json!({"op": "putEffect", "now": T0, "name": "keep", "version": 1, "output": 1}),
            json!({"op": "putEffect", "now": -1, "name": "keep", "version": 1, "input": "k", "output": 1}),
            json!({"op": "putEffect", "now": T0, "at": -5, "name": "keep", "version": 1, "input": "k", "output": 1}),
            json!({"op": "deleteEffects", "now": T0, "name": ""}),
        ];
        for op in bad {
            assert_eq!(err(s, op.clone()), "DURQ_INVALID_INPUT", "{name}: {op}");
        }
        assert_eq!(get(s, "keep", "k"), Some((3, json!("kept"))), "{name}");
    }
}

#[test]
fn step_output_reads_one_step() {
    for (name, mut s) in backends() {
        let s = &mut *s;
        let id = enqueue(s, "a", json!({}));
        let claimed = claim(s, T0, 1);
        let token = claimed["runs"][0]["token"].as_i64().unwrap();
        ok(
            s,
            json!({"op": "saveStep", "now": T0, "id": id, "token": token, "name": "fetch", "output": {"ok": [1, 2]}}),
        );
        let out = s.step_output(&id, "fetch").unwrap().unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(out.get()).unwrap(),
            json!({"ok": [1, 2]}),
            "{name}"
        );
        assert!(s.step_output(&id, "other").unwrap().is_none(), "{name}");
        assert!(s.step_output("nope", "fetch").unwrap().is_none(), "{name}");
    }
}

#[test]
fn effect_outputs_survive_reopening_a_file() {
    for (route, opts) in file_routes() {
        let dir = TempDir::new("effects");
        let path = dir.path("e.db");
        {
            let mut s = Store::open(&path, &opts).unwrap();
            put(
                &mut s,
                "fetch",
                7,
                r#"["x"]"#,
                json!({"big": "y".repeat(10_000)}),
            );
        }
        let s = Store::open(&path, &opts).unwrap();
        let (version, out) = get(&s, "fetch", r#"["x"]"#).unwrap();
        assert_eq!(version, 7, "{route}");
        assert_eq!(out["big"].as_str().unwrap().len(), 10_000, "{route}");
    }
}

#[test]
fn reading_an_effect_is_one_primary_key_seek() {
    let (_, s) = backends().remove(0);
    let p = common::plan(
        s.connection(),
        "SELECT version, created_at, output FROM effects WHERE name = ?1 AND key = ?2",
        &["a".to_string().into(), vec![0u8; 32].into()],
    );
    assert_eq!(p, "SEARCH effects USING PRIMARY KEY (name=? AND key=?)");
}
