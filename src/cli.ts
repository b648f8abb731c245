/**
 * `ipc`: the inspector for every IPC object on the machine, a modern `ipcs`/`ipcrm`.
 *
 * ```sh
 * deno run --allow-ffi --allow-read jsr:@posix/ipc/cli ls
 * deno task ipc ls --kind shm --json     # in this repository
 * ```
 *
 * - `ipc ls [--kind K] [--json]`: POSIX shared memory and named semaphores (/dev/shm), POSIX
 *   message queues (the mqueue file system, when mounted), System V segments, semaphore sets
 *   and queues (/proc/sysvipc), with size, mode, owner, the processes the kernel records and
 *   whether they still run, attach and message counts, and age.
 * - `ipc rm NAME|ID... [--kind K]`: removes objects by POSIX name or System V id.
 * - `ipc gc [--dry-run] [--force] [--kind K] [--json] [NAME|ID...]`: removes orphans, objects
 *   that are provably abandoned (see {@linkcode IpcObject.state}), and says why each counts as
 *   one; `--force` also removes those that nothing uses now but someone may want later.
 * - `ipc limits [--json]`: the kernel's and the user's limits, with what each means.
 *
 * Exit codes: 0 done, 1 an object could not be found or removed, 2 a usage error.
 * Every libc and /proc read goes through --allow-ffi; /proc and /dev need no --allow-read.
 *
 * @example Listing from a program
 * ```ts
 * import { main } from "@posix/ipc/cli";
 *
 * const code = await main(["ls", "--kind", "sysv-shm", "--json"]);
 * console.log(code); // 0
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  type Inventory,
  inventory,
  type IpcKind,
  type IpcObject,
  isKind,
  KINDS,
  removeObject,
} from "./_inventory.ts";
import { type IpcLimit, limits } from "./_limits.ts";
import { paint, table } from "./_table.ts";
import { describe as describeValue, formatBytes } from "./_validate.ts";

export type { IpcKind, IpcObject, IpcProcess, IpcState } from "./_inventory.ts";
export type { IpcLimit } from "./_limits.ts";

/** Where {@linkcode main} writes; the process's stdout and stderr by default. */
export interface CliOutput {
  /** Writes a line of results. */
  out(line: string): void;
  /** Writes a line of notes or errors. */
  err(line: string): void;
  /** Whether to colour the tables (a terminal without NO_COLOR, by default). */
  color: boolean;
}

const HELP = {
  main: `ipc: list, remove and clean up the IPC objects on this machine

Usage: ipc <command> [options]

Commands:
  ls        list shared memory, semaphores and message queues, POSIX and System V
  rm        remove objects by POSIX name or System V id
  gc        remove orphans: objects provably abandoned by a program that crashed
  limits    the kernel's and the user's limits on IPC objects

Run "ipc <command> --help" for a command's options.
Exit codes: 0 done, 1 something could not be found or removed, 2 a usage error.`,
  ls: `Usage: ipc ls [--kind KIND] [--json]

Lists every IPC object: POSIX shared memory and named semaphores (/dev/shm), POSIX message
queues (the mqueue file system, when mounted) and System V objects (/proc/sysvipc), with what
"ipc gc" makes of each (STATE: orphaned, unused, in use or unknown) and why (WHY).

  --kind KIND   only this kind: ${KINDS.join(", ")} (repeatable)
  --json        an array of objects, for scripts
  -h, --help    this text`,
  rm: `Usage: ipc rm [--kind KIND] NAME|ID...

Removes objects: POSIX ones by name ("/jobs"), System V ones by id (as "ipc ls" shows).
Removing a name does not disturb processes that have the object open; it goes with the last.

  --kind KIND   the kind, when a name or id matches more than one
  -h, --help    this text`,
  gc: `Usage: ipc gc [--dry-run] [--force] [--kind KIND] [--json] [NAME|ID...]

Removes orphans, objects provably abandoned, and says why each is one. An orphan is a POSIX
shared memory object, semaphore or message queue that a handle of @posix/ipc created and
promised to remove (not persisted: it carries a mark, the sticky bit, "T" in ls -l), whose
handle is gone without closing (the kernel says so: the lock that handle held on it is free;
for a semaphore, which holds no descriptor, no process maps it), and that no process has open.
Removing its name does what that handle's close() would have done; a process that still has it
open keeps it until it closes it.

Everything else is kept, and "ipc gc --dry-run" says why:
  persisted objects and other programs' (no mark): someone may open them later
  a message queue with messages waiting (POSIX or System V)
  System V objects: they outlive their creators by design, and the kernel records no owner
    that promised to remove one. A segment whose creator is gone and that nothing has attached
    may still hold data for the next run of its program (PostgreSQL's do), so nothing proves
    it abandoned.
  anything open, mapped or attached, whose owner's handle is open, or of which the kernel
    tells too little (a process of the owner that cannot be inspected)
A semaphore's owner is seen only through /proc: run gc in the PID namespace of the programs
that use named semaphores (shared memory and queues are judged by the kernel's lock, which
every namespace sees).

  --dry-run     say what would be removed and what kept, and why; remove nothing
  --force       also remove what nothing uses now (state "unused": persisted, other
                programs', queues with messages, System V); never what is in use
  --kind KIND   only this kind (repeatable)
  --json        { dryRun, removed, kept, failed } with each object's state and reason
  NAME|ID       only these objects
  -h, --help    this text`,
  limits: `Usage: ipc limits [--json]

The kernel's limits (/proc/sys/kernel, /proc/sys/fs/mqueue), the size of /dev/shm and this
process's resource limits, with what each means.

  --json        an array of { name, value, hard?, unit, meaning }
  -h, --help    this text`,
};

/** A mistake in the command line: printed with a hint, exit code 2. */
class UsageError extends Error {}

/**
 * Runs the `ipc` command line.
 *
 * @param args The arguments after the program name, such as `["ls", "--json"]`.
 * @param output Where to write; the process's stdout and stderr by default.
 * @returns The exit code: 0 done, 1 an object could not be found or removed, 2 a usage error.
 * @throws {TypeError} (the promise rejects) when `args` is not an array of strings or `output`
 * lacks its `out` and `err` functions, before anything is listed or removed.
 *
 * @example
 * ```ts
 * import { main } from "@posix/ipc/cli";
 *
 * const lines: string[] = [];
 * const code = await main(["limits", "--json"], {
 *   out: (line) => lines.push(line),
 *   err: console.error,
 *   color: false,
 * });
 * console.log(code, JSON.parse(lines.join("\n")).length > 0); // 0 true
 * ```
 */
// deno-lint-ignore require-await
export async function main(args: string[], output: CliOutput = terminal()): Promise<number> {
  validateMainArguments(args, output);
  try {
    const [command, ...rest] = args;
    switch (command) {
      case "ls":
        return list(rest, output);
      case "rm":
        return remove(rest, output);
      case "gc":
        return collect(rest, output);
      case "limits":
        return showLimits(rest, output);
      case undefined:
      case "help":
      case "-h":
      case "--help":
        output.out(HELP.main);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (error) {
    if (!(error instanceof UsageError) && !(error instanceof TypeError)) throw error;
    output.err(`ipc: ${error.message}`);
    output.err(`Run "ipc --help" for usage.`);
    return 2;
  }
}

/** Checks main()'s own arguments: a TypeError here is the caller's bug, not a usage error. */
function validateMainArguments(args: unknown, output: unknown): void {
  if (!Array.isArray(args) || !args.every((arg) => typeof arg === "string")) {
    throw new TypeError(
      `Cannot run ipc with args ${describeValue(args)}: give an array of strings`,
    );
  }
  const { out, err, color } = typeof output === "object" && output !== null
    ? output as Partial<Record<keyof CliOutput, unknown>>
    : {};
  if (typeof out !== "function" || typeof err !== "function") {
    throw new TypeError(
      `Cannot run ipc with output ${describeValue(output)}: give { out(line), err(line), color }`,
    );
  }
  if (color !== undefined && typeof color !== "boolean") {
    throw new TypeError(`Cannot run ipc with output.color ${describeValue(color)}: give a boolean`);
  }
}

function terminal(): CliOutput {
  return {
    out: (line) => console.log(line),
    err: (line) => console.error(line),
    color: Deno.stdout.isTerminal() && !Deno.noColor,
  };
}

/** parseArgs with the options every command shares; unknown flags are usage errors. */
function parse(
  command: keyof typeof HELP,
  args: string[],
  flags: { kind?: boolean; json?: boolean; dryRun?: boolean; force?: boolean },
  positionals: boolean,
) {
  const { values, positionals: operands } = parseArgs({
    args,
    allowPositionals: positionals,
    strict: true,
    options: {
      help: { type: "boolean", short: "h" },
      ...(flags.kind ? { kind: { type: "string", multiple: true } } : {}),
      ...(flags.json ? { json: { type: "boolean" } } : {}),
      ...(flags.dryRun ? { "dry-run": { type: "boolean" } } : {}),
      ...(flags.force ? { force: { type: "boolean" } } : {}),
    },
  });
  const kinds = ((values.kind ?? []) as string[]).map((kind) => {
    if (!isKind(kind)) {
      throw new UsageError(`unknown kind "${kind}": use one of ${KINDS.join(", ")}`);
    }
    return kind;
  });
  return {
    help: values.help === true ? HELP[command] : undefined,
    kinds: kinds.length > 0 ? kinds : KINDS,
    json: values.json === true,
    dryRun: values["dry-run"] === true,
    force: values.force === true,
    operands,
  };
}

function list(args: string[], output: CliOutput): number {
  const options = parse("ls", args, { kind: true, json: true }, false);
  if (options.help) return help(options.help, output);
  const found = inventory(options.kinds);
  reportNotes(found, output);
  if (options.json) output.out(JSON.stringify(found.objects, null, 2));
  else if (found.objects.length === 0) output.err("No IPC objects.");
  else output.out(objectTable(found.objects, output.color));
  return 0;
}

function remove(args: string[], output: CliOutput): number {
  const options = parse("rm", args, { kind: true }, true);
  if (options.help) return help(options.help, output);
  if (options.operands.length === 0) throw new UsageError("rm needs a NAME or ID to remove");
  const operands = options.operands.map(parseOperand); // usage errors before any listing
  const found = inventory(options.kinds);
  let failed = 0;
  for (const operand of operands) {
    const matches = match(found.objects, operand);
    if (matches.length !== 1) {
      failed++;
      output.err(
        matches.length === 0
          ? `ipc: no ${kindsPhrase(options.kinds)} is named "${operand.text}"`
          : `ipc: "${operand.text}" is ambiguous: it names a ${
            matches.map((m) => m.kind).join(" and a ")
          }; add --kind`,
      );
      continue;
    }
    failed += tryRemove(matches[0]!, output) ? 0 : 1;
  }
  reportNotes(found, output);
  return failed > 0 ? 1 : 0;
}

function collect(args: string[], output: CliOutput): number {
  const options = parse("gc", args, { kind: true, json: true, dryRun: true, force: true }, true);
  if (options.help) return help(options.help, output);
  const operands = options.operands.map(parseOperand); // usage errors before any listing
  const found = inventory(options.kinds);
  let missing = 0;
  let candidates = found.objects;
  if (operands.length > 0) {
    const named = new Set<IpcObject>();
    for (const operand of operands) {
      const matches = match(found.objects, operand);
      if (matches.length === 0) {
        missing++;
        output.err(`ipc: no ${kindsPhrase(options.kinds)} is named "${operand.text}"`);
      }
      for (const object of matches) named.add(object);
    }
    candidates = [...named];
  }
  const removable = (object: IpcObject) =>
    object.state === "orphaned" || (options.force && object.state === "unused");
  const targets = candidates.filter(removable);
  const kept = candidates.filter((object) => !removable(object));
  const removed: IpcObject[] = [];
  const failed: { object: IpcObject; error: string }[] = [];
  for (const object of targets) {
    if (options.dryRun) {
      removed.push(object);
      continue;
    }
    try {
      removeObject(object, object.state === "orphaned");
      removed.push(object);
    } catch (error) {
      if (!(error instanceof Error)) throw error;
      failed.push({ object, error: error.message });
    }
  }
  reportNotes(found, output);
  if (options.json) {
    output.out(JSON.stringify({ dryRun: options.dryRun, removed, kept, failed }, null, 2));
  } else {
    const verb = options.dryRun ? "Would remove" : "Removed";
    for (const object of removed) {
      const why = object.state === "orphaned"
        ? object.reason
        : `--force, though ${object.reason.replace(/^kept: /, "")}`;
      output.out(`${verb} ${describe(object)}: ${why}`);
    }
    if (options.dryRun) {
      for (const object of kept) output.out(`Would keep ${describe(object)}: ${object.reason}`);
    }
    for (const { object, error } of failed) {
      output.err(`ipc: cannot remove ${describe(object)}: ${error}`);
    }
    const why = options.dryRun ? "" : ` ("ipc gc --dry-run" says why)`;
    output.err(
      `${verb} ${plural(removed.length, options.force ? "object" : "orphan")}; kept ${
        plural(kept.length, "object")
      }${why}.`,
    );
  }
  return failed.length + missing > 0 ? 1 : 0;
}

function showLimits(args: string[], output: CliOutput): number {
  const options = parse("limits", args, { json: true }, false);
  if (options.help) return help(options.help, output);
  const all = limits();
  if (options.json) {
    output.out(JSON.stringify(all, null, 2));
    return 0;
  }
  const rows = all.map((limit) => [limit.name, limitValue(limit), limit.meaning]);
  output.out(table(["LIMIT", "VALUE", "MEANING"], rows, output.color));
  return 0;
}

function help(text: string, output: CliOutput): number {
  output.out(text);
  return 0;
}

function reportNotes(found: Inventory, output: CliOutput): void {
  for (const note of found.notes) output.err(`note: ${note}`);
}

/** What an operand names: a POSIX name, a System V id, or a System V key. */
type Operand =
  | { text: string; name: string }
  | { text: string; id: number }
  | { text: string; key: string };

/** The largest System V id: ids are non-negative C ints. */
const ID_MAX = 2 ** 31 - 1;

/**
 * Reads an operand, or throws a usage error: a POSIX name starts with "/", a System V id is a
 * decimal from 0 to 2^31 - 1, a key is hex from 0x1 to 0xffffffff (0 is IPC_PRIVATE, which many
 * objects share). Anything else, or out of range, would name no object or the wrong one.
 */
function parseOperand(text: string): Operand {
  if (text.startsWith("/")) return { text, name: text };
  if (/^\d+$/.test(text)) {
    const id = Number(text);
    if (id > ID_MAX) {
      throw new UsageError(
        `"${text}" is out of range for a System V id: ids run from 0 to ${ID_MAX}`,
      );
    }
    return { text, id };
  }
  if (/^0x[0-9a-f]+$/i.test(text)) {
    const key = BigInt(text);
    if (key === 0n) {
      throw new UsageError(
        `"${text}" is IPC_PRIVATE, the key of every private object: name one by its id`,
      );
    }
    if (key > 0xffff_ffffn) {
      throw new UsageError(
        `"${text}" is out of range for a System V key: keys run from 0x1 to 0xffffffff`,
      );
    }
    return { text, key: `0x${key.toString(16).padStart(8, "0")}` };
  }
  throw new UsageError(
    `"${text}" is neither a POSIX name (starting with "/") nor a System V id or key`,
  );
}

/** The objects an operand names. */
function match(objects: IpcObject[], operand: Operand): IpcObject[] {
  if ("name" in operand) {
    return objects.filter((object) => object.id === null && object.name === operand.name);
  }
  if ("id" in operand) return objects.filter((object) => object.id === operand.id);
  return objects.filter((object) => object.id !== null && object.name === operand.key);
}

/** Removes an object, saying so; a failure is reported and gives `false`. */
function tryRemove(object: IpcObject, output: CliOutput): boolean {
  try {
    removeObject(object);
    output.out(`Removed ${describe(object)}`);
    return true;
  } catch (error) {
    if (!(error instanceof Error)) throw error;
    output.err(`ipc: cannot remove ${describe(object)}: ${error.message}`);
    return false;
  }
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

function describe(object: IpcObject): string {
  return object.id === null
    ? `${object.kind} ${object.name}`
    : `${object.kind} ${object.id} (key ${object.name})`;
}

function kindsPhrase(kinds: readonly IpcKind[]): string {
  return kinds.length === KINDS.length ? "IPC object" : kinds.join(" or ");
}

function objectTable(objects: IpcObject[], color: boolean): string {
  const now = Date.now();
  const rows = objects.map((object) => {
    const creator = object.processes.find((p) => p.role === "creator");
    const last = object.processes.find((p) => p.role.startsWith("last"));
    const state = object.state === "orphaned" ? paint("orphaned", "yellow", color) : object.state;
    return [
      object.kind,
      object.name,
      object.id === null ? "-" : String(object.id),
      objectSize(object),
      `0${object.mode.toString(8).padStart(3, "0")}`,
      object.owner,
      creator ? pidCell(creator, color) : "-",
      last ? pidCell(last, color) : "-",
      object.attached === null ? "-" : String(object.attached),
      object.messages === null ? "-" : String(object.messages),
      age(now - Date.parse(object.created)),
      state,
      object.reason,
    ];
  });
  const header = [
    "KIND",
    "NAME/KEY",
    "ID",
    "SIZE",
    "MODE",
    "OWNER",
    "CREATOR",
    "LAST",
    "ATTACHED",
    "MESSAGES",
    "AGE",
    "STATE",
    "WHY",
  ];
  return table(header, rows, color);
}

function objectSize(object: IpcObject): string {
  if (object.semaphores !== null) return `${object.semaphores} sem`;
  if (object.value !== null) return `value ${object.value}`;
  return object.size === null ? "-" : formatBytes(object.size);
}

function pidCell(process: { pid: number; alive: boolean }, color: boolean): string {
  return process.alive
    ? `${process.pid} ${paint("alive", "green", color)}`
    : `${process.pid} ${paint("gone", "red", color)}`;
}

function age(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86400)}d`;
}

function limitValue(limit: IpcLimit): string {
  const show = (value: number | "unlimited" | null | undefined) =>
    value === null || value === undefined
      ? "unknown"
      : value === "unlimited"
      ? "unlimited"
      : limit.unit === "bytes"
      ? formatBytes(value)
      : limit.unit === "pages"
      ? `${value} pages`
      : String(value);
  return limit.hard === undefined
    ? show(limit.value)
    : `${show(limit.value)} (hard ${show(limit.hard)})`;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
