// Many processes, one database file, with node:cluster: the primary process
// opens ./data/cluster.db first, so it owns the file; it forks WORKERS
// processes that open the same file and become its clients (their calls
// cross a local socket to the primary; their job handlers run in them).
// The primary enqueues RUNS runs and waits for each; every run is handled
// once, by whichever process claimed it, and every process sees the
// completions as events.
//
// PM2 (`pm2 start app.mjs -i 4`) and container replicas that share the
// file's directory and network namespace work the same way: each process
// calls `open({ path })`; the first owns the file, the others are clients,
// and when the owner exits one of them takes over.
//
//   node examples/cluster.mjs [path]      (default ./data/cluster.db)

import cluster from "node:cluster";
import { defineJob, open } from "durq";

const path = process.argv[2] ?? "./data/cluster.db";
const WORKERS = 3;
const RUNS = 30;

const resize = defineJob({
  name: "resize",
  async run(step, { image }) {
    const size = await step.run("measure", () => image.length * 100);
    return { image, size, by: process.pid };
  },
});

if (cluster.isPrimary) {
  const db = await open({ path });
  console.log(`primary ${process.pid}: ${db.role} of ${db.path}`);
  const processes = Array.from({ length: WORKERS }, () => cluster.fork({ DURQ_EXAMPLE_PATH: path }));
  // Wait until every process has opened the file (it says so over IPC).
  await Promise.all(processes.map((p) => new Promise((resolve) => p.once("message", resolve))));
  const seen = new Set();
  db.on("run:completed", (e) => seen.add(e.id));
  const runs = await Promise.all(Array.from({ length: RUNS }, (_, i) => db.enqueue(resize, { image: `img-${i}.png` }, { idempotencyKey: `img-${i}` })));
  const done = await Promise.all(runs.map((r) => db.waitForRun(r.id, { timeoutMs: 60_000 })));
  const byProcess = new Map();
  for (const run of done) byProcess.set(run.output.by, (byProcess.get(run.output.by) ?? 0) + 1);
  console.log(`${done.filter((r) => r.status === "completed").length} of ${RUNS} runs completed; completion events seen here: ${seen.size}`);
  for (const [pid, n] of byProcess) console.log(`  process ${pid} handled ${n}`);
  for (const p of processes) p.disconnect(); // each closes its database and exits
  await Promise.all(processes.map((p) => new Promise((resolve) => p.once("exit", resolve))));
  await db.close();
} else {
  const db = await open({ path: process.env.DURQ_EXAMPLE_PATH });
  console.log(`worker ${process.pid}: ${db.role}`);
  db.worker({ jobs: [resize], concurrency: 4 }).start();
  process.send("ready");
  process.on("disconnect", () => db.close());
}
