/**
 * The public API shared by the Node entry (`index.ts`) and the browser entry
 * (`browser.ts`): everything but the platform each registers.
 *
 * @module
 */

export { open } from "./open.js";
export type { OpenTarget, OpenOptions } from "./open.js";
export type { WasmSource } from "./wasm-source.js";
export type { DurableObjectStorageLike, DurableObjectKvLike } from "./workerd/storage.js";
export { Durq } from "./db.js";
export { PURGE_CHUNK } from "./writes.js";
export type {
  EnqueueOptions,
  EnqueueItem,
  RunFilter,
  WaitOptions,
  PurgeOptions,
  BatchRunItem,
  EnqueueBatchSpec,
  BatchFilter,
  ReconcileOptions,
} from "./options.js";
export { defineJob, DEFAULT_BACKOFF, DEFAULT_MAX_ATTEMPTS } from "./job.js";
export type { Job, JobDefinition, JobHandler, RetryPolicy, Backoff } from "./job.js";
export { defineEffect, MAX_EFFECT_VERSION } from "./effect.js";
export type { Effect, EffectDefinition } from "./effect.js";
export { DEFAULT_MAX_IN_MEMORY_CHANGES } from "./cache.js";
export type { CacheStats } from "./cache.js";
export { Worker, DEFAULT_LEASE_MS } from "./worker.js";
export { AlarmNamespace, DEFAULT_ALARM_CONCURRENCY, ALARM_HANDLER_TIMEOUT_MS } from "./alarms.js";
export type { AlarmInfo, AlarmPage, AlarmListOptions, AlarmDelivery, AlarmHandler, AlarmHandlerOptions } from "./alarms.js";
export type { WorkerOptions } from "./worker.js";
export type { Step, LogLevel } from "./step.js";
export { DurqError, isDurqError } from "./errors.js";
export type { DurqErrorCode } from "./errors.js";
export type { DurqEvents, DurqEventName, DurqListener, BatchFinishedEvent, AlarmFailedEvent, AlarmAbandonedEvent, ScheduleFiredEvent } from "./events.js";
export type { Schedule, SchedulePage, ScheduleSpec, CatchUp, QueueSummary } from "./schedules.js";
export { realClock, ManualClock } from "./clock.js";
export type { Clock } from "./clock.js";
export { isTerminal, RUN_STATUSES, BATCH_STATES } from "./types.js";
export type { Run, RunStatus, RunError, RunPage, StepRecord, LogRecord, RunStats, EnqueueResult, RunEvent, RunEventKind, SearchStatus } from "./types.js";
export { IMPORT_CHUNK, MAX_IMPORT_CHUNK, DEFER_MIN_RUNS, DEFER_MIN_RATIO } from "./transfer.js";
export type { ImportOptions, ImportProgress, ImportResult, ImportRun, ExportOptions } from "./transfer.js";
export type { Batch, BatchState, BatchCounts, BatchPage, EnqueuedBatch, BatchMember, ReconcileResult } from "./types.js";
