// Failure modes found in review: aliases of one file, the concurrency limit
// across entry points, outcomes that could not be stored, wait options
// checked before enqueueing, lone surrogates, a lock left by an earlier
// process with our pid, a fractional clock.

import assert from "node:assert/strict";
import { symlinkSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { defineJob, open } from "durq";
import { cleanupDirs, deferred, openDb, rejectsCode, STORAGES, T0, tempDir } from "../test-support/helpers.mjs";

after(cleanupDirs);

test("a symlink to an open database file is refused, not opened twice", async () => {
  const dir = tempDir();
  const real = join(dir, "app.db");
  const db = await open({ path: real }, { exclusive: true });
  await db.enqueue("x", 1).catch(() => {}); // unknown job name: refused, nothing written
  symlinkSync(real, join(dir, "alias.db"));
  await rejectsCode(open({ path: join(dir, "alias.db") }), "DURQ_LOCKED");
  await rejectsCode(open({ path: join(dir, "alias.db") }, { exclusive: true }), "DURQ_LOCKED");
  await db.close();
  const again = await open({ path: join(dir, "alias.db") });
  await again.close();
});

test("a lock file naming this process's pid but not held by it is stale (a restarted container)", async () => {
  const path = join(tempDir(), "pid1.db");
  writeFileSync(`${path}.lock`, `${process.pid}\n${hostname()}\n`);
  const db = await open({ path }, { exclusive: true });
  await rejectsCode(open({ path }, { exclusive: true }), "DURQ_LOCKED", /already open in this process/);
  await db.close();
});

for (const kind of STORAGES) {
  describe(`robustness (${kind})`, () => {
    test("concurrency holds across processOne, processUntilIdle and start", async () => {
      const { db } = await openDb(kind);
      let running = 0;
      let most = 0;
      const gate = deferred();
      const job = defineJob({
        name: "counted",
        async run() {
          most = Math.max(most, ++running);
          await gate.promise;
          running--;
        },
      });
      await db.enqueueMany(Array.from({ length: 6 }, (_, i) => ({ job, input: i })));
      const w = db.worker({ jobs: [job], concurrency: 2 });
      const all = [w.processOne(), w.processOne(), w.processOne(), w.processUntilIdle()];
      w.start();
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      gate.resolve();
      await Promise.all(all);
      await w.stop();
      assert.ok(most <= 2, `at most 2 handlers at once, saw ${most}`);
      await db.close();
    });

    test("a handler's odd error is stored, so the run does not stay leased", async () => {
      const { db } = await openDb(kind);
      const job = defineJob({
        name: "odd-error",
        retry: { maxAttempts: 1 },
        run() {
          const e = new Error(`cut ${"😀".slice(0, 1)} emoji`);
          e.name = 42;
          throw e;
        },
      });
      const { id } = await db.enqueue(job, {});
      await db.worker({ jobs: [job] }).processUntilIdle();
      const run = await db.getRun(id);
      assert.equal(run.status, "failed");
      assert.equal(run.leaseExpiresAt, null);
      assert.equal(run.error.name, "42");
      assert.match(run.error.message, /^cut \uFFFD emoji$/);
      await db.close();
    });

    test("triggerAndWait checks its wait options before enqueueing", async () => {
      const { db } = await openDb(kind);
      const job = defineJob({ name: "tw", run: () => 1 });
      for (const bad of [{ timeoutMs: 1.5 }, { timeoutMs: "abc" }, { pollMs: 0 }, { timeoutMs: -5 }]) {
        await rejectsCode(db.triggerAndWait(job, 1, bad), "DURQ_INVALID_INPUT");
      }
      assert.equal((await db.stats()).pending, 0, "no run was left behind");
      await db.close();
    });

    test("lone surrogates in names and labels are refused with a clear error", async () => {
      const { db } = await openDb(kind);
      const job = defineJob({ name: "s", run: () => 1 });
      const lone = "😀".slice(0, 1);
      await rejectsCode(db.enqueue(job, 1, { labels: { k: `a${lone}` } }), "DURQ_INVALID_INPUT", /surrogate/);
      await rejectsCode(db.enqueue(job, 1, { idempotencyKey: lone }), "DURQ_INVALID_INPUT", /surrogate/);
      assert.throws(
        () => defineJob({ name: `job${lone}`, run: () => 1 }),
        (e) => e.code === "DURQ_INVALID_INPUT",
      );
      assert.equal((await db.stats()).pending, 0);
      await db.close();
    });

    test("a clock returning fractions of a millisecond works (floored)", async () => {
      const { db } = await openDb(kind, { clock: { now: () => T0 + 0.75, setTimeout, clearTimeout } });
      const job = defineJob({ name: "frac", run: () => 1 });
      const { id } = await db.enqueue(job, 1);
      assert.equal((await db.getRun(id)).createdAt, T0);
      await db.close();
    });
  });
}

test("binary data, invalid Dates and oversized values are refused, not silently changed", async () => {
  const { db } = await openDb("memory");
  const job = defineJob({ name: "bin", run: () => 1 });
  await rejectsCode(db.enqueue(job, { bytes: new Uint8Array([1, 2]) }), "DURQ_INVALID_INPUT", /binary data/);
  await rejectsCode(db.enqueue(job, { buf: Buffer.from("x") }), "DURQ_INVALID_INPUT", /binary data/);
  await rejectsCode(db.enqueue(job, { when: new Date(NaN) }), "DURQ_INVALID_INPUT", /invalid Date/);
  await rejectsCode(db.enqueue(job, "x".repeat(16 * 1024 * 1024 + 1)), "DURQ_INVALID_INPUT", /the limit is/);
  const ok = await db.enqueue(job, { when: new Date(T0) });
  assert.equal((await db.getRun(ok.id)).input.when, new Date(T0).toISOString());
  assert.equal((await db.stats()).pending, 1);
  await db.close();
});
