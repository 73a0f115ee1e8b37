// A child process for the lock and crash tests. Usage:
//   node child.mjs hold <path>     open the database, print "open <pid>", close on stdin "close"
//   node child.mjs step <path>     claim a run, store step "a", print "waiting", then hang (kill me)
//   node child.mjs alarms-set <path>    set alarms rooms/r1, rooms/r2, sessions/s1 (due now), print "set", close
//   node child.mjs alarms-fire <path> <n>  handle both namespaces; print "fired <ns> <actor> <retryCount>"
//                                       per delivery; after n deliveries close and print "closed"
//   node child.mjs alarms-hang <path>   handle "rooms" with a handler that prints "started <actor>" and hangs
//   node child.mjs import-hang <path>   enqueue a run, then import runs with the search index deferred in
//                                       chunks of 100, printing "imported <n>" per chunk; after 300 the
//                                       source hangs (kill me)
//   node child.mjs schedule-tick <path> <startMs>  schedule "tick" every second (catchUp "all"), then move a
//                                       ManualClock from startMs one second at a time, printing "at <ms>"
//                                       after each firing settled, for ever (kill me)
// Every line printed is one event; errors go to stderr with exit code 1.

import { createInterface } from "node:readline";
import { defineJob, ManualClock, open } from "durq";

const [mode, path] = process.argv.slice(2);
const T0 = Date.UTC(2030, 0, 1);
const say = (line) => process.stdout.write(`${line}\n`);

const stepJob = defineJob({
  name: "crash-steps",
  retry: { maxAttempts: 3 },
  async run(step, input) {
    const a = await step.run("a", () => {
      say("a-ran");
      return input.base + 1;
    });
    say(`waiting ${a}`);
    await new Promise(() => {}); // hang until killed
  },
});

try {
  if (mode === "hold") {
    const db = await open({ path }, { exclusive: true }); // the lock file's tests: no sharing
    say(`open ${process.pid}`);
    const rl = createInterface({ input: process.stdin });
    for await (const line of rl) {
      if (line.trim() === "close") break;
    }
    await db.close();
    say("closed");
    process.exit(0);
  } else if (mode === "step") {
    const db = await open({ path }, { clock: new ManualClock(T0) });
    setInterval(() => {}, 60_000); // stay alive while the handler hangs (fake timers hold no handle)
    await db.enqueue(stepJob, { base: 41 });
    await db.worker({ jobs: [stepJob], leaseMs: 1000 }).processOne();
  } else if (mode === "alarms-set") {
    const db = await open({ path });
    const due = Date.now() - 1;
    await Promise.all([db.alarms("rooms").set("r1", due), db.alarms("rooms").set("r2", due), db.alarms("sessions").set("s1", due)]);
    await db.close();
    say("set");
  } else if (mode === "alarms-fire") {
    const want = Number(process.argv[4]);
    const db = await open({ path });
    let n = 0;
    const done = new Promise((resolve) => {
      for (const ns of ["rooms", "sessions"]) {
        db.onAlarm(ns, (actor, { retryCount }) => {
          say(`fired ${ns} ${actor} ${retryCount}`);
          if (++n === want) resolve();
        });
      }
    });
    await done;
    await db.close(); // waits for the handlers' outcomes to commit
    say("closed");
  } else if (mode === "alarms-hang") {
    const db = await open({ path });
    setInterval(() => {}, 60_000);
    db.onAlarm("rooms", async (actor) => {
      say(`started ${actor}`);
      await new Promise(() => {}); // hang until killed
    });
  } else if (mode === "import-hang") {
    defineJob({ name: "crash-import", run: () => null });
    const db = await open({ path });
    setInterval(() => {}, 60_000);
    await db.enqueue("crash-import", { note: "enqueued before the import" });
    async function* source() {
      for (let i = 0; i < 300; i++) yield { job: "crash-import", input: { note: `imported number ${i}` }, status: "completed", output: { word: "zebra" } };
      await new Promise(() => {}); // hang until killed, the index still deferred
    }
    await db.importRuns(source(), { deferIndex: true, chunkSize: 100, onProgress: (p) => say(`imported ${p.imported}`) });
  } else if (mode === "schedule-tick") {
    const clock = new ManualClock(Number(process.argv[4]));
    const db = await open({ path }, { clock });
    const tick = defineJob({ name: "tick", run: () => {} });
    await db.schedule("tick", { cron: "* * * * * *", job: tick, catchUp: "all" });
    for (;;) {
      clock.advance(1000);
      await db.runDue();
      say(`at ${clock.now()}`);
    }
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
} catch (e) {
  process.stderr.write(`${e?.code ?? ""} ${e?.stack ?? e}\n`);
  process.exit(1);
}
