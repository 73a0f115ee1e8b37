/**
 * Waiting for runs and batches to finish ({@link Durq.waitForRun},
 * {@link Durq.waitForBatch}, {@link Durq.triggerAndWait}): a waiter
 * re-reads its run or batch when this process changes it (the database
 * notifies it by id), every `pollMs` for changes made elsewhere, and once
 * more when the database closes.
 * Internal: not exported from the package.
 *
 * @module
 */

import type { Clock } from "./clock.js";
import { coreCall } from "./core.js";
import { closedError, DurqError } from "./errors.js";
import type { EnqueueOptions, WaitOptions } from "./options.js";
import { isTerminal, type Batch, type EnqueueResult, type Run } from "./types.js";
import { checkDuration, checkId, checkOptions } from "./validate.js";

/** Default {@link WaitOptions.pollMs}, ms. */
const DEFAULT_WAIT_POLL_MS = 1000;

/** What waiting needs from its database. @internal */
export interface WaitHost {
  readonly clock: Clock;
  /** Whether `close()` was called. */
  readonly closing: boolean;
  /** Throws `DURQ_CLOSED` once `close()` was called. */
  checkOpen(): void;
  /** `core.getRun`, parsed (a promise in a client process); throws what the core throws (`DURQ_NOT_FOUND`). */
  readRun<I = unknown, O = unknown>(id: string): Run<I, O> | Promise<Run<I, O>>;
  /** `core.getBatch`, parsed (a promise in a client process); throws what the core throws (`DURQ_NOT_FOUND`). */
  readBatch(id: string): Batch | Promise<Batch>;
}

interface Waiter {
  check(): void;
}

/** The waiters of one database, by run or batch id. @internal */
export class Waits {
  readonly #host: WaitHost;
  /** Run and batch ids come from one UUIDv7 generator: one map holds both. */
  readonly #waiters = new Map<string, Set<Waiter>>();

  constructor(host: WaitHost) {
    this.#host = host;
  }

  /** {@link Durq.waitForRun}. */
  run<I = unknown, O = unknown>(id: string, options?: WaitOptions): Promise<Run<I, O>> {
    return this.#waitFor<Run<I, O>>(
      "run",
      id,
      options,
      () => this.#host.readRun<I, O>(id),
      (r) => isTerminal(r.status),
      (r) => r.status,
    );
  }

  /** {@link Durq.waitForBatch}. */
  batch(id: string, options?: WaitOptions): Promise<Batch> {
    return this.#waitFor<Batch>(
      "batch",
      id,
      options,
      () => this.#host.readBatch(id),
      (b) => b.state !== "active",
      (b) => b.state,
    );
  }

  /**
   * {@link Durq.triggerAndWait}: checks the wait options, calls `enqueue`
   * with the other options, then waits for the run; `timeoutMs` counts from
   * the call.
   */
  async triggerAndWait<I, O>(
    options: (EnqueueOptions & WaitOptions) | undefined,
    enqueue: (options: EnqueueOptions | undefined) => Promise<EnqueueResult>,
  ): Promise<Run<I, O>> {
    const { timeoutMs, pollMs, ...enqueueOptions } = options ?? {};
    // Check the wait options before enqueueing: a bad one must not leave a run behind.
    if (timeoutMs != null) checkDuration("timeoutMs", timeoutMs, 0);
    if (pollMs != null) checkDuration("pollMs", pollMs);
    const clock = this.#host.clock;
    const started = clock.now();
    const { id } = await enqueue(options === undefined ? undefined : enqueueOptions);
    const wait: WaitOptions = {};
    if (timeoutMs != null) wait.timeoutMs = Math.max(0, timeoutMs - (clock.now() - started));
    if (pollMs != null) wait.pollMs = pollMs;
    return this.run<I, O>(id, wait);
  }

  /** Run or batch `id` changed in this process: its waiters re-read it. */
  notify(id: string): void {
    const set = this.#waiters.get(id);
    if (set === undefined) return;
    for (const w of [...set]) w.check();
  }

  /** Every waiter re-reads (the database is closing: they reject with `DURQ_CLOSED`). */
  checkAll(): void {
    for (const set of [...this.#waiters.values()]) for (const w of [...set]) w.check();
  }

  /** The body of {@link Waits.run} and {@link Waits.batch}. */
  #waitFor<T>(
    what: "run" | "batch",
    id: string,
    options: WaitOptions | undefined,
    read: () => T | Promise<T>,
    done: (t: T) => boolean,
    state: (t: T) => string,
  ): Promise<T> {
    const host = this.#host;
    const clock = host.clock;
    let timeoutMs: number | undefined;
    let pollMs: number;
    try {
      host.checkOpen();
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
          if (host.closing) return finish(() => reject(closedError()));
          let r: T | Promise<T>;
          try {
            r = coreCall(read);
          } catch (e) {
            return finish(() => reject(e));
          }
          const seen = (t: T): void => {
            if (settled) return;
            last = t;
            if (done(t)) finish(() => resolve(t));
          };
          // In a client process the read crosses to the owner: it settles later.
          if (r instanceof Promise) r.then(seen, (e: unknown) => settled || finish(() => reject(e)));
          else seen(r);
        },
      };
      const finish = (f: () => void): void => {
        settled = true;
        if (timeout !== undefined) clock.clearTimeout(timeout);
        if (poll !== undefined) clock.clearTimeout(poll);
        const set = this.#waiters.get(id);
        if (set?.delete(waiter) && set.size === 0) this.#waiters.delete(id);
        f();
      };
      const armPoll = (): void => {
        poll = clock.setTimeout(() => {
          poll = undefined;
          waiter.check();
          if (!settled) armPoll();
        }, pollMs);
      };
      waiter.check();
      if (settled) return;
      let set = this.#waiters.get(id);
      if (set === undefined) {
        set = new Set();
        this.#waiters.set(id, set);
      }
      set.add(waiter);
      armPoll();
      if (timeoutMs !== undefined) {
        timeout = clock.setTimeout(() => {
          timeout = undefined;
          waiter.check();
          if (settled) return;
          finish(() =>
            reject(
              new DurqError("DURQ_TIMEOUT", `${what} ${id} did not finish within ${timeoutMs} ms (it is ${last === undefined ? "unknown" : state(last)})`),
            ),
          );
        }, timeoutMs);
      }
    });
  }
}
