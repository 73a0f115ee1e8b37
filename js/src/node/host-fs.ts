/**
 * The Node file host: the synchronous file operations the durq core's file
 * VFS (`src/vfs`, `src/wasm/host_fs.rs`) calls, built on `node:fs`.
 *
 * The wasm module imports no file API itself, so the same `.wasm` also loads
 * in browsers; in Node, `Core.openFile` is given the object made here.
 * Errors thrown by `node:fs` are passed through unchanged: the core reads
 * their `code` (`"ENOENT"`, `"ENOSPC"`, ...) to pick the SQLite result code
 * (`SQLITE_CANTOPEN` for a failed open, `SQLITE_FULL` for a full disk,
 * `SQLITE_IOERR_*` otherwise).
 *
 * @module
 * @internal
 */

import { closeSync, constants, fdatasyncSync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, statSync, unlinkSync, writeSync } from "node:fs";
import { dirname, resolve } from "node:path";

import type { HostFs, HostOpenMode } from "../host-fs.js";

export type { HostFs, HostOpenMode };

const OPEN_FLAGS: Readonly<Record<HostOpenMode, number>> = {
  read: constants.O_RDONLY,
  readWrite: constants.O_RDWR,
  create: constants.O_RDWR | constants.O_CREAT,
  createNew: constants.O_RDWR | constants.O_CREAT | constants.O_EXCL,
};

/** `fsync` of a directory is refused with these on some file systems and platforms: nothing to sync there. */
const DIR_SYNC_UNSUPPORTED = new Set(["EINVAL", "ENOTSUP", "EOPNOTSUPP", "EISDIR", "EPERM", "EACCES", "EBADF"]);

function errorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** An error shaped like the ones `node:fs` throws. */
function fsError(code: string, errno: number, syscall: string, path: string, what: string): Error {
  return Object.assign(new Error(`${code}: ${what}, ${syscall} '${path}'`), { code, errno, syscall, path });
}

/**
 * Makes the {@link HostFs} for the Node file VFS on `node:fs` sync APIs:
 * positional `readSync`/`writeSync` (writes loop until every byte is
 * written), `ftruncateSync`, `fsyncSync`/`fdatasyncSync`, `fstatSync`,
 * `unlinkSync`, directory `fsync` through `openSync(dir, "r")`, and
 * `path.resolve`.
 *
 * Durability: `sync` reaches the disk through `fsync`, and SQLite calls it
 * as `PRAGMA synchronous` demands. The host takes no file locks: the caller
 * keeps other processes away from the database (durq's exclusive
 * `<path>.lock` file).
 *
 * @returns The same stateless host object on every call (the core
 * registers one SQLite VFS per distinct host object, so a singleton costs
 * one registration per process); it can serve any number of databases.
 *
 * @example
 * ```ts
 * const core = Core.openFile("/data/app.db", nodeHostFs(), seed, "full");
 * ```
 */
export function nodeHostFs(): HostFs {
  shared ??= makeNodeHostFs();
  return shared;
}

let shared: HostFs | undefined;

function makeNodeHostFs(): HostFs {
  return Object.freeze({
    open(path: string, mode: HostOpenMode): number {
      const flags = OPEN_FLAGS[mode];
      if (flags === undefined) throw new TypeError(`unknown open mode ${String(mode)}`);
      const fd = openSync(path, flags);
      try {
        // open(2) accepts a directory read-only; SQLite must not get one.
        if (fstatSync(fd).isDirectory()) {
          throw fsError("EISDIR", -21, "open", path, "illegal operation on a directory");
        }
      } catch (e) {
        closeSync(fd);
        throw e;
      }
      return fd;
    },

    read(fd: number, buffer: Uint8Array, position: number): number {
      return readSync(fd, buffer, 0, buffer.length, position);
    },

    write(fd: number, data: Uint8Array, position: number): number {
      let done = 0;
      while (done < data.length) {
        const n = writeSync(fd, data, done, data.length - done, position + done);
        if (n <= 0) throw fsError("EIO", -5, "write", `fd ${fd}`, "wrote 0 bytes");
        done += n;
      }
      return done;
    },

    truncate(fd: number, size: number): void {
      ftruncateSync(fd, size);
    },

    sync(fd: number, dataOnly: boolean): void {
      if (dataOnly) fdatasyncSync(fd);
      else fsyncSync(fd);
    },

    size(fd: number): number {
      return fstatSync(fd).size;
    },

    close(fd: number): void {
      closeSync(fd);
    },

    exists(path: string): boolean {
      try {
        return statSync(path, { throwIfNoEntry: false }) !== undefined;
      } catch (e) {
        if (errorCode(e) === "ENOTDIR") return false;
        throw e;
      }
    },

    delete(path: string): void {
      try {
        unlinkSync(path);
      } catch (e) {
        if (errorCode(e) !== "ENOENT") throw e;
      }
    },

    syncDir(path: string): void {
      let dirFd: number;
      try {
        dirFd = openSync(dirname(path), "r");
      } catch {
        return; // as SQLite's unix VFS: a directory that cannot be opened is not an error
      }
      try {
        fsyncSync(dirFd);
      } catch (e) {
        const code = errorCode(e);
        if (code === undefined || !DIR_SYNC_UNSUPPORTED.has(code)) throw e;
      } finally {
        closeSync(dirFd);
      }
    },

    fullPath(path: string): string {
      return resolve(path);
    },
  });
}
