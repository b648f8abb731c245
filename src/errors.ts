/**
 * Typed errors for failed system calls.
 *
 * A failed call throws the matching `Deno.errors` class where one exists (EEXIST ->
 * `AlreadyExists`, ENOENT -> `NotFound`, EACCES/EPERM -> `PermissionDenied`, …), else an
 * {@linkcode IpcError}. Either way the error carries the {@linkcode SystemErrorDetails}: `code`,
 * `errno`, `syscall` and `objectName`, the name or path of the IPC object concerned. (`name`
 * stays the error class's name, as on every JavaScript error.)
 *
 * @example Telling errors apart
 * ```ts
 * import { isSystemError } from "@posix/ipc";
 * import { SharedMemory } from "@posix/ipc/shm";
 *
 * try {
 *   SharedMemory.open("/surely-no-such-segment");
 * } catch (error) {
 *   if (!(error instanceof Deno.errors.NotFound)) throw error;
 *   if (isSystemError(error)) console.log(error.code, error.syscall, error.objectName);
 *   // ENOENT shm_open /surely-no-such-segment
 * }
 * ```
 *
 * @module
 */

import { ERRNO } from "../ffi/constants.ts";
import { describe } from "../ffi/describe.ts";
import { errno as lastErrno } from "../ffi/libc.ts";

/** What every error from a failed system call carries. */
export interface SystemErrorDetails {
  /** The errno's symbolic name, such as `"EEXIST"`. */
  readonly code: string;
  /** The errno number, such as 17. */
  readonly errno: number;
  /** The libc function that failed, such as `"shm_open"`. */
  readonly syscall: string;
  /** The name or path of the object concerned, or `null` when it has none. */
  readonly objectName: string | null;
}

/** An `Error` (usually one of `Deno.errors`) that carries {@linkcode SystemErrorDetails}. */
export type SystemError = Error & SystemErrorDetails;

/**
 * A failed system call whose errno has no matching `Deno.errors` class (ENOSPC, EINVAL,
 * EMFILE, …).
 *
 * @example
 * ```ts
 * import { IpcError } from "@posix/ipc";
 *
 * const error = new IpcError("Cannot do it: no space left on device (ENOSPC)", {
 *   code: "ENOSPC",
 *   errno: 28,
 *   syscall: "posix_fallocate",
 *   objectName: "/jobs",
 * });
 * console.log(error.code); // "ENOSPC"
 * ```
 */
export class IpcError extends Error implements SystemErrorDetails {
  /** Always `"IpcError"`. */
  override name = "IpcError";
  /** The errno's symbolic name, such as `"ENOSPC"`. */
  readonly code: string;
  /** The errno number. */
  readonly errno: number;
  /** The libc function that failed. */
  readonly syscall: string;
  /** The name or path of the object concerned, or `null`. */
  readonly objectName: string | null;

  /**
   * Makes the error; the library does this, user code rarely needs to.
   *
   * @param message The whole message, in the form `Cannot <action> "<name>": <why> (<CODE>)`.
   * @param details What failed, and how.
   * @param options Standard error options, such as `cause`.
   * @throws {TypeError} When `message` is not a string, or `details` not an object with a string
   * `code`, an integer `errno`, a string `syscall` and a string or `null` `objectName`.
   */
  constructor(message: string, details: SystemErrorDetails, options?: ErrorOptions) {
    const checked = checkDetails(message, details);
    super(message, options);
    this.code = checked.code;
    this.errno = checked.errno;
    this.syscall = checked.syscall;
    this.objectName = checked.objectName;
  }
}

/** The details of an IpcError, each field read once and checked. */
function checkDetails(message: unknown, details: unknown): SystemErrorDetails {
  const wrong = (what: string, value: unknown, rule: string) =>
    new TypeError(`Cannot make an IpcError: ${what} ${describe(value)} must be ${rule}`);
  if (typeof message !== "string") throw wrong("message", message, "a string");
  if (typeof details !== "object" || details === null) {
    throw wrong("details", details, "an object { code, errno, syscall, objectName }");
  }
  const { code, errno, syscall, objectName = null } = details as Record<string, unknown>;
  if (typeof code !== "string") throw wrong("details.code", code, 'a string such as "ENOSPC"');
  if (typeof errno !== "number" || !Number.isInteger(errno)) {
    throw wrong("details.errno", errno, "an integer");
  }
  if (typeof syscall !== "string") throw wrong("details.syscall", syscall, "a string");
  if (objectName !== null && typeof objectName !== "string") {
    throw wrong("details.objectName", objectName, "a string or null");
  }
  return { code, errno: errno + 0, syscall, objectName };
}

/**
 * Whether `error` came from a failed system call and so carries `code`, `errno`, `syscall`
 * and `objectName`.
 *
 * @param error Anything caught.
 * @returns `true` when `error` is a {@linkcode SystemError}.
 * @example
 * ```ts
 * import { isSystemError } from "@posix/ipc";
 *
 * console.log(isSystemError(new Error("plain"))); // false
 * ```
 */
export function isSystemError(error: unknown): error is SystemError {
  if (!(error instanceof Error)) return false;
  const fields = error as Partial<Record<keyof SystemErrorDetails, unknown>>;
  return typeof fields.code === "string" && typeof fields.errno === "number" &&
    typeof fields.syscall === "string";
}

const CLASS_BY_CODE: Readonly<Record<string, new (message: string) => Error>> = {
  EEXIST: Deno.errors.AlreadyExists,
  ENOENT: Deno.errors.NotFound,
  ESRCH: Deno.errors.NotFound,
  EACCES: Deno.errors.PermissionDenied,
  EPERM: Deno.errors.PermissionDenied,
  EAGAIN: Deno.errors.WouldBlock,
  ETIMEDOUT: Deno.errors.TimedOut,
  EINTR: Deno.errors.Interrupted,
  EBADF: Deno.errors.BadResource,
  EBUSY: Deno.errors.Busy,
  ENOSYS: Deno.errors.NotSupported,
  EOPNOTSUPP: Deno.errors.NotSupported,
  EPIPE: Deno.errors.BrokenPipe,
  EISDIR: Deno.errors.IsADirectory,
  ENOTDIR: Deno.errors.NotADirectory,
  ELOOP: Deno.errors.FilesystemLoop,
  ECONNREFUSED: Deno.errors.ConnectionRefused,
  ECONNRESET: Deno.errors.ConnectionReset,
  ECONNABORTED: Deno.errors.ConnectionAborted,
  ENOTCONN: Deno.errors.NotConnected,
  EADDRINUSE: Deno.errors.AddrInUse,
  EADDRNOTAVAIL: Deno.errors.AddrNotAvailable,
};

/** What was being done when a call failed; it makes the message. Internal. */
export interface Operation {
  /** The verb phrase after "Cannot", such as `"create shared memory"`. */
  readonly action: string;
  /** The object's name or path, quoted in the message. */
  readonly objectName?: string | null;
  /** A usual fix or more detail, appended to the message. */
  readonly hint?: string;
}

/** The symbolic name of an errno number, such as `"EEXIST"` for 17. Internal. */
export function errnoCode(errno: number): string {
  return ERRNO[errno]?.[0] ?? `E${errno}`;
}

/** Builds the typed error for `errno` from `syscall`. Internal. */
export function systemError(errno: number, syscall: string, operation: Operation): SystemError {
  const code = errnoCode(errno);
  const description = ERRNO[errno]?.[1] ?? `error ${errno}`;
  const subject = operation.objectName ? ` "${operation.objectName}"` : "";
  const hint = operation.hint ? `: ${operation.hint}` : "";
  const message = `Cannot ${operation.action}${subject}: ${description} (${code})${hint}`;
  const details: SystemErrorDetails = {
    code,
    errno,
    syscall,
    objectName: operation.objectName ?? null,
  };
  const ErrorClass = CLASS_BY_CODE[code];
  if (!ErrorClass) return new IpcError(message, details);
  return Object.assign(new ErrorClass(message), details);
}

/**
 * Returns `result` as a number, or throws the typed error for the current errno when it is -1
 * (the failure sentinel of most calls). Call it right after the call, on the same thread.
 * Internal.
 */
export function check(result: number | bigint, syscall: string, operation: Operation): number {
  if (result === -1 || result === -1n) throw systemError(lastErrno(), syscall, operation);
  return Number(result);
}

/**
 * Checks the result of a call that removes something, when "it is gone already" counts as
 * done: throws the typed error unless `result` is 0 or the errno is one of `gone`. Internal.
 */
export function removed(
  result: number,
  gone: readonly number[],
  syscall: string,
  operation: Operation,
): void {
  if (result === 0) return;
  const code = lastErrno();
  if (!gone.includes(code)) throw systemError(code, syscall, operation);
}

/** The `BadResource` error for using `what` after it was closed. Internal. */
export function closedError(what: string): Deno.errors.BadResource {
  return new Deno.errors.BadResource(`Cannot use ${what}: it is closed`);
}
