/**
 * Open-or-create and generated names, in one process (no peer is involved: these are the
 * calls' own costs).
 *
 * - "open an existing segment by name": what a process that finds the segment made pays.
 *   `await openOrCreate()` (the user's path: a refused O_EXCL create, then an open) against
 *   `openOrCreateSync()` and a plain `open()` (best case: it knows the segment exists).
 * - "create a 4 KiB segment, then close (which removes it)": `create(null, …)`, which
 *   generates the name, against `create(name, …)` with a name the caller made up.
 * - "create a named semaphore, then close": the same, for `Semaphore`.
 *
 * Run: deno bench --allow-all bench/names_bench.ts
 *
 * @module
 */

import { Semaphore, SharedMemory } from "../mod.ts";

const prefix = `/pipc-bench-${Deno.pid}`;
const existing = SharedMemory.create(`${prefix}-existing`, { size: 4096 });
let counter = 0;

const open = "open an existing segment by name";

Deno.bench({
  group: open,
  name: "await SharedMemory.openOrCreate()",
  async fn() {
    (await SharedMemory.openOrCreate(existing.name!, { size: 4096 })).close();
  },
});

Deno.bench({
  group: open,
  name: "SharedMemory.openOrCreateSync()",
  fn() {
    SharedMemory.openOrCreateSync(existing.name!, { size: 4096 }).close();
  },
});

Deno.bench({
  group: open,
  name: "SharedMemory.open() (best case: knows it exists)",
  baseline: true,
  fn() {
    SharedMemory.open(existing.name!).close();
  },
});

const create = "create a 4 KiB segment, then close (which removes it)";

Deno.bench({
  group: create,
  name: "SharedMemory.create(null): a generated name",
  fn() {
    SharedMemory.create(null, { size: 4096 }).close();
  },
});

Deno.bench({
  group: create,
  name: "SharedMemory.create(name): a name of the caller's",
  baseline: true,
  fn() {
    SharedMemory.create(`${prefix}-${++counter}`, { size: 4096 }).close();
  },
});

const semaphore = "create a named semaphore, then close (which removes it)";

Deno.bench({
  group: semaphore,
  name: "Semaphore.create(null): a generated name",
  fn() {
    Semaphore.create(null).close();
  },
});

Deno.bench({
  group: semaphore,
  name: "Semaphore.create(name): a name of the caller's",
  baseline: true,
  fn() {
    Semaphore.create(`${prefix}-sem-${++counter}`).close();
  },
});

globalThis.addEventListener("unload", () => existing.close());
