// examples/browser: the runs dashboard, built with Vite and driven in
// headless Chromium. Runs are enqueued through its form, filtered by label
// and status, and the page is reloaded while runs are mid-steps (which kills
// its worker): after the reload every run is still listed, the unfinished
// ones resume and complete, and the steps they had stored are replayed, not
// run again. A second test checks that a database that cannot open shows
// its error code on the page.

import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { build } from "vite";
import { launchChromium, pageLog, servePreview } from "../test-support/chromium.mjs";

const ROOT = fileURLToPath(new URL("../../examples/browser/", import.meta.url));
// Written into the (gitignored) build folder, so a test run leaves the work
// tree clean; DURQ_SCREENSHOT=examples/browser/screenshot.png refreshes the
// committed copy the example's README shows.
const SCREENSHOT = process.env.DURQ_SCREENSHOT ?? join(ROOT, "dist", "screenshot.png");
const WAIT = { timeout: 15_000 };

let browser;
let server;

before(async () => {
  await build({ root: ROOT, configFile: join(ROOT, "vite.config.js"), logLevel: "error" });
  server = await servePreview(ROOT);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

/** A fresh browser context (so a fresh OPFS) and page; `log` holds the page's console errors, shown when `body` fails. */
async function withPage(body) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  const page = await context.newPage();
  const log = pageLog(page);
  try {
    await body(page);
  } catch (e) {
    if (log.length > 0) e.message += `\n--- page log ---\n${log.join("\n")}`;
    throw e;
  } finally {
    await context.close();
  }
}

/**
 * Waits until the table shows the runs of filter `shown` (`{ tenant, status }`,
 * "" for any) and `pred(rows, arg)` holds; returns the rows, as
 * `{ id, job, status, tenant, done, total, replayed, attempt }`. `pred` is
 * sent to the page as source: it sees only its arguments.
 */
async function waitForRows(page, pred, arg, shown = { tenant: "", status: "" }) {
  const handle = await page.waitForFunction(
    ([src, a, shown]) => {
      const tbody = document.querySelector("#runs");
      if (tbody.dataset.tenant !== shown.tenant || tbody.dataset.status !== shown.status) return false;
      const rs = [...tbody.rows].map((tr) => ({
        ...tr.dataset,
        done: Number(tr.dataset.done),
        total: Number(tr.dataset.total),
        replayed: Number(tr.dataset.replayed),
        attempt: Number(tr.dataset.attempt),
      }));
      // The predicate crosses into the page as source text (Playwright passes no functions).
      // biome-ignore lint/security/noGlobalEval: indirect eval of the test's own predicate, inside the test page
      // biome-ignore lint/complexity/noCommaOperator: `(0, eval)` is the indirect-eval idiom (global scope)
      return (0, eval)(`(${src})`)(rs, a) && rs;
    },
    [pred.toString(), arg, { tenant: "", status: "", ...shown }],
    WAIT,
  );
  return handle.jsonValue();
}

/** Fills the enqueue form and submits it. */
async function enqueue(page, { job, tenant, count = 1, failAttempts = 0 }) {
  await page.selectOption("#enqueue select[name=job]", job);
  await page.selectOption("#enqueue select[name=tenant]", tenant);
  await page.fill("#enqueue input[name=count]", String(count));
  await page.fill("#enqueue input[name=failAttempts]", String(failAttempts));
  await page.click("#enqueue button"); // waits while a previous submit keeps it disabled
}

async function setFilter(page, { tenant = "", status = "" }) {
  await page.selectOption("#filter select[name=tenant]", tenant);
  await page.selectOption("#filter select[name=status]", status);
}

test("the dashboard enqueues, filters, and resumes runs after a reload without rerunning stored steps", async () => {
  await withPage(async (page) => {
    await page.goto(server.url);
    await page.waitForSelector("body[data-ready=true]", WAIT);

    await enqueue(page, { job: "render", tenant: "acme", count: 2 });
    await enqueue(page, { job: "render", tenant: "globex" });
    await enqueue(page, { job: "export", tenant: "globex", failAttempts: 1 }); // fails once, then completes
    await enqueue(page, { job: "export", tenant: "acme", failAttempts: 3 }); // fails all its 3 attempts
    const all = await waitForRows(page, (rs) => rs.length === 5);
    const byId = new Map(all.map((r) => [r.id, r]));
    const ids = (pred) =>
      all
        .filter(pred)
        .map((r) => r.id)
        .sort();
    assert.deepEqual(all.map((r) => `${r.job}/${r.tenant}`).sort(), ["export/acme", "export/globex", "render/acme", "render/acme", "render/globex"]);

    // Two runs at a time make progress: step counts grow.
    await waitForRows(page, (rs) => rs.some((r) => r.status === "leased" && r.done >= 1));

    // The label filter shows globex's runs only, the status filter narrows further.
    await setFilter(page, { tenant: "globex" });
    let shown = await waitForRows(page, () => true, null, { tenant: "globex" });
    assert.deepEqual(
      shown.map((r) => r.id).sort(),
      ids((r) => r.tenant === "globex"),
    );
    await setFilter(page, { tenant: "acme", status: "leased" });
    shown = await waitForRows(page, () => true, null, { tenant: "acme", status: "leased" });
    assert.ok(
      shown.every((r) => r.status === "leased" && ids((x) => x.tenant === "acme").includes(r.id)),
      JSON.stringify(shown),
    );
    await setFilter(page, {});
    await waitForRows(page, (rs) => rs.length === 5);

    // Reload while a render run is mid-steps: the page's worker dies with it.
    // Runs seen with two steps or more to go (>= 600 ms of work) cannot end
    // before the reload lands: those are the ones checked for resuming.
    const before = await waitForRows(page, (rs) => rs.some((r) => r.job === "render" && r.status === "leased" && r.done >= 2 && r.done <= r.total - 2));
    const midSteps = before.filter((r) => r.status === "leased" && r.done >= 1 && r.done <= r.total - 2);
    assert.ok(midSteps.length >= 1);
    await page.reload();
    const listed = await waitForRows(page, () => true);
    assert.deepEqual(listed.map((r) => r.id).sort(), [...byId.keys()].sort(), "every run is still listed after the reload");

    // Every run ends: the export asked to fail 3 times fails, the others complete.
    const failing = all.find((r) => r.job === "export" && r.tenant === "acme").id;
    const end = await waitForRows(page, (rs, failing) => rs.length === 5 && rs.every((r) => r.status === (r.id === failing ? "failed" : "completed")), failing);
    const endById = new Map(end.map((r) => [r.id, r]));
    assert.equal(endById.get(failing).attempt, 3);
    await page.waitForSelector(`#runs tr[data-id="${failing}"] .err`, WAIT);

    // The runs cut off by the reload were resumed by a new attempt that
    // replayed their stored steps: each step is stored once, and those
    // stored before the reload kept attempt 1 (they did not run again).
    for (const m of midSteps) {
      const r = endById.get(m.id);
      assert.ok(r.attempt >= 2, `run ${m.id} resumed in a new attempt (attempt ${r.attempt})`);
      assert.ok(r.replayed >= m.done, `run ${m.id}: ${r.replayed} steps replayed, ${m.done} were done before the reload`);
    }
    const details = await page.evaluate(
      (ids) => Promise.all(ids.map(async (id) => ({ id, run: await globalThis.db.getRun(id), steps: await globalThis.db.getSteps(id) }))),
      [...byId.keys()],
    );
    for (const { id, run, steps } of details) {
      const names = steps.map((s) => s.name);
      assert.equal(new Set(names).size, names.length, `run ${id}: each step stored once`);
      if (run.status !== "completed") continue;
      assert.equal(steps.length, run.progress.total);
      // The handler's output holds what each step returned: the stored outputs, attempt included.
      assert.deepEqual(
        run.output.steps.map((s) => s.attempt),
        run.output.steps.map((s) => steps.find((x) => x.name === s.step).attempt),
        `run ${id}`,
      );
      const early = steps.filter((s) => s.attempt < run.attempt).length;
      assert.equal(run.output.replayed, early, `run ${id}: steps stored by earlier attempts are the ones replayed`);
    }
    for (const m of midSteps) {
      const { steps } = details.find((d) => d.id === m.id);
      assert.ok(steps.filter((s) => s.attempt === 1).length >= m.done, `run ${m.id}: the ${m.done} steps done before the reload were stored by attempt 1`);
    }

    await page.screenshot({ path: SCREENSHOT });
  });
});

test("the dashboard shows the error code when the worker cannot open its database", async () => {
  await withPage(async (page) => {
    await page.goto(`${server.url}?db=${encodeURIComponent("../not a name")}`);
    const error = await page.waitForSelector("#error:not([hidden])", WAIT);
    const code = await error.getAttribute("data-code");
    assert.match(code, /^DURQ_/);
    assert.match(await error.textContent(), new RegExp(`${code}: .+`));
  });
});
