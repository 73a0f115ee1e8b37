/**
 * One timer for the whole database: workers sleeping until their queue's
 * next run is due and alarm namespaces sleeping until their next alarm
 * each register the time they want to be woken (computed by the core, one
 * index seek each), and the scheduler arms a single clock timer for the
 * earliest of them.
 *
 * @module
 * @internal
 */

import type { Clock } from "./clock.js";

/** Something that sleeps until a time: a started worker, an alarm dispatcher. @internal */
export interface Sleeper {
  /** Called once its time has come (never before it, by the clock). */
  wake(): void;
}

/**
 * Keeps each sleeper's wake-up time and one clock timer armed for the
 * earliest. A timer that fires early (a clock that runs ahead of `now()`)
 * wakes nobody: the scheduler re-arms for what is left.
 *
 * @internal
 */
export class Scheduler {
  readonly #clock: Clock;
  readonly #at = new Map<Sleeper, number>();
  #timer: unknown = undefined;
  #timerAt = Infinity;
  #stopped = false;

  readonly #onArm: ((atMs: number | undefined) => void) | undefined;
  /** The last time given to `onArm` (Infinity: disarmed). */
  #reported = Infinity;

  /**
   * @param clock - the database's clock
   * @param onArm - told each time the timer is armed for a new time or
   *   disarmed (`undefined`), not when {@link Scheduler.stop} clears it: a
   *   host that can sleep mirrors it (a Durable Object's `setAlarm`)
   */
  constructor(clock: Clock, onArm?: (atMs: number | undefined) => void) {
    this.#clock = clock;
    this.#onArm = onArm;
  }

  /** Wakes, now, every sleeper whose time has come (by the clock), as the timer would. */
  fireDue(): void {
    if (!this.#stopped) this.#fire();
  }

  /** Wakes `s` at `atMs` (ms since the epoch), replacing any earlier request; `undefined` cancels it. */
  sleepUntil(s: Sleeper, atMs: number | undefined): void {
    if (this.#stopped) return;
    if (atMs === undefined || Number.isNaN(atMs)) this.#at.delete(s);
    else this.#at.set(s, atMs);
    this.#arm();
  }

  /** The time the single timer is armed for, or `undefined` when it is not armed. For tests and diagnostics. */
  get armedAt(): number | undefined {
    return this.#timer === undefined ? undefined : this.#timerAt;
  }

  /** Clears the timer and forgets every sleeper; later requests are ignored (the database is closing). */
  stop(): void {
    this.#stopped = true;
    this.#at.clear();
    this.#clear();
  }

  #clear(): void {
    if (this.#timer !== undefined) {
      this.#clock.clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#timerAt = Infinity;
    }
  }

  #arm(): void {
    let min = Infinity;
    for (const t of this.#at.values()) if (t < min) min = t;
    if (min === this.#timerAt && this.#timer !== undefined) return;
    this.#clear();
    if (min !== this.#reported) {
      this.#reported = min;
      this.#onArm?.(min === Infinity ? undefined : min);
    }
    if (min === Infinity) return;
    this.#timerAt = min;
    this.#timer = this.#clock.setTimeout(() => this.#fire(), min - this.#clock.now());
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = this.#clock.now();
    const due: Sleeper[] = [];
    for (const [s, t] of this.#at) if (t <= now) due.push(s);
    for (const s of due) this.#at.delete(s);
    for (const s of due) s.wake();
    if (!this.#stopped) this.#arm();
  }
}
