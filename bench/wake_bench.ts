/**
 * How fast can a Deno process wake a peer that sleeps in an async wait? Every row is a 64-byte
 * round trip between this process and an echo child (bench/fixtures/wake_peer.ts), both sides
 * async: A publishes a message in shared memory and wakes B, B answers the same way. The
 * baseline is a Unix socket from `Deno.listen` / `Deno.connect`, read and written the way a Deno
 * user writes it. Every child is spawned the same way, and the clock starts after start-up.
 * The strategies are described in bench/fixtures/wake_endpoint.ts: "futex" (today's: a
 * nonblocking FFI wait on a pool thread), "doorbell" (a Unix socket that Deno's reactor polls,
 * rung only when the reader sleeps), "worker" (a waiter Worker and Atomics.waitAsync),
 * "adaptive" (looks again after each turn of the event loop for up to 3× the last wait, at most
 * 1 ms, then the doorbell), "adaptive-futex" (the same look, then the futex: what
 * src/channel/wait.ts adopted, with its semaphore), "signal" and "adaptive-signal" (a SIGURG
 * that `Deno.addSignalListener` hears, without and with the look).
 *
 * - "64 B round trip after 2 ms idle": each trip follows 2 ms of silence, so both sides sleep;
 *   timed without the pause.
 * - "64 B round trip, hot": trips back to back.
 * - "event loop wake (floor)": the reference that bounds every async design: a Worker thread
 *   wakes this process's idle event loop through `Atomics.notify` / `Atomics.waitAsync`.
 *
 * `deno bench` times the rows one after the other on a machine that drifts in between;
 * bench/fixtures/wake_trials.ts alternates them and reports medians. Run alone:
 * deno bench --allow-all bench/wake_bench.ts
 *
 * @module
 */

import { type Kind, type Pair, startPair } from "./fixtures/wake_pairs.ts";
import { STRATEGIES } from "./fixtures/wake_endpoint.ts";

const kinds: Kind[] = ["socket", ...STRATEGIES];
const pairs = new Map<Kind, Pair>();
for (const kind of kinds) pairs.set(kind, await startPair(kind));
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const kind of kinds) {
  const pair = pairs.get(kind)!;
  const label = kind === "socket" ? "Unix socket, async (baseline)" : `shared memory, ${kind}`;
  Deno.bench({
    group: "64 B round trip after 2 ms idle",
    name: label,
    baseline: kind === "socket",
    n: 500,
    warmup: 50,
    async fn(b) {
      await delay(2);
      b.start();
      await pair.trip();
      b.end();
    },
  });
  Deno.bench({
    group: "64 B round trip, hot",
    name: label,
    baseline: kind === "socket",
    async fn() {
      await pair.trip();
    },
  });
}

const control = new Int32Array(new SharedArrayBuffer(8));
const notifier = new Worker(
  `data:text/javascript,${
    encodeURIComponent(`
    self.onmessage = (e) => {
      const control = new Int32Array(e.data);
      for (let i = 1;; i++) {
        Atomics.wait(control, 0, i - 1);
        if (Atomics.load(control, 0) < 0) break;
        Atomics.store(control, 1, i);
        Atomics.notify(control, 1);
      }
    };`)
  }`,
  { type: "module" },
);
notifier.postMessage(control.buffer);
let wakes = 0;
Deno.bench({
  group: "event loop wake (floor)",
  name: "a Worker's Atomics.notify wakes Atomics.waitAsync (reference)",
  baseline: true,
  async fn() {
    const woken = Atomics.waitAsync(control, 1, wakes);
    Atomics.store(control, 0, ++wakes);
    Atomics.notify(control, 0);
    if (woken.async) await woken.value;
  },
});

globalThis.addEventListener("unload", () => {
  Atomics.store(control, 0, -1);
  Atomics.notify(control, 0);
  notifier.terminate();
  for (const pair of pairs.values()) void pair.close();
});
