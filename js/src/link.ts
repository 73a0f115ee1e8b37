/**
 * The contracts between the processes of one shared database file:
 * {@link Rendezvous}, where they meet and which of them owns the file (in
 * Node, a local socket: `node/socket.ts`); {@link Link}, how a client
 * process reaches the owner; {@link CORE_READS}, the core's reads a client
 * may ask the owner for.
 * Platform-free. Internal: not exported from the package.
 *
 * @module
 */

import type { CoreHandle } from "./core.js";
import type { DurqError } from "./errors.js";
import type { PeerConnection, PeerReply, PeerRequest, Target, toWirePayload } from "./protocol.js";

/**
 * The core's reads a client forwards to the owner as they are (`call` with
 * target `["core"]`): each answers what {@link CoreHandle}'s method of the
 * same name returns (JSON text, or a value). Besides these, target
 * `["core"]` takes `apply` (a group commit's operations JSON; answers the
 * outcomes JSON) and `openAlarms` (opens an alarm namespace in the owner).
 */
export const CORE_READS = [
  "getRun",
  "listRuns",
  "getBatch",
  "exportRuns",
  "runEvents",
  "searchStatus",
  "runCountEstimate",
  "listBatches",
  "listActiveBatches",
  "getEffect",
  "getStepOutput",
  "getSteps",
  "getLogs",
  "nextWakeAt",
  "getAlarm",
  "listAlarms",
  "nextAlarmAfter",
  "stats",
  "integrityCheck",
  "getSchedule",
  "listSchedules",
  "nextScheduleAt",
  "listQueues",
] as const satisfies readonly (keyof CoreHandle)[];

/** A method name of {@link CORE_READS}. */
export type CoreRead = (typeof CORE_READS)[number];

/** What a forwarded call is made on: a {@link Target} of the call protocol, or the owner's core (`["core"]`). */
export type LinkTarget = Target | ["core"];

/**
 * A client process's connection to the owner of its database. Calls go in
 * order; each settles with the owner's answer.
 */
export interface Link {
  /** The owner process's `workerId`: the lease owners of its workers start with `<ownerWorkerId>:`. */
  readonly ownerWorkerId: string;
  /**
   * Calls `method` with `args` on `target` in the owner.
   *
   * @throws {DurqError} what the owner's method throws, with its code;
   *   `DURQ_OWNER_CHANGED` if the connection dropped before the answer (the
   *   call may or may not have taken effect); `DURQ_OWNER_UNAVAILABLE` if
   *   the owner stopped answering.
   */
  call(target: LinkTarget, method: string, args: unknown[]): Promise<unknown>;
  /** Asks for (`true`) or stops (`false`) the events `name` of every process. */
  subscribe(name: string, on: boolean): void;
  /** Sends events this process emitted (`[name, payload]`, payloads as {@link toWirePayload} makes them) to the owner, which passes them on to the processes that listen. */
  publish(events: [name: string, payload: unknown][]): void;
  /** Closes the connection (the owner then expires the leases this process still holds). */
  close(): void;
}

/** Where the processes of one file meet: at most one holds the seat. */
export interface Rendezvous {
  /** Takes the owner's seat: resolves with it, or `undefined` if another live process holds it. */
  claim(): Promise<OwnerSeat | undefined>;
  /** Connects to the seat's holder; `undefined` if nobody holds it (it just went away). Rejects `DURQ_OWNER_UNAVAILABLE` after `timeoutMs`. */
  connect(timeoutMs: number): Promise<ClientConnection | undefined>;
  /** The `DURQ_LOCKED` error naming the process that holds the file, if the platform can tell (for `exclusive`). */
  holder?(): DurqError | undefined;
}

/** The owner's seat: client connections arrive here until it is closed. */
export interface OwnerSeat {
  onConnection(handler: (c: PeerConnection<PeerRequest, PeerReply>) => void): void;
  close(): void;
}

/** A client's end of its connection to the owner. */
export interface ClientConnection extends PeerConnection<PeerReply, PeerRequest> {
  /** Keeps the process alive while calls wait for answers (`true`), or lets it exit (`false`). */
  ref(on: boolean): void;
}
