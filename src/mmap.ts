/**
 * Memory-mapped files and descriptors: a file's bytes as an `ArrayBuffer`, read and written
 * in place without copying them into the JavaScript heap.
 *
 * A shared mapping (`write: true`) writes straight to the file and is seen by every process
 * that maps it; a private one is copy-on-write, so its writes never reach the file. A mapping
 * opened without `write` is private too: JavaScript has no read-only `ArrayBuffer`, and a write
 * to a read-only page would kill the process, so a stray write stays in this process instead.
 *
 * @example Searching a file without reading it into the heap
 * ```ts
 * import { mapFile } from "@posix/ipc/mmap";
 *
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "alpha beta gamma");
 * using mapping = mapFile(path);
 * console.log(mapping.bytes.indexOf("g".charCodeAt(0))); // 11
 * await Deno.remove(path);
 * ```
 *
 * @module
 */

import { address, cstring, MAP_FAILED } from "../ffi/cstring.ts";
import {
  MADV_DONTNEED,
  MADV_NORMAL,
  MADV_RANDOM,
  MADV_SEQUENTIAL,
  MADV_WILLNEED,
  MAP_NORESERVE,
  MAP_PRIVATE,
  MAP_SHARED,
  MS_ASYNC,
  MS_SYNC,
  O_CLOEXEC,
  O_RDONLY,
  O_RDWR,
  PROT_READ,
  PROT_WRITE,
  SEEK_END,
} from "../ffi/constants.ts";
import { errno, libc } from "../ffi/libc.ts";
import { check, closedError, systemError } from "./errors.ts";
import { closeFd, type FdLike, peekFd } from "./fd.ts";
import { requirePermission } from "./_permissions.ts";
import { unmapWhenUnpinned } from "./_pins.ts";

/** How to map a file or descriptor. */
export interface MapOptions {
  /**
   * Map for writing. With `private: false` (the default) writes go to the file and to every
   * other process that maps it. Default `false`: the mapping is copy-on-write and the file is
   * never changed through it.
   */
  write?: boolean;
  /** Copy-on-write (MAP_PRIVATE): writes stay in this process. Default `false`. */
  private?: boolean;
  /** Where in the file the mapping starts, in bytes; any offset, not only whole pages. Default 0. */
  offset?: number;
  /** How many bytes to map. Default: from `offset` to the end of the file. */
  length?: number;
}

/** Options of {@linkcode Mapping.fromFd}: {@linkcode MapOptions} and a label for messages. */
export interface MapFdOptions extends MapOptions {
  /** How error messages name what is mapped, such as a path. Default `"file descriptor N"`. */
  label?: string;
}

/** A hint to the kernel about how a mapping will be used (madvise). */
export type Advice = "normal" | "random" | "sequential" | "willneed" | "dontneed";

const ADVICE: Readonly<Record<Advice, number>> = {
  normal: MADV_NORMAL,
  random: MADV_RANDOM,
  sequential: MADV_SEQUENTIAL,
  willneed: MADV_WILLNEED,
  dontneed: MADV_DONTNEED,
};

interface Region {
  base: Deno.PointerObject;
  length: number;
}

/** Unmaps the pages behind an `ArrayBuffer` nobody can reach any more: a safety net only. */
const unmapWhenUnreachable = new FinalizationRegistry<Region>((region) => {
  libc().munmap(region.base, BigInt(region.length));
});

let cachedPageSize = 0;

/** The size of a memory page in bytes (4096 on most machines, 16 or 64 KiB on some aarch64). */
export function pageSize(): number {
  return cachedPageSize ||= libc().getpagesize();
}

/**
 * Memory mapped from a file or descriptor, exposed as an `ArrayBuffer`.
 *
 * `close()` unmaps it and detaches every buffer and view handed out, so a stale view reads as
 * empty instead of touching unmapped memory. If a mapping is dropped without `close()`, its
 * pages are unmapped once its buffer can no longer be reached.
 *
 * One danger remains that no library can remove: if the file shrinks below the mapped range
 * while it is mapped, touching the missing pages kills the process with SIGBUS.
 *
 * @example Writing through a shared mapping
 * ```ts
 * import { mapFile } from "@posix/ipc/mmap";
 *
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "hello");
 * using mapping = mapFile(path, { write: true });
 * mapping.bytes[0] = "j".charCodeAt(0);
 * mapping.sync();
 * console.log(await Deno.readTextFile(path)); // "jello"
 * await Deno.remove(path);
 * ```
 */
export class Mapping implements Disposable {
  #region: Region | null;
  #buffer: ArrayBuffer;
  #bytes: Uint8Array<ArrayBuffer>;
  #pointer: Deno.PointerObject;
  readonly #shared: boolean;
  readonly #label: string;

  private constructor(
    region: Region,
    skip: number,
    length: number,
    shared: boolean,
    label: string,
  ) {
    this.#region = region;
    this.#pointer = Deno.UnsafePointer.offset(region.base, skip) as Deno.PointerObject;
    this.#buffer = Deno.UnsafePointerView.getArrayBuffer(this.#pointer, length);
    this.#bytes = new Uint8Array(this.#buffer);
    this.#shared = shared;
    this.#label = label;
    unmapWhenUnreachable.register(this.#buffer, region, this);
  }

  /**
   * Maps `length` bytes of the open descriptor `fd`, starting at `offset`. The descriptor is
   * not taken over: it may be closed right after, and the mapping stays.
   *
   * @param fd An open descriptor of a regular file or shared memory, opened for reading (and
   * for writing when `write` is set without `private`).
   * @param options What to map and how.
   * @returns The mapping.
   * @throws {Deno.errors.InvalidData} when the file is empty.
   * @throws {RangeError} when the range reaches past the end of the file.
   * @throws {Deno.errors.PermissionDenied} when the descriptor's mode does not allow it.
   * @example
   * ```ts
   * import { Mapping } from "@posix/ipc/mmap";
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * using memory = SharedMemory.anonymous({ size: 8192 });
   * using second = Mapping.fromFd(memory.fd, { write: true, offset: 4096 });
   * second.bytes[0] = 7;
   * console.log(memory.bytes[4096]); // 7
   * ```
   */
  static fromFd(fd: FdLike, options: MapFdOptions = {}): Mapping {
    const descriptor = peekFd(fd, "fd");
    const label = options.label ?? `file descriptor ${descriptor}`;
    const offset = options.offset ?? 0;
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new RangeError(
        `Cannot map "${label}": offset ${offset} must be a non-negative integer`,
      );
    }
    if (
      options.length !== undefined && (!Number.isSafeInteger(options.length) || options.length <= 0)
    ) {
      throw new RangeError(
        `Cannot map "${label}": length ${options.length} must be a positive integer`,
      );
    }
    const c = libc();
    const size = check(c.lseek(descriptor, 0n, SEEK_END), "lseek", {
      action: "map",
      objectName: label,
    });
    const length = options.length ?? size - offset;
    if (size === 0) {
      throw new Deno.errors.InvalidData(
        `Cannot map "${label}": it is empty, and a mapping needs at least one byte`,
      );
    }
    if (offset >= size || length <= 0) {
      throw new RangeError(
        `Cannot map "${label}": offset ${offset} is at or past its end (size ${size})`,
      );
    }
    if (offset + length > size) {
      throw new RangeError(
        `Cannot map "${label}": ${length} bytes from offset ${offset} reach past its end ` +
          `(size ${size}); touching them would kill the process with SIGBUS`,
      );
    }
    const shared = options.write === true && options.private !== true;
    const copyOnWriteFlags = options.write ? MAP_PRIVATE : MAP_PRIVATE | MAP_NORESERVE;
    const skip = offset % pageSize();
    const base = c.mmap(
      null,
      BigInt(length + skip),
      PROT_READ | PROT_WRITE,
      shared ? MAP_SHARED : copyOnWriteFlags,
      descriptor,
      BigInt(offset - skip),
    );
    if (base === null || address(base) === MAP_FAILED) {
      throw systemError(errno(), "mmap", { action: "map", objectName: label });
    }
    return new Mapping({ base, length: length + skip }, skip, length, shared, label);
  }

  /**
   * The mapped bytes as an `ArrayBuffer` (external memory, not copied). Detached, and so empty,
   * once the mapping is closed.
   *
   * @throws {Deno.errors.BadResource} when closed.
   */
  get buffer(): ArrayBuffer {
    this.#open();
    return this.#buffer;
  }

  /**
   * A `Uint8Array` over {@linkcode Mapping.buffer}.
   *
   * @throws {Deno.errors.BadResource} when closed.
   */
  get bytes(): Uint8Array<ArrayBuffer> {
    this.#open();
    return this.#bytes;
  }

  /** The number of bytes mapped. */
  get length(): number {
    return this.#bytes.length;
  }

  /** Whether writes reach the file and other processes (a shared, writable mapping). */
  get shared(): boolean {
    return this.#shared;
  }

  /** Whether the mapping was closed. */
  get closed(): boolean {
    return this.#region === null;
  }

  /**
   * The address of the first mapped byte. **UNSAFE**: valid only while the mapping is open;
   * using it after `close()` reads or writes unmapped memory and can crash the process.
   *
   * @throws {Deno.errors.BadResource} when closed.
   */
  get unsafePointer(): Deno.PointerObject {
    this.#open();
    return this.#pointer;
  }

  /**
   * Flushes written pages to the file (msync). Needed only for durability: other processes
   * that map the file see writes at once.
   *
   * @param options `async: true` schedules the write-back and returns without waiting.
   * @throws {Deno.errors.BadResource} when closed.
   */
  sync(options: { async?: boolean } = {}): void {
    const region = this.#open();
    check(
      libc().msync(region.base, BigInt(region.length), options.async ? MS_ASYNC : MS_SYNC),
      "msync",
      { action: "sync the mapping of", objectName: this.#label },
    );
  }

  /**
   * Tells the kernel how the mapping will be used (madvise), for example `"sequential"` before
   * a scan or `"willneed"` to read ahead.
   *
   * @param advice The expected access pattern.
   * @throws {TypeError} for an unknown advice.
   * @throws {Deno.errors.BadResource} when closed.
   */
  advise(advice: Advice): void {
    const value = ADVICE[advice];
    if (value === undefined) {
      throw new TypeError(
        `Cannot advise "${advice}": use one of ${Object.keys(ADVICE).join(", ")}`,
      );
    }
    const region = this.#open();
    check(libc().madvise(region.base, BigInt(region.length), value), "madvise", {
      action: "advise the mapping of",
      objectName: this.#label,
    });
  }

  /**
   * Unmaps the memory and detaches every buffer and view handed out. Closing again does
   * nothing. If a semaphore or lock placed in this memory is still open, the pages stay mapped
   * (but unreachable from JavaScript) until it is closed too.
   */
  close(): void {
    const region = this.#region;
    if (!region) return;
    this.#region = null;
    unmapWhenUnreachable.unregister(this);
    this.#buffer.transfer(0); // detaches the external buffer and every view over it
    unmapWhenUnpinned(this, () => {
      check(libc().munmap(region.base, BigInt(region.length)), "munmap", {
        action: "unmap",
        objectName: this.#label,
      });
    });
  }

  /** Same as {@linkcode Mapping.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #open(): Region {
    if (!this.#region) throw closedError(`the mapping of "${this.#label}"`);
    return this.#region;
  }
}

/**
 * Maps a file into memory. Like `Deno.open`, it needs `--allow-read` for the path, and
 * `--allow-write` too for a shared writable mapping; the library checks this itself, since
 * calls through FFI bypass Deno's permissions.
 *
 * @param path The file to map.
 * @param options What to map and how; by default the whole file, copy-on-write.
 * @returns The mapping; close it, or use `using`.
 * @throws {Deno.errors.NotCapable} without the permissions above.
 * @throws {Deno.errors.NotFound} when the file does not exist.
 * @throws {Deno.errors.InvalidData} when the file is empty.
 * @throws {RangeError} when the range reaches past the end of the file.
 * @example
 * ```ts
 * import { mapFile } from "@posix/ipc/mmap";
 *
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "0123456789");
 * using mapping = mapFile(path, { offset: 4, length: 3 });
 * console.log(new TextDecoder().decode(mapping.bytes)); // "456"
 * await Deno.remove(path);
 * ```
 */
export function mapFile(path: string | URL, options: MapOptions = {}): Mapping {
  const file = path instanceof URL ? fileUrlToPath(path) : path;
  if (typeof file !== "string" || file.length === 0 || file.includes("\0")) {
    throw new TypeError(`Cannot map "${file}": the path must be a non-empty string without NUL`);
  }
  const shared = options.write === true && options.private !== true;
  requirePermission("read", file);
  if (shared) requirePermission("write", file);
  const fd = check(
    libc().open(cstring(file), (shared ? O_RDWR : O_RDONLY) | O_CLOEXEC, 0),
    "open",
    { action: "open", objectName: file },
  );
  try {
    return Mapping.fromFd(fd, { ...options, label: file });
  } finally {
    closeFd(fd);
  }
}

function fileUrlToPath(url: URL): string {
  if (url.protocol !== "file:") {
    throw new TypeError(`Cannot map "${url.href}": only file: URLs can be mapped`);
  }
  return decodeURIComponent(url.pathname);
}
