// The effect cache (issue 6; docs/architecture.md capabilities 7 and 8):
// defineEffect, the bounded in-memory store shared with step outputs,
// commit-gated eviction, tiered backpressure, one commit in flight, failed
// commits. Commits are injected (`openWith(..., { commit })`, or a stand-in
// `apply` for the queue alone) and time is a ManualClock: no sleeps.

import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { join } from "node:path";
import fc from "fast-check";
import { defineEffect, defineJob, DEFAULT_MAX_IN_MEMORY_CHANGES, ManualClock } from "durq";
import { openWith } from "../../pkg/dist/open.js";
import { MemoryStore } from "../../pkg/dist/cache.js";
import { cleanupDirs, deferred, frozenTimerClock, rejectsCode, settle, T0, tempDir } from "../test-support/helpers.mjs";

after(cleanupDirs);

/**
 * A commit hook whose commits stay in flight until released: `held` lists
 * them in order; `release(i)` applies commit i for real, `fail(i)` rejects
 * it without applying. With `auto`, every commit is applied on the next
 * macrotask (in flight meanwhile) unless `failNext` is set.
 */
function commitControl({ auto = false, hops = 1 } = {}) {
  const held = [];
  const later = (n, f) => setImmediate(n <= 1 ? f : () => later(n - 1, f));
  const c = {
    held,
    auto,
    failNext: 0,
    commits: 0,
    hook(json, apply) {
      c.commits++;
      const d = deferred();
      const entry = { json, ops: JSON.parse(json), apply, d };
      if (c.auto) {
        const fail = c.failNext > 0;
        if (fail) c.failNext--;
        later(hops, () => {
          if (!fail) return d.resolve(apply(json));
          c.onFail?.(entry.ops);
          d.reject(Object.assign(new Error("injected commit failure"), { code: "SQLITE_IOERR" }));
        });
      } else {
        held.push(entry);
      }
      return d.promise;
    },
    /** Releases what is held and applies every later commit on its own. */
    releaseAll() {
      c.auto = true;
      while (held.length > 0) c.release();
    },
    release(i = 0) {
      const [e] = held.splice(i, 1);
      e.d.resolve(e.apply(e.json));
    },
    fail(i = 0) {
      const [e] = held.splice(i, 1);
      e.d.reject(Object.assign(new Error("injected commit failure"), { code: "SQLITE_IOERR" }));
    },
  };
  return c;
}

async function openCtl(options = {}, ctl = commitControl(), target = { memory: true }) {
  const clock = options.clock ?? new ManualClock(T0);
  const db = await openWith(target, { ...options, clock }, { commit: (json, apply) => ctl.hook(json, apply) });
  return { db, ctl, clock };
}

/** An effect that counts its runs and returns a fresh token each time. */
function counting(name, options = {}) {
  const calls = [];
  const effect = defineEffect({
    name,
    ...options,
    run: async (input) => {
      calls.push(input);
      return { token: `${name}#${calls.length}`, input };
    },
  });
  return { effect, calls };
}

describe("effects: calls", () => {
  test("a hit returns the first output; concurrent callers of one input run it once; key order does not matter", async () => {
    const { db } = await openCtl({}, commitControl({ auto: true }));
    const { effect, calls } = counting("fetch");
    const outs = await Promise.all([
      db.callEffect(effect, { a: 1, b: [1, 2] }),
      db.callEffect(effect, { b: [1, 2], a: 1 }),
      db.callEffect(effect, { a: 1, b: [1, 2] }),
    ]);
    assert.equal(calls.length, 1);
    assert.deepEqual(outs[0], outs[1]);
    assert.deepEqual(outs[0], outs[2]);
    assert.notEqual(outs[0], outs[1], "each caller gets its own copy");
    outs[0].input.a = 99; // a caller mutating its copy changes nothing for the others
    const again = await db.callEffect(effect, { a: 1, b: [1, 2] });
    assert.equal(again.input.a, 1);
    assert.equal(calls.length, 1);
    await db.callEffect(effect, { a: 1, b: [2, 1] }); // array order matters
    assert.equal(calls.length, 2);
    const s = db.cacheStats();
    assert.equal(s.runs, 2);
    assert.equal(s.joined, 2);
    assert.equal(s.memoryHits, 1);
    await db.close();
  });

  test("an output is served from memory while its commit is in flight, and from the database only after it committed", async () => {
    const ctl = commitControl();
    const { db } = await openCtl({}, ctl);
    const { effect, calls } = counting("slow");
    const first = await db.callEffect(effect, "x"); // write-behind: resolves before the commit
    await settle();
    assert.equal(ctl.held.length, 1, "the putEffect commit is in flight");
    assert.equal(db.cacheStats().dirty, 1);
    assert.deepEqual(await db.callEffect(effect, "x"), first);
    assert.equal(calls.length, 1);
    ctl.release();
    await settle();
    const s = db.cacheStats();
    assert.equal(s.dirty, 0);
    assert.equal(s.committedGeneration, 1);
    assert.equal(s.processedGeneration, 1);
    await db.close();
  });

  test("cache: true outputs survive a restart, cache: false outputs do not; a new version ignores old outputs and replaces them", async () => {
    const path = join(tempDir(), "effects.db");
    const kept = counting("kept");
    const mem = counting("mem", { cache: false });
    let { db } = await openCtl({}, commitControl({ auto: true }), { path });
    const k1 = await db.callEffect(kept.effect, { n: 1 });
    const m1 = await db.callEffect(mem.effect, { n: 1 });
    assert.deepEqual(await db.callEffect(mem.effect, { n: 1 }), m1, "memory-only outputs are cached while they stay in memory");
    await db.close();
    ({ db } = await openCtl({}, commitControl({ auto: true }), { path }));
    assert.deepEqual(await db.callEffect(kept.effect, { n: 1 }), k1);
    assert.equal(kept.calls.length, 1);
    assert.equal(db.cacheStats().databaseHits, 1);
    const m2 = await db.callEffect(mem.effect, { n: 1 });
    assert.equal(mem.calls.length, 2, "memory-only outputs are gone after a restart");
    assert.notDeepEqual(m2, m1);

    const v2 = defineEffect({ name: "kept", version: 2, run: async (input) => ({ shape: 2, input }) });
    assert.deepEqual(await db.callEffect(v2, { n: 1 }), { shape: 2, input: { n: 1 } });
    await db.close();
    ({ db } = await openCtl({}, commitControl({ auto: true }), { path }));
    const v1again = await db.callEffect(kept.effect, { n: 1 });
    assert.equal(kept.calls.length, 2, "version 2 replaced the version-0 output");
    assert.notDeepEqual(v1again, k1);
    await db.close();
  });

  test("maxAgeMs: an output older than it is a miss, in memory and in the database (on the injected clock)", async () => {
    const path = join(tempDir(), "max-age.db");
    const clock = new ManualClock(T0);
    const e = counting("aging", { maxAgeMs: 1000 });
    let { db } = await openCtl({ clock }, commitControl({ auto: true }), { path });
    assert.equal((await db.callEffect(e.effect, "k")).token, "aging#1");
    clock.advance(999);
    assert.equal((await db.callEffect(e.effect, "k")).token, "aging#1", "still fresh at 999 ms");
    clock.advance(1);
    assert.equal((await db.callEffect(e.effect, "k")).token, "aging#2", "expired at 1000 ms: run again");
    await settle();
    await db.close();
    clock.advance(500);
    ({ db } = await openCtl({ clock }, commitControl({ auto: true }), { path }));
    assert.equal((await db.callEffect(e.effect, "k")).token, "aging#2", "the database's copy is 500 ms old");
    assert.equal(db.cacheStats().databaseHits, 1);
    await db.close();
    clock.advance(500);
    ({ db } = await openCtl({ clock }, commitControl({ auto: true }), { path }));
    assert.equal((await db.callEffect(e.effect, "k")).token, "aging#3", "the database's copy expired too");
    await db.close();
  });

  test("a throwing effect is not cached: every waiting caller gets the error and the next call runs it again", async () => {
    const { db } = await openCtl({}, commitControl({ auto: true }));
    let n = 0;
    const flaky = defineEffect({
      name: "flaky",
      run: async () => {
        n++;
        if (n === 1) throw new Error("upstream 503");
        return "ok";
      },
    });
    const results = await Promise.allSettled([db.callEffect(flaky, 1), db.callEffect(flaky, 1)]);
    assert.deepEqual(
      results.map((r) => r.status),
      ["rejected", "rejected"],
    );
    assert.equal(results[0].reason.message, "upstream 503");
    assert.equal(await db.callEffect(flaky, 1), "ok");
    assert.equal(n, 2);
    await db.close();
  });

  test("bad input gets DURQ_INVALID_INPUT and caches nothing", async () => {
    const { db } = await openCtl({}, commitControl({ auto: true }));
    for (const bad of [
      undefined,
      null,
      {},
      { name: "x" },
      { name: "", run() {} },
      { name: "a\0b", run() {} },
      { name: "x", run() {}, cache: "yes" },
      { name: "x", run() {}, version: -1 },
      { name: "x", run() {}, version: 1.5 },
      { name: "x", run() {}, version: 2 ** 31 },
      { name: "x", run() {}, ttl: 5 },
      { name: "x", run() {}, maxAgeMs: 0 },
      { name: "x", run() {}, maxAgeMs: 2 ** 31 },
      { name: "x", run() {}, maxAgeMs: "1h" },
    ]) {
      assert.throws(
        () => defineEffect(bad),
        (e) => e.code === "DURQ_INVALID_INPUT",
        JSON.stringify(bad),
      );
    }
    const e = defineEffect({ name: "e", run: async (x) => (x === "fn" ? () => 1 : x === "big" ? 10n : x) });
    await rejectsCode(db.callEffect({ name: "e", run() {}, cache: true, version: 0 }, 1), "DURQ_INVALID_INPUT");
    for (const input of [undefined, () => 1, 10n, NaN, "\ud800"]) {
      await rejectsCode(db.callEffect(e, input), "DURQ_INVALID_INPUT");
    }
    const cyclic = {};
    cyclic.self = cyclic;
    await rejectsCode(db.callEffect(e, cyclic), "DURQ_INVALID_INPUT");
    await rejectsCode(db.callEffect(e, "fn"), "DURQ_INVALID_INPUT");
    await rejectsCode(db.callEffect(e, "big"), "DURQ_INVALID_INPUT");
    assert.equal(db.cacheStats().entries, 0);
    assert.equal(await db.callEffect(e, "fine"), "fine");
    for (const max of [0, -1, 1.5, "10", 2 ** 31, NaN]) {
      await rejectsCode(openWith({ memory: true }, { maxInMemoryChanges: max }, {}), "DURQ_INVALID_INPUT");
    }
    assert.equal(db.cacheStats().maxInMemoryChanges, DEFAULT_MAX_IN_MEMORY_CHANGES);
    await rejectsCode(db.deleteEffects({ name: "e" }), "DURQ_INVALID_INPUT");
    await db.close();
    await rejectsCode(db.callEffect(e, 1), "DURQ_CLOSED");
  });

  test("deleteEffects drops one effect's outputs (memory and database) or all", async () => {
    const path = join(tempDir(), "delete.db");
    const a = counting("a");
    const b = counting("b");
    const { db } = await openCtl({}, commitControl({ auto: true }), { path });
    await db.callEffect(a.effect, 1);
    await db.callEffect(a.effect, 2);
    await db.callEffect(b.effect, 1);
    assert.deepEqual(await db.deleteEffects(a.effect), { deleted: 2 });
    await db.callEffect(a.effect, 1);
    await db.callEffect(b.effect, 1);
    assert.equal(a.calls.length, 3);
    assert.equal(b.calls.length, 1);
    assert.deepEqual(await db.deleteEffects(), { deleted: 2 });
    await db.callEffect(b.effect, 1);
    assert.equal(b.calls.length, 2);
    await db.close();
  });
});

describe("effects: the bounded store", () => {
  test("tiers: a full store evicts committed entries first (least recently used), then loaded ones, never dirty ones", async () => {
    const path = join(tempDir(), "tiers.db");
    const e = counting("t");
    let { db } = await openCtl({}, commitControl({ auto: true }), { path });
    for (const k of [1, 2]) await db.callEffect(e.effect, k);
    await db.close();
    const ctl = commitControl();
    ({ db } = await openCtl({ maxInMemoryChanges: 4 }, ctl, { path }));
    await db.callEffect(e.effect, 1); // loaded from the database
    await db.callEffect(e.effect, 2); // loaded
    await db.callEffect(e.effect, 3); // run: dirty
    await settle();
    ctl.release(); // 3 committed
    await settle();
    await db.callEffect(e.effect, 4); // dirty (commit held)
    let s = db.cacheStats();
    assert.deepEqual([s.entries, s.dirty], [4, 1]);
    await db.callEffect(e.effect, 5); // full: evicts the committed entry (3), not a loaded one
    s = db.cacheStats();
    assert.deepEqual(s.evictions, { committed: 1, loaded: 0 });
    await db.callEffect(e.effect, 1); // a hit: 1 is now the most recently used loaded entry
    await db.callEffect(e.effect, 6); // no committed entry left: evicts the least recently used loaded one (2)
    s = db.cacheStats();
    assert.deepEqual(s.evictions, { committed: 1, loaded: 1 });
    assert.deepEqual([s.entries, s.dirty, s.waits], [4, 3, 0]);
    const runs = e.calls.length;
    await db.callEffect(e.effect, 1); // still in memory
    assert.equal(e.calls.length, runs);
    assert.equal(db.cacheStats().memoryHits, 2);
    ctl.releaseAll();
    await db.close();
  });

  test("a full store of dirty entries makes the next write wait for the commit in flight, then go; the bound holds", async () => {
    const ctl = commitControl();
    const { db } = await openCtl({ maxInMemoryChanges: 2 }, ctl);
    const e = counting("w");
    await db.callEffect(e.effect, 1);
    await db.callEffect(e.effect, 2);
    await settle();
    assert.equal(ctl.held.length, 1, "both puts are in the commit in flight");
    let third = false;
    const p = db.callEffect(e.effect, 3).then((v) => {
      third = true;
      return v;
    });
    await settle();
    assert.equal(third, false, "the write waits: every entry is dirty");
    assert.equal(db.cacheStats().waits, 1);
    assert.equal(db.cacheStats().entries, 2);
    ctl.release();
    await p;
    const s = db.cacheStats();
    assert.equal(s.entries, 2);
    assert.equal(s.evictions.committed, 1);
    assert.equal(s.overflows, 0);
    ctl.releaseAll();
    await db.close();
  });

  test("no deadlock: with only queued (not in flight) dirty entries, a write starts their commit at once instead of waiting for the next turn", async () => {
    // The real core's commit is synchronous: once started, room is there.
    const db = await openWith({ memory: true }, { maxInMemoryChanges: 2, clock: new ManualClock(T0) }, {});
    const e = counting("d");
    const before = db.transactions;
    // All in one turn: the write queue has not flushed yet.
    const outs = await Promise.all([1, 2, 3, 4, 5].map((k) => db.callEffect(e.effect, k)));
    assert.equal(outs.length, 5);
    const s = db.cacheStats();
    assert.ok(s.entries <= 2);
    assert.equal(s.overflows, 0);
    assert.ok(db.transactions - before >= 2, "commits were started early to free room");
    await db.close();
  });

  test("MemoryStore alone: never waits when no commit could free room (overflow counted), and waiting writes go in arrival order", async () => {
    const commits = { committedGeneration: 0, processedGeneration: 0, kick: () => false };
    const store = new MemoryStore(1, commits);
    store.whenRoom(() => store.putDirty("a", "1"));
    const order = [];
    const r = store.whenRoom(() => {
      order.push("b");
      store.putDirty("b", "2");
    });
    assert.equal(r instanceof Promise, true);
    await r;
    assert.deepEqual(order, ["b"], "nothing could free room: the write went over the bound");
    assert.equal(store.stats().overflows, 1);

    // With a commit in flight: writes wait, then go in order as it settles.
    let kicked = 0;
    const q = {
      committedGeneration: 0,
      processedGeneration: 1,
      kick: () => {
        kicked++;
        return true;
      },
    };
    const s2 = new MemoryStore(1, q);
    const t = [];
    s2.whenRoom(() => t.push(["x", s2.putDirty("x", "1")]));
    const waits = ["y", "z"].map((k) => s2.whenRoom(() => t.push([k, s2.putDirty(k, "1")])));
    assert.equal(kicked, 2);
    t[0][1].assigned(1);
    t[0][1].settled(true);
    s2.settled();
    await waits[0];
    assert.deepEqual(
      t.map((x) => x[0]),
      ["x", "y"],
      "y went; z waits for y's commit",
    );
    t[1][1].settled(false); // y's operation failed: its entry is removed
    s2.settled();
    await waits[1];
    assert.deepEqual(
      t.map((x) => x[0]),
      ["x", "y", "z"],
    );
    assert.equal(s2.size, 1);
    assert.equal(s2.stats().evictions.committed, 1);
  });
});

describe("effects: commits", () => {
  test("one commit in flight; the next gathers everything queued meanwhile; a failed commit rejects exactly its operations, emits `error` and drops its entries", async () => {
    const ctl = commitControl();
    const { db } = await openCtl({}, ctl);
    const errors = [];
    db.on("error", (e) => errors.push(e));
    const e = counting("c");
    const job = defineJob({ name: "c-job", run: async () => null });
    await db.callEffect(e.effect, "kept");
    const r1 = db.enqueue(job, 1);
    await settle();
    assert.equal(ctl.held.length, 1);
    // Queued while commit 1 is in flight: must wait for it, then go together.
    await db.callEffect(e.effect, "lost");
    const r2 = db.enqueue(job, 2);
    const r3 = db.enqueue(job, 3);
    await settle();
    assert.equal(ctl.held.length, 1, "one commit in flight at a time");
    ctl.release();
    await r1;
    await settle();
    assert.equal(ctl.held.length, 1);
    assert.equal(ctl.held[0].ops.length, 3, "the second commit gathered all three operations");
    ctl.fail();
    await rejectsCode(r2, "SQLITE_IOERR");
    await rejectsCode(r3, "SQLITE_IOERR");
    assert.deepEqual(
      errors.map((x) => [x.source, x.error.code]),
      [["commit", "SQLITE_IOERR"]],
    );
    const s = db.cacheStats();
    assert.equal(s.entries, 1, "the failed commit's entry is gone, the committed one stays");
    assert.equal(s.dirty, 0);
    assert.equal(s.processedGeneration, 2);
    assert.equal(s.committedGeneration, 1);
    assert.equal((await db.listRuns({})).runs.length, 1, "the store agrees with the database");
    ctl.auto = true;
    await db.callEffect(e.effect, "lost");
    assert.equal(e.calls.length, 3, "the dropped output is computed again");
    await db.callEffect(e.effect, "kept");
    assert.equal(e.calls.length, 3);
    await db.close();
  });

  test("step outputs share the store: a run with more steps than the bound completes, and a retry replays every step from memory or the database", async () => {
    const path = join(tempDir(), "steps.db");
    const clock = new ManualClock(T0);
    const ran = [];
    let failOnce = true;
    const job = defineJob({
      name: "many-steps",
      retry: { maxAttempts: 3, backoff: { initialMs: 0, jitter: 0 } },
      async run(step) {
        const out = [];
        for (let i = 0; i < 12; i++)
          out.push(
            await step.run(`s${i}`, () => {
              ran.push(i);
              return { i, attempt: step.attempt };
            }),
          );
        if (failOnce) {
          failOnce = false;
          throw new Error("again");
        }
        return out.map((o) => o.attempt);
      },
    });
    const { db } = await openCtl({ maxInMemoryChanges: 3, clock }, commitControl({ auto: true }), { path });
    const { id } = await db.enqueue(job, null);
    const w = db.worker({ jobs: [job] });
    await w.processUntilIdle();
    const run = await db.getRun(id);
    assert.equal(run.status, "completed");
    assert.deepEqual(run.output, Array(12).fill(1), "attempt 2 replayed all 12 outputs of attempt 1");
    assert.equal(ran.length, 12);
    const s = db.cacheStats();
    assert.ok(s.entries <= 3);
    assert.equal(s.overflows, 0);
    assert.ok(s.evictions.committed + s.evictions.loaded > 0);
    assert.equal(s.entries, 0, "a finished run's steps leave memory");
    await db.close();
  });
});

describe("effects: review cases", () => {
  test("a handler still running while close() waits for it can call an effect", async () => {
    const { db } = await openCtl({}, commitControl({ auto: true }));
    const gate = deferred();
    const e = counting("during-close");
    let got;
    const job = defineJob({
      name: "closing",
      async run(step) {
        await gate.promise;
        got = await step.effect(e.effect, 1);
        return got.token;
      },
    });
    const { id } = await db.enqueue(job, null);
    const w = db.worker({ jobs: [job] });
    w.start();
    await settle(6);
    const closing = db.close();
    await rejectsCode(db.callEffect(e.effect, 2), "DURQ_CLOSED"); // the public call is closed
    gate.resolve();
    await closing;
    assert.equal(got.token, "during-close#1");
    void id;
  });

  test("a stale attempt (its lease lost) cannot put its step output in memory over the live attempt's", async () => {
    const clock = frozenTimerClock();
    const { db } = await openCtl({ clock }, commitControl({ auto: true }));
    const staleFn = deferred();
    const liveHold = deferred();
    let liveSecondRead;
    let staleSave;
    const job = defineJob({
      name: "two-attempts",
      async run(step) {
        if (step.attempt === 1) {
          staleSave = step.run("x", async () => {
            await staleFn.promise;
            return "A";
          });
          await staleSave.catch(() => {});
          return "stale";
        }
        await step.run("x", () => "B");
        await liveHold.promise;
        liveSecondRead = await step.run("x", () => "never");
        return liveSecondRead;
      },
    });
    const { id } = await db.enqueue(job, null);
    const stuck = db.worker({ jobs: [job], leaseMs: 1000 });
    const first = stuck.processOne();
    await settle(6);
    clock.advance(1000);
    const live = db.worker({ jobs: [job], leaseMs: 1000 });
    const second = live.processOne();
    await settle(6);
    staleFn.resolve(); // the stale attempt's step returns now
    await rejectsCode(staleSave, "DURQ_LEASE_LOST");
    liveHold.resolve();
    await Promise.all([first, second]);
    assert.equal(liveSecondRead, "B");
    const run = await db.getRun(id);
    assert.deepEqual([run.status, run.output], ["completed", "B"]);
    assert.equal(db.cacheStats().entries, 0, "both attempts' entries left memory");
    await db.close();
  });

  test("a putEffect that fails on its own is reported (source effect) and dropped; a step saved after its run ended leaves memory once committed", async () => {
    const ctl = commitControl({ auto: true });
    const corrupt = { on: true };
    const { db } = await openWith(
      { memory: true },
      { clock: new ManualClock(T0) },
      {
        commit: (json, apply) => {
          // Make the putEffect invalid in the core: it fails alone, the commit succeeds.
          const ops = JSON.parse(json).map((o) => (o.op === "putEffect" && corrupt.on ? { ...o, args: { ...o.args, version: -1 } } : o));
          return ctl.hook(JSON.stringify(ops), apply);
        },
      },
    ).then((db) => ({ db }));
    const errors = [];
    db.on("error", (e) => errors.push(e));
    const e = counting("fails-alone");
    await db.callEffect(e.effect, 1);
    await settle(4);
    assert.deepEqual(
      errors.map((x) => [x.source, x.error.code]),
      [["effect", "DURQ_INVALID_INPUT"]],
    );
    assert.equal(db.cacheStats().entries, 0, "the entry the database refused is gone");
    corrupt.on = false;
    await db.callEffect(e.effect, 1);
    assert.equal(e.calls.length, 2);

    const job = defineJob({
      name: "late-step",
      async run(step) {
        // Not awaited: its save is submitted (a few microtasks on) before the handler returns, and commits with the outcome.
        void step.run("late", () => "not awaited").catch(() => {});
        for (let i = 0; i < 5; i++) await null;
        return null;
      },
    });
    const late = await db.enqueue(job, null);
    await db.worker({ jobs: [job] }).processUntilIdle();
    assert.deepEqual(
      (await db.getSteps(late.id)).map((x) => x.name),
      ["late"],
      "the late step was stored",
    );
    await settle(6);
    assert.equal(db.cacheStats().dirty, 0);
    assert.equal(db.cacheStats().entries, 1, "only the effect output is left: the late step's entry went");
    await db.close();
  });
});

// The property test: random sequences of effect calls (persisted and
// memory-only, some concurrent), step writes (a run's attempts), commits
// that fail, and restarts, against a model that is a map written through
// synchronously: a persisted output, once returned, is returned again until
// its commit fails; a memory-only output may be forgotten (then recomputed)
// but is never replaced by another value while remembered. After every
// command the store holds at most maxInMemoryChanges entries.
describe("effects: property", () => {
  test("never returns a value the model does not, and the memory bound holds after every step", async () => {
    const command = fc.oneof(
      {
        weight: 6,
        arbitrary: fc.record({
          kind: fc.constant("call"),
          effect: fc.constantFrom("p", "m", "a"),
          keys: fc.array(fc.integer({ min: 0, max: 7 }), { minLength: 1, maxLength: 4 }),
        }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant("advance"), ms: fc.oneof(fc.constantFrom(1, 500, 999, 1000), fc.integer({ min: 1, max: 700 })) }) },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant("steps"), names: fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 4 }) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant("failNextCommit") }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant("restart") }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant("settle") }) },
    );
    let round = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(command, { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 3 }),
        async (commands, max, hops) => {
          const path = join(tempDir(), `prop-${round++}.db`);
          const clock = new ManualClock(T0);
          // The model: a map written through synchronously, each value with
          // the time it was computed.
          const model = new Map(); // "<effect>:<k>" or "s:<step>" -> { value, at }
          let executions = 0;
          const effects = {
            p: defineEffect({ name: "p", run: async () => `p#${++executions}` }),
            m: defineEffect({ name: "m", cache: false, run: async () => `m#${++executions}` }),
            a: defineEffect({ name: "a", maxAgeMs: 1000, run: async () => `a#${++executions}` }),
          };
          const MAX_AGE = 1000;
          const execOf = (v) => Number(v.split("#")[1]);
          let names = [];
          const seen = [];
          const stepper = defineJob({
            name: "stepper",
            retry: { maxAttempts: 1000, backoff: { initialMs: 0, jitter: 0 } },
            async run(step) {
              for (const n of names) {
                const before = executions;
                let v;
                try {
                  v = await step.run(`s${n}`, () => `s#${++executions}`);
                } catch {
                  continue; // its commit failed: not stored
                }
                seen.push([`s:${n}`, v, executions !== before]);
              }
              throw new Error("stay pending"); // retried at once: the next `steps` command replays
            },
          });
          const ctl = commitControl({ auto: true, hops });
          // A failed commit undoes the outputs written in it. A caller may
          // have read such an output from memory while its commit was in
          // flight, in the command during which the commit failed.
          let current = 0;
          const lostAt = new Map(); // value -> index of the command during which its commit failed
          ctl.onFail = (ops) => {
            for (const op of ops) {
              if (op.op !== "putEffect") continue;
              const { output, name, input } = op.args;
              lostAt.set(output, current);
              const key = `${name}:${JSON.parse(input)}`;
              if (model.get(key)?.value === output) model.delete(key);
            }
          };
          let { db } = await openCtl({ maxInMemoryChanges: max, clock }, ctl, { path });
          db.on("error", () => {});
          await db.enqueue(stepper, null);
          const check = (label) => {
            const s = db.cacheStats();
            assert.ok(s.entries <= max, `${label}: ${s.entries} entries > ${max}`);
            assert.equal(s.overflows, 0, label);
          };
          for (const [i, c] of commands.entries()) {
            current = i;
            const execBefore = executions;
            if (c.kind === "call") {
              const results = await Promise.allSettled(c.keys.map((k) => db.callEffect(effects[c.effect], k).then((v) => [k, v])));
              const now = clock.now();
              for (const r of results) {
                assert.equal(r.status, "fulfilled");
                const [k, v] = r.value;
                const key = `${c.effect}:${k}`;
                if (lostAt.has(v)) {
                  assert.equal(lostAt.get(v), i, `${key}: ${v} was served after its commit failed`);
                  continue;
                }
                const fresh = execOf(v) > execBefore; // computed during this command
                const known = model.get(key);
                if (known === undefined) {
                  assert.ok(fresh, `${key}: ${v} is not in the model, so it must be computed now`);
                } else if (c.effect === "a" && now - known.at >= MAX_AGE) {
                  assert.ok(fresh, `${key}: the model's ${known.value} is ${now - known.at} ms old, so ${v} must be computed now`);
                } else if (v !== known.value) {
                  // Only a memory-only output may be forgotten and computed again.
                  assert.ok(c.effect === "m" && fresh, `${key}: got ${v}, the model has ${known.value}`);
                }
                if (fresh || known === undefined) model.set(key, { value: v, at: now });
              }
              // Concurrent callers of one key got one value.
              const byKey = new Map();
              for (const r of results) {
                const [k, v] = r.value;
                if (byKey.has(k)) assert.equal(byKey.get(k), v);
                byKey.set(k, v);
              }
            } else if (c.kind === "advance") {
              clock.advance(c.ms);
            } else if (c.kind === "steps") {
              names = c.names;
              seen.length = 0;
              clock.advance(60_000); // a lease left by a failed commit has expired
              const w = db.worker({ jobs: [stepper] });
              try {
                await w.processOne();
              } catch (e) {
                if (e.code !== "SQLITE_IOERR") throw e; // the claim's own commit failed
              }
              for (const [key, v, executed] of seen) {
                const known = model.get(key);
                if (known !== undefined) assert.equal(v, known.value, `${key} replayed`);
                else assert.ok(executed, `${key} must run the first time`);
                model.set(key, { value: v, at: clock.now() });
              }
            } else if (c.kind === "failNextCommit") {
              ctl.failNext = 1;
            } else if (c.kind === "settle") {
              await settle();
            } else {
              await db.close();
              for (const k of [...model.keys()]) if (k.startsWith("m:")) model.delete(k);
              ({ db } = await openCtl({ maxInMemoryChanges: max, clock }, ctl, { path }));
              db.on("error", () => {});
            }
            check(c.kind);
          }
          await db.close();
        },
      ),
      { numRuns: 150 },
    );
  });
});
