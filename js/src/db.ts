/**
 * `open()` and {@link Durq}, the database handle: enqueue, read, cancel,
 * delete, wait, workers and events.
 *
 * @module
 */

import { realClock, type Clock } from "./clock.js";
import { coreCall, parseResult, randomSeed, type CoreHandle } from "./core.js";
import { closedError, DurqError, invalidInput, isDurqError, type DurqErrorCode } from "./errors.js";
import { Emitter, EVENT_NAMES, type DurqEventName, type DurqListener } from "./events.js";
import { resolveJob, type Job } from "./job.js";
import { platform, type OpenedStorage } from "./platform.js";
import {
  BATCH_STATES,
  isTerminal,
  RUN_STATUSES,
  type Batch,
  type BatchPage,
  type BatchState,
  type EnqueuedBatch,
  type EnqueueResult,
  type LogRecord,
  type ReconcileResult,
  type Run,
  type RunPage,
  type RunStats,
  type RunEvent,
  type RunStatus,
  type SearchStatus,
  type StepRecord,
} from "./types.js";
import { exportRuns, importRunning, importRuns, IndexDeferral, type ExportOptions, type ImportOptions, type ImportResult, type ImportRun } from "./transfer.js";
import { checkDuration, checkInt, checkLabels, checkName, checkOptions, checkTime, isPlainObject, toJsonText } from "./validate.js";
import { AlarmDispatcher, AlarmNamespace, checkHandlerOptions, type AlarmHandler, type AlarmHandlerOptions, type AlarmHost, type StoredAlarm } from "./alarms.js";
import { Scheduler } from "./scheduler.js";
import { Worker, type ClaimResult, type Execution, type WorkerHost, type WorkerOptions } from "./worker.js";
import { opJson, WriteQueue } from "./write-queue.js";
import { checkMaxInMemoryChanges, MemoryStore, type CacheStats } from "./cache.js";
import { effectInput, effectKey, isEffect, type Effect } from "./effect.js";

/** The start of the core's `getEffect` answer, up to its output. */
const STORED_EFFECT_HEAD = /^\{"version":(\d+),"createdAt":(-?\d+),"output":/;

/** Where the database lives: a file (Node), OPFS (a browser's dedicated worker) or memory. */
export type OpenTarget =
  | {
      /** Node: path of the SQLite database file; created (with its parent directories) if missing. A lock file `<path>.lock` sits beside it while it is open. */
      path: string;
    }
  | {
      /**
       * Browser, inside a dedicated worker: name of the database in the
       * origin private file system (1 to 200 characters from
       * `A-Z a-z 0-9 _ . -`, not starting with a dot), stored through the
       * OPFS sync-access-handle pool VFS in the OPFS folder `.durq/<name>`
       * with its alarm namespaces. One tab or worker holds it at a time
       * (Web Lock `durq:opfs:<name>`).
       */
      opfs: string;
    }
  | {
      /** An in-memory database, gone when closed. Works everywhere. */
      memory: true;
    };

/** Options of {@link open}. */
export interface OpenOptions {
  /** Source of time and timers (default: the real clock). Tests pass a {@link ManualClock}. */
  clock?: Clock;
  /**
   * Durability of each commit, for a file database (default `"full"`).
   * `"full"`: fsync at every commit; a resolved write survives power loss.
   * `"normal"`: a resolved write survives the process being killed, but the
   * last commits may be lost in a power failure; faster.
   */
  synchronous?: "full" | "normal";
  /**
   * Browser `{ opfs }` only: if another tab or worker holds the database,
   * wait until it closes it (default `false`: fail at once with
   * `DURQ_LOCKED`). `serve()` uses this to take over from a closed tab.
   */
  waitForLock?: boolean;
  /** Prefix of the ids of this process's workers, stored as lease owner (default `"<hostname>:<pid>"` in Node, `"browser:<random>"` in a browser). */
  workerId?: string;
  /**
   * Most entries the effect cache keeps in memory (default 100 000): effect
   * outputs and the step outputs of running runs, an integer in
   * 1 ..= 2^31 - 1. When it is full, a new entry first evicts the least
   * recently used entry already committed, then one loaded from the
   * database; only when every entry is waiting for its commit does the
   * write wait for that commit. Entries not yet committed are never
   * dropped. See {@link Durq.cacheStats}.
   */
  maxInMemoryChanges?: number;
}

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

const ENQUEUE_OPTIONS = ["labels", "idempotencyKey", "concurrencyKey", "priority", "runAt", "queue"] as const;
const FILTER_KEYS = ["job", "status", "queue", "labels", "createdAfter", "createdBefore", "limit", "cursor", "batchId", "search", "searchSyntax", "order"] as const;
const BATCH_RUN_KEYS = ["job", "input", ...ENQUEUE_OPTIONS] as const;
const I32_MIN = -2_147_483_648;
const I32_MAX = 2_147_483_647;
const DEFAULT_WAIT_POLL_MS = 1000;
/** Most runs one transaction of {@link Durq.purgeRuns} deletes. */
export const PURGE_CHUNK = 1000;

/**
 * Opens a durq database.
 *
 * For a file (`{ path }`), creates missing parent directories, takes the
 * exclusive lock `<path>.lock` (a lock left by a dead process on this host
 * is taken over), opens or creates the SQLite file and migrates its schema.
 * Runs still leased in the file belonged to a process that is gone: their
 * leases are expired at once, so the next claim puts them back to work
 * (each such attempt counts toward `maxAttempts`).
 *
 * In a browser's dedicated worker, `{ opfs: name }` takes the Web Lock
 * `durq:opfs:<name>` (so one tab or worker holds the database), installs the
 * database's OPFS sync-access-handle pool (SQLite's `opfs-sahpool` design:
 * https://sqlite.org/wasm/doc/trunk/persistence.md#vfs-opfs-sahpool) and
 * opens the database in it, recovering leases the same way. `close()`
 * releases the pool's handles and the lock, so another tab can open it.
 *
 * @example
 * ```ts
 * const db = await open({ path: "./data/app.db" });               // Node
 * const db = await open({ opfs: "app.db" });                      // browser, in a Worker
 * const mem = await open({ memory: true }, { clock: new ManualClock(0) });
 * ```
 *
 * @throws {DurqError} `DURQ_LOCKED` if another live process (or another
 * `Durq` of this process) has the file open, or another tab or worker holds
 * the OPFS database (unless `waitForLock`); `DURQ_OPFS_UNAVAILABLE` for
 * `{ opfs }` outside a browser's dedicated worker or where OPFS sync access
 * handles are missing (the message names the fix); `DURQ_OPFS` for other
 * OPFS failures; `DURQ_INVALID_INPUT` for bad arguments, or `{ path }` in a
 * browser; `DURQ_SCHEMA_TOO_NEW` if a newer durq wrote the file;
 * `SQLITE_CANTOPEN`, `SQLITE_NOTADB`, `SQLITE_CORRUPT`, `SQLITE_IOERR` for
 * storage failures.
 */
export async function open(target: OpenTarget, options?: OpenOptions): Promise<Durq> {
  return openWith(target, options, {});
}

/**
 * Test seams of {@link open}. @internal
 */
export interface OpenHooks {
  /**
   * Wraps each group commit: gets the batch's JSON and the core's `apply`;
   * returns its outcome, or a promise of it (the commit stays in flight
   * until it settles). Throw or reject without calling `apply` to fail the
   * commit as a whole.
   */
  commit?: (opsJson: string, apply: (opsJson: string) => string) => string | PromiseLike<string>;
}

/** {@link open} with test seams. @internal */
export async function openWith(target: OpenTarget, options: OpenOptions | undefined, hooks: OpenHooks): Promise<Durq> {
  const p = platform();
  const help = `{ memory: true } or ${p.storageHelp}`;
  if (!isPlainObject(target)) throw invalidInput(`open() needs ${help}`);
  const t = target as Record<string, unknown>;
  const keys = Object.keys(target);
  const memory = t.memory === true && keys.length === 1;
  const storage = !memory && keys.length === 1 && p.isStorage(t);
  if (!memory && !storage) {
    if (keys.length === 1 && (keys[0] === "opfs" || keys[0] === "path") && typeof t[keys[0]] !== "string") {
      throw invalidInput(`${keys[0]} must be a string, got ${typeof t[keys[0]]}`);
    }
    if (keys.length === 1 && (keys[0] === "opfs" || keys[0] === "path")) {
      throw new DurqError(
        keys[0] === "opfs" ? "DURQ_OPFS_UNAVAILABLE" : "DURQ_INVALID_INPUT",
        keys[0] === "opfs"
          ? `{ opfs } is browser storage (inside a dedicated worker); in ${p.name} open ${help}`
          : `${p.name} has no file system for { path }: open ${help}`,
      );
    }
    throw invalidInput(`open() needs exactly one of ${help}, got keys ${JSON.stringify(keys)}`);
  }
  const o = checkOptions("open options", options, ["clock", "synchronous", "workerId", "maxInMemoryChanges", "waitForLock"]);
  const maxInMemoryChanges = checkMaxInMemoryChanges(o.maxInMemoryChanges);
  const clock = o.clock ?? realClock;
  if (typeof clock !== "object" || clock === null || typeof clock.now !== "function" || typeof clock.setTimeout !== "function" || typeof clock.clearTimeout !== "function") {
    throw invalidInput("clock must be an object with now(), setTimeout(fn, ms) and clearTimeout(handle)");
  }
  const synchronous = o.synchronous ?? "full";
  if (synchronous !== "full" && synchronous !== "normal") throw invalidInput(`synchronous must be "full" or "normal", got ${JSON.stringify(synchronous)}`);
  if (o.waitForLock !== undefined && typeof o.waitForLock !== "boolean") throw invalidInput(`waitForLock must be a boolean, got ${JSON.stringify(o.waitForLock)}`);
  const workerId = o.workerId === undefined ? p.defaultWorkerId() : checkName("workerId", o.workerId);

  const glue = await p.load();
  if (memory) {
    const core = coreCall(() => glue.Core.openMemory(randomSeed()));
    return new Durq(core, { clock, workerId, storage: undefined, maxInMemoryChanges, hooks });
  }
  const opened = await p.open({ target: t, seed: randomSeed(), synchronous, waitForLock: o.waitForLock === true }, glue);
  try {
    expireOrphanedLeases(opened.core, Math.floor(clock.now()));
    return new Durq(opened.core, { clock, workerId, storage: opened, maxInMemoryChanges, hooks });
  } catch (e) {
    try {
      opened.core.close();
    } catch {
      // closing after a failed open: nothing more to do
    }
    opened.release();
    throw e;
  }
}

/**
 * Makes every lease of a just-opened file database due now. The lock file
 * says this process is the file's only user, so any run still leased was
 * leased by a process that is gone (it crashed or was killed): the next
 * claim recovers it at once instead of after its `leaseMs`.
 */
function expireOrphanedLeases(core: CoreHandle, now: number): void {
  const out = parseResult<({ ok: unknown } | { err: { code: string; message: string } })[]>(
    coreCall(() => core.apply(JSON.stringify([{ op: "expireLeases", now }]))),
  );
  const first = out[0];
  if (first !== undefined && "err" in first) throw new DurqError(first.err.code as DurqErrorCode, first.err.message);
}

interface DurqInit {
  clock: Clock;
  workerId: string;
  storage: OpenedStorage | undefined;
  maxInMemoryChanges: number;
  hooks: OpenHooks;
}

interface Waiter {
  check(): void;
}

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
export class Durq {
  /** Absolute path of the database file (Node), `opfs:<name>` (browser), or `undefined` for an in-memory database. */
  readonly path: string | undefined;
  /** The clock this database reads time from. */
  readonly clock: Clock;

  readonly #core: CoreHandle;
  readonly #storage: OpenedStorage | undefined;
  readonly #workerId: string;
  readonly #events = new Emitter();
  readonly #queue: WriteQueue;
  /** The effect cache's in-memory store (effect outputs, step outputs of running runs). */
  readonly #cache: MemoryStore;
  /** Effect calls running, by store key: callers of the same key join them. */
  readonly #effectCalls = new Map<string, Promise<string>>();
  /** The error of the last commit that failed as a whole (already reported as such). */
  #lastCommitError: unknown = undefined;
  /** Workers that are started or have work in flight. */
  readonly #workers = new Set<Worker>();
  readonly #executions = new Map<string, Set<Execution>>();
  readonly #waiters = new Map<string, Set<Waiter>>();
  readonly #workerHost: WorkerHost;
  /** The one timer of this database (workers' next runs, alarm namespaces' next alarms). */
  readonly #scheduler: Scheduler;
  readonly #alarmHost: AlarmHost;
  readonly #namespaces = new Map<string, AlarmNamespace>();
  readonly #dispatchers = new Map<string, AlarmDispatcher>();
  readonly #deferral = new IndexDeferral((json) => this.#write(() => json));
  #workerCount = 0;
  #closing = false;
  #closed: Promise<void> | undefined;

  /** @internal Use {@link open}. */
  constructor(core: CoreHandle, init: DurqInit) {
    this.#core = core;
    this.#storage = init.storage;
    this.path = init.storage?.path;
    this.clock = init.clock;
    this.#workerId = init.workerId;
    const commit = init.hooks.commit;
    const apply = (json: string) => this.#core.apply(json);
    this.#queue = new WriteQueue({
      apply: commit === undefined ? apply : (json) => commit(json, apply),
      onSettled: () => this.#cache.settled(),
      now: () => this.clock.now(),
      onCommitError: (error) => {
        this.#lastCommitError = error;
        this.#events.emit("error", { error, source: "commit" });
      },
      onHookError: (error) => {
        console.error("durq: internal error after a commit:", error);
        this.#events.emit("error", { error, source: "worker" });
      },
      observe: (result) => {
        const r = result as { finishedBatches?: FinishedBatch[] } | null;
        const finished = r?.finishedBatches;
        if (finished === undefined) return;
        delete r!.finishedBatches; // internal: not part of the operation's public result
        this.#batchesFinished(finished);
      },
    });
    this.#cache = new MemoryStore(init.maxInMemoryChanges, this.#queue);
    this.#scheduler = new Scheduler(this.clock);
    this.#alarmHost = {
      clock: this.clock,
      events: this.#events,
      checkOpen: () => this.#checkOpen(),
      submit: (json, onCommit) => this.#queue.submit(json, onCommit),
      getAlarm: (ns, actorId) => {
        const text = coreCall(() => this.#core.getAlarm(ns, actorId));
        return typeof text === "string" ? (JSON.parse(text) as StoredAlarm) : undefined;
      },
      listAlarms: (ns, filterJson) => JSON.parse(coreCall(() => this.#core.listAlarms(ns, filterJson))),
      nextAlarmAfter: (ns, after) => {
        const at = coreCall(() => this.#core.nextAlarmAfter(ns, after));
        return typeof at === "number" ? at : undefined;
      },
      sleepUntil: (s, at) => this.#scheduler.sleepUntil(s, at),
      alarmSet: (ns, time) => this.#dispatchers.get(ns)?.alarmSet(time),
      isRunning: (ns, actorId, version) => this.#dispatchers.get(ns)?.isRunning(actorId, version) ?? false,
    };
    this.#workerHost = {
      sleepUntil: (w, at) => this.#scheduler.sleepUntil(w, at),
      clock: this.clock,
      events: this.#events,
      submit: (json, onCommit, track) => this.#queue.submit(json, onCommit, track),
      cache: this.#cache,
      readStep: (id, name) => {
        const out = coreCall(() => this.#core.getStepOutput(id, name));
        return typeof out === "string" ? out : undefined;
      },
      callEffect: (effect, input) => this.#callEffect(effect, input),
      nextWakeAt: (queue) => {
        try {
          const at = this.#core.nextWakeAt(queue);
          return typeof at === "number" ? at : undefined;
        } catch {
          return undefined;
        }
      },
      checkOpen: () => this.#checkOpen(),
      claimed: (result, workerId) => this.#claimed(result, workerId),
      runChanged: (id, queue, from) => {
        this.#notify(id);
        this.#wakeWorkers(queue, from);
      },
      register: (e) => {
        let set = this.#executions.get(e.id);
        if (set === undefined) this.#executions.set(e.id, (set = new Set()));
        set.add(e);
      },
      unregister: (e) => {
        const set = this.#executions.get(e.id);
        if (set !== undefined && set.delete(e) && set.size === 0) this.#executions.delete(e.id);
      },
      track: (w) => this.#workers.add(w),
      untrack: (w) => this.#workers.delete(w),
    };
    // An import that died left the search index deferred; the core repaired
    // it at open. If that failed, say so (search answers DURQ_SEARCH_STALE
    // until restoreSearchIndex() succeeds); the database is usable. Emitted
    // on a later macrotask, so a listener added right after `await open()`
    // receives it (without one, it is printed).
    const search = parseResult<SearchStatus>(coreCall(() => this.#core.searchStatus()));
    if (search.openError !== null) {
      const error = new DurqError("DURQ_SEARCH_STALE", `the search index could not be rebuilt at open: ${search.openError}`);
      setTimeout(() => this.#events.emit("error", { error, source: "search" }), 0);
    }
  }

  /** Whether {@link Durq.close} has been called. */
  get closed(): boolean {
    return this.#closing;
  }

  /**
   * Number of SQLite transactions committed (or attempted) by the write
   * queue so far; operations issued in one tick share one. For tests and
   * diagnostics.
   */
  get transactions(): number {
    return this.#queue.transactions;
  }

  // ---- events -------------------------------------------------------------

  /**
   * Listens to an event (see {@link DurqEvents}); returns a function that
   * removes the listener. Listeners run after the commit that caused the
   * event; one that throws does not affect the others (the failure is
   * emitted as an `error` event).
   */
  on<E extends DurqEventName>(name: E, listener: DurqListener<E>): () => void {
    if (!EVENT_NAMES.includes(name)) throw invalidInput(`unknown event ${JSON.stringify(name)}; known: ${EVENT_NAMES.join(", ")}`);
    if (typeof listener !== "function") throw invalidInput(`listener of ${JSON.stringify(name)} must be a function`);
    return this.#events.on(name, listener);
  }

  /** Removes a listener added by {@link Durq.on}. */
  off<E extends DurqEventName>(name: E, listener: DurqListener<E>): void {
    this.#events.off(name, listener);
  }

  // ---- writes -------------------------------------------------------------

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
    let json: string;
    let meta: { job: string; queue: string };
    try {
      this.#checkOpen();
      const r = runJson(job, input, options, "");
      meta = r.meta;
      json = `{"op":"enqueue",${r.json.slice(1)}`;
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#queue.submit<EnqueueResult>(json, (r) => this.#enqueued(r, meta));
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
    let json: string;
    const metas: { job: string; queue: string }[] = [];
    try {
      this.#checkOpen();
      if (!Array.isArray(items)) throw invalidInput("enqueueMany needs an array of { job, input, options? }");
      if (items.length === 0) return Promise.resolve([]);
      const parts: string[] = new Array(items.length);
      for (let i = 0; i < items.length; i++) {
        const item = items[i];
        const where = `enqueueMany item ${i}: `;
        const it = checkOptions(`${where}item`, item, ["job", "input", "options"]);
        if (!isPlainObject(item)) throw invalidInput(`${where}must be { job, input, options? }`);
        const r = runJson(it.job!, it.input, it.options, where);
        parts[i] = r.json;
        metas.push(r.meta);
      }
      json = `{"op":"enqueueMany","runs":[${parts.join(",")}]}`;
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#queue.submit<EnqueueResult[]>(json, (results) => {
      for (let i = 0; i < results.length; i++) this.#enqueued(results[i]!, metas[i]!);
    });
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
    let json: string;
    let queue = "default";
    const metas: { job: string; queue: string }[] = [];
    try {
      this.#checkOpen();
      const b = checkOptions("enqueueBatch", spec, ["queue", "runs", "labels", "idempotencyKey"]);
      if (spec === undefined) throw invalidInput("enqueueBatch needs { queue?, runs: [{ job, input, ... }], labels?, idempotencyKey? }");
      if (b.queue != null) queue = checkName("batch queue name", b.queue);
      if (!Array.isArray(b.runs) || b.runs.length === 0) throw invalidInput("enqueueBatch needs runs: a non-empty array of { job, input, ...options }");
      let head = `{"op":"enqueueBatch","queue":${JSON.stringify(queue)}`;
      if (b.labels != null) head += `,"labels":${JSON.stringify(checkLabels("batch labels", b.labels))}`;
      if (b.idempotencyKey != null) head += `,"idempotencyKey":${JSON.stringify(checkName("batch idempotencyKey", b.idempotencyKey))}`;
      const parts: string[] = new Array(b.runs.length);
      for (let i = 0; i < b.runs.length; i++) {
        const where = `enqueueBatch run ${i}: `;
        const item = checkOptions(`${where}item`, b.runs[i] as BatchRunItem, BATCH_RUN_KEYS);
        if (!isPlainObject(item)) throw invalidInput(`${where}must be { job, input, ...options }`);
        const { job, input, ...options } = item;
        if (options.queue != null && options.queue !== queue) {
          throw invalidInput(`${where}names queue ${JSON.stringify(options.queue)}; a batch's runs are all in its queue ${JSON.stringify(queue)}`);
        }
        delete options.queue;
        const r = runJson(job as Job<unknown, unknown> | string, input, options, where);
        parts[i] = r.json;
        metas.push({ job: r.meta.job, queue });
      }
      json = `${head},"runs":[${parts.join(",")}]}`;
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#queue.submit<EnqueuedBatch>(json, (r) => {
      if (!r.created) return;
      this.#events.emit("batch:enqueued", { id: r.id, queue, runs: r.runs.length });
      for (let i = 0; i < r.runs.length; i++) this.#enqueued(r.runs[i]!, metas[i]!);
    });
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
    return this.#write(
      () => opJson({ op: "cancelBatch", id: checkId(id, "batch id") }),
      (r: { state: BatchState; runs: { id: string; previous: RunStatus }[] }) => {
        for (const run of r.runs) {
          for (const e of [...(this.#executions.get(run.id) ?? [])]) e.cancel();
          this.#events.emit("run:cancelled", { id: run.id, previous: run.previous });
          this.#notify(run.id);
        }
      },
    );
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
    return this.#write(() => {
      const o = checkOptions("reconcileBatches options", options, ["graceMs"]);
      const fields: Record<string, unknown> = { op: "reconcileBatches" };
      if (o.graceMs != null) fields["graceMs"] = checkDuration("graceMs", o.graceMs, 0);
      return opJson(fields);
    });
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
    return this.#write(() => opJson({ op: "cancel", id: checkId(id) }), (r: { status: "cancelled"; previous: RunStatus }) => {
      for (const e of [...(this.#executions.get(id) ?? [])]) e.cancel();
      this.#events.emit("run:cancelled", { id, previous: r.previous });
      this.#notify(id);
    });
  }

  /**
   * Deletes a run with its labels, steps and logs.
   *
   * @throws {DurqError} `DURQ_NOT_FOUND`; `DURQ_INVALID_STATE` if the run is
   *   leased (cancel it first); `DURQ_CLOSED`.
   */
  deleteRun(id: string): Promise<{ deleted: true }> {
    return this.#write(() => opJson({ op: "deleteRun", id: checkId(id) }), () => {
      this.#events.emit("run:deleted", { id });
      this.#notify(id);
    });
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
    return this.#write(() => opJson({ op: "retrigger", id: checkId(id) }), (r: { id: string }) => {
      let queue = "default";
      try {
        const run = parseResult<Run>(this.#core.getRun(r.id));
        queue = run.queue;
        this.#events.emit("run:enqueued", { id: r.id, job: run.job, queue });
      } catch {
        // the read cannot fail right after the commit; events are best effort
      }
      this.#wakeWorkers(queue);
    });
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
  async purgeRuns(options: PurgeOptions): Promise<{ deleted: number; deletedBatches: number }> {
    this.#checkOpen();
    const o = checkOptions("purgeRuns options", options, ["olderThan", "limit"]);
    if (o.olderThan === undefined) throw invalidInput("purgeRuns needs { olderThan }: a time in ms since the epoch or a Date");
    const olderThan = checkTime("olderThan", o.olderThan);
    const remaining = o.limit == null ? Number.POSITIVE_INFINITY : checkInt("limit", o.limit, 1, Number.MAX_SAFE_INTEGER);
    const purge = async (op: "purgeRuns" | "purgeBatches", max: number): Promise<number> => {
      let deleted = 0;
      for (;;) {
        const limit = Math.min(PURGE_CHUNK, max - deleted);
        const r = await this.#write<{ deleted: number }>(() => opJson({ op, olderThan, limit }));
        deleted += r.deleted;
        if (r.deleted < limit || deleted >= max) return deleted;
      }
    };
    const deleted = await purge("purgeRuns", remaining);
    return { deleted, deletedBatches: await purge("purgeBatches", remaining) };
  }


  // ---- reads --------------------------------------------------------------

  /**
   * Reads a run.
   *
   * @throws {DurqError} `DURQ_NOT_FOUND`; `DURQ_CLOSED`.
   */
  async getRun<I = unknown, O = unknown>(id: string): Promise<Run<I, O>> {
    this.#checkOpen();
    checkId(id);
    return parseResult<Run<I, O>>(coreCall(() => this.#core.getRun(id)));
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
  async listRuns<I = unknown, O = unknown>(filter?: RunFilter): Promise<RunPage<I, O>> {
    this.#checkOpen();
    const f = checkOptions("listRuns filter", filter, FILTER_KEYS);
    const out: Record<string, unknown> = {};
    if (f.job != null) out["job"] = typeof f.job === "string" ? checkName("job name", f.job) : resolveJob(f.job).name;
    if (f.status != null) {
      if (!RUN_STATUSES.includes(f.status)) throw invalidInput(`status must be one of ${RUN_STATUSES.join(", ")}, got ${JSON.stringify(f.status)}`);
      out["status"] = f.status;
    }
    if (f.queue != null) out["queue"] = checkName("queue name", f.queue);
    if (f.labels != null) out["labels"] = checkLabels("labels", f.labels);
    if (f.createdAfter != null) out["createdAfter"] = checkTime("createdAfter", f.createdAfter);
    if (f.createdBefore != null) out["createdBefore"] = checkTime("createdBefore", f.createdBefore);
    if (f.limit != null) out["limit"] = checkInt("limit", f.limit, 1, 1000);
    if (f.cursor != null) {
      if (typeof f.cursor !== "string" || f.cursor.length === 0) throw invalidInput("cursor must be a nextCursor string from an earlier listRuns page");
      out["cursor"] = f.cursor;
    }
    if (f.batchId != null) out["batchId"] = checkId(f.batchId, "batchId");
    if (f.search != null) {
      if (typeof f.search !== "string") throw invalidInput(`search must be a string, got ${typeof f.search}`);
      out["search"] = f.search;
    }
    if (f.searchSyntax != null) {
      if (f.searchSyntax !== "words" && f.searchSyntax !== "fts5") throw invalidInput(`searchSyntax must be "words" or "fts5", got ${JSON.stringify(f.searchSyntax)}`);
      out["searchSyntax"] = f.searchSyntax;
    }
    if (f.order != null) {
      if (f.order !== "newest" && f.order !== "relevance") throw invalidInput(`order must be "newest" or "relevance", got ${JSON.stringify(f.order)}`);
      out["order"] = f.order;
    }
    return parseResult<RunPage<I, O>>(coreCall(() => this.#core.listRuns(JSON.stringify(out))));
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
  async getRunEvents(id: string): Promise<RunEvent[]> {
    this.#checkOpen();
    checkId(id);
    return parseResult<RunEvent[]>(coreCall(() => this.#core.runEvents(id)));
  }

  /**
   * Whether full-text search is usable: `deferred` while an import holds
   * index maintenance deferred, or after one died and the repair at open
   * failed (`openError` says why; fix the cause, then
   * {@link Durq.restoreSearchIndex}).
   *
   * @throws {DurqError} `DURQ_CLOSED`.
   */
  async getSearchStatus(): Promise<SearchStatus> {
    this.#checkOpen();
    return parseResult<SearchStatus>(coreCall(() => this.#core.searchStatus()));
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
    if (this.#deferral.held) return Promise.reject(importRunning());
    return this.#write(() => '{"op":"restoreSearchIndex"}');
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
    return exportRuns((after, limit) => {
      this.#checkOpen();
      return parseResult<{ runs: Run[]; nextCursor: string | null }>(coreCall(() => this.#core.exportRuns(after, limit)));
    }, options);
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
  async importRuns(source: Iterable<ImportRun> | AsyncIterable<ImportRun>, options?: ImportOptions): Promise<ImportResult> {
    this.#checkOpen();
    return importRuns(
      {
        write: (json) => this.#write(() => json),
        runCountEstimate: () => coreCall(() => this.#core.runCountEstimate()),
        deferIndex: () => this.#deferral.acquire(),
        reportError: (error) => this.#events.emit("error", { error, source: "search" }),
      },
      source,
      options,
    );
  }

  /**
   * Reads a batch: its state, run counts by status, labels and times.
   *
   * @throws {DurqError} `DURQ_NOT_FOUND` for an unknown batch id; `DURQ_CLOSED`.
   */
  async getBatch(id: string): Promise<Batch> {
    this.#checkOpen();
    checkId(id, "batch id");
    return parseResult<Batch>(coreCall(() => this.#core.getBatch(id)));
  }

  /**
   * Lists batches, newest first, one page at a time (pass `nextCursor` as
   * `cursor`). For the live batches of a queue prefer
   * {@link Durq.listActiveBatches}.
   *
   * @throws {DurqError} `DURQ_INVALID_INPUT` for an unknown filter field, a
   *   bad queue, state, limit or cursor; `DURQ_CLOSED`.
   */
  async listBatches(filter?: BatchFilter): Promise<BatchPage> {
    this.#checkOpen();
    const f = checkOptions("listBatches filter", filter, ["queue", "state", "limit", "cursor"]);
    const out: Record<string, unknown> = {};
    if (f.queue != null) out["queue"] = checkName("queue name", f.queue);
    if (f.state != null) {
      if (!BATCH_STATES.includes(f.state)) throw invalidInput(`state must be one of ${BATCH_STATES.join(", ")}, got ${JSON.stringify(f.state)}`);
      out["state"] = f.state;
    }
    if (f.limit != null) out["limit"] = checkInt("limit", f.limit, 1, 1000);
    if (f.cursor != null) {
      if (typeof f.cursor !== "string" || f.cursor.length === 0) throw invalidInput("cursor must be a nextCursor string from an earlier listBatches page");
      out["cursor"] = f.cursor;
    }
    return parseResult<BatchPage>(coreCall(() => this.#core.listBatches(JSON.stringify(out))));
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
  async listActiveBatches(queue = "default"): Promise<Batch[]> {
    this.#checkOpen();
    checkName("queue name", queue);
    return parseResult<Batch[]>(coreCall(() => this.#core.listActiveBatches(queue)));
  }

  /**
   * The stored step outputs of a run, in name order (`[]` for none).
   *
   * @throws {DurqError} `DURQ_CLOSED`.
   */
  async getSteps(id: string): Promise<StepRecord[]> {
    this.#checkOpen();
    checkId(id);
    return parseResult<StepRecord[]>(coreCall(() => this.#core.getSteps(id)));
  }

  /**
   * The log lines of a run, oldest first (`[]` for none).
   *
   * @throws {DurqError} `DURQ_CLOSED`.
   */
  async getLogs(id: string): Promise<LogRecord[]> {
    this.#checkOpen();
    checkId(id);
    return parseResult<LogRecord[]>(coreCall(() => this.#core.getLogs(id)));
  }

  /**
   * Counts runs by status (scans the status index: O(runs)).
   *
   * @throws {DurqError} `DURQ_CLOSED`.
   */
  async stats(): Promise<RunStats> {
    this.#checkOpen();
    return parseResult<RunStats>(coreCall(() => this.#core.stats()));
  }

  /**
   * Runs SQLite's `PRAGMA integrity_check` and returns its lines: `["ok"]`
   * when the database is sound.
   *
   * @throws {DurqError} `DURQ_CLOSED`.
   */
  async integrityCheck(): Promise<string[]> {
    this.#checkOpen();
    const core = this.#core;
    if (typeof core.integrityCheck !== "function") throw new DurqError("DURQ_INTERNAL", "this build of the core has no integrityCheck");
    return parseResult<string[]>(coreCall(() => core.integrityCheck!()));
  }

  // ---- waiting ------------------------------------------------------------

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
    return this.#waitFor<Run<I, O>>("run", id, options, () => parseResult<Run<I, O>>(this.#core.getRun(id)), (r) => isTerminal(r.status), (r) => r.status);
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
    return this.#waitFor<Batch>("batch", id, options, () => parseResult<Batch>(this.#core.getBatch(id)), (b) => b.state !== "active", (b) => b.state);
  }

  /** The body of {@link Durq.waitForRun} and {@link Durq.waitForBatch}. */
  #waitFor<T>(what: "run" | "batch", id: string, options: WaitOptions | undefined, read: () => T, done: (t: T) => boolean, state: (t: T) => string): Promise<T> {
    let timeoutMs: number | undefined;
    let pollMs: number;
    try {
      this.#checkOpen();
      checkId(id, `${what} id`);
      const o = checkOptions(`waitFor${what === "run" ? "Run" : "Batch"} options`, options, ["timeoutMs", "pollMs"]);
      timeoutMs = o.timeoutMs == null ? undefined : checkDuration("timeoutMs", o.timeoutMs, 0);
      pollMs = o.pollMs == null ? DEFAULT_WAIT_POLL_MS : checkDuration("pollMs", o.pollMs);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<T>((resolve, reject) => {
      let timeout: unknown;
      let poll: unknown;
      let last: T | undefined;
      let settled = false;
      const waiter: Waiter = {
        check: () => {
          if (settled) return;
          if (this.#closing) return finish(() => reject(closedError()));
          try {
            last = coreCall(read);
          } catch (e) {
            return finish(() => reject(e));
          }
          if (done(last)) finish(() => resolve(last!));
        },
      };
      const finish = (f: () => void): void => {
        settled = true;
        if (timeout !== undefined) this.clock.clearTimeout(timeout);
        if (poll !== undefined) this.clock.clearTimeout(poll);
        const set = this.#waiters.get(id);
        if (set !== undefined && set.delete(waiter) && set.size === 0) this.#waiters.delete(id);
        f();
      };
      const armPoll = (): void => {
        poll = this.clock.setTimeout(() => {
          poll = undefined;
          waiter.check();
          if (!settled) armPoll();
        }, pollMs);
      };
      waiter.check();
      if (settled) return;
      // Run and batch ids come from one UUIDv7 generator: one map holds both.
      let set = this.#waiters.get(id);
      if (set === undefined) this.#waiters.set(id, (set = new Set()));
      set.add(waiter);
      armPoll();
      if (timeoutMs !== undefined) {
        timeout = this.clock.setTimeout(() => {
          timeout = undefined;
          waiter.check();
          if (settled) return;
          finish(() =>
            reject(new DurqError("DURQ_TIMEOUT", `${what} ${id} did not finish within ${timeoutMs} ms (it is ${last === undefined ? "unknown" : state(last)})`)),
          );
        }, timeoutMs);
      }
    });
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
  async triggerAndWait<I, O = unknown>(job: Job<I, O> | string, input: I, options?: EnqueueOptions & WaitOptions): Promise<Run<I, O>> {
    const { timeoutMs, pollMs, ...enqueueOptions } = options ?? {};
    // Check the wait options before enqueueing: a bad one must not leave a run behind.
    if (timeoutMs != null) checkDuration("timeoutMs", timeoutMs, 0);
    if (pollMs != null) checkDuration("pollMs", pollMs);
    const started = this.clock.now();
    const { id } = await this.enqueue(job, input, options === undefined ? undefined : enqueueOptions);
    const wait: WaitOptions = {};
    if (timeoutMs != null) wait.timeoutMs = Math.max(0, timeoutMs - (this.clock.now() - started));
    if (pollMs != null) wait.pollMs = pollMs;
    return this.waitForRun<I, O>(id, wait);
  }

  // ---- workers ------------------------------------------------------------

  /**
   * Makes a worker for `jobs` on one queue. It does nothing until
   * `start()`, `processOne()` or `processUntilIdle()`. `close()` stops it.
   *
   * @throws {DurqError} `DURQ_INVALID_INPUT` for bad options; `DURQ_CLOSED`.
   */
  worker(options: WorkerOptions): Worker {
    this.#checkOpen();
    return new Worker(this.#workerHost, `${this.#workerId}:w${++this.#workerCount}`, options);
  }

  // ---- alarms -------------------------------------------------------------

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
    this.#checkOpen();
    const known = this.#namespaces.get(namespace);
    if (known !== undefined) return known;
    checkName("alarm namespace", namespace); // a string, no lone surrogate (it becomes a file name); the core checks the rest
    coreCall(() => this.#core.validateNamespace(namespace));
    const dir = coreCall(() => this.#core.alarmDir());
    this.#storage?.prepareAlarms(dir, this.#namespaces.size);
    coreCall(() => this.#core.openAlarms(namespace));
    const handle = new AlarmNamespace(this.#alarmHost, namespace);
    this.#namespaces.set(namespace, handle);
    return handle;
  }

  /**
   * Registers the handler that the alarms of `namespace` fire. Alarms
   * already due fire at once; later ones when their time comes (by this
   * database's clock, on its one timer). A handler that resolves removes
   * the alarm (unless it was set anew meanwhile); one that throws is
   * retried with backoff (2 s doubling to 60 s, up to 25% less at random, 6
   * retries; then `alarm:abandoned`). At most `concurrency` handlers of the
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
    this.#checkOpen();
    const concurrency = checkHandlerOptions(handler, options);
    this.alarms(namespace);
    if (this.#dispatchers.has(namespace)) {
      throw new DurqError("DURQ_INVALID_STATE", `alarm namespace ${JSON.stringify(namespace)} already has a handler (after unregistering one, await the promise its function returned)`);
    }
    const d = new AlarmDispatcher(this.#alarmHost, namespace, handler, concurrency);
    this.#dispatchers.set(namespace, d);
    d.wake();
    let stopping: Promise<void> | undefined;
    return () =>
      (stopping ??= d.stop().then(() => {
        // Kept registered until its handlers are done, so a new handler of
        // the namespace cannot run an actor that is still running here.
        if (this.#dispatchers.get(namespace) === d) this.#dispatchers.delete(namespace);
      }));
  }

  /** The time (ms) the database's one timer is armed for, or `undefined`. For tests and diagnostics. */
  get nextTimerAt(): number | undefined {
    return this.#scheduler.armedAt;
  }

  // ---- effects -----------------------------------------------------------

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
    this.#checkOpen();
    return this.#callEffect(effect, input);
  }

  /** {@link callEffect} without the open check: handlers still running while `close()` waits for them may call effects. */
  async #callEffect<I, O>(effect: Effect<I, O>, input: I): Promise<O> {
    const { json, canonical } = effectInput(effect as Effect, input);
    const key = effectKey(effect as Effect, canonical);
    const c = this.#cache;
    const hit = c.get(key);
    if (hit !== undefined && this.#fresh(effect as Effect, hit.at)) {
      c.counters.memoryHits++;
      return JSON.parse(hit.json) as O;
    }
    let call = this.#effectCalls.get(key);
    if (call !== undefined) {
      c.counters.joined++;
    } else {
      call = this.#runEffect(effect as Effect, key, json, canonical);
      this.#effectCalls.set(key, call);
      const done = () => this.#effectCalls.delete(key);
      call.then(done, done);
    }
    return JSON.parse(await call) as O;
  }

  /** One effect miss in memory: the database (if persisted), else the effect itself. Resolves with the output's JSON. */
  async #runEffect(effect: Effect, key: string, inputJson: string, canonical: string): Promise<string> {
    const c = this.#cache;
    if (effect.cache) {
      const stored = coreCall(() => this.#core.getEffect(effect.name, canonical));
      // `{"version":N,"createdAt":MS,"output":...}` (field order pinned by
      // tests/effects.rs): the header is read without parsing the output,
      // whose text is kept as is.
      const head = typeof stored === "string" ? STORED_EFFECT_HEAD.exec(stored) : null;
      if (head !== null && Number(head[1]) === effect.version && this.#fresh(effect, Number(head[2]))) {
        const out = stored!.slice(head[0].length, -1);
        c.counters.databaseHits++;
        c.putLoaded(key, out, Number(head[2]));
        return out;
      }
    }
    c.counters.runs++;
    const output = await effect.run(JSON.parse(inputJson));
    const out = toJsonText(`the output of effect ${JSON.stringify(effect.name)}`, output === undefined ? null : output);
    const at = Math.floor(this.clock.now()); // stored with the output as its `createdAt`
    if (!effect.cache) {
      await c.whenRoom(() => c.putMemoryOnly(key, out, at));
      return out;
    }
    const op = opJson({ op: "putEffect", name: effect.name, version: effect.version, input: canonical, at }, { output: out });
    await c.whenRoom(() => {
      const track = c.putDirty(key, out, at);
      // Write-behind: the caller already has its output. A failure drops
      // the entry (its tracker) and is reported: a whole commit's failure
      // once, as such; this operation's own failure here.
      this.#queue.submit(op, undefined, track).catch((error: unknown) => {
        if (error !== this.#lastCommitError && !isDurqError(error, "DURQ_CLOSED")) this.#events.emit("error", { error, source: "effect" });
      });
    });
    return out;
  }

  /** Whether an output made at `at` (ms) is still valid for `effect` (its `maxAgeMs`). */
  #fresh(effect: Effect, at: number): boolean {
    return effect.maxAgeMs === undefined || this.clock.now() - at < effect.maxAgeMs;
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
    return this.#write(
      () => {
        if (effect !== undefined && !isEffect(effect)) throw invalidInput("deleteEffects(effect) needs an effect made by defineEffect()");
        return opJson(effect === undefined ? { op: "deleteEffects" } : { op: "deleteEffects", name: effect.name });
      },
      () => this.#cache.dropEffects(effect?.name),
    );
  }

  /**
   * The effect cache's counters: entries in memory (and how many wait for
   * their commit), the bound, the committed and processed generations,
   * evictions by tier, writes that waited, and how effect calls were
   * answered. A snapshot; cheap.
   */
  cacheStats(): CacheStats {
    return this.#cache.stats();
  }

  // ---- closing ------------------------------------------------------------

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
    if (this.#closed !== undefined) return this.#closed;
    this.#closing = true;
    this.#scheduler.stop(); // no timer fires after close(): no run claimed, no alarm started
    // Both stop synchronously: no claim and no alarm handler starts after this line.
    const stopping = [...[...this.#workers].map((w) => w.stop()), ...[...this.#dispatchers.values()].map((d) => d.stop())];
    this.#closed = (async () => {
      try {
        await Promise.allSettled(stopping);
        for (const set of [...this.#waiters.values()]) for (const w of [...set]) w.check();
        await this.#queue.drain();
        this.#queue.close();
        await this.#queue.drain(); // what was queued before close() still runs
        this.#cache.clear();
        coreCall(() => this.#core.close());
        try {
          this.#core.free?.();
        } catch {
          // already freed
        }
      } finally {
        this.#storage?.release();
        this.#events.clear();
      }
    })();
    return this.#closed;
  }

  // ---- internals ----------------------------------------------------------

  #checkOpen(): void {
    if (this.#closing) throw closedError();
  }

  /** Validates and queues a write; `build` throws for bad input. */
  #write<T>(build: () => string, onCommit?: (r: T) => void): Promise<T> {
    let json: string;
    try {
      this.#checkOpen();
      json = build();
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#queue.submit<T>(json, onCommit);
  }

  #enqueued(r: EnqueueResult, meta: { job: string; queue: string }): void {
    if (!r.created) return;
    this.#events.emit("run:enqueued", { id: r.id, job: meta.job, queue: meta.queue });
    this.#wakeWorkers(meta.queue);
  }

  #claimed(result: ClaimResult, workerId: string): void {
    const ev = this.#events;
    for (const x of result.expired) {
      // An attempt of this process whose lease lapsed (a blocked event loop)
      // learns now, before a new attempt of the same run can start.
      for (const e of [...(this.#executions.get(x.id) ?? [])]) {
        e.noteLeaseLost(new DurqError("DURQ_LEASE_LOST", `lease on run ${x.id} expired and was recovered by a claim`));
      }
      ev.emit("run:lease-expired", { id: x.id, status: x.status });
      if (x.status === "failed" && ev.has("run:failed")) {
        try {
          const run = parseResult<Run>(this.#core.getRun(x.id));
          ev.emit("run:failed", {
            id: x.id,
            job: run.job,
            attempt: run.attempt,
            error: run.error ?? { name: "LeaseExpired", message: "the lease expired", stack: null },
          });
        } catch {
          // best effort
        }
      }
      this.#notify(x.id);
    }
    for (const run of result.runs) {
      ev.emit("run:leased", { id: run.id, job: run.job, queue: run.queue, attempt: run.attempt, workerId, leaseExpiresAt: run.leaseExpiresAt });
    }
  }

  /** Emits `batch:<state>` once per batch that turned terminal in a commit, and wakes its waiters. */
  #batchesFinished(list: FinishedBatch[]): void {
    for (const b of list) {
      this.#events.emit(`batch:${b.state}`, { id: b.id, queue: b.queue, state: b.state, counts: b.counts });
      this.#notify(b.id);
    }
  }

  #notify(id: string): void {
    const set = this.#waiters.get(id);
    if (set === undefined) return;
    for (const w of [...set]) w.check();
  }

  #wakeWorkers(queue: string, except?: Worker): void {
    for (const w of this.#workers) if (w.queue === queue && w !== except) w.wake();
  }
}

/** A run or batch id argument: a non-empty string of at most 256 characters without NUL. */
function checkId(id: unknown, what = "run id"): string {
  if (typeof id !== "string" || id.length === 0 || id.length > 256 || id.includes("\0")) {
    throw invalidInput(`a ${what} must be a non-empty string, got ${typeof id === "string" ? JSON.stringify(id) : typeof id}`);
  }
  return id;
}

/** A batch that turned terminal in an operation (its result's `finishedBatches`). */
interface FinishedBatch {
  id: string;
  queue: string;
  state: "completed" | "failed" | "cancelled";
  counts: Batch["counts"];
}

/** `{"job":...,"maxAttempts":...,"backoff":{...}` (an unclosed object) of each job, made once. */
const jobPrefix = new WeakMap<Job<any, any>, string>();

/**
 * The JSON object of a new run (the fields of `enqueue` without `op` and
 * `now`), validated. Built as text: user input is serialized once, and the
 * job's fields are serialized once per job.
 */
function runJson(jobArg: Job<any, any> | string, input: unknown, options: EnqueueOptions | undefined, where: string): { json: string; meta: { job: string; queue: string } } {
  const job = resolveJob(jobArg, `${where}job`);
  const inputJson = toJsonText(`${where}input`, input);
  let json = jobPrefix.get(job);
  if (json === undefined) {
    json = JSON.stringify({ job: job.name, maxAttempts: job.retry.maxAttempts, backoff: job.retry.backoff }).slice(0, -1);
    jobPrefix.set(job, json);
  }
  let queue = "default";
  if (options !== undefined) {
    const o = checkOptions(`${where}enqueue options`, options, ENQUEUE_OPTIONS);
    if (o.queue != null) {
      queue = checkName(`${where}queue name`, o.queue);
      json += `,"queue":${JSON.stringify(queue)}`;
    }
    if (o.labels != null) json += `,"labels":${JSON.stringify(checkLabels(`${where}labels`, o.labels))}`;
    if (o.idempotencyKey != null) json += `,"idempotencyKey":${JSON.stringify(checkName(`${where}idempotencyKey`, o.idempotencyKey))}`;
    if (o.concurrencyKey != null) json += `,"concurrencyKey":${JSON.stringify(checkName(`${where}concurrencyKey`, o.concurrencyKey))}`;
    if (o.priority != null) json += `,"priority":${checkInt(`${where}priority`, o.priority, I32_MIN, I32_MAX)}`;
    if (o.runAt != null) json += `,"runAt":${checkTime(`${where}runAt`, o.runAt)}`;
  }
  json += `,"input":${inputJson}}`;
  return { json, meta: { job: job.name, queue } };
}
