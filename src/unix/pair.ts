/**
 * {@linkcode socketpair}: two connected Unix-domain sockets, for a child or within a process.
 *
 * @module
 */

import { AF_UNIX, SOCK_CLOEXEC } from "../../ffi/constants.ts";
import { libc } from "../../ffi/libc.ts";
import { ownOptions } from "../_validate.ts";
import { check } from "../errors.ts";
import { type SocketType, socketTypeName, socketTypeNumber } from "./_core.ts";
import { type UnixSocket, wrapSocket } from "./socket.ts";

/** Two connected sockets; disposing the pair closes both. */
export type SocketPair = readonly [UnixSocket, UnixSocket] & Disposable;

/**
 * Makes two connected Unix-domain sockets (socketpair), close-on-exec: keep one and hand the
 * other to a child with `spawn`'s `fds`, or use both within one process.
 *
 * @param options The `type`, `"stream"` (default) or `"seqpacket"`.
 * @returns Both sockets; `using pair = socketpair()` closes both.
 * @example
 * ```ts
 * import { socketpair } from "@posix/ipc/unix";
 *
 * using pair = socketpair();
 * const [mine, theirs] = pair;
 * await mine.send("hi");
 * console.log((await theirs.receive())!.text); // "hi"
 * ```
 */
export function socketpair(options: { type?: SocketType } = {}): SocketPair {
  const own = ownOptions(options, "socketpair() options");
  const type = socketTypeNumber(own.type, "make a socket pair");
  const fds = new Int32Array(2);
  check(libc().socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds), "socketpair", {
    action: "make a socket pair",
  });
  const name = socketTypeName(type)!;
  const pair = [
    wrapSocket(fds[0]!, name, "Unix socket pair"),
    wrapSocket(fds[1]!, name, "Unix socket pair"),
  ] as const;
  return Object.assign(pair, {
    [Symbol.dispose]() {
      pair[0].close();
      pair[1].close();
    },
  });
}
