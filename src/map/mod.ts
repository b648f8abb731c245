/**
 * A shared map: a fixed-capacity hash map in shared memory with string keys and codec values,
 * for the processes of a server to share a cache, counters or a rate limiter.
 *
 * Readers never block, never take a lock and never wait for a writer: every slot has a word
 * that says what it holds, a writer prepares a change where no reader looks and publishes it by
 * storing a new word, and a read checks the word before and after, so a torn value is never
 * seen. Writers take a robust lock in the segment for one entry's copy (the `…Async` forms wait
 * for it without blocking the event loop, with `{ timeout, signal }`); a writer killed at any
 * instant leaves each entry with its old value or its new one, never torn or lost. The map
 * lives in an anonymous segment (hand `map.fd` to a child with `spawn`'s `fds`; the child calls
 * `SharedMap.fromFd`), or under a name that unrelated processes `SharedMap.open`.
 *
 * The parts, each in its own file: the memory layout and header checks (layout.ts), the table's
 * views and key hashing (table.ts), the lock-free read path (read.ts), the locked write path
 * with eviction and crash repair (write.ts), and the `SharedMap` API (map.ts).
 *
 * @example A rate limiter's counters
 * ```ts
 * import { codecs, SharedMap } from "@posix/ipc/map";
 *
 * using requests = SharedMap.create({ codec: codecs.json, whenFull: "evict-lru" });
 * const count = requests.update("client-7", (n) => ((n as number | undefined) ?? 0) + 1);
 * console.log(count); // 1
 * ```
 *
 * @module
 */

export {
  type CreateSharedMapOptions,
  type OpenOrCreateSharedMapOptions,
  type OpenSharedMapOptions,
  SharedMap,
  type WhenFull,
  type WriteOptions,
} from "./map.ts";
export { type Codec, codecs } from "../codec.ts";
export type { OpenOrCreateWaitOptions } from "../_open_or_create.ts";
export type { WaitOptions } from "../_wait.ts";
