import assert from "node:assert/strict";
import { Barrier, Condition, isSystemError, Mutex, SharedMemory, spawnDeno } from "../mod.ts";
import {
  assertSucceeded,
  collect,
  fixture,
  ipcTest,
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
    assert.throws(() => Mutex.init(memory, 2), /aligned to 4 bytes/);
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
