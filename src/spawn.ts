/**
 * Fork-free spawning (`posix_spawn`) that hands a child any set of file descriptors at the
 * numbers it chooses, controls its process group and signals, and always reaps it.
 *
 * What `Deno.Command` cannot do: give a child more than stdin, stdout and stderr. Here a pipe,
 * a shared memory segment or any other descriptor goes to the child at fd 3, 4, …, and the
 * child receives exactly those and no other descriptor of the parent. Every signal starts at
 * its default in the child (Deno ignores SIGPIPE; its children do not), with an empty mask.
 *
 * @example Handing a child a pipe at fd 3
 * ```ts
 * import { pipe } from "@posix/ipc/pipe";
 * import { spawn } from "@posix/ipc/spawn";
 *
 * using p = pipe();
 * await using child = spawn("sh", { args: ["-c", "echo from fd 3 >&3"], fds: { 3: p.writer } });
 * p.writer.close(); // the child has its own copy
 * console.log(await new Response(p.reader.readable).text()); // "from fd 3\n"
 * console.log(await child.status); // { state: "exited", code: 0, success: true }
 * ```
 *
 * @module
 */

import { cstring } from "../ffi/cstring.ts";
import {
  EACCES,
  ENOENT,
  F_GETFD,
  O_CLOEXEC,
  O_DIRECTORY,
  O_RDONLY,
  O_WRONLY,
  POSIX_SPAWN_SETPGROUP,
  POSIX_SPAWN_SETSIGDEF,
  POSIX_SPAWN_SETSIGMASK,
  X_OK,
} from "../ffi/constants.ts";
import { opaque } from "../ffi/layout.ts";
import { type Libc, libc } from "../ffi/libc.ts";
import { requireSpawnPermission } from "./_permissions.ts";
import {
  ConstructorToken,
  describe,
  INT_MAX,
  optionalBoolean,
  optionsObject,
  ownOptions,
  validateInteger,
} from "./_validate.ts";
import { readLink } from "./_proc.ts";
import { validateDeathSignal, withDeathSignal } from "./_pdeathsig.ts";
import { openPidfd, signalChild, watchChild } from "./_reaper.ts";
import { check, systemError } from "./errors.ts";
import { closeFd, type FdLike, peekFd } from "./fd.ts";
import { pipe, type ReadEnd, type WriteEnd } from "./pipe.ts";
import { promiseAdapter } from "./select/promise.ts";
import { selectable, type SelectAdapter } from "./select/protocol.ts";
import { type SignalLike, signalName, signalNumber } from "./signal.ts";

export { inheritedFd } from "./fd.ts";

/**
 * Where a child's stdin, stdout or stderr goes: the parent's own (`"inherit"`), /dev/null
 * (`"null"`), a new pipe whose other end the {@linkcode ChildProcess} holds (`"piped"`), or a
 * descriptor of the parent's.
 */
export type Stdio = "inherit" | "null" | "piped" | FdLike;

/** Options of {@linkcode spawn}. */
export interface SpawnOptions {
  /** Arguments after the program's name. */
  args?: readonly string[];
  /** Environment variables, added to the parent's (or alone, with `clearEnv`). */
  env?: Readonly<Record<string, string>>;
  /** Start from an empty environment: the child gets only `env`. Default `false`. */
  clearEnv?: boolean;
  /** The child's working directory. Default: the parent's. */
  cwd?: string | URL;
  /** The child's stdin. Default `"inherit"`. */
  stdin?: Stdio;
  /** The child's stdout. Default `"inherit"`. */
  stdout?: Stdio;
  /** The child's stderr. Default `"inherit"`. */
  stderr?: Stdio;
  /**
   * More descriptors for the child, by the number it sees them under (3 to 255): the parent's
   * descriptor stays the parent's. A record, or pairs `[childFd, fd]`.
   */
  fds?: Readonly<Record<number, FdLike>> | Iterable<readonly [number, FdLike]>;
  /**
   * `true`: the child leads a new process group (its pgid is its pid), so that
   * {@linkcode ChildProcess.killGroup} reaches it and its own children. A number: join that
   * group. Default: stay in the parent's group.
   */
  processGroup?: boolean | number;
  /** Signals the child starts with blocked. Default: none. */
  signalMask?: readonly SignalLike[];
  /**
   * Reset every signal's disposition to its default in the child. Default `true`; `false`
   * keeps signals the parent ignores ignored (SIGPIPE, in Deno).
   */
  resetSignals?: boolean;
  /**
   * Milliseconds between SIGTERM and SIGKILL when the child is disposed: any number >= 0, however
   * large (longer than a timer's 2^31 - 1 ms is waited in several timers), or `Infinity` to
   * never send SIGKILL and wait for the child to end on its own. Default 2000.
   */
  killGrace?: number;
  /**
   * The child gets this signal when this process dies, in any way, SIGKILL included (Linux's
   * PR_SET_PDEATHSIG): `true` for SIGKILL, or a signal. Default `false`. It costs two more
   * execs at start-up (util-linux's `setpriv` sets the signal, then `/bin/sh` checks that this
   * process was still its parent at that moment, and sends the signal itself otherwise), about
   * 1.5 ms more per spawn (0.75 ms without, 2.1-2.7 ms with); the program then sees its resolved path as `argv[0]`. The parent is, to the
   * kernel, the thread that spawned: from a Worker, the child also gets the signal when that
   * Worker ends. A set-user-ID program loses the setting when it starts.
   */
  dieWithParent?: boolean | SignalLike;
  /**
   * The buffer of each `"piped"` stdio pipe, in bytes: see `PipeOptions.capacity` in `@posix/ipc/pipe`.
   * Default: the kernel's, 64 KiB.
   */
  pipeCapacity?: number;
}

/** How a child ended. */
export type ChildStatus =
  | {
    /** It called exit, or returned from main. */
    readonly state: "exited";
    /** Its exit code, 0 to 255. */
    readonly code: number;
    /** Whether the code is 0. */
    readonly success: boolean;
  }
  | {
    /** A signal ended it. */
    readonly state: "signaled";
    /** The signal's name, such as `"SIGKILL"`. */
    readonly signal: string;
    /** The signal's number. */
    readonly signalNumber: number;
    /** Whether it left a core dump. */
    readonly coreDumped: boolean;
    /** Always `false`. */
    readonly success: false;
  }
  | {
    /** Something else in this process reaped it first (a `waitpid(-1)`): its status is lost. */
    readonly state: "lost";
    /** Always `false`. */
    readonly success: false;
  };

/** What {@linkcode ChildProcess.output} collects. */
export interface ChildOutput {
  /** How the child ended. */
  readonly status: ChildStatus;
  /** Everything it wrote to stdout, when `stdout` was `"piped"` (else empty). */
  readonly stdout: Uint8Array;
  /** Everything it wrote to stderr, when `stderr` was `"piped"` (else empty). */
  readonly stderr: Uint8Array;
}

/**
 * Decodes a raw `waitpid` status: exited with a code, or ended by a signal (with or without a
 * core dump).
 *
 * @param waitStatus The status word that `waitpid` fills in, or -1 when it is lost.
 * @returns The decoded status.
 * @example
 * ```ts
 * import { decodeWaitStatus } from "@posix/ipc/spawn";
 *
 * console.log(decodeWaitStatus(3 << 8)); // { state: "exited", code: 3, success: false }
 * console.log(decodeWaitStatus(0x80 | 11).state); // "signaled" (SIGSEGV, core dumped)
 * ```
 */
export function decodeWaitStatus(waitStatus: number): ChildStatus {
  validateInteger(waitStatus, "wait status", -1, INT_MAX, "as waitpid() gives it; -1: lost");
  if (waitStatus === -1) return { state: "lost", success: false };
  const low = waitStatus & 0x7f;
  if (low === 0) {
    const code = (waitStatus >> 8) & 0xff;
    return { state: "exited", code, success: code === 0 };
  }
  return {
    state: "signaled",
    signal: signalName(low),
    signalNumber: low,
    coreDumped: (waitStatus & 0x80) !== 0,
    success: false,
  };
}

/** The module's key to the constructor: `new ChildProcess()` from outside is a TypeError. */
const token = new ConstructorToken("ChildProcess", "spawn() or spawnDeno()");

let createChild: (
  pid: number,
  pgid: number,
  stdio: [WriteEnd | null, ReadEnd | null, ReadEnd | null],
  killGrace: number,
) => ChildProcess;

/**
 * A child process started by {@linkcode spawn}. It is reaped as soon as it exits, whether or
 * not anyone awaits {@linkcode ChildProcess.status}: no zombies.
 *
 * `await using` ends it on scope exit: SIGTERM, then SIGKILL after `killGrace` ms, then it
 * waits for the exit.
 *
 * @example
 * ```ts
 * import { spawn } from "@posix/ipc/spawn";
 *
 * const child = spawn("sh", { args: ["-c", "exit 3"] });
 * console.log(await child.status); // { state: "exited", code: 3, success: false }
 * ```
 */
export class ChildProcess implements AsyncDisposable {
  /** The child's process id. */
  readonly pid: number;
  /** The child's process group id. */
  readonly pgid: number;
  /** How the child ended; settles once it has been reaped. */
  readonly status: Promise<ChildStatus>;
  /** The write end of the child's stdin, when `stdin` was `"piped"`. */
  readonly stdin: WriteEnd | null;
  /** The read end of the child's stdout, when `stdout` was `"piped"`. */
  readonly stdout: ReadEnd | null;
  /** The read end of the child's stderr, when `stderr` was `"piped"`. */
  readonly stderr: ReadEnd | null;
  #pidfd: number;
  #exited = false;
  readonly #killGrace: number;

  static {
    createChild = (pid, pgid, stdio, killGrace) =>
      new ChildProcess(token, pid, pgid, stdio, killGrace);
  }

  private constructor(
    key: ConstructorToken,
    pid: number,
    pgid: number,
    stdio: [WriteEnd | null, ReadEnd | null, ReadEnd | null],
    killGrace: number,
  ) {
    token.check(key);
    const [stdin, stdout, stderr] = stdio;
    this.pid = pid;
    this.pgid = pgid;
    this.stdin = stdin;
    this.stdout = stdout;
    this.stderr = stderr;
    this.#killGrace = killGrace;
    this.#pidfd = openPidfd(pid);
    this.status = new Promise((resolve) => {
      watchChild(pid, this.#pidfd, (waitStatus) => {
        this.#exited = true;
        this.#pidfd = -1; // closed by the reaper
        resolve(decodeWaitStatus(waitStatus));
      });
    });
  }

  /** Whether the child has exited and been reaped. */
  get exited(): boolean {
    return this.#exited;
  }

  /**
   * The adapter through which {@linkcode select} waits for this child's exit: ready once it
   * exited, with its status, and from then on every time.
   *
   * @returns The adapter; see `@posix/ipc/select`.
   * @example
   * ```ts
   * import { spawn } from "@posix/ipc/spawn";
   * import { select } from "@posix/ipc/select";
   *
   * await using child = spawn("true");
   * console.log((await select([child])).value); // { state: "exited", code: 0, success: true }
   * ```
   */
  [selectable](): SelectAdapter<ChildStatus> {
    return promiseAdapter(this.status);
  }

  /**
   * Sends a signal to the child (through its pidfd, so never to a process that took over a
   * reused pid).
   *
   * @param signal The signal. Default `"SIGTERM"`.
   * @throws {TypeError} for an unknown signal, or when the child has already exited.
   * @example
   * ```ts
   * import { spawn } from "@posix/ipc/spawn";
   *
   * const child = spawn("sleep", { args: ["60"] });
   * child.kill("SIGKILL");
   * console.log((await child.status).state); // "signaled"
   * ```
   */
  kill(signal: SignalLike = "SIGTERM"): void {
    const number = signalNumber(signal);
    if (this.#exited || !signalChild(this.pid, this.#pidfd, number)) {
      throw new TypeError(`Cannot signal child process ${this.pid}: it has already exited`);
    }
  }

  /**
   * Sends a signal to the child's whole process group: the child and the children it started.
   * Only for a child spawned with `processGroup`, since otherwise the group is the parent's own.
   *
   * @param signal The signal. Default `"SIGTERM"`.
   * @throws {TypeError} when the child shares the parent's group, or for an unknown signal.
   * @throws {Deno.errors.NotFound} when no process of the group is left.
   * @example
   * ```ts
   * import { spawn } from "@posix/ipc/spawn";
   *
   * const child = spawn("sh", { args: ["-c", "sleep 60 & sleep 60"], processGroup: true });
   * child.killGroup("SIGKILL");
   * console.log((await child.status).state); // "signaled"
   * ```
   */
  killGroup(signal: SignalLike = "SIGTERM"): void {
    const number = signalNumber(signal);
    if (this.pgid === libc().getpgrp()) {
      throw new TypeError(
        `Cannot signal the group of child process ${this.pid}: it is this process's own group; ` +
          `spawn the child with processGroup: true`,
      );
    }
    check(libc().kill(-this.pgid, number), "kill", {
      action: `send ${
        typeof signal === "number" ? `signal ${signal}` : signal
      } to process group ${this.pgid}`,
    });
  }

  /**
   * Reads the child's piped stdout and stderr to their end and waits for it to exit. Closes
   * its piped stdin first, so that a child reading stdin sees end-of-file.
   *
   * @returns The status and everything written.
   * @example
   * ```ts
   * import { spawn } from "@posix/ipc/spawn";
   *
   * const { status, stdout } = await spawn("echo", { args: ["hi"], stdout: "piped" }).output();
   * console.log(status.success, new TextDecoder().decode(stdout)); // true "hi\n"
   * ```
   */
  async output(): Promise<ChildOutput> {
    this.stdin?.close();
    const collect = (end: ReadEnd | null) =>
      end ? new Response(end.readable).bytes() : Promise.resolve(new Uint8Array());
    const [stdout, stderr, status] = await Promise.all([
      collect(this.stdout),
      collect(this.stderr),
      this.status,
    ]);
    return { status, stdout, stderr };
  }

  /** SIGTERM, then SIGKILL after the grace period, then waits for the exit; closes piped ends. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#exited && signalChild(this.pid, this.#pidfd, 15) && this.#killGrace !== Infinity) {
      let cancel = () => {};
      const graceOver = new Promise<"grace over">((resolve) => {
        cancel = setLongTimeout(() => resolve("grace over"), this.#killGrace);
      });
      const first = await Promise.race([this.status, graceOver]);
      cancel();
      if (first === "grace over" && !this.#exited) signalChild(this.pid, this.#pidfd, 9);
    }
    await this.status;
    for (const end of [this.stdin, this.stdout, this.stderr]) end?.close();
  }
}

/**
 * Starts a program (posix_spawn: no fork of the Deno process). Needs `--allow-run` for the
 * command, as `Deno.Command` does.
 *
 * @param command A program name, looked up in PATH, or a path.
 * @param options Arguments, environment, stdio, extra descriptors, process group and signals.
 * @returns The running child.
 * @throws {Deno.errors.NotFound} when the program or the working directory does not exist.
 * @throws {Deno.errors.PermissionDenied} when the program is not executable.
 * @throws {Deno.errors.NotCapable} without run permission for the command.
 * @throws {TypeError} for bad options: an fd number given twice, an unknown signal, …
 * @throws {RangeError} for a child fd number outside 3 to 255.
 * @throws {Deno.errors.BadResource} when a descriptor to hand over is not open.
 * @example
 * ```ts
 * import { spawn } from "@posix/ipc/spawn";
 *
 * const child = spawn("sh", { args: ["-c", "echo $GREETING"], env: { GREETING: "hi" }, stdout: "piped" });
 * console.log(new TextDecoder().decode((await child.output()).stdout)); // "hi\n"
 * ```
 */
export function spawn(command: string, options: SpawnOptions = {}): ChildProcess {
  if (typeof command !== "string" || command.length === 0 || command.includes("\0")) {
    throw new TypeError(
      `Cannot spawn ${describe(command)}: the command must be a non-empty string without NUL`,
    );
  }
  options = ownOptions(options, "spawn() options"); // each read once: a getter may change
  optionalBoolean(options.clearEnv, "clearEnv");
  optionalBoolean(options.resetSignals, "resetSignals");
  const args = validateStrings(options.args ?? [], command, "argument");
  const cwd = options.cwd instanceof URL ? decodeURIComponent(options.cwd.pathname) : options.cwd;
  if (cwd !== undefined) validateStrings([cwd], command, "working directory");
  const extraFds = validateFds(options.fds, command);
  const mask = validateList(options.signalMask, command, "signalMask").map(signalNumber);
  const killGrace = validateKillGrace(options.killGrace, command);
  const group = validateGroup(options.processGroup);
  const deathSignal = validateDeathSignal(options.dieWithParent);
  const environment = buildEnvironment(options, command);
  const childEnvironment = environment ?? readEnviron();

  const c = libc();
  if (cwd !== undefined) checkDirectory(c, cwd, command);
  // Found the way the child will find it, and checked and spawned as that very path.
  const program = resolveProgram(
    c,
    command,
    cwd,
    Object.hasOwn(childEnvironment, "PATH") ? childEnvironment.PATH : undefined,
  );
  requireSpawnPermission(command, program, childEnvironment);
  const started = deathSignal === 0
    ? { program, argv: [command, ...args] }
    : withDeathSignal(deathSignal, program, [command, ...args]);
  const plan = planDescriptors(options, extraFds, command);
  try {
    const pid = spawnWith(
      c,
      started.program,
      started.argv,
      environment,
      cwd,
      plan.mapping,
      mask,
      options,
      group,
    );
    for (const end of plan.childEnds) end.close();
    const pgid = group === false ? c.getpgrp() : group === true ? pid : group;
    return createChild(pid, pgid, plan.parentEnds, killGrace);
  } catch (error) {
    closePlan(plan);
    throw error;
  }
}

/**
 * Deno's permissions for a child Deno process, as flags: `"all"`, or each kind on its own:
 * `true` for all of it, `false` or an empty list for none, or a list of what to allow (paths,
 * hosts, names; none may contain a comma, which would split it in two).
 */
export type DenoPermissions =
  | "all"
  | {
    readonly [kind in "read" | "write" | "net" | "env" | "run" | "ffi" | "sys" | "import"]?:
      | boolean
      | readonly string[];
  };

/** Options of {@linkcode spawnDeno}: those of {@linkcode spawn}, and Deno's own. */
export interface SpawnDenoOptions extends SpawnOptions {
  /** The child's permissions. Default: none (it cannot prompt: `--no-prompt`). */
  permissions?: DenoPermissions;
  /** More flags for `deno run`, such as `--v8-flags=--expose-gc`. */
  denoFlags?: readonly string[];
}

/**
 * Runs a TypeScript or JavaScript module in a new Deno process (`Deno.execPath()`, so the same
 * Deno), with {@linkcode spawn}'s options. Needs `--allow-run` for that Deno and `--allow-read`
 * (for `Deno.execPath()`).
 *
 * @param module The module: a path or a URL.
 * @param options The child's permissions and flags, and every option of `spawn`; `args` go to
 * the module.
 * @returns The running child.
 * @example
 * ```ts
 * import { spawnDeno } from "@posix/ipc/spawn";
 *
 * const module = `data:text/javascript,console.log(Deno.args[0] * 2)`;
 * const child = spawnDeno(module, { args: ["21"], stdout: "piped" });
 * console.log(new TextDecoder().decode((await child.output()).stdout)); // "42\n"
 * ```
 */
export function spawnDeno(module: string | URL, options: SpawnDenoOptions = {}): ChildProcess {
  const specifier = module instanceof URL ? module.href : module;
  if (typeof specifier !== "string" || specifier === "" || specifier.startsWith("-")) {
    throw new TypeError(
      `Cannot spawn Deno for ${describe(module)}: module must be a path or URL (not a flag)`,
    );
  }
  options = optionsObject(options, "spawnDeno() options");
  const flags = [
    "run",
    "--no-prompt",
    ...permissionFlags(options.permissions, specifier),
    ...validateDenoFlags(options.denoFlags, specifier),
  ];
  return spawn(Deno.execPath(), {
    ...options,
    args: [...flags, specifier, ...validateStrings(options.args ?? [], specifier, "argument")],
  });
}

const PERMISSION_KINDS: ReadonlySet<string> = new Set([
  "read",
  "write",
  "net",
  "env",
  "run",
  "ffi",
  "sys",
  "import",
]);

/** The flags for `permissions`, checked: a malformed value must not quietly grant less or more. */
function permissionFlags(permissions: unknown, module: string): string[] {
  const refuse = (rule: string) => {
    throw new TypeError(`Cannot spawn Deno for "${module}": permissions ${rule}`);
  };
  if (permissions === undefined) return [];
  if (permissions === "all") return ["--allow-all"];
  if (
    typeof permissions !== "object" || permissions === null || Array.isArray(permissions) ||
    ![Object.prototype, null].includes(Object.getPrototypeOf(permissions))
  ) {
    refuse(`must be "all" or an object such as { read: true, net: ["example.com"] }`);
  }
  return Object.entries(permissions as object).flatMap(([kind, value]): string[] => {
    if (!PERMISSION_KINDS.has(kind)) {
      refuse(`has an unknown kind "${kind}": use ${[...PERMISSION_KINDS].join(", ")}`);
    }
    if (value === true) return [`--allow-${kind}`];
    if (value === false || value === undefined) return [];
    if (!Array.isArray(value)) {
      refuse(`.${kind} must be true, false or a list of strings`);
    }
    for (const item of value as unknown[]) {
      if (typeof item !== "string" || item === "" || item.includes("\0")) {
        refuse(`.${kind} must list non-empty strings without NUL`);
      }
      if ((item as string).includes(",")) {
        refuse(`.${kind} entry "${item}" contains a comma, which Deno would read as two entries`);
      }
    }
    return value.length > 0 ? [`--allow-${kind}=${value.join(",")}`] : [];
  });
}

/** Checks `denoFlags`: strings that are flags, so that none is taken for the module. */
function validateDenoFlags(flags: unknown, module: string): string[] {
  if (flags === undefined) return [];
  if (!Array.isArray(flags)) {
    throw new TypeError(`Cannot spawn Deno for "${module}": denoFlags must be an array`);
  }
  for (const flag of flags as unknown[]) {
    if (typeof flag !== "string" || !flag.startsWith("-") || flag.includes("\0")) {
      throw new TypeError(
        `Cannot spawn Deno for "${module}": denoFlags entry ${describe(flag)} must be a flag ` +
          `starting with "-", without NUL`,
      );
    }
  }
  return [...flags];
}

function validateStrings(values: readonly string[], command: string, what: string): string[] {
  if (!Array.isArray(values)) {
    throw new TypeError(`Cannot spawn "${command}": args ${describe(values)} must be an array`);
  }
  for (const value of values) {
    if (typeof value !== "string" || value.includes("\0")) {
      throw new TypeError(
        `Cannot spawn "${command}": ${what} ${describe(value)} must be a string without NUL`,
      );
    }
  }
  return [...values];
}

/** An optional array option, such as `signalMask`: `undefined` is `[]`, a non-array a TypeError. */
function validateList<T>(values: readonly T[] | undefined, command: string, what: string): T[] {
  if (values === undefined) return [];
  if (!Array.isArray(values)) {
    throw new TypeError(`Cannot spawn "${command}": ${what} ${describe(values)} must be an array`);
  }
  return [...values];
}

function validateFds(fds: SpawnOptions["fds"], command: string): Map<number, number> {
  const result = new Map<number, number>();
  if (fds === undefined) return result;
  if (typeof fds !== "object" || fds === null) {
    throw new TypeError(
      `Cannot spawn "${command}": fds ${describe(fds)} must be an object, a Map or an array ` +
        "of [child fd, descriptor] pairs",
    );
  }
  const pairs: Iterable<unknown> = Symbol.iterator in fds
    ? fds as Iterable<unknown>
    : Object.entries(fds);
  for (const pair of pairs) {
    if (!Array.isArray(pair)) {
      throw new TypeError(
        `Cannot spawn "${command}": fds entry ${
          describe(pair)
        } must be a [child fd, descriptor] pair`,
      );
    }
    const [key, fd] = pair as [unknown, FdLike];
    const childFd = typeof key === "string" ? Number(key) : key;
    if (typeof childFd !== "number" || !Number.isInteger(childFd)) {
      throw new TypeError(
        `Cannot spawn "${command}": child fd ${describe(key)} must be an integer`,
      );
    }
    if (childFd < 3 || childFd > 255) {
      throw new RangeError(
        `Cannot spawn "${command}": child fd ${childFd} must be from 3 to 255 ` +
          `(0, 1 and 2 are set with stdin, stdout and stderr)`,
      );
    }
    if (result.has(childFd)) {
      throw new TypeError(`Cannot spawn "${command}": child fd ${childFd} is given twice`);
    }
    result.set(childFd, peekFd(fd, `fd for child fd ${childFd}`));
  }
  return result;
}

function validateKillGrace(killGrace: unknown, command: string): number {
  if (killGrace === undefined) return 2000;
  if (typeof killGrace !== "number") {
    throw new TypeError(
      `Cannot spawn "${command}": killGrace ${describe(killGrace)} must be a number of ms`,
    );
  }
  if (!(killGrace >= 0)) {
    throw new RangeError(
      `Cannot spawn "${command}": killGrace ${killGrace} must be a number of ms >= 0, or Infinity`,
    );
  }
  return killGrace;
}

/**
 * Calls `callback` after `ms` (finite, >= 0), chaining timers for delays longer than one timer
 * takes: a timer given more than 2^31 - 1 ms fires at once, as its delay wraps to a C int.
 * Returns what cancels it.
 */
function setLongTimeout(callback: () => void, ms: number): () => void {
  let timer: ReturnType<typeof setTimeout>;
  const wait = (left: number) => {
    timer = left > INT_MAX
      ? setTimeout(() => wait(left - INT_MAX), INT_MAX)
      : setTimeout(callback, left);
  };
  wait(ms);
  return () => clearTimeout(timer);
}

function validateGroup(group: boolean | number | undefined): boolean | number {
  if (group === undefined || typeof group === "boolean") return group ?? false;
  return validateInteger(
    group,
    "processGroup",
    1,
    INT_MAX,
    "true for a new group, or the pgid of a group to join",
  );
}

/** The parent's environment, read from libc's `environ` (as `Deno.Command` merges it). */
function readEnviron(): Record<string, string> {
  const environment: Record<string, string> = Object.create(null);
  const array = new Deno.UnsafePointerView(libc().environ!).getPointer();
  if (!array) return environment;
  const view = new Deno.UnsafePointerView(array);
  for (let i = 0;; i++) {
    const entry = view.getPointer(i * 8);
    if (!entry) break;
    const text = Deno.UnsafePointerView.getCString(entry);
    const equals = text.indexOf("=");
    if (equals > 0) environment[text.slice(0, equals)] = text.slice(equals + 1);
  }
  return environment;
}

/** The child's environment, or `undefined` to pass the parent's unchanged. */
function buildEnvironment(
  options: SpawnOptions,
  command: string,
): Record<string, string> | undefined {
  if (options.env === undefined && !options.clearEnv) return undefined;
  const added = options.env ?? {};
  if (typeof added !== "object") {
    throw new TypeError(
      `Cannot spawn "${command}": env ${describe(added)} must be an object of strings`,
    );
  }
  for (const [key, value] of Object.entries(added)) {
    if (
      key === "" || key.includes("=") || key.includes("\0") || typeof value !== "string" ||
      value.includes("\0")
    ) {
      throw new TypeError(
        `Cannot spawn "${command}": environment variable ${key} is not a valid name and string value`,
      );
    }
  }
  return Object.assign(Object.create(null), options.clearEnv ? {} : readEnviron(), added);
}

function checkDirectory(c: Libc, cwd: string, command: string): void {
  const fd = check(c.open(cstring(cwd), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0), "open", {
    action: `spawn "${command}" in working directory`,
    objectName: cwd,
  });
  closeFd(fd);
}

/**
 * Finds the program as the child's execvp would: a path with a "/" from the child's working
 * directory, a bare name in the child's PATH (relative entries, too, from the child's working
 * directory). The result is absolute whenever the child's working directory matters, so that
 * the permission check and the spawn use the very path the child runs.
 */
function resolveProgram(
  c: Libc,
  command: string,
  cwd: string | undefined,
  searchPath: string | undefined,
): string {
  const operation = { action: "spawn", objectName: command };
  const fromChildDirectory = (path: string) =>
    path.startsWith("/") || cwd === undefined ? path : `${absoluteDirectory(cwd)}/${path}`;
  if (command.includes("/")) {
    const located = fromChildDirectory(command);
    check(c.access(cstring(located), X_OK), "access", operation);
    return located;
  }
  let denied = false;
  for (const dir of (searchPath ?? "/usr/local/bin:/usr/bin:/bin").split(":")) {
    const candidate = fromChildDirectory(`${dir || "."}/${command}`);
    if (c.access(cstring(candidate), X_OK) === 0) return candidate;
    if (c.access(cstring(candidate), 0) === 0) denied = true;
  }
  throw systemError(denied ? EACCES : ENOENT, "access", {
    ...operation,
    hint: denied ? "it is not executable" : "not in PATH",
  });
}

/**
 * `dir` as an absolute path: a relative one is taken from this process's working directory
 * (read from /proc/self/cwd, else Deno.cwd()).
 */
function absoluteDirectory(dir: string): string {
  if (dir.startsWith("/")) return dir;
  return `${readLink("/proc/self/cwd") ?? Deno.cwd()}/${dir}`;
}

interface DescriptorPlan {
  /** childFd -> parent fd, for every descriptor the child gets besides inherited stdio. */
  mapping: Map<number, number>;
  /** The parent's ends of "piped" stdio. */
  parentEnds: [WriteEnd | null, ReadEnd | null, ReadEnd | null];
  /** The child's ends of "piped" stdio, closed in the parent after the spawn. */
  childEnds: (ReadEnd | WriteEnd)[];
}

function planDescriptors(
  options: SpawnOptions,
  extra: Map<number, number>,
  command: string,
): DescriptorPlan {
  const plan: DescriptorPlan = {
    mapping: new Map(),
    parentEnds: [null, null, null],
    childEnds: [],
  };
  const stdio: Stdio[] = [
    options.stdin ?? "inherit",
    options.stdout ?? "inherit",
    options.stderr ?? "inherit",
  ];
  try {
    for (const [childFd, choice] of stdio.entries()) {
      if (choice === "inherit") continue;
      if (choice === "null") {
        plan.mapping.set(childFd, -1);
      } else if (choice === "piped") {
        const p = pipe({ capacity: options.pipeCapacity });
        if (childFd === 0) plan.parentEnds[0] = p.writer;
        else plan.parentEnds[childFd as 1 | 2] = p.reader;
        const childEnd = childFd === 0 ? p.reader : p.writer;
        plan.childEnds.push(childEnd);
        plan.mapping.set(childFd, childEnd.fd);
      } else if (typeof choice === "string") {
        throw new TypeError(
          `Cannot spawn "${command}": stdio ${
            describe(choice)
          } must be "inherit", "null", "piped" or a descriptor`,
        );
      } else {
        plan.mapping.set(childFd, peekFd(choice, `stdio fd ${childFd}`));
      }
    }
    for (const [childFd, fd] of extra) plan.mapping.set(childFd, fd);
    for (const [childFd, fd] of plan.mapping) {
      if (fd >= 0) {
        check(libc().fcntl(fd, F_GETFD, 0), "fcntl", {
          action: `hand file descriptor ${fd} to "${command}" as fd ${childFd}`,
        });
      }
    }
    return plan;
  } catch (error) {
    closePlan(plan);
    throw error;
  }
}

function closePlan(plan: DescriptorPlan): void {
  for (const end of [...plan.parentEnds, ...plan.childEnds]) end?.close();
}

function spawnWith(
  c: Libc,
  program: string,
  argv: string[],
  environment: Record<string, string> | undefined,
  cwd: string | undefined,
  mapping: Map<number, number>,
  mask: number[],
  options: SpawnOptions,
  group: boolean | number,
): number {
  const actions = new Uint8Array(opaque.posix_spawn_file_actions_t);
  const attributes = new Uint8Array(opaque.posix_spawnattr_t);
  const operation = { action: "spawn", objectName: argv[0] };
  const call = (result: number, name: string) => {
    if (result !== 0) throw systemError(result, name, operation);
  };
  call(c.posix_spawn_file_actions_init(actions), "posix_spawn_file_actions_init");
  call(c.posix_spawnattr_init(attributes), "posix_spawnattr_init");
  try {
    addFileActions(c, actions, mapping, call);
    if (cwd !== undefined) {
      call(
        c.posix_spawn_file_actions_addchdir_np(actions, cstring(cwd)),
        "posix_spawn_file_actions_addchdir_np",
      );
    }
    const blocked = new Uint8Array(opaque.sigset_t);
    c.sigemptyset(blocked);
    for (const signal of mask) c.sigaddset(blocked, signal);
    call(c.posix_spawnattr_setsigmask(attributes, blocked), "posix_spawnattr_setsigmask");
    let flags = POSIX_SPAWN_SETSIGMASK;
    if (options.resetSignals !== false) {
      const every = new Uint8Array(opaque.sigset_t);
      c.sigfillset(every);
      call(c.posix_spawnattr_setsigdefault(attributes, every), "posix_spawnattr_setsigdefault");
      flags |= POSIX_SPAWN_SETSIGDEF;
    }
    if (group !== false) {
      call(
        c.posix_spawnattr_setpgroup(attributes, group === true ? 0 : group),
        "posix_spawnattr_setpgroup",
      );
      flags |= POSIX_SPAWN_SETPGROUP;
    }
    call(c.posix_spawnattr_setflags(attributes, flags), "posix_spawnattr_setflags");

    const argvStrings = argv.map(cstring);
    const argvArray = pointerArray(argvStrings);
    const envStrings = environment &&
      Object.entries(environment).map(([k, v]) => cstring(`${k}=${v}`));
    const envArray = envStrings ? pointerArray(envStrings) : undefined;
    const environ = envArray
      ? Deno.UnsafePointer.of(envArray)
      : new Deno.UnsafePointerView(c.environ!).getPointer();
    const pid = new Int32Array(1);
    call(
      c.posix_spawn(
        pid,
        cstring(program),
        actions,
        attributes,
        Deno.UnsafePointer.of(argvArray),
        environ,
      ),
      "posix_spawn",
    );
    return pid[0]!;
  } finally {
    c.posix_spawn_file_actions_destroy(actions);
    c.posix_spawnattr_destroy(attributes);
  }
}

/**
 * Puts each descriptor at its number in the child, whatever overlaps there are between the
 * parent's numbers and the child's: first every source is copied above all numbers involved,
 * then each copy onto its target, then everything else from 3 up is closed.
 */
function addFileActions(
  c: Libc,
  actions: Uint8Array<ArrayBuffer>,
  mapping: Map<number, number>,
  call: (result: number, name: string) => void,
): void {
  const entries = [...mapping];
  const highest = Math.max(2, ...entries.flatMap(([target, source]) => [target, source]));
  entries.forEach(([, source], i) => {
    if (source >= 0) {
      call(
        c.posix_spawn_file_actions_adddup2(actions, source, highest + 1 + i),
        "posix_spawn_file_actions_adddup2",
      );
    }
  });
  const devNull = cstring("/dev/null");
  entries.forEach(([target, source], i) => {
    if (source < 0) {
      const flags = target === 0 ? O_RDONLY : O_WRONLY;
      call(
        c.posix_spawn_file_actions_addopen(actions, target, devNull, flags, 0),
        "posix_spawn_file_actions_addopen",
      );
    } else {
      call(
        c.posix_spawn_file_actions_adddup2(actions, highest + 1 + i, target),
        "posix_spawn_file_actions_adddup2",
      );
    }
  });
  const maxTarget = Math.max(2, ...entries.map(([target]) => target));
  for (let fd = 3; fd < maxTarget; fd++) {
    if (!mapping.has(fd)) {
      call(c.posix_spawn_file_actions_addclose(actions, fd), "posix_spawn_file_actions_addclose");
    }
  }
  call(
    c.posix_spawn_file_actions_addclosefrom_np(actions, maxTarget + 1),
    "posix_spawn_file_actions_addclosefrom_np",
  );
}

function pointerArray(strings: Uint8Array<ArrayBuffer>[]): BigUint64Array<ArrayBuffer> {
  const array = new BigUint64Array(strings.length + 1);
  strings.forEach((
    bytes,
    i,
  ) => (array[i] = Deno.UnsafePointer.value(Deno.UnsafePointer.of(bytes))));
  return array;
}
