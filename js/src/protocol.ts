/**
 * The wire protocol between {@link connect} on the page and {@link serve}
 * in a dedicated worker, and between the workers of several tabs: the
 * messages of each side and how values, arguments and errors cross.
 *
 * Three protocols, all over structured clone (the HTML standard's
 * algorithm), so no functions cross:
 * - page → worker ({@link PageMessage}, over `postMessage`): calls and
 *   event subscriptions, each from one `connect()` client;
 * - worker → page ({@link WorkerMessage}): call results (to one client),
 *   events and the worker's role (to all);
 * - worker ↔ worker ({@link ChannelMessage}, over the database's
 *   `BroadcastChannel`): who owns the database, forwarded calls and their
 *   results, event subscriptions and events.
 *
 * Errors keep their `code`: a `DurqError` thrown in the owner is a
 * `DurqError` with the same code on the page.
 *
 * @module
 */

import { DurqError, type DurqErrorCode } from "./errors.js";
import { isJob } from "./job.js";
import { isPlainObject } from "./validate.js";

/** The {@link Durq} methods a {@link DurqClient} forwards: those whose arguments and results can be structured-cloned. */
export const REMOTE_METHODS = [
  "enqueue",
  "enqueueMany",
  "enqueueBatch",
  "cancelBatch",
  "reconcileBatches",
  "cancel",
  "deleteRun",
  "retrigger",
  "purgeRuns",
  "getRun",
  "listRuns",
  "getRunEvents",
  "getSearchStatus",
  "restoreSearchIndex",
  "importRuns",
  "getBatch",
  "listBatches",
  "listActiveBatches",
  "getSteps",
  "getLogs",
  "stats",
  "integrityCheck",
  "waitForRun",
  "waitForBatch",
  "triggerAndWait",
  "deleteEffects",
  "cacheStats",
  "schedule",
  "getSchedule",
  "listSchedules",
  "deleteSchedule",
  "pauseQueue",
  "resumeQueue",
  "listQueues",
] as const;

/** The {@link AlarmNamespace} methods a {@link RemoteAlarmNamespace} forwards. */
export const REMOTE_ALARM_METHODS = ["set", "get", "delete", "list"] as const;

/** A method name of {@link REMOTE_METHODS}. */
export type RemoteMethod = (typeof REMOTE_METHODS)[number];
/** A method name of {@link REMOTE_ALARM_METHODS}. */
export type RemoteAlarmMethod = (typeof REMOTE_ALARM_METHODS)[number];

/** Anything with `postMessage` and message events: a `Worker`, a `MessagePort`, a worker's global scope. */
export interface MessageEndpoint {
  postMessage(message: unknown): void;
  addEventListener(type: "message", listener: (event: MessageEvent) => void): void;
  removeEventListener(type: "message", listener: (event: MessageEvent) => void): void;
}

/** A serialized error: enough to rebuild a {@link DurqError} with its code. @internal */
export interface WireError {
  code: string | undefined;
  name: string;
  message: string;
}

/** What a call is made on: the database (`null`) or one of its alarm namespaces. @internal */
export type Target = null | ["alarms", string];

/** Page → worker; `client` tells apart several `connect()` of one worker. @internal */
export type PageMessage =
  | { __durq: 1; client: string; kind: "call"; id: number; target: Target; method: string; args: unknown[] }
  | { __durq: 1; client: string; kind: "on"; name: string }
  | { __durq: 1; client: string; kind: "off"; name: string };

/** A call's address on the page: which client, which call. @internal */
export interface PageCall {
  client: string;
  id: number;
}

/** The roles a worker reports to its page: who owns the database. @internal */
export type PageRole = "self" | "other" | "pending";

/** Worker → page (results to one client; events and roles to all). @internal */
export type WorkerMessage =
  | { __durq: 1; kind: "result"; client: string; id: number; ok: true; value: unknown }
  | { __durq: 1; kind: "result"; client: string; id: number; ok: false; error: WireError }
  | { __durq: 1; kind: "event"; name: string; payload: unknown }
  | { __durq: 1; kind: "role"; role: PageRole };

/** Worker ↔ worker, over the database's BroadcastChannel. @internal */
export type ChannelMessage =
  | { kind: "who" }
  | { kind: "owner"; owner: string }
  | { kind: "call"; owner: string; from: string; id: number; target: Target; method: string; args: unknown[] }
  | { kind: "result"; to: string; id: number; ok: boolean; value?: unknown; error?: WireError }
  | { kind: "subscribe"; name: string }
  | { kind: "event"; name: string; payload: unknown };

// ---- page → worker ---------------------------------------------------------

/** The page's messages, by kind. @internal */
export const pageMessage = {
  call: (client: string, id: number, target: Target, method: string, args: unknown[]): PageMessage => ({
    __durq: 1,
    client,
    kind: "call",
    id,
    target,
    method,
    args,
  }),
  on: (client: string, name: string): PageMessage => ({ __durq: 1, client, kind: "on", name }),
  off: (client: string, name: string): PageMessage => ({ __durq: 1, client, kind: "off", name }),
};

/** A page's message, or `undefined` for anything else arriving at the worker. @internal */
export function readPageMessage(data: unknown): PageMessage | undefined {
  const m = data as PageMessage | undefined;
  if (typeof m !== "object" || m === null || m.__durq !== 1 || typeof m.client !== "string") return undefined;
  return m;
}

// ---- worker → page ---------------------------------------------------------

/** The worker's messages to its page, by kind. @internal */
export const workerMessage = {
  ok: (call: PageCall, value: unknown): WorkerMessage => ({ __durq: 1, kind: "result", client: call.client, id: call.id, ok: true, value }),
  error: (call: PageCall, error: WireError): WorkerMessage => ({ __durq: 1, kind: "result", client: call.client, id: call.id, ok: false, error }),
  event: (name: string, payload: unknown): WorkerMessage => ({ __durq: 1, kind: "event", name, payload }),
  role: (role: PageRole): WorkerMessage => ({ __durq: 1, kind: "role", role }),
};

/** A worker's message, or `undefined` for anything else arriving at the page. @internal */
export function readWorkerMessage(data: unknown): WorkerMessage | undefined {
  const m = data as WorkerMessage | undefined;
  if (typeof m !== "object" || m === null || m.__durq !== 1) return undefined;
  return m;
}

// ---- worker ↔ worker ---------------------------------------------------------

/** A message on the database's channel (sent only by `serve()`). @internal */
export function readChannelMessage(data: unknown): ChannelMessage {
  return data as ChannelMessage;
}

// ---- values ---------------------------------------------------------------------

/** An error as it crosses: its `code` (if a string), `name` and `message`. @internal */
export function toWireError(e: unknown): WireError {
  if (e instanceof Error || (typeof e === "object" && e !== null && "message" in e)) {
    const o = e as { code?: unknown; name?: unknown; message?: unknown };
    return { code: typeof o.code === "string" ? o.code : undefined, name: String(o.name ?? "Error"), message: String(o.message) };
  }
  return { code: undefined, name: "Error", message: String(e) };
}

/** The error a {@link WireError} was: a `DurqError` with its code, or an `Error` with its name (and code). @internal */
export function fromWireError(w: WireError): Error {
  if (w.code !== undefined && w.name === "DurqError") return new DurqError(w.code as DurqErrorCode, w.message);
  const e = new Error(w.message);
  e.name = w.name;
  if (w.code !== undefined) (e as Error & { code: string }).code = w.code;
  return e;
}

/** Errors inside an event payload (e.g. the `error` event's `error`) become wire errors, marked. @internal */
export function toWirePayload(v: unknown, depth = 0): unknown {
  if (v instanceof Error) return { __durqError: toWireError(v) };
  if (depth > 3 || typeof v !== "object" || v === null) return v;
  if (Array.isArray(v)) return v.map((x) => toWirePayload(x, depth + 1));
  if (!isPlainObject(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = toWirePayload(x, depth + 1);
  return out;
}

/** An event payload as it arrived, its marked wire errors made errors again. @internal */
export function fromWirePayload(v: unknown, depth = 0): unknown {
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
 * cloned, and would run in the wrong context). @internal
 */
export function toWireArgs(v: unknown, path: string, depth = 0): unknown {
  if (isJob(v)) return v.name;
  if (typeof v === "function") {
    throw new DurqError(
      "DURQ_INVALID_INPUT",
      `${path} is a function, which cannot be sent to the worker: pass jobs by name or object, and run code in the worker (job handlers, setup in serve())`,
    );
  }
  if (depth > 4 || typeof v !== "object" || v === null) return v;
  if (Array.isArray(v)) return v.map((x, i) => toWireArgs(x, `${path}[${i}]`, depth + 1));
  if (!isPlainObject(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = toWireArgs(x, `${path}.${k}`, depth + 1);
  return out;
}

/** A random id (of a worker instance on the channel, or of a client). @internal */
export function randomId(): string {
  const [a, b] = crypto.getRandomValues(new Uint32Array(2));
  return a!.toString(36) + b!.toString(36);
}

/** Posts `message`; if it cannot be cloned, posts `fallback()` instead (never throws on a clone failure). @internal */
export function postOr(post: (m: unknown) => void, message: unknown, fallback: () => unknown): void {
  try {
    post(message);
  } catch (e) {
    if ((e as Error)?.name !== "DataCloneError") throw e;
    post(fallback());
  }
}

/** A value as JSON would carry it (what cannot be cloned loses what JSON loses). @internal */
export function jsonCopy(v: unknown): unknown {
  return v === undefined ? undefined : JSON.parse(JSON.stringify(v));
}

// ---- process ↔ process (a shared file's owner and its clients) ------------------

/**
 * Client process → owner, over the owner's local socket (Node): the same
 * calls, results and events as above, point to point. `hello` comes first;
 * `publish` carries the events the client's own commits emitted. @internal
 */
export type PeerRequest =
  | { kind: "hello"; workerId: string }
  | { kind: "call"; id: number; target: Target | ["core"]; method: string; args: unknown[] }
  | { kind: "subscribe"; name: string; on: boolean }
  | { kind: "publish"; events: [name: string, payload: unknown][] }
  | { kind: "ping" };

/**
 * Owner → client process. `welcome` (or `refused`) answers `hello`;
 * `interest` lists the events some process listens to (a client publishes
 * only those); `wake` names queues that got runs; `events` are other
 * processes' events. `closing`: the owner is closing the database; a call
 * it answers with `notApplied` was refused untouched (the client sends it
 * to the next owner). @internal
 */
export type PeerReply =
  | { kind: "welcome"; workerId: string }
  | { kind: "refused"; error: WireError }
  | { kind: "result"; id: number; ok: true; value: unknown }
  | { kind: "result"; id: number; ok: false; error: WireError; notApplied?: true }
  | { kind: "closing" }
  | { kind: "interest"; names: string[] }
  | { kind: "wake"; queues: string[] }
  | { kind: "events"; events: [name: string, payload: unknown][] }
  | { kind: "pong" };

/** One end of a process-to-process connection: messages in order, each delivered once. @internal */
export interface PeerConnection<In, Out> {
  send(message: Out): void;
  /** Sets the handler of arriving messages (one). */
  onMessage(handler: (message: In) => void): void;
  /** Sets what runs once the connection is gone (either end closed it, or the other process died). */
  onClose(handler: () => void): void;
  close(): void;
}
