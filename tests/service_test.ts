/**
 * Request/response (src/service/): many client processes against one server process, streamed
 * answers, handler errors, timeouts and aborts of one request, a client or the server killed
 * with SIGKILL, closed handles.
 */

import assert from "node:assert/strict";
import {
  Channel,
  Client,
  type Codec,
  codecs,
  RemoteError,
  Server,
  SharedMemory,
  spawnDeno as spawnWithFds,
} from "../mod.ts";
import { keepReceiverLock } from "../src/channel/channel.ts";
import { fixture, ipcTest, spawnDeno, uniqueName } from "./helpers.ts";

const serverFixture = fixture("service_server.ts");
const clientFixture = fixture("service_client.ts");
const FLAGS = { flags: ["--allow-all"] };

type Json = unknown;

/** A child process started by {@linkcode startChild}. */
interface Child {
  child: Deno.ChildProcess;
  lines: ReadableStreamDefaultReader<string>;
  /** Waits for its exit (after a kill, say) and returns its status. */
  done(): Promise<Deno.CommandStatus>;
}

/** A child process that prints a first line when it is ready; killed with SIGKILL after 60 s. */
async function startChild(
  script: string,
  args: string[],
  expect: string,
): Promise<Child> {
  const child = spawnDeno(script, args, FLAGS);
  const timer = setTimeout(() => kill(child), 60_000);
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const stderr = new Response(child.stderr).text();
  const first = await lines.read();
  if (first.value?.trim() !== expect) {
    kill(child);
    throw new Error(`${script} said ${first.value}, not ${expect}: ${await stderr}`);
  }
  return {
    child,
    lines,
    async done() {
      await lines.cancel();
      await stderr;
      const status = await child.status;
      clearTimeout(timer);
      return status;
    },
  };
}

/** Waits until `check()` holds, looking every 10 ms, at most `ms`; returns how long it took. */
async function eventually(check: () => boolean, ms: number, what: string): Promise<number> {
  const start = performance.now();
  while (!check()) {
    if (performance.now() - start > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return performance.now() - start;
}

/** SIGKILL, unless the child has exited already. */
function kill(child: Deno.ChildProcess): void {
  try {
    child.kill("SIGKILL");
  } catch (error) {
    if (!(error instanceof TypeError)) throw error; // "Child process has already terminated"
  }
}

/** A server child (service_server.ts) under a fresh name for `fn`; killed and cleaned up after. */
async function withServerChild(
  fn: (name: string, server: Child) => Promise<void>,
): Promise<void> {
  const name = uniqueName("service");
  const server = await startChild(serverFixture, [name], "ready");
  try {
    await fn(name, server);
  } finally {
    kill(server.child);
    await server.done();
    removeIfLeft(name); // only if the server was killed before it closed
  }
}

/** Removes the name a killed server left behind, if it did. */
function removeIfLeft(name: string): void {
  try {
    SharedMemory.unlink(name);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

ipcTest(
  "3 client processes x 100 concurrent requests each: every answer is its own",
  () =>
    withServerChild(async (name) => {
      const outputs = await Promise.all([0, 1, 2].map(async () => {
        const client = await startChild(clientFixture, [name, "concurrent", "100"], "ok 100");
        return (await client.done()).code;
      }));
      assert.deepEqual(outputs, [0, 0, 0]);
      await using client = await Client.connect<Json, Json>(name, { codec: codecs.json });
      assert.equal(await client.request({ op: "clients" }), 1); // the three were dropped
      assert.equal(await client.request({ op: "quit" }), "bye");
    }),
);

ipcTest(
  "across processes: a streamed answer arrives whole and in order, errors as RemoteError",
  () =>
    withServerChild(async (name, server) => {
      await using client = await Client.connect<Json, Json>(name, { codec: codecs.json });
      const parts: Json[] = [];
      for await (const part of client.stream({ op: "stream", n: 1000 })) parts.push(part);
      assert.deepEqual(parts, Array.from({ length: 1000 }, (_, i) => i));
      const error = await client.request({ op: "fail", value: 7 }).catch((e) => e);
      assert.ok(error instanceof RemoteError, String(error));
      assert.equal(error.remoteName, "TypeError");
      assert.equal(error.message, "refused 7");
      // A single answer through stream(), and a stream through request(), say what they are.
      assert.deepEqual(await Array.fromAsync(client.stream({ op: "echo", value: "one" })), ["one"]);
      await assert.rejects(client.request({ op: "stream", n: 3 }), Deno.errors.InvalidData);
      assert.equal(await client.request({ op: "echo", value: "after" }), "after");
      assert.equal(await client.request({ op: "quit" }), "bye");
      assert.equal((await server.done()).code, 0);
    }),
);

ipcTest("answers come back out of order, each to its own request", async () => {
  await using server = Server.create(async (ms: number) => {
    await delay(ms);
    return ms;
  }, { codec: codecs.json });
  await using client = await Client.connect<number, number>(server, { codec: codecs.json });
  const order: number[] = [];
  await Promise.all([80, 40, 0].map((ms) => client.request(ms).then((got) => order.push(got))));
  assert.deepEqual(order, [0, 40, 80]);
});

ipcTest(
  "a request's timeout rejects it alone, aborts its handler, and its late answer is discarded",
  async () => {
    const aborted: number[] = [];
    await using server = Server.create(async (ms: number, { signal }) => {
      signal.addEventListener("abort", () => aborted.push(ms));
      await delay(ms);
      return ms;
    }, { codec: codecs.json });
    await using client = await Client.connect<number, number>(server, { codec: codecs.json });
    const slow = client.request(150, { timeout: 20 });
    const fast = client.request(30);
    await assert.rejects(slow, Deno.errors.TimedOut);
    assert.equal(await fast, 30);
    await delay(200); // the late answer to the slow one arrives, and is dropped
    assert.deepEqual(aborted, [150]);
    assert.equal(await client.request(1), 1);
    assert.equal(client.pending, 0);
  },
);

ipcTest(
  "abort rejects one request with the signal's reason; an aborted stream stops the handler",
  async () => {
    let stopped = false;
    await using server = Server.create(
      (n: number, { signal }) => {
        if (n >= 0) return delay(100).then(() => n);
        return (async function* () {
          try {
            for (let i = 0;; i++) {
              yield i;
              await delay(5);
            }
          } finally {
            stopped = signal.aborted;
          }
        })();
      },
      { codec: codecs.json },
    );
    await using client = await Client.connect<number, number>(server, { codec: codecs.json });
    const controller = new AbortController();
    const reason = new Error("changed my mind");
    const request = client.request(1, { signal: controller.signal });
    const other = client.request(2);
    controller.abort(reason);
    await assert.rejects(request, (error) => error === reason);
    assert.equal(await other, 2);
    // Breaking out of a stream tells the server, whose generator stops.
    for await (const i of client.stream(-1)) if (i === 3) break;
    await eventually(() => stopped, 2000, "the stream's generator stopped");
    const streamAbort = new AbortController();
    const parts = client.stream(-1, { signal: streamAbort.signal });
    assert.equal((await parts.next()).value, 0);
    streamAbort.abort(reason);
    await assert.rejects(parts.next(), (error) => error === reason);
    assert.equal(client.pending, 0);
  },
);

ipcTest(
  "a client SIGKILLed mid-request is dropped: its handler's signal aborts, others are served",
  async () => {
    const name = uniqueName("service");
    let aborts = 0;
    await using server = Server.create((request: { op: string }, { signal }) => {
      if (request.op === "echo") return "served";
      return new Promise((_, fail) =>
        signal.addEventListener("abort", () => {
          aborts++;
          fail(signal.reason);
        })
      );
    }, { name, codec: codecs.json });
    const victim = await startChild(clientFixture, [name, "hang"], "sent");
    await eventually(() => server.clients === 1, 5000, "the client connected");
    victim.child.kill("SIGKILL");
    await victim.done();
    const took = await eventually(() => server.clients === 0, 2000, "the dead client dropped");
    assert.equal(aborts, 1);
    assert.ok(took < 2000, `dropped after ${took} ms`);
    // Killed while it floods the request ring (perhaps holding its lock): the ring goes on.
    const flooder = await startChild(clientFixture, [name, "flood"], "flooding");
    await delay(200);
    flooder.child.kill("SIGKILL");
    await flooder.done();
    await using client = await Client.connect<{ op: string }, string>(name, { codec: codecs.json });
    assert.equal(await client.request({ op: "echo" }, { timeout: 5000 }), "served");
    await eventually(() => server.clients === 1, 2000, "only the live client is left");
  },
);

ipcTest(
  "30 clients fill the request ring's slots; a SIGKILLed client's slot is taken back",
  async () => {
    // The child's request is never answered: it is pending when the child is killed.
    await using server = Server.create(
      (request: { op: string }) => request.op === "sleep" ? new Promise<Json>(() => {}) : request,
      { capacity: 4096, codec: codecs.json },
    );
    await using child = spawnWithFds(clientFixture, {
      args: ["fd", "hang"],
      permissions: { ffi: true },
      fds: { 3: server },
      stdout: "piped",
    });
    const reader = child.stdout!.readable.pipeThrough(new TextDecoderStream()).getReader();
    assert.equal((await reader.read()).value?.trim(), "sent");
    const clients: Client<Json, Json>[] = [];
    const options = { capacity: 4096, codec: codecs.json };
    try {
      for (let i = 0; i < 29; i++) clients.push(await Client.connect(server, options));
      await assert.rejects(Client.connect(server, options), RangeError); // 32 slots in use
      child.kill("SIGKILL");
      await child.status;
      clients.push(await Client.connect(server, options)); // the dead one's slot
      assert.deepEqual(await clients.at(-1)!.request({ op: "echo" }), { op: "echo" });
      await eventually(() => server.clients === 30, 2000, "the dead client dropped");
    } finally {
      await reader.cancel();
      for (const client of clients) await client[Symbol.asyncDispose]();
    }
  },
);

ipcTest(
  "a slow reader holds back a fast stream: the server runs at most 32 parts ahead",
  async () => {
    let produced = 0;
    let consumed = 0;
    let most = 0;
    await using server = Server.create(() =>
      (async function* () {
        for (let i = 0; i < 300; i++) {
          produced++;
          most = Math.max(most, produced - consumed);
          yield new Uint8Array([i & 255]);
        }
      })()
    );
    await using client = await Client.connect(server);
    for await (const part of client.stream(new Uint8Array())) {
      assert.equal(part[0], consumed & 255);
      consumed++;
      if (consumed % 10 === 0) await delay(1);
    }
    assert.equal(consumed, 300);
    assert.ok(most <= 34, `the server ran ${most} parts ahead`);
    assert.ok(most >= 16, `the server ran only ${most} parts ahead`);
  },
);

ipcTest("the server's signal closes it; a handler sees its client's id", async () => {
  const controller = new AbortController();
  const server = Server.create((_: Uint8Array, { client }) => new Uint8Array([client]), {
    signal: controller.signal,
  });
  await using client = await Client.connect(server);
  assert.deepEqual(await client.request(new Uint8Array()), new Uint8Array([client.id]));
  controller.abort();
  assert.equal(server.closed, true);
  await server.done;
  await assert.rejects(client.request(new Uint8Array()), Deno.errors.BrokenPipe);
});

ipcTest("concurrency: 1 runs one handler at a time; the rest wait in the ring", async () => {
  let running = 0;
  let most = 0;
  await using server = Server.create(async (bytes: Uint8Array) => {
    most = Math.max(most, ++running);
    await delay(5);
    running--;
    return bytes;
  }, { concurrency: 1 });
  await using client = await Client.connect(server);
  const answers = await Promise.all(
    Array.from({ length: 10 }, (_, i) => client.request(new Uint8Array([i]))),
  );
  assert.deepEqual(answers.map((bytes) => bytes[0]), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(most, 1);
});

ipcTest(
  "the server SIGKILLed: pending requests reject with BrokenPipe within a second, later ones at once",
  () =>
    withServerChild(async (name, server) => {
      await using client = await Client.connect<Json, Json>(name, { codec: codecs.json });
      const pending = [client.request({ op: "sleep" }), client.request({ op: "sleep" })];
      const stream = Array.fromAsync(client.stream({ op: "sleep" }));
      await delay(100);
      kill(server.child);
      const killed = performance.now();
      for (const request of [...pending, stream]) {
        await assert.rejects(request, Deno.errors.BrokenPipe);
      }
      const took = performance.now() - killed;
      assert.ok(took < 1500, `rejected after ${took} ms`);
      await assert.rejects(client.request({ op: "echo" }), Deno.errors.BrokenPipe);
      // A new client of the dead server's name finds out during its handshake.
      await assert.rejects(
        Client.connect(name, { codec: codecs.json, timeout: 5000 }),
        Deno.errors.BrokenPipe,
      );
    }),
);

ipcTest(
  "server.close() rejects pending requests with BrokenPipe; a closed client or server throws BadResource",
  async () => {
    const server = Server.create(() => new Promise<Uint8Array>(() => {}));
    const client = await Client.connect(server);
    const pending = client.request(new Uint8Array([1]));
    await delay(20);
    server.close();
    server.close(); // harmless
    await assert.rejects(pending, Deno.errors.BrokenPipe);
    await server.done;
    assert.throws(() => server.fd, Deno.errors.BadResource);
    client.close();
    await client[Symbol.asyncDispose](); // closing again is harmless
    await assert.rejects(client.request(new Uint8Array()), Deno.errors.BadResource);
    assert.throws(() => client.stream(new Uint8Array()), Deno.errors.BadResource);

    await using other = Server.create(() => new Promise<Uint8Array>(() => {}));
    const closing = await Client.connect(other);
    const waiting = closing.request(new Uint8Array([2]));
    closing.close();
    await assert.rejects(waiting, Deno.errors.BadResource);
    await closing[Symbol.asyncDispose]();
    await eventually(() => other.clients === 0, 2000, "the closed client dropped");
  },
);

ipcTest("a client in a child connects by the descriptor it was handed", async () => {
  await using server = Server.create((request: { value: Json }) => request.value, {
    codec: codecs.json,
  });
  await using child = spawnWithFds(clientFixture, {
    args: ["fd", "concurrent", "20"],
    permissions: { ffi: true },
    fds: { 3: server },
    stdout: "piped",
  });
  const { stdout, status } = await child.output();
  assert.equal(status.success, true);
  assert.equal(new TextDecoder().decode(stdout).trim(), "ok 20");
});

ipcTest(
  "bad arguments are TypeError/RangeError before anything is made; wrong targets are typed errors",
  async () => {
    assert.throws(() => Server.create("no" as never), TypeError);
    assert.throws(() => Server.create(() => 1 as never, { concurrency: 0 }), RangeError);
    assert.throws(() => Server.create(() => 1 as never, null as never), TypeError);
    assert.throws(() => Server.create(() => 1 as never, { codec: {} as never }), TypeError);
    await assert.rejects(Client.connect(uniqueName("missing")), Deno.errors.NotFound);
    using channel = Channel.create({ capacity: 4096 });
    await assert.rejects(Client.connect(channel), Deno.errors.InvalidData);
    await using server = Server.create((bytes: Uint8Array) => bytes, { capacity: 4096 });
    await assert.rejects(Client.connect(server, { timeout: -1 }), RangeError);
    await assert.rejects(
      Client.connect(server, { codec: codecs.json }),
      (error) =>
        error instanceof TypeError && /its codec is "bytes", not "json"/.test(error.message),
    );
    await using client = await Client.connect(server);
    await assert.rejects(client.request(new Uint8Array(5000)), RangeError);
    // An answer larger than the client's ring comes back as the server's RangeError.
    await using big = Server.create(() => new Uint8Array(5000));
    await using small = await Client.connect(big, { capacity: 4096 });
    const tooLarge = await small.request(new Uint8Array()).catch((error) => error);
    assert.ok(tooLarge instanceof RemoteError && tooLarge.remoteName === "RangeError", tooLarge);
    await assert.rejects(client.request("text" as never), TypeError);
    await assert.rejects(client.request(new Uint8Array(1), { timeout: NaN }), RangeError);
    assert.deepEqual(await client.request(new Uint8Array([4])), new Uint8Array([4]));
  },
);

ipcTest(
  "a SIGKILLed server's name is taken over by the next Server.create; its old clients get BrokenPipe",
  () =>
    withServerChild(async (name, server) => {
      await using old = await Client.connect<Json, Json>(name, { codec: codecs.json });
      const pending = old.request({ op: "sleep" });
      // A live server's name is not taken.
      assert.throws(() => Server.create((v: Json) => v, { name }), Deno.errors.AlreadyExists);
      kill(server.child);
      await server.child.status;
      await using _restarted = Server.create((v: Json) => ({ again: v }), {
        name,
        codec: codecs.json,
      });
      await assert.rejects(pending, Deno.errors.BrokenPipe);
      await assert.rejects(old.request({ op: "echo" }), Deno.errors.BrokenPipe);
      await using client = await Client.connect<Json, Json>(name, { codec: codecs.json });
      assert.deepEqual(await client.request(1, { timeout: 5000 }), { again: 1 });
      // The restarted server is alive: its name is not taken over either.
      assert.throws(() => Server.create((v: Json) => v, { name }), Deno.errors.AlreadyExists);
    }),
);

ipcTest(
  "two processes restarting a SIGKILLed server's name at once: one wins, the other gets AlreadyExists",
  () =>
    withServerChild(async (name, server) => {
      kill(server.child);
      await server.child.status;
      const at = String(Date.now() + 700); // both started by then, on a loaded machine too
      const racers = [0, 1].map(() =>
        spawnDeno(fixture("service_restart.ts"), [name, at], { ...FLAGS, stdin: "" })
      );
      const timer = setTimeout(() => racers.forEach((racer) => kill(racer)), 30_000);
      try {
        const said = await Promise.all(racers.map(async (racer) => {
          const reader = racer.stdout.pipeThrough(new TextDecoderStream()).getReader();
          const { value } = await reader.read();
          await reader.cancel();
          return value?.trim();
        }));
        assert.deepEqual(said.sort(), ["AlreadyExists", "won"]);
        // The winner serves under the name.
        await using client = await Client.connect<Json, Json>(name, { codec: codecs.json });
        assert.equal(await client.request("hi", { timeout: 5000 }), "hi");
      } finally {
        for (const racer of racers) await racer.stdin.close().catch(() => {});
        const statuses = await Promise.all(racers.map((racer) => racer.status));
        clearTimeout(timer);
        await Promise.all(racers.map((racer) => racer.stderr.cancel()));
        assert.deepEqual(statuses.map((status) => status.code), [0, 0]);
      }
    }),
);

ipcTest("a name that is no killed service is not taken over: AlreadyExists", () => {
  const name = uniqueName("service");
  // A channel whose creator closed (it persisted its name): no creator died.
  Channel.create({ name, capacity: 4096, multi: true, persist: true }).close();
  try {
    assert.throws(() => Server.create((v: Uint8Array) => v, { name }), Deno.errors.AlreadyExists);
  } finally {
    SharedMemory.unlink(name);
  }
  // Plain shared memory of another kind.
  using _memory = SharedMemory.create(name, { size: 4096 });
  assert.throws(() => Server.create((v: Uint8Array) => v, { name }), Deno.errors.AlreadyExists);
});

ipcTest(
  "a handler that ignores its abort signal gives back its concurrency place when its request is given up",
  async () => {
    const late = Promise.withResolvers<Uint8Array>();
    let calls = 0;
    await using server = Server.create((bytes: Uint8Array) => {
      calls++;
      return bytes[0] === 0 ? late.promise : bytes; // request 0 ignores its signal
    }, { concurrency: 1 });
    await using client = await Client.connect(server);
    const first = client.request(new Uint8Array([0]), { timeout: 80 });
    // Waiting behind it, and given up first: its handler never starts.
    const queued = client.request(new Uint8Array([9]), { timeout: 20 });
    await assert.rejects(queued, Deno.errors.TimedOut);
    await assert.rejects(first, Deno.errors.TimedOut);
    // Its handler still runs, yet the next request is served at once.
    const next = await client.request(new Uint8Array([1]), { timeout: 2000 });
    assert.deepEqual(next, new Uint8Array([1]));
    assert.equal(calls, 2);
    // What the ignoring handler throws at last is dropped: no unhandled rejection, no answer.
    late.reject(new Error("too late"));
    await delay(20);
    assert.equal(client.pending, 0);
    assert.deepEqual(await client.request(new Uint8Array([2])), new Uint8Array([2]));
  },
);

ipcTest(
  "keepReceiverLock: the server's ring is received from without a lock per request, and the lock is given back at close",
  () => {
    const kept = Channel.create({ capacity: 4096, multi: true });
    using other = Channel.fromFd(kept);
    assert.equal(keepReceiverLock(kept), true);
    assert.equal(keepReceiverLock(kept), true); // held already
    assert.equal(keepReceiverLock(other), false); // another handle holds it
    // Another receiver of this process would wait for ever: it is refused (EDEADLK) instead.
    assert.throws(() => other.tryReceive(), (error: Error) => /EDEADLK/.test(String(error)));
    other.trySend(new Uint8Array([1]));
    assert.deepEqual(kept.tryReceive(), new Uint8Array([1]));
    kept.close();
    other.trySend(new Uint8Array([2]));
    assert.deepEqual(other.tryReceive(), new Uint8Array([2])); // the lock is free again
  },
);

ipcTest(
  "a codec that makes something other than a Uint8Array: the request is a TypeError, an answer a RemoteError",
  async () => {
    // Before: the string was framed as its length in zero bytes.
    const broken = {
      name: "not-bytes",
      encode: (value: unknown) => (value === "bad" ? "abc" : new Uint8Array([1])),
      decode: () => "ok",
    } as unknown as Codec<string>;
    await using server = Server.create(() => "bad", { codec: broken });
    await using client = await Client.connect(server, { codec: broken });
    await assert.rejects(client.request("bad", { timeout: 5000 }), TypeError);
    await assert.rejects(client.request("good", { timeout: 5000 }), (error: unknown) => {
      assert.ok(error instanceof RemoteError, String(error));
      assert.match(error.message, /not a Uint8Array/);
      return true;
    });
  },
);
