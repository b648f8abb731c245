/**
 * A POSIX message queue against the other ways to pass a 64-byte message within one process
 * to oneself: the kernel work of one message without any process switch.
 *
 * - "64-byte send + receive, one process": `MessageQueue` against a `pipe()` and a Unix socket
 *   pair from `Deno.listen` (the baseline).
 * Round trips between processes are in bench/semaphore_bench.ts, side by side with semaphores.
 *
 * Run: deno task bench bench/mqueue_bench.ts
 *
 * @module
 */

import { MessageQueue, pipe } from "../mod.ts";

const message = new Uint8Array(64).fill(2);
const buffer = new Uint8Array(64);
const queue = MessageQueue.create(`/pipc-bench-queue-${Deno.pid}`, { messageSize: 64 });
const p = pipe();

const socketDir = Deno.makeTempDirSync();
const listener = Deno.listen({ transport: "unix", path: `${socketDir}/self.sock` });
const [client, server] = await Promise.all([
  Deno.connect({ transport: "unix", path: `${socketDir}/self.sock` }),
  listener.accept(),
]);

Deno.bench({
  group: "64-byte send + receive, one process",
  name: "Unix socket pair (Deno.listen)",
  baseline: true,
  async fn() {
    await client.write(message);
    for (let got = 0; got < 64;) got += (await server.read(buffer.subarray(got)))!;
  },
});

Deno.bench({
  group: "64-byte send + receive, one process",
  name: "MessageQueue trySend + tryReceive",
  fn() {
    queue.trySend(message);
    queue.tryReceive();
  },
});

Deno.bench({
  group: "64-byte send + receive, one process",
  name: "pipe() writeSync + readSync",
  fn() {
    p.writer.writeSync(message);
    p.reader.readSync(buffer);
  },
});

globalThis.addEventListener("unload", () => {
  queue.close();
  p[Symbol.dispose]();
  client.close();
  server.close();
  listener.close();
  Deno.removeSync(socketDir, { recursive: true });
});
