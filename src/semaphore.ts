/**
 * POSIX semaphores between processes: named ones (`sem_open`, visible in /dev/shm as
 * `sem.NAME`) and unnamed ones placed inside shared memory (`sem_init` with pshared), so that
 * a ring buffer or a worker pool can keep its counters and its data in one segment.
 *
 * `wait()` never blocks the event loop: it takes the count at once when it can, and otherwise
 * waits on a worker thread in slices of at most 100 ms, so that a timeout, an abort or a close
 * ends it promptly. A count that arrives just as a wait is abandoned is posted back, never lost.
 *
 * @example A counter guarded by a named semaphore
 * ```ts
 * import { Semaphore } from "@posix/ipc/semaphore";
 *
 * using lock = Semaphore.create(`/counter-lock-${Deno.pid}`, { value: 1 });
 * {
 *   using _permit = await lock.acquire(); // posts again when the scope ends
 *   // … the critical section, safe from every process that uses the same name …
 * }
 * console.log(lock.value); // 1
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
  CLOCK_MONOTONIC,
  EAGAIN,
  EINTR,
  ENOENT,
  ETIMEDOUT,
  O_CREAT,
  O_EXCL,
  SEM_VALUE_MAX,
} from "../ffi/constants.ts";
import { sem_t } from "../ffi/layout.ts";
import { errno, libc } from "../ffi/libc.ts";
import { markOwnedSemaphore } from "./_owned.ts";
import { createUnderName, validateNameOrNull } from "./_unique_name.ts";
import {
  changeMode,
  changeOwner,
  type Permissions,
  permissionsOf,
  validateOwner,
  validatePermissionBits,
} from "./_ownership.ts";
import { withSemaphoreFile } from "./_semaphore_file.ts";
import { place } from "./_placement.ts";
import {
  ConstructorToken,
  optionalBoolean,
  optionsObject,
  ownOptions,
  validateInteger,
  validateMode,
  validateName,
} from "./_validate.ts";
import {
  deadlineAfter,
  deadlineIn,
  readWaitOptions,
  RETRY,
  sliceUntil,
  validateWaitOptions,
  type WaitOptions,
  waitUntil,
} from "./_wait.ts";
import { check, closedError, type Operation, removed, systemError } from "./errors.ts";
import { closeFd } from "./fd.ts";
import { selectable, type SelectAdapter } from "./select/protocol.ts";
import { semaphoreAdapter } from "./select/semaphore.ts";
import type { Mapping } from "./mmap.ts";
import type { SharedMemory } from "./shm.ts";

export type { WaitOptions } from "./_wait.ts";
export type { Permissions } from "./_ownership.ts";
export type { OpenOrCreateWaitOptions } from "./_open_or_create.ts";

/** glibc names a semaphore's file "sem.NAME" in /dev/shm, so 4 bytes fewer are left for NAME. */
const SEMAPHORE_NAME_MAX = 251;

/** Options of {@linkcode Semaphore.create}. */
export interface CreateSemaphoreOptions {
  /** The initial count, 0 to 2147483647. Default 0. */
  value?: number;
  /**
   * Permission bits for the new name, 0 to 0o777. Default `0o600`. The semaphore gets exactly these
   * bits, whatever the umask: it is created with them masked by the umask, then set to them
   * before `create` returns; someone who opens it in between can only have been given fewer
   * permissions, never more.
   */
  mode?: number;
  /** Keep the name when this handle closes. Default `false`: the creator removes it. */
  persist?: boolean;
}

/** Options of {@linkcode Semaphore.openOrCreate}. */
export interface OpenOrCreateSemaphoreOptions
  extends CreateSemaphoreOptions, OpenOrCreateWaitOptions {}

/** A permit taken by {@linkcode Semaphore.acquire}: disposing it posts the count back, once. */
export interface SemaphorePermit extends Disposable {
  /** Posts the count back; later calls do nothing. */
  release(): void;
}

/** What a handle must release when its last wait has ended. */
type Release = () => void;

/** What a handle holds, kept apart from the handle so that its finalizer can use it. */
interface SemaphoreLease {
  /** Lets go of the `sem_t`: sem_close for a named one, the pin on the memory for a placed one. */
  readonly release: Release;
  /** The name to remove when the handle goes: set for its creator without `persist`. */
  ownedName: string | null;
}

/**
 * The safety net for a handle dropped without `close()`: it lets go of the `sem_t` and removes
 * the name the handle owns. A handle with a pending wait is still reachable, so no worker
 * thread can be inside the `sem_t` when this runs.
 */
const releaseWhenUnreachable = new FinalizationRegistry<SemaphoreLease>((lease) => {
  if (lease.ownedName) libc().sem_unlink(cstring(lease.ownedName));
  try {
    lease.release();
  } catch {
    // A safety net has no one to report to, and an error thrown here would end the process.
  }
});

function validateValue(value: unknown): number {
  return validateInteger(value, "semaphore value", 0, SEM_VALUE_MAX, "SEM_VALUE_MAX is 2^31 - 1");
}

const token = new ConstructorToken(
  "Semaphore",
  "Semaphore.create(), open(), init() or at()",
);

let createSemaphore: (
  sem: Deno.PointerObject,
  label: string,
  release: Release,
  ownedName: string | null,
  name?: string,
) => Semaphore;

/**
 * A counting semaphore shared between processes.
 *
 * @example Unnamed, inside shared memory that a child can map too
 * ```ts
 * import { Semaphore } from "@posix/ipc/semaphore";
 * import { SharedMemory } from "@posix/ipc/shm";
 *
 * using memory = SharedMemory.anonymous({ size: 4096 });
 * using items = Semaphore.init(memory, 0, { value: 0 });
 * items.post();
 * console.log(items.tryWait(), items.tryWait()); // true false
 * ```
 */
export class Semaphore implements Disposable {
  /** The bytes a semaphore takes in shared memory (`sizeof(sem_t)`); place it 8-aligned. */
  static readonly SIZE: number = sem_t.size;

  #sem: Deno.PointerObject | null;
  readonly #label: string;
  /** The name of a named semaphore, `null` for one placed in memory. */
  readonly #name: string | null;
  readonly #lease: SemaphoreLease;
  #waiting = 0;
  #closed = false;

  static {
    createSemaphore = (sem, label, release, ownedName, name) =>
      new Semaphore(token, sem, label, release, ownedName, name ?? null);
  }

  private constructor(
    key: ConstructorToken,
    sem: Deno.PointerObject,
    label: string,
    release: Release,
    ownedName: string | null,
    name: string | null,
  ) {
    token.check(key);
    this.#sem = sem;
    this.#label = label;
    this.#name = name;
    this.#lease = { release, ownedName };
    releaseWhenUnreachable.register(this, this.#lease, this);
  }

  /**
   * Creates a named semaphore; fails if the name exists. With `null` for a name, a unique one
   * is generated (`/posix-ipc-` and 128 random bits, in hex): read it from
   * {@linkcode Semaphore.name} and send it to the processes that should open the semaphore.
   * It is owned like a given name.
   *
   * @param name "/" then 1 to 251 bytes, with no other "/"; or `null` to generate one.
   * @param options The initial `value`, the `mode`, and whether the name outlives this handle.
   * @returns The semaphore; this handle owns the name.
   * @throws {Deno.errors.AlreadyExists} when the name exists.
   * @throws {TypeError} for a bad name, or options that are not an object.
   * @throws {RangeError} for a bad value or mode.
   * @example
   * ```ts
   * import { Semaphore } from "@posix/ipc/semaphore";
   *
   * using slots = Semaphore.create(`/slots-${Deno.pid}`, { value: 3 });
   * console.log(slots.value); // 3
   * ```
   * @example A generated name, to pass by message
   * ```ts
   * import { Semaphore } from "@posix/ipc/semaphore";
   *
   * using done = Semaphore.create(null, { value: 0 });
   * using opened = Semaphore.open(done.name!); // in the process that got the name
   * opened.post();
   * console.log(done.tryWait()); // true
   * ```
   */
  static create(name: string | null, options: CreateSemaphoreOptions = {}): Semaphore {
    const given = validateNameOrNull(name, "semaphore", SEMAPHORE_NAME_MAX);
    // Own options, each read once, however many names are tried.
    const own = ownOptions(options, "Semaphore.create() options");
    return createUnderName(given, (unique) => Semaphore.#create(unique, own));
  }

  /** {@linkcode Semaphore.create} under a name that is checked already. */
  static #create(name: string, options: CreateSemaphoreOptions): Semaphore {
    const { value: given, mode: givenMode, persist: givenPersist } = options;
    const value = validateValue(given ?? 0);
    const mode = validateMode(givenMode ?? 0o600);
    const persist = optionalBoolean(givenPersist, "persist") ?? false;
    const sem = libc().sem_open(cstring(name), O_CREAT | O_EXCL, mode, value);
    const operation = { action: "create semaphore", objectName: name };
    if (sem === null) throw systemError(errno(), "sem_open", operation);
    try {
      // The mode asked, not the umask's; an opener before this got fewer permissions, not more.
      // Just made with O_EXCL in sticky /dev/shm: the name is still ours, no need to check it.
      withSemaphoreFile(name, null, operation, (fd) => changeMode(fd, mode, operation, true));
    } catch (error) {
      libc().sem_close(sem);
      libc().sem_unlink(cstring(name));
      throw error;
    }
    // A lock the kernel drops when this handle (or its process) goes: `ipc gc` judges by it.
    const lock = persist ? -1 : markOwnedSemaphore(name);
    const release = () => {
      libc().sem_close(sem);
      if (lock >= 0) closeFd(lock);
    };
    return markCreated(
      createSemaphore(sem, `semaphore "${name}"`, release, persist ? null : name, name),
    );
  }

  /**
   * Opens the named semaphore, or creates it with `value` if no semaphore has that name,
   * without races: of many processes calling this at once, exactly one creates it (sem_open
   * with O_EXCL publishes a semaphore only once it holds its value), and a semaphore removed
   * between the tries is created afresh. {@linkcode Semaphore.created} tells which happened;
   * the creating handle owns the name as {@linkcode Semaphore.create}'s does.
   *
   * @param name The semaphore's name.
   * @param options `value`, `mode` and `persist` for creating; `timeout` (default 5000 ms) and
   * `signal` bound the retries.
   * @returns The semaphore.
   * @throws {Deno.errors.PermissionDenied} when its mode does not allow this user.
   * @example
   * ```ts
   * import { Semaphore } from "@posix/ipc/semaphore";
   *
   * const name = `/workers-${Deno.pid}`;
   * using first = await Semaphore.openOrCreate(name, { value: 2 });
   * using second = await Semaphore.openOrCreate(name, { value: 2 });
   * console.log(first.created, second.created, second.value); // true false 2
   * ```
   */
  static async openOrCreate(
    name: string,
    options: OpenOrCreateSemaphoreOptions = {},
  ): Promise<Semaphore> {
    const { wait, steps } = Semaphore.#openOrCreateSteps(name, options, "openOrCreate");
    return (await openOrCreateWith(wait, steps)).handle;
  }

  /**
   * {@linkcode Semaphore.openOrCreate} for code that cannot await: the same protocol, with the
   * retries (up to `timeout`, default 5000 ms) blocking this thread in short sleeps.
   *
   * @param name The semaphore's name.
   * @param options As for {@linkcode Semaphore.openOrCreate}; `signal` is only checked before
   * the wait, since nothing can abort it while the thread blocks.
   * @returns The semaphore.
   * @throws {Deno.errors.PermissionDenied} when its mode does not allow this user.
   * @example
   * ```ts
   * import { Semaphore } from "@posix/ipc/semaphore";
   *
   * const name = `/sync-workers-${Deno.pid}`;
   * using first = Semaphore.openOrCreateSync(name, { value: 2 });
   * using second = Semaphore.openOrCreateSync(name, { value: 2, timeout: 1000 });
   * console.log(first.created, second.created, second.value); // true false 2
   * ```
   */
  static openOrCreateSync(name: string, options: OpenOrCreateSemaphoreOptions = {}): Semaphore {
    const { wait, steps } = Semaphore.#openOrCreateSteps(name, options, "openOrCreateSync");
    return openOrCreateSyncWith(wait, steps).handle;
  }

  /** Checks openOrCreate's arguments and lays out its steps, for the async and sync forms. */
  static #openOrCreateSteps(
    name: string,
    options: OpenOrCreateSemaphoreOptions,
    call: string,
  ): { wait: OpenOrCreateWaitOptions; steps: OpenOrCreateSteps<Semaphore> } {
    validateName(name, "semaphore", SEMAPHORE_NAME_MAX);
    const own = ownOptions(options, `Semaphore.${call}() options`);
    const create = { value: own.value, mode: own.mode, persist: own.persist };
    validateValue(create.value ?? 0);
    validateMode(create.mode ?? 0o600);
    optionalBoolean(create.persist, "persist");
    return {
      wait: own,
      steps: {
        what: `open or create semaphore "${name}"`,
        create: () => Semaphore.create(name, create),
        open: () => Semaphore.open(name),
      },
    };
  }

  /**
   * Opens an existing named semaphore. This handle never removes the name.
   *
   * @param name The semaphore's name.
   * @returns The semaphore.
   * @throws {Deno.errors.NotFound} when no semaphore has that name.
   * @example
   * ```ts
   * import { Semaphore } from "@posix/ipc/semaphore";
   *
   * const name = `/shared-${Deno.pid}`;
   * using created = Semaphore.create(name, { value: 1 });
   * using opened = Semaphore.open(name); // as another process would
   * console.log(opened.tryWait(), created.value); // true 0
   * ```
   */
  static open(name: string): Semaphore {
    validateName(name, "semaphore", SEMAPHORE_NAME_MAX);
    const sem = libc().sem_open(cstring(name), 0, 0, 0);
    if (sem === null) {
      throw systemError(errno(), "sem_open", { action: "open semaphore", objectName: name });
    }
    const release = () => void libc().sem_close(sem);
    return createSemaphore(sem, `semaphore "${name}"`, release, null, name);
  }

  /**
   * Removes a semaphore's name; processes that have it open keep using it.
   *
   * @param name The semaphore's name.
   * @throws {Deno.errors.NotFound} when no semaphore has that name.
   * @example
   * ```ts
   * import { Semaphore } from "@posix/ipc/semaphore";
   *
   * const name = `/kept-${Deno.pid}`;
   * Semaphore.create(name, { persist: true }).close();
   * Semaphore.unlink(name);
   * ```
   */
  static unlink(name: string): void {
    validateName(name, "semaphore", SEMAPHORE_NAME_MAX);
    check(libc().sem_unlink(cstring(name)), "sem_unlink", {
      action: "remove semaphore",
      objectName: name,
    });
  }

  /**
   * Initialises an unnamed, process-shared semaphore at `offset` of shared memory (sem_init
   * with pshared). Do this once, before other processes use it; they take it with
   * {@linkcode Semaphore.at}.
   *
   * @param memory Shared, writable memory: a `SharedMemory` or a shared `Mapping`.
   * @param offset Where it goes: 8-aligned, with {@linkcode Semaphore.SIZE} bytes inside.
   * @param options The initial `value`. Default 0.
   * @returns The semaphore. The memory stays mapped until it is closed.
   * @throws {RangeError} for an offset out of bounds or misaligned, or a bad value.
   * @throws {TypeError} for memory that is not shared and writable, an offset that is not a
   * number, or options that are not an object.
   * @example
   * ```ts
   * import { Semaphore } from "@posix/ipc/semaphore";
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * using memory = SharedMemory.anonymous({ size: 4096 });
   * using mutex = Semaphore.init(memory, 64, { value: 1 });
   * console.log(mutex.value); // 1
   * ```
   */
  static init(
    memory: SharedMemory | Mapping,
    offset: number,
    options: { value?: number } = {},
  ): Semaphore {
    const value = validateValue(optionsObject(options, "Semaphore.init() options").value ?? 0);
    const placed = place(memory, offset, sem_t.size, sem_t.align, "semaphore");
    if (libc().sem_init(placed.pointer, 1, value) !== 0) {
      placed.unpin();
      throw systemError(errno(), "sem_init", { action: "initialise a semaphore in shared memory" });
    }
    return createSemaphore(
      placed.pointer,
      `semaphore at offset ${placed.offset}`,
      placed.unpin,
      null,
    );
  }

  /**
   * Takes an unnamed semaphore that {@linkcode Semaphore.init} placed at `offset`, in this or
   * another process.
   *
   * @param memory The shared memory that holds it.
   * @param offset Where it was placed.
   * @returns The semaphore. The memory stays mapped until it is closed.
   * @throws {RangeError} for an offset out of bounds or misaligned.
   * @throws {TypeError} for an offset that is not a number, or memory that is not shared.
   * @example
   * ```ts
   * import { Semaphore } from "@posix/ipc/semaphore";
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * using memory = SharedMemory.anonymous({ size: 4096 });
   * Semaphore.init(memory, 0, { value: 2 }).close();
   * using again = Semaphore.at(memory, 0); // as a child given the memory would
   * console.log(again.value); // 2
   * ```
   */
  static at(memory: SharedMemory | Mapping, offset: number): Semaphore {
    const placed = place(memory, offset, sem_t.size, sem_t.align, "semaphore");
    return createSemaphore(
      placed.pointer,
      `semaphore at offset ${placed.offset}`,
      placed.unpin,
      null,
    );
  }

  /**
   * Whether this handle's call created the semaphore: `true` from
   * {@linkcode Semaphore.create}, and from {@linkcode Semaphore.openOrCreate} when it created it.
   */
  get created(): boolean {
    return wasCreated(this);
  }

  /** Whether this handle was closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The name of a named semaphore (the one generated when it was created with `null`, to send
   * to the processes that should open it), `null` for one placed in memory. Readable after
   * close.
   *
   * @example
   * ```ts
   * import { Semaphore } from "@posix/ipc/semaphore";
   *
   * using semaphore = Semaphore.create(null);
   * console.log(semaphore.name?.startsWith("/posix-ipc-")); // true
   * ```
   */
  get name(): string | null {
    return this.#name;
  }

  /**
   * The current count (sem_getvalue); already stale when read if other processes use it.
   *
   * @throws {Deno.errors.BadResource} when closed.
   */
  get value(): number {
    const out = new Int32Array(1);
    check(libc().sem_getvalue(this.#open(), out), "sem_getvalue", this.#operation("read"));
    return out[0]!;
  }

  /**
   * A named semaphore's permission bits and owner, those of its file /dev/shm/sem.NAME.
   *
   * @throws {TypeError} for a semaphore placed in memory: it has no file of its own.
   * @throws {Deno.errors.NotFound} when its name was removed.
   * @throws {Deno.errors.BadResource} when closed.
   * @example
   * ```ts
   * import { Semaphore } from "@posix/ipc/semaphore";
   *
   * using semaphore = Semaphore.create(`/perms-sem-${Deno.pid}`, { mode: 0o640 });
   * console.log(semaphore.permissions.mode.toString(8)); // "640"
   * ```
   */
  get permissions(): Permissions {
    return this.#file("read the mode of", (fd, operation) => permissionsOf(fd, operation));
  }

  /**
   * Sets a named semaphore's permission bits to exactly `mode`, whatever the umask (chmod of
   * its file, reached through an O_PATH descriptor checked to be the file this handle maps).
   * Processes that have it open keep the access they had.
   *
   * @param mode Permission bits, 0 to 0o777.
   * @throws {RangeError} for a mode outside 0 to 0o777.
   * @throws {TypeError} for a semaphore placed in memory.
   * @throws {Deno.errors.PermissionDenied} when this process neither owns it nor is root.
   * @throws {Deno.errors.NotFound} when its name was removed.
   * @throws {Deno.errors.BadResource} when closed.
   * @example
   * ```ts
   * import { Semaphore } from "@posix/ipc/semaphore";
   *
   * using semaphore = Semaphore.create(`/group-sem-${Deno.pid}`);
   * semaphore.chmod(0o660);
   * ```
   */
  chmod(mode: number): void {
    const bits = validatePermissionBits(mode);
    this.#file("change the mode of", (fd, operation) => changeMode(fd, bits, operation, true));
  }

  /**
   * Gives a named semaphore to another user and group, as root may; its owner may only change
   * its group, to one of its own.
   *
   * @param uid The new owner's user id (0 to 2^32 - 2), or -1 to keep it.
   * @param gid The new group id, or -1 (the default) to keep it.
   * @throws {RangeError} for an id out of range.
   * @throws {TypeError} for a semaphore placed in memory.
   * @throws {Deno.errors.PermissionDenied} when this process may not make the change.
   * @throws {Deno.errors.BadResource} when closed.
   * @example
   * ```ts
   * import { Semaphore } from "@posix/ipc/semaphore";
   *
   * using semaphore = Semaphore.create(`/owned-sem-${Deno.pid}`);
   * semaphore.chown(-1, semaphore.permissions.gid); // keeps both
   * ```
   */
  chown(uid: number, gid: number = -1): void {
    const [user, group] = validateOwner(uid, gid);
    this.#file("change the owner of", (fd, operation) => {
      changeOwner(fd, user, group, operation, true);
    });
  }

  /**
   * The address of the `sem_t`. **UNSAFE**: valid only while this handle is open.
   *
   * @throws {Deno.errors.BadResource} when closed.
   */
  get unsafePointer(): Deno.PointerObject {
    return this.#open();
  }

  /**
   * Adds one to the count, waking one waiter.
   *
   * @throws {IpcError} with code `EOVERFLOW` when the count is at its maximum.
   * @throws {Deno.errors.BadResource} when closed.
   * @example
   * ```ts
   * import { Semaphore } from "@posix/ipc/semaphore";
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * using memory = SharedMemory.anonymous({ size: 64 });
   * using ready = Semaphore.init(memory, 0);
   * ready.post();
   * console.log(ready.value); // 1
   * ```
   */
  post(): void {
    check(libc().sem_post(this.#open()), "sem_post", this.#operation("post"));
  }

  /**
   * Takes one from the count if it is above zero, without waiting.
   *
   * @returns Whether a count was taken.
   * @throws {Deno.errors.BadResource} when closed.
   * @example
   * ```ts
   * import { Semaphore } from "@posix/ipc/semaphore";
   *
   * using once = Semaphore.create(`/once-${Deno.pid}`, { value: 1 });
   * console.log(once.tryWait(), once.tryWait()); // true false
   * ```
   */
  tryWait(): boolean {
    const sem = this.#open();
    if (libc().sem_trywait(sem) === 0) return true;
    const code = errno();
    if (code === EAGAIN || code === EINTR) return false;
    throw systemError(code, "sem_trywait", this.#operation("wait on"));
  }

  /**
   * Waits, without blocking the event loop, until a count can be taken, and takes it.
   *
   * @param options `timeout` (ms) and `signal`.
   * @throws {Deno.errors.TimedOut} after `timeout`.
   * @throws {Deno.errors.BadResource} when the handle is closed, also while waiting.
   * @throws the signal's reason when it aborts.
   * @example
   * ```ts
   * import { Semaphore } from "@posix/ipc/semaphore";
   *
   * using done = Semaphore.create(`/done-${Deno.pid}`);
   * setTimeout(() => done.post(), 10);
   * await done.wait({ timeout: 5000 });
   * ```
   */
  async wait(options: WaitOptions = {}): Promise<void> {
    options = readWaitOptions(options, `wait on ${this.#label}`); // read once
    const sem = this.#open();
    if (libc().sem_trywait(sem) === 0) return;
    let takenWhileAsleep = false;
    this.#waiting++;
    try {
      await waitUntil<true>(options, {
        what: `wait on ${this.#label}`,
        attempt: () => takenWhileAsleep || this.tryWait() ? true : RETRY,
        sleep: async (ms) => {
          takenWhileAsleep =
            await libc().sem_clockwait_async(sem, CLOCK_MONOTONIC, deadlineIn(ms)) === 0;
        },
        assertOpen: () => void this.#open(),
      });
    } catch (error) {
      if (takenWhileAsleep) libc().sem_post(sem); // abandoned: give the count to someone else
      throw error;
    } finally {
      if (--this.#waiting === 0 && this.#closed) this.#finish();
    }
  }

  /**
   * Waits until a count can be taken, blocking this thread: for workers and scripts.
   *
   * @param options `timeout` (ms).
   * @throws {Deno.errors.TimedOut} after `timeout`.
   * @example
   * ```ts
   * import { Semaphore } from "@posix/ipc/semaphore";
   *
   * using one = Semaphore.create(`/one-${Deno.pid}`, { value: 1 });
   * one.waitSync({ timeout: 100 });
   * ```
   */
  waitSync(options: { timeout?: number } = {}): void {
    const timeout = validateWaitOptions(options, `wait on ${this.#label}`);
    const sem = this.#open();
    const c = libc();
    const timed = timeout !== Infinity;
    const deadline = deadlineAfter(timeout);
    // A timeout longer than one C call can take is waited in several, each up to MAX_WAIT_MS.
    while (
      (timed
        ? c.sem_clockwait(sem, CLOCK_MONOTONIC, deadlineIn(sliceUntil(deadline), true))
        : c.sem_wait(sem)) !== 0
    ) {
      const code = errno();
      if (code === EINTR) continue;
      if (code === ETIMEDOUT) {
        if (performance.now() < deadline) continue;
        throw new Deno.errors.TimedOut(
          `Cannot wait on ${this.#label}: timed out after ${options.timeout} ms`,
        );
      }
      throw systemError(code, timed ? "sem_clockwait" : "sem_wait", this.#operation("wait on"));
    }
  }

  /**
   * Waits for a count like {@linkcode Semaphore.wait} and returns it as a permit that posts it
   * back when disposed.
   *
   * @param options `timeout` (ms) and `signal`.
   * @returns The permit; `using` releases it at the end of the scope.
   * @example
   * ```ts
   * import { Semaphore } from "@posix/ipc/semaphore";
   *
   * using pool = Semaphore.create(`/pool-${Deno.pid}`, { value: 2 });
   * {
   *   using _permit = await pool.acquire({ timeout: 1000 });
   *   console.log(pool.value); // 1
   * }
   * console.log(pool.value); // 2
   * ```
   */
  async acquire(options: WaitOptions = {}): Promise<SemaphorePermit> {
    await this.wait(options);
    return this.#permit();
  }

  /**
   * The adapter through which {@linkcode select} waits on this semaphore: a try takes a count
   * (`tryWait`) and yields it as a permit, as {@linkcode Semaphore.acquire} does; a wait sleeps
   * on the semaphore without taking, so that only the source `select` returns loses a count.
   *
   * @returns The adapter; see `@posix/ipc/select`.
   * @example
   * ```ts
   * import { Semaphore } from "@posix/ipc/semaphore";
   * import { select } from "@posix/ipc/select";
   *
   * using ready = Semaphore.create(`/select-sem-${Deno.pid}`, { value: 1 });
   * const { value: permit } = await select([ready]);
   * permit?.release(); // gives the count back
   * ```
   */
  [selectable](): SelectAdapter<SemaphorePermit> {
    return semaphoreAdapter({
      pointer: () => this.#open(),
      take: () => this.tryWait() ? { value: this.#permit() } : undefined,
      begin: () => void this.#waiting++,
      end: () => {
        if (--this.#waiting === 0 && this.#closed) this.#finish();
      },
    });
  }

  /** A count taken, as a permit that posts it back once. */
  #permit(): SemaphorePermit {
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      this.post();
    };
    return { release, [Symbol.dispose]: release };
  }

  /**
   * Closes this handle: pending waits reject with `BadResource` within 100 ms; the creator of a
   * name removes it unless created with `persist`. An unnamed semaphore itself stays in the
   * memory for other processes. Closing again does nothing.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    releaseWhenUnreachable.unregister(this);
    if (this.#waiting === 0) this.#finish();
    const name = this.#lease.ownedName;
    this.#lease.ownedName = null;
    if (name) {
      removed(libc().sem_unlink(cstring(name)), [ENOENT], "sem_unlink", {
        action: "remove semaphore",
        objectName: name,
      });
    }
  }

  /** Same as {@linkcode Semaphore.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Releases the `sem_t` once no worker thread can be inside it any more. */
  #finish(): void {
    if (this.#sem === null) return;
    this.#sem = null;
    this.#lease.release();
  }

  #open(): Deno.PointerObject {
    if (this.#closed || this.#sem === null) throw closedError(this.#label);
    return this.#sem;
  }

  #operation(verb: string) {
    return { action: `${verb} ${this.#label}` };
  }

  /** Runs `use` on the file of this named semaphore (see src/_semaphore_file.ts). */
  #file<R>(verb: string, use: (fd: number, operation: Operation) => R): R {
    const sem = this.#open();
    if (this.#name === null) {
      throw new TypeError(
        `Cannot ${verb} ${this.#label}: it lives in shared memory and has no file of its own; ` +
          `the memory's mode and owner apply`,
      );
    }
    const operation = { action: `${verb} semaphore`, objectName: this.#name };
    return withSemaphoreFile(this.#name, sem, operation, (fd) => use(fd, operation));
  }
}
