// The lock file of a database file opened with { exclusive: true }: a
// second process (or a second open in this process) fails at once with
// DURQ_LOCKED; a lock left by a dead process is taken over. (Without
// exclusive, a second process is a client: shared-processes.test.mjs.)

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { defineJob, open } from "durq";
import { cleanupDirs, rejectsCode, startChild, tempDir } from "../test-support/helpers.mjs";

after(cleanupDirs);

const job = defineJob({ name: "lock-job", run: () => 1 });

test("a second process opening the same file gets DURQ_LOCKED naming the holder", async () => {
  const path = join(tempDir(), "locked.db");
  const { child, next, exited } = startChild("hold", path);
  assert.equal(await next(), `open ${child.pid}`);
  const e = await rejectsCode(open({ path }, { exclusive: true }), "DURQ_LOCKED");
  assert.match(e.message, new RegExp(`process ${child.pid}`));
  assert.ok(e.message.includes(`${path}.lock`), e.message);
  child.stdin.write("close\n");
  assert.equal(await next(), "closed");
  assert.equal((await exited).code, 0);
  assert.equal(existsSync(`${path}.lock`), false, "close() removes the lock file");
  const db = await open({ path }, { exclusive: true });
  await db.enqueue(job, 1);
  await db.close();
});

test("opening a file twice in one process gets DURQ_LOCKED", async () => {
  const path = join(tempDir(), "twice.db");
  const db = await open({ path }, { exclusive: true });
  const { id } = await db.enqueue(job, "first");
  const e = await rejectsCode(open({ path }, { exclusive: true }), "DURQ_LOCKED");
  assert.match(e.message, /already open in this process/);
  // The first handle is unharmed.
  assert.equal((await db.getRun(id)).input, "first");
  assert.equal(readFileSync(`${path}.lock`, "utf8"), `${process.pid}\n${hostname()}\n`);
  await db.close();
  const again = await open({ path }, { exclusive: true });
  assert.equal((await again.getRun(id)).input, "first");
  await again.close();
});

test("a lock left by a dead process is taken over", async () => {
  const path = join(tempDir(), "stale.db");
  const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  const deadPid = Number(dead.stdout);
  assert.ok(deadPid > 0);
  writeFileSync(`${path}.lock`, `${deadPid}\n${hostname()}\n`);
  const db = await open({ path }, { exclusive: true });
  assert.equal(readFileSync(`${path}.lock`, "utf8"), `${process.pid}\n${hostname()}\n`);
  await db.close();
  assert.equal(existsSync(`${path}.lock`), false);
});

test("a lock held on another host is respected", async () => {
  const path = join(tempDir(), "remote.db");
  writeFileSync(`${path}.lock`, `1\nsome-other-host.invalid\n`);
  const e = await rejectsCode(open({ path }, { exclusive: true }), "DURQ_LOCKED");
  assert.match(e.message, /on host some-other-host\.invalid/);
});

test("processes racing to take over one stale lock: exactly one wins", async () => {
  for (let round = 0; round < 3; round++) {
    const path = join(tempDir(), `race-${round}.db`);
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
    writeFileSync(`${path}.lock`, `${Number(dead.stdout)}\n${hostname()}\n`);
    const children = Array.from({ length: 4 }, () => startChild("hold", path));
    // Each child either opens (prints "open <pid>") or fails with DURQ_LOCKED and exits 1.
    const outcomes = await Promise.all(
      children.map(async (c) => {
        try {
          return { c, line: await c.next() };
        } catch {
          return { c, exit: await c.exited };
        }
      }),
    );
    const winners = outcomes.filter((o) => o.line !== undefined);
    assert.equal(winners.length, 1, `round ${round}: ${outcomes.map((o) => o.line ?? o.exit?.stderr).join(" | ")}`);
    for (const o of outcomes.filter((x) => x.exit !== undefined)) assert.match(o.exit.stderr, /DURQ_LOCKED/);
    const w = winners[0].c;
    w.child.stdin.write("close\n");
    assert.equal(await w.next(), "closed");
    await w.exited;
  }
});
