/**
 * {@linkcode ReceivedMessage}: what one receive on a Unix-domain socket brought, the bytes and
 * the descriptors, which it owns until they are taken.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { ConstructorToken, validateInteger } from "../_validate.ts";
import { closedError } from "../errors.ts";
import { closeFd, OwnedFd } from "../fd.ts";
import { SCM_MAX_FD } from "./_msghdr.ts";

const token = new ConstructorToken("ReceivedMessage", "UnixSocket.receive()");

/** Makes a message that owns `fds`. Internal: for `UnixSocket`. */
export let createMessage: (
  bytes: Uint8Array,
  fds: number[],
  truncated: boolean,
  fdsTruncated: boolean,
) => ReceivedMessage;

/** Closes the descriptors nobody took from a message dropped without `close()`. */
const closeWhenUnreachable = new FinalizationRegistry<number[]>((fds) => {
  for (const fd of fds) if (fd >= 0) libc().close(fd);
});

/**
 * One message received on a {@linkcode UnixSocket}: its bytes and the descriptors that came
 * with them. The message owns the descriptors until they are taken with
 * {@linkcode ReceivedMessage.takeFd} or {@linkcode ReceivedMessage.takeFds}; closing it (or
 * `using` it) closes those nobody took, so none is leaked. Descriptors beyond the receiver's
 * `maxFds` never enter this process: the kernel drops them and sets
 * {@linkcode ReceivedMessage.fdsTruncated}.
 *
 * @example Taking the one descriptor a peer sent
 * ```ts
 * import { socketpair } from "@posix/ipc/unix";
 * import { SharedMemory } from "@posix/ipc/shm";
 *
 * using pair = socketpair();
 * using memory = SharedMemory.anonymous({ size: 4096 });
 * await pair[0].send("segment", { fds: [memory] });
 * using message = (await pair[1].receive({ maxFds: 1 }))!;
 * using received = SharedMemory.fromFd(message.takeFd());
 * console.log(message.text, received.size); // "segment" 4096
 * ```
 */
export class ReceivedMessage implements Disposable {
  /** The bytes received: a copy, this message's own. */
  readonly bytes: Uint8Array;
  /**
   * Whether the message was longer than the receive's `maxBytes` (MSG_TRUNC): on a seqpacket
   * socket the rest of it is lost; a stream socket never truncates (the rest is read next).
   */
  readonly truncated: boolean;
  /**
   * Whether the sender sent more descriptors than the receive's `maxFds` allowed, or this
   * process had no descriptor numbers left (MSG_CTRUNC): the ones that did not fit were closed
   * by the kernel and never reached this process.
   */
  readonly fdsTruncated: boolean;
  /** The descriptors, -1 once taken or closed; shared with the finalizer. */
  readonly #fds: number[];
  #closed = false;

  static {
    createMessage = (bytes, fds, truncated, fdsTruncated) =>
      new ReceivedMessage(token, bytes, fds, truncated, fdsTruncated);
  }

  private constructor(
    key: ConstructorToken,
    bytes: Uint8Array,
    fds: number[],
    truncated: boolean,
    fdsTruncated: boolean,
  ) {
    token.check(key);
    this.bytes = bytes;
    this.#fds = fds;
    this.truncated = truncated;
    this.fdsTruncated = fdsTruncated;
    if (fds.length > 0) closeWhenUnreachable.register(this, fds, this);
  }

  /** The bytes as UTF-8 text. */
  get text(): string {
    return new TextDecoder().decode(this.bytes);
  }

  /** How many descriptors arrived with the message, taken or not. */
  get fdCount(): number {
    return this.#fds.length;
  }

  /**
   * Takes the descriptor at `index` (in the order they were sent): the caller owns it from now
   * on, close-on-exec, and closing the message no longer closes it.
   *
   * @param index Which descriptor, from 0. Default 0.
   * @returns The descriptor, owned.
   * @throws {RangeError} when no descriptor arrived at `index`.
   * @throws {Deno.errors.BadResource} when the message is closed or the descriptor was taken.
   * @example
   * ```ts
   * import { socketpair } from "@posix/ipc/unix";
   *
   * using pair = socketpair();
   * await pair[0].send("x", { fds: [pair[0]] });
   * using message = (await pair[1].receive({ maxFds: 1 }))!;
   * using fd = message.takeFd(0);
   * console.log(fd.inheritable); // false: close-on-exec
   * ```
   */
  takeFd(index = 0): OwnedFd {
    if (this.#closed) throw closedError("a closed received message");
    const at = validateInteger(index, "descriptor index", 0, SCM_MAX_FD - 1);
    if (at >= this.#fds.length) {
      throw new RangeError(
        `Cannot take descriptor ${at}: ${this.#fds.length} came with this message`,
      );
    }
    const fd = this.#fds[at]!;
    if (fd < 0) throw closedError(`descriptor ${at} of the message: it was taken`);
    this.#fds[at] = -1;
    return new OwnedFd(fd);
  }

  /**
   * Takes every descriptor not taken yet, in the order they were sent.
   *
   * @returns The descriptors, owned by the caller (an empty array when none is left).
   * @throws {Deno.errors.BadResource} when the message is closed.
   * @example
   * ```ts
   * import { socketpair } from "@posix/ipc/unix";
   *
   * using pair = socketpair();
   * await pair[0].send("two", { fds: [pair[0], pair[1]] });
   * using message = (await pair[1].receive({ maxFds: 4 }))!;
   * const fds = message.takeFds();
   * console.log(fds.length); // 2
   * for (const fd of fds) fd.close();
   * ```
   */
  takeFds(): OwnedFd[] {
    if (this.#closed) throw closedError("a closed received message");
    const taken: OwnedFd[] = [];
    this.#fds.forEach((fd, i) => {
      if (fd < 0) return;
      this.#fds[i] = -1;
      taken.push(new OwnedFd(fd));
    });
    return taken;
  }

  /** Closes the descriptors nobody took. Closing again does nothing; `bytes` stays readable. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeWhenUnreachable.unregister(this);
    this.#fds.forEach((fd, i) => {
      if (fd < 0) return;
      this.#fds[i] = -1;
      closeFd(fd);
    });
  }

  /** Same as `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
