/**
 * The local socket between the processes of one shared database file:
 * its address, and messages framed on it.
 *
 * The address derives from the file's device and inode, so every path to
 * the file (a hard link, a symlink, a renamed directory) meets at the same
 * one, and only one process can listen on it:
 * - Linux: an abstract Unix socket `\0durq:<dev>:<ino>`
 *   (https://man7.org/linux/man-pages/man7/unix.7.html, "Abstract
 *   sockets"): it has no file, and the kernel releases it when the process
 *   dies, kill -9 included. Abstract names belong to a network namespace:
 *   containers that share a volume but not a network namespace do not
 *   meet here, and the second one is refused by the lock file instead.
 * - Windows: the named pipe `\\.\pipe\durq-<dev>-<ino>`, released the same way.
 * - Other systems (macOS): a socket file `durq-<dev>-<ino>.sock` in the
 *   temporary directory; one left by a dead owner refuses connections and
 *   is replaced.
 *
 * Each message is a 4-byte big-endian length and the message serialized by
 * `node:v8` (the structured clone algorithm that `postMessage` uses,
 * https://nodejs.org/api/v8.html#serialization-api), so values cross as
 * they do between a page and its worker.
 * Internal: not exported from the package.
 *
 * @module
 */

import { statSync, unlinkSync } from "node:fs";
import { connect as netConnect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deserialize, serialize } from "node:v8";
import { DurqError } from "../errors.js";
import type { PeerConnection } from "../protocol.js";

/** Largest message accepted, bytes (a runaway length prefix closes the connection instead of allocating it). */
export const MAX_MESSAGE_BYTES = 256 * 1024 * 1024;

/** The owner's address for the database file `abs` (which must exist): see the module comment. */
export function ownerAddress(abs: string): string {
  const st = statSync(abs, { bigint: true });
  if (process.platform === "linux") return `\0durq:${st.dev}:${st.ino}`;
  if (process.platform === "win32") return `\\\\.\\pipe\\durq-${st.dev}-${st.ino}`;
  return join(tmpdir(), `durq-${st.dev}-${st.ino}.sock`);
}

/** Whether the address is a file on disk (a stale one may need removing). */
function isFileAddress(address: string): boolean {
  return !address.startsWith("\0") && !address.startsWith("\\\\.\\pipe\\");
}

/**
 * Listens on `address`: resolves with the server if this process now holds
 * it, `undefined` if another live process does.
 *
 * @throws {DurqError} `SQLITE_CANTOPEN` for any other failure to listen.
 */
export async function listen(address: string): Promise<Server | undefined> {
  for (let attempt = 0; attempt < 2; attempt++) {
    const server = createServer({ noDelay: true });
    const outcome = await new Promise<"ok" | "taken" | Error>((resolve) => {
      server.once("error", (e: NodeJS.ErrnoException) => resolve(e.code === "EADDRINUSE" ? "taken" : e));
      server.listen({ path: address, exclusive: true }, () => resolve("ok"));
    });
    if (outcome === "ok") {
      server.unref(); // the owner's socket alone does not keep the process alive
      return server;
    }
    if (outcome !== "taken") throw new DurqError("SQLITE_CANTOPEN", `cannot listen on durq's owner socket ${JSON.stringify(address)}: ${outcome.message}`);
    if (!isFileAddress(address) || attempt > 0) return undefined;
    // A socket file: its owner may be dead (it refuses connections); the lock file guards the race.
    if (!(await refuses(address))) return undefined;
    try {
      unlinkSync(address);
    } catch {
      // another process replaced it first
    }
  }
  return undefined;
}

/** Whether nothing answers at the socket file `address`. */
function refuses(address: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect({ path: address });
    s.once("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.once("error", () => resolve(true));
  });
}

/**
 * Connects to the owner at `address`.
 *
 * @returns the connection, or `undefined` if nobody listens there (the owner just went away)
 * @throws {DurqError} `DURQ_OWNER_UNAVAILABLE` if the connection is not made within `timeoutMs`
 */
export function connect<In, Out>(address: string, timeoutMs: number): Promise<FramedSocket<In, Out> | undefined> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ path: address, noDelay: true });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new DurqError("DURQ_OWNER_UNAVAILABLE", `the process that owns the database did not accept a connection within ${timeoutMs} ms`));
    }, timeoutMs);
    s.once("connect", () => {
      clearTimeout(timer);
      s.removeAllListeners("error");
      resolve(new FramedSocket<In, Out>(s));
    });
    s.once("error", () => {
      clearTimeout(timer);
      resolve(undefined);
    });
  });
}

/** Messages framed on a socket: a {@link PeerConnection}. */
export class FramedSocket<In, Out> implements PeerConnection<In, Out> {
  readonly #socket: Socket;
  #buffer: Buffer = Buffer.alloc(0);
  #onMessage: ((m: In) => void) | undefined;
  /** Messages that arrived before {@link onMessage} gave a handler (a client's `hello` may come before the owner serves). */
  #held: In[] = [];
  #onClose: (() => void) | undefined;
  #closed = false;

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Buffer) => this.#data(chunk));
    socket.on("error", () => socket.destroy());
    socket.on("close", () => {
      this.#closed = true;
      this.#onClose?.();
    });
  }

  /** Keeps the process alive while open (`true`), or not. */
  ref(on: boolean): void {
    if (on) this.#socket.ref();
    else this.#socket.unref();
  }

  send(message: Out): void {
    if (this.#closed) return;
    const body = serialize(message);
    const head = Buffer.allocUnsafe(4);
    head.writeUInt32BE(body.length, 0);
    this.#socket.write(Buffer.concat([head, body]));
  }

  onMessage(handler: (m: In) => void): void {
    this.#onMessage = handler;
    for (const m of this.#held.splice(0)) handler(m);
  }

  onClose(handler: () => void): void {
    this.#onClose = handler;
    if (this.#closed) handler();
  }

  /** Closes after what was sent is written (a last answer still reaches the other process); destroyed after 2 s at most. */
  close(): void {
    if (this.#closed) return;
    this.#socket.end();
    setTimeout(() => this.#socket.destroy(), 2000).unref();
  }

  #data(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    while (this.#buffer.length >= 4) {
      const n = this.#buffer.readUInt32BE(0);
      if (n > MAX_MESSAGE_BYTES) {
        this.close();
        return;
      }
      if (this.#buffer.length < 4 + n) return;
      const body = this.#buffer.subarray(4, 4 + n);
      this.#buffer = this.#buffer.subarray(4 + n);
      let m: In;
      try {
        m = deserialize(body) as In;
      } catch {
        this.close(); // not durq's framing: not a durq process
        return;
      }
      if (this.#onMessage === undefined) this.#held.push(m);
      else this.#onMessage(m);
    }
  }
}
