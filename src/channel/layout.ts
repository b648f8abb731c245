/**
 * The ring's memory layout: where every field of a channel's segment lives, how a header is
 * written by the creator and checked by everyone else, and how the ring is mapped and let go.
 * Internal.
 *
 * A segment is one header page, then the data region of `capacity` bytes:
 *
 * | bytes     | content                                                                  |
 * | --------- | ------------------------------------------------------------------------ |
 * | 0-15      | magic "PIPC", version, capacity, multi (Int32 cells 0-3)                 |
 * | 16-47     | the codec's name, UTF-8, NUL-terminated                                  |
 * | 48-51     | close and abort wake-ups (cell 12)                                       |
 * | 52-55     | multi mode: 1 while a loan holds the senders' lock (cell 13)             |
 * | 64-75     | the producers' line: tail, receivers waiting, sender's CPU (cells 16-18) |
 * | 128-139   | the consumers' line: head, senders waiting, receiver's CPU (cells 32-34) |
 * | 192-207   | two robust mutexes of the multi mode: senders', receivers'               |
 * | 208-223   | the registry's records: roles left, roles died, creator pid and tag      |
 * | 256-511   | the participant registry's 32 slots (src/channel/registry.ts)            |
 * | 512-639   | two process-shared `sem_t` where waiters sleep: DATA, SPACE              |
 * | 4096-     | the data region: frames of [length u32][bytes], each 8-aligned           |
 *
 * The data region is mapped twice, back to back, so that every frame is contiguous even where
 * it wraps. Every figure read from the header is checked against the segment's real size
 * (fstat, through `SharedMemory.size`) before it is trusted: a ring larger than its segment
 * would map pages past the end, and touching them kills the process with SIGBUS.
 *
 * @module
 */

import { address, MAP_FAILED } from "../../ffi/cstring.ts";
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from "../../ffi/constants.ts";
import { errno, libc } from "../../ffi/libc.ts";
import { entombRange } from "../_tomb.ts";
import { describe } from "../_validate.ts";
import { systemError } from "../errors.ts";
import type { SharedMemory } from "../shm.ts";

/** The header page, then the data region. Cells are Int32 indexes into the header. */
export const HEADER = 4096;
export const MAGIC = 0x50495043; // "PIPC"
/** 2: the registry's slots are 64-bit words with a PID-namespace tag, and its records. */
export const VERSION = 2;
export const C_MAGIC = 0;
export const C_VERSION = 1;
export const C_CAPACITY = 2;
export const C_MULTI = 3;
/** 32 bytes of codec name from byte 16. */
export const C_CODEC = 4;
/** Counts close and abort wake-ups, so that a waiter that drains its semaphore keeps them. */
export const C_WAKE_ALLS = 12;
/**
 * Multi mode: 1 while a loan (src/channel/loan.ts) holds the senders' lock, so that other
 * senders wait for it as for room instead of blocking their thread on the lock. Cleared by the
 * loan's end, or by the next sender when the loan's process died.
 */
export const C_LOANED = 13;
/** Byte 64: the producers' cache line. */
export const C_TAIL = 16;
export const C_RECEIVERS_WAITING = 17;
/**
 * The CPU a sender last ran on, plus 1 (0: not known): a hint for a waiting receiver's spin
 * (src/channel/wait.ts). Bytes that version 2 left unused, so older handles leave it 0.
 */
export const C_SENDER_CPU = 18;
/** Byte 128: the consumers' cache line. */
export const C_HEAD = 32;
export const C_SENDERS_WAITING = 33;
/** The CPU a receiver last ran on, plus 1 (0: not known): the same hint for a waiting sender. */
export const C_RECEIVER_CPU = 34;
/** Bytes: two robust mutexes for the multi mode. */
export const SENDER_LOCK = 192;
export const RECEIVER_LOCK = 200;
/** Bytes 208-223: the registry's records (src/channel/registry.ts). */
export const C_LEFT = 52;
export const C_DIED = 53;
export const C_CREATOR_PID = 54;
export const C_CREATOR_TAG = 55;
/** Byte 256: the participant registry's slots, 32 of 8 bytes. */
export const C_PARTICIPANTS = 64;
/** Bytes: two process-shared sem_t where waiters sleep: receivers on DATA, senders on SPACE. */
export const DATA_SEMAPHORE = 512;
export const SPACE_SEMAPHORE = 576;
/** A frame's length word, before its bytes. */
export const FRAME_HEADER = 4;
/** The longest codec name, in UTF-8 bytes: the header keeps 32 bytes, NUL-terminated. */
export const CODEC_NAME_MAX = 31;

const MIN_CAPACITY = 4096;
const MAX_CAPACITY = 2 ** 30;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Whether `capacity` is a ring size: a power of two from 4096 to 1 GiB. */
export function isCapacity(capacity: unknown): capacity is number {
  return typeof capacity === "number" && Number.isInteger(capacity) &&
    capacity >= MIN_CAPACITY && capacity <= MAX_CAPACITY && (capacity & (capacity - 1)) === 0;
}

/** The capacity option, or a RangeError naming the rule. */
export function validateCapacity(capacity: unknown): number {
  if (!isCapacity(capacity)) {
    throw new RangeError(
      `Cannot create a channel of ${
        describe(capacity)
      } bytes: use a power of two from 4096 to 1 GiB`,
    );
  }
  return capacity;
}

/** What a checked header says. */
export interface RingShape {
  readonly capacity: number;
  readonly multi: boolean;
}

/** Writes a new header into `memory` (the magic last, so that no one trusts a half-written one). */
export function writeHeader(
  memory: SharedMemory,
  capacity: number,
  multi: boolean,
  codecName: string,
): void {
  const header = new Int32Array(memory.buffer, 0, HEADER / 4);
  header[C_CAPACITY] = capacity;
  header[C_MULTI] = multi ? 1 : 0;
  encoder.encodeInto(codecName, new Uint8Array(memory.buffer, C_CODEC * 4, CODEC_NAME_MAX));
  header[C_VERSION] = VERSION;
  Atomics.store(header, C_MAGIC, MAGIC);
}

/**
 * Checks the header of `memory` against the segment's real size and returns what it says.
 *
 * @throws {Deno.errors.InvalidData} when the segment holds no channel, or a header whose ring
 * does not fit in the segment.
 * @throws {TypeError} when the channel was created with another codec than `codecName`.
 */
export function readHeader(memory: SharedMemory, codecName: string): RingShape {
  if (memory.size < HEADER) {
    throw new Deno.errors.InvalidData(
      `Cannot use this memory as a channel: it holds ${memory.size} bytes, less than a header`,
    );
  }
  const header = new Int32Array(memory.buffer, 0, HEADER / 4);
  if (Atomics.load(header, C_MAGIC) !== MAGIC) {
    throw new Deno.errors.InvalidData(
      "Cannot use this memory as a channel: no channel was created in it",
    );
  }
  if (header[C_VERSION] !== VERSION) {
    throw new Deno.errors.InvalidData(
      `Cannot use this memory as a channel: its layout is version ${header[C_VERSION]}, and ` +
        `this version of @posix/ipc reads version ${VERSION}: open it with the creator's version`,
    );
  }
  const capacity = header[C_CAPACITY]!;
  const multi = header[C_MULTI]!;
  if (!isCapacity(capacity) || HEADER + capacity > memory.size || (multi !== 0 && multi !== 1)) {
    throw new Deno.errors.InvalidData(
      `Cannot use this memory as a channel: its header says a ring of ${capacity} bytes ` +
        `(multi ${multi}), which a segment of ${memory.size} bytes cannot hold`,
    );
  }
  const stored = storedCodecName(memory);
  if (stored !== codecName) {
    throw new TypeError(
      `Cannot open the channel with the ${codecName} codec: it was created with ${stored}`,
    );
  }
  return { capacity, multi: multi === 1 };
}

/** The codec name a header keeps in bytes 16-47 (a channel's, or a topic's: same place). */
export function storedCodecName(memory: SharedMemory): string {
  return decoder.decode(new Uint8Array(memory.buffer, C_CODEC * 4, 32)).replace(/\0[^]*$/, "");
}

/** The ring's mappings: header and data, then the data again. */
export interface RingMapping {
  readonly base: Deno.PointerObject;
  readonly buffer: ArrayBuffer;
  readonly length: number;
}

/** Maps header + data, then the data again right after, so that wrapped messages are contiguous. */
export function mapRing(fd: number, capacity: number): RingMapping {
  const c = libc();
  const length = HEADER + 2 * capacity;
  const base = c.mmap(null, BigInt(length), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0n);
  if (base === null || address(base) === MAP_FAILED) {
    throw systemError(errno(), "mmap", { action: "reserve a channel's ring" });
  }
  const rw = PROT_READ | PROT_WRITE;
  const first = c.mmap(base, BigInt(HEADER + capacity), rw, MAP_SHARED | MAP_FIXED, fd, 0n);
  const second = first &&
    c.mmap(
      Deno.UnsafePointer.offset(base, HEADER + capacity),
      BigInt(capacity),
      rw,
      MAP_SHARED | MAP_FIXED,
      fd,
      BigInt(HEADER),
    );
  if (!first || !second || address(first) === MAP_FAILED || address(second) === MAP_FAILED) {
    const code = errno();
    c.munmap(base, BigInt(length));
    throw systemError(code, "mmap", { action: "map a channel's ring" });
  }
  return { base, buffer: Deno.UnsafePointerView.getArrayBuffer(base, length), length };
}

/**
 * Lets go of the ring's pages. When the ring's buffer is still here, it is detached (every
 * view over it, zero-copy ones included, reads as empty) and the range unmapped. When it was
 * transferred away (`view.buffer.transfer()`), its new owner may still read it, so the range
 * is entombed instead: it reads zeros, never a hole (src/_tomb.ts). Returns munmap's result
 * (0 when entombed).
 */
export function unmapRing(ring: RingMapping): number {
  if (ring.buffer.detached) {
    entombRange(ring.base, ring.length); // on failure the pages stay: a leak, never a hole
    return 0;
  }
  ring.buffer.transfer(0);
  return libc().munmap(ring.base, BigInt(ring.length));
}

/** The header page of a mapped ring, also when its buffer was transferred away (still mapped). */
export function headerBuffer(ring: RingMapping): ArrayBuffer {
  return ring.buffer.detached
    ? Deno.UnsafePointerView.getArrayBuffer(ring.base, HEADER)
    : ring.buffer;
}
