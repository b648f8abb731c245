/**
 * Properties of @posix/ipc/map: maps created, opened and adopted with hostile names, shapes
 * (capacity 0, NaN, 2^32, sizes past 2 GiB), codecs, whenFull values (prototype keys are none)
 * and descriptors; every member on live, closed and wrong receivers with hostile keys (lone
 * surrogates, keys over maxKeyBytes, prototype names) and values (over maxValueBytes, of the
 * wrong type), for the sync writes and their async forms (with `{ timeout, signal }`); and a
 * model check: any sequence of operations, sync or async, leaves the map as a JS Map.
 *
 * @module
 */

import { codecs, SharedMap } from "../../mod.ts";
import { uniqueName } from "../helpers.ts";
import {
  anyTimeout,
  either,
  fc,
  hostile,
  options,
  orGenerated,
  PROTOTYPE_KEYS,
  type Ref,
  ref,
  waitOptions,
  withSyncTimeout,
  withTimeout,
} from "./arbitraries.ts";
import { ringCodec as codec } from "./rings.ts";
import { FdWatch, notAnFd, sacrificialFd, wrappedFd } from "./fds.ts";
import type { Case, Property, PropertyGroup } from "./harness.ts";
import { constructorProperty, memberProperties, useOtherHandle } from "./members.ts";

let watch: FdWatch;

/** Keys: ordinary, prototype names, lone surrogates, and too long for maxKeyBytes (64). */
const key = either(
  fc.oneof(
    fc.string({ maxLength: 16 }),
    fc.constantFrom(...PROTOTYPE_KEYS, "", "\ud800", "a\udc00b", "\ud83d", "🔑".repeat(16)),
    fc.string({ minLength: 60, maxLength: 80 }),
    fc.constant("k".repeat(1 << 20)),
  ),
  3,
);

/** Values for the bytes codec: fitting, over maxValueBytes (256), and hostile. */
const value = either(
  fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ minLength: 250, maxLength: 300 })),
  3,
);

const writeOptions = options({ timeout: anyTimeout });
/** The async writes' `{ timeout, signal }`. */
const asyncWriteOptions = either(waitOptions(), 3);
/** update's functions: a value, a deletion, and hostile ones. */
const change = either(fc.constantFrom(() => new Uint8Array([7]), () => undefined), 3);

function resolveMap(marker: Ref, c: Case): unknown {
  if (marker.kind === "name") {
    const fresh = uniqueName("prop-map");
    if (marker.detail === "existing") {
      const existing = SharedMap.create({ name: fresh, capacity: 4 });
      c.defer(() => existing.close());
    }
    return fresh;
  }
  if (marker.kind === "map") {
    const map = SharedMap.create({ capacity: 4 });
    c.defer(() => map.close());
    return map;
  }
  return watch.resolve(marker, c);
}

/** A live map with an entry, and room for more. */
function ready(c: Case): SharedMap {
  const map = SharedMap.create({ capacity: 8 });
  map.set("a", new Uint8Array([1, 2, 3]));
  c.defer(() => map.close());
  return map;
}

/** One operation of the model check. */
const operation = fc.tuple(
  fc.constantFrom("set", "delete", "update", "get", "clear"),
  fc.constantFrom("a", "b", "c", "d", "e", "__proto__", "constructor", "toString", ""),
  fc.integer({ min: 0, max: 1000 }),
  fc.boolean(), // the async form
);

export const group: PropertyGroup = {
  scale: 0.5,
  covers: [
    "new SharedMap",
    "SharedMap.create",
    "SharedMap.open",
    "SharedMap.openOrCreate",
    "SharedMap.openOrCreateSync",
    "SharedMap.fromFd",
    ...[
      "size",
      "capacity",
      "maxKeyBytes",
      "maxValueBytes",
      "whenFull",
      "name",
      "fd",
      "closed",
      "created",
      "get",
      "has",
      "set",
      "delete",
      "update",
      "clear",
      "setAsync",
      "deleteAsync",
      "updateAsync",
      "clearAsync",
      "entries",
      "keys",
      "values",
      "[Symbol.iterator]",
      "close",
      "[Symbol.dispose]",
    ].map((member) => `SharedMap.prototype.${member}`),
  ],
  properties(): Property[] {
    watch = new FdWatch();
    const other = SharedMap.create({ capacity: 4 });
    useOtherHandle(() => Object.create(other));
    closeOther = () => other.close();
    return [
      constructorProperty("SharedMap", SharedMap),
      {
        name: "SharedMap.create() makes a map or refuses its options (prototype keys are none)",
        covers: ["SharedMap.create"],
        runs: 1500,
        args: [
          options({
            name: orGenerated(fc.oneof(ref("name", "fresh"), ref("name", "existing"))),
            capacity: fc.constantFrom(0, 1, 4, 100, NaN, 2 ** 24, 2 ** 24 + 1, 2 ** 32, 1.5),
            maxKeyBytes: fc.constantFrom(0, 1, 64, 65536, 65537, -1),
            maxValueBytes: fc.constantFrom(0, 1, 256, 2 ** 26, 2 ** 26 + 1),
            codec,
            whenFull: fc.constantFrom("error", "evict-lru", "toString", "lru"),
            persist: fc.constant(false),
            mode: fc.constantFrom(0o600, 0o644),
          }),
        ],
        resolve: resolveMap,
        call: ([opts], c) => {
          const map = SharedMap.create(opts as never);
          c.removeKept(map.name);
          return map;
        },
      },
      {
        name: "SharedMap.open() opens a named map or refuses its name and options",
        covers: ["SharedMap.open"],
        runs: 1000,
        args: [
          fc.oneof(
            { weight: 2, arbitrary: ref("name", "fresh") },
            { weight: 3, arbitrary: ref("name", "existing") },
            { weight: 3, arbitrary: hostile },
          ),
          options({ codec }),
        ],
        resolve: resolveMap,
        call: ([name, opts]) => SharedMap.open(name as never, opts as never),
      },
      {
        name: "SharedMap.openOrCreate() and openOrCreateSync() open or create a map, or refuse",
        covers: ["SharedMap.openOrCreate", "SharedMap.openOrCreateSync"],
        runs: 800,
        stallMs: 500,
        args: [
          fc.oneof(
            { weight: 2, arbitrary: ref("name", "fresh") },
            { weight: 3, arbitrary: ref("name", "existing") },
            { weight: 3, arbitrary: hostile },
          ),
          options({
            capacity: fc.constantFrom(0, 4, 2 ** 24 + 1),
            maxValueBytes: fc.constantFrom(0, 256),
            codec,
            persist: fc.constant(false),
            mode: fc.constantFrom(0o600, 0),
            init: fc.constantFrom(undefined, () => {}, "x", async () => {}),
            timeout: fc.constantFrom(0, 20, -1, NaN, "1"),
          }),
          fc.boolean(),
        ],
        resolve: resolveMap,
        call: async ([mapName, opts, sync]) =>
          sync
            ? SharedMap.openOrCreateSync(mapName as never, withSyncTimeout(opts) as never)
            : await SharedMap.openOrCreate(mapName as never, withTimeout(opts) as never),
      },
      {
        name: "SharedMap.fromFd() adopts only a map's descriptor, never a wrapped one",
        covers: ["SharedMap.fromFd"],
        runs: 1000,
        args: [
          fc.oneof(ref("map"), sacrificialFd, wrappedFd, ref("owned-fd"), notAnFd),
          options({ codec }),
        ],
        resolve: resolveMap,
        call: ([fd, opts]) => SharedMap.fromFd(fd as never, opts as never),
        after: () => watch.assertUntouched(),
      },
      ...memberProperties<SharedMap>({
        name: "SharedMap",
        cls: SharedMap,
        make: ready,
        members: {
          size: {},
          capacity: {},
          maxKeyBytes: {},
          maxValueBytes: {},
          whenFull: {},
          name: {},
          fd: {},
          closed: {},
          created: {},
          get: { args: [key], runs: 1500 },
          has: { args: [key], runs: 1000 },
          set: { args: [key, value, writeOptions], runs: 1500 },
          delete: { args: [key, writeOptions], runs: 1000 },
          update: { args: [key, change, writeOptions], runs: 1000 },
          clear: { args: [writeOptions] },
          setAsync: { args: [key, value, asyncWriteOptions], runs: 1000 },
          deleteAsync: { args: [key, asyncWriteOptions], runs: 600 },
          updateAsync: { args: [key, change, asyncWriteOptions], runs: 600 },
          clearAsync: { args: [asyncWriteOptions] },
          entries: {},
          keys: {},
          values: {},
          "[Symbol.iterator]": {},
          close: {},
          "[Symbol.dispose]": {},
        },
      }),
      {
        name:
          "any sequence of set, delete, update, get and clear, sync or async, leaves the map as a JS Map",
        covers: [],
        runs: 300,
        args: [fc.array(operation, { maxLength: 60 }), fc.constantFrom("error", "evict-lru")],
        call: async ([ops, whenFull], c) => {
          const map = SharedMap.create<unknown>({
            codec: codecs.json,
            capacity: 4,
            whenFull: whenFull as "error",
          });
          c.defer(() => map.close());
          const model = new Map<string, number>();
          const order: string[] = []; // keys by last write, oldest first
          const wrote = (k: string) => {
            order.splice(order.indexOf(k) >>> 0, order.includes(k) ? 1 : 0);
            order.push(k);
          };
          for (const [op, k, v, async] of ops as [string, string, number, boolean][]) {
            if (op === "get") {
              if (map.get(k) !== model.get(k)) throw new Error(`get ${k}: not the model's`);
              continue;
            }
            if (op === "clear") {
              if (async) await map.clearAsync();
              else map.clear();
              model.clear();
              order.length = 0;
              continue;
            }
            if (op === "delete") {
              const deleted = async ? await map.deleteAsync(k) : map.delete(k);
              if (deleted !== model.delete(k)) throw new Error(`delete ${k} disagrees`);
              order.splice(order.indexOf(k) >>> 0, order.includes(k) ? 1 : 0);
              continue;
            }
            const full = !model.has(k) && model.size === 4;
            if (full && whenFull === "error") {
              try {
                if (async) await map.setAsync(k, v);
                else map.set(k, v);
              } catch (error) {
                if ((error as { code?: string }).code === "ENOSPC") continue;
                throw error;
              }
              throw new Error("a full map took a new key");
            }
            if (full) model.delete(order.shift()!);
            if (op === "set") {
              if (async) await map.setAsync(k, v, { timeout: 1000 });
              else map.set(k, v);
            } else if (async) await map.updateAsync(k, () => v);
            else map.update(k, () => v);
            model.set(k, v);
            wrote(k);
          }
          const entries = new Map([...map] as [string, number][]);
          if (entries.size !== model.size || map.size !== model.size) {
            throw new Error(`size ${map.size}, ${entries.size} entries, model ${model.size}`);
          }
          for (const [k, v] of model) {
            if (entries.get(k) !== v) throw new Error(`entry ${k} is not the model's`);
          }
        },
      },
    ];
  },
  teardown() {
    closeOther?.();
    watch.close();
  },
};

let closeOther: (() => void) | undefined;
