//! Run history: the lifecycle events of each run, stamped with the
//! generation of the commit that wrote them.
//!
//! Operations push [`Event`]s into an [`Events`] buffer while they run;
//! [`crate::Store::apply`] writes the buffer with one multi-row insert per
//! commit ([`crate::rows`]) just before `COMMIT`, so history costs one
//! statement per group commit, not one per event. An operation that fails
//! takes its events with it.

use crate::error::Result;
use crate::rows;
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::value::RawValue;

/// What happened to a run. Stored as the camelCase text of the variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum EventKind {
    /// Created by `enqueue`, `enqueueMany`, `enqueueBatch` or `retrigger`
    /// (`data.retriedFrom` names the run it came from). Since schema 6 it
    /// is read from the run's own row ([`ENQUEUED_EVENT_SQL`]), not stored.
    Enqueued,
    /// Stored by `importRuns` (it keeps the status it had).
    Imported,
    /// Claimed by a worker; `attempt` is the attempt that starts.
    Leased,
    /// A step's output was checkpointed (`data.name`).
    StepCompleted,
    /// An attempt failed and the run is pending again (`data.runAt`,
    /// `data.error`), including a lease that expired.
    Retried,
    /// Failed for good (`data.error`).
    Failed,
    /// Completed.
    Completed,
    /// Cancelled (`data.previous`: the status it had).
    Cancelled,
}

impl EventKind {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Enqueued => "enqueued",
            EventKind::Imported => "imported",
            EventKind::Leased => "leased",
            EventKind::StepCompleted => "stepCompleted",
            EventKind::Retried => "retried",
            EventKind::Failed => "failed",
            EventKind::Completed => "completed",
            EventKind::Cancelled => "cancelled",
        }
    }
}

/// One event waiting for its commit.
#[derive(Debug, Clone)]
pub struct Event {
    /// Run id.
    pub run_id: String,
    /// Caller's clock, ms.
    pub at: i64,
    /// What happened.
    pub kind: EventKind,
    /// The run's attempt number at that moment.
    pub attempt: i64,
    /// Details as a JSON object's text, if any.
    pub data: Option<String>,
}

/// The events of the group commit being applied, in order, with a
/// tombstone where a run was deleted: its earlier events of this commit are
/// not written. Tombstones are entries like events, so an operation that
/// fails takes its tombstones away with its events ([`Events::truncate`]).
#[derive(Debug, Default)]
pub struct Events {
    list: Vec<Entry>,
}

#[derive(Debug)]
enum Entry {
    Event(Event),
    Deleted(String),
}

impl Events {
    /// Records an event; `data` is serialized to JSON.
    pub fn push(
        &mut self,
        run_id: &str,
        at: i64,
        kind: EventKind,
        attempt: i64,
        data: Option<serde_json::Value>,
    ) {
        self.list.push(Entry::Event(Event {
            run_id: run_id.to_owned(),
            at,
            kind,
            attempt,
            data: data.map(|d| d.to_string()),
        }));
    }

    /// Entries recorded so far (a mark for [`Events::truncate`]).
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether none are recorded.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Drops the entries recorded after mark `n` (an operation that failed).
    pub fn truncate(&mut self, n: usize) {
        self.list.truncate(n);
    }

    /// Run `id` was deleted: its events recorded so far in this commit are
    /// not written (they would outlive the run).
    pub fn forget(&mut self, id: &str) {
        self.list.push(Entry::Deleted(id.to_owned()));
    }

    /// Drops every event (the batch is replayed).
    pub fn clear(&mut self) {
        self.list.clear();
    }

    /// Writes the events as generation `generation`, in chunked multi-row
    /// inserts (one statement unless there are more than 4096), and empties
    /// the buffer.
    ///
    /// # Errors
    /// An SQLite error if the insert fails.
    pub fn flush(&mut self, c: &Connection, generation: i64) -> Result<()> {
        if self.list.is_empty() {
            return Ok(());
        }
        // Walk back from the end: an event followed by its run's tombstone
        // is dropped; one after it (the id imported again) is kept.
        let mut deleted = std::collections::HashSet::new();
        let mut kept = Vec::with_capacity(self.list.len());
        for entry in self.list.drain(..).rev() {
            match entry {
                Entry::Deleted(id) => {
                    deleted.insert(id);
                }
                Entry::Event(e) if !deleted.contains(&e.run_id) => kept.push(e),
                Entry::Event(_) => {}
            }
        }
        kept.reverse();
        if kept.is_empty() {
            return Ok(());
        }
        let rows: Vec<Vec<Value>> = kept
            .into_iter()
            .enumerate()
            .map(|(seq, e)| {
                vec![
                    Value::Text(e.run_id),
                    Value::Integer(generation),
                    Value::Integer(seq as i64),
                    Value::Integer(e.at),
                    Value::Text(e.kind.as_str().into()),
                    Value::Integer(e.attempt),
                    e.data.map_or(Value::Null, Value::Text),
                ]
            })
            .collect();
        rows::insert_rows(c, "", "run_events", EVENT_COLS, &rows)?;
        Ok(())
    }
}

const EVENT_COLS: &[&str] = &[
    "run_id",
    "generation",
    "seq",
    "at",
    "kind",
    "attempt",
    "data",
];

/// A stored event, as `getRunEvents` returns it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunEvent {
    /// What happened: `enqueued`, `imported`, `leased`, `stepCompleted`,
    /// `retried`, `failed`, `completed` or `cancelled`.
    pub kind: String,
    /// When (the writer's clock), ms since the epoch.
    pub at: i64,
    /// The run's attempt number then.
    pub attempt: i64,
    /// The commit that wrote it; events of one commit share it.
    pub generation: i64,
    /// Details (see [`EventKind`]), or `null`.
    pub data: Option<Box<RawValue>>,
}

/// The query of [`run_events`] (public so a test can read its plan).
pub const RUN_EVENTS_SQL: &str = "SELECT kind, at, attempt, generation, data FROM run_events
     WHERE run_id = ?1 ORDER BY generation, seq";

/// The `enqueued` event of a run created since schema 6, from its own row:
/// `created_at`, attempt 0, the generation of the commit that created it
/// (`enqueued_generation`), and `{"retriedFrom": id}` for a retrigger. A
/// primary-key seek.
pub const ENQUEUED_EVENT_SQL: &str = "SELECT created_at, enqueued_generation,
        iif(retried_from IS NULL, NULL, json_object('retriedFrom', retried_from))
     FROM runs WHERE id = ?1 AND enqueued_generation IS NOT NULL";

/// The history of run `id`, oldest first (empty for an unknown run): its
/// `enqueued` event from the run's row (schema 6; it comes first: nothing
/// happens to a run before it exists, and nothing of its commit is stored
/// before it), then one primary-key prefix scan of `run_events`.
///
/// # Errors
/// An SQLite error if the read fails; `DURQ_CORRUPT` if stored data does
/// not parse.
pub fn run_events(c: &Connection, id: &str) -> Result<Vec<RunEvent>> {
    let enqueued: Option<(i64, i64, Option<String>)> = c
        .prepare_cached(ENQUEUED_EVENT_SQL)?
        .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let mut out = Vec::new();
    if let Some((at, generation, data)) = enqueued {
        out.push(RunEvent {
            kind: EventKind::Enqueued.as_str().into(),
            at,
            attempt: 0,
            generation,
            data: data.map(crate::json::raw_column).transpose()?,
        });
    }
    let mut st = c.prepare_cached(RUN_EVENTS_SQL)?;
    let rows = st.query_map(params![id], |r| {
        let data: Option<String> = r.get(4)?;
        Ok(RunEvent {
            kind: r.get(0)?,
            at: r.get(1)?,
            attempt: r.get(2)?,
            generation: r.get(3)?,
            data: data.map(crate::json::raw_column).transpose()?,
        })
    })?;
    for row in rows {
        out.push(row?);
    }
    Ok(out)
}

/// Deletes the history of run `id` (the run is being deleted).
///
/// # Errors
/// An SQLite error if the delete fails.
pub fn delete_events(c: &Connection, id: &str) -> Result<()> {
    c.prepare_cached("DELETE FROM run_events WHERE run_id = ?1")?
        .execute(params![id])?;
    Ok(())
}
