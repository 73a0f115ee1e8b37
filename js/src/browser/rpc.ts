/**
 * The page-to-worker bridge of the browser entry: {@link serve} runs in a
 * dedicated worker and answers {@link connect} on the page, over
 * `postMessage`. With `{ opfs }` storage, every tab's worker calls `serve`;
 * one of them owns the database (the Web Lock `durq:opfs:<name>`, which
 * `open({ opfs }, { waitForLock: true })` waits for) and the others forward
 * their page's calls to it over the `BroadcastChannel` of the same name.
 * When the owning tab closes, the browser releases its lock and the next
 * waiting worker opens the database and announces itself.
 *
 * Values cross by structured clone (the HTML standard's algorithm), so the
 * page passes jobs by name (a job object is sent as its name) and no
 * functions. Errors keep their `code`: a `DurqError` thrown in the owner is
 * a `DurqError` with the same code on the page.
 *
 * @module
 */

import { open, type Durq, type EnqueueOptions, type OpenOptions, type OpenTarget, type RunFilter, type WaitOptions } from "../db.js";
import { DurqError, type DurqErrorCode } from "../errors.js";
import { EVENT_NAMES, type DurqEventName, type DurqListener } from "../events.js";
import { isJob, type Job } from "../job.js";
import type { EnqueueResult, Run, RunPage } from "../types.js";
import { isPlainObject } from "../validate.js";
import type { AlarmNamespace } from "../alarms.js";

/** The {@link Durq} methods a {@link DurqClient} forwards: those whose arguments and results can be structured-cloned. */
export const REMOTE_METHODS = [
  "enqueue", "enqueueMany", "enqueueBatch", "cancelBatch", "reconcileBatches", "cancel", "deleteRun", "retrigger", "purgeRuns",
  "getRun", "listRuns", "getRunEvents", "getSearchStatus", "restoreSearchIndex", "importRuns", "getBatch", "listBatches",
  "listActiveBatches", "getSteps", "getLogs", "stats", "integrityCheck", "waitForRun", "waitForBatch", "triggerAndWait",
  "deleteEffects", "cacheStats",
] as const;

/** The {@link AlarmNamespace} methods a {@link RemoteAlarmNamespace} forwards. */
export const REMOTE_ALARM_METHODS = ["set", "get", "delete", "list"] as const;

/** A method name of {@link REMOTE_METHODS}. */
export type RemoteMethod = (typeof REMOTE_METHODS)[number];
type RemoteAlarmMethod = (typeof REMOTE_ALARM_METHODS)[number];

/** Methods whose type parameters a mapped type would erase: declared one by one in {@link DurqClient}. */
type GenericMethod = "enqueue" | "getRun" | "listRuns" | "waitForRun" | "triggerAndWait";

type Promised<F> = F extends (...args: infer A) => infer R ? (...args: A) => Promise<Awaited<R>> : never;

/** An alarm namespace reached through {@link connect}: `set`, `get`, `delete`, `list` as on {@link AlarmNamespace}; handlers (`onAlarm`) run in the worker. */
export type RemoteAlarmNamespace = { readonly namespace: string } & { [K in RemoteAlarmMethod]: Promised<AlarmNamespace[K]> };

/**
 * The page's handle on a database served by a worker: the {@link Durq}
 * methods of {@link REMOTE_METHODS}, each returning a promise, plus events
 * and alarms. What stays in the worker: `worker()`, `onAlarm()`,
 * `callEffect()`, `exportRuns()` and `close()` (they take functions or
 * return live objects).
 */
export type DurqClient = { [K in Exclude<RemoteMethod, GenericMethod>]: Promised<Durq[K]> } & {
  /** {@link Durq.enqueue}: the job goes by name; its handler runs in the worker. */
  enqueue<I>(job: Job<I, any> | string, input: I, options?: EnqueueOptions): Promise<EnqueueResult>;
  /** {@link Durq.getRun}. */
  getRun<I = unknown, O = unknown>(id: string): Promise<Run<I, O>>;
  /** {@link Durq.listRuns}. */
  listRuns<I = unknown, O = unknown>(filter?: RunFilter): Promise<RunPage<I, O>>;
  /** {@link Durq.waitForRun}: waits in the worker. */
  waitForRun<I = unknown, O = unknown>(id: string, options?: WaitOptions): Promise<Run<I, O>>;
  /** {@link Durq.triggerAndWait}. */
  triggerAndWait<I, O = unknown>(job: Job<I, O> | string, input: I, options?: EnqueueOptions & WaitOptions): Promise<Run<I, O>>;
} & {
  /** Subscribes to an event of the database (same names and payloads as {@link Durq.on}); returns the unsubscribe function. */
  on<E extends DurqEventName>(name: E, listener: DurqListener<E>): () => void;
  /** Removes a listener added with {@link DurqClient.on}. */
  off<E extends DurqEventName>(name: E, listener: DurqListener<E>): void;
  /** The alarm namespace `namespace`, reached through the worker. */
  alarms(namespace: string): RemoteAlarmNamespace;
  /** Which context owns the database, as last reported by the worker: `"self"` (this page's worker), `"other"` (another tab's, reached over a BroadcastChannel) or `"pending"`. */
  readonly role: "self" | "other" | "pending";
  /** Stops using the worker: pending calls reject with `DURQ_CLOSED`, listeners are dropped. The worker and its database stay as they are. */
  close(): void;
};

/** Anything with `postMessage` and message events: a `Worker`, a `MessagePort`, a worker's global scope. */
export interface MessageEndpoint {
  postMessage(message: unknown): void;
  addEventListener(type: "message", listener: (event: MessageEvent) => void): void;
  removeEventListener(type: "message", listener: (event: MessageEvent) => void): void;
}

/** Options of {@link serve}. */
export interface ServeOptions {
  /** The database: `{ opfs: name }` (shared by tabs, one owner at a time) or `{ memory: true }` (this worker's alone). */
  target: OpenTarget;
  /** Options of {@link open} (`waitForLock` is set by `serve`). */
  options?: Omit<OpenOptions, "waitForLock">;
  /**
   * Called once this worker owns the database, before it answers calls:
   * start workers (`db.worker({ jobs }).start()`), register alarm handlers.
   * An error thrown here closes the database: the calls this worker would
   * run reject with that error (calls still reach another tab that owns it).
   */
  setup?: (db: Durq) => void | Promise<void>;
  /** Where the page's messages arrive (default: the worker's global scope). */
  endpoint?: MessageEndpoint;
}

/** What {@link serve} returns. */
export interface Server {
  /** `"owner"` once this worker holds the database, `"follower"` while another context does, `"failed"` if opening failed. */
  readonly role: "owner" | "follower" | "failed";
  /** Resolves with the database once this worker owns it (never, while another tab keeps it); rejects with the error of `open` or `setup`, or `DURQ_CLOSED` if `close()` came first. */
  readonly owned: Promise<Durq>;
  /** Stops serving; closes the database if this worker owns it (another tab's worker then takes over). */
  close(): Promise<void>;
}

/** A serialized error: enough to rebuild a {@link DurqError} with its code. */
interface WireError {
  code: string | undefined;
  name: string;
  message: string;
}

type Target = null | ["alarms", string];

/** Page → worker; `client` tells apart several `connect()` of one worker. */
type PageMessage =
  | { __durq: 1; client: string; kind: "call"; id: number; target: Target; method: string; args: unknown[] }
  | { __durq: 1; client: string; kind: "on"; name: string }
  | { __durq: 1; client: string; kind: "off"; name: string };

/** A call's address on the page: which client, which call. */
interface PageCall {
  client: string;
  id: number;
}

/** Worker → page (results to one client; events and roles to all). */
type WorkerMessage =
  | { __durq: 1; kind: "result"; client: string; id: number; ok: true; value: unknown }
  | { __durq: 1; kind: "result"; client: string; id: number; ok: false; error: WireError }
  | { __durq: 1; kind: "event"; name: string; payload: unknown }
  | { __durq: 1; kind: "role"; role: "self" | "other" | "pending" };

/** Worker ↔ worker, over the database's BroadcastChannel. */
type ChannelMessage =
  | { kind: "who" }
  | { kind: "owner"; owner: string }
  | { kind: "call"; owner: string; from: string; id: number; target: Target; method: string; args: unknown[] }
  | { kind: "result"; to: string; id: number; ok: boolean; value?: unknown; error?: WireError }
  | { kind: "subscribe"; name: string }
  | { kind: "event"; name: string; payload: unknown };

function toWireError(e: unknown): WireError {
  if (e instanceof Error || (typeof e === "object" && e !== null && "message" in e)) {
    const o = e as { code?: unknown; name?: unknown; message?: unknown };
    return { code: typeof o.code === "string" ? o.code : undefined, name: String(o.name ?? "Error"), message: String(o.message) };
  }
  return { code: undefined, name: "Error", message: String(e) };
}

function fromWireError(w: WireError): Error {
  if (w.code !== undefined && w.name === "DurqError") return new DurqError(w.code as DurqErrorCode, w.message);
  const e = new Error(w.message);
  e.name = w.name;
  if (w.code !== undefined) (e as Error & { code: string }).code = w.code;
  return e;
}

/** Errors inside an event payload (e.g. the `error` event's `error`) become wire errors, marked. */
function toWirePayload(v: unknown, depth = 0): unknown {
  if (v instanceof Error) return { __durqError: toWireError(v) };
  if (depth > 3 || typeof v !== "object" || v === null) return v;
  if (Array.isArray(v)) return v.map((x) => toWirePayload(x, depth + 1));
  if (!isPlainObject(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = toWirePayload(x, depth + 1);
  return out;
}

function fromWirePayload(v: unknown, depth = 0): unknown {
  if (depth > 4 || typeof v !== "object" || v === null) return v;
  if (Array.isArray(v)) return v.map((x) => fromWirePayload(x, depth + 1));
  if (!isPlainObject(v)) return v; // a Date, Map or typed array arrives as itself
  const o = v as Record<string, unknown>;
  if (o.__durqError !== undefined && Object.keys(o).length === 1) return fromWireError(o.__durqError as WireError);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(o)) out[k] = fromWirePayload(x, depth + 1);
  return out;
}

/**
 * Arguments as they cross to the worker: a job object becomes its name;
 * any other function is refused with `DURQ_INVALID_INPUT` (it cannot be
 * cloned, and would run in the wrong context).
 */
function toWireArgs(v: unknown, path: string, depth = 0): unknown {
  if (isJob(v)) return v.name;
  if (typeof v === "function") {
    throw new DurqError("DURQ_INVALID_INPUT", `${path} is a function, which cannot be sent to the worker: pass jobs by name or object, and run code in the worker (job handlers, setup in serve())`);
  }
  if (depth > 4 || typeof v !== "object" || v === null) return v;
  if (Array.isArray(v)) return v.map((x, i) => toWireArgs(x, `${path}[${i}]`, depth + 1));
  if (!isPlainObject(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = toWireArgs(x, `${path}.${k}`, depth + 1);
  return out;
}

/** Runs a call on the database this worker owns. */
async function invoke(db: Durq, target: Target, method: string, args: unknown[]): Promise<unknown> {
  if (target === null) {
    if (!(REMOTE_METHODS as readonly string[]).includes(method)) throw new DurqError("DURQ_INVALID_INPUT", `${method} cannot be called through connect(); callable: ${REMOTE_METHODS.join(", ")}`);
    return (db[method as RemoteMethod] as (...a: unknown[]) => unknown)(...args);
  }
  if (!(REMOTE_ALARM_METHODS as readonly string[]).includes(method)) throw new DurqError("DURQ_INVALID_INPUT", `alarms().${method} cannot be called through connect(); callable: ${REMOTE_ALARM_METHODS.join(", ")}`);
  const ns = db.alarms(target[1]);
  return (ns[method as RemoteAlarmMethod] as (...a: unknown[]) => unknown).apply(ns, args);
}

/** A random id (of a worker instance on the channel, or of a client). */
function randomId(): string {
  const [a, b] = crypto.getRandomValues(new Uint32Array(2));
  return a!.toString(36) + b!.toString(36);
}

/** Posts `message`; if it cannot be cloned, posts `fallback()` instead (never throws on a clone failure). */
function postOr(post: (m: unknown) => void, message: unknown, fallback: () => unknown): void {
  try {
    post(message);
  } catch (e) {
    if ((e as Error)?.name !== "DataCloneError") throw e;
    post(fallback());
  }
}

/** A value as JSON would carry it (what cannot be cloned loses what JSON loses). */
function jsonCopy(v: unknown): unknown {
  return v === undefined ? undefined : JSON.parse(JSON.stringify(v));
}

/**
 * Serves the database to the page (and, with `{ opfs }`, to the other tabs'
 * workers). Call it once in a dedicated worker; the page reaches it with
 * {@link connect}. Job handlers run here, so import the job definitions in
 * the worker and start workers in `setup`.
 *
 * @example
 * ```ts
 * // worker.ts (new Worker(new URL("./worker.ts", import.meta.url), { type: "module" }))
 * import { serve } from "durq";
 * import { jobs } from "./jobs";
 * serve({ target: { opfs: "app.db" }, setup: (db) => { db.worker({ jobs }).start(); } });
 * ```
 *
 * Calls made while another tab owns the database go to it over the
 * `BroadcastChannel` `durq:opfs:<name>`. If that tab closes before it
 * answers, the call rejects with `DURQ_OWNER_CHANGED` (it may have taken
 * effect; retry it); calls made after go to the next owner.
 *
 * @throws {DurqError} `DURQ_INVALID_INPUT` for bad options. A failure to
 *   open here (e.g. `DURQ_OPFS_UNAVAILABLE`) rejects the calls this worker
 *   would run itself with that error; calls still go to another tab that
 *   owns the database.
 */
export function serve(options: ServeOptions): Server {
  if (!isPlainObject(options) || !isPlainObject(options.target)) throw new DurqError("DURQ_INVALID_INPUT", "serve() needs { target: { opfs: name } | { memory: true }, options?, setup? }");
  if (options.setup !== undefined && typeof options.setup !== "function") throw new DurqError("DURQ_INVALID_INPUT", "serve(): setup must be a function");
  const endpoint: MessageEndpoint = options.endpoint ?? (globalThis as unknown as MessageEndpoint);
  const opfsName = typeof (options.target as { opfs?: unknown }).opfs === "string" ? (options.target as { opfs: string }).opfs : undefined;
  const me = randomId();
  const channel = opfsName !== undefined && typeof BroadcastChannel === "function" ? new BroadcastChannel(`durq:opfs:${opfsName}`) : undefined;

  let role: Server["role"] = "follower";
  let db: Durq | undefined;
  /** Set once this worker holds the lock, until it serves: calls wait here instead of going to the old owner. */
  let taking = false;
  let failure: unknown;
  let owner: string | undefined; // the owning instance, when another
  let nextId = 1;
  /** Calls of this page sent to another owner, by channel id. */
  const forwarded = new Map<number, { call: PageCall; owner: string }>();
  /** Calls of this page waiting for an owner to be known. */
  let waiting: { call: PageCall; target: Target; method: string; args: unknown[] }[] = [];
  const pageEvents = new Map<string, Set<string>>(); // event name → clients of this page subscribed to it
  const channelEvents = new Set<string>(); // events other tabs subscribed to (when owner)
  const localListeners = new Map<string, () => void>();
  let closed = false;

  const toPage = (m: WorkerMessage) => endpoint.postMessage(m);
  const closedError = () => new DurqError("DURQ_CLOSED", "the worker stopped serving (Server.close())");
  const reply = (call: PageCall, ok: boolean, value: unknown) => {
    const fail = (error: unknown): WorkerMessage => ({ __durq: 1, kind: "result", client: call.client, id: call.id, ok: false, error: toWireError(error) });
    if (!ok) return toPage(fail(value));
    postOr(toPage as (m: unknown) => void, { __durq: 1, kind: "result", client: call.client, id: call.id, ok: true, value }, () =>
      fail(new DurqError("DURQ_INTERNAL", "the result cannot be sent to the page (structured clone failed)")),
    );
  };
  const post = (m: ChannelMessage) => {
    if (!closed) channel?.postMessage(m);
  };
  const pageWants = (name: string) => (pageEvents.get(name)?.size ?? 0) > 0;

  /** Forwards the events of `name` of database `d` to this page and/or the channel (once per name). */
  const listen = (name: string, d: Durq | undefined = db) => {
    if (d === undefined || localListeners.has(name)) return;
    localListeners.set(
      name,
      d.on(name as DurqEventName, (payload: unknown) => {
        const wire = toWirePayload(payload);
        if (pageWants(name)) postOr(toPage as (m: unknown) => void, { __durq: 1, kind: "event", name, payload: wire }, () => ({ __durq: 1, kind: "event", name, payload: jsonCopy(wire) }));
        if (channelEvents.has(name)) postOr(post as (m: unknown) => void, { kind: "event", name, payload: wire }, () => ({ kind: "event", name, payload: jsonCopy(wire) }));
      }),
    );
  };

  const runLocal = (call: PageCall, target: Target, method: string, args: unknown[]) => {
    invoke(db!, target, method, args).then(
      (v) => reply(call, true, v),
      (e) => reply(call, false, e),
    );
  };

  const send = (call: PageCall, target: Target, method: string, args: unknown[]) => {
    if (closed) return reply(call, false, closedError());
    if (db !== undefined) return runLocal(call, target, method, args);
    if (role === "failed" && owner === undefined) return reply(call, false, failure);
    if (owner === undefined || taking) {
      waiting.push({ call, target, method, args });
      if (!taking) post({ kind: "who" });
      return;
    }
    const id = nextId++;
    forwarded.set(id, { call, owner });
    postOr(post as (m: unknown) => void, { kind: "call", owner, from: me, id, target, method, args }, () => {
      forwarded.delete(id);
      reply(call, false, new DurqError("DURQ_INVALID_INPUT", `${method}: an argument cannot be sent to the tab that owns the database (structured clone failed)`));
      return { kind: "who" };
    });
  };

  /** A new owner (`undefined`: this worker): calls in flight to the old one may never be answered. */
  const ownerChanged = (next: string | undefined) => {
    for (const [id, f] of forwarded) {
      if (f.owner === next) continue;
      forwarded.delete(id);
      reply(f.call, false, new DurqError("DURQ_OWNER_CHANGED", "the tab that owned the database closed before answering; the call may or may not have taken effect: retry it (an idempotencyKey makes an enqueue safe to retry)"));
    }
    owner = next;
    toPage({ __durq: 1, kind: "role", role: db !== undefined ? "self" : next !== undefined ? "other" : "pending" });
    if (next !== undefined && db === undefined) for (const name of pageEvents.keys()) if (pageWants(name)) post({ kind: "subscribe", name });
    const queued = waiting;
    waiting = [];
    for (const w of queued) send(w.call, w.target, w.method, w.args);
  };

  const onPage = (event: MessageEvent) => {
    const m = event.data as PageMessage | undefined;
    if (typeof m !== "object" || m === null || m.__durq !== 1 || typeof m.client !== "string") return;
    if (m.kind === "call") send({ client: m.client, id: m.id }, m.target, m.method, m.args);
    else if (m.kind === "on") {
      if (closed || !(EVENT_NAMES as readonly string[]).includes(m.name)) return;
      let clients = pageEvents.get(m.name);
      if (clients === undefined) pageEvents.set(m.name, (clients = new Set()));
      clients.add(m.client);
      if (db !== undefined) listen(m.name);
      else post({ kind: "subscribe", name: m.name });
    } else if (m.kind === "off") pageEvents.get(m.name)?.delete(m.client);
  };
  endpoint.addEventListener("message", onPage);
  toPage({ __durq: 1, kind: "role", role: "pending" }); // tells connect() the worker is serving

  if (channel !== undefined) {
    channel.onmessage = (event: MessageEvent) => {
      const m = event.data as ChannelMessage;
      if (closed) return;
      switch (m.kind) {
        case "who":
          if (db !== undefined) post({ kind: "owner", owner: me });
          break;
        case "owner":
          if (m.owner !== me && m.owner !== owner && db === undefined) ownerChanged(m.owner);
          break;
        case "call": {
          if (m.owner !== me) break;
          const answer = (ok: boolean, value: unknown) =>
            ok
              ? postOr(post as (x: unknown) => void, { kind: "result", to: m.from, id: m.id, ok: true, value }, () => ({ kind: "result", to: m.from, id: m.id, ok: false, error: toWireError(new DurqError("DURQ_INTERNAL", "the result cannot be sent to the other tab (structured clone failed)")) }))
              : post({ kind: "result", to: m.from, id: m.id, ok: false, error: toWireError(value) });
          if (db === undefined) {
            answer(false, new DurqError("DURQ_OWNER_CHANGED", "the database is not open here any more: retry"));
            break;
          }
          invoke(db, m.target, m.method, m.args).then(
            (value) => answer(true, value),
            (e) => answer(false, e),
          );
          break;
        }
        case "result": {
          if (m.to !== me) break;
          const f = forwarded.get(m.id);
          if (f === undefined) break;
          forwarded.delete(m.id);
          if (m.ok) reply(f.call, true, m.value);
          else toPage({ __durq: 1, kind: "result", client: f.call.client, id: f.call.id, ok: false, error: m.error! });
          break;
        }
        case "subscribe":
          channelEvents.add(m.name);
          listen(m.name);
          break;
        case "event":
          if (db === undefined && pageWants(m.name)) toPage({ __durq: 1, kind: "event", name: m.name, payload: m.payload });
          break;
      }
    };
    post({ kind: "who" });
  }

  const owned = (async () => {
    const opened = await open(options.target, { ...(options.options ?? {}), ...(opfsName !== undefined ? { waitForLock: true } : {}) });
    taking = true; // this worker holds the database: new calls wait for it, not for the old owner
    try {
      if (closed) throw closedError();
      // Events of workers that setup starts reach the page from the start.
      for (const name of new Set([...pageEvents.keys(), ...channelEvents])) listen(name, opened);
      await options.setup?.(opened);
      if (closed) throw closedError();
    } catch (e) {
      for (const off of localListeners.values()) off();
      localListeners.clear();
      await opened.close().catch(() => undefined);
      throw e;
    }
    db = opened;
    role = "owner";
    taking = false;
    ownerChanged(undefined);
    post({ kind: "owner", owner: me });
    return opened;
  })();
  owned.catch((e: unknown) => {
    taking = false;
    role = "failed";
    failure = e;
    if (closed) return;
    const queued = waiting;
    waiting = [];
    for (const w of queued) send(w.call, w.target, w.method, w.args);
    toPage({ __durq: 1, kind: "role", role: owner !== undefined ? "other" : "pending" });
  });

  return {
    get role() {
      return role;
    },
    owned,
    async close() {
      if (closed) return;
      closed = true;
      channel?.close();
      for (const w of waiting) reply(w.call, false, closedError());
      waiting = [];
      for (const f of forwarded.values()) reply(f.call, false, closedError());
      forwarded.clear();
      // A setup in progress finishes and closes the database, seeing
      // `closed`; an open still waiting for the lock does the same when
      // (if ever) it gets the lock, without this close() waiting for it.
      if (taking) await owned.catch(() => undefined);
      for (const off of localListeners.values()) off();
      localListeners.clear();
      if (db !== undefined) await db.close();
    },
  };
}

/**
 * Connects the page to a database served by a dedicated worker (see
 * {@link serve}). Returns at once; calls made before the worker is ready
 * wait in the worker until it is.
 *
 * @example
 * ```ts
 * const worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
 * const db = connect(worker);
 * const { id } = await db.enqueue("thumbnail", { url }, { labels: { tenant: "acme" } });
 * db.on("run:completed", (e) => console.log("done", e.id));
 * ```
 *
 * @param endpoint - the `Worker` (or a `MessagePort` to it)
 * @throws {DurqError} `DURQ_INVALID_INPUT` if `endpoint` cannot post and
 *   receive messages. Calls reject with the worker's error and its `code`;
 *   `DURQ_INVALID_INPUT` for an argument that is a function (jobs go by
 *   name); `DURQ_CLOSED` after {@link DurqClient.close}.
 */
export function connect(endpoint: MessageEndpoint): DurqClient {
  if (typeof endpoint !== "object" || endpoint === null || typeof endpoint.postMessage !== "function" || typeof endpoint.addEventListener !== "function") {
    throw new DurqError("DURQ_INVALID_INPUT", "connect() needs the Worker that calls serve() (or a MessagePort to it)");
  }
  const me = randomId();
  let nextId = 1;
  let closed = false;
  /** Whether the worker has said it serves: before that, a worker `error` event means its script failed. */
  let serving = false;
  let role: DurqClient["role"] = "pending";
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>();
  const listeners = new Map<string, Set<(payload: unknown) => void>>();

  const shutdown = (error: DurqError) => {
    closed = true;
    endpoint.removeEventListener("message", onMessage);
    endpoint.removeEventListener("error" as "message", onError);
    for (const p of pending.values()) p.reject(error);
    pending.clear();
  };
  const onError = (event: Event) => {
    if (serving || closed) return; // an error inside a serving worker is its own (its calls still answer)
    event.preventDefault?.();
    shutdown(new DurqError("DURQ_CLOSED", `the worker failed before serving the database: ${(event as ErrorEvent).message ?? "script error"} (does it call serve()?)`));
  };

  const onMessage = (event: MessageEvent) => {
    const m = event.data as WorkerMessage | undefined;
    if (typeof m !== "object" || m === null || m.__durq !== 1) return;
    serving = true;
    if (m.kind === "result") {
      if (m.client !== me) return;
      const p = pending.get(m.id);
      if (p === undefined) return;
      pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(fromWireError(m.error));
    } else if (m.kind === "event") {
      const payload = fromWirePayload(m.payload);
      for (const l of [...(listeners.get(m.name) ?? [])]) {
        try {
          void Promise.resolve(l(payload)).catch((e) => console.error(`durq: a listener of ${m.name} failed:`, e));
        } catch (e) {
          console.error(`durq: a listener of ${m.name} failed:`, e);
        }
      }
    } else if (m.kind === "role") role = m.role;
  };
  endpoint.addEventListener("message", onMessage);
  endpoint.addEventListener("error" as "message", onError as unknown as (event: MessageEvent) => void);

  const call = (target: Target, method: string, args: unknown[]): Promise<unknown> => {
    if (closed) return Promise.reject(new DurqError("DURQ_CLOSED", "this connection was closed"));
    let wire: unknown[];
    try {
      wire = args.map((a, i) => toWireArgs(a, `${method} argument ${i + 1}`));
    } catch (e) {
      return Promise.reject(e);
    }
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      try {
        endpoint.postMessage({ __durq: 1, client: me, kind: "call", id, target, method, args: wire } satisfies PageMessage);
      } catch (e) {
        pending.delete(id);
        reject(new DurqError("DURQ_INVALID_INPUT", `${method}: an argument cannot be sent to the worker (${(e as Error).message})`));
      }
    });
  };

  const client: Record<string, unknown> = {};
  for (const m of REMOTE_METHODS) client[m] = (...args: unknown[]) => call(null, m, args);
  client.alarms = (namespace: string): RemoteAlarmNamespace => {
    const ns: Record<string, unknown> = { namespace };
    for (const m of REMOTE_ALARM_METHODS) ns[m] = (...args: unknown[]) => call(["alarms", namespace], m, args);
    return ns as RemoteAlarmNamespace;
  };
  client.on = (name: string, listener: (payload: unknown) => void) => {
    if (!(EVENT_NAMES as readonly string[]).includes(name)) throw new DurqError("DURQ_INVALID_INPUT", `unknown event ${JSON.stringify(name)}; known: ${EVENT_NAMES.join(", ")}`);
    if (typeof listener !== "function") throw new DurqError("DURQ_INVALID_INPUT", "the listener must be a function");
    let set = listeners.get(name);
    if (set === undefined) {
      set = new Set();
      listeners.set(name, set);
      if (!closed) endpoint.postMessage({ __durq: 1, client: me, kind: "on", name } satisfies PageMessage);
    }
    set.add(listener);
    return () => (client.off as (n: string, l: unknown) => void)(name, listener);
  };
  client.off = (name: string, listener: (payload: unknown) => void) => {
    const set = listeners.get(name);
    if (set === undefined) return;
    set.delete(listener);
    if (set.size === 0) {
      listeners.delete(name);
      if (!closed) endpoint.postMessage({ __durq: 1, client: me, kind: "off", name } satisfies PageMessage);
    }
  };
  Object.defineProperty(client, "role", { get: () => role, enumerable: true });
  client.close = () => {
    if (closed) return;
    for (const name of listeners.keys()) endpoint.postMessage({ __durq: 1, client: me, kind: "off", name } satisfies PageMessage);
    listeners.clear();
    shutdown(new DurqError("DURQ_CLOSED", "this connection was closed"));
  };
  return client as unknown as DurqClient;
}
