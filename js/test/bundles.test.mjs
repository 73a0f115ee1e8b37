// Every bundler a user has builds a tiny app from the packed package
// (`npm pack pkg/`, unpacked into an app's node_modules): Vite, esbuild
// (browser and node platforms), webpack 5 and Rollup. The browser bundles
// run a job in headless Chromium; the Node bundle runs in Node. Also:
// TypeScript's "bundler" resolution sees durq/browser, and an esbuild
// browser bundle that leaves the wasm behind fails with DURQ_WASM_UNAVAILABLE.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import * as esbuild from "esbuild";
import { rollup } from "rollup";
import nodeResolve from "@rollup/plugin-node-resolve";
import { build as viteBuild } from "vite";
import webpack from "webpack";
import { launchChromium, pageLog, servePreview } from "../test-support/chromium.mjs";

const root = resolve(import.meta.dirname, "../..");
const fixtures = join(root, "js/test-support/bundle-apps");
const app = mkdtempSync(join(tmpdir(), "durq-bundlers-"));
const mods = join(app, "node_modules");
let browser;

before(async () => {
  // The package as npm would install it: the tarball, unpacked; its one dependency beside it.
  const tgz = execFileSync("npm", ["pack", join(root, "pkg"), "--pack-destination", app, "--silent"], { cwd: app, encoding: "utf8" })
    .trim()
    .split("\n")
    .at(-1);
  mkdirSync(join(mods, "durq"), { recursive: true });
  execFileSync("tar", ["-xzf", join(app, tgz), "-C", join(mods, "durq"), "--strip-components=1"]);
  symlinkSync(join(root, "node_modules/canonicalize"), join(mods, "canonicalize"), "dir");
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
  for (const f of readdirSync(fixtures)) copyFileSync(join(fixtures, f), join(app, f));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  rmSync(app, { recursive: true, force: true });
});

/** Writes `<dir>/dist/index.html` loading `script` (a module) from dist. */
function page(dir, script) {
  mkdirSync(join(dir, "dist"), { recursive: true });
  writeFileSync(join(dir, "dist/index.html"), `<!doctype html><meta charset="utf-8"><script type="module" src="./${script}"></script>`);
}

/** Serves `<dir>/dist`, opens it in Chromium and returns what the app reported. */
async function runInChromium(dir) {
  const server = await servePreview(dir);
  const context = await browser.newContext();
  const p = await context.newPage();
  const log = pageLog(p);
  try {
    await p.goto(server.url);
    await p.waitForFunction(() => window.__result !== undefined, null, { timeout: 60_000 });
    return { result: await p.evaluate(() => window.__result), log };
  } finally {
    await context.close();
    await server.close();
  }
}

const ok = { processed: 1, status: "completed", output: "hello bundler" };

/** The app with `option` (one of the wasm-*.js fixtures) as its wasm-option.js. */
function appWith(name, option) {
  const dir = join(app, name);
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(app, "app.js"), join(dir, "app.js"));
  copyFileSync(join(app, option), join(dir, "wasm-option.js"));
  return dir;
}

describe("bundlers", () => {
  test("Vite: the browser entry, wasm found through new URL(..., import.meta.url)", async () => {
    const dir = appWith("vite", "wasm-default.js");
    writeFileSync(join(dir, "index.html"), '<!doctype html><meta charset="utf-8"><script type="module" src="./app.js"></script>');
    await viteBuild({ root: dir, configFile: false, logLevel: "error", build: { outDir: "dist", target: "es2022" } });
    const { result, log } = await runInChromium(dir);
    assert.deepEqual(result, ok, log.join("\n"));
  });

  test("esbuild --platform=browser: durq/wasm with --loader:.wasm=file", async () => {
    const dir = appWith("esbuild", "wasm-esbuild.js");
    await esbuild.build({
      entryPoints: [join(dir, "app.js")],
      bundle: true,
      format: "esm",
      platform: "browser",
      outdir: join(dir, "dist"),
      loader: { ".wasm": "file" },
      logLevel: "error",
    });
    page(dir, "app.js");
    const { result, log } = await runInChromium(dir);
    assert.deepEqual(result, ok, log.join("\n"));
  });

  test("esbuild --platform=browser without the wasm option: DURQ_WASM_UNAVAILABLE naming the fix, not a TypeError", async () => {
    const dir = appWith("esbuild-bare", "wasm-default.js");
    await esbuild.build({ entryPoints: [join(dir, "app.js")], bundle: true, format: "esm", platform: "browser", outdir: join(dir, "dist"), logLevel: "error" });
    page(dir, "app.js");
    const { result } = await runInChromium(dir);
    assert.equal(result.code, "DURQ_WASM_UNAVAILABLE", JSON.stringify(result));
    // A static server answers 404; Vite's preview falls back to index.html, which does not compile: either way the fix is named.
    assert.match(result.message, /\/wasm\/durq_bg\.wasm.*To fix it, pass open\(target, \{ wasm \}\)/s);
  });

  test("esbuild --platform=node: one file, the wasm inlined with --loader:.wasm=binary, runs in Node", async () => {
    // Built into a folder of its own, away from any node_modules: the bundle alone.
    const dir = mkdtempSync(join(tmpdir(), "durq-node-bundle-"));
    try {
      const outfile = join(dir, "server.mjs");
      // target node20: esbuild's default emits Uint8Array.fromBase64 for binary files, which Node 20 lacks.
      await esbuild.build({
        entryPoints: [join(app, "node-app.js")],
        bundle: true,
        format: "esm",
        platform: "node",
        target: "node20",
        outfile,
        loader: { ".wasm": "binary" },
        logLevel: "error",
      });
      const out = JSON.parse(
        execFileSync(process.execPath, [outfile], { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20 }).trim(),
      );
      assert.deepEqual(out, { processed: 1, status: "completed", output: "hello node bundle" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("webpack 5: the browser entry, new URL(..., import.meta.url) emitted as an asset", async () => {
    const dir = appWith("webpack", "wasm-default.js");
    const stats = await new Promise((res, rej) =>
      webpack(
        {
          mode: "production",
          context: dir,
          entry: "./app.js",
          target: "web",
          output: { path: join(dir, "dist"), filename: "app.js" },
          resolve: { modules: [mods] },
        },
        (err, s) => (err ? rej(err) : res(s)),
      ),
    );
    assert.equal(stats.hasErrors(), false, stats.toString("errors-only"));
    assert.ok(
      readdirSync(join(dir, "dist")).some((f) => f.endsWith(".wasm")),
      "webpack emitted the wasm",
    );
    page(dir, "app.js");
    const { result, log } = await runInChromium(dir);
    assert.deepEqual(result, ok, log.join("\n"));
  });

  test("Rollup with @rollup/plugin-node-resolve (browser): the wasm copied beside the bundle", async () => {
    const dir = appWith("rollup", "wasm-copied.js");
    const bundle = await rollup({ input: join(dir, "app.js"), plugins: [nodeResolve({ browser: true, rootDir: app })], logLevel: "silent" });
    await bundle.write({ dir: join(dir, "dist"), format: "es" });
    await bundle.close();
    copyFileSync(join(mods, "durq/wasm/durq_bg.wasm"), join(dir, "dist/durq_bg.wasm"));
    page(dir, "app.js");
    const { result, log } = await runInChromium(dir);
    assert.deepEqual(result, ok, log.join("\n"));
  });

  test('TypeScript with moduleResolution "bundler" sees connect and serve in durq/browser', () => {
    writeFileSync(
      join(app, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "ESNext",
          moduleResolution: "bundler",
          lib: ["ES2022", "DOM"],
          types: [],
          strict: true,
          noEmit: true,
          skipLibCheck: true,
        },
        files: ["types.ts"],
      }),
    );
    let out = "";
    try {
      execFileSync(join(root, "node_modules/.bin/tsc"), ["-p", app], { encoding: "utf8" });
    } catch (e) {
      out = `${e.stdout}${e.stderr}`;
    }
    assert.equal(out, "", out);
  });
});
