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
import { ScheduleDispatcher, type ScheduleHost } from "./schedules.js";
import { IndexDeferral, type TransferHost } from "./transfer.js";
import type { Batch, EnqueueResult, Run, SearchStatus } from "./types.js";
import { checkName } from "./validate.js";
import { Waits, type WaitHost } from "./waits.js";
import { Worker, type ClaimResult, type WorkerHost, type WorkerOptions } from "./worker.js";
import type { CoreRead, Link } from "./link.js";
import { WriteQueue, type OpTracker } from "./write-queue.js";

/**
 * Where the database is written: by the core in this process (`local`: this
 * process owns it; `storage` undefined in memory), or by the owner process
 * reached over a link (`remote`: a client process of a shared file). @internal
 */
export type Backend = { kind: "local"; core: CoreHandle; storage: OpenedStorage | undefined } | { kind: "remote"; link: Link };

/** What a {@link DbContext} is made with (by `open`). @internal */
export interface DbInit {
  clock: Clock;
  /** Prefix of the ids of this database's workers. */
  workerId: string;
  /** What `Durq.path` reports (the storage's path, or the shared file's in a client process). */
  path: string | undefined;
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
export class DbContext implements WorkerHost, AlarmHost, TransferHost, WaitHost, EffectHost, ScheduleHost {
  /** The clock the database reads time from. */
  readonly clock: Clock;
  /** What `Durq.path` reports. */
  readonly path: string | undefined;
  /** This process's `workerId`, the prefix of its workers' ids. */
  readonly workerId: string;
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
  /** Fires the cron schedules (owner only) on the one timer. */
  readonly schedules = new ScheduleDispatcher(this);
  /** The error of the last commit that failed as a whole (already reported as such). */
  lastCommitError: unknown = undefined;
  /** Where the database is written; `undefined` while a client process changes owner (calls wait for {@link DbContext.become}). */
  #backend: Backend | undefined;
  #backendWaiters: ((b: Backend | Error) => void)[] = [];
  /** Workers that are started or have work in flight. */
  readonly #workers = new Set<Worker>();
  readonly #executions = new Map<string, Set<Execution>>();
  readonly #namespaces = new Map<string, AlarmNamespace>();
  readonly #dispatchers = new Map<string, AlarmDispatcher>();
  #workerCount = 0;
  #closing = false;
  /** Called once closed (the shared file's owner stops serving; a client stops taking over). */
  #onClosed: (() => void) | undefined;
  /** Called when `close()` starts (the shared file's owner tells its clients). */
  #onClosing: (() => void) | undefined;
  #closed: Promise<void> | undefined;

  /** @throws what reading the search status throws (the caller closes the core). */
  constructor(backend: Backend, init: DbInit) {
    this.#backend = backend;
    this.path = init.path;
    this.clock = init.clock;
    this.workerId = init.workerId;
    this.#commitHook = init.commit;
    this.queue = new WriteQueue({
      apply: (now, json, parts) => this.#apply(now, json, parts),
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
    const storage = backend.kind === "local" ? backend.storage : undefined;
    this.scheduler = new Scheduler(this.clock, storage?.timerChanged === undefined ? undefined : (at) => this.#mirrorTimer(at));
    if (backend.kind === "local") {
      this.#checkSearch(backend.core);
      queueMicrotask(() => this.schedules.wake()); // slots due at open fire now (by their catch-up policy)
    }
  }

  readonly #commitHook: DbInit["commit"];

  /**
   * An import that died left the search index deferred; the core repaired
   * it at open. If that failed, say so (search answers DURQ_SEARCH_STALE
   * until restoreSearchIndex() succeeds); the database is usable. Emitted
   * on a later macrotask, so a listener added right after `await open()`
   * receives it (without one, it is printed).
   */
  #checkSearch(core: CoreHandle): void {
    const search = parseResult<SearchStatus>(coreCall(() => core.searchStatus()));
    if (search.openError !== null) {
      const error = new DurqError("DURQ_SEARCH_STALE", `the search index could not be rebuilt at open: ${search.openError}`);
      setTimeout(() => this.events.emit("error", { error, source: "search" }), 0);
    }
  }

  // ---- the backend ------------------------------------------------------------

  /** The database in the wasm core; `DURQ_INTERNAL` in a client process (whose core is the owner's). */
  get core(): CoreHandle {
    const b = this.#backend;
    if (b?.kind !== "local") throw new DurqError("DURQ_INTERNAL", "this process does not own the database: its core is in the owner process");
    return b.core;
  }

  /** The platform's storage, or `undefined` in memory and in a client process. */
  get storage(): OpenedStorage | undefined {
    const b = this.#backend;
    return b?.kind === "local" ? b.storage : undefined;
  }

  /** Whether this process owns the database (writes it with its own core). */
  owns(): boolean {
    return this.#backend?.kind === "local";
  }

  /** The link to the owner, in a client process. */
  get link(): Link | undefined {
    const b = this.#backend;
    return b?.kind === "remote" ? b.link : undefined;
  }

  /** The backend, once there is one (a client process changing owner waits). */
  #ready(): Promise<Backend> {
    const b = this.#backend;
    if (b !== undefined) return Promise.resolve(b);
    return new Promise((resolve, reject) => this.#backendWaiters.push((x) => (x instanceof Error ? reject(x) : resolve(x))));
  }

  /**
   * The owner went away: calls made from now wait until {@link DbContext.become}
   * names the next one (or {@link DbContext.abandon} gives up).
   */
  suspend(): void {
    this.#backend = undefined;
  }

  /**
   * The database is now written here (`local`: this process took it over)
   * or through a new owner (`remote`). Re-opens the alarm namespaces known
   * here, starts the alarm handlers registered here if local, and wakes the
   * workers (what was enqueued meanwhile was not announced to them).
   */
  become(b: Backend): void {
    this.#backend = b;
    const waiters = this.#backendWaiters;
    this.#backendWaiters = [];
    for (const w of waiters) w(b);
    for (const ns of this.#namespaces.keys()) {
      try {
        this.#openNamespace(ns);
      } catch (error) {
        this.events.emit("error", { error, source: "alarm" });
      }
    }
    if (b.kind === "local") {
      this.#checkSearch(b.core);
      for (const d of this.#dispatchers.values()) d.wake();
      this.schedules.wake();
    }
    this.wakeAllWorkers();
  }

  /** No owner can be found: calls waiting for one reject with `error`, and so do later ones until {@link DbContext.become}. */
  abandon(error: DurqError): void {
    this.#backend = { kind: "remote", link: deadLink(error) };
    const waiters = this.#backendWaiters;
    this.#backendWaiters = [];
    for (const w of waiters) w(error);
  }

  /** A group commit: the core's `apply` here (in the host's transaction, through the test seam), or the owner's. */
  #apply(now: number, json: string, parts: readonly string[]): string | Promise<string> {
    const b = this.#backend;
    if (b === undefined) return this.#ready().then(() => this.#apply(now, json, parts));
    if (b.kind === "remote") return this.#remote(b, (link) => link.call(["core"], "apply", [parts])) as Promise<string>;
    const { core, storage } = b;
    const transact = storage?.transact?.bind(storage);
    const applyCore = (j: string) => (transact === undefined ? core.apply(now, j) : transact(() => core.apply(now, j)));
    const commit = this.#commitHook;
    return (commit === undefined ? applyCore(json) : commit(json, applyCore)) as string | Promise<string>;
  }

  /**
   * A read of the core: synchronous here when this process owns the
   * database, a promise of the owner's answer in a client process (or
   * while it changes owner). Throws (or rejects) what the core throws, as a
   * {@link DurqError}.
   */
  coreRead(method: CoreRead, ...args: unknown[]): unknown {
    const b = this.#backend;
    if (b?.kind === "local") return coreCall(() => (b.core[method] as (...a: unknown[]) => unknown).apply(b.core, args));
    return this.#ready().then((x) =>
      x.kind === "local"
        ? coreCall(() => (x.core[method] as (...a: unknown[]) => unknown).apply(x.core, args))
        : this.#remote(x, (link) => link.call(["core"], method, args)),
    );
  }

  /**
   * A call through the owner of `b`. One the owner refused untouched (it was
   * closing the database) goes to the next backend, once there is one.
   */
  #remote(b: Backend & { kind: "remote" }, f: (link: Link) => Promise<unknown>): Promise<unknown> {
    return f(b.link).catch((e: unknown) => {
      if ((e as { notApplied?: unknown })?.notApplied !== true) throw e;
      return this.#after(b).then((next) => (next.kind === "remote" ? this.#remote(next, f) : this.#localRetry(f, next)));
    });
  }

  /** `f` was meant for an owner; this process now owns the database: what `f` asked is answered here. */
  #localRetry(f: (link: Link) => Promise<unknown>, b: Backend & { kind: "local" }): Promise<unknown> {
    return f({
      ownerWorkerId: this.workerId,
      call: async (_target, method, args) =>
        method === "apply"
          ? this.#apply(this.clock.now(), `[${(args[0] as string[]).join(",")}]`, args[0] as string[])
          : coreCall(() => (b.core[method as CoreRead] as (...a: unknown[]) => unknown).apply(b.core, args)),
      subscribe: () => undefined,
      publish: () => undefined,
      close: () => undefined,
    });
  }

  /** The first backend other than `old` (waits for {@link DbContext.become}). */
  #after(old: Backend): Promise<Backend> {
    const b = this.#backend;
    if (b !== undefined && b !== old) return Promise.resolve(b);
    return new Promise((resolve, reject) =>
      this.#backendWaiters.push((x) => {
        if (x instanceof Error) reject(x);
        else if (x === old) this.#after(old).then(resolve, reject);
        else resolve(x);
      }),
    );
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

  /** Wakes every started worker (a client process's leases were just expired, an owner changed). */
  wakeAllWorkers(): void {
    for (const w of this.#workers) w.wake();
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

  /** `core.getRun`, parsed (a promise in a client process); throws what the core throws (`DURQ_NOT_FOUND`). */
  readRun<I = unknown, O = unknown>(id: string): Run<I, O> | Promise<Run<I, O>> {
    return then(this.coreRead("getRun", id), (t) => parseResult<Run<I, O>>(t));
  }

  /** `core.getBatch`, parsed (a promise in a client process); throws what the core throws (`DURQ_NOT_FOUND`). */
  readBatch(id: string): Batch | Promise<Batch> {
    return then(this.coreRead("getBatch", id), (t) => parseResult<Batch>(t));
  }

  /** `core.getStepOutput`: a stored step's output JSON, or undefined (a promise of it in a client process). */
  readStep(runId: string, name: string): string | undefined | Promise<string | undefined> {
    return then(this.coreRead("getStepOutput", runId, name), (out) => (typeof out === "string" ? out : undefined));
  }

  /** `core.getEffect`: the stored output of an effect for a canonical input, or undefined. */
  async readEffect(name: string, canonicalInput: string): Promise<string | null | undefined> {
    return (await this.coreRead("getEffect", name, canonicalInput)) as string | null | undefined;
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
    return new Worker(this, `${this.workerId}:w${++this.#workerCount}`, options);
  }

  /** {@link Durq.callEffect} without the open check (handlers that `close()` waits for may still call effects). */
  callEffect<I, O>(effect: Effect<I, O>, input: I): Promise<O> {
    return this.effects.call(effect, input);
  }

  /** `core.nextWakeAt(queue)`; undefined if none or if the database is closed (a promise of it in a client process, never rejecting). */
  nextWakeAt(queue: string): number | undefined | Promise<number | undefined> {
    const asTime = (at: unknown) => (typeof at === "number" ? at : undefined);
    try {
      const at = this.coreRead("nextWakeAt", queue);
      return at instanceof Promise ? at.then(asTime, () => undefined) : asTime(at);
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
        const failed = (run: Run) =>
          ev.emit("run:failed", {
            id: x.id,
            job: run.job,
            attempt: run.attempt,
            error: run.error ?? { name: "LeaseExpired", message: "the lease expired", stack: null },
          });
        try {
          const run = this.readRun(x.id);
          if (run instanceof Promise) run.then(failed, () => undefined);
          else failed(run);
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
      if (typeof x === "number" && (t === undefined || x < t)) t = x;
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
    this.#openNamespace(namespace);
    const handle = new AlarmNamespace(this, namespace);
    this.#namespaces.set(namespace, handle);
    return handle;
  }

  /**
   * Opens the alarm namespace in the core here, or asks the owner to (its
   * answer is not awaited: the socket keeps order, so the owner opens it
   * before it applies this process's next commit). While the owner
   * changes, {@link DbContext.become} opens it later.
   */
  #openNamespace(namespace: string): void {
    const b = this.#backend;
    if (b === undefined) return;
    if (b.kind === "remote") {
      b.link.call(["core"], "openAlarms", [namespace]).catch((error: unknown) => this.events.emit("error", { error, source: "alarm" }));
      return;
    }
    const { core, storage } = b;
    coreCall(() => core.validateNamespace(namespace));
    const dir = coreCall(() => core.alarmDir());
    storage?.prepareAlarms(dir, this.#namespaces.size);
    const transact = storage?.transact?.bind(storage);
    coreCall(() => (transact === undefined ? core.openAlarms(namespace) : transact(() => core.openAlarms(namespace))));
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

  /** {@link DbContext.getAlarm} wherever the database is owned. */
  async readAlarm(ns: string, actorId: string): Promise<StoredAlarm | undefined> {
    const text = await this.coreRead("getAlarm", ns, actorId);
    return typeof text === "string" ? (JSON.parse(text) as StoredAlarm) : undefined;
  }

  /** {@link DbContext.listAlarms} wherever the database is owned. */
  async readAlarms(ns: string, filterJson: string): Promise<{ alarms: StoredAlarm[]; nextCursor: string | null }> {
    return JSON.parse((await this.coreRead("listAlarms", ns, filterJson)) as string);
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

  /** O(1) estimate of the runs stored (a promise in a client process). */
  runCountEstimate(): number | Promise<number> {
    return this.coreRead("runCountEstimate") as number | Promise<number>;
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
      return n + this.schedules.starts;
    };
    const pending = (): Promise<unknown>[] => [
      ...this.schedules.pending(),
      ...[...this.#workers].flatMap((w) => w.pending()),
      ...[...this.#dispatchers.values()].flatMap((d) => d.pending()),
    ];
    for (;;) {
      if (this.#closing) return;
      const before = starts();
      this.scheduler.fireDue();
      this.schedules.wake();
      await Promise.allSettled(this.schedules.pending()); // the runs of due slots are claimable below
      for (const w of this.#workers) w.wake();
      for (const d of this.#dispatchers.values()) d.wake();
      // Wait until what was woken has settled, without waking it again: a
      // wake during a worker's claim makes it claim once more, so waking
      // each round would keep a started worker claiming for ever.
      for (let p = pending(); p.length > 0; p = pending()) await Promise.allSettled(p);
      if (starts() === before) break;
    }
    await this.queue.drain();
  }

  // ---- closing ---------------------------------------------------------------------------

  /** Sets what runs once the database is closed, after its storage is released, and what runs when `close()` starts. */
  whenClosed(f: () => void, closing?: () => void): void {
    this.#onClosed = f;
    this.#onClosing = closing;
  }

  /** {@link Durq.close}. */
  close(): Promise<void> {
    if (this.#closed !== undefined) return this.#closed;
    this.#closing = true;
    this.#onClosing?.();
    this.scheduler.stop(); // no timer fires after close(): no run claimed, no alarm started
    // Both stop synchronously: no claim and no alarm handler starts after this line.
    const stopping = [...[...this.#workers].map((w) => w.stop()), ...[...this.#dispatchers.values()].map((d) => d.stop()), this.schedules.stop()];
    this.#closed = (async () => {
      try {
        await Promise.allSettled(stopping);
        this.waits.checkAll();
        await this.queue.drain();
        this.queue.close();
        await this.queue.drain(); // what was queued before close() still runs
        this.cache.clear();
        const b = this.#backend;
        if (b?.kind === "local") {
          coreCall(() => b.core.close());
          try {
            b.core.free?.();
          } catch {
            // already freed
          }
        }
      } finally {
        const b = this.#backend;
        if (b?.kind === "local") b.storage?.release();
        else b?.link.close();
        this.#onClosed?.();
        this.events.clear();
      }
    })();
    return this.#closed;
  }
}

/** `f(v)`, at once for a value, or once a promise settles (a client process's reads). */
function then<T, R>(v: unknown, f: (t: T) => R): R | Promise<R> {
  return v instanceof Promise ? (v as Promise<T>).then(f) : f(v as T);
}

/** A link that fails every call with `error` (no owner could be found). */
function deadLink(error: DurqError): Link {
  return {
    ownerWorkerId: "",
    call: () => Promise.reject(error),
    subscribe: () => undefined,
    publish: () => undefined,
    close: () => undefined,
  };
}
