// Shared helpers of the JS tests (kept outside js/test/ so that
// `node --test js/test/` does not run them as test files).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { open, ManualClock } from "durq";

/** A fixed start time for fake clocks: 2030-01-01T00:00:00Z. */
export const T0 = Date.UTC(2030, 0, 1);

/** The storage kinds every conformance test runs against (DURQ_TEST_STORAGES=memory narrows it while debugging). */
export const STORAGES = (process.env.DURQ_TEST_STORAGES ?? "memory,file").split(",");

const dirs = [];

/** A fresh temporary directory, removed by `cleanupDirs()`. */
export function tempDir() {
  const d = mkdtempSync(join(tmpdir(), "durq-test-"));
  dirs.push(d);
  return d;
}

export function cleanupDirs() {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/**
 * Opens a database of `kind` ("memory" or "file") with a ManualClock at T0
 * (unless `options.clock` is given). Returns { db, clock, path }.
 */
export async function openDb(kind, options = {}) {
  const clock = options.clock ?? new ManualClock(T0);
  if (kind === "memory") {
    const db = await open({ memory: true }, { ...options, clock });
    return { db, clock, path: undefined };
  }
  const path = options.path ?? join(tempDir(), "sub", "test.db");
  const { path: _ignored, ...rest } = options;
  const db = await open({ path }, { synchronous: "normal", ...rest, clock });
  return { db, clock, path };
}

/**
 * A clock whose timers never fire: time moves only when `set`/`advance` is
 * called, and heartbeats never happen, so a handler that hangs lets its
 * lease lapse (a crashed or stuck worker).
 */
export function frozenTimerClock(start = T0) {
  let now = start;
  return {
    now: () => now,
    setTimeout: () => 0,
    clearTimeout: () => {},
    advance(ms) {
      now += ms;
    },
  };
}

/** Lets the write queue flush (it flushes at setImmediate) and promise callbacks run. */
export async function settle(rounds = 3) {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}

/** A promise with its resolve/reject exposed. */
export function deferred() {
  let resolve, reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Asserts that `promiseOrFn` rejects (or throws) a DurqError with `code`; returns the error. */
export async function rejectsCode(promiseOrFn, code, messagePart) {
  let error;
  try {
    await (typeof promiseOrFn === "function" ? promiseOrFn() : promiseOrFn);
  } catch (e) {
    error = e;
  }
  assert.ok(error, `expected a ${code} error, got none`);
  assert.equal(error.name, "DurqError", `expected a DurqError, got ${error?.stack ?? error}`);
  assert.equal(error.code, code, `expected ${code}, got ${error.code}: ${error.message}`);
  assert.ok(error instanceof Error);
  if (messagePart !== undefined) assert.match(error.message, messagePart);
  return error;
}

/** Asserts that a synchronous call throws a DurqError with `code`. */
export function throwsCode(fn, code) {
  assert.throws(fn, (e) => e?.name === "DurqError" && e.code === code);
}

/** Collects every event of `db` in order as [name, payload] pairs. */
export function recordEvents(db, names) {
  const all = names ?? [
    "run:enqueued",
    "run:leased",
    "run:completed",
    "run:failed",
    "run:retrying",
    "run:cancelled",
    "run:deleted",
    "run:lease-lost",
    "run:lease-expired",
    "step:completed",
    "run:progress",
    "run:log",
    "error",
  ];
  const log = [];
  for (const n of all) db.on(n, (p) => log.push([n, p]));
  return log;
}

const CHILD = fileURLToPath(new URL("./child.mjs", import.meta.url));

/**
 * Starts `node child.mjs mode path` (js/test-support/child.mjs). Returns the
 * child, `next()` reading its next stdout line (rejecting if it exits first,
 * with its stderr), and `exited`, resolving with `{ code, signal, stderr }`.
 */
export function startChild(mode, path, ...args) {
  const child = spawn(process.execPath, [CHILD, mode, path, ...args], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const r = await lines.next();
    if (r.done) throw new Error(`child exited early: ${stderr}`);
    return r.value;
  };
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal, stderr })));
  return { child, next, exited };
}
