/**
 * System V semaphore sets (semget/semop): several counters changed atomically together, with
 * SEM_UNDO so that the kernel reverts a process's changes when it dies.
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
  GETALL,
  GETVAL,
  IPC_CREAT,
  IPC_EXCL,
  IPC_NOWAIT,
  IPC_RMID,
  IPC_STAT,
  SEM_UNDO,
  SEMVMX,
  SETVAL,
} from "../../ffi/constants.ts";
import { sembuf, semid_ds, timespec } from "../../ffi/layout.ts";
import { errno, libc } from "../../ffi/libc.ts";
import {
  cKey,
  ConstructorToken,
  describe,
  INT_MAX,
  optionalBoolean,
  optionsObject,
  ownOptions,
  validateInteger,
  validateKey,
  validateMode,
} from "../_validate.ts";
import { readWaitOptions, RETRY, type WaitOptions, waitUntil } from "../_wait.ts";
import { check, closedError, errnoCode, removed, systemError } from "../errors.ts";
import { validateOwner, validatePermissionBits } from "../_ownership.ts";
import {
  changePermissions,
  keyName,
  label,
  readPermissions,
  type SysVPermissions,
  validateOpenKey,
} from "./_common.ts";
import { semgetHint, semopHint } from "./_limits.ts";

/** One operation of {@linkcode SysVSemaphoreSet.op}. */
export interface SysVSemaphoreOperation {
  /** Which semaphore of the set, from 0. */
  index: number;
  /**
   * Added to the value: positive releases; negative waits until the value is large enough;
   * 0 waits until the value is 0. From -32767 to 32767.
   */
  delta: number;
  /** SEM_UNDO: the kernel reverts this change when the process ends, however it ends. */
  undo?: boolean;
  /** IPC_NOWAIT: do not wait; `op()` fails with `Deno.errors.WouldBlock` instead. */
  noWait?: boolean;
}

/** What a set handle owns, kept apart from the handle so that its finalizer can use it. */
interface SetLease {
  readonly id: number;
  /** Whether to remove the set when the handle goes: its creator's, without `persist`. */
  owned: boolean;
}

/** The safety net for a set handle dropped without `close()`: remove what it owns. */
const removeWhenUnreachable = new FinalizationRegistry<SetLease>((lease) => {
  if (lease.owned) libc().semctl_buffer(lease.id, 0, IPC_RMID, null);
});

const token = new ConstructorToken(
  "SysVSemaphoreSet",
  "SysVSemaphoreSet.create() or SysVSemaphoreSet.open()",
);

let createSet: (id: number, key: number, count: number, owned: boolean) => SysVSemaphoreSet;

/**
 * A System V semaphore set. The handle that created it removes it when closed, unless created
 * with `persist: true`.
 *
 * @example Taking two resources at once, atomically
 * ```ts
 * import { IPC_PRIVATE, SysVSemaphoreSet } from "@posix/ipc/sysv";
 *
 * using set = SysVSemaphoreSet.create(IPC_PRIVATE, 2);
 * set.setValue(0, 1);
 * set.setValue(1, 1);
 * await set.op([{ index: 0, delta: -1, undo: true }, { index: 1, delta: -1, undo: true }]);
 * console.log(set.values); // [ 0, 0 ]
 * ```
 */
export class SysVSemaphoreSet implements Disposable {
  /** The set's id, valid in every process. */
  readonly id: number;
  /** The key it was created or opened with, as an unsigned 32-bit number (0xdeadbeef). */
  readonly key: number;
  /** How many semaphores it has. */
  readonly count: number;
  readonly #lease: SetLease;
  #closed = false;

  static {
    createSet = (id, key, count, owned) => new SysVSemaphoreSet(token, id, key, count, owned);
  }

  private constructor(
    secret: ConstructorToken,
    id: number,
    key: number,
    count: number,
    owned: boolean,
  ) {
    token.check(secret);
    this.id = id;
    this.key = key;
    this.count = count;
    this.#lease = { id, owned };
    removeWhenUnreachable.register(this, this.#lease, this);
  }

  /**
   * Creates a set of `count` semaphores, each 0; fails if the key is taken.
   *
   * @param key From `ftok()`, a number agreed on, or `IPC_PRIVATE`: 0 to 0xffffffff.
   * @param count How many semaphores, 1 or more (at most SEMMSL, the first number of
   * /proc/sys/kernel/sem).
   * @param options `mode` (default 0o600) and `persist`.
   * @returns The set; this handle removes it when closed.
   * @throws {Deno.errors.AlreadyExists} when the key is taken.
   * @throws {RangeError} for a count below 1, or a key that is not 32 bits.
   * @throws {TypeError} for options that are not an object, or a `persist` that is not a boolean.
   * @throws {IpcError} with code `EINVAL` for a count over SEMMSL, or `ENOSPC` past SEMMNI sets
   * or SEMMNS semaphores: the message names the limit, its value and how to raise it.
   * @example
   * ```ts
   * import { IPC_PRIVATE, SysVSemaphoreSet } from "@posix/ipc/sysv";
   *
   * using set = SysVSemaphoreSet.create(IPC_PRIVATE, 3);
   * console.log(set.values); // [ 0, 0, 0 ]
   * ```
   */
  static create(
    key: number,
    count: number,
    options: { mode?: number; persist?: boolean } = {},
  ): SysVSemaphoreSet {
    const unsigned = validateKey(key, "semaphore set");
    validateInteger(count, "semaphore set size", 1, INT_MAX, "a set needs 1 or more");
    const given = optionsObject(options, "SysVSemaphoreSet.create() options");
    const mode = validateMode(given.mode ?? 0o600);
    const persist = optionalBoolean(given.persist, "persist") ?? false;
    const id = libc().semget(cKey(unsigned), count, IPC_CREAT | IPC_EXCL | mode);
    if (id < 0) {
      const code = errno();
      throw systemError(code, "semget", {
        action: `create a System V semaphore set of ${count}`,
        objectName: keyName(unsigned),
        hint: semgetHint(errnoCode(code), count),
      });
    }
    return markCreated(createSet(id, unsigned, count, !persist));
  }

  /**
   * Opens the set of a key, or creates it with `values` if no set has that key, without races
   * and without the System V trap: semget creates a set whose values are all 0 before its
   * creator can set them. Here the creator sets the values, then runs one semop (+1 and -1 on
   * the first semaphore, no net change) that stamps the set's `sem_otime`; openers wait (up to
   * `timeout`) until that stamp is there (W. R. Stevens' protocol), so none sees the zeros.
   * `created` tells which happened; the creating handle removes the set when closed unless
   * `persist`. An opened set keeps its own size and values.
   *
   * @param key The key, not IPC_PRIVATE.
   * @param count How many semaphores, when creating.
   * @param options `values` (one per semaphore, default all 0), `mode` and `persist` for
   * creating; `timeout` (default 5000 ms) and `signal` for the wait.
   * @returns The set.
   * @throws {Deno.errors.TimedOut} when the set stayed unstamped for `timeout` ms: its creator
   * died while setting it up, or another program created it without a semop.
   * @example
   * ```ts
   * import { SysVSemaphoreSet } from "@posix/ipc/sysv";
   *
   * const key = 0x5ea00000 + (Deno.pid & 0xffff);
   * using first = await SysVSemaphoreSet.openOrCreate(key, 2, { values: [1, 5] });
   * using second = await SysVSemaphoreSet.openOrCreate(key, 2);
   * console.log(first.created, second.created, second.values); // true false [ 1, 5 ]
   * ```
   */
  static async openOrCreate(
    key: number,
    count: number,
    options:
      & { values?: readonly number[]; mode?: number; persist?: boolean }
      & OpenOrCreateWaitOptions = {},
  ): Promise<SysVSemaphoreSet> {
    const { wait, steps } = SysVSemaphoreSet.#openOrCreateSteps(
      key,
      count,
      options,
      "openOrCreate",
    );
    return (await openOrCreateWith(wait, steps)).handle;
  }

  /**
   * {@linkcode SysVSemaphoreSet.openOrCreate} for code that cannot await: the same protocol,
   * with the wait for the creator's stamp (up to `timeout`, default 5000 ms) blocking this
   * thread in short sleeps.
   *
   * @param key The key, not IPC_PRIVATE.
   * @param count How many semaphores, when creating.
   * @param options As for {@linkcode SysVSemaphoreSet.openOrCreate}; `signal` is only checked
   * before the wait.
   * @returns The set.
   * @throws {Deno.errors.TimedOut} when the set stayed unstamped for `timeout` ms.
   * @example
   * ```ts
   * import { SysVSemaphoreSet } from "@posix/ipc/sysv";
   *
   * const key = 0x5eb00000 + (Deno.pid & 0xffff);
   * using first = SysVSemaphoreSet.openOrCreateSync(key, 2, { values: [1, 5] });
   * using second = SysVSemaphoreSet.openOrCreateSync(key, 2, { timeout: 1000 });
   * console.log(first.created, second.created, second.values); // true false [ 1, 5 ]
   * ```
   */
  static openOrCreateSync(
    key: number,
    count: number,
    options:
      & { values?: readonly number[]; mode?: number; persist?: boolean }
      & OpenOrCreateWaitOptions = {},
  ): SysVSemaphoreSet {
    const { wait, steps } = SysVSemaphoreSet.#openOrCreateSteps(
      key,
      count,
      options,
      "openOrCreateSync",
    );
    return openOrCreateSyncWith(wait, steps).handle;
  }

  /** Checks openOrCreate's arguments and lays out its steps, for the async and sync forms. */
  static #openOrCreateSteps(
    key: number,
    count: number,
    options:
      & { values?: readonly number[]; mode?: number; persist?: boolean }
      & OpenOrCreateWaitOptions,
    call: string,
  ): { wait: OpenOrCreateWaitOptions; steps: OpenOrCreateSteps<SysVSemaphoreSet> } {
    const unsigned = validateOpenKey(key, "semaphore set");
    validateInteger(count, "semaphore set size", 1, INT_MAX, "a set needs 1 or more");
    const own = ownOptions(options, `SysVSemaphoreSet.${call}() options`);
    const values = own.values ?? [];
    if (!Array.isArray(values) || values.length > count) {
      throw new RangeError(
        `Cannot open or create System V semaphore set ${keyName(unsigned)}: values must be an ` +
          `array of at most ${count} numbers`,
      );
    }
    values.forEach((value, i) => validateInteger(value, `values[${i}]`, 0, 32767, "SEMVMX"));
    const create = { mode: own.mode, persist: own.persist };
    validateMode(create.mode ?? 0o600);
    const persist = optionalBoolean(create.persist, "persist") ?? false;
    return {
      wait: own,
      steps: {
        what: `open or create System V semaphore set ${keyName(unsigned)}`,
        create: () => SysVSemaphoreSet.create(unsigned, count, create),
        open: () => {
          const set = SysVSemaphoreSet.open(unsigned);
          if (set.#stamped()) return set;
          set.close();
          return RETRY;
        },
        initialisation: {
          init: (handle) => {
            values.forEach((value, i) => handle.setValue(i, value));
            handle.tryOp([{ index: 0, delta: 1 }, { index: 0, delta: -1 }]); // stamps sem_otime
          },
          publish: () => {}, // the stamp is the ready flag
          abandon: (handle) => {
            if (persist) handle.remove();
            handle.close();
          },
        },
      },
    };
  }

  /** Whether a semop has run on the set (its `sem_otime` is set): its creator set it up. */
  #stamped(): boolean {
    const buffer = new Uint8Array(semid_ds.size);
    check(libc().semctl_buffer(this.id, 0, IPC_STAT, buffer), "semctl", this.#operation("stat"));
    return new DataView(buffer.buffer).getBigInt64(semid_ds.sem_otime, true) !== 0n;
  }

  /**
   * Opens the set of a key.
   *
   * @param key The key.
   * @returns The set; this handle never removes it.
   * @throws {Deno.errors.NotFound} when no set has that key.
   * @throws {RangeError} for IPC_PRIVATE (0), which names no object, or a key that is not 32 bits.
   * @example
   * ```ts
   * import { SysVSemaphoreSet } from "@posix/ipc/sysv";
   *
   * const key = 0x5e000000 + (Deno.pid & 0xffff);
   * using created = SysVSemaphoreSet.create(key, 2);
   * using opened = SysVSemaphoreSet.open(key);
   * console.log(opened.count); // 2
   * ```
   */
  static open(key: number): SysVSemaphoreSet {
    const unsigned = validateOpenKey(key, "semaphore set");
    const operation = { action: "open System V semaphore set", objectName: keyName(unsigned) };
    const id = check(libc().semget(cKey(unsigned), 0, 0), "semget", operation);
    const buffer = new Uint8Array(semid_ds.size);
    check(libc().semctl_buffer(id, 0, IPC_STAT, buffer), "semctl", operation);
    const count = Number(new DataView(buffer.buffer).getBigUint64(semid_ds.sem_nsems, true));
    return createSet(id, unsigned, count, false);
  }

  /**
   * Whether this handle's call created the set: `true` from `create`, and from
   * `openOrCreate` when it created it.
   */
  get created(): boolean {
    return wasCreated(this);
  }

  /** Every semaphore's value (GETALL). */
  get values(): number[] {
    this.#open();
    const values = new Uint16Array(this.count);
    check(libc().semctl_buffer(this.id, 0, GETALL, values), "semctl", this.#operation("read"));
    return [...values];
  }

  /**
   * One semaphore's value.
   *
   * @param index Which semaphore.
   * @returns Its value.
   * @example
   * ```ts
   * import { IPC_PRIVATE, SysVSemaphoreSet } from "@posix/ipc/sysv";
   *
   * using set = SysVSemaphoreSet.create(IPC_PRIVATE, 1);
   * console.log(set.getValue(0)); // 0
   * ```
   */
  getValue(index: number): number {
    const semaphore = this.#validateIndex(index);
    return check(
      libc().semctl_value(this.id, semaphore, GETVAL, 0n),
      "semctl",
      this.#operation("read"),
    );
  }

  /**
   * Sets one semaphore's value (SETVAL); this clears every process's undo record for it.
   *
   * @param index Which semaphore.
   * @param value 0 to 32767.
   * @example
   * ```ts
   * import { IPC_PRIVATE, SysVSemaphoreSet } from "@posix/ipc/sysv";
   *
   * using set = SysVSemaphoreSet.create(IPC_PRIVATE, 1);
   * set.setValue(0, 5);
   * console.log(set.getValue(0)); // 5
   * ```
   */
  setValue(index: number, value: number): void {
    const semaphore = this.#validateIndex(index);
    const checked = validateInteger(value, "System V semaphore value", 0, SEMVMX, "SEMVMX");
    check(
      libc().semctl_value(this.id, semaphore, SETVAL, BigInt(checked)),
      "semctl",
      this.#operation("set"),
    );
  }

  /**
   * Applies the operations atomically, all or none, waiting without blocking the event loop
   * until they can be (semop). If they were applied just as a timeout or abort came, they stand
   * and the call succeeds.
   *
   * @param operations The operations.
   * @param options `timeout` (ms) and `signal`.
   * @throws {Deno.errors.WouldBlock} when an operation has `noWait` and would have to wait.
   * @throws {Deno.errors.TimedOut} after `timeout`.
   * @throws {RangeError} for a bad index or delta.
   * @example
   * ```ts
   * import { IPC_PRIVATE, SysVSemaphoreSet } from "@posix/ipc/sysv";
   *
   * using set = SysVSemaphoreSet.create(IPC_PRIVATE, 1);
   * setTimeout(() => set.op([{ index: 0, delta: 1 }]), 10);
   * await set.op([{ index: 0, delta: -1 }], { timeout: 5000 });
   * ```
   */
  async op(
    operations: readonly SysVSemaphoreOperation[],
    options: WaitOptions = {},
  ): Promise<void> {
    const [now, blocking, noWait] = this.#encode(operations);
    const nsops = BigInt(blocking.length / sembuf.size); // what was encoded, not what the array has now
    const what = `change ${this.#label}`;
    options = readWaitOptions(options, what); // read once
    if (this.#apply(now, noWait)) return;
    let doneWhileAsleep = false;
    const slice = new Uint8Array(timespec.size);
    try {
      await waitUntil<true>(options, {
        what,
        attempt: () => doneWhileAsleep || this.#apply(now, noWait) ? true : RETRY,
        sleep: async (ms) => {
          new DataView(slice.buffer).setBigInt64(
            timespec.tv_nsec,
            BigInt(Math.round(ms * 1e6)),
            true,
          );
          doneWhileAsleep = await libc().semtimedop_async(this.id, blocking, nsops, slice) ===
            0;
        },
        assertOpen: () => this.#open(),
      });
    } catch (error) {
      if (!doneWhileAsleep) throw error; // else: applied by the kernel; it stands
    }
  }

  /**
   * Applies the operations if they can be applied now, without waiting.
   *
   * @param operations The operations.
   * @returns Whether they were applied.
   * @example
   * ```ts
   * import { IPC_PRIVATE, SysVSemaphoreSet } from "@posix/ipc/sysv";
   *
   * using set = SysVSemaphoreSet.create(IPC_PRIVATE, 1);
   * console.log(set.tryOp([{ index: 0, delta: -1 }])); // false
   * ```
   */
  tryOp(operations: readonly SysVSemaphoreOperation[]): boolean {
    const [now] = this.#encode(operations);
    return this.#apply(now, false);
  }

  /**
   * The set's permission bits and owners (IPC_STAT).
   *
   * @throws {Deno.errors.BadResource} when closed.
   * @example
   * ```ts
   * import { IPC_PRIVATE, SysVSemaphoreSet } from "@posix/ipc/sysv";
   *
   * using set = SysVSemaphoreSet.create(IPC_PRIVATE, 1, { mode: 0o640 });
   * console.log(set.permissions.mode.toString(8)); // "640"
   * ```
   */
  get permissions(): SysVPermissions {
    this.#open();
    const buffer = new Uint8Array(semid_ds.size);
    check(libc().semctl_buffer(this.id, 0, IPC_STAT, buffer), "semctl", this.#operation("read"));
    return readPermissions(new DataView(buffer.buffer));
  }

  /**
   * Sets the set's permission bits (IPC_SET). System V objects ignore the umask, so the
   * mode given at creation is already exact; this changes it later.
   *
   * @param mode Permission bits, 0 to 0o777.
   * @throws {RangeError} for a mode outside 0 to 0o777.
   * @throws {Deno.errors.PermissionDenied} unless this process is its owner, its creator or
   * root; the message names them.
   * @throws {Deno.errors.BadResource} when closed.
   * @example
   * ```ts
   * import { IPC_PRIVATE, SysVSemaphoreSet } from "@posix/ipc/sysv";
   *
   * using set = SysVSemaphoreSet.create(IPC_PRIVATE, 1);
   * set.chmod(0o660);
   * ```
   */
  chmod(mode: number): void {
    const bits = validatePermissionBits(mode);
    this.#open();
    changePermissions("sem", this.id, this.#label, { mode: bits });
  }

  /**
   * Gives the set to another user and group (IPC_SET): its owner, its creator or root may.
   * The creator's ids stay as they are.
   *
   * @param uid The new owner's user id (0 to 2^32 - 2), or -1 to keep it.
   * @param gid The new group id, or -1 (the default) to keep it.
   * @throws {RangeError} for an id out of range.
   * @throws {Deno.errors.PermissionDenied} when this process may not make the change.
   * @throws {Deno.errors.BadResource} when closed.
   * @example
   * ```ts
   * import { IPC_PRIVATE, SysVSemaphoreSet } from "@posix/ipc/sysv";
   *
   * using set = SysVSemaphoreSet.create(IPC_PRIVATE, 1);
   * set.chown(-1, -1); // keeps both
   * ```
   */
  chown(uid: number, gid: number = -1): void {
    const [user, group] = validateOwner(uid, gid);
    this.#open();
    changePermissions("sem", this.id, this.#label, { uid: user, gid: group });
  }

  /**
   * Removes the set now (IPC_RMID): processes waiting on it fail with EIDRM.
   *
   * @example
   * ```ts
   * import { IPC_PRIVATE, SysVSemaphoreSet } from "@posix/ipc/sysv";
   *
   * const set = SysVSemaphoreSet.create(IPC_PRIVATE, 1, { persist: true });
   * set.remove();
   * set.close();
   * ```
   */
  remove(): void {
    this.#open();
    this.#lease.owned = false;
    check(libc().semctl_buffer(this.id, 0, IPC_RMID, null), "semctl", this.#operation("remove"));
  }

  /** Forgets the set, and in the creator's handle without `persist` removes it. Again does nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    removeWhenUnreachable.unregister(this);
    if (this.#lease.owned) {
      this.#lease.owned = false;
      removed(
        libc().semctl_buffer(this.id, 0, IPC_RMID, null),
        [EINVAL, EIDRM],
        "semctl",
        this.#operation("remove"),
      );
    }
  }

  /** Same as {@linkcode SysVSemaphoreSet.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  get #label(): string {
    return label("System V semaphore set", this.key, this.id);
  }

  #operation(verb: string) {
    return { action: `${verb} ${this.#label}` };
  }

  #open(): void {
    if (this.#closed) throw closedError(this.#label);
  }

  #validateIndex(index: unknown): number {
    this.#open();
    return validateInteger(
      index,
      "semaphore index",
      0,
      this.count - 1,
      `${this.#label} has 0 to ${this.count - 1}`,
    );
  }

  /**
   * The operations as two `struct sembuf` arrays: one with IPC_NOWAIT everywhere (to try now),
   * one as asked (to wait in the kernel); and whether any asked not to wait.
   */
  #encode(operations: readonly SysVSemaphoreOperation[]): [Uint8Array, Uint8Array, boolean] {
    if (!Array.isArray(operations) || operations.length === 0) {
      throw new TypeError(
        `Cannot change ${this.#label}: operations ${
          describe(operations)
        } must be an array of at least one operation`,
      );
    }
    const count = operations.length; // read once: a getter may change the array meanwhile
    const now = new Uint8Array(sembuf.size * count);
    const blocking = new Uint8Array(now.length);
    const nowView = new DataView(now.buffer);
    const blockingView = new DataView(blocking.buffer);
    let noWait = false;
    for (let i = 0; i < count; i++) {
      const operation: unknown = operations[i];
      if (typeof operation !== "object" || operation === null) {
        throw new TypeError(
          `Cannot change ${this.#label}: operation ${i} ${describe(operation)} must be an ` +
            `object { index, delta, undo?, noWait? }`,
        );
      }
      const given = operation as Partial<SysVSemaphoreOperation>;
      const index = this.#validateIndex(given.index);
      const delta = validateInteger(
        given.delta,
        "System V semaphore delta",
        -SEMVMX,
        SEMVMX,
        "added to the value; negative waits",
      );
      const undo = optionalBoolean(given.undo, "undo") ?? false;
      const dontWait = optionalBoolean(given.noWait, "noWait") ?? false;
      const flags = (undo ? SEM_UNDO : 0) | (dontWait ? IPC_NOWAIT : 0);
      noWait ||= dontWait;
      for (const [view, extra] of [[nowView, IPC_NOWAIT], [blockingView, 0]] as const) {
        view.setUint16(i * sembuf.size + sembuf.sem_num, index, true);
        view.setInt16(i * sembuf.size + sembuf.sem_op, delta, true);
        view.setInt16(i * sembuf.size + sembuf.sem_flg, flags | extra, true);
      }
    }
    return [now, blocking, noWait];
  }

  /** Tries the operations once; throws WouldBlock for `noWait` callers. */
  #apply(operations: Uint8Array, noWait: boolean): boolean {
    this.#open();
    const count = BigInt(operations.length / sembuf.size);
    if (libc().semtimedop(this.id, operations, count, null) === 0) return true;
    const code = errno();
    if (code === EAGAIN && noWait) {
      throw new Deno.errors.WouldBlock(
        `Cannot change ${this.#label} now, and noWait forbids waiting`,
      );
    }
    if (code === EAGAIN || code === EINTR) return false;
    throw systemError(code, "semop", {
      ...this.#operation("change"),
      hint: semopHint(errnoCode(code), operations.length / sembuf.size),
    });
  }
}
