// TypeScript with moduleResolution "bundler" (create-vite's default): the
// browser API is reachable through the durq/browser subpath.
import { connect, serve, type DurqClient } from "durq/browser";
import { open, type WasmSource } from "durq";

export function page(worker: Worker): DurqClient {
  return connect(worker);
}
export function inWorker(): void {
  serve({ target: { memory: true } });
}
export const wasm: WasmSource = new URL("./durq_bg.wasm", import.meta.url);
export const opened = open({ memory: true }, { wasm });
