/**
 * The one serialized write queue (group commit).
 *
 * Every mutation is an operation (`{ op, args }`, built in `ops.ts`; shapes
 * in `generated/boundary.ts`). Operations submitted in the same turn of the
 * event loop, up to the next turn (`nextTurn`: `setImmediate` in Node, a
 * channel message in browsers), go to the core in ONE `apply(now, ops)`
 * call with one clock for all of them: one SQLite transaction in which a
 * bad operation fails alone. Each promise settles with its own result
 * after the commit.
 *
 * One commit is in flight at a time. The core's `apply` is synchronous, so
 * with it a commit is over before the next turn; an `apply` that returns a
 * promise (a commit done elsewhere, or injected by a test) keeps its batch
 * in flight until it settles, and the next commit then gathers everything
 * queued meanwhile. Each commit is a generation, numbered from 1 per open
 * database: `processedGeneration` is the last one formed (and handed to `apply`),
 * `committedGeneration` the last one that committed (the effect cache in
 * `cache.ts` evicts only entries at or below it).
 * Internal: not exported from the package.
 *
 * @module
 */

import { nextTurn } from "./turn.js";
import { closedError, DurqError, fromCoreError, type DurqErrorCode } from "./errors.js";
import type { FinishedBatch, Outcome } from "./generated/boundary.js";

/** Most operations sent in one `apply` (one transaction); longer queues are split. */
export const MAX_BATCH_OPS = 10_000;

interface Pending {
  /** JSON text of the operation object, `{"op":…,"args":…}` (`ops.ts`). */
  json: string;
  resolve(v: unknown): void;
  reject(e: unknown): void;
  /** Runs synchronously after the commit, before the promise resolves (events come from here). */
  onCommit: ((result: never) => void) | undefined;
  /** Told the operation's generation, then whether it committed. */
  track: OpTracker | undefined;
}

/**
 * Follows one operation through the queue (the effect cache stamps its
 * entries with it). Both calls are synchronous, from inside the queue.
 */
export interface OpTracker {
  /** The operation joined the commit of generation `generation` (handed to `apply`). */
  assigned(generation: number): void;
  /** The operation committed (`true`), or failed, alone or with its whole commit (`false`); before its promise settles. */
  settled(ok: boolean): void;
}

/** What the queue needs from its owner. */
export interface WriteQueueHost {
  /**
   * `core.apply`: the commit's clock (ms since the Unix epoch) and the JSON
   * array of operations in (and `ops`, the same operations one JSON text
   * each), the JSON array of outcomes out; throws (or rejects) if the
   * commit failed. A promise keeps the commit in flight
   * until it settles.
   */
  apply(now: number, opsJson: string, ops: readonly string[]): string | PromiseLike<string>;
  /** The clock of a group commit (`now` for all its operations), ms. */
  now(): number;
  /** Called when a whole batch failed to commit (after its promises are rejected). */
  onCommitError(error: DurqError, ops: number): void;
  /** Called when an `onCommit` hook threw (a bug in durq or a listener). */
  onHookError(error: unknown): void;
  /** Called after each commit settled (its operations' promises are settled or about to be): `ok` is whether it committed. */
  onSettled?(generation: number, ok: boolean): void;
  /** Sees every committed operation's outcome, after its `onCommit` hook: the batches it turned terminal (omitted when none). */
  observe?(finishedBatches: FinishedBatch[] | undefined): void;
}

export class WriteQueue {
  readonly #host: WriteQueueHost;
  readonly #maxBatch: number;
  #pending: Pending[] = [];
  #scheduled = false;
  #closed = false;
  #inFlight = false;
  /** A flush is queued as a microtask (a full batch is waiting). */
  #soon = false;
  #idleWaiters: (() => void)[] = [];
  /** Number of `apply` calls made so far (one per transaction). */
  transactions = 0;
  /** Generation of the last commit formed from queued operations (handed to `apply`, or failed before it, e.g. by a clock that threw); 0 before the first. */
  processedGeneration = 0;
  /** Generation of the last commit that succeeded (0 before the first). */
  committedGeneration = 0;

  constructor(host: WriteQueueHost, maxBatch = MAX_BATCH_OPS) {
    this.#host = host;
    this.#maxBatch = maxBatch;
  }

  /**
   * Queues one operation (its JSON from a builder in `ops.ts`). The
   * promise resolves with the operation's `ok` result after its transaction
   * committed, or rejects with a {@link DurqError} (its own `err`, or the
   * commit's failure). `track` follows it through the queue.
   */
  submit<T>(json: string, onCommit?: (result: T) => void, track?: OpTracker): Promise<T> {
    if (this.#closed) {
      track?.settled(false);
      return Promise.reject(closedError());
    }
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ json, resolve: resolve as (v: unknown) => void, reject, onCommit: onCommit as ((r: never) => void) | undefined, track });
      this.#schedule();
      // A full batch does not wait for the next turn: a caller that never
      // yields to the event loop (write-behind effect calls in a loop of
      // microtasks) would otherwise hold every write back.
      if (this.#pending.length >= this.#maxBatch && !this.#soon) {
        this.#soon = true;
        queueMicrotask(() => {
          this.#soon = false;
          this.#flush();
        });
      }
    });
  }

  /** Operations waiting for the next commit. */
  get size(): number {
    return this.#pending.length;
  }

  /** Whether a commit is in flight (handed to an asynchronous `apply` that has not settled). */
  get inFlight(): boolean {
    return this.#inFlight;
  }

  /**
   * Starts the next commit now instead of at the next turn, if none is in
   * flight and operations are waiting (backpressure: the effect cache needs
   * the room their commit frees). Returns whether a commit is now in flight
   * or just ran.
   */
  kick(): boolean {
    if (this.#inFlight) return true;
    if (this.#pending.length === 0) return false;
    this.#flush();
    return true;
  }

  /** Resolves once every operation submitted so far has been applied (committed or failed). */
  drain(): Promise<void> {
    if (this.#idle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Refuses new operations (`DURQ_CLOSED`); those already queued still run. */
  close(): void {
    this.#closed = true;
  }

  #idle(): boolean {
    return this.#pending.length === 0 && !this.#scheduled && !this.#inFlight;
  }

  #schedule(): void {
    if (this.#scheduled) return;
    nextTurn(() => {
      this.#scheduled = false;
      this.#flush();
    });
    // Set after the call: if scheduling threw, the next write tries again
    // instead of waiting for a turn that will never come.
    this.#scheduled = true;
  }

  #flush(): void {
    // The commit in flight flushes again when it settles.
    if (!this.#inFlight && this.#pending.length > 0) {
      const batch = this.#pending.length <= this.#maxBatch ? this.#pending : this.#pending.slice(0, this.#maxBatch);
      this.#pending = batch === this.#pending ? [] : this.#pending.slice(this.#maxBatch);
      this.#applyBatch(batch);
      // A longer queue goes on at the next turn (other work gets a turn between commits).
      if (this.#pending.length > 0 && !this.#inFlight) this.#schedule();
    }
    this.#checkIdle();
  }

  #checkIdle(): void {
    if (!this.#idle()) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  #applyBatch(batch: Pending[]): void {
    const generation = ++this.processedGeneration;
    for (const p of batch) p.track?.assigned(generation);
    let text: string;
    let result: string | PromiseLike<string>;
    try {
      // A custom clock may return fractions (performance.now()) or throw:
      // either must fail this batch's promises, never escape or hang them.
      const now = Math.floor(this.#host.now());
      if (!Number.isSafeInteger(now) || now < 0) {
        throw new DurqError("DURQ_INVALID_INPUT", `the clock's now() must return ms since the Unix epoch, got ${now}`);
      }
      const parts = new Array<string>(batch.length);
      for (let i = 0; i < batch.length; i++) parts[i] = batch[i]!.json;
      text = `[${parts.join(",")}]`;
      this.transactions++;
      result = this.#host.apply(now, text, parts);
    } catch (e) {
      this.#failed(batch, generation, e);
      return;
    }
    if (typeof result === "string") {
      this.#settle(batch, generation, result);
      return;
    }
    this.#inFlight = true;
    Promise.resolve(result)
      .then(
        (out) => this.#settle(batch, generation, out),
        (e: unknown) => this.#failed(batch, generation, e),
      )
      .catch((e: unknown) => this.#host.onHookError(e)) // a bug in a host hook: never an unhandled rejection
      .finally(() => {
        this.#inFlight = false;
        this.#flush(); // the next commit gathers everything queued meanwhile
      });
  }

  #failed(batch: Pending[], generation: number, e: unknown): void {
    const error = fromCoreError(e);
    for (const p of batch) p.track?.settled(false);
    for (const p of batch) p.reject(error);
    this.#host.onCommitError(error, batch.length);
    this.#host.onSettled?.(generation, false);
  }

  #settle(batch: Pending[], generation: number, out: string): void {
    let outcomes: Outcome[];
    try {
      outcomes = JSON.parse(out) as Outcome[];
      if (!Array.isArray(outcomes) || outcomes.length !== batch.length) {
        throw new DurqError("DURQ_INTERNAL", `the core returned ${Array.isArray(outcomes) ? outcomes.length : "no"} outcomes for ${batch.length} operations`);
      }
    } catch (e) {
      this.#failed(batch, generation, e);
      return;
    }
    this.committedGeneration = generation;
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i]!;
      const o = outcomes[i]!;
      if ("ok" in o) {
        if (p.onCommit !== undefined) {
          try {
            p.onCommit(o.ok as never);
          } catch (e) {
            this.#host.onHookError(e);
          }
        }
        if (this.#host.observe !== undefined) {
          try {
            this.#host.observe(o.finishedBatches);
          } catch (e) {
            this.#host.onHookError(e);
          }
        }
        p.track?.settled(true);
        p.resolve(o.ok);
      } else {
        p.track?.settled(false);
        p.reject(new DurqError(o.err.code as DurqErrorCode, o.err.message, { extendedCode: o.err.extendedCode }));
      }
    }
    this.#host.onSettled?.(generation, true);
  }
}
