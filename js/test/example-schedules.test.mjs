// examples/schedules.mjs, run twice on one file as the README says: it
// pauses and resumes the queue, and the second run catches up the slots
// missed while no process had the file open; no slot has two runs.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { open } from "durq";
import { cleanupDirs, tempDir } from "../test-support/helpers.mjs";

after(cleanupDirs);

const EXAMPLE = fileURLToPath(new URL("../../examples/schedules.mjs", import.meta.url));

/** Runs the example to its end on `path`; resolves with its stdout lines. */
function run(path) {
  const child = spawn(process.execPath, [EXAMPLE, path], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  return new Promise((resolve, reject) =>
    child.on("exit", (code) => (code === 0 ? resolve(out.trim().split("\n")) : reject(new Error(`exit ${code}: ${err}`)))),
  );
}

test("the schedules example pauses, resumes and catches up on its second run", { timeout: 120_000 }, async () => {
  const path = join(tempDir(), "schedules.db");
  const first = await run(path);
  assert.ok(first.includes("paused the default queue: slots still fire, their runs wait"), first.join("\n"));
  assert.ok(
    first.some((l) => /^queue default: paused=true, 2 pending, 3 completed$/.test(l)),
    first.join("\n"),
  );
  const stopped = /next slot (\d\d:\d\d:\d\d)/.exec(first.at(-1))?.[1];
  assert.ok(stopped, first.at(-1));
  const second = await run(path);
  const slots = second.filter((l) => l.startsWith("fired")).map((l) => l.split(" slot ")[1]);
  assert.ok(slots.length >= 3, second.join("\n"));
  assert.equal(slots[0], stopped, "the first slot missed while stopped is caught up");
  const again = await open({ path });
  const runAts = [];
  let cursor;
  do {
    const page = await again.listRuns({ job: "heartbeat", limit: 1000, cursor });
    runAts.push(...page.runs.map((r) => r.runAt));
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  assert.equal(new Set(runAts).size, runAts.length, "one run per slot");
  assert.ok(
    runAts.every((t) => t % 2000 === 0),
    "every run is at a slot",
  );
  await again.close();
});
