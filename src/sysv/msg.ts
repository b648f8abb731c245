/**
 * System V message queues (msgget/msgsnd/msgrcv): typed messages, received by type.
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
} from "../_open_or_create.ts";
import {
  EAGAIN,
  EIDRM,
  EINTR,
  EINVAL,
  ENOMSG,
  IPC_CREAT,
  IPC_EXCL,
  IPC_NOWAIT,
  IPC_RMID,
  IPC_STAT,
} from "../../ffi/constants.ts";
import { msqid_ds } from "../../ffi/layout.ts";
import { errno, libc } from "../../ffi/libc.ts";
import {
  cKey,
  ConstructorToken,
  describe,
  optionalBoolean,
  optionsObject,
  ownOptions,
  validateInteger,
  validateKey,
  validateMode,
} from "../_validate.ts";
import { delay, readWaitOptions, RETRY, type WaitOptions, waitUntil } from "../_wait.ts";
import { check, closedError, errnoCode, removed, systemError } from "../errors.ts";
import { validateOwner, validatePermissionBits } from "../_ownership.ts";
import {
  changePermissions,
  keyName,
  label,
  readPermissions,
  readTime,
  type SysVPermissions,
  validateOpenKey,
} from "./_common.ts";
import { messageMax, messageTooBig, msggetHint } from "./_limits.ts";

const encoder = new TextEncoder();

/** A System V message: its type and its bytes. */
export interface SysVMessage {
  /** The type, 1 or more. */
  readonly type: number;
  /** The bytes, a copy the caller owns. */
  readonly data: Uint8Array;
}

/** Options of {@linkcode SysVMessageQueue.receive}. */
export interface SysVReceiveOptions extends WaitOptions {
  /**
   * Which message: 0, the first of any type; above 0, the first of that type; below 0, the
   * first of the lowest type up to its absolute value. Default 0.
   */
  type?: number;
  /** Do not wait: fail with `Deno.errors.WouldBlock` when no message matches. */
  noWait?: boolean;
}

/** What {@linkcode SysVMessageQueue.stat} reports. */
export interface SysVMessageQueueStat extends SysVPermissions {
  /** How many messages are in the queue. */
  readonly messages: number;
  /** How many bytes they hold. */
  readonly bytes: number;
  /** The most bytes the queue may hold (msg_qbytes). */
  readonly limit: number;
  /** The pid of the last sender. */
  readonly lastSendPid: number;
  /** The pid of the last receiver. */
  readonly lastReceivePid: number;
  /** When a message was last sent, or `null`. */
  readonly sentAt: Date | null;
  /** When a message was last received, or `null`. */
  readonly receivedAt: Date | null;
  /** When the queue was created or last changed. */
  readonly changedAt: Date | null;
}

/**
 * Waits between tries: System V queues have no timed wait and no descriptor to poll, so an
 * async wait tries again after 1 ms, then 2, 4, … up to 20 ms: a bounded cost when idle, and
 * at most 20 ms late.
 */
function backoff(): (ms: number) => Promise<void> {
  let next = 1;
  return (ms) => {
    const wait = Math.min(ms, next);
    next = Math.min(next * 2, 20);
    return delay(wait);
  };
}

/** What a queue handle owns, kept apart from the handle so that its finalizer can use it. */
interface QueueLease {
  readonly id: number;
  /** Whether to remove the queue when the handle goes: its creator's, without `persist`. */
  owned: boolean;
}

/** The safety net for a queue handle dropped without `close()`: remove what it owns. */
const removeWhenUnreachable = new FinalizationRegistry<QueueLease>((lease) => {
  if (lease.owned) libc().msgctl(lease.id, IPC_RMID, null);
});

const token = new ConstructorToken(
  "SysVMessageQueue",
  "SysVMessageQueue.create() or SysVMessageQueue.open()",
);

let createQueue: (id: number, key: number, owned: boolean) => SysVMessageQueue;

/**
 * A System V message queue. The handle that created it removes it when closed, unless created
 * with `persist: true`.
 *
 * @example Selecting messages by type
 * ```ts
 * import { IPC_PRIVATE, SysVMessageQueue } from "@posix/ipc/sysv";
 *
 * using queue = SysVMessageQueue.create(IPC_PRIVATE);
 * await queue.send(2, "second type");
 * await queue.send(1, "first type");
 * const message = await queue.receive({ type: 1 });
 * console.log(message.type, new TextDecoder().decode(message.data)); // 1 "first type"
 * ```
 */
export class SysVMessageQueue implements Disposable {
  /** The queue's id, valid in every process. */
  readonly id: number;
  /** The key it was created or opened with, as an unsigned 32-bit number (0xdeadbeef). */
  readonly key: number;
  readonly #lease: QueueLease;
  #closed = false;
  readonly #maxSize: number;
  readonly #receiveBuffer: Uint8Array<ArrayBuffer>;

  static {
    createQueue = (id, key, owned) => new SysVMessageQueue(token, id, key, owned);
  }

  private constructor(secret: ConstructorToken, id: number, key: number, owned: boolean) {
    token.check(secret);
    this.id = id;
    this.key = key;
    this.#lease = { id, owned };
    removeWhenUnreachable.register(this, this.#lease, this);
    this.#maxSize = messageMax() ?? 8192;
    this.#receiveBuffer = new Uint8Array(8 + this.#maxSize);
  }

  /**
   * Creates a queue; fails if the key is taken.
   *
   * @param key From `ftok()`, a number agreed on, or `IPC_PRIVATE`: 0 to 0xffffffff.
   * @param options `mode` (default 0o600) and `persist`.
   * @returns The queue; this handle removes it when closed.
   * @throws {Deno.errors.AlreadyExists} when the key is taken.
   * @throws {RangeError} for a key that is not 32 bits, or a bad mode.
   * @throws {TypeError} for options that are not an object, or a `persist` that is not a boolean.
   * @throws {IpcError} with code `ENOSPC` past MSGMNI queues: the message names the limit,
   * its value and how to raise it.
   * @example
   * ```ts
   * import { IPC_PRIVATE, SysVMessageQueue } from "@posix/ipc/sysv";
   *
   * using queue = SysVMessageQueue.create(IPC_PRIVATE, { mode: 0o600 });
   * console.log(queue.stat().messages); // 0
   * ```
   */
  static create(key: number, options: { mode?: number; persist?: boolean } = {}): SysVMessageQueue {
    const unsigned = validateKey(key, "message queue");
    const given = optionsObject(options, "SysVMessageQueue.create() options");
    const mode = validateMode(given.mode ?? 0o600);
    const persist = optionalBoolean(given.persist, "persist") ?? false;
    const id = libc().msgget(cKey(unsigned), IPC_CREAT | IPC_EXCL | mode);
    if (id < 0) {
      const code = errno();
      throw systemError(code, "msgget", {
        action: "create System V message queue",
        objectName: keyName(unsigned),
        hint: msggetHint(errnoCode(code)),
      });
    }
    return markCreated(createQueue(id, unsigned, !persist));
  }

  /**
   * Opens the queue of a key, or creates it if no queue has that key, without races: of many
   * processes calling this at once, exactly one creates it, and a queue removed between the
   * tries is created afresh. `created` tells which happened; the creating handle removes it
   * when closed unless `persist`, as `create`'s does.
   *
   * @param key The key, not IPC_PRIVATE.
   * @param options `mode` and `persist` for creating; `timeout` (default 5000 ms) and `signal`
   * bound the retries.
   * @returns The queue.
   * @example
   * ```ts
   * import { SysVMessageQueue } from "@posix/ipc/sysv";
   *
   * const key = 0x3aa00000 + (Deno.pid & 0xffff);
   * using first = await SysVMessageQueue.openOrCreate(key);
   * using second = await SysVMessageQueue.openOrCreate(key);
   * console.log(first.created, second.created); // true false
   * ```
   */
  static async openOrCreate(
    key: number,
    options: { mode?: number; persist?: boolean } & OpenOrCreateWaitOptions = {},
  ): Promise<SysVMessageQueue> {
    const { wait, steps } = SysVMessageQueue.#openOrCreateSteps(key, options, "openOrCreate");
    return (await openOrCreateWith(wait, steps)).handle;
  }

  /**
   * {@linkcode SysVMessageQueue.openOrCreate} for code that cannot await: the same protocol,
   * with the retries (up to `timeout`, default 5000 ms) blocking this thread in short sleeps.
   *
   * @param key The key, not IPC_PRIVATE.
   * @param options As for {@linkcode SysVMessageQueue.openOrCreate}; `signal` is only
   * checked before the wait.
   * @returns The queue.
   * @example
   * ```ts
   * import { SysVMessageQueue } from "@posix/ipc/sysv";
   *
   * const key = 0x3ab00000 + (Deno.pid & 0xffff);
   * using first = SysVMessageQueue.openOrCreateSync(key);
   * using second = SysVMessageQueue.openOrCreateSync(key, { timeout: 1000 });
   * console.log(first.created, second.created); // true false
   * ```
   */
  static openOrCreateSync(
    key: number,
    options: { mode?: number; persist?: boolean } & OpenOrCreateWaitOptions = {},
  ): SysVMessageQueue {
    const { wait, steps } = SysVMessageQueue.#openOrCreateSteps(key, options, "openOrCreateSync");
    return openOrCreateSyncWith(wait, steps).handle;
  }

  /** Checks openOrCreate's arguments and lays out its steps, for the async and sync forms. */
  static #openOrCreateSteps(
    key: number,
    options: { mode?: number; persist?: boolean } & OpenOrCreateWaitOptions,
    call: string,
  ): { wait: OpenOrCreateWaitOptions; steps: OpenOrCreateSteps<SysVMessageQueue> } {
    const unsigned = validateOpenKey(key, "message queue");
    const own = ownOptions(options, `SysVMessageQueue.${call}() options`);
    const create = { mode: own.mode, persist: own.persist };
    validateMode(create.mode ?? 0o600);
    optionalBoolean(create.persist, "persist");
    return {
      wait: own,
      steps: {
        what: `open or create System V message queue ${keyName(unsigned)}`,
        create: () => SysVMessageQueue.create(unsigned, create),
        open: () => SysVMessageQueue.open(unsigned),
      },
    };
  }

  /**
   * Opens the queue of a key.
   *
   * @param key The key.
   * @returns The queue; this handle never removes it.
   * @throws {Deno.errors.NotFound} when no queue has that key.
   * @throws {RangeError} for IPC_PRIVATE (0), which names no object, or a key that is not 32 bits.
   * @example
   * ```ts
   * import { SysVMessageQueue } from "@posix/ipc/sysv";
   *
   * const key = 0x3a000000 + (Deno.pid & 0xffff);
   * using created = SysVMessageQueue.create(key);
   * using opened = SysVMessageQueue.open(key);
   * console.log(opened.id === created.id); // true
   * ```
   */
  static open(key: number): SysVMessageQueue {
    const unsigned = validateOpenKey(key, "message queue");
    const id = check(libc().msgget(cKey(unsigned), 0), "msgget", {
      action: "open System V message queue",
      objectName: keyName(unsigned),
    });
    return createQueue(id, unsigned, false);
  }

  /**
   * Whether this handle's call created the queue: `true` from `create`, and from
   * `openOrCreate` when it created it.
   */
  get created(): boolean {
    return wasCreated(this);
  }

  /**
   * Sends a message, waiting (without blocking the event loop) while the queue is full.
   *
   * @param type The message's type, 1 or more.
   * @param data Its bytes, or text sent as UTF-8; at most /proc/sys/kernel/msgmax bytes.
   * @param options `noWait` (fail with `WouldBlock` when full), `timeout` (ms), `signal`.
   * @throws {RangeError} for a type below 1, a message over MSGMAX (/proc/sys/kernel/msgmax),
   * or one larger than the queue can ever hold (its `limit`, from MSGMNB), which would wait
   * forever: the message names the limit and how to raise it.
   * @throws {TypeError} for a type that is not a number, data that is neither bytes nor text,
   * options that are not an object, or a `noWait` that is not a boolean.
   * @example
   * ```ts
   * import { IPC_PRIVATE, SysVMessageQueue } from "@posix/ipc/sysv";
   *
   * using queue = SysVMessageQueue.create(IPC_PRIVATE);
   * await queue.send(7, new Uint8Array([1, 2, 3]));
   * console.log(queue.stat().bytes); // 3
   * ```
   */
  async send(
    type: number,
    data: Uint8Array | string,
    options: WaitOptions & { noWait?: boolean } = {},
  ): Promise<void> {
    const checkedType = validateInteger(
      type,
      "message type",
      1,
      Number.MAX_SAFE_INTEGER,
      "types are integers from 1",
    );
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    if (
      !(bytes instanceof Uint8Array) ||
      (bytes.buffer instanceof ArrayBuffer && bytes.buffer.detached)
    ) {
      throw new TypeError(
        `Cannot send ${describe(data)} to ${this.#label}: a message is a string or a ` +
          `Uint8Array whose buffer was not transferred away`,
      );
    }
    if (bytes.length > this.#maxSize) {
      throw new RangeError(
        `Cannot send ${bytes.length} bytes to ${this.#label}: ${
          messageTooBig(bytes.length, undefined)
        }`,
      );
    }
    const wait = readWaitOptions(options, `send to ${this.#label}`); // read once
    const noWait = optionalBoolean(options.noWait, "noWait") ?? false;
    const message = new Uint8Array(8 + bytes.length);
    new DataView(message.buffer).setBigInt64(0, BigInt(checkedType), true);
    message.set(bytes, 8);
    let checkedFit = false;
    await waitUntil<true>(wait, {
      what: `send to ${this.#label}`,
      attempt: () => {
        this.#open();
        if (libc().msgsnd(this.id, message, BigInt(bytes.length), IPC_NOWAIT) === 0) return true;
        const code = errno();
        if (code === EINVAL && bytes.length > (messageMax() ?? Infinity)) {
          // over MSGMAX, lowered since this handle read it
          throw systemError(code, "msgsnd", {
            action: `send ${bytes.length} bytes to ${this.#label}`,
            hint: messageTooBig(bytes.length, undefined),
          });
        }
        if (code === EAGAIN && !checkedFit) {
          // Full, or the message is larger than the queue can ever hold: then it would wait
          // forever, so say so now.
          checkedFit = true;
          const limit = this.stat().limit;
          if (bytes.length > limit) {
            throw new RangeError(
              `Cannot send ${bytes.length} bytes to ${this.#label}: ${
                messageTooBig(bytes.length, limit)
              }`,
            );
          }
        }
        return this.#retryOrThrow(code, EAGAIN, noWait, "msgsnd", "send to");
      },
      sleep: backoff(),
      assertOpen: () => this.#open(),
    });
  }

  /**
   * Receives a message chosen by type, waiting (without blocking the event loop) until one
   * matches.
   *
   * @param options `type`, `noWait`, `timeout` (ms) and `signal`.
   * @returns The message.
   * @throws {Deno.errors.WouldBlock} with `noWait` when none matches.
   * @throws {Deno.errors.TimedOut} after `timeout`.
   * @throws {TypeError} for options that are not an object, a type that is not a number, or a
   * `noWait` that is not a boolean.
   * @example
   * ```ts
   * import { IPC_PRIVATE, SysVMessageQueue } from "@posix/ipc/sysv";
   *
   * using queue = SysVMessageQueue.create(IPC_PRIVATE);
   * await queue.send(3, "c");
   * await queue.send(1, "a");
   * console.log((await queue.receive({ type: -2 })).type); // 1: the lowest type up to 2
   * ```
   */
  async receive(options: SysVReceiveOptions = {}): Promise<SysVMessage> {
    const given = optionsObject(options, "SysVMessageQueue.receive() options");
    const type = validateInteger(
      given.type ?? 0,
      "message type",
      -Number.MAX_SAFE_INTEGER,
      Number.MAX_SAFE_INTEGER,
      "0: any; above 0: that type; below 0: the lowest type up to its absolute value",
    );
    const noWait = optionalBoolean(given.noWait, "noWait") ?? false;
    const wait = readWaitOptions(given, `receive from ${this.#label}`); // read once
    const buffer = this.#receiveBuffer;
    return await waitUntil<SysVMessage>(wait, {
      what: `receive from ${this.#label}`,
      attempt: () => {
        this.#open();
        const n = Number(
          libc().msgrcv(this.id, buffer, BigInt(this.#maxSize), BigInt(type), IPC_NOWAIT),
        );
        if (n >= 0) {
          return {
            type: Number(new DataView(buffer.buffer).getBigInt64(0, true)),
            data: buffer.slice(8, 8 + n),
          };
        }
        return this.#retryOrThrow(errno(), ENOMSG, noWait, "msgrcv", "receive from");
      },
      sleep: backoff(),
      assertOpen: () => this.#open(),
    });
  }

  /**
   * The queue's counts, limit, pids, times and permissions (IPC_STAT).
   *
   * @returns The state now.
   * @example
   * ```ts
   * import { IPC_PRIVATE, SysVMessageQueue } from "@posix/ipc/sysv";
   *
   * using queue = SysVMessageQueue.create(IPC_PRIVATE);
   * console.log(queue.stat().limit > 0); // true
   * ```
   */
  stat(): SysVMessageQueueStat {
    this.#open();
    const buffer = new Uint8Array(msqid_ds.size);
    check(libc().msgctl(this.id, IPC_STAT, buffer), "msgctl", {
      action: `read the state of ${this.#label}`,
    });
    const view = new DataView(buffer.buffer);
    return {
      ...readPermissions(view),
      messages: Number(view.getBigUint64(msqid_ds.msg_qnum, true)),
      bytes: Number(view.getBigUint64(msqid_ds.msg_cbytes, true)),
      limit: Number(view.getBigUint64(msqid_ds.msg_qbytes, true)),
      lastSendPid: view.getInt32(msqid_ds.msg_lspid, true),
      lastReceivePid: view.getInt32(msqid_ds.msg_lrpid, true),
      sentAt: readTime(view, msqid_ds.msg_stime),
      receivedAt: readTime(view, msqid_ds.msg_rtime),
      changedAt: readTime(view, msqid_ds.msg_ctime),
    };
  }

  /**
   * Sets the queue's permission bits (IPC_SET). System V objects ignore the umask, so the
   * mode given at creation is already exact; this changes it later.
   *
   * @param mode Permission bits, 0 to 0o777.
   * @throws {RangeError} for a mode outside 0 to 0o777.
   * @throws {Deno.errors.PermissionDenied} unless this process is its owner, its creator or
   * root; the message names them.
   * @throws {Deno.errors.BadResource} when closed.
   * @example
   * ```ts
   * import { IPC_PRIVATE, SysVMessageQueue } from "@posix/ipc/sysv";
   *
   * using queue = SysVMessageQueue.create(IPC_PRIVATE);
   * queue.chmod(0o660);
   * ```
   */
  chmod(mode: number): void {
    const bits = validatePermissionBits(mode);
    this.#open();
    changePermissions("msg", this.id, this.#label, { mode: bits });
  }

  /**
   * Gives the queue to another user and group (IPC_SET): its owner, its creator or root may.
   * The creator's ids stay as they are.
   *
   * @param uid The new owner's user id (0 to 2^32 - 2), or -1 to keep it.
   * @param gid The new group id, or -1 (the default) to keep it.
   * @throws {RangeError} for an id out of range.
   * @throws {Deno.errors.PermissionDenied} when this process may not make the change.
   * @throws {Deno.errors.BadResource} when closed.
   * @example
   * ```ts
   * import { IPC_PRIVATE, SysVMessageQueue } from "@posix/ipc/sysv";
   *
   * using queue = SysVMessageQueue.create(IPC_PRIVATE);
   * queue.chown(-1, -1); // keeps both
   * ```
   */
  chown(uid: number, gid: number = -1): void {
    const [user, group] = validateOwner(uid, gid);
    this.#open();
    changePermissions("msg", this.id, this.#label, { uid: user, gid: group });
  }

  /**
   * Removes the queue now (IPC_RMID), with its messages.
   *
   * @example
   * ```ts
   * import { IPC_PRIVATE, SysVMessageQueue } from "@posix/ipc/sysv";
   *
   * const queue = SysVMessageQueue.create(IPC_PRIVATE, { persist: true });
   * queue.remove();
   * queue.close();
   * ```
   */
  remove(): void {
    this.#open();
    this.#lease.owned = false;
    check(libc().msgctl(this.id, IPC_RMID, null), "msgctl", { action: `remove ${this.#label}` });
  }

  /** Forgets the queue, and in the creator's handle without `persist` removes it. Again does nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    removeWhenUnreachable.unregister(this);
    if (this.#lease.owned) {
      this.#lease.owned = false;
      removed(libc().msgctl(this.id, IPC_RMID, null), [EINVAL, EIDRM], "msgctl", {
        action: `remove ${this.#label}`,
      });
    }
  }

  /** Same as {@linkcode SysVMessageQueue.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  get #label(): string {
    return label("System V message queue", this.key, this.id);
  }

  #open(): void {
    if (this.#closed) throw closedError(this.#label);
  }

  /** RETRY when the call would wait (unless `noWait`), else the typed error. */
  #retryOrThrow(
    code: number,
    wouldWait: number,
    noWait: boolean,
    syscall: string,
    verb: string,
  ): typeof RETRY {
    if (code === wouldWait || code === EINTR) {
      if (!noWait) return RETRY;
      throw new Deno.errors.WouldBlock(
        `Cannot ${verb} ${this.#label} now, and noWait forbids waiting`,
      );
    }
    throw systemError(code, syscall, { action: `${verb} ${this.#label}` });
  }
}
