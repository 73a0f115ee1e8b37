/**
 * `open()`: checks the target and options, opens the database on the
 * platform's storage (or in memory), recovers the leases a dead process
 * left, and makes its {@link Durq} handle.
 *
 * @module
 */

import { realClock, type Clock } from "./clock.js";
import { checkMaxInMemoryChanges } from "./cache.js";
import { DbContext } from "./context.js";
import { coreCall, parseResult, randomSeed, type CoreHandle } from "./core.js";
import { Durq } from "./db.js";
import { DurqError, invalidInput, type DurqErrorCode } from "./errors.js";
import * as ops from "./ops.js";
import { platform } from "./platform.js";
import { checkDuration, checkName, checkOptions, isPlainObject } from "./validate.js";
import { DEFAULT_OWNER_TIMEOUT_MS, openShared } from "./shared.js";
import type { WasmSource } from "./wasm-source.js";
import type { DurableObjectStorageLike } from "./workerd/storage.js";

/** Where the database lives: a file (Node, Deno, Bun), OPFS (a browser's dedicated worker), a Durable Object's storage (workerd) or memory. */
export type OpenTarget =
  | {
      /** Node: path of the SQLite database file; created (with its parent directories) if missing. A lock file `<path>.lock` sits beside it while it is open. */
      path: string;
    }
  | {
      /**
       * Browser, inside a dedicated worker: name of the database in the
       * origin private file system (1 to 200 characters from
       * `A-Z a-z 0-9 _ . -`, not starting with a dot), stored through the
       * OPFS sync-access-handle pool VFS in the OPFS folder `.durq/<name>`
       * with its alarm namespaces. One tab or worker holds it at a time
       * (Web Lock `durq:opfs:<name>`).
       */
      opfs: string;
    }
  | {
      /**
       * Cloudflare Workers, inside a SQLite-backed Durable Object: the
       * object's `ctx.storage`. The database and its alarm namespaces live in
       * the object's own storage, as blocks in its synchronous KV API
       * (`ctx.storage.kv`), each group commit inside one
       * `ctx.storage.transactionSync()`; durq's next timer is mirrored into
       * `ctx.storage.setAlarm()`, so call {@link Durq.runDue} from the
       * object's `alarm()`. See the README's "Cloudflare Workers" section.
       */
      durableObject: DurableObjectStorageLike;
    }
  | {
      /** An in-memory database, gone when closed. Works everywhere. */
      memory: true;
    };

/** Options of {@link open}. */
export interface OpenOptions {
  /** Source of time and timers (default: the real clock). Tests pass a {@link ManualClock}. */
  clock?: Clock;
  /**
   * Durability of each commit, for a file database (default `"full"`).
   * `"full"`: fsync at every commit; a resolved write survives power loss.
   * `"normal"`: a resolved write survives the process being killed, but the
   * last commits may be lost in a power failure; faster.
   */
  synchronous?: "full" | "normal";
  /**
   * Browser `{ opfs }` only: if another tab or worker holds the database,
   * wait until it closes it (default `false`: fail at once with
   * `DURQ_LOCKED`). `serve()` uses this to take over from a closed tab.
   */
  waitForLock?: boolean;
  /**
   * Prefix of the ids of this database's workers, stored as lease owner
   * (default `"<hostname>:<pid>"` in Node, `"browser:<random>"` in a
   * browser). A worker's id is `<workerId>:w<n>`, and each of its claims
   * holds its leases as `<worker id>/<claim n>`. A Node file that several
   * processes may share adds `~<6 random characters>` to `workerId` for
   * each open, so two opens never expire each other's leases.
   */
  workerId?: string;
  /**
   * Most entries the effect cache keeps in memory (default 100 000): effect
   * outputs and the step outputs of running runs, an integer in
   * 1 ..= 2^31 - 1. When it is full, a new entry first evicts the least
   * recently used entry already committed, then one loaded from the
   * database; only when every entry is waiting for its commit does the
   * write wait for that commit. Entries not yet committed are never
   * dropped. See {@link Durq.cacheStats}.
   */
  maxInMemoryChanges?: number;
  /**
   * durq's WebAssembly module, for bundlers and runtimes that cannot find
   * `durq_bg.wasm` beside the package's glue (esbuild, Rollup without an
   * asset plugin): a `WebAssembly.Module`, the file's bytes, a URL to fetch
   * it from, a `Response`, or a promise of one (see {@link WasmSource}).
   * Read by the first `open()` of the process only: the module is
   * instantiated once and shared by every database.
   */
  wasm?: WasmSource;
  /**
   * Node `{ path }` only: keep the file to this process (default `false`).
   * Without it, a second process that opens the file (by any path: a hard
   * link, a symlink) becomes a client of the first, which owns it; with
   * it, this open fails with `DURQ_LOCKED` if another process has the file
   * open, and later opens by other processes fail the same way.
   */
  exclusive?: boolean;
  /**
   * Node `{ path }` only: how long a client process waits for an owner
   * that does not answer (a stopped process, a blocked event loop) before
   * its calls reject with `DURQ_OWNER_UNAVAILABLE`, ms (default 15 000).
   */
  ownerTimeoutMs?: number;
}

/**
 * Opens a durq database.
 *
 * For a file (`{ path }`), creates missing parent directories and the
 * file, then finds the file's owner: the process listening on the local
 * socket named after the file's device and inode (Linux: an abstract
 * socket; see the README's "Many processes, one file"). If no process
 * owns it, this one does: it takes the lock `<path>.lock` too (a lock left
 * by a dead process on this host is taken over), opens the SQLite file,
 * migrates its schema and serves other processes. Runs still leased in the
 * file belonged to a process that is gone: their leases are expired at
 * once, so the next claim puts them back to work (each such attempt counts
 * toward `maxAttempts`). If another process owns it, this one becomes its
 * client (`db.role === "client"`): the same API, each call crossing the
 * socket, handlers running here; it takes the file over if the owner dies.
 *
 * In a browser's dedicated worker, `{ opfs: name }` takes the Web Lock
 * `durq:opfs:<name>` (so one tab or worker holds the database), installs the
 * database's OPFS sync-access-handle pool (SQLite's `opfs-sahpool` design:
 * https://sqlite.org/wasm/doc/trunk/persistence.md#vfs-opfs-sahpool) and
 * opens the database in it, recovering leases the same way. `close()`
 * releases the pool's handles and the lock, so another tab can open it.
 *
 * @example
 * ```ts
 * const db = await open({ path: "./data/app.db" });               // Node
 * const db = await open({ opfs: "app.db" });                      // browser, in a Worker
 * const mem = await open({ memory: true }, { clock: new ManualClock(0) });
 * ```
 *
 * @throws {DurqError} `DURQ_LOCKED` with `exclusive` if another process
 * (or another `Durq` of this process) has the file open, or without it if
 * the owner opened it `exclusive` (and in Deno and Bun, which keep to the
 * lock file, whenever another process has it open), or if another tab or
 * worker holds the OPFS database (unless `waitForLock`);
 * `DURQ_OWNER_UNAVAILABLE` if the file's owner does not answer within
 * `ownerTimeoutMs`; `DURQ_OPFS_UNAVAILABLE` for
 * `{ opfs }` outside a browser's dedicated worker or where OPFS sync access
 * handles are missing (the message names the fix); `DURQ_OPFS` for other
 * OPFS failures; `DURQ_INVALID_INPUT` for bad arguments, or `{ path }` in a
 * browser; `DURQ_SCHEMA_TOO_NEW` if a newer durq wrote the file;
 * `SQLITE_CANTOPEN`, `SQLITE_NOTADB`, `SQLITE_CORRUPT`, `SQLITE_IOERR` for
 * storage failures.
 */
export async function open(target: OpenTarget, options?: OpenOptions): Promise<Durq> {
  return openWith(target, options, {});
}

/**
 * Test seams of {@link open}. @internal
 */
export interface OpenHooks {
  /**
   * Wraps each group commit: gets the batch's JSON and the core's `apply`;
   * returns its outcome, or a promise of it (the commit stays in flight
   * until it settles). Throw or reject without calling `apply` to fail the
   * commit as a whole.
   */
  commit?: (opsJson: string, apply: (opsJson: string) => string) => string | PromiseLike<string>;
}

/** {@link open} with test seams. @internal */
export async function openWith(target: OpenTarget, options: OpenOptions | undefined, hooks: OpenHooks): Promise<Durq> {
  const p = platform();
  const help = `{ memory: true } or ${p.storageHelp}`;
  if (!isPlainObject(target)) throw invalidInput(`open() needs ${help}`);
  const t = target as Record<string, unknown>;
  const keys = Object.keys(target);
  const memory = t.memory === true && keys.length === 1;
  const storage = !memory && keys.length === 1 && p.isStorage(t);
  if (!memory && !storage) {
    if (keys.length === 1 && (keys[0] === "opfs" || keys[0] === "path") && typeof t[keys[0]] !== "string") {
      throw invalidInput(`${keys[0]} must be a string, got ${typeof t[keys[0]]}`);
    }
    if (keys.length === 1 && (keys[0] === "opfs" || keys[0] === "path")) {
      throw new DurqError(
        keys[0] === "opfs" ? "DURQ_OPFS_UNAVAILABLE" : "DURQ_INVALID_INPUT",
        keys[0] === "opfs"
          ? `{ opfs } is browser storage (inside a dedicated worker); in ${p.name} open ${help}`
          : `${p.name} has no file system for { path }: open ${help}`,
      );
    }
    throw invalidInput(`open() needs exactly one of ${help}, got keys ${JSON.stringify(keys)}`);
  }
  const o = checkOptions("open options", options, [
    "clock",
    "synchronous",
    "workerId",
    "maxInMemoryChanges",
    "waitForLock",
    "wasm",
    "exclusive",
    "ownerTimeoutMs",
  ]);
  if (o.exclusive !== undefined && typeof o.exclusive !== "boolean") throw invalidInput(`exclusive must be a boolean, got ${JSON.stringify(o.exclusive)}`);
  const ownerTimeoutMs = o.ownerTimeoutMs == null ? DEFAULT_OWNER_TIMEOUT_MS : checkDuration("ownerTimeoutMs", o.ownerTimeoutMs, 1);
  const maxInMemoryChanges = checkMaxInMemoryChanges(o.maxInMemoryChanges);
  const clock = o.clock ?? realClock;
  if (
    typeof clock !== "object" ||
    clock === null ||
    typeof clock.now !== "function" ||
    typeof clock.setTimeout !== "function" ||
    typeof clock.clearTimeout !== "function"
  ) {
    throw invalidInput("clock must be an object with now(), setTimeout(fn, ms) and clearTimeout(handle)");
  }
  const synchronous = o.synchronous ?? "full";
  if (synchronous !== "full" && synchronous !== "normal") throw invalidInput(`synchronous must be "full" or "normal", got ${JSON.stringify(synchronous)}`);
  if (o.waitForLock !== undefined && typeof o.waitForLock !== "boolean")
    throw invalidInput(`waitForLock must be a boolean, got ${JSON.stringify(o.waitForLock)}`);
  const workerId = o.workerId === undefined ? p.defaultWorkerId() : checkName("workerId", o.workerId);

  const glue = await p.load(o.wasm as WasmSource | undefined);
  if (memory) {
    const core = coreCall(() => glue.Core.openMemory(randomSeed()));
    return new Durq(new DbContext({ kind: "local", core, storage: undefined }, { clock, workerId, path: undefined, maxInMemoryChanges, commit: hooks.commit }));
  }
  const request = { target: t, seed: randomSeed(), synchronous, waitForLock: o.waitForLock === true } as const;
  const shared = p.rendezvous?.(request);
  if (shared !== undefined) {
    return openShared({
      rendezvous: shared.rendezvous,
      openLocal: () => p.open(request, glue),
      init: { clock, workerId, path: shared.path, maxInMemoryChanges, commit: hooks.commit },
      exclusive: o.exclusive === true,
      ownerTimeoutMs,
    });
  }
  const opened = await p.open(request, glue);
  try {
    const now = Math.floor(clock.now());
    if (opened.transact === undefined) expireOrphanedLeases(opened.core, now);
    else opened.transact(() => expireOrphanedLeases(opened.core, now));
    return new Durq(
      new DbContext({ kind: "local", core: opened.core, storage: opened }, { clock, workerId, path: opened.path, maxInMemoryChanges, commit: hooks.commit }),
    );
  } catch (e) {
    try {
      opened.core.close();
    } catch {
      // closing after a failed open: nothing more to do
    }
    opened.release();
    throw e;
  }
}

/**
 * Makes every lease of a just-opened file database due now. The lock file
 * says this process is the file's only user, so any run still leased was
 * leased by a process that is gone (it crashed or was killed): the next
 * claim recovers it at once instead of after its `leaseMs`.
 */
function expireOrphanedLeases(core: CoreHandle, now: number): void {
  const out = parseResult<({ ok: unknown } | { err: { code: string; message: string } })[]>(coreCall(() => core.apply(now, ops.expireLeasesBatch())));
  const first = out[0];
  if (first !== undefined && "err" in first) throw new DurqError(first.err.code as DurqErrorCode, first.err.message);
}
