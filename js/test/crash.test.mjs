// A crash inside a handler: kill -9 of the worker's process after it
// stored a step. The next open takes the stale lock over and expires the
// dead process's leases; the run is resumed and replays its stored step
// instead of running it again. (kill -9 while enqueueing: kill9.test.mjs.)

import assert from "node:assert/strict";
import { join } from "node:path";
import { after, test } from "node:test";
import { defineJob, ManualClock, open } from "durq";
import { cleanupDirs, startChild, T0, tempDir } from "../test-support/helpers.mjs";

after(cleanupDirs);

test("kill -9 inside a handler: the run is resumed and its stored steps are not run again", async () => {
  const path = join(tempDir(), "crash-step.db");
  const { child, next, exited } = startChild("step", path);
  assert.equal(await next(), "a-ran");
  assert.equal(await next(), "waiting 42");
  child.kill("SIGKILL");
  assert.equal((await exited).signal, "SIGKILL");

  const calls = [];
  const job = defineJob({
    name: "crash-steps",
    retry: { maxAttempts: 3 },
    async run(step, _input) {
      const a = await step.run("a", () => {
        calls.push("a");
        return -1;
      });
      const b = await step.run("b", () => {
        calls.push("b");
        return a * 2;
      });
      return { a, b, attempt: step.attempt };
    },
  });
  // Reopened before the dead worker's lease (T0 + 1000) would lapse: the
  // lock file proves that worker gone, so its lease is expired at open.
  const clock = new ManualClock(T0 + 500);
  const db = await open({ path }, { clock });
  const [run0] = (await db.listRuns({ job })).runs;
  assert.deepEqual([run0.status, run0.attempt, run0.leaseExpiresAt], ["leased", 1, T0 + 500]);
  const events = [];
  db.on("run:lease-expired", (e) => events.push(e));
  const worker = db.worker({ jobs: [job], leaseMs: 1000 });
  assert.equal(await worker.processUntilIdle(), 1);
  assert.deepEqual(events, [{ id: run0.id, status: "pending" }]);
  const run = await db.getRun(run0.id);
  assert.deepEqual([run.status, run.attempt, run.output], ["completed", 2, { a: 42, b: 84, attempt: 2 }]);
  assert.deepEqual(calls, ["b"], "step a ran before the crash and is replayed");
  const steps = await db.getSteps(run0.id);
  assert.deepEqual(
    steps.map((s) => [s.name, s.output, s.attempt]),
    [
      ["a", 42, 1],
      ["b", 84, 2],
    ],
  );
  assert.deepEqual(await db.integrityCheck(), ["ok"]);
  await db.close();
});
