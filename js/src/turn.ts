/**
 * `nextTurn(fn)`: runs `fn` in a later task of the event loop, after the
 * microtasks and the I/O or messages already queued. The write queue ends a
 * group commit's gathering there.
 *
 * Node: `setImmediate`. Browsers and workers: a message on a
 * `MessageChannel`, because a nested `setTimeout(fn, 0)` is clamped to at
 * least 4 ms (HTML standard, "Timers", step 5 of the timer initialization
 * steps), which would cap a commit loop near 250 commits per second.
 * Internal: not exported from the package.
 *
 * @module
 */

function channelTurn(): (fn: () => void) => void {
  const queue: (() => void)[] = [];
  const channel = new MessageChannel();
  channel.port1.onmessage = () => {
    const fn = queue.shift();
    fn?.();
  };
  return (fn) => {
    queue.push(fn);
    channel.port2.postMessage(null);
  };
}

/** Runs `fn` at a later turn of the event loop (see the module comment). */
export const nextTurn: (fn: () => void) => void = typeof setImmediate === "function" ? (fn) => void setImmediate(fn) : channelTurn();
