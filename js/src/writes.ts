/**
 * The run and batch writes of {@link Durq}: enqueue (one run, many, a
 * batch), cancel, delete, retrigger, purge, reconcile, import and the
 * search index's restore. Each checks its arguments before anything is
 * queued, builds its operation (`ops.ts`) and emits its events after the
 * commit.
 * Internal: not exported from the package.
 *
 * @module
 */

import type { DbContext, EnqueuedMeta } from "./context.js";
import { invalidInput } from "./errors.js";
import type { Job } from "./job.js";
import * as ops from "./ops.js";
import { checkRun, ENQUEUE_OPTIONS } from "./run-args.js";
import type { BatchRunItem, EnqueueBatchSpec, EnqueueItem, EnqueueOptions, PurgeOptions, ReconcileOptions } from "./options.js";
import { importRunning, importRuns as importRunsWith, type ImportOptions, type ImportResult, type ImportRun } from "./transfer.js";
import type { BatchState, EnqueuedBatch, EnqueueResult, ReconcileResult, Run, RunStatus } from "./types.js";
import { checkDuration, checkId, checkInt, checkLabels, checkName, checkOptions, checkTime, isPlainObject } from "./validate.js";

const BATCH_RUN_KEYS = ["job", "input", ...ENQUEUE_OPTIONS] as const;
/** Most runs one transaction of {@link Durq.purgeRuns} deletes. */
export const PURGE_CHUNK = 1000;

/** What `run:enqueued` says of a new run. */
function meta(run: ops.RunArgs): EnqueuedMeta {
  return { job: run.job, queue: run.queue ?? "default" };
}

/** {@link Durq.enqueue}. @internal */
export function enqueue<I>(ctx: DbContext, job: Job<I, any> | string, input: I, options?: EnqueueOptions): Promise<EnqueueResult> {
  let run: ops.RunArgs | undefined;
  return ctx.write<EnqueueResult>(
    () => {
      run = checkRun(job, input, options, "");
      return ops.enqueue(run);
    },
    (r) => ctx.enqueued(r, meta(run as ops.RunArgs)),
  );
}

/** {@link Durq.enqueueMany}. @internal */
export function enqueueMany(ctx: DbContext, items: readonly EnqueueItem[]): Promise<EnqueueResult[]> {
  const runs: ops.RunArgs[] = [];
  try {
    ctx.checkOpen();
    if (!Array.isArray(items)) throw invalidInput("enqueueMany needs an array of { job, input, options? }");
    if (items.length === 0) return Promise.resolve([]);
  } catch (e) {
    return Promise.reject(e);
  }
  return ctx.write<EnqueueResult[]>(
    () => {
      for (let i = 0; i < items.length; i++) {
        const item = items[i];
        const where = `enqueueMany item ${i}: `;
        const it = checkOptions(`${where}item`, item, ["job", "input", "options"]);
        if (!isPlainObject(item)) throw invalidInput(`${where}must be { job, input, options? }`);
        runs.push(checkRun(it.job!, it.input, it.options, where));
      }
      return ops.enqueueMany(runs);
    },
    (results) => {
      for (let i = 0; i < results.length; i++) ctx.enqueued(results[i]!, meta(runs[i]!));
    },
  );
}

/** {@link Durq.enqueueBatch}. @internal */
export function enqueueBatch(ctx: DbContext, spec: EnqueueBatchSpec): Promise<EnqueuedBatch> {
  let queue = "default";
  const runs: ops.RunArgs[] = [];
  return ctx.write<EnqueuedBatch>(
    () => {
      const b = checkOptions("enqueueBatch", spec, ["queue", "runs", "labels", "idempotencyKey"]);
      if (spec === undefined) throw invalidInput("enqueueBatch needs { queue?, runs: [{ job, input, ... }], labels?, idempotencyKey? }");
      if (b.queue != null) queue = checkName("batch queue name", b.queue);
      if (!Array.isArray(b.runs) || b.runs.length === 0) throw invalidInput("enqueueBatch needs runs: a non-empty array of { job, input, ...options }");
      const labels = b.labels != null ? checkLabels("batch labels", b.labels) : undefined;
      const idempotencyKey = b.idempotencyKey != null ? checkName("batch idempotencyKey", b.idempotencyKey) : undefined;
      for (let i = 0; i < b.runs.length; i++) {
        const where = `enqueueBatch run ${i}: `;
        const item = checkOptions(`${where}item`, b.runs[i] as BatchRunItem, BATCH_RUN_KEYS);
        if (!isPlainObject(item)) throw invalidInput(`${where}must be { job, input, ...options }`);
        const { job, input, ...options } = item;
        if (options.queue != null && options.queue !== queue) {
          throw invalidInput(`${where}names queue ${JSON.stringify(options.queue)}; a batch's runs are all in its queue ${JSON.stringify(queue)}`);
        }
        delete options.queue;
        runs.push(checkRun(job as Job<unknown, unknown> | string, input, options, where));
      }
      return ops.enqueueBatch({ queue, labels, idempotencyKey, runs });
    },
    (r) => {
      if (!r.created) return;
      ctx.events.emit("batch:enqueued", { id: r.id, queue, runs: r.runs.length });
      for (let i = 0; i < r.runs.length; i++) ctx.enqueued(r.runs[i]!, { job: runs[i]!.job, queue });
    },
  );
}

/** {@link Durq.cancelBatch}. @internal */
export function cancelBatch(ctx: DbContext, id: string): Promise<{ state: BatchState; runs: { id: string; previous: RunStatus }[] }> {
  return ctx.write(
    () => ops.cancelBatch({ id: checkId(id, "batch id") }),
    (r: { state: BatchState; runs: { id: string; previous: RunStatus }[] }) => {
      for (const run of r.runs) {
        ctx.cancelExecutions(run.id);
        ctx.events.emit("run:cancelled", { id: run.id, previous: run.previous });
        ctx.notify(run.id);
      }
    },
  );
}

/** {@link Durq.reconcileBatches}. @internal */
export function reconcileBatches(ctx: DbContext, options?: ReconcileOptions): Promise<ReconcileResult> {
  return ctx.write(() => {
    const o = checkOptions("reconcileBatches options", options, ["graceMs"]);
    return ops.reconcileBatches({ graceMs: o.graceMs != null ? checkDuration("graceMs", o.graceMs, 0) : undefined });
  });
}

/** {@link Durq.cancel}. @internal */
export function cancel(ctx: DbContext, id: string): Promise<{ status: "cancelled"; previous: RunStatus }> {
  return ctx.write(
    () => ops.cancel({ id: checkId(id) }),
    (r: { status: "cancelled"; previous: RunStatus }) => {
      ctx.cancelExecutions(id);
      ctx.events.emit("run:cancelled", { id, previous: r.previous });
      ctx.notify(id);
    },
  );
}

/** {@link Durq.deleteRun}. @internal */
export function deleteRun(ctx: DbContext, id: string): Promise<{ deleted: true }> {
  return ctx.write(
    () => ops.deleteRun({ id: checkId(id) }),
    () => {
      ctx.events.emit("run:deleted", { id });
      ctx.notify(id);
    },
  );
}

/** {@link Durq.retrigger}. @internal */
export function retrigger(ctx: DbContext, id: string): Promise<{ id: string }> {
  return ctx.write(
    () => ops.retrigger({ id: checkId(id) }),
    (r: { id: string }) => {
      const announce = (run: Run) => {
        ctx.events.emit("run:enqueued", { id: r.id, job: run.job, queue: run.queue });
        ctx.wakeWorkers(run.queue);
      };
      try {
        // Read right after the commit: in a client process, from the owner.
        const run = ctx.readRun(r.id);
        if (run instanceof Promise) run.then(announce, () => ctx.wakeWorkers("default"));
        else announce(run);
      } catch {
        ctx.wakeWorkers("default"); // the read cannot fail right after the commit; events are best effort
      }
    },
  );
}

/** {@link Durq.purgeRuns}: runs, then batches, in chunks of {@link PURGE_CHUNK}. @internal */
export async function purgeRuns(ctx: DbContext, options: PurgeOptions): Promise<{ deleted: number; deletedBatches: number }> {
  ctx.checkOpen();
  const o = checkOptions("purgeRuns options", options, ["olderThan", "limit"]);
  if (o.olderThan === undefined) throw invalidInput("purgeRuns needs { olderThan }: a time in ms since the epoch or a Date");
  const olderThan = checkTime("olderThan", o.olderThan);
  const remaining = o.limit == null ? Number.POSITIVE_INFINITY : checkInt("limit", o.limit, 1, Number.MAX_SAFE_INTEGER);
  const purge = async (op: (a: ops.PurgeArgs) => string, max: number): Promise<number> => {
    let deleted = 0;
    for (;;) {
      const limit = Math.min(PURGE_CHUNK, max - deleted);
      const r = await ctx.write<{ deleted: number }>(() => op({ olderThan, limit }));
      deleted += r.deleted;
      if (r.deleted < limit || deleted >= max) return deleted;
    }
  };
  const deleted = await purge(ops.purgeRuns, remaining);
  return { deleted, deletedBatches: await purge(ops.purgeBatches, remaining) };
}

/** {@link Durq.restoreSearchIndex}. @internal */
export function restoreSearchIndex(ctx: DbContext): Promise<{ changed: boolean; triggers: number }> {
  if (ctx.deferral.held) return Promise.reject(importRunning());
  return ctx.write(ops.restoreSearchIndex);
}

/** {@link Durq.importRuns}. @internal */
export async function importRuns(ctx: DbContext, source: Iterable<ImportRun> | AsyncIterable<ImportRun>, options?: ImportOptions): Promise<ImportResult> {
  ctx.checkOpen();
  return importRunsWith(ctx, source, options);
}
