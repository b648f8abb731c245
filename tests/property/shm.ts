/**
 * Properties of @posix/ipc/shm: SharedMemory's constructors with hostile names, sizes and
 * options, and every member on live, closed and wrong receivers; views taken before a resize,
 * a close or a transfer are touched afterwards and must read safely (a crash fails the group's
 * child, which names the case).
 *
 * @module
 */

import { SharedMemory } from "../../mod.ts";
import { uniqueName } from "../helpers.ts";
import {
  either,
  fc,
  hostile,
  options,
  orGenerated,
  type Ref,
  ref,
  withSyncTimeout,
  withTimeout,
} from "./arbitraries.ts";
import { FdWatch, notAnFd, sacrificialFd, wrappedFd } from "./fds.ts";
import type { Case, Property, PropertyGroup } from "./harness.ts";
import { constructorProperty, memberProperties, useOtherHandle } from "./members.ts";

let watch: FdWatch;
let other: SharedMemory | undefined;

/** A segment name: fresh, one that exists, or hostile. */
const name = fc.oneof(
  { weight: 3, arbitrary: ref("name", "fresh") },
  { weight: 2, arbitrary: ref("name", "existing") },
  { weight: 4, arbitrary: hostile },
);

/** Sizes a segment may have, small enough to make by the thousand, and the edges. */
export const size: fc.Arbitrary<number> = fc.oneof(
  fc.integer({ min: 1, max: 3 * 4096 }),
  fc.constantFrom(1, 4095, 4096, 4097, 2 ** 20),
);

function resolveShm(marker: Ref, c: Case): unknown {
  if (marker.kind === "name") {
    const fresh = uniqueName("prop-shm");
    if (marker.detail === "existing") {
      const existing = SharedMemory.create(fresh, { size: 4096 });
      c.defer(() => existing.close());
    } else {
      c.defer(() => {
        try {
          SharedMemory.unlink(fresh); // a persisted one the call made
        } catch {
          // none
        }
      });
    }
    return fresh;
  }
  if (marker.kind === "shm") {
    const memory = SharedMemory.anonymous({ size: 8192 });
    c.defer(() => memory.close());
    return memory;
  }
  return watch.resolve(marker, c);
}

/** Touches every byte range of `view`: a detached or emptied view reads nothing. */
function touch(view: Uint8Array): void {
  if (view.length > 0) {
    view[0] = view[0]! ^ 0;
    view[view.length - 1] = view[view.length - 1]! ^ 0;
  }
}

export const group: PropertyGroup = {
  scale: 0.8,
  covers: [
    "new SharedMemory",
    "SharedMemory.create",
    "SharedMemory.open",
    "SharedMemory.openOrCreate",
    "SharedMemory.openOrCreateSync",
    "SharedMemory.anonymous",
    "SharedMemory.fromFd",
    "SharedMemory.unlink",
    ...[
      "name",
      "size",
      "readOnly",
      "closed",
      "created",
      "fd",
      "buffer",
      "bytes",
      "mapping",
      "resize",
      "unlink",
      "close",
      "[Symbol.dispose]",
    ].map((member) => `SharedMemory.prototype.${member}`),
  ],
  properties(): Property[] {
    watch = new FdWatch();
    other = SharedMemory.anonymous({ size: 4096 });
    useOtherHandle(() => Object.create(other!)); // inherits another handle's accessors
    const untouched = () => watch.assertUntouched();
    return [
      constructorProperty("SharedMemory", SharedMemory),
      {
        name: "SharedMemory.create() makes a segment or refuses its name, size and options",
        covers: ["SharedMemory.create"],
        runs: 3000,
        args: [
          orGenerated(name),
          options({ size, mode: fc.constantFrom(0o600, 0o644, 0), persist: fc.boolean() }, 3),
        ],
        resolve: resolveShm,
        call: ([segment, opts], c) => {
          const memory = SharedMemory.create(segment as never, opts as never);
          c.defer(() => {
            try {
              SharedMemory.unlink(memory.name!); // a hostile valid or generated name, persisted
            } catch {
              // removed already by close()
            }
          });
          // (Options whose getters change their answer are read once by create, not again here.)
          const plain = Object.getOwnPropertyDescriptor(opts ?? {}, "size")?.get === undefined;
          if (plain && memory.size !== (opts as { size: number }).size) {
            throw new Error("wrong size");
          }
          touch(memory.bytes);
          return memory;
        },
      },
      {
        name: "SharedMemory.open() opens an existing segment or refuses",
        covers: ["SharedMemory.open"],
        runs: 2500,
        args: [name, options({ readOnly: fc.boolean() })],
        resolve: resolveShm,
        call: ([segment, opts]) => {
          const memory = SharedMemory.open(segment as never, opts as never);
          if (!memory.readOnly) touch(memory.bytes);
          else void memory.bytes[0];
          return memory;
        },
      },
      {
        name:
          "SharedMemory.openOrCreate() and openOrCreateSync() open or create a segment, or refuse",
        covers: ["SharedMemory.openOrCreate", "SharedMemory.openOrCreateSync"],
        runs: 800,
        stallMs: 500,
        args: [
          name,
          options({
            size,
            mode: fc.constantFrom(0o600, 0o644, 0),
            persist: fc.boolean(),
            init: fc.constantFrom(undefined, () => {}, 5, async () => {}),
            timeout: fc.constantFrom(0, 20, -1, NaN, "1"),
          }, 3),
          fc.boolean(),
        ],
        resolve: resolveShm,
        call: async ([segment, opts, sync], c) => {
          const memory = sync
            ? SharedMemory.openOrCreateSync(segment as never, withSyncTimeout(opts) as never)
            : await SharedMemory.openOrCreate(segment as never, withTimeout(opts) as never);
          if (memory.created) {
            c.defer(() => {
              try {
                SharedMemory.unlink(segment as never);
              } catch {
                // not persisted: closing removed it
              }
            });
          }
          touch(memory.bytes);
          return memory;
        },
      },
      {
        name: "SharedMemory.anonymous() makes a segment of the size asked or refuses",
        covers: ["SharedMemory.anonymous"],
        runs: 2500,
        args: [options({ size }, 3)],
        call: ([opts]) => {
          const memory = SharedMemory.anonymous(opts as never);
          touch(memory.bytes);
          return memory;
        },
      },
      {
        name: "SharedMemory.fromFd() maps only the descriptor given, never a wrapped one",
        covers: ["SharedMemory.fromFd"],
        runs: 2000,
        args: [
          fc.oneof(ref("shm", "live"), sacrificialFd, wrappedFd, ref("owned-fd"), notAnFd),
          options({ readOnly: fc.boolean() }),
        ],
        resolve: resolveShm,
        call: ([fd, opts]) => SharedMemory.fromFd(fd as never, opts as never),
        after: untouched,
      },
      {
        name: "SharedMemory.unlink() removes a name or refuses it",
        covers: ["SharedMemory.unlink"],
        runs: 2000,
        args: [name],
        resolve: resolveShm,
        call: ([segment]) => SharedMemory.unlink(segment as never),
      },
      {
        name: "views taken before resize(), close() or a transfer read safely afterwards",
        covers: [],
        runs: 1500,
        args: [
          options({ size }, 4),
          fc.constantFrom("resize", "close", "transfer-close", "transfer-resize", "gc"),
          either(size, 3),
        ],
        call: ([opts, action, next]) => {
          const memory = SharedMemory.anonymous(opts as never);
          let view = memory.bytes;
          try {
            if (String(action).startsWith("transfer")) {
              view = new Uint8Array(memory.buffer.transfer());
            }
            if (String(action).endsWith("resize")) memory.resize(next as never);
            else memory.close();
          } finally {
            touch(view);
            memory.close();
            touch(view);
          }
        },
      },
      ...memberProperties<SharedMemory>({
        name: "SharedMemory",
        cls: SharedMemory,
        make: () => SharedMemory.anonymous({ size: 8192 }),
        members: {
          name: {},
          size: {},
          readOnly: {},
          closed: {},
          created: {},
          fd: {},
          buffer: {
            call: (memory) => touch(new Uint8Array(descriptorOf("buffer").call(memory))),
          },
          bytes: { call: (memory) => touch(descriptorOf("bytes").call(memory)) },
          mapping: {},
          resize: {
            args: [either(size, 2)],
            runs: 2000,
            call: (memory, [next]) => {
              const before = memory.closed ? new Uint8Array() : memory.bytes;
              try {
                return SharedMemory.prototype.resize.call(memory, next as never);
              } finally {
                touch(before);
                if (!memory.closed) touch(memory.bytes);
              }
            },
          },
          unlink: {},
          close: {},
          "[Symbol.dispose]": {},
        },
      }),
    ];
  },
  teardown() {
    other?.close();
    watch.close();
  },
};

function descriptorOf(key: string): (this: unknown) => never {
  return Object.getOwnPropertyDescriptor(SharedMemory.prototype, key)!.get as never;
}
