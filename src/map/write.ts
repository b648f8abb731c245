/**
 * The write path of a shared map, run only under the writers' robust lock: placing, replacing
 * and deleting entries, eviction, and the repair after a writer died holding the lock.
 * Internal.
 *
 * Every change to a slot is one seqlock write (src/map/read.ts): the sequence word goes odd,
 * the slot changes, the word goes even. Entries never move: a key stays in the slot where it was
 * placed until it is deleted, so a reader probing without the lock finds every key that is
 * there for the whole of its lookup. Deletion leaves a TOMBSTONE, where probing goes on; a
 * tombstone followed by an EMPTY slot becomes EMPTY itself (no probe goes past an empty slot, so
 * no lookup changes), which keeps probe chains short under churn. A probe visits at most every
 * slot once.
 *
 * A writer killed inside a slot leaves its word odd. The next writer to take the lock is told
 * that its owner died and calls {@linkcode repair}: every odd slot becomes a tombstone (its
 * entry, half-written, is lost, never shown) and the size is counted again.
 *
 * @module
 */

import { ENOSPC } from "../../ffi/constants.ts";
import { systemError } from "../errors.ts";
import {
  C_SIZE,
  EMPTY,
  F_CLOCK,
  FULL,
  S_HASH,
  S_KEY_LENGTH,
  S_SEQ,
  S_STAMP,
  S_STATE,
  S_VALUE_LENGTH,
  TOMBSTONE,
} from "./layout.ts";
import { corrupt } from "./read.ts";
import type { Table } from "./table.ts";

/** Where the current key is, under the lock: its slot, or -1 and the first free slot. */
export interface Located {
  slot: number;
  free: number;
}

/** Finds the current key's slot, and the first slot a new entry could take. */
export function locate(table: Table, located: Located): Located {
  const { cells, hash, keyLength } = table;
  const slots = table.shape.slots;
  let slot = table.home();
  located.slot = located.free = -1;
  for (let probe = 0; probe < slots; probe++) {
    const c = table.base(slot) >>> 2;
    const state = cells[c + S_STATE];
    if (state === FULL) {
      if (
        cells[c + S_HASH] === hash && cells[c + S_KEY_LENGTH] === keyLength &&
        table.sameKey(table.base(slot))
      ) {
        located.slot = slot;
        return located;
      }
    } else if (state === EMPTY) {
      if (located.free < 0) located.free = slot;
      return located;
    } else if (state === TOMBSTONE) {
      if (located.free < 0) located.free = slot;
    } else {
      throw corrupt(`slot state ${state}`);
    }
    slot = slot + 1 === slots ? 0 : slot + 1;
  }
  return located;
}

/** Starts a seqlock write of the slot at cell `c`; returns the even word to end it with. */
function begin(cells: Int32Array, c: number): number {
  const seq = Atomics.load(cells, c + S_SEQ) & ~1;
  Atomics.store(cells, c + S_SEQ, seq + 1);
  // A load-acquire after the store-release: the slot's plain writes below stay after it.
  Atomics.load(cells, c + S_SEQ);
  return (seq + 2) | 0;
}

/** The number of live entries. */
export function size(table: Table): number {
  return Atomics.load(table.cells, C_SIZE);
}

/** The slot of the entry written least recently, or -1. */
function leastRecentlyWritten(table: Table): number {
  const { cells, floats } = table;
  let oldest = -1;
  let stamp = Infinity;
  for (let slot = 0; slot < table.shape.slots; slot++) {
    const base = table.base(slot);
    if (cells[(base >>> 2) + S_STATE] !== FULL) continue;
    const written = floats[base / 8 + S_STAMP]!;
    if (written < stamp) {
      stamp = written;
      oldest = slot;
    }
  }
  return oldest;
}

/**
 * Writes `value` as the current key's value: over its entry, or in a new one. A new key in a
 * full map evicts the least recently written entry (whenFull "evict-lru") or throws.
 *
 * @param name The map's name (`null`: anonymous), for the error.
 * @throws {IpcError} with code ENOSPC when the map is full and its whenFull is "error".
 */
export function put(
  table: Table,
  located: Located,
  value: Uint8Array,
  name: string | null,
): void {
  const { cells, floats, bytes, shape } = table;
  let slot = located.slot;
  const fresh = slot < 0;
  if (fresh) {
    if (size(table) >= shape.capacity) {
      if (shape.whenFull !== "evict-lru") {
        throw systemError(ENOSPC, "SharedMap.set", {
          action: "add a key to shared map",
          objectName: name,
          hint: `it holds its capacity of ${shape.capacity} entries; delete some, or create ` +
            `it with a larger capacity or whenFull: "evict-lru"`,
        });
      }
      const oldest = leastRecentlyWritten(table);
      if (oldest < 0) throw corrupt(`a size of ${size(table)} with no entry to evict`);
      remove(table, oldest);
      if (located.free < 0) locate(table, located); // the evicted slot may be the only free one
    }
    slot = located.free;
    if (slot < 0) throw corrupt("no free slot below its capacity");
  }
  const base = table.base(slot);
  const c = base >>> 2;
  const stamp = floats[F_CLOCK]! + 1;
  floats[F_CLOCK] = stamp;
  const end = begin(cells, c);
  if (fresh) {
    cells[c + S_HASH] = table.hash;
    cells[c + S_KEY_LENGTH] = table.keyLength;
    bytes.set(table.key.subarray(0, table.keyLength), table.keyAt(base));
  }
  cells[c + S_VALUE_LENGTH] = value.length;
  bytes.set(value, table.valueAt(base));
  floats[base / 8 + S_STAMP] = stamp;
  cells[c + S_STATE] = FULL;
  Atomics.store(cells, c + S_SEQ, end);
  if (fresh) Atomics.add(cells, C_SIZE, 1);
}

/** Marks the slot at cell `c` `state`, in one seqlock write. */
function mark(cells: Int32Array, c: number, state: number): void {
  const end = begin(cells, c);
  cells[c + S_STATE] = state;
  Atomics.store(cells, c + S_SEQ, end);
}

/**
 * Deletes the entry in `slot`: a tombstone, or an empty slot when the next one is empty, and
 * then the tombstones before it become empty too.
 */
export function remove(table: Table, slot: number): void {
  const { cells, shape } = table;
  const next = slot + 1 === shape.slots ? 0 : slot + 1;
  const cell = (s: number) => table.base(s) >>> 2;
  if (cells[cell(next) + S_STATE] !== EMPTY) {
    mark(cells, cell(slot), TOMBSTONE);
  } else {
    mark(cells, cell(slot), EMPTY);
    let before = slot === 0 ? shape.slots - 1 : slot - 1;
    for (let n = 1; n < shape.slots && cells[cell(before) + S_STATE] === TOMBSTONE; n++) {
      mark(cells, cell(before), EMPTY);
      before = before === 0 ? shape.slots - 1 : before - 1;
    }
  }
  Atomics.sub(cells, C_SIZE, 1);
}

/** Empties every slot. */
export function clear(table: Table): void {
  const cells = table.cells;
  for (let slot = 0; slot < table.shape.slots; slot++) {
    const c = table.base(slot) >>> 2;
    if (cells[c + S_STATE] !== EMPTY) mark(cells, c, EMPTY);
  }
  Atomics.store(cells, C_SIZE, 0);
}

/**
 * After a writer died holding the lock: every slot it left odd becomes a tombstone (even), and
 * the size is counted again.
 *
 * @returns How many half-written entries were dropped.
 */
export function repair(table: Table): number {
  const cells = table.cells;
  let dropped = 0;
  let live = 0;
  for (let slot = 0; slot < table.shape.slots; slot++) {
    const c = table.base(slot) >>> 2;
    if ((Atomics.load(cells, c + S_SEQ) & 1) !== 0) {
      cells[c + S_STATE] = TOMBSTONE;
      Atomics.store(cells, c + S_SEQ, (cells[c + S_SEQ]! + 1) | 0);
      dropped++;
    } else if (cells[c + S_STATE] === FULL) {
      live++;
    }
  }
  Atomics.store(cells, C_SIZE, live);
  return dropped;
}
