//! The single-run layer: what the queue, batches and imports do to one run
//! row — validate and insert a new run, find a run by idempotency key,
//! check a lease holder's fencing token, cancel, delete. Features build on
//! these; nothing here knows of batches or claims.

use crate::error::{Error, Result};
use crate::history::EventKind;
use crate::model::{Backoff, NewRun, Status};
use crate::validate;
use crate::write::Write;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use std::collections::BTreeMap;
use ts_rs::TS;

/// Default queue name.
pub const DEFAULT_QUEUE: &str = "default";
/// Default attempt limit.
pub const DEFAULT_MAX_ATTEMPTS: i64 = 3;
/// Largest attempt limit.
pub const MAX_ATTEMPTS_LIMIT: i64 = 1000;

/// Result of `enqueue` (and of each run of `enqueueMany` and
/// `enqueueBatch`).
#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Enqueued {
    /// The run's id.
    pub id: String,
    /// `false` when an existing run with the same job and idempotency key
    /// was returned instead of creating one.
    pub created: bool,
    /// The run's status.
    pub status: Status,
}

/// A new run whose fields passed validation, with defaults filled in.
pub struct CheckedRun<'a> {
    run: &'a NewRun,
    queue: &'a str,
    run_at: i64,
    priority: i64,
    max_attempts: i64,
    backoff: Backoff,
}

impl CheckedRun<'_> {
    /// Queue name.
    pub fn queue(&self) -> &str {
        self.queue
    }
    /// Due time, ms.
    pub fn run_at(&self) -> i64 {
        self.run_at
    }
    /// Priority.
    pub fn priority(&self) -> i64 {
        self.priority
    }
    /// Attempt limit.
    pub fn max_attempts(&self) -> i64 {
        self.max_attempts
    }
    /// Backoff.
    pub fn backoff(&self) -> Backoff {
        self.backoff
    }
}

/// Validates a new run without touching the database; `default_queue` is
/// used when the run names none, `now` (ms) when it has no `runAt`.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad job, queue, key, time, priority
/// (32-bit), attempt limit (1 ..= [`MAX_ATTEMPTS_LIMIT`]), backoff or label.
pub fn check_run<'a>(r: &'a NewRun, now: i64, default_queue: &'a str) -> Result<CheckedRun<'a>> {
    validate::name("job name", &r.job)?;
    let queue = r.queue.as_deref().unwrap_or(default_queue);
    validate::name("queue name", queue)?;
    if let Some(k) = &r.idempotency_key {
        validate::name("idempotency key", k)?;
    }
    if let Some(k) = &r.concurrency_key {
        validate::name("concurrency key", k)?;
    }
    let run_at = r.run_at.unwrap_or(now);
    validate::time("runAt", run_at)?;
    let priority = r.priority.unwrap_or(0);
    if i32::try_from(priority).is_err() {
        return Err(Error::invalid(format!(
            "priority must be a 32-bit integer, got {priority}"
        )));
    }
    let max_attempts = r.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
    if !(1..=MAX_ATTEMPTS_LIMIT).contains(&max_attempts) {
        return Err(Error::invalid(format!(
            "maxAttempts must be between 1 and {MAX_ATTEMPTS_LIMIT}, got {max_attempts}"
        )));
    }
    let backoff = r.backoff.unwrap_or_default();
    let b = &backoff;
    let max = validate::MAX_DELAY_MS as f64;
    let ok = (0.0..=max).contains(&b.initial_ms)
        && (1.0..=1000.0).contains(&b.factor)
        && (0.0..=max).contains(&b.max_ms)
        && (0.0..=1.0).contains(&b.jitter);
    if !ok {
        return Err(Error::invalid(format!(
            "backoff needs initialMs and maxMs in [0, {}] ms, factor in [1, 1000] and jitter in [0, 1]",
            validate::MAX_DELAY_MS
        )));
    }
    if let Some(l) = &r.labels {
        validate::labels(l)?;
    }
    Ok(CheckedRun {
        run: r,
        queue,
        run_at,
        priority,
        max_attempts,
        backoff,
    })
}

/// The stored run with `r`'s job and idempotency key, if `r` has a key and
/// such a run exists.
///
/// # Errors
/// An SQLite error if the read fails.
pub fn existing_run(c: &Connection, r: &NewRun) -> Result<Option<Enqueued>> {
    let Some(key) = &r.idempotency_key else {
        return Ok(None);
    };
    let existing: Option<(String, String)> = c
        .prepare_cached("SELECT id, status FROM runs WHERE job = ?1 AND idempotency_key = ?2")?
        .query_row(params![r.job, key], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    Ok(existing.map(|(id, status)| Enqueued {
        id,
        created: false,
        status: Status::parse(&status).unwrap_or(Status::Pending),
    }))
}

/// Inserts a checked run (and its label rows) created now; `batch_id` for
/// a run of `enqueueBatch`.
///
/// # Errors
/// An SQLite error if an insert fails (a constraint, a full disk).
pub fn insert_run(
    w: &mut Write<'_>,
    checked: &CheckedRun<'_>,
    batch_id: Option<&str>,
) -> Result<Enqueued> {
    let c = w.conn();
    let now = w.now();
    let r = checked.run;
    let id = w.next_id();
    let empty = BTreeMap::new();
    let labels = r.labels.as_ref().unwrap_or(&empty);
    let labels_json = serde_json::to_string(labels).expect("labels serialize");
    // Most runs keep the default backoff: its JSON is made once, not per run.
    static DEFAULT_BACKOFF_JSON: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        serde_json::to_string(&Backoff::default()).expect("backoff serializes")
    });
    let custom;
    let backoff_json: &str = if checked.backoff == Backoff::default() {
        &DEFAULT_BACKOFF_JSON
    } else {
        custom = serde_json::to_string(&checked.backoff).expect("backoff serializes");
        &custom
    };
    c.prepare_cached(
        "INSERT INTO runs (id, queue, job, status, priority, run_at, created_at, updated_at, input, labels,
                           idempotency_key, concurrency_key, max_attempts, backoff, batch_id, enqueued_generation)
         VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        id, checked.queue, r.job, checked.priority, checked.run_at, now, r.input.get(), labels_json,
        r.idempotency_key, r.concurrency_key, checked.max_attempts, backoff_json, batch_id, w.generation()
    ])?;
    if !labels.is_empty() {
        let mut st =
            c.prepare_cached("INSERT INTO run_labels (key, value, run_id) VALUES (?2, ?3, ?1)")?;
        for (k, v) in labels {
            st.execute(params![id, k, v])?;
        }
    }
    // Its `enqueued` event is the row itself (`enqueued_generation`).
    Ok(Enqueued {
        id,
        created: true,
        status: Status::Pending,
    })
}

/// Checks that the caller holds the lease of run `id` with fencing token
/// `token`; returns the attempt number.
///
/// # Errors
/// [`Error::LeaseLost`] (saying why) if it does not.
pub fn hold(c: &Connection, id: &str, token: i64) -> Result<i64> {
    let row: Option<i64> = c
        .prepare_cached(
            "SELECT attempt FROM runs WHERE id = ?1 AND lease_token = ?2 AND status = 'leased'",
        )?
        .query_row(params![id, token], |r| r.get(0))
        .optional()?;
    row.ok_or_else(|| lease_lost(c, id, token))
}

/// The `DURQ_LEASE_LOST` error for a holder of `token` on run `id`, saying why.
pub fn lease_lost(c: &Connection, id: &str, token: i64) -> Error {
    let row: rusqlite::Result<Option<(String, i64)>> = c
        .prepare_cached("SELECT status, lease_token FROM runs WHERE id = ?1")
        .and_then(|mut s| {
            s.query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        });
    match row {
        Ok(None) => Error::LeaseLost(format!("run {id} no longer exists (deleted or purged)")),
        Ok(Some((status, current))) if current != token => Error::LeaseLost(format!(
            "lease on run {id} lost: fencing token {token} is stale (current {current}, status {status}); the lease expired and the run was recovered"
        )),
        Ok(Some((status, _))) => Error::LeaseLost(format!("run {id} is {status}, no longer leased")),
        Err(e) => Error::Sqlite(e),
    }
}

/// Whether a handler may still be running run `id` (its lease is held).
///
/// # Errors
/// An SQLite error if the read fails.
pub fn handler_running(c: &Connection, id: &str) -> Result<bool> {
    Ok(
        c.prepare_cached("SELECT lease_expires_at IS NOT NULL FROM runs WHERE id = ?1")?
            .query_row(params![id], |r| r.get::<_, bool>(0))
            .optional()?
            .unwrap_or(false),
    )
}

/// The run's status and batch.
///
/// # Errors
/// [`Error::NotFound`] if there is no run `id`.
pub fn status_of(c: &Connection, id: &str) -> Result<(Status, Option<String>)> {
    let s: Option<(String, Option<String>)> = c
        .prepare_cached("SELECT status, batch_id FROM runs WHERE id = ?1")?
        .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match s {
        Some((s, b)) => Ok((Status::parse(&s).unwrap_or(Status::Pending), b)),
        None => Err(Error::NotFound(format!("no run with id {id:?}"))),
    }
}

/// Sets a live run's status to `cancelled` (the caller moves its batch's
/// counts).
///
/// # Errors
/// An SQLite error if the update fails.
pub fn mark_cancelled(w: &mut Write<'_>, id: &str, previous: Status) -> Result<()> {
    // A leased run keeps its fencing token, lease owner and expiry: its
    // handler may still be running, so it keeps holding its concurrency key
    // until the holder reports back (its next heartbeat learns of the
    // cancellation; its `complete`/`fail` then releases the key) or the
    // lease runs out. Its other writes fail with DURQ_LEASE_LOST.
    let attempt: i64 = w
        .conn()
        .prepare_cached(
            "UPDATE runs SET status = 'cancelled', finished_at = ?2, updated_at = ?2 WHERE id = ?1
             RETURNING attempt",
        )?
        .query_row(params![id, w.now()], |r| r.get(0))?;
    let data = serde_json::json!({ "previous": previous.as_str() });
    w.event(id, EventKind::Cancelled, attempt, Some(data));
    Ok(())
}

/// The holder of a run cancelled under it reports back (`complete` or
/// `fail`): release the run's lease and concurrency key. Returns whether
/// the caller was that holder.
///
/// # Errors
/// An SQLite error if the update fails.
pub fn release_cancelled(w: &Write<'_>, id: &str, token: i64) -> Result<bool> {
    let n = w
        .conn()
        .prepare_cached(
            "UPDATE runs SET lease_owner = NULL, lease_expires_at = NULL, updated_at = ?3
             WHERE id = ?1 AND lease_token = ?2 AND status = 'cancelled' AND lease_expires_at IS NOT NULL",
        )?
        .execute(params![id, token, w.now()])?;
    Ok(n == 1)
}

/// Deletes run `id` with its labels, steps, logs and history (the caller
/// moves its batch's counts).
///
/// # Errors
/// An SQLite error if a delete fails.
pub fn delete_run(w: &mut Write<'_>, id: &str) -> Result<()> {
    let c = w.conn();
    // Label rows are found through the run's JSON copy of its labels.
    c.prepare_cached(
        "DELETE FROM run_labels WHERE (key, value, run_id) IN
            (SELECT j.key, j.value, r.id FROM runs AS r, json_each(r.labels) AS j WHERE r.id = ?1)",
    )?
    .execute(params![id])?;
    c.prepare_cached("DELETE FROM steps WHERE run_id = ?1")?
        .execute(params![id])?;
    c.prepare_cached("DELETE FROM run_logs WHERE run_id = ?1")?
        .execute(params![id])?;
    crate::history::delete_events(c, id)?;
    // Events of this commit not written yet would outlive the run.
    w.forget_events(id);
    c.prepare_cached("DELETE FROM runs WHERE id = ?1")?
        .execute(params![id])?;
    Ok(())
}
