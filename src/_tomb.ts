/**
 * Entombing: replacing a range of this process's memory, in one `mmap(MAP_FIXED)` call, with
 * private zero pages that stay valid for the life of the process. What was mapped there is
 * released (a file's pages, a System V attachment, which this detaches as `shmdt` would), and
 * an `ArrayBuffer` still over the range, one that was transferred away from its handle, reads
 * zeros and takes writes instead of touching a hole. The replacement is atomic for other
 * threads: a worker holding the buffer sees the old pages or the new ones, never a gap.
 * See src/mmap.ts for the measured cost. Internal.
 *
 * @module
 */

import { address } from "../ffi/cstring.ts";
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_NORESERVE,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
} from "../ffi/constants.ts";
import { libc } from "../ffi/libc.ts";

/**
 * Entombs `length` bytes at `base`. Returns `false` when even that fails (out of memory): then
 * the old mapping stays in place, a leak, never a hole.
 */
export function entombRange(base: Deno.PointerObject, length: number): boolean {
  const result = libc().mmap(
    base,
    BigInt(length),
    PROT_READ | PROT_WRITE,
    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
    -1,
    0n,
  );
  return result !== null && address(result) === address(base);
}
