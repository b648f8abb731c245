/**
 * A shared map: a fixed-capacity hash map in shared memory with string keys and codec values,
 * for the processes of a server to share a cache, counters or a rate limiter.
 *
 * Readers never block and never take a lock: every slot is a seqlock (a sequence word that a
 * writer makes odd while it changes the slot), and a read copies the entry and checks the word
 * again, so a torn value is never seen. Writers take a robust lock in the segment for one
 * entry's copy; a writer killed mid-write leaves no half-written value, and the next writer
 * repairs the map. The map lives in an anonymous segment (hand `map.fd` to a child with
 * `spawn`'s `fds`; the child calls `SharedMap.fromFd`), or under a name that unrelated processes
 * `SharedMap.open`.
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
