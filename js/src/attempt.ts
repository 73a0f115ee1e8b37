/**
 * One attempt of a claimed run, in this process: it runs the job's handler
 * with its step context, renews the lease by heartbeat and records the
 * outcome (`complete` or `fail`), emitting the run's events.
 * Internal: not exported from the package.
 *
 * @module
 */

import type { Clock } from "./clock.js";
import { DurqError, isDurqError } from "./errors.js";
import type { Emitter } from "./events.js";
import type { Job } from "./job.js";
import * as ops from "./ops.js";
import { StepContext, type StepHost } from "./step.js";
import type { RunStatus } from "./types.js";
import { toJsonText } from "./validate.js";
import type { OpTracker } from "./write-queue.js";
import type { MemoryStore } from "./cache.js";
import { stepKey, type Effect } from "./effect.js";

/** How many times an attempt records its outcome when the owner of a shared file changes under it. */
const OWNER_CHANGE_RETRIES = 10;

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

/** The worker an attempt runs under (a {@link Worker}). @internal */
export interface AttemptWorker {
  /** The worker's id, the lease owner. */
  readonly id: string;
  /** Lease length, ms: a heartbeat renews it every `leaseMs / 3`. */
  readonly leaseMs: number;
  /**
   * The attempt's handler is over and its outcome (`complete` or `fail`)
   * was just submitted, in this turn: the worker may claim the next run
   * now, so that claim joins the outcome's commit (one commit fewer per
   * run). Called at most once per attempt.
   */
  outcomeSubmitted(attempt: Execution): void;
}

/** What an attempt needs from its database. @internal */
export interface AttemptHost {
  readonly clock: Clock;
  readonly events: Emitter;
  /** Queues an operation on the write queue (even while the database is closing). */
  submit<T>(json: string, onCommit?: (result: T) => void, track?: OpTracker): Promise<T>;
  /** The effect cache's store: step outputs of running runs live there. */
  readonly cache: MemoryStore;
  /** `core.getStepOutput`: a stored step's output JSON, or undefined (a promise of it in a client process). */
  readStep(runId: string, name: string): string | undefined | Promise<string | undefined>;
  /** `Durq.callEffect`. */
  callEffect<I, O>(effect: Effect<I, O>, input: I): Promise<O>;
  /** A run reached a new status in this process: wakes its waiters, and the workers of its queue other than `from` (which wakes itself). */
  runChanged(id: string, queue: string, from: AttemptWorker): void;
  /** The attempt started: a cancel or a lease recovery in this process reaches it. */
  register(e: Execution): void;
  /** The attempt is over. */
  unregister(e: Execution): void;
}

/** How an attempt ended, to record: completed with an output, or failed. */
type Outcome = { completed: true; outputJson: string } | { completed: false; error: ErrorRecord; random: number; retryable: boolean };

/** An error as stored on a run: what a handler threw, bounded. */
type ErrorRecord = { name: string | null; message: string; stack: string | null };

/** One attempt of one run: handler, heartbeat, outcome. @internal */
export class Attempt implements Execution, StepHost {
  readonly id: string;
  readonly job: string;
  readonly attempt: number;
  readonly workerId: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Names of the steps stored (from the claim) or being saved by this attempt; their outputs live in the effect cache's store, else in the database. */
  readonly #stepNames = new Set<string>();
  readonly #worker: AttemptWorker;
  readonly #host: AttemptHost;
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

  constructor(worker: AttemptWorker, host: AttemptHost, run: ClaimedRun, definition: Job<any, any> | undefined) {
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
      await this.#finish({
        completed: false,
        error: { name: "DurqError", message: `worker ${this.workerId} has no handler for job ${JSON.stringify(this.job)}`, stack: null },
        random: Math.random(),
        retryable: true,
      });
      return;
    }
    this.#armHeartbeat();
    const step = new StepContext(this);
    let output: unknown;
    let thrown: unknown;
    let ok = false;
    let timer: unknown;
    try {
      const handler = Promise.resolve().then(() => job.run(step, this.#run.input));
      const limit = job.timeoutMs;
      if (limit === undefined) output = await handler;
      else {
        handler.catch(() => undefined); // it may reject after the time limit: nobody awaits it then
        output = await Promise.race([
          handler,
          new Promise<never>((_, reject) => {
            timer = this.#host.clock.setTimeout(() => {
              const e = new DurqError(
                "DURQ_TIMEOUT",
                `attempt ${this.attempt} of run ${this.id} (job ${JSON.stringify(this.job)}) ran past its timeoutMs of ${limit} ms`,
              );
              this.#abort.abort(e);
              reject(e);
            }, limit);
          }),
        ]);
      }
      ok = true;
    } catch (e) {
      thrown = e;
    } finally {
      if (timer !== undefined) this.#host.clock.clearTimeout(timer);
    }
    this.#returned = true;
    this.#stopHeartbeat();
    if (this.#lost !== undefined) return; // the run is no longer ours
    if (this.#cancelled !== undefined) {
      // Cancelled while running: the run is already `cancelled`, but it holds
      // its lease (and concurrency key) until its handler has stopped. Report
      // back so the core releases them now rather than at lease expiry.
      await this.#finish({ completed: false, error: errorRecord(this.#cancelled), random: 0, retryable: false });
      return;
    }

    if (ok) {
      let json: string;
      try {
        json = toJsonText(`the output of job ${JSON.stringify(this.job)}`, output === undefined ? null : output);
      } catch (e) {
        await this.#finish({ completed: false, error: errorRecord(e), random: Math.random(), retryable: false });
        return;
      }
      await this.#finish({ completed: true, outputJson: json });
    } else {
      const retryable = !(typeof thrown === "object" && thrown !== null && (thrown as { retryable?: unknown }).retryable === false);
      await this.#finish({ completed: false, error: errorRecord(thrown), random: Math.random(), retryable });
    }
  }

  /** Records the outcome (`complete` or `fail`) and emits its event. */
  async #finish(outcome: Outcome): Promise<void> {
    const lease = { id: this.id, token: this.#run.token };
    const json = outcome.completed
      ? ops.complete({ ...lease, outputJson: outcome.outputJson })
      : ops.fail({ ...lease, error: outcome.error, random: outcome.random, retryable: outcome.retryable });
    for (let tries = 1; ; tries++) {
      try {
        const recorded = this.#record(json, outcome);
        if (tries === 1) this.#worker.outcomeSubmitted(this);
        await recorded;
        return;
      } catch (e) {
        // The owner of a shared file went away before answering: the next
        // owner takes the same fenced write (a repeat of a commit that did
        // happen is refused by the fencing token, never applied twice).
        if (isDurqError(e, "DURQ_OWNER_CHANGED") && tries < OWNER_CHANGE_RETRIES) continue;
        if (isDurqError(e, "DURQ_LEASE_LOST")) {
          this.noteLeaseLost(e);
          return;
        }
        this.#host.events.emit("error", { error: e, source: "worker" });
        return;
      }
    }
  }

  /** Submits the outcome's operation; its commit emits the run's event. */
  #record(json: string, outcome: Outcome): Promise<unknown> {
    return this.#host.submit<{ status: RunStatus; attempt?: number; runAt?: number | null }>(json, (r) => {
      const ev = this.#host.events;
      if (r.status === "cancelled") {
        // Only released the lease of a run cancelled under us; `run:cancelled` was emitted by the cancel.
        this.#host.runChanged(this.id, this.#run.queue, this.#worker);
        return;
      }
      if (outcome.completed) {
        if (ev.has("run:completed")) ev.emit("run:completed", { id: this.id, job: this.job, attempt: this.attempt, output: JSON.parse(outcome.outputJson) });
      } else {
        const error = outcome.error;
        if (r.status === "pending") ev.emit("run:retrying", { id: this.id, job: this.job, attempt: this.attempt, error, runAt: r.runAt ?? 0 });
        else ev.emit("run:failed", { id: this.id, job: this.job, attempt: this.attempt, error });
      }
      this.#host.runChanged(this.id, this.#run.queue, this.#worker);
    });
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
    const json = ops.heartbeat({ id: this.id, token: this.#run.token, leaseMs: this.#worker.leaseMs });
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
        // A change of owner is not the handler's failure: the next beat goes to the next owner.
        if (!isDurqError(e, "DURQ_OWNER_CHANGED")) this.#host.events.emit("error", { error: e, source: "worker" });
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
      return new DurqError(
        "DURQ_LEASE_LOST",
        `attempt ${this.attempt} of run ${this.id} is over (its handler returned); its step context cannot write any more`,
      );
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

  storedStep(name: string): string | undefined | Promise<string | undefined> {
    const key = this.#stepKey(name);
    const cache = this.#host.cache;
    // Memory first (an output whose commit is in flight too), then the database.
    const e = cache.get(key);
    if (e !== undefined) return e.json;
    if (!this.#stepNames.has(name)) return undefined;
    const loaded = (json: string | undefined): string | undefined => {
      if (json !== undefined) cache.putLoaded(key, json);
      return json;
    };
    const json = this.#host.readStep(this.id, name);
    return json instanceof Promise ? json.then(loaded) : loaded(json);
  }

  saveStep(name: string, outputJson: string): Promise<void> {
    const lost = this.leaseError();
    if (lost !== undefined) return Promise.reject(lost);
    const json = ops.saveStep({ id: this.id, token: this.#run.token, name, outputJson });
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
          if (ev.has("step:completed"))
            ev.emit("step:completed", { runId: this.id, job: this.job, name, attempt: this.attempt, output: JSON.parse(outputJson) });
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
    const json = ops.progress({ id: this.id, token: this.#run.token, progressJson });
    return this.#host.submit<void>(json, () => this.#host.events.emit("run:progress", { id: this.id, job: this.job, progress: value }));
  }

  log(level: string, message: string): Promise<void> {
    const json = ops.log({ id: this.id, token: this.#run.token, level, message });
    return this.#host.submit<void>(json, () => this.#host.events.emit("run:log", { id: this.id, job: this.job, level, message, attempt: this.attempt }));
  }
}

/** `{name, message, stack}` of whatever a handler threw. */
function errorRecord(e: unknown): ErrorRecord {
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

function rawErrorRecord(e: unknown): ErrorRecord {
  if (e instanceof Error) {
    return { name: typeof e.name === "string" ? e.name : String(e.name), message: String(e.message), stack: typeof e.stack === "string" ? e.stack : null };
  }
  if (typeof e === "object" && e !== null && typeof (e as { message?: unknown }).message === "string") {
    const o = e as { name?: unknown; message: string; stack?: unknown };
    return { name: typeof o.name === "string" ? o.name : null, message: o.message, stack: typeof o.stack === "string" ? o.stack : null };
  }
  let message: string;
  try {
    message = typeof e === "string" ? e : (JSON.stringify(e) ?? String(e));
  } catch {
    message = String(e);
  }
  return { name: null, message: `non-Error thrown: ${message}`, stack: null };
}
