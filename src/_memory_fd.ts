/**
 * Taking a handle over shared memory from a descriptor, with the ownership rules of
 * `SharedMemory.fromFd`, for the classes built on a segment (`Channel`, `SharedMap`). Internal.
 *
 * @module
 */

import { closeFd, type FdLike, OwnedFd, peekFd } from "./fd.ts";
import { SharedMemory } from "./shm.ts";

/**
 * Maps the segment of `fd` and hands it to `adopt`, which builds the handle (and closes the
 * memory if it fails). On success the handle owns a descriptor given as a number or an
 * `OwnedFd` (it works on a duplicate and closes the one given); on failure the descriptor stays
 * the caller's, open. Another handle (a `SharedMemory`, a `Channel`) keeps its own descriptor
 * either way: its segment is mapped from a duplicate.
 */
export function adoptMemoryFd<R>(fd: FdLike, adopt: (memory: SharedMemory) => R): R {
  if (typeof fd !== "number" && !(fd instanceof OwnedFd)) {
    return adopt(SharedMemory.fromFd(fd)); // which duplicates it
  }
  const copy = new OwnedFd(peekFd(fd, "fd")).dup();
  let memory: SharedMemory;
  try {
    memory = SharedMemory.fromFd(copy);
  } catch (error) {
    copy.close(); // a failed fromFd leaves it with us
    throw error;
  }
  const handle = adopt(memory); // closes the copy if it fails
  if (fd instanceof OwnedFd) fd.close();
  else closeFd(fd);
  return handle;
}
