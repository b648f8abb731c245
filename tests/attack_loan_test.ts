// Attacks on loans of a multi-sender channel: a loan holder that is stopped (SIGSTOP) must
// not hang anyone past their timeout or signal; a loan dropped in a live process must free the
// senders' lock for the others once it is collected.
import assert from "node:assert/strict";
import { Channel, spawnDeno } from "../mod.ts";
import { fixture, ipcTest } from "./helpers.ts";
import { checksum } from "./fixtures/channel_message.ts";

/** Starts a child on `channel` (fd 3) and waits for its first line. */
async function startChild(
  channel: Channel<Uint8Array>,
  script: string,
  args: string[],
  denoFlags: string[] = [],
) {
  const child = spawnDeno(script, {
    args,
    permissions: { ffi: true },
    denoFlags,
    fds: { 3: channel },
    stdout: "piped",
  });
  const reader = child.stdout!.readable.pipeThrough(new TextDecoderStream()).getReader();
  const line = (await reader.read()).value?.trim();
  reader.releaseLock();
  return { child, line };
}

/** How long `wait` took to reject, and with what. */
async function rejection(wait: Promise<unknown>): Promise<[string, number]> {
  const start = performance.now();
  try {
    await wait;
    return ["resolved", performance.now() - start];
  } catch (error) {
    return [(error as Error).name, performance.now() - start];
  }
}

ipcTest(
  "multi: a loan holder stopped with SIGSTOP: other senders' waits end at their timeout or " +
    "signal; once it is killed, they go on",
  async () => {
    using channel = Channel.create({ capacity: 1 << 16, multi: true });
    const { child, line } = await startChild(channel, fixture("channel_loan.ts"), ["hold"]);
    await using _child = child;
    assert.equal(line, "loaned");
    child.kill("SIGSTOP");
    try {
      const [timedOut, took] = await rejection(
        channel.send(new Uint8Array([1]), { timeout: 300 }),
      );
      assert.equal(timedOut, "TimedOut");
      assert.ok(took >= 250 && took < 5000, `send waited ${took} ms for a timeout of 300`);
      const [loanTimedOut] = await rejection(channel.loan(8, { timeout: 300 }));
      assert.equal(loanTimedOut, "TimedOut");
      const start = performance.now();
      assert.throws(
        () => channel.sendSync(new Uint8Array([1]), { timeout: 300 }),
        Deno.errors.TimedOut,
      );
      assert.ok(performance.now() - start < 5000);
      const [aborted, abortTook] = await rejection(
        channel.send(new Uint8Array([1]), { signal: AbortSignal.timeout(200) }),
      );
      assert.equal(aborted, "TimeoutError");
      assert.ok(abortTook < 5000, `send took ${abortTook} ms to see its signal`);
      assert.equal(channel.trySend(new Uint8Array([1])), false);
    } finally {
      child.kill("SIGKILL");
      child.kill("SIGCONT");
    }
    const status = await child.status;
    assert.equal(status.state, "signaled");
    await channel.send(new Uint8Array([2, 2]), { timeout: 5000 });
    assert.deepEqual(
      channel.tryReceive(),
      new Uint8Array([2, 2]),
      "the stopped loan published nothing",
    );
    assert.equal(channel.tryReceive(), undefined);
  },
);

ipcTest(
  "multi: a loan dropped without commit in a live process is abandoned by its garbage " +
    "collector: the other processes' senders go on",
  async () => {
    using channel = Channel.create({ capacity: 1 << 16, multi: true });
    const { child, line } = await startChild(channel, fixture("attack_loan.ts"), ["gc-hold"], [
      "--v8-flags=--expose-gc",
    ]);
    await using _child = child;
    try {
      assert.equal(line, "dropped");
      await channel.send(new Uint8Array([3]), { timeout: 5000 });
      assert.deepEqual(channel.tryReceive(), new Uint8Array([3]), "nothing of the dropped loan");
      assert.equal(channel.tryReceive(), undefined);
    } finally {
      child.kill("SIGKILL");
    }
    await child.status;
  },
);

ipcTest(
  "multi: 3 processes interleave sends, async, sync and try loans and abandoned loans: every " +
    "message arrives once, whole",
  async () => {
    using channel = Channel.create({ capacity: 1 << 16, multi: true, role: "receive" });
    const COUNT = 2000;
    const children = [0, 1, 2].map((id) =>
      spawnDeno(fixture("attack_loan.ts"), {
        args: ["mixed", String(id), String(COUNT)],
        permissions: { ffi: true },
        fds: { 3: channel },
      })
    );
    const next = new Map<number, number>([[0, 0], [1, 0], [2, 0]]);
    let received = 0;
    try {
      while (received < 3 * COUNT) {
        const bytes = await channel.receive({ timeout: 30_000 });
        const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        const number = view.getUint32(0, true);
        const id = Math.floor(number / 2 ** 20);
        const seq = number % 2 ** 20;
        assert.equal(seq, next.get(id), `sender ${id}: message ${seq} out of turn`);
        assert.equal(checksum(bytes.subarray(8)), view.getUint32(4, true), `${id}/${seq} torn`);
        next.set(id, seq + 1);
        received++;
      }
      for (const child of children) assert.equal((await child.status).success, true);
      assert.equal(channel.tryReceive(), undefined, "nothing more: no abandoned loan arrived");
    } finally {
      for (const child of children) {
        try {
          child.kill("SIGKILL"); // still running only when the loop above failed
        } catch {
          // exited already
        }
      }
      await Promise.all(children.map((child) => child.status));
    }
  },
);
