/**
 * Scale-out on Durable Objects: {@link durqShards} routes each call to the
 * {@link DurqObject} that owns its queue (one durq database per queue) or
 * alarm namespace, over Durable Object RPC
 * (https://developers.cloudflare.com/durable-objects/best-practices/create-durable-object-stubs-and-send-requests/).
 *
 * The sharding rule: **a queue is a shard.** A run's queue is fixed at
 * enqueue, and everything durq makes atomic or ordered stays inside one
 * queue: a claim, a run's steps and outcome, an idempotency key, a
 * concurrency key, a batch (all its runs share its queue). What crosses
 * shards is only what reads many: `listRuns` without a `queue` (fanned out
 * and merged, newest first, with a cursor that carries each shard's
 * position), `stats()` (summed), and lookups by id without a queue (asked
 * of every shard the client knows). An alarm namespace is a shard of its
 * own (`alarms:<namespace>`), as in Cloudflare's one-object-per-actor-group
 * design. Compared with one durq per tenant (a `DurqObject` named by the
 * tenant, which needs no routing), queue shards spread one tenant's
 * background work over many objects; combine both by naming queues
 * `<tenant>:<kind>`.
 *
 * Platform-free: the namespace binding is passed in.
 *
 * @module
 */

import { DurqError } from "../errors.js";
import type { Job } from "../job.js";
import type { EnqueueBatchSpec, EnqueueItem, EnqueueOptions, RunFilter, WaitOptions } from "../options.js";
import { fromWireError, toWireArgs, type RemoteAlarmMethod, type RemoteMethod, type Target, type WireError } from "../protocol.js";
import type { EnqueueResult, Run, RunPage, RunStats } from "../types.js";
import { isPlainObject } from "../validate.js";

/** What a {@link DurqObject}'s RPC method `call` answers. */
export type CallResult = { ok: true; value: unknown } | { ok: false; error: WireError };

/** A stub of a {@link DurqObject} (what `namespace.get(id)` returns). */
export interface DurqObjectStub {
  call(target: Target, method: string, args: unknown[]): Promise<CallResult>;
}

/** A Durable Object namespace binding of a {@link DurqObject} class (`env.QUEUES`); only what the client calls. */
export interface DurqObjectNamespaceLike {
  idFromName(name: string): unknown;
  get(id: any): unknown;
}

/** Options of {@link durqShards}. */
export interface ShardOptions {
  /**
   * Queues the client fans out to when a call names none (`listRuns`,
   * `stats`, `getRun(id)`), besides those it has routed to since it was
   * made. Default: `["default"]`.
   */
  queues?: readonly string[];
}

/** A lookup by run id: the run's queue, if known (else every known shard is asked). */
export interface ShardLookup {
  queue?: string;
}

/** The object name of a queue's shard. */
export function queueShardName(queue: string): string {
  return `queue:${queue}`;
}

/** The object name of an alarm namespace's shard. */
export function alarmShardName(namespace: string): string {
  return `alarms:${namespace}`;
}

/**
 * The composite cursor of a fanned-out `listRuns`: per queue, the id of the
 * last run of that shard already returned (`""` before its first), or
 * `null` once the shard is exhausted; base64url of JSON.
 */
type ShardCursor = Record<string, string | null>;

function encodeCursor(c: ShardCursor): string {
  return btoa(JSON.stringify(c)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function decodeCursor(s: string): ShardCursor {
  try {
    const c = JSON.parse(atob(s.replace(/-/g, "+").replace(/_/g, "/"))) as unknown;
    if (isPlainObject(c) && Object.values(c).every((v) => v === null || typeof v === "string")) return c as ShardCursor;
  } catch {
    // fall through
  }
  throw new DurqError("DURQ_INVALID_INPUT", "cursor is not one returned by this client's listRuns");
}

/**
 * The routing client. Every method mirrors {@link Durq}'s of the same name;
 * errors keep their `code` across RPC.
 */
export class DurqShards {
  readonly #ns: DurqObjectNamespaceLike;
  readonly #queues = new Set<string>();

  /** @internal Use {@link durqShards}. */
  constructor(ns: DurqObjectNamespaceLike, options?: ShardOptions) {
    if (typeof ns !== "object" || ns === null || typeof ns.idFromName !== "function" || typeof ns.get !== "function")
      throw new DurqError("DURQ_INVALID_INPUT", "durqShards() needs a Durable Object namespace binding of a DurqObject class (env.QUEUES)");
    this.#ns = ns;
    for (const q of options?.queues ?? ["default"]) this.#queues.add(checkQueue(q));
  }

  /** The queues this client fans out to, in the order it learned them. */
  get queues(): string[] {
    return [...this.#queues];
  }

  /** Calls `method` on the shard named `name`; rethrows its error with its code. */
  async #call(name: string, target: Target, method: RemoteMethod | RemoteAlarmMethod, args: unknown[]): Promise<any> {
    const stub = this.#ns.get(this.#ns.idFromName(name)) as DurqObjectStub;
    const r = await stub.call(target, method, toWireArgs(args, method) as unknown[]);
    if (!r.ok) throw fromWireError(r.error);
    return r.value;
  }

  /** Calls `method` of the database that owns `queue`. */
  onQueue(queue: string, method: RemoteMethod, ...args: unknown[]): Promise<any> {
    this.#queues.add(checkQueue(queue));
    return this.#call(queueShardName(queue), null, method, args);
  }

  /** Asks every known shard for run `id` with `method`; the first that has it answers (`DURQ_NOT_FOUND` if none does). */
  async #byId(id: string, lookup: ShardLookup | undefined, method: RemoteMethod, args: unknown[]): Promise<any> {
    if (lookup?.queue !== undefined) return this.onQueue(lookup.queue, method, id, ...args);
    const answers = await Promise.allSettled(this.queues.map((q) => this.#call(queueShardName(q), null, method, [id, ...args])));
    for (const a of answers) if (a.status === "fulfilled") return a.value;
    for (const a of answers) if (a.status === "rejected" && (a.reason as DurqError)?.code !== "DURQ_NOT_FOUND") throw a.reason;
    throw new DurqError("DURQ_NOT_FOUND", `no run ${id} in the queues ${JSON.stringify(this.queues)}: pass { queue }`);
  }

  /** {@link Durq.enqueue} on the shard of `options.queue` (default `"default"`). */
  enqueue<I>(job: Job<I, any> | string, input: I, options?: EnqueueOptions): Promise<EnqueueResult> {
    return this.onQueue(options?.queue ?? "default", "enqueue", job, input, options);
  }

  /**
   * {@link Durq.enqueueMany}: the items grouped by queue, one call per
   * shard; results in the items' order. Atomic per shard only: if one
   * shard's call fails, the others' runs may be stored (retry with
   * idempotency keys).
   */
  async enqueueMany(items: readonly EnqueueItem[]): Promise<EnqueueResult[]> {
    if (!Array.isArray(items)) throw new DurqError("DURQ_INVALID_INPUT", "enqueueMany needs an array of { job, input, options? }");
    const groups = new Map<string, number[]>();
    items.forEach((item, i) => {
      const q = (item as EnqueueItem)?.options?.queue ?? "default";
      const g = groups.get(q) ?? [];
      g.push(i);
      groups.set(q, g);
    });
    const out: EnqueueResult[] = new Array(items.length);
    await Promise.all(
      [...groups].map(async ([q, indexes]) => {
        const results = (await this.onQueue(
          q,
          "enqueueMany",
          indexes.map((i) => items[i]),
        )) as EnqueueResult[];
        indexes.forEach((i, k) => {
          out[i] = results[k]!;
        });
      }),
    );
    return out;
  }

  /** {@link Durq.enqueueBatch} on the shard of `spec.queue` (default `"default"`): a batch lives in one queue. */
  enqueueBatch(spec: EnqueueBatchSpec): Promise<any> {
    return this.onQueue(spec?.queue ?? "default", "enqueueBatch", spec);
  }

  /** {@link Durq.getRun}; without `queue`, every known shard is asked. */
  getRun<I = unknown, O = unknown>(id: string, lookup?: ShardLookup): Promise<Run<I, O>> {
    return this.#byId(id, lookup, "getRun", []);
  }

  /** {@link Durq.cancel}. */
  cancel(id: string, lookup?: ShardLookup): Promise<any> {
    return this.#byId(id, lookup, "cancel", []);
  }

  /** {@link Durq.retrigger}. */
  retrigger(id: string, lookup?: ShardLookup): Promise<{ id: string }> {
    return this.#byId(id, lookup, "retrigger", []);
  }

  /** {@link Durq.deleteRun}. */
  deleteRun(id: string, lookup?: ShardLookup): Promise<{ deleted: true }> {
    return this.#byId(id, lookup, "deleteRun", []);
  }

  /** {@link Durq.getRunEvents}. */
  getRunEvents(id: string, lookup?: ShardLookup): Promise<any[]> {
    return this.#byId(id, lookup, "getRunEvents", []);
  }

  /** {@link Durq.getSteps}. */
  getSteps(id: string, lookup?: ShardLookup): Promise<any[]> {
    return this.#byId(id, lookup, "getSteps", []);
  }

  /** {@link Durq.waitForRun} on the run's shard (`queue` required: the wait is held by that object). */
  waitForRun<I = unknown, O = unknown>(id: string, options: WaitOptions & { queue: string }): Promise<Run<I, O>> {
    const { queue, ...wait } = options ?? ({} as WaitOptions & { queue: string });
    if (queue === undefined) throw new DurqError("DURQ_INVALID_INPUT", "waitForRun through durqShards needs { queue }");
    return this.onQueue(queue, "waitForRun", id, wait);
  }

  /**
   * {@link Durq.listRuns}. With `filter.queue`, one shard answers. Without,
   * every known shard is asked for a page and the pages are merged newest
   * first (run ids sort by creation time); `nextCursor` carries, for each
   * shard, the last run of it returned so far, so each page costs one call
   * per shard that is not exhausted. `order: "relevance"` needs a `queue`
   * (bm25 ranks do not compare across databases).
   *
   * @throws {DurqError} `DURQ_INVALID_INPUT` for a cursor not made by this
   * method, or relevance order without a queue; what a shard throws.
   */
  async listRuns<I = unknown, O = unknown>(filter?: RunFilter): Promise<RunPage<I, O>> {
    const f = { ...(filter ?? {}) };
    if (f.queue !== undefined) return this.onQueue(f.queue, "listRuns", f);
    if (f.order === "relevance") throw new DurqError("DURQ_INVALID_INPUT", 'order: "relevance" through durqShards needs a queue');
    const limit = f.limit ?? 50;
    const cursor: ShardCursor = f.cursor === undefined ? {} : decodeCursor(f.cursor);
    const queues = f.cursor === undefined ? this.queues : Object.keys(cursor);
    const pages = await Promise.all(
      queues.map(async (q) => {
        const at = cursor[q];
        if (at === null) return { q, runs: [] as Run<I, O>[], more: false };
        const page = (await this.onQueue(q, "listRuns", { ...f, queue: q, limit, cursor: at === "" || at === undefined ? undefined : at })) as RunPage<I, O>;
        return { q, runs: page.runs, more: page.nextCursor !== null };
      }),
    );
    const merged = pages.flatMap((p) => p.runs.map((run) => ({ q: p.q, run }))).sort((a, b) => (a.run.id < b.run.id ? 1 : a.run.id > b.run.id ? -1 : 0));
    const taken = merged.slice(0, limit);
    const next: ShardCursor = {};
    for (const p of pages) {
      const mine = taken.filter((t) => t.q === p.q);
      const all = mine.length === p.runs.length;
      if (all && !p.more) next[p.q] = null;
      else next[p.q] = mine.length > 0 ? mine[mine.length - 1]!.run.id : (cursor[p.q] ?? "");
    }
    const more = Object.values(next).some((v) => v !== null);
    return { runs: taken.map((t) => t.run), nextCursor: more ? encodeCursor(next) : null };
  }

  /** {@link Durq.stats}: summed over the known shards. */
  async stats(): Promise<RunStats> {
    const all = (await Promise.all(this.queues.map((q) => this.onQueue(q, "stats")))) as RunStats[];
    const sum: Record<string, number> = {};
    for (const s of all) for (const [k, v] of Object.entries(s)) sum[k] = (sum[k] ?? 0) + v;
    return sum as RunStats;
  }

  /**
   * The alarm namespace `namespace`, held by its own object
   * (`alarms:<namespace>`): `set`, `get`, `delete` and `list` as on
   * {@link AlarmNamespace}. Its handler is registered in that object's
   * `setup` (`db.onAlarm(namespace, ...)`).
   */
  alarms(namespace: string): {
    set(actorId: string, time: number | Date): Promise<void>;
    get(actorId: string): Promise<number | null>;
    delete(actorId: string): Promise<boolean>;
    list(options?: unknown): Promise<any>;
  } {
    const ns = checkQueue(namespace);
    const call = (m: RemoteAlarmMethod, args: unknown[]) => this.#call(alarmShardName(ns), ["alarms", ns], m, args);
    return {
      set: (actorId, time) => call("set", [actorId, time]),
      get: (actorId) => call("get", [actorId]),
      delete: (actorId) => call("delete", [actorId]),
      list: (options) => call("list", options === undefined ? [] : [options]),
    };
  }
}

function checkQueue(q: unknown): string {
  if (typeof q !== "string" || q.length === 0)
    throw new DurqError("DURQ_INVALID_INPUT", `a queue or namespace name must be a non-empty string, got ${JSON.stringify(q)}`);
  return q;
}

/**
 * Makes the routing client over a namespace binding of a
 * {@link DurqObject} class: one object per queue (`queue:<name>`), one per
 * alarm namespace (`alarms:<name>`). See the module's sharding rule.
 *
 * @example
 * ```ts
 * const queues = durqShards(env.QUEUES, { queues: ["emails", "thumbnails"] });
 * await queues.enqueue("send-email", { to }, { queue: "emails" });
 * const page = await queues.listRuns({ status: "failed", limit: 50 }); // across both
 * ```
 * @throws {DurqError} `DURQ_INVALID_INPUT` if `namespace` is not a binding
 * or a queue name is empty.
 */
export function durqShards(namespace: DurqObjectNamespaceLike, options?: ShardOptions): DurqShards {
  return new DurqShards(namespace, options);
}
