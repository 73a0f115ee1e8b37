/**
 * durq: a durable run queue for JavaScript, on SQLite compiled to
 * WebAssembly.
 *
 * @example
 * ```ts
 * import { open, defineJob } from "durq";
 *
 * const db = await open({ path: "./data/app.db" });
 * const thumbnail = defineJob({
 *   name: "thumbnail",
 *   retry: { maxAttempts: 5, backoff: { initialMs: 1000, factor: 2, maxMs: 60_000, jitter: 0.25 } },
 *   async run(step, input: { url: string }) {
 *     const bytes = await step.run("fetch", () => fetchBytes(input.url));
 *     return step.run("resize", () => resize(bytes));
 *   },
 * });
 * await db.enqueue(thumbnail, { url }, { labels: { tenant: "acme" }, idempotencyKey: url });
 * const worker = db.worker({ jobs: [thumbnail], concurrency: 4 });
 * await worker.processUntilIdle();
 * await db.close();
 * ```
 *
 * This is the Node entry point (`exports["."].node`); browsers get
 * `browser.ts`, the same API plus `connect()` and `serve()`.
 *
 * @packageDocumentation
 */

import { nodePlatform } from "./node/platform.js";
import { setPlatform } from "./platform.js";

setPlatform(nodePlatform);

export * from "./api.js";
