/**
 * The multi mode's locks: several senders and several receivers, in any processes, each side
 * taking a robust process-shared mutex (src/sync/mutex.ts) in the header around its part, the
 * senders' to write after the tail, the receivers' to read at the head. A lock whose owner
 * died is taken over: the dead owner moved no index, so there is nothing to repair. A send
 * holds the senders' lock for microseconds, a loan for as long as its owner fills it (the
 * header's C_LOANED says so), so a sender is patient with a send's lock only, and waits for a
 * loan's as for room. Internal: src/channel/channel.ts takes the locks, and takes the index its
 * side moves afresh once it holds one (src/channel/frames.ts); a loan's end releases the
 * senders' lock (src/channel/loan.ts).
 *
 * @module
 */

import { EBUSY } from "../../ffi/constants.ts";
import { isSystemError, systemError } from "../errors.ts";
import type { Mutex, MutexGuard } from "../sync/mutex.ts";
import { C_LOANED } from "./layout.ts";

/**
 * How long a sender blocks its thread on the senders' lock that another sender holds before it
 * waits for it as for room instead.
 */
const LOCK_PATIENCE_MS = 2;

/**
 * Takes the senders' lock, or returns `null` when a loan of another process holds it (the
 * caller waits as for room; the loan's end wakes it).
 *
 * @throws {Deno.errors.Busy} when a loan of this process, on another handle, holds it.
 */
export function takeSenderLock(lock: Mutex, cells: Int32Array): MutexGuard | null {
  let guard = lock.tryLock(); // free, or its owner died (a zombie too)
  if (guard === null) {
    const loaned = Atomics.load(cells, C_LOANED) !== 0;
    try {
      guard = lock.lockSync({ timeout: loaned ? 0 : LOCK_PATIENCE_MS });
    } catch (error) {
      if (error instanceof Deno.errors.TimedOut) return null;
      if (isSystemError(error) && error.code === "EDEADLK") {
        throw systemError(EBUSY, "send", {
          action: "send on the channel",
          hint: "a loan of this process, on another handle, holds the senders' lock: " +
            "commit or abandon it first",
        });
      }
      throw error;
    }
  }
  if (guard.ownerDied) {
    // A dead sender published nothing half-done: its tail never moved. A dead loan's neither.
    Atomics.store(cells, C_LOANED, 0);
    guard.markConsistent();
  }
  return guard;
}

/** Takes the receivers' lock, waiting for it. */
export function lockReceivers(lock: Mutex): MutexGuard {
  const guard = lock.lockSync();
  if (guard.ownerDied) guard.markConsistent(); // a dead receiver consumed nothing half-way
  return guard;
}

/** Takes the receivers' lock if it is free now, or returns `null`. */
export function tryLockReceivers(lock: Mutex): MutexGuard | null {
  const guard = lock.tryLock();
  if (guard?.ownerDied) guard.markConsistent(); // a dead receiver consumed nothing half-way
  return guard;
}
