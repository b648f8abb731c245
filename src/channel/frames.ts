/**
 * The frames of one channel handle's ring: where the handle writes a message (after the tail)
 * and reads one (at the head), and what it last saw of the other side's index. A frame is a
 * 32-bit length word and the message's bytes, 8-aligned (src/channel/layout.ts); a message is
 * contiguous even where it wraps, the data region being mapped twice. Publishing a frame is one
 * atomic store of the tail, consuming one a store of the head, each followed by a wake-up of the
 * other side if it sleeps (src/channel/wait.ts). Internal: src/channel/channel.ts checks that
 * its handle may send or receive, and takes the multi mode's locks, before it calls these.
 *
 * @module
 */

import { type Codec, codecs } from "../codec.ts";
import { realLength } from "../_validate.ts";
import { C_HEAD, C_TAIL, FRAME_HEADER, HEADER } from "./layout.ts";
import type { RingLease } from "./lease.ts";
import { decodeCopy, decodeFailed, decodesInPlace, Slabs, tooSmall } from "./slab.ts";
import { wakeReceivers, wakeSenders } from "./wait.ts";

/** The bytes a message of `length` takes in the ring: its length word, then its bytes, 8-aligned. */
function frameOf(length: number): number {
  return (FRAME_HEADER + length + 7) & ~7;
}

/** A handle's indexes into its ring, and the frame mechanics over them. */
export class Frames<T> {
  readonly #cells: Int32Array<ArrayBuffer>;
  readonly #bytes: Uint8Array<ArrayBuffer>;
  /** The ring as 32-bit words, for the frame headers (8-aligned). */
  readonly #words: Uint32Array<ArrayBuffer>;
  readonly #capacity: number;
  readonly #mask: number;
  readonly #data: Deno.PointerObject;
  readonly #space: Deno.PointerObject;
  readonly #codec: Codec<T>;
  /** Where copying receives put small messages (src/channel/slab.ts). */
  readonly #slabs = new Slabs();
  #tail: number;
  #head: number;
  #seenHead: number;
  #seenTail: number;
  /** Bytes of a zero-copy message still to release on the next receive. */
  #held = 0;

  constructor(lease: RingLease, capacity: number, codec: Codec<T>) {
    const buffer = lease.ring.buffer;
    this.#cells = lease.cells;
    this.#bytes = new Uint8Array(buffer);
    this.#words = new Uint32Array(buffer);
    this.#capacity = capacity;
    this.#mask = capacity - 1;
    this.#data = lease.data;
    this.#space = lease.space;
    this.#codec = codec;
    this.#tail = this.#seenTail = Atomics.load(this.#cells, C_TAIL);
    this.#head = this.#seenHead = Atomics.load(this.#cells, C_HEAD);
  }

  /**
   * The other side's index as this handle last saw it, for a wait (src/channel/wait.ts): its own
   * head when receiving (the ring is empty while the tail equals it), the head it last read when
   * sending (full while unchanged).
   */
  seen(receiving: boolean): number {
    return receiving ? this.#head : this.#seenHead;
  }

  /** Multi mode, under the senders' lock: takes the tail afresh (other senders moved it). */
  syncTail(): void {
    this.#tail = Atomics.load(this.#cells, C_TAIL);
  }

  /**
   * Multi mode, under the receivers' lock: takes the head afresh (other receivers moved it), and
   * the tail too (a cached tail could now lie behind the head and make old bytes look like a
   * message).
   */
  syncHead(): void {
    this.#head = Atomics.load(this.#cells, C_HEAD);
    this.#seenTail = Atomics.load(this.#cells, C_TAIL);
  }

  /** Whether a message of `length` bytes fits after the tail (the head looked at afresh if not). */
  fits(length: number): boolean {
    const frame = frameOf(length);
    const tail = this.#tail;
    if (this.#capacity - ((tail - this.#seenHead) >>> 0) >= frame) return true;
    this.#seenHead = Atomics.load(this.#cells, C_HEAD);
    return this.#capacity - ((tail - this.#seenHead) >>> 0) >= frame;
  }

  /** Where the next message's bytes go: their offset in the ring's mapping (a loan's start). */
  next(): number {
    return HEADER + (this.#tail & this.#mask) + FRAME_HEADER;
  }

  /** Copies `bytes` (with `set`, which copies their real length) after the tail, if it fits. */
  write(bytes: Uint8Array): boolean {
    const length = realLength(bytes);
    if (!this.fits(length)) return false;
    this.#bytes.set(bytes, HEADER + (this.#tail & this.#mask) + FRAME_HEADER);
    this.commit(length);
    return true;
  }

  /** Publishes the `length` bytes written after the tail: its length word, then the tail. */
  commit(length: number): void {
    const cells = this.#cells;
    const tail = this.#tail;
    this.#words[(HEADER + (tail & this.#mask)) >>> 2] = length;
    this.#tail = (tail + frameOf(length)) | 0;
    Atomics.store(cells, C_TAIL, this.#tail);
    wakeReceivers(cells, this.#data);
  }

  /**
   * Whether a message is published past the head, for `select`; with `shared` (several
   * receivers), past the head they share.
   */
  published(shared: boolean): true | undefined {
    if (shared) this.#head = Atomics.load(this.#cells, C_HEAD);
    return Atomics.load(this.#cells, C_TAIL) !== this.#head ? true : undefined;
  }

  /** The length of the message at the head, checked against what is published; -1 when none. */
  #peek(): number {
    const head = this.#head;
    if (head === this.#seenTail) {
      this.#seenTail = Atomics.load(this.#cells, C_TAIL);
      if (head === this.#seenTail) return -1;
    }
    const length = this.#words[(HEADER + (head & this.#mask)) >>> 2]!;
    const frame = frameOf(length);
    if (length > this.#capacity - 8 || frame > ((this.#seenTail - head) >>> 0)) {
      // Not a frame a sender wrote: the ring is corrupt, and nothing in it can be trusted.
      throw new Deno.errors.InvalidData(
        `Cannot receive: the channel's ring is corrupt (a frame of ${length} bytes where ` +
          `${(this.#seenTail - head) >>> 0} are published)`,
      );
    }
    return length;
  }

  /**
   * The message at the head, decoded, or `undefined` when none: with `view` (bytes codec), a
   * view into the ring, released by the next receive ({@linkcode Frames.releaseHeld}).
   */
  read(view: boolean): T | undefined {
    const length = this.#peek();
    if (length < 0) return undefined;
    const start = HEADER + (this.#head & this.#mask) + FRAME_HEADER;
    const frame = frameOf(length);
    let value: T;
    if (this.#codec === (codecs.bytes as unknown)) {
      if (view) {
        this.#held = frame;
        return this.#bytes.subarray(start, start + length) as unknown as T;
      }
      value = this.#slabs.copyWords(this.#words, start >>> 2, length) as unknown as T;
      this.#advance(frame);
      return value;
    }
    const bytes = this.#bytes.subarray(start, start + length);
    if (!decodesInPlace(this.#codec)) {
      // A copy, and the frame released before the codec runs: its decode may receive again.
      const copy = this.#slabs.copy(bytes);
      this.#advance(frame);
      return decodeCopy(this.#codec, copy);
    }
    try {
      value = this.#codec.decode(bytes); // text or JSON: never points into the ring
    } catch (error) {
      this.#advance(frame); // skip what cannot be decoded, so that the channel goes on
      throw decodeFailed(this.#codec, error);
    }
    this.#advance(frame);
    return value;
  }

  /**
   * Copies the message at the head into `buffer`; returns its length, or `undefined` when none.
   *
   * @throws {RangeError} when `buffer` is too short: the message stays in the ring.
   */
  readInto(buffer: Uint8Array): number | undefined {
    const length = this.#peek();
    if (length < 0) return undefined;
    if (length > buffer.length) throw tooSmall(buffer.length, length); // it stays in the ring
    const start = HEADER + (this.#head & this.#mask) + FRAME_HEADER;
    buffer.set(this.#bytes.subarray(start, start + length));
    this.#advance(frameOf(length));
    return length;
  }

  /** Releases the zero-copy message that the previous receive handed out, if any. */
  releaseHeld(): void {
    const frame = this.#held;
    if (frame === 0) return;
    this.#held = 0;
    this.#advance(frame);
  }

  /** Forgets the slabs: copies handed out keep theirs; the handle, closing, keeps none. */
  dropSlabs(): void {
    this.#slabs.clear();
  }

  #advance(frame: number): void {
    const cells = this.#cells;
    this.#head = (this.#head + frame) | 0;
    Atomics.store(cells, C_HEAD, this.#head);
    wakeSenders(cells, this.#space);
  }
}
