// Deno and Bun (their npm packages' binaries) run the Node-facing smoke test
// (js/test-support/runtimes/smoke.mjs, outside js/test/ so that node --test
// does not take it for a test) against the packed package, installed as a
// user's would be: `npm pack pkg/` unpacked into <app>/node_modules/durq, its
// dependency beside it, "durq" resolved through the package's exports. Deno
// runs a memory database with one permission, reading the package (for
// durq_bg.wasm): --allow-read=node_modules/durq, no --allow-sys, no -A.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, describe, test } from "node:test";

const root = resolve(import.meta.dirname, "../..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const app = mkdtempSync(join(tmpdir(), "durq-runtimes-"));
after(() => rmSync(app, { recursive: true, force: true }));
const pkg = join(app, "node_modules", "durq");
mkdirSync(pkg, { recursive: true });
const tarball = execFileSync("npm", ["pack", join(root, "pkg"), "--pack-destination", app, "--silent"], { encoding: "utf8" })
  .trim()
  .split("\n")
  .at(-1);
execFileSync("tar", ["xzf", join(app, tarball), "-C", pkg, "--strip-components=1"]);
symlinkSync(join(root, "node_modules", "canonicalize"), join(app, "node_modules", "canonicalize"), "dir");
writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", type: "module", private: true }));
copyFileSync(join(root, "js/test-support/runtimes/smoke.mjs"), join(app, "smoke.mjs"));
const env = { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" };

/** Runs `cmd args`, in the app, and parses the JSON line the smoke script printed last. */
function run(cmd, args) {
  const stdout = execFileSync(cmd, args, { cwd: app, encoding: "utf8", env, timeout: 120_000 });
  return JSON.parse(stdout.trim().split("\n").at(-1));
}

function assertMemory(out, runtime) {
  assert.deepEqual(out.run, { status: "completed", output: { twice: 42, runtime }, attempt: 1 });
  assert.equal(out.processed, 1);
  assert.deepEqual(out.alarm, { actorId: "s1", retryCount: 0 }, "the alarm fired");
  assert.equal(out.alarmAfter, null, "and is gone once its handler resolved");
}

function assertFile(out, runtime) {
  assert.deepEqual(out.reopened, { status: "pending", labels: { tenant: "acme" } }, "the run survived a close and reopen");
  assert.deepEqual(out.run, { status: "completed", output: { twice: 10, runtime } });
  assert.deepEqual(out.alarm, { actorId: "s2", retryCount: 0 }, "an alarm set before the reopen fired after it");
  assert.deepEqual(out.afterReopen, {
    stats: { pending: 0, leased: 0, completed: 1, failed: 0, cancelled: 0 },
    alarm: null,
    integrity: ["ok"],
  });
}

describe("Deno", () => {
  test("a memory database with only --allow-read of the package (no --allow-sys)", () => {
    assertMemory(run(bin("deno"), ["run", "--no-prompt", "--allow-read=node_modules/durq", "smoke.mjs", "memory"]), "deno");
  });

  test("without that read permission, the error names the wasm and the fix", () => {
    let stderr = "";
    try {
      execFileSync(bin("deno"), ["run", "--no-prompt", "smoke.mjs", "memory"], {
        cwd: app,
        encoding: "utf8",
        env,
        stdio: "pipe",
      });
    } catch (e) {
      stderr = String(e.stderr);
    }
    assert.match(stderr, /DurqError: cannot read durq.s wasm module at .*--allow-read/, stderr);
  });

  test("a file database: reopen, process, alarm (read and write of its folder only, no --allow-sys)", () => {
    const dir = mkdtempSync(join(app, "db-"));
    assertFile(run(bin("deno"), ["run", "--no-prompt", `--allow-read=node_modules/durq,${dir}`, `--allow-write=${dir}`, "smoke.mjs", "file", dir]), "deno");
  });
});

describe("Bun", () => {
  test("a memory database", () => {
    assertMemory(run(bin("bun"), ["run", "smoke.mjs", "memory"]), "bun");
  });

  test("a file database: reopen, process, alarm", () => {
    const dir = mkdtempSync(join(app, "db-"));
    assertFile(run(bin("bun"), ["run", "smoke.mjs", "file", dir]), "bun");
  });
});
