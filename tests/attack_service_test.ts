// Attacks on the request/response service: frames forged by a hostile sender on the request
// ring must be dropped one by one; the server goes on answering its real clients.
import assert from "node:assert/strict";
import { Channel } from "../src/channel/mod.ts";
import { codecs } from "../src/codec.ts";
import { HELLO, requestFrame, u32 } from "../src/service/frame.ts";
import { removeName, RESPONSE_PREFIX } from "../src/service/names.ts";
import { Client, RemoteError, Server } from "../src/service/mod.ts";
import { spawnDeno } from "../src/spawn.ts";
import { fixture, ipcTest, runDeno, uniqueName } from "./helpers.ts";

const encoder = new TextEncoder();

ipcTest(
  "a hello whose codec name outgrows the client's ring is refused, never ends the server",
  async () => {
    const name = uniqueName("svc-hello");
    await using server = Server.create((n: number) => n * 2, { name, codec: codecs.json });
    // A hostile "client": a response ring of the smallest size, and a hello with a long codec.
    using ring = Channel.create({
      name: `${RESPONSE_PREFIX}${Deno.pid}-hostile`,
      capacity: 4096,
      role: "receive",
    });
    using raw = Channel.open(name, { role: "send" });
    const hello = `${ring.name}\0${"x".repeat(10_000)}`;
    assert.ok(raw.trySend(requestFrame(HELLO, 0, 0, encoder.encode(hello))));
    // Frames no client writes: each is dropped on its own.
    raw.trySend(new Uint8Array([HELLO])); // too short
    raw.trySend(requestFrame(9, 1, 1)); // an unknown kind
    raw.trySend(requestFrame(HELLO, 0, 0, new Uint8Array([0xff, 0xfe, 0]))); // not UTF-8
    raw.trySend(requestFrame(HELLO, 0, 0, encoder.encode("/not-a-response-ring\0json")));
    raw.trySend(requestFrame(HELLO, 0, 0, encoder.encode(`${RESPONSE_PREFIX}x/y\0json`)));
    raw.trySend(requestFrame(2, 0xffffffff, 1, encoder.encode("1"))); // a client that never was
    // Before: the refusal, 10 KiB, did not fit the 4 KiB ring; the RangeError ended the server.
    await using client = await Client.connect<number, number>(name, {
      codec: codecs.json,
      timeout: 5000,
    });
    assert.equal(await client.request(21, { timeout: 5000 }), 42);
    assert.equal(server.closed, false);
    // The hostile ring got the refusal, cut short so that it fits.
    const refusal = ring.tryReceive();
    assert.ok(refusal !== undefined && refusal.length < 4096);
    assert.match(new TextDecoder().decode(refusal), /its codec is \\?"json\\?", not \\?"x{64}\\?"/);
  },
);

ipcTest(
  "a hello replayed for a ring that is already a client's is ignored: its answers stay whole",
  async () => {
    const name = uniqueName("svc-replay");
    await using server = Server.create((n: number) => n + 1, { name, codec: codecs.json });
    using ring = Channel.create({
      name: `${RESPONSE_PREFIX}${Deno.pid}-replayed`,
      capacity: 4096,
      role: "receive",
    });
    using raw = Channel.open(name, { role: "send" });
    const hello = requestFrame(HELLO, 0, 0, encoder.encode(`${ring.name}\0json`));
    assert.ok(raw.trySend(hello));
    const welcome = await ring.receive({ timeout: 5000 });
    const id = u32(welcome, 4);
    assert.ok(raw.trySend(hello)); // the replay
    for (let request = 1; request <= 3; request++) {
      raw.trySend(requestFrame(2, id, request, encoder.encode(String(request * 10))));
    }
    // Before: the replay opened a second sender on the ring, whose own tail wrote its welcome
    // over the first one's answers: answers went missing.
    const answers: string[] = [];
    while (answers.length < 3) {
      const frame = await ring.receive({ timeout: 5000 });
      const request = u32(frame, 4);
      answers.push(`${frame[0]}:${request}:${new TextDecoder().decode(frame.subarray(8))}`);
    }
    assert.deepEqual(answers.sort(), ["2:1:11", "2:2:21", "2:3:31"]);
    assert.equal(ring.tryReceive(), undefined);
    assert.equal(server.clients, 1);
  },
);

/** Blocks this thread for `ms`: the server in this process reads nothing meanwhile. */
function blockThread(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** The /dev/shm names of the response rings of process `pid`. */
function responseRings(pid: number): string[] {
  const prefix = `${RESPONSE_PREFIX.slice(1)}${pid}-`;
  return [...Deno.readDirSync("/dev/shm")].map((entry) => entry.name).filter((name) =>
    name.startsWith(prefix)
  );
}

ipcTest(
  "a client SIGKILLed while it waits for the welcome leaves no response ring name behind",
  async () => {
    const name = uniqueName("svc-welcome");
    await using server = Server.create((n: number) => n, { name, codec: codecs.json });
    // While this thread is blocked the server cannot welcome anyone: the child creates its
    // ring, says hello, and waits; it is killed there.
    const child = spawnDeno(fixture("service_client.ts"), {
      args: [name, "hang"],
      permissions: { ffi: true },
    });
    await using _child = child;
    for (let waited = 0; responseRings(child.pid).length === 0 && waited < 30_000; waited += 20) {
      blockThread(20);
    }
    assert.equal(responseRings(child.pid).length, 1, "the child made its response ring");
    blockThread(300); // its hello is in the ring by now
    child.kill("SIGKILL");
    assert.equal((await child.status).state, "signaled");
    // Before: the server opened the ring by its name and the name stayed, the child being
    // dead before it could remove it.
    for (let i = 0; i < 100 && responseRings(child.pid).length > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.deepEqual(responseRings(child.pid), []);
    assert.ok(server.clients <= 1);
  },
);

ipcTest(
  "30 clients with answers, handler errors, timeouts and broken streams mixed: nothing is " +
    "left in either side once all close (fds, mappings, names)",
  async () => {
    const name = uniqueName("svc-30");
    let aborted = 0;
    await using server = Server.create(
      async (n: number, { signal }) => {
        switch (n % 4) {
          case 0:
            return n;
          case 1:
            throw new RangeError(`refused ${n}`);
          case 2:
            await new Promise((_, fail) =>
              signal.addEventListener("abort", () => {
                aborted++;
                fail(signal.reason);
              })
            );
            return -1;
          default:
            return (async function* () {
              for (let i = 0; i < 5; i++) yield i;
            })() as unknown as number;
        }
      },
      { name, codec: codecs.json, capacity: 1 << 16 },
    );
    const clients = await Promise.all(
      Array.from({ length: 30 }, () =>
        Client.connect<number, number>(name, {
          codec: codecs.json,
          capacity: 1 << 14,
          timeout: 10_000,
        })),
    );
    assert.equal(server.clients, 30);
    const outcomes = await Promise.all(
      clients.flatMap((client) =>
        Array.from({ length: 8 }, async (_, n) => {
          try {
            if (n % 4 === 3) {
              for await (const part of client.stream(n, { timeout: 5000 })) {
                if (part === 1) break; // a stream left early
              }
              return "stream";
            }
            return String(await client.request(n, { timeout: n % 4 === 2 ? 30 : 5000 }));
          } catch (error) {
            return (error as Error).name;
          }
        })
      ),
    );
    const counts: Record<string, number> = {};
    for (const outcome of outcomes) counts[outcome] = (counts[outcome] ?? 0) + 1;
    assert.deepEqual(counts, { "0": 30, "4": 30, RemoteError: 60, TimedOut: 60, stream: 60 });
    for (const [i, client] of clients.entries()) {
      if (i % 2 === 0) client.close();
      else await client[Symbol.asyncDispose]();
    }
    for (let i = 0; i < 100 && server.clients > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(server.clients, 0, "every client was dropped");
    assert.equal(aborted, 60, "every timed-out request aborted its handler");
  },
);

ipcTest(
  "20 clients dropped without close() give back their fds, mappings and names to the garbage " +
    "collector, and the server drops them",
  async () => {
    const output = await runDeno(fixture("attack_service_gc.ts"), [], {
      flags: ["--allow-all", "--v8-flags=--expose-gc"],
      timeout: 60_000,
    });
    assert.equal(output.code, 0, `${output.signal} ${output.stderr}`);
    assert.equal(output.stdout.trim(), "clients 0 fds 0 maps 0 names 0");
  },
);

/** Starts a peer of attack_service_peer.ts and waits for its first line. */
async function startPeer(args: string[], expect: string) {
  const child = spawnDeno(fixture("attack_service_peer.ts"), {
    args,
    permissions: { ffi: true },
    stdout: "piped",
  });
  const reader = child.stdout!.readable.pipeThrough(new TextDecoderStream()).getReader();
  const first = (await reader.read()).value?.trim();
  reader.releaseLock();
  if (first !== expect) {
    child.kill("SIGKILL");
    await child.status;
    throw new Error(`the peer said ${first}, not ${expect}`);
  }
  return child;
}

ipcTest(
  "a client SIGKILLed with 100 requests in flight: the server aborts all 100 handlers, drops " +
    "it, and serves the next client",
  async () => {
    const name = uniqueName("svc-inflight");
    let started = 0;
    let aborted = 0;
    await using server = Server.create((n: number, { signal }) => {
      started++;
      return new Promise<number>((resolve, fail) => {
        if (n < 0) return resolve(n);
        signal.addEventListener("abort", () => {
          aborted++;
          fail(signal.reason);
        });
      });
    }, { name, codec: codecs.json });
    const child = await startPeer(["client", name, "100"], "sent");
    await using _child = child;
    for (let i = 0; i < 500 && started < 100; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(started, 100);
    child.kill("SIGKILL");
    assert.equal((await child.status).state, "signaled");
    for (let i = 0; i < 300 && (aborted < 100 || server.clients > 0); i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(aborted, 100);
    assert.equal(server.clients, 0);
    await using client = await Client.connect<number, number>(name, {
      codec: codecs.json,
      timeout: 5000,
    });
    assert.equal(await client.request(-7, { timeout: 5000 }), -7);
  },
);

ipcTest(
  "a server SIGKILLed mid-stream: the client's stream fails with BrokenPipe, and so do later requests",
  async () => {
    const name = uniqueName("svc-stream-kill");
    const child = await startPeer(["server", name], "ready");
    await using _child = child;
    // What the killed server cannot remove, removed even when an assertion below fails.
    using _name = { [Symbol.dispose]: () => removeName(name) };
    await using client = await Client.connect<number, number>(name, {
      codec: codecs.json,
      timeout: 10_000,
    });
    let parts = 0;
    let failure: unknown;
    try {
      for await (const part of client.stream(0, { timeout: 30_000 })) {
        assert.equal(part, parts++);
        if (parts === 20) child.kill("SIGKILL");
      }
    } catch (error) {
      failure = error;
    }
    assert.ok(failure instanceof Deno.errors.BrokenPipe, String(failure));
    assert.ok(parts >= 20);
    await assert.rejects(client.request(1, { timeout: 5000 }), Deno.errors.BrokenPipe);
    assert.equal((await child.status).state, "signaled");
  },
);

ipcTest(
  "a handler's error too large for the client's ring arrives cut short, as a RemoteError, " +
    "never lost",
  async () => {
    const name = uniqueName("svc-bigerror");
    await using _server = Server.create((n: number) => {
      if (n === 1) throw new TypeError("é".repeat(3000)); // 6000 bytes of UTF-8
      if (n === 2) throw Object.assign(new Error("coded"), { code: "C".repeat(100_000) });
      if (n === 3) throw Object.assign(new Error("named"), { name: "N".repeat(100_000) });
      return n;
    }, { name, codec: codecs.json });
    await using client = await Client.connect<number, number>(name, {
      codec: codecs.json,
      capacity: 4096,
      timeout: 5000,
    });
    // Before: each ERROR frame was larger than the client's 4 KiB ring, dropped by the server,
    // and the request waited for its timeout (for ever without one).
    const first = await client.request(1, { timeout: 5000 }).catch((error) => error);
    assert.ok(first instanceof RemoteError, String(first));
    assert.equal(first.remoteName, "TypeError");
    assert.match(first.message, /^é+…$/);
    const second = await client.request(2, { timeout: 5000 }).catch((error) => error);
    assert.ok(second instanceof RemoteError && second.message === "coded", String(second));
    assert.equal(second.code, undefined);
    const third = await client.request(3, { timeout: 5000 }).catch((error) => error);
    assert.ok(third instanceof RemoteError && third.message === "named", String(third));
    assert.equal(third.remoteName, "Error");
    assert.equal(await client.request(4, { timeout: 5000 }), 4);
  },
);
