//! # durq
//!
//! A durable run queue and scheduler over SQLite. This crate is the core:
//! schema and migrations, the queue's write operations applied by group
//! commit ([`Store::apply`]), and its reads. It compiles natively (tested with
//! `cargo test`) and to `wasm32-unknown-unknown`, where [`wasm`] exposes it to
//! the TypeScript façade in `js/`. See `docs/boundary.md` for the operation
//! shapes and `../shared/DESIGN.md` for the architecture.

#![warn(missing_docs)]

pub mod alarm;
pub mod batch;
pub mod effect;
pub mod error;
pub mod history;
pub mod ids;
pub mod model;
pub mod query;
pub mod queue;
pub mod rows;
pub mod schema;
pub mod search;
pub mod store;
pub mod transfer;
pub mod validate;
pub mod vfs;

#[cfg(all(target_family = "wasm", target_os = "unknown"))]
pub mod wasm;

pub use alarm::{Alarm, AlarmFilter, AlarmPage};
pub use batch::{Batch, BatchFilter, BatchPage, BatchState};
pub use error::{Error, Result};
pub use model::{Backoff, Op, Run, RunFilter, RunPage, Status};
pub use store::{Outcome, Store, StoreOptions, Synchronous};
