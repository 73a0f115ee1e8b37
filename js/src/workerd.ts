/**
 * durq's entry point for Cloudflare workerd (`exports["."].workerd` and
 * `.worker`; also `durq/workerd`): the same API as in Node, with
 * `{ memory: true }` anywhere in a worker and `{ durableObject: ctx.storage }`
 * inside a SQLite-backed Durable Object, plus {@link DurqObject} (a Durable
 * Object class that owns one database) and {@link durqShards} (a client
 * that routes each call to the object owning its queue).
 *
 * The wasm module is imported as a module, the way workerd loads wasm
 * (wrangler bundles it; a workerd config lists it as a `wasm` module).
 *
 * @example
 * ```ts
 * import { DurqObject, durqShards, defineJob, type Durq } from "durq";
 * const sendEmail = defineJob({ name: "send-email", async run(step, input) { ... } });
 * export class Queues extends DurqObject {
 *   setup(db: Durq) { db.worker({ jobs: [sendEmail], queue: this.queue }).start(); }
 * }
 * export default {
 *   async fetch(request, env) {
 *     const { id } = await durqShards(env.QUEUES).enqueue("send-email", { to: "a@example.com" }, { queue: "emails" });
 *     return Response.json({ id });
 *   },
 * };
 * ```
 *
 * @packageDocumentation
 */

// Built into pkg/wasm/ by scripts/build.sh; workerd and wrangler give a
// `.wasm` import as a compiled WebAssembly.Module.
// @ts-expect-error: not present when tsc runs; checked to be a Module at load
import wasm from "../wasm/durq_bg.wasm";
import { setPlatform } from "./platform.js";
import { setBundledWasm, workerdPlatform } from "./workerd/platform.js";

setBundledWasm(wasm);
setPlatform(workerdPlatform);

export * from "./api.js";
export { DurqObject } from "./workerd/object.js";
export { durqShards, DurqShards, queueShardName, alarmShardName } from "./workerd/shards.js";
export type { ShardOptions, ShardLookup, CallResult, DurqObjectStub, DurqObjectNamespaceLike } from "./workerd/shards.js";
export { BLOCK_BYTES } from "./workerd/storage.js";
export { DURABLE_OBJECT_DB_PATH } from "./workerd/platform.js";
