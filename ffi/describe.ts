/**
 * {@linkcode describe}: a value as error messages show it, for every value, without ever
 * throwing. Shared by the FFI guard and the argument checks of `src/`. Internal.
 *
 * @module
 */

/** The longest string, or symbol description, shown before it is cut with "…". */
const MAX_SHOWN = 60;

function cut(text: string): string {
  return text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN)}…` : text;
}

/**
 * A value as an error message shows it: strings quoted (with NUL and other control characters
 * escaped) and cut at 60 characters, bigints with their "n", -0 as "-0", symbols as
 * `Symbol(description)`, functions and objects by kind ("an array", "an object without a
 * prototype", "a Map"). It never throws and never runs user code: no `toString`, `valueOf`,
 * `Symbol.toPrimitive` or getter of the value is called (a Proxy's traps may run; whatever they
 * throw is caught, and a revoked Proxy is "an object").
 *
 * @param value Any value.
 * @returns A short description of `value`.
 * @example
 * ```ts
 * import { describe } from "./describe.ts";
 * describe(Object.create(null)); // "an object without a prototype"
 * describe(-0); // "-0"
 * describe(5n); // "5n"
 * ```
 */
export function describe(value: unknown): string {
  switch (typeof value) {
    case "string":
      return JSON.stringify(cut(value));
    case "number":
      return Object.is(value, -0) ? "-0" : String(value);
    case "bigint":
      return `${value}n`;
    case "symbol":
      return `Symbol(${cut(value.description ?? "")})`;
    case "undefined":
    case "boolean":
      return String(value);
    case "function":
      return describeFunction(value);
    default:
      return value === null ? "null" : describeObject(value as object);
  }
}

function describeFunction(fn: unknown): string {
  try {
    const name = Object.getOwnPropertyDescriptor(fn, "name")?.value;
    return typeof name === "string" && name !== "" ? `function ${cut(name)}` : "a function";
  } catch {
    return "a function"; // a revoked Proxy
  }
}

function describeObject(object: object): string {
  try {
    if (Array.isArray(object)) return `an array of length ${object.length}`;
    const proto = Object.getPrototypeOf(object);
    if (proto === null) return "an object without a prototype";
    if (proto === Object.prototype) return "an object";
    const ctor = Object.getOwnPropertyDescriptor(proto, "constructor")?.value;
    const name = typeof ctor === "function"
      ? Object.getOwnPropertyDescriptor(ctor, "name")?.value
      : undefined;
    if (typeof name === "string" && name !== "") {
      return `${/^[AEIOU]/.test(name) ? "an" : "a"} ${cut(name)}`;
    }
    return "an object";
  } catch {
    return "an object"; // a Proxy whose traps throw, or a revoked one
  }
}
