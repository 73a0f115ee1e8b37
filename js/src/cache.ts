/**
 * The in-memory store of the effect cache: effect outputs and the step
 * outputs of running runs, bounded by `maxInMemoryChanges` entries, with
 * commit-gated eviction and tiered backpressure (docs/architecture.md,
 * capability 8).
 *
 * Every entry is in one of three tiers:
 * - **dirty**: written here, its operation not yet committed. Stamped with
 *   the generation of the commit that will persist it (`Infinity` until the
 *   write queue hands it to a commit). Never evicted: it is the only copy.
 * - **committed**: written here and committed (or a `cache: false` effect
 *   output, which no commit persists), stamped with its commit's generation.
 * - **loaded**: read from the database, stamped with the committed
 *   generation at the time it was read.
 *
 * When a new entry needs room in a full store, the least recently used
 * committed entry goes first, then the least recently used loaded entry;
 * only when every entry is dirty does the write wait, for the commit in
 * flight (started at once if operations are only queued). A dirty entry
 * always belongs to a queued or in-flight operation, so the wait always
 * ends; if no commit could free room, the write does not wait (the bound is
 * then exceeded by the writes that need it, and counted in `overflows`).
 * Writes wait in arrival order.
 *
 * A failed operation (alone or with its commit) removes its dirty entry, so
 * the store never holds what the database does not.
 *
 * The same bounded-dirty-set idea is Cloudflare's actor cache (workerd
 * `actor-cache.c++`: dirty entries are pinned until flushed; clean ones are
 * evicted LRU; writes apply backpressure when the dirty set is over its
 * limit).
 * Internal: not exported from the package (`CacheStats` is).
 *
 * @module
 */

import { checkInt } from "./validate.js";
import type { OpTracker } from "./write-queue.js";

/** Default {@link OpenOptions.maxInMemoryChanges}. */
export const DEFAULT_MAX_IN_MEMORY_CHANGES = 100_000;

/** Tier of an entry. */
enum Tier {
  Dirty = 0,
  Committed = 1,
  Loaded = 2,
}

/** One value in memory. */
export interface Entry {
  /** Its key in the store (`e\0<effect>\0<version>\0<cache>\0<canonical input>` or `s\0<run>\0<token>\0<step>`, see `effect.ts`). */
  readonly key: string;
  /** The value's JSON text (each read parses its own copy). */
  readonly json: string;
  /** When the value was computed, ms on the database's clock (an effect's `maxAgeMs` counts from it); 0 for step outputs. */
  readonly at: number;
  tier: Tier;
  /** Generation of the commit that persists (or persisted) it, or at which it was loaded. */
  generation: number;
  /** Still the store's entry for its key (not replaced, evicted or dropped). */
  live: boolean;
}

/** Counters of the store, for users and tests ({@link Durq.cacheStats}). */
export interface CacheStats {
  /** Entries in memory now (all tiers). */
  entries: number;
  /** Of which dirty: written, their commit not yet done. Never evicted. */
  dirty: number;
  /** The bound (`open({ maxInMemoryChanges })`). */
  maxInMemoryChanges: number;
  /** Generation of the last commit formed from queued operations (each group commit of this open database is one; from 1). */
  processedGeneration: number;
  /** Generation of the last commit that succeeded. Entries at or below it may be evicted. */
  committedGeneration: number;
  /** Entries evicted to make room, by tier: `committed` (written here, or memory-only) and `loaded` (read from the database). */
  evictions: { committed: number; loaded: number };
  /** Writes that had to wait for a commit to free room. */
  waits: number;
  /** Writes let in over the bound because no commit could free room (should stay 0). */
  overflows: number;
  /** Effect calls answered from memory (including entries whose commit is in flight). */
  memoryHits: number;
  /** Effect calls answered from the database. */
  databaseHits: number;
  /** Effect calls that joined a call of the same key already running. */
  joined: number;
  /** Effect calls that ran the effect. */
  runs: number;
}

/** What the store needs from the write queue. */
export interface CommitSource {
  readonly committedGeneration: number;
  readonly processedGeneration: number;
  /** Starts the next commit now if none is in flight; whether one is in flight or just ran. */
  kick(): boolean;
}

/** The bounded store. One per open database. */
export class MemoryStore {
  readonly max: number;
  readonly #commits: CommitSource;
  readonly #entries = new Map<string, Entry>();
  /** Evictable entries in least-recently-used order, by tier (committed, loaded). */
  readonly #committed = new Set<Entry>();
  readonly #loaded = new Set<Entry>();
  #dirty = 0;
  /** Writes waiting for room, in arrival order. */
  #waiting: (() => void)[] = [];
  readonly counters = { evictedCommitted: 0, evictedLoaded: 0, waits: 0, overflows: 0, memoryHits: 0, databaseHits: 0, joined: 0, runs: 0 };

  /**
   * @param max - most entries: an integer >= 1
   * @param commits - the write queue
   */
  constructor(max: number, commits: CommitSource) {
    this.max = max;
    this.#commits = commits;
  }

  /** Entries in memory. */
  get size(): number {
    return this.#entries.size;
  }

  /** The live entry under `key` (marked as recently used), or undefined. */
  get(key: string): Entry | undefined {
    const e = this.#entries.get(key);
    if (e !== undefined && e.tier !== Tier.Dirty) {
      const set = e.tier === Tier.Committed ? this.#committed : this.#loaded;
      set.delete(e);
      set.add(e);
    }
    return e;
  }

  /**
   * Runs `write` (synchronously) once there is room for one more entry:
   * now if there is room or an evictable entry, else when a commit frees
   * some. `write` must add its entry in the same call. Returns undefined if
   * `write` ran now, else a promise settled after it ran.
   */
  whenRoom(write: () => void): Promise<void> | undefined {
    if (this.#waiting.length === 0 && this.#makeRoom()) {
      write();
      return undefined;
    }
    let ran = false;
    const p = new Promise<void>((resolve, reject) => {
      this.#waiting.push(() => {
        ran = true;
        try {
          write();
          resolve();
        } catch (e) {
          reject(e);
        }
      });
      // A commit in flight frees room when it settles; operations only
      // queued are committed now (synchronously, with the core's apply:
      // the operations of that commit settle inside this call). Without
      // either, nothing could free room.
      if (!this.#commits.kick()) this.#release(true);
    });
    if (!ran) this.counters.waits++; // not freed by a commit that ran right here
    return p;
  }

  /**
   * Adds a dirty entry for an operation about to be submitted with the
   * returned tracker. Call inside {@link whenRoom}'s `write`.
   */
  putDirty(key: string, json: string, at = 0): OpTracker {
    const e = this.#add(key, json, at, Tier.Dirty, Infinity);
    return {
      assigned: (generation) => {
        e.generation = generation;
      },
      settled: (ok) => {
        if (!e.live) return;
        if (!ok) {
          this.#remove(e);
          return;
        }
        this.#dirty--;
        e.tier = Tier.Committed;
        this.#committed.add(e);
      },
    };
  }

  /** Adds an entry no commit persists (a `cache: false` effect output): evictable at once. Call inside {@link whenRoom}. */
  putMemoryOnly(key: string, json: string, at: number): void {
    this.#add(key, json, at, Tier.Committed, this.#commits.committedGeneration);
  }

  /**
   * Adds an entry read from the database, if none is in memory under `key`
   * and there is room without waiting (else the read is served without
   * caching it). Returns whether it was added.
   */
  putLoaded(key: string, json: string, at = 0): boolean {
    if (this.#entries.has(key) || this.#waiting.length > 0 || !this.#makeRoom()) return false;
    this.#add(key, json, at, Tier.Loaded, this.#commits.committedGeneration);
    return true;
  }

  /** Drops the entry under `key` unless it is dirty (a finished run's steps). */
  dropClean(key: string): void {
    const e = this.#entries.get(key);
    if (e !== undefined && e.tier !== Tier.Dirty) this.#remove(e);
  }

  /** Drops the effect outputs (of effect `name`, or all) that are not dirty (`deleteEffects`). */
  dropEffects(name: string | undefined): void {
    const prefix = name === undefined ? "e\0" : `e\0${name}\0`;
    for (const e of [...this.#entries.values()]) {
      if (e.tier !== Tier.Dirty && e.key.startsWith(prefix)) this.#remove(e);
    }
  }

  /**
   * Called by the write queue after each commit settled: entries it
   * committed became evictable (or were removed), so waiting writes may go.
   */
  settled(): void {
    this.#release(false);
  }

  /** Drops every entry and lets waiting writes go (the database is closing). */
  clear(): void {
    for (const e of this.#entries.values()) e.live = false;
    this.#entries.clear();
    this.#committed.clear();
    this.#loaded.clear();
    this.#dirty = 0;
    this.#release(true);
  }

  /** The counters, with the write queue's generations. */
  stats(): CacheStats {
    const c = this.counters;
    return {
      entries: this.#entries.size,
      dirty: this.#dirty,
      maxInMemoryChanges: this.max,
      processedGeneration: this.#commits.processedGeneration,
      committedGeneration: this.#commits.committedGeneration,
      evictions: { committed: c.evictedCommitted, loaded: c.evictedLoaded },
      waits: c.waits,
      overflows: c.overflows,
      memoryHits: c.memoryHits,
      databaseHits: c.databaseHits,
      joined: c.joined,
      runs: c.runs,
    };
  }

  /** Lets waiting writes go while there is room; `force` lets them all go (nothing could free room). */
  #release(force: boolean): void {
    while (this.#waiting.length > 0) {
      if (!this.#makeRoom()) {
        if (!force) return;
        this.counters.overflows++;
      }
      this.#waiting.shift()!();
    }
  }

  /** Evicts until one more entry fits; false if only dirty entries are left. */
  #makeRoom(): boolean {
    while (this.#entries.size >= this.max) {
      const victim = first(this.#committed) ?? first(this.#loaded);
      if (victim === undefined) return false;
      if (victim.tier === Tier.Committed) this.counters.evictedCommitted++;
      else this.counters.evictedLoaded++;
      this.#remove(victim);
    }
    return true;
  }

  #add(key: string, json: string, at: number, tier: Tier, generation: number): Entry {
    const old = this.#entries.get(key);
    if (old !== undefined) this.#remove(old);
    const e: Entry = { key, json, at, tier, generation, live: true };
    this.#entries.set(key, e);
    if (tier === Tier.Dirty) this.#dirty++;
    else (tier === Tier.Committed ? this.#committed : this.#loaded).add(e);
    return e;
  }

  #remove(e: Entry): void {
    e.live = false;
    if (this.#entries.get(e.key) === e) this.#entries.delete(e.key);
    if (e.tier === Tier.Dirty) this.#dirty--;
    else (e.tier === Tier.Committed ? this.#committed : this.#loaded).delete(e);
  }
}

function first<T>(set: Set<T>): T | undefined {
  for (const v of set) return v;
  return undefined;
}

/** Checks `open({ maxInMemoryChanges })` (entries, 1 ..= 2^31 - 1); `DURQ_INVALID_INPUT` otherwise. */
export function checkMaxInMemoryChanges(v: unknown): number {
  return v === undefined ? DEFAULT_MAX_IN_MEMORY_CHANGES : checkInt("maxInMemoryChanges", v, 1, 2 ** 31 - 1);
}
