/**
 * The `Topic` API: publishing values to every subscriber, in any process, over a ring in shared
 * memory (src/topic/layout.ts), with the subscriber table (src/topic/table.ts), the publish path
 * (src/topic/publish.ts) and subscriptions (src/topic/subscription.ts). It owns a handle's
 * life: what it maps, the slots it takes, what `close()` and the garbage collector release.
 * Internal: the public entry is src/topic/mod.ts.
 *
 * @module
 */

import { readWaitOptions, RETRY, type WaitOptions } from "../_wait.ts";
import type { Codec } from "../codec.ts";
import { check, closedError } from "../errors.ts";
import type { FdLike } from "../fd.ts";
import { SharedMemory } from "../shm.ts";
import {
  ConstructorToken,
  describe,
  optionalBoolean,
  optionsObject,
  realLength,
  validateInteger,
} from "../_validate.ts";
import { Mutex } from "../sync/mutex.ts";
import { unlinkOwnedName } from "../channel/lease.ts";
import { defaultCodec, validateCodec } from "../channel/options.ts";
import { adoptMemoryFd } from "../_memory_fd.ts";
import { encodeAsIs } from "../channel/slab.ts";
import { unmapRing } from "../channel/layout.ts";
import { RECEIVES, SENDS } from "../channel/registry.ts";
import {
  BLOCK,
  C_PUBLISHERS_SLEEPING,
  C_RELEASES,
  HEADER,
  HISTORY_MAX,
  PUBLISH_LOCK,
  readTopicHeader,
  type SlowPolicy,
  validatePolicy,
  validateTopicCapacity,
  writeTopicHeader,
} from "./layout.ts";
import { writeFrame } from "./publish.ts";
import { TopicRing } from "./ring.ts";
import { slowest, startOf, storeCursor } from "./table.ts";
import { Subscription, type SubscriptionHost, subscriptionToken } from "./subscription.ts";
import { waitAsync, type Waiter, waitSync } from "./wait.ts";

const token = new ConstructorToken("Topic", "Topic.create(), open() or fromFd()");

/** What a topic handle does: publish, subscribe, or both. */
export type TopicRole = "publish" | "subscribe" | "both";

/** Options of {@linkcode Topic.create}. */
export interface CreateTopicOptions<T> {
  /** The ring's size in bytes: a power of two from 4096 to 1 GiB. Default 1 MiB. */
  capacity?: number;
  /**
   * A name for unrelated processes to `open` (as for `SharedMemory`), or `null` to generate a
   * unique one (read it from `name` and send it). Default: anonymous.
   */
  name?: string | null;
  /** Permission bits of a named topic. Default 0o600. */
  mode?: number;
  /** Keep a named topic when the creator closes it. Default `false`. */
  persist?: boolean;
  /** How values become bytes. Default `codecs.bytes`. */
  codec?: Codec<T>;
  /**
   * How many of the last messages a subscription that joins gets first, 0 to 255, as far as the
   * ring still holds them. Default 0.
   */
  history?: number;
  /**
   * What a publisher does when the slowest subscription has not read the oldest message and the
   * ring is full: `"block"` (default) waits for it (back-pressure); `"drop"` writes over the
   * oldest messages, which that subscription then misses and counts in `missed`.
   */
  slow?: SlowPolicy;
  /**
   * What this handle does. Default `"both"`. Subscriptions end once no handle that may publish
   * is open: a process that only subscribes opens with `"subscribe"`.
   */
  role?: TopicRole;
}

/** Options of {@linkcode Topic.open} and {@linkcode Topic.fromFd}. */
export interface OpenTopicOptions<T> {
  /** The codec; it must be the creator's. Default `codecs.bytes`. */
  codec?: Codec<T>;
  /** What this handle does. Default `"both"`; `"subscribe"` for a process that only reads. */
  role?: TopicRole;
}

/** A Map, not an object: a prototype key such as "toString" is no role. */
const ROLES: ReadonlyMap<unknown, number> = new Map<unknown, number>([
  ["publish", SENDS],
  ["subscribe", RECEIVES],
  ["both", SENDS | RECEIVES],
]);

function validateTopicRole(role: unknown): number {
  const bits = ROLES.get(role ?? "both");
  if (bits === undefined) {
    throw new TypeError(
      `Cannot use topic role ${describe(role)}: use "publish", "subscribe" or "both"`,
    );
  }
  return bits;
}

/** What a handle must release, apart from the handle, so that a finalizer can use it. */
interface TopicLease {
  readonly memory: SharedMemory;
  readonly ring: TopicRing;
  readonly lock: Mutex;
  /** The handle's own registry slot (SENDS when it may publish, else no role bits). */
  slot: number;
  readonly role: number;
  readonly creator: boolean;
  /** The slots of its open subscriptions. */
  readonly subscriptions: Set<number>;
  /** Whether the ring was let go. */
  released: boolean;
}

/** Gives back every slot of the handle and its subscriptions, and wakes every waiter. */
function leaveAll(lease: TopicLease): void {
  const registry = lease.ring.registry;
  for (const slot of lease.subscriptions) registry.detach(slot, RECEIVES, false);
  lease.subscriptions.clear();
  if (lease.slot >= 0) registry.detach(lease.slot, lease.role & SENDS, lease.creator);
  lease.slot = -1;
  lease.ring.wakeSubscribers(true);
  lease.ring.wakePublishers(true);
}

/** Lets go of the lock, the ring's pages and the segment. Returns munmap's result. */
function release(lease: TopicLease): number {
  lease.released = true;
  lease.lock.close();
  const result = unmapRing(lease.ring.mapping);
  lease.memory.close();
  return result;
}

/**
 * Releases what a topic handle dropped without `close()` held: its slots (peers see it closed,
 * not alive), the ring's mappings, the segment. A safety net only.
 */
const releaseWhenUnreachable = new FinalizationRegistry<TopicLease>((lease) => {
  try {
    leaveAll(lease);
  } catch {
    // the slots stay: peers see a dead process, as after a crash
  }
  try {
    release(lease);
  } catch {
    // what could not be released stays: a leak, never a hole
  }
});

/**
 * Publish/subscribe in shared memory: every subscription, in any process, receives every
 * message published after it joined, in order, after the last `history` messages. `Topic<T>`
 * carries values of type `T` through its codec.
 *
 * - Publish: `publish()` waits (in a `slow: "block"` topic) while the slowest live subscription
 *   has not read enough to make room, `publishSync()` blocks the thread, `tryPublish()` returns
 *   `false` instead. In a `slow: "drop"` topic publishing never waits: it writes over the
 *   oldest messages. Several publishers, in any processes, take turns through a robust lock: a
 *   publisher killed mid-publish leaves no half message and no held lock.
 * - Subscribe: `subscribe()` returns a {@linkcode Subscription}, an async iterable.
 * - A subscription whose process died is reclaimed as soon as a publisher is short of room,
 *   within 100 ms when it waits: it never holds publishers back.
 *
 * @example A publisher and a subscriber
 * ```ts
 * import { Topic, codecs } from "@posix/ipc/topic";
 *
 * using topic = Topic.create({ codec: codecs.json, history: 1 });
 * await topic.publish({ price: 1 });
 * using late = topic.subscribe(); // gets the last message first
 * await topic.publish({ price: 2 });
 * console.log(late.tryReceive(), late.tryReceive()); // { price: 1 } { price: 2 }
 * ```
 */
export class Topic<T = Uint8Array> implements Disposable {
  readonly #memory: SharedMemory;
  readonly #ring: TopicRing;
  readonly #codec: Codec<T>;
  readonly #role: number;
  readonly #lock: Mutex;
  readonly #lease: TopicLease;
  readonly #ownsName: boolean;
  readonly #host: SubscriptionHost;
  #closed = false;
  #waiting = 0;
  /** How long the last async publish that waited for room waited (the adaptive budget). */
  #lastWait = Infinity;

  private constructor(
    key: ConstructorToken,
    memory: SharedMemory,
    codec: Codec<T>,
    role: number,
    initialise?: { capacity: number; policy: number; history: number; ownsName: boolean },
  ) {
    token.check(key);
    this.#memory = memory;
    this.#codec = codec;
    this.#role = role;
    this.#ownsName = initialise?.ownsName ?? false;
    if (initialise) writeTopicHeader(memory, initialise, codec.name);
    const shape = readTopicHeader(memory, codec.name);
    const ring = this.#ring = new TopicRing(memory.fd, shape);
    let lock: Mutex;
    try {
      lock = (initialise ? Mutex.init : Mutex.at)(memory, PUBLISH_LOCK);
    } catch (error) {
      unmapRing(ring.mapping);
      throw error;
    }
    this.#lock = lock;
    const lease: TopicLease = {
      memory,
      ring,
      lock,
      slot: -1,
      role,
      creator: initialise !== undefined,
      subscriptions: new Set(),
      released: false,
    };
    this.#lease = lease;
    try {
      if (initialise) ring.registry.recordCreator();
      lease.slot = ring.registry.attach(role & SENDS);
    } catch (error) {
      lock.close();
      unmapRing(ring.mapping);
      throw error;
    }
    this.#host = {
      ring,
      assertOpen: () => this.#assertOpen(),
      begin: () => {
        this.#waiting++;
      },
      end: () => {
        if (--this.#waiting === 0 && this.#closed) this.#unmap();
      },
      leave: (slot) => {
        if (lease.released || !lease.subscriptions.delete(slot)) return;
        ring.registry.detach(slot, RECEIVES, false);
        ring.wakePublishers();
      },
    };
    releaseWhenUnreachable.register(this, lease, this);
  }

  /**
   * Creates a topic: anonymous by default (hand `fd` to a child), or named.
   *
   * @param options `capacity`, `name`, `mode`, `persist`, `codec`, `history`, `slow`, `role`.
   * @returns The topic.
   * @throws {RangeError} for a capacity that is not a power of two from 4096 to 1 GiB, or a
   *   history out of 0..255.
   * @throws {TypeError} for a slow policy other than "block" or "drop".
   * @example
   * ```ts
   * import { Topic, codecs } from "@posix/ipc/topic";
   *
   * using topic = Topic.create({ codec: codecs.text, slow: "drop", history: 8 });
   * console.log(topic.slow, topic.history); // drop 8
   * ```
   * @example A generated name, to send to subscribers
   * ```ts
   * import { Topic } from "@posix/ipc/topic";
   *
   * using topic = Topic.create({ name: null, capacity: 4096 });
   * console.log(topic.name); // "/posix-ipc-" and 32 hex digits: Topic.open() it elsewhere
   * ```
   */
  static create<T = Uint8Array>(options?: CreateTopicOptions<T>): Topic<T> {
    options = { ...optionsObject(options, "topic options") }; // own keys only
    const capacity = validateTopicCapacity(options.capacity ?? 1 << 20);
    const codec = validateCodec<T>(options.codec ?? defaultCodec<T>());
    const history = validateInteger(options.history ?? 0, "history", 0, HISTORY_MAX);
    const policy = validatePolicy(options.slow);
    const role = validateTopicRole(options.role);
    const persist = optionalBoolean(options.persist, "persist") ?? false;
    const size = HEADER + capacity;
    const memory = options.name === undefined
      ? SharedMemory.anonymous({ size })
      : SharedMemory.create(options.name, { size, mode: options.mode, persist });
    return Topic.#adopt(memory, codec, role, {
      capacity,
      policy,
      history,
      ownsName: options.name !== undefined && !persist,
    });
  }

  /**
   * Opens a named topic that another process created.
   *
   * @param name The topic's name.
   * @param options The `codec` (the creator's) and the `role`.
   * @returns The topic.
   * @throws {Deno.errors.NotFound} when no topic has that name.
   * @throws {Deno.errors.InvalidData} when the segment holds no topic.
   * @example
   * ```ts
   * import { Topic } from "@posix/ipc/topic";
   *
   * const name = `/topic-${Deno.pid}`;
   * using created = Topic.create({ name, capacity: 4096 });
   * using opened = Topic.open(name, { role: "subscribe" }); // as an unrelated process would
   * using subscription = opened.subscribe();
   * created.publishSync(new Uint8Array([1]));
   * console.log(subscription.tryReceive()); // Uint8Array(1) [ 1 ]
   * ```
   */
  static open<T = Uint8Array>(name: string, options?: OpenTopicOptions<T>): Topic<T> {
    options = { ...optionsObject(options, "topic options") }; // own keys only
    const codec = validateCodec<T>(options.codec ?? defaultCodec<T>());
    const role = validateTopicRole(options.role);
    return Topic.#adopt(SharedMemory.open(name), codec, role);
  }

  /**
   * Takes a topic from a descriptor, typically one a parent handed down with `spawn`'s `fds`,
   * with the ownership rules of `Channel.fromFd`: on success the topic owns a descriptor given
   * as a number or an `OwnedFd`; on failure it stays the caller's, open.
   *
   * @param fd The descriptor (for example `inheritedFd(3)`), or a handle that has one.
   * @param options The `codec` (the creator's) and the `role`.
   * @returns The topic.
   * @throws {Deno.errors.InvalidData} when the descriptor holds no topic, or a header that does
   *   not fit its segment.
   * @example
   * ```ts
   * import { Topic } from "@posix/ipc/topic";
   *
   * using parent = Topic.create({ capacity: 4096 });
   * using child = Topic.fromFd(parent, { role: "subscribe" }); // as a child given parent.fd would
   * console.log(child.capacity); // 4096
   * ```
   */
  static fromFd<T = Uint8Array>(fd: FdLike, options?: OpenTopicOptions<T>): Topic<T> {
    options = { ...optionsObject(options, "topic options") }; // own keys only
    const codec = validateCodec<T>(options.codec ?? defaultCodec<T>());
    const role = validateTopicRole(options.role);
    return adoptMemoryFd(fd, (memory) => Topic.#adopt(memory, codec, role));
  }

  static #adopt<T>(
    memory: SharedMemory,
    codec: Codec<T>,
    role: number,
    initialise?: { capacity: number; policy: number; history: number; ownsName: boolean },
  ): Topic<T> {
    try {
      return new Topic(token, memory, codec, role, initialise);
    } catch (error) {
      memory.close();
      throw error;
    }
  }

  /** The ring's size in bytes. */
  get capacity(): number {
    return this.#ring.capacity;
  }

  /** The largest message, in encoded bytes: the capacity less a frame header. */
  get maxMessageSize(): number {
    return this.#ring.capacity - 8;
  }

  /** How many of the last messages a new subscription gets first. */
  get history(): number {
    return this.#ring.history;
  }

  /** The slow-subscriber policy chosen at create. */
  get slow(): SlowPolicy {
    return this.#ring.policy === BLOCK ? "block" : "drop";
  }

  /** The name of a named topic, or `null`. */
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
   * Publishes a value if there is room now (always in a "drop" topic).
   *
   * @param value The value.
   * @returns `false` when a "block" topic's slowest live subscription has not read enough.
   * @throws {RangeError} for a message larger than the ring.
   * @example
   * ```ts
   * import { Topic } from "@posix/ipc/topic";
   *
   * using topic = Topic.create({ capacity: 4096 });
   * using subscription = topic.subscribe();
   * console.log(topic.tryPublish(new Uint8Array(4000)), topic.tryPublish(new Uint8Array(100))); // true false
   * ```
   */
  tryPublish(value: T): boolean {
    return this.#write(this.#encode(value), false);
  }

  /**
   * Publishes a value, waiting (without blocking the event loop) while a "block" topic's
   * slowest live subscription holds the room.
   *
   * @param value The value.
   * @param options `timeout` (ms) and `signal`.
   * @throws {Deno.errors.TimedOut} after `timeout`.
   * @example
   * ```ts
   * import { Topic, codecs } from "@posix/ipc/topic";
   *
   * using topic = Topic.create({ codec: codecs.text });
   * await topic.publish("tick", { timeout: 1000 });
   * ```
   */
  async publish(value: T, given: WaitOptions = {}): Promise<void> {
    const options = readWaitOptions(given, "publish on the topic"); // read once

    const bytes = this.#encode(value);
    if (this.#write(bytes, false)) return;
    const waiter = this.#publisher(bytes);
    try {
      await waitAsync(waiter, options);
    } finally {
      this.#lastWait = waiter.lastWait;
    }
  }

  /**
   * Publishes a value, blocking this thread while a "block" topic has no room.
   *
   * @param value The value.
   * @param options `timeout` (ms).
   * @throws {Deno.errors.TimedOut} after `timeout`.
   * @example
   * ```ts
   * import { Topic } from "@posix/ipc/topic";
   *
   * using topic = Topic.create();
   * topic.publishSync(new Uint8Array([1, 2]));
   * ```
   */
  publishSync(value: T, given: { timeout?: number } = {}): void {
    const options = { timeout: readWaitOptions(given, "publish on the topic").timeout }; // once
    const bytes = this.#encode(value);
    if (this.#write(bytes, false)) return;
    waitSync(this.#publisher(bytes), options);
  }

  /**
   * Subscribes: a new {@linkcode Subscription} that receives the last `history` messages still
   * in the ring, then every message published from now on.
   *
   * @returns The subscription; close it to leave.
   * @throws {TypeError} on a handle opened with role "publish".
   * @throws {RangeError} when 32 handles and subscriptions are open.
   * @example
   * ```ts
   * import { Topic, codecs } from "@posix/ipc/topic";
   *
   * using topic = Topic.create({ codec: codecs.text });
   * using a = topic.subscribe();
   * using b = topic.subscribe();
   * topic.publishSync("both get it");
   * console.log(a.tryReceive(), b.tryReceive()); // both get it both get it
   * ```
   */
  subscribe(): Subscription<T> {
    this.#assertOpen();
    if (!(this.#role & RECEIVES)) {
      throw new TypeError("Cannot subscribe on a topic handle opened to publish only");
    }
    const ring = this.#ring;
    using guard = this.#lock.lockSync();
    if (guard.ownerDied) guard.markConsistent(); // a dead publisher published nothing half-done
    const start = startOf(ring);
    const slot = ring.registry.attach(RECEIVES);
    storeCursor(ring, slot, start.position);
    this.#lease.subscriptions.add(slot);
    return new Subscription(subscriptionToken, this.#host, this.#codec, slot, start);
  }

  /**
   * Closes this handle and its subscriptions: once no handle that may publish is open,
   * subscriptions elsewhere end after the messages already published; pending waits here
   * reject with `BadResource` at once. Closing again does nothing.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    releaseWhenUnreachable.unregister(this);
    leaveAll(this.#lease);
    if (this.#ownsName) unlinkOwnedName(this.#memory);
    if (this.#waiting === 0) this.#unmap();
  }

  /** Same as {@linkcode Topic.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #unmap(): void {
    check(release(this.#lease), "munmap", { action: "unmap a topic" });
  }

  #assertOpen(): void {
    if (this.#closed) throw closedError("the topic");
  }

  #encode(value: T): Uint8Array {
    this.#assertOpen();
    if (!(this.#role & SENDS)) {
      throw new TypeError("Cannot publish on a topic handle opened to subscribe only");
    }
    // Checked to be a Uint8Array, its real length read: a codec's lying subclass cannot make a
    // frame copy more bytes than its header says (writeFrame copies with set()).
    const bytes = encodeAsIs(this.#codec, value, "publish");
    const length = realLength(bytes);
    if (length > this.maxMessageSize) {
      throw new RangeError(
        `Cannot publish a message of ${length} bytes: the topic's ring holds ` +
          `${this.capacity} (${this.maxMessageSize} for one message)`,
      );
    }
    return bytes;
  }

  /** One publish under the lock; `thorough` also judges zombie subscribers. */
  #write(bytes: Uint8Array, thorough: boolean): boolean {
    this.#assertOpen();
    const guard = this.#lock.lockSync(); // not `using`, which costs ~50 ns a call
    try {
      if (guard.ownerDied) guard.markConsistent(); // a dead publisher published nothing half-done
      return writeFrame(this.#ring, bytes, true, thorough);
    } finally {
      guard.unlock();
    }
  }

  /** What a publisher waiting for room needs. */
  #publisher(bytes: Uint8Array): Waiter<void> {
    const ring = this.#ring;
    const frame = ring.frameSize(realLength(bytes));
    return {
      what: "publish on the topic",
      cells: ring.cells,
      word: ring.releasesWord,
      wordCell: C_RELEASES,
      sleepingCell: C_PUBLISHERS_SLEEPING,
      slice: PUBLISHER_SLICE_MS,
      blocked: () => {
        const tail = ring.tail();
        const used = (tail - ring.oldest()) >>> 0;
        return ring.capacity - Math.min(used, slowest(ring, tail, false, false)) < frame;
      },
      attempt: (thorough) => this.#write(bytes, thorough) ? undefined : RETRY,
      assertOpen: () => this.#assertOpen(),
      begin: this.#host.begin,
      end: this.#host.end,
      lastWait: this.#lastWait,
    };
  }
}

/**
 * A publisher waiting for room wakes this often to judge the subscriptions that hold it back: a
 * dead one stops blocking it within this time.
 */
const PUBLISHER_SLICE_MS = 100;
