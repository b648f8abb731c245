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

/** Which file each shared mapping maps, the file offset of its first byte, and its views' range. */
const mappedFiles = new WeakMap<object, { identity: string; start: number; views: InUse }>();
const pins = new WeakMap<object, number>();
const pendingUnmaps = new WeakMap<object, () => void>();
/** Every range in use in this process, by the identity of its file. */
const inUseByFile = new Map<string, Set<InUse>>();

/**
 * Records that `range` of the file `identity` is in use until the returned function is called
 * (which does something only the first time).
 */
export function occupy(identity: string, range: InUse): () => void {
  const set = inUseByFile.get(identity) ?? new Set();
  inUseByFile.set(identity, set.add(range));
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    set.delete(range);
    if (set.size === 0 && inUseByFile.get(identity) === set) inUseByFile.delete(identity);
  };
}

/**
 * The range of the file `identity` in use in this process that reaches furthest past `size`
 * bytes, or `undefined` when the file can shrink to `size` without harm here. `except` is a
 * range its caller is about to release.
 */
export function inUseBeyond(identity: string, size: number, except?: InUse): InUse | undefined {
  let furthest: InUse | undefined;
  for (const range of inUseByFile.get(identity) ?? []) {
    if (range !== except && range.end > size && (!furthest || range.end > furthest.end)) {
      furthest = range;
    }
  }
  return furthest;
}

/**
 * Records that the shared mapping `mapping` maps `length` bytes of the file `identity` from its
 * offset `start`, and that the range is in use until the returned function is called: when its
 * views are detached, or its pages no longer come from the file.
 */
export function noteMappedFile(
  mapping: object,
  identity: string,
  start: number,
  length: number,
): () => void {
  const views = { what: `mapping of ${length} bytes`, offset: start, end: start + length };
  mappedFiles.set(mapping, { identity, start, views });
  return occupy(identity, views);
}

/** The range that `mapping`'s views use, as recorded by {@linkcode noteMappedFile}. */
export function viewsOf(mapping: object): InUse | undefined {
  return mappedFiles.get(mapping)?.views;
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
  const file = placement && mappedFiles.get(owner);
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
