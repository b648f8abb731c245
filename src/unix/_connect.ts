/**
 * Connecting a Unix-domain socket without blocking the event loop: a non-blocking socket, one
 * `connect` attempt after another while the listener's backlog is full (the only case where a
 * Unix socket's connect waits), then the socket back in blocking mode, as a child handed it
 * expects. Internal to `@posix/ipc/unix`.
 *
 * @module
 */

import {
  AF_UNIX,
  EAGAIN,
  ECONNREFUSED,
  EINTR,
  F_GETFL,
  F_SETFL,
  O_NONBLOCK,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
} from "../../ffi/constants.ts";
import { errno, libc } from "../../ffi/libc.ts";
import { ownOptions } from "../_validate.ts";
import { delay, RETRY, validateWaitOptions, type WaitOptions, waitUntil } from "../_wait.ts";
import { check, systemError } from "../errors.ts";
import { closeFd } from "../fd.ts";
import {
  encodeAddress,
  parseAddress,
  type ParsedAddress,
  requireAddressPermission,
} from "./address.ts";
import { type SocketType, socketTypeName, socketTypeNumber } from "./_core.ts";

/** Options of {@linkcode UnixSocket.connect}. */
export interface ConnectOptions extends WaitOptions {
  /** The socket's type, the listener's. Default `"stream"`. */
  type?: SocketType;
}

/** The longest back-off between two connect attempts while the listener's backlog is full. */
const CONNECT_RETRY_MS = 10;

/** A connected socket's descriptor, its type and how messages name it. */
export interface Connected {
  fd: number;
  type: SocketType;
  label: string;
}

/** Connects, waiting without blocking the event loop while the backlog is full. */
export async function connectFd(address: unknown, options: unknown): Promise<Connected> {
  const { parsed, type, own } = checkConnect(address, options);
  const fd = startConnect(parsed, type);
  try {
    let pause = 1;
    await waitUntil(own, {
      what: `connect to "${parsed.label}"`,
      attempt: () => finishConnect(fd, parsed),
      sleep: (ms) => delay(Math.min(ms, pause = Math.min(pause * 2, CONNECT_RETRY_MS))),
      assertOpen: () => {},
    });
    return connected(fd, type, parsed);
  } catch (error) {
    closeFd(fd);
    throw error;
  }
}

/** Connects, blocking this thread while the backlog is full (at most `timeout` ms). */
export function connectFdSync(address: unknown, options: unknown): Connected {
  const { parsed, type, timeout } = checkConnect(address, options);
  const fd = startConnect(parsed, type);
  try {
    const deadline = performance.now() + timeout;
    let pause = 1;
    while (finishConnect(fd, parsed) === RETRY) {
      if (performance.now() >= deadline) {
        throw new Deno.errors.TimedOut(
          `Cannot connect to "${parsed.label}": timed out after ${timeout} ms`,
        );
      }
      pause = Math.min(pause * 2, CONNECT_RETRY_MS);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, pause);
    }
    return connected(fd, type, parsed);
  } catch (error) {
    closeFd(fd);
    throw error;
  }
}

/** The connected socket, blocking again; this side always asks MSG_DONTWAIT. */
function connected(fd: number, type: number, parsed: ParsedAddress): Connected {
  const operation = { action: "connect to", objectName: parsed.label };
  const flags = check(libc().fcntl(fd, F_GETFL, 0), "fcntl", operation);
  check(libc().fcntl(fd, F_SETFL, flags & ~O_NONBLOCK), "fcntl", operation);
  return { fd, type: socketTypeName(type)!, label: `Unix socket "${parsed.label}"` };
}

/** Checks a connect's arguments, permission included, before any call. */
function checkConnect(address: unknown, options: unknown) {
  const own = ownOptions(options as ConnectOptions, "connect options");
  const parsed = parseAddress(address, "connect");
  const type = socketTypeNumber(own.type, `connect to "${parsed.label}"`);
  const timeout = validateWaitOptions(own, `connect to "${parsed.label}"`);
  requireAddressPermission(parsed);
  return { parsed, type, timeout, own };
}

/** A new non-blocking, close-on-exec socket of `type`. */
function startConnect(parsed: ParsedAddress, type: number): number {
  return check(
    libc().socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0),
    "socket",
    { action: "create a socket to connect to", objectName: parsed.label },
  );
}

/** One connect attempt: done, RETRY when the listener's backlog is full, or the error. */
function finishConnect(fd: number, parsed: ParsedAddress): true | typeof RETRY {
  const { buffer, length } = encodeAddress(parsed);
  if (libc().connect(fd, buffer, length) === 0) return true;
  const code = errno();
  if (code === EAGAIN || code === EINTR) return RETRY;
  throw systemError(code, "connect", {
    action: "connect to",
    objectName: parsed.label,
    hint: code === ECONNREFUSED ? "nothing listens there" : undefined,
  });
}
