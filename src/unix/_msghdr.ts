/**
 * One `sendmsg` or `recvmsg` with descriptors in SCM_RIGHTS, never blocking (MSG_DONTWAIT):
 * builds the `struct msghdr`, its `iovec` and its control buffer, and reads back what the
 * kernel filled in. Internal to `@posix/ipc/unix`.
 *
 * @module
 */

import {
  EAGAIN,
  EINTR,
  MSG_CMSG_CLOEXEC,
  MSG_DONTWAIT,
  MSG_NOSIGNAL,
  SCM_RIGHTS,
  SOL_SOCKET,
} from "../../ffi/constants.ts";
import { cmsghdr, iovec, msghdr } from "../../ffi/layout.ts";
import { errno, libc } from "../../ffi/libc.ts";
import { RETRY } from "../_wait.ts";
import { systemError } from "../errors.ts";

/**
 * The most descriptors one message carries: the kernel's SCM_MAX_FD (include/net/scm.h, not
 * exported to user space), 253 on every architecture.
 */
export const SCM_MAX_FD = 253;

const INT_BYTES = 4;

/** CMSG_ALIGN: control messages are aligned to `size_t`. */
function cmsgAlign(length: number): number {
  return (length + 7) & ~7;
}

/** CMSG_SPACE(n): the room a control message of `n` data bytes takes. */
export function cmsgSpace(length: number): number {
  return cmsghdr.size + cmsgAlign(length);
}

function address(buffer: Uint8Array): bigint {
  return buffer.length === 0 ? 0n : Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer));
}

/**
 * The message header and its one iovec, reused: every call that uses them is synchronous, on
 * this thread, and reads them back before it returns.
 */
const header = new Uint8Array(msghdr.size);
const headerView = new DataView(header.buffer);
const vector = new Uint8Array(iovec.size);
const vectorView = new DataView(vector.buffer);

const EMPTY = new Uint8Array(0);

/**
 * The control buffer of every call, reused as the header is: room for SCM_MAX_FD descriptors;
 * each call passes the kernel only the part it needs.
 */
const controlBuffer = new Uint8Array(cmsgSpace(SCM_MAX_FD * INT_BYTES));
const controlView = new DataView(controlBuffer.buffer);

/** Points the header at `data` and at `control` (empty: none). */
function prepare(data: Uint8Array, control: Uint8Array): void {
  header.fill(0);
  vectorView.setBigUint64(iovec.iov_base, address(data), true);
  vectorView.setBigUint64(iovec.iov_len, BigInt(data.length), true);
  headerView.setBigUint64(msghdr.msg_iov, address(vector), true);
  headerView.setBigUint64(msghdr.msg_iovlen, 1n, true);
  headerView.setBigUint64(msghdr.msg_control, address(control), true);
  headerView.setBigUint64(msghdr.msg_controllen, BigInt(control.length), true);
}

/** The error of a failed call, or RETRY when it would block or was interrupted. */
function failure(syscall: string, action: string, label: string): typeof RETRY {
  const code = errno();
  if (code === EAGAIN || code === EINTR) return RETRY;
  throw systemError(code, syscall, { action, objectName: label });
}

/**
 * Sends `data` and, when `fds` is not empty, the descriptors in one SCM_RIGHTS message, without
 * blocking and without SIGPIPE.
 *
 * @returns The bytes sent (a stream socket may take fewer than given), or RETRY when the
 * socket's buffer is full.
 */
export function sendOnce(
  fd: number,
  data: Uint8Array,
  fds: readonly number[],
  label: string,
): number | typeof RETRY {
  let control = EMPTY;
  if (fds.length > 0) {
    control = controlBuffer.subarray(0, cmsgSpace(fds.length * INT_BYTES));
    controlView.setBigUint64(cmsghdr.cmsg_len, BigInt(cmsghdr.size + fds.length * INT_BYTES), true);
    controlView.setInt32(cmsghdr.cmsg_level, SOL_SOCKET, true);
    controlView.setInt32(cmsghdr.cmsg_type, SCM_RIGHTS, true);
    for (let i = 0; i < fds.length; i++) {
      controlView.setInt32(cmsghdr.size + i * INT_BYTES, fds[i]!, true);
    }
  }
  prepare(data, control);
  const sent = Number(libc().sendmsg(fd, header, MSG_DONTWAIT | MSG_NOSIGNAL));
  if (sent === -1) return failure("sendmsg", "send on", label);
  return sent;
}

/** What one `recvmsg` brought. */
export interface RawMessage {
  /** How many bytes it wrote into the buffer. */
  readonly length: number;
  /** The `msg_flags` the kernel returned (MSG_TRUNC, MSG_CTRUNC). */
  readonly flags: number;
  /** The descriptors received, close-on-exec, now owned by the caller: a fresh array, its own. */
  readonly fds: number[];
}

/**
 * Receives into `buffer` with room for `maxFds` descriptors, without blocking; the descriptors
 * come close-on-exec (MSG_CMSG_CLOEXEC). Every descriptor the kernel installed is in the
 * result, whatever else the control buffer holds: the caller must own them at once.
 *
 * @returns What arrived, or RETRY when nothing is waiting.
 */
export function receiveOnce(
  fd: number,
  buffer: Uint8Array,
  maxFds: number,
  label: string,
): RawMessage | typeof RETRY {
  // Room for `maxFds` exactly: the kernel closes what does not fit and says MSG_CTRUNC. CMSG_LEN,
  // not CMSG_SPACE: the kernel fills all the room it is given, and an odd count's padding would
  // let one more descriptor in.
  const control = maxFds > 0 ? controlBuffer.subarray(0, cmsghdr.size + maxFds * INT_BYTES) : EMPTY;
  prepare(buffer, control);
  const received = Number(libc().recvmsg(fd, header, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
  if (received === -1) return failure("recvmsg", "receive from", label);
  const flags = headerView.getInt32(msghdr.msg_flags, true);
  const used = Math.min(
    control.length,
    Number(headerView.getBigUint64(msghdr.msg_controllen, true)),
  );
  return { length: received, flags, fds: descriptorsIn(used) };
}

/** The descriptors of every SCM_RIGHTS message in the first `used` bytes of the control buffer. */
function descriptorsIn(used: number): number[] {
  const fds: number[] = [];
  if (used === 0) return fds;
  const view = controlView;
  for (let at = 0; at + cmsghdr.size <= used;) {
    const length = Number(view.getBigUint64(at + cmsghdr.cmsg_len, true));
    if (length < cmsghdr.size || at + length > used) break;
    if (
      view.getInt32(at + cmsghdr.cmsg_level, true) === SOL_SOCKET &&
      view.getInt32(at + cmsghdr.cmsg_type, true) === SCM_RIGHTS
    ) {
      const count = Math.floor((length - cmsghdr.size) / INT_BYTES);
      for (let i = 0; i < count; i++) {
        fds.push(view.getInt32(at + cmsghdr.size + i * INT_BYTES, true));
      }
    }
    at += cmsgAlign(length);
  }
  return fds;
}
