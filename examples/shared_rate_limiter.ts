/**
 * A rate limiter shared by the processes of a server: N worker processes serve requests from
 * many clients, and one `SharedMap` holds each client's fixed window (its start and the
 * requests counted in it), so that a client gets LIMIT requests a window in all, whichever
 * worker serves it. `update()` reads, counts and writes a client's window under the map's lock,
 * so two workers never both let the LIMIT-th + 1 request through.
 *
 * The workers are child Deno processes that receive the map as fd 3. Each serves REQUESTS
 * requests from random clients and prints, per client, how many it let through and how many it
 * refused. The parent adds them up: every client that asked more than LIMIT times got exactly
 * LIMIT, the others got all they asked.
 *
 * Run: deno run --allow-ffi --allow-run examples/shared_rate_limiter.ts [WORKERS] [REQUESTS]
 *
 * @module
 */

import { codecs, inheritedFd, SharedMap, spawnDeno } from "../mod.ts";

const CLIENTS = 40;
const LIMIT = 100;
const WINDOW_MS = 60_000;

/** One client's window: when it started, and the requests it let through. */
interface Window {
  start: number;
  count: number;
}

/** Counts a request of `client`: whether it is within the limit of its window. */
function allow(limiter: SharedMap<unknown>, client: string): boolean {
  let allowed = false;
  limiter.update(client, (current) => {
    const now = Date.now();
    const window = current as Window | undefined;
    if (window === undefined || now - window.start >= WINDOW_MS) {
      allowed = true;
      return { start: now, count: 1 };
    }
    allowed = window.count < LIMIT;
    return allowed ? { start: window.start, count: window.count + 1 } : window;
  });
  return allowed;
}

if (Deno.args[0] === "--worker") {
  using limiter = SharedMap.fromFd(inheritedFd(3), { codec: codecs.json });
  const requests = Number(Deno.args[1]);
  const tally: Record<string, [allowed: number, refused: number]> = {};
  for (let i = 0; i < requests; i++) {
    const client = `client-${Math.floor(Math.random() ** 2 * CLIENTS)}`; // a few are busy
    const counts = tally[client] ??= [0, 0];
    counts[allow(limiter, client) ? 0 : 1]++;
  }
  console.log(JSON.stringify(tally));
} else {
  const workers = Number(Deno.args[0] ?? 4);
  const requests = Number(Deno.args[1] ?? 2000);
  using limiter = SharedMap.create({
    codec: codecs.json,
    capacity: 1024,
    maxValueBytes: 64,
    whenFull: "evict-lru", // a server with more clients forgets the quietest ones
  });
  const started = performance.now();
  const children = Array.from({ length: workers }, () =>
    spawnDeno(import.meta.url, {
      args: ["--worker", String(requests)],
      permissions: { ffi: true },
      fds: { 3: limiter },
      stdout: "piped",
    }));
  const totals = new Map<string, [number, number]>();
  for (const child of children) {
    const { status, stdout } = await child.output();
    if (!status.success) throw new Error(`a worker failed: ${JSON.stringify(status)}`);
    const tally = JSON.parse(new TextDecoder().decode(stdout)) as Record<string, [number, number]>;
    for (const [client, [allowed, refused]] of Object.entries(tally)) {
      const sum = totals.get(client) ?? [0, 0];
      totals.set(client, [sum[0] + allowed, sum[1] + refused]);
    }
  }
  const ms = performance.now() - started;
  let wrong = 0;
  let limited = 0;
  for (const [client, [allowed, refused]] of totals) {
    const expected = Math.min(LIMIT, allowed + refused);
    if (allowed !== expected) wrong++;
    if (refused > 0) limited++;
    const stored = limiter.get(client) as Window;
    if (stored.count !== allowed) wrong++;
  }
  console.log(
    `parent: ${workers} workers served ${workers * requests} requests from ${totals.size} ` +
      `clients in ${ms.toFixed(0)} ms; ${limited} clients reached the limit of ${LIMIT}`,
  );
  console.log(
    wrong === 0
      ? "parent: every client got exactly min(limit, asked), across all workers"
      : `parent: ${wrong} clients got a WRONG count`,
  );
}
