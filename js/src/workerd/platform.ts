/**
 * The workerd platform of `open()` (Cloudflare Workers, Durable Objects):
 * the wasm module imported as a module by the entry (workerd compiles wasm
 * only from modules it loaded: `WebAssembly.compile(bytes)` is refused,
 * "Wasm code generation disallowed by embedder"), and
 * `{ durableObject: ctx.storage }` databases in a Durable Object's own
 * storage (`storage.ts`), each group commit in one `transactionSync()`,
 * the next timer mirrored into `setAlarm()`.
 * Internal: not exported from the package.
 *
 * @module
 */

// The wasm-bindgen glue is generated into pkg/wasm/ by scripts/build.sh.
// @ts-expect-error: not present when tsc runs; typed as Glue below
import * as generatedGlue from "../../wasm/durq.js";
import { coreCall, loadGlue, type CoreHandle, type Glue } from "../core.js";
import { DurqError, invalidInput } from "../errors.js";
import type { OpenedStorage, Platform, StorageRequest } from "../platform.js";
import { wasmUnavailable, type WasmSource } from "../wasm-source.js";
import { durableObjectHostFs, type DurableObjectStorageLike } from "./storage.js";

/** The database's path inside the object's storage (alarm namespaces are `/durq.db.alarms/<ns>.db`). */
export const DURABLE_OBJECT_DB_PATH = "/durq.db";

/** The soonest the object's alarm is set ahead of now, ms. */
export const ALARM_BACKSTOP_MS = 1000;

/** Storage objects with an open database: one `Durq` per object at a time. */
const held = new WeakSet<object>();
/** One host (and so one registered SQLite VFS) per storage object. */
const hosts = new WeakMap<object, ReturnType<typeof durableObjectHostFs>>();

let bundled: WebAssembly.Module | undefined;

/** Sets the module the entry imported (`import wasm from "../wasm/durq_bg.wasm"`). */
export function setBundledWasm(module: WebAssembly.Module): void {
  bundled = module;
}

function load(wasm?: WasmSource): Promise<Glue> {
  return loadGlue(generatedGlue as unknown as Glue, wasm, async () => {
    if (!(bundled instanceof WebAssembly.Module)) {
      throw wasmUnavailable("durq's workerd entry got no WebAssembly.Module for durq_bg.wasm (a bundler that turned the .wasm import into something else)");
    }
    return bundled;
  });
}

function isStorage(target: Record<string, unknown>): boolean {
  return "durableObject" in target;
}

function checkStorage(s: unknown): DurableObjectStorageLike {
  const o = s as Partial<DurableObjectStorageLike> | null;
  if (typeof o !== "object" || o === null || typeof o.transactionSync !== "function" || typeof o.setAlarm !== "function") {
    throw invalidInput("durableObject must be a Durable Object's ctx.storage (DurableObjectStorage)");
  }
  if (typeof o.kv !== "object" || o.kv === null || typeof o.kv.get !== "function") {
    throw new DurqError(
      "DURQ_INVALID_INPUT",
      "ctx.storage has no synchronous KV API (ctx.storage.kv): durq needs a SQLite-backed Durable Object (new_sqlite_classes in wrangler's migrations; enableSql = true in a workerd config)",
    );
  }
  return o as DurableObjectStorageLike;
}

async function open(request: StorageRequest, glue: Glue): Promise<OpenedStorage> {
  const storage = checkStorage(request.target.durableObject);
  if (request.waitForLock) throw invalidInput("waitForLock applies to { opfs } databases in a browser");
  if (held.has(storage))
    throw new DurqError("DURQ_LOCKED", "this Durable Object's storage already has an open durq database: close it first, or share one Durq");
  let host = hosts.get(storage);
  if (host === undefined) {
    host = durableObjectHostFs(storage.kv);
    hosts.set(storage, host);
  }
  const h = host;
  const core: CoreHandle = storage.transactionSync(() => coreCall(() => glue.Core.openFile(DURABLE_OBJECT_DB_PATH, h, request.seed, "external")));
  held.add(storage);
  let alarmAt: number | undefined;
  return {
    core,
    path: `durable-object:${DURABLE_OBJECT_DB_PATH}`,
    prepareAlarms() {
      // no folders in KV: a file exists once written
    },
    release: () => {
      held.delete(storage);
    },
    transact: (f) => storage.transactionSync(f),
    timerChanged(at) {
      if (at === alarmAt) return;
      alarmAt = at;
      // Ordered with the object's other writes; the output gate holds
      // replies until it is stored. A failure leaves the in-process timer.
      // A backstop for when the object is gone (evicted, crashed): what is
      // due now runs on the in-process timer, so the alarm is never set
      // sooner than ALARM_BACKSTOP_MS ahead (a due run that cannot be claimed
      // yet would otherwise wake the object in a loop).
      const done = at === undefined ? storage.deleteAlarm() : storage.setAlarm(Math.max(Math.ceil(at), Date.now() + ALARM_BACKSTOP_MS));
      if (done !== undefined && typeof (done as Promise<void>).catch === "function") (done as Promise<void>).catch(() => undefined);
    },
  };
}

/** The workerd platform. */
export const workerdPlatform: Platform = {
  name: "workerd",
  load,
  defaultWorkerId: () => {
    const [a, b] = crypto.getRandomValues(new Uint32Array(2));
    return `workerd:${a!.toString(36)}${b!.toString(36)}`;
  },
  storageHelp: "{ durableObject: ctx.storage }",
  isStorage,
  open,
};
