/**
 * Pins keep a mapping's pages mapped while something that lives inside them (a semaphore, a
 * lock) still has a handle, even after the mapping itself was closed: its buffers are detached
 * at once, as always, but the unmap waits for the last pin. Without this, a call on a
 * semaphore whose memory was closed would touch unmapped memory and crash the process.
 *
 * This module also knows, for every file mapped shared in this process, which byte ranges are
 * still in use: the views of each open mapping, and each object placed in one. Touching a
 * mapped page past the end of its file kills the process with SIGBUS, so nothing in this
 * process may shrink the file below a range in use (see {@linkcode inUseBeyond}). Internal.
 *
 * @module
 */

/** A range of a file that this process still uses through a mapping. */
export interface InUse {
  /** What uses it, such as "semaphore" or "mapping of 8192 bytes". */
  readonly what: string;
  /** Its first byte, as an offset of the file (and so of a segment mapped from its start). */
  readonly offset: number;
  /** The offset just past its last byte. */
  readonly end: number;
}

const pins = new WeakMap<object, number>();
const pendingUnmaps = new WeakMap<object, () => void>();

/** A range in use, linked into the list of every range in use in this process. */
interface Occupied {
  readonly identity: string;
  readonly range: InUse;
  previous: Occupied | null;
  next: Occupied | null;
  held: boolean;
}

/**
 * Every range in use in this process, newest first. A list, not a map by file: a range is added
 * and removed with every mapping made and closed (a received descriptor's included), where a
 * map keyed by a new string cost most of a microsecond; the list is walked only by a shrink.
 */
let newest: Occupied | null = null;

/**
 * Records that `range` of the file `identity` is in use until the returned function is called
 * (which does something only the first time).
 */
export function occupy(identity: string, range: InUse): () => void {
  const entry: Occupied = { identity, range, previous: null, next: newest, held: true };
  if (newest !== null) newest.previous = entry;
  newest = entry;
  return () => {
    if (!entry.held) return;
    entry.held = false;
    if (entry.previous !== null) entry.previous.next = entry.next;
    else newest = entry.next;
    if (entry.next !== null) entry.next.previous = entry.previous;
  };
}

/**
 * The range of the file `identity` in use in this process that reaches furthest past `size`
 * bytes, or `undefined` when the file can shrink to `size` without harm here. `except` is a
 * range its caller is about to release.
 */
export function inUseBeyond(identity: string, size: number, except?: InUse): InUse | undefined {
  let furthest: InUse | undefined;
  for (let entry = newest; entry !== null; entry = entry.next) {
    const range = entry.range;
    if (
      entry.identity === identity && range !== except && range.end > size &&
      (!furthest || range.end > furthest.end)
    ) {
      furthest = range;
    }
  }
  return furthest;
}

/** A mapped range of a file: which file, from which offset, and the range its views use. */
export interface MappedFile {
  /** The file's identity ("major:minor:inode", from statx). */
  readonly identity: string;
  /** The file offset of the mapping's first byte. */
  readonly start: number;
  /** The range the mapping's views use, in use until `release()`. */
  readonly views: InUse;
  /** Ends the record of the views (once): they are detached, or no longer see the file. */
  readonly release: () => void;
}

/**
 * Records that a mapping maps `length` bytes of the file `identity` from its offset `start`,
 * and that the range is in use until the record's `release()`: when its views are detached, or
 * its pages no longer come from the file. The mapping keeps the record
 * ({@linkcode provideMappedFiles} says how to find it).
 */
export function noteMappedFile(identity: string, start: number, length: number): MappedFile {
  const views = { what: `mapping of ${length} bytes`, offset: start, end: start + length };
  return { identity, start, views, release: occupy(identity, views) };
}

/** The record of a mapping, as src/mmap.ts provides it when it loads. */
let mappedFileOf: (mapping: object) => MappedFile | undefined = () => undefined;

/** Called once by src/mmap.ts: how to find a mapping's {@linkcode MappedFile}. */
export function provideMappedFiles(find: (mapping: object) => MappedFile | undefined): void {
  mappedFileOf = find;
}

/** The range that `mapping`'s views use, as recorded by {@linkcode noteMappedFile}. */
export function viewsOf(mapping: object): InUse | undefined {
  return mappedFileOf(mapping)?.views;
}

/**
 * Pins `owner`'s pages; the returned function unpins them, once. With `placement` (an offset of
 * the mapping and a size), the object's bytes also count as in use until it is unpinned.
 */
export function pin(
  owner: object,
  placement?: { what: string; offset: number; size: number },
): () => void {
  pins.set(owner, (pins.get(owner) ?? 0) + 1);
  const file = placement && mappedFileOf(owner);
  const release = file && placement
    ? occupy(file.identity, {
      what: placement.what,
      offset: file.start + placement.offset,
      end: file.start + placement.offset + placement.size,
    })
    : undefined;
  let pinned = true;
  return () => {
    if (!pinned) return;
    pinned = false;
    release?.();
    const left = pins.get(owner)! - 1;
    pins.set(owner, left);
    if (left === 0) {
      const unmap = pendingUnmaps.get(owner);
      pendingUnmaps.delete(owner);
      unmap?.();
    }
  };
}

/** Runs `unmap` now, or after the last pin on `owner` goes. */
export function unmapWhenUnpinned(owner: object, unmap: () => void): void {
  if ((pins.get(owner) ?? 0) === 0) unmap();
  else pendingUnmaps.set(owner, unmap);
}
