/**
 * The first word of a glibc `sem_t`, for waits that sleep on a semaphore without taking a count.
 * Internal.
 *
 * On 64-bit targets glibc's `struct new_sem` (sysdeps/nptl/internaltypes.h) starts with one
 * 64-bit `data` word: the value in its low 32 bits (the futex word, at offset 0 on
 * little-endian x86_64 and aarch64) and the number of sleeping waiters in its high 32 bits
 * (SEM_NWAITERS_SHIFT = 32). `sem_post` (nptl/sem_post.c) adds one to the value and issues a
 * FUTEX_WAKE of one waiter only when that count is non-zero, so a sleeper adds itself to the
 * count while it sleeps and removes itself after, as `__new_sem_wait_slow`
 * (nptl/sem_waitcommon.c) does. Process-shared semaphores use shared futexes.
 *
 * @module
 */

import { futexWake } from "../sync/_futex.ts";

const WAITER = 1n << 32n;
const VALUE_MASK = 0xffff_ffffn;

/** The `data` word of the `sem_t` at `pointer`. */
export class SemWord {
  readonly #data: BigInt64Array<ArrayBuffer>;

  /** Views the `sem_t` at `pointer`, which must stay mapped while this is used. */
  constructor(readonly pointer: Deno.PointerObject) {
    this.#data = new BigInt64Array(Deno.UnsafePointerView.getArrayBuffer(pointer, 8));
  }

  /** Whether the semaphore's value is above zero. */
  get posted(): boolean {
    return (Atomics.load(this.#data, 0) & VALUE_MASK) !== 0n;
  }

  /** Counts one more sleeper, so that `sem_post` wakes. */
  addWaiter(): void {
    Atomics.add(this.#data, 0, WAITER);
  }

  /** Counts one sleeper less. */
  removeWaiter(): void {
    Atomics.sub(this.#data, 0, WAITER);
  }

  /**
   * Wakes one sleeper when a count is left while someone sleeps: a post's single wake-up may
   * have gone to a select that then took another source.
   */
  passOn(): void {
    const data = Atomics.load(this.#data, 0);
    if ((data & VALUE_MASK) !== 0n && data >= WAITER) futexWake(this.pointer, 1);
  }
}
