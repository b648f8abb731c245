/**
 * The guided tour: runs a few of the examples in turn, says in one line before each what it
 * is about to show, and ends with a summary of what moved between processes and how fast.
 *
 * Each example runs as a child process in a process group of its own, so Ctrl-C reaches
 * only this tour. On Ctrl-C the tour kills the running example's whole group and removes
 * the names that example may have left, then exits: nothing stays behind in /dev/shm or the
 * message queue namespace.
 *
 * Run: deno task demo
 * (or: deno run --allow-ffi --allow-read --allow-run examples/demo.ts [--only STEP])
 *
 * @module
 */

import { type ChildProcess, MessageQueue, SharedMemory, signals, spawnDeno } from "../mod.ts";

interface Step {
  id: string;
  /** The one line said before it runs. */
  intro: string;
  script: string;
  args: string[];
  /** The POSIX names the example makes, from its pid, for the cleanup after Ctrl-C. */
  names(pid: number): { shm?: string[]; mq?: string[] };
  /** Messages it moved between processes, read from its output. */
  moved(output: string): number;
}

const steps: Step[] = [
  {
    id: "share",
    intro: "Two processes share memory by name and add to one counter at the same time.",
    script: "shared_memory.ts",
    args: [],
    names: (pid) => ({ shm: [`/posix-ipc-demo-${pid}`] }),
    moved: (output) => output.includes("shared counter = ") ? 2 : 0, // a greeting and a reply
  },
  {
    id: "buffer",
    intro: "A producer and a consumer pass 20,000 items through 8 slots and two semaphores.",
    script: "bounded_buffer.ts",
    args: ["20000"],
    names: () => ({}),
    moved: (output) => Number(/took (\d+) items/.exec(output)?.[1] ?? 0),
  },
  {
    id: "pipeline",
    intro: "grep | sort | wc -l, built from pipe() and spawn(), with no shell.",
    script: "pipeline.ts",
    args: [],
    names: () => ({}),
    moved: (output) => Number(/: (\d+) words in/.exec(output)?.[1] ?? 0),
  },
  {
    id: "pool",
    intro: "A worker pool: 24 jobs through a message queue to 3 processes, results on a Channel.",
    script: "worker_pool.ts",
    args: ["24", "3"],
    names: (pid) => ({ mq: [`/posix-ipc-pool-${pid}-tasks`] }),
    moved: (output) => 2 * Number(/(\d+) tasks done/.exec(output)?.[1] ?? 0),
  },
  {
    id: "channel",
    intro: "The fast lane: a million 64-byte messages to a child over a Channel.",
    script: "channel_stream.ts",
    args: ["1000000", "64"],
    names: () => ({}),
    moved: (output) => Number(/the child saw (\d+)/.exec(output)?.[1] ?? 0),
  },
];

const only = Deno.args[0] === "--only" ? Deno.args[1] : undefined;
const chosen = only === undefined ? steps : steps.filter((step) => step.id === only);
if (chosen.length === 0) {
  console.error(`No step "${only}": use one of ${steps.map((step) => step.id).join(", ")}`);
  Deno.exit(2);
}

let running: { step: Step; child: ChildProcess } | undefined;
const interrupts = signals("SIGINT", "SIGTERM");
(async () => {
  for await (const signal of interrupts) {
    console.log(`\n${signal}: stopping the tour and cleaning up`);
    if (running) {
      running.child.killGroup("SIGKILL"); // the example and every process it started
      await running.child.status;
      removeNames(running.step.names(running.child.pid));
    }
    Deno.exit(130);
  }
})();

const tourStarted = performance.now();
let moved = 0;
for (const [i, step] of chosen.entries()) {
  console.log(`\n[${i + 1}/${chosen.length}] ${step.intro}`);
  const child = spawnDeno(new URL(step.script, import.meta.url), {
    args: step.args,
    permissions: { ffi: true, run: true },
    processGroup: true, // Ctrl-C in a terminal reaches the tour only
    stdout: "piped",
  });
  running = { step, child };
  let output = "";
  for await (const chunk of child.stdout!.readable.pipeThrough(new TextDecoderStream())) {
    const start = output.lastIndexOf("\n") + 1;
    output += chunk;
    const end = output.lastIndexOf("\n");
    if (end >= start) {
      for (const line of output.slice(start, end).split("\n")) console.log(`    ${line}`);
    }
  }
  const status = await child.status;
  running = undefined;
  if (!status.success) {
    console.error(`The step "${step.id}" failed: ${JSON.stringify(status)}`);
    Deno.exit(1);
  }
  moved += step.moved(output);
}
interrupts[Symbol.dispose]();

const seconds = (performance.now() - tourStarted) / 1000;
console.log(`\nSummary: ${chosen.length} demonstrations, ${moved.toLocaleString("en")} messages`);
console.log(
  `moved between processes in ${seconds.toFixed(1)} s ` +
    `(${
      Math.round(moved / seconds).toLocaleString("en")
    } messages/s overall, process starts included).`,
);
console.log("Nothing is left behind: check with `deno task ipc ls`.");

function removeNames(names: { shm?: string[]; mq?: string[] }): void {
  const quietly = (remove: () => void) => {
    try {
      remove();
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error; // never made, or removed
    }
  };
  for (const name of names.shm ?? []) quietly(() => SharedMemory.unlink(name));
  for (const name of names.mq ?? []) quietly(() => MessageQueue.unlink(name));
}
