/**
 * A topic's memory layout: where every field of its segment lives, how the creator writes the
 * header and everyone else checks it. Internal.
 *
 * A segment is one header page, then the data region of `capacity` bytes, mapped twice back to
 * back like a channel's ring (src/channel/layout.ts `mapRing`), so that every frame is
 * contiguous. The participant registry sits where a channel's does, so that
 * src/channel/registry.ts serves both:
 *
 * | bytes     | content                                                                  |
 * | --------- | ------------------------------------------------------------------------ |
 * | 0-15      | magic "PTOP", version, capacity, slow policy (cells 0-3)                 |
 * | 16-47     | the codec's name, UTF-8, NUL-terminated                                  |
 * | 48-51     | history: how many messages a late subscriber gets first (cell 12)        |
 * | 64-71     | WRITE: the tail (low half) and the message count (high half),            |
 * |           | stored together by one 64-bit store                                      |
 * | 72-83     | OLDEST: the first frame still in the ring; the subscribers' sleeping     |
 * |           | flag; PUBLISHED, their futex word, bumped by a publish that wakes them   |
 * | 128-135   | RELEASES, the publishers' futex word, bumped by a subscriber that wakes  |
 * |           | them; the publishers' sleeping flag                                      |
 * | 208-223   | the registry's records (roles left, roles died, creator pid and tag)     |
 * | 256-511   | the registry's 32 slots: publishers and subscriptions                    |
 * | 960-967   | the publishers' robust mutex, alone on its cache line                    |
 * | 1024-2047 | where the frame of each of the last 256 messages starts (history)        |
 * | 2048-4095 | each slot's cursor, for a subscription of a "block" topic, one per cache |
 * |           | line: each subscriber stores its own per message                         |
 * | 4096-     | the data region: frames of [length u32][sequence u32][bytes], 8-aligned  |
 *
 * Positions are byte counts that wrap at 2^32; a frame's place in the ring is its position
 * modulo the capacity. Every figure of the header is checked against the segment's real size
 * (fstat, through `SharedMemory.size`) before it is trusted.
 *
 * @module
 */

import { describe } from "../_validate.ts";
import type { SharedMemory } from "../shm.ts";
import {
  C_CAPACITY,
  C_CODEC,
  C_MAGIC,
  C_VERSION,
  CODEC_NAME_MAX,
  HEADER,
  isCapacity,
  storedCodecName,
} from "../channel/layout.ts";

export { C_CAPACITY, C_MAGIC, C_VERSION, HEADER };

export const MAGIC = 0x504f5450; // "PTOP"
export const VERSION = 1;
export const C_POLICY = 3;
export const C_HISTORY = 12;
/** The 64-bit WRITE word, as an index into a BigInt64Array over the header. */
export const W_WRITE = 8;
/** WRITE's low half: the tail, as an Int32 cell. */
export const C_TAIL = 16;
export const C_OLDEST = 18;
export const C_SUBSCRIBERS_SLEEPING = 19;
/** Where subscribers sleep: bumped by a publish that finds one asleep, and by close and abort. */
export const C_PUBLISHED = 20;
export const C_RELEASES = 32;
export const C_PUBLISHERS_SLEEPING = 33;
/** Byte offset of the publishers' robust mutex. */
export const PUBLISH_LOCK = 960;
/** First cell of the 32 cursors, and the cells from one to the next (a cache line). */
export const C_CURSORS = 512;
export const CURSOR_STRIDE = 16;
/** First cell of the history table, and its length. */
export const C_POSITIONS = 256;
export const POSITIONS = 256;
/** The most a late subscriber can be given first. */
export const HISTORY_MAX = POSITIONS - 1;
/** A frame's header: length, then sequence number. */
export const FRAME_HEADER = 8;

/** The policies, by their header code. */
export const BLOCK = 0;
export const DROP = 1;

/** What a publisher does when a subscriber is too slow. */
export type SlowPolicy = "block" | "drop";

/** The header code of `slow`, or a TypeError naming the option. */
export function validatePolicy(slow: unknown): number {
  if (slow === undefined || slow === "block") return BLOCK;
  if (slow === "drop") return DROP;
  throw new TypeError(`Cannot use slow policy ${describe(slow)}: use "block" or "drop"`);
}

/** The capacity option, or a RangeError naming the rule. */
export function validateTopicCapacity(capacity: unknown): number {
  if (!isCapacity(capacity)) {
    throw new RangeError(
      `Cannot create a topic of ${describe(capacity)} bytes: use a power of two from 4096 to 1 GiB`,
    );
  }
  return capacity;
}

/** What a checked header says. */
export interface TopicShape {
  readonly capacity: number;
  readonly policy: number;
  readonly history: number;
}

const encoder = new TextEncoder();

/** Writes a new header into `memory` (the magic last, so that no one trusts a half-written one). */
export function writeTopicHeader(memory: SharedMemory, shape: TopicShape, codecName: string): void {
  const header = new Int32Array(memory.buffer, 0, HEADER / 4);
  header[C_CAPACITY] = shape.capacity;
  header[C_POLICY] = shape.policy;
  header[C_HISTORY] = shape.history;
  encoder.encodeInto(codecName, new Uint8Array(memory.buffer, C_CODEC * 4, CODEC_NAME_MAX));
  header[C_VERSION] = VERSION;
  Atomics.store(header, C_MAGIC, MAGIC);
}

function invalid(detail: string): Deno.errors.InvalidData {
  return new Deno.errors.InvalidData(`Cannot use this memory as a topic: ${detail}`);
}

/**
 * Checks the header of `memory` against the segment's real size and returns what it says.
 *
 * @throws {Deno.errors.InvalidData} when the segment holds no topic, or a header that does not
 * fit in the segment.
 * @throws {TypeError} when the topic was created with another codec than `codecName`.
 */
export function readTopicHeader(memory: SharedMemory, codecName: string): TopicShape {
  if (memory.size < HEADER) {
    throw invalid(`it holds ${memory.size} bytes, less than a header`);
  }
  const header = new Int32Array(memory.buffer, 0, HEADER / 4);
  if (Atomics.load(header, C_MAGIC) !== MAGIC) throw invalid("no topic was created in it");
  if (header[C_VERSION] !== VERSION) {
    throw invalid(
      `its layout is version ${header[C_VERSION]}, and this version of @posix/ipc reads ` +
        `version ${VERSION}: open it with the creator's version`,
    );
  }
  const capacity = header[C_CAPACITY]!;
  const policy = header[C_POLICY]!;
  const history = header[C_HISTORY]!;
  if (!isCapacity(capacity) || HEADER + capacity > memory.size) {
    throw invalid(
      `its header says a ring of ${capacity} bytes, which a segment of ${memory.size} bytes ` +
        "cannot hold",
    );
  }
  if ((policy !== BLOCK && policy !== DROP) || history < 0 || history > HISTORY_MAX) {
    throw invalid(`its header says slow policy ${policy} and history ${history}`);
  }
  const stored = storedCodecName(memory);
  if (stored !== codecName) {
    throw new TypeError(
      `Cannot open the topic with the ${codecName} codec: it was created with ${stored}`,
    );
  }
  return { capacity, policy, history };
}
