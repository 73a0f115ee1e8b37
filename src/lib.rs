//! # durq
//!
//! A durable run queue and scheduler over SQLite. This crate is the core:
//! schema and migrations, the queue's write operations ([`op::Op`]) applied
//! by group commit ([`Store::apply`]), and its reads. It compiles natively
//! (tested with `cargo test`) and to `wasm32-unknown-unknown`, where [`wasm`]
//! exposes it to the TypeScript façade in `js/`. See `docs/boundary.md` for
//! the operation shapes and `docs/architecture.md` for the architecture.
//!
//! Modules form layers; each imports only from the layers below it
//! (`tests/layers.rs` fails on an import that goes up, or on a cycle):
//!
//! | layer | modules |
//! |---|---|
//! | leaves | `error`, `ids`, `json`, `rows`, `validate` |
//! | data and storage | `model`, `page`, `schema`, `vfs` |
//! | write context | `history`, `write` |
//! | one run | `run` |
//! | features | `batch`, `lease`, `queue`, `queues`, `schedule`, `search`, `effect`, `alarm`, `transfer`, `query` |
//! | dispatch | `op` |
//! | group commit | `commit` |
//! | the database | `store` |
//! | the boundary | `wasm` |

#![warn(missing_docs)]

pub mod alarm;
pub mod batch;
pub mod commit;
pub mod effect;
pub mod error;
pub mod history;
pub mod ids;
pub mod json;
pub mod lease;
pub mod model;
pub mod op;
pub mod page;
pub mod query;
pub mod queue;
pub mod queues;
pub mod rows;
pub mod run;
pub mod schedule;
pub mod schema;
pub mod search;
pub mod store;
pub mod transfer;
pub mod validate;
pub mod vfs;
pub mod write;

#[cfg(all(target_family = "wasm", target_os = "unknown"))]
pub mod wasm;

pub use alarm::{Alarm, AlarmFilter, AlarmPage};
pub use batch::{Batch, BatchFilter, BatchPage, BatchState};
pub use error::{Error, Result};
pub use model::{Backoff, Run, RunFilter, RunPage, Status};
pub use op::Op;
pub use store::{Outcome, Store, StoreOptions, Synchronous};
