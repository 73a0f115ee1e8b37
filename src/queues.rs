//! Queues as a whole: `pauseQueue`, `resumeQueue` and `listQueues`.
//!
//! A paused queue is a row of `paused_queues` (so it stays paused across
//! restarts). `claim` leases nothing from it (runs already leased go on
//! and finish), `nextWakeAt` reports none of its runs, and enqueues still
//! succeed — BullMQ's `queue.pause()` and pg-boss's behaviour.

use crate::error::Result;
use crate::model::Stats;
use crate::run::DEFAULT_QUEUE;
use crate::validate;
use crate::write::Write;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use ts_rs::TS;

/// `pauseQueue`, `resumeQueue`.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct QueueOp {
    /// Queue name (default `"default"`).
    #[serde(default)]
    pub queue: Option<String>,
}

/// Result of `pauseQueue` and `resumeQueue`.
#[derive(Debug, Serialize, TS)]
pub struct QueuePaused {
    /// Whether the queue is paused now.
    pub paused: bool,
    /// Whether this call changed it.
    pub changed: bool,
}

/// `pauseQueue`.
///
/// # Errors
/// [`crate::Error::InvalidInput`] for a bad queue name.
pub fn pause(w: &mut Write<'_>, o: &QueueOp) -> Result<QueuePaused> {
    let queue = o.queue.as_deref().unwrap_or(DEFAULT_QUEUE);
    validate::name("queue name", queue)?;
    let n = w
        .conn()
        .prepare_cached("INSERT OR IGNORE INTO paused_queues (queue, paused_at) VALUES (?1, ?2)")?
        .execute(params![queue, w.now()])?;
    Ok(QueuePaused {
        paused: true,
        changed: n > 0,
    })
}

/// `resumeQueue`.
///
/// # Errors
/// [`crate::Error::InvalidInput`] for a bad queue name.
pub fn resume(w: &mut Write<'_>, o: &QueueOp) -> Result<QueuePaused> {
    let queue = o.queue.as_deref().unwrap_or(DEFAULT_QUEUE);
    validate::name("queue name", queue)?;
    let n = w
        .conn()
        .prepare_cached("DELETE FROM paused_queues WHERE queue = ?1")?
        .execute([queue])?;
    Ok(QueuePaused {
        paused: false,
        changed: n > 0,
    })
}

/// Whether `queue` is paused: one primary-key seek.
///
/// # Errors
/// An SQLite error if the read fails.
pub fn is_paused(c: &Connection, queue: &str) -> Result<bool> {
    Ok(
        c.prepare_cached("SELECT 1 FROM paused_queues WHERE queue = ?1")?
            .query_row([queue], |_| Ok(()))
            .optional()?
            .is_some(),
    )
}

/// One queue as `listQueues` reports it.
#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct QueueInfo {
    /// Queue name.
    pub name: String,
    /// Whether it is paused.
    pub paused: bool,
    /// When it was paused, ms.
    pub paused_at: Option<i64>,
    /// Its runs by status.
    #[ts(
        type = "{ pending: number; leased: number; completed: number; failed: number; cancelled: number }"
    )]
    pub counts: Stats,
}

/// Every queue that holds a run or is paused, in name order, with its
/// counts: one pass over the runs, O(runs), as `stats` is.
///
/// # Errors
/// An SQLite error if the read fails.
pub fn list(c: &Connection) -> Result<Vec<QueueInfo>> {
    let mut queues: BTreeMap<String, QueueInfo> = BTreeMap::new();
    let info = |name: &str| QueueInfo {
        name: name.to_owned(),
        paused: false,
        paused_at: None,
        counts: Stats::default(),
    };
    let mut st =
        c.prepare_cached("SELECT queue, status, count(*) FROM runs GROUP BY queue, status")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let name: String = r.get(0)?;
        let status: String = r.get(1)?;
        let n: i64 = r.get(2)?;
        let q = queues.entry(name.clone()).or_insert_with(|| info(&name));
        q.counts.add(&status, n);
    }
    let mut st = c.prepare_cached("SELECT queue, paused_at FROM paused_queues")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let name: String = r.get(0)?;
        let q = queues.entry(name.clone()).or_insert_with(|| info(&name));
        q.paused = true;
        q.paused_at = Some(r.get(1)?);
    }
    Ok(queues.into_values().collect())
}
