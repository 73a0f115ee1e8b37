//! Reads of batches: by id, pages of batch history, and a queue's active
//! batches through the `active_batches` membership (see the invariants in
//! [`super`]).

use super::{BatchCounts, BatchState, DROP_MEMBER_SQL};
use crate::error::{Error, Result};
use crate::json::raw_column;
use crate::page::{check_cursor, check_limit};
use crate::validate;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use ts_rs::TS;

/// A batch as read back.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Batch {
    /// UUIDv7 (time-ordered, from the same generator as run ids).
    pub id: String,
    /// Queue of the batch and its runs.
    pub queue: String,
    /// State.
    pub state: BatchState,
    /// Labels JSON.
    #[ts(type = "unknown")]
    pub labels: Box<RawValue>,
    /// Idempotency key.
    pub idempotency_key: Option<String>,
    /// Run counts by status.
    pub counts: BatchCounts,
    /// ms.
    pub created_at: i64,
    /// Last count or state change, ms.
    pub updated_at: i64,
    /// When it turned terminal, ms.
    pub finished_at: Option<i64>,
}

/// Filter of `listBatches`.
#[derive(Debug, Default, Deserialize, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[ts(optional_fields = nullable)]
pub struct BatchFilter {
    /// Queue.
    #[serde(default)]
    pub queue: Option<String>,
    /// State.
    #[serde(default)]
    pub state: Option<BatchState>,
    /// Page size, 1..=1000 (default 50).
    #[serde(default)]
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// A page of batches, newest first.
#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct BatchPage {
    /// The batches.
    pub batches: Vec<Batch>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

const BATCH_COLS: &str = "b.id, b.queue, b.state, b.labels, b.idempotency_key, b.total, b.pending,
    b.leased, b.completed, b.failed, b.cancelled, b.created_at, b.updated_at, b.finished_at";

fn batch_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<Batch> {
    let state: String = r.get(at + 2)?;
    let labels: String = r.get(at + 3)?;
    Ok(Batch {
        id: r.get(at)?,
        queue: r.get(at + 1)?,
        state: BatchState::parse(&state).unwrap_or(BatchState::Active),
        labels: raw_column(labels)?,
        idempotency_key: r.get(at + 4)?,
        counts: BatchCounts {
            total: r.get(at + 5)?,
            pending: r.get(at + 6)?,
            leased: r.get(at + 7)?,
            completed: r.get(at + 8)?,
            failed: r.get(at + 9)?,
            cancelled: r.get(at + 10)?,
        },
        created_at: r.get(at + 11)?,
        updated_at: r.get(at + 12)?,
        finished_at: r.get(at + 13)?,
    })
}

/// The batch with id `id`.
///
/// # Errors
/// [`Error::NotFound`] if there is none.
pub fn get_batch(c: &Connection, id: &str) -> Result<Batch> {
    c.prepare_cached(&format!(
        "SELECT {BATCH_COLS} FROM batches AS b WHERE b.id = ?1"
    ))?
    .query_row(params![id], |r| batch_from_row(r, 0))
    .optional()?
    .ok_or_else(|| Error::NotFound(format!("no batch with id {id:?}")))
}

/// The `listActiveBatches` query (`?1` queue): the queue's members by
/// primary-key prefix, each resolved by primary key against `batches`
/// (`NULL` batch columns: the batch row is missing). Public so a test can
/// read its `EXPLAIN QUERY PLAN`.
pub const LIST_ACTIVE_BATCHES_SQL: &str = "SELECT a.batch_id, b.id, b.queue, b.state, b.labels,
    b.idempotency_key, b.total, b.pending, b.leased, b.completed, b.failed, b.cancelled,
    b.created_at, b.updated_at, b.finished_at
    FROM active_batches AS a LEFT JOIN batches AS b ON b.id = a.batch_id
    WHERE a.queue = ?1 ORDER BY a.batch_id";

/// The active batches of `queue`, oldest first: a primary-key prefix scan of
/// `active_batches`, each member resolved by primary key, so the cost grows
/// with the queue's active batches, not with batch history. A member whose
/// batch is terminal (or in another queue) is skipped and removed, best
/// effort: if the removal fails the read still succeeds. A member whose
/// batch row is missing is skipped and kept (see [`reconcile`]).
///
/// # Errors
/// [`Error::InvalidInput`] for a bad queue name; an SQLite error if the
/// read fails.
pub fn list_active_batches(c: &Connection, queue: &str) -> Result<Vec<Batch>> {
    validate::name("queue name", queue)?;
    let mut out = Vec::new();
    let mut stale: Vec<String> = Vec::new();
    {
        let mut st = c.prepare_cached(LIST_ACTIVE_BATCHES_SQL)?;
        let mut rows = st.query(params![queue])?;
        while let Some(r) = rows.next()? {
            if r.get::<_, Option<String>>(1)?.is_none() {
                continue; // batch row missing: skip, keep the member
            }
            let b = batch_from_row(r, 1)?;
            if b.state == BatchState::Active && b.queue == queue {
                out.push(b);
            } else {
                stale.push(b.id);
            }
        }
    }
    if !stale.is_empty() {
        // Best effort: the read's answer is already right without it.
        if let Ok(mut st) = c.prepare_cached(DROP_MEMBER_SQL) {
            for id in &stale {
                let _ = st.execute(params![queue, id]);
            }
        }
    }
    Ok(out)
}

/// A page of batches matching `f`, newest first, from the authoritative
/// batch rows: `batches_queue` (with a queue) or the primary key walks
/// batch history newest first and checks the state on each row, so a
/// state that is rare in a long history costs a long walk. For the live
/// batches of a queue, [`list_active_batches`] reads the membership instead.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad queue, limit or cursor; an SQLite
/// error if the read fails.
pub fn list_batches(c: &Connection, f: &BatchFilter) -> Result<BatchPage> {
    let limit = check_limit(f.limit)?;
    let mut params: Vec<rusqlite::types::Value> = Vec::new();
    let mut wh: Vec<String> = Vec::new();
    let mut p = |v: rusqlite::types::Value| {
        params.push(v);
        format!("?{}", params.len())
    };
    use rusqlite::types::Value::{Integer, Text};
    let (from, order_col) = if f.queue.is_some() {
        ("batches AS b INDEXED BY batches_queue", "b.id")
    } else {
        ("batches AS b", "b.id")
    };
    if let Some(q) = &f.queue {
        validate::name("queue name", q)?;
        wh.push(format!("b.queue = {}", p(Text(q.clone()))));
    }
    if let Some(s) = f.state {
        wh.push(format!("b.state = {}", p(Text(s.as_str().into()))));
    }
    if let Some(cur) = &f.cursor {
        check_cursor(cur, "listBatches")?;
        wh.push(format!("{order_col} < {}", p(Text(cur.clone()))));
    }
    let l = p(Integer(limit + 1));
    let where_sql = if wh.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", wh.join(" AND "))
    };
    let sql =
        format!("SELECT {BATCH_COLS} FROM {from} {where_sql} ORDER BY {order_col} DESC LIMIT {l}");
    let mut batches: Vec<Batch> = c
        .prepare_cached(&sql)?
        .query_map(rusqlite::params_from_iter(params), |r| batch_from_row(r, 0))?
        .collect::<rusqlite::Result<_>>()?;
    let next_cursor = if batches.len() > limit as usize {
        batches.truncate(limit as usize);
        batches.last().map(|b| b.id.clone())
    } else {
        None
    };
    Ok(BatchPage {
        batches,
        next_cursor,
    })
}
