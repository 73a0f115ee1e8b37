// The write queue: group commit of the operations issued in one tick, a
// savepoint each; enqueueMany all-or-nothing; chunking of huge batches.

import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { defineJob } from "durq";
import { cleanupDirs, openDb, rejectsCode, STORAGES, T0 } from "../test-support/helpers.mjs";

after(cleanupDirs);

const job = defineJob({ name: "wq", run: (_s, input) => input });

for (const kind of STORAGES) {
  describe(`write queue (${kind})`, () => {
    test("operations issued in one tick commit in one transaction", async () => {
      const { db } = await openDb(kind);
      const before = db.transactions;
      const results = await Promise.all(Array.from({ length: 100 }, (_, i) => db.enqueue(job, i, { labels: { i: String(i) } })));
      assert.equal(db.transactions - before, 1);
      assert.equal(new Set(results.map((r) => r.id)).size, 100);
      assert.ok(results.every((r) => r.created));
      // Ids are time-ordered: creation order within the transaction.
      assert.deepEqual(
        results.map((r) => r.id),
        [...results.map((r) => r.id)].sort(),
      );
      assert.equal((await db.stats()).pending, 100);

      // Operations issued across ticks are separate transactions.
      await db.enqueue(job, "a");
      await db.enqueue(job, "b");
      assert.equal(db.transactions - before, 3);
      await db.close();
    });

    test("a bad operation fails alone; its neighbours commit", async () => {
      const { db } = await openDb(kind);
      const seed = await db.enqueue(job, "finished");
      await db.worker({ jobs: [job] }).processUntilIdle();
      const before = db.transactions;
      const settled = await Promise.allSettled([
        db.enqueue(job, 1),
        db.cancel("0190e0e0-0000-7000-8000-000000000000"), // no such run: DURQ_NOT_FOUND in the core
        db.enqueue(job, 2),
        db.cancel(seed.id), // already completed: DURQ_INVALID_STATE in the core
        db.enqueue(job, 3),
      ]);
      assert.equal(db.transactions - before, 1, "one transaction for the five");
      assert.deepEqual(
        settled.map((s) => s.status),
        ["fulfilled", "rejected", "fulfilled", "rejected", "fulfilled"],
      );
      assert.equal(settled[1].reason.code, "DURQ_NOT_FOUND");
      assert.equal(settled[3].reason.code, "DURQ_INVALID_STATE");
      for (const i of [0, 2, 4]) assert.equal((await db.getRun(settled[i].value.id)).status, "pending");
      assert.equal((await db.getRun(seed.id)).status, "completed");
      await db.close();
    });

    test("operations of one tick apply in order: a delete sees the cancel before it", async () => {
      const { db } = await openDb(kind);
      const { id } = await db.enqueue(job, 0);
      const [cancelled, deleted] = await Promise.allSettled([db.cancel(id), db.deleteRun(id)]);
      assert.equal(cancelled.status, "fulfilled");
      assert.equal(deleted.status, "fulfilled", "delete after cancel in the same transaction");
      await rejectsCode(db.getRun(id), "DURQ_NOT_FOUND");
      await db.close();
    });

    test("enqueueMany stores all runs in one transaction, in order", async () => {
      const { db } = await openDb(kind);
      const other = defineJob({ name: "wq-other", run: () => 0 });
      const before = db.transactions;
      const results = await db.enqueueMany([
        { job, input: 1 },
        { job: "wq-other", input: 2, options: { priority: 5, labels: { k: "v" } } },
        { job, input: 3, options: { idempotencyKey: "same" } },
        { job, input: 4, options: { idempotencyKey: "same" } },
      ]);
      assert.equal(db.transactions - before, 1);
      assert.deepEqual(
        results.map((r) => r.created),
        [true, true, true, false],
      );
      assert.equal(results[3].id, results[2].id);
      const second = await db.getRun(results[1].id);
      assert.deepEqual([second.job, second.priority, second.labels], [other.name, 5, { k: "v" }]);
      assert.deepEqual(await db.enqueueMany([]), []);
      await db.close();
    });

    test("enqueueMany is all or nothing", async () => {
      const { db } = await openDb(kind);
      await db.enqueue(job, "kept");
      // Refused in JS before anything is queued: the item is named.
      await rejectsCode(
        db.enqueueMany([
          { job, input: 1 },
          { job, input: () => 1 },
        ]),
        "DURQ_INVALID_INPUT",
        /item 1/,
      );
      await rejectsCode(
        db.enqueueMany([
          { job, input: 1 },
          { job: "no-such-job", input: 1 },
        ]),
        "DURQ_UNKNOWN_JOB",
      );
      await rejectsCode(
        db.enqueueMany([
          { job, input: 1 },
          { job, input: 2, options: { runAt: -1 } },
        ]),
        "DURQ_INVALID_INPUT",
        /item 1/,
      );
      await rejectsCode(
        db.enqueueMany([
          { job, input: 1 },
          { job, input: 2, options: { labels: { "bad key": "v" } } },
        ]),
        "DURQ_INVALID_INPUT",
      );
      assert.equal((await db.stats()).pending, 1, "no partial batch");
      await db.close();
    });

    test("a huge tick is split into transactions of at most 10 000 operations", async () => {
      const { db } = await openDb(kind);
      const before = db.transactions;
      const n = 10_001;
      const results = await Promise.all(Array.from({ length: n }, (_, i) => db.enqueue(job, i)));
      assert.equal(results.length, n);
      assert.equal(db.transactions - before, 2);
      assert.equal((await db.stats()).pending, n);
      const page = await db.listRuns({ limit: 1 });
      assert.equal(page.runs[0].input, n - 1);
      assert.equal(page.runs[0].createdAt, T0);
      await db.close();
    });
  });
}

// The queue itself, on a stand-in for core.apply: what the real core cannot
// be made to do on demand (a failing COMMIT, a wrong outcome count).
describe("WriteQueue (stand-in apply)", async () => {
  const { WriteQueue } = await import("../../pkg/dist/write-queue.js");
  const ops = await import("../../pkg/dist/ops.js");
  /** An operation's text as the builders in ops.ts lay it out. */
  const opJson = (op, args = {}) => JSON.stringify({ op, args });

  function queueWith(apply) {
    const calls = [];
    const nows = [];
    const commitErrors = [];
    const q = new WriteQueue(
      {
        apply: (now, text) => {
          nows.push(now);
          calls.push(JSON.parse(text));
          return apply(JSON.parse(text));
        },
        now: () => 1234,
        onCommitError: (e, n) => commitErrors.push([e.code, n]),
        onHookError: (e) => {
          throw e;
        },
      },
      3,
    );
    return { q, calls, nows, commitErrors };
  }

  test("one apply per tick with one `now` for the commit, chunks of maxBatch, results in order", async () => {
    const { q, calls, nows } = queueWith((ops) => JSON.stringify(ops.map((o) => ({ ok: { echo: o.args.n } }))));
    const hooks = [];
    const ps = [1, 2, 3, 4, 5].map((n) => q.submit(opJson("x", { n }), (r) => hooks.push(r.echo)));
    assert.equal(q.size, 5);
    const results = await Promise.all(ps);
    assert.deepEqual(
      results.map((r) => r.echo),
      [1, 2, 3, 4, 5],
    );
    assert.deepEqual(hooks, [1, 2, 3, 4, 5]);
    assert.deepEqual(
      calls.map((c) => c.map((o) => o.args.n)),
      [
        [1, 2, 3],
        [4, 5],
      ],
    );
    assert.deepEqual(nows, [1234, 1234], "the clock goes with the commit, not with each op");
    assert.ok(calls.flat().every((o) => o.op === "x" && !("now" in o.args)));
    assert.equal(q.transactions, 2);
  });

  test("the builders lay out { op, args } with op first and splice raw JSON values in verbatim", () => {
    const run = { job: "j", maxAttempts: 3, backoff: { initialMs: 1, factor: 2, maxMs: 3, jitter: 0 }, inputJson: '{"a" : [1,2]}' };
    assert.equal(
      ops.enqueue(run),
      '{"op":"enqueue","args":{"job":"j","maxAttempts":3,"backoff":{"initialMs":1,"factor":2,"maxMs":3,"jitter":0},"input":{"a" : [1,2]}}}',
    );
    assert.equal(ops.enqueueMany([run]), `{"op":"enqueueMany","args":{"runs":[${ops.enqueue(run).slice('{"op":"enqueue","args":'.length, -1)}]}}`);
    assert.equal(ops.saveStep({ id: "r", token: 2, name: "s", outputJson: "null" }), '{"op":"saveStep","args":{"id":"r","token":2,"name":"s","output":null}}');
    assert.equal(ops.restoreSearchIndex(), '{"op":"restoreSearchIndex"}');
    assert.equal(ops.expireLeasesBatch(), '[{"op":"expireLeases"}]');
    assert.equal(ops.deleteEffects({}), '{"op":"deleteEffects","args":{}}');
  });

  test("a committed op's finished batches reach observe(); an error keeps SQLite's extendedCode", async () => {
    const seen = [];
    const q = new WriteQueue({
      apply: () =>
        JSON.stringify([{ ok: {}, finishedBatches: [{ id: "b" }] }, { ok: {} }, { err: { code: "SQLITE_IOERR", message: "io", extendedCode: 778 } }]),
      now: () => 1,
      onCommitError: () => {},
      onHookError: (e) => {
        throw e;
      },
      observe: (finished) => seen.push(finished),
    });
    const settled = await Promise.allSettled(["a", "b", "c"].map((n) => q.submit(opJson(n))));
    assert.deepEqual(seen, [[{ id: "b" }], undefined]);
    assert.deepEqual([settled[2].reason.code, settled[2].reason.extendedCode], ["SQLITE_IOERR", 778]);
  });

  test("a failed commit rejects every op of the batch and reports it once", async () => {
    const { q, commitErrors } = queueWith(() => {
      throw Object.assign(new Error("disk full"), { name: "DurqError", code: "SQLITE_FULL" });
    });
    const hooks = [];
    const settled = await Promise.allSettled([1, 2].map((n) => q.submit(opJson("x", { n }), () => hooks.push(n))));
    assert.deepEqual(
      settled.map((s) => [s.status, s.reason.code, s.reason.message]),
      [
        ["rejected", "SQLITE_FULL", "disk full"],
        ["rejected", "SQLITE_FULL", "disk full"],
      ],
    );
    assert.deepEqual(commitErrors, [["SQLITE_FULL", 2]]);
    assert.deepEqual(hooks, [], "no event for an op that did not commit");
  });

  test("per-op errors become DurqErrors; a wrong outcome count fails the batch as DURQ_INTERNAL", async () => {
    const { q } = queueWith((ops) => JSON.stringify(ops.map((o) => (o.args.n === 2 ? { err: { code: "DURQ_NOT_FOUND", message: "no" } } : { ok: {} }))));
    const settled = await Promise.allSettled([1, 2].map((n) => q.submit(opJson("x", { n }))));
    assert.equal(settled[0].status, "fulfilled");
    assert.equal(settled[1].reason.name, "DurqError");
    assert.equal(settled[1].reason.code, "DURQ_NOT_FOUND");
    const bad = queueWith(() => "[]");
    await rejectsCode(bad.q.submit(opJson("x")), "DURQ_INTERNAL");
    assert.deepEqual(bad.commitErrors, [["DURQ_INTERNAL", 1]]);
  });

  test("drain() waits for queued ops; close() refuses new ones", async () => {
    const { q } = queueWith((ops) => JSON.stringify(ops.map(() => ({ ok: 1 }))));
    let done = false;
    const p = q.submit(opJson("x")).then(() => (done = true));
    await q.drain();
    assert.equal(done, true);
    await p;
    q.close();
    await rejectsCode(q.submit(opJson("x")), "DURQ_CLOSED");
  });

  test("a full batch commits at once, without waiting for the next turn, even if the caller never yields to the event loop", async () => {
    const { q, calls } = queueWith((ops) => JSON.stringify(ops.map(() => ({ ok: null }))));
    let immediate = false;
    setImmediate(() => (immediate = true));
    // Write-behind style: submit and move on, in microtasks only.
    for (let i = 0; i < 7; i++) {
      q.submit(opJson("x", { i }));
      await Promise.resolve();
    }
    assert.equal(immediate, false, "no macrotask ran");
    assert.deepEqual(
      calls.map((c) => c.length),
      [3, 3],
      "two full batches of maxBatch (3) committed; the 7th op waits for the turn",
    );
    await q.drain();
    assert.deepEqual(
      calls.map((c) => c.length),
      [3, 3, 1],
    );
  });

  test("an asynchronous apply keeps one commit in flight; the next gathers everything queued meanwhile; generations count commits", async () => {
    const pending = [];
    const q = new WriteQueue(
      {
        apply: (_now, text) => new Promise((resolve) => pending.push(() => resolve(JSON.stringify(JSON.parse(text).map(() => ({ ok: null })))))),
        now: () => 1,
        onCommitError: () => {},
        onHookError: (e) => {
          throw e;
        },
      },
      100,
    );
    const seen = [];
    const track = (name) => ({ assigned: (g) => seen.push(`${name}@${g}`), settled: (ok) => seen.push(`${name}:${ok}`) });
    const a = q.submit(opJson("a"), undefined, track("a"));
    await new Promise((r) => setImmediate(r));
    assert.equal(q.inFlight, true);
    const b = q.submit(opJson("b"), undefined, track("b"));
    const c = q.submit(opJson("c"), undefined, track("c"));
    await new Promise((r) => setImmediate(r));
    assert.equal(pending.length, 1, "b and c wait: one commit in flight");
    assert.deepEqual([q.processedGeneration, q.committedGeneration], [1, 0]);
    pending.shift()();
    await a;
    await new Promise((r) => setImmediate(r));
    assert.equal(pending.length, 1);
    assert.deepEqual([q.processedGeneration, q.committedGeneration], [2, 1]);
    pending.shift()();
    await Promise.all([b, c]);
    assert.deepEqual(seen, ["a@1", "a:true", "b@2", "c@2", "b:true", "c:true"]);
    assert.deepEqual([q.processedGeneration, q.committedGeneration], [2, 2]);
    await q.drain();
    assert.equal(q.inFlight, false);
  });
});
