/**
 * The fast lane against every other way between two Deno processes, side by side.
 *
 * - "64 B round trip": a message to an echo process and back: Channel (sync and async),
 *   semaphores (sync), a POSIX message queue (sync), `pipe()`, `Deno.Command` stdio through `cat`,
 *   and a Unix socket from `Deno.listen` (the baseline).
 * - "64 B round trip to a sleeping peer": the same after 2 ms of silence, so that the echo
 *   process has gone to sleep: Channel against semaphores (the baseline), timed without the pause.
 * - "stream N B one way": 1 MiB per iteration in messages of N bytes to a sink process: Channel
 *   (and Channel with `multi: true`, which takes a robust lock per message), `pipe()` into `cat`,
 *   `Deno.Command` stdin into `cat` (the parent writes, as with the others), a Unix socket (the
 *   baseline), and an in-process `TypedArray.set` copy of the same bytes (the memory-speed
 *   ceiling).
 *
 * `deno task bench:report` runs this and writes bench/REPORT.md. Run alone:
 * deno task bench bench/channel_bench.ts
 *
 * @module
 */

import { Channel, MessageQueue, pipe, Semaphore, spawn, spawnDeno } from "../mod.ts";

const echo = new URL("./fixtures/echo.ts", import.meta.url);
const peer = new URL("./fixtures/channel_peer.ts", import.meta.url);
const prefix = `/pipc-bench-channel-${Deno.pid}`;
const ffi = { ffi: true } as const;
const children: { kill(signal: "SIGKILL"): void }[] = [];
const closers: (() => void)[] = [];
const message = new Uint8Array(64).fill(1);
const reply = new Uint8Array(64 * 1024);

// --- echo processes for the round trips ----------------------------------------------------

const ping = Channel.create({ capacity: 1 << 16, role: "send" });
const pong = Channel.create({ capacity: 1 << 16, role: "receive" });
children.push(spawnDeno(peer, { args: ["echo"], permissions: ffi, fds: { 3: ping, 4: pong } }));

const semPing = Semaphore.create(`${prefix}-ping`);
const semPong = Semaphore.create(`${prefix}-pong`);
children.push(
  spawnDeno(echo, { args: ["semaphore", `${prefix}-ping`, `${prefix}-pong`], permissions: ffi }),
);

const toQueue = MessageQueue.create(`${prefix}-in`, { messageSize: 64 });
const fromQueue = MessageQueue.create(`${prefix}-out`, { messageSize: 64 });
children.push(
  spawnDeno(echo, { args: ["mqueue", `${prefix}-in`, `${prefix}-out`], permissions: ffi }),
);

const toPipe = pipe();
const fromPipe = pipe();
children.push(
  spawnDeno(echo, {
    args: ["pipe"],
    permissions: ffi,
    fds: { 3: toPipe.reader, 4: fromPipe.writer },
  }),
);
toPipe.reader.close();
fromPipe.writer.close();

const socketDir = Deno.makeTempDirSync();
const listener = Deno.listen({ transport: "unix", path: `${socketDir}/echo.sock` });
children.push(spawnDeno(echo, {
  args: ["socket", `${socketDir}/echo.sock`],
  permissions: { ffi: true, net: true, read: true, write: true },
}));
const socket = await listener.accept();

const cat = new Deno.Command("cat", { stdin: "piped", stdout: "piped" }).spawn();
const catWriter = cat.stdin.getWriter();
const catReader = cat.stdout.getReader({ mode: "byob" });

async function readExactly(
  read: (buffer: Uint8Array) => Promise<number | null>,
  length: number,
): Promise<void> {
  for (let got = 0; got < length;) got += (await read(reply.subarray(got, length)))!;
}

const roundTrip = "64 B round trip between two processes";
const benches: [string, boolean, () => void | Promise<void>][] = [
  ["Unix socket (Deno.listen)", true, async () => {
    await socket.write(message);
    await readExactly((buffer) => socket.read(buffer), 64);
  }],
  ["Channel, sendSync/receiveSync", false, () => {
    ping.sendSync(message);
    pong.receiveSync({ view: true });
  }],
  ["Channel, await send/receive", false, async () => {
    await ping.send(message);
    await pong.receive({ view: true });
  }],
  ["semaphores, post/waitSync", false, () => {
    semPing.post();
    semPong.waitSync();
  }],
  ["POSIX message queue, sync", false, () => {
    toQueue.sendSync(message);
    fromQueue.receiveSync();
  }],
  ["pipe(), await write/read", false, async () => {
    await toPipe.writer.write(message);
    await readExactly((buffer) => fromPipe.reader.read(buffer), 64);
  }],
  ["Deno.Command stdio through cat", false, async () => {
    await catWriter.write(message);
    for (let got = 0; got < 64;) {
      got += (await catReader.read(new Uint8Array(64 - got))).value!.length;
    }
  }],
];
for (const [name, baseline, run] of benches) {
  Deno.bench({
    group: roundTrip,
    name,
    baseline,
    fn: run.constructor.name === "AsyncFunction" ? async () => await run() : () => void run(),
  });
}

const pause = () => new Promise((resolve) => setTimeout(resolve, 2));
// Each iteration sleeps 2 ms: a fixed count, large enough that a few slow wake-ups (the host
// preempting this machine) do not decide the mean.
const sleepingRuns = { n: 1000, warmup: 50 };
Deno.bench({
  group: "64 B round trip to a sleeping peer",
  name: "semaphores, post/waitSync",
  baseline: true,
  ...sleepingRuns,
  async fn(t) {
    await pause();
    t.start();
    semPing.post();
    semPong.waitSync();
    t.end();
  },
});
Deno.bench({
  group: "64 B round trip to a sleeping peer",
  name: "Channel, sendSync/receiveSync",
  ...sleepingRuns,
  async fn(t) {
    await pause();
    t.start();
    ping.sendSync(message);
    pong.receiveSync({ view: true });
    t.end();
  },
});

// --- one-way streams into sink processes ---------------------------------------------------

const stream = Channel.create({ capacity: 1 << 21, role: "send" });
children.push(spawnDeno(peer, { args: ["sink"], permissions: ffi, fds: { 3: stream } }));
const multiStream = Channel.create({ capacity: 1 << 21, role: "send", multi: true });
children.push(spawnDeno(peer, { args: ["sink"], permissions: ffi, fds: { 3: multiStream } }));

const toCat = pipe({ capacity: 1 << 20 });
children.push(spawn("cat", { stdin: toCat.reader, stdout: "null" }));
toCat.reader.close();

const commandCat = new Deno.Command("cat", { stdin: "piped", stdout: "null" }).spawn();
const commandWriter = commandCat.stdin.getWriter();

const sinkListener = Deno.listen({ transport: "unix", path: `${socketDir}/sink.sock` });
children.push(spawnDeno(echo, {
  args: ["socket-sink", `${socketDir}/sink.sock`],
  permissions: { ffi: true, net: true, read: true, write: true },
}));
const sinkSocket = await sinkListener.accept();
const copyTarget = new Uint8Array(2 << 20);

const TOTAL = 1 << 20;
for (const size of [64, 4096, 65536, 1 << 20]) {
  const chunk = new Uint8Array(size).fill(3);
  const count = TOTAL / size;
  const group = `stream ${
    size >= 1 << 20 ? "1 MiB" : size >= 1024 ? `${size / 1024} KiB` : `${size} B`
  } one way, 1 MiB per iteration`;
  Deno.bench({
    group,
    name: "Unix socket (Deno.listen)",
    baseline: true,
    async fn() {
      for (let i = 0; i < count; i++) await sinkSocket.write(chunk);
    },
  });
  Deno.bench({
    group,
    name: "Channel, sendSync",
    fn() {
      for (let i = 0; i < count; i++) stream.sendSync(chunk);
    },
  });
  Deno.bench({
    group,
    name: "Channel with multi: true, sendSync",
    fn() {
      for (let i = 0; i < count; i++) multiStream.sendSync(chunk);
    },
  });
  Deno.bench({
    group,
    name: "pipe({ capacity: 1 MiB }) into cat",
    async fn() {
      for (let i = 0; i < count; i++) await toCat.writer.write(chunk);
    },
  });
  Deno.bench({
    group,
    name: "Deno.Command stdin into cat",
    async fn() {
      for (let i = 0; i < count; i++) await commandWriter.write(chunk);
    },
  });
  Deno.bench({
    group,
    name: "in-process copy (TypedArray.set)",
    fn() {
      for (let i = 0; i < count; i++) copyTarget.set(chunk, (i * size) & (1 << 20) - 1);
    },
  });
}

closers.push(
  () =>
    [ping, pong, stream, semPing, semPong, toQueue, fromQueue].forEach((handle) => handle.close()),
  () => [toPipe, fromPipe, toCat].forEach((p) => p[Symbol.dispose]()),
  () => [socket, listener, sinkSocket, sinkListener].forEach((handle) => handle.close()),
  () => void catWriter.close().catch(() => {}),
  () => void commandWriter.close().catch(() => {}),
);

globalThis.addEventListener("unload", () => {
  for (const child of children) child.kill("SIGKILL");
  cat.kill("SIGKILL");
  commandCat.kill("SIGKILL");
  for (const close of closers) {
    try {
      close();
    } catch {
      // already closed
    }
  }
  Deno.removeSync(socketDir, { recursive: true });
});
