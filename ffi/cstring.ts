/**
 * C strings and pointer helpers.
 *
 * Internal: nothing outside `src/` imports this.
 *
 * @module
 */

const encoder = new TextEncoder();

/** Encodes `text` as a NUL-terminated UTF-8 C string. Callers validate against embedded NULs. */
export function cstring(text: string): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(encoder.encode(text).length + 1);
  encoder.encodeInto(text, bytes);
  return bytes;
}

/** The length in bytes of `text` once encoded as UTF-8. */
export function byteLength(text: string): number {
  return encoder.encode(text).length;
}

/** The numeric address of a pointer, 0n for null. */
export function address(pointer: Deno.PointerValue): bigint {
  return Deno.UnsafePointer.value(pointer);
}

/** `(void *) -1`, which mmap and friends return on failure. */
export const MAP_FAILED = 0xffff_ffff_ffff_ffffn;
