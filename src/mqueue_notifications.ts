/**
 * Notification that an empty message queue received a message (`mq_notify`), from
 * `MessageQueue.prototype.notifications()`: an async iterable, a `wait`, a `tryWait` and a source
 * of `select`, that keeps the kernel's one registration per queue for this process.
 *
 * @example
 * ```ts
 * import { MessageQueue } from "@posix/ipc/mqueue";
 *
 * using queue = MessageQueue.create(`/notify-doc-${Deno.pid}`);
 * using notices = queue.notifications();
 * setTimeout(() => queue.sendSync("hello"), 10);
 * await notices.wait({ timeout: 5000 });
 * console.log(queue.tryReceive()?.data.length); // 5
 * ```
 *
 * @module
 */

import { POLLIN } from "../ffi/constants.ts";
import { libc } from "../ffi/libc.ts";
import { deregister, newCookie, noticeSocket, readNotices, register } from "./_mq_notify.ts";
import { ConstructorToken, ownOptions } from "./_validate.ts";
import {
  pollAsync,
  pollSync,
  readWaitOptions,
  RETRY,
  type WaitOptions,
  waitUntil,
  waitUntilSync,
} from "./_wait.ts";
import { closedError, type Operation } from "./errors.ts";
import { closeFd } from "./fd.ts";
import { selectable, type SelectAdapter } from "./select/protocol.ts";

/** What a registration needs from its queue; mqueue.ts gives it. Internal. */
export interface NotifiedQueue {
  /** The queue's name. */
  readonly name: string;
  /** `message queue "/name"`, for messages. */
  readonly label: string;
  /** The queue's descriptor; throws BadResource once the queue is closed. */
  fd(): number;
  /** Whether the queue is closed. */
  closed(): boolean;
  /** How many messages it holds now. */
  currentMessages(): number;
  /** The registrations made through this queue handle, which its `close()` closes. */
  readonly registrations: QueueRegistrations;
}

/**
 * The registrations made through one queue handle, so that closing the handle closes them at
 * once: closing the descriptor ends the kernel's registration, and without this the netlink
 * socket stayed open until the registration was used again or collected. Held weakly: one
 * dropped without `close()` is still collected, and its finalizer closes its socket. Internal.
 */
export class QueueRegistrations {
  readonly #live = new Set<WeakRef<MessageQueueNotifications>>();

  /**
   * Tracks `notices` until {@linkcode QueueRegistrations.forget} or
   * {@linkcode QueueRegistrations.closeAll}.
   *
   * @returns The reference to give to `forget`.
   */
  add(notices: MessageQueueNotifications): WeakRef<MessageQueueNotifications> {
    for (const ref of this.#live) if (ref.deref() === undefined) this.#live.delete(ref);
    const ref = new WeakRef(notices);
    this.#live.add(ref);
    return ref;
  }

  /** Stops tracking a registration that closed. */
  forget(ref: WeakRef<MessageQueueNotifications>): void {
    this.#live.delete(ref);
  }

  /**
   * Closes every registration still open, after the queue's descriptor closed (each then only
   * closes its socket); the first failure is thrown once every one was tried.
   */
  closeAll(): void {
    const refs = [...this.#live];
    this.#live.clear();
    let failure: { error: unknown } | undefined;
    for (const ref of refs) {
      try {
        ref.deref()?.close();
      } catch (error) {
        failure ??= { error };
      }
    }
    if (failure) throw failure.error;
  }
}

/** What the safety net needs: the socket to close (the kernel drops the rest). */
interface NoticeLease {
  socket: number;
}

/**
 * A dropped registration's socket is closed. Its registration stays with the kernel until a
 * message arrives or the queue is closed: the queue's descriptor number may belong to another
 * queue by then, so a finalizer must not deregister by number.
 */
const closeWhenUnreachable = new FinalizationRegistry<NoticeLease>((lease) => {
  libc().close(lease.socket);
});

const token = new ConstructorToken(
  "MessageQueueNotifications",
  "MessageQueue.prototype.notifications()",
);

let create: (queue: NotifiedQueue, signal: AbortSignal | undefined) => MessageQueueNotifications;

/**
 * Makes the registration of `MessageQueue.prototype.notifications()`. Internal.
 *
 * @throws {Deno.errors.Busy} when a process is registered for the queue already.
 */
export function notificationsOf(
  queue: NotifiedQueue,
  signal: AbortSignal | undefined,
): MessageQueueNotifications {
  return create(queue, signal);
}

/**
 * This process's registration for the notice that a message queue went from empty to
 * non-empty (`mq_notify` in the kernel's SIGEV_THREAD mode, received on a netlink socket:
 * no signal handler, no thread). Made by `MessageQueue.prototype.notifications()`.
 *
 * The kernel's registration is one-shot: this object registers again before each `wait` ends
 * (and so before each iteration yields), so that a caller that then receives until the queue
 * is empty misses no message: one that arrives after the last receive finds the queue empty
 * and registered, and wakes the next wait. What the kernel gives, and so this:
 * - one registration per queue, across every process: a second one, even in this process,
 *   throws `Deno.errors.Busy` until the first ends (`close()`, the queue closed, the process
 *   gone: the kernel frees the registration of a killed process);
 * - notice of empty to non-empty only: a message sent to a queue that holds messages, or
 *   handed straight to a process blocked in `mq_receive`, wakes nothing. So the first wait
 *   ends at once when the queue holds messages when registering, and a wait may end with
 *   nothing left to receive (another receiver took it).
 *
 * @example Draining after each notice
 * ```ts
 * import { MessageQueue } from "@posix/ipc/mqueue";
 *
 * using queue = MessageQueue.create(`/notices-${Deno.pid}`);
 * const done = AbortSignal.timeout(200);
 * setTimeout(() => queue.sendSync("one"), 10);
 * for await (const _ of queue.notifications({ signal: done })) {
 *   for (let m; (m = queue.tryReceive()) !== null;) console.log(new TextDecoder().decode(m.data));
 * }
 * ```
 */
export class MessageQueueNotifications implements AsyncIterable<void>, Disposable {
  readonly #queue: NotifiedQueue;
  readonly #lease: NoticeLease;
  readonly #cookie = newCookie();
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = () => this.close();
  readonly #tracked: WeakRef<MessageQueueNotifications>;
  #socket: number;
  /** Whether the kernel holds our registration, as far as the notices read tell. */
  #armed = false;
  /** Whether a wait is owed: a notice came, or the queue held messages at registering. */
  #owed = false;

  static {
    create = (queue, signal) => new MessageQueueNotifications(token, queue, signal);
  }

  private constructor(key: ConstructorToken, queue: NotifiedQueue, signal?: AbortSignal) {
    token.check(key);
    this.#queue = queue;
    const fd = queue.fd();
    this.#socket = noticeSocket(this.#operation);
    try {
      register(fd, this.#socket, this.#cookie, this.#operation);
      this.#armed = true;
      // After registering: a message before it is counted here, one after it is a notice.
      this.#owed = queue.currentMessages() > 0;
    } catch (error) {
      if (this.#armed) deregister(fd, this.#operation);
      closeFd(this.#socket);
      throw error;
    }
    this.#lease = { socket: this.#socket };
    closeWhenUnreachable.register(this, this.#lease, this);
    this.#tracked = queue.registrations.add(this);
    this.#signal = signal;
    signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** Whether {@linkcode MessageQueueNotifications.close} was called, or the queue closed. */
  get closed(): boolean {
    return this.#socket < 0 || this.#queue.closed();
  }

  /**
   * Whether a notice came (or the queue held messages when registering) since the last wait,
   * without waiting; registers again first when the last registration was used up.
   *
   * @returns `true` when the queue may hold messages to receive now.
   * @throws {Deno.errors.BadResource} when this or the queue is closed.
   * @throws {Deno.errors.Busy} when another process registered between two notices (after
   * handing over the notice that came before it).
   * @example
   * ```ts
   * import { MessageQueue } from "@posix/ipc/mqueue";
   *
   * using queue = MessageQueue.create(`/try-notice-${Deno.pid}`);
   * using notices = queue.notifications();
   * console.log(notices.tryWait()); // false
   * ```
   */
  tryWait(): boolean {
    const fd = this.#queueFd();
    const { wokenUp, removed } = readNotices(this.#socket, this.#cookie, this.#operation);
    if (wokenUp || removed) this.#armed = false; // each registration ends with one notice
    if (wokenUp) this.#owed = true;
    if (!this.#armed) {
      try {
        register(fd, this.#socket, this.#cookie, this.#operation);
      } catch (error) {
        // Another process registered since the notice: hand the notice over; the next call
        // tries again, and throws if that process still holds the queue.
        if (!this.#owed) throw error;
        this.#owed = false;
        return true;
      }
      this.#armed = true;
      // Removed from outside (this process closed another descriptor of the queue): a message
      // may have come while nobody was registered.
      if (removed && !this.#owed) this.#owed = this.#queue.currentMessages() > 0;
    }
    const owed = this.#owed;
    this.#owed = false;
    return owed;
  }

  /**
   * Waits, without blocking the event loop, until the empty queue receives a message (at once
   * when a notice came since the last wait), registered again before it resolves.
   *
   * @param options `timeout` (ms) and `signal`.
   * @throws {Deno.errors.TimedOut} after `timeout`.
   * @throws {Deno.errors.BadResource} when this or the queue is closed, also while waiting.
   * @example
   * ```ts
   * import { MessageQueue } from "@posix/ipc/mqueue";
   *
   * using queue = MessageQueue.create(`/wait-notice-${Deno.pid}`);
   * using notices = queue.notifications();
   * setTimeout(() => queue.sendSync("ping"), 10);
   * await notices.wait({ timeout: 5000 });
   * console.log(queue.attributes.currentMessages); // 1
   * ```
   */
  async wait(options: WaitOptions = {}): Promise<void> {
    const what = `wait for a message on ${this.#queue.label}`;
    const wait = readWaitOptions(options, what);
    const socket = this.#open();
    await waitUntil<true>(wait, {
      what,
      attempt: () => this.tryWait() ? true : RETRY,
      sleep: (ms) => pollAsync(socket, POLLIN, ms),
      assertOpen: () => void this.#queueFd(),
    });
  }

  /**
   * The same as {@linkcode MessageQueueNotifications.wait}, blocking this thread: for workers and
   * scripts. Registers again before it returns.
   *
   * @param options `timeout` (ms); without one it waits until the empty queue receives a message.
   * @throws {Deno.errors.TimedOut} after `timeout`.
   * @throws {Deno.errors.BadResource} when this or the queue is closed.
   * @example
   * ```ts
   * import { MessageQueue } from "@posix/ipc/mqueue";
   *
   * using queue = MessageQueue.create(`/wait-sync-notice-${Deno.pid}`);
   * using notices = queue.notifications();
   * queue.sendSync("ping"); // the empty queue receives a message: a notice
   * notices.waitSync({ timeout: 5000 });
   * console.log(queue.tryReceive()?.data.length); // 4
   * ```
   */
  waitSync(options: { timeout?: number } = {}): void {
    const what = `wait for a message on ${this.#queue.label}`;
    const { timeout } = readWaitOptions(ownOptions(options, `${what} options`), what);
    const socket = this.#open();
    waitUntilSync<true>({ timeout }, {
      what,
      attempt: () => this.tryWait() ? true : RETRY,
      sleep: (ms) => pollSync(socket, POLLIN, ms),
      assertOpen: () => void this.#queueFd(),
    });
  }

  /**
   * The adapter through which {@linkcode select} waits for a notice: a try is
   * {@linkcode MessageQueueNotifications.tryWait}; a wait polls the notice socket.
   *
   * @returns The adapter; see `@posix/ipc/select`.
   * @example
   * ```ts
   * import { MessageQueue } from "@posix/ipc/mqueue";
   * import { select } from "@posix/ipc/select";
   *
   * using queue = MessageQueue.create(`/select-notice-${Deno.pid}`);
   * using notices = queue.notifications();
   * setTimeout(() => queue.sendSync("x"), 10);
   * console.log((await select([notices], { timeout: 5000 })).index); // 0
   * ```
   */
  [selectable](): SelectAdapter<void> {
    return {
      try: () => this.tryWait() ? { value: undefined } : undefined,
      pollFd: () => this.#open(),
    };
  }

  /**
   * Yields each time the empty queue received a message, registered again before it yields;
   * ends when this or the queue is closed, or the `signal` given to `notifications()` aborts.
   * Leaving the loop (`break`, `return`, a throw) closes the registration, as `close()` does:
   * the kernel's one registration per queue is free again for any process, and
   * `for await (const _ of queue.notifications())` leaves nothing behind.
   *
   * @returns An async iterator of the notices.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<void> {
    try {
      while (!this.closed) {
        try {
          await this.wait();
        } catch (error) {
          if (error instanceof Deno.errors.BadResource && this.closed) return;
          throw error;
        }
        yield;
      }
    } finally {
      this.close();
    }
  }

  /**
   * Removes the registration, so that another process may register, and closes the socket;
   * pending waits reject with `BadResource` within 100 ms. Closing the queue handle does the
   * same. Closing again does nothing.
   */
  close(): void {
    if (this.#socket < 0) return;
    const socket = this.#socket;
    this.#socket = -1;
    closeWhenUnreachable.unregister(this);
    this.#queue.registrations.forget(this.#tracked);
    this.#signal?.removeEventListener("abort", this.#onAbort);
    try {
      // Closing the queue removed it already. Otherwise only a live registration of ours is
      // removed: once used up, one of another object of this process may hold the queue.
      if (!this.#queue.closed()) {
        const { wokenUp, removed } = readNotices(socket, this.#cookie, this.#operation);
        if (this.#armed && !wokenUp && !removed) deregister(this.#queue.fd(), this.#operation);
      }
    } finally {
      closeFd(socket);
    }
  }

  /** Same as {@linkcode MessageQueueNotifications.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  get #operation(): Operation {
    return { action: "register for notices of message queue", objectName: this.#queue.name };
  }

  #open(): number {
    if (this.#socket < 0) throw closedError(`the notifications of ${this.#queue.label}`);
    return this.#socket;
  }

  /**
   * The queue's descriptor. Closing the queue closed this already; should that have failed,
   * this closes it now (the kernel dropped the registration with the descriptor).
   */
  #queueFd(): number {
    this.#open();
    if (this.#queue.closed()) {
      this.close();
      this.#open();
    }
    return this.#queue.fd();
  }
}
