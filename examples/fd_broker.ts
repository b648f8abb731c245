/**
 * A broker hands each client that connects a Channel of its own, over a Unix socket: the
 * channel's memory (a memfd, with no name anywhere) travels as a descriptor (SCM_RIGHTS) to a
 * process that is already running, which no Deno API can do.
 *
 * The broker listens at an abstract name, starts a few clients, and for each connection first
 * asks the kernel who is at the other end (SO_PEERCRED): a client of another user is turned
 * away. The others each get a new Channel, send a few lines through it, and close it.
 *
 * Run: deno run --allow-ffi --allow-run --allow-sys=uid examples/fd_broker.ts [CLIENTS]
 * (`--allow-sys=uid` lets the broker read its own uid, to compare with its clients').
 *
 * @module
 */

import { Channel, codecs, UnixListener, UnixSocket } from "../mod.ts";

const [role, address] = Deno.args;

/** Serves one client: checks who it is, hands it a channel, prints what comes through. */
async function serve(socket: UnixSocket): Promise<void> {
  const peer = socket.peerCredentials();
  if (peer.uid !== Deno.uid()) {
    console.log(`broker: refused process ${peer.pid}: uid ${peer.uid} is not ours`);
    await socket.send("refused");
    return;
  }
  using channel = Channel.create({ capacity: 4096, codec: codecs.text, role: "receive" });
  await socket.send("channel", { fds: [channel] });
  console.log(`broker: gave client ${peer.pid} (uid ${peer.uid}) a channel`);
  for await (const line of channel) console.log(`broker: from ${peer.pid}: "${line}"`);
  console.log(`broker: client ${peer.pid} closed its channel`);
}

async function broker(clients: number): Promise<void> {
  const name = `posix-ipc-broker-${Deno.pid}`;
  using listener = UnixListener.listen({ abstract: name });
  console.log(`broker ${Deno.pid}: listening at @${name}, starting ${clients} clients`);
  const children = Array.from({ length: clients }, () =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-ffi", import.meta.filename!, "client", name],
    }).spawn());
  const served: Promise<void>[] = [];
  for (let i = 0; i < clients; i++) {
    const socket = await listener.accept({ timeout: 30_000 });
    served.push(serve(socket).finally(() => socket.close()));
  }
  await Promise.all(served);
  const statuses = await Promise.all(children.map((child) => child.status));
  console.log(`broker: ${statuses.filter((s) => s.success).length} of ${clients} clients done`);
}

async function client(name: string): Promise<void> {
  using socket = await UnixSocket.connect({ abstract: name }, { timeout: 10_000 });
  if (socket.peerCredentials().pid !== Deno.ppid) throw new Error("not our broker");
  using message = await socket.receive({ maxFds: 1, timeout: 10_000 });
  if (message?.text !== "channel") throw new Error(`the broker said ${message?.text}`);
  using channel = Channel.fromFd(message.takeFd(), { codec: codecs.text, role: "send" });
  for (const line of ["hello", `I am process ${Deno.pid}`, "goodbye"]) await channel.send(line);
}

if (role === "client") await client(address!);
else await broker(Number(role ?? 3));
