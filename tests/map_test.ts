import assert from "node:assert/strict";
import {
  type ChildProcess,
  codecs,
  IpcError,
  Mutex,
  SharedMap,
  SharedMemory,
  spawnDeno,
} from "../mod.ts";
import { HEADER, LOCK_AT, S_VALUE_LENGTH } from "../src/map/layout.ts";
import { fixture, ipcTest, runDeno, thrown, uniqueName } from "./helpers.ts";
import {
  checkedValue,
  counterOf,
  counterValue,
  isWhole,
  slotOf,
} from "./fixtures/shared_map_value.ts";

const child = fixture("shared_map_child.ts");
const decoder = new TextDecoder();

/** Starts the fixture with the map as fd 3 (and `fd4` as fd 4) and its stdout piped. */
function start(
  map: SharedMap<Uint8Array>,
  args: string[],
  fd4?: SharedMemory,
): ChildProcess {
  return spawnDeno(child, {
    args,
    permissions: { ffi: true, read: true, run: true }, // run: "pause" stops itself
    fds: fd4 ? { 3: map, 4: fd4 } : { 3: map },
    stdout: "piped",
  });
}

/** Waits until `pid` is stopped (state T in /proc), for at most 10 s. */
async function stopped(pid: number): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("T")) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`process ${pid} did not stop`);
}

/** Reads the child's stdout until a line equal to `line`. */
async function until(process: ChildProcess, line: string): Promise<void> {
  let text = "";
  const buffer = new Uint8Array(256);
  while (!text.split("\n").includes(line)) {
    const n = await process.stdout!.read(buffer);
    if (n === null || n === 0) throw new Error(`the child ended before "${line}": ${text}`);
    text += decoder.decode(buffer.subarray(0, n));
  }
}

/** Runs the fixture to its end, with a bound, and returns what it printed. */
async function run(map: SharedMap<Uint8Array>, args: string[]): Promise<string> {
  const process = start(map, args);
  const watchdog = setTimeout(() => process.kill("SIGKILL"), 60_000);
  const { status, stdout } = await process.output();
  clearTimeout(watchdog);
  assert.equal(status.state === "exited" && status.code, 0, `fixture ${args.join(" ")} failed`);
  return decoder.decode(stdout);
}

ipcTest("SharedMap behaves as a Map of strings: set, get, has, delete, size, clear", () => {
  using map = SharedMap.create({ codec: codecs.json, capacity: 8 });
  assert.equal(map.size, 0);
  assert.equal(map.set("a", 1), map);
  map.set("b", { nested: [1, "x"] });
  assert.equal(map.get("a"), 1);
  assert.deepEqual(map.get("b"), { nested: [1, "x"] });
  assert.equal(map.get("c"), undefined);
  assert.equal(map.has("a"), true);
  assert.equal(map.has("c"), false);
  map.set("a", 2);
  assert.equal(map.get("a"), 2);
  assert.equal(map.size, 2);
  assert.equal(map.delete("a"), true);
  assert.equal(map.delete("a"), false);
  assert.equal(map.has("a"), false);
  assert.equal(map.size, 1);
  map.clear();
  assert.equal(map.size, 0);
  assert.equal(map.get("b"), undefined);
});

ipcTest(
  "SharedMap treats __proto__, constructor and other prototype names as ordinary keys",
  () => {
    using map = SharedMap.create({ codec: codecs.text, capacity: 16 });
    const keys = [
      "__proto__",
      "constructor",
      "toString",
      "hasOwnProperty",
      "valueOf",
      "",
      "ключ 🔑",
    ];
    for (const key of keys) assert.equal(map.has(key), false, key);
    for (const key of keys) map.set(key, `value of ${key}`);
    for (const key of keys) assert.equal(map.get(key), `value of ${key}`);
    assert.deepEqual([...map.keys()].sort(), [...keys].sort());
    assert.equal(Object.getPrototypeOf(map), SharedMap.prototype);
  },
);

ipcTest("SharedMap iterates every entry once, each consistent", () => {
  using map = SharedMap.create({ codec: codecs.json, capacity: 100 });
  for (let i = 0; i < 100; i++) map.set(`key${i}`, { i });
  for (let i = 0; i < 100; i += 3) map.delete(`key${i}`);
  const entries = [...map];
  assert.equal(entries.length, map.size);
  for (const [key, value] of entries) assert.equal(key, `key${(value as { i: number }).i}`);
  assert.deepEqual(new Set(map.keys()).size, map.size);
  assert.deepEqual([...map.values()].length, map.size);
  assert.deepEqual([...map.entries()], entries);
});

ipcTest("SharedMap.update() reads, changes and writes under the lock, or deletes", () => {
  using map = SharedMap.create({ codec: codecs.json });
  assert.equal(map.update("n", (n) => ((n as number | undefined) ?? 0) + 1), 1);
  assert.equal(map.update("n", (n) => (n as number) + 10), 11);
  assert.equal(map.get("n"), 11);
  assert.equal(map.update("n", () => undefined), undefined);
  assert.equal(map.has("n"), false);
  assert.throws(() => map.update("n", () => Promise.resolve(1) as never), TypeError);
  assert.throws(() => map.update("n", 1 as never), TypeError);
  assert.throws(() =>
    map.update("n", () => {
      throw new SyntaxError("mine");
    }), SyntaxError);
  assert.equal(map.has("n"), false, "a throwing update changes nothing");
  // A read inside the function sees the map; a write inside it cannot take the lock again.
  map.set("other", 5);
  assert.equal(map.update("n", () => (map.get("other") as number) * 2), 10);
  const error = thrown(() => map.update("n", () => void map.set("x", 1)));
  assert.ok(error instanceof IpcError && error.code === "EDEADLK", String(error));
  assert.equal(map.get("n"), 10);
  const closing = SharedMap.create({ codec: codecs.json });
  assert.throws(() => closing.update("k", () => (closing.close(), 1)), Deno.errors.BadResource);
  assert.equal(closing.closed, true);
});

ipcTest("SharedMap refuses keys and values that do not fit, before any change", () => {
  using map = SharedMap.create({ maxKeyBytes: 4, maxValueBytes: 8 });
  map.set("abcd", new Uint8Array(8)); // exactly the limits
  assert.throws(() => map.set("abcde", new Uint8Array(1)), RangeError);
  assert.throws(() => map.set("éé€", new Uint8Array(1)), /7 UTF-8 bytes/);
  assert.throws(() => map.set("a", new Uint8Array(9)), /maxValueBytes is 8/);
  assert.throws(() => map.get("\ud800"), /lone surrogate/);
  assert.throws(() => map.set("\udc00x", new Uint8Array(1)), TypeError);
  assert.throws(() => map.get(1 as never), TypeError);
  assert.throws(() => map.set("a", "text" as never), TypeError);
  assert.equal(map.size, 1);
});

ipcTest("SharedMap create options are checked, prototype keys are no options", () => {
  assert.throws(() => SharedMap.create({ capacity: 0 }), RangeError);
  assert.throws(() => SharedMap.create({ capacity: NaN }), RangeError);
  assert.throws(() => SharedMap.create({ capacity: 2 ** 32 }), RangeError);
  assert.throws(() => SharedMap.create({ capacity: "10" as never }), TypeError);
  assert.throws(() => SharedMap.create({ maxValueBytes: 2 ** 26, capacity: 2 ** 10 }), /2 GiB/);
  assert.throws(() => SharedMap.create({ whenFull: "toString" as never }), TypeError);
  assert.throws(() => SharedMap.create({ persist: "yes" as never }), TypeError);
  assert.throws(() => SharedMap.create(null as never), TypeError);
  using inherited = SharedMap.create(Object.create({ capacity: 0, whenFull: "nope" }));
  assert.equal(inherited.capacity, 1024, "inherited keys are no options");
  assert.throws(() => new (SharedMap as never as new () => unknown)(), /Illegal constructor/);
});

ipcTest("a full SharedMap throws ENOSPC for a new key, and still replaces existing ones", () => {
  using map = SharedMap.create({ name: uniqueName("map-full"), codec: codecs.text, capacity: 2 });
  map.set("a", "1").set("b", "2");
  const error = thrown(() => map.set("c", "3"));
  assert.ok(error instanceof IpcError, String(error));
  assert.equal(error.code, "ENOSPC");
  assert.equal(error.objectName, map.name);
  assert.match(error.message, /capacity of 2 entries/);
  map.set("a", "one");
  assert.equal(map.get("a"), "one");
  map.delete("b");
  map.set("c", "3");
  assert.deepEqual([...map.keys()].sort(), ["a", "c"]);
});

ipcTest("whenFull evict-lru evicts the entry written least recently", () => {
  using map = SharedMap.create({ codec: codecs.json, capacity: 3, whenFull: "evict-lru" });
  assert.equal(map.whenFull, "evict-lru");
  map.set("a", 1).set("b", 2).set("c", 3);
  map.set("a", 10); // now b is the oldest write
  map.get("b"); // reads do not count
  map.set("d", 4);
  assert.deepEqual([...map.keys()].sort(), ["a", "c", "d"]);
  map.update("e", () => 5);
  assert.deepEqual([...map.keys()].sort(), ["a", "d", "e"]);
  assert.equal(map.size, 3);
});

ipcTest("lookups stay correct through heavy churn of deletes and inserts", () => {
  using map = SharedMap.create({ codec: codecs.json, capacity: 64 });
  const mirror = new Map<string, number>();
  let state = 7;
  for (let i = 0; i < 20_000; i++) {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    const key = `k${state % 200}`;
    if (mirror.has(key) || mirror.size === 64) {
      assert.equal(map.delete(key), mirror.delete(key));
    } else {
      map.set(key, i);
      mirror.set(key, i);
    }
  }
  assert.equal(map.size, mirror.size);
  for (let k = 0; k < 200; k++) assert.equal(map.get(`k${k}`), mirror.get(`k${k}`));
});

ipcTest("a named SharedMap opens by name; its creator removes the name, unless persist", () => {
  const name = uniqueName("map-named");
  const created = SharedMap.create({ name, codec: codecs.json, capacity: 10 });
  using opened = SharedMap.open(name, { codec: codecs.json });
  created.set("k", "v");
  assert.equal(opened.get("k"), "v");
  assert.equal(opened.capacity, 10);
  assert.equal(opened.name, name);
  assert.throws(() => SharedMap.open(name), /created with json/);
  created.close();
  created.close(); // harmless
  assert.throws(() => SharedMap.open(name, { codec: codecs.json }), Deno.errors.NotFound);
  assert.equal(opened.get("k"), "v", "an opened handle keeps the map");
  const kept = uniqueName("map-persist");
  SharedMap.create({ name: kept, persist: true }).close();
  SharedMap.open(kept).close();
  SharedMemory.unlink(kept);
});

ipcTest(
  "opening memory that holds no map, or a header bigger than its segment, is InvalidData",
  () => {
    const name = uniqueName("map-forged");
    using memory = SharedMemory.create(name, { size: 8192 });
    assert.throws(() => SharedMap.open(name), Deno.errors.InvalidData);
    using real = SharedMap.create({ capacity: 4 });
    using copy = SharedMemory.fromFd(real);
    memory.bytes.set(copy.bytes.subarray(0, HEADER));
    SharedMap.open(name).close(); // 8 slots fit in 8192 bytes
    const cells = new Int32Array(memory.buffer);
    cells[2] = 1000; // capacity
    cells[3] = 2000; // slots
    assert.throws(() => SharedMap.open(name), /cannot hold/);
    cells[2] = 4;
    cells[3] = 8;
    cells[7] = 8; // stride
    assert.throws(() => SharedMap.open(name), Deno.errors.InvalidData);
  },
);

ipcTest(
  "a stored length beyond the value's room is InvalidData, never a read out of bounds",
  () => {
    using map = SharedMap.create({ maxValueBytes: 8 });
    map.set("k", new Uint8Array([1]));
    using memory = SharedMemory.fromFd(map);
    const slot = slotOf(memory, "k");
    const cells = new Int32Array(memory.buffer);
    cells[(slot >>> 2) + S_VALUE_LENGTH] = cells[(slot >>> 2) + S_VALUE_LENGTH + 1] = 1 << 20;
    assert.throws(() => map.get("k"), Deno.errors.InvalidData);
    assert.throws(() => [...map], Deno.errors.InvalidData);
  },
);

ipcTest(
  "a closed SharedMap throws BadResource from every member; closing again is harmless",
  async () => {
    const map = SharedMap.create();
    map.close();
    map[Symbol.dispose]();
    assert.equal(map.closed, true);
    for (
      const use of [
        () => map.get("a"),
        () => map.has("a"),
        () => map.set("a", new Uint8Array(1)),
        () => map.delete("a"),
        () => map.update("a", () => undefined),
        () => map.clear(),
        () => map.entries(),
        () => map.keys(),
        () => map.size,
        () => map.fd,
      ]
    ) {
      assert.throws(use, Deno.errors.BadResource);
    }
    for (
      const use of [
        () => map.setAsync("a", new Uint8Array(1)),
        () => map.deleteAsync("a"),
        () => map.updateAsync("a", () => undefined),
        () => map.clearAsync(),
      ]
    ) {
      await assert.rejects(use, Deno.errors.BadResource);
    }
  },
);

ipcTest(
  "a child process gets the map through a descriptor and sees the parent's entries",
  async () => {
    using map = SharedMap.create();
    map.set("from-parent", new Uint8Array([9, 8]));
    const output = await run(map, ["roundtrip"]);
    assert.equal(output.trim(), "from-parent 9,8");
    assert.deepEqual(map.get("from-child"), new Uint8Array([1, 2, 3]));
  },
);

ipcTest("an unrelated process opens a named map by its name and shares its entries", async () => {
  const name = uniqueName("map-by-name");
  using map = SharedMap.create({ name });
  map.set("from-parent", new Uint8Array([4]));
  const output = await runDeno(child, ["roundtrip", name], { timeout: 60_000 });
  assert.equal(output.code, 0, output.stderr);
  assert.equal(output.stdout.trim(), "from-parent 4");
  assert.deepEqual(map.get("from-child"), new Uint8Array([1, 2, 3]));
});

ipcTest(
  "readers never see a torn value while 3 writer processes set and update the same keys",
  async () => {
    using map = SharedMap.create({ capacity: 64, maxValueBytes: 16384 });
    const writers = [1, 2, 3].map((seed) => start(map, ["write", "8", "150000", String(seed)]));
    for (const writer of writers) await until(writer, "ready");
    const reader = run(map, ["read", "8", "200000"]); // each read checks ~8 KiB in JS: ~25 µs
    let reads = 0;
    let torn = 0;
    let entries = 0;
    const running = Promise.all(writers.map((w) => w.status));
    let done = false;
    running.then(() => done = true);
    while (!done) {
      for (let key = 0; key < 8; key++) {
        const value = map.get(`k${key}`);
        if (value === undefined) continue;
        reads++;
        if (!isWhole(value, key)) torn++;
      }
      for (const [key, value] of map) {
        entries++;
        if (!isWhole(value, Number(key.slice(1)))) torn++;
      }
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    for (const status of await running) assert.equal(status.success, true);
    const [, childReads, childTorn] = (await reader).match(/reads (\d+) torn (\d+)/)!;
    assert.equal(torn, 0, `${torn} torn of ${reads} reads and ${entries} entries here`);
    assert.equal(Number(childTorn), 0, `${childTorn} torn of ${childReads} in the reader child`);
    assert.ok(reads > 1000 && Number(childReads) > 1000, `${reads}, ${childReads} reads`);
    assert.equal(map.size, 8);
  },
);

ipcTest(
  "a writer killed with SIGKILL mid-write leaves every entry whole and none lost, and the map goes on",
  async () => {
    using map = SharedMap.create({ capacity: 16, maxValueBytes: 1 << 20 });
    using memory = SharedMemory.fromFd(map);
    using mutex = Mutex.at(memory, LOCK_AT);
    const random = () => Math.random();
    for (let key = 0; key < 12; key++) map.set(`k${key}`, checkedValue(key, random, 1 << 20));
    let landed = 0;
    for (let attempt = 0; attempt < 5; attempt++) {
      const writer = start(map, ["write", "12", "0", String(attempt + 1)]);
      await until(writer, "ready");
      await new Promise((resolve) => setTimeout(resolve, 5 + attempt * 10));
      writer.kill("SIGKILL");
      const status = await writer.status;
      assert.equal(status.state === "signaled" && status.signal, "SIGKILL");
      if (mutex.owner === writer.pid) landed++; // killed holding the lock: inside a write
      // Before any repair: every key is there, with a whole value (the old one or the new).
      for (let key = 0; key < 12; key++) {
        const value = map.get(`k${key}`);
        assert.ok(value !== undefined && isWhole(value, key), `k${key} lost or torn`);
      }
      for (const [key, value] of map) assert.ok(isWhole(value, Number(key.slice(1))));
      // The next write repairs the count: the size counts what is there.
      map.set("after", new Uint8Array([1]));
      assert.equal(map.size, 13);
      assert.equal([...map].length, 13);
      map.delete("after");
    }
    assert.ok(landed >= 1, "no kill landed inside a write: the test did not test anything");
  },
);

ipcTest(
  "a counter kept by update() in a writer SIGKILLed at random instants never restarts: it " +
    "counts every update that returned, plus at most the one killed after publishing",
  async () => {
    const length = 16384; // a long copy, for kills to land inside it
    using map = SharedMap.create({ capacity: 4, maxValueBytes: length });
    using reported = SharedMemory.anonymous({ size: 4 });
    using memory = SharedMemory.fromFd(map);
    using mutex = Mutex.at(memory, LOCK_AT);
    const report = new Int32Array(reported.buffer, 0, 1);
    let landed = 0;
    let last = 0;
    for (let kill = 0; kill < 20; kill++) {
      const counter = start(map, ["count", "n", String(length)], reported);
      await until(counter, "ready");
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 30));
      counter.kill("SIGKILL");
      const status = await counter.status;
      assert.equal(status.state === "signaled" && status.signal, "SIGKILL");
      if (mutex.owner === counter.pid) landed++;
      const value = map.get("n");
      const count = value === undefined ? 0 : counterOf(value); // throws if torn
      const returned = Atomics.load(report, 0);
      assert.ok(
        count === returned || count === returned + 1,
        `kill ${kill}: the counter is ${count}, and ${returned} updates returned`,
      );
      assert.ok(count >= last, `kill ${kill}: the counter went back from ${last} to ${count}`);
      last = count;
      // The next child is judged from here: a kill right after its first publish leaves the
      // counter one past this, not two past what the child before it reported.
      Atomics.store(report, 0, count);
    }
    assert.ok(landed >= 1, "no kill landed inside an update: the test did not test anything");
    assert.ok(last > 20, `only ${last} updates were made`);
    map.update("n", (value) => counterValue(counterOf(value!) + 1, length));
    assert.equal(counterOf(map.get("n")!), last + 1);
    assert.equal(map.size, 1);
  },
);

ipcTest("a writer killed inside update() leaves the lock to the next writer", async () => {
  using map = SharedMap.create({ codec: codecs.bytes });
  map.set("held", new Uint8Array([1]));
  const holder = start(map, ["hold", "held"]);
  await until(holder, "inside");
  using memory = SharedMemory.fromFd(map);
  using mutex = Mutex.at(memory, LOCK_AT);
  assert.equal(mutex.owner, holder.pid);
  assert.throws(() => map.set("x", new Uint8Array(1), { timeout: 50 }), Deno.errors.TimedOut);
  assert.deepEqual(map.get("held"), new Uint8Array([1]), "readers go on meanwhile");
  holder.kill("SIGKILL");
  await holder.status;
  map.set("x", new Uint8Array([2]), { timeout: 5000 });
  assert.deepEqual(map.get("x"), new Uint8Array([2]));
  assert.deepEqual(map.get("held"), new Uint8Array([1]));
  assert.equal(mutex.owner, null);
});

ipcTest(
  "async writes wait for a SIGSTOPped lock holder without blocking the event loop: they time " +
    "out, abort, succeed after SIGCONT, and recover the lock after SIGKILL; reads never wait",
  async () => {
    using map = SharedMap.create();
    map.set("held", new Uint8Array([1]));
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    try {
      const holder = start(map, ["pause", "held"]);
      await until(holder, "inside");
      await stopped(holder.pid);
      const one = new Uint8Array([2]);
      const before = ticks;
      await assert.rejects(map.setAsync("x", one, { timeout: 150 }), Deno.errors.TimedOut);
      assert.ok(ticks - before >= 3, `the event loop ran ${ticks - before} ticks meanwhile`);
      const controller = new AbortController();
      const aborted = map.deleteAsync("held", { signal: controller.signal });
      setTimeout(() => controller.abort(new Error("no longer needed")), 20);
      await assert.rejects(aborted, /no longer needed/);
      assert.deepEqual(map.get("held"), new Uint8Array([1]), "a read never waits for the writer");
      assert.equal(map.has("held"), true);
      const pending = map.updateAsync("held", (value) => new Uint8Array([value![0]! + 1]), {
        timeout: 20_000,
      });
      holder.kill("SIGCONT");
      assert.deepEqual(await pending, new Uint8Array([2]));
      assert.equal((await holder.status).success, true);

      const killed = start(map, ["pause", "held"]);
      await until(killed, "inside");
      await stopped(killed.pid);
      const recovered = map.setAsync("y", one, { timeout: 20_000 });
      killed.kill("SIGKILL");
      await killed.status;
      await recovered;
      assert.deepEqual(map.get("y"), one);
      await map.clearAsync({ timeout: 1000 });
      assert.equal(map.size, 0);
    } finally {
      clearInterval(timer);
    }
  },
);

ipcTest(
  "200 shared maps dropped without close() give back their mappings, fds and names to the garbage collector",
  async () => {
    const output = await runDeno(fixture("shared_map_gc.ts"), [uniqueName("map-gc")], {
      flags: ["--allow-all", "--v8-flags=--expose-gc"],
      timeout: 60_000,
    });
    assert.equal(output.code, 0, `exit ${output.code} (${output.signal}): ${output.stderr}`);
    const { dropped, collected } = JSON.parse(output.stdout);
    assert.ok(dropped.maps >= 200 && dropped.names === 100, `they were made: ${output.stdout}`);
    assert.deepEqual(collected, { maps: 0, fds: 0, names: 0 }, output.stdout);
  },
);
