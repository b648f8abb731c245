/**
 * Properties of the `ipc` inspector's main(): any command line, including hostile ones, ends
 * with an exit code 0, 1 or 2 and never removes what it was not asked to: an object in use is
 * never removed but by `rm` naming it; a persisted segment, a persisted queue holding messages
 * and a System V segment only by `rm` naming them or `gc --force`. Runs (as root) in an IPC
 * namespace of its own, so a wrong removal could reach only this child's objects.
 *
 * @module
 */

import { main } from "../../src/cli.ts";
import { MessageQueue, SharedMemory, SysVSharedMemory } from "../../mod.ts";
import { uniqueName } from "../helpers.ts";
import { fc, hostile, Ref } from "./arbitraries.ts";
import type { Outcome, Property, PropertyGroup } from "./harness.ts";

interface Decoys {
  inUse: SharedMemory;
  persisted: string;
  queue: string;
  sysv: { key: number; id: number };
}

let decoys: Decoys;
let decoyCount = 0;
const mqueueMounted = (() => {
  try {
    return Deno.env.get("PIPC_TEST_MQUEUE") !== undefined;
  } catch {
    return false;
  }
})();

function makeDecoys(): Decoys {
  const persisted = uniqueName("prop-cli-kept");
  SharedMemory.create(persisted, { size: 4096, persist: true }).close();
  const queue = uniqueName("prop-cli-queue");
  const made = MessageQueue.create(queue, { persist: true, maxMessages: 4, messageSize: 64 });
  made.trySend("one");
  made.trySend("two");
  made.close();
  const sysv = SysVSharedMemory.create(0x5eed_0000 + ++decoyCount, { size: 4096, persist: true });
  const decoy = { key: sysv.key, id: sysv.id };
  sysv.close();
  return {
    inUse: SharedMemory.create(uniqueName("prop-cli-used"), { size: 4096 }),
    persisted,
    queue,
    sysv: decoy,
  };
}

function exists(check: () => { close(): void }): boolean {
  try {
    check().close();
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

function sysvExists(id: number): boolean {
  return Deno.readTextFileSync("/proc/sysvipc/shm").split("\n").slice(1).some((row) =>
    row.trim().split(/\s+/)[1] === String(id)
  );
}

/** Command-line words: commands, flags, kinds, the decoys' names and ids, hostile words. */
const word = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      "ls",
      "rm",
      "gc",
      "limits",
      "--json",
      "--dry-run",
      "--force",
      "--kind",
      "-h",
      "--help",
      "--",
      "-",
    ),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "shm",
      "sem",
      "mq",
      "sysv-shm",
      "sysv-sem",
      "sysv-msg",
      "toString",
      "__proto__",
    ),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      ...["in-use", "persisted", "queue", "sysv"].map((d) => new Ref("decoy", d)),
    ),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "/",
      "//",
      "/nope",
      "0",
      "-1",
      "4294967296",
      "/\0",
      "x".repeat(300),
      "*",
      "/dev/shm/*",
    ),
  },
);

/** Which decoys a command line may remove: those it names with rm, or gc --force. */
function mayRemove(args: unknown): (what: string, name: string) => boolean {
  const words = Array.isArray(args) ? args.map(String) : [];
  const command = words.find((w) => !w.startsWith("-"));
  const force = words.includes("--force") && !words.includes("--dry-run");
  return (what, name) => {
    if (words.some((w) => w.startsWith("-h") || w === "--help")) return false;
    if (command === "rm" && words.includes(name)) return true;
    return command === "gc" && force && what !== "in-use";
  };
}

export const group: PropertyGroup = {
  covers: ["main"],
  properties(): Property[] {
    decoys = makeDecoys();
    return [
      {
        name: "main() refuses arguments and outputs of the wrong shape with a TypeError",
        covers: ["main"],
        runs: 300,
        args: [
          fc.oneof(fc.array(word, { maxLength: 3 }), hostile),
          fc.oneof(fc.constant(new Ref("output")), hostile, fc.constant({ out: 1, err: 2 })),
        ],
        resolve: (marker) => {
          if (marker.kind === "output") return { out() {}, err() {}, color: false };
          return "/nope";
        },
        call: async ([args, output]) => {
          const code = await main(args as never, output as never);
          if (![0, 1, 2].includes(code)) throw new Error(`exit code ${code}`);
        },
        stallMs: 5000,
      },
      {
        name: "main() exits 0, 1 or 2 for any command line and removes only what it was asked to",
        covers: ["main"],
        runs: 500,
        args: [fc.array(word, { maxLength: 5 }), fc.constant(new Ref("output"))],
        resolve: (marker) => {
          if (marker.kind === "output") return { out() {}, err() {}, color: false };
          switch (marker.detail) {
            case "in-use":
              return decoys.inUse.name!;
            case "persisted":
              return decoys.persisted;
            case "queue":
              return decoys.queue;
            default:
              return String(decoys.sysv.id);
          }
        },
        call: async ([args, output]) => {
          const code = await main(args as never, output as never);
          if (![0, 1, 2].includes(code)) throw new Error(`exit code ${code}`);
        },
        stallMs: 5000,
        after: (_outcome: Outcome, [args]) => {
          const allowed = mayRemove(args);
          const gone: string[] = [];
          const checks: [string, string, () => boolean][] = [
            [
              "in-use",
              decoys.inUse.name!,
              () => exists(() => SharedMemory.open(decoys.inUse.name!)),
            ],
            [
              "persisted",
              decoys.persisted,
              () => exists(() => SharedMemory.open(decoys.persisted)),
            ],
            ["sysv", String(decoys.sysv.id), () => sysvExists(decoys.sysv.id)],
          ];
          if (mqueueMounted) {
            checks.push([
              "queue",
              decoys.queue,
              () => exists(() => MessageQueue.open(decoys.queue)),
            ]);
          }
          for (const [what, name, present] of checks) {
            if (!present() && !allowed(what, name)) gone.push(`${what} (${name})`);
          }
          if (checks.some(([, , present]) => !present())) {
            teardownDecoys();
            decoys = makeDecoys();
          }
          if (gone.length) {
            throw new Error(`ipc removed what it was not asked to: ${gone.join(", ")}`);
          }
        },
      },
    ];
  },
  teardown() {
    teardownDecoys();
  },
};

function teardownDecoys(): void {
  decoys.inUse.close();
  for (
    const remove of [
      () => SharedMemory.unlink(decoys.persisted),
      () => MessageQueue.unlink(decoys.queue),
      () => {
        const segment = SysVSharedMemory.open(decoys.sysv.key);
        segment.remove();
        segment.close();
      },
    ]
  ) {
    try {
      remove();
    } catch {
      // removed already
    }
  }
}
