/**
 * Where a channel's copying receive puts the bytes it takes out of the ring. Internal.
 *
 * A fresh ArrayBuffer per message costs far more than the copy itself: V8 zero-fills it (half
 * of `new ArrayBuffer(65536)` under perf is calloc's memset), counts it as external memory
 * (which schedules garbage collections), and the C allocator hands out pages that fault in.
 * bench/fixtures/copy_alloc.ts, medians of batches of 4 MiB (collections included), µs per
 * message on the shared 2-core machine, fresh (`slice()`) / in a 256 KiB slab / into a reused
 * buffer: 64 B 0.34 / 0.07 / 0.04; 4 KiB 1.33 / 0.36 / 0.12; 8 KiB 1.21 / 0.66 / 0.18;
 * 16 KiB 1.72 / 1.40 / 0.37; 64 KiB 5.2-6.6 / 4.9-7.0 (1-4 MiB slabs alike) / 1.5;
 * 1 MiB 100 / 97-109 / 24. So slabs pay off for small messages only: from 16 KiB on, every
 * fresh byte costs about the same, whether the allocation is one message or one slab, and only
 * reuse is cheaper. A resizable ArrayBuffer costs 10× more than a plain one. Hence slabs up to
 * 8 KiB (at least 32 messages a slab, at most 3% of it left unused when it fills) and slabs of
 * 256 KiB (1 and 4 MiB were no faster, and keep more alive).
 *
 * End to end (bench/fixtures/copy_stream.ts, a child's `await send`, the parent's `for await`,
 * medians of 5 alternating trials): 64 B messages went from 0.94 to 2.3 million a second with
 * the slabs and the plain iterator; 64 KiB messages stay at 3.1-3.4 GB/s with copies, about a
 * Unix socket read into a reused buffer, where `receiveInto` gives 6.5-9.3 GB/s and the
 * zero-copy view 10-12.6 GB/s: for large messages, a fresh zero-filled buffer is the bound.
 *
 * The defaults, safe for a caller who holds on to messages:
 * - A message of up to {@linkcode SLAB_MESSAGE_MAX} bytes is copied into a slab, one
 *   {@linkcode SLAB_SIZE}-byte ArrayBuffer shared with the messages received just before and
 *   after it; a slab is never reused, only dropped when full, so a held message never changes.
 *   Holding one message keeps its whole slab alive: at most {@linkcode SLAB_SIZE} bytes per held
 *   message (`message.buffer` is that slab). `message.slice()` keeps only its own bytes. An
 *   open handle keeps its current slab too, until it fills or the handle closes.
 * - A larger message gets an ArrayBuffer of its own.
 * - `receiveInto(buffer)` copies into the caller's buffer and allocates nothing.
 *
 * Pools (buffers the caller gives back) were measured too: as fast as reuse, but a message
 * given back while still referenced changes under its holder, so they are not offered.
 *
 * @module
 */

import { type Codec, codecs } from "../codec.ts";
import { describe, plainBytes } from "../_validate.ts";

/** The largest message, in bytes, that a copying receive places in a shared slab. */
export const SLAB_MESSAGE_MAX = 8 * 1024;

/**
 * The largest message, in bytes, that {@linkcode Slabs.copyWords} copies word by word; larger
 * ones are copied with `set`, which is faster from about this size on.
 */
export const WORD_COPY_MAX = 256;

/** The size of one slab, in bytes: what a held small message keeps alive at most. */
export const SLAB_SIZE = 256 * 1024;

/**
 * Copies messages out of a ring: small ones into slabs, handed out as subarrays (a new slab when
 * the current one is full; a slab is never written again once handed out in part), larger ones
 * into ArrayBuffers of their own.
 *
 * @example
 * ```ts ignore
 * const slabs = new Slabs();
 * const a = slabs.copy(new Uint8Array([1, 2]));
 * const b = slabs.copy(new Uint8Array([3]));
 * console.log(a.buffer === b.buffer, a, b); // true Uint8Array(2) [ 1, 2 ] Uint8Array(1) [ 3 ]
 * ```
 */
export class Slabs {
  #slab: Uint8Array<ArrayBuffer> | null = null;
  /** The current slab, as words. */
  #slabWords: Uint32Array<ArrayBuffer> | null = null;
  /** Bytes of the current slab handed out, 8-aligned. */
  #used = 0;

  /**
   * A copy of `bytes` that nothing else will ever write to.
   *
   * @param bytes The message, typically a view into the ring.
   * @returns The copy: a subarray of a slab, or for more than {@linkcode SLAB_MESSAGE_MAX} bytes
   *   (and for none), a buffer of its own.
   */
  copy(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
    return this.copyRange(bytes, 0, bytes.length);
  }

  /**
   * A copy of `source` from `start` to `end` (in range), as {@linkcode Slabs.copy} makes one,
   * without a view of the source: for a lookup that copies a few bytes many times a second.
   *
   * @param source The bytes, typically a whole shared segment.
   * @param start The first byte to copy.
   * @param end The byte after the last.
   * @returns The copy.
   */
  copyRange(source: Uint8Array, start: number, end: number): Uint8Array<ArrayBuffer> {
    const length = end - start;
    if (length > SLAB_MESSAGE_MAX || length === 0) {
      const copy = new Uint8Array(length);
      copy.set(source.subarray(start, end));
      return copy;
    }
    const at = this.#reserve(length);
    const slab = this.#slab!;
    if (length <= 64) {
      // A few bytes: a loop costs less than a view of the source and a call to set().
      for (let i = 0; i < length; i++) slab[at + i] = source[start + i]!;
    } else {
      slab.set(source.subarray(start, end), at);
    }
    return slab.subarray(at, at + length);
  }

  /**
   * A copy of the `length` bytes that begin at word `first` of `words` (a ring, its frames
   * 8-aligned). Up to {@linkcode WORD_COPY_MAX} bytes it copies word by word: no view of the
   * ring and no call of `set`, which were a third of a small message's receive. It may read up
   * to 3 bytes past the message, which the ring's 8-aligned frame holds.
   *
   * @param words The ring, as words.
   * @param first The index of the message's first word.
   * @param length The message's length in bytes.
   * @returns The copy, as {@linkcode Slabs.copy} makes it.
   */
  copyWords(words: Uint32Array, first: number, length: number): Uint8Array<ArrayBuffer> {
    if (length > WORD_COPY_MAX || length === 0) {
      return this.copy(new Uint8Array(words.buffer, words.byteOffset + first * 4, length));
    }
    const at = this.#reserve(length);
    const to = this.#slabWords!;
    for (let from = first, into = at >>> 2, end = first + ((length + 3) >>> 2); from < end;) {
      to[into++] = words[from++]!;
    }
    return this.#slab!.subarray(at, at + length);
  }

  /**
   * Where `length` bytes (1 to SLAB_MESSAGE_MAX) go in the current slab, 8-aligned. A slab
   * that a caller transferred away (the `buffer` of a copy handed out, posted to a worker, say)
   * is detached, its length 0: a fresh one takes its place.
   */
  #reserve(length: number): number {
    let at = this.#used;
    if (this.#slab === null || at + length > SLAB_SIZE || this.#slab.length === 0) {
      this.#slab = new Uint8Array(SLAB_SIZE);
      this.#slabWords = new Uint32Array(this.#slab.buffer);
      at = 0;
    }
    // 8-aligned, as in the ring: a decoder may lay typed arrays over the copy.
    this.#used = (at + length + 7) & ~7;
    return at;
  }

  /** Forgets the current slab: messages already handed out keep it alive on their own. */
  clear(): void {
    this.#slab = null;
    this.#slabWords = null;
    this.#used = 0;
  }
}

/**
 * Decodes a message so that the value never shares memory with the ring. The bytes codec gets a
 * copy from `slabs`; text and JSON decode from the ring itself (their values are strings and
 * plain objects, which never point into their input); any other codec, `codecs.structured`
 * included, decodes from a copy it may keep: V8's deserializer lays the typed arrays of a value
 * over its input when they are aligned, so a value decoded from the ring would change when the
 * ring is reused.
 *
 * @param codec The channel's codec.
 * @param bytes The message, a view into the ring.
 * @param slabs Where copies go.
 * @returns The value.
 * @example
 * ```ts ignore
 * const value = decodeOwned(codecs.structured, ringView, new Slabs());
 * ```
 */
export function decodeOwned<T>(codec: Codec<T>, bytes: Uint8Array, slabs: Slabs): T {
  if (decodesInPlace(codec)) return codec.decode(bytes);
  const copy = slabs.copy(bytes);
  return codec === (codecs.bytes as unknown) ? copy as T : codec.decode(copy);
}

/**
 * Whether `codec` decodes a message straight from the ring: the built-in text and JSON codecs,
 * whose values never point into their input and which run no code of the caller's. Every other
 * codec gets a copy ({@linkcode Slabs.copy}), taken before the frame is released, and decodes
 * it after ({@linkcode decodeCopy}): its decode may receive from the same channel or
 * subscription again, which must find the next message, not the one being decoded.
 *
 * @param codec The codec.
 * @returns Whether to decode in place, before the frame is released.
 * @example
 * ```ts ignore
 * decodesInPlace(codecs.json); // true
 * ```
 */
export function decodesInPlace(codec: Codec<unknown>): boolean {
  return codec === (codecs.text as unknown) || codec === (codecs.json as unknown);
}

/**
 * Decodes a copy that {@linkcode Slabs.copy} made of a message already released: the bytes
 * codec's value is the copy itself.
 *
 * @param codec The codec, one that does not decode in place.
 * @param copy The copy.
 * @returns The value.
 * @throws {Deno.errors.InvalidData} when the codec throws.
 * @example
 * ```ts ignore
 * const value = decodeCopy(codecs.structured, slabs.copy(ringView));
 * ```
 */
export function decodeCopy<T>(codec: Codec<T>, copy: Uint8Array): T {
  if (codec === (codecs.bytes as unknown)) return copy as T;
  try {
    return codec.decode(copy);
  } catch (error) {
    throw decodeFailed(codec, error);
  }
}

/**
 * The InvalidData of a message its codec could not decode (a channel's, a topic's).
 *
 * @param codec The codec that failed.
 * @param error What it threw.
 * @returns The error.
 * @example
 * ```ts ignore
 * throw decodeFailed(codecs.json, new SyntaxError("Unexpected token"));
 * ```
 */
export function decodeFailed(codec: Codec<unknown>, error: unknown): Deno.errors.InvalidData {
  return new Deno.errors.InvalidData(
    `Cannot decode a message with the ${codec.name} codec: ${
      error instanceof Error ? error.message : error
    }`,
  );
}

/**
 * What `codec` made of `value`, checked to be a Uint8Array, as a plain one over the same bytes:
 * its real length, whatever a subclass's `length` says (a lie there would frame or check fewer
 * bytes than are then copied into shared memory).
 *
 * @param codec The codec.
 * @param value The value to encode.
 * @param verb What is done with it, for the message: "send", "store".
 * @returns The bytes.
 * @throws {TypeError} when the codec made something else.
 * @example
 * ```ts ignore
 * const bytes = encodeChecked(codecs.json, { a: 1 }, "send");
 * ```
 */
export function encodeChecked<T>(codec: Codec<T>, value: T, verb: string): Uint8Array {
  return plainBytes(encodeAsIs(codec, value, verb));
}

/**
 * What `codec` made of `value`, checked to be a Uint8Array but not made plain: read its length
 * with `realLength` and copy it with `TypedArray.prototype.set`, both of which see the real
 * bytes (a channel's send, where a plain view would cost ~70 ns a message).
 *
 * @param codec The codec.
 * @param value The value to encode.
 * @param verb What is done with it, for the message: "send".
 * @returns The bytes, as the codec made them.
 * @throws {TypeError} when the codec made something else.
 * @example
 * ```ts ignore
 * const bytes = encodeAsIs(codecs.json, { a: 1 }, "send");
 * ```
 */
export function encodeAsIs<T>(codec: Codec<T>, value: T, verb: string): Uint8Array {
  const encoded: unknown = codec.encode(value);
  if (!(encoded instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot ${verb} the value: the ${codec.name} codec made ${describe(encoded)}, ` +
        "not a Uint8Array",
    );
  }
  return encoded;
}

/**
 * Checks the buffer of `receiveInto` before anything is received: a Uint8Array whose memory is
 * still there (not transferred away or detached) and is not the channel's own ring. Also for
 * `MessageQueue.receiveInto`, which has no ring.
 *
 * @param buffer The caller's argument.
 * @param ring The channel's ring, which a receive must never write into, if any.
 * @returns The buffer.
 * @throws {TypeError} naming the argument and the rule.
 * @example
 * ```ts ignore
 * const into = validateIntoBuffer(new Uint8Array(64), ringBuffer);
 * ```
 */
export function validateIntoBuffer(buffer: unknown, ring?: ArrayBuffer): Uint8Array {
  if (!(buffer instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot receive into ${
        buffer === null ? "null" : typeof buffer
      }: buffer must be a Uint8Array`,
    );
  }
  const plain = plainBytes(buffer); // its real memory and length, whatever a subclass says
  const memory = plain.buffer;
  if (memory === ring) {
    throw new TypeError("Cannot receive into the channel's own ring: give a buffer of your own");
  }
  return plain;
}

/**
 * The RangeError of a `receiveInto` whose buffer cannot hold the next message, which stays in
 * the channel.
 *
 * @param have The buffer's length.
 * @param need The next message's length.
 * @returns The error.
 * @example
 * ```ts ignore
 * throw tooSmall(16, 64);
 * ```
 */
export function tooSmall(have: number, need: number): RangeError {
  return new RangeError(
    `Cannot receive into a buffer of ${have} bytes: the next message has ${need} ` +
      "(it stays in the channel; receive it with a larger buffer)",
  );
}
