// Prints the behaviours of local workerd that take too long for the test
// command (about 80 s): the largest kv value, Date.now() during synchronous
// work, idle eviction of Durable Objects and timers while no request is
// pending, alarm retries, and alarms due while workerd was down. Uses the
// pure-JS probe (js/test-support/workerd/probe.js); no durq.
//
//   node js/test-support/workerd-facts.mjs

import { fileURLToPath } from "node:url";
import { startWorker } from "./workerd.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const w = await startWorker({
  entry: fileURLToPath(new URL("./workerd/probe.js", import.meta.url)),
  durableObjects: [{ className: "Probe", binding: "PROBE" }],
});
const rpc = async (method, name, ...args) => {
  const r = await w.post(`/rpc/${method}?name=${name}`, args);
  if (!r.ok) throw new Error(`${method}: ${JSON.stringify(r.error)}`);
  return r.value;
};
const fact = (what, value) => console.log(`${what}: ${typeof value === "string" ? value : JSON.stringify(value)}`);

try {
  // The largest Uint8Array ctx.storage.kv.put accepts (binary search between 1 MiB and 64 MiB).
  let lo = 1 << 20;
  let hi = 64 << 20;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if ((await rpc("kvPutBytes", "size", "v", mid, 1)).ok) lo = mid;
    else hi = mid;
  }
  fact("largest kv value (Uint8Array bytes)", lo);
  fact(`kv.put of ${hi} bytes`, (await rpc("kvPutBytes", "size", "v", hi, 1)).error?.message);

  fact("Date.now() across a 1e7-iteration loop in a Durable Object", await rpc("spin", "clock", 1e7));
  fact("Date.now() across the same loop in the stateless worker", await w.json("/spin?n=10000000"));
  fact("Date.now() around kv.put, microtasks, storage.get, setTimeout", await rpc("clock", "clock"));

  // Eviction: an idle object (no timer) called again after 8 s and after 12 s; one with a 30 s timer.
  const idle8 = await rpc("whoami", "idle8");
  const idle12 = await rpc("whoami", "idle12");
  const timer = await rpc("whoami", "timer30");
  await rpc("startTimer", "timer30", "t30", 30_000);
  await rpc("startTimer", "timer3", "t3", 3_000);
  await sleep(5_000);
  fact("setTimeout(3 s) with no request pending fired", await rpc("readKey", "timer3", "t3"));
  await sleep(3_000);
  fact("idle object kept after 8 s", (await rpc("whoami", "idle8")).instance === idle8.instance);
  await sleep(4_000);
  fact("idle object kept after 12 s", (await rpc("whoami", "idle12")).instance === idle12.instance);
  await sleep(21_000);
  fact("30 s timer, object not called meanwhile: fired", await rpc("readKey", "timer30", "t30"));
  fact("object with the pending timer kept (same instance)", (await rpc("whoami", "timer30")).instance === timer.instance);

  // Alarm retries: a handler that throws 3 times.
  const t0 = Date.now();
  await rpc("setAlarmIn", "retry", 200, 3);
  let s;
  do {
    await sleep(250);
    s = await rpc("alarmState", "retry");
  } while (s.fired.length < 4 && Date.now() - t0 < 60_000);
  fact(
    "alarm retries (ms after the previous call, alarmInfo)",
    s.fired.map((f, i) => ({ after: i === 0 ? null : f.at - s.fired[i - 1].at, info: f.info, getAlarmInHandler: f.getAlarm })),
  );

  // An alarm that came due while workerd was stopped.
  const a = await rpc("setAlarmIn", "down", 500);
  await w.stop();
  await sleep(2_000);
  await w.start();
  const up = Date.now();
  await sleep(2_000);
  s = await rpc("alarmState", "down");
  fact(
    "alarm due while workerd was down (ms after the start was ready, ms late)",
    s.fired.map((f) => ({ afterStart: f.at - up, late: f.at - a.scheduled, info: f.info })),
  );
} finally {
  await w.dispose();
}
