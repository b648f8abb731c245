import assert from "node:assert/strict";
import { Channel, type Codec, codecs } from "../mod.ts";
import { SLAB_MESSAGE_MAX, SLAB_SIZE } from "../src/channel/slab.ts";
import { fixture, ipcTest, runDeno, thrown } from "./helpers.ts";

/** Bytes that say which message they belong to: `length` bytes, each `(seed + i) & 255`. */
function pattern(length: number, seed: number): Uint8Array {
  return new Uint8Array(length).map((_, i) => (seed + i * 31) & 255);
}

/** Sends then receives `count` messages one by one through a small ring, holding each. */
function roundTrips<T>(channel: Channel<T>, values: (i: number) => T, count: number): T[] {
  const held: T[] = [];
  for (let i = 0; i < count; i++) {
    channel.sendSync(values(i));
    held.push(channel.receiveSync({ timeout: 1000 }));
  }
  return held;
}

ipcTest("a held copy never changes while the ring reuses its bytes, at every size", () => {
  using channel = Channel.create({ capacity: 1 << 16 });
  const sizes = [0, 1, 64, 4096, SLAB_MESSAGE_MAX, SLAB_MESSAGE_MAX + 1, 60_000];
  const count = 400; // the ring wraps many times; small copies fill several slabs
  const held = roundTrips(channel, (i) => pattern(sizes[i % sizes.length]!, i), count);
  for (let i = 0; i < count; i++) assert.deepEqual(held[i], pattern(sizes[i % sizes.length]!, i));
});

ipcTest(
  "copies up to SLAB_MESSAGE_MAX bytes share one slab, larger ones own their buffer",
  () => {
    using channel = Channel.create({ capacity: 1 << 16 });
    const [a, b, large] = roundTrips(
      channel,
      (i) => pattern([100, SLAB_MESSAGE_MAX, SLAB_MESSAGE_MAX + 1][i]!, i),
      3,
    ) as [Uint8Array, Uint8Array, Uint8Array];
    assert.equal(a.buffer, b.buffer);
    assert.equal(a.buffer.byteLength, SLAB_SIZE);
    assert.equal(b.byteOffset % 8, 0); // 8-aligned, as in the ring
    assert.equal(large.buffer.byteLength, SLAB_MESSAGE_MAX + 1);
    assert.equal(large.byteOffset, 0);
  },
);

ipcTest("a full slab is never written again: the next copy goes to a new slab", () => {
  using channel = Channel.create({ capacity: 1 << 16 });
  const size = 1000; // 1008 with alignment: 260 fit in a slab
  const count = Math.ceil((3 * SLAB_SIZE) / 1008);
  const held = roundTrips(channel, (i) => pattern(size, i), count);
  const slabs = new Set(held.map((message) => message.buffer));
  assert.ok(slabs.size >= 3, `${slabs.size} slabs`);
  for (const slab of slabs) assert.equal(slab.byteLength, SLAB_SIZE);
  for (let i = 0; i < count; i++) assert.deepEqual(held[i], pattern(size, i));
  // Messages of one slab are consecutive: a slab that was left is never taken up again.
  const order = held.map((message) => [...slabs].indexOf(message.buffer));
  assert.deepEqual(order, [...order].sort((x, y) => x - y));
});

ipcTest(
  "a structured value's typed arrays never change while the ring reuses its bytes",
  () => {
    // V8's deserializer lays aligned typed arrays over its input: decoded from the ring itself,
    // they changed with the next messages.
    using channel = Channel.create({ capacity: 4096, codec: codecs.structured });
    const held = roundTrips(
      channel,
      (i) => ({ i, bytes: pattern(256, i), floats: new Float64Array([i, i / 2]) }),
      100,
    ) as { i: number; bytes: Uint8Array; floats: Float64Array }[];
    for (let i = 0; i < 100; i++) {
      assert.equal(held[i]!.i, i);
      assert.deepEqual(held[i]!.bytes, pattern(256, i));
      assert.deepEqual([...held[i]!.floats], [i, i / 2]);
    }
  },
);

ipcTest("a custom codec that keeps its bytes decodes from a copy it may keep", () => {
  const keep: Codec<Uint8Array> = {
    name: "keeps-bytes",
    encode: (value) => value,
    decode: (bytes) => bytes, // keeps them: the ring's own bytes would change under it
  };
  using channel = Channel.create({ capacity: 4096, codec: keep });
  const held = roundTrips(channel, (i) => pattern(500, i), 100);
  for (let i = 0; i < 100; i++) assert.deepEqual(held[i], pattern(500, i));
});

ipcTest("text and json values stay intact while the ring reuses its bytes", () => {
  using text = Channel.create({ capacity: 4096, codec: codecs.text });
  const strings = roundTrips(text, (i) => `message ${i} `.repeat(20), 200);
  strings.forEach((value, i) => assert.equal(value, `message ${i} `.repeat(20)));
  using json = Channel.create({ capacity: 4096, codec: codecs.json });
  const objects = roundTrips(json, (i) => ({ i, list: [i, `${i}`] }), 200);
  objects.forEach((value, i) => assert.deepEqual(value, { i, list: [i, `${i}`] }));
});

ipcTest(
  "tryReceiveInto copies a message of exactly the buffer's size, and says 0 for an empty one",
  () => {
    using channel = Channel.create({ capacity: 4096 });
    const buffer = new Uint8Array(100).fill(0xee);
    assert.equal(channel.tryReceiveInto(buffer), undefined); // empty
    channel.sendSync(pattern(100, 3));
    assert.equal(channel.tryReceiveInto(buffer), 100);
    assert.deepEqual(buffer, pattern(100, 3));
    channel.sendSync(new Uint8Array(0));
    assert.equal(channel.tryReceiveInto(new Uint8Array(0)), 0);
    channel.sendSync(pattern(10, 4));
    buffer.fill(0xee);
    assert.equal(channel.tryReceiveInto(buffer), 10);
    assert.deepEqual(buffer.subarray(0, 10), pattern(10, 4));
    assert.equal(buffer[10], 0xee); // nothing written past the message
    assert.equal(channel.tryReceive(), undefined);
  },
);

ipcTest("receiveInto with a buffer too small is a RangeError, and the message stays", async () => {
  using channel = Channel.create({ capacity: 4096 });
  channel.sendSync(pattern(101, 5));
  channel.sendSync(pattern(7, 6));
  const small = new Uint8Array(100);
  const error = thrown(() => channel.tryReceiveInto(small));
  assert.ok(error instanceof RangeError, String(error));
  assert.match(error.message, /buffer of 100 bytes: the next message has 101/);
  assert.ok(thrown(() => channel.receiveIntoSync(small)) instanceof RangeError);
  await assert.rejects(channel.receiveInto(small), RangeError);
  const large = new Uint8Array(200);
  assert.equal(await channel.receiveInto(large), 101);
  assert.deepEqual(large.subarray(0, 101), pattern(101, 5));
  assert.deepEqual(channel.tryReceive(), pattern(7, 6)); // the order holds
});

ipcTest("receiveInto rejects with a RangeError for a message that arrives too large", async () => {
  using channel = Channel.create({ capacity: 4096 });
  const pending = channel.receiveInto(new Uint8Array(8), { timeout: 5000 });
  setTimeout(() => channel.sendSync(pattern(9, 1)), 20);
  await assert.rejects(pending, RangeError);
  assert.deepEqual(channel.tryReceive(), pattern(9, 1));
});

ipcTest(
  "receiveInto refuses a buffer transferred away, not a Uint8Array, the ring, bad options",
  async () => {
    using channel = Channel.create({ capacity: 4096 });
    channel.sendSync(pattern(4, 1));
    const transferred = new Uint8Array(64);
    void transferred.buffer.transfer();
    const error = thrown(() => channel.tryReceiveInto(transferred));
    assert.ok(error instanceof TypeError && /detached/.test(error.message), String(error));
    assert.ok(thrown(() => channel.receiveIntoSync(transferred)) instanceof TypeError);
    for (const bad of [null, undefined, 42, "text", new Uint16Array(8), new ArrayBuffer(8)]) {
      const error = thrown(() => channel.tryReceiveInto(bad as unknown as Uint8Array));
      assert.ok(
        error instanceof TypeError && /must be a Uint8Array/.test(error.message),
        String(bad),
      );
    }
    // Bad options are refused before anything is received, though a message is waiting.
    for (
      const [bad, kind] of [[null, TypeError], [5, TypeError], [
        { timeout: -1 },
        RangeError,
      ]] as const
    ) {
      const buffer = new Uint8Array(8);
      assert.ok(thrown(() => channel.receiveIntoSync(buffer, bad as never)) instanceof kind);
      await assert.rejects(channel.receiveInto(buffer, bad as never), kind);
    }
    await assert.rejects(
      channel.receiveInto(new Uint8Array(8), { signal: "abort" as never }),
      TypeError,
    );
    channel.sendSync(pattern(4, 2));
    const view = channel.tryReceive({ view: true })!; // a view into the ring itself
    assert.ok(thrown(() => channel.tryReceiveInto(view)) instanceof TypeError);
    assert.deepEqual(channel.tryReceive(), pattern(4, 2)); // both messages still there
    assert.equal(channel.tryReceive(), undefined);
  },
);

ipcTest("receiveInto on a closed channel throws BadResource", async () => {
  const channel = Channel.create({ capacity: 4096 });
  channel.sendSync(pattern(4, 1));
  channel.close();
  const buffer = new Uint8Array(16);
  assert.ok(thrown(() => channel.tryReceiveInto(buffer)) instanceof Deno.errors.BadResource);
  assert.ok(thrown(() => channel.receiveIntoSync(buffer)) instanceof Deno.errors.BadResource);
  await assert.rejects(channel.receiveInto(buffer), Deno.errors.BadResource);
});

ipcTest(
  "receiveInto waits for a message, honours timeout and signal, and ends at EOF",
  async () => {
    using receiver = Channel.create({ capacity: 4096, role: "receive" });
    const sender = Channel.fromFd(receiver, { role: "send" });
    const buffer = new Uint8Array(64);
    await assert.rejects(receiver.receiveInto(buffer, { timeout: 30 }), Deno.errors.TimedOut);
    assert.throws(() => receiver.receiveIntoSync(buffer, { timeout: 30 }), Deno.errors.TimedOut);
    const aborted = receiver.receiveInto(buffer, { signal: AbortSignal.timeout(30) });
    await assert.rejects(aborted, (error: Error) => error.name === "TimeoutError");
    setTimeout(() => sender.sendSync(pattern(3, 9)), 20);
    assert.equal(await receiver.receiveInto(buffer, { timeout: 5000 }), 3);
    assert.deepEqual(buffer.subarray(0, 3), pattern(3, 9));
    sender.sendSync(pattern(2, 1));
    sender.close();
    assert.equal(await receiver.receiveInto(buffer), 2); // sent before the close
    await assert.rejects(
      receiver.receiveInto(buffer, { timeout: 5000 }),
      Deno.errors.UnexpectedEof,
    );
    assert.throws(() => receiver.receiveIntoSync(buffer), Deno.errors.UnexpectedEof);
  },
);

ipcTest("receiveInto works in the multi mode, where receivers share the ring", () => {
  using channel = Channel.create({ capacity: 4096, multi: true });
  using other = Channel.fromFd(channel);
  channel.sendSync(pattern(10, 1));
  channel.sendSync(pattern(20, 2));
  const buffer = new Uint8Array(32);
  assert.equal(other.tryReceiveInto(buffer), 10);
  assert.ok(thrown(() => channel.tryReceiveInto(buffer.subarray(0, 5))) instanceof RangeError);
  assert.equal(channel.receiveIntoSync(buffer, { timeout: 1000 }), 20);
  assert.deepEqual(buffer.subarray(0, 20), pattern(20, 2));
});

ipcTest(
  "for await hands out a waiting message in one resolved promise, no generator hops",
  async () => {
    using channel = Channel.create({ capacity: 4096 });
    channel.sendSync(pattern(3, 1));
    const iterator = channel[Symbol.asyncIterator]();
    let got: IteratorResult<Uint8Array> | undefined;
    void iterator.next().then((result) => got = result);
    await Promise.resolve(); // one turn of the microtask queue
    assert.deepEqual(got, { value: pattern(3, 1), done: false });
    await iterator.return?.();
    assert.deepEqual(await iterator.next(), { value: undefined, done: true });
  },
);

ipcTest("for await: next() calls made while waiting get the messages in order", async () => {
  using channel = Channel.create({ capacity: 4096 });
  const iterator = channel[Symbol.asyncIterator]();
  const first = iterator.next();
  const second = iterator.next();
  setTimeout(() => {
    channel.sendSync(pattern(2, 1));
    channel.sendSync(pattern(2, 2));
  }, 20);
  assert.deepEqual(await first, { value: pattern(2, 1), done: false });
  assert.deepEqual(await second, { value: pattern(2, 2), done: false });
  await iterator.return?.();
});

ipcTest(
  "for await ends at the end of the stream and on close, and throws other errors once",
  async () => {
    using receiver = Channel.create({ capacity: 4096, role: "receive" });
    const sender = Channel.fromFd(receiver, { role: "send" });
    sender.sendSync(pattern(1, 1));
    sender.sendSync(pattern(1, 2));
    sender.close();
    const values: Uint8Array[] = [];
    for await (const value of receiver) values.push(value);
    assert.deepEqual(values, [pattern(1, 1), pattern(1, 2)]);

    const closing = Channel.create({ capacity: 4096 });
    const pending = closing[Symbol.asyncIterator]().next();
    setTimeout(() => closing.close(), 20);
    assert.deepEqual(await pending, { value: undefined, done: true });

    const failing: Codec<number> = {
      name: "fails-on-0",
      encode: (value) => new Uint8Array([value]),
      decode: (bytes) => {
        if (bytes[0] === 0) throw new Error("zero");
        return bytes[0]!;
      },
    };
    using channel = Channel.create({ capacity: 4096, codec: failing });
    channel.sendSync(1);
    channel.sendSync(0);
    channel.sendSync(2);
    const iterator = channel[Symbol.asyncIterator]();
    assert.deepEqual(await iterator.next(), { value: 1, done: false });
    await assert.rejects(iterator.next(), Deno.errors.InvalidData);
    assert.deepEqual(await iterator.next(), { value: undefined, done: true }); // as a generator
    assert.equal(channel.tryReceive(), 2); // the channel itself goes on
  },
);

ipcTest(
  "for await over something that is no channel rejects with a TypeError, never throws",
  async () => {
    const iterator = Channel.prototype[Symbol.asyncIterator].call({} as Channel);
    let promise: Promise<unknown> | undefined;
    assert.doesNotThrow(() => promise = iterator.next());
    await assert.rejects(promise!, TypeError);
  },
);

ipcTest("a closed handle keeps no slab alive; a copy it handed out keeps its own", async () => {
  const flags = ["--allow-ffi", "--v8-flags=--expose-gc"];
  const script = fixture("channel_slab_gc.ts");
  const dropped = await runDeno(script, [], { flags, timeout: 30_000 });
  assert.equal(dropped.code, 0, dropped.stderr);
  assert.equal(dropped.stdout.trim(), "freed true -");
  const held = await runDeno(script, ["hold"], { flags, timeout: 30_000 });
  assert.equal(held.code, 0, held.stderr);
  assert.equal(held.stdout.trim(), "held true 7");
});
