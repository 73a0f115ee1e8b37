//! [`Op`]: every write operation, the one place their names are written,
//! and [`apply`], the dispatch from an operation to its feature.
//!
//! On the wire an operation is `{"op": "<name>", "args": {...}}` (serde's
//! adjacent tagging; <https://serde.rs/enum-representations.html>), `op`
//! first: serde then reads `args` straight into the variant's type, so user
//! JSON inside it (inputs, outputs) stays verbatim as `RawValue` and is
//! parsed once. The TypeScript union in `js/src/generated/boundary.ts` is
//! generated from this enum (ts-rs; `tests/boundary.rs` fails when the two
//! drift, and when `docs/boundary.md` lists other operations).

use crate::alarm::{AlarmDoneOp, AlarmFailedOp, AlarmOp, AlarmResult, DeleteAlarmOp, SetAlarmOp};
use crate::batch::{
    self, BatchIdOp, CancelledBatch, EnqueueBatchOp, EnqueuedBatch, ReconcileOp, Reconciled,
};
use crate::effect::{self, DeleteEffectsOp, Deleted, PutEffectOp};
use crate::error::{Error, Result};
use crate::lease::{
    self, ClaimOp, Claimed, CompleteOp, Completed, FailOp, Failed, HeartbeatOp, LogOp, ProgressOp,
    Renewed, SaveStepOp,
};
use crate::model::{FinishedBatch, NewRun};
use crate::queue::{
    self, Cancelled, EnqueueManyOp, ExpireLeasesOfOp, IdOp, LeasesExpired, PurgeOp, Purged,
    Retriggered, RunDeleted,
};
use crate::queues::{self, QueueOp, QueuePaused};
use crate::run::Enqueued;
use crate::schedule::{
    self, FireSchedulesOp, FiredSchedules, ScheduleDeleted, ScheduleIdOp, ScheduleOp, ScheduleSet,
};
use crate::search::{self, IndexChange};
use crate::transfer::{self, ImportOp, Imported};
use crate::write::{in_savepoint, Write};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use ts_rs::TS;

/// One write operation. Every operation runs at the group commit's `now`
/// ([`crate::Store::apply`]); none carries a clock of its own.
#[derive(Debug, Deserialize, TS)]
#[serde(tag = "op", content = "args", rename_all = "camelCase")]
pub enum Op {
    /// Create a run (or return the existing one of its idempotency key).
    Enqueue(NewRun),
    /// Create several runs; all or none.
    EnqueueMany(EnqueueManyOp),
    /// Recover expired leases, then lease up to `limit` due runs.
    Claim(ClaimOp),
    /// Renew a lease.
    Heartbeat(HeartbeatOp),
    /// Store a step output.
    SaveStep(SaveStepOp),
    /// Store progress.
    Progress(ProgressOp),
    /// Append a log line.
    Log(LogOp),
    /// Finish a run successfully.
    Complete(CompleteOp),
    /// Record a failed attempt; retried with backoff or failed for good.
    Fail(FailOp),
    /// Cancel a live run.
    Cancel(IdOp),
    /// Delete a run with its labels, steps, logs and history.
    DeleteRun(IdOp),
    /// New run from a finished one.
    Retrigger(IdOp),
    /// Delete terminal runs finished before `olderThan`.
    PurgeRuns(PurgeOp),
    /// Delete terminal batches finished before `olderThan`.
    PurgeBatches(PurgeOp),
    /// Expire every lease now (at open: the previous owner of the file is gone).
    ExpireLeases,
    /// Expire the leases of one process's workers (its owner died or it disconnected).
    ExpireLeasesOf(ExpireLeasesOfOp),
    /// Create a batch and its runs; all or none.
    EnqueueBatch(EnqueueBatchOp),
    /// Cancel a batch's live runs.
    CancelBatch(BatchIdOp),
    /// Repair batch membership.
    ReconcileBatches(ReconcileOp),
    /// Insert runs that keep their ids, states and times (`importRuns`).
    ImportRuns(ImportOp),
    /// Drop the search index triggers for a bulk import ([`search::defer`]).
    DeferSearchIndex,
    /// Recreate them and rebuild the index ([`search::restore`]).
    RestoreSearchIndex,
    /// Store one effect output ([`effect::put`]).
    PutEffect(PutEffectOp),
    /// Delete stored effect outputs ([`effect::delete`]).
    DeleteEffects(DeleteEffectsOp),
    /// Create or replace a cron schedule.
    Schedule(ScheduleOp),
    /// Delete a cron schedule (its runs stay).
    DeleteSchedule(ScheduleIdOp),
    /// Enqueue the runs of the schedule slots due now.
    FireSchedules(FireSchedulesOp),
    /// Stop claiming a queue's runs (durable).
    PauseQueue(QueueOp),
    /// Claim a paused queue's runs again.
    ResumeQueue(QueueOp),
    /// Schedule (or move) an actor's alarm, in its namespace's database.
    SetAlarm(SetAlarmOp),
    /// Remove an actor's alarm.
    DeleteAlarm(DeleteAlarmOp),
    /// The handler of an alarm resolved.
    AlarmDone(AlarmDoneOp),
    /// The handler of an alarm threw.
    AlarmFailed(AlarmFailedOp),
}

impl Op {
    /// Parses one operation object, `{"op": name, "args": {...}}`.
    ///
    /// With `op` first (as the façade writes it) this is one pass. serde
    /// buffers an adjacently tagged enum's content when it comes before the
    /// tag, and a buffered `RawValue` does not deserialize; so an object
    /// with `args` first is read as an envelope and parsed again in order.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if the text is not an object with a known
    /// `op` and the `args` that operation needs, with the right types.
    pub fn parse(text: &str) -> Result<Op> {
        #[derive(Deserialize)]
        struct Envelope<'a> {
            #[serde(borrow)]
            op: &'a RawValue,
            #[serde(borrow, default)]
            args: Option<&'a RawValue>,
        }
        let bad = |e: serde_json::Error| Error::invalid(format!("bad operation: {e}"));
        serde_json::from_str(text).or_else(|first| {
            let Ok(env) = serde_json::from_str::<Envelope<'_>>(text) else {
                return Err(bad(first));
            };
            let ordered = match env.args {
                Some(args) => format!(r#"{{"op":{},"args":{}}}"#, env.op.get(), args.get()),
                None => format!(r#"{{"op":{}}}"#, env.op.get()),
            };
            serde_json::from_str(&ordered).map_err(bad)
        })
    }

    /// The alarm operation this is, if it writes to an alarm namespace's
    /// database rather than the main one.
    pub fn as_alarm(&self) -> Option<AlarmOp<'_>> {
        Some(match self {
            Op::SetAlarm(o) => AlarmOp::Set(o),
            Op::DeleteAlarm(o) => AlarmOp::Delete(o),
            Op::AlarmDone(o) => AlarmOp::Done(o),
            Op::AlarmFailed(o) => AlarmOp::Failed(o),
            _ => return None,
        })
    }
}

/// An operation's result (`{}` for the operations that return nothing
/// but success: `saveStep`, `progress`, `log`, `putEffect`).
#[derive(Debug, Serialize, TS)]
#[serde(untagged)]
pub enum OpResult {
    /// `enqueue`.
    Enqueued(Enqueued),
    /// `enqueueMany`.
    EnqueuedMany(Vec<Enqueued>),
    /// `claim`.
    Claimed(Claimed),
    /// `heartbeat`.
    Renewed(Renewed),
    /// `saveStep`, `progress`, `log`, `putEffect`.
    Done(Done),
    /// `complete`.
    Completed(Completed),
    /// `fail`.
    Failed(Failed),
    /// `cancel`.
    Cancelled(Cancelled),
    /// `deleteRun`.
    RunDeleted(RunDeleted),
    /// `retrigger`.
    Retriggered(Retriggered),
    /// `purgeRuns`, `purgeBatches`.
    Purged(Purged),
    /// `expireLeases`.
    LeasesExpired(LeasesExpired),
    /// `enqueueBatch`.
    EnqueuedBatch(EnqueuedBatch),
    /// `cancelBatch`.
    CancelledBatch(CancelledBatch),
    /// `reconcileBatches`.
    Reconciled(Reconciled),
    /// `importRuns`.
    Imported(Imported),
    /// `deferSearchIndex`, `restoreSearchIndex`.
    IndexChange(IndexChange),
    /// `deleteEffects`.
    EffectsDeleted(Deleted),
    /// `schedule`.
    ScheduleSet(ScheduleSet),
    /// `deleteSchedule`.
    ScheduleDeleted(ScheduleDeleted),
    /// `fireSchedules`.
    FiredSchedules(FiredSchedules),
    /// `pauseQueue`, `resumeQueue`.
    QueuePaused(QueuePaused),
    /// `setAlarm`, `deleteAlarm`, `alarmDone`, `alarmFailed`.
    Alarm(AlarmResult),
}

/// The empty result `{}`.
#[derive(Debug, Serialize, TS)]
pub struct Done {}

/// What one operation of a group commit came to.
#[derive(Debug, Serialize, TS)]
#[serde(untagged)]
pub enum Outcome {
    /// The operation committed.
    Ok {
        /// Its result.
        ok: OpResult,
        /// Batches it turned terminal (omitted when none): the façade emits
        /// `batch:*` events from them, once.
        #[serde(rename = "finishedBatches", skip_serializing_if = "Vec::is_empty")]
        #[ts(optional, as = "Option<Vec<FinishedBatch>>")]
        finished_batches: Vec<FinishedBatch>,
    },
    /// The operation was rolled back alone.
    Err {
        /// Why.
        err: ErrorBody,
    },
}

impl Outcome {
    /// A failed operation's outcome.
    pub fn error(e: &Error) -> Outcome {
        Outcome::Err { err: e.into() }
    }
}

/// An error as it crosses the boundary.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// Stable code, e.g. `DURQ_LEASE_LOST` or `SQLITE_FULL`.
    #[ts(type = "string")]
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
    /// SQLite's extended result code, for an SQLite error
    /// (<https://www.sqlite.org/rescode.html#extrc>).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub extended_code: Option<i32>,
}

impl From<&Error> for ErrorBody {
    fn from(e: &Error) -> Self {
        ErrorBody {
            code: e.code(),
            message: e.to_string(),
            extended_code: e.extended_code(),
        }
    }
}

/// Applies one operation of the main database in `w`'s transaction.
///
/// # Errors
/// The operation's error; nothing it wrote survives if the caller rolls its
/// savepoint back. Alarm operations are refused here: [`crate::Store::apply`]
/// sends them to their namespace's database.
pub fn apply(w: &mut Write<'_>, op: &Op) -> Result<OpResult> {
    use OpResult as R;
    let done = |()| R::Done(Done {});
    Ok(match op {
        Op::Enqueue(r) => R::Enqueued(queue::enqueue(w, r)?),
        Op::EnqueueMany(m) => R::EnqueuedMany(queue::enqueue_many(w, m)?),
        Op::Claim(o) => R::Claimed(lease::claim(w, o)?),
        Op::Heartbeat(o) => R::Renewed(lease::heartbeat(w, o)?),
        Op::SaveStep(o) => done(lease::save_step(w, o)?),
        Op::Progress(o) => done(lease::progress(w, o)?),
        Op::Log(o) => done(lease::log(w, o)?),
        Op::Complete(o) => R::Completed(lease::complete(w, o)?),
        Op::Fail(o) => R::Failed(lease::fail(w, o)?),
        Op::Cancel(o) => R::Cancelled(queue::cancel(w, o)?),
        Op::DeleteRun(o) => R::RunDeleted(queue::delete(w, o)?),
        Op::Retrigger(o) => R::Retriggered(queue::retrigger(w, o)?),
        Op::PurgeRuns(o) => R::Purged(queue::purge(w, o)?),
        Op::PurgeBatches(o) => R::Purged(queue::purge_batches(w, o)?),
        Op::ExpireLeases => R::LeasesExpired(queue::expire_leases(w)?),
        Op::ExpireLeasesOf(o) => R::LeasesExpired(queue::expire_leases_of(w, o)?),
        Op::EnqueueBatch(o) => R::EnqueuedBatch(batch::enqueue_batch(w, o)?),
        Op::CancelBatch(o) => R::CancelledBatch(batch::cancel_batch(w, o)?),
        Op::ReconcileBatches(o) => R::Reconciled(batch::reconcile(w, o)?),
        Op::ImportRuns(o) => R::Imported(transfer::import_runs(w, o)?),
        // In a savepoint of their own: trigger DDL does not count as a
        // change, so a half-done defer or restore would not make the group
        // commit replay the batch.
        Op::DeferSearchIndex => {
            let c = w.conn();
            R::IndexChange(in_savepoint(c, || search::defer(c))?)
        }
        Op::RestoreSearchIndex => {
            let c = w.conn();
            R::IndexChange(in_savepoint(c, || search::restore(c))?)
        }
        Op::PutEffect(o) => done(effect::put(w, o)?),
        Op::DeleteEffects(o) => R::EffectsDeleted(effect::delete(w, o)?),
        Op::Schedule(o) => R::ScheduleSet(schedule::set(w, o)?),
        Op::DeleteSchedule(o) => R::ScheduleDeleted(schedule::delete(w, o)?),
        Op::FireSchedules(o) => R::FiredSchedules(schedule::fire(w, o)?),
        Op::PauseQueue(o) => R::QueuePaused(queues::pause(w, o)?),
        Op::ResumeQueue(o) => R::QueuePaused(queues::resume(w, o)?),
        Op::SetAlarm(_) | Op::DeleteAlarm(_) | Op::AlarmDone(_) | Op::AlarmFailed(_) => {
            return Err(Error::invalid(
                "alarm operations are applied to their namespace's database",
            ))
        }
    })
}
