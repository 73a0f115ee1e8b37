/**
 * Time, injected: durq reads the time and arms timers only through a
 * {@link Clock}, so tests can drive it with a {@link ManualClock} instead of
 * sleeping.
 *
 * @module
 */

/**
 * A source of time and timers. Times are integer milliseconds since the
 * Unix epoch.
 */
export interface Clock {
  /** The current time, ms since the Unix epoch (an integer). */
  now(): number;
  /** Calls `fn` once after `ms` milliseconds; returns a handle for {@link Clock.clearTimeout}. */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Cancels a timer armed by {@link Clock.setTimeout}; a no-op for a fired or cleared one. */
  clearTimeout(handle: unknown): void;
}

/** Longest delay `setTimeout` accepts (2^31 - 1 ms, about 24.8 days); longer ones are clamped. */
export const MAX_TIMER_MS = 2_147_483_647;

/** The real clock: `Date.now()` and the runtime's timers. The default. */
export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, clampDelay(ms)),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** A delay rounded up to whole ms and kept within 0 ..= {@link MAX_TIMER_MS}. @internal */
export function clampDelay(ms: number): number {
  if (!(ms > 0)) return 0;
  return Math.min(Math.ceil(ms), MAX_TIMER_MS);
}

interface ManualTimer {
  at: number;
  seq: number;
  fn: () => void;
}

/**
 * A clock that moves only when told to, for tests: `advance(ms)` moves time
 * forward and fires the timers that come due, in time order.
 *
 * @example
 * ```ts
 * const clock = new ManualClock(Date.UTC(2030, 0, 1));
 * const db = await open({ memory: true }, { clock });
 * await db.enqueue(job, {}, { runAt: clock.now() + 60_000 });
 * clock.advance(60_000); // the run is now due
 * ```
 */
export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  #timers = new Map<number, ManualTimer>();

  /** @param startMs - the initial time, ms since the Unix epoch (default 0). */
  constructor(startMs = 0) {
    this.#now = Math.floor(startMs);
  }

  /** The clock's current time, ms. */
  now(): number {
    return this.#now;
  }

  /** Arms a timer that fires when the clock reaches `now() + ms`. */
  setTimeout(fn: () => void, ms: number): unknown {
    const seq = ++this.#seq;
    this.#timers.set(seq, { at: this.#now + clampDelay(ms), seq, fn });
    return seq;
  }

  /** Disarms a timer. */
  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Number of armed timers. */
  get pendingTimers(): number {
    return this.#timers.size;
  }

  /**
   * Moves the clock forward by `ms` (>= 0), firing each timer that comes due,
   * oldest first, with `now()` set to the timer's due time while it runs.
   * Timers armed by those callbacks fire too if they come due in the window.
   *
   * @returns the number of timers fired
   */
  advance(ms: number): number {
    if (!(ms >= 0) || !Number.isFinite(ms)) throw new RangeError(`advance needs a finite ms >= 0, got ${ms}`);
    return this.set(this.#now + ms);
  }

  /**
   * Sets the clock to `timeMs` (not before the current time), firing timers
   * as {@link ManualClock.advance} does.
   *
   * @returns the number of timers fired
   */
  set(timeMs: number): number {
    if (timeMs < this.#now) throw new RangeError(`a ManualClock does not go back: ${timeMs} < ${this.#now}`);
    let fired = 0;
    for (;;) {
      let next: ManualTimer | undefined;
      for (const t of this.#timers.values()) {
        if (t.at <= timeMs && (next === undefined || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      }
      if (next === undefined) break;
      this.#timers.delete(next.seq);
      this.#now = Math.max(this.#now, next.at);
      fired++;
      next.fn();
    }
    this.#now = Math.floor(timeMs);
    return fired;
  }
}
