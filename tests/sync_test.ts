import assert from "node:assert/strict";
import {
  Barrier,
  Condition,
  isSystemError,
  Mutex,
  MutexGuard,
  SharedMemory,
  spawnDeno,
} from "../mod.ts";
import {
  assertSucceeded,
  collect,
  fixture,
  ipcTest,
  pidNamespaces,
  pidNotInUse,
  spawnDeno as spawnTestChild,
  thrown,
  uniqueName,
} from "./helpers.ts";

const child = fixture("sync_child.ts");

function segment(): [string, SharedMemory] {
  const name = uniqueName("sync");
  return [name, SharedMemory.create(name, { size: 4096 })];
}

ipcTest("4 processes × 10,000 increments under one Mutex: the total is exact", async () => {
  const [name, memory] = segment();
  using _memory = memory;
  using _mutex = Mutex.init(memory, 0);
  const children = Array.from({ length: 4 }, () => spawnTestChild(child, ["count", name, "10000"]));
  for (const running of children) assertSucceeded(await collect(running));
  assert.equal(new Int32Array(memory.buffer)[16], 40_000);
});

/** Starts a child that locks the mutex and says so, then kills it while it holds the lock. */
async function killHolder(name: string): Promise<void> {
  await using holder = spawnDeno(child, {
    args: ["hold", name],
    permissions: { ffi: true },
    stdout: "piped",
  });
  const reader = holder.stdout!.readable.pipeThrough(new TextDecoderStream()).getReader();
  assert.equal((await reader.read()).value?.trim(), "locked");
  holder.kill("SIGKILL");
  await holder.status;
  await reader.cancel();
}

ipcTest(
  "a holder killed with SIGKILL: the next lock gets ownerDied, repairs, and the mutex works",
  async () => {
    const [name, memory] = segment();
    using _memory = memory;
    using mutex = Mutex.init(memory, 0);
    const cells = new Int32Array(memory.buffer);
    await killHolder(name);
    const started = performance.now();
    {
      using guard = await mutex.lock({ timeout: 5000 });
      assert.ok(performance.now() - started < 1000, "the death is noticed at once");
      assert.equal(guard.ownerDied, true);
      assert.equal(cells[16], -1, "the dead owner's half-done change is there to repair");
      cells[16] = 0;
      guard.markConsistent();
    }
    using again = mutex.lockSync({ timeout: 1000 });
    assert.equal(again.ownerDied, false);
    assert.equal(mutex.owner, Deno.pid);
  },
);

ipcTest(
  "without markConsistent() the mutex becomes unrecoverable, with a clear error",
  async () => {
    const [name, memory] = segment();
    using _memory = memory;
    using mutex = Mutex.init(memory, 0);
    await killHolder(name);
    const guard = mutex.tryLock();
    assert.ok(guard?.ownerDied);
    guard.unlock(); // not repaired
    for (const attempt of [() => mutex.tryLock(), () => mutex.lockSync()]) {
      const error = thrown(attempt);
      assert.ok(isSystemError(error) && error.code === "ENOTRECOVERABLE", String(error));
      assert.match(error.message, /not recoverable.*markConsistent\(\)/);
    }
    await assert.rejects(mutex.lock(), /ENOTRECOVERABLE/);
  },
);

ipcTest(
  "a bounded buffer with a Mutex and two Conditions moves 100,000 items between processes",
  async () => {
    const [name, memory] = segment();
    using _memory = memory;
    using _mutex = Mutex.init(memory, 0);
    using _notEmpty = Condition.init(memory, 8);
    using _notFull = Condition.init(memory, 12);
    const items = 100_000;
    const consumer = spawnTestChild(child, ["consume", name, String(items)]);
    const producer = spawnTestChild(child, ["produce", name, String(items)]);
    assertSucceeded(await collect(producer));
    const result = JSON.parse(assertSucceeded(await collect(consumer)).stdout);
    assert.deepEqual(result, { sum: (items * (items + 1)) / 2, inOrder: true });
  },
);

ipcTest("a Barrier with 4 processes over 100 rounds never lets one pass early", async () => {
  const [name, memory] = segment();
  using _memory = memory;
  using _barrier = Barrier.init(memory, 0, { parties: 4 });
  const children = [0, 1, 2, 3].map((i) =>
    spawnTestChild(child, ["barrier", name, String(i), "100"])
  );
  for (const running of children) assertSucceeded(await collect(running));
  assert.deepEqual([...new Int32Array(memory.buffer, 64, 4)], [100, 100, 100, 100]);
});

ipcTest(
  "timeouts and aborts end waits promptly; a condition wait holds the mutex again after",
  async () => {
    const [name, memory] = segment();
    using _memory = memory;
    using mutex = Mutex.init(memory, 0);
    using condition = Condition.init(memory, 8);
    using barrier = Barrier.init(memory, 16, { parties: 2 });
    await using holder = spawnDeno(child, {
      args: ["hold", name],
      permissions: { ffi: true },
      stdout: "piped",
    });
    const reader = holder.stdout!.readable.pipeThrough(new TextDecoderStream()).getReader();
    await reader.read();
    for (const wait of [() => mutex.lock({ timeout: 100 }), () => barrier.wait({ timeout: 100 })]) {
      const started = performance.now();
      await assert.rejects(wait(), Deno.errors.TimedOut);
      assert.ok(performance.now() - started < 1000);
    }
    const started = performance.now();
    await assert.rejects(mutex.lock({ signal: AbortSignal.timeout(50) }), DOMException);
    assert.ok(performance.now() - started < 1000);
    assert.throws(() => mutex.lockSync({ timeout: 50 }), Deno.errors.TimedOut);
    holder.kill("SIGKILL");
    await holder.status;
    await reader.cancel();

    using guard = await mutex.lock();
    guard.markConsistent();
    await assert.rejects(condition.wait(guard, { timeout: 100 }), Deno.errors.TimedOut);
    assert.equal(guard.held, true, "the mutex is held again after the wait");
    assert.equal(mutex.owner, Deno.pid);
    assert.throws(() => condition.waitSync(guard, { timeout: 50 }), Deno.errors.TimedOut);
    assert.equal(guard.held, true);
  },
);

ipcTest(
  "tasks of one process take turns on a mutex; lockSync on one's own lock is EDEADLK",
  async () => {
    const [, memory] = segment();
    using _memory = memory;
    using mutex = Mutex.init(memory, 0);
    const order: string[] = [];
    await Promise.all(["a", "b", "c"].map(async (task) => {
      using _guard = await mutex.lock({ timeout: 5000 });
      order.push(`${task}+`);
      await new Promise((resolve) => setTimeout(resolve, 10));
      order.push(`${task}-`);
    }));
    for (let i = 0; i < order.length; i += 2) {
      assert.equal(
        order[i]![0],
        order[i + 1]![0],
        "no overlap",
      );
    }
    using _guard = mutex.lockSync();
    const error = thrown(() => mutex.lockSync());
    assert.ok(isSystemError(error) && error.code === "EDEADLK", String(error));
    assert.equal(mutex.tryLock(), null);
  },
);

ipcTest(
  "bad input: offsets out of bounds or misaligned, parties < 1, no barrier, closed handles",
  () => {
    using memory = SharedMemory.anonymous({ size: 64 });
    assert.throws(() => Mutex.init(memory, 4), /aligned to 8 bytes/);
    assert.throws(() => Mutex.init(memory, 60), /needs 8 bytes inside the 64/);
    assert.throws(() => Condition.init(memory, -4), RangeError);
    assert.throws(() => Barrier.init(memory, 0, { parties: 0 }), /1 or more/);
    assert.throws(() => Barrier.init(memory, 0, { parties: 1.5 }), RangeError);
    assert.throws(() => Barrier.at(memory, 32), /none was initialised/);
    const mutex = Mutex.init(memory, 0);
    mutex.close();
    mutex.close();
    assert.throws(() => mutex.tryLock(), Deno.errors.BadResource);
    assert.throws(() => mutex.owner, Deno.errors.BadResource);
  },
);

const inNamespaces = (name: string) => pidNamespaces ? `${name} (skipped: ${pidNamespaces})` : name;

/**
 * Runs `script` with sh as the first process of a new PID namespace with its own /proc, given
 * `$0` = the Deno executable, `$1` = the sync fixture, `$2` = `name`, `$3` = `pid`. The
 * namespace dies (every process in it is killed) when the returned process is killed.
 */
function inNewPidNamespace(script: string, name: string, pid = 0): Deno.ChildProcess {
  return new Deno.Command("unshare", {
    args: [
      "--pid",
      "--fork",
      "--mount-proc",
      "--kill-child",
      "sh",
      "-c",
      script,
      Deno.execPath(),
      child,
      name,
      String(pid),
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/**
 * The lines a child prints, one by one, with a bound on each wait: 60 s, as a line may wait for
 * two Deno starts, which took over 20 s under qemu on a loaded machine.
 */
function lines(running: Deno.ChildProcess): { next(): Promise<string>; cancel(): Promise<void> } {
  const reader = running.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  return {
    async next() {
      const timer = setTimeout(() => running.kill("SIGKILL"), 60_000);
      try {
        while (!buffered.includes("\n")) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`the child ended before a whole line: "${buffered}"`);
          buffered += value;
        }
      } finally {
        clearTimeout(timer);
      }
      const line = buffered.slice(0, buffered.indexOf("\n"));
      buffered = buffered.slice(line.length + 1);
      return line;
    },
    cancel: () => reader.cancel(),
  };
}

/** Kills a process made by `inNewPidNamespace` (and so its namespace) and waits for it. */
async function end(running: Deno.ChildProcess, output: { cancel(): Promise<void> }) {
  try {
    running.kill("SIGKILL");
  } catch {
    // it has ended already
  }
  await running.status;
  await output.cancel();
  await running.stderr.cancel();
}

ipcTest(
  inNamespaces(
    "a holder in another PID namespace is never judged dead, though its pid is none here",
  ),
  async () => {
    const [name, memory] = segment();
    using _memory = memory;
    using mutex = Mutex.init(memory, 0);
    // The holder's pid in its namespace will be free in ours, so that judging it here would
    // find "no such process" and take a live holder's lock.
    const last = pidNotInUse();
    const holder = inNewPidNamespace(
      `echo $3 > /proc/sys/kernel/ns_last_pid && "$0" run --allow-ffi "$1" hold "$2"; exit $?`,
      name,
      last,
    );
    const output = lines(holder);
    try {
      assert.equal(await output.next(), "locked");
      assert.equal(mutex.owner, last + 1, "the pid the holder has in its own namespace");
      await assert.rejects(mutex.lock({ timeout: 300 }), Deno.errors.TimedOut);
      assert.throws(() => mutex.lockSync({ timeout: 250 }), Deno.errors.TimedOut);
      assert.equal(mutex.tryLock(), null);
    } finally {
      await end(holder, output);
    }
    // Across namespaces a dead holder is not detected either: the lock stays taken.
    assert.equal(mutex.tryLock(), null);
    assert.equal(mutex.owner, last + 1);
  },
  { ignore: pidNamespaces !== "" },
);

ipcTest(
  inNamespaces("a process in a new PID namespace does not take a lock held in this one"),
  async () => {
    const [name, memory] = segment();
    using _memory = memory;
    using mutex = Mutex.init(memory, 0);
    using _guard = mutex.lockSync();
    const waiter = inNewPidNamespace(`exec "$0" run --allow-ffi "$1" try "$2" 400`, name);
    const output = lines(waiter);
    try {
      assert.equal(await output.next(), "timed out", "our pid is no process there");
      assert.equal((await waiter.status).code, 0);
    } finally {
      await end(waiter, output);
    }
    assert.equal(mutex.owner, Deno.pid);
  },
  { ignore: pidNamespaces !== "" },
);

ipcTest(
  inNamespaces("with another namespace's /proc, a live holder of one's own namespace stays live"),
  async () => {
    const [name, memory] = segment();
    using _memory = memory;
    using _mutex = Mutex.init(memory, 0);
    // Both processes share a new PID namespace, but /proc is this one's (as in a container
    // given the host's /proc), where the holder's pid is no process: a judge reading
    // /proc/PID/stat would take the lock from the live holder.
    const both = inNewPidNamespace(
      `echo $3 > /proc/sys/kernel/ns_last_pid && umount /proc &&
       "$0" run --allow-ffi "$1" hold "$2" | {
         read line && echo "$line" && "$0" run --allow-ffi "$1" try "$2" 400; echo "exit $?"
       }`,
      name,
      pidNotInUse(),
    );
    const output = lines(both);
    try {
      assert.equal(await output.next(), "locked");
      assert.equal(await output.next(), "timed out");
      assert.equal(await output.next(), "exit 0");
    } finally {
      await end(both, output);
    }
  },
  { ignore: pidNamespaces !== "" },
);

ipcTest("a zombie holder (killed, never reaped) is found dead by the next lock", async () => {
  const [name, memory] = segment();
  using _memory = memory;
  using mutex = Mutex.init(memory, 0);
  // sh starts the holder, then becomes `sleep`, which never reaps it.
  const parent = new Deno.Command("sh", {
    args: [
      "-c",
      `"$0" run --allow-ffi "$1" hold "$2" & exec sleep 60`,
      Deno.execPath(),
      child,
      name,
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const output = lines(parent);
  try {
    assert.equal(await output.next(), "locked");
    const holder = mutex.owner!;
    Deno.kill(holder, "SIGKILL");
    while (!Deno.readTextFileSync(`/proc/${holder}/stat`).includes(") Z ")) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    using guard = await mutex.lock({ timeout: 5000 });
    assert.equal(guard.ownerDied, true);
    guard.markConsistent();
  } finally {
    parent.kill("SIGKILL");
    await parent.status;
    await output.cancel();
  }
});

ipcTest("after mutex.close(), a held guard still unlocks, and the lock is free for others", () => {
  using memory = SharedMemory.anonymous({ size: 64 });
  const mutex = Mutex.init(memory, 0);
  const guard = mutex.lockSync();
  mutex.close();
  assert.throws(() => mutex.tryLock(), Deno.errors.BadResource);
  assert.throws(() => mutex.lockSync(), Deno.errors.BadResource);
  assert.equal(guard.held, true);
  guard.markConsistent(); // still allowed: the guard holds the lock
  guard.unlock();
  assert.equal(guard.held, false);
  using other = Mutex.at(memory, 0);
  assert.equal(other.owner, null);
  using _again = other.lockSync({ timeout: 100 });
});

ipcTest("a guard unlocks after both its mutex and the memory were closed", () => {
  const memory = SharedMemory.anonymous({ size: 64 });
  const mutex = Mutex.init(memory, 0);
  const guard = mutex.lockSync();
  mutex.close();
  memory.close();
  guard.unlock(); // the pages stayed mapped for the guard; now they go
  assert.equal(guard.held, false);
});

ipcTest(
  "a condition wait holds the mutex again, even when the mutex's handle closes during it",
  async () => {
    using memory = SharedMemory.anonymous({ size: 64 });
    const mutex = Mutex.init(memory, 0);
    using condition = Condition.init(memory, 8);
    using other = Mutex.at(memory, 0);
    {
      using guard = await mutex.lock();
      const waiting = condition.wait(guard, { timeout: 200 });
      mutex.close();
      await assert.rejects(waiting, Deno.errors.TimedOut);
      assert.equal(guard.held, true);
      assert.equal(other.owner, Deno.pid);
    }
    assert.equal(other.owner, null, "the guard unlocked");
    const closing = Mutex.at(memory, 0);
    using second = closing.lockSync();
    closing.close();
    assert.throws(() => condition.waitSync(second, { timeout: 20 }), Deno.errors.TimedOut);
    assert.equal(second.held, true);
  },
);

ipcTest(
  "waits take timeout Infinity and huge timeouts; NaN and negative are RangeErrors",
  async () => {
    const [name, memory] = segment();
    using _memory = memory;
    using mutex = Mutex.init(memory, 0);
    using condition = Condition.init(memory, 8);
    using barrier = Barrier.init(memory, 16, { parties: 2 });
    for (const timeout of [NaN, -1, -Infinity]) {
      await assert.rejects(mutex.lock({ timeout }), RangeError);
      assert.throws(() => mutex.lockSync({ timeout }), RangeError);
      await assert.rejects(barrier.wait({ timeout }), RangeError);
      assert.throws(() => barrier.waitSync({ timeout }), RangeError);
      using guard = mutex.lockSync();
      await assert.rejects(condition.wait(guard, { timeout }), RangeError);
      assert.throws(() => condition.waitSync(guard, { timeout }), RangeError);
      assert.equal(guard.held, true);
    }
    // Nothing above counted an arrival: two arrivals release a round.
    assert.deepEqual((await Promise.all([barrier.wait(), barrier.wait()])).sort(), [false, true]);

    for (const timeout of [Infinity, 2 ** 31, 2 ** 53, Number.MAX_VALUE]) {
      const held = mutex.lockSync({ timeout });
      const next = mutex.lock({ timeout });
      setTimeout(() => held.unlock(), 20);
      (await next).unlock();
      const [a, b] = await Promise.all([barrier.wait({ timeout }), barrier.wait({ timeout })]);
      assert.notEqual(a, b);
      using guard = await mutex.lock({ timeout });
      setTimeout(() => condition.notify(), 20);
      await condition.wait(guard, { timeout });
    }

    // The sync forms block across several slices: a holder in another process, killed.
    const holder = spawnTestChild(child, ["hold", name]);
    const output = lines(holder);
    try {
      assert.equal(await output.next(), "locked");
      const started = performance.now();
      // lockSync blocks the event loop, so the kill comes from another process's timer.
      const killer = new Deno.Command("sh", {
        args: ["-c", `sleep 0.25; kill -9 ${mutex.owner}`],
      }).spawn();
      using guard = mutex.lockSync({ timeout: Infinity });
      await killer.status;
      assert.ok(performance.now() - started >= 200, "it waited for the kill");
      assert.equal(guard.ownerDied, true);
      guard.markConsistent();
    } finally {
      try {
        holder.kill("SIGKILL");
      } catch {
        // killed already
      }
      await holder.status;
      await output.cancel();
      await holder.stderr.cancel();
    }
  },
);

ipcTest("Mutex, Condition and Barrier name the offset for any hostile offset", () => {
  using memory = SharedMemory.anonymous({ size: 4096 });
  const places = {
    "Mutex.init": (at: never) => Mutex.init(memory, at),
    "Mutex.at": (at: never) => Mutex.at(memory, at),
    "Condition.init": (at: never) => Condition.init(memory, at),
    "Condition.at": (at: never) => Condition.at(memory, at),
    "Barrier.init": (at: never) => Barrier.init(memory, at, { parties: 1 }),
    "Barrier.at": (at: never) => Barrier.at(memory, at),
  };
  for (const [call, place] of Object.entries(places)) {
    for (const offset of [Symbol.iterator, Object.create(null), 1n, "0", null]) {
      assert.throws(() => place(offset as never), { name: "TypeError", message: /offset/ }, call);
    }
    for (const offset of [NaN, -1, 0.5, 4096, 2 ** 53]) {
      assert.throws(() => place(offset as never), { name: "RangeError", message: /offset/ }, call);
    }
  }
});

ipcTest("Barrier.init refuses null options and hostile parties with argument errors", () => {
  using memory = SharedMemory.anonymous({ size: 4096 });
  for (const options of [null, 7, Symbol("o")]) {
    assert.throws(() => Barrier.init(memory, 0, options as never), {
      name: "TypeError",
      message: /options/,
    });
  }
  for (const parties of [Symbol("p"), Object.create(null), "2", 2n]) {
    assert.throws(() => Barrier.init(memory, 0, { parties: parties as never }), {
      name: "TypeError",
      message: /parties/,
    });
  }
  for (const parties of [0, -1, 1.5, NaN, 2 ** 31]) {
    assert.throws(() => Barrier.init(memory, 0, { parties }), {
      name: "RangeError",
      message: /parties/,
    });
  }
});

ipcTest("Condition.wait/waitSync refuse anything but a MutexGuard with a TypeError", async () => {
  using memory = SharedMemory.anonymous({ size: 4096 });
  using condition = Condition.init(memory, 64);
  for (const guard of [null, undefined, {}, Object.create(null), Mutex]) {
    await assert.rejects(condition.wait(guard as never, { timeout: 10 }), {
      name: "TypeError",
      message: /guard/,
    });
    assert.throws(() => condition.waitSync(guard as never, { timeout: 10 }), {
      name: "TypeError",
      message: /guard/,
    });
  }
});

ipcTest("sync constructors are private: JavaScript cannot build a handle or a guard", () => {
  using memory = SharedMemory.anonymous({ size: 4096 });
  using mutex = Mutex.init(memory, 0);
  const classes = { Mutex, MutexGuard, Condition, Barrier };
  for (const [name, Class] of Object.entries(classes)) {
    for (const args of [[memory, 0], [mutex, {}, {}, { ownerDied: false }], [0, 0, 0, 0]]) {
      assert.throws(
        () => new (Class as new (...args: unknown[]) => unknown)(...args),
        { name: "TypeError", message: new RegExp(name) },
      );
    }
  }
});
