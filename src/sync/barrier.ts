/**
 * A reusable barrier between processes, placed in shared memory.
 *
 * @module
 */

import { place } from "../_placement.ts";
import { ConstructorToken, INT_MAX, optionsObject, validateInteger } from "../_validate.ts";
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

const token = new ConstructorToken("Barrier", "Barrier.init() or Barrier.at()");

const ARRIVED = 0;
const GENERATION = 1;
const PARTIES = 2;

/**
 * A barrier: `wait()` returns once `parties` callers (processes, or tasks) have arrived, and the
 * barrier is ready for the next round at once. A wait that times out or is aborted has still
 * counted its arrival for the round, as with pthread barriers: treat it as fatal to the round.
 *
 * @example
 * ```ts
 * import { Barrier } from "@posix/ipc/sync";
 * import { SharedMemory } from "@posix/ipc/shm";
 *
 * using memory = SharedMemory.anonymous({ size: 64 });
 * using barrier = Barrier.init(memory, 0, { parties: 2 });
 * const [a, b] = await Promise.all([barrier.wait(), barrier.wait()]);
 * console.log(a !== b); // true: exactly one arrival is the last
 * ```
 */
export class Barrier implements Disposable {
  /** The bytes a barrier takes in shared memory; place it 4-aligned. */
  static readonly SIZE: number = 16;

  readonly #placed: PlacedCells;
  readonly #label: string;

  private constructor(key: ConstructorToken, memory: SharedMemory | Mapping, offset: number) {
    token.check(key);
    const placement = place(memory, offset, Barrier.SIZE, 4, "barrier");
    this.#label = `barrier at offset ${placement.offset}`;
    this.#placed = new PlacedCells(placement, Barrier.SIZE, this.#label);
  }

  /**
   * Places a new barrier for `parties` at `offset`; other processes take it with
   * {@linkcode Barrier.at}.
   *
   * @param memory Shared, writable memory.
   * @param offset Where: 4-aligned, with {@linkcode Barrier.SIZE} bytes inside.
   * @param options `parties`: how many arrivals release a round, 1 or more.
   * @returns The barrier.
   * @throws {RangeError} for parties below 1, or an offset out of bounds or misaligned.
   * @throws {TypeError} for options that are not an object, or parties or an offset that is
   * not a number.
   * @example
   * ```ts
   * import { Barrier } from "@posix/ipc/sync";
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * using memory = SharedMemory.anonymous({ size: 64 });
   * using barrier = Barrier.init(memory, 16, { parties: 4 });
   * console.log(barrier.parties); // 4
   * ```
   */
  static init(
    memory: SharedMemory | Mapping,
    offset: number,
    options: { parties: number },
  ): Barrier {
    const parties = validateInteger(
      optionsObject(options, "Barrier.init() options").parties,
      "barrier parties",
      1,
      INT_MAX,
      "how many arrivals release a round: 1 or more",
    );
    const barrier = new Barrier(token, memory, offset);
    const cells = barrier.#placed.cells;
    Atomics.store(cells, ARRIVED, 0);
    Atomics.store(cells, GENERATION, 0);
    Atomics.store(cells, PARTIES, parties);
    return barrier;
  }

  /**
   * Takes a barrier that {@linkcode Barrier.init} placed at `offset`.
   *
   * @param memory The shared memory that holds it.
   * @param offset Where it was placed.
   * @returns The barrier.
   * @throws {TypeError} when no barrier was initialised there.
   * @example
   * ```ts
   * import { Barrier } from "@posix/ipc/sync";
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * using memory = SharedMemory.anonymous({ size: 64 });
   * Barrier.init(memory, 0, { parties: 3 }).close();
   * using again = Barrier.at(memory, 0);
   * console.log(again.parties); // 3
   * ```
   */
  static at(memory: SharedMemory | Mapping, offset: number): Barrier {
    const barrier = new Barrier(token, memory, offset);
    if (Atomics.load(barrier.#placed.cells, PARTIES) < 1) {
      barrier.close();
      throw new TypeError(`Cannot use the ${barrier.#label}: none was initialised there`);
    }
    return barrier;
  }

  /** How many arrivals release a round. */
  get parties(): number {
    this.#placed.assertOpen();
    return Atomics.load(this.#placed.cells, PARTIES);
  }

  /**
   * Arrives and waits, without blocking the event loop, until every party has arrived.
   *
   * @param options `timeout` (ms; `Infinity` or none: as long as it takes) and `signal`.
   * @returns `true` for exactly one caller per round: the last to arrive.
   * @throws {Deno.errors.TimedOut} after `timeout` (the arrival still counts).
   * @example See {@linkcode Barrier}.
   */
  async wait(options: WaitOptions = {}): Promise<boolean> {
    options = readWaitOptions(options, `wait at the ${this.#label}`); // read once
    const placed = this.#placed;
    const round = this.#arrive();
    if (round === true) return true;
    await placed.waiting(() =>
      waitUntil<true>(options, {
        what: `wait at the ${this.#label}`,
        attempt: () => Atomics.load(placed.cells, GENERATION) !== round ? true : RETRY,
        sleep: (ms) => futexWait(placed.word(GENERATION), round, ms),
        assertOpen: () => placed.assertOpen(),
      })
    );
    return false;
  }

  /**
   * Like {@linkcode Barrier.wait}, blocking this thread.
   *
   * @param options `timeout` (ms; `Infinity` or none: as long as it takes).
   * @returns `true` for the last to arrive.
   * @throws {Deno.errors.TimedOut} after `timeout` (the arrival still counts).
   * @throws {RangeError} for a timeout that is NaN or negative (nothing counted).
   * @example
   * ```ts
   * import { Barrier } from "@posix/ipc/sync";
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * using memory = SharedMemory.anonymous({ size: 64 });
   * using alone = Barrier.init(memory, 0, { parties: 1 });
   * console.log(alone.waitSync({ timeout: Infinity })); // true: the only party is the last
   * ```
   */
  waitSync(options: { timeout?: number } = {}): boolean {
    const deadline = deadlineAfter(validateWaitOptions(options, `wait at the ${this.#label}`));
    const round = this.#arrive();
    if (round === true) return true;
    while (Atomics.load(this.#placed.cells, GENERATION) === round) {
      const left = sliceUntil(deadline);
      if (left <= 0) {
        throw new Deno.errors.TimedOut(
          `Cannot wait at the ${this.#label}: timed out after ${options.timeout} ms`,
        );
      }
      futexWaitSync(this.#placed.word(GENERATION), round, Math.min(SLICE_MS, left));
    }
    return false;
  }

  /** Closes this handle; pending waits reject with `BadResource` within 100 ms. */
  close(): void {
    this.#placed.close();
  }

  /** Same as {@linkcode Barrier.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Counts an arrival: `true` when it completes the round (which it then releases), else the round. */
  #arrive(): number | true {
    const placed = this.#placed;
    placed.assertOpen();
    const cells = placed.cells;
    const round = Atomics.load(cells, GENERATION);
    if (Atomics.add(cells, ARRIVED, 1) + 1 < Atomics.load(cells, PARTIES)) return round;
    Atomics.store(cells, ARRIVED, 0);
    Atomics.add(cells, GENERATION, 1);
    futexWake(placed.word(GENERATION), 0x7fffffff);
    return true;
  }
}
