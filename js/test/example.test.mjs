// examples/scan-packages.mjs on real files (this project's node_modules),
// killed with SIGKILL halfway and started again: it resumes without losing
// a file, duplicating a run, or executing again a step whose output was
// stored before the kill, and prints its summary.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, watch } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { open } from "durq";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const EXAMPLE = join(ROOT, "examples", "scan-packages.mjs");
const NODE_MODULES = join(ROOT, "node_modules");
const STEPS = ["read", "parse", "summarize"];
const JOURNAL_LINE = /^(\d+) ([0-9a-f-]{36}) (read|parse|summarize)$/;

const dirs = [];
after(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Every package.json file under `dir` (what the example should scan). */
function packageJsons(dir) {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name === "package.json")
    .map((e) => join(e.parentPath ?? e.path, e.name))
    .sort();
}

/** The journal's complete lines as { pid, runId, step }. */
function readJournal(path) {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .map((line) => JOURNAL_LINE.exec(line))
    .filter((m) => m !== null)
    .map((m) => ({ pid: Number(m[1]), runId: m[2], step: m[3] }));
}

function startExample(db, journal) {
  const args = [EXAMPLE, NODE_MODULES, "--db", db, "--journal", journal, "--concurrency", "4", "--lease-ms", "2000", "--step-delay-ms", "50"];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  const out = [];
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const lines = createInterface({ input: child.stdout, crlfDelay: Infinity });
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  return { child, out, lines, exited, stderr: () => stderr };
}

/** Every run in the database, following `nextCursor` one page of `limit` at a time. */
async function allRuns(db, limit) {
  const runs = [];
  let cursor;
  do {
    const page = await db.listRuns({ job: "scan-package", limit, cursor });
    runs.push(...page.runs);
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  return runs;
}

test("the scan-packages example, killed with SIGKILL halfway, resumes on restart", { timeout: 180_000 }, async (t) => {
  const files = packageJsons(NODE_MODULES);
  assert.ok(files.length >= 10, `only ${files.length} package.json files under ${NODE_MODULES}; run npm ci first`);
  const dir = mkdtempSync(join(tmpdir(), "durq-example-"));
  dirs.push(dir);
  const dbPath = join(dir, "packages.db");
  const journalPath = join(dir, "journal.txt");

  // First start: slow steps; killed once the journal shows some steps ran.
  const killAt = 12 + Math.floor(Math.random() * Math.min(40, files.length));
  const first = startExample(dbPath, journalPath);
  await new Promise((resolve, reject) => {
    let done = false;
    // Checked at every journal change (inotify) and every line the example
    // prints (a progress line each 500 ms), whichever comes first.
    const watcher = watch(dir, () => check());
    const check = () => {
      if (done) return;
      if (readJournal(journalPath).length >= killAt) {
        done = true;
        watcher.close();
        first.child.kill("SIGKILL");
        resolve();
      }
    };
    first.lines.on("line", (line) => {
      first.out.push(line);
      check();
    });
    first.exited.then(({ code, signal }) => {
      if (done) return;
      watcher.close();
      reject(new Error(`the example exited (${code ?? signal}) before ${killAt} steps ran:\n${first.out.join("\n")}\n${first.stderr()}`));
    });
    check();
  });
  assert.equal((await first.exited).signal, "SIGKILL");
  assert.ok(!first.out.some((l) => l.startsWith("Summary")), "killed before the end");
  const firstPid = first.child.pid;

  // What was stored when it died.
  const storedBefore = new Set();
  let completedBefore = 0;
  {
    const db = await open({ path: dbPath });
    try {
      assert.deepEqual(await db.integrityCheck(), ["ok"]);
      const runs = await allRuns(db, 1000);
      assert.equal(runs.length, files.length, "every file was enqueued before the first step ran");
      for (const run of runs) {
        if (run.status === "completed") completedBefore++;
        for (const s of await db.getSteps(run.id)) storedBefore.add(`${run.id} ${s.name}`);
      }
    } finally {
      await db.close();
    }
  }
  t.diagnostic(`killed after ${killAt} journal lines: ${storedBefore.size} steps stored, ${completedBefore} of ${files.length} runs completed`);
  assert.ok(storedBefore.size > 0, "some steps were stored before the kill");
  assert.ok(completedBefore < files.length, "the kill left work to resume");

  // Second start, to the end.
  const second = startExample(dbPath, journalPath);
  second.lines.on("line", (line) => second.out.push(line));
  const { code } = await second.exited;
  const output = second.out.join("\n");
  assert.equal(code, 0, `${output}\n${second.stderr()}`);
  assert.match(output, new RegExp(`enqueued 0 new runs \\(${files.length} already known from an earlier start\\)`));
  assert.match(output, /\nSummary\n {2}completed: \d+\n {2}failed: +\d+\n {2}batches: +\d+ completed, \d+ failed .*\n {2}ESM packages/);
  assert.match(output, /durq: \d+ batches, one per top-level directory \(0 new\)/, "the restart found every batch by its idempotency key");
  assert.match(output, /; 0 active batches; \d+ batches finished this session/, "it reports the active batches");
  assert.match(
    output,
    /\nSearch\n {2}"typescript": [1-9]\d* runs match\n {4}typescript\/package\.json: typescript@\S+ Apache-2\.0 commonjs/,
    "search finds the typescript package first",
  );
  assert.match(output, /failed runs whose error mentions JSON: \d+/);
  assert.match(
    output,
    /\nDependency lookups \(effect package-metadata, cached across files\)\n {2}\d+ lookups this session: \d+ ran, \d+ answered from memory, \d+ from the database \(an earlier start\)\n {2}dependency licences: /,
  );
  assert.match(output, /history of the best match: enqueued -> leased -> (.* -> )?step read -> (.* -> )?step summarize -> completed\n/);
  assert.match(output, /durq: done in \d+ ms$/);

  const db = await open({ path: dbPath });
  try {
    assert.deepEqual(await db.integrityCheck(), ["ok"]);
    // One run per file: count through small pages (the cursor must not skip or repeat).
    const runs = await allRuns(db, 7);
    assert.equal(runs.length, files.length, "one run per package.json");
    assert.equal(new Set(runs.map((r) => r.id)).size, runs.length, "no run listed twice");
    assert.deepEqual(runs.map((r) => r.input.path).sort(), files, "no file lost, none duplicated");
    const completed = runs.filter((r) => r.status === "completed").length;
    for (const run of runs) {
      assert.ok(run.status === "completed" || run.status === "failed", `run ${run.id} (${run.input.path}) is ${run.status}`);
      if (run.status === "completed") {
        assert.deepEqual((await db.getSteps(run.id)).map((s) => s.name).sort(), [...STEPS].sort(), run.input.path);
        assert.equal(run.output.bytes, Buffer.byteLength(readFileSync(run.input.path)), run.input.path);
      }
    }
    assert.match(output, new RegExp(`\n {2}completed: ${completed}\n`));

    // One batch per top-level directory, none duplicated, each terminal with counts matching its runs.
    const byBatch = new Map();
    for (const run of runs) {
      assert.ok(run.batchId, `run ${run.id} is in a batch`);
      byBatch.set(run.batchId, [...(byBatch.get(run.batchId) ?? []), run]);
    }
    const dirs = new Set();
    for (const [id, members] of byBatch) {
      const b = await db.getBatch(id);
      assert.ok(!dirs.has(b.labels.dir), `one batch for directory ${b.labels.dir}`);
      dirs.add(b.labels.dir);
      assert.ok(
        members.every((r) => r.labels.dir === b.labels.dir),
        `batch ${b.labels.dir} holds only its directory's runs`,
      );
      const failedHere = members.filter((r) => r.status === "failed").length;
      assert.deepEqual(
        b.counts,
        { total: members.length, pending: 0, leased: 0, completed: members.length - failedHere, failed: failedHere, cancelled: 0 },
        b.labels.dir,
      );
      assert.equal(b.state, failedHere > 0 ? "failed" : "completed", b.labels.dir);
    }
    assert.equal(dirs.size, new Set(runs.map((r) => r.labels.dir)).size, "every directory has its batch");
    assert.deepEqual(await db.listActiveBatches(), []);

    // No step stored before the kill ran again after the restart.
    const journal = readJournal(journalPath);
    const pids = new Set(journal.map((j) => j.pid));
    assert.ok(pids.has(firstPid) && pids.has(second.child.pid) && pids.size === 2, `journal pids: ${[...pids]}`);
    const rerun = journal.filter((j) => j.pid === second.child.pid && storedBefore.has(`${j.runId} ${j.step}`));
    assert.deepEqual(rerun, [], "steps stored before the kill were executed again");
    // The dependency lookups (a cached effect) ran at most once per package name in each process.
    const lookups = readFileSync(journalPath, "utf8")
      .split("\n")
      .map((l) => /^(\d+) lookup (\S+)$/.exec(l))
      .filter((m) => m !== null);
    for (const pid of pids) {
      const names = lookups.filter((m) => Number(m[1]) === pid).map((m) => m[2]);
      assert.equal(new Set(names).size, names.length, `process ${pid} looked a dependency up twice`);
    }
    const ran = Number(/(\d+) ran, /.exec(output)[1]);
    assert.equal(ran, lookups.filter((m) => Number(m[1]) === second.child.pid).length, "the summary counts the lookups the journal shows");
    // ...and every step of a completed run was executed by one of the two.
    const executed = new Set(journal.map((j) => `${j.runId} ${j.step}`));
    for (const run of runs.filter((r) => r.status === "completed")) {
      for (const step of STEPS) assert.ok(executed.has(`${run.id} ${step}`), `${run.id} ${step} was never journaled`);
    }
  } finally {
    await db.close();
  }
});
