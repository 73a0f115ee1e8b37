/**
 * The page's side of the browser bridge: {@link connect} returns a
 * {@link DurqClient} whose calls and event subscriptions go to the
 * dedicated worker that runs {@link serve} (`server.ts`), over
 * `postMessage` (`protocol.ts`).
 *
 * @module
 */

import type { AlarmNamespace } from "../alarms.js";
import type { Durq } from "../db.js";
import { DurqError } from "../errors.js";
import { EVENT_NAMES, type DurqEventName, type DurqListener } from "../events.js";
import type { Job } from "../job.js";
import type { EnqueueOptions, RunFilter, WaitOptions } from "../options.js";
import type { EnqueueResult, Run, RunPage } from "../types.js";
import {
  fromWireError,
  fromWirePayload,
  pageMessage,
  randomId,
  readWorkerMessage,
  REMOTE_ALARM_METHODS,
  REMOTE_METHODS,
  toWireArgs,
  type MessageEndpoint,
  type RemoteAlarmMethod,
  type RemoteMethod,
  type Target,
} from "../protocol.js";

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
    shutdown(
      new DurqError("DURQ_CLOSED", `the worker failed before serving the database: ${(event as ErrorEvent).message ?? "script error"} (does it call serve()?)`),
    );
  };

  const onMessage = (event: MessageEvent) => {
    const m = readWorkerMessage(event.data);
    if (m === undefined) return;
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
        endpoint.postMessage(pageMessage.call(me, id, target, method, wire));
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
    if (!(EVENT_NAMES as readonly string[]).includes(name))
      throw new DurqError("DURQ_INVALID_INPUT", `unknown event ${JSON.stringify(name)}; known: ${EVENT_NAMES.join(", ")}`);
    if (typeof listener !== "function") throw new DurqError("DURQ_INVALID_INPUT", "the listener must be a function");
    let set = listeners.get(name);
    if (set === undefined) {
      set = new Set();
      listeners.set(name, set);
      if (!closed) endpoint.postMessage(pageMessage.on(me, name));
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
      if (!closed) endpoint.postMessage(pageMessage.off(me, name));
    }
  };
  Object.defineProperty(client, "role", { get: () => role, enumerable: true });
  client.close = () => {
    if (closed) return;
    for (const name of listeners.keys()) endpoint.postMessage(pageMessage.off(me, name));
    listeners.clear();
    shutdown(new DurqError("DURQ_CLOSED", "this connection was closed"));
  };
  return client as unknown as DurqClient;
}
