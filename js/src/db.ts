/**
 * {@link Durq}, the handle `open()` makes: each method documented here,
 * delegating to `writes.ts`, `effect-calls.ts` or the database's
 * {@link DbContext}. Its schedules and queue controls are those of its base
 * class, {@link DurqSchedules} (`db-schedules.ts`), and its reads and waits
 * those of that one's, {@link DurqReads} (`db-reads.ts`).
 * @module
 */

import type { AlarmHandler, AlarmHandlerOptions, AlarmNamespace } from "./alarms.js";
import type { CacheStats } from "./cache.js";
import type { Clock } from "./clock.js";
import type { DbContext } from "./context.js";
import type { Effect } from "./effect.js";
import type { DurqEventName, DurqListener } from "./events.js";
import type { Job } from "./job.js";
import type { EnqueueBatchSpec, EnqueueItem, EnqueueOptions, PurgeOptions, ReconcileOptions, WaitOptions } from "./options.js";
import { DurqSchedules } from "./db-schedules.js";
import type { ImportOptions, ImportResult, ImportRun } from "./transfer.js";
import type { BatchState, EnqueuedBatch, EnqueueResult, ReconcileResult, Run, RunStatus } from "./types.js";
import type { Worker, WorkerOptions } from "./worker.js";
import * as writes from "./writes.js";

/**
 * An open durq database. Made by {@link open}.
 *
 * Writes (`enqueue`, `cancel`, ...) go through one serialized write queue:
 * those issued in the same turn of the event loop commit together in one
 * SQLite transaction, each in its own savepoint, and each promise settles
 * after that commit with its own result. Reads (`getRun`, `listRuns`, ...)
 * do not wait for the queue: they see what has committed.
 *
 * After {@link Durq.close} every method rejects with `DURQ_CLOSED`.
 */
export class Durq extends DurqSchedules {
  /** Absolute path of the database file (Node), `opfs:<name>` (browser), or `undefined` for an in-memory database. */
  readonly path: string | undefined;
  /** The clock this database reads time from. */
  readonly clock: Clock;
  readonly #ctx: DbContext;

  /** @internal Use {@link open}. */
  constructor(ctx: DbContext) {
    super(ctx);
    this.#ctx = ctx;
    this.path = ctx.path;
    this.clock = ctx.clock;
  }

  /**
   * `"owner"` if this process writes the database (always, for memory,
   * OPFS and Durable Object storage; for a Node file, the process that
   * opened it first, or took it over), `"client"` if its calls go to the
   * process that owns the file (see the README's "Many processes, one
   * file"). A client becomes the owner when the owner dies.
   */
  get role(): "owner" | "client" {
    return this.#ctx.owns() ? "owner" : "client";
  }

  /** Whether {@link Durq.close} has been called. */
  get closed(): boolean {
    return this.#ctx.closing;
  }

  /**
   * Number of SQLite transactions committed (or attempted) by the write
   * queue so far; operations issued in one tick share one. For tests and
   * diagnostics.
   */
  get transactions(): number {
    return this.#ctx.queue.transactions;
  }

  /**
   * Listens to an event (see {@link DurqEvents}); returns a function that
   * removes the listener. Listeners run after the commit that caused the
   * event; one that throws does not affect the others (the failure is
   * emitted as an `error` event).
   */
  on<E extends DurqEventName>(name: E, listener: DurqListener<E>): () => void {
    return this.#ctx.listen(name, listener);
  }

  /** Removes a listener added by {@link Durq.on}. */
  off<E extends DurqEventName>(name: E, listener: DurqListener<E>): void {
    this.#ctx.events.off(name, listener);
  }

  /**
   * Enqueues a run of `job` with `input`.
   *
   * @param job - a job made by `defineJob`, or the name of one defined in this process
   * @param input - any JSON-serializable value (not `undefined`, functions,
   *   `BigInt`, `NaN`/`Infinity`, `Map`/`Set` or cycles)
   * @returns `{ id, created, status }`; `created: false` when
   *   `idempotencyKey` matched an existing run of the job (its id is returned)
   * @throws {DurqError} `DURQ_INVALID_INPUT` for a non-JSON input or a bad
   *   option; `DURQ_UNKNOWN_JOB` for a name no `defineJob` defined;
   *   `DURQ_CLOSED`; `SQLITE_*` if the commit failed.
   */
  enqueue<I>(job: Job<I, any> | string, input: I, options?: EnqueueOptions): Promise<EnqueueResult> {
    return writes.enqueue(this.#ctx, job, input, options);
  }

  /**
   * Enqueues several runs in one transaction: all are stored, or none (the
   * promise then rejects with the first failure, naming the item).
   *
   * @returns one `{ id, created, status }` per item, in order
   * @throws {DurqError} as {@link Durq.enqueue}; a bad item rejects the whole
   *   call before anything is queued.
   */
  enqueueMany(items: readonly EnqueueItem[]): Promise<EnqueueResult[]> {
    return writes.enqueueMany(this.#ctx, items);
  }

  /**
   * Enqueues a batch: a batch row and all its runs, in one transaction (all
   * or none). The batch is `active` while any of its runs is pending or
   * leased; its state and per-status counts move in the same transaction as
   * each run transition, and it turns `completed` (every run completed),
   * `failed` (any run failed) or `cancelled` once, emitting the matching
   * `batch:*` event. Its runs carry `batchId` and are listed by
   * `listRuns({ batchId })`. A run made by `retrigger` from one of them is
   * not in the batch (a finished batch stays as it ended).
   *
   * @example
   * ```ts
   * const { id } = await db.enqueueBatch({
   *   queue: "thumbnails",
   *   runs: urls.map((url) => ({ job: thumbnail, input: { url }, labels: { tenant: "acme" } })),
   *   idempotencyKey: `album:${albumId}`,
   * });
   * const done = await db.waitForBatch(id, { timeoutMs: 60_000 });
   * ```
   *
   * @returns `{ id, created, state, runs }`: the batch id, `created: false`
   *   when `idempotencyKey` matched an existing batch (its id and runs are
   *   returned), and one `{ id, created, status }` per run
   * @throws {DurqError} `DURQ_INVALID_INPUT` for no runs, a bad item (named
   *   by index), a run naming another queue, bad labels or key;
   *   `DURQ_UNKNOWN_JOB` for a job name no `defineJob` defined; all before
   *   anything is queued. `DURQ_INVALID_STATE` if a run's idempotency key
   *   matches an existing run (a batch holds only runs it creates; nothing
   *   is written). `DURQ_CLOSED`; `SQLITE_*` if the commit failed.
   */
  enqueueBatch(spec: EnqueueBatchSpec): Promise<EnqueuedBatch> {
    return writes.enqueueBatch(this.#ctx, spec);
  }

  /**
   * Cancels a batch: every pending run of it is cancelled, and every leased
   * one too (its handler in this process sees `step.signal` aborted at
   * once; one in another process at its next heartbeat), all in one
   * transaction, which turns the batch terminal (`cancelled`, or `failed`
   * if a run had already failed) and emits its `batch:*` event and one
   * `run:cancelled` per run. Like `cancel`, it does not wait for running
   * handlers to stop: the batch is terminal at once, while their
   * `step.signal` tells them to stop.
   *
   * @returns the batch's new state and the runs cancelled, with the status each had
   * @throws {DurqError} `DURQ_NOT_FOUND` for an unknown batch id;
   *   `DURQ_INVALID_STATE` if the batch is already terminal; `DURQ_CLOSED`.
   */
  cancelBatch(id: string): Promise<{ state: BatchState; runs: { id: string; previous: RunStatus }[] }> {
    return writes.cancelBatch(this.#ctx, id);
  }

  /**
   * Repairs the advisory `active_batches` membership against the batch
   * rows, which are authoritative: re-adds membership of active batches
   * that lack it, drops membership whose batch is terminal, and drops
   * membership whose batch row is missing once it is `graceMs` old (a
   * younger one may belong to a batch being written). Idempotent: a second
   * call right after changes nothing. Reads every batch row (O(batches)):
   * run it as maintenance (say, at start-up or hourly), not per request.
   *
   * @returns what it changed
   * @throws {DurqError} `DURQ_INVALID_INPUT` for a bad `graceMs`; `DURQ_CLOSED`.
   */
  reconcileBatches(options?: ReconcileOptions): Promise<ReconcileResult> {
    return writes.reconcileBatches(this.#ctx, options);
  }

  /**
   * Cancels a pending or leased run. A leased run's handler in this process
   * sees its `step.signal` aborted at once (reason: a `DURQ_CANCELLED`
   * error); one in another process at its next heartbeat. Its later writes
   * are refused.
   *
   * @returns the new status and the one it had
   * @throws {DurqError} `DURQ_NOT_FOUND`; `DURQ_INVALID_STATE` if the run
   *   already finished; `DURQ_CLOSED`.
   */
  cancel(id: string): Promise<{ status: "cancelled"; previous: RunStatus }> {
    return writes.cancel(this.#ctx, id);
  }

  /**
   * Deletes a run with its labels, steps and logs.
   *
   * @throws {DurqError} `DURQ_NOT_FOUND`; `DURQ_INVALID_STATE` if the run is
   *   leased (cancel it first); `DURQ_CLOSED`.
   */
  deleteRun(id: string): Promise<{ deleted: true }> {
    return writes.deleteRun(this.#ctx, id);
  }

  /**
   * Makes a new pending run from a finished one: same job, input, labels,
   * queue, priority, concurrency key and retry policy; no idempotency key;
   * `retriedFrom` set to `id`.
   *
   * @returns the new run's id
   * @throws {DurqError} `DURQ_NOT_FOUND`; `DURQ_INVALID_STATE` if the run is
   *   still pending or leased; `DURQ_CLOSED`.
   */
  retrigger(id: string): Promise<{ id: string }> {
    return writes.retrigger(this.#ctx, id);
  }

  /**
   * Deletes terminal runs (completed, failed, cancelled) that finished
   * before `olderThan`, with their labels, steps and logs, oldest first,
   * and terminal batches that finished before it. Emits no `run:deleted` events. Deletes in transactions of at most
   * {@link PURGE_CHUNK} runs, so other writes interleave with a large purge
   * instead of waiting behind it.
   *
   * @returns how many runs (`deleted`) and batches (`deletedBatches`) were
   *   deleted; `limit` applies to each
   * @throws {DurqError} `DURQ_INVALID_INPUT` for a bad time or limit; `DURQ_CLOSED`.
   */
  purgeRuns(options: PurgeOptions): Promise<{ deleted: number; deletedBatches: number }> {
    return writes.purgeRuns(this.#ctx, options);
  }

  /**
   * Recreates the search index triggers from their snapshot and rebuilds
   * the index (one pass over all runs), if a deferral is pending: what
   * `importRuns` does when it ends and `open` does after a crash. Only
   * needed after a failed repair ({@link Durq.getSearchStatus}).
   *
   * @returns `changed: false` when nothing was deferred
   * @throws {DurqError} `DURQ_INVALID_STATE` while an `importRuns` of this
   *   database runs; `DURQ_CORRUPT` if the snapshot is missing; `SQLITE_*`
   *   if the rebuild fails (the deferral then stays); `DURQ_CLOSED`.
   */
  restoreSearchIndex(): Promise<{ changed: boolean; triggers: number }> {
    return writes.restoreSearchIndex(this.#ctx);
  }

  /**
   * Bulk-inserts runs that keep their ids, states and timestamps: a
   * migration from another queue, or a restore from {@link Durq.exportRuns}.
   * The source is an array or an (async) iterable, read as it is consumed;
   * runs are written in chunks of `chunkSize` (one transaction each, through
   * the write queue, each chunk one multi-row insert per table kept under
   * SQLite's bound-parameter limit). A bad run rejects its chunk, naming
   * its index, before the chunk writes anything; the chunks before it stay.
   *
   * A large import defers full-text index maintenance (see
   * {@link ImportOptions.deferIndex}): the index triggers are snapshotted
   * and dropped, and after the last chunk, also when the import fails,
   * recreated and the index rebuilt once. If the process dies meanwhile,
   * the next `open` repairs the index before any search runs.
   *
   * @example
   * ```ts
   * const r = await dst.importRuns(src.exportRuns(), { onProgress: (p) => console.log(p.imported) });
   * ```
   *
   * @returns `{ imported, skipped, deferred }`
   * @throws {DurqError} `DURQ_INVALID_INPUT` for a bad source, option or
   *   run, or a run stored already under `onConflict: "error"`; whatever
   *   the source or `onProgress` throws; `SQLITE_*` if a commit fails;
   *   `DURQ_CLOSED`.
   */
  importRuns(source: Iterable<ImportRun> | AsyncIterable<ImportRun>, options?: ImportOptions): Promise<ImportResult> {
    return writes.importRuns(this.#ctx, source, options);
  }

  /**
   * Enqueues a run and waits for it to finish (a worker, in this process or
   * not, must run it). `timeoutMs` counts from the call.
   *
   * @returns the terminal run; check `status` (`completed`, `failed` or
   *   `cancelled`), `output` and `error`
   * @throws {DurqError} as {@link Durq.enqueue} and {@link Durq.waitForRun}
   *   (`DURQ_TIMEOUT`: the run is left in the queue).
   */
  triggerAndWait<I, O = unknown>(job: Job<I, O> | string, input: I, options?: EnqueueOptions & WaitOptions): Promise<Run<I, O>> {
    return this.#ctx.waits.triggerAndWait<I, O>(options, (o) => this.enqueue(job, input, o));
  }

  /**
   * Makes a worker for `jobs` on one queue. It does nothing until
   * `start()`, `processOne()` or `processUntilIdle()`. `close()` stops it.
   *
   * @throws {DurqError} `DURQ_INVALID_INPUT` for bad options; `DURQ_CLOSED`.
   */
  worker(options: WorkerOptions): Worker {
    return this.#ctx.worker(options);
  }

  /**
   * The alarms of `namespace`: Durable-Object-style, at most one per actor
   * id (see {@link AlarmNamespace}). Each namespace is its own SQLite
   * database: `<path>.alarms/<namespace>.db` beside a file database,
   * created on first use; in memory for an in-memory database. The same
   * handle is returned for the same name.
   *
   * @param namespace - 1 to 128 bytes; no `/`, `\`, NUL or other control
   *   character, no `..`, not starting with `.` (it becomes a file name)
   * @throws {DurqError} `DURQ_INVALID_INPUT` for a bad name (nothing is
   *   created); `DURQ_CLOSED`; `SQLITE_CANTOPEN` if the file cannot be
   *   created; `DURQ_SCHEMA_TOO_NEW` if a newer durq wrote it.
   */
  alarms(namespace: string): AlarmNamespace {
    return this.#ctx.alarms(namespace);
  }

  /**
   * Registers the handler that the alarms of `namespace` fire. Alarms
   * already due fire at once; later ones when their time comes (by this
   * database's clock, on its one timer). A handler that resolves removes
   * the alarm (unless it was set anew meanwhile); one that throws is
   * retried with backoff (2 s doubling to 64 s, up to 25% more at random, 6
   * retries, as workerd; then `alarm:abandoned`); one that runs past
   * {@link ALARM_HANDLER_TIMEOUT_MS} (15 minutes) counts as failed. At most `concurrency` handlers of the
   * namespace run at once, never two for one actor.
   *
   * @returns a function that unregisters the handler: no alarm of the
   *   namespace starts after it is called; its promise resolves once the
   *   handlers in flight have reported their outcome (until then the
   *   namespace counts as handled, and `close()` waits for them too).
   * @throws {DurqError} `DURQ_INVALID_INPUT` for a bad namespace, handler
   *   or option; `DURQ_INVALID_STATE` if the namespace already has a
   *   handler; `DURQ_CLOSED`; open errors as {@link Durq.alarms}.
   */
  onAlarm(namespace: string, handler: AlarmHandler, options?: AlarmHandlerOptions): () => Promise<void> {
    return this.#ctx.onAlarm(namespace, handler, options);
  }

  /**
   * Runs what is due now and resolves once it has settled: wakes every
   * started worker ({@link Worker.start}) and every alarm handler
   * ({@link Durq.onAlarm}) as their timers would, and waits until the runs
   * and alarms they started have finished and no more is due (runs due
   * later, a retry's backoff, stay for later); then waits for the commits.
   * Workers that were not started and namespaces without a handler are left
   * alone. This is the hook of a host that sleeps between wake-ups: call it
   * from a Durable Object's `alarm()` (durq mirrors its next timer into
   * `ctx.storage.setAlarm()`), or from a cron-triggered script.
   *
   * @example
   * ```ts
   * async alarm() { await this.db.runDue(); }
   * ```
   * @throws {DurqError} `DURQ_CLOSED` if the database was closed.
   */
  runDue(): Promise<void> {
    return this.#ctx.runDue();
  }

  /** The time (ms) the database's one timer is armed for, or `undefined`. For tests and diagnostics. */
  get nextTimerAt(): number | undefined {
    return this.#ctx.scheduler.armedAt;
  }

  /**
   * Calls a memoized effect (made by {@link defineEffect}) with `input`:
   * returns the output cached for this effect, version and input (in
   * memory, including an output whose commit is still in flight, else in
   * the database for `cache: true` effects), or runs `effect.run(input)`
   * once for all concurrent callers of the same input. A `cache: true`
   * output is written with the next group commit (write-behind: the call
   * does not wait for it; if that commit fails, the entry is dropped and a
   * later call runs the effect again). Inside a job handler,
   * `step.effect(effect, input)` is the same call.
   *
   * Each call gets its own copy of the output's JSON form (a `Date` comes
   * back as its ISO string), so callers cannot change each other's values.
   *
   * @throws {DurqError} `DURQ_INVALID_INPUT` if `effect` was not made by
   *   `defineEffect`, or `input` or the output is not JSON-serializable;
   *   `DURQ_CLOSED` after `close()`; whatever `effect.run` throws (not
   *   cached).
   */
  async callEffect<I, O>(effect: Effect<I, O>, input: I): Promise<O> {
    this.#ctx.checkOpen();
    return this.#ctx.effects.call(effect, input);
  }

  /**
   * Deletes cached outputs from memory and the database: of `effect` (all
   * its versions), or of every effect when `effect` is omitted. Outputs
   * still waiting for their commit are written by it.
   *
   * @returns how many stored outputs were deleted from the database
   * @throws {DurqError} `DURQ_INVALID_INPUT` if `effect` was not made by
   *   `defineEffect`; `DURQ_CLOSED` after `close()`.
   */
  deleteEffects(effect?: Effect<any, any>): Promise<{ deleted: number }> {
    return this.#ctx.effects.delete(effect);
  }

  /**
   * The effect cache's counters: entries in memory (and how many wait for
   * their commit), the bound, the committed and processed generations,
   * evictions by tier, writes that waited, and how effect calls were
   * answered. A snapshot; cheap.
   */
  cacheStats(): CacheStats {
    return this.#ctx.cache.stats();
  }

  /**
   * Closes the database: stops its one timer, its workers and its alarm
   * handlers (waiting for the handlers in flight to finish and their
   * outcomes to commit; no handler starts after `close()`), rejects pending
   * `waitForRun` calls with `DURQ_CLOSED`, commits what the write queue
   * holds, closes the SQLite file and removes the lock file. Calls made
   * after `close()` reject with `DURQ_CLOSED`. Calling it again returns the
   * same promise.
   */
  close(): Promise<void> {
    return this.#ctx.close();
  }
}
