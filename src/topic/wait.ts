/**
 * How a subscriber waits for a message and a publisher of a "block" topic for room. Internal.
 *
 * A waiter spins for a few microseconds (bounded, {@linkcode SPIN_MS} as a channel's), then
 * announces itself in its side's "sleeping" counter, takes the futex word's value, looks once
 * more whether it is still blocked, and sleeps on the word for a slice at most. The other side
 * changes the word before it reads the counter, so no wake-up is lost: either the waiter sees
 * the change in its last look, or the futex call finds the word changed, or the other side sees
 * the counter and wakes it. After a slice that ran out, the attempt judges the peers thoroughly
 * (zombies too). Close and abort wake the word at once.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { SPIN_MS } from "../channel/wait.ts";
import { futexWait, futexWaitSync, futexWake } from "../sync/_futex.ts";
import { INT_MAX } from "../_validate.ts";
import { RETRY, validateWaitOptions, type WaitOptions, waitUntil } from "../_wait.ts";

/** What one wait needs. */
export interface Waiter<R> {
  /** What is being done, for messages: "receive from the topic". */
  readonly what: string;
  readonly cells: Int32Array<ArrayBuffer>;
  /** The futex word: its address and its cell. */
  readonly word: Deno.PointerObject;
  readonly wordCell: number;
  /** The cell that counts this side's sleepers. */
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
}

/** Spins while blocked, SPIN_MS at most, yielding the CPU now and then. */
function spin(waiter: Waiter<unknown>): void {
  const until = performance.now() + SPIN_MS;
  for (let tries = 1; waiter.blocked(); tries++) {
    if ((tries & 63) === 0) {
      if (performance.now() >= until) return;
      libc().sched_yield();
    }
  }
}

/** Waits without blocking the event loop until `attempt` gives a value. */
export async function waitAsync<R>(waiter: Waiter<R>, options: WaitOptions): Promise<R> {
  validateWaitOptions(options, waiter.what);
  spin(waiter);
  const { cells, word } = waiter;
  let thorough = false;
  const wake = () => { // an abort must not wait for the slice
    Atomics.add(cells, waiter.wordCell, 1);
    futexWake(word, INT_MAX);
  };
  options.signal?.addEventListener("abort", wake);
  waiter.begin();
  try {
    return await waitUntil<R>(options, {
      what: waiter.what,
      slice: waiter.slice,
      assertOpen: waiter.assertOpen,
      attempt: () => waiter.attempt(thorough),
      sleep: async (ms) => {
        Atomics.add(cells, waiter.sleepingCell, 1);
        try {
          const seen = Atomics.load(cells, waiter.wordCell);
          const started = performance.now();
          thorough = false;
          if (!options.signal?.aborted && waiter.blocked()) {
            await futexWait(word, seen, ms);
            thorough = performance.now() - started >= ms * 0.9;
          }
        } finally {
          Atomics.sub(cells, waiter.sleepingCell, 1);
        }
      },
    });
  } finally {
    options.signal?.removeEventListener("abort", wake);
    waiter.end();
  }
}

/** Waits, blocking this thread, until `attempt` gives a value; see {@linkcode waitAsync}. */
export function waitSync<R>(waiter: Waiter<R>, options: { timeout?: number }): R {
  const timeout = validateWaitOptions(options, waiter.what);
  const deadline = performance.now() + timeout;
  const { cells, word } = waiter;
  spin(waiter);
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
    Atomics.add(cells, waiter.sleepingCell, 1);
    const seen = Atomics.load(cells, waiter.wordCell);
    const started = performance.now();
    thorough = false;
    if (waiter.blocked()) {
      futexWaitSync(word, seen, ms);
      thorough = performance.now() - started >= ms * 0.9;
    }
    Atomics.sub(cells, waiter.sleepingCell, 1);
  }
}
