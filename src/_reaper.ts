/**
 * Reaps the children that `spawn` started, whether or not anyone awaits them, and never
 * anyone else's: each child is reaped with `waitpid(pid, WNOHANG)` by its own pid, never
 * `waitpid(-1)`. Each child also gets a pidfd (Linux 5.3 and later), so that signals reach it
 * and never a process that took over its pid after it was reaped. Internal.
 *
 * @module
 */

import { ESRCH, SYS_pidfd_open, SYS_pidfd_send_signal, WNOHANG } from "../ffi/constants.ts";
import { errno, libc } from "../ffi/libc.ts";
import { systemError } from "./errors.ts";
import { closeFd } from "./fd.ts";

/** A child being watched: its pid, its pidfd (-1 without one) and whom to tell its status. */
interface Watched {
  readonly pid: number;
  readonly pidfd: number;
  readonly settle: (waitStatus: number) => void;
}

const watched = new Set<Watched>();
let keepAlive: ReturnType<typeof setInterval> | undefined;
const SAFETY_NET_MS = 1000;

/** Opens a pidfd for `pid`, or returns -1 where the kernel has none (it is only an accelerator). */
export function openPidfd(pid: number): number {
  const fd = Number(libc().syscall2(BigInt(SYS_pidfd_open), BigInt(pid), 0n));
  return fd >= 0 ? fd : -1;
}

/**
 * Sends `signal` to a watched child through its pidfd (immune to pid reuse) or its pid.
 * Returns false when the child has already exited (ESRCH).
 */
export function signalChild(pid: number, pidfd: number, signal: number): boolean {
  const c = libc();
  const result = pidfd >= 0
    ? Number(c.syscall4(BigInt(SYS_pidfd_send_signal), BigInt(pidfd), BigInt(signal), 0n, 0n))
    : c.kill(pid, signal);
  if (result === 0) return true;
  const code = errno();
  if (code === ESRCH) return false;
  throw systemError(code, pidfd >= 0 ? "pidfd_send_signal" : "kill", {
    action: `signal child process ${pid}`,
  });
}

/** Starts watching a child; `settle` gets its raw wait status once it has been reaped. */
export function watchChild(pid: number, pidfd: number, settle: (waitStatus: number) => void): void {
  const child = { pid, pidfd, settle };
  watched.add(child);
  if (watched.size === 1) startWatching();
  reapIfExited(child); // it may have exited before it was watched
}

/**
 * Children are reaped on SIGCHLD, through Deno's own signal handling (no worker thread): each
 * signal may stand for several exits, so every watched child is looked at. A slow interval
 * keeps the process alive while children run, as `Deno.Command` does, and looks again in case
 * a signal was missed.
 */
function startWatching(): void {
  Deno.addSignalListener("SIGCHLD", reapAll);
  keepAlive = setInterval(reapAll, SAFETY_NET_MS);
}

function stopWatching(): void {
  Deno.removeSignalListener("SIGCHLD", reapAll);
  clearInterval(keepAlive);
}

function reapAll(): void {
  for (const child of [...watched]) reapIfExited(child);
}

const statusBuffer = new Int32Array(1);

function reapIfExited(child: Watched): void {
  const result = libc().waitpid(child.pid, statusBuffer, WNOHANG);
  if (result === 0) return; // still running
  watched.delete(child);
  if (watched.size === 0) stopWatching();
  if (child.pidfd >= 0) closeFd(child.pidfd);
  if (result === child.pid) {
    child.settle(statusBuffer[0]!);
  } else {
    // ECHILD: someone else reaped it (a waitpid(-1) elsewhere in the process); its status is lost.
    child.settle(-1);
  }
}
