// Compile-only check of the public types (tsc --noEmit); not run.
import {
  defineJob,
  open,
  ManualClock,
  DurqError,
  DEFER_MIN_RUNS,
  type AlarmDelivery,
  type AlarmNamespace,
  type AlarmPage,
  type Batch,
  type BatchState,
  type ImportProgress,
  type ImportResult,
  type Run,
  type RunEvent,
  type RunEventKind,
  type RunPage,
  type SearchStatus,
  type Step,
  defineEffect,
  type Effect,
  type CacheStats,
} from "durq";

const thumbnail = defineJob({
  name: "thumbnail",
  retry: { maxAttempts: 5, backoff: { initialMs: 1000, factor: 2, maxMs: 60_000, jitter: 0.25 } },
  async run(step: Step, input: { url: string }) {
    const bytes = await step.run("fetch", async () => input.url.length);
    const head: string = await step.effect(defineEffect({ name: "head", run: async (u: string) => u.slice(0, 1) }), input.url);
    void head;
    step.progress({ done: 1 });
    await step.log("fetched", "info");
    if (step.signal.aborted) throw step.signal.reason;
    return { size: bytes };
  },
});

async function main(): Promise<void> {
  const db = await open({ path: "./data/app.db" }, { synchronous: "normal" });
  const mem = await open({ memory: true }, { clock: new ManualClock(0) });
  const r = await db.enqueue(thumbnail, { url: "x" }, { labels: { tenant: "acme" }, idempotencyKey: "x", runAt: new Date() });
  const created: boolean = r.created;
  // @ts-expect-error: the input type comes from the job
  await db.enqueue(thumbnail, { url: 1 });
  await db.enqueueMany([
    { job: thumbnail, input: { url: "y" } },
    { job: "other", input: 1, options: { priority: 2 } },
  ]);
  const w = db.worker({ jobs: [thumbnail], concurrency: 4, leaseMs: 10_000 });
  w.start();
  const n: number = await w.processUntilIdle();
  const done: Run<{ url: string }, { size: number }> = await db.triggerAndWait(thumbnail, { url: "z" }, { timeoutMs: 1000 });
  const size: number | undefined = done.output?.size;
  const page = await db.listRuns({ labels: { tenant: "acme" }, status: "failed", limit: 50 });
  const off = db.on("run:completed", (e) => void e.output);
  db.on("run:failed", (e) => void e.error.message);
  // @ts-expect-error: unknown event
  db.on("run:done", () => {});
  off();
  try {
    await db.getRun("nope");
  } catch (e) {
    if (e instanceof DurqError && e.code === "DURQ_NOT_FOUND") void e.message;
  }
  const batch = await db.enqueueBatch({ queue: "thumbs", runs: [{ job: thumbnail, input: { url: "b" }, labels: { i: "1" } }], idempotencyKey: "album:1" });
  const batchId: string = batch.id;
  const active: Batch[] = await db.listActiveBatches("thumbs");
  const finished: BatchState = (await db.waitForBatch(batchId, { timeoutMs: 1000 })).state;
  const failedRuns: number = (await db.getBatch(batchId)).counts.failed;
  await db.listBatches({ queue: "thumbs", state: "failed", limit: 10 });
  await db.listRuns({ batchId });
  await db.cancelBatch(batchId);
  const fixed = await db.reconcileBatches({ graceMs: 60_000 });
  db.on("batch:completed", (e) => void e.counts.completed);
  // @ts-expect-error: a batch state is not a run status
  await db.listBatches({ state: "pending" });
  const rooms: AlarmNamespace = db.alarms("rooms");
  await rooms.set("room-1", Date.now() + 1000);
  await rooms.set("room-2", new Date());
  const when: number | null = await rooms.get("room-1");
  const existed: boolean = await rooms.delete("room-2");
  const alarmPage: AlarmPage = await rooms.list({ before: Date.now(), limit: 10 });
  const stopAlarms: () => Promise<void> = db.onAlarm("rooms", async (actorId: string, d: AlarmDelivery) => void [actorId, d.retryCount, d.isRetry], {
    concurrency: 4,
  });
  db.on("alarm:abandoned", (e) => void [e.actorId, e.retryCount]);
  // @ts-expect-error: an alarm time is a number or a Date
  await rooms.set("room-3", "tomorrow");
  await stopAlarms();
  const hits: RunPage = await db.listRuns({ search: "timeout tenant-42", searchSyntax: "words", order: "relevance", labels: { tenant: "acme" } });
  await db.listRuns({ search: "error: timeout OR refused", searchSyntax: "fts5" });
  // @ts-expect-error: order is "newest" or "relevance"
  await db.listRuns({ search: "x", order: "oldest" });
  const history: RunEvent[] = await db.getRunEvents(hits.runs[0]!.id);
  const kind: RunEventKind = history[0]!.kind;
  const imported: ImportResult = await mem.importRuns(db.exportRuns({ pageSize: 100 }), {
    onConflict: "skip",
    deferIndex: "auto",
    chunkSize: 500,
    onProgress: (p: ImportProgress) => void [p.imported, p.skipped, p.total],
  });
  await mem.importRuns([{ job: "thumbnail", input: { url: "x" }, status: "completed", createdAt: 1 }]);
  // @ts-expect-error: an imported run needs a job
  await mem.importRuns([{ input: 1 }]);
  const stale: SearchStatus = await db.getSearchStatus();
  await db.restoreSearchIndex();
  void [kind, imported.deferred, stale.deferred, DEFER_MIN_RUNS];
  const meta: Effect<{ pkg: string }, { size: number }> = defineEffect({
    name: "meta",
    version: 1,
    cache: true,
    maxAgeMs: 60_000,
    run: async (i: { pkg: string }) => ({ size: i.pkg.length }),
  });
  const size2: number = (await db.callEffect(meta, { pkg: "typescript" })).size;
  // @ts-expect-error: the input must match the effect's
  await db.callEffect(meta, { package: "x" });
  const cacheStats: CacheStats = db.cacheStats();
  const { deleted }: { deleted: number } = await db.deleteEffects(meta);
  void [size2, cacheStats.evictions.committed, cacheStats.committedGeneration, deleted];
  void [created, n, size, page.nextCursor, active, finished, failedRuns, fixed.added, when, existed, alarmPage.alarms[0]?.scheduledTime];
  await w.stop();
  await mem.close();
  await db.close();
}
void main;
