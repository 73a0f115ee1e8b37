// The Durable Object file layer (js/src/workerd/storage.ts) outside workerd:
// its file semantics, and the wasm core on it with synchronous: "external"
// (journal_mode=MEMORY), each commit inside a transactionSync that rolls its
// KV writes back when it throws, as a Durable Object's does. A fake
// ctx.storage (a Map) stands in for workerd here; js/test/workerd.test.mjs
// runs the same code in real workerd.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { open } from "durq";
import * as glue from "../../pkg/wasm/durq.js";
import { BLOCK_BYTES, durableObjectHostFs } from "../../pkg/dist/workerd/storage.js";

/** A fake SQLite-backed Durable Object storage: KV in a Map, transactions that snapshot it. */
function fakeStorage() {
  const map = new Map();
  let failAfterPuts = Infinity;
  const kv = {
    get: (k) => {
      const v = map.get(k);
      return v instanceof Uint8Array ? v.slice() : v; // values come back as copies (structured clone)
    },
    put: (k, v) => {
      if (failAfterPuts-- <= 0) throw Object.assign(new Error("storage write failed (injected)"), { code: "EIO" });
      map.set(k, v instanceof Uint8Array ? v.slice() : v);
    },
    delete: (k) => map.delete(k),
  };
  return {
    map,
    kv,
    failAfter(n) {
      failAfterPuts = n;
    },
    heal() {
      failAfterPuts = Infinity;
    },
    transactionSync(fn) {
      const snapshot = new Map(map);
      try {
        return fn();
      } catch (e) {
        map.clear();
        for (const [k, v] of snapshot) map.set(k, v);
        throw e;
      }
    },
  };
}

const T0 = 1_893_456_000_000;
const enqueueOps = (n, from = 0) =>
  JSON.stringify(Array.from({ length: n }, (_, i) => ({ op: "enqueue", args: { job: "j", input: { n: from + i, pad: "x".repeat(200) } } })));

async function core(storage) {
  await (await open({ memory: true })).close(); // instantiates the wasm module
  return glue.Core.openFile("/durq.db", durableObjectHostFs(storage.kv), 7, "external");
}

describe("Durable Object storage (fake ctx.storage)", () => {
  test("files: sparse reads are zeros, writes across blocks, truncate, delete", () => {
    const s = fakeStorage();
    const fs = durableObjectHostFs(s.kv);
    assert.throws(() => fs.open("/a", "readWrite"), { code: "ENOENT" });
    const fd = fs.open("/a", "create");
    assert.throws(() => fs.open("/a", "createNew"), { code: "EEXIST" });
    assert.equal(fs.size(fd), 0);
    const data = Uint8Array.from({ length: BLOCK_BYTES + 100 }, (_, i) => i % 251);
    fs.write(fd, data, 10);
    assert.equal(fs.size(fd), BLOCK_BYTES + 110);
    const back = new Uint8Array(BLOCK_BYTES + 200).fill(9);
    assert.equal(fs.read(fd, back, 0), BLOCK_BYTES + 110, "short read at end of file");
    assert.deepEqual(back.subarray(0, 10), new Uint8Array(10), "a gap reads as zeros");
    assert.deepEqual(back.subarray(10, BLOCK_BYTES + 110), data);
    fs.truncate(fd, 50);
    assert.equal(fs.size(fd), 50);
    assert.equal(s.map.get(`durq:b:/a#1`), undefined, "blocks past the end are deleted");
    fs.truncate(fd, 3 * BLOCK_BYTES);
    const tail = new Uint8Array(100);
    assert.equal(fs.read(fd, tail, 40), 100);
    assert.deepEqual(tail.subarray(0, 10), data.subarray(30, 40));
    assert.deepEqual(tail.subarray(10), new Uint8Array(90), "bytes cut by truncate do not come back when the file grows again");
    fs.close(fd);
    assert.equal(fs.exists("/a"), true);
    fs.delete("/a");
    assert.equal(fs.exists("/a"), false);
    assert.deepEqual([...s.map.keys()], [], "nothing left in KV");
    assert.throws(() => fs.read(99, tail, 0), { code: "EBADF" });
  });

  test("the core on it: commits persist across a reopen, each page one KV value", async () => {
    const s = fakeStorage();
    let c = await core(s);
    const out = JSON.parse(s.transactionSync(() => c.apply(T0, enqueueOps(300))));
    assert.equal(out.length, 300);
    assert.ok(out.every((o) => "ok" in o));
    c.close();
    const blocks = [...s.map.entries()].filter(([k]) => k.startsWith("durq:b:/durq.db#"));
    assert.ok(blocks.length > 10, `${blocks.length} blocks`);
    assert.ok(
      blocks.every(([, v]) => v.length === BLOCK_BYTES),
      "whole pages",
    );
    assert.equal([...s.map.keys()].filter((k) => /journal|wal/.test(k)).length, 0, "no journal or WAL file: the transaction is the journal");
    c = await core(s);
    assert.equal(JSON.parse(c.stats()).pending ?? c.stats().pending, 300);
    c.close();
  });

  test("a commit whose storage write fails mid-way leaves the previous commit intact (the transaction rolls back)", async () => {
    const s = fakeStorage();
    let c = await core(s);
    s.transactionSync(() => c.apply(T0, enqueueOps(100)));
    const before = new Map(s.map);
    s.failAfter(3); // the next commit dies after 3 page writes
    assert.throws(() => s.transactionSync(() => c.apply(T0 + 1, enqueueOps(500, 100))));
    s.heal();
    assert.deepEqual(new Map(s.map), before, "KV exactly as after the first commit");
    // As after a crash: a new instance opens what storage holds.
    try {
      c.close();
    } catch {
      // the failed connection may refuse to close cleanly
    }
    c = await core(s);
    const stats = typeof c.stats() === "string" ? JSON.parse(c.stats()) : c.stats();
    assert.equal(stats.pending, 100, "the acknowledged runs, and none of the failed commit");
    const check = c.integrityCheck();
    assert.deepEqual(typeof check === "string" ? JSON.parse(check) : check, ["ok"]);
    // and it goes on writing
    s.transactionSync(() => c.apply(T0 + 2, enqueueOps(10, 600)));
    const after = typeof c.stats() === "string" ? JSON.parse(c.stats()) : c.stats();
    assert.equal(after.pending, 110);
    c.close();
  });
});
