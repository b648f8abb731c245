/**
 * Zero-copy sends: a `Loan` is a writable view into a channel's ring, at the place the next
 * message goes; committing it publishes the message, abandoning it publishes nothing. Internal:
 * the public entry is src/channel/mod.ts, and the channel's side is in src/channel/channel.ts.
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
