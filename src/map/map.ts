/**
 * The `SharedMap` API: a fixed-capacity hash map in shared memory, on top of its layout
 * (src/map/layout.ts), its table views (src/map/table.ts), the lock-free read path
 * (src/map/read.ts) and the locked write path (src/map/write.ts). Internal: the public entry is
 * src/map/mod.ts.
 *
 * @module
 */

import { adoptMemoryFd } from "../_memory_fd.ts";
import {
  ConstructorToken,
  describe,
  optionalBoolean,
  ownOptions,
  validateName,
} from "../_validate.ts";
import {
  type CheckedWait,
  readWaitOptions,
  validateWaitOptions,
  type WaitOptions,
} from "../_wait.ts";
import {
  markCreated,
  type OpenOrCreateWaitOptions,
  validateInit,
  wasCreated,
} from "../_open_or_create.ts";
import { defaultCodec, validateCodec } from "../channel/options.ts";
import { decodeOwned, encodeChecked, Slabs } from "../channel/slab.ts";
import { type Codec, codecs } from "../codec.ts";
import { closedError } from "../errors.ts";
import type { FdLike } from "../fd.ts";
import { type OpenOrCreateSharedMemoryOptions, SharedMemory } from "../shm.ts";
import { Mutex, type MutexGuard } from "../sync/mutex.ts";
import {
  LOCK_AT,
  type MapShape,
  readHeader,
  S_VALUE_LENGTH,
  segmentSize,
  validateShape,
  type WhenFull,
  writeHeader,
} from "./layout.ts";
import { corrupt, type EntryLengths, find, readEntry, stillFound, tryAgain } from "./read.ts";
import { Table } from "./table.ts";
import { clear, locate, type Located, put, remove, repair, size } from "./write.ts";

export type { WhenFull };

const token = new ConstructorToken("SharedMap", "SharedMap.create(), open() or fromFd()");
const keyDecoder = new TextDecoder("utf-8", { fatal: true });

/** Options of {@linkcode SharedMap.create}. */
export interface CreateSharedMapOptions<T> {
  /**
   * A name for unrelated processes to `open` (as for `SharedMemory`), or `null` to generate a
   * unique one (read it from `name` and send it). Default: anonymous.
   */
  name?: string | null;
  /** The most entries the map holds, 1 to 2^24. Default 1024. */
  capacity?: number;
  /** The longest key, in UTF-8 bytes, 1 to 65536. Default 64. */
  maxKeyBytes?: number;
  /** The largest value, in bytes once encoded, 1 to 64 MiB. Default 256. */
  maxValueBytes?: number;
  /** How values become bytes. Default `codecs.bytes`. */
  codec?: Codec<T>;
  /**
   * What `set` of a new key does when the map holds `capacity` entries: `"error"` (default)
   * throws an `IpcError` with code ENOSPC; `"evict-lru"` deletes the entry written least
   * recently first.
   */
  whenFull?: WhenFull;
  /** Keep a named map when the creator closes it. Default `false`. */
  persist?: boolean;
  /** Permission bits of a named map. Default 0o600. */
  mode?: number;
}

/** Options of {@linkcode SharedMap.openOrCreate}. */
export interface OpenOrCreateSharedMapOptions<T>
  extends Omit<CreateSharedMapOptions<T>, "name">, OpenOrCreateWaitOptions {
  /**
   * Runs in the creating process only, before any other process may use the map: put the
   * first entries in here. May be async; other processes wait for it (up to their `timeout`).
   */
  init?: (map: SharedMap<T>) => unknown;
}

/** Options of {@linkcode SharedMap.open} and {@linkcode SharedMap.fromFd}. */
export interface OpenSharedMapOptions<T> {
  /** The codec; it must be the creator's. Default `codecs.bytes`. */
  codec?: Codec<T>;
}

/** Options of the writing methods. */
export interface WriteOptions {
  /**
   * How long to wait for the writers' lock, in ms, before throwing `Deno.errors.TimedOut`.
   * Default, and `Infinity`: as long as it takes. (The lock is held for one entry's copy; a
   * holder that died is found at once; only a stopped holder keeps it long.)
   */
  timeout?: number;
}

/** What close, or the garbage collector, releases. */
interface Lease {
  readonly memory: SharedMemory;
  readonly lock: Mutex;
}

const releaseWhenUnreachable = new FinalizationRegistry<Lease>((lease) => {
  // Never throws: an error in a finalizer would end the process.
  try {
    lease.lock.close();
  } catch {
    // nothing more to do
  }
  try {
    lease.memory.close();
  } catch {
    // what could not be released stays: a leak, never a hole
  }
});

/**
 * A fixed-capacity hash map in shared memory, with string keys and values of type `T` through a
 * codec, shared by any processes: by name, or through a descriptor handed to a child.
 *
 * - Readers (`get`, `has`, iteration) never block, never take a lock and never wait for a
 *   writer, not even a stopped one: each slot has a word that a writer changes in one store to
 *   publish a change it prepared aside, and a read checks that word before and after, so a torn
 *   value is never seen.
 * - Writers (`set`, `delete`, `update`, `clear`) take a robust lock in the segment for one
 *   entry's copy; `setAsync`, `deleteAsync`, `updateAsync` and `clearAsync` wait for it without
 *   blocking the event loop, with `{ timeout, signal }`. A new value is written beside the old
 *   one and published at once, so a writer killed at any instant leaves the entry with its old
 *   value or its new one, never torn and never lost: a counter kept in one entry never
 *   restarts. The next writer repairs the entry count and the map goes on.
 * - Full: a new key throws an `IpcError` with code ENOSPC, or with `whenFull: "evict-lru"`
 *   evicts the least recently written entry.
 * - Keys are any well-formed strings ("__proto__" is a key like any other), up to
 *   `maxKeyBytes` in UTF-8; values up to `maxValueBytes` once encoded.
 *
 * @example A counter shared by the processes of a server
 * ```ts
 * import { codecs, SharedMap } from "@posix/ipc/map";
 *
 * using hits = SharedMap.create({ codec: codecs.json, capacity: 100 });
 * // hand hits.fd to workers with spawn's fds; each calls SharedMap.fromFd(inheritedFd(3), …)
 * hits.update("/index.html", (n) => ((n as number | undefined) ?? 0) + 1);
 * console.log(hits.get("/index.html")); // 1
 * ```
 */
export class SharedMap<T = Uint8Array> implements Disposable, Iterable<[string, T]> {
  readonly #memory: SharedMemory;
  readonly #lock: Mutex;
  readonly #table: Table;
  readonly #codec: Codec<T>;
  readonly #label: string;
  /** Where a lookup copies a value, and where decoded bytes values are copied to. */
  readonly #value: Uint8Array<ArrayBuffer>;
  readonly #slabs = new Slabs();
  readonly #located: Located = { slot: -1, free: -1 };
  /** Whether the codec is the built-in text or JSON one, decoded here from the copy. */
  readonly #textual: boolean;
  #closed = false;

  private constructor(
    key: ConstructorToken,
    memory: SharedMemory,
    codec: Codec<T>,
    shape?: MapShape,
  ) {
    token.check(key);
    if (shape) writeHeader(memory, shape, codec.name);
    const checked = readHeader(memory, codec.name);
    this.#memory = memory;
    this.#codec = codec;
    this.#textual = codec === (codecs.json as unknown) || codec === (codecs.text as unknown);
    this.#label = memory.name === null ? "shared map" : `shared map "${memory.name}"`;
    this.#lock = (shape ? Mutex.init : Mutex.at)(memory, LOCK_AT);
    this.#table = new Table(memory.buffer, checked);
    this.#value = new Uint8Array(checked.maxValueBytes);
    releaseWhenUnreachable.register(this, { memory, lock: this.#lock }, this);
  }

  /**
   * Creates a map: anonymous by default (hand `fd` to a child), or named.
   *
   * @param options `name`, `capacity`, `maxKeyBytes`, `maxValueBytes`, `codec`, `whenFull`,
   * `persist`, `mode`.
   * @returns The map, empty.
   * @throws {RangeError} for a capacity or size out of range, or a map over 2 GiB.
   * @throws {TypeError} for a whenFull other than "error" or "evict-lru", or a bad codec.
   * @throws {Deno.errors.AlreadyExists} when the name is taken.
   * @example
   * ```ts
   * import { codecs, SharedMap } from "@posix/ipc/map";
   *
   * using map = SharedMap.create({ capacity: 1000, maxValueBytes: 64, codec: codecs.text });
   * map.set("greeting", "hello");
   * console.log(map.get("greeting"), map.size); // "hello" 1
   * ```
   * @example A generated name, to send to the other processes
   * ```ts
   * import { codecs, SharedMap } from "@posix/ipc/map";
   *
   * using map = SharedMap.create({ name: null, capacity: 16, codec: codecs.text });
   * map.set("k", "v");
   * using opened = SharedMap.open(map.name!, { codec: codecs.text }); // where the name went
   * console.log(opened.get("k")); // "v"
   * ```
   */
  static create<T = Uint8Array>(options?: CreateSharedMapOptions<T>): SharedMap<T> {
    options = ownOptions(options, "SharedMap.create() options");
    const shape = validateShape(options);
    const codec = validateCodec<T>(options.codec ?? defaultCodec<T>());
    const persist = optionalBoolean(options.persist, "persist") ?? false;
    const size = segmentSize(shape);
    const memory = options.name === undefined
      ? SharedMemory.anonymous({ size })
      : SharedMemory.create(options.name, { size, mode: options.mode, persist });
    return markCreated(SharedMap.#adopt(memory, codec, shape));
  }

  /**
   * Opens the named map, or creates it if no map has that name, without races: of many
   * processes calling this at once, exactly one creates the map and runs `init` on it (to put
   * the first entries in), and the others wait (up to `timeout`) until it is done, so none sees
   * a half-made or unseeded map (the protocol of {@linkcode SharedMemory.openOrCreate}).
   * {@linkcode SharedMap.created} tells which happened; the creating handle owns the name as
   * {@linkcode SharedMap.create}'s does. An opened map keeps its creator's shape.
   *
   * @param name The map's name.
   * @param options Those of {@linkcode SharedMap.create} for creating (`codec` also for
   * opening), `init`, and `timeout` (default 5000 ms) and `signal` for the wait.
   * @returns The map.
   * @throws {Deno.errors.TimedOut} when the map stayed uninitialised for `timeout` ms.
   * @throws {TypeError} when the codec is not the creator's.
   * @example
   * ```ts
   * import { codecs, SharedMap } from "@posix/ipc/map";
   *
   * const name = `/settings-${Deno.pid}`;
   * const init = (map: SharedMap<string>) => map.set("theme", "dark");
   * using first = await SharedMap.openOrCreate(name, { codec: codecs.text, init });
   * using second = await SharedMap.openOrCreate(name, { codec: codecs.text, init });
   * console.log(first.created, second.created, second.get("theme")); // true false "dark"
   * ```
   */
  static async openOrCreate<T = Uint8Array>(
    name: string,
    options?: OpenOrCreateSharedMapOptions<T>,
  ): Promise<SharedMap<T>> {
    const plan = SharedMap.#openOrCreatePlan(name, options, "openOrCreate");
    try {
      return plan.adopt(await SharedMemory.openOrCreate(name, plan.memory));
    } catch (error) {
      plan.discard();
      throw error;
    }
  }

  /**
   * {@linkcode SharedMap.openOrCreate} for code that cannot await: the same protocol, with the
   * wait for a creator that is seeding the map (up to `timeout`, default 5000 ms) blocking
   * this thread in short sleeps. `init` must be synchronous: if it returns a promise, the map
   * is removed and this throws a TypeError.
   *
   * @param name The map's name.
   * @param options As for {@linkcode SharedMap.openOrCreate}; `signal` is only checked before
   * the wait, since nothing can abort it while the thread blocks.
   * @returns The map.
   * @throws {Deno.errors.TimedOut} when the map stayed uninitialised for `timeout` ms.
   * @throws {TypeError} when the codec is not the creator's, or `init` returns a promise.
   * @example
   * ```ts
   * import { codecs, SharedMap } from "@posix/ipc/map";
   *
   * const name = `/sync-settings-${Deno.pid}`;
   * const init = (map: SharedMap<string>) => void map.set("theme", "dark");
   * using first = SharedMap.openOrCreateSync(name, { codec: codecs.text, init });
   * using second = SharedMap.openOrCreateSync(name, { codec: codecs.text, timeout: 1000 });
   * console.log(first.created, second.created, second.get("theme")); // true false "dark"
   * ```
   */
  static openOrCreateSync<T = Uint8Array>(
    name: string,
    options?: OpenOrCreateSharedMapOptions<T>,
  ): SharedMap<T> {
    const plan = SharedMap.#openOrCreatePlan(name, options, "openOrCreateSync");
    try {
      return plan.adopt(SharedMemory.openOrCreateSync(name, plan.memory));
    } catch (error) {
      plan.discard();
      throw error;
    }
  }

  /**
   * Checks openOrCreate's arguments; returns the segment's options (whose `init` writes the
   * header and runs the user's), how to make the map of the segment, and how to close the map
   * that `init` made when the creation failed after it, for both forms.
   */
  static #openOrCreatePlan<T>(
    name: string,
    options: OpenOrCreateSharedMapOptions<T> | undefined,
    call: string,
  ): {
    memory: OpenOrCreateSharedMemoryOptions;
    adopt: (memory: SharedMemory) => SharedMap<T>;
    discard: () => void;
  } {
    validateName(name, "map");
    const own = ownOptions(options, `SharedMap.${call}() options`);
    const shape = validateShape(own);
    const codec = validateCodec<T>(own.codec ?? defaultCodec<T>());
    const persist = optionalBoolean(own.persist, "persist") ?? false;
    const init = validateInit<SharedMap<T>>(own.init, `open or create map "${name}"`);
    let map: SharedMap<T> | undefined;
    return {
      memory: {
        size: segmentSize(shape),
        mode: own.mode,
        persist,
        timeout: own.timeout,
        signal: own.signal,
        // Not async: what init returns goes back as is, for the async form to await and the
        // sync form to refuse if it is a promise.
        init: (created) => {
          map = SharedMap.#adopt(created, codec, shape);
          return init?.(map);
        },
      },
      adopt: (memory) => map ? markCreated(map) : SharedMap.#adopt(memory, codec),
      discard: () => map?.close(),
    };
  }

  /**
   * Opens a named map that another process created.
   *
   * @param name The map's name.
   * @param options The `codec`: the creator's.
   * @returns The map.
   * @throws {Deno.errors.NotFound} when no map has that name.
   * @throws {Deno.errors.InvalidData} when the segment holds no map, or a header that does not
   * fit it.
   * @throws {TypeError} when the codec is not the creator's.
   * @example
   * ```ts
   * import { SharedMap } from "@posix/ipc/map";
   *
   * const name = `/map-${Deno.pid}`;
   * using created = SharedMap.create({ name });
   * using opened = SharedMap.open(name); // as an unrelated process would
   * created.set("k", new Uint8Array([1]));
   * console.log(opened.get("k")); // Uint8Array(1) [ 1 ]
   * ```
   */
  static open<T = Uint8Array>(name: string, options?: OpenSharedMapOptions<T>): SharedMap<T> {
    options = ownOptions(options, "SharedMap.open() options");
    const codec = validateCodec<T>(options.codec ?? defaultCodec<T>());
    return SharedMap.#adopt(SharedMemory.open(name), codec);
  }

  /**
   * Takes a map from a descriptor, typically one a parent handed down with `spawn`'s `fds`. As
   * with `SharedMemory.fromFd`: on success the map owns a descriptor given as a number or an
   * `OwnedFd`, and on failure it stays the caller's, open; another handle keeps its own.
   *
   * @param fd The descriptor (for example `inheritedFd(3)`), or a handle that has one.
   * @param options The `codec`: the creator's.
   * @returns The map.
   * @throws {Deno.errors.InvalidData} when the descriptor holds no map, or a bad header.
   * @example
   * ```ts
   * import { SharedMap } from "@posix/ipc/map";
   *
   * using parent = SharedMap.create();
   * using child = SharedMap.fromFd(parent); // as a child given parent.fd would
   * parent.set("x", new Uint8Array([7]));
   * console.log(child.get("x")); // Uint8Array(1) [ 7 ]
   * ```
   */
  static fromFd<T = Uint8Array>(fd: FdLike, options?: OpenSharedMapOptions<T>): SharedMap<T> {
    options = ownOptions(options, "SharedMap.fromFd() options");
    const codec = validateCodec<T>(options.codec ?? defaultCodec<T>());
    return adoptMemoryFd(fd, (memory) => SharedMap.#adopt(memory, codec));
  }

  static #adopt<T>(memory: SharedMemory, codec: Codec<T>, shape?: MapShape): SharedMap<T> {
    try {
      return new SharedMap(token, memory, codec, shape);
    } catch (error) {
      memory.close();
      throw error;
    }
  }

  /** The live entries, read without a lock. */
  get size(): number {
    this.#assertOpen();
    return size(this.#table);
  }

  /** The most entries the map holds. */
  get capacity(): number {
    this.#assertOpen();
    return this.#table.shape.capacity;
  }

  /** The longest key, in UTF-8 bytes. */
  get maxKeyBytes(): number {
    this.#assertOpen();
    return this.#table.shape.maxKeyBytes;
  }

  /** The largest value, in encoded bytes. */
  get maxValueBytes(): number {
    this.#assertOpen();
    return this.#table.shape.maxValueBytes;
  }

  /** What a new key does when the map is full. */
  get whenFull(): WhenFull {
    this.#assertOpen();
    return this.#table.shape.whenFull;
  }

  /** The name of a named map, or `null`. */
  get name(): string | null {
    this.#assertOpen();
    return this.#memory.name;
  }

  /**
   * The segment's descriptor, to hand to a child (`spawn`'s `fds`). **UNSAFE**: valid only
   * while the map is open.
   */
  get fd(): number {
    this.#assertOpen();
    return this.#memory.fd;
  }

  /**
   * Whether this handle's call created the map: `true` from {@linkcode SharedMap.create}, and
   * from {@linkcode SharedMap.openOrCreate} when it created it.
   */
  get created(): boolean {
    return wasCreated(this);
  }

  /** Whether this handle was closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The value of `key`, or `undefined`. Never blocks, never takes the lock, never waits for a
   * writer: the value is one that a writer wrote whole.
   *
   * @param key The key.
   * @returns A copy of the value, or `undefined` when absent.
   * @throws {TypeError} for a key that is not a well-formed string.
   * @throws {RangeError} for a key longer than maxKeyBytes.
   * @throws {Deno.errors.InvalidData} when the stored bytes do not decode, or the map is corrupt.
   * @throws {Deno.errors.Busy} when writers changed the entry during every try for a second.
   * @example
   * ```ts
   * import { codecs, SharedMap } from "@posix/ipc/map";
   *
   * using map = SharedMap.create({ codec: codecs.json });
   * map.set("user:1", { name: "Ada" });
   * console.log(map.get("user:1"), map.get("user:2")); // { name: "Ada" } undefined
   * ```
   */
  get(key: string): T | undefined {
    this.#assertOpen();
    const table = this.#table;
    table.setKey(key);
    for (let attempts = 0;; attempts++) {
      const base = find(table);
      if (base < 0) return undefined;
      // Read straight from the shared value, then check that no writer published meanwhile:
      // what a torn read made (or threw) is dropped and the lookup tried again.
      let raw: string | Uint8Array | undefined;
      let failure: unknown;
      try {
        raw = this.#readFound(table);
      } catch (error) {
        failure = error;
      }
      if (!stillFound(table, base)) {
        tryAgain(attempts);
        continue;
      }
      if (raw === undefined) throw this.#decodeError(failure);
      return this.#finish(raw);
    }
  }

  /**
   * Whether `key` has an entry. Never blocks, never takes the lock.
   *
   * @param key The key.
   * @returns `true` when present.
   * @example
   * ```ts
   * import { SharedMap } from "@posix/ipc/map";
   *
   * using map = SharedMap.create();
   * map.set("constructor", new Uint8Array(0)); // any string is an ordinary key
   * console.log(map.has("constructor"), map.has("toString")); // true false
   * ```
   */
  has(key: string): boolean {
    this.#assertOpen();
    const table = this.#table;
    table.setKey(key);
    for (let attempts = 0;; attempts++) {
      const base = find(table);
      if (base < 0) return false;
      if (stillFound(table, base)) return true;
      tryAgain(attempts);
    }
  }

  /**
   * Sets the value of `key`, under the writers' lock.
   *
   * @param key The key.
   * @param value The value; its encoding must fit maxValueBytes.
   * @param options `timeout` for the lock (ms).
   * @returns This map.
   * @throws {RangeError} for a key or encoded value too long.
   * @throws {IpcError} with code ENOSPC when the map is full and whenFull is "error".
   * @throws {Deno.errors.TimedOut} when the lock was not free within `timeout`.
   * @example
   * ```ts
   * import { codecs, SharedMap } from "@posix/ipc/map";
   *
   * using map = SharedMap.create({ codec: codecs.text, capacity: 1 });
   * map.set("a", "1").set("a", "2"); // replacing needs no room
   * console.log(map.get("a")); // "2"
   * ```
   */
  set(key: string, value: T, options?: WriteOptions): this {
    const timeout = this.#writeTimeout(options);
    this.#locked(timeout, this.#putting(key, value));
    return this;
  }

  /**
   * Sets the value of `key`, as {@linkcode SharedMap.set} does, waiting for the writers' lock
   * without blocking the event loop: a writer stopped while holding it delays this call, never
   * the process.
   *
   * @param key The key.
   * @param value The value; its encoding must fit maxValueBytes.
   * @param options `timeout` for the lock (ms) and `signal` to give up.
   * @returns This map.
   * @throws {RangeError} for a key or encoded value too long (at once, before any wait).
   * @throws {IpcError} with code ENOSPC when the map is full and whenFull is "error".
   * @throws {Deno.errors.TimedOut} when the lock was not free within `timeout`.
   * @throws {Deno.errors.BadResource} when the map is closed, also during the wait.
   * @example
   * ```ts
   * import { codecs, SharedMap } from "@posix/ipc/map";
   *
   * using map = SharedMap.create({ codec: codecs.json });
   * await map.setAsync("config", { workers: 4 }, { timeout: 1000 });
   * console.log(map.get("config")); // { workers: 4 }
   * ```
   */
  async setAsync(key: string, value: T, options?: WaitOptions): Promise<this> {
    const wait = this.#asyncWait(options);
    await this.#lockedAsync(wait, this.#putting(key, value));
    return this;
  }

  /**
   * Deletes the entry of `key`, under the writers' lock.
   *
   * @param key The key.
   * @param options `timeout` for the lock (ms).
   * @returns Whether there was one.
   * @example
   * ```ts
   * import { SharedMap } from "@posix/ipc/map";
   *
   * using map = SharedMap.create();
   * map.set("k", new Uint8Array([1]));
   * console.log(map.delete("k"), map.delete("k")); // true false
   * ```
   */
  delete(key: string, options?: WriteOptions): boolean {
    const timeout = this.#writeTimeout(options);
    return this.#locked(timeout, this.#deleting(key));
  }

  /**
   * Deletes the entry of `key`, as {@linkcode SharedMap.delete} does, waiting for the writers'
   * lock without blocking the event loop.
   *
   * @param key The key.
   * @param options `timeout` for the lock (ms) and `signal` to give up.
   * @returns Whether there was one.
   * @throws {Deno.errors.TimedOut} when the lock was not free within `timeout`.
   * @example
   * ```ts
   * import { SharedMap } from "@posix/ipc/map";
   *
   * using map = SharedMap.create();
   * map.set("k", new Uint8Array([1]));
   * console.log(await map.deleteAsync("k", { signal: AbortSignal.timeout(1000) })); // true
   * ```
   */
  async deleteAsync(key: string, options?: WaitOptions): Promise<boolean> {
    const wait = this.#asyncWait(options);
    return await this.#lockedAsync(wait, this.#deleting(key));
  }

  /**
   * Reads, changes and writes the value of `key` atomically: `fn` runs under the writers'
   * lock, so no other writer changes the entry in between (what a rate limiter needs). `fn`
   * gets the current value (or `undefined`) and returns the new one, or `undefined` to delete
   * the entry. Keep it short and synchronous: every writer waits for it. If it throws, nothing
   * changes. Calling this map's writing methods from `fn` throws (EDEADLK).
   *
   * @param key The key.
   * @param fn The change.
   * @param options `timeout` for the lock (ms).
   * @returns The new value, or `undefined` when deleted or left absent.
   * @throws {TypeError} when `fn` is not a function, or returns a promise.
   * @throws {IpcError} with code ENOSPC when a new key finds the map full (whenFull "error").
   * @example
   * ```ts
   * import { codecs, SharedMap } from "@posix/ipc/map";
   *
   * using counts = SharedMap.create({ codec: codecs.json });
   * counts.update("hits", (n) => ((n as number | undefined) ?? 0) + 1);
   * console.log(counts.update("hits", (n) => (n as number) + 1)); // 2
   * ```
   */
  update(
    key: string,
    fn: (current: T | undefined) => T | undefined,
    options?: WriteOptions,
  ): T | undefined {
    const timeout = this.#writeTimeout(options);
    return this.#locked(timeout, this.#updating(key, fn));
  }

  /**
   * Reads, changes and writes the value of `key` atomically, as {@linkcode SharedMap.update}
   * does, waiting for the writers' lock without blocking the event loop. `fn` itself runs
   * under the lock, synchronously.
   *
   * @param key The key.
   * @param fn The change: gets the current value (or `undefined`), returns the new one (or
   * `undefined` to delete).
   * @param options `timeout` for the lock (ms) and `signal` to give up.
   * @returns The new value, or `undefined` when deleted or left absent.
   * @throws {TypeError} when `fn` is not a function (at once), or returns a promise.
   * @throws {Deno.errors.TimedOut} when the lock was not free within `timeout`.
   * @example
   * ```ts
   * import { codecs, SharedMap } from "@posix/ipc/map";
   *
   * using counts = SharedMap.create({ codec: codecs.json });
   * const hits = await counts.updateAsync("hits", (n) => ((n as number | undefined) ?? 0) + 1);
   * console.log(hits); // 1
   * ```
   */
  async updateAsync(
    key: string,
    fn: (current: T | undefined) => T | undefined,
    options?: WaitOptions,
  ): Promise<T | undefined> {
    const wait = this.#asyncWait(options);
    return await this.#lockedAsync(wait, this.#updating(key, fn));
  }

  /**
   * Deletes every entry, under the writers' lock.
   *
   * @param options `timeout` for the lock (ms).
   * @example
   * ```ts
   * import { SharedMap } from "@posix/ipc/map";
   *
   * using map = SharedMap.create();
   * map.set("a", new Uint8Array(1)).set("b", new Uint8Array(1));
   * map.clear();
   * console.log(map.size); // 0
   * ```
   */
  clear(options?: WriteOptions): void {
    const timeout = this.#writeTimeout(options);
    this.#locked(timeout, () => clear(this.#table));
  }

  /**
   * Deletes every entry, as {@linkcode SharedMap.clear} does, waiting for the writers' lock
   * without blocking the event loop.
   *
   * @param options `timeout` for the lock (ms) and `signal` to give up.
   * @throws {Deno.errors.TimedOut} when the lock was not free within `timeout`.
   * @example
   * ```ts
   * import { SharedMap } from "@posix/ipc/map";
   *
   * using map = SharedMap.create();
   * map.set("a", new Uint8Array(1));
   * await map.clearAsync({ timeout: 1000 });
   * console.log(map.size); // 0
   * ```
   */
  async clearAsync(options?: WaitOptions): Promise<void> {
    const wait = this.#asyncWait(options);
    await this.#lockedAsync(wait, () => clear(this.#table));
  }

  /**
   * The entries, read without a lock, slot by slot: each `[key, value]` is one a writer wrote
   * whole; entries changed during the iteration may be seen either way.
   *
   * @returns An iterator of `[key, value]`.
   * @example
   * ```ts
   * import { codecs, SharedMap } from "@posix/ipc/map";
   *
   * using map = SharedMap.create({ codec: codecs.json });
   * map.set("a", 1).set("b", 2);
   * console.log([...map.entries()].sort()); // [ [ "a", 1 ], [ "b", 2 ] ]
   * ```
   */
  entries(): IterableIterator<[string, T]> {
    this.#assertOpen();
    return this.#entries();
  }

  /**
   * The keys, read without a lock (see {@linkcode SharedMap.entries}).
   *
   * @returns An iterator of keys.
   * @example
   * ```ts
   * import { SharedMap } from "@posix/ipc/map";
   *
   * using map = SharedMap.create();
   * map.set("__proto__", new Uint8Array(1));
   * console.log([...map.keys()]); // [ "__proto__" ]
   * ```
   */
  keys(): IterableIterator<string> {
    this.#assertOpen();
    return map(this.#entries(), ([key]) => key);
  }

  /**
   * The values, read without a lock (see {@linkcode SharedMap.entries}).
   *
   * @returns An iterator of values.
   * @example
   * ```ts
   * import { codecs, SharedMap } from "@posix/ipc/map";
   *
   * using map = SharedMap.create({ codec: codecs.json });
   * map.set("a", 1);
   * console.log([...map.values()]); // [ 1 ]
   * ```
   */
  values(): IterableIterator<T> {
    this.#assertOpen();
    return map(this.#entries(), ([, value]) => value);
  }

  /** Same as {@linkcode SharedMap.entries}, for `for…of`. */
  [Symbol.iterator](): IterableIterator<[string, T]> {
    return this.entries();
  }

  /**
   * Closes this handle (the map stays for other handles; the creator of a named map without
   * `persist` removes its name). Closing again does nothing.
   *
   * @example
   * ```ts
   * import { SharedMap } from "@posix/ipc/map";
   *
   * const map = SharedMap.create();
   * map.close();
   * console.log(map.closed); // true
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    releaseWhenUnreachable.unregister(this);
    this.#slabs.clear();
    this.#lock.close();
    this.#memory.close();
  }

  /** Same as {@linkcode SharedMap.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  *#entries(): Generator<[string, T]> {
    const table = this.#table;
    const key = new Uint8Array(table.shape.maxKeyBytes);
    const value = new Uint8Array(table.shape.maxValueBytes);
    const lengths: EntryLengths = { key: 0, value: 0 };
    for (let slot = 0; slot < table.shape.slots; slot++) {
      this.#assertOpen();
      if (!readEntry(table, slot, key, value, lengths)) continue;
      let text: string;
      try {
        text = keyDecoder.decode(key.subarray(0, lengths.key));
      } catch {
        throw corrupt(`a key that is not UTF-8 in slot ${slot}`);
      }
      yield [text, this.#decode(value.subarray(0, lengths.value))];
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw closedError(this.#label);
  }

  #writeTimeout(options: WriteOptions | undefined): number {
    this.#assertOpen();
    return validateWaitOptions(
      ownOptions(options, "SharedMap write options"),
      `write to ${this.#label}`,
    );
  }

  #asyncWait(options: WaitOptions | undefined): CheckedWait {
    this.#assertOpen();
    return readWaitOptions(
      ownOptions(options, "SharedMap write options"),
      `write to ${this.#label}`,
    );
  }

  #locked<R>(timeout: number, change: () => R): R {
    using guard = this.#lock.lockSync({ timeout });
    return this.#changeLocked(guard, change);
  }

  async #lockedAsync<R>(wait: CheckedWait, change: () => R): Promise<R> {
    using guard = await this.#lock.lock({ timeout: wait.timeout, signal: wait.signal });
    this.#assertOpen(); // closed while the lock was being handed over
    return this.#changeLocked(guard, change);
  }

  #changeLocked<R>(guard: MutexGuard, change: () => R): R {
    if (guard.ownerDied) {
      repair(this.#table); // a dead writer left every entry whole: only the count may be off
      guard.markConsistent();
    }
    return change();
  }

  /**
   * The change that sets `key` to `value`, its arguments checked now, before any wait: run it
   * under the lock. It sets the key again there, as other calls may have used the scratch.
   */
  #putting(key: string, value: T): () => void {
    const bytes = this.#encode(value); // first: a codec may call back into the map
    const table = this.#table;
    table.setKey(key);
    return () => {
      table.setKey(key);
      put(table, locate(table, this.#located), bytes, this.#memory.name);
    };
  }

  /** The change that deletes `key`, as {@linkcode SharedMap.#putting} makes one. */
  #deleting(key: string): () => boolean {
    const table = this.#table;
    table.setKey(key);
    return () => {
      table.setKey(key);
      const { slot } = locate(table, this.#located);
      if (slot < 0) return false;
      remove(table, slot);
      return true;
    };
  }

  /** The change that updates `key` through `fn`, as {@linkcode SharedMap.#putting} makes one. */
  #updating(key: string, fn: (current: T | undefined) => T | undefined): () => T | undefined {
    if (typeof fn !== "function") {
      throw new TypeError(`Cannot update the shared map with ${describe(fn)}: give a function`);
    }
    const table = this.#table;
    table.setKey(key);
    return () => {
      table.setKey(key);
      const located = locate(table, this.#located);
      let current: T | undefined;
      if (located.slot >= 0) {
        const base = table.base(located.slot);
        const c = base >>> 2;
        const half = table.cells[c]! & 1;
        const length = table.cells[c + S_VALUE_LENGTH + half]!;
        if (length < 0 || length > table.shape.maxValueBytes) {
          throw corrupt(`a value of ${length} bytes`);
        }
        const at = table.valueAt(base, half);
        current = this.#decode(table.bytes.subarray(at, at + length));
      }
      const slot = located.slot;
      const free = located.free;
      const next = fn(current);
      if (next instanceof Promise) {
        throw new TypeError("Cannot update the shared map: the function must not be async");
      }
      this.#assertOpen(); // fn may have closed the map: its pages are gone
      // Encoded before the key is set again: a codec, as fn, may look keys up in the map.
      const bytes = next === undefined ? undefined : this.#encode(next);
      this.#assertOpen();

      // fn or the codec may have looked a key up (a get): the key's scratch is set again, the
      // place restored.
      table.setKey(key);
      located.slot = slot;
      located.free = free;
      if (bytes === undefined) {
        if (slot >= 0) remove(table, slot);
      } else {
        put(table, located, bytes, this.#memory.name);
      }
      return next;
    };
  }

  /**
   * What a lookup's value is before decoding, read straight from the segment: the text of a
   * text or JSON value, a copy of a bytes value, or for other codecs a copy in `#value`. May
   * be torn, or throw, if a writer published meanwhile: the caller checks.
   */
  #readFound(table: Table): string | Uint8Array {
    const at = table.valueOffset;
    const end = at + table.valueLength;
    const bytes = table.bytes;
    if (this.#textual) {
      return shortAscii(bytes, at, end) ?? textDecoder.decode(bytes.subarray(at, end));
    }
    if (this.#codec === (codecs.bytes as unknown)) return this.#slabs.copyRange(bytes, at, end);
    const value = bytes.subarray(at, end);
    this.#value.set(value);
    return this.#value.subarray(0, table.valueLength);
  }

  /** The value that {@linkcode SharedMap.#readFound} read, whole, decoded. */
  #finish(raw: string | Uint8Array): T {
    if (typeof raw === "string") {
      if (this.#codec !== (codecs.json as unknown)) return raw as T;
      try {
        return JSON.parse(raw);
      } catch (error) {
        throw this.#decodeError(error);
      }
    }
    if (this.#codec === (codecs.bytes as unknown)) return raw as T;
    return this.#decode(raw);
  }

  #decodeError(error: unknown): Deno.errors.InvalidData {
    return new Deno.errors.InvalidData(
      `Cannot decode a value with the ${this.#codec.name} codec: ${
        error instanceof Error ? error.message : error
      }`,
    );
  }

  #encode(value: T): Uint8Array {
    const bytes = encodeChecked(this.#codec, value, "store");
    const max = this.#table.shape.maxValueBytes;
    if (bytes.length > max) {
      throw new RangeError(
        `Cannot store a value of ${bytes.length} bytes: the map's maxValueBytes is ${max}`,
      );
    }
    return bytes;
  }

  #decode(bytes: Uint8Array): T {
    try {
      if (this.#textual) {
        const text = shortAscii(bytes, 0, bytes.length) ?? textDecoder.decode(bytes);
        return (this.#codec === (codecs.json as unknown) ? JSON.parse(text) : text) as T;
      }
      return decodeOwned(this.#codec, bytes, this.#slabs);
    } catch (error) {
      throw this.#decodeError(error);
    }
  }
}

const textDecoder = new TextDecoder("utf-8", { fatal: true });

/** The character codes of {@linkcode shortAscii}'s text, reused. */
const codes: number[] = [];

/**
 * The text of `bytes` from `start` to `end` when they are few and all ASCII, built in
 * JavaScript from one array of codes (a flat string, which `JSON.parse` reads faster than one
 * built by `+=`): for a short value this is faster than a call into the decoder. `undefined`
 * otherwise.
 */
function shortAscii(bytes: Uint8Array, start: number, end: number): string | undefined {
  const length = end - start;
  if (length > 64) return undefined;
  for (let i = 0; i < length; i++) {
    const byte = bytes[start + i]!;
    if (byte >= 0x80) return undefined;
    codes[i] = byte;
  }
  codes.length = length;
  return String.fromCharCode.apply(null, codes);
}

/** `entries` mapped through `pick`, as an iterator of its own. */
function* map<E, R>(entries: Iterator<E>, pick: (entry: E) => R): Generator<R> {
  for (let next = entries.next(); !next.done; next = entries.next()) yield pick(next.value);
}
