/**
 * Loads the wasm core (wasm-bindgen `--target web` glue in `../wasm/`) once,
 * and describes the `Core` class it exports (docs/boundary.md). Internal:
 * the façade in `db.ts` is the public contract.
 *
 * @module
 * @internal
 */

import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { fromCoreError } from "./errors.js";

/** The synchronous file operations the Node file VFS calls (built by `nodeHostFs()`). */
export type HostFs = object;

/** An open database in the wasm core. Every method is synchronous. */
export interface CoreHandle {
  /** Applies a JSON array of operations in one transaction; returns the JSON array of outcomes. Throws if the commit failed. */
  apply(opsJson: string): string;
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
  /** `{actorId, scheduledTime, retryCount, version}` JSON, or undefined. */
  getAlarm(ns: string, actorId: string): string | null | undefined;
  /** `{alarms, nextCursor}` JSON for a filter JSON (`{before, limit, cursor}`). */
  listAlarms(ns: string, filterJson: string): string;
  /** The first alarm time (ms) of `ns` strictly after `after`; undefined if none. */
  nextAlarmAfter(ns: string, after: number): number | null | undefined;
  /** `{pending, leased, completed, failed, cancelled}` (JSON text or value). */
  stats(): unknown;
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
  openFile(path: string, host: HostFs, seed: number, synchronous: "full" | "normal"): CoreHandle;
}

interface Glue {
  initSync(arg: { module: Uint8Array | object }): unknown;
  Core: CoreClass;
}

let loaded: CoreClass | undefined;

/**
 * The wasm `Core` class, instantiating the module on first use (synchronously,
 * from `pkg/wasm/durq_bg.wasm`). Later calls return the cached class.
 */
export async function loadCore(): Promise<CoreClass> {
  if (loaded !== undefined) return loaded;
  const glueUrl = new URL("../wasm/durq.js", import.meta.url);
  let glue: Glue;
  try {
    glue = (await import(glueUrl.href)) as Glue;
  } catch (e) {
    throw fromCoreError(new Error(`cannot load the durq wasm glue at ${glueUrl.pathname}: ${(e as Error).message}`));
  }
  if (loaded !== undefined) return loaded; // another call finished first
  const bytes = readFileSync(new URL("../wasm/durq_bg.wasm", import.meta.url));
  glue.initSync({ module: bytes });
  loaded = glue.Core;
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

/** A random seed for run ids: 48 random bits (an integer below 2^53, as the core takes it). */
export function randomSeed(): number {
  return randomBytes(6).readUIntLE(0, 6);
}
