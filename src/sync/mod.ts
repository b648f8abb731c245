/**
 * Process-shared synchronisation in shared memory: a robust {@linkcode Mutex} (the next locker
 * learns when the holder died), a {@linkcode Condition} variable and a reusable
 * {@linkcode Barrier}, usable from every process that maps the memory.
 *
 * Each is placed at an offset of a `SharedMemory` or shared `Mapping` with `init()` once, and
 * taken with `at()` elsewhere. Waits never block the event loop, take `{ timeout, signal }`, and
 * have `…Sync` forms for workers. Ownership of a mutex belongs to a process (the lock holds its
 * pid and PID namespace), so do not share one between Workers of one process. A holder's death
 * is detected from its own PID namespace only: a process in another one (another container)
 * waits instead of judging a pid that is not its namespace's.
 *
 * @example
 * ```ts
 * import { Mutex } from "@posix/ipc/sync";
 * import { SharedMemory } from "@posix/ipc/shm";
 *
 * using memory = SharedMemory.anonymous({ size: 4096 });
 * using mutex = Mutex.init(memory, 0);
 * using guard = mutex.lockSync();
 * console.log(mutex.owner === Deno.pid, guard.ownerDied); // true false
 * ```
 *
 * @module
 */

export { Mutex, MutexGuard } from "./mutex.ts";
export { Condition } from "./condition.ts";
export { Barrier } from "./barrier.ts";
export type { WaitOptions } from "../_wait.ts";
