// Enqueue and processing inside a Durable Object on local workerd (the npm
// package's binary), on the object's own storage ({ durableObject:
// ctx.storage }) against { memory: true } in the same object and request,
// alternating which goes first over ROUNDS rounds; medians and the ratio
// Durable Object / memory. Rewrites its section of BENCHMARKS.md.
// Usage: node bench/workerd.mjs [runs per measurement, default 3000]
import { fileURLToPath } from "node:url";
import { startWorker } from "../js/test-support/workerd.mjs";
import { writeSection } from "./section.mjs";

const N = Number(process.argv[2] ?? 3000);
const ROUNDS = 5;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const w = await startWorker({
  entry: fileURLToPath(new URL("./workerd/bench-object.js", import.meta.url)),
  durableObjects: [{ className: "BenchObject", binding: "BENCH" }],
});
const rounds = [];
try {
  for (let r = 0; r < ROUNDS; r++) rounds.push(await w.json(`/?n=${N}&round=${r}`));
} finally {
  await w.dispose();
}

const rows = [];
for (const metric of ["enqueue", "enqueueMany", "process"]) {
  const doRate = median(rounds.map((x) => x.durableObject[metric]));
  const memRate = median(rounds.map((x) => x.memory[metric]));
  rows.push(`| ${metric} | ${Math.round(doRate).toLocaleString("en")} | ${Math.round(memRate).toLocaleString("en")} | ${(doRate / memRate).toFixed(2)} |`);
}
const bytes = median(rounds.map((x) => x.databaseBytes ?? 0));
const body = [
  "<!-- workerd:start -->",
  "## In a Cloudflare Durable Object: its storage against memory (`node bench/workerd.mjs`)",
  "",
  `${N.toLocaleString("en")} runs per measurement, ${ROUNDS} rounds (a fresh object each, the order of the two databases alternating), medians in runs/s; times from \`Date.now()\` inside workerd.`,
  "`enqueue`: that many `db.enqueue` calls in flight together (group commit); `enqueueMany`: chunks of 500; `process`: a worker with concurrency 16 and a no-op handler, `processUntilIdle()`.",
  "",
  "| operation | Durable Object storage | `{ memory: true }` | ratio |",
  "|---|---:|---:|---:|",
  ...rows,
  "",
  `The object's SQLite database after a round: ${bytes ? `${(bytes / 1e6).toFixed(1)} MB (\`ctx.storage.sql.databaseSize\`, durq's pages as KV values)` : "not reported"}. Local workerd on this shared 2-core machine, storage on local disk: not Cloudflare's production, where storage writes are replicated before the output gate opens.`,
  `Samples (runs/s, by round): ${["enqueue", "enqueueMany", "process"].map((m) => `${m} DO ${rounds.map((x) => Math.round(x.durableObject[m])).join("/")}, memory ${rounds.map((x) => Math.round(x.memory[m])).join("/")}`).join("; ")}.`,
  "<!-- workerd:end -->",
].join("\n");
writeSection("workerd", body);
console.log(body);
