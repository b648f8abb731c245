/**
 * Owned file descriptors: closed exactly once, close-on-exec by default, and explicit about
 * being handed to child processes.
 *
 * @example
 * ```ts
 * import { OwnedFd } from "@posix/ipc";
 * import { SharedMemory } from "@posix/ipc/shm";
 *
 * using memory = SharedMemory.anonymous({ size: 4096 });
 * using copy = new OwnedFd(memory.fd).dup(); // a second descriptor for the same memory
 * console.log(copy.inheritable); // false: children do not receive it unless asked
 * ```
 *
 * @module
 */

import { F_DUPFD_CLOEXEC, F_GETFD, F_SETFD, FD_CLOEXEC } from "../ffi/constants.ts";
import { libc } from "../ffi/libc.ts";
import { describe, validateFdNumber, validateInteger } from "./_validate.ts";
import { check, closedError } from "./errors.ts";

/**
 * A file descriptor: a number, an {@linkcode OwnedFd}, or any object of this library that has
 * one (a pipe end, a `SharedMemory`).
 */
export type FdLike = number | { readonly fd: number };

/**
 * A file descriptor that this object owns: `close()` closes it once, later calls do nothing,
 * and every other use after close throws `Deno.errors.BadResource`.
 *
 * Descriptors this library opens are close-on-exec, so child processes receive only those
 * handed to them on purpose; set {@linkcode OwnedFd.inheritable} to hand one to a child that
 * `Deno.Command` starts.
 *
 * @example Wrapping a descriptor a parent process passed down
 * ```ts ignore
 * import { OwnedFd } from "@posix/ipc";
 *
 * using fd = new OwnedFd(3); // closed when the scope ends
 * console.log(fd.fd);
 * ```
 */
export class OwnedFd implements Disposable {
  #fd: number;

  /**
   * Takes ownership of the open descriptor `fd`.
   *
   * @param fd An open file descriptor, an integer from 0 to 2^31 - 1.
   * @throws {TypeError} when `fd` is not a number.
   * @throws {RangeError} when `fd` is not an integer from 0 to 2^31 - 1.
   */
  constructor(fd: number) {
    this.#fd = validateFd(fd, "fd");
  }

  /**
   * The descriptor's number. **UNSAFE**: the number stays valid only while this object is
   * open; once it is closed the kernel may give the same number to another file.
   *
   * @throws {Deno.errors.BadResource} when closed.
   */
  get fd(): number {
    return OwnedFd.#open(this, "fd");
  }

  /**
   * The open descriptor of `self`, read before any call: a TypeError when `self` is no OwnedFd
   * (a method borrowed by another object must not act on that object's descriptor), and
   * BadResource when closed.
   */
  static #open(self: unknown, member: string): number {
    const fd = OwnedFd.#number(self, member);
    if (fd < 0) throw closedError("a closed file descriptor");
    return fd;
  }

  /** The descriptor of `self`, -1 when closed; a TypeError when `self` is no OwnedFd. */
  static #number(self: unknown, member: string): number {
    if (typeof self !== "object" || self === null || !(#fd in self)) {
      throw new TypeError(`Cannot use OwnedFd ${member} on ${describe(self)}: it is no OwnedFd`);
    }
    return (self as OwnedFd).#fd;
  }

  /** Whether this descriptor was closed or released. */
  get closed(): boolean {
    return OwnedFd.#number(this, "closed") < 0;
  }

  /**
   * Whether a child process started with exec (such as by `Deno.Command`) receives this
   * descriptor: the inverse of close-on-exec. `false` for every descriptor this library opens.
   *
   * @throws {Deno.errors.BadResource} when closed.
   * @throws {TypeError} when set to anything but a boolean.
   */
  get inheritable(): boolean {
    const fd = OwnedFd.#open(this, "inheritable");
    const flags = check(libc().fcntl(fd, F_GETFD, 0), "fcntl", fdOperation("inspect", fd));
    return (flags & FD_CLOEXEC) === 0;
  }

  set inheritable(value: boolean) {
    const fd = OwnedFd.#open(this, "inheritable");
    if (typeof value !== "boolean") {
      throw new TypeError(
        `Cannot set inheritable to ${describe(value)}: it must be true or false`,
      );
    }
    const c = libc();
    const operation = fdOperation("change", fd);
    const flags = check(c.fcntl(fd, F_GETFD, 0), "fcntl", operation);
    const next = value ? flags & ~FD_CLOEXEC : flags | FD_CLOEXEC;
    check(c.fcntl(fd, F_SETFD, next), "fcntl", operation);
  }

  /**
   * Duplicates the descriptor: the copy refers to the same open file and is close-on-exec.
   *
   * @returns A new owned descriptor.
   * @throws {IpcError} with code `EMFILE` when the process has no descriptor left.
   */
  dup(): OwnedFd {
    const fd = OwnedFd.#open(this, "dup()"); // first: a wrong receiver must not leak a copy
    return new OwnedFd(
      check(libc().fcntl(fd, F_DUPFD_CLOEXEC, 0), "fcntl", {
        action: `duplicate file descriptor ${fd}`,
      }),
    );
  }

  /**
   * Gives up ownership without closing: the caller now owns the returned number, and this
   * object acts as closed.
   *
   * @returns The descriptor's number.
   * @throws {Deno.errors.BadResource} when closed.
   */
  release(): number {
    const fd = OwnedFd.#open(this, "release()");
    this.#fd = -1;
    return fd;
  }

  /** Closes the descriptor. Closing again does nothing. */
  close(): void {
    const fd = OwnedFd.#number(this, "close()");
    if (fd < 0) return;
    this.#fd = -1;
    closeFd(fd);
  }

  /** Same as {@linkcode OwnedFd.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Checks that `fd` is a descriptor number, an integer from 0 to 2^31 - 1: a TypeError for a
 * non-number, a RangeError otherwise (a larger number would wrap to a small one in C). Internal.
 */
export function validateFd(fd: unknown, argument: string): number {
  return validateFdNumber(fd, argument);
}

/**
 * Takes ownership of an {@linkcode FdLike}: an `OwnedFd` is released to the caller, a number is
 * checked, and any other object's descriptor is duplicated, so that its owner keeps its own.
 * Internal.
 */
export function takeFd(fd: FdLike, argument: string): number {
  if (fd instanceof OwnedFd) return fd.release();
  if (typeof fd === "number") return validateFd(fd, argument);
  return new OwnedFd(peekFd(fd, argument)).dup().release();
}

/** The number inside an {@linkcode FdLike}, without taking ownership. Internal. */
export function peekFd(fd: FdLike, argument: string): number {
  if (typeof fd === "number") return validateFd(fd, argument);
  if (fd === null || typeof fd !== "object" || !("fd" in fd)) {
    throw new TypeError(
      `Cannot use ${argument} ${describe(fd)}: it must be a descriptor number or have an fd`,
    );
  }
  return validateFd(fd.fd, argument);
}

/**
 * Takes ownership of a descriptor that the parent process handed down (with `spawn`'s `fds`,
 * say), after checking that it is open, and makes it close-on-exec so that it is not handed on
 * to this process's own children by accident.
 *
 * It can check only that the number is open, not who opened it: Deno itself holds a few low
 * numbers (up to about 20), so a parent should hand descriptors at agreed numbers and the
 * child take exactly those.
 *
 * @param fd The descriptor's number in this process, 3 or more.
 * @returns The descriptor, owned: close it, or use `using`.
 * @throws {Deno.errors.BadResource} when no descriptor of that number is open: the parent did
 * not pass it.
 * @throws {RangeError} for 0, 1 or 2 (stdin, stdout and stderr: use `Deno.stdin` and its
 * siblings) and for numbers that are no descriptor.
 * @example The child's side
 * ```ts ignore
 * import { inheritedFd } from "@posix/ipc";
 * import { SharedMemory } from "@posix/ipc/shm";
 *
 * using memory = SharedMemory.fromFd(inheritedFd(3));
 * ```
 */
export function inheritedFd(fd: number): OwnedFd {
  fd = validateInteger(
    fd,
    "inherited fd",
    3,
    2 ** 31 - 1,
    "0, 1 and 2 are stdin, stdout and stderr, which this process already has",
  );
  const c = libc();
  const operation = {
    action: `use inherited file descriptor ${fd}`,
    hint: "the parent did not pass it",
  };
  const flags = check(c.fcntl(fd, F_GETFD, 0), "fcntl", operation);
  check(c.fcntl(fd, F_SETFD, flags | FD_CLOEXEC), "fcntl", operation);
  return new OwnedFd(fd);
}

/**
 * Closes a raw descriptor. EINTR still closes it on Linux, so it is not retried; any other
 * failure means the number was not open, a bug worth reporting. Internal.
 */
export function closeFd(fd: number): void {
  if (libc().close(fd) === 0) return;
  try {
    check(-1, "close", fdOperation("close", fd));
  } catch (error) {
    if (!(error instanceof Deno.errors.Interrupted)) throw error;
  }
}

function fdOperation(verb: string, fd: number) {
  return { action: `${verb} file descriptor ${fd}` };
}
