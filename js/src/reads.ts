/**
 * The reads of {@link Durq}: runs, their history, steps and logs, batches,
 * counts, the search index's state, the export. They do not wait for the
 * write queue: they see what has committed. Filters are checked here, then
 * passed to the core as JSON.
 * Internal: not exported from the package.
 *
 * @module
 */

import type { DbContext } from "./context.js";
import { parseResult } from "./core.js";
import { invalidInput } from "./errors.js";
import { resolveJob } from "./job.js";
import type { BatchFilter, RunFilter } from "./options.js";
import { exportRuns as exportRunsWith, type ExportOptions } from "./transfer.js";
import {
  BATCH_STATES,
  RUN_STATUSES,
  type Batch,
  type BatchPage,
  type LogRecord,
  type Run,
  type RunEvent,
  type RunPage,
  type RunStats,
  type SearchStatus,
  type StepRecord,
} from "./types.js";
import { checkId, checkInt, checkLabels, checkName, checkOptions, checkTime } from "./validate.js";

const FILTER_KEYS = [
  "job",
  "status",
  "queue",
  "labels",
  "createdAfter",
  "createdBefore",
  "limit",
  "cursor",
  "batchId",
  "search",
  "searchSyntax",
  "order",
] as const;

/** {@link Durq.getRun}. @internal */
export async function getRun<I = unknown, O = unknown>(ctx: DbContext, id: string): Promise<Run<I, O>> {
  ctx.checkOpen();
  checkId(id);
  return parseResult<Run<I, O>>(await ctx.coreRead("getRun", id));
}

/** {@link Durq.listRuns}. @internal */
export async function listRuns<I = unknown, O = unknown>(ctx: DbContext, filter?: RunFilter): Promise<RunPage<I, O>> {
  ctx.checkOpen();
  const f = checkOptions("listRuns filter", filter, FILTER_KEYS);
  const out: Record<string, unknown> = {};
  if (f.job != null) out.job = typeof f.job === "string" ? checkName("job name", f.job) : resolveJob(f.job).name;
  if (f.status != null) {
    if (!RUN_STATUSES.includes(f.status)) throw invalidInput(`status must be one of ${RUN_STATUSES.join(", ")}, got ${JSON.stringify(f.status)}`);
    out.status = f.status;
  }
  if (f.queue != null) out.queue = checkName("queue name", f.queue);
  if (f.labels != null) out.labels = checkLabels("labels", f.labels);
  if (f.createdAfter != null) out.createdAfter = checkTime("createdAfter", f.createdAfter);
  if (f.createdBefore != null) out.createdBefore = checkTime("createdBefore", f.createdBefore);
  if (f.limit != null) out.limit = checkInt("limit", f.limit, 1, 1000);
  if (f.cursor != null) {
    if (typeof f.cursor !== "string" || f.cursor.length === 0) throw invalidInput("cursor must be a nextCursor string from an earlier listRuns page");
    out.cursor = f.cursor;
  }
  if (f.batchId != null) out.batchId = checkId(f.batchId, "batchId");
  if (f.search != null) {
    if (typeof f.search !== "string") throw invalidInput(`search must be a string, got ${typeof f.search}`);
    out.search = f.search;
  }
  if (f.searchSyntax != null) {
    if (f.searchSyntax !== "words" && f.searchSyntax !== "fts5")
      throw invalidInput(`searchSyntax must be "words" or "fts5", got ${JSON.stringify(f.searchSyntax)}`);
    out.searchSyntax = f.searchSyntax;
  }
  if (f.order != null) {
    if (f.order !== "newest" && f.order !== "relevance") throw invalidInput(`order must be "newest" or "relevance", got ${JSON.stringify(f.order)}`);
    out.order = f.order;
  }
  return parseResult<RunPage<I, O>>(await ctx.coreRead("listRuns", JSON.stringify(out)));
}

/** {@link Durq.getRunEvents}. @internal */
export async function getRunEvents(ctx: DbContext, id: string): Promise<RunEvent[]> {
  ctx.checkOpen();
  checkId(id);
  return parseResult<RunEvent[]>(await ctx.coreRead("runEvents", id));
}

/** {@link Durq.getSearchStatus}. @internal */
export async function getSearchStatus(ctx: DbContext): Promise<SearchStatus> {
  ctx.checkOpen();
  return parseResult<SearchStatus>(await ctx.coreRead("searchStatus"));
}

/** {@link Durq.exportRuns}: each page checks that the database is open. @internal */
export function exportRuns(ctx: DbContext, options?: ExportOptions): AsyncGenerator<Run, void, undefined> {
  return exportRunsWith(async (after, limit) => {
    ctx.checkOpen();
    return parseResult<{ runs: Run[]; nextCursor: string | null }>(await ctx.coreRead("exportRuns", after, limit));
  }, options);
}

/** {@link Durq.getBatch}. @internal */
export async function getBatch(ctx: DbContext, id: string): Promise<Batch> {
  ctx.checkOpen();
  checkId(id, "batch id");
  return parseResult<Batch>(await ctx.coreRead("getBatch", id));
}

/** {@link Durq.listBatches}. @internal */
export async function listBatches(ctx: DbContext, filter?: BatchFilter): Promise<BatchPage> {
  ctx.checkOpen();
  const f = checkOptions("listBatches filter", filter, ["queue", "state", "limit", "cursor"]);
  const out: Record<string, unknown> = {};
  if (f.queue != null) out.queue = checkName("queue name", f.queue);
  if (f.state != null) {
    if (!BATCH_STATES.includes(f.state)) throw invalidInput(`state must be one of ${BATCH_STATES.join(", ")}, got ${JSON.stringify(f.state)}`);
    out.state = f.state;
  }
  if (f.limit != null) out.limit = checkInt("limit", f.limit, 1, 1000);
  if (f.cursor != null) {
    if (typeof f.cursor !== "string" || f.cursor.length === 0) throw invalidInput("cursor must be a nextCursor string from an earlier listBatches page");
    out.cursor = f.cursor;
  }
  return parseResult<BatchPage>(await ctx.coreRead("listBatches", JSON.stringify(out)));
}

/** {@link Durq.listActiveBatches}. @internal */
export async function listActiveBatches(ctx: DbContext, queue: string): Promise<Batch[]> {
  ctx.checkOpen();
  checkName("queue name", queue);
  return parseResult<Batch[]>(await ctx.coreRead("listActiveBatches", queue));
}

/** {@link Durq.getSteps}. @internal */
export async function getSteps(ctx: DbContext, id: string): Promise<StepRecord[]> {
  ctx.checkOpen();
  checkId(id);
  return parseResult<StepRecord[]>(await ctx.coreRead("getSteps", id));
}

/** {@link Durq.getLogs}. @internal */
export async function getLogs(ctx: DbContext, id: string): Promise<LogRecord[]> {
  ctx.checkOpen();
  checkId(id);
  return parseResult<LogRecord[]>(await ctx.coreRead("getLogs", id));
}

/** {@link Durq.stats}. @internal */
export async function stats(ctx: DbContext): Promise<RunStats> {
  ctx.checkOpen();
  return parseResult<RunStats>(await ctx.coreRead("stats"));
}

/** {@link Durq.integrityCheck}. @internal */
export async function integrityCheck(ctx: DbContext): Promise<string[]> {
  ctx.checkOpen();
  return parseResult<string[]>(await ctx.coreRead("integrityCheck"));
}
