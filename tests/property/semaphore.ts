/**
 * Properties of @posix/ipc/semaphore: named semaphores with hostile names, values and modes,
 * semaphores placed at hostile offsets of every kind of memory, and every member on live,
 * closed and wrong receivers, waits ended by their timeout, signal or close.
 *
 * @module
 */

import { Semaphore } from "../../mod.ts";
import { uniqueName } from "../helpers.ts";
import {
  either,
  fc,
  hostile,
  options,
  orGenerated,
  type Ref,
  ref,
  waitOptions,
  withSyncTimeout,
  withTimeout,
} from "./arbitraries.ts";
import type { Case, Property, PropertyGroup } from "./harness.ts";
import { memory, offset, resolveMemory } from "./memory.ts";
import { constructorProperty, memberProperties, useOtherHandle } from "./members.ts";

const name = fc.oneof(
  { weight: 3, arbitrary: ref("name", "fresh") },
  { weight: 2, arbitrary: ref("name", "existing") },
  { weight: 4, arbitrary: hostile },
);

const value = fc.constantFrom(0, 1, 5, 2 ** 31 - 1);

function resolveSemaphore(marker: Ref, c: Case): unknown {
  if (marker.kind === "name") {
    const fresh = uniqueName("prop-sem");
    if (marker.detail === "existing") {
      const existing = Semaphore.create(fresh, { value: 1 });
      c.defer(() => existing.close());
    } else {
      c.defer(() => {
        try {
          Semaphore.unlink(fresh);
        } catch {
          // none was made, or it was removed
        }
      });
    }
    return fresh;
  }
  return resolveMemory(marker, c);
}

export const group: PropertyGroup = {
  scale: 0.6,
  covers: [
    "new Semaphore",
    "Semaphore.create",
    "Semaphore.open",
    "Semaphore.openOrCreate",
    "Semaphore.openOrCreateSync",
    "Semaphore.unlink",
    "Semaphore.init",
    "Semaphore.at",
    ...[
      "closed",
      "created",
      "name",
      "value",
      "unsafePointer",
      "post",
      "tryWait",
      "wait",
      "waitSync",
      "acquire",
      "close",
      "[Symbol.dispose]",
    ].map((member) => `Semaphore.prototype.${member}`),
  ],
  properties(): Property[] {
    const otherSemaphore = Semaphore.create(uniqueName("prop-sem-other"), { value: 1 });
    useOtherHandle(() => Object.create(otherSemaphore));
    closeOther = () => otherSemaphore.close();
    return [
      constructorProperty("Semaphore", Semaphore),
      {
        name: "Semaphore.create() makes a named semaphore or refuses its name and options",
        covers: ["Semaphore.create"],
        runs: 3000,
        args: [
          orGenerated(name),
          options({ value, mode: fc.constantFrom(0o600, 0o644), persist: fc.boolean() }),
        ],
        resolve: resolveSemaphore,
        call: ([semaphoreName, opts], c) => {
          const made = Semaphore.create(semaphoreName as never, opts as never);
          // A valid name among the hostile ones ("/🙂") with persist: true is kept by design.
          c.defer(() => {
            try {
              Semaphore.unlink(made.name!); // the one given, or the one generated
            } catch {
              // not persisted: closing removed it
            }
          });
          return made;
        },
      },
      {
        name: "Semaphore.open() opens an existing semaphore or refuses",
        covers: ["Semaphore.open"],
        runs: 2000,
        args: [name],
        resolve: resolveSemaphore,
        call: ([semaphoreName]) => Semaphore.open(semaphoreName as never),
      },
      {
        name:
          "Semaphore.openOrCreate() and openOrCreateSync() open or create a semaphore, or refuse",
        covers: ["Semaphore.openOrCreate", "Semaphore.openOrCreateSync"],
        runs: 800,
        stallMs: 500,
        args: [
          name,
          options({
            value,
            mode: fc.constantFrom(0o600, 0o644),
            persist: fc.boolean(),
            timeout: fc.constantFrom(0, 20, -1, NaN, "1"),
          }),
          fc.boolean(),
        ],
        resolve: resolveSemaphore,
        call: async ([semaphoreName, opts, sync], c) => {
          const made = sync
            ? Semaphore.openOrCreateSync(semaphoreName as never, withSyncTimeout(opts) as never)
            : await Semaphore.openOrCreate(semaphoreName as never, withTimeout(opts) as never);
          if (made.created) {
            c.defer(() => {
              try {
                Semaphore.unlink(semaphoreName as never);
              } catch {
                // not persisted: closing removed it
              }
            });
          }
          return made;
        },
      },
      {
        name: "Semaphore.unlink() removes a name or refuses it",
        covers: ["Semaphore.unlink"],
        runs: 2000,
        args: [name],
        resolve: resolveSemaphore,
        call: ([semaphoreName]) => Semaphore.unlink(semaphoreName as never),
      },
      {
        name: "Semaphore.init() places a semaphore inside shared memory or refuses the place",
        covers: ["Semaphore.init"],
        runs: 3000,
        args: [memory, offset, options({ value })],
        resolve: resolveSemaphore,
        call: ([where, at, opts]) => {
          const semaphore = Semaphore.init(where as never, at as never, opts as never);
          semaphore.post();
          semaphore.tryWait();
          return semaphore;
        },
      },
      {
        name: "Semaphore.at() opens a placed semaphore or refuses the place",
        covers: ["Semaphore.at"],
        runs: 2000,
        args: [memory, offset],
        resolve: resolveSemaphore,
        call: ([where, at]) => {
          const semaphore = Semaphore.at(where as never, at as never);
          semaphore.post();
          return semaphore;
        },
      },
      ...memberProperties<Semaphore>({
        name: "Semaphore",
        cls: Semaphore,
        // Value 1: a sync wait returns at once (a blocking one could not be ended).
        make: () => Semaphore.create(uniqueName("prop-sem"), { value: 1 }),
        members: {
          closed: {},
          created: {},
          name: {},
          value: {},
          unsafePointer: {},
          post: {},
          tryWait: {},
          wait: { args: [waitOptions()], runs: 1500 },
          waitSync: {
            args: [options({ timeout: fc.constantFrom(0, 10, Infinity, 2 ** 31, 3e9) })],
            runs: 1500,
          },
          acquire: {
            args: [waitOptions()],
            runs: 1000,
            call: async (semaphore, [opts]) => {
              const permit = await Semaphore.prototype.acquire.call(semaphore, opts as never);
              permit.release();
              permit[Symbol.dispose]();
            },
          },
          close: {},
          "[Symbol.dispose]": {},
        },
      }),
      {
        name: "a wait on a semaphore at 0 ends by its timeout, signal or close",
        covers: [],
        runs: 100,
        args: [waitOptions(), either(fc.constant(0))],
        call: (args, c) => {
          const semaphore = Semaphore.create(uniqueName("prop-sem-zero"));
          c.defer(() => semaphore.close());
          c.onStall(() => semaphore.close());
          return semaphore.wait(args[0] as never);
        },
      },
    ];
  },
  teardown() {
    closeOther?.();
  },
};

let closeOther: (() => void) | undefined;
