import assert from "node:assert/strict";
import { isSystemError, mapFile, Semaphore, SharedMemory } from "../mod.ts";
import {
  assertSucceeded,
  collect,
  fixture,
  ipcTest,
  runDeno,
  spawnDeno,
  tempFile,
  thrown,
  uniqueName,
} from "./helpers.ts";

const child = fixture("sem_child.ts");

async function within<T>(ms: number, promise: Promise<T>): Promise<number> {
  const started = performance.now();
  await promise.catch(() => {});
  const elapsed = performance.now() - started;
  assert.ok(elapsed < ms, `took ${elapsed} ms`);
  return elapsed;
}

for (const kind of ["named", "unnamed"] as const) {
  ipcTest(
    `4 processes add 10,000 each to a counter guarded by a ${kind} semaphore: exact`,
    async () => {
      const memoryName = uniqueName("counter");
      using memory = SharedMemory.create(memoryName, { size: 4096 });
      const semName = uniqueName("lock");
      using lock = kind === "named"
        ? Semaphore.create(semName, { value: 1 })
        : Semaphore.init(memory, 64, { value: 1 });
      const args = kind === "named"
        ? ["count-named", memoryName, semName, "10000"]
        : ["count-unnamed", memoryName, "64", "10000"];
      const children = Array.from({ length: 4 }, () => spawnDeno(child, args));
      for (const running of children) assertSucceeded(await collect(running));
      assert.equal(new Int32Array(memory.buffer)[0], 40_000);
      assert.equal(lock.value, 1);
    },
  );
}

for (const mode of ["sync", "async"] as const) {
  ipcTest(`ping-pong between two processes with two semaphores (${mode})`, async () => {
    const [pingName, pongName] = [uniqueName("ping"), uniqueName("pong")];
    using ping = Semaphore.create(pingName);
    using pong = Semaphore.create(pongName);
    const rounds = 500;
    const ponger = spawnDeno(child, ["pong", pingName, pongName, String(rounds), mode]);
    for (let i = 0; i < rounds; i++) {
      ping.post();
      if (mode === "async") await pong.wait({ timeout: 10_000 });
      else pong.waitSync({ timeout: 10_000 });
    }
    assertSucceeded(await collect(ponger));
    assert.equal(ping.value, 0);
    assert.equal(pong.value, 0);
  });
}

ipcTest("wait() rejects with TimedOut after its timeout, promptly", async () => {
  using sem = Semaphore.create(uniqueName("timeout"));
  const started = performance.now();
  await assert.rejects(sem.wait({ timeout: 150 }), Deno.errors.TimedOut);
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 140 && elapsed < 1000, `${elapsed} ms`);
  assert.throws(() => sem.waitSync({ timeout: 20 }), Deno.errors.TimedOut);
});

ipcTest("an abort ends a pending wait within 250 ms with the signal's reason", async () => {
  using sem = Semaphore.create(uniqueName("abort"));
  const controller = new AbortController();
  const waiting = sem.wait({ signal: controller.signal });
  setTimeout(() => controller.abort(new Error("no longer needed")), 30);
  const elapsed = await within(1000, assert.rejects(waiting, /no longer needed/));
  assert.ok(elapsed < 30 + 250, `${elapsed} ms`);
  await assert.rejects(sem.wait({ signal: AbortSignal.abort() }), DOMException);
});

ipcTest(
  "closing a semaphore rejects its pending waits with BadResource within 250 ms",
  async () => {
    const sem = Semaphore.create(uniqueName("close"));
    const waiting = sem.wait();
    setTimeout(() => sem.close(), 30);
    await assert.rejects(waiting, Deno.errors.BadResource);
    for (
      const use of [() => sem.post(), () => sem.tryWait(), () => sem.value, () => sem.waitSync()]
    ) {
      assert.throws(use, Deno.errors.BadResource);
    }
    sem.close();
  },
);

ipcTest("an abandoned wait never steals a count posted for someone else", async () => {
  using sem = Semaphore.create(uniqueName("steal"));
  let taken = 0;
  let posted = 0;
  for (let round = 0; round < 30; round++) {
    const controller = new AbortController();
    const abandoned = sem.wait({ signal: controller.signal }).then(() => taken++, () => {});
    const patient = sem.wait({ timeout: 5000 }).then(() => taken++);
    await new Promise((resolve) => setTimeout(resolve, round % 5));
    sem.post();
    posted++;
    controller.abort();
    await abandoned;
    if (taken < posted) await patient; // the count went to the patient waiter…
    else {
      sem.post(); // …or the abandoned one took it first, legitimately, before the abort
      posted++;
      await patient;
    }
  }
  assert.equal(taken + sem.value, posted, "every count is taken exactly once or still there");
});

ipcTest("a child that starts a wait and aborts it exits by itself", async () => {
  const name = uniqueName("exit");
  using _sem = Semaphore.create(name);
  const started = performance.now();
  const output = assertSucceeded(await runDeno(child, ["abandon", name]));
  assert.equal(output.stdout.trim(), "TimeoutError");
  assert.ok(performance.now() - started < 5000);
});

ipcTest("acquire() returns a permit that posts once when disposed", async () => {
  using sem = Semaphore.create(uniqueName("permit"), { value: 1 });
  {
    using permit = await sem.acquire();
    assert.equal(sem.value, 0);
    permit.release();
    permit.release();
    assert.equal(sem.value, 1);
  }
  assert.equal(sem.value, 1, "the second release and the dispose did nothing more");
});

ipcTest("named semaphores: create twice, open, unlink, and the owner rule", () => {
  const name = uniqueName("named");
  const owner = Semaphore.create(name, { value: 2 });
  assert.throws(() => Semaphore.create(name), Deno.errors.AlreadyExists);
  using opened = Semaphore.open(name);
  assert.ok(opened.tryWait());
  assert.equal(owner.value, 1);
  owner.close();
  assert.throws(() => Semaphore.open(name), Deno.errors.NotFound);
  assert.ok(opened.tryWait(), "an open handle outlives the name");
  const kept = uniqueName("persist");
  Semaphore.create(kept, { persist: true }).close();
  Semaphore.open(kept).close();
  Semaphore.unlink(kept);
  const missing = thrown(() => Semaphore.unlink(kept));
  assert.ok(
    missing instanceof Deno.errors.NotFound && isSystemError(missing) && missing.code === "ENOENT",
  );
});

ipcTest("bad input is a TypeError or RangeError before any syscall", () => {
  for (const value of [-1, 1.5, 2 ** 31, NaN]) {
    assert.throws(() => Semaphore.create(uniqueName("v"), { value }), RangeError);
  }
  assert.throws(() => Semaphore.create("no-slash"), TypeError);
  assert.throws(() => Semaphore.create(`/${"x".repeat(252)}`), /more than the 251 allowed/);
  using memory = SharedMemory.anonymous({ size: 4096 });
  assert.throws(() => Semaphore.init(memory, 4, {}), /aligned to 8 bytes/);
  assert.throws(() => Semaphore.init(memory, 4096 - 16), /needs 32 bytes inside the 4096/);
  assert.throws(() => Semaphore.at(memory, -8), RangeError);
  using reader = SharedMemory.fromFd(memory, { readOnly: true }); // a second, read-only handle
  assert.throws(() => Semaphore.init(reader, 0), /not shared and writable/);
  const path = tempFile("x".repeat(64));
  try {
    using privateMapping = mapFile(path, { write: true, private: true });
    assert.throws(() => Semaphore.init(privateMapping, 0), TypeError);
  } finally {
    Deno.removeSync(path);
  }
});

ipcTest(
  "a semaphore keeps its memory mapped after the memory is closed, until it is closed",
  () => {
    const memory = SharedMemory.anonymous({ size: 4096 });
    const sem = Semaphore.init(memory, 0, { value: 1 });
    const bytes = memory.bytes;
    memory.close();
    assert.equal(bytes.length, 0, "views are detached at once");
    assert.ok(sem.tryWait(), "the semaphore still works: its pages are pinned");
    sem.post();
    sem.close();
  },
);

ipcTest(
  "waitSync() and wait() take timeout: Infinity (none) and timeouts past any C range",
  async () => {
    const [pingName, pongName] = [uniqueName("ping"), uniqueName("pong")];
    using ping = Semaphore.create(pingName);
    using pong = Semaphore.create(pongName);
    const timeouts = [Infinity, 3e9, 2 ** 53, 1e300, Number.MAX_VALUE];
    const ponger = spawnDeno(child, [
      "pong",
      pingName,
      pongName,
      String(timeouts.length * 2),
      "sync",
    ]);
    for (const timeout of timeouts) {
      ping.post();
      pong.waitSync({ timeout }); // blocks until the child posts: no engine error, no early TimedOut
      ping.post();
      await pong.wait({ timeout });
    }
    assertSucceeded(await collect(ponger));
    for (const timeout of [NaN, -1, -Infinity]) {
      assert.throws(() => pong.waitSync({ timeout }), RangeError, "timeout");
      await assert.rejects(pong.wait({ timeout }), RangeError);
    }
    assert.throws(() => pong.waitSync({ timeout: "5" as unknown as number }), TypeError);
  },
);

ipcTest(
  "semaphore values are checked as integers 0 to SEM_VALUE_MAX, TypeError for non-numbers",
  () => {
    for (const value of [2 ** 32, 2 ** 32 + 1, -(2 ** 31), Infinity]) {
      assert.throws(
        () => Semaphore.create(uniqueName("v"), { value }),
        RangeError,
        "semaphore value",
      );
    }
    assert.throws(
      () => Semaphore.create(uniqueName("v"), { value: "1" as unknown as number }),
      TypeError,
    );
  },
);

ipcTest("semaphores dropped without close() release their sem_t, lock and name on GC", async () => {
  const output = await runDeno(fixture("gc_dropped.ts"), ["semaphore"], {
    flags: ["--allow-all", "--v8-flags=--expose-gc"],
    timeout: 60_000,
  });
  assert.equal(output.code, 0, output.stderr);
  assert.deepEqual(JSON.parse(output.stdout), { made: 400, left: [] });
});

ipcTest(
  "Semaphore.create/init refuse null and non-object options, and a non-boolean persist",
  () => {
    using memory = SharedMemory.anonymous({ size: 4096 });
    for (const options of [null, 7, "value", Symbol("o")]) {
      assert.throws(
        () => Semaphore.create(uniqueName("opts"), options as never),
        { name: "TypeError", message: /options/ },
      );
      assert.throws(() => Semaphore.init(memory, 0, options as never), {
        name: "TypeError",
        message: /options/,
      });
    }
    for (const persist of ["false", 0, 1, null]) {
      assert.throws(() => Semaphore.create(uniqueName("persist"), { persist: persist as never }), {
        name: "TypeError",
        message: /persist/,
      });
    }
  },
);

ipcTest(
  "Semaphore.init/at name the offset in a TypeError or RangeError for any hostile offset",
  () => {
    using memory = SharedMemory.anonymous({ size: 4096 });
    for (const offset of [Symbol.iterator, Object.create(null), 1n, "0", null, undefined]) {
      assert.throws(() => Semaphore.init(memory, offset as never), {
        name: "TypeError",
        message: /offset/,
      });
      assert.throws(() => Semaphore.at(memory, offset as never), {
        name: "TypeError",
        message: /offset/,
      });
    }
    for (const offset of [NaN, -1, 0.5, Infinity, 4096, 2 ** 53]) {
      assert.throws(() => Semaphore.init(memory, offset), {
        name: "RangeError",
        message: /offset/,
      });
    }
    using _placed = Semaphore.init(memory, -0, { value: 1 }); // -0 is offset 0
    using again = Semaphore.at(memory, 0);
    assert.equal(again.value, 1);
  },
);

ipcTest("new Semaphore() from JavaScript is refused: the constructor is private", () => {
  for (const args of [[0, 0, 0, 0], [Deno.UnsafePointer.create(4096n), "", () => {}, "/x"]]) {
    assert.throws(
      () => new (Semaphore as unknown as new (...args: unknown[]) => Semaphore)(...args),
      { name: "TypeError", message: /Semaphore/ },
    );
  }
});
