/**
 * Job definitions: a name, a handler and a retry policy.
 *
 * @module
 */

import { DurqError, invalidInput } from "./errors.js";
import type { Step } from "./step.js";
import { checkDuration, checkInt, checkName, checkNumber, checkOptions, isPlainObject, MAX_DELAY_MS } from "./validate.js";

/**
 * Retry backoff: after failed attempt `n` (1-based) the run waits
 * `min(maxMs, initialMs * factor^(n-1))` ms, reduced at random by up to
 * `jitter` of itself, before attempt `n + 1`.
 */
export interface Backoff {
  /** First retry delay, ms (>= 0; default 1000). */
  initialMs: number;
  /** Growth of the delay per attempt (>= 1; default 2). */
  factor: number;
  /** Largest delay, ms (>= 0; default 3 600 000, one hour). */
  maxMs: number;
  /** Fraction in [0, 1] of each delay removed at random, to spread retries (default 0.25). */
  jitter: number;
}

/** How a job's failed attempts are retried. */
export interface RetryPolicy {
  /** Attempts in all (first try included) before the run fails for good: 1 ..= 1000 (default 3). An expired lease counts as an attempt. */
  maxAttempts?: number;
  /** Delay between attempts; missing fields take their defaults. */
  backoff?: Partial<Backoff>;
}

/**
 * The handler of a job: called with the {@link Step} context and the run's
 * input; its return value (JSON-serializable; `undefined` is stored as
 * `null`) completes the run; a throw fails the attempt (retried per the
 * job's {@link RetryPolicy}). Throw an error with `retryable: false` to fail
 * the run for good at once.
 */
export type JobHandler<I, O> = (step: Step, input: I) => O | Promise<O>;

/** What {@link defineJob} takes. */
export interface JobDefinition<I, O> {
  /** Unique job name: 1 to 256 UTF-8 bytes, no NUL. Runs are matched to handlers by it. */
  name: string;
  /** The handler. */
  run: JobHandler<I, O>;
  /** Retries (default: 3 attempts, backoff 1 s doubling up to 1 h, jitter 0.25). */
  retry?: RetryPolicy;
  /**
   * Time limit of one attempt, ms (1 ..= 2^31-1; default none), by the
   * database's clock from the handler's start: past it the handler's
   * `step.signal` is aborted with a `DURQ_TIMEOUT` error and the attempt
   * fails with it, retried under `retry` (as Trigger.dev's `maxDuration`
   * and BullMQ's job timeouts). The run's lease and concurrency key are
   * released at once; the handler's later step writes are refused.
   */
  timeoutMs?: number;
}

/** A job made by {@link defineJob}: pass it to `enqueue` and to `worker({ jobs })`. */
export interface Job<I = unknown, O = unknown> {
  /** The job's name. */
  readonly name: string;
  /** The handler. */
  readonly run: JobHandler<I, O>;
  /** The retry policy with defaults filled in. */
  readonly retry: { readonly maxAttempts: number; readonly backoff: Readonly<Backoff> };
  /** Time limit of one attempt, ms, if any. */
  readonly timeoutMs: number | undefined;
}

/** Default attempts of a run. */
export const DEFAULT_MAX_ATTEMPTS = 3;
/** Default backoff. */
export const DEFAULT_BACKOFF: Readonly<Backoff> = Object.freeze({ initialMs: 1000, factor: 2, maxMs: 3_600_000, jitter: 0.25 });

const madeByDefineJob = new WeakSet<object>();
const byName = new Map<string, Job<any, any>>();

/**
 * Defines a job. The job is also registered under its name for this
 * process, so `enqueue("name", ...)` finds it; defining a name again
 * replaces the earlier definition for later lookups by name.
 *
 * @example
 * ```ts
 * const thumbnail = defineJob({
 *   name: "thumbnail",
 *   retry: { maxAttempts: 5, backoff: { initialMs: 1000, factor: 2, maxMs: 60_000, jitter: 0.25 } },
 *   async run(step, input: { url: string }) {
 *     const bytes = await step.run("fetch", () => fetchBytes(input.url));
 *     return step.run("resize", () => resize(bytes));
 *   },
 * });
 * ```
 *
 * @throws {DurqError} `DURQ_INVALID_INPUT` for a bad name, a missing `run`
 * function or an out-of-range retry policy.
 */
export function defineJob<I = unknown, O = unknown>(definition: JobDefinition<I, O>): Job<I, O> {
  const d = checkOptions("defineJob(definition)", definition, ["name", "run", "retry", "timeoutMs"]);
  if (!isPlainObject(definition)) throw invalidInput("defineJob needs an object { name, run, retry?, timeoutMs? }");
  const name = checkName("job name", d.name);
  if (typeof d.run !== "function") throw invalidInput(`job ${JSON.stringify(name)} needs a run(step, input) function`);
  const retry = checkOptions(`retry of job ${JSON.stringify(name)}`, d.retry, ["maxAttempts", "backoff"]);
  const maxAttempts = retry.maxAttempts === undefined ? DEFAULT_MAX_ATTEMPTS : checkInt("retry.maxAttempts", retry.maxAttempts, 1, 1000);
  const b = checkOptions("retry.backoff", retry.backoff, ["initialMs", "factor", "maxMs", "jitter"]);
  const backoff: Backoff = Object.freeze({
    initialMs: b.initialMs === undefined ? DEFAULT_BACKOFF.initialMs : checkNumber("retry.backoff.initialMs", b.initialMs, 0, MAX_DELAY_MS),
    factor: b.factor === undefined ? DEFAULT_BACKOFF.factor : checkNumber("retry.backoff.factor", b.factor, 1, 1000),
    maxMs: b.maxMs === undefined ? DEFAULT_BACKOFF.maxMs : checkNumber("retry.backoff.maxMs", b.maxMs, 0, MAX_DELAY_MS),
    jitter: b.jitter === undefined ? DEFAULT_BACKOFF.jitter : checkNumber("retry.backoff.jitter", b.jitter, 0, 1),
  });
  const timeoutMs = d.timeoutMs == null ? undefined : checkDuration(`timeoutMs of job ${JSON.stringify(name)}`, d.timeoutMs);
  const job: Job<I, O> = Object.freeze({ name, run: d.run, retry: Object.freeze({ maxAttempts, backoff }), timeoutMs });
  madeByDefineJob.add(job);
  byName.set(name, job);
  return job;
}

/** Whether `v` was made by {@link defineJob}. */
export function isJob(v: unknown): v is Job {
  return typeof v === "object" && v !== null && madeByDefineJob.has(v);
}

/**
 * The job for a job object or name.
 *
 * @throws {DurqError} `DURQ_UNKNOWN_JOB` for a name no {@link defineJob} of
 * this process defined; `DURQ_INVALID_INPUT` for anything else that is not
 * a job. @internal
 */
export function resolveJob(job: Job<any, any> | string, what = "job"): Job<any, any> {
  if (typeof job === "string") {
    const found = byName.get(job);
    if (found === undefined) {
      checkName(`${what} name`, job);
      throw new DurqError(
        "DURQ_UNKNOWN_JOB",
        `${what === "job" ? "" : `${what}: `}no job named ${JSON.stringify(job)} is defined in this process; define it with defineJob({ name: ${JSON.stringify(job)}, run }) first, or pass the job object`,
      );
    }
    return found;
  }
  if (isJob(job)) return job;
  throw invalidInput(`${what} must be a job made by defineJob() or the name of one, got ${job === null ? "null" : typeof job}`);
}

/** Whether a job named `name` was defined in this process (by {@link defineJob}). @internal */
export function isDefinedJob(name: string): boolean {
  return byName.has(name);
}
