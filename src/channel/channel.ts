/**
 * The `Channel` API: sending and receiving values over a ring in shared memory. A handle checks
 * what it is asked (open, its role, no loan of its own open), takes the multi mode's locks, and
 * leaves the rest to the parts of the channel, each in its own file:
 *
 * - open.ts: the static methods' work: arguments, segment, header, mapping, slot (options.ts
 *   holds the options' types and checks);
 * - frames.ts: the handle's indexes into the ring, and writing, reading and releasing frames;
 * - wait.ts: waiting for the other side, and waking it;
 * - registry.ts: the participants, and whether the peers are alive, gone or dead;
 * - locks.ts: the multi mode's locks; loan.ts: loans, both sides;
 * - lease.ts: what a handle holds, and how `close()` or the garbage collector releases it;
 * - layout.ts: the ring's memory layout.
 *
 * Internal: the public entry is src/channel/mod.ts.
 *
 * @module
 */

import { readWaitOptions, RETRY, type WaitOptions } from "../_wait.ts";
import { type Codec, codecs } from "../codec.ts";
import { check, closedError, systemError } from "../errors.ts";
import { EBUSY } from "../../ffi/constants.ts";
import type { FdLike } from "../fd.ts";
import { SharedMemory } from "../shm.ts";
import { ConstructorToken, realLength, validateInteger } from "../_validate.ts";
import { wasCreated } from "../_open_or_create.ts";
import { selectable, type SelectAdapter } from "../select/protocol.ts";
import type { Mutex, MutexGuard } from "../sync/mutex.ts";
import { type Peers, RECEIVES, type Registry, SENDS } from "./registry.ts";
import { createLoan, type Loan, type LoanRecord, openLoan } from "./loan.ts";
import { Frames } from "./frames.ts";
import { lockReceivers, takeSenderLock, tryLockReceivers } from "./locks.ts";
import { receiverIterator } from "./iterate.ts";
import {
  channelFromFd,
  type ChannelParts,
  createChannel,
  openChannel,
  openOrCreatePlan,
} from "./open.ts";
import {
  leave,
  releaseRing,
  releaseWhenUnreachable,
  type RingLease,
  unlinkOwnedName,
} from "./lease.ts";
import {
  type CreateChannelOptions,
  type OpenChannelOptions,
  type OpenOrCreateChannelOptions,
  type ReceiveOptions,
  viewOption,
} from "./options.ts";
import { encodeAsIs, validateIntoBuffer } from "./slab.ts";
import {
  passWakeOn,
  receiveSleeper,
  spinThenTry,
  waitAsync,
  type WaitHost,
  waitSync,
  yieldIfDue,
} from "./wait.ts";

const token = new ConstructorToken("Channel", "Channel.create(), open() or fromFd()");

/**
 * What the peers of `role` (SENDS or RECEIVES) of an open channel handle say, without waiting
 * (src/channel/registry.ts, thorough: zombies count as dead). Internal: for services built on
 * channels (src/service/) that must notice a dead peer while nothing waits on the ring.
 */
export let channelPeers: (channel: Channel<unknown>, role: number) => Peers;

/**
 * Claims a channel whose creator died and whose handles of `role` are all gone, for one process
 * only (src/channel/registry.ts: `claimAbandoned`). Internal: for a service that takes over the
 * name of a killed server (src/service/).
 */
export let claimAbandoned: (channel: Channel<unknown>, role: number) => boolean;

/**
 * Multi mode: makes a receiving handle hold the receivers' lock from now until it closes, for a
 * handle that is its ring's only receiver (a service's server, src/service/): each receive then
 * skips taking and releasing the lock (two libc calls, about half a microsecond). Another
 * receiver of the ring then waits until this handle closes, or its process dies (the lock is
 * robust). Returns whether the handle holds the lock; `false` when another handle holds it now
 * (each receive then takes it as before).
 */
export let keepReceiverLock: (channel: Channel<unknown>) => boolean;

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
 * - Copies: a received value never changes and never shares memory with the ring. A bytes
 *   message of up to 8 KiB is copied into a 256 KiB slab shared with its neighbours (holding it
 *   keeps that slab alive; a slab is never reused), a larger one into its own buffer;
 *   `receiveInto(buffer)`, `receiveIntoSync` and `tryReceiveInto` copy into the caller's buffer
 *   and allocate nothing; `view: true` is zero-copy.
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
  static {
    channelPeers = (channel, role) => {
      channel.#assertOpen();
      return channel.#registry.peers(channel.#slot, role, true);
    };
    claimAbandoned = (channel, role) => {
      channel.#assertOpen();
      return channel.#registry.claimAbandoned(role);
    };
    keepReceiverLock = (channel) => {
      channel.#assertOpen();
      const lock = channel.#receiverLock;
      if (lock === null || !(channel.#role & RECEIVES)) return false;
      if (channel.#keptReceiverLock !== null) return true;
      const guard = tryLockReceivers(lock);
      if (guard === null) return false;
      channel.#frames.syncHead();
      channel.#keptReceiverLock = guard;
      return true;
    };
  }

  readonly #cells: Int32Array<ArrayBuffer>;
  /** The ring's ArrayBuffer, kept: reading `#cells.buffer` on every call cost ~25 ns. */
  readonly #ringBuffer: ArrayBuffer;
  readonly #capacity: number;
  readonly #multi: boolean;
  readonly #codec: Codec<T>;
  readonly #slot: number;
  readonly #registry: Registry;
  readonly #role: number;
  readonly #senderLock: Mutex | null;
  readonly #receiverLock: Mutex | null;
  /** The receivers' lock, held from `keepReceiverLock` until close. */
  #keptReceiverLock: MutexGuard | null = null;
  /** The handle's indexes into the ring, and the frame mechanics (src/channel/frames.ts). */
  readonly #frames: Frames<T>;
  /** The loan open on this handle, if any (src/channel/loan.ts). */
  #loan: LoanRecord | null = null;
  /** What a loan of this handle calls as it ends. */
  readonly #loanEnded = (): void => {
    this.#loan = null;
  };
  #waiting = 0;
  #closed = false;
  /** Whether this handle created the name and removes it on close. */
  readonly #ownsName: boolean;
  /** What close, or the garbage collector, releases. */
  readonly #lease: RingLease;
  /** What a wait needs of this handle (src/channel/wait.ts). */
  readonly #host: WaitHost;

  private constructor(key: ConstructorToken, parts: ChannelParts<T>) {
    token.check(key);
    const lease = parts.lease;
    this.#lease = lease;
    this.#codec = parts.codec;
    this.#capacity = parts.capacity;
    this.#multi = parts.multi;
    this.#ownsName = parts.ownsName;
    this.#role = lease.role;
    this.#slot = lease.slot;
    this.#registry = lease.registry;
    this.#cells = lease.cells;
    this.#ringBuffer = lease.ring.buffer;
    this.#senderLock = lease.senderLock;
    this.#receiverLock = lease.receiverLock;
    this.#frames = new Frames(lease, parts.capacity, parts.codec);
    this.#host = this.#waitHost();
    releaseWhenUnreachable.register(this, lease, this);
  }

  /** Makes a handle of what an opening (src/channel/open.ts) attached. */
  static #make<T>(parts: ChannelParts<T>): Channel<T> {
    return new Channel(token, parts);
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
   * @example A generated name, to send to the other process
   * ```ts
   * import { Channel, codecs } from "@posix/ipc/channel";
   *
   * using channel = Channel.create({ name: null, capacity: 4096, codec: codecs.text });
   * using opened = Channel.open(channel.name!, { codec: codecs.text }); // where the name went
   * channel.sendSync("hi");
   * console.log(opened.tryReceive()); // "hi"
   * ```
   */
  static create<T = Uint8Array>(options?: CreateChannelOptions<T>): Channel<T> {
    return createChannel(options, Channel.#make<T>);
  }

  /**
   * Opens the named channel, or creates it if no channel has that name, without races: of many
   * processes calling this at once, exactly one creates the channel, and the others wait (up to
   * `timeout`) until its header is written, so none sees a half-made channel (the protocol of
   * {@linkcode SharedMemory.openOrCreate}). {@linkcode Channel.created} tells which happened;
   * the creating handle owns the name as {@linkcode Channel.create}'s does. An opened channel
   * keeps its creator's capacity and `multi`.
   *
   * @param name The channel's name.
   * @param options Those of {@linkcode Channel.create} for creating (`codec` and `role` also
   * for opening), and `timeout` (default 5000 ms) and `signal` for the wait.
   * @returns The channel.
   * @throws {Deno.errors.TimedOut} when the channel stayed uninitialised for `timeout` ms.
   * @throws {TypeError} when the codec is not the creator's.
   * @example
   * ```ts
   * import { Channel, codecs } from "@posix/ipc/channel";
   *
   * const name = `/meeting-${Deno.pid}`;
   * using first = await Channel.openOrCreate(name, { capacity: 4096, codec: codecs.text });
   * using second = await Channel.openOrCreate(name, { capacity: 4096, codec: codecs.text });
   * first.sendSync("hello");
   * console.log(first.created, second.created, second.tryReceive()); // true false "hello"
   * ```
   */
  static async openOrCreate<T = Uint8Array>(
    name: string,
    options?: OpenOrCreateChannelOptions<T>,
  ): Promise<Channel<T>> {
    const plan = openOrCreatePlan(name, options, Channel.#make<T>);
    return plan.adopt(await SharedMemory.openOrCreate(name, plan.memory));
  }

  /**
   * {@linkcode Channel.openOrCreate} for code that cannot await: the same protocol, with the
   * wait for a creator that is writing the header (up to `timeout`, default 5000 ms) blocking
   * this thread in short sleeps.
   *
   * @param name The channel's name.
   * @param options As for {@linkcode Channel.openOrCreate}; `signal` is only checked before
   * the wait, since nothing can abort it while the thread blocks.
   * @returns The channel.
   * @throws {Deno.errors.TimedOut} when the channel stayed uninitialised for `timeout` ms.
   * @throws {TypeError} when the codec is not the creator's.
   * @example
   * ```ts
   * import { Channel, codecs } from "@posix/ipc/channel";
   *
   * const name = `/sync-meeting-${Deno.pid}`;
   * using first = Channel.openOrCreateSync(name, { capacity: 4096, codec: codecs.text });
   * using second = Channel.openOrCreateSync(name, { codec: codecs.text, timeout: 1000 });
   * first.sendSync("hello");
   * console.log(first.created, second.created, second.tryReceive()); // true false "hello"
   * ```
   */
  static openOrCreateSync<T = Uint8Array>(
    name: string,
    options?: OpenOrCreateChannelOptions<T>,
  ): Channel<T> {
    const plan = openOrCreatePlan(name, options, Channel.#make<T>);
    return plan.adopt(SharedMemory.openOrCreateSync(name, plan.memory));
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
  static open<T = Uint8Array>(name: string, options?: OpenChannelOptions<T>): Channel<T> {
    return openChannel(name, options, Channel.#make<T>);
  }

  /**
   * Takes a channel from a descriptor, typically one a parent handed down with `spawn`'s `fds`.
   * As with {@linkcode SharedMemory.fromFd}: on success the channel owns a descriptor given as a
   * number or an `OwnedFd` (it works on a duplicate and closes the one given), and on failure
   * the descriptor stays the caller's, open. Another handle (a `Channel`, a `SharedMemory`)
   * keeps its own descriptor either way.
   *
   * @param fd The descriptor (for example `inheritedFd(3)`), or a handle that has one.
   * @param options The `codec`: the creator's; the `role`.
   * @returns The channel.
   * @throws {Deno.errors.InvalidData} when the descriptor holds no channel, or a header that
   * does not fit its segment.
   * @throws {TypeError} when the codec is not the creator's.
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
  static fromFd<T = Uint8Array>(fd: FdLike, options?: OpenChannelOptions<T>): Channel<T> {
    return channelFromFd(fd, options, Channel.#make<T>);
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
    return this.#lease.memory.name;
  }

  /**
   * The segment's descriptor, to hand to a child. **UNSAFE**: valid only while open.
   *
   * @throws {Deno.errors.BadResource} when closed.
   */
  get fd(): number {
    this.#assertOpen();
    return this.#lease.memory.fd;
  }

  /**
   * Whether this handle's call created the channel: `true` from {@linkcode Channel.create},
   * and from {@linkcode Channel.openOrCreate} when it created it.
   */
  get created(): boolean {
    return wasCreated(this);
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
    const wait = readWaitOptions(options, "send on the channel");
    const bytes = this.#encode(value);
    const attempt = () => this.#trySend(bytes) || undefined;
    if (this.#soon(false, attempt)) return;
    await waitAsync(this.#host, false, wait, "send on the channel", attempt);
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
    waitSync(
      this.#host,
      false,
      options,
      "send on the channel",
      () => this.#trySend(bytes) || undefined,
    );
  }

  /**
   * Reserves room for a message of up to `size` bytes and hands it out to be written in place,
   * if the ring has room now: zero-copy sending, for the bytes codec. See {@linkcode Loan}.
   *
   * @param size The bytes to reserve: 1 to {@linkcode Channel.maxMessageSize}.
   * @returns The loan, or `undefined` when the ring has no room now (or, `multi`, a loan of
   *   another process holds the senders' lock).
   * @throws {RangeError} for a size that is not an integer from 1 to `maxMessageSize`.
   * @throws {TypeError} on a channel whose codec is not `codecs.bytes`.
   * @throws {Deno.errors.Busy} while a loan of this handle (or, `multi`, of this process) is open.
   * @example
   * ```ts
   * import { Channel } from "@posix/ipc/channel";
   *
   * using channel = Channel.create({ capacity: 4096 });
   * const loan = channel.tryLoan(4000)!;
   * console.log(loan.bytes.length); // 4000
   * loan.commit();
   * console.log(channel.tryLoan(100)); // undefined: the ring is full
   * ```
   */
  tryLoan(size: number): Loan | undefined {
    return this.#tryLoan(this.#loanSize(size));
  }

  /**
   * Reserves room for a message of up to `size` bytes, waiting (without blocking the event loop)
   * while the ring is full, as `send` does. Fill `loan.bytes`, then `loan.commit(length)`.
   *
   * @param size The bytes to reserve: 1 to {@linkcode Channel.maxMessageSize}.
   * @param options `timeout` (ms) and `signal`.
   * @returns The loan.
   * @throws {RangeError} for a size that is not an integer from 1 to `maxMessageSize`.
   * @throws {TypeError} on a channel whose codec is not `codecs.bytes`.
   * @throws {Deno.errors.Busy} while a loan of this handle (or, `multi`, of this process) is open.
   * @throws {Deno.errors.BrokenPipe} when no receiver is left.
   * @throws {Deno.errors.TimedOut} after `timeout`.
   * @example
   * ```ts
   * import { Channel } from "@posix/ipc/channel";
   *
   * using channel = Channel.create();
   * using loan = await channel.loan(64 * 1024, { timeout: 1000 });
   * new DataView(loan.bytes.buffer).setUint32(0, 42);
   * loan.commit(4);
   * console.log(channel.tryReceive()); // Uint8Array(4) [ 0, 0, 0, 42 ]
   * ```
   */
  async loan(size: number, options: WaitOptions = {}): Promise<Loan> {
    const bytes = this.#loanSize(size);
    const wait = readWaitOptions(options, "loan from the channel");
    const attempt = () => this.#tryLoan(bytes);
    const loan = this.#soon(false, attempt);
    if (loan) return loan;
    return await waitAsync(this.#host, false, wait, "loan from the channel", attempt);
  }

  /**
   * Reserves room for a message of up to `size` bytes, blocking this thread while the ring is
   * full.
   *
   * @param size The bytes to reserve: 1 to {@linkcode Channel.maxMessageSize}.
   * @param options `timeout` (ms).
   * @returns The loan.
   * @throws {RangeError} for a size that is not an integer from 1 to `maxMessageSize`.
   * @throws {Deno.errors.TimedOut} after `timeout`.
   * @example
   * ```ts
   * import { Channel } from "@posix/ipc/channel";
   *
   * using channel = Channel.create();
   * const loan = channel.loanSync(3, { timeout: 1000 });
   * loan.bytes.set([1, 2, 3]);
   * loan.commit();
   * console.log(channel.receiveSync()); // Uint8Array(3) [ 1, 2, 3 ]
   * ```
   */
  loanSync(size: number, options: { timeout?: number } = {}): Loan {
    const bytes = this.#loanSize(size);
    const wait = readWaitOptions(options, "loan from the channel");
    const loan = this.#tryLoan(bytes);
    if (loan) return loan;
    return waitSync(
      this.#host,
      false,
      wait,
      "loan from the channel",
      () => this.#tryLoan(bytes),
    );
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
  tryReceive(options?: { view?: boolean }): T | undefined {
    return this.#tryReceive(options !== undefined && viewOption(options));
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
    const wait = readWaitOptions(options, "receive from the channel");
    const view = viewOption(options);
    const attempt = () => this.#tryReceive(view);
    const value = this.#soon(true, attempt);
    if (value !== undefined) return value;
    return await waitAsync(this.#host, true, wait, "receive from the channel", attempt);
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
    const view = viewOption(options);
    const value = this.#tryReceive(view);
    if (value !== undefined) return value;
    return waitSync(
      this.#host,
      true,
      options,
      "receive from the channel",
      () => this.#tryReceive(view),
    );
  }

  /**
   * Copies the next message's bytes into `buffer`, if one is waiting: no allocation at all. The
   * bytes are the message as sent (the codec's encoding; for the bytes codec, the bytes).
   *
   * @param buffer Where the bytes go, from its start; it must hold the whole message.
   * @returns The message's length in bytes, or `undefined` when the ring is empty.
   * @throws {RangeError} when `buffer` is shorter than the next message, which stays in the
   *   channel for a larger buffer.
   * @throws {TypeError} when `buffer` is not a Uint8Array, was transferred away (detached), or
   *   is the channel's own ring.
   * @example
   * ```ts
   * import { Channel } from "@posix/ipc/channel";
   *
   * using channel = Channel.create();
   * const buffer = new Uint8Array(64);
   * channel.sendSync(new Uint8Array([1, 2, 3]));
   * const n = channel.tryReceiveInto(buffer);
   * console.log(n, buffer.subarray(0, n)); // 3 Uint8Array(3) [ 1, 2, 3 ]
   * ```
   */
  tryReceiveInto(buffer: Uint8Array): number | undefined {
    return this.#tryReceiveInto(validateIntoBuffer(buffer, this.#lease.ring.buffer));
  }

  /**
   * Waits (without blocking the event loop) for the next message and copies its bytes into
   * `buffer`: the loop that allocates nothing per message, for a caller that is done with each
   * message before the next (the buffer is overwritten by the next call).
   *
   * @param buffer Where the bytes go, from its start; it must hold the whole message.
   * @param options `timeout` (ms) and `signal`.
   * @returns The message's length in bytes.
   * @throws {RangeError} when `buffer` is shorter than the next message, which stays in the
   *   channel for a larger buffer.
   * @throws {TypeError} when `buffer` is not a Uint8Array, was transferred away, or is the ring.
   * @throws {Deno.errors.UnexpectedEof} when every other handle closed and the ring is drained.
   * @throws {Deno.errors.BrokenPipe} when the peer process died without closing.
   * @throws {Deno.errors.TimedOut} after `timeout`.
   * @example
   * ```ts
   * import { Channel } from "@posix/ipc/channel";
   *
   * using channel = Channel.create();
   * const buffer = new Uint8Array(channel.maxMessageSize); // holds any message
   * setTimeout(() => channel.sendSync(new Uint8Array([9, 8])), 10);
   * const n = await channel.receiveInto(buffer, { timeout: 1000 });
   * console.log(buffer.subarray(0, n)); // Uint8Array(2) [ 9, 8 ]
   * ```
   */
  async receiveInto(buffer: Uint8Array, options: WaitOptions = {}): Promise<number> {
    const wait = readWaitOptions(options, "receive from the channel");
    const into = validateIntoBuffer(buffer, this.#lease.ring.buffer);
    const attempt = () => this.#tryReceiveInto(into);
    const length = this.#soon(true, attempt);
    if (length !== undefined) return length;
    return await waitAsync(this.#host, true, wait, "receive from the channel", attempt);
  }

  /**
   * Blocks this thread until the next message, and copies its bytes into `buffer`.
   *
   * @param buffer Where the bytes go, from its start; it must hold the whole message.
   * @param options `timeout` (ms).
   * @returns The message's length in bytes.
   * @throws {RangeError} when `buffer` is shorter than the next message, which stays in the
   *   channel.
   * @throws {Deno.errors.UnexpectedEof} when every other handle closed and the ring is drained.
   * @example
   * ```ts
   * import { Channel } from "@posix/ipc/channel";
   *
   * using channel = Channel.create();
   * channel.sendSync(new Uint8Array([5]));
   * console.log(channel.receiveIntoSync(new Uint8Array(16))); // 1
   * ```
   */
  receiveIntoSync(buffer: Uint8Array, options: { timeout?: number } = {}): number {
    const wait = readWaitOptions(options, "receive from the channel");
    const into = validateIntoBuffer(buffer, this.#lease.ring.buffer);
    const length = this.#tryReceiveInto(into);
    if (length !== undefined) return length;
    return waitSync(
      this.#host,
      true,
      wait,
      "receive from the channel",
      () => this.#tryReceiveInto(into),
    );
  }

  /**
   * Receives until the channel ends: every other handle closed (after their messages) or, with
   * `BrokenPipe`, died. Ends quietly when this handle is closed. A message already waiting is
   * handed out in one resolved promise (src/channel/iterate.ts).
   *
   * @returns The values, in order.
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return receiverIterator({
      tryReceive: () => this.#tryReceive(false),
      receive: () => this.receive(),
      isClosed: () => this.#closed,
    });
  }

  /**
   * The adapter through which {@linkcode select} receives from this handle: a try is
   * {@linkcode Channel.tryReceive}, and a wait sleeps as `receive()` does but takes nothing, so
   * that only the source `select` returns gives up a message. A channel whose peers all closed
   * or died is ready with the error `receive()` would throw.
   *
   * @returns The adapter; see `@posix/ipc/select`.
   * @example
   * ```ts
   * import { Channel } from "@posix/ipc/channel";
   * import { select } from "@posix/ipc/select";
   *
   * using channel = Channel.create();
   * channel.sendSync(new Uint8Array([1]));
   * console.log((await select([channel])).value); // Uint8Array(1) [ 1 ]
   * ```
   */
  [selectable](): SelectAdapter<T> {
    const cells = this.#cells;
    const ready = () => this.#frames.published(this.#receiverLock !== null);
    return {
      try: () => {
        const value = this.#tryReceive(false);
        return value === undefined ? undefined : { value };
      },
      futex: receiveSleeper(this.#host, ready),
      release: () => {
        // A send wakes one sleeper, maybe a wait of this select: pass it on if a message stays.
        if (!this.#closed && ready()) passWakeOn(cells, this.#lease.data);
      },
    };
  }

  /**
   * Closes this handle: the peers' iterations end after the messages already sent, and pending
   * waits here reject with `BadResource` within 100 ms. Closing again does nothing.
   */
  close(): void {
    if (this.#closed) return;
    this.#loan?.finish(-1); // an open loan publishes nothing
    this.#closed = true;
    // (A ring whose buffer was transferred away cannot be read from here any more.)
    if (!this.#lease.ring.buffer.detached) this.#frames.releaseHeld();
    releaseWhenUnreachable.unregister(this);
    this.#frames.dropSlabs();
    this.#keptReceiverLock?.unlock(); // before the lock's memory goes
    this.#keptReceiverLock = null;
    leave(this.#lease);
    // The name goes now, even while a pending wait keeps the mapping for a moment: a process
    // that exits right after close() must not leave it behind.
    if (this.#ownsName) unlinkOwnedName(this.#lease.memory);
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
    // A zero-copy view's buffer is the ring's: once transferred away, this handle has no ring.
    if (this.#ringBuffer.detached) {
      throw new Deno.errors.BadResource(
        "Cannot use the channel: its ring's buffer was transferred away (the buffer of a view " +
          "that receive handed out); close this handle",
      );
    }
  }

  #encode(value: T): Uint8Array {
    this.#assertOpen();
    const bytes = encodeAsIs(this.#codec, value, "send");
    const length = realLength(bytes); // a subclass's length may lie: write() copies the real one
    if (length > this.maxMessageSize) {
      throw new RangeError(
        `Cannot send a message of ${length} bytes: the channel's ring holds ${this.#capacity} ` +
          `(${this.maxMessageSize} for one message)`,
      );
    }
    return bytes;
  }

  #trySend(bytes: Uint8Array): boolean {
    this.#beginSend("send on");
    if (!this.#publish(bytes)) return false;
    yieldIfDue(); // not under the sender lock: the peer that runs may take a while
    return true;
  }

  /** Checks that this handle may send now: open, a sender, and no loan of its own open. */
  #beginSend(verb: string): void {
    this.#assertOpen();
    if (!(this.#role & SENDS)) {
      throw new TypeError(`Cannot ${verb} a channel handle opened to receive only`);
    }
    if (this.#loan !== null) {
      throw systemError(EBUSY, "send", {
        action: `${verb} the channel`,
        hint: "a loan is open on this handle: commit or abandon it first",
      });
    }
  }

  #publish(bytes: Uint8Array): boolean {
    if (!this.#senderLock) return this.#frames.write(bytes);
    // try/finally, not `using`: a `using` costs ~50 ns a call, a sixth of a small message's send
    const guard = this.#takeSenderLock();
    if (guard === null) return false;
    try {
      return this.#frames.write(bytes);
    } finally {
      guard.unlock();
    }
  }

  /**
   * Multi mode: takes the senders' lock and the tail afresh, or returns `null` when a loan of
   * another process holds the lock (src/channel/locks.ts).
   */
  #takeSenderLock(): MutexGuard | null {
    const guard = takeSenderLock(this.#senderLock!, this.#cells);
    if (guard !== null) this.#frames.syncTail();
    return guard;
  }

  /** The size argument of a loan, after checking that the channel carries raw bytes. */
  #loanSize(size: unknown): number {
    if (this.#codec !== (codecs.bytes as unknown)) {
      throw new TypeError(
        `Cannot loan from a channel with the ${this.#codec.name} codec: a loan is raw bytes, ` +
          "for the bytes codec only",
      );
    }
    return validateInteger(size, "size", 1, this.maxMessageSize, "the largest message of the ring");
  }

  /** A loan of `size` bytes if the ring has room now (and, multi, the senders' lock is free). */
  #tryLoan(size: number): Loan | undefined {
    this.#beginSend("loan from");
    const guard = this.#senderLock ? this.#takeSenderLock() : null;
    if (this.#senderLock && guard === null) return undefined;
    const record = openLoan(
      this.#frames,
      this.#lease,
      this.#capacity,
      size,
      guard,
      this.#loanEnded,
    );
    if (record === undefined) return undefined;
    this.#loan = record;
    return createLoan(record);
  }

  /**
   * Checks that this handle may receive and releases a zero-copy message still held. In the
   * multi mode, takes the receivers' lock (the caller disposes it) and the indexes afresh.
   */
  #beginReceive(): Disposable | null {
    this.#assertOpen();
    if (!(this.#role & RECEIVES)) {
      throw new TypeError("Cannot receive from a channel handle opened to send only");
    }
    this.#frames.releaseHeld(); // a zero-copy message still held
    const lock = this.#receiverLock;
    if (!lock || this.#keptReceiverLock !== null) return null;
    const guard = lockReceivers(lock);
    this.#frames.syncHead(); // other receivers moved the head
    return guard;
  }

  #tryReceive(view: boolean): T | undefined {
    const guard = this.#beginReceive(); // not `using`, which costs ~50 ns a call (see #publish)
    if (guard === null) return this.#frames.read(view);
    try {
      return this.#frames.read(false);
    } finally {
      guard[Symbol.dispose]();
    }
  }

  #tryReceiveInto(buffer: Uint8Array): number | undefined {
    const guard = this.#beginReceive(); // not `using`, which costs ~50 ns a call (see #publish)
    try {
      return this.#frames.readInto(buffer);
    } finally {
      guard?.[Symbol.dispose]();
    }
  }

  /**
   * What `attempt` gives now or within the spin that begins every wait (src/channel/wait.ts),
   * before an async form's first `await`: a hot peer's answer costs no promise of the wait's.
   */
  #soon<R>(receiving: boolean, attempt: () => R | undefined): R | undefined {
    const now = attempt();
    return now !== undefined ? now : spinThenTry(this.#host, receiving, attempt);
  }

  /** What a wait needs of this handle: made once, so that a wait allocates nothing for it. */
  #waitHost(): WaitHost {
    return {
      cells: this.#cells,
      data: this.#lease.data,
      space: this.#lease.space,
      seen: (receiving) => this.#frames.seen(receiving),
      giveUp: (attempt, receiving, thorough) => this.#giveUp(attempt, receiving, thorough),
      assertOpen: () => this.#assertOpen(),
      begin: () => {
        this.#waiting++;
      },
      end: () => {
        if (--this.#waiting === 0 && this.#closed) this.#unmap();
      },
    };
  }

  /**
   * After a failed try, a look at the peers: once none is left to act, one more try (a peer may
   * have sent just before leaving), then the end of the stream or a broken pipe.
   */
  #giveUp<R>(
    attempt: () => R | undefined,
    receiving: boolean,
    thorough: boolean,
  ): R | typeof RETRY {
    const judged = this.#registry.peers(this.#slot, receiving ? SENDS : RECEIVES, thorough);
    if (judged === "alive" || judged === "alone") return RETRY;
    const last = attempt();
    if (last !== undefined) return last;
    const verb = receiving ? "receive from" : "send on";
    if (judged === "died") {
      throw new Deno.errors.BrokenPipe(
        `Cannot ${verb} the channel: its peer process died without closing it`,
      );
    }
    if (receiving) {
      throw new Deno.errors.UnexpectedEof("Cannot receive: every other handle closed the channel");
    }
    throw new Deno.errors.BrokenPipe("Cannot send on the channel: every other handle closed it");
  }
}
