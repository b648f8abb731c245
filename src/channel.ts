/**
 * The fast lane: a ring buffer of variable-length messages in shared memory, between Deno
 * processes, at close to memory speed.
 *
 * The ring lives in an anonymous segment by default (hand `channel.fd` to a child with
 * `spawn`'s `fds`; the child calls `Channel.fromFd`), or in a named one that unrelated processes
 * `Channel.open`. A channel carries messages one way: make two for a conversation.
 *
 * How it goes fast: the data region is mapped twice, back to back, so that every message is
 * contiguous even where it wraps; each side keeps its own index and publishes it with one
 * atomic store per message; a receiver that finds the ring empty spins for a few microseconds
 * (bounded) before it sleeps on a semaphore in the segment, and a sender posts it only when it
 * sleeps. A process that was asleep, or has just woken a sleeping peer, yields the CPU once its
 * message is out: the kernel often runs the woken peer on the same CPU. An idle receiver costs
 * almost nothing: it wakes every 400 ms to see whether its peers are alive, and at once on close
 * or abort.
 *
 * @example Text messages
 * ```ts
 * import { Channel, codecs } from "@posix/ipc/channel";
 *
 * using channel = Channel.create({ codec: codecs.text });
 * channel.sendSync("hello");
 * console.log(channel.tryReceive()); // "hello"
 * ```
 *
 * @module
 */

import { address, MAP_FAILED } from "../ffi/cstring.ts";
import {
  CLOCK_MONOTONIC,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from "../ffi/constants.ts";
import { errno, libc } from "../ffi/libc.ts";
import { processIsDead } from "./_liveness.ts";
import { entombRange } from "./_tomb.ts";
import { deadlineIn, RETRY, validateWaitOptions, type WaitOptions, waitUntil } from "./_wait.ts";
import { type Codec, codecs } from "./codec.ts";
import { check, closedError, systemError } from "./errors.ts";
import type { FdLike } from "./fd.ts";
import { SharedMemory } from "./shm.ts";
import { Mutex } from "./sync/mutex.ts";

export { type Codec, codecs } from "./codec.ts";
export type { WaitOptions } from "./_wait.ts";

/** The header page, then the data region. Cells are Int32 indexes into the header. */
const HEADER = 4096;
const MAGIC = 0x50495043; // "PIPC"
const VERSION = 1;
const C_MAGIC = 0;
const C_VERSION = 1;
const C_CAPACITY = 2;
const C_MULTI = 3;
const C_CODEC = 4; // 32 bytes of codec name from byte 16
/** Counts close and abort wake-ups, so that a waiter that drains its semaphore keeps them. */
const C_WAKE_ALLS = 12;
const C_TAIL = 16; // byte 64: the producers' cache line
const C_RECEIVERS_WAITING = 17;
const C_HEAD = 32; // byte 128: the consumers' cache line
const C_SENDERS_WAITING = 33;
const SENDER_LOCK = 192; // bytes: two robust mutexes for the multi mode
const RECEIVER_LOCK = 200;
const C_PARTICIPANTS = 64; // byte 256: 32 slots of [pid, state]
/** Bytes: two process-shared sem_t where waiters sleep: receivers on DATA, senders on SPACE. */
const DATA_SEMAPHORE = 512;
const SPACE_SEMAPHORE = 576;
const SLOTS = 32;
/** A slot's state: 0 when free, else role bits, and CLOSED once its handle closed. */
const SENDS = 1;
const RECEIVES = 2;
const CLOSED = 4;
const FRAME_HEADER = 4;
const SPIN_MS = 0.02;
/**
 * A waiting side wakes this often to see whether its peers are alive. Close and abort wake it
 * at once through its semaphore, so the slice sets only the idle cost (each wake-up of Deno's event
 * loop costs about half a millisecond of CPU) and how soon a dead peer is noticed.
 */
const CHANNEL_SLICE_MS = 400;

/**
 * Whether the next send yields the CPU once its message is out: set when this process wakes
 * from a sleep in a wait, or wakes a sleeping peer. The kernel often runs a woken process on its
 * waker's CPU, so the peer that woke us, or that we woke, may be waiting for that CPU. Yielding
 * at once (not only at the next spin or sleep) cut the round trip to a sleeping peer by a
 * fifth. Each yield is a system call, on paths that have just made one.
 */
let yieldAfterSend = false;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Options of {@linkcode Channel.create}. */
export interface CreateChannelOptions<T> {
  /** The ring's size in bytes: a power of two from 4096 to 1 GiB. Default 1 MiB. */
  capacity?: number;
  /** A name for unrelated processes to `open` (as for `SharedMemory`). Default: anonymous. */
  name?: string;
  /** Permission bits of a named channel. Default 0o600. */
  mode?: number;
  /** Keep a named channel when the creator closes it. Default `false`. */
  persist?: boolean;
  /** How values become bytes. Default `codecs.bytes`. */
  codec?: Codec<T>;
  /**
   * Several senders and several receivers, in any processes: each side takes a robust lock
   * around its part. Default `false`: one sending process and one receiving process, the fast
   * lane.
   */
  multi?: boolean;
  /** What the creator's handle does. Default `"both"`. */
  role?: ChannelRole;
}

/**
 * What a handle does: peers use it to tell when a channel has ended. A waiting receiver gives up
 * once no handle that may send is open; a waiting sender once no handle that may receive is.
 */
export type ChannelRole = "send" | "receive" | "both";

/** Options of {@linkcode Channel.open} and {@linkcode Channel.fromFd}. */
export interface OpenChannelOptions<T> {
  /** The codec; it must be the creator's. Default `codecs.bytes`. */
  codec?: Codec<T>;
  /** What this handle does. Default `"both"`. */
  role?: ChannelRole;
}

/** A Map, not an object: a prototype key such as "toString" is no role. */
const ROLES: ReadonlyMap<string, number> = new Map([
  ["send", SENDS],
  ["receive", RECEIVES],
  ["both", SENDS | RECEIVES],
]);

/** The role bits of `role`, or a TypeError naming the argument. */
function validateRole(role: unknown): number {
  const bits = typeof role === "string" ? ROLES.get(role) : undefined;
  if (bits === undefined) {
    throw new TypeError(
      `Cannot use channel role ${
        typeof role === "string" ? `"${role}"` : `of type ${typeof role}`
      }: use "send", "receive" or "both"`,
    );
  }
  return bits;
}

/** A boolean option, or `false` when left out; anything else is a TypeError naming it. */
function validateFlag(value: unknown, name: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== "boolean") {
    throw new TypeError(
      `Cannot create a channel: ${name} must be true or false, not ${typeof value}`,
    );
  }
  return value;
}

/** The longest codec name, in UTF-8 bytes: the header keeps 32 bytes, NUL-terminated. */
const CODEC_NAME_MAX = 31;

/**
 * Checks a codec before anything is created: an object with `encode` and `decode` functions and
 * a name of 1 to 31 UTF-8 bytes without NUL. The header stores the name whole, so two codecs
 * whose names differ are never taken for one another.
 */
function validateCodec<T>(codec: unknown): Codec<T> {
  const candidate = codec as Partial<Codec<T>> | null;
  if (
    typeof candidate !== "object" || candidate === null ||
    typeof candidate.encode !== "function" || typeof candidate.decode !== "function" ||
    typeof candidate.name !== "string"
  ) {
    throw new TypeError(
      "Cannot use the codec: give an object with a name and encode and decode functions",
    );
  }
  const bytes = encoder.encode(candidate.name).length;
  if (bytes === 0 || bytes > CODEC_NAME_MAX || candidate.name.includes("\0")) {
    throw new RangeError(
      `Cannot use codec name "${candidate.name}": it must be 1 to ${CODEC_NAME_MAX} UTF-8 bytes, ` +
        "without NUL",
    );
  }
  return candidate as Codec<T>;
}

/** Options of the receive methods. */
export interface ReceiveOptions extends WaitOptions {
  /**
   * Zero-copy, for the bytes codec: a view into the ring itself, valid only until the next
   * receive or close (after which it may be overwritten). Default `false`: a copy you own.
   */
  view?: boolean;
}

function defaultCodec<T>(): Codec<T> {
  return codecs.bytes as unknown as Codec<T>;
}

function validateCapacity(capacity: unknown): number {
  if (
    typeof capacity !== "number" || !Number.isInteger(capacity) || capacity < 4096 ||
    capacity > 2 ** 30 || (capacity & (capacity - 1)) !== 0
  ) {
    throw new RangeError(
      `Cannot create a channel of ${String(capacity)} bytes: use a power of two from 4096 to 1 GiB`,
    );
  }
  return capacity;
}

/** Maps header + data, then the data again right after, so that wrapped messages are contiguous. */
function mapRing(
  fd: number,
  capacity: number,
): { base: Deno.PointerObject; buffer: ArrayBuffer; length: number } {
  const c = libc();
  const length = HEADER + 2 * capacity;
  const base = c.mmap(null, BigInt(length), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0n);
  if (base === null || address(base) === MAP_FAILED) {
    throw systemError(errno(), "mmap", { action: "reserve a channel's ring" });
  }
  const rw = PROT_READ | PROT_WRITE;
  const first = c.mmap(base, BigInt(HEADER + capacity), rw, MAP_SHARED | MAP_FIXED, fd, 0n);
  const second = first &&
    c.mmap(
      Deno.UnsafePointer.offset(base, HEADER + capacity),
      BigInt(capacity),
      rw,
      MAP_SHARED | MAP_FIXED,
      fd,
      BigInt(HEADER),
    );
  if (!first || !second || address(first) === MAP_FAILED || address(second) === MAP_FAILED) {
    const code = errno();
    c.munmap(base, BigInt(length));
    throw systemError(code, "mmap", { action: "map a channel's ring" });
  }
  return { base, buffer: Deno.UnsafePointerView.getArrayBuffer(base, length), length };
}

/**
 * What a handle must release, kept apart from the handle so that a finalizer can use it: it
 * references the segment and the ring, never the handle.
 */
interface RingLease {
  /** The segment: its descriptor, its own mapping and, for an owner, its name. */
  readonly memory: SharedMemory;
  readonly base: Deno.PointerObject;
  readonly length: number;
  /** The ring's ArrayBuffer, which every view of the handle shares. */
  readonly buffer: ArrayBuffer;
  readonly cells: Int32Array<ArrayBuffer>;
  readonly data: Deno.PointerObject;
  readonly space: Deno.PointerObject;
  readonly role: number;
  /** The participant slot, or -1 before the handle took one. */
  slot: number;
  /** The robust locks of the multi mode. */
  readonly locks: Mutex[];
}

/**
 * Releases what a channel handle dropped without `close()` held: its participant slot (so
 * that peers see it closed, not alive), the ring's mappings, and the segment's descriptor,
 * mapping and owned name. A safety net only.
 */
const releaseWhenUnreachable = new FinalizationRegistry<RingLease>((lease) => {
  // Never throws: an error in a finalizer would end the process. Each step goes as far as it can.
  try {
    leave(lease);
  } catch {
    // the slot stays open: peers see a dead process, as after a crash
  }
  try {
    releaseRing(lease, true);
  } catch {
    // what could not be released stays: a leak, never a hole
  }
});

/** Marks the handle's slot closed and wakes every waiter, so that peers see it gone. */
function leave(lease: RingLease): void {
  if (lease.slot < 0) return;
  // A ring whose buffer was transferred away is still mapped: reach its header afresh.
  const cells = lease.buffer.detached
    ? new Int32Array(Deno.UnsafePointerView.getArrayBuffer(lease.base, HEADER))
    : lease.cells;
  Atomics.store(cells, C_PARTICIPANTS + 2 * lease.slot + 1, lease.role | CLOSED);
  wakeAll(cells, lease.data, lease.space);
}

/** Wakes every waiter of both sides, in every process, to look again (close, abort). */
function wakeAll(
  cells: Int32Array<ArrayBuffer>,
  data: Deno.PointerObject,
  space: Deno.PointerObject,
): void {
  Atomics.add(cells, C_WAKE_ALLS, 1);
  const c = libc();
  for (const [sem, counter] of [[data, C_RECEIVERS_WAITING], [space, C_SENDERS_WAITING]] as const) {
    for (let waiting = Atomics.load(cells, counter); waiting > 0; waiting--) c.sem_post(sem);
  }
}

/**
 * Lets go of the ring: its locks, then its pages. When the ring's buffer is still here, it is
 * detached (every view over it, zero-copy ones included, reads as empty) and the range
 * unmapped. When it was transferred away (`view.buffer.transfer()`), its new owner may still
 * read it, so the range is entombed instead: it reads zeros, never a hole (src/_tomb.ts).
 * Then, with `closeMemory`, the segment. Returns munmap's result (0 when entombed).
 */
function releaseRing(lease: RingLease, closeMemory: boolean): number {
  for (const lock of lease.locks) lock.close();
  let result = 0;
  if (lease.buffer.detached) {
    entombRange(lease.base, lease.length); // on failure the pages stay: a leak, never a hole
  } else {
    lease.buffer.transfer(0);
    result = libc().munmap(lease.base, BigInt(lease.length));
  }
  if (closeMemory) lease.memory.close();
  return result;
}

/**
 * A one-way message channel in shared memory between processes. `Channel<T>` carries values of
 * type `T` through its codec.
 *
 * - Send: `send()` waits while the ring is full (back-pressure), `sendSync()` blocks the
 *   thread, `trySend()` returns `false` instead.
 * - Receive: `receive()`, `receiveSync()`, `tryReceive()` (`undefined` when empty), and
 *   `for await`. Once every other handle has closed and the ring is drained, iteration ends and
 *   `receive()` rejects with `Deno.errors.UnexpectedEof`; if a peer process died without
 *   closing, a waiting side rejects with `Deno.errors.BrokenPipe` within a second.
 *
 * @example Handing a channel to a child process
 * ```ts ignore
 * import { Channel, codecs } from "@posix/ipc/channel";
 * import { spawnDeno } from "@posix/ipc/spawn";
 *
 * using channel = Channel.create({ codec: codecs.json });
 * const child = spawnDeno("worker.ts", { permissions: { ffi: true }, fds: { 3: channel } });
 * // worker.ts: using out = Channel.fromFd(inheritedFd(3), { codec: codecs.json });
 * //            out.sendSync({ done: true });
 * for await (const message of channel) console.log(message);
 * await child.status;
 * ```
 */
export class Channel<T = Uint8Array> implements Disposable, AsyncIterable<T> {
  readonly #memory: SharedMemory;
  readonly #base: Deno.PointerObject;
  readonly #length: number;
  readonly #cells: Int32Array<ArrayBuffer>;
  readonly #bytes: Uint8Array<ArrayBuffer>;
  /** The ring as 32-bit words, for the frame headers (8-aligned). */
  readonly #words: Uint32Array<ArrayBuffer>;
  readonly #capacity: number;
  readonly #mask: number;
  readonly #multi: boolean;
  readonly #codec: Codec<T>;
  readonly #slot: number;
  readonly #role: number;
  readonly #data: Deno.PointerObject;
  readonly #space: Deno.PointerObject;
  readonly #senderLock: Mutex | null;
  readonly #receiverLock: Mutex | null;
  #tail: number;
  #head: number;
  #seenHead: number;
  #seenTail: number;
  /** Bytes of a zero-copy message still to release on the next receive. */
  #held = 0;
  #waiting = 0;
  #closed = false;
  /** Whether this handle created the name and removes it on close. */
  readonly #ownsName: boolean;
  /** What close, or the garbage collector, releases. */
  readonly #lease: RingLease;

  private constructor(
    memory: SharedMemory,
    codec: Codec<T>,
    role: number,
    initialise?: { capacity: number; multi: boolean; ownsName: boolean },
  ) {
    this.#memory = memory;
    this.#ownsName = initialise?.ownsName ?? false;
    this.#codec = codec;
    this.#role = role;
    if (memory.size < HEADER) {
      throw new Deno.errors.InvalidData(
        `Cannot use this memory as a channel: it holds ${memory.size} bytes, less than a header`,
      );
    }
    const header = new Int32Array(memory.buffer, 0, HEADER / 4);
    if (initialise) {
      header[C_CAPACITY] = initialise.capacity;
      header[C_MULTI] = initialise.multi ? 1 : 0;
      encoder.encodeInto(codec.name, new Uint8Array(memory.buffer, C_CODEC * 4, CODEC_NAME_MAX));
      header[C_VERSION] = VERSION;
      Atomics.store(header, C_MAGIC, MAGIC);
    }
    if (header[C_MAGIC] !== MAGIC || header[C_VERSION] !== VERSION) {
      throw new Deno.errors.InvalidData(
        "Cannot use this memory as a channel: no channel was created in it",
      );
    }
    // Shared state is trusted only once checked: a ring larger than the segment would map pages
    // past its end, and touching them kills the process with SIGBUS.
    const capacity = header[C_CAPACITY]!;
    const multi = header[C_MULTI]!;
    if (
      capacity < 4096 || capacity > 2 ** 30 || (capacity & (capacity - 1)) !== 0 ||
      HEADER + capacity > memory.size || (multi !== 0 && multi !== 1)
    ) {
      throw new Deno.errors.InvalidData(
        `Cannot use this memory as a channel: its header says a ring of ${capacity} bytes ` +
          `(multi ${multi}), which a segment of ${memory.size} bytes cannot hold`,
      );
    }
    const stored = decoder.decode(new Uint8Array(memory.buffer, C_CODEC * 4, 32)).replace(
      /\0[^]*$/,
      "",
    );
    if (stored !== codec.name) {
      throw new TypeError(
        `Cannot open the channel with the ${codec.name} codec: it was created with ${stored}`,
      );
    }
    this.#capacity = capacity;
    this.#mask = this.#capacity - 1;
    this.#multi = multi === 1;
    const ring = mapRing(memory.fd, this.#capacity);
    this.#base = ring.base;
    this.#length = ring.length;
    this.#cells = new Int32Array(ring.buffer, 0, HEADER / 4);
    this.#bytes = new Uint8Array(ring.buffer);
    this.#words = new Uint32Array(ring.buffer);
    this.#data = Deno.UnsafePointer.offset(this.#base, DATA_SEMAPHORE) as Deno.PointerObject;
    this.#space = Deno.UnsafePointer.offset(this.#base, SPACE_SEMAPHORE) as Deno.PointerObject;
    const lease: RingLease = {
      memory,
      base: ring.base,
      length: ring.length,
      buffer: ring.buffer,
      cells: this.#cells,
      data: this.#data,
      space: this.#space,
      role,
      slot: -1,
      locks: [],
    };
    this.#lease = lease;
    try {
      if (initialise) {
        check(libc().sem_init(this.#data, 1, 0), "sem_init", { action: "create a channel" });
        check(libc().sem_init(this.#space, 1, 0), "sem_init", { action: "create a channel" });
      }
      this.#senderLock = this.#multi
        ? (initialise ? Mutex.init : Mutex.at)(memory, SENDER_LOCK)
        : null;
      if (this.#senderLock) lease.locks.push(this.#senderLock);
      this.#receiverLock = this.#multi
        ? (initialise ? Mutex.init : Mutex.at)(memory, RECEIVER_LOCK)
        : null;
      if (this.#receiverLock) lease.locks.push(this.#receiverLock);
      this.#tail = this.#seenTail = Atomics.load(this.#cells, C_TAIL);
      this.#head = this.#seenHead = Atomics.load(this.#cells, C_HEAD);
      this.#slot = lease.slot = this.#attach();
    } catch (error) {
      releaseRing(lease, false); // the caller closes the memory
      throw error;
    }
    releaseWhenUnreachable.register(this, lease, this);
  }

  /**
   * Creates a channel: anonymous by default (hand `fd` to a child), or named.
   *
   * @param options `capacity`, `name`, `mode`, `persist`, `codec`, `multi`.
   * @returns The channel.
   * @throws {RangeError} for a capacity that is not a power of two from 4096 to 1 GiB.
   * @example
   * ```ts
   * import { Channel, codecs } from "@posix/ipc/channel";
   *
   * using channel = Channel.create({ capacity: 1 << 16, codec: codecs.json });
   * await channel.send({ id: 1, task: "resize" });
   * console.log(await channel.receive()); // { id: 1, task: "resize" }
   * ```
   */
  static create<T = Uint8Array>(options: CreateChannelOptions<T> = {}): Channel<T> {
    const capacity = validateCapacity(options.capacity ?? 1 << 20);
    const codec = validateCodec<T>(options.codec ?? defaultCodec<T>());
    const role = validateRole(options.role ?? "both");
    const multi = validateFlag(options.multi, "multi");
    const persist = validateFlag(options.persist, "persist");
    const size = HEADER + capacity;
    const memory = options.name === undefined
      ? SharedMemory.anonymous({ size })
      : SharedMemory.create(options.name, { size, mode: options.mode, persist });
    return Channel.#adopt(memory, codec, role, {
      capacity,
      multi,
      ownsName: options.name !== undefined && !persist,
    });
  }

  /**
   * Opens a named channel that another process created.
   *
   * @param name The channel's name.
   * @param options The `codec`: the creator's.
   * @returns The channel.
   * @throws {Deno.errors.NotFound} when no channel has that name.
   * @throws {TypeError} when the codec is not the creator's.
   * @example
   * ```ts
   * import { Channel } from "@posix/ipc/channel";
   *
   * const name = `/channel-${Deno.pid}`;
   * using created = Channel.create({ name, capacity: 4096 });
   * using opened = Channel.open(name); // as an unrelated process would
   * created.sendSync(new Uint8Array([1]));
   * console.log(opened.tryReceive()); // Uint8Array(1) [ 1 ]
   * ```
   */
  static open<T = Uint8Array>(name: string, options: OpenChannelOptions<T> = {}): Channel<T> {
    const codec = validateCodec<T>(options.codec ?? defaultCodec<T>());
    const role = validateRole(options.role ?? "both");
    return Channel.#adopt(SharedMemory.open(name), codec, role);
  }

  /**
   * Takes a channel from a descriptor, typically one a parent handed down with `spawn`'s `fds`.
   *
   * @param fd The descriptor (for example `inheritedFd(3)`); the channel owns it after.
   * @param options The `codec`: the creator's.
   * @returns The channel.
   * @example
   * ```ts
   * import { Channel } from "@posix/ipc/channel";
   *
   * using parent = Channel.create({ capacity: 4096 });
   * using child = Channel.fromFd(parent); // as a child given parent.fd would
   * parent.sendSync(new Uint8Array([7]));
   * console.log(child.tryReceive()); // Uint8Array(1) [ 7 ]
   * ```
   */
  static fromFd<T = Uint8Array>(fd: FdLike, options: OpenChannelOptions<T> = {}): Channel<T> {
    const codec = validateCodec<T>(options.codec ?? defaultCodec<T>());
    const role = validateRole(options.role ?? "both");
    return Channel.#adopt(SharedMemory.fromFd(fd), codec, role);
  }

  static #adopt<T>(
    memory: SharedMemory,
    codec: Codec<T>,
    role: number,
    initialise?: { capacity: number; multi: boolean; ownsName: boolean },
  ): Channel<T> {
    try {
      return new Channel(memory, codec, role, initialise);
    } catch (error) {
      memory.close();
      throw error;
    }
  }

  /** The ring's size in bytes. */
  get capacity(): number {
    return this.#capacity;
  }

  /** The largest message, in encoded bytes: the capacity less a frame header. */
  get maxMessageSize(): number {
    return this.#capacity - 8;
  }

  /** Whether several senders and receivers may use the channel. */
  get multi(): boolean {
    return this.#multi;
  }

  /** The name of a named channel, or `null`. */
  get name(): string | null {
    return this.#memory.name;
  }

  /**
   * The segment's descriptor, to hand to a child. **UNSAFE**: valid only while open.
   *
   * @throws {Deno.errors.BadResource} when closed.
   */
  get fd(): number {
    this.#assertOpen();
    return this.#memory.fd;
  }

  /** Whether this handle was closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Sends a value if the ring has room now.
   *
   * @param value The value.
   * @returns `false` when the ring is full.
   * @throws {RangeError} for a message larger than the ring.
   * @example
   * ```ts
   * import { Channel } from "@posix/ipc/channel";
   *
   * using channel = Channel.create({ capacity: 4096 });
   * console.log(channel.trySend(new Uint8Array(4000)), channel.trySend(new Uint8Array(100))); // true false
   * ```
   */
  trySend(value: T): boolean {
    return this.#trySend(this.#encode(value));
  }

  /**
   * Sends a value, waiting (without blocking the event loop) while the ring is full.
   *
   * @param value The value.
   * @param options `timeout` (ms) and `signal`.
   * @throws {Deno.errors.BrokenPipe} when no receiver is left.
   * @throws {Deno.errors.TimedOut} after `timeout`.
   * @example
   * ```ts
   * import { Channel, codecs } from "@posix/ipc/channel";
   *
   * using channel = Channel.create({ codec: codecs.text });
   * await channel.send("hi", { timeout: 1000 });
   * ```
   */
  async send(value: T, options: WaitOptions = {}): Promise<void> {
    validateWaitOptions(options, "send on the channel");
    const bytes = this.#encode(value);
    if (this.#trySend(bytes)) return;
    await this.#wait(
      options,
      "send on the channel",
      () => this.#trySend(bytes) || undefined,
      false,
    );
  }

  /**
   * Sends a value, blocking this thread while the ring is full.
   *
   * @param value The value.
   * @param options `timeout` (ms).
   * @example
   * ```ts
   * import { Channel } from "@posix/ipc/channel";
   *
   * using channel = Channel.create();
   * channel.sendSync(new Uint8Array([1, 2]));
   * ```
   */
  sendSync(value: T, options: { timeout?: number } = {}): void {
    const bytes = this.#encode(value);
    if (this.#trySend(bytes)) return;
    this.#waitSync(options, "send on the channel", () => this.#trySend(bytes) || undefined, false);
  }

  /**
   * Receives a value if one is waiting.
   *
   * @param options `view: true` for a zero-copy view (bytes codec only).
   * @returns The value, or `undefined` when the ring is empty.
   * @throws {Deno.errors.InvalidData} when the bytes are not the codec's.
   * @example
   * ```ts
   * import { Channel } from "@posix/ipc/channel";
   *
   * using channel = Channel.create();
   * console.log(channel.tryReceive()); // undefined
   * ```
   */
  tryReceive(options: { view?: boolean } = {}): T | undefined {
    return this.#tryReceive(options.view === true);
  }

  /**
   * Receives the next value, waiting (without blocking the event loop) until there is one.
   *
   * @param options `timeout` (ms), `signal`, and `view` for zero-copy.
   * @returns The value.
   * @throws {Deno.errors.UnexpectedEof} when every other handle closed and the ring is drained.
   * @throws {Deno.errors.BrokenPipe} when the peer process died without closing.
   * @throws {Deno.errors.TimedOut} after `timeout`.
   * @example
   * ```ts
   * import { Channel } from "@posix/ipc/channel";
   *
   * using channel = Channel.create();
   * setTimeout(() => channel.sendSync(new Uint8Array([9])), 10);
   * console.log(await channel.receive({ timeout: 1000 })); // Uint8Array(1) [ 9 ]
   * ```
   */
  async receive(options: ReceiveOptions = {}): Promise<T> {
    validateWaitOptions(options, "receive from the channel");
    const view = options.view === true;
    const value = this.#tryReceive(view);
    if (value !== undefined) return value;
    return await this.#wait(
      options,
      "receive from the channel",
      () => this.#tryReceive(view),
      true,
    );
  }

  /**
   * Receives the next value, blocking this thread until there is one.
   *
   * @param options `timeout` (ms) and `view`.
   * @returns The value.
   * @throws {Deno.errors.UnexpectedEof} when every other handle closed and the ring is drained.
   * @example
   * ```ts
   * import { Channel } from "@posix/ipc/channel";
   *
   * using channel = Channel.create();
   * channel.sendSync(new Uint8Array([3]));
   * console.log(channel.receiveSync()); // Uint8Array(1) [ 3 ]
   * ```
   */
  receiveSync(options: { timeout?: number; view?: boolean } = {}): T {
    const view = options.view === true;
    const value = this.#tryReceive(view);
    if (value !== undefined) return value;
    return this.#waitSync(options, "receive from the channel", () => this.#tryReceive(view), true);
  }

  /**
   * Receives until the channel ends: every other handle closed (after their messages) or, with
   * `BrokenPipe`, died. Ends quietly when this handle is closed.
   *
   * @returns The values, in order.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    while (!this.#closed) {
      try {
        yield await this.receive();
      } catch (error) {
        if (error instanceof Deno.errors.UnexpectedEof) return;
        if (error instanceof Deno.errors.BadResource && this.#closed) return;
        throw error;
      }
    }
  }

  /**
   * Closes this handle: the peers' iterations end after the messages already sent, and pending
   * waits here reject with `BadResource` within 100 ms. Closing again does nothing.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // (A ring whose buffer was transferred away cannot be read from here any more.)
    if (this.#held !== 0 && !this.#lease.buffer.detached) this.#release();
    releaseWhenUnreachable.unregister(this);
    leave(this.#lease);
    // The name goes now, even while a pending wait keeps the mapping for a moment: a process
    // that exits right after close() must not leave it behind.
    if (this.#ownsName && !this.#memory.closed) {
      try {
        this.#memory.unlink();
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error; // removed by someone else
      }
    }
    if (this.#waiting === 0) this.#unmap();
  }

  /** Same as {@linkcode Channel.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #unmap(): void {
    check(releaseRing(this.#lease, true), "munmap", { action: "unmap a channel" });
  }

  #assertOpen(): void {
    if (this.#closed) throw closedError("the channel");
  }

  #encode(value: T): Uint8Array {
    this.#assertOpen();
    const bytes = this.#codec.encode(value);
    if (bytes.length > this.maxMessageSize) {
      throw new RangeError(
        `Cannot send a message of ${bytes.length} bytes: the channel's ring holds ${this.#capacity} ` +
          `(${this.maxMessageSize} for one message)`,
      );
    }
    return bytes;
  }

  /** Takes a participant slot: [pid, state], so that peers can tell closed from dead. */
  #attach(): number {
    const cells = this.#cells;
    for (let slot = 0; slot < SLOTS; slot++) {
      const state = C_PARTICIPANTS + 2 * slot + 1;
      const current = Atomics.load(cells, state);
      if (
        (current === 0 || current & CLOSED) &&
        Atomics.compareExchange(cells, state, current, this.#role) === current
      ) {
        Atomics.store(cells, C_PARTICIPANTS + 2 * slot, Deno.pid);
        return slot;
      }
    }
    throw new RangeError(`Cannot open the channel: it has ${SLOTS} handles open already`);
  }

  /**
   * What the other handles say while this one waits: "alive" (someone may still act), "ended"
   * (all closed), "died" (none alive, one died without closing), or "alone" (none ever came).
   */
  #peers(thorough: boolean, role: number): "alive" | "ended" | "died" | "alone" {
    const cells = this.#cells;
    let died = false;
    let others = false;
    for (let slot = 0; slot < SLOTS; slot++) {
      if (slot === this.#slot) continue;
      const state = Atomics.load(cells, C_PARTICIPANTS + 2 * slot + 1);
      if ((state & role) === 0) continue;
      others = true;
      if (state & CLOSED) continue;
      // A pid not yet written (0), or not a pid at all, never reaches kill(): it counts as alive.
      const pid = Atomics.load(cells, C_PARTICIPANTS + 2 * slot);
      if (pid <= 0 || !processIsDead(pid, thorough)) return "alive";
      died = true;
    }
    if (died) return "died";
    return others ? "ended" : "alone";
  }

  #trySend(bytes: Uint8Array): boolean {
    this.#assertOpen();
    if (!(this.#role & SENDS)) {
      throw new TypeError("Cannot send on a channel handle opened to receive only");
    }
    if (!this.#publish(bytes)) return false;
    if (yieldAfterSend) {
      yieldAfterSend = false;
      libc().sched_yield(); // not under the sender lock: the peer that runs may take a while
    }
    return true;
  }

  #publish(bytes: Uint8Array): boolean {
    const lock = this.#senderLock;
    if (!lock) return this.#write(bytes);
    using guard = lock.lockSync();
    if (guard.ownerDied) guard.markConsistent(); // a dead sender published nothing half-done
    this.#tail = Atomics.load(this.#cells, C_TAIL);
    return this.#write(bytes);
  }

  #write(bytes: Uint8Array): boolean {
    const cells = this.#cells;
    const frame = (FRAME_HEADER + bytes.length + 7) & ~7;
    const tail = this.#tail;
    if (this.#capacity - ((tail - this.#seenHead) >>> 0) < frame) {
      this.#seenHead = Atomics.load(cells, C_HEAD);
      if (this.#capacity - ((tail - this.#seenHead) >>> 0) < frame) return false;
    }
    const at = HEADER + (tail & this.#mask);
    this.#words[at >>> 2] = bytes.length;
    this.#bytes.set(bytes, at + FRAME_HEADER);
    this.#tail = (tail + frame) | 0;
    Atomics.store(cells, C_TAIL, this.#tail);
    if (Atomics.load(cells, C_RECEIVERS_WAITING) !== 0) {
      libc().sem_post(this.#data);
      yieldAfterSend = true;
    }
    return true;
  }

  #tryReceive(view: boolean): T | undefined {
    this.#assertOpen();
    if (!(this.#role & RECEIVES)) {
      throw new TypeError("Cannot receive from a channel handle opened to send only");
    }
    if (this.#held !== 0) this.#release();
    const lock = this.#receiverLock;
    if (!lock) return this.#read(view);
    using guard = lock.lockSync();
    if (guard.ownerDied) guard.markConsistent(); // a dead receiver consumed nothing half-way
    // Other receivers moved the head: take it fresh, and the tail too (a cached tail could now
    // lie behind the head and make old bytes look like a message).
    this.#head = Atomics.load(this.#cells, C_HEAD);
    this.#seenTail = Atomics.load(this.#cells, C_TAIL);
    return this.#read(false);
  }

  #read(view: boolean): T | undefined {
    const head = this.#head;
    if (head === this.#seenTail) {
      this.#seenTail = Atomics.load(this.#cells, C_TAIL);
      if (head === this.#seenTail) return undefined;
    }
    const at = HEADER + (head & this.#mask);
    const length = this.#words[at >>> 2]!;
    const frame = (FRAME_HEADER + length + 7) & ~7;
    if (length > this.#capacity - 8 || frame > ((this.#seenTail - head) >>> 0)) {
      // Not a frame a sender wrote: the ring is corrupt, and nothing in it can be trusted.
      throw new Deno.errors.InvalidData(
        `Cannot receive: the channel's ring is corrupt (a frame of ${length} bytes where ` +
          `${(this.#seenTail - head) >>> 0} are published)`,
      );
    }
    const bytes = this.#bytes.subarray(at + FRAME_HEADER, at + FRAME_HEADER + length);
    let value: T;
    if (view && this.#codec === (codecs.bytes as unknown)) {
      this.#held = frame;
      return bytes as unknown as T;
    }
    try {
      value = this.#codec.decode(bytes);
    } catch (error) {
      this.#advance(frame); // skip what cannot be decoded, so that the channel goes on
      throw new Deno.errors.InvalidData(
        `Cannot decode a message with the ${this.#codec.name} codec: ${
          error instanceof Error ? error.message : error
        }`,
      );
    }
    this.#advance(frame);
    return value;
  }

  /** Releases the zero-copy message that the previous receive handed out, if any. */
  #release(): void {
    const frame = this.#held;
    this.#held = 0;
    this.#advance(frame);
  }

  #advance(frame: number): void {
    const cells = this.#cells;
    this.#head = (this.#head + frame) | 0;
    Atomics.store(cells, C_HEAD, this.#head);
    if (Atomics.load(cells, C_SENDERS_WAITING) !== 0) {
      libc().sem_post(this.#space);
    }
  }

  /**
   * One try, then, when it fails, a look at the peers: once none is left to act, one more try
   * (a peer may have sent just before leaving), then the end of the stream or a broken pipe.
   */
  #attemptOrGiveUp<R>(
    attempt: () => R | undefined,
    receiving: boolean,
    sliceStarted: number,
    slice: number,
  ): R | typeof RETRY {
    const result = attempt();
    if (result !== undefined) return result;
    // A sleep that lasted its whole slice: time for the thorough look (zombies) at the peers.
    const thorough = sliceStarted > 0 && performance.now() - sliceStarted >= slice * 0.9;
    const peers = this.#peers(thorough, receiving ? SENDS : RECEIVES);
    if (peers === "alive" || peers === "alone") return RETRY;
    const last = attempt();
    if (last !== undefined) return last;
    const verb = receiving ? "receive from" : "send on";
    if (peers === "died") {
      throw new Deno.errors.BrokenPipe(
        `Cannot ${verb} the channel: its peer process died without closing it`,
      );
    }
    if (receiving) {
      throw new Deno.errors.UnexpectedEof("Cannot receive: every other handle closed the channel");
    }
    throw new Deno.errors.BrokenPipe("Cannot send on the channel: every other handle closed it");
  }

  /** Wakes every waiter of both sides, in every process, to look again (close, abort). */
  #wakeAll(): void {
    wakeAll(this.#cells, this.#data, this.#space);
  }

  /**
   * Whether a waiter that has announced itself may go to sleep now. First it takes the counts
   * that earlier posts left in the semaphore (they found a waiter awake): whatever they were
   * for happened before and shows in the checks that follow. A close or abort since `wakeAlls`
   * was read (before the last look at the peers) means look again; otherwise sleep unless the
   * other side has moved.
   *
   * Draining here, not after a wake-up, keeps the path from a wake-up to the message short.
   */
  #maySleep(sem: Deno.PointerObject, wakeAlls: number, receiving: boolean): boolean {
    while (libc().sem_trywait(sem) === 0) {
      // a count that no one needs any more
    }
    return Atomics.load(this.#cells, C_WAKE_ALLS) === wakeAlls &&
      this.#sleepValue(receiving) !== undefined;
  }

  /**
   * The value to sleep on, read after announcing the wait (so that no wake-up is lost), or
   * `undefined` when the other side has moved since the last try.
   */
  #sleepValue(receiving: boolean): number | undefined {
    if (receiving) {
      const tail = Atomics.load(this.#cells, C_TAIL);
      return tail === this.#head ? tail : undefined;
    }
    const head = Atomics.load(this.#cells, C_HEAD);
    return head === this.#seenHead ? head : undefined;
  }

  /**
   * Spins briefly on the other side's index: a hot peer answers within microseconds. The spin
   * yields the CPU now and then: the kernel often wakes a peer on the waker's CPU, and there it
   * could run only once this spin ended, which tripled the round trip to a sleeping peer.
   */
  #spin(receiving: boolean): void {
    const until = performance.now() + SPIN_MS;
    for (let tries = 1; this.#sleepValue(receiving) !== undefined; tries++) {
      if ((tries & 63) === 0) {
        if (performance.now() >= until) return; // bounded: SPIN_MS at most
        libc().sched_yield();
      }
    }
  }

  async #wait<R>(
    options: WaitOptions,
    what: string,
    attempt: () => R | undefined,
    receiving: boolean,
  ): Promise<R> {
    this.#spin(receiving);
    const sem = receiving ? this.#data : this.#space;
    const counter = receiving ? C_RECEIVERS_WAITING : C_SENDERS_WAITING;
    const cells = this.#cells;
    let sliceStarted = 0;
    let wakeAlls = 0;
    const wake = () => this.#wakeAll(); // an abort must not wait for the slice to end
    options.signal?.addEventListener("abort", wake);
    this.#waiting++;
    try {
      return await waitUntil<R>(options, {
        what,
        slice: CHANNEL_SLICE_MS,
        attempt: () => {
          wakeAlls = Atomics.load(cells, C_WAKE_ALLS);
          return this.#attemptOrGiveUp(attempt, receiving, sliceStarted, CHANNEL_SLICE_MS);
        },
        sleep: async (ms) => {
          Atomics.add(cells, counter, 1);
          try {
            sliceStarted = performance.now();
            if (this.#maySleep(sem, wakeAlls, receiving)) {
              await libc().sem_clockwait_async(sem, CLOCK_MONOTONIC, deadlineIn(ms));
              yieldAfterSend = true;
            }
          } finally {
            Atomics.sub(cells, counter, 1);
          }
        },
        assertOpen: () => this.#assertOpen(),
      });
    } finally {
      options.signal?.removeEventListener("abort", wake);
      if (--this.#waiting === 0 && this.#closed) this.#unmap();
    }
  }

  #waitSync<R>(
    options: { timeout?: number },
    what: string,
    attempt: () => R | undefined,
    receiving: boolean,
  ): R {
    validateWaitOptions(options, what);
    this.#spin(receiving);
    const sem = receiving ? this.#data : this.#space;
    const counter = receiving ? C_RECEIVERS_WAITING : C_SENDERS_WAITING;
    const cells = this.#cells;
    const deadline = options.timeout === undefined ? Infinity : performance.now() + options.timeout;
    let sliceStarted = 0;
    let slice = 0;
    while (true) {
      const wakeAlls = Atomics.load(cells, C_WAKE_ALLS);
      const result = this.#attemptOrGiveUp(attempt, receiving, sliceStarted, slice);
      if (result !== RETRY) return result;
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new Deno.errors.TimedOut(`Cannot ${what}: timed out after ${options.timeout} ms`);
      }
      slice = Math.min(CHANNEL_SLICE_MS, left);
      Atomics.add(cells, counter, 1);
      sliceStarted = performance.now();
      if (this.#maySleep(sem, wakeAlls, receiving)) {
        libc().sem_clockwait(sem, CLOCK_MONOTONIC, deadlineIn(slice, true));
        yieldAfterSend = true;
      }
      Atomics.sub(cells, counter, 1);
    }
  }
}
