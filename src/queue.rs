//! The queue's writes on whole runs: `enqueue`, `enqueueMany`, `cancel`,
//! `deleteRun`, `retrigger`, `purgeRuns`, `purgeBatches`, `expireLeases`.
//! A lease holder's writes are in [`crate::lease`].

use crate::batch;
use crate::error::{Error, Result};
use crate::model::{NewRun, Status};
use crate::run::{
    check_run, delete_run, existing_run, handler_running, insert_run, mark_cancelled, status_of,
    Enqueued, DEFAULT_QUEUE,
};
use crate::validate;
use crate::write::Write;
use rusqlite::params;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// `enqueueMany`: several runs, all or none.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct EnqueueManyOp {
    /// The runs.
    pub runs: Vec<NewRun>,
}

/// `cancel`, `deleteRun`, `retrigger`: the run they act on.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct IdOp {
    /// Run id.
    pub id: String,
}

/// `purgeRuns`, `purgeBatches`.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct PurgeOp {
    /// Terminal runs (batches) finished before this time (ms) are deleted.
    pub older_than: i64,
    /// At most this many (default: all).
    #[serde(default)]
    pub limit: Option<i64>,
}

/// Result of `cancel`.
#[derive(Debug, Serialize, TS)]
pub struct Cancelled {
    /// `cancelled`.
    pub status: Status,
    /// The status it had (`pending` or `leased`).
    pub previous: Status,
}

/// Result of `deleteRun`.
#[derive(Debug, Serialize, TS)]
pub struct RunDeleted {
    /// Always `true` (a missing run is `DURQ_NOT_FOUND`).
    pub deleted: bool,
}

/// Result of `retrigger`.
#[derive(Debug, Serialize, TS)]
pub struct Retriggered {
    /// Id of the new run.
    pub id: String,
}

/// Result of `purgeRuns` and `purgeBatches`.
#[derive(Debug, Serialize, TS)]
pub struct Purged {
    /// Rows deleted.
    pub deleted: usize,
}

/// `expireLeasesOf`: the process whose workers' ids start with
/// `ownerPrefix` is gone.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct ExpireLeasesOfOp {
    /// Prefix of the lease owners (worker ids) whose leases expire now:
    /// the process's `workerId` followed by `:` (its workers are
    /// `<workerId>:w<n>`). 1 to 512 bytes.
    pub owner_prefix: String,
}

/// Result of `expireLeases`.
#[derive(Debug, Serialize, TS)]
pub struct LeasesExpired {
    /// Leases made due now.
    pub expired: usize,
}

/// `enqueue`: creates one run (or finds the existing one of its
/// idempotency key).
///
/// # Errors
/// [`Error::InvalidInput`] for a bad run (see [`check_run`]).
pub fn enqueue(w: &mut Write<'_>, r: &NewRun) -> Result<Enqueued> {
    let checked = check_run(r, w.now(), DEFAULT_QUEUE)?;
    if let Some(existing) = existing_run(w.conn(), r)? {
        return Ok(existing);
    }
    insert_run(w, &checked, None)
}

/// `enqueueMany`: every run or none (the first bad run fails the operation).
///
/// # Errors
/// As [`enqueue`], for the first run that fails.
pub fn enqueue_many(w: &mut Write<'_>, m: &EnqueueManyOp) -> Result<Vec<Enqueued>> {
    let mut out = Vec::with_capacity(m.runs.len());
    for r in &m.runs {
        out.push(enqueue(w, r)?);
    }
    Ok(out)
}

/// `cancel`: a live run becomes `cancelled` (a leased one's handler learns
/// it at its next heartbeat).
///
/// # Errors
/// [`Error::NotFound`]; [`Error::InvalidState`] for a finished run.
pub fn cancel(w: &mut Write<'_>, o: &IdOp) -> Result<Cancelled> {
    let (previous, batch_id) = status_of(w.conn(), &o.id)?;
    if previous.is_terminal() {
        return Err(Error::InvalidState(format!(
            "run {} is already {}",
            o.id,
            previous.as_str()
        )));
    }
    mark_cancelled(w, &o.id, previous)?;
    if let Some(b) = &batch_id {
        batch::run_moved(w, b, previous, Some(Status::Cancelled))?;
    }
    Ok(Cancelled {
        status: Status::Cancelled,
        previous,
    })
}

/// `deleteRun`: a run that no handler runs, with its labels, steps, logs
/// and history.
///
/// # Errors
/// [`Error::NotFound`]; [`Error::InvalidState`] for a leased run or a
/// cancelled one whose handler has not stopped.
pub fn delete(w: &mut Write<'_>, o: &IdOp) -> Result<RunDeleted> {
    let c = w.conn();
    let (status, batch_id) = status_of(c, &o.id)?;
    if status == Status::Leased {
        return Err(Error::InvalidState(format!(
            "run {} is leased by a worker; cancel it first, then delete it",
            o.id
        )));
    }
    if handler_running(c, &o.id)? {
        return Err(Error::InvalidState(format!(
            "run {} was cancelled but its handler has not stopped yet; delete it once it has (or its lease has run out)",
            o.id
        )));
    }
    delete_run(w, &o.id)?;
    if let (Some(b), false) = (batch_id, status.is_terminal()) {
        // A live run deleted leaves its batch; a finished one stays
        // counted (the batch's counts are its history).
        batch::run_moved(w, &b, status, None)?;
    }
    Ok(RunDeleted { deleted: true })
}

/// `retrigger`: a new pending run from a finished one (same job, input,
/// labels, options; `retriedFrom` names the old run).
///
/// # Errors
/// [`Error::NotFound`]; [`Error::InvalidState`] for a live run.
pub fn retrigger(w: &mut Write<'_>, o: &IdOp) -> Result<Retriggered> {
    let c = w.conn();
    let now = w.now();
    let (status, _) = status_of(c, &o.id)?;
    if !status.is_terminal() {
        return Err(Error::InvalidState(format!(
            "run {} is {}; only a finished run can be retriggered",
            o.id,
            status.as_str()
        )));
    }
    let id = w.next_id();
    c.prepare_cached(
        "INSERT INTO runs (id, queue, job, status, priority, run_at, created_at, updated_at, input, labels,
                           concurrency_key, max_attempts, backoff, retried_from, enqueued_generation)
         SELECT ?2, queue, job, 'pending', priority, ?3, ?3, ?3, input, labels,
                concurrency_key, max_attempts, backoff, id, ?4
         FROM runs WHERE id = ?1",
    )?
    .execute(params![o.id, id, now, w.generation()])?;
    c.prepare_cached("INSERT INTO run_labels (key, value, run_id) SELECT j.key, j.value, ?2 FROM runs AS r, json_each(r.labels) AS j WHERE r.id = ?1")?
        .execute(params![o.id, id])?;
    // Its `enqueued` event (with `retriedFrom`) is the row itself.
    Ok(Retriggered { id })
}

/// Checks a purge's time; returns its limit (default: no limit).
fn purge_limit(o: &PurgeOp) -> Result<i64> {
    validate::time("olderThan", o.older_than)?;
    let limit = o.limit.unwrap_or(i64::MAX);
    if limit < 1 {
        return Err(Error::invalid(format!(
            "purge limit must be at least 1, got {limit}"
        )));
    }
    Ok(limit)
}

/// `purgeRuns`: deletes terminal runs finished before `olderThan`, oldest
/// first, at most `limit` (one `runs_finished` range scan).
///
/// # Errors
/// [`Error::InvalidInput`] for a bad time or limit.
pub fn purge(w: &mut Write<'_>, o: &PurgeOp) -> Result<Purged> {
    let limit = purge_limit(o)?;
    let ids: Vec<String> = w
        .conn()
        .prepare_cached(
            "SELECT id FROM runs INDEXED BY runs_finished
             WHERE finished_at IS NOT NULL AND finished_at < ?1
               AND status IN ('completed', 'failed', 'cancelled') AND lease_expires_at IS NULL
             ORDER BY finished_at LIMIT ?2",
        )?
        .query_map(params![o.older_than, limit], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in &ids {
        delete_run(w, id)?;
    }
    Ok(Purged { deleted: ids.len() })
}

/// `purgeBatches`: deletes terminal batches finished before `olderThan`.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad time or limit.
pub fn purge_batches(w: &mut Write<'_>, o: &PurgeOp) -> Result<Purged> {
    let limit = purge_limit(o)?;
    Ok(Purged {
        deleted: batch::purge(w.conn(), o.older_than, limit)?,
    })
}

/// `expireLeases`: every lease is due now. A file database has one owner
/// at a time, so at open every lease belongs to a process that is gone:
/// the next claim recovers them (fencing token bumped) rather than waiting
/// out `leaseMs`.
///
/// # Errors
/// An SQLite error if the update fails.
pub fn expire_leases(w: &mut Write<'_>) -> Result<LeasesExpired> {
    let n = w
        .conn()
        .prepare_cached("UPDATE runs INDEXED BY runs_lease SET lease_expires_at = ?1 WHERE lease_expires_at > ?1")?
        .execute(params![w.now()])?;
    Ok(LeasesExpired { expired: n })
}

/// `expireLeasesOf`: the leases held by workers whose id starts with
/// `ownerPrefix` are due now; the leases of every other process stay.
/// When the owner of a shared file dies, the process taking over expires
/// only the dead owner's leases: the workers of live client processes keep
/// theirs.
///
/// # Errors
/// [`Error::InvalidInput`] for an empty prefix or one over 512 bytes; an
/// SQLite error if the update fails.
pub fn expire_leases_of(w: &mut Write<'_>, o: &ExpireLeasesOfOp) -> Result<LeasesExpired> {
    if o.owner_prefix.is_empty() || o.owner_prefix.len() > 512 {
        return Err(Error::InvalidInput(format!(
            "ownerPrefix must be 1 to 512 bytes, got {}",
            o.owner_prefix.len()
        )));
    }
    let n = w
        .conn()
        .prepare_cached(
            "UPDATE runs INDEXED BY runs_lease SET lease_expires_at = ?1 \
             WHERE lease_expires_at > ?1 AND substr(lease_owner, 1, length(?2)) = ?2",
        )?
        .execute(params![w.now(), o.owner_prefix])?;
    Ok(LeasesExpired { expired: n })
}
