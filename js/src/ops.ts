/**
 * The write operations the façade sends to the core: one builder per
 * operation, each taking typed arguments and returning the operation's text
 * for the write queue. Every builder goes through {@link encode}, the one
 * place that knows how an operation is laid out on the wire:
 * `{"op":"<name>","args":{...}}` (`{"op":"<name>"}` for the operations
 * without arguments), `op` first so the core reads `args` in one pass.
 *
 * The names and the shapes of `args` are not written here: they are the
 * generated {@link Op} union (`generated/boundary.ts`, made from the Rust
 * types in `src/op.rs` by ts-rs and checked by `tests/boundary.rs`), and
 * `encode` only takes a name of that union with fields of its `args`, so a
 * builder that drifts from the core fails to compile.
 *
 * User values (inputs, outputs, progress, imported runs) arrive already
 * serialized, as JSON text: they were validated and serialized once, by
 * `toJsonText`, and are spliced in verbatim. The clock is not part of an
 * operation: the write queue passes one `now` per group commit.
 * Internal: not exported from the package.
 *
 * @module

 */

import type { Op } from "./generated/boundary.js";
import type { Backoff } from "./job.js";
import type { RunError } from "./types.js";

/** The name of a write operation: the `op` of the generated {@link Op} union. */
export type OpName = Op["op"];
/** The operations that take `args`. */
type WithArgs = Extract<Op, { args: unknown }>;
/** The name of an operation that takes `args`. */
type ArgsOpName = WithArgs["op"];
/** The `args` of operation `K`, as the core's Rust types declare them. */
export type ArgsOf<K extends ArgsOpName> = Extract<WithArgs, { op: K }>["args"];
/** A value the caller may hold read-only (arrays as `readonly T[]`). */
type Loose<T> = { [P in keyof T]: T[P] extends (infer U)[] ? readonly U[] : T[P] };

/**
 * The text of operation `op`: `{"op":"<op>","args":{...}}` with `fields`
 * serialized by `JSON.stringify` (an `undefined` field is left out), then
 * each `raw` entry as `"<key>":<text>`, its text (already JSON) spliced in
 * verbatim. `fields` and the keys of `raw` together are the operation's
 * `args` ({@link ArgsOf}).
 */
function encode<K extends ArgsOpName, R extends keyof ArgsOf<K> & string = never>(
  op: K,
  fields: Loose<Omit<ArgsOf<K>, R>>,
  raw?: { [P in R]: string },
): string {
  return `{"op":${JSON.stringify(op)},"args":${jsonObject(fields as Record<string, unknown>, raw)}}`;
}

/** The text of an operation without arguments: `{"op":"<op>"}`. */
function encodeBare(op: Exclude<OpName, ArgsOpName>): string {
  return `{"op":${JSON.stringify(op)}}`;
}

/** A JSON object: `fields` by `JSON.stringify`, then the `raw` texts spliced in verbatim, in key order. */
function jsonObject(fields: Record<string, unknown>, raw?: Readonly<Record<string, string>>): string {
  const s = JSON.stringify(fields);
  if (raw === undefined) return s;
  let extra = "";
  for (const k in raw) extra += `,${JSON.stringify(k)}:${raw[k]}`;
  // `{}` has no field for the first raw entry to follow.
  return s === "{}" ? `{${extra.slice(1)}}` : `${s.slice(0, -1)}${extra}}`;
}

/** A JSON array of already-serialized items. */
function jsonArray(items: readonly string[]): string {
  return `[${items.join(",")}]`;
}

// ---- runs and batches -------------------------------------------------------

/** A new run: the fields of `enqueue`, and of each run of `enqueueMany` and `enqueueBatch`; validated. */
export interface RunArgs {
  /** The job's name. */
  job: string;
  /** Attempts allowed (the job's retry policy). */
  maxAttempts: number;
  /** Delays between attempts (the job's retry policy). */
  backoff: Readonly<Backoff>;
  /** Queue name; the core's default (`"default"`) when absent. Absent for the runs of a batch (they are in its queue). */
  queue?: string | undefined;
  /** Labels (validated). */
  labels?: Record<string, string> | undefined;
  /** Idempotency key. */
  idempotencyKey?: string | undefined;
  /** Concurrency key. */
  concurrencyKey?: string | undefined;
  /** Priority, a 32-bit integer. */
  priority?: number | undefined;
  /** Not claimed before this time, ms since the epoch. */
  runAt?: number | undefined;
  /** The input's JSON text (serialized once, when validated). */
  inputJson: string;
}

/** The fields of a new run (all of `NewRun` but its input, which is spliced in). */
function runFields(r: RunArgs): Loose<Omit<ArgsOf<"enqueue">, "input">> {
  return {
    job: r.job,
    maxAttempts: r.maxAttempts,
    backoff: r.backoff,
    queue: r.queue,
    labels: r.labels,
    idempotencyKey: r.idempotencyKey,
    concurrencyKey: r.concurrencyKey,
    priority: r.priority,
    runAt: r.runAt,
  };
}

/** The JSON object of a new run inside `enqueueMany` and `enqueueBatch`. */
function runObject(r: RunArgs): string {
  return jsonObject(runFields(r) as Record<string, unknown>, { input: r.inputJson });
}

/** `enqueue`: one new run. */
export function enqueue(run: RunArgs): string {
  return encode("enqueue", runFields(run), { input: run.inputJson });
}

/** `enqueueMany`: several new runs, all or none. */
export function enqueueMany(runs: readonly RunArgs[]): string {
  return encode("enqueueMany", {}, { runs: jsonArray(runs.map(runObject)) });
}

/** Arguments of {@link enqueueBatch}. */
export interface EnqueueBatchArgs {
  /** Queue of the batch and its runs. */
  queue: string;
  /** Labels of the batch itself (validated). */
  labels?: Record<string, string> | undefined;
  /** The batch's idempotency key. */
  idempotencyKey?: string | undefined;
  /** Its runs (without `queue`). */
  runs: readonly RunArgs[];
}

/** `enqueueBatch`: a batch row and its runs, all or none. */
export function enqueueBatch(a: EnqueueBatchArgs): string {
  return encode("enqueueBatch", { queue: a.queue, labels: a.labels, idempotencyKey: a.idempotencyKey }, { runs: jsonArray(a.runs.map(runObject)) });
}

/** `cancelBatch`: cancels every live run of batch `id`. */
export function cancelBatch(a: { id: string }): string {
  return encode("cancelBatch", { id: a.id });
}

/** `reconcileBatches`; `graceMs` absent: the core's default (60 000). */
export function reconcileBatches(a: { graceMs?: number | undefined }): string {
  return encode("reconcileBatches", { graceMs: a.graceMs });
}

/** `cancel`: cancels run `id`. */
export function cancel(a: { id: string }): string {
  return encode("cancel", { id: a.id });
}

/** `deleteRun`: deletes run `id`. */
export function deleteRun(a: { id: string }): string {
  return encode("deleteRun", { id: a.id });
}

/** `retrigger`: a new run from finished run `id`. */
export function retrigger(a: { id: string }): string {
  return encode("retrigger", { id: a.id });
}

/** Arguments of {@link purgeRuns} and {@link purgeBatches}. */
export interface PurgeArgs {
  /** Terminal rows that finished before this time, ms since the epoch. */
  olderThan: number;
  /** Most rows deleted by the operation. */
  limit: number;
}

/** `purgeRuns`: deletes terminal runs that finished before `olderThan`. */
export function purgeRuns(a: PurgeArgs): string {
  return encode("purgeRuns", { olderThan: a.olderThan, limit: a.limit });
}

/** `purgeBatches`: deletes terminal batches that finished before `olderThan`. */
export function purgeBatches(a: PurgeArgs): string {
  return encode("purgeBatches", { olderThan: a.olderThan, limit: a.limit });
}

/**
 * `expireLeases`, as the whole JSON array `core.apply(now, ops)` takes:
 * sent straight to the core right after a file database opens, before its
 * write queue exists.
 */
export function expireLeasesBatch(): string {
  return jsonArray([encodeBare("expireLeases")]);
}

/** `expireLeasesOf`: the leases of the workers whose id starts with `ownerPrefix` (a process that is gone) expire now. */
export function expireLeasesOf(a: { ownerPrefix: string }): string {
  return encode("expireLeasesOf", { ownerPrefix: a.ownerPrefix });
}

/** {@link expireLeasesOf} as the whole JSON array `core.apply(now, ops)` takes (sent by a process that just took a shared file over, before its write queue runs). */
export function expireLeasesOfBatch(ownerPrefix: string): string {
  return jsonArray([expireLeasesOf({ ownerPrefix })]);
}

// ---- search index and import --------------------------------------------------

/** `restoreSearchIndex`: recreates the search index triggers and rebuilds the index, if deferred. */
export function restoreSearchIndex(): string {
  return encodeBare("restoreSearchIndex");
}

/** `deferSearchIndex`: snapshots and drops the search index triggers. */
export function deferSearchIndex(): string {
  return encodeBare("deferSearchIndex");
}

/** Arguments of {@link importRuns}. */
export interface ImportRunsArgs {
  /** What a run stored already does. */
  onConflict: "error" | "skip";
  /** Index of the first run in the whole import (for messages). */
  offset: number;
  /** The runs' JSON texts (serialized once, when validated). */
  runsJson: readonly string[];
}

/** `importRuns`: one chunk of an import. */
export function importRuns(a: ImportRunsArgs): string {
  return encode("importRuns", { onConflict: a.onConflict, offset: a.offset }, { runs: jsonArray(a.runsJson) });
}

// ---- effects -------------------------------------------------------------------

/** Arguments of {@link putEffect}. */
export interface PutEffectArgs {
  /** The effect's name. */
  name: string;
  /** The effect's version. */
  version: number;
  /** The input's canonical JSON text (RFC 8785), sent as a string. */
  input: string;
  /** When the output was computed, ms (stored as its `createdAt`). */
  at: number;
  /** The output's JSON text. */
  outputJson: string;
}

/** `putEffect`: stores an effect output. */
export function putEffect(a: PutEffectArgs): string {
  return encode("putEffect", { name: a.name, version: a.version, input: a.input, at: a.at }, { output: a.outputJson });
}

/** `deleteEffects`: the stored outputs of effect `name`, or of every effect when `name` is absent. */
export function deleteEffects(a: { name?: string | undefined }): string {
  return encode("deleteEffects", { name: a.name });
}

// ---- workers ---------------------------------------------------------------------

/** Arguments of {@link claim}. */
export interface ClaimArgs {
  /** The queue to claim from. */
  queue: string;
  /** Only runs of these job names. */
  jobs: readonly string[];
  /** The lease owner. */
  workerId: string;
  /** Lease length, ms. */
  leaseMs: number;
  /** Most runs claimed. */
  limit: number;
}

/** `claim`: leases due runs (and recovers expired leases first). */
export function claim(a: ClaimArgs): string {
  return encode("claim", { queue: a.queue, jobs: a.jobs, workerId: a.workerId, leaseMs: a.leaseMs, limit: a.limit });
}

/** The lease a write of a lease holder is made under. */
export interface LeaseArgs {
  /** The run's id. */
  id: string;
  /** The fencing token from the claim. */
  token: number;
}

/** `heartbeat`: renews the lease for `leaseMs`. */
export function heartbeat(a: LeaseArgs & { leaseMs: number }): string {
  return encode("heartbeat", { id: a.id, token: a.token, leaseMs: a.leaseMs });
}

/** `saveStep`: stores the output of step `name`. */
export function saveStep(a: LeaseArgs & { name: string; outputJson: string }): string {
  return encode("saveStep", { id: a.id, token: a.token, name: a.name }, { output: a.outputJson });
}

/** `progress`: stores the run's progress. */
export function progress(a: LeaseArgs & { progressJson: string }): string {
  return encode("progress", { id: a.id, token: a.token }, { progress: a.progressJson });
}

/** `log`: appends a log line. */
export function log(a: LeaseArgs & { level: string; message: string }): string {
  return encode("log", { id: a.id, token: a.token, level: a.level, message: a.message });
}

/** `complete`: the run completed with an output. */
export function complete(a: LeaseArgs & { outputJson: string }): string {
  return encode("complete", { id: a.id, token: a.token }, { output: a.outputJson });
}

/** Arguments of {@link fail}. */
export interface FailArgs extends LeaseArgs {
  /** What the handler threw (bounded, well-formed strings). */
  error: RunError;
  /** A number in [0, 1), picks the backoff jitter. */
  random: number;
  /** `false` fails the run for good. */
  retryable: boolean;
}

/** `fail`: the attempt failed; the run is retried or fails. */
export function fail(a: FailArgs): string {
  return encode("fail", { id: a.id, token: a.token, error: a.error, random: a.random, retryable: a.retryable });
}

// ---- alarms ------------------------------------------------------------------------

/** An alarm's address: its namespace and actor. */
export interface AlarmArgs {
  /** The alarm namespace. */
  namespace: string;
  /** The actor id. */
  actorId: string;
}

/** `setAlarm`: the actor's alarm at `time` (ms). */
export function setAlarm(a: AlarmArgs & { time: number }): string {
  return encode("setAlarm", { namespace: a.namespace, actorId: a.actorId, time: a.time });
}

/** `deleteAlarm`: removes the actor's alarm. */
export function deleteAlarm(a: AlarmArgs): string {
  return encode("deleteAlarm", { namespace: a.namespace, actorId: a.actorId });
}

/** `alarmDone`: the handler of alarm `version` resolved. */
export function alarmDone(a: AlarmArgs & { version: number }): string {
  return encode("alarmDone", { namespace: a.namespace, actorId: a.actorId, version: a.version });
}

/** `alarmFailed`: the handler of alarm `version` threw; `random` in [0, 1) picks the retry's jitter. */
export function alarmFailed(a: AlarmArgs & { version: number; random: number }): string {
  return encode("alarmFailed", { namespace: a.namespace, actorId: a.actorId, version: a.version, random: a.random });
}

// ---- schedules and queues ------------------------------------------------------------

/** Arguments of {@link schedule}. */
export interface ScheduleArgs {
  /** The schedule id. */
  id: string;
  /** The cron expression. */
  cron: string;
  /** IANA time zone (the core's default, `"UTC"`, when absent). */
  timezone?: string | undefined;
  /** Catch-up policy (the core's default, `"latest"`, when absent). */
  catchUp?: "latest" | "all" | "none" | undefined;
  /** The run each slot makes (no `runAt`, no `idempotencyKey`). */
  run: RunArgs;
}

/** `schedule`: creates or replaces a cron schedule. */
export function schedule(a: ScheduleArgs): string {
  return encode("schedule", { id: a.id, cron: a.cron, timezone: a.timezone, catchUp: a.catchUp }, { run: runObject(a.run) });
}

/** `deleteSchedule`: removes a schedule (its runs stay). */
export function deleteSchedule(a: { id: string }): string {
  return encode("deleteSchedule", { id: a.id });
}

/** `fireSchedules`: enqueues the runs of the slots due at the commit's `now`. */
export function fireSchedules(a: { limit?: number | undefined }): string {
  return encode("fireSchedules", { limit: a.limit });
}

/** `pauseQueue`: the queue's runs are not claimed until {@link resumeQueue}. */
export function pauseQueue(a: { queue: string }): string {
  return encode("pauseQueue", { queue: a.queue });
}

/** `resumeQueue`: the queue's runs are claimed again. */
export function resumeQueue(a: { queue: string }): string {
  return encode("resumeQueue", { queue: a.queue });
}
