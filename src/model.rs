//! The data every layer shares: run status, backoff, runs and their
//! filters, batch states and counts. Operations and their results live with
//! their features (`queue`, `lease`, `batch`, ...) and are gathered in
//! [`crate::op`].
//!
//! Field names are camelCase in JSON. Run inputs and outputs are user JSON
//! kept verbatim as [`RawValue`] text. Every type here derives [`TS`], so
//! `js/src/generated/boundary.ts` declares the same shapes
//! (`tests/boundary.rs` fails when the two drift).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use ts_rs::TS;

/// Status of a run. `pending` and `leased` are live; the rest are terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
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
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, TS)]
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

/// A new run, as given to `enqueue` (created at the group commit's `now`).
/// Serialized as the run template a schedule stores.
#[derive(Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct NewRun {
    /// Job name (1..=256 bytes, no NUL).
    pub job: String,
    /// Input, any JSON value.
    #[ts(type = "unknown")]
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
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
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

/// A run as read back.
#[derive(Debug, Clone, Serialize, TS)]
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
    #[ts(type = "unknown")]
    pub input: Box<RawValue>,
    /// Output JSON of a completed run.
    #[ts(type = "unknown")]
    pub output: Option<Box<RawValue>>,
    /// Last error (`{name, message, stack}`).
    #[ts(type = "unknown")]
    pub error: Option<Box<RawValue>>,
    /// Labels.
    #[ts(type = "unknown")]
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
    #[ts(type = "unknown")]
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
    #[ts(type = "unknown")]
    pub backoff: Box<RawValue>,
}

/// A run handed to a worker by `claim`.
#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ClaimedRun {
    /// Run id.
    pub id: String,
    /// Job name.
    pub job: String,
    /// Queue.
    pub queue: String,
    /// Input JSON.
    #[ts(type = "unknown")]
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
    #[ts(type = "unknown")]
    pub labels: Box<RawValue>,
    /// Stored step outputs of earlier attempts, by step name.
    #[ts(type = "Record<string, unknown>")]
    pub steps: BTreeMap<String, Box<RawValue>>,
}

/// Filter of `listRuns`.
#[derive(Debug, Default, Deserialize, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[ts(optional_fields = nullable)]
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
    pub search_syntax: Option<SearchSyntax>,
    /// Order of the page (default newest first; `relevance` needs `search`).
    #[serde(default)]
    pub order: Option<RunOrder>,
}

/// A page of runs, newest first.
#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct RunPage {
    /// The runs.
    pub runs: Vec<Run>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// How `search` text is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum SearchSyntax {
    /// Each whitespace-separated word must occur (as a word; punctuation
    /// inside a word splits it into a phrase: `tenant-42` matches the
    /// words `tenant` `42` next to each other). Nothing the user types is
    /// read as FTS5 syntax. The default.
    #[default]
    Words,
    /// A raw FTS5 query (`AND`, `OR`, `NOT`, `"phrases"`, `prefix*`,
    /// `column: term`, `NEAR(...)`); columns are `job`, `input`, `output`,
    /// `error`, `labels`. A malformed one fails with `DURQ_INVALID_SEARCH`.
    Fts5,
}

/// Order of a page of runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum RunOrder {
    /// Newest first. With `search`: in the order runs were written to this
    /// database (creation order, except that imported runs count from their
    /// import), which FTS5 yields without sorting.
    #[default]
    Newest,
    /// Best match first by FTS5's bm25 `rank`; only with `search`.
    Relevance,
}

/// State of a batch. `active` while any of its runs can still change; then
/// terminal: `failed` if any run failed, else `completed` if every run
/// completed, else `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum BatchState {
    /// Some run is pending or leased.
    Active,
    /// Every run completed.
    Completed,
    /// At least one run failed for good.
    Failed,
    /// No run failed and not every run completed: some were cancelled (or
    /// every run was deleted before it ran).
    Cancelled,
}

impl BatchState {
    /// The text stored in `batches.state`.
    pub fn as_str(self) -> &'static str {
        match self {
            BatchState::Active => "active",
            BatchState::Completed => "completed",
            BatchState::Failed => "failed",
            BatchState::Cancelled => "cancelled",
        }
    }

    /// Parses the stored text.
    pub fn parse(s: &str) -> Option<BatchState> {
        Some(match s {
            "active" => BatchState::Active,
            "completed" => BatchState::Completed,
            "failed" => BatchState::Failed,
            "cancelled" => BatchState::Cancelled,
            _ => return None,
        })
    }
}

/// Per-status run counts of a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, TS)]
pub struct BatchCounts {
    /// Runs in the batch (a pending run deleted by `deleteRun` leaves it).
    pub total: i64,
    /// Pending runs.
    pub pending: i64,
    /// Leased runs.
    pub leased: i64,
    /// Completed runs.
    pub completed: i64,
    /// Failed runs.
    pub failed: i64,
    /// Cancelled runs.
    pub cancelled: i64,
}

/// A batch that turned terminal during an operation; the operation's outcome
/// lists these under `finishedBatches` (the façade emits `batch:*` events
/// from them, once: a batch turns terminal in exactly one transaction).
#[derive(Debug, Clone, Serialize, TS)]
pub struct FinishedBatch {
    /// Batch id.
    pub id: String,
    /// Its queue.
    pub queue: String,
    /// Its terminal state.
    pub state: BatchState,
    /// Its final run counts.
    pub counts: BatchCounts,
}

/// Run counts by status.
#[derive(Debug, Default, Serialize)]
pub struct Stats {
    /// Pending runs.
    pub pending: i64,
    /// Leased runs.
    pub leased: i64,
    /// Completed runs.
    pub completed: i64,
    /// Failed runs.
    pub failed: i64,
    /// Cancelled runs.
    pub cancelled: i64,
}

impl Stats {
    /// Adds `n` runs of the stored status `status` (an unknown one is ignored).
    pub fn add(&mut self, status: &str, n: i64) {
        match Status::parse(status) {
            Some(Status::Pending) => self.pending += n,
            Some(Status::Leased) => self.leased += n,
            Some(Status::Completed) => self.completed += n,
            Some(Status::Failed) => self.failed += n,
            Some(Status::Cancelled) => self.cancelled += n,
            None => {}
        }
    }
}
