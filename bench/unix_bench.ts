/**
 * Unix-domain sockets between two Deno processes: a descriptor round trip against a plain one.
 * The first row is the user's path: `await socket.send(64 B, { fds: [memory] })` to an echo
 * child that receives the anonymous SharedMemory, maps it, bumps a byte and answers 64 B
 * (bench/fixtures/unix_echo.ts), then `await socket.receive()` of the answer; all async. The
 * second row passes the descriptor too but the echo closes it unused (the cost of the passing
 * alone, without the mapping); the third is the same 64 B round trip over the same sockets
 * without a descriptor: the target is the first under 2x the third. The baseline is what a Deno user has
 * without this library, and cannot pass descriptors with: a Unix socket from `Deno.listen` /
 * `Deno.connect`, `await write` / `await read` (bench/fixtures/echo.ts socket). Both children
 * are spawned the same way, and the clock starts after start-up.
 *
 * Medians of single trips, the kinds taking turns: bench/fixtures/unix_round_trip.ts.
 * Run alone: deno task bench bench/unix_bench.ts
 *
 * @module
 */

import { startPeers } from "./fixtures/unix_trials.ts";

const peers = await startPeers();

const group = "64 B round trip between two processes over a Unix socket";
Deno.bench({
  group,
  name: "UnixSocket, await send(64 B + a SharedMemory fd) / await receive (echo maps it)",
  fn: peers.descriptorTrip,
});
Deno.bench({
  group,
  name: "UnixSocket, await send(64 B + a SharedMemory fd) / await receive (echo closes it unused)",
  fn: peers.passingTrip,
});
Deno.bench({
  group,
  name: "UnixSocket, await send(64 B) / await receive",
  fn: peers.plainTrip,
});
Deno.bench({
  group,
  name: "Deno.connect Unix socket, await write / await read",
  baseline: true,
  fn: peers.denoTrip,
});

globalThis.addEventListener("unload", () => void peers.close());
