/**
 * Checks of caller-supplied values, done in JS before anything is queued so
 * a mistake fails at the call that made it, with a message naming the value.
 * The Rust core checks the same limits again (docs/boundary.md).
 *
 * Every check throws a `DURQ_INVALID_INPUT` {@link DurqError}.
 *
 * @module
 * @internal
 */

import { invalidInput } from "./errors.js";

/** Longest job, queue, step, idempotency or concurrency key name, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 256;
/** Longest label key, in bytes (ASCII `[A-Za-z0-9_.:/-]`). */
export const MAX_LABEL_KEY_BYTES = 64;
/** Longest label value, in UTF-8 bytes. */
export const MAX_LABEL_VALUE_BYTES = 256;
/** Most labels on one run. */
export const MAX_LABELS = 32;
/**
 * Largest time, ms since the epoch: 2^48 - 1 (year 10889), the largest a
 * UUIDv7's 48-bit timestamp holds (RFC 9562 §5.7); run ids are made from the
 * clock, so the core refuses later times too.
 */
export const MAX_TIME_MS = 2 ** 48 - 1;
/** Largest delay in ms (retry backoff): 2^31 - 1, the largest `setTimeout` delay. */
export const MAX_DELAY_MS = 2 ** 31 - 1;
/** Longest duration, ms (the largest `setTimeout` delay). */
export const MAX_DURATION_MS = 2_147_483_647;

const LABEL_KEY = /^[A-Za-z0-9_.:/-]{1,64}$/;

/** UTF-8 length of `s` in bytes (lone surrogates count 3, as WTF-8). */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 2; // a pair: 2 UTF-16 units, 4 bytes
      i++;
    } else n += 2;
  }
  return n;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (typeof v === "bigint") return `${v}n`;
  if (typeof v === "number") return String(v);
  if (typeof v === "function") return "a function";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return `an object (${Object.prototype.toString.call(v).slice(8, -1)})`;
  return typeof v;
}

/** A non-empty string of at most {@link MAX_NAME_BYTES} UTF-8 bytes without NUL. */
export function checkName(what: string, v: unknown): string {
  if (typeof v !== "string") throw invalidInput(`${what} must be a string, got ${describe(v)}`);
  if (v.length === 0) throw invalidInput(`${what} must not be empty`);
  const n = utf8Length(v);
  if (n > MAX_NAME_BYTES) throw invalidInput(`${what} is ${n} bytes; the limit is ${MAX_NAME_BYTES}`);
  if (v.includes("\0")) throw invalidInput(`${what} must not contain NUL characters`);
  if (!v.isWellFormed()) throw invalidInput(`${what} contains a lone UTF-16 surrogate (a cut-off emoji?); it cannot be stored as UTF-8`);
  return v;
}

/** An integer in `min ..= max`. */
export function checkInt(what: string, v: unknown, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw invalidInput(`${what} must be an integer between ${min} and ${max}, got ${describe(v)}`);
  }
  return v;
}

/** A finite number in `min ..= max`. */
export function checkNumber(what: string, v: unknown, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) {
    throw invalidInput(`${what} must be a finite number between ${min} and ${max}, got ${describe(v)}`);
  }
  return v;
}

/** A time: integer ms since the epoch in 0 ..= {@link MAX_TIME_MS}, or a valid `Date`. */
export function checkTime(what: string, v: unknown): number {
  if (v instanceof Date) {
    const t = v.getTime();
    if (Number.isNaN(t)) throw invalidInput(`${what} is an invalid Date`);
    v = t;
  }
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > MAX_TIME_MS) {
    throw invalidInput(`${what} must be a time in integer ms since the Unix epoch between 0 and ${MAX_TIME_MS} (or a Date), got ${describe(v)}`);
  }
  return v;
}

/** A duration: integer ms in `min ..= ` {@link MAX_DURATION_MS}. */
export function checkDuration(what: string, v: unknown, min = 1): number {
  return checkInt(`${what} (ms)`, v, min, MAX_DURATION_MS);
}

/** Whether `v` is a plain object (`{...}` or `Object.create(null)`). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * An options object: `undefined` (→ `{}`) or a plain object whose keys are
 * all in `allowed` (a typo such as `label` for `labels` fails here instead
 * of being ignored).
 */
export function checkOptions<T extends object>(what: string, v: T | undefined, allowed: readonly string[]): Partial<T> {
  if (v === undefined) return {};
  if (!isPlainObject(v)) throw invalidInput(`${what} must be an object, got ${describe(v)}`);
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k)) throw invalidInput(`${what} has an unknown option ${JSON.stringify(k)}; known: ${allowed.join(", ")}`);
  }
  return v;
}

/**
 * Labels: a plain object of at most {@link MAX_LABELS} entries, keys of 1 to
 * 64 characters from `A-Z a-z 0-9 _ . : / -`, values strings of at most
 * {@link MAX_LABEL_VALUE_BYTES} UTF-8 bytes without NUL.
 */
export function checkLabels(what: string, v: unknown): Record<string, string> {
  if (!isPlainObject(v)) throw invalidInput(`${what} must be a plain object of string to string, got ${describe(v)}`);
  const keys = Object.keys(v);
  if (keys.length > MAX_LABELS) throw invalidInput(`a run has at most ${MAX_LABELS} labels, got ${keys.length}`);
  for (const k of keys) {
    if (!LABEL_KEY.test(k)) {
      throw invalidInput(`label key ${describe(k)} is invalid: use 1 to ${MAX_LABEL_KEY_BYTES} characters from A-Z a-z 0-9 _ . : / -`);
    }
    const value = v[k];
    if (typeof value !== "string") throw invalidInput(`label ${JSON.stringify(k)} must have a string value, got ${describe(value)}`);
    const n = utf8Length(value);
    if (n > MAX_LABEL_VALUE_BYTES) throw invalidInput(`label ${JSON.stringify(k)} value is ${n} bytes; the limit is ${MAX_LABEL_VALUE_BYTES}`);
    if (value.includes("\0")) throw invalidInput(`label ${JSON.stringify(k)} value must not contain NUL characters`);
    if (!value.isWellFormed()) throw invalidInput(`label ${JSON.stringify(k)} value contains a lone UTF-16 surrogate; it cannot be stored as UTF-8`);
  }
  return v as Record<string, string>;
}

/**
 * Serializes `value` to JSON text, refusing what JSON would silently change
 * or drop: `undefined` (at the top level), functions, symbols, `BigInt`,
 * `NaN` and `±Infinity`, `Map` and `Set`, binary data (`ArrayBuffer`, typed
 * arrays, `Buffer`), invalid `Date`s, and cycles. `undefined` inside an
 * object is dropped and inside an array becomes `null`, as `JSON.stringify`
 * does. Objects with `toJSON` (e.g. `Date`) are serialized by it. The text
 * is at most {@link MAX_JSON_BYTES} long: one value that size already holds
 * the event loop for a noticeable time while it is written.
 *
 * @param what - what the value is, for the message, e.g. `"input"`
 */
export function toJsonText(what: string, value: unknown): string {
  if (value === undefined) throw invalidInput(`${what} is undefined, which is not JSON; use null for "no value"`);
  let text: string | undefined;
  try {
    // A cheap walk first, so JSON.stringify runs without a replacer (V8's fast path).
    if (!jsonSafe(value, 0)) throw new NotJson();
    text = JSON.stringify(value);
  } catch (e) {
    // NotJson from the walk, TypeError for cycles, whatever a toJSON threw,
    // RangeError for nesting too deep to walk.
    let problem: string | undefined;
    try {
      problem = findProblem(value, what, new Set());
    } catch {
      problem = undefined;
    }
    throw invalidInput(
      `${what} is not JSON-serializable: ${problem ?? (e instanceof NotJson ? "it holds a value JSON cannot represent" : e instanceof Error ? e.message : String(e))}`,
    );
  }
  if (text === undefined) throw invalidInput(`${what} is not JSON-serializable: ${describe(value)} has no JSON form`);
  if (text.length > MAX_JSON_BYTES) {
    throw invalidInput(`${what} is ${text.length} characters of JSON; the limit is ${MAX_JSON_BYTES}. Store large data elsewhere and pass a reference`);
  }
  return text;
}

/** Longest JSON text of one input, output, step output or progress value: 16 MiB (in UTF-16 code units, a lower bound of its UTF-8 bytes). */
export const MAX_JSON_BYTES = 16 * 1024 * 1024;

class NotJson extends Error {}

/** Deepest nesting walked; deeper values are left to JSON.stringify (a cycle is caught there). */
const MAX_WALK_DEPTH = 1000;

/**
 * Whether `v` holds only values JSON represents faithfully (no functions,
 * symbols, BigInt, non-finite numbers, Map or Set). Objects with `toJSON`
 * (e.g. `Date`) are trusted to serialize themselves.
 */
function jsonSafe(v: unknown, depth: number): boolean {
  switch (typeof v) {
    case "string":
    case "boolean":
    case "undefined": // dropped inside objects, null inside arrays, as JSON.stringify does
      return true;
    case "number":
      return Number.isFinite(v);
    case "object": {
      if (v === null) return true;
      if (depth > MAX_WALK_DEPTH) return true;
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) if (!jsonSafe(v[i], depth + 1)) return false;
        return true;
      }
      if (v instanceof Date) return !Number.isNaN(v.getTime());
      if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return false;
      if (typeof (v as { toJSON?: unknown }).toJSON === "function") return true;
      if (v instanceof Map || v instanceof Set) return false;
      for (const k in v) {
        if (Object.hasOwn(v, k) && !jsonSafe((v as Record<string, unknown>)[k], depth + 1)) return false;
      }
      return true;
    }
    default:
      return false; // function, symbol, bigint
  }
}

/** Path and description of the first non-JSON value inside `v`, if any. */
function findProblem(v: unknown, path: string, stack: Set<object>): string | undefined {
  if (v instanceof Date && Number.isNaN(v.getTime())) return `${path} is an invalid Date`;
  if (typeof v === "object" && v !== null && (ArrayBuffer.isView(v) || v instanceof ArrayBuffer)) {
    return `${path} is binary data (${v.constructor?.name ?? "ArrayBuffer"}); encode it, e.g. as base64 text`;
  }
  if (typeof v === "object" && v !== null && typeof (v as { toJSON?: unknown }).toJSON === "function") {
    try {
      v = (v as { toJSON(k: string): unknown }).toJSON("");
    } catch (e) {
      return `${path}.toJSON() threw: ${(e as Error)?.message ?? String(e)}`;
    }
  }
  switch (typeof v) {
    case "number":
      return Number.isFinite(v) ? undefined : `${path} is ${v}`;
    case "function":
      return `${path} is a function`;
    case "symbol":
      return `${path} is a symbol`;
    case "bigint":
      return `${path} is a BigInt (${v}n); convert it to a string or number`;
    case "object": {
      if (v === null) return undefined;
      if (v instanceof Map || v instanceof Set) return `${path} is a ${v instanceof Map ? "Map" : "Set"}; convert it to an object or array`;
      if (stack.has(v)) return `${path} is a circular reference`;
      stack.add(v);
      try {
        if (Array.isArray(v)) {
          for (let i = 0; i < v.length; i++) {
            const p = findProblem(v[i], `${path}[${i}]`, stack);
            if (p !== undefined) return p;
          }
        } else {
          for (const k of Object.keys(v)) {
            const p = findProblem((v as Record<string, unknown>)[k], `${path}.${k}`, stack);
            if (p !== undefined) return p;
          }
        }
      } finally {
        stack.delete(v);
      }
      return undefined;
    }
    default:
      return undefined;
  }
}

/** A run or batch id argument: a non-empty string of at most 256 characters without NUL. */
export function checkId(id: unknown, what = "run id"): string {
  if (typeof id !== "string" || id.length === 0 || id.length > 256 || id.includes("\0")) {
    throw invalidInput(`a ${what} must be a non-empty string, got ${typeof id === "string" ? JSON.stringify(id) : typeof id}`);
  }
  return id;
}
