/**
 * System V IPC: shared memory segments, semaphore sets and message queues, known by keys
 * (`ftok()`) and ids, as much existing software (PostgreSQL, many C services) uses them.
 *
 * Every object is a class with `close()`/`using`; the handle that created an object removes it
 * unless created with `persist: true`. Waits (`op()`, `send()`, `receive()`) never block the
 * event loop and take `{ timeout, signal }`.
 *
 * @example A semaphore set with SEM_UNDO
 * ```ts
 * import { IPC_PRIVATE, SysVSemaphoreSet } from "@posix/ipc/sysv";
 *
 * using set = SysVSemaphoreSet.create(IPC_PRIVATE, 1);
 * set.setValue(0, 1);
 * // If this process died now, the kernel would give the count back:
 * await set.op([{ index: 0, delta: -1, undo: true }]);
 * console.log(set.getValue(0)); // 0
 * ```
 *
 * @module
 */

export type { SysVPermissions } from "./_common.ts";
export { ftok, IPC_PRIVATE } from "./keys.ts";
export * from "./shm.ts";
export * from "./sem.ts";
export * from "./msg.ts";
export type { WaitOptions } from "../_wait.ts";
