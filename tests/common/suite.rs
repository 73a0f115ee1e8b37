//! The conformance-suite helpers shared by the suites (`tests/core.rs`,
//! `tests/batches.rs`, ...): every storage backend of the target (on wasm,
//! of the runtime: Node or a browser worker), and operations applied
//! through the JSON boundary.

use durq::{Store, StoreOptions};
use serde_json::{json, Value};

pub const T0: i64 = 1_700_000_000_000;

/// Every backend this target can test: memory, then each file route.
pub fn backends() -> Vec<(&'static str, Backend)> {
    let mut v = vec![(
        "memory",
        Backend {
            store: Store::open_in_memory(7).unwrap(),
            _dir: None,
        },
    )];
    for (name, options) in file_routes() {
        let dir = super::TempDir::new("core");
        let store = Store::open(&dir.path("core.db"), &options).unwrap();
        v.push((
            name,
            Backend {
                store,
                _dir: Some(dir),
            },
        ));
    }
    v
}

/// A store and the directory of its file, removed after the store closes
/// (fields drop in declaration order).
pub struct Backend {
    store: Store,
    _dir: Option<super::TempDir>,
}

impl std::ops::Deref for Backend {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

impl std::ops::DerefMut for Backend {
    fn deref_mut(&mut self) -> &mut Store {
        &mut self.store
    }
}

/// The ways this target opens a database file, as `StoreOptions`: natively
/// SQLite's unix VFS and the host VFS on `std::fs`; on wasm in Node the host
/// VFS on `node:fs`, in a browser worker the OPFS pool.
pub fn file_routes() -> Vec<(&'static str, StoreOptions)> {
    #[cfg(not(target_family = "wasm"))]
    let routes = vec![
        ("file (SQLite's unix VFS)", StoreOptions::default()),
        (
            "file (host VFS on std::fs)",
            StoreOptions {
                vfs: Some(super::std_host_vfs().to_owned()),
                ..Default::default()
            },
        ),
    ];
    #[cfg(all(target_family = "wasm", target_os = "unknown"))]
    let routes = if super::in_node() {
        vec![(
            "file (host VFS on node:fs)",
            StoreOptions {
                vfs: Some(super::node::node_host_vfs().to_owned()),
                ..Default::default()
            },
        )]
    } else {
        vec![(
            "file (OPFS sync-access-handle pool VFS)",
            StoreOptions {
                vfs: Some(super::opfs::vfs()),
                ..Default::default()
            },
        )]
    };
    routes
}

/// Applies ops through the JSON boundary; returns their outcomes.
///
/// The suites write each operation with the clock it runs at,
/// `{"op": name, "now": ms, ...args}`; on the wire the clock belongs to the
/// group commit (`Store::apply_json(now, ops)`) and an operation is
/// `{"op": name, "args": {...}}`. So consecutive operations with one `now`
/// (or none) go to the core as one group commit, and each is rewritten with
/// [`wire`].
pub fn apply(s: &mut Store, ops: Value) -> Vec<Value> {
    let ops = ops.as_array().expect("an array of operations");
    let now_of = |op: &Value| op.get("now").and_then(Value::as_i64);
    let mut out = Vec::with_capacity(ops.len());
    let mut i = 0;
    while i < ops.len() {
        let now = now_of(&ops[i]).unwrap_or(T0);
        let mut group = Vec::new();
        while i < ops.len() && now_of(&ops[i]).is_none_or(|n| n == now) {
            group.push(wire(&ops[i]));
            i += 1;
        }
        let n = group.len();
        match s.apply_json(now, &Value::Array(group).to_string()) {
            Ok(text) => out.extend(serde_json::from_str::<Vec<Value>>(&text).unwrap()),
            // A bad clock fails its whole group commit, before anything is
            // written: each of its operations reports the error, as the
            // façade's write queue rejects each of their promises.
            Err(e) if e.code() == "DURQ_INVALID_INPUT" => out.extend(
                (0..n).map(|_| json!({"err": {"code": e.code(), "message": e.to_string()}})),
            ),
            Err(e) => panic!("group commit failed: {e}"),
        }
    }
    out
}

/// The operations that take no arguments (`{"op": name}` on the wire).
pub const NO_ARGS: &[&str] = &["expireLeases", "deferSearchIndex", "restoreSearchIndex"];

/// `{"op": name, "now": ms, ...args}` as it crosses the boundary:
/// `{"op": name, "args": {...args}}` (`{"op": name}` for [`NO_ARGS`]).
/// Anything else (a malformed operation) is passed as it is.
pub fn wire(op: &Value) -> Value {
    let Some(obj) = op.as_object() else {
        return op.clone();
    };
    let mut args = obj.clone();
    let Some(name) = args.remove("op") else {
        return op.clone();
    };
    args.remove("now");
    match name.as_str() {
        Some(n) if NO_ARGS.contains(&n) && args.is_empty() => json!({ "op": name }),
        _ => json!({ "op": name, "args": args }),
    }
}

pub fn ok(s: &mut Store, op: Value) -> Value {
    let mut out = apply(s, json!([op]));
    let o = out.remove(0);
    assert!(o.get("ok").is_some(), "expected ok, got {o}");
    o["ok"].clone()
}

/// The whole outcome of one operation that must succeed:
/// `{"ok": result, "finishedBatches"?: [...]}`.
pub fn committed(s: &mut Store, op: Value) -> Value {
    let o = apply(s, json!([op])).remove(0);
    assert!(o.get("ok").is_some(), "expected ok, got {o}");
    o
}

pub fn err(s: &mut Store, op: Value) -> String {
    let mut out = apply(s, json!([op]));
    let o = out.remove(0);
    o["err"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected err, got {o}"))
        .to_string()
}

pub fn enqueue(s: &mut Store, job: &str, extra: Value) -> String {
    let mut op = json!({"op": "enqueue", "now": T0, "job": job, "input": {"n": 1}});
    op.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    ok(s, op)["id"].as_str().unwrap().to_string()
}

pub fn claim(s: &mut Store, now: i64, limit: i64) -> Value {
    ok(
        s,
        json!({"op": "claim", "now": now, "jobs": ["a", "b"], "workerId": "w1", "leaseMs": 1000, "limit": limit}),
    )
}

pub fn status(s: &Store, id: &str) -> String {
    serde_json::to_value(s.get_run(id).unwrap()).unwrap()["status"]
        .as_str()
        .unwrap()
        .to_string()
}
