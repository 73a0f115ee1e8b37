// A plain worker (no Durable Object) with an in-memory durq database:
// js/test/workerd.test.mjs enqueues, processes and reads back over HTTP.
//
// POST /roundtrip {count}  one request: open, enqueue, process, read back, close
// POST /enqueue {n}        the module's database (kept while the isolate lives)
// POST /process            processUntilIdle on the module's database
// GET  /run?id=            getRun;  GET /stats

import { defineJob, open } from "durq";

const square = defineJob({
  name: "square",
  async run(step, input) {
    const sq = await step.run("square", () => input.n * input.n);
    return { n: input.n, square: sq };
  },
});

let shared;
/** The module's database, opened on first use. */
function db() {
  shared ??= open({ memory: true });
  return shared;
}

async function roundtrip(count) {
  const d = await open({ memory: true });
  try {
    const ids = [];
    for (let n = 0; n < count; n++) ids.push((await d.enqueue(square, { n })).id);
    const processed = await d.worker({ jobs: [square] }).processUntilIdle();
    const runs = await Promise.all(ids.map((id) => d.getRun(id)));
    return { processed, runs, stats: await d.stats(), integrity: await d.integrityCheck() };
  } finally {
    await d.close();
  }
}

function errorJson(e) {
  return Response.json({ error: { name: e?.name, code: e?.code, message: e?.message, stack: e?.stack } }, { status: 500 });
}

export default {
  async fetch(request) {
    const url = new URL(request.url);
    try {
      const body = request.method === "POST" ? await request.json() : null;
      switch (`${request.method} ${url.pathname}`) {
        case "GET /":
          return new Response("plain");
        case "POST /roundtrip":
          return Response.json(await roundtrip(body.count));
        case "POST /enqueue":
          return Response.json(await (await db()).enqueue(square, { n: body.n }));
        case "POST /process":
          return Response.json({ processed: await (await db()).worker({ jobs: [square] }).processUntilIdle() });
        case "GET /run":
          return Response.json(await (await db()).getRun(url.searchParams.get("id")));
        case "GET /stats":
          return Response.json(await (await db()).stats());
        default:
          return new Response("not found", { status: 404 });
      }
    } catch (e) {
      return errorJson(e);
    }
  },
};
