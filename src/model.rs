//! The data that crosses the boundary: operations in, results and runs out.
//!
//! Shapes are documented in `docs/boundary.md`; field names are camelCase in
//! JSON. Run inputs and outputs are user JSON kept verbatim as
//! [`RawValue`] text.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// Status of a run. `pending` and `leased` are live; the rest are terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Waiting to be claimed (possibly delayed until `runAt`).
    Pending,
    /// Claimed by a worker under a lease.
    Leased,
    /// Finished successfully.
    Completed,
    /// Failed for good (attempts used up, or a non-retryable error).
    Failed,
    /// Cancelled by `cancel`.
    Cancelled,
}

impl Status {
    /// The text stored in `runs.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Leased => "leased",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }

    /// Parses the stored text.
    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "pending" => Status::Pending,
            "leased" => Status::Leased,
            "completed" => Status::Completed,
            "failed" => Status::Failed,
            "cancelled" => Status::Cancelled,
            _ => return None,
        })
    }

    /// Whether the run can no longer change (completed, failed, cancelled).
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Completed | Status::Failed | Status::Cancelled)
    }
}

/// Retry backoff: delay before attempt `n + 1` after attempt `n` failed is
/// `min(maxMs, initialMs * factor^(n-1))`, reduced by up to `jitter` of itself
/// at random ("exponential backoff and jitter", AWS Architecture Blog, 2015).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Backoff {
    /// First retry delay in milliseconds (default 1000).
    #[serde(default = "Backoff::default_initial")]
    pub initial_ms: f64,
    /// Growth factor per attempt, >= 1 (default 2).
    #[serde(default = "Backoff::default_factor")]
    pub factor: f64,
    /// Upper bound of a delay in milliseconds (default 3 600 000, one hour).
    #[serde(default = "Backoff::default_max")]
    pub max_ms: f64,
    /// Fraction in [0, 1] of the delay removed at random (default 0.25).
    #[serde(default = "Backoff::default_jitter")]
    pub jitter: f64,
}

impl Backoff {
    fn default_initial() -> f64 {
        1000.0
    }
    fn default_factor() -> f64 {
        2.0
    }
    fn default_max() -> f64 {
        3_600_000.0
    }
    fn default_jitter() -> f64 {
        0.25
    }

    /// Delay in ms after failed attempt `attempt` (1-based), with `random`
    /// in `[0, 1)` choosing the jitter.
    pub fn delay_ms(&self, attempt: i64, random: f64) -> i64 {
        if self.initial_ms <= 0.0 {
            return 0;
        }
        let exp = (attempt.max(1) - 1).min(1000) as i32;
        let grown = self.initial_ms * self.factor.powi(exp);
        let base = if grown.is_finite() {
            grown.min(self.max_ms)
        } else {
            self.max_ms
        };
        let r = if random.is_finite() {
            random.clamp(0.0, 1.0)
        } else {
            0.0
        };
        (base * (1.0 - self.jitter * r)).max(0.0).round() as i64
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial_ms: Self::default_initial(),
            factor: Self::default_factor(),
            max_ms: Self::default_max(),
            jitter: Self::default_jitter(),
        }
    }
}

/// A new run, as given to `enqueue`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewRun {
    /// Clock, ms (required for a lone `enqueue`; ignored inside `enqueueMany`).
    #[serde(default)]
    pub now: Option<i64>,
    /// Job name (1..=256 bytes, no NUL).
    pub job: String,
    /// Input, any JSON value.
    pub input: Box<RawValue>,
    /// Queue name (default `"default"`).
    #[serde(default)]
    pub queue: Option<String>,
    /// Higher runs first (default 0).
    #[serde(default)]
    pub priority: Option<i64>,
    /// Not before this time, ms since epoch (default: now).
    #[serde(default)]
    pub run_at: Option<i64>,
    /// Labels, string to string.
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    /// Same job + key returns the existing run.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// At most one leased run per key.
    #[serde(default)]
    pub concurrency_key: Option<String>,
    /// Attempts before failing for good (default 3).
    #[serde(default)]
    pub max_attempts: Option<i64>,
    /// Retry backoff (default [`Backoff::default`]).
    #[serde(default)]
    pub backoff: Option<Backoff>,
}

/// An error recorded on a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunError {
    /// The error's class name, e.g. `TypeError`.
    #[serde(default)]
    pub name: Option<String>,
    /// Its message.
    #[serde(default)]
    pub message: String,
    /// Its stack trace, if any.
    #[serde(default)]
    pub stack: Option<String>,
}

/// One write operation (see `docs/boundary.md`). Every operation carries
/// `now`, the caller's clock in ms since the epoch.
///
/// Parsed with [`Op::parse`] in two passes (the `op` tag, then the variant's
/// struct) because serde's internally tagged enums buffer their content and
/// cannot hold [`RawValue`] fields.
#[derive(Debug)]
pub enum Op {
    /// Create a run (or return the existing one for an idempotency key).
    Enqueue(NewRun),
    /// Create several runs; all or none.
    EnqueueMany(EnqueueManyOp),
    /// Recover expired leases, then lease up to `limit` due runs.
    Claim(ClaimOp),
    /// Renew a lease.
    Heartbeat(LeaseOp),
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
    /// Delete a run with its labels, steps and logs.
    DeleteRun(IdOp),
    /// New run from a finished one.
    Retrigger(IdOp),
    /// Delete terminal runs finished before `older_than`.
    PurgeRuns(PurgeOp),
    /// Expire every lease now (at open: the previous owner of the file is gone).
    ExpireLeases(NowOp),
    /// Delete terminal batches finished before `older_than`.
    PurgeBatches(PurgeOp),
    /// Create a batch and its runs; all or none.
    EnqueueBatch(crate::batch::EnqueueBatchOp),
    /// Cancel a batch's live runs.
    CancelBatch(crate::batch::BatchIdOp),
    /// Repair batch membership.
    ReconcileBatches(crate::batch::ReconcileOp),
    /// Insert runs that keep their ids, states and times (`importRuns`).
    ImportRuns(crate::transfer::ImportOp),
    /// Drop the search index triggers for a bulk import (`crate::search::defer`).
    DeferSearchIndex(NowOp),
    /// Recreate them and rebuild the index (`crate::search::restore`).
    RestoreSearchIndex(NowOp),
    /// Store one effect output (`crate::effect::put`).
    PutEffect(crate::effect::PutEffectOp),
    /// Delete stored effect outputs (`crate::effect::delete`).
    DeleteEffects(crate::effect::DeleteEffectsOp),
    /// A write to an alarm namespace's database (`setAlarm`, `deleteAlarm`,
    /// `alarmDone`, `alarmFailed`); applied in that database's transaction.
    Alarm(crate::alarm::AlarmOp),
}

#[derive(Deserialize)]
struct OpTag<'a> {
    #[serde(borrow)]
    op: std::borrow::Cow<'a, str>,
}

impl Op {
    /// Parses one operation object.
    ///
    /// # Errors
    /// [`crate::Error::InvalidInput`] if the text is not an object with a known
    /// `op` and the fields that operation needs, with the right types.
    pub fn parse(text: &str) -> crate::Result<Op> {
        use crate::alarm::AlarmOp;
        use serde_json::from_str as p;
        let tag: OpTag = p(text)?;
        Ok(match tag.op.as_ref() {
            "enqueue" => Op::Enqueue(p(text)?),
            "enqueueMany" => Op::EnqueueMany(p(text)?),
            "claim" => Op::Claim(p(text)?),
            "heartbeat" => Op::Heartbeat(p(text)?),
            "saveStep" => Op::SaveStep(p(text)?),
            "progress" => Op::Progress(p(text)?),
            "log" => Op::Log(p(text)?),
            "complete" => Op::Complete(p(text)?),
            "fail" => Op::Fail(p(text)?),
            "cancel" => Op::Cancel(p(text)?),
            "deleteRun" => Op::DeleteRun(p(text)?),
            "retrigger" => Op::Retrigger(p(text)?),
            "purgeRuns" => Op::PurgeRuns(p(text)?),
            "expireLeases" => Op::ExpireLeases(p(text)?),
            "purgeBatches" => Op::PurgeBatches(p(text)?),
            "enqueueBatch" => Op::EnqueueBatch(p(text)?),
            "cancelBatch" => Op::CancelBatch(p(text)?),
            "reconcileBatches" => Op::ReconcileBatches(p(text)?),
            "importRuns" => Op::ImportRuns(p(text)?),
            "deferSearchIndex" => Op::DeferSearchIndex(p(text)?),
            "restoreSearchIndex" => Op::RestoreSearchIndex(p(text)?),
            "putEffect" => Op::PutEffect(p(text)?),
            "deleteEffects" => Op::DeleteEffects(p(text)?),
            "setAlarm" => Op::Alarm(AlarmOp::Set(p(text)?)),
            "deleteAlarm" => Op::Alarm(AlarmOp::Delete(p(text)?)),
            "alarmDone" => Op::Alarm(AlarmOp::Done(p(text)?)),
            "alarmFailed" => Op::Alarm(AlarmOp::Failed(p(text)?)),
            other => {
                return Err(crate::Error::invalid(format!(
                    "unknown operation {other:?}"
                )))
            }
        })
    }
}

/// `enqueueMany`: all runs or none.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnqueueManyOp {
    /// Clock, ms.
    pub now: i64,
    /// The runs (their own `now` is ignored).
    pub runs: Vec<NewRun>,
}

/// `claim`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimOp {
    /// Clock, ms.
    pub now: i64,
    /// Queue (default `"default"`).
    #[serde(default)]
    pub queue: Option<String>,
    /// Only runs of these jobs.
    pub jobs: Vec<String>,
    /// Identifies the lease holder (`lease_owner`).
    pub worker_id: String,
    /// Lease duration, ms (1 ..= 2^31 - 1).
    pub lease_ms: i64,
    /// At most this many runs (1 ..= 1000).
    pub limit: i64,
}

/// `heartbeat`: renew a lease for `lease_ms` from now.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseOp {
    /// Clock, ms.
    pub now: i64,
    /// Run id.
    pub id: String,
    /// Fencing token from the claim.
    pub token: i64,
    /// New lease duration from now, ms.
    pub lease_ms: i64,
}

/// `saveStep`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SaveStepOp {
    /// Clock, ms.
    pub now: i64,
    /// Run id.
    pub id: String,
    /// Fencing token.
    pub token: i64,
    /// Step name (1..=256 bytes, no NUL), unique within the run.
    pub name: String,
    /// Output JSON.
    pub output: Box<RawValue>,
}

/// `progress`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressOp {
    /// Clock, ms.
    pub now: i64,
    /// Run id.
    pub id: String,
    /// Fencing token.
    pub token: i64,
    /// Progress JSON.
    pub progress: Box<RawValue>,
}

/// `log`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogOp {
    /// Clock, ms.
    pub now: i64,
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

/// `complete`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompleteOp {
    /// Clock, ms.
    pub now: i64,
    /// Run id.
    pub id: String,
    /// Fencing token.
    pub token: i64,
    /// Output JSON.
    pub output: Box<RawValue>,
}

/// `fail`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailOp {
    /// Clock, ms.
    pub now: i64,
    /// Run id.
    pub id: String,
    /// Fencing token.
    pub token: i64,
    /// What went wrong.
    pub error: RunError,
    /// In [0, 1): picks the jitter.
    #[serde(default)]
    pub random: f64,
    /// `false` fails the run for good whatever attempts are left.
    #[serde(default)]
    pub retryable: Option<bool>,
}

/// `cancel`, `deleteRun`, `retrigger`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdOp {
    /// Clock, ms.
    pub now: i64,
    /// Run id.
    pub id: String,
}

/// `expireLeases`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NowOp {
    /// Clock, ms.
    pub now: i64,
}

/// `purgeRuns`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PurgeOp {
    /// Clock, ms.
    pub now: i64,
    /// Terminal runs finished before this time (ms) are deleted.
    pub older_than: i64,
    /// At most this many runs (default: all).
    #[serde(default)]
    pub limit: Option<i64>,
}

/// A run as read back.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    /// UUIDv7.
    pub id: String,
    /// Job name.
    pub job: String,
    /// Queue name.
    pub queue: String,
    /// Status.
    pub status: Status,
    /// Priority (higher first).
    pub priority: i64,
    /// Due time, ms.
    pub run_at: i64,
    /// ms.
    pub created_at: i64,
    /// ms.
    pub updated_at: i64,
    /// First lease, ms.
    pub started_at: Option<i64>,
    /// Terminal transition, ms.
    pub finished_at: Option<i64>,
    /// Input JSON.
    pub input: Box<RawValue>,
    /// Output JSON of a completed run.
    pub output: Option<Box<RawValue>>,
    /// Last error (`{name, message, stack}`).
    pub error: Option<Box<RawValue>>,
    /// Labels.
    pub labels: Box<RawValue>,
    /// Idempotency key.
    pub idempotency_key: Option<String>,
    /// Concurrency key.
    pub concurrency_key: Option<String>,
    /// Attempts started so far.
    pub attempt: i64,
    /// Attempt limit.
    pub max_attempts: i64,
    /// Last progress JSON.
    pub progress: Option<Box<RawValue>>,
    /// Lease expiry of a leased run, ms.
    pub lease_expires_at: Option<i64>,
    /// Holder of the lease.
    pub lease_owner: Option<String>,
    /// Run this one was retriggered from.
    pub retried_from: Option<String>,
    /// Batch the run belongs to (made by `enqueueBatch`).
    pub batch_id: Option<String>,
    /// Retry backoff (`{initialMs, factor, maxMs, jitter}`).
    pub backoff: Box<RawValue>,
}

/// A run handed to a worker by `claim`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimedRun {
    /// Run id.
    pub id: String,
    /// Job name.
    pub job: String,
    /// Queue.
    pub queue: String,
    /// Input JSON.
    pub input: Box<RawValue>,
    /// This attempt's number, 1-based.
    pub attempt: i64,
    /// Attempt limit.
    pub max_attempts: i64,
    /// Fencing token: every write by the holder must carry it.
    pub token: i64,
    /// ms.
    pub lease_expires_at: i64,
    /// Labels JSON.
    pub labels: Box<RawValue>,
    /// Stored step outputs of earlier attempts, by step name.
    pub steps: BTreeMap<String, Box<RawValue>>,
}

/// Filter of `listRuns`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunFilter {
    /// Job name.
    #[serde(default)]
    pub job: Option<String>,
    /// Status.
    #[serde(default)]
    pub status: Option<Status>,
    /// Queue.
    #[serde(default)]
    pub queue: Option<String>,
    /// All of these labels (ANDed).
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    /// created_at >= this, ms.
    #[serde(default)]
    pub created_after: Option<i64>,
    /// created_at < this, ms.
    #[serde(default)]
    pub created_before: Option<i64>,
    /// Page size, 1..=1000 (default 50).
    #[serde(default)]
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Runs of this batch.
    #[serde(default)]
    pub batch_id: Option<String>,
    /// Full-text search over the job name, the string values of input and
    /// output, the error message and the label values (see
    /// [`crate::search`]); combines with every other filter.
    #[serde(default)]
    pub search: Option<String>,
    /// How `search` is read (default: plain words).
    #[serde(default)]
    pub search_syntax: Option<crate::search::SearchSyntax>,
    /// Order of the page (default newest first; `relevance` needs `search`).
    #[serde(default)]
    pub order: Option<crate::search::RunOrder>,
}

/// A page of runs, newest first.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunPage {
    /// The runs.
    pub runs: Vec<Run>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}
