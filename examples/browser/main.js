// The dashboard page: enqueues runs and lists them, through the worker that
// owns the database (connect() forwards each call to worker.js, which runs
// serve()). The table is redrawn on the database's events and by a light
// poll (which also picks up what other tabs do).

import { connect } from "durq";

const $ = (sel) => document.querySelector(sel);
const dbName = new URLSearchParams(location.search).get("db") ?? "dashboard.db";
const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module", name: dbName });
const db = connect(worker);
globalThis.db = db; // to try calls from the devtools console: await db.getSteps(id)

// ---- errors --------------------------------------------------------------

const errorBox = $("#error");
let errorFrom = null; // "refresh" errors clear on the next good refresh; others stay

/** Shows `e` (a DurqError keeps its `code`) in the error box. */
function showError(what, e, from = "other") {
  const code = e?.code ?? e?.name ?? "Error";
  errorBox.textContent = `${what}: ${code}: ${e?.message ?? String(e)}`;
  errorBox.dataset.code = code;
  errorBox.hidden = false;
  errorFrom = from;
}

function clearRefreshError() {
  if (errorFrom !== "refresh") return;
  errorBox.hidden = true;
  errorFrom = null;
}

worker.addEventListener("error", (e) => {
  e.preventDefault();
  showError("the worker failed", { code: "WORKER_ERROR", message: e.message || "it could not start (see the browser console)" });
});
worker.addEventListener("messageerror", () => showError("the worker failed", { code: "WORKER_ERROR", message: "a message could not be read" }));
db.on("error", ({ error, source }) => showError(`durq ${source} error`, error));

// ---- the table -----------------------------------------------------------

const tbody = $("#runs");
const filterForm = $("#filter");

function filter() {
  const f = { limit: 200 };
  const tenant = filterForm.tenant.value;
  const status = filterForm.status.value;
  if (tenant) f.labels = { tenant };
  if (status) f.status = status;
  return f;
}

function cell(text, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  if (text !== undefined) td.textContent = text;
  return td;
}

function row(run) {
  const tr = document.createElement("tr");
  const p = run.progress ?? {};
  const total = p.total ?? (run.job === "render" ? 5 : 2);
  const done = p.done ?? 0;
  Object.assign(tr.dataset, {
    id: run.id,
    job: run.job,
    status: run.status,
    tenant: run.labels.tenant ?? "",
    done,
    total,
    replayed: p.replayed ?? 0,
    attempt: run.attempt,
  });

  const status = cell(undefined, "status-cell");
  const badge = document.createElement("span");
  badge.className = `status ${run.status}`;
  badge.textContent = run.status;
  status.append(badge);
  if (run.error && run.status !== "completed") {
    const err = document.createElement("div");
    err.className = "err";
    const retry = run.status === "pending" ? ` (retry in ${Math.max(0, Math.ceil((run.runAt - Date.now()) / 1000))} s)` : "";
    err.textContent = run.error.message + retry;
    status.append(err);
  }

  const steps = cell(undefined, "steps");
  const bar = document.createElement("progress");
  bar.max = total;
  bar.value = done;
  steps.append(bar, `${done}/${total}`);
  if (p.replayed > 0) {
    const r = document.createElement("span");
    r.className = "replayed";
    r.textContent = ` · ${p.replayed} replayed`;
    steps.append(r);
  }

  const labels = Object.entries(run.labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
  tr.append(
    cell(run.id.slice(-8), "id"),
    cell(run.job, "job"),
    status,
    cell(`${run.attempt}/${run.maxAttempts}`, "attempt"),
    steps,
    cell(labels, "labels"),
    cell(new Date(run.createdAt).toLocaleTimeString(), "created"),
  );
  tr.firstChild.title = run.id;
  return tr;
}

const ROLES = {
  self: `OPFS ${dbName}, owned by this tab's worker`,
  other: `OPFS ${dbName}, owned by another tab's worker`,
  pending: "waiting for the database…",
};

let refreshing = false;
let again = false;
let timer;

/** Reads the runs matching the filter and redraws the table; calls made meanwhile coalesce into one more. */
async function refresh() {
  if (refreshing) {
    again = true;
    return;
  }
  refreshing = true;
  try {
    do {
      again = false;
      const f = filter();
      const [page, stats] = await Promise.all([db.listRuns(f), db.stats()]);
      tbody.replaceChildren(...page.runs.map(row));
      Object.assign(tbody.dataset, { tenant: f.labels?.tenant ?? "", status: f.status ?? "" }); // the filter shown
      $("#empty").hidden = page.runs.length > 0;
      $("#counts").textContent = Object.entries(stats)
        .map(([s, n]) => `${s} ${n}`)
        .join(" · ");
      $("#role").textContent = ROLES[db.role] ?? db.role;
      document.body.dataset.ready = "true";
      clearRefreshError();
    } while (again);
  } catch (e) {
    showError("listing runs failed", e, "refresh");
    $("#role").textContent = "no database (see the error above)";
  } finally {
    refreshing = false;
  }
}

/** A refresh soon (events come in bursts). */
function refreshSoon() {
  if (timer === undefined)
    timer = setTimeout(() => {
      timer = undefined;
      refresh();
    }, 50);
}

for (const name of [
  "run:enqueued",
  "run:leased",
  "run:progress",
  "run:completed",
  "run:failed",
  "run:retrying",
  "run:cancelled",
  "run:deleted",
  "run:lease-expired",
]) {
  db.on(name, refreshSoon);
}
setInterval(refresh, 2000);
filterForm.addEventListener("change", refresh);

// ---- enqueueing ----------------------------------------------------------

const enqueueForm = $("#enqueue");
enqueueForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = enqueueForm;
  const count = Math.max(1, Math.min(20, Number(f.count.value) || 1));
  const input = { failAttempts: Number(f.failAttempts.value) || 0 };
  const items = Array.from({ length: count }, () => ({ job: f.job.value, input, options: { labels: { tenant: f.tenant.value } } }));
  f.querySelector("button").disabled = true;
  try {
    await db.enqueueMany(items);
    await refresh();
  } catch (err) {
    showError("enqueue failed", err);
  } finally {
    f.querySelector("button").disabled = false;
  }
});

refresh();
