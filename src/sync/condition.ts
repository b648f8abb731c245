/**
 * A condition variable between processes, placed in shared memory, used with a {@linkcode Mutex}.
 *
 * @module
 */

import { place } from "../_placement.ts";
import { ConstructorToken, describe } from "../_validate.ts";
import {
  deadlineAfter,
  readWaitOptions,
  RETRY,
  SLICE_MS,
  sliceUntil,
  validateWaitOptions,
  type WaitOptions,
  waitUntil,
} from "../_wait.ts";
import type { Mapping } from "../mmap.ts";
import type { SharedMemory } from "../shm.ts";
import { futexWait, futexWaitSync, futexWake, PlacedCells } from "./_futex.ts";
import { MutexGuard, resumeGuard, resumeGuardSync, suspendGuard } from "./mutex.ts";

const token = new ConstructorToken("Condition", "Condition.init() or Condition.at()");

/** Checks the guard given to a wait before anything is changed. */
function validateGuard(guard: unknown, what: string): MutexGuard {
  if (!(guard instanceof MutexGuard)) {
    throw new TypeError(
      `Cannot ${what}: guard ${describe(guard)} must be the MutexGuard of a held lock`,
    );
  }
  return guard;
}

/**
 * A condition variable: a process holding a mutex waits until another changes the shared data
 * and notifies. Wake-ups may be spurious, as with every condition variable: wait in a loop
 * that tests the condition.
 *
 * @example A flag another process sets
 * ```ts
 * import { Condition, Mutex } from "@posix/ipc/sync";
 * import { SharedMemory } from "@posix/ipc/shm";
 *
 * using memory = SharedMemory.anonymous({ size: 4096 });
 * using mutex = Mutex.init(memory, 0);
 * using ready = Condition.init(memory, 8);
 * const flag = new Int32Array(memory.buffer, 16, 1);
 * setTimeout(async () => {
 *   using _guard = await mutex.lock();
 *   flag[0] = 1;
 *   ready.notify();
 * }, 10);
 * using guard = await mutex.lock();
 * while (flag[0] === 0) await ready.wait(guard, { timeout: 5000 });
 * console.log(flag[0]); // 1
 * ```
 */
export class Condition implements Disposable {
  /** The bytes a condition takes in shared memory; place it 4-aligned. */
  static readonly SIZE: number = 4;

  readonly #placed: PlacedCells;
  readonly #label: string;

  private constructor(key: ConstructorToken, memory: SharedMemory | Mapping, offset: number) {
    token.check(key);
    const placement = place(memory, offset, Condition.SIZE, 4, "condition");
    this.#label = `condition at offset ${placement.offset}`;
    this.#placed = new PlacedCells(placement, Condition.SIZE, this.#label);
  }

  /**
   * Places a new condition at `offset`; other processes take it with {@linkcode Condition.at}.
   *
   * @param memory Shared, writable memory.
   * @param offset Where: 4-aligned, with {@linkcode Condition.SIZE} bytes inside.
   * @returns The condition.
   * @example
   * ```ts
   * import { Condition } from "@posix/ipc/sync";
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * using memory = SharedMemory.anonymous({ size: 64 });
   * using changed = Condition.init(memory, 0);
   * changed.notifyAll(); // nobody waits: nothing happens
   * ```
   */
  static init(memory: SharedMemory | Mapping, offset: number): Condition {
    const condition = new Condition(token, memory, offset);
    Atomics.store(condition.#placed.cells, 0, 0);
    return condition;
  }

  /**
   * Takes a condition that {@linkcode Condition.init} placed at `offset`.
   *
   * @param memory The shared memory that holds it.
   * @param offset Where it was placed.
   * @returns The condition.
   * @example
   * ```ts
   * import { Condition } from "@posix/ipc/sync";
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * using memory = SharedMemory.anonymous({ size: 64 });
   * Condition.init(memory, 0).close();
   * using again = Condition.at(memory, 0);
   * ```
   */
  static at(memory: SharedMemory | Mapping, offset: number): Condition {
    return new Condition(token, memory, offset);
  }

  /**
   * Unlocks the guard's mutex, waits (without blocking the event loop) for a notification,
   * and locks the mutex again before returning or throwing, whatever happens: also when this
   * condition or the mutex's handle is closed during the wait (the guard keeps the lock's
   * pages, and holds the lock again).
   *
   * @param guard The held guard of the mutex that protects the condition's data.
   * @param options `timeout` (ms; `Infinity` or none: as long as it takes) and `signal`.
   * @throws {Deno.errors.TimedOut} after `timeout` (the mutex is held again).
   * @throws {Deno.errors.BadResource} when this condition is closed, or the guard has unlocked.
   * @throws {RangeError} for a timeout that is NaN or negative.
   * @throws {TypeError} for a guard that is not a {@linkcode MutexGuard}.
   * @example See {@linkcode Condition}.
   */
  async wait(guard: MutexGuard, options: WaitOptions = {}): Promise<void> {
    validateGuard(guard, `wait on the ${this.#label}`);
    options = readWaitOptions(options, `wait on the ${this.#label}`); // read once
    const placed = this.#placed;
    placed.assertOpen();
    const seen = Atomics.load(placed.cells, 0);
    suspendGuard(guard);
    try {
      await placed.waiting(() =>
        waitUntil<true>(options, {
          what: `wait on the ${this.#label}`,
          attempt: () => Atomics.load(placed.cells, 0) !== seen ? true : RETRY,
          sleep: (ms) => futexWait(placed.word(0), seen, ms),
          assertOpen: () => placed.assertOpen(),
        })
      );
    } finally {
      await resumeGuard(guard);
    }
  }

  /**
   * Like {@linkcode Condition.wait}, blocking this thread.
   *
   * @param guard The held guard of the mutex.
   * @param options `timeout` (ms; `Infinity` or none: as long as it takes).
   * @throws {Deno.errors.TimedOut} after `timeout` (the mutex is held again).
   * @example
   * ```ts
   * import { Condition, Mutex } from "@posix/ipc/sync";
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * using memory = SharedMemory.anonymous({ size: 64 });
   * using mutex = Mutex.init(memory, 0);
   * using changed = Condition.init(memory, 8);
   * using guard = mutex.lockSync();
   * try {
   *   changed.waitSync(guard, { timeout: 10 }); // nobody notifies here
   * } catch (error) {
   *   console.log(error instanceof Deno.errors.TimedOut, guard.held); // true true
   * }
   * ```
   */
  waitSync(guard: MutexGuard, options: { timeout?: number } = {}): void {
    validateGuard(guard, `wait on the ${this.#label}`);
    const deadline = deadlineAfter(validateWaitOptions(options, `wait on the ${this.#label}`));
    const placed = this.#placed;
    placed.assertOpen();
    const seen = Atomics.load(placed.cells, 0);
    suspendGuard(guard);
    try {
      while (Atomics.load(placed.cells, 0) === seen) {
        const left = sliceUntil(deadline);
        if (left <= 0) {
          throw new Deno.errors.TimedOut(
            `Cannot wait on the ${this.#label}: timed out after ${options.timeout} ms`,
          );
        }
        futexWaitSync(placed.word(0), seen, Math.min(SLICE_MS, left));
      }
    } finally {
      resumeGuardSync(guard);
    }
  }

  /**
   * Wakes one waiting process (or task).
   *
   * @example See {@linkcode Condition}.
   */
  notify(): void {
    this.#placed.assertOpen();
    Atomics.add(this.#placed.cells, 0, 1);
    futexWake(this.#placed.word(0), 1);
  }

  /**
   * Wakes every waiting process (or task).
   *
   * @example See {@linkcode Condition.init}.
   */
  notifyAll(): void {
    this.#placed.assertOpen();
    Atomics.add(this.#placed.cells, 0, 1);
    futexWake(this.#placed.word(0), 0x7fffffff);
  }

  /** Closes this handle; pending waits reject with `BadResource` within 100 ms (holding the mutex). */
  close(): void {
    this.#placed.close();
  }

  /** Same as {@linkcode Condition.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
