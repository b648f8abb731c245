/**
 * A robust mutex between processes, placed in shared memory.
 *
 * Ownership belongs to a process, not a thread: the lock word holds the owner's pid, so it is
 * taken with one compare-and-swap when free, waited for with a futex when not, and found
 * abandoned when its owner has died (no such process, or a zombie). pthread robust mutexes
 * would belong to threads, and Deno runs async FFI calls on pool threads; this design keeps
 * every lock and unlock on the thread that runs JavaScript, and waits on pool threads only for
 * wake-ups. Because ownership is per process, Workers of one process must not share a mutex.
 *
 * @module
 */

import { EDEADLK } from "../../ffi/constants.ts";
import { place } from "../_placement.ts";
import { processIsDead } from "../_liveness.ts";
import { RETRY, SLICE_MS, validateWaitOptions, type WaitOptions, waitUntil } from "../_wait.ts";
import { IpcError, systemError } from "../errors.ts";
import type { Mapping } from "../mmap.ts";
import type { SharedMemory } from "../shm.ts";
import { futexWait, futexWaitSync, futexWake, PlacedCells } from "./_futex.ts";

/** Cell 0: 0 when free, else the owner's pid, with WAITERS set while someone may sleep. */
const WORD = 0;
/** Cell 1: whether the protected data is consistent. */
const STATE = 1;
const WAITERS = 1 << 30;
const PID = Deno.pid;
const PID_MASK = WAITERS - 1;
const CONSISTENT = 0;
const INCONSISTENT = 1;
const NOT_RECOVERABLE = 2;
/** Tries before a contended lock sleeps in the kernel: critical sections are usually short. */
const SPINS = 64;

let createGuard: (mutex: Mutex, cells: PlacedCells, ownerDied: boolean) => MutexGuard;

/** For `Condition.wait`: gives up a guard's lock for the wait. Internal. */
export let suspendGuard: (guard: MutexGuard) => void;

/** For `Condition.wait`: the lock is held again, as `again` granted; it passes to `guard`. Internal. */
export let resumeGuard: (guard: MutexGuard, again: MutexGuard) => void;

/**
 * A held lock. Unlock it once (or let `using` do it). When the previous owner died holding the
 * lock, `ownerDied` is `true`: repair the data, then call `markConsistent()` before unlocking,
 * or the mutex becomes unrecoverable.
 *
 * @example
 * ```ts
 * import { Mutex } from "@posix/ipc/sync";
 * import { SharedMemory } from "@posix/ipc/shm";
 *
 * using memory = SharedMemory.anonymous({ size: 4096 });
 * using mutex = Mutex.init(memory, 0);
 * using guard = await mutex.lock();
 * if (guard.ownerDied) guard.markConsistent(); // after repairing the data
 * ```
 */
export class MutexGuard implements Disposable {
  readonly #cells: PlacedCells;
  #ownerDied: boolean;
  #held = true;

  /** The mutex this guard holds. */
  readonly mutex: Mutex;

  static {
    createGuard = (mutex, cells, ownerDied) => new MutexGuard(mutex, cells, ownerDied);
    suspendGuard = (guard) => {
      guard.#assertHeld();
      guard.#held = false;
      release(guard.#cells);
    };
    resumeGuard = (guard, again) => {
      again.#held = false;
      guard.#held = true;
      guard.#ownerDied ||= again.#ownerDied;
    };
  }

  private constructor(mutex: Mutex, cells: PlacedCells, ownerDied: boolean) {
    this.mutex = mutex;
    this.#cells = cells;
    this.#ownerDied = ownerDied;
  }

  /** Whether the previous owner died holding the lock, so that the data may be half-changed. */
  get ownerDied(): boolean {
    return this.#ownerDied;
  }

  /** Whether this guard still holds the lock. */
  get held(): boolean {
    return this.#held;
  }

  /**
   * Declares the protected data repaired after an owner died: the mutex is usable again.
   *
   * @throws {Deno.errors.BadResource} when the guard no longer holds the lock.
   */
  markConsistent(): void {
    this.#assertHeld();
    Atomics.compareExchange(this.#cells.cells, STATE, INCONSISTENT, CONSISTENT);
  }

  /**
   * Releases the lock, waking one waiter. Unlocking after an owner died without
   * `markConsistent()` makes the mutex unrecoverable: every later lock fails with
   * ENOTRECOVERABLE. Again does nothing.
   */
  unlock(): void {
    if (!this.#held) return;
    this.#held = false;
    release(this.#cells);
  }

  /** Same as {@linkcode MutexGuard.unlock}, for `using`. */
  [Symbol.dispose](): void {
    this.unlock();
  }

  #assertHeld(): void {
    if (!this.#held) throw new Deno.errors.BadResource("Cannot use a mutex guard after unlock");
  }
}

/** Unlocks: marks an abandoned, unrepaired mutex unrecoverable; wakes one waiter (all, then). */
function release(placed: PlacedCells): void {
  const cells = placed.cells;
  if (Atomics.load(cells, STATE) === INCONSISTENT) Atomics.store(cells, STATE, NOT_RECOVERABLE);
  const old = Atomics.exchange(cells, WORD, 0);
  if (old & WAITERS) {
    futexWake(placed.word(WORD), Atomics.load(cells, STATE) === NOT_RECOVERABLE ? 0x7fffffff : 1);
  }
}

/**
 * A robust mutex in shared memory that any process mapping the memory can lock. If the holder
 * dies, the next `lock()` succeeds with `ownerDied: true`.
 *
 * @example Counting from several processes
 * ```ts
 * import { Mutex } from "@posix/ipc/sync";
 * import { SharedMemory } from "@posix/ipc/shm";
 *
 * using memory = SharedMemory.anonymous({ size: 4096 }); // give it to children with spawn's fds
 * using mutex = Mutex.init(memory, 0);
 * const counter = new Int32Array(memory.buffer, 64, 1);
 * {
 *   using _guard = await mutex.lock({ timeout: 1000 });
 *   counter[0] = counter[0]! + 1;
 * }
 * console.log(counter[0]); // 1
 * ```
 */
export class Mutex implements Disposable {
  /** The bytes a mutex takes in shared memory; place it 4-aligned. */
  static readonly SIZE: number = 8;

  readonly #placed: PlacedCells;
  readonly #label: string;

  private constructor(memory: SharedMemory | Mapping, offset: number) {
    this.#label = `mutex at offset ${offset}`;
    this.#placed = new PlacedCells(
      place(memory, offset, Mutex.SIZE, 4, "mutex"),
      Mutex.SIZE,
      this.#label,
    );
  }

  /**
   * Places a new, unlocked mutex at `offset`. Do this once, before other processes use it;
   * they take it with {@linkcode Mutex.at}.
   *
   * @param memory Shared, writable memory: a `SharedMemory` or a shared `Mapping`.
   * @param offset Where: 4-aligned, with {@linkcode Mutex.SIZE} bytes inside.
   * @returns The mutex. The memory stays mapped until it is closed.
   * @throws {RangeError} for an offset out of bounds or misaligned.
   * @example
   * ```ts
   * import { Mutex } from "@posix/ipc/sync";
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * using memory = SharedMemory.anonymous({ size: 64 });
   * using mutex = Mutex.init(memory, 8);
   * console.log(mutex.owner); // null
   * ```
   */
  static init(memory: SharedMemory | Mapping, offset: number): Mutex {
    const mutex = new Mutex(memory, offset);
    Atomics.store(mutex.#placed.cells, WORD, 0);
    Atomics.store(mutex.#placed.cells, STATE, CONSISTENT);
    return mutex;
  }

  /**
   * Takes a mutex that {@linkcode Mutex.init} placed at `offset`, in this or another process.
   *
   * @param memory The shared memory that holds it.
   * @param offset Where it was placed.
   * @returns The mutex.
   * @example
   * ```ts
   * import { Mutex } from "@posix/ipc/sync";
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * using memory = SharedMemory.anonymous({ size: 64 });
   * Mutex.init(memory, 0).close();
   * using mutex = Mutex.at(memory, 0); // as a child given the memory would
   * console.log(mutex.tryLock() !== null); // true
   * ```
   */
  static at(memory: SharedMemory | Mapping, offset: number): Mutex {
    return new Mutex(memory, offset);
  }

  /** The pid of the process holding the lock, or `null` when it is free. */
  get owner(): number | null {
    this.#placed.assertOpen();
    return (Atomics.load(this.#placed.cells, WORD) & PID_MASK) || null;
  }

  /** Whether this handle was closed. */
  get closed(): boolean {
    return this.#placed.closed;
  }

  /**
   * Takes the lock if it is free or its owner died, without waiting.
   *
   * @returns A guard, or `null` when another live process (or this one) holds it.
   * @throws {IpcError} with code ENOTRECOVERABLE when the mutex is unrecoverable.
   * @example
   * ```ts
   * import { Mutex } from "@posix/ipc/sync";
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * using memory = SharedMemory.anonymous({ size: 64 });
   * using mutex = Mutex.init(memory, 0);
   * using first = mutex.tryLock();
   * console.log(first !== null, mutex.tryLock()); // true null
   * ```
   */
  tryLock(): MutexGuard | null {
    this.#placed.assertOpen();
    const result = this.#attempt(false, true);
    return typeof result === "object" ? result : null;
  }

  /**
   * Waits for the lock without blocking the event loop: in slices of at most 100 ms, each of
   * which also looks whether the owner is still alive.
   *
   * @param options `timeout` (ms) and `signal`.
   * @returns The guard; `using` unlocks it.
   * @throws {Deno.errors.TimedOut} after `timeout`.
   * @throws {IpcError} with code ENOTRECOVERABLE when the mutex is unrecoverable.
   * @example
   * ```ts
   * import { Mutex } from "@posix/ipc/sync";
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * using memory = SharedMemory.anonymous({ size: 64 });
   * using mutex = Mutex.init(memory, 0);
   * using guard = await mutex.lock({ timeout: 1000 });
   * console.log(guard.ownerDied); // false
   * ```
   */
  async lock(options: WaitOptions = {}): Promise<MutexGuard> {
    validateWaitOptions(options, `lock the ${this.#label}`);
    this.#placed.assertOpen();
    const fast = this.#spin();
    if (fast) return fast;
    const first = this.#attempt(false, false);
    if (typeof first === "object") return first;
    let expected = first;
    let slept = false;
    let started = 0;
    return await this.#placed.waiting(() =>
      waitUntil<MutexGuard>(options, {
        what: `lock the ${this.#label}`,
        attempt: () => {
          const thorough = slept && performance.now() - started >= SLICE_MS * 0.9;
          const result = this.#attempt(slept, thorough);
          if (typeof result === "object") return result;
          expected = result;
          return RETRY;
        },
        sleep: async (ms) => {
          slept = true;
          started = performance.now();
          await futexWait(this.#placed.word(WORD), expected, ms);
        },
        assertOpen: () => this.#placed.assertOpen(),
      })
    );
  }

  /**
   * Waits for the lock, blocking this thread: for workers and scripts.
   *
   * @param options `timeout` (ms).
   * @returns The guard.
   * @throws {Deno.errors.TimedOut} after `timeout`.
   * @throws {IpcError} with code EDEADLK when this process holds the lock already.
   * @example
   * ```ts
   * import { Mutex } from "@posix/ipc/sync";
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * using memory = SharedMemory.anonymous({ size: 64 });
   * using mutex = Mutex.init(memory, 0);
   * using _guard = mutex.lockSync({ timeout: 1000 });
   * ```
   */
  lockSync(options: { timeout?: number } = {}): MutexGuard {
    if (options.timeout !== undefined) validateWaitOptions(options, `lock the ${this.#label}`);
    this.#placed.assertOpen();
    const fast = this.#spin();
    if (fast) return fast;
    const deadline = options.timeout === undefined ? Infinity : performance.now() + options.timeout;
    let slept = false;
    let thorough = false;
    while (true) {
      const result = this.#attempt(slept, thorough);
      if (typeof result === "object") return result;
      if ((result & PID_MASK) === PID) {
        throw systemError(EDEADLK, "lock", {
          action: `lock the ${this.#label}`,
          hint: "this process holds it already",
        });
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new Deno.errors.TimedOut(
          `Cannot lock the ${this.#label}: timed out after ${options.timeout} ms`,
        );
      }
      const slice = Math.min(SLICE_MS, left);
      const started = performance.now();
      futexWaitSync(this.#placed.word(WORD), result, slice);
      slept = true;
      thorough = performance.now() - started >= slice * 0.9;
    }
  }

  /**
   * Closes this handle (the mutex stays in the memory for other processes). Pending async
   * locks reject with `BadResource` within 100 ms. Closing again does nothing.
   */
  close(): void {
    this.#placed.close();
  }

  /** Same as {@linkcode Mutex.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Takes a free lock in a few bounded tries (one compare-and-swap each), or gives up. */
  #spin(): MutexGuard | null {
    const cells = this.#placed.cells;
    if (Atomics.load(cells, STATE) !== CONSISTENT) return null; // the slow path explains why
    for (let i = 0; i < SPINS; i++) {
      if (Atomics.load(cells, WORD) === 0 && Atomics.compareExchange(cells, WORD, 0, PID) === 0) {
        return createGuard(this, this.#placed, false);
      }
    }
    return null;
  }

  /**
   * One try: a guard, or the lock word to sleep on (with WAITERS set). After a sleep the lock
   * is taken as contended, so that the waiters still asleep are woken by the next unlock.
   */
  #attempt(afterSleep: boolean, thorough: boolean): MutexGuard | number {
    const cells = this.#placed.cells;
    if (Atomics.load(cells, STATE) === NOT_RECOVERABLE) {
      throw new IpcError(
        `Cannot lock the ${this.#label}: it is not recoverable, because a process unlocked it ` +
          `after its owner died without calling markConsistent() (ENOTRECOVERABLE); ` +
          `initialise it again once no process uses it`,
        { code: "ENOTRECOVERABLE", errno: 131, syscall: "lock", objectName: this.#label },
      );
    }
    const mine = PID | (afterSleep ? WAITERS : 0);
    const old = Atomics.compareExchange(cells, WORD, 0, mine);
    if (old === 0) {
      return createGuard(this, this.#placed, Atomics.load(cells, STATE) === INCONSISTENT);
    }
    const owner = old & PID_MASK;
    if (owner !== PID && processIsDead(owner, thorough)) {
      if (Atomics.compareExchange(cells, WORD, old, PID | (old & WAITERS)) === old) {
        Atomics.store(cells, STATE, INCONSISTENT);
        return createGuard(this, this.#placed, true);
      }
      return this.#attempt(afterSleep, thorough);
    }
    if (old & WAITERS) return old;
    return Atomics.compareExchange(cells, WORD, old, old | WAITERS) === old
      ? old | WAITERS
      : this.#attempt(afterSleep, thorough);
  }
}
