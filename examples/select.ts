/**
 * Waiting on many sources at once: a supervisor starts a worker and follows everything that can
 * happen, in one loop, with `select`:
 * - the worker's progress messages, on a `Channel`;
 * - urgent alerts, on a named `MessageQueue` that any process may write to (the worker does);
 * - the worker's exit;
 * - Ctrl-C or SIGTERM, which stop the worker early.
 *
 * Each `select` takes one item from the first source that has one (a message, a status, a
 * signal), so nothing is read twice and nothing is lost; a source that is always busy cannot
 * starve the others. Nothing is polled: the supervisor sleeps until something happens.
 *
 * Run: deno run --allow-ffi --allow-run examples/select.ts
 *
 * @module
 */

import { Channel, codecs, inheritedFd, MessageQueue, select, signals, spawnDeno } from "../mod.ts";

const STEPS = 5;

if (Deno.args[0] === "--worker") {
  // The worker: reports each step on the channel at fd 3, raises one alert half-way.
  using progress = Channel.fromFd(inheritedFd(3), { codec: codecs.json, role: "send" });
  using alerts = MessageQueue.open(Deno.args[1]!);
  for (let step = 1; step <= STEPS; step++) {
    await new Promise((resolve) => setTimeout(resolve, 30));
    await progress.send({ step, of: STEPS });
    if (step === 3) await alerts.send("disk almost full", { priority: 5 });
  }
  Deno.exit(0);
}

using progress = Channel.create({ codec: codecs.json, role: "receive" });
using alerts = MessageQueue.create(`/select-example-${Deno.pid}`);
using stop = signals("SIGINT", "SIGTERM");
await using worker = spawnDeno(new URL(import.meta.url), {
  args: ["--worker", alerts.name],
  permissions: { ffi: true },
  fds: { 3: progress },
});
console.log(`supervisor ${Deno.pid}: following worker ${worker.pid}`);

const decoder = new TextDecoder();
let running = true;
let progressEnded = false;
while (running) {
  const event = await select([progress, alerts, worker, stop], { timeout: 10_000 });
  if (event.error) {
    // Only the channel ends this way: every sender closed (UnexpectedEof) or died (BrokenPipe).
    // It stays ready with its end, like a closed channel in Go; the others still get turns.
    if (!progressEnded) console.log(`progress ended: ${event.error.name}`);
    progressEnded = true;
    continue;
  }
  switch (event.index) {
    case 0:
      console.log(`progress: ${JSON.stringify(event.value)}`);
      break;
    case 1:
      console.log(
        `ALERT (priority ${event.value.priority}): ${decoder.decode(event.value.data)}`,
      );
      break;
    case 2:
      console.log(`worker exited: ${JSON.stringify(event.value)}`);
      running = false;
      break;
    case 3:
      console.log(`${event.value}: stopping the worker`);
      worker.kill("SIGTERM");
      break;
  }
}
// What the worker sent before it exited is still in the channel: drain it.
for (let value; (value = progress.tryReceive()) !== undefined;) {
  console.log(`progress: ${JSON.stringify(value)}`);
}
console.log("done");
