//! Cron schedules: `schedule` (create or replace), `deleteSchedule` and
//! `fireSchedules`, the operation the façade's one scheduler timer submits
//! when the earliest `next_at` comes due. Reads are in [`read`], the cron
//! calendar in [`cron`].
//!
//! A schedule is a row of `schedules` holding its cron expression, time
//! zone, catch-up policy, the run it makes (a `NewRun` without `runAt` or
//! idempotency key) and `next_at`, the earliest slot it has not fired.
//! Firing a slot enqueues one run with `runAt` = the slot and idempotency
//! key `schedule:<id>:<slot ms>`, and moves `next_at` past now, in the
//! same transaction: a crash before the commit fires nothing, after it
//! everything, and a slot fired twice (two processes, a replayed group
//! commit) finds the first run by its key. Never early: a slot fires only
//! at a group commit whose `now` has reached it.

pub mod cron;
pub mod read;

use crate::error::{Error, Result};
use crate::model::NewRun;
use crate::queue;
use crate::run::{check_run, DEFAULT_QUEUE};
use crate::validate;
use crate::write::Write;
use cron::CronSchedule;
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Longest schedule id, bytes: its runs' idempotency key
/// `schedule:<id>:<slot ms>` must fit [`validate::MAX_NAME_BYTES`].
pub const MAX_SCHEDULE_ID_BYTES: usize = 200;

/// Most runs one schedule makes in one firing with `catchUp: "all"`: the
/// latest this many missed slots; older ones are skipped.
pub const MAX_CATCH_UP: usize = 1000;

/// With `catchUp: "none"`, a slot reached more than this late (ms) was
/// missed (the database was closed, the process was down) and is skipped;
/// one reached sooner runs (a busy event loop, a Durable Object woken by
/// its alarm, is not downtime).
pub const MISSED_AFTER_MS: i64 = 60_000;

/// Default and largest number of schedules one `fireSchedules` fires.
pub const FIRE_LIMIT: i64 = 100;

/// What a schedule does about slots that came due while nothing fired them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum CatchUp {
    /// One run, for the most recent missed slot (the default).
    #[default]
    Latest,
    /// One run per missed slot, up to the latest [`MAX_CATCH_UP`].
    All,
    /// None: slots more than [`MISSED_AFTER_MS`] late are skipped.
    #[serde(rename = "none")]
    Skip,
}

impl CatchUp {
    /// The stored (and wire) name.
    pub fn as_str(self) -> &'static str {
        match self {
            CatchUp::Latest => "latest",
            CatchUp::All => "all",
            CatchUp::Skip => "none",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<CatchUp> {
        Some(match s {
            "latest" => CatchUp::Latest,
            "all" => CatchUp::All,
            "none" => CatchUp::Skip,
            _ => return None,
        })
    }
}

/// `schedule`: create the schedule `id`, or replace it.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct ScheduleOp {
    /// Schedule id (1..=[`MAX_SCHEDULE_ID_BYTES`] bytes, no NUL).
    pub id: String,
    /// Cron expression ([`CronSchedule::parse`]).
    pub cron: String,
    /// IANA time zone the expression is read in (default `"UTC"`).
    #[serde(default)]
    pub timezone: Option<String>,
    /// Catch-up policy (default `latest`).
    #[serde(default)]
    pub catch_up: Option<CatchUp>,
    /// The run each slot makes; `runAt` and `idempotencyKey` are the slot's.
    pub run: NewRun,
}

/// Result of `schedule`.
#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleSet {
    /// `false` when a schedule with this id was replaced.
    pub created: bool,
    /// Its next slot, ms (`null`: the expression matches no later time).
    pub next_at: Option<i64>,
}

/// `deleteSchedule`.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleIdOp {
    /// Schedule id.
    pub id: String,
}

/// Result of `deleteSchedule`.
#[derive(Debug, Serialize, TS)]
pub struct ScheduleDeleted {
    /// Whether a schedule with that id existed.
    pub deleted: bool,
}

/// `fireSchedules`: fire the slots due at the commit's `now`.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct FireSchedulesOp {
    /// At most this many schedules, earliest due first (1 ..= [`FIRE_LIMIT`], default [`FIRE_LIMIT`]).
    #[serde(default)]
    pub limit: Option<i64>,
}

/// One slot fired.
#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct FiredSlot {
    /// The schedule.
    pub schedule_id: String,
    /// The slot, ms (the run's `runAt`).
    pub slot_at: i64,
    /// The run made for it (or found by its idempotency key).
    pub run_id: String,
    /// `false` when the run already existed.
    pub created: bool,
    /// The run's job.
    pub job: String,
    /// The run's queue.
    pub queue: String,
}

/// A stored schedule that can no longer be fired (its expression or time
/// zone no longer parses, e.g. a zone removed from the IANA database): its
/// `next_at` is cleared, so it is kept but stops.
#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct StoppedSchedule {
    /// The schedule.
    pub schedule_id: String,
    /// Why.
    pub message: String,
}

/// Result of `fireSchedules`.
#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct FiredSchedules {
    /// The slots fired, in schedule then slot order.
    pub fired: Vec<FiredSlot>,
    /// Schedules that stopped.
    pub stopped: Vec<StoppedSchedule>,
    /// More schedules were due than `limit`: fire again.
    pub more: bool,
}

/// `schedule`: validates everything, then upserts. Replacing a schedule
/// with the same expression and time zone keeps its `next_at` (so calling
/// `schedule` at every start neither skips nor repeats a slot); otherwise
/// the next slot is the first after now.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad id, expression, time zone or run (as
/// `enqueue` checks it), or a run giving `runAt` or `idempotencyKey`.
pub fn set(w: &mut Write<'_>, o: &ScheduleOp) -> Result<ScheduleSet> {
    let now = w.now();
    check_id(&o.id)?;
    let tz = o.timezone.as_deref().unwrap_or("UTC");
    validate::name("time zone", tz)?;
    let cron = CronSchedule::parse(&o.cron, tz, now)?;
    if o.run.run_at.is_some() {
        return Err(Error::invalid(
            "a scheduled run is due at its slot: runAt is not a schedule option",
        ));
    }
    if o.run.idempotency_key.is_some() {
        return Err(Error::invalid(
            "a scheduled run's idempotency key is schedule:<id>:<slot ms>: idempotencyKey is not a schedule option",
        ));
    }
    let checked = check_run(&o.run, now, DEFAULT_QUEUE)?;
    let queue = checked.queue().to_owned();
    let c = w.conn();
    let existing: Option<(String, String, Option<i64>)> = c
        .prepare_cached("SELECT cron, timezone, next_at FROM schedules WHERE id = ?1")?
        .query_row([&o.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let next_at = match &existing {
        Some((e, z, next)) if *e == o.cron && z == tz => *next,
        _ => cron.next_after(now),
    };
    let run = serde_json::to_string(&o.run).expect("a NewRun serializes");
    let catch_up = o.catch_up.unwrap_or_default();
    c.prepare_cached(
        "INSERT INTO schedules (id, cron, timezone, catch_up, job, queue, run, next_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
         ON CONFLICT (id) DO UPDATE SET cron = ?2, timezone = ?3, catch_up = ?4, job = ?5,
            queue = ?6, run = ?7, next_at = ?8, updated_at = ?9",
    )?
    .execute(params![o.id, o.cron, tz, catch_up.as_str(), o.run.job, queue, run, next_at, now])?;
    Ok(ScheduleSet {
        created: existing.is_none(),
        next_at,
    })
}

/// A schedule id: a name of at most [`MAX_SCHEDULE_ID_BYTES`] bytes.
///
/// # Errors
/// [`Error::InvalidInput`] otherwise.
pub fn check_id(id: &str) -> Result<()> {
    validate::name("schedule id", id)?;
    if id.len() > MAX_SCHEDULE_ID_BYTES {
        return Err(Error::invalid(format!(
            "schedule id is {} bytes; at most {MAX_SCHEDULE_ID_BYTES}",
            id.len()
        )));
    }
    Ok(())
}

/// `deleteSchedule`. The runs it made stay.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad id.
pub fn delete(w: &mut Write<'_>, o: &ScheduleIdOp) -> Result<ScheduleDeleted> {
    check_id(&o.id)?;
    let n = w
        .conn()
        .prepare_cached("DELETE FROM schedules WHERE id = ?1")?
        .execute([&o.id])?;
    Ok(ScheduleDeleted { deleted: n > 0 })
}

/// The slots to fire now for a schedule whose earliest unfired slot is
/// `next_at` (<= `now`), by its policy, oldest first. Searches backwards
/// from `now`, so a long downtime costs at most [`MAX_CATCH_UP`] steps.
fn due_slots(cron: &CronSchedule, policy: CatchUp, next_at: i64, now: i64) -> Vec<i64> {
    let latest = cron.latest_at_or_before(now).filter(|&t| t >= next_at);
    match policy {
        CatchUp::Latest => latest.into_iter().collect(),
        CatchUp::Skip => latest
            .filter(|&t| now - t <= MISSED_AFTER_MS)
            .into_iter()
            .collect(),
        CatchUp::All => {
            let mut slots = Vec::new();
            let mut at = latest;
            while let Some(t) = at {
                if t < next_at || slots.len() == MAX_CATCH_UP {
                    break;
                }
                slots.push(t);
                at = cron.previous_before(t);
            }
            slots.reverse();
            slots
        }
    }
}

/// The due schedules, earliest first: a range of `schedules_due`.
pub const DUE_SCHEDULES_SQL: &str =
    "SELECT id, cron, timezone, catch_up, run, next_at FROM schedules INDEXED BY schedules_due
     WHERE next_at <= ?1 ORDER BY next_at LIMIT ?2";

/// `fireSchedules`: for each due schedule (earliest first), enqueues the
/// runs of its due slots and moves its `next_at` to the first slot after
/// now.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad limit; [`Error::Corrupt`] for a stored
/// run that no longer parses; what enqueueing a run raises.
pub fn fire(w: &mut Write<'_>, o: &FireSchedulesOp) -> Result<FiredSchedules> {
    let limit = o.limit.unwrap_or(FIRE_LIMIT);
    if !(1..=FIRE_LIMIT).contains(&limit) {
        return Err(Error::invalid(format!(
            "fireSchedules limit must be between 1 and {FIRE_LIMIT}, got {limit}"
        )));
    }
    let now = w.now();
    let c = w.conn();
    type Due = (String, String, String, String, String, i64);
    let mut due: Vec<Due> = c
        .prepare_cached(DUE_SCHEDULES_SQL)?
        .query_map(params![now, limit + 1], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let more = due.len() as i64 > limit;
    due.truncate(limit as usize);
    let mut out = FiredSchedules {
        fired: Vec::new(),
        stopped: Vec::new(),
        more,
    };
    for (id, expr, tz, policy, run, next_at) in due {
        let cron = match CronSchedule::parse(&expr, &tz, now) {
            Ok(cron) => cron,
            Err(e) => {
                w.conn()
                    .prepare_cached("UPDATE schedules SET next_at = NULL WHERE id = ?1")?
                    .execute([&id])?;
                out.stopped.push(StoppedSchedule {
                    schedule_id: id,
                    message: e.to_string(),
                });
                continue;
            }
        };
        let policy = CatchUp::parse(&policy).unwrap_or_default();
        let mut template: NewRun = serde_json::from_str(&run).map_err(|e| {
            Error::Corrupt(format!(
                "schedule {id:?}: its stored run does not parse: {e}"
            ))
        })?;
        let mut last: Option<(i64, String)> = None;
        for slot in due_slots(&cron, policy, next_at, now) {
            template.run_at = Some(slot);
            template.idempotency_key = Some(format!("schedule:{id}:{slot}"));
            let r = queue::enqueue(w, &template)?;
            last = Some((slot, r.id.clone()));
            out.fired.push(FiredSlot {
                schedule_id: id.clone(),
                slot_at: slot,
                run_id: r.id,
                created: r.created,
                job: template.job.clone(),
                queue: template
                    .queue
                    .clone()
                    .unwrap_or_else(|| DEFAULT_QUEUE.to_owned()),
            });
        }
        let (last_slot, last_run) = last.unzip();
        w.conn()
            .prepare_cached(
                "UPDATE schedules SET next_at = ?2, last_slot_at = coalesce(?3, last_slot_at),
                    last_run_id = coalesce(?4, last_run_id) WHERE id = ?1",
            )?
            .execute(params![id, cron.next_after(now), last_slot, last_run])?;
    }
    Ok(out)
}
