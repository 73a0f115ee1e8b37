// The dedicated worker of js/test/browser.test.mjs. Search parameters:
// `db` (OPFS name), `tab` (a label put in run outputs, to tell which tab's
// worker ran a run), `mode`: "serve" (default: serve() the database),
// "direct" (open({ opfs }) directly and report the outcome as a message
// `{ direct }`), "reopen" (open, enqueue, close, open again in this worker,
// and report `{ reopen }`), "old" (a browser without OPFS sync access
// handles: "direct" after deleting createSyncAccessHandle), "slots" (open
// new alarm namespaces until the pool has no room: `{ slots }`), "memory"
// (serve an in-memory database). A served worker stops serving on the
// message `{ stopServing: true }` and answers `{ stopped: true }`.
import { defineJob, open, serve } from "/pkg/dist/browser.js";

const params = new URL(self.location.href).searchParams;
const tab = params.get("tab") ?? "?";
const mode = params.get("mode") ?? "serve";
const db = params.get("db") ?? "test.db";

const echo = defineJob({
  name: "echo",
  async run(step, input) {
    const first = await step.run("first", () => ({ tab }));
    return { input, ranIn: first.tab, finishedIn: tab };
  },
});

if (mode === "old") delete FileSystemFileHandle.prototype.createSyncAccessHandle;

if (mode === "slots") {
  (async () => {
    const d = await open({ opfs: db });
    let opened = 0;
    try {
      for (;;) {
        await d.alarms(`ns-${opened}`).set("a", Date.now() + 60_000);
        opened += 1;
      }
    } catch (e) {
      postMessage({ slots: { opened, code: e.code, message: e.message, first: await d.alarms("ns-0").get("a") } });
    }
  })();
} else if (mode === "reopen") {
  (async () => {
    const first = await open({ opfs: db });
    const { id } = await first.enqueue(echo, { n: 1 });
    await first.close();
    const second = await open({ opfs: db });
    const run = await second.getRun(id);
    await second.close();
    postMessage({ reopen: { ok: true, status: run.status } });
  })().catch((e) => postMessage({ reopen: { ok: false, code: e.code, message: e.message } }));
} else if (mode === "direct" || mode === "old") {
  open({ opfs: db }).then(
    async (d) => {
      postMessage({ direct: { ok: true, path: d.path } });
      await d.close();
    },
    (e) => postMessage({ direct: { ok: false, code: e.code, name: e.name, message: e.message } }),
  );
} else {
  const server = serve({
    target: mode === "memory" ? { memory: true } : { opfs: db },
    setup: (d) => {
      d.worker({ jobs: [echo], concurrency: 2 }).start();
    },
  });
  self.addEventListener("message", async (e) => {
    if (e.data?.stopServing !== true) return;
    await server.close();
    postMessage({ stopped: true });
  });
}
