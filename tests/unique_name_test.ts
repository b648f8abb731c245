/**
 * Generated names (`create(null, …)`, `name: null`): unique across processes, usable by a
 * process that gets them in a message, owned like given names. The leak check judges names
 * with the test prefix, which generated names do not carry: each test checks its own.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  Channel,
  codecs,
  MessageQueue,
  Semaphore,
  Server,
  SharedMap,
  SharedMemory,
  Topic,
} from "../mod.ts";
import {
  createUnderName,
  GENERATED_NAME_ATTEMPTS,
  GENERATED_NAME_PREFIX,
} from "../src/_unique_name.ts";
import {
  assertSucceeded,
  fixture,
  ipcTest,
  pathExists,
  queueExists,
  runDeno,
  uniqueName,
} from "./helpers.ts";

/** A generated name: the prefix, then 128 bits in hex. */
const GENERATED = /^\/posix-ipc-[0-9a-f]{32}$/;

/**
 * Runs `fn` with `crypto.getRandomValues` answering one fixed pattern, chosen at random per
 * call of this, so that every name generated meanwhile is the returned one: a test can then
 * judge exactly the objects it could have made, in a namespace other programs share.
 */
function withKnownName(fn: (name: string) => void): string {
  const pattern = crypto.getRandomValues(new Uint8Array(16));
  const name = GENERATED_NAME_PREFIX +
    Array.from(pattern, (b) => b.toString(16).padStart(2, "0")).join("");
  const original = crypto.getRandomValues;
  crypto.getRandomValues = (<T extends ArrayBufferView | null>(array: T): T => {
    if (array instanceof Uint8Array) array.set(pattern.subarray(0, array.length));
    return array;
  }) as typeof crypto.getRandomValues;
  try {
    fn(name);
  } finally {
    crypto.getRandomValues = original;
  }
  return name;
}

/** Whether a shared memory segment, a semaphore or a queue has `name`. */
function nameInUse(name: string): boolean {
  return pathExists(`/dev/shm${name}`) || pathExists(`/dev/shm/sem.${name.slice(1)}`) ||
    queueExists(name);
}

ipcTest("create(null) generates a name, owned: marked for ipc gc, removed on close", () => {
  const memory = SharedMemory.create(null, { size: 4096 });
  const semaphore = Semaphore.create(null, { value: 2 });
  const queue = MessageQueue.create(null, { maxMessages: 2, messageSize: 64 });
  const names = [memory.name!, semaphore.name!, queue.name];
  for (const name of names) assert.match(name, GENERATED);
  assert.equal(new Set(names).size, 3);
  const shmPath = `/dev/shm${memory.name}`;
  const semPath = `/dev/shm/sem.${semaphore.name!.slice(1)}`;
  // The mark `ipc gc` goes by (the sticky bit), as for a given name created without persist.
  assert.equal(Deno.statSync(shmPath).mode! & 0o1777, 0o1600);
  assert.equal(Deno.statSync(semPath).mode! & 0o1777, 0o1600);
  assert.deepEqual([memory.created, semaphore.created, queue.created], [true, true, true]);
  using opened = Semaphore.open(semaphore.name!);
  assert.equal(opened.value, 2);
  memory.close();
  semaphore.close();
  queue.close();
  assert.equal(pathExists(shmPath), false);
  assert.equal(pathExists(semPath), false);
  assert.throws(() => MessageQueue.open(names[2]!), Deno.errors.NotFound);
  assert.equal(semaphore.name, names[1]); // still readable after close
});

ipcTest("create(null, { persist: true }) keeps the generated name after close", () => {
  const memory = SharedMemory.create(null, { size: 64, persist: true });
  const semaphore = Semaphore.create(null, { persist: true });
  const queue = MessageQueue.create(null, { maxMessages: 1, messageSize: 8, persist: true });
  memory.close();
  semaphore.close();
  queue.close();
  try {
    SharedMemory.open(memory.name!).close();
    Semaphore.open(semaphore.name!).close();
    MessageQueue.open(queue.name).close();
  } finally {
    SharedMemory.unlink(memory.name!);
    Semaphore.unlink(semaphore.name!);
    MessageQueue.unlink(queue.name);
  }
});

ipcTest("name: null generates a name for Channel, Topic, SharedMap and Server", async () => {
  using channel = Channel.create({ name: null, capacity: 4096, codec: codecs.text });
  using topic = Topic.create({ name: null, capacity: 4096 });
  using map = SharedMap.create({ name: null, capacity: 4, codec: codecs.text });
  await using server = Server.create((text: string) => text.toUpperCase(), {
    name: null,
    capacity: 4096,
    codec: codecs.text,
  });
  const names = [channel.name, topic.name, map.name, server.name] as string[];
  for (const name of names) assert.match(name, GENERATED);
  using opened = Channel.open(channel.name!, { codec: codecs.text });
  channel.sendSync("hi");
  assert.equal(opened.tryReceive(), "hi");
  using anonymous = Channel.create({ capacity: 4096 }); // no name: still anonymous
  assert.equal(anonymous.name, null);
  channel.close();
  topic.close();
  map.close();
  await server.close();
  for (const name of names) assert.equal(pathExists(`/dev/shm${name}`), false, name);
});

ipcTest("two processes each create 200 objects with generated names: no clash", async () => {
  const outputs = await Promise.all(
    [0, 1].map(() =>
      runDeno(fixture("unique_names.ts"), ["make", "200"], {
        flags: ["--allow-all"],
        timeout: 30_000,
      })
    ),
  );
  const names = outputs.flatMap((output) => JSON.parse(assertSucceeded(output).stdout));
  assert.equal(names.length, 400);
  assert.equal(new Set(names).size, 400);
  for (const name of names) assert.match(name, GENERATED);
  // The owners closed them: every name went with its handle.
  assert.deepEqual(names.filter(nameInUse), []);
});

ipcTest("a generated name sent to a child in a message is all it needs to open", async () => {
  using memory = SharedMemory.create(null, { size: 4096 });
  using semaphore = Semaphore.create(null, { value: 0 });
  using queue = MessageQueue.create(null, { maxMessages: 2, messageSize: 64 });
  using channel = Channel.create({ name: null, capacity: 4096, codec: codecs.text });
  memory.bytes[0] = 77;
  const message = JSON.stringify({
    shm: memory.name,
    sem: semaphore.name,
    mq: queue.name,
    channel: channel.name,
  });
  const output = await runDeno(fixture("unique_names.ts"), ["open"], {
    flags: ["--allow-all"],
    stdin: message, // through a pipe
    timeout: 30_000,
  });
  assert.deepEqual(JSON.parse(assertSucceeded(output).stdout), { byte: 77 });
  assert.equal(semaphore.tryWait(), true);
  assert.equal(new TextDecoder().decode(queue.tryReceive()?.data), "from the child");
  assert.equal(channel.tryReceive(), "hello by name");
});

ipcTest("bad names and options are refused before any object is made", () => {
  const hostile = {
    get size(): number {
      throw new Error("size read");
    },
  };
  const cases: [() => unknown, typeof TypeError | typeof RangeError | typeof Error][] = [
    [() => SharedMemory.create(5 as never, { size: 64 }), TypeError],
    [() => SharedMemory.create("" as never, { size: 64 }), TypeError],
    [() => SharedMemory.create(undefined as never, { size: 64 }), TypeError],
    [() => SharedMemory.create(null, { size: 0 }), RangeError],
    [() => SharedMemory.create(null, { size: 64, mode: 0o10000 }), RangeError],
    [() => SharedMemory.create(null, { size: 64, persist: "yes" as never }), TypeError],
    [() => SharedMemory.create(null, hostile), Error],
    [() => SharedMemory.create(null, Object.create({ size: 64 })), TypeError], // not own
    [() => Semaphore.create(5 as never), TypeError],
    [() => Semaphore.create(null, { value: -1 }), RangeError],
    [() => Semaphore.create(null, 7 as never), TypeError],
    [() => MessageQueue.create({} as never), TypeError],
    [() => MessageQueue.create(null, { maxMessages: 0 }), RangeError],
    [() => Channel.create({ name: 5 as never }), TypeError],
    [() => Channel.create({ name: null, capacity: 5000 }), RangeError],
    [() => SharedMap.create({ name: "" as never }), TypeError],
    [() => Topic.create({ name: null, capacity: 3 }), RangeError],
  ];
  const generated = withKnownName(() => {
    for (const [call, ErrorClass] of cases) assert.throws(call, ErrorClass);
  });
  assert.equal(nameInUse(generated), false);
  // With good input the same stand-in does make the object: the check above can fail.
  withKnownName((name) => {
    using made = SharedMemory.create(null, { size: 64 });
    assert.equal(made.name, name);
    assert.equal(nameInUse(name), true);
  });
  assert.throws(() => SharedMemory.create(5 as never, { size: 64 }), /or null to generate one/);
});

ipcTest(
  "a clash with an existing name is retried with a fresh one, a bounded number of times",
  () => {
    const taken = uniqueName("clash");
    using existing = SharedMemory.create(taken, { size: 64 });
    const fresh = uniqueName("clash-fresh");
    const offered = [taken, fresh];
    using made = createUnderName(
      null,
      (name) => SharedMemory.create(name, { size: 64 }),
      () => offered.shift()!,
    );
    assert.deepEqual([made.name, existing.created], [fresh, true]);
    let tries = 0;
    assert.throws(
      () =>
        createUnderName(null, (name) => SharedMemory.create(name, { size: 64 }), () => {
          tries++;
          return taken;
        }),
      Deno.errors.AlreadyExists,
    );
    assert.equal(tries, GENERATED_NAME_ATTEMPTS);
  },
);
