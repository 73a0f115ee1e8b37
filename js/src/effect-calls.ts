/**
 * Calls of memoized effects ({@link Durq.callEffect}, `step.effect`): the
 * output cached in memory, else in the database (`cache: true` effects),
 * else one run of the effect for all concurrent callers of the same input,
 * written behind with the next group commit; and {@link Durq.deleteEffects}.
 * `effect.ts` defines effects; this module calls them.
 * Internal: not exported from the package.
 *
 * @module
 */

import type { MemoryStore } from "./cache.js";
import type { Clock } from "./clock.js";
import { effectInput, effectKey, isEffect, type Effect } from "./effect.js";
import { invalidInput, isDurqError } from "./errors.js";
import type { Emitter } from "./events.js";
import * as ops from "./ops.js";
import { toJsonText } from "./validate.js";
import type { OpTracker } from "./write-queue.js";

/** The start of the core's `getEffect` answer, up to its output. */
const STORED_EFFECT_HEAD = /^\{"version":(\d+),"createdAt":(-?\d+),"output":/;

/** What effect calls need from their database. @internal */
export interface EffectHost {
  readonly clock: Clock;
  readonly events: Emitter;
  /** `core.getEffect`: `{version, createdAt, output}` JSON of the stored output, or undefined (read over the owner's socket in a client process). */
  readEffect(name: string, canonicalInput: string): Promise<string | null | undefined>;
  /** The effect cache's in-memory store. */
  readonly cache: MemoryStore;
  /** The error of the last commit that failed as a whole (already reported as such). */
  readonly lastCommitError: unknown;
  /** Queues an operation on the write queue (even while the database is closing). */
  submit<T>(json: string, onCommit?: (result: T) => void, track?: OpTracker): Promise<T>;
  /** Checks that the database is open, builds the operation (which may throw for bad input) and queues it; rejects instead of throwing. */
  write<T>(op: () => string, onCommit?: (result: T) => void): Promise<T>;
}

/** The effect calls of one database. @internal */
export class EffectCalls {
  readonly #host: EffectHost;
  /** Effect calls running, by store key: callers of the same key join them. */
  readonly #calls = new Map<string, Promise<string>>();

  constructor(host: EffectHost) {
    this.#host = host;
  }

  /** {@link Durq.callEffect} without the open check: handlers still running while `close()` waits for them may call effects. */
  async call<I, O>(effect: Effect<I, O>, input: I): Promise<O> {
    const { json, canonical } = effectInput(effect as Effect, input);
    const key = effectKey(effect as Effect, canonical);
    const c = this.#host.cache;
    const hit = c.get(key);
    if (hit !== undefined && this.#fresh(effect as Effect, hit.at)) {
      c.counters.memoryHits++;
      return JSON.parse(hit.json) as O;
    }
    let call = this.#calls.get(key);
    if (call !== undefined) {
      c.counters.joined++;
    } else {
      call = this.#run(effect as Effect, key, json, canonical);
      this.#calls.set(key, call);
      const done = () => this.#calls.delete(key);
      call.then(done, done);
    }
    return JSON.parse(await call) as O;
  }

  /**
   * {@link Durq.deleteEffects}: deletes the stored outputs of `effect` (all
   * its versions), or of every effect, and drops them from memory once that
   * commits.
   */
  delete(effect?: Effect<any, any>): Promise<{ deleted: number }> {
    return this.#host.write(
      () => {
        if (effect !== undefined && !isEffect(effect)) throw invalidInput("deleteEffects(effect) needs an effect made by defineEffect()");
        return ops.deleteEffects({ name: effect?.name });
      },
      () => this.#host.cache.dropEffects(effect?.name),
    );
  }

  /** One effect miss in memory: the database (if persisted), else the effect itself. Resolves with the output's JSON. */
  async #run(effect: Effect, key: string, inputJson: string, canonical: string): Promise<string> {
    const host = this.#host;
    const c = host.cache;
    if (effect.cache) {
      const stored = await host.readEffect(effect.name, canonical);
      // `{"version":N,"createdAt":MS,"output":...}` (field order pinned by
      // tests/effects.rs): the header is read without parsing the output,
      // whose text is kept as is.
      const head = typeof stored === "string" ? STORED_EFFECT_HEAD.exec(stored) : null;
      if (head !== null && Number(head[1]) === effect.version && this.#fresh(effect, Number(head[2]))) {
        const out = stored!.slice(head[0].length, -1);
        c.counters.databaseHits++;
        c.putLoaded(key, out, Number(head[2]));
        return out;
      }
    }
    c.counters.runs++;
    const output = await effect.run(JSON.parse(inputJson));
    const out = toJsonText(`the output of effect ${JSON.stringify(effect.name)}`, output === undefined ? null : output);
    const at = Math.floor(host.clock.now()); // stored with the output as its `createdAt`
    if (!effect.cache) {
      await c.whenRoom(() => c.putMemoryOnly(key, out, at));
      return out;
    }
    const op = ops.putEffect({ name: effect.name, version: effect.version, input: canonical, at, outputJson: out });
    await c.whenRoom(() => {
      const track = c.putDirty(key, out, at);
      // Write-behind: the caller already has its output. A failure drops
      // the entry (its tracker) and is reported: a whole commit's failure
      // once, as such; this operation's own failure here.
      host.submit(op, undefined, track).catch((error: unknown) => {
        if (error !== host.lastCommitError && !isDurqError(error, "DURQ_CLOSED")) host.events.emit("error", { error, source: "effect" });
      });
    });
    return out;
  }

  /** Whether an output made at `at` (ms) is still valid for `effect` (its `maxAgeMs`). */
  #fresh(effect: Effect, at: number): boolean {
    return effect.maxAgeMs === undefined || this.#host.clock.now() - at < effect.maxAgeMs;
  }
}
