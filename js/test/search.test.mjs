// Full-text search, run history, and bulk import/export through the built
// package, against every storage kind: what search covers, plain words vs
// FTS5 syntax and their errors, search combined with filters and pages,
// relevance order; getRunEvents over a run's life; importRuns from arrays
// and async iterables with progress, conflicts and bad runs; the deferral
// of index maintenance (restored when the import ends, also when it fails,
// and repaired at open after a SIGKILLed import in a child process).

import assert from "node:assert/strict";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { defineJob, open, DEFER_MIN_RUNS } from "durq";
import { cleanupDirs, openDb, rejectsCode, startChild, STORAGES, T0, tempDir } from "../test-support/helpers.mjs";

after(cleanupDirs);

const send = defineJob({
  name: "search-send",
  retry: { maxAttempts: 2, backoff: { initialMs: 0 } },
  run: async (step, input) => {
    await step.run("render", () => `rendered ${input.subject}`);
    if (input.fail) throw new Error(`smtp timeout for ${input.to}`);
    return { result: `delivered to ${input.to}` };
  },
});

const ids = (page) => page.runs.map((r) => r.id);
defineJob({ name: "crash-import", run: () => null }); // the child's job (js/test-support/child.mjs)

for (const kind of STORAGES) {
  describe(`search and history (${kind})`, () => {
    test("search finds runs by job, string values, error message and labels, with filters and pages", async () => {
      const { db } = await openDb(kind);
      const ok = await db.enqueue(send, { to: "bob@example.com", subject: "Invoice tenant-42" }, { labels: { tenant: "acme" } });
      const bad = await db.enqueue(send, { to: "eve@example.com", subject: "Reminder", fail: true }, { labels: { tenant: "globex" } });
      const w = db.worker({ jobs: [send] });
      await w.processUntilIdle();
      assert.equal((await db.getRun(bad.id)).status, "failed");
      assert.deepEqual(ids(await db.listRuns({ search: "tenant-42" })), [ok.id]);
      assert.deepEqual(ids(await db.listRuns({ search: "smtp timeout" })), [bad.id], "error message");
      assert.deepEqual(ids(await db.listRuns({ search: "delivered" })), [ok.id], "output string values");
      assert.deepEqual(ids(await db.listRuns({ search: "ACME" })), [ok.id], "label value, any case");
      assert.deepEqual(ids(await db.listRuns({ search: "subject" })), [], "keys are not indexed");
      assert.deepEqual(ids(await db.listRuns({ search: "search-send" })), [bad.id, ok.id], "job name, newest first");
      assert.deepEqual(ids(await db.listRuns({ search: "search-send", status: "failed", labels: { tenant: "globex" } })), [bad.id]);
      assert.deepEqual(ids(await db.listRuns({ search: "search-send", labels: { tenant: "nobody" } })), []);
      // Pages: two runs, one a page, no run twice.
      const p1 = await db.listRuns({ search: "example", limit: 1 });
      assert.equal(p1.runs.length, 1);
      assert.ok(p1.nextCursor);
      const p2 = await db.listRuns({ search: "example", limit: 1, cursor: p1.nextCursor });
      assert.deepEqual([...ids(p1), ...ids(p2)], [bad.id, ok.id]);
      assert.equal(p2.nextCursor, null);
      // Relevance: the run that says "invoice" the most ranks first.
      const loud = await db.enqueue(send, { to: "x", subject: "invoice invoice invoice" });
      assert.deepEqual(ids(await db.listRuns({ search: "invoice", order: "relevance" })), [loud.id, ok.id]);
      // FTS5 syntax on request.
      assert.deepEqual(ids(await db.listRuns({ search: "reminder OR invoice", searchSyntax: "fts5", order: "relevance" })).length, 3);
      assert.deepEqual(ids(await db.listRuns({ search: "error: smtp", searchSyntax: "fts5" })), [bad.id]);
      assert.deepEqual(ids(await db.listRuns({ search: "reminder OR invoice" })), [], "as words, OR is a word");
      await db.close();
    });

    test("bad searches get stable codes", async () => {
      const { db } = await openDb(kind);
      await db.enqueue(send, { to: "a", subject: "b" });
      for (const search of ["AND", "(", '"open', "nosuch: x", "*"]) {
        await rejectsCode(db.listRuns({ search, searchSyntax: "fts5" }), "DURQ_INVALID_SEARCH", /FTS5/);
      }
      for (const search of ["AND", "(", '"open', "nosuch: x", "*", "-"]) {
        assert.deepEqual((await db.listRuns({ search })).runs, [], `${search} as words`);
      }
      for (const f of [
        { search: "" },
        { search: "  " },
        { search: 5 },
        { search: "a\0b" },
        { search: "x".repeat(5000) },
        { search: "a", searchSyntax: "regex" },
        { search: "a", order: "oldest" },
        { order: "relevance" },
        { searchSyntax: "fts5" },
        { search: "a", cursor: "nope" },
      ]) {
        await rejectsCode(db.listRuns(f), "DURQ_INVALID_INPUT");
      }
      await db.close();
    });

    test("getRunEvents lists a run's lifecycle with commit generations", async () => {
      const { db } = await openDb(kind);
      const r = await db.enqueue(send, { to: "eve", subject: "s", fail: true });
      await db.worker({ jobs: [send] }).processUntilIdle();
      const events = await db.getRunEvents(r.id);
      assert.deepEqual(
        events.map((e) => [e.kind, e.attempt]),
        [
          ["enqueued", 0],
          ["leased", 1],
          ["stepCompleted", 1],
          ["retried", 1],
          ["leased", 2],
          ["failed", 2],
        ],
      );
      assert.deepEqual(events[2].data, { name: "render" });
      assert.match(events[5].data.error, /smtp timeout/);
      for (let i = 1; i < events.length; i++) assert.ok(events[i].generation >= events[i - 1].generation);
      assert.ok(events.every((e) => Number.isInteger(e.at) && e.at > 0));
      // One commit, one generation.
      const [a, b] = await Promise.all([db.enqueue(send, { to: "1", subject: "" }), db.enqueue(send, { to: "2", subject: "" })]);
      assert.equal((await db.getRunEvents(a.id))[0].generation, (await db.getRunEvents(b.id))[0].generation);
      const c = await db.cancel(a.id);
      assert.equal(c.status, "cancelled");
      assert.deepEqual(
        (await db.getRunEvents(a.id)).map((e) => e.kind),
        ["enqueued", "cancelled"],
      );
      await db.deleteRun(a.id);
      assert.deepEqual(await db.getRunEvents(a.id), []);
      await rejectsCode(db.getRunEvents(""), "DURQ_INVALID_INPUT");
      await db.close();
    });

    test("exportRuns into importRuns copies runs with their ids, states and times", async () => {
      const { db: src } = await openDb(kind);
      await src.enqueue(send, { to: "a", subject: "done one" }, { labels: { tenant: "acme" } });
      await src.enqueue(send, { to: "b", subject: "failed one", fail: true });
      await src.worker({ jobs: [send] }).processUntilIdle();
      await src.enqueue(send, { to: "c", subject: "pending one" }, { runAt: T0 + 60_000, priority: 3, idempotencyKey: "k" });
      const exported = [];
      for await (const run of src.exportRuns({ pageSize: 2 })) exported.push(run);
      assert.equal(exported.length, 3);
      assert.deepEqual(
        exported.map((r) => r.id),
        [...exported.map((r) => r.id)].sort(),
        "id order",
      );
      const { db: dst } = await openDb(kind);
      const progress = [];
      const r = await dst.importRuns(src.exportRuns(), { chunkSize: 2, onProgress: (p) => progress.push({ ...p }) });
      assert.deepEqual(r, { imported: 3, skipped: 0, deferred: false });
      assert.deepEqual(progress, [
        { imported: 2, skipped: 0, total: undefined },
        { imported: 3, skipped: 0, total: undefined },
      ]);
      for (const run of exported) assert.deepEqual(await dst.getRun(run.id), run);
      assert.deepEqual(ids(await dst.listRuns({ labels: { tenant: "acme" } })), [exported[0].id]);
      assert.deepEqual(ids(await dst.listRuns({ search: "failed" })), [exported[1].id], "imported runs are searchable");
      assert.deepEqual(
        (await dst.getRunEvents(exported[0].id)).map((e) => [e.kind, e.data]),
        [["imported", { status: "completed" }]],
      );
      // The pending one is worked like any other.
      const w = dst.worker({ jobs: [send] });
      await w.processUntilIdle();
      assert.equal((await dst.getRun(exported[2].id)).status, "pending", "not due yet");
      // Again: conflicts, then skip.
      await rejectsCode(dst.importRuns(exported), "DURQ_INVALID_INPUT", /run 0 of the import/);
      assert.deepEqual(await dst.importRuns(exported, { onConflict: "skip" }), { imported: 0, skipped: 3, deferred: false });
      await src.close();
      await dst.close();
    });

    test("importRuns rejects bad sources, options and runs, and keeps what is stored", async () => {
      const { db } = await openDb(kind);
      const kept = await db.enqueue(send, { to: "kept", subject: "" });
      for (const source of [undefined, null, 5, "runs", { job: "x" }]) await rejectsCode(db.importRuns(source), "DURQ_INVALID_INPUT");
      for (const options of [
        { onConflict: "merge" },
        { deferIndex: "sometimes" },
        { chunkSize: 0 },
        { chunkSize: 10_001 },
        { onProgress: 5 },
        { surprise: 1 },
      ]) {
        await rejectsCode(db.importRuns([], options), "DURQ_INVALID_INPUT");
      }
      const good = { job: "search-send", input: { to: "new" } };
      for (const bad of [
        { job: "x" },
        { input: 1 },
        { job: "x", input: 1n },
        { job: "x", input: 1, status: "running" },
        { job: "x", input: 1, id: "nope" },
        7,
        null,
      ]) {
        await rejectsCode(db.importRuns([good, bad]), "DURQ_INVALID_INPUT", /run 1 of the import/);
      }
      assert.deepEqual(await db.stats(), { pending: 1, leased: 0, completed: 0, failed: 0, cancelled: 0 });
      // A source that throws stops the import; the chunks before it stay.
      async function* broken() {
        yield good;
        yield good;
        throw new Error("source broke");
      }
      await assert.rejects(db.importRuns(broken(), { chunkSize: 1 }), /source broke/);
      assert.equal((await db.stats()).pending, 3);
      assert.equal((await db.getRun(kept.id)).status, "pending");
      await db.close();
    });

    test("a deferred import drops the index triggers, rebuilds once at the end, also when it fails", async () => {
      const { db } = await openDb(kind);
      await db.enqueue(send, { to: "before", subject: "old words" });
      let seenStale = false;
      const r = await db.importRuns(
        Array.from({ length: 25 }, (_, i) => ({ job: "search-send", input: { subject: `bulk item ${i}` } })),
        {
          deferIndex: true,
          chunkSize: 10,
          onProgress: async () => {
            // While deferred, search says the index is stale; the rest works.
            await rejectsCode(db.listRuns({ search: "bulk" }), "DURQ_SEARCH_STALE");
            assert.equal((await db.getSearchStatus()).deferred, true);
            seenStale = true;
          },
        },
      );
      assert.deepEqual(r, { imported: 25, skipped: 0, deferred: true });
      assert.ok(seenStale);
      assert.deepEqual(await db.getSearchStatus(), { deferred: false, openError: null });
      assert.equal((await db.listRuns({ search: "bulk", limit: 100 })).runs.length, 25);
      assert.equal((await db.listRuns({ search: "old" })).runs.length, 1);
      const later = await db.enqueue(send, { to: "after", subject: "fresh" });
      assert.deepEqual(ids(await db.listRuns({ search: "fresh" })), [later.id], "triggers are back");
      // A failing import restores too.
      await rejectsCode(db.importRuns([{ job: "search-send", input: { subject: "failing" } }, { job: "" }], { deferIndex: true }), "DURQ_INVALID_INPUT");
      assert.equal((await db.getSearchStatus()).deferred, false);
      assert.deepEqual(await db.restoreSearchIndex(), { changed: false, triggers: 0 });
      // "auto" defers only large imports.
      assert.equal((await db.importRuns([{ job: "search-send", input: 1 }])).deferred, false);
      const big = await db.importRuns(Array.from({ length: DEFER_MIN_RUNS }, (_, i) => ({ job: "search-send", input: { n: `n${i}` } })));
      assert.equal(big.deferred, true);
      assert.equal((await db.listRuns({ search: "n77" })).runs.length, 1);
      await db.close();
    });
  });
}

test("an import killed with the index deferred is repaired at the next open, before any search", async () => {
  const path = join(tempDir(), "import-crash.db");
  const child = startChild("import-hang", path);
  assert.deepEqual([await child.next(), await child.next(), await child.next()], ["imported 100", "imported 200", "imported 300"]);
  child.child.kill("SIGKILL");
  assert.equal((await child.exited).signal, "SIGKILL");
  const db = await open({ path });
  assert.deepEqual(await db.getSearchStatus(), { deferred: false, openError: null });
  assert.equal((await db.listRuns({ search: "zebra", limit: 1000 })).runs.length, 300, "imported runs are indexed");
  assert.equal((await db.listRuns({ search: "before" })).runs.length, 1, "so are the runs before");
  const fresh = await db.enqueue("crash-import", { note: "after the crash" });
  assert.deepEqual(ids(await db.listRuns({ search: "after" })), [fresh.id], "the triggers are back");
  assert.deepEqual(await db.integrityCheck(), ["ok"]);
  await db.close();
});
