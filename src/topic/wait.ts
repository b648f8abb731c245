/**
 * How a subscriber waits for a message and a publisher of a "block" topic for room. Internal.
 *
 * A waiter spins for a few microseconds (bounded, {@linkcode SPIN_MS} as a channel's); an async
 * one whose last wait was short then keeps looking after each turn of the event loop, for up to
 * 3× that wait and 1 ms (the channel's adaptive budget, src/channel/wait.ts); then it
 * sets its side's "sleeping" flag, takes the futex word's value, looks once more whether it is
 * still blocked, and sleeps on the word for a slice at most (src/topic/ring.ts says why no
 * wake-up is lost). After a slice that ran out, the attempt judges the peers thoroughly
 * (zombies too). Close and abort wake the word at once.
 *
 * @module
 */

import { adaptiveBudget, SPIN_MS, spinAcrossTurns, spinWhile } from "../channel/wait.ts";
import { futexWait, futexWaitSync, futexWake } from "../sync/_futex.ts";
import { INT_MAX } from "../_validate.ts";
import {
  readWaitOptions,
  RETRY,
  validateWaitOptions,
  type WaitOptions,
  waitUntil,
} from "../_wait.ts";

/** What one wait needs. */
export interface Waiter<R> {
  /** What is being done, for messages: "receive from the topic". */
  readonly what: string;
  readonly cells: Int32Array<ArrayBuffer>;
  /** The futex word: its address and its cell. */
  readonly word: Deno.PointerObject;
  readonly wordCell: number;
  /** The cell of this side's "sleeping" flag. */
  readonly sleepingCell: number;
  /** The longest sleep, in ms, before the peers are judged again. */
  readonly slice: number;
  /** Whether the waiter would still find nothing to do: read after it announced itself. */
  blocked(): boolean;
  /** Tries once; `thorough` after a whole slice asleep. Throws the end of the stream. */
  attempt(thorough: boolean): R | typeof RETRY;
  readonly assertOpen: () => void;
  /** A wait begins or ends: the handle keeps its mapping until every wait has ended. */
  begin(): void;
  end(): void;
  /**
   * How long the last async wait that outlasted the spin lasted, in ms (for the adaptive
   * budget: src/channel/wait.ts `adaptiveBudget`); `Infinity` at first.
   */
  lastWait: number;
}

/** Waits without blocking the event loop until `attempt` gives a value. */
export async function waitAsync<R>(waiter: Waiter<R>, given: WaitOptions): Promise<R> {
  // Read once: a getter may answer differently the second time (src/_wait.ts readWaitOptions).
  const options = readWaitOptions(given, waiter.what);
  const timeout = options.timeout;
  spinWhile(() => waiter.blocked());
  // A wait that outlasts the spin is timed, for the next one's budget; a hot one costs nothing.
  const slow = waiter.blocked();
  const started = slow ? performance.now() - SPIN_MS : 0;
  const { cells, word } = waiter;
  let thorough = false;
  const wake = () => { // an abort must not wait for the slice
    Atomics.add(cells, waiter.wordCell, 1);
    futexWake(word, INT_MAX);
  };
  options.signal?.addEventListener("abort", wake);
  waiter.begin();
  try {
    const budget = slow ? adaptiveBudget(waiter.lastWait, timeout) : 0;
    if (budget > 0) {
      await spinAcrossTurns(() => isOpen(waiter) && waiter.blocked(), budget, options.signal);
    }
    return await waitUntil<R>(options, {
      what: waiter.what,
      slice: waiter.slice,
      assertOpen: waiter.assertOpen,
      attempt: () => waiter.attempt(thorough),
      sleep: async (ms) => {
        Atomics.store(cells, waiter.sleepingCell, 1);
        const seen = Atomics.load(cells, waiter.wordCell);
        const started = performance.now();
        thorough = false;
        if (!options.signal?.aborted && waiter.blocked()) {
          await futexWait(word, seen, ms);
          thorough = performance.now() - started >= ms * 0.9;
        }
      },
    });
  } finally {
    if (slow) waiter.lastWait = performance.now() - started;
    options.signal?.removeEventListener("abort", wake);
    waiter.end();
  }
}

/** Whether the waiter's handle is still open (the wait loop then says why it is not). */
function isOpen(waiter: Waiter<unknown>): boolean {
  try {
    waiter.assertOpen();
    return true;
  } catch {
    return false;
  }
}

/** Waits, blocking this thread, until `attempt` gives a value; see {@linkcode waitAsync}. */
export function waitSync<R>(waiter: Waiter<R>, options: { timeout?: number }): R {
  const timeout = validateWaitOptions(options, waiter.what);
  const deadline = performance.now() + timeout;
  const { cells, word } = waiter;
  spinWhile(() => waiter.blocked());
  let thorough = false;
  while (true) {
    waiter.assertOpen();
    const result = waiter.attempt(thorough);
    if (result !== RETRY) return result;
    const left = deadline - performance.now();
    if (left <= 0) {
      throw new Deno.errors.TimedOut(`Cannot ${waiter.what}: timed out after ${timeout} ms`);
    }
    const ms = Math.max(1, Math.min(waiter.slice, Math.ceil(left)));
    Atomics.store(cells, waiter.sleepingCell, 1);
    const seen = Atomics.load(cells, waiter.wordCell);
    const started = performance.now();
    thorough = false;
    if (waiter.blocked()) {
      futexWaitSync(word, seen, ms);
      thorough = performance.now() - started >= ms * 0.9;
    }
  }
}
