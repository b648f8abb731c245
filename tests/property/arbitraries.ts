/**
 * The shared arbitraries of the property suite: hostile values for every kind of argument (C
 * type edges, NaN, ±Infinity, -0, BigInt, strings, objects with valueOf/toString, prototype
 * keys, NUL, names of 300 bytes, arrays, null/undefined, symbols) and markers for what only
 * the running case can make (fresh names, live or closed handles, descriptors it owns), which
 * {@linkcode resolve} turns into real values just before the call.
 *
 * @module
 */

import fc from "npm:fast-check@3.23.2";

export { fc };

/** Thrown by the hostile objects whose valueOf/toString/getters throw: users' own errors. */
export class HostileError extends Error {
  override name = "HostileError";
}

/**
 * Stands for a value only the running case can make: `new Ref("fresh-name")`, `new
 * Ref("closed", "SharedMemory")`. Each property's resolver turns it into the value.
 */
export class Ref {
  constructor(readonly kind: string, readonly detail = "") {}
  /** How fast-check prints a counterexample. */
  toString(): string {
    return `‹${this.kind}${this.detail ? ` ${this.detail}` : ""}›`;
  }
}

/** A marker arbitrary. */
export function ref(kind: string, detail = ""): fc.Arbitrary<Ref> {
  return fc.constant(new Ref(kind, detail));
}

/** Objects made by this file's arbitraries that {@linkcode resolve} must not walk into. */
const exotic = new WeakSet<object>();
function mark<T extends object>(value: T): T {
  exotic.add(value);
  return value;
}

/** Numbers at the edges of C types and JavaScript's number line. */
export const NUMBER_EDGES: readonly number[] = [
  0,
  -0,
  1,
  -1,
  2,
  3,
  7,
  0.5,
  1.5,
  -1.5,
  1e-9,
  255,
  256,
  4095,
  4096,
  65535,
  65536,
  2 ** 31 - 1,
  2 ** 31,
  -(2 ** 31),
  -(2 ** 31) - 1,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 32 + 1,
  2 ** 32 + 3,
  -(2 ** 32),
  3e9,
  1e15,
  2 ** 53 - 1,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 53),
  2 ** 63,
  -(2 ** 63),
  2 ** 64,
  2 ** 64 - 2048,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  Number.EPSILON,
  NaN,
  Infinity,
  -Infinity,
];

/** BigInts at the same edges: a number argument must refuse them with a TypeError. */
export const BIGINT_EDGES: readonly bigint[] = [
  0n,
  1n,
  -1n,
  3n,
  2n ** 31n,
  2n ** 32n - 1n,
  2n ** 32n,
  2n ** 63n,
  2n ** 64n,
  -(2n ** 63n),
];

/** The keys every object inherits: an option value equal to one must not pass as valid. */
export const PROTOTYPE_KEYS: readonly string[] = [
  "toString",
  "__proto__",
  "constructor",
  "hasOwnProperty",
  "valueOf",
  "isPrototypeOf",
  "propertyIsEnumerable",
  "toLocaleString",
  "__defineGetter__",
];

/** Strings that are numbers, names that break every rule, and text that is hard to encode. */
export const STRING_EDGES: readonly string[] = [
  "",
  "0",
  "1",
  "-1",
  "7",
  "4294967295",
  "0x10",
  " 3 ",
  "1e3",
  "NaN",
  "Infinity",
  "true",
  "\0",
  "/\0x",
  "/a\0b",
  "/",
  "/.",
  "/..",
  "//x",
  "/a/b",
  "no-slash",
  "/" + "x".repeat(254),
  "/" + "x".repeat(255),
  "/" + "x".repeat(300),
  "x".repeat(300),
  "/" + "é".repeat(150),
  "/\u{1F642}",
  "/\uD800",
  "SIGTERM",
  "SIGKILL",
  "sigterm",
  "SIGTERM ",
  "SIGRTMIN+1",
  "SIGRTMAX-100",
  "SIGFOO",
  "read",
  "write",
  "send",
  "receive",
  "both",
  "normal",
  "random",
  "willneed",
  "inherit",
  "piped",
  "null",
  "all",
  "/dev/null",
  "/proc/self/mem",
  "/tmp",
  "--allow-all",
  "-h",
  ...PROTOTYPE_KEYS,
];

/** Objects that pretend to be numbers or strings, or are the wrong kind of object. */
function hostileObjects(): unknown[] {
  const throwing = mark({
    valueOf(): never {
      throw new HostileError("valueOf was called");
    },
    toString(): never {
      throw new HostileError("toString was called");
    },
  });
  const trap = mark(
    new Proxy({}, {
      get(_target, key) {
        if (key === Symbol.toPrimitive || key === "then") return undefined;
        throw new HostileError(`getter ${String(key)} was called`);
      },
    }),
  );
  // Byte arrays that lie about themselves: their lengths must never reach libc or a copy into
  // shared memory (tests/attack_bytes_test.ts).
  class LongLiar extends Uint8Array {
    override get length(): number {
      return 1 << 20;
    }
  }
  class ShortLiar extends Uint8Array {
    override get length(): number {
      return 1;
    }
  }
  const ownLiar = new Uint8Array(16);
  Object.defineProperty(ownLiar, "length", { get: () => 1 << 20 });
  const transferred = new Uint8Array(64);
  void transferred.buffer.transfer();
  return [
    mark(new LongLiar(16)),
    mark(new ShortLiar(1 << 16)),
    mark(ownLiar),
    mark(transferred),
    mark(Object.setPrototypeOf({ length: 64 }, Uint8Array.prototype)),
    mark({}),
    mark([]),
    mark([1]),
    mark([1, 2, 3]),
    mark(["/a"]),
    mark(Object.create(null)),
    mark({ valueOf: () => 7 }),
    mark({ valueOf: () => 2 ** 32 + 1 }),
    mark({ toString: () => "/x" }),
    mark({ [Symbol.toPrimitive]: () => 1 }),
    mark(new Number(5)),
    mark(new String("/x")),
    mark(new Boolean(true)),
    mark(new Date(0)),
    mark(/x/),
    mark(() => 1),
    mark(new Uint8Array(4)),
    mark(new ArrayBuffer(8)),
    mark(new Map([["a", 1]])),
    mark(Promise.resolve(1)),
    mark({ fd: 2 ** 32 + 1 }),
    mark({ fd: -1 }),
    mark({ fd: "3" }),
    mark({ length: 2 ** 32 }),
    mark({ [Symbol.iterator]: () => [][Symbol.iterator]() }),
    throwing,
    trap,
  ];
}

/** Every kind of wrong value, with no marker: what a careless or hostile caller passes. */
export const hostile: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...NUMBER_EDGES) },
  { weight: 2, arbitrary: fc.double() },
  { weight: 2, arbitrary: fc.integer({ min: -(2 ** 31) - 8, max: 2 ** 32 + 8 }) },
  { weight: 2, arbitrary: fc.constantFrom(...BIGINT_EDGES) },
  { weight: 4, arbitrary: fc.constantFrom(...STRING_EDGES) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 3, arbitrary: fc.constantFrom(...hostileObjects()) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(null, undefined, true, false, Symbol("x"), Symbol.iterator),
  },
);

/** A value that is either valid (`valid`) or hostile, half and half unless told. */
export function either<T>(valid: fc.Arbitrary<T>, validWeight = 1): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: validWeight, arbitrary: valid }, { weight: 1, arbitrary: hostile });
}

/**
 * Options whose every field answers its value in `first` at the first read and its value in
 * `later` after; made into such an object by {@linkcode resolve}, once the refs in both are.
 */
export class Shifty {
  constructor(readonly first: Record<string, unknown>, readonly later: Record<string, unknown>) {}
}

/**
 * A plain copy of options that may have shifting getters ({@linkcode Shifty}), each read once:
 * for a property that judges what the options mean and must see what the call saw.
 */
export function settled(opts: unknown): unknown {
  if (typeof opts !== "object" || opts === null || Array.isArray(opts)) return opts;
  return Object.getPrototypeOf(opts) === Object.prototype ? { ...opts } : opts;
}

/**
 * An options object: each field omitted, valid or hostile; sometimes a field named after a
 * prototype key; sometimes not an object at all.
 */
export function options(
  fields: Record<string, fc.Arbitrary<unknown>>,
  validWeight = 2,
): fc.Arbitrary<unknown> {
  const record: Record<string, fc.Arbitrary<unknown>> = {};
  for (const [key, valid] of Object.entries(fields)) record[key] = either(valid, validWeight);
  const object = fc.record(record, { requiredKeys: [] });
  const extra = fc.tuple(object, fc.constantFrom(...PROTOTYPE_KEYS), hostile).map(
    ([value, key, extraValue]) => {
      const copy: Record<string, unknown> = { ...value };
      Object.defineProperty(copy, key, { value: extraValue, enumerable: true });
      return copy;
    },
  );
  // Getters that answer one value at the first read and another after: an option must be read
  // once (a wait that read its timeout again once hung: tests/attack_options_test.ts).
  const shifty = fc.tuple(object, object).map(([first, later]) => new Shifty(first, later));
  return fc.oneof(
    { weight: 8, arbitrary: object },
    { weight: 1, arbitrary: extra },
    { weight: 1, arbitrary: shifty },
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: hostile },
  );
}

/** A timeout worth waiting for: small, so that a wait that is allowed to wait ends soon. */
export const shortTimeout: fc.Arbitrary<number> = fc.constantFrom(0, 1, 5, 20, 0.5, 1e-9);

/**
 * A timeout as a caller could write it: short ones, and the edges (Infinity, 2^31, 3e9, 2^53)
 * that a wait must take in its stride. Only for waits that either return at once or that the
 * harness can end (by aborting or closing).
 */
export const anyTimeout: fc.Arbitrary<number> = fc.constantFrom(
  0,
  1,
  20,
  -0,
  0.5,
  Infinity,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32,
  3e9,
  2 ** 53,
  Number.MAX_VALUE,
);

/** The wait options `{ timeout, signal }`, with signals the harness resolves. */
export function waitOptions(timeout: fc.Arbitrary<number> = anyTimeout): fc.Arbitrary<unknown> {
  return options({
    timeout,
    signal: fc.constantFrom(
      new Ref("signal", "never"),
      new Ref("signal", "aborted"),
      new Ref("signal", "soon"),
    ),
  });
}

/** A plain object or array that an arbitrary of this file built, safe to walk into. */
function isPlain(value: unknown): value is Record<string, unknown> | unknown[] {
  if (value === null || typeof value !== "object" || exotic.has(value)) return false;
  if (Array.isArray(value)) return true;
  return Object.getPrototypeOf(value) === Object.prototype;
}

/**
 * Replaces every {@linkcode Ref} in `value` (also inside plain objects and arrays) with what
 * `make` returns for it; leaves hostile objects untouched.
 */
export function resolve(value: unknown, make: (ref: Ref) => unknown): unknown {
  if (value instanceof Ref) return make(value);
  if (value instanceof Shifty) {
    const first = resolve(value.first, make) as Record<string, unknown>;
    const later = resolve(value.later, make) as Record<string, unknown>;
    const shifting: Record<string, unknown> = {};
    for (const key of new Set([...Object.keys(first), ...Object.keys(later)])) {
      let reads = 0;
      Object.defineProperty(shifting, key, {
        get: () => (reads++ === 0 ? first : later)[key],
        enumerable: true,
      });
    }
    return shifting;
  }
  if (!isPlain(value)) return value;
  if (Array.isArray(value)) return value.map((item) => resolve(item, make));
  const copy: Record<string, unknown> = {};
  for (const key of Reflect.ownKeys(value)) {
    const descriptor = Object.getOwnPropertyDescriptor(value, key)!;
    Object.defineProperty(copy, key, {
      ...descriptor,
      value: resolve(descriptor.value, make),
    });
  }
  return copy;
}

/**
 * The options of an `openOrCreate` with a short `timeout` unless they set one: an existing
 * object still at mode 0, or a System V set never stamped by a semop, would otherwise hold the
 * call for the default 5 s.
 */
export function withTimeout(opts: unknown): unknown {
  if (opts === undefined) return { timeout: 20 };
  if (typeof opts !== "object" || opts === null || Array.isArray(opts)) return opts;
  return Object.hasOwn(opts, "timeout") ? opts : { ...opts, timeout: 20 };
}

/**
 * {@linkcode withTimeout} for the `openOrCreateSync` forms, whose wait nothing can end but its
 * timeout: a plain numeric timeout over 50 ms (`Infinity` included) becomes 20 ms. Hostile
 * types (NaN, "1", -1) stay, to be refused.
 */
export function withSyncTimeout(opts: unknown): unknown {
  const given = withTimeout(opts);
  if (typeof given !== "object" || given === null || Array.isArray(given)) return given;
  const timeout = Object.getOwnPropertyDescriptor(given, "timeout");
  const long = timeout !== undefined && "value" in timeout && typeof timeout.value === "number" &&
    timeout.value > 50;
  return long ? { ...given, timeout: 20 } : given;
}

/** A generated-name request (`null`) now and then, among the names of a `create`. */
export function orGenerated(names: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: 1, arbitrary: fc.constant(null) }, { weight: 6, arbitrary: names });
}
