import assert from "node:assert/strict";
import { isSystemError, MessageQueue } from "../mod.ts";
import { F_GETFD, O_CLOEXEC, O_RDONLY } from "../ffi/constants.ts";
import { cstring } from "../ffi/cstring.ts";
import { libc } from "../ffi/libc.ts";
import {
  assertSucceeded,
  collect,
  fixture,
  ipcTest,
  runDeno,
  spawnDeno,
  thrown,
  uniqueName,
} from "./helpers.ts";

import { checksum } from "./fixtures/mq_message.ts";

const child = fixture("mq_child.ts");
const decoder = new TextDecoder();

ipcTest(
  "4 producers and 2 consumers move 100,000 messages: each arrives once, intact",
  async () => {
    const name = uniqueName("fanin");
    using queue = MessageQueue.create(name, { maxMessages: 10, messageSize: 128 });
    const consumers = [0, 1].map(() => spawnDeno(child, ["consume", name]));
    const producers = [0, 1, 2, 3].map((i) =>
      spawnDeno(child, ["produce", name, String(i * 25_000), "25000"])
    );
    for (const producer of producers) assertSucceeded(await collect(producer));
    for (let i = 0; i < consumers.length; i++) await queue.send(new Uint8Array(0)); // one stop each
    const seen = new Uint8Array(100_000);
    let total = 0;
    for (const consumer of consumers) {
      const { ids, corrupt } = JSON.parse(assertSucceeded(await collect(consumer)).stdout);
      assert.equal(corrupt, 0, "every checksum intact");
      for (const id of ids as number[]) seen[id]!++;
      total += ids.length;
    }
    assert.equal(total, 100_000);
    assert.ok(seen.every((count) => count === 1), "every id exactly once");
  },
);

ipcTest("a consumer started after a mix of sends receives them in kernel order", async () => {
  const name = uniqueName("priority");
  using queue = MessageQueue.create(name);
  const sends: [string, number][] = [
    ["a", 1],
    ["b", 5],
    ["c", 1],
    ["d", 0],
    ["e", 5],
    ["f", 32767],
    ["g", 0],
  ];
  for (const [text, priority] of sends) queue.sendSync(text, { priority });
  const output = assertSucceeded(await runDeno(child, ["drain", name]));
  assert.deepEqual(output.stdout.trim().split("\n"), [
    "32767:f",
    "5:b",
    "5:e",
    "1:a",
    "1:c",
    "0:d",
    "0:g",
  ]);
});

ipcTest("send, receive, try and sync forms, attributes", async () => {
  using queue = MessageQueue.create(uniqueName("forms"), { maxMessages: 2, messageSize: 16 });
  assert.deepEqual(queue.attributes, { maxMessages: 2, messageSize: 16, currentMessages: 0 });
  assert.equal(queue.tryReceive(), null);
  assert.ok(queue.trySend("one"));
  await queue.send(new Uint8Array([1, 2]), { priority: 3 });
  assert.equal(queue.trySend("full"), false);
  assert.equal(queue.attributes.currentMessages, 2);
  assert.throws(() => queue.sendSync("x", { timeout: 30 }), Deno.errors.TimedOut);
  const first = queue.receiveSync();
  assert.deepEqual([...first.data], [1, 2]);
  assert.equal(first.priority, 3);
  const second = await queue.receive();
  assert.equal(decoder.decode(second.data), "one");
  assert.throws(() => queue.receiveSync({ timeout: 30 }), Deno.errors.TimedOut);
});

ipcTest(
  "receive() ends promptly on timeout, abort and close; the iterator ends on close",
  async () => {
    using queue = MessageQueue.create(uniqueName("waits"));
    let started = performance.now();
    await assert.rejects(queue.receive({ timeout: 120 }), Deno.errors.TimedOut);
    assert.ok(performance.now() - started < 1000);
    started = performance.now();
    await assert.rejects(queue.receive({ signal: AbortSignal.timeout(50) }), DOMException);
    assert.ok(performance.now() - started < 1000);

    queue.sendSync("before close");
    const received: string[] = [];
    setTimeout(() => queue.close(), 100);
    started = performance.now();
    for await (const message of queue) received.push(decoder.decode(message.data));
    assert.deepEqual(received, ["before close"]);
    assert.ok(
      performance.now() - started < 1000,
      "the iteration ended within a slice of the close",
    );
    assert.throws(() => queue.tryReceive(), Deno.errors.BadResource);
    assert.throws(() => queue.trySend("x"), Deno.errors.BadResource);
    await assert.rejects(queue.receive(), Deno.errors.BadResource);
  },
);

ipcTest("the owner rule: the creator removes the name, an opener and persist keep it", () => {
  const name = uniqueName("owner");
  const owner = MessageQueue.create(name);
  assert.throws(() => MessageQueue.create(name), Deno.errors.AlreadyExists);
  MessageQueue.open(name, { read: false }).close();
  owner.close();
  const missing = thrown(() => MessageQueue.open(name));
  assert.ok(
    missing instanceof Deno.errors.NotFound && isSystemError(missing) && missing.code === "ENOENT",
  );
  const kept = uniqueName("kept");
  MessageQueue.create(kept, { persist: true }).close();
  MessageQueue.open(kept).close();
  MessageQueue.unlink(kept);
  assert.throws(() => MessageQueue.unlink(kept), Deno.errors.NotFound);
});

ipcTest(
  "bad input: message too long, bad priority, bad sizes, bad names, wrong direction",
  async () => {
    using queue = MessageQueue.create(uniqueName("bad"), { messageSize: 8 });
    assert.throws(
      () => queue.trySend(new Uint8Array(9)),
      /Cannot send 9 bytes .*: its message size is 8 bytes/,
    );
    await assert.rejects(queue.send("123456789"), RangeError);
    for (const priority of [-1, 32768, 1.5]) {
      assert.throws(() => queue.trySend("x", { priority }), /priority .* from 0 to 32767/);
    }
    assert.throws(() => queue.trySend(42 as unknown as string), TypeError);
    for (const size of [0, -1, 1.5]) {
      assert.throws(() => MessageQueue.create(uniqueName("s"), { messageSize: size }), RangeError);
      assert.throws(() => MessageQueue.create(uniqueName("s"), { maxMessages: size }), RangeError);
    }
    assert.throws(
      () => MessageQueue.create(uniqueName("s"), { maxMessages: "3" as unknown as number }),
      TypeError,
    );
    assert.throws(() => MessageQueue.create("bad/name"), TypeError);
    assert.throws(
      () => MessageQueue.open(uniqueName("d"), { read: false, write: false }),
      TypeError,
    );
    const sendOnly = MessageQueue.open(queue.name, { read: false });
    assert.throws(
      () => sendOnly.tryReceive(),
      Deno.errors.BadResource,
      "EBADF: not open for reading",
    );
    sendOnly.close();
  },
);

ipcTest(
  "a queue over the kernel's limits says which limit, its value and how to raise it",
  async () => {
    const tooMany = thrown(() =>
      MessageQueue.create(uniqueName("limit"), { maxMessages: 1_000_000 })
    );
    assert.ok(isSystemError(tooMany) && tooMany.code === "EINVAL", String(tooMany));
    assert.match(
      tooMany.message,
      /maxMessages 1000000 is over \/proc\/sys\/fs\/mqueue\/msg_max \(\d+\).*sysctl/,
    );
    const tooBig = thrown(() =>
      MessageQueue.create(uniqueName("limit"), { messageSize: 64 * 1024 * 1024 })
    );
    assert.match(
      String(tooBig),
      /messageSize 67108864 is over \/proc\/sys\/fs\/mqueue\/msgsize_max/,
    );

    const name = uniqueName("rlimit");
    const deno = Deno.execPath();
    const output = await new Deno.Command("bash", { // dash has no ulimit -q
      args: ["-c", `ulimit -q 1000 && exec "${deno}" run --allow-ffi "${child}" create ${name}`],
      stderr: "piped",
    }).output();
    assert.notEqual(output.code, 0);
    assert.match(
      decoder.decode(output.stderr),
      /RLIMIT_MSGQUEUE \(1000 bytes\) may be used up.*ulimit -q/,
    );
  },
);

ipcTest("a close() that failed is not retried on a descriptor number reused since", () => {
  const name = uniqueName("reclose");
  using queue = MessageQueue.create(name);
  const c = libc();
  const number = queue.fd;
  c.close(number); // behind the handle's back: its close() now fails with EBADF
  assert.throws(() => queue.close(), Deno.errors.BadResource);
  assert.throws(() => MessageQueue.open(name), Deno.errors.NotFound, "the name went all the same");
  // The number is free again; a new file takes it, and the handle must leave it alone.
  const path = Deno.makeTempFileSync();
  const reused = c.open(cstring(path), O_RDONLY | O_CLOEXEC, 0);
  try {
    assert.equal(reused, number, "the kernel gives the lowest free number");
    queue.close();
    assert.ok(c.fcntl(reused, F_GETFD, 0) >= 0, "the new file is still open");
  } finally {
    c.close(reused);
    Deno.removeSync(path);
  }
});

ipcTest("a full queue's sendSync() takes timeouts past the C range and Infinity", async () => {
  for (const timeout of [3e9, Infinity]) {
    const name = uniqueName("long");
    using queue = MessageQueue.create(name, { maxMessages: 1, messageSize: 16 });
    queue.sendSync("first");
    const drainer = spawnDeno(child, ["drain", name]);
    queue.sendSync("second", { timeout }); // waits in poll() until the child drains the queue
    const output = assertSucceeded(await collect(drainer));
    assert.match(output.stdout, /^0:first$/m);
    queue.tryReceive(); // "second", unless the child took it too
    await queue.send("third", { timeout, priority: 1 });
  }
});

ipcTest("priorities and timeouts are checked before any syscall", async () => {
  using queue = MessageQueue.create(uniqueName("prio"));
  for (const priority of [-1, 32768, 2 ** 32, 2 ** 32 + 1, 1.5, NaN, Infinity]) {
    assert.throws(() => queue.trySend("x", { priority }), RangeError, "priority");
    await assert.rejects(queue.send("x", { priority }), RangeError);
  }
  assert.throws(() => queue.trySend("x", { priority: "1" as unknown as number }), TypeError);
  for (const timeout of [NaN, -1]) {
    assert.throws(() => queue.receiveSync({ timeout }), RangeError, "timeout");
    await assert.rejects(queue.receive({ timeout }), RangeError);
  }
  assert.equal(queue.attributes.currentMessages, 0);
});

ipcTest(
  "queues dropped without close() release their descriptor and owned name on GC",
  async () => {
    const output = await runDeno(fixture("gc_dropped.ts"), ["mqueue"], {
      flags: ["--allow-all", "--v8-flags=--expose-gc"],
      timeout: 60_000,
    });
    assert.equal(output.code, 0, output.stderr);
    assert.deepEqual(JSON.parse(output.stdout), { made: 200, left: [] });
  },
);

ipcTest("every MessageQueue options argument refuses null and non-objects with a TypeError", () => {
  using queue = MessageQueue.create(uniqueName("opts"));
  const name = queue.name;
  const calls: [string, (options: never) => unknown][] = [
    ["create", (options) => MessageQueue.create(uniqueName("opts"), options)],
    ["open", (options) => MessageQueue.open(name, options)],
    ["sendSync", (options) => queue.sendSync("x", options)],
    ["trySend", (options) => queue.trySend("x", options)],
    ["receiveSync", (options) => queue.receiveSync(options)],
  ];
  for (const [call, fn] of calls) {
    for (const options of [null, 7, "o", Symbol("o")]) {
      assert.throws(() => fn(options as never), { name: "TypeError", message: /options/ }, call);
    }
  }
  assert.equal(queue.attributes.currentMessages, 0, "nothing was sent");
});

ipcTest("MessageQueue options: hostile sizes and flags are argument errors, never coerced", () => {
  for (const messageSize of [Symbol("s"), Object.create(null), 1n]) {
    assert.throws(
      () => MessageQueue.create(uniqueName("size"), { messageSize: messageSize as never }),
      { name: "TypeError", message: /messageSize/ },
    );
  }
  using queue = MessageQueue.create(uniqueName("flags"));
  for (const flag of ["false", 0, 1, null, Object.create(null)]) {
    assert.throws(() => MessageQueue.open(queue.name, { read: flag as never }), {
      name: "TypeError",
      message: /read/,
    });
    assert.throws(() => MessageQueue.open(queue.name, { write: flag as never }), {
      name: "TypeError",
      message: /write/,
    });
    assert.throws(
      () => MessageQueue.create(uniqueName("persist"), { persist: flag as never }),
      { name: "TypeError", message: /persist/ },
    );
  }
});

ipcTest("new MessageQueue() from JavaScript is refused: the constructor is private", () => {
  using queue = MessageQueue.create(uniqueName("ctor"));
  // Given a live queue's fd, an object made this way would close that fd when collected.
  assert.throws(
    () =>
      new (MessageQueue as unknown as new (...args: unknown[]) => MessageQueue)(
        queue.fd,
        queue.name,
        null,
      ),
    { name: "TypeError", message: /MessageQueue/ },
  );
  assert.throws(
    () => new (MessageQueue as unknown as new (...args: unknown[]) => MessageQueue)(1e15, "", ""),
    { name: "TypeError", message: /MessageQueue/ },
  );
  queue.sendSync("still open");
});

ipcTest(
  "a message whose buffer was transferred away is a TypeError, never sent as empty",
  async () => {
    using queue = MessageQueue.create(uniqueName("detached"));
    const bytes = new Uint8Array([1, 2, 3]);
    bytes.buffer.transfer();
    const refused = { name: "TypeError", message: /transferred/ };
    assert.throws(() => queue.trySend(bytes), refused);
    assert.throws(() => queue.sendSync(bytes), refused);
    await assert.rejects(queue.send(bytes), refused);
    assert.equal(queue.attributes.currentMessages, 0);
  },
);

ipcTest(
  "a message whose buffer is transferred away while send() waits for room is a TypeError, " +
    "never sent as empty",
  async () => {
    using queue = MessageQueue.create(uniqueName("detached-wait"), {
      maxMessages: 1,
      messageSize: 16,
    });
    queue.sendSync("full");
    const bytes = new Uint8Array([1, 2, 3]);
    const sending = queue.send(bytes, { timeout: 10_000 });
    bytes.buffer.transfer();
    queue.tryReceive(); // room for the waiting send
    // Before: the send resolved, and the receiver got a message of 0 bytes.
    await assert.rejects(sending, { name: "TypeError", message: /transferred/ });
    assert.equal(queue.attributes.currentMessages, 0);
  },
);

ipcTest(
  "receiveInto: a child's 20,000 messages land in one reused buffer, each intact, in order",
  async () => {
    const name = uniqueName("into");
    using queue = MessageQueue.create(name, { maxMessages: 10, messageSize: 128 });
    const producer = spawnDeno(child, ["produce", name, "0", "20000"]);
    const buffer = new Uint8Array(128);
    const view = new DataView(buffer.buffer);
    for (let id = 0; id < 20_000; id++) {
      // The first waits for the child to start too: under qemu on a busy machine, over 10 s.
      const timeout = id === 0 ? 60_000 : 10_000;
      const { length, priority } = id % 2 === 0
        ? await queue.receiveInto(buffer, { timeout })
        : queue.receiveIntoSync(buffer, { timeout });
      assert.equal(priority, 0);
      assert.equal(length, 8 + 24 + (id % 64), `message ${id}'s length`);
      assert.equal(view.getUint32(0), id, "in the order sent");
      assert.equal(view.getUint32(4), checksum(buffer.subarray(8, length)), `message ${id} intact`);
    }
    assertSucceeded(await collect(producer));
    assert.equal(queue.tryReceiveInto(buffer), null);
  },
);

ipcTest("receiveInto forms: priorities, try when empty, timeouts, abort, close", async () => {
  using queue = MessageQueue.create(uniqueName("into-forms"), { maxMessages: 4, messageSize: 16 });
  const buffer = new Uint8Array(32).fill(0xee);
  assert.equal(queue.tryReceiveInto(buffer), null);
  queue.sendSync("low", { priority: 1 });
  queue.sendSync(new Uint8Array([9, 8]), { priority: 7 });
  assert.deepEqual(queue.tryReceiveInto(buffer), { length: 2, priority: 7 });
  assert.deepEqual([...buffer.subarray(0, 3)], [9, 8, 0xee], "only the message's bytes written");
  assert.deepEqual(queue.receiveIntoSync(buffer), { length: 3, priority: 1 });
  assert.equal(decoder.decode(buffer.subarray(0, 3)), "low");
  assert.throws(() => queue.receiveIntoSync(buffer, { timeout: 30 }), Deno.errors.TimedOut);
  await assert.rejects(queue.receiveInto(buffer, { timeout: 30 }), Deno.errors.TimedOut);
  const controller = new AbortController();
  const aborted = queue.receiveInto(buffer, { signal: controller.signal });
  setTimeout(() => controller.abort(), 20);
  await assert.rejects(aborted);
  const pending = queue.receiveInto(buffer);
  setTimeout(() => queue.close(), 20);
  await assert.rejects(pending, Deno.errors.BadResource);
  assert.throws(() => queue.tryReceiveInto(buffer), Deno.errors.BadResource);
});

ipcTest("receiveInto checks its buffer before any syscall: too small, detached, not bytes", () => {
  using queue = MessageQueue.create(uniqueName("into-check"), { maxMessages: 2, messageSize: 64 });
  queue.sendSync("kept");
  const small = thrown(() => queue.tryReceiveInto(new Uint8Array(63)));
  assert.ok(small instanceof RangeError && /buffer must hold .* 64 bytes/.test(small.message));
  assert.throws(() => queue.receiveIntoSync(new Uint8Array(0)), RangeError);
  const gone = new Uint8Array(64);
  gone.buffer.transfer();
  assert.throws(() => queue.tryReceiveInto(gone), TypeError);
  for (const bad of [null, undefined, 64, "x", new Uint16Array(64), new ArrayBuffer(64), [0]]) {
    assert.throws(() => queue.tryReceiveInto(bad as unknown as Uint8Array), TypeError);
  }
  assert.equal(queue.attributes.currentMessages, 1, "no refused call took the message");
  assert.deepEqual(queue.tryReceiveInto(new Uint8Array(new SharedArrayBuffer(64))), {
    length: 4,
    priority: 0,
  });
});

ipcTest(
  "a buffer transferred away during receiveInto's wait is a TypeError, not a write",
  async () => {
    using queue = MessageQueue.create(uniqueName("into-moved"), {
      maxMessages: 2,
      messageSize: 64,
    });
    const buffer = new Uint8Array(64);
    const pending = queue.receiveInto(buffer, { timeout: 5000 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const moved = new Uint8Array(buffer.buffer.transfer());
    queue.sendSync("late");
    await assert.rejects(pending, TypeError);
    assert.equal(moved[0], 0, "the new owner's bytes were not written");
    assert.equal(queue.attributes.currentMessages, 1, "the message stays in the queue");
  },
);
