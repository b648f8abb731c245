/**
 * Properties of @posix/ipc/mqueue: queues created and opened with hostile names, limits, modes
 * and directions, and every member on live, closed and wrong receivers: sends with hostile
 * data, priorities and timeouts (3e9, Infinity, 2^53 must never be engine errors), receives,
 * and waits ended by their timeout, signal or close. Notification registrations made with
 * hostile options, and their members on live, closed and wrong receivers.
 *
 * @module
 */

import { MessageQueue, MessageQueueNotifications, selectable } from "../../mod.ts";
import { uniqueName } from "../helpers.ts";
import {
  anyTimeout,
  either,
  fc,
  hostile,
  options,
  orGenerated,
  type Ref,
  ref,
  waitOptions,
  withSyncTimeout,
  withTimeout,
} from "./arbitraries.ts";
import type { Case, Property, PropertyGroup } from "./harness.ts";
import { constructorProperty, memberProperties, useOtherHandle } from "./members.ts";

const name = fc.oneof(
  { weight: 3, arbitrary: ref("name", "fresh") },
  { weight: 2, arbitrary: ref("name", "existing") },
  { weight: 4, arbitrary: hostile },
);

const data = either(fc.oneof(fc.uint8Array({ maxLength: 32 }), fc.string({ maxLength: 16 })), 2);
const priority = fc.constantFrom(0, 1, 31, 32767, 32768);

function resolveQueue(marker: Ref, c: Case): unknown {
  if (marker.kind !== "name") throw new Error(`no resolver for ${marker}`);
  const fresh = uniqueName("prop-mq");
  if (marker.detail === "existing") {
    const existing = MessageQueue.create(fresh, { maxMessages: 4, messageSize: 64 });
    c.defer(() => existing.close());
  } else {
    c.defer(() => {
      try {
        MessageQueue.unlink(fresh);
      } catch {
        // none was made, or it was removed
      }
    });
  }
  return fresh;
}

/** A queue with one message waiting and room for more: sync calls return at once. */
function queue(c: Case): MessageQueue {
  const made = MessageQueue.create(uniqueName("prop-mq"), { maxMessages: 4, messageSize: 64 });
  made.trySend("waiting");
  c.defer(() => made.close());
  return made;
}

export const group: PropertyGroup = {
  scale: 0.6,
  covers: [
    "new MessageQueue",
    "MessageQueue.create",
    "MessageQueue.open",
    "MessageQueue.openOrCreate",
    "MessageQueue.openOrCreateSync",
    "MessageQueue.unlink",
    ...[
      "name",
      "closed",
      "created",
      "fd",
      "attributes",
      "send",
      "sendSync",
      "trySend",
      "receive",
      "receiveSync",
      "tryReceive",
      "tryReceiveInto",
      "receiveInto",
      "receiveIntoSync",
      "close",
      "[Symbol.asyncIterator]",
      "[Symbol.dispose]",
      "notifications",
    ].map((member) => `MessageQueue.prototype.${member}`),
    "new MessageQueueNotifications",
    ...[
      "closed",
      "tryWait",
      "wait",
      "waitSync",
      "close",
      "[Symbol.asyncIterator]",
      "[Symbol.dispose]",
      "[@posix/ipc/selectable]",
    ].map((member) => `MessageQueueNotifications.prototype.${member}`),
  ],
  properties(): Property[] {
    const otherQueue = MessageQueue.create(uniqueName("prop-mq-other"));
    useOtherHandle(() => Object.create(otherQueue));
    closeOther = () => otherQueue.close();
    return [
      constructorProperty("MessageQueue", MessageQueue),
      {
        name: "MessageQueue.create() makes a queue or refuses its name, limits and mode",
        covers: ["MessageQueue.create"],
        runs: 3000,
        args: [
          orGenerated(name),
          options({
            maxMessages: fc.constantFrom(1, 4, 10, 11, 2 ** 31 - 1),
            messageSize: fc.constantFrom(1, 64, 8192, 8193, 2 ** 31 - 1),
            mode: fc.constantFrom(0o600, 0o644),
            persist: fc.boolean(),
          }),
        ],
        resolve: resolveQueue,
        call: ([queueName, opts], c) => {
          const made = MessageQueue.create(queueName as never, opts as never);
          // A valid name among the hostile ones ("/🙂") with persist: true is kept by design.
          c.defer(() => {
            try {
              MessageQueue.unlink(made.name);
            } catch {
              // not persisted: closing removed it
            }
          });
          return made;
        },
      },
      {
        name: "MessageQueue.open() opens an existing queue in the directions asked or refuses",
        covers: ["MessageQueue.open"],
        runs: 2000,
        args: [name, options({ read: fc.boolean(), write: fc.boolean() })],
        resolve: resolveQueue,
        call: ([queueName, opts]) => MessageQueue.open(queueName as never, opts as never),
      },
      {
        name:
          "MessageQueue.openOrCreate() and openOrCreateSync() open or create a queue, or refuse",
        covers: ["MessageQueue.openOrCreate", "MessageQueue.openOrCreateSync"],
        runs: 800,
        stallMs: 500,
        args: [
          name,
          options({
            maxMessages: fc.constantFrom(1, 4, 11, 2 ** 31 - 1),
            messageSize: fc.constantFrom(1, 64, 8193),
            mode: fc.constantFrom(0o600, 0o644),
            persist: fc.boolean(),
            read: fc.boolean(),
            write: fc.boolean(),
            timeout: fc.constantFrom(0, 20, -1, NaN, "1"),
          }),
          fc.boolean(),
        ],
        resolve: resolveQueue,
        call: async ([queueName, opts, sync], c) => {
          const made = sync
            ? MessageQueue.openOrCreateSync(queueName as never, withSyncTimeout(opts) as never)
            : await MessageQueue.openOrCreate(queueName as never, withTimeout(opts) as never);
          if (made.created) {
            c.defer(() => {
              try {
                MessageQueue.unlink(made.name);
              } catch {
                // not persisted: closing removed it
              }
            });
          }
          return made;
        },
      },
      {
        name: "MessageQueue.unlink() removes a name or refuses it",
        covers: ["MessageQueue.unlink"],
        runs: 1500,
        args: [name],
        resolve: resolveQueue,
        call: ([queueName]) => MessageQueue.unlink(queueName as never),
      },
      ...memberProperties<MessageQueue>({
        name: "MessageQueue",
        cls: MessageQueue,
        make: queue,
        members: {
          name: {},
          closed: {},
          created: {},
          fd: {},
          attributes: {},
          send: {
            args: [
              data,
              options({ priority, timeout: anyTimeout, signal: fc.constant(undefined) }),
            ],
            runs: 1500,
          },
          sendSync: { args: [data, options({ priority, timeout: anyTimeout })], runs: 1500 },
          trySend: { args: [data, options({ priority })], runs: 1500 },
          receive: { args: [waitOptions()], runs: 1000 },
          receiveSync: { args: [options({ timeout: anyTimeout })], runs: 1000 },
          tryReceive: {},
          tryReceiveInto: { args: [intoBuffer], runs: 1000 },
          receiveInto: { args: [intoBuffer, waitOptions()], runs: 1000 },
          receiveIntoSync: { args: [intoBuffer, options({ timeout: anyTimeout })], runs: 1000 },
          close: {},
          "[Symbol.asyncIterator]": {
            call: (receiver) => {
              const iterator = MessageQueue.prototype[Symbol.asyncIterator].call(receiver);
              return iterator.next().finally(() => iterator.return?.());
            },
          },
          "[Symbol.dispose]": {},
          notifications: {
            args: [options({ signal: fc.constantFrom(undefined, "abort", {}, null, 1) })],
            runs: 500,
            call: (receiver, [opts], c) => {
              const made = receiver.notifications(opts as never);
              c.defer(() => made.close());
              return made;
            },
          },
        },
      }),
      constructorProperty("MessageQueueNotifications", MessageQueueNotifications),
      ...memberProperties<MessageQueueNotifications>({
        name: "MessageQueueNotifications",
        cls: MessageQueueNotifications,
        make: (c) => queue(c).notifications(),
        members: {
          closed: { runs: 300 },
          tryWait: { runs: 300 },
          wait: { args: [waitOptions()], runs: 300, stallMs: 500 },
          // Blocking: only timeouts that end (no queue here is written to while it blocks).
          waitSync: {
            args: [options({ timeout: fc.constantFrom(0, 1, 20, -0, 0.5, -1, NaN) })],
            runs: 300,
          },
          close: { runs: 300 },
          "[Symbol.asyncIterator]": {
            runs: 300,
            call: (receiver) => {
              const iterator = MessageQueueNotifications.prototype[Symbol.asyncIterator].call(
                receiver,
              );
              return iterator.next().finally(() => iterator.return?.());
            },
          },
          "[Symbol.dispose]": { runs: 300 },
          "[@posix/ipc/selectable]": {
            runs: 300,
            call: (receiver) =>
              MessageQueueNotifications.prototype[selectable].call(receiver).try(),
          },
        },
      }),
      {
        name: "a receive on an empty queue ends by its timeout, signal or close",
        covers: [],
        runs: 100,
        args: [waitOptions()],
        call: ([opts], c) => {
          const empty = MessageQueue.create(uniqueName("prop-mq-empty"));
          c.defer(() => empty.close());
          c.onStall(() => empty.close());
          return empty.receive(opts as never);
        },
      },
    ];
  },
  teardown() {
    closeOther?.();
  },
};

let closeOther: (() => void) | undefined;

/**
 * A buffer for receiveInto: around the queue's message size (64) (smaller is a RangeError), shared,
 * detached, or hostile.
 */
const intoBuffer = fc.oneof(
  either(fc.integer({ min: 0, max: 129 }).map((n) => new Uint8Array(n)), 2),
  fc.constant(null).map(() => new Uint8Array(new SharedArrayBuffer(64))),
  fc.constant(null).map(() => {
    const detached = new Uint8Array(64);
    void detached.buffer.transfer();
    return detached;
  }),
);
