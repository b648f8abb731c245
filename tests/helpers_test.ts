import assert from "node:assert/strict";
import { MessageQueue, SharedMemory } from "../mod.ts";
import { ipcSnapshot, uniqueName } from "./helpers.ts";

Deno.test("the leak check sees a segment's name, descriptor and mapping until it is closed", () => {
  const before = ipcSnapshot();
  const name = uniqueName("snapshot");
  using memory = SharedMemory.create(name, { size: 4096 });
  const added = [...ipcSnapshot()].filter((entry) => !before.has(entry));
  assert.ok(added.includes(`/dev/shm${name}`), "the name");
  assert.ok(added.some((entry) => entry.startsWith("fd ") && entry.endsWith(`/dev/shm${name}`)));
  assert.ok(
    added.some((entry) => entry.startsWith("mapping ") && entry.endsWith(`/dev/shm${name}`)),
  );
  memory.close();
  assert.deepEqual([...ipcSnapshot()].filter((entry) => !before.has(entry)), []);
});

Deno.test("the leak check sees a child process until it is reaped", async () => {
  const before = ipcSnapshot();
  const child = new Deno.Command("sleep", { args: ["5"] }).spawn();
  const added = [...ipcSnapshot()].filter((entry) => !before.has(entry));
  assert.deepEqual(added, [`child process ${child.pid}`]);
  child.kill("SIGKILL");
  await child.status;
  assert.deepEqual([...ipcSnapshot()].filter((entry) => !before.has(entry)), []);
});

Deno.test("the leak check sees a message queue until it is closed", () => {
  const before = ipcSnapshot();
  const name = uniqueName("queue");
  using queue = MessageQueue.create(name);
  const added = [...ipcSnapshot()].filter((entry) => !before.has(entry));
  assert.ok(added.includes(`/dev/mqueue${name}`), "the queue");
  assert.ok(
    added.some((entry) => entry.startsWith("fd ") && entry.endsWith(name)),
    "its descriptor",
  );
  queue.close();
  assert.deepEqual([...ipcSnapshot()].filter((entry) => !before.has(entry)), []);
});
