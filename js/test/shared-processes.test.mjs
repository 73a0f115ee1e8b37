// Many processes, one database file: one owner, clients everywhere else
// (js/src/shared.ts, js/src/hub.ts, js/src/node/socket.ts). Child
// processes run js/test-support/shared/proc.mjs.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, linkSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { defineJob, open } from "../../pkg/dist/index.js";

const PROC = fileURLToPath(new URL("../test-support/shared/proc.mjs", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "durq-shared-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(dir, `db${++n}.db`);

const children = new Set();
after(() => {
  for (const c of children) c.kill("SIGKILL");
});

/** Starts proc.mjs; resolves once it has opened the file, with its role. */
function start(...args) {
  const child = spawn(process.execPath, [PROC, ...args], { stdio: ["pipe", "pipe", "inherit"] });
  children.add(child);
  child.on("exit", () => children.delete(child));
  const lines = [];
  let waiting;
  createInterface({ input: child.stdout }).on("line", (l) => {
    lines.push(JSON.parse(l));
    waiting?.();
  });
  const next = (pred) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const l = lines.find(pred);
        if (l !== undefined) return resolve(l);
        if (child.exitCode !== null) return reject(new Error(`child ${args.join(" ")} exited ${child.exitCode}`));
      };
      waiting = check;
      child.on("exit", check);
      check();
    });
  return {
    child,
    ready: next((l) => l.ready),
    line: next,
    /** Ends its stdin: it closes its database and exits. */
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve(child.exitCode);
        child.on("exit", (code) => resolve(code));
        child.stdin.end();
      }),
    kill9: () =>
      new Promise((resolve) => {
        child.on("exit", () => resolve());
        child.kill("SIGKILL");
      }),
  };
}

/** Polls `f` until it returns a truthy value (a condition of other processes, which share no clock with this one), or fails after `ms`. */
async function until(f, ms = 60_000, what = "condition") {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const lines = (file) => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : []);

/** Each id in `ids` is a completed run with exactly one `completed` event. */
async function completedOnce(db, ids) {
  for (const id of ids) {
    const run = await db.getRun(id);
    assert.equal(run.status, "completed", `run ${id}`);
    const events = await db.getRunEvents(id);
    assert.equal(events.filter((e) => e.kind === "completed").length, 1, `run ${id} completed once`);
  }
}

test("a second open of a live file in the same process is a client; events cross; the client takes over when the owner closes", async () => {
  const path = fresh();
  const job = defineJob({ name: "same-process", run: async (step, input) => step.run("x", () => input.n + 1) });
  const a = await open({ path });
  const b = await open({ path });
  assert.equal(a.role, "owner");
  assert.equal(b.role, "client");
  assert.equal(b.path, a.path);
  const seenByOwner = [];
  a.on("run:completed", (e) => seenByOwner.push(e.id));
  const seenByClient = [];
  b.on("run:enqueued", (e) => seenByClient.push(e.id));
  const r = await b.enqueue(job, { n: 1 });
  const fromOwner = await a.enqueue(job, { n: 2 });
  assert.equal((await a.getRun(r.id)).status, "pending");
  // The client's worker claims through the owner and runs the handler here.
  await b.worker({ jobs: [job] }).processUntilIdle();
  assert.deepEqual((await a.getRun(r.id)).output, 2);
  assert.deepEqual((await a.getRun(fromOwner.id)).output, 3);
  await until(() => seenByOwner.length === 2 && seenByClient.includes(fromOwner.id), 5000, "events");
  assert.deepEqual(new Set(seenByOwner), new Set([r.id, fromOwner.id]));
  // Bad input is refused in the client, with its code, before anything crosses.
  await assert.rejects(b.enqueue(job, { n: 1 }, { priority: "high" }), { code: "DURQ_INVALID_INPUT" });
  await assert.rejects(b.getRun("01a24fec-cb87-7000-a34f-d3043c33d1e5"), { code: "DURQ_NOT_FOUND" });
  await a.close();
  // Calls made while the owner closes wait for the next owner: this client.
  const later = await b.enqueue(job, { n: 5 });
  assert.equal(b.role, "owner");
  assert.equal((await b.getRun(later.id)).status, "pending");
  assert.deepEqual(await b.integrityCheck(), ["ok"]);
  await b.close();
});

test("two opens of one file in one process lease under their own prefixes; a client closed mid-takeover does not hang", async () => {
  const path = fresh();
  const job = defineJob({ name: "prefix", run: async () => 1 });
  const a = await open({ path }, { workerId: "svc" });
  const b = await open({ path }, { workerId: "svc" });
  const prefix = (w) => w.id.slice(0, w.id.lastIndexOf(":w") + 1);
  const pa = prefix(a.worker({ jobs: [job] }));
  const pb = prefix(b.worker({ jobs: [job] }));
  assert.match(pa, /^svc~\w+:$/);
  assert.match(pb, /^svc~\w+:$/);
  // The owner expires `<prefix>*` of a client that goes: neither may start with the other's.
  assert.ok(!pa.startsWith(pb) && !pb.startsWith(pa), `${pa} ${pb}`);
  // The owner goes while the client is closing: close() settles.
  const closing = b.close();
  await a.close();
  await closing;
});

test("a client's alarm handler waits; it runs once that process takes the file over", async () => {
  const path = fresh();
  const a = await open({ path });
  const b = await open({ path });
  const fired = [];
  b.onAlarm("reminders", (actorId) => {
    fired.push(actorId);
  });
  await b.alarms("reminders").set("u1", Date.now() - 1000);
  assert.equal(await a.alarms("reminders").get("u1"), (await b.alarms("reminders").list()).alarms[0].scheduledTime);
  assert.deepEqual(fired, []); // the owner has no handler: nothing fires
  await a.close();
  await until(() => fired.length === 1, 10_000, "the alarm after takeover");
  assert.deepEqual(fired, ["u1"]);
  await b.close();
});

test("a client process that dies gives its workers' leases back at once; the owner keeps its own", async () => {
  const path = fresh();
  const hang = defineJob({ name: "h", run: () => new Promise(() => undefined) });
  const a = await open({ path });
  const mine = defineJob({ name: "mine", run: (step) => new Promise((_, reject) => step.signal.addEventListener("abort", () => reject(step.signal.reason))) });
  const { id: own } = await a.enqueue(mine, {});
  a.worker({ jobs: [mine], leaseMs: 600_000 }).start();
  const child = start("hang", path);
  assert.equal((await child.ready).role, "client");
  const { id } = await a.enqueue(hang, {});
  await until(async () => (await a.getRun(id)).status === "leased", 10_000, "the child's lease");
  await until(async () => (await a.getRun(own)).status === "leased", 10_000, "the owner's lease");
  assert.ok((await a.getRun(id)).leaseExpiresAt > Date.now() + 60_000);
  await child.kill9();
  await until(async () => (await a.getRun(id)).leaseExpiresAt <= Date.now(), 10_000, "the dead client's lease to expire");
  assert.ok((await a.getRun(own)).leaseExpiresAt > Date.now() + 60_000, "the owner's own lease stays");
  // close() waits for handlers in flight, and these never end: cancel them first.
  await a.cancel(own);
  await a.cancel(id);
  await a.close();
});

test("4 processes on one file (an enqueuer, three workers): every run completes once", async () => {
  const path = fresh();
  const done = join(dir, `done${n}`);
  const acks = join(dir, `acks${n}`);
  const workers = [start("work", path, done), start("work", path, done), start("work", path, done)];
  const roles = await Promise.all(workers.map((w) => w.ready.then((r) => r.role)));
  assert.deepEqual(roles.sort(), ["client", "client", "owner"]);
  const enq = start("enqueue", path, "300", acks);
  assert.equal((await enq.ready).role, "client");
  await enq.line((l) => l.enqueued === 300);
  const db = await open({ path });
  assert.equal(db.role, "client");
  await until(async () => (await db.stats()).completed === 300, 120_000, "300 completed runs");
  const ids = lines(acks);
  assert.equal(new Set(ids).size, 300);
  await completedOnce(db, ids);
  const ran = lines(done).map((l) => l.split(" "));
  assert.equal(ran.length, 300, "each handler ran once");
  const pids = new Set(ran.map((r) => r[2]));
  assert.ok(pids.size >= 2, `runs were handled by several processes (${pids.size})`);
  await db.close();
  for (const p of [...workers, enq]) assert.equal(await p.stop(), 0);
  const check = await open({ path }, { exclusive: true });
  assert.deepEqual(await check.integrityCheck(), ["ok"]);
  await check.close();
});

test("20 trials of kill -9 of the owner under load lose no acknowledged run and complete none twice", async () => {
  const RUNS = 200;
  for (let trial = 0; trial < 20; trial++) {
    const path = fresh();
    const done = join(dir, `done${n}`);
    const acks = join(dir, `acks${n}`);
    // Even trials: the owner is a worker process; odd trials: the enqueuer.
    const first = trial % 2 === 0 ? start("work", path, done) : start("enqueue", path, String(RUNS), acks);
    assert.equal((await first.ready).role, "owner", `trial ${trial}`);
    const others =
      trial % 2 === 0
        ? [start("work", path, done), start("work", path, done), start("enqueue", path, String(RUNS), acks)]
        : [start("work", path, done), start("work", path, done), start("work", path, done)];
    await Promise.all(others.map((p) => p.ready));
    // Kill the owner once some runs are done, others in flight.
    await until(() => lines(done).length >= 20 + trial * 3, 60_000, `trial ${trial}: some handled runs`);
    await first.kill9();
    const enqueuer = trial % 2 === 0 ? others[2] : undefined;
    if (enqueuer !== undefined) await enqueuer.line((l) => l.enqueued === RUNS);
    const acked = lines(acks);
    const db = await open({ path });
    await until(
      async () => {
        const s = await db.stats();
        return s.pending === 0 && s.leased === 0;
      },
      120_000,
      `trial ${trial}: the queue to drain`,
    );
    // Every acknowledged run is there and completed exactly once.
    await completedOnce(db, acked);
    const all = await db.stats();
    assert.equal(all.failed + all.cancelled, 0, `trial ${trial}`);
    await db.close();
    for (const p of others) assert.equal(await p.stop(), 0, `trial ${trial}`);
    const check = await open({ path }, { exclusive: true });
    assert.deepEqual(await check.integrityCheck(), ["ok"], `trial ${trial}`);
    await check.close();
  }
});

test("a hard link to a live file, or the file after its lock file was deleted, opens as a client: never a second writer", async () => {
  const path = fresh();
  const owner = start("hold", path);
  assert.equal((await owner.ready).role, "owner");
  const link = `${path}.hardlink.db`;
  linkSync(path, link);
  const viaLink = await open({ path: link });
  assert.equal(viaLink.role, "client");
  const job = defineJob({ name: "linked", run: async () => 1 });
  const { id } = await viaLink.enqueue(job, {});
  unlinkSync(`${path}.lock`);
  const afterUnlock = await open({ path });
  assert.equal(afterUnlock.role, "client");
  assert.equal((await afterUnlock.getRun(id)).status, "pending");
  await afterUnlock.worker({ jobs: [job] }).processUntilIdle();
  assert.equal((await viaLink.getRun(id)).status, "completed");
  await viaLink.close();
  await afterUnlock.close();
  assert.equal(await owner.stop(), 0);
  const check = await open({ path: link }, { exclusive: true });
  assert.deepEqual(await check.integrityCheck(), ["ok"]);
  assert.equal((await check.getRun(id)).status, "completed");
  await check.close();
});

test("{ exclusive: true } keeps the file to one process: refused while another has it, and refuses the others", async () => {
  const path = fresh();
  const shared = start("hold", path);
  await shared.ready;
  await assert.rejects(open({ path }, { exclusive: true }), { code: "DURQ_LOCKED" });
  assert.equal(await shared.stop(), 0);
  const mine = await open({ path }, { exclusive: true });
  const other = start("hold", path);
  await assert.rejects(other.ready, /exited 1/);
  await assert.rejects(open({ path }), { code: "DURQ_LOCKED" });
  await mine.close();
  await assert.rejects(open({ path }, { exclusive: "yes" }), { code: "DURQ_INVALID_INPUT" });
  await assert.rejects(open({ path }, { ownerTimeoutMs: -1 }), { code: "DURQ_INVALID_INPUT" });
});

test("an owner that never answers gives DURQ_OWNER_UNAVAILABLE, not a hang", { skip: process.platform !== "linux" }, async () => {
  const path = fresh();
  writeFileSync(path, "");
  const st = statSync(path, { bigint: true });
  const silent = createServer(() => undefined); // accepts, never answers
  await new Promise((r) => silent.listen({ path: `\0durq:${st.dev}:${st.ino}` }, r));
  try {
    await assert.rejects(open({ path }, { ownerTimeoutMs: 300 }), { code: "DURQ_OWNER_UNAVAILABLE" });
  } finally {
    silent.close();
  }
  // A connected client whose owner stops answering (SIGSTOP): its calls reject, then it goes on once the owner is back.
  const owner = start("hold", path);
  await owner.ready;
  const db = await open({ path }, { ownerTimeoutMs: 400 });
  assert.equal(db.role, "client");
  owner.child.kill("SIGSTOP");
  try {
    await assert.rejects(db.stats(), { code: "DURQ_OWNER_UNAVAILABLE" });
  } finally {
    owner.child.kill("SIGCONT");
  }
  await until(
    () =>
      db.stats().then(
        () => true,
        () => false,
      ),
    10_000,
    "the owner back",
  );
  await db.close();
  assert.equal(await owner.stop(), 0);
});
