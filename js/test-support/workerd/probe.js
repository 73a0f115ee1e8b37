// A pure-JS worker with one SQLite-backed Durable Object (no durq): the
// facts of workerd that durq's Durable Object storage relies on
// (js/test/workerd.test.mjs and js/test-support/workerd-facts.mjs).
// `POST /rpc/<method>` with a JSON array of arguments calls `<method>` on
// the object named by `?name=` (default "probe") over Durable Object RPC
// and answers `{ ok: true, value }` or `{ ok: false, error }`, the error as
// it arrived at the caller.

import { DurableObject } from "cloudflare:workers";

/** One id per constructed object in this isolate: a new one after an eviction or a restart. */
let constructed = 0;

/** `size` bytes, byte i = (i * 31 + seed) & 255. */
function bytes(size, seed) {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + seed) & 255;
  return b;
}

/** Whether `b` is `bytes(b.length, seed)`. */
function checkBytes(b, seed) {
  for (let i = 0; i < b.length; i++) if (b[i] !== ((i * 31 + seed) & 255)) return false;
  return true;
}

function describe(v) {
  if (v === undefined) return { type: "undefined" };
  if (v instanceof Uint8Array) return { type: "Uint8Array", length: v.length };
  if (v instanceof ArrayBuffer) return { type: "ArrayBuffer", length: v.byteLength };
  return { type: typeof v, constructor: v?.constructor?.name, value: v };
}

function errorInfo(e) {
  const own = {};
  for (const k of Object.getOwnPropertyNames(e ?? {})) if (k !== "stack") own[k] = e[k];
  return { name: e?.name, message: e?.message, code: e?.code, instanceofError: e instanceof Error, constructor: e?.constructor?.name, own };
}

export class Probe extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    constructed += 1;
    this.instance = `${constructed}:${crypto.randomUUID()}`;
    this.constructedAt = Date.now();
  }

  whoami() {
    return { instance: this.instance, constructedAt: this.constructedAt, now: Date.now() };
  }

  kvShape() {
    const kv = this.ctx.storage.kv;
    return {
      kv: typeof kv,
      get: typeof kv?.get,
      put: typeof kv?.put,
      delete: typeof kv?.delete,
      list: typeof kv?.list,
      transactionSync: typeof this.ctx.storage.transactionSync,
      sql: typeof this.ctx.storage.sql,
      setAlarm: typeof this.ctx.storage.setAlarm,
    };
  }

  /** Puts `size` bytes under `key`; returns the error if put throws. */
  kvPutBytes(key, size, seed = 1) {
    try {
      this.ctx.storage.kv.put(key, bytes(size, seed));
      return { ok: true };
    } catch (e) {
      return { ok: false, error: errorInfo(e) };
    }
  }

  kvGetBytes(key, seed = 1) {
    const v = this.ctx.storage.kv.get(key);
    const d = describe(v);
    if (v instanceof Uint8Array) d.intact = checkBytes(v, seed);
    return d;
  }

  kvPut(key, value) {
    this.ctx.storage.kv.put(key, value);
    return true;
  }

  kvGet(key) {
    return describe(this.ctx.storage.kv.get(key));
  }

  kvDelete(key) {
    return this.ctx.storage.kv.delete(key);
  }

  kvList(options) {
    const it = this.ctx.storage.kv.list(options);
    const out = [];
    for (const [k, v] of it) out.push([k, describe(v).type]);
    return { iterable: typeof it[Symbol.iterator], isArray: Array.isArray(it), constructor: it?.constructor?.name, entries: out };
  }

  /** transactionSync(fn) where fn writes two keys and then throws: are they rolled back? */
  txRollback() {
    const kv = this.ctx.storage.kv;
    kv.put("tx-keep", bytes(4, 9));
    let thrown;
    try {
      this.ctx.storage.transactionSync(() => {
        kv.put("tx-a", bytes(4, 2));
        kv.put("tx-keep", bytes(8, 3));
        kv.delete("tx-keep-deleted-inside");
        throw new Error("boom");
      });
    } catch (e) {
      thrown = e.message;
    }
    const inside = this.ctx.storage.transactionSync(() => {
      kv.put("tx-b", bytes(4, 5));
      return kv.get("tx-b")?.length;
    });
    return { thrown, afterThrow: { a: describe(kv.get("tx-a")), keep: describe(kv.get("tx-keep")) }, returned: inside, b: describe(kv.get("tx-b")) };
  }

  /** Writes `seq:<n>` (for the restart and kill -9 checks). */
  writeSeq(n) {
    this.ctx.storage.kv.put(`seq:${String(n).padStart(6, "0")}`, bytes(64, n & 255));
    return n;
  }

  readSeq() {
    const ns = [];
    let intact = true;
    for (const [k, v] of this.ctx.storage.kv.list({ prefix: "seq:" })) {
      const n = Number(k.slice(4));
      ns.push(n);
      if (!(v instanceof Uint8Array) || !checkBytes(v, n & 255)) intact = false;
    }
    return { count: ns.length, max: ns.length === 0 ? -1 : Math.max(...ns), ns, intact };
  }

  async setAlarmIn(ms, throwTimes = 0) {
    this.ctx.storage.kv.put("alarm-throw", throwTimes);
    const t = Date.now() + ms;
    await this.ctx.storage.setAlarm(t);
    return { scheduled: t, get: await this.ctx.storage.getAlarm() };
  }

  async setAlarmAt(t) {
    try {
      await this.ctx.storage.setAlarm(t);
      return { ok: true, get: await this.ctx.storage.getAlarm(), now: Date.now() };
    } catch (e) {
      return { ok: false, error: errorInfo(e) };
    }
  }

  async alarmState() {
    return { alarm: await this.ctx.storage.getAlarm(), fired: this.ctx.storage.kv.get("alarms") ?? [], instance: this.instance };
  }

  async alarm(info) {
    const kv = this.ctx.storage.kv;
    const fired = kv.get("alarms") ?? [];
    fired.push({
      info: info === undefined ? null : { ...info },
      infoKeys: info === undefined ? null : Object.keys(info),
      at: Date.now(),
      instance: this.instance,
      getAlarm: await this.ctx.storage.getAlarm(),
    });
    kv.put("alarms", fired);
    const throwTimes = kv.get("alarm-throw") ?? 0;
    if (throwTimes > 0) {
      kv.put("alarm-throw", throwTimes - 1);
      throw new Error("alarm handler failure");
    }
  }

  /** Starts a timer that writes `key` when it fires; answers at once. */
  startTimer(key, ms) {
    setTimeout(() => {
      this.ctx.storage.kv.put(key, { firedAt: Date.now(), instance: this.instance });
    }, ms);
    return { instance: this.instance, startedAt: Date.now() };
  }

  readKey(key) {
    return this.ctx.storage.kv.get(key) ?? null;
  }

  throwCoded() {
    const e = new Error("a coded failure");
    e.name = "DurqError";
    e.code = "DURQ_TEST_CODE";
    e.details = { a: 1 };
    throw e;
  }

  async throwCodedAsync() {
    await null;
    const e = new TypeError("a typed failure");
    e.code = "DURQ_TYPED";
    throw e;
  }

  /** Date.now() and performance.now() across a synchronous loop of `n` iterations that reads no clock. */
  spin(n) {
    const t0 = Date.now();
    const p0 = performance.now();
    let x = 0;
    for (let i = 0; i < n; i++) x = (x + i * 7) % 1000003;
    return { dateNowDelta: Date.now() - t0, performanceNowDelta: performance.now() - p0, x };
  }

  /** Date.now() around synchronous work, microtasks, storage calls and timers. */
  async clock() {
    const t0 = Date.now();
    const p0 = performance.now();
    let x = 0;
    const spinUntil = p0 + 30; // about 30 ms of synchronous work (bounded by iterations too, in case the clocks stand still)
    for (let i = 0; i < 5e7 && performance.now() < spinUntil; i++) x += i;
    const t1 = Date.now();
    this.ctx.storage.kv.put("clock", x);
    const t2 = Date.now();
    await Promise.resolve();
    const t3 = Date.now();
    await this.ctx.storage.get("clock-async");
    const t4 = Date.now();
    await new Promise((r) => setTimeout(r, 20));
    const t5 = Date.now();
    await new Promise((r) => setTimeout(r, 0));
    const t6 = Date.now();
    return {
      afterSpin30ms: t1 - t0,
      performanceNowDelta: performance.now() - p0,
      afterKvPut: t2 - t0,
      afterMicrotask: t3 - t0,
      afterStorageGet: t4 - t0,
      afterTimeout20: t5 - t0,
      afterTimeout0: t6 - t5,
    };
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/") return new Response("probe");
    if (url.pathname === "/spin") {
      // The same loop in the stateless worker (outside any Durable Object).
      const n = Number(url.searchParams.get("n") ?? 1e7);
      const t0 = Date.now();
      let x = 0;
      for (let i = 0; i < n; i++) x = (x + i * 7) % 1000003;
      return Response.json({ dateNowDelta: Date.now() - t0, x });
    }
    const m = /^\/rpc\/(\w+)$/.exec(url.pathname);
    if (m === null) return new Response("not found", { status: 404 });
    const args = request.method === "POST" ? await request.json() : [];
    const stub = env.PROBE.get(env.PROBE.idFromName(url.searchParams.get("name") ?? "probe"));
    try {
      const value = await stub[m[1]](...args);
      return Response.json({ ok: true, value: value ?? null });
    } catch (e) {
      return Response.json({ ok: false, error: errorInfo(e) });
    }
  },
};
