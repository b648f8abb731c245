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
 * - `ipc gc [--dry-run] [--kind K] [NAME|ID...]`: removes orphans: objects that no running
 *   process can still use (see {@linkcode IpcObject.orphaned}).
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
  KINDS,
  removeObject,
} from "./_inventory.ts";
import { type IpcLimit, limits } from "./_limits.ts";
import { paint, table } from "./_table.ts";
import { formatBytes } from "./_validate.ts";

export type { IpcKind, IpcObject, IpcProcess } from "./_inventory.ts";
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
  gc        remove orphans: objects that no running process can still use
  limits    the kernel's and the user's limits on IPC objects

Run "ipc <command> --help" for a command's options.
Exit codes: 0 done, 1 something could not be found or removed, 2 a usage error.`,
  ls: `Usage: ipc ls [--kind KIND] [--json]

Lists every IPC object: POSIX shared memory and named semaphores (/dev/shm), POSIX message
queues (the mqueue file system, when mounted) and System V objects (/proc/sysvipc).

  --kind KIND   only this kind: ${KINDS.join(", ")} (repeatable)
  --json        an array of objects, for scripts
  -h, --help    this text`,
  rm: `Usage: ipc rm [--kind KIND] NAME|ID...

Removes objects: POSIX ones by name ("/jobs"), System V ones by id (as "ipc ls" shows).
Removing a name does not disturb processes that have the object open; it goes with the last.

  --kind KIND   the kind, when a name or id matches more than one
  -h, --help    this text`,
  gc: `Usage: ipc gc [--dry-run] [--kind KIND] [--json] [NAME|ID...]

Removes orphans, and says what it removed:
  POSIX shm, sem, mq   no process has it open or mapped (the kernel records no creator)
  sysv-shm             its creator is gone and nothing is attached
  sysv-sem, sysv-msg   every process that operated on it is gone (never used: kept)
Processes of other users that cannot be inspected count as not using it.

  --dry-run     say what would be removed, remove nothing
  --kind KIND   only this kind (repeatable)
  --json        the removed objects as an array
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
  flags: { kind?: boolean; json?: boolean; dryRun?: boolean },
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
    },
  });
  const kinds = ((values.kind ?? []) as string[]).map((kind) => {
    if (!(KINDS as readonly string[]).includes(kind)) {
      throw new UsageError(`unknown kind "${kind}": use one of ${KINDS.join(", ")}`);
    }
    return kind as IpcKind;
  });
  return {
    help: values.help === true ? HELP[command] : undefined,
    kinds: kinds.length > 0 ? kinds : KINDS,
    json: values.json === true,
    dryRun: values["dry-run"] === true,
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
  const found = inventory(options.kinds);
  let failed = 0;
  for (const operand of options.operands) {
    const matches = match(found.objects, operand);
    if (matches.length !== 1) {
      failed++;
      output.err(
        matches.length === 0
          ? `ipc: no ${kindsPhrase(options.kinds)} is named "${operand}"`
          : `ipc: "${operand}" is ambiguous: it names a ${
            matches.map((m) => m.kind).join(" and a ")
          }; add --kind`,
      );
      continue;
    }
    failed += tryRemove(matches[0]!, output, true) ? 0 : 1;
  }
  reportNotes(found, output);
  return failed > 0 ? 1 : 0;
}

function collect(args: string[], output: CliOutput): number {
  const options = parse("gc", args, { kind: true, json: true, dryRun: true }, true);
  if (options.help) return help(options.help, output);
  const found = inventory(options.kinds);
  let candidates = found.objects;
  if (options.operands.length > 0) {
    candidates = options.operands.flatMap((operand) => match(found.objects, operand));
  }
  const orphans = candidates.filter((object) => object.orphaned === true);
  const removed = options.dryRun
    ? orphans
    : orphans.filter((object) => tryRemove(object, output, false));
  reportNotes(found, output);
  if (options.json) {
    output.out(JSON.stringify(removed, null, 2));
  } else {
    const verb = options.dryRun ? "Would remove" : "Removed";
    for (const object of removed) output.out(`${verb} ${describe(object)}`);
    const kept = candidates.length - orphans.length;
    output.err(`${verb} ${removed.length} orphan(s); ${kept} object(s) still in use or unknown.`);
  }
  return removed.length === orphans.length ? 0 : 1;
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

/** The objects an operand names: a POSIX name, a System V id, or a System V key in hex. */
function match(objects: IpcObject[], operand: string): IpcObject[] {
  if (operand.startsWith("/")) return objects.filter((object) => object.name === operand);
  if (/^\d+$/.test(operand)) return objects.filter((object) => object.id === Number(operand));
  if (/^0x[0-9a-f]+$/i.test(operand) && Number(operand) !== 0) {
    return objects.filter((object) =>
      object.id !== null && Number(object.name) === Number(operand)
    );
  }
  throw new UsageError(
    `"${operand}" is neither a POSIX name (starting with "/") nor a System V id or key`,
  );
}

/** Removes an object, saying so when `announce`; a failure is reported and gives `false`. */
function tryRemove(object: IpcObject, output: CliOutput, announce: boolean): boolean {
  try {
    removeObject(object);
    if (announce) output.out(`Removed ${describe(object)}`);
    return true;
  } catch (error) {
    if (!(error instanceof Error)) throw error;
    output.err(`ipc: cannot remove ${describe(object)}: ${error.message}`);
    return false;
  }
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
    const state = object.orphaned === true
      ? paint("orphaned", "yellow", color)
      : object.orphaned === false
      ? "in use"
      : "unknown";
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
