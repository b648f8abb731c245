/**
 * A subscription: one reader of a topic, with its own cursor, that receives every message
 * published after it joined (and the history before). Internal: the public entry is
 * src/topic/mod.ts.
 *
 * @module
 */

import { orderReadsBefore } from "../_fence.ts";
import { RETRY, type WaitOptions } from "../_wait.ts";
import type { Codec } from "../codec.ts";
import { closedError } from "../errors.ts";
import { ConstructorToken } from "../_validate.ts";
import { receiverIterator } from "../channel/iterate.ts";
import { SENDS } from "../channel/registry.ts";
import { decodeCopy, decodeFailed, decodesInPlace, Slabs } from "../channel/slab.ts";
import { CHANNEL_SLICE_MS } from "../channel/wait.ts";
import { selectable, type SelectAdapter } from "../select/protocol.ts";
import { C_PUBLISHED, C_SUBSCRIBERS_SLEEPING, DROP, FRAME_HEADER } from "./layout.ts";
import type { TopicRing } from "./ring.ts";
import { type Start, storeCursor } from "./table.ts";
import { waitAsync, type Waiter, waitSync } from "./wait.ts";

/** The key `Topic.subscribe()` passes to the constructor. */
export const subscriptionToken = new ConstructorToken("Subscription", "topic.subscribe()");

/** What a subscription needs of its topic handle. */
export interface SubscriptionHost {
  readonly ring: TopicRing;
  /** Throws `BadResource` once the topic handle closed. */
  assertOpen(): void;
  /** A wait begins or ends: the topic keeps its mapping until every wait has ended. */
  begin(): void;
  end(): void;
  /** The subscription in `slot` leaves: its slot goes back to the registry. */
  leave(slot: number): void;
}

/** Frees the slot of a subscription dropped without `close()`. A safety net only. */
const leaveWhenUnreachable = new FinalizationRegistry<{ host: SubscriptionHost; slot: number }>(
  ({ host, slot }) => {
    try {
      host.leave(slot);
    } catch {
      // the slot stays: publishers see a live process until it exits
    }
  },
);

/**
 * One subscriber's view of a topic, from `topic.subscribe()`: every message published after it
 * joined, in order, after the topic's `history`.
 *
 * - `for await (const message of subscription)` ends once every publisher closed the topic
 *   and the messages are read; `receive()` then rejects with `Deno.errors.UnexpectedEof`. If a
 *   publisher process died without closing and none is left, a waiting receive rejects with
 *   `Deno.errors.BrokenPipe` within half a second.
 * - In a `slow: "drop"` topic, messages the publisher wrote over before this subscription read
 *   them are skipped, and counted in {@linkcode Subscription.missed}: the messages received
 *   plus `missed` are exactly the messages published since it joined.
 * - `close()` frees its slot at once (publishers of a "block" topic stop waiting for it).
 *
 * @example
 * ```ts
 * import { Topic, codecs } from "@posix/ipc/topic";
 *
 * using topic = Topic.create({ codec: codecs.text });
 * using subscription = topic.subscribe();
 * await topic.publish("hello");
 * console.log(await subscription.receive()); // "hello"
 * ```
 */
export class Subscription<T = Uint8Array> implements Disposable, AsyncIterable<T> {
  readonly #host: SubscriptionHost;
  readonly #ring: TopicRing;
  readonly #codec: Codec<T>;
  readonly #slot: number;
  readonly #drop: boolean;
  /** The position bits above a sixteenth of the ring (see `#advance`). */
  readonly #wakeMask: number;
  #cursor: number;
  #sequence: number;
  #seenTail: number;
  #missed = 0;
  #closed = false;
  readonly #slabs = new Slabs();
  readonly #waiter: Waiter<T>;

  /**
   * Made by `Topic.subscribe()` only: `new Subscription()` from outside is a TypeError.
   *
   * @param key The module's key.
   * @param host The topic handle's part.
   * @param codec The topic's codec.
   * @param slot The registry slot taken.
   * @param start Where it starts reading.
   */
  constructor(
    key: ConstructorToken,
    host: SubscriptionHost,
    codec: Codec<T>,
    slot: number,
    start: Start,
  ) {
    subscriptionToken.check(key);
    this.#host = host;
    this.#ring = host.ring;
    this.#codec = codec;
    this.#slot = slot;
    this.#drop = host.ring.policy === DROP;
    this.#wakeMask = ~((host.ring.capacity >>> 4) - 1);
    this.#cursor = this.#seenTail = start.position;
    this.#sequence = start.sequence;
    this.#waiter = this.#makeWaiter();
    leaveWhenUnreachable.register(this, { host, slot }, this);
  }

  /**
   * How many messages this subscription missed: in a `slow: "drop"` topic, those the publisher
   * wrote over before it read them; always 0 in a "block" topic.
   */
  get missed(): number {
    return this.#missed;
  }

  /** Whether this subscription, or its topic handle, was closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Receives a message if one is waiting.
   *
   * @returns The value, or `undefined` when there is none yet.
   * @throws {Deno.errors.InvalidData} when the ring is corrupt or the bytes are not the codec's.
   * @example
   * ```ts
   * import { Topic } from "@posix/ipc/topic";
   *
   * using topic = Topic.create();
   * using subscription = topic.subscribe();
   * console.log(subscription.tryReceive()); // undefined
   * ```
   */
  tryReceive(): T | undefined {
    this.#assertOpen();
    return this.#read();
  }

  /**
   * Receives the next message, waiting (without blocking the event loop) until there is one.
   *
   * @param options `timeout` (ms) and `signal`.
   * @returns The value.
   * @throws {Deno.errors.UnexpectedEof} when every publisher closed and the messages are read.
   * @throws {Deno.errors.BrokenPipe} when a publisher died without closing and none is left.
   * @throws {Deno.errors.TimedOut} after `timeout`.
   * @example
   * ```ts
   * import { Topic } from "@posix/ipc/topic";
   *
   * using topic = Topic.create();
   * using subscription = topic.subscribe();
   * setTimeout(() => topic.tryPublish(new Uint8Array([1])), 10);
   * console.log(await subscription.receive({ timeout: 1000 })); // Uint8Array(1) [ 1 ]
   * ```
   */
  async receive(options: WaitOptions = {}): Promise<T> {
    this.#assertOpen();
    const value = this.#read();
    if (value !== undefined) return value;
    return await waitAsync(this.#waiter, options);
  }

  /**
   * Receives the next message, blocking this thread until there is one.
   *
   * @param options `timeout` (ms).
   * @returns The value.
   * @throws {Deno.errors.UnexpectedEof} when every publisher closed and the messages are read.
   * @throws {Deno.errors.TimedOut} after `timeout`.
   * @example
   * ```ts
   * import { Topic } from "@posix/ipc/topic";
   *
   * using topic = Topic.create();
   * using subscription = topic.subscribe();
   * topic.publishSync(new Uint8Array([2]));
   * console.log(subscription.receiveSync({ timeout: 1000 })); // Uint8Array(1) [ 2 ]
   * ```
   */
  receiveSync(options: { timeout?: number } = {}): T {
    this.#assertOpen();
    const value = this.#read();
    if (value !== undefined) return value;
    return waitSync(this.#waiter, options);
  }

  /**
   * Receives until every publisher has closed (or, with `BrokenPipe`, died). Ends quietly when
   * this subscription or its topic handle is closed.
   *
   * @returns The values, in order.
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return receiverIterator({
      tryReceive: () => this.tryReceive(),
      receive: () => this.receive(),
      isClosed: () => this.closed,
    });
  }

  /** Leaves the topic: frees the slot; pending receives reject with `BadResource`. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    leaveWhenUnreachable.unregister(this);
    this.#slabs.clear();
    this.#host.leave(this.#slot);
  }

  /** Same as {@linkcode Subscription.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw closedError("the subscription");
    try {
      this.#host.assertOpen();
    } catch (error) {
      this.close();
      throw error;
    }
  }

  /** The next message, or `undefined` when none is published yet. */
  #read(): T | undefined {
    const ring = this.#ring;
    while (true) {
      const cursor = this.#cursor;
      if (cursor === this.#seenTail) {
        this.#seenTail = ring.tail();
        if (cursor === this.#seenTail) {
          if (!this.#drop) this.#ring.wakePublishers(); // all read: none may wait for it
          return undefined;
        }
      }
      if (this.#drop && this.#overrun()) continue;
      const length = ring.lengthAt(cursor);
      const frame = ring.frameSize(length);
      if (
        length > ring.capacity - FRAME_HEADER || frame > ((this.#seenTail - cursor) >>> 0) ||
        ring.sequenceAt(cursor) !== this.#sequence
      ) {
        if (this.#drop && this.#overrun()) continue;
        throw new Deno.errors.InvalidData(
          `Cannot receive: the topic's ring is corrupt (a frame of ${length} bytes, message ` +
            `${ring.sequenceAt(cursor)} where ${this.#sequence} was due)`,
        );
      }
      const start = ring.at(cursor) + FRAME_HEADER;
      const bytes = ring.bytes.subarray(start, start + length);
      // In a "drop" topic the publisher may write over the frame meanwhile: copy, then check.
      const copy = this.#drop ? this.#slabs.copy(bytes) : null;
      if (copy !== null && this.#overrun()) continue;
      if (copy === null && decodesInPlace(this.#codec)) return this.#decodeInPlace(bytes, frame);
      // Any other codec decodes a copy after the cursor moved on: its decode may receive from
      // this subscription again, which must find the next message.
      const owned = copy ?? this.#slabs.copy(bytes);
      this.#advance(frame);
      return decodeCopy(this.#codec, owned);
    }
  }

  /**
   * Decodes a text or JSON frame from the ring, then moves past it: before, since in a "block"
   * topic moving the cursor lets the publisher write over the frame (and these codecs run no
   * code of the caller's meanwhile).
   */
  #decodeInPlace(bytes: Uint8Array, frame: number): T {
    let value: T;
    try {
      value = this.#codec.decode(bytes);
    } catch (error) {
      this.#advance(frame); // skip what cannot be decoded, so that the topic goes on
      throw decodeFailed(this.#codec, error);
    }
    this.#advance(frame);
    return value;
  }

  /**
   * Moves past a frame. In a "block" topic, publishes the cursor, and wakes a waiting publisher
   * only when the cursor crosses a sixteenth of the ring (or when it has read everything, see
   * `#read`): a publisher that waits for room is woken once per sixteenth, not once per message
   * (which made a full ring trade one wake-up per message).
   */
  #advance(frame: number): void {
    const before = this.#cursor;
    this.#cursor = (before + frame) | 0;
    this.#sequence = (this.#sequence + 1) | 0;
    if (!this.#drop) {
      storeCursor(this.#ring, this.#slot, this.#cursor);
      if (((before ^ this.#cursor) & this.#wakeMask) !== 0) this.#ring.wakePublishers();
    }
  }

  /**
   * In a "drop" topic: whether the publisher has dropped the frame at the cursor. If so, moves
   * the cursor to the oldest frame still in the ring and counts the messages skipped.
   */
  #overrun(): boolean {
    const ring = this.#ring;
    // The frame's plain reads (its length, sequence and the copy) before the check of OLDEST:
    // on aarch64 a load-acquire alone would let them pass it (src/_fence.ts).
    orderReadsBefore();
    if (((ring.oldest() - this.#cursor) | 0) <= 0) return false;
    while (true) {
      const oldest = ring.oldest();
      const { tail, sequence } = ring.readWrite();
      const first = oldest === tail ? sequence : ring.sequenceAt(oldest);
      orderReadsBefore();
      if (ring.oldest() !== oldest) continue; // dropped again meanwhile: look again
      this.#missed += (first - this.#sequence) >>> 0;
      this.#cursor = oldest;
      this.#sequence = first;
      this.#seenTail = tail;
      return true;
    }
  }

  /**
   * How `select()` takes from and waits on this subscription: it takes the next message, and
   * sleeps on the topic's futex word with the other futex sources. Internal: see
   * src/select/protocol.ts.
   *
   * @returns The adapter.
   * @example
   * ```ts
   * import { Topic } from "@posix/ipc/topic";
   * import { select } from "@posix/ipc/select";
   *
   * using topic = Topic.create();
   * using subscription = topic.subscribe();
   * setTimeout(() => topic.tryPublish(new Uint8Array([7])), 10);
   * const { value } = await select([subscription], { timeout: 1000 });
   * console.log(value); // Uint8Array(1) [ 7 ]
   * ```
   */
  [selectable](): SelectAdapter<T> {
    const ring = this.#ring;
    const cells = ring.cells;
    const blocked = () => ring.tail() === this.#cursor;
    // Throws the end of the stream once no publisher is left and nothing is left to read.
    const judge = (thorough: boolean) => {
      const judged = ring.registry.peers(this.#slot, SENDS, thorough);
      if (judged === "alive" || judged === "alone" || !blocked()) return;
      throw this.#ended(judged === "died");
    };
    return {
      try: () => {
        this.#assertOpen();
        const value = this.#read();
        return value === undefined ? undefined : { value };
      },
      futex: {
        begin: () => this.#host.begin(),
        end: () => this.#host.end(),
        enter: () => {
          this.#assertOpen();
          // A flag, not a count: a publisher that sees it wakes every sleeper and clears it.
          Atomics.store(cells, C_SUBSCRIBERS_SLEEPING, 1);
          const expected = Atomics.load(cells, C_PUBLISHED);
          if (!blocked()) return undefined;
          judge(false);
          return { word: ring.publishedWord, expected };
        },
        leave: () => {},
        check: () => {
          this.#assertOpen();
          judge(true);
        },
      },
    };
  }

  #makeWaiter(): Waiter<T> {
    const ring = this.#ring;
    return {
      what: "receive from the topic",
      cells: ring.cells,
      word: ring.publishedWord,
      wordCell: C_PUBLISHED,
      sleepingCell: C_SUBSCRIBERS_SLEEPING,
      slice: CHANNEL_SLICE_MS,
      blocked: () => ring.tail() === this.#cursor,
      attempt: (thorough) => this.#attempt(thorough),
      assertOpen: () => this.#assertOpen(),
      begin: () => this.#host.begin(),
      end: () => this.#host.end(),
      lastWait: Infinity,
    };
  }

  /**
   * One try, then a look at the publishers: once none is left, one more try (one may have
   * published just before leaving), then the end of the stream or a broken pipe.
   */
  #attempt(thorough: boolean): T | typeof RETRY {
    const value = this.#read();
    if (value !== undefined) return value;
    const judged = this.#ring.registry.peers(this.#slot, SENDS, thorough);
    if (judged === "alive" || judged === "alone") return RETRY;
    const last = this.#read();
    if (last !== undefined) return last;
    throw this.#ended(judged === "died");
  }

  /** The end of the stream: a broken pipe when the last publisher died without closing. */
  #ended(died: boolean): Error {
    return died
      ? new Deno.errors.BrokenPipe(
        "Cannot receive from the topic: its publisher process died without closing it",
      )
      : new Deno.errors.UnexpectedEof("Cannot receive: every publisher closed the topic");
  }
}
