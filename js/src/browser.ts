/**
 * durq's browser entry point (`exports["."].browser`): the same API as in
 * Node, with `{ opfs: name }` storage inside a dedicated worker (the origin
 * private file system, through the OPFS sync-access-handle pool VFS) and
 * `{ memory: true }` anywhere, plus {@link serve} (in the worker) and
 * {@link connect} (on the page) to reach the worker's database from the
 * page, across tabs.
 *
 * @example
 * ```ts
 * // worker.ts
 * import { serve } from "durq";
 * import { jobs } from "./jobs";
 * serve({ target: { opfs: "app.db" }, setup: (db) => { db.worker({ jobs }).start(); } });
 *
 * // page.ts
 * import { connect } from "durq";
 * const db = connect(new Worker(new URL("./worker.ts", import.meta.url), { type: "module" }));
 * await db.enqueue("thumbnail", { url });
 * ```
 *
 * @packageDocumentation
 */

import { browserPlatform } from "./browser/platform.js";
import { setPlatform } from "./platform.js";

setPlatform(browserPlatform);

export * from "./api.js";
export { REMOTE_METHODS, REMOTE_ALARM_METHODS } from "./protocol.js";
export type { RemoteMethod, MessageEndpoint } from "./protocol.js";
export { connect } from "./browser/client.js";
export type { DurqClient, RemoteAlarmNamespace } from "./browser/client.js";
export { serve } from "./browser/server.js";
export type { ServeOptions, Server } from "./browser/server.js";
export { OPFS_SPARE_NAMESPACES, OPFS_HANDOVER_MS } from "./browser/platform.js";
