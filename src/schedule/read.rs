//! Reads of schedules: one by id, pages in id order, and the earliest
//! `next_at` the scheduler timer sleeps until.

use super::CatchUp;
use crate::error::{Error, Result};
use crate::json::raw_text;
use crate::model::NewRun;
use crate::page::check_limit;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use ts_rs::TS;

/// A schedule as read back.
#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// Its id.
    pub id: String,
    /// Cron expression, as given.
    pub cron: String,
    /// IANA time zone.
    pub timezone: String,
    /// Catch-up policy.
    pub catch_up: CatchUp,
    /// Job of its runs.
    pub job: String,
    /// Queue of its runs.
    pub queue: String,
    /// Input of its runs.
    #[ts(type = "unknown")]
    pub input: Box<RawValue>,
    /// Labels of its runs.
    pub labels: BTreeMap<String, String>,
    /// Priority of its runs.
    pub priority: i64,
    /// Concurrency key of its runs.
    pub concurrency_key: Option<String>,
    /// Attempt limit of its runs (`null`: the default, 3).
    pub max_attempts: Option<i64>,
    /// The earliest slot not fired yet, ms (`null`: it fires no more).
    pub next_at: Option<i64>,
    /// The latest slot fired, ms.
    pub last_slot_at: Option<i64>,
    /// The run made for that slot.
    pub last_run_id: Option<String>,
    /// ms.
    pub created_at: i64,
    /// Last replaced, ms.
    pub updated_at: i64,
}

/// Filter of `listSchedules`.
#[derive(Debug, Default, Deserialize, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[ts(optional_fields = nullable)]
pub struct ScheduleFilter {
    /// `nextCursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Page size (default 50, at most 1000).
    #[serde(default)]
    pub limit: Option<i64>,
}

/// A page of schedules, in id order.
#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SchedulePage {
    /// The schedules.
    pub schedules: Vec<Schedule>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

const SELECT: &str =
    "SELECT id, cron, timezone, catch_up, job, queue, run, next_at, last_slot_at, \
     last_run_id, created_at, updated_at FROM schedules";

/// The prefix that marks a cursor as one of `listSchedules`.
const CURSOR_PREFIX: &str = "schedule:";

fn row(r: &Row<'_>) -> rusqlite::Result<(Schedule, String)> {
    let catch_up: String = r.get(3)?;
    Ok((
        Schedule {
            id: r.get(0)?,
            cron: r.get(1)?,
            timezone: r.get(2)?,
            catch_up: CatchUp::parse(&catch_up).unwrap_or_default(),
            job: r.get(4)?,
            queue: r.get(5)?,
            input: RawValue::from_string("null".into()).expect("null is JSON"),
            labels: BTreeMap::new(),
            priority: 0,
            concurrency_key: None,
            max_attempts: None,
            next_at: r.get(7)?,
            last_slot_at: r.get(8)?,
            last_run_id: r.get(9)?,
            created_at: r.get(10)?,
            updated_at: r.get(11)?,
        },
        r.get(6)?,
    ))
}

/// Fills in the fields kept in the stored run template.
fn with_run((mut s, run): (Schedule, String)) -> Result<Schedule> {
    let t: NewRun = serde_json::from_str(&run).map_err(|e| {
        Error::Corrupt(format!(
            "schedule {:?}: its stored run does not parse: {e}",
            s.id
        ))
    })?;
    s.input = raw_text(t.input.get().to_owned())?;
    s.labels = t.labels.unwrap_or_default();
    s.priority = t.priority.unwrap_or(0);
    s.concurrency_key = t.concurrency_key;
    s.max_attempts = t.max_attempts;
    Ok(s)
}

/// The schedule `id`, if it exists.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad id; [`Error::Corrupt`] for a stored run
/// that does not parse.
pub fn get(c: &Connection, id: &str) -> Result<Option<Schedule>> {
    super::check_id(id)?;
    c.prepare_cached(&format!("{SELECT} WHERE id = ?1"))?
        .query_row([id], row)
        .optional()?
        .map(with_run)
        .transpose()
}

/// A page of schedules in id order: one primary-key range scan.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad limit or a cursor not made by
/// `listSchedules`.
pub fn list(c: &Connection, f: &ScheduleFilter) -> Result<SchedulePage> {
    let limit = check_limit(f.limit)?;
    let after = match &f.cursor {
        Some(cur) => {
            let id = cur
                .strip_prefix(CURSOR_PREFIX)
                .filter(|id| super::check_id(id).is_ok())
                .ok_or_else(|| Error::invalid("cursor is not one returned by listSchedules"))?;
            id.to_owned()
        }
        None => String::new(),
    };
    let mut schedules = c
        .prepare_cached(&format!("{SELECT} WHERE id > ?1 ORDER BY id LIMIT ?2"))?
        .query_map(params![after, limit + 1], row)?
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .map(with_run)
        .collect::<Result<Vec<_>>>()?;
    let next_cursor = if schedules.len() as i64 > limit {
        schedules.truncate(limit as usize);
        schedules.last().map(|s| format!("{CURSOR_PREFIX}{}", s.id))
    } else {
        None
    };
    Ok(SchedulePage {
        schedules,
        next_cursor,
    })
}

/// The earliest `next_at` of any schedule, ms: one seek of `schedules_due`.
///
/// # Errors
/// An SQLite error if the read fails.
pub fn next_at(c: &Connection) -> Result<Option<i64>> {
    Ok(c.prepare_cached(NEXT_SCHEDULE_SQL)?
        .query_row([], |r| r.get(0))?)
}

/// The next-due lookup: `SEARCH schedules USING COVERING INDEX schedules_due`.
pub const NEXT_SCHEDULE_SQL: &str =
    "SELECT min(next_at) FROM schedules INDEXED BY schedules_due WHERE next_at IS NOT NULL";
