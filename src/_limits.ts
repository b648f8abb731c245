/**
 * The kernel's and the user's limits on IPC objects, with what each means: the data behind
 * `ipc limits`. Internal: the public face is src/cli.ts.
 *
 * @module
 */

import { RLIMIT_MEMLOCK, RLIMIT_MSGQUEUE, RLIMIT_NOFILE } from "../ffi/constants.ts";
import { fileSystemSpace, readProcText, resourceLimit } from "./_proc.ts";
import { formatBytes } from "./_validate.ts";

/** One limit as `ipc limits --json` prints it. */
export interface IpcLimit {
  /** The sysctl or rlimit name, such as "kernel.shmmax" or "RLIMIT_MSGQUEUE". */
  name: string;
  /** The value, or `null` when it cannot be read. */
  value: number | "unlimited" | null;
  /** For rlimits: the hard limit, up to which a process may raise the value. */
  hard?: number | "unlimited" | null;
  /** What the number counts. */
  unit: "bytes" | "pages" | "count";
  /** What it limits, in a sentence. */
  meaning: string;
}

const sysctls: [string, IpcLimit["unit"], string][] = [
  ["fs.mqueue.queues_max", "count", "POSIX message queues on the system"],
  ["fs.mqueue.msg_max", "count", "largest maxMessages a POSIX queue may ask for"],
  ["fs.mqueue.msgsize_max", "bytes", "largest messageSize a POSIX queue may ask for"],
  ["fs.mqueue.msg_default", "count", "maxMessages of a queue created without one"],
  ["fs.mqueue.msgsize_default", "bytes", "messageSize of a queue created without one"],
  ["kernel.shmmax", "bytes", "largest System V shared memory segment"],
  ["kernel.shmall", "pages", "all System V shared memory together"],
  ["kernel.shmmni", "count", "System V shared memory segments on the system"],
  ["kernel.msgmax", "bytes", "largest System V message"],
  ["kernel.msgmnb", "bytes", "bytes a System V message queue holds by default"],
  ["kernel.msgmni", "count", "System V message queues on the system"],
];

/** kernel.sem holds four numbers: SEMMSL SEMMNS SEMOPM SEMMNI. */
const semaphoreLimits: [string, string][] = [
  ["kernel.sem SEMMSL", "semaphores in one System V set"],
  ["kernel.sem SEMMNS", "System V semaphores on the system"],
  ["kernel.sem SEMOPM", "operations in one semop() call"],
  ["kernel.sem SEMMNI", "System V semaphore sets on the system"],
];

const rlimits: [string, number, IpcLimit["unit"], string][] = [
  [
    "RLIMIT_MSGQUEUE",
    RLIMIT_MSGQUEUE,
    "bytes",
    "POSIX queue memory per user (about maxMessages × messageSize per queue; ulimit -q)",
  ],
  [
    "RLIMIT_NOFILE",
    RLIMIT_NOFILE,
    "count",
    "open descriptors per process: every shm, queue and pipe end holds one (ulimit -n)",
  ],
  ["RLIMIT_MEMLOCK", RLIMIT_MEMLOCK, "bytes", "memory a process may lock (ulimit -l)"],
];

/** Reads every limit. */
export function limits(): IpcLimit[] {
  const read = (name: string) => readProcText(`/proc/sys/${name.replaceAll(".", "/")}`, 256);
  const result: IpcLimit[] = [];
  for (const [name, unit, meaning] of sysctls) {
    result.push({ name, value: sysctlValue(read(name)), unit, meaning });
  }
  const sem = (read("kernel.sem") ?? "").trim().split(/\s+/).map(Number);
  semaphoreLimits.forEach(([name, meaning], i) => {
    const value = sem[i];
    result.push({ name, value: Number.isFinite(value) ? value! : null, unit: "count", meaning });
  });
  const space = fileSystemSpace("/dev/shm");
  result.push({
    name: "/dev/shm size",
    value: space?.total ?? null,
    unit: "bytes",
    meaning: `POSIX shared memory and named semaphores together (free now: ${
      space ? formatBytes(space.free) : "unknown"
    })`,
  });
  for (const [name, resource, unit, meaning] of rlimits) {
    const limit = resourceLimit(resource);
    const value = (n: number | undefined) => n === Infinity ? "unlimited" : n ?? null;
    result.push({ name, value: value(limit?.soft), hard: value(limit?.hard), unit, meaning });
  }
  return result;
}

/** A sysctl's number; the kernel's "no limit" defaults (near 2^64) read as "unlimited". */
function sysctlValue(text: string | undefined): number | "unlimited" | null {
  const value = Number(text?.trim() ?? NaN);
  if (!Number.isFinite(value)) return null;
  return value > Number.MAX_SAFE_INTEGER ? "unlimited" : value;
}
