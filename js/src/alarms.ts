/**
 * Durable-Object-style alarms: at most one alarm per actor id in a
 * namespace, each namespace stored in its own SQLite database (for a file
 * database, `<path>.alarms/<namespace>.db`; in memory for an in-memory one).
 *
 * Semantics, after Cloudflare Durable Object alarms
 * (https://developers.cloudflare.com/durable-objects/api/alarms/) and
 * workerd's alarm scheduler:
 * - an alarm never fires before its scheduled time (by the database's clock);
 * - alarms already due when a handler is registered fire at once;
 * - at least once: the alarm is removed only after its handler resolves; a
 *   crash during the handler fires it again after the next open;
 * - a handler that throws (or runs past 15 minutes) is retried after 2 s,
 *   4 s, 8 s, 16 s, 32 s and 64 s (each up to 25% more at random, as
 *   workerd's alarm retries), then abandoned with an
 *   `alarm:abandoned` event; the retry count is stored, so a restart does
 *   not reset it;
 * - `set` while the handler runs schedules a new alarm that its completion
 *   does not remove; `delete` while it runs does not abort it, and removes
 *   the alarm (a newly set one too) so that no retry follows.
 *
 * @module
 */

import type { Clock } from "./clock.js";
import { DurqError, invalidInput } from "./errors.js";
import { checkInt, checkName, checkOptions, checkTime, MAX_TIME_MS } from "./validate.js";
import type { Emitter } from "./events.js";
import * as ops from "./ops.js";
import type { Sleeper } from "./scheduler.js";

/** An alarm as listed by {@link AlarmNamespace.list}. */
export interface AlarmInfo {
  /** The actor it belongs to. */
  actorId: string;
  /** The time it was set for, ms since the epoch (a past time raised to the time of the `set`); unchanged by retries, as `getAlarm()` in a Durable Object. */
  scheduledTime: number;
  /** When it is delivered next, ms: `scheduledTime`, or after a failed delivery the retry time. */
  deliverAt: number;
  /** Failed deliveries of this alarm so far (0 until its handler first throws). */
  retryCount: number;
}

/** A page of alarms, earliest delivery first (by `deliverAt`, then actor id). */
export interface AlarmPage {
  alarms: AlarmInfo[];
  /** Pass as `cursor` to get the next page; `null` on the last page. */
  nextCursor: string | null;
}

/** Options of {@link AlarmNamespace.list}. */
export interface AlarmListOptions {
  /** Only alarms delivered before this time (`deliverAt`, exclusive), ms since the epoch or a `Date`. */
  before?: number | Date;
  /** Page size, 1..=1000 (default 50). */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
}

/** What an alarm handler is told about the delivery. */
export interface AlarmDelivery {
  /** The time the alarm was set for, ms: on a retry too, as `alarmInfo` in a Durable Object (not the retry time). */
  scheduledTime: number;
  /** Earlier failed deliveries of this alarm (0 on the first). */
  retryCount: number;
  /** `retryCount > 0`, as in the Durable Objects `alarmInfo`. */
  isRetry: boolean;
  /** Aborted (reason: a `DURQ_TIMEOUT` error) when the handler has run for {@link ALARM_HANDLER_TIMEOUT_MS}; the delivery then counts as failed and is retried. */
  signal: AbortSignal;
}

/**
 * Longest an alarm handler may run, ms (15 minutes, workerd's limit on an
 * `alarm()` handler's wall time:
 * https://developers.cloudflare.com/durable-objects/api/alarms/). Past it,
 * the handler's `signal` is aborted and the delivery counts as failed (a
 * retry is scheduled), whether or not the handler returns later.
 */
export const ALARM_HANDLER_TIMEOUT_MS = 15 * 60_000;

/** An alarm handler: resolves when the alarm's work is done; throwing (or rejecting) retries it. */
export type AlarmHandler = (actorId: string, delivery: AlarmDelivery) => unknown;

/** Options of {@link Durq.onAlarm}. */
export interface AlarmHandlerOptions {
  /** Most handlers of this namespace running at once (1..=1000, default 100); one actor's alarm never runs twice at once. */
  concurrency?: number;
}

/** An alarm row as the core returns it (with the `version` of the `set` that made it). @internal */
export interface StoredAlarm extends AlarmInfo {
  version: number;
}

/** What alarm handles and dispatchers need from their database. @internal */
export interface AlarmHost {
  readonly clock: Clock;
  readonly events: Emitter;
  /** Throws `DURQ_CLOSED` once `close()` was called. */
  checkOpen(): void;
  /** Queues a write (even while closing, for outcomes of handlers in flight). */
  submit<T>(json: string, onCommit?: (result: T) => void): Promise<T>;
  /** The actor's alarm row, or undefined (the owner process only: the dispatcher's reads). */
  getAlarm(ns: string, actorId: string): StoredAlarm | undefined;
  /** A page of the namespace's alarms for a filter JSON (the owner process only). */
  listAlarms(ns: string, filterJson: string): { alarms: StoredAlarm[]; nextCursor: string | null };
  /** {@link AlarmHost.getAlarm} wherever the database is owned (over the owner's socket in a client process). */
  readAlarm(ns: string, actorId: string): Promise<StoredAlarm | undefined>;
  /** {@link AlarmHost.listAlarms} wherever the database is owned. */
  readAlarms(ns: string, filterJson: string): Promise<{ alarms: StoredAlarm[]; nextCursor: string | null }>;
  /** Whether this process owns the database: alarm handlers run only in the owner (a client's wait until it takes over). */
  owns(): boolean;
  /** The namespace's earliest alarm strictly after `after`, ms (one index seek in the core). */
  nextAlarmAfter(ns: string, after: number): number | undefined;
  sleepUntil(s: Sleeper, atMs: number | undefined): void;
  /** An alarm of `ns` was set to `timeMs`: tells the namespace's dispatcher, if a handler is registered. */
  alarmSet(ns: string, timeMs: number): void;
  /** Whether a handler of `ns` in this process is running alarm `version` of `actorId`. */
  isRunning(ns: string, actorId: string, version: number): boolean;
}

/** How long an actor whose outcome could not be written (or a namespace whose read failed) waits before the next try, ms. */
const OUTCOME_RETRY_MS = 1000;
/** Due alarms read per page by a dispatcher's sweep. */
const SWEEP_PAGE = 256;
/** Default concurrency of a namespace's handlers. */
export const DEFAULT_ALARM_CONCURRENCY = 100;

/**
 * The alarms of one namespace, made by {@link Durq.alarms}. Writes go
 * through the database's write queue (each resolves after its commit);
 * reads see what has committed.
 */
export class AlarmNamespace {
  /** The namespace's name. */
  readonly namespace: string;
  readonly #host: AlarmHost;

  /** @internal Use {@link Durq.alarms}. */
  constructor(host: AlarmHost, namespace: string) {
    this.#host = host;
    this.namespace = namespace;
  }

  /**
   * Schedules the actor's alarm at `time` (ms since the epoch, or a `Date`),
   * replacing the one it had (at most one per actor) and resetting its
   * retry count. A time in the past is stored as the time of the commit
   * (what {@link AlarmNamespace.get} then returns) and fires as soon as a
   * handler is registered, as `setAlarm()` in a Durable Object.
   *
   * @throws {DurqError} `DURQ_INVALID_INPUT` for a bad actor id or a time
   *   ≤ 0 (workerd refuses those too) or out of range;
   *   `DURQ_CLOSED`; `SQLITE_*` if the commit failed.
   */
  set(actorId: string, time: number | Date): Promise<void> {
    try {
      this.#host.checkOpen();
      const ms = checkTime("alarm time", time);
      const json = ops.setAlarm({ namespace: this.namespace, actorId: checkName("actorId", actorId), time: ms });
      return this.#host.submit<unknown>(json, () => this.#host.alarmSet(this.namespace, ms)).then(() => undefined);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * The actor's scheduled alarm time (ms), or `null` if it has none. While
   * the actor's alarm handler runs, the alarm it is running counts as
   * fired: `get` returns `null` unless `set` was called since the handler
   * started, as `getAlarm()` does in a Durable Object
   * (https://developers.cloudflare.com/durable-objects/api/alarms/#getalarm).
   *
   * @throws {DurqError} `DURQ_INVALID_INPUT` for a bad actor id; `DURQ_CLOSED`.
   */
  async get(actorId: string): Promise<number | null> {
    this.#host.checkOpen();
    const a = await this.#host.readAlarm(this.namespace, checkName("actorId", actorId));
    if (a === undefined || this.#host.isRunning(this.namespace, actorId, a.version)) return null;
    return a.scheduledTime;
  }

  /**
   * Deletes the actor's alarm. A handler already running for it is not
   * aborted, but no retry follows it.
   *
   * @returns whether there was an alarm
   * @throws {DurqError} `DURQ_INVALID_INPUT` for a bad actor id; `DURQ_CLOSED`; `SQLITE_*`.
   */
  delete(actorId: string): Promise<boolean> {
    try {
      this.#host.checkOpen();
      const json = ops.deleteAlarm({ namespace: this.namespace, actorId: checkName("actorId", actorId) });
      return this.#host.submit<{ deleted: boolean }>(json).then((r) => r.deleted);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * A page of the namespace's alarms, earliest first: one index range scan.
   *
   * @throws {DurqError} `DURQ_INVALID_INPUT` for a bad option or cursor; `DURQ_CLOSED`.
   */
  async list(options?: AlarmListOptions): Promise<AlarmPage> {
    this.#host.checkOpen();
    const o = checkOptions("alarm list options", options, ["before", "limit", "cursor"]);
    const filter: Record<string, unknown> = {};
    if (o.before !== undefined) filter.before = checkTime("before", o.before);
    if (o.limit !== undefined) filter.limit = checkInt("limit", o.limit, 1, 1000);
    if (o.cursor !== undefined) {
      if (typeof o.cursor !== "string") throw invalidInput("cursor must be a string from nextCursor");
      filter.cursor = o.cursor;
    }
    const page = await this.#host.readAlarms(this.namespace, JSON.stringify(filter));
    return {
      alarms: page.alarms.map(({ actorId, scheduledTime, deliverAt, retryCount }) => ({ actorId, scheduledTime, deliverAt, retryCount })),
      nextCursor: page.nextCursor,
    };
  }
}

type FailResult = { outcome: "retry"; retryCount: number; retryAt: number } | { outcome: "abandoned"; retryCount: number } | { outcome: "superseded" };

/**
 * Runs the handler of one namespace: fires its due alarms (at most
 * `concurrency` at once, one per actor), reports each outcome, and sleeps
 * until the next alarm on the database's one timer. Due alarms are read
 * in pages by a sweep that moves forward by cursor (in time order), so a
 * backlog of n due alarms is read O(n) times in all, not once per
 * delivery; each is re-read by key just before it fires.
 *
 * @internal
 */
export class AlarmDispatcher implements Sleeper {
  readonly #host: AlarmHost;
  readonly #ns: string;
  readonly #handler: AlarmHandler;
  readonly #concurrency: number;
  readonly #inFlight = new Map<string, Promise<void>>();
  /** Version of the alarm each in-flight handler is running. */
  readonly #versions = new Map<string, number>();
  /** Actors whose outcome could not be written: kept out of dispatch until this time (ms), so a failing write does not re-run the handler back to back. */
  readonly #held = new Map<string, number>();
  /** Due alarms read by the current sweep and not started yet (at `concurrency`); re-read by key before they fire. */
  #buffer: StoredAlarm[] = [];
  /** Where the current sweep over the due alarms stands (`listAlarms` cursor); `null` when the next read starts over. */
  #cursor: string | null = null;
  /** Something due may sort behind the cursor (a past-time `set`, an expired hold): the next wake starts the sweep over. */
  #rewind = false;
  #wakeQueued = false;
  #stopped = false;
  #starts = 0;

  constructor(host: AlarmHost, ns: string, handler: AlarmHandler, concurrency: number) {
    this.#host = host;
    this.#ns = ns;
    this.#handler = handler;
    this.#concurrency = concurrency;
  }

  /** Whether a handler of this process is running the alarm `version` of `actorId`. */
  isRunning(actorId: string, version: number): boolean {
    return this.#versions.get(actorId) === version;
  }

  /**
   * An alarm of this namespace was set to `timeMs`. The wakes of one commit
   * are coalesced into one (on a microtask); a due time rewinds the sweep,
   * so the alarm is not left behind a sweep that new alarms keep feeding.
   */
  alarmSet(timeMs: number): void {
    if (this.#stopped || !this.#host.owns()) return;
    if (timeMs <= this.#host.clock.now()) this.#rewind = true;
    if (this.#wakeQueued) return;
    this.#wakeQueued = true;
    queueMicrotask(() => {
      this.#wakeQueued = false;
      this.wake();
    });
  }

  /** Fires what is due now and re-arms for the next alarm. */
  wake(): void {
    if (this.#stopped) return;
    const host = this.#host;
    if (!host.owns()) return; // a client process's handler waits until this process takes the database over
    let now = 0;
    try {
      now = Math.floor(host.clock.now());
      for (const [actor, until] of this.#held) {
        if (until > now) continue;
        this.#held.delete(actor);
        this.#rewind = true; // its row sorts behind the cursor
      }
      let free = this.#concurrency - this.#inFlight.size;
      if (free > 0 && this.#rewind) {
        this.#rewind = false;
        this.#buffer = [];
        this.#cursor = null;
      }
      let restarted = false;
      while (free > 0 && !this.#stopped) {
        if (this.#buffer.length === 0) {
          // Read the next page of due alarms. A finished sweep starts over
          // (to see alarms set since) at most once per wake, so rows that
          // are all in flight or held cannot make this loop spin.
          if (this.#cursor === null) {
            if (restarted) break;
            restarted = true;
          }
          const filter: Record<string, unknown> = { before: Math.min(now + 1, MAX_TIME_MS), limit: SWEEP_PAGE };
          if (this.#cursor !== null) filter.cursor = this.#cursor;
          const page = host.listAlarms(this.#ns, JSON.stringify(filter));
          this.#buffer = page.alarms;
          this.#cursor = page.nextCursor;
          if (this.#buffer.length === 0) {
            if (restarted) break;
            continue; // the sweep reached the end: start over once, for alarms set behind it
          }
        }
        const read = this.#buffer.shift()!;
        if (this.#inFlight.has(read.actorId) || this.#held.has(read.actorId)) continue;
        // The page may be stale: the alarm may have been deleted, moved or
        // set anew since. Fire what the row says now (one primary-key read).
        const a = host.getAlarm(this.#ns, read.actorId);
        if (a === undefined || a.deliverAt > now) continue;
        this.#fire(a);
        free--;
      }
      // Due alarms not started (at `concurrency`) start when a handler ends.
      let next = host.nextAlarmAfter(this.#ns, now);
      for (const until of this.#held.values()) if (next === undefined || until < next) next = until;
      host.sleepUntil(this, next);
    } catch (error) {
      if (this.#stopped) return;
      host.events.emit("error", { error, source: "alarm" });
      host.sleepUntil(this, now + OUTCOME_RETRY_MS); // a failed read must not stop the namespace for good
    }
  }

  /** Handlers in flight (for {@link Durq.runDue}). */
  pending(): Promise<void>[] {
    return [...this.#inFlight.values()];
  }

  /** How many deliveries this dispatcher has started so far (for {@link Durq.runDue}). */
  get starts(): number {
    return this.#starts;
  }

  /** Starts no handler from now on; resolves when the running ones have reported their outcome. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#host.sleepUntil(this, undefined);
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight.values()]);
  }

  /** Runs the handler for `a`, failing it (and aborting its signal) after {@link ALARM_HANDLER_TIMEOUT_MS}. */
  async #runHandler(a: StoredAlarm): Promise<void> {
    const clock = this.#host.clock;
    const controller = new AbortController();
    let timer: unknown;
    const timeout = new Promise<never>((_, reject) => {
      timer = clock.setTimeout(() => {
        const error = new DurqError("DURQ_TIMEOUT", `the alarm handler of ${JSON.stringify(a.actorId)} ran past ${ALARM_HANDLER_TIMEOUT_MS} ms`);
        controller.abort(error);
        reject(error);
      }, ALARM_HANDLER_TIMEOUT_MS);
    });
    try {
      const delivery = { scheduledTime: a.scheduledTime, retryCount: a.retryCount, isRetry: a.retryCount > 0, signal: controller.signal };
      await Promise.race([Promise.resolve(this.#handler(a.actorId, delivery)), timeout]);
    } finally {
      clock.clearTimeout(timer);
    }
  }

  #fire(a: StoredAlarm): void {
    this.#starts++;
    const host = this.#host;
    const ns = this.#ns;
    const p = (async () => {
      let failed = false;
      let error: unknown;
      try {
        await undefined; // the handler starts on its own microtask, never inside a commit hook
        if (this.#stopped) return; // close() or unregister came first: the row stays for the next open
        await this.#runHandler(a);
      } catch (e) {
        failed = true;
        error = e;
      }
      try {
        if (!failed) {
          await host.submit(ops.alarmDone({ namespace: ns, actorId: a.actorId, version: a.version }));
          return;
        }
        const r = await host.submit<FailResult>(ops.alarmFailed({ namespace: ns, actorId: a.actorId, version: a.version, random: Math.random() }));
        const base = { namespace: ns, actorId: a.actorId, scheduledTime: a.scheduledTime, error };
        if (r.outcome === "retry") {
          host.events.emit("alarm:failed", { ...base, retryCount: r.retryCount, retryAt: r.retryAt });
        } else if (r.outcome === "abandoned") {
          host.events.emit("alarm:failed", { ...base, retryCount: r.retryCount, retryAt: null });
          host.events.emit("alarm:abandoned", { ...base, retryCount: r.retryCount });
        } else {
          host.events.emit("alarm:failed", { ...base, retryCount: a.retryCount + 1, retryAt: null });
        }
      } catch (e) {
        // The outcome did not commit (the row is unchanged): retry the
        // delivery later rather than at once.
        this.#held.set(a.actorId, Math.floor(host.clock.now()) + OUTCOME_RETRY_MS);
        host.events.emit("error", { error: e, source: "alarm" });
      }
    })();
    this.#inFlight.set(a.actorId, p);
    this.#versions.set(a.actorId, a.version);
    void p.finally(() => {
      this.#inFlight.delete(a.actorId);
      this.#versions.delete(a.actorId);
      this.wake(); // a slot is free; a retry may be due
    });
  }
}

/** Checks {@link AlarmHandlerOptions}; returns the concurrency. @internal */
export function checkHandlerOptions(handler: unknown, options: unknown): number {
  if (typeof handler !== "function") throw invalidInput("onAlarm needs a handler function (actorId, { scheduledTime, retryCount, isRetry }) => ...");
  const c = checkOptions("onAlarm options", options as AlarmHandlerOptions | undefined, ["concurrency"]).concurrency;
  return c === undefined ? DEFAULT_ALARM_CONCURRENCY : checkInt("concurrency", c, 1, 1000);
}
