/**
 * Memory to place process-shared objects in (semaphores, locks, barriers): live shared
 * segments, read-only and private mappings, closed ones, and hostile values, with offsets
 * around alignment and the end.
 *
 * @module
 */

import { mapFile, SharedMemory } from "../../mod.ts";
import { uniqueName } from "../helpers.ts";
import { fc, hostile, Ref } from "./arbitraries.ts";
import type { Case } from "./harness.ts";

/** The size of every segment made here. */
export const MEMORY_SIZE = 8192;

/** Where to place an object: a live segment mostly, and every wrong kind of memory. */
export const memory: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: fc.constant(new Ref("memory", "shared")) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      ...["read-only", "private", "closed", "mapping", "other"].map((d) => new Ref("memory", d)),
    ),
  },
  { weight: 2, arbitrary: hostile },
);

/** Offsets: aligned ones inside, unaligned ones, the end, and the C type edges. */
export const offset: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: MEMORY_SIZE / 64 - 1 }).map((n) => n * 64) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      1,
      3,
      63,
      MEMORY_SIZE - 8,
      MEMORY_SIZE - 4,
      MEMORY_SIZE,
      -64,
      2 ** 32,
    ),
  },
  { weight: 2, arbitrary: hostile },
);

/** Resolves the memory markers; every object made is closed when the case ends. */
export function resolveMemory(marker: Ref, c: Case): unknown {
  if (marker.kind !== "memory") return undefined;
  switch (marker.detail) {
    case "shared":
    case "closed": {
      const made = SharedMemory.anonymous({ size: MEMORY_SIZE });
      c.defer(() => made.close());
      if (marker.detail === "closed") made.close();
      return made;
    }
    case "read-only": {
      const name = uniqueName("prop-ro");
      const owner = SharedMemory.create(name, { size: MEMORY_SIZE });
      const reader = SharedMemory.open(name, { readOnly: true });
      c.defer(() => owner.close());
      c.defer(() => reader.close());
      return reader;
    }
    case "private":
    case "mapping": {
      const made = SharedMemory.anonymous({ size: MEMORY_SIZE });
      c.defer(() => made.close());
      if (marker.detail === "mapping") return made.mapping;
      const path = `/proc/self/fd/${made.fd}`;
      const mapping = mapFile(path, { private: true });
      c.defer(() => mapping.close());
      return mapping;
    }
    default:
      return { mapping: {}, unsafePointer: null, length: 1 << 30, shared: true };
  }
}
