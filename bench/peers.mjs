#!/usr/bin/env node
// durq beside its peers (`npm run bench:peers`, after `scripts/build.sh`):
// the same workloads, in one run on one machine, for durq (at its default
// synchronous=FULL and at NORMAL), @coji/durably 0.15 and plainjob 0.0.14
// (both on better-sqlite3, WAL, synchronous=NORMAL) and raw better-sqlite3
// writing one bare row per job (the floor of any SQLite queue).
//
// Workloads (each library, each workload, in a fresh child process on a
// fresh file; ROUNDS rounds, the libraries' order alternating; medians):
// - concurrent: N single enqueues in flight together, 2 labels each
//   (plainjob has no labels and synchronous calls: not measured);
// - one by one: N awaited single enqueues (plainjob: N synchronous `add`);
// - bulk: N runs in calls of 1,000 (durq `enqueueMany`, durably
//   `batchTrigger`, plainjob `addMany`, raw: one transaction per 1,000);
// - process: N queued runs with one checkpointed no-op step, one worker
//   (durq concurrency 16; durably `processUntilIdle`; plainjob's worker,
//   which takes one job at a time, and no step: it has none). durably
//   processes PROCESS_DURABLY runs only (a few hundred a second);
// - label filter: the newest 50 runs of one tenant (of 100) among LABELED
//   runs with 2 labels (plainjob has no labels).
//
// It rewrites the peers section of BENCHMARKS.md.
//
// With `--before <pkg dir>`, durq as built at an earlier commit runs too
// (column "durq before", at FULL), so a change to the write path is
// measured against the code before it in the same run:
//   git worktree add /tmp/base <commit> && cd /tmp/base &&
//   ln -s "$OLDPWD/node_modules" && scripts/build.sh    (then --before /tmp/base/pkg)
//
//   node bench/peers.mjs [--quick] [--before DIR]     (--quick: 1 round, 5x fewer runs)

import { execFileSync, execSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { writeSection } from "./section.mjs";
import { fmt, median } from "./stats.mjs";

const here = fileURLToPath(import.meta.url);
const root = join(dirname(here), "..");
const out = join(root, "bench", "out");
const require = createRequire(import.meta.url);
const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    child: { type: "string" },
    before: { type: "string" },
  },
});
const scale = args.quick ? 0.2 : 1;
const N = Math.round(20_000 * scale);
const PROCESS_DURABLY = Math.round(2_000 * scale);
const LABELED = Math.round(100_000 * scale);
const ROUNDS = args.quick ? 1 : 3;
const CHUNK = 1_000;
const FILTER_REPEATS = 20;

const LIBS = [...(args.before !== undefined ? ["durqBefore"] : []), "durq", "durqNormal", "durably", "plainjob", "raw"];
const WORKLOADS = ["concurrent", "oneByOne", "bulk", "process", "labelFilter"];
/** Which library measures which workload. */
const MEASURES = {
  durqBefore: WORKLOADS,
  durq: WORKLOADS,
  durqNormal: WORKLOADS,
  durably: ["concurrent", "bulk", "process", "labelFilter"],
  plainjob: ["oneByOne", "bulk", "process"],
  raw: ["concurrent", "bulk"],
};

const labelsOf = (i) => ({ tenant: `t${i % 100}`, kind: i % 2 ? "a" : "b" });
const inputOf = (i) => ({ i, path: `/some/where/${i}` });

if (args.child !== undefined) {
  const { lib, workload, path, before } = JSON.parse(args.child);
  const result = await (await adapter(lib, path, before))[workload]();
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
} else {
  await parent();
}

/** better-sqlite3 as the peers use it here: WAL, synchronous=NORMAL. */
function betterDb(path) {
  const Database = require("better-sqlite3");
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  return db;
}

/** Times `f` (which resolves after `n` runs' work): runs/s. */
async function rate(n, f) {
  const t = performance.now();
  await f();
  return { perSecond: n / ((performance.now() - t) / 1000) };
}

/** The median time of `FILTER_REPEATS` calls of `f`, ms. */
async function medianMs(f) {
  await f(); // warm
  const times = [];
  for (let i = 0; i < FILTER_REPEATS; i++) {
    const t = performance.now();
    await f();
    times.push(performance.now() - t);
  }
  return { ms: median(times) };
}

/** One library's workloads, on the file `path` (`before`: the pkg dir of durq's "before" build). */
async function adapter(lib, path, before) {
  if (lib === "durq" || lib === "durqNormal" || lib === "durqBefore") {
    const { open, defineJob } = await import(lib === "durqBefore" ? pathToFileURL(join(before, "dist", "index.js")).href : "durq");
    const job = defineJob({ name: "b", run: async (step, input) => step.run("s", () => input.i) });
    // The "before" build may predate `exclusive` (unknown options are refused).
    const db = await open({ path }, { synchronous: lib === "durqNormal" ? "normal" : "full", ...(lib === "durqBefore" ? {} : { exclusive: true }) });
    const fill = async (n, labels) => {
      for (let i = 0; i < n; i += CHUNK)
        await db.enqueueMany(
          Array.from({ length: Math.min(CHUNK, n - i) }, (_, j) => ({ job, input: inputOf(i + j), options: labels ? { labels: labelsOf(i + j) } : undefined })),
        );
    };
    return {
      concurrent: () => rate(N, () => Promise.all(Array.from({ length: N }, (_, i) => db.enqueue(job, inputOf(i), { labels: labelsOf(i) })))),
      oneByOne: () =>
        rate(N, async () => {
          for (let i = 0; i < N; i++) await db.enqueue(job, inputOf(i));
        }),
      bulk: () => rate(N, () => fill(N, true)),
      process: async () => {
        await fill(N, false);
        return rate(N, () => db.worker({ jobs: [job], concurrency: 16 }).processUntilIdle());
      },
      labelFilter: async () => {
        await fill(LABELED, true);
        return medianMs(() => db.listRuns({ labels: { tenant: "t7" }, limit: 50 }));
      },
    };
  }
  if (lib === "durably") {
    const { createDurably, defineJob } = await import("@coji/durably");
    const { SqliteDialect } = await import("kysely");
    const { z } = await import("zod");
    const job = defineJob({
      name: "b",
      input: z.object({ i: z.number(), path: z.string() }),
      run: async (step, input) => step.run("s", async () => input.i),
    });
    const durably = createDurably({ dialect: new SqliteDialect({ database: betterDb(path) }), jobs: { b: job }, pollingIntervalMs: 10 });
    await durably.migrate();
    const b = durably.jobs.b;
    const fill = async (n, labels) => {
      for (let i = 0; i < n; i += CHUNK)
        await b.batchTrigger(
          Array.from({ length: Math.min(CHUNK, n - i) }, (_, j) => ({ input: inputOf(i + j), options: labels ? { labels: labelsOf(i + j) } : undefined })),
        );
    };
    return {
      concurrent: () => rate(N, () => Promise.all(Array.from({ length: N }, (_, i) => b.trigger(inputOf(i), { labels: labelsOf(i) })))),
      bulk: () => rate(N, () => fill(N, true)),
      process: async () => {
        await fill(PROCESS_DURABLY, false);
        return rate(PROCESS_DURABLY, async () => {
          const ran = await durably.processUntilIdle();
          if (ran !== PROCESS_DURABLY) throw new Error(`durably processed ${ran} of ${PROCESS_DURABLY}`);
        });
      },
      labelFilter: async () => {
        await fill(LABELED, true);
        return medianMs(() => durably.getRuns({ labels: { tenant: "t7" }, limit: 50 }));
      },
    };
  }
  if (lib === "plainjob") {
    const { better, defineQueue, defineWorker } = await import("plainjob");
    const silent = { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined };
    const queue = defineQueue({ connection: better(betterDb(path)), logger: silent });
    const fill = (n) => {
      for (let i = 0; i < n; i += CHUNK)
        queue.addMany(
          "b",
          Array.from({ length: Math.min(CHUNK, n - i) }, (_, j) => inputOf(i + j)),
        );
    };
    return {
      oneByOne: () =>
        rate(N, () => {
          for (let i = 0; i < N; i++) queue.add("b", inputOf(i));
        }),
      bulk: () => rate(N, () => fill(N)),
      process: async () => {
        fill(N);
        return rate(
          N,
          () =>
            new Promise((resolve) => {
              let done = 0;
              const worker = defineWorker("b", () => undefined, {
                queue,
                pollIntervall: 1,
                logger: silent,
                onCompleted: () => {
                  if (++done === N) worker.stop().then(resolve);
                },
              });
              void worker.start();
            }),
        );
      },
    };
  }
  if (lib === "raw") {
    const db = betterDb(path);
    db.exec("CREATE TABLE jobs (id INTEGER PRIMARY KEY, type TEXT NOT NULL, data TEXT NOT NULL, created_at INTEGER NOT NULL)");
    const insert = db.prepare("INSERT INTO jobs (type, data, created_at) VALUES (?, ?, ?)");
    const many = db.transaction((from, n) => {
      for (let i = from; i < from + n; i++) insert.run("b", JSON.stringify(inputOf(i)), Date.now());
    });
    return {
      concurrent: () =>
        rate(N, () => {
          for (let i = 0; i < N; i++) insert.run("b", JSON.stringify(inputOf(i)), Date.now());
        }),
      bulk: () =>
        rate(N, () => {
          for (let i = 0; i < N; i += CHUNK) many(i, Math.min(CHUNK, N - i));
        }),
    };
  }
  throw new Error(`unknown library ${lib}`);
}

async function parent() {
  mkdirSync(out, { recursive: true });
  const began = Date.now();
  const log = (...a) => console.log("[bench:peers]", ...a);
  try {
    require("better-sqlite3")(":memory:").close();
  } catch {
    log("building better-sqlite3 from source (npm rebuild; npm 11 skips install scripts)");
    execSync("npm rebuild better-sqlite3 --foreground-scripts", { cwd: root, stdio: "inherit" });
  }
  const results = {}; // lib -> workload -> [figures]
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? LIBS : [...LIBS].reverse();
    for (const workload of WORKLOADS)
      for (const lib of order) {
        if (!MEASURES[lib].includes(workload)) continue;
        const path = join(out, `peers-${lib}-${workload}.db`);
        for (const s of ["", "-wal", "-shm", ".lock", "-journal"]) rmSync(path + s, { force: true });
        const line = execFileSync(process.execPath, [here, "--child", JSON.stringify({ lib, workload, path, before: args.before })], {
          cwd: root,
          encoding: "utf8",
          maxBuffer: 1 << 24,
        });
        const figure = JSON.parse(line.trim().split("\n").pop());
        results[lib] = results[lib] ?? {};
        results[lib][workload] = [...(results[lib][workload] ?? []), figure];
        log(`round ${r + 1}: ${lib} ${workload}: ${figure.perSecond !== undefined ? `${fmt(figure.perSecond)} runs/s` : `${figure.ms.toFixed(2)} ms`}`);
        for (const s of ["", "-wal", "-shm", ".lock", "-journal"]) rmSync(path + s, { force: true });
      }
  }
  const cell = (lib, workload) => {
    const xs = results[lib]?.[workload];
    if (xs === undefined) return "–";
    if (xs[0].ms !== undefined) return `${median(xs.map((x) => x.ms)).toFixed(2)} ms`;
    const v = xs.map((x) => x.perSecond);
    return `${fmt(median(v))}/s${xs.length > 1 ? ` (${fmt(Math.min(...v))}–${fmt(Math.max(...v))})` : ""}`;
  };
  const ratio = (lib, workload, base) => {
    const a = results[lib]?.[workload];
    const b = results[base]?.[workload];
    if (a === undefined || b === undefined) return "–";
    // A latency: how many times faster (the other's time over durq's).
    if (a[0].ms !== undefined) return `${(median(b.map((x) => x.ms)) / median(a.map((x) => x.ms))).toFixed(1)}x faster`;
    return `${(median(a.map((x) => x.perSecond)) / median(b.map((x) => x.perSecond))).toFixed(2)}x`;
  };
  const names = {
    concurrent: `enqueue ${fmt(N)} concurrent single calls, 2 labels`,
    oneByOne: `enqueue ${fmt(N)} awaited one by one`,
    bulk: `bulk enqueue, ${fmt(CHUNK)} per call (${fmt(N)} runs)`,
    process: `process ${fmt(N)} queued one-step no-op runs, one worker (durably: ${fmt(PROCESS_DURABLY)})`,
    labelFilter: `label filter: newest 50 of one tenant among ${fmt(LABELED)} runs (median of ${FILTER_REPEATS})`,
  };
  const versions = ["@coji/durably", "plainjob", "better-sqlite3"]
    .map((p) => `${p} ${JSON.parse(readFileSync(join(root, "node_modules", p, "package.json"), "utf8")).version}`)
    .join(", ");
  const before = args.before !== undefined;
  const beforeVersion = before
    ? `, "durq before" is ${JSON.parse(readFileSync(join(args.before, "package.json"), "utf8")).version} built from an earlier commit (\`--before ${args.before}\`)`
    : "";
  const rows = WORKLOADS.map(
    (w) =>
      `| ${names[w]} | ${before ? `${cell("durqBefore", w)} | ` : ""}${cell("durq", w)} | ${before ? `${ratio("durq", w, "durqBefore")} | ` : ""}${cell("durqNormal", w)} | ${cell("durably", w)} | ${cell("plainjob", w)} | ${cell("raw", w)} | ${ratio("durq", w, "durably")} | ${ratio("durqNormal", w, "plainjob")} |`,
  );
  const section = `<!-- peers:start -->
## Beside the peers (\`npm run bench:peers\`)

Measured ${new Date().toISOString().slice(0, 10)} by \`npm run bench:peers\` (bench/peers.mjs${args.quick ? " --quick" : ""}) on ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}; ${versions}${beforeVersion}. Every library on a file on the same disk: durq at its default \`synchronous: "full"\` (an fsync per commit) and at \`"normal"\`; the peers on better-sqlite3 in WAL mode with \`synchronous=NORMAL\`; raw better-sqlite3 inserting one bare row per job (\`type\`, \`data\`, \`created_at\`) with no queue logic, the floor of any SQLite queue. One fresh process and file per library and workload; ${ROUNDS} round${ROUNDS === 1 ? "" : "s"}, the libraries' order alternating; medians (min–max). Runs carry a ~30-byte input. durq's handler runs one checkpointed step (\`step.run\`), durably's too; plainjob's has no steps.

| workload | ${before ? "durq before (FULL) | " : ""}durq (FULL) | ${before ? "durq / before | " : ""}durq (NORMAL) | @coji/durably | plainjob | raw better-sqlite3 | durq FULL / durably | durq NORMAL / plainjob |
|---|---|---|---|---|---|---|---|${before ? "---|---|" : ""}
${rows.join("\n")}

- "–": not measured. plainjob has no labels, and its \`add\` is a synchronous call (so nothing is in flight together); durably's one-by-one enqueue is left out to keep the run short; raw better-sqlite3 is only the floor of writes.
- On this shared 2-core machine a figure varies between runs by up to a third (the min–max above): a ratio inside both ranges is noise.
- The whole benchmark took ${Math.round((Date.now() - began) / 1000)} s.
<!-- peers:end -->`;
  writeSection("peers", section);
  log("BENCHMARKS.md updated");
}
