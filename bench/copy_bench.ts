/**
 * What a copying receive pays to get a message out of the ring, per message size, in one
 * process: a fresh ArrayBuffer per message (the baseline: what `Channel` did, and what
 * `Uint8Array.prototype.slice` gives any Deno user), slabs handed out as subarrays, a pool, and
 * a reused buffer (`receiveInto`). The average includes the garbage collections each strategy
 * causes; bench/fixtures/copy_alloc.ts reports medians and spread of the same strategies.
 *
 *   deno bench bench/copy_bench.ts
 */
import { Channel } from "../mod.ts";
import { nextOffset, RING, SIZES, STRATEGIES } from "./fixtures/copy_strategies.ts";

const label = (size: number) =>
  size >= 1 << 20 ? `${size >> 20} MiB` : size >= 1024 ? `${size >> 10} KiB` : `${size} B`;

let sink = 0;
const channels: Channel[] = [];
for (const size of SIZES) {
  for (const [index, strategy] of STRATEGIES.entries()) {
    const copy = strategy.make(size);
    let at = 0;
    Deno.bench({
      group: `copy ${label(size)}`,
      name: strategy.name,
      baseline: index === 0,
      fn() {
        sink ^= copy(at)[size - 1]!;
        at = nextOffset(at, size);
      },
    });
  }
  // The library's own paths, in one process: a sendSync then a receive, so both rows pay the send.
  const channel = Channel.create({ capacity: 4 << 20 });
  const message = RING.subarray(0, size);
  const buffer = new Uint8Array(size);
  Deno.bench({
    group: `copy ${label(size)}`,
    name: "Channel: sendSync + receiveSync() (the default copy)",
    fn() {
      channel.sendSync(message);
      sink ^= channel.receiveSync()[size - 1]!;
    },
  });
  Deno.bench({
    group: `copy ${label(size)}`,
    name: "Channel: sendSync + receiveIntoSync(buffer)",
    fn() {
      channel.sendSync(message);
      sink ^= channel.receiveIntoSync(buffer);
    },
  });
  channels.push(channel);
}
globalThis.addEventListener("unload", () => {
  for (const channel of channels) channel.close();
  if (sink === -1) console.log(sink); // keeps the copies observable
});
