/**
 * The subscriber table: which subscriptions are open, where each one reads, and where a late
 * one starts. Internal.
 *
 * A subscription takes a slot of the participant registry (src/channel/registry.ts) with the
 * RECEIVES role, so that liveness is judged as a channel's peers are: pid and PID-namespace tag,
 * reclaimed once the process is gone. In a "block" topic its cursor cell says how far it has
 * read, and the publisher never writes over a frame a live subscription has not read. A
 * subscription joins under the publishers' lock, so that no publisher sees a slot whose cursor is
 * not yet written.
 *
 * @module
 */

import { RECEIVES, SLOTS } from "../channel/registry.ts";
import { C_CURSORS, C_POSITIONS, CURSOR_STRIDE, POSITIONS } from "./layout.ts";
import type { TopicRing } from "./ring.ts";

/** Where a new subscription starts: a position and the sequence number found there. */
export interface Start {
  readonly position: number;
  readonly sequence: number;
}

/**
 * Where a subscription that joins now starts: the last `history` messages still in the ring, or
 * the tail. Call under the publishers' lock, so that WRITE, OLDEST and the history table agree.
 *
 * @throws {Deno.errors.InvalidData} when the header's positions are not a ring's.
 */
export function startOf(ring: TopicRing): Start {
  const { tail, sequence } = ring.readWrite();
  const oldest = ring.oldest();
  const used = (tail - oldest) >>> 0;
  if (used > ring.capacity) {
    throw new Deno.errors.InvalidData(
      `Cannot subscribe: the topic's header is corrupt (${used} bytes in use in a ring of ` +
        `${ring.capacity})`,
    );
  }
  const inRing = used === 0 ? 0 : (sequence - ring.sequenceAt(oldest)) >>> 0;
  const count = Math.min(ring.history, inRing);
  if (count === 0) return { position: tail, sequence };
  const first = (sequence - count) | 0;
  const position = Atomics.load(ring.cells, C_POSITIONS + (first & (POSITIONS - 1)));
  if (((position - oldest) >>> 0) > used) {
    throw new Deno.errors.InvalidData(
      "Cannot subscribe: the topic's history table points outside the ring",
    );
  }
  return { position, sequence: first };
}

/** Records where the frame of message `sequence` starts, for later subscribers' history. */
export function recordPosition(ring: TopicRing, sequence: number, position: number): void {
  ring.cells[C_POSITIONS + (sequence & (POSITIONS - 1))] = position;
}

/** Publishes how far the subscription in `slot` has read. */
export function storeCursor(ring: TopicRing, slot: number, position: number): void {
  Atomics.store(ring.cells, C_CURSORS + slot * CURSOR_STRIDE, position);
}

/**
 * How far behind `tail` the slowest live subscription of a "block" topic reads, in bytes:
 * the publisher may drop frames only before it. Subscriptions whose process died are
 * reclaimed when `judge` (the publisher is short of room), so that they never hold it back.
 */
export function slowest(ring: TopicRing, tail: number, judge: boolean, thorough: boolean): number {
  let behind = 0;
  for (let slot = 0; slot < SLOTS; slot++) {
    if (!ring.registry.holds(slot, RECEIVES)) continue;
    const back = (tail - Atomics.load(ring.cells, C_CURSORS + slot * CURSOR_STRIDE)) >>> 0;
    if (back <= behind) continue;
    if (judge && ring.registry.reclaim(slot, RECEIVES, thorough)) continue;
    behind = back;
  }
  return behind;
}
