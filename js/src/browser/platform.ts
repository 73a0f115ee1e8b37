/**
 * The browser platform of `open()`: the wasm module fetched beside the glue
 * (`new URL(..., import.meta.url)`, which bundlers such as Vite follow), and
 * `{ opfs: name }` databases in the origin private file system through the
 * OPFS sync-access-handle pool VFS (`src/wasm/opfs.rs`), inside a
 * dedicated worker, held by one tab or worker at a time with the Web Lock
 * `durq:opfs:<name>` (https://w3c.github.io/web-locks/).
 * Internal: not exported from the package.
 *
 * @module
 */

// The wasm-bindgen glue is generated into pkg/wasm/ by scripts/build.sh.
// @ts-expect-error: not present when tsc runs; typed as Glue below
import * as generatedGlue from "../../wasm/durq.js";
import { coreCall, loadGlue, type CoreHandle, type Glue, type OpfsPoolHandle } from "../core.js";
import { resolveWasm, wasmUnavailable, type WasmSource } from "../wasm-source.js";
import { DurqError, fromCoreError } from "../errors.js";
import type { OpenedStorage, Platform, StorageRequest } from "../platform.js";

/**
 * New alarm namespaces a session can open: when an OPFS database opens, its
 * pool reserves two slots (the file and its WAL) for each database file it
 * holds already, two for the main database, and two for each of this many
 * new namespaces. Growing the pool later would make it refuse to open files
 * while OPFS hands out the new handles, so it is sized at open; past this
 * many new namespaces, `alarms()` throws `DURQ_OPFS` until the database is
 * opened again.
 */
export const OPFS_SPARE_NAMESPACES = 16;

/** How long `open({ opfs })` retries a pool still held by a context that just released its Web Lock (a closing tab frees its lock and its file handles separately), ms. */
export const OPFS_HANDOVER_MS = 5000;

/** Fetches and compiles `durq_bg.wasm` beside the glue (`<package>/wasm/`), where Vite and webpack 5 put it. */
async function locate(): Promise<WebAssembly.Module> {
  let url: URL;
  try {
    url = new URL("../../wasm/durq_bg.wasm", import.meta.url);
  } catch (e) {
    throw wasmUnavailable(
      "cannot locate durq's wasm module: import.meta.url is not a URL here (a bundle in a non-module format such as IIFE; in Cloudflare Workers, durq's workerd export condition loads it)",
      e,
    );
  }
  return resolveWasm(url);
}

function load(wasm?: WasmSource): Promise<Glue> {
  return loadGlue(generatedGlue as unknown as Glue, wasm, locate);
}

/** Where OPFS sync access handles cannot work, the reason and the fix; `undefined` where they can. */
export function opfsUnavailableReason(): string | undefined {
  const g = globalThis as Record<string, any>;
  const inWorker = typeof g.DedicatedWorkerGlobalScope === "function" && globalThis instanceof g.DedicatedWorkerGlobalScope;
  if (!inWorker) {
    return "OPFS storage works only inside a dedicated worker (synchronous file access is not allowed on a page's main thread): call open({ opfs }) in a Worker and reach it from the page with connect(worker), or use open({ memory: true })";
  }
  if (typeof g.navigator?.storage?.getDirectory !== "function" || typeof g.FileSystemFileHandle?.prototype?.createSyncAccessHandle !== "function") {
    return "this browser lacks OPFS sync access handles (FileSystemFileHandle.createSyncAccessHandle: Chrome 108+, Firefox 111+, Safari 16.4+), or the page is not a secure context (https or localhost): use open({ memory: true })";
  }
  if (typeof g.navigator?.locks?.request !== "function") {
    return "this browser lacks Web Locks (navigator.locks), which keep two tabs from opening one database: use open({ memory: true })";
  }
  return undefined;
}

/**
 * Takes the exclusive Web Lock `name`: resolves with its release function,
 * or `null` if another context holds it and `wait` is false. Rejects
 * `DURQ_OPFS` if the browser refuses the request (e.g. storage access
 * denied to the context).
 */
export function acquireWebLock(name: string, wait: boolean): Promise<(() => void) | null> {
  return new Promise((resolve, reject) => {
    navigator.locks
      .request(name, wait ? {} : { ifAvailable: true }, (lock) => {
        if (lock === null) {
          resolve(null);
          return undefined;
        }
        // Held until the returned promise settles: until release() is called.
        return new Promise<void>((release) => resolve(() => release()));
      })
      .catch((e: unknown) =>
        reject(new DurqError("DURQ_OPFS", `the Web Lock ${JSON.stringify(name)} was refused: ${(e as Error)?.message ?? e}`, { cause: e })),
      );
  });
}

/**
 * Installs the pool of `name`, retrying while its files are still held (for
 * up to {@link OPFS_HANDOVER_MS}): the caller holds the database's Web Lock,
 * so a holder can only be a context that is closing.
 */
async function installPool(glue: Glue, name: string): Promise<OpfsPoolHandle> {
  const deadline = Date.now() + OPFS_HANDOVER_MS;
  for (let delay = 20; ; delay = Math.min(delay * 2, 500)) {
    try {
      return await glue.OpfsPool.install(name);
    } catch (e) {
      const error = fromCoreError(e);
      if (error.code !== "DURQ_LOCKED" || Date.now() + delay > deadline) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

/** Database files in the pool (not WALs or journals). */
function databaseFiles(pool: OpfsPoolHandle): number {
  return pool.fileNames().filter((n) => !/-(wal|journal)$/.test(n)).length;
}

/** The Web Lock that guards OPFS database `name`. */
export function opfsLockName(name: string): string {
  return `durq:opfs:${name}`;
}

async function open(request: StorageRequest, glue: Glue): Promise<OpenedStorage> {
  const name = request.target.opfs as string;
  const reason = opfsUnavailableReason();
  if (reason !== undefined) throw new DurqError("DURQ_OPFS_UNAVAILABLE", reason);
  const unlock = await acquireWebLock(opfsLockName(name), request.waitForLock);
  if (unlock === null) {
    throw new DurqError(
      "DURQ_LOCKED",
      `the OPFS database ${JSON.stringify(name)} is open in another tab or worker: reach it through serve()/connect(), which proxies to the tab that holds it, or pass { waitForLock: true } to wait until it closes`,
    );
  }
  let pool: OpfsPoolHandle | undefined;
  let core: CoreHandle | undefined;
  try {
    pool = await installPool(glue, name);
    const slots = 2 * (databaseFiles(pool) + 1 + OPFS_SPARE_NAMESPACES);
    await pool.reserve(slots).catch((e: unknown) => {
      throw fromCoreError(e);
    });
    const p = pool;
    core = coreCall(() => glue.Core.openVfs(name, p.vfs, request.seed, request.synchronous));
  } catch (e) {
    try {
      pool?.release();
    } catch {
      // the pool has nothing open: releasing cannot fail for a reason worth reporting over e
    }
    unlock();
    throw e;
  }
  const p = pool;
  return {
    core,
    path: `opfs:${name}`,
    prepareAlarms(_dir, opened) {
      // A namespace opened before in this session has its two slots; a new
      // one needs two free slots (its file may exist: then one).
      const free = p.capacity - p.fileNames().length;
      if (free < 2) {
        throw new DurqError(
          "DURQ_OPFS",
          `no free OPFS slot for another alarm namespace of ${JSON.stringify(name)}: ${opened} are open and the pool's ${p.capacity} slots are taken (it makes room for ${OPFS_SPARE_NAMESPACES} new namespaces each time the database opens): close the database and open it again`,
        );
      }
    },
    release() {
      try {
        p.release();
      } catch (e) {
        // A file of the pool is still open (the core failed to close): keep
        // the Web Lock, so no other tab opens the pool while this worker
        // holds its files. The browser frees both when the worker ends.
        console.error(`durq: the OPFS pool of ${JSON.stringify(name)} could not be released; keeping its lock`, e);
        return;
      }
      try {
        p.free?.();
      } catch {
        // already freed
      }
      unlock();
    },
  };
}

/** A fresh worker id: `browser:` and 8 random hex digits. */
function defaultWorkerId(): string {
  const [n] = crypto.getRandomValues(new Uint32Array(1));
  return `browser:${n!.toString(16).padStart(8, "0")}`;
}

/** The browser platform. */
export const browserPlatform: Platform = {
  name: "the browser",
  load,
  defaultWorkerId,
  storageHelp: "{ opfs: string } (inside a dedicated worker)",
  isStorage: (target) => typeof target.opfs === "string",
  open,
};
