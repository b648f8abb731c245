/**
 * Unix-domain sockets between two Deno processes: a descriptor round trip against a plain one.
 * The first row is the user's path: `await socket.send(64 B, { fds: [memory] })` to an echo
 * child that receives the anonymous SharedMemory, maps it, bumps a byte and answers 64 B
 * (bench/fixtures/unix_echo.ts), then `await socket.receive()` of the answer; all async. The
 * second row passes the descriptor too but the echo closes it unused (the cost of the passing
 * alone, without the mapping); the third ("best case") has the echo map, bump and unmap the
 * segment through raw libc calls (bench/fixtures/map_floor.ts: statx, mmap, a page fault,
 * munmap, close): the kernel's floor of any descriptor trip that maps what it receives; the
 * fourth is the same 64 B round trip over the same sockets without a descriptor: the issue's
 * target is the first under 2x the fourth. The baseline is what a Deno user has
 * without this library, and cannot pass descriptors with: a Unix socket from `Deno.listen` /
 * `Deno.connect`, `await write` / `await read` (bench/fixtures/echo.ts socket). Both children
 * are spawned the same way, and the clock starts after start-up.
 *
 * A second group takes the mapping apart in one process (per step, 4 KiB memfd, hot loop):
 * `SharedMemory.fromFd` + a write + `close()`, the raw floor of the same, and the passing alone
 * (a descriptor duplicated and closed).
 *
 * Medians of single trips, the kinds taking turns: bench/fixtures/unix_round_trip.ts.
 * Run alone: deno task bench bench/unix_bench.ts
 *
 * @module
 */

import { OwnedFd } from "@posix/ipc";
import { SharedMemory } from "@posix/ipc/shm";
import { mapAndBumpRaw } from "./fixtures/map_floor.ts";
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
  name: "best case: the same, the echo maps it through raw libc calls (the kernel's floor)",
  fn: peers.floorTrip,
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

const steps = "map a received 4 KiB segment, one process";
const segment = SharedMemory.anonymous({ size: 4096 });
Deno.bench({
  group: steps,
  name: "SharedMemory.fromFd(fd), bytes[0]++, close()",
  baseline: true,
  fn() {
    using memory = SharedMemory.fromFd(new OwnedFd(segment.fd).dup());
    memory.bytes[0]!++;
  },
});
Deno.bench({
  group: steps,
  name: "best case: statx, mmap, bytes[0]++, munmap, close through raw libc calls",
  fn() {
    mapAndBumpRaw(new OwnedFd(segment.fd).dup().release());
  },
});
Deno.bench({
  group: steps,
  name: "the passing alone: a descriptor duplicated and closed",
  fn() {
    new OwnedFd(segment.fd).dup().close();
  },
});

globalThis.addEventListener("unload", () => {
  segment.close();
  void peers.close();
});
