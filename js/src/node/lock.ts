/**
 * The process-level exclusive lock of a database file: `<path>.lock`,
 * created with `O_EXCL` and holding the owner's pid and host name. SQLite's
 * own locks live inside the wasm VFS and do not reach the OS, so this file
 * is what keeps a second process from opening the same database.
 *
 * A lock left by a process that died (e.g. `kill -9`) is stale: the next
 * `open` on the same host finds its pid gone and takes the lock over.
 *
 * @module
 * @internal
 */

import { closeSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { DurqError } from "../errors.js";

/** A held lock. */
export interface FileLock {
  /** The lock file's path. */
  readonly path: string;
  /** Removes the lock file (if it is still ours). Idempotent. */
  release(): void;
}

/** A lock file younger than this with unreadable content is taken as being written, so held. */
const FRESH_MS = 10_000;

const held = new Set<HeldLock>();
let exitHookInstalled = false;

class HeldLock implements FileLock {
  readonly path: string;
  readonly #text: string;
  #released = false;

  constructor(path: string, text: string) {
    this.path = path;
    this.#text = text;
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    held.delete(this);
    try {
      if (readFileSync(this.path, "utf8") === this.#text) unlinkSync(this.path);
    } catch {
      // already gone, or unreadable: nothing of ours to remove
    }
  }
}

interface Holder {
  text: string;
  pid: number | undefined;
  host: string | undefined;
}

function readHolder(path: string): Holder | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  const [pidLine, hostLine] = text.split("\n");
  const pid = Number(pidLine);
  return { text, pid: Number.isSafeInteger(pid) && pid > 0 ? pid : undefined, host: hostLine || undefined };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"; // exists, owned by someone else
  }
}

/**
 * This host's name, or `undefined` where it may not be read (Deno without
 * `--allow-sys=hostname`): then a lock is written without a host and read
 * as if written on this host (its pid is checked here).
 */
function thisHost(): string | undefined {
  try {
    return hostname();
  } catch {
    return undefined;
  }
}

/** Whether `host` (a lock's) is another host than this one. */
function otherHost(host: string | undefined): boolean {
  const here = thisHost();
  return host !== undefined && here !== undefined && host !== here;
}

function lockedError(dbPath: string, lockPath: string, holder: Holder): DurqError {
  if (holder.pid === process.pid && !otherHost(holder.host)) {
    return new DurqError(
      "DURQ_LOCKED",
      `database ${dbPath} is already open in this process (pid ${process.pid}, lock file ${lockPath}); close() the other Durq first`,
    );
  }
  const who = holder.pid === undefined ? "another process" : `process ${holder.pid}${otherHost(holder.host) ? ` on host ${holder.host}` : ""}`;
  return new DurqError(
    "DURQ_LOCKED",
    `database ${dbPath} is open in ${who} (lock file ${lockPath}); close it there first. A lock left by a process that died is taken over automatically`,
  );
}

/** Whether the process that wrote `holder` may still hold the lock. */
function mayBeHeld(holder: Holder, lockPath: string): boolean {
  if (holder.pid === undefined) {
    // Being written right now, or garbage: trust a fresh file, not an old one.
    try {
      return Date.now() - statSync(lockPath).mtimeMs < FRESH_MS;
    } catch {
      return false;
    }
  }
  if (otherHost(holder.host)) return true; // cannot check another host's pids
  if (holder.pid === process.pid) {
    // Our own pid: held if this process holds it, else left by an earlier
    // process that had the same pid (a restarted container's pid 1).
    return [...held].some((l) => l.path === lockPath);
  }
  return pidAlive(holder.pid);
}

/**
 * The `DURQ_LOCKED` error naming the process that holds `<dbPath>.lock`,
 * or `undefined` if no live process does (as far as the lock file tells).
 */
export function holderError(dbPath: string): DurqError | undefined {
  const lockPath = `${dbPath}.lock`;
  let holder: Holder | undefined;
  try {
    holder = readHolder(lockPath);
  } catch {
    return undefined;
  }
  if (holder === undefined) return undefined;
  if (holder.pid === process.pid && !otherHost(holder.host)) return lockedError(dbPath, lockPath, holder);
  return mayBeHeld(holder, lockPath) ? lockedError(dbPath, lockPath, holder) : undefined;
}

/**
 * Takes the exclusive lock `<dbPath>.lock`.
 *
 * @throws {DurqError} `DURQ_LOCKED` if a live process (this one included)
 * holds it; `SQLITE_CANTOPEN` if the lock file cannot be created.
 */
export function acquireLock(dbPath: string): FileLock {
  const lockPath = `${dbPath}.lock`;
  const text = `${process.pid}\n${thisHost() ?? ""}\n`;
  for (let attempt = 0; attempt < 8; attempt++) {
    let fd: number;
    try {
      fd = openSync(lockPath, "wx", 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") {
        throw new DurqError("SQLITE_CANTOPEN", `cannot create the lock file ${lockPath}: ${(e as Error).message}`, { cause: e });
      }
      const holder = readHolder(lockPath);
      if (holder === undefined) continue; // released meanwhile: try again
      if (mayBeHeld(holder, lockPath)) throw lockedError(dbPath, lockPath, holder);
      takeOverStale(lockPath, holder);
      continue;
    }
    try {
      writeSync(fd, text);
    } finally {
      closeSync(fd);
    }
    const lock = new HeldLock(lockPath, text);
    held.add(lock);
    installExitHook();
    return lock;
  }
  const holder = readHolder(lockPath);
  throw lockedError(dbPath, lockPath, holder ?? { text: "", pid: undefined, host: undefined });
}

/**
 * Removes a stale lock file, under a takeover guard `<lock>.takeover`
 * (created with `O_EXCL`): only the guard's holder may delete the lock, and
 * only while it still holds the stale owner's text. So of two processes
 * finding the same stale lock, one removes it and the other can no longer
 * delete the fresh lock the first then creates: both go back to the
 * `O_EXCL` create, which exactly one wins. A guard older than
 * {@link FRESH_MS} was left by a process that died mid-takeover and is
 * removed.
 */
function takeOverStale(lockPath: string, stale: Holder): void {
  const guard = `${lockPath}.takeover`;
  let fd: number;
  try {
    fd = openSync(guard, "wx", 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    try {
      if (Date.now() - statSync(guard).mtimeMs > FRESH_MS) unlinkSync(guard);
    } catch {
      // removed meanwhile
    }
    return; // another process is taking over: the caller looks again
  }
  closeSync(fd);
  try {
    const current = readHolder(lockPath);
    if (current !== undefined && current.text === stale.text) unlinkSync(lockPath);
  } finally {
    try {
      unlinkSync(guard);
    } catch {
      // gone already
    }
  }
}

/** Removes this process's lock files when it exits without closing its databases. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const lock of [...held]) lock.release();
  });
}
