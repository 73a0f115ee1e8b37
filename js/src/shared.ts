/**
 * One database file, many processes: {@link openShared} makes this process
 * the file's owner (it writes the file, and serves the others through a
 * {@link Hub}) or a client of the process that owns it (its commits and
 * reads cross to the owner over a {@link Link}; its workers run their
 * handlers here). When the owner dies, a client takes its place: it opens
 * the file, expires only the dead owner's leases, and the other clients
 * reconnect to it. Platform-free: the platform gives the
 * {@link Rendezvous} (in Node, a local socket: `node/socket.ts`).
 * Internal: not exported from the package.
 *
 * @module
 */

import { DbContext, type DbInit } from "./context.js";
import { coreCall, parseResult, type CoreHandle } from "./core.js";
import { Durq } from "./db.js";
import { closedError, DurqError, isDurqError, type DurqErrorCode } from "./errors.js";
import type { DurqEventName } from "./events.js";
import { Hub } from "./hub.js";
import type { ClientConnection, Link, LinkTarget, OwnerSeat, Rendezvous } from "./link.js";
import * as ops from "./ops.js";
import type { OpenedStorage } from "./platform.js";
import { fromWireError, fromWirePayload, randomId, toWirePayload, type PeerReply } from "./protocol.js";
import { nextTurn } from "./turn.js";

/** Default {@link SharedInit.ownerTimeoutMs}: how long a client waits for a silent owner before `DURQ_OWNER_UNAVAILABLE`, ms. */
export const DEFAULT_OWNER_TIMEOUT_MS = 15_000;

/** What {@link openShared} needs. @internal */
export interface SharedInit {
  rendezvous: Rendezvous;
  /** Opens the file here (takes its lock file, opens the core); throws `DURQ_LOCKED` while another process still holds the lock. */
  openLocal(): Promise<OpenedStorage>;
  /** The context's options (`path` is the file's). */
  init: DbInit;
  /** Refuse clients, and refuse to be one (`open(…, { exclusive: true })`). */
  exclusive: boolean;
  /** How long a client waits for an owner that does not answer, ms. */
  ownerTimeoutMs: number;
}

/**
 * Opens a file that several processes may share: as its owner if no live
 * process holds it, else as a client of the one that does.
 *
 * @throws {DurqError} `DURQ_LOCKED` with `exclusive` if another process
 *   has the file open (or if the owner is exclusive); `DURQ_OWNER_UNAVAILABLE`
 *   if the owner does not answer within `ownerTimeoutMs`; what opening the
 *   file throws.
 */
export async function openShared(shared: SharedInit): Promise<Durq> {
  // Each open gets its own lease prefix (`<workerId>~<instance>:`): two
  // opens of one file in one process, or replicas given the same
  // `workerId`, must not expire each other's leases when one goes.
  const s: SharedInit = { ...shared, init: { ...shared.init, workerId: `${shared.init.workerId}~${randomId().slice(0, 6)}` } };
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    const seat = await s.rendezvous.claim();
    if (seat !== undefined) return (await own(s, seat, undefined)).db;
    if (s.exclusive)
      throw (
        s.rendezvous.holder?.() ??
        new DurqError("DURQ_LOCKED", `database ${s.init.path} is open in another process (open it without { exclusive: true } to share it)`)
      );
    const link = await connectLink(s);
    if (link !== undefined) {
      const ctx = new DbContext({ kind: "remote", link }, s.init);
      const db = new Durq(ctx);
      new Client(s, ctx, db).attach(link);
      return db;
    }
    if (Date.now() - started > s.ownerTimeoutMs)
      throw new DurqError("DURQ_OWNER_UNAVAILABLE", `no process could be reached or take over ${s.init.path} within ${s.ownerTimeoutMs} ms`);
    await pause(attempt);
  }
}

/** A short pause between tries, growing: 5 ms, 10 ms, … up to 200 ms. */
function pause(attempt: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.min(200, 5 * 2 ** attempt)));
}

/**
 * Takes the file over on `seat`: opens it (waiting out the lock of an
 * owner that is still closing), expires the leases of the owner before it
 * (all of them when it is the first; only `deadOwner`'s when a client takes
 * over), then serves clients. With `existing`, the client process's
 * context becomes the owner's.
 */
async function own(s: SharedInit, seat: OwnerSeat, existing: { ctx: DbContext; db: Durq; deadOwner: string } | undefined): Promise<{ db: Durq }> {
  let opened: OpenedStorage;
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      opened = await s.openLocal();
      break;
    } catch (e) {
      // The owner before may still be closing (its lock file goes last but one).
      if (isDurqError(e, "DURQ_LOCKED") && Date.now() - started < s.ownerTimeoutMs) {
        await pause(attempt);
        continue;
      }
      seat.close();
      throw e;
    }
  }
  if (existing?.ctx.closing) {
    // Closed while waiting for the file: give it back.
    try {
      opened.core.close();
    } catch {
      // closing after an open that is not used
    }
    opened.release();
    seat.close();
    existing.ctx.abandon(closedError());
    return { db: existing.db };
  }
  try {
    const now = Math.floor(s.init.clock.now());
    const batch = existing === undefined || existing.deadOwner === "" ? ops.expireLeasesBatch() : ops.expireLeasesOfBatch(`${existing.deadOwner}:`);
    const apply = () => applyOnce(opened.core, now, batch);
    if (opened.transact === undefined) apply();
    else opened.transact(apply);
  } catch (e) {
    try {
      opened.core.close();
    } catch {
      // closing after a failed open
    }
    opened.release();
    seat.close();
    throw e;
  }
  let ctx: DbContext;
  let db: Durq;
  if (existing === undefined) {
    ctx = new DbContext({ kind: "local", core: opened.core, storage: opened }, s.init);
    db = new Durq(ctx);
  } else {
    ({ ctx, db } = existing);
    ctx.events.relay = undefined;
    ctx.events.onInterest = undefined;
  }
  const hub = new Hub(db, ctx, s.exclusive);
  seat.onConnection((c) => hub.accept(c));
  ctx.whenClosed(
    () => {
      hub.close();
      seat.close();
    },
    () => hub.closing(),
  );
  if (existing !== undefined) ctx.become({ kind: "local", core: opened.core, storage: opened });
  return { db };
}

/** Applies one operation batch straight to the core; throws its error. */
function applyOnce(core: CoreHandle, now: number, batch: string): void {
  const out = parseResult<({ ok: unknown } | { err: { code: string; message: string } })[]>(coreCall(() => core.apply(now, batch)));
  const first = out[0];
  if (first !== undefined && "err" in first) throw new DurqError(first.err.code as DurqErrorCode, first.err.message);
}

/** Connects and says hello: the link, or `undefined` if nobody listens (the owner just went away). */
async function connectLink(s: SharedInit): Promise<PeerLink | undefined> {
  const conn = await s.rendezvous.connect(s.ownerTimeoutMs);
  if (conn === undefined) return undefined;
  const link = new PeerLink(conn, s.ownerTimeoutMs);
  try {
    await link.hello(s.init.workerId);
  } catch (e) {
    link.close();
    if (isDurqError(e, "DURQ_OWNER_CHANGED")) return undefined; // it closed on us: try again
    throw e;
  }
  return link;
}

/** A client process's side: relays its events to the owner, and takes over when the owner goes. */
class Client {
  readonly #s: SharedInit;
  readonly #ctx: DbContext;
  readonly #db: Durq;
  #outbox: [string, unknown][] = [];
  #flushQueued = false;

  constructor(s: SharedInit, ctx: DbContext, db: Durq) {
    this.#s = s;
    this.#ctx = ctx;
    this.#db = db;
  }

  /** Uses `link` to the (new) owner: its events, its interest, and what happens when it goes. */
  attach(link: PeerLink): void {
    const ctx = this.#ctx;
    link.onEvents = (events) => {
      for (const [name, wire] of events) {
        const payload = fromWirePayload(wire) as { id?: string };
        if (name === "run:cancelled" && typeof payload.id === "string") ctx.cancelExecutions(payload.id);
        if (typeof payload.id === "string") ctx.notify(payload.id);
        ctx.events.emitLocal(name as DurqEventName, payload as never);
      }
    };
    link.onWake = (queues) => {
      for (const q of queues) ctx.wakeWorkers(q);
    };
    link.onLost = () => {
      if (ctx.closing) {
        // Closing here: nobody takes over for this process; what waits for an owner fails now instead of hanging close().
        ctx.abandon(closedError());
        return;
      }
      ctx.suspend();
      void this.#takeOver(link.ownerWorkerId);
    };
    ctx.events.relay = {
      wants: (name) => link.interest.has(name),
      send: (name, payload) => {
        this.#outbox.push([name, toWirePayload(payload)]);
        if (this.#flushQueued) return;
        this.#flushQueued = true;
        nextTurn(() => {
          this.#flushQueued = false;
          const events = this.#outbox;
          this.#outbox = [];
          if (events.length > 0) link.publish(events);
        });
      },
    };
    ctx.events.onInterest = (name, on) => link.subscribe(name, on);
    for (const name of ctx.events.names()) if (name !== "error") link.subscribe(name, true);
  }

  /** The owner went away: this process takes the file over, or reconnects to the process that did. */
  async #takeOver(deadOwner: string): Promise<void> {
    const s = this.#s;
    const ctx = this.#ctx;
    for (let attempt = 0; !ctx.closing; attempt++) {
      try {
        const seat = await s.rendezvous.claim();
        if (ctx.closing) {
          seat?.close();
          return;
        }
        if (seat !== undefined) {
          await own(s, seat, { ctx, db: this.#db, deadOwner });
          return;
        }
        const link = await connectLink(s);
        if (link !== undefined) {
          if (ctx.closing) {
            link.close();
            return;
          }
          this.attach(link);
          ctx.become({ kind: "remote", link });
          return;
        }
      } catch (e) {
        // No owner can be reached: calls fail with a clear error meanwhile; keep trying.
        ctx.abandon(
          isDurqError(e) ? e : new DurqError("DURQ_OWNER_UNAVAILABLE", `the database's owner cannot be reached: ${(e as Error)?.message}`, { cause: e }),
        );
        ctx.suspend();
      }
      await pause(attempt);
    }
    ctx.abandon(closedError()); // closed while looking for an owner
  }
}

/** Marks `e` as the error of a call that the owner refused untouched: the context sends it to the next owner. */
function notApplied<E extends Error>(e: E): E {
  (e as unknown as { notApplied: true }).notApplied = true;
  return e;
}

/** A client's {@link Link} over its connection to the owner. */
class PeerLink implements Link {
  ownerWorkerId = "";
  /** The events some process listens to (the owner's `interest`): the ones to publish. */
  interest = new Set<string>();
  onEvents: ((events: [string, unknown][]) => void) | undefined;
  onWake: ((queues: string[]) => void) | undefined;
  onLost: ((error: DurqError) => void) | undefined;
  readonly #conn: ClientConnection;
  readonly #timeoutMs: number;
  readonly #pending = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>();
  #nextId = 1;
  #lost: DurqError | undefined;
  #heard = Date.now();
  #pinger: ReturnType<typeof setInterval> | undefined;
  #hello: { resolve(): void; reject(e: unknown): void } | undefined;
  /** The owner said it is closing: calls are not sent to it any more (they go to the next owner). */
  #draining = false;

  constructor(conn: ClientConnection, timeoutMs: number) {
    this.#conn = conn;
    this.#timeoutMs = timeoutMs;
    conn.ref(false);
    conn.onMessage((m) => this.#onMessage(m));
    conn.onClose(() =>
      this.#fail(
        // After `closing`, the owner answered every call it took before it
        // closed: what is still waiting never reached it.
        this.#draining
          ? notApplied(new DurqError("DURQ_OWNER_CHANGED", "the process that owned the database closed it before taking the call: retry"))
          : new DurqError(
              "DURQ_OWNER_CHANGED",
              "the process that owned the database went away before answering; the call may or may not have taken effect: retry it (an idempotencyKey makes an enqueue safe to retry)",
            ),
      ),
    );
  }

  /** Says hello; resolves on `welcome`. Rejects `DURQ_LOCKED` if the owner refuses clients, `DURQ_OWNER_UNAVAILABLE` if it does not answer in time. */
  hello(workerId: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => this.#fail(new DurqError("DURQ_OWNER_UNAVAILABLE", `the process that owns the database did not answer within ${this.#timeoutMs} ms`)),
        this.#timeoutMs,
      );
      this.#hello = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.#conn.ref(true);
      this.#conn.send({ kind: "hello", workerId });
    }).then(() => {
      this.#conn.ref(this.#pending.size > 0);
      this.#pinger = setInterval(() => this.#ping(), Math.max(10, Math.floor(this.#timeoutMs / 4)));
      (this.#pinger as { unref?: () => void }).unref?.();
    });
  }

  call(target: LinkTarget, method: string, args: unknown[]): Promise<unknown> {
    if (this.#lost !== undefined) return Promise.reject(this.#lost);
    if (this.#draining) return Promise.reject(notApplied(new DurqError("DURQ_OWNER_CHANGED", "the process that owns the database is closing it: retry")));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      if (this.#pending.size === 1) this.#conn.ref(true);
      try {
        this.#conn.send({ kind: "call", id, target, method, args });
      } catch (e) {
        this.#settled(id);
        reject(new DurqError("DURQ_INVALID_INPUT", `${method}: an argument cannot be sent to the owner process (${(e as Error).message})`));
      }
    });
  }

  subscribe(name: string, on: boolean): void {
    if (this.#lost === undefined) this.#conn.send({ kind: "subscribe", name, on });
  }

  publish(events: [string, unknown][]): void {
    if (this.#lost === undefined) this.#conn.send({ kind: "publish", events });
  }

  close(): void {
    this.onLost = undefined;
    this.#fail(new DurqError("DURQ_CLOSED", "the database was closed"));
    this.#conn.close();
  }

  #settled(id: number): void {
    this.#pending.delete(id);
    if (this.#pending.size === 0) this.#conn.ref(false);
  }

  #onMessage(m: PeerReply): void {
    this.#heard = Date.now();
    switch (m.kind) {
      case "welcome":
        this.ownerWorkerId = m.workerId;
        this.#hello?.resolve();
        this.#hello = undefined;
        return;
      case "refused":
        this.#hello?.reject(fromWireError(m.error));
        this.#hello = undefined;
        return;
      case "result": {
        const p = this.#pending.get(m.id);
        if (p === undefined) return;
        this.#settled(m.id);
        if (m.ok) p.resolve(m.value);
        else p.reject(m.notApplied ? notApplied(fromWireError(m.error)) : fromWireError(m.error));
        return;
      }
      case "closing":
        this.#draining = true;
        return;
      case "interest":
        this.interest = new Set(m.names);
        return;
      case "wake":
        this.onWake?.(m.queues);
        return;
      case "events":
        this.onEvents?.(m.events);
        return;
      case "pong":
        return;
    }
  }

  /** Pings the owner; one silent for `timeoutMs` is given up (its calls reject with `DURQ_OWNER_UNAVAILABLE`). */
  #ping(): void {
    if (this.#lost !== undefined) return;
    if (Date.now() - this.#heard > this.#timeoutMs) {
      this.#fail(
        new DurqError(
          "DURQ_OWNER_UNAVAILABLE",
          `the process that owns the database has not answered for ${this.#timeoutMs} ms (stopped, or its event loop is blocked); the call may or may not have taken effect`,
        ),
      );
      this.#conn.close();
      return;
    }
    this.#conn.send({ kind: "ping" });
  }

  #fail(error: DurqError): void {
    if (this.#lost !== undefined) return;
    this.#lost = error;
    if (this.#pinger !== undefined) clearInterval(this.#pinger);
    this.#hello?.reject(error);
    this.#hello = undefined;
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    this.#conn.ref(false);
    for (const p of pending) p.reject(error);
    this.onLost?.(error);
  }
}
