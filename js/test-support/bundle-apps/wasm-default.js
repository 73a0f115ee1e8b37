// Vite and webpack 5 follow durq's own new URL("../../wasm/durq_bg.wasm", import.meta.url): no option.
export const wasmOption = () => ({});
