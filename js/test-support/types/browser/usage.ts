// Compile-only check of the browser entry's public types (the "browser"
// export condition, DOM lib, no Node types); not run.
import { connect, defineJob, open, serve, DurqError, type DurqClient, type RemoteAlarmNamespace, type RunPage, type Server } from "durq";

const resize = defineJob({
  name: "resize",
  async run(step, input: { url: string }) {
    return step.run("fetch", async () => input.url.length);
  },
});

// In the worker:
const server: Server = serve({
  target: { opfs: "app.db" },
  options: { synchronous: "normal" },
  setup: (db) => {
    db.worker({ jobs: [resize] }).start();
  },
});
void server.owned.then((db) => db.path);
// @ts-expect-error: serve() sets waitForLock itself
serve({ target: { opfs: "app.db" }, options: { waitForLock: true } });

async function inWorker(): Promise<void> {
  const db = await open({ opfs: "app.db" }, { waitForLock: true });
  await db.close();
}
void inWorker;

// On the page:
async function onPage(): Promise<void> {
  const db: DurqClient = connect(new Worker(new URL("./worker.js", import.meta.url), { type: "module" }));
  const { id } = await db.enqueue(resize, { url: "https://example.com/a.png" }, { labels: { tenant: "acme" } });
  const page: RunPage = await db.listRuns({ labels: { tenant: "acme" }, status: "pending" });
  const done = await db.waitForRun(id, { timeoutMs: 5000 });
  const off = db.on("run:completed", (e) => console.log(e.id, e.output));
  off();
  const rooms: RemoteAlarmNamespace = db.alarms("rooms");
  await rooms.set("room-1", Date.now() + 1000);
  const at: number | null = await rooms.get("room-1");
  const role: "self" | "other" | "pending" = db.role;
  void [page, done, at, role];
  try {
    await db.getRun("x");
  } catch (e) {
    if (e instanceof DurqError && e.code === "DURQ_OWNER_CHANGED") db.close();
  }
  // @ts-expect-error: workers stay in the worker
  db.worker({ jobs: [resize] });
  // @ts-expect-error: the input type follows the job
  await db.enqueue(resize, { url: 1 });
}
void onPage;
