/**
 * `dieWithParent` for `spawn`: the child gets a signal when its parent dies, in any way, SIGKILL
 * of the parent included (Linux's PR_SET_PDEATHSIG). Internal.
 *
 * posix_spawn cannot call prctl in the child, and forking the Deno process to call it there is
 * not safe in a multi-threaded runtime, so the child starts as a two-step trampoline that ends
 * by exec'ing the real program under the same pid:
 *
 * 1. util-linux's `setpriv --pdeathsig SIG` sets the parent-death signal and execs
 * 2. `/bin/sh -c CHECK`, which compares its parent (`$PPID`, read after the prctl) with the
 *    Deno process: if that process died before the prctl, the kernel will never send the
 *    signal, so the shell sends it to itself; otherwise it execs the program. The setting
 *    survives both execs (it is cleared only by a set-user-ID or capability-gaining exec).
 *
 * The candidates weighed: setpriv alone leaves that race open; a pipe whose write end only the
 * parent holds, watched by a helper that kills the child at end-of-file, costs one more process
 * per child and kills by pid (which may have been reused); Deno itself as the trampoline costs
 * tens of milliseconds of start-up. The kernel's "parent" is the thread that spawned: this
 * library spawns on the calling JavaScript thread, the main thread, which lives as long as the
 * process; a child spawned inside a Worker also dies when that Worker ends.
 *
 * @module
 */

import { cstring } from "../ffi/cstring.ts";
import { X_OK } from "../ffi/constants.ts";
import { libc } from "../ffi/libc.ts";
import { describe } from "./_validate.ts";
import { type SignalLike, signalName, signalNumber } from "./signal.ts";

/** Where setpriv and sh are looked for: system directories only, never the caller's PATH. */
const SYSTEM_DIRECTORIES = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"];

/**
 * The shell step: `$1` is the expected parent's pid, then the program and its arguments. A
 * parent gone before the prctl shows as another parent (init, or a subreaper).
 */
const CHECK_PARENT = '[ "$PPID" = "$1" ] || { kill -$2 $$; exit 1; }; shift 2; exec "$@"';

let located: { setpriv: string; sh: string } | undefined;

function locate(program: string): string | undefined {
  return SYSTEM_DIRECTORIES.map((dir) => `${dir}/${program}`)
    .find((path) => libc().access(cstring(path), X_OK) === 0);
}

/** Finds setpriv and sh once; a clear NotSupported when setpriv is missing. */
function trampolines(): { setpriv: string; sh: string } {
  if (located) return located;
  const setpriv = locate("setpriv");
  const sh = locate("sh");
  if (!setpriv || !sh) {
    throw new Deno.errors.NotSupported(
      `Cannot spawn with dieWithParent: ${setpriv ? "/bin/sh" : "setpriv"} was not found in ` +
        `${SYSTEM_DIRECTORIES.join(", ")}; install util-linux (it provides setpriv)`,
    );
  }
  return located = { setpriv, sh };
}

/**
 * Checks the `dieWithParent` option: `undefined`/`false` for none, `true` for SIGKILL, or a
 * signal. Returns the signal number, or 0 for none.
 */
export function validateDeathSignal(value: unknown): number {
  if (value === undefined || value === false) return 0;
  if (value === true) return 9;
  if (typeof value !== "string" && typeof value !== "number") {
    throw new TypeError(
      `Cannot spawn: dieWithParent ${describe(value)} must be true, false or a signal`,
    );
  }
  const number = signalNumber(value as SignalLike);
  if (/^SIG\d+$/.test(signalName(number))) {
    throw new RangeError(
      `Cannot spawn: dieWithParent signal ${number} is reserved by the C library's threads`,
    );
  }
  return number;
}

/**
 * The program and argv that run `program` with `argv` under the parent-death signal `signal`,
 * the expected parent being `parent` (this process; tests give another to take the branch of a
 * parent that died first).
 */
export function withDeathSignal(
  signal: number,
  program: string,
  argv: readonly string[],
  parent: number = Deno.pid,
): { program: string; argv: string[] } {
  const { setpriv, sh } = trampolines();
  const name = signalName(signal).slice(3); // setpriv takes "KILL", "RTMIN+3"
  return {
    program: setpriv,
    argv: [
      "setpriv",
      "--pdeathsig",
      name,
      "--",
      sh,
      "-c",
      CHECK_PARENT,
      "sh",
      String(parent),
      String(signal),
      program,
      ...argv.slice(1),
    ],
  };
}
