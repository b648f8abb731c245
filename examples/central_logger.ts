/**
 * A central logger: many processes send log lines through one POSIX message queue, and one
 * process writes them out in the order they arrived, errors first when several wait.
 *
 * The logger creates the queue and starts PRODUCERS Deno processes that open it by name and
 * send LINES lines each; errors go with a higher priority, so a waiting error overtakes
 * waiting info lines. Each message is one whole line: lines from different processes never
 * interleave mid-line, as they can in a shared file or pipe. The queue's name is removed at
 * the end, also on Ctrl-C.
 *
 * Run: deno run --allow-ffi --allow-run examples/central_logger.ts [PRODUCERS] [LINES]
 *
 * @module
 */

import { MessageQueue, onSignal, spawnDeno } from "../mod.ts";

const INFO = 0;
const ERROR = 5;

if (Deno.args[0] === "--producer") {
  using log = MessageQueue.open(Deno.args[1]!, { read: false });
  const lines = Number(Deno.args[2]);
  for (let i = 1; i <= lines; i++) {
    const error = i % 4 === 0;
    const text = `${new Date().toISOString()} [${Deno.pid}] ${error ? "ERROR" : "info "} step ${i}`;
    await log.send(text, { priority: error ? ERROR : INFO });
  }
  await log.send(`${Deno.pid} done`, { priority: INFO });
} else {
  const producers = Number(Deno.args[0] ?? 4);
  const lines = Number(Deno.args[1] ?? 8);
  using log = MessageQueue.create(`/posix-ipc-log-${Deno.pid}`, { maxMessages: 10 });
  using _stop = onSignal("SIGINT", () => {
    log.close(); // the creator's close removes the name
    Deno.exit(130);
  });
  console.log(`logger ${Deno.pid}: queue "${log.name}", ${producers} producers`);
  const children = Array.from({ length: producers }, () =>
    spawnDeno(import.meta.url, {
      args: ["--producer", log.name, String(lines)],
      permissions: { ffi: true },
    }));
  let done = 0;
  let written = 0;
  let errors = 0;
  for await (const message of log) {
    const text = new TextDecoder().decode(message.data);
    if (text.endsWith(" done")) {
      if (++done === producers) break;
      continue;
    }
    console.log(text);
    written++;
    if (message.priority === ERROR) errors++;
  }
  for (const child of children) await child.status;
  console.log(`logger: ${written} lines from ${producers} processes, ${errors} errors`);
}
