//! Batches: runs enqueued together in one queue, with per-status counts that
//! move in the same transaction as every run transition of the batch, and
//! the advisory `active_batches(queue, batch_id)` membership that lists a
//! queue's live batches without touching batch history (docs/architecture.md,
//! capability 4).
//!
//! The batch row is authoritative; membership is advisory:
//! 1. membership is written before the batch row, in the batch's
//!    transaction, so a reader never misses an active batch;
//! 2. it is removed in the transaction that turns the batch terminal;
//! 3. on read, a member whose batch is terminal is removed (best effort: a
//!    failed removal never fails the read), and a member whose batch row is
//!    missing is skipped, not removed;
//! 4. [`reconcile`] re-adds missing members, drops terminal ones and drops
//!    members whose batch row has been missing for longer than a grace
//!    period. Every membership write is idempotent.

use crate::error::{Error, Result};
pub use crate::model::{BatchCounts, BatchState, FinishedBatch};
use crate::model::{NewRun, Status};
use crate::run::{check_run, existing_run, insert_run, mark_cancelled, Enqueued, DEFAULT_QUEUE};
use crate::validate;
use crate::write::Write;

mod read;
pub use read::{
    get_batch, list_active_batches, list_batches, Batch, BatchFilter, BatchPage,
    LIST_ACTIVE_BATCHES_SQL,
};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use ts_rs::TS;

/// `enqueueBatch`: a batch and all its runs, in one operation (all or none).
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct EnqueueBatchOp {
    /// Queue of the batch and of every run in it (default `"default"`).
    #[serde(default)]
    pub queue: Option<String>,
    /// The runs (1 or more). A run's `queue`, if given, must be the batch's.
    pub runs: Vec<NewRun>,
    /// Labels of the batch (not copied onto its runs).
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    /// If a batch with this key exists, it is returned instead (`created: false`).
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// `cancelBatch`.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct BatchIdOp {
    /// Batch id.
    pub id: String,
}

/// `reconcileBatches`.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct ReconcileOp {
    /// A member whose batch row is missing is dropped only once it was added
    /// at least this long ago, ms (0 ..= 2^31 - 1; default
    /// [`DEFAULT_GRACE_MS`]).
    #[serde(default)]
    pub grace_ms: Option<i64>,
}

/// Default grace period of [`reconcile`], ms: one minute.
pub const DEFAULT_GRACE_MS: i64 = 60_000;

/// Result of `enqueueBatch`.
#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct EnqueuedBatch {
    /// The batch id.
    pub id: String,
    /// `false` when an existing batch with the same idempotency key was
    /// returned (nothing was written).
    pub created: bool,
    /// The batch's state.
    pub state: BatchState,
    /// Its runs, in the order given (for an existing batch: in creation order).
    pub runs: Vec<Enqueued>,
}

/// Membership writes; each is idempotent.
const ADD_MEMBER_SQL: &str =
    "INSERT INTO active_batches (queue, batch_id, added_at) VALUES (?1, ?2, ?3)
     ON CONFLICT (queue, batch_id) DO NOTHING";
const DROP_MEMBER_SQL: &str = "DELETE FROM active_batches WHERE queue = ?1 AND batch_id = ?2";

/// `enqueueBatch`: the batch row, its membership and every run, or
/// nothing (everything that can refuse the batch is checked first).
///
/// # Errors
/// [`Error::InvalidInput`] for a bad queue, label, key or run (naming the
/// run); [`Error::InvalidState`] for a run whose idempotency key belongs to
/// a run outside the batch.
pub fn enqueue_batch(w: &mut Write<'_>, o: &EnqueueBatchOp) -> Result<EnqueuedBatch> {
    let c = w.conn();
    let now = w.now();
    let queue = o.queue.as_deref().unwrap_or(DEFAULT_QUEUE);
    validate::name("queue name", queue)?;
    if o.runs.is_empty() {
        return Err(Error::invalid("a batch needs at least one run"));
    }
    let empty = BTreeMap::new();
    let labels = o.labels.as_ref().unwrap_or(&empty);
    validate::labels(labels)?;
    if let Some(k) = &o.idempotency_key {
        validate::name("batch idempotency key", k)?;
        let existing: Option<(String, String)> = c
            .prepare_cached("SELECT id, state FROM batches WHERE idempotency_key = ?1")?
            .query_row(params![k], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((id, state)) = existing {
            let runs = c
                .prepare_cached(
                    "SELECT id, status FROM runs INDEXED BY runs_batch WHERE batch_id = ?1 ORDER BY id",
                )?
                .query_map(params![id], |r| {
                    let s: String = r.get(1)?;
                    Ok(Enqueued {
                        id: r.get(0)?,
                        created: false,
                        status: Status::parse(&s).unwrap_or(Status::Pending),
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            return Ok(EnqueuedBatch {
                id,
                created: false,
                state: BatchState::parse(&state).unwrap_or(BatchState::Active),
                runs,
            });
        }
    }
    // Everything that can refuse the batch is checked before its first
    // write: a refusal then costs the group commit no rollback and replay.
    let mut checked = Vec::with_capacity(o.runs.len());
    let mut keys: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (i, r) in o.runs.iter().enumerate() {
        let at = |e| prefix_error(e, &format!("run {i} of the batch: "));
        if let Some(q) = r.queue.as_deref().filter(|q| *q != queue) {
            return Err(Error::invalid(format!(
                "run {i} of the batch names queue {q:?}; a batch's runs are all in its queue {queue:?}"
            )));
        }
        checked.push(check_run(r, now, queue).map_err(at)?);
        if let Some(k) = &r.idempotency_key {
            if let Some(first) = keys.insert((&r.job, k), i) {
                return Err(Error::invalid(format!(
                    "run {i} of the batch repeats the job and idempotency key of run {first}"
                )));
            }
            if let Some(e) = existing_run(c, r)? {
                return Err(Error::InvalidState(format!(
                    "run {i} of the batch: its idempotency key matches run {}, which is not in this batch; \
                     a batch holds only runs it creates (give the batch an idempotencyKey to make it safe to retry)",
                    e.id
                )));
            }
        }
    }

    let id = w.next_id();
    let n = o.runs.len() as i64;
    // Membership first (invariant 2), then the authoritative row, then the runs.
    c.prepare_cached(ADD_MEMBER_SQL)?
        .execute(params![queue, id, now])?;
    c.prepare_cached(
        "INSERT INTO batches (id, queue, state, labels, idempotency_key, total, pending, created_at, updated_at)
         VALUES (?1, ?2, 'active', ?3, ?4, ?5, ?5, ?6, ?6)",
    )?
    .execute(params![
        id,
        queue,
        serde_json::to_string(labels).expect("labels serialize"),
        o.idempotency_key,
        n,
        now
    ])?;
    let mut runs = Vec::with_capacity(checked.len());
    for run in &checked {
        runs.push(insert_run(w, run, Some(&id))?);
    }
    Ok(EnqueuedBatch {
        id,
        created: true,
        state: BatchState::Active,
        runs,
    })
}

fn prefix_error(e: Error, prefix: &str) -> Error {
    match e {
        Error::InvalidInput(m) => Error::InvalidInput(format!("{prefix}{m}")),
        other => other,
    }
}

/// Moves one run of batch `batch_id` from status `from` to `to` (`None`: the
/// run was deleted while live, and leaves the batch) in the batch's counts,
/// in the caller's transaction; turns the batch terminal (and drops its
/// membership) when no run of it is pending or leased any more, and then
/// notes it in `w` ([`Write::batch_finished`]). A missing batch row is
/// ignored (it was purged).
///
/// # Errors
/// An SQLite error if an update fails.
pub fn run_moved(
    w: &mut Write<'_>,
    batch_id: &str,
    from: Status,
    to: Option<Status>,
) -> Result<()> {
    let c = w.conn();
    let now = w.now();
    let row: Option<(String, String, i64, i64, i64, i64, i64)> = c
        .prepare_cached(
            "UPDATE batches SET
                pending   = pending   - (?2 = 'pending')   + (?3 IS 'pending'),
                leased    = leased    - (?2 = 'leased')    + (?3 IS 'leased'),
                completed = completed - (?2 = 'completed') + (?3 IS 'completed'),
                failed    = failed    - (?2 = 'failed')    + (?3 IS 'failed'),
                cancelled = cancelled - (?2 = 'cancelled') + (?3 IS 'cancelled'),
                total     = total - (?3 IS NULL),
                updated_at = ?4
             WHERE id = ?1
             RETURNING state, queue, total, pending + leased, completed, failed, cancelled",
        )?
        .query_row(
            params![batch_id, from.as_str(), to.map(Status::as_str), now],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            },
        )
        .optional()?;
    let Some((state, queue, total, live, completed, failed, cancelled)) = row else {
        return Ok(());
    };
    if state != "active" || live > 0 {
        return Ok(());
    }
    let end = if failed > 0 {
        BatchState::Failed
    } else if total > 0 && completed == total {
        BatchState::Completed
    } else {
        BatchState::Cancelled
    };
    c.prepare_cached(
        "UPDATE batches SET state = ?2, finished_at = ?3 WHERE id = ?1 AND state = 'active'",
    )?
    .execute(params![batch_id, end.as_str(), now])?;
    c.prepare_cached(DROP_MEMBER_SQL)?
        .execute(params![queue, batch_id])?;
    w.batch_finished(FinishedBatch {
        id: batch_id.to_string(),
        queue,
        state: end,
        counts: BatchCounts {
            total,
            pending: 0,
            leased: 0,
            completed,
            failed,
            cancelled,
        },
    });
    Ok(())
}

/// A run cancelled by `cancelBatch`.
#[derive(Debug, Serialize, TS)]
pub struct CancelledRun {
    /// Run id.
    pub id: String,
    /// Its status before (`pending` or `leased`).
    pub previous: Status,
}

/// Result of `cancelBatch`.
#[derive(Debug, Serialize, TS)]
pub struct CancelledBatch {
    /// The batch's state after the cancellation.
    pub state: BatchState,
    /// The runs it cancelled (a leased one's handler is told to stop).
    pub runs: Vec<CancelledRun>,
}

/// `cancelBatch`: cancels the batch's live runs (which ends it).
///
/// # Errors
/// [`Error::NotFound`]; [`Error::InvalidState`] for a terminal batch.
pub fn cancel_batch(w: &mut Write<'_>, o: &BatchIdOp) -> Result<CancelledBatch> {
    let c = w.conn();
    let state = get_batch(c, &o.id)?.state;
    if state != BatchState::Active {
        return Err(Error::InvalidState(format!(
            "batch {} is already {}",
            o.id,
            state.as_str()
        )));
    }
    let live: Vec<(String, String)> = c
        .prepare_cached(
            "SELECT id, status FROM runs INDEXED BY runs_batch
             WHERE batch_id = ?1 AND status IN ('pending', 'leased') ORDER BY id",
        )?
        .query_map(params![o.id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut runs = Vec::with_capacity(live.len());
    for (id, status) in live {
        let previous = Status::parse(&status).unwrap_or(Status::Pending);
        mark_cancelled(w, &id, previous)?;
        run_moved(w, &o.id, previous, Some(Status::Cancelled))?;
        runs.push(CancelledRun { id, previous });
    }
    // With no live run left, `run_moved` has ended the batch.
    let state = w
        .finished_batches()
        .iter()
        .find(|f| f.id == o.id)
        .map_or(BatchState::Active, |f| f.state);
    Ok(CancelledBatch { state, runs })
}

/// A membership row, as reported by [`reconcile`].
#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// Queue of the membership row.
    pub queue: String,
    /// Batch id.
    pub batch_id: String,
}

/// Result of [`reconcile`]: what it changed.
#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Reconciled {
    /// Membership re-added for active batches that had none.
    pub added: Vec<Member>,
    /// Membership dropped because the batch is terminal (or in another queue).
    pub dropped_terminal: Vec<Member>,
    /// Membership dropped because the batch row has been missing for longer
    /// than the grace period.
    pub dropped_missing: Vec<Member>,
    /// Members whose batch row is missing, kept because they are younger
    /// than the grace period.
    pub kept_missing: i64,
}

/// Sweeps the membership against the batch rows. Reads every batch row
/// (O(batches): the batch table has no index on `state`), so it is a
/// maintenance call, not something to run per request.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad grace period.
pub fn reconcile(w: &mut Write<'_>, o: &ReconcileOp) -> Result<Reconciled> {
    let c = w.conn();
    let now = w.now();
    let grace = o.grace_ms.unwrap_or(DEFAULT_GRACE_MS);
    if !(0..=validate::MAX_DELAY_MS).contains(&grace) {
        return Err(Error::invalid(format!(
            "graceMs must be between 0 and {} ms, got {grace}",
            validate::MAX_DELAY_MS
        )));
    }
    let members = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<Vec<Member>> {
        Ok(c.prepare(sql)?
            .query_map(p, |r| {
                Ok(Member {
                    queue: r.get(0)?,
                    batch_id: r.get(1)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?)
    };
    let dropped_terminal = members(
        "DELETE FROM active_batches AS a WHERE EXISTS (
            SELECT 1 FROM batches AS b WHERE b.id = a.batch_id AND (b.state <> 'active' OR b.queue <> a.queue))
         RETURNING queue, batch_id",
        &[],
    )?;
    let dropped_missing = members(
        "DELETE FROM active_batches AS a
         WHERE a.added_at <= ?1 AND NOT EXISTS (SELECT 1 FROM batches AS b WHERE b.id = a.batch_id)
         RETURNING queue, batch_id",
        &[&now.saturating_sub(grace)],
    )?;
    let kept_missing: i64 = c.query_row(
        "SELECT count(*) FROM active_batches AS a
         WHERE NOT EXISTS (SELECT 1 FROM batches AS b WHERE b.id = a.batch_id)",
        [],
        |r| r.get(0),
    )?;
    let added = members(
        "INSERT INTO active_batches (queue, batch_id, added_at)
         SELECT b.queue, b.id, ?1 FROM batches AS b WHERE b.state = 'active'
         ON CONFLICT (queue, batch_id) DO NOTHING
         RETURNING queue, batch_id",
        &[&now],
    )?;
    Ok(Reconciled {
        added,
        dropped_terminal,
        dropped_missing,
        kept_missing,
    })
}

/// Deletes terminal batches finished before `older_than` (at most `limit`),
/// with any membership they still have; their runs are purged by the run
/// purge. Returns how many were deleted.
pub(crate) fn purge(c: &Connection, older_than: i64, limit: i64) -> Result<usize> {
    let gone: Vec<(String, String)> = c
        .prepare_cached(
            "DELETE FROM batches WHERE id IN (
                SELECT id FROM batches INDEXED BY batches_finished
                WHERE finished_at IS NOT NULL AND finished_at < ?1 AND state <> 'active'
                ORDER BY finished_at LIMIT ?2)
             RETURNING queue, id",
        )?
        .query_map(params![older_than, limit], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut drop = c.prepare_cached(DROP_MEMBER_SQL)?;
    for (queue, id) in &gone {
        drop.execute(params![queue, id])?;
    }
    Ok(gone.len())
}
