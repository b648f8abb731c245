// Attacks on lengths: a Uint8Array whose `length` lies (a subclass's getter or an own property)
// given to every call that hands a buffer and its length to libc or copies into shared memory.
// Each case runs in a child with a bounded time: a wrong length there is a write or a read past
// the buffer, which can crash (exit 139).
import assert from "node:assert/strict";
import { fixture, ipcTest, runDeno } from "./helpers.ts";

async function run(kind: string): Promise<unknown> {
  const output = await runDeno(fixture("attack_lying_bytes.ts"), [kind], {
    flags: ["--allow-ffi", "--allow-read", "--allow-write"],
    timeout: 20_000,
  });
  assert.deepEqual(
    { code: output.code, signal: output.signal },
    { code: 0, signal: null },
    `the child ended badly:\n${output.stderr}`,
  );
  return JSON.parse(output.stdout);
}

ipcTest(
  "MessageQueue.tryReceiveInto() judges a buffer by its real length, not its getter",
  async () => {
    // Before: mq_receive wrote 8192 bytes into a 16-byte buffer: exit 139.
    assert.deepEqual(await run("mq-receive-into"), { result: { error: "RangeError" }, touched: 0 });
    assert.deepEqual(await run("mq-receive-into-own"), {
      result: { error: "RangeError" },
      touched: 0,
    });
  },
);

ipcTest("MessageQueue.sendSync() sends a buffer's real bytes, never what past it", async () => {
  // Before: mq_send read 4096 bytes from a 16-byte buffer and sent them.
  assert.deepEqual(await run("mq-send"), { result: { value: 16 }, touched: 0 });
});

ipcTest("Pipe readSync() reads at most a buffer's real length", async () => {
  // Before: read() wrote up to 60000 bytes into a 16-byte buffer.
  assert.deepEqual(await run("pipe-read"), { result: { value: 16 }, touched: 0 });
});

ipcTest("Pipe writeSync() writes a buffer's real bytes, never what lies past it", async () => {
  assert.deepEqual(await run("pipe-write"), { result: { value: [16, 16] }, touched: 0 });
});

ipcTest(
  "SharedMap.set() refuses a value longer than maxValueBytes whatever its getter says",
  async () => {
    // Before: the set succeeded and its 400 bytes overwrote the slots after k0's.
    assert.deepEqual(await run("map-set"), {
      result: { set: { error: "RangeError" }, intact: 40 },
      touched: 0,
    });
  },
);

ipcTest("Channel.trySend() frames a message by its real length", async () => {
  // Before: the frame said 1 byte and 2000 were copied, over where the next message went.
  assert.deepEqual(await run("channel-send"), {
    result: { value: [2000, true, [1, 2, 3]] },
    touched: 0,
  });
});

ipcTest("Topic.tryPublish() frames a message by its real length", async () => {
  // Before: the frame said 1 byte and 2000 were copied, over where the next message went.
  assert.deepEqual(await run("topic-publish"), {
    result: { value: [2000, true, [1, 2, 3]] },
    touched: 0,
  });
});
