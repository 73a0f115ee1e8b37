//! Reads: runs by id, filtered pages of runs, steps, logs, wake-up times.

use crate::error::{Error, Result};
use crate::json::{raw_column as req_raw, raw_column_opt as opt_raw, raw_text};
use crate::model::{Run, RunFilter, RunPage, Status};
use crate::model::{RunOrder, SearchSyntax};
use crate::page::{check_cursor, check_limit, DEFAULT_LIMIT};
use crate::search;
use crate::validate;
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use serde_json::value::RawValue;

/// Index entries [`list_runs`] counts, at most, to choose between a label
/// and a status as the driver of a filter that has both.
pub const DRIVER_PROBE: i64 = 2000;

const RUN_COLS: &str = "r.id, r.job, r.queue, r.status, r.priority, r.run_at, r.created_at, r.updated_at,
    r.started_at, r.finished_at, r.input, r.output, r.error, r.labels, r.idempotency_key,
    r.concurrency_key, r.attempt, r.max_attempts, r.progress, r.lease_expires_at, r.lease_owner, r.retried_from,
    r.batch_id, r.backoff";

fn run_from_row(r: &Row<'_>) -> rusqlite::Result<Run> {
    let status: String = r.get(3)?;
    Ok(Run {
        id: r.get(0)?,
        job: r.get(1)?,
        queue: r.get(2)?,
        status: Status::parse(&status).unwrap_or(Status::Pending),
        priority: r.get(4)?,
        run_at: r.get(5)?,
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
        started_at: r.get(8)?,
        finished_at: r.get(9)?,
        input: req_raw(r.get(10)?)?,
        output: opt_raw(r.get(11)?)?,
        error: opt_raw(r.get(12)?)?,
        labels: req_raw(r.get(13)?)?,
        idempotency_key: r.get(14)?,
        concurrency_key: r.get(15)?,
        attempt: r.get(16)?,
        max_attempts: r.get(17)?,
        progress: opt_raw(r.get(18)?)?,
        lease_expires_at: r.get(19)?,
        lease_owner: r.get(20)?,
        retried_from: r.get(21)?,
        batch_id: r.get(22)?,
        backoff: req_raw(r.get(23)?)?,
    })
}

/// The run with id `id`.
///
/// # Errors
/// [`Error::NotFound`] if there is none; an SQLite error if the read fails
/// or a stored JSON column does not parse.
pub fn get_run(c: &Connection, id: &str) -> Result<Run> {
    c.prepare_cached(&format!("SELECT {RUN_COLS} FROM runs AS r WHERE r.id = ?1"))?
        .query_row(params![id], run_from_row)
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("no run with id {id:?}")))
}

/// How the next page of a `listRuns` query continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorKind {
    /// After the last run's id (`nextCursor` is that id).
    Id,
    /// After the last run's rowid in the search index (`s<rowid>`).
    SearchRowid,
    /// After the first `n` results by relevance (`o<n>`).
    Offset(i64),
}

/// The SQL and parameters `list_runs` runs for `f` (exposed so tests can
/// read its `EXPLAIN QUERY PLAN`), and how its cursor works.
///
/// Plan: with labels, the first label drives the query through the
/// `run_labels (key, value, run_id)` primary key, which yields that label's
/// runs already in id (creation) order, so a page of one label costs
/// O(log n + page) whatever the label's selectivity; every further label
/// is one `EXISTS` probe on the same primary key. Further filters (more
/// labels, status, job, queue, created times) are checked on the rows the
/// driver yields, so a combination that matches few of the first label's
/// runs walks that label's runs until the page fills: put the most
/// selective label first. With `by_status` (labels and a status both
/// given, and the status the smaller set: see [`list_runs`]), `runs_status`
/// drives instead and every label is an `EXISTS` probe. Without labels, a
/// status or job filter walks `runs_status` / `runs_job`, else the primary
/// key. With `batch_id`, `runs_batch` drives (a batch's runs are few) and
/// every label is an `EXISTS` probe.
///
/// With `search`, the FTS5 index drives: newest first, FTS5 yields its
/// matches in descending rowid order without a sort and the cursor is a
/// rowid bound, so a page costs O(page + matches skipped by the other
/// filters); by relevance, FTS5 ranks every match (bm25) and the cursor
/// is an offset. Each match is one rowid lookup in `runs`, each label an
/// `EXISTS` probe.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad limit, label key, cursor or search, or
/// `order: relevance` without `search`.
pub fn list_runs_sql(f: &RunFilter, by_status: bool) -> Result<(String, Vec<Value>, CursorKind)> {
    let limit = check_limit(f.limit)?;
    let mut params: Vec<Value> = Vec::new();
    let mut wh: Vec<String> = Vec::new();
    let p = |v: Value, params: &mut Vec<Value>| {
        params.push(v);
        format!("?{}", params.len())
    };
    let labels: Vec<(&String, &String)> = f.labels.iter().flatten().collect();
    if let Some(l) = &f.labels {
        validate::labels(l)?;
    }
    let order = f.order.unwrap_or_default();
    let syntax = f.search_syntax.unwrap_or_default();
    if f.search.is_none() && (order == RunOrder::Relevance || f.search_syntax.is_some()) {
        return Err(Error::invalid(
            "order \"relevance\" and searchSyntax need a search text",
        ));
    }
    let searching = f.search.is_some();
    let by_status = by_status && f.status.is_some() && f.batch_id.is_none() && !searching;
    let label_driven = !by_status && f.batch_id.is_none() && !searching && !labels.is_empty();
    let mut cursor_kind = CursorKind::Id;
    let mut select_extra = "";
    let (from, order_sql) = if let Some(text) = &f.search {
        let a = p(Value::Text(search::fts_query(text, syntax)?), &mut params);
        wh.push(format!("f.runs_fts MATCH {a}"));
        if let Some(b) = &f.batch_id {
            let a = p(Value::Text(b.clone()), &mut params);
            wh.push(format!("r.batch_id = {a}"));
        }
        select_extra = ", f.rowid";
        let from = "runs_fts AS f CROSS JOIN runs AS r ON r.rowid = f.rowid".to_string();
        match order {
            RunOrder::Newest => {
                cursor_kind = CursorKind::SearchRowid;
                (from, "f.rowid DESC".to_string())
            }
            RunOrder::Relevance => {
                cursor_kind = CursorKind::Offset(0);
                (from, "f.rank".to_string())
            }
        }
    } else if let Some(b) = &f.batch_id {
        // A batch's runs are bounded by the batch: always the best driver.
        let a = p(Value::Text(b.clone()), &mut params);
        wh.push(format!("r.batch_id = {a}"));
        (
            "runs AS r INDEXED BY runs_batch".to_string(),
            "r.id DESC".to_string(),
        )
    } else if let (true, Some((k, v))) = (label_driven, labels.first()) {
        let a = p(Value::Text((*k).clone()), &mut params);
        let b = p(Value::Text((*v).clone()), &mut params);
        wh.push(format!("l0.key = {a} AND l0.value = {b}"));
        (
            "run_labels AS l0 CROSS JOIN runs AS r ON r.id = l0.run_id".to_string(),
            "l0.run_id DESC".to_string(),
        )
    } else if f.status.is_some() {
        (
            "runs AS r INDEXED BY runs_status".to_string(),
            "r.id DESC".to_string(),
        )
    } else if f.job.is_some() {
        (
            "runs AS r INDEXED BY runs_job".to_string(),
            "r.id DESC".to_string(),
        )
    } else {
        ("runs AS r".to_string(), "r.id DESC".to_string())
    };
    for (k, v) in labels.iter().skip(usize::from(label_driven)) {
        let a = p(Value::Text((*k).clone()), &mut params);
        let b = p(Value::Text((*v).clone()), &mut params);
        wh.push(format!("EXISTS (SELECT 1 FROM run_labels AS l WHERE l.key = {a} AND l.value = {b} AND l.run_id = r.id)"));
    }
    if let Some(s) = f.status {
        let a = p(Value::Text(s.as_str().into()), &mut params);
        wh.push(format!("r.status = {a}"));
    }
    if let Some(j) = &f.job {
        let a = p(Value::Text(j.clone()), &mut params);
        wh.push(format!("r.job = {a}"));
    }
    if let Some(q) = &f.queue {
        let a = p(Value::Text(q.clone()), &mut params);
        wh.push(format!("r.queue = {a}"));
    }
    if let Some(t) = f.created_after {
        validate::time("createdAfter", t)?;
        let a = p(Value::Integer(t), &mut params);
        wh.push(format!("r.created_at >= {a}"));
    }
    if let Some(t) = f.created_before {
        validate::time("createdBefore", t)?;
        let a = p(Value::Integer(t), &mut params);
        wh.push(format!("r.created_at < {a}"));
    }
    let mut offset = String::new();
    if let Some(cur) = &f.cursor {
        match cursor_kind {
            CursorKind::Id => {
                check_cursor(cur, "listRuns")?;
                let a = p(Value::Text(cur.clone()), &mut params);
                let col = order_sql.trim_end_matches(" DESC");
                wh.push(format!("{col} < {a}"));
            }
            CursorKind::SearchRowid => {
                let a = p(Value::Integer(search_cursor(cur, 's')?), &mut params);
                wh.push(format!("f.rowid < {a}"));
            }
            CursorKind::Offset(_) => {
                let n = search_cursor(cur, 'o')?;
                cursor_kind = CursorKind::Offset(n);
                let a = p(Value::Integer(n), &mut params);
                offset = format!(" OFFSET {a}");
            }
        }
    }
    let l = p(Value::Integer(limit + 1), &mut params);
    let where_sql = if wh.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", wh.join(" AND "))
    };
    Ok((
        format!("SELECT {RUN_COLS}{select_extra} FROM {from} {where_sql} ORDER BY {order_sql} LIMIT {l}{offset}"),
        params,
        cursor_kind,
    ))
}

/// The number in a search cursor `<tag><n>` (`s123`, `o50`).
fn search_cursor(cur: &str, tag: char) -> Result<i64> {
    cur.strip_prefix(tag)
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n >= 0)
        .ok_or_else(|| {
            Error::invalid("cursor is not one returned by listRuns with the same search and order")
        })
}

/// A page of runs matching `f` (at most `f.limit`, default
/// [`DEFAULT_LIMIT`]), newest first or by relevance; `next_cursor` is set
/// when more may follow. See [`list_runs_sql`] for the plan.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad limit, label, cursor or search;
/// [`Error::InvalidSearch`] for a raw FTS5 query that FTS5 rejects;
/// [`Error::SearchStale`] for a search while a bulk import has the index
/// maintenance deferred; an SQLite error if the read fails, or if indexing
/// the queue before a search fails ([`search::flush_queue`]).
pub fn list_runs(c: &Connection, f: &RunFilter) -> Result<RunPage> {
    let limit = f.limit.unwrap_or(DEFAULT_LIMIT) as usize;
    let by_status = match (&f.status, f.labels.as_ref().and_then(|l| l.iter().next())) {
        (Some(status), Some((k, v))) if f.batch_id.is_none() && f.search.is_none() => {
            // Drive by whichever is smaller, counted up to DRIVER_PROBE rows
            // of each index: a rare status ("failed") among a big label's
            // runs, or a rare label among many runs of a status.
            let labelled: i64 = c
                .prepare_cached("SELECT count(*) FROM (SELECT 1 FROM run_labels WHERE key = ?1 AND value = ?2 LIMIT ?3)")?
                .query_row(params![k, v, DRIVER_PROBE], |r| r.get(0))?;
            let in_status: i64 = c
                .prepare_cached("SELECT count(*) FROM (SELECT 1 FROM runs INDEXED BY runs_status WHERE status = ?1 LIMIT ?2)")?
                .query_row(params![status.as_str(), DRIVER_PROBE], |r| r.get(0))?;
            in_status < labelled
        }
        _ => false,
    };
    let (sql, params, kind) = list_runs_sql(f, by_status)?;
    if f.search.is_some() {
        // After the filter is checked, before the index is read: a search
        // never misses a committed run.
        search::check_fresh(c)?;
        search::flush_queue(c)?;
    }
    let syntax = f.search_syntax.unwrap_or(SearchSyntax::Words);
    let read = || -> Result<Vec<(Run, Option<i64>)>> {
        let mut st = c.prepare_cached(&sql)?;
        let rows = st.query_map(rusqlite::params_from_iter(params.iter()), |r| {
            let rowid = if kind == CursorKind::Id {
                None
            } else {
                Some(r.get(24)?)
            };
            Ok((run_from_row(r)?, rowid))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    };
    let mut rows = read().map_err(|e| search::search_error(e, syntax))?;
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        match kind {
            CursorKind::Id => rows.last().map(|(r, _)| r.id.clone()),
            CursorKind::SearchRowid => rows.last().and_then(|(_, id)| id.map(|n| format!("s{n}"))),
            CursorKind::Offset(n) => Some(format!("o{}", n + limit as i64)),
        }
    } else {
        None
    };
    Ok(RunPage {
        runs: rows.into_iter().map(|(r, _)| r).collect(),
        next_cursor,
    })
}

/// Every run with an id greater than `after`, in id order, at most `limit`
/// (1 ..= [`MAX_LIMIT`](crate::page::MAX_LIMIT)): one primary-key range scan, for `exportRuns`.
/// `next_cursor` is the last id when the page is full.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad limit or cursor; an SQLite error if
/// the read fails.
pub fn export_runs(c: &Connection, after: Option<&str>, limit: i64) -> Result<RunPage> {
    let limit = check_limit(Some(limit))?;
    if let Some(a) = after {
        check_cursor(a, "exportRuns")?;
    }
    let mut st = c.prepare_cached(&format!(
        "SELECT {RUN_COLS} FROM runs AS r WHERE r.id > ?1 ORDER BY r.id LIMIT ?2"
    ))?;
    let runs: Vec<Run> = st
        .query_map(params![after.unwrap_or(""), limit], run_from_row)?
        .collect::<rusqlite::Result<_>>()?;
    let next_cursor = if runs.len() as i64 == limit {
        runs.last().map(|r| r.id.clone())
    } else {
        None
    };
    Ok(RunPage { runs, next_cursor })
}

/// A stored step output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    /// Step name.
    pub name: String,
    /// Output JSON.
    pub output: Box<RawValue>,
    /// Attempt that stored it.
    pub attempt: i64,
    /// ms.
    pub created_at: i64,
}

/// Steps of run `id`, in the order they were stored (empty for an unknown run).
///
/// # Errors
/// An SQLite error if the read fails.
pub fn steps(c: &Connection, id: &str) -> Result<Vec<StepRecord>> {
    let mut st = c.prepare_cached("SELECT name, output, attempt, created_at FROM steps WHERE run_id = ?1 ORDER BY created_at, name")?;
    let rows = st.query_map(params![id], |r| {
        Ok(StepRecord {
            name: r.get(0)?,
            output: req_raw(r.get(1)?)?,
            attempt: r.get(2)?,
            created_at: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The stored output of step `name` of run `id`, if any (one primary-key
/// seek; the façade reads a step evicted from its memory with it).
///
/// # Errors
/// An SQLite error if the read fails; [`Error::Corrupt`] if the stored
/// output is not JSON.
pub fn step_output(c: &Connection, id: &str, name: &str) -> Result<Option<Box<RawValue>>> {
    let row: Option<String> = c
        .prepare_cached("SELECT output FROM steps WHERE run_id = ?1 AND name = ?2")?
        .query_row(params![id, name], |r| r.get(0))
        .optional()?;
    row.map(raw_text).transpose()
}

/// A `step.log` line.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogRecord {
    /// ms.
    pub at: i64,
    /// Attempt that logged it.
    pub attempt: i64,
    /// Level.
    pub level: String,
    /// Text.
    pub message: String,
}

/// Log lines of run `id`, oldest first (empty for an unknown run).
///
/// # Errors
/// An SQLite error if the read fails.
pub fn logs(c: &Connection, id: &str) -> Result<Vec<LogRecord>> {
    let mut st = c.prepare_cached(
        "SELECT at, attempt, level, message FROM run_logs WHERE run_id = ?1 ORDER BY seq",
    )?;
    let rows = st.query_map(params![id], |r| {
        Ok(LogRecord {
            at: r.get(0)?,
            attempt: r.get(1)?,
            level: r.get(2)?,
            message: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Priority levels [`next_wake_at`] seeks one by one before it falls back
/// to one scan of the queue's pending runs.
pub const MAX_WAKE_LEVELS: usize = 64;

/// Earliest `run_at` of a pending run in `queue`, or lease expiry of any
/// run (claims recover expired leases of every queue), ms; `None` if
/// neither exists.
///
/// # Errors
/// An SQLite error if the read fails.
///
/// Pending runs are indexed by (queue, priority DESC, run_at) for the claim,
/// so the earliest `run_at` is found by a skip-scan over the distinct
/// priorities: one seek per priority level in use (usually a handful),
/// instead of a second index that every enqueue would pay for.
pub fn next_wake_at(c: &Connection, queue: &str) -> Result<Option<i64>> {
    let mut due: Option<i64> = None;
    // A paused queue's runs are not claimed, so none of them is a reason to wake.
    let paused = crate::queues::is_paused(c, queue)?;
    let mut next_prio = c.prepare_cached(
        "SELECT priority, run_at FROM runs INDEXED BY runs_claim
         WHERE queue = ?1 AND status = 'pending' AND priority < ?2
         ORDER BY priority DESC, run_at LIMIT 1",
    )?;
    // (`priority < i64::MIN` matches nothing.)
    let mut below = if paused { i64::MIN } else { i64::MAX };
    let mut levels = 0;
    while let Some((prio, run_at)) = next_prio
        .query_row(params![queue, below], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })
        .optional()?
    {
        due = Some(due.map_or(run_at, |d: i64| d.min(run_at)));
        below = prio;
        levels += 1;
        if levels == MAX_WAKE_LEVELS {
            // Priorities used as a score: one pass over the pending runs
            // beats thousands of seeks.
            due = c
                .prepare_cached("SELECT min(run_at) FROM runs INDEXED BY runs_claim WHERE queue = ?1 AND status = 'pending'")?
                .query_row(params![queue], |r| r.get(0))?;
            break;
        }
    }
    // Leases of every queue: claims recover expired leases of all queues.
    let lease: Option<i64> = c
        .prepare_cached("SELECT min(lease_expires_at) FROM runs INDEXED BY runs_lease WHERE lease_expires_at IS NOT NULL")?
        .query_row([], |r| r.get(0))?;
    Ok(match (due, lease) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

pub use crate::model::Stats;

/// Counts runs by status: one pass over the `runs_status` index, O(runs).
///
/// # Errors
/// An SQLite error if the read fails.
pub fn stats(c: &Connection) -> Result<Stats> {
    let mut s = Stats::default();
    let mut st = c.prepare_cached("SELECT status, count(*) FROM runs GROUP BY status")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        s.add(&r.get::<_, String>(0)?, r.get(1)?);
    }
    Ok(s)
}
