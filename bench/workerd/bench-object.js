// The Durable Object of bench/workerd.mjs. One object per round holds two
// durq databases: its own storage (open({ durableObject: ctx.storage })) and
// { memory: true }, opened in the same object. bench/workerd.mjs drives the
// phases one request each (open, enqueue, enqueueMany, process, close), so
// every phase is timed twice: by Date.now() inside workerd around the durq
// calls (it advances during synchronous work in local workerd; see
// js/test-support/workerd-facts.mjs), and by the driver around the whole
// request, which also covers the storage flush workerd makes after the
// object's last write and before the response leaves (the output gate).
//
// GET /phase?object=<name>&db=<durableObject|memory>&phase=<name>&n=<runs>[&counted]
// (`counted` on `open`: the object's storage calls are counted, for the
// warm-up round; the measured rounds hand durq ctx.storage itself)

import { DurableObject } from "cloudflare:workers";
import { defineJob, open } from "durq";

/** The trivial handler: no step, returns a number (a claim and a completion per run). */
const noop = defineJob({ name: "noop", run: async (_step, input) => input.n });
const CHUNK = 500;

/**
 * `storage` with its calls counted into `c` (the members durq uses): for the
 * warm-up round only, to tell what a phase asks of the storage.
 */
function counting(storage, c) {
  const kv = storage.kv;
  return {
    kv: {
      get: (k) => (c.kvGet++, kv.get(k)),
      put: (k, v) => (c.kvPut++, (c.kvPutBytes += v instanceof Uint8Array ? v.byteLength : 0), kv.put(k, v)),
      delete: (k) => (c.kvDelete++, kv.delete(k)),
      list: (o) => kv.list(o),
    },
    transactionSync: (f) => (c.transactions++, storage.transactionSync(f)),
    setAlarm: (t) => (c.alarmCalls++, storage.setAlarm(t)),
    deleteAlarm: () => (c.alarmCalls++, storage.deleteAlarm()),
    getAlarm: () => storage.getAlarm(),
    sql: storage.sql,
  };
}

export class BenchObject extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    /** @type {Record<string, import("durq").Durq>} */
    this.dbs = {};
    this.counts = undefined;
  }

  async phase(kind, phase, n, counted) {
    const before = kind === "durableObject" && this.counts !== undefined ? { ...this.counts } : undefined;
    const t0 = Date.now();
    const p0 = performance.now();
    let count = n;
    let extra = {};
    if (phase === "ping") {
      count = 0; // the cost of a request through the object's stub, for reference
    } else if (phase === "open") {
      extra = { databaseSizeBefore: this.ctx.storage.sql?.databaseSize ?? null };
      if (kind === "memory") this.dbs[kind] = await open({ memory: true });
      else {
        this.counts = counted ? { transactions: 0, kvPut: 0, kvPutBytes: 0, kvGet: 0, kvDelete: 0, alarmCalls: 0 } : undefined;
        this.dbs[kind] = await open({ durableObject: counted ? counting(this.ctx.storage, this.counts) : this.ctx.storage });
      }
    } else if (phase === "enqueue") {
      const db = this.dbs[kind];
      await Promise.all(Array.from({ length: n }, (_, i) => db.enqueue(noop, { n: i })));
    } else if (phase === "enqueueMany") {
      const db = this.dbs[kind];
      for (let i = 0; i < n; i += CHUNK) {
        await db.enqueueMany(Array.from({ length: Math.min(CHUNK, n - i) }, (_, k) => ({ job: noop, input: { n: n + i + k } })));
      }
    } else if (phase === "process") {
      count = await this.dbs[kind].worker({ jobs: [noop], concurrency: 16 }).processUntilIdle();
    } else if (phase === "close") {
      const db = this.dbs[kind];
      const stats = await db.stats();
      await db.close();
      delete this.dbs[kind];
      extra = { stats, databaseSize: kind === "durableObject" ? (this.ctx.storage.sql?.databaseSize ?? null) : null };
    } else throw new Error(`unknown phase ${phase}`);
    const dateNowMs = Date.now() - t0;
    const performanceNowMs = performance.now() - p0;
    if (this.counts !== undefined && kind === "durableObject") {
      extra.storageCalls = Object.fromEntries(Object.entries(this.counts).map(([k, v]) => [k, v - (before?.[k] ?? 0)]));
    }
    return { count, dateNowMs, performanceNowMs, ...extra };
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname !== "/phase") return new Response("bench-object"); // also the harness's readiness probe
    const q = url.searchParams;
    const stub = env.BENCH.get(env.BENCH.idFromName(q.get("object")));
    try {
      return Response.json(await stub.phase(q.get("db"), q.get("phase"), Number(q.get("n") ?? 0), q.has("counted")));
    } catch (e) {
      return Response.json({ error: `${e?.name}: ${e?.message}\n${e?.stack}` }, { status: 500 });
    }
  },
};
