// Attacks on UnixSocket: descriptors that change under a send that waits.
import assert from "node:assert/strict";
import { SharedMemory } from "../mod.ts";
import { socketpair } from "../src/unix/mod.ts";
import { ipcTest } from "./helpers.ts";

/** Sends until the socket's buffer is full; returns how many bytes went. */
function fill(socket: { sendSync(data: Uint8Array, options: { timeout: number }): number }) {
  const chunk = new Uint8Array(1 << 16);
  let total = 0;
  while (true) {
    try {
      total += socket.sendSync(chunk, { timeout: 0 });
    } catch (error) {
      if (error instanceof Deno.errors.TimedOut) return total;
      throw error;
    }
  }
}

ipcTest(
  "a descriptor closed while its send waits for room is BadResource, never the file that " +
    "took its number",
  async () => {
    using pair = socketpair();
    const queued = fill(pair[0]);
    const intended = SharedMemory.anonymous({ size: 8192 });
    const number = intended.fd;
    const sending = pair[0].send("x", { fds: [intended], timeout: 10_000 });
    intended.close();
    using bystander = SharedMemory.anonymous({ size: 12288 });
    assert.equal(bystander.fd, number, "the number is open again, for another segment");
    // Drain what filled the buffer, and what the send then sent.
    let drained = 0;
    const sizes: number[] = [];
    const outcome = sending.then(() => "sent", (error) => error);
    while (drained < queued) {
      using message = (await pair[1].receive({ maxBytes: 1 << 16, maxFds: 1, timeout: 10_000 }))!;
      drained += message.bytes.length;
      for (const fd of message.takeFds()) {
        using memory = SharedMemory.fromFd(fd);
        sizes.push(memory.size);
      }
    }
    const result = await outcome;
    for (let m; (m = pair[1].tryReceive({ maxFds: 1 })) !== undefined && m !== null;) {
      using message = m;
      for (const fd of message.takeFds()) {
        using memory = SharedMemory.fromFd(fd);
        sizes.push(memory.size);
      }
    }
    // Before: the peer got the bystander (12288 bytes), a file the caller never meant to send.
    assert.deepEqual(sizes, [], "no descriptor went to the peer");
    assert.ok(result instanceof Deno.errors.BadResource, String(result));
  },
);
