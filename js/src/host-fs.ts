/**
 * The shape of the file host the core's file VFS calls (`src/wasm/host_fs.rs`):
 * synchronous file operations, given by each platform (`node/host-fs.ts` on
 * `node:fs`, `durable-object/storage.ts` on a Durable Object's KV API).
 * Types only; platform-free.
 *
 * @module
 */

/**
 * How {@link HostFs.open} opens a file.
 *
 * - `"read"`: read only; the file must exist.
 * - `"readWrite"`: read and write; the file must exist.
 * - `"create"`: read and write, created empty if missing, never truncated.
 * - `"createNew"`: read and write, created empty; throws `EEXIST` if the file exists.
 */
export type HostOpenMode = "read" | "readWrite" | "create" | "createNew";

/**
 * Synchronous file operations on real files, called by the core's file VFS
 * while SQLite runs (the same shape as the `HostFs` interface in the wasm
 * glue's `.d.ts`).
 *
 * Offsets and sizes are byte counts (integers below 2^53). File descriptors
 * are numbers. Every method throws on failure, preferably an error with a
 * Node-style `code` such as `"ENOENT"` or `"ENOSPC"` (and `errno`), as
 * `node:fs` does. None may call back into the core.
 */
export interface HostFs {
  /** Opens `path` (absolute, from {@link HostFs.fullPath}); returns a file descriptor. */
  open(path: string, mode: HostOpenMode): number;
  /** Reads up to `buffer.length` bytes at byte `position` into `buffer`; returns the count read (fewer only at end of file, 0 at or past it). */
  read(fd: number, buffer: Uint8Array, position: number): number;
  /** Writes all of `data` at byte `position` (zero-filling any gap); returns `data.length`. */
  write(fd: number, data: Uint8Array, position: number): number;
  /** Sets the file's length to `size` bytes, cutting or zero-extending it. */
  truncate(fd: number, size: number): void;
  /** Flushes the file to stable storage: `fdatasync` when `dataOnly`, else `fsync`. */
  sync(fd: number, dataOnly: boolean): void;
  /** The file's length in bytes. */
  size(fd: number): number;
  /** Closes `fd`. */
  close(fd: number): void;
  /** Whether something exists at `path`. */
  exists(path: string): boolean;
  /** Removes the file at `path`; a missing file is not an error. */
  delete(path: string): void;
  /** Makes the entries of the directory containing `path` durable (`fsync` of the directory); a no-op where directories cannot be opened or synced. */
  syncDir(path: string): void;
  /** `path` resolved to an absolute path against the working directory. */
  fullPath(path: string): string;
}
