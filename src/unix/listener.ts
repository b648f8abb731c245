/**
 * {@linkcode UnixListener}: a listening Unix-domain socket at a path or an abstract name,
 * whose accepts never block the event loop.
 *
 * @module
 */

import { cstring } from "../../ffi/cstring.ts";
import {
  AF_UNIX,
  EAGAIN,
  ECONNABORTED,
  EINTR,
  F_GETFL,
  F_SETFL,
  O_NONBLOCK,
  POLLIN,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
} from "../../ffi/constants.ts";
import { errno, libc } from "../../ffi/libc.ts";
import {
  ConstructorToken,
  INT_MAX,
  optionalBoolean,
  ownOptions,
  validateInteger,
  validateMode,
} from "../_validate.ts";
import { RETRY, type WaitOptions } from "../_wait.ts";
import { check, systemError } from "../errors.ts";
import { statLink } from "../_stat.ts";
import { chmodBoundSocket, removeIfStill } from "./_socket_file.ts";
import { closeFd, type FdLike, peekFd, takeFd } from "../fd.ts";
import {
  boundAddress,
  encodeAddress,
  parseAddress,
  type ParsedAddress,
  requireAddressPermission,
  type UnixAddress,
} from "./address.ts";
import {
  handleToken,
  inspectSocket,
  SocketHandle,
  type SocketType,
  socketTypeName,
  socketTypeNumber,
  waitReady,
  waitReadySync,
} from "./_core.ts";
import { type UnixSocket, wrapSocket } from "./socket.ts";

const token = new ConstructorToken("UnixListener", "UnixListener.listen()");

/** Options of {@linkcode UnixListener.listen}. */
export interface ListenOptions {
  /** The type of the sockets it accepts. Default `"stream"`. */
  type?: SocketType;
  /** How many connections may wait to be accepted (listen's backlog). Default 128. */
  backlog?: number;
  /**
   * The socket file's permission bits, set before anyone can connect, whatever the umask
   * (connecting needs write permission on it). Default `0o600`: only this user. Ignored for an
   * abstract name, which has no file: check `peerCredentials()` instead.
   */
  mode?: number;
  /**
   * Keep the socket file when the listener closes, as for other named objects. Default
   * `false`: closing removes it. (A listener that dies without closing leaves it either way;
   * the next `listen` at that path then fails with `AddrInUse` until it is removed.)
   */
  persist?: boolean;
}

/**
 * A listening Unix-domain socket. At a path it creates the socket file, with mode `0o600`
 * unless told otherwise, and removes it when closed; at an abstract name there is no file.
 *
 * Listening at a path needs `--allow-read` and `--allow-write` for it, as `Deno.listen` does;
 * an abstract name needs no file permission (only `--allow-ffi`, as every call here).
 *
 * @example A server that accepts one client
 * ```ts
 * import { UnixListener, UnixSocket } from "@posix/ipc/unix";
 *
 * const address = { abstract: `listener-example-${Deno.pid}` };
 * using listener = UnixListener.listen(address);
 * using client = await UnixSocket.connect(address);
 * using server = await listener.accept({ timeout: 1000 });
 * await client.send("hello");
 * console.log((await server.receive())!.text); // "hello"
 * ```
 */
export class UnixListener extends SocketHandle implements AsyncIterable<UnixSocket> {
  readonly #address: ParsedAddress;
  /**
   * The identity ("major:minor:inode") of the socket file this listener bound and removes on
   * close; `null` when it removes none (an abstract address, `persist`, or `fromFd`).
   */
  readonly #ownedFile: string | null;

  private constructor(
    key: ConstructorToken,
    fd: number,
    type: SocketType,
    address: ParsedAddress,
    ownedFile: string | null,
  ) {
    token.check(key);
    super(handleToken, fd, type, `Unix listener "${address.label}"`);
    this.#address = address;
    this.#ownedFile = ownedFile;
  }

  /**
   * Listens at `address` (socket, bind, listen), close-on-exec.
   *
   * @param address A path, `{ path }`, `{ abstract }` or `"\0name"`.
   * @param options `type`, `backlog`, `mode` and `persist`.
   * @returns The listener.
   * @throws {Deno.errors.NotCapable} without read and write permission for a path.
   * @throws {Deno.errors.AddrInUse} when something is at the path or the name is taken.
   * @throws {Deno.errors.NotFound} when another process removed or replaced the socket file
   * before its mode was set (a file put there is left alone, its mode unchanged).
   * @throws {RangeError} when the address does not fit 108 bytes, and for a bad backlog.
   * @example
   * ```ts
   * import { UnixListener } from "@posix/ipc/unix";
   *
   * const dir = Deno.makeTempDirSync();
   * using listener = UnixListener.listen(`${dir}/example.sock`);
   * console.log(Deno.statSync(`${dir}/example.sock`).mode! & 0o777); // 384 (0o600)
   * listener.close(); // removes the file
   * Deno.removeSync(dir);
   * ```
   */
  static listen(address: UnixAddress, options: ListenOptions = {}): UnixListener {
    const own = ownOptions(options, "UnixListener.listen() options");
    const parsed = parseAddress(address, "listen");
    const what = `listen at "${parsed.label}"`;
    const type = socketTypeNumber(own.type, what);
    const backlog = own.backlog === undefined
      ? 128
      : validateInteger(own.backlog, "backlog", 0, INT_MAX);
    const mode = validateMode(own.mode ?? 0o600);
    const persist = optionalBoolean(own.persist, "persist") ?? false;
    requireAddressPermission(parsed);
    const c = libc();
    const operation = { action: "listen at", objectName: parsed.label };
    const fd = check(
      c.socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0),
      "socket",
      operation,
    );
    let madeFile = false;
    let bound: string | null = null; // the identity of the socket file bound
    try {
      const { buffer, length } = encodeAddress(parsed);
      check(c.bind(fd, buffer, length), "bind", operation);
      if (parsed.kind === "path") {
        madeFile = true;
        bound = statLink(parsed.text, operation).identity;
        // Through a descriptor that holds the socket: the path may name another file by now.
        chmodBoundSocket(parsed.text, bound, mode, operation);
      }
      check(c.listen(fd, backlog), "listen", operation);
    } catch (error) {
      closeFd(fd);
      // The file this call made goes too; a failure to remove it must not hide why listen failed.
      if (madeFile) {
        try {
          if (bound !== null) removeIfStill(parsed.text, bound);
          else c.unlink(cstring(parsed.text)); // its identity could not be read: as before
        } catch {
          // the error thrown below says what went wrong
        }
      }
      throw error;
    }
    const owned = persist ? null : bound;
    return new UnixListener(token, fd, socketTypeName(type)!, parsed, owned);
  }

  /**
   * Takes a listening Unix-domain socket from a descriptor, typically one a parent handed down
   * with `spawn`'s `fds` (socket activation: the parent binds, workers accept), which Deno's own
   * API cannot do. It switches the socket to non-blocking mode, for every process that shares
   * it (this side never blocks in `accept`; the others should poll first, as Deno does). It
   * never removes the socket file: the process that bound it owns it.
   *
   * @param fd The descriptor; the listener takes ownership (an `OwnedFd` is released to it,
   * another object's descriptor is duplicated). On failure a number or `OwnedFd` stays open
   * and the caller's.
   * @returns The listener.
   * @throws {Deno.errors.NotSupported} when the descriptor is no listening Unix-domain stream
   * or seqpacket socket.
   * @example
   * ```ts
   * import { UnixListener } from "@posix/ipc/unix";
   *
   * using bound = UnixListener.listen(`\0from-fd-${Deno.pid}`);
   * using shared = UnixListener.fromFd(bound); // a duplicate, as a child given bound.fd would
   * console.log(shared.address); // "@from-fd-…"
   * ```
   */
  static fromFd(fd: FdLike): UnixListener {
    const number = peekFd(fd, "fd");
    const type = inspectSocket(number, true);
    const what = `use descriptor ${number} as a Unix listener`;
    const address = boundAddress(number, what) ??
      { kind: "abstract", text: "", label: `fd ${number}` } as const;
    const flags = check(libc().fcntl(number, F_GETFL, 0), "fcntl", { action: what });
    if ((flags & O_NONBLOCK) === 0) {
      check(libc().fcntl(number, F_SETFL, flags | O_NONBLOCK), "fcntl", { action: what });
    }
    return new UnixListener(token, takeFd(fd, "fd"), type, address, null);
  }

  /** The address: the path, or "@name" for an abstract name. */
  get address(): string {
    return this.#address.label;
  }

  /**
   * Accepts the next connection, waiting without blocking the event loop.
   *
   * @param options `timeout` (ms) and `signal`.
   * @returns The connected socket, close-on-exec.
   * @throws {Deno.errors.TimedOut} after `timeout`.
   * @throws {Deno.errors.BadResource} when the listener is closed, also while waiting.
   * @example
   * ```ts
   * import { UnixListener } from "@posix/ipc/unix";
   *
   * using listener = UnixListener.listen(`\0accept-example-${Deno.pid}`);
   * try {
   *   await listener.accept({ timeout: 10 });
   * } catch (error) {
   *   console.log(error instanceof Deno.errors.TimedOut); // true
   * }
   * ```
   */
  async accept(options: WaitOptions = {}): Promise<UnixSocket> {
    return await waitReady(
      this,
      POLLIN,
      options,
      `accept on "${this.address}"`,
      () => this.#attempt(),
    );
  }

  /**
   * Accepts as {@linkcode UnixListener.accept} does, blocking this thread (at most `timeout`
   * ms).
   *
   * @param options `timeout` (ms).
   * @returns The connected socket.
   * @example
   * ```ts
   * import { UnixListener, UnixSocket } from "@posix/ipc/unix";
   *
   * using listener = UnixListener.listen(`\0accept-sync-${Deno.pid}`);
   * using client = UnixSocket.connectSync(`\0accept-sync-${Deno.pid}`);
   * using server = listener.acceptSync({ timeout: 1000 });
   * console.log(server.peerCredentials().pid === Deno.pid); // true
   * ```
   */
  acceptSync(options: { timeout?: number } = {}): UnixSocket {
    return waitReadySync(
      this,
      POLLIN,
      options,
      `accept on "${this.address}"`,
      () => this.#attempt(),
    );
  }

  /**
   * Accepts a connection that is waiting, without waiting.
   *
   * @returns The connected socket, or `undefined` when none is waiting.
   * @example
   * ```ts
   * import { UnixListener } from "@posix/ipc/unix";
   *
   * using listener = UnixListener.listen(`\0try-accept-${Deno.pid}`);
   * console.log(listener.tryAccept()); // undefined
   * ```
   */
  tryAccept(): UnixSocket | undefined {
    const socket = this.#attempt();
    return socket === RETRY ? undefined : socket;
  }

  #attempt(): UnixSocket | typeof RETRY {
    const fd = libc().accept4(this.fd, null, null, SOCK_CLOEXEC);
    if (fd >= 0) return wrapSocket(fd, this.type, `Unix socket "${this.address}"`);
    const code = errno();
    if (code === EAGAIN || code === EINTR || code === ECONNABORTED) return RETRY;
    throw systemError(code, "accept4", { action: "accept on", objectName: this.address });
  }

  /**
   * The connections, accepted one after another until the listener is closed (then the loop
   * ends).
   *
   * @example
   * ```ts ignore
   * import { UnixListener } from "@posix/ipc/unix";
   *
   * using listener = UnixListener.listen({ abstract: "broker" });
   * for await (using client of listener) console.log(client.peerCredentials());
   * ```
   */
  async *[Symbol.asyncIterator](): AsyncIterator<UnixSocket> {
    while (!this.closed) {
      try {
        yield await this.accept();
      } catch (error) {
        if (error instanceof Deno.errors.BadResource && this.closed) return;
        throw error;
      }
    }
  }

  /**
   * Closes the listener and removes its socket file, if it bound one (not one `fromFd` took) and
   * the file at the path is still that one: a socket file that another listener bound there
   * since (after removing this one's) is left alone. Closing again does nothing.
   */
  override close(): void {
    if (this.closed) return;
    super.close();
    if (this.#ownedFile !== null) removeIfStill(this.#address.text, this.#ownedFile);
  }
}
