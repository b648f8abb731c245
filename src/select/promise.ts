/**
 * The select adapter of a source that is a promise settled once (a child's exit status): ready
 * for good once settled, so selecting it again yields the same value at once. Internal.
 *
 * @module
 */

import type { SelectAdapter, Taken } from "./protocol.ts";

/** What each promise settled to, once known. */
const outcomes = new WeakMap<Promise<unknown>, Taken<unknown> | { error: unknown }>();

/** Makes the select adapter of `promise`. */
export function promiseAdapter<T>(promise: Promise<T>): SelectAdapter<T> {
  const record = () => {
    if (outcomes.has(promise)) return;
    promise.then(
      (value) => void outcomes.set(promise, { value }),
      (error) => void outcomes.set(promise, { error }),
    );
  };
  record();
  return {
    try: () => {
      const outcome = outcomes.get(promise);
      if (outcome === undefined) return undefined;
      if ("error" in outcome) throw outcome.error;
      return outcome as Taken<T>;
    },
    wait: (signal) => {
      if (signal.aborted || outcomes.has(promise)) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener("abort", done);
          resolve();
        };
        signal.addEventListener("abort", done);
        promise.then(done, done);
      });
    },
  };
}
