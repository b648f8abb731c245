/**
 * Pipes and FIFOs, with async reads and writes that never block the event loop, and Web
 * Streams over them.
 *
 * A pipe's ends are owned objects. Hand one to a child process with `spawn`'s `fds` (or as its
 * stdin/stdout) and close your own copy: a reader sees end-of-file only once every copy of the
 * write end, the children's included, is closed.
 *
 * @example A pipe within one process
 * ```ts
 * import { pipe } from "@posix/ipc/pipe";
 *
 * using p = pipe();
 * await p.writer.write(new TextEncoder().encode("hello"));
 * p.writer.close();
 * console.log(await new Response(p.reader.readable).text()); // "hello"
 * ```
 *
 * @module
 */

import { cstring } from "../ffi/cstring.ts";
import {
  EAGAIN,
  EINTR,
  EPIPE,
  F_GETFL,
  F_SETFL,
  F_SETPIPE_SZ,
  O_CLOEXEC,
  O_NONBLOCK,
  POLLIN,
  POLLOUT,
} from "../ffi/constants.ts";
import { errno, libc } from "../ffi/libc.ts";
import {
  describe,
  INT_MAX,
  optionsObject,
  plainBytes,
  realLength,
  validateInteger,
  validateMode,
} from "./_validate.ts";
import { readProcNumber } from "./_proc.ts";
import {
  pollAsync,
  pollSync,
  readWaitOptions,
  RETRY,
  type WaitOptions,
  waitUntil,
} from "./_wait.ts";
import { check, closedError, systemError } from "./errors.ts";
import { type FdLike, OwnedFd, takeFd } from "./fd.ts";
import { requirePermission } from "./_permissions.ts";
import { openFifoFd } from "./_fifo.ts";
import { selectable, type SelectAdapter } from "./select/protocol.ts";

export type { WaitOptions } from "./_wait.ts";

/**
 * Closes the descriptor of an end dropped without `close()`: a safety net only, since the
 * garbage collector may come late or never. The held value is the descriptor's number, the
 * unregister token the end itself.
 */
const closeWhenUnreachable = new FinalizationRegistry<number>((fd) => {
  libc().close(fd);
});

/**
 * What the two kinds of pipe end share: an owned descriptor, closed once (and on garbage
 * collection, when dropped without being closed).
 *
 * An end starts in blocking mode, which is what a child process expects when it inherits it.
 * The first async `read`/`write` switches it to non-blocking mode for good (the mode belongs to
 * the open file, shared with any process holding a copy), so hand a child only ends you have
 * not used asynchronously yourself.
 */
export abstract class PipeEnd implements Disposable {
  readonly #fd: OwnedFd;
  /** How error messages name this end: `"pipe"`, or a FIFO's path. */
  readonly label: string;

  /**
   * Wraps a descriptor of a pipe or FIFO.
   *
   * @param fd The descriptor; the end takes ownership (an `OwnedFd` is released to it, another
   * object's descriptor is duplicated).
   * @param label How messages name this end, such as a FIFO's path. Default `"pipe"`.
   * @throws {TypeError} when `label` is not a string, before the descriptor is taken.
   */
  constructor(fd: FdLike, label = "pipe") {
    if (typeof label !== "string") {
      throw new TypeError(`Cannot use pipe end label ${describe(label)}: it must be a string`);
    }
    this.#fd = new OwnedFd(takeFd(fd, "fd"));
    this.label = label;
    closeWhenUnreachable.register(this, this.#fd.fd, this);
  }

  /**
   * The descriptor's number. **UNSAFE**: valid only while this end is open.
   *
   * @throws {Deno.errors.BadResource} when closed.
   */
  get fd(): number {
    if (this.#fd.closed) throw closedError(`the ${this.label}`);
    return this.#fd.fd;
  }

  /** Whether this end was closed. */
  get closed(): boolean {
    return this.#fd.closed;
  }

  /** Closes the descriptor; pending async calls reject with `BadResource`. Closing again does nothing. */
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

const nonBlocking = new WeakSet<PipeEnd>();

/** The end's descriptor, switched to non-blocking mode once, before its first async call. */
function nonBlockingFd(end: PipeEnd): number {
  const fd = end.fd;
  if (!nonBlocking.has(end)) {
    const operation = { action: "switch to non-blocking mode", objectName: end.label };
    const flags = check(libc().fcntl(fd, F_GETFL, 0), "fcntl", operation);
    check(libc().fcntl(fd, F_SETFL, flags | O_NONBLOCK), "fcntl", operation);
    nonBlocking.add(end);
  }
  return fd;
}

const encoder = new TextEncoder();

/** What to write as bytes: a string is written as UTF-8, as `MessageQueue` sends it. */
function bytesToWrite(end: PipeEnd, data: Uint8Array | string): Uint8Array {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot write to "${end.label}": what is written must be a Uint8Array or a string, ` +
        `not ${describe(data)}`,
    );
  }
  return plainBytes(bytes); // its real length: a subclass's could make write() read past it
}

/** Checks a buffer to read into. */
function bufferToRead(end: PipeEnd, buffer: Uint8Array): Uint8Array {
  if (!(buffer instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot read from "${end.label}": the buffer must be a Uint8Array, not ${describe(buffer)}`,
    );
  }
  return plainBytes(buffer); // its real length: a subclass's could make read() write past it
}

/**
 * The result of one read or write: the byte count, or {@linkcode RETRY} when it would block or
 * was interrupted. Any other failure throws.
 */
function ioResult(
  end: PipeEnd,
  result: number | bigint,
  syscall: "read" | "write",
): number | typeof RETRY {
  if (result !== -1 && result !== -1n) return Number(result);
  const code = errno();
  if (code === EAGAIN || code === EINTR) return RETRY;
  throw systemError(code, syscall, {
    action: syscall === "read" ? "read from" : "write to",
    objectName: end.label,
    hint: code === EPIPE ? "no process has its read end open" : undefined,
  });
}

/**
 * The read end of a pipe or FIFO.
 *
 * @example Reading what a child process writes to fd 3
 * ```ts ignore
 * import { pipe } from "@posix/ipc/pipe";
 * import { spawn } from "@posix/ipc/spawn";
 *
 * using p = pipe();
 * await using child = spawn("sh", { args: ["-c", "echo hi >&3"], fds: { 3: p.writer } });
 * p.writer.close(); // our copy: end-of-file comes when the child's copy closes too
 * console.log(await new Response(p.reader.readable).text()); // "hi\n"
 * ```
 */
export class ReadEnd extends PipeEnd {
  #readable: ReadableStream<Uint8Array> | undefined;

  /**
   * Reads at most `buffer.length` bytes, waiting without blocking the event loop until some
   * are there.
   *
   * @param buffer Where to put the bytes.
   * @param options `timeout` (ms) and `signal`.
   * @returns How many bytes were read, or `null` at end-of-file (every write end closed).
   * @throws {TypeError} when `buffer`'s buffer was transferred away, also while waiting.
   * @throws {Deno.errors.TimedOut} after `timeout`.
   * @throws {Deno.errors.BadResource} when the end is closed, also while waiting.
   * @example
   * ```ts
   * import { pipe } from "@posix/ipc/pipe";
   *
   * using p = pipe();
   * p.writer.writeSync(new Uint8Array([1, 2, 3]));
   * const buffer = new Uint8Array(16);
   * console.log(await p.reader.read(buffer)); // 3
   * ```
   */
  async read(buffer: Uint8Array, options: WaitOptions = {}): Promise<number | null> {
    const into = bufferToRead(this, buffer);
    const wait = readWaitOptions(options, `read from "${this.label}"`);
    if (into.length === 0) return 0;
    const fd = nonBlockingFd(this);
    return await waitUntil<number | null>(wait, {
      what: `read from "${this.label}"`,
      attempt: () => {
        // The real length at each try: a buffer transferred away during the wait reads as
        // empty, and a read of 0 bytes looked like end-of-file (a TypeError instead).
        const length = realLength(into);
        const n = ioResult(this, libc().read(fd, into, BigInt(length)), "read");
        return n === 0 ? null : n;
      },
      sleep: (ms) => pollAsync(fd, POLLIN, ms),
      assertOpen: () => void this.fd,
    });
  }

  /**
   * Reads at most `buffer.length` bytes, blocking this thread until some are there: for
   * workers and scripts.
   *
   * @param buffer Where to put the bytes.
   * @returns How many bytes were read, or `null` at end-of-file.
   * @example
   * ```ts
   * import { pipe } from "@posix/ipc/pipe";
   *
   * using p = pipe();
   * p.writer.close();
   * console.log(p.reader.readSync(new Uint8Array(8))); // null
   * ```
   */
  readSync(buffer: Uint8Array): number | null {
    const into = bufferToRead(this, buffer);
    if (into.length === 0) return 0;
    const fd = this.fd;
    while (true) {
      const n = ioResult(this, libc().read(fd, into, BigInt(into.length)), "read");
      if (n !== RETRY) return n === 0 ? null : n;
      pollSync(fd, POLLIN);
    }
  }

  /**
   * A byte stream of everything read from this end. It closes the end when it reaches
   * end-of-file or is cancelled.
   *
   * @example
   * ```ts
   * import { pipe } from "@posix/ipc/pipe";
   *
   * using p = pipe();
   * p.writer.writeSync(new TextEncoder().encode("streamed"));
   * p.writer.close();
   * for await (const chunk of p.reader.readable) console.log(chunk.length); // 8
   * ```
   */
  get readable(): ReadableStream<Uint8Array> {
    return this.#readable ??= new ReadableStream({
      type: "bytes",
      autoAllocateChunkSize: 64 * 1024,
      pull: async (controller) => {
        const request = controller.byobRequest!;
        const view = request.view as Uint8Array;
        const n = await this.read(view);
        if (n === null) {
          this.close();
          controller.close();
          request.respond(0);
        } else {
          request.respond(n);
        }
      },
      cancel: () => this.close(),
    });
  }

  /**
   * The adapter through which {@linkcode select} reads from this end: a try reads what is
   * there, up to 64 KiB, as a new Uint8Array (`null` at end of file, for good); a wait polls
   * the descriptor, reading nothing.
   *
   * @returns The adapter; see `@posix/ipc/select`.
   * @example
   * ```ts
   * import { pipe } from "@posix/ipc/pipe";
   * import { select } from "@posix/ipc/select";
   *
   * using p = pipe();
   * p.writer.writeSync("hi");
   * console.log((await select([p.reader])).value?.length); // 2
   * ```
   */
  [selectable](): SelectAdapter<Uint8Array | null> {
    return {
      try: () => {
        const fd = nonBlockingFd(this);
        const n = ioResult(this, libc().read(fd, scratch, BigInt(scratch.length)), "read");
        if (n === RETRY) return undefined;
        return { value: n === 0 ? null : scratch.slice(0, n) };
      },
      pollFd: () => this.fd,
    };
  }
}

/** The most a select on a read end takes at once. */
const SELECT_CHUNK = 64 * 1024;

/**
 * Where select's tries on read ends read into, shared: a try is synchronous and copies what it
 * read out at once, so one buffer serves every read end (64 KiB per source and select call made
 * garbage that showed in select's wake).
 */
const scratch = new Uint8Array(SELECT_CHUNK);

/**
 * The write end of a pipe or FIFO. Writing when no read end is open anywhere throws
 * `Deno.errors.BrokenPipe`; the process does not die of SIGPIPE.
 *
 * @example
 * ```ts
 * import { pipe } from "@posix/ipc/pipe";
 *
 * using p = pipe();
 * p.reader.close();
 * try {
 *   p.writer.writeSync(new Uint8Array([1]));
 * } catch (error) {
 *   console.log(error instanceof Deno.errors.BrokenPipe); // true
 * }
 * ```
 */
export class WriteEnd extends PipeEnd {
  #writable: WritableStream<Uint8Array | string> | undefined;

  /**
   * Writes all of `data`, waiting without blocking the event loop while the pipe is full.
   *
   * @param data What to write: bytes, or a string, written as UTF-8.
   * @param options `timeout` (ms) and `signal`; on either, some bytes may have been written.
   * @returns How many bytes were written: all of them.
   * @throws {TypeError} when `data` is neither a Uint8Array nor a string, or its buffer was
   * transferred away, also while waiting (some bytes may have been written then).
   * @throws {Deno.errors.BrokenPipe} when no read end is open.
   * @throws {Deno.errors.BadResource} when the end is closed, also while waiting.
   * @example
   * ```ts
   * import { pipe } from "@posix/ipc/pipe";
   *
   * using p = pipe();
   * console.log(await p.writer.write(new Uint8Array(1000))); // 1000
   * ```
   */
  async write(data: Uint8Array | string, options: WaitOptions = {}): Promise<number> {
    const bytes = bytesToWrite(this, data);
    const wait = readWaitOptions(options, `write to "${this.label}"`);
    const fd = nonBlockingFd(this);
    let done = 0;
    return await waitUntil<number>(wait, {
      what: `write to "${this.label}"`,
      attempt: () => {
        // The real length at each try: a buffer transferred away during the wait reads as
        // empty, which ended the write early as if all of it went (a TypeError instead).
        while (done < realLength(bytes)) {
          const rest = bytes.subarray(done);
          const n = ioResult(this, libc().write(fd, rest, BigInt(rest.length)), "write");
          if (n === RETRY) return RETRY;
          done += n;
        }
        return done;
      },
      sleep: (ms) => pollAsync(fd, POLLOUT, ms),
      assertOpen: () => void this.fd,
    });
  }

  /**
   * Writes all of `data`, blocking this thread while the pipe is full.
   *
   * @param data What to write: bytes, or a string, written as UTF-8.
   * @returns How many bytes were written: all of them.
   * @throws {TypeError} when `data` is neither a Uint8Array nor a string.
   * @throws {Deno.errors.BrokenPipe} when no read end is open.
   * @example
   * ```ts
   * import { pipe } from "@posix/ipc/pipe";
   *
   * using p = pipe();
   * console.log(p.writer.writeSync("abc")); // 3
   * console.log(p.writer.writeSync("é")); // 2: UTF-8
   * ```
   */
  writeSync(data: Uint8Array | string): number {
    const bytes = bytesToWrite(this, data);
    const fd = this.fd;
    let done = 0;
    while (done < bytes.length) {
      const rest = bytes.subarray(done);
      const n = ioResult(this, libc().write(fd, rest, BigInt(rest.length)), "write");
      if (n === RETRY) pollSync(fd, POLLOUT);
      else done += n;
    }
    return done;
  }

  /**
   * A stream that writes each chunk to this end (bytes, or strings as UTF-8), and closes the end
   * when the stream is closed or aborted.
   *
   * @example
   * ```ts
   * import { pipe } from "@posix/ipc/pipe";
   *
   * using p = pipe();
   * const text = new Response(p.reader.readable).text();
   * await ReadableStream.from(["a", "b"]).pipeThrough(new TextEncoderStream()).pipeTo(p.writer.writable);
   * console.log(await text); // "ab"
   * ```
   */
  get writable(): WritableStream<Uint8Array | string> {
    return this.#writable ??= new WritableStream({
      write: async (chunk) => void await this.write(chunk),
      close: () => this.close(),
      abort: () => this.close(),
    });
  }
}

/** Options of {@linkcode pipe}. */
export interface PipeOptions {
  /**
   * The pipe's buffer in bytes (F_SETPIPE_SZ), rounded up by the kernel to a power of two
   * pages. Default: the kernel's, 64 KiB. A larger buffer moves bulk data between processes
   * with far fewer wake-ups (1 MiB doubles the throughput of a stream through a child), but
   * counts against the user's pipe memory: past `/proc/sys/fs/pipe-user-pages-soft` (64 MiB
   * by default) the kernel gives the same user's new pipes a single page, so keep large
   * buffers for the few pipes that carry bulk data.
   */
  capacity?: number;
}

/** The two ends of a pipe; disposing it closes both (those not closed already). */
export interface Pipe extends Disposable {
  /** The end to read from. */
  readonly reader: ReadEnd;
  /** The end to write to. */
  readonly writer: WriteEnd;
}

/**
 * Checks a pipe capacity: an integer from 1 to 2^31 - 1 bytes, the most `F_SETPIPE_SZ` takes
 * (a C int). The message says what the kernel allows on this machine.
 */
function validateCapacity(capacity: unknown): void {
  if (Number.isInteger(capacity) && (capacity as number) >= 1 && (capacity as number) <= INT_MAX) {
    return;
  }
  const max = readProcNumber("/proc/sys/fs/pipe-max-size");
  validateInteger(
    capacity,
    "pipe capacity",
    1,
    INT_MAX,
    "bytes, rounded up to a power of two pages; past /proc/sys/fs/pipe-max-size " +
      `(${max ?? "unknown"} now) only a process with CAP_SYS_RESOURCE may go`,
  );
}

/**
 * Creates a pipe (`pipe2` with O_CLOEXEC): bytes written to `writer` come out of `reader`.
 *
 * @param options The buffer's `capacity`.
 * @returns Both ends, owned; `using p = pipe()` closes both.
 * @throws {IpcError} with code `EMFILE` when the process has no descriptors left.
 * @throws {RangeError} for a capacity that is not an integer from 1 to 2^31 - 1 bytes, the
 * most the kernel's `F_SETPIPE_SZ` takes (it rounds up to a power of two pages).
 * @throws {Deno.errors.PermissionDenied} for a capacity over `/proc/sys/fs/pipe-max-size`
 * (1 MiB by default) in a process without CAP_SYS_RESOURCE.
 * @example
 * ```ts
 * import { pipe } from "@posix/ipc/pipe";
 *
 * using p = pipe();
 * p.writer.writeSync(new Uint8Array([42]));
 * const byte = new Uint8Array(1);
 * p.reader.readSync(byte);
 * console.log(byte[0]); // 42
 * ```
 */
export function pipe(options: PipeOptions = {}): Pipe {
  const { capacity } = optionsObject(options, "pipe() options");
  if (capacity !== undefined) validateCapacity(capacity);
  const fds = new Int32Array(2);
  check(libc().pipe2(fds, O_CLOEXEC), "pipe2", { action: "create a pipe" });
  const reader = new ReadEnd(fds[0]!);
  const writer = new WriteEnd(fds[1]!);
  if (capacity !== undefined) {
    try {
      check(libc().fcntl(fds[1]!, F_SETPIPE_SZ, capacity), "fcntl", {
        action: `give a pipe a ${capacity}-byte buffer`,
        hint: "see /proc/sys/fs/pipe-max-size and pipe-user-pages-soft",
      });
    } catch (error) {
      reader.close();
      writer.close();
      throw error;
    }
  }
  return {
    reader,
    writer,
    [Symbol.dispose]() {
      reader.close();
      writer.close();
    },
  };
}

/**
 * Creates a FIFO (named pipe) at `path` (mkfifo). Needs `--allow-write` for the path, as
 * creating a file with Deno's API would.
 *
 * @param path Where to create it.
 * @param options `mode`, the permission bits (masked by the umask). Default `0o600`.
 * @throws {Deno.errors.AlreadyExists} when something exists at `path`.
 * @throws {Deno.errors.NotCapable} without write permission for `path`.
 * @example
 * ```ts
 * import { createFifo } from "@posix/ipc/pipe";
 *
 * const path = `${await Deno.makeTempDir()}/fifo`;
 * createFifo(path);
 * console.log(Deno.statSync(path).isFifo); // true
 * await Deno.remove(path.slice(0, -5), { recursive: true });
 * ```
 */
export function createFifo(path: string, options: { mode?: number } = {}): void {
  validatePath(path);
  const mode = validateMode(optionsObject(options, "createFifo() options").mode ?? 0o600);
  requirePermission("write", path);
  check(libc().mkfifo(cstring(path), mode), "mkfifo", { action: "create FIFO", objectName: path });
}

/**
 * Opens a FIFO, waiting (without blocking the event loop) for the other side: a reader waits
 * for a writer to open it and the other way round. Needs `--allow-read` or `--allow-write`
 * for the path.
 *
 * @param path The FIFO.
 * @param direction `"read"` for a {@linkcode ReadEnd}, `"write"` for a {@linkcode WriteEnd}.
 * @param options `timeout` (ms) and `signal` to stop waiting for the other side.
 * @returns The open end.
 * @throws {Deno.errors.NotFound} when nothing is at `path`.
 * @throws {Deno.errors.TimedOut} when no other side came within `timeout`.
 * @example
 * ```ts
 * import { createFifo, openFifo } from "@posix/ipc/pipe";
 *
 * const dir = await Deno.makeTempDir();
 * createFifo(`${dir}/fifo`);
 * const [reader, writer] = await Promise.all([
 *   openFifo(`${dir}/fifo`, "read"),
 *   openFifo(`${dir}/fifo`, "write"),
 * ]);
 * writer.writeSync(new Uint8Array([7]));
 * writer.close();
 * console.log(await new Response(reader.readable).bytes()); // Uint8Array(1) [ 7 ]
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function openFifo<Direction extends "read" | "write">(
  path: string,
  direction: Direction,
  options: WaitOptions = {},
): Promise<Direction extends "read" ? ReadEnd : WriteEnd> {
  validatePath(path);
  if (direction !== "read" && direction !== "write") {
    throw new TypeError(
      `Cannot open FIFO "${path}": direction ${describe(direction)} must be "read" or "write"`,
    );
  }
  const wait = readWaitOptions(options, `open FIFO "${path}"`);
  requirePermission(direction, path);
  const fd = await openFifoFd(path, direction, wait);
  const end = direction === "write" ? new WriteEnd(fd, path) : new ReadEnd(fd, path);
  return end as Direction extends "read" ? ReadEnd : WriteEnd;
}

function validatePath(path: unknown): asserts path is string {
  if (typeof path !== "string" || path.length === 0 || path.includes("\0")) {
    throw new TypeError(
      `Cannot use path ${describe(path)}: it must be a non-empty string without NUL`,
    );
  }
}
