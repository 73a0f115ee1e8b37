// The child process of js/test/kill9.test.mjs: enqueues runs into a file
// database until it is killed, and acknowledges each run on stdout only
// after the promise of its enqueue resolved (that is, after its commit).
//
//   node enqueuer.mjs <path> <full|normal> <round>
//
// Lines printed (one event each):
//   open <pid>                                  the database is open
//   ack <id> <single|many> <round> <batch> <seq> .   run <id> is committed
//   error <code> <message>                      open failed (exit code 2)
//
// Runs alternate at random between bursts of concurrent `enqueue` calls
// (the write queue commits a burst in one transaction) and `enqueueMany`
// calls (one transaction, all or nothing). Each run is labelled
// { round, kind, batch, seq }; its input repeats them with the batch size,
// so the parent can check that a batch is stored whole or not at all.
// Gives up by itself after 60 s or 100k runs, or when stdout goes away.

import { defineJob, open } from "durq";

const [path, synchronous, round] = process.argv.slice(2);
if (path === undefined || (synchronous !== "full" && synchronous !== "normal") || !/^\d+$/.test(round ?? "")) {
  process.stderr.write("usage: node enqueuer.mjs <path> <full|normal> <round>\n");
  process.exit(64);
}

const job = defineJob({ name: "kill9-enqueue", run: (_step, input) => input });
const say = (line) => process.stdout.write(`${line}\n`);
process.stdout.on("error", () => process.exit(0)); // the parent is gone

let db;
try {
  db = await open({ path }, { synchronous, exclusive: true }); // one writer per round: a second is refused (kill9.test.mjs)
} catch (e) {
  say(`error ${e?.code ?? "UNKNOWN"} ${String(e?.message ?? e).replace(/\n/g, " ")}`);
  process.exit(2);
}
say(`open ${process.pid}`);

const started = Date.now();
const int = (lo, hi) => lo + Math.floor(Math.random() * (hi - lo + 1));
let seq = 0;
for (let batch = 0; seq < 100_000 && Date.now() - started < 60_000; batch++) {
  const kind = Math.random() < 0.5 ? "single" : "many";
  const size = kind === "single" ? int(1, 20) : int(1, 60);
  const runs = Array.from({ length: size }, () => {
    const s = seq++;
    const labels = { round, kind, batch: String(batch), seq: String(s) };
    // Inputs of varied length, so commits span varied numbers of pages.
    const input = { round: Number(round), kind, batch, seq: s, size, pad: "x".repeat(int(0, 3000)) };
    return { input, labels };
  });
  const ack = (r, run) => say(`ack ${r.id} ${kind} ${round} ${batch} ${run.input.seq} .`);
  if (kind === "single") {
    // Every promise acknowledges its own run as soon as it resolves.
    await Promise.all(runs.map((run) => db.enqueue(job, run.input, { labels: run.labels }).then((r) => ack(r, run))));
  } else {
    const results = await db.enqueueMany(runs.map((run) => ({ job, input: run.input, options: { labels: run.labels } })));
    for (const [i, r] of results.entries()) ack(r, runs[i]);
  }
}
await db.close();
say("done");
