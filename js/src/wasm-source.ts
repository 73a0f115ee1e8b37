/**
 * Where durq's WebAssembly module comes from: what `open(target, { wasm })`
 * accepts, and how each form becomes what the wasm-bindgen glue's
 * `initSync` takes (bytes or a compiled `WebAssembly.Module`). Every
 * failure is a `DURQ_WASM_UNAVAILABLE` {@link DurqError} that names the fix.
 * Platform-free: uses only `fetch`, `Response` and `WebAssembly`.
 *
 * @module
 */

import { DurqError } from "./errors.js";

/**
 * durq's wasm module (`durq_bg.wasm`, the package subpath `durq/wasm`), for
 * runtimes and bundlers that cannot locate it on their own:
 *
 * - a `WebAssembly.Module`: what Cloudflare Workers and wrangler give for
 *   `import wasm from "durq/wasm"` (workerd refuses to compile wasm from
 *   bytes, so there it must be a module; the `workerd` entry passes its own);
 * - an `ArrayBuffer` or a typed array of the file's bytes: esbuild's
 *   `--loader:.wasm=binary`, a `readFileSync`;
 * - a `URL` or URL string to fetch it from (a relative string is resolved
 *   against the page or worker's location): esbuild's `--loader:.wasm=file`,
 *   a CDN;
 * - a `Response`, or a promise of any of the above.
 */
export type WasmSource =
  | WebAssembly.Module
  | ArrayBuffer
  | ArrayBufferView
  | URL
  | string
  | Response
  | PromiseLike<WebAssembly.Module | ArrayBuffer | ArrayBufferView | URL | string | Response>;

/** What each entry's message adds: how to give durq its wasm there. */
export const WASM_OPTION_HELP =
  'pass open(target, { wasm }) with durq\'s module: e.g. `import wasm from "durq/wasm"` with your bundler\'s loader for .wasm files (esbuild: --loader:.wasm=binary for Node, --loader:.wasm=file for browsers), or a URL where node_modules/durq/wasm/durq_bg.wasm is served (see the README\'s "Bundlers" section)';

/** A `DURQ_WASM_UNAVAILABLE` error: `what` failed, and how to fix it. */
export function wasmUnavailable(what: string, cause?: unknown): DurqError {
  const reason = cause === undefined ? "" : `: ${(cause as Error)?.message ?? String(cause)}`;
  return new DurqError("DURQ_WASM_UNAVAILABLE", `${what}${reason}. To fix it, ${WASM_OPTION_HELP}`, cause === undefined ? undefined : { cause });
}

/**
 * Turns a {@link WasmSource} into what `initSync` takes: a module as is,
 * bytes as is, a URL or `Response` fetched and compiled.
 *
 * @throws {DurqError} `DURQ_WASM_UNAVAILABLE` if the source is of no
 * accepted type, cannot be fetched (a network error, an HTTP status other
 * than 2xx) or cannot be compiled.
 */
export async function resolveWasm(source: WasmSource): Promise<WebAssembly.Module | BufferSource> {
  let value: unknown;
  try {
    value = await source;
  } catch (e) {
    throw wasmUnavailable("the wasm option's promise rejected", e);
  }
  if (value instanceof WebAssembly.Module || value instanceof ArrayBuffer || ArrayBuffer.isView(value)) return value as WebAssembly.Module | BufferSource;
  let response: Response;
  if (value instanceof URL || typeof value === "string") {
    const href = String(value);
    try {
      response = await fetch(value);
    } catch (e) {
      throw wasmUnavailable(`cannot fetch durq's wasm module from ${href}`, e);
    }
  } else if (typeof Response === "function" && value instanceof Response) {
    response = value;
  } else {
    throw new DurqError(
      "DURQ_INVALID_INPUT",
      `the wasm option must be a WebAssembly.Module, an ArrayBuffer or typed array of durq_bg.wasm, a URL, a Response or a promise of one; got ${value === null ? "null" : typeof value}`,
    );
  }
  const where = response.url || "the given Response";
  if (!response.ok) throw wasmUnavailable(`cannot fetch durq's wasm module from ${where}: HTTP ${response.status}`);
  const bytes = await response.arrayBuffer();
  // A missing file on a host with a single-page-app fallback comes back as its index.html.
  const magic = new Uint8Array(bytes, 0, Math.min(4, bytes.byteLength));
  if (magic.length < 4 || magic[0] !== 0 || magic[1] !== 0x61 || magic[2] !== 0x73 || magic[3] !== 0x6d) {
    throw wasmUnavailable(`${where} is not a wasm module (no \\0asm header; an HTML page served for a file the bundle left behind?)`);
  }
  try {
    return await WebAssembly.compile(bytes);
  } catch (e) {
    throw wasmUnavailable(`cannot compile durq's wasm module from ${where}`, e);
  }
}
