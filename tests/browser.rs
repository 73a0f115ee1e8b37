//! The core's conformance suites in headless Chromium, in a dedicated
//! worker, on the origin private file system: the same test files as in
//! Node (`core`, `batches`, `alarms`, `search`, `effects`, `plans`), whose
//! file backend is the OPFS sync-access-handle pool VFS here
//! (`durq::wasm::opfs::OpfsPool`, the browser entry's storage) instead of
//! the host VFS on `node:fs`.
//!
//! Run with `cargo test --target wasm32-unknown-unknown --test browser`
//! (`wasm-bindgen-test-runner` finds `chromedriver` on PATH) or
//! `wasm-pack test --headless --chrome`. `wasm-pack test --node` skips this
//! binary; the same suites run in Node as their own test binaries.
#![cfg(all(target_family = "wasm", target_os = "unknown"))]
// Each suite file declares `mod common;` for its own binary, so here the
// helpers are compiled once per suite; their state that must be shared (the
// OPFS pool) lives in sqlite-wasm-vfs's registry, not in the copies.
#![allow(clippy::duplicate_mod)]

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

#[path = "alarms.rs"]
mod alarms;
#[path = "batches.rs"]
mod batches;
#[path = "core.rs"]
mod core_suite;
#[path = "effects.rs"]
mod effects;
#[path = "plans.rs"]
mod plans;
#[path = "search.rs"]
mod search;

mod common;
#[path = "browser/opfs.rs"]
mod opfs;
