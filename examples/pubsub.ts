/**
 * Publish/subscribe: one publisher, several subscriber processes, every subscriber gets every
 * message, in order.
 *
 * The parent creates a topic of JSON price ticks in anonymous shared memory and starts to
 * publish. It then starts SUBSCRIBERS Deno processes, handing each the topic's descriptor (fd 3).
 * They join late, yet miss nothing: the topic keeps the last 16 ticks for late joiners
 * (`history`), and from then on the publisher waits for the slowest subscriber rather than
 * overwrite a tick someone has not read (`slow: "block"`). When the parent closes the topic,
 * every subscriber's `for await` ends after the last tick.
 *
 * Run: deno run --allow-ffi --allow-run examples/pubsub.ts [SUBSCRIBERS]
 *
 * @module
 */

import { type ChildProcess, type Codec, codecs, inheritedFd, spawnDeno, Topic } from "../mod.ts";

interface Tick {
  tick: number;
  price: number;
}
const ticks = codecs.json as Codec<Tick>;
const TICKS = 10;

if (Deno.args[0] === "--subscriber") {
  using topic = Topic.fromFd(inheritedFd(3), { codec: ticks, role: "subscribe" });
  using subscription = topic.subscribe();
  let last: Tick | undefined;
  let inOrder = true;
  for await (const tick of subscription) {
    inOrder &&= tick.tick === (last?.tick ?? 0) + 1;
    last = tick;
  }
  console.log(
    `subscriber ${Deno.pid}: ${last?.tick} ticks, ${inOrder ? "in order" : "OUT OF ORDER"}, ` +
      `last price ${last?.price}`,
  );
} else {
  const count = Number(Deno.args[0] ?? 3);
  using topic = Topic.create({ codec: ticks, history: 16, slow: "block", role: "publish" });
  let price = 100;
  const publish = async (tick: number) => {
    price = Math.round((price + Math.sin(tick)) * 100) / 100;
    await topic.publish({ tick, price }, { timeout: 5000 });
  };
  for (let tick = 1; tick <= 3; tick++) await publish(tick);
  console.log(`publisher: 3 ticks out, now ${count} subscribers join`);
  const subscribers: ChildProcess[] = [];
  for (let i = 0; i < count; i++) {
    subscribers.push(spawnDeno(import.meta.url, {
      args: ["--subscriber"],
      permissions: { ffi: true },
      fds: { 3: topic },
    }));
  }
  for (let tick = 4; tick <= TICKS; tick++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    await publish(tick);
  }
  console.log(`publisher: ${TICKS} ticks out, last price ${price}; closing the topic`);
  topic.close(); // every subscriber's iteration ends after the last tick
  const clean = await Promise.all(subscribers.map(async (child) => (await child.status).success));
  console.log(`publisher: ${clean.filter(Boolean).length} of ${count} subscribers exited cleanly`);
}
