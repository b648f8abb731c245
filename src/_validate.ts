/**
 * Argument checks shared by every module, run before any system call. Internal.
 *
 * @module
 */

import { NAME_MAX } from "../ffi/constants.ts";
import { byteLength } from "../ffi/cstring.ts";
import { describe } from "../ffi/describe.ts";

export { describe };

/**
 * Checks a POSIX IPC name: a leading "/", no other "/", no NUL, not "/." or "/..", and
 * 1 to `maxBytes` bytes after the slash.
 *
 * @param name The name to check.
 * @param kind What the name is for, such as "shared memory".
 * @param maxBytes The longest name after the slash: NAME_MAX - 1 unless the kind's file name
 * adds a prefix (glibc stores a semaphore as "sem.NAME").
 */
export function validateName(name: unknown, kind: string, maxBytes = NAME_MAX - 1): string {
  if (typeof name !== "string") {
    throw new TypeError(`Cannot use ${kind} name ${describe(name)}: it must be a string`);
  }
  const rule = nameRuleBroken(name, maxBytes);
  if (rule) throw new TypeError(`Cannot use ${kind} name ${describe(name)}: ${rule}`);
  return name;
}

function nameRuleBroken(name: string, maxBytes: number): string | undefined {
  if (!name.startsWith("/")) return 'it must start with "/"';
  const rest = name.slice(1);
  if (rest.includes("/")) return 'it must contain no "/" after the leading one';
  if (rest.includes("\0")) return "it must contain no NUL character";
  if (rest === "" || rest === "." || rest === "..") return 'it needs a name after the "/"';
  const bytes = byteLength(rest);
  if (bytes > maxBytes) {
    return `it is ${bytes} bytes after the "/", more than the ${maxBytes} allowed`;
  }
  return undefined;
}

/**
 * Checks that `value` is an integer from `min` to `max`: a TypeError for anything but a number,
 * a RangeError for NaN, ±Infinity, a fraction or a number out of range. The message names the
 * argument and the rule. -0 is returned as 0, so that it never reaches FFI as a float.
 *
 * @param value The value to check.
 * @param what The argument, as messages name it: "process id", "priority".
 * @param min The smallest value allowed.
 * @param max The largest value allowed.
 * @param rule Why the range is what it is, appended to the message.
 * @returns `value`, now known to be an integer in range.
 */
export function validateInteger(
  value: unknown,
  what: string,
  min: number,
  max: number,
  rule?: string,
): number {
  if (typeof value === "number" && Number.isInteger(value) && value >= min && value <= max) {
    return value + 0; // -0 + 0 is 0: Deno's FFI refuses -0 as an integer
  }
  const why = rule ? ` (${rule})` : "";
  if (typeof value !== "number") {
    throw new TypeError(`Cannot use ${what} ${describe(value)}: it must be a number${why}`);
  }
  throw new RangeError(
    `Cannot use ${what} ${describe(value)}: it must be an integer from ${min} to ${max}${why}`,
  );
}

/** The largest C `int`, and so the largest pid, fd or millisecond count a C call takes. */
export const INT_MAX = 2 ** 31 - 1;

/**
 * Checks a process id: 1 to 2^31 - 1. 0 and negative numbers mean whole process groups or
 * every process to `kill()`, and larger numbers wrap to them in a C `pid_t`.
 */
export function validatePid(pid: unknown, what = "process id"): number {
  return validateInteger(
    pid,
    what,
    1,
    INT_MAX,
    "0 and negative numbers would reach whole groups or every process",
  );
}

/**
 * Checks a process group id for signalling a group: 2 to 2^31 - 1. To `kill()`, group 0 is the
 * caller's own group and group 1 (sent as -1) is every process the caller may signal.
 */
export function validateProcessGroup(pgid: unknown, what = "process group"): number {
  return validateInteger(
    pgid,
    what,
    2,
    INT_MAX,
    "0 is the caller's own group and 1 stands for every process",
  );
}

/** Checks a file descriptor number: 0 to 2^31 - 1, a C `int` that is not negative. */
export function validateFdNumber(fd: unknown, what = "fd"): number {
  return validateInteger(fd, what, 0, INT_MAX, "a descriptor is a C int, not negative");
}

/** The largest System V key: keys are 32 bits, shown unsigned (0xdeadbeef). */
export const KEY_MAX = 2 ** 32 - 1;

/**
 * Checks a System V key, 0 to 2^32 - 1 (as `ftok()` and `ipcs` show them), also accepting the
 * signed form a C `key_t` has (-2^31 to -1, as `ftok()` of libc returns them).
 *
 * @returns The key as the unsigned 32-bit number users see; pass {@linkcode cKey} of it to C.
 */
export function validateKey(key: unknown, what: string): number {
  return validateInteger(
    key,
    `${what} key`,
    -(2 ** 31),
    KEY_MAX,
    "a 32-bit key from ftok(), a number agreed on, or IPC_PRIVATE",
  ) >>> 0;
}

/** The same 32 bits as a C `key_t` (a signed int): 0xdeadbeef -> -559038737. */
export function cKey(key: number): number {
  return key | 0;
}

/** Checks a size in bytes: a positive safe integer. */
export function validateSize(size: unknown, what: string): number {
  if (typeof size !== "number") {
    throw new TypeError(`Cannot use ${what} ${describe(size)}: it must be a number of bytes`);
  }
  if (!Number.isSafeInteger(size) || size <= 0) {
    throw new RangeError(`Cannot use ${what} ${describe(size)}: it must be a positive integer`);
  }
  return size;
}

/**
 * Checks a timeout in milliseconds: a number >= 0, `Infinity` meaning none, `undefined` meaning
 * none too. NaN and negative numbers are RangeErrors, anything else a TypeError.
 *
 * @param timeout The timeout given.
 * @param what What would time out, for the message: "wait on semaphore "/jobs"".
 * @returns The timeout in ms, `Infinity` for none.
 */
export function validateTimeout(timeout: unknown, what: string): number {
  if (timeout === undefined) return Infinity;
  if (typeof timeout !== "number") {
    throw new TypeError(
      `Cannot ${what}: timeout ${describe(timeout)} must be a number of ms (Infinity: none)`,
    );
  }
  if (!(timeout >= 0)) {
    throw new RangeError(
      `Cannot ${what}: timeout ${describe(timeout)} must be a number of ms >= 0 (Infinity: none)`,
    );
  }
  return timeout + 0; // -0 as 0
}

/**
 * A timeout of `ms` milliseconds as the C `int` that poll() takes: rounded up, `Infinity` as -1
 * ("no timeout"), a finite wait longer than 2^31 - 1 ms (24.8 days) clamped to that (a caller
 * waiting longer waits again), and a negative or NaN one as 0 (do not wait).
 */
export function cTimeoutMs(ms: number): number {
  if (ms === Infinity) return -1;
  if (!(ms > 0)) return 0;
  return ms >= INT_MAX ? INT_MAX : Math.ceil(ms);
}

/** Checks permission bits: an integer from 0 to 0o777. */
export function validateMode(mode: unknown): number {
  if (typeof mode !== "number" || !Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    throw new RangeError(
      `Cannot use mode ${describe(mode)}: it must be permission bits from 0 to 0o777`,
    );
  }
  return mode + 0; // -0 as 0
}

// The engine's own accessors of typed arrays, taken once: a subclass, or an own property, can
// override `length`, `byteOffset` or `buffer` (and `subarray` follows Symbol.species), and a
// length that lies would have libc read or write past the real buffer.
const typedArrayProto = Object.getPrototypeOf(Uint8Array.prototype);
const intrinsic = (name: string) =>
  Object.getOwnPropertyDescriptor(typedArrayProto, name)!.get! as (this: unknown) => never;
const lengthOf: (this: Uint8Array) => number = intrinsic("length");
const byteOffsetOf: (this: Uint8Array) => number = intrinsic("byteOffset");
const bufferOf: (this: Uint8Array) => ArrayBufferLike = intrinsic("buffer");

/** The accessors and methods a caller relies on, redefined on the object itself. */
function overridden(bytes: Uint8Array): boolean {
  return Object.hasOwn(bytes, "length") || Object.hasOwn(bytes, "buffer") ||
    Object.hasOwn(bytes, "byteOffset") || Object.hasOwn(bytes, "byteLength") ||
    Object.hasOwn(bytes, "constructor") || Object.hasOwn(bytes, "subarray");
}

/**
 * A plain Uint8Array over the same memory as `bytes`, its buffer, offset and length read with
 * the engine's own accessors: what may be handed to libc with its length (a subclass's lying
 * `length`, `buffer` or `subarray` cannot reach it).
 *
 * @param bytes A Uint8Array (the caller checked `instanceof`).
 * @returns `bytes` itself when it is a plain Uint8Array that overrides nothing, else a new view.
 * @throws {TypeError} for an object that only pretends to be a Uint8Array, or one whose buffer
 * was transferred away.
 * @example
 * ```ts
 * import { plainBytes } from "./_validate.ts";
 * const view = plainBytes(new Uint8Array(8));
 * view.length; // 8
 * ```
 */
export function plainBytes(bytes: Uint8Array): Uint8Array {
  const length = realLength(bytes);
  if (Object.getPrototypeOf(bytes) === Uint8Array.prototype && !overridden(bytes)) {
    return bytes; // the usual case, without an allocation
  }
  return new Uint8Array(bufferOf.call(bytes), byteOffsetOf.call(bytes), length);
}

/**
 * The real length of a Uint8Array, read with the engine's own accessor, whatever a subclass's
 * or an own `length` says: for code that copies it with `TypedArray.prototype.set`, which reads
 * the real length too, and so needs no {@linkcode plainBytes} view (a channel's send).
 *
 * @param bytes A Uint8Array (the caller checked `instanceof`).
 * @returns Its length in bytes.
 * @throws {TypeError} for an object that only pretends to be a Uint8Array, or one whose buffer
 * was transferred away.
 * @example
 * ```ts
 * import { realLength } from "./_validate.ts";
 * const lying = Object.defineProperty(new Uint8Array(8), "length", { value: 1 << 20 });
 * realLength(lying); // 8
 * ```
 */
export function realLength(bytes: Uint8Array): number {
  let length: number;
  try {
    length = lengthOf.call(bytes);
  } catch {
    throw new TypeError(
      "Cannot use an object that only pretends to be a Uint8Array: it has no memory of its own",
    );
  }
  if (length === 0) { // a detached one reads as empty
    const memory = bufferOf.call(bytes);
    if (memory instanceof ArrayBuffer && memory.detached) {
      throw new TypeError("Cannot use a Uint8Array whose buffer was transferred away (detached)");
    }
  }
  return length;
}

/** Formats a byte count for messages: "512 bytes", "64 KiB", "1.5 GiB". */
export function formatBytes(bytes: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const digits = unit === 0 || Number.isInteger(value) ? 0 : 1;
  return `${value.toFixed(digits)} ${units[unit]}`;
}

/**
 * Checks an options argument: `undefined` is `{}`, an object (a plain one, one without a
 * prototype, or a class instance) is itself, anything else (null, a number, a string, a symbol,
 * an array, a function) is a TypeError naming `what`.
 *
 * @param options The options given.
 * @param what The argument, as the message names it: "SharedMemory.create() options".
 * @returns `options`, or `{}` for `undefined`.
 * @example
 * ```ts
 * import { optionsObject } from "./_validate.ts";
 * function open(options?: { readOnly?: boolean }) {
 *   const { readOnly = false } = optionsObject(options, "open() options");
 *   return readOnly;
 * }
 * open(); // false
 * ```
 */
export function optionsObject<T extends object>(options: T | undefined, what: string): T {
  if (options === undefined) return {} as T;
  if (typeof options === "object" && options !== null && !Array.isArray(options)) {
    return options;
  }
  throw new TypeError(
    `Cannot use ${what} ${describe(options)}: it must be an object or undefined`,
  );
}

/**
 * Checks an options argument as {@linkcode optionsObject} does, and returns its own enumerable
 * properties in an object without a prototype: a key inherited from a prototype (a polluted
 * `Object.prototype.capacity`) is no option, and each getter runs once.
 *
 * @param options The options given.
 * @param what The argument, as a message names it.
 * @returns A null-prototype copy of the own options.
 * @example
 * ```ts
 * import { ownOptions } from "./_validate.ts";
 * const options = ownOptions(Object.create({ capacity: 0 }), "options");
 * console.log(options.capacity); // undefined
 * ```
 */
export function ownOptions<T extends object>(options: T | undefined, what: string): Partial<T> {
  return Object.assign(Object.create(null), optionsObject(options, what));
}

/**
 * Checks an optional boolean option: `undefined` stays `undefined` (the caller picks the
 * default), `true` and `false` are themselves, anything else ("false", 0, null) is a TypeError
 * naming `what`, since a truthy string would otherwise flip the option.
 *
 * @param value The option given.
 * @param what The option, as the message names it: "readOnly".
 * @returns `value`.
 * @example
 * ```ts
 * import { optionalBoolean } from "./_validate.ts";
 * const readOnly = optionalBoolean(undefined, "readOnly") ?? false; // false
 * ```
 */
export function optionalBoolean(value: unknown, what: string): boolean | undefined {
  if (value === undefined || typeof value === "boolean") return value;
  throw new TypeError(`Cannot use ${what} ${describe(value)}: it must be true, false or undefined`);
}

/**
 * The key that only a module holds, to keep a class's constructor private at run time: the
 * module makes one, passes it as the first argument of `new`, and the constructor calls
 * {@linkcode ConstructorToken.check} first, before it touches any other argument. `new X(...)`
 * from outside then throws a TypeError instead of building a broken object whose `close()` or
 * finalizer would reach libc with garbage.
 *
 * @example
 * ```ts
 * import { ConstructorToken } from "./_validate.ts";
 * const token = new ConstructorToken("Widget", "Widget.create()");
 * class Widget {
 *   private constructor(key: ConstructorToken, readonly size: number) {
 *     token.check(key);
 *   }
 *   static create(size: number): Widget {
 *     return new Widget(token, size);
 *   }
 * }
 * Widget.create(1);
 * ```
 */
export class ConstructorToken {
  readonly #className: string;
  readonly #factories: string;

  /**
   * Makes the token of one class.
   *
   * @param className The class, as the message names it.
   * @param factories How to make one instead, for the message: "SharedMemory.create() or open()".
   */
  constructor(className: string, factories: string) {
    this.#className = className;
    this.#factories = factories;
  }

  /** Throws a TypeError ("Illegal constructor") unless `given` is this token. */
  check(given: unknown): void {
    if (given !== this) {
      throw new TypeError(
        `Illegal constructor: ${this.#className} cannot be made with new; use ${this.#factories}`,
      );
    }
  }
}
