/**
 * The file behind a named semaphore. sem_open maps /dev/shm/sem.NAME and closes it, so a
 * semaphore keeps no descriptor to fchmod or fchown: this opens the file again by name with
 * O_PATH (which needs no permission on the file itself), and first makes sure it is the very
 * file that the semaphore is mapped from, as /proc/self/maps tells, and not another semaphore
 * made under the same name after this one was removed. Internal.
 *
 * @module
 */

import { cstring } from "../ffi/cstring.ts";
import { ENOENT, O_CLOEXEC, O_PATH } from "../ffi/constants.ts";
import { libc } from "../ffi/libc.ts";
import { check, type Operation, systemError } from "./errors.ts";
import { closeFd } from "./fd.ts";
import { readProcText } from "./_proc.ts";
import { statDescriptor } from "./_stat.ts";

/**
 * Runs `use` with an O_PATH descriptor of the file of the semaphore `name`, mapped at `sem` in
 * this process, and closes it after.
 *
 * `sem` is `null` right after this process created the semaphore with O_EXCL: /dev/shm is
 * sticky, so only this user or root can have removed or replaced the name since, and the check
 * (reading /proc/self/maps, about 0.5 ms in a Deno process) is skipped.
 *
 * @throws {Deno.errors.NotFound} when the name is gone, or now names another semaphore.
 */
export function withSemaphoreFile<R>(
  name: string,
  sem: Deno.PointerObject | null,
  operation: Operation,
  use: (fd: number) => R,
): R {
  const path = `/dev/shm/sem.${name.slice(1)}`;
  const fd = check(libc().open(cstring(path), O_PATH | O_CLOEXEC, 0), "open", operation);
  try {
    const mapped = sem === null ? undefined : mappedFile(Deno.UnsafePointer.value(sem));
    if (mapped !== undefined && mapped !== statDescriptor(fd, operation).identity) {
      throw systemError(ENOENT, "open", {
        ...operation,
        hint: "the name was removed, and now belongs to another semaphore",
      });
    }
    return use(fd);
  } finally {
    closeFd(fd);
  }
}

/**
 * The "major:minor:inode" of the file mapped at `address` in this process, as
 * `FileFacts.identity` has it, or `undefined` when /proc/self/maps cannot tell.
 */
function mappedFile(address: bigint): string | undefined {
  const maps = readProcText("/proc/self/maps", 1 << 24);
  for (const line of maps?.split("\n") ?? []) {
    if (!/^[0-9a-f]+-[0-9a-f]+ /.test(line)) continue;
    const [range, , , device, inode] = line.split(/\s+/);
    const [start, end] = range?.split("-").map((hex) => BigInt(`0x${hex}`)) ?? [];
    if (start === undefined || end === undefined || address < start || address >= end) continue;
    const [major, minor] = device?.split(":").map((hex) => parseInt(hex, 16)) ?? [];
    return `${major}:${minor}:${inode}`;
  }
  return undefined;
}
