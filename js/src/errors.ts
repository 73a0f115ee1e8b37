/**
 * durq's one error class, with a stable machine-readable `code`.
 *
 * @module
 */

/**
 * Stable codes carried by {@link DurqError.code}.
 *
 * - `DURQ_INVALID_INPUT`: a value passed to durq is malformed or out of range
 *   (non-JSON input, bad label, negative time, ...). Nothing was written.
 * - `DURQ_NOT_FOUND`: no run with that id.
 * - `DURQ_LEASE_LOST`: a write by a worker whose lease on the run is gone (it
 *   expired and the run was recovered, or the run was cancelled or deleted).
 *   Nothing was written.
 * - `DURQ_INVALID_STATE`: the operation does not apply to the run's status
 *   (deleting a leased run, retriggering an unfinished one, cancelling a
 *   finished one).
 * - `DURQ_INVALID_SEARCH`: a `listRuns` search in FTS5 syntax
 *   (`searchSyntax: "fts5"`) that FTS5 rejects; the message has FTS5's reason.
 * - `DURQ_SEARCH_STALE`: the full-text index is being rebuilt after a bulk
 *   import, or its rebuild failed (see {@link Durq.restoreSearchIndex});
 *   everything but `search` keeps working.
 * - `DURQ_CLOSED`: the database was closed.
 * - `DURQ_LOCKED`: the database file is held by another process; in a
 *   browser, the OPFS database is open in another tab or worker (Web Locks).
 * - `DURQ_OPFS_UNAVAILABLE`: `open({ opfs })` where OPFS sync access
 *   handles are missing (outside a dedicated worker, an old browser, or in
 *   Node); the message names the fix.
 * - `DURQ_OPFS`: any other failure of the origin private file system.
 * - `DURQ_OWNER_CHANGED`: through `connect()` with several tabs, the
 *   tab that owned the database closed before answering; in a Node client
 *   process of a shared file, the owner process died or closed before
 *   answering. The call may or may not have taken effect (retry it; an
 *   `idempotencyKey` makes an enqueue safe to retry).
 * - `DURQ_OWNER_UNAVAILABLE`: a Node client process of a shared file found
 *   an owner that does not answer (within `ownerTimeoutMs`) and cannot take
 *   its place, because the owner process still holds the database (it is
 *   stopped, or its event loop is blocked).
 * - `DURQ_CORRUPT`: the database file is damaged.
 * - `DURQ_SCHEMA_TOO_NEW`: the file was written by a newer durq.
 * - `DURQ_UNKNOWN_JOB`: a job name that no {@link defineJob} call in this
 *   process defined.
 * - `DURQ_TIMEOUT`: {@link Durq.waitForRun} or {@link Durq.triggerAndWait}
 *   gave up waiting.
 * - `DURQ_CANCELLED`: the reason of a handler's `AbortSignal` when its run
 *   was cancelled.
 * - `DURQ_WASM_UNAVAILABLE`: durq's WebAssembly module could not be
 *   loaded (a bundle that left `durq_bg.wasm` behind, a runtime that forbids
 *   compiling wasm from bytes); the message names the fix, usually
 *   `open(target, { wasm })`.
 * - `DURQ_INTERNAL`: a bug in durq (an unexpected failure of the core).
 * - `SQLITE_*`: SQLite's primary result codes, e.g. `SQLITE_FULL` (disk
 *   full), `SQLITE_IOERR`, `SQLITE_BUSY`.
 */
export type DurqErrorCode =
  | "DURQ_INVALID_INPUT"
  | "DURQ_NOT_FOUND"
  | "DURQ_LEASE_LOST"
  | "DURQ_INVALID_STATE"
  | "DURQ_INVALID_SEARCH"
  | "DURQ_SEARCH_STALE"
  | "DURQ_CLOSED"
  | "DURQ_LOCKED"
  | "DURQ_CORRUPT"
  | "DURQ_SCHEMA_TOO_NEW"
  | "DURQ_UNKNOWN_JOB"
  | "DURQ_TIMEOUT"
  | "DURQ_CANCELLED"
  | "DURQ_INTERNAL"
  | "DURQ_WASM_UNAVAILABLE"
  | "DURQ_OPFS_UNAVAILABLE"
  | "DURQ_OPFS"
  | "DURQ_OWNER_CHANGED"
  | "DURQ_OWNER_UNAVAILABLE"
  | `SQLITE_${string}`;

/**
 * An error raised by durq. Test `code`, never `message`: codes are stable,
 * messages are written for people and may change.
 *
 * @example
 * ```ts
 * try { await db.getRun(id); }
 * catch (e) { if (e instanceof DurqError && e.code === "DURQ_NOT_FOUND") ... }
 * ```
 */
export class DurqError extends Error {
  /** Stable machine-readable code, e.g. `"DURQ_NOT_FOUND"` or `"SQLITE_FULL"`. */
  readonly code: DurqErrorCode;
  /**
   * SQLite's extended result code, for an `SQLITE_*` error that has one
   * (e.g. 778 `SQLITE_IOERR_WRITE`, 1034 `SQLITE_IOERR_FSYNC`, 2067
   * `SQLITE_CONSTRAINT_UNIQUE`; https://www.sqlite.org/rescode.html#extrc):
   * which I/O call or constraint failed. `undefined` otherwise.
   */
  readonly extendedCode: number | undefined;

  /**
   * @param code - stable code (see {@link DurqErrorCode})
   * @param message - what went wrong, in words a user can act on
   * @param options - `cause`: the underlying error, if any; `extendedCode`: SQLite's extended result code
   */
  constructor(code: DurqErrorCode, message: string, options?: { cause?: unknown; extendedCode?: number | undefined }) {
    super(message, options !== undefined && "cause" in options ? { cause: options.cause } : undefined);
    this.code = code;
    this.extendedCode = options?.extendedCode;
  }

  override get name(): string {
    return "DurqError";
  }
}

/**
 * Whether `e` is a {@link DurqError}, optionally with the given `code`.
 * Also true for errors thrown by another copy of durq (duck-typed on `name`
 * and `code`).
 */
export function isDurqError(e: unknown, code?: DurqErrorCode): e is DurqError {
  if (e instanceof DurqError) return code === undefined || e.code === code;
  if (typeof e !== "object" || e === null) return false;
  const o = e as { name?: unknown; code?: unknown };
  return o.name === "DurqError" && typeof o.code === "string" && (code === undefined || o.code === code);
}

/** Shorthand for a `DURQ_INVALID_INPUT` error. @internal */
export function invalidInput(message: string): DurqError {
  return new DurqError("DURQ_INVALID_INPUT", message);
}

/** The `DURQ_CLOSED` error. @internal */
export function closedError(): DurqError {
  return new DurqError("DURQ_CLOSED", "the database is closed");
}

/**
 * Turns anything the wasm core threw (an `Error` with a `code`, or in the
 * worst case a wasm trap) into a {@link DurqError}. @internal
 */
export function fromCoreError(e: unknown): DurqError {
  if (e instanceof DurqError) return e;
  if (typeof e === "object" && e !== null) {
    const o = e as { code?: unknown; message?: unknown; extendedCode?: unknown };
    if (typeof o.code === "string" && /^(DURQ|SQLITE)_[A-Z_]+$/.test(o.code)) {
      const extendedCode = typeof o.extendedCode === "number" ? o.extendedCode : undefined;
      return new DurqError(o.code as DurqErrorCode, typeof o.message === "string" ? o.message : String(o.code), { cause: e, extendedCode });
    }
  }
  const msg = e instanceof Error ? e.message : String(e);
  return new DurqError("DURQ_INTERNAL", `unexpected failure in the durq core: ${msg}`, { cause: e });
}
