/**
 * `select` against waiting on one source, on the path users write (async on both sides, copies,
 * children started with spawnDeno, clocks started after start-up):
 *
 * - "64 B round trip after 5 ms idle": a message to a child's `for await` echo and back (the
 *   natural echo of channel_bench.ts), the answer awaited with `await select([channel, ...7 idle
 *   sources])` against `await channel.receive()` (the baseline), after 5 ms of silence so that
 *   both sides sleep; timed without the pause. The idle sources are 3 channels, a semaphore, a
 *   message queue and 2 pipe read ends ("mixed": two kinds of worker-thread wait), or 7
 *   channels (one `futex_waitv`).
 *
 * Before the groups, this module prints the two figures of issue 15, each from 3 runs taken in
 * turns (medians and spread):
 * - the one-way wake (bench/fixtures/select_trials.ts: a child sends one message after each
 *   20 ms gap; the parent alternates, message by message, select over 8 sources and receive);
 * - the idle cost (bench/fixtures/select_idle.ts: CPU time of a select over 8 idle sources for
 *   3 s, as a percentage of one core).
 *
 * Run: deno task bench bench/select_bench.ts
 *
 * @module
 */

import { Channel, select, spawnDeno } from "@posix/ipc";
import { idleSources as idle } from "./fixtures/select_sources.ts";

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url);

// --- the figures, from the fixtures --------------------------------------------------

async function runFixture(name: string, args: string[]): Promise<string> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-ffi", "--allow-run", "--allow-read", fixture(name).pathname, ...args],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!output.success) throw new Error(`${name} failed`);
  return new TextDecoder().decode(output.stdout).trim();
}

const stats = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return `median ${sorted[sorted.length >> 1]!.toFixed(2)} (${sorted[0]!.toFixed(2)}-${
    sorted.at(-1)!.toFixed(2)
  })`;
};

const wakes: Record<string, { select: number; receive: number; ratio: number }[]> = {};
const idleCosts: Record<string, number[]> = {};
for (let run = 0; run < 3; run++) {
  for (const kind of ["mixed", "channels"]) {
    (wakes[kind] ??= []).push(JSON.parse(await runFixture("select_trials.ts", ["60", "20", kind])));
    (idleCosts[kind] ??= []).push(Number(await runFixture("select_idle.ts", [kind, "3"])));
  }
}
for (const kind of ["mixed", "channels"]) {
  const runs = wakes[kind]!;
  console.log(
    `select over 8 ${kind} sources: one-way wake ${
      stats(runs.map((r) => r.select))
    } µs against receive ${stats(runs.map((r) => r.receive))} µs: ratio ${
      stats(runs.map((r) => r.ratio))
    }; idle cost ${stats(idleCosts[kind]!)} % of a core`,
  );
}

// --- round trips through a child's echo -----------------------------------------------------

const closers: (() => unknown)[] = [];
const keep = <T extends Disposable>(value: T): T => {
  closers.push(() => value[Symbol.dispose]());
  return value;
};
const idleSources = {
  mixed: keep(idle("mixed", 7)).list,
  channels: keep(idle("channels", 7)).list,
};

const toChild = keep(Channel.create({ role: "send" }));
const fromChild = keep(Channel.create({ role: "receive" }));
const echo = spawnDeno(fixture("natural_echo.ts"), {
  permissions: { ffi: true },
  fds: { 3: toChild, 4: fromChild },
});
const message = new Uint8Array(64);
await toChild.send(message);
await fromChild.receive(); // started up

const group = "64 B round trip after 5 ms idle";
const runs = { n: 200, warmup: 20 };
const afterIdle = (answer: () => Promise<unknown>) => async (t: Deno.BenchContext) => {
  await new Promise((resolve) => setTimeout(resolve, 5));
  t.start();
  await toChild.send(message.slice());
  await answer();
  t.end();
};

Deno.bench({
  group,
  name: "await select([channel, ...7 mixed idle sources])",
  ...runs,
  fn: afterIdle(() => select([fromChild, ...idleSources.mixed])),
});
Deno.bench({
  group,
  name: "await channel.receive()",
  baseline: true,
  ...runs,
  fn: afterIdle(() => fromChild.receive()),
});
Deno.bench({
  group,
  name: "await select([channel, ...7 idle channels])",
  ...runs,
  fn: afterIdle(() => select([fromChild, ...idleSources.channels])),
});

globalThis.addEventListener("unload", () => {
  toChild.close();
  for (const close of closers.reverse()) close();
});
void echo;
