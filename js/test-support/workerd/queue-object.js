// A Durable Object that opens durq on its own storage the way the README
// shows (open({ durableObject: ctx.storage }) inside blockConcurrencyWhile,
// alarm() → runDue()), for the restart and kill -9 cases of
// js/test/workerd.test.mjs. Its job takes `steps` checkpointed steps of
// `stepMs` each. Its worker is started only once `autostart(options)` was
// called (a flag in the object's storage, so a restarted object starts it
// again in its constructor): a test can enqueue first and process later.
//
// POST /rpc/<method>?name=<object> with a JSON array of arguments calls the
// object's method over Durable Object RPC; answers { ok, value } or
// { ok: false, error: { name, code, message } } as the error arrived.

import { DurableObject } from "cloudflare:workers";
import { defineJob, open } from "durq";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const stepped = defineJob({
  name: "stepped",
  async run(step, input) {
    let sum = 0;
    for (let i = 0; i < input.steps; i++) sum += await step.run(`step-${i}`, () => sleep(input.stepMs).then(() => input.n + i));
    return { n: input.n, sum };
  },
});

const AUTOSTART = "test:autostart";

export class QueueObject extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.worker = undefined;
    ctx.blockConcurrencyWhile(async () => {
      this.db = await open({ durableObject: ctx.storage });
      const auto = ctx.storage.kv.get(AUTOSTART);
      if (auto !== undefined) this.#start(auto);
    });
  }

  async alarm() {
    await this.db.runDue();
  }

  #start(options) {
    this.worker ??= this.db.worker({ jobs: [stepped], ...options });
    this.worker.start();
  }

  /** Starts the worker now and at every later construction of this object. */
  autostart(options = {}) {
    this.ctx.storage.kv.put(AUTOSTART, options);
    this.#start(options);
    return true;
  }

  async enqueue(input, options) {
    return this.db.enqueue(stepped, input, options);
  }

  async processUntilIdle(options = {}) {
    return this.db.worker({ jobs: [stepped], ...options }).processUntilIdle();
  }

  async getRun(id) {
    return this.db.getRun(id);
  }

  async listAll(filter = {}) {
    const runs = [];
    let cursor;
    do {
      const page = await this.db.listRuns({ ...filter, limit: 500, cursor });
      runs.push(...page.runs);
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined);
    return runs;
  }

  async stats() {
    return this.db.stats();
  }

  async integrityCheck() {
    return this.db.integrityCheck();
  }

  nextTimerAt() {
    return this.db.nextTimerAt ?? null;
  }

  async getAlarm() {
    return this.ctx.storage.getAlarm();
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/") return new Response("queue-object");
    const m = /^\/rpc\/(\w+)$/.exec(url.pathname);
    if (m === null) return new Response("not found", { status: 404 });
    const args = request.method === "POST" ? await request.json() : [];
    const stub = env.QUEUE.get(env.QUEUE.idFromName(url.searchParams.get("name") ?? "queue"));
    try {
      return Response.json({ ok: true, value: (await stub[m[1]](...args)) ?? null });
    } catch (e) {
      return Response.json({ ok: false, error: { name: e?.name, code: e?.code, message: e?.message, stack: e?.stack } });
    }
  },
};
