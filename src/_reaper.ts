/**
 * Reaps the children that `spawn` started, whether or not anyone awaits them, and never
 * anyone else's: each child is reaped with `waitpid(pid, WNOHANG)` by its own pid, never
 * `waitpid(-1)`.
 *
 * One loop watches every living child: a single `poll` on a worker thread over each child's
 * pidfd (readable once it exits) and an eventfd that wakes the poll when a child is added.
 * Where pidfds are missing (Linux before 5.3), it looks every 20 ms instead. The loop runs only
 * while children live, and keeps the process alive meanwhile, as `Deno.Command` does. Internal.
 *
 * @module
 */

import {
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  POLLIN,
  SYS_pidfd_open,
  SYS_pidfd_send_signal,
  WNOHANG,
} from "../ffi/constants.ts";
import { pollfd } from "../ffi/layout.ts";
import { errno, libc } from "../ffi/libc.ts";
import { check, systemError } from "./errors.ts";
import { closeFd } from "./fd.ts";

/** A child being watched: its pid, its pidfd (-1 without one) and whom to tell its status. */
interface Watched {
  readonly pid: number;
  readonly pidfd: number;
  readonly settle: (waitStatus: number) => void;
}

const watched = new Set<Watched>();
let wakeFd = -1;
let looping = false;
const ONE = new BigUint64Array([1n]);
const LONGEST_POLL_MS = 1000;
const WITHOUT_PIDFD_POLL_MS = 20;

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
  if (code === 3) return false;
  throw systemError(code, pidfd >= 0 ? "pidfd_send_signal" : "kill", {
    action: `signal child process ${pid}`,
  });
}

/** Starts watching a child; `settle` gets its raw wait status once it has been reaped. */
export function watchChild(pid: number, pidfd: number, settle: (waitStatus: number) => void): void {
  watched.add({ pid, pidfd, settle });
  if (looping) wake();
  else void loop();
}

function wake(): void {
  libc().write(wakeFd, ONE, 8n);
}

async function loop(): Promise<void> {
  const c = libc();
  if (wakeFd < 0) {
    wakeFd = check(c.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), "eventfd", {
      action: "watch child processes",
    });
  }
  looping = true;
  try {
    while (watched.size > 0) {
      const children = [...watched];
      const polled = children.filter((child) => child.pidfd >= 0);
      const buffer = new Uint8Array(pollfd.size * (polled.length + 1));
      const view = new DataView(buffer.buffer);
      [wakeFd, ...polled.map((child) => child.pidfd)].forEach((fd, i) => {
        view.setInt32(i * pollfd.size + pollfd.fd, fd, true);
        view.setInt16(i * pollfd.size + pollfd.events, POLLIN, true);
      });
      const timeout = polled.length < children.length ? WITHOUT_PIDFD_POLL_MS : LONGEST_POLL_MS;
      await c.poll_async(buffer, BigInt(polled.length + 1), timeout);
      c.read(wakeFd, new BigUint64Array(1), 8n); // drain the wake-ups, if any
      for (const child of children) reapIfExited(child);
    }
  } finally {
    looping = false;
  }
}

const statusBuffer = new Int32Array(1);

function reapIfExited(child: Watched): void {
  const result = libc().waitpid(child.pid, statusBuffer, WNOHANG);
  if (result === 0) return; // still running
  watched.delete(child);
  if (child.pidfd >= 0) closeFd(child.pidfd);
  if (result === child.pid) {
    child.settle(statusBuffer[0]!);
  } else {
    // ECHILD: someone else reaped it (a waitpid(-1) elsewhere in the process); its status is lost.
    child.settle(-1);
  }
}
