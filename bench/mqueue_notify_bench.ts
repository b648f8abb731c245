/**
 * How fast does a message queue's notification wake this process? Each row is a 64-byte round
 * trip to an echo child (bench/fixtures/mq_notify_echo.ts, which answers with `await receive()`
 * and `await send()`) after 2 ms of silence, so that both sides sleep; timed without the pause.
 * The rows differ only in how this process wakes for the answer:
 * - "await receive()" (baseline): the queue's own async receive, a poll on the queue;
 * - "notifications().wait() + tryReceive()": the mq_notify registration's netlink socket.
 * Both use the same child, started once before the clock. `deno bench` runs the rows one after
 * the other; bench/fixtures/mq_notify_trials.ts alternates them trip by trip and reports
 * medians. Run alone: deno bench --allow-all bench/mqueue_notify_bench.ts
 *
 * @module
 */

import { type Mode, startPair } from "./fixtures/mq_notify_pair.ts";

const pair = await startPair();
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const rows: [Mode, string][] = [
  ["receive", "await receive() (baseline)"],
  ["notifications", "notifications().wait() + tryReceive()"],
];
for (const [mode, name] of rows) {
  Deno.bench({
    group: "64 B round trip after 2 ms idle, woken by",
    name,
    baseline: mode === "receive",
    n: 500,
    warmup: 50,
    async fn(b) {
      await delay(2);
      b.start();
      await pair.trip(mode);
      b.end();
    },
  });
}

globalThis.addEventListener("unload", () => pair.close());
