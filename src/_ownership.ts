/**
 * Mode and owner of the POSIX objects that live as files (shared memory and semaphores in
 * /dev/shm, message queues in the mqueue file system): reading them, changing them (fchmod,
 * fchown, or chmod/chown through /proc/self/fd for a descriptor opened with O_PATH), and
 * checking the numbers first. Internal.
 *
 * @module
 */

import { cstring } from "../ffi/cstring.ts";
import { ENOENT, EPERM, S_ISVTX } from "../ffi/constants.ts";
import { errno, libc } from "../ffi/libc.ts";
import { validateInteger, validateMode } from "./_validate.ts";
import { type Operation, systemError } from "./errors.ts";
import { statDescriptor } from "./_stat.ts";

/** Who owns an IPC object and who may use it. */
export interface Permissions {
  /** The permission bits, 0 to 0o777, such as 0o600. */
  readonly mode: number;
  /** The owner's user id. */
  readonly uid: number;
  /** The owner's group id. */
  readonly gid: number;
}

/** The C `(uid_t) -1`: "leave it as it is" to chown. */
const LEAVE = 0xffff_ffff;

/**
 * Checks a user or group id for chown: an integer from 0 to 2^32 - 2 (a 32-bit `uid_t`), or -1
 * for "leave it unchanged", as chown(2) takes it. 2^32 - 1 is refused: it is -1 in C, and a
 * caller who computed it meant an id, not "leave".
 *
 * @returns The id as the unsigned 32-bit number C takes.
 */
export function validateOwnerId(id: unknown, what: "uid" | "gid"): number {
  if (id === -1) return LEAVE;
  return validateInteger(id, what, 0, LEAVE - 1, "a 32-bit id, or -1 to leave it unchanged");
}

/**
 * Checks the permission bits for chmod: 0 to 0o777. The setuid, setgid and sticky bits are
 * refused: they mean nothing on an IPC object, and the library uses the sticky bit as its own
 * mark (src/_owned.ts).
 */
export function validatePermissionBits(mode: unknown): number {
  return validateMode(mode);
}

/** The mode (0o777 bits) and owner of the file open as `fd`; an O_PATH descriptor will do. */
export function permissionsOf(fd: number, operation: Operation): Permissions {
  const facts = statDescriptor(fd, operation);
  return { mode: facts.mode & 0o777, uid: facts.uid, gid: facts.gid };
}

/**
 * Sets the permission bits of the file open as `fd` to exactly `mode`, whatever the umask,
 * keeping the sticky bit that marks an owned object. With `byPath`, `fd` is an O_PATH
 * descriptor, which fchmod refuses: the change goes through /proc/self/fd instead, to the same
 * inode.
 */
export function changeMode(fd: number, mode: number, operation: Operation, byPath = false): void {
  const mark = statDescriptor(fd, operation).mode & S_ISVTX;
  const c = libc();
  const result = byPath ? c.chmod(procPath(fd), mode | mark) : c.fchmod(fd, mode | mark);
  if (result === 0) return;
  const code = errno();
  throw systemError(code, byPath ? "chmod" : "fchmod", {
    ...operation,
    hint: code === EPERM
      ? ownerOnly(fd, operation, "change its mode")
      : byPath && code === ENOENT
      ? NO_PROC
      : undefined,
  });
}

/**
 * Gives the file open as `fd` to `uid` and `gid` (each already checked, `LEAVE` keeping it).
 * `byPath` as for {@linkcode changeMode}.
 */
export function changeOwner(
  fd: number,
  uid: number,
  gid: number,
  operation: Operation,
  byPath = false,
): void {
  const c = libc();
  const result = byPath ? c.chown(procPath(fd), uid, gid) : c.fchown(fd, uid, gid);
  if (result === 0) return;
  const code = errno();
  throw systemError(code, byPath ? "chown" : "fchown", {
    ...operation,
    hint: code === EPERM
      ? "only root (CAP_CHOWN) may give an object to another user; its owner may only change " +
        "its group, to one of the groups it belongs to"
      : byPath && code === ENOENT
      ? NO_PROC
      : undefined,
  });
}

/** "owned by uid N; only its owner or root may …", for EPERM messages. */
export function ownerOnly(fd: number, operation: Operation, action: string): string {
  let owner = "";
  try {
    owner = `it is owned by uid ${statDescriptor(fd, operation).uid}; `;
  } catch {
    // The owner is a detail of the message; the error stands without it.
  }
  return `${owner}only its owner or root may ${action}`;
}

/** Checks `(uid, gid)` as chown takes them, naming each; a missing gid is left unchanged. */
export function validateOwner(uid: unknown, gid: unknown): [number, number] {
  return [validateOwnerId(uid, "uid"), validateOwnerId(gid === undefined ? -1 : gid, "gid")];
}

/** The hint when a change by path found no /proc/self/fd entry for a descriptor it holds. */
const NO_PROC = "the change goes through /proc/self/fd, and /proc is not mounted here";

function procPath(fd: number): Uint8Array {
  return cstring(`/proc/self/fd/${fd}`);
}
