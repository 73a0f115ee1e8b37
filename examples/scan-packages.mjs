#!/usr/bin/env node
// Scan every package.json under a directory with a durable run queue.
//
//   node examples/scan-packages.mjs [DIR] [--db FILE] [--concurrency N] [--lease-ms MS] [--step-delay-ms MS] [--journal FILE] [--search WORDS]
//
// DIR defaults to this project's node_modules: real files nobody here wrote.
// One run per file, with labels for its licence and module type, enqueued
// as one batch per top-level directory (each batch is one transaction, and
// its idempotency key is the directory, so a restart never duplicates a
// batch or a run). A worker processes the runs in three checkpointed steps
// (read, parse, summarize) while the active batches are reported; each
// batch reports once when its last run finishes. Summarizing a package
// looks up each of its dependencies (licence, version) with a memoized
// effect: many packages share dependencies, so each is looked up once and
// the answer is cached (in memory and in the database) for every other
// file, and for the next start. Kill it with `kill -9` at
// any moment and start it again: it resumes where it stopped, replaying
// stored steps instead of re-running them. The runs the killed process held
// are taken up again once their lease (--lease-ms, default 30 s) has lapsed.
// At the end, a full-text search over what was processed (--search, default
// "typescript": package names, versions, paths, licences, error messages),
// and the history of the best match.

import { open, defineJob, defineEffect } from "durq";
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { appendFileSync, mkdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";

const here = dirname(fileURLToPath(import.meta.url));
const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    db: { type: "string", default: join(here, "data", "packages.db") },
    concurrency: { type: "string", default: "8" },
    "lease-ms": { type: "string", default: "30000" },
    "step-delay-ms": { type: "string", default: "0" },
    journal: { type: "string" },
    search: { type: "string", default: "typescript" },
  },
});
const root = resolve(positionals[0] ?? join(here, "..", "node_modules"));
const stepDelayMs = Number(opts["step-delay-ms"]);
mkdirSync(dirname(resolve(opts.db)), { recursive: true });

/** Records each step execution (not replays) so a crash test can count them. */
function journal(runId, step) {
  if (opts.journal) appendFileSync(opts.journal, `${process.pid} ${runId} ${step}\n`);
}

async function work(runId, name, fn) {
  journal(runId, name);
  if (stepDelayMs > 0) await sleep(stepDelayMs);
  return fn();
}

/**
 * What a package registry would tell about a dependency: its licence and
 * version (read here from the top-level installed copy, as slow as a
 * network call with --step-delay-ms). The part of the work that repeats
 * across files, so it is an effect: run once per package name, cached.
 */
const packageMetadata = defineEffect({
  name: "package-metadata",
  version: 1,
  async run(name) {
    if (opts.journal) appendFileSync(opts.journal, `${process.pid} lookup ${name}\n`);
    if (stepDelayMs > 0) await sleep(stepDelayMs);
    try {
      const p = JSON.parse(stripBom(await readFile(join(root, name, "package.json"), "utf8")));
      return { name, version: typeof p.version === "string" ? p.version : null, license: licenseOf(p) };
    } catch {
      return { name, version: null, license: "NOT-INSTALLED" };
    }
  },
});

const scanPackage = defineJob({
  name: "scan-package",
  // A run whose process was killed comes back with its lease expired, which
  // counts as an attempt: leave room for a few kills besides real failures.
  retry: { maxAttempts: 5, backoff: { initialMs: 10, factor: 2, maxMs: 100, jitter: 0.25 } },
  async run(step, input) {
    const text = await step.run("read", () => work(step.runId, "read", () => readFile(input.path, "utf8")));
    const pkg = await step.run("parse", () =>
      work(step.runId, "parse", () => {
        const p = JSON.parse(stripBom(text)); // a malformed package.json fails the run, with its error stored
        return {
          name: typeof p.name === "string" ? p.name : null,
          version: typeof p.version === "string" ? p.version : null,
          license: licenseOf(p),
          type: p.type === "module" ? "module" : "commonjs",
          dependencies: Object.keys(p.dependencies ?? {}).length,
          dependencyNames: Object.keys(p.dependencies ?? {}).slice(0, 100),
          devDependencies: Object.keys(p.devDependencies ?? {}).length,
          hasTypes: Boolean(p.types ?? p.typings),
          bin: typeof p.bin === "string" ? 1 : Object.keys(p.bin ?? {}).length,
        };
      }),
    );
    const summary = await step.run("summarize", () =>
      work(step.runId, "summarize", async () => {
        // One effect call per dependency: cached across files and starts.
        const deps = await Promise.all((pkg.dependencyNames ?? []).map((name) => step.effect(packageMetadata, name)));
        const dependencyLicenses = {};
        for (const d of deps) dependencyLicenses[d.license] = (dependencyLicenses[d.license] ?? 0) + 1;
        return {
          ...pkg,
          dependencyLicenses,
          bytes: Buffer.byteLength(text),
          line: `${pkg.name ?? "(unnamed)"}@${pkg.version ?? "?"} ${pkg.license} ${pkg.type}, ${pkg.dependencies} deps`,
        };
      }),
    );
    await step.progress({ done: 3, of: 3 });
    return summary;
  },
});

function stripBom(text) {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** `s` cut to at most `bytes` UTF-8 bytes (label values and keys have byte limits). */
function clip(s, bytes) {
  let out = s.slice(0, bytes);
  while (Buffer.byteLength(out) > bytes) out = out.slice(0, -1);
  return out;
}

/** The idempotency key of a file: its path, or a hash of it past durq's 256-byte limit. */
function keyOf(path) {
  return Buffer.byteLength(path) <= 256 ? path : `sha256:${createHash("sha256").update(path).digest("hex")}`;
}

function licenseOf(p) {
  const l = p.license ?? p.licenses;
  const s = typeof l === "string" ? l : Array.isArray(l) ? l.map((x) => x?.type ?? x).join(" OR ") : l?.type;
  return typeof s === "string" && s.length > 0 ? clip(s, 100) : "UNKNOWN";
}

/** Every package.json under `dir` (node_modules nests, so walk it all). */
async function findPackageJsons(dir) {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && e.name === "package.json")
    .map((e) => join(e.parentPath ?? e.path, e.name))
    .sort();
}

/** Labels from a quick look at the file; a file that does not parse is labelled so. */
async function labelsFor(path) {
  try {
    const p = JSON.parse(stripBom(await readFile(path, "utf8")));
    return { license: licenseOf(p), module: p.type === "module" ? "esm" : "cjs", dir: topDir(path) };
  } catch {
    return { license: "UNPARSEABLE", module: "unknown", dir: topDir(path) };
  }
}

function topDir(path) {
  const rel = relative(root, path).split(/[\\/]/);
  const top = rel[0]?.startsWith("@") ? `${rel[0]}/${rel[1]}` : rel[0];
  return clip(top || ".", 200);
}

const db = await open({ path: opts.db });
const started = Date.now();
try {
  const files = await findPackageJsons(root);
  console.log(`durq: ${files.length} package.json files under ${root}`);
  console.log(`durq: database ${resolve(opts.db)}`);

  // One batch per top-level directory: all its runs or none, in one transaction.
  const byDir = new Map();
  for (const path of files) byDir.set(topDir(path), [...(byDir.get(topDir(path)) ?? []), path]);
  let created = 0;
  let batchesCreated = 0;
  for (const [dir, paths] of byDir) {
    const runs = await Promise.all(paths.map(async (path) => ({ job: scanPackage, input: { path }, labels: await labelsFor(path) })));
    const batch = await db.enqueueBatch({ runs, labels: { dir }, idempotencyKey: keyOf(`${root}#${dir}`) });
    if (batch.created) batchesCreated++;
    created += batch.runs.filter((r) => r.created).length;
  }
  console.log(`durq: enqueued ${created} new runs (${files.length - created} already known from an earlier start)`);
  console.log(`durq: ${byDir.size} batches, one per top-level directory (${batchesCreated} new)`);

  let done = 0;
  let failed = 0;
  const finishedBatches = { completed: 0, failed: 0, cancelled: 0 };
  db.on("run:completed", () => done++);
  db.on("run:failed", () => failed++);
  for (const state of ["completed", "failed", "cancelled"]) db.on(`batch:${state}`, () => finishedBatches[state]++);
  db.on("batch:failed", async ({ id, counts }) => {
    const dir = (await db.getBatch(id)).labels.dir;
    console.log(`durq: batch ${dir} failed: ${counts.failed} of ${counts.total} runs failed`);
  });
  const report = async () => {
    // Read from the active-batch membership table: no scan of batch history.
    const active = await db.listActiveBatches();
    const shown = active
      .slice(0, 3)
      .map((b) => `${b.labels.dir} ${b.counts.completed + b.counts.failed}/${b.counts.total}`)
      .join(", ");
    const more = active.length > 3 ? `, +${active.length - 3} more` : "";
    console.log(
      `durq: progress ${done} completed, ${failed} failed this session; ${active.length} active batches${active.length ? ` (${shown}${more})` : ""}; ` +
        `${finishedBatches.completed + finishedBatches.failed + finishedBatches.cancelled} batches finished this session`,
    );
  };
  const ticker = setInterval(() => void report().catch(() => {}), 500);
  const worker = db.worker({ jobs: [scanPackage], concurrency: Number(opts.concurrency), leaseMs: Number(opts["lease-ms"]) });
  // Not processUntilIdle(): it stops at runs that are not due yet, such as a
  // retry waiting out its backoff or a run still leased by a killed earlier
  // start (claimable once its lease lapses). The started worker sleeps until
  // the next of those is due; we wait until no batch is left active.
  worker.start();
  for (;;) {
    const active = await db.listActiveBatches();
    if (active.length === 0) break;
    for (const b of active) await db.waitForBatch(b.id);
  }
  await worker.stop();
  clearInterval(ticker);
  await report();

  // Summary from label filters (served by the run_labels index).
  const count = async (filter) => {
    let n = 0;
    let cursor;
    do {
      const page = await db.listRuns({ ...filter, limit: 1000, cursor });
      n += page.runs.length;
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    return n;
  };
  const licenses = new Map();
  let cursor;
  do {
    const page = await db.listRuns({ job: "scan-package", status: "completed", limit: 1000, cursor });
    for (const r of page.runs) licenses.set(r.labels.license, (licenses.get(r.labels.license) ?? 0) + 1);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  const top = [...licenses.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5);
  console.log("\nSummary");
  console.log(`  completed: ${await count({ job: "scan-package", status: "completed" })}`);
  console.log(`  failed:    ${await count({ job: "scan-package", status: "failed" })}`);
  const batchStates = { completed: 0, failed: 0, cancelled: 0 };
  let bcursor;
  do {
    const page = await db.listBatches({ limit: 1000, cursor: bcursor });
    for (const b of page.batches) if (b.state !== "active") batchStates[b.state]++;
    bcursor = page.nextCursor ?? undefined;
  } while (bcursor);
  console.log(
    `  batches:   ${batchStates.completed} completed, ${batchStates.failed} failed (a directory with a failed run), ${batchStates.cancelled} cancelled`,
  );
  console.log(`  ESM packages (label module=esm): ${await count({ labels: { module: "esm" } })}`);
  console.log(`  CommonJS packages (label module=cjs): ${await count({ labels: { module: "cjs" } })}`);
  for (const [license, n] of top) {
    const esm = await count({ labels: { license, module: "esm" }, status: "completed" });
    console.log(`  licence ${license}: ${n} packages, ${esm} of them ESM`);
  }
  const failures = await db.listRuns({ status: "failed", limit: 3 });
  for (const r of failures.runs) console.log(`  failed: ${r.input.path}: ${r.error?.message}`);

  // The dependency lookups: an effect shared by every file (db.cacheStats()).
  const fx = db.cacheStats();
  const lookups = fx.memoryHits + fx.joined + fx.databaseHits + fx.runs;
  const depLicenses = new Map();
  cursor = undefined;
  do {
    const page = await db.listRuns({ job: "scan-package", status: "completed", limit: 1000, cursor });
    for (const r of page.runs) for (const [l, n] of Object.entries(r.output?.dependencyLicenses ?? {})) depLicenses.set(l, (depLicenses.get(l) ?? 0) + n);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  console.log("\nDependency lookups (effect package-metadata, cached across files)");
  console.log(
    `  ${lookups} lookups this session: ${fx.runs} ran, ${fx.memoryHits + fx.joined} answered from memory, ${fx.databaseHits} from the database (an earlier start)`,
  );
  const depTop = [...depLicenses.entries()].sort((a, b) => b[1] - a[1]).slice(0, 3);
  console.log(`  dependency licences: ${depTop.map(([l, n]) => `${l} ${n}`).join(", ") || "none"}`);

  // Full-text search over inputs, outputs, error messages and labels.
  console.log("\nSearch");
  const hits = await db.listRuns({ search: opts.search, order: "relevance", limit: 3 });
  console.log(`  "${opts.search}": ${await count({ search: opts.search })} runs match`);
  for (const r of hits.runs) console.log(`    ${relative(root, r.input.path)}: ${r.output?.line ?? r.error?.message}`);
  console.log(`  failed runs whose error mentions JSON: ${await count({ search: "JSON", status: "failed" })}`);
  if (hits.runs.length > 0) {
    const events = await db.getRunEvents(hits.runs[0].id);
    console.log(`  history of the best match: ${events.map((e) => (e.kind === "stepCompleted" ? `step ${e.data.name}` : e.kind)).join(" -> ")}`);
  }
  console.log(`durq: done in ${Date.now() - started} ms`);
} finally {
  await db.close();
}
