/**
 * Lifecycle events. Each is emitted after the transaction that caused it
 * committed, from the operation's result, and only for changes made by this
 * process.
 *
 * @module
 */

import type { BatchCounts, RunError, RunStatus } from "./types.js";

/** Payload of `alarm:failed`: a handler threw; `retryAt` is when it fires again, or `null` when it was abandoned or superseded. */
export interface AlarmFailedEvent {
  namespace: string;
  actorId: string;
  scheduledTime: number;
  /** Failed deliveries of this alarm so far, this one included. */
  retryCount: number;
  error: unknown;
  retryAt: number | null;
}

/** Payload of `alarm:abandoned`: the seventh delivery failed too; the alarm was deleted. */
export interface AlarmAbandonedEvent {
  namespace: string;
  actorId: string;
  scheduledTime: number;
  /** Failed deliveries in all (7). */
  retryCount: number;
  error: unknown;
}

/** Payload of the `batch:completed`, `batch:failed` and `batch:cancelled` events. */
export interface BatchFinishedEvent {
  /** Batch id. */
  id: string;
  /** Its queue. */
  queue: string;
  /** Its terminal state. */
  state: "completed" | "failed" | "cancelled";
  /** Its run counts when it turned terminal (`pending` and `leased` are 0). */
  counts: BatchCounts;
}

/** Payload of `schedule:fired`: a slot of a cron schedule enqueued its run. */
export interface ScheduleFiredEvent {
  /** The schedule. */
  scheduleId: string;
  /** The slot, ms since the epoch (the run's `runAt`). */
  slotAt: number;
  /** The run made for it. */
  runId: string;
  /** `false` when the slot's run existed already (another process fired it first). */
  created: boolean;
  /** The run's job. */
  job: string;
  /** The run's queue. */
  queue: string;
  /** Whether a job of that name is defined in this process (`false`: the run waits for a process that defines it). */
  jobDefined: boolean;
}

/** Payload of every event, by event name. */
export interface DurqEvents {
  /** A new run was created by `enqueue`, `enqueueMany` or `retrigger` (not emitted when an idempotency key returned an existing run). */
  "run:enqueued": { id: string; job: string; queue: string };
  /** A worker of this process leased a run (attempt = this attempt's number, 1-based). */
  "run:leased": { id: string; job: string; queue: string; attempt: number; workerId: string; leaseExpiresAt: number };
  /** A run finished successfully with `output`. */
  "run:completed": { id: string; job: string; attempt: number; output: unknown };
  /** A run failed for good: its attempts are used up, its error was not retryable, or its last lease expired. */
  "run:failed": { id: string; job: string; attempt: number; error: RunError };
  /** An attempt failed and the run will be retried at `runAt` (ms). */
  "run:retrying": { id: string; job: string; attempt: number; error: RunError; runAt: number };
  /** A run was cancelled; `previous` is the status it had. */
  "run:cancelled": { id: string; previous: RunStatus };
  /** A run was deleted by `deleteRun` (not emitted for `purgeRuns`). */
  "run:deleted": { id: string };
  /** A worker of this process found its lease on a run gone (expired and recovered by a claim) and abandoned the run. */
  "run:lease-lost": { id: string; job: string; attempt: number; workerId: string; error: Error };
  /** A claim found a run whose lease had expired and recovered it: `pending` to retry, `failed` when its attempts are used up. */
  "run:lease-expired": { id: string; status: RunStatus };
  /** A step's output was stored by `step.run`. */
  "step:completed": { runId: string; job: string; name: string; attempt: number; output: unknown };
  /** `step.progress(progress)` was stored. */
  "run:progress": { id: string; job: string; progress: unknown };
  /** A batch and its runs were created by `enqueueBatch` (not emitted when its idempotency key returned an existing batch). */
  "batch:enqueued": { id: string; queue: string; runs: number };
  /** Every run of a batch completed. Emitted once, after the commit that completed its last run. */
  "batch:completed": BatchFinishedEvent;
  /** A batch ended with at least one failed run. Emitted once, after the commit that ended its last live run. */
  "batch:failed": BatchFinishedEvent;
  /** A batch ended with no failed run but not every run completed (runs cancelled by `cancelBatch` or `cancel`, or every run deleted). Emitted once. */
  "batch:cancelled": BatchFinishedEvent;
  /** An alarm handler threw (or rejected): `retryAt` is when the alarm fires again, `null` when it was abandoned or set anew / deleted while the handler ran. */
  "alarm:failed": AlarmFailedEvent;
  /** An alarm's seventh delivery failed too (six retries used up): the alarm was deleted. */
  "alarm:abandoned": AlarmAbandonedEvent;
  /** A cron schedule's slot enqueued its run (one event per slot; the run's `run:enqueued` comes first). */
  "schedule:fired": ScheduleFiredEvent;
  /** `step.log(message, level)` was stored. */
  "run:log": { id: string; job: string; level: string; message: string; attempt: number };
  /**
   * Something failed with nobody awaiting it: a commit that failed as a
   * whole (`source: "commit"`; the promises of its operations reject too), a
   * worker's claim, heartbeat or outcome write (`"worker"`), an alarm
   * dispatcher's read or outcome write (`"alarm"`), the search index's
   * repair at open or after an import (`"search"`; search then rejects with
   * `DURQ_SEARCH_STALE`), the write-behind of a cached effect output whose
   * operation failed alone (`"effect"`; the output is dropped from memory and
   * computed again by a later call), the firing of cron schedules
   * (`"schedule"`; retried a second later), or an event listener that threw
   * (`"listener"`).
   * Without an `error` listener, all but commit failures are printed with
   * `console.error`.
   */
  error: { error: unknown; source: "commit" | "worker" | "alarm" | "listener" | "search" | "effect" | "schedule" };
}

/** The name of an event: a key of {@link DurqEvents}. */
export type DurqEventName = keyof DurqEvents;

/** Every event name. @internal */
export const EVENT_NAMES: readonly DurqEventName[] = Object.freeze([
  "run:enqueued",
  "run:leased",
  "run:completed",
  "run:failed",
  "run:retrying",
  "run:cancelled",
  "run:deleted",
  "run:lease-lost",
  "run:lease-expired",
  "step:completed",
  "run:progress",
  "run:log",
  "batch:enqueued",
  "batch:completed",
  "batch:failed",
  "batch:cancelled",
  "alarm:failed",
  "alarm:abandoned",
  "schedule:fired",
  "error",
]);

/** A listener of event `E`. It may be async; a rejection is reported like a throw. */
export type DurqListener<E extends DurqEventName> = (payload: DurqEvents[E]) => void | Promise<void>;

/** Where a client process's events also go: the owner, which passes them on to the processes that listen. @internal */
export interface Relay {
  /** Whether some process listens to `name`. */
  wants(name: DurqEventName): boolean;
  /** Sends the event (after the commit that caused it). */
  send(name: DurqEventName, payload: unknown): void;
}

/**
 * A small typed event emitter. A listener that throws (or rejects) does not
 * stop the others nor the write queue: the failure is emitted as an `error`
 * event, or printed with `console.error` when it came from an `error`
 * listener or nobody listens to `error`. @internal
 */
export class Emitter {
  #listeners = new Map<DurqEventName, Set<(payload: never) => unknown>>();
  /** Where events also go (the owner of a shared database, from a client process), if anywhere. */
  relay: Relay | undefined = undefined;
  /** Told when `name` gains its first listener (`true`) or loses its last (`false`). */
  onInterest: ((name: DurqEventName, listened: boolean) => void) | undefined = undefined;

  on<E extends DurqEventName>(name: E, fn: DurqListener<E>): () => void {
    let set = this.#listeners.get(name);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(name, set);
    }
    const first = set.size === 0;
    set.add(fn as (payload: never) => unknown);
    if (first) this.onInterest?.(name, true);
    return () => this.off(name, fn);
  }

  off<E extends DurqEventName>(name: E, fn: DurqListener<E>): void {
    const set = this.#listeners.get(name);
    if (set?.delete(fn as (payload: never) => unknown) && set.size === 0) this.onInterest?.(name, false);
  }

  /** Whether anyone listens to `name` here, or through the relay (lets callers skip building payloads). */
  has(name: DurqEventName): boolean {
    return this.hasLocal(name) || (this.relay?.wants(name) ?? false);
  }

  /** Whether a listener of this process listens to `name`. */
  hasLocal(name: DurqEventName): boolean {
    const set = this.#listeners.get(name);
    return set !== undefined && set.size > 0;
  }

  /** The names listened to in this process. */
  names(): DurqEventName[] {
    return [...this.#listeners].filter(([, set]) => set.size > 0).map(([name]) => name);
  }

  /** Emits to this process's listeners and, if it wants `name`, to the relay (never an `error` event: those belong to the process). */
  emit<E extends DurqEventName>(name: E, payload: DurqEvents[E]): void {
    const relay = this.relay;
    if (relay !== undefined && name !== "error" && relay.wants(name)) relay.send(name, payload);
    this.emitLocal(name, payload);
  }

  /** Emits to this process's listeners only (an event that came through the relay). */
  emitLocal<E extends DurqEventName>(name: E, payload: DurqEvents[E]): void {
    const set = this.#listeners.get(name);
    if (set === undefined || set.size === 0) {
      // Nobody awaits a worker's failure: say it somewhere. (A failed commit
      // also rejects the promises of its operations, so it is not printed.)
      if (name === "error") {
        const e = payload as DurqEvents["error"];
        if (e.source !== "commit") console.error(`durq: ${e.source} error (listen to "error" events to handle it):`, e.error);
      }
      return;
    }
    for (const fn of [...set]) {
      try {
        const r = (fn as (p: DurqEvents[E]) => unknown)(payload);
        if (r !== null && typeof r === "object" && typeof (r as PromiseLike<unknown>).then === "function") {
          (r as PromiseLike<unknown>).then(undefined, (e: unknown) => this.#listenerFailed(name, e));
        }
      } catch (e) {
        this.#listenerFailed(name, e);
      }
    }
  }

  #listenerFailed(name: DurqEventName, error: unknown): void {
    if (name === "error" || !this.hasLocal("error")) {
      console.error(`durq: a listener of "${name}" threw:`, error);
      return;
    }
    this.emit("error", { error, source: "listener" });
  }

  clear(): void {
    this.#listeners.clear();
  }
}
