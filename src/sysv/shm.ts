/**
 * System V shared memory (shmget/shmat), as PostgreSQL and many C services use it.
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
import { address, MAP_FAILED } from "../../ffi/cstring.ts";
import {
  EIDRM,
  EINVAL,
  IPC_CREAT,
  IPC_EXCL,
  IPC_RMID,
  IPC_STAT,
  SHM_RDONLY,
} from "../../ffi/constants.ts";
import { shmid_ds } from "../../ffi/layout.ts";
import { errno, libc } from "../../ffi/libc.ts";
import { entombRange } from "../_tomb.ts";
import {
  cKey,
  ConstructorToken,
  optionalBoolean,
  optionsObject,
  ownOptions,
  validateInteger,
  validateKey,
  validateMode,
  validateSize,
} from "../_validate.ts";
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
import { shmgetHint } from "./_limits.ts";

/** What {@linkcode SysVSharedMemory.stat} reports. */
export interface SysVSharedMemoryStat extends SysVPermissions {
  /** The size in bytes. */
  readonly size: number;
  /** How many attachments exist, in every process. */
  readonly attachCount: number;
  /** The pid of the creator. */
  readonly creatorPid: number;
  /** The pid of the last process to attach or detach. */
  readonly lastPid: number;
  /** When it was last attached, or `null`. */
  readonly attachedAt: Date | null;
  /** When it was last detached, or `null`. */
  readonly detachedAt: Date | null;
  /** When it was created or last changed. */
  readonly changedAt: Date | null;
}

/** Where an attachment lies: what the safety net needs, kept apart from the handle. */
interface AttachedRange {
  base: Deno.PointerObject;
  length: number;
}

/**
 * The safety net for a writable attachment dropped without `detach()`, registered on the
 * `ArrayBuffer` it made, so that it runs only once that buffer and every view over it are
 * unreachable. It cannot know whether the buffer was transferred away first, so it entombs the
 * range (which detaches the segment) instead of calling shmdt: a transferred buffer then reads
 * zeros instead of crashing the process.
 */
const entombWhenUnreachable = new FinalizationRegistry<AttachedRange>((range) => {
  entombRange(range.base, range.length);
});

/** The safety net for a read-only attachment, which hands out no buffer: detach it. */
const detachWhenUnreachable = new FinalizationRegistry<Deno.PointerObject>((pointer) => {
  libc().shmdt(pointer);
});

/** What a segment handle owns, kept apart from the handle so that its finalizer can use it. */
interface SegmentLease {
  readonly id: number;
  /** Whether to remove the segment when the handle goes: its creator's, without `persist`. */
  owned: boolean;
}

/** The safety net for a segment handle dropped without `close()`: remove what it owns. */
const removeWhenUnreachable = new FinalizationRegistry<SegmentLease>((lease) => {
  if (lease.owned) libc().shmctl(lease.id, IPC_RMID, null);
});

const attachmentToken = new ConstructorToken("SysVAttachment", "SysVSharedMemory.attach()");
const segmentToken = new ConstructorToken(
  "SysVSharedMemory",
  "SysVSharedMemory.create() or SysVSharedMemory.open()",
);

let createAttachment: (
  pointer: Deno.PointerObject,
  length: number,
  readOnly: boolean,
  label: string,
) => SysVAttachment;

/**
 * A segment attached to this process (shmat). A writable attachment exposes the memory as
 * `buffer`/`bytes`. A read-only one gives copies through {@linkcode SysVAttachment.read} only:
 * the kernel maps it read-only, JavaScript cannot refuse a write to an `ArrayBuffer`, and such
 * a write would kill the process.
 *
 * @example
 * ```ts
 * import { IPC_PRIVATE, SysVSharedMemory } from "@posix/ipc/sysv";
 *
 * using segment = SysVSharedMemory.create(IPC_PRIVATE, { size: 4096 });
 * using view = segment.attach();
 * view.bytes[0] = 1;
 * using reader = segment.attach({ readOnly: true });
 * console.log(reader.read(0, 1)); // Uint8Array(1) [ 1 ]
 * ```
 */
export class SysVAttachment implements Disposable {
  #pointer: Deno.PointerObject | null;
  #buffer: ArrayBuffer | null;
  readonly #length: number;
  readonly #readOnly: boolean;
  readonly #label: string;

  static {
    createAttachment = (pointer, length, readOnly, label) =>
      new SysVAttachment(attachmentToken, pointer, length, readOnly, label);
  }

  private constructor(
    secret: ConstructorToken,
    pointer: Deno.PointerObject,
    length: number,
    readOnly: boolean,
    label: string,
  ) {
    // Made from an arbitrary pointer, detach() and the safety net would unmap or entomb any
    // range of this process: only attach() may make one.
    attachmentToken.check(secret);
    this.#pointer = pointer;
    this.#length = length;
    this.#readOnly = readOnly;
    this.#label = label;
    this.#buffer = readOnly ? null : Deno.UnsafePointerView.getArrayBuffer(pointer, length);
    if (this.#buffer) entombWhenUnreachable.register(this.#buffer, { base: pointer, length }, this);
    else detachWhenUnreachable.register(this, pointer, this);
  }

  /** The attached size in bytes. */
  get length(): number {
    return this.#length;
  }

  /** Whether this attachment is read-only. */
  get readOnly(): boolean {
    return this.#readOnly;
  }

  /** Whether it was detached. */
  get detached(): boolean {
    return this.#pointer === null;
  }

  /**
   * The memory as an `ArrayBuffer`; detached, and so empty, after `detach()`.
   *
   * @throws {TypeError} on a read-only attachment: use `read()`.
   * @throws {Deno.errors.BadResource} when detached.
   */
  get buffer(): ArrayBuffer {
    this.#open();
    if (!this.#buffer) {
      throw new TypeError(
        `Cannot give a buffer over a read-only attachment of ${this.#label}: a write to it would ` +
          `kill the process, and JavaScript cannot refuse one; use read()`,
      );
    }
    return this.#buffer;
  }

  /**
   * A `Uint8Array` over {@linkcode SysVAttachment.buffer}.
   *
   * @throws {TypeError} on a read-only attachment.
   */
  get bytes(): Uint8Array<ArrayBuffer> {
    return new Uint8Array(this.buffer);
  }

  /**
   * Copies bytes out of the segment: the way to read a read-only attachment.
   *
   * @param offset Where to start. Default 0.
   * @param length How many bytes. Default: to the end.
   * @returns A copy.
   * @throws {RangeError} for a range outside the segment.
   * @throws {TypeError} for an offset or length that is not a number.
   * @example
   * ```ts
   * import { IPC_PRIVATE, SysVSharedMemory } from "@posix/ipc/sysv";
   *
   * using segment = SysVSharedMemory.create(IPC_PRIVATE, { size: 16 });
   * using reader = segment.attach({ readOnly: true });
   * console.log(reader.read(4, 2)); // Uint8Array(2) [ 0, 0 ]
   * ```
   */
  read(offset?: number, length?: number): Uint8Array {
    const pointer = this.#open();
    const size = this.#length;
    const start = validateInteger(
      offset === undefined ? 0 : offset,
      "offset",
      0,
      size,
      `the segment has ${size} bytes`,
    );
    const count = validateInteger(
      length === undefined ? size - start : length,
      "length",
      0,
      size - start,
      `the segment has ${size} bytes, ${size - start} from offset ${start}`,
    );
    const copy = new Uint8Array(count);
    if (count > 0) new Deno.UnsafePointerView(pointer).copyInto(copy, start);
    return copy;
  }

  /**
   * Detaches the segment (shmdt) and empties the buffer and its views. If the buffer was
   * transferred away first (`transfer()`, `postMessage`), the range is replaced by private zero
   * pages instead, which detaches the segment too: the transferred buffer then reads zeros
   * rather than crashing the process. Again does nothing.
   */
  detach(): void {
    const pointer = this.#pointer;
    if (!pointer) return;
    this.#pointer = null;
    entombWhenUnreachable.unregister(this);
    detachWhenUnreachable.unregister(this);
    const buffer = this.#buffer;
    if (buffer?.detached) {
      if (entombRange(pointer, this.#length)) return;
      // out of memory even for that: the segment stays attached, a leak but never a hole
      throw systemError(errno(), "mmap", {
        action: `detach ${this.#label}, whose buffer was transferred away,`,
      });
    }
    buffer?.transfer(0);
    check(libc().shmdt(pointer), "shmdt", { action: `detach ${this.#label}` });
  }

  /** Same as {@linkcode SysVAttachment.detach}, for `using`. */
  [Symbol.dispose](): void {
    this.detach();
  }

  #open(): Deno.PointerObject {
    if (!this.#pointer) throw closedError(`the detached attachment of ${this.#label}`);
    return this.#pointer;
  }
}

function stat(id: number, what: string): DataView {
  const buffer = new Uint8Array(shmid_ds.size);
  check(libc().shmctl(id, IPC_STAT, buffer), "shmctl", { action: `read the state of ${what}` });
  return new DataView(buffer.buffer);
}

let createSegment: (id: number, key: number, owned: boolean) => SysVSharedMemory;

/**
 * A System V shared memory segment, known by its key and id. The handle that created it
 * removes it when closed, unless created with `persist: true` (the memory itself goes once the
 * last attachment is detached).
 *
 * @example
 * ```ts
 * import { IPC_PRIVATE, SysVSharedMemory } from "@posix/ipc/sysv";
 *
 * using segment = SysVSharedMemory.create(IPC_PRIVATE, { size: 1024 });
 * using view = segment.attach();
 * new TextEncoder().encodeInto("hello", view.bytes);
 * console.log(segment.stat().attachCount); // 1
 * ```
 */
export class SysVSharedMemory implements Disposable {
  /** The segment's id, valid in every process. */
  readonly id: number;
  /** The key it was created or opened with, as an unsigned 32-bit number (0xdeadbeef). */
  readonly key: number;
  readonly #lease: SegmentLease;
  #closed = false;
  /** The attachments made through this handle, held weakly: a dropped one is collected. */
  readonly #attachments = new Set<WeakRef<SysVAttachment>>();

  static {
    createSegment = (id, key, owned) => new SysVSharedMemory(segmentToken, id, key, owned);
  }

  private constructor(secret: ConstructorToken, id: number, key: number, owned: boolean) {
    segmentToken.check(secret);
    this.id = id;
    this.key = key;
    this.#lease = { id, owned };
    removeWhenUnreachable.register(this, this.#lease, this);
  }

  /**
   * Creates a segment; fails if one exists for the key (unless the key is `IPC_PRIVATE`).
   *
   * @param key From `ftok()`, a number agreed on, or `IPC_PRIVATE`: 0 to 0xffffffff.
   * @param options `size` in bytes, `mode` (default 0o600), `persist`.
   * @returns The segment; this handle removes it when closed.
   * @throws {Deno.errors.AlreadyExists} when the key is taken.
   * @throws {RangeError} for a key that is not 32 bits, or a bad size or mode.
   * @throws {TypeError} for options that are not an object, a size that is not a number, or a
   * `persist` that is not a boolean.
   * @throws {IpcError} with code `EINVAL` for a size over SHMMAX, or `ENOSPC` past SHMMNI or
   * SHMALL segments: the message names the limit, its value and how to raise it.
   * @example
   * ```ts
   * import { IPC_PRIVATE, SysVSharedMemory } from "@posix/ipc/sysv";
   *
   * using segment = SysVSharedMemory.create(IPC_PRIVATE, { size: 4096, mode: 0o600 });
   * console.log(segment.stat().size); // 4096
   * ```
   */
  static create(
    key: number,
    options: { size: number; mode?: number; persist?: boolean },
  ): SysVSharedMemory {
    const unsigned = validateKey(key, "shared memory");
    const given = optionsObject(options, "SysVSharedMemory.create() options");
    const size = validateSize(given.size, "shared memory size");
    const mode = validateMode(given.mode ?? 0o600);
    const persist = optionalBoolean(given.persist, "persist") ?? false;
    const id = libc().shmget(cKey(unsigned), BigInt(size), IPC_CREAT | IPC_EXCL | mode);
    if (id < 0) {
      const code = errno();
      throw systemError(code, "shmget", {
        action: "create System V shared memory",
        objectName: keyName(unsigned),
        hint: shmgetHint(errnoCode(code), size),
      });
    }
    return markCreated(createSegment(id, unsigned, !persist));
  }

  /**
   * Opens the segment of a key, or creates it if no segment has that key, without races: of
   * many processes calling this at once, exactly one creates it (the kernel zero-fills it before
   * any shmget can find it), and a segment removed between the tries is created afresh.
   * `created` tells which happened; the creating handle removes it when closed unless
   * `persist`, as `create`'s does. An opened segment keeps its own size.
   *
   * @param key The key, not IPC_PRIVATE.
   * @param options `size`, `mode` and `persist` for creating; `timeout` (default 5000 ms) and
   * `signal` bound the retries.
   * @returns The segment.
   * @example
   * ```ts
   * import { SysVSharedMemory } from "@posix/ipc/sysv";
   *
   * const key = 0x5eee0000 + (Deno.pid & 0xffff);
   * using first = await SysVSharedMemory.openOrCreate(key, { size: 64 });
   * using second = await SysVSharedMemory.openOrCreate(key, { size: 64 });
   * console.log(first.created, second.created, first.id === second.id); // true false true
   * ```
   */
  static async openOrCreate(
    key: number,
    options: { size: number; mode?: number; persist?: boolean } & OpenOrCreateWaitOptions,
  ): Promise<SysVSharedMemory> {
    const { wait, steps } = SysVSharedMemory.#openOrCreateSteps(key, options, "openOrCreate");
    return (await openOrCreateWith(wait, steps)).handle;
  }

  /**
   * {@linkcode SysVSharedMemory.openOrCreate} for code that cannot await: the same protocol,
   * with the retries (up to `timeout`, default 5000 ms) blocking this thread in short sleeps.
   *
   * @param key The key, not IPC_PRIVATE.
   * @param options As for {@linkcode SysVSharedMemory.openOrCreate}; `signal` is only checked
   * before the wait.
   * @returns The segment.
   * @example
   * ```ts
   * import { SysVSharedMemory } from "@posix/ipc/sysv";
   *
   * const key = 0x5eef0000 + (Deno.pid & 0xffff);
   * using first = SysVSharedMemory.openOrCreateSync(key, { size: 64 });
   * using second = SysVSharedMemory.openOrCreateSync(key, { size: 64, timeout: 1000 });
   * console.log(first.created, second.created, first.id === second.id); // true false true
   * ```
   */
  static openOrCreateSync(
    key: number,
    options: { size: number; mode?: number; persist?: boolean } & OpenOrCreateWaitOptions,
  ): SysVSharedMemory {
    const { wait, steps } = SysVSharedMemory.#openOrCreateSteps(key, options, "openOrCreateSync");
    return openOrCreateSyncWith(wait, steps).handle;
  }

  /** Checks openOrCreate's arguments and lays out its steps, for the async and sync forms. */
  static #openOrCreateSteps(
    key: number,
    options: { size: number; mode?: number; persist?: boolean } & OpenOrCreateWaitOptions,
    call: string,
  ): { wait: OpenOrCreateWaitOptions; steps: OpenOrCreateSteps<SysVSharedMemory> } {
    const unsigned = validateOpenKey(key, "shared memory");
    const own = ownOptions(options, `SysVSharedMemory.${call}() options`);
    const create = { size: own.size!, mode: own.mode, persist: own.persist };
    validateSize(create.size, "shared memory size");
    validateMode(create.mode ?? 0o600);
    optionalBoolean(create.persist, "persist");
    return {
      wait: own,
      steps: {
        what: `open or create System V shared memory ${keyName(unsigned)}`,
        create: () => SysVSharedMemory.create(unsigned, create),
        open: () => SysVSharedMemory.open(unsigned),
      },
    };
  }

  /**
   * Opens the segment of a key.
   *
   * @param key The key.
   * @returns The segment; this handle never removes it.
   * @throws {Deno.errors.NotFound} when no segment has that key.
   * @throws {RangeError} for IPC_PRIVATE (0), which names no object, or a key that is not 32 bits.
   * @example
   * ```ts
   * import { SysVSharedMemory } from "@posix/ipc/sysv";
   *
   * const key = 0x5eed0000 + (Deno.pid & 0xffff);
   * using created = SysVSharedMemory.create(key, { size: 64 });
   * using opened = SysVSharedMemory.open(key);
   * console.log(opened.id === created.id); // true
   * ```
   */
  static open(key: number): SysVSharedMemory {
    const unsigned = validateOpenKey(key, "shared memory");
    const id = check(libc().shmget(cKey(unsigned), 0n, 0), "shmget", {
      action: "open System V shared memory",
      objectName: keyName(unsigned),
    });
    return createSegment(id, unsigned, false);
  }

  /**
   * Whether this handle's call created the segment: `true` from `create`, and from
   * `openOrCreate` when it created it.
   */
  get created(): boolean {
    return wasCreated(this);
  }

  /**
   * Attaches the segment to this process.
   *
   * @param options `readOnly`: map it read-only (copies through `read()` only).
   * @returns The attachment; detach it, or use `using`. Closing the segment handle detaches
   * the attachments made through it.
   * @throws {TypeError} for options that are not an object, or a `readOnly` that is not a boolean.
   * @throws {Deno.errors.BadResource} when this handle is closed.
   * @example
   * ```ts
   * import { IPC_PRIVATE, SysVSharedMemory } from "@posix/ipc/sysv";
   *
   * using segment = SysVSharedMemory.create(IPC_PRIVATE, { size: 16 });
   * using view = segment.attach();
   * console.log(view.bytes.length); // 16
   * ```
   */
  attach(options: { readOnly?: boolean } = {}): SysVAttachment {
    this.#open();
    const given = optionsObject(options, "SysVSharedMemory.attach() options");
    const readOnly = optionalBoolean(given.readOnly, "readOnly") ?? false;
    const size = Number(stat(this.id, this.#label).getBigUint64(shmid_ds.shm_segsz, true));
    const pointer = libc().shmat(this.id, null, readOnly ? SHM_RDONLY : 0);
    if (pointer === null || address(pointer) === MAP_FAILED) {
      throw systemError(errno(), "shmat", { action: `attach ${this.#label}` });
    }
    const attachment = createAttachment(pointer, size, readOnly, this.#label);
    for (const ref of this.#attachments) {
      if (ref.deref()?.detached !== false) this.#attachments.delete(ref);
    }
    this.#attachments.add(new WeakRef(attachment));
    return attachment;
  }

  /**
   * The segment's size, attachments, pids, times and permissions (IPC_STAT).
   *
   * @returns The state now.
   * @example
   * ```ts
   * import { IPC_PRIVATE, SysVSharedMemory } from "@posix/ipc/sysv";
   *
   * using segment = SysVSharedMemory.create(IPC_PRIVATE, { size: 64 });
   * console.log(segment.stat().creatorPid === Deno.pid); // true
   * ```
   */
  stat(): SysVSharedMemoryStat {
    this.#open();
    const view = stat(this.id, this.#label);
    return {
      ...readPermissions(view),
      size: Number(view.getBigUint64(shmid_ds.shm_segsz, true)),
      attachCount: Number(view.getBigUint64(shmid_ds.shm_nattch, true)),
      creatorPid: view.getInt32(shmid_ds.shm_cpid, true),
      lastPid: view.getInt32(shmid_ds.shm_lpid, true),
      attachedAt: readTime(view, shmid_ds.shm_atime),
      detachedAt: readTime(view, shmid_ds.shm_dtime),
      changedAt: readTime(view, shmid_ds.shm_ctime),
    };
  }

  /**
   * Sets the segment's permission bits (IPC_SET). System V objects ignore the umask, so the
   * mode given at creation is already exact; this changes it later.
   *
   * @param mode Permission bits, 0 to 0o777.
   * @throws {RangeError} for a mode outside 0 to 0o777.
   * @throws {Deno.errors.PermissionDenied} unless this process is its owner, its creator or
   * root; the message names them.
   * @throws {Deno.errors.BadResource} when closed.
   * @example
   * ```ts
   * import { IPC_PRIVATE, SysVSharedMemory } from "@posix/ipc/sysv";
   *
   * using segment = SysVSharedMemory.create(IPC_PRIVATE, { size: 64 });
   * segment.chmod(0o660);
   * ```
   */
  chmod(mode: number): void {
    const bits = validatePermissionBits(mode);
    this.#open();
    changePermissions("shm", this.id, this.#label, { mode: bits });
  }

  /**
   * Gives the segment to another user and group (IPC_SET): its owner, its creator or root may.
   * The creator's ids stay as they are.
   *
   * @param uid The new owner's user id (0 to 2^32 - 2), or -1 to keep it.
   * @param gid The new group id, or -1 (the default) to keep it.
   * @throws {RangeError} for an id out of range.
   * @throws {Deno.errors.PermissionDenied} when this process may not make the change.
   * @throws {Deno.errors.BadResource} when closed.
   * @example
   * ```ts
   * import { IPC_PRIVATE, SysVSharedMemory } from "@posix/ipc/sysv";
   *
   * using segment = SysVSharedMemory.create(IPC_PRIVATE, { size: 64 });
   * segment.chown(-1, -1); // keeps both
   * ```
   */
  chown(uid: number, gid: number = -1): void {
    const [user, group] = validateOwner(uid, gid);
    this.#open();
    changePermissions("shm", this.id, this.#label, { uid: user, gid: group });
  }

  /**
   * Marks the segment for removal (IPC_RMID): it goes once the last attachment is detached,
   * and its key is free at once.
   *
   * @example
   * ```ts
   * import { IPC_PRIVATE, SysVSharedMemory } from "@posix/ipc/sysv";
   *
   * const segment = SysVSharedMemory.create(IPC_PRIVATE, { size: 64, persist: true });
   * segment.remove();
   * segment.close();
   * ```
   */
  remove(): void {
    this.#open();
    this.#lease.owned = false;
    check(libc().shmctl(this.id, IPC_RMID, null), "shmctl", { action: `remove ${this.#label}` });
  }

  /**
   * Detaches the attachments made through this handle and, in the creator's handle without
   * `persist`, removes the segment. Closing again does nothing.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    removeWhenUnreachable.unregister(this);
    for (const ref of this.#attachments) ref.deref()?.detach();
    this.#attachments.clear();
    if (this.#lease.owned) {
      this.#lease.owned = false;
      removed(libc().shmctl(this.id, IPC_RMID, null), [EINVAL, EIDRM], "shmctl", {
        action: `remove ${this.#label}`,
      });
    }
  }

  /** Same as {@linkcode SysVSharedMemory.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  get #label(): string {
    return label("System V shared memory", this.key, this.id);
  }

  #open(): void {
    if (this.#closed) throw closedError(this.#label);
  }
}
