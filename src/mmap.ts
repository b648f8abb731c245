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
  EISDIR,
  ENODEV,
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
  O_NOCTTY,
  O_NONBLOCK,
  O_RDONLY,
  O_RDWR,
  PROT_READ,
  PROT_WRITE,
  S_IFDIR,
  S_IFREG,
} from "../ffi/constants.ts";
import { errno, libc } from "../ffi/libc.ts";
import { check, closedError, systemError } from "./errors.ts";
import {
  ConstructorToken,
  describe,
  optionalBoolean,
  optionsObject,
  ownOptions,
} from "./_validate.ts";
import { closeFd, type FdLike, peekFd } from "./fd.ts";
import { requirePermission } from "./_permissions.ts";
import { type MappedFile, noteMappedFile, provideMappedFiles, unmapWhenUnpinned } from "./_pins.ts";
import { entombRange } from "./_tomb.ts";
import { type FileFacts, statDescriptor, statPath, typeName } from "./_stat.ts";
import { provideMapper } from "./_map_statted.ts";

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

/** A Map, not an object: a prototype key such as "toString" is no advice. */
const ADVICE: ReadonlyMap<string, number> = new Map<Advice, number>([
  ["normal", MADV_NORMAL],
  ["random", MADV_RANDOM],
  ["sequential", MADV_SEQUENTIAL],
  ["willneed", MADV_WILLNEED],
  ["dontneed", MADV_DONTNEED],
]);

/** `new Mapping()` for the functions of this module outside the class. */
let newMapping: (
  base: Deno.PointerObject,
  file: { identity: string; offset: number; skip: number; length: number },
  shared: boolean,
  label: string,
) => Mapping;

/** The module's key to the constructor: `new Mapping()` from outside is a TypeError. */
const token = new ConstructorToken("Mapping", "mapFile() or Mapping.fromFd()");

/** What can be mapped: a regular file, which is also what shm_open and memfd_create give. */
const MAPPABLE = "only regular files and shared memory can be mapped";

/** Where a mapping lies, and how to stop counting its file range as in use. */
interface Region {
  base: Deno.PointerObject;
  length: number;
  /** Ends the record of the range its views use (see `_pins.ts`); idempotent. */
  release: () => void;
}

/** Entombs the range (see `_tomb.ts`) and, once that worked, ends the record of its views. */
function entomb(region: Region): void {
  if (entombRange(region.base, region.length)) region.release();
}

/**
 * The safety net for a mapping dropped without `close()`. It is registered on the `ArrayBuffer`
 * the mapping made, so it runs once that buffer and every view over it are unreachable, and no
 * earlier: a view kept after the handle was dropped keeps working. When it runs it cannot know
 * whether the buffer was transferred first (`transfer()`, `structuredClone`, `postMessage` move
 * the memory into another `ArrayBuffer`, which may still be in use anywhere), so it never
 * unmaps: it always entombs.
 *
 * Measured on Linux 6.18 (vm.max_map_count 65,530), 10,000 handles of 1 MiB, two pages of
 * each written, then released one way or another:
 * - unmapping (the old net, which crashed a transferred buffer): +3 VMAs, shared RSS back to 0;
 * - entombing always: shared RSS back to 0 too (the file's pages are released; zero pages cost
 *   nothing until written) and the address range stays reserved, uncommitted (NORESERVE).
 *   VMAs: +5 when the tombstones lie side by side, as the kernel merges them (the usual case:
 *   10,000 `SharedMemory.anonymous` handles dropped in a loop left +22 VMAs against +16 with
 *   unmapping); +1 per dropped handle at worst, when each lies between live mappings (+19,857
 *   against +10,004). A program would have to drop some 55,000 handles without closing them,
 *   each between live mappings, before mmap failed with ENOMEM;
 * - leaving the shared mapping in place: +10,002 VMAs, +87 MiB RSS, and memory in /dev/shm
 *   that is never freed.
 * `close()` knows whether the buffer escaped, so it entombs only then and unmaps otherwise:
 * closing costs nothing that lasts (10,000 closes: +20 to +23 VMAs, with a transfer or
 * without, against +15 before).
 */
const entombWhenUnreachable = new FinalizationRegistry<Region>(entomb);

let cachedPageSize = 0;

/** The size of a memory page in bytes (4096 on most machines, 16 or 64 KiB on some aarch64). */
export function pageSize(): number {
  return cachedPageSize ||= libc().getpagesize();
}

/**
 * Memory mapped from a file or descriptor, exposed as an `ArrayBuffer`.
 *
 * What is guaranteed: no buffer or view this mapping handed out ever touches unmapped memory.
 * `close()` detaches the buffer and every view over it, so a stale view reads as empty, and
 * unmaps the pages. A buffer that was transferred away first (`buffer.transfer()`,
 * `structuredClone(b, { transfer: [b] })`, `worker.postMessage(b, [b])`) cannot be detached
 * from here; `close()` then replaces the pages under it with private zero pages, so it reads
 * zeros, no longer sees the file, and never crashes. A mapping dropped without `close()` is
 * released the same way, with zero pages, once its buffer and every view over it are
 * unreachable.
 *
 * One danger remains: touching a page past the end of the file kills the process with
 * SIGBUS, so the file must not shrink below the mapped range while it is mapped. Within this
 * process `SharedMemory.resize` refuses to, but another process, or a plain `Deno.truncate`,
 * can.
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
  readonly #file: MappedFile;

  private constructor(
    key: ConstructorToken,
    base: Deno.PointerObject,
    file: { identity: string; offset: number; skip: number; length: number },
    shared: boolean,
    label: string,
  ) {
    token.check(key);
    this.#file = noteMappedFile(file.identity, file.offset, file.length);
    const region = { base, length: file.length + file.skip, release: this.#file.release };
    this.#region = region;
    this.#pointer = file.skip === 0
      ? base
      : Deno.UnsafePointer.offset(base, file.skip) as Deno.PointerObject;
    this.#buffer = Deno.UnsafePointerView.getArrayBuffer(this.#pointer, file.length);
    this.#bytes = new Uint8Array(this.#buffer);
    this.#shared = shared;
    this.#label = label;
    entombWhenUnreachable.register(this.#buffer, region, this);
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
   * @throws {RangeError} when the range reaches past the end of the file (its size as fstat
   * tells it now).
   * @throws {Deno.errors.IsADirectory} for a directory; an {@linkcode IpcError} with code
   * `ENODEV` for any other file that is not regular (a FIFO, a socket, a device).
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
    // Each option read once (a getter may answer differently the second time), own keys only.
    const own = ownOptions(options, "Mapping.fromFd() options");
    const descriptor = peekFd(fd, "fd");
    const given = own.label;
    if (given !== undefined && typeof given !== "string") {
      throw new TypeError(`Cannot map with label ${describe(given)}: it must be a string`);
    }
    const label = given ?? `file descriptor ${descriptor}`;
    const offset = rangeOption(own.offset ?? 0, "offset", 0, label);
    const wanted = own.length === undefined
      ? undefined
      : rangeOption(own.length, "length", 1, label);
    const write = optionalBoolean(own.write, "write") ?? false;
    const copyOnWrite = optionalBoolean(own.private, "private") ?? false;
    // fstat, not lseek: it tells the type too, and leaves the descriptor's offset alone.
    const facts = statDescriptor(descriptor, { action: "map", objectName: label });
    const mapped = mapStatted(descriptor, facts, { write, copyOnWrite, offset, wanted, label });
    if (typeof mapped === "number") {
      throw systemError(mapped, "mmap", { action: "map", objectName: label });
    }
    return mapped;
  }

  static {
    newMapping = (base, file, shared, label) => new Mapping(token, base, file, shared, label);
    provideMappedFiles((mapping) => #file in mapping ? mapping.#file : undefined);
    provideMapper((descriptor, facts, write, label) =>
      mapStatted(descriptor, facts, { write, copyOnWrite: false, offset: 0, label })
    );
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
    options = optionsObject(options, "Mapping.sync() options");
    const async = optionalBoolean(options.async, "async") ?? false;
    const region = this.#open();
    check(
      libc().msync(region.base, BigInt(region.length), async ? MS_ASYNC : MS_SYNC),
      "msync",
      { action: "sync the mapping of", objectName: this.#label },
    );
  }

  /**
   * Tells the kernel how the mapping will be used (madvise), for example `"sequential"` before
   * a scan or `"willneed"` to read ahead.
   *
   * @param advice The expected access pattern.
   * @throws {TypeError} for an unknown advice, before any system call.
   * @throws {Deno.errors.BadResource} when closed.
   * @example
   * ```ts
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * using memory = SharedMemory.anonymous({ size: 1 << 16 });
   * memory.mapping.advise("sequential"); // about to scan it from start to end
   * ```
   */
  advise(advice: Advice): void {
    const value = typeof advice === "string" ? ADVICE.get(advice) : undefined;
    if (value === undefined) {
      throw new TypeError(
        `Cannot advise ${describe(advice)}: use one of ${[...ADVICE.keys()].join(", ")}`,
      );
    }
    const region = this.#open();
    check(libc().madvise(region.base, BigInt(region.length), value), "madvise", {
      action: "advise the mapping of",
      objectName: this.#label,
    });
  }

  /**
   * Detaches the buffer and every view handed out, and unmaps the memory. Closing again does
   * nothing, and closing never throws because of what was done to the buffer: if it was
   * transferred away, the pages under the transferred buffer are replaced with private zero
   * pages instead of being unmapped, so it reads zeros and cannot crash. If a semaphore or lock
   * placed in this memory is still open, the pages stay mapped (but unreachable from
   * JavaScript) until it is closed too.
   *
   * @example
   * ```ts
   * import { SharedMemory } from "@posix/ipc/shm";
   *
   * const memory = SharedMemory.anonymous({ size: 4096 });
   * const moved = memory.buffer.transfer(); // the memory now belongs to `moved`
   * memory.close(); // releases everything all the same
   * console.log(new Uint8Array(moved)[0]); // 0: zero pages, not a crash
   * ```
   */
  close(): void {
    const region = this.#region;
    if (!region) return;
    this.#region = null;
    entombWhenUnreachable.unregister(this);
    // A detached buffer was transferred away (only close() detaches it otherwise): the memory
    // may be in use in another ArrayBuffer, here or in a worker, that cannot be detached.
    const escaped = this.#buffer.detached;
    if (!escaped) {
      this.#buffer.transfer(0); // detaches the external buffer and every view over it
      region.release(); // no view can touch the file now; placed objects keep their own record
    }
    unmapWhenUnpinned(this, () => {
      if (escaped) return entomb(region);
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

/** What {@linkcode mapStatted} maps: `wanted` bytes (all from `offset` when undefined). */
interface MapRequest {
  write: boolean;
  copyOnWrite: boolean;
  offset: number;
  wanted?: number;
  label: string;
}

/**
 * Maps the file behind `descriptor`, whose statx `facts` the caller just took: the type and the
 * range are checked against them (typed errors), then mmap. Returns the errno when mmap fails,
 * so that a caller may try again otherwise (SharedMemory.fromFd maps read-only when a writable
 * mapping is refused).
 */
function mapStatted(
  descriptor: number,
  facts: FileFacts,
  { write, copyOnWrite, offset, wanted, label }: MapRequest,
): Mapping | number {
  refuseUnmappable(facts.type, label);
  const size = facts.size;
  const length = wanted ?? size - offset;
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
  const shared = write && !copyOnWrite;
  const copyOnWriteFlags = write ? MAP_PRIVATE : MAP_PRIVATE | MAP_NORESERVE;
  const skip = offset % pageSize();
  const base = libc().mmap(
    null,
    BigInt(length + skip),
    PROT_READ | PROT_WRITE,
    shared ? MAP_SHARED : copyOnWriteFlags,
    descriptor,
    BigInt(offset - skip),
  );
  if (base === null || address(base) === MAP_FAILED) return errno();
  return newMapping(base, { identity: facts.identity, offset, skip, length }, shared, label);
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
 * @throws {Deno.errors.IsADirectory} for a directory; an {@linkcode IpcError} with code
 * `ENODEV` for any other file that is not regular. Such a file is refused before it is opened,
 * so a FIFO never blocks and a device never sees an open.
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
    throw new TypeError(
      `Cannot map ${describe(file)}: the path must be a non-empty string without NUL`,
    );
  }
  // Read once (fromFd below gets the values, not the getters), own keys only.
  const own = ownOptions(options, "mapFile() options");
  const write = optionalBoolean(own.write, "write") ?? false;
  const shared = write && optionalBoolean(own.private, "private") !== true;
  requirePermission("read", file);
  if (shared) requirePermission("write", file);
  let type: number | undefined;
  try {
    type = statPath(file, { action: "map", objectName: file }).type;
  } catch {
    // open, below, says why the file cannot be reached
  }
  if (type !== undefined) refuseUnmappable(type, file);
  // O_NONBLOCK and O_NOCTTY in case the file was replaced since: a FIFO must not block the open,
  // a terminal must not become ours. fromFd checks the type again on the descriptor.
  const flags = (shared ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
  const fd = check(libc().open(cstring(file), flags, 0), "open", {
    action: "open",
    objectName: file,
  });
  try {
    return Mapping.fromFd(fd, { ...own, label: file });
  } finally {
    closeFd(fd);
  }
}

/**
 * Checks an offset or length option: a TypeError for a non-number, a RangeError for anything but
 * a safe integer from `min`; -0 comes back as 0.
 */
function rangeOption(value: unknown, what: string, min: number, label: string): number {
  const rule = min === 0 ? "a non-negative integer" : "a positive integer";
  if (typeof value !== "number") {
    throw new TypeError(`Cannot map "${label}": ${what} ${describe(value)} must be ${rule}`);
  }
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`Cannot map "${label}": ${what} ${describe(value)} must be ${rule}`);
  }
  return value + 0;
}

/** Throws the typed error for a file type that cannot be mapped: all but regular files. */
function refuseUnmappable(type: number, label: string): void {
  if (type === S_IFREG) return;
  const operation = { action: "map", objectName: label };
  if (type === S_IFDIR) throw systemError(EISDIR, "mmap", { ...operation, hint: MAPPABLE });
  throw systemError(ENODEV, "mmap", { ...operation, hint: `it is ${typeName(type)}; ${MAPPABLE}` });
}

function fileUrlToPath(url: URL): string {
  if (url.protocol !== "file:") {
    throw new TypeError(`Cannot map "${url.href}": only file: URLs can be mapped`);
  }
  return decodeURIComponent(url.pathname);
}
