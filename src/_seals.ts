/**
 * File seals (`fcntl` F_ADD_SEALS, F_GET_SEALS) by name, for the anonymous segments of
 * src/shm.ts: the names users write, their bits, and the two calls with messages that say what
 * a refusal means. Internal.
 *
 * @module
 */

import {
  EBUSY,
  EINVAL,
  EPERM,
  F_ADD_SEALS,
  F_GET_SEALS,
  F_SEAL_FUTURE_WRITE,
  F_SEAL_GROW,
  F_SEAL_SEAL,
  F_SEAL_SHRINK,
  F_SEAL_WRITE,
} from "../ffi/constants.ts";
import { errno, libc } from "../ffi/libc.ts";
import { describe } from "./_validate.ts";
import { type Operation, systemError } from "./errors.ts";

/**
 * A seal on an anonymous segment, as `fcntl(F_ADD_SEALS)` sets it:
 * - `"shrink"`: nobody can make it smaller, so no mapping of it can lose pages (no SIGBUS);
 * - `"grow"`: nobody can make it larger;
 * - `"write"`: nobody can change its bytes any more (added only while no process has it mapped
 *   shared and writable);
 * - `"future-write"`: no new write access, while the mappings that exist keep writing (Linux
 *   5.1): the creator keeps writing, receivers can only read;
 * - `"seal"`: no more seals can be added.
 */
export type Seal = "seal" | "shrink" | "grow" | "write" | "future-write";

/** Each seal's bit, in the order that `seals` lists them. */
const BITS: ReadonlyMap<Seal, number> = new Map<Seal, number>([
  ["shrink", F_SEAL_SHRINK],
  ["grow", F_SEAL_GROW],
  ["write", F_SEAL_WRITE],
  ["future-write", F_SEAL_FUTURE_WRITE],
  ["seal", F_SEAL_SEAL],
]);

const NAMES = [...BITS.keys()].map((name) => `"${name}"`).join(", ");

/**
 * Checks a list of seal names (an array or any iterable of strings) and returns their bits:
 * a TypeError names the first bad entry.
 *
 * @param seals The names given.
 * @param what The argument, as the message names it: "seal".
 */
export function sealBits(seals: unknown, what: string): number {
  if (
    typeof seals !== "object" || seals === null ||
    typeof (seals as Partial<Iterable<unknown>>)[Symbol.iterator] !== "function"
  ) {
    throw new TypeError(`Cannot use ${what} ${describe(seals)}: it must be an array of ${NAMES}`);
  }
  let bits = 0;
  for (const name of seals as Iterable<unknown>) {
    const bit = typeof name === "string" ? BITS.get(name as Seal) : undefined;
    if (bit === undefined) {
      throw new TypeError(
        `Cannot use seal ${describe(name)} in ${what}: it must be one of ${NAMES}`,
      );
    }
    bits |= bit;
  }
  return bits;
}

/** The names of the seals in `bits`, in a fixed order. */
export function sealNames(bits: number): Seal[] {
  return [...BITS].filter(([, bit]) => (bits & bit) !== 0).map(([name]) => name);
}

/**
 * The seals of the file open as `fd` (F_GET_SEALS). A file that cannot carry seals at all (not
 * on tmpfs or hugetlbfs: EINVAL) has none, and so promises nothing.
 */
export function readSeals(fd: number, operation: Operation): number {
  const bits = libc().fcntl(fd, F_GET_SEALS, 0);
  if (bits >= 0) return bits;
  const code = errno();
  if (code === EINVAL) return 0;
  throw systemError(code, "fcntl", operation);
}

/**
 * Adds the seals `bits` to the file open as `fd` (F_ADD_SEALS), with a message that says why a
 * refusal happened: `named` for a shm_open file, which the kernel never lets anyone seal.
 */
export function addSeals(fd: number, bits: number, named: boolean, operation: Operation): void {
  if (libc().fcntl(fd, F_ADD_SEALS, bits) === 0) return;
  const code = errno();
  throw systemError(code, "fcntl", { ...operation, hint: refusal(code, fd, bits, named) });
}

function refusal(code: number, fd: number, bits: number, named: boolean): string | undefined {
  if (code === EPERM && named) {
    return "only anonymous segments (SharedMemory.anonymous(), memfd_create) can be sealed: " +
      "the kernel creates every shm_open file with the seal F_SEAL_SEAL already set";
  }
  if (code === EPERM) {
    const has = libc().fcntl(fd, F_GET_SEALS, 0);
    return has >= 0 && (has & F_SEAL_SEAL)
      ? `it is sealed against new seals (it has ${sealNames(has).join(", ")}); create it with ` +
        `SharedMemory.anonymous({ size, seal: [] }) to seal it later`
      : "its descriptor is open for reading only";
  }
  if (code === EBUSY && bits & F_SEAL_WRITE) {
    return "a process still maps it shared and writable; every writer must close its handle " +
      'first (receivers map it with { readOnly: true }), or seal "future-write" instead';
  }
  if (code === EINVAL && bits & F_SEAL_FUTURE_WRITE) {
    return 'the seal "future-write" needs Linux 5.1 or later, or the file is not on tmpfs';
  }
  if (code === EINVAL) return "the file is not on tmpfs or hugetlbfs, so it cannot be sealed";
  return undefined;
}
