/**
 * Placing a process-shared object (a semaphore, a lock) at an offset of shared memory:
 * bounds, alignment and sharing are checked before anything is written, and the pages are
 * pinned for as long as the object is open. The pin records the object's place in the file, so
 * that `SharedMemory.resize` refuses to shrink the memory below it. Internal.
 *
 * @module
 */

import { address } from "../ffi/cstring.ts";
import { Mapping } from "./mmap.ts";
import { pin } from "./_pins.ts";
import { SharedMemory } from "./shm.ts";
import { describe, validateInteger } from "./_validate.ts";

/** Where an object was placed: its address, its offset, and how to let go of the pages. */
export interface Placement {
  pointer: Deno.PointerObject;
  /** The offset, checked: an integer, -0 given as 0. */
  offset: number;
  unpin: () => void;
}

/**
 * Checks that `size` bytes at `offset` of `memory` lie inside it, are aligned to `align` and
 * are shared between processes, then pins the pages.
 */
export function place(
  memory: SharedMemory | Mapping,
  given: number,
  size: number,
  align: number,
  what: string,
): Placement {
  const offset = validateInteger(
    given,
    `${what} offset`,
    0,
    Number.MAX_SAFE_INTEGER,
    "a byte offset into the memory",
  );
  const mapping = memory instanceof SharedMemory ? memory.mapping : memory;
  if (!(mapping instanceof Mapping)) {
    throw new TypeError(
      `Cannot place a ${what}: memory ${describe(memory)} must be a SharedMemory or a Mapping`,
    );
  }
  if (!mapping.shared) {
    throw new TypeError(
      `Cannot place a ${what} in memory that is not shared and writable: other processes ` +
        `would never see it (open the memory without readOnly, or map with write: true)`,
    );
  }
  if (offset + size > mapping.length) {
    throw new RangeError(
      `Cannot place a ${what} at offset ${offset}: it needs ${size} bytes inside the ` +
        `${mapping.length} mapped`,
    );
  }
  const pointer = Deno.UnsafePointer.offset(mapping.unsafePointer, offset) as Deno.PointerObject;
  if (address(pointer) % BigInt(align) !== 0n) {
    throw new RangeError(
      `Cannot place a ${what} at offset ${offset}: it must be aligned to ${align} bytes`,
    );
  }
  return { pointer, offset, unpin: pin(mapping, { what, offset, size }) };
}
