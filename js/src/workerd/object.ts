/**
 * {@link DurqObject}: a Durable Object class that owns one durq database
 * in its own storage, answers {@link durqShards}' calls over RPC and
 * resumes due work from its `alarm()`.
 *
 * @module
 */

// workerd's runtime module (https://developers.cloudflare.com/durable-objects/api/base/);
// declared in workerd/cloudflare.d.ts for tsc.
import { DurableObject } from "cloudflare:workers";
import type { Durq } from "../db.js";
import { open, type OpenOptions } from "../open.js";
import { invoke } from "../invoke.js";
import { toWireError, type Target } from "../protocol.js";
import type { CallResult } from "./shards.js";
import type { DurableObjectStorageLike } from "./storage.js";

/**
 * A SQLite-backed Durable Object that holds one durq database: opened in
 * the constructor (inside `blockConcurrencyWhile`, so no call reaches it
 * before it is open and its leases recovered), then {@link DurqObject.setup}
 * starts its workers and alarm handlers. Its `alarm()` runs what is due
 * ({@link Durq.runDue}); durq keeps the object's alarm at its next timer.
 * Export a subclass from the worker and bind it as a Durable Object
 * namespace with SQLite storage (`new_sqlite_classes` in wrangler's
 * migrations; `enableSql = true` in a workerd config).
 *
 * @example
 * ```ts
 * export class Queues extends DurqObject {
 *   setup(db: Durq) { db.worker({ jobs: [sendEmail], queue: this.queue, concurrency: 8 }).start(); }
 * }
 * ```
 */
export class DurqObject<Env = unknown> extends DurableObject<Env> {
  /** The database; set before any call or alarm reaches the object. */
  protected db!: Durq;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    void ctx.blockConcurrencyWhile(async () => {
      this.db = await open({ durableObject: ctx.storage as unknown as DurableObjectStorageLike }, this.openOptions());
      await this.setup(this.db);
    });
  }

  /**
   * The queue this object owns: `<name>` when {@link durqShards} named the
   * object `queue:<name>` (from `ctx.id.name`), else `"default"`. Start the
   * object's worker on it: `db.worker({ jobs, queue: this.queue })`.
   */
  get queue(): string {
    const name = (this.ctx as { id?: { name?: unknown } }).id?.name;
    return typeof name === "string" && name.startsWith("queue:") ? name.slice("queue:".length) : "default";
  }

  /** Options of the object's `open()` (default none). Override to pass a clock, `maxInMemoryChanges`, ... */
  openOptions(): OpenOptions {
    return {};
  }

  /** Called once the database is open: start workers (`db.worker({ jobs, queue: this.queue }).start()`), register alarm handlers (`db.onAlarm`). Default: nothing. */
  setup(_db: Durq): void | Promise<void> {}

  /** The object's alarm: runs what is due (runs, retries, durq alarms) and resolves once it has settled. */
  async alarm(): Promise<void> {
    await this.db.runDue();
  }

  /**
   * The RPC entry of {@link durqShards} (and of any client of the call
   * protocol, `protocol.ts`): `method` of the database (`target` null) or of
   * its alarm namespace (`["alarms", name]`), with `args` as they crossed
   * (jobs as names). Never throws: a failure is `{ ok: false, error }` with
   * the error's `code`, the same wire error as the browser protocol's, so a
   * client rebuilds a `DurqError` (workerd's RPC would carry the thrown
   * error's properties too, but as a plain `Error`).
   */
  async call(target: Target, method: string, args: unknown[]): Promise<CallResult> {
    try {
      return { ok: true, value: await invoke(this.db, target, method, args) };
    } catch (e) {
      return { ok: false, error: toWireError(e) };
    }
  }
}
