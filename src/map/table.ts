/**
 * A mapped shared map's table: views over the segment, where each slot lives, and the key being
 * looked up, encoded once per call into a scratch buffer with its hash. Shared by the read path
 * (src/map/read.ts) and the write path (src/map/write.ts). Internal.
 *
 * @module
 */

import { describe } from "../_validate.ts";
import { HEADER, type MapShape, SLOT_HEADER } from "./layout.ts";

const encoder = new TextEncoder();

/** The longest key whose UTF-8 size an error message counts. */
const COUNTED_MAX = 1 << 16;

/** The views of one mapped map, and the key of the call in progress. */
export class Table {
  readonly shape: MapShape;
  /** `shape.slots`, at hand. */
  readonly slots: number;
  /** The whole segment as Int32 cells, bytes and float64s. */
  readonly cells: Int32Array<ArrayBuffer>;
  readonly bytes: Uint8Array<ArrayBuffer>;
  readonly floats: Float64Array<ArrayBuffer>;
  /** The current key's UTF-8 bytes (the first `keyLength`) and its hash. */
  readonly key: Uint8Array<ArrayBuffer>;
  keyLength = 0;
  hash = 0;
  /**
   * What the last lookup (`find`, src/map/read.ts) found: the slot's word, and its value's
   * offset and length, valid while the word stays the same.
   */
  word = 0;
  valueOffset = 0;
  valueLength = 0;

  constructor(buffer: ArrayBuffer, shape: MapShape) {
    this.shape = shape;
    this.slots = shape.slots;
    this.cells = new Int32Array(buffer);
    this.bytes = new Uint8Array(buffer);
    this.floats = new Float64Array(buffer, 0, Math.floor(buffer.byteLength / 8));
    this.key = new Uint8Array(shape.maxKeyBytes);
  }

  /** The byte offset of `slot`. */
  base(slot: number): number {
    return HEADER + slot * this.shape.stride;
  }

  /** The byte offset of the key bytes of the slot at `base`. */
  keyAt(base: number): number {
    return base + SLOT_HEADER;
  }

  /** The byte offset of value half `half` (0 or 1) of the slot at `base`. */
  valueAt(base: number, half: number): number {
    return base + SLOT_HEADER + this.shape.maxKeyBytes + half * this.shape.maxValueBytes;
  }

  /**
   * The first slot of the current key's probe sequence: from the hash's low 31 bits, an int32,
   * so that the remainder is an integer division (of the unsigned 32 bits, a float one).
   */
  home(): number {
    return (this.hash & 0x7fffffff) % this.slots;
  }

  /**
   * Encodes `key` into the scratch buffer and hashes it (FNV-1a, 32 bits).
   *
   * @throws {TypeError} for a key that is not a string, or not well-formed UTF-16 (a lone
   * surrogate has no UTF-8 form: encoding would make it U+FFFD, and two keys one).
   * @throws {RangeError} for a key longer than maxKeyBytes in UTF-8.
   */
  setKey(key: unknown): void {
    if (typeof key !== "string") {
      throw new TypeError(`Cannot use key ${describe(key)}: a shared map's keys are strings`);
    }
    // ASCII keys, the usual kind, are copied and hashed in one loop, without an encoder call.
    const bytes = this.key;
    let hash = 0x811c9dc5;
    if (key.length <= bytes.length) {
      let i = 0;
      for (; i < key.length; i++) {
        const code = key.charCodeAt(i);
        if (code >= 0x80) break;
        bytes[i] = code;
        hash = Math.imul(hash ^ code, 0x01000193);
      }
      if (i === key.length) {
        this.keyLength = i;
        this.hash = hash | 0;
        return;
      }
    }
    // Every UTF-16 unit takes at least one UTF-8 byte: a key of more units than maxKeyBytes is
    // too long, found without encoding it (encoding a huge key to count its bytes took seconds
    // and gigabytes).
    if (key.length > bytes.length) throw this.#tooLong(key);
    if (!key.isWellFormed()) {
      throw new TypeError(
        `Cannot use key ${describe(key)}: it holds a lone surrogate, which has no UTF-8 form`,
      );
    }
    const { read, written } = encoder.encodeInto(key, bytes);
    if (read !== key.length) throw this.#tooLong(key);
    hash = 0x811c9dc5;
    for (let i = 0; i < written; i++) hash = Math.imul(hash ^ bytes[i]!, 0x01000193);
    this.keyLength = written;
    this.hash = hash | 0;
  }

  #tooLong(key: string): RangeError {
    // The exact size only for a key short enough to encode again cheaply.
    const size = key.length <= COUNTED_MAX
      ? `${encoder.encode(key).length} UTF-8 bytes`
      : `${key.length} characters`;
    return new RangeError(
      `Cannot use key ${describe(key)}: it is ${size}, more than the map's maxKeyBytes of ` +
        this.shape.maxKeyBytes,
    );
  }

  /** Whether the key bytes of the slot at `base` are the current key's (lengths already equal). */
  sameKey(base: number): boolean {
    const bytes = this.bytes;
    const key = this.key;
    const at = base + SLOT_HEADER;
    for (let i = 0; i < this.keyLength; i++) if (bytes[at + i] !== key[i]) return false;
    return true;
  }
}
