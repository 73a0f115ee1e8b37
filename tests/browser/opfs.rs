//! What only the OPFS pool has: a database that outlives the pool's handles
//! (released and installed again, as when its tab closes and another takes
//! over), alarm namespaces as files of the same pool, a refused release
//! while a database is open, and bad pool names.

use durq::wasm::opfs::OpfsPool;
use durq::{Store, StoreOptions};
use serde_json::json;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::wasm_bindgen_test;

use crate::common::suite::{claim, enqueue, ok, status, T0};

fn code(e: &JsValue) -> String {
    js_sys::Reflect::get(e, &"code".into())
        .unwrap()
        .as_string()
        .unwrap_or_default()
}

fn options(pool: &OpfsPool) -> StoreOptions {
    StoreOptions {
        vfs: Some(pool.vfs()),
        ..Default::default()
    }
}

#[wasm_bindgen_test]
async fn a_database_survives_releasing_and_reinstalling_its_pool() {
    let pool = OpfsPool::install_pool("durq-reopen").await.unwrap();
    for name in pool.file_names().unwrap() {
        pool.remove_file(&name).unwrap();
    }
    let (pending, done) = {
        let mut s = Store::open("app.db", &options(&pool)).unwrap();
        let done = enqueue(&mut s, "a", json!({"labels": {"tenant": "acme"}}));
        let pending = enqueue(&mut s, "b", json!({}));
        let run = claim(&mut s, T0, 1)["runs"][0].clone();
        assert_eq!(run["id"], json!(done));
        ok(
            &mut s,
            json!({"op": "complete", "now": T0 + 1, "id": done, "token": run["token"], "output": {"ok": true}}),
        );
        (pending, done)
    };
    // The WAL was checkpointed into the database and removed at close.
    assert_eq!(pool.file_names().unwrap(), vec!["app.db".to_string()]);
    pool.release().unwrap();
    assert!(pool.file_names().is_err(), "a released pool lists nothing");

    let again = OpfsPool::install_pool("durq-reopen").await.unwrap();
    let s = Store::open("app.db", &options(&again)).unwrap();
    assert_eq!(status(&s, &done), "completed");
    assert_eq!(status(&s, &pending), "pending");
    assert_eq!(s.integrity_check().unwrap(), vec!["ok".to_string()]);
}

#[wasm_bindgen_test]
async fn alarm_namespaces_are_files_of_the_same_pool() {
    let pool = OpfsPool::install_pool("durq-alarms").await.unwrap();
    pool.reserve(12).await.unwrap();
    assert!(pool.capacity() >= 12);
    let mut s = Store::open("app.db", &options(&pool)).unwrap();
    ok(
        &mut s,
        json!({"op": "setAlarm", "namespace": "rooms", "actorId": "r1", "time": T0 + 5_000, "now": T0}),
    );
    let names = pool.file_names().unwrap();
    assert!(
        names.contains(&"app.db.alarms/rooms.db".to_string()),
        "{names:?}"
    );
    drop(s);
    let mut s = Store::open("app.db", &options(&pool)).unwrap();
    assert_eq!(s.next_alarm_after("rooms", 0).unwrap(), Some(T0 + 5_000));
}

#[wasm_bindgen_test]
async fn releasing_a_pool_with_an_open_database_is_refused_and_loses_nothing() {
    let pool = OpfsPool::install_pool("durq-busy").await.unwrap();
    let mut s = Store::open("busy.db", &options(&pool)).unwrap();
    let id = enqueue(&mut s, "a", json!({}));
    let e = pool.release().unwrap_err();
    assert_eq!(code(&e), "DURQ_OPFS");
    assert_eq!(status(&s, &id), "pending");
    enqueue(&mut s, "a", json!({}));
}

#[wasm_bindgen_test]
async fn bad_pool_names_are_refused() {
    for name in ["", ".hidden", "a/b", "a b", &"x".repeat(201)] {
        let e = OpfsPool::install_pool(name).await.err().unwrap();
        assert_eq!(code(&e), "DURQ_INVALID_INPUT", "{name:?}");
    }
}

#[wasm_bindgen_test]
async fn the_suites_here_use_the_opfs_pool() {
    crate::common::ready().await;
    let routes = crate::common::suite::file_routes();
    assert_eq!(routes.len(), 1);
    assert!(routes[0].0.contains("OPFS"), "{}", routes[0].0);
}
