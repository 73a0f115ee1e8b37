/**
 * The worker's side of the browser bridge: {@link serve} runs in a
 * dedicated worker and answers {@link connect} on the page, over
 * `postMessage` (`protocol.ts`). With `{ opfs }` storage, every tab's
 * worker calls `serve`; one of them owns the database (the Web Lock
 * `durq:opfs:<name>`, which `open({ opfs }, { waitForLock: true })` waits
 * for) and the others forward their page's calls to it over the
 * `BroadcastChannel` of the same name. When the owning tab closes, the
 * browser releases its lock and the next waiting worker opens the database
 * and announces itself.
 *
 * Values cross by structured clone, so the page passes jobs by name (a job
 * object is sent as its name) and no functions.
 *
 * @module
 */

import type { Durq } from "../db.js";
import { DurqError } from "../errors.js";
import { EVENT_NAMES, type DurqEventName } from "../events.js";
import { open, type OpenOptions, type OpenTarget } from "../open.js";
import { isPlainObject } from "../validate.js";
import { invoke } from "../invoke.js";
import {
  jsonCopy,
  postOr,
  randomId,
  readChannelMessage,
  readPageMessage,
  toWireError,
  toWirePayload,
  workerMessage,
  type ChannelMessage,
  type MessageEndpoint,
  type PageCall,
  type PageMessage,
  type Target,
  type WorkerMessage,
} from "../protocol.js";

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

/**
 * Where a serving worker stands. `owner`, where present, is the channel id
 * of the worker of another context that owns the database, once known:
 * calls are forwarded to it.
 */
type ServeState =
  /** `open()` waits for the database (its lock). */
  | { kind: "opening"; owner: string | undefined }
  /** This worker holds the database and runs `setup`: calls wait for it, instead of going to the old owner. */
  | { kind: "taking"; owner: string | undefined }
  /** This worker owns the database: calls run here. */
  | { kind: "owner"; db: Durq }
  /** Opening (or `setup`) failed: calls go to `owner` if one is known, else reject with `error`. */
  | { kind: "failed"; error: unknown; owner: string | undefined }
  /** `close()` was called; `role` is what {@link Server.role} reports. */
  | { kind: "closed"; role: Server["role"] };

/** A call of this page, with what it calls. */
interface PendingCall {
  call: PageCall;
  target: Target;
  method: string;
  args: unknown[];
}

/** The error of calls made after {@link Server.close}. */
function stoppedError(): DurqError {
  return new DurqError("DURQ_CLOSED", "the worker stopped serving (Server.close())");
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
  if (!isPlainObject(options) || !isPlainObject(options.target))
    throw new DurqError("DURQ_INVALID_INPUT", "serve() needs { target: { opfs: name } | { memory: true }, options?, setup? }");
  if (options.setup !== undefined && typeof options.setup !== "function") throw new DurqError("DURQ_INVALID_INPUT", "serve(): setup must be a function");
  const s = new Serving(options);
  return {
    get role() {
      return s.role;
    },
    owned: s.owned,
    close: () => s.close(),
  };
}

/** One {@link serve}: the state of this worker, its calls and its event subscriptions. */
class Serving {
  readonly owned: Promise<Durq>;
  readonly #options: ServeOptions;
  readonly #endpoint: MessageEndpoint;
  /** This worker's id on the channel. */
  readonly #me = randomId();
  readonly #channel: BroadcastChannel | undefined;
  #state: ServeState = { kind: "opening", owner: undefined };
  #nextId = 1;
  /** Calls of this page sent to another owner, by channel id. */
  readonly #forwarded = new Map<number, { call: PageCall; owner: string }>();
  /** Calls of this page waiting for an owner to be known (or for this worker to take over). */
  #waiting: PendingCall[] = [];
  /** Event name → clients of this page subscribed to it. */
  readonly #pageEvents = new Map<string, Set<string>>();
  /** Events other tabs subscribed to (when owner). */
  readonly #channelEvents = new Set<string>();
  /** Listeners on the database, by event name (one per name). */
  readonly #listeners = new Map<string, () => void>();

  constructor(options: ServeOptions) {
    this.#options = options;
    this.#endpoint = options.endpoint ?? (globalThis as unknown as MessageEndpoint);
    const opfsName = typeof (options.target as { opfs?: unknown }).opfs === "string" ? (options.target as { opfs: string }).opfs : undefined;
    this.#channel = opfsName !== undefined && typeof BroadcastChannel === "function" ? new BroadcastChannel(`durq:opfs:${opfsName}`) : undefined;
    this.#endpoint.addEventListener("message", (event) => this.#onPage(readPageMessage(event.data)));
    this.#toPage(workerMessage.role("pending")); // tells connect() the worker is serving
    if (this.#channel !== undefined) {
      this.#channel.onmessage = (event: MessageEvent) => this.#onChannel(readChannelMessage(event.data));
      this.#post({ kind: "who" });
    }
    this.owned = this.#take(opfsName !== undefined);
    this.owned.catch((e: unknown) => this.#failed(e));
  }

  get role(): Server["role"] {
    const s = this.#state;
    return s.kind === "owner" ? "owner" : s.kind === "failed" ? "failed" : s.kind === "closed" ? s.role : "follower";
  }

  async close(): Promise<void> {
    const was = this.#state;
    if (was.kind === "closed") return;
    this.#state = { kind: "closed", role: this.role };
    this.#channel?.close();
    for (const w of this.#waiting) this.#reply(w.call, false, stoppedError());
    this.#waiting = [];
    for (const f of this.#forwarded.values()) this.#reply(f.call, false, stoppedError());
    this.#forwarded.clear();
    // A setup in progress finishes and closes the database, seeing
    // `closed`; an open still waiting for the lock does the same when
    // (if ever) it gets the lock, without this close() waiting for it.
    if (was.kind === "taking") await this.owned.catch(() => undefined);
    this.#unlistenAll();
    if (was.kind === "owner") await was.db.close();
  }

  // ---- ownership ----------------------------------------------------------

  /** Opens the database (waiting for its lock with `{ opfs }`), runs `setup`, then serves it. */
  async #take(waitForLock: boolean): Promise<Durq> {
    const options = this.#options;
    const opened = await open(options.target, { ...(options.options ?? {}), ...(waitForLock ? { waitForLock: true } : {}) });
    const s = this.#state;
    if (s.kind === "opening") this.#state = { kind: "taking", owner: s.owner };
    try {
      if (this.#closed()) throw stoppedError();
      // Events of workers that setup starts reach the page from the start.
      for (const name of new Set([...this.#pageEvents.keys(), ...this.#channelEvents])) this.#listen(name, opened);
      await options.setup?.(opened);
      if (this.#closed()) throw stoppedError();
    } catch (e) {
      this.#unlistenAll();
      await opened.close().catch(() => undefined);
      throw e;
    }
    this.#state = { kind: "owner", db: opened };
    this.#ownerChanged(undefined);
    this.#post({ kind: "owner", owner: this.#me });
    return opened;
  }

  /** Opening or `setup` failed: calls go to another owner if one is known, else reject with `error`. */
  #failed(error: unknown): void {
    const s = this.#state;
    if (s.kind === "closed") {
      this.#state = { kind: "closed", role: "failed" };
      return;
    }
    const owner = s.kind === "opening" || s.kind === "taking" || s.kind === "failed" ? s.owner : undefined;
    this.#state = { kind: "failed", error, owner };
    this.#resend();
    this.#toPage(workerMessage.role(owner !== undefined ? "other" : "pending"));
  }

  /**
   * A new owner: another context's worker, or this one (`undefined`, once
   * the state is `owner`). Calls in flight to the old one may never be
   * answered: they reject with `DURQ_OWNER_CHANGED`.
   */
  #ownerChanged(next: string | undefined): void {
    for (const [id, f] of this.#forwarded) {
      if (f.owner === next) continue;
      this.#forwarded.delete(id);
      this.#reply(
        f.call,
        false,
        new DurqError(
          "DURQ_OWNER_CHANGED",
          "the tab that owned the database closed before answering; the call may or may not have taken effect: retry it (an idempotencyKey makes an enqueue safe to retry)",
        ),
      );
    }
    const s = this.#state;
    if (s.kind === "opening" || s.kind === "taking" || s.kind === "failed") this.#state = { ...s, owner: next };
    const db = this.#db();
    this.#toPage(workerMessage.role(db !== undefined ? "self" : next !== undefined ? "other" : "pending"));
    if (next !== undefined && db === undefined) for (const name of this.#pageEvents.keys()) if (this.#pageWants(name)) this.#post({ kind: "subscribe", name });
    this.#resend();
  }

  // ---- calls ---------------------------------------------------------------

  /** Runs a call of this page here, forwards it to the owner, or keeps it until an owner is known. */
  #send(c: PendingCall): void {
    const s = this.#state;
    switch (s.kind) {
      case "closed":
        this.#reply(c.call, false, stoppedError());
        return;
      case "owner":
        invoke(s.db, c.target, c.method, c.args).then(
          (v) => this.#reply(c.call, true, v),
          (e) => this.#reply(c.call, false, e),
        );
        return;
      case "taking":
        this.#waiting.push(c);
        return;
      case "failed":
      case "opening":
        if (s.owner === undefined) {
          if (s.kind === "failed") {
            this.#reply(c.call, false, s.error);
            return;
          }
          this.#waiting.push(c);
          this.#post({ kind: "who" });
          return;
        }
        this.#forward(c, s.owner);
    }
  }

  #forward(c: PendingCall, owner: string): void {
    const id = this.#nextId++;
    this.#forwarded.set(id, { call: c.call, owner });
    const m: ChannelMessage = { kind: "call", owner, from: this.#me, id, target: c.target, method: c.method, args: c.args };
    postOr(
      (x) => this.#post(x as ChannelMessage),
      m,
      () => {
        this.#forwarded.delete(id);
        this.#reply(
          c.call,
          false,
          new DurqError("DURQ_INVALID_INPUT", `${c.method}: an argument cannot be sent to the tab that owns the database (structured clone failed)`),
        );
        return { kind: "who" };
      },
    );
  }

  /** Sends the waiting calls again (the owner changed, or opening failed). */
  #resend(): void {
    const queued = this.#waiting;
    this.#waiting = [];
    for (const w of queued) this.#send(w);
  }

  #reply(call: PageCall, ok: boolean, value: unknown): void {
    const fail = (error: unknown): WorkerMessage => workerMessage.error(call, toWireError(error));
    if (!ok) {
      this.#toPage(fail(value));
      return;
    }
    postOr(
      (m) => this.#toPage(m as WorkerMessage),
      workerMessage.ok(call, value),
      () => fail(new DurqError("DURQ_INTERNAL", "the result cannot be sent to the page (structured clone failed)")),
    );
  }

  // ---- events --------------------------------------------------------------

  #pageWants(name: string): boolean {
    return (this.#pageEvents.get(name)?.size ?? 0) > 0;
  }

  /** Forwards the events of `name` of database `d` to this page and/or the channel (once per name). */
  #listen(name: string, d: Durq | undefined = this.#db()): void {
    if (d === undefined || this.#listeners.has(name)) return;
    this.#listeners.set(
      name,
      d.on(name as DurqEventName, (payload: unknown) => {
        const wire = toWirePayload(payload);
        if (this.#pageWants(name))
          postOr(
            (m) => this.#toPage(m as WorkerMessage),
            workerMessage.event(name, wire),
            () => workerMessage.event(name, jsonCopy(wire)),
          );
        if (this.#channelEvents.has(name))
          postOr(
            (m) => this.#post(m as ChannelMessage),
            { kind: "event", name, payload: wire },
            () => ({ kind: "event", name, payload: jsonCopy(wire) }),
          );
      }),
    );
  }

  #unlistenAll(): void {
    for (const off of this.#listeners.values()) off();
    this.#listeners.clear();
  }

  // ---- messages --------------------------------------------------------------

  /** A message from a `connect()` client of this page. */
  #onPage(m: PageMessage | undefined): void {
    if (m === undefined) return;
    if (m.kind === "call") this.#send({ call: { client: m.client, id: m.id }, target: m.target, method: m.method, args: m.args });
    else if (m.kind === "on") {
      if (this.#closed() || !(EVENT_NAMES as readonly string[]).includes(m.name)) return;
      let clients = this.#pageEvents.get(m.name);
      if (clients === undefined) {
        clients = new Set();
        this.#pageEvents.set(m.name, clients);
      }
      clients.add(m.client);
      if (this.#db() !== undefined) this.#listen(m.name);
      else this.#post({ kind: "subscribe", name: m.name });
    } else if (m.kind === "off") this.#pageEvents.get(m.name)?.delete(m.client);
  }

  /** A message from another tab's worker. */
  #onChannel(m: ChannelMessage): void {
    const s = this.#state;
    if (s.kind === "closed") return;
    const me = this.#me;
    switch (m.kind) {
      case "who":
        if (s.kind === "owner") this.#post({ kind: "owner", owner: me });
        break;
      case "owner":
        if (m.owner !== me && s.kind !== "owner" && m.owner !== s.owner) this.#ownerChanged(m.owner);
        break;
      case "call": {
        if (m.owner !== me) break;
        const answer = (ok: boolean, value: unknown) =>
          ok
            ? postOr(
                (x) => this.#post(x as ChannelMessage),
                { kind: "result", to: m.from, id: m.id, ok: true, value },
                () => ({
                  kind: "result",
                  to: m.from,
                  id: m.id,
                  ok: false,
                  error: toWireError(new DurqError("DURQ_INTERNAL", "the result cannot be sent to the other tab (structured clone failed)")),
                }),
              )
            : this.#post({ kind: "result", to: m.from, id: m.id, ok: false, error: toWireError(value) });
        if (s.kind !== "owner") {
          answer(false, new DurqError("DURQ_OWNER_CHANGED", "the database is not open here any more: retry"));
          break;
        }
        invoke(s.db, m.target, m.method, m.args).then(
          (value) => answer(true, value),
          (e) => answer(false, e),
        );
        break;
      }
      case "result": {
        if (m.to !== me) break;
        const f = this.#forwarded.get(m.id);
        if (f === undefined) break;
        this.#forwarded.delete(m.id);
        if (m.ok) this.#reply(f.call, true, m.value);
        else this.#toPage(workerMessage.error(f.call, m.error!));
        break;
      }
      case "subscribe":
        this.#channelEvents.add(m.name);
        this.#listen(m.name);
        break;
      case "event":
        if (s.kind !== "owner" && this.#pageWants(m.name)) this.#toPage(workerMessage.event(m.name, m.payload));
        break;
    }
  }

  // ---- plumbing ----------------------------------------------------------------

  #closed(): boolean {
    return this.#state.kind === "closed";
  }

  /** The database, if this worker owns it. */
  #db(): Durq | undefined {
    const s = this.#state;
    return s.kind === "owner" ? s.db : undefined;
  }

  #toPage(m: WorkerMessage): void {
    this.#endpoint.postMessage(m);
  }

  #post(m: ChannelMessage): void {
    if (!this.#closed()) this.#channel?.postMessage(m);
  }
}
