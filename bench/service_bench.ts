/**
 * Request/response between two Deno processes: `@posix/ipc/service` against a Unix socket. The
 * first row is the user's path: `await client.request(64 B)`, one at a time, to a server child
 * whose handler is async (bench/fixtures/service_echo.ts); the baseline is what a Deno user has
 * without this library: a Unix socket from `Deno.listen` / `Deno.connect`, `await write` of the
 * 64-byte request and `await read` of the 64-byte answer (bench/fixtures/echo.ts socket, async
 * too). Both children are spawned the same way, and the clock starts after start-up.
 *
 * "(reference)" is no request/response: a bare Channel pair to an async echo child, the ring the
 * service is built on, which bounds what the service can reach. "64 in flight" sends 64 requests
 * at once and awaits them all (per batch): the pipelined path the service allows and a socket
 * written this way does not.
 *
 * Medians of single trips, the kinds taking turns: bench/fixtures/service_round_trip.ts.
 * Run alone: deno task bench bench/service_bench.ts
 *
 * @module
 */

import { readBytes } from "./fixtures/natural_trials.ts";
import { startPeers } from "./fixtures/service_trials.ts";

const message = new Uint8Array(64).fill(1);
const reply = new Uint8Array(64 * 1024);
const peers = await startPeers();
const { ping, pong } = peers;
const batch = Array.from({ length: 64 }, () => message);

const group = "64 B request/response round trip";
Deno.bench({
  group,
  name: "Service, await client.request (async handler)",
  async fn() {
    await peers.client.request(message);
  },
});
Deno.bench({
  group,
  name: "Unix socket, await write / await read",
  baseline: true,
  async fn() {
    await peers.socket.write(message);
    await readBytes(peers.socket, reply, 64);
  },
});
Deno.bench({
  group,
  name: "Channel pair, await send / await receive (reference: the ring under the service)",
  async fn() {
    await ping.send(message);
    await pong.receive();
  },
});
Deno.bench({
  group: "64 B requests, 64 in flight",
  name: "Service, await Promise.all(64 x client.request) (per batch)",
  async fn() {
    await Promise.all(batch.map((bytes) => peers.client.request(bytes)));
  },
});

globalThis.addEventListener("unload", () => void peers.close());
