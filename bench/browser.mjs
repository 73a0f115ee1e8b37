#!/usr/bin/env node
// The browser benchmark: enqueue and process throughput of durq in headless
// Chromium (Debian's, through playwright-core), in a dedicated worker, on
// OPFS against an in-memory database measured in the same page (ratios).
// The measurements are in bench/browser/worker.js. Rewrites the "browser"
// section of BENCHMARKS.md. Not a test: nothing here fails on a slow machine.
//
//   node bench/browser.mjs [--quick] [--rounds N]     (after scripts/build.sh)

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { launchChromium, launchProfile, pageLog, serveDev } from "../js/test-support/chromium.mjs";
import { writeSection } from "./section.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { values: args } = parseArgs({ options: { quick: { type: "boolean", default: false }, rounds: { type: "string", default: "3" } } });
const scale = args.quick ? 0.1 : 1;

/** Runs bench/browser/worker.js in a page of `context`; resolves with its report. */
async function measure(context) {
  const page = await context.newPage();
  const log = pageLog(page);
  page.on("console", (m) => console.log("[page]", m.text()));
  await page.goto(`${server.url}bench/browser/page.html?scale=${scale}&rounds=${args.rounds}`);
  await page.waitForFunction(() => window.benchResult !== undefined || window.benchError !== undefined, null, { timeout: 0, polling: 500 });
  const error = await page.evaluate(() => window.benchError);
  if (error !== undefined) throw new Error(`${error}\n${log.join("\n")}`);
  return page.evaluate(() => window.benchResult);
}

const server = await serveDev(root);
const profileDir = mkdtempSync(join(tmpdir(), "durq-bench-profile-"));
let result;
let offTheRecord;
try {
  // A regular profile, as a user's browser: OPFS in files on disk.
  const profile = await launchProfile(profileDir);
  try {
    result = await measure(profile);
  } finally {
    await profile.close();
  }
  // An off-the-record context (Playwright's newContext(), an incognito window).
  const browser = await launchChromium();
  try {
    offTheRecord = await measure(await browser.newContext());
  } finally {
    await browser.close();
  }
} finally {
  await server.close();
  rmSync(profileDir, { recursive: true, force: true });
}

const fmt = (n) => Math.round(n).toLocaleString("en-US");
const r = result;
const ratio = (name) => r[`${name}:opfs`].median / r[`${name}:memory`].median;
const chrome = /Chrome\/([\d.]+)/.exec(r.userAgent)?.[1] ?? r.userAgent;
const section = `<!-- browser:start -->
## In the browser: OPFS against memory (\`node bench/browser.mjs\`)

Headless Chromium ${chrome} (Debian's build, driven by playwright-core) on a regular profile (OPFS in files on this machine's disk), one dedicated worker, the package's browser entry. Each row measures an in-memory database and an OPFS database (\`open({ opfs })\`: the sync-access-handle pool VFS, \`synchronous: "full"\`, so every commit flushes its handles) in the same page, alternating, after a warm-up round, ${r.rounds} rounds; medians, with the ratio OPFS / memory. Runs carry a 1-label input of ~60 bytes.

| measurement | memory | OPFS | OPFS / memory |
|---|---|---|---|
| burst enqueue: ${fmt(r.N)} \`enqueue()\` calls issued at once (group commit) | ${fmt(r["burst:memory"].median)} runs/s | ${fmt(r["burst:opfs"].median)} runs/s | ${ratio("burst").toFixed(2)}x |
| one by one: ${fmt(r.SEQ)} awaited \`enqueue()\` calls (one durable transaction each) | ${r["oneByOne:memory"].median.toFixed(3)} ms/run | ${r["oneByOne:opfs"].median.toFixed(3)} ms/run | ${(r["oneByOne:opfs"].median / r["oneByOne:memory"].median).toFixed(1)}x the time |
| one by one, \`synchronous: "normal"\` (no flush at commit) | ${r["oneByOneNormal:memory"].median.toFixed(3)} ms/run | ${r["oneByOneNormal:opfs"].median.toFixed(3)} ms/run | ${(r["oneByOneNormal:opfs"].median / r["oneByOneNormal:memory"].median).toFixed(1)}x the time |
| process: ${fmt(r.N)} queued runs, worker concurrency 32, one checkpointed step each | ${fmt(r["process:memory"].median)} runs/s | ${fmt(r["process:opfs"].median)} runs/s | ${ratio("process").toFixed(2)}x |
| the same, concurrency 256 | ${fmt(r["process256:memory"].median)} runs/s | ${fmt(r["process256:opfs"].median)} runs/s | ${ratio("process256").toFixed(2)}x |

Baseline, the same page: one raw 8 KiB \`write()\` on an OPFS \`FileSystemSyncAccessHandle\` takes ${r.rawWrite.median.toFixed(3)} ms here, a write + \`flush()\` ${r.rawFlush.median.toFixed(3)} ms (SQLite's page is 8 KiB; the VFS makes one such call per page it writes, two per WAL frame).

- Group commit is what makes OPFS usable for a queue: a burst of enqueues costs ${(1000 / r["burst:opfs"].median).toFixed(3)} ms per run on OPFS, against ${r["oneByOne:opfs"].median.toFixed(3)} ms when each waits for its own durable commit (${(r["oneByOne:opfs"].median / (1000 / r["burst:opfs"].median)).toFixed(0)}x).
- In an off-the-record context (Playwright's \`browser.newContext()\`, or an incognito window), Chromium keeps OPFS in memory behind IPC to the browser process, and every sync-access-handle call pays the round trip: a raw 8 KiB write took ${offTheRecord.rawWrite.median.toFixed(3)} ms there, a one-by-one enqueue ${offTheRecord["oneByOne:opfs"].median.toFixed(1)} ms, a burst ${fmt(offTheRecord["burst:opfs"].median)} runs/s (${(offTheRecord["burst:opfs"].median / offTheRecord["burst:memory"].median).toFixed(2)}x memory), processing ${fmt(offTheRecord["process:opfs"].median)} runs/s (${(offTheRecord["process:opfs"].median / offTheRecord["process:memory"].median).toFixed(2)}x). Measure speed on a regular profile (\`launchPersistentContext\`).
- Samples (runs/s or ms/run, in round order): ${Object.entries(r)
  .filter(([, v]) => v?.samples)
  .map(([k, v]) => `${k} ${v.samples.map((x) => (x < 10 ? x.toFixed(3) : Math.round(x))).join("/")}`)
  .join("; ")}.
<!-- browser:end -->`;
writeSection("browser", section);
console.log(section);
console.log("BENCHMARKS.md: browser section written");
