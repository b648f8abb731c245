import assert from "node:assert/strict";
import { isSystemError, MessageQueue } from "../mod.ts";
import { select } from "../src/select/mod.ts";
import {
  assertSucceeded,
  fixture,
  ipcTest,
  runDeno,
  spawnDeno,
  spawnReady,
  thrown,
  uniqueName,
} from "./helpers.ts";

const child = fixture("mq_notify_child.ts");

function openFds(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

ipcTest("notifications() wakes when a child sends to the empty queue", async () => {
  using queue = MessageQueue.create(uniqueName("notify-child"));
  using notices = queue.notifications();
  assert.equal(notices.tryWait(), false, "nothing yet");
  const sender = runDeno(child, ["send", queue.name, "from the child"], { timeout: 20_000 });
  await notices.wait({ timeout: 20_000 });
  assertSucceeded(await sender);
  assert.equal(new TextDecoder().decode(queue.tryReceive()!.data), "from the child");
});

ipcTest(
  "a second registration, from another process or this one, is Deno.errors.Busy",
  async () => {
    using queue = MessageQueue.create(uniqueName("notify-busy"));
    using _notices = queue.notifications();
    const output = assertSucceeded(
      await runDeno(child, ["register", queue.name], { timeout: 20_000 }),
    );
    assert.equal(output.stdout.trim(), "Busy");
    using again = MessageQueue.open(queue.name);
    const error = thrown(() => again.notifications());
    assert.ok(error instanceof Deno.errors.Busy);
    assert.ok(isSystemError(error) && error.code === "EBUSY" && error.syscall === "mq_notify");
    assert.equal(error.objectName, queue.name);
  },
);

ipcTest("close() and an abort deregister: another process can register then", async () => {
  using queue = MessageQueue.create(uniqueName("notify-free"));
  const notices = queue.notifications();
  notices.close();
  notices.close(); // harmless
  let output = await runDeno(child, ["register", queue.name], { timeout: 20_000 });
  assert.equal(assertSucceeded(output).stdout.trim(), "registered");
  const controller = new AbortController();
  const aborted = queue.notifications({ signal: controller.signal });
  controller.abort();
  assert.equal(aborted.closed, true);
  assert.throws(() => aborted.tryWait(), Deno.errors.BadResource);
  output = await runDeno(child, ["register", queue.name], { timeout: 20_000 });
  assert.equal(assertSucceeded(output).stdout.trim(), "registered");
});

ipcTest("a registered process killed with SIGKILL frees the registration", async () => {
  using queue = MessageQueue.create(uniqueName("notify-kill"));
  const holder = await spawnReady(child, ["hold", queue.name]);
  try {
    assert.throws(() => queue.notifications(), Deno.errors.Busy);
  } finally {
    await holder.kill();
  }
  using notices = queue.notifications(); // the kernel dropped the dead process's registration
  queue.sendSync("after");
  assert.equal(notices.tryWait(), true);
});

ipcTest(
  "a process that registers between a notice and the re-registration: the notice, then Busy",
  async () => {
    using queue = MessageQueue.create(uniqueName("notify-stolen"));
    using notices = queue.notifications();
    queue.sendSync("x"); // the notice is queued; the kernel's registration is used up
    const holder = await spawnReady(child, ["hold", queue.name]);
    try {
      assert.equal(notices.tryWait(), true, "the notice that came first is handed over");
      assert.throws(() => notices.tryWait(), Deno.errors.Busy);
    } finally {
      await holder.kill();
    }
    assert.equal(notices.tryWait(), false, "registered again once the holder is gone");
    queue.tryReceive();
    queue.sendSync("y");
    assert.equal(notices.tryWait(), true);
  },
);

ipcTest("bursts with gaps: draining after each notice loses no message", async () => {
  using queue = MessageQueue.create(uniqueName("notify-bursts"), {
    maxMessages: 8,
    messageSize: 4,
  });
  const count = 3000;
  const sender = spawnDeno(child, ["bursts", queue.name, String(count), "7"]);
  const timer = setTimeout(() => {
    try {
      sender.kill("SIGKILL");
    } catch {
      // it has exited
    }
  }, 20_000);
  const signal = AbortSignal.timeout(20_000);
  let next = 0;
  let notices = 0;
  try {
    for await (const _ of queue.notifications({ signal })) {
      notices++;
      for (let m; (m = queue.tryReceive()) !== null;) {
        assert.equal(new DataView(m.data.buffer).getUint32(0), next++, "in order, none lost");
      }
      if (next === count) break;
    }
  } finally {
    clearTimeout(timer);
    assert.equal((await sender.status).code, 0);
  }
  assert.equal(next, count, "every message received before the deadline");
  assert.ok(notices > 1 && notices <= count);
});

ipcTest(
  "closing another handle of the queue in this process re-registers: no notice is lost",
  () => {
    using queue = MessageQueue.create(uniqueName("notify-removed"));
    using notices = queue.notifications();
    MessageQueue.open(queue.name).close(); // the kernel removes this process's registration
    queue.sendSync("while removed");
    assert.equal(notices.tryWait(), true, "registered again, and the message seen");
    queue.tryReceive();
    {
      using other = MessageQueue.open(queue.name);
      assert.throws(() => other.notifications(), Deno.errors.Busy, "ours is live again");
    } // closing `other` removes ours once more
    queue.sendSync("next");
    assert.equal(notices.tryWait(), true);
  },
);

ipcTest("only empty to non-empty is a notice; a queue holding messages owes one wait", async () => {
  using queue = MessageQueue.create(uniqueName("notify-edge"));
  queue.sendSync("waiting");
  using notices = queue.notifications();
  await notices.wait({ timeout: 1000 }); // at once: the queue held a message
  queue.sendSync("another"); // not empty before: no notice
  assert.equal(notices.tryWait(), false);
  await assert.rejects(notices.wait({ timeout: 30 }), Deno.errors.TimedOut);
  while (queue.tryReceive() !== null);
  queue.sendSync("again");
  assert.equal(notices.tryWait(), true);
});

ipcTest("closing the queue or the registration ends a pending wait and the iteration", async () => {
  const count = async (notices: AsyncIterable<void>) => {
    let n = 0;
    for await (const _ of notices) n++;
    return n;
  };
  const tick = () => new Promise((resolve) => setTimeout(resolve, 20));
  const first = MessageQueue.create(uniqueName("notify-close"));
  const waited = first.notifications();
  const waiting = waited.wait();
  await tick();
  first.close();
  await assert.rejects(waiting, Deno.errors.BadResource);
  assert.equal(waited.closed, true);
  const second = MessageQueue.create(uniqueName("notify-close"));
  const looping = count(second.notifications());
  await tick();
  second.close();
  assert.equal(await looping, 0);
  using third = MessageQueue.create(uniqueName("notify-close"));
  const registered = third.notifications();
  const counted = count(registered);
  await tick();
  registered.close();
  assert.equal(await counted, 0);
});

ipcTest("select() waits on a registration with other sources", async () => {
  using queue = MessageQueue.create(uniqueName("notify-select"));
  using notices = queue.notifications();
  const sender = runDeno(child, ["send", queue.name, "x"], { timeout: 20_000 });
  const chosen = await select([notices], { timeout: 20_000 });
  assert.equal(chosen.index, 0);
  assertSucceeded(await sender);
});

ipcTest(
  "waitSync() blocks until a child sends to the empty queue, and ends at its timeout",
  async () => {
    using queue = MessageQueue.create(uniqueName("notify-sync"));
    using notices = queue.notifications();
    const started = performance.now();
    assert.throws(() => notices.waitSync({ timeout: 30 }), Deno.errors.TimedOut);
    assert.ok(performance.now() - started >= 29, "it waited its timeout");
    // The child runs on its own while this thread blocks: its message is the notice.
    const sender = runDeno(child, ["send", queue.name, "to a blocked parent"], { timeout: 20_000 });
    notices.waitSync({ timeout: 20_000 });
    assertSucceeded(await sender);
    assert.equal(new TextDecoder().decode(queue.tryReceive()!.data), "to a blocked parent");
    assert.equal(notices.tryWait(), false, "registered again, and nothing owed");
    queue.sendSync("again"); // a notice: the next wait returns at once
    notices.waitSync(Object.create({ timeout: -1 })); // a prototype key is no option: no RangeError
    // deno-lint-ignore no-explicit-any
    assert.throws(() => notices.waitSync(null as any), TypeError);
    assert.throws(() => notices.waitSync({ timeout: -1 }), RangeError);
    notices.close();
    assert.throws(() => notices.waitSync({ timeout: 0 }), Deno.errors.BadResource);
  },
);

ipcTest("bad input is a TypeError, RangeError or BadResource before any syscall", async () => {
  using queue = MessageQueue.create(uniqueName("notify-bad"));
  const before = openFds();
  const hostile: unknown[] = [null, 5, "signal", [], () => {}, { signal: {} }, {
    signal: "abort",
  }];
  for (const options of hostile) {
    // deno-lint-ignore no-explicit-any
    assert.throws(() => queue.notifications(options as any), TypeError, String(options));
  }
  const polluted = Object.create({ signal: "not an own property" });
  queue.notifications(polluted).close(); // prototype keys are not options
  assert.throws(() => queue.notifications({ signal: AbortSignal.abort() }), DOMException);
  using notices = queue.notifications();
  await assert.rejects(notices.wait({ timeout: -1 }), RangeError);
  // deno-lint-ignore no-explicit-any
  await assert.rejects(notices.wait({ signal: {} as any }), TypeError);
  // deno-lint-ignore no-explicit-any
  await assert.rejects(notices.wait(null as any), TypeError);
  notices.close();
  assert.equal(openFds(), before, "no descriptor left open");
  queue.close();
  assert.throws(() => queue.notifications(), Deno.errors.BadResource);
  assert.throws(() => notices.tryWait(), Deno.errors.BadResource);
  await assert.rejects(notices.wait(), Deno.errors.BadResource);
});

ipcTest("500 registrations, notices and closes leave the descriptor count as it was", () => {
  using queue = MessageQueue.create(uniqueName("notify-fds"));
  const before = openFds();
  for (let i = 0; i < 500; i++) {
    using notices = queue.notifications();
    if (i % 2 === 0) {
      queue.sendSync("x");
      assert.equal(notices.tryWait(), true);
      queue.tryReceive();
    }
  }
  assert.equal(openFds(), before);
});

ipcTest(
  "leaving a for await over notifications() closes the registration: another process, or a " +
    "second notifications(), can register at once, and no socket is left open",
  async () => {
    using queue = MessageQueue.create(uniqueName("notify-break"));
    const before = openFds();
    queue.sendSync("x");
    for await (const _ of queue.notifications()) break;
    assert.equal(openFds(), before, "the netlink socket is closed");
    // Before: the dropped registration held the queue's one slot (Busy, for every process),
    // and its socket, until it was collected and, after that, until a message came.
    const output = await runDeno(child, ["register", queue.name], { timeout: 20_000 });
    assert.equal(assertSucceeded(output).stdout.trim(), "registered");
    await assert.rejects(async () => {
      for await (const _ of queue.notifications()) throw new RangeError("from the loop");
    }, RangeError);
    using again = queue.notifications();
    assert.equal(again.tryWait(), true, "the queue holds a message");
    assert.equal(openFds(), before + 1);
  },
);

ipcTest(
  "closing the queue releases its notifications at once: the netlink socket is closed before " +
    "the registration is used again, a pending wait rejects, and another process can register",
  async () => {
    using creator = MessageQueue.create(uniqueName("notify-released"));
    const handle = MessageQueue.open(creator.name);
    const sockets = () =>
      new Set([...Deno.readDirSync("/proc/self/fd")].flatMap(({ name }) => {
        try {
          const target = Deno.readLinkSync(`/proc/self/fd/${name}`);
          return target.startsWith("socket:") ? [`${name} -> ${target}`] : [];
        } catch {
          return []; // the descriptor that read the directory, closed since
        }
      }));
    const before = sockets();
    const notices = handle.notifications();
    const added = [...sockets()].filter((fd) => !before.has(fd));
    assert.equal(added.length, 1, "one netlink socket per registration");
    const socket = added[0]!;
    const waiting = notices.wait();
    handle.close();
    // Looked at once, before the pending wait's next slice touches `notices`: before, the socket
    // stayed open until the object was used again or collected. (The kernel's registration went
    // with the queue's descriptor either way.)
    assert.ok(!sockets().has(socket), "the netlink socket is closed with the queue");
    await assert.rejects(waiting, Deno.errors.BadResource);
    assert.equal(notices.closed, true);
    assert.throws(() => notices.tryWait(), Deno.errors.BadResource);
    notices.close(); // harmless
    const output = await runDeno(child, ["register", creator.name], { timeout: 20_000 });
    assert.equal(assertSucceeded(output).stdout.trim(), "registered");
    using again = creator.notifications(); // and another handle of this process: no Busy
    assert.equal(again.tryWait(), false);
  },
);
