// Bad input: each gets a DurqError with a stable code, and nothing already
// stored is lost.

import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { defineJob, open } from "durq";
import { join } from "node:path";
import { cleanupDirs, deferred, openDb, rejectsCode, settle, STORAGES, T0, tempDir, throwsCode } from "../test-support/helpers.mjs";

after(cleanupDirs);

const job = defineJob({ name: "bad-input", run: (_s, input) => input });

/** Stores a few runs and returns a function asserting they are all intact. */
async function storeSome(db) {
  const ids = [];
  for (let i = 0; i < 3; i++) ids.push((await db.enqueue(job, { i }, { labels: { keep: "yes" } })).id);
  return async () => {
    const page = await db.listRuns({ labels: { keep: "yes" } });
    assert.deepEqual(page.runs.map((r) => r.id).sort(), [...ids].sort());
    for (const r of page.runs) assert.equal(r.status, "pending");
    assert.deepEqual(await db.stats(), { pending: 3, leased: 0, completed: 0, failed: 0, cancelled: 0 });
  };
}

const circular = { a: 1 };
circular.self = circular;

const NON_JSON_INPUTS = [
  ["undefined", undefined],
  ["a function", () => 1],
  ["a nested function", { f() {} }],
  ["a symbol", Symbol("s")],
  ["a nested symbol", { s: Symbol("s") }],
  ["a BigInt", 1n],
  ["a nested BigInt", { n: [1, 2n] }],
  ["NaN", NaN],
  ["nested NaN", { x: NaN }],
  ["Infinity", Infinity],
  ["nested -Infinity", [-Infinity]],
  ["a Map", new Map([[1, 2]])],
  ["a nested Set", { s: new Set([1]) }],
  ["a cycle", circular],
  [
    "a throwing toJSON",
    {
      toJSON() {
        throw new Error("nope");
      },
    },
  ],
];

for (const kind of STORAGES) {
  describe(`bad input (${kind})`, () => {
    test("non-JSON-serializable input → DURQ_INVALID_INPUT naming the value", async () => {
      const { db } = await openDb(kind);
      const intact = await storeSome(db);
      for (const [what, input] of NON_JSON_INPUTS) {
        const e = await rejectsCode(db.enqueue(job, input), "DURQ_INVALID_INPUT");
        assert.match(e.message, /input/, what);
      }
      const nested = await rejectsCode(db.enqueue(job, { a: { b: [0, 1, NaN] } }), "DURQ_INVALID_INPUT");
      assert.match(nested.message, /input\.a\.b\[2\] is NaN/);
      const big = await rejectsCode(db.enqueue(job, { id: 12n }), "DURQ_INVALID_INPUT");
      assert.match(big.message, /input\.id is a BigInt/);
      // What JSON can carry is kept exactly.
      const odd = { s: "nul\u0000 byte, emoji 😀, lone surrogate-free", n: -0.5e-300, big: 2 ** 53, nested: [[[]]], empty: {} };
      const { id } = await db.enqueue(job, odd);
      assert.deepEqual((await db.getRun(id)).input, odd);
      await db.deleteRun(id);
      await intact();
      await db.close();
    });

    test("unknown job → DURQ_UNKNOWN_JOB; a non-job → DURQ_INVALID_INPUT", async () => {
      const { db } = await openDb(kind);
      const intact = await storeSome(db);
      const e = await rejectsCode(db.enqueue("never-defined", {}), "DURQ_UNKNOWN_JOB");
      assert.match(e.message, /never-defined/);
      await rejectsCode(db.enqueue({ name: "bad-input", run: () => 1 }, {}), "DURQ_INVALID_INPUT");
      await rejectsCode(db.enqueue(null, {}), "DURQ_INVALID_INPUT");
      await rejectsCode(db.enqueue("", {}), "DURQ_INVALID_INPUT");
      await rejectsCode(db.triggerAndWait("never-defined", {}), "DURQ_UNKNOWN_JOB");
      throwsCode(() => db.worker({ jobs: [{ name: "bad-input", run: () => 1 }] }), "DURQ_INVALID_INPUT");
      throwsCode(() => db.worker({ jobs: [] }), "DURQ_INVALID_INPUT");
      throwsCode(() => db.worker({ jobs: [job, job] }), "DURQ_INVALID_INPUT");
      await intact();
      await db.close();
    });

    test("invalid label keys and values → DURQ_INVALID_INPUT", async () => {
      const { db } = await openDb(kind);
      const intact = await storeSome(db);
      const bad = [
        { "": "empty key" },
        { "has space": "v" },
        { ключ: "non-ASCII key" },
        { ["k".repeat(65)]: "key too long" },
        { "nul\u0000key": "v" },
        { k: 1 },
        { k: null },
        { k: "v".repeat(257) },
        { k: "é".repeat(129) }, // 258 UTF-8 bytes
        { k: "nul\u0000value" },
        Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, "v"])),
      ];
      for (const labels of bad) await rejectsCode(db.enqueue(job, {}, { labels }), "DURQ_INVALID_INPUT");
      for (const labels of [["a"], "a=b", new Map([["a", "b"]]), 5]) await rejectsCode(db.enqueue(job, {}, { labels }), "DURQ_INVALID_INPUT");
      await rejectsCode(db.listRuns({ labels: { "bad key": "x" } }), "DURQ_INVALID_INPUT");
      // The limits themselves are fine.
      const ok = { ["k".repeat(64)]: "v".repeat(256), "a.b:c/d-e_F9": "é".repeat(128), empty: "" };
      const { id } = await db.enqueue(job, {}, { labels: ok });
      assert.deepEqual((await db.getRun(id)).labels, ok);
      await db.deleteRun(id);
      await intact();
      await db.close();
    });

    test("NUL bytes in names, keys, step names and log lines → DURQ_INVALID_INPUT", async () => {
      const { db } = await openDb(kind);
      const intact = await storeSome(db);
      throwsCode(() => defineJob({ name: "nul\u0000job", run: () => 1 }), "DURQ_INVALID_INPUT");
      await rejectsCode(db.enqueue(job, {}, { idempotencyKey: "a\u0000b" }), "DURQ_INVALID_INPUT");
      await rejectsCode(db.enqueue(job, {}, { concurrencyKey: "a\u0000b" }), "DURQ_INVALID_INPUT");
      await rejectsCode(db.enqueue(job, {}, { queue: "q\u0000" }), "DURQ_INVALID_INPUT");
      await rejectsCode(db.enqueue(job, {}, { idempotencyKey: "x".repeat(257) }), "DURQ_INVALID_INPUT");
      await rejectsCode(db.getRun("a\u0000b"), "DURQ_INVALID_INPUT");
      throwsCode(() => db.worker({ jobs: [job], queue: "q\u0000" }), "DURQ_INVALID_INPUT");

      const errors = {};
      const stepper = defineJob({
        name: "nul-steps",
        retry: { maxAttempts: 1 },
        async run(step) {
          errors.step = await step.run("s\u0000", () => 1).catch((e) => e);
          errors.emptyStep = await step.run("", () => 1).catch((e) => e);
          errors.log = await step.log("line\u0000").catch((e) => e);
          errors.level = await step.log("line", "").catch((e) => e);
          errors.progress = await step.progress(() => 1).catch((e) => e);
          errors.output = await step.run("out", () => ({ bad: NaN })).catch((e) => e);
          return "done";
        },
      });
      const { id } = await db.enqueue(stepper, {});
      await db.worker({ jobs: [stepper] }).processUntilIdle();
      for (const [k, e] of Object.entries(errors)) assert.equal(e?.code, "DURQ_INVALID_INPUT", k);
      assert.deepEqual(await db.getSteps(id), []);
      assert.equal((await db.getRun(id)).status, "completed");
      await db.deleteRun(id);
      await intact();
      await db.close();
    });

    test("negative, NaN, fractional and out-of-range times and numbers → DURQ_INVALID_INPUT", async () => {
      const { db } = await openDb(kind);
      const intact = await storeSome(db);
      for (const runAt of [-1, NaN, Infinity, 1.5, "2030-01-01", new Date(NaN), 8_640_000_000_000_001]) {
        await rejectsCode(db.enqueue(job, {}, { runAt }), "DURQ_INVALID_INPUT");
      }
      for (const priority of [1.5, NaN, 2 ** 31, -(2 ** 31) - 1, "1"]) {
        await rejectsCode(db.enqueue(job, {}, { priority }), "DURQ_INVALID_INPUT");
      }
      for (const olderThan of [-1, NaN, undefined]) await rejectsCode(db.purgeRuns({ olderThan }), "DURQ_INVALID_INPUT");
      await rejectsCode(db.purgeRuns({ olderThan: T0, limit: 0 }), "DURQ_INVALID_INPUT");
      await rejectsCode(db.listRuns({ createdAfter: NaN }), "DURQ_INVALID_INPUT");
      await rejectsCode(db.listRuns({ createdBefore: -5 }), "DURQ_INVALID_INPUT");
      await rejectsCode(db.listRuns({ limit: 0 }), "DURQ_INVALID_INPUT");
      await rejectsCode(db.listRuns({ limit: 1001 }), "DURQ_INVALID_INPUT");
      await rejectsCode(db.listRuns({ status: "done" }), "DURQ_INVALID_INPUT");
      await rejectsCode(db.listRuns({ label: { a: "b" } }), "DURQ_INVALID_INPUT", /unknown option "label"/);
      await rejectsCode(db.listRuns({ cursor: "garbage" }), "DURQ_INVALID_INPUT");
      await rejectsCode(db.waitForRun("x", { timeoutMs: -1 }), "DURQ_INVALID_INPUT");
      await rejectsCode(db.waitForRun("x", { timeoutMs: NaN }), "DURQ_INVALID_INPUT");
      await rejectsCode(db.enqueue(job, {}, { labell: {} }), "DURQ_INVALID_INPUT", /unknown option "labell"/);
      for (const leaseMs of [0, -1, NaN, 1.5, 2 ** 31]) throwsCode(() => db.worker({ jobs: [job], leaseMs }), "DURQ_INVALID_INPUT");
      for (const concurrency of [0, -1, 1.5, 1001]) throwsCode(() => db.worker({ jobs: [job], concurrency }), "DURQ_INVALID_INPUT");
      throwsCode(() => defineJob({ name: "r", run: () => 1, retry: { maxAttempts: 0 } }), "DURQ_INVALID_INPUT");
      throwsCode(() => defineJob({ name: "r", run: () => 1, retry: { backoff: { initialMs: -1 } } }), "DURQ_INVALID_INPUT");
      throwsCode(() => defineJob({ name: "r", run: () => 1, retry: { backoff: { factor: 0.5 } } }), "DURQ_INVALID_INPUT");
      throwsCode(() => defineJob({ name: "r", run: () => 1, retry: { backoff: { jitter: 2 } } }), "DURQ_INVALID_INPUT");
      throwsCode(() => defineJob({ name: "r", run: () => 1, retry: { backoff: { maxMs: NaN } } }), "DURQ_INVALID_INPUT");
      throwsCode(() => defineJob({ name: "r" }), "DURQ_INVALID_INPUT");
      await intact();
      await db.close();
    });

    test("bad open() arguments → DURQ_INVALID_INPUT", async () => {
      await rejectsCode(open({}), "DURQ_INVALID_INPUT");
      await rejectsCode(open({ memory: true, path: "x.db" }), "DURQ_INVALID_INPUT");
      await rejectsCode(open({ path: "" }), "DURQ_INVALID_INPUT");
      await rejectsCode(open({ path: "a\u0000b.db" }), "DURQ_INVALID_INPUT");
      await rejectsCode(open({ memory: true }, { synchronous: "off" }), "DURQ_INVALID_INPUT");
      await rejectsCode(open({ memory: true }, { clock: { now: () => 0 } }), "DURQ_INVALID_INPUT");
      await rejectsCode(open({ memory: true }, { colck: {} }), "DURQ_INVALID_INPUT");
      await rejectsCode(open({ memory: true }, { waitForLock: "yes" }), "DURQ_INVALID_INPUT");
      await rejectsCode(open({ opfs: 5 }), "DURQ_INVALID_INPUT");
      await rejectsCode(open({ path: 5 }), "DURQ_INVALID_INPUT");
      await rejectsCode(open({ path: join(tempDir(), "w.db") }, { waitForLock: true }), "DURQ_INVALID_INPUT");
      // Browser storage in Node: the error names what Node opens instead.
      const opfs = await open({ opfs: "app.db" }).then(
        () => undefined,
        (e) => e,
      );
      assert.equal(opfs?.code, "DURQ_OPFS_UNAVAILABLE");
      assert.match(opfs.message, /\{ path: string \}/);
    });

    test("a lease-lost write leaves the new holder's work alone", async () => {
      // Covered in depth by queue.test.mjs; here: a write after completion.
      const { db } = await openDb(kind);
      let saved;
      const gate = deferred();
      const j = defineJob({
        name: "late-writer",
        async run(step) {
          saved = step;
          return "done";
        },
      });
      const { id } = await db.enqueue(j, {});
      await db.worker({ jobs: [j] }).processUntilIdle();
      await rejectsCode(
        saved.run("late", () => 1),
        "DURQ_LEASE_LOST",
      );
      await rejectsCode(saved.progress(1), "DURQ_LEASE_LOST");
      await rejectsCode(saved.log("late"), "DURQ_LEASE_LOST");
      const run = await db.getRun(id);
      assert.deepEqual([run.status, run.output, run.progress], ["completed", "done", null]);
      assert.deepEqual(await db.getSteps(id), []);
      gate.resolve();
      await settle();
      await db.close();
    });
  });
}
