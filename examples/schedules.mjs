// Cron schedules, catch-up after downtime, a paused queue and a time limit.
//
//   node examples/schedules.mjs [path]     (after scripts/example.sh)
//
// A "heartbeat" schedule fires every 2 seconds (a seconds field) and a
// nightly one at 03:00 in Europe/Berlin. The worker runs the heartbeats;
// after three of them the queue is paused: slots keep firing and their runs
// wait, then the queue is resumed and they run. Run it again: the slots that
// came due while it was not running are caught up ("all"), each once.

import { defineJob, open } from "durq";

const path = process.argv[2] ?? "./data/schedules.db";
const db = await open({ path });
const time = (ms) => new Date(ms).toISOString().slice(11, 19);
// Listen before anything else: slots missed while the database was closed fire right after open().
db.on("schedule:fired", ({ scheduleId, slotAt, created }) => console.log(`fired  ${scheduleId} slot ${time(slotAt)}${created ? "" : " (already there)"}`));

const heartbeat = defineJob({
  name: "heartbeat",
  timeoutMs: 5_000, // a stuck attempt fails with DURQ_TIMEOUT and is retried
  async run(step, input) {
    const seen = await step.run("count", async () => (await db.stats()).completed + 1);
    return { ...input, seen };
  },
});
const nightly = defineJob({ name: "nightly-report", run: () => "report" });

// Upserts: calling them at every start keeps each schedule's next slot.
await db.schedule("heartbeat", { cron: "*/2 * * * * *", job: heartbeat, input: { from: "cron" }, catchUp: "all" });
const report = await db.schedule("nightly", { cron: "0 3 * * *", timezone: "Europe/Berlin", job: nightly });
console.log(`nightly report next at ${new Date(report.nextAt).toISOString()} (03:00 in Berlin)`);

let completed = 0;
let resume;
const paused = new Promise((r) => (resume = r));
db.on("run:completed", ({ output }) => {
  completed++;
  console.log(`ran    heartbeat #${output.seen}`);
  if (completed === 3) resume();
});

const worker = db.worker({ jobs: [heartbeat, nightly] });
worker.start();
await paused;
await db.pauseQueue("default");
console.log("paused the default queue: slots still fire, their runs wait");
let waiting = 0;
await new Promise((resolve) => {
  const off = db.on("schedule:fired", () => {
    if (++waiting === 2) {
      off();
      resolve();
    }
  });
});
const [q] = await db.listQueues();
console.log(`queue ${q.name}: paused=${q.paused}, ${q.counts.pending} pending, ${q.counts.completed} completed`);
await db.resumeQueue("default");
console.log("resumed");
await new Promise((resolve) => {
  const off = db.on("run:completed", async () => {
    if ((await db.listQueues())[0].counts.pending === 0) {
      off();
      resolve();
    }
  });
});
await worker.stop();
const s = await db.getSchedule("heartbeat");
console.log(`done: ${(await db.stats()).completed} heartbeats stored; next slot ${time(s.nextAt)}; run me again to catch up the slots missed meanwhile`);
await db.close();
