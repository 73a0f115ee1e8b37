#!/usr/bin/env node
// durq benchmarks: one command (`npm run bench`, after `scripts/build.sh`)
// measures everything and rewrites BENCHMARKS.md.
//
// The machine is shared and noisy, so every durq figure is printed beside
// baselines measured in the same run: the same rows written by native
// rusqlite (bench/native.rs) and by better-sqlite3 (raw INSERTs, no queue
// logic), as ratios. Not a test: nothing here fails on a slow machine.
//
//   node bench/run.mjs [--quick]     (--quick: 10x smaller, for a smoke run)

import { open, defineJob } from "durq";
import { execFileSync, execSync } from "node:child_process";
import { mkdirSync, rmSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createRequire } from "node:module";
import os from "node:os";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "bench", "out");
const { values: args } = parseArgs({ options: { quick: { type: "boolean", default: false } } });
const scale = args.quick ? 0.1 : 1;
const N = Math.round(100_000 * scale); // enqueue rows
const BIG = Math.round(1_000_000 * scale); // "1M queued"
const SMALL = Math.round(10_000 * scale); // "10k queued"
const PROCESS = SMALL; // runs processed per measurement (all of the small queue)
mkdirSync(out, { recursive: true });

const results = [];
const log = (...a) => console.log("[bench]", ...a);
function fresh(name) {
  const p = join(out, name);
  for (const s of ["", "-wal", "-shm", ".lock"]) rmSync(p + s, { force: true });
  return p;
}
const labelsOf = (i) => ({ tenant: `t${i % 100}`, kind: i % 2 ? "a" : "b" });
const input = (i) => ({ path: `/some/where/${i}/package.json`, size: 1234 });
const rate = (n, ms) => Math.round((n / ms) * 1000);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// --- Baselines -------------------------------------------------------------
log("native rusqlite baseline (cargo bench --bench native)");
const native = JSON.parse(
  execFileSync("cargo", ["bench", "--quiet", "--bench", "native", "--", out, String(N)], { cwd: root, encoding: "utf8" })
    .trim()
    .split("\n")
    .pop(),
);

async function betterSqlite3Baseline() {
  const require = createRequire(import.meta.url);
  let Database;
  try {
    Database = require("better-sqlite3");
    new Database(":memory:").close();
  } catch {
    log("building better-sqlite3 from source (npm rebuild; npm 11 skips install scripts)");
    execSync("npm rebuild better-sqlite3 --foreground-scripts", { cwd: root, stdio: "inherit" });
    Database = require("better-sqlite3");
  }
  const path = fresh("better-sqlite3.db");
  (await open({ path })).close(); // the durq schema, same indexes
  await new Promise((r) => setTimeout(r, 10));
  rmSync(`${path}.lock`, { force: true });
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.pragma("locking_mode = EXCLUSIVE");
  // The rows themselves, without the search index (priced by bench/native.rs).
  db.exec("DROP TRIGGER IF EXISTS runs_fts_insert; DROP TRIGGER IF EXISTS runs_fts_update; DROP TRIGGER IF EXISTS runs_fts_delete;");
  const run = db.prepare(
    "INSERT INTO runs (id, queue, job, status, priority, run_at, created_at, updated_at, input, labels, max_attempts, backoff) VALUES (?, 'default', 'scan', 'pending', 0, ?, ?, ?, ?, ?, 3, '{}')",
  );
  const lab = db.prepare("INSERT INTO run_labels (key, value, run_id) VALUES (?, ?, ?)");
  const base = 1_700_000_000_000;
  const batch = db.transaction((from, to) => {
    for (let i = from; i < to; i++) {
      const id = `${(base + i).toString(16).padStart(12, "0")}-0000-7000-8000-${i.toString(16).padStart(12, "0")}`;
      const l = labelsOf(i);
      run.run(id, base, base, base, JSON.stringify(input(i)), JSON.stringify(l));
      lab.run("tenant", l.tenant, id);
      lab.run("kind", l.kind, id);
    }
  });
  const t = performance.now();
  for (let i = 0; i < N; i += 1000) batch(i, Math.min(N, i + 1000));
  const ms = performance.now() - t;
  db.close();
  return rate(N, ms);
}
log("better-sqlite3 baseline");
const bsqlite = await betterSqlite3Baseline();
log({ native, bsqlite });

// --- durq ------------------------------------------------------------------
const noop = defineJob({
  name: "noop",
  async run(step, input) {
    return step.run("only", () => input.i ?? 0);
  },
});

log(`enqueue: ${N} single enqueue calls issued concurrently, 2 labels each, file storage`);
{
  const db = await open({ path: fresh("enqueue.db") });
  const t = performance.now();
  const ps = [];
  for (let i = 0; i < N; i++) ps.push(db.enqueue(noop, input(i), { labels: labelsOf(i) }));
  await Promise.all(ps);
  const ms = performance.now() - t;
  results.push({ what: `enqueue (${N} concurrent single calls, 2 labels, file)`, value: rate(N, ms), unit: "runs/s", baseline: true });
  // listRuns by one label at N runs.
  const lat = [];
  for (let q = 0; q < 200; q++) {
    const t0 = performance.now();
    await db.listRuns({ labels: { tenant: `t${q % 100}` }, limit: 50 });
    lat.push(performance.now() - t0);
  }
  results.push({ what: `listRuns by one label, limit 50, at ${N} runs (p50)`, value: +median(lat).toFixed(3), unit: "ms" });
  await db.close();
}

log(`enqueueMany: ${N} runs in calls of 10 000`);
{
  const db = await open({ path: fresh("enqueue-many.db") });
  const t = performance.now();
  for (let i = 0; i < N; i += 10_000) {
    const items = [];
    for (let j = i; j < Math.min(N, i + 10_000); j++) items.push({ job: noop, input: input(j), options: { labels: labelsOf(j) } });
    await db.enqueueMany(items);
  }
  const ms = performance.now() - t;
  results.push({ what: `enqueueMany (${N} runs, 10k per call, 2 labels, file)`, value: rate(N, ms), unit: "runs/s", baseline: true });
  await db.close();
}

async function processing(queued) {
  const db = await open({ path: fresh(`process-${queued}.db`) });
  for (let i = 0; i < queued; i += 10_000) {
    const items = [];
    for (let j = i; j < Math.min(queued, i + 10_000); j++) items.push({ job: noop, input: { i: j }, options: { labels: labelsOf(j) } });
    await db.enqueueMany(items);
  }
  const worker = db.worker({ jobs: [noop], concurrency: 100 });
  let done = 0;
  const finished = new Promise((resolve) => {
    db.on("run:completed", () => {
      if (++done === PROCESS) resolve();
    });
  });
  const t = performance.now();
  worker.start();
  await finished;
  const ms = performance.now() - t;
  await worker.stop();
  const lat = [];
  for (let q = 0; q < 200; q++) {
    const t0 = performance.now();
    await db.listRuns({ labels: { tenant: `t${q % 100}` }, limit: 50 });
    lat.push(performance.now() - t0);
  }
  await db.close();
  return { rate: rate(PROCESS, ms), listP50: median(lat) };
}
log(`processing ${PROCESS} runs of a one-step job, ${SMALL} queued`);
const small = await processing(SMALL);
log(`processing ${PROCESS} runs of a one-step job, ${BIG} queued (filling takes a while)`);
const big = await processing(BIG);
results.push({ what: `process ${PROCESS} one-step no-op runs, ${SMALL} queued (concurrency 100)`, value: small.rate, unit: "runs/s", process: true });
results.push({ what: `process ${PROCESS} one-step no-op runs, ${BIG} queued (concurrency 100)`, value: big.rate, unit: "runs/s", process: true });
results.push({ what: `processing rate at ${BIG} queued / at ${SMALL} queued`, value: +(big.rate / small.rate).toFixed(2), unit: "ratio (1.0 = flat)" });
results.push({ what: `listRuns by one label, limit 50, at ${BIG} runs (p50)`, value: +big.listP50.toFixed(3), unit: "ms" });

const peak = process.resourceUsage().maxRSS * 1024;
const wasm = readFileSync(join(root, "pkg", "wasm", "durq_bg.wasm"));

// --- Report ----------------------------------------------------------------
const fmt = (n) => n.toLocaleString("en-US");
const lines = [];
lines.push("# Benchmarks", "");
lines.push(
  `Measured ${new Date().toISOString().slice(0, 10)} by \`npm run bench\` (bench/run.mjs${args.quick ? " --quick" : ""}) on ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}.`,
);
lines.push("The machine is shared and noisy: read the ratios, which compare figures taken in the same run, rather than the absolute numbers.", "");
lines.push(
  "Baselines write the same rows durq writes for one enqueue (a `runs` row and two `run_labels` rows, the same schema and indexes, WAL, `synchronous=FULL`, 1000 rows per transaction) with no queue logic and no full-text search index:",
  "",
);
lines.push(`- native rusqlite (bench/native.rs): **${fmt(native.rawRusqliteRowsPerSec)} rows/s**`);
lines.push(`- better-sqlite3 in Node: **${fmt(bsqlite)} rows/s**`);
lines.push(
  `- durq's core called natively (Store::apply, same batches; no wasm, no JS): **${fmt(native.nativeCoreEnqueuePerSec)} runs/s** enqueued, **${fmt(native.nativeCoreProcessPerSec)} runs/s** processed (claim 100, then their step and completion in one commit)`,
);
lines.push(
  `- the same with the full-text search index maintenance deferred (no index work): ${fmt(native.noIndexEnqueuePerSec)} runs/s enqueued, ${fmt(native.noIndexProcessPerSec)} runs/s processed, so keeping runs searchable costs **${(100 * (1 - native.nativeCoreEnqueuePerSec / native.noIndexEnqueuePerSec)).toFixed(0)}%** of enqueue and **${(100 * (1 - native.nativeCoreProcessPerSec / native.noIndexProcessPerSec)).toFixed(0)}%** of processing throughput`,
  "",
);
lines.push("| measurement | durq (wasm in Node) | vs native rusqlite rows | vs better-sqlite3 rows | vs durq's core natively |", "|---|---|---|---|---|");
for (const r of results) {
  const ratio = (b) => (r.baseline ? `${(r.value / b).toFixed(2)}x` : "");
  const core = r.baseline ? native.nativeCoreEnqueuePerSec : r.process ? native.nativeCoreProcessPerSec : undefined;
  lines.push(
    `| ${r.what} | ${fmt(r.value)} ${r.unit} | ${ratio(native.rawRusqliteRowsPerSec)} | ${ratio(bsqlite)} | ${core ? `${(r.value / core).toFixed(2)}x` : ""} |`,
  );
}
lines.push("", `Peak memory (max RSS) of the benchmark process: ${(peak / 2 ** 20).toFixed(0)} MiB.`);
lines.push(
  `Wasm module (pkg/wasm/durq_bg.wasm, after wasm-opt -Oz): ${fmt(wasm.length)} bytes raw, ${fmt(gzipSync(wasm, { level: 9 }).length)} bytes gzip.`,
  "",
);
const notes = join(root, "bench", "NOTES.md");
if (existsSync(notes)) lines.push(readFileSync(notes, "utf8"));
// Keep the sections written by bench/batches.mjs, bench/alarms.mjs,
// bench/search.mjs, bench/effects.mjs, bench/browser.mjs and bench/workerd.mjs
// (`npm run bench:batches`, `bench:alarms`, `bench:search`, `bench:effects`,
// `bench:browser`, `bench:workerd`).
const previous = existsSync(join(root, "BENCHMARKS.md")) ? readFileSync(join(root, "BENCHMARKS.md"), "utf8") : "";
for (const name of ["batches", "alarms", "search", "effects", "browser", "workerd"]) {
  const section = previous.match(new RegExp(`<!-- ${name}:start -->[\\s\\S]*<!-- ${name}:end -->`));
  if (section) lines.push(section[0], "");
}
writeFileSync(join(root, "BENCHMARKS.md"), `${lines.join("\n")}\n`);
log("wrote BENCHMARKS.md");
console.log(lines.join("\n"));
