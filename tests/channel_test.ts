import assert from "node:assert/strict";
import { Channel, type Codec, codecs, OwnedFd, SharedMemory, spawn, spawnDeno } from "../mod.ts";
import { sem_t } from "../ffi/layout.ts";
import * as layout from "../src/channel/layout.ts";
import { LOCK_WORD_SIZE } from "../src/sync/_lock_word.ts";
import {
  fixture,
  ipcTest,
  pidNamespaces,
  pidNotInUse,
  processExists,
  runDeno,
  spawnDeno as spawnProcess,
  thrown,
  uniqueName,
} from "./helpers.ts";
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
    for (const sender of senders) assert.ok((await sender.status).success);
    channel.close(); // now the receivers see the end, after every message
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
    assert.ok(result.dropped.maps >= 600, `the channels were mapped: ${output.stdout}`);
    assert.equal(result.collected.maps, 0, `mappings given back: ${output.stdout}`);
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

ipcTest(
  "a forged header (magic, version, capacity, multi, a short segment) is InvalidData at open, never a SIGBUS",
  async () => {
    const output = await runDeno(fixture("channel_forged.ts"), [], {
      flags: ["--allow-ffi"],
      timeout: 30_000,
    });
    assert.equal(output.code, 0, `exit ${output.code} (${output.signal}): ${output.stderr}`);
    const lines = output.stdout.trim().split("\n");
    assert.equal(lines.length, 10, output.stdout);
    for (const line of lines) assert.match(line, /: InvalidData$/);
  },
);

ipcTest("the header's regions neither overlap nor leave the header page", () => {
  const regions: [string, number, number][] = [
    ["magic, version, capacity, multi", 4 * layout.C_MAGIC, 16],
    ["codec name", 4 * layout.C_CODEC, layout.CODEC_NAME_MAX + 1],
    ["wake-ups", 4 * layout.C_WAKE_ALLS, 4],
    ["tail, receivers waiting", 4 * layout.C_TAIL, 8],
    ["sender's CPU", 4 * layout.C_SENDER_CPU, 4],
    ["head, senders waiting", 4 * layout.C_HEAD, 8],
    ["receiver's CPU", 4 * layout.C_RECEIVER_CPU, 4],
    ["sender lock", layout.SENDER_LOCK, LOCK_WORD_SIZE],
    ["receiver lock", layout.RECEIVER_LOCK, LOCK_WORD_SIZE],
    ["registry records", 4 * layout.C_LEFT, 16],
    ["registry slots", 4 * layout.C_PARTICIPANTS, 8 * 32],
    ["data semaphore", layout.DATA_SEMAPHORE, sem_t.size],
    ["space semaphore", layout.SPACE_SEMAPHORE, sem_t.size],
  ];
  assert.deepEqual(
    [layout.C_LEFT, layout.C_DIED, layout.C_CREATOR_PID, layout.C_CREATOR_TAG].map((cell) =>
      cell - layout.C_LEFT
    ),
    [0, 1, 2, 3],
  );
  regions.sort((a, b) => a[1] - b[1]);
  for (const [name, start, length] of regions) {
    assert.ok(start >= 0 && start + length <= layout.HEADER, `${name} within the header`);
  }
  for (let i = 1; i < regions.length; i++) {
    const [before, start, length] = regions[i - 1]!;
    assert.ok(start + length <= regions[i]![1], `${before} ends before ${regions[i]![0]}`);
  }
  for (const [name, start] of regions) {
    if (name.includes("slots") || name.includes("lock") || name.includes("semaphore")) {
      assert.equal(start % 8, 0, `${name} is 8-aligned`);
    }
  }
});

ipcTest("a frame that lies about its size is refused, never trusted", () => {
  using channel = Channel.create({ capacity: 4096 });
  using memory = SharedMemory.fromFd(channel); // a duplicate of its descriptor
  channel.sendSync(new Uint8Array([1, 2, 3]));
  new Uint32Array(memory.buffer, 4096, 1)[0] = 100_000; // the frame's length
  assert.throws(() => channel.tryReceive(), /ring is corrupt/);
});

const named = fixture("channel_named.ts");

/** Starts `channel_named.ts` with `args` and waits until it says "ready" (20 s at most). */
async function ready(args: string[], command?: Deno.ChildProcess): Promise<Deno.ChildProcess> {
  const running = command ?? spawnProcess(named, args, { flags: ["--allow-ffi"] });
  const reader = running.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const timer = setTimeout(() => running.kill("SIGKILL"), 20_000);
  try {
    let said = "";
    while (!said.includes("ready\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the child ended before it was ready: "${said}"`);
      said += value;
    }
  } finally {
    clearTimeout(timer);
    await reader.cancel();
  }
  return running;
}

/** Kills a child of {@linkcode ready} and waits for it. */
async function kill(running: Deno.ChildProcess): Promise<void> {
  running.kill("SIGKILL");
  await running.status;
  await running.stderr.cancel();
}

ipcTest(
  "a sender that closed before the receiver opened still ends the stream: UnexpectedEof, not a wait forever",
  async () => {
    // The exact repro of the issue, in one process.
    const sender = Channel.create({ role: "send", capacity: 4096 });
    sender.sendSync(new Uint8Array([1]));
    const fd = new OwnedFd(sender.fd).dup();
    sender.close();
    using receiver = Channel.fromFd(fd, { role: "receive" });
    assert.deepEqual(receiver.receiveSync(), new Uint8Array([1]));
    await assert.rejects(receiver.receive({ timeout: 3000 }), Deno.errors.UnexpectedEof);
    assert.throws(() => receiver.receiveSync({ timeout: 3000 }), Deno.errors.UnexpectedEof);

    // Across processes: the sender creates, sends, closes and exits before the receiver opens.
    const name = uniqueName("channel-late");
    const output = await runDeno(named, ["create-send", name], {
      flags: ["--allow-ffi"],
      timeout: 20_000,
    });
    assert.equal(output.code, 0, output.stderr);
    try {
      using late = Channel.open(name, { role: "receive" });
      assert.deepEqual(late.receiveSync({ timeout: 3000 }), new Uint8Array([42]));
      const started = performance.now();
      await assert.rejects(late.receive({ timeout: 3000 }), Deno.errors.UnexpectedEof);
      assert.ok(performance.now() - started < 1000, "at once, not after a timeout");
    } finally {
      SharedMemory.unlink(name);
    }
  },
);

ipcTest(
  "examples/channel_stream.ts with 10 messages ends (the sender closes before the child opens)",
  async () => {
    // In its own process group, so that a hang ends with the example's own child killed too.
    await using example = spawn(Deno.execPath(), {
      args: [
        "run",
        "--allow-ffi",
        "--allow-run",
        "--allow-read",
        new URL("../examples/channel_stream.ts", import.meta.url).pathname,
        "10",
        "64",
      ],
      processGroup: true,
      stdout: "piped",
      stderr: "piped",
    });
    const timer = setTimeout(() => example.killGroup("SIGKILL"), 30_000);
    try {
      const { status, stdout, stderr } = await example.output();
      const decoder = new TextDecoder();
      assert.ok(status.success, `${JSON.stringify(status)}: ${decoder.decode(stderr)}`);
      assert.match(decoder.decode(stdout), /the child saw 10 in order/);
    } finally {
      clearTimeout(timer);
    }
  },
);

ipcTest(
  "slots of killed peers are reclaimed: 31 handles of a SIGKILLed process leave room for 31 new ones, and the death is remembered",
  async () => {
    const name = uniqueName("channel-reclaim");
    using channel = Channel.create({ name, role: "receive", capacity: 4096 });
    await kill(await ready(["open", name, "31"]));
    const handles: Channel[] = [];
    try {
      for (let i = 0; i < 31; i++) handles.push(Channel.open(name, { role: "receive" }));
      assert.throws(() => Channel.open(name), /32 handles open already, in live processes/);
    } finally {
      for (const handle of handles) handle.close();
    }
    using _again = Channel.open(name, { role: "receive" }); // a slot closed cleanly is free again
    // The senders' slots were taken by receivers, yet their death is not forgotten.
    const started = performance.now();
    await assert.rejects(channel.receive({ timeout: 5000 }), Deno.errors.BrokenPipe);
    assert.ok(performance.now() - started < 1500, `after ${performance.now() - started} ms`);
  },
);

ipcTest(
  "a receiver whose creator died before any sender came gets BrokenPipe within a second, not a wait forever",
  async () => {
    const name = uniqueName("channel-orphan");
    await kill(await ready(["create-receive", name]));
    try {
      using receiver = Channel.open(name, { role: "receive" });
      const started = performance.now();
      await assert.rejects(receiver.receive({ timeout: 5000 }), Deno.errors.BrokenPipe);
      assert.throws(() => receiver.receiveSync({ timeout: 5000 }), Deno.errors.BrokenPipe);
      assert.ok(performance.now() - started < 2000, `after ${performance.now() - started} ms`);
      // A creator alive, or one that closed cleanly, may still bring senders: the wait goes on.
      using waiting = Channel.create({ role: "receive", capacity: 4096 });
      await assert.rejects(waiting.receive({ timeout: 600 }), Deno.errors.TimedOut);
    } finally {
      SharedMemory.unlink(name);
    }
  },
);

if (pidNamespaces) console.log(`(channel PID namespace test skipped: ${pidNamespaces})`);

ipcTest(
  `a live peer in another PID namespace is never judged dead, though its pid is none here${
    pidNamespaces ? ` (skipped: ${pidNamespaces})` : ""
  }`,
  async () => {
    const name = uniqueName("channel-pidns");
    using channel = Channel.create({ name, role: "receive", capacity: 4096 });
    // The sender's pid in its namespace is free in ours: judged here, it would look dead.
    const last = pidNotInUse();
    const sender = await ready(
      [],
      new Deno.Command("unshare", {
        args: [
          "--pid",
          "--fork",
          "--mount-proc",
          "--kill-child",
          "sh",
          "-c",
          `echo $3 > /proc/sys/kernel/ns_last_pid && "$0" run --allow-ffi "$1" open "$2" 1; exit $?`,
          Deno.execPath(),
          named,
          name,
          String(last),
        ],
        stdout: "piped",
        stderr: "piped",
      }).spawn(),
    );
    try {
      assert.ok(!processExists(last + 1), "the sender's pid names no process here");
      await assert.rejects(channel.receive({ timeout: 1500 }), Deno.errors.TimedOut);
    } finally {
      await kill(sender);
    }
    // Nor is its death judged from here, and its slot is never reclaimed as a dead one's.
    assert.throws(() => channel.receiveSync({ timeout: 500 }), Deno.errors.TimedOut);
  },
  { ignore: pidNamespaces !== "" },
);

ipcTest(
  "Channel.fromFd leaves a number or an OwnedFd with the caller when it fails, and owns it when it succeeds",
  () => {
    using plain = SharedMemory.anonymous({ size: 8192 }); // zeros: no channel in it
    const number = new OwnedFd(plain.fd).dup().release();
    assert.throws(() => Channel.fromFd(number), Deno.errors.InvalidData);
    using stillOpen = SharedMemory.fromFd(number); // the number is ours still, open
    assert.equal(stillOpen.size, 8192);

    using channel = Channel.create({ capacity: 4096 });
    using owned = new OwnedFd(channel.fd).dup();
    assert.throws(() => Channel.fromFd(owned, { codec: codecs.json }), /created with bytes/);
    assert.equal(owned.closed, false, "a failed fromFd leaves the OwnedFd open");
    using taken = Channel.fromFd(owned);
    assert.equal(owned.closed, true, "a successful one takes it");
    const given = new OwnedFd(channel.fd).dup().release();
    using alsoTaken = Channel.fromFd(given); // closed with the channel: the leak check says so
    channel.sendSync(new Uint8Array([5]));
    assert.deepEqual(taken.tryReceive(), new Uint8Array([5]));
    assert.equal(alsoTaken.capacity, 4096);
  },
);
