/**
 * The bounded buffer: a producer and a consumer process share a ring of slots in shared
 * memory, and two semaphores in that same memory count the free slots and the filled ones.
 *
 * The parent produces ITEMS numbers into an 8-slot ring; a child Deno process, handed the
 * anonymous segment as fd 3, consumes them. The producer waits when the ring is full and the
 * consumer when it is empty: neither ever spins, loses or repeats an item. Both print the
 * sum of what they moved, which must agree.
 *
 * Run: deno run --allow-ffi --allow-run examples/bounded_buffer.ts [ITEMS]
 *
 * @module
 */

import { inheritedFd, Semaphore, SharedMemory, spawnDeno } from "../mod.ts";

const SLOTS = 8;
const FREE_AT = 0; // the semaphore counting free slots
const FILLED_AT = 64; // the one counting filled slots
const RING_AT = 128; // SLOTS float64 values

if (Deno.args[0] === "--consumer") {
  using memory = SharedMemory.fromFd(inheritedFd(3));
  using free = Semaphore.at(memory, FREE_AT);
  using filled = Semaphore.at(memory, FILLED_AT);
  const ring = new Float64Array(memory.buffer, RING_AT, SLOTS);
  const items = Number(Deno.args[1]);
  let sum = 0;
  for (let i = 0; i < items; i++) {
    await filled.wait(); // an item is there
    sum += ring[i % SLOTS]!;
    free.post(); // its slot is free again
  }
  console.log(`consumer ${Deno.pid} took ${items} items, sum ${sum}`);
} else {
  const items = Number(Deno.args[0] ?? 10_000);
  using memory = SharedMemory.anonymous({ size: 4096 });
  using free = Semaphore.init(memory, FREE_AT, { value: SLOTS });
  using filled = Semaphore.init(memory, FILLED_AT, { value: 0 });
  const ring = new Float64Array(memory.buffer, RING_AT, SLOTS);
  await using consumer = spawnDeno(import.meta.url, {
    args: ["--consumer", String(items)],
    permissions: { ffi: true },
    fds: { 3: memory },
  });
  const started = performance.now();
  let sum = 0;
  for (let i = 0; i < items; i++) {
    await free.wait(); // a slot is free
    ring[i % SLOTS] = i;
    sum += i;
    filled.post();
  }
  const status = await consumer.status;
  const ms = performance.now() - started;
  console.log(`producer ${Deno.pid} put ${items} items through ${SLOTS} slots, sum ${sum}`);
  console.log(`${status.success ? "done" : "the consumer failed"} in ${ms.toFixed(0)} ms`);
}
