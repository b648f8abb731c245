/**
 * The mechanism of message queue notification: the kernel's own SIGEV_THREAD mode of
 * `mq_notify(2)`, without glibc's helper thread, signal handler or C callback.
 *
 * glibc implements SIGEV_THREAD by making an AF_NETLINK socket and calling the raw syscall with
 * `sigev_notify = SIGEV_THREAD`, `sigev_signo` = that socket and `sigev_value` = a 32-byte
 * cookie; the kernel (ipc/mqueue.c) then queues a copy of the cookie on the socket, its last
 * byte set to NOTIFY_WOKENUP when the queue goes from empty to non-empty, or to NOTIFY_REMOVED
 * when the registration is removed (mq_notify(fd, NULL), or its owner closing a descriptor of
 * the queue). Each registration ends with exactly one such notice. Making the socket and the
 * call here gives a descriptor that a nonblocking `poll` waits on. Internal.
 *
 * @module
 */

import {
  AF_NETLINK,
  EAGAIN,
  EBUSY,
  EINTR,
  ENOSYS,
  NETLINK_ROUTE,
  NOTIFY_COOKIE_LEN,
  NOTIFY_REMOVED,
  NOTIFY_WOKENUP,
  SIGEV_THREAD,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_RAW,
  SYS_mq_notify,
} from "../ffi/constants.ts";
import { sigevent } from "../ffi/layout.ts";
import { errno, libc } from "../ffi/libc.ts";
import { check, type Operation, systemError } from "./errors.ts";

/** A registration's cookie: random bytes, so that a notice can be told to be ours. */
export function newCookie(): Uint8Array<ArrayBuffer> {
  const cookie = new Uint8Array(NOTIFY_COOKIE_LEN);
  crypto.getRandomValues(cookie.subarray(0, NOTIFY_COOKIE_LEN - 1));
  return cookie;
}

/** The socket that receives the kernel's notices: nonblocking, close-on-exec. */
export function noticeSocket(operation: Operation): number {
  const fd = libc().socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
  return check(fd, "socket", operation);
}

/**
 * Registers this process for the next time the queue `queueFd` goes from empty to non-empty;
 * the notice will carry `cookie` to `socket`.
 *
 * @throws {Deno.errors.Busy} when a process (this one included) is registered already.
 */
export function register(
  queueFd: number,
  socket: number,
  cookie: Uint8Array<ArrayBuffer>,
  operation: Operation,
): void {
  const event = new Uint8Array(sigevent.size);
  const view = new DataView(event.buffer);
  // The kernel copies the cookie during the call, so a pointer valid for the call is enough.
  view.setBigUint64(
    sigevent.sigev_value,
    Deno.UnsafePointer.value(Deno.UnsafePointer.of(cookie)),
    true,
  );
  view.setInt32(sigevent.sigev_signo, socket, true);
  view.setInt32(sigevent.sigev_notify, SIGEV_THREAD, true);
  const result = libc().mq_notify_syscall(BigInt(SYS_mq_notify), BigInt(queueFd), event);
  if (result === -1n) {
    const code = errno();
    throw systemError(code, "mq_notify", { ...operation, hint: HINTS[code] ?? operation.hint });
  }
}

/** What usually causes a failed registration. */
const HINTS: Readonly<Record<number, string>> = {
  [EBUSY]: "a process is registered for it already (this one or another): the kernel allows " +
    "one registration per queue; it ends when that process closes it, its notice comes, or " +
    "the process exits",
  [ENOSYS]: "this kernel, or the emulator running this process, has no mq_notify " +
    "(qemu-user does not implement it)",
};

/** Removes this process's registration on `queueFd`, if it has one (a no-op otherwise). */
export function deregister(queueFd: number, operation: Operation): void {
  check(
    libc().mq_notify_syscall(BigInt(SYS_mq_notify), BigInt(queueFd), null),
    "mq_notify",
    operation,
  );
}

/** What the notices waiting on a socket said. */
export interface Notices {
  /** The queue went from empty to non-empty: the registration is used up. */
  wokenUp: boolean;
  /** The registration was removed by someone else than the notice's reader. */
  removed: boolean;
}

/**
 * Reads every notice waiting on `socket` without waiting. A datagram that is not our cookie
 * with a known code is dropped: it cannot end our registration.
 */
export function readNotices(
  socket: number,
  cookie: Uint8Array<ArrayBuffer>,
  operation: Operation,
): Notices {
  const notices: Notices = { wokenUp: false, removed: false };
  const received = new Uint8Array(NOTIFY_COOKIE_LEN + 1); // one more: a longer datagram shows
  while (true) {
    const n = Number(libc().read(socket, received, BigInt(received.length)));
    if (n === -1) {
      const code = errno();
      if (code === EAGAIN) return notices;
      if (code === EINTR) continue;
      throw systemError(code, "read", operation);
    }
    if (n !== NOTIFY_COOKIE_LEN || !sameStart(received, cookie)) continue;
    const reason = received[NOTIFY_COOKIE_LEN - 1];
    if (reason === NOTIFY_WOKENUP) notices.wokenUp = true;
    else if (reason === NOTIFY_REMOVED) notices.removed = true;
  }
}

/** Whether the first 31 bytes (all but the kernel's code) of `a` and `b` agree. */
function sameStart(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < NOTIFY_COOKIE_LEN - 1; i++) if (a[i] !== b[i]) return false;
  return true;
}
