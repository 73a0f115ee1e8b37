// A process of the multi-process tests (js/test/shared-processes.test.mjs):
//   node proc.mjs work <db> <doneFile>         runs workers of job "t" until killed or stdin ends
//   node proc.mjs enqueue <db> <n> <ackFile>   enqueues n runs of "t" (idempotency keys k0..), acknowledging each id in ackFile
//   node proc.mjs hold <db> [exclusive]        opens the file and holds it until stdin ends
//   node proc.mjs hang <db>                    runs a worker of job "h", whose handler never ends (600 s leases)
// Each prints one JSON line when it has opened the file: {"ready":true,"role":…,"pid":…}.
import { appendFileSync } from "node:fs";
import { defineJob, isDurqError, open } from "../../../pkg/dist/index.js";

const [role, path, ...rest] = process.argv.slice(2);
const t = defineJob({
  name: "t",
  async run(step, input) {
    appendFileSync(doneFile, `${step.runId} ${step.attempt} ${process.pid}\n`);
    const a = await step.run("a", async () => input.i * 2);
    await new Promise((r) => setImmediate(r));
    return a + 1;
  },
});
let doneFile = "/dev/null";
const h = defineJob({ name: "h", run: () => new Promise(() => undefined) });

const db = await open({ path }, { exclusive: role === "hold" && rest[0] === "exclusive", ownerTimeoutMs: 5000 });
db.on("error", () => undefined); // a change of owner is reported as an error event; the test checks outcomes
console.log(JSON.stringify({ ready: true, role: db.role, pid: process.pid }));
process.stdin.on("end", () => db.close().then(() => process.exit(0)));
process.stdin.resume();

if (role === "work") {
  doneFile = rest[0];
  db.worker({ jobs: [t], concurrency: 4, leaseMs: 60_000 }).start();
} else if (role === "hang") {
  db.worker({ jobs: [h], leaseMs: 600_000 }).start();
} else if (role === "enqueue") {
  const n = Number(rest[0]);
  const ackFile = rest[1];
  for (let i = 0; i < n; i += 10) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 10); j++) batch.push(j);
    for (;;) {
      try {
        const rs = await Promise.all(batch.map((j) => db.enqueue(t, { i: j }, { idempotencyKey: `k${j}` })));
        appendFileSync(ackFile, rs.map((r) => `${r.id}\n`).join(""));
        break;
      } catch (e) {
        // The owner changed under the call: retry (the idempotency key makes it safe).
        if (!isDurqError(e, "DURQ_OWNER_CHANGED")) throw e;
      }
    }
  }
  console.log(JSON.stringify({ enqueued: n }));
}
