/**
 * The robust lock protocol behind {@linkcode Mutex}, on 8 bytes of shared memory. Internal.
 *
 * The 8 bytes are one 64-bit word, changed only by 64-bit compare-and-swap, so that an owner
 * and its PID namespace are always written together:
 *
 * | bytes | content                                                                           |
 * | ----- | --------------------------------------------------------------------------------- |
 * | 0-3   | the futex word: 0 when free, else the owner's pid (bits 0-29) and WAITERS (bit 30) |
 * | 4-7   | the state (bits 0-1) and the owner's PID-namespace tag (bits 2-31; 0 when free)    |
 *
 * A waiter judges the owner dead (no such process, or a zombie) only when the owner's tag is
 * its own: a pid means something only in the namespace that gave it. A process in another PID
 * namespace (a container sharing /dev/shm) would see that pid as no process at all, or as an
 * unrelated live one, and either take a live owner's lock or never notice a dead one. So across
 * namespaces a holder's death is not detected, and a waiter waits (until its timeout). A lock
 * word of the earlier layout (tag 0) is never judged either.
 *
 * Why not the kernel's robust futex lists (set_robust_list), which mark a dead owner's futex
 * whatever the namespace? A thread has one list, and glibc registers it at thread start for
 * its own robust pthread mutexes; the entries are nodes of a doubly linked list whose layout
 * (glibc's `__pthread_list_t`, the `robust_prev` slot before the head) is glibc's, not the
 * kernel's ABI. Taking part from JavaScript means writing glibc's thread structure through raw
 * pointers on every lock and unlock, and a 40-byte, 8-aligned mutex carrying a list node in
 * shared memory that must never be unmapped while listed: one mistake corrupts libc's memory.
 * A pidfd cannot help either: it can only be opened for a pid of one's own namespace.
 *
 * @module
 */

import { EDEADLK } from "../../ffi/constants.ts";
import { pidNamespaceTag, processIsDead } from "../_liveness.ts";
import {
  deadlineAfter,
  RETRY,
  SLICE_MS,
  sliceUntil,
  type WaitOptions,
  waitUntil,
} from "../_wait.ts";
import { IpcError, systemError } from "../errors.ts";
import { futexWait, futexWaitSync, futexWake, type PlacedCells } from "./_futex.ts";

/** The bytes of the lock word, and their alignment: one 64-bit word. */
export const LOCK_WORD_SIZE = 8;

const WAITERS = 1 << 30;
const PID_MASK = WAITERS - 1;
const LOW = 0xffff_ffffn;
const CONSISTENT = 0;
const INCONSISTENT = 1;
const NOT_RECOVERABLE = 2;
const STATE_MASK = 3;
/** Tries before a contended lock sleeps in the kernel: critical sections are usually short. */
const SPINS = 64;

/** What taking the lock found: whether the previous owner died holding it. */
export interface Taken {
  readonly ownerDied: boolean;
}
const TAKEN: Taken = Object.freeze({ ownerDied: false });
const TAKEN_FROM_THE_DEAD: Taken = Object.freeze({ ownerDied: true });

/** The 64-bit word of `low` (the futex word) and a high half of `tag` and `state`. */
function pack(low: number, tag: number, state: number): bigint {
  return (BigInt(((tag << 2) | state) >>> 0) << 32n) | BigInt(low >>> 0);
}

/** This process's pid and namespace tag, as the lock word holds them; read once, on first use. */
let self: { pid: number; tag: number; mine: bigint } | undefined;
function me(): { pid: number; tag: number; mine: bigint } {
  if (self === undefined) {
    const tag = pidNamespaceTag();
    self = { pid: Deno.pid, tag, mine: pack(Deno.pid, tag, CONSISTENT) };
  }
  return self;
}

/** The lock protocol on one placed lock word (see the module docs). */
export class LockWord {
  readonly #placed: PlacedCells;
  readonly #word: BigUint64Array<ArrayBuffer>;
  readonly #label: string;

  constructor(placed: PlacedCells, label: string) {
    this.#placed = placed;
    this.#word = new BigUint64Array(placed.cells.buffer, 0, 1);
    this.#label = label;
  }

  /** Makes the word free and consistent. */
  init(): void {
    Atomics.store(this.#word, 0, 0n);
  }

  /** The owner's pid, in the owner's PID namespace, or `null` when free. */
  get owner(): number | null {
    return (Atomics.load(this.#placed.cells, 0) & PID_MASK) || null;
  }

  /** Whether this process holds the lock (its pid, in its namespace). */
  heldHere(): boolean {
    const word = Atomics.load(this.#word, 0);
    const { pid, tag } = me();
    return (Number(word & LOW) & PID_MASK) === pid && Number(word >> 34n) === tag;
  }

  /** Takes a free, consistent lock in a few bounded tries (one compare-and-swap each). */
  spin(): Taken | null {
    const word = this.#word;
    const { mine } = me();
    for (let i = 0; i < SPINS; i++) {
      if (Atomics.load(word, 0) === 0n && Atomics.compareExchange(word, 0, 0n, mine) === 0n) {
        return TAKEN;
      }
    }
    return null;
  }

  /**
   * One try: the lock, or the futex word to sleep on (with WAITERS set). After a sleep the lock
   * is taken as contended, so that the waiters still asleep are woken by the next unlock.
   * `thorough` also counts a zombie owner as dead (slower: for waits that slept a whole slice).
   */
  attempt(afterSleep: boolean, thorough: boolean): Taken | number {
    const word = this.#word;
    const { pid, tag } = me();
    while (true) {
      const old = Atomics.load(word, 0);
      const low = Number(old & LOW);
      const high = Number(old >> 32n);
      const state = high & STATE_MASK;
      if (state === NOT_RECOVERABLE) throw this.#notRecoverable();
      const owner = low & PID_MASK;
      if (owner === 0) {
        const taken = pack(pid | (low & WAITERS) | (afterSleep ? WAITERS : 0), tag, state);
        if (Atomics.compareExchange(word, 0, old, taken) === old) {
          return state === INCONSISTENT ? TAKEN_FROM_THE_DEAD : TAKEN;
        }
        continue;
      }
      const ownerTag = high >>> 2;
      const judged = tag !== 0 && ownerTag === tag && owner !== pid;
      if (judged && processIsDead(owner, thorough)) {
        const taken = pack(pid | (low & WAITERS), tag, INCONSISTENT);
        if (Atomics.compareExchange(word, 0, old, taken) === old) return TAKEN_FROM_THE_DEAD;
        continue;
      }
      if (low & WAITERS) return low;
      if (Atomics.compareExchange(word, 0, old, old | BigInt(WAITERS)) === old) {
        return low | WAITERS;
      }
    }
  }

  /** Declares the data repaired after an owner died (the caller holds the lock). */
  markConsistent(): void {
    const word = this.#word;
    while (true) {
      const old = Atomics.load(word, 0);
      if ((Number(old >> 32n) & STATE_MASK) !== INCONSISTENT) return;
      const repaired = old & ~(BigInt(STATE_MASK) << 32n);
      if (Atomics.compareExchange(word, 0, old, repaired) === old) return;
    }
  }

  /**
   * Unlocks (the caller holds the lock): an abandoned, unrepaired lock becomes unrecoverable;
   * wakes one waiter, or all of them when it became unrecoverable.
   */
  release(): void {
    const word = this.#word;
    while (true) {
      const old = Atomics.load(word, 0);
      const state = Number(old >> 32n) & STATE_MASK;
      const next = state === INCONSISTENT ? NOT_RECOVERABLE : state;
      if (Atomics.compareExchange(word, 0, old, pack(0, 0, next)) !== old) continue;
      if (Number(old & LOW) & WAITERS) {
        futexWake(this.#placed.word(0), next === NOT_RECOVERABLE ? 0x7fffffff : 1);
      }
      return;
    }
  }

  /**
   * Waits for the lock without blocking the event loop, in slices of at most 100 ms, each of
   * which also looks whether the owner is still alive. `assertOpen` runs before every try;
   * `taken` runs at once when the lock is taken, so that nothing runs in between.
   */
  async lock<T>(options: WaitOptions, assertOpen: () => void, taken: (t: Taken) => T): Promise<T> {
    const fast = this.spin();
    if (fast) return taken(fast);
    const first = this.attempt(false, false);
    if (typeof first === "object") return taken(first);
    let expected = first;
    let slept = false;
    let started = 0;
    return await this.#placed.waiting(() =>
      waitUntil<T>(options, {
        what: `lock the ${this.#label}`,
        attempt: () => {
          const thorough = slept && performance.now() - started >= SLICE_MS * 0.9;
          const result = this.attempt(slept, thorough);
          if (typeof result === "object") return taken(result);
          expected = result;
          return RETRY;
        },
        sleep: async (ms) => {
          slept = true;
          started = performance.now();
          await futexWait(this.#placed.word(0), expected, ms);
        },
        assertOpen,
      })
    );
  }

  /**
   * Waits for the lock, blocking this thread, at most `timeout` ms (validated; `Infinity`: as
   * long as it takes).
   *
   * @throws {IpcError} EDEADLK when this process holds the lock: nothing could release it.
   */
  lockSync(timeout: number): Taken {
    const fast = this.spin();
    if (fast) return fast;
    const deadline = deadlineAfter(timeout);
    let slept = false;
    let thorough = false;
    while (true) {
      const result = this.attempt(slept, thorough);
      if (typeof result === "object") return result;
      if (this.heldHere()) {
        throw systemError(EDEADLK, "lock", {
          action: `lock the ${this.#label}`,
          hint: "this process holds it already",
        });
      }
      const left = sliceUntil(deadline);
      if (left <= 0) {
        throw new Deno.errors.TimedOut(
          `Cannot lock the ${this.#label}: timed out after ${timeout} ms`,
        );
      }
      const slice = Math.min(SLICE_MS, left);
      const started = performance.now();
      futexWaitSync(this.#placed.word(0), result, slice);
      slept = true;
      thorough = performance.now() - started >= slice * 0.9;
    }
  }

  #notRecoverable(): IpcError {
    return new IpcError(
      `Cannot lock the ${this.#label}: it is not recoverable, because a process unlocked it ` +
        `after its owner died without calling markConsistent() (ENOTRECOVERABLE); ` +
        `initialise it again once no process uses it`,
      { code: "ENOTRECOVERABLE", errno: 131, syscall: "lock", objectName: this.#label },
    );
  }
}
