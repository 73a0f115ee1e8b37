/**
 * The part of workerd's `cloudflare:workers` module durq uses
 * (https://developers.cloudflare.com/durable-objects/api/base/), declared
 * here so the build needs no `@cloudflare/workers-types` in its lib.
 */
declare module "cloudflare:workers" {
  export abstract class DurableObject<Env = unknown> {
    protected ctx: DurableObjectState;
    protected env: Env;
    constructor(ctx: DurableObjectState, env: Env);
  }
}

/** A Durable Object's state (`ctx`), as much as durq uses. */
interface DurableObjectState {
  readonly storage: unknown;
  blockConcurrencyWhile<T>(callback: () => Promise<T>): Promise<T>;
}
