/**
 * Whether a process is gone, for locks and channels that record their users' pids, and which
 * PID namespace this process is in, so that a pid is judged only where it means something.
 * Internal.
 *
 * @module
 */

import { AT_FDCWD, ESRCH, POLLIN, STATX_INO, SYS_pidfd_open } from "../ffi/constants.ts";
import { cstring } from "../ffi/cstring.ts";
import { statx } from "../ffi/layout.ts";
import { errno, libc } from "../ffi/libc.ts";
import { closeFd } from "./fd.ts";
import { readLink, readProcText } from "./_proc.ts";
import { pollNow } from "./_wait.ts";

/**
 * Whether `pid` (a pid of this process's PID namespace, > 0) is gone: no such process (ESRCH;
 * EPERM means alive, another user's), or, when `thorough`, a zombie its parent has not reaped
 * yet. The zombie check asks the kernel, through a pidfd that turns readable once the process
 * has exited; it never reads /proc/PID when /proc was mounted by another PID namespace (a
 * container given the host's /proc), where PID names another process or none. Where pidfds are
 * missing (Linux before 5.3) and /proc is not this namespace's, a zombie counts as alive.
 */
export function processIsDead(pid: number, thorough: boolean): boolean {
  if (libc().kill(pid, 0) !== 0 && errno() === ESRCH) return true;
  if (!thorough) return false;
  const pidfd = Number(libc().syscall2(BigInt(SYS_pidfd_open), BigInt(pid), 0n));
  if (pidfd >= 0) {
    try {
      return (pollNow(pidfd, POLLIN) & POLLIN) !== 0;
    } finally {
      closeFd(pidfd);
    }
  }
  if (errno() === ESRCH) return true;
  if (!procIsThisNamespaces()) return false;
  const stat = readProcText(`/proc/${pid}/stat`);
  if (stat === undefined) return true;
  const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  return state === "Z" || state === "X";
}

let procIsOurs: boolean | undefined;

/** Whether /proc shows this PID namespace's processes: /proc/self is this process's pid. */
function procIsThisNamespaces(): boolean {
  procIsOurs ??= readLink("/proc/self") === String(Deno.pid);
  return procIsOurs;
}

let namespaceTag: number | undefined;

/**
 * A number from 1 to 2^30 - 1 that tells this process's PID namespace apart from every other
 * PID namespace of the machine, or 0 when it cannot be known (/proc is not mounted).
 *
 * It comes from the inode of /proc/self/ns/pid, which names the namespace whichever PID
 * namespace mounted /proc. The kernel numbers namespaces from one pool (proc_alloc_inum:
 * 0xF0000000 upwards, and 0xEFFFFFFx for the initial ones, include/linux/proc_ns.h), a span far
 * shorter than 2^30 - 1, so the inode modulo 2^30 - 1 (plus one, so that 0 stays "unknown")
 * differs between any two namespaces alive at once. Read once per process.
 */
export function pidNamespaceTag(): number {
  if (namespaceTag === undefined) {
    const buffer = new Uint8Array(statx.size);
    const path = cstring("/proc/self/ns/pid");
    // flags 0: follow the link to the namespace's own inode
    namespaceTag = libc().statx(AT_FDCWD, path, 0, STATX_INO, buffer) === 0
      ? Number(new DataView(buffer.buffer).getBigUint64(statx.stx_ino, true) % 0x3fff_ffffn) + 1
      : 0;
  }
  return namespaceTag;
}
