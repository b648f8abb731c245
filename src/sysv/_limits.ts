/**
 * What a System V limit error means: which kernel limit was hit (SHMMAX, SHMMNI, SEMMSL, MSGMNB,
 * …), its value now, read from /proc/sys/kernel, and how to raise it. The hint goes after the
 * errno in the error's message. Internal.
 *
 * @module
 */

import { readProcNumber, readProcText } from "../_proc.ts";
import { formatBytes } from "../_validate.ts";

/** The value of a sysctl such as "kernel.shmmax", read from /proc/sys, or `undefined`. */
function sysctl(name: string): number | undefined {
  return readProcNumber(`/proc/sys/${name.replaceAll(".", "/")}`);
}

/** kernel.sem holds four limits in one file: SEMMSL SEMMNS SEMOPM SEMMNI. */
const SEM_FIELDS = ["SEMMSL", "SEMMNS", "SEMOPM", "SEMMNI"] as const;

function semaphoreLimit(field: typeof SEM_FIELDS[number]): number | undefined {
  const values = readProcText("/proc/sys/kernel/sem", 256)?.trim().split(/\s+/).map(Number);
  const value = values?.[SEM_FIELDS.indexOf(field)];
  return value !== undefined && Number.isFinite(value) ? value : undefined;
}

/** How many objects of a kind exist in this IPC namespace, from /proc/sysvipc. */
function existing(kind: "shm" | "sem" | "msg"): number | undefined {
  const text = readProcText(`/proc/sysvipc/${kind}`, 1 << 22);
  return text === undefined ? undefined : text.trim().split("\n").length - 1;
}

function shown(value: number | undefined, unit: "bytes" | "count" | "pages"): string {
  if (value === undefined) return "unknown";
  if (value > Number.MAX_SAFE_INTEGER) return "unlimited"; // the kernel's "no limit", near 2^64
  if (unit === "bytes") return formatBytes(value);
  return unit === "pages" ? `${value} pages` : String(value);
}

/** "SHMMNI (kernel.shmmni, 4096 now)": a limit's name, where it is set, and its value now. */
function limit(
  name: string,
  key: string,
  value: number | undefined,
  unit: "bytes" | "count" | "pages",
) {
  return `${name} (${key}, ${shown(value, unit)} now)`;
}

function raise(...settings: string[]): string {
  const assignments = settings.map((name) =>
    name === "kernel.sem" ? `kernel.sem="SEMMSL SEMMNS SEMOPM SEMMNI"` : `${name}=…`
  );
  return `raise it as root: sysctl -w ${assignments.join(" ")} (a file in /etc/sysctl.d keeps it)`;
}

const REMOVE_UNUSED = "remove objects nobody uses (deno task ipc ls, then ipc rm), or";

/** Why shmget failed, for a segment of `size` bytes. */
export function shmgetHint(code: string, size: number): string | undefined {
  if (code === "EINVAL") {
    const max = sysctl("kernel.shmmax");
    return `${formatBytes(size)} is over the largest segment the kernel allows, ` +
      `${limit("SHMMAX", "kernel.shmmax", max, "bytes")}; ask for less, or ` +
      raise("kernel.shmmax");
  }
  if (code === "ENOSPC") {
    const count = existing("shm");
    return `the system has ${count ?? "its"} segments, and ` +
      `${limit("SHMMNI", "kernel.shmmni", sysctl("kernel.shmmni"), "count")} is the most, or ` +
      `all segments together would pass ` +
      `${limit("SHMALL", "kernel.shmall", sysctl("kernel.shmall"), "pages")}; ` +
      `${REMOVE_UNUSED} ${raise("kernel.shmmni", "kernel.shmall")}`;
  }
  if (code === "ENOMEM") return "the kernel has no memory for the segment's bookkeeping";
  return undefined;
}

/** Why semget failed, for a set of `count` semaphores. */
export function semgetHint(code: string, count: number): string | undefined {
  if (code === "EINVAL") {
    return `a set of ${count} is more than ` +
      `${limit("SEMMSL", "the 1st number of kernel.sem", semaphoreLimit("SEMMSL"), "count")} ` +
      `allows in one set; ask for fewer, or ${raise("kernel.sem")}`;
  }
  if (code === "ENOSPC") {
    const sets = existing("sem");
    return `the system has ${sets ?? "its"} sets, and ` +
      `${limit("SEMMNI", "the 4th number of kernel.sem", semaphoreLimit("SEMMNI"), "count")} ` +
      `is the most, or all semaphores together would pass ` +
      `${limit("SEMMNS", "the 2nd number of kernel.sem", semaphoreLimit("SEMMNS"), "count")}; ` +
      `${REMOVE_UNUSED} ${raise("kernel.sem")}`;
  }
  return undefined;
}

/** Why semop failed, for `operations` operations at once. */
export function semopHint(code: string, operations: number): string | undefined {
  if (code === "E2BIG") {
    return `${operations} operations at once are more than ` +
      `${limit("SEMOPM", "the 3rd number of kernel.sem", semaphoreLimit("SEMOPM"), "count")} ` +
      `allows in one call; split them, or ${raise("kernel.sem")}`;
  }
  if (code === "ERANGE") return "the value would pass SEMVMX (32767), the largest it may hold";
  if (code === "ENOSPC") return "the kernel has no room left for SEM_UNDO records";
  return undefined;
}

/** Why msgget failed. */
export function msggetHint(code: string): string | undefined {
  if (code !== "ENOSPC") return undefined;
  return `the system has ${existing("msg") ?? "its"} queues, and ` +
    `${limit("MSGMNI", "kernel.msgmni", sysctl("kernel.msgmni"), "count")} is the most; ` +
    `${REMOVE_UNUSED} ${raise("kernel.msgmni")}`;
}

/** The largest System V message, MSGMAX, now. */
export function messageMax(): number | undefined {
  return sysctl("kernel.msgmax");
}

/** Why a message of `length` bytes cannot go into a queue that holds `queueBytes` at most. */
export function messageTooBig(length: number, queueBytes: number | undefined): string {
  const max = messageMax();
  if (queueBytes !== undefined && length > queueBytes) {
    return `the queue holds ${formatBytes(queueBytes)} at most, so it would never fit; a queue ` +
      `takes that limit, its msg_qbytes, from ` +
      `${limit("MSGMNB", "kernel.msgmnb", sysctl("kernel.msgmnb"), "bytes")} when it is made; ` +
      `send less, or ${raise("kernel.msgmnb")} before the queue is made`;
  }
  return `the largest message is ${limit("MSGMAX", "kernel.msgmax", max, "bytes")}; send less, ` +
    `or ${raise("kernel.msgmax")}`;
}
