// The Node-facing smoke test, run under Deno and Bun by js/test/runtimes.test.mjs
// (which resolves "durq" to the built package through node_modules, as a user's
// install would). Prints one JSON line of observations.
// Usage: smoke.mjs memory | smoke.mjs file <dir>
import { join } from "node:path";
import { defineJob, open } from "durq";

const double = defineJob({
  name: "double",
  async run(step, input) {
    const twice = await step.run("twice", () => input.n * 2);
    return { twice, runtime: typeof Deno === "object" ? "deno" : typeof Bun === "object" ? "bun" : "node" };
  },
});

/** Resolves on the first delivery of the namespace's alarm of `actor`. */
function firstAlarm(db, ns) {
  return new Promise((resolve) => {
    db.onAlarm(ns, (actorId, { retryCount }) => resolve({ actorId, retryCount }));
  });
}

const [mode, dir] = process.argv.slice(2);
const out = { mode };
if (mode === "memory") {
  const db = await open({ memory: true });
  const { id } = await db.enqueue(double, { n: 21 });
  out.processed = await db.worker({ jobs: [double] }).processUntilIdle();
  const run = await db.getRun(id);
  out.run = { status: run.status, output: run.output, attempt: run.attempt };
  await db.alarms("sessions").set("s1", Date.now());
  out.alarm = await firstAlarm(db, "sessions");
  out.alarmAfter = await db.alarms("sessions").get("s1");
  await db.close();
} else if (mode === "file") {
  const path = join(dir, "smoke.db");
  let db = await open({ path });
  const { id } = await db.enqueue(double, { n: 5 }, { labels: { tenant: "acme" } });
  await db.alarms("sessions").set("s2", Date.now());
  await db.close();
  db = await open({ path });
  const before = await db.getRun(id);
  out.reopened = { status: before.status, labels: before.labels };
  out.processed = await db.worker({ jobs: [double] }).processUntilIdle();
  const run = await db.getRun(id);
  out.run = { status: run.status, output: run.output };
  out.alarm = await firstAlarm(db, "sessions");
  await db.close();
  db = await open({ path });
  out.afterReopen = { stats: await db.stats(), alarm: await db.alarms("sessions").get("s2"), integrity: await db.integrityCheck() };
  await db.close();
}
console.log(JSON.stringify(out));
