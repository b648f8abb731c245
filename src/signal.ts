/**
 * Signals: sending them to processes and process groups, telling whether a process is alive,
 * the platform's table of names and numbers (real-time signals included), and listening.
 *
 * @example Listening for a signal until the scope ends
 * ```ts
 * import { kill, onSignal } from "@posix/ipc/signal";
 *
 * let received = 0;
 * {
 *   using _listener = onSignal("SIGUSR2", () => received++);
 *   kill(Deno.pid, "SIGUSR2");
 *   await new Promise((resolve) => setTimeout(resolve, 50));
 * }
 * console.log(received); // 1
 * ```
 *
 * @module
 */

import { EPERM, ESRCH, SIGNAL_ALIASES, SIGNAL_MAX, SIGNALS } from "../ffi/constants.ts";
import { errno, libc } from "../ffi/libc.ts";
import { requireRunPermission } from "./_permissions.ts";
import { describe, validatePid, validateProcessGroup } from "./_validate.ts";
import { check, closedError, systemError } from "./errors.ts";
import { selectable, type SelectAdapter } from "./select/protocol.ts";

/**
 * A signal's name: the classic ones (`"SIGTERM"`, `"SIGUSR1"`, …) and real-time ones counted
 * from either end (`"SIGRTMIN"`, `"SIGRTMIN+3"`, `"SIGRTMAX-1"`, `"SIGRTMAX"`).
 */
export type SignalName =
  | Deno.Signal
  | "SIGSTKFLT"
  | "SIGPWR"
  | "SIGRTMIN"
  | "SIGRTMAX"
  | `SIGRTMIN+${number}`
  | `SIGRTMAX-${number}`;

/** A signal given by name or number. */
export type SignalLike = SignalName | number;

const NAME_BY_NUMBER: ReadonlyMap<number, string> = new Map(
  Object.entries(SIGNALS).map(([name, number]) => [number, name]),
);
const REALTIME = /^SIGRT(MIN|MAX)(?:([+-])(\d+))?$/;

function realtimeRange(): [min: number, max: number] {
  const c = libc();
  return [c.__libc_current_sigrtmin(), c.__libc_current_sigrtmax()];
}

/**
 * The number of a signal.
 *
 * @param signal A name such as `"SIGUSR1"` or `"SIGRTMIN+3"`, or a number (checked).
 * @returns The signal's number on this platform.
 * @throws {TypeError} for an unknown name.
 * @throws {RangeError} for a number that is no signal, or a real-time offset out of range.
 * @example
 * ```ts
 * import { signalNumber } from "@posix/ipc/signal";
 *
 * console.log(signalNumber("SIGUSR1")); // 10
 * console.log(signalNumber("SIGRTMIN+3")); // 37 with glibc
 * ```
 */
export function signalNumber(signal: SignalLike): number {
  if (typeof signal === "number") {
    if (!Number.isInteger(signal) || signal < 1 || signal > SIGNAL_MAX) {
      throw new RangeError(
        `Cannot use signal ${describe(signal)}: signals are numbered 1 to ${SIGNAL_MAX}`,
      );
    }
    return signal;
  }
  if (typeof signal !== "string") {
    throw new TypeError(
      `Cannot use signal ${describe(signal)}: give a name such as "SIGTERM" or a number`,
    );
  }
  // Own properties only: "toString" or "__proto__" must not find Object.prototype's.
  const classic = Object.hasOwn(SIGNALS, signal)
    ? SIGNALS[signal]
    : Object.hasOwn(SIGNAL_ALIASES, signal)
    ? SIGNAL_ALIASES[signal]
    : undefined;
  if (classic !== undefined) return classic;
  const reserved = /^SIG(3[23])$/.exec(signal);
  if (reserved) return Number(reserved[1]);
  const realtime = REALTIME.exec(signal);
  if (!realtime) {
    throw new TypeError(`Cannot use signal ${describe(signal)}: it is not a signal of Linux`);
  }
  const [min, max] = realtimeRange();
  const [, end, sign, offset] = realtime;
  if (sign !== undefined && (end === "MIN") !== (sign === "+")) {
    throw new TypeError(
      `Cannot use signal "${signal}": count up from SIGRTMIN, down from SIGRTMAX`,
    );
  }
  const number = end === "MIN" ? min + Number(offset ?? 0) : max - Number(offset ?? 0);
  if (number < min || number > max) {
    throw new RangeError(
      `Cannot use signal "${signal}": real-time signals run from SIGRTMIN (${min}) to SIGRTMAX (${max})`,
    );
  }
  return number;
}

/**
 * The name of a signal number: real-time signals as `"SIGRTMIN+3"` or `"SIGRTMAX-2"`, whichever
 * end is nearer, as the shell's `kill -l` names them.
 *
 * @param signal A signal number, 1 to 64.
 * @returns Its name.
 * @throws {RangeError} for a number that is no signal.
 * @example
 * ```ts
 * import { signalName } from "@posix/ipc/signal";
 *
 * console.log(signalName(15)); // "SIGTERM"
 * ```
 */
export function signalName(signal: number): SignalName {
  signalNumber(signal);
  const classic = NAME_BY_NUMBER.get(signal);
  if (classic) return classic as SignalName;
  const [min, max] = realtimeRange();
  if (signal < min) return `SIG${signal}` as SignalName; // reserved by glibc's threads
  if (signal === min) return "SIGRTMIN";
  if (signal === max) return "SIGRTMAX";
  return signal - min <= (max - min) / 2 ? `SIGRTMIN+${signal - min}` : `SIGRTMAX-${max - signal}`;
}

/**
 * Sends a signal to a process. Needs `--allow-run`, as `Deno.kill` does.
 *
 * @param pid The process, an integer from 1 to 2^31 - 1 (use {@linkcode killGroup} for a group).
 * @param signal The signal. Default `"SIGTERM"`.
 * @throws {RangeError} for any other pid, before anything is sent: 0, -1 and numbers that
 * would wrap to them in C reach whole groups or every process.
 * @throws {Deno.errors.NotFound} with code `ESRCH` when there is no such process.
 * @throws {Deno.errors.PermissionDenied} when the process is another user's.
 * @example
 * ```ts
 * import { kill } from "@posix/ipc/signal";
 *
 * const child = new Deno.Command("sleep", { args: ["10"] }).spawn();
 * kill(child.pid, "SIGKILL");
 * console.log((await child.status).signal); // "SIGKILL"
 * ```
 */
export function kill(pid: number, signal: SignalLike = "SIGTERM"): void {
  validatePid(pid, "process id");
  const number = signalNumber(signal);
  requireRunPermission();
  check(libc().kill(pid, number), "kill", {
    action: `send ${signalLabel(signal)} to process ${pid}`,
  });
}

/**
 * Sends a signal to every process of a process group. Needs `--allow-run`.
 *
 * @param pgid The group's id (the pid of its leader), an integer from 2 to 2^31 - 1.
 * @param signal The signal. Default `"SIGTERM"`.
 * @throws {RangeError} for any other number, before anything is sent: to `kill()`, group 0 is
 * the caller's own and group 1 stands for every process the caller may signal.
 * @throws {Deno.errors.NotFound} with code `ESRCH` when there is no such group.
 * @example
 * ```ts ignore
 * import { killGroup } from "@posix/ipc/signal";
 * import { spawn } from "@posix/ipc/spawn";
 *
 * const child = spawn("sh", { args: ["-c", "sleep 60 & sleep 60"], processGroup: true });
 * killGroup(child.pgid, "SIGTERM"); // the shell and both sleeps
 * ```
 */
export function killGroup(pgid: number, signal: SignalLike = "SIGTERM"): void {
  validateProcessGroup(pgid, "process group");
  const number = signalNumber(signal);
  requireRunPermission();
  check(libc().kill(-pgid, number), "kill", {
    action: `send ${signalLabel(signal)} to process group ${pgid}`,
  });
}

/**
 * Whether a process exists (signal 0): `true` also for another user's process (EPERM) and for
 * a zombie that its parent has not reaped yet.
 *
 * @param pid The process, an integer from 1 to 2^31 - 1.
 * @returns `false` exactly when the kernel knows no such process (ESRCH).
 * @throws {RangeError} for any other pid.
 * @example
 * ```ts
 * import { isAlive } from "@posix/ipc/signal";
 *
 * console.log(isAlive(Deno.pid)); // true
 * ```
 */
export function isAlive(pid: number): boolean {
  validatePid(pid, "process id");
  if (libc().kill(pid, 0) === 0) return true;
  const code = errno();
  if (code === ESRCH) return false;
  if (code === EPERM) return true;
  throw systemError(code, "kill", { action: `probe process ${pid}` });
}

function signalLabel(signal: SignalLike): string {
  return typeof signal === "number" ? `signal ${signal}` : signal;
}

/** The signals `Deno.addSignalListener` can listen for: checked here for a clear message. */
function validateListenable(signal: unknown): asserts signal is Deno.Signal {
  const number = signalNumber(signal as SignalLike);
  if (typeof signal !== "string" || number === 9 || number === 19 || number > 31) {
    throw new TypeError(
      `Cannot listen for ${describe(signal)}: Deno listens only for named classic signals, ` +
        `and SIGKILL and SIGSTOP cannot be caught`,
    );
  }
}

/**
 * Calls `handler` each time the process receives `signal`, until the returned object is
 * disposed. Built on `Deno.addSignalListener`; while listening, the signal no longer has its
 * default effect (SIGTERM no longer ends the process, for example). Like Deno's listener, it
 * need not keep the process alive on its own; {@linkcode signals} does while it is awaited.
 *
 * @param signal The signal, such as `"SIGUSR1"`.
 * @param handler Called with the signal's name.
 * @returns A Disposable that removes the listener.
 * @throws {TypeError} for an unknown signal, or one that cannot be listened for (SIGKILL), or
 * a `handler` that is not a function.
 * @example
 * ```ts
 * import { onSignal } from "@posix/ipc/signal";
 *
 * using listener = onSignal("SIGHUP", () => console.log("reloading"));
 * ```
 */
export function onSignal(signal: Deno.Signal, handler: (signal: Deno.Signal) => void): Disposable {
  validateListenable(signal);
  if (typeof handler !== "function") {
    throw new TypeError(
      `Cannot listen for ${signal}: the handler ${describe(handler)} must be a function`,
    );
  }
  const listener = () => handler(signal);
  Deno.addSignalListener(signal, listener);
  let listening = true;
  return {
    [Symbol.dispose]() {
      if (!listening) return;
      listening = false;
      Deno.removeSignalListener(signal, listener);
    },
  };
}

/**
 * The signals received, as an async iterable that is also Disposable: it listens from the
 * call until it is disposed or the loop over it ends. Signals that arrive while no one is
 * iterating are queued.
 *
 * @param names The signals to listen for.
 * @returns The signals' names, in the order received.
 * @throws {TypeError} for an unknown signal or none at all.
 * @example
 * ```ts
 * import { kill, signals } from "@posix/ipc/signal";
 *
 * using incoming = signals("SIGUSR1", "SIGUSR2");
 * kill(Deno.pid, "SIGUSR1");
 * for await (const signal of incoming) {
 *   console.log(signal); // "SIGUSR1"
 *   break;
 * }
 * ```
 */
export function signals(...names: Deno.Signal[]): Signals {
  if (names.length === 0) throw new TypeError("Cannot listen for signals: name at least one");
  for (const name of names) validateListenable(name); // all of them, before any listener is added
  const queued: Deno.Signal[] = [];
  const waiting = new PendingResults<Deno.Signal>();
  /** The waits of `select`s, woken when a signal is queued. */
  const watchers = new Set<() => void>();
  const listeners = names.map((name) =>
    onSignal(name, (signal) => {
      if (waiting.settleFirst({ value: signal, done: false })) return;
      queued.push(signal);
      for (const watcher of watchers) watcher();
    })
  );
  let open = true;
  const finish = (): IteratorResult<Deno.Signal> => {
    if (open) {
      open = false;
      for (const listener of listeners) listener[Symbol.dispose]();
      queued.length = 0;
      waiting.settleAll({ value: undefined, done: true });
      for (const watcher of watchers) watcher();
    }
    return { value: undefined, done: true };
  };
  return {
    next(): Promise<IteratorResult<Deno.Signal>> {
      if (queued.length > 0) return Promise.resolve({ value: queued.shift()!, done: false });
      if (!open) return Promise.resolve({ value: undefined, done: true });
      return waiting.add();
    },
    return(): Promise<IteratorResult<Deno.Signal>> {
      return Promise.resolve(finish());
    },
    [Symbol.asyncIterator]() {
      return this;
    },
    [Symbol.dispose]() {
      finish();
    },
    [selectable](): SelectAdapter<Deno.Signal> {
      return {
        try: () => {
          if (!open) throw closedError("the signal listener");
          return queued.length > 0 ? { value: queued.shift()! } : undefined;
        },
        wait: (signal) => {
          if (signal.aborted || queued.length > 0 || !open) return Promise.resolve();
          return new Promise<void>((resolve) => {
            // A signal listener alone does not keep the process alive (see PendingResults).
            const keepAlive = setInterval(() => {}, 60_000);
            const done = () => {
              clearInterval(keepAlive);
              watchers.delete(done);
              signal.removeEventListener("abort", done);
              resolve();
            };
            watchers.add(done);
            signal.addEventListener("abort", done);
          });
        },
      };
    },
  };
}

/**
 * The signals received, from {@linkcode signals}: an async iterable, Disposable, and a source
 * of `select` (`@posix/ipc/select`), which takes the oldest queued signal.
 */
export interface Signals extends AsyncIterableIterator<Deno.Signal>, Disposable {
  /** The adapter through which `select` takes the next signal; see `@posix/ipc/select`. */
  [selectable](): SelectAdapter<Deno.Signal>;
}

/**
 * The pending `next()` calls of an iterator, settled first come, first served. While any is
 * pending, a timer keeps the process alive: a signal listener alone does not always (it does not
 * under `deno test`), and the process would otherwise end before the signal comes.
 */
class PendingResults<T> {
  readonly #resolvers: ((result: IteratorResult<T>) => void)[] = [];
  #keepAlive: ReturnType<typeof setInterval> | undefined;

  /** A new pending result. */
  add(): Promise<IteratorResult<T>> {
    this.#keepAlive ??= setInterval(() => {}, 60_000);
    return new Promise((resolve) => this.#resolvers.push(resolve));
  }

  /** Settles the oldest pending result; false when none is pending. */
  settleFirst(result: IteratorResult<T>): boolean {
    const resolve = this.#resolvers.shift();
    if (this.#resolvers.length === 0) {
      clearInterval(this.#keepAlive);
      this.#keepAlive = undefined;
    }
    resolve?.(result);
    return resolve !== undefined;
  }

  /** Settles every pending result with `result`, oldest first. */
  settleAll(result: IteratorResult<T>): void {
    while (this.settleFirst(result));
  }
}
