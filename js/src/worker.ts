/**
 * Workers: claim runs of their jobs under a lease, run the handlers, renew
 * the lease by heartbeat, and record the outcome.
 *
 * @module
 */

import type { Clock } from "./clock.js";
import { DurqError, isDurqError } from "./errors.js";
import type { Emitter } from "./events.js";
import { isJob, type Job } from "./job.js";
import { StepContext, type StepHost } from "./step.js";
import type { RunStatus } from "./types.js";
import { checkDuration, checkInt, checkName, checkOptions, toJsonText } from "./validate.js";
import { opJson, type OpTracker } from "./write-queue.js";
import type { MemoryStore } from "./cache.js";
import { stepKey, type Effect } from "./effect.js";

/** Options of {@link Durq.worker}. */
export interface WorkerOptions {
  /** The jobs this worker runs (made by `defineJob`, distinct names). It claims only runs of these jobs; runs of other jobs stay pending for workers that have them. */
  jobs: readonly Job<any, any>[];
  /** Most runs handled at once: 1 ..= 1000 (default 1). */
  concurrency?: number;
  /** Lease length, ms (default 30 000). A heartbeat renews it every `leaseMs / 3`; a run whose lease lapses (the process died or blocked its event loop) goes back to the queue at the next claim. */
  leaseMs?: number;
  /** The queue to work on (default `"default"`). */
  queue?: string;
  /** After `start()`, the longest an idle worker sleeps before looking for due runs again, ms (default: it sleeps until the next run is due, and is woken at once by enqueues of this process). */
  pollMs?: number;
}

/** A claimed run, as the core returns it. @internal */
export interface ClaimedRun {
  id: string;
  job: string;
  queue: string;
  input: unknown;
  attempt: number;
  maxAttempts: number;
  token: number;
  leaseExpiresAt: number;
  labels: Record<string, string>;
  steps: Record<string, unknown>;
}

/** Result of the `claim` operation. @internal */
export interface ClaimResult {
  runs: ClaimedRun[];
  expired: { id: string; status: RunStatus }[];
}

/** One attempt of a run being handled in this process. @internal */
export interface Execution {
  readonly id: string;
  readonly job: string;
  readonly attempt: number;
  readonly workerId: string;
  /** Aborts the handler's signal with a `DURQ_CANCELLED` reason (the run was cancelled). */
  cancel(): void;
  /** Aborts the handler's signal with `e` (`DURQ_LEASE_LOST`): the lease expired and was recovered. */
  noteLeaseLost(e: DurqError): void;
}

/** What a worker needs from its database. @internal */
export interface WorkerHost {
  readonly clock: Clock;
  readonly events: Emitter;
  /** Queues an operation on the write queue (even while the database is closing). */
  submit<T>(json: string, onCommit?: (result: T) => void, track?: OpTracker): Promise<T>;
  /** The effect cache's store: step outputs of running runs live there. */
  readonly cache: MemoryStore;
  /** `core.getStepOutput`: a stored step's output JSON, or undefined. */
  readStep(runId: string, name: string): string | undefined;
  /** `Durq.callEffect`. */
  callEffect<I, O>(effect: Effect<I, O>, input: I): Promise<O>;
  /** `core.nextWakeAt(queue)`; undefined if none or if the database is closed. */
  nextWakeAt(queue: string): number | undefined;
  /** Asks the database's one timer to wake `w` at `atMs`; `undefined` cancels the request. */
  sleepUntil(w: Worker, atMs: number | undefined): void;
  /** Throws `DURQ_CLOSED` once `close()` was called. */
  checkOpen(): void;
  /** Emits the events of a claim (`run:leased`, `run:lease-expired`, ...). */
  claimed(result: ClaimResult, workerId: string): void;
  /** A run reached a new status in this process: wakes its waiters, and the workers of its queue other than `from` (which wakes itself). */
  runChanged(id: string, queue: string, from: Worker): void;
  register(e: Execution): void;
  unregister(e: Execution): void;
  /** The worker is started or has work in flight: `close()` must stop it, enqueues must wake it. */
  track(w: Worker): void;
  /** The worker is stopped and has nothing in flight. */
  untrack(w: Worker): void;
}

/** Default lease, ms. */
export const DEFAULT_LEASE_MS = 30_000;
/** Idle re-check delay when due runs exist that this worker cannot claim, ms (unless `pollMs` is set). */
const BLOCKED_RETRY_MS = 1000;

/**
 * A worker, made by {@link Durq.worker}. Drive it either with `start()` /
 * `stop()` (a loop that runs until stopped), or step by step with
 * `processOne()` / `processUntilIdle()` (handy in tests and scripts).
 */
export class Worker {
  /** This worker's id, stored as the lease owner of the runs it holds. */
  readonly id: string;
  /** The queue it works on. */
  readonly queue: string;
  /** Most runs it handles at once. */
  readonly concurrency: number;
  /** Lease length, ms. */
  readonly leaseMs: number;
  /** Idle poll cap, ms, if set. */
  readonly pollMs: number | undefined;

  readonly #host: WorkerHost;
  readonly #jobs = new Map<string, Job<any, any>>();
  readonly #jobsJson: string[];
  readonly #inFlight = new Set<Promise<void>>();
  readonly #claims = new Set<Promise<unknown>>();
  /** Slots asked for by claims not yet committed: counted against `concurrency`. */
  #reserved = 0;
  #started = false;
  #epoch = 0;
  #ticking = false;
  #again = false;

  /** @internal Use {@link Durq.worker}. */
  constructor(host: WorkerHost, id: string, options: WorkerOptions) {
    const o = checkOptions("worker options", options, ["jobs", "concurrency", "leaseMs", "queue", "pollMs"]);
    if (!Array.isArray(o.jobs) || o.jobs.length === 0) throw new DurqError("DURQ_INVALID_INPUT", "worker needs jobs: a non-empty array of jobs made by defineJob()");
    for (const j of o.jobs) {
      if (!isJob(j)) throw new DurqError("DURQ_INVALID_INPUT", "worker jobs must be jobs made by defineJob()");
      if (this.#jobs.has(j.name)) throw new DurqError("DURQ_INVALID_INPUT", `worker jobs name ${JSON.stringify(j.name)} twice`);
      this.#jobs.set(j.name, j);
    }
    this.#jobsJson = [...this.#jobs.keys()];
    this.#host = host;
    this.id = id;
    this.queue = o.queue == null ? "default" : checkName("queue name", o.queue);
    this.concurrency = o.concurrency == null ? 1 : checkInt("concurrency", o.concurrency, 1, 1000);
    this.leaseMs = o.leaseMs == null ? DEFAULT_LEASE_MS : checkDuration("leaseMs", o.leaseMs, 3);
    this.pollMs = o.pollMs == null ? undefined : checkDuration("pollMs", o.pollMs);
  }

  /** Whether `start()` was called and `stop()` not since. */
  get running(): boolean {
    return this.#started;
  }

  /** Runs being handled right now. */
  get activeRuns(): number {
    return this.#inFlight.size;
  }

  /**
   * Starts claiming and running runs in the background, up to
   * `concurrency` at once, until {@link Worker.stop}. When nothing is due it
   * sleeps until the next run is due (by the database's clock), and wakes at
   * once when this process enqueues. Failures of the loop itself are emitted
   * as `error` events. Calling it again does nothing.
   *
   * @throws {DurqError} `DURQ_CLOSED` if the database was closed.
   */
  start(): void {
    this.#host.checkOpen();
    if (this.#started) return;
    this.#started = true;
    this.#host.track(this);
    this.wake();
  }

  /**
   * Stops claiming and resolves once every handler in flight has finished
   * and its outcome is committed. Handlers are not aborted: a handler that
   * never returns keeps `stop()` waiting.
   */
  async stop(): Promise<void> {
    this.#started = false;
    this.#epoch++;
    this.#clearTimer();
    for (;;) {
      const pending = [...this.#claims, ...this.#inFlight];
      if (pending.length === 0) break;
      await Promise.allSettled(pending);
    }
    this.#untrackIfIdle();
  }

  /**
   * Claims at most one due run and runs it to its outcome.
   *
   * @returns `true` if a run was claimed (whatever its outcome), `false` if none was due
   * @throws {DurqError} `DURQ_CLOSED` if the database was closed; an
   *   `SQLITE_*` error if the claim could not commit.
   */
  async processOne(): Promise<boolean> {
    this.#host.checkOpen();
    if (this.#free() <= 0) return false; // at `concurrency` already
    const started = await this.#claim(1);
    if (started.length === 0) return false;
    await started[0];
    return true;
  }

  /**
   * Claims and runs due runs, up to `concurrency` at once, until none is
   * due and none is in flight (or `stop()` is called). Runs that become due
   * later (a retry's backoff, a `runAt` in the future) are left for later.
   *
   * @returns the number of runs claimed
   * @throws {DurqError} `DURQ_CLOSED` if the database was closed; an
   *   `SQLITE_*` error if a claim could not commit.
   */
  async processUntilIdle(): Promise<number> {
    this.#host.checkOpen();
    const epoch = this.#epoch;
    const mine = new Set<Promise<void>>();
    let count = 0;
    try {
      while (epoch === this.#epoch) {
        const free = this.#free();
        let claimed = 0;
        if (free > 0) {
          const started = await this.#claim(free);
          for (const p of started) mine.add(p);
          claimed = started.length;
          count += claimed;
          if (claimed === free) continue;
        }
        if (this.#inFlight.size === 0) {
          if (claimed === 0) break;
          continue;
        }
        await Promise.race(this.#inFlight);
      }
    } finally {
      await Promise.allSettled(mine);
    }
    return count;
  }

  /** Re-examines the queue now (after an enqueue, a finished run, ...). @internal */
  wake(): void {
    if (!this.#started) return;
    this.#clearTimer();
    void this.#tick();
  }

  #untrackIfIdle(): void {
    if (!this.#started && this.#inFlight.size === 0 && this.#claims.size === 0) this.#host.untrack(this);
  }

  #clearTimer(): void {
    this.#host.sleepUntil(this, undefined);
  }

  async #tick(): Promise<void> {
    if (this.#ticking) {
      this.#again = true;
      return;
    }
    this.#ticking = true;
    let failed = false;
    try {
      do {
        this.#again = false;
        if (!this.#started) return;
        const free = this.#free();
        if (free <= 0) return; // a finishing run wakes us
        let claimed: number;
        try {
          claimed = (await this.#claim(free)).length;
        } catch (error) {
          if (!this.#started) return;
          this.#host.events.emit("error", { error, source: "worker" });
          failed = true;
          break;
        }
        if (claimed === free) this.#again = true; // there may be more
      } while (this.#again);
      if (this.#started) this.#arm(failed);
    } finally {
      this.#ticking = false;
    }
  }

  /** Sleeps until the next run is due (or `pollMs`), by the database's one timer. */
  #arm(failed: boolean): void {
    this.#clearTimer();
    let delay: number | undefined;
    if (failed) {
      delay = this.pollMs ?? BLOCKED_RETRY_MS;
    } else {
      const at = this.#host.nextWakeAt(this.queue);
      if (at !== undefined) {
        delay = at - this.#host.clock.now();
        // Due but not claimable (another job's run, a busy concurrency key): look again later.
        if (delay <= 0) delay = this.pollMs ?? BLOCKED_RETRY_MS;
      }
      if (this.pollMs !== undefined) delay = delay === undefined ? this.pollMs : Math.min(delay, this.pollMs);
    }
    if (delay === undefined) return; // nothing queued: an enqueue wakes us
    this.#host.sleepUntil(this, this.#host.clock.now() + delay);
  }

  /** Slots free for new claims: `concurrency` less runs in flight and claims not yet committed. */
  #free(): number {
    return this.concurrency - this.#inFlight.size - this.#reserved;
  }

  /**
   * Claims up to `limit` runs and starts them; returns their completion
   * promises (which never reject). Claims nothing once the database is
   * closing, so no handler starts after `close()` began.
   */
  async #claim(limit: number): Promise<Promise<void>[]> {
    const started: Promise<void>[] = [];
    try {
      this.#host.checkOpen();
    } catch {
      return started;
    }
    const json = opJson({ op: "claim", queue: this.queue, jobs: this.#jobsJson, workerId: this.id, leaseMs: this.leaseMs, limit });
    const p = this.#host.submit<ClaimResult>(json, (result) => {
      // Register the runs synchronously with the commit, so a cancel
      // committed right after finds them.
      this.#host.claimed(result, this.id);
      for (const run of result.runs) started.push(this.#execute(run));
    });
    this.#claims.add(p);
    this.#reserved += limit;
    this.#host.track(this);
    try {
      await p;
    } finally {
      this.#reserved -= limit;
      this.#claims.delete(p);
      this.#untrackIfIdle();
    }
    return started;
  }

  #execute(run: ClaimedRun): Promise<void> {
    const attempt = new Attempt(this, this.#host, run, this.#jobs.get(run.job));
    const p = attempt.run().finally(() => {
      this.#inFlight.delete(p);
      this.#untrackIfIdle();
      this.wake();
    });
    this.#inFlight.add(p);
    return p;
  }
}

/** One attempt of one run: handler, heartbeat, outcome. */
class Attempt implements Execution, StepHost {
  readonly id: string;
  readonly job: string;
  readonly attempt: number;
  readonly workerId: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Names of the steps stored (from the claim) or being saved by this attempt; their outputs live in the effect cache's store, else in the database. */
  readonly #stepNames = new Set<string>();
  readonly #worker: Worker;
  readonly #host: WorkerHost;
  readonly #run: ClaimedRun;
  readonly #definition: Job<any, any> | undefined;
  readonly #abort = new AbortController();
  #lost: DurqError | undefined;
  #cancelled: DurqError | undefined;
  /** The handler has returned or thrown: no more heartbeats, and the step context refuses new writes. */
  #returned = false;
  /** The outcome is recorded (or abandoned): lease-lost is no longer news. */
  #over = false;
  #heartbeat: unknown = undefined;

  constructor(worker: Worker, host: WorkerHost, run: ClaimedRun, definition: Job<any, any> | undefined) {
    this.#worker = worker;
    this.#host = host;
    this.#run = run;
    this.#definition = definition;
    this.id = run.id;
    this.job = run.job;
    this.attempt = run.attempt;
    this.workerId = worker.id;
    this.labels = Object.freeze({ ...run.labels });
    for (const [name, output] of Object.entries(run.steps ?? {})) {
      this.#stepNames.add(name);
      host.cache.putLoaded(this.#stepKey(name), JSON.stringify(output));
    }
    // From here the outputs live in the bounded store (or the database), not in the claim.
    run.steps = {};
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  get runId(): string {
    return this.id;
  }

  async run(): Promise<void> {
    this.#host.register(this);
    try {
      await this.#attempt();
    } catch (error) {
      // Only a bug in durq gets here; keep the worker alive.
      this.#host.events.emit("error", { error, source: "worker" });
    } finally {
      this.#returned = true;
      this.#over = true;
      this.#stopHeartbeat();
      this.#host.unregister(this);
      // The run is no longer running here: its step outputs leave memory (those not yet committed stay until they are).
      // A save still in flight drops its entry when it settles (`saveStep`).
      for (const name of this.#stepNames) this.#host.cache.dropClean(this.#stepKey(name));
    }
  }

  async #attempt(): Promise<void> {
    const job = this.#definition;
    if (job === undefined) {
      // Cannot happen: the claim names only this worker's jobs.
      await this.#finish(
        "fail",
        { error: { name: "DurqError", message: `worker ${this.workerId} has no handler for job ${JSON.stringify(this.job)}`, stack: null }, random: Math.random(), retryable: true },
        undefined,
      );
      return;
    }
    this.#armHeartbeat();
    const step = new StepContext(this);
    let output: unknown;
    let thrown: unknown;
    let ok = false;
    try {
      output = await Promise.resolve().then(() => job.run(step, this.#run.input));
      ok = true;
    } catch (e) {
      thrown = e;
    }
    this.#returned = true;
    this.#stopHeartbeat();
    if (this.#lost !== undefined) return; // the run is no longer ours
    if (this.#cancelled !== undefined) {
      // Cancelled while running: the run is already `cancelled`, but it holds
      // its lease (and concurrency key) until its handler has stopped. Report
      // back so the core releases them now rather than at lease expiry.
      await this.#finish("fail", { error: errorRecord(this.#cancelled), random: 0, retryable: false }, undefined);
      return;
    }

    if (ok) {
      let json: string;
      try {
        json = toJsonText(`the output of job ${JSON.stringify(this.job)}`, output === undefined ? null : output);
      } catch (e) {
        await this.#finish("fail", { error: errorRecord(e), random: Math.random(), retryable: false }, undefined);
        return;
      }
      await this.#finish("complete", {}, json);
    } else {
      const retryable = !(typeof thrown === "object" && thrown !== null && (thrown as { retryable?: unknown }).retryable === false);
      await this.#finish("fail", { error: errorRecord(thrown), random: Math.random(), retryable }, undefined);
    }
  }

  /** Records the outcome (`complete` or `fail`) and emits its event. */
  async #finish(op: "complete" | "fail", fields: Record<string, unknown>, outputJson: string | undefined): Promise<void> {
    const json = opJson({ op, id: this.id, token: this.#run.token, ...fields }, outputJson === undefined ? undefined : { output: outputJson });
    try {
      await this.#host.submit<{ status: RunStatus; attempt?: number; runAt?: number | null }>(json, (r) => {
        const ev = this.#host.events;
        if (r.status === "cancelled") {
          // Only released the lease of a run cancelled under us; `run:cancelled` was emitted by the cancel.
          this.#host.runChanged(this.id, this.#run.queue, this.#worker);
          return;
        }
        if (op === "complete") {
          if (ev.has("run:completed")) ev.emit("run:completed", { id: this.id, job: this.job, attempt: this.attempt, output: JSON.parse(outputJson!) });
        } else {
          const error = fields["error"] as { name: string | null; message: string; stack: string | null };
          if (r.status === "pending") ev.emit("run:retrying", { id: this.id, job: this.job, attempt: this.attempt, error, runAt: r.runAt ?? 0 });
          else ev.emit("run:failed", { id: this.id, job: this.job, attempt: this.attempt, error });
        }
        this.#host.runChanged(this.id, this.#run.queue, this.#worker);
      });
    } catch (e) {
      if (isDurqError(e, "DURQ_LEASE_LOST")) {
        this.noteLeaseLost(e);
        return;
      }
      this.#host.events.emit("error", { error: e, source: "worker" });
    }
  }

  #armHeartbeat(): void {
    const every = Math.max(1, Math.floor(this.#worker.leaseMs / 3));
    this.#heartbeat = this.#host.clock.setTimeout(() => this.#beat(), every);
  }

  #stopHeartbeat(): void {
    if (this.#heartbeat !== undefined) {
      this.#host.clock.clearTimeout(this.#heartbeat);
      this.#heartbeat = undefined;
    }
  }

  #beat(): void {
    this.#heartbeat = undefined;
    if (this.#returned || this.#lost !== undefined || this.#cancelled !== undefined) return;
    const json = opJson({ op: "heartbeat", id: this.id, token: this.#run.token, leaseMs: this.#worker.leaseMs });
    this.#host.submit<{ leaseExpiresAt: number | null; cancelRequested: boolean }>(json).then(
      (r) => {
        if (this.#returned) return;
        if (r.cancelRequested) this.cancel();
        else this.#armHeartbeat();
      },
      (e: unknown) => {
        if (this.#returned) return;
        if (isDurqError(e, "DURQ_LEASE_LOST")) {
          this.noteLeaseLost(e);
          return;
        }
        this.#host.events.emit("error", { error: e, source: "worker" });
        if (!isDurqError(e, "DURQ_CLOSED")) this.#armHeartbeat();
      },
    );
  }

  // Execution

  cancel(): void {
    if (this.#cancelled !== undefined || this.#lost !== undefined) return;
    this.#cancelled = new DurqError("DURQ_CANCELLED", `run ${this.id} was cancelled`);
    this.#stopHeartbeat();
    this.#abort.abort(this.#cancelled);
  }

  // StepHost

  leaseError(): DurqError | undefined {
    if (this.#lost !== undefined || this.#cancelled !== undefined) return this.#lost ?? this.#cancelled;
    if (this.#returned) {
      return new DurqError("DURQ_LEASE_LOST", `attempt ${this.attempt} of run ${this.id} is over (its handler returned); its step context cannot write any more`);
    }
    return undefined;
  }

  noteLeaseLost(e: DurqError): void {
    if (this.#cancelled !== undefined || this.#lost !== undefined || this.#over) return;
    this.#lost = e;
    this.#stopHeartbeat();
    this.#abort.abort(e);
    this.#host.events.emit("run:lease-lost", { id: this.id, job: this.job, attempt: this.attempt, workerId: this.workerId, error: e });
  }

  /** This attempt's store key of step `name`. */
  #stepKey(name: string): string {
    return stepKey(this.id, this.#run.token, name);
  }

  storedStep(name: string): string | undefined {
    const key = this.#stepKey(name);
    const cache = this.#host.cache;
    // Memory first (an output whose commit is in flight too), then the database.
    const e = cache.get(key);
    if (e !== undefined) return e.json;
    if (!this.#stepNames.has(name)) return undefined;
    const json = this.#host.readStep(this.id, name);
    if (json !== undefined) cache.putLoaded(key, json);
    return json;
  }

  saveStep(name: string, outputJson: string): Promise<void> {
    const lost = this.leaseError();
    if (lost !== undefined) return Promise.reject(lost);
    const json = opJson({ op: "saveStep", id: this.id, token: this.#run.token, name }, { output: outputJson });
    const cache = this.#host.cache;
    const key = this.#stepKey(name);
    let saved!: Promise<void>;
    const room = cache.whenRoom(() => {
      const track = cache.putDirty(key, outputJson);
      this.#stepNames.add(name);
      saved = this.#host.submit<void>(
        json,
        () => {
          const ev = this.#host.events;
          if (ev.has("step:completed")) ev.emit("step:completed", { runId: this.id, job: this.job, name, attempt: this.attempt, output: JSON.parse(outputJson) });
        },
        track,
      );
      // Saved after the run ended here (a step not awaited): out of memory once committed.
      const dropIfOver = () => {
        if (this.#over) cache.dropClean(key);
      };
      saved.then(dropIfOver, dropIfOver);
    });
    return room === undefined ? saved : room.then(() => saved);
  }

  callEffect<I, O>(effect: Effect<I, O>, input: I): Promise<O> {
    return this.#host.callEffect(effect, input);
  }

  progress(progressJson: string, value: unknown): Promise<void> {
    const json = opJson({ op: "progress", id: this.id, token: this.#run.token }, { progress: progressJson });
    return this.#host.submit<void>(json, () => this.#host.events.emit("run:progress", { id: this.id, job: this.job, progress: value }));
  }

  log(level: string, message: string): Promise<void> {
    const json = opJson({ op: "log", id: this.id, token: this.#run.token, level, message });
    return this.#host.submit<void>(json, () => this.#host.events.emit("run:log", { id: this.id, job: this.job, level, message, attempt: this.attempt }));
  }
}

/** `{name, message, stack}` of whatever a handler threw. */
function errorRecord(e: unknown): { name: string | null; message: string; stack: string | null } {
  const r = rawErrorRecord(e);
  // Whatever a handler throws must be storable, or its outcome would be lost:
  // strings (lone surrogates made well-formed), bounded in length.
  const clean = (s: string, max: number) => (s.length > max ? `${s.slice(0, max)}…` : s).toWellFormed();
  return {
    name: r.name === null ? null : clean(r.name, 256),
    message: clean(r.message, MAX_ERROR_MESSAGE),
    stack: r.stack === null ? null : clean(r.stack, MAX_ERROR_STACK),
  };
}

/** Longest error message stored, in UTF-16 code units. */
const MAX_ERROR_MESSAGE = 16_384;
/** Longest stack trace stored, in UTF-16 code units. */
const MAX_ERROR_STACK = 65_536;

function rawErrorRecord(e: unknown): { name: string | null; message: string; stack: string | null } {
  if (e instanceof Error) {
    return { name: typeof e.name === "string" ? e.name : String(e.name), message: String(e.message), stack: typeof e.stack === "string" ? e.stack : null };
  }
  if (typeof e === "object" && e !== null && typeof (e as { message?: unknown }).message === "string") {
    const o = e as { name?: unknown; message: string; stack?: unknown };
    return { name: typeof o.name === "string" ? o.name : null, message: o.message, stack: typeof o.stack === "string" ? o.stack : null };
  }
  let message: string;
  try {
    message = typeof e === "string" ? e : JSON.stringify(e) ?? String(e);
  } catch {
    message = String(e);
  }
  return { name: null, message: `non-Error thrown: ${message}`, stack: null };
}
