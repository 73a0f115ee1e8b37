/**
 * The data shapes durq hands back: runs, steps, logs, pages, counts.
 * All times are integer milliseconds since the Unix epoch.
 *
 * @module
 */

/**
 * Status of a run. `pending` and `leased` are live; `completed`, `failed`
 * and `cancelled` are terminal (the run will not change again, except by
 * `deleteRun` or `purgeRuns`).
 */
export type RunStatus = "pending" | "leased" | "completed" | "failed" | "cancelled";

/** Every {@link RunStatus}, in lifecycle order. */
export const RUN_STATUSES: readonly RunStatus[] = Object.freeze(["pending", "leased", "completed", "failed", "cancelled"]);

/** Whether `status` is terminal (`completed`, `failed` or `cancelled`). */
export function isTerminal(status: RunStatus): boolean {
  return status === "completed" || status === "failed" || status === "cancelled";
}

/**
 * An error recorded on a run: what a handler threw (`name`, `message`,
 * `stack` of the `Error`), or `{ name: "LeaseExpired", ... }` when a worker's
 * lease expired.
 */
export interface RunError {
  /** The error's class name, e.g. `"TypeError"`; `null` if unknown. */
  name: string | null;
  /** Its message. */
  message: string;
  /** Its stack trace, if it had one. */
  stack?: string | null;
}

/** A run as read back by {@link Durq.getRun} and {@link Durq.listRuns}. */
export interface Run<I = unknown, O = unknown> {
  /** Run id: a UUIDv7, so ids sort in creation order. */
  id: string;
  /** Name of the job. */
  job: string;
  /** Queue the run is in (default `"default"`). */
  queue: string;
  /** Current status. */
  status: RunStatus;
  /** Higher runs are claimed first (default 0). */
  priority: number;
  /** Not claimed before this time, ms. For a retry, when the next attempt is due. */
  runAt: number;
  /** When the run was enqueued, ms. */
  createdAt: number;
  /** Last change, ms. */
  updatedAt: number;
  /** First lease, ms; `null` if never claimed. */
  startedAt: number | null;
  /** When it became terminal, ms; `null` while live. */
  finishedAt: number | null;
  /** The input given to `enqueue`, as stored (JSON). */
  input: I;
  /** The handler's return value, for a completed run; otherwise `null`. */
  output: O | null;
  /** The last attempt's error, if any (kept on a retried and then completed run too). */
  error: RunError | null;
  /** Labels given to `enqueue`. */
  labels: Record<string, string>;
  /** Idempotency key, if any. */
  idempotencyKey: string | null;
  /** Concurrency key, if any. */
  concurrencyKey: string | null;
  /** Attempts started so far (0 before the first claim). */
  attempt: number;
  /** Attempts allowed before the run fails for good. */
  maxAttempts: number;
  /** Last value given to `step.progress`, or `null`. */
  progress: unknown;
  /** When the current lease expires, ms; `null` unless leased. */
  leaseExpiresAt: number | null;
  /** Id of the worker holding the lease; `null` unless leased. */
  leaseOwner?: string | null;
  /** Id of the run this one was retriggered from, or `null`. */
  retriedFrom: string | null;
  /** Id of the batch the run was enqueued in by `enqueueBatch`, or `null` (a run made by `retrigger` is in no batch). */
  batchId: string | null;
  /** Retry backoff of the run (ms; see `Backoff` of `defineJob`). */
  backoff: { initialMs: number; factor: number; maxMs: number; jitter: number };
}

/**
 * Kinds of {@link RunEvent}: `enqueued` (by `enqueue`, `enqueueMany`,
 * `enqueueBatch`, or `retrigger` with `data.retriedFrom`), `imported` (by
 * `importRuns`, `data.status`), `leased` (an attempt starts), `stepCompleted`
 * (`data.name`), `retried` (an attempt failed or its lease expired:
 * `data.error`, `data.runAt`), `failed` (`data.error`), `completed`,
 * `cancelled` (`data.previous`).
 */
export type RunEventKind = "enqueued" | "imported" | "leased" | "stepCompleted" | "retried" | "failed" | "completed" | "cancelled";

/** One entry of a run's history ({@link Durq.getRunEvents}). */
export interface RunEvent {
  /** What happened. */
  kind: RunEventKind;
  /** When, by the database's clock, ms since the epoch. */
  at: number;
  /** The run's attempt number then (0 before the first claim). */
  attempt: number;
  /** The commit that wrote it: events written by one group commit share it, and it grows with each commit. */
  generation: number;
  /** Details, by kind (see {@link RunEventKind}), or `null`. */
  data: Record<string, unknown> | null;
}

/** State of the full-text index ({@link Durq.getSearchStatus}). */
export interface SearchStatus {
  /** Index maintenance is deferred (an import runs, or one died and the repair failed): search rejects with `DURQ_SEARCH_STALE`. */
  deferred: boolean;
  /** Why the repair at open failed, while still deferred; else `null`. */
  openError: string | null;
}

/** A page of {@link Durq.listRuns}: runs newest first. */
export interface RunPage<I = unknown, O = unknown> {
  /** The runs of this page. */
  runs: Run<I, O>[];
  /** Pass as `cursor` to get the next page; `null` on the last page. */
  nextCursor: string | null;
}

/** A stored step output ({@link Durq.getSteps}). */
export interface StepRecord {
  /** The step's name, as given to `step.run`. */
  name: string;
  /** Its stored output. */
  output: unknown;
  /** The attempt that ran it. */
  attempt: number;
  /** When it was stored, ms. */
  createdAt: number;
}

/** A log line written by `step.log` ({@link Durq.getLogs}). */
export interface LogRecord {
  /** When it was written, ms. */
  at: number;
  /** Level, e.g. `"info"`. */
  level: string;
  /** The text. */
  message: string;
  /** The attempt that wrote it. */
  attempt: number;
}

/** Run counts by status ({@link Durq.stats}). */
export type RunStats = Record<RunStatus, number>;

/**
 * State of a batch. `active` while any of its runs is pending or leased;
 * then terminal, in the same transaction as the run transition that ends
 * it: `failed` if any run failed, else `completed` if every run completed,
 * else `cancelled`.
 */
export type BatchState = "active" | "completed" | "failed" | "cancelled";

/** Every {@link BatchState}. */
export const BATCH_STATES: readonly BatchState[] = Object.freeze(["active", "completed", "failed", "cancelled"]);

/** Run counts of a batch by status ({@link Batch.counts}). */
export interface BatchCounts {
  /** Runs in the batch. A pending run removed by `deleteRun` leaves it; a finished one deleted or purged stays counted. */
  total: number;
  /** Pending runs. */
  pending: number;
  /** Leased runs. */
  leased: number;
  /** Completed runs. */
  completed: number;
  /** Failed runs. */
  failed: number;
  /** Cancelled runs. */
  cancelled: number;
}

/** A batch as read back by {@link Durq.getBatch}, {@link Durq.listBatches} and {@link Durq.listActiveBatches}. */
export interface Batch {
  /** Batch id: a UUIDv7, so ids sort in creation order. */
  id: string;
  /** Queue of the batch and of all its runs. */
  queue: string;
  /** Current state. */
  state: BatchState;
  /** Labels given to `enqueueBatch` (the batch's own; not copied onto its runs). */
  labels: Record<string, string>;
  /** Idempotency key given to `enqueueBatch`, or `null`. */
  idempotencyKey: string | null;
  /** Run counts by status, moved in the same transaction as each run transition. */
  counts: BatchCounts;
  /** When the batch was enqueued, ms. */
  createdAt: number;
  /** Last change of its counts or state, ms. */
  updatedAt: number;
  /** When it turned terminal, ms; `null` while active. */
  finishedAt: number | null;
}

/** A page of {@link Durq.listBatches}: batches newest first. */
export interface BatchPage {
  /** The batches of this page. */
  batches: Batch[];
  /** Pass as `cursor` to get the next page; `null` on the last page. */
  nextCursor: string | null;
}

/** Result of {@link Durq.enqueueBatch}. */
export interface EnqueuedBatch {
  /** The batch id. */
  id: string;
  /** `false` when the batch's `idempotencyKey` matched an existing batch, whose id and runs these are (nothing new was stored). */
  created: boolean;
  /** The batch's state. */
  state: BatchState;
  /** Its runs, in the order given (for an existing batch, in creation order). */
  runs: EnqueueResult[];
}

/** A membership row of `active_batches`, as reported by {@link Durq.reconcileBatches}. */
export interface BatchMember {
  /** Queue of the membership row. */
  queue: string;
  /** The batch id it points to. */
  batchId: string;
}

/** What {@link Durq.reconcileBatches} changed. */
export interface ReconcileResult {
  /** Membership re-added for active batches that had none. */
  added: BatchMember[];
  /** Membership dropped because its batch is terminal (or in another queue). */
  droppedTerminal: BatchMember[];
  /** Membership dropped because its batch row has been missing for at least `graceMs`. */
  droppedMissing: BatchMember[];
  /** Members whose batch row is missing, kept because they are younger than `graceMs`. */
  keptMissing: number;
}

/** Result of {@link Durq.enqueue}. */
export interface EnqueueResult {
  /** The run's id. */
  id: string;
  /** `false` when the idempotency key matched an existing run, whose id this is (nothing new was stored). */
  created: boolean;
  /** The run's status (for an existing run, its current status). */
  status: RunStatus;
}
