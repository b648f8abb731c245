/**
 * A channel handle's lease on its ring, and how it ends: what the handle must release (the
 * segment, the ring's mappings, its participant slot, the locks of the multi mode, the loan
 * window), kept apart from the handle so that the garbage collector's safety net can release it
 * too, and the steps of the release. Internal: src/channel/open.ts takes a lease, and
 * src/channel/channel.ts ends it on close.
 *
 * @module
 */

import type { SharedMemory } from "../shm.ts";
import type { Mutex } from "../sync/mutex.ts";
import { headerBuffer, type RingMapping, unmapRing } from "./layout.ts";
import { Registry } from "./registry.ts";
import { wakeAll } from "./wait.ts";

/**
 * What a handle must release, kept apart from the handle so that a finalizer can use it: it
 * references the segment and the ring, never the handle.
 */
export interface RingLease {
  /** The segment: its descriptor, its own mapping and, for an owner, its name. */
  readonly memory: SharedMemory;
  /** The ring's mappings; its ArrayBuffer is the one every view of the handle shares. */
  readonly ring: RingMapping;
  readonly cells: Int32Array<ArrayBuffer>;
  readonly data: Deno.PointerObject;
  readonly space: Deno.PointerObject;
  readonly registry: Registry;
  readonly role: number;
  /** Whether the handle created the channel (it clears the creator's record on close). */
  readonly creator: boolean;
  /** The participant slot, or -1 before the handle took one. */
  slot: number;
  /** The multi mode's robust lock of the senders, once made (`null` in the single mode). */
  senderLock: Mutex | null;
  /** The multi mode's robust lock of the receivers, once made. */
  receiverLock: Mutex | null;
  /** The second mapping of the ring where loans' bytes live (src/channel/loan.ts), once made. */
  window: RingMapping | null;
}

/**
 * Releases what a channel handle dropped without `close()` held: its participant slot (so
 * that peers see it closed, not alive), the ring's mappings, and the segment's descriptor,
 * mapping and owned name. A safety net only.
 */
export const releaseWhenUnreachable = new FinalizationRegistry<RingLease>((lease) => {
  // Never throws: an error in a finalizer would end the process. Each step goes as far as it can.
  try {
    leave(lease);
  } catch {
    // the slot stays open: peers see a dead process, as after a crash
  }
  try {
    releaseRing(lease, true);
  } catch {
    // what could not be released stays: a leak, never a hole
  }
});

/** Gives back the handle's slot and wakes every waiter, so that peers see it gone. */
export function leave(lease: RingLease): void {
  if (lease.slot < 0) return;
  // A ring whose buffer was transferred away is still mapped: reach its header afresh.
  const detached = lease.ring.buffer.detached;
  const header = headerBuffer(lease.ring);
  (detached ? new Registry(header) : lease.registry).detach(lease.slot, lease.role, lease.creator);
  wakeAll(detached ? new Int32Array(header) : lease.cells, lease.data, lease.space);
}

/**
 * Lets go of the ring: its locks, then its pages (src/channel/layout.ts: a transferred buffer
 * is entombed, never left over a hole), then, with `closeMemory`, the segment. Returns munmap's
 * result (0 when entombed).
 */
export function releaseRing(lease: RingLease, closeMemory: boolean): number {
  lease.senderLock?.close();
  lease.receiverLock?.close();
  if (lease.window) unmapRing(lease.window); // its buffer is never handed out
  lease.window = null;
  const result = unmapRing(lease.ring);
  if (closeMemory) lease.memory.close();
  return result;
}

/**
 * Removes the name of a segment whose handle owns it, as the handle closes: at once, even while
 * a pending wait keeps the mapping for a moment, so that a process that exits right after
 * close() leaves nothing behind. A name someone else removed already is no error.
 */
export function unlinkOwnedName(memory: SharedMemory): void {
  if (memory.closed) return;
  try {
    memory.unlink();
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error; // removed by someone else
  }
}
