import assert from "node:assert/strict";
const EBADF = 9;
import { guardSymbols, integerParameters, isGuarded } from "../ffi/guard.ts";
import { errno, libc } from "../ffi/libc.ts";
import { symbols } from "../ffi/symbols.ts";

type Definition = { parameters?: readonly string[]; nonblocking?: boolean };
const table = symbols as unknown as Record<string, Definition>;

/** The range of each C integer type, by its width and sign: the oracle the guard must match. */
function fits(value: unknown, type: string): boolean {
  const bits = Number(type.slice(1)) || 64; // isize, usize: 64 on LP64
  const signed = type.startsWith("i");
  const min = signed ? -(2n ** BigInt(bits - 1)) : 0n;
  const max = signed ? 2n ** BigInt(bits - 1) - 1n : 2n ** BigInt(bits) - 1n;
  if (typeof value === "bigint") return bits === 64 && value >= min && value <= max;
  if (typeof value !== "number" || !Number.isInteger(value)) return false;
  if (bits === 64 && !Number.isSafeInteger(value)) return false;
  return BigInt(value) >= min && BigInt(value) <= max;
}

/** Hostile and edge values for every integer type. */
const CANDIDATES: unknown[] = [
  0,
  -0,
  1,
  -1,
  127,
  128,
  -129,
  255,
  256,
  32767,
  32768,
  -32769,
  65535,
  65536,
  2 ** 31 - 1,
  2 ** 31,
  -(2 ** 31),
  -(2 ** 31) - 1,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 32 + 5,
  2 ** 53 - 1,
  2 ** 53,
  -(2 ** 53),
  2 ** 64,
  NaN,
  Infinity,
  -Infinity,
  1.5,
  -0.5,
  0n,
  -1n,
  2n ** 31n,
  2n ** 63n - 1n,
  2n ** 63n,
  -(2n ** 63n),
  -(2n ** 63n) - 1n,
  2n ** 64n - 1n,
  2n ** 64n,
  "1",
  null,
  undefined,
  true,
  { valueOf: () => 1 },
  [1],
  Symbol("x"),
];

/** A harmless value for a parameter of `type`, so that only the one under test is bad. */
function placeholder(type: string): unknown {
  if (type === "buffer") return new Uint8Array(8);
  if (type === "pointer" || type === "function") return null;
  if (type === "bool") return false;
  if (type === "f32" || type === "f64") return 0;
  return 0;
}

Deno.test("every integer parameter of every symbol is checked against its C type before libc", () => {
  const calls: { name: string; args: unknown[] }[] = [];
  const raw: Record<string, unknown> = {};
  for (const [name, definition] of Object.entries(table)) {
    raw[name] = definition.parameters
      ? (...args: unknown[]) => {
        calls.push({ name, args });
        return definition.nonblocking ? Promise.resolve(0) : 0;
      }
      : null; // a static such as environ
  }
  const guarded = guardSymbols(symbols, raw as never) as unknown as Record<
    string,
    (...args: unknown[]) => unknown
  >;
  let checked = 0;
  for (const [name, definition] of Object.entries(table)) {
    const parameters = definition.parameters ?? [];
    for (const { position, type } of integerParameters(definition)) {
      for (const value of CANDIDATES) {
        const args = parameters.map(placeholder);
        args[position] = value;
        calls.length = 0;
        const label = `${name} argument ${position + 1} (${type}) = ${String(value)}`;
        if (fits(value, type)) {
          guarded[name]!(...args);
          assert.equal(calls.length, 1, `${label} should reach libc`);
          assert.equal(calls[0]!.args[position], value, `${label} reaches libc unchanged`);
        } else {
          assert.throws(
            () => guarded[name]!(...args),
            (error: unknown) =>
              (error instanceof RangeError || error instanceof TypeError) &&
              error.message.includes(`${name}()`) &&
              error.message.includes(`argument ${position + 1} (${type})`),
            `${label} must throw`,
          );
          assert.equal(calls.length, 0, `${label} must not reach libc`);
          checked++;
        }
      }
    }
  }
  assert.ok(checked > 1000, `only ${checked} bad calls tried`);
});

Deno.test("the required edge values are refused for each type that cannot hold them", () => {
  const edges = [2 ** 31, -(2 ** 31) - 1, 2 ** 32, 2 ** 53, NaN, Infinity, 1.5];
  const guarded = guardSymbols({ f: { parameters: ["i32", "u32", "u64"], result: "i32" } }, {
    f: () => 0,
  } as never) as unknown as { f: (...args: unknown[]) => unknown };
  for (const value of edges) assert.throws(() => guarded.f(value, 0, 0), RangeError);
  for (const value of [...edges.filter((v) => v !== 2 ** 31), -1]) {
    assert.throws(() => guarded.f(0, value, 0), RangeError);
  }
  for (const value of [2 ** 53, NaN, Infinity, 1.5, -1, -1n, 2n ** 64n]) {
    assert.throws(() => guarded.f(0, 0, value), RangeError);
  }
  assert.equal(guarded.f(-(2 ** 31), 2 ** 32 - 1, 2n ** 64n - 1n), 0);
});

Deno.test("libc() hands out the guarded function of every symbol with an integer parameter", () => {
  const c = libc() as unknown as Record<string, unknown>;
  for (const [name, definition] of Object.entries(table)) {
    const hasInteger = integerParameters(definition).length > 0;
    assert.equal(isGuarded(c[name]), hasInteger, name);
  }
  assert.ok(Object.isFrozen(libc()));
  assert.throws(() => libc().close(2 ** 32 + 1), RangeError, "close()");
  assert.throws(() => libc().kill(2 ** 32 - 1, 0), RangeError, "kill()");
});

Deno.test("a nonblocking symbol's Promise comes back unchanged", () => {
  const promise = Promise.resolve(7);
  const guarded = guardSymbols(
    { p: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true } },
    { p: () => promise } as never,
  ) as unknown as { p: (...args: unknown[]) => unknown };
  assert.equal(guarded.p(new Uint8Array(8), 1n, 0), promise);
  assert.throws(() => guarded.p(new Uint8Array(8), 1n, 2 ** 31), RangeError);
});

Deno.test("errno read right after a guarded call is that call's", () => {
  assert.equal(libc().close(-1), -1);
  assert.equal(errno(), EBADF);
});

Deno.test("no file under src/ calls Deno.dlopen or imports ffi/symbols.ts: all goes through libc()", () => {
  const root = new URL("../src/", import.meta.url);
  const offenders: string[] = [];
  const walk = (dir: URL) => {
    for (const entry of Deno.readDirSync(dir)) {
      const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
      if (entry.isDirectory) walk(url);
      else if (entry.name.endsWith(".ts")) {
        const text = Deno.readTextFileSync(url);
        if (/\bdlopen\b/.test(text)) offenders.push(`${url.pathname}: dlopen`);
        if (/from\s+["'][^"']*ffi\/symbols\.ts["']/.test(text)) {
          offenders.push(`${url.pathname}: imports ffi/symbols.ts`);
        }
        if (/import\(\s*["'][^"']*symbols\.ts/.test(text)) {
          offenders.push(`${url.pathname}: imports ffi/symbols.ts dynamically`);
        }
      }
    }
  };
  walk(root);
  assert.deepEqual(offenders, []);
  // and in ffi/, only libc.ts opens the library, through the guard
  const libcSource = Deno.readTextFileSync(new URL("../ffi/libc.ts", import.meta.url));
  assert.match(libcSource, /return guardSymbols\(symbols, raw\)/);
  for (const entry of Deno.readDirSync(new URL("../ffi/", import.meta.url))) {
    if (entry.name === "libc.ts" || !entry.name.endsWith(".ts")) continue;
    const text = Deno.readTextFileSync(new URL(`../ffi/${entry.name}`, import.meta.url));
    assert.doesNotMatch(text, /Deno\.dlopen\(/, entry.name);
  }
});
