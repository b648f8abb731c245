// Attacks on re-entry: a codec whose decode receives from the channel or subscription it is
// decoding for (a codec that reassembles a value from the messages that follow it, say).
import assert from "node:assert/strict";
import { Channel, type Codec, Topic } from "../mod.ts";
import { ipcTest } from "./helpers.ts";

/**
 * A text codec whose decode of "head" receives the next message through `next`, and gives
 * "head+" and what it received.
 */
function chaining(next: () => unknown): Codec<string> {
  return {
    name: "chaining",
    encode: (value) => new TextEncoder().encode(value),
    decode: (bytes) => {
      const text = new TextDecoder().decode(bytes);
      return text === "head" ? `head+${next()}` : text;
    },
  };
}

ipcTest(
  "a codec whose decode receives from its own channel gets the next message: no message twice",
  () => {
    const codec = chaining(() => channel.tryReceive());
    const channel: Channel<string> = Channel.create({ capacity: 4096, codec });
    try {
      for (const text of ["head", "tail", "after"]) channel.sendSync(text);
      // Before: the frame was still the head while its decode ran, so the inner receive took
      // "head" again, whose decode did the same, until the stack overflowed.
      assert.equal(channel.tryReceive(), "head+tail");
      assert.equal(channel.tryReceive(), "after");
      assert.equal(channel.tryReceive(), undefined);
    } finally {
      channel.close();
    }
  },
);

ipcTest(
  "a codec whose decode receives from its own subscription gets the next message; the ring is " +
    "not reported corrupt",
  () => {
    for (const slow of ["block", "drop"] as const) {
      const codec = chaining(() => subscribed.tryReceive());
      using topic = Topic.create({ capacity: 4096, codec, slow });
      using subscribed = topic.subscribe();
      for (const text of ["head", "tail", "after"]) topic.publishSync(text);
      // Before: the inner receive read the same frame again and moved the cursor past it more
      // than once: InvalidData, "the topic's ring is corrupt".
      assert.equal(subscribed.tryReceive(), "head+tail", slow);
      assert.equal(subscribed.tryReceive(), "after", slow);
      assert.equal(subscribed.tryReceive(), undefined, slow);
    }
  },
);
