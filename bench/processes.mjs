#!/usr/bin/env node
// Many processes on one file (`npm run bench:processes`, after
// `scripts/build.sh`): enqueue and processing throughput with 1, 2 and 4
// processes sharing one database file (one owner, the others its clients
// over the local socket, js/src/shared.ts), and the per-call cost a client
// pays over the socket.
//
// Each round starts fresh processes on a fresh file (start-up is not timed)
// and measures, in order:
// - enqueue: every process issues its share of ENQUEUE runs together
//   (`enqueue()` calls in flight at once: group commit), all processes at
//   once; throughput = runs / (last process done - first process started);
// - process: the runs just enqueued, a worker in every process
//   (concurrency 16, one checkpointed step per run) until the queue is
//   empty; throughput the same way;
// - per call (2 processes only): 300 awaited `getRun()` and 300 awaited
//   `enqueue()` (`synchronous: "normal"`, so no fsync hides the socket), in
//   the owner and then in the client, one at a time.
// "1 process" is the baseline: the same work in one process alone, in the
// same run, the settings alternating round by round.
//
// It rewrites the processes section of BENCHMARKS.md.
//
//   node bench/processes.mjs [--quick]     (--quick: 1 round, 5x fewer runs)

import { spawn } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import os from "node:os";
import { dirname, join } from "node:path";
import net from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { serialize } from "node:v8";
import { writeSection } from "./section.mjs";
import { fmt, median } from "./stats.mjs";

const here = fileURLToPath(import.meta.url);
const root = join(dirname(here), "..");
const out = join(root, "bench", "out");
const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    child: { type: "string" },
    echo: { type: "string" },
  },
});
const ENQUEUE = args.quick ? 2_000 : 10_000;
const ROUNDS = args.quick ? 1 : 5;
const PER_CALL = 300;
const SETTINGS = [1, 2, 4];

if (args.child !== undefined) await child(args.child);
else if (args.echo !== undefined) echo(args.echo);
else await parent();

/** The raw baseline's other end: echoes every byte back on a local socket (node:net, no durq). */
function echo(name) {
  const address = addressOf(name);
  if (process.platform !== "linux" && process.platform !== "win32") rmSync(address, { force: true });
  net.createServer((s) => s.on("data", (d) => s.write(d))).listen({ path: address }, () => process.stdout.write("up\n"));
}

/** A local socket address: abstract on Linux (as durq's owner), a pipe on Windows, else a socket file. */
function addressOf(name) {
  if (process.platform === "linux") return `\0${name}`;
  if (process.platform === "win32") return `\\\\.\\pipe\\${name}`;
  return join(out, `${name}.sock`);
}

/**
 * The baseline of the per-call cost: PER_CALL awaited round trips of a
 * small `node:v8`-serialized message over a local socket to another
 * process that echoes it (Linux: an abstract socket, as durq's owner uses),
 * ms per round trip.
 */
async function rawRoundTrip() {
  const name = `durq-bench-${process.pid}`;
  const address = addressOf(name);
  const p = spawn(process.execPath, [here, "--echo", name], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise((resolve) => p.stdout.once("data", resolve));
  const s = net.connect({ path: address, noDelay: true });
  await new Promise((resolve) => s.once("connect", resolve));
  let answered;
  s.on("data", () => answered());
  const message = serialize({ kind: "call", id: 1, target: ["core"], method: "getRun", args: ["01a24fec-cb87-7000-a34f-d3043c33d1e5"] });
  const t = performance.now();
  for (let i = 0; i < PER_CALL; i++)
    await new Promise((resolve) => {
      answered = resolve;
      s.write(message);
    });
  const ms = (performance.now() - t) / PER_CALL;
  s.destroy();
  p.kill();
  return ms;
}

/** A benchmark process: opens the file, then does what the parent's stdin lines say, answering each with a JSON line. */
async function child(path) {
  const { open, defineJob } = await import("durq");
  const job = defineJob({ name: "b", run: async (step, input) => step.run("s", () => input.i + 1) });
  const db = await open({ path }, { synchronous: "normal" });
  const say = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
  say({ ready: true, role: db.role });
  for await (const line of createInterface({ input: process.stdin })) {
    const cmd = JSON.parse(line);
    if (cmd.do === "enqueue") {
      const start = Date.now();
      const calls = [];
      for (let i = 0; i < cmd.n; i++) calls.push(db.enqueue(job, { i }));
      await Promise.all(calls);
      say({ start, end: Date.now() });
    } else if (cmd.do === "process") {
      const start = Date.now();
      const ran = await db.worker({ jobs: [job], concurrency: 16 }).processUntilIdle();
      say({ start, end: Date.now(), ran });
    } else if (cmd.do === "perCall") {
      const { id } = await db.enqueue(job, { i: -1 });
      let t = performance.now();
      for (let i = 0; i < PER_CALL; i++) await db.getRun(id);
      const read = (performance.now() - t) / PER_CALL;
      t = performance.now();
      for (let i = 0; i < PER_CALL; i++) await db.enqueue(job, { i });
      const write = (performance.now() - t) / PER_CALL;
      say({ read, write });
    } else if (cmd.do === "exit") {
      await db.close();
      say({ closed: true });
      process.exit(0);
    }
  }
}

/** A started child, with a way to send it a command and await its answer. */
function startChild(path) {
  const p = spawn(process.execPath, [here, "--child", path], { stdio: ["pipe", "pipe", "inherit"] });
  const waiting = [];
  createInterface({ input: p.stdout }).on("line", (l) => waiting.shift()?.(JSON.parse(l)));
  const next = () => new Promise((resolve) => waiting.push(resolve));
  return {
    ready: next(),
    ask(cmd) {
      const answer = next();
      p.stdin.write(`${JSON.stringify(cmd)}\n`);
      return answer;
    },
  };
}

/** Runs one setting (`k` processes) once; resolves with its figures. */
async function round(k, r) {
  const path = join(out, `processes-${k}-${r}.db`);
  for (const s of ["", "-wal", "-shm", ".lock"]) rmSync(path + s, { force: true });
  // The first process owns the file; the others start once it does.
  const first = startChild(path);
  const roles = [(await first.ready).role];
  const procs = [first];
  for (let i = 1; i < k; i++) procs.push(startChild(path));
  for (const p of procs.slice(1)) roles.push((await p.ready).role);
  const span = (answers) => Math.max(...answers.map((a) => a.end)) - Math.min(...answers.map((a) => a.start));
  const share = ENQUEUE / k;
  const enq = await Promise.all(procs.map((p) => p.ask({ do: "enqueue", n: share })));
  const proc = await Promise.all(procs.map((p) => p.ask({ do: "process" })));
  const ran = proc.reduce((s, a) => s + a.ran, 0);
  if (ran !== ENQUEUE) throw new Error(`${k} processes ran ${ran} runs of ${ENQUEUE}`);
  let perCall;
  if (k === 2) perCall = { owner: await procs[0].ask({ do: "perCall" }), client: await procs[1].ask({ do: "perCall" }), raw: await rawRoundTrip() };
  for (const p of procs.slice(1)) await p.ask({ do: "exit" });
  await first.ask({ do: "exit" });
  rmSync(path, { force: true });
  return {
    roles,
    enqueue: ENQUEUE / (span(enq) / 1000),
    process: ENQUEUE / (span(proc) / 1000),
    perCall,
    handledBy: proc.map((a) => a.ran),
  };
}

async function parent() {
  mkdirSync(out, { recursive: true });
  const began = Date.now();
  const log = (...a) => console.log("[bench:processes]", ...a);
  log("warm-up round");
  for (const k of SETTINGS) await round(k, "warm");
  const results = new Map(SETTINGS.map((k) => [k, []]));
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate the order of the settings, so none always runs first.
    const order = r % 2 === 0 ? SETTINGS : [...SETTINGS].reverse();
    for (const k of order) {
      const x = await round(k, r);
      results.get(k).push(x);
      log(`round ${r + 1}, ${k} process${k > 1 ? "es" : ""}: enqueue ${fmt(x.enqueue)} runs/s, process ${fmt(x.process)} runs/s, roles ${x.roles.join("/")}`);
    }
  }
  const med = (k, f) => median(results.get(k).map(f));
  const alone = { enqueue: med(1, (x) => x.enqueue), process: med(1, (x) => x.process) };
  const rows = SETTINGS.map((k) => {
    const e = med(k, (x) => x.enqueue);
    const p = med(k, (x) => x.process);
    const who = k === 1 ? "1 process alone (the baseline)" : `${k} processes: the owner and ${k - 1} client${k > 2 ? "s" : ""}`;
    return `| ${who} | ${fmt(e)} runs/s | ${ratio(e, alone.enqueue)} | ${fmt(p)} runs/s | ${ratio(p, alone.process)} |`;
  });
  const pc = (who, f) => median(results.get(2).map((x) => f(x.perCall[who])));
  const read = { owner: pc("owner", (c) => c.read), client: pc("client", (c) => c.read) };
  const write = { owner: pc("owner", (c) => c.write), client: pc("client", (c) => c.write) };
  const raw = median(results.get(2).map((x) => x.perCall.raw));
  const shares = results
    .get(4)
    .map((x) => x.handledBy.map((n) => `${Math.round((100 * n) / ENQUEUE)}%`).join("/"))
    .join("; ");
  const samples = SETTINGS.map(
    (k) =>
      `${k}: enqueue ${results
        .get(k)
        .map((x) => fmt(x.enqueue))
        .join("/")}, process ${results
        .get(k)
        .map((x) => fmt(x.process))
        .join("/")}`,
  ).join("; ");
  const section = `<!-- processes:start -->
## Many processes, one file (\`npm run bench:processes\`)

Measured ${new Date().toISOString().slice(0, 10)} by \`npm run bench:processes\` (bench/processes.mjs${args.quick ? " --quick" : ""}) on ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}. One file database (\`synchronous: "normal"\`), k Node processes on it: the first to open it owns it, the others are its clients over the local socket. Enqueue: ${fmt(ENQUEUE)} runs, each process issuing its share at once (group commit), all processes together. Process: those runs, a worker with concurrency 16 in every process (one checkpointed step per run). Throughput is runs / (the last process done − the first started); fresh processes and a fresh file per round, start-up not timed; ${ROUNDS} round${ROUNDS === 1 ? "" : "s"} after a warm-up round, the settings alternating; medians. The ratio is against one process alone, measured in the same run.

| processes | enqueue | vs alone | process | vs alone |
|---|---|---|---|---|
${rows.join("\n")}

The cost of one call over the socket (2 processes; ${PER_CALL} awaited calls one at a time, in the owner and then in the client; medians of the rounds):

| call | in the owner | in a client | a client pays |
|---|---|---|---|
| \`getRun()\` (a read) | ${ms(read.owner)} | ${ms(read.client)} | +${ms(read.client - read.owner)} |
| \`enqueue()\` awaited alone (one commit each) | ${ms(write.owner)} | ${ms(write.client)} | +${ms(write.client - write.owner)} |

Baseline, in the same rounds: one round trip of a small \`node:v8\`-serialized message over a local socket to a process that echoes it (\`node:net\`, no durq): ${ms(raw)}. A client's extra cost per call is ${((read.client - read.owner) / raw).toFixed(1)}x that for a read.

- All the writing happens in the owner: more processes add handler time and socket round trips, not write throughput. On this 2-core machine, 4 processes share 2 cores, so they also contend for CPU.
- Share of the runs each process handled with 4 processes (the owner first): ${shares}.
- Samples (runs/s, in round order) by process count: ${samples}.
- The whole benchmark took ${Math.round((Date.now() - began) / 1000)} s.
<!-- processes:end -->`;
  writeSection("processes", section);
  log("BENCHMARKS.md updated");
}

function ratio(x, base) {
  return `${(x / base).toFixed(2)}x`;
}
function ms(x) {
  return `${x.toFixed(3)} ms`;
}
