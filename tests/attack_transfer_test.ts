// Attacks on buffers transferred away (detached) while a call that was given them waits: a
// detached buffer reads as empty, and a wait that trusted the length it saw at the call took
// that for a write of nothing or an end-of-file.
import assert from "node:assert/strict";
import { Channel, pipe, SharedMap, Topic } from "../mod.ts";
import { ipcTest } from "./helpers.ts";

const refused = { name: "TypeError", message: /transferred/ };

/** Transfers the buffer of `bytes` away, as `postMessage(bytes, [bytes.buffer])` does. */
function transfer(bytes: Uint8Array): void {
  (bytes.buffer as ArrayBuffer).transfer();
}

ipcTest(
  "Pipe write(): data transferred away while the write waits for room is a TypeError, not a " +
    "write that resolves having written only the part that fit",
  async () => {
    using p = pipe();
    const data = new Uint8Array(1 << 20).fill(7); // more than the pipe holds: write() waits
    const writing = p.writer.write(data, { timeout: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    data.buffer.transfer();
    p.reader.readSync(new Uint8Array(1 << 20)); // room for the waiting write
    // Before: it resolved with 65536, the part the pipe took at first, as if that were all.
    await assert.rejects(writing, refused);
  },
);

ipcTest(
  "Pipe read(): a buffer transferred away while the read waits is a TypeError, never an " +
    "end-of-file while the writer is open",
  async () => {
    using p = pipe();
    const buffer = new Uint8Array(16);
    const reading = p.reader.read(buffer, { timeout: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    buffer.buffer.transfer();
    p.writer.writeSync("hello");
    // Before: it resolved with null, the end of file, and "hello" waited in the pipe unseen.
    await assert.rejects(reading, refused);
    const rest = new Uint8Array(16);
    assert.equal(await p.reader.read(rest, { timeout: 10_000 }), 5, "the bytes are still there");
  },
);

ipcTest(
  "a received value whose buffer is transferred away (posted to a worker) leaves the next " +
    "receives and reads working: Channel, Topic subscription, SharedMap",
  () => {
    // Small values are copied into one shared slab; transferring one value's buffer detaches
    // that slab. Before: every later copy went to the detached slab, an engine TypeError
    // ("Cannot perform Construct on a detached ArrayBuffer"; the map's get called it
    // InvalidData) on each receive or get, until 256 KiB of attempts had gone by.
    using channel = Channel.create({ capacity: 4096 });
    for (const byte of [1, 2, 3]) channel.sendSync(new Uint8Array([byte]));
    transfer(channel.tryReceive()!);
    assert.deepEqual(channel.tryReceive(), new Uint8Array([2]));
    assert.deepEqual(channel.tryReceive(), new Uint8Array([3]));

    using topic = Topic.create({ capacity: 4096 });
    using subscription = topic.subscribe();
    for (const byte of [1, 2]) topic.publishSync(new Uint8Array([byte]));
    transfer(subscription.tryReceive()!);
    assert.deepEqual(subscription.tryReceive(), new Uint8Array([2]));

    using map = SharedMap.create({ capacity: 4 });
    map.set("a", new Uint8Array([1])).set("b", new Uint8Array([2]));
    transfer(map.get("a")!);
    assert.deepEqual(map.get("b"), new Uint8Array([2]));
    assert.deepEqual(map.get("a"), new Uint8Array([1]));
  },
);
