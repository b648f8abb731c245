import assert from "node:assert/strict";
import {
  Channel,
  codecs,
  MessageQueue,
  pipe,
  select,
  selectable,
  Semaphore,
  SharedMemory,
  signals,
  spawnDeno,
  Topic,
} from "../mod.ts";
import { fixture, ipcTest, uniqueName } from "./helpers.ts";
import { consume } from "./fixtures/select_consume.ts";
import { useFutexWaitv } from "../src/select/futex.ts";

const child = fixture("select_child.ts");
const permissions = { ffi: true, read: true, run: true } as const;

/** Resolves after `ms`. */
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Idle sources to mix in: a channel, a semaphore, a message queue and a pipe. */
function idleSources() {
  const channel = Channel.create();
  const semaphore = Semaphore.create(uniqueName("idle"));
  const queue = MessageQueue.create(uniqueName("idle"));
  const p = pipe();
  return {
    list: [channel, semaphore, queue, p.reader] as const,
    [Symbol.dispose]() {
      channel.close();
      semaphore.close();
      queue.close();
      p[Symbol.dispose]();
    },
  };
}

ipcTest("select() resolves with the channel a child sends on, and takes its message", async () => {
  using idle = idleSources();
  using channel = Channel.create({ codec: codecs.text, role: "receive" });
  await using sender = spawnDeno(child, {
    args: ["channel", "150"],
    permissions,
    fds: { 3: channel },
  });
  const ready = await select([...idle.list, channel], { timeout: 60_000 });
  assert.equal(ready.source, channel);
  assert.equal(ready.index, 4);
  assert.equal(ready.value, "from child");
  assert.equal(channel.tryReceive(), undefined); // taken, not only seen
  assert.ok((await sender.status).success);
});

ipcTest(
  "select() takes what a child publishes to a topic, then reports the topic's end",
  async () => {
    using idle = idleSources();
    using topic = Topic.create({ codec: codecs.text, role: "subscribe" });
    using subscription = topic.subscribe();
    await using publisher = spawnDeno(child, {
      args: ["topic", "150"],
      permissions,
      fds: { 3: topic },
    });
    const ready = await select([...idle.list, subscription], { timeout: 60_000 });
    assert.equal(ready.source, subscription);
    assert.equal(ready.value, "tick");
    assert.equal(subscription.tryReceive(), undefined); // taken, not only seen
    const ended = await select([...idle.list, subscription], { timeout: 60_000 });
    assert.equal(ended.source, subscription);
    assert.ok(ended.error instanceof Deno.errors.UnexpectedEof, String(ended.error));
    assert.ok((await publisher.status).success);
  },
);

for (const kind of ["named", "placed"] as const) {
  ipcTest(`select() takes a count of a ${kind} semaphore posted by a child`, async () => {
    using idle = idleSources();
    const name = uniqueName("sem");
    using memory = SharedMemory.create(name, { size: 4096 });
    using semaphore = kind === "named" ? Semaphore.create(name) : Semaphore.init(memory, 0);
    const args = kind === "named" ? ["post", name, "150"] : ["post-placed", name, "150"];
    await using poster = spawnDeno(child, { args, permissions });
    const ready = await select([semaphore, ...idle.list], { timeout: 60_000 });
    assert.equal(ready.source, semaphore);
    assert.equal(semaphore.value, 0); // the count was taken
    assert.ok(ready.index === 0 && ready.value !== undefined); // narrows the value to a permit
    ready.value.release();
    assert.equal(semaphore.value, 1);
    assert.ok((await poster.status).success);
  });
}

ipcTest("select() takes the message a child sends to a message queue", async () => {
  using idle = idleSources();
  const name = uniqueName("mq");
  using queue = MessageQueue.create(name);
  await using sender = spawnDeno(child, { args: ["mq", name, "150"], permissions });
  const ready = await select([...idle.list, queue], { timeout: 60_000 });
  assert.ok(ready.index === 4 && ready.source === queue);
  assert.equal(new TextDecoder().decode(ready.value?.data), "mq");
  assert.equal(queue.tryReceive(), null);
  assert.ok((await sender.status).success);
});

ipcTest("select() reads what a child writes to a pipe, then null at end of file", async () => {
  using idle = idleSources();
  using p = pipe();
  await using writer = spawnDeno(child, {
    args: ["pipe", "150"],
    permissions,
    fds: { 3: p.writer },
  });
  p.writer.close();
  const ready = await select([...idle.list, p.reader], { timeout: 60_000 });
  assert.ok(ready.index === 4 && ready.source === p.reader);
  assert.equal(new TextDecoder().decode(ready.value!), "pipe");
  assert.ok((await writer.status).success);
  assert.equal((await select([p.reader], { timeout: 60_000 })).value, null);
});

ipcTest("select() resolves with a child's exit status", async () => {
  using idle = idleSources();
  await using exiting = spawnDeno(child, { args: ["exit", "7"], permissions });
  const ready = await select([...idle.list, exiting], { timeout: 60_000 });
  assert.equal(ready.source, exiting);
  assert.deepEqual(ready.value, { state: "exited", code: 7, success: false });
});

ipcTest("select() takes a signal that a child sends", async () => {
  using idle = idleSources();
  using incoming = signals("SIGUSR1");
  await using sender = spawnDeno(child, {
    args: ["signal", String(Deno.pid), "150"],
    permissions,
  });
  const ready = await select([...idle.list, incoming], { timeout: 60_000 });
  assert.equal(ready.source, incoming);
  assert.equal(ready.value, "SIGUSR1");
  assert.ok((await sender.status).success);
});

ipcTest("select() is fair: two always-ready channels do not starve a third", async () => {
  using busyA = Channel.create({ codec: codecs.json });
  using busyB = Channel.create({ codec: codecs.json });
  using quiet = Channel.create({ codec: codecs.json });
  for (let i = 0; i < 50; i++) {
    busyA.sendSync("a");
    busyB.sendSync("b");
  }
  setTimeout(() => quiet.sendSync("q"), 20);
  const served: string[] = [];
  while (!served.includes("q")) {
    const ready = await select([busyA, busyB, quiet], { timeout: 60_000 });
    served.push(ready.value as string);
    await delay(1);
    assert.ok(served.length < 90, `the quiet channel was not served: ${served.join("")}`);
  }
  // Once all three are ready, any three calls in a row serve each once.
  quiet.sendSync("q");
  const round = new Set<unknown>();
  for (let i = 0; i < 3; i++) round.add((await select([busyA, busyB, quiet])).value);
  assert.deepEqual([...round].sort(), ["a", "b", "q"]);
});

ipcTest("select() rejects with TimedOut after its timeout, leaving nothing pending", async () => {
  using idle = idleSources();
  const started = performance.now();
  await assert.rejects(select(idle.list, { timeout: 150 }), Deno.errors.TimedOut);
  const took = performance.now() - started;
  assert.ok(took >= 140 && took < 1000, `took ${took} ms`);
});

ipcTest("select() rejects with the abort reason when its signal aborts, at once", async () => {
  using idle = idleSources();
  const controller = new AbortController();
  const waiting = select(idle.list, { signal: controller.signal });
  await delay(100);
  const aborted = performance.now();
  controller.abort(new Error("enough"));
  await assert.rejects(waiting, { message: "enough" });
  const took = performance.now() - aborted;
  assert.ok(took < 100, `ended ${took} ms after the abort`);
  await assert.rejects(select(idle.list, { signal: controller.signal }), { message: "enough" });
});

ipcTest(
  "select() rejects with BadResource for a closed source, also closed while waiting",
  async () => {
    using idle = idleSources();
    const closed = Channel.create();
    closed.close();
    await assert.rejects(select([...idle.list, closed]), Deno.errors.BadResource);
    for (let i = 0; i < idle.list.length; i++) {
      using fresh = idleSources();
      const waiting = select(fresh.list);
      await delay(50);
      fresh.list[i]!.close();
      const at = performance.now();
      await assert.rejects(waiting, Deno.errors.BadResource);
      assert.ok(performance.now() - at < 1000, `noticed after ${performance.now() - at} ms`);
    }
  },
);

ipcTest(
  "select() reports a channel whose peer closed with UnexpectedEof, as receive would",
  async () => {
    using idle = idleSources();
    const name = uniqueName("eof");
    using channel = Channel.create({ name, role: "receive" });
    const sender = Channel.open(name, { role: "send" });
    setTimeout(() => sender.close(), 100);
    const ready = await select([...idle.list, channel], { timeout: 60_000 });
    assert.equal(ready.source, channel);
    assert.ok(ready.error instanceof Deno.errors.UnexpectedEof, String(ready.error));
  },
);

ipcTest(
  "select() reports a channel whose peer was killed with SIGKILL: BrokenPipe within a second",
  async () => {
    using idle = idleSources();
    using channel = Channel.create({ role: "receive" });
    await using sender = spawnDeno(child, {
      args: ["hang"],
      permissions,
      fds: { 3: channel },
      stdout: "piped",
    });
    const reader = sender.stdout!.readable.pipeThrough(new TextDecoderStream()).getReader();
    assert.equal((await reader.read()).value?.trim(), "ready");
    const waiting = select([...idle.list, channel]);
    await delay(150); // asleep now
    sender.kill("SIGKILL");
    const killed = performance.now();
    const ready = await waiting;
    assert.ok(ready.error instanceof Deno.errors.BrokenPipe, String(ready.error));
    assert.ok(performance.now() - killed < 1000, `noticed after ${performance.now() - killed} ms`);
    await sender.status;
    await reader.cancel();
  },
);

ipcTest(
  "a select woken by a post that it did not take passes the wake-up on to a sleeping sem_wait",
  async () => {
    const name = uniqueName("pass");
    using semaphore = Semaphore.create(name);
    using channel = Channel.create();
    // Twice, so that (select starting one further each call) one round tries the channel first.
    for (let round = 0; round < 2; round++) {
      const waiting = select([channel, semaphore], { timeout: 60_000 }); // sleeps first: woken first
      waiting.catch(() => {}); // awaited below; a failed assertion before must not leave it unhandled
      await delay(50);
      await using waiter = spawnDeno(child, {
        args: ["sem-wait", name, "30000"],
        permissions,
        stdout: "piped",
      });
      const lines = waiter.stdout!.readable.pipeThrough(new TextDecoderStream()).values();
      let text = "";
      const line = async (n: number) => {
        while (text.split("\n").length <= n) text += (await lines.next()).value ?? "\n";
        return text.split("\n")[n - 1]!;
      };
      assert.equal(await line(1), "ready");
      await delay(150); // the child sleeps in sem_wait now
      // The post first: its one wake-up goes to the oldest sleeper, the select (a send first
      // would wake the select through the channel, and the post would reach the child itself).
      semaphore.post();
      channel.sendSync(new Uint8Array([1]));
      const ready = await waiting;
      if (ready.source === semaphore) semaphore.post(); // the child's count
      // Woken, the child waits a few ms (seconds under qemu); not woken, its whole 30 s.
      const waited = Number(await line(2));
      assert.ok(waited < 15_000, `round ${round}: the child waited ${waited} ms`);
      assert.ok((await waiter.status).success);
      channel.tryReceive();
    }
  },
);

ipcTest(
  "concurrent selects in two processes take each message and count exactly once",
  async () => {
    const [channelName, queueName, semName] = [uniqueName("c"), uniqueName("q"), uniqueName("s")];
    using channel = Channel.create({ name: channelName, codec: codecs.json, multi: true });
    using queue = MessageQueue.create(queueName, { maxMessages: 10, messageSize: 16 });
    using semaphore = Semaphore.create(semName);
    await using other = spawnDeno(child, {
      args: ["consume", channelName, queueName, semName, "3"],
      permissions,
      stdout: "piped",
    });
    const reader = other.stdout!.readable.pipeThrough(new TextDecoderStream()).getReader();
    let output = "";
    while (!output.includes("ready")) output += (await reader.read()).value ?? "";
    output = output.slice(output.indexOf("ready") + 5);
    const mine = consume(channel, queue, semaphore, 3);
    const [messages, counts] = [300, 100];
    for (let i = 0; i < messages; i++) {
      await channel.send(i, { timeout: 60_000 });
      await queue.send(String(i), { timeout: 60_000 });
      if (i < counts) semaphore.post();
      if (i % 16 === 0) await delay(1);
    }
    const taken = await mine;
    for (let chunk; !(chunk = await reader.read()).done;) output += chunk.value;
    assert.ok((await other.status).success);
    const theirs = JSON.parse(output.trim());
    const all = (key: "channel" | "queue") => [...taken[key], ...theirs[key]].sort((a, b) => a - b);
    const expected = Array.from({ length: messages }, (_, i) => i);
    assert.deepEqual(all("channel"), expected);
    assert.deepEqual(all("queue"), expected);
    assert.equal(taken.counts + theirs.counts, counts);
    assert.equal(semaphore.value, 0);
    // Both processes took part (which one takes what is a race, so summed over the kinds).
    const count = (t: typeof taken) => t.channel.length + t.queue.length + t.counts;
    assert.ok(count(theirs) > 0 && count(taken) > 0, "both processes took some");
  },
);

ipcTest("select() checks its arguments before waiting", async () => {
  using channel = Channel.create();
  await assert.rejects(select([] as never), RangeError);
  await assert.rejects(select(42 as never), TypeError);
  await assert.rejects(select([channel, channel]), TypeError);
  await assert.rejects(select([channel, {}] as never), TypeError);
  const fake = () => ({
    [selectable]: () => ({ try: () => undefined, wait: () => Promise.resolve() }),
  });
  await assert.rejects(select(Array.from({ length: 128 }, fake)), RangeError);
  await assert.rejects(select([channel], { timeout: -1 }), RangeError);
  await assert.rejects(select([channel], null as never), TypeError);
  const inherited = Object.create({ timeout: 0 });
  // A prototype's timeout is not an option: this waits, until our own signal ends it.
  await assert.rejects(
    select([channel], Object.assign(inherited, { signal: AbortSignal.timeout(50) })),
    (error: Error) => error.name === "TimeoutError",
  );
});

ipcTest(
  "select() over a source whose wait ends at once with nothing does not spin: timers run",
  async () => {
    let tries = 0;
    const restless = {
      [selectable]: () => ({
        try: () => void tries++,
        wait: () => Promise.resolve(),
      }),
    };
    const started = performance.now();
    await assert.rejects(select([restless], { timeout: 200 }), Deno.errors.TimedOut);
    const took = performance.now() - started;
    assert.ok(took < 1000, `took ${took} ms`); // a microtask-only spin would never see its timer
    assert.ok(tries < 200, `${tries} rounds in 200 ms`);
  },
);

ipcTest(
  "without futex_waitv (ENOSYS), select() waits on each word alone: woken, aborted, timed out",
  async () => {
    useFutexWaitv(false);
    try {
      const name = uniqueName("fallback");
      using semaphore = Semaphore.create(name);
      using channel = Channel.create({ role: "receive" });
      using _peer = Channel.fromFd(channel, { role: "send" });
      await using poster = spawnDeno(child, { args: ["post", name, "150"], permissions });
      const ready = await select([channel, semaphore], { timeout: 60_000 });
      assert.equal(ready.source, semaphore);
      assert.ok((await poster.status).success);
      const controller = new AbortController();
      const waiting = select([channel, semaphore], { signal: controller.signal });
      await delay(50);
      const aborted = performance.now();
      controller.abort(new Error("enough"));
      await assert.rejects(waiting, { message: "enough" });
      assert.ok(performance.now() - aborted < 100, `${performance.now() - aborted} ms`);
      await assert.rejects(select([channel, semaphore], { timeout: 50 }), Deno.errors.TimedOut);
    } finally {
      useFutexWaitv(undefined);
    }
  },
);

ipcTest(
  "select() over a semaphore and a pipe serves both when made ready together, and ends its polls",
  async () => {
    // After a wake of the futex side, select skips the descriptors' tries and cancels the poll
    // only after returning: the pipe's chunk must still come with the next select.
    using semaphore = Semaphore.create(uniqueName("both"));
    using p = pipe();
    const fds = () => [...Deno.readDirSync("/proc/self/fd")].length;
    const before = fds();
    for (let round = 0; round < 20; round++) {
      setTimeout(() => semaphore.post(), 2); // the futex side alone: the poll is left running
      assert.equal((await select([semaphore, p.reader], { timeout: 5000 })).index, 0);
      setTimeout(() => {
        if (round % 2 === 0) p.writer.writeSync(new Uint8Array([round]));
        semaphore.post();
        if (round % 2 === 1) p.writer.writeSync(new Uint8Array([round]));
      }, 2);
      const first = await select([semaphore, p.reader], { timeout: 5000 });
      const second = await select([semaphore, p.reader], { timeout: 5000 });
      assert.deepEqual(new Set([first.index, second.index]), new Set([0, 1]), `round ${round}`);
      const chunk = first.index === 1 ? first.value : second.value;
      assert.deepEqual(chunk, new Uint8Array([round]));
      await assert.rejects(select([semaphore, p.reader], { timeout: 5 }), Deno.errors.TimedOut);
    }
    // A last wake of the futex side alone: its poll was cancelled and has closed its wake-up
    // pipe (one left running would hold it until the pipe under watch had data or closed).
    setTimeout(() => semaphore.post(), 2);
    assert.equal((await select([semaphore, p.reader], { timeout: 5000 })).index, 0);
    await delay(50);
    assert.equal(fds(), before);
  },
);
