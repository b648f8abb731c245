/**
 * The fast lane: a stream of messages to a child process over a Channel, the ring buffer in
 * shared memory that moves messages at close to memory speed.
 *
 * The parent sends COUNT messages of SIZE bytes, each stamped with its sequence number, to a
 * child Deno process that got the channel as fd 3. The child checks that every number
 * arrives once and in order, and answers with the count it saw on a second channel. The
 * parent prints the rate.
 *
 * Run: deno run --allow-ffi --allow-run examples/channel_stream.ts [COUNT] [SIZE]
 *
 * @module
 */

import { Channel, type Codec, codecs, inheritedFd, spawnDeno } from "../mod.ts";

interface Tally {
  messages: number;
  bytes: number;
}
/** JSON on the wire; the type is a promise between the two sides, not checked. */
const tallyCodec = codecs.json as Codec<Tally>;

if (Deno.args[0] === "--receiver") {
  using input = Channel.fromFd(inheritedFd(3), { role: "receive" });
  using reply = Channel.fromFd(inheritedFd(4), { codec: tallyCodec, role: "send" });
  let expected = 0;
  let bytes = 0;
  for (;;) {
    let message: Uint8Array;
    try {
      message = await input.receive({ view: true }); // zero-copy: valid until the next receive
    } catch (error) {
      if (error instanceof Deno.errors.UnexpectedEof) break; // the sender closed
      throw error;
    }
    const sequence = new DataView(message.buffer, message.byteOffset).getUint32(0, true);
    if (sequence !== expected) throw new Error(`message ${sequence} arrived as ${expected}`);
    expected++;
    bytes += message.length;
  }
  await reply.send({ messages: expected, bytes });
} else {
  const count = Number(Deno.args[0] ?? 1_000_000);
  const size = Number(Deno.args[1] ?? 64);
  using stream = Channel.create({ capacity: 1 << 20, role: "send" });
  using replies = Channel.create({ capacity: 4096, codec: tallyCodec, role: "receive" });
  await using receiver = spawnDeno(import.meta.url, {
    args: ["--receiver"],
    permissions: { ffi: true },
    fds: { 3: stream, 4: replies },
  });
  const message = new Uint8Array(size);
  const stamp = new DataView(message.buffer);
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    stamp.setUint32(0, i, true);
    if (!stream.trySend(message)) await stream.send(message); // waits only when the ring is full
  }
  stream.close(); // the receiver's loop ends after the last message
  const seen = await replies.receive();
  const seconds = (performance.now() - started) / 1000;
  await receiver.status;
  console.log(`sent ${count} messages of ${size} B to child ${receiver.pid}`);
  console.log(`the child saw ${seen.messages} in order (${seen.bytes} bytes)`);
  console.log(
    `${(seconds * 1000).toFixed(0)} ms: ${
      (count / seconds / 1e6).toFixed(2)
    } million messages/s, ` +
      `${(count * size / seconds / (1 << 20)).toFixed(0)} MiB/s`,
  );
}
