// Batches through the built package, against every storage kind: creation
// in one transaction, counts and state that follow the runs, the batch:*
// events (once each), waiting, cancelling, listing, reconciling, and the
// bad inputs of the issue (unknown batch id, empty batch, unknown job).

import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { defineJob, open } from "durq";
import { cleanupDirs, deferred, frozenTimerClock, openDb, recordEvents, rejectsCode, settle, STORAGES, T0 } from "../test-support/helpers.mjs";

after(cleanupDirs);

const ok = defineJob({ name: "batch-ok", run: (_step, input) => ({ doubled: input * 2 }) });
const flaky = defineJob({
  name: "batch-flaky",
  retry: { maxAttempts: 1 },
  run: (_step, input) => {
    if (input < 0) throw new Error(`negative: ${input}`);
    return input;
  },
});

const BATCH_EVENTS = ["batch:enqueued", "batch:completed", "batch:failed", "batch:cancelled", "run:completed", "run:failed", "run:cancelled"];

for (const kind of STORAGES) {
  describe(`batches (${kind})`, () => {
    test("a batch's runs are created together, counted as they move, and it completes once", async () => {
      const { db } = await openDb(kind);
      const events = recordEvents(db, BATCH_EVENTS);
      const b = await db.enqueueBatch({
        queue: "files",
        labels: { dir: "lib" },
        runs: [
          { job: ok, input: 1, labels: { file: "a.js" } },
          { job: ok, input: 2, priority: 5 },
          { job: "batch-ok", input: 3, idempotencyKey: "file:c" },
        ],
      });
      assert.equal(b.created, true);
      assert.equal(b.state, "active");
      assert.equal(b.runs.length, 3);
      assert.ok(b.runs.every((r) => r.created && r.status === "pending"));
      const batch = await db.getBatch(b.id);
      assert.equal(batch.queue, "files");
      assert.equal(batch.state, "active");
      assert.deepEqual(batch.labels, { dir: "lib" });
      assert.deepEqual(batch.counts, { total: 3, pending: 3, leased: 0, completed: 0, failed: 0, cancelled: 0 });
      assert.equal(batch.createdAt, T0);
      assert.equal(batch.finishedAt, null);
      assert.deepEqual(
        (await db.listActiveBatches("files")).map((x) => x.id),
        [b.id],
      );
      assert.deepEqual(await db.listActiveBatches(), [], "another queue's batches are not listed");
      const run = await db.getRun(b.runs[0].id);
      assert.equal(run.batchId, b.id);
      assert.equal(run.queue, "files");
      assert.deepEqual(run.labels, { file: "a.js" }, "batch labels are the batch's own");
      const page = await db.listRuns({ batchId: b.id });
      assert.deepEqual(page.runs.map((r) => r.id).sort(), b.runs.map((r) => r.id).sort());

      const waiting = db.waitForBatch(b.id);
      const w = db.worker({ jobs: [ok], queue: "files" });
      assert.equal(await w.processOne(), true);
      assert.deepEqual((await db.getBatch(b.id)).counts, { total: 3, pending: 2, leased: 0, completed: 1, failed: 0, cancelled: 0 });
      await w.processUntilIdle();
      const done = await waiting;
      assert.equal(done.state, "completed");
      assert.equal(done.finishedAt, T0);
      assert.deepEqual(done.counts, { total: 3, pending: 0, leased: 0, completed: 3, failed: 0, cancelled: 0 });
      assert.deepEqual(await db.listActiveBatches("files"), []);
      const names = events.map(([n]) => n);
      assert.deepEqual(
        names,
        ["batch:enqueued", "run:completed", "run:completed", "run:completed", "batch:completed"],
        "the batch event follows its last run's, once",
      );
      assert.deepEqual(events[0][1], { id: b.id, queue: "files", runs: 3 });
      assert.deepEqual(events.at(-1)[1], { id: b.id, queue: "files", state: "completed", counts: done.counts });
      await db.close();
    });

    test("a batch with a failed run ends failed; waitForBatch returns it", async () => {
      const { db } = await openDb(kind);
      const events = recordEvents(db, ["batch:completed", "batch:failed"]);
      const b = await db.enqueueBatch({
        runs: [
          { job: flaky, input: 1 },
          { job: flaky, input: -1 },
          { job: flaky, input: 2 },
        ],
      });
      await db.worker({ jobs: [flaky] }).processUntilIdle();
      const done = await db.waitForBatch(b.id, { timeoutMs: 0 });
      assert.equal(done.state, "failed");
      assert.deepEqual(done.counts, { total: 3, pending: 0, leased: 0, completed: 2, failed: 1, cancelled: 0 });
      assert.deepEqual(
        events.map(([n]) => n),
        ["batch:failed"],
      );
      await db.close();
    });

    test("cancelBatch cancels pending runs and aborts running handlers", async () => {
      const { db } = await openDb(kind);
      const started = deferred();
      let reason;
      const slow = defineJob({
        name: "batch-slow",
        async run(step) {
          started.resolve();
          await new Promise((resolve) => step.signal.addEventListener("abort", resolve));
          reason = step.signal.reason;
          throw reason;
        },
      });
      const events = recordEvents(db, ["batch:cancelled", "batch:failed", "run:cancelled"]);
      const b = await db.enqueueBatch({
        runs: [
          { job: slow, input: 0 },
          { job: slow, input: 1 },
          { job: slow, input: 2 },
        ],
      });
      const w = db.worker({ jobs: [slow], concurrency: 1 });
      const processing = w.processOne();
      await started.promise;
      const out = await db.cancelBatch(b.id);
      assert.deepEqual(Object.keys(out).sort(), ["runs", "state"], "no internal field leaks into the result");
      assert.equal(out.state, "cancelled");
      assert.deepEqual(out.runs, [
        { id: b.runs[0].id, previous: "leased" },
        { id: b.runs[1].id, previous: "pending" },
        { id: b.runs[2].id, previous: "pending" },
      ]);
      await processing;
      assert.equal(reason?.code, "DURQ_CANCELLED", "the running handler's signal was aborted");
      assert.equal(await w.processOne(), false, "nothing of the batch is left to claim");
      const batch = await db.getBatch(b.id);
      assert.equal(batch.state, "cancelled");
      assert.deepEqual(batch.counts, { total: 3, pending: 0, leased: 0, completed: 0, failed: 0, cancelled: 3 });
      assert.deepEqual(
        events.map(([n]) => n),
        ["run:cancelled", "run:cancelled", "run:cancelled", "batch:cancelled"],
      );
      await rejectsCode(db.cancelBatch(b.id), "DURQ_INVALID_STATE", /already cancelled/);
      await db.close();
    });

    test("the run that ends a batch gets its usual result; the event carries the final counts", async () => {
      const { db } = await openDb(kind);
      const events = recordEvents(db, ["batch:cancelled", "batch:completed"]);
      const b = await db.enqueueBatch({
        runs: [
          { job: ok, input: 1 },
          { job: ok, input: 2 },
        ],
      });
      assert.deepEqual(await db.cancel(b.runs[0].id), { status: "cancelled", previous: "pending" });
      assert.deepEqual(await db.deleteRun(b.runs[1].id), { deleted: true });
      assert.deepEqual(events, [
        [
          "batch:cancelled",
          { id: b.id, queue: "default", state: "cancelled", counts: { total: 1, pending: 0, leased: 0, completed: 0, failed: 0, cancelled: 1 } },
        ],
      ]);
      await db.close();
    });

    test("an idempotency key makes enqueueBatch safe to retry", async () => {
      const { db } = await openDb(kind);
      const first = await db.enqueueBatch({
        runs: [
          { job: ok, input: 1 },
          { job: ok, input: 2 },
        ],
        idempotencyKey: "import:42",
      });
      const events = recordEvents(db, ["batch:enqueued", "run:enqueued"]);
      const again = await db.enqueueBatch({ runs: [{ job: ok, input: 9 }], idempotencyKey: "import:42" });
      assert.equal(again.created, false);
      assert.equal(again.id, first.id);
      assert.deepEqual(
        again.runs.map((r) => r.id),
        first.runs.map((r) => r.id),
      );
      assert.deepEqual(events, [], "nothing new, no events");
      assert.equal((await db.stats()).pending, 2);
      assert.equal((await db.getBatch(first.id)).idempotencyKey, "import:42");
      await db.close();
    });

    test("listBatches pages history by queue and state; reconcile of a sound database changes nothing", async () => {
      const { db, clock } = await openDb(kind);
      const ids = [];
      for (let i = 0; i < 5; i++) {
        ids.push((await db.enqueueBatch({ queue: i % 2 ? "odd" : "even", runs: [{ job: ok, input: i }] })).id);
        clock.advance(1);
      }
      await db.cancelBatch(ids[2]);
      const p1 = await db.listBatches({ queue: "even", limit: 2 });
      assert.deepEqual(
        p1.batches.map((b) => b.id),
        [ids[4], ids[2]],
      );
      const p2 = await db.listBatches({ queue: "even", limit: 2, cursor: p1.nextCursor });
      assert.deepEqual(
        p2.batches.map((b) => b.id),
        [ids[0]],
      );
      assert.equal(p2.nextCursor, null);
      assert.deepEqual(
        (await db.listBatches({ state: "cancelled" })).batches.map((b) => b.id),
        [ids[2]],
      );
      assert.deepEqual(
        (await db.listBatches({ state: "active", queue: "even" })).batches.map((b) => b.id),
        [ids[4], ids[0]],
      );
      assert.deepEqual(
        (await db.listBatches({ state: "active" })).batches.map((b) => b.id),
        [ids[4], ids[3], ids[1], ids[0]],
      );
      assert.deepEqual(
        (await db.listActiveBatches("even")).map((b) => b.id),
        [ids[0], ids[4]],
        "oldest first",
      );
      assert.deepEqual(await db.reconcileBatches({ graceMs: 0 }), { added: [], droppedTerminal: [], droppedMissing: [], keptMissing: 0 });
      await db.close();
    });

    test("a batch whose last attempt's lease expires fails from the claim that recovers it", async () => {
      const clock = frozenTimerClock(); // no heartbeat ever fires: the holder is stuck
      const { db } = await openDb(kind, { clock });
      const events = recordEvents(db, ["batch:failed"]);
      const release = deferred();
      const hang = defineJob({ name: "batch-hang", retry: { maxAttempts: 1 }, run: () => release.promise });
      const b = await db.enqueueBatch({ runs: [{ job: hang, input: 0 }] });
      const stuck = db.worker({ jobs: [hang], leaseMs: 1000 });
      const first = stuck.processOne();
      await settle(6);
      assert.equal((await db.getBatch(b.id)).counts.leased, 1);
      clock.advance(1000);
      const waiting = db.waitForBatch(b.id);
      assert.equal(await db.worker({ jobs: [hang] }).processOne(), false, "nothing to run, but the claim recovered the lease");
      assert.equal((await waiting).state, "failed");
      assert.deepEqual(
        events.map(([n, p]) => [n, p.id]),
        [["batch:failed", b.id]],
      );
      release.resolve();
      await first;
      await db.close();
    });

    test("bad input: unknown batch id, empty batch, unknown job or bad run inside a batch; nothing is half-written", async () => {
      const { db } = await openDb(kind);
      const unknown = "0190e0e0-0000-7000-8000-000000000000";
      await rejectsCode(db.getBatch(unknown), "DURQ_NOT_FOUND");
      await rejectsCode(db.cancelBatch(unknown), "DURQ_NOT_FOUND");
      await rejectsCode(db.waitForBatch(unknown), "DURQ_NOT_FOUND");
      await rejectsCode(db.getBatch(""), "DURQ_INVALID_INPUT");
      await rejectsCode(db.enqueueBatch({ runs: [] }), "DURQ_INVALID_INPUT", /non-empty/);
      await rejectsCode(db.enqueueBatch({}), "DURQ_INVALID_INPUT");
      await rejectsCode(db.enqueueBatch(), "DURQ_INVALID_INPUT");
      await rejectsCode(db.enqueueBatch({ runs: [{ job: ok, input: 1 }], extra: 1 }), "DURQ_INVALID_INPUT", /extra/);
      await rejectsCode(
        db.enqueueBatch({
          runs: [
            { job: ok, input: 1 },
            { job: "no-such-job", input: 2 },
          ],
        }),
        "DURQ_UNKNOWN_JOB",
        /run 1/,
      );
      await rejectsCode(
        db.enqueueBatch({
          runs: [
            { job: ok, input: 1 },
            { job: ok, input: () => 0 },
          ],
        }),
        "DURQ_INVALID_INPUT",
        /run 1/,
      );
      await rejectsCode(db.enqueueBatch({ queue: "a", runs: [{ job: ok, input: 1, queue: "b" }] }), "DURQ_INVALID_INPUT", /its queue/);
      await rejectsCode(db.enqueueBatch({ runs: [{ job: ok, input: 1 }], labels: { "bad key": "x" } }), "DURQ_INVALID_INPUT");
      await rejectsCode(db.enqueueBatch({ runs: [{ job: ok, input: 1, options: {} }] }), "DURQ_INVALID_INPUT", /options/);
      await db.enqueue(ok, 0, { idempotencyKey: "taken" });
      await rejectsCode(
        db.enqueueBatch({
          runs: [
            { job: ok, input: 1, labels: { k: "v" } },
            { job: ok, input: 2, idempotencyKey: "taken" },
          ],
        }),
        "DURQ_INVALID_STATE",
        /run 1/,
      );
      assert.deepEqual(await db.stats(), { pending: 1, leased: 0, completed: 0, failed: 0, cancelled: 0 }, "no run of a refused batch was stored");
      assert.deepEqual((await db.listBatches()).batches, []);
      assert.deepEqual((await db.listRuns({ labels: { k: "v" } })).runs, []);
      assert.deepEqual(await db.listActiveBatches(), []);
      await rejectsCode(db.listBatches({ state: "done" }), "DURQ_INVALID_INPUT");
      await rejectsCode(db.listBatches({ status: "active" }), "DURQ_INVALID_INPUT");
      await rejectsCode(db.listBatches({ cursor: "nope" }), "DURQ_INVALID_INPUT");
      await rejectsCode(db.listActiveBatches(""), "DURQ_INVALID_INPUT");
      await rejectsCode(db.reconcileBatches({ graceMs: -1 }), "DURQ_INVALID_INPUT");
      await rejectsCode(db.listRuns({ batchId: 7 }), "DURQ_INVALID_INPUT");
      await rejectsCode(
        db.enqueueBatch({
          runs: [
            { job: ok, input: 1, idempotencyKey: "same" },
            { job: ok, input: 2, idempotencyKey: "same" },
          ],
        }),
        "DURQ_INVALID_INPUT",
        /run 1 .* repeats .* run 0/,
      );
      // The database still works after all that.
      const b = await db.enqueueBatch({ runs: [{ job: ok, input: 1 }] });
      assert.equal((await db.getBatch(b.id)).state, "active");
      await db.close();
    });

    test("waitForBatch times out by the injected clock", async () => {
      const { db, clock } = await openDb(kind);
      const b = await db.enqueueBatch({ runs: [{ job: ok, input: 1 }] });
      const waiting = db.waitForBatch(b.id, { timeoutMs: 500 });
      clock.advance(500);
      await rejectsCode(waiting, "DURQ_TIMEOUT", /batch .* active/);
      await db.close();
    });
  });
}

test("a batch and its membership survive closing and reopening the file", async () => {
  const { db, path, clock } = await openDb("file");
  const b = await db.enqueueBatch({
    queue: "q",
    runs: [
      { job: ok, input: 1 },
      { job: ok, input: 2 },
    ],
  });
  await db.close();
  const again = await open({ path }, { clock });
  assert.deepEqual(
    (await again.listActiveBatches("q")).map((x) => x.id),
    [b.id],
  );
  await again.worker({ jobs: [ok], queue: "q" }).processUntilIdle();
  assert.equal((await again.getBatch(b.id)).state, "completed");
  await again.close();
});
