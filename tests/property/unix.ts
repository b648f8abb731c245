/**
 * Properties of @posix/ipc/unix: listeners at hostile addresses (paths with NUL, past 108
 * bytes, objects with both or neither of path and abstract), hostile options (prototype keys
 * are none), connects and accepts that wait until their timeout, signal or close, sockets
 * adopted from descriptors that are no socket or wrap to a bystander, sends with hostile data
 * and descriptor lists (a wrapped number must never send a bystander), receives with hostile
 * limits, and received messages whose descriptors are taken with hostile indexes: none is left
 * open when the case ends. Runs in a temporary working directory, so that a relative socket
 * path a property makes lands there.
 *
 * @module
 */

import {
  ReceivedMessage,
  SharedMemory,
  SocketHandle,
  socketpair,
  UnixListener,
  UnixSocket,
} from "../../mod.ts";
import { TEST_PREFIX } from "../helpers.ts";
import {
  anyTimeout,
  either,
  fc,
  hostile,
  options,
  Ref,
  ref,
  shortTimeout,
  waitOptions,
} from "./arbitraries.ts";
import { FdWatch, refusedFd, sacrificialFd, wrappedFd } from "./fds.ts";
import type { Case, Property, PropertyGroup } from "./harness.ts";
import { constructorProperty, memberProperties, useOtherHandle } from "./members.ts";

let watch: FdWatch;
let directory: string;
let home: string;
let counter = 0;

const untouched = () => watch.assertUntouched();

/** Addresses: a listening abstract name, a free one, paths, hostile strings and shapes. */
const address = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      ...["listening", "free", "path"].map((detail) => new Ref("address", detail)),
    ),
  },
  {
    weight: 2,
    arbitrary: fc.oneof(
      fc.constantFrom("", "\0", "a\0b", "x".repeat(107), "x".repeat(108), "\0" + "y".repeat(108)),
      fc.string({ maxLength: 12 }).map((s) => `\0${s}`),
      fc.record({ path: hostile }),
      fc.record({ abstract: hostile }),
      fc.constant({ path: "p", abstract: "a" }),
      fc.constant({}),
    ),
  },
  { weight: 1, arbitrary: hostile },
);

/** What the fromFd() calls are given: sockets, listeners, other descriptors, wrapped numbers. */
const adoptable = fc.oneof(
  ref("socket"),
  ref("listener"),
  sacrificialFd,
  wrappedFd,
  ref("owned-fd"),
  refusedFd,
);

const socketType = fc.constantFrom("stream", "seqpacket", "dgram", "STREAM");

/** Descriptor lists to send: live handles, numbers that wrap to a bystander, hostile items. */
const fdList = fc.oneof(
  fc.array(
    fc.oneof(ref("memory"), ref("owned-fd"), wrappedFd, refusedFd, sacrificialFd),
    { maxLength: 4 },
  ),
  fc.constant(Array(254).fill(0)),
  hostile,
);

const data = either(
  fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.string({ maxLength: 16 })),
  3,
);

const receiveOptions = (timeout: fc.Arbitrary<number>) =>
  options({
    maxBytes: fc.constantFrom(1, 4, 65536, 1 << 24, (1 << 24) + 1, 0, 2 ** 32),
    maxFds: fc.constantFrom(0, 1, 2, 253, 254, 2 ** 31),
    timeout,
    signal: fc.constantFrom(
      ...["never", "aborted", "soon"].map((detail) => new Ref("signal", detail)),
    ),
  });

function resolveUnix(marker: Ref, c: Case): unknown {
  if (marker.kind === "address") {
    const name = `${TEST_PREFIX}-prop-unix-${Deno.pid}-${++counter}`;
    if (marker.detail === "path") return `${directory}/s${counter}.sock`;
    if (marker.detail === "free") return { abstract: name };
    const listener = UnixListener.listen({ abstract: name });
    c.defer(() => listener.close());
    return { abstract: name };
  }
  if (marker.kind === "memory") {
    const memory = SharedMemory.anonymous({ size: 4096 });
    c.defer(() => memory.close());
    return memory;
  }
  if (marker.kind === "listener") {
    const listener = UnixListener.listen({ abstract: `${TEST_PREFIX}-prop-unix-${++counter}` });
    c.defer(() => listener.close());
    return listener;
  }
  if (marker.kind === "socket") {
    const pair = socketpair();
    c.defer(() => pair[Symbol.dispose]());
    return pair[0];
  }
  return watch.resolve(marker, c);
}

/** A socket whose peer has sent a message with two descriptors, and can take more. */
function loaded(c: Case): UnixSocket {
  const pair = socketpair({ type: "seqpacket" });
  c.defer(() => pair[Symbol.dispose]());
  pair[1].sendSync("hello", { fds: [pair[1], pair[1]] });
  return pair[0];
}

/** A received message that owns two descriptors. */
function message(c: Case): ReceivedMessage {
  const received = loaded(c).receiveSync({ maxFds: 2 })!;
  c.defer(() => received.close());
  return received;
}

/** A listener with one connection waiting. */
function listening(c: Case): UnixListener {
  const name = { abstract: `${TEST_PREFIX}-prop-unix-${Deno.pid}-${++counter}` };
  const listener = UnixListener.listen(name);
  const client = UnixSocket.connectSync(name);
  c.defer(() => {
    client.close();
    listener.close();
  });
  return listener;
}

export const group: PropertyGroup = {
  scale: 0.5,
  covers: [
    "socketpair",
    "new SocketHandle",
    "new UnixSocket",
    "new UnixListener",
    "new ReceivedMessage",
    "UnixListener.listen",
    "UnixListener.fromFd",
    "UnixSocket.connect",
    "UnixSocket.connectSync",
    "UnixSocket.fromFd",
    ...["fd", "type", "closed", "close", "[Symbol.dispose]"].map((m) =>
      `SocketHandle.prototype.${m}`
    ),
    ...[
      "peerCredentials",
      "send",
      "sendSync",
      "receive",
      "receiveSync",
      "tryReceive",
      "shutdown",
      "messages",
      "[Symbol.asyncIterator]",
    ].map((m) => `UnixSocket.prototype.${m}`),
    ...["address", "accept", "acceptSync", "tryAccept", "[Symbol.asyncIterator]", "close"].map(
      (m) => `UnixListener.prototype.${m}`,
    ),
    ...["text", "fdCount", "takeFd", "takeFds", "close", "[Symbol.dispose]"].map((m) =>
      `ReceivedMessage.prototype.${m}`
    ),
  ],
  properties(): Property[] {
    watch = new FdWatch();
    home = Deno.cwd();
    directory = Deno.makeTempDirSync({ prefix: "pipc-property-unix-" });
    Deno.chdir(directory);
    const other = socketpair();
    useOtherHandle(() => other[0]);
    cleanupOther = () => other[Symbol.dispose]();
    return [
      {
        name: "socketpair() makes two connected sockets of the type asked, or refuses it",
        covers: ["socketpair"],
        runs: 1000,
        args: [options({ type: socketType })],
        call: ([opts]) => socketpair(opts as never),
      },
      {
        name: "UnixListener.listen() listens at the address or refuses it and its options",
        covers: ["UnixListener.listen"],
        runs: 2000,
        args: [
          address,
          options({
            type: socketType,
            backlog: fc.constantFrom(0, 1, 128, -1, 2 ** 31, 1.5),
            mode: fc.constantFrom(0o600, 0o666, 0, 0o1000, -1),
            persist: fc.constant(false),
          }),
        ],
        resolve: resolveUnix,
        call: ([where, opts]) => UnixListener.listen(where as never, opts as never),
        after: untouched,
      },
      {
        name: "UnixSocket.connect() connects, or refuses, or ends at its timeout or signal",
        covers: ["UnixSocket.connect"],
        runs: 1500,
        args: [address, options({ type: socketType, timeout: anyTimeout })],
        resolve: resolveUnix,
        call: ([where, opts]) => UnixSocket.connect(where as never, opts as never),
        after: untouched,
      },
      {
        name: "UnixSocket.connectSync() connects or refuses within its timeout",
        covers: ["UnixSocket.connectSync"],
        runs: 1500,
        args: [address, options({ type: socketType, timeout: shortTimeout })],
        resolve: resolveUnix,
        call: ([where, opts]) => UnixSocket.connectSync(where as never, opts as never),
        after: untouched,
      },
      {
        name: "UnixSocket.fromFd() adopts only a Unix socket, never a wrapped number",
        covers: ["UnixSocket.fromFd"],
        runs: 1500,
        args: [adoptable],
        resolve: resolveUnix,
        call: ([fd]) => UnixSocket.fromFd(fd as never),
        after: untouched,
      },
      {
        name: "UnixListener.fromFd() adopts only a listening Unix socket, never a wrapped number",
        covers: ["UnixListener.fromFd"],
        runs: 1500,
        args: [adoptable],
        resolve: resolveUnix,
        call: ([fd]) => UnixListener.fromFd(fd as never),
        after: untouched,
      },
      constructorProperty("SocketHandle", SocketHandle, 300),
      constructorProperty("UnixSocket", UnixSocket, 300),
      constructorProperty("UnixListener", UnixListener, 300),
      constructorProperty("ReceivedMessage", ReceivedMessage, 300),
      ...memberProperties<SocketHandle>({
        name: "SocketHandle",
        cls: SocketHandle,
        make: loaded,
        members: {
          fd: {},
          type: {},
          closed: {},
          close: { after: untouched },
          "[Symbol.dispose]": { after: untouched },
        },
      }),
      ...memberProperties<UnixSocket>({
        name: "UnixSocket",
        cls: UnixSocket,
        make: loaded,
        resolve: resolveUnix,
        members: {
          peerCredentials: {},
          send: { args: [data, options({ fds: fdList, timeout: anyTimeout })], runs: 2000 },
          sendSync: { args: [data, options({ fds: fdList, timeout: shortTimeout })], runs: 2000 },
          receive: { args: [receiveOptions(anyTimeout)], runs: 2000 },
          receiveSync: { args: [receiveOptions(shortTimeout)], runs: 1500 },
          tryReceive: { args: [receiveOptions(shortTimeout)], runs: 1500 },
          shutdown: { args: [either(fc.constantFrom("read", "write", "both"))] },
          messages: {
            args: [receiveOptions(anyTimeout)],
            call: async (socket, [opts]) => {
              const iterator = UnixSocket.prototype.messages.call(socket, opts as never);
              (await iterator.next()).value?.close();
              await iterator.return();
            },
          },
          "[Symbol.asyncIterator]": {
            call: async (socket) => {
              const iterator = UnixSocket.prototype[Symbol.asyncIterator].call(socket);
              (await iterator.next()).value?.close();
              await iterator.return();
            },
          },
        },
      }),
      ...memberProperties<UnixListener>({
        name: "UnixListener",
        cls: UnixListener,
        make: listening,
        members: {
          address: {},
          accept: { args: [waitOptions()], runs: 1000 },
          acceptSync: { args: [options({ timeout: shortTimeout })], runs: 1000 },
          tryAccept: {},
          "[Symbol.asyncIterator]": {
            call: async (listener) => {
              const iterate = UnixListener.prototype[Symbol.asyncIterator];
              const iterator = iterate.call(listener);
              const first = await iterator.next();
              (first.value as UnixSocket | undefined)?.close();
              await iterator.return?.();
            },
          },
          close: { after: untouched },
        },
      }),
      ...memberProperties<ReceivedMessage>({
        name: "ReceivedMessage",
        cls: ReceivedMessage,
        make: message,
        members: {
          text: {},
          fdCount: {},
          takeFd: {
            args: [either(fc.constantFrom(0, 1, 2, -0, 252, 253))],
            call: (received, [index]) => received.takeFd(index as never).close(),
            runs: 1500,
          },
          takeFds: { call: (received) => received.takeFds().forEach((fd) => fd.close()) },
          close: { after: untouched },
          "[Symbol.dispose]": { after: untouched },
        },
      }),
    ];
  },
  teardown() {
    cleanupOther?.();
    watch.close();
    Deno.chdir(home);
    Deno.removeSync(directory, { recursive: true });
  },
};

let cleanupOther: (() => void) | undefined;
