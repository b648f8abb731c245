/**
 * POSIX shared memory: a block of memory that several processes map at once, named
 * (`shm_open`, visible in /dev/shm) or anonymous (`memfd_create`, handed to a child by
 * descriptor).
 *
 * The handle that creates a named segment owns the name and removes it when closed, unless
 * created with `persist: true`; handles that only open it never remove it.
 *
 * @example A segment that another process opens by name
 * ```ts
 * import { SharedMemory } from "@posix/ipc/shm";
 *
 * const name = `/example-${Deno.pid}`;
 * using memory = SharedMemory.create(name, { size: 4096 });
 * new TextEncoder().encodeInto("hello", memory.bytes);
 *
 * using other = SharedMemory.open(name); // as another process would
 * console.log(new TextDecoder().decode(other.bytes.subarray(0, 5))); // "hello"
 * ```
 *
 * @module
 */

import { cstring } from "../ffi/cstring.ts";
import {
  EACCES,
  EBUSY,
  ENOENT,
  ENOSPC,
  EPERM,
  F_GETFL,
  F_SEAL_FUTURE_WRITE,
  F_SEAL_GROW,
  F_SEAL_SHRINK,
  F_SEAL_WRITE,
  MFD_ALLOW_SEALING,
  MFD_CLOEXEC,
  O_ACCMODE,
  O_CREAT,
  O_EXCL,
  O_RDONLY,
  O_RDWR,
} from "../ffi/constants.ts";
import { libc } from "../ffi/libc.ts";
import {
  ConstructorToken,
  formatBytes,
  optionalBoolean,
  optionsObject,
  ownOptions,
  validateMode,
  validateName,
  validateSize,
} from "./_validate.ts";
import { markOwned } from "./_owned.ts";
import { createUnderName, validateNameOrNull } from "./_unique_name.ts";
import {
  markCreated,
  type OpenOrCreateSteps,
  openOrCreateSyncWith,
  type OpenOrCreateWaitOptions,
  openOrCreateWith,
  publishMode,
  stillInitialising,
  validateInit,
  validatePublishedMode,
  wasCreated,
} from "./_open_or_create.ts";
import { RETRY } from "./_wait.ts";

export type { OpenOrCreateWaitOptions } from "./_open_or_create.ts";
import { check, closedError, type Operation, removed, systemError } from "./errors.ts";
import { addSeals, readSeals, type Seal, sealBits, sealNames } from "./_seals.ts";
import {
  changeMode,
  changeOwner,
  type Permissions,
  permissionsOf,
  validateOwner,
  validatePermissionBits,
} from "./_ownership.ts";
import { errno } from "../ffi/libc.ts";

export type { Seal } from "./_seals.ts";
export type { Permissions } from "./_ownership.ts";
import { closeFd, type FdLike, peekFd, takeFd } from "./fd.ts";
import { Mapping } from "./mmap.ts";
import { inUseBeyond, viewsOf } from "./_pins.ts";
import { descriptorStatus, fileStatus, fileSystemSpace } from "./_proc.ts";
import { type FileFacts, statDescriptor } from "./_stat.ts";
import { mapWhole } from "./_map_statted.ts";

/** Options of {@linkcode SharedMemory.create}. */
export interface CreateSharedMemoryOptions {
  /** The size in bytes, a positive integer. */
  size: number;
  /**
   * Permission bits for the new name, 0 to 0o777. Default `0o600`. The segment gets exactly
   * these bits, whatever the umask: it is created with them masked by the umask, then set to
   * them (fchmod) before `create` returns. Someone who opens it in between can only have been
   * given fewer permissions, never more.
   */
  mode?: number;
  /** Keep the name when this handle closes. Default `false`: the creator removes it. */
  persist?: boolean;
}

/** Options of {@linkcode SharedMemory.openOrCreate}. */
export interface OpenOrCreateSharedMemoryOptions
  extends CreateSharedMemoryOptions, OpenOrCreateWaitOptions {
  /**
   * Runs in the creating process only, before any other process may use the segment: fill it
   * in here. May be async; other processes wait for it (up to their `timeout`).
   */
  init?: (memory: SharedMemory) => unknown;
}

/** Options of {@linkcode SharedMemory.open} and {@linkcode SharedMemory.fromFd}. */
export interface OpenSharedMemoryOptions {
  /**
   * Open for reading only: the segment can never be changed through this handle. (JavaScript
   * has no read-only `ArrayBuffer`; the mapping is copy-on-write, so a stray write stays in
   * this process instead of crashing it.) Default `false`; for `fromFd`, the descriptor's own
   * access mode.
   */
  readOnly?: boolean;
}

/** Options of {@linkcode SharedMemory.fromFd}. */
export interface FromFdSharedMemoryOptions extends OpenSharedMemoryOptions {
  /**
   * Seals the segment must carry, or `fromFd` throws `Deno.errors.InvalidData` before mapping
   * it. `["shrink"]` is the one that keeps this process alive: without it, whoever holds the
   * descriptor can shrink the segment under this mapping, and the next touch of a cut page
   * kills this process with SIGBUS.
   */
  requireSeals?: Iterable<Seal>;
}

/** Options of {@linkcode SharedMemory.anonymous}. */
export interface AnonymousSharedMemoryOptions {
  /** The size in bytes, a positive integer. */
  size: number;
  /**
   * Makes the segment sealable (memfd_create with MFD_ALLOW_SEALING) and adds these seals once
   * it is sized, before it is mapped. `[]` only makes it sealable, for
   * {@linkcode SharedMemory.seal} later. With `"write"` the segment stays zero-filled and this
   * handle maps it read-only; to publish content, fill it first and seal later. Without this
   * option the segment can never be sealed, by this process or any it is handed to.
   */
  seal?: Iterable<Seal>;
}

/** The seals that forbid a shared writable mapping: such a segment is mapped read-only. */
const WRITE_SEALS = F_SEAL_WRITE | F_SEAL_FUTURE_WRITE;

/** Where POSIX shared memory lives on Linux, for messages about free space. */
const SHM_DIR = "/dev/shm";

/** What a handle must release, kept apart from the handle so that a finalizer can use it. */
interface Lease {
  fd: number;
  /** The name to remove on close: set for an owner, `null` otherwise. */
  ownedName: string | null;
}

/** The module's key to the constructor: `new SharedMemory()` from outside is a TypeError. */
const token = new ConstructorToken(
  "SharedMemory",
  "SharedMemory.create(), open(), anonymous() or fromFd()",
);

/** Closes what a user forgot to close: a safety net only. */
const releaseWhenUnreachable = new FinalizationRegistry<Lease>((lease) => {
  libc().close(lease.fd);
  if (lease.ownedName) libc().shm_unlink(cstring(lease.ownedName));
});

/**
 * A POSIX shared memory segment, mapped into this process.
 *
 * {@linkcode SharedMemory.buffer} and {@linkcode SharedMemory.bytes} view the memory itself:
 * what one process writes, every other process that maps the segment sees at once. Use
 * `Atomics` on an `Int32Array` over it, or the library's semaphores, to coordinate.
 *
 * @example Counting in shared memory with Atomics
 * ```ts
 * import { SharedMemory } from "@posix/ipc/shm";
 *
 * using memory = SharedMemory.anonymous({ size: 4096 });
 * const counters = new Int32Array(memory.buffer);
 * Atomics.add(counters, 0, 5);
 * console.log(Atomics.load(counters, 0)); // 5
 * ```
 */
export class SharedMemory implements Disposable {
  readonly #name: string | null;
  #readOnly: boolean;
  readonly #lease: Lease;
  #mapping: Mapping | null;
  #size: number;

  private constructor(
    key: ConstructorToken,
    name: string | null,
    lease: Lease,
    mapping: Mapping,
    readOnly: boolean,
  ) {
    token.check(key);
    this.#name = name;
    this.#lease = lease;
    this.#mapping = mapping;
    this.#size = mapping.length;
    this.#readOnly = readOnly;
    releaseWhenUnreachable.register(this, lease, this);
  }

  /**
   * Creates a named segment of `size` bytes and maps it. Fails if the name exists. The pages
   * are reserved at once, so a full /dev/shm fails here with a clear error instead of killing
   * the process with SIGBUS when the memory is first touched.
   *
   * With `null` for a name, a unique one is generated (`/posix-ipc-` and 128 random bits, in
   * hex; posix_ipc's `name=None`): read it from {@linkcode SharedMemory.name} and send it to
   * the processes that should open the segment. It is owned like a given name.
   *
   * @param name "/" then 1 to 254 bytes, with no other "/"; or `null` to generate one.
   * @param options The size, the mode and whether the name outlives this handle.
   * @returns The segment, zero-filled; this handle owns the name.
   * @throws {TypeError} for a bad name.
   * @throws {RangeError} for a bad size or mode.
   * @throws {Deno.errors.AlreadyExists} when the name exists.
   * @throws {IpcError} with code `ENOSPC` when /dev/shm has no room; no name is left behind.
   * @example
   * ```ts
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * using memory = SharedMemory.create(`/jobs-${Deno.pid}`, { size: 1 << 16, mode: 0o600 });
   * console.log(memory.name, memory.size);
   * ```
   * @example A generated name, to pass by message
   * ```ts
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * using memory = SharedMemory.create(null, { size: 4096 });
   * console.log(memory.name); // "/posix-ipc-" and 32 hex digits
   * using opened = SharedMemory.open(memory.name!); // in the process that got the name
   * ```
   */
  static create(name: string | null, options: CreateSharedMemoryOptions): SharedMemory {
    const given = validateNameOrNull(name, "shared memory");
    // Own options, each read once, however many names are tried.
    const own = ownOptions(options, "SharedMemory.create() options");
    return createUnderName(given, (unique) => SharedMemory.#create(unique, own));
  }

  /** {@linkcode SharedMemory.create} under a name that is checked already. */
  static #create(name: string, options: Partial<CreateSharedMemoryOptions>): SharedMemory {
    const size = validateSize(options.size, "shared memory size");
    const mode = validateMode(options.mode ?? 0o600);
    const persist = optionalBoolean(options.persist, "persist") ?? false;
    const operation = { action: "create shared memory", objectName: name };
    const c = libc();
    const path = cstring(name);
    const fd = check(c.shm_open(path, O_RDWR | O_CREAT | O_EXCL, mode), "shm_open", operation);
    try {
      changeMode(fd, mode, operation); // the mode asked, not the umask's: see `mode`
      if (!persist) markOwned(fd); // lets `ipc gc` prove it abandoned if we crash
      check(c.ftruncate(fd, BigInt(size)), "ftruncate", operation);
      reserve(fd, size, `${formatBytes(size)} asked`, SHM_DIR, operation, "ask for less, ");
      const mapping = Mapping.fromFd(fd, { write: true, label: name });
      return markCreated(
        new SharedMemory(token, name, { fd, ownedName: persist ? null : name }, mapping, false),
      );
    } catch (error) {
      closeFd(fd);
      c.shm_unlink(path);
      throw error;
    }
  }

  /**
   * Opens an existing named segment and maps its whole current size, as fstat tells it. This
   * handle never removes the name.
   *
   * A segment made by another program may be sparse (`ftruncate` alone, as Python's
   * `multiprocessing.shared_memory` and `truncate -s` do): its pages get memory only when first
   * touched, and a full /dev/shm then kills the toucher with SIGBUS. So a writable handle
   * reserves the missing pages first (posix_fallocate, which changes no byte), and a read-only
   * one, which may not, checks that they fit in the free space. Either fails with `ENOSPC`
   * instead of crashing later. (A read-only handle stays exposed if other programs fill
   * /dev/shm after it opened; open writable for the full guarantee.)
   *
   * @param name The segment's name, as given to {@linkcode SharedMemory.create}.
   * @param options `readOnly` to open it for reading only.
   * @returns The segment.
   * @throws {TypeError} for a bad name.
   * @throws {Deno.errors.NotFound} when no segment has that name.
   * @throws {Deno.errors.PermissionDenied} when its mode does not allow this user.
   * @throws {Deno.errors.InvalidData} when it is still empty (its creator has not sized it).
   * @throws {IpcError} with code `ENOSPC` when its unbacked pages do not fit in /dev/shm.
   * @example
   * ```ts
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * const name = `/config-${Deno.pid}`;
   * using writer = SharedMemory.create(name, { size: 64 });
   * writer.bytes[0] = 42;
   * using reader = SharedMemory.open(name, { readOnly: true });
   * console.log(reader.bytes[0]); // 42
   * ```
   */
  static open(name: string, options: OpenSharedMemoryOptions = {}): SharedMemory {
    validateName(name, "shared memory");
    options = optionsObject(options, "SharedMemory.open() options");
    const readOnly = optionalBoolean(options.readOnly, "readOnly") ?? false;
    const fd = check(
      libc().shm_open(cstring(name), readOnly ? O_RDONLY : O_RDWR, 0),
      "shm_open",
      { action: "open shared memory", objectName: name },
    );
    return SharedMemory.#adopt(fd, name, readOnly, true);
  }

  /**
   * Opens the named segment, or creates it if no segment has that name, without races: of
   * many processes calling this at once, exactly one creates the segment, and the others open
   * it once it is initialised. The creator makes it with mode 0, runs `init` on it, and only
   * then sets `mode` (exactly: the umask does not apply), so openers never see a segment that
   * `init` has not filled in; they wait for it, up to `timeout`. If `init` throws, the creator
   * removes the segment and rethrows; a waiting opener then creates it in its turn.
   *
   * {@linkcode SharedMemory.created} tells which happened. The creating handle owns the name
   * as {@linkcode SharedMemory.create}'s does (it removes it when closed unless `persist`).
   * An opened segment keeps its own size, which may differ from `size`.
   *
   * @param name The segment's name.
   * @param options `size` and `mode` (not 0) when creating, `persist`, `init`, and `timeout`
   * (default 5000 ms) and `signal` for the wait.
   * @returns The segment.
   * @throws {Deno.errors.TimedOut} when the segment stayed uninitialised (mode 0) for `timeout`
   * ms: its creator may have died while initialising; remove it.
   * @throws {Deno.errors.PermissionDenied} when its mode does not allow this user.
   * @example
   * ```ts
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * const name = `/counters-${Deno.pid}`;
   * using memory = await SharedMemory.openOrCreate(name, {
   *   size: 4096,
   *   init: (created) => void new Int32Array(created.buffer).fill(-1),
   * });
   * console.log(memory.created, new Int32Array(memory.buffer)[0]); // true -1
   * using again = await SharedMemory.openOrCreate(name, { size: 4096 });
   * console.log(again.created); // false
   * ```
   */
  static async openOrCreate(
    name: string,
    options: OpenOrCreateSharedMemoryOptions,
  ): Promise<SharedMemory> {
    const { wait, steps } = SharedMemory.#openOrCreateSteps(name, options, "openOrCreate");
    return (await openOrCreateWith(wait, steps)).handle;
  }

  /**
   * {@linkcode SharedMemory.openOrCreate} for code that cannot await (scripts, workers): the
   * same protocol, with the wait for a creator that is initialising (up to `timeout`, default
   * 5000 ms) blocking this thread in short sleeps. `init` must be synchronous: if it returns
   * a promise, the segment is removed and this throws a TypeError.
   *
   * @param name The segment's name.
   * @param options As for {@linkcode SharedMemory.openOrCreate}; `signal` is only checked
   * before the wait, since nothing can abort it while the thread blocks.
   * @returns The segment.
   * @throws {Deno.errors.TimedOut} when the segment stayed uninitialised (mode 0) for `timeout`
   * ms: its creator may have died while initialising; remove it.
   * @throws {TypeError} when `init` returns a promise.
   * @example
   * ```ts
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * const name = `/sync-counters-${Deno.pid}`;
   * using memory = SharedMemory.openOrCreateSync(name, {
   *   size: 4096,
   *   init: (created) => void created.bytes.fill(7),
   * });
   * using again = SharedMemory.openOrCreateSync(name, { size: 4096, timeout: 1000 });
   * console.log(memory.created, again.created, again.bytes[0]); // true false 7
   * ```
   */
  static openOrCreateSync(
    name: string,
    options: OpenOrCreateSharedMemoryOptions,
  ): SharedMemory {
    const { wait, steps } = SharedMemory.#openOrCreateSteps(name, options, "openOrCreateSync");
    return openOrCreateSyncWith(wait, steps).handle;
  }

  /** Checks openOrCreate's arguments and lays out its steps, for the async and sync forms. */
  static #openOrCreateSteps(
    name: string,
    options: OpenOrCreateSharedMemoryOptions,
    call: string,
  ): { wait: OpenOrCreateWaitOptions; steps: OpenOrCreateSteps<SharedMemory> } {
    validateName(name, "shared memory");
    const own = ownOptions(options, `SharedMemory.${call}() options`);
    const what = `open or create shared memory "${name}"`;
    const size = validateSize(own.size, "shared memory size");
    const mode = validatePublishedMode(validateMode(own.mode ?? 0o600), what);
    const persist = optionalBoolean(own.persist, "persist") ?? false;
    const init = validateInit<SharedMemory>(own.init, what);
    return {
      wait: own,
      steps: {
        what,
        create: () => SharedMemory.create(name, { size, mode: 0, persist }),
        open: () => SharedMemory.#openInitialised(name),
        initialisation: {
          init,
          publish: (handle) =>
            publishMode(handle.fd, mode, { action: "publish shared memory", objectName: name }),
          abandon: (handle) => {
            if (persist) SharedMemory.unlink(name);
            handle.close();
          },
        },
      },
    };
  }

  /** Opens a segment unless its creator is still initialising it (mode 0): then RETRY. */
  static #openInitialised(name: string): SharedMemory | typeof RETRY {
    const initialising = () => stillInitialising(fileStatus(`${SHM_DIR}${name}`)?.mode);
    let memory: SharedMemory;
    try {
      memory = SharedMemory.open(name);
    } catch (error) {
      // Mode 0 denies others; root opens it, but it may still be empty (InvalidData).
      const waiting = error instanceof Deno.errors.PermissionDenied ||
        error instanceof Deno.errors.InvalidData;
      if (waiting && initialising()) return RETRY;
      throw error;
    }
    if (!stillInitialising(descriptorStatus(memory.fd)?.mode)) return memory;
    memory.close();
    return RETRY;
  }

  /**
   * Creates an anonymous segment (`memfd_create`): it has no name, so nothing can leak, and
   * it is freed when the last descriptor and mapping go. Hand it to a child process by
   * descriptor; the child maps it with {@linkcode SharedMemory.fromFd}.
   *
   * @param options The size in bytes, and the seals to add (which also makes it sealable).
   * @returns The segment, zero-filled.
   * @throws {RangeError} for a bad size.
   * @throws {TypeError} for a seal name that is not one of {@linkcode Seal}.
   * @example A segment nobody can shrink under its readers
   * ```ts
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * using memory = SharedMemory.anonymous({ size: 1024, seal: ["shrink", "grow"] });
   * console.log(memory.name, memory.seals); // null [ "shrink", "grow" ]
   * ```
   */
  static anonymous(options: AnonymousSharedMemoryOptions): SharedMemory {
    const own = ownOptions(options, "SharedMemory.anonymous() options");
    const size = validateSize(own.size, "shared memory size");
    const seals = own.seal === undefined ? undefined : sealBits(own.seal, "seal");
    const operation = { action: "create anonymous shared memory" };
    const c = libc();
    const flags = MFD_CLOEXEC | (seals === undefined ? 0 : MFD_ALLOW_SEALING);
    const fd = check(c.memfd_create(cstring("posix-ipc"), flags), "memfd_create", operation);
    try {
      check(c.ftruncate(fd, BigInt(size)), "ftruncate", operation);
      if (seals) addSeals(fd, seals, false, operation);
    } catch (error) {
      closeFd(fd);
      throw error;
    }
    // Not reserved: memfd memory is not limited by a file system's size, only by memory itself.
    const readOnly = ((seals ?? 0) & WRITE_SEALS) !== 0; // a write seal forbids a shared writable map
    return markCreated(SharedMemory.#adopt(fd, null, readOnly, false)); // closes fd if it fails
  }

  /**
   * Maps a segment from a descriptor, typically one a parent process handed down. On success
   * the handle owns the descriptor and closes it; on failure it stays the caller's. Its
   * unbacked pages are reserved or checked as {@linkcode SharedMemory.open} does.
   *
   * A segment from another process may be shrunk by it at any time, and a touch of a page
   * past the new end kills this process with SIGBUS. To rule that out, require the seal
   * `"shrink"` (`{ requireSeals: ["shrink"] }`): the kernel then refuses every shrink, by
   * anyone, for good.
   *
   * @param fd The descriptor: a number or an {@linkcode OwnedFd}.
   * @param options `readOnly`, by default read-only when the descriptor is or when the segment
   * is sealed against writes; `requireSeals`, the seals it must carry.
   * @returns The segment.
   * @throws {Deno.errors.BadResource} when `fd` is not open.
   * @throws {Deno.errors.InvalidData} when a seal of `requireSeals` is missing.
   * @throws {Deno.errors.PermissionDenied} for `readOnly: false` on a write-sealed segment.
   * @throws {IpcError} with code `ENOSPC` when its unbacked pages do not fit in memory.
   * @example
   * ```ts
   * import { SharedMemory } from "@posix/ipc/shm";
   * import { OwnedFd } from "@posix/ipc";
   *
   * using parent = SharedMemory.anonymous({ size: 16 });
   * parent.bytes[0] = 9;
   * using child = SharedMemory.fromFd(new OwnedFd(parent.fd).dup()); // as a child would
   * console.log(child.bytes[0]); // 9
   * ```
   */
  static fromFd(fd: FdLike, options: FromFdSharedMemoryOptions = {}): SharedMemory {
    const own = ownOptions(options, "SharedMemory.fromFd() options");
    const asked = optionalBoolean(own.readOnly, "readOnly");
    const required = own.requireSeals === undefined
      ? 0
      : sealBits(own.requireSeals, "requireSeals");
    const descriptor = peekFd(fd, "fd");
    const label = `shared memory fd ${descriptor}`;
    const operation = { action: "map shared memory", objectName: label };
    // One statx for everything: the type, the size mapped, the backing, the identity.
    const facts = statDescriptor(descriptor, {
      action: `map shared memory from file descriptor ${descriptor}`,
    });
    let readOnly = asked;
    if (required !== 0 || asked === false || facts.allocated < facts.size) {
      // The seals, the access mode and the backing need the descriptor's flags and seals.
      readOnly = accessOf(descriptor, asked, required, label, operation);
      ensureBacked(descriptor, facts, readOnly, operation, `/proc/self/fd/${descriptor}`);
    }
    let mapping = mapWhole(descriptor, facts, readOnly !== true, label);
    if (readOnly === undefined) {
      // Nothing asked: writable unless the descriptor is read-only (mmap says EACCES) or the
      // segment is sealed against writes (EPERM), which is what `readOnly` defaults to; asking
      // mmap spares two fcntl calls on the path of every segment received.
      readOnly = mapping === EACCES || mapping === EPERM;
      if (readOnly) mapping = mapWhole(descriptor, facts, false, label);
    }
    if (typeof mapping === "number") throw systemError(mapping, "mmap", operation);
    try {
      return new SharedMemory(
        token,
        null,
        { fd: takeFd(fd, "fd"), ownedName: null },
        mapping,
        readOnly,
      );
    } catch (error) {
      mapping.close();
      throw error;
    }
  }

  /**
   * Removes a name. Processes that have the segment open or mapped keep it until they close
   * it; the memory is freed after the last one.
   *
   * @param name The segment's name.
   * @throws {TypeError} for a bad name.
   * @throws {Deno.errors.NotFound} when no segment has that name.
   * @example
   * ```ts
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * const name = `/left-behind-${Deno.pid}`;
   * SharedMemory.create(name, { size: 64, persist: true }).close();
   * SharedMemory.unlink(name);
   * ```
   */
  static unlink(name: string): void {
    validateName(name, "shared memory");
    check(libc().shm_unlink(cstring(name)), "shm_unlink", {
      action: "remove shared memory",
      objectName: name,
    });
  }

  /**
   * Maps `fd` and wraps it, after making sure its pages are backed when `backed` is set; closes
   * `fd` if anything fails, so callers must not close it again.
   */
  static #adopt(fd: number, name: string | null, readOnly: boolean, backed: boolean): SharedMemory {
    const label = name ?? `shared memory fd ${fd}`;
    const operation = { action: "open shared memory", objectName: label };
    try {
      const facts = statDescriptor(fd, operation);
      if (backed) ensureBacked(fd, facts, readOnly, operation, SHM_DIR);
      const mapping = mapWhole(fd, facts, !readOnly, label);
      if (typeof mapping === "number") throw systemError(mapping, "mmap", operation);
      return new SharedMemory(token, name, { fd, ownedName: null }, mapping, readOnly);
    } catch (error) {
      closeFd(fd);
      throw error;
    }
  }

  /** The segment's name, or `null` when it is anonymous or came from a descriptor. */
  get name(): string | null {
    return this.#name;
  }

  /** The mapped size in bytes. */
  get size(): number {
    return this.#size;
  }

  /** Whether the segment can be changed through this handle. */
  get readOnly(): boolean {
    return this.#readOnly;
  }

  /** Whether this handle was closed. */
  get closed(): boolean {
    return this.#mapping === null;
  }

  /**
   * Whether this handle's call created the segment: `true` from {@linkcode SharedMemory.create}
   * and {@linkcode SharedMemory.anonymous}, and from {@linkcode SharedMemory.openOrCreate} when
   * it created it.
   */
  get created(): boolean {
    return wasCreated(this);
  }

  /**
   * The segment's descriptor, to hand to a child process. **UNSAFE**: valid only while this
   * handle is open; afterwards the number may belong to another file.
   *
   * @throws {Deno.errors.BadResource} when closed.
   */
  get fd(): number {
    this.#open();
    return this.#lease.fd;
  }

  /**
   * The memory as an `ArrayBuffer` (not a copy). Detached, and so empty, after `close()` or
   * `resize()`: take it again after a resize.
   *
   * @throws {Deno.errors.BadResource} when closed.
   */
  get buffer(): ArrayBuffer {
    return this.#open().buffer;
  }

  /**
   * A `Uint8Array` over the memory; the same life as {@linkcode SharedMemory.buffer}.
   *
   * @throws {Deno.errors.BadResource} when closed.
   */
  get bytes(): Uint8Array<ArrayBuffer> {
    return this.#open().bytes;
  }

  /**
   * The mapping behind {@linkcode SharedMemory.buffer}, for APIs that take a `Mapping`.
   *
   * @throws {Deno.errors.BadResource} when closed.
   */
  get mapping(): Mapping {
    return this.#open();
  }

  /**
   * Changes the segment's size (ftruncate) and maps it again: views taken before are detached,
   * so take `buffer` or `bytes` again (a buffer transferred away before reads zeros from then
   * on, as after `close()`). Growing a named segment reserves its pages as `create` does.
   *
   * Touching a mapped page past the end of the segment kills a process with SIGBUS, so this
   * refuses to shrink the segment below anything this process still uses in it: a semaphore,
   * mutex or other object placed in it through any handle, or the views of another open handle
   * or `Mapping` of the same segment. Other processes cannot be seen from here: they keep their
   * mapping at the old size until they reopen, and their access past the new end kills them,
   * so shrink only what no other process is using.
   *
   * @param size The new size in bytes.
   * @throws {RangeError} for a bad size.
   * @throws {Deno.errors.Busy} (code `EBUSY`) when shrinking would cut off something this
   * process still uses; the message names it and its offset.
   * @throws {Deno.errors.PermissionDenied} when this handle is read-only, or the segment is
   * sealed against the change (`"shrink"`, `"grow"`: code `EPERM`, the message names the seal).
   * @throws {Deno.errors.BadResource} when closed.
   * @example
   * ```ts
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * using memory = SharedMemory.anonymous({ size: 4096 });
   * memory.resize(8192);
   * console.log(memory.bytes.length); // 8192
   * ```
   */
  resize(size: number): void {
    validateSize(size, "shared memory size");
    const old = this.#open();
    const label = this.#name ?? "anonymous shared memory";
    if (this.#readOnly) {
      throw new Deno.errors.PermissionDenied(
        `Cannot resize "${label}": this handle is read-only (opened so, or sealed against writes)`,
      );
    }
    const operation = { action: "resize shared memory", objectName: label };
    const c = libc();
    const fd = this.#lease.fd;
    const sealed = readSeals(fd, operation) & (F_SEAL_SHRINK | F_SEAL_GROW);
    // The file's size now, from fstat: another handle or process may have changed it.
    const before = statDescriptor(fd, operation);
    const inUse = inUseBeyond(before.identity, size, viewsOf(old));
    if (inUse) {
      throw systemError(EBUSY, "ftruncate", {
        ...operation,
        hint: `a ${inUse.what} at offset ${inUse.offset} (to byte ${inUse.end}) still uses it; ` +
          `close that first, or resize to ${inUse.end} bytes or more`,
      });
    }
    if (c.ftruncate(fd, BigInt(size)) !== 0) {
      const code = errno();
      const hint = code === EPERM && sealed
        ? `it is sealed (${sealNames(sealed).join(", ")}): no process may ` +
          `${size < before.size ? "shrink" : "grow"} it, for as long as it exists`
        : undefined;
      throw systemError(code, "ftruncate", { ...operation, hint });
    }
    try {
      if (this.#name) {
        reserve(fd, size, `${formatBytes(size)} asked`, SHM_DIR, operation, "ask for less, ");
      }
      this.#mapping = Mapping.fromFd(fd, { write: true, label });
    } catch (error) {
      c.ftruncate(fd, BigInt(before.size));
      throw error;
    }
    this.#size = size;
    old.close();
  }

  /**
   * The seals the segment carries (F_GET_SEALS), in a fixed order. A named segment shows
   * `["seal"]`: the kernel creates every shm_open file sealed against seals.
   *
   * @throws {Deno.errors.BadResource} when closed.
   * @example
   * ```ts
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * using memory = SharedMemory.anonymous({ size: 64, seal: ["grow"] });
   * console.log(memory.seals); // [ "grow" ]
   * ```
   */
  get seals(): Seal[] {
    this.#open();
    return sealNames(readSeals(this.#lease.fd, this.#operation("read the seals of")));
  }

  /**
   * Adds seals (F_ADD_SEALS); a seal can never be removed, by anyone. Only a segment made by
   * {@linkcode SharedMemory.anonymous} with the `seal` option (`seal: []` will do) can be
   * sealed: a named one never can (the kernel answers EPERM).
   *
   * `"write"` needs that no process maps the segment shared and writable, this handle
   * included: so this handle first maps it again read-only (views taken before are detached:
   * take `bytes` again, and {@linkcode SharedMemory.readOnly} is then `true`). If another
   * handle or process still maps it writable, the seal fails with `Deno.errors.Busy` and this
   * handle is writable again. `"future-write"` keeps every mapping that exists as it is and
   * only refuses new write access (Linux 5.1).
   *
   * @param seals The seals to add, names of {@linkcode Seal}.
   * @throws {TypeError} for a name that is not a seal.
   * @throws {Deno.errors.PermissionDenied} (code `EPERM`) for a named segment, an anonymous
   * one made without `seal`, or one sealed with `"seal"`.
   * @throws {Deno.errors.Busy} (code `EBUSY`) for `"write"` while a process maps it writable.
   * @throws {Deno.errors.BadResource} when closed.
   * @example Fill a segment, then make it immutable before handing it on
   * ```ts
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * using memory = SharedMemory.anonymous({ size: 64, seal: [] });
   * new TextEncoder().encodeInto("final", memory.bytes);
   * memory.seal(["write", "shrink", "grow", "seal"]);
   * console.log(memory.readOnly, memory.seals); // true [ "shrink", "grow", "write", "seal" ]
   * ```
   */
  seal(seals: Iterable<Seal>): void {
    const bits = sealBits(seals, "seal");
    const old = this.#open();
    if (bits === 0) return; // the kernel would refuse even nothing once "seal" is set
    const operation = this.#operation("seal");
    const fd = this.#lease.fd;
    const remap = (bits & F_SEAL_WRITE) !== 0 && !this.#readOnly;
    if (!remap) return addSeals(fd, bits, this.#name !== null, operation);
    // This handle's own shared writable mapping would make the kernel refuse: map it again
    // read-only (copy-on-write, which the seal allows) before asking.
    const label = this.#name ?? `shared memory fd ${fd}`;
    const readable = Mapping.fromFd(fd, { write: false, label });
    old.close();
    this.#mapping = readable;
    this.#readOnly = true;
    try {
      addSeals(fd, bits, this.#name !== null, operation);
    } catch (error) {
      this.#mapping = Mapping.fromFd(fd, { write: true, label });
      this.#readOnly = false;
      readable.close();
      throw error;
    }
  }

  /**
   * The segment's permission bits and owner, as the kernel has them now.
   *
   * @throws {Deno.errors.BadResource} when closed.
   * @example
   * ```ts
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * using memory = SharedMemory.create(`/perms-${Deno.pid}`, { size: 64, mode: 0o640 });
   * console.log(memory.permissions.mode.toString(8)); // "640"
   * ```
   */
  get permissions(): Permissions {
    this.#open();
    return permissionsOf(this.#lease.fd, this.#operation("read the mode of"));
  }

  /**
   * Sets the segment's permission bits (fchmod) to exactly `mode`, whatever the umask.
   * Processes that have it open keep the access they had.
   *
   * @param mode Permission bits, 0 to 0o777.
   * @throws {RangeError} for a mode outside 0 to 0o777.
   * @throws {Deno.errors.PermissionDenied} when this process neither owns it nor is root; the
   * message names the owner.
   * @throws {Deno.errors.BadResource} when closed.
   * @example
   * ```ts
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * using memory = SharedMemory.create(`/shared-with-group-${Deno.pid}`, { size: 64 });
   * memory.chmod(0o660);
   * console.log(memory.permissions.mode === 0o660); // true
   * ```
   */
  chmod(mode: number): void {
    const bits = validatePermissionBits(mode);
    this.#open();
    changeMode(this.#lease.fd, bits, this.#operation("change the mode of"));
  }

  /**
   * Gives the segment to another user and group (fchown), as root may; its owner may only
   * change its group, to one of its own.
   *
   * @param uid The new owner's user id (0 to 2^32 - 2), or -1 to keep it.
   * @param gid The new group id, or -1 (the default) to keep it.
   * @throws {RangeError} for an id out of range; {@linkcode TypeError} for one that is no number.
   * @throws {Deno.errors.PermissionDenied} when this process may not make the change.
   * @throws {Deno.errors.BadResource} when closed.
   * @example
   * ```ts
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * using memory = SharedMemory.create(`/owned-${Deno.pid}`, { size: 64 });
   * memory.chown(-1, memory.permissions.gid); // keeps both: allowed to anyone who owns it
   * ```
   */
  chown(uid: number, gid: number = -1): void {
    const [user, group] = validateOwner(uid, gid);
    this.#open();
    changeOwner(this.#lease.fd, user, group, this.#operation("change the owner of"));
  }

  /**
   * Removes the segment's name now, as {@linkcode SharedMemory.unlink} does; this handle stays
   * usable, and no longer removes the name when closed.
   *
   * @throws {TypeError} when the segment has no name.
   * @throws {Deno.errors.BadResource} when closed.
   * @example
   * ```ts
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * using memory = SharedMemory.create(`/private-${Deno.pid}`, { size: 64, persist: true });
   * memory.unlink(); // nobody else can open it now, and the name cannot leak
   * ```
   */
  unlink(): void {
    this.#open();
    if (!this.#name) throw new TypeError("Cannot unlink anonymous shared memory: it has no name");
    this.#lease.ownedName = null;
    SharedMemory.unlink(this.#name);
  }

  /**
   * Unmaps the memory (detaching every view), closes the descriptor, and, in the handle that
   * created the name without `persist`, removes the name. Closing again does nothing. A buffer
   * that was transferred away (`transfer()`, `postMessage`) cannot be detached: its pages are
   * replaced with private zero pages instead, so it reads zeros and never crashes, and
   * everything is released all the same. A handle dropped without `close()` is released the
   * same way once it and every view of its memory are unreachable.
   *
   * @example
   * ```ts
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * const memory = SharedMemory.create(`/closing-${Deno.pid}`, { size: 64 });
   * const bytes = memory.bytes;
   * memory.close(); // the name is removed; `bytes` is now empty
   * console.log(bytes.length); // 0
   * ```
   */
  close(): void {
    const mapping = this.#mapping;
    if (!mapping) return;
    this.#mapping = null;
    releaseWhenUnreachable.unregister(this);
    const name = this.#lease.ownedName;
    this.#lease.ownedName = null;
    // Each step runs even if one before it throws (say, EBADF from a descriptor someone closed
    // behind this handle); none runs twice, since the handle counts as closed from the start.
    try {
      mapping.close();
    } finally {
      try {
        closeFd(this.#lease.fd);
      } finally {
        // Someone may have removed the name already: the goal is reached all the same.
        if (name) {
          removed(libc().shm_unlink(cstring(name)), [ENOENT], "shm_unlink", {
            action: "remove shared memory",
            objectName: name,
          });
        }
      }
    }
  }

  /** Same as {@linkcode SharedMemory.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #open(): Mapping {
    if (!this.#mapping) throw closedError(`shared memory "${this.#name ?? "anonymous"}"`);
    return this.#mapping;
  }

  #operation(verb: string): Operation {
    return { action: `${verb} shared memory`, objectName: this.#name ?? `fd ${this.#lease.fd}` };
  }
}

/**
 * Throws `Deno.errors.InvalidData` unless the seals `has` include every one of `required`:
 * a received segment that lacks them could be changed under this process's mappings.
 */
function requireSeals(has: number, required: number, label: string): void {
  const missing = required & ~has;
  if (missing === 0) return;
  const danger = missing & F_SEAL_SHRINK
    ? "; whoever holds its descriptor could shrink it under this mapping, and a touch of a cut " +
      "page would kill this process with SIGBUS"
    : "";
  throw new Deno.errors.InvalidData(
    `Cannot map "${label}": it lacks the seals required (${sealNames(missing).join(", ")}); ` +
      `it has ${has ? sealNames(has).join(", ") : "none"}${danger}`,
  );
}

/**
 * Whether `fromFd` maps read-only, from the descriptor's access mode and the segment's seals:
 * `asked` when given (`false` on a write-sealed segment is PermissionDenied), else read-only
 * when either forbids writing. Checks `required` seals first (InvalidData).
 */
function accessOf(
  descriptor: number,
  asked: boolean | undefined,
  required: number,
  label: string,
  operation: Operation,
): boolean {
  const flags = check(libc().fcntl(descriptor, F_GETFL, 0), "fcntl", operation);
  const seals = readSeals(descriptor, operation);
  requireSeals(seals, required, label);
  const writeSealed = (seals & WRITE_SEALS) !== 0;
  if (asked === false && writeSealed) {
    throw new Deno.errors.PermissionDenied(
      `Cannot map "${label}" for writing: it is sealed against writes (${
        sealNames(seals).join(", ")
      }); map it with { readOnly: true }`,
    );
  }
  return asked ?? ((flags & O_ACCMODE) === O_RDONLY || writeSealed);
}

/**
 * Reserves the first `size` bytes of `fd` (posix_fallocate, which allocates the holes and
 * changes no byte) so that first touch cannot SIGBUS. On ENOSPC the message starts with `what`
 * and says how much room `dir` has.
 */
function reserve(
  fd: number,
  size: number,
  what: string,
  dir: string,
  operation: Operation,
  advice = "",
): void {
  const error = libc().posix_fallocate(fd, 0n, BigInt(size));
  if (error === 0) return;
  const hint = error === ENOSPC ? `${what}, ${spaceIn(dir, advice)}` : undefined;
  throw systemError(error, "posix_fallocate", { ...operation, hint });
}

/**
 * Makes sure that no page of the segment behind `fd`, which another program may have sized
 * without reserving it (a sparse file), can SIGBUS when first touched: a writable descriptor
 * reserves the missing pages; a read-only one, which cannot, checks that they fit in the free
 * space of the segment's file system. `facts` is the descriptor's statx, just taken.
 */
function ensureBacked(
  fd: number,
  facts: FileFacts,
  readOnly: boolean,
  operation: Operation,
  dir: string,
): void {
  const missing = facts.size - facts.allocated;
  if (missing <= 0) return; // every page is backed, as create leaves them
  const what = `${formatBytes(missing)} of its ${formatBytes(facts.size)} are not backed yet`;
  if (!readOnly) return reserve(fd, facts.size, what, dir, operation);
  // Through the descriptor: the segment's own file system, /dev/shm or memfd's.
  const space = fileSystemSpace(`/proc/self/fd/${fd}`);
  // A total of 0 is a file system without a size limit, such as memfd's.
  if (space && space.total > 0 && space.free < missing) {
    throw systemError(ENOSPC, "statvfs", {
      ...operation,
      hint: `${what} (touching them would kill the process with SIGBUS), ${spaceIn(dir)}`,
    });
  }
}

/** "N free of M in DIR; …free some, or enlarge DIR", or a plainer phrase when statvfs fails. */
function spaceIn(dir: string, advice = ""): string {
  const space = fileSystemSpace(dir);
  if (!space) return `${dir} is full`;
  return `${formatBytes(space.free)} free of ${formatBytes(space.total)} in ${dir}; ${advice}` +
    `free some, or enlarge ${dir} (mount -o remount,size=…)`;
}
