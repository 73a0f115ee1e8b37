/**
 * {@link checkRun}: the validation of a new run's job, input and options,
 * shared by the enqueues (`writes.ts`) and the cron schedules
 * (`schedules.ts`), which store the same run for every slot.
 * Internal: not exported from the package.
 *
 * @module
 */

import { resolveJob, type Job } from "./job.js";
import type * as ops from "./ops.js";
import type { EnqueueOptions } from "./options.js";
import { checkInt, checkLabels, checkName, checkOptions, checkTime, toJsonText } from "./validate.js";

/** The options of `enqueue`. */
export const ENQUEUE_OPTIONS = ["labels", "idempotencyKey", "concurrencyKey", "priority", "runAt", "queue"] as const;
const I32_MIN = -2_147_483_648;
const I32_MAX = 2_147_483_647;

/**
 * A new run of `enqueue`, `enqueueMany`, `enqueueBatch` or a schedule, validated (in
 * this order: job, input, options; messages start with `where`). The input
 * is serialized once, here.
 */
export function checkRun(jobArg: Job<any, any> | string, input: unknown, options: EnqueueOptions | undefined, where: string): ops.RunArgs {
  const job = resolveJob(jobArg, `${where}job`);
  const run: ops.RunArgs = { job: job.name, maxAttempts: job.retry.maxAttempts, backoff: job.retry.backoff, inputJson: toJsonText(`${where}input`, input) };
  if (options !== undefined) {
    const o = checkOptions(`${where}enqueue options`, options, ENQUEUE_OPTIONS);
    if (o.queue != null) run.queue = checkName(`${where}queue name`, o.queue);
    if (o.labels != null) run.labels = checkLabels(`${where}labels`, o.labels);
    if (o.idempotencyKey != null) run.idempotencyKey = checkName(`${where}idempotencyKey`, o.idempotencyKey);
    if (o.concurrencyKey != null) run.concurrencyKey = checkName(`${where}concurrencyKey`, o.concurrencyKey);
    if (o.priority != null) run.priority = checkInt(`${where}priority`, o.priority, I32_MIN, I32_MAX);
    if (o.runAt != null) run.runAt = checkTime(`${where}runAt`, o.runAt);
  }
  return run;
}
