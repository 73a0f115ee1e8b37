#!/usr/bin/env node
// Search and import benchmark (`npm run bench:search`, after
// `scripts/build.sh`), on file databases with synchronous=NORMAL (an
// import's chunks need not each survive power loss: it can be run again
// with onConflict: "skip"):
//
// 1. Importing N runs (default 1M, 1000 per chunk) with index maintenance
//    deferred (triggers dropped, one rebuild at the end) against the same
//    import with the triggers live, runs/s and the ratio, same run; first
//    natively (bench/search.rs, which also times the import with no index
//    work at all: the floor), then through the package.
// 2. Where deferral starts to pay: imports of 1k to 20k runs into an empty
//    database and into one already holding 100k runs, both ways (the
//    rebuild re-indexes the stored runs too).
// 3. Search latency at N runs, p50/p99 over 200 calls each: a rare word, a
//    common word (first page of 50, newest first), the common word by
//    relevance, a label filter plus search, and the label filter alone as
//    the baseline of the same run.
//
// It rewrites the search section of BENCHMARKS.md.
//
//   node bench/search.mjs [--quick]     (--quick: 100k runs)

import { open } from "durq";
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { writeSection } from "./section.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "bench", "out");
const { values: args } = parseArgs({ options: { quick: { type: "boolean", default: false } } });
const N = args.quick ? 100_000 : 1_000_000;
const T0 = Date.UTC(2026, 0, 1);
mkdirSync(out, { recursive: true });
const log = (...a) => console.log("[bench:search]", ...a);
const fmt = (n) => Math.round(n).toLocaleString("en");
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];
const fresh = (name) => {
  const p = join(out, name);
  for (const suffix of ["", "-wal", ".lock"]) rmSync(p + suffix, { force: true });
  return p;
};

/** A vocabulary of 5000 pseudo-words; word i % 5000 of run i is rare, "invoice" is in every 4th run. */
const VOCAB = Array.from({ length: 5000 }, (_, i) => `w${((i * 7919) % 5000).toString(36)}x`);
function* runs(n, from = 0) {
  for (let i = from; i < from + n; i++) {
    const failed = i % 10 === 0;
    yield {
      job: `job-${i % 20}`,
      input: { customer: `customer ${i % 5000}`, note: `${VOCAB[i % 5000]} ${VOCAB[(i * 31) % 5000]} ${i % 4 === 0 ? "invoice" : "receipt"}`, amount: i },
      labels: { tenant: `t${i % 100}` },
      status: failed ? "failed" : "completed",
      attempt: 1,
      createdAt: T0 + i,
      output: failed ? null : { message: `sent to customer ${i % 5000}` },
      error: failed ? { name: "Error", message: `upstream ${i % 20 === 0 ? "timeout" : "refused"} after 30 s` } : null,
    };
  }
}

async function timedImport(db, n, deferIndex, from = 0) {
  const t = performance.now();
  const r = await db.importRuns(runs(n, from), { deferIndex, chunkSize: 1000 });
  if (r.imported !== n || r.deferred !== deferIndex) throw new Error(`import: ${JSON.stringify(r)}`);
  return (performance.now() - t) / 1000;
}

// 1. N runs, deferred vs live -------------------------------------------------
log(`native: cargo bench --bench search (${fmt(N)} runs, three imports)`);
const native = JSON.parse(
  execFileSync("cargo", ["bench", "--quiet", "--bench", "search", "--", out, String(N)], { cwd: root, encoding: "utf8" })
    .trim()
    .split("\n")
    .pop(),
);
log(
  `  live ${native.liveS.toFixed(1)} s, deferred ${native.deferredS.toFixed(1)} s (rebuild ${native.rebuildS.toFixed(1)} s), no index work ${native.floorS.toFixed(1)} s`,
);
const deferredPath = fresh("search-deferred.db");
const db = await open({ path: deferredPath }, { synchronous: "normal" });
log(`import ${fmt(N)} runs, index deferred`);
const deferredS = await timedImport(db, N, true);
log(`  ${deferredS.toFixed(1)} s, ${fmt(N / deferredS)} runs/s`);
const live = await open({ path: fresh("search-live.db") }, { synchronous: "normal" });
log(`import ${fmt(N)} runs, triggers live`);
const liveS = await timedImport(live, N, false);
log(`  ${liveS.toFixed(1)} s, ${fmt(N / liveS)} runs/s`);
await live.close();
rmSync(join(out, "search-live.db"), { force: true });

// 3. Search latency at N (on the deferred database) ---------------------------
async function latency(filter, calls = 200) {
  const times = [];
  let hits = 0;
  for (let i = 0; i < calls; i++) {
    const f = typeof filter === "function" ? filter(i) : filter;
    const t = performance.now();
    const page = await db.listRuns(f);
    times.push((performance.now() - t) * 1000);
    hits = page.runs.length;
  }
  return { p50: pct(times, 0.5), p99: pct(times, 0.99), hits };
}
const queries = [
  ["a rare word (1 run in 5000: 200 at 1M), first page of 50", (i) => ({ search: VOCAB[(i * 13) % 5000], limit: 50 })],
  ["a common word (1 run in 4), first page of 50, newest first", { search: "invoice", limit: 50 }],
  ["the common word by relevance (bm25 ranks every match), first page of 50", { search: "invoice", order: "relevance", limit: 50 }],
  ["two words, one rare and one in every run, by relevance", (i) => ({ search: `${VOCAB[(i * 13) % 5000]} customer`, order: "relevance", limit: 50 })],
  ["label + search: `tenant` (1 in 100) and `timeout` (1 in 20)", (i) => ({ labels: { tenant: `t${(i * 20) % 100}` }, search: "timeout", limit: 50 })],
  ["baseline: the label filter alone, first page of 50", (i) => ({ labels: { tenant: `t${i % 100}` }, limit: 50 })],
  ["baseline: getRun by id", null],
];
const rows = [];
const someId = (await db.listRuns({ limit: 1 })).runs[0].id;
for (const [what, filter] of queries) {
  let r;
  if (filter === null) {
    const times = [];
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      await db.getRun(someId);
      times.push((performance.now() - t) * 1000);
    }
    r = { p50: pct(times, 0.5), p99: pct(times, 0.99), hits: 1 };
  } else r = await latency(filter);
  log(`${what}: p50 ${r.p50.toFixed(0)} µs, p99 ${r.p99.toFixed(0)} µs (${r.hits} runs)`);
  rows.push({ what, ...r });
}
await db.close();
rmSync(deferredPath, { force: true });

// 2. Threshold -------------------------------------------------------------
const sizes = [1000, 2000, 5000, 10_000, 20_000];
const threshold = [];
for (const existing of [0, 100_000]) {
  for (const n of sizes) {
    const row = { existing, n };
    for (const deferIndex of [true, false]) {
      const d = await open({ path: fresh("search-threshold.db") }, { synchronous: "normal" });
      if (existing > 0) await d.importRuns(runs(existing, n), { deferIndex: true, chunkSize: 1000 });
      row[deferIndex ? "deferredS" : "liveS"] = await timedImport(d, n, deferIndex);
      await d.close();
    }
    log(`threshold: ${fmt(n)} into ${fmt(existing)}: deferred ${(row.deferredS * 1000).toFixed(0)} ms, live ${(row.liveS * 1000).toFixed(0)} ms`);
    threshold.push(row);
  }
}
rmSync(join(out, "search-threshold.db"), { force: true });

const us = (x) => (x >= 10_000 ? `${(x / 1000).toFixed(1)} ms` : `${x.toFixed(0)} µs`);
const section = [
  "<!-- search:start -->",
  "## Search and import (`npm run bench:search`)",
  "",
  `File databases, synchronous=NORMAL, runs with a job name, an input of three words out of 5000 plus a customer, a label \`tenant\` (100 values), an output or an error message. Measured ${new Date().toISOString().slice(0, 10)}, Node ${process.version}.`,
  "",
  `| import of ${fmt(N)} runs, 1000 per chunk | natively (durq core, no wasm) | through the package (wasm in Node) |`,
  "|---|---|---|",
  `| search index triggers live (baseline, same run) | ${native.liveS.toFixed(1)} s, ${fmt(N / native.liveS)} runs/s | ${liveS.toFixed(1)} s, ${fmt(N / liveS)} runs/s |`,
  `| search index deferred (triggers dropped, one rebuild at the end) | ${native.deferredS.toFixed(1)} s, ${fmt(N / native.deferredS)} runs/s | ${deferredS.toFixed(1)} s, ${fmt(N / deferredS)} runs/s |`,
  `| **deferred vs live** | **${(native.liveS / native.deferredS).toFixed(2)}x** | **${(liveS / deferredS).toFixed(2)}x** |`,
  `| of which the rebuild | ${native.rebuildS.toFixed(1)} s | |`,
  `| floor: the import with no search index work at all (triggers dropped, no rebuild) | ${native.floorS.toFixed(1)} s | |`,
  `| index work per run: live triggers / deferred rebuild | ${(((native.liveS - native.floorS) / N) * 1e6).toFixed(1)} µs / ${((native.rebuildS / N) * 1e6).toFixed(1)} µs = **${((native.liveS - native.floorS) / native.rebuildS).toFixed(1)}x** | |`,
  "",
  "Deferral gains far less than the 3x the issue aimed at, because live maintenance is no longer row by row. The first version (an external-content index written by per-row triggers) made FTS5 write a segment at every statement savepoint: live index work was about 24 µs a run against 6 µs rebuilt, and it cut native enqueue throughput 2.7x (measured while building, same-run ratios). Now the triggers only queue rowids, and the queue is indexed in bulk once it reaches 4096 runs or before a search, so the live path costs less than 2x the rebuild, and the rest of an import (parsing, checks, seven b-tree inserts a run: the floor above) dominates both.",
  "",
  `Search at ${fmt(N)} runs, through the package (200 calls each):`,
  "",
  "| query | p50 | p99 | runs returned |",
  "|---|---|---|---|",
  ...rows.map((r) => `| ${r.what} | ${us(r.p50)} | ${us(r.p99)} | ${r.hits} |`),
  "",
  "Where deferral starts to pay (import time, deferred / live; below 1 deferral wins):",
  "",
  "| runs imported | into an empty database | into one holding 100,000 runs |",
  "|---|---|---|",
  ...sizes.map((n) => {
    const cell = (existing) => {
      const r = threshold.find((x) => x.n === n && x.existing === existing);
      return `${(r.deferredS * 1000).toFixed(0)} / ${(r.liveS * 1000).toFixed(0)} ms = ${(r.deferredS / r.liveS).toFixed(2)}`;
    };
    return `| ${fmt(n)} | ${cell(0)} | ${cell(100_000)} |`;
  }),
  "",
  "A page of search results newest first costs about what a page of a label filter costs: FTS5 yields matches in descending rowid order, and each is one rowid lookup. Relevance order has FTS5 rank every match (bm25) before the first page, so it grows with the matches: fine for a rare word, hundreds of ms for a word in a quarter of a million runs.",
  "<!-- search:end -->",
].join("\n");
writeSection("search", section);
log("BENCHMARKS.md updated");
console.log(section);
