/**
 * A shared LRU cache: several processes share one cache table in shared memory, guarded by
 * a robust Mutex, so that what one process computed the others find.
 *
 * The table holds SLOTS entries of [key, value, last use]; a lookup that misses computes the
 * value outside the lock and stores it over the least recently used entry. Before the
 * workers start, a "crasher" process takes the lock, starts an update and dies without
 * unlocking, as a crashed program would. The next process to lock is told that the owner
 * died (`ownerDied`), repairs the half-written entry, and goes on: a robust mutex never leaves
 * the others stuck. Each worker prints its hits and misses; the parent checks every cached
 * value at the end.
 *
 * Run: deno run --allow-ffi --allow-run examples/shared_lru_cache.ts [WORKERS] [LOOKUPS]
 *
 * @module
 */

import { inheritedFd, Mutex, SharedMemory, spawnDeno } from "../mod.ts";

const SLOTS = 64;
const KEYS = 200;
const MUTEX_AT = 0;
/** Int32 cells from byte 64: tick, hits, misses, the slot being written (-1: none), slots. */
const TICK = 0, HITS = 1, MISSES = 2, WRITING = 3, TABLE = 4;
const EMPTY = -1;

/** The "expensive" function whose results are cached. */
function compute(key: number): number {
  let value = key;
  for (let i = 0; i < 20_000; i++) value = (value * 1_103_515_245 + 12_345) % 2_147_483_647;
  return value;
}

class SharedCache {
  readonly cells: Int32Array;
  constructor(memory: SharedMemory, readonly mutex: Mutex) {
    this.cells = new Int32Array(memory.buffer, 64, TABLE + SLOTS * 3);
  }

  /** The cached value of `key`, computed on a miss; `hit` tells which. */
  get(key: number): { value: number; hit: boolean } {
    const cached = this.#locked(() => {
      const slot = this.#find(key);
      if (slot === undefined) return undefined;
      this.cells[TABLE + slot * 3 + 2] = ++this.cells[TICK]!;
      this.cells[HITS]!++;
      return this.cells[TABLE + slot * 3 + 1]!;
    });
    if (cached !== undefined) return { value: cached, hit: true };
    const value = compute(key); // outside the lock: others go on meanwhile
    this.#locked(() => {
      const slot = this.#find(key) ?? this.#leastRecentlyUsed();
      this.cells[WRITING] = slot; // if this process died now, the next locker would know
      const at = TABLE + slot * 3;
      this.cells[at] = key;
      this.cells[at + 1] = value;
      this.cells[at + 2] = ++this.cells[TICK]!;
      this.cells[WRITING] = EMPTY;
      this.cells[MISSES]!++;
    });
    return { value, hit: false };
  }

  #locked<R>(fn: () => R): R {
    using guard = this.mutex.lockSync();
    if (guard.ownerDied) {
      const slot = this.cells[WRITING]!;
      if (slot !== EMPTY) this.cells[TABLE + slot * 3] = EMPTY; // drop the half-written entry
      this.cells[WRITING] = EMPTY;
      guard.markConsistent();
      console.log(`worker ${Deno.pid}: the lock's owner died mid-update; dropped slot ${slot}`);
    }
    return fn();
  }

  #find(key: number): number | undefined {
    for (let slot = 0; slot < SLOTS; slot++) if (this.cells[TABLE + slot * 3] === key) return slot;
    return undefined;
  }

  #leastRecentlyUsed(): number {
    let oldest = 0;
    for (let slot = 0; slot < SLOTS; slot++) {
      if (this.cells[TABLE + slot * 3] === EMPTY) return slot;
      if (this.cells[TABLE + slot * 3 + 2]! < this.cells[TABLE + oldest * 3 + 2]!) oldest = slot;
    }
    return oldest;
  }
}

if (Deno.args[0] === "--crasher") {
  const memory = SharedMemory.fromFd(inheritedFd(3));
  const cache = new SharedCache(memory, Mutex.at(memory, MUTEX_AT));
  cache.mutex.lockSync(); // never unlocked
  cache.cells[WRITING] = 7;
  cache.cells[TABLE + 7 * 3] = 42; // a key without its value: half an update
  console.log(`crasher ${Deno.pid}: took the lock, wrote half an entry, and dies`);
  Deno.exit(1);
} else if (Deno.args[0] === "--worker") {
  using memory = SharedMemory.fromFd(inheritedFd(3));
  using mutex = Mutex.at(memory, MUTEX_AT);
  const cache = new SharedCache(memory, mutex);
  const lookups = Number(Deno.args[1]);
  let hits = 0;
  for (let i = 0; i < lookups; i++) {
    const key = Math.floor(Math.random() ** 3 * KEYS); // a few keys are hot
    if (cache.get(key).hit) hits++;
  }
  console.log(`worker ${Deno.pid}: ${lookups} lookups, ${hits} hits, ${lookups - hits} misses`);
} else {
  const workers = Number(Deno.args[0] ?? 3);
  const lookups = Number(Deno.args[1] ?? 2000);
  using memory = SharedMemory.anonymous({ size: 64 + (TABLE + SLOTS * 3) * 4 });
  using mutex = Mutex.init(memory, MUTEX_AT);
  const cache = new SharedCache(memory, mutex);
  for (let slot = 0; slot < SLOTS; slot++) cache.cells[TABLE + slot * 3] = EMPTY;
  cache.cells[WRITING] = EMPTY;
  const options = { permissions: { ffi: true }, fds: { 3: memory } } as const;
  await spawnDeno(import.meta.url, { ...options, args: ["--crasher"] }).status;
  const started = performance.now();
  const children = Array.from(
    { length: workers },
    () => spawnDeno(import.meta.url, { ...options, args: ["--worker", String(lookups)] }),
  );
  for (const child of children) await child.status;
  const [hits, misses] = [cache.cells[HITS]!, cache.cells[MISSES]!];
  let wrong = 0;
  for (let slot = 0; slot < SLOTS; slot++) {
    const key = cache.cells[TABLE + slot * 3]!;
    if (key !== EMPTY && cache.cells[TABLE + slot * 3 + 1] !== compute(key)) wrong++;
  }
  console.log(
    `parent: ${workers} workers, ${hits + misses} lookups: ${hits} hits, ${misses} misses ` +
      `(${((hits / (hits + misses)) * 100).toFixed(0)}% hits) in ${
        (performance.now() - started).toFixed(0)
      } ms`,
  );
  console.log(`parent: ${wrong === 0 ? "every cached value is right" : `${wrong} WRONG values`}`);
}
