// Deno and Bun (their npm packages' binaries) run the Node-facing smoke test
// (js/test-support/runtimes/smoke.mjs) against the built package, installed
// as a user's would be: "durq" resolved through <app>/node_modules/durq.
// Deno runs a memory database with one permission, reading the package (for
// durq_bg.wasm): no --allow-sys, no -A.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, describe, test } from "node:test";

const root = resolve(import.meta.dirname, "../..");
const pkg = join(root, "pkg");
const bin = (name) => join(root, "node_modules", ".bin", name);
const app = mkdtempSync(join(tmpdir(), "durq-runtimes-"));
after(() => rmSync(app, { recursive: true, force: true }));
mkdirSync(join(app, "node_modules"));
symlinkSync(pkg, join(app, "node_modules", "durq"), "dir");
writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", type: "module", private: true }));
copyFileSync(join(root, "js/test-support/runtimes/smoke.mjs"), join(app, "smoke.mjs"));

/** Runs `cmd args`, in the app, and parses the JSON line the smoke script printed last. */
function run(cmd, args) {
  const stdout = execFileSync(cmd, args, { cwd: app, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" }, timeout: 120_000 });
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
    assertMemory(run(bin("deno"), ["run", `--allow-read=${pkg}`, "smoke.mjs", "memory"]), "deno");
  });

  test("without that read permission, the error names the wasm and the fix", () => {
    let stderr = "";
    try {
      execFileSync(bin("deno"), ["run", "--no-prompt", "smoke.mjs", "memory"], {
        cwd: app,
        encoding: "utf8",
        env: { ...process.env, NO_COLOR: "1" },
        stdio: "pipe",
      });
    } catch (e) {
      stderr = String(e.stderr);
    }
    assert.match(stderr, /DurqError: cannot read durq.s wasm module at .*--allow-read/, stderr);
  });

  test("a file database: reopen, process, alarm (read and write of its folder, and the host name for the lock file)", () => {
    const dir = mkdtempSync(join(app, "db-"));
    assertFile(run(bin("deno"), ["run", `--allow-read=${pkg},${dir}`, `--allow-write=${dir}`, "--allow-sys=hostname", "smoke.mjs", "file", dir]), "deno");
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
