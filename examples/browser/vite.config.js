// Vite config of the dashboard. `durq` resolves to the package built into
// the repository's pkg/ by scripts/build.sh (an app would install durq from
// npm instead and need no alias). Vite follows durq's
// `new URL("../../wasm/durq_bg.wasm", import.meta.url)` and emits the wasm
// beside the worker chunk.

import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  resolve: {
    alias: [{ find: /^durq$/, replacement: fileURLToPath(new URL("../../pkg/dist/browser.js", import.meta.url)) }],
  },
  worker: { format: "es" },
  build: { outDir: "dist", emptyOutDir: true },
  preview: { host: "127.0.0.1" },
});
