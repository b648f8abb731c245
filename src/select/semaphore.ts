/**
 * The select adapter of a glibc semaphore (named or placed in shared memory). Internal.
 *
 * Its wait takes no count: it sleeps on the semaphore's futex word itself, as sem_wait does, so
 * that only `try()` (sem_trywait) takes. glibc's `sem_t` on 64-bit targets (nptl/sem_post.c,
 * nptl/sem_waitcommon.c, sysdeps/nptl/internaltypes.h `struct new_sem`) starts with one 64-bit
 * word: the value in its low 32 bits (the futex word, at offset 0 on little-endian x86_64 and
 * aarch64) and the number of sleeping waiters in its high 32 bits. `sem_post` adds one to the
 * value and issues a FUTEX_WAKE of one waiter only when that count is non-zero, so this wait
 * adds itself to the count while it sleeps (and removes itself after), exactly as
 * `__new_sem_wait_slow` does. Process-shared semaphores use shared futexes, as the wait here.
 *
 * A post wakes one sleeper: if that was this wait and select then returns another source, the
 * count stays and a real `sem_wait` could sleep on; so when select is done, a semaphore that
 * still holds a count while others sleep wakes one of them (`release`). A cancel wakes every sleeper of the word (they
 * look again and sleep on: a spurious wake-up, which glibc handles), and repeats every
 * millisecond until this wait has ended, since it may come just before the worker thread
 * entered the futex call.
 *
 * @module
 */

import { futexWait, futexWake } from "../sync/_futex.ts";
import { INT_MAX } from "../_validate.ts";
import type { SelectAdapter, Taken } from "./protocol.ts";

/** The longest single sleep of a select wait on a semaphore, in ms. */
export const SEMAPHORE_SLICE_MS = 400;

const WAITER = 1n << 32n;
const VALUE_MASK = 0xffff_ffffn;

/** What a semaphore gives its adapter. */
export interface SemaphoreSource<T> {
  /** The `sem_t`; throws BadResource once the handle is closed. */
  pointer(): Deno.PointerObject;
  /** Takes one count without waiting, as `{ value }`, or returns `undefined`. */
  take(): Taken<T> | undefined;
  /** A wait begins: the handle keeps the semaphore mapped until every wait has ended. */
  begin(): void;
  /** A wait ended. */
  end(): void;
}

/** Makes the select adapter of a semaphore. */
export function semaphoreAdapter<T>(source: SemaphoreSource<T>): SelectAdapter<T> {
  return {
    try: () => source.take(),
    wait: (signal) => sleepUntilPosted(source, signal),
    release: () => {
      // A post may have woken a wait of this select, which took nothing: pass the wake-up on.
      const pointer = source.pointer();
      const word = new BigInt64Array(Deno.UnsafePointerView.getArrayBuffer(pointer, 8));
      const data = Atomics.load(word, 0);
      if ((data & VALUE_MASK) !== 0n && data >= WAITER) futexWake(pointer, 1);
    },
  };
}

/** Sleeps on the semaphore's word in slices until it holds a count or `signal` aborts. */
async function sleepUntilPosted(
  source: SemaphoreSource<unknown>,
  signal: AbortSignal,
): Promise<void> {
  if (signal.aborted) return;
  const pointer = source.pointer();
  const word = new BigInt64Array(Deno.UnsafePointerView.getArrayBuffer(pointer, 8));
  const value = () => Atomics.load(word, 0) & VALUE_MASK;
  let sleeping = false;
  let repeat: ReturnType<typeof setInterval> | undefined;
  const cancel = () => {
    futexWake(pointer, INT_MAX);
    repeat = setInterval(() => sleeping && futexWake(pointer, INT_MAX), 1);
  };
  signal.addEventListener("abort", cancel);
  source.begin();
  try {
    while (!signal.aborted) {
      source.pointer(); // throws once the handle closed
      Atomics.add(word, 0, WAITER);
      try {
        if (value() !== 0n || signal.aborted) return;
        sleeping = true;
        await futexWait(pointer, 0, SEMAPHORE_SLICE_MS);
      } finally {
        sleeping = false;
        Atomics.sub(word, 0, WAITER);
      }
    }
  } finally {
    clearInterval(repeat);
    signal.removeEventListener("abort", cancel);
    source.end();
  }
}
