/**
 * {@link DurqSchedules}: cron schedules and queue pause/resume, between
 * the reads ({@link DurqReads}, `db-reads.ts`) and the rest of
 * {@link Durq} (`db.ts`). Each method delegates to `schedules.ts`.
 * @module
 */

import type { DbContext } from "./context.js";
import { DurqReads } from "./db-reads.js";
import * as schedules from "./schedules.js";
import type { QueueSummary, Schedule, SchedulePage, ScheduleSpec } from "./schedules.js";

/**
 * The schedules and queue controls of an open durq database; {@link Durq}
 * adds the other writes, workers, alarms and effects. Not made directly:
 * `open()` returns a {@link Durq}.
 */
export class DurqSchedules extends DurqReads {
  readonly #ctx: DbContext;

  /** @internal Use `open()`. */
  constructor(ctx: DbContext) {
    super(ctx);
    this.#ctx = ctx;
  }

  /**
   * Creates the cron schedule `id`, or replaces it (an upsert: call it at
   * every start). Each slot of the expression enqueues one run of `job`,
   * fired by the database's one timer in the process that owns the
   * database, never before the slot (by the database's clock). The run's
   * `runAt` is its slot and its idempotency key `schedule:<id>:<slot ms>`,
   * written with the schedule's next slot in one transaction: a slot is
   * enqueued once across crashes, restarts and processes. Replacing a
   * schedule with the same `cron` and `timezone` keeps its next slot (slots
   * missed meanwhile are caught up by `catchUp`); another expression or
   * zone starts at the first slot after now.
   *
   * Daylight saving time (the Open Cron Pattern Specification, as Vixie
   * cron): a fixed time (`30 2 * * *`) in a spring-forward gap fires once,
   * just after the gap, and once when a fall-back repeats it; an interval
   * (`*\/15 * * * *`) skips the gap and fires in both passes of a repeated
   * hour.
   *
   * @example
   * ```ts
   * await db.schedule("nightly-report", { cron: "0 3 * * *", timezone: "Europe/Berlin", job: report, input: { kind: "daily" } });
   * db.on("schedule:fired", ({ scheduleId, slotAt, runId }) => console.log(scheduleId, new Date(slotAt), runId));
   * ```
   *
   * @returns `{ created, nextAt }`: `created: false` when a schedule was
   *   replaced; `nextAt`, the next slot in ms since the epoch
   * @throws {DurqError} `DURQ_INVALID_INPUT` for a bad id, expression,
   *   time zone (not an IANA name), catch-up policy, input, label, queue
   *   name, priority or key, or an expression that never matches (nothing
   *   is stored); `DURQ_UNKNOWN_JOB` for a job name not defined in this
   *   process; `DURQ_CLOSED`.
   */
  schedule<I>(id: string, spec: ScheduleSpec<I>): Promise<{ created: boolean; nextAt: number | null }> {
    return schedules.schedule(this.#ctx, this.#ctx.schedules, id, spec);
  }

  /**
   * The schedule `id`, or `undefined`.
   *
   * @throws {DurqError} `DURQ_INVALID_INPUT` for a bad id; `DURQ_CLOSED`.
   */
  getSchedule(id: string): Promise<Schedule | undefined> {
    return schedules.getSchedule(this.#ctx, id);
  }

  /**
   * A page of schedules in id order (default 50, at most 1000 per page);
   * pass `nextCursor` back as `cursor` for the next.
   *
   * @throws {DurqError} `DURQ_INVALID_INPUT` for a bad limit or a cursor
   *   not returned by `listSchedules`; `DURQ_CLOSED`.
   */
  listSchedules(options?: { cursor?: string | null; limit?: number }): Promise<SchedulePage> {
    return schedules.listSchedules(this.#ctx, options);
  }

  /**
   * Deletes the schedule `id`; the runs it made stay.
   *
   * @returns whether a schedule with that id existed
   * @throws {DurqError} `DURQ_INVALID_INPUT` for a bad id; `DURQ_CLOSED`.
   */
  deleteSchedule(id: string): Promise<boolean> {
    return schedules.deleteSchedule(this.#ctx, this.#ctx.schedules, id);
  }

  /**
   * Pauses `queue`, durably (it stays paused across restarts until
   * {@link DurqSchedules.resumeQueue}): no worker of any process claims its
   * runs; handlers already running finish; enqueues and schedules still add
   * runs. As BullMQ's `queue.pause()`.
   *
   * @returns `{ paused: true, changed }`: `changed: false` if it was paused already
   * @throws {DurqError} `DURQ_INVALID_INPUT` for a bad queue name; `DURQ_CLOSED`.
   */
  pauseQueue(queue: string): Promise<{ paused: boolean; changed: boolean }> {
    return schedules.setPaused(this.#ctx, queue, true);
  }

  /**
   * Resumes a paused queue: its workers wake and claim its due runs.
   *
   * @returns `{ paused: false, changed }`: `changed: false` if it was not paused
   * @throws {DurqError} `DURQ_INVALID_INPUT` for a bad queue name; `DURQ_CLOSED`.
   */
  resumeQueue(queue: string): Promise<{ paused: boolean; changed: boolean }> {
    return schedules.setPaused(this.#ctx, queue, false);
  }

  /**
   * Every queue that holds runs or is paused, in name order: `{ name,
   * paused, pausedAt, counts: { pending, leased, completed, failed,
   * cancelled } }`. One pass over the runs (O(runs)), as `stats()`.
   *
   * @throws {DurqError} `DURQ_CLOSED`.
   */
  listQueues(): Promise<QueueSummary[]> {
    return schedules.listQueues(this.#ctx);
  }
}
