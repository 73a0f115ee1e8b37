/**
 * The state of one open database behind its {@link Durq} handle: the core,
 * the write queue, the effect cache, the one timer, the events, and what is
 * running in this process (workers and their attempts, alarm handlers,
 * waiters, effect calls). {@link DbContext} is the host that workers, alarm
 * namespaces, imports, waiters and effect calls are given; it emits the
 * events that follow commits and closes everything in order.
 * Internal: not exported from the package.
 *
 * @module
 */

import {
  AlarmDispatcher,
  AlarmNamespace,
  checkHandlerOptions,
  type AlarmHandler,
  type AlarmHandlerOptions,
  type AlarmHost,
  type StoredAlarm,
} from "./alarms.js";
import type { Execution } from "./attempt.js";
import { MemoryStore } from "./cache.js";
import type { Clock } from "./clock.js";
import { coreCall, parseResult, type CoreHandle } from "./core.js";
import type { Effect } from "./effect.js";
import { EffectCalls, type EffectHost } from "./effect-calls.js";
import { closedError, DurqError, invalidInput } from "./errors.js";
import { Emitter, EVENT_NAMES, type DurqEventName, type DurqListener } from "./events.js";
import type { OpenedStorage } from "./platform.js";
import type { BatchState as CoreBatchState, FinishedBatch as CoreFinishedBatch } from "./generated/boundary.js";
import { Scheduler, type Sleeper } from "./scheduler.js";
import { IndexDeferral, type TransferHost } from "./transfer.js";
import type { Batch, EnqueueResult, Run, SearchStatus } from "./types.js";
import { checkName } from "./validate.js";
import { Waits, type WaitHost } from "./waits.js";
import { Worker, type ClaimResult, type WorkerHost, type WorkerOptions } from "./worker.js";
import { WriteQueue, type OpTracker } from "./write-queue.js";

/** What a {@link DbContext} is made with (by `open`). @internal */
export interface DbInit {
  clock: Clock;
  /** Prefix of the ids of this database's workers. */
  workerId: string;
  /** The platform's storage, or `undefined` in memory. */
  storage: OpenedStorage | undefined;
  maxInMemoryChanges: number;
  /** Wraps each group commit (`OpenHooks.commit`, a test seam). */
  commit?: ((opsJson: string, apply: (opsJson: string) => string) => string | PromiseLike<string>) | undefined;
}

/** A batch that turned terminal in an operation (its outcome's `finishedBatches`): the core's type, whose state is never `active`. */
type FinishedBatch = Omit<CoreFinishedBatch, "state"> & { state: Exclude<CoreBatchState, "active"> };

/** Job and queue of a run just enqueued, for its `run:enqueued` event. @internal */
export interface EnqueuedMeta {
  job: string;
  queue: string;
}

/** The state of one open database, and the host of everything running on it. @internal */
export class DbContext implements WorkerHost, AlarmHost, TransferHost, WaitHost, EffectHost {
  /** The clock the database reads time from. */
  readonly clock: Clock;
  /** The database in the wasm core. */
  readonly core: CoreHandle;
  /** The platform's storage, or `undefined` in memory. */
  readonly storage: OpenedStorage | undefined;
  /** The database's events (`Durq.on`). */
  readonly events = new Emitter();
  /** The one serialized write queue (group commit). */
  readonly queue: WriteQueue;
  /** The effect cache's in-memory store (effect outputs, step outputs of running runs). */
  readonly cache: MemoryStore;
  /** The one timer of this database (workers' next runs, alarm namespaces' next alarms). */
  readonly scheduler: Scheduler;
  /** Waiters of `waitForRun` and `waitForBatch`. */
  readonly waits = new Waits(this);
  /** Effect calls in flight. */
  readonly effects = new EffectCalls(this);
  /** The search index's deferral by imports. */
  readonly deferral = new IndexDeferral(this);
  /** The error of the last commit that failed as a whole (already reported as such). */
  lastCommitError: unknown = undefined;
  readonly #workerId: string;
  /** Workers that are started or have work in flight. */
  readonly #workers = new Set<Worker>();
  readonly #executions = new Map<string, Set<Execution>>();
  readonly #namespaces = new Map<string, AlarmNamespace>();
  readonly #dispatchers = new Map<string, AlarmDispatcher>();
  #workerCount = 0;
  #closing = false;
  #closed: Promise<void> | undefined;

  /** @throws what reading the search status throws (the caller closes the core). */
  constructor(core: CoreHandle, init: DbInit) {
    this.core = core;
    this.storage = init.storage;
    this.clock = init.clock;
    this.#workerId = init.workerId;
    const commit = init.commit;
    const transact = init.storage?.transact?.bind(init.storage);
    const applyCore =
      transact === undefined ? (now: number, j: string) => this.core.apply(now, j) : (now: number, j: string) => transact(() => this.core.apply(now, j));
    this.queue = new WriteQueue({
      apply: (now, json) => (commit === undefined ? applyCore(now, json) : commit(json, (j) => applyCore(now, j))),
      onSettled: () => {
        this.cache.settled();
        if (this.storage?.timerChanged !== undefined) this.#mirrorTimer(this.scheduler.armedAt);
      },
      now: () => this.clock.now(),
      onCommitError: (error) => {
        this.lastCommitError = error;
        this.events.emit("error", { error, source: "commit" });
      },
      onHookError: (error) => {
        console.error("durq: internal error after a commit:", error);
        this.events.emit("error", { error, source: "worker" });
      },
      observe: (finished) => {
        // The batches an operation turned terminal (its outcome's `finishedBatches`), each once.
        if (finished !== undefined) this.#batchesFinished(finished as FinishedBatch[]);
      },
    });
    this.cache = new MemoryStore(init.maxInMemoryChanges, this.queue);
    const storage = init.storage;
    this.scheduler = new Scheduler(this.clock, storage?.timerChanged === undefined ? undefined : (at) => this.#mirrorTimer(at));
    // An import that died left the search index deferred; the core repaired
    // it at open. If that failed, say so (search answers DURQ_SEARCH_STALE
    // until restoreSearchIndex() succeeds); the database is usable. Emitted
    // on a later macrotask, so a listener added right after `await open()`
    // receives it (without one, it is printed).
    const search = parseResult<SearchStatus>(coreCall(() => this.core.searchStatus()));
    if (search.openError !== null) {
      const error = new DurqError("DURQ_SEARCH_STALE", `the search index could not be rebuilt at open: ${search.openError}`);
      setTimeout(() => this.events.emit("error", { error, source: "search" }), 0);
    }
  }

  /** Whether `close()` was called. */
  get closing(): boolean {
    return this.#closing;
  }

  /** Throws `DURQ_CLOSED` once `close()` was called. */
  checkOpen(): void {
    if (this.#closing) throw closedError();
  }

  // ---- writes ----------------------------------------------------------------

  /** Queues an operation on the write queue, even while the database is closing (outcomes of handlers in flight). */
  submit<T>(json: string, onCommit?: (result: T) => void, track?: OpTracker): Promise<T> {
    return this.queue.submit<T>(json, onCommit, track);
  }

  /**
   * Checks that the database is open, builds the operation (`op` throws for
   * bad input) and queues it; rejects instead of throwing.
   */
  write<T>(op: string | (() => string), onCommit?: (result: T) => void): Promise<T> {
    let json: string;
    try {
      this.checkOpen();
      json = typeof op === "string" ? op : op();
    } catch (e) {
      return Promise.reject(e);
    }
    return this.queue.submit<T>(json, onCommit);
  }

  /** A run was enqueued (by `enqueue`, `enqueueMany`, `enqueueBatch`): emits `run:enqueued` and wakes the workers of its queue. */
  enqueued(r: EnqueueResult, meta: EnqueuedMeta): void {
    if (!r.created) return;
    this.events.emit("run:enqueued", { id: r.id, job: meta.job, queue: meta.queue });
    this.wakeWorkers(meta.queue);
  }

  /** Run `id` was cancelled: the handlers running it in this process see their signal aborted. */
  cancelExecutions(id: string): void {
    for (const e of [...(this.#executions.get(id) ?? [])]) e.cancel();
  }

  /** Run or batch `id` changed in this process: its waiters re-read it. */
  notify(id: string): void {
    this.waits.notify(id);
  }

  /** Wakes the started workers of `queue` (but `except`). */
  wakeWorkers(queue: string, except?: object): void {
    for (const w of this.#workers) if (w.queue === queue && w !== except) w.wake();
  }

  /** Emits `batch:<state>` once per batch that turned terminal in a commit, and wakes its waiters. */
  #batchesFinished(list: FinishedBatch[]): void {
    for (const b of list) {
      this.events.emit(`batch:${b.state}`, { id: b.id, queue: b.queue, state: b.state, counts: b.counts });
      this.notify(b.id);
    }
  }

  // ---- reads ------------------------------------------------------------------

  /** `core.getRun`, parsed; throws what the core throws (`DURQ_NOT_FOUND`). */
  readRun<I = unknown, O = unknown>(id: string): Run<I, O> {
    return parseResult<Run<I, O>>(this.core.getRun(id));
  }

  /** `core.getBatch`, parsed; throws what the core throws (`DURQ_NOT_FOUND`). */
  readBatch(id: string): Batch {
    return parseResult<Batch>(this.core.getBatch(id));
  }

  /** `core.getStepOutput`: a stored step's output JSON, or undefined. */
  readStep(runId: string, name: string): string | undefined {
    const out = coreCall(() => this.core.getStepOutput(runId, name));
    return typeof out === "string" ? out : undefined;
  }

  // ---- events -----------------------------------------------------------------

  /** {@link Durq.on}: checks the name and listener. */
  listen<E extends DurqEventName>(name: E, listener: DurqListener<E>): () => void {
    if (!EVENT_NAMES.includes(name)) throw invalidInput(`unknown event ${JSON.stringify(name)}; known: ${EVENT_NAMES.join(", ")}`);
    if (typeof listener !== "function") throw invalidInput(`listener of ${JSON.stringify(name)} must be a function`);
    return this.events.on(name, listener);
  }

  // ---- workers (WorkerHost) -----------------------------------------------------

  /** {@link Durq.worker}. */
  worker(options: WorkerOptions): Worker {
    this.checkOpen();
    return new Worker(this, `${this.#workerId}:w${++this.#workerCount}`, options);
  }

  /** {@link Durq.callEffect} without the open check (handlers that `close()` waits for may still call effects). */
  callEffect<I, O>(effect: Effect<I, O>, input: I): Promise<O> {
    return this.effects.call(effect, input);
  }

  /** `core.nextWakeAt(queue)`; undefined if none or if the database is closed. */
  nextWakeAt(queue: string): number | undefined {
    try {
      const at = this.core.nextWakeAt(queue);
      return typeof at === "number" ? at : undefined;
    } catch {
      return undefined;
    }
  }

  /** Asks the database's one timer to wake `s` at `atMs`; `undefined` cancels the request. */
  sleepUntil(s: Sleeper, atMs: number | undefined): void {
    this.scheduler.sleepUntil(s, atMs);
  }

  /** Emits the events of a claim (`run:leased`, `run:lease-expired`, `run:failed`) and tells attempts of this process whose lease a claim recovered. */
  claimed(result: ClaimResult, workerId: string): void {
    const ev = this.events;
    for (const x of result.expired) {
      // An attempt of this process whose lease lapsed (a blocked event loop)
      // learns now, before a new attempt of the same run can start.
      for (const e of [...(this.#executions.get(x.id) ?? [])]) {
        e.noteLeaseLost(new DurqError("DURQ_LEASE_LOST", `lease on run ${x.id} expired and was recovered by a claim`));
      }
      ev.emit("run:lease-expired", { id: x.id, status: x.status });
      if (x.status === "failed" && ev.has("run:failed")) {
        try {
          const run = this.readRun(x.id);
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
      this.notify(x.id);
    }
    for (const run of result.runs) {
      ev.emit("run:leased", { id: run.id, job: run.job, queue: run.queue, attempt: run.attempt, workerId, leaseExpiresAt: run.leaseExpiresAt });
    }
  }

  /** A run reached a new status in this process: wakes its waiters, and the workers of its queue other than `from`. */
  runChanged(id: string, queue: string, from: object): void {
    this.notify(id);
    this.wakeWorkers(queue, from);
  }

  /** An attempt started here: a cancel or a lease recovery reaches it. */
  register(e: Execution): void {
    let set = this.#executions.get(e.id);
    if (set === undefined) {
      set = new Set();
      this.#executions.set(e.id, set);
    }
    set.add(e);
  }

  /**
   * Tells a host that sleeps (a Durable Object) when to wake it: the
   * scheduler's time `at`, or earlier the next due run or lease expiry of
   * each worker's queue (`nextWakeAt`). A worker at its concurrency, or
   * one busy with its runs, registers no time with the scheduler, so
   * without this a crash mid-run would leave nothing to wake the host when
   * the leases expire. Called on every re-arm and after every commit.
   */
  #mirrorTimer(at: number | undefined): void {
    let t = at;
    for (const w of this.#workers) {
      const x = this.nextWakeAt(w.queue);
      if (x !== undefined && (t === undefined || x < t)) t = x;
    }
    this.storage?.timerChanged?.(t);
  }

  /** An attempt is over. */
  unregister(e: Execution): void {
    const set = this.#executions.get(e.id);
    if (set?.delete(e) && set.size === 0) this.#executions.delete(e.id);
  }

  /** The worker is started or has work in flight: `close()` stops it, enqueues wake it. */
  track(w: Worker): void {
    this.#workers.add(w);
  }

  /** The worker is stopped and has nothing in flight. */
  untrack(w: Worker): void {
    this.#workers.delete(w);
  }

  // ---- alarms (AlarmHost) ---------------------------------------------------------

  /** {@link Durq.alarms}. */
  alarms(namespace: string): AlarmNamespace {
    this.checkOpen();
    const known = this.#namespaces.get(namespace);
    if (known !== undefined) return known;
    checkName("alarm namespace", namespace); // a string, no lone surrogate (it becomes a file name); the core checks the rest
    coreCall(() => this.core.validateNamespace(namespace));
    const dir = coreCall(() => this.core.alarmDir());
    this.storage?.prepareAlarms(dir, this.#namespaces.size);
    const transact = this.storage?.transact?.bind(this.storage);
    coreCall(() => (transact === undefined ? this.core.openAlarms(namespace) : transact(() => this.core.openAlarms(namespace))));
    const handle = new AlarmNamespace(this, namespace);
    this.#namespaces.set(namespace, handle);
    return handle;
  }

  /** {@link Durq.onAlarm}. */
  onAlarm(namespace: string, handler: AlarmHandler, options?: AlarmHandlerOptions): () => Promise<void> {
    this.checkOpen();
    const concurrency = checkHandlerOptions(handler, options);
    this.alarms(namespace);
    if (this.#dispatchers.has(namespace)) {
      throw new DurqError(
        "DURQ_INVALID_STATE",
        `alarm namespace ${JSON.stringify(namespace)} already has a handler (after unregistering one, await the promise its function returned)`,
      );
    }
    const d = new AlarmDispatcher(this, namespace, handler, concurrency);
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

  /** `core.getAlarm`: the actor's alarm row, or undefined. */
  getAlarm(ns: string, actorId: string): StoredAlarm | undefined {
    const text = coreCall(() => this.core.getAlarm(ns, actorId));
    return typeof text === "string" ? (JSON.parse(text) as StoredAlarm) : undefined;
  }

  /** `core.listAlarms`: a page of the namespace's alarms for a filter JSON. */
  listAlarms(ns: string, filterJson: string): { alarms: StoredAlarm[]; nextCursor: string | null } {
    return JSON.parse(coreCall(() => this.core.listAlarms(ns, filterJson)));
  }

  /** The namespace's earliest alarm strictly after `after`, ms. */
  nextAlarmAfter(ns: string, after: number): number | undefined {
    const at = coreCall(() => this.core.nextAlarmAfter(ns, after));
    return typeof at === "number" ? at : undefined;
  }

  /** An alarm of `ns` was set to `timeMs`: tells the namespace's dispatcher, if a handler is registered. */
  alarmSet(ns: string, timeMs: number): void {
    this.#dispatchers.get(ns)?.alarmSet(timeMs);
  }

  /** Whether a handler of `ns` in this process is running alarm `version` of `actorId`. */
  isRunning(ns: string, actorId: string, version: number): boolean {
    return this.#dispatchers.get(ns)?.isRunning(actorId, version) ?? false;
  }

  // ---- import (TransferHost) ----------------------------------------------------------

  /** O(1) estimate of the runs stored. */
  runCountEstimate(): number {
    return coreCall(() => this.core.runCountEstimate());
  }

  /** Holds the search index deferred (reference-counted) until the returned release is awaited. */
  deferIndex(): Promise<() => Promise<void>> {
    return this.deferral.acquire();
  }

  /** A failure of the search index's restore that cannot reject anything: an `error` event from `"search"`. */
  reportError(error: unknown): void {
    this.events.emit("error", { error, source: "search" });
  }

  // ---- due work ---------------------------------------------------------------------------

  /** {@link Durq.runDue}. */
  async runDue(): Promise<void> {
    this.checkOpen();
    const starts = (): number => {
      let n = 0;
      for (const w of this.#workers) n += w.starts;
      for (const d of this.#dispatchers.values()) n += d.starts;
      return n;
    };
    for (;;) {
      if (this.#closing) return;
      const before = starts();
      this.scheduler.fireDue();
      for (const w of this.#workers) w.wake();
      for (const d of this.#dispatchers.values()) d.wake();
      const pending = [...[...this.#workers].flatMap((w) => w.pending()), ...[...this.#dispatchers.values()].flatMap((d) => d.pending())];
      if (pending.length === 0) break;
      await Promise.allSettled(pending);
      if (
        starts() === before &&
        ![...this.#workers].some((w) => w.pending().length > 0) &&
        ![...this.#dispatchers.values()].some((d) => d.pending().length > 0)
      )
        break;
    }
    await this.queue.drain();
  }

  // ---- closing ---------------------------------------------------------------------------

  /** {@link Durq.close}. */
  close(): Promise<void> {
    if (this.#closed !== undefined) return this.#closed;
    this.#closing = true;
    this.scheduler.stop(); // no timer fires after close(): no run claimed, no alarm started
    // Both stop synchronously: no claim and no alarm handler starts after this line.
    const stopping = [...[...this.#workers].map((w) => w.stop()), ...[...this.#dispatchers.values()].map((d) => d.stop())];
    this.#closed = (async () => {
      try {
        await Promise.allSettled(stopping);
        this.waits.checkAll();
        await this.queue.drain();
        this.queue.close();
        await this.queue.drain(); // what was queued before close() still runs
        this.cache.clear();
        coreCall(() => this.core.close());
        try {
          this.core.free?.();
        } catch {
          // already freed
        }
      } finally {
        this.storage?.release();
        this.events.clear();
      }
    })();
    return this.#closed;
  }
}
