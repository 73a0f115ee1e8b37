/**
 * The step context handed to a job handler: checkpointed steps, progress,
 * logs and the run's `AbortSignal`.
 *
 * @module
 */

import { DurqError, isDurqError } from "./errors.js";
import { checkName, toJsonText } from "./validate.js";
import type { Effect } from "./effect.js";

/** Log levels for {@link Step.log}; any other 1..256-byte string is accepted too. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/**
 * What a handler gets as its first argument.
 *
 * Writes (`run`, `progress`, `log`) carry the run's fencing token: once the
 * lease is lost (it expired and the run was recovered by another claim, or
 * the run was cancelled or deleted) they reject with `DURQ_LEASE_LOST` and
 * `signal` is aborted.
 */
export interface Step {
  /** The run's id. */
  readonly runId: string;
  /** The job's name. */
  readonly job: string;
  /** This attempt's number, 1-based. */
  readonly attempt: number;
  /** The run's labels. */
  readonly labels: Readonly<Record<string, string>>;
  /**
   * Aborted when the run is cancelled (reason: a `DURQ_CANCELLED`
   * {@link DurqError}) or its lease is lost (`DURQ_LEASE_LOST`). Pass it to
   * `fetch` and friends, or check `signal.aborted` between pieces of work.
   */
  readonly signal: AbortSignal;
  /**
   * Runs a checkpointed step. If an earlier attempt of this run stored an
   * output under `name`, returns it without calling `fn` (replay after a
   * crash or a retry); otherwise calls `fn`, stores its output and returns
   * it. The value returned is always the stored JSON form (e.g. a `Date`
   * comes back as its ISO string), so a first run and a replay see the same
   * thing. Calling `run` twice with one name in an attempt returns the first
   * call's output.
   *
   * @param name - unique within the run: 1 to 256 UTF-8 bytes, no NUL
   * @param fn - the step's work; its result must be JSON-serializable
   *   (`undefined` is stored as `null`)
   * @throws {DurqError} `DURQ_INVALID_INPUT` for a bad name or a
   *   non-serializable output; `DURQ_LEASE_LOST` if the lease is gone (then
   *   `fn` is not called); whatever `fn` throws.
   */
  run<T>(name: string, fn: () => T | Promise<T>): Promise<T>;
  /**
   * Calls a memoized effect made by `defineEffect`: the output cached for
   * `input` (in memory or in the database), else `effect.run(input)`, once
   * for all concurrent callers of the same input. Not a step: it is not
   * tied to this run, and another run calling it with the same input gets
   * the same output. Same as `db.callEffect(effect, input)`.
   *
   * @throws {DurqError} `DURQ_INVALID_INPUT` if `effect` was not made by
   *   `defineEffect`, or `input` or the output is not JSON-serializable;
   *   whatever `effect.run` throws (not cached).
   */
  effect<I, O>(effect: Effect<I, O>, input: I): Promise<O>;
  /**
   * Stores `value` as the run's progress (readable as `run.progress`; emits
   * `run:progress`). Need not be awaited: a failure then goes unreported.
   *
   * @throws {DurqError} `DURQ_INVALID_INPUT` if `value` is not
   *   JSON-serializable; `DURQ_LEASE_LOST` if the lease is gone.
   */
  progress(value: unknown): Promise<void>;
  /**
   * Appends a line to the run's log (read with `getLogs`; emits `run:log`).
   * Need not be awaited.
   *
   * @param level - default `"info"`
   * @throws {DurqError} `DURQ_INVALID_INPUT` for a message with NUL or a bad
   *   level; `DURQ_LEASE_LOST` if the lease is gone.
   */
  log(message: string, level?: LogLevel | (string & {})): Promise<void>;
}

/** What a {@link StepContext} needs from the worker running the run. @internal */
export interface StepHost {
  readonly runId: string;
  readonly job: string;
  readonly attempt: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly signal: AbortSignal;
  /** The stored output JSON of step `name` (in memory, else in the database), or undefined. */
  storedStep(name: string): string | undefined | Promise<string | undefined>;
  /** `Durq.callEffect`. */
  callEffect<I, O>(effect: Effect<I, O>, input: I): Promise<O>;
  /** The error to throw once the lease is known to be lost, else undefined. */
  leaseError(): DurqError | undefined;
  saveStep(name: string, outputJson: string): Promise<void>;
  progress(progressJson: string, value: unknown): Promise<void>;
  log(level: string, message: string): Promise<void>;
  /** Records that a write found the lease gone. */
  noteLeaseLost(e: DurqError): void;
}

/** The {@link Step} implementation. @internal */
export class StepContext implements Step {
  readonly #host: StepHost;
  readonly #running = new Map<string, Promise<unknown>>();

  constructor(host: StepHost) {
    this.#host = host;
  }

  get runId(): string {
    return this.#host.runId;
  }
  get job(): string {
    return this.#host.job;
  }
  get attempt(): number {
    return this.#host.attempt;
  }
  get labels(): Readonly<Record<string, string>> {
    return this.#host.labels;
  }
  get signal(): AbortSignal {
    return this.#host.signal;
  }

  run<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
    try {
      checkName("step name", name);
      if (typeof fn !== "function") throw new DurqError("DURQ_INVALID_INPUT", `step ${JSON.stringify(name)} needs a function`);
    } catch (e) {
      return Promise.reject(e);
    }
    const inFlight = this.#running.get(name);
    if (inFlight !== undefined) return inFlight as Promise<T>;
    let stored: string | undefined | Promise<string | undefined>;
    try {
      stored = this.#host.storedStep(name);
    } catch (e) {
      return Promise.reject(e);
    }
    if (typeof stored === "string") return Promise.resolve(JSON.parse(stored) as T);
    // In a client process a stored output may have to be read from the owner first.
    const p = stored instanceof Promise ? stored.then((s) => (s !== undefined ? (JSON.parse(s) as T) : this.#runStep(name, fn))) : this.#runStep(name, fn);
    this.#running.set(name, p);
    p.then(
      () => this.#running.delete(name),
      () => this.#running.delete(name),
    );
    return p;
  }

  async #runStep<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
    const lost = this.#host.leaseError();
    if (lost !== undefined) throw lost;
    const value = await fn();
    const json = toJsonText(`the output of step ${JSON.stringify(name)}`, value === undefined ? null : value);
    const output = JSON.parse(json) as T;
    try {
      await this.#host.saveStep(name, json);
    } catch (e) {
      if (isDurqError(e, "DURQ_LEASE_LOST")) this.#host.noteLeaseLost(e);
      throw e;
    }
    return output;
  }

  effect<I, O>(effect: Effect<I, O>, input: I): Promise<O> {
    return this.#host.callEffect(effect, input);
  }

  progress(value: unknown): Promise<void> {
    let json: string;
    try {
      json = toJsonText("progress", value === undefined ? null : value);
    } catch (e) {
      return handled(Promise.reject(e));
    }
    return handled(this.#write(() => this.#host.progress(json, JSON.parse(json))));
  }

  log(message: string, level: string = "info"): Promise<void> {
    try {
      if (typeof message !== "string") throw new DurqError("DURQ_INVALID_INPUT", `log message must be a string, got ${typeof message}`);
      if (message.includes("\0")) throw new DurqError("DURQ_INVALID_INPUT", "log message must not contain NUL characters");
      checkName("log level", level);
    } catch (e) {
      return handled(Promise.reject(e));
    }
    return handled(this.#write(() => this.#host.log(level, message.toWellFormed())));
  }

  async #write(f: () => Promise<void>): Promise<void> {
    const lost = this.#host.leaseError();
    if (lost !== undefined) throw lost;
    try {
      await f();
    } catch (e) {
      if (isDurqError(e, "DURQ_LEASE_LOST")) this.#host.noteLeaseLost(e);
      throw e;
    }
  }
}

/** Marks `p` as handled (so an un-awaited failure does not crash the process) and returns it. */
function handled<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}
