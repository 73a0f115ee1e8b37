// Rollup copies no asset by itself: the build copies
// node_modules/durq/wasm/durq_bg.wasm beside the bundle, and the app points
// durq at it.
export const wasmOption = () => ({ wasm: new URL("./durq_bg.wasm", import.meta.url) });
