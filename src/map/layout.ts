/**
 * A shared map's memory layout: where the header's fields and every slot live, how the creator
 * writes the header and everyone else checks it against the segment's real size. Internal.
 *
 * A segment is a 256-byte header, then `slots` (twice the capacity) slots of `stride` bytes:
 *
 * | bytes   | content                                                                     |
 * | ------- | --------------------------------------------------------------------------- |
 * | 0-31    | magic "PMAP", version, capacity, slots, maxKeyBytes, maxValueBytes, whenFull, stride |
 * | 32-63   | the codec's name, UTF-8, NUL-terminated                                     |
 * | 64-67   | size: the live entries (cell 16), changed under the lock                    |
 * | 72-79   | the write clock (a float64), for least-recently-written eviction            |
 * | 128-135 | the writers' robust mutex (src/sync/mutex.ts)                               |
 * | 256-    | the slots                                                                   |
 *
 * A slot, 8-aligned:
 *
 * | bytes | content                                                                  |
 * | ----- | ------------------------------------------------------------------------ |
 * | 0-3   | its word: a change counter, its state and its live value half (below)    |
 * | 4-7   | the key's hash                                                           |
 * | 8-11  | the key's length in bytes                                                |
 * | 12-19 | the lengths of value half 0 and value half 1, in bytes                   |
 * | 24-31 | the write clock when it was last written (a float64)                     |
 * | 32-   | the key's UTF-8 bytes (maxKeyBytes), then value half 0 and value half 1  |
 * |       | (maxValueBytes each)                                                     |
 *
 * The word is everything a reader trusts: bit 0 names the half that holds the value, bits 1-2
 * the state (EMPTY, FULL, or TOMBSTONE: a deleted entry, where probing goes on), bits 3-31 count
 * the changes. A writer prepares a change where no reader of the current word looks (the other
 * half, or the key of a slot that is not FULL) and publishes it with one store of a new word
 * (src/map/write.ts), so a writer killed at any instant leaves the slot as it was before or
 * after its change, never between.
 *
 * @module
 */

import { describe, formatBytes, validateInteger } from "../_validate.ts";
import { CODEC_NAME_MAX } from "../channel/layout.ts";
import type { SharedMemory } from "../shm.ts";

export const HEADER = 256;
export const MAGIC = 0x504d4150; // "PMAP"
export const VERSION = 2;
const C_MAGIC = 0;
const C_VERSION = 1;
const C_CAPACITY = 2;
const C_SLOTS = 3;
const C_MAX_KEY = 4;
const C_MAX_VALUE = 5;
const C_WHEN_FULL = 6;
const C_STRIDE = 7;
const CODEC_AT = 32;
/** Cell of the live entry count. */
export const C_SIZE = 16;
/** Float64 index of the write clock. */
export const F_CLOCK = 9;
/** Byte offset of the writers' mutex. */
export const LOCK_AT = 128;

/** A slot's header, before its key and value bytes. */
export const SLOT_HEADER = 32;
/** Int32 cells of a slot, from its first. */
export const S_WORD = 0;
export const S_HASH = 1;
export const S_KEY_LENGTH = 2;
/** The length of value half h is at cell `S_VALUE_LENGTH + h`. */
export const S_VALUE_LENGTH = 3;
/** Float64 index of a slot's stamp, from its first float64. */
export const S_STAMP = 3;

export const EMPTY = 0;
export const FULL = 1;
export const TOMBSTONE = 2;

/** The state a slot's word records (3: none, a corrupt slot). */
export function stateOf(word: number): number {
  return (word >>> 1) & 3;
}

/** The word that follows `word`, recording `state` and the value in `half`. */
export function nextWord(word: number, state: number, half: number): number {
  return ((word & ~7) + 8) | (state << 1) | half;
}

/** The largest capacity, key and value, and segment. */
export const MAX_CAPACITY = 2 ** 24;
export const MAX_KEY_BYTES = 65536;
export const MAX_VALUE_BYTES = 2 ** 26;
const MAX_SEGMENT = 2 ** 31;

/** What to do when a new key finds the map full. */
export type WhenFull = "error" | "evict-lru";
const WHEN_FULL: readonly WhenFull[] = ["error", "evict-lru"];

/** What a header says: the map's fixed shape. */
export interface MapShape {
  readonly capacity: number;
  /** Slots in the table: twice the capacity, so that probes stay short. */
  readonly slots: number;
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
  readonly whenFull: WhenFull;
  /** Bytes per slot, 8-aligned. */
  readonly stride: number;
}

/** The bytes of one slot for keys and values of these sizes. */
function strideOf(maxKeyBytes: number, maxValueBytes: number): number {
  return (SLOT_HEADER + maxKeyBytes + 2 * maxValueBytes + 7) & ~7;
}

/** The segment's size for `shape`. */
export function segmentSize(shape: MapShape): number {
  return HEADER + shape.slots * shape.stride;
}

/**
 * The shape the create options ask for, checked before anything is created: a TypeError or
 * RangeError naming the option and its rule.
 */
export function validateShape(options: {
  capacity?: unknown;
  maxKeyBytes?: unknown;
  maxValueBytes?: unknown;
  whenFull?: unknown;
}): MapShape {
  const capacity = validateInteger(
    options.capacity ?? 1024,
    "map capacity",
    1,
    MAX_CAPACITY,
    "entries",
  );
  const maxKeyBytes = validateInteger(
    options.maxKeyBytes ?? 64,
    "maxKeyBytes",
    1,
    MAX_KEY_BYTES,
    "the longest key in UTF-8 bytes",
  );
  const maxValueBytes = validateInteger(
    options.maxValueBytes ?? 256,
    "maxValueBytes",
    1,
    MAX_VALUE_BYTES,
    "the largest encoded value in bytes",
  );
  const whenFull = options.whenFull ?? "error";
  if (!WHEN_FULL.includes(whenFull as WhenFull)) {
    throw new TypeError(
      `Cannot use whenFull ${describe(whenFull)}: use "error" or "evict-lru"`,
    );
  }
  const shape: MapShape = {
    capacity,
    slots: capacity * 2,
    maxKeyBytes,
    maxValueBytes,
    whenFull: whenFull as WhenFull,
    stride: strideOf(maxKeyBytes, maxValueBytes),
  };
  if (segmentSize(shape) > MAX_SEGMENT) {
    throw new RangeError(
      `Cannot create a map of ${capacity} entries of up to ${maxKeyBytes} + ${maxValueBytes} ` +
        `bytes: it would take ${formatBytes(segmentSize(shape))}, more than ` +
        `${formatBytes(MAX_SEGMENT)}`,
    );
  }
  return shape;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Writes a new header (the magic last, so that no one trusts a half-written one). */
export function writeHeader(memory: SharedMemory, shape: MapShape, codecName: string): void {
  const header = new Int32Array(memory.buffer, 0, HEADER / 4);
  header[C_CAPACITY] = shape.capacity;
  header[C_SLOTS] = shape.slots;
  header[C_MAX_KEY] = shape.maxKeyBytes;
  header[C_MAX_VALUE] = shape.maxValueBytes;
  header[C_WHEN_FULL] = WHEN_FULL.indexOf(shape.whenFull);
  header[C_STRIDE] = shape.stride;
  encoder.encodeInto(codecName, new Uint8Array(memory.buffer, CODEC_AT, CODEC_NAME_MAX));
  header[C_VERSION] = VERSION;
  Atomics.store(header, C_MAGIC, MAGIC);
}

/**
 * Checks the header of `memory` against the segment's real size (fstat, through
 * `SharedMemory.size`) and returns the shape it records.
 *
 * @throws {Deno.errors.InvalidData} when the segment holds no map, or a header whose fields are
 * out of range, disagree with each other, or describe more slots than the segment holds.
 * @throws {TypeError} when the map was created with another codec than `codecName`.
 */
export function readHeader(memory: SharedMemory, codecName: string): MapShape {
  const invalid = (why: string) =>
    new Deno.errors.InvalidData(`Cannot use this memory as a shared map: ${why}`);
  if (memory.size < HEADER) {
    throw invalid(`it holds ${memory.size} bytes, less than a header`);
  }
  const header = new Int32Array(memory.buffer, 0, HEADER / 4);
  if (Atomics.load(header, C_MAGIC) !== MAGIC) throw invalid("no map was created in it");
  if (header[C_VERSION] !== VERSION) {
    throw invalid(
      `its layout is version ${header[C_VERSION]}, and this version of @posix/ipc reads ` +
        `version ${VERSION}: open it with the creator's version`,
    );
  }
  const capacity = header[C_CAPACITY]!;
  const maxKeyBytes = header[C_MAX_KEY]!;
  const maxValueBytes = header[C_MAX_VALUE]!;
  const whenFull = WHEN_FULL[header[C_WHEN_FULL]!];
  const shape: MapShape = {
    capacity,
    slots: header[C_SLOTS]!,
    maxKeyBytes,
    maxValueBytes,
    whenFull: whenFull ?? "error",
    stride: header[C_STRIDE]!,
  };
  if (
    capacity < 1 || capacity > MAX_CAPACITY || shape.slots !== capacity * 2 ||
    maxKeyBytes < 1 || maxKeyBytes > MAX_KEY_BYTES || maxValueBytes < 1 ||
    maxValueBytes > MAX_VALUE_BYTES || whenFull === undefined ||
    shape.stride !== strideOf(maxKeyBytes, maxValueBytes) || segmentSize(shape) > memory.size
  ) {
    throw invalid(
      `its header says ${capacity} entries in ${shape.slots} slots of ${shape.stride} bytes ` +
        `(keys up to ${maxKeyBytes} bytes, values up to ${maxValueBytes}, whenFull ` +
        `${header[C_WHEN_FULL]}), which a segment of ${memory.size} bytes cannot hold`,
    );
  }
  const stored = decoder.decode(new Uint8Array(memory.buffer, CODEC_AT, 32)).replace(
    /\0[^]*$/,
    "",
  );
  if (stored !== codecName) {
    throw new TypeError(
      `Cannot open the shared map with the ${codecName} codec: it was created with ${stored}`,
    );
  }
  return shape;
}
