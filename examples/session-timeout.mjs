// Session timeouts on durq alarms: each session has one alarm (namespace
// "sessions", actor id = session id) that every bit of activity pushes back
// (`set` is an upsert). When a session has been idle for IDLE_MS its alarm
// fires, and the handler enqueues a durable "end-session" run (idempotency
// key = session id, so a repeated delivery cannot end a session twice); a
// worker runs it. The alarms live in ./data/sessions.db.alarms/sessions.db.
//
// It survives a restart: the script sets the alarms, closes the database
// and reopens it before any handler is registered, and the alarms fire
// from what is on disk. Kill it with `kill -9` at any point and run it
// again: sessions already created are not created again, alarms not yet
// delivered fire (at least once), and each session ends exactly once.
//
//   node examples/session-timeout.mjs [path]      (default ./data/sessions.db)

import { defineJob, open } from "durq";

const path = process.argv[2] ?? "./data/sessions.db";
const IDLE_MS = 1500;
const SESSIONS = ["alice", "bob", "carol", "dave"];
const t0 = Date.now();
const at = () => `+${String(Date.now() - t0).padStart(5)} ms`;

const endSession = defineJob({
  name: "end-session",
  async run(step, { session, idleSince }) {
    await step.run("revoke-token", () => ({ revoked: session }));
    return { session, idleForMs: Date.now() - idleSince };
  },
});

let db = await open({ path });
const sessions = db.alarms("sessions");
const started = await db.listRuns({ job: endSession.name, limit: 1000 });
const ended = new Set(started.runs.map((r) => r.input.session));
const pending = (await sessions.list({ limit: 1000 })).alarms.map((a) => a.actorId);
if (ended.size === 0 && pending.length === 0) {
  // A fresh start: log everyone in; carol and dave stay active a while.
  for (const s of SESSIONS) await sessions.set(s, Date.now() + IDLE_MS);
  for (let i = 1; i <= 3; i++) {
    await new Promise((r) => setTimeout(r, 300));
    await sessions.set("carol", Date.now() + IDLE_MS); // activity pushes the timeout back
    await sessions.set("dave", Date.now() + IDLE_MS);
  }
  console.log(`${at()}  ${SESSIONS.length} sessions open; carol and dave were active until now`);
} else {
  console.log(`${at()}  resuming: ${ended.size} session(s) ended, ${pending.length} alarm(s) pending`);
}

// The restart: everything above is on disk; nothing below is in memory yet.
await db.close();
db = await open({ path });
const left = await db.alarms("sessions").list({ limit: 1000 });
console.log(`${at()}  reopened: alarms pending for ${left.alarms.map((a) => a.actorId).join(", ") || "nobody"}`);

const finished = new Promise((resolve) => {
  const check = async () => {
    const runs = await db.listRuns({ job: endSession.name, status: "completed", limit: 1000 });
    const alarms = await db.alarms("sessions").list({ limit: 1 });
    if (runs.runs.length === SESSIONS.length && alarms.alarms.length === 0) resolve(runs.runs);
  };
  db.on("run:completed", (e) => {
    console.log(`${at()}  ${e.output.session} logged out after ${e.output.idleForMs} ms idle`);
    void check();
  });
  void check();
});

db.onAlarm("sessions", async (session, { scheduledTime, retryCount }) => {
  const late = Date.now() - scheduledTime;
  console.log(`${at()}  alarm: ${session} idle (fired ${late} ms after its time${retryCount ? `, retry ${retryCount}` : ""})`);
  await db.enqueue(endSession, { session, idleSince: scheduledTime - IDLE_MS }, { idempotencyKey: session });
});
const worker = db.worker({ jobs: [endSession] });
worker.start();

const runs = await finished;
await db.close();
console.log(
  `${at()}  done: ${runs.length} sessions ended, each once (${runs
    .map((r) => r.input.session)
    .sort()
    .join(", ")})`,
);
