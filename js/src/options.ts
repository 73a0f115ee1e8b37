/**
 * The options and filters the methods of {@link Durq} take (those of
 * `open` are in `open.ts`, of workers in `worker.ts`, of alarms in
 * `alarms.ts`, of import and export in `transfer.ts`). Types only.
 *
 * @module
 */

import type { Job } from "./job.js";
import type { BatchState, RunStatus } from "./types.js";

/** Options of {@link Durq.enqueue}. */
export interface EnqueueOptions {
  /** Labels to filter runs by in `listRuns`: at most 32; keys of 1 to 64 characters from `A-Z a-z 0-9 _ . : / -`; string values of at most 256 UTF-8 bytes, no NUL. */
  labels?: Record<string, string>;
  /** If a run of the same job with this key exists (in any status), it is returned (`created: false`) instead of a new one. 1 to 256 UTF-8 bytes, no NUL. */
  idempotencyKey?: string;
  /** At most one run with this key is leased at a time (across jobs). 1 to 256 UTF-8 bytes, no NUL. */
  concurrencyKey?: string;
  /** Higher runs are claimed first: a 32-bit integer (default 0). */
  priority?: number;
  /** Not claimed before this time: integer ms since the Unix epoch, or a `Date` (default: now). */
  runAt?: number | Date;
  /** Queue name (default `"default"`); workers work on one queue. */
  queue?: string;
}

/** One item of {@link Durq.enqueueMany}. */
export interface EnqueueItem<I = any> {
  /** A job made by `defineJob`, or its name. */
  job: Job<I, any> | string;
  /** The run's input (JSON-serializable). */
  input: I;
  /** Options, as for `enqueue`. */
  options?: EnqueueOptions;
}

/**
 * One run of {@link Durq.enqueueBatch}: the job, its input and the options
 * of {@link EnqueueOptions}, flat.
 */
export interface BatchRunItem<I = any> extends EnqueueOptions {
  /** A job made by `defineJob`, or its name. */
  job: Job<I, any> | string;
  /** The run's input (JSON-serializable). */
  input: I;
  /** Must be the batch's queue if given (a batch's runs are all in its queue). */
  queue?: string;
}

/** What {@link Durq.enqueueBatch} creates. */
export interface EnqueueBatchSpec {
  /** Queue of the batch and all its runs (default `"default"`). */
  queue?: string;
  /** The runs: at least one. */
  runs: readonly BatchRunItem[];
  /** Labels of the batch itself (same rules as run labels); not copied onto its runs. */
  labels?: Record<string, string>;
  /** If a batch with this key exists (in any state), it is returned (`created: false`) and nothing is written: makes the call safe to retry. 1 to 256 UTF-8 bytes, no NUL. */
  idempotencyKey?: string;
}

/** Filter of {@link Durq.listBatches}. All given fields must match (AND). */
export interface BatchFilter {
  /** Batches of this queue. */
  queue?: string;
  /** Batches in this state, read from the batch rows (authoritative): the walk goes through the queue's history newest first, so a state rare in a long history costs a long walk. For a queue's live batches use {@link Durq.listActiveBatches}. */
  state?: BatchState;
  /** Page size: 1 ..= 1000 (default 50). */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
}

/** Options of {@link Durq.reconcileBatches}. */
export interface ReconcileOptions {
  /** A membership row whose batch row is missing is dropped only once it is at least this old, ms (0 ..= 2^31 - 1; default 60 000). */
  graceMs?: number;
}

/** Filter of {@link Durq.listRuns}. All given fields must match (AND). */
export interface RunFilter {
  /** Runs of this job (a job or its name). */
  job?: Job<any, any> | string;
  /** Runs in this status. */
  status?: RunStatus;
  /** Runs in this queue. */
  queue?: string;
  /** Runs having every one of these labels (served by the label index). */
  labels?: Record<string, string>;
  /** Runs created at or after this time (ms or `Date`). */
  createdAfter?: number | Date;
  /** Runs created before this time (ms or `Date`). */
  createdBefore?: number | Date;
  /** Page size: 1 ..= 1000 (default 50). */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
  /** Runs of this batch (served by the batch's run index, so it drives the query). */
  batchId?: string;
  /**
   * Full-text search (SQLite FTS5) over the job name, the string values of
   * input and output (not their keys or numbers), the error message and the
   * label values; combines with every other filter. By default each word
   * must occur as a word, case- and accent-insensitively (`tenant-42`
   * matches `tenant` then `42`); nothing typed is read as search syntax.
   */
  search?: string;
  /**
   * `"fts5"` reads `search` as an FTS5 query (`AND`/`OR`/`NOT`,
   * `"phrases"`, `prefix*`, `column: term` with columns `job`, `input`,
   * `output`, `error`, `labels`, `NEAR(...)`:
   * https://www.sqlite.org/fts5.html#full_text_query_syntax); a malformed
   * one rejects with `DURQ_INVALID_SEARCH`. Default `"words"`.
   */
  searchSyntax?: "words" | "fts5";
  /**
   * `"newest"` (default): newest first; with `search`, in the order runs
   * were written to this database (imported runs count from their import).
   * `"relevance"` (needs `search`): best match first by FTS5's bm25 rank.
   */
  order?: "newest" | "relevance";
}

/** Options of {@link Durq.waitForRun} and {@link Durq.waitForBatch}. */
export interface WaitOptions {
  /** Give up after this many ms (by the database's clock) with `DURQ_TIMEOUT` (default: wait for ever). */
  timeoutMs?: number;
  /** Re-read the run this often, ms, to see changes made outside this process (default 1000). Changes made by this process are seen at once. */
  pollMs?: number;
}

/** Options of {@link Durq.purgeRuns}. */
export interface PurgeOptions {
  /** Delete terminal runs (completed, failed, cancelled) that finished before this time: ms since the epoch or a `Date`. */
  olderThan: number | Date;
  /** Delete at most this many (default: all). */
  limit?: number;
}
