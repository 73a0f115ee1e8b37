/**
 * Bulk import and export of runs ({@link Durq.importRuns},
 * {@link Durq.exportRuns}), and the deferral of full-text index maintenance
 * that makes a large import fast.
 *
 * @module
 */

import { invalidInput, DurqError } from "./errors.js";
import * as ops from "./ops.js";
import { checkInt, checkOptions, isPlainObject, toJsonText } from "./validate.js";
import type { Run } from "./types.js";

/** Default runs per `importRuns` operation (one transaction each). */
export const IMPORT_CHUNK = 1000;
/** Most runs per `importRuns` operation (the core's limit). */
export const MAX_IMPORT_CHUNK = 10_000;
/**
 * `deferIndex: "auto"` defers imports of at least this many runs: into an
 * empty database, deferral took 0.93x to 0.95x of the live import's time
 * from 5000 runs on, and 1.1x to 1.2x below (BENCHMARKS.md, "Search and
 * import"). Deferral also makes search answer `DURQ_SEARCH_STALE` while the
 * import runs, so it is kept for imports where it pays.
 */
export const DEFER_MIN_RUNS = 5_000;
/**
 * ...and at least this many times the runs already stored: the rebuild at
 * the end re-indexes every run, the stored ones too (about 7 µs a run
 * natively), while the live triggers index only the imported runs (about
 * 11 µs a run, in bulk per 4096). Into a database of 100k runs, deferring
 * 20k took 1.8x the live import's time (BENCHMARKS.md); by those costs
 * deferral pays once the import is about twice the stored runs.
 */
export const DEFER_MIN_RATIO = 2;

/** Options of {@link Durq.importRuns}. */
export interface ImportOptions {
  /**
   * Called after each chunk commits, with the totals so far (`total` is
   * the source's length for an array, else `undefined`). A promise it
   * returns is awaited before the next chunk. A callback that throws (or
   * rejects) stops the import; the chunks committed so far stay.
   */
  onProgress?: (progress: ImportProgress) => void | Promise<void>;
  /**
   * A run whose id, or job and idempotency key, is stored already:
   * `"error"` (default) rejects with `DURQ_INVALID_INPUT` naming it (the
   * chunks before it stay committed); `"skip"` keeps the stored run and
   * counts the imported one as skipped, so a failed import can be run again.
   */
  onConflict?: "error" | "skip";
  /**
   * Defer full-text index maintenance: `"auto"` (default) when the import
   * has at least {@link DEFER_MIN_RUNS} runs and at least
   * {@link DEFER_MIN_RATIO} times the runs already stored (a restore or a
   * migration into a new database); `true` always; `false` never. While deferred, `listRuns({ search })` rejects with
   * `DURQ_SEARCH_STALE`; everything else works.
   */
  deferIndex?: "auto" | boolean;
  /** Runs per transaction, 1 ..= 10 000 (default 1000). */
  chunkSize?: number;
}

/** Totals passed to {@link ImportOptions.onProgress}. */
export interface ImportProgress {
  /** Runs stored so far. */
  imported: number;
  /** Runs skipped so far (`onConflict: "skip"`). */
  skipped: number;
  /** Runs in the source, when it is an array. */
  total: number | undefined;
}

/** Result of {@link Durq.importRuns}. */
export interface ImportResult {
  /** Runs stored. */
  imported: number;
  /** Runs skipped because they were stored already. */
  skipped: number;
  /** Whether index maintenance was deferred (and the index rebuilt at the end). */
  deferred: boolean;
}

/** Options of {@link Durq.exportRuns}. */
export interface ExportOptions {
  /** Runs read per page, 1 ..= 1000 (default 500). */
  pageSize?: number;
}

/**
 * One run as {@link Durq.importRuns} takes it: the shape `getRun` and
 * `exportRuns` return, of which only `job` and `input` are required.
 * A given `id` must be a UUIDv7 (ids sort by creation time). Defaults: a
 * new UUIDv7 id made from `createdAt`; `status` `"pending"`;
 * `createdAt` now; `updatedAt` and `runAt` `createdAt`; `attempt` 0;
 * `maxAttempts` 3. A terminal run without `finishedAt` gets `updatedAt`; a
 * `leased` run without `leaseExpiresAt` is due for recovery at once (its
 * worker is not in this database).
 */
export type ImportRun = Partial<Omit<Run, "job" | "input">> & Pick<Run, "job" | "input">;

/** What the import needs of its database. */
export interface TransferHost {
  /** Queues one operation (JSON without `now`, from `ops.ts`) on the write queue; rejects with `DURQ_CLOSED` once the database is closing. */
  write<T>(json: string): Promise<T>;
  /** O(1) estimate of the runs stored (a promise in a client process). */
  runCountEstimate(): number | Promise<number>;
  /** Holds index maintenance deferred until the returned release is awaited. */
  deferIndex(): Promise<() => Promise<void>>;
  /** Reports a failure that cannot reject anything (an `error` event). */
  reportError(error: unknown): void;
}

/**
 * Reference-counted deferral of the search index triggers, so two imports
 * of one process overlap safely: the first defers, the last restores.
 * Both steps are operations on the write queue, so they commit in order
 * with everything else.
 */
export class IndexDeferral {
  readonly #host: Pick<TransferHost, "write">;
  #holders = 0;

  /** @param host - queues the operations on the write queue */
  constructor(host: Pick<TransferHost, "write">) {
    this.#host = host;
  }

  /** Whether an import of this process holds the deferral. */
  get held(): boolean {
    return this.#holders > 0;
  }

  /** Defers (if no one else did); resolves to the release function. */
  async acquire(): Promise<() => Promise<void>> {
    this.#holders++;
    try {
      if (this.#holders === 1) await this.#host.write(ops.deferSearchIndex());
    } catch (e) {
      this.#holders--;
      throw e;
    }
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      if (--this.#holders === 0) await this.#host.write(ops.restoreSearchIndex());
    };
  }
}

function isIterable(v: unknown): v is Iterable<unknown> | AsyncIterable<unknown> {
  return (
    v != null &&
    (typeof (v as { [Symbol.iterator]?: unknown })[Symbol.iterator] === "function" ||
      typeof (v as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === "function")
  );
}

/** {@link Durq.importRuns}. */
export async function importRuns(host: TransferHost, source: Iterable<ImportRun> | AsyncIterable<ImportRun>, options?: ImportOptions): Promise<ImportResult> {
  if (!isIterable(source) || typeof source === "string") throw invalidInput("importRuns needs an array or an (async) iterable of runs");
  const o = checkOptions("importRuns options", options, ["onProgress", "onConflict", "deferIndex", "chunkSize"]);
  if (o.onProgress != null && typeof o.onProgress !== "function") throw invalidInput("onProgress must be a function");
  const onConflict = o.onConflict ?? "error";
  if (onConflict !== "error" && onConflict !== "skip") throw invalidInput(`onConflict must be "error" or "skip", got ${JSON.stringify(onConflict)}`);
  const mode = o.deferIndex ?? "auto";
  if (mode !== "auto" && mode !== true && mode !== false) throw invalidInput(`deferIndex must be "auto", true or false, got ${JSON.stringify(mode)}`);
  const chunkSize = o.chunkSize == null ? IMPORT_CHUNK : checkInt("chunkSize", o.chunkSize, 1, MAX_IMPORT_CHUNK);
  const total = Array.isArray(source) ? source.length : undefined;
  const threshold = Math.max(DEFER_MIN_RUNS, Math.ceil((await host.runCountEstimate()) * DEFER_MIN_RATIO));

  let imported = 0;
  let skipped = 0;
  let seen = 0;
  let release: (() => Promise<void>) | undefined;
  let chunk: string[] = [];
  const flush = async (): Promise<void> => {
    // An array's size is known up front; an iterable's import defers once
    // it has grown past the threshold (the runs before went in with the
    // triggers, and the rebuild covers them either way).
    if (release === undefined && (mode === true || (mode === "auto" && (total ?? seen) >= threshold))) {
      release = await host.deferIndex();
    }
    const offset = seen - chunk.length;
    const json = ops.importRuns({ onConflict, offset, runsJson: chunk });
    chunk = [];
    const r = await host.write<{ imported: number; skipped: number }>(json);
    imported += r.imported;
    skipped += r.skipped;
    await o.onProgress?.({ imported, skipped, total });
  };
  let failed = false;
  let failure: unknown;
  try {
    for await (const run of source) {
      if (!isPlainObject(run)) throw invalidInput(`run ${seen} of the import is not an object`);
      chunk.push(toJsonText(`run ${seen} of the import`, run));
      seen++;
      if (chunk.length >= chunkSize) await flush();
    }
    if (chunk.length > 0) await flush();
  } catch (e) {
    failed = true;
    failure = e;
  } finally {
    if (release !== undefined) {
      try {
        await release();
      } catch (e) {
        // The index stays deferred (search says DURQ_SEARCH_STALE) until
        // restoreSearchIndex() or the next open repairs it.
        if (!failed) {
          failed = true;
          failure = e;
        } else host.reportError(e);
      }
    }
  }
  if (failed) throw failure;
  return { imported, skipped, deferred: release !== undefined };
}

/** Reads one page of the export (the core's `exportRuns`). */
export type ExportPage = (after: string, limit: number) => Promise<{ runs: Run[]; nextCursor: string | null }>;

/** {@link Durq.exportRuns}. */
export async function* exportRuns(page: ExportPage, options?: ExportOptions): AsyncGenerator<Run, void, undefined> {
  const o = checkOptions("exportRuns options", options, ["pageSize"]);
  const size = o.pageSize == null ? 500 : checkInt("pageSize", o.pageSize, 1, 1000);
  let after = "";
  for (;;) {
    const p = await page(after, size);
    yield* p.runs;
    if (p.nextCursor === null) return;
    after = p.nextCursor;
  }
}

/** The error `restoreSearchIndex` raises while an import of this process holds the deferral. */
export function importRunning(): DurqError {
  return new DurqError("DURQ_INVALID_STATE", "an importRuns of this database is running; it restores the search index when it ends");
}
