// examples/cluster.mjs: a node:cluster primary owns the file and three
// forked processes are its clients; every run completes once, handled by
// the clients, and the file is sound afterwards.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { open } from "durq";
import { cleanupDirs, tempDir } from "../test-support/helpers.mjs";

after(cleanupDirs);

const EXAMPLE = fileURLToPath(new URL("../../examples/cluster.mjs", import.meta.url));

test("examples/cluster.mjs: the primary owns the file, three forked clients handle every run once", async () => {
  const path = join(tempDir(), "cluster.db");
  const { stdout } = await promisify(execFile)(process.execPath, [EXAMPLE, path], { timeout: 120_000 });
  assert.match(stdout, /^primary \d+: owner of /m);
  assert.equal(stdout.match(/^worker \d+: client$/gm)?.length, 3, stdout);
  assert.match(stdout, /^30 of 30 runs completed; completion events seen here: 30$/m);
  const handled = [...stdout.matchAll(/^ {2}process \d+ handled (\d+)$/gm)].map((m) => Number(m[1]));
  assert.equal(
    handled.reduce((a, b) => a + b, 0),
    30,
    stdout,
  );
  const db = await open({ path }, { exclusive: true });
  const runs = (await db.listRuns({ job: "resize", limit: 100 })).runs;
  assert.equal(runs.length, 30);
  assert.ok(runs.every((r) => r.status === "completed" && r.attempt === 1));
  assert.deepEqual(await db.integrityCheck(), ["ok"]);
  await db.close();
});
