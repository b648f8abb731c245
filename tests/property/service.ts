/**
 * Properties of @posix/ipc/service: servers created with hostile handlers, names, codecs,
 * capacities and concurrencies (prototype keys are no options); clients connecting to hostile
 * targets (names, descriptors, wrapped descriptors, a plain channel) with hostile options; every
 * member of Server and Client on live, closed and wrong receivers, requests and streams with
 * hostile values and wait options; RemoteError made from hostile values.
 *
 * @module
 */

import { Channel, Client, codecs, RemoteError, Server } from "../../mod.ts";
import { uniqueName } from "../helpers.ts";
import { either, fc, hostile, options, type Ref, ref, waitOptions } from "./arbitraries.ts";
import { FdWatch, sacrificialFd, wrappedFd } from "./fds.ts";
import type { Case, Property, PropertyGroup } from "./harness.ts";
import { constructorProperty, memberProperties, useOtherHandle } from "./members.ts";

let watch: FdWatch;
/** The server every client of the member properties talks to (bytes in, the same bytes out). */
let echo: Server;
/** Clients connected ahead of their case: `make` is sync, `connect` is not. */
const ready: Client[] = [];

const codec = fc.oneof(
  fc.constantFrom(codecs.bytes, codecs.text, codecs.json, codecs.structured),
  fc.constantFrom({ name: "x", encode: () => new Uint8Array(1), decode: () => 1 }, { name: "x" }, {
    encode: 1,
    decode: 2,
  }),
);

const handler = either(fc.constantFrom((bytes: Uint8Array) => bytes, () => 1, async () => {}), 3);

/** A value for the bytes codec, and hostile ones. */
const value = either(fc.uint8Array({ maxLength: 64 }), 2);

function resolveService(marker: Ref, c: Case): unknown {
  if (marker.kind === "name") {
    const fresh = uniqueName("prop-svc");
    if (marker.detail === "existing") {
      const existing = Server.create((bytes: Uint8Array) => bytes, { name: fresh, capacity: 4096 });
      c.defer(() => existing[Symbol.asyncDispose]());
    }
    return fresh;
  }
  if (marker.kind === "server") return echo;
  if (marker.kind === "channel") {
    const channel = Channel.create({ capacity: 4096 });
    c.defer(() => channel.close());
    return channel;
  }
  return watch.resolve(marker, c);
}

/** A client of the echo server, connected before the case (see `before`). */
function takeClient(c: Case): Client {
  const client = ready.pop() ?? (() => {
    throw new Error("no client connected ahead of the case");
  })();
  c.defer(() => client[Symbol.asyncDispose]());
  return client;
}

/** A server of its own for one case, closed when the case ends. */
function makeServer(c: Case): Server {
  const server = Server.create((bytes: Uint8Array) => bytes, { capacity: 4096 });
  c.defer(() => server[Symbol.asyncDispose]());
  return server;
}

async function connectAhead(): Promise<void> {
  while (ready.length < 2) ready.push(await Client.connect(echo, { capacity: 4096 }));
}

export const group: PropertyGroup = {
  scale: 0.5,
  covers: [
    "new Server",
    "Server.create",
    "new Client",
    "Client.connect",
    "new RemoteError",
    ...["name", "fd", "clients", "closed", "close", "[Symbol.dispose]", "[Symbol.asyncDispose]"]
      .map((member) => `Server.prototype.${member}`),
    ...[
      "id",
      "pending",
      "closed",
      "request",
      "stream",
      "close",
      "[Symbol.dispose]",
      "[Symbol.asyncDispose]",
    ].map((member) => `Client.prototype.${member}`),
  ],
  async properties(): Promise<Property[]> {
    watch = new FdWatch();
    echo = Server.create((bytes: Uint8Array) => bytes, { capacity: 4096 });
    const other = Channel.create({ capacity: 4096 });
    useOtherHandle(() => Object.create(other));
    closeOther = () => other.close();
    await connectAhead();
    const clientMembers = memberProperties<Client>({
      name: "Client",
      cls: Client,
      make: takeClient,
      members: {
        id: {},
        pending: {},
        closed: {},
        request: { args: [value, waitOptions()], runs: 400 },
        stream: {
          args: [value, waitOptions()],
          runs: 400,
          call: (receiver, [bytes, opts]) => {
            const parts = Client.prototype.stream.call(receiver, bytes as never, opts as never);
            return parts.next().finally(() => parts.return?.());
          },
        },
        close: {},
        "[Symbol.dispose]": {},
        "[Symbol.asyncDispose]": {},
      },
    }).map((property) => ({ ...property, before: connectAhead }));
    return [
      constructorProperty("Server", Server),
      constructorProperty("Client", Client),
      {
        name: "new RemoteError() makes an error from any message, name and code",
        covers: ["new RemoteError"],
        runs: 500,
        args: [hostile, hostile, hostile],
        call: ([message, name, code]) => {
          const error = new RemoteError(message as never, name as never, code as never);
          if (typeof error.message !== "string" || typeof error.remoteName !== "string") {
            throw new Error("a RemoteError without a string message and remoteName");
          }
        },
        allow: (error) => error instanceof TypeError, // a Symbol or a throwing toString
      },
      {
        name: "Server.create() serves or refuses its handler and options",
        covers: ["Server.create"],
        runs: 800,
        args: [
          handler,
          options({
            name: fc.oneof(ref("name", "fresh"), ref("name", "existing")),
            mode: fc.constantFrom(0o600, 0o644),
            codec,
            capacity: fc.constantFrom(1, 4096, 65536, 4097, 2 ** 31),
            concurrency: fc.constantFrom(1, 0, -1, 2.5, Infinity, 2 ** 32, NaN),
            signal: fc.constantFrom(ref("signal", "never"), ref("signal", "aborted")),
          }),
        ],
        resolve: resolveService,
        call: ([fn, opts], c) => {
          const server = Server.create(fn as never, opts as never);
          c.defer(() => server[Symbol.asyncDispose]());
          return server;
        },
      },
      {
        name:
          "Client.connect() connects, or refuses its target and options, never taking a wrapped fd",
        covers: ["Client.connect"],
        runs: 500,
        args: [
          fc.oneof(
            ref("server"),
            ref("name", "fresh"),
            ref("name", "existing"),
            ref("channel"),
            sacrificialFd,
            wrappedFd,
            hostile,
          ),
          options({
            codec,
            capacity: fc.constantFrom(4096, 4097, 1),
            timeout: fc.constantFrom(0, 20, 1000, -1, NaN),
            signal: fc.constantFrom(ref("signal", "never"), ref("signal", "aborted")),
          }),
        ],
        resolve: resolveService,
        stallMs: 2000,
        call: async ([target, opts], c) => {
          const client = await Client.connect(target as never, opts as never);
          c.defer(() => client[Symbol.asyncDispose]());
          return client;
        },
        after: () => watch.assertUntouched(),
      },
      ...memberProperties<Server>({
        name: "Server",
        cls: Server,
        make: makeServer,
        members: {
          name: {},
          fd: {},
          clients: {},
          closed: {},
          close: {},
          "[Symbol.dispose]": {},
          "[Symbol.asyncDispose]": {},
        },
      }),
      ...clientMembers,
    ];
  },
  async teardown() {
    for (const client of ready.splice(0)) await client[Symbol.asyncDispose]();
    await echo?.[Symbol.asyncDispose]();
    closeOther?.();
    watch.close();
  },
};

let closeOther: (() => void) | undefined;
