/**
 * The Node platform of `open()`: the wasm module read from `pkg/wasm/` with
 * `node:fs`, database files through the Node file VFS (`host-fs.ts`), the
 * process-level lock file (`lock.ts`) and alarm folders made with `mkdir`.
 * Internal: not exported from the package.
 *
 * @module
 */

import { existsSync, mkdirSync, readFileSync, realpathSync } from "node:fs";
import { hostname } from "node:os";
import { basename, dirname, join, resolve as resolvePath } from "node:path";
import { coreCall, instantiate, instantiated, type CoreHandle, type Glue } from "../core.js";
import { DurqError, fromCoreError, invalidInput } from "../errors.js";
import type { OpenedStorage, Platform, StorageRequest } from "../platform.js";
import { nodeHostFs } from "./host-fs.js";
import { acquireLock } from "./lock.js";

async function load(): Promise<Glue> {
  const done = instantiated();
  if (done !== undefined) return done;
  const glueUrl = new URL("../../wasm/durq.js", import.meta.url);
  let glue: Glue;
  try {
    glue = (await import(glueUrl.href)) as Glue;
  } catch (e) {
    throw fromCoreError(new Error(`cannot load the durq wasm glue at ${glueUrl.pathname}: ${(e as Error).message}`));
  }
  return instantiate(glue, readFileSync(new URL("../../wasm/durq_bg.wasm", import.meta.url)));
}

async function open(request: StorageRequest, glue: Glue): Promise<OpenedStorage> {
  const path = request.target.path as string;
  if (request.waitForLock) throw invalidInput("waitForLock applies to { opfs } databases in a browser; a Node file is held by one process (DURQ_LOCKED)");
  if (path.length === 0 || path.includes("\0")) throw invalidInput("the database path must be non-empty and contain no NUL");
  let abs = resolvePath(path);
  try {
    mkdirSync(dirname(abs), { recursive: true });
    // One file, one lock: resolve symlinks (of the file, else of its
    // directory), or two paths to one database would take two locks and
    // write two WALs, and one's commits would be lost.
    abs = existsSync(abs) ? realpathSync(abs) : join(realpathSync(dirname(abs)), basename(abs));
  } catch (e) {
    throw new DurqError("SQLITE_CANTOPEN", `cannot create the directory of ${abs}: ${(e as Error).message}`, { cause: e });
  }
  const lock = acquireLock(abs);
  let core: CoreHandle;
  try {
    core = coreCall(() => glue.Core.openFile(abs, nodeHostFs(), request.seed, request.synchronous));
  } catch (e) {
    lock.release();
    throw e;
  }
  return {
    core,
    path: abs,
    prepareAlarms(dir) {
      if (typeof dir !== "string") return;
      try {
        mkdirSync(dir, { recursive: true });
      } catch (e) {
        throw new DurqError("SQLITE_CANTOPEN", `cannot create the alarm folder ${dir}: ${(e as Error).message}`, { cause: e });
      }
    },
    release: () => lock.release(),
  };
}

/** The Node platform. */
export const nodePlatform: Platform = {
  name: "Node",
  load,
  defaultWorkerId: () => `${hostname()}:${process.pid}`,
  storageHelp: "{ path: string }",
  isStorage: (target) => typeof target.path === "string",
  open,
};
