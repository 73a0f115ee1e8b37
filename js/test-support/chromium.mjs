// Headless Chromium for the browser tests: Debian's /usr/bin/chromium
// driven by playwright-core (which downloads no browser of its own), and
// Vite serving the pages (dev server for test pages that import
// pkg/dist/browser.js; preview server for a built example).

import { chromium } from "playwright-core";
import { createServer, preview } from "vite";

/** Debian's Chromium (scripts/setup.sh installs it). */
export const CHROMIUM = process.env.DURQ_CHROMIUM ?? "/usr/bin/chromium";

/** The flags Chromium needs on this machine kind (see docs/toolchain.md). */
const FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"];

/**
 * Launches headless Chromium. Close it with `browser.close()`. Its
 * `newContext()` contexts are off the record (like incognito windows):
 * isolated from each other, but their OPFS lives in memory behind IPC, so
 * measure speed with {@link launchProfile} instead.
 */
export function launchChromium() {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
}

/**
 * Launches headless Chromium on a regular profile in `userDataDir` (as a
 * user's browser: OPFS in files on disk). Returns a browser context; close
 * it with `context.close()`.
 */
export function launchProfile(userDataDir) {
  return chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: FLAGS });
}

/**
 * Serves `root` with Vite's dev server on 127.0.0.1 (a secure context, so
 * OPFS works) at a free port. Returns `{ url, close }`; `url` ends in `/`.
 */
export async function serveDev(root) {
  const server = await createServer({
    root,
    configFile: false,
    logLevel: "error",
    server: { host: "127.0.0.1", port: 0, strictPort: false, hmr: false, fs: { strict: false } },
    optimizeDeps: { noDiscovery: true, include: [] },
  });
  await server.listen();
  const url = server.resolvedUrls.local[0];
  return { url, close: () => server.close() };
}

/** Serves a built site (`vite build` output under `root/dist`) with Vite's preview server. Returns `{ url, close }`. */
export async function servePreview(root) {
  const server = await preview({ root, configFile: false, logLevel: "error", preview: { host: "127.0.0.1", port: 0, strictPort: false } });
  const url = server.resolvedUrls.local[0];
  return { url, close: () => new Promise((resolve) => server.httpServer.close(() => resolve())) };
}

/**
 * Collects the page's console errors and uncaught exceptions, so a test can
 * show them when it fails.
 */
export function pageLog(page) {
  const lines = [];
  page.on("console", (m) => lines.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => lines.push(`pageerror: ${e.message}`));
  return lines;
}
