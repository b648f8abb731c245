/**
 * Argument checks shared by every module, run before any system call. Internal.
 *
 * @module
 */

import { NAME_MAX } from "../ffi/constants.ts";
import { byteLength } from "../ffi/cstring.ts";

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
    throw new TypeError(`Cannot use ${kind} name ${String(name)}: it must be a string`);
  }
  const rule = nameRuleBroken(name, maxBytes);
  if (rule) throw new TypeError(`Cannot use ${kind} name "${name}": ${rule}`);
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

/** Checks a size in bytes: a positive safe integer. */
export function validateSize(size: unknown, what: string): number {
  if (typeof size !== "number") {
    throw new TypeError(`Cannot use ${what} ${String(size)}: it must be a number of bytes`);
  }
  if (!Number.isSafeInteger(size) || size <= 0) {
    throw new RangeError(`Cannot use ${what} ${size}: it must be a positive integer`);
  }
  return size;
}

/** Checks permission bits: an integer from 0 to 0o777. */
export function validateMode(mode: unknown): number {
  if (typeof mode !== "number" || !Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    throw new RangeError(
      `Cannot use mode ${String(mode)}: it must be permission bits from 0 to 0o777`,
    );
  }
  return mode;
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
