/**
 * Pipes against what Deno offers without this library.
 *
 * - "1 GiB to cat and back": 1 GiB written to `cat`'s stdin while its stdout is read back,
 *   through two `pipe()`s (at the kernel's 64 KiB buffer and at 1 MiB) against
 *   `Deno.Command`'s piped stdin/stdout (the baseline). Target: at least as fast.
 * - "1-byte round trip": one byte to an echo child and back. A Deno echo child over `pipe()`
 *   against one over a Unix socket from `Deno.listen` (the baseline); and `cat` as the echo,
 *   through `pipe()` and through `Deno.Command`'s stdio.
 *
 * Run: deno task bench bench/pipe_bench.ts
 *
 * @module
 */

import { pipe, spawn, spawnDeno } from "../mod.ts";

const GIB = 1024 ** 3;
const chunk = new Uint8Array(1024 * 1024).fill(7);
const echo = new URL("./fixtures/echo.ts", import.meta.url);

Deno.bench({
  group: "1 GiB to cat and back",
  name: "Deno.Command piped stdin/stdout",
  baseline: true,
  n: 3,
  warmup: 1,
  async fn() {
    const child = new Deno.Command("cat", { stdin: "piped", stdout: "piped" }).spawn();
    const writing = (async () => {
      const writer = child.stdin.getWriter();
      for (let sent = 0; sent < GIB; sent += chunk.length) await writer.write(chunk);
      await writer.close();
    })();
    let received = 0;
    for await (const part of child.stdout) received += part.length;
    await writing;
    await child.status;
    if (received !== GIB) throw new Error(`received ${received}`);
  },
});

/** 1 GiB into `cat` through one pipe() and back out through another. */
async function throughCat(capacity?: number): Promise<void> {
  const input = pipe({ capacity });
  const output = pipe({ capacity });
  const child = spawn("cat", { stdin: input.reader, stdout: output.writer });
  input.reader.close();
  output.writer.close();
  const writing = (async () => {
    for (let sent = 0; sent < GIB; sent += chunk.length) await input.writer.write(chunk);
    input.writer.close();
  })();
  const buffer = new Uint8Array(1024 * 1024);
  let received = 0;
  for (let n; (n = await output.reader.read(buffer)) !== null;) received += n;
  await writing;
  await child.status;
  output.reader.close();
  if (received !== GIB) throw new Error(`received ${received}`);
}

Deno.bench({
  group: "1 GiB to cat and back",
  name: "pipe() pair, the kernel's 64 KiB buffers",
  n: 3,
  warmup: 1,
  async fn() {
    await throughCat();
  },
});

Deno.bench({
  group: "1 GiB to cat and back",
  name: "pipe({ capacity: 1 MiB }) pair",
  n: 3,
  warmup: 1,
  async fn() {
    await throughCat(1024 * 1024);
  },
});

// --- 1-byte round trips to long-lived echo children -------------------------------------------

const ping = new Uint8Array([42]);
const pong = new Uint8Array(1);

const toChild = pipe();
const fromChild = pipe();
const pipeEcho = spawnDeno(echo, {
  args: ["pipe"],
  permissions: { ffi: true },
  fds: { 3: toChild.reader, 4: fromChild.writer },
});
toChild.reader.close();
fromChild.writer.close();

const socketPath = `${Deno.makeTempDirSync()}/echo.sock`;
const listener = Deno.listen({ transport: "unix", path: socketPath });
const socketEcho = spawnDeno(echo, {
  args: ["socket", socketPath],
  permissions: { ffi: true, net: true, read: true, write: true },
});
const socket = await listener.accept();

const catIn = pipe();
const catOut = pipe();
const catThroughPipes = spawn("cat", { stdin: catIn.reader, stdout: catOut.writer });
catIn.reader.close();
catOut.writer.close();

const catEcho = new Deno.Command("cat", { stdin: "piped", stdout: "piped" }).spawn();
const catWriter = catEcho.stdin.getWriter();
const catReader = catEcho.stdout.getReader({ mode: "byob" });

Deno.bench({
  group: "1-byte round trip between two processes",
  name: "Unix socket (Deno.listen)",
  baseline: true,
  async fn() {
    await socket.write(ping);
    await socket.read(pong);
  },
});

Deno.bench({
  group: "1-byte round trip between two processes",
  name: "pipe() pair",
  async fn() {
    await toChild.writer.write(ping);
    await fromChild.reader.read(pong);
  },
});

Deno.bench({
  group: "1-byte round trip between two processes",
  name: "pipe() pair through cat",
  async fn() {
    await catIn.writer.write(ping);
    await catOut.reader.read(pong);
  },
});

Deno.bench({
  group: "1-byte round trip between two processes",
  name: "Deno.Command stdio through cat",
  async fn() {
    await catWriter.write(ping);
    await catReader.read(new Uint8Array(1));
  },
});

globalThis.addEventListener("unload", () => {
  toChild.writer.close();
  fromChild.reader.close();
  catIn.writer.close();
  catOut.reader.close();
  socket.close();
  listener.close(); // removes the socket file
  void catWriter.close();
  catEcho.kill();
  socketEcho.kill();
  void catThroughPipes;
  void pipeEcho;
  Deno.removeSync(socketPath.slice(0, -"/echo.sock".length), { recursive: true });
});
