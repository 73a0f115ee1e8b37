/**
 * Describes the classes the wasm core exports (`Core`, `OpfsPool`;
 * docs/boundary.md) and instantiates the module once from the wasm-bindgen
 * `--target web` glue in `../wasm/`, given by the entry point (`index.ts` in
 * Node, `browser.ts` in browsers). Internal: the façade in `db.ts` is the
 * public contract. Uses no Node or DOM module, so it loads everywhere.
 *
 * @module
 * @internal
 */

import { fromCoreError } from "./errors.js";
import { resolveWasm, wasmUnavailable, type WasmSource } from "./wasm-source.js";

/** The synchronous file operations the Node file VFS calls (built by `nodeHostFs()`). */
export type HostFs = object;

/** An open database in the wasm core. Every method is synchronous. */
export interface CoreHandle {
  /** Applies a JSON array of operations (built in `ops.ts`) at `now` (ms since the Unix epoch, the group commit's one clock) in one transaction; returns the JSON array of outcomes (`Outcome` in `generated/boundary.ts`). Throws if the commit failed or `now` is out of range. */
  apply(now: number, opsJson: string): string;
  /** Run JSON; throws `DURQ_NOT_FOUND`. */
  getRun(id: string): string;
  /** `{runs, nextCursor}` JSON for a filter JSON. */
  listRuns(filterJson: string): string;
  /** Batch JSON; throws `DURQ_NOT_FOUND`. */
  getBatch(id: string): string;
  /** `{runs, nextCursor}` JSON: runs with an id above `after` ("" for all), in id order. */
  exportRuns(after: string, limit: number): string;
  /** `[{kind, at, attempt, generation, data}]` JSON, oldest first. */
  runEvents(id: string): string;
  /** `{deferred, openError}` JSON: the state of the search index. */
  searchStatus(): string;
  /** O(1) estimate of the number of runs. */
  runCountEstimate(): number;
  /** Generation of the last commit that wrote something. */
  generation(): number;
  /** `{batches, nextCursor}` JSON for a filter JSON (`{queue, state, limit, cursor}`). */
  listBatches(filterJson: string): string;
  /** JSON array of the queue's active batches, oldest first. */
  listActiveBatches(queue: string): string;
  /** `{version, output}` JSON of the stored output of effect `name` for the canonical input text, or undefined. */
  getEffect(name: string, input: string): string | null | undefined;
  /** The output JSON text of step `name` of run `id`, or undefined. */
  getStepOutput(id: string, name: string): string | null | undefined;
  /** `[{name, output, attempt, createdAt}]` (JSON text or value). */
  getSteps(id: string): unknown;
  /** `[{at, level, message, attempt}]` (JSON text or value). */
  getLogs(id: string): unknown;
  /** Earliest `runAt` of a pending run or lease expiry of a leased run in the queue, ms; null/undefined if none. */
  nextWakeAt(queue: string): number | null | undefined;
  /** Throws `DURQ_INVALID_INPUT` for a bad alarm namespace name; opens nothing. */
  validateNamespace(ns: string): void;
  /** `<path>.alarms` of a file database (the host creates it before `openAlarms`); undefined in memory. */
  alarmDir(): string | null | undefined;
  /** Opens (creating if missing) the alarm database of `ns`. */
  openAlarms(ns: string): void;
  /** `{actorId, scheduledTime, deliverAt, retryCount, version}` JSON, or undefined. */
  getAlarm(ns: string, actorId: string): string | null | undefined;
  /** `{alarms, nextCursor}` JSON for a filter JSON (`{before, limit, cursor}`). */
  listAlarms(ns: string, filterJson: string): string;
  /** The first alarm time (ms) of `ns` strictly after `after`; undefined if none. */
  nextAlarmAfter(ns: string, after: number): number | null | undefined;
  /** `{pending, leased, completed, failed, cancelled}` (JSON text or value). */
  stats(): unknown;
  /** The schedule's JSON (`Schedule` in `generated/boundary.ts`), or undefined. */
  getSchedule(id: string): string | null | undefined;
  /** `{schedules, nextCursor}` JSON for a filter JSON (`{cursor, limit}`). */
  listSchedules(filterJson: string): string;
  /** The earliest slot (ms) a schedule has not fired; undefined if none. */
  nextScheduleAt(): number | null | undefined;
  /** JSON array of `{name, paused, pausedAt, counts}`, one per queue with runs or paused. */
  listQueues(): string;
  /** `PRAGMA integrity_check` lines (JSON text or value). */
  integrityCheck?(): unknown;
  /** Closes the database; later calls throw `DURQ_CLOSED`. */
  close(): void;
  /** Releases the wasm memory of the handle (wasm-bindgen). */
  free?(): void;
}

/** The static side of the wasm `Core` class. */
export interface CoreClass {
  openMemory(seed: number): CoreHandle;
  openFile(path: string, host: HostFs, seed: number, synchronous: "full" | "normal" | "external"): CoreHandle;
  /** Opens `path` through the registered SQLite VFS `vfs` (an OPFS pool's). */
  openVfs(path: string, vfs: string, seed: number, synchronous: "full" | "normal" | "external"): CoreHandle;
}

/** An installed OPFS pool (src/wasm/opfs.rs): one database and its alarm namespaces. */
export interface OpfsPoolHandle {
  /** The SQLite VFS name to open the pool's files with. */
  readonly vfs: string;
  /** Slots held (two per open database: its file and its WAL). */
  readonly capacity: number;
  /** Makes sure the pool holds at least `slots` slots (the pool opens no file meanwhile). */
  reserve(slots: number): Promise<void>;
  /** The pool's virtual file names (each takes a slot). */
  fileNames(): string[];
  /** Releases the pool's OPFS handles (its databases must be closed). */
  release(): void;
  free?(): void;
}

/** The static side of the wasm `OpfsPool` class. */
export interface OpfsPoolClass {
  /** Installs the pool of database `name`; rejects `DURQ_OPFS_UNAVAILABLE`, `DURQ_LOCKED`, `DURQ_OPFS`, `DURQ_INVALID_INPUT`. */
  install(name: string): Promise<OpfsPoolHandle>;
}

/** The wasm-bindgen glue module (`pkg/wasm/durq.js`). */
export interface Glue {
  initSync(arg: { module: BufferSource | WebAssembly.Module }): unknown;
  Core: CoreClass;
  OpfsPool: OpfsPoolClass;
}

let loaded: Glue | undefined;

/**
 * Instantiates the wasm module once, synchronously, from `bytes` (the
 * contents of `durq_bg.wasm`, or a compiled module) with the entry's glue;
 * later calls return the glue instantiated first.
 *
 * @throws {DurqError} `DURQ_WASM_UNAVAILABLE` if the runtime refuses the
 * module (not durq's wasm, or a runtime that forbids compiling bytes).
 */
export function instantiate(glue: Glue, bytes: BufferSource | WebAssembly.Module): Glue {
  if (loaded !== undefined) return loaded;
  try {
    glue.initSync({ module: bytes });
  } catch (e) {
    throw wasmUnavailable("cannot instantiate durq's wasm module", e);
  }
  loaded = glue;
  return loaded;
}

/**
 * The entry's glue, instantiated on first call from `source` (the
 * `open()` option) if given, else from what `locate()` finds (each entry's
 * own way: a file beside the glue, a fetch, an imported module). Later
 * calls return the first instance and ignore `source`.
 *
 * @throws {DurqError} `DURQ_WASM_UNAVAILABLE` when the module cannot be
 * found, fetched or instantiated; `DURQ_INVALID_INPUT` for a `source` of
 * no accepted type.
 */
export async function loadGlue(glue: Glue, source: WasmSource | undefined, locate: () => Promise<BufferSource | WebAssembly.Module>): Promise<Glue> {
  const done = loaded;
  if (done !== undefined) return done;
  const module = source === undefined ? await locate() : await resolveWasm(source);
  return instantiate(glue, module);
}

/** The glue if {@link instantiate} ran, else `undefined`. */
export function instantiated(): Glue | undefined {
  return loaded;
}

/** Calls `f` and turns whatever the core throws into a {@link DurqError}. */
export function coreCall<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw fromCoreError(e);
  }
}

/** A core result that may be JSON text or an already-converted value. */
export function parseResult<T>(v: unknown): T {
  return (typeof v === "string" ? JSON.parse(v) : v) as T;
}

/** A random seed for run ids: 48 random bits (an integer below 2^53, as the core takes it), from `crypto.getRandomValues` (Web Crypto: Node 19+, browsers, workers). */
export function randomSeed(): number {
  const words = crypto.getRandomValues(new Uint32Array(2));
  return words[0]! * 0x10000 + (words[1]! & 0xffff);
}
