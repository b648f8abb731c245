/**
 * Unix-domain sockets through libc, for what Deno's own cannot do: pass descriptors (a
 * `SharedMemory`, a `Channel`, a pipe end, another socket) to a process that is already
 * running (SCM_RIGHTS), and learn who is at the other end (SO_PEERCRED).
 *
 * - {@linkcode UnixListener}: listen at a path or an abstract name, accept connections;
 * - {@linkcode UnixSocket}: connect, send bytes with descriptors, receive them, read the
 *   peer's pid, uid and gid; {@linkcode socketpair} makes two connected ones;
 * - {@linkcode ReceivedMessage}: what a receive brought, owning its descriptors until they are
 *   taken, and closing the rest.
 *
 * Every socket is close-on-exec, and every received descriptor too. Waits never block the event
 * loop and take `{ timeout, signal }`. A path needs `--allow-read` and `--allow-write` for it,
 * as `Deno.listen` and `Deno.connect` do; an abstract name needs no file permission.
 *
 * @example A descriptor handed over a socket
 * ```ts
 * import { socketpair } from "@posix/ipc/unix";
 * import { Channel } from "@posix/ipc/channel";
 *
 * using pair = socketpair();
 * using channel = Channel.create({ capacity: 4096 });
 * await pair[0].send("channel", { fds: [channel] });
 *
 * using message = (await pair[1].receive({ maxFds: 1 }))!;
 * using received = Channel.fromFd(message.takeFd());
 * channel.sendSync(new Uint8Array([1]));
 * console.log(received.tryReceive()); // Uint8Array(1) [ 1 ]
 * ```
 *
 * @module
 */

export type { UnixAddress } from "./address.ts";
export type { WaitOptions } from "../_wait.ts";
export { type FdLike, OwnedFd } from "../fd.ts";
export type { SocketType } from "./_core.ts";
export { SocketHandle } from "./_core.ts";
export { ReceivedMessage } from "./message.ts";
export {
  type PeerCredentials,
  type SocketReceiveOptions,
  type SocketSendOptions,
  UnixSocket,
} from "./socket.ts";
export type { ConnectOptions } from "./_connect.ts";
export { type SocketPair, socketpair } from "./pair.ts";
export { type ListenOptions, UnixListener } from "./listener.ts";
