/**
 * {@link Hub}: the owner's side of a shared database. The process that
 * owns the file accepts its client processes' connections (in Node, on the
 * owner's local socket: `node/shared.ts`) and answers them:
 * - `call` on target `["core"]`: `apply` (a client's group commit: each of
 *   its operations joins this process's write queue, so the commits of all
 *   processes are grouped and serialized here), `openAlarms`, or one of
 *   the core's reads ({@link CORE_READS});
 * - `call` on the database or an alarm namespace: {@link invoke}, as the
 *   browser's `serve()` does;
 * - events: those emitted here, and those clients publish, go to every
 *   process that subscribed to them (never back to the one that emitted
 *   them); enqueues wake the workers of every process (`wake`).
 *
 * When a client's connection drops, the leases its workers still hold are
 * expired at once (`expireLeasesOf`), so the runs go back to work without
 * waiting out `leaseMs`.
 * Internal: not exported from the package.
 *
 * @module
 */

import type { DbContext } from "./context.js";
import { coreCall } from "./core.js";
import type { Durq } from "./db.js";
import { DurqError, isDurqError } from "./errors.js";
import { EVENT_NAMES, type DurqEventName } from "./events.js";
import type { Outcome } from "./generated/boundary.js";
import { CORE_READS, type CoreRead } from "./link.js";
import * as ops from "./ops.js";
import { invoke } from "./invoke.js";
import { fromWirePayload, toWireError, toWirePayload, type PeerConnection, type PeerReply, type PeerRequest, type Target, type WireError } from "./protocol.js";
import { nextTurn } from "./turn.js";

/**
 * Events every client publishes whether or not a process listens: they
 * wake workers (`run:enqueued`), abort handlers (`run:cancelled`) and
 * settle waiters (the terminal ones) in the other processes.
 */
export const ALWAYS_SHARED: readonly DurqEventName[] = ["run:enqueued", "run:cancelled", "run:completed", "run:failed", "run:deleted"];

/** The error of a call that reached an owner closing its database. */
function closingError(): DurqError {
  return new DurqError("DURQ_OWNER_CHANGED", "the process that owned the database is closing it: retry the call");
}

/** One client process, as the owner sees it. */
interface Peer {
  readonly conn: PeerConnection<PeerRequest, PeerReply>;
  /** Its `workerId` (from `hello`): its workers' lease owners start with `<workerId>:`. */
  workerId: string | undefined;
  /** The events it subscribed to. */
  readonly subscribed: Set<string>;
  /** Events for it, sent at the next turn in one message. */
  outbox: [string, unknown][];
  /** Queues to wake in it, sent at the next turn. */
  wakes: Set<string>;
}

/** The owner's side of a shared database. @internal */
export class Hub {
  readonly #db: Durq;
  readonly #ctx: DbContext;
  readonly #exclusive: boolean;
  readonly #peers = new Set<Peer>();
  /** Every open connection, greeted or not (closed with the hub). */
  readonly #conns = new Set<PeerConnection<PeerRequest, PeerReply>>();
  /** The peer whose published events are being emitted here (not sent back to it). */
  #origin: Peer | undefined;
  #flushQueued = false;
  #interest = "";
  #closed = false;

  /**
   * @param exclusive - refuse every client (`open(target, { exclusive: true })`)
   */
  constructor(db: Durq, ctx: DbContext, exclusive: boolean) {
    this.#db = db;
    this.#ctx = ctx;
    this.#exclusive = exclusive;
    ctx.events.relay = {
      wants: (name) => this.#peers.size > 0 && (ALWAYS_SHARED.includes(name) || [...this.#peers].some((p) => p.subscribed.has(name))),
      send: (name, payload) => this.#fanOut(name, payload),
    };
    ctx.events.onInterest = () => this.#announceInterest();
  }

  /** Serves a client process's connection until it closes. */
  accept(conn: PeerConnection<PeerRequest, PeerReply>): void {
    if (this.#closed) {
      conn.close();
      return;
    }
    const peer: Peer = { conn, workerId: undefined, subscribed: new Set(), outbox: [], wakes: new Set() };
    this.#conns.add(conn);
    conn.onMessage((m) => this.#onMessage(peer, m));
    conn.onClose(() => {
      this.#conns.delete(conn);
      this.#gone(peer);
    });
  }

  /** The database is closing: clients hold their new calls for the next owner (calls already sent are answered). */
  closing(): void {
    for (const p of this.#peers) p.conn.send({ kind: "closing" });
  }

  /** Stops serving: every client's connection closes (they take over or reconnect). */
  close(): void {
    this.#closed = true;
    this.#ctx.events.relay = undefined;
    this.#ctx.events.onInterest = undefined;
    for (const c of this.#conns) c.close();
    this.#conns.clear();
    this.#peers.clear();
  }

  /** How many client processes are connected. */
  get clients(): number {
    return this.#peers.size;
  }

  #onMessage(peer: Peer, m: PeerRequest): void {
    switch (m.kind) {
      case "hello":
        if (this.#exclusive) {
          peer.conn.send({
            kind: "refused",
            error: toWireError(new DurqError("DURQ_LOCKED", `${this.#db.path} is open in another process with { exclusive: true }`)),
          });
          peer.conn.close();
          return;
        }
        peer.workerId = m.workerId;
        this.#peers.add(peer);
        peer.conn.send({ kind: "welcome", workerId: this.#ctx.workerId });
        peer.conn.send({ kind: "interest", names: this.#interestNames() });
        return;
      case "ping":
        peer.conn.send({ kind: "pong" });
        return;
      case "subscribe":
        if (!(EVENT_NAMES as readonly string[]).includes(m.name)) return;
        if (m.on) peer.subscribed.add(m.name);
        else peer.subscribed.delete(m.name);
        this.#announceInterest();
        return;
      case "publish":
        this.#published(peer, m.events);
        return;
      case "call":
        if (this.#ctx.closing) {
          // Refused untouched: the client sends it to the next owner.
          peer.conn.send({ kind: "result", id: m.id, ok: false, error: toWireError(closingError()), notApplied: true });
          return;
        }
        this.#call(m.target, m.method, m.args).then(
          (value) => peer.conn.send({ kind: "result", id: m.id, ok: true, value }),
          (e: unknown) => peer.conn.send({ kind: "result", id: m.id, ok: false, error: this.#wireError(e) }),
        );
    }
  }

  /** A call's error as it crosses; `DURQ_CLOSED` of this closing owner tells the client to retry at the next one. */
  #wireError(e: unknown): WireError {
    if (isDurqError(e, "DURQ_CLOSED") && this.#ctx.closing) return toWireError(closingError());
    return toWireError(e);
  }

  async #call(target: Target | ["core"], method: string, args: unknown[]): Promise<unknown> {
    if (target === null || target[0] === "alarms") return invoke(this.#db, target, method, args);
    const ctx = this.#ctx;
    if (method === "apply") return this.#apply(args[0] as string[]);
    if (method === "openAlarms") {
      ctx.alarms(args[0] as string);
      return null;
    }
    if (!(CORE_READS as readonly string[]).includes(method)) throw new DurqError("DURQ_INVALID_INPUT", `${method} is not a read of the core`);
    ctx.checkOpen();
    const core = ctx.core;
    return coreCall(() => (core[method as CoreRead] as (...a: unknown[]) => unknown).apply(core, args));
  }

  /**
   * A client's group commit: each operation joins this process's write
   * queue (one transaction with whatever else is queued); answers the
   * outcomes JSON, in order, as the core's `apply` would. The batches an
   * operation turned terminal emit their `batch:*` events here.
   */
  async #apply(parts: string[]): Promise<string> {
    if (!Array.isArray(parts) || parts.some((p) => typeof p !== "string"))
      throw new DurqError("DURQ_INVALID_INPUT", "apply needs an array of operation JSON texts");
    const ctx = this.#ctx;
    const outcomes = await Promise.all(
      parts.map((json) =>
        ctx.submit<unknown>(json).then(
          (ok): Outcome => {
            afterClientWrite(ctx, json);
            return { ok: (ok ?? null) as never };
          },
          (e: unknown): Outcome => {
            const w = toWireError(e);
            if (isDurqError(e, "DURQ_CLOSED")) throw closingError();
            const extendedCode = (e as { extendedCode?: unknown }).extendedCode;
            return {
              err: { code: w.code ?? "DURQ_INTERNAL", message: w.message, extendedCode: typeof extendedCode === "number" ? extendedCode : null },
            } as Outcome;
          },
        ),
      ),
    );
    return JSON.stringify(outcomes);
  }

  /** Events a client's commits emitted: emitted here (listeners of this process, and the other clients), with what they change here. */
  #published(peer: Peer, events: [string, unknown][]): void {
    const ctx = this.#ctx;
    this.#origin = peer;
    try {
      for (const [name, wire] of events) {
        if (!(EVENT_NAMES as readonly string[]).includes(name) || name === "error") continue;
        const payload = fromWirePayload(wire) as { id?: string; queue?: string };
        ctx.events.emit(name as DurqEventName, payload as never);
        if (name === "run:enqueued" && typeof payload.queue === "string") ctx.wakeWorkers(payload.queue);
        if (name === "run:cancelled" && typeof payload.id === "string") ctx.cancelExecutions(payload.id);
        if (typeof payload.id === "string") ctx.notify(payload.id);
      }
    } finally {
      this.#origin = undefined;
    }
  }

  /** An event emitted here (by this process or published by a client): to every other process that wants it. */
  #fanOut(name: DurqEventName, payload: unknown): void {
    let wire: unknown;
    const queue = name === "run:enqueued" ? (payload as { queue?: string }).queue : undefined;
    const always = ALWAYS_SHARED.includes(name);
    for (const p of this.#peers) {
      if (p === this.#origin) continue;
      if (queue !== undefined) p.wakes.add(queue);
      if (always || p.subscribed.has(name)) {
        wire ??= toWirePayload(payload);
        p.outbox.push([name, wire]);
      }
    }
    this.#queueFlush();
  }

  #queueFlush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    nextTurn(() => {
      this.#flushQueued = false;
      for (const p of this.#peers) {
        if (p.wakes.size > 0) {
          p.conn.send({ kind: "wake", queues: [...p.wakes] });
          p.wakes = new Set();
        }
        if (p.outbox.length > 0) {
          p.conn.send({ kind: "events", events: p.outbox });
          p.outbox = [];
        }
      }
    });
  }

  /** The events some process listens to: what clients publish. */
  #interestNames(): string[] {
    const names = new Set<string>(ALWAYS_SHARED);
    for (const n of this.#ctx.events.names()) names.add(n);
    for (const p of this.#peers) for (const n of p.subscribed) names.add(n);
    names.delete("error");
    return [...names].sort();
  }

  #announceInterest(): void {
    const names = this.#interestNames();
    const key = names.join(",");
    if (key === this.#interest) return;
    this.#interest = key;
    for (const p of this.#peers) p.conn.send({ kind: "interest", names });
  }

  /** A client's connection is gone: the leases its workers hold go back to the queue now. */
  #gone(peer: Peer): void {
    this.#peers.delete(peer);
    this.#announceInterest();
    const ctx = this.#ctx;
    if (peer.workerId === undefined || ctx.closing) return;
    ctx.submit(ops.expireLeasesOf({ ownerPrefix: `${peer.workerId}:` })).then(
      () => ctx.wakeAllWorkers(),
      () => undefined,
    );
  }
}

/**
 * What the owner does after a client's write that its own write of the same
 * kind does in its commit callback: a schedule created, replaced or deleted
 * re-arms the owner's schedule dispatcher; a resumed queue wakes the
 * workers. (The façade writes `op` first: `{"op":"<name>",...}`.)
 */
function afterClientWrite(ctx: DbContext, json: string): void {
  if (json.startsWith('{"op":"schedule"') || json.startsWith('{"op":"deleteSchedule"')) ctx.schedules.wake();
  else if (json.startsWith('{"op":"resumeQueue"')) ctx.wakeAllWorkers();
}
