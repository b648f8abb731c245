/**
 * A mapped topic: the views every part uses over one mapping of the segment (the header's cells,
 * the WRITE word, the frames), the futex words where subscribers and publishers sleep, and the
 * wake-ups. Internal.
 *
 * Subscribers sleep on PUBLISHED and publishers on RELEASES, each side announced by setting its
 * "sleeping" flag; the other side clears the flag, bumps the word and makes the futex call only
 * when it finds the flag set, so a busy topic makes no system call per message, and a burst makes
 * one, not one per message until the sleepers have run. One wake-up wakes every sleeper of the
 * side: every subscriber has to see every message. A waiter sets the flag, reads the word, then
 * looks once more; the other side changes what it looks at before it clears the flag: either the
 * waiter sees the change, or the futex call finds the word bumped, or its flag is seen. Close and abort
 * bump the word too: a sleep that a worker thread has not begun yet then does not begin.
 *
 * @module
 */

import { futexWake } from "../sync/_futex.ts";
import { INT_MAX } from "../_validate.ts";
import { mapRing, type RingMapping } from "../channel/layout.ts";
import { Registry } from "../channel/registry.ts";
import {
  C_OLDEST,
  C_PUBLISHED,
  C_PUBLISHERS_SLEEPING,
  C_RELEASES,
  C_SUBSCRIBERS_SLEEPING,
  C_TAIL,
  FRAME_HEADER,
  HEADER,
  type TopicShape,
  W_WRITE,
} from "./layout.ts";

/** Whether a side's sleeping flag was set, clearing it: the caller then wakes that side. */
function wakeDue(cells: Int32Array, flag: number): boolean {
  return Atomics.load(cells, flag) !== 0 && Atomics.exchange(cells, flag, 0) !== 0;
}

/** The views of one mapping of a topic. */
export class TopicRing {
  readonly mapping: RingMapping;
  readonly cells: Int32Array<ArrayBuffer>;
  readonly words: Uint32Array<ArrayBuffer>;
  readonly bytes: Uint8Array<ArrayBuffer>;
  readonly write: BigInt64Array<ArrayBuffer>;
  readonly capacity: number;
  readonly mask: number;
  readonly policy: number;
  readonly history: number;
  readonly registry: Registry;
  /** PUBLISHED's address: subscribers' futex word. */
  readonly publishedWord: Deno.PointerObject;
  /** RELEASES' address: publishers' futex word. */
  readonly releasesWord: Deno.PointerObject;

  constructor(fd: number, shape: TopicShape) {
    this.capacity = shape.capacity;
    this.mask = shape.capacity - 1;
    this.policy = shape.policy;
    this.history = shape.history;
    this.mapping = mapRing(fd, shape.capacity);
    const buffer = this.mapping.buffer;
    this.cells = new Int32Array(buffer, 0, HEADER / 4);
    this.words = new Uint32Array(buffer);
    this.bytes = new Uint8Array(buffer);
    this.write = new BigInt64Array(buffer, 0, HEADER / 8);
    this.registry = new Registry(buffer, "topic");
    const base = this.mapping.base;
    this.publishedWord = Deno.UnsafePointer.offset(base, C_PUBLISHED * 4) as Deno.PointerObject;
    this.releasesWord = Deno.UnsafePointer.offset(base, C_RELEASES * 4) as Deno.PointerObject;
  }

  /** The published tail position. */
  tail(): number {
    return Atomics.load(this.cells, C_TAIL);
  }

  /** The position of the oldest frame still in the ring. */
  oldest(): number {
    return Atomics.load(this.cells, C_OLDEST);
  }

  /** The tail and the number of messages ever published (mod 2^32), read together. */
  readWrite(): { tail: number; sequence: number } {
    const word = Atomics.load(this.write, W_WRITE);
    return { tail: Number(BigInt.asIntN(32, word)), sequence: Number(word >> 32n) | 0 };
  }

  /** Publishes a new tail and message count with one store. */
  storeWrite(tail: number, sequence: number): void {
    const word = (BigInt(sequence | 0) << 32n) | BigInt(tail >>> 0);
    Atomics.store(this.write, W_WRITE, word);
  }

  /** The byte offset of position `position`'s frame in the mapping. */
  at(position: number): number {
    return HEADER + (position & this.mask);
  }

  /** The length word of the frame at `position`. */
  lengthAt(position: number): number {
    return this.words[this.at(position) >>> 2]!;
  }

  /** The sequence word of the frame at `position`. */
  sequenceAt(position: number): number {
    return this.words[(this.at(position) >>> 2) + 1]! | 0;
  }

  /** The bytes a frame of `length` bytes takes, 8-aligned. */
  frameSize(length: number): number {
    return (FRAME_HEADER + length + 7) & ~7;
  }

  /** After a publish or a publisher's close: wakes every sleeping subscriber, if one sleeps. */
  wakeSubscribers(force = false): void {
    if (force || wakeDue(this.cells, C_SUBSCRIBERS_SLEEPING)) {
      Atomics.add(this.cells, C_PUBLISHED, 1);
      futexWake(this.publishedWord, INT_MAX);
    }
  }

  /** After a subscriber moved on or left: wakes every sleeping publisher, if one sleeps. */
  wakePublishers(force = false): void {
    if (force || wakeDue(this.cells, C_PUBLISHERS_SLEEPING)) {
      Atomics.add(this.cells, C_RELEASES, 1);
      futexWake(this.releasesWord, INT_MAX);
    }
  }
}
