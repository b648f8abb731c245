/**
 * {@linkcode UnixSocket}: a connected Unix-domain socket that sends bytes together with
 * descriptors (SCM_RIGHTS), reads its peer's credentials, and waits without blocking the event
 * loop; `socketpair()` (pair.ts) makes two connected ones.
 *
 * @module
 */

import {
  MSG_CTRUNC,
  MSG_TRUNC,
  POLLIN,
  POLLOUT,
  POLLRDHUP,
  SHUT_RD,
  SHUT_RDWR,
  SHUT_WR,
  SO_PEERCRED,
  SOL_SOCKET,
} from "../../ffi/constants.ts";
import { ucred } from "../../ffi/layout.ts";
import { libc } from "../../ffi/libc.ts";
import {
  ConstructorToken,
  describe,
  ownOptions,
  plainBytes,
  validateInteger,
} from "../_validate.ts";
import { pollNow, RETRY, type WaitOptions } from "../_wait.ts";
import { check } from "../errors.ts";
import { type FdLike, peekFd, takeFd } from "../fd.ts";
import type { UnixAddress } from "./address.ts";
import {
  handleToken,
  inspectSocket,
  SocketHandle,
  socketLabel,
  type SocketType,
  waitReady,
  waitReadySync,
} from "./_core.ts";
import { connectFd, connectFdSync, type ConnectOptions } from "./_connect.ts";
import { receiveOnce, SCM_MAX_FD, sendOnce } from "./_msghdr.ts";
import { createMessage, type ReceivedMessage } from "./message.ts";

const token = new ConstructorToken(
  "UnixSocket",
  "UnixSocket.connect(), connectSync(), fromFd(), socketpair() or UnixListener.accept()",
);

/** Wraps a connected socket's descriptor. Internal: for `UnixListener` and `socketpair`. */
export let wrapSocket: (fd: number, type: SocketType, label: string) => UnixSocket;

/** Options of {@linkcode UnixSocket.send}. */
export interface SocketSendOptions extends WaitOptions {
  /**
   * Descriptors to send with the bytes, at most 253: numbers, `OwnedFd`s, or any object with
   * an `fd` (a `SharedMemory`, a `Channel`, a pipe end, another socket). The peer gets its own
   * copies; this process keeps its own.
   */
  fds?: readonly FdLike[];
}

/** Options of {@linkcode UnixSocket.receive}. */
export interface SocketReceiveOptions extends WaitOptions {
  /** The most bytes to receive, 1 to 2^24. Default 65536. */
  maxBytes?: number;
  /**
   * The most descriptors to accept, 0 to 253. Default 0: descriptors a peer sends are closed
   * by the kernel, and the message says `fdsTruncated`.
   */
  maxFds?: number;
}

/** Who is at the other end of a socket (SO_PEERCRED), as the kernel recorded at connect. */
export interface PeerCredentials {
  /** The peer's process id, in this process's PID namespace (0 when it is not visible). */
  readonly pid: number;
  /** The peer's effective user id. */
  readonly uid: number;
  /** The peer's effective group id. */
  readonly gid: number;
}

const DEFAULT_MAX_BYTES = 65536;
const MAX_BYTES = 1 << 24;
const encoder = new TextEncoder();

/**
 * A connected Unix-domain socket: stream or seqpacket, close-on-exec, with async sends and
 * receives that never block the event loop, `…Sync` forms that block this thread, and
 * descriptors sent next to the bytes.
 *
 * @example Handing a segment to a running process
 * ```ts
 * import { socketpair } from "@posix/ipc/unix";
 * import { SharedMemory } from "@posix/ipc/shm";
 *
 * using pair = socketpair({ type: "seqpacket" });
 * using memory = SharedMemory.anonymous({ size: 16 });
 * memory.bytes[0] = 42;
 * await pair[0].send("here", { fds: [memory] });
 *
 * using message = (await pair[1].receive({ maxFds: 1 }))!;
 * using copy = SharedMemory.fromFd(message.takeFd());
 * console.log(copy.bytes[0]); // 42
 * ```
 */
export class UnixSocket extends SocketHandle implements AsyncIterable<ReceivedMessage> {
  /** A scratch buffer for receives without a caller's buffer; copied out of each time. */
  #scratch: Uint8Array | undefined;

  static {
    wrapSocket = (fd, type, label) => new UnixSocket(token, fd, type, label);
  }

  private constructor(key: ConstructorToken, fd: number, type: SocketType, label: string) {
    token.check(key);
    super(handleToken, fd, type, label);
  }

  /**
   * Connects to a listening socket, waiting (without blocking the event loop) while its backlog
   * is full. A path needs `--allow-read` and `--allow-write` for it, as `Deno.connect` does.
   *
   * @param address A path, `{ path }`, `{ abstract }` or `"\0name"`.
   * @param options The `type` (the listener's), `timeout` (ms) and `signal`.
   * @returns The connected socket.
   * @throws {Deno.errors.NotCapable} without read and write permission for a path.
   * @throws {Deno.errors.NotFound} when no socket file is at the path.
   * @throws {Deno.errors.ConnectionRefused} when nothing listens at the address.
   * @throws {RangeError} when the address does not fit 108 bytes.
   * @example
   * ```ts
   * import { UnixListener, UnixSocket } from "@posix/ipc/unix";
   *
   * using listener = UnixListener.listen({ abstract: `example-${Deno.pid}` });
   * using client = await UnixSocket.connect({ abstract: `example-${Deno.pid}` });
   * using server = await listener.accept();
   * console.log(server.peerCredentials().pid === Deno.pid); // true
   * ```
   */
  static async connect(address: UnixAddress, options: ConnectOptions = {}): Promise<UnixSocket> {
    const { fd, type, label } = await connectFd(address, options);
    return new UnixSocket(token, fd, type, label);
  }

  /**
   * Connects as {@linkcode UnixSocket.connect} does, blocking this thread while the listener's
   * backlog is full (at most `timeout` ms).
   *
   * @param address A path, `{ path }`, `{ abstract }` or `"\0name"`.
   * @param options The `type` and `timeout` (ms).
   * @returns The connected socket.
   * @example
   * ```ts
   * import { UnixListener, UnixSocket } from "@posix/ipc/unix";
   *
   * using listener = UnixListener.listen(`\0sync-example-${Deno.pid}`);
   * using client = UnixSocket.connectSync(`\0sync-example-${Deno.pid}`);
   * console.log(client.type); // "stream"
   * ```
   */
  static connectSync(
    address: UnixAddress,
    options: { type?: SocketType; timeout?: number } = {},
  ): UnixSocket {
    const { fd, type, label } = connectFdSync(address, options);
    return new UnixSocket(token, fd, type, label);
  }

  /**
   * Takes a connected Unix-domain socket from a descriptor: one a parent handed down (with
   * `spawn`'s `fds`, then `inheritedFd`) or one received in a message.
   *
   * @param fd The descriptor; the socket takes ownership (an `OwnedFd` is released to it,
   * another object's descriptor is duplicated). On failure a number or `OwnedFd` stays open
   * and the caller's.
   * @returns The socket.
   * @throws {Deno.errors.NotSupported} when the descriptor is no connected Unix-domain stream or
   * seqpacket socket (a listening one is `UnixListener.fromFd`'s).
   * @example
   * ```ts
   * import { socketpair, UnixSocket } from "@posix/ipc/unix";
   *
   * using pair = socketpair();
   * using again = UnixSocket.fromFd(pair[1]); // a duplicate, as a child would get
   * pair[0].sendSync("hi");
   * console.log(again.receiveSync()!.text); // "hi"
   * ```
   */
  static fromFd(fd: FdLike): UnixSocket {
    const type = inspectSocket(peekFd(fd, "fd"), false);
    return new UnixSocket(token, takeFd(fd, "fd"), type, "Unix socket");
  }

  /**
   * Who is at the other end (SO_PEERCRED): the process that connected, or that made the pair,
   * as the kernel recorded it then. The kernel vouches for it: a server can decide whom to
   * trust by uid.
   *
   * @returns The peer's pid, uid and gid.
   * @throws {Deno.errors.BadResource} when closed.
   * @example
   * ```ts
   * import { socketpair } from "@posix/ipc/unix";
   *
   * using pair = socketpair();
   * console.log(pair[0].peerCredentials().uid === Deno.uid()); // true
   * ```
   */
  peerCredentials(): PeerCredentials {
    const buffer = new Uint8Array(ucred.size);
    const length = new Uint32Array([ucred.size]);
    check(
      libc().getsockopt(this.fd, SOL_SOCKET, SO_PEERCRED, buffer, length),
      "getsockopt",
      { action: "read the peer credentials of", objectName: socketLabel(this) },
    );
    const view = new DataView(buffer.buffer);
    return {
      pid: view.getInt32(ucred.pid, true),
      uid: view.getUint32(ucred.uid, true),
      gid: view.getUint32(ucred.gid, true),
    };
  }

  /**
   * Sends `data` and any `fds` with it, waiting without blocking the event loop while the
   * socket's buffer is full. On a stream socket the descriptors travel with the first byte, so
   * `data` must not be empty; on a seqpacket socket all of it is one message.
   *
   * @param data Bytes, or a string sent as UTF-8.
   * @param options `fds`, `timeout` (ms) and `signal`. On a stream socket, a timeout or abort
   * may leave part of the data sent.
   * @returns How many bytes were sent: all of them.
   * @throws {RangeError} for more than 253 descriptors, or descriptors with no byte on a stream
   * socket.
   * @throws {Deno.errors.BrokenPipe} when the peer has closed.
   * @throws {Deno.errors.BadResource} when a descriptor of `fds` was closed before it went,
   * also while the send waited.
   * @throws {IpcError} with code `EMSGSIZE` for a seqpacket message larger than the socket's
   * buffer.
   * @example
   * ```ts
   * import { socketpair } from "@posix/ipc/unix";
   *
   * using pair = socketpair();
   * console.log(await pair[0].send("hello")); // 5
   * ```
   */
  async send(data: Uint8Array | string, options: SocketSendOptions = {}): Promise<number> {
    const send = this.#prepareSend(data, options);
    return await waitReady(this, POLLOUT, options, send.what, send.attempt);
  }

  /**
   * Sends as {@linkcode UnixSocket.send} does, blocking this thread while the buffer is full.
   *
   * @param data Bytes, or a string sent as UTF-8.
   * @param options `fds` and `timeout` (ms).
   * @returns How many bytes were sent: all of them.
   * @example
   * ```ts
   * import { socketpair } from "@posix/ipc/unix";
   *
   * using pair = socketpair({ type: "seqpacket" });
   * pair[0].sendSync(new Uint8Array([1, 2]));
   * console.log(pair[1].receiveSync()!.bytes); // Uint8Array(2) [ 1, 2 ]
   * ```
   */
  sendSync(
    data: Uint8Array | string,
    options: { fds?: readonly FdLike[]; timeout?: number } = {},
  ): number {
    const send = this.#prepareSend(data, options);
    return waitReadySync(this, POLLOUT, options, send.what, send.attempt);
  }

  /** Checks what to send and returns the attempt that sends the rest of it. */
  #prepareSend(data: unknown, options: unknown) {
    const what = `send on "${socketLabel(this)}"`;
    const given = typeof data === "string" ? encoder.encode(data) : data;
    if (!(given instanceof Uint8Array)) {
      throw new TypeError(
        `Cannot ${what}: data ${describe(data)} must be a Uint8Array or a string`,
      );
    }
    // Its real length and memory, whatever a subclass says: sendmsg reads exactly what it is told.
    const bytes = plainBytes(given);
    const fds = checkFds(ownOptions(options as SocketSendOptions, `${what} options`).fds, what);
    const fd = this.fd;
    if (fds.length > 0 && bytes.length === 0 && this.type === "stream") {
      throw new RangeError(
        `Cannot ${what}: descriptors need at least one byte of data on a stream socket`,
      );
    }
    let done = 0;
    let pending = fds;
    const label = socketLabel(this);
    const attempt = (): number | typeof RETRY => {
      do {
        // The numbers again at each try: a descriptor closed during the wait is BadResource,
        // where its number, open again for another file, would send that file.
        const n = sendOnce(fd, bytes.subarray(done), currentFds(pending), label);
        if (n === RETRY) return RETRY;
        pending = [];
        done += n;
      } while (done < bytes.length);
      return done;
    };
    return { what, attempt };
  }

  /**
   * Receives one message (seqpacket) or what has arrived of the stream (at most `maxBytes`),
   * with the descriptors that came with it, waiting without blocking the event loop.
   *
   * @param options `maxBytes`, `maxFds`, `timeout` (ms) and `signal`.
   * @returns The message, which owns its descriptors until they are taken (use `using`), or
   * `null` once the peer has closed and everything was read.
   * @throws {Deno.errors.TimedOut} after `timeout`.
   * @throws {Deno.errors.BadResource} when the socket is closed, also while waiting.
   * @example
   * ```ts
   * import { socketpair } from "@posix/ipc/unix";
   *
   * using pair = socketpair();
   * await pair[0].send("ping");
   * using message = (await pair[1].receive({ timeout: 1000 }))!;
   * console.log(message.text); // "ping"
   * ```
   */
  async receive(options: SocketReceiveOptions = {}): Promise<ReceivedMessage | null> {
    const receive = this.#prepareReceive(options);
    return await waitReady(this, POLLIN, options, receive.what, receive.attempt);
  }

  /**
   * Receives as {@linkcode UnixSocket.receive} does, blocking this thread until something
   * arrives (at most `timeout` ms).
   *
   * @param options `maxBytes`, `maxFds` and `timeout` (ms).
   * @returns The message, or `null` once the peer has closed.
   * @example
   * ```ts
   * import { socketpair } from "@posix/ipc/unix";
   *
   * using pair = socketpair();
   * pair[0].close();
   * console.log(pair[1].receiveSync()); // null
   * ```
   */
  receiveSync(
    options: { maxBytes?: number; maxFds?: number; timeout?: number } = {},
  ): ReceivedMessage | null {
    const receive = this.#prepareReceive(options);
    return waitReadySync(this, POLLIN, options, receive.what, receive.attempt);
  }

  /**
   * Receives what is waiting, without waiting.
   *
   * @param options `maxBytes` and `maxFds`.
   * @returns The message, `null` once the peer has closed, or `undefined` when nothing is
   * waiting.
   * @example
   * ```ts
   * import { socketpair } from "@posix/ipc/unix";
   *
   * using pair = socketpair();
   * console.log(pair[1].tryReceive()); // undefined
   * ```
   */
  tryReceive(
    options: { maxBytes?: number; maxFds?: number } = {},
  ): ReceivedMessage | null | undefined {
    const result = this.#prepareReceive(options).attempt();
    return result === RETRY ? undefined : result;
  }

  /** Checks the receive options and returns the attempt that receives once. */
  #prepareReceive(options: unknown) {
    const what = `receive from "${socketLabel(this)}"`;
    const own = ownOptions(options as SocketReceiveOptions, `${what} options`);
    const maxBytes = own.maxBytes === undefined
      ? DEFAULT_MAX_BYTES
      : validateInteger(own.maxBytes, "maxBytes", 1, MAX_BYTES);
    const maxFds = own.maxFds === undefined
      ? 0
      : validateInteger(own.maxFds, "maxFds", 0, SCM_MAX_FD, "the kernel's SCM_MAX_FD");
    const fd = this.fd;
    const label = socketLabel(this);
    const seqpacket = this.type === "seqpacket";
    const attempt = (): ReceivedMessage | null | typeof RETRY => {
      if (this.#scratch === undefined || this.#scratch.length < maxBytes) {
        this.#scratch = new Uint8Array(Math.max(maxBytes, DEFAULT_MAX_BYTES));
      }
      const buffer = this.#scratch.subarray(0, maxBytes);
      const raw = receiveOnce(fd, buffer, maxFds, label);
      if (raw === RETRY) return RETRY;
      const fds = raw.fds;
      const message = createMessage(
        buffer.slice(0, raw.length),
        fds,
        (raw.flags & MSG_TRUNC) !== 0,
        (raw.flags & MSG_CTRUNC) !== 0,
      );
      if (raw.length === 0 && fds.length === 0 && (!seqpacket || atEnd(fd))) {
        message.close();
        return null;
      }
      return message;
    };
    return { what, attempt };
  }

  /**
   * The messages as they arrive, until the peer has closed (or this socket is closed): each
   * owns its descriptors, so iterate with `for await (using message of …)`, or take them.
   *
   * @param options `maxBytes`, `maxFds` and `signal`, for every receive.
   * @returns An async iterator of messages.
   * @example
   * ```ts
   * import { socketpair } from "@posix/ipc/unix";
   *
   * using pair = socketpair({ type: "seqpacket" });
   * pair[0].sendSync("a");
   * pair[0].sendSync("b");
   * pair[0].shutdown();
   * for await (using message of pair[1].messages()) console.log(message.text); // "a", then "b"
   * ```
   */
  async *messages(
    options: { maxBytes?: number; maxFds?: number; signal?: AbortSignal } = {},
  ): AsyncGenerator<ReceivedMessage, void, undefined> {
    const own = ownOptions(options, `receive from "${socketLabel(this)}" options`);
    const each = { maxBytes: own.maxBytes, maxFds: own.maxFds, signal: own.signal };
    this.#prepareReceive(each); // bad options throw at the first next(), before any wait
    while (true) {
      let message: ReceivedMessage | null;
      try {
        message = await this.receive(each);
      } catch (error) {
        if (error instanceof Deno.errors.BadResource && this.closed) return;
        throw error;
      }
      if (message === null) return;
      yield message;
    }
  }

  /**
   * Same as {@linkcode UnixSocket.messages} with the default limits (64 KiB, no descriptor).
   *
   * @example
   * ```ts
   * import { socketpair } from "@posix/ipc/unix";
   *
   * using pair = socketpair();
   * pair[0].sendSync("bytes");
   * pair[0].close();
   * for await (using message of pair[1]) console.log(message.text); // "bytes"
   * ```
   */
  [Symbol.asyncIterator](): AsyncGenerator<ReceivedMessage, void, undefined> {
    return this.messages();
  }

  /**
   * Shuts down one direction or both (shutdown): after `"write"` the peer reads end-of-file
   * once it has read everything; the socket stays open until closed.
   *
   * @param how `"read"`, `"write"` (the default) or `"both"`.
   * @example
   * ```ts
   * import { socketpair } from "@posix/ipc/unix";
   *
   * using pair = socketpair();
   * pair[0].shutdown("write");
   * console.log(await pair[1].receive()); // null
   * ```
   */
  shutdown(how: "read" | "write" | "both" = "write"): void {
    const mode = how === "read"
      ? SHUT_RD
      : how === "write"
      ? SHUT_WR
      : how === "both"
      ? SHUT_RDWR
      : undefined;
    if (mode === undefined) {
      throw new TypeError(
        `Cannot shut down "${socketLabel(this)}": how ${
          describe(how)
        } must be "read", "write" or "both"`,
      );
    }
    check(libc().shutdown(this.fd, mode), "shutdown", {
      action: "shut down",
      objectName: socketLabel(this),
    });
  }
}

/**
 * Whether a seqpacket socket that read nothing has reached its end: the peer shut down its
 * writing side or closed, rather than sent an empty message.
 */
function atEnd(fd: number): boolean {
  return (pollNow(fd, POLLIN | POLLRDHUP) & POLLRDHUP) !== 0;
}

/**
 * Checks the descriptors to send: an array of at most 253 FdLike, each read before any call.
 *
 * @returns A copy of the array, for {@linkcode currentFds} to read at each try.
 */
function checkFds(fds: unknown, what: string): readonly FdLike[] {
  if (fds === undefined) return NO_FDS;
  if (!Array.isArray(fds)) {
    throw new TypeError(`Cannot ${what}: fds ${describe(fds)} must be an array of descriptors`);
  }
  if (fds.length > SCM_MAX_FD) {
    throw new RangeError(
      `Cannot ${what}: ${fds.length} descriptors, more than the ${SCM_MAX_FD} one message ` +
        "carries (SCM_MAX_FD)",
    );
  }
  const given = Array.from(fds as FdLike[]);
  currentFds(given);
  return given;
}

const NO_FDS: readonly never[] = [];

/** The numbers of `fds` now: BadResource for one closed since it was checked. */
function currentFds(fds: readonly FdLike[]): readonly number[] {
  return fds.length === 0 ? NO_FDS : fds.map((fd, i) => peekFd(fd, `fds[${i}]`));
}
