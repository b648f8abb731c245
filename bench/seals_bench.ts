/**
 * What seals and exact modes cost, against the same calls without them. Neither is a data path:
 * these are one-time costs paid when an object is made or a segment is received.
 *
 * - "receive a 64 KiB segment": `SharedMemory.fromFd` of a descriptor as a child gets it, plain
 *   (the baseline) and with `requireSeals: ["shrink"]`, which adds one fcntl(F_GET_SEALS).
 * - "seal a fresh 64 KiB segment": `anonymous({ size })` (baseline), `anonymous({ size, seal:
 *   ["shrink", "grow"] })`, and `anonymous` then `seal(["write"])`, which maps the handle again
 *   read-only first.
 * - "create + close a named semaphore": `Semaphore.create` now sets the exact mode, through an
 *   O_PATH descriptor of its file and /proc/self/fd; the baseline is libc's sem_open, sem_close
 *   and sem_unlink with the umask's mode (the library's own extra work, its `ipc gc` mark,
 *   counts too). `SharedMemory.create` and `MessageQueue.create` pay one fchmod.
 *
 * Run: deno task bench bench/seals_bench.ts
 *
 * @module
 */

import { OwnedFd, Semaphore, SharedMemory } from "../mod.ts";
import { cstring } from "../ffi/cstring.ts";
import { O_CREAT, O_EXCL } from "../ffi/constants.ts";
import { libc } from "../ffi/libc.ts";

const SIZE = 64 * 1024;
const prefix = `/pipc-bench-seals-${Deno.pid}`;
let counter = 0;

const source = SharedMemory.anonymous({ size: SIZE, seal: ["shrink"] });

Deno.bench({
  group: "receive a 64 KiB segment",
  name: "fromFd(fd)",
  baseline: true,
  fn() {
    SharedMemory.fromFd(new OwnedFd(source.fd).dup()).close();
  },
});

Deno.bench({
  group: "receive a 64 KiB segment",
  name: 'fromFd(fd, { requireSeals: ["shrink"] })',
  fn() {
    SharedMemory.fromFd(new OwnedFd(source.fd).dup(), { requireSeals: ["shrink"] }).close();
  },
});

Deno.bench({
  group: "seal a fresh 64 KiB segment",
  name: "anonymous({ size })",
  baseline: true,
  fn() {
    SharedMemory.anonymous({ size: SIZE }).close();
  },
});

Deno.bench({
  group: "seal a fresh 64 KiB segment",
  name: 'anonymous({ size, seal: ["shrink", "grow"] })',
  fn() {
    SharedMemory.anonymous({ size: SIZE, seal: ["shrink", "grow"] }).close();
  },
});

Deno.bench({
  group: "seal a fresh 64 KiB segment",
  name: 'anonymous({ size, seal: [] }), then seal(["write"])',
  fn() {
    const memory = SharedMemory.anonymous({ size: SIZE, seal: [] });
    memory.seal(["write"]);
    memory.close();
  },
});

Deno.bench({
  group: "create + close a named semaphore",
  name: "sem_open + sem_close + sem_unlink (libc, umask mode)",
  baseline: true,
  fn() {
    const name = cstring(`${prefix}-raw-${++counter}`);
    const c = libc();
    const sem = c.sem_open(name, O_CREAT | O_EXCL, 0o600, 0);
    if (sem === null) throw new Error("sem_open failed");
    c.sem_close(sem);
    c.sem_unlink(name);
  },
});

Deno.bench({
  group: "create + close a named semaphore",
  name: "Semaphore.create (exact mode) + close",
  fn() {
    Semaphore.create(`${prefix}-${++counter}`).close();
  },
});

globalThis.addEventListener("unload", () => source.close());
