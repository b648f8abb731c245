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

/** The number in a /proc file such as /proc/sys/kernel/msgmax, or `undefined`. */
export function readProcNumber(path: string): number | undefined {
  const c = libc();
  const fd = c.open(cstring(path), O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return undefined;
  const buffer = new Uint8Array(64);
  const n = Number(c.read(fd, buffer, 64n));
  closeFd(fd);
  const value = n > 0 ? Number(new TextDecoder().decode(buffer.subarray(0, n)).trim()) : NaN;
  return Number.isFinite(value) ? value : undefined;
}
