/**
 * The Node platform of `open()` (also Deno's and Bun's): the wasm module
 * read from the package's `wasm/` folder with `node:fs` (or given as
 * `open()`'s `wasm` option), database files through the Node file VFS (`host-fs.ts`), the
 * process-level lock file (`lock.ts`) and alarm folders made with `mkdir`.
 * Internal: not exported from the package.
 *
 * @module
 */

import { closeSync, existsSync, mkdirSync, openSync, readFileSync, realpathSync } from "node:fs";
import { hostname } from "node:os";
import { basename, dirname, join, resolve as resolvePath } from "node:path";
import { fileURLToPath } from "node:url";
import { coreCall, loadGlue, type CoreHandle, type Glue } from "../core.js";
import { DurqError, invalidInput } from "../errors.js";
import type { OpenedStorage, Platform, StorageRequest } from "../platform.js";
import { nodeHostFs } from "./host-fs.js";
import { acquireLock, holderError } from "./lock.js";
import type { ClientConnection, Rendezvous } from "../link.js";
import type { PeerReply, PeerRequest } from "../protocol.js";
import { connect, FramedSocket, listen, ownerAddress } from "./socket.js";
import { wasmUnavailable, type WasmSource } from "../wasm-source.js";

// The wasm-bindgen glue is generated into pkg/wasm/ by scripts/build.sh. A
// static import, so that bundlers (esbuild --platform=node) take it in.
// @ts-expect-error: not present when tsc runs; typed as Glue below
import * as generatedGlue from "../../wasm/durq.js";

/** Reads `durq_bg.wasm` beside the glue (`<package>/wasm/`), as the package lays it out. */
async function locate(): Promise<BufferSource> {
  let url: URL | undefined;
  try {
    url = new URL("../../wasm/durq_bg.wasm", import.meta.url);
    return readFileSync(url);
  } catch (e) {
    const where = url === undefined ? "beside durq's code (import.meta.url is not a file URL here: a bundle?)" : `at ${fileURLToPath(url)}`;
    const hint = (e as Error)?.name === "NotCapable" ? " (Deno: allow reading the package, --allow-read=node_modules/durq)" : "";
    throw wasmUnavailable(`cannot read durq's wasm module ${where}${hint}`, e);
  }
}

function load(wasm?: WasmSource): Promise<Glue> {
  return loadGlue(generatedGlue as unknown as Glue, wasm, locate);
}

/**
 * The prefix of worker ids: `<hostname>:<pid>`, or `<runtime>:<pid>` where
 * the host name may not be read (Deno without `--allow-sys=hostname`).
 */
function defaultWorkerId(): string {
  let host: string;
  try {
    host = hostname();
  } catch {
    host = typeof (globalThis as { Deno?: unknown }).Deno === "object" ? "deno" : "node";
  }
  return `${host}:${process.pid}`;
}

/**
 * The absolute path of the database file, its symlinks resolved (of the
 * file, else of its directory), after creating its directory: one file, one
 * lock, or two paths to one database would take two locks and write two
 * WALs, and one's commits would be lost.
 */
function filePath(request: StorageRequest): string {
  const path = request.target.path as string;
  if (request.waitForLock) throw invalidInput("waitForLock applies to { opfs } databases in a browser; a Node file is held by one process (DURQ_LOCKED)");
  if (path.length === 0 || path.includes("\0")) throw invalidInput("the database path must be non-empty and contain no NUL");
  const abs = resolvePath(path);
  try {
    mkdirSync(dirname(abs), { recursive: true });
    return existsSync(abs) ? realpathSync(abs) : join(realpathSync(dirname(abs)), basename(abs));
  } catch (e) {
    throw new DurqError("SQLITE_CANTOPEN", `cannot create the directory of ${abs}: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Where the processes of one file meet: the owner's local socket, whose
 * address derives from the file's device and inode (`socket.ts`). Creates
 * the file, empty, if missing (SQLite takes an empty file for a new
 * database). Only in Node: Deno and Bun keep one process per file (the lock
 * file refuses a second).
 */
function rendezvous(request: StorageRequest): { rendezvous: Rendezvous; path: string } | undefined {
  const g = globalThis as { Deno?: unknown; Bun?: unknown };
  if (g.Deno !== undefined || g.Bun !== undefined) return undefined;
  const abs = filePath(request);
  let address: string;
  try {
    closeSync(openSync(abs, "a"));
    address = ownerAddress(abs);
  } catch (e) {
    throw new DurqError("SQLITE_CANTOPEN", `cannot create ${abs}: ${(e as Error).message}`, { cause: e });
  }
  return {
    path: abs,
    rendezvous: {
      async claim() {
        const server = await listen(address);
        if (server === undefined) return undefined;
        // Connections that arrive before the owner serves wait here.
        const early: FramedSocket<PeerRequest, PeerReply>[] = [];
        let handler: ((c: FramedSocket<PeerRequest, PeerReply>) => void) | undefined;
        let closed = false;
        server.on("connection", (socket) => {
          socket.unref(); // a connected client does not keep the owner alive
          const c = new FramedSocket<PeerRequest, PeerReply>(socket);
          if (closed) c.close();
          else if (handler === undefined) early.push(c);
          else handler(c);
        });
        return {
          onConnection(h) {
            handler = h;
            for (const c of early.splice(0)) h(c);
          },
          close: () => {
            closed = true;
            server.close();
            for (const c of early.splice(0)) c.close(); // they find the next owner
          },
        };
      },
      connect: (timeoutMs) => connect<PeerReply, PeerRequest>(address, timeoutMs) as Promise<ClientConnection | undefined>,
      holder: () => holderError(abs),
    },
  };
}

async function open(request: StorageRequest, glue: Glue): Promise<OpenedStorage> {
  const abs = filePath(request);
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
  defaultWorkerId,
  storageHelp: "{ path: string }",
  isStorage: (target) => typeof target.path === "string",
  open,
  rendezvous,
};
