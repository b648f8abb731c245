/**
 * The publish path: one frame written under the publishers' robust lock. Internal.
 *
 * A publisher finds room by dropping the oldest frames: in a "drop" topic as many as it takes,
 * in a "block" topic only those every live subscription has read (the history kept for late
 * subscribers goes first). It stores OLDEST before it writes over a frame, so that a subscriber
 * of a "drop" topic that copied a frame can tell, by reading OLDEST again, whether the copy may
 * be torn (a store that stays before the frame's plain writes on aarch64 too: src/_fence.ts).
 * It then writes the frame past the tail, records its position for late subscribers,
 * and publishes the tail and the message count with one 64-bit store: a publisher killed
 * mid-publish leaves no half-published frame, and the next one takes the lock over
 * (`ownerDied`) and goes on.
 *
 * @module
 */

import { storeBeforeWrites } from "../_fence.ts";
import { realLength } from "../_validate.ts";
import { BLOCK, C_OLDEST, C_TAIL } from "./layout.ts";
import type { TopicRing } from "./ring.ts";
import { recordPosition, slowest } from "./table.ts";

function corrupt(detail: string): Deno.errors.InvalidData {
  return new Deno.errors.InvalidData(`Cannot publish: the topic's ring is corrupt (${detail})`);
}

/**
 * Writes `bytes` as the next message, under the publishers' lock. Returns `false` when a "block"
 * topic has no room until a subscription reads on. `judge` looks at the liveness of the
 * subscriptions that hold it back (`thorough`: zombies too).
 *
 * @throws {Deno.errors.InvalidData} when the header's positions or a frame are not a ring's.
 */
export function writeFrame(
  ring: TopicRing,
  bytes: Uint8Array,
  judge: boolean,
  thorough: boolean,
): boolean {
  // Under the lock no one else writes WRITE: its halves can be read apart, without a BigInt.
  const tail = ring.cells[C_TAIL]!;
  const sequence = ring.cells[C_TAIL + 1]!;
  const length = realLength(bytes); // what set() copies, whatever a subclass's length says
  const frame = ring.frameSize(length);
  let oldest = ring.oldest();
  let used = (tail - oldest) >>> 0;
  if (used > ring.capacity) throw corrupt(`${used} bytes in use in a ring of ${ring.capacity}`);
  if (ring.capacity - used < frame) {
    // How much must stay: in a "block" topic, what the slowest live subscription has not read.
    // Usually the ring is only full of frames every subscription has read (history): liveness
    // is judged (a system call per subscription) only when a subscription holds the room.
    let keep = ring.policy === BLOCK ? Math.min(used, slowest(ring, tail, false, false)) : 0;
    if (ring.capacity - keep < frame && judge) {
      keep = Math.min(used, slowest(ring, tail, true, thorough));
    }
    if (ring.capacity - keep < frame) return false;
    while (ring.capacity - used < frame) {
      const length = ring.lengthAt(oldest);
      const size = ring.frameSize(length);
      if (length > ring.capacity || size > used) {
        throw corrupt(`a frame of ${length} bytes where ${used} are in use`);
      }
      oldest = (oldest + size) | 0;
      used -= size;
    }
    // Before the bytes are written over, and seen before them on aarch64 too (src/_fence.ts).
    storeBeforeWrites(ring.cells, C_OLDEST, oldest);
  }
  const at = ring.at(tail);
  ring.words[at >>> 2] = length;
  ring.words[(at >>> 2) + 1] = sequence;
  ring.bytes.set(bytes, at + 8);
  recordPosition(ring, sequence, tail);
  ring.storeWrite((tail + frame) | 0, (sequence + 1) | 0);
  ring.wakeSubscribers();
  return true;
}
