/**
 * @posix/ipc: the inter-process communication primitives of Unix for Deno, through
 * `Deno.dlopen` bindings to libc.
 *
 * Each module can also be imported on its own:
 * - `@posix/ipc/shm`: POSIX shared memory, named and anonymous ({@linkcode SharedMemory});
 * - `@posix/ipc/mmap`: memory-mapped files and descriptors ({@linkcode Mapping}, {@linkcode mapFile});
 * - `@posix/ipc/pipe`: pipes and FIFOs with async reads and Web Streams ({@linkcode pipe});
 * - `@posix/ipc/spawn`: fork-free spawn that hands children any descriptors ({@linkcode spawn});
 * - `@posix/ipc/signal`: signals, process groups, liveness ({@linkcode kill}, {@linkcode onSignal});
 * - `@posix/ipc/semaphore`: named and in-memory semaphores with async waits ({@linkcode Semaphore});
 * - `@posix/ipc/mqueue`: POSIX message queues with priorities ({@linkcode MessageQueue});
 * - `@posix/ipc/sysv`: System V shared memory, semaphore sets and message queues;
 * - `@posix/ipc/sync`: a robust {@linkcode Mutex}, a {@linkcode Condition} and a {@linkcode Barrier}
 *   in shared memory;
 * - `@posix/ipc/channel`: the fast lane, a message ring in shared memory ({@linkcode Channel});
 * - `@posix/ipc/map`: a hash map in shared memory whose readers never block ({@linkcode SharedMap});
 * - `@posix/ipc/topic`: publish/subscribe, every subscriber gets every message ({@linkcode Topic});
 * - `@posix/ipc/select`: waiting on many sources at once ({@linkcode select});
 * - `@posix/ipc/unix`: Unix-domain sockets that pass descriptors to running processes and read
 *   the peer's credentials ({@linkcode UnixSocket}, {@linkcode UnixListener}).
 *
 * Every call into libc needs `--allow-ffi`, which amounts to full access: see the README.
 *
 * @example Two handles on one segment
 * ```ts
 * import { SharedMemory } from "@posix/ipc";
 *
 * const name = `/mod-example-${Deno.pid}`;
 * using memory = SharedMemory.create(name, { size: 4096 });
 * using other = SharedMemory.open(name);
 * memory.bytes[0] = 1;
 * console.log(other.bytes[0]); // 1
 * ```
 *
 * @module
 */

export {
  IpcError,
  isSystemError,
  type SystemError,
  type SystemErrorDetails,
} from "./src/errors.ts";
export { type FdLike, inheritedFd, OwnedFd } from "./src/fd.ts";
export * from "./src/shm.ts";
export * from "./src/mmap.ts";
export * from "./src/pipe.ts";
export * from "./src/spawn.ts";
export * from "./src/signal.ts";
export * from "./src/semaphore.ts";
export * from "./src/mqueue.ts";
export * from "./src/sysv/mod.ts";
export * from "./src/sync/mod.ts";
export * from "./src/channel/mod.ts";
export * from "./src/map/mod.ts";
export {
  Client,
  type ClientOptions,
  type Handler,
  RemoteError,
  type RequestContext,
  Server,
  type ServerOptions,
} from "./src/service/mod.ts";
export * from "./src/topic/mod.ts";
export * from "./src/select/mod.ts";
export {
  type ConnectOptions,
  type ListenOptions,
  type PeerCredentials,
  ReceivedMessage,
  SocketHandle,
  type SocketPair,
  socketpair,
  type SocketReceiveOptions,
  type SocketSendOptions,
  type SocketType,
  type UnixAddress,
  UnixListener,
  UnixSocket,
} from "./src/unix/mod.ts";
