/**
 * Properties of seals and of mode and ownership: `SharedMemory.anonymous({ seal })`,
 * `fromFd({ requireSeals })`, `seal()`, `seals`, and `permissions`, `chmod()`, `chown()` on every
 * kind, with hostile seal lists, modes (0o10000, -1, NaN, 2^32, …) and ids. Beyond the allowed
 * outcomes, no wrong action: a seal call that throws adds no seal, a chmod that succeeds leaves
 * exactly the bits asked (and the library's sticky mark), a chown that succeeds leaves exactly
 * the ids asked (-1: unchanged), and one that throws changes nothing.
 *
 * @module
 */

import {
  IPC_PRIVATE,
  MessageQueue,
  OwnedFd,
  Semaphore,
  SharedMemory,
  SysVMessageQueue,
  SysVSemaphoreSet,
  SysVSharedMemory,
} from "../../mod.ts";
import { uniqueName } from "../helpers.ts";
import { either, fc, hostile, options, settled } from "./arbitraries.ts";
import type { Case, Property, PropertyGroup } from "./harness.ts";
import { memberProperties, useOtherHandle } from "./members.ts";

const SEALS = ["shrink", "grow", "write", "future-write", "seal"] as const;

/** A list of seal names, valid or with a hostile entry, or not a list at all. */
const seals: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.subarray([...SEALS]) },
  {
    weight: 2,
    arbitrary: fc.array(fc.oneof(fc.constantFrom(...SEALS), hostile), { maxLength: 4 }),
  },
  { weight: 1, arbitrary: fc.subarray([...SEALS]).map((list) => new Set(list)) },
  { weight: 1, arbitrary: fc.constantFrom("shrink", "SHRINK", "", ["Shrink"], [" grow"]) },
  { weight: 1, arbitrary: hostile },
);

/** Modes: valid ones and the edges around 0o777. */
const mode: fc.Arbitrary<unknown> = either(
  fc.oneof(fc.integer({ min: 0, max: 0o777 }), fc.constantFrom(0, 0o600, 0o777)),
  2,
);
const hostileMode: fc.Arbitrary<unknown> = fc.oneof(
  mode,
  fc.constantFrom(0o1000, 0o2000, 0o4000, 0o10000, 0o7777, -1, NaN, 2 ** 32, 2 ** 32 + 0o600),
);

/** Ids: -1 (unchanged), small ones, the u32 edges, and hostile values. */
const id: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(-1, 0, 1, 65534, 2 ** 32 - 2) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 2 ** 32 - 2 }) },
  { weight: 2, arbitrary: fc.constantFrom(-2, 2 ** 32 - 1, 2 ** 32, 2 ** 31, -(2 ** 31), NaN) },
  { weight: 2, arbitrary: hostile },
);

interface Owned {
  readonly permissions: { mode: number; uid: number; gid: number };
}

/** What `permissions` says, or `null` on a receiver that cannot tell. */
function permissionsOf(receiver: unknown): { mode: number; uid: number; gid: number } | null {
  try {
    const owned = receiver as Owned & { stat?: () => Owned["permissions"] };
    return typeof owned.stat === "function" ? owned.stat() : owned.permissions;
  } catch {
    return null;
  }
}

/** Calls `change` on `receiver` and checks what `permissions` (or `stat()`) shows after. */
function changed(
  receiver: unknown,
  change: () => void,
  expect: (before: Owned["permissions"]) => Partial<Owned["permissions"]>,
): void {
  const before = permissionsOf(receiver);
  let threw: unknown = undefined;
  try {
    change();
  } catch (error) {
    threw = error;
  }
  const after = permissionsOf(receiver);
  if (before && after) {
    const wanted = threw === undefined ? { ...before, ...expect(before) } : before;
    for (const key of ["mode", "uid", "gid"] as const) {
      if (after[key] !== wanted[key]) {
        throw new Error(`wrong action: ${key} is ${after[key]}, expected ${wanted[key]}`);
      }
    }
  }
  if (threw !== undefined) throw threw;
}

/** The mode and ids that chmod(mode) and chown(uid, gid) must leave. */
const afterChmod = (bits: unknown) => () => ({ mode: bits as number });
const afterChown = (uid: unknown, gid: unknown) => (before: Owned["permissions"]) => ({
  uid: uid === -1 ? before.uid : uid as number,
  gid: gid === -1 || gid === undefined ? before.gid : gid as number,
});

/** chmod, chown and permissions of one class, with the checks above. */
function ownershipMembers<T>() {
  return {
    permissions: {},
    chmod: {
      args: [hostileMode],
      runs: 1500,
      call: (receiver: T, [bits]: unknown[]) =>
        changed(
          receiver,
          () => (receiver as { chmod(m: unknown): void }).chmod(bits),
          afterChmod(bits),
        ),
    },
    chown: {
      args: [id, fc.oneof(id, fc.constant(undefined))],
      runs: 1500,
      call: (receiver: T, [uid, gid]: unknown[]) =>
        changed(
          receiver,
          () => (receiver as { chown(u: unknown, g?: unknown): void }).chown(uid, gid),
          afterChown(uid, gid),
        ),
    },
  };
}

function sealable(c: Case): SharedMemory {
  const memory = SharedMemory.anonymous({ size: 8192, seal: [] });
  c.defer(() => memory.close());
  return memory;
}

let other: SharedMemory | undefined;

export const group: PropertyGroup = {
  scale: 0.6,
  covers: [
    ...["seals", "seal", "permissions", "chmod", "chown"].map((m) => `SharedMemory.prototype.${m}`),
    ...["permissions", "chmod", "chown"].map((m) => `MessageQueue.prototype.${m}`),
    ...["permissions", "chmod", "chown"].map((m) => `Semaphore.prototype.${m}`),
    ...["chmod", "chown"].map((m) => `SysVSharedMemory.prototype.${m}`),
    ...["permissions", "chmod", "chown"].map((m) => `SysVSemaphoreSet.prototype.${m}`),
    ...["chmod", "chown"].map((m) => `SysVMessageQueue.prototype.${m}`),
  ],
  properties(): Property[] {
    other = SharedMemory.anonymous({ size: 4096 });
    useOtherHandle(() => other!);
    return [
      {
        name: "SharedMemory.anonymous({ seal }) adds exactly the seals asked, or refuses them",
        covers: [],
        runs: 2500,
        args: [options({ size: fc.constantFrom(1, 4096, 8192), seal: seals }, 3)],
        call: ([given]) => {
          // Seals semantics, not getters (the member properties have those): one plain copy,
          // read by both the call and the expectation.
          const opts = settled(given);
          const memory = SharedMemory.anonymous(opts as never);
          try {
            const asked = (opts as { seal?: Iterable<string> }).seal;
            const has = memory.seals;
            const wanted = asked === undefined
              ? ["seal"]
              : SEALS.filter((s) => [...asked].includes(s));
            if (has.join() !== wanted.join()) throw new Error(`wrong seals ${has} for ${wanted}`);
            void memory.bytes[0];
          } finally {
            memory.close();
          }
        },
      },
      {
        name: "SharedMemory.fromFd({ requireSeals }) maps only a segment that has them",
        covers: [],
        runs: 2000,
        args: [fc.subarray([...SEALS]), options({ readOnly: fc.boolean(), requireSeals: seals })],
        call: ([has, given], c) => {
          const opts = settled(given); // as above
          const source = SharedMemory.anonymous({ size: 4096, seal: has as never });
          c.defer(() => source.close());
          const copy = new OwnedFd(source.fd).dup();
          c.defer(() => copy.close());
          const memory = SharedMemory.fromFd(copy, opts as never);
          c.defer(() => memory.close());
          const required = [
            ...((opts as { requireSeals?: string[] } | undefined)?.requireSeals ?? []),
          ];
          const missing = required.filter((s) => !source.seals.includes(s as never));
          if (missing.length > 0) throw new Error(`wrong action: mapped without ${missing}`);
          void memory.bytes[0];
        },
      },
      ...memberProperties<SharedMemory>({
        name: "SharedMemory",
        cls: SharedMemory,
        make: sealable,
        members: {
          seals: {},
          seal: {
            args: [seals],
            runs: 2000,
            call: (memory, [list]) => {
              const before = memory.closed ? [] : memory.seals;
              try {
                return memory.seal(list as never);
              } catch (error) {
                if (!memory.closed && memory.seals.join() !== before.join()) {
                  throw new Error(
                    `wrong action: seals changed to ${memory.seals} by a failed seal()`,
                  );
                }
                throw error;
              } finally {
                if (!memory.closed) void memory.bytes[0];
              }
            },
          },
          ...ownershipMembers<SharedMemory>(),
        },
      }),
      ...memberProperties<MessageQueue>({
        name: "MessageQueue",
        cls: MessageQueue,
        make: () =>
          MessageQueue.create(uniqueName("prop-own-mq"), { maxMessages: 1, messageSize: 16 }),
        members: ownershipMembers<MessageQueue>(),
      }),
      ...memberProperties<Semaphore>({
        name: "Semaphore",
        cls: Semaphore,
        make: () => Semaphore.create(uniqueName("prop-own-sem")),
        members: ownershipMembers<Semaphore>(),
      }),
      ...memberProperties<SysVSharedMemory>({
        name: "SysVSharedMemory",
        cls: SysVSharedMemory,
        make: () => SysVSharedMemory.create(IPC_PRIVATE, { size: 4096 }),
        members: (({ chmod, chown }) => ({ chmod, chown }))(ownershipMembers<SysVSharedMemory>()),
      }),
      ...memberProperties<SysVSemaphoreSet>({
        name: "SysVSemaphoreSet",
        cls: SysVSemaphoreSet,
        make: () => SysVSemaphoreSet.create(IPC_PRIVATE, 1),
        members: ownershipMembers<SysVSemaphoreSet>(),
      }),
      ...memberProperties<SysVMessageQueue>({
        name: "SysVMessageQueue",
        cls: SysVMessageQueue,
        make: () => SysVMessageQueue.create(IPC_PRIVATE),
        members: (({ chmod, chown }) => ({ chmod, chown }))(ownershipMembers<SysVMessageQueue>()),
      }),
    ];
  },
  teardown() {
    other?.close();
  },
};
