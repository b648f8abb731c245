/**
 * Semaphores and message queues against a Unix socket.
 *
 * - "64-byte round trip between two processes": a message (or, for semaphores, a post) to an
 *   echo child and back: named semaphores waited on synchronously and asynchronously, a POSIX
 *   message queue (sync and async), and a Unix socket from `Deno.listen` (the baseline).
 * - "post() + tryWait(), one process": the cost of the two fast FFI calls.
 *
 * Run: deno task bench bench/semaphore_bench.ts
 *
 * @module
 */

import { MessageQueue, Semaphore, SharedMemory, spawnDeno } from "../mod.ts";

const echo = new URL("./fixtures/echo.ts", import.meta.url);
const prefix = `/pipc-bench-${Deno.pid}`;
const message = new Uint8Array(64).fill(1);
const reply = new Uint8Array(64);

const ping = Semaphore.create(`${prefix}-ping`);
const pong = Semaphore.create(`${prefix}-pong`);
const semaphoreEcho = spawnDeno(echo, {
  args: ["semaphore", `${prefix}-ping`, `${prefix}-pong`],
  permissions: { ffi: true },
});

const toChild = MessageQueue.create(`${prefix}-in`, { messageSize: 64 });
const fromChild = MessageQueue.create(`${prefix}-out`, { messageSize: 64 });
const queueEcho = spawnDeno(echo, {
  args: ["mqueue", `${prefix}-in`, `${prefix}-out`],
  permissions: { ffi: true },
});

const socketDir = Deno.makeTempDirSync();
const listener = Deno.listen({ transport: "unix", path: `${socketDir}/echo.sock` });
const socketEcho = spawnDeno(echo, {
  args: ["socket", `${socketDir}/echo.sock`],
  permissions: { ffi: true, net: true, read: true, write: true },
});
const socket = await listener.accept();

const group = "64-byte round trip between two processes";

Deno.bench({
  group,
  name: "Unix socket (Deno.listen)",
  baseline: true,
  async fn() {
    await socket.write(message);
    for (let got = 0; got < 64;) got += (await socket.read(reply.subarray(got)))!;
  },
});

Deno.bench({
  group,
  name: "semaphores, waitSync()",
  fn() {
    ping.post();
    pong.waitSync();
  },
});

Deno.bench({
  group,
  name: "semaphores, await wait()",
  async fn() {
    ping.post();
    await pong.wait();
  },
});

Deno.bench({
  group,
  name: "message queue, sendSync/receiveSync",
  fn() {
    toChild.sendSync(message);
    fromChild.receiveSync();
  },
});

Deno.bench({
  group,
  name: "message queue, await send/receive",
  async fn() {
    await toChild.send(message);
    await fromChild.receive();
  },
});

const memory = SharedMemory.anonymous({ size: 4096 });
const local = Semaphore.init(memory, 0);
const localNamed = Semaphore.create(`${prefix}-local`); // no other process waits on it

Deno.bench({
  group: "post() + tryWait(), one process",
  name: "unnamed semaphore",
  baseline: true,
  fn() {
    local.post();
    local.tryWait();
  },
});

Deno.bench({
  group: "post() + tryWait(), one process",
  name: "named semaphore",
  fn() {
    localNamed.post();
    localNamed.tryWait();
  },
});

globalThis.addEventListener("unload", () => {
  for (const child of [semaphoreEcho, queueEcho, socketEcho]) child.kill("SIGKILL");
  socket.close();
  listener.close();
  Deno.removeSync(socketDir, { recursive: true });
  for (const handle of [ping, pong, toChild, fromChild, local, localNamed, memory]) handle.close();
});
