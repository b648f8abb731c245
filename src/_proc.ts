/**
 * Reading kernel limits from /proc through libc: Deno 2 lets only --allow-all read /proc,
 * and these reads serve error messages and buffer sizes, not the user. Internal.
 *
 * @module
 */

import { cstring } from "../ffi/cstring.ts";
import { O_CLOEXEC, O_RDONLY } from "../ffi/constants.ts";
import { libc } from "../ffi/libc.ts";
import { closeFd } from "./fd.ts";

/** The start of a /proc file (up to `max` bytes), or `undefined` when it cannot be read. */
export function readProcText(path: string, max = 1024): string | undefined {
  const c = libc();
  const fd = c.open(cstring(path), O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return undefined;
  const buffer = new Uint8Array(max);
  const n = Number(c.read(fd, buffer, BigInt(max)));
  closeFd(fd);
  return n >= 0 ? new TextDecoder().decode(buffer.subarray(0, n)) : undefined;
}

/** The number in a /proc file such as /proc/sys/kernel/msgmax, or `undefined`. */
export function readProcNumber(path: string): number | undefined {
  const value = Number(readProcText(path, 64)?.trim() || NaN);
  return Number.isFinite(value) ? value : undefined;
}
