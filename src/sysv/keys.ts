/**
 * System V keys: how unrelated processes agree on one object.
 *
 * @module
 */

import { cstring } from "../../ffi/cstring.ts";
import { IPC_PRIVATE as PRIVATE_KEY } from "../../ffi/constants.ts";
import { libc } from "../../ffi/libc.ts";
import { describe, validateInteger } from "../_validate.ts";
import { check } from "../errors.ts";

/**
 * The key that always makes a new object, visible only through its id (for a parent and the
 * children it tells the id to).
 */
export const IPC_PRIVATE: number = PRIVATE_KEY;

/**
 * Derives a key from an existing file and a project id (ftok): every process that names the
 * same file and id gets the same key. The file must exist while the key is in use: the key is
 * made from its device and inode numbers.
 *
 * @param path An existing file every party can see.
 * @param projectId 1 to 255 (only the low 8 bits count).
 * @returns The key, as an unsigned 32-bit number (as `ipcs` shows it: 0x0100a1b2).
 * @throws {Deno.errors.NotFound} when the file does not exist.
 * @throws {RangeError} for a project id outside 1 to 255.
 * @throws {TypeError} for a path that is not a non-empty string without NUL, or a project id
 * that is not a number.
 * @example
 * ```ts
 * import { ftok } from "@posix/ipc/sysv";
 *
 * console.log(ftok("/", 1) === ftok("/", 1)); // true
 * ```
 */
export function ftok(path: string, projectId: number): number {
  if (typeof path !== "string" || path.length === 0 || path.includes("\0")) {
    throw new TypeError(
      `Cannot make a key from path ${describe(path)}: it must be a non-empty string without NUL`,
    );
  }
  const id = validateInteger(projectId, "project id", 1, 255, "ftok() keeps only its low 8 bits");
  const key = check(libc().ftok(cstring(path), id), "ftok", {
    action: "make a key from",
    objectName: path,
  });
  return key >>> 0; // a C key_t is signed; keys are shown and passed back unsigned
}
