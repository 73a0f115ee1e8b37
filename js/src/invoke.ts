/**
 * {@link invoke}: runs a call that crossed a protocol (from a page, a
 * client process or a Durable Object stub) on the database that serves it.
 * Platform-free. Internal: not exported from the package.
 *
 * @module
 */

import type { Durq } from "./db.js";
import { DurqError } from "./errors.js";
import { REMOTE_ALARM_METHODS, REMOTE_METHODS, type RemoteAlarmMethod, type RemoteMethod, type Target } from "./protocol.js";

/**
 * Runs a call that arrived over a protocol on the database `db` owns:
 * `method` of the database (`target` null) or of its alarm namespace
 * `target[1]`, with `args` as they crossed (jobs as names).
 *
 * @throws {DurqError} `DURQ_INVALID_INPUT` for a method not in
 * {@link REMOTE_METHODS} / {@link REMOTE_ALARM_METHODS}; whatever the
 * method throws.
 */
export async function invoke(db: Durq, target: Target, method: string, args: unknown[]): Promise<unknown> {
  if (target === null) {
    if (!(REMOTE_METHODS as readonly string[]).includes(method))
      throw new DurqError("DURQ_INVALID_INPUT", `${method} cannot be called remotely; callable: ${REMOTE_METHODS.join(", ")}`);
    return (db[method as RemoteMethod] as (...a: unknown[]) => unknown)(...args);
  }
  if (!(REMOTE_ALARM_METHODS as readonly string[]).includes(method))
    throw new DurqError("DURQ_INVALID_INPUT", `alarms().${method} cannot be called remotely; callable: ${REMOTE_ALARM_METHODS.join(", ")}`);
  const ns = db.alarms(target[1]);
  return (ns[method as RemoteAlarmMethod] as (...a: unknown[]) => unknown).apply(ns, args);
}
