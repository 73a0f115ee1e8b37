/**
 * {@link DurqReads}: the read side of an open database, the base class of
 * {@link Durq}. Reads do not go through the write queue: they see what has
 * committed. The waits (`waitForRun`, `waitForBatch`) are reads that settle
 * on a later commit. Each method delegates to `reads.ts` or `waits.ts`.
 * @module
 */

import type { DbContext } from "./context.js";
import type { BatchFilter, RunFilter, WaitOptions } from "./options.js";
import * as reads from "./reads.js";
import type { ExportOptions } from "./transfer.js";
import type { Batch, BatchPage, LogRecord, Run, RunEvent, RunPage, RunStats, SearchStatus, StepRecord } from "./types.js";

/**
 * The reads and waits of an open durq database; {@link Durq} adds the
 * writes, workers, alarms and effects. Not made directly: `open()` returns
 * a {@link Durq}.
 *
 * After `close()` every method rejects with `DURQ_CLOSED`.
 */
export class DurqReads {
  readonly #ctx: DbContext;

  /** @internal Use `open()`. */
  constructor(ctx: DbContext) {
    this.#ctx = ctx;
  }

  /**
   * Reads a run.
   *
   * @throws {DurqError} `DURQ_NOT_FOUND`; `DURQ_CLOSED`.
   */
  getRun<I = unknown, O = unknown>(id: string): Promise<Run<I, O>> {
    return reads.getRun<I, O>(this.#ctx, id);
  }

  /**
   * Lists runs matching `filter`, newest first, one page at a time: pass
   * the returned `nextCursor` as `cursor` for the next page.
   *
   * @example
   * ```ts
   * let cursor: string | undefined;
   * do {
   *   const page = await db.listRuns({ labels: { tenant: "acme" }, status: "failed", cursor });
   *   for (const run of page.runs) console.log(run.id, run.error?.message);
   *   cursor = page.nextCursor ?? undefined;
   * } while (cursor);
   * ```
   *
   * With `search`, runs waiting in the search index's queue are indexed
   * first (a small write of its own; see BENCHMARKS.md).
   *
   * @throws {DurqError} `DURQ_INVALID_INPUT` for an unknown filter field, a
   *   bad label, time, limit, cursor or search; `DURQ_INVALID_SEARCH` for an
   *   FTS5 query that FTS5 rejects; `DURQ_SEARCH_STALE` while an import
   *   holds the index deferred; `SQLITE_*` if indexing the queue fails (a
   *   full disk); `DURQ_CLOSED`.
   */
  listRuns<I = unknown, O = unknown>(filter?: RunFilter): Promise<RunPage<I, O>> {
    return reads.listRuns<I, O>(this.#ctx, filter);
  }

  /**
   * The history of a run, oldest first: one {@link RunEvent} per lifecycle
   * step (`enqueued`, `leased`, `stepCompleted`, `retried`, `failed`,
   * `completed`, `cancelled`, `imported`), each with the generation of the
   * commit that wrote it. Events are written with the commit that made the
   * change (one multi-row insert per commit) and deleted with the run.
   *
   * @returns `[]` for an unknown run
   * @throws {DurqError} `DURQ_INVALID_INPUT` for a bad id; `DURQ_CLOSED`.
   */
  getRunEvents(id: string): Promise<RunEvent[]> {
    return reads.getRunEvents(this.#ctx, id);
  }

  /**
   * Whether full-text search is usable: `deferred` while an import holds
   * index maintenance deferred, or after one died and the repair at open
   * failed (`openError` says why; fix the cause, then
   * {@link Durq.restoreSearchIndex}).
   *
   * @throws {DurqError} `DURQ_CLOSED`.
   */
  getSearchStatus(): Promise<SearchStatus> {
    return reads.getSearchStatus(this.#ctx);
  }

  /**
   * Streams every run out, in id (creation) order, a page at a time, in the
   * shape {@link Durq.importRuns} takes: `importRuns(a.exportRuns())`
   * copies a database's runs into another. Each page is read when the
   * consumer asks for it and sees what has committed by then; a run
   * created meanwhile with a greater id is included. Steps, logs and
   * history are not exported; batches are not (runs keep their `batchId`).
   *
   * @example
   * ```ts
   * for await (const run of db.exportRuns()) out.write(JSON.stringify(run) + "\n");
   * ```
   *
   * @throws {DurqError} `DURQ_INVALID_INPUT` for a bad page size;
   *   `DURQ_CLOSED` (also when the database closes mid-export).
   */
  exportRuns(options?: ExportOptions): AsyncGenerator<Run, void, undefined> {
    return reads.exportRuns(this.#ctx, options);
  }

  /**
   * Reads a batch: its state, run counts by status, labels and times.
   *
   * @throws {DurqError} `DURQ_NOT_FOUND` for an unknown batch id; `DURQ_CLOSED`.
   */
  getBatch(id: string): Promise<Batch> {
    return reads.getBatch(this.#ctx, id);
  }

  /**
   * Lists batches, newest first, one page at a time (pass `nextCursor` as
   * `cursor`). For the live batches of a queue prefer
   * {@link Durq.listActiveBatches}.
   *
   * @throws {DurqError} `DURQ_INVALID_INPUT` for an unknown filter field, a
   *   bad queue, state, limit or cursor; `DURQ_CLOSED`.
   */
  listBatches(filter?: BatchFilter): Promise<BatchPage> {
    return reads.listBatches(this.#ctx, filter);
  }

  /**
   * The active batches of `queue`, oldest first. Read from the
   * `active_batches(queue, batch_id)` membership by primary-key prefix,
   * each member resolved by primary key: the cost grows with the queue's
   * active batches, not with batch history (BENCHMARKS.md). A member whose
   * batch turned terminal is skipped and removed (best effort; a failed
   * removal never fails the read); one whose batch row is missing is
   * skipped and left for {@link Durq.reconcileBatches}.
   *
   * @throws {DurqError} `DURQ_INVALID_INPUT` for a bad queue name; `DURQ_CLOSED`.
   */
  listActiveBatches(queue = "default"): Promise<Batch[]> {
    return reads.listActiveBatches(this.#ctx, queue);
  }

  /**
   * The stored step outputs of a run, in name order (`[]` for none).
   *
   * @throws {DurqError} `DURQ_CLOSED`.
   */
  getSteps(id: string): Promise<StepRecord[]> {
    return reads.getSteps(this.#ctx, id);
  }

  /**
   * The log lines of a run, oldest first (`[]` for none).
   *
   * @throws {DurqError} `DURQ_CLOSED`.
   */
  getLogs(id: string): Promise<LogRecord[]> {
    return reads.getLogs(this.#ctx, id);
  }

  /**
   * Counts runs by status (scans the status index: O(runs)).
   *
   * @throws {DurqError} `DURQ_CLOSED`.
   */
  stats(): Promise<RunStats> {
    return reads.stats(this.#ctx);
  }

  /**
   * Runs SQLite's `PRAGMA integrity_check` and returns its lines: `["ok"]`
   * when the database is sound.
   *
   * @throws {DurqError} `DURQ_CLOSED`.
   */
  integrityCheck(): Promise<string[]> {
    return reads.integrityCheck(this.#ctx);
  }

  /**
   * Resolves with the run once it is terminal (completed, failed or
   * cancelled), at once if it already is. Changes committed by this process
   * are seen immediately; others by re-reading every `pollMs`.
   *
   * @throws {DurqError} `DURQ_TIMEOUT` after `timeoutMs`; `DURQ_NOT_FOUND`
   *   if the run does not exist or is deleted meanwhile; `DURQ_CLOSED` if the
   *   database is (or gets) closed.
   */
  waitForRun<I = unknown, O = unknown>(id: string, options?: WaitOptions): Promise<Run<I, O>> {
    return this.#ctx.waits.run<I, O>(id, options);
  }

  /**
   * Resolves with the batch once it is terminal (`completed`, `failed` or
   * `cancelled`), at once if it already is. Changes committed by this
   * process are seen immediately; others by re-reading every `pollMs`.
   *
   * @throws {DurqError} `DURQ_TIMEOUT` after `timeoutMs`; `DURQ_NOT_FOUND`
   *   if the batch does not exist (or is purged meanwhile); `DURQ_CLOSED` if
   *   the database is (or gets) closed.
   */
  waitForBatch(id: string, options?: WaitOptions): Promise<Batch> {
    return this.#ctx.waits.batch(id, options);
  }
}
