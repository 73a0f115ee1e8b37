// examples/session-timeout.mjs: run to the end, and killed with SIGKILL
// once its alarms are on disk then started again: every session ends
// exactly once, by an alarm delivered after the restart.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { open } from "durq";
import { cleanupDirs, tempDir } from "../test-support/helpers.mjs";

after(cleanupDirs);

const EXAMPLE = fileURLToPath(new URL("../../examples/session-timeout.mjs", import.meta.url));

/** Runs the example on `path`; `lines` collects stdout; `until(re)` resolves at the first line matching `re`. */
function run(path) {
  const child = spawn(process.execPath, [EXAMPLE, path], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const lines = [];
  const watchers = [];
  createInterface({ input: child.stdout }).on("line", (line) => {
    lines.push(line);
    for (const w of watchers) if (w.re.test(line)) w.resolve(line);
  });
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal, stderr })));
  const until = (re) => new Promise((resolve) => watchers.push({ re, resolve }));
  return { child, lines, exited, until };
}

async function endedOnce(path) {
  const db = await open({ path });
  const runs = (await db.listRuns({ job: "end-session", limit: 100 })).runs;
  assert.deepEqual(runs.map((r) => r.input.session).sort(), ["alice", "bob", "carol", "dave"], "one end-session run per session");
  assert.ok(runs.every((r) => r.status === "completed"));
  assert.deepEqual((await db.alarms("sessions").list()).alarms, [], "no alarm left");
  await db.close();
}

test("the session-timeout example ends every session once, from alarms reopened from disk", async () => {
  const path = join(tempDir(), "sessions.db");
  const r = run(path);
  const { code, stderr } = await r.exited;
  assert.equal(code, 0, stderr);
  assert.match(r.lines.join("\n"), /reopened: alarms pending for alice, bob, carol, dave/);
  assert.equal(r.lines.filter((l) => /logged out after/.test(l)).length, 4);
  assert.match(r.lines.at(-1), /done: 4 sessions ended, each once \(alice, bob, carol, dave\)/);
  await endedOnce(path);
});

test("killed with SIGKILL after its alarms were stored, it resumes and ends each session once", async () => {
  const path = join(tempDir(), "sessions.db");
  const first = run(path);
  await first.until(/reopened:/);
  first.child.kill("SIGKILL");
  assert.equal((await first.exited).signal, "SIGKILL");
  const second = run(path);
  const { code, stderr } = await second.exited;
  assert.equal(code, 0, stderr);
  assert.match(second.lines[0], /resuming: \d session\(s\) ended, \d alarm\(s\) pending/);
  assert.match(second.lines.at(-1), /done: 4 sessions ended, each once/);
  await endedOnce(path);
});
