/**
 * Publish/subscribe between processes: a {@linkcode Topic} in shared memory that every
 * {@linkcode Subscription}, in any process, reads in full and in order.
 *
 * One ring of frames [length, sequence, bytes] with a shared tail: a publisher writes a frame
 * under a robust lock and publishes it with one 64-bit store; each subscription reads with its
 * own cursor, so a message is written once whatever the number of subscribers. Subscribers that
 * find nothing sleep on a futex on the tail, and a publisher makes one wake-all call only when
 * one sleeps. A late subscription first gets the last `history` messages still in the ring. A
 * slow subscription either holds publishers back (`slow: "block"`, the default: the free room
 * is computed from the slowest live cursor) or misses the messages written over
 * (`slow: "drop"`, counted in `subscription.missed`). Subscriptions whose process died are
 * reclaimed (pid and PID-namespace tag, as a channel's peers) and never hold publishers back.
 *
 * The parts, each in its own file: the header layout and checks (layout.ts), the views of a
 * mapping and the wake-ups (ring.ts), the subscriber table (table.ts), the publish path
 * (publish.ts), the waits (wait.ts), the subscription (subscription.ts) and the `Topic` API
 * (topic.ts).
 *
 * @example Fan-out to every subscriber
 * ```ts
 * import { Topic, codecs } from "@posix/ipc/topic";
 *
 * using topic = Topic.create({ codec: codecs.json });
 * using a = topic.subscribe();
 * using b = topic.subscribe();
 * topic.publishSync({ event: "start" });
 * console.log(a.tryReceive(), b.tryReceive()); // { event: "start" } { event: "start" }
 * ```
 *
 * @module
 */

export { type CreateTopicOptions, type OpenTopicOptions, Topic, type TopicRole } from "./topic.ts";
export { Subscription } from "./subscription.ts";
export type { SlowPolicy } from "./layout.ts";
export { type Codec, codecs } from "../codec.ts";
export type { WaitOptions } from "../_wait.ts";
