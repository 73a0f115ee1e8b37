//! Durable-Object-style alarms: at most one alarm per actor id in a
//! namespace, each namespace in its own SQLite database.
//!
//! The semantics follow Cloudflare Durable Object alarms
//! (<https://developers.cloudflare.com/durable-objects/api/alarms/>) and
//! workerd's alarm scheduler:
//! - `setAlarm` is an upsert: one alarm per actor, a new time replaces the
//!   old one (and resets its retry count); a time in the past is raised to
//!   the commit's `now` (workerd stores `max(time, now)`), and a time ≤ 0
//!   is refused (workerd throws for it);
//! - an alarm is delivered at least once: its row is deleted only when the
//!   handler reports success ([`AlarmDoneOp`]), and only if the row is still
//!   the alarm that fired (its `version`), so an alarm set while the handler
//!   ran survives the handler's completion;
//! - a failed handler is retried with exponential backoff as workerd does:
//!   [`RETRY_START_MS`] (workerd's `ALARM_RETRY_START_SECONDS = 2`),
//!   doubling (2, 4, 8, 16, 32, 64 s), with up to [`RETRY_JITTER`] of the
//!   delay added at random, at most [`MAX_RETRIES`] times (workerd's
//!   `ALARM_RETRY_MAX_TRIES = 6`); then the alarm is abandoned (deleted).
//!   During retries the alarm keeps its `scheduled_time` (what `get` and
//!   the handler's `scheduledTime` report, as workerd's `getAlarm()` and
//!   `alarmInfo`) and is delivered at its `deliver_at`. The retry count is
//!   stored in the row, so a restart does not reset it (workerd keeps it in
//!   memory only: durq's choice, so that a crash loop cannot retry forever).
//!
//! Handlers run in JavaScript between core calls; this module stores and
//! orders alarms and applies the outcome a handler reports.

use crate::error::{Error, Result};
use crate::page::check_limit;
use crate::validate;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Longest namespace name, in bytes.
pub const MAX_NAMESPACE_BYTES: usize = 128;
/// First retry delay after a failed handler, ms (workerd:
/// `ALARM_RETRY_START_SECONDS = 2`).
pub const RETRY_START_MS: f64 = 2_000.0;
/// Largest fraction of a retry delay added at random (workerd adds up to
/// 25% to each alarm retry delay).
pub const RETRY_JITTER: f64 = 0.25;
/// Retries after the first failed delivery before the alarm is abandoned
/// (workerd: `ALARM_RETRY_MAX_TRIES = 6`).
pub const MAX_RETRIES: i64 = 6;

/// The delay before retry `retry` (1 for the first), ms: `2 s · 2^(retry-1)`
/// plus `random · 25%` of it (`random` in [0, 1)), as workerd's alarm
/// retries: 2, 4, 8, 16, 32, 64 s before jitter.
pub fn retry_delay_ms(retry: i64, random: f64) -> i64 {
    let base = RETRY_START_MS * 2f64.powi((retry.clamp(1, 62) - 1) as i32);
    let r = if random.is_finite() {
        random.clamp(0.0, 1.0)
    } else {
        0.0
    };
    (base * (1.0 + RETRY_JITTER * r)).round() as i64
}

/// Migrations of an alarm database (`PRAGMA user_version`), append-only.
pub const MIGRATIONS: &[&str] = &[
    // 1: alarms.
    r#"
    -- One row per actor with an alarm. Times are integer ms since the Unix
    -- epoch. `scheduled_time` is when the alarm fires next (a failed
    -- delivery moves it to the retry time). `version` identifies one `set`:
    -- a handler's outcome applies only to the version that fired.
    CREATE TABLE alarms (
        actor_id       TEXT PRIMARY KEY NOT NULL,
        scheduled_time INTEGER NOT NULL,
        retry_count    INTEGER NOT NULL DEFAULT 0,
        version        INTEGER NOT NULL,
        set_at         INTEGER NOT NULL
    ) WITHOUT ROWID;
    -- Next due alarm: one seek (the index holds actor_id, the primary key).
    CREATE INDEX alarms_due ON alarms (scheduled_time);
    -- `next_version`: the next `version` to hand out (survives restarts, so
    -- a version is never reused for an actor).
    CREATE TABLE alarm_meta (
        key   TEXT PRIMARY KEY NOT NULL,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 2: the time an alarm was set for, kept while retries move its
    // delivery (`scheduled_time`, the indexed due time). NULL: the same as
    // `scheduled_time` (no retry yet).
    r#"
    ALTER TABLE alarms ADD COLUMN set_time INTEGER;
    "#,
];

/// Checks a namespace name: 1 to [`MAX_NAMESPACE_BYTES`] bytes, no `/`,
/// `\`, NUL or other control character, not containing `..`, and not
/// starting with `.` (the name becomes a file name: `<namespace>.db`).
///
/// # Errors
/// [`Error::InvalidInput`] naming the rule broken.
pub fn validate_namespace(ns: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::invalid(format!(
            "alarm namespace {ns:?} is invalid: {why}"
        )))
    };
    if ns.is_empty() {
        return bad("it is empty");
    }
    if ns.len() > MAX_NAMESPACE_BYTES {
        return bad(&format!(
            "it is {} bytes; the limit is {MAX_NAMESPACE_BYTES}",
            ns.len()
        ));
    }
    if ns.contains(['/', '\\']) {
        return bad("it contains a path separator");
    }
    if ns.chars().any(char::is_control) {
        return bad("it contains NUL or another control character");
    }
    if ns.contains("..") || ns.starts_with('.') {
        return bad("it contains `..` or starts with `.`");
    }
    Ok(())
}

/// An alarm as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alarm {
    /// The actor it belongs to.
    pub actor_id: String,
    /// The time it was set for, ms since the epoch (raised to the time of
    /// the `set` if that was in the past); unchanged by retries, as workerd's
    /// `getAlarm()`.
    pub scheduled_time: i64,
    /// When it is delivered next, ms: `scheduled_time`, or after a failed
    /// delivery the retry time.
    pub deliver_at: i64,
    /// Failed deliveries so far of this alarm (0 for a fresh `set`).
    pub retry_count: i64,
    /// Identifies the `set` that made it; handed back by `alarmDone` and `alarmFailed`.
    pub version: i64,
}

/// Filter of `listAlarms`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlarmFilter {
    /// Only alarms delivered before `before` (`deliver_at < before`), ms.
    #[serde(default)]
    pub before: Option<i64>,
    /// Page size, 1..=1000 (default 50).
    #[serde(default)]
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// A page of alarms, earliest delivery first (by `deliver_at`, then actor id).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmPage {
    /// The alarms.
    pub alarms: Vec<Alarm>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// `setAlarm`: schedule (or move) the actor's alarm.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SetAlarmOp {
    /// Namespace.
    pub namespace: String,
    /// Actor id (1..=256 bytes, no NUL).
    pub actor_id: String,
    /// When it fires, ms since the epoch, > 0 (a past time is raised to
    /// now and fires at once).
    pub time: i64,
}

/// `deleteAlarm`: remove the actor's alarm, if any.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DeleteAlarmOp {
    /// Namespace.
    pub namespace: String,
    /// Actor id.
    pub actor_id: String,
}

/// `alarmDone`: the handler of alarm `version` resolved.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct AlarmDoneOp {
    /// Namespace.
    pub namespace: String,
    /// Actor id.
    pub actor_id: String,
    /// `version` of the alarm that fired.
    pub version: i64,
}

/// `alarmFailed`: the handler of alarm `version` threw.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct AlarmFailedOp {
    /// Namespace.
    pub namespace: String,
    /// Actor id.
    pub actor_id: String,
    /// `version` of the alarm that fired.
    pub version: i64,
    /// In [0, 1): picks the jitter.
    #[serde(default)]
    pub random: f64,
}

/// What `alarmFailed` did.
#[derive(Debug, Serialize, PartialEq, Eq, TS)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum FailOutcome {
    /// Rescheduled at `retryAt` (ms); `retryCount` failures so far.
    #[serde(rename_all = "camelCase")]
    Retry {
        /// Failures so far, 1..=[`MAX_RETRIES`].
        retry_count: i64,
        /// When it fires again, ms.
        retry_at: i64,
    },
    /// Failed after [`MAX_RETRIES`] retries: deleted.
    #[serde(rename_all = "camelCase")]
    Abandoned {
        /// Failures in all (`MAX_RETRIES + 1`).
        retry_count: i64,
    },
    /// The alarm was set anew or deleted while its handler ran: the new
    /// state stands and no retry is scheduled.
    Superseded,
}

/// Result of `setAlarm`.
#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct AlarmSet {
    /// When it fires, ms: the time asked, or now if that was in the past.
    pub scheduled_time: i64,
}

/// Result of `deleteAlarm` and `alarmDone`.
#[derive(Debug, Serialize, TS)]
pub struct AlarmDeleted {
    /// Whether an alarm was deleted (`alarmDone`: `false` when it was set
    /// anew while its handler ran).
    pub deleted: bool,
}

/// The result of an alarm operation.
#[derive(Debug, Serialize, TS)]
#[serde(untagged)]
pub enum AlarmResult {
    /// `setAlarm`.
    Set(AlarmSet),
    /// `deleteAlarm`, `alarmDone`.
    Deleted(AlarmDeleted),
    /// `alarmFailed`.
    Failed(FailOutcome),
}

/// An alarm operation of a group commit ([`crate::op::Op::as_alarm`]).
#[derive(Debug, Clone, Copy)]
pub enum AlarmOp<'a> {
    /// See [`SetAlarmOp`].
    Set(&'a SetAlarmOp),
    /// See [`DeleteAlarmOp`].
    Delete(&'a DeleteAlarmOp),
    /// See [`AlarmDoneOp`].
    Done(&'a AlarmDoneOp),
    /// See [`AlarmFailedOp`].
    Failed(&'a AlarmFailedOp),
}

impl<'a> AlarmOp<'a> {
    /// The namespace the operation writes to.
    pub fn namespace(&self) -> &'a str {
        match self {
            AlarmOp::Set(o) => &o.namespace,
            AlarmOp::Delete(o) => &o.namespace,
            AlarmOp::Done(o) => &o.namespace,
            AlarmOp::Failed(o) => &o.namespace,
        }
    }
}

/// One namespace's database.
pub struct AlarmDb {
    conn: Connection,
    next_version: i64,
    stored_version: i64,
}

const NEXT_VERSION_KEY: &str = "next_version";

const SELECT_ALARM: &str =
    "SELECT actor_id, coalesce(set_time, scheduled_time), retry_count, version, scheduled_time FROM alarms";

fn row_alarm(r: &rusqlite::Row<'_>) -> rusqlite::Result<Alarm> {
    Ok(Alarm {
        actor_id: r.get(0)?,
        scheduled_time: r.get(1)?,
        retry_count: r.get(2)?,
        version: r.get(3)?,
        deliver_at: r.get(4)?,
    })
}

impl AlarmDb {
    /// Wraps a configured connection: migrates it and reads the version counter.
    ///
    /// # Errors
    /// [`Error::SchemaTooNew`] if a newer durq wrote it; an SQLite error.
    pub(crate) fn init(mut conn: Connection) -> Result<AlarmDb> {
        crate::schema::migrate_with(&mut conn, MIGRATIONS)?;
        let next: Option<i64> = conn
            .query_row(
                "SELECT value FROM alarm_meta WHERE key = ?1",
                [NEXT_VERSION_KEY],
                |r| r.get(0),
            )
            .optional()?;
        let next = next.unwrap_or(1);
        Ok(AlarmDb {
            conn,
            next_version: next,
            stored_version: next,
        })
    }

    /// The connection, for tests and diagnostics (read only by convention).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Applies this namespace's operations of a group commit in one
    /// transaction, at the commit's `now` (ms). Each operation writes with
    /// one statement, so one that fails leaves nothing behind and needs no
    /// savepoint.
    ///
    /// # Errors
    /// An SQLite error if the transaction cannot begin or commit (then none
    /// of the operations took effect).
    pub fn apply(&mut self, now: i64, ops: &[AlarmOp<'_>]) -> Result<Vec<Result<AlarmResult>>> {
        let tx = self.conn.transaction()?;
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            match apply_op(&tx, &mut self.next_version, now, *op) {
                // SQLite rolled the whole transaction back (I/O error, full disk).
                Err(e) if tx.is_autocommit() => return Err(e),
                res => out.push(res),
            }
        }
        if self.next_version != self.stored_version {
            tx.prepare_cached("INSERT OR REPLACE INTO alarm_meta (key, value) VALUES (?1, ?2)")?
                .execute(params![NEXT_VERSION_KEY, self.next_version])?;
        }
        tx.commit()?;
        self.stored_version = self.next_version;
        Ok(out)
    }

    /// The actor's alarm, if any.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad actor id; an SQLite error.
    pub fn get(&self, actor_id: &str) -> Result<Option<Alarm>> {
        validate::name("actor id", actor_id)?;
        Ok(self
            .conn
            .prepare_cached(&format!("{SELECT_ALARM} WHERE actor_id = ?1"))?
            .query_row([actor_id], row_alarm)
            .optional()?)
    }

    /// A page of alarms in (time, actor id) order; one index range scan.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad limit, `before` or cursor.
    pub fn list(&self, f: &AlarmFilter) -> Result<AlarmPage> {
        let limit = check_limit(f.limit)?;
        let before = match f.before {
            Some(b) => {
                validate::time("before", b)?;
                b
            }
            None => i64::MAX,
        };
        let (after_time, after_actor) = match &f.cursor {
            Some(c) => parse_cursor(c)?,
            None => (i64::MIN, String::new()),
        };
        let mut st = self.conn.prepare_cached(&format!(
            "{SELECT_ALARM} WHERE (scheduled_time, actor_id) > (?1, ?2) AND scheduled_time < ?3 \
             ORDER BY scheduled_time, actor_id LIMIT ?4"
        ))?;
        let mut alarms: Vec<Alarm> = st
            .query_map(
                params![after_time, after_actor, before, limit + 1],
                row_alarm,
            )?
            .collect::<rusqlite::Result<_>>()?;
        let next_cursor = if alarms.len() as i64 > limit {
            alarms.truncate(limit as usize);
            alarms
                .last()
                .map(|a| format!("{}:{}", a.deliver_at, a.actor_id))
        } else {
            None
        };
        Ok(AlarmPage {
            alarms,
            next_cursor,
        })
    }

    /// The earliest delivery time strictly after `after`, ms: one index seek.
    ///
    /// # Errors
    /// An SQLite error if the read fails.
    pub fn next_after(&self, after: i64) -> Result<Option<i64>> {
        Ok(self
            .conn
            .prepare_cached(NEXT_ALARM_SQL)?
            .query_row([after], |r| r.get(0))
            .optional()?)
    }
}

/// The next-due lookup: `SEARCH alarms USING COVERING INDEX alarms_due (scheduled_time>?)`.
pub const NEXT_ALARM_SQL: &str =
    "SELECT scheduled_time FROM alarms WHERE scheduled_time > ?1 ORDER BY scheduled_time LIMIT 1";

fn parse_cursor(c: &str) -> Result<(i64, String)> {
    let bad = || Error::invalid(format!("bad alarm cursor {c:?}"));
    let (t, actor) = c.split_once(':').ok_or_else(bad)?;
    let t: i64 = t.parse().map_err(|_| bad())?;
    if validate::time("cursor", t).is_err() || validate::name("cursor", actor).is_err() {
        return Err(bad());
    }
    Ok((t, actor.to_owned()))
}

fn apply_op(
    c: &Connection,
    next_version: &mut i64,
    now: i64,
    op: AlarmOp<'_>,
) -> Result<AlarmResult> {
    match op {
        AlarmOp::Set(o) => {
            validate::name("actor id", &o.actor_id)?;
            validate::time("alarm time", o.time)?;
            if o.time <= 0 {
                return Err(Error::invalid(format!(
                    "alarm time must be after the Unix epoch (> 0 ms), got {}",
                    o.time
                )));
            }
            let time = o.time.max(now);
            let version = *next_version;
            c.prepare_cached(
                "INSERT INTO alarms (actor_id, scheduled_time, retry_count, version, set_at, set_time)
                 VALUES (?1, ?2, 0, ?3, ?4, NULL)
                 ON CONFLICT (actor_id) DO UPDATE SET
                   scheduled_time = excluded.scheduled_time, retry_count = 0,
                   version = excluded.version, set_at = excluded.set_at, set_time = NULL",
            )?
            .execute(params![o.actor_id, time, version, now])?;
            *next_version += 1;
            Ok(AlarmResult::Set(AlarmSet {
                scheduled_time: time,
            }))
        }
        AlarmOp::Delete(o) => {
            validate::name("actor id", &o.actor_id)?;
            let n = c
                .prepare_cached("DELETE FROM alarms WHERE actor_id = ?1")?
                .execute([&o.actor_id])?;
            Ok(AlarmResult::Deleted(AlarmDeleted { deleted: n > 0 }))
        }
        AlarmOp::Done(o) => {
            validate::name("actor id", &o.actor_id)?;
            let n = c
                .prepare_cached("DELETE FROM alarms WHERE actor_id = ?1 AND version = ?2")?
                .execute(params![o.actor_id, o.version])?;
            Ok(AlarmResult::Deleted(AlarmDeleted { deleted: n > 0 }))
        }
        AlarmOp::Failed(o) => {
            validate::name("actor id", &o.actor_id)?;
            let count: Option<i64> = c
                .prepare_cached(
                    "SELECT retry_count FROM alarms WHERE actor_id = ?1 AND version = ?2",
                )?
                .query_row(params![o.actor_id, o.version], |r| r.get(0))
                .optional()?;
            let outcome = match count {
                None => FailOutcome::Superseded,
                Some(n) if n >= MAX_RETRIES => {
                    c.prepare_cached("DELETE FROM alarms WHERE actor_id = ?1 AND version = ?2")?
                        .execute(params![o.actor_id, o.version])?;
                    FailOutcome::Abandoned { retry_count: n + 1 }
                }
                Some(n) => {
                    let delay = retry_delay_ms(n + 1, o.random);
                    let at = now.saturating_add(delay).min(validate::MAX_TIME_MS);
                    c.prepare_cached(
                        "UPDATE alarms SET set_time = coalesce(set_time, scheduled_time),
                           scheduled_time = ?3, retry_count = ?4
                         WHERE actor_id = ?1 AND version = ?2",
                    )?
                    .execute(params![o.actor_id, o.version, at, n + 1])?;
                    FailOutcome::Retry {
                        retry_count: n + 1,
                        retry_at: at,
                    }
                }
            };
            Ok(AlarmResult::Failed(outcome))
        }
    }
}
