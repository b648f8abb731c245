/**
 * Opening a FIFO without ever leaving a thread blocked: the FIFO is held by its inode (an O_PATH
 * descriptor, then the reader's own), reopened only through /proc/self/fd, and the wait ends on
 * timeout, abort, or when the path no longer names the FIFO that is held. Internal: `openFifo`
 * in pipe.ts wraps the descriptor in a pipe end.
 *
 * @module
 */

import { cstring } from "../ffi/cstring.ts";
import {
  EINTR,
  ENOENT,
  ENXIO,
  F_GETFL,
  F_SETFL,
  O_CLOEXEC,
  O_NONBLOCK,
  O_PATH,
  O_RDONLY,
  O_WRONLY,
  POLLIN,
  S_IFIFO,
} from "../ffi/constants.ts";
import { errno, libc } from "../ffi/libc.ts";
import { delay, pollNow, RETRY, type WaitOptions, waitUntil } from "./_wait.ts";
import { check, type Operation, systemError } from "./errors.ts";
import { statDescriptor, statPath, typeName } from "./_stat.ts";
import { closeFd } from "./fd.ts";

/** A FIFO being opened: the descriptor that holds it, and what the path must keep naming. */
class HeldFifo {
  readonly path: string;
  #fd: number;
  readonly #identity: string;

  /** Holds the FIFO at `path` with an O_PATH descriptor, after checking that it is a FIFO. */
  constructor(path: string) {
    this.path = path;
    this.#fd = check(libc().open(cstring(path), O_PATH | O_CLOEXEC, 0), "open", this.#operation());
    try {
      const { type, identity } = statDescriptor(this.#fd, this.#operation());
      if (type !== S_IFIFO) {
        throw new Deno.errors.InvalidData(
          `Cannot open FIFO "${path}": it is ${typeName(type)}, not a FIFO`,
        );
      }
      this.#identity = identity;
    } catch (error) {
      closeFd(this.#fd);
      throw error;
    }
  }

  /** Opens the held FIFO again, through /proc/self/fd: the same inode, whatever the path says. */
  reopen(flags: number): number {
    return libc().open(cstring(`/proc/self/fd/${this.#fd}`), flags | O_CLOEXEC, 0);
  }

  /** Holds the FIFO by `fd` from now on (an open end of it), closing the O_PATH descriptor. */
  holdBy(fd: number): void {
    closeFd(this.#fd);
    this.#fd = fd;
  }

  /** Throws NotFound when `path` no longer names the held FIFO: removed, or replaced. */
  assertStillNamed(): void {
    const { identity } = statPath(this.path, this.#operation("the path changed while waiting"));
    if (identity !== this.#identity) {
      throw systemError(
        ENOENT,
        "statx",
        this.#operation("it was replaced by another file while waiting"),
      );
    }
  }

  /** The typed error of a failed reopen (`/proc` missing shows as ENOENT there). */
  reopenError(code: number): Error {
    if (code === ENOENT) {
      return new Deno.errors.NotSupported(
        `Cannot open FIFO "${this.path}": it is reopened through /proc/self/fd, and /proc is not mounted`,
      );
    }
    return systemError(code, "open", this.#operation());
  }

  /** Closes the O_PATH descriptor (not an end that took over with `holdBy`). */
  release(): void {
    closeFd(this.#fd);
  }

  #operation(hint?: string): Operation {
    return { action: "open FIFO", objectName: this.path, hint };
  }
}

/** Puts `fd` back in blocking mode, as every pipe end starts. */
function setBlocking(fd: number, path: string): void {
  const operation = { action: "open FIFO", objectName: path };
  const flags = check(libc().fcntl(fd, F_GETFL, 0), "fcntl", operation);
  check(libc().fcntl(fd, F_SETFL, flags & ~O_NONBLOCK), "fcntl", operation);
}

/**
 * Opens the FIFO at `path` for reading or writing, waiting for the other side. Resolves to the
 * new descriptor (close-on-exec, blocking mode); rejects on timeout, abort, or when the path
 * stops naming the FIFO, and in every case leaves no thread blocked.
 */
export async function openFifoFd(
  path: string,
  direction: "read" | "write",
  options: WaitOptions,
): Promise<number> {
  const fifo = new HeldFifo(path);
  let fd = -1;
  try {
    fd = direction === "write"
      ? await openForWriting(fifo, options)
      : await openForReading(fifo, options);
    setBlocking(fd, path);
    return fd;
  } catch (error) {
    if (fd >= 0) closeFd(fd);
    throw error;
  }
}

/**
 * A writer's non-blocking open fails with ENXIO until a reader is there: retry until then, on
 * this thread only.
 */
async function openForWriting(fifo: HeldFifo, options: WaitOptions): Promise<number> {
  try {
    return await waitUntil<number>(options, {
      what: `open FIFO "${fifo.path}" for writing`,
      attempt: () => {
        const fd = fifo.reopen(O_WRONLY | O_NONBLOCK);
        if (fd >= 0) return fd;
        const code = errno();
        if (code !== ENXIO && code !== EINTR) throw fifo.reopenError(code);
        fifo.assertStillNamed();
        return RETRY;
      },
      sleep: (ms) => delay(Math.min(ms, 10)),
      assertOpen: () => {},
    });
  } finally {
    fifo.release();
  }
}

/**
 * A reader must not miss a writer, nor wait for its first byte. So it opens at once without
 * blocking and keeps that descriptor open throughout, which lets a writer in at any moment and
 * keeps what it writes; meanwhile a blocking open of the same inode (through /proc/self/fd of
 * the kept descriptor) on a worker thread returns as soon as a writer is there. A writer that
 * came, wrote and left before that blocking open began shows instead as readability (or hang-up)
 * of the kept descriptor, checked every few milliseconds. When the wait ends any other way, the
 * blocking open is released by opening the same inode for writing for a moment, which cannot
 * fail for lack of a reader since the kept descriptor is one, whatever became of the path.
 */
async function openForReading(fifo: HeldFifo, options: WaitOptions): Promise<number> {
  const fd = fifo.reopen(O_RDONLY | O_NONBLOCK);
  if (fd < 0) {
    const code = errno();
    fifo.release();
    throw fifo.reopenError(code);
  }
  fifo.holdBy(fd);
  let blockingDone = false;
  let writerCame = false;
  const blockingOpen = libc().open_async(
    cstring(`/proc/self/fd/${fd}`),
    O_RDONLY | O_CLOEXEC,
    0,
  ).then((extra) => {
    blockingDone = true;
    // A failed blocking open (its errno is lost) leaves the polling of the kept descriptor.
    writerCame = extra >= 0;
    return extra;
  });
  let opened = false;
  try {
    await waitUntil(options, {
      what: `open FIFO "${fifo.path}" for reading`,
      attempt: () => {
        if (writerCame || pollNow(fd, POLLIN) !== 0) return true;
        fifo.assertStillNamed();
        return RETRY;
      },
      sleep: (ms) => raceDelay(blockingOpen, Math.min(ms, 20)),
      assertOpen: () => {},
    });
    opened = true;
  } finally {
    await releaseBlockingOpen(fifo, () => blockingDone, blockingOpen);
    if (!opened) closeFd(fd);
  }
  return fd;
}

/**
 * Wakes the worker thread's blocking open with a writer that comes and goes, until it has
 * returned: it may not have begun its open yet when the first writer came. Each round opens a
 * writer, which cannot fail for want of a reader, so every round releases an open under way.
 */
async function releaseBlockingOpen(
  fifo: HeldFifo,
  done: () => boolean,
  blockingOpen: Promise<number>,
): Promise<void> {
  while (!done()) {
    const writer = fifo.reopen(O_WRONLY | O_NONBLOCK);
    if (writer >= 0) closeFd(writer);
    await raceDelay(blockingOpen, 10);
  }
  const extra = await blockingOpen;
  if (extra >= 0) closeFd(extra);
}

/** Resolves when `promise` settles or `ms` pass, whichever is first, leaving no timer behind. */
async function raceDelay(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
