// The durability guarantee of a file database, through the built package:
// a child process (js/test-support/enqueuer.mjs) enqueues runs and prints
// each id only after its promise resolved; it is killed with SIGKILL at a
// random point, several rounds on the same file, with synchronous "full"
// and "normal". After every kill the file, reopened in this process, holds
// every acknowledged run, passes integrity_check, serves label filters,
// and takes a new enqueue. A second process opening the file while the
// writer lives, both with { exclusive: true }, gets DURQ_LOCKED at once;
// once the writer is killed, its
// stale lock is taken over.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { defineJob, open } from "durq";

const ENQUEUER = fileURLToPath(new URL("../test-support/enqueuer.mjs", import.meta.url));
const ACK = /^ack ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}) (single|many) (\d+) (\d+) (\d+) \.$/;
const job = defineJob({ name: "kill9-enqueue", run: (_step, input) => input });

const dirs = [];
after(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDbPath() {
  const d = mkdtempSync(join(tmpdir(), "durq-kill9-"));
  dirs.push(d);
  return join(d, "queue.db");
}

/** A random integer in [lo, hi]. */
const int = (lo, hi) => lo + Math.floor(Math.random() * (hi - lo + 1));

/**
 * Starts the enqueuer on `path`. `next()` resolves with its next stdout
 * line, or `undefined` once stdout closed; `exited` with `{code, signal}`.
 */
function startEnqueuer(path, synchronous, round) {
  const child = spawn(process.execPath, [ENQUEUER, path, synchronous, String(round)], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const lines = createInterface({ input: child.stdout, crlfDelay: Infinity })[Symbol.asyncIterator]();
  const next = async () => {
    const r = await lines.next();
    return r.done ? undefined : r.value;
  };
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  return { child, next, exited, stderr: () => stderr };
}

/** Parses an `ack` line into a run the child acknowledged. */
function parseAck(line) {
  const m = ACK.exec(line);
  if (m === null) return undefined;
  return { id: m[1], kind: m[2], round: m[3], batch: m[4], seq: m[5] };
}

/**
 * Reads the child's acknowledgements into `acked` until it has given
 * `count` more, then kills it with SIGKILL and collects the lines it wrote
 * before dying (complete ones are acknowledgements too). Returns how many
 * it acknowledged in all.
 */
async function ackThenKill(proc, acked, count) {
  let n = 0;
  while (n < count) {
    const line = await proc.next();
    assert.ok(line !== undefined, `the enqueuer exited early after ${n} acks: ${proc.stderr()}`);
    const a = parseAck(line);
    assert.ok(a !== undefined, `unexpected line from the enqueuer: ${JSON.stringify(line)}`);
    acked.push(a);
    n++;
  }
  proc.child.kill("SIGKILL");
  for (let line = await proc.next(); line !== undefined; line = await proc.next()) {
    const a = parseAck(line);
    if (a !== undefined) {
      acked.push(a);
      n++;
    }
  }
  const { signal } = await proc.exited;
  assert.equal(signal, "SIGKILL", `the enqueuer was not killed by SIGKILL: ${proc.stderr()}`);
  return n;
}

/** Every run of `filter`, following `nextCursor`. */
async function allRuns(db, filter) {
  const runs = [];
  let cursor;
  do {
    const page = await db.listRuns({ ...filter, limit: 1000, cursor });
    runs.push(...page.runs);
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  return runs;
}

/**
 * Reopens the file in this process (taking over the dead child's lock) and
 * checks it: integrity, every acknowledged run with its labels, label
 * filters, whole enqueueMany batches, and a new enqueue. Returns the id of
 * that new run.
 */
async function verify(path, acked, rounds, context) {
  const db = await open({ path });
  try {
    assert.equal(readFileSync(`${path}.lock`, "utf8").split("\n")[0], String(process.pid), `${context}: the stale lock was taken over`);
    assert.deepEqual(await db.integrityCheck(), ["ok"], context);

    for (const a of acked) {
      const run = await db.getRun(a.id);
      assert.equal(run.status, "pending", `${context}: ${a.id}`);
      assert.deepEqual(run.labels, { round: a.round, kind: a.kind, batch: a.batch, seq: a.seq }, `${context}: labels of ${a.id}`);
      assert.equal(run.input.seq, Number(a.seq), `${context}: input of ${a.id}`);
    }

    for (const round of rounds) {
      const stored = await allRuns(db, { labels: { round: String(round) } });
      const ackedHere = acked.filter((a) => a.round === String(round));
      const storedIds = new Set(stored.map((r) => r.id));
      assert.equal(storedIds.size, stored.length, `${context}: listRuns pages repeat no run`);
      for (const a of ackedHere)
        assert.ok(storedIds.has(a.id), `${context}: acknowledged run ${a.id} missing from listRuns({ labels: { round: "${round}" } })`);
      // Runs committed after the last line the child printed may be there too, but nothing else.
      assert.ok(
        stored.length >= ackedHere.length && stored.length <= ackedHere.length + 60,
        `${context}: round ${round}: ${stored.length} stored, ${ackedHere.length} acknowledged`,
      );
      const bySeq = new Map();
      const byBatch = new Map();
      for (const r of stored) {
        assert.equal(r.labels.round, String(round));
        assert.ok(!bySeq.has(r.labels.seq), `${context}: seq ${r.labels.seq} of round ${round} stored twice`);
        bySeq.set(r.labels.seq, r);
        const b = byBatch.get(r.labels.batch) ?? { kind: r.labels.kind, size: r.input.size, n: 0 };
        b.n++;
        byBatch.set(r.labels.batch, b);
      }
      // One enqueueMany is one transaction: a batch is stored whole or not at all.
      for (const [batch, b] of byBatch) {
        if (b.kind === "many") assert.equal(b.n, b.size, `${context}: enqueueMany batch ${batch} of round ${round} stored ${b.n} of ${b.size} runs`);
      }
      // Two labels ANDed, through the label index.
      for (const a of ackedHere.filter((_, i) => i % 17 === 0)) {
        const page = await db.listRuns({ labels: { round: a.round, seq: a.seq } });
        assert.deepEqual(
          page.runs.map((r) => r.id),
          [a.id],
          `${context}: listRuns by round and seq`,
        );
      }
      for (const kind of ["single", "many"]) {
        const ofKind = await allRuns(db, { labels: { round: String(round), kind } });
        assert.equal(ofKind.length, stored.filter((r) => r.labels.kind === kind).length, `${context}: listRuns by round and kind`);
      }
    }

    const fresh = await db.enqueue(job, { after: context }, { labels: { round: "verify" } });
    assert.equal(fresh.created, true);
    assert.equal((await db.getRun(fresh.id)).status, "pending");
    return fresh.id;
  } finally {
    await db.close();
    assert.equal(existsSync(`${path}.lock`), false, `${context}: close() removed the lock file`);
  }
}

for (const synchronous of ["full", "normal"]) {
  test(`kill -9 while enqueueing (synchronous ${synchronous}): every acknowledged run survives, 4 rounds on one file`, { timeout: 180_000 }, async (t) => {
    const path = tempDbPath();
    const acked = [];
    const verifiedIds = [];
    const rounds = [];
    for (let round = 0; round < 4; round++) {
      rounds.push(round);
      const proc = startEnqueuer(path, synchronous, round);
      const first = await proc.next();
      assert.match(first ?? "", /^open \d+$/, `round ${round}: ${first} ${proc.stderr()}`);
      const killAfter = int(20, 600);
      const n = await ackThenKill(proc, acked, killAfter);
      t.diagnostic(`round ${round}: killed after ${killAfter} acks read; ${n} acknowledged in all`);
      verifiedIds.push(await verify(path, acked, rounds, `${synchronous} round ${round}`));
    }
    // The runs enqueued in this process between rounds survived the later rounds.
    const db = await open({ path });
    try {
      for (const id of verifiedIds) assert.equal((await db.getRun(id)).status, "pending");
      assert.equal((await allRuns(db, { labels: { round: "verify" } })).length, verifiedIds.length);
      assert.deepEqual(await db.integrityCheck(), ["ok"]);
    } finally {
      await db.close();
    }
  });
}

test("with { exclusive: true }, a second process gets DURQ_LOCKED while the writer lives, and takes the lock over once it is killed -9", {
  timeout: 120_000,
}, async () => {
  const path = tempDbPath();
  const acked = [];
  const a = startEnqueuer(path, "normal", 0);
  const aOpen = await a.next();
  assert.equal(aOpen, `open ${a.child.pid}`, a.stderr());
  for (let i = 0; i < 20; i++) acked.push(parseAck(await a.next()));

  // A second process: refused at once, while the first one is still writing.
  const b = startEnqueuer(path, "normal", 1);
  const refusal = await b.next();
  assert.match(refusal ?? "", /^error DURQ_LOCKED /, `${refusal} ${b.stderr()}`);
  assert.ok(refusal.includes(`process ${a.child.pid}`), refusal);
  assert.equal((await b.exited).code, 2);
  assert.equal(a.child.exitCode, null, "the first writer is alive: the refusal did not wait for it");
  assert.equal(a.child.signalCode, null);
  // ...and in this process too.
  await assert.rejects(open({ path }, { exclusive: true }), (e) => e.name === "DurqError" && e.code === "DURQ_LOCKED");
  assert.equal(readFileSync(`${path}.lock`, "utf8").split("\n")[0], String(a.child.pid));

  // The refusals did not disturb the writer.
  await ackThenKill(a, acked, 20);
  assert.ok(existsSync(`${path}.lock`), "kill -9 leaves the lock file behind");

  // The dead writer's lock is stale: a new process takes it over.
  const c = startEnqueuer(path, "normal", 1);
  const cOpen = await c.next();
  assert.equal(cOpen, `open ${c.child.pid}`, c.stderr());
  assert.equal(readFileSync(`${path}.lock`, "utf8").split("\n")[0], String(c.child.pid));
  await ackThenKill(c, acked, 20);

  assert.ok(acked.every((x) => x !== undefined));
  await verify(path, acked, [0, 1], "lock takeover");
});
