/**
 * The fast lane against every other way between two Deno processes, side by side. The first row
 * of every group is the natural path, the way a Deno user writes it: async on both sides
 * (`await send`, `await receive()` or `for await`, copies), against a Unix socket from
 * `Deno.listen` / `Deno.connect` with async reads and writes (the baseline). Every peer is a
 * child that this process spawns the same way, and every clock starts after start-up. Rows named
 * "(best case)" take the fastest path instead: sync calls, zero-copy views, peers that spin.
 * "(reference)" rows are no way between processes: the in-process copy, and the raw floor of two
 * processes spinning on one Int32 cell with Atomics.load/store.
 *
 * - "64 B round trip": a message to an echo process and back; also semaphores, a POSIX message
 *   queue, `pipe()` and `Deno.Command` stdio through `cat`.
 * - "64 B round trip after 2 ms idle": the same after 2 ms of silence, so that both sides have
 *   gone to sleep; timed without the pause.
 * - "64 KiB one way" and "64 B one way": a child sends as fast as this process takes the
 *   messages (child `await send`, parent `for await`; the socket's parent reads into a reused
 *   buffer).
 * - "64 KiB sent to a child's for await": `loan` (filled in place) against `await send` of a
 *   fresh buffer filled the same way; the child copies each message as `for await` does.
 *
 * Medians come from bench/fixtures/natural_round_trip.ts and hot_round_trip.ts, which time trips
 * one by one; `deno task bench:report` runs all and writes bench/REPORT.md. Run alone:
 * deno task bench bench/channel_bench.ts
 *
 * @module
 */

import { MessageQueue, pipe, Semaphore, spawnDeno } from "@posix/ipc";
import type { ChildProcess } from "@posix/ipc";
import { Channel } from "@posix/ipc/channel";
import { AtomicsFloor } from "./fixtures/atomics_floor.ts";
import { readBytes } from "./fixtures/natural_trials.ts";

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url);
const prefix = `/pipc-bench-channel-${Deno.pid}`;
const ffi = { ffi: true } as const;
const socketPermissions = { ffi: true, net: true, read: true, write: true } as const;
const children: ChildProcess[] = [];
const closers: (() => unknown)[] = [];
const socketDir = Deno.makeTempDirSync();
const message = new Uint8Array(64).fill(1);
const reply = new Uint8Array(64 * 1024);

/** A pair of channels to an echo child running `module` (`args`): ping out, pong back. */
function channelEcho(module: string, args: string[] = []): [Channel, Channel] {
  const ping = Channel.create({ capacity: 1 << 16, role: "send" });
  const pong = Channel.create({ capacity: 1 << 16, role: "receive" });
  children.push(spawnDeno(fixture(module), { args, permissions: ffi, fds: { 3: ping, 4: pong } }));
  closers.push(() => ping.close(), () => pong.close());
  return [ping, pong];
}

/** A channel (of `capacity`) that a child fills with `size`-byte messages (`mode` of `module`). */
function channelSource(module: string, mode: string, size: number, capacity?: number): Channel {
  const channel = Channel.create({ capacity, role: "receive" });
  children.push(
    spawnDeno(fixture(module), { args: [mode, `${size}`], permissions: ffi, fds: { 3: channel } }),
  );
  closers.push(() => channel.close());
  return channel;
}

/** A Unix socket from Deno.listen, accepted from a child running echo.ts or natural_source.ts. */
async function socketTo(module: string, args: (path: string) => string[]): Promise<Deno.UnixConn> {
  const path = `${socketDir}/${children.length}.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  children.push(spawnDeno(fixture(module), { args: args(path), permissions: socketPermissions }));
  const connection = await listener.accept();
  listener.close();
  closers.push(() => connection.close());
  return connection;
}

// --- round trips -----------------------------------------------------------------------------

const [naturalPing, naturalPong] = channelEcho("natural_echo.ts");
const [syncPing, syncPong] = channelEcho("channel_peer.ts", ["echo"]);
const socket = await socketTo("echo.ts", (path) => ["socket", path]);
const floor = new AtomicsFloor();
closers.push(() => floor.close());

const semPing = Semaphore.create(`${prefix}-ping`);
const semPong = Semaphore.create(`${prefix}-pong`);
children.push(
  spawnDeno(fixture("echo.ts"), {
    args: ["semaphore", `${prefix}-ping`, `${prefix}-pong`],
    permissions: ffi,
  }),
);
const toQueue = MessageQueue.create(`${prefix}-in`, { messageSize: 64 });
const fromQueue = MessageQueue.create(`${prefix}-out`, { messageSize: 64 });
children.push(
  spawnDeno(fixture("echo.ts"), {
    args: ["mqueue", `${prefix}-in`, `${prefix}-out`],
    permissions: ffi,
  }),
);
const toPipe = pipe();
const fromPipe = pipe();
children.push(
  spawnDeno(fixture("echo.ts"), {
    args: ["pipe"],
    permissions: ffi,
    fds: { 3: toPipe.reader, 4: fromPipe.writer },
  }),
);
toPipe.reader.close();
fromPipe.writer.close();
const cat = new Deno.Command("cat", { stdin: "piped", stdout: "piped" }).spawn();
const catWriter = cat.stdin.getWriter();
const catReader = cat.stdout.getReader({ mode: "byob" });
closers.push(
  () => [semPing, semPong, toQueue, fromQueue].forEach((handle) => handle.close()),
  () => [toPipe, fromPipe].forEach((p) => p[Symbol.dispose]()),
  () => catWriter.close().catch(() => {}),
  () => cat.kill("SIGKILL"),
);

async function naturalTrip(): Promise<void> {
  await naturalPing.send(message);
  await naturalPong.receive();
}
async function socketTrip(): Promise<void> {
  await socket.write(message);
  await readBytes(socket, reply, 64);
}
function syncTrip(): void {
  syncPing.sendSync(message);
  syncPong.receiveSync({ view: true });
}
function semaphoreTrip(): void {
  semPing.post();
  semPong.waitSync();
}

const hot = "64 B round trip between two processes";
Deno.bench({ group: hot, name: "Channel, await send / await receive", fn: naturalTrip });
Deno.bench({
  group: hot,
  name: "Unix socket (Deno.listen), async",
  baseline: true,
  fn: socketTrip,
});
Deno.bench({ group: hot, name: "Channel, sendSync / receiveSync view (best case)", fn: syncTrip });
Deno.bench({ group: hot, name: "semaphores, post / waitSync", fn: semaphoreTrip });
Deno.bench({
  group: hot,
  name: "POSIX message queue, sync",
  fn() {
    toQueue.sendSync(message);
    fromQueue.receiveSync();
  },
});
Deno.bench({
  group: hot,
  name: "pipe(), await write / read",
  async fn() {
    await toPipe.writer.write(message);
    await readBytes(fromPipe.reader, reply, 64);
  },
});
Deno.bench({
  group: hot,
  name: "Deno.Command stdio through cat",
  async fn() {
    await catWriter.write(message);
    for (let got = 0; got < 64;) {
      got += (await catReader.read(new Uint8Array(64 - got))).value!.length;
    }
  },
});
Deno.bench({
  group: hot,
  name: "Atomics.load/store on one Int32 cell, spinning (reference)",
  fn: () => floor.trip(),
});

const idle = "64 B round trip after 2 ms idle";
// Each iteration sleeps 2 ms first: a fixed count, large enough that a few slow wake-ups (the
// host preempting this machine) do not decide the mean.
const idleRuns = { n: 300, warmup: 30 };
const afterIdle = (trip: () => void | Promise<void>) => async (t: Deno.BenchContext) => {
  await new Promise((resolve) => setTimeout(resolve, 2));
  t.start();
  await trip();
  t.end();
};
Deno.bench({
  group: idle,
  name: "Channel, await send / await receive",
  ...idleRuns,
  fn: afterIdle(naturalTrip),
});
Deno.bench({
  group: idle,
  name: "Unix socket (Deno.listen), async",
  baseline: true,
  ...idleRuns,
  fn: afterIdle(socketTrip),
});
Deno.bench({
  group: idle,
  name: "Channel, sendSync / receiveSync view (best case)",
  ...idleRuns,
  fn: afterIdle(syncTrip),
});
Deno.bench({
  group: idle,
  name: "semaphores, post / waitSync",
  ...idleRuns,
  fn: afterIdle(semaphoreTrip),
});

// --- one way, from a child as fast as this process takes it ----------------------------------

const TOTAL = 1 << 20;
for (const size of [65536, 64]) {
  const count = TOTAL / size;
  const natural = channelSource("natural_source.ts", "channel", size); // the default capacity
  const best = channelSource("channel_peer.ts", "source", size, 1 << 21);
  const stream = await socketTo("natural_source.ts", (path) => ["socket", path, `${size}`]);
  const received = new Uint8Array(size);
  const group = `${size >= 1024 ? `${size / 1024} KiB` : `${size} B`} messages one way, ${
    count === 1 ? "1 message" : `${count} messages (1 MiB)`
  } per iteration`;
  Deno.bench({
    group,
    name: "Channel, child await send, parent for await",
    async fn() {
      let n = 0;
      for await (const bytes of natural) {
        received[0] = bytes[0]!; // the message is read, as a user would
        if (++n === count) break;
      }
    },
  });
  Deno.bench({
    group,
    name: "Unix socket (Deno.connect), await write, await read into a reused buffer",
    baseline: true,
    async fn() {
      await readBytes(stream, reply, TOTAL);
    },
  });
  Deno.bench({
    group,
    name: "Channel, child sendSync, parent receiveSync view (best case)",
    fn() {
      for (let i = 0; i < count; i++) received[0] = best.receiveSync({ view: true })[0]!;
    },
  });
  if (size === 65536) {
    const chunk = new Uint8Array(size).fill(3);
    const target = new Uint8Array(size);
    Deno.bench({
      group,
      name: "in-process new Uint8Array + set (reference)",
      fn() {
        for (let i = 0; i < count; i++) new Uint8Array(size).set(chunk);
      },
    });
    Deno.bench({
      group,
      name: "in-process set into a reused buffer (reference)",
      fn() {
        for (let i = 0; i < count; i++) target.set(chunk);
      },
    });
  }
}

// --- zero-copy send: a loan against a copying send, to a child's for await -----------------

{
  const size = 65536;
  const count = TOTAL / size;
  const sink = Channel.create({ role: "send" }); // the default 1 MiB ring
  const ready = Channel.create({ capacity: 4096, role: "receive" });
  children.push(
    spawnDeno(fixture("loan_peer.ts"), {
      args: ["channel"],
      permissions: ffi,
      fds: { 3: sink, 4: ready },
    }),
  );
  closers.push(() => sink.close(), () => ready.close());
  await ready.receive(); // the child's for await has started
  const group = `64 KiB sent to a child's for await, ${count} messages (1 MiB) per iteration`;
  Deno.bench({
    group,
    name: "Channel, await send of a fresh buffer, filled",
    baseline: true,
    async fn() {
      for (let i = 0; i < count; i++) {
        const bytes = new Uint8Array(size);
        new DataView(bytes.buffer).setFloat64(0, i);
        bytes.fill(7, 8);
        await sink.send(bytes);
      }
    },
  });
  Deno.bench({
    group,
    name: "Channel, await loan, filled in place, commit",
    async fn() {
      for (let i = 0; i < count; i++) {
        using loan = await sink.loan(size);
        new DataView(loan.bytes.buffer, loan.bytes.byteOffset).setFloat64(0, i);
        loan.bytes.fill(7, 8);
        loan.commit();
      }
    },
  });
}

globalThis.addEventListener("unload", () => {
  for (const child of children) child.kill("SIGKILL");
  for (const close of closers) {
    try {
      void close();
    } catch {
      // already closed
    }
  }
  Deno.removeSync(socketDir, { recursive: true });
});
