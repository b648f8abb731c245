/**
 * Properties of @posix/ipc/select: `select` over hostile source lists (empty, not iterable,
 * duplicates, closed handles, send-only channels, wrong types, objects whose `[selectable]()`
 * gives junk, lists longer than MAX_SOURCES) and hostile options, and the `[selectable]()`
 * method of every source class on live, closed and wrong receivers.
 *
 * @module
 */

import {
  Channel,
  ChildProcess,
  MessageQueue,
  pipe,
  ReadEnd,
  select,
  selectable,
  Semaphore,
  signals,
  spawn,
  Subscription,
  Topic,
} from "../../mod.ts";
import { uniqueName } from "../helpers.ts";
import { fc, hostile, Ref, ref, shortTimeout, waitOptions } from "./arbitraries.ts";
import type { Case, Property, PropertyGroup } from "./harness.ts";
import { memberProperties } from "./members.ts";

const SOURCES = [
  "channel-ready",
  "channel-empty",
  "channel-closed",
  "channel-send-only",
  "semaphore-1",
  "semaphore-0",
  "semaphore-closed",
  "queue-ready",
  "queue-empty",
  "pipe-ready",
  "pipe-eof",
  "pipe-closed",
  "signals",
  "signals-ended",
  "shared",
  "junk-adapter",
  "plain",
] as const;

const source: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...SOURCES).map((kind) => new Ref("source", kind)) },
  { weight: 1, arbitrary: hostile },
);

/** Lists of sources, and things that are not lists. */
const sources: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: fc.array(source, { maxLength: 6 }) },
  { weight: 1, arbitrary: fc.constant([]) },
  { weight: 1, arbitrary: ref("sources", "huge") },
  { weight: 1, arbitrary: ref("sources", "set") },
  { weight: 2, arbitrary: hostile },
);

/** A live channel with a live sender, and the sender. */
function channelPair(c: Case): [Channel, Channel] {
  const receiver = Channel.create({ capacity: 4096, role: "receive" });
  const sender = Channel.fromFd(receiver, { role: "send" });
  c.defer(() => {
    sender.close();
    receiver.close();
  });
  c.onStall(() => receiver.close());
  return [receiver, sender];
}

/** A subscription to a fresh topic with one message waiting for it. */
function subscription(c: Case): Subscription {
  const topic = Topic.create({ capacity: 4096 });
  const made = topic.subscribe();
  topic.tryPublish(new Uint8Array([1]));
  c.defer(() => {
    made.close();
    topic.close();
  });
  c.onStall(() => topic.close());
  return made;
}

function semaphore(c: Case, value: number): Semaphore {
  const made = Semaphore.create(uniqueName("prop-select"), { value });
  c.defer(() => made.close());
  c.onStall(() => made.close());
  return made;
}

function queue(c: Case, ready: boolean): MessageQueue {
  const made = MessageQueue.create(uniqueName("prop-select"), { maxMessages: 2, messageSize: 8 });
  if (ready) made.sendSync("x");
  c.defer(() => made.close());
  c.onStall(() => made.close());
  return made;
}

function reader(c: Case, kind: "ready" | "eof" | "closed"): ReadEnd {
  const p = pipe();
  if (kind === "ready") p.writer.writeSync("x");
  if (kind !== "ready") p.writer.close();
  if (kind === "closed") p.reader.close();
  c.defer(() => p[Symbol.dispose]());
  c.onStall(() => p.reader.close());
  return p.reader;
}

/** One object per case for the "shared" marker, so that a list can name it twice. */
const shared = new WeakMap<Case, unknown>();

function resolveSource(marker: Ref, c: Case): unknown {
  if (marker.kind === "sources") {
    if (marker.detail === "set") {
      return new Set([reader(c, "ready"), semaphore(c, 0)]);
    }
    // One more than MAX_SOURCES, of distinct selectable objects.
    return Array.from({ length: 128 }, () => ({
      [selectable]: () => ({ try: () => ({ value: 1 }), wait: () => Promise.resolve() }),
    }));
  }
  switch (marker.detail as (typeof SOURCES)[number]) {
    case "channel-ready": {
      const [receiver, sender] = channelPair(c);
      sender.sendSync(new Uint8Array([1]));
      return receiver;
    }
    case "channel-empty":
      return channelPair(c)[0];
    case "channel-closed": {
      const [receiver] = channelPair(c);
      receiver.close();
      return receiver;
    }
    case "channel-send-only":
      return channelPair(c)[1];
    case "semaphore-1":
      return semaphore(c, 1);
    case "semaphore-0":
      return semaphore(c, 0);
    case "semaphore-closed": {
      const made = semaphore(c, 1);
      made.close();
      return made;
    }
    case "queue-ready":
      return queue(c, true);
    case "queue-empty":
      return queue(c, false);
    case "pipe-ready":
      return reader(c, "ready");
    case "pipe-eof":
      return reader(c, "eof");
    case "pipe-closed":
      return reader(c, "closed");
    case "signals":
    case "signals-ended": {
      const incoming = signals("SIGUSR2");
      c.defer(() => incoming[Symbol.dispose]());
      c.onStall(() => incoming[Symbol.dispose]());
      if (marker.detail === "signals-ended") incoming[Symbol.dispose]();
      return incoming;
    }
    case "shared": {
      if (!shared.has(c)) shared.set(c, semaphore(c, 0));
      return shared.get(c);
    }
    case "junk-adapter":
      return { [selectable]: () => ({ try: 42 }) };
    case "plain":
      return {};
  }
}

async function endChild(child: ChildProcess): Promise<void> {
  try {
    child.kill("SIGKILL");
  } catch {
    // exited already
  }
  await child.status;
}

/** Calls `[selectable]()` on `receiver`, then the adapter's try, as select would. */
function tryAdapter(cls: { prototype: object }) {
  return (receiver: unknown) => {
    const method = (cls.prototype as Record<symbol, () => { try(): unknown }>)[selectable]!;
    return method.call(receiver).try();
  };
}

export const group: PropertyGroup = {
  scale: 0.5,
  covers: [
    "select",
    ...["Channel", "Semaphore", "MessageQueue", "ReadEnd", "ChildProcess", "Subscription"].map(
      (name) => `${name}.prototype.[@posix/ipc/selectable]`,
    ),
  ],
  properties(): Property[] {
    return [
      {
        name: "select() takes from a ready source or refuses its sources and options",
        covers: ["select"],
        runs: 1500,
        args: [sources, waitOptions(shortTimeout)],
        resolve: resolveSource,
        call: ([list, options]) => select(list as never, options as never),
      },
      {
        name: "select() over idle sources ends by its timeout, signal or a close",
        covers: ["select"],
        runs: 150,
        args: [
          fc.array(
            fc.constantFrom("channel-empty", "semaphore-0", "queue-empty", "signals").map(
              (kind) => new Ref("source", kind),
            ),
            { minLength: 1, maxLength: 4 },
          ).map((refs) =>
            refs.filter((r, i) => refs.findIndex((s) => s.detail === r.detail) === i)
          ),
          waitOptions(),
        ],
        resolve: resolveSource,
        call: ([list, options]) => select(list as never, options as never),
      },
      ...memberProperties<Channel>({
        name: "Channel",
        cls: Channel,
        make: (c) => channelPair(c)[0],
        members: {
          "[@posix/ipc/selectable]": { runs: 300, call: tryAdapter(Channel) },
        },
      }),
      ...memberProperties<Semaphore>({
        name: "Semaphore",
        cls: Semaphore,
        make: (c) => semaphore(c, 1),
        members: {
          "[@posix/ipc/selectable]": { runs: 300, call: tryAdapter(Semaphore) },
        },
      }),
      ...memberProperties<MessageQueue>({
        name: "MessageQueue",
        cls: MessageQueue,
        make: (c) => queue(c, true),
        members: {
          "[@posix/ipc/selectable]": { runs: 300, call: tryAdapter(MessageQueue) },
        },
      }),
      ...memberProperties<ReadEnd>({
        name: "ReadEnd",
        cls: ReadEnd,
        make: (c) => reader(c, "ready"),
        members: {
          "[@posix/ipc/selectable]": { runs: 300, call: tryAdapter(ReadEnd) },
        },
      }),
      ...memberProperties<Subscription>({
        name: "Subscription",
        cls: Subscription,
        make: (c) => subscription(c),
        members: {
          "[@posix/ipc/selectable]": { runs: 300, call: tryAdapter(Subscription) },
        },
      }),
      ...memberProperties<ChildProcess>({
        name: "ChildProcess",
        cls: ChildProcess,
        make: () => spawn("sleep", { args: ["1000"], killGrace: 50 }),
        close: (child) => endChild(child),
        members: { "[@posix/ipc/selectable]": { runs: 60 } },
      }),
    ];
  },
};
