import assert from "node:assert/strict";
import {
  Channel,
  codecs,
  MessageQueue,
  Semaphore,
  SharedMap,
  SharedMemory,
  SysVMessageQueue,
  SysVSemaphoreSet,
  SysVSharedMemory,
} from "../mod.ts";
import { assertSucceeded, fixture, ipcTest, runDeno, spawnReady, uniqueName } from "./helpers.ts";

const RACERS = 6;

/** A System V key of this run: the pid's low bits under a per-kind prefix, and a counter. */
let keys = 0;
function uniqueKey(): number {
  return (0x0c000000 + ((Deno.pid & 0xfff) << 12) + ++keys) >>> 0;
}

/**
 * Runs RACERS processes that openOrCreate `id` at the same moment (with openOrCreateSync when
 * `form` is "sync"); returns what each saw.
 */
async function race(
  kind: string,
  id: string,
  form: "async" | "sync" = "async",
): Promise<{ created: boolean; ok: boolean }[]> {
  const startAt = String(Date.now() + 1500);
  const outputs = await Promise.all(
    Array.from(
      { length: RACERS },
      () =>
        runDeno(fixture("open_or_create_racer.ts"), [kind, id, startAt, form], {
          flags: ["--allow-all"],
          timeout: 30_000,
        }),
    ),
  );
  return outputs.map((output) => JSON.parse(assertSucceeded(output).stdout));
}

function assertOneCreator(results: { created: boolean; ok: boolean }[]): void {
  assert.equal(results.filter((result) => result.created).length, 1, JSON.stringify(results));
  assert.ok(results.every((result) => result.ok), JSON.stringify(results));
}

const posixKinds: [string, (name: string) => void][] = [
  ["shm", SharedMemory.unlink],
  ["semaphore", Semaphore.unlink],
  ["mqueue", MessageQueue.unlink],
  ["channel", SharedMemory.unlink],
  ["map", SharedMemory.unlink],
];
for (const [kind, unlink] of posixKinds) {
  ipcTest(
    `${kind}: of ${RACERS} processes racing to openOrCreate, one creates and all see it initialised`,
    async () => {
      const name = uniqueName(`race-${kind}`);
      try {
        assertOneCreator(await race(kind, name));
      } finally {
        unlink(name);
      }
    },
  );
}

const sysvKinds: [string, (key: number) => void][] = [
  ["sysv-shm", (key) => SysVSharedMemory.open(key).remove()],
  ["sysv-msg", (key) => SysVMessageQueue.open(key).remove()],
  ["sysv-sem", (key) => SysVSemaphoreSet.open(key).remove()],
];
for (const [kind, remove] of sysvKinds) {
  ipcTest(
    `${kind}: of ${RACERS} processes racing to openOrCreate, one creates and all see it initialised`,
    async () => {
      const key = uniqueKey();
      try {
        assertOneCreator(await race(kind, String(key)));
      } finally {
        remove(key);
      }
    },
  );
}

const syncKinds: [string, () => string, (id: string) => void][] = [
  ["shm", () => uniqueName("race-sync-shm"), SharedMemory.unlink],
  ["semaphore", () => uniqueName("race-sync-sem"), Semaphore.unlink],
  ["sysv-sem", () => String(uniqueKey()), (key) => SysVSemaphoreSet.open(Number(key)).remove()],
];
for (const [kind, makeId, remove] of syncKinds) {
  ipcTest(
    `${kind}: of ${RACERS} processes racing to openOrCreateSync, one creates and all see it initialised`,
    async () => {
      const id = makeId();
      try {
        assertOneCreator(await race(kind, id, "sync"));
      } finally {
        remove(id);
      }
    },
  );
}

ipcTest(
  "openOrCreateSync: a waiter whose creator is SIGKILLed in init times out with TimedOut",
  async () => {
    const name = uniqueName("ooc-sync-killed");
    const creator = await spawnReady(fixture("open_or_create_sync.ts"), ["create", name], {
      flags: ["--allow-all"],
    });
    try {
      const waiting = runDeno(fixture("open_or_create_sync.ts"), ["wait", name, "1500"], {
        flags: ["--allow-all"],
        timeout: 20_000,
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
      await creator.kill(); // inside init: the segment stays at mode 0
      const output = assertSucceeded(await waiting);
      assert.equal(output.signal, null);
      const { error, ms } = JSON.parse(output.stdout);
      assert.equal(error, "TimedOut");
      assert.ok(ms >= 1500, `waited ${ms} ms`);
    } finally {
      await creator.kill();
      SharedMemory.unlink(name);
    }
  },
);

ipcTest("SharedMemory.openOrCreateSync: a segment left at mode 0 times out the opener", () => {
  const name = uniqueName("ooc-sync-stuck");
  using _stuck = SharedMemory.create(name, { size: 64, mode: 0 }); // a creator that died in init
  const started = performance.now();
  assert.throws(
    () => SharedMemory.openOrCreateSync(name, { size: 64, timeout: 100 }),
    Deno.errors.TimedOut,
  );
  assert.ok(performance.now() - started >= 100);
});

ipcTest("openOrCreateSync: the creator runs a sync init, openers see what it wrote", () => {
  const name = uniqueName("ooc-sync-init");
  using creator = SharedMap.openOrCreateSync(name, {
    codec: codecs.text,
    init: (map) => void map.set("seeded", "yes"),
  });
  using opener = SharedMap.openOrCreateSync(name, { codec: codecs.text });
  using memory = SharedMemory.openOrCreateSync(`${name}-shm`, {
    size: 64,
    mode: 0o640,
    init: (created) => void created.bytes.fill(9),
  });
  assert.deepEqual([creator.created, opener.created, opener.get("seeded")], [true, false, "yes"]);
  assert.deepEqual([memory.created, memory.bytes[63]], [true, 9]);
  assert.equal(Deno.statSync(`/dev/shm${name}-shm`).mode! & 0o777, 0o640);
});

ipcTest("openOrCreateSync: an init that returns a promise is a TypeError; nothing is left", () => {
  const name = uniqueName("ooc-sync-async-init");
  for (const persist of [false, true]) {
    assert.throws(
      () => SharedMemory.openOrCreateSync(name, { size: 64, persist, init: async () => {} }),
      (error: Error) => error instanceof TypeError && /returned a promise/.test(error.message),
    );
    assert.throws(() => SharedMemory.open(name), Deno.errors.NotFound);
  }
  assert.throws(
    () => SharedMap.openOrCreateSync(name, { init: () => Promise.resolve() }),
    TypeError,
  );
  assert.throws(() => SharedMemory.open(name), Deno.errors.NotFound);
});

ipcTest("openOrCreateSync rejects bad input before any system call", () => {
  const name = uniqueName("ooc-sync-bad");
  const cases: [() => unknown, typeof TypeError | typeof RangeError][] = [
    [() => SharedMemory.openOrCreateSync(name, { size: 64, mode: 0 }), RangeError],
    [() => SharedMemory.openOrCreateSync(name, { size: 0 }), RangeError],
    [() => SharedMemory.openOrCreateSync(name, { size: 64, init: 5 as never }), TypeError],
    [() => SharedMemory.openOrCreateSync(name, { size: 64, timeout: NaN }), RangeError],
    [() => SharedMemory.openOrCreateSync(null as never, { size: 64 }), TypeError],
    [() => Semaphore.openOrCreateSync(name, { value: -1 }), RangeError],
    [() => Semaphore.openOrCreateSync(name, { timeout: "1" as never }), TypeError],
    [() => MessageQueue.openOrCreateSync(name, { read: false, write: false }), TypeError],
    [() => Channel.openOrCreateSync(name, { capacity: 5000 }), RangeError],
    [() => SharedMap.openOrCreateSync(name, { capacity: -1 }), RangeError],
    [() => SysVSemaphoreSet.openOrCreateSync(uniqueKey(), 1, { values: [1, 2] }), RangeError],
    [() => SysVSharedMemory.openOrCreateSync(0, { size: 64 }), RangeError],
    [() => SysVMessageQueue.openOrCreateSync(uniqueKey(), { mode: -1 }), RangeError],
  ];
  for (const [call, ErrorClass] of cases) assert.throws(call, ErrorClass);
  assert.throws(() => SharedMemory.open(name), Deno.errors.NotFound); // nothing was created
  assert.throws(() => Semaphore.open(name), Deno.errors.NotFound);
});

ipcTest("SharedMemory.openOrCreate: an opener waits for the creator's async init", async () => {
  const name = uniqueName("ooc-wait");
  const ready = Promise.withResolvers<void>();
  const creating = SharedMemory.openOrCreate(name, {
    size: 64,
    init: async (memory) => {
      await ready.promise;
      memory.bytes[0] = 42;
    },
  });
  // The creator is inside init: the name exists with mode 0.
  const opening = SharedMemory.openOrCreate(name, { size: 64 });
  let openedEarly = false;
  void opening.then(() => (openedEarly = true));
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(openedEarly, false, "the opener did not wait for init");
  ready.resolve();
  using creator = await creating;
  using opener = await opening;
  assert.deepEqual([creator.created, opener.created, opener.bytes[0]], [true, false, 42]);
  assert.equal(Deno.statSync(`/dev/shm${name}`).mode! & 0o777, 0o600);
});

ipcTest(
  "SharedMemory.openOrCreate: the mode asked for is set exactly, whatever the umask",
  async () => {
    const name = uniqueName("ooc-mode");
    using memory = await SharedMemory.openOrCreate(name, { size: 64, mode: 0o666 });
    assert.equal(Deno.statSync(`/dev/shm${name}`).mode! & 0o777, 0o666);
    assert.equal(memory.created, true);
  },
);

ipcTest("SharedMemory.openOrCreate: a creator whose init throws removes the segment", async () => {
  const name = uniqueName("ooc-throw");
  const error = await SharedMemory.openOrCreate(name, {
    size: 64,
    persist: true,
    init: () => {
      throw new Error("init failed");
    },
  }).catch((error) => error);
  assert.equal((error as Error).message, "init failed");
  assert.throws(() => SharedMemory.open(name), Deno.errors.NotFound);
});

ipcTest("SharedMemory.openOrCreate: a segment left at mode 0 times out the opener", async () => {
  const name = uniqueName("ooc-stuck");
  using stuck = SharedMemory.create(name, { size: 64, mode: 0 }); // a creator that died in init
  const started = performance.now();
  await assert.rejects(
    SharedMemory.openOrCreate(name, { size: 64, timeout: 100 }),
    Deno.errors.TimedOut,
  );
  assert.ok(performance.now() - started >= 100);
  assert.equal(stuck.created, true);
});

ipcTest("openOrCreate: an abort signal ends the wait", async () => {
  const name = uniqueName("ooc-abort");
  using _stuck = SharedMemory.create(name, { size: 64, mode: 0 });
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error("gave up")), 30);
  await assert.rejects(
    Channel.openOrCreate(name, { signal: controller.signal, timeout: Infinity }),
    /gave up/,
  );
});

ipcTest("created is true for create(), false for open()", () => {
  const name = uniqueName("ooc-created");
  using made = SharedMap.create({ name, codec: codecs.text });
  using opened = SharedMap.open(name, { codec: codecs.text });
  assert.deepEqual([made.created, opened.created], [true, false]);
  using anonymous = Channel.create({ capacity: 4096 });
  assert.equal(anonymous.created, true);
});

ipcTest("openOrCreate rejects bad input before any system call", async () => {
  const name = uniqueName("ooc-bad");
  const cases: [() => Promise<unknown>, typeof TypeError | typeof RangeError][] = [
    [() => SharedMemory.openOrCreate(name, { size: 64, mode: 0 }), RangeError],
    [() => SharedMemory.openOrCreate(name, { size: 0 }), RangeError],
    [() => SharedMemory.openOrCreate(name, { size: 64, init: 5 as never }), TypeError],
    [() => SharedMemory.openOrCreate(name, { size: 64, timeout: -1 }), RangeError],
    [() => SharedMemory.openOrCreate("no-slash", { size: 64 }), TypeError],
    [() => Semaphore.openOrCreate(name, { value: -1 }), RangeError],
    [() => MessageQueue.openOrCreate(name, { read: false, write: false }), TypeError],
    [() => Channel.openOrCreate(name, { capacity: 5000 }), RangeError],
    [() => SysVSemaphoreSet.openOrCreate(uniqueKey(), 1, { values: [1, 2] }), RangeError],
    [() => SysVSharedMemory.openOrCreate(0, { size: 64 }), RangeError],
  ];
  for (const [call, ErrorClass] of cases) {
    await assert.rejects(call(), ErrorClass);
  }
  assert.throws(() => SharedMemory.open(name), Deno.errors.NotFound); // nothing was created
});
