/**
 * Shared memory against what a Deno program has without this library.
 *
 * - "64 MiB write+read": filling and then summing 64 MiB through a shared mapping, against
 *   the same work on an ordinary ArrayBuffer (the baseline). The mapping should run at 90% or
 *   more of the baseline's speed.
 * - "create+map+close 1 MiB": making a segment, against making a 1 MiB temporary file with
 *   Deno's file API, the usual way to share bytes with another process without FFI.
 *
 * Run: deno task bench bench/shm_bench.ts
 *
 * @module
 */

import { SharedMemory } from "../mod.ts";

const SIZE = 64 * 1024 * 1024;
const SMALL = 1024 * 1024;
const prefix = `/pipc-bench-${Deno.pid}`;
let counter = 0;

/** Fills the words with `value`, then sums them back: one write pass, one read pass. */
function writeAndRead(words: Int32Array, value: number): number {
  words.fill(value);
  let sum = 0;
  for (let i = 0; i < words.length; i++) sum = (sum + words[i]!) | 0;
  return sum;
}

const ordinary = new Int32Array(new ArrayBuffer(SIZE));
const named = SharedMemory.create(`${prefix}-big`, { size: SIZE });
const anonymous = SharedMemory.anonymous({ size: SIZE });
const namedWords = new Int32Array(named.buffer);
const anonymousWords = new Int32Array(anonymous.buffer);
// Touch every page once so that no measurement pays for the first page faults.
for (const words of [ordinary, namedWords, anonymousWords]) writeAndRead(words, 1);

let sink = 0;

Deno.bench({
  group: "64 MiB write+read",
  name: "ArrayBuffer (ordinary heap memory)",
  baseline: true,
  fn() {
    sink ^= writeAndRead(ordinary, ++counter);
  },
});

Deno.bench({
  group: "64 MiB write+read",
  name: "SharedMemory.create (named, /dev/shm)",
  fn() {
    sink ^= writeAndRead(namedWords, ++counter);
  },
});

Deno.bench({
  group: "64 MiB write+read",
  name: "SharedMemory.anonymous (memfd)",
  fn() {
    sink ^= writeAndRead(anonymousWords, ++counter);
  },
});

const tempDir = Deno.makeTempDirSync({ prefix: "pipc-bench-" });

Deno.bench({
  group: "create+map+close 1 MiB",
  name: "temporary file with Deno.open (no mapping)",
  baseline: true,
  fn() {
    const path = `${tempDir}/${++counter}`;
    const file = Deno.openSync(path, { read: true, write: true, createNew: true });
    file.truncateSync(SMALL);
    file.close();
    Deno.removeSync(path);
  },
});

Deno.bench({
  group: "create+map+close 1 MiB",
  name: "SharedMemory.create (pages reserved)",
  fn() {
    SharedMemory.create(`${prefix}-${++counter}`, { size: SMALL }).close();
  },
});

Deno.bench({
  group: "create+map+close 1 MiB",
  name: "SharedMemory.anonymous",
  fn() {
    SharedMemory.anonymous({ size: SMALL }).close();
  },
});

globalThis.addEventListener("unload", () => {
  named.close();
  anonymous.close();
  Deno.removeSync(tempDir, { recursive: true });
  if (sink === 0.5) console.log(sink); // keeps the sums alive
});
