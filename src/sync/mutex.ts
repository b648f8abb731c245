/**
 * A robust mutex between processes, placed in shared memory.
 *
 * Ownership belongs to a process, not a thread: the lock word holds the owner's pid and PID
 * namespace, so it is taken with one compare-and-swap when free, waited for with a futex when
 * not, and found abandoned when its owner has died (no such process, or a zombie), as judged
 * from the owner's own PID namespace only (see `_lock_word.ts` for the layout, and why not the
 * kernel's robust futex lists). pthread robust mutexes would belong to threads, and Deno runs
 * async FFI calls on pool threads; this design keeps every lock and unlock on the thread that
 * runs JavaScript, and waits on pool threads only for wake-ups. Because ownership is per
 * process, Workers of one process must not share a mutex.
 *
 * @module
 */

import { place } from "../_placement.ts";
import { ConstructorToken } from "../_validate.ts";
import { readWaitOptions, validateWaitOptions, type WaitOptions } from "../_wait.ts";
import type { Mapping } from "../mmap.ts";
import type { SharedMemory } from "../shm.ts";
import { PlacedCells } from "./_futex.ts";
import { LOCK_WORD_SIZE, LockWord, type Taken } from "./_lock_word.ts";

const mutexToken = new ConstructorToken("Mutex", "Mutex.init() or Mutex.at()");
const guardToken = new ConstructorToken("MutexGuard", "Mutex.lock(), lockSync() or tryLock()");

let createGuard: (mutex: Mutex, lock: LockWord, placed: PlacedCells, taken: Taken) => MutexGuard;

/** For `Condition.wait`: gives up a guard's lock for the wait. Internal. */
export let suspendGuard: (guard: MutexGuard) => void;

/**
 * For `Condition.wait`: takes a suspended guard's lock again, whether or not the mutex's handle
 * was closed meanwhile (the guard keeps the pages). Internal.
 */
export let resumeGuard: (guard: MutexGuard) => Promise<void>;

/** Like `resumeGuard`, blocking this thread. Internal. */
export let resumeGuardSync: (guard: MutexGuard) => void;

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
  readonly #lock: LockWord;
  #ownerDied: boolean;
  #held = true;
  /** Ends this guard's use of the pages, which outlives the mutex handle's close. */
  readonly #done: () => void;

  /** The mutex this guard holds. */
  readonly mutex: Mutex;

  static {
    createGuard = (mutex, lock, placed, taken) =>
      new MutexGuard(guardToken, mutex, lock, placed, taken);
    suspendGuard = (guard) => {
      guard.#assertHeld();
      guard.#held = false;
      guard.#lock.release();
    };
    resumeGuard = async (guard) => {
      await guard.#lock.lock({}, () => {}, (taken) => guard.#resumed(taken));
    };
    resumeGuardSync = (guard) => {
      guard.#resumed(guard.#lock.lockSync(Infinity));
    };
  }

  private constructor(
    key: ConstructorToken,
    mutex: Mutex,
    lock: LockWord,
    placed: PlacedCells,
    taken: Taken,
  ) {
    guardToken.check(key);
    this.mutex = mutex;
    this.#lock = lock;
    this.#ownerDied = taken.ownerDied;
    this.#done = placed.use();
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
   * Declares the protected data repaired after an owner died: the mutex is usable again. Works
   * after the mutex's handle was closed, as long as the guard holds the lock.
   *
   * @throws {Deno.errors.BadResource} when the guard no longer holds the lock.
   * @example
   * ```ts
   * import { Mutex } from "@posix/ipc/sync";
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * using memory = SharedMemory.anonymous({ size: 64 });
   * using mutex = Mutex.init(memory, 0);
   * using guard = mutex.lockSync();
   * if (guard.ownerDied) {
   *   // … repair what the dead holder left half-done, then:
   *   guard.markConsistent();
   * }
   * ```
   */
  markConsistent(): void {
    this.#assertHeld();
    this.#lock.markConsistent();
  }

  /**
   * Releases the lock, waking one waiter. Unlocking after an owner died without
   * `markConsistent()` makes the mutex unrecoverable: every later lock fails with
   * ENOTRECOVERABLE. Again does nothing. A guard unlocks also after its mutex's handle was
   * closed: closing a handle never releases a lock, nor strands one.
   *
   * @example
   * ```ts
   * import { Mutex } from "@posix/ipc/sync";
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * using memory = SharedMemory.anonymous({ size: 64 });
   * const mutex = Mutex.init(memory, 0);
   * const guard = mutex.lockSync();
   * mutex.close(); // the handle goes; the lock is still held, by the guard
   * guard.unlock();
   * using again = Mutex.at(memory, 0);
   * console.log(again.owner); // null
   * ```
   */
  unlock(): void {
    if (!this.#held) return;
    this.#held = false;
    try {
      this.#lock.release();
    } finally {
      this.#done();
    }
  }

  /** Same as {@linkcode MutexGuard.unlock}, for `using`. */
  [Symbol.dispose](): void {
    this.unlock();
  }

  #resumed(taken: Taken): void {
    this.#held = true;
    this.#ownerDied ||= taken.ownerDied;
  }

  #assertHeld(): void {
    if (!this.#held) throw new Deno.errors.BadResource("Cannot use a mutex guard after unlock");
  }
}

/**
 * A robust mutex in shared memory that any process mapping the memory can lock. If the holder
 * dies, the next `lock()` succeeds with `ownerDied: true`, when the holder was in the same PID
 * namespace; a holder in another PID namespace is never judged dead (see the README's
 * "what is guaranteed").
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
  /**
   * The bytes a mutex takes in shared memory (one 64-bit word); place it 8-aligned. Earlier
   * versions asked for 4-alignment; the size is unchanged.
   */
  static readonly SIZE: number = LOCK_WORD_SIZE;

  readonly #placed: PlacedCells;
  readonly #lock: LockWord;
  readonly #label: string;

  private constructor(key: ConstructorToken, memory: SharedMemory | Mapping, offset: number) {
    mutexToken.check(key);
    const placement = place(memory, offset, Mutex.SIZE, LOCK_WORD_SIZE, "mutex");
    this.#label = `mutex at offset ${placement.offset}`;
    this.#placed = new PlacedCells(placement, Mutex.SIZE, this.#label);
    this.#lock = new LockWord(this.#placed, this.#label);
  }

  /**
   * Places a new, unlocked mutex at `offset`. Do this once, before other processes use it;
   * they take it with {@linkcode Mutex.at}.
   *
   * @param memory Shared, writable memory: a `SharedMemory` or a shared `Mapping`.
   * @param offset Where: 8-aligned, with {@linkcode Mutex.SIZE} bytes inside.
   * @returns The mutex. The memory stays mapped until it is closed.
   * @throws {RangeError} for an offset out of bounds or misaligned.
   * @throws {TypeError} for an offset that is not a number, or memory that is not shared.
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
    const mutex = new Mutex(mutexToken, memory, offset);
    mutex.#lock.init();
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
    return new Mutex(mutexToken, memory, offset);
  }

  /**
   * The pid of the process holding the lock, or `null` when it is free. The pid is the one the
   * holder has in its own PID namespace: from another namespace (another container), it names
   * some other process, or none.
   */
  get owner(): number | null {
    this.#placed.assertOpen();
    return this.#lock.owner;
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
    const result = this.#lock.attempt(false, true);
    return typeof result === "object" ? this.#guard(result) : null;
  }

  /**
   * Waits for the lock without blocking the event loop: in slices of at most 100 ms, each of
   * which also looks whether the owner is still alive.
   *
   * @param options `timeout` (ms; `Infinity` or none: as long as it takes) and `signal`.
   * @returns The guard; `using` unlocks it.
   * @throws {Deno.errors.TimedOut} after `timeout`.
   * @throws {Deno.errors.BadResource} when the handle is closed, also during the wait.
   * @throws {RangeError} for a timeout that is NaN or negative.
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
    options = readWaitOptions(options, `lock the ${this.#label}`); // read once
    this.#placed.assertOpen();
    return await this.#lock.lock(options, () => this.#placed.assertOpen(), (t) => this.#guard(t));
  }

  /**
   * Waits for the lock, blocking this thread: for workers and scripts.
   *
   * @param options `timeout` (ms; `Infinity` or none: as long as it takes).
   * @returns The guard.
   * @throws {Deno.errors.TimedOut} after `timeout`.
   * @throws {RangeError} for a timeout that is NaN or negative.
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
    const timeout = validateWaitOptions(options, `lock the ${this.#label}`);
    this.#placed.assertOpen();
    return this.#guard(this.#lock.lockSync(timeout));
  }

  /**
   * Closes this handle (the mutex stays in the memory for other processes). Pending async
   * locks reject with `BadResource` within 100 ms. A lock that a guard holds stays held until
   * the guard unlocks, which it still can; the pages stay mapped until then. Closing again
   * does nothing.
   *
   * @example
   * ```ts
   * import { Mutex } from "@posix/ipc/sync";
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * using memory = SharedMemory.anonymous({ size: 64 });
   * const mutex = Mutex.init(memory, 0);
   * mutex.close();
   * console.log(mutex.closed); // true
   * ```
   */
  close(): void {
    this.#placed.close();
  }

  /** Same as {@linkcode Mutex.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #guard(taken: Taken): MutexGuard {
    return createGuard(this, this.#lock, this.#placed, taken);
  }
}
