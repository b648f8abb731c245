/**
 * A worker pool: tasks go out through one POSIX message queue that several worker processes
 * share, and results come back over one Channel that all of them send on.
 *
 * The parent starts WORKERS Deno processes, queues TASKS jobs (count the primes below n),
 * then one "stop" per worker. Each worker takes whatever job is next, so the fast ones take
 * more; each result names the worker that did it. The parent prints how the jobs were shared
 * and checks the total. The queue's name is removed at the end, also on Ctrl-C.
 *
 * Run: deno run --allow-ffi --allow-run examples/worker_pool.ts [TASKS] [WORKERS]
 *
 * @module
 */

import {
  Channel,
  type Codec,
  codecs,
  inheritedFd,
  MessageQueue,
  onSignal,
  spawnDeno,
} from "../mod.ts";

interface Result {
  n: number;
  primes: number;
  worker: number;
}
/** JSON on the wire; the type is a promise between the two sides, not checked. */
const resultCodec = codecs.json as Codec<Result>;

function countPrimes(below: number): number {
  const composite = new Uint8Array(below);
  let count = 0;
  for (let i = 2; i < below; i++) {
    if (composite[i]) continue;
    count++;
    for (let j = i * i; j < below; j += i) composite[j] = 1;
  }
  return count;
}

if (Deno.args[0] === "--worker") {
  using tasks = MessageQueue.open(Deno.args[1]!, { write: false });
  using results = Channel.fromFd<Result>(inheritedFd(3), { codec: resultCodec, role: "send" });
  for await (const { data } of tasks) {
    const text = new TextDecoder().decode(data);
    if (text === "stop") break;
    const n = Number(text);
    await results.send({ n, primes: countPrimes(n), worker: Deno.pid });
  }
} else {
  const taskCount = Number(Deno.args[0] ?? 40);
  const workerCount = Number(Deno.args[1] ?? 3);
  const name = `/posix-ipc-pool-${Deno.pid}`;
  using tasks = MessageQueue.create(`${name}-tasks`, { maxMessages: 8, messageSize: 64 });
  using results = Channel.create<Result>({ codec: resultCodec, multi: true, role: "receive" });
  using _stop = onSignal("SIGINT", () => {
    tasks.close(); // the creator's close removes the queue's name
    Deno.exit(130);
  });
  const started = performance.now();
  const workers = Array.from({ length: workerCount }, () =>
    spawnDeno(import.meta.url, {
      args: ["--worker", tasks.name],
      permissions: { ffi: true },
      fds: { 3: results },
    }));
  console.log(`pool: ${workerCount} workers (${workers.map((w) => w.pid).join(", ")})`);
  const jobs = Array.from({ length: taskCount }, (_, i) => 1_000_000 + i * 50_000);
  const feeding = (async () => {
    for (const n of jobs) await tasks.send(String(n)); // waits while the queue is full
    for (const _ of workers) await tasks.send("stop");
  })();
  const perWorker = new Map<number, number>();
  let total = 0;
  for (let received = 0; received < taskCount; received++) {
    const result = await results.receive();
    perWorker.set(result.worker, (perWorker.get(result.worker) ?? 0) + 1);
    total += result.primes;
  }
  await feeding;
  for (const worker of workers) await worker.status;
  const expected = jobs.reduce((sum, n) => sum + countPrimes(n), 0);
  const shares = [...perWorker].map(([pid, count]) => `${pid}: ${count}`).join(", ");
  console.log(`pool: ${taskCount} tasks done (${shares})`);
  console.log(`pool: ${total} primes in all, ${total === expected ? "as computed here" : "WRONG"}`);
  console.log(`pool: ${(performance.now() - started).toFixed(0)} ms`);
}
