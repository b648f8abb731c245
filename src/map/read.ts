/**
 * The read path of a shared map: lookups and iteration that never take the lock and never wait
 * for a writer. Internal.
 *
 * A slot's word (src/map/layout.ts) says what it holds: its state and which of its two value
 * halves is live. Writers change a slot only by publishing a new word, after preparing the
 * change where no reader of the old word looks (src/map/write.ts). A reader loads the word,
 * reads what the word points to (key, value length, value bytes), and loads the word again:
 * if it is the same, what it read is whole; otherwise a writer published meanwhile and the
 * reader tries again. So a reader never sees half a write, and never waits for one: a writer
 * stopped or killed in the middle of a change holds up no reader, since its change is not
 * published.
 *
 * Retries happen only while writers keep publishing new words for the same slot during a read:
 * 64 at once, then each after yielding the CPU; after a second of that, the read throws
 * `Deno.errors.Busy` rather than spin on.
 *
 * Ordering: the words are read with `Atomics.load`; before the second read, an `Atomics.store`
 * to a private word orders the plain reads before it (on aarch64 a load-acquire alone would let
 * them pass; the store-release and the load-acquire after it keep them in order).
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { EMPTY, FULL, S_HASH, S_KEY_LENGTH, S_VALUE_LENGTH, TOMBSTONE } from "./layout.ts";
import type { Table } from "./table.ts";

/** Re-reads before a reader starts yielding the CPU between tries. */
const SPINS = 64;
/** How long a reader tries again while writers keep changing its slot. */
const BUSY_MS = 1000;

const fence = new Int32Array(new SharedArrayBuffer(4));

/** The time the current contended read started yielding. */
let yieldingSince = 0;

/**
 * Whether the word at cell `c` is still `word`: the plain reads before this call saw what that
 * word published.
 */
function unchanged(cells: Int32Array, c: number, word: number): boolean {
  Atomics.store(fence, 0, 0);
  return Atomics.load(cells, c) === word;
}

/**
 * Whether the slot that {@linkcode find} found still holds what it found: whatever was read
 * from its value since is whole.
 */
export function stillFound(table: Table, base: number): boolean {
  return unchanged(table.cells, base >>> 2, table.word);
}

/**
 * Before the next try at a read that a writer's publication spoiled: yields the CPU after the
 * first tries.
 *
 * @throws {Deno.errors.Busy} after a second of spoiled tries.
 */
export function tryAgain(attempts: number): void {
  if (attempts < SPINS) return;
  if (attempts === SPINS) yieldingSince = performance.now();
  libc().sched_yield();
  if (attempts % SPINS === 0 && performance.now() - yieldingSince > BUSY_MS) {
    throw new Deno.errors.Busy(
      `Cannot read the shared map: writers changed the entry during every read for over ` +
        `${BUSY_MS} ms`,
    );
  }
}

/** The error for a slot whose stable contents no writer made. */
export function corrupt(what: string): Deno.errors.InvalidData {
  return new Deno.errors.InvalidData(`Cannot read the shared map: it is corrupt (${what})`);
}

/**
 * Looks the table's current key up. On success, `table.word`, `table.valueOffset` and
 * `table.valueLength` say where its value is. The match is not confirmed yet: the caller reads
 * what it needs and then asks {@linkcode stillFound}, which confirms the key and the value at
 * once (one check instead of two); if it says no, the caller looks up again.
 *
 * @returns The slot's byte offset, or -1 when the key is absent.
 * @throws {Deno.errors.InvalidData} when a stable slot holds what no writer writes.
 */
export function find(table: Table): number {
  const { cells, hash, keyLength, slots } = table;
  const maxValueBytes = table.shape.maxValueBytes;
  let slot = table.home();
  for (let probe = 0; probe < slots; probe++) {
    const base = table.base(slot);
    const c = base >>> 2;
    for (let attempts = 0;; attempts++) {
      const word = Atomics.load(cells, c);
      const state = (word >>> 1) & 3;
      if (state === EMPTY) return -1;
      if (state === TOMBSTONE) break;
      if (state !== FULL) throw corrupt(`slot word ${word}`);
      const same = cells[c + S_HASH] === hash && cells[c + S_KEY_LENGTH] === keyLength &&
        table.sameKey(base);
      const half = word & 1;
      const length = cells[c + S_VALUE_LENGTH + half]!;
      if (same && length >= 0 && length <= maxValueBytes) {
        table.word = word;
        table.valueOffset = table.valueAt(base, half);
        table.valueLength = length;
        return base;
      }
      // Another key, or a length out of range: trusted only if no writer published meanwhile.
      if (!unchanged(cells, c, word)) {
        tryAgain(attempts);
        continue;
      }
      if (!same) break;
      throw corrupt(`a value of ${length} bytes where at most ${maxValueBytes} fit`);
    }
    slot = slot + 1 === slots ? 0 : slot + 1;
  }
  return -1;
}

/** The lengths of an entry that {@linkcode readEntry} copied. */
export interface EntryLengths {
  key: number;
  value: number;
}

/**
 * Copies the entry in `slot`, whole, into `keyOut` and `valueOut` (maxKeyBytes and
 * maxValueBytes long), and its lengths into `lengths`.
 *
 * @returns Whether the slot holds an entry (false: empty or deleted).
 */
export function readEntry(
  table: Table,
  slot: number,
  keyOut: Uint8Array,
  valueOut: Uint8Array,
  lengths: EntryLengths,
): boolean {
  const { cells, bytes } = table;
  const { maxKeyBytes, maxValueBytes } = table.shape;
  const base = table.base(slot);
  const c = base >>> 2;
  for (let attempts = 0;; attempts++) {
    const word = Atomics.load(cells, c);
    const state = (word >>> 1) & 3;
    if (state === EMPTY || state === TOMBSTONE) return false;
    if (state !== FULL) throw corrupt(`slot word ${word}`);
    const half = word & 1;
    const key = cells[c + S_KEY_LENGTH]!;
    const value = cells[c + S_VALUE_LENGTH + half]!;
    const fits = key >= 0 && key <= maxKeyBytes && value >= 0 && value <= maxValueBytes;
    if (fits) {
      const keyAt = table.keyAt(base);
      keyOut.set(bytes.subarray(keyAt, keyAt + key));
      const valueAt = table.valueAt(base, half);
      valueOut.set(bytes.subarray(valueAt, valueAt + value));
    }
    if (!unchanged(cells, c, word)) {
      tryAgain(attempts);
      continue;
    }
    if (!fits) throw corrupt(`an entry of ${key} + ${value} bytes in slot ${slot}`);
    lengths.key = key;
    lengths.value = value;
    return true;
  }
}
