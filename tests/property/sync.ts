/**
 * Properties of @posix/ipc/sync: Mutex, Condition and Barrier placed at hostile offsets of every
 * kind of memory, their guards, and every member on live, closed and wrong receivers. An
 * object placed in a segment that is then shrunk must refuse the shrink or stay safe to use (a
 * SIGBUS fails the group's child, which names the case).
 *
 * @module
 */

import { Barrier, Condition, Mutex, MutexGuard, SharedMemory } from "../../mod.ts";
import { either, fc, hostile, options, waitOptions } from "./arbitraries.ts";
import type { Case, Property, PropertyGroup } from "./harness.ts";
import { memory, MEMORY_SIZE, offset, resolveMemory } from "./memory.ts";
import { constructorProperty, memberProperties, useOtherHandle } from "./members.ts";

/** A placed object's memory, kept open for the case. */
function placed<T extends Disposable>(c: Case, make: (memory: SharedMemory) => T): T {
  const segment = SharedMemory.anonymous({ size: MEMORY_SIZE });
  c.defer(() => segment.close());
  const object = make(segment);
  c.defer(() => object[Symbol.dispose]());
  return object;
}

/**
 * Options of a sync wait that may block: short timeouts and hostile values, but no long wait
 * (a sync wait of 2^53 ms on a condition nobody notifies rightly blocks the thread for ever).
 */
const syncWait = fc.oneof(
  fc.record({
    timeout: fc.oneof(
      fc.constantFrom(0, 1, 10),
      // undefined is no timeout too: a wait as long as it takes
      hostile.filter((value) =>
        value !== undefined && !(typeof value === "number" && (value > 50 || value !== value))
      ),
    ),
  }, { requiredKeys: [] }).filter((value) => "timeout" in value),
  hostile.filter((value) => value !== undefined && (value === null || typeof value !== "object")),
);

const parties = fc.constantFrom(1, 2, 3, 2 ** 31 - 1);

function staticProperties(
  name: string,
  init: (...args: unknown[]) => Disposable,
  at: (...args: unknown[]) => Disposable,
  initOptions?: fc.Arbitrary<unknown>,
): Property[] {
  return [
    {
      name: `${name}.init() places one inside shared memory or refuses the place`,
      covers: [`${name}.init`],
      runs: 2500,
      args: initOptions ? [memory, offset, initOptions] : [memory, offset],
      resolve: resolveMemory,
      call: (args) => init(...args),
    },
    {
      name: `${name}.at() opens a placed one or refuses the place`,
      covers: [`${name}.at`],
      runs: 1500,
      args: [memory, offset],
      resolve: resolveMemory,
      call: (args) => at(...args),
    },
  ];
}

export const group: PropertyGroup = {
  scale: 0.6,
  covers: [
    "new Mutex",
    "Mutex.init",
    "Mutex.at",
    ...["owner", "closed", "tryLock", "lock", "lockSync", "close", "[Symbol.dispose]"].map((m) =>
      `Mutex.prototype.${m}`
    ),
    "new MutexGuard",
    ...["ownerDied", "held", "markConsistent", "unlock", "[Symbol.dispose]"].map((m) =>
      `MutexGuard.prototype.${m}`
    ),
    "new Condition",
    "Condition.init",
    "Condition.at",
    ...["wait", "waitSync", "notify", "notifyAll", "close", "[Symbol.dispose]"].map((m) =>
      `Condition.prototype.${m}`
    ),
    "new Barrier",
    "Barrier.init",
    "Barrier.at",
    ...["parties", "wait", "waitSync", "close", "[Symbol.dispose]"].map((m) =>
      `Barrier.prototype.${m}`
    ),
  ],
  properties(): Property[] {
    const otherMemory = SharedMemory.anonymous({ size: MEMORY_SIZE });
    const otherMutex = Mutex.init(otherMemory, 0);
    useOtherHandle(() => Object.create(otherMutex));
    closeOther = () => {
      otherMutex.close();
      otherMemory.close();
    };
    /** A guard of a fresh mutex, held; the case unlocks it if the call did not. */
    const guardOf = (c: Case): MutexGuard => {
      const mutex = placed(c, (segment) => Mutex.init(segment, 0));
      const guard = mutex.tryLock()!;
      c.defer(() => guard.held && guard.unlock());
      return guard;
    };
    const guardArg = fc.oneof(
      fc.constantFrom("held", "unlocked", "other-mutex").map((detail) => ({ guard: detail })),
      either(fc.constant(null)),
    );
    const resolveGuard = (value: unknown, mutex: Mutex, c: Case): unknown => {
      const detail = (value as { guard?: string })?.guard;
      if (!detail || Object.getPrototypeOf(value) !== Object.prototype) return value;
      if (detail === "other-mutex") return guardOf(c);
      const guard = mutex.tryLock();
      if (!guard) return null;
      c.defer(() => guard.held && guard.unlock());
      if (detail === "unlocked") guard.unlock();
      return guard;
    };
    return [
      constructorProperty("Mutex", Mutex),
      constructorProperty("MutexGuard", MutexGuard),
      constructorProperty("Condition", Condition),
      constructorProperty("Barrier", Barrier),
      ...staticProperties(
        "Mutex",
        (...a) => Mutex.init(...(a as [never, never])),
        (...a) => Mutex.at(...(a as [never, never])),
      ),
      ...staticProperties(
        "Condition",
        (...a) => Condition.init(...(a as [never, never])),
        (...a) => Condition.at(...(a as [never, never])),
      ),
      ...staticProperties(
        "Barrier",
        (...a) => Barrier.init(...(a as [never, never, never])),
        (...a) => Barrier.at(...(a as [never, never])),
        options({ parties }, 3),
      ),
      {
        name: "a placed Mutex survives a resize of its memory: refused, or safe to lock",
        covers: [],
        runs: 600,
        args: [
          fc.constantFrom(0, 64, 4096, MEMORY_SIZE - 64),
          either(fc.constantFrom(1, 64, 4096, MEMORY_SIZE * 2), 3),
        ],
        call: ([at, size], c) => {
          const segment = SharedMemory.anonymous({ size: MEMORY_SIZE });
          c.defer(() => segment.close());
          const mutex = Mutex.init(segment, at as number);
          c.defer(() => mutex.close());
          try {
            segment.resize(size as never);
          } finally {
            mutex.tryLock()?.unlock();
          }
        },
      },
      ...memberProperties<Mutex>({
        name: "Mutex",
        cls: Mutex,
        make: (c) => placed(c, (segment) => Mutex.init(segment, 0)),
        members: {
          owner: {},
          closed: {},
          tryLock: {},
          lock: { args: [waitOptions()], runs: 1500 },
          lockSync: { args: [syncWait], runs: 1500 },
          close: {},
          "[Symbol.dispose]": {},
        },
      }),
      ...memberProperties<MutexGuard>({
        name: "MutexGuard",
        cls: MutexGuard,
        make: guardOf,
        close: (guard) => guard.held && guard.unlock(),
        members: {
          ownerDied: {},
          held: {},
          markConsistent: {},
          unlock: {},
          "[Symbol.dispose]": {},
        },
      }),
      ...memberProperties<Condition>({
        name: "Condition",
        cls: Condition,
        make: (c) => placed(c, (segment) => Condition.init(segment, 64)),
        members: {
          wait: {
            args: [guardArg, waitOptions()],
            runs: 1000,
            call: (condition, [guard, opts], c) => {
              const mutex = placed(c, (segment) => Mutex.init(segment, 0));
              return Condition.prototype.wait.call(
                condition,
                resolveGuard(guard, mutex, c) as never,
                opts as never,
              );
            },
          },
          waitSync: {
            args: [guardArg, syncWait],
            runs: 1000,
            call: (condition, [guard, opts], c) => {
              const mutex = placed(c, (segment) => Mutex.init(segment, 0));
              return Condition.prototype.waitSync.call(
                condition,
                resolveGuard(guard, mutex, c) as never,
                opts as never,
              );
            },
          },
          notify: {},
          notifyAll: {},
          close: {},
          "[Symbol.dispose]": {},
        },
      }),
      ...memberProperties<Barrier>({
        name: "Barrier",
        cls: Barrier,
        // Two parties: a lone wait blocks, so it is ended by its timeout, signal or close.
        make: (c) => placed(c, (segment) => Barrier.init(segment, 128, { parties: 2 })),
        members: {
          parties: {},
          wait: { args: [waitOptions()], runs: 1000 },
          waitSync: { args: [syncWait], runs: 1000 },
          close: {},
          "[Symbol.dispose]": {},
        },
      }),
    ];
  },
  teardown() {
    closeOther?.();
  },
};

let closeOther: (() => void) | undefined;
