// Alarms through the built package, against every storage kind, one test
// per semantic of the issue: never early (an early timer re-arms), due at
// open fire at once, at least once across a SIGKILL, retries with backoff
// persisted across a restart then `alarm:abandoned`, set / delete while the
// handler runs, one timer for every namespace and the queue's delayed runs,
// nothing after close(); plus a restart in new processes, and bad input.
// Time is a ManualClock: nothing here waits real seconds.

import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { after, describe, test } from "node:test";
import { defineJob, ManualClock, open } from "durq";
import { cleanupDirs, deferred, openDb, recordEvents, rejectsCode, settle, startChild, STORAGES, T0, tempDir, throwsCode } from "../test-support/helpers.mjs";
import { join } from "node:path";

after(cleanupDirs);

/** A ManualClock whose timers fire when half their delay has passed: a host timer that wakes early. */
class EarlyClock extends ManualClock {
  setTimeout(fn, ms) {
    return super.setTimeout(fn, Math.max(1, Math.floor(ms / 2)));
  }
}

/** Registers a handler on `ns` that records [actorId, delivery, now] and runs `body`. */
function record(db, ns, body = () => {}) {
  const calls = [];
  const off = db.onAlarm(ns, async (actorId, delivery) => {
    const { signal, ...rest } = delivery;
    assert.ok(signal instanceof AbortSignal && !signal.aborted, "a live AbortSignal with each delivery");
    calls.push([actorId, rest, db.clock.now()]);
    return body(actorId, delivery);
  });
  return { calls, off };
}

const delayed = defineJob({ name: "alarm-delayed", run: () => "ran" });

for (const kind of STORAGES) {
  describe(`alarms (${kind})`, () => {
    test("set is an upsert; get, delete and list read it back", async () => {
      const { db } = await openDb(kind);
      const rooms = db.alarms("rooms");
      assert.equal(db.alarms("rooms"), rooms, "one handle per namespace");
      await rooms.set("a", T0 + 5000);
      await rooms.set("a", new Date(T0 + 7000));
      await rooms.set("b", T0 + 6000);
      assert.equal(await rooms.get("a"), T0 + 7000);
      assert.equal(await rooms.get("zzz"), null);
      assert.equal(await db.alarms("other").get("a"), null, "namespaces are separate");
      const page = await rooms.list({ limit: 1 });
      assert.deepEqual(page.alarms, [{ actorId: "b", scheduledTime: T0 + 6000, deliverAt: T0 + 6000, retryCount: 0 }]);
      const rest = await rooms.list({ limit: 1, cursor: page.nextCursor });
      assert.deepEqual(rest, { alarms: [{ actorId: "a", scheduledTime: T0 + 7000, deliverAt: T0 + 7000, retryCount: 0 }], nextCursor: null });
      assert.deepEqual(
        (await rooms.list({ before: T0 + 6500 })).alarms.map((a) => a.actorId),
        ["b"],
      );
      assert.equal(await rooms.delete("a"), true);
      assert.equal(await rooms.delete("a"), false);
      assert.equal(await rooms.get("a"), null);
      await db.close();
    });

    test("1. an alarm never fires before its time; a timer that wakes early re-arms", async () => {
      const clock = new EarlyClock(T0);
      const { db } = await openDb(kind, { clock });
      const { calls } = record(db, "n");
      await db.alarms("n").set("a", T0 + 10_000);
      await settle(8);
      assert.equal(db.nextTimerAt, T0 + 10_000);
      clock.advance(5000); // the timer fires here, 5 s early
      await settle(8);
      assert.equal(calls.length, 0, "not before its time");
      assert.equal(db.nextTimerAt, T0 + 10_000, "re-armed for the alarm");
      clock.advance(4999);
      await settle(8);
      assert.equal(calls.length, 0, "1 ms early is early");
      clock.advance(1);
      await settle(8);
      assert.equal(calls.length, 1);
      assert.equal(calls[0][0], "a");
      assert.deepEqual(calls[0][1], { scheduledTime: T0 + 10_000, retryCount: 0, isRetry: false });
      assert.ok(calls[0][2] >= T0 + 10_000);
      await settle(8);
      assert.equal(await db.alarms("n").get("a"), null, "removed after the handler resolved");
      await db.close();
    });

    test("2. alarms already due fire at once when the handler is registered", async () => {
      const { db, clock, path } = await openDb(kind);
      await db.alarms("n").set("past", T0 - 60_000);
      await db.alarms("n").set("now", T0);
      await db.alarms("n").set("later", T0 + 60_000);
      let target = db;
      if (kind === "file") {
        await db.close();
        clock.advance(30_000);
        target = await open({ path }, { clock });
      }
      const { calls } = record(target, "n");
      await settle(8);
      assert.deepEqual(calls.map((c) => c[0]).sort(), ["now", "past"], "no clock advance needed");
      assert.equal(await target.alarms("n").get("later"), T0 + 60_000);
      await target.close();
    });

    test("4. a throwing handler is retried at 2 s, 4 s, ... 64 s plus jitter (as workerd), then abandoned", async () => {
      const { db, clock } = await openDb(kind);
      const events = recordEvents(db, ["alarm:failed", "alarm:abandoned"]);
      const { calls } = record(db, "n", () => {
        throw new Error("boom");
      });
      await db.alarms("n").set("a", T0);
      await settle(8);
      const bases = [2000, 4000, 8000, 16_000, 32_000, 64_000];
      for (let i = 0; i < bases.length; i++) {
        assert.equal(calls.length, i + 1);
        assert.equal(await db.alarms("n").get("a"), T0, "get() keeps the time set during retries, as workerd's getAlarm()");
        const at = (await db.alarms("n").list()).alarms[0].deliverAt;
        const delay = at - calls[i][2];
        assert.ok(delay >= bases[i] && delay <= bases[i] * 1.25, `retry ${i + 1} after ${delay} ms (base ${bases[i]})`);
        assert.equal(db.nextTimerAt, at);
        clock.set(at - 1);
        await settle(8);
        assert.equal(calls.length, i + 1, "not before the retry time");
        clock.set(at);
        await settle(8);
        assert.deepEqual(calls[i + 1][1], { scheduledTime: T0, retryCount: i + 1, isRetry: true }, "alarmInfo keeps the time set");
      }
      await settle(8);
      assert.equal(calls.length, 7, "1 delivery + 6 retries");
      assert.equal(await db.alarms("n").get("a"), null, "abandoned: deleted");
      const abandoned = events.filter(([n]) => n === "alarm:abandoned");
      assert.equal(abandoned.length, 1);
      assert.equal(abandoned[0][1].actorId, "a");
      assert.equal(abandoned[0][1].retryCount, 7);
      assert.equal(abandoned[0][1].error.message, "boom");
      assert.equal(events.filter(([n]) => n === "alarm:failed").length, 7);
      assert.equal(db.nextTimerAt, undefined, "nothing left to wake for");
      await db.close();
    });

    test("5. set during the handler survives it; delete during it does not abort it and drops the new alarm", async () => {
      const { db, clock } = await openDb(kind);
      const n = db.alarms("n");
      const gate = deferred();
      const seen = [];
      const { calls } = record(db, "n", async (actor, { scheduledTime }) => {
        if (actor === "a" && scheduledTime === T0) {
          seen.push(await n.get("a")); // the running alarm counts as fired (Durable Objects getAlarm)
          await n.set("a", T0 + 60_000);
          seen.push(await n.get("a"));
        }
        if (actor === "b") {
          await n.set("b", T0 + 60_000);
          await gate.promise;
          return "finished";
        }
      });
      await n.set("a", T0);
      await n.set("b", T0);
      await settle(8);
      assert.equal(await n.get("a"), T0 + 60_000, "the alarm set during the run survives its completion");
      assert.deepEqual(seen, [null, T0 + 60_000]);
      // b is still running: delete it
      assert.equal(await n.delete("b"), true);
      gate.resolve();
      await settle(8);
      assert.equal(calls.filter((c) => c[0] === "b").length, 1, "the running handler was not aborted, nor run again");
      assert.equal(await n.get("b"), null, "the newly set alarm is gone");
      clock.advance(60_000);
      await settle(8);
      assert.deepEqual(
        calls.map((c) => c[0]),
        ["a", "b", "a"],
        "only a fires again",
      );
      await db.close();
    });

    test("6. one timer serves every namespace and the queue's delayed runs", async () => {
      const { db, clock } = await openDb(kind);
      const fired = [];
      db.onAlarm("a", (actor) => void fired.push(`a:${actor}`));
      db.onAlarm("b", (actor) => void fired.push(`b:${actor}`));
      db.on("run:completed", () => fired.push("run"));
      const worker = db.worker({ jobs: [delayed] });
      worker.start();
      await db.enqueue(delayed, {}, { runAt: T0 + 5000 });
      await db.alarms("a").set("x", T0 + 3000);
      await db.alarms("b").set("y", T0 + 4000);
      await db.alarms("b").set("z", T0 + 6000);
      await settle(8);
      assert.equal(clock.pendingTimers, 1, "one timer");
      assert.equal(db.nextTimerAt, T0 + 3000, "armed for the earliest");
      const expect = [
        [T0 + 3000, ["a:x"], T0 + 4000],
        [T0 + 4000, ["a:x", "b:y"], T0 + 5000],
        [T0 + 5000, ["a:x", "b:y", "run"], T0 + 6000],
        [T0 + 6000, ["a:x", "b:y", "run", "b:z"], undefined],
      ];
      for (const [at, list, next] of expect) {
        clock.set(at);
        await settle(6);
        assert.deepEqual(fired, list, `at +${at - T0}`);
        assert.equal(db.nextTimerAt, next);
        assert.ok(clock.pendingTimers <= 1, "still one timer");
      }
      await worker.stop();
      await db.close();
    });

    test("7. close() stops the timer and no handler starts after it", async () => {
      const { db, clock } = await openDb(kind);
      const { calls } = record(db, "n");
      await db.alarms("n").set("a", T0 + 1000);
      await settle(8);
      assert.equal(clock.pendingTimers, 1);
      const closing = db.close();
      assert.equal(clock.pendingTimers, 0, "the timer is cleared at once");
      clock.advance(10_000);
      await closing;
      await settle(8);
      assert.equal(calls.length, 0);
      throwsCode(() => db.alarms("n"), "DURQ_CLOSED");
      throwsCode(() => db.onAlarm("m", () => {}), "DURQ_CLOSED");
    });

    test("bad input: names, actor ids, times, handlers and options get DURQ_INVALID_INPUT; nothing stored is lost", async () => {
      const { db, path } = await openDb(kind);
      await db.alarms("n").set("keep", T0 + 1);
      for (const bad of ["", "a/b", "a\\b", "..", "x..y", ".hidden", "nul\0x", "tab\tx", "x".repeat(129), "lone\uD800", 42, null]) {
        throwsCode(() => db.alarms(bad), "DURQ_INVALID_INPUT");
        throwsCode(() => db.onAlarm(bad, () => {}), "DURQ_INVALID_INPUT");
      }
      if (path !== undefined) {
        const files = readdirSync(`${path}.alarms`);
        assert.ok(files.length > 0 && files.every((f) => f.startsWith("n.db")), `only the good namespace's files: ${files}`);
      }
      const n = db.alarms("n");
      for (const actor of ["", "x".repeat(257), "a\0b", 7, undefined]) {
        await rejectsCode(n.set(actor, T0), "DURQ_INVALID_INPUT");
        await rejectsCode(n.get(actor), "DURQ_INVALID_INPUT");
        await rejectsCode(n.delete(actor), "DURQ_INVALID_INPUT");
      }
      for (const time of [-1, NaN, Infinity, 2 ** 48, "soon", new Date("nope"), undefined]) {
        await rejectsCode(n.set("a", time), "DURQ_INVALID_INPUT");
      }
      for (const opts of [{ limit: 0 }, { limit: 1001 }, { before: -1 }, { cursor: "nope" }, { cursor: 5 }, { other: 1 }, "x"]) {
        await rejectsCode(n.list(opts), "DURQ_INVALID_INPUT");
      }
      throwsCode(() => db.onAlarm("n", "not a function"), "DURQ_INVALID_INPUT");
      throwsCode(() => db.onAlarm("n", () => {}, { concurrency: 0 }), "DURQ_INVALID_INPUT");
      throwsCode(() => db.onAlarm("n", () => {}, { speed: 1 }), "DURQ_INVALID_INPUT");
      db.onAlarm("n", () => {});
      throwsCode(() => db.onAlarm("n", () => {}), "DURQ_INVALID_STATE");
      assert.deepEqual(
        (await n.list()).alarms.map((a) => a.actorId),
        ["keep"],
        "nothing stored was lost",
      );
      await db.close();
    });

    test("unregistering waits for running handlers; a new handler cannot overlap them; none starts after close() inside a handler", async () => {
      const { db } = await openDb(kind);
      const gate = deferred();
      const first = record(db, "n", () => gate.promise);
      await db.alarms("n").set("a", T0);
      await settle(8);
      assert.equal(first.calls.length, 1);
      const stopped = first.off();
      throwsCode(() => db.onAlarm("n", () => {}), "DURQ_INVALID_STATE");
      gate.resolve();
      await stopped;
      assert.equal(await db.alarms("n").get("a"), null, "its outcome committed before the promise resolved");
      const second = record(db, "n", () => void db.close()); // awaiting it would wait for this very handler
      await Promise.all(["b", "c", "d"].map((x) => db.alarms("n").set(x, T0)));
      await settle(8);
      await db.close();
      assert.equal(second.calls.length, 1, "the handler that closed the database was the last to start");
      assert.equal(first.calls.length, 1);
    });

    test("a backlog larger than a sweep page drains once each; alarms deleted, moved or added meanwhile are honoured", async () => {
      const { db, clock } = await openDb(kind);
      const n = db.alarms("n");
      const ids = Array.from({ length: 600 }, (_, i) => `a${String(i).padStart(3, "0")}`);
      await Promise.all(ids.map((id, i) => n.set(id, T0 - 1000 + i))); // all due, in id order
      const fired = [];
      let first = true;
      db.onAlarm(
        "n",
        async (actor) => {
          fired.push(actor);
          if (first) {
            first = false;
            // while the rest wait (already read by the sweep): delete some, move some, add one behind the cursor
            await Promise.all([n.delete("a300"), n.delete("a599"), n.set("a400", T0 + 60_000), n.set("early", T0 - 5000)]);
          }
        },
        { concurrency: 10 },
      );
      // until nothing due is left (each round lets a few deliveries commit)
      for (let i = 0; i < 500 && (await n.list({ before: T0 + 1, limit: 1 })).alarms.length > 0; i++) await settle(4);
      const counts = new Map();
      for (const a of fired) counts.set(a, (counts.get(a) ?? 0) + 1);
      assert.ok(
        [...counts.values()].every((c) => c === 1),
        "each once",
      );
      assert.equal(counts.has("a300") || counts.has("a599"), false, "deleted while queued: never fired");
      assert.equal(counts.has("a400"), false, "moved to the future: not yet");
      assert.equal(counts.has("early"), true, "set behind the sweep: fired");
      assert.equal(fired.length, 600 - 3 + 1);
      clock.set(T0 + 60_000);
      await settle(8);
      assert.equal(fired.at(-1), "a400");
      assert.deepEqual((await n.list()).alarms, []);
      await db.close();
    });

    test("an alarm set due during a long backlog is delivered in time order, not after the backlog", async () => {
      const { db } = await openDb(kind);
      const n = db.alarms("n");
      await Promise.all(Array.from({ length: 400 }, (_, i) => n.set(`b${String(i).padStart(3, "0")}`, T0)));
      const fired = [];
      db.onAlarm(
        "n",
        async (actor) => {
          fired.push(actor);
          // A past time is raised to now (T0, as the backlog's): "a-urgent" sorts before every alarm of it.
          if (fired.length === 3) await n.set("a-urgent", T0 - 5000);
        },
        { concurrency: 1 },
      );
      for (let i = 0; i < 1000 && fired.length < 10; i++) await settle(2);
      assert.ok(fired.indexOf("a-urgent") >= 0 && fired.indexOf("a-urgent") <= 4, `delivered next, not after the backlog: ${fired.slice(0, 10)}`);
      await db.close();
    });

    test("a handler's concurrency holds and one actor never runs twice at once", async () => {
      const { db } = await openDb(kind);
      const gates = [];
      let running = 0;
      let peak = 0;
      db.onAlarm(
        "n",
        async () => {
          running++;
          peak = Math.max(peak, running);
          const g = deferred();
          gates.push(g);
          await g.promise;
          running--;
        },
        { concurrency: 2 },
      );
      await Promise.all(["a", "b", "c", "d", "e"].map((x) => db.alarms("n").set(x, T0)));
      await settle(8);
      assert.equal(running, 2);
      while (gates.length > 0) {
        gates.shift().resolve();
        await settle(8);
      }
      assert.equal(peak, 2);
      assert.deepEqual((await db.alarms("n").list()).alarms, [], "all five delivered");
      await db.close();
    });
  });
}

/** `child.mjs alarms-set`: rooms/r1, rooms/r2, sessions/s1, due now, on `path`. */
async function setInChild(path) {
  const setter = startChild("alarms-set", path);
  assert.equal(await setter.next(), "set");
  assert.equal((await setter.exited).code, 0);
}

/** `child.mjs alarms-fire`: handles both namespaces until `n` deliveries, closes; returns its "fired ..." lines, sorted. */
async function fireInChild(path, n) {
  const firer = startChild("alarms-fire", path, String(n));
  const lines = [];
  for (let line = await firer.next(); line !== "closed"; line = await firer.next()) lines.push(line);
  assert.equal((await firer.exited).code, 0);
  return lines.sort();
}

describe("alarms across processes (file)", () => {
  test("retry counts survive a restart", async () => {
    const path = join(tempDir(), "retry.db");
    const clock = new ManualClock(T0);
    let db = await open({ path }, { clock, synchronous: "normal" });
    const first = record(db, "n", () => {
      throw new Error("down");
    });
    await db.alarms("n").set("a", T0);
    await settle(8);
    clock.set((await db.alarms("n").list()).alarms[0].deliverAt);
    await settle(8);
    assert.equal(first.calls.length, 2);
    await db.close();
    clock.advance(120_000);
    db = await open({ path }, { clock });
    const again = record(db, "n");
    await settle(8);
    assert.equal(again.calls.length, 1);
    assert.equal(again.calls[0][1].retryCount, 2, "not reset by the restart");
    await db.close();
  });

  test("alarms set in two namespaces fire once each in a new process", async () => {
    const path = join(tempDir(), "restart.db");
    await setInChild(path);
    assert.deepEqual(await fireInChild(path, 3), ["fired rooms r1 0", "fired rooms r2 0", "fired sessions s1 0"]);
    const db = await open({ path });
    assert.deepEqual((await db.alarms("rooms").list()).alarms, [], "delivered: not fired again");
    assert.deepEqual((await db.alarms("sessions").list()).alarms, []);
    assert.deepEqual(
      readdirSync(`${path}.alarms`)
        .filter((f) => f.endsWith(".db"))
        .sort(),
      ["rooms.db", "sessions.db"],
    );
    await db.close();
  });

  test("3. at least once: a process killed inside the handler fires the alarm again after reopen", async () => {
    const path = join(tempDir(), "crash.db");
    await setInChild(path);
    const hang = startChild("alarms-hang", path);
    const started = [await hang.next(), await hang.next()].sort();
    assert.deepEqual(started, ["started r1", "started r2"]);
    hang.child.kill("SIGKILL");
    assert.equal((await hang.exited).signal, "SIGKILL");
    assert.deepEqual(await fireInChild(path, 3), ["fired rooms r1 0", "fired rooms r2 0", "fired sessions s1 0"], "each alarm again, once");
  });
});
