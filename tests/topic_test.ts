import assert from "node:assert/strict";
import { Channel, type Codec, codecs, SharedMemory, Topic } from "../mod.ts";
import { C_OLDEST, C_TAIL, HEADER } from "../src/topic/layout.ts";
import { isWholeFrame } from "./fixtures/flood_frame.ts";
import { fixture, ipcTest, type ReadyChild, runDeno, spawnReady, uniqueName } from "./helpers.ts";

const peer = fixture("topic_peer.ts");
type Message = { p: number; i: number };
const json = codecs.json as Codec<Message>;

function start(args: string[], stdin = false): Promise<ReadyChild> {
  return spawnReady(peer, args, { flags: ["--allow-ffi"], stdin: stdin ? "" : undefined });
}

/** The summary a `subscribe` child prints: received count and per publisher [first, last, n]. */
async function summary(child: ReadyChild): Promise<[number, Record<string, number[]>]> {
  const { stdout, stderr, status } = await child.finish();
  assert.equal(status.code, 0, stderr);
  const [count, json] = stdout.trim().split("\n");
  return [Number(count!.replace("received ", "")), JSON.parse(json!)];
}

ipcTest(
  "1 publisher -> 4 subscriber processes: each receives every message, in order",
  async () => {
    const name = uniqueName("topic-fan");
    const topic = Topic.create({
      name,
      codec: codecs.json,
      capacity: 1 << 16, // small: the publisher waits for the slowest and the ring wraps
      role: "publish",
    });
    const children = await Promise.all([0, 1, 2, 3].map(() => start(["subscribe", name])));
    const count = 50_000; // 25 laps of the ring: a frame written over too early shows as a gap
    for (let i = 0; i < count; i++) await topic.publish({ p: 0, i }, { timeout: 20_000 });
    topic.close(); // the end of the stream, after every message
    for (const child of children) {
      assert.deepEqual(await summary(child), [count, { 0: [0, count - 1, count] }]);
    }
  },
);

ipcTest(
  "several publisher processes: every subscriber gets each one's messages in order",
  async () => {
    const name = uniqueName("topic-many");
    using topic = Topic.create({ name, codec: json, capacity: 1 << 14 });
    using subscription = topic.subscribe();
    const subscriber = await start(["subscribe", name]);
    const count = 3000;
    const publishers = [1, 2, 3].map((p) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-ffi", peer, "publish", name, String(p), String(count)],
        stdout: "null",
      }).output()
    );
    const seen = new Map<number, number>();
    for (let received = 0; received < 3 * count; received++) {
      const { p, i } = await subscription.receive({ timeout: 20_000 });
      assert.equal(i, (seen.get(p) ?? -1) + 1, `publisher ${p}`);
      seen.set(p, i);
    }
    for (const output of await Promise.all(publishers)) assert.equal(output.code, 0);
    topic.close();
    const [total, each] = await summary(subscriber);
    assert.equal(total, 3 * count);
    for (const p of [1, 2, 3]) assert.deepEqual(each[p], [0, count - 1, count]);
  },
);

ipcTest(
  "a late subscriber first gets the last `history` messages, as far as the ring holds them",
  () => {
    using topic = Topic.create({ codec: codecs.json, history: 3 });
    for (let i = 0; i < 5; i++) topic.publishSync(i);
    using late = topic.subscribe();
    topic.publishSync(5);
    assert.deepEqual([late.tryReceive(), late.tryReceive(), late.tryReceive()], [2, 3, 4]);
    assert.deepEqual([late.tryReceive(), late.tryReceive()], [5, undefined]);

    using small = Topic.create({ capacity: 4096, history: 255, slow: "drop" });
    for (let i = 0; i < 100; i++) small.publishSync(new Uint8Array(100).fill(i));
    using bounded = small.subscribe();
    const got: number[] = [];
    for (let value = bounded.tryReceive(); value; value = bounded.tryReceive()) got.push(value[0]!);
    assert.equal(got.length, 36); // 36 frames of 112 bytes fit in 4096
    assert.deepEqual([got[0], got.at(-1), bounded.missed], [64, 99, 0]);

    using none = Topic.create({ codec: codecs.json });
    none.publishSync(1);
    using fresh = none.subscribe();
    assert.equal(fresh.tryReceive(), undefined); // history 0 by default
  },
);

ipcTest('a SIGKILLed subscriber does not block a "block" topic', async () => {
  const name = uniqueName("topic-stall");
  using topic = Topic.create({ name, codec: codecs.json, capacity: 4096, role: "publish" });
  const stalled = await start(["stall", name]);
  let published = 0;
  while (topic.tryPublish({ i: published })) published++;
  assert.ok(published > 10 && published < 4096 / 16, `${published} fit`); // it held the ring
  await stalled.kill();
  for (let i = 0; i < 1000; i++) await topic.publish({ i }, { timeout: 5000 }); // TimedOut if held
});

ipcTest(
  'a SIGKILLed subscriber not yet reaped (a zombie) does not block a "block" topic',
  async () => {
    const name = uniqueName("topic-zombie");
    using topic = Topic.create({ name, codec: codecs.json, capacity: 4096, role: "publish" });
    const stalled = await start(["stall", name]);
    while (topic.tryPublish({})) {
      // fill the ring: the stalled subscriber holds it
    }
    const [status] = [stalled.process.status]; // not awaited before the publishes: a zombie
    stalled.process.kill("SIGKILL");
    for (let i = 0; i < 1000; i++) await topic.publish({ i }, { timeout: 5000 }); // TimedOut if held
    assert.equal((await status).signal, "SIGKILL");
    await stalled.kill();
  },
);

ipcTest(
  'a "drop" topic: a stalled subscriber misses the overwritten messages, counted exactly',
  async () => {
    using topic = Topic.create({ capacity: 4096, slow: "drop" });
    using subscription = topic.subscribe();
    for (let i = 0; i < 100; i++) assert.ok(topic.tryPublish(new Uint8Array(100).fill(i)));
    assert.equal(subscription.tryReceive()![0], 64);
    assert.equal(subscription.missed, 64);
    for (let i = 65; i < 100; i++) assert.equal(subscription.tryReceive()![0], i);
    assert.equal(subscription.tryReceive(), undefined);
    topic.publishSync(new Uint8Array(8));
    assert.equal(subscription.tryReceive()!.length, 8);
    assert.equal(subscription.missed, 64);

    const name = uniqueName("topic-drop");
    using named = Topic.create({
      name,
      codec: codecs.json,
      capacity: 4096,
      slow: "drop",
      role: "publish",
    });
    const child = await start(["drop", name], true);
    const count = 1000;
    for (let i = 0; i < count; i++) await named.publish({ p: 0, i });
    const writer = child.process.stdin.getWriter();
    await writer.write(new TextEncoder().encode("go\n"));
    await writer.close();
    named.close();
    const { stdout, stderr, status } = await child.finish();
    assert.equal(status.code, 0, stderr);
    const [, received, , missed, , last] = stdout.trim().split(" ").map(Number);
    assert.ok(missed! > 0 && received! > 0, stdout);
    assert.equal(received! + missed!, count);
    assert.equal(last, count - 1);
  },
);

ipcTest(
  'a "drop" topic never hands out a torn frame while a publisher in another process writes over it',
  async () => {
    const name = uniqueName("topic-torn");
    using topic = Topic.create({ name, capacity: 4096, slow: "drop", role: "subscribe" });
    using subscription = topic.subscribe();
    const flood = await start(["flood", name, "1500"]);
    let received = 0;
    let torn = 0;
    const until = performance.now() + 700;
    while (performance.now() < until) {
      const frame = subscription.tryReceive(); // a tight loop: copies race the publisher
      if (frame === undefined) continue;
      received++;
      if (!isWholeFrame(frame)) torn++;
    }
    await flood.kill();
    assert.equal(torn, 0, `${torn} torn frames of ${received}`);
    // The race was run: many frames read, and many written over before they were read.
    assert.ok(received > 1000 && subscription.missed > 1000, `${received} ${subscription.missed}`);
  },
);

ipcTest(
  "a publisher killed mid-publish, holding the lock, wedges nothing and publishes nothing",
  async () => {
    const name = uniqueName("topic-die");
    using topic = Topic.create({ name, codec: codecs.json });
    using subscription = topic.subscribe();
    topic.publishSync("before");
    const dying = await start(["die-mid-publish", name]);
    await dying.kill();
    topic.publishSync("after", { timeout: 5000 });
    assert.deepEqual([subscription.tryReceive(), subscription.tryReceive()], ["before", "after"]);
    assert.equal(subscription.tryReceive(), undefined);
  },
);

ipcTest(
  "a subscriber whose only publisher died gets BrokenPipe; one that closed, the end",
  async () => {
    const name = uniqueName("topic-dead");
    using topic = Topic.create({ name, codec: codecs.json, role: "subscribe" });
    using subscription = topic.subscribe();
    const dying = await start(["die-mid-publish", name]);
    await dying.kill();
    await assert.rejects(subscription.receive({ timeout: 5000 }), Deno.errors.BrokenPipe);

    using other = Topic.create({ codec: codecs.json, role: "subscribe" });
    using reader = other.subscribe();
    const publisher = Topic.fromFd(other, { codec: codecs.json, role: "publish" });
    publisher.publishSync(1);
    publisher.close();
    const values = [];
    for await (const value of reader) values.push(value);
    assert.deepEqual(values, [1]);
    await assert.rejects(reader.receive(), Deno.errors.UnexpectedEof);
  },
);

ipcTest("a bad header is InvalidData, never a crash", () => {
  using empty = SharedMemory.anonymous({ size: 8192 });
  assert.throws(() => Topic.fromFd(empty), Deno.errors.InvalidData);
  using channel = Channel.create({ capacity: 4096 });
  assert.throws(() => Topic.fromFd(channel), Deno.errors.InvalidData);

  using small = Topic.create({ capacity: 4096 });
  using memory = SharedMemory.fromFd(small);
  const cells = new Int32Array(memory.buffer, 0, HEADER / 4);
  cells[2] = 1 << 20; // a capacity larger than the segment
  assert.throws(() => Topic.fromFd(memory), /cannot hold/);
  cells[2] = 4096;
  cells[3] = 7; // no such policy
  assert.throws(() => Topic.fromFd(memory), Deno.errors.InvalidData);
  cells[3] = 0;
  assert.throws(() => Topic.fromFd(memory, { codec: codecs.json }), TypeError);

  using subscription = small.subscribe();
  small.publishSync(new Uint8Array(10));
  new Uint32Array(memory.buffer, HEADER, 1)[0] = 100_000; // the frame's length
  assert.throws(() => subscription.tryReceive(), Deno.errors.InvalidData);
  Atomics.store(cells, C_OLDEST, Atomics.load(cells, C_TAIL) + 8192); // more used than the ring
  assert.throws(() => small.subscribe(), Deno.errors.InvalidData);
  assert.throws(() => small.publishSync(new Uint8Array(4000)), Deno.errors.InvalidData);
});

ipcTest(
  "closed handles throw BadResource; closing twice is harmless; close ends pending waits",
  async () => {
    const topic = Topic.create();
    const subscription = topic.subscribe();
    const pending = subscription.receive();
    const iteration = (async () => {
      for await (const _ of topic.subscribe()) throw new Error("no message was published");
    })();
    topic.close();
    topic.close();
    await assert.rejects(pending, Deno.errors.BadResource);
    await iteration; // ends quietly
    assert.throws(() => topic.tryPublish(new Uint8Array(1)), Deno.errors.BadResource);
    assert.throws(() => topic.subscribe(), Deno.errors.BadResource);
    assert.throws(() => subscription.tryReceive(), Deno.errors.BadResource);
    assert.throws(() => topic.fd, Deno.errors.BadResource);
    subscription.close();
    assert.ok(subscription.closed && topic.closed);
  },
);

ipcTest("a closed subscription frees its slot; 32 handles and subscriptions at most", () => {
  using topic = Topic.create();
  const subscriptions = Array.from({ length: 31 }, () => topic.subscribe());
  assert.throws(
    () => topic.subscribe(),
    (error: unknown) =>
      error instanceof RangeError &&
      error.message.includes("Cannot open the topic: it has 32 handles open already"),
  );
  subscriptions.pop()!.close();
  subscriptions.push(topic.subscribe());
  for (const subscription of subscriptions) subscription.close();
});

ipcTest('a closed subscription no longer holds a "block" publisher back', () => {
  using topic = Topic.create({ capacity: 4096 });
  const subscription = topic.subscribe();
  assert.ok(topic.tryPublish(new Uint8Array(4000)));
  assert.equal(topic.tryPublish(new Uint8Array(100)), false);
  subscription.close();
  assert.ok(topic.tryPublish(new Uint8Array(100)));
});

ipcTest("receive and publish take a timeout and an abort signal", async () => {
  using topic = Topic.create({ capacity: 4096 });
  using subscription = topic.subscribe();
  await assert.rejects(subscription.receive({ timeout: 20 }), Deno.errors.TimedOut);
  assert.throws(() => subscription.receiveSync({ timeout: 20 }), Deno.errors.TimedOut);
  const controller = new AbortController();
  const aborted = subscription.receive({ signal: controller.signal });
  setTimeout(() => controller.abort(new Error("stop")), 10);
  await assert.rejects(aborted, /stop/);
  topic.publishSync(new Uint8Array(4000));
  await assert.rejects(topic.publish(new Uint8Array(100), { timeout: 20 }), Deno.errors.TimedOut);
  assert.throws(
    () => topic.publishSync(new Uint8Array(100), { timeout: 20 }),
    Deno.errors.TimedOut,
  );
  const later = topic.publish(new Uint8Array(100), { timeout: 5000 });
  setTimeout(() => subscription.tryReceive(), 10);
  await later;
});

ipcTest("bad options are TypeErrors and RangeErrors before anything is created", () => {
  assert.throws(() => Topic.create({ capacity: 1000 }), RangeError);
  assert.throws(() => Topic.create({ history: 256 }), RangeError);
  assert.throws(() => Topic.create({ history: -1 }), RangeError);
  assert.throws(() => Topic.create({ slow: "fast" as "drop" }), TypeError);
  assert.throws(() => Topic.create({ role: "toString" as "both" }), TypeError);
  assert.throws(() => Topic.create(null as unknown as undefined), TypeError);
  assert.throws(() => Topic.create({ persist: "yes" as unknown as boolean }), TypeError);
  const inherited = Object.create({ capacity: 1000, slow: "nope" });
  Topic.create(inherited).close(); // prototype keys are not options
  assert.throws(() => new (Topic as unknown as new () => unknown)(), TypeError);
  using publisher = Topic.create({ role: "publish" });
  assert.throws(() => publisher.subscribe(), TypeError);
  using subscriber = Topic.create({ role: "subscribe" });
  assert.throws(() => subscriber.tryPublish(new Uint8Array(1)), TypeError);
  assert.throws(() => subscriber.tryPublish(new Uint8Array(1 << 20)), TypeError);
  using small = Topic.create({ capacity: 4096 });
  assert.throws(() => small.tryPublish(new Uint8Array(4090)), RangeError);
});

ipcTest(
  "topics and subscriptions dropped without close() give back their slots, mappings, fds and names to the garbage collector",
  async () => {
    const prefix = uniqueName("topic-gc");
    const output = await runDeno(fixture("topic_gc.ts"), [prefix], {
      flags: ["--allow-all", "--v8-flags=--expose-gc"],
      timeout: 60_000,
    });
    assert.equal(output.code, 0, `exit ${output.code} (${output.signal}): ${output.stderr}`);
    const result = JSON.parse(output.stdout);
    assert.deepEqual(result.dropped, { maps: 300, fds: 100, names: 50 }, output.stdout);
    assert.deepEqual(result.collected, { maps: 0, fds: 0, names: 0 }, output.stdout);
    assert.equal(result.freeSlots, 31, `the dropped subscriptions' slots: ${output.stdout}`);
  },
);

ipcTest(
  "a codec that makes something other than a Uint8Array is a TypeError; nothing is published",
  async () => {
    const text = { name: "not-bytes", encode: () => "abc", decode: (bytes: Uint8Array) => bytes };
    using topic = Topic.create({ codec: text as unknown as Codec<unknown> });
    using subscription = topic.subscribe();
    assert.throws(() => topic.tryPublish(1), TypeError);
    await assert.rejects(topic.publish(1), TypeError);
    assert.equal(subscription.tryReceive(), undefined);
  },
);
