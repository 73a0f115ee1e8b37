// Generated from the Rust types of the durq core by tests/boundary.rs (ts-rs):
// do not edit. `DURQ_BLESS=1 cargo test --test boundary` rewrites it after a
// change to the types; the test fails while this file is out of date.
//
// An operation crosses as `{ op, args }` (`Op`), a batch of them as one
// `core.apply(now, JSON.stringify(ops))`; the answer is one `Outcome` per
// operation. Integers are numbers (times are ms below 2^48).
/* eslint-disable */

/**
 * One write operation. Every operation runs at the group commit's `now`
 * ([`crate::Store::apply`]); none carries a clock of its own.
 */
export type Op = { "op": "enqueue", "args": NewRun } | { "op": "enqueueMany", "args": EnqueueManyOp } | { "op": "claim", "args": ClaimOp } | { "op": "heartbeat", "args": HeartbeatOp } | { "op": "saveStep", "args": SaveStepOp } | { "op": "progress", "args": ProgressOp } | { "op": "log", "args": LogOp } | { "op": "complete", "args": CompleteOp } | { "op": "fail", "args": FailOp } | { "op": "cancel", "args": IdOp } | { "op": "deleteRun", "args": IdOp } | { "op": "retrigger", "args": IdOp } | { "op": "purgeRuns", "args": PurgeOp } | { "op": "purgeBatches", "args": PurgeOp } | { "op": "expireLeases" } | { "op": "expireLeasesOf", "args": ExpireLeasesOfOp } | { "op": "enqueueBatch", "args": EnqueueBatchOp } | { "op": "cancelBatch", "args": BatchIdOp } | { "op": "reconcileBatches", "args": ReconcileOp } | { "op": "importRuns", "args": ImportOp } | { "op": "deferSearchIndex" } | { "op": "restoreSearchIndex" } | { "op": "putEffect", "args": PutEffectOp } | { "op": "deleteEffects", "args": DeleteEffectsOp } | { "op": "schedule", "args": ScheduleOp } | { "op": "deleteSchedule", "args": ScheduleIdOp } | { "op": "fireSchedules", "args": FireSchedulesOp } | { "op": "pauseQueue", "args": QueueOp } | { "op": "resumeQueue", "args": QueueOp } | { "op": "setAlarm", "args": SetAlarmOp } | { "op": "deleteAlarm", "args": DeleteAlarmOp } | { "op": "alarmDone", "args": AlarmDoneOp } | { "op": "alarmFailed", "args": AlarmFailedOp };

/**
 * A new run, as given to `enqueue` (created at the group commit's `now`).
 * Serialized as the run template a schedule stores.
 */
export type NewRun = { 
/**
 * Job name (1..=256 bytes, no NUL).
 */
job: string, 
/**
 * Input, any JSON value.
 */
input: unknown, 
/**
 * Queue name (default `"default"`).
 */
queue?: string | null, 
/**
 * Higher runs first (default 0).
 */
priority?: number | null, 
/**
 * Not before this time, ms since epoch (default: now).
 */
runAt?: number | null, 
/**
 * Labels, string to string.
 */
labels?: { [key in string]: string } | null, 
/**
 * Same job + key returns the existing run.
 */
idempotencyKey?: string | null, 
/**
 * At most one leased run per key.
 */
concurrencyKey?: string | null, 
/**
 * Attempts before failing for good (default 3).
 */
maxAttempts?: number | null, 
/**
 * Retry backoff (default [`Backoff::default`]).
 */
backoff?: Backoff | null, };

/**
 * Retry backoff: delay before attempt `n + 1` after attempt `n` failed is
 * `min(maxMs, initialMs * factor^(n-1))`, reduced by up to `jitter` of itself
 * at random ("exponential backoff and jitter", AWS Architecture Blog, 2015).
 */
export type Backoff = { 
/**
 * First retry delay in milliseconds (default 1000).
 */
initialMs: number, 
/**
 * Growth factor per attempt, >= 1 (default 2).
 */
factor: number, 
/**
 * Upper bound of a delay in milliseconds (default 3 600 000, one hour).
 */
maxMs: number, 
/**
 * Fraction in [0, 1] of the delay removed at random (default 0.25).
 */
jitter: number, };

/**
 * `enqueueMany`: several runs, all or none.
 */
export type EnqueueManyOp = { 
/**
 * The runs.
 */
runs: Array<NewRun>, };

/**
 * `claim`: recover expired leases, then lease up to `limit` due runs.
 */
export type ClaimOp = { 
/**
 * Queue (default `"default"`).
 */
queue?: string | null, 
/**
 * Only runs of these jobs.
 */
jobs: Array<string>, 
/**
 * Identifies the lease holder (`lease_owner`).
 */
workerId: string, 
/**
 * Lease duration, ms (1 ..= 2^31 - 1).
 */
leaseMs: number, 
/**
 * At most this many runs (1 ..= [`MAX_CLAIM`]).
 */
limit: number, };

/**
 * `heartbeat`: renew a lease for `leaseMs` from now.
 */
export type HeartbeatOp = { 
/**
 * Run id.
 */
id: string, 
/**
 * Fencing token from the claim.
 */
token: number, 
/**
 * New lease duration from now, ms.
 */
leaseMs: number, };

/**
 * `saveStep`: store a step's output (the first one stored for a name wins).
 */
export type SaveStepOp = { 
/**
 * Run id.
 */
id: string, 
/**
 * Fencing token.
 */
token: number, 
/**
 * Step name (1..=256 bytes, no NUL), unique within the run.
 */
name: string, 
/**
 * Output JSON.
 */
output: unknown, };

/**
 * `progress`: store the run's latest progress value.
 */
export type ProgressOp = { 
/**
 * Run id.
 */
id: string, 
/**
 * Fencing token.
 */
token: number, 
/**
 * Progress JSON.
 */
progress: unknown, };

/**
 * `log`: append a log line to the run.
 */
export type LogOp = { 
/**
 * Run id.
 */
id: string, 
/**
 * Fencing token.
 */
token: number, 
/**
 * Level, e.g. `info` (default).
 */
level?: string | null, 
/**
 * Text (no NUL).
 */
message: string, };

/**
 * `complete`: finish a run successfully.
 */
export type CompleteOp = { 
/**
 * Run id.
 */
id: string, 
/**
 * Fencing token.
 */
token: number, 
/**
 * Output JSON.
 */
output: unknown, };

/**
 * `fail`: record a failed attempt; retried with backoff or failed for good.
 */
export type FailOp = { 
/**
 * Run id.
 */
id: string, 
/**
 * Fencing token.
 */
token: number, 
/**
 * What went wrong.
 */
error: RunError, 
/**
 * In [0, 1): picks the jitter (default 0).
 */
random: number, 
/**
 * `false` fails the run for good whatever attempts are left.
 */
retryable?: boolean | null, };

/**
 * An error recorded on a run.
 */
export type RunError = { 
/**
 * The error's class name, e.g. `TypeError`.
 */
name?: string | null, 
/**
 * Its message.
 */
message: string, 
/**
 * Its stack trace, if any.
 */
stack?: string | null, };

/**
 * `cancel`, `deleteRun`, `retrigger`: the run they act on.
 */
export type IdOp = { 
/**
 * Run id.
 */
id: string, };

/**
 * `purgeRuns`, `purgeBatches`.
 */
export type PurgeOp = { 
/**
 * Terminal runs (batches) finished before this time (ms) are deleted.
 */
olderThan: number, 
/**
 * At most this many (default: all).
 */
limit?: number | null, };

/**
 * `expireLeasesOf`: the process whose workers' ids start with
 * `ownerPrefix` is gone.
 */
export type ExpireLeasesOfOp = { 
/**
 * Prefix of the lease owners (worker ids) whose leases expire now:
 * the process's `workerId` followed by `:` (its workers are
 * `<workerId>:w<n>`). 1 to 512 bytes.
 */
ownerPrefix: string, };

/**
 * `enqueueBatch`: a batch and all its runs, in one operation (all or none).
 */
export type EnqueueBatchOp = { 
/**
 * Queue of the batch and of every run in it (default `"default"`).
 */
queue?: string | null, 
/**
 * The runs (1 or more). A run's `queue`, if given, must be the batch's.
 */
runs: Array<NewRun>, 
/**
 * Labels of the batch (not copied onto its runs).
 */
labels?: { [key in string]: string } | null, 
/**
 * If a batch with this key exists, it is returned instead (`created: false`).
 */
idempotencyKey?: string | null, };

/**
 * `cancelBatch`.
 */
export type BatchIdOp = { 
/**
 * Batch id.
 */
id: string, };

/**
 * `reconcileBatches`.
 */
export type ReconcileOp = { 
/**
 * A member whose batch row is missing is dropped only once it was added
 * at least this long ago, ms (0 ..= 2^31 - 1; default
 * [`DEFAULT_GRACE_MS`]).
 */
graceMs?: number | null, };

/**
 * `importRuns`: one chunk of runs, inserted in the operation's savepoint.
 */
export type ImportOp = { 
/**
 * The runs (1 ..= [`MAX_IMPORT_CHUNK`]), each an [`ImportRun`] object,
 * parsed one by one so an error names the run.
 */
runs: unknown[], 
/**
 * Conflict policy (default `error`).
 */
onConflict: OnConflict, 
/**
 * Index in the whole import of `runs[0]`, for error messages.
 */
offset: number, };

/**
 * What to do with a run whose id (or job and idempotency key) is stored
 * already.
 */
export type OnConflict = "error" | "skip";

/**
 * `putEffect`: store (or replace) one effect output.
 */
export type PutEffectOp = { 
/**
 * Effect name (1..=256 bytes, no NUL).
 */
name: string, 
/**
 * Version of the effect's output schema, 0..=[`MAX_VERSION`].
 */
version: number, 
/**
 * The input's canonical JSON text; only its SHA-256 is stored.
 */
input: string, 
/**
 * Output JSON.
 */
output: unknown, 
/**
 * When the output was computed, ms (stored as `created_at`; default
 * `now`). The façade's `maxAgeMs` counts from it, in memory and here alike.
 */
at?: number | null, };

/**
 * `deleteEffects`: drop stored outputs, of one effect or of all.
 */
export type DeleteEffectsOp = { 
/**
 * Only this effect's outputs; all effects when absent.
 */
name?: string | null, };

/**
 * `setAlarm`: schedule (or move) the actor's alarm.
 */
export type SetAlarmOp = { 
/**
 * Namespace.
 */
namespace: string, 
/**
 * Actor id (1..=256 bytes, no NUL).
 */
actorId: string, 
/**
 * When it fires, ms since the epoch, > 0 (a past time is raised to
 * now and fires at once).
 */
time: number, };

/**
 * `deleteAlarm`: remove the actor's alarm, if any.
 */
export type DeleteAlarmOp = { 
/**
 * Namespace.
 */
namespace: string, 
/**
 * Actor id.
 */
actorId: string, };

/**
 * `alarmDone`: the handler of alarm `version` resolved.
 */
export type AlarmDoneOp = { 
/**
 * Namespace.
 */
namespace: string, 
/**
 * Actor id.
 */
actorId: string, 
/**
 * `version` of the alarm that fired.
 */
version: number, };

/**
 * `alarmFailed`: the handler of alarm `version` threw.
 */
export type AlarmFailedOp = { 
/**
 * Namespace.
 */
namespace: string, 
/**
 * Actor id.
 */
actorId: string, 
/**
 * `version` of the alarm that fired.
 */
version: number, 
/**
 * In [0, 1): picks the jitter.
 */
random: number, };

/**
 * `schedule`: create the schedule `id`, or replace it.
 */
export type ScheduleOp = { 
/**
 * Schedule id (1..=[`MAX_SCHEDULE_ID_BYTES`] bytes, no NUL).
 */
id: string, 
/**
 * Cron expression ([`CronSchedule::parse`]).
 */
cron: string, 
/**
 * IANA time zone the expression is read in (default `"UTC"`).
 */
timezone?: string | null, 
/**
 * Catch-up policy (default `latest`).
 */
catchUp?: CatchUp | null, 
/**
 * The run each slot makes; `runAt` and `idempotencyKey` are the slot's.
 */
run: NewRun, };

/**
 * What a schedule does about slots that came due while nothing fired them.
 */
export type CatchUp = "latest" | "all" | "none";

/**
 * `deleteSchedule`.
 */
export type ScheduleIdOp = { 
/**
 * Schedule id.
 */
id: string, };

/**
 * `fireSchedules`: fire the slots due at the commit's `now`.
 */
export type FireSchedulesOp = { 
/**
 * At most this many schedules, earliest due first (1 ..= [`FIRE_LIMIT`], default [`FIRE_LIMIT`]).
 */
limit?: number | null, };

/**
 * `pauseQueue`, `resumeQueue`.
 */
export type QueueOp = { 
/**
 * Queue name (default `"default"`).
 */
queue?: string | null, };

/**
 * What one operation of a group commit came to.
 */
export type Outcome = { 
/**
 * Its result.
 */
ok: OpResult, 
/**
 * Batches it turned terminal (omitted when none): the façade emits
 * `batch:*` events from them, once.
 */
finishedBatches?: Array<FinishedBatch>, } | { 
/**
 * Why.
 */
err: ErrorBody, };

/**
 * An error as it crosses the boundary.
 */
export type ErrorBody = { 
/**
 * Stable code, e.g. `DURQ_LEASE_LOST` or `SQLITE_FULL`.
 */
code: string, 
/**
 * Human-readable message.
 */
message: string, 
/**
 * SQLite's extended result code, for an SQLite error
 * (<https://www.sqlite.org/rescode.html#extrc>).
 */
extendedCode?: number, };

/**
 * An operation's result (`{}` for the operations that return nothing
 * but success: `saveStep`, `progress`, `log`, `putEffect`).
 */
export type OpResult = Enqueued | Array<Enqueued> | Claimed | Renewed | Done | Completed | Failed | Cancelled | RunDeleted | Retriggered | Purged | LeasesExpired | EnqueuedBatch | CancelledBatch | Reconciled | Imported | IndexChange | Deleted | ScheduleSet | ScheduleDeleted | FiredSchedules | QueuePaused | AlarmResult;

/**
 * The empty result `{}`.
 */
export type Done = Record<symbol, never>;

/**
 * Result of `enqueue` (and of each run of `enqueueMany` and
 * `enqueueBatch`).
 */
export type Enqueued = { 
/**
 * The run's id.
 */
id: string, 
/**
 * `false` when an existing run with the same job and idempotency key
 * was returned instead of creating one.
 */
created: boolean, 
/**
 * The run's status.
 */
status: Status, };

/**
 * Result of `claim`.
 */
export type Claimed = { 
/**
 * Runs now leased to the caller.
 */
runs: Array<ClaimedRun>, 
/**
 * Runs whose lease had expired, recovered by this claim, with their new
 * status (`pending` to retry, `failed` when attempts are used up).
 */
expired: Array<Expired>, };

/**
 * A run handed to a worker by `claim`.
 */
export type ClaimedRun = { 
/**
 * Run id.
 */
id: string, 
/**
 * Job name.
 */
job: string, 
/**
 * Queue.
 */
queue: string, 
/**
 * Input JSON.
 */
input: unknown, 
/**
 * This attempt's number, 1-based.
 */
attempt: number, 
/**
 * Attempt limit.
 */
maxAttempts: number, 
/**
 * Fencing token: every write by the holder must carry it.
 */
token: number, 
/**
 * ms.
 */
leaseExpiresAt: number, 
/**
 * Labels JSON.
 */
labels: unknown, 
/**
 * Stored step outputs of earlier attempts, by step name.
 */
steps: Record<string, unknown>, };

/**
 * A run recovered from an expired lease.
 */
export type Expired = { 
/**
 * Run id.
 */
id: string, 
/**
 * New status.
 */
status: Status, };

/**
 * Result of `heartbeat`.
 */
export type Renewed = { 
/**
 * The lease's new expiry, ms; `null` when the run was cancelled.
 */
leaseExpiresAt: number | null, 
/**
 * The run was cancelled while this holder had it: stop the handler.
 */
cancelRequested: boolean, };

/**
 * Result of `complete`: `completed`, or `cancelled` when the run was
 * cancelled under its holder (its lease and concurrency key are released).
 */
export type Completed = { 
/**
 * The run's status now.
 */
status: Status, };

/**
 * Result of `fail`.
 */
export type Failed = { 
/**
 * `pending` (to be retried at `runAt`), `failed`, or `cancelled` when
 * the run was cancelled under its holder.
 */
status: Status, 
/**
 * The attempt that failed (0 for a cancelled run).
 */
attempt: number, 
/**
 * When the retry is due, ms.
 */
runAt: number | null, };

/**
 * Result of `cancel`.
 */
export type Cancelled = { 
/**
 * `cancelled`.
 */
status: Status, 
/**
 * The status it had (`pending` or `leased`).
 */
previous: Status, };

/**
 * Result of `deleteRun`.
 */
export type RunDeleted = { 
/**
 * Always `true` (a missing run is `DURQ_NOT_FOUND`).
 */
deleted: boolean, };

/**
 * Result of `retrigger`.
 */
export type Retriggered = { 
/**
 * Id of the new run.
 */
id: string, };

/**
 * Result of `purgeRuns` and `purgeBatches`.
 */
export type Purged = { 
/**
 * Rows deleted.
 */
deleted: number, };

/**
 * Result of `expireLeases`.
 */
export type LeasesExpired = { 
/**
 * Leases made due now.
 */
expired: number, };

/**
 * Result of `enqueueBatch`.
 */
export type EnqueuedBatch = { 
/**
 * The batch id.
 */
id: string, 
/**
 * `false` when an existing batch with the same idempotency key was
 * returned (nothing was written).
 */
created: boolean, 
/**
 * The batch's state.
 */
state: BatchState, 
/**
 * Its runs, in the order given (for an existing batch: in creation order).
 */
runs: Array<Enqueued>, };

/**
 * Result of `cancelBatch`.
 */
export type CancelledBatch = { 
/**
 * The batch's state after the cancellation.
 */
state: BatchState, 
/**
 * The runs it cancelled (a leased one's handler is told to stop).
 */
runs: Array<CancelledRun>, };

/**
 * A run cancelled by `cancelBatch`.
 */
export type CancelledRun = { 
/**
 * Run id.
 */
id: string, 
/**
 * Its status before (`pending` or `leased`).
 */
previous: Status, };

/**
 * Result of [`reconcile`]: what it changed.
 */
export type Reconciled = { 
/**
 * Membership re-added for active batches that had none.
 */
added: Array<Member>, 
/**
 * Membership dropped because the batch is terminal (or in another queue).
 */
droppedTerminal: Array<Member>, 
/**
 * Membership dropped because the batch row has been missing for longer
 * than the grace period.
 */
droppedMissing: Array<Member>, 
/**
 * Members whose batch row is missing, kept because they are younger
 * than the grace period.
 */
keptMissing: number, };

/**
 * A membership row, as reported by [`reconcile`].
 */
export type Member = { 
/**
 * Queue of the membership row.
 */
queue: string, 
/**
 * Batch id.
 */
batchId: string, };

/**
 * Result of `importRuns`.
 */
export type Imported = { 
/**
 * Runs stored.
 */
imported: number, 
/**
 * Runs skipped because they were stored already (`onConflict: skip`).
 */
skipped: number, };

/**
 * Result of [`defer`] and [`restore`].
 */
export type IndexChange = { 
/**
 * Whether this call changed anything (`false`: already in that state).
 */
changed: boolean, 
/**
 * Triggers dropped or recreated.
 */
triggers: number, };

/**
 * Result of `deleteEffects`.
 */
export type Deleted = { 
/**
 * Outputs deleted.
 */
deleted: number, };

/**
 * The result of an alarm operation.
 */
export type AlarmResult = AlarmSet | AlarmDeleted | FailOutcome;

/**
 * Result of `setAlarm`.
 */
export type AlarmSet = { 
/**
 * When it fires, ms: the time asked, or now if that was in the past.
 */
scheduledTime: number, };

/**
 * Result of `deleteAlarm` and `alarmDone`.
 */
export type AlarmDeleted = { 
/**
 * Whether an alarm was deleted (`alarmDone`: `false` when it was set
 * anew while its handler ran).
 */
deleted: boolean, };

/**
 * What `alarmFailed` did.
 */
export type FailOutcome = { "outcome": "retry", 
/**
 * Failures so far, 1..=[`MAX_RETRIES`].
 */
retryCount: number, 
/**
 * When it fires again, ms.
 */
retryAt: number, } | { "outcome": "abandoned", 
/**
 * Failures in all (`MAX_RETRIES + 1`).
 */
retryCount: number, } | { "outcome": "superseded" };

/**
 * Result of `schedule`.
 */
export type ScheduleSet = { 
/**
 * `false` when a schedule with this id was replaced.
 */
created: boolean, 
/**
 * Its next slot, ms (`null`: the expression matches no later time).
 */
nextAt: number | null, };

/**
 * Result of `deleteSchedule`.
 */
export type ScheduleDeleted = { 
/**
 * Whether a schedule with that id existed.
 */
deleted: boolean, };

/**
 * Result of `fireSchedules`.
 */
export type FiredSchedules = { 
/**
 * The slots fired, in schedule then slot order.
 */
fired: Array<FiredSlot>, 
/**
 * Schedules that stopped.
 */
stopped: Array<StoppedSchedule>, 
/**
 * More schedules were due than `limit`: fire again.
 */
more: boolean, };

/**
 * One slot fired.
 */
export type FiredSlot = { 
/**
 * The schedule.
 */
scheduleId: string, 
/**
 * The slot, ms (the run's `runAt`).
 */
slotAt: number, 
/**
 * The run made for it (or found by its idempotency key).
 */
runId: string, 
/**
 * `false` when the run already existed.
 */
created: boolean, 
/**
 * The run's job.
 */
job: string, 
/**
 * The run's queue.
 */
queue: string, };

/**
 * A stored schedule that can no longer be fired (its expression or time
 * zone no longer parses, e.g. a zone removed from the IANA database): its
 * `next_at` is cleared, so it is kept but stops.
 */
export type StoppedSchedule = { 
/**
 * The schedule.
 */
scheduleId: string, 
/**
 * Why.
 */
message: string, };

/**
 * Result of `pauseQueue` and `resumeQueue`.
 */
export type QueuePaused = { 
/**
 * Whether the queue is paused now.
 */
paused: boolean, 
/**
 * Whether this call changed it.
 */
changed: boolean, };

/**
 * A batch that turned terminal during an operation; the operation's outcome
 * lists these under `finishedBatches` (the façade emits `batch:*` events
 * from them, once: a batch turns terminal in exactly one transaction).
 */
export type FinishedBatch = { 
/**
 * Batch id.
 */
id: string, 
/**
 * Its queue.
 */
queue: string, 
/**
 * Its terminal state.
 */
state: BatchState, 
/**
 * Its final run counts.
 */
counts: BatchCounts, };

/**
 * Status of a run. `pending` and `leased` are live; the rest are terminal.
 */
export type Status = "pending" | "leased" | "completed" | "failed" | "cancelled";

/**
 * A run as read back.
 */
export type Run = { 
/**
 * UUIDv7.
 */
id: string, 
/**
 * Job name.
 */
job: string, 
/**
 * Queue name.
 */
queue: string, 
/**
 * Status.
 */
status: Status, 
/**
 * Priority (higher first).
 */
priority: number, 
/**
 * Due time, ms.
 */
runAt: number, 
/**
 * ms.
 */
createdAt: number, 
/**
 * ms.
 */
updatedAt: number, 
/**
 * First lease, ms.
 */
startedAt: number | null, 
/**
 * Terminal transition, ms.
 */
finishedAt: number | null, 
/**
 * Input JSON.
 */
input: unknown, 
/**
 * Output JSON of a completed run.
 */
output: unknown, 
/**
 * Last error (`{name, message, stack}`).
 */
error: unknown, 
/**
 * Labels.
 */
labels: unknown, 
/**
 * Idempotency key.
 */
idempotencyKey: string | null, 
/**
 * Concurrency key.
 */
concurrencyKey: string | null, 
/**
 * Attempts started so far.
 */
attempt: number, 
/**
 * Attempt limit.
 */
maxAttempts: number, 
/**
 * Last progress JSON.
 */
progress: unknown, 
/**
 * Lease expiry of a leased run, ms.
 */
leaseExpiresAt: number | null, 
/**
 * Holder of the lease.
 */
leaseOwner: string | null, 
/**
 * Run this one was retriggered from.
 */
retriedFrom: string | null, 
/**
 * Batch the run belongs to (made by `enqueueBatch`).
 */
batchId: string | null, 
/**
 * Retry backoff (`{initialMs, factor, maxMs, jitter}`).
 */
backoff: unknown, };

/**
 * Filter of `listRuns`.
 */
export type RunFilter = { 
/**
 * Job name.
 */
job?: string | null, 
/**
 * Status.
 */
status?: Status | null, 
/**
 * Queue.
 */
queue?: string | null, 
/**
 * All of these labels (ANDed).
 */
labels?: { [key in string]: string } | null, 
/**
 * created_at >= this, ms.
 */
createdAfter?: number | null, 
/**
 * created_at < this, ms.
 */
createdBefore?: number | null, 
/**
 * Page size, 1..=1000 (default 50).
 */
limit?: number | null, 
/**
 * `nextCursor` of the previous page.
 */
cursor?: string | null, 
/**
 * Runs of this batch.
 */
batchId?: string | null, 
/**
 * Full-text search over the job name, the string values of input and
 * output, the error message and the label values (see
 * [`crate::search`]); combines with every other filter.
 */
search?: string | null, 
/**
 * How `search` is read (default: plain words).
 */
searchSyntax?: SearchSyntax | null, 
/**
 * Order of the page (default newest first; `relevance` needs `search`).
 */
order?: RunOrder | null, };

/**
 * A page of runs, newest first.
 */
export type RunPage = { 
/**
 * The runs.
 */
runs: Array<Run>, 
/**
 * Pass as `cursor` for the next page; `null` on the last page.
 */
nextCursor: string | null, };

/**
 * How `search` text is read.
 */
export type SearchSyntax = "words" | "fts5";

/**
 * Order of a page of runs.
 */
export type RunOrder = "newest" | "relevance";

/**
 * State of a batch. `active` while any of its runs can still change; then
 * terminal: `failed` if any run failed, else `completed` if every run
 * completed, else `cancelled`.
 */
export type BatchState = "active" | "completed" | "failed" | "cancelled";

/**
 * Per-status run counts of a batch.
 */
export type BatchCounts = { 
/**
 * Runs in the batch (a pending run deleted by `deleteRun` leaves it).
 */
total: number, 
/**
 * Pending runs.
 */
pending: number, 
/**
 * Leased runs.
 */
leased: number, 
/**
 * Completed runs.
 */
completed: number, 
/**
 * Failed runs.
 */
failed: number, 
/**
 * Cancelled runs.
 */
cancelled: number, };

/**
 * A batch as read back.
 */
export type Batch = { 
/**
 * UUIDv7 (time-ordered, from the same generator as run ids).
 */
id: string, 
/**
 * Queue of the batch and its runs.
 */
queue: string, 
/**
 * State.
 */
state: BatchState, 
/**
 * Labels JSON.
 */
labels: unknown, 
/**
 * Idempotency key.
 */
idempotencyKey: string | null, 
/**
 * Run counts by status.
 */
counts: BatchCounts, 
/**
 * ms.
 */
createdAt: number, 
/**
 * Last count or state change, ms.
 */
updatedAt: number, 
/**
 * When it turned terminal, ms.
 */
finishedAt: number | null, };

/**
 * Filter of `listBatches`.
 */
export type BatchFilter = { 
/**
 * Queue.
 */
queue?: string | null, 
/**
 * State.
 */
state?: BatchState | null, 
/**
 * Page size, 1..=1000 (default 50).
 */
limit?: number | null, 
/**
 * `nextCursor` of the previous page.
 */
cursor?: string | null, };

/**
 * A page of batches, newest first.
 */
export type BatchPage = { 
/**
 * The batches.
 */
batches: Array<Batch>, 
/**
 * Pass as `cursor` for the next page; `null` on the last page.
 */
nextCursor: string | null, };

/**
 * A stored effect output, as [`get`] returns it. Serialized as
 * `{"version":N,"createdAt":MS,"output":<output verbatim>}`, in this field order: the
 * façade cuts the output's text out of it without parsing it again
 * (pinned by `tests/effects.rs`).
 */
export type StoredEffect = { 
/**
 * The version that wrote it.
 */
version: number, 
/**
 * When it was written (the `now` of its `putEffect`), ms; the façade's
 * `maxAgeMs` compares against it.
 */
createdAt: number, 
/**
 * Output JSON, verbatim.
 */
output: unknown, };

/**
 * A schedule as read back.
 */
export type Schedule = { 
/**
 * Its id.
 */
id: string, 
/**
 * Cron expression, as given.
 */
cron: string, 
/**
 * IANA time zone.
 */
timezone: string, 
/**
 * Catch-up policy.
 */
catchUp: CatchUp, 
/**
 * Job of its runs.
 */
job: string, 
/**
 * Queue of its runs.
 */
queue: string, 
/**
 * Input of its runs.
 */
input: unknown, 
/**
 * Labels of its runs.
 */
labels: { [key in string]: string }, 
/**
 * Priority of its runs.
 */
priority: number, 
/**
 * Concurrency key of its runs.
 */
concurrencyKey: string | null, 
/**
 * Attempt limit of its runs (`null`: the default, 3).
 */
maxAttempts: number | null, 
/**
 * The earliest slot not fired yet, ms (`null`: it fires no more).
 */
nextAt: number | null, 
/**
 * The latest slot fired, ms.
 */
lastSlotAt: number | null, 
/**
 * The run made for that slot.
 */
lastRunId: string | null, 
/**
 * ms.
 */
createdAt: number, 
/**
 * Last replaced, ms.
 */
updatedAt: number, };

/**
 * Filter of `listSchedules`.
 */
export type ScheduleFilter = { 
/**
 * `nextCursor` of the previous page.
 */
cursor?: string | null, 
/**
 * Page size (default 50, at most 1000).
 */
limit?: number | null, };

/**
 * A page of schedules, in id order.
 */
export type SchedulePage = { 
/**
 * The schedules.
 */
schedules: Array<Schedule>, 
/**
 * Pass as `cursor` for the next page; `null` on the last page.
 */
nextCursor: string | null, };

/**
 * One queue as `listQueues` reports it.
 */
export type QueueInfo = { 
/**
 * Queue name.
 */
name: string, 
/**
 * Whether it is paused.
 */
paused: boolean, 
/**
 * When it was paused, ms.
 */
pausedAt: number | null, 
/**
 * Its runs by status.
 */
counts: { pending: number; leased: number; completed: number; failed: number; cancelled: number }, };
