//! The queue's write operations. Each runs inside the savepoint that
//! [`crate::Store::apply`] opened for it, on the batch's transaction.

use crate::batch::{self, FinishedBatch};
use crate::error::{Error, Result};
use crate::history::{EventKind, Events};
use crate::ids::RunIdGenerator;
use crate::model::*;
use crate::validate;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::value::{to_raw_value, RawValue};
use std::collections::{BTreeMap, HashSet};

/// Default queue name.
pub const DEFAULT_QUEUE: &str = "default";
/// Default attempt limit.
pub const DEFAULT_MAX_ATTEMPTS: i64 = 3;
/// Largest attempt limit.
pub const MAX_ATTEMPTS_LIMIT: i64 = 1000;
/// Most runs leased by one claim.
pub const MAX_CLAIM: i64 = 1000;

fn raw<T: Serialize>(v: &T) -> Result<Box<RawValue>> {
    Ok(to_raw_value(v).expect("result serializes"))
}

/// Applies one operation; returns its result JSON. When the operation
/// turned batches terminal, its result (an object) gets a
/// `finishedBatches` field listing them.
pub(crate) fn apply_op(
    c: &Connection,
    ids: &mut RunIdGenerator,
    ev: &mut Events,
    op: &Op,
) -> Result<Box<RawValue>> {
    let mut finished = Vec::new();
    let out = apply_one(c, ids, ev, op, &mut finished)?;
    if finished.is_empty() {
        return Ok(out);
    }
    // Rare (once per batch): splice the field into the result's text rather
    // than re-parse it, which could alter user JSON inside it.
    let text = out.get();
    debug_assert!(
        text.starts_with('{'),
        "results that finish batches are objects"
    );
    let rest = &text[1..];
    let sep = if rest.starts_with('}') { "" } else { "," };
    let list = serde_json::to_string(&finished).expect("batches serialize");
    raw_text(format!("{{\"finishedBatches\":{list}{sep}{rest}"))
}

fn apply_one(
    c: &Connection,
    ids: &mut RunIdGenerator,
    ev: &mut Events,
    op: &Op,
    finished: &mut Vec<FinishedBatch>,
) -> Result<Box<RawValue>> {
    match op {
        Op::Enqueue(r) => {
            let now = r.now.ok_or_else(|| Error::invalid("enqueue needs `now`"))?;
            raw(&enqueue(c, ids, ev, r, now)?)
        }
        Op::EnqueueMany(m) => {
            let mut out = Vec::with_capacity(m.runs.len());
            for r in &m.runs {
                out.push(enqueue(c, ids, ev, r, m.now)?);
            }
            raw(&out)
        }
        Op::EnqueueBatch(o) => raw(&batch::enqueue_batch(c, ids, ev, o)?),
        Op::CancelBatch(o) => raw(&batch::cancel_batch(c, ev, o, finished)?),
        Op::ReconcileBatches(o) => raw(&batch::reconcile(c, o)?),
        // `Store::apply` sends these to the namespace's own database.
        Op::Alarm(_) => Err(Error::invalid(
            "alarm operations are applied to their namespace's database",
        )),
        Op::Claim(o) => raw(&claim(c, ev, o, finished)?),
        Op::Heartbeat(o) => raw(&heartbeat(c, o)?),
        Op::SaveStep(o) => {
            check_now(o.now)?;
            validate::name("step name", &o.name)?;
            let attempt = hold(c, &o.id, o.token)?;
            let stored = c
                .prepare_cached(
                    "INSERT INTO steps (run_id, name, output, attempt, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (run_id, name) DO NOTHING",
                )?
                .execute(params![o.id, o.name, o.output.get(), attempt, o.now])?;
            if stored == 1 {
                let data = serde_json::json!({ "name": o.name });
                ev.push(&o.id, o.now, EventKind::StepCompleted, attempt, Some(data));
            }
            raw(&serde_json::json!({}))
        }
        Op::Progress(o) => {
            check_now(o.now)?;
            let n = c
                .prepare_cached("UPDATE runs SET progress = ?3, updated_at = ?4 WHERE id = ?1 AND lease_token = ?2 AND status = 'leased'")?
                .execute(params![o.id, o.token, o.progress.get(), o.now])?;
            if n == 0 {
                return Err(lease_lost(c, &o.id, o.token));
            }
            raw(&serde_json::json!({}))
        }
        Op::Log(o) => {
            check_now(o.now)?;
            if o.message.contains('\0') {
                return Err(Error::invalid(
                    "log message must not contain NUL characters",
                ));
            }
            let level = o.level.as_deref().unwrap_or("info");
            validate::name("log level", level)?;
            let attempt = hold(c, &o.id, o.token)?;
            c.prepare_cached(
                "INSERT INTO run_logs (run_id, seq, at, attempt, level, message)
                 VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM run_logs WHERE run_id = ?1), ?2, ?3, ?4, ?5)",
            )?
            .execute(params![o.id, o.now, attempt, level, o.message])?;
            raw(&serde_json::json!({}))
        }
        Op::Complete(o) => {
            check_now(o.now)?;
            let done: Option<(Option<String>, i64)> = c
                .prepare_cached(
                    "UPDATE runs SET status = 'completed', output = ?3, finished_at = ?4, updated_at = ?4,
                        lease_owner = NULL, lease_expires_at = NULL
                     WHERE id = ?1 AND lease_token = ?2 AND status = 'leased'
                     RETURNING batch_id, attempt",
                )?
                .query_row(params![o.id, o.token, o.output.get(), o.now], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            let Some((batch_id, attempt)) = done else {
                if release_cancelled(c, &o.id, o.token, o.now)? {
                    return raw(&serde_json::json!({ "status": "cancelled" }));
                }
                return Err(lease_lost(c, &o.id, o.token));
            };
            ev.push(&o.id, o.now, EventKind::Completed, attempt, None);
            if let Some(b) = batch_id {
                batch::run_moved(
                    c,
                    &b,
                    Status::Leased,
                    Some(Status::Completed),
                    o.now,
                    finished,
                )?;
            }
            raw(&serde_json::json!({ "status": "completed" }))
        }
        Op::Fail(o) => raw(&fail(c, ev, o, finished)?),
        Op::Cancel(o) => raw(&cancel(c, ev, o, finished)?),
        Op::DeleteRun(o) => {
            check_now(o.now)?;
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
            delete_run(c, ev, &o.id)?;
            if let (Some(b), false) = (batch_id, status.is_terminal()) {
                // A live run deleted leaves its batch; a finished one stays
                // counted (the batch's counts are its history).
                batch::run_moved(c, &b, status, None, o.now, finished)?;
            }
            raw(&serde_json::json!({ "deleted": true }))
        }
        Op::Retrigger(o) => raw(&retrigger(c, ids, ev, o)?),
        Op::ImportRuns(o) => raw(&crate::transfer::import_runs(c, ids, ev, o)?),
        // In a savepoint of their own: trigger DDL does not count as a
        // change, so a half-done defer or restore would not make
        // `Store::apply` replay the batch.
        Op::DeferSearchIndex(o) => {
            check_now(o.now)?;
            raw(&crate::store::in_savepoint(c, crate::search::defer)?)
        }
        Op::RestoreSearchIndex(o) => {
            check_now(o.now)?;
            raw(&crate::store::in_savepoint(c, crate::search::restore)?)
        }
        Op::PutEffect(o) => {
            crate::effect::put(c, o)?;
            raw(&serde_json::json!({}))
        }
        Op::DeleteEffects(o) => raw(&crate::effect::delete(c, o)?),
        Op::PurgeRuns(o) => raw(&purge(c, ev, o)?),
        Op::PurgeBatches(o) => raw(&purge_batches(c, o)?),
        Op::ExpireLeases(o) => {
            // A file database has one owner at a time (the façade's lock
            // file), so at open every lease belongs to a process that is
            // gone: make them due now rather than waiting out `leaseMs`.
            // The next claim recovers them (fencing token bumped).
            check_now(o.now)?;
            let n = c
                .prepare_cached("UPDATE runs INDEXED BY runs_lease SET lease_expires_at = ?1 WHERE lease_expires_at > ?1")?
                .execute(params![o.now])?;
            raw(&serde_json::json!({ "expired": n }))
        }
    }
}

fn check_now(now: i64) -> Result<()> {
    validate::time("now", now)
}

/// Result of `enqueue`.
#[derive(Debug, Serialize)]
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

/// Creates one run (or finds the existing one of its idempotency key).
fn enqueue(
    c: &Connection,
    ids: &mut RunIdGenerator,
    ev: &mut Events,
    r: &NewRun,
    now: i64,
) -> Result<Enqueued> {
    let checked = check_run(r, now, DEFAULT_QUEUE)?;
    if let Some(existing) = existing_run(c, r)? {
        return Ok(existing);
    }
    insert_run(c, ids, ev, &checked, now, None)
}

/// A new run whose fields passed validation, with defaults filled in.
pub(crate) struct CheckedRun<'a> {
    run: &'a NewRun,
    queue: &'a str,
    run_at: i64,
    priority: i64,
    max_attempts: i64,
    backoff: Backoff,
}

impl CheckedRun<'_> {
    /// Queue name.
    pub(crate) fn queue(&self) -> &str {
        self.queue
    }
    /// Due time, ms.
    pub(crate) fn run_at(&self) -> i64 {
        self.run_at
    }
    /// Priority.
    pub(crate) fn priority(&self) -> i64 {
        self.priority
    }
    /// Attempt limit.
    pub(crate) fn max_attempts(&self) -> i64 {
        self.max_attempts
    }
    /// Backoff.
    pub(crate) fn backoff(&self) -> Backoff {
        self.backoff
    }
}

/// Validates a new run without touching the database; `default_queue` is
/// used when the run names none.
pub(crate) fn check_run<'a>(
    r: &'a NewRun,
    now: i64,
    default_queue: &'a str,
) -> Result<CheckedRun<'a>> {
    check_now(now)?;
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
pub(crate) fn existing_run(c: &Connection, r: &NewRun) -> Result<Option<Enqueued>> {
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

/// Inserts a checked run (and its label rows); `batch_id` for a run of `enqueueBatch`.
pub(crate) fn insert_run(
    c: &Connection,
    ids: &mut RunIdGenerator,
    ev: &mut Events,
    checked: &CheckedRun<'_>,
    now: i64,
    batch_id: Option<&str>,
) -> Result<Enqueued> {
    let r = checked.run;
    let id = ids.next_id(now);
    let empty = BTreeMap::new();
    let labels = r.labels.as_ref().unwrap_or(&empty);
    let labels_json = serde_json::to_string(labels).expect("labels serialize");
    let backoff_json = serde_json::to_string(&checked.backoff).expect("backoff serializes");
    c.prepare_cached(
        "INSERT INTO runs (id, queue, job, status, priority, run_at, created_at, updated_at, input, labels,
                           idempotency_key, concurrency_key, max_attempts, backoff, batch_id)
         VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        id, checked.queue, r.job, checked.priority, checked.run_at, now, r.input.get(), labels_json,
        r.idempotency_key, r.concurrency_key, checked.max_attempts, backoff_json, batch_id
    ])?;
    if !labels.is_empty() {
        let mut st =
            c.prepare_cached("INSERT INTO run_labels (key, value, run_id) VALUES (?2, ?3, ?1)")?;
        for (k, v) in labels {
            st.execute(params![id, k, v])?;
        }
    }
    ev.push(&id, now, EventKind::Enqueued, 0, None);
    Ok(Enqueued {
        id,
        created: true,
        status: Status::Pending,
    })
}

/// The claim's query for one priority level (`?1` queue, `?2` priority,
/// `?3` now, `?4` JSON array of job names): due runs in runAt, id order
/// whose concurrency key has no running handler. Public so a test can read
/// its `EXPLAIN QUERY PLAN`.
pub const CLAIM_AT_LEVEL_SQL: &str = "SELECT id, concurrency_key FROM runs INDEXED BY runs_claim
     WHERE queue = ?1 AND status = 'pending' AND priority = ?2 AND run_at <= ?3
       AND job IN (SELECT value FROM json_each(?4))
       AND (concurrency_key IS NULL OR NOT EXISTS (
            SELECT 1 FROM runs AS b WHERE b.concurrency_key = runs.concurrency_key AND b.lease_expires_at IS NOT NULL))
     ORDER BY run_at, id";

/// Result of `claim`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Claimed {
    /// Runs now leased to the caller.
    pub runs: Vec<ClaimedRun>,
    /// Runs whose lease had expired, recovered by this claim, with their new
    /// status (`pending` to retry, `failed` when attempts are used up).
    pub expired: Vec<Expired>,
}

/// A run recovered from an expired lease.
#[derive(Debug, Serialize)]
pub struct Expired {
    /// Run id.
    pub id: String,
    /// New status.
    pub status: Status,
}

fn claim(
    c: &Connection,
    ev: &mut Events,
    o: &ClaimOp,
    finished: &mut Vec<FinishedBatch>,
) -> Result<Claimed> {
    check_now(o.now)?;
    let queue = o.queue.as_deref().unwrap_or(DEFAULT_QUEUE);
    validate::name("queue name", queue)?;
    validate::duration("leaseMs", o.lease_ms)?;
    if !(1..=MAX_CLAIM).contains(&o.limit) {
        return Err(Error::invalid(format!(
            "claim limit must be between 1 and {MAX_CLAIM}, got {}",
            o.limit
        )));
    }
    validate::name("worker id", &o.worker_id)?;
    for j in &o.jobs {
        validate::name("job name", j)?;
    }

    // 1. Expired leases (of every queue: a concurrency key is global) go
    //    back to the queue, or fail when attempts are used up; a cancelled
    //    run whose holder never reported back releases its concurrency key.
    //    Bumping the fencing token fences out the old holder.
    let lease_error = serde_json::json!({
        "name": "LeaseExpired",
        "message": "the worker's lease expired without a heartbeat (did the process crash or block its event loop?)"
    })
    .to_string();
    let expired_rows = c
        .prepare_cached(
            "UPDATE runs INDEXED BY runs_lease SET
                status = CASE WHEN status <> 'leased' THEN status
                              WHEN attempt >= max_attempts THEN 'failed' ELSE 'pending' END,
                finished_at = CASE WHEN status = 'leased' AND attempt >= max_attempts THEN ?1 ELSE finished_at END,
                error = CASE WHEN status = 'leased' THEN ?2 ELSE error END,
                run_at = CASE WHEN status = 'leased' THEN ?1 ELSE run_at END,
                updated_at = ?1, lease_token = lease_token + 1, lease_owner = NULL, lease_expires_at = NULL
             WHERE lease_expires_at <= ?1
             RETURNING id, status, batch_id, attempt",
        )?
        .query_map(params![o.now, lease_error], |r| {
            let s: String = r.get(1)?;
            let e = Expired { id: r.get(0)?, status: Status::parse(&s).unwrap_or(Status::Pending) };
            Ok((e, r.get::<_, Option<String>>(2)?, r.get::<_, i64>(3)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    // A cancelled run only released its lease: its status did not change.
    let mut expired = Vec::with_capacity(expired_rows.len());
    for (e, batch_id, attempt) in expired_rows {
        if e.status == Status::Cancelled {
            continue;
        }
        let (kind, data) = if e.status == Status::Failed {
            (
                EventKind::Failed,
                serde_json::json!({ "error": "lease expired" }),
            )
        } else {
            (
                EventKind::Retried,
                serde_json::json!({ "error": "lease expired", "runAt": o.now }),
            )
        };
        ev.push(&e.id, o.now, kind, attempt, Some(data));
        if let Some(b) = batch_id {
            batch::run_moved(c, &b, Status::Leased, Some(e.status), o.now, finished)?;
        }
        expired.push(e);
    }

    // 2. Due runs in priority, runAt, creation order, skipping concurrency
    //    keys whose handler is running. `runs_claim` is ordered by priority
    //    first, so `run_at <= now` can only bound the scan within one
    //    priority level: walk the levels in use (a skip-scan, one seek each)
    //    so delayed runs are never scanned, however many there are.
    let jobs_json = serde_json::to_string(&o.jobs).expect("jobs serialize");
    let mut next_level = c.prepare_cached(
        "SELECT priority FROM runs INDEXED BY runs_claim
         WHERE queue = ?1 AND status = 'pending' AND priority < ?2
         ORDER BY priority DESC LIMIT 1",
    )?;
    let mut at_level = c.prepare_cached(CLAIM_AT_LEVEL_SQL)?;
    let limit = o.limit as usize;
    let mut candidates: Vec<String> = Vec::with_capacity(limit);
    let mut seen_keys = HashSet::new();
    let mut below = i64::MAX;
    while candidates.len() < limit {
        let Some(level) = next_level
            .query_row(params![queue, below], |r| r.get::<_, i64>(0))
            .optional()?
        else {
            break;
        };
        let mut rows = at_level.query(params![queue, level, o.now, jobs_json])?;
        while let Some(r) = rows.next()? {
            let key: Option<String> = r.get(1)?;
            // Two due runs of one key: only the first may start now.
            if key.is_none_or(|k| seen_keys.insert(k)) {
                candidates.push(r.get(0)?);
                if candidates.len() == limit {
                    break;
                }
            }
        }
        below = level;
    }

    let expires = o.now.saturating_add(o.lease_ms);
    let mut runs = Vec::with_capacity(candidates.len());
    let mut lease = c.prepare_cached(
        "UPDATE runs SET status = 'leased', attempt = attempt + 1, lease_token = lease_token + 1,
            lease_owner = ?2, lease_expires_at = ?3, started_at = coalesce(started_at, ?4), updated_at = ?4
         WHERE id = ?1 AND status = 'pending'
         RETURNING job, queue, input, attempt, max_attempts, lease_token, labels, batch_id",
    )?;
    let mut steps_st = c.prepare_cached("SELECT name, output FROM steps WHERE run_id = ?1")?;
    for id in candidates {
        let row = lease.query_row(params![id, o.worker_id, expires, o.now], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, Option<String>>(7)?,
            ))
        })?;
        if let Some(b) = &row.7 {
            batch::run_moved(c, b, Status::Pending, Some(Status::Leased), o.now, finished)?;
        }
        ev.push(&id, o.now, EventKind::Leased, row.3, None);
        let mut steps = BTreeMap::new();
        if row.3 > 1 {
            // Steps are stored only under a lease, so a first attempt has none.
            let mut rows = steps_st.query(params![id])?;
            while let Some(r) = rows.next()? {
                steps.insert(r.get::<_, String>(0)?, raw_text(r.get::<_, String>(1)?)?);
            }
        }
        runs.push(ClaimedRun {
            id,
            job: row.0,
            queue: row.1,
            input: raw_text(row.2)?,
            attempt: row.3,
            max_attempts: row.4,
            token: row.5,
            lease_expires_at: expires,
            labels: raw_text(row.6)?,
            steps,
        });
    }
    Ok(Claimed { runs, expired })
}

/// Stored JSON text back as a raw value.
pub(crate) fn raw_text(s: String) -> Result<Box<RawValue>> {
    RawValue::from_string(s).map_err(|e| {
        Error::Corrupt(format!(
            "a stored JSON value does not parse ({e}); was the file edited by hand?"
        ))
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Heartbeat {
    lease_expires_at: Option<i64>,
    cancel_requested: bool,
}

fn heartbeat(c: &Connection, o: &LeaseOp) -> Result<Heartbeat> {
    check_now(o.now)?;
    validate::duration("leaseMs", o.lease_ms)?;
    let expires = o.now.saturating_add(o.lease_ms);
    let n = c
        .prepare_cached("UPDATE runs SET lease_expires_at = ?3, updated_at = ?4 WHERE id = ?1 AND lease_token = ?2 AND status = 'leased'")?
        .execute(params![o.id, o.token, expires, o.now])?;
    if n == 1 {
        return Ok(Heartbeat {
            lease_expires_at: Some(expires),
            cancel_requested: false,
        });
    }
    // Cancelled while this holder had it: tell the holder to stop.
    let cancelled: Option<i64> = c
        .prepare_cached(
            "SELECT 1 FROM runs WHERE id = ?1 AND lease_token = ?2 AND status = 'cancelled'",
        )?
        .query_row(params![o.id, o.token], |r| r.get(0))
        .optional()?;
    if cancelled.is_some() {
        return Ok(Heartbeat {
            lease_expires_at: None,
            cancel_requested: true,
        });
    }
    Err(lease_lost(c, &o.id, o.token))
}

/// Checks that the caller holds the lease; returns the attempt number.
fn hold(c: &Connection, id: &str, token: i64) -> Result<i64> {
    let row: Option<i64> = c
        .prepare_cached(
            "SELECT attempt FROM runs WHERE id = ?1 AND lease_token = ?2 AND status = 'leased'",
        )?
        .query_row(params![id, token], |r| r.get(0))
        .optional()?;
    row.ok_or_else(|| lease_lost(c, id, token))
}

/// The `DURQ_LEASE_LOST` error for a holder of `token` on run `id`, saying why.
fn lease_lost(c: &Connection, id: &str, token: i64) -> Error {
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
fn handler_running(c: &Connection, id: &str) -> Result<bool> {
    Ok(
        c.prepare_cached("SELECT lease_expires_at IS NOT NULL FROM runs WHERE id = ?1")?
            .query_row(params![id], |r| r.get::<_, bool>(0))
            .optional()?
            .unwrap_or(false),
    )
}

/// The run's status and batch.
fn status_of(c: &Connection, id: &str) -> Result<(Status, Option<String>)> {
    let s: Option<(String, Option<String>)> = c
        .prepare_cached("SELECT status, batch_id FROM runs WHERE id = ?1")?
        .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match s {
        Some((s, b)) => Ok((Status::parse(&s).unwrap_or(Status::Pending), b)),
        None => Err(Error::NotFound(format!("no run with id {id:?}"))),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Failed {
    status: Status,
    attempt: i64,
    run_at: Option<i64>,
}

fn fail(
    c: &Connection,
    ev: &mut Events,
    o: &FailOp,
    finished: &mut Vec<FinishedBatch>,
) -> Result<Failed> {
    check_now(o.now)?;
    let row: Option<(i64, i64, String, Option<String>)> = c
        .prepare_cached("SELECT attempt, max_attempts, backoff, batch_id FROM runs WHERE id = ?1 AND lease_token = ?2 AND status = 'leased'")?
        .query_row(params![o.id, o.token], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let Some((attempt, max_attempts, backoff, batch_id)) = row else {
        if release_cancelled(c, &o.id, o.token, o.now)? {
            return Ok(Failed {
                status: Status::Cancelled,
                attempt: 0,
                run_at: None,
            });
        }
        return Err(lease_lost(c, &o.id, o.token));
    };
    let error = serde_json::to_string(&o.error).expect("error serializes");
    if o.retryable.unwrap_or(true) && attempt < max_attempts {
        let backoff: Backoff = serde_json::from_str(&backoff).unwrap_or_default();
        let run_at = o
            .now
            .saturating_add(backoff.delay_ms(attempt, o.random))
            .min(validate::MAX_TIME_MS);
        c.prepare_cached(
            "UPDATE runs SET status = 'pending', run_at = ?2, error = ?3, updated_at = ?4,
                lease_owner = NULL, lease_expires_at = NULL WHERE id = ?1",
        )?
        .execute(params![o.id, run_at, error, o.now])?;
        let data = serde_json::json!({ "error": o.error.message, "runAt": run_at });
        ev.push(&o.id, o.now, EventKind::Retried, attempt, Some(data));
        if let Some(b) = &batch_id {
            batch::run_moved(c, b, Status::Leased, Some(Status::Pending), o.now, finished)?;
        }
        Ok(Failed {
            status: Status::Pending,
            attempt,
            run_at: Some(run_at),
        })
    } else {
        c.prepare_cached(
            "UPDATE runs SET status = 'failed', error = ?2, finished_at = ?3, updated_at = ?3,
                lease_owner = NULL, lease_expires_at = NULL WHERE id = ?1",
        )?
        .execute(params![o.id, error, o.now])?;
        let data = serde_json::json!({ "error": o.error.message });
        ev.push(&o.id, o.now, EventKind::Failed, attempt, Some(data));
        if let Some(b) = &batch_id {
            batch::run_moved(c, b, Status::Leased, Some(Status::Failed), o.now, finished)?;
        }
        Ok(Failed {
            status: Status::Failed,
            attempt,
            run_at: None,
        })
    }
}

#[derive(Serialize)]
struct Cancelled {
    status: Status,
    previous: Status,
}

fn cancel(
    c: &Connection,
    ev: &mut Events,
    o: &IdOp,
    finished: &mut Vec<FinishedBatch>,
) -> Result<Cancelled> {
    check_now(o.now)?;
    let (previous, batch_id) = status_of(c, &o.id)?;
    if previous.is_terminal() {
        return Err(Error::InvalidState(format!(
            "run {} is already {}",
            o.id,
            previous.as_str()
        )));
    }
    mark_cancelled(c, ev, &o.id, previous, o.now)?;
    if let Some(b) = &batch_id {
        batch::run_moved(c, b, previous, Some(Status::Cancelled), o.now, finished)?;
    }
    Ok(Cancelled {
        status: Status::Cancelled,
        previous,
    })
}

/// Sets a live run's status to `cancelled` (the caller moves its batch's
/// counts).
pub(crate) fn mark_cancelled(
    c: &Connection,
    ev: &mut Events,
    id: &str,
    previous: Status,
    now: i64,
) -> Result<()> {
    // A leased run keeps its fencing token, lease owner and expiry: its
    // handler may still be running, so it keeps holding its concurrency key
    // until the holder reports back (its next heartbeat learns of the
    // cancellation; its `complete`/`fail` then releases the key) or the
    // lease runs out. Its other writes fail with DURQ_LEASE_LOST.
    let attempt: i64 = c
        .prepare_cached(
            "UPDATE runs SET status = 'cancelled', finished_at = ?2, updated_at = ?2 WHERE id = ?1
             RETURNING attempt",
        )?
        .query_row(params![id, now], |r| r.get(0))?;
    let data = serde_json::json!({ "previous": previous.as_str() });
    ev.push(id, now, EventKind::Cancelled, attempt, Some(data));
    Ok(())
}

/// The holder of a run cancelled under it reports back (`complete` or
/// `fail`): release the run's lease and concurrency key. Returns whether
/// the caller was that holder.
fn release_cancelled(c: &Connection, id: &str, token: i64, now: i64) -> Result<bool> {
    let n = c
        .prepare_cached(
            "UPDATE runs SET lease_owner = NULL, lease_expires_at = NULL, updated_at = ?3
             WHERE id = ?1 AND lease_token = ?2 AND status = 'cancelled' AND lease_expires_at IS NOT NULL",
        )?
        .execute(params![id, token, now])?;
    Ok(n == 1)
}

fn delete_run(c: &Connection, ev: &mut Events, id: &str) -> Result<()> {
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
    ev.forget(id);
    c.prepare_cached("DELETE FROM runs WHERE id = ?1")?
        .execute(params![id])?;
    Ok(())
}

#[derive(Serialize)]
struct Retriggered {
    id: String,
}

fn retrigger(
    c: &Connection,
    ids: &mut RunIdGenerator,
    ev: &mut Events,
    o: &IdOp,
) -> Result<Retriggered> {
    check_now(o.now)?;
    let (status, _) = status_of(c, &o.id)?;
    if !status.is_terminal() {
        return Err(Error::InvalidState(format!(
            "run {} is {}; only a finished run can be retriggered",
            o.id,
            status.as_str()
        )));
    }
    let id = ids.next_id(o.now);
    c.prepare_cached(
        "INSERT INTO runs (id, queue, job, status, priority, run_at, created_at, updated_at, input, labels,
                           concurrency_key, max_attempts, backoff, retried_from)
         SELECT ?2, queue, job, 'pending', priority, ?3, ?3, ?3, input, labels,
                concurrency_key, max_attempts, backoff, id
         FROM runs WHERE id = ?1",
    )?
    .execute(params![o.id, id, o.now])?;
    c.prepare_cached("INSERT INTO run_labels (key, value, run_id) SELECT j.key, j.value, ?2 FROM runs AS r, json_each(r.labels) AS j WHERE r.id = ?1")?
        .execute(params![o.id, id])?;
    let data = serde_json::json!({ "retriedFrom": o.id });
    ev.push(&id, o.now, EventKind::Enqueued, 0, Some(data));
    Ok(Retriggered { id })
}

#[derive(Serialize)]
struct Purged {
    deleted: usize,
}

/// Checks a purge's times; returns its limit (default: no limit).
fn purge_limit(o: &PurgeOp) -> Result<i64> {
    check_now(o.now)?;
    validate::time("olderThan", o.older_than)?;
    let limit = o.limit.unwrap_or(i64::MAX);
    if limit < 1 {
        return Err(Error::invalid(format!(
            "purge limit must be at least 1, got {limit}"
        )));
    }
    Ok(limit)
}

fn purge(c: &Connection, ev: &mut Events, o: &PurgeOp) -> Result<Purged> {
    let limit = purge_limit(o)?;
    let ids: Vec<String> = c
        .prepare_cached(
            "SELECT id FROM runs INDEXED BY runs_finished
             WHERE finished_at IS NOT NULL AND finished_at < ?1
               AND status IN ('completed', 'failed', 'cancelled') AND lease_expires_at IS NULL
             ORDER BY finished_at LIMIT ?2",
        )?
        .query_map(params![o.older_than, limit], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in &ids {
        delete_run(c, ev, id)?;
    }
    Ok(Purged { deleted: ids.len() })
}

fn purge_batches(c: &Connection, o: &PurgeOp) -> Result<Purged> {
    let limit = purge_limit(o)?;
    Ok(Purged {
        deleted: batch::purge(c, o.older_than, limit)?,
    })
}
