/**
 * Fences for seqlock-style shared memory (a reader copies bytes that a writer may be writing
 * over, then checks a word to know whether the copy is whole), built from `Atomics` calls since
 * JavaScript has no fence of its own. Internal.
 *
 * Why they are needed: the JavaScript memory model orders plain (non-Atomics) accesses only
 * through happens-before, which a racing copy does not have; what orders them in practice is
 * how V8 compiles the `Atomics` calls. On x86_64 (TSO) every load is ordered after earlier
 * loads and every store after earlier stores, so a seqlock needs nothing more. On aarch64 V8
 * compiles `Atomics.load` to a load-acquire (`ldar`) and `Atomics.store` to a store-release
 * (`stlr`): an acquire orders only what comes AFTER it, a release only what comes BEFORE it. So
 * - a reader's plain copy may be performed after its re-check `Atomics.load`, which would then
 *   vouch for bytes read later, while a writer was writing over them;
 * - a writer's plain writes may become visible before its earlier `Atomics.store` that marks
 *   the bytes as being written over.
 *
 * The fixes use the one ordering aarch64 keeps between the two: a load-acquire is never
 * performed before an earlier store-release (RCsc, the mapping of sequentially consistent
 * atomics that V8 relies on). So a store-release to a private word between a copy and its
 * re-check keeps the copy before the store and the store before the re-check; and a
 * load-acquire after a writer's marking store keeps its plain writes after the load and the
 * load after the store. On x86_64 `Atomics.store` is an `xchg`, a full barrier, and an
 * `Atomics.load` a plain load: each costs a few nanoseconds.
 *
 * @module
 */

/** The private word of {@linkcode orderReadsBefore}: a shared buffer, so that V8 never treats
 * its atomics as plain accesses. */
const fence = new Int32Array(new SharedArrayBuffer(4));

/**
 * Keeps every read this thread made so far (a plain copy out of shared memory) before the next
 * `Atomics.load`: call it between a seqlock copy and its re-check.
 *
 * @example
 * ```ts ignore
 * import { orderReadsBefore } from "./_fence.ts";
 * const copy = ring.slice(at, at + length);
 * orderReadsBefore();
 * if (Atomics.load(cells, OLDEST) !== oldest) retry();
 * ```
 */
export function orderReadsBefore(): void {
  Atomics.store(fence, 0, 0);
}

/**
 * Stores `value` at `cells[index]` so that every write this thread makes after it (plain ones
 * too) becomes visible after it: the store that tells readers "these bytes are being written
 * over", before writing over them.
 *
 * @param cells The shared words.
 * @param index The word to store.
 * @param value What to store.
 * @example
 * ```ts ignore
 * import { storeBeforeWrites } from "./_fence.ts";
 * storeBeforeWrites(cells, OLDEST, oldest);
 * ring.set(bytes, at); // seen only after OLDEST moved past `at`
 * ```
 */
export function storeBeforeWrites(cells: Int32Array, index: number, value: number): void {
  Atomics.store(cells, index, value);
  Atomics.load(cells, index); // a load-acquire after the store-release: later writes stay after
}
