/**
 * Pins keep a mapping's pages mapped while something that lives inside them (a semaphore, a
 * lock) still has a handle, even after the mapping itself was closed: its buffers are detached
 * at once, as always, but the unmap waits for the last pin. Without this, a call on a
 * semaphore whose memory was closed would touch unmapped memory and crash the process.
 * Internal.
 *
 * @module
 */

const pins = new WeakMap<object, number>();
const pendingUnmaps = new WeakMap<object, () => void>();

/** Pins `owner`'s pages; the returned function unpins them, once. */
export function pin(owner: object): () => void {
  pins.set(owner, (pins.get(owner) ?? 0) + 1);
  let pinned = true;
  return () => {
    if (!pinned) return;
    pinned = false;
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
