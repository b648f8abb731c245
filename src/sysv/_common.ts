/**
 * What the System V objects share: how messages name an object, and reading `struct ipc_perm`
 * and times out of a `…_ds` struct. Keys are checked by `validateKey` in src/_validate.ts.
 * Internal.
 *
 * @module
 */

import { EPERM, IPC_SET, IPC_STAT } from "../../ffi/constants.ts";
import { ipc_perm, msqid_ds, semid_ds, shmid_ds } from "../../ffi/layout.ts";
import { errno, libc } from "../../ffi/libc.ts";
import { check, systemError } from "../errors.ts";
import { validateKey } from "../_validate.ts";

/** Permission and ownership of a System V object, from its `struct ipc_perm`. */
export interface SysVPermissions {
  /** The permission bits, such as 0o600. */
  readonly mode: number;
  /** The owner's user id. */
  readonly uid: number;
  /** The owner's group id. */
  readonly gid: number;
  /** The creator's user id. */
  readonly creatorUid: number;
  /** The creator's group id. */
  readonly creatorGid: number;
}

/** The permissions at the start of a `…_ds` struct. */
export function readPermissions(view: DataView): SysVPermissions {
  return {
    mode: view.getUint16(ipc_perm.mode, true) & 0o777,
    uid: view.getUint32(ipc_perm.uid, true),
    gid: view.getUint32(ipc_perm.gid, true),
    creatorUid: view.getUint32(ipc_perm.cuid, true),
    creatorGid: view.getUint32(ipc_perm.cgid, true),
  };
}

/** A `time_t` field as a Date, or `null` for 0 ("never"). */
export function readTime(view: DataView, offset: number): Date | null {
  const seconds = Number(view.getBigInt64(offset, true));
  return seconds === 0 ? null : new Date(seconds * 1000);
}

/** A key as messages and `ipcs` show it: "IPC_PRIVATE" or "key 0xdeadbeef". */
export function keyName(key: number): string {
  return key === 0 ? "IPC_PRIVATE" : `key 0x${(key >>> 0).toString(16)}`;
}

/** How a System V object's messages name it. */
export function label(kind: string, key: number, id: number): string {
  return `${kind} ${keyName(key)} (id ${id})`;
}

/**
 * Checks the key given to an `open()`: a 32-bit key, and not IPC_PRIVATE (0, also written -0),
 * which names no existing object: `…get(IPC_PRIVATE)` would make a new one on every call that
 * no handle owns, and so leak it.
 *
 * @returns The key as the unsigned 32-bit number users see.
 */
export function validateOpenKey(key: unknown, kind: string): number {
  const unsigned = validateKey(key, kind);
  if (unsigned === 0) {
    throw new RangeError(
      `Cannot open a System V ${kind} with key IPC_PRIVATE (0): that key names no object (the ` +
        `kernel would make a new one on each call); pass the key it was created with`,
    );
  }
  return unsigned;
}

/** What {@linkcode changePermissions} changes: each field left out stays as it is. */
export interface PermissionChange {
  /** Permission bits, 0 to 0o777, already checked. */
  readonly mode?: number;
  /** A user id as C takes it, already checked; 0xffffffff (-1) keeps it. */
  readonly uid?: number;
  /** A group id, likewise. */
  readonly gid?: number;
}

/** The C `(uid_t) -1`, which IPC_SET would take literally: it means "keep" here. */
const KEEP = 0xffff_ffff;

/** The control call (shmctl, semctl, msgctl) and `…_ds` size of each kind of System V object. */
const CONTROLS = {
  shm: {
    syscall: "shmctl",
    size: shmid_ds.size,
    call: (id: number, command: number, buffer: Uint8Array) => libc().shmctl(id, command, buffer),
  },
  sem: {
    syscall: "semctl",
    size: semid_ds.size,
    call: (id: number, command: number, buffer: Uint8Array) =>
      libc().semctl_buffer(id, 0, command, buffer),
  },
  msg: {
    syscall: "msgctl",
    size: msqid_ds.size,
    call: (id: number, command: number, buffer: Uint8Array) => libc().msgctl(id, command, buffer),
  },
} as const;

/**
 * Changes the mode or owner of the System V object `id` of `kind` with IPC_SET. The kernel takes
 * the uid, gid and mode from the buffer, and a queue's byte limit too, so the buffer starts as
 * the object's own IPC_STAT and only the fields asked change. `what` names it in messages.
 */
export function changePermissions(
  kind: keyof typeof CONTROLS,
  id: number,
  what: string,
  change: PermissionChange,
): void {
  const { syscall, size, call } = CONTROLS[kind];
  const control = (command: number, buffer: Uint8Array) => call(id, command, buffer);
  const buffer = new Uint8Array(size);
  check(control(IPC_STAT, buffer), syscall, { action: `read the state of ${what}` });
  const view = new DataView(buffer.buffer);
  const owner = view.getUint32(ipc_perm.uid, true);
  const creator = view.getUint32(ipc_perm.cuid, true);
  if (change.mode !== undefined) {
    const kept = view.getUint16(ipc_perm.mode, true) & ~0o777;
    view.setUint16(ipc_perm.mode, kept | change.mode, true); // 16 bits: right on both layouts
  }
  if (change.uid !== undefined && change.uid !== KEEP) {
    view.setUint32(ipc_perm.uid, change.uid, true);
  }
  if (change.gid !== undefined && change.gid !== KEEP) {
    view.setUint32(ipc_perm.gid, change.gid, true);
  }
  if (control(IPC_SET, buffer) === 0) return;
  const code = errno();
  throw systemError(code, syscall, {
    action: `change the ${change.mode === undefined ? "owner" : "mode"} of ${what}`,
    hint: code === EPERM
      ? `it is owned by uid ${owner} and was created by uid ${creator}; only they or root ` +
        `(CAP_SYS_ADMIN) may change it`
      : undefined,
  });
}
