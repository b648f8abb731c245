/**
 * POSIX message queues: discrete messages with priorities between processes, kept by the
 * kernel (`mq_open`). Higher priorities come out first, and messages of one priority in the
 * order sent. Nothing needs /dev/mqueue to be mounted.
 *
 * Sends and receives have async forms that never block the event loop (a queue's descriptor
 * can be polled, as a pipe's can), blocking `…Sync` forms, and `try…` forms that never wait.
 *
 * @example
 * ```ts
 * import { MessageQueue } from "@posix/ipc/mqueue";
 *
 * using queue = MessageQueue.create(`/jobs-${Deno.pid}`, { maxMessages: 8, messageSize: 256 });
 * await queue.send("low", { priority: 1 });
 * await queue.send("high", { priority: 9 });
 * const first = await queue.receive();
 * console.log(new TextDecoder().decode(first.data), first.priority); // "high" 9
 * ```
 *
 * @module
 */

import {
  markCreated,
  type OpenOrCreateSteps,
  openOrCreateSyncWith,
  type OpenOrCreateWaitOptions,
  openOrCreateWith,
  wasCreated,
} from "./_open_or_create.ts";
import { cstring } from "../ffi/cstring.ts";
import {
  EAGAIN,
  EINTR,
  ENOENT,
  MQ_PRIO_MAX,
  O_CREAT,
  O_EXCL,
  O_NONBLOCK,
  O_RDONLY,
  O_RDWR,
  O_WRONLY,
  POLLIN,
  POLLOUT,
  RLIMIT_MSGQUEUE,
} from "../ffi/constants.ts";
import { mq_attr } from "../ffi/layout.ts";
import { errno, libc } from "../ffi/libc.ts";
import {
  ConstructorToken,
  describe,
  formatBytes,
  optionalBoolean,
  optionsObject,
  ownOptions,
  plainBytes,
  realLength,
  validateInteger,
  validateMode,
  validateName,
} from "./_validate.ts";
import {
  deadlineAfter,
  pollAsync,
  pollSync,
  readWaitOptions,
  RETRY,
  validateWaitOptions,
  type WaitOptions,
  waitUntil,
} from "./_wait.ts";
import { validateIntoBuffer } from "./channel/slab.ts";
import { check, closedError, errnoCode, type Operation, removed, systemError } from "./errors.ts";
import { closeFd } from "./fd.ts";
import { selectable, type SelectAdapter } from "./select/protocol.ts";
import { markOwned } from "./_owned.ts";
import { createUnderName, validateNameOrNull } from "./_unique_name.ts";
import {
  changeMode,
  changeOwner,
  type Permissions,
  permissionsOf,
  validateOwner,
  validatePermissionBits,
} from "./_ownership.ts";
import { readProcNumber, resourceLimit } from "./_proc.ts";
import {
  type MessageQueueNotifications,
  notificationsOf,
  QueueRegistrations,
} from "./mqueue_notifications.ts";

export type { WaitOptions } from "./_wait.ts";
export type { Permissions } from "./_ownership.ts";
export type { OpenOrCreateWaitOptions } from "./_open_or_create.ts";
export { MessageQueueNotifications } from "./mqueue_notifications.ts";

/** Options of {@linkcode MessageQueue.notifications}. */
export interface NotificationOptions {
  /** Ends the registration (as `close()` does) when it aborts. */
  signal?: AbortSignal;
}

const encoder = new TextEncoder();

/** Options of {@linkcode MessageQueue.create}. */
export interface CreateMessageQueueOptions {
  /** How many messages the queue holds before senders wait. Default 10. */
  maxMessages?: number;
  /** The largest message in bytes. Default 8192. */
  messageSize?: number;
  /**
   * Permission bits for the new name, 0 to 0o777. Default `0o600`. The queue gets exactly these
   * bits, whatever the umask: it is created with them masked by the umask, then set to them
   * before `create` returns; someone who opens it in between can only have been given fewer
   * permissions, never more.
   */
  mode?: number;
  /** Keep the queue when this handle closes. Default `false`: the creator removes it. */
  persist?: boolean;
}

/** Options of {@linkcode MessageQueue.open}: which directions this handle may use. */
export interface OpenMessageQueueOptions {
  /** Open for receiving. Default `true`. */
  read?: boolean;
  /** Open for sending. Default `true`. */
  write?: boolean;
}

/** Options of {@linkcode MessageQueue.openOrCreate}. */
export interface OpenOrCreateMessageQueueOptions
  extends CreateMessageQueueOptions, OpenMessageQueueOptions, OpenOrCreateWaitOptions {}

/** Options of the send methods. */
export interface SendOptions extends WaitOptions {
  /** 0 to 32767; higher comes out first. Default 0. */
  priority?: number;
}

/** A message received. */
export interface Message {
  /** Its bytes (a copy that the caller owns). */
  readonly data: Uint8Array;
  /** Its priority. */
  readonly priority: number;
}

/** What `receiveInto` received: the message is the buffer's first `length` bytes. */
export interface ReceivedInto {
  /** The message's length in bytes. */
  readonly length: number;
  /** Its priority. */
  readonly priority: number;
}

/** A queue's attributes, from `mq_getattr`. */
export interface MessageQueueAttributes {
  /** How many messages it holds before senders wait. */
  readonly maxMessages: number;
  /** The largest message in bytes. */
  readonly messageSize: number;
  /** How many messages are waiting in it now. */
  readonly currentMessages: number;
}

/** Checks a queue's capacity or message size: a positive integer (the kernel judges the limit). */
function validateCount(value: unknown, what: string, unit: string): number {
  return validateInteger(
    value,
    what,
    1,
    Number.MAX_SAFE_INTEGER,
    `a number of ${unit}, 1 or more; /proc/sys/fs/mqueue has the limits`,
  );
}

/** Why mq_open failed, in terms of the limit that stopped it and how to raise it. */
function limitHint(code: string, maxMessages: number, messageSize: number): string | undefined {
  if (code === "EINVAL") {
    const msgMax = readProcNumber("/proc/sys/fs/mqueue/msg_max");
    const sizeMax = readProcNumber("/proc/sys/fs/mqueue/msgsize_max");
    const over = [
      msgMax !== undefined && maxMessages > msgMax &&
      `maxMessages ${maxMessages} is over /proc/sys/fs/mqueue/msg_max (${msgMax})`,
      sizeMax !== undefined && messageSize > sizeMax &&
      `messageSize ${messageSize} is over /proc/sys/fs/mqueue/msgsize_max (${sizeMax})`,
    ].filter(Boolean);
    if (over.length > 0) {
      return `${over.join(" and ")}; ask for less, or raise the limit as root ` +
        `(sysctl fs.mqueue.msg_max=… fs.mqueue.msgsize_max=…)`;
    }
  }
  if (code === "EMFILE" || code === "ENOMEM") {
    const limit = resourceLimit(RLIMIT_MSGQUEUE)?.soft;
    const current = limit === undefined ? "unknown" : formatBytes(limit);
    return `the user's RLIMIT_MSGQUEUE (${current}) may be used up: each queue reserves about ` +
      `maxMessages × messageSize (${formatBytes(maxMessages * messageSize)} here); close or ` +
      `unlink queues, or raise it (ulimit -q, or limits.conf's msgqueue); with EMFILE the ` +
      `process may also be out of file descriptors`;
  }
  if (code === "ENOSPC") {
    const queues = readProcNumber("/proc/sys/fs/mqueue/queues_max");
    return `the system has /proc/sys/fs/mqueue/queues_max (${queues}) queues already`;
  }
  return undefined;
}

function readAttributes(fd: number, operation: Operation): MessageQueueAttributes {
  const attributes = new BigInt64Array(mq_attr.size / 8);
  check(libc().mq_getattr(fd, attributes), "mq_getattr", operation);
  return {
    maxMessages: Number(attributes[mq_attr.mq_maxmsg / 8]),
    messageSize: Number(attributes[mq_attr.mq_msgsize / 8]),
    currentMessages: Number(attributes[mq_attr.mq_curmsgs / 8]),
  };
}

/** What a handle holds, kept apart from the handle so that its finalizer can use it. */
interface QueueLease {
  readonly fd: number;
  /** The name to remove when the handle goes: set for its creator without `persist`. */
  ownedName: string | null;
}

/** The safety net for a handle dropped without `close()`: close its descriptor, remove its name. */
const releaseWhenUnreachable = new FinalizationRegistry<QueueLease>((lease) => {
  libc().close(lease.fd);
  if (lease.ownedName) libc().mq_unlink(cstring(lease.ownedName));
});

const token = new ConstructorToken("MessageQueue", "MessageQueue.create() or open()");

let createQueue: (fd: number, name: string, ownedName: string | null) => MessageQueue;

/**
 * A POSIX message queue. The handle that created it owns the name and removes it when closed,
 * unless created with `persist: true`.
 *
 * @example Iterating until the handle is closed
 * ```ts
 * import { MessageQueue } from "@posix/ipc/mqueue";
 *
 * using queue = MessageQueue.create(`/log-${Deno.pid}`);
 * queue.sendSync("one");
 * queue.sendSync("two");
 * setTimeout(() => queue.close(), 50);
 * for await (const message of queue) console.log(new TextDecoder().decode(message.data));
 * ```
 */
export class MessageQueue implements Disposable, AsyncIterable<Message> {
  #fd: number;
  readonly #name: string;
  readonly #lease: QueueLease;
  readonly #messageSize: number;
  readonly #scratch: Uint8Array<ArrayBuffer>;
  readonly #priority = new Uint32Array(1);
  /** What `notifications()` made, closed with this handle. */
  readonly #registrations = new QueueRegistrations();

  static {
    createQueue = (fd, name, ownedName) => new MessageQueue(token, fd, name, ownedName);
  }

  private constructor(key: ConstructorToken, fd: number, name: string, ownedName: string | null) {
    token.check(key);
    this.#fd = fd;
    this.#name = name;
    this.#lease = { fd, ownedName };
    this.#messageSize = readAttributes(fd, this.#operation("read the attributes of")).messageSize;
    releaseWhenUnreachable.register(this, this.#lease, this);
    this.#scratch = new Uint8Array(this.#messageSize);
  }

  /**
   * Creates a queue; fails if the name exists. With `null` for a name, a unique one is
   * generated (`/posix-ipc-` and 128 random bits, in hex): read it from
   * {@linkcode MessageQueue.name} and send it to the processes that should open the queue. It
   * is owned like a given name.
   *
   * @param name "/" then 1 to 254 bytes, with no other "/"; or `null` to generate one.
   * @param options Its capacity (`maxMessages`), `messageSize`, `mode` and `persist`.
   * @returns The queue, open for sending and receiving; this handle owns the name.
   * @throws {Deno.errors.AlreadyExists} when the name exists.
   * @throws {IpcError} over a kernel limit, with the limit, its value and how to raise it.
   * @throws {RangeError} for sizes that are not positive integers, or a bad mode.
   * @throws {TypeError} for a bad name, options that are not an object, a size that is not a
   * number, or a `persist` that is not a boolean.
   * @example
   * ```ts
   * import { MessageQueue } from "@posix/ipc/mqueue";
   *
   * using queue = MessageQueue.create(`/tasks-${Deno.pid}`, { maxMessages: 10, messageSize: 1024 });
   * console.log(queue.attributes); // { maxMessages: 10, messageSize: 1024, currentMessages: 0 }
   * ```
   * @example A generated name, to pass by message
   * ```ts
   * import { MessageQueue } from "@posix/ipc/mqueue";
   *
   * using inbox = MessageQueue.create(null, { maxMessages: 4, messageSize: 64 });
   * using sender = MessageQueue.open(inbox.name, { read: false }); // where the name was sent
   * sender.sendSync("hi");
   * console.log(inbox.tryReceive()?.data.length); // 2
   * ```
   */
  static create(name: string | null, options: CreateMessageQueueOptions = {}): MessageQueue {
    const given = validateNameOrNull(name, "message queue");
    // Own options, each read once, however many names are tried.
    const own = ownOptions(options, "MessageQueue.create() options");
    return createUnderName(given, (unique) => MessageQueue.#create(unique, own));
  }

  /** {@linkcode MessageQueue.create} under a name that is checked already. */
  static #create(name: string, given: CreateMessageQueueOptions): MessageQueue {
    const maxMessages = validateCount(given.maxMessages ?? 10, "maxMessages", "messages");
    const messageSize = validateCount(given.messageSize ?? 8192, "messageSize", "bytes");
    const mode = validateMode(given.mode ?? 0o600);
    const persist = optionalBoolean(given.persist, "persist") ?? false;
    const attributes = new BigInt64Array(mq_attr.size / 8);
    attributes[mq_attr.mq_maxmsg / 8] = BigInt(maxMessages);
    attributes[mq_attr.mq_msgsize / 8] = BigInt(messageSize);
    const path = cstring(name);
    const fd = libc().mq_open(path, O_RDWR | O_CREAT | O_EXCL | O_NONBLOCK, mode, attributes);
    if (fd < 0) {
      const code = errno();
      throw systemError(code, "mq_open", {
        action: "create message queue",
        objectName: name,
        hint: limitHint(errnoCode(code), maxMessages, messageSize),
      });
    }
    try {
      // The mode asked, not the umask's; an opener before this got fewer permissions, not more.
      changeMode(fd, mode, { action: "create message queue", objectName: name });
    } catch (error) {
      closeFd(fd);
      libc().mq_unlink(path);
      throw error;
    }
    if (!persist) markOwned(fd); // lets `ipc gc` prove it abandoned if we crash
    return markCreated(createQueue(fd, name, persist ? null : name));
  }

  /**
   * Opens the named queue, or creates it if no queue has that name, without races: of many
   * processes calling this at once, exactly one creates it (mq_open with O_EXCL publishes a
   * queue only with its attributes set), and a queue removed between the tries is created
   * afresh. {@linkcode MessageQueue.created} tells which happened; the creating handle owns
   * the name as {@linkcode MessageQueue.create}'s does. An opened queue keeps its own
   * attributes.
   *
   * @param name The queue's name.
   * @param options `maxMessages`, `messageSize`, `mode` and `persist` for creating; `read` and
   * `write` for opening; `timeout` (default 5000 ms) and `signal` bound the retries.
   * @returns The queue.
   * @throws {Deno.errors.PermissionDenied} when its mode does not allow this user.
   * @example
   * ```ts
   * import { MessageQueue } from "@posix/ipc/mqueue";
   *
   * const name = `/jobs-${Deno.pid}`;
   * using first = await MessageQueue.openOrCreate(name, { maxMessages: 4 });
   * using second = await MessageQueue.openOrCreate(name, { maxMessages: 8 });
   * console.log(first.created, second.created, second.attributes.maxMessages); // true false 4
   * ```
   */
  static async openOrCreate(
    name: string,
    options: OpenOrCreateMessageQueueOptions = {},
  ): Promise<MessageQueue> {
    const { wait, steps } = MessageQueue.#openOrCreateSteps(name, options, "openOrCreate");
    return (await openOrCreateWith(wait, steps)).handle;
  }

  /**
   * {@linkcode MessageQueue.openOrCreate} for code that cannot await: the same protocol, with
   * the retries (up to `timeout`, default 5000 ms) blocking this thread in short sleeps.
   *
   * @param name The queue's name.
   * @param options As for {@linkcode MessageQueue.openOrCreate}; `signal` is only checked
   * before the wait, since nothing can abort it while the thread blocks.
   * @returns The queue.
   * @throws {Deno.errors.PermissionDenied} when its mode does not allow this user.
   * @example
   * ```ts
   * import { MessageQueue } from "@posix/ipc/mqueue";
   *
   * const name = `/sync-jobs-${Deno.pid}`;
   * using first = MessageQueue.openOrCreateSync(name, { maxMessages: 4 });
   * using second = MessageQueue.openOrCreateSync(name, { maxMessages: 8, timeout: 1000 });
   * console.log(first.created, second.created, second.attributes.maxMessages); // true false 4
   * ```
   */
  static openOrCreateSync(
    name: string,
    options: OpenOrCreateMessageQueueOptions = {},
  ): MessageQueue {
    const { wait, steps } = MessageQueue.#openOrCreateSteps(name, options, "openOrCreateSync");
    return openOrCreateSyncWith(wait, steps).handle;
  }

  /** Checks openOrCreate's arguments and lays out its steps, for the async and sync forms. */
  static #openOrCreateSteps(
    name: string,
    options: OpenOrCreateMessageQueueOptions,
    call: string,
  ): { wait: OpenOrCreateWaitOptions; steps: OpenOrCreateSteps<MessageQueue> } {
    validateName(name, "message queue");
    const own = ownOptions(options, `MessageQueue.${call}() options`);
    const create = {
      maxMessages: own.maxMessages,
      messageSize: own.messageSize,
      mode: own.mode,
      persist: own.persist,
    };
    const open = { read: own.read, write: own.write };
    validateCount(create.maxMessages ?? 10, "maxMessages", "messages");
    validateCount(create.messageSize ?? 8192, "messageSize", "bytes");
    validateMode(create.mode ?? 0o600);
    optionalBoolean(create.persist, "persist");
    if (
      optionalBoolean(open.read, "read") === false && optionalBoolean(open.write, "write") === false
    ) {
      throw new TypeError(`Cannot open message queue "${name}": open it for read, write or both`);
    }
    return {
      wait: own,
      steps: {
        what: `open or create message queue "${name}"`,
        create: () => MessageQueue.create(name, create),
        open: () => MessageQueue.open(name, open),
      },
    };
  }

  /**
   * Opens an existing queue. This handle never removes the name.
   *
   * @param name The queue's name.
   * @param options Which directions to open: `read` and `write`, both by default.
   * @returns The queue.
   * @throws {Deno.errors.NotFound} when no queue has that name.
   * @throws {Deno.errors.PermissionDenied} when its mode does not allow this user.
   * @throws {TypeError} for a bad name, options that are not an object, `read` or `write`
   * that is not a boolean, or both `false`.
   * @example
   * ```ts
   * import { MessageQueue } from "@posix/ipc/mqueue";
   *
   * const name = `/inbox-${Deno.pid}`;
   * using owner = MessageQueue.create(name);
   * using sender = MessageQueue.open(name, { read: false }); // as another process would
   * sender.sendSync("hi");
   * console.log(owner.tryReceive()?.data.length); // 2
   * ```
   */
  static open(name: string, options: OpenMessageQueueOptions = {}): MessageQueue {
    validateName(name, "message queue");
    const given = optionsObject(options, "MessageQueue.open() options");
    const read = optionalBoolean(given.read, "read") ?? true;
    const write = optionalBoolean(given.write, "write") ?? true;
    if (!read && !write) {
      throw new TypeError(`Cannot open message queue "${name}": open it for read, write or both`);
    }
    const access = read && write ? O_RDWR : read ? O_RDONLY : O_WRONLY;
    const fd = check(libc().mq_open(cstring(name), access | O_NONBLOCK, 0, null), "mq_open", {
      action: "open message queue",
      objectName: name,
    });
    return createQueue(fd, name, null);
  }

  /**
   * Removes a queue's name; handles that have it open keep using it.
   *
   * @param name The queue's name.
   * @throws {Deno.errors.NotFound} when no queue has that name.
   * @example
   * ```ts
   * import { MessageQueue } from "@posix/ipc/mqueue";
   *
   * const name = `/kept-queue-${Deno.pid}`;
   * MessageQueue.create(name, { persist: true }).close();
   * MessageQueue.unlink(name);
   * ```
   */
  static unlink(name: string): void {
    validateName(name, "message queue");
    check(libc().mq_unlink(cstring(name)), "mq_unlink", {
      action: "remove message queue",
      objectName: name,
    });
  }

  /** The queue's name. */
  get name(): string {
    return this.#name;
  }

  /**
   * Whether this handle's call created the queue: `true` from {@linkcode MessageQueue.create},
   * and from {@linkcode MessageQueue.openOrCreate} when it created it.
   */
  get created(): boolean {
    return wasCreated(this);
  }

  /** Whether this handle was closed. */
  get closed(): boolean {
    return this.#fd < 0;
  }

  /**
   * The queue's descriptor (Linux makes it one). **UNSAFE**: valid only while open.
   *
   * @throws {Deno.errors.BadResource} when closed.
   */
  get fd(): number {
    return this.#open();
  }

  /**
   * The queue's capacity, message size and current number of messages.
   *
   * @throws {Deno.errors.BadResource} when closed.
   */
  get attributes(): MessageQueueAttributes {
    return readAttributes(this.#open(), this.#operation("read the attributes of"));
  }

  /**
   * The queue's permission bits and owner, as the kernel has them now.
   *
   * @throws {Deno.errors.BadResource} when closed.
   * @example
   * ```ts
   * import { MessageQueue } from "@posix/ipc/mqueue";
   *
   * using queue = MessageQueue.create(`/perms-queue-${Deno.pid}`, { mode: 0o620 });
   * console.log(queue.permissions.mode.toString(8)); // "620"
   * ```
   */
  get permissions(): Permissions {
    return permissionsOf(this.#open(), this.#operation("read the mode of"));
  }

  /**
   * Sets the queue's permission bits (fchmod) to exactly `mode`, whatever the umask. Handles
   * open already keep the access they had.
   *
   * @param mode Permission bits, 0 to 0o777.
   * @throws {RangeError} for a mode outside 0 to 0o777.
   * @throws {Deno.errors.PermissionDenied} when this process neither owns it nor is root.
   * @throws {Deno.errors.BadResource} when closed.
   * @example
   * ```ts
   * import { MessageQueue } from "@posix/ipc/mqueue";
   *
   * using queue = MessageQueue.create(`/open-to-group-${Deno.pid}`);
   * queue.chmod(0o660);
   * ```
   */
  chmod(mode: number): void {
    const bits = validatePermissionBits(mode);
    changeMode(this.#open(), bits, this.#operation("change the mode of"));
  }

  /**
   * Gives the queue to another user and group (fchown), as root may; its owner may only change
   * its group, to one of its own.
   *
   * @param uid The new owner's user id (0 to 2^32 - 2), or -1 to keep it.
   * @param gid The new group id, or -1 (the default) to keep it.
   * @throws {RangeError} for an id out of range.
   * @throws {Deno.errors.PermissionDenied} when this process may not make the change.
   * @throws {Deno.errors.BadResource} when closed.
   * @example
   * ```ts
   * import { MessageQueue } from "@posix/ipc/mqueue";
   *
   * using queue = MessageQueue.create(`/owned-queue-${Deno.pid}`);
   * queue.chown(-1, queue.permissions.gid); // keeps both
   * ```
   */
  chown(uid: number, gid: number = -1): void {
    const [user, group] = validateOwner(uid, gid);
    changeOwner(this.#open(), user, group, this.#operation("change the owner of"));
  }

  /**
   * Sends a message, waiting without blocking the event loop while the queue is full.
   *
   * @param data The message: bytes, or text sent as UTF-8.
   * @param options `priority` (0 to 32767), `timeout` (ms) and `signal`.
   * @throws {RangeError} for a message longer than the queue's message size, or a bad priority.
   * @throws {TypeError} for a message whose buffer was transferred away, also while waiting.
   * @throws {Deno.errors.TimedOut} after `timeout`.
   * @throws {Deno.errors.BadResource} when the handle is closed, also while waiting.
   * @example
   * ```ts
   * import { MessageQueue } from "@posix/ipc/mqueue";
   *
   * using queue = MessageQueue.create(`/send-${Deno.pid}`);
   * await queue.send(new Uint8Array([1, 2, 3]), { priority: 5, timeout: 1000 });
   * ```
   */
  async send(data: Uint8Array | string, options: SendOptions = {}): Promise<void> {
    const wait = readWaitOptions(options, `send to ${this.#label}`); // read once
    const [bytes, priority] = this.#message(data, options.priority);
    const fd = this.#open();
    await waitUntil<true>(wait, {
      what: `send to ${this.#label}`,
      attempt: () => this.#trySend(bytes, priority) ? true : RETRY,
      sleep: (ms) => pollAsync(fd, POLLOUT, ms),
      assertOpen: () => void this.#open(),
    });
  }

  /**
   * Sends a message, blocking this thread while the queue is full.
   *
   * @param data The message: bytes, or text sent as UTF-8.
   * @param options `priority` and `timeout` (ms).
   * @throws {Deno.errors.TimedOut} after `timeout`.
   * @example
   * ```ts
   * import { MessageQueue } from "@posix/ipc/mqueue";
   *
   * using queue = MessageQueue.create(`/sync-${Deno.pid}`);
   * queue.sendSync("now");
   * ```
   */
  sendSync(data: Uint8Array | string, options: { priority?: number; timeout?: number } = {}): void {
    const given = optionsObject(options, "MessageQueue.sendSync() options");
    const [bytes, priority] = this.#message(data, given.priority);
    this.#blockUntil(given.timeout, POLLOUT, "send to", () => this.#trySend(bytes, priority));
  }

  /**
   * Sends a message if the queue has room, without waiting.
   *
   * @param data The message: bytes, or text sent as UTF-8.
   * @param options `priority`.
   * @returns `false` when the queue is full.
   * @example
   * ```ts
   * import { MessageQueue } from "@posix/ipc/mqueue";
   *
   * using queue = MessageQueue.create(`/full-${Deno.pid}`, { maxMessages: 1 });
   * console.log(queue.trySend("a"), queue.trySend("b")); // true false
   * ```
   */
  trySend(data: Uint8Array | string, options: { priority?: number } = {}): boolean {
    const given = optionsObject(options, "MessageQueue.trySend() options");
    const [bytes, priority] = this.#message(data, given.priority);
    return this.#trySend(bytes, priority);
  }

  /**
   * Receives the oldest message of the highest priority, waiting without blocking the event
   * loop while the queue is empty.
   *
   * @param options `timeout` (ms) and `signal`.
   * @returns The message.
   * @throws {Deno.errors.TimedOut} after `timeout`.
   * @throws {Deno.errors.BadResource} when the handle is closed, also while waiting.
   * @example
   * ```ts
   * import { MessageQueue } from "@posix/ipc/mqueue";
   *
   * using queue = MessageQueue.create(`/recv-${Deno.pid}`);
   * setTimeout(() => queue.sendSync("later"), 10);
   * console.log((await queue.receive({ timeout: 5000 })).data.length); // 5
   * ```
   */
  async receive(options: WaitOptions = {}): Promise<Message> {
    const wait = readWaitOptions(options, `receive from ${this.#label}`);
    const fd = this.#open();
    return await waitUntil<Message>(wait, {
      what: `receive from ${this.#label}`,
      attempt: () => this.tryReceive() ?? RETRY,
      sleep: (ms) => pollAsync(fd, POLLIN, ms),
      assertOpen: () => void this.#open(),
    });
  }

  /**
   * Receives a message, blocking this thread while the queue is empty.
   *
   * @param options `timeout` (ms).
   * @returns The message.
   * @throws {Deno.errors.TimedOut} after `timeout`.
   * @example
   * ```ts
   * import { MessageQueue } from "@posix/ipc/mqueue";
   *
   * using queue = MessageQueue.create(`/recv-sync-${Deno.pid}`);
   * queue.sendSync("x");
   * console.log(queue.receiveSync({ timeout: 100 }).priority); // 0
   * ```
   */
  receiveSync(options: { timeout?: number } = {}): Message {
    const { timeout } = optionsObject(options, "MessageQueue.receiveSync() options");
    let message: Message | null = null;
    this.#blockUntil(
      timeout,
      POLLIN,
      "receive from",
      () => (message = this.tryReceive()) !== null,
    );
    return message!;
  }

  /**
   * Receives a message if one is waiting, without waiting.
   *
   * @returns The message, or `null` when the queue is empty.
   * @throws {Deno.errors.BadResource} when closed.
   * @example
   * ```ts
   * import { MessageQueue } from "@posix/ipc/mqueue";
   *
   * using queue = MessageQueue.create(`/empty-${Deno.pid}`);
   * console.log(queue.tryReceive()); // null
   * ```
   */
  tryReceive(): Message | null {
    const n = this.#receive(this.#scratch);
    if (n < 0) return null;
    return { data: this.#scratch.slice(0, n), priority: this.#priority[0]! };
  }

  /**
   * Receives a message into `buffer`, if one is waiting: no allocation for its bytes (as
   * posix-mq's `receive(buffer)`). The message is the buffer's first `length` bytes.
   *
   * @param buffer Where the bytes go, from its start: at least the queue's `messageSize` bytes
   *   (the kernel's rule for `mq_receive`), whatever the next message's length.
   * @returns The length and priority, or `null` when the queue is empty (as `tryReceive`).
   * @throws {RangeError} when `buffer` is shorter than the queue's `messageSize`.
   * @throws {TypeError} when `buffer` is not a Uint8Array or was transferred away (detached).
   * @throws {Deno.errors.BadResource} when closed.
   * @example
   * ```ts
   * import { MessageQueue } from "@posix/ipc/mqueue";
   *
   * using queue = MessageQueue.create(`/into-${Deno.pid}`, { messageSize: 64 });
   * const buffer = new Uint8Array(queue.attributes.messageSize);
   * queue.sendSync("hi", { priority: 3 });
   * console.log(queue.tryReceiveInto(buffer)); // { length: 2, priority: 3 }
   * console.log(queue.tryReceiveInto(buffer)); // null
   * ```
   */
  tryReceiveInto(buffer: Uint8Array): ReceivedInto | null {
    return this.#tryReceiveInto(buffer);
  }

  /**
   * Receives a message into `buffer`, waiting without blocking the event loop while the queue
   * is empty: the loop that allocates nothing per message's bytes, for a caller that is done
   * with each message before the next (the next call overwrites the buffer).
   *
   * @param buffer Where the bytes go: at least the queue's `messageSize` bytes.
   * @param options `timeout` (ms) and `signal`.
   * @returns The length and priority of the message.
   * @throws {RangeError} when `buffer` is shorter than the queue's `messageSize`.
   * @throws {TypeError} when `buffer` is not a Uint8Array or was transferred away (detached).
   * @throws {Deno.errors.TimedOut} after `timeout`.
   * @throws {Deno.errors.BadResource} when the handle is closed, also while waiting.
   * @example
   * ```ts
   * import { MessageQueue } from "@posix/ipc/mqueue";
   *
   * using queue = MessageQueue.create(`/into-async-${Deno.pid}`, { messageSize: 128 });
   * const buffer = new Uint8Array(128);
   * setTimeout(() => queue.sendSync("later"), 10);
   * const { length } = await queue.receiveInto(buffer, { timeout: 5000 });
   * console.log(new TextDecoder().decode(buffer.subarray(0, length))); // "later"
   * ```
   */
  async receiveInto(buffer: Uint8Array, options: WaitOptions = {}): Promise<ReceivedInto> {
    const wait = readWaitOptions(options, `receive from ${this.#label}`);
    this.#intoBuffer(buffer);
    const fd = this.#open();
    return await waitUntil<ReceivedInto>(wait, {
      what: `receive from ${this.#label}`,
      attempt: () => this.#tryReceiveInto(buffer) ?? RETRY,
      sleep: (ms) => pollAsync(fd, POLLIN, ms),
      assertOpen: () => void this.#open(),
    });
  }

  /**
   * Receives a message into `buffer`, blocking this thread while the queue is empty.
   *
   * @param buffer Where the bytes go: at least the queue's `messageSize` bytes.
   * @param options `timeout` (ms).
   * @returns The length and priority of the message.
   * @throws {RangeError} when `buffer` is shorter than the queue's `messageSize`.
   * @throws {Deno.errors.TimedOut} after `timeout`.
   * @example
   * ```ts
   * import { MessageQueue } from "@posix/ipc/mqueue";
   *
   * using queue = MessageQueue.create(`/into-sync-${Deno.pid}`, { messageSize: 16 });
   * queue.sendSync(new Uint8Array([1, 2]), { priority: 1 });
   * console.log(queue.receiveIntoSync(new Uint8Array(16), { timeout: 100 })); // { length: 2, priority: 1 }
   * ```
   */
  receiveIntoSync(buffer: Uint8Array, options: { timeout?: number } = {}): ReceivedInto {
    const { timeout } = optionsObject(options, "MessageQueue.receiveIntoSync() options");
    this.#intoBuffer(buffer);
    let received: ReceivedInto | null = null;
    this.#blockUntil(
      timeout,
      POLLIN,
      "receive from",
      () => (received = this.#tryReceiveInto(buffer)) !== null,
    );
    return received!;
  }

  /**
   * The adapter through which {@linkcode select} receives from this queue: a try is
   * {@linkcode MessageQueue.tryReceive}; a wait polls the queue's descriptor, taking nothing.
   *
   * @returns The adapter; see `@posix/ipc/select`.
   * @example
   * ```ts
   * import { MessageQueue } from "@posix/ipc/mqueue";
   * import { select } from "@posix/ipc/select";
   *
   * using queue = MessageQueue.create(`/select-mq-${Deno.pid}`);
   * queue.sendSync("hello");
   * console.log((await select([queue])).value?.data.length); // 5
   * ```
   */
  [selectable](): SelectAdapter<Message> {
    return {
      try: () => {
        const message = this.tryReceive();
        return message === null ? undefined : { value: message };
      },
      pollFd: () => this.#open(),
    };
  }

  /**
   * Registers this process for notice that the empty queue received a message (`mq_notify`),
   * and returns the registration: an async iterable, a `wait({ timeout, signal })`, a
   * `tryWait()` and a source of `select`. It registers again before each wait ends, so that
   * receiving until the queue is empty after each notice misses no message. The kernel allows
   * one registration per queue across all processes; `close()` (or `using`, or the `signal`
   * aborting, or closing this queue) removes it. See {@linkcode MessageQueueNotifications} for
   * what the kernel does and does not notify.
   *
   * @param options `signal`, which ends the registration when it aborts.
   * @returns The registration.
   * @throws {Deno.errors.Busy} when a process (this one included) is registered already.
   * @throws {Deno.errors.BadResource} when the handle is closed.
   * @throws {TypeError} for options that are not an object, or a `signal` that is not an
   * AbortSignal.
   * @throws The `signal`'s reason when it is aborted already.
   * @example
   * ```ts
   * import { MessageQueue } from "@posix/ipc/mqueue";
   *
   * using queue = MessageQueue.create(`/notify-${Deno.pid}`);
   * using notices = queue.notifications();
   * setTimeout(() => queue.sendSync("job"), 10);
   * for await (const _ of notices) {
   *   for (let m; (m = queue.tryReceive()) !== null;) console.log(m.data.length); // 3
   *   break;
   * }
   * ```
   */
  notifications(options: NotificationOptions = {}): MessageQueueNotifications {
    const { signal } = ownOptions(options, "MessageQueue.notifications() options");
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw new TypeError(
        `Cannot register for notices of ${this.#label}: signal must be an AbortSignal, not ${
          describe(signal)
        }`,
      );
    }
    signal?.throwIfAborted();
    this.#open();
    return notificationsOf({
      name: this.#name,
      label: this.#label,
      fd: () => this.#open(),
      closed: () => this.#fd < 0,
      currentMessages: () =>
        readAttributes(this.#open(), this.#operation("read the attributes of")).currentMessages,
      registrations: this.#registrations,
    }, signal);
  }

  /**
   * Receives messages as they come, until this handle is closed.
   *
   * @returns An async iterator of the messages.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<Message> {
    while (!this.closed) {
      try {
        yield await this.receive();
      } catch (error) {
        if (error instanceof Deno.errors.BadResource && this.closed) return;
        throw error;
      }
    }
  }

  /**
   * Closes this handle; pending sends and receives reject with `BadResource` within 100 ms, the
   * registrations that `notifications()` made through it are closed (their pending waits
   * reject likewise), and the creator removes the name unless created with `persist`. Closing
   * again does nothing.
   */
  close(): void {
    if (this.#fd < 0) return;
    // Forget the number first: if closeFd throws, a second close() must not close it again, when
    // it may belong to another file by then. The owned name goes either way.
    const fd = this.#fd;
    this.#fd = -1;
    releaseWhenUnreachable.unregister(this);
    const name = this.#lease.ownedName;
    this.#lease.ownedName = null;
    try {
      closeFd(fd);
    } finally {
      try {
        // The kernel removed their registration with the descriptor; their sockets go now.
        this.#registrations.closeAll();
      } finally {
        if (name) {
          removed(libc().mq_unlink(cstring(name)), [ENOENT], "mq_unlink", {
            action: "remove message queue",
            objectName: name,
          });
        }
      }
    }
  }

  /** Same as {@linkcode MessageQueue.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  get #label(): string {
    return `message queue "${this.#name}"`;
  }

  #open(): number {
    if (this.#fd < 0) throw closedError(this.#label);
    return this.#fd;
  }

  #operation(verb: string): Operation {
    return { action: verb, objectName: `message queue ${this.#name}` };
  }

  /** Checks a message and its priority before any syscall. */
  #message(data: Uint8Array | string, priority = 0): [Uint8Array, number] {
    let bytes = typeof data === "string" ? encoder.encode(data) : data;
    try {
      if (!(bytes instanceof Uint8Array)) throw new TypeError("not bytes");
      // Its real memory and length: a subclass's `length` could make mq_send read past it.
      bytes = plainBytes(bytes);
    } catch {
      throw new TypeError(
        `Cannot send ${describe(data)} to ${this.#label}: a message is a string or a ` +
          `Uint8Array whose buffer was not transferred away`,
      );
    }
    if (bytes.length > this.#messageSize) {
      throw new RangeError(
        `Cannot send ${bytes.length} bytes to ${this.#label}: its message size is ${this.#messageSize} bytes`,
      );
    }
    return [
      bytes,
      validateInteger(priority, "priority", 0, MQ_PRIO_MAX - 1, "MQ_PRIO_MAX on Linux is 32768"),
    ];
  }

  /** One `mq_receive` into `buffer` (at least `messageSize` bytes): the length, -1 when empty. */
  #receive(buffer: Uint8Array): number {
    const fd = this.#open();
    const n = Number(libc().mq_receive(fd, buffer, BigInt(buffer.length), this.#priority));
    if (n === -1) {
      const code = errno();
      if (code === EAGAIN || code === EINTR) return -1;
      throw systemError(code, "mq_receive", this.#operation("receive from"));
    }
    return n;
  }

  /** Checks `buffer` again before each try: a wait may outlast its caller's hold on it. */
  #tryReceiveInto(buffer: Uint8Array): ReceivedInto | null {
    const length = this.#receive(this.#intoBuffer(buffer));
    return length < 0 ? null : { length, priority: this.#priority[0]! };
  }

  /** Checks the buffer of a `receiveInto` before any syscall. */
  #intoBuffer(buffer: Uint8Array): Uint8Array {
    const into = validateIntoBuffer(buffer);
    if (into.length < this.#messageSize) {
      throw new RangeError(
        `Cannot receive from ${this.#label} into a buffer of ${into.length} bytes: buffer must ` +
          `hold the queue's message size, ${this.#messageSize} bytes (mq_receive's rule)`,
      );
    }
    return into;
  }

  #trySend(bytes: Uint8Array, priority: number): boolean {
    // The real length at each try: a buffer transferred away during send()'s wait reads as
    // empty, and would go as a message of 0 bytes (a TypeError instead).
    const length = realLength(bytes);
    if (libc().mq_send(this.#open(), bytes, BigInt(length), priority) === 0) return true;
    const code = errno();
    if (code === EAGAIN || code === EINTR) return false;
    throw systemError(code, "mq_send", this.#operation("send to"));
  }

  /** The sync forms: try, then block in poll until ready or the deadline passes. */
  #blockUntil(
    timeout: number | undefined,
    events: number,
    verb: string,
    attempt: () => boolean,
  ): void {
    const deadline = deadlineAfter(validateWaitOptions({ timeout }, `${verb} ${this.#label}`));
    while (!attempt()) {
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new Deno.errors.TimedOut(
          `Cannot ${verb} ${this.#label}: timed out after ${timeout} ms`,
        );
      }
      pollSync(this.#fd, events, left); // Infinity: no timeout; a long one is clamped, then resumed
    }
  }
}
