/**
 * `defineEffect`: memoized side effects, keyed by their input.
 *
 * @module
 */

import canonicalize from "canonicalize";
import { DurqError, invalidInput } from "./errors.js";
import { checkInt, checkName, checkOptions, isPlainObject, MAX_DELAY_MS, toJsonText } from "./validate.js";

/** Largest {@link EffectDefinition.version}. */
export const MAX_EFFECT_VERSION = 2 ** 31 - 1;

/** What {@link defineEffect} takes. */
export interface EffectDefinition<I, O> {
  /** The effect's name: 1 to 256 UTF-8 bytes, no NUL. Outputs are cached per name and input. */
  name: string;
  /**
   * The side effect: a fetch, an API call, a costly computation. Called at
   * most once at a time per input in a process; its output must be
   * JSON-serializable (`undefined` is stored as `null`). A throw is not
   * cached: every caller waiting on that call gets the error, and the next
   * call runs it again.
   */
  run: (input: I) => O | Promise<O>;
  /**
   * `true` (default): outputs are written to the database with the next
   * group commit and survive restarts. `false`: outputs live only in memory
   * and may be evicted at any time (a later miss runs the effect again).
   */
  cache?: boolean;
  /**
   * Version of the output's shape: 0 ..= 2^31 - 1 (default 0). Bump it when
   * the output changes; stored outputs of other versions are ignored (and
   * replaced as calls come in).
   */
  version?: number;
  /**
   * How long an output stays valid, ms: 1 ..= 2^31 - 1 (about 24.8 days);
   * default: forever. An older output (in memory or in the database) is a
   * miss: the effect runs again and its new output replaces the old one.
   * Age is counted on the database's clock (`open({ clock })`) from when
   * the output was computed, in memory and in the database alike.
   */
  maxAgeMs?: number;
}

/** An effect made by {@link defineEffect}: call it with `step.effect(effect, input)` in a handler, or `db.callEffect(effect, input)`. */
export interface Effect<I = unknown, O = unknown> {
  /** The effect's name. */
  readonly name: string;
  /** The side effect. */
  readonly run: (input: I) => O | Promise<O>;
  /** Whether outputs are persisted. */
  readonly cache: boolean;
  /** Version of the output's shape. */
  readonly version: number;
  /** How long an output stays valid, ms; `undefined`: forever. */
  readonly maxAgeMs: number | undefined;
}

const madeByDefineEffect = new WeakSet<object>();

/**
 * Defines a memoized side effect. Calling it (`step.effect(effect, input)`
 * or `db.callEffect(effect, input)`) returns the cached output for `input`
 * when there is one, in memory or in the database, else runs `run(input)`
 * once, even if several callers ask for the same input at the same time.
 *
 * The cache key is the effect's name, its version and the input's canonical
 * JSON (RFC 8785 JSON Canonicalization Scheme: object keys sorted, so
 * `{a, b}` and `{b, a}` are one key); the database stores the key's SHA-256.
 *
 * @example
 * ```ts
 * const lookup = defineEffect({
 *   name: "npm-metadata",
 *   version: 1,
 *   run: async (pkg: string) => (await fetch(`https://registry.npmjs.org/${pkg}`)).json(),
 * });
 * const meta = await step.effect(lookup, "typescript");
 * ```
 *
 * @throws {DurqError} `DURQ_INVALID_INPUT` for a bad name, a missing `run`,
 *   a non-boolean `cache`, a bad `version` or `maxAgeMs`, or an unknown
 *   option.
 */
export function defineEffect<I = unknown, O = unknown>(definition: EffectDefinition<I, O>): Effect<I, O> {
  const d = checkOptions("defineEffect(definition)", definition, ["name", "run", "cache", "version", "maxAgeMs"]);
  if (!isPlainObject(definition)) throw invalidInput("defineEffect needs an object { name, run, cache?, version?, maxAgeMs? }");
  const name = checkName("effect name", d.name);
  if (typeof d.run !== "function") throw invalidInput(`effect ${JSON.stringify(name)} needs a run(input) function`);
  if (d.cache !== undefined && typeof d.cache !== "boolean") throw invalidInput(`effect ${JSON.stringify(name)}: cache must be true or false`);
  const version = d.version === undefined ? 0 : checkInt(`version of effect ${JSON.stringify(name)}`, d.version, 0, MAX_EFFECT_VERSION);
  const maxAgeMs = d.maxAgeMs === undefined ? undefined : checkInt(`maxAgeMs of effect ${JSON.stringify(name)}`, d.maxAgeMs, 1, MAX_DELAY_MS);
  const effect: Effect<I, O> = Object.freeze({ name, run: d.run, cache: d.cache ?? true, version, maxAgeMs });
  madeByDefineEffect.add(effect);
  return effect;
}

/** Whether `v` was made by {@link defineEffect}. @internal */
export function isEffect(v: unknown): v is Effect {
  return typeof v === "object" && v !== null && madeByDefineEffect.has(v);
}

/**
 * An effect's input, checked: its JSON text (handed to `run` as a fresh
 * copy) and its canonical JSON (the cache key). @internal
 *
 * @throws {DurqError} `DURQ_INVALID_INPUT` if the input is not JSON
 *   (`undefined`, a function, a cycle, a BigInt, NaN, a lone surrogate).
 */
export function effectInput(effect: Effect, input: unknown): { json: string; canonical: string } {
  if (!isEffect(effect)) throw invalidInput("the effect must be made by defineEffect()");
  const what = `the input of effect ${JSON.stringify(effect.name)}`;
  const json = toJsonText(what, input);
  let canonical: string | undefined;
  try {
    canonical = canonicalize(JSON.parse(json));
  } catch (e) {
    throw new DurqError("DURQ_INVALID_INPUT", `${what} cannot be canonicalized: ${(e as Error).message}`);
  }
  if (canonical === undefined) throw invalidInput(`${what} is not JSON`);
  return { json, canonical };
}

/** The store key of an effect output. @internal */
export function effectKey(effect: Effect, canonical: string): string {
  return `e\0${effect.name}\0${effect.version}\0${effect.cache ? 1 : 0}\0${canonical}`;
}

/**
 * The store key of a step output of one attempt (its fencing token): two
 * attempts of a run in one process (a lease lost, then the run claimed
 * again) never see or drop each other's entries. @internal
 */
export function stepKey(runId: string, token: number, name: string): string {
  return `s\0${runId}\0${token}\0${name}`;
}
