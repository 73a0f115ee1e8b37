// A child process for the lock and crash tests. Usage:
//   node child.mjs hold <path>     open the database, print "open <pid>", close on stdin "close"
//   node child.mjs step <path>     claim a run, store step "a", print "waiting", then hang (kill me)
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
    const db = await open({ path });
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
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
} catch (e) {
  process.stderr.write(`${e?.code ?? ""} ${e?.stack ?? e}\n`);
  process.exit(1);
}
