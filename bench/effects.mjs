#!/usr/bin/env node
// Effect cache benchmark (`npm run bench:effects`, after `scripts/build.sh`):
// one million effect calls over 50k distinct inputs (uniformly random,
// 64 callers at once), with `maxInMemoryChanges` of 10k, 100k and 1M, for a
// persisted effect (`cache: true`, a file database, synchronous=FULL) and a
// memory-only one (`cache: false`). For each: calls/s, where calls were
// answered (memory, database, ran the effect), and the process's peak
// memory (max RSS, and the largest V8 heap seen).
//
// Each setting runs in a fresh child process, so its peak is its own. The
// baselines, measured in the same run and the same way:
// - calls/s: the same calls through a plain `Map` memo (unbounded, not
//   persisted): what any cache costs at least;
// - memory: a process that opens the database and makes no call;
// - boundedness: the 10k setting again with a quarter of the calls: a
//   bounded cache has the same peak after 250k calls as after 1M.
//
// It rewrites the effects section of BENCHMARKS.md.
//
//   node bench/effects.mjs [--quick]     (--quick: 200k calls)

import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { writeSection } from "./section.mjs";

const here = fileURLToPath(import.meta.url);
const root = join(dirname(here), "..");
const out = join(root, "bench", "out");
const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    child: { type: "string" },
  },
});

const KEYS = 50_000;
const CALLERS = 64;
const PAYLOAD = "x".repeat(200); // each output: ~250 bytes of JSON

/** Runs one setting in this (child) process; prints a JSON line. */
async function child(spec) {
  const { open, defineEffect } = await import("durq");
  const { mode, max, calls } = spec;
  let runs = 0;
  const run = (input) => {
    runs++;
    return { key: input.key, page: input.page, payload: PAYLOAD };
  };
  // A deterministic input sequence (xorshift), the same for every setting.
  let seed = 0x2545f491;
  const next = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % KEYS;
  };
  // Live heap (after a full GC) at each quarter of the calls: flat when
  // memory follows the setting, rising when it follows the calls.
  const live = [];
  const sample = () => {
    globalThis.gc();
    live.push(process.memoryUsage().heapUsed);
  };
  let db;
  let call;
  if (mode === "map") {
    const memo = new Map();
    call = async (input) => {
      const k = JSON.stringify(input);
      let v = memo.get(k);
      if (v === undefined) {
        v = JSON.stringify(run(input));
        memo.set(k, v);
      }
      return JSON.parse(v);
    };
  } else {
    const path = join(out, `effects-${process.pid}.db`);
    rmSync(path, { force: true });
    rmSync(`${path}-wal`, { force: true });
    db = await open({ path }, { maxInMemoryChanges: max });
    const effect = defineEffect({ name: "lookup", cache: mode === "persisted", run });
    call = (input) => db.callEffect(effect, input);
  }
  let done = 0;
  const t0 = performance.now();
  const caller = async () => {
    while (done < calls) {
      const i = ++done;
      const k = next();
      const v = await call({ key: k, page: k % 7 });
      if (v.key !== k) throw new Error(`wrong output for ${k}`);
      if (i % (calls / 4) === 0) sample();
    }
  };
  if (calls > 0) await Promise.all(Array.from({ length: CALLERS }, caller));
  const seconds = (performance.now() - t0) / 1000;
  const stats = db?.cacheStats();
  const heapTotalBytes = process.memoryUsage().heapTotal;
  if (db !== undefined) await db.close();
  const result = {
    ...spec,
    callsPerSecond: calls / seconds,
    runs,
    stats,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    liveHeapBytes: live,
    heapTotalBytes,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function runChild(spec) {
  const text = execFileSync(process.execPath, ["--expose-gc", here, "--child", JSON.stringify(spec)], { encoding: "utf8", maxBuffer: 1 << 20 });
  return JSON.parse(text.trim().split("\n").pop());
}

async function main() {
  mkdirSync(out, { recursive: true });
  const calls = args.quick ? 200_000 : 1_000_000;
  const settings = [10_000, 100_000, 1_000_000];
  const results = [];
  const idle = runChild({ mode: "persisted", max: 10_000, calls: 0 });
  const map = runChild({ mode: "map", max: 0, calls });
  console.log(`baseline Map memo: ${Math.round(map.callsPerSecond)} calls/s, max RSS ${mb(map.maxRssBytes)}; idle process: ${mb(idle.maxRssBytes)}`);
  for (const mode of ["persisted", "memory"]) {
    for (const max of settings) {
      const r = runChild({ mode, max, calls });
      results.push(r);
      console.log(
        `${mode} max=${max}: ${Math.round(r.callsPerSecond)} calls/s, memory ${pct(r.stats.memoryHits, calls)}, db ${pct(r.stats.databaseHits, calls)}, ran ${r.runs}, entries ${r.stats.entries}, evictions ${JSON.stringify(r.stats.evictions)}, waits ${r.stats.waits}, max RSS ${mb(r.maxRssBytes)}, live heap by quarter ${r.liveHeapBytes.map(mb).join(" / ")}`,
      );
    }
  }
  const quarter = runChild({ mode: "persisted", max: 10_000, calls: calls / 4 });
  console.log(`persisted max=10000, ${calls / 4} calls: max RSS ${mb(quarter.maxRssBytes)}`);

  const rows = results.map((r) => {
    const s = r.stats;
    return `| ${r.mode === "persisted" ? "`cache: true`" : "`cache: false`"} | ${r.max.toLocaleString("en-US")} | ${Math.round(r.callsPerSecond).toLocaleString("en-US")} | ${(r.callsPerSecond / map.callsPerSecond).toFixed(2)}x | ${pct(s.memoryHits + s.joined, calls)} | ${pct(s.databaseHits, calls)} | ${r.runs.toLocaleString("en-US")} | ${s.entries.toLocaleString("en-US")} | ${(s.evictions.committed + s.evictions.loaded).toLocaleString("en-US")} | ${s.waits} | ${r.liveHeapBytes.map(mb).join(" / ")} | ${mb(r.heapTotalBytes)} | ${mb(r.maxRssBytes)} |`;
  });
  const section = `<!-- effects:start -->
## Effect cache (\`npm run bench:effects\`)

${calls.toLocaleString("en-US")} effect calls over ${KEYS.toLocaleString("en-US")} distinct inputs (uniformly random, ${CALLERS} callers at once; each output ~250 bytes of JSON), one fresh process per row. \`cache: true\` writes to a file database (synchronous=FULL, group commit); \`cache: false\` keeps outputs in memory only. "memory" counts calls answered from memory (including callers that joined a call already running); "database" counts calls answered by a read of the database; "ran" counts effect runs. The live JS heap is \`heapUsed\` right after a full GC; max RSS is the process's peak resident memory (\`process.resourceUsage().maxRSS\`), which also holds the heap V8 has reserved (\`heapTotal\`, shown at the end of the calls: garbage not yet collected, at 64 callers' allocation rate) and SQLite's WebAssembly memory (which grows to the largest transaction and the page cache, and never shrinks; not measurable from outside the module). No write waited (\`waits\` 0): when every entry was dirty, the write started the queued commit at once (the core commits synchronously), which freed room without waiting.

| effect | \`maxInMemoryChanges\` | calls/s | vs \`Map\` memo | memory | database | ran | entries at the end | evictions | waits | live JS heap after 1/4, 2/4, 3/4, 4/4 of the calls | V8 heap reserved at the end | max RSS |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
${rows.join("\n")}

Baselines measured in the same run:
- the same calls through a plain \`Map\` memo (unbounded, not persisted, one \`JSON.stringify\` key per call): ${Math.round(map.callsPerSecond).toLocaleString("en-US")} calls/s, max RSS ${mb(map.maxRssBytes)};
- a process that opens the database and makes no call: max RSS ${mb(idle.maxRssBytes)};
- \`cache: true\` with 10,000 entries after ${(calls / 4).toLocaleString("en-US")} calls instead of ${calls.toLocaleString("en-US")}: max RSS ${mb(quarter.maxRssBytes)} (vs ${mb(results[0].maxRssBytes)} after all calls).
<!-- effects:end -->`;
  writeSection("effects", section);
  console.log("BENCHMARKS.md: effects section written");
}

function mb(bytes) {
  return `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
}

function pct(n, d) {
  return `${((100 * n) / d).toFixed(1)}%`;
}

if (args.child !== undefined) await child(JSON.parse(args.child));
else await main();
