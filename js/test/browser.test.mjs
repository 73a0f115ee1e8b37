// The browser entry in headless Chromium (Debian's, through playwright-core):
// open({ opfs }) in a dedicated worker, connect() from the page, error codes
// across the hop, events, persistence across a reload, and two tabs sharing
// one OPFS database (Web Locks + BroadcastChannel, DURQ_LOCKED, takeover).
// Pages: js/test-support/browser/, served by Vite's dev server.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { launchChromium, pageLog, serveDev } from "../test-support/chromium.mjs";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

let browser;
let server;

before(async () => {
  server = await serveDev(ROOT);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

/** A fresh page of a context (each context has its own OPFS). */
async function openPage(context) {
  const page = await context.newPage();
  const log = pageLog(page);
  await page.goto(`${server.url}js/test-support/browser/page.html`);
  await page.waitForFunction(() => window.testPageReady === true);
  return { page, log };
}

/** Runs `f` in the page; on failure, the page's console is added to the error. */
async function inPage({ page, log }, f, arg) {
  try {
    return await page.evaluate(f, arg);
  } catch (e) {
    e.message += `\npage console:\n${log.join("\n")}`;
    throw e;
  }
}

describe("browser entry in Chromium", () => {
  test("on the main thread: { opfs } fails with DURQ_OPFS_UNAVAILABLE naming the fix, { path } is refused, memory works", async () => {
    const context = await browser.newContext();
    const p = await openPage(context);
    const r = await inPage(p, async () => {
      const { durq } = window;
      const out = {};
      try {
        await durq.open({ opfs: "main.db" });
      } catch (e) {
        out.opfs = { code: e.code, message: e.message, isDurq: e instanceof durq.DurqError };
      }
      try {
        await durq.open({ path: "./x.db" });
      } catch (e) {
        out.path = { code: e.code, message: e.message };
      }
      const echo = durq.defineJob({ name: "main-echo", run: async (_step, input) => input });
      const db = await durq.open({ memory: true });
      const { id } = await db.enqueue(echo, { n: 1 });
      await db.worker({ jobs: [echo] }).processUntilIdle();
      out.memory = (await db.getRun(id)).status;
      await db.close();
      return out;
    });
    assert.equal(r.opfs.code, "DURQ_OPFS_UNAVAILABLE");
    assert.ok(r.opfs.isDurq);
    assert.match(r.opfs.message, /dedicated worker/);
    assert.match(r.opfs.message, /connect\(worker\)/);
    assert.equal(r.path.code, "DURQ_INVALID_INPUT");
    assert.match(r.path.message, /opfs/);
    assert.equal(r.memory, "completed");
    await context.close();
  });

  test("in a worker: a browser without sync access handles gets DURQ_OPFS_UNAVAILABLE; close() lets the same worker open the database again", async () => {
    const context = await browser.newContext();
    const p = await openPage(context);
    const r = await inPage(p, async () => {
      const old = (await nextMessage(startWorker({ db: "old.db", mode: "old" }), "direct")).direct;
      const reopen = (await nextMessage(startWorker({ db: "reopen.db", mode: "reopen" }), "reopen")).reopen;
      return { old, reopen };
    });
    assert.equal(r.old.ok, false);
    assert.equal(r.old.code, "DURQ_OPFS_UNAVAILABLE");
    assert.match(r.old.message, /createSyncAccessHandle/);
    assert.match(r.old.message, /memory: true/);
    assert.deepEqual(r.reopen, { ok: true, status: "pending" });
    await context.close();
  });

  test("connect(): two clients of one worker get their own answers and events; a worker that fails to load or stops serving rejects calls with DURQ_CLOSED", async () => {
    const context = await browser.newContext();
    const p = await openPage(context);
    const r = await inPage(p, async () => {
      const { durq } = window;
      const w = startWorker({ db: "clients.db", tab: "C", mode: "memory" });
      const a = durq.connect(w);
      const b = durq.connect(w);
      const seenA = [];
      const seenB = [];
      a.on("run:enqueued", (e) => seenA.push(e.id));
      const offB = b.on("run:enqueued", (e) => seenB.push(e.id));
      const [ra, rb] = await Promise.all([a.enqueue("echo", { who: "a" }), b.enqueue("echo", { who: "b" })]);
      const [ga, gb] = await Promise.all([a.getRun(ra.id), b.getRun(rb.id)]);
      offB();
      const third = await a.enqueue("echo", { who: "a again" });
      await a.waitForRun(third.id, { timeoutMs: 10_000 });
      const out = { inputs: [ga.input.who, gb.input.who], seenA: seenA.length, seenB: seenB.length };
      b.close();
      out.afterClose = await b.getRun(ra.id).then(
        () => "resolved",
        (e) => e.code,
      );
      out.otherStillWorks = (await a.getRun(ra.id)).id === ra.id;

      const broken = durq.connect(new Worker("/no-such-worker.js", { type: "module" }));
      out.broken = await broken.stats().then(
        () => "resolved",
        (e) => e.code,
      );

      w.postMessage({ stopServing: true });
      await nextMessage(w, "stopped");
      out.stopped = await a.stats().then(
        () => "resolved",
        (e) => e.code,
      );
      return out;
    });
    assert.deepEqual(r.inputs, ["a", "b"]);
    assert.equal(r.seenA, 3);
    assert.equal(r.seenB, 2, "b unsubscribed before the third run; a still got it");
    assert.equal(r.afterClose, "DURQ_CLOSED");
    assert.ok(r.otherStillWorks);
    assert.equal(r.broken, "DURQ_CLOSED");
    assert.equal(r.stopped, "DURQ_CLOSED");
    await context.close();
  });

  test("OPFS alarm namespaces: room for the ones a session opens, then DURQ_OPFS naming the fix, with what was written kept", async () => {
    const context = await browser.newContext();
    const p = await openPage(context);
    const r = await inPage(p, async () => (await nextMessage(startWorker({ db: "slots.db", mode: "slots" }), "slots")).slots);
    assert.equal(r.code, "DURQ_OPFS");
    assert.ok(r.opened >= 16, `opened ${r.opened}`);
    assert.match(r.message, /open it again/);
    assert.equal(typeof r.first, "number");
    await context.close();
  });

  test("connect(): calls, events and error codes cross to the worker's OPFS database, which survives a reload", async () => {
    const context = await browser.newContext();
    const p = await openPage(context);
    const first = await inPage(p, async () => {
      const { durq } = window;
      const db = durq.connect(startWorker({ db: "connect.db", tab: "A" }));
      window.db = db;
      const events = [];
      const completed = new Promise((resolve) => {
        db.on("run:completed", (e) => {
          events.push(e);
          if (events.length === 2) resolve();
        });
      });
      const a = await db.enqueue("echo", { n: 1 }, { labels: { tenant: "acme" } });
      const b = await db.enqueue("echo", { n: 2 }, { labels: { tenant: "globex" } });
      await completed;
      const run = await db.getRun(a.id);
      const acme = await db.listRuns({ labels: { tenant: "acme" } });
      const errors = {};
      for (const [name, call] of [
        ["notFound", () => db.getRun("0190d6a4-0000-7000-8000-000000000000")],
        ["unknownJob", () => db.enqueue("no-such-job", {})],
        ["badInput", () => db.listRuns({ limit: -1 })],
        ["functionArg", () => db.enqueue("echo", { f: () => 1 })],
        ["notRemote", () => db.alarms("rooms").set("", Date.now())],
      ]) {
        try {
          await call();
          errors[name] = "resolved";
        } catch (e) {
          errors[name] = { code: e.code, isDurq: e instanceof durq.DurqError };
        }
      }
      await db.alarms("rooms").set("room-1", Date.now() + 3_600_000);
      return {
        ids: [a.id, b.id],
        status: run.status,
        output: run.output,
        acme: acme.runs.map((r) => r.id),
        eventIds: events.map((e) => e.id).sort(),
        errors,
        role: db.role,
        alarm: await db.alarms("rooms").get("room-1"),
      };
    });
    assert.equal(first.status, "completed");
    assert.deepEqual(first.output, { input: { n: 1 }, ranIn: "A", finishedIn: "A" });
    assert.deepEqual(first.acme, [first.ids[0]]);
    assert.deepEqual(first.eventIds, [...first.ids].sort());
    assert.deepEqual(first.errors.notFound, { code: "DURQ_NOT_FOUND", isDurq: true });
    assert.deepEqual(first.errors.unknownJob, { code: "DURQ_UNKNOWN_JOB", isDurq: true });
    assert.deepEqual(first.errors.badInput, { code: "DURQ_INVALID_INPUT", isDurq: true });
    assert.deepEqual(first.errors.functionArg, { code: "DURQ_INVALID_INPUT", isDurq: true });
    assert.deepEqual(first.errors.notRemote, { code: "DURQ_INVALID_INPUT", isDurq: true });
    assert.equal(first.role, "self");
    assert.equal(typeof first.alarm, "number");

    await p.page.reload();
    await p.page.waitForFunction(() => window.testPageReady === true);
    const again = await inPage(p, async () => {
      const db = window.durq.connect(startWorker({ db: "connect.db", tab: "B" }));
      const page = await db.listRuns({});
      return { ids: page.runs.map((r) => r.id).sort(), statuses: page.runs.map((r) => r.status), alarm: await db.alarms("rooms").get("room-1") };
    });
    assert.deepEqual(again.ids, [...first.ids].sort());
    assert.deepEqual(again.statuses, ["completed", "completed"]);
    assert.equal(again.alarm, first.alarm);
    await context.close();
  });

  test("two tabs: a direct open gets DURQ_LOCKED, serve() proxies to the owning tab, and the next tab takes over when it closes", async () => {
    const context = await browser.newContext();
    const tab1 = await openPage(context);
    const tab2 = await openPage(context);
    const r1 = await inPage(tab1, async () => {
      const db = window.durq.connect(startWorker({ db: "shared.db", tab: "1" }));
      window.db = db;
      const { id } = await db.enqueue("echo", { from: 1 });
      const run = await db.waitForRun(id, { timeoutMs: 10_000 });
      return { output: run.output, role: db.role };
    });
    assert.deepEqual(r1.output, { input: { from: 1 }, ranIn: "1", finishedIn: "1" });
    assert.equal(r1.role, "self");

    const direct = await inPage(tab2, async () => {
      const w = startWorker({ db: "shared.db", tab: "2", mode: "direct" });
      return (await nextMessage(w, "direct")).direct;
    });
    assert.equal(direct.ok, false);
    assert.equal(direct.code, "DURQ_LOCKED");
    assert.match(direct.message, /another tab or worker/);

    const r2 = await inPage(tab2, async () => {
      const db = window.durq.connect(startWorker({ db: "shared.db", tab: "2" }));
      window.db = db;
      const seen = new Promise((resolve) => db.on("run:completed", (e) => resolve(e.id)));
      const { id } = await db.enqueue("echo", { from: 2 });
      const run = await db.waitForRun(id, { timeoutMs: 10_000 });
      return { id, output: run.output, role: db.role, event: await seen, total: (await db.listRuns({})).runs.length };
    });
    assert.deepEqual(r2.output, { input: { from: 2 }, ranIn: "1", finishedIn: "1" }, "tab 1's worker owns the database and ran the run");
    assert.equal(r2.role, "other");
    assert.equal(r2.event, r2.id, "events of the owner reach the other tab");
    assert.equal(r2.total, 2);

    await tab1.page.close();
    const r3 = await inPage(tab2, async () => {
      const { db } = window;
      // The call waits in tab 2's worker until it owns the database (or
      // rejects DURQ_OWNER_CHANGED if it went to tab 1 as it closed).
      for (;;) {
        try {
          const { id } = await db.enqueue("echo", { from: "2 again" });
          const run = await db.waitForRun(id, { timeoutMs: 10_000 });
          return { output: run.output, role: db.role, total: (await db.listRuns({})).runs.length };
        } catch (e) {
          if (e.code !== "DURQ_OWNER_CHANGED") throw e;
        }
      }
    });
    assert.deepEqual(r3.output, { input: { from: "2 again" }, ranIn: "2", finishedIn: "2" });
    assert.equal(r3.role, "self");
    assert.equal(r3.total, 3);
    await context.close();
  });
});
