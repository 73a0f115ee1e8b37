/**
 * The web-platform globals the platform-free modules of js/src may use:
 * those of the WinterTC Minimum Common Web Platform API
 * (https://min-common-api.proposal.wintertc.org/) that Node, browsers,
 * workers, workerd, Deno and Bun all have, declared as narrowly as durq
 * uses them. Only `tsconfig.core.json` reads this file: the build itself
 * (`tsconfig.json`) takes them from the DOM and Node libraries. A module
 * that needs more than this belongs to a platform folder (node/, browser/).
 */

/** An opaque timer handle (a number in browsers, an object in Node). */
interface TimerHandle {
  readonly __timer?: never;
}
declare function setTimeout(handler: () => void, timeoutMs?: number): TimerHandle;
declare function clearTimeout(handle: TimerHandle | undefined): void;
declare function setInterval(handler: () => void, timeoutMs?: number): TimerHandle;
declare function clearInterval(handle: TimerHandle | undefined): void;
declare function queueMicrotask(callback: () => void): void;
/** Node's and Bun's; `typeof setImmediate` is checked before use. */
declare const setImmediate: ((callback: () => void) => unknown) | undefined;

declare const console: {
  log(...data: unknown[]): void;
  warn(...data: unknown[]): void;
  error(...data: unknown[]): void;
};

declare const crypto: {
  getRandomValues<T extends Uint8Array | Uint16Array | Uint32Array>(array: T): T;
};

interface AbortSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: "abort", listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: "abort", listener: () => void): void;
  throwIfAborted(): void;
}
declare const AbortSignal: { prototype: AbortSignal };
declare class AbortController {
  readonly signal: AbortSignal;
  abort(reason?: unknown): void;
}

declare class MessageChannel {
  readonly port1: { onmessage: ((event: unknown) => void) | null; close(): void };
  readonly port2: { postMessage(message: unknown): void; close(): void };
}

type BufferSource = ArrayBufferView | ArrayBuffer;
declare namespace WebAssembly {
  class Module {
    constructor(bytes: BufferSource);
  }
  function compile(bytes: BufferSource): Promise<Module>;
}

declare class URL {
  constructor(url: string, base?: string | URL);
  readonly href: string;
  readonly pathname: string;
}
declare class Response {
  readonly ok: boolean;
  readonly status: number;
  readonly url: string;
  arrayBuffer(): Promise<ArrayBuffer>;
}
declare function fetch(input: string | URL): Promise<Response>;
declare function btoa(data: string): string;
declare function atob(data: string): string;

/** A message event of `postMessage` (its `data`). */
interface MessageEvent {
  readonly data: unknown;
}
