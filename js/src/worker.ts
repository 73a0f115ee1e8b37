/**
 * Workers: claim runs of their jobs under a lease, run the handlers, renew
 * the lease by heartbeat, and record the outcome.
 *
 * @module
 */

import { Attempt, type AttemptHost, type ClaimedRun, type Execution } from "./attempt.js";
import { DurqError, isDurqError } from "./errors.js";
import { isJob, type Job } from "./job.js";
import * as ops from "./ops.js";
import type { Sleeper } from "./scheduler.js";
import type { RunStatus } from "./types.js";
import { checkDuration, checkInt, checkName, checkOptions } from "./validate.js";

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

/** Result of the `claim` operation. @internal */
export interface ClaimResult {
  runs: ClaimedRun[];
  expired: { id: string; status: RunStatus }[];
}

/** What a worker needs from its database: what its attempts need, and more. @internal */
export interface WorkerHost extends AttemptHost {
  /** `core.nextWakeAt(queue)`; undefined if none or if the database is closed (a promise of it in a client process). */
  nextWakeAt(queue: string): number | undefined | Promise<number | undefined>;
  /** Asks the database's one timer to wake `w` at `atMs`; `undefined` cancels the request. */
  sleepUntil(w: Sleeper, atMs: number | undefined): void;
  /** Throws `DURQ_CLOSED` once `close()` was called. */
  checkOpen(): void;
  /** Emits the events of a claim (`run:leased`, `run:lease-expired`, ...). */
  claimed(result: ClaimResult, workerId: string): void;
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
  /** Attempts in flight whose handler is over and whose outcome is submitted: their slots are free. */
  readonly #finishing = new Set<Execution>();
  /** Resolved (and replaced) when a slot frees: an outcome submitted or an attempt over (`processUntilIdle` waits on it). */
  #slotFreed = signal();
  readonly #claims = new Set<Promise<unknown>>();
  /** Slots asked for by claims not yet committed: counted against `concurrency`. */
  #reserved = 0;
  #started = false;
  #epoch = 0;
  #ticking = false;
  #again = false;
  #starts = 0;
  /** Claims made so far: the lease owner of claim n is `<id>/<n>`. */
  #claimSeq = 0;
  /** Counts the re-arms, so an answer of the owner that arrives after a newer one is dropped. */
  #armed = 0;

  /** @internal Use {@link Durq.worker}. */
  constructor(host: WorkerHost, id: string, options: WorkerOptions) {
    const o = checkOptions("worker options", options, ["jobs", "concurrency", "leaseMs", "queue", "pollMs"]);
    if (!Array.isArray(o.jobs) || o.jobs.length === 0)
      throw new DurqError("DURQ_INVALID_INPUT", "worker needs jobs: a non-empty array of jobs made by defineJob()");
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
          // Only the runs still in flight are held: a long call over a
          // large queue must not keep one promise per run it ever started.
          for (const p of started) {
            mine.add(p);
            void p.then(() => mine.delete(p));
          }
          claimed = started.length;
          count += claimed;
          if (claimed === free) continue;
        }
        if (this.#inFlight.size === 0) {
          if (claimed === 0) break;
          continue;
        }
        await this.#slotFreed.promise;
      }
    } finally {
      await Promise.allSettled(mine);
    }
    return count;
  }

  /** Claims and handlers in flight (for {@link Durq.runDue}). @internal */
  pending(): Promise<unknown>[] {
    return [...this.#claims, ...this.#inFlight];
  }

  /** How many runs this worker has started so far (for {@link Durq.runDue}). @internal */
  get starts(): number {
    return this.#starts;
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
    this.#armed++;
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
          if (isDurqError(error, "DURQ_OWNER_CHANGED")) break; // the claim's leases are being given back; that wakes this worker
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
    if (failed) {
      this.#sleep(this.pollMs ?? BLOCKED_RETRY_MS);
      return;
    }
    const at = this.#host.nextWakeAt(this.queue);
    if (!(at instanceof Promise)) {
      this.#sleepUntilDue(at);
      return;
    }
    // A client process asks the owner; a wake that came meanwhile has re-armed already.
    const epoch = ++this.#armed;
    at.then(
      (t) => {
        if (epoch === this.#armed && this.#started) this.#sleepUntilDue(t);
      },
      () => {
        if (epoch === this.#armed && this.#started) this.#sleep(this.pollMs ?? BLOCKED_RETRY_MS);
      },
    );
  }

  /** Sleeps until `at`, the queue's next due run or lease expiry (or `pollMs`, if sooner or if nothing is due). */
  #sleepUntilDue(at: number | undefined): void {
    let delay: number | undefined;
    if (at !== undefined) {
      delay = at - this.#host.clock.now();
      // Due but not claimable (another job's run, a busy concurrency key): look again later.
      if (delay <= 0) delay = this.pollMs ?? BLOCKED_RETRY_MS;
    }
    if (this.pollMs !== undefined) delay = delay === undefined ? this.pollMs : Math.min(delay, this.pollMs);
    if (delay === undefined) return; // nothing queued: an enqueue wakes us
    this.#sleep(delay);
  }

  #sleep(delay: number): void {
    this.#host.sleepUntil(this, this.#host.clock.now() + delay);
  }

  /** Slots free for new claims: `concurrency` less handlers running and claims not yet committed. */
  #free(): number {
    return this.concurrency - (this.#inFlight.size - this.#finishing.size) - this.#reserved;
  }

  /**
   * An attempt's handler is over and its outcome was submitted in this
   * turn: its slot is free, and a claim made now (synchronously) joins the
   * outcome's commit. @internal (called by {@link Attempt})
   */
  outcomeSubmitted(attempt: Execution): void {
    this.#finishing.add(attempt);
    this.#freed();
  }

  /** A slot freed: wake the loop of `start()`, or `processUntilIdle`. */
  #freed(): void {
    const s = this.#slotFreed;
    this.#slotFreed = signal();
    s.resolve();
    this.wake();
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
    // Each claim holds its leases as `<worker id>/<claim number>`: if a
    // claim's answer is lost with the owner process (DURQ_OWNER_CHANGED), it
    // may have committed, and its leases are given back by that name
    // (later claims of this worker, numbered higher, commit after it, FIFO).
    const owner = `${this.id}/${++this.#claimSeq}`;
    const json = ops.claim({ queue: this.queue, jobs: this.#jobsJson, workerId: owner, leaseMs: this.leaseMs, limit });
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
    } catch (e) {
      if (!isDurqError(e, "DURQ_OWNER_CHANGED")) throw e;
      this.#host.submit(ops.expireLeasesOf({ ownerPrefix: owner })).then(
        () => this.wake(),
        () => undefined, // closed meanwhile: the next opener expires every lease
      );
      throw e;
    } finally {
      this.#reserved -= limit;
      this.#claims.delete(p);
      this.#untrackIfIdle();
    }
    return started;
  }

  #execute(run: ClaimedRun): Promise<void> {
    this.#starts++;
    const attempt = new Attempt(this, this.#host, run, this.#jobs.get(run.job));
    const p = attempt.run().finally(() => {
      this.#inFlight.delete(p);
      this.#finishing.delete(attempt);
      this.#untrackIfIdle();
      this.#freed();
    });
    this.#inFlight.add(p);
    return p;
  }
}

/** A promise with its resolve function. */
function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
