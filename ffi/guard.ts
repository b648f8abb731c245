/**
 * The C-type layer at the FFI boundary: every integer argument of every libc symbol is checked
 * against its C type before the call.
 *
 * `Deno.dlopen` converts a JavaScript number to a C integer, and once V8 optimizes a call site
 * it wraps an out-of-range value (2^32 - 1 becomes -1) instead of throwing: `kill(2 ** 32 - 1)`
 * would become `kill(-1)`. {@linkcode guardSymbols} wraps each symbol that has an integer
 * parameter in a function that checks every such argument first and throws a `RangeError`
 * (a `TypeError` for a value of the wrong type) naming the symbol and the argument. The
 * wrappers are built once, from the parameter lists of the symbol table, one shape per arity
 * so that V8 inlines them; they call the real function right after the checks and return its
 * result unchanged (a `nonblocking` symbol's Promise too), so errno read right after still
 * belongs to the call. Symbols without an integer parameter are left as they are.
 *
 * What a value means (a pid > 0, an fd from 0) is checked above this layer, in src/; this one
 * is the last line: no number reaches libc that the C type cannot hold.
 *
 * Internal: nothing outside `src/` imports this.
 *
 * @module
 */

import { describe } from "./describe.ts";

/** The integer types of `Deno.dlopen`, which this layer checks. */
export type IntegerType =
  | "i8"
  | "u8"
  | "i16"
  | "u16"
  | "i32"
  | "u32"
  | "i64"
  | "u64"
  | "isize"
  | "usize";

/** What a C integer type accepts. */
interface IntegerRule {
  /** The type's name, for messages. */
  readonly type: IntegerType;
  /** The smallest and largest number accepted (for 64-bit types, safe integers only). */
  readonly min: number;
  readonly max: number;
  /** For 64-bit types, the range of a bigint; `null` where a bigint is refused. */
  readonly bigMin: bigint | null;
  readonly bigMax: bigint | null;
}

function narrow(type: IntegerType, bits: number, signed: boolean): IntegerRule {
  const min = signed ? -(2 ** (bits - 1)) : 0;
  const max = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
  return { type, min, max, bigMin: null, bigMax: null };
}

function wide(type: IntegerType, signed: boolean): IntegerRule {
  return {
    type,
    min: signed ? Number.MIN_SAFE_INTEGER : 0,
    max: Number.MAX_SAFE_INTEGER,
    bigMin: signed ? -(2n ** 63n) : 0n,
    bigMax: signed ? 2n ** 63n - 1n : 2n ** 64n - 1n,
  };
}

/** The rule of each integer type, for LP64 Linux (isize/usize are 64 bits). */
export const INTEGER_RULES: Readonly<Record<IntegerType, IntegerRule>> = {
  i8: narrow("i8", 8, true),
  u8: narrow("u8", 8, false),
  i16: narrow("i16", 16, true),
  u16: narrow("u16", 16, false),
  i32: narrow("i32", 32, true),
  u32: narrow("u32", 32, false),
  i64: wide("i64", true),
  u64: wide("u64", false),
  isize: wide("isize", true),
  usize: wide("usize", false),
};

/** Whether `type`, a parameter type of `Deno.dlopen`, is an integer type this layer checks. */
export function isIntegerType(type: unknown): type is IntegerType {
  return typeof type === "string" && Object.hasOwn(INTEGER_RULES, type);
}

/**
 * Throws unless `value` fits the C integer type of `rule`. One function for every type and
 * every symbol, so that each call site of it stays monomorphic and V8 inlines it; the common
 * case (a number in range) costs two comparisons and an integer test.
 */
function checkArgument(value: unknown, rule: IntegerRule, symbol: string, position: number): void {
  if (typeof value === "number") {
    if (value >= rule.min && value <= rule.max && Number.isInteger(value)) return;
  } else if (typeof value === "bigint" && rule.bigMin !== null) {
    if (value >= rule.bigMin && value <= rule.bigMax!) return;
  }
  throw argumentError(value, rule, symbol, position);
}

/** The error for an argument that does not fit; kept out of the hot function. */
function argumentError(
  value: unknown,
  rule: IntegerRule,
  symbol: string,
  position: number,
): TypeError | RangeError {
  const where = `Cannot call ${symbol}(): argument ${position + 1} (${rule.type})`;
  const wideType = rule.bigMin !== null;
  if (typeof value !== "number" && (typeof value !== "bigint" || !wideType)) {
    return new TypeError(
      `${where} must be ${wideType ? "a number or a bigint" : "a number"}, not ${describe(value)}`,
    );
  }
  const range = wideType
    ? `an integer from ${rule.min} to ${rule.max}, or a bigint from ${rule.bigMin} to ${rule.bigMax}`
    : `an integer from ${rule.min} to ${rule.max}`;
  return new RangeError(`${where} is ${describe(value)}: it must be ${range}`);
}

// deno-lint-ignore no-explicit-any
type AnyFunction = (...args: any[]) => any;
type Rules = readonly (IntegerRule | null)[];

/**
 * Wraps `fn` so that it checks its integer arguments first. One wrapper shape per arity, with
 * the arguments spelled out: no rest parameters and no `apply` on the way to libc.
 */
function wrap(fn: AnyFunction, symbol: string, rules: Rules): AnyFunction {
  const [r0, r1, r2, r3, r4, r5] = rules;
  switch (rules.length) {
    case 1:
      return (a: unknown) => {
        if (r0) checkArgument(a, r0, symbol, 0);
        return fn(a);
      };
    case 2:
      return (a: unknown, b: unknown) => {
        if (r0) checkArgument(a, r0, symbol, 0);
        if (r1) checkArgument(b, r1, symbol, 1);
        return fn(a, b);
      };
    case 3:
      return (a: unknown, b: unknown, c: unknown) => {
        if (r0) checkArgument(a, r0, symbol, 0);
        if (r1) checkArgument(b, r1, symbol, 1);
        if (r2) checkArgument(c, r2, symbol, 2);
        return fn(a, b, c);
      };
    case 4:
      return (a: unknown, b: unknown, c: unknown, d: unknown) => {
        if (r0) checkArgument(a, r0, symbol, 0);
        if (r1) checkArgument(b, r1, symbol, 1);
        if (r2) checkArgument(c, r2, symbol, 2);
        if (r3) checkArgument(d, r3, symbol, 3);
        return fn(a, b, c, d);
      };
    case 5:
      return (a: unknown, b: unknown, c: unknown, d: unknown, e: unknown) => {
        if (r0) checkArgument(a, r0, symbol, 0);
        if (r1) checkArgument(b, r1, symbol, 1);
        if (r2) checkArgument(c, r2, symbol, 2);
        if (r3) checkArgument(d, r3, symbol, 3);
        if (r4) checkArgument(e, r4, symbol, 4);
        return fn(a, b, c, d, e);
      };
    case 6:
      return (a: unknown, b: unknown, c: unknown, d: unknown, e: unknown, f: unknown) => {
        if (r0) checkArgument(a, r0, symbol, 0);
        if (r1) checkArgument(b, r1, symbol, 1);
        if (r2) checkArgument(c, r2, symbol, 2);
        if (r3) checkArgument(d, r3, symbol, 3);
        if (r4) checkArgument(e, r4, symbol, 4);
        if (r5) checkArgument(f, r5, symbol, 5);
        return fn(a, b, c, d, e, f);
      };
    default:
      // Longer prototypes are rare and never hot: a loop will do.
      return (...args: unknown[]) => {
        rules.forEach((rule, i) => rule && checkArgument(args[i], rule, symbol, i));
        return fn(...args);
      };
  }
}

const guardedFunctions = new WeakSet<AnyFunction>();

/** Whether `fn` is a wrapper made by {@linkcode guardSymbols}: for the coverage test. */
export function isGuarded(fn: unknown): boolean {
  return typeof fn === "function" && guardedFunctions.has(fn as AnyFunction);
}

/** The integer parameters of a symbol's definition: their positions and C types. */
export function integerParameters(definition: unknown): { position: number; type: IntegerType }[] {
  const parameters = (definition as Partial<Deno.ForeignFunction>)?.parameters ?? [];
  return parameters.flatMap((type, position) => isIntegerType(type) ? [{ position, type }] : []);
}

/**
 * The symbols of `raw` with every integer parameter checked against its C type: each function
 * of `table` that has one is wrapped, everything else (functions without integer parameters,
 * statics, missing optional symbols) is passed through.
 *
 * @param table The symbol table given to `Deno.dlopen`.
 * @param raw The `symbols` of the library that `Deno.dlopen` opened with `table`.
 * @returns The same shape, guarded.
 */
export function guardSymbols<S extends Deno.ForeignLibraryInterface>(
  table: S,
  raw: Deno.DynamicLibrary<S>["symbols"],
): Deno.DynamicLibrary<S>["symbols"] {
  const guarded: Record<string, unknown> = {};
  const source = raw as Record<string, unknown>;
  for (const name of Object.keys(table)) {
    const fn = source[name];
    const definition = table[name];
    const parameters = (definition as Partial<Deno.ForeignFunction>).parameters;
    if (typeof fn !== "function" || !parameters || integerParameters(definition).length === 0) {
      guarded[name] = fn;
      continue;
    }
    const rules = parameters.map((type) => isIntegerType(type) ? INTEGER_RULES[type] : null);
    const wrapper = wrap(fn as AnyFunction, name, rules);
    guardedFunctions.add(wrapper);
    guarded[name] = wrapper;
  }
  return Object.freeze(guarded) as Deno.DynamicLibrary<S>["symbols"];
}
