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
// @ts-ignore: not present when tsc runs; typed as Glue below
import * as generatedGlue from "../../wasm/durq.js";
import { coreCall, instantiate, instantiated, type CoreHandle, type Glue, type OpfsPoolHandle } from "../core.js";
import { DurqError, fromCoreError } from "../errors.js";
import type { OpenedStorage, Platform, StorageRequest } from "../platform.js";

/** Slots reserved when an OPFS database opens: the database and its WAL, and seven alarm namespaces (two slots each). */
export const OPFS_INITIAL_SLOTS = 16;
/** Free slots kept ahead of the next alarm namespaces: after a namespace opens, the pool grows in the background to keep this many free. */
export const OPFS_SPARE_SLOTS = 8;

async function load(): Promise<Glue> {
  const done = instantiated();
  if (done !== undefined) return done;
  const url = new URL("../../wasm/durq_bg.wasm", import.meta.url);
  let module: WebAssembly.Module;
  try {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    module = await WebAssembly.compile(await response.arrayBuffer());
  } catch (e) {
    throw fromCoreError(new Error(`cannot load the durq wasm module from ${url.href}: ${(e as Error).message}`));
  }
  return instantiate(generatedGlue as unknown as Glue, module);
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
 * or `null` if another context holds it and `wait` is false.
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
      .catch(reject);
  });
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
    pool = await glue.OpfsPool.install(name).catch((e: unknown) => {
      throw fromCoreError(e);
    });
    await pool.reserve(OPFS_INITIAL_SLOTS).catch((e: unknown) => {
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
  let growing = false;
  return {
    core,
    path: `opfs:${name}`,
    prepareAlarms(_dir, opened) {
      const needed = 2 * (opened + 2); // the main database, the namespaces open, the new one: two slots each
      if (p.capacity < needed) {
        throw new DurqError("DURQ_OPFS", `no free OPFS slot for alarm namespace number ${opened + 1} of ${JSON.stringify(name)} (the pool holds ${p.capacity}; it grows in the background, so open it again in a moment)`);
      }
      if (!growing && p.capacity < needed + OPFS_SPARE_SLOTS) {
        growing = true;
        p.reserve(needed + OPFS_SPARE_SLOTS)
          .catch(() => undefined) // a refusal shows as DURQ_OPFS at the next namespace that does not fit
          .finally(() => (growing = false));
      }
    },
    release() {
      try {
        p.release();
        p.free?.();
      } catch {
        // released already, or the worker is going away: the browser frees the handles
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
