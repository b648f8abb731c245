/**
 * Publish/subscribe to 4 subscriber processes, 64 B messages: the topic against the same fan-out
 * written over 4 Unix sockets (the baseline: what a Deno user has without this library). Both
 * rows are the user's path: the publisher `await`s each publish (each socket write), and 4 child
 * processes, spawned alike (bench/fixtures/topic_subscriber.ts), take every message with
 * `for await` (copies) and acknowledge the last one of each iteration. The children are running
 * and subscribed before any clock starts. One iteration is 5,000 messages to all 4 subscribers.
 *
 * For medians and spreads of alternating trials (the README's figures), run
 * bench/fixtures/topic_trials.ts. Run alone: deno task bench bench/topic_bench.ts
 *
 * @module
 */

import { SocketFanout, TopicFanout } from "./fixtures/topic_fanout.ts";

const MESSAGES = 5000;
const topic = await TopicFanout.start();
const sockets = await SocketFanout.start();

const group = "publish to 4 subscriber processes, 64 B (5,000 messages)";
Deno.bench({
  group,
  name: "Topic, await publish / for await in 4 children",
  n: 30,
  warmup: 3,
  async fn() {
    await topic.batch(MESSAGES);
  },
});
Deno.bench({
  group,
  name: "4 Unix sockets (Deno.listen), await write each / for await in 4 children",
  baseline: true,
  n: 30,
  warmup: 3,
  async fn() {
    await sockets.batch(MESSAGES);
  },
});

globalThis.addEventListener("unload", () => {
  topic.kill();
  sockets.kill();
});
