/**
 * Properties of @posix/ipc/channel: channels created, opened and adopted with hostile names,
 * capacities, codecs, roles (prototype keys are no roles) and descriptors, and every member on
 * live, closed and wrong receivers: sends of hostile values, receives with hostile options, and
 * waits ended by their timeout, signal or close.
 *
 * @module
 */

import { Channel, Loan } from "../../mod.ts";
import {
  anyTimeout,
  either,
  fc,
  hostile,
  options,
  orGenerated,
  ref,
  Shifty,
  shortTimeout,
  waitOptions,
  withSyncTimeout,
  withTimeout,
} from "./arbitraries.ts";
import { FdWatch } from "./fds.ts";
import {
  iteratorMember,
  openProperties,
  type RingClass,
  ringCodec,
  ringName,
  ringResolver,
} from "./rings.ts";
import type { Case, Property, PropertyGroup } from "./harness.ts";
import { constructorProperty, memberProperties, useOtherHandle } from "./members.ts";

let watch: FdWatch;

const role = fc.constantFrom("send", "receive", "both");

const ring: RingClass = {
  label: "Channel",
  kind: "channel",
  prefix: "prop-ch",
  create: (opts) => Channel.create(opts),
  open: (name, opts) => Channel.open(name as never, opts as never),
  fromFd: (fd, opts) => Channel.fromFd(fd as never, opts as never),
};
const resolveChannel = ringResolver(ring, () => watch);

/** A value for the default (bytes) codec, and hostile ones. */
const value = either(fc.uint8Array({ maxLength: 64 }), 2);

/** A buffer for receiveInto: large enough, too small (the message has 3 bytes), detached, hostile. */
const intoBuffer = fc.oneof(
  either(fc.uint8Array({ maxLength: 8 }), 2),
  fc.constant(null).map(() => {
    const detached = new Uint8Array(8);
    void detached.buffer.transfer();
    return detached;
  }),
);

/** A loan's size: from 1 to the ring's largest message (4088), past it, and hostile. */
const loanSize = either(fc.integer({ min: -2, max: 4100 }), 2);

/** An open loan of 8 bytes on a fresh channel: abandoned (its "close") when the case ends. */
function openLoan(c: Case): Loan {
  const channel = Channel.create({ capacity: 4096 });
  c.defer(() => channel.close());
  return channel.tryLoan(8)!;
}

/** A channel with a message waiting and room for more: sync calls return at once. */
function ready(c: Case): Channel {
  const channel = Channel.create({ capacity: 4096 });
  channel.trySend(new Uint8Array([1, 2, 3]));
  c.defer(() => channel.close());
  return channel;
}

export const group: PropertyGroup = {
  scale: 0.6,
  covers: [
    "new Channel",
    "Channel.create",
    "Channel.open",
    "Channel.openOrCreate",
    "Channel.openOrCreateSync",
    "Channel.fromFd",
    ...[
      "capacity",
      "maxMessageSize",
      "multi",
      "name",
      "fd",
      "closed",
      "created",
      "trySend",
      "send",
      "sendSync",
      "tryReceive",
      "receive",
      "receiveSync",
      "tryReceiveInto",
      "receiveInto",
      "receiveIntoSync",
      "tryLoan",
      "loan",
      "loanSync",
      "close",
      "[Symbol.asyncIterator]",
      "[Symbol.dispose]",
    ].map((member) => `Channel.prototype.${member}`),
    "new Loan",
    ...["size", "open", "bytes", "commit", "abandon", "[Symbol.dispose]"].map((member) =>
      `Loan.prototype.${member}`
    ),
  ],
  properties(): Property[] {
    // A sync wait's first read of its timeout must be short: it blocks the thread, where the
    // harness cannot end it. What later reads say must not matter (they are never made).
    const syncWait = fc.oneof(
      fc.record({ timeout: shortTimeout }),
      fc.tuple(
        fc.record({ timeout: shortTimeout }),
        fc.record({ timeout: hostile }, { requiredKeys: [] }),
      ).map(([first, later]) => new Shifty(first, later)),
    );
    watch = new FdWatch();
    const other = Channel.create({ capacity: 4096 });
    useOtherHandle(() => Object.create(other));
    closeOther = () => other.close();
    return [
      constructorProperty("Channel", Channel),
      {
        name:
          "Channel.create() makes a channel or refuses its options (prototype keys are no roles)",
        covers: ["Channel.create"],
        runs: 2500,
        args: [
          options({
            capacity: fc.constantFrom(1, 4096, 65536, 4097, 2 ** 31),
            name: orGenerated(fc.oneof(ref("name", "fresh"), ref("name", "existing"))),
            mode: fc.constantFrom(0o600, 0o644),
            persist: fc.constant(false),
            codec: ringCodec,
            multi: fc.boolean(),
            role,
          }),
        ],
        resolve: resolveChannel,
        call: ([opts], c) => {
          const channel = Channel.create(opts as never);
          c.removeKept(channel.name);
          return channel;
        },
      },
      {
        name: "Channel.openOrCreate() and openOrCreateSync() open or create a channel, or refuse",
        covers: ["Channel.openOrCreate", "Channel.openOrCreateSync"],
        runs: 800,
        stallMs: 500,
        args: [
          ringName,
          options({
            capacity: fc.constantFrom(1, 4096, 4097),
            mode: fc.constantFrom(0o600, 0),
            persist: fc.constant(false),
            codec: ringCodec,
            multi: fc.boolean(),
            role,
            timeout: fc.constantFrom(0, 20, -1, NaN, "1"),
          }),
          fc.boolean(),
        ],
        resolve: resolveChannel,
        call: async ([channelName, opts, sync], c) => {
          const channel = sync
            ? Channel.openOrCreateSync(channelName as never, withSyncTimeout(opts) as never)
            : await Channel.openOrCreate(channelName as never, withTimeout(opts) as never);
          c.removeKept(channel.name);
          return channel;
        },
      },
      ...openProperties(ring, role, () => watch),
      ...memberProperties<Channel>({
        name: "Channel",
        cls: Channel,
        make: ready,
        members: {
          capacity: {},
          maxMessageSize: {},
          multi: {},
          name: {},
          fd: {},
          closed: {},
          created: {},
          trySend: { args: [value], runs: 1500 },
          send: { args: [value, waitOptions()], runs: 1500 },
          sendSync: { args: [value, options({ timeout: anyTimeout })], runs: 1500 },
          tryReceive: { args: [options({ view: fc.boolean() })], runs: 1000 },
          receive: { args: [options({ view: fc.boolean(), timeout: anyTimeout })], runs: 1000 },
          receiveSync: { args: [options({ view: fc.boolean(), timeout: anyTimeout })], runs: 1000 },
          tryReceiveInto: { args: [intoBuffer], runs: 1000 },
          receiveInto: { args: [intoBuffer, waitOptions()], runs: 1000 },
          receiveIntoSync: { args: [intoBuffer, options({ timeout: anyTimeout })], runs: 1000 },
          // (each case's channel is closed after it, which abandons a loan it made)
          tryLoan: { args: [loanSize], runs: 1000 },
          loan: { args: [loanSize, waitOptions()], runs: 1000 },
          loanSync: { args: [loanSize, syncWait], runs: 1000 },
          close: {},
          "[Symbol.asyncIterator]": iteratorMember(Channel.prototype),
          "[Symbol.dispose]": {},
        },
      }),
      constructorProperty("Loan", Loan),
      ...memberProperties<Loan>({
        name: "Loan",
        cls: Loan,
        make: openLoan,
        close: (loan) => loan.abandon(),
        members: {
          size: {},
          open: {},
          bytes: {},
          commit: { args: [either(fc.integer({ min: -1, max: 9 }), 2)], runs: 1000 },
          abandon: {},
          "[Symbol.dispose]": {},
        },
      }),
      {
        name: "a receive on an empty channel ends by its timeout, signal or close",
        covers: [],
        runs: 100,
        args: [waitOptions()],
        call: ([opts], c) => {
          const empty = Channel.create({ capacity: 4096 });
          c.defer(() => empty.close());
          c.onStall(() => empty.close());
          return empty.receive(opts as never);
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
