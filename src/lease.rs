//! Leases: `claim` (recover expired leases, then lease due runs) and the
//! writes of a lease holder, each fenced by the claim's token — `heartbeat`,
//! `saveStep`, `progress`, `log`, `complete`, `fail`.

use crate::batch;
use crate::error::{Error, Result};
use crate::history::EventKind;
use crate::json::raw_text;
use crate::model::{Backoff, ClaimedRun, RunError, Status};
use crate::queues;
use crate::run::{hold, lease_lost, release_cancelled, DEFAULT_QUEUE};
use crate::validate;
use crate::write::Write;
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashSet};
use ts_rs::TS;

/// Most runs leased by one claim.
pub const MAX_CLAIM: i64 = 1000;

/// `claim`: recover expired leases, then lease up to `limit` due runs.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct ClaimOp {
    /// Queue (default `"default"`).
    #[serde(default)]
    pub queue: Option<String>,
    /// Only runs of these jobs.
    pub jobs: Vec<String>,
    /// Identifies the lease holder (`lease_owner`).
    pub worker_id: String,
    /// Lease duration, ms (1 ..= 2^31 - 1).
    pub lease_ms: i64,
    /// At most this many runs (1 ..= [`MAX_CLAIM`]).
    pub limit: i64,
}

/// `heartbeat`: renew a lease for `leaseMs` from now.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatOp {
    /// Run id.
    pub id: String,
    /// Fencing token from the claim.
    pub token: i64,
    /// New lease duration from now, ms.
    pub lease_ms: i64,
}

/// `saveStep`: store a step's output (the first one stored for a name wins).
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SaveStepOp {
    /// Run id.
    pub id: String,
    /// Fencing token.
    pub token: i64,
    /// Step name (1..=256 bytes, no NUL), unique within the run.
    pub name: String,
    /// Output JSON.
    #[ts(type = "unknown")]
    pub output: Box<RawValue>,
}

/// `progress`: store the run's latest progress value.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ProgressOp {
    /// Run id.
    pub id: String,
    /// Fencing token.
    pub token: i64,
    /// Progress JSON.
    #[ts(type = "unknown")]
    pub progress: Box<RawValue>,
}

/// `log`: append a log line to the run.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct LogOp {
    /// Run id.
    pub id: String,
    /// Fencing token.
    pub token: i64,
    /// Level, e.g. `info` (default).
    #[serde(default)]
    pub level: Option<String>,
    /// Text (no NUL).
    pub message: String,
}

/// `complete`: finish a run successfully.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct CompleteOp {
    /// Run id.
    pub id: String,
    /// Fencing token.
    pub token: i64,
    /// Output JSON.
    #[ts(type = "unknown")]
    pub output: Box<RawValue>,
}

/// `fail`: record a failed attempt; retried with backoff or failed for good.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct FailOp {
    /// Run id.
    pub id: String,
    /// Fencing token.
    pub token: i64,
    /// What went wrong.
    pub error: RunError,
    /// In [0, 1): picks the jitter (default 0).
    #[serde(default)]
    pub random: f64,
    /// `false` fails the run for good whatever attempts are left.
    #[serde(default)]
    pub retryable: Option<bool>,
}

/// Result of `claim`.
#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Claimed {
    /// Runs now leased to the caller.
    pub runs: Vec<ClaimedRun>,
    /// Runs whose lease had expired, recovered by this claim, with their new
    /// status (`pending` to retry, `failed` when attempts are used up).
    pub expired: Vec<Expired>,
}

/// A run recovered from an expired lease.
#[derive(Debug, Serialize, TS)]
pub struct Expired {
    /// Run id.
    pub id: String,
    /// New status.
    pub status: Status,
}

/// Result of `heartbeat`.
#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Renewed {
    /// The lease's new expiry, ms; `null` when the run was cancelled.
    pub lease_expires_at: Option<i64>,
    /// The run was cancelled while this holder had it: stop the handler.
    pub cancel_requested: bool,
}

/// Result of `complete`: `completed`, or `cancelled` when the run was
/// cancelled under its holder (its lease and concurrency key are released).
#[derive(Debug, Serialize, TS)]
pub struct Completed {
    /// The run's status now.
    pub status: Status,
}

/// Result of `fail`.
#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Failed {
    /// `pending` (to be retried at `runAt`), `failed`, or `cancelled` when
    /// the run was cancelled under its holder.
    pub status: Status,
    /// The attempt that failed (0 for a cancelled run).
    pub attempt: i64,
    /// When the retry is due, ms.
    pub run_at: Option<i64>,
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

/// `claim`.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad queue, job, worker id, lease or limit.
pub fn claim(w: &mut Write<'_>, o: &ClaimOp) -> Result<Claimed> {
    let c = w.conn();
    let now = w.now();
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
    // (An `UPDATE … RETURNING` stores its rows in an ephemeral table made
    // for each statement, so the sweep runs only when one seek of
    // `runs_lease` finds an expired lease: most claims find none.)
    let any_expired = c
        .prepare_cached(
            "SELECT 1 FROM runs INDEXED BY runs_lease WHERE lease_expires_at <= ?1 LIMIT 1",
        )?
        .exists(params![now])?;
    let expired_rows = if !any_expired {
        Vec::new()
    } else {
        c.prepare_cached(
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
        .query_map(params![now, lease_error], |r| {
            let s: String = r.get(1)?;
            let e = Expired { id: r.get(0)?, status: Status::parse(&s).unwrap_or(Status::Pending) };
            Ok((e, r.get::<_, Option<String>>(2)?, r.get::<_, i64>(3)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?
    };
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
                serde_json::json!({ "error": "lease expired", "runAt": now }),
            )
        };
        w.event(&e.id, kind, attempt, Some(data));
        if let Some(b) = batch_id {
            batch::run_moved(w, &b, Status::Leased, Some(e.status))?;
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
    // A paused queue leases nothing (`priority < i64::MIN` matches nothing).
    let mut below = if queues::is_paused(c, queue)? {
        i64::MIN
    } else {
        i64::MAX
    };
    while candidates.len() < limit {
        let Some(level) = next_level
            .query_row(params![queue, below], |r| r.get::<_, i64>(0))
            .optional()?
        else {
            break;
        };
        let mut rows = at_level.query(params![queue, level, now, jobs_json])?;
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

    let expires = now.saturating_add(o.lease_ms);
    let mut runs = Vec::with_capacity(candidates.len());
    // Read, then write by rowid: an `UPDATE … RETURNING` would build an
    // ephemeral table per run claimed. The candidates were read in this
    // transaction, so each is still pending.
    let mut read = c.prepare_cached(
        "SELECT rowid, job, queue, input, attempt + 1, max_attempts, lease_token + 1, labels, batch_id
         FROM runs WHERE id = ?1 AND status = 'pending'",
    )?;
    let mut lease = c.prepare_cached(
        "UPDATE runs SET status = 'leased', attempt = ?2, lease_token = ?3,
            lease_owner = ?4, lease_expires_at = ?5, started_at = coalesce(started_at, ?6), updated_at = ?6
         WHERE rowid = ?1",
    )?;
    let mut steps_st = c.prepare_cached("SELECT name, output FROM steps WHERE run_id = ?1")?;
    for id in candidates {
        let (rowid, row) = read.query_row(params![id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                (
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, Option<String>>(8)?,
                ),
            ))
        })?;
        lease.execute(params![rowid, row.3, row.5, o.worker_id, expires, now])?;
        if let Some(b) = &row.7 {
            batch::run_moved(w, b, Status::Pending, Some(Status::Leased))?;
        }
        w.event(&id, EventKind::Leased, row.3, None);
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

/// `heartbeat`.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad lease; [`Error::LeaseLost`] if the
/// caller no longer holds the lease.
pub fn heartbeat(w: &mut Write<'_>, o: &HeartbeatOp) -> Result<Renewed> {
    let c = w.conn();
    let now = w.now();
    validate::duration("leaseMs", o.lease_ms)?;
    let expires = now.saturating_add(o.lease_ms);
    let n = c
        .prepare_cached("UPDATE runs SET lease_expires_at = ?3, updated_at = ?4 WHERE id = ?1 AND lease_token = ?2 AND status = 'leased'")?
        .execute(params![o.id, o.token, expires, now])?;
    if n == 1 {
        return Ok(Renewed {
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
        return Ok(Renewed {
            lease_expires_at: None,
            cancel_requested: true,
        });
    }
    Err(lease_lost(c, &o.id, o.token))
}

/// `saveStep`: stored once per name (a replayed save keeps the first).
///
/// # Errors
/// [`Error::InvalidInput`] for a bad step name; [`Error::LeaseLost`].
pub fn save_step(w: &mut Write<'_>, o: &SaveStepOp) -> Result<()> {
    let c = w.conn();
    validate::name("step name", &o.name)?;
    let attempt = hold(c, &o.id, o.token)?;
    let stored = c
        .prepare_cached(
            "INSERT INTO steps (run_id, name, output, attempt, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (run_id, name) DO NOTHING",
        )?
        .execute(params![o.id, o.name, o.output.get(), attempt, w.now()])?;
    if stored == 1 {
        let data = serde_json::json!({ "name": o.name });
        w.event(&o.id, EventKind::StepCompleted, attempt, Some(data));
    }
    Ok(())
}

/// `progress`.
///
/// # Errors
/// [`Error::LeaseLost`] if the caller no longer holds the lease.
pub fn progress(w: &mut Write<'_>, o: &ProgressOp) -> Result<()> {
    let c = w.conn();
    let n = c
        .prepare_cached("UPDATE runs SET progress = ?3, updated_at = ?4 WHERE id = ?1 AND lease_token = ?2 AND status = 'leased'")?
        .execute(params![o.id, o.token, o.progress.get(), w.now()])?;
    if n == 0 {
        return Err(lease_lost(c, &o.id, o.token));
    }
    Ok(())
}

/// `log`.
///
/// # Errors
/// [`Error::InvalidInput`] for a NUL in the message or a bad level;
/// [`Error::LeaseLost`].
pub fn log(w: &mut Write<'_>, o: &LogOp) -> Result<()> {
    let c = w.conn();
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
    .execute(params![o.id, w.now(), attempt, level, o.message])?;
    Ok(())
}

/// `complete`.
///
/// # Errors
/// [`Error::LeaseLost`] if the caller no longer holds the lease.
pub fn complete(w: &mut Write<'_>, o: &CompleteOp) -> Result<Completed> {
    let c = w.conn();
    let now = w.now();
    // Read, then write by rowid (no ephemeral table, as `RETURNING` needs).
    let held: Option<(i64, Option<String>, i64)> = c
        .prepare_cached(
            "SELECT rowid, batch_id, attempt FROM runs WHERE id = ?1 AND lease_token = ?2 AND status = 'leased'",
        )?
        .query_row(params![o.id, o.token], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((rowid, batch_id, attempt)) = held else {
        if release_cancelled(w, &o.id, o.token)? {
            return Ok(Completed {
                status: Status::Cancelled,
            });
        }
        return Err(lease_lost(c, &o.id, o.token));
    };
    c.prepare_cached(
        "UPDATE runs SET status = 'completed', output = ?2, finished_at = ?3, updated_at = ?3,
            lease_owner = NULL, lease_expires_at = NULL
         WHERE rowid = ?1",
    )?
    .execute(params![rowid, o.output.get(), now])?;
    w.event(&o.id, EventKind::Completed, attempt, None);
    if let Some(b) = batch_id {
        batch::run_moved(w, &b, Status::Leased, Some(Status::Completed))?;
    }
    Ok(Completed {
        status: Status::Completed,
    })
}

/// `fail`: back to `pending` after the backoff while attempts remain (and
/// the error is retryable), else `failed` for good.
///
/// # Errors
/// [`Error::LeaseLost`] if the caller no longer holds the lease.
pub fn fail(w: &mut Write<'_>, o: &FailOp) -> Result<Failed> {
    let c = w.conn();
    let now = w.now();
    let row: Option<(i64, i64, String, Option<String>)> = c
        .prepare_cached("SELECT attempt, max_attempts, backoff, batch_id FROM runs WHERE id = ?1 AND lease_token = ?2 AND status = 'leased'")?
        .query_row(params![o.id, o.token], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let Some((attempt, max_attempts, backoff, batch_id)) = row else {
        if release_cancelled(w, &o.id, o.token)? {
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
        let run_at = now
            .saturating_add(backoff.delay_ms(attempt, o.random))
            .min(validate::MAX_TIME_MS);
        c.prepare_cached(
            "UPDATE runs SET status = 'pending', run_at = ?2, error = ?3, updated_at = ?4,
                lease_owner = NULL, lease_expires_at = NULL WHERE id = ?1",
        )?
        .execute(params![o.id, run_at, error, now])?;
        let data = serde_json::json!({ "error": o.error.message, "runAt": run_at });
        w.event(&o.id, EventKind::Retried, attempt, Some(data));
        if let Some(b) = &batch_id {
            batch::run_moved(w, b, Status::Leased, Some(Status::Pending))?;
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
        .execute(params![o.id, error, now])?;
        let data = serde_json::json!({ "error": o.error.message });
        w.event(&o.id, EventKind::Failed, attempt, Some(data));
        if let Some(b) = &batch_id {
            batch::run_moved(w, b, Status::Leased, Some(Status::Failed))?;
        }
        Ok(Failed {
            status: Status::Failed,
            attempt,
            run_at: None,
        })
    }
}
