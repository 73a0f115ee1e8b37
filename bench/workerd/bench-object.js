// The Durable Object of bench/workerd.mjs: measures, inside one object and
// one request, enqueue and processing on the object's own storage
// (open({ durableObject: ctx.storage })) and on { memory: true }, in
// alternating order. Times are Date.now() inside workerd (it advances in
// local workerd; see js/test/workerd.test.mjs's facts).
import { DurableObject } from "cloudflare:workers";
import { defineJob, open } from "durq";

const noop = defineJob({ name: "noop", run: async (_step, input) => input.n });

async function measure(db, n) {
  let t = Date.now();
  await Promise.all(Array.from({ length: n }, (_, i) => db.enqueue(noop, { n: i })));
  const enqueueMs = Date.now() - t;
  t = Date.now();
  for (let i = 0; i < n; i += 500) {
    await db.enqueueMany(Array.from({ length: Math.min(500, n - i) }, (_, k) => ({ job: noop, input: { n: i + k } })));
  }
  const enqueueManyMs = Date.now() - t;
  t = Date.now();
  const processed = await db.worker({ jobs: [noop], concurrency: 16 }).processUntilIdle();
  const processMs = Date.now() - t;
  return { enqueue: n / (enqueueMs / 1000), enqueueMany: n / (enqueueManyMs / 1000), process: processed / (processMs / 1000), processed };
}

export class BenchObject extends DurableObject {
  async run(n, round) {
    const results = {};
    const order = round % 2 === 0 ? ["durableObject", "memory"] : ["memory", "durableObject"];
    for (const kind of order) {
      const db = kind === "memory" ? await open({ memory: true }) : await open({ durableObject: this.ctx.storage });
      results[kind] = await measure(db, n);
      await db.close();
    }
    results.databaseBytes = this.ctx.storage.sql?.databaseSize;
    return results;
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (!url.searchParams.has("n")) return new Response("ready"); // the harness's readiness probe
    const n = Number(url.searchParams.get("n"));
    const round = Number(url.searchParams.get("round") ?? 0);
    // A fresh object per round: each starts from an empty database.
    const stub = env.BENCH.get(env.BENCH.idFromName(`round-${round}`));
    try {
      return Response.json(await stub.run(n, round));
    } catch (e) {
      return Response.json({ error: `${e.name}: ${e.message}\n${e.stack}` }, { status: 500 });
    }
  },
};
