// Runs workers in real workerd (the npm package's binary, no network): a
// worker script bundled with esbuild, a Cap'n Proto config written next to
// it, and `workerd serve` as a child process that a test can stop (SIGTERM),
// kill -9 and start again on the same Durable Object storage directory.
//
// Kept outside js/test/ (as helpers.mjs is): `node --test js/test/` runs
// every .js/.mjs file under a `test` directory as a test file, so neither
// this module nor the fixture workers (js/test-support/workerd/) may live
// there.
//
//   const w = await startWorker({ entry, durableObjects: [{ className: "Q", binding: "Q" }] });
//   const res = await w.fetch("/enqueue", { method: "POST", body: "..." });
//   await w.stop();   // SIGTERM; or w.kill() for SIGKILL
//   await w.start();  // same config, same storage, a new port (w.url)
//   await w.dispose(); // stop and remove the temporary directory
//
// The wasm of a bundled package is kept as a module of its own: esbuild's
// `copy` loader leaves `import wasm from "../wasm/durq_bg.wasm"` an import
// of a copied file next to the bundle, and the config lists that file as a
// `wasm = embed "..."` module (importing it gives a `WebAssembly.Module`,
// the only way workerd accepts wasm: it refuses to compile bytes).
//
// Readiness and the port: workerd listens on 127.0.0.1:0 and, with
// `--control-fd`, writes `{"event":"listen","socket":"http","port":N}` on
// that descriptor once the socket is bound; then one HTTP request is polled
// until it gets any response.

import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** The workerd binary of the npm package `workerd`. */
export const WORKERD = process.env.DURQ_WORKERD ?? join(REPO, "node_modules/.bin/workerd");

/** The compatibility date the fixtures use (workerd 1.20261117.1 supports up to 2026-11-17). */
export const COMPATIBILITY_DATE = "2026-11-01";

/** Every workerd process this module started and that has not exited: killed if the test process exits first. */
const live = new Set();
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

/**
 * Bundles `entry` into `outdir` for workerd. Resolution takes the
 * `workerd`, `worker` and `browser` export conditions (as wrangler does);
 * `cloudflare:*` (and `extraExternal`) stay imports for workerd to provide;
 * each imported `.wasm` file is copied next to the bundle as its own module.
 * Returns the config's module list, the main module first:
 * `[{ name, type: "esModule" | "wasm", file }]` (`file` absolute).
 */
export async function bundleWorker(entry, outdir, { extraExternal = [], define = {}, minify = false } = {}) {
  mkdirSync(outdir, { recursive: true });
  const result = await esbuild.build({
    entryPoints: [entry],
    outdir,
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    conditions: ["workerd", "worker", "browser"],
    mainFields: ["browser", "module", "main"],
    external: ["cloudflare:*", ...extraExternal],
    loader: { ".wasm": "copy" },
    assetNames: "[name]-[hash]",
    entryNames: "[name]",
    define,
    minify,
    sourcemap: false,
    metafile: true,
    logLevel: "silent",
    absWorkingDir: REPO,
  });
  const modules = [];
  for (const [out, info] of Object.entries(result.metafile.outputs)) {
    const file = resolve(REPO, out);
    if (info.entryPoint !== undefined) modules.unshift({ name: basename(file), type: "esModule", file });
    else if (file.endsWith(".wasm")) modules.push({ name: basename(file), type: "wasm", file });
    else throw new Error(`bundleWorker: unexpected output ${file}`);
  }
  return modules;
}

/** A capnp text literal. */
const str = (s) => JSON.stringify(String(s));

/**
 * The text of a workerd config (`const config :Workerd.Config`) serving one
 * worker on the socket `http`, to be written into `configDir`. Options:
 * - `modules`: from {@link bundleWorker};
 * - `durableObjects`: `[{ className, binding = className, uniqueKey, enableSql = true, preventEviction = false }]`;
 * - `storageDir`: the directory of Durable Object storage (`localDisk`), or
 *   `undefined` for `inMemory`;
 * - `bindings`: `{ NAME: string | object }`, strings as `text`, others as `json`;
 * - `compatibilityDate`, `compatibilityFlags`.
 */
export function capnpConfig({
  configDir,
  modules,
  durableObjects = [],
  storageDir,
  bindings = {},
  compatibilityDate = COMPATIBILITY_DATE,
  compatibilityFlags = [],
}) {
  // `embed` paths are relative to the config file (an absolute one would be searched on the import path).
  const mods = modules.map((m) => `(name = ${str(m.name)}, ${m.type} = embed ${str(relative(configDir, m.file))})`);
  const nss = durableObjects.map(
    (d) =>
      `(className = ${str(d.className)}, uniqueKey = ${str(d.uniqueKey ?? `durq-test-${d.className}`)}, enableSql = ${d.enableSql ?? true}, preventEviction = ${d.preventEviction ?? false})`,
  );
  const binds = [
    ...durableObjects.map((d) => `(name = ${str(d.binding ?? d.className)}, durableObjectNamespace = ${str(d.className)})`),
    ...Object.entries(bindings).map(([name, v]) =>
      typeof v === "string" ? `(name = ${str(name)}, text = ${str(v)})` : `(name = ${str(name)}, json = ${str(JSON.stringify(v))})`,
    ),
  ];
  const services = [`(name = "main", worker = .worker)`];
  let storage = "";
  if (durableObjects.length > 0) {
    if (storageDir === undefined) storage = "durableObjectStorage = (inMemory = void),";
    else {
      services.push(`(name = "do-storage", disk = (path = ${str(storageDir)}, writable = true))`);
      storage = `durableObjectStorage = (localDisk = "do-storage"),`;
    }
  }
  return `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    ${services.join(",\n    ")},
  ],
  sockets = [ (name = "http", address = "127.0.0.1:0", http = (), service = "main") ],
);

const worker :Workerd.Worker = (
  modules = [
    ${mods.join(",\n    ")},
  ],
  compatibilityDate = ${str(compatibilityDate)},
  compatibilityFlags = [${compatibilityFlags.map(str).join(", ")}],
  durableObjectNamespaces = [${nss.join(", ")}],
  ${storage}
  bindings = [
    ${binds.join(",\n    ")}
  ],
);
`;
}

/**
 * A `workerd serve` process of one config, startable again after it
 * stopped or was killed. `url` is its base URL while it runs (a new port at
 * each start); `output()` is everything it wrote to stdout and stderr
 * (`console.log` of the worker included), across starts.
 */
export class Workerd {
  /** @param {{ configPath: string, experimental?: boolean, verbose?: boolean, readyTimeoutMs?: number }} options */
  constructor({ configPath, experimental = false, verbose = false, readyTimeoutMs = 30_000 }) {
    this.configPath = configPath;
    this.experimental = experimental;
    this.verbose = verbose;
    this.readyTimeoutMs = readyTimeoutMs;
    this.child = undefined;
    this.url = undefined;
    this.exited = undefined;
    this.starts = 0;
    this.log = "";
  }

  output() {
    return this.log;
  }

  get running() {
    return this.child !== undefined;
  }

  /** Starts workerd and resolves once it answers HTTP; rejects (with its output) if it exits or does not answer in time. */
  async start() {
    if (this.child !== undefined) throw new Error("workerd is already running");
    const args = ["serve", this.configPath, "--control-fd=3"];
    if (this.experimental) args.push("--experimental");
    if (this.verbose) args.push("--verbose");
    const child = spawn(WORKERD, args, { cwd: dirname(this.configPath), stdio: ["ignore", "pipe", "pipe", "pipe"] });
    this.starts += 1;
    this.log += `--- workerd start ${this.starts} (pid ${child.pid})\n`;
    live.add(child);
    this.child = child;
    child.stdout.on("data", (d) => (this.log += d));
    child.stderr.on("data", (d) => (this.log += d));
    this.exited = new Promise((resolve) =>
      child.on("exit", (code, signal) => {
        live.delete(child);
        if (this.child === child) {
          this.child = undefined;
          this.url = undefined;
        }
        this.log += `--- workerd exited (code ${code}, signal ${signal})\n`;
        resolve({ code, signal });
      }),
    );
    const deadline = Date.now() + this.readyTimeoutMs;
    const fail = (why) => new Error(`workerd did not start: ${why}\n${this.log}`);
    const port = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(fail(`no listen event in ${this.readyTimeoutMs} ms`)), this.readyTimeoutMs);
      this.exited.then(() => {
        clearTimeout(timer);
        reject(fail("it exited"));
      });
      createInterface({ input: child.stdio[3] }).on("line", (line) => {
        let msg;
        try {
          msg = JSON.parse(line);
        } catch {
          return;
        }
        if (msg.event === "listen" && msg.socket === "http") {
          clearTimeout(timer);
          resolve(msg.port);
        }
      });
    });
    const url = `http://127.0.0.1:${port}`;
    for (;;) {
      if (this.child !== child) throw fail("it exited");
      try {
        await (await fetch(`${url}/`, { signal: AbortSignal.timeout(2000) })).arrayBuffer();
        break;
      } catch (e) {
        if (Date.now() > deadline) throw fail(`no HTTP answer: ${e}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    this.url = url;
    return this;
  }

  /** SIGTERM, then SIGKILL if it has not exited after `timeoutMs`. Resolves with `{ code, signal }`. */
  async stop({ timeoutMs = 10_000 } = {}) {
    const child = this.child;
    if (child === undefined) return undefined;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    const r = await this.exited;
    clearTimeout(timer);
    return r;
  }

  /** kill -9; resolves once it has exited. */
  async kill() {
    const child = this.child;
    if (child === undefined) return undefined;
    child.kill("SIGKILL");
    return this.exited;
  }

  /** `fetch` on `path` of the running workerd. */
  fetch(path, init) {
    if (this.url === undefined) throw new Error("workerd is not running");
    return fetch(new URL(path, this.url), init);
  }

  /** `fetch` that expects a 2xx JSON answer; throws with the body (and workerd's output) otherwise. */
  async json(path, init) {
    const res = await this.fetch(path, init);
    const text = await res.text();
    if (!res.ok) throw new Error(`${init?.method ?? "GET"} ${path}: HTTP ${res.status}: ${text}\n--- workerd output:\n${this.log}`);
    return JSON.parse(text);
  }

  /** POSTs `body` as JSON and parses the JSON answer. */
  post(path, body) {
    return this.json(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body ?? null) });
  }
}

/**
 * Bundles `entry`, writes its config into a fresh temporary directory (with
 * `storage/`, the Durable Object storage, unless `storage: "memory"`) and
 * starts workerd. Returns the {@link Workerd}, with `dir`, `storageDir` and
 * `dispose()` (stop, then remove the directory). Options: those of
 * {@link capnpConfig} and {@link Workerd}, plus `bundle` (those of
 * {@link bundleWorker}) and `start: false` to only prepare it.
 */
export async function startWorker({ entry, storage = "disk", bundle, start = true, experimental, verbose, readyTimeoutMs, ...config }) {
  const dir = mkdtempSync(join(tmpdir(), "durq-workerd-"));
  const storageDir = storage === "memory" ? undefined : join(dir, "storage");
  if (storageDir !== undefined) mkdirSync(storageDir);
  const modules = await bundleWorker(entry, join(dir, "bundle"), bundle);
  const configPath = join(dir, "config.capnp");
  writeFileSync(configPath, capnpConfig({ ...config, configDir: dir, modules, storageDir }));
  const w = new Workerd({ configPath, experimental, verbose, readyTimeoutMs });
  w.dir = dir;
  w.storageDir = storageDir;
  w.modules = modules;
  w.dispose = async () => {
    await w.kill();
    rmSync(dir, { recursive: true, force: true });
  };
  if (start) {
    try {
      await w.start();
    } catch (e) {
      await w.dispose();
      throw e;
    }
  }
  return w;
}

/** Polls `fn` every `intervalMs` until it returns a value other than `undefined`/`false`; throws after `timeoutMs`. */
export async function waitFor(fn, { timeoutMs = 20_000, intervalMs = 100, what = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
