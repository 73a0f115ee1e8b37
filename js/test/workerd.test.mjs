// durq in real workerd (the npm package's binary, no network), through the
// harness js/test-support/workerd.mjs: fixture workers (js/test-support/
// workerd/) bundled with esbuild on the `workerd` export condition, served
// by `workerd serve` with Durable Object storage on local disk.
//
// 1. The facts of workerd that durq's Durable Object storage relies on,
//    checked with a pure-JS Durable Object (probe.js), so that a workerd
//    upgrade that changes them fails here first.
// 2. A plain worker: an in-memory database enqueues, processes, reads back.
// 3. A Durable Object (open({ durableObject: ctx.storage })): acknowledged
//    enqueues survive a restart of workerd, are processed after it, and a
//    delayed run fires from the object's alarm after a restart.
// 4. kill -9 of workerd while the object processes: no acknowledged run is
//    lost, completed runs stay completed, processing resumes.
// 5. Scale-out: durqShards over three DurqObject shards.

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { startWorker, waitFor } from "../test-support/workerd.mjs";

const fixture = (name) => fileURLToPath(new URL(`../test-support/workerd/${name}`, import.meta.url));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const started = [];
after(async () => {
  for (const w of started.splice(0)) await w.dispose();
});

async function launch(options) {
  const w = await startWorker(options);
  started.push(w);
  return w;
}

/** Calls `method(...args)` on the Durable Object `name` through the fixture's `/rpc/` route; throws the remote error with workerd's output. */
function rpcOf(w) {
  return async (method, name, ...args) => {
    const r = await w.post(`/rpc/${method}?name=${encodeURIComponent(name)}`, args);
    if (!r.ok) {
      const e = r.error ?? {};
      throw Object.assign(
        new Error(`${method} on ${name}: ${e.name} ${e.code ?? ""}: ${e.message}\n${e.stack ?? ""}\n--- workerd output:\n${w.output().slice(-4000)}`),
        {
          remote: e,
        },
      );
    }
    return r.value;
  };
}

/** `{ status: count }` of `runs`. */
function countBy(runs) {
  const counts = {};
  for (const r of runs) counts[r.status] = (counts[r.status] ?? 0) + 1;
  return counts;
}

describe("workerd facts durq relies on (a pure-JS Durable Object)", () => {
  let w;
  let rpc;
  test("start workerd with the probe", async () => {
    w = await launch({ entry: fixture("probe.js"), durableObjects: [{ className: "Probe", binding: "PROBE" }] });
    rpc = rpcOf(w);
  });

  // The probe's RPC answers `{ ok, value }` where value may itself be `{ ok, error }` (a caught failure).
  test("ctx.storage.kv get/put/delete/list take and give Uint8Array, up to 2 MiB values", async () => {
    const shape = await rpc("kvShape", "kv");
    assert.deepEqual(shape, {
      kv: "object",
      get: "function",
      put: "function",
      delete: "function",
      list: "function",
      transactionSync: "function",
      sql: "object",
      setAlarm: "function",
    });
    for (const size of [1, 128 * 1024, 1024 * 1024, 2 * 1024 * 1024]) {
      assert.deepEqual(await rpc("kvPutBytes", "kv", `b${size}`, size, 7), { ok: true }, `put of ${size} bytes`);
      assert.deepEqual(await rpc("kvGetBytes", "kv", `b${size}`, 7), { type: "Uint8Array", length: size, intact: true }, `get of ${size} bytes`);
    }
    const listed = await rpc("kvList", "kv", { prefix: "b" });
    assert.equal(listed.isArray, false, "list() gives an iterator");
    assert.deepEqual(listed.entries, [
      ["b1", "Uint8Array"],
      ["b1048576", "Uint8Array"],
      ["b131072", "Uint8Array"],
      ["b2097152", "Uint8Array"],
    ]);
    assert.equal(await rpc("kvDelete", "kv", "b1"), true);
    assert.equal(await rpc("kvDelete", "kv", "b1"), false);
    assert.deepEqual(await rpc("kvGet", "kv", "b1"), { type: "undefined" });
  });

  test("transactionSync rolls back the kv writes of a closure that throws", async () => {
    const r = await rpc("txRollback", "tx");
    assert.equal(r.thrown, "boom");
    assert.deepEqual(r.afterThrow, { a: { type: "undefined" }, keep: { type: "Uint8Array", length: 4 } });
    assert.equal(r.returned, 4);
    assert.deepEqual(r.b, { type: "Uint8Array", length: 4 });
  });

  test("an Error thrown by an RPC method arrives with its name, code and own properties", async () => {
    const res = await w.post("/rpc/throwCoded", []);
    assert.equal(res.ok, false);
    assert.equal(res.error.name, "DurqError");
    assert.equal(res.error.code, "DURQ_TEST_CODE");
    assert.equal(res.error.message, "a coded failure");
    assert.equal(res.error.instanceofError, true);
    assert.deepEqual(res.error.own.details, { a: 1 });
    assert.equal(res.error.own.remote, true);
    const typed = await w.post("/rpc/throwCodedAsync", []);
    assert.equal(typed.error.constructor, "TypeError");
    assert.equal(typed.error.code, "DURQ_TYPED");
  });

  test("acknowledged kv writes survive a SIGTERM restart and a kill -9", async () => {
    for (let i = 0; i < 20; i++) await rpc("writeSeq", "seq", i);
    assert.deepEqual(await w.stop(), { code: 0, signal: null });
    await w.start();
    let r = await rpc("readSeq", "seq");
    assert.equal(r.count, 20);
    assert.equal(r.intact, true);
    // Writes in flight on 8 lanes; kill -9 once 100 more were acknowledged.
    const acked = new Set();
    let next = 20;
    let killed = false;
    const lanes = Array.from({ length: 8 }, async () => {
      while (!killed) {
        const n = next++;
        try {
          await rpc("writeSeq", "seq", n);
        } catch {
          return;
        }
        if (!killed) acked.add(n);
      }
    });
    await waitFor(() => acked.size >= 100, { intervalMs: 2, what: "100 acknowledged writes" });
    killed = true;
    const ackedAtKill = [...acked];
    assert.equal((await w.kill()).signal, "SIGKILL");
    await Promise.allSettled(lanes);
    await w.start();
    r = await rpc("readSeq", "seq");
    const have = new Set(r.ns);
    assert.deepEqual(
      ackedAtKill.filter((n) => !have.has(n)),
      [],
      "acknowledged writes lost",
    );
    assert.equal(r.intact, true);
  });

  test("an alarm fires with { scheduledTime, retryCount, isRetry }, also when set before a restart", async () => {
    const a = await rpc("setAlarmIn", "alarm1", 300);
    const s = await waitFor(async () => {
      const x = await rpc("alarmState", "alarm1");
      return x.fired.length > 0 && x;
    });
    assert.deepEqual(s.fired[0].info, { scheduledTime: a.scheduled, retryCount: 0, isRetry: false });
    assert.ok(s.fired[0].at >= a.scheduled, "never early");
    assert.equal(s.alarm, null, "getAlarm() is null once it fired");
    // Set, workerd stopped before it is due, started again, the object not called until well after.
    const b = await rpc("setAlarmIn", "alarm2", 1000);
    await w.stop();
    await w.start();
    await sleep(Math.max(0, b.scheduled + 1500 - Date.now()));
    const touched = Date.now();
    const s2 = await rpc("alarmState", "alarm2");
    assert.equal(s2.fired.length, 1, `the alarm set before the restart did not fire: ${JSON.stringify(s2)}`);
    assert.ok(s2.fired[0].at >= b.scheduled && s2.fired[0].at < touched, "it fired on its own, not early");
  });

  test("setAlarm raises a past time to now and refuses a time <= 0", async () => {
    const past = await rpc("setAlarmAt", "alarm3", Date.now() - 60_000);
    assert.equal(past.ok, true);
    assert.ok(past.get >= past.now - 5_000, `getAlarm() after setAlarm(past) = ${past.get}, now ${past.now}`);
    const zero = await rpc("setAlarmAt", "alarm4", 0);
    assert.equal(zero.ok, false);
    assert.match(zero.error.message, /alarm time <= 0/);
  });
});

describe("durq in workerd", () => {
  test("a plain worker: an in-memory database enqueues, processes and reads back", async () => {
    const w = await launch({ entry: fixture("plain.js"), storage: "memory" });
    assert.ok(
      w.modules.some((m) => m.type === "wasm"),
      `the bundle keeps durq's wasm as a module: ${JSON.stringify(w.modules)}`,
    );
    const r = await w.post("/roundtrip", { count: 20 });
    assert.equal(r.processed, 20);
    assert.deepEqual(
      r.runs.map((x) => [x.status, x.output]),
      Array.from({ length: 20 }, (_, n) => ["completed", { n, square: n * n }]),
    );
    assert.equal(r.stats.completed, 20);
    assert.deepEqual(r.integrity, ["ok"]);
    // The module's database across requests.
    const ids = [];
    for (let n = 0; n < 5; n++) ids.push((await w.post("/enqueue", { n })).id);
    assert.deepEqual(await w.post("/process", {}), { processed: 5 });
    for (let n = 0; n < 5; n++) {
      const run = await w.json(`/run?id=${ids[n]}`);
      assert.equal(run.status, "completed");
      assert.deepEqual(run.output, { n, square: n * n });
    }
    assert.equal((await w.json("/stats")).completed, 5);
  });

  test("a Durable Object keeps every acknowledged run across a restart, then processes them", async () => {
    const w = await launch({ entry: fixture("queue-object.js"), durableObjects: [{ className: "QueueObject", binding: "QUEUE" }] });
    const rpc = rpcOf(w);
    const N = 60;
    const ids = new Map(); // n -> id, each after its response (acknowledged)
    await Promise.all(
      Array.from({ length: 4 }, async (_, lane) => {
        for (let n = lane; n < N; n += 4) ids.set(n, (await rpc("enqueue", "q", { n, steps: 2, stepMs: 0 })).id);
      }),
    );
    assert.deepEqual(await w.stop(), { code: 0, signal: null });
    await w.start();
    let runs = await rpc("listAll", "q");
    assert.equal(runs.length, N);
    const byId = new Map(runs.map((r) => [r.id, r]));
    for (const [n, id] of ids) {
      assert.equal(byId.get(id)?.status, "pending", `run ${n}`);
      assert.deepEqual(byId.get(id).input, { n, steps: 2, stepMs: 0 });
    }
    assert.equal(await rpc("processUntilIdle", "q"), N);
    runs = await rpc("listAll", "q");
    assert.deepEqual(countBy(runs), { completed: N });
    for (const r of runs) assert.deepEqual(r.output, { n: r.input.n, sum: 2 * r.input.n + 1 });
    assert.deepEqual(await rpc("integrityCheck", "q"), ["ok"]);
    await w.stop();
    await w.start();
    assert.equal((await rpc("stats", "q")).completed, N);
    assert.deepEqual(await rpc("integrityCheck", "q"), ["ok"]);

    // A delayed run, workerd restarted before it is due: the object's alarm
    // wakes it and the run completes before any request reaches it.
    await rpc("autostart", "q");
    const runAt = Date.now() + 1500;
    const { id } = await rpc("enqueue", "q", { n: 1000, steps: 1, stepMs: 0 }, { runAt });
    const alarm = await rpc("getAlarm", "q");
    assert.ok(alarm !== null && alarm >= runAt && alarm <= runAt + 1000, `ctx.storage.getAlarm() ${alarm} for a run due at ${runAt}`);
    await w.stop();
    await w.start();
    await sleep(Math.max(0, runAt + 2500 - Date.now()));
    const touched = Date.now();
    const run = await rpc("getRun", "q", id);
    assert.equal(run.status, "completed", `the delayed run after a restart: ${JSON.stringify(run)}`);
    assert.ok(run.finishedAt < touched, "it ran from the alarm, before the object got a request");
    assert.ok(run.startedAt >= runAt, "not early");
  });

  // One kill -9 scenario; its observations are asserted by the two tests below.
  const kill9 = {};
  test("kill -9 of workerd while the object processes loses no acknowledged run", async () => {
    const w = await launch({ entry: fixture("queue-object.js"), durableObjects: [{ className: "QueueObject", binding: "QUEUE" }] });
    const rpc = rpcOf(w);
    const N = 24;
    const leaseMs = 3000;
    const ids = [];
    for (let n = 0; n < N; n++) ids.push((await rpc("enqueue", "k", { n, steps: 4, stepMs: 50 })).id);
    await rpc("autostart", "k", { concurrency: 3, leaseMs });
    const before = await waitFor(
      async () => {
        const runs = await rpc("listAll", "k");
        return runs.filter((r) => r.status === "completed").length >= 6 && runs;
      },
      { intervalMs: 20, what: "6 completed runs" },
    );
    kill9.atKill = { counts: countBy(before), nextTimerAt: await rpc("nextTimerAt", "k"), alarm: await rpc("getAlarm", "k"), now: Date.now() };
    assert.equal((await w.kill()).signal, "SIGKILL");
    await w.start();
    // Leave the object alone past the leases' expiry: only its alarm can wake it.
    await sleep(leaseMs + 4000);
    const touched = Date.now();
    const runs = await waitFor(
      async () => {
        const all = await rpc("listAll", "k");
        return all.every((r) => r.status === "completed") && all;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: "every run completed after the restart" },
    );
    const byId = new Map(runs.map((r) => [r.id, r]));
    assert.deepEqual(
      ids.filter((id) => !byId.has(id)),
      [],
      "acknowledged runs lost",
    );
    assert.equal(runs.length, N);
    for (const r of runs) assert.deepEqual(r.output, { n: r.input.n, sum: 4 * r.input.n + 6 });
    for (const b of before.filter((r) => r.status === "completed")) {
      const a = byId.get(b.id);
      assert.equal(a.finishedAt, b.finishedAt, `run ${b.input.n}, completed before the kill, ran again`);
      assert.equal(a.attempt, b.attempt);
    }
    assert.deepEqual(await rpc("integrityCheck", "k"), ["ok"]);
    const resumed = runs.filter((r) => before.find((b) => b.id === r.id)?.status !== "completed");
    kill9.finishedBeforeRequest = resumed.filter((r) => r.finishedAt < touched).length;
    kill9.resumed = resumed.length;
  });

  test("after kill -9 the object resumes processing on its own (its alarm), before any request", () => {
    assert.ok(kill9.resumed !== undefined, "the kill -9 scenario did not run to its end");
    assert.equal(
      kill9.finishedBeforeRequest,
      kill9.resumed,
      `${kill9.finishedBeforeRequest} of the ${kill9.resumed} runs left at the kill completed before the first request after the restart; ` +
        `at the kill: ${JSON.stringify(kill9.atKill)} (no durable alarm while runs are leased or due leaves them until a request arrives)`,
    );
  });

  test("durqShards over three DurqObject shards: enqueue, listRuns across shards with a cursor, stats, processing", async () => {
    const w = await launch({ entry: fixture("shards.js"), durableObjects: [{ className: "Queues", binding: "QUEUES" }] });
    const queues = ["a", "b", "c"];
    const enqueued = [];
    for (let n = 0; n < 24; n++) {
      const queue = queues[n % 3];
      const r = await w.post("/enqueue", { queue, n });
      assert.equal(r.created, true);
      enqueued.push({ id: r.id, queue, n });
    }
    const listAll = async (limit, status) => {
      const pages = [];
      let cursor = null;
      do {
        const qs = new URLSearchParams({ limit: String(limit) });
        if (cursor !== null) qs.set("cursor", cursor);
        if (status !== undefined) qs.set("status", status);
        const page = await w.json(`/list?${qs}`);
        assert.ok(page.runs.length <= limit);
        pages.push(page.runs);
        cursor = page.nextCursor;
        assert.ok(pages.length <= 20, "the cursor never ends");
      } while (cursor !== null);
      return pages;
    };
    const checkList = (pages, what) => {
      const ids = pages.flat().map((r) => r.id);
      assert.equal(new Set(ids).size, ids.length, `${what}: a run listed twice`);
      assert.deepEqual([...ids].sort(), enqueued.map((e) => e.id).sort(), `${what}: not every run exactly once`);
      assert.deepEqual(ids, [...ids].sort().reverse(), `${what}: not newest first`);
      const created = pages.flat().map((r) => r.createdAt);
      for (let i = 1; i < created.length; i++) assert.ok(created[i - 1] >= created[i], `${what}: createdAt out of order`);
      for (const p of pages.slice(0, -1)) assert.equal(p.length, 5, `${what}: a short page before the last`);
    };
    checkList(await listAll(5), "pending");
    let perQueue = await Promise.all(queues.map((q) => w.json(`/stats?queue=${q}`)));
    assert.deepEqual(
      perQueue.map((s) => s.pending + s.completed + s.leased),
      [8, 8, 8],
    );
    const sum = await w.json("/stats");
    assert.equal(sum.pending + sum.leased + sum.completed, 24);
    const one = enqueued[4];
    assert.equal((await w.json(`/run?id=${one.id}&queue=${one.queue}`)).input.n, 4);
    assert.equal((await w.json(`/run?id=${one.id}`)).queue, one.queue, "getRun without a queue asks every shard");
    const missing = await w.fetch("/run?id=01a24efe-b941-7000-bb8c-f0dc0a7811fb");
    assert.equal(missing.status, 500);
    assert.equal((await missing.json()).error.code, "DURQ_NOT_FOUND");

    // Each shard's worker (started in DurqObject.setup) processes its runs.
    const done = await waitFor(
      async () => {
        const s = await w.json("/stats");
        return s.completed === 24 && s;
      },
      { timeoutMs: 15_000, what: "24 completed runs" },
    ).catch(async (e) => {
      const runs = (await w.json("/list?limit=50")).runs;
      throw new Error(`${e.message}; now ${JSON.stringify(countBy(runs))} (runs by queue: ${JSON.stringify(runs.map((r) => `${r.queue}:${r.status}`))})`);
    });
    assert.equal(done.pending, 0);
    perQueue = await Promise.all(queues.map((q) => w.json(`/stats?queue=${q}`)));
    assert.deepEqual(
      perQueue.map((s) => s.completed),
      [8, 8, 8],
    );
    checkList(await listAll(5, "completed"), "completed");
    for (const e of enqueued.slice(0, 3)) assert.deepEqual((await w.json(`/run?id=${e.id}&queue=${e.queue}`)).output, { n: e.n, tagged: `n-${e.n}` });
  });
});

describe("the README's Cloudflare worker", () => {
  test("runs as written: enqueue through durqShards, the DurqObject processes it, listRuns reads it back", async () => {
    const readme = readFileSync(join(import.meta.dirname, "../../README.md"), "utf8");
    const section = readme.slice(readme.indexOf("## Cloudflare Workers and Durable Objects"));
    const code = section.match(/```js\n([\s\S]*?)```/)[1];
    // Inside the checkout (target/ is ignored by git), so that "durq" resolves to the built package as in the other fixtures.
    mkdirSync(join(import.meta.dirname, "../../target"), { recursive: true });
    const dir = mkdtempSync(join(import.meta.dirname, "../../target/readme-worker-"));
    try {
      const entry = join(dir, "index.js");
      writeFileSync(entry, code);
      const w = await launch({ entry, durableObjects: [{ className: "Queues", binding: "QUEUES" }] });
      const res = await w.fetch("/send?to=ada%40example.com&key=welcome-ada");
      const run = await res.json();
      assert.equal(run.created, true, JSON.stringify(run));
      const again = await (await w.fetch("/send?to=ada%40example.com&key=welcome-ada")).json();
      assert.deepEqual([again.id, again.created], [run.id, false], "the idempotency key holds");
      const page = await waitFor(
        async () => {
          const p = await w.json("/");
          return p.runs?.[0]?.status === "completed" && p;
        },
        { what: "the README worker's run completed" },
      );
      assert.equal(page.runs.length, 1);
      assert.deepEqual(page.runs[0].output, { to: "ada@example.com", bytes: "Welcome, ada@example.com!".length });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
