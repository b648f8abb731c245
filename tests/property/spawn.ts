/**
 * Properties of @posix/ipc/spawn: spawn and spawnDeno with hostile commands and options (the
 * child's process group, descriptors, signal mask, grace), decodeWaitStatus, and the
 * ChildProcess members. Kill-like calls are watched through sentinel processes: a child's kill
 * or killGroup, or a spawn that joins a wrapped process group, must never signal a sentinel.
 *
 * @module
 */

import { ChildProcess, decodeWaitStatus, spawn, spawnDeno } from "../../mod.ts";
import { tempFile } from "../helpers.ts";
import { either, fc, hostile, options, Ref, ref, STRING_EDGES } from "./arbitraries.ts";
import { FdWatch, refusedFd, sacrificialFd, wrappedFd } from "./fds.ts";
import type { Case, Property, PropertyGroup } from "./harness.ts";
import { constructorProperty, memberProperties, useOtherHandle } from "./members.ts";
import { CONTAINED, HARMLESS_SIGNALS, Sentinels } from "./sentinels.ts";
import { validSignal } from "./signal.ts";

let watch: FdWatch;
let sentinels: Sentinels;
let module: string;

/** Programs that end by themselves at once, and hostile commands (no random names). */
const command = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom("true", "false", "/bin/true", "sh") },
  { weight: 2, arbitrary: fc.constantFrom(...STRING_EDGES) },
  { weight: 2, arbitrary: hostile.filter((value) => typeof value !== "string") },
);

/** A process group: new, the caller's, a sentinel's as it wraps in a C int, or hostile. */
const processGroup = fc.oneof(
  fc.boolean(),
  fc.constantFrom(
    ...["sentinel+2^32", "sentinel-2^32", "-sentinel", "1+2^32", "0+2^32"].map((d) =>
      new Ref("pgid", d)
    ),
  ),
  hostile.filter((value) =>
    !(typeof value === "number" && Number.isInteger(value) && value >= 1 && value < 2 ** 31)
  ),
);

const stdio = either(fc.constantFrom("null", "piped", new Ref("owned-fd")), 3);

const spawnOptions = options({
  args: fc.array(either(fc.constantFrom("-c", "exit 0", "x", "")), { maxLength: 3 }),
  env: fc.constantFrom({ A: "1" }, { PATH: "/nonexistent" }, {}),
  clearEnv: fc.boolean(),
  cwd: fc.constantFrom("/", "/tmp", new URL("file:///tmp")),
  stdin: stdio,
  stdout: stdio,
  stderr: stdio,
  fds: fc.oneof(
    fc.constant({}),
    fc.tuple(
      fc.constantFrom(3, 4, 9, 2 ** 32 + 3, -1, 1),
      fc.oneof(ref("owned-fd"), sacrificialFd, wrappedFd),
    )
      .map(([at, fd]) => [[at, fd]]),
    fc.tuple(fc.constantFrom("3", "toString", "__proto__"), ref("owned-fd")).map(([at, fd]) => ({
      [at]: fd,
    })),
  ),
  processGroup,
  signalMask: fc.array(either(validSignal), { maxLength: 3 }),
  resetSignals: fc.boolean(),
  killGrace: fc.constantFrom(0, 10, 100),
  pipeCapacity: fc.constantFrom(4096, 65536),
  dieWithParent: either(fc.oneof(fc.boolean(), validSignal, fc.constantFrom("SIG32", 0))),
}, 3);

function resolveSpawn(marker: Ref, c: Case): unknown {
  if (marker.kind === "pgid") {
    const pgid = sentinels.pid(0);
    const base = marker.detail.replace(/^-/, "").startsWith("sentinel")
      ? pgid
      : Number(marker.detail[0]);
    const shift = marker.detail.endsWith("+2^32")
      ? 2 ** 32
      : marker.detail.endsWith("-2^32")
      ? -(2 ** 32)
      : 0;
    return (marker.detail.startsWith("-") ? -base : base) + shift;
  }
  return watch.resolve(marker, c);
}

/** No sentinel may show a signal, no bystander descriptor may be touched. */
async function nothingTouched(): Promise<void> {
  const found = await sentinels.renew();
  if (found.length) throw new Error(`a sentinel was signalled: ${JSON.stringify(found)}`);
  watch.assertUntouched();
}

/** Ends a child: SIGKILL to it and its group, then waits (bounded by the harness). */
async function end(child: unknown): Promise<void> {
  if (!(child instanceof ChildProcess)) return;
  try {
    child.kill("SIGKILL");
  } catch {
    // exited already
  }
  await child.status;
  child.stdin?.close();
  child.stdout?.close();
  child.stderr?.close();
}

/** A signal for a child's kill: anything contained, else harmless ones and hostile values. */
const childSignal = CONTAINED
  ? either(fc.oneof(validSignal, fc.constantFrom("SIGKILL", "SIGSTOP", 0)))
  : fc.oneof(fc.constantFrom(...HARMLESS_SIGNALS), hostile.filter((v) => typeof v !== "number"));

export const group: PropertyGroup = {
  covers: [
    "spawn",
    "spawnDeno",
    "decodeWaitStatus",
    "new ChildProcess",
    ...["exited", "kill", "killGroup", "output", "[Symbol.asyncDispose]"].map(
      (member) => `ChildProcess.prototype.${member}`,
    ),
  ],
  async properties(): Promise<Property[]> {
    watch = new FdWatch();
    sentinels = await Sentinels.start(2);
    module = tempFile("Deno.exit(0);\n").replace(/$/, "");
    Deno.renameSync(module, `${module}.ts`);
    module = `${module}.ts`;
    const otherChild = spawn("sleep", { args: ["1000"], processGroup: true });
    useOtherHandle(() => Object.create(otherChild));
    cleanupOther = () => end(otherChild);
    return [
      {
        name:
          "spawn() starts the program with the options given or refuses them, signalling no one else",
        covers: ["spawn"],
        runs: 1500,
        args: [command, spawnOptions],
        resolve: resolveSpawn,
        call: async ([program, opts], c) => {
          const child = spawn(program as never, opts as never);
          c.defer(() => end(child));
          c.onStall(() => child.kill("SIGKILL"));
          // Its group, if it has one of its own, is the only one killGroup may reach.
          if (child.pgid !== Deno.pid && (opts as { processGroup?: unknown })?.processGroup) {
            try {
              child.killGroup("SIGKILL");
            } catch (error) {
              if (!(error instanceof Deno.errors.NotFound || error instanceof TypeError)) {
                throw error;
              }
            }
          }
          await child.status;
        },
        after: nothingTouched,
      },
      {
        name: "spawnDeno() refuses malformed permissions and flags, or runs the module",
        covers: ["spawnDeno"],
        runs: 250,
        args: [
          fc.oneof(ref("module"), hostile),
          options({
            permissions: fc.oneof(
              fc.constantFrom("all", { read: true }, { read: ["/tmp"] }, { env: false }),
              fc.constantFrom(["--allow-ffi"], "ALL", { ffi: "yes" }, { read: ["/a,b"] }, {
                toString: true,
              }),
            ),
            denoFlags: fc.constantFrom([], ["--quiet"], ["--allow-all"], ["run"], [""]),
            stdout: fc.constant("null"),
            stderr: fc.constant("null"),
          }, 1),
        ],
        resolve: (marker, c) => marker.kind === "module" ? module : resolveSpawn(marker, c),
        call: async ([path, opts], c) => {
          const child = spawnDeno(path as never, opts as never);
          c.defer(() => end(child));
          // A child that runs on (Deno fetching "//x" as a URL) is the child's business: end it.
          c.onStall(() => child.kill("SIGKILL"));
          await child.status;
        },
        stallMs: 5000,
        after: nothingTouched,
      },
      {
        name: "decodeWaitStatus() decodes any 16-bit status and refuses the rest",
        covers: ["decodeWaitStatus"],
        runs: 4000,
        args: [either(fc.integer({ min: 0, max: 0xffff }))],
        call: ([status]) => {
          const decoded = decodeWaitStatus(status as never);
          if (!["exited", "signaled", "lost"].includes(decoded.state)) throw new Error("bad state");
        },
      },
      constructorProperty("ChildProcess", ChildProcess, 300, [
        refusedFd,
        refusedFd,
        hostile,
        hostile,
      ]),
      ...memberProperties<ChildProcess>({
        name: "ChildProcess",
        cls: ChildProcess,
        make: () => spawn("sleep", { args: ["1000"], processGroup: true, killGrace: 50 }),
        close: (child) => end(child),
        members: {
          exited: { runs: 300, after: nothingTouched },
          kill: { args: [childSignal], runs: 800, after: nothingTouched },
          killGroup: { args: [childSignal], runs: 800, after: nothingTouched },
          output: {
            runs: 200,
            call: (child) => {
              // Ends the sleeping child first, so that output() has an end to wait for.
              try {
                child.kill("SIGKILL");
              } catch {
                // a wrong receiver
              }
              return ChildProcess.prototype.output.call(child);
            },
            after: nothingTouched,
          },
          "[Symbol.asyncDispose]": { runs: 200, after: nothingTouched },
        },
      }),
    ];
  },
  async teardown() {
    await cleanupOther?.();
    await sentinels.close();
    watch.close();
    Deno.removeSync(module);
  },
};

let cleanupOther: (() => Promise<void>) | undefined;
