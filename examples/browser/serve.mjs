// npm run example:browser: builds the dashboard with Vite and serves the
// build on 127.0.0.1 (a secure context, which OPFS needs). Run
// scripts/build.sh first: durq comes from the repository's pkg/.

import { fileURLToPath } from "node:url";
import { build, preview } from "vite";

const root = fileURLToPath(new URL(".", import.meta.url));
const configFile = fileURLToPath(new URL("vite.config.js", import.meta.url));

await build({ root, configFile, logLevel: "warn" });
const server = await preview({ root, configFile, preview: { port: 4173 } });
server.printUrls();
console.log("  (Ctrl+C stops it; the runs stay in the browser's OPFS, so reload the page mid-run to see them resume)");
