// The jobs of the dashboard, imported by worker.js (handlers run in the
// worker; the page enqueues them by name).
//
// Every step is checkpointed with step.run: its output is stored when it
// ends, so after a reload (which kills the worker mid-run) the next attempt
// gets the stored outputs back instead of running those steps again. Each
// step's output says which attempt ran it, and progress counts the steps
// replayed, so the dashboard can show that a resumed run skipped them.

import { defineJob } from "durq";

/** Waits `ms`, or rejects when the run is cancelled or its lease is lost. */
function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(t);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

/** A job of checkpointed steps, each taking 300-600 ms; fails its first `failAttempts` attempts at the last step. */
function stepsJob(name, steps) {
  return defineJob({
    name,
    retry: { maxAttempts: 3, backoff: { initialMs: 1000, factor: 2, maxMs: 10_000, jitter: 0.25 } },
    async run(step, { failAttempts = 0 } = {}) {
      const outputs = [];
      let replayed = 0;
      for (const [i, stepName] of steps.entries()) {
        let ran = false;
        const output = await step.run(stepName, async () => {
          ran = true;
          await sleep(300 + Math.floor(Math.random() * 300), step.signal);
          if (i === steps.length - 1 && step.attempt <= failAttempts) {
            throw new Error(`${stepName} failed on attempt ${step.attempt} (asked to fail ${failAttempts})`);
          }
          return { step: stepName, attempt: step.attempt };
        });
        if (!ran) replayed++;
        outputs.push(output);
        await step.progress({ done: i + 1, total: steps.length, step: stepName, replayed });
        if (ran) void step.log(`${stepName} done (attempt ${step.attempt})`);
      }
      return { steps: outputs, replayed };
    },
  });
}

/** Renders a video: five steps. */
export const render = stepsJob("render", ["fetch", "decode", "filter", "encode", "upload"]);
/** Exports a report: two steps. */
export const exportReport = stepsJob("export", ["query", "write"]);

export const jobs = [render, exportReport];
