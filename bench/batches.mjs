#!/usr/bin/env node
// Batch benchmark (`npm run bench:batches`, after `scripts/build.sh`):
// `listActiveBatches(queue)` with 10 active batches while the queue's
// terminal batch history grows from 1k to 1M batches. The bar: at
// most 1.5x from the smallest history to the largest.
//
// bench/batches.rs builds the history with durq's core natively (real
// `enqueueBatch` + `cancelBatch` operations; through wasm a million of them
// would take most of an hour here), times the membership read against a
// state-filtered scan of the queue's batches (what the read would cost
// without `active_batches`), and leaves a copy of the database at each
// size. This script opens each copy with the durq package (wasm in Node,
// Node file VFS) and times `listActiveBatches("q")` against `getBatch(id)`
// (one primary-key read, the baseline measured in the same run) on it.
// It rewrites the batch section of BENCHMARKS.md.
//
//   node bench/batches.mjs [--quick]     (--quick: history up to 100k)

import { open } from "durq";
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { writeSection } from "./section.mjs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "bench", "out");
const { values: args } = parseArgs({ options: { quick: { type: "boolean", default: false } } });
const MAX = args.quick ? 100_000 : 1_000_000;
const CALLS = 2000;
mkdirSync(out, { recursive: true });
const log = (...a) => console.log("[bench:batches]", ...a);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

log(`native: building terminal history up to ${MAX} batches (cargo bench --bench batches)`);
const native = JSON.parse(
  execFileSync("cargo", ["bench", "--quiet", "--bench", "batches", "--", out, String(MAX)], { cwd: root, encoding: "utf8" })
    .trim()
    .split("\n")
    .pop(),
);

const rows = [];
for (const point of native.points) {
  const path = join(out, `batches-${point.history}.db`);
  rmSync(`${path}.lock`, { force: true });
  const db = await open({ path });
  const active = await db.listActiveBatches("q");
  if (active.length !== 10) throw new Error(`expected 10 active batches at ${point.history}, got ${active.length}`);
  const time = async (f) => {
    for (let i = 0; i < 200; i++) await f(); // warm the page cache
    const lat = [];
    for (let i = 0; i < CALLS; i++) {
      const t = performance.now();
      await f();
      lat.push((performance.now() - t) * 1000);
    }
    return median(lat);
  };
  const listUs = await time(() => db.listActiveBatches("q"));
  const getUs = await time(() => db.getBatch(active[4].id));
  await db.close();
  rmSync(path, { force: true });
  rows.push({ ...point, listUs, getUs });
  log({ history: point.history, listUs, getUs, native: point });
}

const first = rows[0];
const last = rows.at(-1);
const fmt = (n) => n.toLocaleString("en-US");
const us = (n) => `${n.toFixed(1)} µs`;
const section = [
  "<!-- batches:start -->",
  "## Batches: `listActiveBatches` against batch history",
  "",
  `Measured ${new Date().toISOString().slice(0, 10)} by \`npm run bench:batches\` (bench/batches.mjs${args.quick ? " --quick" : ""}, bench/batches.rs): 10 active batches in queue \`q\` while the same queue's terminal history grows (each history batch made by a real \`enqueueBatch\` of one run and a \`cancelBatch\`, by the core natively). p50 of ${CALLS} calls (JS) / 200 calls (native) per size.`,
  "",
  "| terminal batches in the queue | `listActiveBatches` (wasm in Node) | `getBatch` (one primary-key read, same run) | ratio list / get | `list_active_batches` natively | state-filtered scan of the queue's batches, natively |",
  "|---|---|---|---|---|---|",
  ...rows.map(
    (r) => `| ${fmt(r.history)} | ${us(r.listUs)} | ${us(r.getUs)} | ${(r.listUs / r.getUs).toFixed(2)} | ${us(r.membershipP50Us)} | ${us(r.stateScanP50Us)} |`,
  ),
  "",
  `From ${fmt(first.history)} to ${fmt(last.history)} terminal batches, \`listActiveBatches\` went from ${us(first.listUs)} to ${us(last.listUs)}: **${(last.listUs / first.listUs).toFixed(2)}x** (the bar is at most 1.5x; natively ${(last.membershipP50Us / first.membershipP50Us).toFixed(2)}x), while a scan of the queue's batches filtered on \`state\` grew ${(last.stateScanP50Us / first.stateScanP50Us).toFixed(0)}x. The read is a primary-key prefix scan of \`active_batches (queue, batch_id)\` plus one primary-key lookup per member (\`EXPLAIN QUERY PLAN\` is checked by tests/batches.rs), so its cost follows the active batches, not the history.`,
  "<!-- batches:end -->",
].join("\n");

writeSection("batches", section);
log("updated BENCHMARKS.md");
console.log(section);
