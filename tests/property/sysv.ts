/**
 * Properties of @posix/ipc/sysv: ftok, and System V shared memory, semaphore sets and message
 * queues made and opened with hostile keys (32-bit keys such as 0xdeadbeef must work), sizes,
 * counts and modes; attachments read at hostile offsets (never past the segment); semaphore
 * operations and message sends and receives with hostile values, waits ended by their
 * timeout, signal or close.
 *
 * @module
 */

import {
  ftok,
  IPC_PRIVATE,
  SysVAttachment,
  SysVMessageQueue,
  SysVSemaphoreSet,
  SysVSharedMemory,
} from "../../mod.ts";
import { tempFile } from "../helpers.ts";
import {
  either,
  fc,
  hostile,
  options,
  type Ref,
  ref,
  waitOptions,
  withSyncTimeout,
  withTimeout,
} from "./arbitraries.ts";
import type { Case, Property, PropertyGroup } from "./harness.ts";
import { constructorProperty, memberProperties, useOtherHandle } from "./members.ts";

let nextKey = 0x5050_0000;
let file: string;

/** A key: fresh (also above 2^31), existing, IPC_PRIVATE, or hostile. */
const key = fc.oneof(
  { weight: 3, arbitrary: ref("key", "fresh") },
  { weight: 1, arbitrary: ref("key", "fresh-high") },
  { weight: 2, arbitrary: ref("key", "existing") },
  { weight: 1, arbitrary: fc.constant(IPC_PRIVATE) },
  { weight: 4, arbitrary: hostile },
);

type Kind = "shm" | "sem" | "msg";

function removeKey(kind: Kind, value: number): void {
  try {
    const object = kind === "shm"
      ? SysVSharedMemory.open(value)
      : kind === "sem"
      ? SysVSemaphoreSet.open(value)
      : SysVMessageQueue.open(value);
    object.remove();
    object.close();
  } catch {
    // none was made, or it was removed
  }
}

function resolveKey(kind: Kind): (marker: Ref, c: Case) => unknown {
  return (marker, c) => {
    if (marker.kind !== "key") throw new Error(`no resolver for ${marker}`);
    const value = marker.detail === "fresh-high" ? 0x8000_0000 + ++nextKey : ++nextKey;
    if (marker.detail === "existing") {
      const existing = kind === "shm"
        ? SysVSharedMemory.create(value, { size: 4096 })
        : kind === "sem"
        ? stamped(SysVSemaphoreSet.create(value, 2))
        : SysVMessageQueue.create(value);
      c.defer(() => existing.close());
    }
    c.defer(() => removeKey(kind, value));
    return value;
  };
}

/**
 * A set as its creator leaves it once set up: stamped by a semop, so that an openOrCreate opens
 * it at once instead of waiting for the stamp for as long as its hostile timeout says (2^32 - 1
 * ms is a valid timeout).
 */
function stamped(set: SysVSemaphoreSet): SysVSemaphoreSet {
  set.tryOp([{ index: 0, delta: 1 }, { index: 0, delta: -1 }]);
  return set;
}

const mode = fc.constantFrom(0o600, 0o644, 0);

/** Removes what a create made, also when persisted (IPC_PRIVATE, or a hostile key taken as valid). */
function owned(c: Case, made: { remove(): void; close(): void }): void {
  c.defer(() => {
    try {
      made.remove();
    } finally {
      made.close();
    }
  });
}

/** Semaphore operations: valid ones on a set of 2, and hostile indexes, deltas and flags. */
const operations = either(
  fc.array(
    options({
      index: fc.constantFrom(0, 1),
      delta: fc.constantFrom(0, 1, -1, 2, 32767),
      undo: fc.boolean(),
      noWait: fc.boolean(),
    }, 4),
    { maxLength: 3 },
  ),
  3,
);

export const group: PropertyGroup = {
  scale: 0.45,
  covers: [
    "ftok",
    "new SysVSharedMemory",
    "SysVSharedMemory.create",
    "SysVSharedMemory.open",
    "SysVSharedMemory.openOrCreate",
    "SysVSharedMemory.openOrCreateSync",
    ...["attach", "stat", "created", "remove", "close", "[Symbol.dispose]"].map((m) =>
      `SysVSharedMemory.prototype.${m}`
    ),
    "new SysVAttachment",
    ...["length", "readOnly", "detached", "buffer", "bytes", "read", "detach", "[Symbol.dispose]"]
      .map((m) => `SysVAttachment.prototype.${m}`),
    "new SysVSemaphoreSet",
    "SysVSemaphoreSet.create",
    "SysVSemaphoreSet.open",
    "SysVSemaphoreSet.openOrCreate",
    "SysVSemaphoreSet.openOrCreateSync",
    ...["values", "getValue", "setValue", "op", "tryOp", "created", "remove", "close"]
      .map((m) => `SysVSemaphoreSet.prototype.${m}`),
    "SysVSemaphoreSet.prototype.[Symbol.dispose]",
    "new SysVMessageQueue",
    "SysVMessageQueue.create",
    "SysVMessageQueue.open",
    "SysVMessageQueue.openOrCreate",
    "SysVMessageQueue.openOrCreateSync",
    ...["send", "receive", "stat", "created", "remove", "close", "[Symbol.dispose]"].map((m) =>
      `SysVMessageQueue.prototype.${m}`
    ),
  ],
  properties(): Property[] {
    file = tempFile("ftok");
    const otherSet = SysVSemaphoreSet.create(IPC_PRIVATE, 1);
    useOtherHandle(() => Object.create(otherSet));
    closeOther = () => otherSet.close();
    return [
      {
        name: "ftok() derives a 32-bit key from an existing file or refuses",
        covers: ["ftok"],
        runs: 2000,
        args: [fc.oneof(ref("file"), hostile), either(fc.integer({ min: 1, max: 255 }))],
        resolve: () => file,
        call: ([path, id]) => {
          const derived = ftok(path as never, id as never);
          if (!Number.isInteger(derived) || derived < 0 || derived > 0xffff_ffff) {
            throw new Error(`ftok gave ${derived}`);
          }
        },
      },
      constructorProperty("SysVSharedMemory", SysVSharedMemory),
      constructorProperty("SysVAttachment", SysVAttachment),
      constructorProperty("SysVSemaphoreSet", SysVSemaphoreSet),
      constructorProperty("SysVMessageQueue", SysVMessageQueue),
      {
        name: "SysVSharedMemory.create() makes a segment or refuses its key, size and mode",
        covers: ["SysVSharedMemory.create"],
        runs: 2500,
        args: [
          key,
          options({ size: fc.constantFrom(1, 4096, 65536), mode, persist: fc.boolean() }, 3),
        ],
        resolve: resolveKey("shm"),
        call: ([k, opts], c) => owned(c, SysVSharedMemory.create(k as never, opts as never)),
      },
      {
        name:
          "SysVSharedMemory.openOrCreate() and openOrCreateSync() open or create by key, or refuse",
        covers: ["SysVSharedMemory.openOrCreate", "SysVSharedMemory.openOrCreateSync"],
        runs: 800,
        stallMs: 500,
        args: [
          key,
          options({
            size: fc.constantFrom(1, 4096),
            mode,
            persist: fc.boolean(),
            timeout: fc.constantFrom(0, 20, -1, NaN, "1"),
          }, 3),
          fc.boolean(),
        ],
        resolve: resolveKey("shm"),
        call: async ([k, opts, sync], c) => {
          const made = sync
            ? SysVSharedMemory.openOrCreateSync(k as never, withSyncTimeout(opts) as never)
            : await SysVSharedMemory.openOrCreate(k as never, withTimeout(opts) as never);
          if (!made.created) return made; // the harness disposes it
          owned(c, made); // removes what this call created, persisted or not
          return undefined;
        },
      },
      {
        name: "SysVSharedMemory.open() opens a segment by key or refuses",
        covers: ["SysVSharedMemory.open"],
        runs: 1500,
        args: [key],
        resolve: resolveKey("shm"),
        call: ([k]) => SysVSharedMemory.open(k as never),
      },
      {
        name: "SysVSemaphoreSet.create() makes a set or refuses its key, count and mode",
        covers: ["SysVSemaphoreSet.create"],
        runs: 2500,
        args: [
          key,
          either(fc.constantFrom(1, 2, 32000, 32001)),
          options({ mode, persist: fc.boolean() }),
        ],
        resolve: resolveKey("sem"),
        call: ([k, count, opts], c) =>
          owned(c, SysVSemaphoreSet.create(k as never, count as never, opts as never)),
      },
      {
        name:
          "SysVSemaphoreSet.openOrCreate() and openOrCreateSync() open or create by key, or refuse",
        covers: ["SysVSemaphoreSet.openOrCreate", "SysVSemaphoreSet.openOrCreateSync"],
        runs: 800,
        stallMs: 500,
        args: [
          key,
          either(fc.constantFrom(1, 2, 32001)),
          options({
            values: fc.constantFrom([1], [0, 32767], [32768], [-1], "x"),
            mode,
            persist: fc.boolean(),
            timeout: fc.constantFrom(0, 20, -1, NaN, "1"),
          }),
          fc.boolean(),
        ],
        resolve: resolveKey("sem"),
        call: async ([k, count, opts, sync], c) => {
          const made = sync
            ? SysVSemaphoreSet.openOrCreateSync(
              k as never,
              count as never,
              withSyncTimeout(opts) as never,
            )
            : await SysVSemaphoreSet.openOrCreate(
              k as never,
              count as never,
              withTimeout(opts) as never,
            );
          if (!made.created) return made; // the harness disposes it
          owned(c, made); // removes what this call created, persisted or not
          return undefined;
        },
      },
      {
        name: "SysVSemaphoreSet.open() opens a set by key or refuses",
        covers: ["SysVSemaphoreSet.open"],
        runs: 1500,
        args: [key],
        resolve: resolveKey("sem"),
        call: ([k]) => SysVSemaphoreSet.open(k as never),
      },
      {
        name: "SysVMessageQueue.create() makes a queue or refuses its key and mode",
        covers: ["SysVMessageQueue.create"],
        runs: 2500,
        args: [key, options({ mode, persist: fc.boolean() })],
        resolve: resolveKey("msg"),
        call: ([k, opts], c) => owned(c, SysVMessageQueue.create(k as never, opts as never)),
      },
      {
        name:
          "SysVMessageQueue.openOrCreate() and openOrCreateSync() open or create by key, or refuse",
        covers: ["SysVMessageQueue.openOrCreate", "SysVMessageQueue.openOrCreateSync"],
        runs: 800,
        stallMs: 500,
        args: [
          key,
          options({ mode, persist: fc.boolean(), timeout: fc.constantFrom(0, 20, -1, NaN, "1") }),
          fc.boolean(),
        ],
        resolve: resolveKey("msg"),
        call: async ([k, opts, sync], c) => {
          const made = sync
            ? SysVMessageQueue.openOrCreateSync(k as never, withSyncTimeout(opts) as never)
            : await SysVMessageQueue.openOrCreate(k as never, withTimeout(opts) as never);
          if (!made.created) return made; // the harness disposes it
          owned(c, made); // removes what this call created, persisted or not
          return undefined;
        },
      },
      {
        name: "SysVMessageQueue.open() opens a queue by key or refuses",
        covers: ["SysVMessageQueue.open"],
        runs: 1500,
        args: [key],
        resolve: resolveKey("msg"),
        call: ([k]) => SysVMessageQueue.open(k as never),
      },
      ...memberProperties<SysVSharedMemory>({
        name: "SysVSharedMemory",
        cls: SysVSharedMemory,
        make: () => SysVSharedMemory.create(IPC_PRIVATE, { size: 8192 }),
        members: {
          attach: {
            args: [options({ readOnly: fc.boolean() })],
            runs: 1500,
            call: (segment, [opts]) => {
              const attachment = SysVSharedMemory.prototype.attach.call(segment, opts as never);
              const bytes = attachment.bytes;
              void bytes[bytes.length - 1];
              return attachment;
            },
          },
          stat: {},
          remove: {},
          created: {},
          close: {},
          "[Symbol.dispose]": {},
        },
      }),
      ...memberProperties<SysVAttachment>({
        name: "SysVAttachment",
        cls: SysVAttachment,
        make: (c) => {
          const segment = SysVSharedMemory.create(IPC_PRIVATE, { size: 8192 });
          c.defer(() => segment.close());
          return segment.attach();
        },
        close: (attachment) => attachment.detach(),
        members: {
          length: {},
          readOnly: {},
          detached: {},
          buffer: {},
          bytes: {},
          read: {
            args: [
              either(fc.constantFrom(0, 1, 4096, 8191, 8192, 8193)),
              either(fc.constantFrom(0, 1, 4096, 8192, 8193)),
            ],
            runs: 3000,
          },
          detach: {},
          "[Symbol.dispose]": {},
        },
      }),
      ...memberProperties<SysVSemaphoreSet>({
        name: "SysVSemaphoreSet",
        cls: SysVSemaphoreSet,
        make: () => SysVSemaphoreSet.create(IPC_PRIVATE, 2),
        members: {
          values: {},
          getValue: { args: [either(fc.constantFrom(0, 1, 2))], runs: 1500 },
          setValue: {
            args: [either(fc.constantFrom(0, 1, 2)), either(fc.constantFrom(0, 1, 32767, 32768))],
            runs: 2000,
          },
          op: { args: [operations, waitOptions()], runs: 2000 },
          tryOp: { args: [operations], runs: 2000 },
          remove: {},
          created: {},
          close: {},
          "[Symbol.dispose]": {},
        },
      }),
      ...memberProperties<SysVMessageQueue>({
        name: "SysVMessageQueue",
        cls: SysVMessageQueue,
        make: () => {
          const queue = SysVMessageQueue.create(IPC_PRIVATE);
          return queue;
        },
        members: {
          send: {
            args: [
              either(fc.constantFrom(1, 2, 2 ** 31 - 1)),
              either(fc.oneof(fc.uint8Array({ maxLength: 32 }), fc.string({ maxLength: 8 }))),
              options({ noWait: fc.boolean(), timeout: fc.constantFrom(0, 10, Infinity, 3e9) }),
            ],
            runs: 2000,
          },
          receive: {
            args: [
              options({
                type: fc.constantFrom(0, 1, -2, 2 ** 31 - 1),
                noWait: fc.boolean(),
                timeout: fc.constantFrom(0, 10, Infinity, 3e9),
                signal: fc.constantFrom(...["never", "aborted", "soon"].map((d) => ({ kind: d })))
                  .map(
                    () => undefined,
                  ),
              }),
            ],
            runs: 1500,
          },
          stat: {},
          remove: {},
          created: {},
          close: {},
          "[Symbol.dispose]": {},
        },
      }),
    ];
  },
  teardown() {
    closeOther?.();
    Deno.removeSync(file);
  },
};

let closeOther: (() => void) | undefined;
