/**
 * Durable Object storage as durq's file layer: a {@link HostFs} whose files
 * are blocks in a SQLite-backed Durable Object's synchronous KV API
 * (`ctx.storage.kv`, https://developers.cloudflare.com/durable-objects/api/sqlite-storage-api/#synchronous-kv-api).
 *
 * Layout, under the key prefix `durq:` (other keys of the object are left
 * alone):
 * - `durq:f:<path>`: the file's length in bytes (a number); present iff the
 *   file exists;
 * - `durq:b:<path>#<index>`: block `index` of the file, a `Uint8Array` of
 *   {@link BLOCK_BYTES} bytes (the last one may be shorter); a missing block
 *   reads as zeros.
 *
 * The core opens these files with `synchronous: "external"`
 * (`journal_mode=MEMORY`, see `src/store.rs`), so a commit writes whole
 * 4 KiB database pages at page offsets, one KV value each, and the host's
 * transaction around each group commit (`transactionSync`) makes it atomic:
 * a crash mid-commit leaves the previous commit's pages. `sync` has nothing
 * to do: Durable Object writes are durable when the object's output gate
 * opens (https://blog.cloudflare.com/durable-objects-easy-fast-correct-choose-three/).
 *
 * Platform-free (no `cloudflare:` import): the storage object is passed in.
 *
 * @module
 */

import type { HostFs, HostOpenMode } from "../host-fs.js";

/** The synchronous KV API of a SQLite-backed Durable Object (`ctx.storage.kv`); only what durq calls. */
export interface DurableObjectKvLike {
  get(key: string): unknown;
  put(key: string, value: unknown): void;
  delete(key: string): boolean;
}

/**
 * What durq uses of a Durable Object's `ctx.storage` (`DurableObjectStorage`
 * in `@cloudflare/workers-types`): the synchronous KV API, synchronous
 * transactions and the object's alarm.
 */
export interface DurableObjectStorageLike {
  /** The synchronous KV API (SQLite-backed objects only). */
  readonly kv: DurableObjectKvLike;
  /** Runs `fn` in one transaction: its writes all commit, or none if it throws. */
  transactionSync<T>(fn: () => T): T;
  /** Schedules the object's `alarm()` at `scheduledTime` (ms since the epoch), replacing any alarm set. */
  setAlarm(scheduledTime: number | Date): Promise<void> | void;
  /** Removes the object's alarm. */
  deleteAlarm(): Promise<void> | void;
}

/**
 * Bytes per KV value: SQLite's default page size (4096;
 * https://www.sqlite.org/pragma.html#pragma_page_size), so each page the
 * core writes is one whole value with no read-modify-write, and far below
 * the KV API's value size limit (2 MiB for SQLite-backed objects;
 * https://developers.cloudflare.com/durable-objects/platform/limits/).
 */
export const BLOCK_BYTES = 4096;

const SIZE = "durq:f:";
const BLOCK = "durq:b:";

/** An error shaped like `node:fs`'s, which the core maps to a SQLite result code. */
function fsError(code: string, message: string): Error {
  return Object.assign(new Error(`${code}: ${message}`), { code });
}

function asBytes(v: unknown): Uint8Array | undefined {
  if (v instanceof Uint8Array) return v;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  return undefined;
}

interface OpenFile {
  path: string;
  size: number;
}

/**
 * Makes the {@link HostFs} over `kv`. File descriptors are small integers
 * of this host; paths are keys, made absolute by prefixing `/`.
 *
 * @example
 * ```ts
 * const core = Core.openFile("/durq.db", durableObjectHostFs(ctx.storage.kv), seed, "external");
 * ```
 */
export function durableObjectHostFs(kv: DurableObjectKvLike): HostFs {
  const files = new Map<number, OpenFile>();
  let nextFd = 3;

  const storedSize = (path: string): number | undefined => {
    const v = kv.get(SIZE + path);
    return typeof v === "number" ? v : undefined;
  };
  const file = (fd: number): OpenFile => {
    const f = files.get(fd);
    if (f === undefined) throw fsError("EBADF", `bad file descriptor ${fd}`);
    return f;
  };
  const blockKey = (path: string, index: number): string => `${BLOCK}${path}#${index}`;
  const setSize = (f: OpenFile, size: number): void => {
    f.size = size;
    kv.put(SIZE + f.path, size);
    for (const other of files.values()) if (other.path === f.path) other.size = size;
  };

  return Object.freeze({
    open(path: string, mode: HostOpenMode): number {
      const size = storedSize(path);
      if (size === undefined) {
        if (mode === "read" || mode === "readWrite") throw fsError("ENOENT", `no such file, open '${path}'`);
        kv.put(SIZE + path, 0);
      } else if (mode === "createNew") {
        throw fsError("EEXIST", `file already exists, open '${path}'`);
      }
      const fd = nextFd++;
      files.set(fd, { path, size: size ?? 0 });
      return fd;
    },

    read(fd: number, buffer: Uint8Array, position: number): number {
      const f = file(fd);
      const end = Math.min(position + buffer.length, f.size);
      if (end <= position) return 0;
      for (let at = position; at < end; ) {
        const index = Math.floor(at / BLOCK_BYTES);
        const inBlock = at - index * BLOCK_BYTES;
        const n = Math.min(BLOCK_BYTES - inBlock, end - at);
        const block = asBytes(kv.get(blockKey(f.path, index)));
        const dst = buffer.subarray(at - position, at - position + n);
        if (block === undefined) dst.fill(0);
        else {
          const src = block.subarray(inBlock, Math.min(inBlock + n, block.length));
          dst.set(src);
          if (src.length < n) dst.fill(0, src.length);
        }
        at += n;
      }
      return end - position;
    },

    write(fd: number, data: Uint8Array, position: number): number {
      const f = file(fd);
      const end = position + data.length;
      for (let at = position; at < end; ) {
        const index = Math.floor(at / BLOCK_BYTES);
        const inBlock = at - index * BLOCK_BYTES;
        const n = Math.min(BLOCK_BYTES - inBlock, end - at);
        const key = blockKey(f.path, index);
        // The block's length: full, or up to the file's (new) end in the last block.
        const length = Math.min(BLOCK_BYTES, Math.max(f.size, end) - index * BLOCK_BYTES);
        let block: Uint8Array;
        if (inBlock === 0 && n === length) {
          block = data.slice(at - position, at - position + n); // a whole block: no read
        } else {
          block = new Uint8Array(length);
          const old = asBytes(kv.get(key));
          if (old !== undefined) block.set(old.subarray(0, Math.min(old.length, length)));
          block.set(data.subarray(at - position, at - position + n), inBlock);
        }
        kv.put(key, block);
        at += n;
      }
      if (end > f.size) setSize(f, end);
      return data.length;
    },

    truncate(fd: number, size: number): void {
      const f = file(fd);
      if (size < f.size) {
        const keep = Math.ceil(size / BLOCK_BYTES);
        const had = Math.ceil(f.size / BLOCK_BYTES);
        for (let i = keep; i < had; i++) kv.delete(blockKey(f.path, i));
        const tail = size - (keep - 1) * BLOCK_BYTES;
        if (keep > 0 && tail < BLOCK_BYTES) {
          const key = blockKey(f.path, keep - 1);
          const old = asBytes(kv.get(key));
          if (old !== undefined && old.length > tail) kv.put(key, old.slice(0, tail));
        }
      }
      if (size !== f.size) setSize(f, size);
    },

    sync(fd: number): void {
      file(fd); // durable with the object's output gate: nothing to flush
    },

    size(fd: number): number {
      return file(fd).size;
    },

    close(fd: number): void {
      files.delete(fd);
    },

    exists(path: string): boolean {
      return storedSize(path) !== undefined;
    },

    delete(path: string): void {
      const size = storedSize(path);
      if (size === undefined) return;
      const blocks = Math.ceil(size / BLOCK_BYTES);
      for (let i = 0; i < blocks; i++) kv.delete(blockKey(path, i));
      kv.delete(SIZE + path);
      for (const f of files.values()) if (f.path === path) f.size = 0;
    },

    syncDir(): void {
      // no directories: a file exists once its size key is written
    },

    fullPath(path: string): string {
      return path.startsWith("/") ? path : `/${path}`;
    },
  });
}
