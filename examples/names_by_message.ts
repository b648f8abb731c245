/**
 * Objects with generated names, passed by message: the parent asks for a job queue, a results
 * channel and a "workers ready" semaphore with no name of its own choosing (`null`), and tells
 * each worker the names in a line on its stdin. Nobody has to agree on names up front, two runs
 * never collide, and the names go when the parent closes its handles, even if a worker dies.
 * A worker opens a scratch segment with `SharedMemory.openOrCreateSync`, which needs no await.
 *
 * Run: deno run --allow-ffi --allow-run examples/names_by_message.ts [WORKERS]
 *
 * @module
 */

import {
  Channel,
  type Codec,
  codecs,
  MessageQueue,
  Semaphore,
  SharedMemory,
  spawnDeno,
} from "../mod.ts";

interface Names {
  readonly jobs: string;
  readonly results: string;
  readonly ready: string;
}
interface Result {
  readonly pid: number;
  readonly job: number;
  readonly square: number;
}
const resultCodec = codecs.json as Codec<Result>;

async function worker(): Promise<void> {
  const line = await new Response(Deno.stdin.readable).text(); // the message with the names
  const names: Names = JSON.parse(line);
  using jobs = MessageQueue.open(names.jobs, { write: false });
  using results = Channel.open(names.results, { codec: resultCodec, role: "send" });
  using scratch = SharedMemory.openOrCreateSync(`${names.results}-scratch-${Deno.pid}`, {
    size: 4096,
    init: (fresh) => void fresh.bytes.fill(1), // a sync init: this call never awaits
  });
  Semaphore.open(names.ready).post();
  for await (const message of jobs) {
    const job = Number(new TextDecoder().decode(message.data));
    if (job < 0) break; // the parent's "stop"
    await results.send({ pid: Deno.pid, job, square: job * job * scratch.bytes[0]! });
  }
}

async function parent(workers: number): Promise<void> {
  using jobs = MessageQueue.create(null, { maxMessages: 8, messageSize: 16 });
  using results = Channel.create({ name: null, codec: resultCodec, multi: true, role: "receive" });
  using ready = Semaphore.create(null, { value: 0 });
  const names: Names = { jobs: jobs.name, results: results.name!, ready: ready.name! };
  console.log(`generated: ${Object.values(names).join(" ")}`);
  const children = Array.from({ length: workers }, () => {
    const child = spawnDeno(import.meta.url, {
      args: ["worker"],
      permissions: { ffi: true },
      stdin: "piped",
      dieWithParent: true,
    });
    child.stdin!.writeSync(JSON.stringify(names)); // the names, by message
    child.stdin!.close();
    return child;
  });
  for (let i = 0; i < workers; i++) await ready.wait({ timeout: 20_000 });
  const total = 12;
  const sending = (async () => {
    for (let job = 1; job <= total; job++) await jobs.send(String(job));
    for (let i = 0; i < workers; i++) await jobs.send("-1");
  })();
  const byWorker = new Map<number, number>();
  let sum = 0;
  for (let received = 0; received < total; received++) {
    const result = await results.receive({ timeout: 20_000 });
    byWorker.set(result.pid, (byWorker.get(result.pid) ?? 0) + 1);
    sum += result.square;
  }
  await sending;
  for (const child of children) {
    const status = await child.status;
    if (!status.success) throw new Error(`worker ${child.pid} ended: ${status.state}`);
  }
  console.log(
    `${total} jobs done by ${byWorker.size} of ${workers} workers; sum of squares ${sum}`,
  );
}

if (Deno.args[0] === "worker") await worker();
else await parent(Number(Deno.args[0] ?? 3));
