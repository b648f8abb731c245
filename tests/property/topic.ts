/**
 * Properties of @posix/ipc/topic: topics created, opened and adopted with hostile names,
 * capacities, histories, slow policies, codecs, roles (prototype keys are no roles) and
 * descriptors, and every member of `Topic` and `Subscription` on live, closed and wrong
 * receivers: publishes of hostile values, receives with hostile options, and waits ended by
 * their timeout, signal or close.
 *
 * @module
 */

import { Subscription, Topic } from "../../mod.ts";
import { anyTimeout, either, fc, options, orGenerated, ref, waitOptions } from "./arbitraries.ts";
import { FdWatch } from "./fds.ts";
import {
  iteratorMember,
  openProperties,
  type RingClass,
  ringCodec,
  ringResolver,
} from "./rings.ts";
import type { Case, Property, PropertyGroup } from "./harness.ts";
import { constructorProperty, memberProperties, useOtherHandle } from "./members.ts";

let watch: FdWatch;

const role = fc.constantFrom("publish", "subscribe", "both", "toString", "send");

const ring: RingClass = {
  label: "Topic",
  kind: "topic",
  prefix: "prop-topic",
  create: (opts) => Topic.create(opts),
  open: (name, opts) => Topic.open(name as never, opts as never),
  fromFd: (fd, opts) => Topic.fromFd(fd as never, opts as never),
};
const resolveTopic = ringResolver(ring, () => watch);

/** A value for the default (bytes) codec, and hostile ones. */
const value = either(fc.uint8Array({ maxLength: 64 }), 2);

/** A topic with room to publish: sync publishes return at once. */
function readyTopic(c: Case): Topic {
  const topic = Topic.create({ capacity: 4096, history: 1 });
  topic.tryPublish(new Uint8Array([1, 2, 3]));
  c.defer(() => topic.close());
  return topic;
}

/** A subscription with a message waiting (history): sync receives return at once. */
function readySubscription(c: Case): Subscription {
  const subscription = readyTopic(c).subscribe();
  c.defer(() => subscription.close());
  return subscription;
}

export const group: PropertyGroup = {
  scale: 0.5,
  covers: [
    "new Topic",
    "new Subscription",
    "Topic.create",
    "Topic.open",
    "Topic.fromFd",
    ...[
      "capacity",
      "maxMessageSize",
      "history",
      "slow",
      "name",
      "fd",
      "closed",
      "tryPublish",
      "publish",
      "publishSync",
      "subscribe",
      "close",
      "[Symbol.dispose]",
    ].map((member) => `Topic.prototype.${member}`),
    ...[
      "missed",
      "closed",
      "tryReceive",
      "receive",
      "receiveSync",
      "close",
      "[Symbol.asyncIterator]",
      "[Symbol.dispose]",
    ].map((member) => `Subscription.prototype.${member}`),
  ],
  properties(): Property[] {
    watch = new FdWatch();
    const other = Topic.create({ capacity: 4096 });
    useOtherHandle(() => Object.create(other));
    closeOther = () => other.close();
    return [
      constructorProperty("Topic", Topic),
      constructorProperty("Subscription", Subscription),
      {
        name: "Topic.create() makes a topic or refuses its options (prototype keys are no roles)",
        covers: ["Topic.create"],
        runs: 2500,
        args: [
          options({
            capacity: fc.constantFrom(1, 4096, 65536, 4097, 2 ** 31),
            name: orGenerated(fc.oneof(ref("name", "fresh"), ref("name", "existing"))),
            mode: fc.constantFrom(0o600, 0o644),
            persist: fc.constant(false),
            codec: ringCodec,
            history: fc.constantFrom(0, 1, 255, 256, -1, 0.5, NaN, 2 ** 31),
            slow: fc.constantFrom("block", "drop", "toString", ""),
            role,
          }),
        ],
        resolve: resolveTopic,
        call: ([opts], c) => {
          const topic = Topic.create(opts as never);
          c.removeKept(topic.name);
          return topic;
        },
      },
      ...openProperties(ring, role, () => watch),
      ...memberProperties<Topic>({
        name: "Topic",
        cls: Topic,
        make: readyTopic,
        members: {
          capacity: {},
          maxMessageSize: {},
          history: {},
          slow: {},
          name: {},
          fd: {},
          closed: {},
          tryPublish: { args: [value], runs: 1500 },
          publish: { args: [value, waitOptions()], runs: 1500 },
          publishSync: { args: [value, options({ timeout: anyTimeout })], runs: 1500 },
          subscribe: {
            call: (receiver) => Topic.prototype.subscribe.call(receiver).close(),
          },
          close: {},
          "[Symbol.dispose]": {},
        },
      }),
      ...memberProperties<Subscription>({
        name: "Subscription",
        cls: Subscription,
        make: readySubscription,
        members: {
          missed: {},
          closed: {},
          tryReceive: {},
          receive: { args: [waitOptions()], runs: 1000 },
          receiveSync: { args: [options({ timeout: anyTimeout })], runs: 1000 },
          close: {},
          "[Symbol.asyncIterator]": iteratorMember(Subscription.prototype),
          "[Symbol.dispose]": {},
        },
      }),
      {
        name: "a receive on an empty topic ends by its timeout, signal or close",
        covers: [],
        runs: 100,
        args: [waitOptions()],
        call: ([opts], c) => {
          const empty = Topic.create({ capacity: 4096 });
          const subscription = empty.subscribe();
          c.defer(() => empty.close());
          c.onStall(() => empty.close());
          return subscription.receive(opts as never);
        },
      },
      {
        name: "a publish to a full topic ends by its timeout, signal or close",
        covers: [],
        runs: 100,
        args: [waitOptions()],
        call: ([opts], c) => {
          const full = Topic.create({ capacity: 4096 });
          full.subscribe();
          full.tryPublish(new Uint8Array(4000));
          c.defer(() => full.close());
          c.onStall(() => full.close());
          return full.publish(new Uint8Array(100), opts as never);
        },
      },
    ];
  },
  teardown() {
    closeOther?.();
    watch.close();
  },
};

let closeOther: (() => void) | undefined;
