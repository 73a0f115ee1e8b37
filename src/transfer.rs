//! `importRuns`: bulk insert of runs that keep their ids, states and
//! timestamps (a migration from another queue, a restore from
//! `exportRuns`), with chunked multi-row inserts ([`crate::rows`]).

use crate::error::{Error, Result};
use crate::history::EventKind;
use crate::ids::RunIdGenerator;
use crate::model::{Backoff, NewRun, RunError, Status};
use crate::rows;
use crate::run::{check_run, DEFAULT_QUEUE};
use crate::validate;
use crate::write::Write;
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use ts_rs::TS;

/// Most runs in one `importRuns` operation (the façade sends chunks).
pub const MAX_IMPORT_CHUNK: usize = 10_000;

/// What to do with a run whose id (or job and idempotency key) is stored
/// already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum OnConflict {
    /// Fail the chunk with `DURQ_INVALID_INPUT` naming the run. The default.
    #[default]
    Error,
    /// Keep the stored run and count the imported one as skipped (resuming
    /// an import that was interrupted).
    Skip,
}

/// One run to import: the shape `getRun` and `exportRuns` return. Only
/// `job` and `input` are required.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportRun {
    /// A UUIDv7 (so ids sort by creation time); default: a new one made
    /// from `createdAt`.
    #[serde(default)]
    pub id: Option<String>,
    /// Job name.
    pub job: String,
    /// Input JSON.
    pub input: Box<RawValue>,
    /// Queue (default `"default"`).
    #[serde(default)]
    pub queue: Option<String>,
    /// Status (default `pending`).
    #[serde(default)]
    pub status: Option<Status>,
    /// Priority (default 0).
    #[serde(default)]
    pub priority: Option<i64>,
    /// Due time, ms (default `createdAt`).
    #[serde(default)]
    pub run_at: Option<i64>,
    /// ms (default: the import's `now`).
    #[serde(default)]
    pub created_at: Option<i64>,
    /// ms (default `createdAt`).
    #[serde(default)]
    pub updated_at: Option<i64>,
    /// ms.
    #[serde(default)]
    pub started_at: Option<i64>,
    /// ms; a terminal run without one gets `updatedAt`; a live run must
    /// have none.
    #[serde(default)]
    pub finished_at: Option<i64>,
    /// Output JSON.
    #[serde(default)]
    pub output: Option<Box<RawValue>>,
    /// Last error, `{name, message, stack}`.
    #[serde(default)]
    pub error: Option<RunError>,
    /// Labels.
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    /// Idempotency key.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// Concurrency key.
    #[serde(default)]
    pub concurrency_key: Option<String>,
    /// Attempts started (default 0): below `maxAttempts` for a pending run,
    /// 1 ..= `maxAttempts` for a leased one, 0 ..= `maxAttempts` otherwise.
    #[serde(default)]
    pub attempt: Option<i64>,
    /// Attempt limit (default 3).
    #[serde(default)]
    pub max_attempts: Option<i64>,
    /// Backoff.
    #[serde(default)]
    pub backoff: Option<Backoff>,
    /// Progress JSON.
    #[serde(default)]
    pub progress: Option<Box<RawValue>>,
    /// Lease expiry, ms, of a `leased` run (default: the import's `now`, so
    /// the next claim recovers it: its holder is not in this database) or
    /// of a `cancelled` one whose handler had not stopped; ignored for other
    /// statuses. Claims recover it once it has passed.
    #[serde(default)]
    pub lease_expires_at: Option<i64>,
    /// Holder of a `leased` run's lease (default `"imported"`).
    #[serde(default)]
    pub lease_owner: Option<String>,
    /// Run it was retriggered from.
    #[serde(default)]
    pub retried_from: Option<String>,
    /// Batch id (kept as is; batches themselves are not imported).
    #[serde(default)]
    pub batch_id: Option<String>,
}

/// `importRuns`: one chunk of runs, inserted in the operation's savepoint.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct ImportOp {
    /// The runs (1 ..= [`MAX_IMPORT_CHUNK`]), each an [`ImportRun`] object,
    /// parsed one by one so an error names the run.
    #[ts(type = "unknown[]")]
    pub runs: Vec<Box<RawValue>>,
    /// Conflict policy (default `error`).
    #[serde(default)]
    pub on_conflict: OnConflict,
    /// Index in the whole import of `runs[0]`, for error messages.
    #[serde(default)]
    pub offset: i64,
}

/// Result of `importRuns`.
#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Imported {
    /// Runs stored.
    pub imported: usize,
    /// Runs skipped because they were stored already (`onConflict: skip`).
    pub skipped: usize,
}

const RUN_COLS: &[&str] = &[
    "id",
    "queue",
    "job",
    "status",
    "priority",
    "run_at",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "input",
    "output",
    "error",
    "labels",
    "idempotency_key",
    "concurrency_key",
    "attempt",
    "max_attempts",
    "backoff",
    "lease_owner",
    "lease_expires_at",
    "progress",
    "retried_from",
    "batch_id",
];

fn opt_text(v: Option<String>) -> Value {
    v.map_or(Value::Null, Value::Text)
}

fn opt_int(v: Option<i64>) -> Value {
    v.map_or(Value::Null, Value::Integer)
}

/// Checks one run and returns its row (in [`RUN_COLS`] order), its labels
/// and its attempt.
fn check_import(
    ids: &mut RunIdGenerator,
    r: &ImportRun,
    now: i64,
) -> Result<(Vec<Value>, BTreeMap<String, String>, i64)> {
    let created_at = r.created_at.unwrap_or(now);
    validate::time("createdAt", created_at)?;
    let updated_at = r.updated_at.unwrap_or(created_at);
    validate::time("updatedAt", updated_at)?;
    for (what, t) in [
        ("startedAt", r.started_at),
        ("finishedAt", r.finished_at),
        ("leaseExpiresAt", r.lease_expires_at),
    ] {
        if let Some(t) = t {
            validate::time(what, t)?;
        }
    }
    let new = NewRun {
        job: r.job.clone(),
        input: r.input.clone(),
        queue: r.queue.clone(),
        priority: r.priority,
        run_at: Some(r.run_at.unwrap_or(created_at)),
        labels: r.labels.clone(),
        idempotency_key: r.idempotency_key.clone(),
        concurrency_key: r.concurrency_key.clone(),
        max_attempts: r.max_attempts,
        backoff: r.backoff,
    };
    let checked = check_run(&new, created_at, DEFAULT_QUEUE)?;
    let id = match &r.id {
        Some(id) => {
            // A UUIDv7 (version digit 7 at index 14): ids sort by creation
            // time, which claim order, `listRuns` and the id generator's
            // restart rely on.
            let ok = id.len() == 36
                && id.bytes().enumerate().all(|(i, b)| match i {
                    8 | 13 | 18 | 23 => b == b'-',
                    14 => b == b'7',
                    _ => b.is_ascii_hexdigit(),
                });
            if !ok {
                return Err(Error::invalid(format!(
                    "id must be a UUIDv7 (8-4-4-4-12 hex digits, version 7) so that ids sort by creation time, got {id:?}; leave it out to get one made from createdAt"
                )));
            }
            id.to_ascii_lowercase()
        }
        None => ids.id_at(created_at),
    };
    let status = r.status.unwrap_or(Status::Pending);
    let max_attempts = checked.max_attempts();
    let attempt = r.attempt.unwrap_or(0);
    // What the queue itself can produce: a pending run has an attempt
    // left, a leased one has started one.
    let (lo, hi) = match status {
        Status::Pending => (0, max_attempts - 1),
        Status::Leased => (1, max_attempts),
        _ => (0, max_attempts),
    };
    if !(lo..=hi).contains(&attempt) {
        return Err(Error::invalid(format!(
            "attempt of a {} run must be between {lo} and {hi} (maxAttempts {max_attempts}), got {attempt}",
            status.as_str()
        )));
    }
    let finished_at = if status.is_terminal() {
        Some(r.finished_at.unwrap_or(updated_at))
    } else if r.finished_at.is_some() {
        return Err(Error::invalid(format!(
            "a {} run cannot have finishedAt",
            status.as_str()
        )));
    } else {
        None
    };
    let (lease_owner, lease_expires_at) = match status {
        Status::Leased => (
            Some(r.lease_owner.clone().unwrap_or_else(|| "imported".into())),
            Some(r.lease_expires_at.unwrap_or(now)),
        ),
        Status::Cancelled if r.lease_expires_at.is_some() => {
            (r.lease_owner.clone(), r.lease_expires_at)
        }
        _ => (None, None),
    };
    if let Some(owner) = &lease_owner {
        validate::name("leaseOwner", owner)?;
    }
    if let Some(b) = &r.batch_id {
        validate::name("batchId", b)?;
    }
    if let Some(f) = &r.retried_from {
        validate::name("retriedFrom", f)?;
    }
    let labels = new.labels.clone().unwrap_or_default();
    let row = vec![
        Value::Text(id),
        Value::Text(checked.queue().to_owned()),
        Value::Text(new.job.clone()),
        Value::Text(status.as_str().into()),
        Value::Integer(checked.priority()),
        Value::Integer(checked.run_at()),
        Value::Integer(created_at),
        Value::Integer(updated_at),
        opt_int(r.started_at),
        opt_int(finished_at),
        Value::Text(new.input.get().to_owned()),
        opt_text(r.output.as_ref().map(|o| o.get().to_owned())),
        opt_text(
            r.error
                .as_ref()
                .map(|e| serde_json::to_string(e).expect("error serializes")),
        ),
        Value::Text(serde_json::to_string(&labels).expect("labels serialize")),
        opt_text(new.idempotency_key.clone()),
        opt_text(new.concurrency_key.clone()),
        Value::Integer(attempt),
        Value::Integer(max_attempts),
        Value::Text(serde_json::to_string(&checked.backoff()).expect("backoff serializes")),
        opt_text(lease_owner),
        opt_int(lease_expires_at),
        opt_text(r.progress.as_ref().map(|p| p.get().to_owned())),
        opt_text(r.retried_from.clone()),
        opt_text(r.batch_id.clone()),
    ];
    Ok((row, labels, attempt))
}

/// Applies one `importRuns` chunk: validates every run first (a bad one
/// fails the chunk, naming its index, before anything is written), then
/// inserts the runs, their label rows and one `imported` event each with
/// multi-row inserts.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad run, an empty or oversized chunk, or
/// (with `onConflict: error`) a run whose id or job and idempotency key is
/// stored already; an SQLite error if a write fails.
pub fn import_runs(w: &mut Write<'_>, o: &ImportOp) -> Result<Imported> {
    let c = w.conn();
    let now = w.now();
    if o.runs.is_empty() || o.runs.len() > MAX_IMPORT_CHUNK {
        return Err(Error::invalid(format!(
            "an importRuns chunk holds 1 to {MAX_IMPORT_CHUNK} runs, got {}",
            o.runs.len()
        )));
    }
    let total = o.runs.len();
    let mut rows = Vec::with_capacity(total);
    let mut extra = Vec::with_capacity(total);
    for (i, r) in o.runs.iter().enumerate() {
        let parsed = serde_json::from_str::<ImportRun>(r.get()).map_err(Error::from);
        let (row, labels, attempt) = parsed
            .and_then(|r| check_import(w.ids(), &r, now))
            .map_err(|e| match e {
                Error::InvalidInput(m) => {
                    Error::InvalidInput(format!("run {} of the import: {m}", o.offset + i as i64))
                }
                other => other,
            })?;
        extra.push((labels, attempt));
        rows.push(row);
    }
    // Which runs are stored already (or repeat an earlier run of the
    // chunk): an error, or skipped. Probed before anything is written, so
    // the insert itself is a plain INSERT: any other uniqueness clash (a
    // leased run's concurrency key) fails loudly instead of being skipped.
    let keep = check_conflicts(c, &rows, o.offset, o.on_conflict)?;
    let rows: Vec<Vec<Value>> = rows
        .into_iter()
        .zip(&keep)
        .filter_map(|(r, k)| k.then_some(r))
        .collect();
    let extra: Vec<_> = extra
        .into_iter()
        .zip(&keep)
        .filter_map(|(e, k)| k.then_some(e))
        .collect();
    match rows::insert_rows(c, "", "runs", RUN_COLS, &rows) {
        Ok(_) => {}
        Err(Error::Sqlite(rusqlite::Error::SqliteFailure(f, _)))
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            return Err(Error::invalid(
                "the import breaks a uniqueness rule: two leased runs share a concurrency key, or a leased run's concurrency key is held by a stored run",
            ));
        }
        Err(e) => return Err(e),
    }
    let mut label_rows = Vec::new();
    for (row, (labels, attempt)) in rows.iter().zip(&extra) {
        let Value::Text(id) = &row[0] else {
            unreachable!("ids are text")
        };
        w.ids().resume_after(id);
        for (k, v) in labels {
            label_rows.push(vec![
                Value::Text(k.clone()),
                Value::Text(v.clone()),
                Value::Text(id.clone()),
            ]);
        }
        let Value::Text(status) = &row[3] else {
            unreachable!("status is text")
        };
        w.event(
            id,
            EventKind::Imported,
            *attempt,
            Some(serde_json::json!({ "status": status })),
        );
    }
    rows::insert_rows(
        c,
        "",
        "run_labels",
        &["key", "value", "run_id"],
        &label_rows,
    )?;
    Ok(Imported {
        imported: rows.len(),
        skipped: total - rows.len(),
    })
}

/// Before anything is written: which runs of the chunk to insert. A run
/// whose id, or job and idempotency key, is stored already or repeats an
/// earlier run of the chunk fails the chunk naming it (`onConflict:
/// error`), or is left out (`skip`). One primary-key or index probe each.
fn check_conflicts(
    c: &Connection,
    rows: &[Vec<Value>],
    offset: i64,
    policy: OnConflict,
) -> Result<Vec<bool>> {
    let mut by_id = c.prepare_cached("SELECT 1 FROM runs WHERE id = ?1")?;
    let mut by_key =
        c.prepare_cached("SELECT id FROM runs WHERE job = ?1 AND idempotency_key = ?2")?;
    let mut ids = std::collections::HashSet::new();
    let mut keys = std::collections::HashSet::new();
    let text = |v: &Value| match v {
        Value::Text(t) => t.clone(),
        _ => String::new(),
    };
    let mut keep = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let at = offset + i as i64;
        let mut clash = if !ids.insert(text(&row[0])) {
            Some("repeats the id of an earlier run of the import".to_string())
        } else if by_id
            .query_row(params![row[0]], |_| Ok(()))
            .optional()?
            .is_some()
        {
            Some("has an id that is stored already".to_string())
        } else {
            None
        };
        if clash.is_none() && matches!(row[14], Value::Text(_)) {
            if !keys.insert((text(&row[2]), text(&row[14]))) {
                clash = Some(
                    "repeats the job and idempotency key of an earlier run of the import".into(),
                );
            } else if let Some(other) = by_key
                .query_row(params![row[2], row[14]], |r| r.get::<_, String>(0))
                .optional()?
            {
                clash = Some(format!(
                    "has the job and idempotency key of stored run {other}"
                ));
            }
        }
        match (clash, policy) {
            (None, _) => keep.push(true),
            (Some(_), OnConflict::Skip) => keep.push(false),
            (Some(why), OnConflict::Error) => {
                return Err(Error::invalid(format!(
                    "run {at} of the import {why}; pass onConflict: \"skip\" to keep the stored run"
                )))
            }
        }
    }
    Ok(keep)
}
