/**
 * How {@linkcode select} sleeps on the futex words of its sources (semaphores, channels): all
 * of them in ONE `futex_waitv` call (Linux 5.16+) on one worker thread, together with a private
 * word that a cancel sets and wakes, so that a cancel that comes before the worker thread
 * entered the call is not lost (the word then differs from its expected 0 and the call returns
 * at once). Each call lasts a slice at most; after a whole slice the sources are checked for a
 * close or a dead peer. Where `futex_waitv` is missing (ENOSYS), each word gets a `FUTEX_WAIT`
 * of its own, which a cancel wakes (again every millisecond until they have all ended, since
 * a plain FUTEX_WAIT has no second word to make a late wake-up stick). Internal.
 *
 * @module
 */

import {
  CLOCK_MONOTONIC,
  ENOSYS,
  FUTEX_32,
  FUTEX_WAITV_MAX,
  SYS_futex_waitv,
} from "../../ffi/constants.ts";
import { address } from "../../ffi/cstring.ts";
import { futex_waitv } from "../../ffi/layout.ts";
import { errno, libc } from "../../ffi/libc.ts";
import { futexWait, futexWake } from "../sync/_futex.ts";
import { deadlineIn } from "../_wait.ts";
import { INT_MAX } from "../_validate.ts";
import type { Cancel } from "./cancel.ts";
import { type FutexSleeper, type FutexWord, SourceEnded } from "./protocol.ts";

/** The longest single sleep, in ms: how late a close or a dead peer is noticed. */
export const FUTEX_SLICE_MS = 400;

export { FUTEX_WAITV_MAX };

/** A source's sleeper and its index in select's list. */
export interface IndexedSleeper {
  readonly index: number;
  readonly sleeper: FutexSleeper;
}

let waitvWorks: boolean | undefined;

/** Whether this kernel has futex_waitv: probed once, with a call it must refuse (no words). */
export function hasFutexWaitv(): boolean {
  if (waitvWorks === undefined) {
    const result = libc().futex_waitv(
      BigInt(SYS_futex_waitv),
      new Uint8Array(futex_waitv.size),
      0n,
      0n,
      new Uint8Array(16),
      BigInt(CLOCK_MONOTONIC),
    );
    waitvWorks = !(Number(result) === -1 && errno() === ENOSYS);
  }
  return waitvWorks;
}

/**
 * For tests: `false` makes select wait as where futex_waitv is missing, `undefined` probes
 * again.
 */
export function useFutexWaitv(use: boolean | undefined): void {
  waitvWorks = use;
}

/**
 * Sleeps until one of the sources' words is woken or changes, `signal` aborts, or a source is
 * found closed or ended (rejects with a {@linkcode SourceEnded}).
 */
export async function sleepOnWords(
  sleepers: readonly IndexedSleeper[],
  signal: Cancel,
): Promise<void> {
  if (signal.aborted) return;
  const began: IndexedSleeper[] = [];
  try {
    for (const one of sleepers) {
      attributed(one, () => one.sleeper.begin());
      began.push(one);
    }
    const sleep = sleepers.length < FUTEX_WAITV_MAX && hasFutexWaitv() ? sleepAll : sleepEach;
    while (!signal.aborted) {
      const entered: IndexedSleeper[] = [];
      let wholeSlice: boolean;
      try {
        const words: FutexWord[] = [];
        for (const one of sleepers) {
          const word = attributed(one, () => one.sleeper.enter());
          entered.push(one); // announced: leave() follows
          if (word === undefined) return; // ready already
          words.push(word);
        }
        const started = performance.now();
        await sleep(words, signal);
        wholeSlice = performance.now() - started >= FUTEX_SLICE_MS * 0.9;
      } finally {
        for (const one of entered) one.sleeper.leave();
      }
      if (!wholeSlice) return; // woken, or a word changed: the tries will tell
      for (const one of sleepers) attributed(one, () => one.sleeper.check());
    }
  } finally {
    for (const one of began) one.sleeper.end();
  }
}

/** Runs `fn` for `one`, turning what it throws into that source's {@linkcode SourceEnded}. */
function attributed<R>(one: IndexedSleeper, fn: () => R): R {
  try {
    return fn();
  } catch (error) {
    throw new SourceEnded(one.index, error);
  }
}

/** One `futex_waitv` over every word and a cancel word, for one slice at most. */
async function sleepAll(words: readonly FutexWord[], signal: Cancel): Promise<void> {
  const cancelCell = new Int32Array(1);
  const cancelWord = Deno.UnsafePointer.of(cancelCell) as Deno.PointerObject;
  const waiters = new Uint8Array((words.length + 1) * futex_waitv.size);
  const view = new DataView(waiters.buffer);
  [...words, { word: cancelWord, expected: 0 }].forEach(({ word, expected }, i) => {
    const at = i * futex_waitv.size;
    view.setBigUint64(at + futex_waitv.val, BigInt(expected >>> 0), true);
    view.setBigUint64(at + futex_waitv.uaddr, address(word), true);
    view.setUint32(at + futex_waitv.flags, FUTEX_32, true);
  });
  const cancel = () => {
    Atomics.store(cancelCell, 0, 1);
    futexWake(cancelWord, 1);
  };
  signal.on(cancel);
  try {
    await libc().futex_waitv_async(
      BigInt(SYS_futex_waitv),
      waiters,
      BigInt(words.length + 1),
      0n,
      deadlineIn(FUTEX_SLICE_MS),
      BigInt(CLOCK_MONOTONIC),
    );
  } finally {
    signal.off(cancel);
  }
  void cancelCell; // kept alive until the worker thread is done with it
}

/** Without futex_waitv: a FUTEX_WAIT per word, all cancelled when one ends or on abort. */
async function sleepEach(words: readonly FutexWord[], signal: Cancel): Promise<void> {
  let pending = words.length;
  let repeat: ReturnType<typeof setInterval> | undefined;
  const wakeAll = () => {
    if (pending > 0) { for (const { word } of words) futexWake(word, INT_MAX); }
  };
  const cancel = () => {
    wakeAll();
    repeat ??= setInterval(wakeAll, 1);
  };
  signal.on(cancel);
  try {
    await Promise.all(words.map(async ({ word, expected }) => {
      await futexWait(word, expected, FUTEX_SLICE_MS);
      pending--;
      cancel(); // the first to end ends the others
    }));
  } finally {
    clearInterval(repeat);
    signal.off(cancel);
  }
}
