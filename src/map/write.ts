/**
 * The write path of a shared map, run only under the writers' robust lock: placing, replacing
 * and deleting entries, eviction, and the repair after a writer died holding the lock.
 * Internal.
 *
 * Every change to a slot is prepared where no reader looks and published with one store of
 * the slot's word (src/map/layout.ts, src/map/read.ts): a new value goes to the slot's other
 * value half, a new key to a slot that is not FULL, and the word that names the half or the
 * state FULL is stored last. A deletion is one store of a word with another state. So a writer
 * killed at any instant leaves every slot as it was before its change or after it: an entry
 * being replaced keeps its old value until the new one is published (a counter kept in one
 * entry never restarts), and an unpublished half is only scratch, overwritten by the next
 * write. Only the live-entry count may be off by one (it changes after the publication): the
 * next writer, told by the lock that its owner died, calls {@linkcode repair}, which counts it
 * again.
 *
 * Entries never move: a key stays in the slot where it was placed until it is deleted, so a
 * reader probing without the lock finds every key that is there for the whole of its lookup.
 * Deletion leaves a TOMBSTONE, where probing goes on; a tombstone followed by an EMPTY slot
 * becomes EMPTY itself (no probe goes past an empty slot, so no lookup changes), which keeps
 * probe chains short under churn. A probe visits at most every slot once.
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
  nextWord,
  S_HASH,
  S_KEY_LENGTH,
  S_STAMP,
  S_VALUE_LENGTH,
  stateOf,
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
    const state = stateOf(cells[c]!);
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
    if (stateOf(cells[base >>> 2]!) !== FULL) continue;
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
      // Found again: the evicted slot may be the only free one, or, emptied before the free
      // slot found, end the key's probe chain there, where a lookup would stop short of it.
      locate(table, located);
    }
    slot = located.free;
    if (slot < 0) throw corrupt("no free slot below its capacity");
  }
  const base = table.base(slot);
  const c = base >>> 2;
  const word = cells[c]!;
  const half = (word & 1) ^ 1; // the half no reader of `word` looks at
  const stamp = floats[F_CLOCK]! + 1;
  floats[F_CLOCK] = stamp;
  if (fresh) {
    cells[c + S_HASH] = table.hash;
    cells[c + S_KEY_LENGTH] = table.keyLength;
    bytes.set(table.key.subarray(0, table.keyLength), table.keyAt(base));
  }
  cells[c + S_VALUE_LENGTH + half] = value.length;
  bytes.set(value, table.valueAt(base, half));
  floats[base / 8 + S_STAMP] = stamp;
  // The publication: a store-release, after every plain write above.
  Atomics.store(cells, c, nextWord(word, FULL, half));
  if (fresh) Atomics.add(cells, C_SIZE, 1);
}

/** Publishes `state` for the slot at cell `c`, its value half unchanged. */
function mark(cells: Int32Array, c: number, state: number): void {
  const word = cells[c]!;
  Atomics.store(cells, c, nextWord(word, state, word & 1));
}

/**
 * Deletes the entry in `slot`: a tombstone, or an empty slot when the next one is empty, and
 * then the tombstones before it become empty too.
 */
export function remove(table: Table, slot: number): void {
  const { cells, shape } = table;
  const next = slot + 1 === shape.slots ? 0 : slot + 1;
  const cell = (s: number) => table.base(s) >>> 2;
  if (stateOf(cells[cell(next)]!) !== EMPTY) {
    mark(cells, cell(slot), TOMBSTONE);
  } else {
    mark(cells, cell(slot), EMPTY);
    let before = slot === 0 ? shape.slots - 1 : slot - 1;
    for (let n = 1; n < shape.slots && stateOf(cells[cell(before)]!) === TOMBSTONE; n++) {
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
    if (stateOf(cells[c]!) !== EMPTY) mark(cells, c, EMPTY);
  }
  Atomics.store(cells, C_SIZE, 0);
}

/**
 * After a writer died holding the lock: every slot is as the writer left it before or after one
 * of its changes, so only the live-entry count may be off; it is counted again. (What the
 * writer prepared and did not publish is scratch that no reader looks at.)
 */
export function repair(table: Table): void {
  const cells = table.cells;
  let live = 0;
  for (let slot = 0; slot < table.shape.slots; slot++) {
    if (stateOf(cells[table.base(slot) >>> 2]!) === FULL) live++;
  }
  Atomics.store(cells, C_SIZE, live);
}
