/**
 * Cron schedules and queue pause/resume: the writes and reads of
 * {@link Durq.schedule} and its siblings, and {@link ScheduleDispatcher},
 * the sleeper that the database's one timer wakes when the earliest
 * schedule slot comes due. The calendar (cron expression, IANA time zone,
 * DST) is the core's (`src/schedule`), so every runtime computes the same
 * slots.
 * Internal: not exported from the package.
 *
 * @module
 */

import type { Clock } from "./clock.js";
import { invalidInput } from "./errors.js";
import type { Emitter } from "./events.js";
import type {
  FiredSchedules,
  QueueInfo,
  QueuePaused,
  Schedule as StoredSchedule,
  SchedulePage as StoredSchedulePage,
  ScheduleSet,
} from "./generated/boundary.js";
import { parseResult } from "./core.js";
import { isDefinedJob, type Job } from "./job.js";
import * as ops from "./ops.js";
import type { Sleeper } from "./scheduler.js";
import { checkInt, checkName, checkOptions, isPlainObject } from "./validate.js";
import { checkRun } from "./run-args.js";

/** What to do about slots that came due while no process had the database open. */
export type CatchUp = "latest" | "all" | "none";

/** What {@link Durq.schedule} takes besides the id. */
export interface ScheduleSpec<I = unknown> {
  /**
   * When: five fields (`minute hour day-of-month month day-of-week`), an
   * optional leading seconds field (`*\/5 * * * * *`: every 5 s), or a
   * nickname (`@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`,
   * `@midnight`, `@hourly`). The syntax is croner's (Vixie cron plus `L`,
   * `W` and `#`; https://github.com/hexagon/croner-rust).
   */
  cron: string;
  /** IANA time zone the expression is read in (default `"UTC"`), e.g. `"Europe/Berlin"`. */
  timezone?: string;
  /** The job each slot runs: a job made by `defineJob`, or the name of one defined in this process; its retry policy is stored with the schedule. */
  job: Job<I, any> | string;
  /** The input of every run (JSON; default `null`). */
  input?: I;
  /** Labels of every run. */
  labels?: Record<string, string>;
  /** Queue of every run (default `"default"`). */
  queue?: string;
  /** Priority of every run (32-bit integer, higher first; default 0). */
  priority?: number;
  /** Concurrency key of every run: with one, a slow run delays the next slot's run instead of overlapping it. */
  concurrencyKey?: string;
  /**
   * After downtime: `"latest"` (default) runs the most recent missed slot
   * once; `"all"` runs every missed slot (the latest 1,000 at most),
   * oldest first; `"none"` skips slots reached more than 60 s late.
   */
  catchUp?: CatchUp;
}

/** A stored schedule, as {@link Durq.getSchedule} and {@link Durq.listSchedules} return it. */
export interface Schedule extends Omit<StoredSchedule, "input"> {
  /** The input of its runs. */
  input: unknown;
  /** Whether a job of that name is defined in this process (`false`: its runs wait for a process that defines it). */
  jobDefined: boolean;
}

/** A page of {@link Durq.listSchedules}. */
export interface SchedulePage {
  /** The schedules, in id order. */
  schedules: Schedule[];
  /** Pass as `cursor` for the next page; `null` on the last page. */
  nextCursor: string | null;
}

/** A queue as {@link Durq.listQueues} reports it: `{ name, paused, pausedAt, counts }`. */
export type QueueSummary = QueueInfo;

const SPEC_KEYS = ["cron", "timezone", "job", "input", "labels", "queue", "priority", "concurrencyKey", "catchUp"] as const;
const CATCH_UP: readonly CatchUp[] = ["latest", "all", "none"];

/** What schedules need from their database. @internal */
export interface ScheduleHost {
  readonly clock: Clock;
  readonly events: Emitter;
  /** Checks that the database is open, builds the operation and queues it (rejects for bad input). */
  write<T>(op: string | (() => string), onCommit?: (result: T) => void): Promise<T>;
  /** Queues a write. */
  submit<T>(json: string, onCommit?: (result: T) => void): Promise<T>;
  /** A read of the core, wherever the database is owned. */
  coreRead(method: "getSchedule" | "listSchedules" | "nextScheduleAt" | "listQueues", ...args: unknown[]): unknown;
  /** Whether this process owns the database: only the owner fires schedules. */
  owns(): boolean;
  sleepUntil(s: Sleeper, atMs: number | undefined): void;
  /** A run was enqueued: emits `run:enqueued`, wakes the workers of its queue. */
  enqueued(r: { id: string; created: boolean; status: "pending" }, meta: { job: string; queue: string }): void;
  /** Wakes the started workers of `queue`. */
  wakeWorkers(queue: string): void;
}

/** How long a firing that failed waits before the next try, ms. */
const RETRY_MS = 1000;

/** {@link Durq.schedule}. @internal */
export function schedule<I>(
  host: ScheduleHost,
  dispatcher: ScheduleDispatcher,
  id: string,
  spec: ScheduleSpec<I>,
): Promise<{ created: boolean; nextAt: number | null }> {
  return host
    .write<ScheduleSet>(
      () => {
        const sid = checkName("schedule id", id);
        const s = checkOptions("schedule spec", spec, SPEC_KEYS);
        if (!isPlainObject(spec)) throw invalidInput("schedule(id, spec) needs a spec object { cron, job, ... }");
        if (typeof s.cron !== "string") throw invalidInput('schedule spec needs cron: a cron expression string such as "*/5 * * * *"');
        if (s.timezone != null && typeof s.timezone !== "string")
          throw invalidInput('schedule timezone must be an IANA time zone name such as "Europe/Berlin"');
        if (s.catchUp != null && !CATCH_UP.includes(s.catchUp))
          throw invalidInput(`schedule catchUp must be one of ${CATCH_UP.map((c) => JSON.stringify(c)).join(", ")}, got ${JSON.stringify(s.catchUp)}`);
        const { job, input, queue, labels, priority, concurrencyKey } = s;
        const run = checkRun(job as Job<I, any> | string, input === undefined ? null : input, { queue, labels, priority, concurrencyKey }, "schedule ");
        return ops.schedule({ id: sid, cron: s.cron, timezone: s.timezone ?? undefined, catchUp: s.catchUp ?? undefined, run });
      },
      () => dispatcher.wake(),
    )
    .then((r) => ({ created: r.created, nextAt: r.nextAt ?? null }));
}

/** {@link Durq.deleteSchedule}. @internal */
export function deleteSchedule(host: ScheduleHost, dispatcher: ScheduleDispatcher, id: string): Promise<boolean> {
  return host
    .write<{ deleted: boolean }>(
      () => ops.deleteSchedule({ id: checkName("schedule id", id) }),
      () => dispatcher.wake(),
    )
    .then((r) => r.deleted);
}

/** A stored schedule as the API returns it. */
function toSchedule(s: StoredSchedule): Schedule {
  return { ...s, jobDefined: isDefinedJob(s.job) };
}

/** {@link Durq.getSchedule}. @internal */
export async function getSchedule(host: ScheduleHost, id: string): Promise<Schedule | undefined> {
  const sid = checkName("schedule id", id);
  const v = await host.coreRead("getSchedule", sid);
  return v === undefined || v === null ? undefined : toSchedule(parseResult<StoredSchedule>(v));
}

/** {@link Durq.listSchedules}. @internal */
export async function listSchedules(host: ScheduleHost, options?: { cursor?: string | null; limit?: number }): Promise<SchedulePage> {
  const o = checkOptions("listSchedules options", options, ["cursor", "limit"]);
  const filter: Record<string, unknown> = {};
  if (o?.limit != null) filter.limit = checkInt("listSchedules limit", o.limit, 1, 1000);
  if (o?.cursor != null) {
    if (typeof o.cursor !== "string" || o.cursor.length === 0) throw invalidInput("cursor must be a nextCursor string from an earlier listSchedules page");
    filter.cursor = o.cursor;
  }
  const page = parseResult<StoredSchedulePage>(await host.coreRead("listSchedules", JSON.stringify(filter)));
  return { schedules: page.schedules.map(toSchedule), nextCursor: page.nextCursor ?? null };
}

/** {@link Durq.pauseQueue} and {@link Durq.resumeQueue}. @internal */
export function setPaused(host: ScheduleHost, queue: string, paused: boolean): Promise<QueuePaused> {
  return host.write<QueuePaused>(
    () => {
      const q = checkName("queue name", queue);
      return paused ? ops.pauseQueue({ queue: q }) : ops.resumeQueue({ queue: q });
    },
    (r) => {
      if (!r.paused && r.changed) host.wakeWorkers(queue);
    },
  );
}

/** {@link Durq.listQueues}. @internal */
export async function listQueues(host: ScheduleHost): Promise<QueueSummary[]> {
  return parseResult<QueueInfo[]>(await host.coreRead("listQueues"));
}

/**
 * Fires the schedules of the database: sleeps (on the database's one
 * timer) until the earliest `nextAt`, then submits `fireSchedules` until no
 * schedule is due, emits `schedule:fired` per slot and `run:enqueued` per
 * new run, and sleeps again. Only the owner process fires; a client that
 * takes the database over is woken by it.
 * @internal
 */
export class ScheduleDispatcher implements Sleeper {
  readonly #host: ScheduleHost;
  #firing: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  #starts = 0;

  constructor(host: ScheduleHost) {
    this.#host = host;
  }

  /** Fires what is due now, or sleeps until the next slot. */
  wake(): void {
    if (this.#stopped || !this.#host.owns()) return;
    if (this.#firing !== undefined) {
      this.#again = true; // a schedule changed meanwhile: look again when this firing ends
      return;
    }
    this.#firing = this.#run().finally(() => {
      this.#firing = undefined;
      if (this.#again && !this.#stopped) {
        this.#again = false;
        this.wake();
      }
    });
  }

  async #run(): Promise<void> {
    const host = this.#host;
    const now = host.clock.now();
    try {
      const next = (await host.coreRead("nextScheduleAt")) as number | null | undefined;
      if (this.#stopped) return;
      if (next === undefined || next === null) return host.sleepUntil(this, undefined);
      if (next > now) return host.sleepUntil(this, next);
      this.#starts++;
      for (;;) {
        const r = await host.submit<FiredSchedules>(ops.fireSchedules({}), (r) => this.#fired(r));
        if (!r.more || this.#stopped) break;
      }
      this.#again = true; // sleep until the next slot
    } catch (error) {
      if (this.#stopped) return;
      host.events.emit("error", { error, source: "schedule" });
      host.sleepUntil(this, now + RETRY_MS); // a failing firing must not stop the schedules for good
    }
  }

  /** The events of one firing, after its commit. */
  #fired(r: FiredSchedules): void {
    const host = this.#host;
    for (const f of r.fired) {
      host.enqueued({ id: f.runId, created: f.created, status: "pending" }, { job: f.job, queue: f.queue });
      host.events.emit("schedule:fired", {
        scheduleId: f.scheduleId,
        slotAt: f.slotAt,
        runId: f.runId,
        created: f.created,
        job: f.job,
        queue: f.queue,
        jobDefined: isDefinedJob(f.job),
      });
    }
    for (const s of r.stopped) {
      host.events.emit("error", { error: invalidInput(`schedule ${JSON.stringify(s.scheduleId)} stopped: ${s.message}`), source: "schedule" });
    }
  }

  /** The firing in flight (for {@link Durq.runDue}). */
  pending(): Promise<void>[] {
    return this.#firing === undefined ? [] : [this.#firing];
  }

  /** How many firings this dispatcher has started (for {@link Durq.runDue}). */
  get starts(): number {
    return this.#starts;
  }

  /** Fires nothing from now on; resolves when the firing in flight has committed. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#host.sleepUntil(this, undefined);
    await this.#firing;
  }
}
