/**
 * A counter that survives a crashing worker: N worker processes count requests in one
 * `SharedMap` entry with `updateAsync()` (the lock is waited for without blocking the worker's
 * event loop, as a server needs), and the parent kills one of them with SIGKILL while it counts.
 * Each worker reports every count it made through a pipe line. The map writes a new value beside
 * the old one and publishes it in one store, so the kill loses nothing: the counter ends at
 * the number of counts the workers saw, plus one if the killed worker's last count was published
 * before it could report it. It never restarts, and is never torn.
 *
 * Run: deno run --allow-ffi --allow-run examples/crash_safe_counter.ts [WORKERS] [COUNTS]
 *
 * @module
 */

import { codecs, inheritedFd, SharedMap, spawnDeno } from "../mod.ts";

if (Deno.args[0] === "--worker") {
  using counter = SharedMap.fromFd(inheritedFd(3), { codec: codecs.json });
  const counts = Number(Deno.args[1]);
  const encoder = new TextEncoder();
  for (let i = 0; i < counts; i++) {
    const n = await counter.updateAsync("requests", (n) => ((n as number | undefined) ?? 0) + 1, {
      timeout: 10_000,
    });
    Deno.stdout.writeSync(encoder.encode(`${n}\n`)); // this count is done
  }
} else {
  const workers = Number(Deno.args[0] ?? 3);
  const counts = Number(Deno.args[1] ?? 2000);
  using counter = SharedMap.create({ codec: codecs.json, capacity: 4 });
  const children = Array.from({ length: workers }, () =>
    spawnDeno(new URL(import.meta.url), {
      args: ["--worker", String(counts)],
      permissions: { ffi: true },
      fds: { 3: counter },
      stdout: "piped",
    }));
  // Each worker's reported counts: one line per update that returned.
  const reported = children.map(async (child, index) => {
    let lines = 0;
    let killed = false;
    let text = "";
    const decoder = new TextDecoder();
    const buffer = new Uint8Array(4096);
    for (;;) {
      const n = await child.stdout!.read(buffer);
      if (n === null || n === 0) break;
      text += decoder.decode(buffer.subarray(0, n));
      const done = text.split("\n");
      text = done.pop()!;
      lines += done.length;
      if (index === 0 && !killed && lines >= counts / 4) {
        child.kill("SIGKILL"); // mid-run, wherever it is: maybe inside an update
        killed = true;
      }
    }
    return lines;
  });
  const made = await Promise.all(reported);
  const statuses = await Promise.all(children.map((child) => child.status));
  const total = made.reduce((a, b) => a + b, 0);
  const value = counter.get("requests") as number;
  console.log(
    `${workers} workers, the first killed by ${statuses[0]!.success ? "nothing" : "SIGKILL"} ` +
      `after ${made[0]} counts; counts reported: ${total}; counter: ${value}`,
  );
  if (value !== total && value !== total + 1) throw new Error("the counter lost counts");
  console.log("the counter holds every reported count: nothing lost, nothing restarted");
}
