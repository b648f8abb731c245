import assert from "node:assert/strict";
import { Channel, SharedMemory, spawnDeno } from "../mod.ts";
import { C_RECEIVER_CPU, C_SENDER_CPU } from "../src/channel/layout.ts";
import { ADAPTIVE_MAX_MS, adaptiveBudget } from "../src/channel/wait.ts";
import { fixture, ipcTest } from "./helpers.ts";

/** CPU time, in ms, that this process used so far, all its threads. */
function cpuMs(): number {
  let ns = 0;
  for (const task of Deno.readDirSync("/proc/self/task")) {
    try {
      ns += Number(Deno.readTextFileSync(`/proc/self/task/${task.name}/schedstat`).split(" ")[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return ns / 1e6;
}

Deno.test("adaptiveBudget() looks across turns only after a quick answer: 3× it, at most 1 ms and the timeout", () => {
  assert.equal(adaptiveBudget(Infinity, Infinity), 0, "a first wait sleeps at once");
  assert.equal(adaptiveBudget(ADAPTIVE_MAX_MS, Infinity), 0, "so does one after a long wait");
  assert.equal(adaptiveBudget(5, Infinity), 0);
  assert.equal(adaptiveBudget(NaN, Infinity), 0);
  assert.equal(adaptiveBudget(0.1, Infinity), 0.30000000000000004);
  assert.equal(adaptiveBudget(0.5, Infinity), ADAPTIVE_MAX_MS);
  assert.equal(adaptiveBudget(0.2, 0.25), 0.25, "never past the timeout");
  assert.equal(adaptiveBudget(0.2, 0), 0);
});

ipcTest(
  "after quick round trips, a receive that finds nothing settles at once on abort and close, and idles under 1% of a core",
  async () => {
    using ping = Channel.create({ capacity: 1 << 16, role: "send" });
    using pong = Channel.create({ capacity: 1 << 16, role: "receive" });
    await using echo = spawnDeno(fixture("channel_echo.ts"), {
      permissions: { ffi: true },
      fds: { 3: ping, 4: pong },
    });
    const message = new Uint8Array(64).fill(5);
    for (let i = 0; i < 300; i++) { // quick answers: the next waits look across turns first
      await ping.send(message);
      assert.deepEqual(await pong.receive(), message);
    }

    const controller = new AbortController();
    const aborted = pong.receive({ signal: controller.signal });
    queueMicrotask(() => controller.abort());
    let started = performance.now();
    await assert.rejects(aborted, (error: unknown) => (error as Error).name === "AbortError");
    assert.ok(performance.now() - started < 100, "an abort during the look settles at once");

    await ping.send(message); // a quick answer again
    await pong.receive();
    const idle = pong.receive().catch((error: unknown) => error);
    const cpuBefore = cpuMs();
    started = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const share = (cpuMs() - cpuBefore) / (performance.now() - started);
    assert.ok(share < 0.01, `an idle receiver used ${(share * 100).toFixed(2)}% of a core`);
    started = performance.now();
    pong.close();
    assert.ok((await idle) instanceof Deno.errors.BadResource);
    assert.ok(performance.now() - started < 1000, "close wakes the pending receive");
    ping.close(); // the echo's for await ends
    assert.ok((await echo.status).success);
  },
);

ipcTest(
  "each side leaves the CPU it last ran on in the header, for the other side's spin",
  async () => {
    using ping = Channel.create({ capacity: 1 << 16, role: "send" });
    using pong = Channel.create({ capacity: 1 << 16, role: "receive" });
    using pingMemory = SharedMemory.fromFd(ping); // duplicates of their descriptors
    using pongMemory = SharedMemory.fromFd(pong);
    const pingCells = new Int32Array(pingMemory.buffer, 0, 64);
    const pongCells = new Int32Array(pongMemory.buffer, 0, 64);
    assert.deepEqual(
      [pingCells[C_SENDER_CPU], pongCells[C_RECEIVER_CPU]],
      [0, 0],
      "none known yet",
    );
    await using echo = spawnDeno(fixture("channel_echo.ts"), {
      permissions: { ffi: true },
      fds: { 3: ping, 4: pong },
    });
    const message = new Uint8Array(64).fill(7);
    for (let i = 0; i < 5; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20)); // both sides go to sleep
      await ping.send(message);
      assert.deepEqual(await pong.receive(), message);
    }
    // A CPU number plus 1: the echo's as pong's sender and ping's receiver, this process's as
    // ping's sender (each side looks after its sleeps).
    for (
      const [name, cell] of [
        ["the echo, as sender", pongCells[C_SENDER_CPU]],
        ["the echo, as receiver", pingCells[C_RECEIVER_CPU]],
        ["this process, as sender", pingCells[C_SENDER_CPU]],
      ] as const
    ) {
      assert.ok(Number.isInteger(cell) && cell! >= 1 && cell! <= 4096, `${name}: ${cell}`);
    }
    ping.close();
    assert.equal((await echo.status).success, true);
  },
);
