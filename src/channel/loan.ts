/**
 * Zero-copy sends: a `Loan` is a writable view into a channel's ring, at the place the next
 * message goes; committing it publishes the message, abandoning it publishes nothing. Here are
 * both the `Loan` and how a channel handle opens and ends one ({@linkcode openLoan}). Internal:
 * the public entry is src/channel/mod.ts; src/channel/channel.ts checks that its handle may send
 * and, in the multi mode, takes the senders' lock before it opens a loan.
 *
 * A loan's bytes live in an ArrayBuffer of their own over a second mapping of the ring, the
 * channel's loan window, never over the ring's main mapping: when the loan ends its buffer is
 * detached, so a stale view reads as empty; and when the caller transferred the buffer away
 * (`transfer()`, `postMessage`), which leaves the new owner pointing into the ring, the whole
 * window is entombed (src/_tomb.ts): it reads zeros from then on, and the channel maps a fresh
 * window for its next loan.
 *
 * @module
 */

import { ConstructorToken, validateInteger } from "../_validate.ts";
import { entombRange } from "../_tomb.ts";
import type { MutexGuard } from "../sync/mutex.ts";
import type { Frames } from "./frames.ts";
import { C_LOANED, C_SENDERS_WAITING, mapRing } from "./layout.ts";
import type { RingLease } from "./lease.ts";
import { wakeAll, yieldIfDue } from "./wait.ts";

/** What a channel keeps of an open loan. The loan's finalizer abandons it through `finish`. */
export interface LoanRecord {
  /** The loan's own buffer over the channel's loan window. */
  readonly buffer: ArrayBuffer;
  /** The bytes reserved. */
  readonly size: number;
  /** Whether the loan is still open: not committed, abandoned, nor ended by a close. */
  open: boolean;
  /** Publishes the first `length` bytes, or with -1 nothing; ends the loan. */
  finish(length: number): void;
}

/** Abandons a loan that was dropped while open, so that its channel is free again. */
const abandonWhenUnreachable = new FinalizationRegistry<LoanRecord>((record) => {
  try {
    record.finish(-1);
  } catch {
    // never throws from a finalizer: the channel's close ends the loan in any case
  }
});

const token = new ConstructorToken("Loan", "Channel.loan(), loanSync() or tryLoan()");

/** Makes a loan over a record; for src/channel/channel.ts. Internal. */
export let createLoan: (record: LoanRecord) => Loan;

/**
 * Opens a loan of `size` bytes where the next message goes, if it fits after the tail; returns
 * its record, or `undefined` (then `guard` is released). The bytes are a buffer of their own
 * over the lease's loan window, mapped on first use. In the multi mode `guard` is the senders'
 * lock, held until the loan ends and marked in C_LOANED so that other senders wait for it as
 * for room (src/channel/locks.ts). `ended` runs as the loan ends, before anything is published.
 */
export function openLoan(
  frames: Frames<unknown>,
  lease: RingLease,
  capacity: number,
  size: number,
  guard: MutexGuard | null,
  ended: () => void,
): LoanRecord | undefined {
  try {
    if (!frames.fits(size)) {
      guard?.unlock();
      return undefined;
    }
    const window = lease.window ??= mapRing(lease.memory.fd, capacity);
    const buffer = Deno.UnsafePointerView.getArrayBuffer(
      Deno.UnsafePointer.offset(window.base, frames.next()) as Deno.PointerObject,
      size,
    );
    if (guard) Atomics.store(lease.cells, C_LOANED, 1);
    const record: LoanRecord = {
      buffer,
      size,
      open: true,
      finish: (length) => finishLoan(record, frames, lease, guard, length, ended),
    };
    return record;
  } catch (error) {
    guard?.unlock();
    throw error;
  }
}

/**
 * Ends a loan: its buffer detached (or, when it was transferred away, the whole window
 * entombed), then its bytes published when `length` >= 0, then the senders' lock released and
 * the senders that waited for it woken.
 */
function finishLoan(
  record: LoanRecord,
  frames: Frames<unknown>,
  lease: RingLease,
  guard: MutexGuard | null,
  length: number,
  ended: () => void,
): void {
  if (!record.open) return;
  record.open = false;
  ended();
  if (!record.buffer.detached) record.buffer.transfer(0);
  else if (lease.window) {
    // Its new owner still points into the window: zeros from now on, a new window next time.
    entombRange(lease.window.base, lease.window.length);
    lease.window = null;
  }
  try {
    if (length >= 0) frames.commit(length);
  } finally {
    if (guard) {
      const cells = lease.cells;
      Atomics.store(cells, C_LOANED, 0);
      guard.unlock();
      // Senders of other processes that found the lock loaned sleep as for room: wake them.
      if (Atomics.load(cells, C_SENDERS_WAITING) !== 0) wakeAll(cells, lease.data, lease.space);
    }
  }
  if (length >= 0) yieldIfDue();
}

/**
 * A message being written in place: `bytes` is a view into the channel's ring, where the next
 * message goes. `commit()` publishes it (and wakes receivers, as `send` does); `abandon()`,
 * `using`, or dropping the loan publishes nothing. While it is open, the handle that made it
 * sends nothing else (a send or loan there is `Deno.errors.Busy`), and on a `multi` channel it
 * holds the senders' lock, so other senders wait for it. Once it ends, `bytes` reads as empty:
 * a stale view never writes into the ring.
 *
 * @example Filling a message in place
 * ```ts
 * import { Channel } from "@posix/ipc/channel";
 *
 * using channel = Channel.create({ capacity: 1 << 16 });
 * {
 *   using loan = await channel.loan(1024, { timeout: 1000 });
 *   loan.bytes.fill(7);
 *   loan.commit(16); // publishes the first 16 bytes
 * }
 * console.log(channel.tryReceive()?.length); // 16
 * ```
 */
export class Loan implements Disposable {
  readonly #record: LoanRecord;
  readonly #bytes: Uint8Array<ArrayBuffer>;
  #ended: "" | "committed" | "abandoned" = "";

  static {
    createLoan = (record) => new Loan(token, record);
  }

  private constructor(key: ConstructorToken, record: LoanRecord) {
    token.check(key);
    this.#record = record;
    this.#bytes = new Uint8Array(record.buffer);
    abandonWhenUnreachable.register(this, record, this);
  }

  /** The bytes reserved: the largest message this loan can commit. */
  get size(): number {
    return this.#record.size;
  }

  /** Whether the loan is still open: not committed, abandoned, nor ended by the channel's close. */
  get open(): boolean {
    return this.#record.open;
  }

  /**
   * The writable view into the ring, `size` bytes long. It holds whatever the ring held there
   * before (older messages): write every byte you commit. Receivers see nothing of it before
   * `commit()`.
   *
   * @throws {Deno.errors.BadResource} once the loan ended (its old view reads as empty).
   */
  get bytes(): Uint8Array<ArrayBuffer> {
    this.#assertOpen("use");
    return this.#bytes;
  }

  /**
   * Publishes the first `length` bytes as one message and ends the loan.
   *
   * @param length How many bytes to publish, from 0 to `size`. Default `size`.
   * @throws {RangeError} for a length that is not an integer from 0 to `size`.
   * @throws {Deno.errors.BadResource} when the loan already ended, or its channel was closed.
   * @example
   * ```ts
   * import { Channel } from "@posix/ipc/channel";
   *
   * using channel = Channel.create({ capacity: 4096 });
   * const loan = channel.tryLoan(3)!;
   * loan.bytes.set([1, 2, 3]);
   * loan.commit();
   * console.log(channel.tryReceive()); // Uint8Array(3) [ 1, 2, 3 ]
   * ```
   */
  commit(length?: number): void {
    this.#assertOpen("commit");
    const size = this.#record.size;
    const published = length === undefined ? size : validateInteger(
      length,
      "length",
      0,
      size,
      "at most the loan's size",
    );
    this.#end("committed");
    this.#record.finish(published);
  }

  /**
   * Ends the loan without publishing anything. Again, or after `commit()`, does nothing.
   *
   * @example
   * ```ts
   * import { Channel } from "@posix/ipc/channel";
   *
   * using channel = Channel.create({ capacity: 4096 });
   * const loan = channel.tryLoan(8)!;
   * loan.abandon();
   * console.log(channel.tryReceive(), loan.open); // undefined false
   * ```
   */
  abandon(): void {
    if (!this.#record.open) return;
    this.#end("abandoned");
    this.#record.finish(-1);
  }

  /** Same as {@linkcode Loan.abandon}, for `using`: a loan not committed publishes nothing. */
  [Symbol.dispose](): void {
    this.abandon();
  }

  #end(how: "committed" | "abandoned"): void {
    this.#ended = how;
    abandonWhenUnreachable.unregister(this);
  }

  #assertOpen(verb: string): void {
    if (this.#record.open) return;
    const why = this.#ended === "" ? "its channel was closed" : `it was ${this.#ended}`;
    throw new Deno.errors.BadResource(`Cannot ${verb} the loan: ${why}`);
  }
}
