// Cron schedules, queue pause/resume and job time limits through the built
// package, against every storage kind, on a ManualClock (nothing here waits
// real seconds): every-minute and every-5-seconds schedules fire exactly
// once per slot over a simulated day; the DST days of Europe/Berlin and
// America/New_York fire the documented number of times; catch-up after an
// 8-hour downtime for each policy; a kill -9 during firings loses no slot
// and duplicates none; bad input stores nothing; a paused queue's runs wait
// (durably) while enqueues succeed; a handler past `timeoutMs` fails its
// attempt with DURQ_TIMEOUT and is retried.

import assert from "node:assert/strict";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { defineJob, ManualClock, open } from "durq";
import { cleanupDirs, openDb, rejectsCode, settle, startChild, STORAGES, T0, tempDir } from "../test-support/helpers.mjs";

after(cleanupDirs);

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const report = defineJob({ name: "sched-report", run: (_step, input) => input });

/** Collects `schedule:fired` payloads. */
function fired(db) {
  const list = [];
  db.on("schedule:fired", (e) => list.push(e));
  return list;
}

/** Moves the clock from slot to slot (the schedules' earliest `nextAt`) up to `end`, letting each firing commit. */
async function runUntil(db, clock, end) {
  await settle();
  for (;;) {
    const { schedules } = await db.listSchedules({ limit: 1000 });
    const next = Math.min(...schedules.map((s) => s.nextAt ?? Infinity));
    if (!(next <= end)) break;
    clock.set(next);
    await db.runDue();
  }
  clock.set(Math.max(end, clock.now()));
}

/** Whole-minute start of the simulated day. */
const DAY0 = Date.UTC(2030, 0, 2);

for (const kind of STORAGES) {
  describe(`schedules (${kind})`, () => {
    test("every minute: exactly one run per slot over a simulated day, each carrying its slot", async () => {
      const { db, clock } = await openDb(kind, { clock: new ManualClock(DAY0 - 1) });
      const events = fired(db);
      const set = await db.schedule("minutely", { cron: "* * * * *", job: report, input: { n: 1 }, labels: { kind: "cron" } });
      assert.deepEqual(set, { created: true, nextAt: DAY0 });
      // The one timer, stepped a millisecond at a time around each slot: never early, once.
      const day = kind === "memory" ? DAY : 2 * HOUR;
      for (let t = DAY0; t < DAY0 + day; t += MINUTE) {
        clock.set(t - 1);
        await db.runDue();
        assert.equal(events.length, (t - DAY0) / MINUTE, "not before the slot");
        clock.set(t + 7); // a timer that fires a little late
        await db.runDue();
        await db.runDue();
      }
      const slots = events.map((e) => e.slotAt);
      assert.equal(slots.length, day / MINUTE);
      assert.equal(new Set(slots).size, slots.length, "no slot twice");
      assert.deepEqual(slots.slice(0, 3), [DAY0, DAY0 + MINUTE, DAY0 + 2 * MINUTE]);
      const last = events.at(-1);
      const run = await db.getRun(last.runId);
      assert.equal(run.runAt, last.slotAt);
      assert.equal(run.idempotencyKey, `schedule:minutely:${last.slotAt}`);
      assert.deepEqual([run.job, run.input, run.labels], ["sched-report", { n: 1 }, { kind: "cron" }]);
      assert.equal(last.jobDefined, true);
      assert.equal((await db.stats()).pending, day / MINUTE);
      await db.close();
    });

    test("every 5 seconds (a seconds field): one run per slot over a simulated day", async () => {
      const { db, clock } = await openDb(kind, { clock: new ManualClock(DAY0) });
      const events = fired(db);
      await db.schedule("fast", { cron: "*/5 * * * * *", job: report });
      const day = kind === "memory" ? DAY : HOUR;
      await runUntil(db, clock, DAY0 + day);
      assert.equal(events.length, day / 5000);
      assert.equal(new Set(events.map((e) => e.slotAt)).size, day / 5000);
      assert.ok(events.every((e, i) => e.slotAt === DAY0 + (i + 1) * 5000));
      await db.close();
    });

    // [zone, local midnight of the spring-forward day, of the fall-back day, a fixed time in the gap, one in the repeated hour]
    for (const [zone, spring, autumn, inGap, repeated] of [
      // 2030-03-31 02:00 CET → 03:00 CEST (01:00Z); 2030-10-27 03:00 CEST → 02:00 CET (01:00Z).
      ["Europe/Berlin", Date.UTC(2030, 2, 30, 23), Date.UTC(2030, 9, 26, 22), "30 2 * * *", "30 2 * * *"],
      // 2030-03-10 02:00 EST → 03:00 EDT (07:00Z); 2030-11-03 02:00 EDT → 01:00 EST (06:00Z).
      ["America/New_York", Date.UTC(2030, 2, 10, 5), Date.UTC(2030, 10, 3, 4), "30 2 * * *", "30 1 * * *"],
    ]) {
      test(`DST in ${zone}: hourly fires 23 and 25 times, a fixed time once`, async () => {
        const { db, clock } = await openDb(kind, { clock: new ManualClock(spring - 1) });
        const events = fired(db);
        await db.schedule("hourly", { cron: "0 * * * *", timezone: zone, job: report });
        await db.schedule("fixed", { cron: inGap, timezone: zone, job: report });
        const count = (id) => events.filter((e) => e.scheduleId === id).length;
        await runUntil(db, clock, spring + 23 * HOUR - 1); // the local day of 23 hours
        assert.equal(count("hourly"), 23, "spring forward: 23 hours");
        assert.equal(count("fixed"), 1, "a fixed time in the gap fires once, just after it");
        assert.equal(events.find((e) => e.scheduleId === "fixed").slotAt % HOUR, 0, "at the end of the gap (03:00)");
        events.length = 0;
        clock.set(autumn - 1);
        // One commit for both (the timer runs after each commit).
        await Promise.all([
          db.schedule("hourly", { cron: "0 * * * *", timezone: zone, job: report, catchUp: "none" }),
          db.schedule("fixed", { cron: repeated, timezone: zone, job: report, catchUp: "none" }),
        ]);
        await db.runDue(); // the summer's slots: skipped by "none"
        assert.equal(events.length, 0);
        await runUntil(db, clock, autumn + 25 * HOUR - 1); // the local day of 25 hours
        assert.equal(count("hourly"), 25, "fall back: both passes of the repeated hour");
        assert.equal(count("fixed"), 1, "a repeated fixed time fires once");
        await db.close();
      });
    }

    test("bad schedules are refused with DURQ_INVALID_INPUT and store nothing", async () => {
      const { db } = await openDb(kind);
      const bad = [
        ["a", { cron: "61 * * * *", job: report }],
        ["a", { cron: "* * * *", job: report }],
        ["a", { cron: "0 0 30 2 *", job: report }],
        ["a", { cron: "* * * * *", timezone: "Mars/Olympus", job: report }],
        ["a", { cron: "* * * * *", timezone: 5, job: report }],
        ["a", { cron: "* * * * *", job: report, queue: "" }],
        ["a", { cron: "* * * * *", job: report, queue: "bad\u0000name" }],
        ["a", { cron: "* * * * *", job: report, catchUp: "sometimes" }],
        ["a", { cron: "* * * * *", job: report, runAt: T0 }],
        ["a", { cron: "* * * * *", job: report, idempotencyKey: "k" }],
        ["a", { cron: "* * * * *", job: report, input: new Map() }],
        ["", { cron: "* * * * *", job: report }],
        ["a", { job: report }],
        ["a", "* * * * *"],
      ];
      for (const [id, spec] of bad) await rejectsCode(db.schedule(id, spec), "DURQ_INVALID_INPUT");
      await rejectsCode(db.schedule("a", { cron: "* * * * *", job: "never-defined" }), "DURQ_UNKNOWN_JOB");
      assert.deepEqual(await db.listSchedules(), { schedules: [], nextCursor: null });
      await rejectsCode(db.listSchedules({ cursor: "nope" }), "DURQ_INVALID_INPUT");
      await rejectsCode(db.listSchedules({ limit: 0 }), "DURQ_INVALID_INPUT");
      assert.equal(await db.deleteSchedule("a"), false);
      await db.close();
    });

    test("get, list and delete", async () => {
      const { db } = await openDb(kind);
      await db.schedule("b", { cron: "@hourly", job: report, priority: 3, concurrencyKey: "one-at-a-time" });
      await db.schedule("a", { cron: "@daily", timezone: "Asia/Tokyo", job: report, catchUp: "all", queue: "reports" });
      const a = await db.getSchedule("a");
      assert.deepEqual([a.cron, a.timezone, a.catchUp, a.job, a.queue, a.jobDefined], ["@daily", "Asia/Tokyo", "all", "sched-report", "reports", true]);
      assert.equal(a.nextAt, Date.UTC(2030, 0, 1, 15), "midnight in Tokyo (UTC+9)");
      const b = await db.getSchedule("b");
      assert.deepEqual([b.priority, b.concurrencyKey, b.maxAttempts, b.input], [3, "one-at-a-time", 3, null]);
      assert.equal(await db.getSchedule("zzz"), undefined);
      const first = await db.listSchedules({ limit: 1 });
      assert.deepEqual(
        first.schedules.map((s) => s.id),
        ["a"],
      );
      const second = await db.listSchedules({ cursor: first.nextCursor });
      assert.deepEqual([second.schedules.map((s) => s.id), second.nextCursor], [["b"], null]);
      assert.equal(await db.deleteSchedule("a"), true);
      assert.equal(await db.deleteSchedule("a"), false);
      assert.deepEqual(
        (await db.listSchedules()).schedules.map((s) => s.id),
        ["b"],
      );
      await db.close();
    });

    test("catch-up after an 8-hour downtime: latest runs one, all runs every slot, none skips", async () => {
      const path = kind === "file" ? join(tempDir(), "catchup.db") : undefined;
      const clock = new ManualClock(DAY0);
      const opened = path === undefined ? await openDb(kind, { clock }) : { db: await open({ path }, { clock }) };
      let db = opened.db;
      let events = fired(db);
      for (const catchUp of ["latest", "all", "none"]) await db.schedule(catchUp, { cron: "*/10 * * * *", job: report, catchUp });
      if (path === undefined) {
        // In memory the database cannot close and come back: the timer is simply not run for 8 hours.
        clock.set(DAY0 + 8 * HOUR + 5 * MINUTE);
      } else {
        await db.close();
        clock.set(DAY0 + 8 * HOUR + 5 * MINUTE);
        db = await open({ path }, { clock });
        events = fired(db); // slots due at open fire at once
        // The application's start-up calls schedule() again: same calendar, nothing skipped or repeated.
        for (const catchUp of ["latest", "all", "none"]) await db.schedule(catchUp, { cron: "*/10 * * * *", job: report, catchUp });
      }
      await db.runDue();
      assert.equal(events.length, 1 + 48);
      const slotsOf = (id) => events.filter((e) => e.scheduleId === id).map((e) => e.slotAt);
      assert.deepEqual(slotsOf("latest"), [DAY0 + 8 * HOUR]);
      const all = slotsOf("all");
      assert.equal(all.length, 48, "every 10 minutes for 8 hours");
      assert.deepEqual([all[0], all.at(-1)], [DAY0 + 10 * MINUTE, DAY0 + 8 * HOUR]);
      assert.deepEqual(slotsOf("none"), []);
      for (const id of ["latest", "all", "none"]) assert.equal((await db.getSchedule(id)).nextAt, DAY0 + 8 * HOUR + 10 * MINUTE);
      await db.close();
    });

    test("a paused queue leases nothing, durably; enqueues succeed; resume wakes the worker", async () => {
      const { db, clock, path } = await openDb(kind);
      const ran = [];
      const job = defineJob({ name: "sched-paused", run: (_s, input) => ran.push(input.n) });
      await db.enqueue(job, { n: 1 });
      assert.deepEqual(await db.pauseQueue("default"), { paused: true, changed: true });
      assert.deepEqual(await db.pauseQueue("default"), { paused: true, changed: false });
      await db.enqueue(job, { n: 2 });
      const worker = db.worker({ jobs: [job] });
      await worker.processUntilIdle();
      assert.deepEqual(ran, [], "nothing claimed while paused");
      let queues = await db.listQueues();
      assert.deepEqual(
        queues.map((q) => [q.name, q.paused, q.pausedAt, q.counts.pending]),
        [["default", true, T0, 2]],
      );
      let reopened = db;
      if (path !== undefined) {
        await db.close();
        reopened = await open({ path }, { clock });
        const w = reopened.worker({ jobs: [job] });
        await w.processUntilIdle();
        assert.deepEqual(ran, [], "still paused after a restart");
      }
      const started = reopened.worker({ jobs: [job] });
      started.start();
      assert.deepEqual(await reopened.resumeQueue("default"), { paused: false, changed: true });
      await reopened.runDue();
      await settle(10);
      assert.deepEqual(ran.sort(), [1, 2], "resume woke the started worker");
      queues = await reopened.listQueues();
      assert.deepEqual([queues[0].paused, queues[0].counts.completed], [false, 2]);
      await rejectsCode(reopened.pauseQueue(""), "DURQ_INVALID_INPUT");
      await reopened.close();
    });

    test("timeoutMs: a handler past it is aborted with DURQ_TIMEOUT, its attempt fails and is retried", async () => {
      const { db, clock } = await openDb(kind);
      const signals = [];
      let calls = 0;
      const slow = defineJob({
        name: `sched-slow-${kind}`,
        timeoutMs: 1000,
        retry: { maxAttempts: 2, backoff: { initialMs: 0, jitter: 0 } },
        run: (step) => {
          calls++;
          signals.push(step.signal);
          return calls === 1 ? new Promise(() => {}) : "done"; // the first attempt never returns
        },
      });
      const { id } = await db.enqueue(slow, {}, { concurrencyKey: "only-one" });
      const idle = db.worker({ jobs: [slow] }).processUntilIdle();
      await settle(5);
      assert.equal(calls, 1);
      clock.advance(999);
      await settle(5);
      assert.equal(signals[0].aborted, false, "not before the limit");
      clock.advance(1);
      assert.equal(await idle, 2);
      assert.equal(signals[0].aborted, true);
      assert.equal(signals[0].reason.code, "DURQ_TIMEOUT");
      const run = await db.getRun(id);
      assert.deepEqual([run.status, run.attempt, run.output], ["completed", 2, "done"], "retried, and the key was released");
      const history = await db.getRunEvents(id);
      assert.match(history.find((e) => e.kind === "retried").data.error, /timeoutMs of 1000 ms/);
      for (const bad of [0, -1, 1.5, "1000", 2 ** 31]) {
        assert.throws(
          () => defineJob({ name: "sched-bad-timeout", timeoutMs: bad, run: () => {} }),
          (e) => e.code === "DURQ_INVALID_INPUT",
        );
      }
      await db.close();
    });
  });
}

describe("schedules across a kill -9 (file)", () => {
  test("firings killed at random moments lose no slot and duplicate none", async () => {
    const path = join(tempDir(), "kill.db");
    let start = DAY0;
    for (let trial = 0; trial < 3; trial++) {
      const child = startChild("schedule-tick", path, String(start));
      let last = start;
      const lines = 20 + Math.floor(Math.random() * 60);
      for (let i = 0; i < lines; i++) last = Number((await child.next()).split(" ")[1]);
      child.child.kill("SIGKILL");
      assert.equal((await child.exited).signal, "SIGKILL");
      start = last + 30_000; // 30 s down before the next start: caught up by catchUp "all"
    }
    const end = start + 600_000; // well past anything the last child reached
    const clock = new ManualClock(end);
    const db = await open({ path }, { clock });
    defineJob({ name: "tick", run: () => {} });
    await db.runDue();
    const slots = [];
    let cursor;
    do {
      const page = await db.listRuns({ limit: 1000, cursor });
      for (const r of page.runs) slots.push(r.runAt);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    slots.sort((a, b) => a - b);
    assert.equal(new Set(slots).size, slots.length, "no slot has two runs");
    assert.equal(slots[0], DAY0 + 1000, "from the first slot");
    assert.equal(slots.at(-1), end, "to the last");
    assert.equal(slots.length, (end - DAY0) / 1000, "every second in between");
    assert.deepEqual(await db.integrityCheck(), ["ok"]);
    await db.close();
  });
});
