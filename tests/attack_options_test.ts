// Attacks on options: getters that change their answer between reads (TOCTOU). Run in a child
// with a bounded time: before the fix a sync wait hung.
import assert from "node:assert/strict";
import {
  Channel,
  codecs,
  IPC_PRIVATE,
  Mapping,
  Semaphore,
  SharedMemory,
  spawn,
  SysVMessageQueue,
  Topic,
} from "../mod.ts";
import { fixture, ipcTest, runDeno, uniqueName } from "./helpers.ts";

ipcTest(
  "waits read their options once: a timeout getter that answers 100 and then NaN, a string, " +
    "-1 or undefined still ends the wait after 100 ms",
  async () => {
    const output = await runDeno(fixture("attack_options.ts"), [], {
      flags: ["--allow-ffi"],
      timeout: 60_000,
    });
    assert.equal(output.code, 0, `${output.signal} ${output.stderr}`);
    const lines = output.stdout.trim().split("\n");
    assert.equal(lines.length, 44, output.stdout);
    for (const line of lines) assert.match(line, / TimedOut bounded$/);
  },
);

/** An object whose `key` answers `first` at the first read and `later` after. */
function shifting(key: string, first: unknown, later: unknown): Record<string, unknown> {
  let reads = 0;
  return Object.defineProperty({}, key, {
    get: () => (reads++ === 0 ? first : later),
    enumerable: true,
  });
}

ipcTest("Channel.create() reads each option once: a name that appears at the second read", () => {
  // Before: an anonymous channel was made (first read), and marked as owning its name (second
  // read): close() then threw "Cannot unlink anonymous shared memory" and left its mapping.
  const options = shifting("name", undefined, uniqueName("shifty"));
  const channel = Channel.create(options as never);
  assert.equal(channel.name, null);
  channel.close();
});

ipcTest("spawn() reads each option once: a cwd that is a URL, then undefined", async () => {
  // Before: "Cannot read properties of undefined (reading 'pathname')", an engine error.
  const child = spawn("true", shifting("cwd", new URL("file:///tmp"), undefined) as never);
  assert.equal((await child.status).success, true);
});

ipcTest("a codec's members are read once: the name stored is the name checked", () => {
  // Before: the name was read for each check and again to be stored, each read answering for
  // itself: here the second read (a 40-byte name, past the header's 31) failed a check that the
  // first had passed; a getter answering in another order had a name stored unchecked.
  const codec = Object.defineProperties(shifting("name", "one", "x".repeat(40)), {
    encode: { value: (value: Uint8Array) => value },
    decode: { value: (bytes: Uint8Array) => bytes },
  });
  using channel = Channel.create({ codec: codec as never });
  using same = Channel.fromFd(channel, { codec: { ...codecs.bytes, name: "one" } });
  channel.sendSync(new Uint8Array([7]));
  assert.deepEqual(same.receiveSync({ timeout: 1000 }), new Uint8Array([7]));
});

ipcTest("Mapping.fromFd() reads each option once: a label that is a string, then a number", () => {
  // Before: the label was checked at its first read and used in messages at later ones.
  using memory = SharedMemory.anonymous({ size: 4096 });
  const options = Object.assign(shifting("label", "segment", 42), { offset: 8192 });
  assert.throws(
    () => Mapping.fromFd(memory.fd, options as never),
    (error: Error) => error instanceof RangeError && error.message.includes('"segment"'),
  );
});

ipcTest(
  "Topic.publish() and receive() read their signal once: undefined, then a string",
  async () => {
    // Before: the signal was checked at its first read and used at a later one: an engine
    // TypeError ("addEventListener is not a function").
    using topic = Topic.create({ capacity: 4096 });
    using subscription = topic.subscribe();
    await assert.rejects(
      subscription.receive(
        Object.assign(shifting("signal", undefined, ""), { timeout: 20 }) as never,
      ),
      Deno.errors.TimedOut,
    );
  },
);

ipcTest(
  "Semaphore.wait() and SysVMessageQueue.receive() read their signal once: undefined, then a string",
  async () => {
    // Before: checked at the first read, read again by the wait: a TypeError after the check
    // had passed.
    const options = () => Object.assign(shifting("signal", undefined, ""), { timeout: 20 });
    using semaphore = Semaphore.create(uniqueName("once"));
    await assert.rejects(semaphore.wait(options() as never), Deno.errors.TimedOut);
    using queue = SysVMessageQueue.create(IPC_PRIVATE);
    await assert.rejects(queue.receive(options() as never), Deno.errors.TimedOut);
  },
);
