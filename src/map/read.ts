/**
 * The read path of a shared map: lookups and iteration that never take the lock, through a
 * seqlock on every slot. Internal.
 *
 * A writer makes a slot's sequence word odd, changes the slot, and makes it even again. A
 * reader reads the word, copies what it needs, and reads the word again: the copy is whole if
 * the word was even and did not change; otherwise it tries again. So a reader never sees half a
 * write, and never waits for the lock: only for the one slot a writer is changing, which takes
 * one bounded copy.
 *
 * Retries are bounded: 64 at once, then each after yielding the CPU (a writer preempted in its
 * copy gets to finish it). A slot still odd while the writers' lock is free or held by a dead
 * process was abandoned by a writer killed in its copy: the reader skips it, as a deleted entry
 * (the next writer repairs it: src/map/write.ts). After a second of a live writer stuck in one
 * slot (a stopped process), the read throws `Deno.errors.Busy`. The writer's death is judged
 * from the lock's owner pid (a zombie counts as dead); a writer in another PID namespace (a
 * container sharing /dev/shm) is named by a pid that means nothing here, so processes that share
 * a map should share a PID namespace, as for `Mutex`.
 *
 * Ordering: the sequence words are read with `Atomics.load`; before the second read, an
 * `Atomics.store` to a private word orders the copy's plain reads before it (on aarch64 a
 * load-acquire alone would let them pass; the store-release and the load-acquire after it keep
 * them in order).
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { EMPTY, FULL, S_HASH, S_KEY_LENGTH, S_STATE, S_VALUE_LENGTH, TOMBSTONE } from "./layout.ts";
import type { Table } from "./table.ts";

/** Re-reads before a reader starts yielding the CPU between tries. */
const SPINS = 64;
/** How long a reader waits for a live writer to finish one slot. */
const STUCK_MS = 1000;

const fence = new Int32Array(new SharedArrayBuffer(4));

/** The time the current contended read started yielding, or -1. */
let yieldingSince = -1;

/**
 * After a failed try at the slot at cell `c`: whether to give up on it (an abandoned write)
 * rather than try again. Yields the CPU after the first tries.
 *
 * @throws {Deno.errors.Busy} after a second of a live writer in the slot.
 */
function abandoned(table: Table, c: number, attempts: number): boolean {
  if (attempts < SPINS) return false;
  if (attempts === SPINS) yieldingSince = performance.now();
  libc().sched_yield();
  if (attempts % SPINS !== 0 || (Atomics.load(table.cells, c) & 1) === 0) return false;
  if (table.writerGone()) return true;
  if (performance.now() - yieldingSince > STUCK_MS) {
    throw new Deno.errors.Busy(
      `Cannot read the shared map: process ${table.writer()} has been writing one of its ` +
        `entries for over ${STUCK_MS} ms (is it stopped?)`,
    );
  }
  return false;
}

/** The error for a slot whose stable contents no writer made. */
export function corrupt(what: string): Deno.errors.InvalidData {
  return new Deno.errors.InvalidData(`Cannot read the shared map: it is corrupt (${what})`);
}

/**
 * Looks the table's current key up, copying its value's bytes into `out` (maxValueBytes long).
 *
 * @returns The value's length, or -1 when the key is absent.
 * @throws {Deno.errors.InvalidData} when a stable slot holds what no writer writes.
 */
export function find(table: Table, out: Uint8Array): number {
  const { cells, bytes, hash, keyLength } = table;
  const { slots, maxValueBytes } = table.shape;
  let slot = table.home();
  for (let probe = 0; probe < slots; probe++) {
    const base = table.base(slot);
    const c = base >>> 2;
    for (let attempts = 0;; attempts++) {
      const before = Atomics.load(cells, c);
      if ((before & 1) !== 0) {
        if (abandoned(table, c, attempts)) break;
        continue;
      }
      const state = cells[c + S_STATE];
      let length = -1;
      if (
        state === FULL && cells[c + S_HASH] === hash && cells[c + S_KEY_LENGTH] === keyLength &&
        table.sameKey(base)
      ) {
        length = cells[c + S_VALUE_LENGTH]!;
        if (length >= 0 && length <= maxValueBytes) {
          const at = table.valueAt(base);
          out.set(bytes.subarray(at, at + length));
        }
      }
      Atomics.store(fence, 0, 0);
      if (Atomics.load(cells, c) !== before) {
        if (abandoned(table, c, attempts)) break;
        continue;
      }
      if (state === EMPTY) return -1;
      if (length !== -1) {
        if (length < 0 || length > maxValueBytes) corruptValue(length, maxValueBytes);
        return length;
      }
      if (state !== FULL && state !== TOMBSTONE) throw corrupt(`slot state ${state}`);
      break;
    }
    slot = slot + 1 === slots ? 0 : slot + 1;
  }
  return -1;
}

function corruptValue(length: number, max: number): never {
  throw corrupt(`a value of ${length} bytes where at most ${max} fit`);
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
 * @returns Whether the slot holds an entry (false: empty, deleted, or abandoned by a writer).
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
    const before = Atomics.load(cells, c);
    if ((before & 1) !== 0) {
      if (abandoned(table, c, attempts)) return false;
      continue;
    }
    const state = cells[c + S_STATE];
    const key = cells[c + S_KEY_LENGTH]!;
    const value = cells[c + S_VALUE_LENGTH]!;
    const fits = key >= 0 && key <= maxKeyBytes && value >= 0 && value <= maxValueBytes;
    if (state === FULL && fits) {
      const keyAt = table.keyAt(base);
      keyOut.set(bytes.subarray(keyAt, keyAt + key));
      const valueAt = table.valueAt(base);
      valueOut.set(bytes.subarray(valueAt, valueAt + value));
    }
    Atomics.store(fence, 0, 0);
    if (Atomics.load(cells, c) !== before) {
      if (abandoned(table, c, attempts)) return false;
      continue;
    }
    if (state !== FULL) {
      if (state !== EMPTY && state !== TOMBSTONE) throw corrupt(`slot state ${state}`);
      return false;
    }
    if (!fits) throw corrupt(`an entry of ${key} + ${value} bytes in slot ${slot}`);
    lengths.key = key;
    lengths.value = value;
    return true;
  }
}
