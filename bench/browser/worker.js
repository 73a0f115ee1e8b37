// The browser benchmark (driven by bench/browser.mjs): in one dedicated
// worker, the same measurements on an in-memory database and on OPFS
// (alternating, several rounds; the median of each is reported):
//   - burst enqueue: N enqueue() calls issued at once, so they share group
//     commits (one transaction per turn of the event loop);
//   - one by one: enqueue() awaited each time, one durable transaction per
//     run (what a commit costs on its own);
//   - process: a worker (concurrency 32, then 256) runs N queued runs of a
//     job with one checkpointed step (claim, step checkpoint and completion
//     commits);
//   - the raw cost of OPFS on this machine, as a baseline: one 8 KiB write,
//     and one write + flush, on a FileSystemSyncAccessHandle (SQLite's page
//     size here is 8192 bytes; the VFS makes one such call per page write).
import { defineJob, open } from "/pkg/dist/browser.js";

const job = defineJob({
  name: "bench",
  async run(step, input) {
    const v = await step.run("double", () => input.n * 2);
    return { v };
  },
});

const input = (i) => ({ n: i, path: `/some/where/${i}/package.json`, size: 1234 });
const labels = (i) => ({ tenant: `t${i % 100}` });

let dbCount = 0;
async function fresh(storage, options) {
  dbCount += 1;
  return storage === "memory" ? open({ memory: true }, options) : open({ opfs: `bench-${dbCount}.db` }, options);
}

async function burst(storage, n, options) {
  const db = await fresh(storage, options);
  const t = performance.now();
  await Promise.all(Array.from({ length: n }, (_, i) => db.enqueue(job, input(i), { labels: labels(i) })));
  const ms = performance.now() - t;
  await db.close();
  return (n / ms) * 1000;
}

async function oneByOne(storage, n, options) {
  const db = await fresh(storage, options);
  await db.enqueue(job, input(-1)); // schema and first page written
  const t = performance.now();
  for (let i = 0; i < n; i++) await db.enqueue(job, input(i), { labels: labels(i) });
  const ms = performance.now() - t;
  await db.close();
  return ms / n;
}

async function processAll(storage, n, concurrency) {
  const db = await fresh(storage);
  await db.enqueueMany(Array.from({ length: n }, (_, i) => ({ job, input: input(i), options: { labels: labels(i) } })));
  const w = db.worker({ jobs: [job], concurrency });
  const t = performance.now();
  await w.processUntilIdle();
  const ms = performance.now() - t;
  const stats = await db.stats();
  await db.close();
  if (stats.completed !== n) throw new Error(`processed ${stats.completed} of ${n}`);
  return (n / ms) * 1000;
}

/** ms per call of a raw 8 KiB write (and of a write + flush) on an OPFS sync access handle. */
async function rawOpfs(n) {
  const dir = await navigator.storage.getDirectory();
  const handle = await (await dir.getFileHandle(`raw-${++dbCount}`, { create: true })).createSyncAccessHandle();
  const page = new Uint8Array(8192).fill(7);
  for (let i = 0; i < n; i++) handle.write(page, { at: i * 8192 }); // the file has its size before timing
  let t = performance.now();
  for (let i = 0; i < n; i++) handle.write(page, { at: i * 8192 });
  const write = (performance.now() - t) / n;
  t = performance.now();
  for (let i = 0; i < n; i++) {
    handle.write(page, { at: i * 8192 });
    handle.flush();
  }
  const flush = (performance.now() - t) / n;
  handle.close();
  return { write, flush };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

self.onmessage = async (e) => {
  try {
    const { scale, rounds } = e.data;
    const N = Math.round(5000 * scale);
    const SEQ = Math.round(300 * scale);
    const cases = [
      ["burst", (s) => burst(s, N)],
      ["oneByOne", (s) => oneByOne(s, SEQ)],
      ["oneByOneNormal", (s) => oneByOne(s, SEQ, { synchronous: "normal" })],
      ["process", (s) => processAll(s, N, 32)],
      ["process256", (s) => processAll(s, N, 256)],
    ];
    // Warm-up (not recorded): the first calls compile the wasm and the JS.
    for (const storage of ["memory", "opfs"]) {
      await burst(storage, Math.ceil(N / 10));
      await processAll(storage, Math.ceil(N / 10), 32);
    }
    const samples = {};
    for (let r = 0; r < rounds; r++) {
      for (const [name, f] of cases) {
        for (const storage of r % 2 === 0 ? ["memory", "opfs"] : ["opfs", "memory"]) {
          const key = `${name}:${storage}`;
          (samples[key] ??= []).push(await f(storage));
          postMessage({ progress: `round ${r + 1}: ${key} ${samples[key].at(-1).toFixed(2)}` });
        }
      }
    }
    const raw = [];
    for (let r = 0; r < rounds; r++) raw.push(await rawOpfs(100));
    const result = { N, SEQ, rounds, userAgent: navigator.userAgent, rawWrite: { median: median(raw.map((x) => x.write)), samples: raw.map((x) => x.write) }, rawFlush: { median: median(raw.map((x) => x.flush)), samples: raw.map((x) => x.flush) } };
    for (const [k, xs] of Object.entries(samples)) result[k] = { median: median(xs), samples: xs };
    postMessage({ result });
  } catch (err) {
    postMessage({ error: `${err?.code ?? ""} ${err?.stack ?? err}` });
  }
};
