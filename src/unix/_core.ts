/**
 * What a Unix-domain listener and a connected socket share: an owned descriptor closed once
 * (and by the garbage collector when dropped), the socket types, and waits for readiness in
 * bounded slices (async) or blocking this thread (sync). Internal to `@posix/ipc/unix`.
 *
 * @module
 */

import {
  AF_UNIX,
  ENOTSOCK,
  SO_ACCEPTCONN,
  SO_DOMAIN,
  SO_TYPE,
  SOCK_SEQPACKET,
  SOCK_STREAM,
  SOL_SOCKET,
} from "../../ffi/constants.ts";
import { errno, libc } from "../../ffi/libc.ts";
import { ConstructorToken, describe, ownOptions, validateTimeout } from "../_validate.ts";
import {
  deadlineAfter,
  pollAsync,
  pollNow,
  pollSync,
  RETRY,
  sliceUntil,
  type WaitOptions,
  waitUntil,
} from "../_wait.ts";
import { closedError, systemError } from "../errors.ts";
import { OwnedFd } from "../fd.ts";
import { ADAPTIVE_MAX_MS, adaptiveBudget, spinWhile, Turns } from "../channel/wait.ts";

/** What a sleep that did not sleep returns. */
const RESOLVED: Promise<void> = Promise.resolve();

/**
 * The kind of a Unix-domain socket:
 * - `"stream"` (SOCK_STREAM): a byte stream, as TCP; message boundaries are not kept, and
 *   descriptors travel with the first byte of the data they were sent with;
 * - `"seqpacket"` (SOCK_SEQPACKET): connected, reliable, and each `send` arrives as one
 *   message of its own, with its descriptors.
 */
export type SocketType = "stream" | "seqpacket";

/** The `SOCK_*` number of a socket type, checked: a TypeError naming the argument otherwise. */
export function socketTypeNumber(type: unknown, what: string): number {
  if (type === undefined || type === "stream") return SOCK_STREAM;
  if (type === "seqpacket") return SOCK_SEQPACKET;
  throw new TypeError(
    `Cannot ${what}: type ${describe(type)} must be "stream" or "seqpacket"`,
  );
}

/** The name of a `SOCK_*` number, or `undefined` for a type this module does not handle. */
export function socketTypeName(type: number): SocketType | undefined {
  return type === SOCK_STREAM ? "stream" : type === SOCK_SEQPACKET ? "seqpacket" : undefined;
}

/** The key of the subclasses of this module: `new SocketHandle()` from outside is refused. */
export const handleToken: ConstructorToken = new ConstructorToken(
  "SocketHandle",
  "UnixSocket.connect(), socketpair() or UnixListener.listen()",
);

/** How error messages name a socket: its address, or "Unix socket". Internal. */
export let socketLabel: (socket: SocketHandle) => string;

/** An integer socket option of `fd`; NotSupported when `fd` is no socket. */
function socketOption(fd: number, option: number, what: string): number {
  const value = new Int32Array(1);
  const length = new Uint32Array([4]);
  if (libc().getsockopt(fd, SOL_SOCKET, option, value, length) === 0) return value[0]!;
  const code = errno();
  if (code === ENOTSOCK) {
    throw new Deno.errors.NotSupported(`Cannot ${what}: it is no socket (ENOTSOCK)`);
  }
  throw systemError(code, "getsockopt", { action: what });
}

/**
 * The type of the Unix-domain socket `fd`, checked to be listening (`listening`) or not:
 * NotSupported for any other descriptor, before anything is taken.
 */
export function inspectSocket(fd: number, listening: boolean): SocketType {
  const what = `use descriptor ${fd} as a Unix ${listening ? "listener" : "socket"}`;
  const type = socketTypeName(socketOption(fd, SO_TYPE, what));
  if (type === undefined || socketOption(fd, SO_DOMAIN, what) !== AF_UNIX) {
    throw new Deno.errors.NotSupported(
      `Cannot ${what}: it is no Unix-domain stream or seqpacket socket`,
    );
  }
  if ((socketOption(fd, SO_ACCEPTCONN, what) === 1) !== listening) {
    throw new Deno.errors.NotSupported(
      `Cannot ${what}: it is ${
        listening ? "not listening" : "a listening socket: use UnixListener.fromFd()"
      }`,
    );
  }
  return type;
}

/** Closes the descriptor of a socket dropped without `close()`: a safety net only. */
const closeWhenUnreachable = new FinalizationRegistry<number>((fd) => {
  libc().close(fd);
});

/**
 * An owned socket descriptor. `close()` closes it once; every other use after close throws
 * `Deno.errors.BadResource`.
 */
export abstract class SocketHandle implements Disposable {
  readonly #fd: OwnedFd;
  readonly #type: SocketType;
  /** How messages name this socket: its address, or "Unix socket". */
  readonly #label: string;

  static {
    socketLabel = (socket) => socket.#label;
  }

  /** Takes ownership of `fd`, a socket of `type`: for the subclasses of this module only. */
  protected constructor(key: ConstructorToken, fd: number, type: SocketType, label: string) {
    handleToken.check(key);
    this.#fd = new OwnedFd(fd);
    this.#type = type;
    this.#label = label;
    closeWhenUnreachable.register(this, fd, this);
  }

  /**
   * The descriptor's number. **UNSAFE**: valid only while this socket is open; once it is
   * closed the kernel may give the number to another file.
   *
   * @throws {Deno.errors.BadResource} when closed.
   */
  get fd(): number {
    if (this.#fd.closed) throw closedError(`the ${this.#label}`);
    return this.#fd.fd;
  }

  /** The socket's type, `"stream"` or `"seqpacket"`. */
  get type(): SocketType {
    return this.#type;
  }

  /** Whether this socket was closed. */
  get closed(): boolean {
    return this.#fd.closed;
  }

  /**
   * Closes the descriptor; pending async calls reject with `BadResource` within a wait slice
   * (100 ms). Closing again does nothing.
   */
  close(): void {
    if (this.#fd.closed) return;
    closeWhenUnreachable.unregister(this);
    this.#fd.close();
  }

  /** Same as `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * The shortest adaptive look, in ms: a peer's turnaround varies more than its last wait
 * says (a receive, a timer, a collection), and a look shorter than the turnaround would put
 * this side to sleep, whose wake-up costs two thread hops, on every other message.
 */
const MIN_LOOK_MS = 0.1;

/**
 * How long the last async wait of each socket lasted, in ms, when it had to wait: for the
 * adaptive budget, as channels keep it (src/channel/wait.ts).
 */
const lastWaits = new WeakMap<SocketHandle, number>();

/**
 * Repeats `attempt` until it gives a result, waiting for `events` on the socket without
 * blocking the event loop, and ending at the timeout, an abort or a close.
 *
 * As a channel does, a socket whose last wait was short (a peer in a round trip) first spins on
 * `poll` with no timeout for at most 20 µs, yielding the CPU between looks ({@linkcode spinWhile}:
 * a hot peer answers within that, and the answer then costs no turn of the event loop); then it
 * looks again after each turn of the event loop, for 3× that wait (at least
 * {@linkcode MIN_LOOK_MS}, at most 1 ms), yielding the CPU between looks: an answer about to
 * come is seen without the two thread hops of a wake-up.
 * Then it sleeps in `poll` on a worker thread, a slice (100 ms) at a time.
 */
export async function waitReady<T>(
  socket: SocketHandle,
  events: number,
  options: WaitOptions,
  what: string,
  attempt: () => T | typeof RETRY,
): Promise<T> {
  const fd = socket.fd;
  const started = performance.now();
  const last = lastWaits.get(socket) ?? Infinity;
  const budget = last < ADAPTIVE_MAX_MS ? Math.max(MIN_LOOK_MS, adaptiveBudget(last, Infinity)) : 0;
  let turns: Turns | undefined;
  let waited = false;
  let spun = budget === 0; // an idle peer's answer is far off: no spin
  try {
    return await waitUntil<T>(ownOptions(options, `${what} options`), {
      what,
      attempt,
      sleep: (ms) => {
        waited = true;
        if (!spun) {
          spun = true;
          spinWhile(() => pollNow(fd, events) === 0);
          return RESOLVED; // the loop attempts again: at once when the spin saw the answer
        }
        if (performance.now() - started < budget) {
          libc().sched_yield();
          return (turns ??= new Turns()).next();
        }
        turns?.[Symbol.dispose]();
        turns = undefined;
        return pollAsync(fd, events, ms);
      },
      assertOpen: () => void socket.fd,
    });
  } finally {
    turns?.[Symbol.dispose]();
    if (waited) lastWaits.set(socket, performance.now() - started);
  }
}

/** The same, blocking this thread: for workers and scripts. `timeout` (ms) is the only option. */
export function waitReadySync<T>(
  socket: SocketHandle,
  events: number,
  options: { timeout?: number },
  what: string,
  attempt: () => T | typeof RETRY,
): T {
  const timeout = validateTimeout(ownOptions(options, `${what} options`).timeout, what);
  const deadline = deadlineAfter(timeout);
  const fd = socket.fd;
  while (true) {
    const result = attempt();
    if (result !== RETRY) return result;
    const left = sliceUntil(deadline);
    if (left <= 0) throw new Deno.errors.TimedOut(`Cannot ${what}: timed out after ${timeout} ms`);
    pollSync(fd, events, left);
  }
}
