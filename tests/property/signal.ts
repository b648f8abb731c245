/**
 * Properties of @posix/ipc/signal: signal names and numbers, kill, killGroup and isAlive (which
 * must signal the intended sentinel or nothing at all, whatever number they are given), and
 * the listeners.
 *
 * @module
 */

import {
  isAlive,
  kill,
  killGroup,
  onSignal,
  signalName,
  signalNumber,
  signals,
} from "../../mod.ts";
import { either, fc, hostile, Ref, ref } from "./arbitraries.ts";
import type { Outcome, Property, PropertyGroup } from "./harness.ts";
import { CONTAINED, HARMLESS_SIGNALS, Sentinels } from "./sentinels.ts";

/** Valid signals: names, aliases, real-time names, numbers. */
export const validSignal: fc.Arbitrary<string | number> = fc.oneof(
  fc.constantFrom("SIGTERM", "SIGUSR1", "SIGUSR2", "SIGHUP", "SIGINT", "SIGWINCH", "SIGCHLD"),
  fc.constantFrom("SIGRTMIN", "SIGRTMIN+1", "SIGRTMAX-2", "SIGRTMAX", "SIGIOT", "SIGPOLL"),
  fc.integer({ min: 1, max: 64 }),
);

/** A signal for a call that really sends it: anything when contained, else harmless ones. */
const sendable: fc.Arbitrary<unknown> = CONTAINED
  ? either(fc.oneof(validSignal, fc.constantFrom("SIGKILL", "SIGSTOP", "SIGCONT", 0, 9, 19)))
  : fc.constantFrom(...HARMLESS_SIGNALS);

/**
 * A pid or group: the target sentinel, numbers that wrap to a sentinel or to the runner in a C
 * int (±2^32, 2^32 · k), its negation (a group, to kill()), or any hostile value.
 */
const processNumber: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 2, arbitrary: ref("process", "target") },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      "target+2^32",
      "target-2^32",
      "-target",
      "target+0.5",
      "bystander+2^32",
      "-bystander",
      "runner+2^32",
      "runner-2^32",
      "-runner",
      "-1+2^32",
      "0+2^32",
      "1+2^32",
      "-1-2^32",
      "target+2^64",
      "-target+2^33",
    ).map((detail) => new Ref("process", detail)),
  },
  // A hostile value that is a valid pid names a real process, which the call may signal: only
  // the refused ones (the library must not signal anything for them) are generated.
  { weight: 4, arbitrary: hostile.filter((value) => !isValidPid(value)) },
);

function isValidPid(value: unknown): boolean {
  return typeof value === "number" && Number.isInteger(value) && value >= 1 && value < 2 ** 31;
}

let sentinels: Sentinels | undefined;

function numberFor(detail: string, target: number): number {
  const [, sign, base, offset] = /^(-?)(target|bystander|runner|-?\d+)(.*)$/.exec(detail)!;
  const bases: Record<string, number> = {
    target,
    bystander: sentinels!.pid(1),
    runner: Deno.pid,
  };
  const value = bases[base!] ?? Number(base);
  const shift = offset === "+2^32"
    ? 2 ** 32
    : offset === "-2^32"
    ? -(2 ** 32)
    : offset === "+0.5"
    ? 0.5
    : offset === "+2^64"
    ? 2 ** 64
    : offset === "+2^33"
    ? 2 ** 33
    : 0;
  return (sign ? -value : value) + shift;
}

/** Resolves the process markers: sentinel 0 is the target, 1 and 2 bystanders. */
function resolveProcess(ref: Ref): unknown {
  if (ref.kind !== "process") throw new Error(`no resolver for ${ref}`);
  return numberFor(ref.detail, sentinels!.pid(0));
}

/**
 * After a kill-like call: only the target may show a signal, and only when the call returned
 * with it as its number; the runner is alive (or this process would not be checking).
 */
async function onlyTargetSignalled(outcome: Outcome, args: unknown[]): Promise<void> {
  const target = sentinels!.pid(0);
  const found = await sentinels!.renew();
  const wrong = found.filter(({ index }) =>
    index !== 0 || outcome.kind !== "returned" || args[0] !== target
  );
  if (wrong.length > 0) {
    const list = wrong.map(({ index, why }) =>
      `sentinel ${index} (${index ? "bystander" : "target"}): ${why}`
    );
    throw new Error(`a signal reached a process it was not sent to: ${list.join("; ")}`);
  }
}

function killProperty(
  name: string,
  covers: string,
  fn: (pid: never, signal: never) => void,
): Property {
  return {
    name,
    covers: [covers],
    runs: 2500,
    args: [processNumber, sendable],
    resolve: resolveProcess,
    call: ([pid, signal]) => fn(pid as never, signal as never),
    after: onlyTargetSignalled,
  };
}

export const group: PropertyGroup = {
  covers: ["signalNumber", "signalName", "kill", "killGroup", "isAlive", "onSignal", "signals"],
  async properties(): Promise<Property[]> {
    sentinels = await Sentinels.start(3);
    return [
      {
        name: "signalNumber() takes names and numbers 1-64 only, and names what it refuses",
        covers: ["signalNumber"],
        runs: 6000,
        args: [either(validSignal)],
        call: ([signal]) => {
          const number = signalNumber(signal as never);
          if (!Number.isInteger(number) || number < 1 || number > 64) {
            throw new Error(`signalNumber returned ${number}`);
          }
        },
      },
      {
        name: "signalName() round-trips every signal number and refuses the rest",
        covers: ["signalName"],
        runs: 6000,
        args: [either(fc.integer({ min: 1, max: 64 }))],
        call: ([signal]) => {
          const name = signalName(signal as never);
          if (signalNumber(name) !== signal) throw new Error(`${name} is not signal ${signal}`);
        },
      },
      killProperty(
        "kill() signals the target sentinel or nothing, whatever pid and signal it gets",
        "kill",
        kill,
      ),
      killProperty(
        "killGroup() signals the target's group or nothing, whatever group and signal it gets",
        "killGroup",
        killGroup,
      ),
      {
        name: "isAlive() answers for pids 1..2^31-1 and signals nobody",
        covers: ["isAlive"],
        runs: 3000,
        args: [processNumber],
        resolve: resolveProcess,
        call: ([pid]) => {
          const alive = isAlive(pid as never);
          if (typeof alive !== "boolean") throw new Error(`isAlive returned ${alive}`);
        },
        after: async () => {
          const found = await sentinels!.renew();
          if (found.length) throw new Error(`isAlive touched ${JSON.stringify(found)}`);
        },
      },
      {
        name: "onSignal() listens to a listenable signal with a function, refuses anything else",
        covers: ["onSignal"],
        runs: 2000,
        args: [
          either(fc.constantFrom("SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGHUP", "SIGKILL", "SIGSTOP")),
          either(fc.constant(() => {})),
        ],
        call: ([signal, handler]) => onSignal(signal as never, handler as never),
        after: (outcome, [, handler]) => {
          if (outcome.kind === "returned" && typeof handler !== "function") {
            throw new Error(`onSignal accepted the handler ${String(handler)}`);
          }
        },
      },
      {
        name: "signals() takes listenable signal names only; next() settles once disposed",
        covers: ["signals"],
        runs: 1500,
        args: [
          fc.array(either(fc.constantFrom("SIGUSR1", "SIGUSR2", "SIGWINCH")), { maxLength: 3 }),
        ],
        call: async ([names]) => {
          const iterator = signals(...(names as never[]));
          const next = iterator.next();
          iterator[Symbol.dispose]();
          const result = await next;
          if (!result.done) throw new Error("next() gave a signal nobody sent");
        },
      },
    ];
  },
  async teardown() {
    await sentinels?.close();
  },
};
