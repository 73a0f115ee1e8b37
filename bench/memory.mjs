#!/usr/bin/env node
// Peak memory of enqueueing and processing 1M runs (`npm run bench:memory`,
// after `scripts/build.sh`): one fresh child process and file per build, at
// durq's defaults (a file, synchronous=FULL). The child enqueues RUNS runs
// with `enqueueMany` in calls of 1,000 (2 labels and a ~30-byte input
// each, as in bench/peers.mjs), then processes them with one worker
// (concurrency 16, one checkpointed no-op step per run), and reports its
// peak resident memory (`process.resourceUsage().maxRSS`) with the RSS, V8
// heap and `external` memory (which holds the WebAssembly memory: SQLite's
// page cache and heap, which grows to the largest need and never shrinks)
// at the end of each phase.
//
// With `--before <pkg dir>`, durq as built at an earlier commit is measured
// too, in the same run (see bench/peers.mjs for how to build one).
//
//   node bench/memory.mjs [--runs N] [--before DIR]

import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import os from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { writeSection } from "./section.mjs";
import { fmt } from "./stats.mjs";

const here = fileURLToPath(import.meta.url);
const root = join(dirname(here), "..");
const out = join(root, "bench", "out");
const { values: args } = parseArgs({
  options: {
    runs: { type: "string", default: "1000000" },
    before: { type: "string" },
    child: { type: "string" },
  },
});
const RUNS = Number(args.runs);
if (!Number.isSafeInteger(RUNS) || RUNS < 1000) throw new Error(`--runs must be an integer >= 1000, got ${args.runs}`);
const CHUNK = 1_000;
const MiB = 2 ** 20;

if (args.child !== undefined) {
  const { pkg, path } = JSON.parse(args.child);
  // (RUNS comes from the parent's --runs, passed on below.)
  process.stdout.write(`${JSON.stringify(await measure(pkg, path))}\n`);
  process.exit(0);
}

/** Deletes a database file and its WAL, shared-memory and lock files. */
function removeDb(path) {
  for (const suffix of ["", "-wal", "-shm", ".lock"]) rmSync(`${path}${suffix}`, { force: true });
}

/** The live JS heap, bytes: `heapUsed` right after a full GC (the child runs with --expose-gc). */
function live() {
  globalThis.gc?.();
  return process.memoryUsage().heapUsed;
}

/** One build's figures (in the child process). */
async function measure(pkg, path) {
  const { defineJob, open } = await import(pathToFileURL(join(pkg, "dist", "index.js")).href);
  removeDb(path);
  const db = await open({ path });
  const job = defineJob({ name: "mem", run: async (step, input) => step.run("s", () => input.i) });
  const phase = () => {
    const m = process.memoryUsage();
    return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, live: live() };
  };
  const t0 = performance.now();
  for (let at = 0; at < RUNS; at += CHUNK) {
    const items = [];
    for (let i = at; i < Math.min(RUNS, at + CHUNK); i++)
      items.push({ job, input: { i, path: `/some/where/${i}` }, options: { labels: { tenant: `t${i % 100}`, kind: i % 2 ? "a" : "b" } } });
    await db.enqueueMany(items);
  }
  const enqueued = { ...phase(), ms: performance.now() - t0 };
  const t1 = performance.now();
  const processed = await db.worker({ jobs: [job], concurrency: 16 }).processUntilIdle();
  if (processed !== RUNS) throw new Error(`processed ${processed} of ${RUNS}`);
  const done = { ...phase(), ms: performance.now() - t1 };
  await db.close();
  return { enqueued, processed: done, peak: process.resourceUsage().maxRSS * 1024 };
}

mkdirSync(out, { recursive: true });
const builds = [...(args.before !== undefined ? [["durq before", args.before]] : []), ["durq", join(root, "pkg")]];
const results = [];
for (const [name, pkg] of builds) {
  const line = execFileSync(process.execPath, ["--expose-gc", here, "--runs", String(RUNS), "--child", JSON.stringify({ pkg, path: join(out, "memory.db") })], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  const r = JSON.parse(line.trim().split("\n").pop());
  results.push([name, r]);
  console.error(`${name}: peak RSS ${(r.peak / MiB).toFixed(0)} MiB`);
}
removeDb(join(out, "memory.db"));

const mib = (b) => `${(b / MiB).toFixed(0)} MiB`;
const rate = (ms) => `${fmt(RUNS / (ms / 1000))}/s`;
const rows = results.map(
  ([name, r]) =>
    `| ${name} | **${mib(r.peak)}** | ${mib(r.enqueued.rss)} (heap ${mib(r.enqueued.heapUsed)}, external ${mib(r.enqueued.external)}) | ${mib(r.processed.rss)} (heap ${mib(r.processed.heapUsed)}, external ${mib(r.processed.external)}) | ${rate(r.enqueued.ms)} | ${rate(r.processed.ms)} |`,
);
const section = `<!-- memory:start -->
## Memory: 1M runs enqueued and processed

Measured ${new Date().toISOString().slice(0, 10)} by \`npm run bench:memory\` (bench/memory.mjs) on ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, Node ${process.version}: one fresh process and file per build, ${fmt(RUNS)} runs enqueued by \`enqueueMany\` in calls of ${fmt(CHUNK)} (2 labels, ~30-byte input), then processed by one worker (concurrency 16, one checkpointed step each). "external" includes the WebAssembly memory (SQLite's 8 MiB page cache and its heap), which never shrinks.

| build | peak RSS | after enqueue: RSS | after processing: RSS | enqueue | processing |
|---|---|---|---|---|---|
${rows.join("\n")}
<!-- memory:end -->`;
writeSection("memory", section);
console.log(section);
