/**
 * What `open()` needs from the runtime it runs in, given by the entry
 * point: `index.ts` registers the Node platform (files through the Node
 * file VFS), `browser.ts` the browser platform (OPFS in a dedicated worker).
 * `db.ts` and everything it imports use no `node:` module and no DOM API
 * directly, so one façade serves both.
 * Internal: not exported from the package.
 *
 * @module
 */

import type { CoreHandle, Glue } from "./core.js";
import { DurqError } from "./errors.js";
import type { WasmSource } from "./wasm-source.js";
import type { Rendezvous } from "./link.js";

/** A database opened on the platform's storage. */
export interface OpenedStorage {
  core: CoreHandle;
  /** What `Durq.path` reports: the absolute file path, or `opfs:<name>`. */
  path: string;
  /** Called before an alarm namespace opens: makes its folder or reserves its storage. May throw a `DurqError`. */
  prepareAlarms(dir: string | null | undefined, opened: number): void;
  /** Releases locks and storage handles after the core closed. Never throws. */
  release(): void;
  /**
   * Runs a core call that writes (a group commit, opening an alarm
   * namespace) as one transaction of the host's storage, where the host
   * provides atomicity itself (a Durable Object's `transactionSync`);
   * absent where SQLite's own journal does.
   */
  transact?<T>(f: () => T): T;
  /**
   * The database's one timer was armed for `atMs` (ms since the epoch), or
   * disarmed (`undefined`): a host that can be put to sleep mirrors it into
   * its own wake-up (a Durable Object's `setAlarm`). Never throws.
   */
  timerChanged?(atMs: number | undefined): void;
}

/** How the core opens a non-memory target. */
export interface StorageRequest {
  /** The target object given to `open()` (already checked to be a plain object). */
  target: Record<string, unknown>;
  seed: number;
  synchronous: "full" | "normal" | "external";
  /** `open()`'s `waitForLock` option. */
  waitForLock: boolean;
}

/** A runtime: Node (also Deno and Bun), a browser, or workerd (Cloudflare Workers). */
export interface Platform {
  /** `"Node"`, `"a browser"` or `"workerd"`, for messages. */
  readonly name: string;
  /** The wasm glue, instantiated on first call from `wasm` (the `open()` option) or, without it, from `durq_bg.wasm` found the platform's way. Throws `DURQ_WASM_UNAVAILABLE`. */
  load(wasm?: WasmSource): Promise<Glue>;
  /** Default prefix of worker ids (lease owners). */
  defaultWorkerId(): string;
  /** The target keys this platform opens besides `memory`, for messages (e.g. `"{ path: string }"`). */
  readonly storageHelp: string;
  /** Whether `target` (one key, not `memory`) is storage of this platform. */
  isStorage(target: Record<string, unknown>): boolean;
  /** Opens the storage target; throws a `DurqError`. */
  open(request: StorageRequest, glue: Glue): Promise<OpenedStorage>;
  /**
   * Where the processes that open `request`'s target meet, on a platform
   * where several processes may open one file (Node): one owns it, the
   * others are its clients (`shared.ts`). Creates the file (and its
   * folders) if missing. Absent, or `undefined`, where storage has one user.
   * Throws `SQLITE_CANTOPEN` if the file cannot be created.
   * @internal
   */
  rendezvous?(request: StorageRequest): { rendezvous: Rendezvous; path: string } | undefined;
}

let current: Platform | undefined;

/** Sets the platform (the entry point does, once, at import). */
export function setPlatform(p: Platform): void {
  current ??= p;
}

/** The registered platform; `DURQ_INTERNAL` if no entry point registered one. */
export function platform(): Platform {
  if (current === undefined) throw new DurqError("DURQ_INTERNAL", "no durq platform registered: import durq through its package entry point");
  return current;
}
