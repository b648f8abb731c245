import assert from "node:assert/strict";
import {
  Channel,
  OwnedFd,
  pipe,
  ReceivedMessage,
  SharedMemory,
  socketpair,
  spawn,
  UnixListener,
  UnixSocket,
} from "../mod.ts";
import {
  assertSucceeded,
  collect,
  fixture,
  ipcTest,
  runDeno,
  spawnDeno,
  spawnReady,
  TEST_PREFIX,
  thrown,
} from "./helpers.ts";

const peer = fixture("unix_peer.ts");
let counter = 0;
/** An abstract name no other test or run uses. */
const abstractName = () => `${TEST_PREFIX}-unix-${Deno.pid}-${++counter}`;

/** This process's open descriptors, as "fd -> target" (the directory's own left out). */
function openFds(): string[] {
  return [...Deno.readDirSync("/proc/self/fd")].flatMap(({ name }) => {
    try {
      return [`${name} -> ${Deno.readLinkSync(`/proc/self/fd/${name}`)}`];
    } catch {
      return []; // the descriptor that read the directory, closed since
    }
  });
}

/**
 * How many sockets and memory files this process has open: what these tests pass around.
 * (Deno opens pipes of its own when it first spawns a child, which are no leak.)
 */
function fdCount(): number {
  return openFds().filter((fd) => /-> (socket:|\/memfd:)/.test(fd)).length;
}

/** A unix_peer.ts child connected to this process, and this side's socket. */
interface Peer extends Disposable {
  child: Deno.ChildProcess;
  socket: UnixSocket;
}

/**
 * Starts `unix_peer.ts COMMAND NAME` against a new abstract listener and accepts its connection.
 * The child is killed with SIGKILL after `ms`, so that a hang fails the test; disposing the
 * peer closes the socket and stops that watchdog.
 */
async function acceptPeer(
  command: string,
  options: { type?: "stream" | "seqpacket"; flags?: string[]; ms?: number } = {},
): Promise<Peer> {
  const name = abstractName();
  using listener = UnixListener.listen({ abstract: name }, { type: options.type });
  const child = spawnDeno(peer, [command, name], { flags: options.flags });
  const timer = setTimeout(() => child.kill("SIGKILL"), options.ms ?? 30_000);
  try {
    const socket = await listener.accept({ timeout: 20_000 });
    return {
      child,
      socket,
      [Symbol.dispose]() {
        clearTimeout(timer);
        socket.close();
      },
    };
  } catch (error) {
    clearTimeout(timer);
    child.kill("SIGKILL");
    await collect(child);
    throw error;
  }
}

ipcTest("a SharedMemory sent to a running process is written there and read here", async () => {
  using connected = await acceptPeer("memory");
  const { child, socket } = connected;
  assert.equal(socket.peerCredentials().pid, child.pid);
  using memory = SharedMemory.anonymous({ size: 4096 });
  await socket.send("segment", { fds: [memory] });
  using answer = (await socket.receive({ timeout: 20_000 }))!;
  assert.equal(answer.text, "done");
  const text = new TextDecoder().decode(memory.bytes.subarray(0, memory.bytes.indexOf(0)));
  assert.equal(text, `written by ${child.pid}`);
  assertSucceeded(await collect(child));
});

ipcTest("a Channel handed to a running process carries its messages back", async () => {
  using connected = await acceptPeer("channel");
  const { child, socket } = connected;
  using channel = Channel.create({ capacity: 4096 });
  await socket.send("channel", { fds: [channel] });
  const message = await channel.receive({ timeout: 20_000 });
  assert.equal(new TextDecoder().decode(message), `hello from ${child.pid}`);
  await socket.send("bye");
  assertSucceeded(await collect(child));
});

ipcTest(
  "socketpair: one end handed to a child through spawn fds, peer credentials on both sides",
  async () => {
    using pair = socketpair();
    const child = spawn(Deno.execPath(), {
      args: ["run", "--allow-ffi", peer, "inherited"],
      fds: { 3: pair[1] },
      stdout: "null",
    });
    pair[1].close(); // the child has its own copy
    using message = (await pair[0].receive({ timeout: 20_000 }))!;
    const report = JSON.parse(message.text);
    assert.equal(report.pid, child.pid);
    // The pair was made here: the child's peer is this process.
    assert.deepEqual(report.peer, { pid: Deno.pid, uid: Deno.uid(), gid: Deno.gid() });
    assert.equal((await child.status).success, true);
    assert.equal(await pair[0].receive({ timeout: 20_000 }), null);
  },
);

ipcTest("SO_PEERCRED names the process that connected, its uid and gid", async () => {
  using connected = await acceptPeer("memory");
  const { child, socket } = connected;
  assert.deepEqual(socket.peerCredentials(), {
    pid: child.pid,
    uid: Deno.uid(),
    gid: Deno.gid(),
  });
  socket.close();
  const output = await collect(child);
  assert.notEqual(output.code, 0); // the child's receive saw the end
});

ipcTest(
  "closing a listener whose socket file another server took over leaves that server's file",
  async () => {
    const dir = Deno.makeTempDirSync({ prefix: `${TEST_PREFIX}-` });
    const path = `${dir}/restarted.sock`;
    const before = UnixListener.listen(path);
    const after = await spawnReady(peer, ["serve", path], {
      flags: ["--allow-ffi", `--allow-read=${dir}`, `--allow-write=${dir}`],
    });
    let finished = false;
    try {
      before.close(); // the file at the path is the new server's now: it stays
      assert.ok(Deno.lstatSync(path).isSocket, "the new server's socket file is still there");
      using client = await UnixSocket.connect({ path }, { timeout: 5000 });
      assert.equal(
        (await client.receive({ timeout: 5000 }))!.text,
        `served by ${after.process.pid}`,
      );
      client.close();
      finished = true;
      const { stderr, status } = await after.finish();
      assert.equal(status.code, 0, stderr);
      assert.throws(() => Deno.lstatSync(path), Deno.errors.NotFound, "its own close removed it");
    } finally {
      if (!finished) await after.kill();
      Deno.removeSync(dir, { recursive: true });
    }
  },
);

ipcTest(
  "a path listener makes a 0o600 socket file whatever the umask, and removes it on close",
  async () => {
    const dir = Deno.makeTempDirSync({ prefix: `${TEST_PREFIX}-` });
    try {
      const path = `${dir}/server.sock`;
      const listener = UnixListener.listen(path);
      assert.equal(listener.address, path);
      assert.equal(Deno.lstatSync(path).mode! & 0o777, 0o600);
      assert.ok(Deno.lstatSync(path).isSocket);
      using client = await UnixSocket.connect({ path }, { timeout: 1000 });
      using server = await listener.accept({ timeout: 1000 });
      await client.send("over a path");
      assert.equal((await server.receive())!.text, "over a path");
      assert.throws(() => UnixListener.listen(path), Deno.errors.AddrInUse);
      listener.close();
      listener.close();
      assert.throws(() => Deno.lstatSync(path), Deno.errors.NotFound);
      await assert.rejects(UnixSocket.connect(path), Deno.errors.NotFound);
      using _wide = UnixListener.listen(`${dir}/wide.sock`, { mode: 0o666 });
      assert.equal(Deno.lstatSync(`${dir}/wide.sock`).mode! & 0o777, 0o666);
      UnixListener.listen(`${dir}/kept.sock`, { persist: true }).close();
      assert.ok(Deno.lstatSync(`${dir}/kept.sock`).isSocket); // kept, as asked
      assert.throws(() => UnixListener.listen(`${dir}/kept.sock`), Deno.errors.AddrInUse);
      assert.throws(
        () => UnixListener.listen(`${dir}/x.sock`, { persist: "no" as never }),
        TypeError,
      );
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
);

ipcTest(
  "abstract names: no file, taken once, and free again when the listener closes",
  async () => {
    const name = abstractName();
    const listener = UnixListener.listen({ abstract: name });
    assert.equal(listener.address, `@${name}`);
    assert.throws(() => UnixListener.listen(`\0${name}`), Deno.errors.AddrInUse);
    using _client = UnixSocket.connectSync(`\0${name}`);
    using server = listener.acceptSync({ timeout: 1000 });
    assert.equal(server.peerCredentials().pid, Deno.pid);
    listener.close();
    await assert.rejects(
      UnixSocket.connect({ abstract: name }),
      Deno.errors.ConnectionRefused,
    );
    using again = UnixListener.listen({ abstract: name });
    assert.equal(again.tryAccept(), undefined);
  },
);

ipcTest(
  "a child with only --allow-ffi may not listen at or connect to a path, but may use an abstract name",
  async () => {
    const dir = Deno.makeTempDirSync({ prefix: `${TEST_PREFIX}-` });
    try {
      const path = `${dir}/refused.sock`;
      const output = assertSucceeded(
        await runDeno(peer, ["listen", path], { flags: ["--allow-ffi"], timeout: 30_000 }),
      );
      assert.deepEqual(JSON.parse(output.stdout), {
        listen: "NotCapable",
        connect: "NotCapable",
        abstract: "ok",
      });
      assert.deepEqual([...Deno.readDirSync(dir)], []); // nothing was created
      const granted = assertSucceeded(
        await runDeno(peer, ["listen", path], {
          flags: ["--allow-ffi", `--allow-read=${dir}`, `--allow-write=${dir}`],
          timeout: 30_000,
        }),
      );
      assert.deepEqual(JSON.parse(granted.stdout), {
        listen: "ok",
        connect: "NotFound", // the listener it made is closed and its file removed
        abstract: "ok",
      });
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
);

ipcTest(
  "MSG_CTRUNC: descriptors beyond maxFds are closed, the rest owned by the message",
  async () => {
    using pair = socketpair({ type: "seqpacket" });
    using memory = SharedMemory.anonymous({ size: 4096 });
    const before = fdCount();
    await pair[0].send("five", { fds: [memory, memory, memory, memory, memory] });
    const message = (await pair[1].receive({ maxFds: 2 }))!;
    assert.equal(message.fdCount, 2);
    assert.equal(message.fdsTruncated, true);
    assert.equal(fdCount(), before + 2);
    using taken = message.takeFd(1);
    assert.equal(taken.inheritable, false); // MSG_CMSG_CLOEXEC
    assert.throws(() => message.takeFd(1), Deno.errors.BadResource);
    assert.throws(() => message.takeFd(2), RangeError);
    message.close();
    assert.equal(fdCount(), before + 1);
    assert.throws(() => message.takeFd(0), Deno.errors.BadResource);
    taken.close();
    assert.equal(fdCount(), before);
    // No room at all: every descriptor is dropped by the kernel.
    await pair[0].send("none", { fds: [memory] });
    using bare = (await pair[1].receive())!;
    assert.equal(bare.fdCount, 0);
    assert.equal(bare.fdsTruncated, true);
    assert.equal(fdCount(), before);
  },
);

ipcTest(
  "10,000 descriptors sent to a running process, some truncated or unclaimed: its fd count returns to where it started",
  async () => {
    const before = fdCount();
    using memory = SharedMemory.anonymous({ size: 4096 });
    let child: Deno.ChildProcess;
    {
      using connected = await acceptPeer("count", {
        type: "seqpacket",
        flags: ["--allow-all"], // to count its descriptors in /proc/self/fd
        ms: 120_000,
      });
      child = connected.child;
      const { socket } = connected;
      let sent = 0;
      for (let i = 0; sent < 10_000; i++) {
        const count = 1 + (i % 4);
        await socket.send(String(i), { fds: Array(count).fill(memory) });
        sent += count;
        if ((i + 1) % 50 === 0) {
          assert.equal((await socket.receive({ timeout: 20_000 }))!.text, "ack");
        }
      }
    }
    const output = assertSucceeded(await collect(child));
    const report = JSON.parse(output.stdout);
    assert.equal(report.after, report.before, output.stdout);
    assert.ok(report.truncated > 1000, output.stdout);
    assert.ok(report.arrived > 1000 && report.taken > 500, output.stdout);
    // This side too: the memory is still open, the socket closed.
    assert.equal(fdCount(), before + 1, openFds().join("\n"));
  },
);

ipcTest(
  "a peer SIGKILLed while it sends descriptors: every message read to the end, no descriptor left",
  async () => {
    const before = fdCount();
    let child: Deno.ChildProcess;
    {
      using connected = await acceptPeer("flood");
      child = connected.child;
      const { socket } = connected;
      for (let i = 0; i < 20; i++) {
        using message = (await socket.receive({ maxFds: 3, timeout: 20_000 }))!;
        assert.ok(message.fdCount > 0 || message.bytes.length > 0);
      }
      child.kill("SIGKILL");
      const status = await child.status;
      assert.equal(status.signal, "SIGKILL");
      // What it sent before it died is still there to read, then the end.
      const next = () => socket.receive({ maxFds: 2, timeout: 20_000 });
      for (let message = await next(); message !== null; message = await next()) message.close();
      // Sending to the dead peer is a typed error, not a signal that kills this process.
      const error = await socket.send("anyone?").catch((error) => error);
      assert.ok(
        error instanceof Deno.errors.BrokenPipe || error instanceof Deno.errors.ConnectionReset,
        String(error),
      );
    }
    await child.stdout.cancel();
    await child.stderr.cancel();
    assert.equal(fdCount(), before);
  },
);

ipcTest(
  "closed sockets, listeners and messages throw BadResource; a pending receive ends with it",
  async () => {
    const pair = socketpair();
    const pending = pair[1].receive();
    await new Promise((resolve) => setTimeout(resolve, 20));
    pair[1].close();
    await assert.rejects(pending, Deno.errors.BadResource);
    pair[1].close(); // harmless
    assert.throws(() => pair[1].fd, Deno.errors.BadResource);
    assert.throws(() => pair[1].peerCredentials(), Deno.errors.BadResource);
    assert.throws(() => pair[1].sendSync("x"), Deno.errors.BadResource);
    assert.throws(() => pair[1].tryReceive(), Deno.errors.BadResource);
    assert.throws(() => pair[1].shutdown(), Deno.errors.BadResource);
    await assert.rejects(pair[1].send("x"), Deno.errors.BadResource);
    pair[Symbol.dispose]();
    // Sending a closed handle's descriptor is refused before any call.
    using other = socketpair();
    await assert.rejects(other[0].send("x", { fds: [pair[0]] }), Deno.errors.BadResource);

    const listener = UnixListener.listen({ abstract: abstractName() });
    const accepting = listener.accept();
    listener.close();
    await assert.rejects(accepting, Deno.errors.BadResource);
    assert.throws(() => listener.tryAccept(), Deno.errors.BadResource);
    const iterated: unknown[] = [];
    for await (const socket of listener) iterated.push(socket); // ends at once
    assert.deepEqual(iterated, []);
  },
);

ipcTest(
  "receive waits end with TimedOut or the signal's reason, and never block the event loop",
  async () => {
    using pair = socketpair();
    const started = performance.now();
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    await assert.rejects(pair[1].receive({ timeout: 100 }), Deno.errors.TimedOut);
    clearInterval(ticker);
    assert.ok(ticks >= 5, `the event loop ran ${ticks} times in ${performance.now() - started} ms`);
    const controller = new AbortController();
    const waiting = pair[1].receive({ signal: controller.signal });
    controller.abort(new Error("stop"));
    await assert.rejects(waiting, /stop/);
    assert.throws(() => pair[1].receiveSync({ timeout: 10 }), Deno.errors.TimedOut);
    assert.equal(pair[1].tryReceive(), undefined);
  },
);

ipcTest("stream and seqpacket: boundaries, MSG_TRUNC, shutdown, empty messages", async () => {
  using packets = socketpair({ type: "seqpacket" });
  assert.equal(packets[0].type, "seqpacket");
  await packets[0].send("one");
  await packets[0].send("two");
  await packets[0].send(new Uint8Array(0));
  await packets[0].send("a longer message");
  assert.equal((await packets[1].receive())!.text, "one");
  assert.equal((await packets[1].receive())!.text, "two");
  assert.equal((await packets[1].receive())!.bytes.length, 0); // an empty message, not the end
  using cut = (await packets[1].receive({ maxBytes: 4 }))!;
  assert.deepEqual([cut.text, cut.truncated], ["a lo", true]);
  packets[0].shutdown("write");
  assert.equal(await packets[1].receive(), null);

  using stream = socketpair();
  assert.throws(() => stream[0].sendSync("", { fds: [stream[0]] }), RangeError);
  const big = new Uint8Array(1 << 20).fill(7);
  const sending = stream[0].send(big);
  let received = 0;
  while (received < big.length) received += (await stream[1].receive())!.bytes.length;
  assert.equal(await sending, big.length);
  assert.equal(received, big.length);
  // fds sent with a pipe end and another socket arrive as OwnedFd
  using p = pipe();
  await stream[0].send("ends", { fds: [p.writer, stream[0], new OwnedFd(p.reader.fd).dup()] });
  using message = (await stream[1].receive({ maxFds: 3 }))!;
  const [writer, socket, reader] = message.takeFds();
  using s = UnixSocket.fromFd(socket!);
  assert.equal(s.type, "stream");
  writer!.close();
  reader!.close();
  assert.throws(() => UnixSocket.fromFd(p.reader), Deno.errors.NotSupported);
});

ipcTest("descriptors of each message are its own, however many the one before carried", () => {
  // One control buffer serves every sendmsg and recvmsg: nothing of a longer message before
  // may show in a shorter one, and a receive with room for fewer still drops the rest.
  using pair = socketpair({ type: "seqpacket" });
  const segments = [1, 2, 3].map((pages) => SharedMemory.anonymous({ size: pages * 4096 }));
  using _segments = { [Symbol.dispose]: () => segments.forEach((memory) => memory.close()) };
  const before = fdCount();
  const sizes = (message: ReceivedMessage) =>
    message.takeFds().map((fd) => {
      using memory = SharedMemory.fromFd(fd);
      return memory.size / 4096;
    });
  const rounds: [number[], number, number[], boolean][] = [
    [[0, 1, 2], 3, [1, 2, 3], false],
    [[2], 3, [3], false],
    [[], 3, [], false],
    [[1, 0, 2], 1, [2], true],
    [[0], 253, [1], false],
  ];
  for (const [sent, maxFds, expected, cut] of rounds) {
    pair[0].sendSync("x", { fds: sent.map((i) => segments[i]!) });
    using message = pair[1].receiveSync({ maxFds, timeout: 1000 })!;
    assert.equal(message.fdsTruncated, cut);
    assert.deepEqual(sizes(message), expected, `sent ${sent}, room for ${maxFds}`);
  }
  assert.equal(fdCount(), before, "every descriptor received was closed");
});

ipcTest("bad arguments are TypeErrors and RangeErrors before any call", async () => {
  using pair = socketpair();
  const long = "x".repeat(108);
  assert.throws(() => UnixListener.listen({ abstract: long }), RangeError);
  assert.throws(() => UnixListener.listen(`/tmp/${long}`), RangeError);
  assert.throws(() => UnixListener.listen(""), TypeError);
  assert.throws(() => UnixListener.listen("/tmp/a\0b"), TypeError);
  assert.throws(() => UnixListener.listen({ path: "/tmp/x", abstract: "y" } as never), TypeError);
  assert.throws(() => UnixListener.listen(42 as never), TypeError);
  assert.throws(() => UnixListener.listen("\0x", { type: "dgram" as never }), TypeError);
  assert.throws(() => UnixListener.listen("\0x", { backlog: -1 }), RangeError);
  assert.throws(() => UnixListener.listen("\0x", { mode: 0o1777 }), RangeError);
  // Prototype keys are no options.
  const polluted = Object.create({ type: "dgram" });
  UnixListener.listen(`\0${abstractName()}`, polluted).close();
  await assert.rejects(UnixSocket.connect("\0x", { timeout: -1 }), RangeError);
  assert.throws(() => socketpair({ type: "raw" as never }), TypeError);
  assert.throws(() => pair[0].sendSync(42 as never), TypeError);
  assert.throws(() => pair[0].sendSync("x", { fds: 3 as never }), TypeError);
  assert.throws(() => pair[0].sendSync("x", { fds: [-1] }), RangeError);
  assert.throws(() => pair[0].sendSync("x", { fds: Array(254).fill(0) }), RangeError);
  assert.throws(() => pair[0].tryReceive({ maxFds: 254 }), RangeError);
  assert.throws(() => pair[0].tryReceive({ maxBytes: 0 }), RangeError);
  assert.throws(() => pair[0].shutdown("sideways" as never), TypeError);
  const error = thrown(() => new (ReceivedMessage as never as new () => unknown)());
  assert.ok(error instanceof TypeError && /Illegal constructor/.test(error.message));
  assert.throws(() => new (UnixSocket as never as new () => unknown)(), TypeError);
  assert.throws(() => UnixSocket.fromFd(2 ** 31), RangeError);
});

ipcTest(
  "sockets, listeners and received messages dropped without close() release their descriptors on GC",
  async () => {
    const output = await runDeno(fixture("unix_gc.ts"), [], {
      flags: ["--allow-all", "--v8-flags=--expose-gc"],
      timeout: 30_000,
    });
    assert.equal(output.code, 0, output.stderr);
    assert.equal(output.stdout.trim(), "dropped 420 left 0");
  },
);

ipcTest(
  "connect waits while the listener's backlog is full: until an accept, its timeout or its signal",
  async () => {
    const name = { abstract: abstractName() };
    using listener = UnixListener.listen(name, { backlog: 0 });
    using first = UnixSocket.connectSync(name, { timeout: 1000 }); // the one the backlog holds
    assert.throws(() => UnixSocket.connectSync(name, { timeout: 30 }), Deno.errors.TimedOut);
    await assert.rejects(UnixSocket.connect(name, { timeout: 30 }), Deno.errors.TimedOut);
    const controller = new AbortController();
    const aborted = UnixSocket.connect(name, { signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await assert.rejects(aborted, (error: Error) => error.name === "AbortError");
    const waiting = UnixSocket.connect(name, { timeout: 5000 });
    await new Promise((resolve) => setTimeout(resolve, 30));
    using accepted = listener.acceptSync({ timeout: 1000 }); // room again: the wait connects
    using second = await waiting;
    assert.equal(accepted.peerCredentials().pid, Deno.pid);
    assert.equal(first.closed || second.closed, false);
  },
);

ipcTest(
  "for await over a socket: every message with its descriptors, until the end or a close",
  async () => {
    using pair = socketpair({ type: "seqpacket" });
    using memory = SharedMemory.anonymous({ size: 4096 });
    const before = fdCount();
    pair[0].sendSync("one", { fds: [memory] });
    pair[0].sendSync("two");
    pair[0].shutdown("write");
    const seen: string[] = [];
    for await (using message of pair[1].messages({ maxFds: 1 })) {
      seen.push(`${message.text}:${message.fdCount}`);
    }
    assert.deepEqual(seen, ["one:1", "two:0"]);
    assert.equal(fdCount(), before); // the descriptor nobody took was closed with its message
    using other = socketpair();
    const iterating = (async () => {
      for await (const _ of other[1]) throw new Error("no message was sent");
    })();
    setTimeout(() => other[1].close(), 20);
    await iterating; // ends quietly once closed
    await assert.rejects(
      pair[1].messages({ maxFds: -1 }).next(),
      RangeError,
    );
  },
);

ipcTest(
  "a listening socket handed to a child through spawn fds: the child accepts on it",
  async () => {
    const dir = Deno.makeTempDirSync({ prefix: `${TEST_PREFIX}-` });
    try {
      const path = `${dir}/activated.sock`;
      using listener = UnixListener.listen(path);
      const child = spawn(Deno.execPath(), {
        args: ["run", "--allow-ffi", peer, "accept-inherited"],
        fds: { 3: listener },
        stdout: "null",
      });
      using client = await UnixSocket.connect(path, { timeout: 10_000 });
      using answer = (await client.receive({ timeout: 20_000 }))!;
      assert.equal(answer.text, `accepted by ${child.pid} at ${path}`);
      assert.equal((await child.status).success, true);
      assert.ok(Deno.lstatSync(path).isSocket); // the child's close left the parent's file
      assert.throws(() => UnixListener.fromFd(client), Deno.errors.NotSupported);
      assert.throws(() => UnixSocket.fromFd(listener), Deno.errors.NotSupported);
      listener.close();
      assert.throws(() => Deno.lstatSync(path), Deno.errors.NotFound);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
);
