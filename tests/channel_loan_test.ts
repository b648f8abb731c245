import assert from "node:assert/strict";
import { Channel, codecs, spawnDeno } from "../mod.ts";
import { fixture, ipcTest, runDeno, thrown } from "./helpers.ts";
import { checksum, sizes } from "./fixtures/channel_message.ts";

const child = fixture("channel_loan.ts");

/** Resolves after `ms`. */
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

ipcTest(
  "a child sends 100,000 messages of 1 B to 64 KiB by loan, with abandoned loans between: " +
    "each arrives once, in order, intact, and nothing abandoned arrives",
  async () => {
    using channel = Channel.create({ capacity: 1 << 18, role: "receive" }); // wraps often
    const count = 100_000;
    await using sender = spawnDeno(child, {
      args: ["stream", String(count), "9"],
      permissions: { ffi: true },
      fds: { 3: channel },
    });
    const next = sizes(9);
    let seq = 0;
    for await (const bytes of channel) {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const size = next();
      if (view.getUint32(0, true) !== seq || bytes.length !== 8 + size) {
        assert.fail(`message ${seq}: got seq ${view.getUint32(0, true)}, ${bytes.length} bytes`);
      }
      if (checksum(bytes.subarray(8)) !== view.getUint32(4, true)) {
        assert.fail(`message ${seq} corrupt`);
      }
      seq++;
    }
    assert.equal(seq, count, "every message, then the end when the sender closed");
    assert.ok((await sender.status).success);
  },
);

ipcTest(
  "multi: a sender SIGKILLed holding a loan: other senders wait without blocking their event " +
    "loop, then go on; nothing of the dead loan arrives",
  async () => {
    using channel = Channel.create({ capacity: 1 << 16, multi: true });
    await using holder = spawnDeno(child, {
      args: ["hold"],
      permissions: { ffi: true },
      fds: { 3: channel },
      stdout: "piped",
    });
    const reader = holder.stdout!.readable.pipeThrough(new TextDecoderStream()).getReader();
    assert.equal((await reader.read()).value?.trim(), "loaned");
    reader.releaseLock();
    assert.equal(channel.trySend(new Uint8Array([1])), false, "the loan holds the senders' lock");
    assert.equal(channel.tryLoan(8), undefined);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const sending = channel.send(new Uint8Array([7, 7]), { timeout: 10_000 });
    const loaning = (async () => {
      await sending;
      return await channel.loan(4, { timeout: 10_000 });
    })();
    await sleep(200);
    clearInterval(timer);
    assert.ok(ticks >= 1, `timers ran while send waited (${ticks} ticks in 200 ms)`);
    assert.equal(channel.tryReceive(), undefined, "nothing published meanwhile");
    holder.kill("SIGKILL");
    const status = await holder.status;
    assert.ok(status.state === "signaled" && status.signal === "SIGKILL", JSON.stringify(status));
    await sending;
    const loan = await loaning;
    loan.bytes.set([1, 2, 3, 4]);
    loan.commit();
    assert.deepEqual(
      channel.tryReceive(),
      new Uint8Array([7, 7]),
      "the dead loan published nothing",
    );
    assert.deepEqual(channel.tryReceive(), new Uint8Array([1, 2, 3, 4]));
    assert.equal(channel.tryReceive(), undefined);
  },
);

ipcTest("multi: a loan in this process makes sends of its other handles Busy, not a hang", () => {
  using a = Channel.create({ capacity: 4096, multi: true });
  using b = Channel.fromFd(a);
  const loan = a.tryLoan(16)!;
  for (const attempt of [() => b.trySend(new Uint8Array(1)), () => b.tryLoan(1)]) {
    const error = thrown(attempt);
    assert.ok(error instanceof Deno.errors.Busy, String(error));
    assert.match((error as Error).message, /a loan of this process/);
  }
  assert.throws(() => b.sendSync(new Uint8Array(1), { timeout: 100 }), Deno.errors.Busy);
  loan.commit(2);
  assert.ok(b.trySend(new Uint8Array([5])));
  assert.equal(a.tryReceive()?.length, 2);
  assert.deepEqual(b.tryReceive(), new Uint8Array([5]));
});

ipcTest("a loan's view: in the ring, committed as a message, then detached", () => {
  using channel = Channel.create({ capacity: 4096 });
  const loan = channel.tryLoan(100)!;
  assert.equal(loan.size, 100);
  assert.equal(loan.bytes.length, 100);
  assert.ok(loan.open);
  const view = loan.bytes;
  view.set([1, 2, 3]);
  assert.equal(channel.tryReceive(), undefined, "nothing before commit");
  loan.commit(3);
  assert.deepEqual(channel.tryReceive(), new Uint8Array([1, 2, 3]));
  assert.equal(view.length, 0, "the stale view is detached");
  assert.equal(view.buffer.detached, true);
  view[0] = 9; // ignored: a detached view writes nowhere
  assert.equal(loan.open, false);
  assert.throws(() => loan.bytes, Deno.errors.BadResource);
  assert.throws(() => loan.commit(), /it was committed/);
  loan.abandon(); // harmless
  loan[Symbol.dispose]();
  // A full message, wrapping around the ring's end many times.
  for (let i = 0; i < 50; i++) {
    const big = channel.loanSync(1500);
    big.bytes.fill(i);
    big.commit();
    const received = channel.tryReceive()!;
    assert.equal(received.length, 1500);
    assert.ok(received.every((byte) => byte === i), `message ${i} intact`);
  }
  const full = channel.tryLoan(channel.maxMessageSize)!;
  full.commit(0); // an empty message
  assert.deepEqual(channel.tryReceive(), new Uint8Array(0));
});

ipcTest(
  "abandoning publishes nothing and frees the room: abandon(), using, the channel's close",
  () => {
    using channel = Channel.create({ capacity: 4096 });
    const first = channel.tryLoan(4000)!; // all the room there is
    first.bytes.fill(0xff);
    first.abandon();
    assert.equal(first.open, false);
    assert.throws(() => first.bytes, /it was abandoned/);
    {
      using second = channel.tryLoan(4000)!;
      second.bytes.fill(0xfe);
    }
    assert.equal(channel.tryReceive(), undefined, "nothing published");
    assert.ok(channel.trySend(new Uint8Array(4000)), "the room is free again");
    assert.equal(channel.tryReceive()?.every((byte) => byte === 0), true);
    const open = channel.tryLoan(8)!;
    channel.close();
    assert.equal(open.open, false, "close ended the loan");
    assert.throws(() => open.commit(), /its channel was closed/);
    assert.throws(() => channel.tryLoan(8), Deno.errors.BadResource);
  },
);

ipcTest(
  "a loan's buffer transferred away is entombed when the loan ends: it never reaches the ring",
  () => {
    using channel = Channel.create({ capacity: 4096 });
    const loan = channel.tryLoan(64)!;
    loan.bytes.set([4, 5]);
    const moved = new Uint8Array(loan.bytes.buffer.transfer());
    moved[2] = 6; // still the ring, until the loan ends
    loan.commit(3);
    assert.deepEqual(channel.tryReceive(), new Uint8Array([4, 5, 6]));
    assert.equal(moved[0], 0, "the new owner reads zeros");
    moved.fill(0xaa); // writes to the tomb
    const next = channel.tryLoan(64)!; // a fresh window, over the same part of the ring
    next.bytes.fill(1);
    next.commit();
    const received = channel.tryReceive()!;
    assert.ok(received.every((byte) => byte === 1), "the tomb's writes never reached the ring");
    const dropped = channel.tryLoan(8)!;
    dropped.bytes.buffer.transfer();
    dropped.abandon();
    assert.equal(channel.tryReceive(), undefined);
  },
);

ipcTest("one loan at a time per handle: send and loan are Busy while one is open", async () => {
  using channel = Channel.create({ capacity: 4096 });
  const loan = channel.tryLoan(8)!;
  for (
    const attempt of [
      () => channel.trySend(new Uint8Array(1)),
      () => channel.sendSync(new Uint8Array(1)),
      () => channel.tryLoan(1),
      () => channel.loanSync(1),
    ]
  ) {
    assert.throws(attempt, Deno.errors.Busy);
  }
  await assert.rejects(channel.send(new Uint8Array(1)), Deno.errors.Busy);
  await assert.rejects(channel.loan(1), Deno.errors.Busy);
  assert.equal(channel.tryReceive(), undefined, "receiving goes on");
  loan.commit(1);
  assert.ok(channel.trySend(new Uint8Array(1)));
});

ipcTest(
  "loan waits for room like send: resolves once read, times out, aborts, ends on close",
  async () => {
    using channel = Channel.create({ capacity: 4096 });
    assert.ok(channel.trySend(new Uint8Array(4000)));
    assert.equal(channel.tryLoan(100), undefined);
    setTimeout(() => channel.tryReceive(), 30);
    const loan = await channel.loan(100, { timeout: 5000 });
    loan.abandon();
    assert.ok(channel.trySend(new Uint8Array(4000)));
    await assert.rejects(channel.loan(100, { timeout: 30 }), Deno.errors.TimedOut);
    assert.throws(() => channel.loanSync(100, { timeout: 30 }), Deno.errors.TimedOut);
    const controller = new AbortController();
    const aborted = channel.loan(100, { signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await assert.rejects(aborted);
    const pending = channel.loan(100);
    setTimeout(() => channel.close(), 20);
    await assert.rejects(pending, Deno.errors.BadResource);
  },
);

ipcTest("loan arguments are checked first: size, length, codec, role", async () => {
  using channel = Channel.create({ capacity: 4096 });
  for (const size of [0, -1, NaN, Infinity, -Infinity, 2 ** 32, 1.5, 4089, 2 ** 53]) {
    const error = thrown(() => channel.tryLoan(size));
    assert.ok(error instanceof RangeError && /size/.test(error.message), `${size}: ${error}`);
    await assert.rejects(channel.loan(size), RangeError);
    assert.throws(() => channel.loanSync(size), RangeError);
  }
  for (const size of ["8", null, undefined, 8n, {}]) {
    assert.throws(() => channel.tryLoan(size as number), TypeError);
  }
  assert.throws(() => channel.loanSync(8, { timeout: -1 }), RangeError);
  await assert.rejects(channel.loan(8, null as unknown as object), TypeError);
  const loan = channel.tryLoan(8)!;
  for (const length of [-1, 9, 1.5, NaN, Infinity]) {
    assert.throws(() => loan.commit(length), RangeError);
  }
  assert.throws(() => loan.commit("1" as unknown as number), TypeError);
  assert.ok(loan.open, "a refused commit leaves the loan open");
  loan.commit(8);
  using json = Channel.create({ capacity: 4096, codec: codecs.json });
  const error = thrown(() => (json as unknown as Channel).tryLoan(8));
  assert.ok(error instanceof TypeError && /json codec/.test(error.message));
  using receiver = Channel.fromFd(channel, { role: "receive" });
  assert.throws(() => receiver.tryLoan(8), /receive only/);
});

ipcTest("a loan dropped without commit is abandoned by the garbage collector", async () => {
  const output = await runDeno(child, ["gc"], {
    flags: ["--allow-ffi", "--v8-flags=--expose-gc"],
    timeout: 30_000,
  });
  assert.equal(output.code, 0, output.stderr);
  assert.equal(output.stdout.trim(), "sent 1");
});
