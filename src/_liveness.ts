/**
 * Whether a process is gone, for locks and channels that record their users' pids. Internal.
 *
 * @module
 */

import { ESRCH } from "../ffi/constants.ts";
import { errno, libc } from "../ffi/libc.ts";
import { readProcText } from "./_proc.ts";

/**
 * Whether `pid` is gone: no such process (ESRCH; EPERM means alive, another user's), or, when
 * `thorough`, a zombie its parent has not reaped yet (read from /proc, so kept for slow paths).
 */
export function processIsDead(pid: number, thorough: boolean): boolean {
  if (libc().kill(pid, 0) !== 0 && errno() === ESRCH) return true;
  if (!thorough) return false;
  const stat = readProcText(`/proc/${pid}/stat`);
  if (stat === undefined) return true;
  const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  return state === "Z" || state === "X";
}
