/**
 * The robust Mutex against a semaphore used as a lock (what a Deno program would otherwise
 * reach for, through this library, or a lock file).
 *
 * - "uncontended lock + unlock": one process alone.
 * - "lock + unlock, contended": this process locks and unlocks while a child process does the
 *   same on the same lock, so that the lock keeps passing between the two processes.
 *
 * Run: deno task bench bench/sync_bench.ts
 *
 * @module
 */

import { Mutex, Semaphore, SharedMemory, spawnDeno } from "../mod.ts";

const name = `/pipc-bench-sync-${Deno.pid}`;
const memory = SharedMemory.create(name, { size: 4096 });
const mutex = Mutex.init(memory, 0);
const semaphore = Semaphore.init(memory, 64, { value: 1 });
const alone = SharedMemory.anonymous({ size: 4096 });
const aloneMutex = Mutex.init(alone, 0);
const aloneSemaphore = Semaphore.init(alone, 64, { value: 1 });

Deno.bench({
  group: "uncontended lock + unlock",
  name: "semaphore as a lock (waitSync + post)",
  baseline: true,
  fn() {
    aloneSemaphore.waitSync();
    aloneSemaphore.post();
  },
});

Deno.bench({
  group: "uncontended lock + unlock",
  name: "Mutex (lockSync + unlock)",
  fn() {
    aloneMutex.lockSync().unlock();
  },
});

const contender = spawnDeno(new URL("./fixtures/echo.ts", import.meta.url), {
  args: ["contend", name],
  permissions: { ffi: true },
});
await new Promise((resolve) => setTimeout(resolve, 300)); // let the child start contending

Deno.bench({
  group: "lock + unlock, contended by another process",
  name: "semaphore as a lock",
  baseline: true,
  fn() {
    semaphore.waitSync();
    semaphore.post();
  },
});

Deno.bench({
  group: "lock + unlock, contended by another process",
  name: "Mutex",
  fn() {
    mutex.lockSync().unlock();
  },
});

globalThis.addEventListener("unload", () => {
  contender.kill("SIGKILL");
  for (const handle of [mutex, semaphore, aloneMutex, aloneSemaphore, memory, alone]) {
    handle.close();
  }
});
