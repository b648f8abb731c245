/**
 * A way into `Mapping` for the modules that have just taken a descriptor's statx: they map it
 * with the facts they hold instead of asking the kernel again (`SharedMemory.fromFd`, on the
 * path of every descriptor received and mapped). src/mmap.ts provides the function when it
 * loads; importing `Mapping` from there (as every user of this hook does) makes sure it has.
 * Internal.
 *
 * @module
 */

import type { Mapping } from "./mmap.ts";
import type { FileFacts } from "./_stat.ts";

/**
 * Maps all of the file behind `descriptor`, shared and writable when `write` is set (else
 * copy-on-write, as `Mapping.fromFd` does), after checking its type and size in `facts`
 * (typed errors); returns the errno when mmap fails.
 */
export type MapStatted = (
  descriptor: number,
  facts: FileFacts,
  write: boolean,
  label: string,
) => Mapping | number;

let mapper: MapStatted | undefined;

/** Called once by src/mmap.ts. */
export function provideMapper(map: MapStatted): void {
  mapper = map;
}

/** {@linkcode MapStatted}, as src/mmap.ts provides it. */
export function mapWhole(
  descriptor: number,
  facts: FileFacts,
  write: boolean,
  label: string,
): Mapping | number {
  return mapper!(descriptor, facts, write, label);
}
