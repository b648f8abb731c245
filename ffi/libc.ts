/**
 * The lazily opened libc: loaded on first use, never at import time, so that importing
 * @posix/ipc needs no permission at all.
 *
 * The path defaults to glibc's `libc.so.6` and can be overridden with the environment variable
 * `POSIX_IPC_LIBC` (read only when `--allow-env` grants it).
 *
 * Every integer argument is checked against its C type before it reaches libc (see
 * ffi/guard.ts): an out-of-range number throws a RangeError naming the symbol and the argument
 * instead of being wrapped, which V8 does silently once it has optimized a call site.
 *
 * Internal: nothing outside `src/` imports this.
 *
 * @module
 */

import { guardSymbols } from "./guard.ts";
import { symbols } from "./symbols.ts";

/** The bound libc functions, their integer arguments checked against their C types. */
export type Libc = Deno.DynamicLibrary<typeof symbols>["symbols"];

/** The environment variable that overrides the path of libc. */
export const LIBC_PATH_ENV = "POSIX_IPC_LIBC";

const SUPPORTED_ARCHES: readonly string[] = ["x86_64", "aarch64"];

let loaded: Libc | undefined;
let errnoView: Deno.UnsafePointerView | undefined;

/**
 * Throws `Deno.errors.NotSupported` unless `os`/`arch` is a platform this library binds:
 * Linux on x86_64 or aarch64.
 */
export function assertSupportedPlatform(
  os: string = Deno.build.os,
  arch: string = Deno.build.arch,
): void {
  if (os !== "linux" || !SUPPORTED_ARCHES.includes(arch)) {
    throw new Deno.errors.NotSupported(
      `@posix/ipc does not support ${os} ${arch} yet: it binds glibc on Linux x86_64 and aarch64`,
    );
  }
}

/** The path libc is loaded from: `$POSIX_IPC_LIBC` when set and readable, else `libc.so.6`. */
export function libcPath(): string {
  const permission = Deno.permissions.querySync({ name: "env", variable: LIBC_PATH_ENV });
  const override = permission.state === "granted" ? Deno.env.get(LIBC_PATH_ENV) : undefined;
  return override || "libc.so.6";
}

/**
 * The bound libc, opened on the first call. Every function with an integer parameter throws a
 * RangeError (a TypeError for a value of the wrong type) before the call when an argument does
 * not fit its C type.
 */
export function libc(): Libc {
  return loaded ??= open();
}

/**
 * The calling thread's errno. Read it right after the failed call, on the same thread: only
 * synchronous (non-`nonblocking`) calls may be followed by this.
 */
export function errno(): number {
  if (!errnoView) {
    const location = libc().__errno_location();
    if (location === null) throw new Error("__errno_location() returned NULL");
    errnoView = new Deno.UnsafePointerView(location);
  }
  return errnoView.getInt32();
}

function open(): Libc {
  assertSupportedPlatform();
  const path = libcPath();
  let raw: Libc;
  try {
    raw = Deno.dlopen(path, symbols).symbols;
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
      throw new Deno.errors.NotCapable(
        "@posix/ipc needs --allow-ffi to call libc: run again with --allow-ffi " +
          "(foreign code can do anything the process can, so this grants full access)",
        { cause: error },
      );
    }
    const detail = error instanceof Error ? error.message : String(error);
    throw new Deno.errors.NotSupported(
      `@posix/ipc cannot load libc from "${path}": ${detail}. It needs glibc 2.34 or newer; ` +
        `set ${LIBC_PATH_ENV} to the path of its libc.so.6 if it lives elsewhere`,
      { cause: error },
    );
  }
  return guardSymbols(symbols, raw);
}
