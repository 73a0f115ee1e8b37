#!/usr/bin/env node
// The Durable Object benchmark: enqueue and processing throughput of durq
// inside one Durable Object on local workerd (the npm package's binary,
// through js/test-support/workerd.mjs, storage on local disk), on the
// object's own storage (open({ durableObject: ctx.storage })) against
// { memory: true } opened in the same object, alternating which goes first,
// a fresh object per round after a warm-up round; medians and the ratio
// Durable Object / memory. The object is bench/workerd/bench-object.js.
// Rewrites the "workerd" section of BENCHMARKS.md. Not a test: nothing here
// fails on a slow machine.
//
//   node bench/workerd.mjs [--quick] [--runs N] [--rounds N]     (after scripts/build.sh)

import { execFileSync } from "node:child_process";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startWorker, WORKERD } from "../js/test-support/workerd.mjs";
import { writeSection } from "./section.mjs";

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    runs: { type: "string", default: "5000" },
    rounds: { type: "string", default: "5" },
  },
});
const N = args.quick ? 500 : Number(args.runs);
const ROUNDS = args.quick ? 1 : Number(args.rounds);
const KINDS = ["durableObject", "memory"];
const PHASES = ["enqueue", "enqueueMany", "process"];

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (n) => Math.round(n).toLocaleString("en-US");

const began = performance.now();
const w = await startWorker({
  entry: fileURLToPath(new URL("./workerd/bench-object.js", import.meta.url)),
  durableObjects: [{ className: "BenchObject", binding: "BENCH" }],
});

/** One phase on database `kind` of object `object`: the object's report plus `outsideMs`, the request timed from here. */
async function phase(object, kind, name, n = 0, counted = false) {
  const t = performance.now();
  const r = await w.json(`/phase?object=${object}&db=${kind}&phase=${name}&n=${n}${counted ? "&counted" : ""}`);
  return { ...r, outsideMs: performance.now() - t };
}

/** Every phase of both databases in object `object`, `first` first; `counted`: the storage calls are counted. */
async function round(object, n, first, counted = false) {
  const result = {};
  for (const kind of first === "memory" ? ["memory", "durableObject"] : KINDS) {
    const open = await phase(object, kind, "open", 0, counted);
    const r = { openMs: open.outsideMs, databaseSizeBefore: open.databaseSizeBefore };
    r.enqueue = await phase(object, kind, "enqueue", n);
    r.enqueueMany = await phase(object, kind, "enqueueMany", n);
    r.process = await phase(object, kind, "process");
    const close = await phase(object, kind, "close");
    r.stats = close.stats;
    r.databaseSize = close.databaseSize;
    if (r.process.count !== 2 * n || close.stats.completed !== 2 * n) {
      throw new Error(`${object} ${kind}: processed ${r.process.count}, completed ${close.stats.completed}, expected ${2 * n}: ${JSON.stringify(close.stats)}`);
    }
    result[kind] = r;
  }
  return result;
}

const rounds = [];
let pings = [];
let warmup;
try {
  for (let i = 0; i < 20; i++) pings.push((await phase("ping", "memory", "ping")).outsideMs);
  pings = pings.slice(5); // the first requests create the object
  warmup = await round("warmup", Math.min(N, 1000), "durableObject", true);
  for (let r = 0; r < ROUNDS; r++) rounds.push(await round(`round-${r}`, N, r % 2 === 0 ? "durableObject" : "memory"));
} finally {
  await w.dispose();
}
const elapsedS = (performance.now() - began) / 1000;

// Rates: runs per second of `dateNowMs` (inside workerd) and of `outsideMs` (the request, from Node).
const rate = (p, clock) => (p.count / p[clock]) * 1000;
const med = (kind, name, clock) => median(rounds.map((x) => rate(x[kind][name], clock)));
const rows = PHASES.map((name) => {
  const d = med("durableObject", name, "dateNowMs");
  const m = med("memory", name, "dateNowMs");
  const dOut = med("durableObject", name, "outsideMs");
  const mOut = med("memory", name, "outsideMs");
  return { name, d, m, dOut, mOut };
});
const what = {
  enqueue: `enqueue: ${fmt(N)} \`db.enqueue()\` calls in flight together (group commit)`,
  enqueueMany: `\`enqueueMany\`: ${fmt(N)} runs in chunks of 500, one awaited call per chunk`,
  process: `process: the ${fmt(2 * N)} runs queued above, a worker with concurrency 16, no-op handler, \`processUntilIdle()\``,
};
const sizes = rounds.map((x) => x.durableObject.databaseSize).filter((s) => typeof s === "number");
const sizeBefore = rounds.map((x) => x.durableObject.databaseSizeBefore).find((s) => typeof s === "number");
const dateVsOutside = median(rounds.flatMap((x) => KINDS.flatMap((k) => PHASES.map((p) => x[k][p].dateNowMs / x[k][p].outsideMs))));
const perfVsDate = median(rounds.flatMap((x) => KINDS.flatMap((k) => PHASES.map((p) => x[k][p].performanceNowMs / x[k][p].dateNowMs))));
const workerdVersion = (() => {
  try {
    return execFileSync(WORKERD, ["--version"], { encoding: "utf8" }).trim();
  } catch {
    return "workerd";
  }
})();
const calls = PHASES.map((name) => {
  const p = warmup.durableObject[name];
  const c = p.storageCalls;
  if (c === undefined) return `${name}: not counted`;
  return `${name} ${fmt(c.transactions)} \`transactionSync\` (${(p.count / c.transactions).toFixed(1)} runs each), ${(c.kvPut / p.count).toFixed(1)} \`kv.put\` and ${(c.kvPutBytes / p.count / 1024).toFixed(1)} KiB written per run`;
}).join("; ");
const samples = PHASES.map(
  (name) =>
    `${name} DO ${rounds.map((x) => fmt(rate(x.durableObject[name], "dateNowMs"))).join("/")}, memory ${rounds.map((x) => fmt(rate(x.memory[name], "dateNowMs"))).join("/")}`,
).join("; ");
const warm = PHASES.map(
  (name) => `${name} DO ${fmt(rate(warmup.durableObject[name], "dateNowMs"))}, memory ${fmt(rate(warmup.memory[name], "dateNowMs"))}`,
).join("; ");

const section = `<!-- workerd:start -->
## In a Durable Object: its storage against memory (\`npm run bench:workerd\`)

Measured ${new Date().toISOString().slice(0, 10)} by \`npm run bench:workerd\` (bench/workerd.mjs${args.quick ? " --quick" : ""}, the object in bench/workerd/bench-object.js) on ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, ${Math.round(os.totalmem() / 2 ** 30)} GiB: local \`workerd serve\` (${workerdVersion}, the npm package's binary), a SQLite-backed Durable Object with its storage on local disk, the package's \`workerd\` entry bundled by esbuild. One object per round holds both databases, the object's own storage (\`open({ durableObject: ctx.storage })\`: durq's pages as 4 KiB values of \`ctx.storage.kv\`, each group commit in one \`transactionSync\`) and \`{ memory: true }\`; ${ROUNDS} round${ROUNDS === 1 ? "" : "s"} after a warm-up round, a fresh object each, the database that goes first alternating; medians in runs/s, with the ratio Durable Object / memory. Times are \`Date.now()\` inside workerd around the durq calls; the last columns time each phase's request from Node instead, which adds the request (${median(pings).toFixed(1)} ms through the object's stub here) and the storage flush workerd makes before the response leaves. Runs carry an input of ~10 bytes and no labels.

| measurement | \`{ durableObject }\` | \`{ memory: true }\` | DO / memory | per request: DO | memory | DO / memory |
|---|---|---|---|---|---|---|
${rows.map((r) => `| ${what[r.name]} | ${fmt(r.d)} runs/s | ${fmt(r.m)} runs/s | ${(r.d / r.m).toFixed(2)}x | ${fmt(r.dOut)} | ${fmt(r.mOut)} | ${(r.dOut / r.mOut).toFixed(2)}x |`).join("\n")}

- The object's storage after a round (${fmt(2 * N)} completed runs): ${sizes.length ? `${(median(sizes) / 2 ** 20).toFixed(1)} MiB by \`ctx.storage.sql.databaseSize\` (${fmt(median(sizes) / (2 * N))} bytes per run; ${(sizeBefore / 2 ** 10).toFixed(0)} KiB before durq opened it)` : "not reported (`ctx.storage.sql.databaseSize` missing)"}.
- What the object's storage was asked for, counted in the warm-up round (a wrapper around \`ctx.storage\`; the measured rounds hand durq \`ctx.storage\` itself): ${calls}.
- Clocks: \`Date.now()\` inside workerd measured ${(dateVsOutside * 100).toFixed(0)}% of the request time seen from Node (median over phases), and \`performance.now()\` ${perfVsDate.toFixed(2)}x \`Date.now()\`: in local workerd both advance during synchronous work, unlike Cloudflare's production, where they only move on I/O.
- Warm-up round (${fmt(Math.min(N, 1000))} runs, discarded): ${warm}. Samples (runs/s by \`Date.now()\`, in round order): ${samples}.
- The whole benchmark took ${elapsedS.toFixed(0)} s. This is local workerd on a shared 2-core machine, where a storage write is a local SQLite write: not Cloudflare's production, where an object's writes are also replicated before its output gate lets a response out: the throughput and the latency a caller sees can differ there.
<!-- workerd:end -->`;
writeSection("workerd", section);
console.log(section);
console.log("BENCHMARKS.md: workerd section written");
