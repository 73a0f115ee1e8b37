// Scale-out through durqShards: a DurqObject subclass bound as QUEUES
// (one object per queue) and a worker that routes to it
// (js/test/workerd.test.mjs, the sharded case).
//
// POST /enqueue {queue, n}         durqShards(...).enqueue(job, { n }, { queue })
// GET  /run?id=&queue=             getRun
// GET  /list?limit=&cursor=&status= listRuns across the shards
// GET  /stats[?queue=]            summed stats, or one shard's

import { DurqObject, defineJob, durqShards } from "durq";

const QUEUES = ["a", "b", "c"];

const tag = defineJob({
  name: "tag",
  async run(step, input) {
    return step.run("tag", () => ({ n: input.n, tagged: `n-${input.n}` }));
  },
});

export class Queues extends DurqObject {
  setup(db) {
    db.worker({ jobs: [tag], queue: this.queue }).start();
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const q = url.searchParams;
    const shards = durqShards(env.QUEUES, { queues: QUEUES });
    try {
      switch (`${request.method} ${url.pathname}`) {
        case "GET /":
          return new Response("shards");
        case "POST /enqueue": {
          const { queue, n } = await request.json();
          return Response.json(await shards.enqueue(tag, { n }, { queue }));
        }
        case "GET /run":
          return Response.json(await shards.getRun(q.get("id"), q.has("queue") ? { queue: q.get("queue") } : undefined));
        case "GET /list": {
          const filter = { limit: Number(q.get("limit") ?? 50) };
          if (q.has("cursor")) filter.cursor = q.get("cursor");
          if (q.has("status")) filter.status = q.get("status");
          return Response.json(await shards.listRuns(filter));
        }
        case "GET /stats":
          return Response.json(q.has("queue") ? await shards.onQueue(q.get("queue"), "stats") : await shards.stats());
        default:
          return new Response("not found", { status: 404 });
      }
    } catch (e) {
      return Response.json({ error: { name: e?.name, code: e?.code, message: e?.message, stack: e?.stack } }, { status: 500 });
    }
  },
};
