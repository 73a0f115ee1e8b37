// esbuild does not follow new URL(..., import.meta.url): import the module
// file through the `durq/wasm` subpath with --loader:.wasm=file (a path
// beside the bundle) and pass its URL.
import wasmPath from "durq/wasm";
export const wasmOption = () => ({ wasm: new URL(wasmPath, import.meta.url) });
