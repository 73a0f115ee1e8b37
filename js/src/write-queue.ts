/**
 * The one serialized write queue (group commit).
 *
 * Every mutation is an operation object (docs/boundary.md). Operations
 * submitted in the same turn of the event loop, up to the next
 * `setImmediate`, go to the core in ONE `apply` call: one SQLite
 * transaction with a savepoint per operation, so a bad operation fails
 * alone. Each promise settles with its own result after the commit.
 *
 * @module
 * @internal
 */

import { closedError, DurqError, fromCoreError, type DurqErrorCode } from "./errors.js";

/** Most operations sent in one `apply` (one transaction); longer queues are split. */
export const MAX_BATCH_OPS = 10_000;

/** What `apply` returns for each operation. */
type Outcome = { ok: unknown } | { err: { code: string; message: string } };

interface Pending {
  /** JSON text of the operation object without `now`; starts with `{"op":`. */
  json: string;
  resolve(v: unknown): void;
  reject(e: unknown): void;
  /** Runs synchronously after the commit, before the promise resolves (events come from here). */
  onCommit: ((result: never) => void) | undefined;
}

/** What the queue needs from its owner. */
export interface WriteQueueHost {
  /** `core.apply`: JSON array of operations in, JSON array of outcomes out; throws if the commit failed. */
  apply(opsJson: string): string;
  /** The time stamped as `now` on every operation of a batch, ms. */
  now(): number;
  /** Called when a whole batch failed to commit (after its promises are rejected). */
  onCommitError(error: DurqError, ops: number): void;
  /** Called when an `onCommit` hook threw (a bug in durq or a listener). */
  onHookError(error: unknown): void;
  /** Sees every committed operation's result, after its `onCommit` hook (the owner picks out results common to many operations, e.g. finished batches). */
  observe?(result: unknown): void;
}

/**
 * Serializes an operation for {@link WriteQueue.submit}: plain fields with
 * `JSON.stringify`, plus already-serialized JSON values spliced in verbatim
 * (user inputs and outputs are serialized once, when validated).
 */
export function opJson(fields: Record<string, unknown>, raw?: Record<string, string>): string {
  let s = JSON.stringify(fields);
  if (raw !== undefined) {
    let extra = "";
    for (const k in raw) extra += `,${JSON.stringify(k)}:${raw[k]}`;
    s = s.slice(0, -1) + extra + "}";
  }
  return s;
}

export class WriteQueue {
  readonly #host: WriteQueueHost;
  readonly #maxBatch: number;
  #pending: Pending[] = [];
  #scheduled = false;
  #closed = false;
  #idleWaiters: (() => void)[] = [];
  /** Number of `apply` calls made so far (one per transaction). */
  transactions = 0;

  constructor(host: WriteQueueHost, maxBatch = MAX_BATCH_OPS) {
    this.#host = host;
    this.#maxBatch = maxBatch;
  }

  /**
   * Queues one operation (JSON from {@link opJson}, without `now`). The
   * promise resolves with the operation's `ok` result after its transaction
   * committed, or rejects with a {@link DurqError} (its own `err`, or the
   * commit's failure).
   */
  submit<T>(json: string, onCommit?: (result: T) => void): Promise<T> {
    if (this.#closed) return Promise.reject(closedError());
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ json, resolve: resolve as (v: unknown) => void, reject, onCommit: onCommit as ((r: never) => void) | undefined });
      this.#schedule();
    });
  }

  /** Operations waiting for the next flush. */
  get size(): number {
    return this.#pending.length;
  }

  /** Resolves once every operation submitted so far has been applied (committed or failed). */
  drain(): Promise<void> {
    if (this.#pending.length === 0 && !this.#scheduled) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Refuses new operations (`DURQ_CLOSED`); those already queued still run. */
  close(): void {
    this.#closed = true;
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#scheduled = false;
    const batch = this.#pending.length <= this.#maxBatch ? this.#pending : this.#pending.slice(0, this.#maxBatch);
    this.#pending = batch === this.#pending ? [] : this.#pending.slice(this.#maxBatch);
    if (this.#pending.length > 0) this.#schedule();
    if (batch.length > 0) this.#applyBatch(batch);
    if (this.#pending.length === 0 && !this.#scheduled) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  #applyBatch(batch: Pending[]): void {
    let outcomes: Outcome[];
    try {
      // A custom clock may return fractions (performance.now()) or throw:
      // either must fail this batch's promises, never escape or hang them.
      const now = Math.floor(this.#host.now());
      if (!Number.isSafeInteger(now) || now < 0) {
        throw new DurqError("DURQ_INVALID_INPUT", `the clock's now() must return ms since the Unix epoch, got ${now}`);
      }
      // `{"now":N,` + each operation's fields (its JSON without the leading `{`).
      const sep = `,{"now":${now},`;
      const parts = new Array<string>(batch.length);
      for (let i = 0; i < batch.length; i++) parts[i] = batch[i]!.json.slice(1);
      const text = `[${sep.slice(1)}${parts.join(sep)}]`;
      this.transactions++;
      outcomes = JSON.parse(this.#host.apply(text)) as Outcome[];
      if (!Array.isArray(outcomes) || outcomes.length !== batch.length) {
        throw new DurqError("DURQ_INTERNAL", `the core returned ${Array.isArray(outcomes) ? outcomes.length : "no"} outcomes for ${batch.length} operations`);
      }
    } catch (e) {
      const error = fromCoreError(e);
      for (const p of batch) p.reject(error);
      this.#host.onCommitError(error, batch.length);
      return;
    }

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
            this.#host.observe(o.ok);
          } catch (e) {
            this.#host.onHookError(e);
          }
        }
        p.resolve(o.ok);
      } else {
        p.reject(new DurqError(o.err.code as DurqErrorCode, o.err.message));
      }
    }
  }
}
