import assert from "node:assert/strict";
import { Channel, type Codec, codecs, SharedMemory, spawnDeno } from "../mod.ts";
import { fixture, ipcTest, runDeno, thrown, uniqueName } from "./helpers.ts";
import { checksum, sizes } from "./fixtures/channel_message.ts";

const child = fixture("channel_child.ts");

ipcTest(
  "a child streams 1,000,000 messages of 1 B to 64 KiB: each arrives once, in order, intact",
  async () => {
    using channel = Channel.create({ capacity: 1 << 20, role: "receive" });
    const count = 1_000_000;
    await using sender = spawnDeno(child, {
      args: ["stream", String(count), "42"],
      permissions: { ffi: true },
      fds: { 3: channel },
    });
    const next = sizes(42);
    let seq = 0;
    for await (const bytes of channel) {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      if (view.getUint32(0, true) !== seq || bytes.length !== 8 + next()) {
        assert.fail(`message ${seq}: got seq ${view.getUint32(0, true)}, ${bytes.length} bytes`);
      }
      if (checksum(bytes.subarray(8)) !== view.getUint32(4, true)) {
        assert.fail(
          `message ${seq} corrupt`,
        );
      }
      seq++;
    }
    assert.equal(seq, count, "every message, then the end when the sender closed");
    assert.ok((await sender.status).success);
  },
);

ipcTest(
  "3 sender processes and 2 receiver processes: every message arrives exactly once",
  async () => {
    // The parent holds a sending handle until the senders are done, so that the receivers do not
    // see the channel end before the senders even attached.
    using channel = Channel.create({
      capacity: 1 << 16,
      codec: codecs.json,
      multi: true,
      role: "send",
    });
    const perSender = 20_000;
    const options = { permissions: { ffi: true }, fds: { 3: channel } } as const;
    const receivers = [0, 1].map(() =>
      spawnDeno(child, { ...options, args: ["receive"], stdout: "piped" })
    );
    const senders = [0, 1, 2].map((id) =>
      spawnDeno(child, { ...options, args: ["send", String(perSender), String(id)] })
    );
    channel.close(); // the parent takes no part: the children hold their own handles
    for (const sender of senders) assert.ok((await sender.status).success);
    const seen = new Map<string, number>();
    for (const receiver of receivers) {
      const { status, stdout } = await receiver.output();
      assert.ok(status.success);
      for (const { id, i } of JSON.parse(new TextDecoder().decode(stdout))) {
        seen.set(`${id}:${i}`, (seen.get(`${id}:${i}`) ?? 0) + 1);
      }
    }
    assert.equal(seen.size, 3 * perSender);
    assert.ok([...seen.values()].every((times) => times === 1), "no duplicates");
  },
);

ipcTest(
  "back-pressure: a full ring makes trySend false, and a slow receiver loses nothing",
  async () => {
    using channel = Channel.create({ capacity: 4096 });
    assert.ok(channel.trySend(new Uint8Array(4000)));
    assert.equal(channel.trySend(new Uint8Array(100)), false);
    assert.equal(channel.tryReceive()?.length, 4000);

    using ring = Channel.create({ capacity: 1 << 17, role: "receive" }); // 128 KiB: 2 messages at most
    const count = 20_000;
    await using sender = spawnDeno(child, {
      args: ["stream", String(count), "7"],
      permissions: { ffi: true },
      fds: { 3: ring },
    });
    let received = 0;
    for await (const bytes of ring) {
      assert.equal(new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true), received);
      if (++received % 2000 === 0) await new Promise((resolve) => setTimeout(resolve, 5)); // slow
    }
    assert.equal(received, count);
    assert.ok((await sender.status).success);
  },
);

ipcTest(
  "peer death: kill -9 the sender while the receiver waits: BrokenPipe within a second",
  async () => {
    using channel = Channel.create({ capacity: 4096, role: "receive" });
    await using sender = spawnDeno(child, {
      args: ["hang"],
      permissions: { ffi: true },
      fds: { 3: channel },
      stdout: "piped",
    });
    const reader = sender.stdout!.readable.pipeThrough(new TextDecoderStream()).getReader();
    assert.equal((await reader.read()).value?.trim(), "ready");
    const waiting = channel.receive();
    await new Promise((resolve) => setTimeout(resolve, 150)); // the receiver is asleep now
    sender.kill("SIGKILL");
    const killed = performance.now();
    await assert.rejects(waiting, Deno.errors.BrokenPipe);
    assert.ok(performance.now() - killed < 1000, `noticed after ${performance.now() - killed} ms`);
    await sender.status;
    await reader.cancel();
  },
);

ipcTest("close() ends the peer's iteration after the messages already sent", async () => {
  const name = uniqueName("channel");
  using receiver = Channel.create({ name, codec: codecs.text, role: "receive" });
  const sender = Channel.open(name, { codec: codecs.text, role: "send" });
  for (const word of ["one", "two", "three"]) sender.sendSync(word);
  sender.close();
  const received: string[] = [];
  for await (const word of receiver) received.push(word);
  assert.deepEqual(received, ["one", "two", "three"]);
  await assert.rejects(receiver.receive(), Deno.errors.UnexpectedEof);
  assert.throws(() => receiver.receiveSync(), Deno.errors.UnexpectedEof);
});

ipcTest("every codec round-trips its values", async () => {
  const cycle: Record<string, unknown> = { name: "cycle" };
  cycle.self = cycle;
  const cases: [Codec<unknown>, unknown[]][] = [
    [codecs.bytes as Codec<unknown>, [new Uint8Array([0, 1, 255]), new Uint8Array(0)]],
    [codecs.text as Codec<unknown>, ["", "plain", "ünïcødé ✓ 🦕"]],
    [codecs.json, [null, 0, "s", [1, { a: [true, false] }], { nested: { deep: 1.5 } }]],
    [codecs.structured, [
      new Map([["k", new Set([1])]]),
      new Date(0),
      new Float64Array([1.5]),
      10n,
      cycle,
    ]],
  ];
  for (const [codec, values] of cases) {
    using channel = Channel.create({ capacity: 4096, codec });
    for (const value of values) {
      await channel.send(value);
      assert.deepEqual(await channel.receive(), value, `${codec.name}: ${String(value)}`);
    }
  }
});

ipcTest("zero-copy receive: a view into the ring, released by the next receive", () => {
  using channel = Channel.create({ capacity: 4096 });
  channel.sendSync(new Uint8Array(2000).fill(1));
  channel.sendSync(new Uint8Array(1000).fill(2));
  const view = channel.tryReceive({ view: true })!;
  assert.equal(view.length, 2000);
  assert.equal(
    channel.trySend(new Uint8Array(2000)),
    false,
    "the viewed message still holds its room",
  );
  assert.equal(channel.tryReceive()![0], 2);
  assert.ok(channel.trySend(new Uint8Array(2000)), "released by the next receive");
});

ipcTest(
  "bad input: capacity, message size, codec mismatch, wrong codec data, roles, closed",
  async () => {
    for (const capacity of [0, 1000, 4095, 6000, 2 ** 31]) {
      assert.throws(() => Channel.create({ capacity }), /power of two from 4096 to 1 GiB/);
    }
    using channel = Channel.create({ capacity: 4096 });
    assert.throws(
      () => channel.trySend(new Uint8Array(4089)),
      /message of 4089 bytes: the channel's ring holds 4096 \(4088/,
    );
    assert.throws(() => channel.trySend("text" as unknown as Uint8Array), TypeError);
    assert.throws(() => Channel.fromFd(channel, { codec: codecs.json }), /created with bytes/);
    const notJson: Codec<string> = {
      name: "json",
      encode: (text) => new TextEncoder().encode(text),
      decode: String,
    };
    using liar = Channel.create({ capacity: 4096, codec: notJson });
    liar.sendSync("{not json");
    using reader = Channel.fromFd(liar, { codec: codecs.json });
    assert.throws(
      () => reader.tryReceive(),
      (error: unknown) =>
        error instanceof Deno.errors.InvalidData && /json codec/.test(String(error)),
    );
    using sendOnly = Channel.fromFd(channel, { role: "send" });
    assert.throws(() => sendOnly.tryReceive(), /send only/);
    assert.throws(
      () => Channel.fromFd(channel, { role: "both-ways" as "both" }),
      /role "both-ways"/,
    );
    const closed = Channel.create({ capacity: 4096 });
    closed.close();
    closed.close();
    assert.throws(() => closed.trySend(new Uint8Array(1)), Deno.errors.BadResource);
    await assert.rejects(closed.receive(), Deno.errors.BadResource);
    const error = thrown(() => closed.fd);
    assert.ok(error instanceof Deno.errors.BadResource);
  },
);

ipcTest("waits end promptly on timeout, abort and close", async () => {
  using channel = Channel.create({ capacity: 4096 });
  let started = performance.now();
  await assert.rejects(channel.receive({ timeout: 100 }), Deno.errors.TimedOut);
  assert.ok(performance.now() - started < 1000);
  started = performance.now();
  await assert.rejects(channel.receive({ signal: AbortSignal.timeout(50) }), DOMException);
  assert.ok(performance.now() - started < 1000);
  channel.sendSync(new Uint8Array(4000));
  assert.throws(
    () => channel.sendSync(new Uint8Array(1000), { timeout: 50 }),
    Deno.errors.TimedOut,
  );
  const pending = channel.send(new Uint8Array(1000));
  setTimeout(() => channel.close(), 30);
  started = performance.now();
  await assert.rejects(pending, Deno.errors.BadResource);
  assert.ok(performance.now() - started < 1000);
});

ipcTest("close() removes the creator's name at once, even while a receive is pending", async () => {
  const name = uniqueName("channel-pending");
  const channel = Channel.create({ name, capacity: 4096, role: "receive" });
  const pending = channel.receive().catch((error) => error);
  await new Promise((resolve) => setTimeout(resolve, 20)); // the receive is asleep now
  channel.close();
  assert.throws(() => Channel.open(name), Deno.errors.NotFound);
  assert.ok((await pending) instanceof Deno.errors.BadResource);
});

ipcTest(
  "200 channels dropped without close() give back their mappings, fds and names to the garbage collector; a transferred view stays safe",
  async () => {
    const prefix = uniqueName("channel-gc");
    const output = await runDeno(fixture("channel_gc.ts"), [prefix], {
      flags: ["--allow-all", "--v8-flags=--expose-gc"],
      timeout: 60_000,
    });
    assert.equal(output.code, 0, `exit ${output.code} (${output.signal}): ${output.stderr}`);
    const result = JSON.parse(output.stdout);
    assert.ok(result.dropped.maps >= 400, `the channels were mapped: ${output.stdout}`);
    assert.ok(result.collected.maps < 10, `mappings given back: ${output.stdout}`);
    assert.equal(result.collected.fds, 0, `descriptors given back: ${output.stdout}`);
    assert.equal(result.collected.names, 0, `owned names removed: ${output.stdout}`);
    assert.equal(result.escapedFds, 0, `the escaped channel's descriptor too: ${output.stdout}`);
    assert.equal(result.heldBefore, 4096 * 3, "the transferred buffer held the ring");
    assert.equal(result.touched, 0, "it reads zeros after, never a hole");
  },
);

ipcTest("option values are looked up as own values: prototype keys are no roles", () => {
  using channel = Channel.create({ capacity: 4096 });
  for (const role of ["toString", "__proto__", "constructor", "valueOf", "hasOwnProperty"]) {
    for (
      const make of [
        () => Channel.create({ capacity: 4096, role: role as "both" }),
        () => Channel.fromFd(channel, { role: role as "both" }),
      ]
    ) {
      assert.throws(
        make,
        (error: unknown) => error instanceof TypeError && error.message.includes(`role "${role}"`),
      );
    }
  }
  for (const role of [1, false, Symbol("send"), { toString: () => "send" }]) {
    assert.throws(
      () => Channel.create({ capacity: 4096, role: role as unknown as "both" }),
      /Cannot use channel role of type/,
    );
  }
  for (const multi of ["yes", 1, {}]) {
    assert.throws(
      () => Channel.create({ capacity: 4096, multi: multi as unknown as boolean }),
      /multi must be true or false/,
    );
  }
});

ipcTest("codecs are checked before anything is made, and told apart by their whole name", () => {
  const named = (name: string): Codec<Uint8Array> => ({ ...codecs.bytes, name });
  for (const codec of [false, {}, { name: "x", encode: () => new Uint8Array() }, "json"]) {
    assert.throws(
      () => Channel.create({ capacity: 4096, codec: codec as unknown as Codec<Uint8Array> }),
      /give an object with a name and encode and decode functions/,
    );
  }
  for (const name of ["", "a\0b", "x".repeat(32), "é".repeat(16)]) {
    assert.throws(() => Channel.create({ capacity: 4096, codec: named(name) }), RangeError);
  }
  const long = "v".repeat(30);
  using channel = Channel.create({ capacity: 4096, codec: named(`${long}1`) });
  assert.throws(
    () => Channel.fromFd(channel, { codec: named(`${long}2`) }),
    /it was created with v+1/,
    "names that share their first 30 characters are two codecs",
  );
  using same = Channel.fromFd(channel, { codec: named(`${long}1`) });
  assert.equal(same.capacity, 4096);
});

ipcTest("a header or frame that lies about sizes is refused, never trusted", () => {
  // A segment whose header claims a ring larger than the segment: mapping it would let a
  // receive touch pages past its end (SIGBUS).
  using channel = Channel.create({ capacity: 4096 });
  using memory = SharedMemory.fromFd(channel); // a duplicate of its descriptor
  const header = new Int32Array(memory.buffer, 0, 16);
  header[2] = 1 << 20; // C_CAPACITY
  assert.throws(
    () => Channel.fromFd(channel),
    (error: unknown) =>
      error instanceof Deno.errors.InvalidData && /ring of 1048576 bytes/.test(String(error)),
  );
  header[2] = 4096;
  channel.sendSync(new Uint8Array([1, 2, 3]));
  new Uint32Array(memory.buffer, 4096, 1)[0] = 100_000; // the frame's length
  assert.throws(() => channel.tryReceive(), /ring is corrupt/);
});
