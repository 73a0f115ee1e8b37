// The queue, end to end through the built package, against every storage
// kind (memory and the Node file VFS): one conformance suite.

import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { defineJob, DurqError, isDurqError, ManualClock, PURGE_CHUNK } from "durq";
import { cleanupDirs, deferred, frozenTimerClock, openDb, recordEvents, rejectsCode, settle, STORAGES, T0 } from "../test-support/helpers.mjs";

after(cleanupDirs);

const echo = defineJob({ name: "echo", run: (_step, input) => input });

for (const kind of STORAGES) {
  describe(`queue (${kind})`, () => {
    test("enqueue, getRun, process, complete", async () => {
      const { db } = await openDb(kind);
      const r = await db.enqueue(echo, { hello: "world", n: [1, 2.5, null, "x\u0000y"] }, { labels: { tenant: "acme" } });
      assert.equal(r.created, true);
      assert.equal(r.status, "pending");
      assert.match(r.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      const pending = await db.getRun(r.id);
      assert.equal(pending.status, "pending");
      assert.equal(pending.job, "echo");
      assert.equal(pending.queue, "default");
      assert.equal(pending.createdAt, T0);
      assert.equal(pending.runAt, T0);
      assert.deepEqual(pending.input, { hello: "world", n: [1, 2.5, null, "x\u0000y"] });
      assert.deepEqual(pending.labels, { tenant: "acme" });
      assert.equal(pending.attempt, 0);
      assert.equal(pending.maxAttempts, 3);

      const w = db.worker({ jobs: [echo] });
      assert.equal(await w.processOne(), true);
      assert.equal(await w.processOne(), false);
      const done = await db.getRun(r.id);
      assert.equal(done.status, "completed");
      assert.deepEqual(done.output, pending.input);
      assert.equal(done.attempt, 1);
      assert.equal(done.finishedAt, T0);
      assert.equal(done.leaseExpiresAt, null);
      assert.deepEqual(await db.stats(), { pending: 0, leased: 0, completed: 1, failed: 0, cancelled: 0 });
      await db.close();
    });

    test("enqueue by job name uses the job's retry policy", async () => {
      const { db } = await openDb(kind);
      defineJob({ name: "named", retry: { maxAttempts: 7 }, run: () => 1 });
      const { id } = await db.enqueue("named", null);
      assert.equal((await db.getRun(id)).maxAttempts, 7);
      await db.close();
    });

    test("an idempotency key returns the existing run and says so", async () => {
      const { db } = await openDb(kind);
      const a = await db.enqueue(echo, 1, { idempotencyKey: "k1" });
      const b = await db.enqueue(echo, 2, { idempotencyKey: "k1" });
      assert.equal(a.created, true);
      assert.equal(b.created, false);
      assert.equal(b.id, a.id);
      assert.deepEqual((await db.getRun(a.id)).input, 1);
      // The same key in one transaction: still one run.
      const [c, d] = await Promise.all([db.enqueue(echo, 3, { idempotencyKey: "k2" }), db.enqueue(echo, 4, { idempotencyKey: "k2" })]);
      assert.equal(c.created, true);
      assert.equal(d.created, false);
      assert.equal(d.id, c.id);
      // Another job may use the same key.
      const other = defineJob({ name: "other", run: () => null });
      assert.equal((await db.enqueue(other, 5, { idempotencyKey: "k1" })).created, true);
      // After completion the key still returns the finished run.
      await db.worker({ jobs: [echo] }).processUntilIdle();
      const again = await db.enqueue(echo, 6, { idempotencyKey: "k1" });
      assert.deepEqual([again.created, again.id, again.status], [false, a.id, "completed"]);
      assert.equal((await db.stats()).completed, 2);
      await db.close();
    });

    test("runs are claimed by priority, then runAt, then creation order", async () => {
      const { db, clock } = await openDb(kind);
      const order = [];
      const job = defineJob({ name: "ordered", run: (_s, input) => void order.push(input) });
      await db.enqueue(job, "p0-first");
      await db.enqueue(job, "p0-runAt-earlier", { runAt: T0 - 10 });
      await db.enqueue(job, "p5", { priority: 5 });
      await db.enqueue(job, "p0-second");
      await db.enqueue(job, "p-1", { priority: -1 });
      await db.enqueue(job, "p5-later", { priority: 5, runAt: T0 + 1000 });
      await db.enqueue(job, "p9-later-still", { priority: 9, runAt: new Date(T0 + 2000) });
      const w = db.worker({ jobs: [job] });
      assert.equal(await w.processUntilIdle(), 5);
      assert.deepEqual(order, ["p5", "p0-runAt-earlier", "p0-first", "p0-second", "p-1"]);
      clock.advance(2000);
      await w.processUntilIdle();
      assert.deepEqual(order.slice(5), ["p9-later-still", "p5-later"]);
      await db.close();
    });

    test("at most one leased run per concurrency key", async () => {
      const { db } = await openDb(kind);
      const gates = new Map();
      const started = [];
      const job = defineJob({
        name: "keyed",
        run: async (_step, input) => {
          started.push(input);
          const g = deferred();
          gates.set(input, g);
          await g.promise;
        },
      });
      await db.enqueue(job, "a1", { concurrencyKey: "A" });
      await db.enqueue(job, "a2", { concurrencyKey: "A" });
      await db.enqueue(job, "b1", { concurrencyKey: "B" });
      const w = db.worker({ jobs: [job], concurrency: 3 });
      const done = w.processUntilIdle();
      await settle();
      assert.deepEqual(started.sort(), ["a1", "b1"]);
      assert.equal((await db.stats()).leased, 2);
      gates.get("a1").resolve();
      await settle(6);
      assert.deepEqual(started.sort(), ["a1", "a2", "b1"]);
      gates.get("a2").resolve();
      gates.get("b1").resolve();
      assert.equal(await done, 3);
      assert.equal((await db.stats()).completed, 3);
      await db.close();
    });

    test("a worker claims its next run in the commit that records the last outcome, within its concurrency", async () => {
      const { db } = await openDb(kind);
      const n = 10;
      await db.enqueueMany(Array.from({ length: n }, (_, i) => ({ job: echo, input: i })));
      let before = db.transactions;
      assert.equal(await db.worker({ jobs: [echo] }).processUntilIdle(), n);
      // A claim, then one commit per run (its outcome and the next claim), and a last empty claim: not 2n + 1.
      assert.equal(db.transactions - before, n + 2);
      let running = 0;
      let most = 0;
      const slow = defineJob({
        name: "slow-echo",
        run: async (step, input) => {
          running++;
          most = Math.max(most, running);
          await step.run("s", () => input);
          await settle(2);
          running--;
          return input;
        },
      });
      await db.enqueueMany(Array.from({ length: n }, (_, i) => ({ job: slow, input: i })));
      before = db.transactions;
      assert.equal(await db.worker({ jobs: [slow], concurrency: 3 }).processUntilIdle(), n);
      assert.equal(most, 3, "never more handlers than the concurrency");
      assert.equal((await db.stats()).completed, 2 * n);
      await db.close();
    });

    test("a worker claims only its own jobs and its own queue", async () => {
      const { db } = await openDb(kind);
      const mine = defineJob({ name: "mine", run: () => "mine" });
      const theirs = defineJob({ name: "theirs", run: () => "theirs" });
      const a = await db.enqueue(theirs, 1);
      const b = await db.enqueue(mine, 2);
      const c = await db.enqueue(mine, 3, { queue: "other" });
      assert.equal(await db.worker({ jobs: [mine] }).processUntilIdle(), 1);
      assert.equal((await db.getRun(a.id)).status, "pending");
      assert.equal((await db.getRun(b.id)).status, "completed");
      assert.equal((await db.getRun(c.id)).status, "pending");
      assert.equal(await db.worker({ jobs: [mine], queue: "other" }).processUntilIdle(), 1);
      assert.equal((await db.getRun(c.id)).status, "completed");
      await db.close();
    });

    test("a failing handler is retried with exponential backoff, then failed with message and stack", async () => {
      const { db, clock } = await openDb(kind);
      let calls = 0;
      const job = defineJob({
        name: "flaky",
        retry: { maxAttempts: 3, backoff: { initialMs: 1000, factor: 3, maxMs: 60_000, jitter: 0 } },
        run: () => {
          calls++;
          throw new TypeError(`boom ${calls}`);
        },
      });
      const events = recordEvents(db, ["run:retrying", "run:failed"]);
      const { id } = await db.enqueue(job, {});
      const w = db.worker({ jobs: [job] });
      assert.equal(await w.processUntilIdle(), 1);
      let run = await db.getRun(id);
      assert.equal(run.status, "pending");
      assert.equal(run.attempt, 1);
      assert.equal(run.runAt, T0 + 1000);
      assert.equal(run.error.message, "boom 1");
      assert.equal(await w.processUntilIdle(), 0, "not due before its backoff");
      clock.advance(999);
      assert.equal(await w.processUntilIdle(), 0);
      clock.advance(1);
      assert.equal(await w.processUntilIdle(), 1);
      run = await db.getRun(id);
      assert.equal(run.runAt, T0 + 1000 + 3000);
      clock.advance(3000);
      assert.equal(await w.processUntilIdle(), 1);
      run = await db.getRun(id);
      assert.equal(run.status, "failed");
      assert.equal(run.attempt, 3);
      assert.equal(run.finishedAt, T0 + 4000);
      assert.equal(run.error.name, "TypeError");
      assert.equal(run.error.message, "boom 3");
      assert.match(run.error.stack, /TypeError: boom 3/);
      assert.match(run.error.stack, /queue\.test\.mjs/);
      assert.deepEqual(
        events.map(([n, p]) => [n, p.attempt]),
        [
          ["run:retrying", 1],
          ["run:retrying", 2],
          ["run:failed", 3],
        ],
      );
      assert.equal(events[0][1].runAt, T0 + 1000);
      assert.equal(calls, 3);
      await db.close();
    });

    test("backoff jitter takes up to `jitter` of the delay off, at random", async () => {
      const { db } = await openDb(kind);
      const job = defineJob({
        name: "jittery",
        retry: { maxAttempts: 2, backoff: { initialMs: 1000, factor: 2, maxMs: 60_000, jitter: 0.5 } },
        run: () => {
          throw new Error("x");
        },
      });
      const { id } = await db.enqueue(job, {});
      const random = Math.random;
      Math.random = () => 0.5;
      try {
        await db.worker({ jobs: [job] }).processUntilIdle();
      } finally {
        Math.random = random;
      }
      assert.equal((await db.getRun(id)).runAt, T0 + 750);
      await db.close();
    });

    test("an error with retryable: false fails the run at once; non-Errors are recorded", async () => {
      const { db } = await openDb(kind);
      const fatal = defineJob({
        name: "fatal",
        run: () => {
          throw Object.assign(new Error("bad config"), { retryable: false });
        },
      });
      const weird = defineJob({ name: "weird", retry: { maxAttempts: 1 }, run: () => Promise.reject({ some: "object" }) });
      const a = await db.enqueue(fatal, {});
      const b = await db.enqueue(weird, {});
      await db.worker({ jobs: [fatal, weird], concurrency: 2 }).processUntilIdle();
      const ra = await db.getRun(a.id);
      assert.deepEqual([ra.status, ra.attempt, ra.error.message], ["failed", 1, "bad config"]);
      const rb = await db.getRun(b.id);
      assert.equal(rb.status, "failed");
      assert.match(rb.error.message, /\{"some":"object"\}/);
      await db.close();
    });

    test("a non-JSON handler output fails the run, not the worker", async () => {
      const { db } = await openDb(kind);
      const job = defineJob({ name: "bigint-out", run: () => ({ n: 10n }) });
      const { id } = await db.enqueue(job, {});
      await db.worker({ jobs: [job] }).processUntilIdle();
      const run = await db.getRun(id);
      assert.equal(run.status, "failed");
      assert.match(run.error.message, /BigInt/);
      await db.close();
    });

    test("steps are stored, progress and logs too", async () => {
      const { db } = await openDb(kind);
      const job = defineJob({
        name: "stepper",
        async run(step, input) {
          const a = await step.run("a", () => input * 2);
          const b = await step.run("b", async () => ({ a, at: new Date(0) }));
          const none = await step.run("none", () => undefined);
          const again = await step.run("a", () => assert.fail("a step name already run returns its output"));
          step.progress({ done: 1, of: 2 });
          step.log("hello");
          await step.log("careful", "warn");
          return { a, b, none, again, runId: step.runId, attempt: step.attempt };
        },
      });
      const { id } = await db.enqueue(job, 21);
      await db.worker({ jobs: [job] }).processUntilIdle();
      const run = await db.getRun(id);
      assert.equal(run.status, "completed");
      assert.deepEqual(run.output, { a: 42, b: { a: 42, at: "1970-01-01T00:00:00.000Z" }, none: null, again: 42, runId: id, attempt: 1 });
      assert.deepEqual(run.progress, { done: 1, of: 2 });
      const steps = await db.getSteps(id);
      assert.deepEqual(steps.map((s) => [s.name, s.output, s.attempt]).sort(), [
        ["a", 42, 1],
        ["b", { a: 42, at: "1970-01-01T00:00:00.000Z" }, 1],
        ["none", null, 1],
      ]);
      const logs = await db.getLogs(id);
      assert.deepEqual(
        logs.map((l) => [l.level, l.message, l.attempt]),
        [
          ["info", "hello", 1],
          ["warn", "careful", 1],
        ],
      );
      await db.close();
    });

    test("a retried run replays its stored steps", async () => {
      const { db } = await openDb(kind);
      const calls = { a: 0, b: 0 };
      const job = defineJob({
        name: "replay-on-retry",
        retry: { maxAttempts: 2, backoff: { initialMs: 0, jitter: 0 } },
        async run(step) {
          const a = await step.run("a", () => ++calls.a);
          const b = await step.run("b", () => ++calls.b);
          if (step.attempt === 1) throw new Error("after the steps");
          return { a, b };
        },
      });
      const { id } = await db.enqueue(job, {});
      assert.equal(await db.worker({ jobs: [job] }).processUntilIdle(), 2);
      const run = await db.getRun(id);
      assert.deepEqual([run.status, run.attempt, run.output], ["completed", 2, { a: 1, b: 1 }]);
      assert.deepEqual(calls, { a: 1, b: 1 });
      await db.close();
    });

    test("a lapsed lease goes back to the queue; the old holder is fenced out (DURQ_LEASE_LOST) and steps replay", async () => {
      const clock = frozenTimerClock();
      const { db } = await openDb(kind, { clock });
      const calls = [];
      const hang = deferred();
      let firstSignal;
      let lateWrite;
      const job = defineJob({
        name: "crashy",
        async run(step, input) {
          const a = await step.run("a", () => {
            calls.push(`a@${step.attempt}`);
            return input.x + 1;
          });
          if (step.attempt === 1) {
            firstSignal = step.signal;
            await hang.promise; // a stuck worker: no heartbeat (timers never fire)
            // The stuck holder does not know yet that it lost the lease:
            // its next write is refused by the fencing token.
            lateWrite = step.run("late", () => "from the stale holder");
            await lateWrite;
          }
          const b = await step.run("b", () => {
            calls.push(`b@${step.attempt}`);
            return a * 10;
          });
          return { a, b };
        },
      });
      const events = recordEvents(db, ["run:lease-lost", "run:lease-expired", "run:leased", "run:completed"]);
      const { id } = await db.enqueue(job, { x: 1 });
      const stuck = db.worker({ jobs: [job], leaseMs: 1000 });
      const first = stuck.processOne();
      await settle(6);
      let run = await db.getRun(id);
      assert.deepEqual([run.status, run.attempt, run.leaseExpiresAt], ["leased", 1, T0 + 1000]);

      const rescuer = db.worker({ jobs: [job], leaseMs: 1000 });
      clock.advance(999);
      assert.equal(await rescuer.processOne(), false, "the lease has not lapsed yet");
      clock.advance(1);
      assert.equal(await rescuer.processOne(), true);
      run = await db.getRun(id);
      assert.deepEqual([run.status, run.attempt, run.output], ["completed", 2, { a: 2, b: 20 }]);
      assert.deepEqual(calls, ["a@1", "b@2"], "step a is replayed, not run again");

      hang.resolve();
      assert.equal(await first, true);
      await rejectsCode(lateWrite, "DURQ_LEASE_LOST");
      assert.equal(firstSignal.aborted, true);
      assert.equal(firstSignal.reason.code, "DURQ_LEASE_LOST");
      const after = await db.getRun(id);
      assert.deepEqual([after.status, after.output], ["completed", { a: 2, b: 20 }], "the old holder changed nothing");
      assert.deepEqual(
        (await db.getSteps(id)).map((s) => [s.name, s.output, s.attempt]),
        [
          ["a", 2, 1],
          ["b", 20, 2],
        ],
      );
      assert.deepEqual(
        events.map(([n, p]) => [n, p.attempt ?? p.status]),
        // The stuck attempt is told its lease is gone before the new attempt starts.
        [
          ["run:leased", 1],
          ["run:lease-lost", 1],
          ["run:lease-expired", "pending"],
          ["run:leased", 2],
          ["run:completed", 2],
        ],
      );
      await db.close();
    });

    test("an expired lease on the last attempt fails the run", async () => {
      const clock = frozenTimerClock();
      const { db } = await openDb(kind, { clock });
      const hang = deferred();
      const job = defineJob({ name: "once-stuck", retry: { maxAttempts: 1 }, run: () => hang.promise });
      const failed = recordEvents(db, ["run:failed"]);
      const { id } = await db.enqueue(job, {});
      const w = db.worker({ jobs: [job], leaseMs: 50 });
      const p = w.processOne();
      await settle();
      clock.advance(50);
      assert.equal(await db.worker({ jobs: [job] }).processOne(), false);
      const run = await db.getRun(id);
      assert.equal(run.status, "failed");
      assert.equal(run.error.name, "LeaseExpired");
      assert.equal(failed.length, 1);
      hang.resolve("late");
      await p;
      assert.equal((await db.getRun(id)).status, "failed");
      await db.close();
    });

    test("heartbeats renew the lease every leaseMs / 3", async () => {
      const { db, clock } = await openDb(kind);
      const gate = deferred();
      const job = defineJob({ name: "long", run: () => gate.promise });
      const { id } = await db.enqueue(job, {});
      const w = db.worker({ jobs: [job], leaseMs: 3000 });
      const p = w.processOne();
      await settle();
      assert.equal((await db.getRun(id)).leaseExpiresAt, T0 + 3000);
      for (let i = 1; i <= 4; i++) {
        clock.advance(1000);
        await settle();
        assert.equal((await db.getRun(id)).leaseExpiresAt, T0 + i * 1000 + 3000);
      }
      // Well past the first lease: still ours.
      assert.equal(await db.worker({ jobs: [job] }).processOne(), false);
      gate.resolve("ok");
      await p;
      const run = await db.getRun(id);
      assert.deepEqual([run.status, run.output, run.attempt], ["completed", "ok", 1]);
      assert.equal(clock.pendingTimers, 0, "no heartbeat left armed");
      await db.close();
    });

    test("cancel stops a pending run and aborts a running handler's signal", async () => {
      const { db } = await openDb(kind);
      let reason;
      const started = deferred();
      const job = defineJob({
        name: "cancellable",
        async run(step) {
          started.resolve();
          await new Promise((resolve) => step.signal.addEventListener("abort", resolve));
          reason = step.signal.reason;
          await step.run("after-cancel", () => assert.fail("no step runs after cancel")).catch((e) => (reason.stepError = e));
          throw step.signal.reason;
        },
      });
      const events = recordEvents(db, ["run:cancelled", "run:failed", "run:completed", "run:lease-lost", "error"]);
      const pending = await db.enqueue(job, "p", { runAt: T0 + 60_000 });
      assert.deepEqual(await db.cancel(pending.id), { status: "cancelled", previous: "pending" });
      assert.equal((await db.getRun(pending.id)).status, "cancelled");

      const running = await db.enqueue(job, "r");
      const w = db.worker({ jobs: [job] });
      const p = w.processOne();
      await started.promise;
      assert.deepEqual(await db.cancel(running.id), { status: "cancelled", previous: "leased" });
      assert.equal(await p, true);
      assert.ok(isDurqError(reason, "DURQ_CANCELLED"));
      assert.equal(reason.stepError.code, "DURQ_CANCELLED");
      const run = await db.getRun(running.id);
      assert.equal(run.status, "cancelled");
      assert.equal(run.finishedAt, T0);
      assert.deepEqual(
        events.map(([n, e]) => [n, e.previous]),
        [
          ["run:cancelled", "pending"],
          ["run:cancelled", "leased"],
        ],
      );
      await rejectsCode(db.cancel(running.id), "DURQ_INVALID_STATE");
      await rejectsCode(db.cancel("0190e0e0-0000-7000-8000-000000000000"), "DURQ_NOT_FOUND");
      await db.close();
    });

    test("a cancelled handler keeps its concurrency key until it has stopped", async () => {
      const { db } = await openDb(kind);
      const started = deferred();
      const release = deferred();
      const order = [];
      const job = defineJob({
        name: "exclusive",
        async run(_step, input) {
          order.push(`start ${input}`);
          if (input === 1) {
            started.resolve();
            await release.promise; // ignores its abort signal for a while
          }
          order.push(`end ${input}`);
        },
      });
      const first = await db.enqueue(job, 1, { concurrencyKey: "user-1" });
      await db.enqueue(job, 2, { concurrencyKey: "user-1" });
      const w = db.worker({ jobs: [job], concurrency: 2 });
      const p1 = w.processOne();
      await started.promise;
      await db.cancel(first.id);
      assert.equal((await db.getRun(first.id)).status, "cancelled");
      assert.equal(await w.processOne(), false, "the key is still held by the running handler");
      release.resolve();
      await p1;
      assert.equal((await db.getRun(first.id)).leaseExpiresAt, null, "the handler reported back");
      assert.equal(await w.processOne(), true);
      assert.deepEqual(order, ["start 1", "end 1", "start 2", "end 2"]);
      await db.close();
    });

    test("deleteRun removes a run with its labels, steps and logs", async () => {
      const { db } = await openDb(kind);
      const job = defineJob({
        name: "deletable",
        async run(step) {
          await step.run("s", () => 1);
          await step.log("l");
          return 2;
        },
      });
      const { id } = await db.enqueue(job, {}, { labels: { del: "yes" } });
      const keep = await db.enqueue(job, {}, { labels: { del: "yes" } });
      await db.worker({ jobs: [job] }).processUntilIdle();
      const events = recordEvents(db, ["run:deleted"]);
      assert.deepEqual(await db.deleteRun(id), { deleted: true });
      await rejectsCode(db.getRun(id), "DURQ_NOT_FOUND");
      assert.deepEqual(await db.getSteps(id), []);
      assert.deepEqual(await db.getLogs(id), []);
      assert.deepEqual(
        (await db.listRuns({ labels: { del: "yes" } })).runs.map((r) => r.id),
        [keep.id],
      );
      assert.deepEqual(events, [["run:deleted", { id }]]);
      await rejectsCode(db.deleteRun(id), "DURQ_NOT_FOUND");
      await db.close();
    });

    test("deleteRun refuses a leased run", async () => {
      const { db } = await openDb(kind);
      const gate = deferred();
      const job = defineJob({ name: "busy", run: () => gate.promise });
      const { id } = await db.enqueue(job, {});
      const p = db.worker({ jobs: [job] }).processOne();
      await settle();
      await rejectsCode(db.deleteRun(id), "DURQ_INVALID_STATE");
      gate.resolve(1);
      await p;
      assert.equal((await db.getRun(id)).status, "completed");
      await db.close();
    });

    test("retrigger makes a new run from a finished one", async () => {
      const { db, clock } = await openDb(kind);
      const { id } = await db.enqueue(echo, { v: 1 }, { labels: { a: "1" }, priority: 3, queue: "q2", idempotencyKey: "once" });
      await rejectsCode(db.retrigger(id), "DURQ_INVALID_STATE");
      await db.worker({ jobs: [echo], queue: "q2" }).processUntilIdle();
      clock.advance(10);
      const events = recordEvents(db, ["run:enqueued"]);
      const { id: newId } = await db.retrigger(id);
      assert.notEqual(newId, id);
      const run = await db.getRun(newId);
      assert.deepEqual(
        [run.status, run.job, run.input, run.labels, run.priority, run.queue, run.retriedFrom, run.createdAt, run.attempt],
        ["pending", "echo", { v: 1 }, { a: "1" }, 3, "q2", id, T0 + 10, 0],
      );
      assert.deepEqual(events, [["run:enqueued", { id: newId, job: "echo", queue: "q2" }]]);
      await rejectsCode(db.retrigger("nope"), "DURQ_NOT_FOUND");
      await db.close();
    });

    test("purgeRuns deletes finished runs older than a time", async () => {
      const { db, clock } = await openDb(kind);
      const old = await db.enqueue(echo, 1);
      await db.worker({ jobs: [echo] }).processUntilIdle();
      clock.advance(1000);
      const recent = await db.enqueue(echo, 2);
      await db.worker({ jobs: [echo] }).processUntilIdle();
      const live = await db.enqueue(echo, 3, { runAt: T0 });
      assert.deepEqual(await db.purgeRuns({ olderThan: T0 + 1 }), { deleted: 1, deletedBatches: 0 });
      await rejectsCode(db.getRun(old.id), "DURQ_NOT_FOUND");
      assert.equal((await db.getRun(recent.id)).status, "completed");
      assert.equal((await db.getRun(live.id)).status, "pending");
      assert.deepEqual(await db.purgeRuns({ olderThan: new Date(T0 + 5000), limit: 10 }), { deleted: 1, deletedBatches: 0 });
      assert.equal((await db.getRun(live.id)).status, "pending", "live runs are never purged");
      await db.close();
    });

    test("a large purge runs in transactions of PURGE_CHUNK runs and honours its limit", async () => {
      const { db, clock } = await openDb(kind);
      const n = PURGE_CHUNK * 2 + 500;
      const runs = await db.enqueueMany(Array.from({ length: n }, (_, i) => ({ job: echo, input: i, options: { labels: { k: "v" } } })));
      await Promise.all(runs.map((r) => db.cancel(r.id)));
      clock.advance(10);
      const before = db.transactions;
      assert.deepEqual(await db.purgeRuns({ olderThan: clock.now(), limit: PURGE_CHUNK + 100 }), { deleted: PURGE_CHUNK + 100, deletedBatches: 0 });
      assert.equal(db.transactions - before, 3, "two chunks of runs, one (empty) of batches");
      assert.deepEqual(await db.purgeRuns({ olderThan: clock.now() }), { deleted: n - PURGE_CHUNK - 100, deletedBatches: 0 });
      assert.deepEqual((await db.listRuns({ labels: { k: "v" } })).runs, []);
      assert.deepEqual(await db.stats(), { pending: 0, leased: 0, completed: 0, failed: 0, cancelled: 0 });
      await db.close();
    });

    test("listRuns filters by job, status, queue, labels and time, newest first, with a cursor", async () => {
      const { db, clock } = await openDb(kind);
      const other = defineJob({ name: "lister-other", run: () => 0 });
      const ids = [];
      for (let i = 0; i < 7; i++) {
        ids.push((await db.enqueue(echo, i, { labels: { tenant: i % 2 ? "odd" : "even", all: "yes" } })).id);
        clock.advance(1);
      }
      await db.enqueue(other, "x", { labels: { tenant: "even" }, queue: "elsewhere" });
      const even = await db.listRuns({ labels: { tenant: "even", all: "yes" } });
      assert.deepEqual(
        even.runs.map((r) => r.input),
        [6, 4, 2, 0],
      );
      assert.equal(even.nextCursor, null);
      assert.deepEqual((await db.listRuns({ labels: { tenant: "even" } })).runs.length, 5);
      assert.deepEqual(
        (await db.listRuns({ job: other })).runs.map((r) => r.input),
        ["x"],
      );
      assert.deepEqual(
        (await db.listRuns({ queue: "elsewhere" })).runs.map((r) => r.input),
        ["x"],
      );
      assert.deepEqual(
        (await db.listRuns({ job: "echo", createdAfter: T0 + 2, createdBefore: T0 + 4 })).runs.map((r) => r.input),
        [3, 2],
      );
      assert.deepEqual((await db.listRuns({ labels: { tenant: "none" } })).runs, []);

      const seen = [];
      let cursor;
      let pages = 0;
      do {
        const page = await db.listRuns({ job: echo, limit: 3, cursor });
        pages++;
        seen.push(...page.runs.map((r) => r.id));
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      assert.equal(pages, 3);
      assert.deepEqual(seen, [...ids].reverse());

      await db.worker({ jobs: [echo] }).processOne();
      assert.deepEqual(
        (await db.listRuns({ status: "completed" })).runs.map((r) => r.input),
        [0],
      );
      assert.equal((await db.listRuns({ status: "pending", job: "echo" })).runs.length, 6);
      await db.close();
    });

    test("waitForRun resolves when the run finishes; DURQ_TIMEOUT after timeoutMs", async () => {
      const { db, clock } = await openDb(kind);
      const { id } = await db.enqueue(echo, "w");
      const waiting = db.waitForRun(id, { timeoutMs: 5000 });
      await db.worker({ jobs: [echo] }).processUntilIdle();
      const run = await waiting;
      assert.deepEqual([run.id, run.status, run.output], [id, "completed", "w"]);
      assert.equal((await db.waitForRun(id)).status, "completed", "an already finished run resolves at once");

      const late = await db.enqueue(echo, "late", { runAt: T0 + 60_000 });
      const timingOut = db.waitForRun(late.id, { timeoutMs: 1000 });
      clock.advance(999);
      await settle();
      clock.advance(1);
      await rejectsCode(timingOut, "DURQ_TIMEOUT", /did not finish within 1000 ms/);
      await rejectsCode(db.waitForRun("0190e0e0-0000-7000-8000-000000000000"), "DURQ_NOT_FOUND");

      const deleted = db.waitForRun(late.id);
      await db.deleteRun(late.id);
      await rejectsCode(deleted, "DURQ_NOT_FOUND");
      assert.equal(clock.pendingTimers, 0, "waiters leave no timer behind");
      await db.close();
    });

    test("triggerAndWait with a started worker; timeout when nobody works", async () => {
      const { db, clock } = await openDb(kind);
      const double = defineJob({ name: "double", run: (_s, n) => n * 2 });
      const w = db.worker({ jobs: [double] });
      w.start();
      const run = await db.triggerAndWait(double, 21, { timeoutMs: 1000, labels: { via: "trigger" } });
      assert.deepEqual([run.status, run.output, run.labels], ["completed", 42, { via: "trigger" }]);
      await w.stop();
      const waiting = db.triggerAndWait(double, 1, { timeoutMs: 500 });
      await settle();
      clock.advance(500);
      await rejectsCode(waiting, "DURQ_TIMEOUT");
      await db.close();
    });

    test("a started worker sleeps until the next run is due and wakes on enqueue", async () => {
      const { db, clock } = await openDb(kind);
      const done = [];
      const job = defineJob({ name: "sleepy", run: (_s, v) => void done.push(v) });
      const w = db.worker({ jobs: [job], concurrency: 2 });
      w.start();
      await db.enqueue(job, "now");
      await db.enqueue(job, "later", { runAt: T0 + 10_000 });
      await settle(8);
      assert.deepEqual(done, ["now"]);
      clock.advance(9_999);
      await settle(8);
      assert.deepEqual(done, ["now"]);
      clock.advance(1);
      await settle(8);
      assert.deepEqual(done, ["now", "later"]);
      await db.enqueue(job, "again");
      await settle(8);
      assert.deepEqual(done, ["now", "later", "again"]);
      await w.stop();
      assert.equal(w.running, false);
      assert.equal(clock.pendingTimers, 0, "a stopped worker leaves no timer");
      await db.close();
    });

    test("stop() waits for handlers in flight; close() stops workers", async () => {
      const { db } = await openDb(kind);
      const gate = deferred();
      const job = defineJob({ name: "slow-stop", run: () => gate.promise });
      const { id } = await db.enqueue(job, {});
      const w = db.worker({ jobs: [job] });
      w.start();
      await settle();
      assert.equal(w.activeRuns, 1);
      let stopped = false;
      const stopping = w.stop().then(() => (stopped = true));
      await settle();
      assert.equal(stopped, false);
      gate.resolve("fin");
      await stopping;
      assert.equal((await db.getRun(id)).status, "completed");
      await db.close();
    });

    test("events follow the run's life, after each commit", async () => {
      const { db } = await openDb(kind);
      const job = defineJob({
        name: "evented",
        async run(step) {
          await step.run("one", () => 1);
          await step.progress(0.5);
          await step.log("hi", "debug");
          return "out";
        },
      });
      const events = recordEvents(db);
      const { id } = await db.enqueue(job, {}, { queue: "default" });
      await db.worker({ jobs: [job] }).processUntilIdle();
      assert.deepEqual(
        events.map(([n]) => n),
        ["run:enqueued", "run:leased", "step:completed", "run:progress", "run:log", "run:completed"],
      );
      const byName = Object.fromEntries(events);
      assert.deepEqual(byName["run:enqueued"], { id, job: "evented", queue: "default" });
      assert.equal(byName["run:leased"].attempt, 1);
      assert.equal(byName["run:leased"].leaseExpiresAt, T0 + 30_000);
      assert.deepEqual(byName["step:completed"], { runId: id, job: "evented", name: "one", attempt: 1, output: 1 });
      assert.deepEqual(byName["run:progress"], { id, job: "evented", progress: 0.5 });
      assert.deepEqual(byName["run:log"], { id, job: "evented", level: "debug", message: "hi", attempt: 1 });
      assert.deepEqual(byName["run:completed"], { id, job: "evented", attempt: 1, output: "out" });
      await db.close();
    });

    test("a throwing listener breaks neither the queue nor other listeners", async () => {
      const { db } = await openDb(kind);
      const errors = [];
      const seen = [];
      db.on("error", (e) => errors.push(e));
      db.on("run:enqueued", () => {
        throw new Error("listener bug");
      });
      db.on("run:enqueued", async () => {
        throw new Error("async listener bug");
      });
      const off = db.on("run:enqueued", (e) => seen.push(e.id));
      const a = await db.enqueue(echo, 1);
      await settle();
      assert.deepEqual(seen, [a.id]);
      assert.deepEqual(
        errors.map((e) => [e.source, e.error.message]),
        [
          ["listener", "listener bug"],
          ["listener", "async listener bug"],
        ],
      );
      off();
      const b = await db.enqueue(echo, 2);
      assert.deepEqual(seen, [a.id], "unsubscribed");
      assert.equal((await db.getRun(b.id)).status, "pending");
      await db.close();
    });

    test("closed database: every call rejects with DURQ_CLOSED and stored runs are kept", async () => {
      const { db, path } = await openDb(kind);
      const { id } = await db.enqueue(echo, "kept");
      const w = db.worker({ jobs: [echo] });
      const closing = db.close();
      assert.equal(db.closed, true);
      await rejectsCode(db.enqueue(echo, "too late"), "DURQ_CLOSED");
      await closing;
      await db.close(); // twice is fine
      await rejectsCode(db.enqueue(echo, 1), "DURQ_CLOSED");
      await rejectsCode(db.enqueueMany([{ job: echo, input: 1 }]), "DURQ_CLOSED");
      await rejectsCode(db.getRun(id), "DURQ_CLOSED");
      await rejectsCode(db.listRuns(), "DURQ_CLOSED");
      await rejectsCode(db.getSteps(id), "DURQ_CLOSED");
      await rejectsCode(db.getLogs(id), "DURQ_CLOSED");
      await rejectsCode(db.stats(), "DURQ_CLOSED");
      await rejectsCode(db.cancel(id), "DURQ_CLOSED");
      await rejectsCode(db.deleteRun(id), "DURQ_CLOSED");
      await rejectsCode(db.retrigger(id), "DURQ_CLOSED");
      await rejectsCode(db.purgeRuns({ olderThan: T0 }), "DURQ_CLOSED");
      await rejectsCode(db.waitForRun(id), "DURQ_CLOSED");
      await rejectsCode(db.triggerAndWait(echo, 1), "DURQ_CLOSED");
      await rejectsCode(() => db.worker({ jobs: [echo] }), "DURQ_CLOSED");
      await rejectsCode(w.processOne(), "DURQ_CLOSED");
      await rejectsCode(w.processUntilIdle(), "DURQ_CLOSED");
      await rejectsCode(() => w.start(), "DURQ_CLOSED");
      if (path !== undefined) {
        const { db: again } = await openDb(kind, { path });
        const run = await again.getRun(id);
        assert.deepEqual([run.status, run.input], ["pending", "kept"]);
        assert.equal((await again.stats()).pending, 1);
        await again.close();
      }
    });

    test("close() rejects pending waitForRun with DURQ_CLOSED and lets queued writes commit", async () => {
      const { db, path } = await openDb(kind);
      const { id } = await db.enqueue(echo, 1);
      const waiting = rejectsCode(db.waitForRun(id), "DURQ_CLOSED");
      const queued = db.enqueue(echo, 2);
      await db.close();
      await waiting;
      const { id: id2 } = await queued;
      if (path !== undefined) {
        const { db: again } = await openDb(kind, { path });
        assert.equal((await again.getRun(id2)).input, 2);
        await again.close();
      }
    });

    test("the database reopens with its runs, and the file passes integrity_check", async () => {
      if (kind !== "file") return;
      const { db, path } = await openDb(kind);
      const made = [];
      for (let i = 0; i < 20; i++) made.push((await db.enqueue(echo, i, { labels: { i: String(i) } })).id);
      await db.worker({ jobs: [echo], concurrency: 4 }).processUntilIdle();
      await db.close();
      const { db: again } = await openDb(kind, { path, clock: new ManualClock(T0 + 1) });
      assert.deepEqual(await again.integrityCheck(), ["ok"]);
      assert.equal((await again.stats()).completed, 20);
      assert.deepEqual(
        (await again.listRuns({ labels: { i: "7" } })).runs.map((r) => r.id),
        [made[7]],
      );
      // New ids still sort after the old ones.
      const { id } = await again.enqueue(echo, "new");
      assert.ok(id > made[19]);
      await again.close();
    });
  });
}

test("DurqError has a stable code and name", async () => {
  const e = new DurqError("DURQ_NOT_FOUND", "x");
  assert.equal(e.name, "DurqError");
  assert.equal(e.code, "DURQ_NOT_FOUND");
  assert.ok(e instanceof Error);
  assert.match(String(e.stack), /^DurqError: x/);
  assert.ok(isDurqError(e, "DURQ_NOT_FOUND"));
  assert.ok(!isDurqError(e, "DURQ_CLOSED"));
});
