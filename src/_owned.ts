/**
 * The mark of a named object that a handle of this library created and promised to remove
 * (created without `persist`), and the kernel's word on whether that handle is gone: what lets
 * `ipc gc` prove an object abandoned instead of guessing from who seems to use it. Internal.
 *
 * The creator sets two things that the kernel keeps, right after creation:
 * - a shared `flock` on its open file (shm and mq, whose handles keep their descriptor). The
 *   kernel drops it when the last descriptor of that open file closes, however the holder
 *   ended (close, exit, SIGKILL) and in whichever PID namespace it ran. A child given the
 *   descriptor holds it too, as it should: it can still use the object.
 * - then the sticky bit (S_ISVTX) in the object's mode. It means nothing to the kernel on a file
 *   in /dev/shm or the mqueue file system, yet both keep it and stat shows it (`ls -l` prints a
 *   `T`), for root and other users alike (checked on Linux 6.x, tmpfs and mqueue).
 *
 * So an object with the sticky bit whose lock an inspector can take exclusively has lost the
 * handle that promised to remove it: removing its name then does what that handle's `close()`
 * would have done, and disturbs no process that still has it open. The order matters: the bit is
 * set only once the lock is held, so an inspector never sees a marked object whose owner has
 * not locked it yet, and never takes the exclusive lock an owner is about to ask for.
 *
 * A named semaphore keeps no descriptor of its own (sem_open maps its file and closes it), so its
 * handle keeps one more, just for the lock.
 *
 * Persisted objects and other programs' objects carry no mark, and `ipc gc` keeps them.
 *
 * Marking is best effort: an object left unmarked (the calls failed) is only kept by `ipc gc`,
 * which is the safe side.
 *
 * @module
 */

import { cstring } from "../ffi/cstring.ts";
import {
  EAGAIN,
  LOCK_EX,
  LOCK_NB,
  LOCK_SH,
  O_CLOEXEC,
  O_RDONLY,
  S_IFREG,
  S_ISVTX,
} from "../ffi/constants.ts";
import { errno, libc } from "../ffi/libc.ts";
import { closeFd } from "./fd.ts";
import { descriptorStatus } from "./_proc.ts";

/**
 * Marks the object behind `fd`, a descriptor of a POSIX shared memory object or message queue
 * that this handle just created and will remove when it closes: a shared lock held as long as
 * the descriptor is open, then the sticky bit.
 *
 * @returns Whether it is marked.
 */
export function markOwned(fd: number): boolean {
  const c = libc();
  if (c.flock(fd, LOCK_SH | LOCK_NB) !== 0) return false;
  const status = descriptorStatus(fd);
  return status !== undefined && c.fchmod(fd, status.mode | S_ISVTX) === 0;
}

/**
 * Marks a named semaphore that this handle just created and will remove when it closes. The
 * semaphore itself keeps no descriptor (sem_open maps its file, /dev/shm/sem.NAME, and closes
 * it), so this opens the file again and returns that descriptor, which holds the lock: the
 * handle must keep it open as long as it owns the name, and close it then.
 *
 * @param name The semaphore's name, "/" and the rest, as validated by its creator.
 * @returns The descriptor that holds the lock, or -1 when the semaphore could not be marked.
 */
export function markOwnedSemaphore(name: string): number {
  const c = libc();
  const fd = c.open(cstring(`/dev/shm/sem.${name.slice(1)}`), O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (descriptorStatus(fd)?.type === S_IFREG && markOwned(fd)) return fd;
  closeFd(fd);
  return -1;
}

/** Whether `mode` carries the mark of an owned object. */
export function isMarked(mode: number): boolean {
  return (mode & S_ISVTX) !== 0;
}

/**
 * What the owner of the object open as `fd` (a descriptor the inspector opened) has become:
 * - "gone": the object is marked and no descriptor of its owner's open file is left. The
 *   exclusive lock this took stays held until `fd` closes, so that the caller removes the name
 *   while no owner can appear;
 * - "present": marked, and its owner's descriptor is open somewhere;
 * - "unmarked": not marked (persisted, or another program's);
 * - "replaced": `fd` is not the object listed as `inode` (it was removed and made again);
 * - "unknown": the kernel would not say.
 */
export function probeOwner(
  fd: number,
  inode: number,
): "gone" | "present" | "unmarked" | "replaced" | "unknown" {
  const status = descriptorStatus(fd);
  if (!status) return "unknown";
  if (status.inode !== inode) return "replaced";
  if (!isMarked(status.mode)) return "unmarked";
  if (libc().flock(fd, LOCK_EX | LOCK_NB) === 0) return "gone";
  return errno() === EAGAIN ? "present" : "unknown"; // EWOULDBLOCK is EAGAIN on Linux
}
